/*
 * ops_reduce.c — the reductions as differentiable ops: mg_reduce records
 * the kernels of reduce_kernels.c (whose comment says how they compute)
 * with their backward.
 *
 * Gradients (mg_reduce's backward): sum and mean
 * broadcast g back; prod multiplies g by the product of the other
 * elements (prefix and suffix products, so zeros are exact); max/min over
 * a dim send g to the position of the extreme (its index), and over every
 * element share it evenly among the tied extremes, as PyTorch does;
 * var/std use the deviations from the mean. argmax/argmin, and max/min's
 * indices, have no gradient.
 */
#include <math.h>
#include <string.h>

#include "mg_internal.h"

/* ---- gradients --------------------------------------------------------------
 * A node's i[0] = dim (-1: every element), i[1] = keepdim, i[2] = the op,
 * f[0] = correction. g has the result's shape; each formula first views g
 * so that it broadcasts against the input's shape x (the reduced dim back
 * as size 1 when keepdim was off), then hands the engine a contiguous
 * tensor of x's shape. */

/* The number of elements each result reduced. */
static int64_t reduced_count(const mg_Node *n) {
  int dim = (int)n->i[0];
  if (dim >= 0) return n->in_ndim[0] > 0 ? n->in_shape[0][dim] : 1;
  int64_t c = 1;
  for (int d = 0; d < n->in_ndim[0]; d++) c *= n->in_shape[0][d];
  return c;
}

/* g with the reduced dim restored as size 1 (g itself when it already
 * broadcasts against x: keepdim, a full reduction, a 0-d x). */
static mg_Tensor *g_broadcastable(mg_Bw *b, const mg_Node *n, mg_Tensor *g) {
  int dim = (int)n->i[0];
  if (dim < 0 || n->i[1] || n->in_ndim[0] == 0) return g;
  mg_Tensor *r = NULL;
  if (b->st || !g) return NULL;
  return mg_bw_hold(b, mg_unsqueeze(b->ctx, &r, g, dim), &r);
}

/* gb (broadcastable) expanded to x's shape and copied contiguous. */
static mg_Tensor *g_expanded(mg_Bw *b, const mg_Node *n, mg_Tensor *gb) {
  mg_Tensor *e = NULL, *c = NULL;
  if (b->st || !gb) return NULL;
  e = mg_bw_hold(b, mg_expand(b->ctx, &e, gb, n->in_ndim[0], n->in_shape[0]), &e);
  if (!e) return NULL;
  return mg_bw_hold(b, mg_contiguous(b->ctx, &c, e), &c);
}

/* out (float64, x's shape) = the product of the other elements along dim
 * (every element when dim < 0), by a prefix pass and a suffix pass: exact
 * where x holds zeros, unlike out / x. x is (outer, n, inner). */
static int prod_of_others(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                          int dim) {
  int64_t outer = 1, n = mg_numel(x), inner = 1;
  if (dim >= 0 && x->ndim > 0) {
    n = x->shape[dim];
    for (int d = 0; d < x->ndim; d++) {
      if (d < dim) outer *= x->shape[d];
      if (d > dim) inner *= x->shape[d];
    }
  }
  mg_Tensor *c = NULL, *r = NULL;
  double *acc = NULL;
  size_t bytes = sizeof(double) * (size_t)(inner > 0 ? inner : 1);
  int st;
  if ((st = mg_to_dtype(ctx, &c, x, MG_F64)) ||
      (st = mg_alloc_tensor(ctx, &r, MG_F64, x->ndim, x->shape)) ||
      !(acc = mg_buffer_alloc(ctx, bytes))) {
    if (!st) st = MG_ENOMEM;
    mg_tensor_decref(c);
    mg_tensor_decref(r);
    return st;
  }
  mg_Tensor *cc = NULL;
  if ((st = mg_contiguous(ctx, &cc, c))) goto done;
  const double *xv = mg_data(cc);
  double *rv = mg_data(r);
  for (int64_t o = 0; o < outer; o++) {
    const double *xo = xv + o * n * inner;
    double *ro = rv + o * n * inner;
    for (int64_t i = 0; i < inner; i++) acc[i] = 1;
    for (int64_t j = 0; j < n; j++)
      for (int64_t i = 0; i < inner; i++) {
        ro[j * inner + i] = acc[i];
        acc[i] *= xo[j * inner + i];
      }
    for (int64_t i = 0; i < inner; i++) acc[i] = 1;
    for (int64_t j = n - 1; j >= 0; j--)
      for (int64_t i = 0; i < inner; i++) {
        ro[j * inner + i] *= acc[i];
        acc[i] *= xo[j * inner + i];
      }
  }
  *out = r;
  r = NULL;
done:
  mg_buffer_free(ctx, acc, bytes);
  mg_tensor_decref(cc);
  mg_tensor_decref(c);
  mg_tensor_decref(r);
  return st;
}

