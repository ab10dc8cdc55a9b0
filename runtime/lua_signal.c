/*
 * lua_signal.c — SIGINT and SIGTERM as a request to stop, for train.fit.
 *
 * fit must finish the step it is in, write its checkpoint and then stop,
 * so the handler only notes which signal came and fit polls the note
 * between batches. Any number of Lua states on any threads may listen at
 * once (a host training several models): each state has its own note, and
 * a signal is noted in every state that listens and holds no note yet, so
 * every fit running stops. A signal that no state takes -- none listens,
 * or each already holds a signal or has acted on one -- goes on to the
 * handler that was in place before the first state listened, as if
 * moongrad were not there: a second Ctrl-C is handled the old way (the
 * REPL's hook raises "interrupted!", a script run without one dies).
 *
 * Dispositions belong to the process. Listening states are counted under a
 * mutex: the first one installs the handler and keeps the host's, the last
 * one puts the host's back. The handler takes no lock (it may interrupt a
 * thread holding it): it walks the list of listening states, and reads the
 * host's handler, through lock-free atomics only.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "lua_bind.h"

/* What the handler touches must be lock-free to be async-signal-safe. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_POINTER_LOCK_FREE == 2 &&
               ATOMIC_LONG_LOCK_FREE == 2, "lock-free atomics");

static const int caught_signals[] = {SIGINT, SIGTERM};
#define NCAUGHT 2

enum { OPEN = 0, ACTED = -1 }; /* a Listener's note, besides a signal */

/* One state's part: a userdata in its registry, linked into the process's
 * list while the state listens. */
typedef struct Listener {
  struct Listener *_Atomic next; /* the next listening state */
  atomic_int note;               /* OPEN, the signal noted, or ACTED */
  int linked;                    /* in the list (changed under `lock`) */
} Listener;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int users;                      /* listening states (under lock) */
static struct sigaction host[NCAUGHT]; /* what the first one replaced (lock) */

static Listener *_Atomic listeners;        /* the listening states */
static atomic_int walking;                 /* handlers walking that list now */
static atomic_uintptr_t host_fn[NCAUGHT];  /* host[i]'s handler, for on_signal */
static atomic_int host_flags[NCAUGHT];     /* and its sa_flags */

static int slot_of(int sig) { return sig == SIGTERM; }

/* Does what the host's disposition for sig says, from inside a handler
 * where sig is blocked. */
static void pass_on(int sig, siginfo_t *info, void *uc) {
  int i = slot_of(sig);
  uintptr_t fn = atomic_load(&host_fn[i]);
  if (fn == (uintptr_t)SIG_IGN) return;
  if (fn == (uintptr_t)SIG_DFL) {
    /* The default of both is to end the process: sig, raised again, does
     * that as soon as the handler returns and unblocks it. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig);
  } else if (atomic_load(&host_flags[i]) & SA_SIGINFO) {
    ((void (*)(int, siginfo_t *, void *))fn)(sig, info, uc);
  } else {
    ((void (*)(int))fn)(sig);
  }
}

static void on_signal(int sig, siginfo_t *info, void *uc) {
  int saved_errno = errno;
  int taken = 0;
  atomic_fetch_add(&walking, 1);
  for (Listener *l = atomic_load(&listeners); l; l = atomic_load(&l->next)) {
    int open = OPEN;
    if (atomic_compare_exchange_strong(&l->note, &open, sig)) taken = 1;
  }
  atomic_fetch_sub(&walking, 1);
  if (!taken) pass_on(sig, info, uc);
  errno = saved_errno;
}

static int is_ours(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_signal;
}

/* Under lock, for the first listener: keeps the host's handlers (for
 * on_signal first, so it never runs without them), then installs ours. A
 * host that put our handler back after we had left keeps the handlers we
 * kept from it before. */
static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < NCAUGHT; i++) sigaddset(&sa.sa_mask, caught_signals[i]);
  sa.sa_flags = SA_SIGINFO | SA_RESTART; /* reads and writes of the step go on */
  for (int i = 0; i < NCAUGHT; i++) {
    struct sigaction old;
    sigaction(caught_signals[i], NULL, &old);
    if (!is_ours(&old)) {
      host[i] = old;
      atomic_store(&host_fn[i], old.sa_flags & SA_SIGINFO
                                    ? (uintptr_t)old.sa_sigaction
                                    : (uintptr_t)old.sa_handler);
      atomic_store(&host_flags[i], old.sa_flags);
    }
    sigaction(caught_signals[i], &sa, NULL);
  }
}

