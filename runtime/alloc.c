/*
 * alloc.c — tensor buffers: a size-bucketed cache of freed buffers.
 *
 * A training step allocates the same sizes every time; keeping freed
 * buffers by size class and handing them out again makes a steady-state
 * step malloc-free. Classes are four per power of two (at most 25% slack);
 * a cache past its limit returns buffers to libc instead.
 */
#include <stdio.h>
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

/* MG_OK when bytes more fit in the state's budget; otherwise MG_ENOMEM
 * with a message saying what they were for: a tensor of nbytes (tensor =
 * 1) or nbytes more bytes. Formats nothing on success (the hot path). */
static int within_limit(mg_Context *ctx, size_t bytes, size_t nbytes,
                        int tensor) {
  mg_MemoryStats *m = &ctx->mem;
  size_t other = ctx->other_bytes ? *ctx->other_bytes : 0;
  if (!m->limit_bytes || m->live_bytes + other + bytes <= m->limit_bytes)
    return MG_OK;
  char what[48];
  snprintf(what, sizeof what, tensor ? "a tensor of %zu bytes"
                                     : "%zu more bytes", nbytes);
  if (ctx->other_bytes)
    return mg_error(ctx, MG_ENOMEM,
                    "not enough memory for %s: it would pass the state's "
                    "budget of %zu bytes (tensors hold %zu, Lua %zu)",
                    what, m->limit_bytes, m->live_bytes, other);
  return mg_error(ctx, MG_ENOMEM,
                  "not enough memory for %s: the memory limit is %zu bytes "
                  "and %zu are in use", what, m->limit_bytes, m->live_bytes);
}

/* Under a shared budget the cache counts as the process's memory: bytes
 * that cannot come from it free it first. */
static void make_room(mg_Context *ctx, size_t bytes) {
  mg_MemoryStats *m = &ctx->mem;
  if (ctx->other_bytes && m->limit_bytes &&
      m->live_bytes + *ctx->other_bytes + m->cached_bytes + bytes > m->limit_bytes)
    mg_empty_cache(ctx);
}

void *mg_buffer_alloc(mg_Context *ctx, size_t nbytes) {
  mg_MemoryStats *m = &ctx->mem;
  size_t bytes;
  int c = size_class(nbytes, &bytes);
  if (c >= MG_NCLASSES) {
    mg_error(ctx, MG_ENOMEM, "not enough memory for a tensor of %zu bytes",
             nbytes);
    return NULL;
  }
  if (within_limit(ctx, bytes, nbytes, 1)) return NULL;
  void *p = NULL;
  if (!ctx->cache[c]) make_room(ctx, bytes);
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
  m->live_bytes += bytes;
  if (m->live_bytes > m->peak_bytes) m->peak_bytes = m->live_bytes;
  ctx->gc_debt += bytes;
  return p;
}

void mg_buffer_free(mg_Context *ctx, void *p, size_t nbytes) {
  if (!p) return;
  size_t bytes;
  int c = size_class(nbytes, &bytes);
  ctx->mem.live_bytes -= bytes;
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

int mg_charge(mg_Context *ctx, size_t bytes) {
  if (within_limit(ctx, bytes, bytes, 0)) return MG_ENOMEM;
  make_room(ctx, bytes);
  ctx->mem.live_bytes += bytes;
  if (ctx->mem.live_bytes > ctx->mem.peak_bytes)
    ctx->mem.peak_bytes = ctx->mem.live_bytes;
  return MG_OK;
}

void mg_uncharge(mg_Context *ctx, size_t bytes) {
  ctx->mem.live_bytes -= bytes;
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
