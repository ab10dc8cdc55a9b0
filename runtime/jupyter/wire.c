/*
 * wire.c — the Jupyter kernel's transport: moongrad.jupyter_wire.
 *
 * The five ZeroMQ sockets of the Jupyter messaging protocol (5.3), their
 * signed multipart framing, the heartbeat, and the capture of the process's
 * stdout and stderr as "stream" messages. What the messages mean is Lua's
 * business (lua/moongrad/jupyter.lua); this file only moves signed frames.
 *
 * A message on the wire is
 *   [identities...] "<IDS|MSG>" signature header parent metadata content [buffers...]
 * where signature is the hex HMAC-SHA256 of the four JSON parts under the
 * connection file's key (an empty key: no signature). Received messages
 * whose signature does not match are refused, never decoded.
 *
 * Threads: the heartbeat echoes on its own socket; a reader takes what the
 * process writes to file descriptors 1 and 2 (Lua's print, io.write, C's
 * printf alike) through pipes and publishes it on iopub. The iopub socket is
 * shared by that reader and the Lua side, under a mutex. Everything else
 * runs on the thread that opened the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zmq.h>

#define WIRE_MT "moongrad.jupyter_wire"
#define DELIM "<IDS|MSG>"
#define PROTOCOL "5.3"

enum { SHELL, CONTROL, STDIN, IOPUB, HB, NSOCK };
static const char *const channel_names[] = {"shell", "control", "stdin", "iopub", "hb"};
static const char *const port_fields[] = {"shell_port", "control_port", "stdin_port",
                                          "iopub_port", "hb_port"};
static const int socket_types[] = {ZMQ_ROUTER, ZMQ_ROUTER, ZMQ_ROUTER, ZMQ_PUB, ZMQ_REP};

typedef struct {
  void *zctx;
  void *sock[NSOCK];
  unsigned char key[256];
  size_t keylen;
  char session[33];
  unsigned long counter;
  pthread_t hb_thread;
  int hb_running;
  /* Output capture. */
  pthread_mutex_t iopub_lock; /* the iopub socket and parent */
  char *parent;               /* the header of the request being served */
  int capturing;
  int saved_fd[2];            /* the process's own stdout and stderr */
  int pipe_rd[2];             /* read ends of the pipes now on fds 1 and 2 */
  int wake[2];                /* main -> reader: drain now (byte) or stop (EOF) */
  pthread_t reader;
  pthread_mutex_t drain_lock;
  pthread_cond_t drained_cond;
  unsigned long drain_asked, drain_done;
  char pending[2][4];         /* an incomplete UTF-8 sequence per stream */
  size_t npending[2];
  int closed;
} Wire;

/* ---- signing ---------------------------------------------------------------- */

/* hex HMAC-SHA256 of the parts under the key into out[65]; "" without a key. */
static int sign(const Wire *w, const char *const *parts, const size_t *lens, int n,
                char out[65]) {
  out[0] = '\0';
  if (w->keylen == 0) return 1;
  unsigned char mac[32];
  size_t maclen = 0;
  int ok = 0;
  EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                         OSSL_PARAM_construct_end()};
  if (c && EVP_MAC_init(c, w->key, w->keylen, params)) {
    ok = 1;
    for (int i = 0; i < n && ok; i++)
      ok = EVP_MAC_update(c, (const unsigned char *)parts[i], lens[i]);
    ok = ok && EVP_MAC_final(c, mac, &maclen, sizeof mac) && maclen == 32;
  }
  EVP_MAC_CTX_free(c);
  EVP_MAC_free(m);
  if (!ok) return 0;
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", mac[i]);
  return 1;
}

/* ---- sending ------------------------------------------------------------------ */

