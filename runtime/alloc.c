/*
 * alloc.c — tensor buffers: a size-bucketed cache of freed buffers.
 *
 * A training step allocates the same sizes every time; keeping freed
 * buffers by size class and handing them out again makes a steady-state
 * step malloc-free. Classes are four per power of two (at most 25% slack);
 * a cache past its limit returns buffers to libc instead. The tensor and
 * storage structs come from here too, off per-context spare lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* What counts against the limit besides a new request: tensors' bytes,
 * their headers, charged buffers (in live_bytes) and the host's Lua heap
 * under a shared budget. */
static size_t in_use(const mg_Context *ctx) {
  const mg_MemoryStats *m = &ctx->mem;
  return m->live_bytes + m->header_bytes +
         (ctx->other_bytes ? *ctx->other_bytes : 0);
}

/* MG_OK when bytes more fit in the state's limit; otherwise MG_ENOMEM with
 * a message saying what they were for (what: "a tensor of 4096 bytes").
 * Formats nothing on success (the hot path). */
static int within_limit(mg_Context *ctx, size_t bytes, const char *what_fmt,
                        size_t what_n) {
  mg_MemoryStats *m = &ctx->mem;
  if (!m->limit_bytes || in_use(ctx) + bytes <= m->limit_bytes) return MG_OK;
  char what[64];
  snprintf(what, sizeof what, what_fmt, what_n);
  if (ctx->other_bytes)
    return mg_error(ctx, MG_ENOMEM,
                    "not enough memory for %s: it would pass the state's "
                    "budget of %zu bytes (tensors hold %zu, Lua %zu)", what,
                    m->limit_bytes, m->live_bytes + m->header_bytes,
                    *ctx->other_bytes);
  return mg_error(ctx, MG_ENOMEM,
                  "not enough memory for %s: the memory limit is %zu bytes "
                  "and %zu are in use", what, m->limit_bytes, in_use(ctx));
}

/* Under a shared budget the cache counts as the process's memory: bytes
 * that cannot come from it free it first. */
static void make_room(mg_Context *ctx, size_t bytes) {
  mg_MemoryStats *m = &ctx->mem;
  if (ctx->other_bytes && m->limit_bytes &&
      in_use(ctx) + m->cached_bytes + bytes > m->limit_bytes)
    mg_empty_cache(ctx);
}

/* Asks the embedder to reclaim (a full Lua collection, whose finalizers
 * free unreachable tensors), once, and empties the cache; 0 when no
 * reclaim is armed (mg_swap_reclaim_arg) or one is already running. */
static int reclaim(mg_Context *ctx) {
  if (!ctx->reclaim || !ctx->reclaim_arg || ctx->reclaiming) return 0;
  ctx->mem.reclaims++;
  ctx->reclaiming = 1; /* finalizers may allocate: they get no reclaim */
  ctx->reclaim(ctx, ctx->reclaim_arg);
  ctx->reclaiming = 0;
  mg_empty_cache(ctx);
  return 1;
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
  /* The limit counts what was asked for: the class's slack (up to a
   * quarter) is the allocator's, like the cache. */
  if (within_limit(ctx, nbytes, "a tensor of %zu bytes", nbytes)) {
    *hopeless = nbytes > m->limit_bytes;
    return NULL;
  }
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
  m->live_bytes += nbytes;
  if (m->live_bytes > m->peak_bytes) m->peak_bytes = m->live_bytes;
  ctx->gc_debt += bytes;
  return p;
}

/* A failed attempt reclaims and tries once more, here, inside the
 * allocation: the call that needed the memory goes on from where it was,
 * so nothing it did before is ever done twice. */
void *mg_buffer_alloc(mg_Context *ctx, size_t nbytes) {
  int hopeless;
  void *p = alloc_once(ctx, nbytes, &hopeless);
  if (p || hopeless || !reclaim(ctx)) return p;
  return alloc_once(ctx, nbytes, &hopeless);
}

/* Charges bytes to *counter (live_bytes or header_bytes) within the limit,
 * reclaiming once when past it. */
static int charge(mg_Context *ctx, size_t bytes, size_t *counter,
                  const char *what_fmt) {
  if (within_limit(ctx, bytes, what_fmt, bytes) &&
      (!reclaim(ctx) || within_limit(ctx, bytes, what_fmt, bytes)))
    return MG_ENOMEM;
  make_room(ctx, bytes);
  *counter += bytes;
  if (ctx->mem.live_bytes > ctx->mem.peak_bytes)
    ctx->mem.peak_bytes = ctx->mem.live_bytes;
  return MG_OK;
}

int mg_charge(mg_Context *ctx, size_t bytes) {
  return charge(ctx, bytes, &ctx->mem.live_bytes, "%zu more bytes");
}

void mg_uncharge(mg_Context *ctx, size_t bytes) {
  ctx->mem.live_bytes -= bytes;
}

