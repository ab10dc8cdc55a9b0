/*
 * ops_index.c — index_select, gather and scatter_/scatter_add_: ops that
 * read or write a tensor at positions held in an int64 index tensor.
 *
 * Index tensors hold 1-based positions in C as in Lua (see mg_core.h), so
 * the kernels subtract one as they read them. Every index is checked against
 * its bound before anything is allocated for the result or written in place:
 * a failing scatter_ leaves its tensor as it was.
 *
 * The kernels run on the strided iterator (iter.c) with a trick that keeps
 * them free of per-op index arithmetic: the indexed tensor is handed to the
 * iterator as a view with stride 0 along dim, so the iterator yields the
 * address of position 0 along dim and the kernel adds (index - 1) * stride.
 * Since such views only describe geometry for one call, they are built on the
 * stack as plain struct copies that share (never own) the storage.
 *
 * Gradients: index_select's and gather's are scatter_add_ of g into zeros
 * (repeated indices accumulate); the out-of-place mg_scatter sends g to t
 * (with the overwritten positions zeroed, for a plain scatter) and
 * gather(g) to src. scatter_ itself is in place and refuses tensors that
 * require grad.
 */
#include <string.h>

#include "mg_internal.h"

/* ---- shared checks -------------------------------------------------------- */

/* t's geometry with a 0-d tensor seen as one of shape [1] (PyTorch lets a
 * scalar be indexed along dim 1). Shares t's storage without a reference. */
static mg_Tensor as_1d(const mg_Tensor *t) {
  mg_Tensor g = *t;
  if (g.ndim == 0) {
    g.ndim = 1;
    g.shape[0] = 1;
    g.stride[0] = 1;
  }
  return g;
}

static int check_dtype(mg_Context *ctx, const char *op, const mg_Tensor *idx) {
  if (idx->dtype != MG_I64)
    return mg_error(ctx, MG_EARG, "%s: indices must be int64, got %s", op,
                    mg_dtype_name(idx->dtype));
  return MG_OK;
}

static int check_dim(mg_Context *ctx, const char *op, int ndim, int dim) {
  if (dim < 0 || dim >= (ndim > 0 ? ndim : 1))
    return mg_error(ctx, MG_EINDEX, "%s: dimension %d out of range for a "
                    "%d-dimensional tensor", op, dim + 1, ndim);
  return MG_OK;
}

/* Every one of the n positions in ids (contiguous) lies in 1..bound. */
static int check_ids(mg_Context *ctx, const char *op, const int64_t *ids,
                     int64_t n, int64_t bound, int dim) {
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 1 || ids[i] > bound)
      return mg_error(ctx, MG_EINDEX, "%s: index %lld out of range for size "
                      "%lld of dimension %d", op, (long long)ids[i],
                      (long long)bound, dim + 1);
  return MG_OK;
}

/* idx has t's number of dims and fits inside t on every dim but dim (where
 * it may be any size); also inside src on every dim, when src is given. */
static int check_index_shape(mg_Context *ctx, const char *op,
                             const mg_Tensor *t, int dim, const mg_Tensor *idx,
                             const mg_Tensor *src) {
  char bi[MG_SHAPE_BUFSZ], bt[MG_SHAPE_BUFSZ];
  mg_shape_str(bi, sizeof bi, idx->ndim, idx->shape);
  mg_shape_str(bt, sizeof bt, t->ndim, t->shape);
  if (idx->ndim != t->ndim)
    return mg_error(ctx, MG_ESHAPE, "%s: index of shape %s has %d "
                    "dimensions but the tensor of shape %s has %d", op, bi,
                    idx->ndim, bt, t->ndim);
  for (int d = 0; d < t->ndim; d++)
    if (d != dim && idx->shape[d] > t->shape[d])
      return mg_error(ctx, MG_ESHAPE, "%s: index of shape %s does not fit in "
                      "the tensor of shape %s (size %lld vs %lld at dimension "
                      "%d)", op, bi, bt, (long long)idx->shape[d],
                      (long long)t->shape[d], d + 1);
  if (!src) return MG_OK;
  char bs[MG_SHAPE_BUFSZ];
  mg_shape_str(bs, sizeof bs, src->ndim, src->shape);
  if (src->ndim != idx->ndim)
    return mg_error(ctx, MG_ESHAPE, "%s: src of shape %s has %d dimensions "
                    "but the index of shape %s has %d", op, bs, src->ndim, bi,
                    idx->ndim);
  for (int d = 0; d < idx->ndim; d++)
    if (idx->shape[d] > src->shape[d])
      return mg_error(ctx, MG_ESHAPE, "%s: index of shape %s does not fit in "
                      "src of shape %s (size %lld vs %lld at dimension %d)",
                      op, bi, bs, (long long)idx->shape[d],
                      (long long)src->shape[d], d + 1);
  return MG_OK;
}

