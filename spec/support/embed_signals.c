/*
 * embed_signals.c — SIGINT and SIGTERM in a host that runs several moongrad
 * states on several threads (runtime/lua_signal.c), run by
 * spec/embed_spec.lua. The host has SIGINT and SIGTERM handlers of its own
 * that count, so a signal that reaches the host is seen rather than ending
 * the process. One line per check, "ok <name>" or "FAIL <name>: <why>", and
 * exit status 1 when any failed.
 *
 *   build/tests/embed_signals
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed_check.h"
#include "moongrad.h"

/* ---- the host's own handlers ------------------------------------------------ */

static volatile sig_atomic_t host_count[2]; /* SIGINT's, SIGTERM's */

static void on_host_signal(int sig) { host_count[sig == SIGTERM]++; }

static void install_host_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_host_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* Are the host's handlers the ones in place for both signals? */
static int host_handlers_in_place(void) {
  struct sigaction a, b;
  sigaction(SIGINT, NULL, &a);
  sigaction(SIGTERM, NULL, &b);
  return a.sa_handler == on_host_signal && b.sa_handler == on_host_signal &&
         !(a.sa_flags & SA_SIGINFO) && !(b.sa_flags & SA_SIGINFO);
}

/* ---- what the states' Lua code may call ---------------------------------- */

static pthread_barrier_t meet; /* the threads of a check */

/* barrier(): waits for the other threads of the check to come here too. */
static int l_barrier(lua_State *L) {
  (void)L;
  pthread_barrier_wait(&meet);
  return 0;
}

/* host_signals("SIGINT" | "SIGTERM") -> how many reached the host. */
static int l_host_signals(lua_State *L) {
  lua_pushinteger(L, host_count[strcmp(lua_tostring(L, 1), "SIGTERM") == 0]);
  return 1;
}

/* fit_with(path, epochs, callback) -> pcall(train.fit, ...) on a small
 * problem: 32 rows in batches of 8, a checkpoint at path. */
static const char *const setup_code =
    "mg = require 'moongrad'\n"
    "local nn, optim = require 'moongrad.nn', require 'moongrad.optim'\n"
    "local data, train = require 'moongrad.data', require 'moongrad.train'\n"
    "function fit_with(path, epochs, callback)\n"
    "  mg.manual_seed(1)\n"
    "  local x, y = mg.randn(32, 4), mg.randint(1, 3, {32})\n"
    "  local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 8})\n"
    "  local model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))\n"
    "  return pcall(train.fit, model, {train = loader, optimizer = optim.SGD(model, {lr = 0.1}),\n"
    "    epochs = epochs, progress = 'quiet', checkpoint = {path = path},\n"
    "    callbacks = {callback}})\n"
    "end\n";

static char dir[] = "/tmp/moongrad-signals-XXXXXX";

/* A state with the helpers above, role (1 or 2) and a checkpoint path of
 * its own in the global `path`; NULL (and a FAIL line) if it cannot be made. */
static lua_State *new_state(int role) {
  char err[512] = "";
  moongrad_Options opt = {.num_threads = 1, .error = err, .error_size = sizeof err};
  lua_State *L = moongrad_new(&opt);
  if (!L) {
    check(0, "a state", err);
    return NULL;
  }
  lua_register(L, "barrier", l_barrier);
  lua_register(L, "host_signals", l_host_signals);
  lua_pushinteger(L, role);
  lua_setglobal(L, "role");
  char path[256];
  snprintf(path, sizeof path, "%s/ck%d.safetensors", dir, role);
  lua_pushstring(L, path);
  lua_setglobal(L, "path");
  if (moongrad_dostring(L, setup_code, "=setup") != MOONGRAD_OK) {
    check(0, "a state", moongrad_last_error(L));
    moongrad_close(L);
    return NULL;
  }
  return L;
}

/* One thread of a two-thread check: runs code in a state of its own and
 * keeps the global `result` (a string) or the error. */
typedef struct {
  int role;
  const char *code;
  char result[1024];
} Job;

