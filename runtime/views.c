/*
 * views.c — the differentiable views and copies: view, reshape, squeeze,
 * unsqueeze, transpose, permute, narrow, select, expand, clone, contiguous
 * and to(), each with its backward. Above autograd; expand's backward sums
 * through mg_bw_sum_to.
 */
#include <stdlib.h>
#include <string.h>

#include "mg_internal.h"

/* ---- views --------------------------------------------------------------- */

/* Resolves a -1 in a requested shape against numel; checks the total. */
static int infer_shape(mg_Context *ctx, const char *op, const mg_Tensor *t,
                       int ndim, const int64_t *req, int64_t *shape) {
  if (ndim > MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "%s: %d dimensions requested, at most %d "
                    "are supported", op, ndim, MG_MAXDIM);
  int infer = -1;
  int64_t known = 1, numel = mg_numel(t);
  for (int d = 0; d < ndim; d++) {
    if (req[d] == -1) {
      if (infer >= 0)
        return mg_error(ctx, MG_ESHAPE, "%s: only one size may be -1", op);
      infer = d;
    } else if (req[d] < 0) {
      return mg_error(ctx, MG_ESHAPE, "%s: invalid size %lld at dimension %d",
                      op, (long long)req[d], d + 1);
    } else {
      if (req[d] > 0 && known > INT64_MAX / req[d]) {
        char b[MG_SHAPE_BUFSZ];
        return mg_error(ctx, MG_ESHAPE, "%s: shape %s has more than 2^63 "
                        "elements", op, mg_shape_str(b, sizeof b, ndim, req));
      }
      known *= req[d];
    }
    shape[d] = req[d];
  }
  char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      return mg_error(ctx, MG_ESHAPE, "%s: shape %s is invalid for a tensor "
                      "of shape %s (%lld elements)", op,
                      mg_shape_str(ba, sizeof ba, ndim, req),
                      mg_shape_str(bb, sizeof bb, t->ndim, t->shape),
                      (long long)numel);
    shape[infer] = numel / known;
  } else if (known != numel) {
    return mg_error(ctx, MG_ESHAPE, "%s: shape %s is invalid for a tensor of "
                    "shape %s (%lld elements)", op,
                    mg_shape_str(ba, sizeof ba, ndim, req),
                    mg_shape_str(bb, sizeof bb, t->ndim, t->shape),
                    (long long)numel);
  }
  /* A zero-size result still gets strides from its other sizes. */
  return mg_check_shape(ctx, op, ndim, shape);
}

/* Strides for viewing t as shape without a copy, if the layout allows it.
 * Old dims are walked from the innermost out in chunks that are contiguous
 * within themselves; each chunk must be covered exactly by a run of new
 * dims, which then get strides inside that chunk. */
static int view_strides(const mg_Tensor *t, int ndim, const int64_t *shape,
                        int64_t *stride) {
  if (mg_numel(t) == 0 || mg_is_contiguous(t)) {
    mg_contiguous_strides(ndim, shape, stride);
    return 1;
  }
  int nd = ndim - 1;
  int64_t base = t->stride[t->ndim - 1], chunk = 1, covered = 1;
  for (int od = t->ndim - 1; od >= 0; od--) {
    chunk *= t->shape[od];
    int chunk_ends = od == 0 || (t->shape[od - 1] != 1 &&
                                 t->stride[od - 1] != chunk * base);
    if (!chunk_ends) continue;
    while (nd >= 0 && (covered < chunk || shape[nd] == 1)) {
      stride[nd] = covered * base;
      covered *= shape[nd];
      nd--;
    }
    if (covered != chunk) return 0;
    if (od > 0) {
      base = t->stride[od - 1];
      chunk = covered = 1;
    }
  }
  return nd == -1;
}

static int view_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                    int ndim, const int64_t *req) {
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int st = infer_shape(ctx, "view", t, ndim, req, shape);
  if (st) return st;
  if (!view_strides(t, ndim, shape, stride)) {
    char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
    return mg_error(ctx, MG_ESHAPE, "view: a tensor of shape %s with these "
                    "strides cannot be viewed as %s; use reshape (which "
                    "copies) or contiguous first",
                    mg_shape_str(ba, sizeof ba, t->ndim, t->shape),
                    mg_shape_str(bb, sizeof bb, ndim, shape));
  }
  return mg_make_view(ctx, out, t, ndim, shape, stride, t->offset);
}