/* ---- the gather kernel: ptrs[0] = out, ptrs[1] = idx, ptrs[2] = src --------
 * src points at position 0 along the gathered dim; sdim is its stride there.
 * Elements are moved as bytes of their size, so one kernel per size serves
 * every dtype. */
typedef struct {
  int64_t sdim; /* the source's stride along dim, in elements */
} GatherArg;

static inline void gather_run(char **p, const int64_t *s, int64_t n,
                              int64_t sdim, size_t es) {
  char *o = p[0];
  const int64_t *idx = (const int64_t *)p[1];
  const char *src = p[2];
  for (int64_t i = 0; i < n; i++) {
    int64_t at = i * s[2] + (idx[i * s[1]] - 1) * sdim;
    memcpy(o + i * s[0] * (int64_t)es, src + at * (int64_t)es, es);
  }
}
static void gather_4(char **p, const int64_t *s, int64_t n, const void *arg) {
  gather_run(p, s, n, ((const GatherArg *)arg)->sdim, 4);
}
static void gather_8(char **p, const int64_t *s, int64_t n, const void *arg) {
  gather_run(p, s, n, ((const GatherArg *)arg)->sdim, 8);
}
static void gather_1(char **p, const int64_t *s, int64_t n, const void *arg) {
  gather_run(p, s, n, ((const GatherArg *)arg)->sdim, 1);
}
static void gather_2(char **p, const int64_t *s, int64_t n, const void *arg) {
  gather_run(p, s, n, ((const GatherArg *)arg)->sdim, 2);
}

/* out (shape of idx) = t at idx along dim, every operand a view of the same
 * shape; t's view has stride 0 along dim (see the file's comment). */
static void run_gather(mg_Context *ctx, mg_Tensor *out, const mg_Tensor *t,
                       int dim, const mg_Tensor *idx) {
  mg_Tensor src = *t;
  memcpy(src.shape, out->shape, sizeof src.shape);
  src.stride[dim] = 0;
  GatherArg a = {t->stride[dim]};
  mg_Iter it;
  mg_Tensor *ops[3] = {out, (mg_Tensor *)idx, &src};
  mg_iter_init(&it, 3, ops, out->ndim, out->shape);
  size_t es = mg_dtype_size(t->dtype);
  mg_iter_run(ctx, &it, es == 4 ? gather_4 : es == 8 ? gather_8
                        : es == 2 ? gather_2 : gather_1, &a);
}

/* ---- index_select ----------------------------------------------------------- */

/* dst[j] = src[ids[j] - 1] for j < k, elements of es bytes. */
static inline void select_run(char *dst, const char *src, const int64_t *ids,
                              int64_t k, size_t es) {
  for (int64_t j = 0; j < k; j++)
    memcpy(dst + j * (int64_t)es, src + (ids[j] - 1) * (int64_t)es, es);
}

/* t is (outer, n, inner) contiguous, ids is (k) contiguous, out is
 * (outer, k, inner): each (o, j) copies one run of inner elements. */
