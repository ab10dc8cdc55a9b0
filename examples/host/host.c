/*
 * host.c — a C program that embeds moongrad (runtime/moongrad.h): it loads
 * the model script model.lua, trains it in bounded slices on data it makes
 * itself (y = sin(x)), predicts on a buffer it lends without copying, saves
 * a checkpoint and checks that a fresh state loaded from it predicts the
 * same. Exits 0 when everything worked.
 *
 *   build/examples/host [MODEL.lua [CHECKPOINT]]
 *
 * MODEL.lua defaults to examples/host/model.lua, looked for in the working
 * directory and then in the checkout the executable was built in (two
 * folders up from build/examples/host), so it runs from anywhere;
 * CHECKPOINT defaults to host_model.safetensors in the working directory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moongrad.h"

#define N_TRAIN 256
#define N_TEST 5

/* Loads the model script into a new state; NULL (with a message) on failure. */
static lua_State *load_model(const char *script) {
  char why[512] = "";
  moongrad_Options opt = {.memory_budget = 256u << 20, .num_threads = 1,
                          .error = why, .error_size = sizeof why};
  lua_State *L = moongrad_new(&opt);
  if (!L) {
    fprintf(stderr, "host: cannot make a state: %s\n", why);
    return NULL;
  }
  if (moongrad_dofile(L, script) != MOONGRAD_OK) {
    fprintf(stderr, "host: %s\n", moongrad_last_error(L));
    moongrad_close(L);
    return NULL;
  }
  return L;
}

/* Calls the global function name with a string argument. */
static int call_with_path(lua_State *L, const char *name, const char *path) {
  lua_getglobal(L, name);
  lua_pushstring(L, path);
  return moongrad_pcall(L, 1, 0);
}

static void lent_back(void *data, void *ud) {
  (void)data;
  ++*(int *)ud; /* counts the releases: moongrad makes exactly one */
}

/* Writes predict(x) for the host's test points into out. */
static int predict(lua_State *L, float *x, float *out, int *releases) {
  int64_t shape[2] = {N_TEST, 1};
  lua_getglobal(L, "predict");
  if (moongrad_push_tensor_borrowed(L, MOONGRAD_FLOAT32, 2, shape, x,
                                    lent_back, releases) ||
      moongrad_pcall(L, 1, 1))
    return 1;
  int st = moongrad_tensor_copy(L, -1, out, sizeof(float) * N_TEST);
  lua_pop(L, 1);
  return st;
}

/* The default model script: examples/host/model.lua from the working
 * directory when it is there, else from the checkout of the executable
 * (argv0's folder, two up: build/examples/host -> ./examples/host/). */
static const char *default_script(const char *argv0, char *buf, size_t size) {
  const char *rel = "examples/host/model.lua";
  if (access(rel, R_OK) == 0) return rel;
  const char *slash = strrchr(argv0, '/');
  snprintf(buf, size, "%.*s../../%s", slash ? (int)(slash - argv0 + 1) : 0,
           argv0, rel);
  return buf;
}

int main(int argc, char **argv) {
  char script_buf[4096];
  const char *script = argc > 1 ? argv[1]
                                : default_script(argv[0], script_buf,
                                                 sizeof script_buf);
  const char *ckpt = argc > 2 ? argv[2] : "host_model.safetensors";
  float x[N_TRAIN], y[N_TRAIN];
  float x_test[N_TEST] = {-2.5f, -1, 0, 1, 2.5f}, before[N_TEST], after[N_TEST];
  int64_t shape[2] = {N_TRAIN, 1};
  int releases = 0;

  lua_State *L = load_model(script);
  if (!L) return 1;
  for (int i = 0; i < N_TRAIN; i++) {
    x[i] = -3.0f + 6.0f * (float)i / (N_TRAIN - 1);
    y[i] = sinf(x[i]);
  }
  lua_getglobal(L, "set_data"); /* set_data(x, y): copies of the arrays */
  if (moongrad_push_tensor(L, MOONGRAD_FLOAT32, 2, shape, x) ||
      moongrad_push_tensor(L, MOONGRAD_FLOAT32, 2, shape, y) ||
      moongrad_pcall(L, 2, 0))
    goto fail;

  printf("training y = sin(x) on %d points, in slices of 100 steps\n", N_TRAIN);
  double first = 0, last = 0;
  for (int slice = 1; slice <= 5; slice++) {
    lua_getglobal(L, "train_slice");
    lua_pushinteger(L, 100);
    if (moongrad_pcall(L, 1, 1)) goto fail;
    last = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (slice == 1) first = last;
    printf("slice %d: mean loss %.5f\n", slice, last);
  }

  if (predict(L, x_test, before, &releases)) goto fail;
  for (int i = 0; i < N_TEST; i++)
    printf("predict(%5.2f) = %8.5f   sin = %8.5f\n", x_test[i], before[i],
           sinf(x_test[i]));
  if (call_with_path(L, "save", ckpt)) goto fail;
  printf("saved %s\n", ckpt);
  moongrad_close(L); /* the borrowed test buffer is released by now */
  printf("test buffer released %d time(s)\n", releases);

  L = load_model(script); /* a fresh state, its own random initialisation */
  if (!L) return 1;
  if (call_with_path(L, "load", ckpt) || predict(L, x_test, after, &releases))
    goto fail;
  moongrad_close(L);
  int same = memcmp(before, after, sizeof before) == 0;
  printf("reloaded: predictions %s\n", same ? "match" : "DIFFER");
  if (!same || !(last < first / 10) || releases != 2) {
    fprintf(stderr, "host: failed (loss %g -> %g, %d releases)\n", first,
            last, releases);
    return 1;
  }
  return 0;

fail:
  fprintf(stderr, "host: %s\n", moongrad_last_error(L));
  moongrad_close(L);
  return 1;
}