static int reshape_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                       int ndim, const int64_t *req) {
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int st = infer_shape(ctx, "reshape", t, ndim, req, shape);
  if (st) return st;
  if (view_strides(t, ndim, shape, stride))
    return mg_make_view(ctx, out, t, ndim, shape, stride, t->offset);
  mg_Tensor *c = NULL;
  if ((st = mg_clone_data(ctx, &c, t))) return st;
  mg_contiguous_strides(ndim, shape, stride);
  st = mg_make_view(ctx, out, c, ndim, shape, stride, 0);
  mg_tensor_decref(c);
  return st;
}

static int check_dim(mg_Context *ctx, const char *op, const mg_Tensor *t,
                     int dim) {
  if (dim < 0 || dim >= t->ndim)
    return mg_error(ctx, MG_EINDEX, "%s: dimension %d out of range for a "
                    "%d-dimensional tensor", op, dim + 1, t->ndim);
  return MG_OK;
}

static int transpose_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                         int d0, int d1) {
  int st;
  if ((st = check_dim(ctx, "transpose", t, d0)) ||
      (st = check_dim(ctx, "transpose", t, d1)))
    return st;
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  memcpy(stride, t->stride, sizeof stride);
  shape[d0] = t->shape[d1], shape[d1] = t->shape[d0];
  stride[d0] = t->stride[d1], stride[d1] = t->stride[d0];
  return mg_make_view(ctx, out, t, t->ndim, shape, stride, t->offset);
}

static int permute_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                       const int *dims) {
  int seen[MG_MAXDIM] = {0}, st;
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  for (int d = 0; d < t->ndim; d++) {
    if ((st = check_dim(ctx, "permute", t, dims[d]))) return st;
    if (seen[dims[d]]++)
      return mg_error(ctx, MG_EARG, "permute: dimension %d appears twice",
                      dims[d] + 1);
    shape[d] = t->shape[dims[d]];
    stride[d] = t->stride[dims[d]];
  }
  return mg_make_view(ctx, out, t, t->ndim, shape, stride, t->offset);
}

static int narrow_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                      int dim, int64_t start, int64_t len) {
  int st = check_dim(ctx, "narrow", t, dim);
  if (st) return st;
  if (start < 0 || len < 0 || start > t->shape[dim] ||
      len > t->shape[dim] - start) /* start + len could overflow */
    return mg_error(ctx, MG_EINDEX, "narrow: start %lld and length %lld do "
                    "not fit in size %lld of dimension %d", (long long)start + 1,
                    (long long)len, (long long)t->shape[dim], dim + 1);
  int64_t shape[MG_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  shape[dim] = len;
  return mg_make_view(ctx, out, t, t->ndim, shape, t->stride,
                      t->offset + start * t->stride[dim]);
}

static int select_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                      int dim, int64_t index) {
  int st = check_dim(ctx, "select", t, dim);
  if (st) return st;
  if (index < 0 || index >= t->shape[dim])
    return mg_error(ctx, MG_EINDEX, "select: index %lld out of range for "
                    "size %lld of dimension %d", (long long)index + 1,
                    (long long)t->shape[dim], dim + 1);
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (d == dim) continue;
    shape[n] = t->shape[d];
    stride[n++] = t->stride[d];
  }
  return mg_make_view(ctx, out, t, n, shape, stride,
                      t->offset + index * t->stride[dim]);
}

static int squeeze_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                       int dim) {
  if (dim >= 0) {
    int st = check_dim(ctx, "squeeze", t, dim);
    if (st) return st;
  }
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 1 && (dim < 0 || d == dim)) continue;
    shape[n] = t->shape[d];
    stride[n++] = t->stride[d];
  }
  return mg_make_view(ctx, out, t, n, shape, stride, t->offset);
}

static int unsqueeze_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                         int dim) {
  if (dim < 0 || dim > t->ndim)
    return mg_error(ctx, MG_EINDEX, "unsqueeze: dimension %d out of range "
                    "for a %d-dimensional tensor (1..%d)", dim + 1, t->ndim,
                    t->ndim + 1);
  if (t->ndim >= MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "unsqueeze: at most %d dimensions are "
                    "supported", MG_MAXDIM);
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int n = 0;
  for (int d = 0; d <= t->ndim; d++) {
    if (d == dim) {
      shape[n] = 1;
      stride[n++] = d < t->ndim ? t->stride[d] * t->shape[d] : 1;
    }
    if (d < t->ndim) {
      shape[n] = t->shape[d];
      stride[n++] = t->stride[d];
    }
  }
  return mg_make_view(ctx, out, t, n, shape, stride, t->offset);
}