static void index_select_contiguous(mg_Context *ctx, mg_Tensor *out,
                                    const mg_Tensor *t, int dim,
                                    const int64_t *ids, int64_t k) {
  int64_t outer = 1, inner = 1, n = t->shape[dim];
  for (int d = 0; d < dim; d++) outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) inner *= t->shape[d];
  size_t es = mg_dtype_size(t->dtype), run = (size_t)inner * es;
  const char *src = mg_data(t);
  char *dst = mg_data(out);
  int64_t rows = outer * k;
  int nt = mg_threads_for(ctx, rows * inner);
  if (inner == 1) { /* single elements: copies of a constant size */
    MG_PARALLEL_FOR(nt, for (int64_t o = 0; o < outer; o++) {
      if (es == 4) select_run(dst + o * k * 4, src + o * n * 4, ids, k, 4);
      else if (es == 8) select_run(dst + o * k * 8, src + o * n * 8, ids, k, 8);
      else if (es == 2) select_run(dst + o * k * 2, src + o * n * 2, ids, k, 2);
      else select_run(dst + o * k, src + o * n, ids, k, 1);
    });
    return;
  }
  MG_PARALLEL_FOR(nt, for (int64_t r = 0; r < rows; r++) {
    int64_t o = r / k, j = r % k;
    memcpy(dst + (size_t)r * run, src + (size_t)(o * n + ids[j] - 1) * run,
           run);
  });
}

static int index_select_forward(mg_Context *ctx, mg_Tensor **out,
                                const mg_Tensor *t, int dim,
                                const mg_Tensor *ids) {
  const char *op = "index_select";
  int st;
  if ((st = check_dim(ctx, op, t->ndim, dim)) ||
      (st = check_dtype(ctx, op, ids)))
    return st;
  if (ids->ndim > 1) {
    char b[MG_SHAPE_BUFSZ];
    return mg_error(ctx, MG_ESHAPE, "%s: indices must be 0-D or 1-D, got "
                    "shape %s", op, mg_shape_str(b, sizeof b, ids->ndim,
                                                 ids->shape));
  }
  int64_t k = mg_numel(ids);
  if (t->ndim == 0 && k != 1)
    return mg_error(ctx, MG_ESHAPE, "%s: a 0-d tensor takes exactly one "
                    "index, got %lld", op, (long long)k);
  mg_Tensor g = as_1d(t); /* a 0-d t gives a 0-d result: PyTorch's rule */
  mg_Tensor *ci = NULL, *r = NULL;
  if ((st = mg_contiguous(ctx, &ci, (mg_Tensor *)ids)) ||
      (st = check_ids(ctx, op, mg_data(ci), k, g.shape[dim], dim)))
    goto done;
  int64_t shape[MG_MAXDIM];
  memcpy(shape, g.shape, sizeof shape);
  shape[dim] = k;
  if ((st = mg_alloc_tensor(ctx, &r, t->dtype, t->ndim, shape))) goto done;
  mg_Tensor o = as_1d(r);
  if (mg_is_contiguous(&g)) {
    index_select_contiguous(ctx, &o, &g, dim, mg_data(ci), k);
  } else {
    /* ids seen as a tensor of out's shape that varies only along dim */
    mg_Tensor iv = *ci;
    iv.ndim = o.ndim;
    memcpy(iv.shape, o.shape, sizeof iv.shape);
    memset(iv.stride, 0, sizeof iv.stride);
    iv.stride[dim] = 1;
    run_gather(ctx, &o, &g, dim, &iv);
  }
  *out = r;
done:
  mg_tensor_decref(ci);
  return st;
}

/* zeros of t's shape, then g's slices added at ids along dim (saved[0]):
 * ids seen as a tensor of g's shape varying only along dim, so that
 * scatter_add_ accumulates repeated ids. A 0-d t has a 0-d g. */
static int index_select_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                                 mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  int dim = (int)n->i[0];
  mg_Tensor *ids = n->saved[0], *z = NULL, *iv = NULL;
  if (n->in_ndim[0] == 0) {
    mg_bw_out(&b, &grads[0], g);
    return mg_bw_end(&b);
  }
  int64_t stride[MG_MAXDIM] = {0};
  stride[dim] = ids->ndim == 1 ? ids->stride[0] : 0;
  iv = mg_bw_hold(&b, mg_make_view(ctx, &iv, ids, g->ndim, g->shape, stride,
                                   ids->offset), &iv);
  z = mg_bw_hold(&b, mg_full(ctx, &z, g->dtype, n->in_ndim[0], n->in_shape[0], 0), &z);
  if (iv && z && !(b.st = mg_scatter_(ctx, z, dim, iv, g, 1)))
    mg_bw_out(&b, &grads[0], z);
  return mg_bw_end(&b);
}