/* Under lock, for the last listener: the host's handlers come back. */
static void uninstall(void) {
  for (int i = 0; i < NCAUGHT; i++) sigaction(caught_signals[i], &host[i], NULL);
}

/* Does a listening state hold a signal, or has it acted on one? */
static int another_took_one(void) {
  pthread_mutex_lock(&lock);
  int took = 0;
  for (Listener *l = atomic_load(&listeners); l && !took; l = atomic_load(&l->next))
    took = atomic_load(&l->note) != OPEN;
  pthread_mutex_unlock(&lock);
  return took;
}

/* The state stops listening. A signal it noted but did not act on (it came
 * after fit's last look) is raised again, for whoever takes it now -- unless
 * another listening state took one as well: that state's fit answers it. */
static void stop_listening(Listener *l) {
  pthread_mutex_lock(&lock);
  if (!l->linked) {
    pthread_mutex_unlock(&lock);
    return;
  }
  Listener *_Atomic *link = &listeners;
  while (atomic_load(link) != l) link = &atomic_load(link)->next;
  atomic_store(link, atomic_load(&l->next));
  l->linked = 0;
  if (--users == 0) uninstall();
  pthread_mutex_unlock(&lock);
  /* A handler that found l before it left the list may still be noting a
   * signal in it; the note is read once none is. */
  while (atomic_load(&walking) > 0) sched_yield();
  int note = atomic_exchange(&l->note, OPEN);
  if (note > 0 && !another_took_one()) raise(note);
}

static const char listener_key = 0; /* the registry's key (its address) */

/* __gc of the Listener: a state closed while it listens stops listening. */
static int listener_gc(lua_State *L) {
  stop_listening(lua_touserdata(L, 1));
  return 0;
}

/* The state's Listener, made when make is set; else NULL if it has none. */
static Listener *state_listener(lua_State *L, int make) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &listener_key);
  Listener *l = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (l || !make) return l;
  l = lua_newuserdatauv(L, sizeof *l, 0);
  atomic_init(&l->next, NULL);
  atomic_init(&l->note, OPEN);
  l->linked = 0;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, listener_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &listener_key);
  return l;
}

static const char *signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal";
}

/* mg._signals_catch() -> true, or false when this state already listens.
 * The state listens from here on, with no signal noted. */
static int f_catch(lua_State *L) {
  Listener *l = state_listener(L, 1); /* may raise, before anything changed */
  pthread_mutex_lock(&lock);
  int was = l->linked;
  if (!was) {
    atomic_store(&l->note, OPEN);
    /* Into the list before the handler exists: no signal goes unnoted. */
    atomic_store(&l->next, atomic_load(&listeners));
    atomic_store(&listeners, l);
    l->linked = 1;
    if (users++ == 0) install();
  }
  pthread_mutex_unlock(&lock);
  lua_pushboolean(L, !was);
  return 1;
}

/* mg._signals_pending() -> "SIGINT" | "SIGTERM" | nil: the signal this
 * state noted and has not acted on. */
static int f_pending(lua_State *L) {
  Listener *l = state_listener(L, 0);
  int sig = l ? atomic_load(&l->note) : OPEN;
  if (sig > 0) lua_pushstring(L, signal_name(sig));
  else lua_pushnil(L);
  return 1;
}

/* mg._signals_clear(): fit has acted on the signal noted. Until the state
 * stops listening it takes no other: a second one goes to the host's
 * handler. */
static int f_clear(lua_State *L) {
  Listener *l = state_listener(L, 0);
  if (l) atomic_store(&l->note, ACTED);
  return 0;
}

/* mg._signals_restore(): the state stops listening (see stop_listening);
 * after the last one, the handlers from before the first are back. A no-op
 * when the state does not listen. */
static int f_restore(lua_State *L) {
  Listener *l = state_listener(L, 0);
  if (l) stop_listening(l);
  return 0;
}

/* mg._signals_raise(name): sends the calling thread SIGINT or SIGTERM
 * (specs). */
static int f_raise(lua_State *L) {
  static const char *const names[] = {"SIGINT", "SIGTERM", NULL};
  int i = luaL_checkoption(L, 1, NULL, names);
  raise(caught_signals[i]);
  return 0;
}

const luaL_Reg mgl_signal_functions[] = {
    {"_signals_catch", f_catch},
    {"_signals_pending", f_pending},
    {"_signals_clear", f_clear},
    {"_signals_restore", f_restore},
    {"_signals_raise", f_raise},
    {NULL, NULL}};