static int expand_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                      int ndim, const int64_t *req) {
  char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
  if (ndim < t->ndim || ndim > MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "expand: cannot expand shape %s to %s "
                    "(fewer dimensions)",
                    mg_shape_str(ba, sizeof ba, t->ndim, t->shape),
                    mg_shape_str(bb, sizeof bb, ndim, req));
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int lead = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int td = d - lead;
    int64_t have = td >= 0 ? t->shape[td] : 1;
    int64_t want = req[d] == -1 && td >= 0 ? have : req[d];
    if (want < 0 || (have != want && have != 1))
      return mg_error(ctx, MG_ESHAPE, "expand: cannot expand shape %s to %s "
                      "(size %lld vs %lld at dimension %d)",
                      mg_shape_str(ba, sizeof ba, t->ndim, t->shape),
                      mg_shape_str(bb, sizeof bb, ndim, req), (long long)have,
                      (long long)req[d], d + 1);
    shape[d] = want;
    stride[d] = (td < 0 || have != want) ? 0 : t->stride[td];
  }
  return mg_make_view(ctx, out, t, ndim, shape, stride, t->offset);
}


static int to_dtype_fwd(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t,
                        mg_DType dt) {
  if (dt == t->dtype) {
    mg_tensor_incref(t);
    *out = t;
    return MG_OK;
  }
  mg_Tensor *c = NULL;
  int st = mg_alloc_tensor(ctx, &c, dt, t->ndim, t->shape);
  if (st) return st;
  mg_copy_(ctx, c, t);
  *out = c;
  return MG_OK;
}

/* ---- gradients of views and copies ----------------------------------------
 * The public view functions build their view with mg_make_view (which never
 * records: it also makes detached aliases and the kernels' scratch views)
 * and then, when t needs a gradient, record a node on the new tensor
 * struct, which stays a view sharing t's storage. The backward formulas
 * move the gradient back to t's geometry: reshape it, transpose or permute
 * it back, place it inside zeros (narrow, select), or sum it over the
 * expanded dims. Each hands the engine a contiguous tensor of t's shape, so
 * no later backward meets a strided or stride-0 gradient it did not make. */

/* Hands r to *out, recording it first as name(t) when t needs a gradient;
 * p0..p2 go to the node's i[] for the backward. Takes r over (and frees it
 * on failure). An r that is t itself (contiguous() of a contiguous tensor)
 * records nothing: t's own history is the right one. */
static int view_record(mg_Context *ctx, mg_Tensor **out, mg_Tensor *r,
                       const mg_Tensor *t, const char *name,
                       mg_BackwardFn backward, int64_t p0, int64_t p1,
                       int64_t p2) {
  mg_Tensor *ins[1] = {(mg_Tensor *)t};
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    int st = mg_record(ctx, r, name, backward, 1, ins, &n);
    if (st) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = p0, n->i[1] = p1, n->i[2] = p2;
  }
  *out = r;
  return MG_OK;
}

/* Hands x to the engine as a contiguous tensor (a copy only when x is
 * strided). */
static void bw_out_contiguous(mg_Bw *b, mg_Tensor **slot, mg_Tensor *x) {
  mg_Tensor *c = NULL;
  if (b->st || !x) return;
  mg_bw_out(b, slot, mg_bw_hold(b, mg_contiguous(b->ctx, &c, x), &c));
}

/* view, reshape, squeeze, unsqueeze, flatten: g reshaped to t's shape. */
static int reshape_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                            mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *r = NULL;
  r = mg_bw_hold(&b, reshape_fwd(ctx, &r, g, n->in_ndim[0], n->in_shape[0]), &r);
  bw_out_contiguous(&b, &grads[0], r);
  return mg_bw_end(&b);
}

int mg_view(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int ndim,
            const int64_t *shape) {
  mg_Tensor *r = NULL;
  int st = view_fwd(ctx, &r, t, ndim, shape);
  if (st) return st;
  return view_record(ctx, out, r, t, "view", reshape_backward, 0, 0, 0);
}

int mg_reshape(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               int ndim, const int64_t *shape) {
  mg_Tensor *r = NULL;
  int st = reshape_fwd(ctx, &r, t, ndim, shape);
  if (st) return st;
  return view_record(ctx, out, r, t, "reshape", reshape_backward, 0, 0, 0);
}

int mg_squeeze(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               int dim) {
  mg_Tensor *r = NULL;
  int st = squeeze_fwd(ctx, &r, t, dim);
  if (st) return st;
  return view_record(ctx, out, r, t, "squeeze", reshape_backward, 0, 0, 0);
}