int mg_index_select(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                    int dim, const mg_Tensor *ids) {
  mg_Tensor *ins[1] = {(mg_Tensor *)t}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = index_select_forward(ctx, &r, t, dim, ids);
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "index_select", index_select_backward, 1, ins,
                        &n)) ||
        (st = mg_save(ctx, n, 0, ids))) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = dim;
  }
  *out = r;
  return MG_OK;
}

/* ---- gather ------------------------------------------------------------------ */

/* t is (..., n, ...), idx is (..., k, ...) with every other size at most
 * t's; out has idx's shape and out[i][j][l] = t[i][idx[i][j][l]][l]
 * (dim 2 shown). */
static int gather_forward(mg_Context *ctx, mg_Tensor **out,
                          const mg_Tensor *t, int dim, const mg_Tensor *idx) {
  const char *op = "gather";
  int st;
  mg_Tensor g = as_1d(t), gi = as_1d(idx);
  if ((st = check_dim(ctx, op, t->ndim, dim)) ||
      (st = check_dtype(ctx, op, idx)) ||
      (st = check_index_shape(ctx, op, &g, dim, &gi, NULL)))
    return st;
  mg_Tensor *ci = NULL, *r = NULL;
  if ((st = mg_contiguous(ctx, &ci, (mg_Tensor *)idx)) ||
      (st = check_ids(ctx, op, mg_data(ci), mg_numel(ci), g.shape[dim], dim)) ||
      (st = mg_alloc_tensor(ctx, &r, t->dtype, idx->ndim, idx->shape)))
    goto done;
  mg_Tensor o = as_1d(r), civ = as_1d(ci);
  run_gather(ctx, &o, &g, dim, &civ);
  *out = r;
done:
  mg_tensor_decref(ci);
  return st;
}

/* zeros of t's shape with g added at idx (saved[0]) along dim. */
static int gather_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *z = NULL;
  z = mg_bw_hold(&b, mg_full(ctx, &z, g->dtype, n->in_ndim[0], n->in_shape[0], 0), &z);
  if (z && !(b.st = mg_scatter_(ctx, z, (int)n->i[0], n->saved[0], g, 1)))
    mg_bw_out(&b, &grads[0], z);
  return mg_bw_end(&b);
}

int mg_gather(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
              const mg_Tensor *idx) {
  mg_Tensor *ins[1] = {(mg_Tensor *)t}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = gather_forward(ctx, &r, t, dim, idx);
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "gather", gather_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, idx))) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = dim;
  }
  *out = r;
  return MG_OK;
}

/* ---- scatter_ and scatter_add_ ----------------------------------------------
 * The iteration runs over idx's shape with dim collapsed to size 1; for each
 * such position the kernel walks idx and src along dim in order. Two
 * positions never write the same element of t (they differ on a dim other
 * than dim), so threads split the iteration safely, and duplicates within a
 * walk accumulate (add) or let the last one win (assign) deterministically.
 * ptrs[0] = t at position 0 along dim, ptrs[1] = idx, ptrs[2] = src. */
typedef struct {
  int64_t k;     /* idx's size along dim: the walk's length */
  int64_t tdim;  /* t's stride along dim */
  int64_t idim;  /* idx's stride along dim */
  int64_t sdim;  /* src's stride along dim */
  int add;       /* accumulate rather than assign */
} ScatterArg;

/* Each kernel: for every element i of the run, for j along dim,
 * t[i][idx[i][j] - 1] (+)= src[i][j]. */
#define SCATTER_LOOP(T, ADD)                                               \
  for (int64_t i = 0; i < n; i++) {                                        \
    const int64_t *ix = idx + i * s[1];                                    \
    const T *sv = src + i * s[2];                                          \
    T *tv = t + i * s[0];                                                  \
    for (int64_t j = 0; j < a->k; j++) {                                   \
      T *dst = tv + (ix[j * a->idim] - 1) * a->tdim;                       \
      T x = sv[j * a->sdim];                                               \
      *dst = a->add ? (ADD) : x;                                           \
    }                                                                      \
  }

