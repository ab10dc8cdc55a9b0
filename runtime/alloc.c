/*
 * alloc.c — tensor buffers: a size-bucketed cache of freed buffers.
 *
 * A training step allocates the same sizes every time; keeping freed
 * buffers by size class and handing them out again makes a steady-state
 * step malloc-free. Classes are four per power of two (at most 25% slack);
 * a cache past its limit returns buffers to libc instead.
 */
#include <stdlib.h>

#include "mg_internal.h"

#define MG_ALIGN 64 /* a cache line, and enough for any SIMD load */

/* The class of a request and the bytes a buffer of that class holds. */
static int size_class(size_t nbytes, size_t *class_bytes) {
  if (nbytes <= 64) {
    *class_bytes = 64;
    return 0;
  }
  int e = 63 - __builtin_clzll((unsigned long long)(nbytes - 1));
  size_t base = (size_t)1 << e, step = base >> 2;
  size_t q = (nbytes - base + step - 1) / step; /* 1..4 */
  *class_bytes = base + q * step;
  return (e - 6) * 4 + (int)q;
}

/* One attempt: from the cache or libc, within the limit. On failure the
 * message is in ctx; *hopeless says that no reclaim can help (the request
 * alone is past the limit or past any size class). */
static void *alloc_once(mg_Context *ctx, size_t nbytes, int *hopeless) {
  mg_MemoryStats *m = &ctx->mem;
  size_t bytes;
  int c = size_class(nbytes, &bytes);
  *hopeless = 0;
  if (c >= MG_NCLASSES) {
    *hopeless = 1;
    mg_error(ctx, MG_ENOMEM, "not enough memory for a tensor of %zu bytes",
             nbytes);
    return NULL;
  }
  size_t other = ctx->other_bytes ? *ctx->other_bytes : 0;
  if (m->limit_bytes &&
      m->live_bytes + m->header_bytes + other + nbytes > m->limit_bytes) {
    *hopeless = nbytes > m->limit_bytes;
    if (ctx->other_bytes)
      mg_error(ctx, MG_ENOMEM,
               "not enough memory for a tensor of %zu bytes: it would pass "
               "the state's budget of %zu bytes (tensors hold %zu, Lua %zu)",
               nbytes, m->limit_bytes, m->live_bytes, other);
    else
      mg_error(ctx, MG_ENOMEM,
               "not enough memory for a tensor of %zu bytes: the memory "
               "limit is %zu bytes and %zu are in use",
               nbytes, m->limit_bytes, m->live_bytes);
    return NULL;
  }
  void *p = NULL;
  /* Under a shared budget the cache counts as the process's memory: a
   * buffer that cannot come from it frees it first. */
  if (ctx->other_bytes && m->limit_bytes && !ctx->cache[c] &&
      m->live_bytes + other + m->cached_bytes + bytes > m->limit_bytes)
    mg_empty_cache(ctx);
  if (ctx->cache[c]) {
    mg_FreeBuf *b = ctx->cache[c];
    ctx->cache[c] = b->next;
    m->cached_bytes -= bytes;
    m->cache_hits++;
    p = b;
  } else if (posix_memalign(&p, MG_ALIGN, bytes) != 0) {
    /* Cached buffers of other sizes may be what stands in the way. */
    mg_empty_cache(ctx);
    if (posix_memalign(&p, MG_ALIGN, bytes) != 0) {
      mg_error(ctx, MG_ENOMEM, "not enough memory for a tensor of %zu bytes",
               nbytes);
      return NULL;
    }
  }
  m->allocs++;
  /* The budget and live_bytes count what was asked for: the class's slack
   * (up to a quarter) is the allocator's, like the cache. */
  m->live_bytes += nbytes;
  if (m->live_bytes > m->peak_bytes) m->peak_bytes = m->live_bytes;
  ctx->gc_debt += bytes;
  return p;
}

/* A failed attempt asks the embedder to reclaim (a full Lua collection,
 * whose finalizers free unreachable tensors) and tries once more, here,
 * inside the allocation: the call that needed the memory goes on from
 * where it was, so nothing it did before is ever done twice. */
