/*
 * dnnl_base.c — the oneDNN state a context owns (engine, stream, and the
 * primitive caches conv_dnnl.c and gemm_dnnl.c hang on it), the creation
 * lock, the thread bracket and running a primitive; see mg_dnnl.h.
 */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

#include "mg_dnnl.h"

static pthread_mutex_t lifecycle = PTHREAD_MUTEX_INITIALIZER;

void mg_dnnl_lock(void) { pthread_mutex_lock(&lifecycle); }
void mg_dnnl_unlock(void) { pthread_mutex_unlock(&lifecycle); }

/* Releases the caches, then the stream and the engine; the context calls
 * it when it goes (ctx->dnnl_free). */
static void state_free(mg_Context *ctx) {
  struct mg_DnnlState *S = ctx->dnnl;
  if (!S) return;
  for (int i = 0; i < MG_DNNL_USERS; i++)
    if (S->cache[i]) S->cache_release[i](S->cache[i]);
  mg_dnnl_lock();
  if (S->stream) dnnl_stream_destroy(S->stream);
  if (S->eng) dnnl_engine_destroy(S->eng);
  mg_dnnl_unlock();
  free(S);
  ctx->dnnl = NULL;
}

struct mg_DnnlState *mg_dnnl_state(mg_Context *ctx) {
  struct mg_DnnlState *S = ctx->dnnl;
  if (!S) {
    S = calloc(1, sizeof *S);
    if (!S) return NULL;
    ctx->dnnl = S;
    ctx->dnnl_free = state_free;
    mg_dnnl_lock();
    if (dnnl_engine_create(&S->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&S->stream, S->eng, dnnl_stream_default_flags) !=
            dnnl_success)
      S->broken = 1;
    mg_dnnl_unlock();
  }
  return S->broken ? NULL : S;
}

void *mg_dnnl_cache(mg_Context *ctx, int user, size_t bytes,
                    void (*release)(void *cache)) {
  struct mg_DnnlState *S = mg_dnnl_state(ctx);
  if (!S) return NULL;
  if (!S->cache[user] && (S->cache[user] = calloc(1, bytes)))
    S->cache_release[user] = release;
  return S->cache[user];
}

int mg_dnnl_threads_begin(int nt) {
  int was = omp_get_max_threads();
  if (was != nt) omp_set_num_threads(nt);
  return was;
}

void mg_dnnl_threads_end(int was) {
  if (omp_get_max_threads() != was) omp_set_num_threads(was);
}

int mg_dnnl_buffer(mg_Context *ctx, mg_Tensor **t, size_t bytes) {
  int64_t n = (int64_t)((bytes + 3) / 4);
  return mg_alloc_tensor(ctx, t, MG_F32, 1, &n);
}

int mg_dnnl_run(mg_Context *ctx, struct mg_DnnlState *S, dnnl_primitive_desc_t pd,
                dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args,
                dnnl_status_t *dst) {
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  size_t bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
  mg_Tensor *pad = NULL;
  dnnl_memory_t mem = NULL;
  int st;
  *dst = dnnl_success;
  if (bytes) {
    if ((st = mg_dnnl_buffer(ctx, &pad, bytes))) return st;
    if ((*dst = dnnl_memory_create(&mem, smd, S->eng, mg_data(pad)))) {
      mg_tensor_decref(pad);
      return MG_EARG;
    }
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, mem};
  }
  *dst = dnnl_primitive_execute(p, S->stream, nargs, args);
  if (!*dst) *dst = dnnl_stream_wait(S->stream);
  if (mem) dnnl_memory_destroy(mem);
  mg_tensor_decref(pad);
  return *dst ? MG_EARG : MG_OK;
}