static void scatter_f32(char **p, const int64_t *s, int64_t n,
                        const void *arg) {
  const ScatterArg *a = arg;
  float *t = (float *)p[0];
  const int64_t *idx = (const int64_t *)p[1];
  const float *src = (const float *)p[2];
  SCATTER_LOOP(float, *dst + x)
}
/* f64 twin of scatter_f32 */
static void scatter_f64(char **p, const int64_t *s, int64_t n,
                        const void *arg) {
  const ScatterArg *a = arg;
  double *t = (double *)p[0];
  const int64_t *idx = (const int64_t *)p[1];
  const double *src = (const double *)p[2];
  SCATTER_LOOP(double, *dst + x)
}

/* i64 sibling of scatter_f32: int64 sums wrap around like the elementwise
 * add does. */
static void scatter_i64(char **p, const int64_t *s, int64_t n,
                        const void *arg) {
  const ScatterArg *a = arg;
  int64_t *t = (int64_t *)p[0];
  const int64_t *idx = (const int64_t *)p[1];
  const int64_t *src = (const int64_t *)p[2];
  SCATTER_LOOP(int64_t, (int64_t)((uint64_t)*dst + (uint64_t)x))
}
#undef SCATTER_LOOP

static const mg_LoopFn scatter_kernels[MG_NDTYPES] = {scatter_f32, scatter_f64,
                                                      scatter_i64};

/* src as the dtype of t, in storage that t does not share (so that reading
 * src while writing t is safe): a new reference or a copy. */
static int src_for(mg_Context *ctx, const char *op, mg_Tensor **out,
                   const mg_Tensor *t, const mg_Tensor *src) {
  if (mg_promote(t->dtype, src->dtype) != t->dtype)
    return mg_error(ctx, MG_EARG, "%s: src is %s, which cannot be stored in "
                    "place in %s %s tensor", op, mg_dtype_name(src->dtype),
                    t->dtype == MG_I64 ? "an" : "a", mg_dtype_name(t->dtype));
  if (src->dtype == t->dtype && src->storage == t->storage)
    return mg_clone(ctx, out, src);
  return mg_to_dtype(ctx, out, (mg_Tensor *)src, t->dtype);
}

/* t is (..., n, ...), idx is (..., k, ...) with every other size at most
 * t's, src is 0-d or at least idx's size on every dim:
 * t[i][idx[i][j][l]][l] (+)= src[i][j][l] (dim 2 shown). */
int mg_scatter_(mg_Context *ctx, mg_Tensor *t, int dim, const mg_Tensor *idx,
                const mg_Tensor *src, int add) {
  const char *op = add ? "scatter_add" : "scatter";
  int st;
  mg_Tensor g = as_1d(t), gi = as_1d(idx), gs = as_1d(src);
  const mg_Tensor *src_shape = src->ndim == 0 ? NULL : &gs;
  if ((st = check_dim(ctx, op, t->ndim, dim)) ||
      (st = check_dtype(ctx, op, idx)) ||
      (st = check_index_shape(ctx, op, &g, dim, &gi, src_shape)) ||
      (st = mg_check_inplace(ctx, add ? "scatter_add_" : "scatter_", t)))
    return st;
  mg_bump_version(t);
  mg_Tensor *ci = NULL, *cs = NULL;
  /* The indices must not change under the kernel's writes (t:scatter_(d,
   * t, ...) on an int64 t): a copy of them when they share t's storage. */
  if ((st = idx->storage == t->storage ? mg_clone(ctx, &ci, idx)
                                       : mg_contiguous(ctx, &ci, (mg_Tensor *)idx)) ||
      (st = check_ids(ctx, op, mg_data(ci), mg_numel(ci), g.shape[dim], dim)) ||
      (st = src_for(ctx, op, &cs, t, src)))
    goto done;
  /* Views of the iteration shape: idx's with size 1 along dim. A 0-d src
   * is expanded to it (every stride 0). */
  mg_Tensor tv = g, iv = as_1d(ci), sv = as_1d(cs);
  int64_t shape[MG_MAXDIM];
  memcpy(shape, iv.shape, sizeof shape);
  shape[dim] = 1;
  ScatterArg a = {iv.shape[dim], g.stride[dim], iv.stride[dim],
                  cs->ndim == 0 ? 0 : sv.stride[dim], add};
  if (cs->ndim == 0) {
    sv.ndim = iv.ndim;
    memset(sv.stride, 0, sizeof sv.stride);
  }
  memcpy(tv.shape, shape, sizeof shape);
  memcpy(iv.shape, shape, sizeof shape);
  memcpy(sv.shape, shape, sizeof shape);
  mg_Iter it;
  mg_Tensor *ops[3] = {&tv, &iv, &sv};
  mg_iter_init(&it, 3, ops, iv.ndim, shape);
  mg_iter_run(ctx, &it, scatter_kernels[t->dtype], &a);
done:
  mg_tensor_decref(ci);
  mg_tensor_decref(cs);
  return st;
}