static void *run_job(void *arg) {
  Job *job = arg;
  lua_State *L = new_state(job->role);
  if (!L) {
    snprintf(job->result, sizeof job->result, "(no state)");
    return NULL;
  }
  if (moongrad_dostring(L, job->code, "=job") == MOONGRAD_OK) {
    lua_getglobal(L, "result");
    snprintf(job->result, sizeof job->result, "%s",
             lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no result)");
    lua_pop(L, 1);
  } else {
    snprintf(job->result, sizeof job->result, "error: %s", moongrad_last_error(L));
  }
  moongrad_close(L);
  return NULL;
}

/* Runs code in n states on n threads at once (roles 1 to n); barrier()
 * waits for all n. */
static void run_jobs(int n, Job *jobs, const char *code) {
  pthread_t threads[8];
  pthread_barrier_init(&meet, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) {
    jobs[i].role = i + 1;
    jobs[i].code = code;
    jobs[i].result[0] = '\0';
    if (pthread_create(&threads[i], NULL, run_job, &jobs[i]) != 0) {
      printf("cannot start a thread\n");
      exit(1);
    }
  }
  for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
  pthread_barrier_destroy(&meet);
}

/* Is s fit's message for SIGTERM at epoch 1, batch 2, with role's path? */
static int interrupted_at_batch_2(const char *s, int role) {
  char want[1024], path[256];
  snprintf(path, sizeof path, "%s/ck%d.safetensors", dir, role);
  snprintf(want, sizeof want, "fit: interrupted by SIGTERM at epoch 1, batch 2; "
           "checkpoint written to %s: resume with resume = %s", path, path);
  return strcmp(s, want) == 0 && access(path, F_OK) == 0;
}

/* ---- the checks ----------------------------------------------------------- */

/* One SIGTERM while both fits listen: both stop after their step. */
static void both_stop(void) {
  Job jobs[2];
  int term = host_count[1];
  run_jobs(2, jobs,
      "local ok, err = fit_with(path, 2, {on_batch_end = function(ctx)\n"
      "  if ctx.epoch == 1 and ctx.batch == 2 then\n"
      "    barrier()                  -- both fits are listening\n"
      "    if role == 1 then mg._signals_raise('SIGTERM') end\n"
      "    barrier()\n"
      "  end\n"
      "end})\n"
      "result = ok and 'finished' or tostring(err)");
  for (int i = 0; i < 2; i++) {
    char name[128];
    snprintf(name, sizeof name, "two fits: one SIGTERM stops fit %d after its step", i + 1);
    check(interrupted_at_batch_2(jobs[i].result, i + 1), name, jobs[i].result);
  }
  check(host_count[1] == term, "two fits: the host's handler does not see the SIGTERM they took",
        "the host saw it");
  check(host_handlers_in_place(), "two fits: the host's handlers are back afterwards",
        "another handler is in place");
  raise(SIGTERM);
  check(host_count[1] == term + 1, "two fits: a later SIGTERM reaches the host",
        "it was swallowed");
}

/* Fit 1 starts first and returns first; fit 2 is still listening. */
static void one_returns(void) {
  Job jobs[2];
  int term = host_count[1];
  run_jobs(2, jobs,
      "if role == 1 then\n"
      "  local ok, err = fit_with(path, 1, {on_batch_end = function(ctx)\n"
      "    if ctx.batch <= 2 then barrier() end  -- 1: fit 2 may start; 2: it listens\n"
      "  end})\n"
      "  barrier()                                -- 3: fit 1 has returned\n"
      "  result = ok and 'finished' or tostring(err)\n"
      "else\n"
      "  barrier()                                -- 1\n"
      "  local ok, err = fit_with(path, 1, {on_batch_end = function(ctx)\n"
      "    if ctx.batch == 1 then barrier() end   -- 2\n"
      "    if ctx.batch == 2 then barrier() mg._signals_raise('SIGTERM') end -- 3\n"
      "  end})\n"
      "  result = ok and 'finished' or tostring(err)\n"
      "end");
  check(strcmp(jobs[0].result, "finished") == 0,
        "a fit that returns first: it finishes", jobs[0].result);
  check(interrupted_at_batch_2(jobs[1].result, 2),
        "a fit that returns first: the other fit still stops on SIGTERM", jobs[1].result);
  check(host_count[1] == term, "a fit that returns first: the host does not see the SIGTERM",
        "the host saw it");
  check(host_handlers_in_place(), "a fit that returns first: the host's handlers are back",
        "another handler is in place");
}