/* max/min over every element: g shared evenly among the positions that
 * hold the extreme (the NaNs, when the result is NaN). */
static mg_Tensor *evenly_distributed(mg_Bw *b, mg_Tensor *g, mg_Tensor *x,
                                     mg_Tensor *out) {
  if (b->st) return NULL;
  mg_Tensor *mask = isnan(mg_read(out, 0)) ? mg_bw_binary(b, MG_OP_NE, x, x)
                                            : mg_bw_binary(b, MG_OP_EQ, x, out);
  mg_Tensor *count = NULL;
  if (mask)
    count = mg_bw_hold(b, mg_reduce(b->ctx, &count, NULL, MG_RED_SUM, mask, -1, 0, 0), &count);
  return mg_bw_binary(b, MG_OP_MUL, mask, mg_bw_binary(b, MG_OP_DIV, g, count));
}

/* max/min over a dim: zeros with g at the extreme's position (saved[0] is
 * the 1-based index). */
static mg_Tensor *at_indices(mg_Bw *b, const mg_Node *n, mg_Tensor *g,
                             mg_Tensor *idx) {
  mg_Tensor *z = NULL, *ib = g_broadcastable(b, n, idx), *gb = g_broadcastable(b, n, g);
  if (!ib || !gb) return NULL;
  z = mg_bw_hold(b, mg_full(b->ctx, &z, g->dtype, n->in_ndim[0], n->in_shape[0], 0), &z);
  if (z) {
    int st = mg_scatter_(b->ctx, z, (int)n->i[0], ib, gb, 0);
    if (st) b->st = st;
  }
  return b->st ? NULL : z;
}

/* var: g 2 (x - mean) / (N - correction); std: the same with g / (2 std),
 * which is 0 where std is 0 (as PyTorch, rather than nan). */
static mg_Tensor *deviations_grad(mg_Bw *b, const mg_Node *n, mg_Tensor *g,
                                  mg_Tensor *x, mg_Tensor *out, int is_std) {
  mg_Tensor *m = NULL;
  if (b->st) return NULL;
  m = mg_bw_hold(b, mg_reduce(b->ctx, &m, NULL, MG_RED_MEAN, x, (int)n->i[0], 1, 0), &m);
  mg_Tensor *dev = mg_bw_binary(b, MG_OP_SUB, x, m);
  if (is_std) {
    mg_Tensor *z = NULL, *r = NULL;
    mg_Tensor *gs = mg_bw_binary(b, MG_OP_DIV, g, mg_bw_scalar(b, MG_OP_MUL, out, 2));
    z = mg_bw_hold(b, mg_full(b->ctx, &z, g->dtype, 0, NULL, 0), &z);
    mg_Tensor *zero_std = mg_bw_scalar(b, MG_OP_EQ, out, 0);
    if (gs && z && zero_std)
      g = mg_bw_hold(b, mg_where(b->ctx, &r, zero_std, z, gs), &r);
    else
      g = NULL;
  }
  double scale = 2.0 / ((double)reduced_count(n) - n->f[0]);
  return mg_bw_binary(b, MG_OP_MUL, mg_bw_scalar(b, MG_OP_MUL, dev, scale),
                      g_broadcastable(b, n, g));
}