/* ---- scatter and scatter_add, out of place ------------------------------------
 * out = t with src written (added) at idx along dim. t's gradient is g, with
 * the overwritten positions zeroed for a plain scatter (what was there
 * before is gone); src's is gather(g, dim, idx), placed in the corner of
 * src's shape that idx covers (zeros beyond it), or summed for a 0-d src
 * (a number, expanded to idx's shape). i[0] = dim, i[1] = add; saved[0] is
 * idx. */
static int scatter_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                            mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  int dim = (int)n->i[0], add = (int)n->i[1];
  mg_Tensor *idx = n->saved[0];
  if (mg_node_needs(n, 0)) {
    if (add) {
      mg_bw_out(&b, &grads[0], g);
    } else {
      mg_Tensor *gt = NULL, *z = NULL;
      gt = mg_bw_hold(&b, mg_clone(ctx, &gt, g), &gt);
      z = mg_bw_hold(&b, mg_full(ctx, &z, g->dtype, 0, NULL, 0), &z);
      if (gt && z && !(b.st = mg_scatter_(ctx, gt, dim, idx, z, 0)))
        mg_bw_out(&b, &grads[0], gt);
    }
  }
  if (mg_node_needs(n, 1) && !b.st) {
    mg_Tensor *gs = NULL;
    gs = mg_bw_hold(&b, gather_forward(ctx, &gs, g, dim, idx), &gs);
    int nd = n->in_ndim[1];
    const int64_t *shape = n->in_shape[1];
    int same = gs && gs->ndim == nd &&
               (nd == 0 || !memcmp(gs->shape, shape, sizeof(int64_t) * (size_t)nd));
    if (!gs || same) {
      mg_bw_out(&b, &grads[1], gs);
    } else if (nd == 0) {
      mg_Tensor *s = NULL;
      s = mg_bw_hold(&b, mg_reduce_data(ctx, &s, NULL, MG_RED_SUM, gs, -1, 0, 0), &s);
      mg_bw_out(&b, &grads[1], s);
    } else {
      mg_Tensor *z = NULL, *w = NULL;
      z = mg_bw_hold(&b, mg_full(ctx, &z, g->dtype, nd, shape, 0), &z);
      if (z) {
        w = mg_bw_hold(&b, mg_make_view(ctx, &w, z, gs->ndim, gs->shape,
                                        z->stride, z->offset), &w);
      }
      if (w && !(b.st = mg_copy_(ctx, w, gs))) mg_bw_out(&b, &grads[1], z);
    }
  }
  return mg_bw_end(&b);
}

int mg_scatter(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
               const mg_Tensor *idx, const mg_Tensor *src, int add) {
  mg_Tensor *ins[2] = {(mg_Tensor *)t, (mg_Tensor *)src}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = mg_clone(ctx, &r, t);
  if (!st && (st = mg_scatter_(ctx, r, dim, idx, src, add))) {
    mg_tensor_decref(r);
    r = NULL;
  }
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (mg_needs_grad(ctx, 2, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, add ? "scatter_add" : "scatter",
                        scatter_backward, 2, ins, &n)) ||
        (st = mg_save(ctx, n, 0, idx))) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = dim, n->i[1] = add;
  }
  *out = r;
  return MG_OK;
}