/* A new header (JSON text, malloc'd); both threads make them. */
static char *new_header(Wire *w, const char *msg_type) {
  struct timeval tv;
  struct tm tm;
  char date[64], id[80];
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  snprintf(date, sizeof date, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
  snprintf(id, sizeof id, "%s_%lu", w->session,
           __atomic_add_fetch(&w->counter, 1, __ATOMIC_RELAXED));
  cJSON *h = cJSON_CreateObject();
  cJSON_AddStringToObject(h, "msg_id", id);
  cJSON_AddStringToObject(h, "session", w->session);
  cJSON_AddStringToObject(h, "username", "moongrad");
  cJSON_AddStringToObject(h, "date", date);
  cJSON_AddStringToObject(h, "msg_type", msg_type);
  cJSON_AddStringToObject(h, "version", PROTOCOL);
  char *s = cJSON_PrintUnformatted(h);
  cJSON_Delete(h);
  return s;
}

static int send_frame(void *sock, const void *data, size_t len, int more) {
  return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) >= 0;
}

/* Sends one message. idents NULL: the message type is the (iopub) topic. */
static int send_message(Wire *w, int ch, const char *const *idents, const size_t *idlens,
                        int nid, const char *msg_type, const char *parent,
                        const char *metadata, const char *content, size_t clen) {
  char *header = new_header(w, msg_type);
  if (!header) return 0;
  const char *parts[4] = {header, parent, metadata, content};
  size_t lens[4] = {strlen(header), strlen(parent), strlen(metadata), clen};
  char sig[65];
  int ok = sign(w, parts, lens, 4, sig);
  void *s = w->sock[ch];
  if (ok) {
    if (idents == NULL) ok = send_frame(s, msg_type, strlen(msg_type), 1);
    for (int i = 0; ok && i < nid; i++) ok = send_frame(s, idents[i], idlens[i], 1);
    ok = ok && send_frame(s, DELIM, strlen(DELIM), 1) && send_frame(s, sig, strlen(sig), 1);
    for (int i = 0; ok && i < 4; i++) ok = send_frame(s, parts[i], lens[i], i < 3);
  }
  free(header);
  return ok;
}

/* ---- output capture ---------------------------------------------------------- */

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8
 * sequence (the rest waits for the next read). */
