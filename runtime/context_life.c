/*
 * context_life.c — creating and releasing a context: the one place that
 * knows what a context owns (its buffer cache and spare structs, its RNG
 * stream, an op audit left running, and what an op file hung on it to
 * release, the oneDNN state through ctx->dnnl_free), above
 * alloc.c and philox.c and below every op.
 */
#include <stdlib.h>
#include <omp.h>

#include "mg_internal.h"

mg_Context *mg_context_new(void) {
  mg_Context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return NULL;
  ctx->refcount = 1;
  ctx->nthreads = omp_get_num_procs();
  if (ctx->nthreads < 1) ctx->nthreads = 1;
  ctx->mem.cache_limit = (size_t)1 << 30;
  ctx->grad_enabled = 1;
  mg_manual_seed(ctx, 0);
  return ctx;
}

void mg_context_incref(mg_Context *ctx) { ctx->refcount++; }

void mg_context_decref(mg_Context *ctx) {
  if (!ctx || --ctx->refcount > 0) return;
  if (ctx->dnnl_free) ctx->dnnl_free(ctx);
  mg_empty_cache(ctx);
  free(ctx->op_seen); /* an audit left running (grad_ops.c) */
  free(ctx);
}
