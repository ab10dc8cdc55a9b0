/*
 * rng.c — random numbers from Philox4x32-10 (Salmon et al., "Parallel
 * random numbers: as easy as 1, 2, 3", SC 2011).
 *
 * Philox is counter-based: block c of stream (seed) is a pure function of
 * (seed, c). A draw of n values takes the next ceil(n / per_block) blocks
 * and value i always comes from block offset + i / per_block, so results do
 * not depend on how many threads fill the tensor, and the whole state is
 * (seed, offset, stream): three integers that save and restore exactly.
 * The stream is the counter's high word, so streams of one seed never
 * share a block: the main stream is 0, and mg.with_rng_stream gives a
 * data loader's samples streams of their own (the sample's index), whose
 * draws depend on nothing but (seed, stream) and the calls made in it.
 */
#include <math.h>
#include <string.h>

#include "mg_internal.h"

/* ---- block fills ---------------------------------------------------------
 * Each kind of draw turns one 128-bit block into per_block values. */

typedef enum { DRAW_UNIFORM, DRAW_NORMAL, DRAW_INT } DrawKind;

typedef struct {
  DrawKind kind;
  double a, b;      /* uniform: lo, hi; normal: mean, std */
  int64_t low;      /* int: lowest value */
  uint64_t range;   /* int: number of values */
} Draw;

static int per_block(DrawKind kind, mg_DType dt) {
  if (kind == DRAW_INT) return 2;
  return dt == MG_F32 ? 4 : 2;
}

/* Values [first, first + count) of block blk into the contiguous out. */
static void fill_block(void *out, mg_DType dt, const Draw *d, uint64_t key,
                       uint64_t stream, uint64_t blk, int64_t first,
                       int count) {
  uint32_t r[4];
  mg_philox(r, key, blk, stream);
  double v[4];
  int64_t iv[2] = {0, 0};
  int nv;
  if (d->kind == DRAW_INT) {
    for (int k = 0; k < 2; k++) {
      uint64_t x = ((uint64_t)r[2 * k] << 32) | r[2 * k + 1];
      iv[k] = (int64_t)((uint64_t)d->low + x % d->range);
    }
    nv = 2;
  } else if (d->kind == DRAW_UNIFORM) {
    if (dt == MG_F32) {
      for (int k = 0; k < 4; k++) v[k] = mg_u24(r[k]);
      nv = 4;
    } else {
      v[0] = mg_u53(r[0], r[1]), v[1] = mg_u53(r[2], r[3]);
      nv = 2;
    }
    for (int k = 0; k < nv; k++) v[k] = d->a + v[k] * (d->b - d->a);
  } else {
    /* Box-Muller; 1 - u lies in (0, 1], so the log is finite. */
    double u[4];
    if (dt == MG_F32) {
      for (int k = 0; k < 4; k++) u[k] = mg_u24(r[k]);
      nv = 4;
    } else {
      u[0] = mg_u53(r[0], r[1]), u[1] = mg_u53(r[2], r[3]);
      nv = 2;
    }
    for (int k = 0; k < nv; k += 2) {
      double rad = sqrt(-2.0 * log(1.0 - u[k])), th = 2.0 * M_PI * u[k + 1];
      v[k] = d->a + d->b * rad * cos(th);
      v[k + 1] = d->a + d->b * rad * sin(th);
    }
  }
  for (int k = 0; k < count; k++) {
    int64_t i = first + k;
    switch (dt) {
    case MG_F32: ((float *)out)[i] = (float)v[k]; break;
    case MG_F64: ((double *)out)[i] = v[k]; break;
    default: ((int64_t *)out)[i] = iv[k]; break;
    }
  }
}

/* Fills the n contiguous elements at out and advances the stream. */
static void fill_draw(mg_Context *ctx, void *out, mg_DType dt, int64_t n,
                      const Draw *d) {
  int pb = per_block(d->kind, dt);
  int64_t nblocks = (n + pb - 1) / pb;
  uint64_t key = ctx->rng.seed, base = ctx->rng.offset, stream = ctx->rng.stream;
  int nt = mg_threads_for(ctx, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t b = 0; b < nblocks; b++) {
    int64_t first = b * pb;
    int count = n - first < pb ? (int)(n - first) : pb;
    fill_block(out, dt, d, key, stream, base + (uint64_t)b, first, count);
  }
  ctx->rng.offset = base + (uint64_t)nblocks;
}