static size_t utf8_complete(const char *s, size_t n) {
  size_t i = n, back = 0;
  while (i > 0 && back < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, back++;
  if (i == 0) return n;
  unsigned char lead = (unsigned char)s[i - 1];
  size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return need > back + 1 ? i - 1 : n;
}

/* Publishes what came on stream k (0 stdout, 1 stderr) as a stream message. */
static void publish_stream(Wire *w, int k, const char *data, size_t n) {
  char buf[8192 + 8];
  size_t have = w->npending[k];
  memcpy(buf, w->pending[k], have);
  memcpy(buf + have, data, n);
  have += n;
  size_t cut = utf8_complete(buf, have);
  w->npending[k] = have - cut;
  memcpy(w->pending[k], buf + cut, have - cut);
  if (cut == 0) return;
  /* cJSON needs a terminated string; invalid bytes become U+FFFD below. */
  char *text = malloc(cut * 3 + 1), *o = text;
  if (!text) return;
  for (size_t i = 0; i < cut;) {
    unsigned char c = (unsigned char)buf[i];
    size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    int valid = len > 0 && i + len <= cut;
    for (size_t j = 1; valid && j < len; j++) valid = ((unsigned char)buf[i + j] & 0xC0) == 0x80;
    if (valid && c != 0) {
      memcpy(o, buf + i, len), o += len, i += len;
    } else {
      memcpy(o, "\xEF\xBF\xBD", 3), o += 3, i += 1;
    }
  }
  *o = '\0';
  cJSON *content = cJSON_CreateObject();
  cJSON_AddStringToObject(content, "name", k == 0 ? "stdout" : "stderr");
  cJSON_AddStringToObject(content, "text", text);
  char *cs = cJSON_PrintUnformatted(content);
  cJSON_Delete(content);
  free(text);
  if (!cs) return;
  pthread_mutex_lock(&w->iopub_lock);
  send_message(w, IOPUB, NULL, NULL, 0, "stream", w->parent ? w->parent : "{}", "{}", cs,
               strlen(cs));
  pthread_mutex_unlock(&w->iopub_lock);
  free(cs);
}

/* Reads whatever is in stream k's pipe now; returns 0 once it is empty. */
static int read_some(Wire *w, int k) {
  char buf[8192];
  ssize_t n = read(w->pipe_rd[k], buf, sizeof buf);
  if (n > 0) {
    publish_stream(w, k, buf, (size_t)n);
    return 1;
  }
  return 0;
}

static void *reader_main(void *arg) {
  Wire *w = arg;
  for (;;) {
    struct pollfd p[3] = {{w->pipe_rd[0], POLLIN, 0}, {w->pipe_rd[1], POLLIN, 0},
                          {w->wake[0], POLLIN, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; k++)
      if (p[k].revents & POLLIN) read_some(w, k);
    if (p[2].revents & (POLLIN | POLLHUP)) {
      char c;
      ssize_t n = read(w->wake[0], &c, 1);
      /* Drain: everything written before the request is in the pipes. */
      while (read_some(w, 0) || read_some(w, 1)) {}
      pthread_mutex_lock(&w->drain_lock);
      w->drain_done = w->drain_asked;
      pthread_cond_broadcast(&w->drained_cond);
      pthread_mutex_unlock(&w->drain_lock);
      if (n <= 0) break; /* the write end closed: stop */
    }
  }
  return NULL;
}

static int start_capture(Wire *w) {
  int p[2][2];
  if (pipe(p[0]) || pipe(p[1]) || pipe(w->wake)) return 0;
  for (int k = 0; k < 2; k++) {
    fflush(k == 0 ? stdout : stderr);
    w->saved_fd[k] = dup(k + 1);
    dup2(p[k][1], k + 1);
    close(p[k][1]);
    w->pipe_rd[k] = p[k][0];
    fcntl(p[k][0], F_SETFL, O_NONBLOCK);
  }
  /* Lines reach the notebook as they are printed, not when a buffer fills. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  w->capturing = pthread_create(&w->reader, NULL, reader_main, w) == 0;
  return w->capturing;
}

/* Flushes C's stdio and waits until the reader has published all of it. */
static void drain(Wire *w) {
  if (!w->capturing) return;
  fflush(stdout);
  fflush(stderr);
  pthread_mutex_lock(&w->drain_lock);
  unsigned long ticket = ++w->drain_asked;
  pthread_mutex_unlock(&w->drain_lock);
  char c = 'd';
  if (write(w->wake[1], &c, 1) != 1) return;
  pthread_mutex_lock(&w->drain_lock);
  while (w->drain_done < ticket) pthread_cond_wait(&w->drained_cond, &w->drain_lock);
  pthread_mutex_unlock(&w->drain_lock);
}

static void stop_capture(Wire *w) {
  if (!w->capturing) return;
  drain(w);
  close(w->wake[1]);
  pthread_join(w->reader, NULL);
  for (int k = 0; k < 2; k++) {
    dup2(w->saved_fd[k], k + 1);
    close(w->saved_fd[k]);
    close(w->pipe_rd[k]);
  }
  close(w->wake[0]);
  w->capturing = 0;
}

/* ---- heartbeat ----------------------------------------------------------------- */

static void *heartbeat_main(void *arg) {
  void *s = arg;
  for (;;) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, 0) < 0) {
      zmq_msg_close(&m);
      if (errno == EINTR) continue;
      break; /* ETERM: the kernel is closing */
    }
    zmq_msg_send(&m, s, 0);
  }
  zmq_close(s);
  return NULL;
}

/* ---- Lua ------------------------------------------------------------------------- */

static Wire *check_wire(lua_State *L) {
  Wire *w = luaL_checkudata(L, 1, WIRE_MT);
  if (w->closed) luaL_error(L, "jupyter kernel: the connection is closed");
  return w;
}

