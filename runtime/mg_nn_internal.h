/*
 * mg_nn_internal.h — what the nn op files (ops_nn.c, ops_norm.c, ops_loss.c)
 * share: preparing inputs, and sums that do not depend on the thread count.
 */
#ifndef MG_NN_INTERNAL_H
#define MG_NN_INTERNAL_H

#include "mg_internal.h"

/* The dtype an nn op computes in: float64 when an operand is float64,
 * else float32 (int64 data, and through the C API the storage dtypes
 * float16, bfloat16, int32, ..., for which there are no kernels). */
static inline mg_DType mg_nn_dtype(mg_DType a, mg_DType b) {
  mg_DType dt = mg_promote(a, b);
  return dt == MG_F64 ? MG_F64 : MG_F32;
}

/* *out = t as a contiguous tensor of dtype dt: a new reference to t itself
 * when it already is one, else a copy. */
static inline int mg_nn_prep(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t,
                             mg_DType dt) {
  mg_Tensor *c = NULL;
  int st = mg_to_dtype(ctx, &c, t, dt);
  if (st) return st;
  st = mg_contiguous(ctx, out, c);
  mg_tensor_decref(c);
  return st;
}

/* Is x a channels-last batch (4-D, dtype dt, and not also contiguous, as
 * with one channel), which the [N, H, W, C] kernels take as it lies? */
static inline int mg_nn_channels_last(const mg_Tensor *x, mg_DType dt) {
  return x->ndim == 4 && x->dtype == dt && mg_is_channels_last(x) && !mg_is_contiguous(x);
}

/* *out = t in dtype dt, contiguous, or laid out channels last when cl: a
 * new reference to t itself when it already is so, else a copy. */
static inline int mg_nn_prep_layout(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t,
                                    mg_DType dt, int cl) {
  if (!cl) return mg_nn_prep(ctx, out, t, dt);
  if (mg_nn_channels_last(t, dt)) {
    mg_tensor_incref(t);
    *out = t;
    return MG_OK;
  }
  int st = mg_alloc_channels_last(ctx, out, dt, t->shape);
  if (!st && (st = mg_copy_(ctx, *out, t))) {
    mg_tensor_decref(*out);
    *out = NULL;
  }
  return st;
}

/* Class weights and similar constants are not differentiated (nor are they
 * in PyTorch); one that requires grad would silently get none, so it is
 * refused. */
static inline int mg_nn_constant(mg_Context *ctx, const char *op,
                                 const char *what, mg_Tensor *t) {
  if (t && mg_grad_enabled(ctx) && mg_requires_grad(t))
    return mg_error(ctx, MG_EARG, "%s: %s is not differentiable and must not "
                    "require grad (pass %s:detach())", op, what, what);
  return MG_OK;
}

/* Sums over many rows are split into chunks fixed by the sizes alone (each
 * of at least MG_PARALLEL_GRAIN elements, at most 64 chunks), summed
 * chunk by chunk in parallel and then in chunk order, so the result is the
 * same whatever the thread count. Chunk j covers rows
 * [rows * j / n, rows * (j + 1) / n). */
static inline int64_t mg_nn_nchunks(int64_t rows, int64_t row_cost) {
  if (rows <= 1) return 1;
  if (row_cost < 1) row_cost = 1;
  int64_t n = rows * row_cost / MG_PARALLEL_GRAIN;
  if (n > rows) n = rows;
  if (n > 64) n = 64;
  return n < 1 ? 1 : n;
}

/* The value of a one-element gradient (a reduced loss's). */
static inline double mg_nn_scalar(const mg_Tensor *g) { return mg_read(g, 0); }

#endif