int mg_unsqueeze(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int dim) {
  mg_Tensor *r = NULL;
  int st = unsqueeze_fwd(ctx, &r, t, dim);
  if (st) return st;
  return view_record(ctx, out, r, t, "unsqueeze", reshape_backward, 0, 0, 0);
}

/* transpose(d0, d1) is its own inverse. */
static int transpose_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                              mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *r = NULL;
  r = mg_bw_hold(&b, transpose_fwd(ctx, &r, g, (int)n->i[0], (int)n->i[1]), &r);
  bw_out_contiguous(&b, &grads[0], r);
  return mg_bw_end(&b);
}

int mg_transpose(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int d0, int d1) {
  mg_Tensor *r = NULL;
  int st = transpose_fwd(ctx, &r, t, d0, d1);
  if (st) return st;
  return view_record(ctx, out, r, t, "transpose", transpose_backward, d0, d1,
                     0);
}

/* g permuted by the inverse permutation, packed in i[0] four bits a dim
 * (MG_MAXDIM == 16 dims fit in 64 bits). */
_Static_assert(MG_MAXDIM <= 16, "permute packs a dim into four bits");

static int permute_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                            mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  int inv[MG_MAXDIM];
  uint64_t packed = (uint64_t)n->i[0];
  for (int d = 0; d < n->in_ndim[0]; d++) inv[d] = (int)((packed >> (4 * d)) & 15);
  mg_Tensor *r = NULL;
  r = mg_bw_hold(&b, permute_fwd(ctx, &r, g, inv), &r);
  bw_out_contiguous(&b, &grads[0], r);
  return mg_bw_end(&b);
}

int mg_permute(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               const int *dims) {
  mg_Tensor *r = NULL;
  int st = permute_fwd(ctx, &r, t, dims);
  if (st) return st;
  uint64_t packed = 0; /* inv[dims[d]] = d */
  for (int d = 0; d < t->ndim; d++) packed |= (uint64_t)d << (4 * dims[d]);
  return view_record(ctx, out, r, t, "permute", permute_backward,
                     (int64_t)packed, 0, 0);
}

/* narrow and select (i[0] = dim, i[1] = start or index, i[2] = length;
 * -1 for select): g in the window of a tensor of t's shape, zeros
 * around it. Each element is written once: zeros only before and after
 * the window along dim (a recurrent layer's output is most of its
 * trajectory, and zero-filling all of it first doubled the writes). */
static int window_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  int dim = (int)n->i[0];
  int64_t start = n->i[1], len = n->i[2] < 0 ? 1 : n->i[2];
  int64_t size = n->in_shape[0][dim], rest = size - start - len;
  mg_Tensor *z = NULL, *v = NULL;
  int st = mg_alloc_tensor(ctx, &z, g->dtype, n->in_ndim[0], n->in_shape[0]);
  if (!st && start > 0 && !(st = narrow_fwd(ctx, &v, z, dim, 0, start))) {
    st = mg_zero_(ctx, v);
    mg_tensor_decref(v);
    v = NULL;
  }
  if (!st && rest > 0 && !(st = narrow_fwd(ctx, &v, z, dim, start + len, rest))) {
    st = mg_zero_(ctx, v);
    mg_tensor_decref(v);
    v = NULL;
  }
  if (!st && !(st = n->i[2] < 0 ? select_fwd(ctx, &v, z, dim, start)
                                : narrow_fwd(ctx, &v, z, dim, start, len)))
    st = mg_copy_(ctx, v, g);
  mg_tensor_decref(v);
  if (st) {
    mg_tensor_decref(z);
    return st;
  }
  grads[0] = z;
  return MG_OK;
}

int mg_window_of(mg_Context *ctx, const mg_Node *n, mg_Tensor *t,
                 mg_Tensor **out, int *st) {
  if (n->backward != window_backward) return 0;
  int dim = (int)n->i[0];
  *st = n->i[2] < 0 ? select_fwd(ctx, out, t, dim, n->i[1])
                    : narrow_fwd(ctx, out, t, dim, n->i[1], n->i[2]);
  return 1;
}

int mg_narrow(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
              int64_t start, int64_t len) {
  mg_Tensor *r = NULL;
  int st = narrow_fwd(ctx, &r, t, dim, start, len);
  if (st) return st;
  return view_record(ctx, out, r, t, "narrow", window_backward, dim, start,
                     len);
}

int mg_select(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
              int64_t index) {
  mg_Tensor *r = NULL;
  int st = select_fwd(ctx, &r, t, dim, index);
  if (st) return st;
  return view_record(ctx, out, r, t, "select", window_backward, dim, index,
                     -1);
}

