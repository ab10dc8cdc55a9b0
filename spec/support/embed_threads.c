/*
 * embed_threads.c — four moongrad states trained at once on four host
 * threads, each with two OpenMP threads of its own (threaded elementwise
 * loops and BLAS), and then the same four trainings one after another on
 * the main thread. Each state's results depend only on its seed, so the two
 * runs must agree bit for bit. Prints one line per seed and run, then
 * "same" or "DIFFERENT"; exits 0 only when all agree.
 *
 * Built with ThreadSanitizer (make test-tsan), each state runs its loops on
 * one thread: libgomp is not instrumented, and ThreadSanitizer would take
 * the work its threads share for races. The host threads still run at once.
 *
 *   build/tests/embed_threads
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "moongrad.h"

#define N_STATES 4

#ifdef __SANITIZE_THREAD__
#define OMP_THREADS 1
#else
#define OMP_THREADS 2
#endif

/* A 64-256-10 MLP on random data from the seed: big enough that its loops
 * (256 x 512 activations) and gemms run on both threads; then a small CNN,
 * whose per-sample gemms run inside moongrad's parallel regions. */
static const char *const train_code =
    "local mg = require 'moongrad'\n"
    "local nn = require 'moongrad.nn'\n"
    "local F = require 'moongrad.functional'\n"
    "local optim = require 'moongrad.optim'\n"
    "function train(seed)\n"
    "  mg.manual_seed(seed)\n"
    "  local x, y = mg.randn(512, 64), mg.randint(1, 10, {512})\n"
    "  local net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.1),\n"
    "                            nn.Linear(256, 10))\n"
    "  local opt = optim.Adam(net, {lr = 1e-3})\n"
    "  local loss\n"
    "  for _ = 1, 30 do\n"
    "    opt:zero_grad()\n"
    "    loss = F.cross_entropy(net(x), y)\n"
    "    loss:backward()\n"
    "    opt:step()\n"
    "  end\n"
    "  -- and a small CNN: gemms inside moongrad's own parallel regions\n"
    "  local img, cls = mg.randn(32, 1, 12, 12), mg.randint(1, 10, {32})\n"
    "  local cnn = nn.Sequential(nn.Conv2d(1, 8, 3, {padding = 1}), nn.ReLU(),\n"
    "                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(288, 10))\n"
    "  local copt = optim.SGD(cnn, {lr = 0.05, momentum = 0.9})\n"
    "  for _ = 1, 10 do\n"
    "    copt:zero_grad()\n"
    "    F.cross_entropy(cnn(img), cls):backward()\n"
    "    copt:step()\n"
    "  end\n"
    "  local sum = 0\n"
    "  for _, p in ipairs(net:parameters()) do sum = sum + p:double():abs():sum():item() end\n"
    "  for _, p in ipairs(cnn:parameters()) do sum = sum + p:double():abs():sum():item() end\n"
    "  return loss:item(), sum\n"
    "end\n";

typedef struct {
  int seed;
  double loss, checksum; /* the results */
  char error[512];       /* empty when it worked */
} Job;

static void *train(void *arg) {
  Job *job = arg;
  moongrad_Options opt = {.num_threads = OMP_THREADS, .memory_budget = 512u << 20,
                          .error = job->error, .error_size = sizeof job->error};
  lua_State *L = moongrad_new(&opt);
  if (!L) return NULL;
  if (moongrad_dostring(L, train_code, "=train") == MOONGRAD_OK) {
    lua_getglobal(L, "train");
    lua_pushinteger(L, job->seed);
    if (moongrad_pcall(L, 1, 2) == MOONGRAD_OK) {
      job->loss = lua_tonumber(L, -2);
      job->checksum = lua_tonumber(L, -1);
      lua_pop(L, 2);
    } else {
      snprintf(job->error, sizeof job->error, "%s", moongrad_last_error(L));
    }
  } else {
    snprintf(job->error, sizeof job->error, "%s", moongrad_last_error(L));
  }
  moongrad_close(L);
  return NULL;
}

static int report(const char *run, const Job *jobs) {
  int failed = 0;
  for (int i = 0; i < N_STATES; i++) {
    if (jobs[i].error[0]) {
      printf("%s seed %d: error: %s\n", run, jobs[i].seed, jobs[i].error);
      failed = 1;
    } else {
      printf("%s seed %d: loss %.17g checksum %.17g\n", run, jobs[i].seed,
             jobs[i].loss, jobs[i].checksum);
    }
  }
  return failed;
}

int main(void) {
  Job together[N_STATES], alone[N_STATES];
  pthread_t threads[N_STATES];
  memset(together, 0, sizeof together);
  memset(alone, 0, sizeof alone);
  for (int i = 0; i < N_STATES; i++) together[i].seed = alone[i].seed = i + 1;

  for (int i = 0; i < N_STATES; i++)
    if (pthread_create(&threads[i], NULL, train, &together[i]) != 0) {
      printf("cannot start thread %d\n", i);
      return 1;
    }
  for (int i = 0; i < N_STATES; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < N_STATES; i++) train(&alone[i]);

  int failed = report("threads", together) | report("sequential", alone);
  int same = !failed;
  for (int i = 0; i < N_STATES && same; i++)
    same = together[i].loss == alone[i].loss &&
           together[i].checksum == alone[i].checksum;
  for (int i = 1; i < N_STATES && same; i++)
    same = together[i].loss != together[0].loss; /* the seeds do matter */
  printf("%s\n", same ? "same" : "DIFFERENT");
  return same ? 0 : 1;
}