/* A header is small, but a loop of views (t:chunk(2^31) on an empty t)
 * makes nothing else: without this charge it ran for ever under a limit
 * that counted buffers only. */
int mg_charge_header(mg_Context *ctx, size_t bytes) {
  if (!ctx->mem.limit_bytes) { /* the hot path: one branch */
    ctx->mem.header_bytes += bytes;
    return MG_OK;
  }
  return charge(ctx, bytes, &ctx->mem.header_bytes,
                "a tensor header of %zu bytes");
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

/* ---- tensor and storage structs ----------------------------------------- */

/* Each context keeps up to MG_SPARE freed structs of each kind on a list
 * linked through their first word (mg_empty_cache frees them). The
 * collector frees small tensors some ten thousand at a time, so the list
 * must hold that many to serve the next cycle's allocations: with 4096,
 * 40% of a 2x2 add's structs still came from malloc and it took 0.46 µs
 * instead of 0.32. At ~340 bytes a pair, the lists stay under 11 MiB. */
#define MG_SPARE 32768

static void *spare_pop(void **list, int *n, size_t size) {
  void *p = *list;
  if (!p) return malloc(size);
  memcpy(list, p, sizeof(void *));
  (*n)--;
  return p;
}

static void spare_push(void **list, int *n, void *p) {
  if (*n >= MG_SPARE) {
    free(p);
    return;
  }
  memcpy(p, list, sizeof(void *));
  *list = p;
  (*n)++;
}

static void free_spare_structs(mg_Context *ctx) {
  void **lists[2] = {&ctx->spare_tensors, &ctx->spare_storages};
  for (int i = 0; i < 2; i++)
    while (*lists[i]) {
      void *p = *lists[i];
      memcpy(lists[i], p, sizeof(void *));
      free(p);
    }
  ctx->n_spare_tensors = ctx->n_spare_storages = 0;
}

mg_Tensor *mg_tensor_struct(mg_Context *ctx) {
  if (mg_charge_header(ctx, sizeof(mg_Tensor)) != MG_OK) return NULL;
  mg_Tensor *t = spare_pop(&ctx->spare_tensors, &ctx->n_spare_tensors,
                           sizeof(mg_Tensor));
  if (!t) {
    mg_uncharge_header(ctx, sizeof(mg_Tensor));
    mg_error(ctx, MG_ENOMEM, "not enough memory for a tensor");
  }
  return t;
}

void mg_tensor_struct_free(mg_Context *ctx, mg_Tensor *t) {
  mg_uncharge_header(ctx, sizeof(mg_Tensor));
  spare_push(&ctx->spare_tensors, &ctx->n_spare_tensors, t);
}

mg_Storage *mg_storage_struct(mg_Context *ctx) {
  mg_Storage *s = spare_pop(&ctx->spare_storages, &ctx->n_spare_storages, sizeof *s);
  if (!s) mg_error(ctx, MG_ENOMEM, "not enough memory for a tensor header");
  return s;
}

void mg_storage_struct_free(mg_Context *ctx, mg_Storage *s) {
  spare_push(&ctx->spare_storages, &ctx->n_spare_storages, s);
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
  free_spare_structs(ctx);
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

/* A step of Lua's collector can run a whole cycle, which marks all of
 * the Lua heap: a step for every megabyte made a transformer's training
 * step run a cycle for every one or two megabytes of activations (6% of
 * its time). Past 8 MB of live tensors the step waits for an eighth of
 * them instead, so dead tensors wait for about that much more allocation
 * (as under a collector pause of 112%), and a loop over small tensors
 * still steps every min bytes. */
size_t mg_take_gc_debt(mg_Context *ctx, size_t min) {
  size_t d = ctx->gc_debt, eighth = ctx->mem.live_bytes / 8;
  if (d < min || d < eighth) return 0;
  ctx->gc_debt = 0;
  return d;
}

/* The debt is meant for what only Lua's collector can free. A leaf's
 * .grad, made by this backward and held by the core until zero_grad drops
 * it by its count, is not: charged, it made a batch-1 step run a whole
 * collection for its 2 MB of fresh gradients every step (15% of the step).
 * Only bytes charged since the last mg_take_gc_debt may be forgiven, or
 * the debt would lose garbage it still owes. */
void mg_gc_forgive(mg_Context *ctx, size_t nbytes) {
  size_t bytes;
  size_class(nbytes, &bytes);
  ctx->gc_debt = ctx->gc_debt > bytes ? ctx->gc_debt - bytes : 0;
}

/* The forgiven bytes back, once Lua holds the buffer (a .grad read). */
void mg_gc_charge(mg_Context *ctx, size_t nbytes) {
  size_t bytes;
  size_class(nbytes, &bytes);
  ctx->gc_debt += bytes;
}