static int channel_arg(lua_State *L, int arg) {
  const char *name = luaL_checkstring(L, arg);
  for (int i = 0; i < NSOCK; i++)
    if (strcmp(name, channel_names[i]) == 0) return i;
  return luaL_error(L, "jupyter kernel: no channel named '%s'", name);
}

static void close_wire(Wire *w) {
  if (w->closed) return;
  stop_capture(w);
  for (int i = 0; i < NSOCK; i++)
    if (w->sock[i] && i != HB) {
      int linger = 1000;
      zmq_setsockopt(w->sock[i], ZMQ_LINGER, &linger, sizeof linger);
      zmq_close(w->sock[i]);
    }
  if (w->zctx) zmq_ctx_term(w->zctx); /* ends the heartbeat's recv with ETERM */
  if (w->hb_running) pthread_join(w->hb_thread, NULL);
  free(w->parent);
  w->closed = 1;
}

/* open(conn) -> wire: binds the five sockets that the connection table (a
 * decoded connection file) names and starts the heartbeat. */
static int l_open(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *transport = (lua_getfield(L, 1, "transport"), luaL_optstring(L, -1, "tcp"));
  const char *ip = (lua_getfield(L, 1, "ip"), luaL_optstring(L, -1, "127.0.0.1"));
  size_t keylen;
  const char *key = (lua_getfield(L, 1, "key"), luaL_optlstring(L, -1, "", &keylen));
  const char *scheme = (lua_getfield(L, 1, "signature_scheme"),
                        luaL_optstring(L, -1, "hmac-sha256"));
  if (keylen > 0 && strcmp(scheme, "hmac-sha256") != 0)
    return luaL_error(L, "jupyter kernel: signature_scheme '%s' is not supported "
                      "(only hmac-sha256)", scheme);
  if (keylen > sizeof ((Wire *)0)->key)
    return luaL_error(L, "jupyter kernel: the key is %d bytes, more than %d",
                      (int)keylen, (int)sizeof ((Wire *)0)->key);
  Wire *w = lua_newuserdatauv(L, sizeof *w, 0);
  memset(w, 0, sizeof *w);
  w->closed = 1; /* until everything below is up */
  luaL_setmetatable(L, WIRE_MT);
  memcpy(w->key, key, keylen);
  w->keylen = keylen;
  unsigned char rnd[16];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return luaL_error(L, "jupyter kernel: no random bytes");
  for (int i = 0; i < 16; i++) sprintf(w->session + 2 * i, "%02x", rnd[i]);
  pthread_mutex_init(&w->iopub_lock, NULL);
  pthread_mutex_init(&w->drain_lock, NULL);
  pthread_cond_init(&w->drained_cond, NULL);
  w->zctx = zmq_ctx_new();
  if (!w->zctx) return luaL_error(L, "jupyter kernel: zmq_ctx_new: %s", zmq_strerror(errno));
  w->closed = 0;
  for (int i = 0; i < NSOCK; i++) {
    lua_getfield(L, 1, port_fields[i]);
    if (!lua_isinteger(L, -1)) {
      close_wire(w);
      return luaL_error(L, "jupyter kernel: the connection file has no integer %s",
                        port_fields[i]);
    }
    char addr[300];
    snprintf(addr, sizeof addr, "%s://%s:%lld", transport, ip, (long long)lua_tointeger(L, -1));
    lua_pop(L, 1);
    w->sock[i] = zmq_socket(w->zctx, socket_types[i]);
    if (!w->sock[i] || zmq_bind(w->sock[i], addr) != 0) {
      int e = errno;
      close_wire(w);
      return luaL_error(L, "jupyter kernel: cannot bind the %s channel to %s: %s",
                        channel_names[i], addr, zmq_strerror(e));
    }
  }
  w->hb_running = pthread_create(&w->hb_thread, NULL, heartbeat_main, w->sock[HB]) == 0;
  lua_pushvalue(L, -1);
  return 1;
}