/* Four states start and stop listening as fast as they can. */
static void many_at_once(void) {
  enum { N = 4 };
  Job jobs[N];
  run_jobs(N, jobs,
      "barrier()\n"
      "for i = 1, 20000 do\n"
      "  assert(mg._signals_catch(), 'catch')\n"
      "  assert(not mg._signals_catch(), 'nested catch')\n"
      "  mg._signals_restore()\n"
      "end\n"
      "result = 'done'");
  int done = 1;
  for (int i = 0; i < N; i++)
    if (strcmp(jobs[i].result, "done") != 0) {
      done = 0;
      printf("  state %d: %s\n", i + 1, jobs[i].result);
    }
  check(done, "four states catching and restoring at once: each catches its own", "see above");
  check(host_handlers_in_place(), "four states catching and restoring at once: the host's "
        "handlers are back after the last", "another handler is in place");
  int term = host_count[1];
  raise(SIGTERM);
  check(host_count[1] == term + 1, "four states catching and restoring at once: a later "
        "SIGTERM reaches the host", "it was swallowed");
}

/* One state: what the single-fit behaviour always was. */
static void one_state(void) {
  lua_State *L = new_state(1);
  if (!L) return;
  int ok = moongrad_dostring(L,
      "local n0 = host_signals('SIGINT')\n"
      "mg._signals_raise('SIGINT')               -- nobody listens\n"
      "none = host_signals('SIGINT') == n0 + 1\n"
      "assert(mg._signals_catch())\n"
      "mg._signals_raise('SIGINT')               -- noted\n"
      "noted = mg._signals_pending() == 'SIGINT' and host_signals('SIGINT') == n0 + 1\n"
      "mg._signals_raise('SIGINT')               -- a second one: the host's\n"
      "second = host_signals('SIGINT') == n0 + 2\n"
      "mg._signals_clear()                       -- acted on\n"
      "mg._signals_raise('SIGINT')\n"
      "after_clear = host_signals('SIGINT') == n0 + 3 and mg._signals_pending() == nil\n"
      "mg._signals_restore()\n"
      "not_again = host_signals('SIGINT') == n0 + 3\n"
      "local t0 = host_signals('SIGTERM')\n"
      "assert(mg._signals_catch())\n"
      "mg._signals_raise('SIGTERM')\n"
      "mg._signals_restore()                     -- noted, never acted on\n"
      "again = host_signals('SIGTERM') == t0 + 1\n", "=one") == MOONGRAD_OK;
  const char *names[] = {"none", "noted", "second", "after_clear", "not_again", "again"};
  const char *what[] = {
      "one state: a signal while nobody listens reaches the host",
      "one state: a signal while it listens is noted, not the host's",
      "one state: a second signal before it acts reaches the host",
      "one state: a signal after it acted reaches the host",
      "one state: a signal acted on is not raised again",
      "one state: a signal noted but not acted on is raised again for the host"};
  for (int i = 0; i < 6; i++) {
    lua_getglobal(L, names[i]);
    check(ok && lua_toboolean(L, -1), what[i], ok ? "no" : moongrad_last_error(L));
    lua_pop(L, 1);
  }
  moongrad_close(L);
  check(host_handlers_in_place(), "one state: the host's handlers are back",
        "another handler is in place");
}

/* A state closed while it listens (a coroutine never finished, a host
 * that gives up on a state) stops listening. */
static void closed_listening(void) {
  lua_State *L = new_state(1);
  if (!L) return;
  int ok = moongrad_dostring(L, "assert(mg._signals_catch())", "=catch") == MOONGRAD_OK;
  moongrad_close(L);
  check(ok && host_handlers_in_place(),
        "a state closed while listening: the host's handlers are back",
        ok ? "another handler is in place" : "catch failed");
  int term = host_count[1];
  raise(SIGTERM);
  check(host_count[1] == term + 1, "a state closed while listening: a later SIGTERM "
        "reaches the host", "it was swallowed");
}

int main(void) {
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  install_host_handlers();
  one_state();
  both_stop();
  one_returns();
  many_at_once();
  closed_listening();
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
  if (system(rm) != 0) printf("could not remove %s\n", dir);
  printf("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}
