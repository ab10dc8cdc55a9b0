/*
 * lua_signal.c — SIGINT and SIGTERM as a request to stop, for train.fit.
 *
 * fit must finish the step it is in, write its checkpoint and then stop,
 * so its handlers only note which signal came (an async-signal-safe store)
 * and fit polls the note between batches. The first signal also puts the
 * previous handler back (sigaction is async-signal-safe), so a second one
 * is handled the old way: the REPL's hook raises "interrupted!", a script
 * run without one dies.
 *
 * Signal dispositions belong to the process, so the note and the saved
 * handlers are the statics of this file; one fit holds them at a time (a
 * nested catch is a no-op that returns false).
 */
#include <signal.h>
#include <string.h>

#include "lua_bind.h"

static const int caught_signals[] = {SIGINT, SIGTERM};
#define NCAUGHT 2

static volatile sig_atomic_t pending;   /* the first signal caught, or 0 */
static volatile sig_atomic_t installed; /* our handlers are in place */
static struct sigaction previous[NCAUGHT]; /* what catch replaced */

static void on_signal(int sig) {
  for (int i = 0; i < NCAUGHT; i++)
    if (caught_signals[i] == sig) sigaction(sig, &previous[i], NULL);
  if (!pending) pending = sig;
}

static const char *signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal";
}

/* mg._signals_catch() -> true, or false when already caught. Installs the
 * handlers and clears the note. */
static int f_catch(lua_State *L) {
  if (installed) {
    lua_pushboolean(L, 0);
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < NCAUGHT; i++) sigaddset(&sa.sa_mask, caught_signals[i]);
  sa.sa_flags = SA_RESTART; /* reads and writes of the step go on */
  pending = 0;
  for (int i = 0; i < NCAUGHT; i++)
    sigaction(caught_signals[i], &sa, &previous[i]);
  installed = 1;
  lua_pushboolean(L, 1);
  return 1;
}

/* mg._signals_pending() -> "SIGINT" | "SIGTERM" | nil */
static int f_pending(lua_State *L) {
  int sig = pending;
  if (sig) lua_pushstring(L, signal_name(sig));
  else lua_pushnil(L);
  return 1;
}

/* mg._signals_clear(): forgets the signal noted (fit has acted on it). */
static int f_clear(lua_State *L) {
  (void)L;
  pending = 0;
  return 0;
}

/* mg._signals_restore(): the handlers from before catch come back. A signal
 * noted but not acted on (it came after fit's last look) is raised again,
 * for them. A no-op when nothing is caught. */
static int f_restore(lua_State *L) {
  (void)L;
  if (!installed) return 0;
  for (int i = 0; i < NCAUGHT; i++) sigaction(caught_signals[i], &previous[i], NULL);
  installed = 0;
  int sig = pending;
  pending = 0;
  if (sig) raise(sig);
  return 0;
}

/* mg._signals_raise(name): sends the process SIGINT or SIGTERM (specs). */
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
