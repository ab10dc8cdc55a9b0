/*
 * ops_tri.c — tril and triu: the lower or upper triangle of the last two
 * dims (batched over the leading ones), the rest set to zero.
 *
 * k shifts the diagonal as in PyTorch: tril keeps element (i, j) of each
 * matrix when j - i <= k, triu when j - i >= k (0-based i, j, or 1-based:
 * the difference is the same). The result is a contiguous copy whose
 * dropped part of each row is one run of zero bytes, and zero bytes are 0
 * in every dtype, so one kernel serves them all. The gradient is the same
 * mask applied to the incoming gradient.
 */
#include <string.h>

#include "mg_internal.h"

void mg_zero_triangle(mg_Tensor *x, int64_t k, int upper) {
  int64_t R = x->shape[x->ndim - 2], C = x->shape[x->ndim - 1];
  if (R == 0 || C == 0) return;
  /* Past these bounds k means the same; clamping keeps i + k from
   * overflowing for any int64 k. */
  if (k > C) k = C;
  if (k < -R) k = -R;
  int64_t nmat = mg_numel(x) / (R * C);
  size_t es = mg_dtype_size(x->dtype);
  char *base = mg_data(x);
  for (int64_t m = 0; m < nmat; m++)
    for (int64_t i = 0; i < R; i++) {
      char *row = base + (size_t)((m * R + i) * C) * es;
      /* tril drops columns j > i + k; triu drops columns j < i + k */
      int64_t lo = upper ? 0 : i + k + 1, hi = upper ? i + k : C;
      if (lo < 0) lo = 0;
      if (hi > C) hi = C;
      if (hi > lo) memset(row + (size_t)lo * es, 0, (size_t)(hi - lo) * es);
    }
}

/* A contiguous copy of t with the triangle zeroed (records nothing). */
static int tri_forward(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                       int64_t k, int upper) {
  const char *op = upper ? "triu" : "tril";
  if (t->ndim < 2)
    return mg_error(ctx, MG_ESHAPE, "%s: expected a tensor with at least 2 "
                    "dimensions (a matrix or a batch of them), got %d", op,
                    t->ndim);
  mg_Tensor *r = NULL;
  int st = mg_alloc_tensor(ctx, &r, t->dtype, t->ndim, t->shape);
  if (st) return st;
  if ((st = mg_copy_(ctx, r, t))) {
    mg_tensor_decref(r);
    return st;
  }
  mg_zero_triangle(r, k, upper);
  *out = r;
  return MG_OK;
}

/* i[0] = k, i[1] = upper: the gradient masked like the forward. */
static int tri_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                        mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *r = NULL;
  r = mg_bw_hold(&b, tri_forward(ctx, &r, g, n->i[0], (int)n->i[1]), &r);
  mg_bw_out(&b, &grads[0], r);
  return mg_bw_end(&b);
}

static int tri(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               int64_t k, int upper) {
  mg_Tensor *ins[1] = {(mg_Tensor *)t}, *r = NULL;
  int st = tri_forward(ctx, &r, t, k, upper);
  if (st) return st;
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, upper ? "triu" : "tril", tri_backward, 1, ins,
                        &n))) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = k, n->i[1] = upper;
  }
  *out = r;
  return MG_OK;
}

int mg_tril(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int64_t k) {
  return tri(ctx, out, t, k, 0);
}

int mg_triu(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int64_t k) {
  return tri(ctx, out, t, k, 1);
}