static int reduce_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *d = NULL, *s0 = n->saved[0], *s1 = n->saved[1];
  switch ((mg_ReduceOp)n->i[2]) {
  case MG_RED_SUM: d = g_expanded(&b, n, g_broadcastable(&b, n, g)); break;
  case MG_RED_MEAN: {
    mg_Tensor *e = NULL;
    mg_Tensor *gb = g_broadcastable(&b, n, g);
    if (gb)
      e = mg_bw_hold(&b, mg_expand(ctx, &e, gb, n->in_ndim[0], n->in_shape[0]), &e);
    d = mg_bw_scalar(&b, MG_OP_DIV, e, (double)reduced_count(n));
  } break;
  case MG_RED_PROD: {
    mg_Tensor *o = NULL;
    o = mg_bw_hold(&b, prod_of_others(ctx, &o, s0, (int)n->i[0]), &o);
    d = mg_bw_binary(&b, MG_OP_MUL, o, g_broadcastable(&b, n, g));
  } break;
  case MG_RED_MAX:
  case MG_RED_MIN:
    if (n->in_ndim[0] == 0) d = g_expanded(&b, n, g);
    else if (n->i[0] >= 0) d = at_indices(&b, n, g, s0);
    else d = evenly_distributed(&b, g, s0, s1);
    break;
  case MG_RED_VAR:
  case MG_RED_STD:
    d = deviations_grad(&b, n, g, s0, s1, n->i[2] == MG_RED_STD);
    break;
  default: break;
  }
  mg_bw_out(&b, &grads[0], d);
  return mg_bw_end(&b);
}

int mg_reduce(mg_Context *ctx, mg_Tensor **out, mg_Tensor **indices,
              mg_ReduceOp op, mg_Tensor *t, int dim, int keepdim,
              double correction) {
  mg_Tensor *ins[1] = {t}, *r = NULL, *ix = NULL;
  int differentiable = op != MG_RED_ARGMAX && op != MG_RED_ARGMIN &&
                       (int)op >= 0 && op < MG_NREDUCE;
  int grad = differentiable && mg_needs_grad(ctx, 1, ins);
  /* max/min over a dim need their indices for the gradient */
  int by_index = (op == MG_RED_MAX || op == MG_RED_MIN) && dim >= 0;
  int st = mg_reduce_data(ctx, &r, indices || (grad && by_index) ? &ix : NULL,
                          op, t, dim, keepdim, correction);
  if (st) return st;
  if (grad) {
    mg_Node *n;
    int save_x = op == MG_RED_PROD || op == MG_RED_VAR || op == MG_RED_STD ||
                 ((op == MG_RED_MAX || op == MG_RED_MIN) && !by_index);
    int save_out = op == MG_RED_STD ||
                   ((op == MG_RED_MAX || op == MG_RED_MIN) && !by_index);
    if ((st = mg_record(ctx, r, mg_reduce_name(op), reduce_backward, 1, ins, &n)) ||
        (save_x && (st = mg_save(ctx, n, 0, t))) ||
        (by_index && (st = mg_save(ctx, n, 0, ix))) ||
        (save_out && (st = mg_save(ctx, n, 1, r)))) {
      mg_tensor_decref(r);
      mg_tensor_decref(ix);
      return st;
    }
    if (n) n->i[0] = dim, n->i[1] = keepdim, n->i[2] = op, n->f[0] = correction;
  }
  *out = r;
  if (indices && ix)
    *indices = ix;
  else
    mg_tensor_decref(ix);
  return MG_OK;
}

/* ---- gradients of broadcast inputs (the recorded form; see views.c) ---- */

static int sum_recorded(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                        int dim, int keepdim) {
  return mg_reduce(ctx, out, NULL, MG_RED_SUM, x, dim, keepdim, 0);
}

int mg_sum_to(mg_Context *ctx, mg_Tensor **out, mg_Tensor *grad, int ndim,
              const int64_t *shape) {
  return mg_sum_to_by(ctx, out, grad, ndim, shape, sum_recorded);
}