/* expand: g summed over the broadcast dims back to t's shape. */
static int expand_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  bw_out_contiguous(&b, &grads[0], mg_bw_sum_to(&b, g, n->in_ndim[0], n->in_shape[0]));
  return mg_bw_end(&b);
}

int mg_expand(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int ndim,
              const int64_t *shape) {
  mg_Tensor *r = NULL;
  int st = expand_fwd(ctx, &r, t, ndim, shape);
  if (st) return st;
  return view_record(ctx, out, r, t, "expand", expand_backward, 0, 0, 0);
}

/* clone, contiguous (when it copies) and to_dtype pass g through; the
 * engine casts it to t's dtype. */
static int identity_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                             mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  bw_out_contiguous(&b, &grads[0], g);
  return mg_bw_end(&b);
}

int mg_clone(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t) {
  mg_Tensor *r = NULL;
  int st = mg_clone_data(ctx, &r, t);
  if (st) return st;
  return view_record(ctx, out, r, t, "clone", identity_backward, 0, 0, 0);
}

int mg_contiguous(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t) {
  if (mg_is_contiguous(t)) {
    mg_tensor_incref(t);
    *out = t;
    return MG_OK;
  }
  mg_Tensor *r = NULL;
  int st = mg_clone_data(ctx, &r, t);
  if (st) return st;
  return view_record(ctx, out, r, t, "contiguous", identity_backward, 0, 0, 0);
}

/* A conversion to int64 leaves the graph: integer tensors have no
 * gradient (as in PyTorch). */
int mg_to_dtype(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t, mg_DType dt) {
  mg_Tensor *r = NULL;
  int st = to_dtype_fwd(ctx, &r, t, dt);
  if (st) return st;
  if ((dt != MG_F32 && dt != MG_F64) || r == t) { /* no gradient into others */
    *out = r;
    return MG_OK;
  }
  return view_record(ctx, out, r, t, "to", identity_backward, 0, 0, 0);
}

/* ---- gradients of broadcast inputs -----------------------------------------
 * Summing a gradient back to an input's shape undoes a broadcast (expand's
 * backward, and every broadcasting op's): it lives beside expand, with the
 * sum passed in so that backward formulas (grad mode off) sum with
 * mg_reduce_data and mg_sum_to (ops_reduce.c) with the recorded mg_reduce. */

int mg_sum_to_by(mg_Context *ctx, mg_Tensor **out, mg_Tensor *grad, int ndim,
                 const int64_t *shape, mg_SumDimFn sum) {
  if (mg_same_shape(grad->ndim, grad->shape, ndim, shape)) {
    mg_tensor_incref(grad);
    *out = grad;
    return MG_OK;
  }
  mg_Tensor *cur = grad, *next = NULL;
  mg_tensor_incref(cur);
  int st = MG_OK, lead = grad->ndim - ndim;
  /* Leading dims the input did not have: fold them into one and sum it. */
  if (lead > 0) {
    int64_t shp[MG_MAXDIM], n = 1;
    for (int d = 0; d < lead; d++) n *= cur->shape[d];
    shp[0] = n;
    for (int d = 0; d < ndim; d++) shp[d + 1] = cur->shape[lead + d];
    mg_Tensor *flat = NULL;
    if ((st = mg_reshape(ctx, &flat, cur, ndim + 1, shp))) goto done;
    st = sum(ctx, &next, flat, 0, 0);
    mg_tensor_decref(flat);
    if (st) goto done;
    mg_tensor_decref(cur);
    cur = next;
    next = NULL;
  }
  /* Dims the input had as size 1. */
  for (int d = 0; d < ndim; d++) {
    if (shape[d] != 1 || cur->shape[d] == 1) continue;
    if ((st = sum(ctx, &next, cur, d, 1))) goto done;
    mg_tensor_decref(cur);
    cur = next;
    next = NULL;
  }
  *out = cur;
  return MG_OK;
done:
  mg_tensor_decref(cur);
  return st;
}

static int sum_data(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, int dim,
                    int keepdim) {
  return mg_reduce_data(ctx, out, NULL, MG_RED_SUM, x, dim, keepdim, 0);
}

mg_Tensor *mg_bw_sum_to(mg_Bw *b, mg_Tensor *x, int ndim, const int64_t *shape) {
  mg_Tensor *t = NULL;
  if (b->st || !x) return NULL;
  return mg_bw_hold(b, mg_sum_to_by(b->ctx, &t, x, ndim, shape, sum_data), &t);
}