static int reclaim(mg_Context *ctx) {
  if (!ctx->reclaim || !ctx->reclaim_arg || ctx->reclaiming) return 0;
  ctx->mem.reclaims++;
  ctx->reclaiming = 1; /* finalizers may allocate: they get no reclaim */
  ctx->reclaim(ctx, ctx->reclaim_arg);
  ctx->reclaiming = 0;
  mg_empty_cache(ctx);
  return 1;
}

void *mg_buffer_alloc(mg_Context *ctx, size_t nbytes) {
  int hopeless;
  void *p = alloc_once(ctx, nbytes, &hopeless);
  if (p || hopeless || !reclaim(ctx)) return p;
  return alloc_once(ctx, nbytes, &hopeless);
}

/* A header is small, but a loop of views (t:chunk(2^31) on an empty t)
 * makes nothing else: without this charge it ran for ever under a limit
 * that counted buffers only. */
int mg_charge_header(mg_Context *ctx, size_t bytes) {
  mg_MemoryStats *m = &ctx->mem;
  for (int attempt = 0; m->limit_bytes; attempt++) {
    size_t other = ctx->other_bytes ? *ctx->other_bytes : 0;
    if (m->live_bytes + m->header_bytes + other + bytes <= m->limit_bytes) break;
    if (attempt == 1 || !reclaim(ctx))
      return mg_error(ctx, MG_ENOMEM, "not enough memory for a tensor header: "
                      "the memory limit is %zu bytes and %zu are in use "
                      "(%zu by tensor headers)", m->limit_bytes,
                      m->live_bytes + m->header_bytes + other, m->header_bytes);
  }
  m->header_bytes += bytes;
  return MG_OK;
}

void mg_uncharge_header(mg_Context *ctx, size_t bytes) {
  ctx->mem.header_bytes -= bytes;
}

void mg_set_reclaim(mg_Context *ctx, mg_ReclaimFn fn) { ctx->reclaim = fn; }

void *mg_swap_reclaim_arg(mg_Context *ctx, void *arg) {
  void *old = ctx->reclaim_arg;
  ctx->reclaim_arg = arg;
  return old;
}

void mg_buffer_free(mg_Context *ctx, void *p, size_t nbytes) {
  if (!p) return;
  size_t bytes;
  int c = size_class(nbytes, &bytes);
  ctx->mem.live_bytes -= nbytes;
  if (ctx->mem.cached_bytes + bytes > ctx->mem.cache_limit) {
    free(p);
    return;
  }
  mg_FreeBuf *b = p;
  b->next = ctx->cache[c];
  ctx->cache[c] = b;
  ctx->mem.cached_bytes += bytes;
}

void mg_empty_cache(mg_Context *ctx) {
  for (int c = 0; c < MG_NCLASSES; c++) {
    while (ctx->cache[c]) {
      mg_FreeBuf *b = ctx->cache[c];
      ctx->cache[c] = b->next;
      free(b);
    }
  }
  ctx->mem.cached_bytes = 0;
  mg_free_spare_structs(ctx);
}

void mg_memory_stats(const mg_Context *ctx, mg_MemoryStats *out) {
  *out = ctx->mem;
}

void mg_set_memory_limit(mg_Context *ctx, size_t bytes) {
  ctx->mem.limit_bytes = bytes;
}

void mg_share_memory_limit(mg_Context *ctx, const size_t *other_bytes) {
  ctx->other_bytes = other_bytes;
}

void mg_set_cache_limit(mg_Context *ctx, size_t bytes) {
  ctx->mem.cache_limit = bytes;
  if (ctx->mem.cached_bytes > bytes) mg_empty_cache(ctx);
}

size_t mg_take_gc_debt(mg_Context *ctx, size_t min) {
  size_t d = ctx->gc_debt;
  if (d < min) return 0;
  ctx->gc_debt = 0;
  return d;
}
