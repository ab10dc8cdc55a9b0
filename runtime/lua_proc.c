/*
 * lua_proc.c — worker processes for moongrad.tune and the DataLoader: fork,
 * a socket to talk over, waiting and signals. POSIX only; nothing here
 * touches tensors (a loader's batches travel through lua_shm.c's slots).
 *
 * Registered with a leading underscore (mg._proc_spawn, ...): the public
 * surface is moongrad.tune's `workers` option and the DataLoader's
 * `num_workers`. A worker is forked from the running Lua state, so it
 * starts with everything the parent had loaded (a data set is shared
 * copy-on-write) and talks to the parent over one AF_UNIX stream socket
 * pair. Sends use MSG_NOSIGNAL: a worker that died makes send return an
 * error instead of killing the parent with SIGPIPE.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/wait.h>
#include <unistd.h>

#include <omp.h>

#include "lua_bind.h"
#include "mg_file.h"

static int fail(lua_State *L, const char *what) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(errno));
  return 2;
}

static int check_fd(lua_State *L, int arg) {
  lua_Integer fd = luaL_checkinteger(L, arg);
  if (fd < 0 || fd > 1 << 20) luaL_argerror(L, arg, "not a descriptor");
  return (int)fd;
}

/* SIGINT and SIGTERM as a set. */
static void stop_signals(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
}

/* mg._proc_spawn([{quiet_signals = true}]) --> pid, fd in the parent; 0,
 * fd in the child; nil, message when fork or socketpair fails.
 * quiet_signals: the child ignores SIGINT and SIGTERM. A DataLoader worker
 * wants that: Ctrl-C reaches the whole process group, and the parent (fit
 * finishing its step and writing its checkpoint) decides when its workers
 * end. The two are blocked across the fork, so none reaches the child
 * before it ignores them (one that came meanwhile is the parent's). */