/* wire:poll(ms) -> "shell" | "control" | "stdin" | nil (nothing yet, or a
 * signal came). Control first: it must not wait behind shell. */
static int l_poll(lua_State *L) {
  Wire *w = check_wire(L);
  long ms = (long)luaL_optinteger(L, 2, -1);
  zmq_pollitem_t items[3] = {{w->sock[CONTROL], 0, ZMQ_POLLIN, 0},
                             {w->sock[SHELL], 0, ZMQ_POLLIN, 0},
                             {w->sock[STDIN], 0, ZMQ_POLLIN, 0}};
  int n = zmq_poll(items, 3, ms);
  if (n > 0) {
    int ch = items[0].revents ? CONTROL : items[1].revents ? SHELL : STDIN;
    lua_pushstring(L, channel_names[ch]);
    return 1;
  }
  lua_pushnil(L);
  return 1;
}

/* Receives one frame as a Lua string; returns whether more follow. */
static int recv_frame(lua_State *L, void *s, int *ok) {
  zmq_msg_t m;
  zmq_msg_init(&m);
  if (zmq_msg_recv(&m, s, 0) < 0) {
    zmq_msg_close(&m);
    *ok = 0;
    return 0;
  }
  lua_pushlstring(L, zmq_msg_data(&m), zmq_msg_size(&m));
  int more = zmq_msg_more(&m);
  zmq_msg_close(&m);
  *ok = 1;
  return more;
}

/* wire:recv(channel) -> {idents, signature, header, parent, metadata,
 * content, buffers} (JSON parts as text), or nil and why it was refused. */
