/*
 * lua_attach.c — the Unix sockets moongrad.attach talks over: a training
 * job listens, `moongrad --attach` connects. POSIX only.
 *
 * Registered with a leading underscore (mg._unix_listen, ...); the public
 * surface is moongrad.attach. Descriptors are plain integers, read and
 * written with lua_proc.c's mg._proc_send, _proc_recv, _proc_poll and
 * _proc_close.
 *
 * Only the job's owner may attach: the socket is created owner-only (mode
 * 0600, bound under umask 0177 so no other user can connect even for a
 * moment), the default directory must be private to the owner, and each
 * connection's peer credentials are checked. A path that exists and is not
 * a socket is never removed or bound over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "lua_bind.h"

/* nil, "attach: <what> <path>: <strerror>" */
static int fail(lua_State *L, const char *what, const char *path) {
  int e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "attach: %s %s: %s", what, path, strerror(e));
  return 2;
}

static int refuse(lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

/* Fills addr with path; returns 0 when the path is too long for one. */
static int make_addr(struct sockaddr_un *addr, const char *path, size_t len) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (len == 0 || len >= sizeof addr->sun_path) return 0;
  memcpy(addr->sun_path, path, len);
  return 1;
}

static const char *check_path(lua_State *L, int arg, struct sockaddr_un *addr) {
  size_t len;
  const char *path = luaL_checklstring(L, arg, &len);
  if (strlen(path) != len) luaL_error(L, "attach: the socket path contains a NUL byte");
  if (!make_addr(addr, path, len))
    luaL_error(L, "attach: the socket path '%s' is %s (at most %d bytes)", path,
               len == 0 ? "empty" : "too long", (int)sizeof addr->sun_path - 1);
  return path;
}

/* Connects to addr; returns the descriptor or -1 with errno set. */
static int connect_to(const struct sockaddr_un *addr) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int r;
  do r = connect(fd, (const struct sockaddr *)addr, sizeof *addr);
  while (r != 0 && errno == EINTR);
  if (r != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* mg._unix_private_dir(dir) --> true, or nil, message. Creates dir (mode
 * 0700) when missing; an existing one must be a real directory (not a
 * link), owned by this user and closed to everyone else, or someone else
 * could swap the socket in it. */
static int f_private_dir(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  struct stat st;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) return fail(L, "cannot create the directory", dir);
  if (lstat(dir, &st) != 0) return fail(L, "cannot look at", dir);
  if (!S_ISDIR(st.st_mode)) {
    lua_pushnil(L);
    lua_pushfstring(L, "attach: %s is not a directory; pass a socket path (--listen=PATH)", dir);
    return 2;
  }
  if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    char mode[16];
    snprintf(mode, sizeof mode, "%o", (unsigned)(st.st_mode & 07777));
    lua_pushnil(L);
    lua_pushfstring(L, "attach: %s is not private (owner uid %d, mode %s): only its owner "
                    "may use it; pass a socket path (--listen=PATH)",
                    dir, (int)st.st_uid, mode);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* mg._unix_listen(path) --> fd, or nil, message. A socket left at path by a
 * job that died is replaced; a live one ("another job is listening") and
 * anything that is not a socket are refused. The descriptor does not block
 * on accept. */
static int f_listen(lua_State *L) {
  struct sockaddr_un addr;
  const char *path = check_path(L, 1, &addr);
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      lua_pushnil(L);
      lua_pushfstring(L, "attach: %s exists and is not a socket; choose another path", path);
      return 2;
    }
    int fd = connect_to(&addr);
    if (fd >= 0) {
      close(fd);
      lua_pushnil(L);
      lua_pushfstring(L, "attach: another job is listening on %s", path);
      return 2;
    }
    if (unlink(path) != 0 && errno != ENOENT) return fail(L, "cannot remove the old socket", path);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(L, "cannot create a socket for", path);
  mode_t old = umask(0177);
  int r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
  umask(old);
  if (r != 0 || chmod(path, 0600) != 0 || listen(fd, 8) != 0) {
    int e = errno;
    if (r == 0) unlink(path);
    close(fd);
    errno = e;
    return fail(L, "cannot listen on", path);
  }
  lua_pushinteger(L, fd);
  return 1;
}

/* mg._unix_accept(fd) --> the connection's fd; nil when none is waiting;
 * nil, message for a peer that is not this user (refused and closed).
 * Sends on the connection give up after 10 s, so a client that stopped
 * reading cannot hold the job up for longer. */
static int f_accept(lua_State *L) {
  int lfd = (int)luaL_checkinteger(L, 1);
  int fd;
  do fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) return 0;
    lua_pushnil(L);
    lua_pushfstring(L, "attach: accept: %s", strerror(errno));
    return 2;
  }
  struct ucred cred;
  socklen_t clen = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
      (cred.uid != geteuid() && cred.uid != 0)) {
    close(fd);
    return refuse(L, "attach: refused a connection from another user");
  }
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  lua_pushinteger(L, fd);
  return 1;
}

/* mg._unix_connect(path) --> fd, or nil, message, reason: "missing" (no
 * socket there), "refused" (a socket nobody listens on) or "error". */
static int f_connect(lua_State *L) {
  struct sockaddr_un addr;
  const char *path = check_path(L, 1, &addr);
  struct stat st;
  if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
    lua_pushnil(L);
    lua_pushfstring(L, "attach: %s is not a socket (a job started with --listen=PATH "
                    "makes one)", path);
    lua_pushliteral(L, "error");
    return 3;
  }
  int fd = connect_to(&addr);
  if (fd >= 0) {
    lua_pushinteger(L, fd);
    return 1;
  }
  int e = errno;
  fail(L, "cannot connect to", path);
  lua_pushstring(L, e == ENOENT ? "missing" : e == ECONNREFUSED ? "refused" : "error");
  return 3;
}

/* mg._unix_unlink(path): removes path if it is a socket; anything else
 * there is left alone. */
static int f_unlink(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
  return 0;
}

/* mg._unix_is_socket(path) --> whether path is a socket. */
static int f_is_socket(lua_State *L) {
  struct stat st;
  lua_pushboolean(L, lstat(luaL_checkstring(L, 1), &st) == 0 && S_ISSOCK(st.st_mode));
  return 1;
}

/* mg._uid() --> the effective user id (the default socket directory's name). */
static int f_uid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)geteuid());
  return 1;
}

const luaL_Reg mgl_attach_functions[] = {
    {"_unix_private_dir", f_private_dir}, {"_unix_listen", f_listen},
    {"_unix_accept", f_accept},           {"_unix_connect", f_connect},
    {"_unix_unlink", f_unlink},           {"_unix_is_socket", f_is_socket},
    {"_uid", f_uid},                      {NULL, NULL}};