/* Fills t (any layout) by drawing into a contiguous buffer if needed. */
static int fill_tensor(mg_Context *ctx, mg_Tensor *t, const Draw *d) {
  int st = mg_check_inplace(ctx, d->kind == DRAW_NORMAL ? "normal_" : "uniform_", t);
  if (st) return st;
  if (mg_is_contiguous(t)) {
    mg_bump_version(t);
    fill_draw(ctx, mg_data(t), t->dtype, mg_numel(t), d);
    return MG_OK;
  }
  mg_Tensor *tmp = NULL;
  if ((st = mg_alloc_tensor(ctx, &tmp, t->dtype, t->ndim, t->shape))) return st;
  fill_draw(ctx, mg_data(tmp), t->dtype, mg_numel(t), d);
  st = mg_copy_(ctx, t, tmp);
  mg_tensor_decref(tmp);
  return st;
}

static int create_draw(mg_Context *ctx, mg_Tensor **out, mg_DType dt,
                       int ndim, const int64_t *shape, const Draw *d,
                       const char *op) {
  int st = mg_check_shape(ctx, op, ndim, shape);
  if (st) return st;
  mg_Tensor *t = NULL;
  if ((st = mg_alloc_tensor(ctx, &t, dt, ndim, shape))) return st;
  fill_draw(ctx, mg_data(t), dt, mg_numel(t), d);
  *out = t;
  return MG_OK;
}

static int check_float(mg_Context *ctx, const char *op, mg_DType dt) {
  if (dt == MG_I64)
    return mg_error(ctx, MG_EARG, "%s: dtype must be float32 or float64, got "
                    "int64", op);
  return MG_OK;
}

int mg_rand(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
            const int64_t *shape) {
  Draw d = {DRAW_UNIFORM, 0, 1, 0, 0};
  int st = check_float(ctx, "rand", dt);
  return st ? st : create_draw(ctx, out, dt, ndim, shape, &d, "rand");
}

int mg_randn(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
             const int64_t *shape) {
  Draw d = {DRAW_NORMAL, 0, 1, 0, 0};
  int st = check_float(ctx, "randn", dt);
  return st ? st : create_draw(ctx, out, dt, ndim, shape, &d, "randn");
}

int mg_randint(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int64_t low,
               int64_t high, int ndim, const int64_t *shape) {
  if (high < low)
    return mg_error(ctx, MG_EARG, "randint: empty range [%lld, %lld]",
                    (long long)low, (long long)high);
  Draw d = {DRAW_INT, 0, 0, low, (uint64_t)high - (uint64_t)low + 1};
  if (d.range == 0) d.range = UINT64_MAX; /* the full int64 range */
  mg_Tensor *t = NULL;
  int st = create_draw(ctx, &t, MG_I64, ndim, shape, &d, "randint");
  if (st || dt == MG_I64) {
    if (!st) *out = t;
    return st;
  }
  st = mg_to_dtype(ctx, out, t, dt);
  mg_tensor_decref(t);
  return st;
}

int mg_randperm(mg_Context *ctx, mg_Tensor **out, int64_t n) {
  if (n < 0)
    return mg_error(ctx, MG_EARG, "randperm: n must be non-negative, got %lld",
                    (long long)n);
  mg_Tensor *t = NULL;
  int st = mg_alloc_tensor(ctx, &t, MG_I64, 1, &n);
  if (st) return st;
  int64_t *p = mg_data(t);
  for (int64_t i = 0; i < n; i++) p[i] = i + 1;
  /* Fisher-Yates, two 64-bit draws per block. */
  uint64_t key = ctx->rng.seed, blk = ctx->rng.offset, stream = ctx->rng.stream;
  uint32_t r[4];
  int used = 2;
  for (int64_t i = n - 1; i > 0; i--) {
    if (used == 2) {
      mg_philox(r, key, blk++, stream);
      used = 0;
    }
    uint64_t x = ((uint64_t)r[2 * used] << 32) | r[2 * used + 1];
    used++;
    int64_t j = (int64_t)(x % (uint64_t)(i + 1));
    int64_t tmp = p[i];
    p[i] = p[j];
    p[j] = tmp;
  }
  ctx->rng.offset = blk;
  *out = t;
  return MG_OK;
}

int mg_uniform_(mg_Context *ctx, mg_Tensor *t, double lo, double hi) {
  int st = check_float(ctx, "uniform_", t->dtype);
  if (st) return st;
  if (!(lo <= hi))
    return mg_error(ctx, MG_EARG, "uniform_: expected low <= high, got %g and "
                    "%g", lo, hi);
  Draw d = {DRAW_UNIFORM, lo, hi, 0, 0};
  return fill_tensor(ctx, t, &d);
}

int mg_normal_(mg_Context *ctx, mg_Tensor *t, double mean, double std) {
  int st = check_float(ctx, "normal_", t->dtype);
  if (st) return st;
  if (!(std >= 0))
    return mg_error(ctx, MG_EARG, "normal_: std must be non-negative, got %g",
                    std);
  Draw d = {DRAW_NORMAL, mean, std, 0, 0};
  return fill_tensor(ctx, t, &d);
}