static int l_recv(lua_State *L) {
  Wire *w = check_wire(L);
  int ch = channel_arg(L, 2);
  void *s = w->sock[ch];
  int base = lua_gettop(L), ok = 1, more = 1, delim = 0, nframes = 0;
  while (more) {
    luaL_checkstack(L, 2, "jupyter kernel: too many frames");
    more = recv_frame(L, s, &ok);
    if (!ok) break;
    nframes++;
    size_t len;
    const char *f = lua_tolstring(L, -1, &len);
    /* Identities are binary: compare lengths too. */
    if (!delim && len == strlen(DELIM) && memcmp(f, DELIM, len) == 0) delim = nframes;
  }
  if (!ok) {
    lua_settop(L, base);
    lua_pushnil(L);
    lua_pushfstring(L, "receive failed: %s", zmq_strerror(errno));
    return 2;
  }
  int nid = delim - 1, first = base + delim + 1; /* first part after the delimiter */
  if (!delim || nframes - delim < 5) {
    lua_settop(L, base);
    lua_pushnil(L);
    lua_pushfstring(L, "malformed message: %d frames, %s", nframes,
                    delim ? "fewer than 5 after the delimiter" : "no <IDS|MSG> delimiter");
    return 2;
  }
  const char *parts[4];
  size_t lens[4];
  for (int i = 0; i < 4; i++) parts[i] = lua_tolstring(L, first + 1 + i, &lens[i]);
  char want[65];
  size_t siglen;
  const char *sig = lua_tolstring(L, first, &siglen);
  if (!sign(w, parts, lens, 4, want) || siglen != strlen(want) ||
      CRYPTO_memcmp(sig, want, siglen) != 0) {
    lua_settop(L, base);
    lua_pushnil(L);
    lua_pushstring(L, w->keylen ? "bad signature" : "unexpected signature");
    return 2;
  }
  lua_createtable(L, 0, 7);
  int t = lua_gettop(L);
  lua_createtable(L, nid, 0);
  for (int i = 0; i < nid; i++) {
    lua_pushvalue(L, base + 1 + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, t, "idents");
  static const char *const names[] = {"header", "parent", "metadata", "content"};
  for (int i = 0; i < 4; i++) {
    lua_pushvalue(L, first + 1 + i);
    lua_setfield(L, t, names[i]);
  }
  int nbuf = nframes - delim - 5;
  lua_createtable(L, nbuf, 0);
  for (int i = 0; i < nbuf; i++) {
    lua_pushvalue(L, first + 5 + i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, t, "buffers");
  return 1;
}

/* wire:send(channel, idents | nil, msg_type, parent, content [, metadata]):
 * a new header is made here (session, msg_id, date). */
static int l_send(lua_State *L) {
  Wire *w = check_wire(L);
  int ch = channel_arg(L, 2);
  const char *msg_type = luaL_checkstring(L, 4);
  const char *parent = luaL_checkstring(L, 5);
  size_t clen;
  const char *content = luaL_checklstring(L, 6, &clen);
  const char *metadata = luaL_optstring(L, 7, "{}");
  const char *idents[64];
  size_t idlens[64];
  int nid = 0;
  if (!lua_isnil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    nid = (int)luaL_len(L, 3);
    if (nid > 64) return luaL_error(L, "jupyter kernel: %d identities, more than 64", nid);
    for (int i = 0; i < nid; i++) {
      lua_rawgeti(L, 3, i + 1);
      idents[i] = luaL_checklstring(L, -1, &idlens[i]);
      lua_pop(L, 1); /* the table keeps the string alive */
    }
  }
  if (ch == IOPUB) {
    /* An iopub message goes after the output printed before it. */
    drain(w);
    pthread_mutex_lock(&w->iopub_lock);
  }
  int ok = send_message(w, ch, lua_isnil(L, 3) ? NULL : idents, idlens, nid, msg_type,
                        parent, metadata, content, clen);
  if (ch == IOPUB) pthread_mutex_unlock(&w->iopub_lock);
  if (!ok) return luaL_error(L, "jupyter kernel: sending %s on %s failed: %s", msg_type,
                             channel_names[ch], zmq_strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

/* wire:capture(parent): from now on what the process writes to stdout and
 * stderr goes to iopub as stream messages answering parent (a header's
 * JSON text). The first call starts the capture. */
static int l_capture(lua_State *L) {
  Wire *w = check_wire(L);
  const char *parent = luaL_checkstring(L, 2);
  drain(w); /* output so far belongs to the previous parent */
  char *copy = strdup(parent);
  if (!copy) return luaL_error(L, "jupyter kernel: out of memory");
  pthread_mutex_lock(&w->iopub_lock);
  free(w->parent);
  w->parent = copy;
  pthread_mutex_unlock(&w->iopub_lock);
  if (!w->capturing && !start_capture(w))
    return luaL_error(L, "jupyter kernel: cannot capture stdout and stderr: %s",
                      strerror(errno));
  return 0;
}

/* wire:flush(): returns once everything printed so far is published. */
static int l_flush(lua_State *L) {
  drain(check_wire(L));
  return 0;
}

/* wire:log(text): a line on the kernel's own stderr (the notebook server's
 * log), not in any cell. */
static int l_log(lua_State *L) {
  Wire *w = check_wire(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  int fd = w->capturing ? w->saved_fd[1] : 2;
  dprintf(fd, "[moongrad kernel] %.*s\n", (int)n, s);
  return 0;
}

static int l_session(lua_State *L) {
  lua_pushstring(L, check_wire(L)->session);
  return 1;
}

static int l_close(lua_State *L) {
  close_wire(luaL_checkudata(L, 1, WIRE_MT));
  return 0;
}

int luaopen_moongrad_jupyter_wire(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"poll", l_poll},       {"recv", l_recv},   {"send", l_send},
      {"capture", l_capture}, {"flush", l_flush}, {"log", l_log},
      {"session", l_session}, {"close", l_close}, {NULL, NULL}};
  if (luaL_newmetatable(L, WIRE_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  return 1;
}