static int f_spawn(lua_State *L) {
  int quiet = 0;
  if (!lua_isnoneornil(L, 1)) {
    static const char *const known[] = {"quiet_signals", NULL};
    mgl_check_options(L, 1, known, "_proc_spawn");
    quiet = mgl_optbool_field(L, 1, "quiet_signals", 0, "_proc_spawn");
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return fail(L, "socketpair");
  fflush(NULL); /* buffered output would otherwise be written twice */
  /* libgomp's thread pool does not survive fork: a child that starts a
   * parallel region waits for ever on pool threads that exist only in the
   * parent. Pausing releases the pool (joins its threads); each process
   * builds a fresh one on its next parallel region. */
  omp_pause_resource_all(omp_pause_hard);
  sigset_t stops, old;
  stop_signals(&stops);
  if (quiet) pthread_sigmask(SIG_BLOCK, &stops, &old);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    if (quiet) pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(sv[0]);
    close(sv[1]);
    errno = e;
    return fail(L, "fork");
  }
  if (pid == 0) {
    close(sv[0]);
    if (quiet) {
      struct sigaction ign;
      memset(&ign, 0, sizeof ign);
      ign.sa_handler = SIG_IGN;
      sigemptyset(&ign.sa_mask);
      sigaction(SIGINT, &ign, NULL);
      sigaction(SIGTERM, &ign, NULL);
      pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
#ifdef __linux__
    /* A study or a training run killed outright (SIGKILL, SIGTERM) takes
     * its workers with it instead of leaving them to work for nobody. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1); /* the parent died before prctl */
#endif
    lua_pushinteger(L, 0);
    lua_pushinteger(L, sv[1]);
  } else {
    if (quiet) pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    lua_pushinteger(L, pid);
    lua_pushinteger(L, sv[0]);
  }
  return 2;
}

/* mg._proc_send(fd, string) --> true, or nil, message */
static int f_send(lua_State *L) {
  int fd = check_fd(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  while (len > 0) {
    ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(L, "send");
    }
    s += n;
    len -= (size_t)n;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* mg._proc_recv(fd) --> what is available (blocks until something is);
 * "" at end of stream; nil, message on error. */
static int f_recv(lua_State *L) {
  int fd = check_fd(L, 1);
  char buf[65536];
  ssize_t n;
  do n = recv(fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return fail(L, "recv");
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

/* mg._proc_poll({fd, ...}, timeout_ms) --> {fd, ...} readable or closed.
 * A negative timeout waits for ever; an interrupted wait returns {}. */
static int f_poll(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int timeout = (int)luaL_optinteger(L, 2, -1);
  lua_Integer len = luaL_len(L, 1);
  if (len < 0 || len > 1024) return luaL_error(L, "_proc_poll: at most 1024 descriptors");
  struct pollfd p[1024];
  int n = (int)len;
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    p[i].fd = (int)luaL_checkinteger(L, -1);
    p[i].events = POLLIN;
    p[i].revents = 0;
    lua_pop(L, 1);
  }
  int r = poll(p, (nfds_t)len, timeout);
  lua_createtable(L, r > 0 ? r : 0, 0);
  if (r < 0 && errno != EINTR) return fail(L, "poll");
  int k = 0;
  for (int i = 0; r > 0 && i < n; i++)
    if (p[i].revents) {
      lua_pushinteger(L, p[i].fd);
      lua_rawseti(L, -2, ++k);
    }
  return 1;
}

/* mg._proc_wait(pid [, block]) --> nil while it runs (without block);
 * "exit", code or "signal", number, name once it has ended. */
static int f_wait(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int status, flags = lua_toboolean(L, 2) ? 0 : WNOHANG;
  pid_t r;
  do r = waitpid(pid, &status, flags);
  while (r < 0 && errno == EINTR);
  if (r < 0) return fail(L, "waitpid");
  if (r == 0) return 0;
  if (WIFEXITED(status)) {
    lua_pushliteral(L, "exit");
    lua_pushinteger(L, WEXITSTATUS(status));
    return 2;
  }
  lua_pushliteral(L, "signal");
  lua_pushinteger(L, WTERMSIG(status));
  lua_pushstring(L, strsignal(WTERMSIG(status)));
  return 3;
}

/* mg._proc_kill(pid, "TERM" | "KILL" | "INT") --> true, or nil, message */
static int f_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  static const char *const names[] = {"TERM", "KILL", "INT", NULL};
  static const int sigs[] = {SIGTERM, SIGKILL, SIGINT};
  int which = luaL_checkoption(L, 2, "TERM", names);
  if (pid <= 0) return luaL_argerror(L, 1, "not a process id");
  if (kill(pid, sigs[which]) != 0) return fail(L, "kill");
  lua_pushboolean(L, 1);
  return 1;
}

static int f_close(lua_State *L) {
  close(check_fd(L, 1));
  return 0;
}

/* mg._proc_exit(code): ends a worker at once, without closing the Lua
 * state or running the parent's exit handlers it inherited. */
static int f_exit(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 0);
  fflush(NULL);
  _exit(code);
  return 0;
}

/* mg._proc_redirect(path): the worker's stdout and stderr go to path, a
 * regular file (a FIFO or a device there is refused, never written). */
static int f_redirect(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  if (strlen(path) != len)
    return luaL_error(L, "tune: the log path contains a NUL byte");
  fflush(NULL);
  int fd;
  if (mg_file_open_log(ctx, "tune: trial log", path, &fd) != MG_OK) {
    lua_pushnil(L);
    lua_pushstring(L, mg_last_error(ctx));
    return 2;
  }
  dup2(fd, 1);
  dup2(fd, 2);
  close(fd);
  lua_pushboolean(L, 1);
  return 1;
}

/* mg._cpu_count() --> the CPUs this process may run on. */
static int f_cpu_count(lua_State *L) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

static int f_getpid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

/* mg._open_fd_count() -> the file descriptors this process has open, or
 * nil where /proc/self/fd is missing. For specs that check nothing leaks:
 * counting with `ls` through popen would count popen's own pipe, whose
 * child end the parent may not have closed yet when ls looks. */
static int f_open_fd_count(lua_State *L) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  lua_pushinteger(L, n - 1); /* the directory's own descriptor */
  return 1;
}

const luaL_Reg mgl_proc_functions[] = {
    {"_proc_spawn", f_spawn},       {"_proc_send", f_send},
    {"_proc_recv", f_recv},         {"_proc_poll", f_poll},
    {"_proc_wait", f_wait},         {"_proc_kill", f_kill},
    {"_proc_close", f_close},       {"_proc_exit", f_exit},
    {"_proc_redirect", f_redirect}, {"_cpu_count", f_cpu_count},
    {"_getpid", f_getpid},          {"_open_fd_count", f_open_fd_count},
    {NULL, NULL}};
