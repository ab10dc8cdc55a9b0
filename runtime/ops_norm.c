/*
 * ops_norm.c — layer_norm and batch_norm, forward and backward.
 *
 * Statistics accumulate in double whatever the data's dtype, the variance
 * in a second pass over (x - mean) rather than as E[x²] - E[x]², and the
 * per-row (layer_norm) or per-channel (batch_norm) mean and 1/std are kept
 * as float64 tensors for the backward. Sums across rows go through fixed
 * chunks (mg_nn_internal.h), so results never depend on the thread count.
 * Each kernel is written for float32 and then, as its "f64 twin", for
 * float64; the entry points pick one per call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_nn_internal.h"

/* ---- 1-D float tensors of any stride, as doubles -------------------------------
 * The running statistics are the caller's tensors (float32 or float64 each,
 * maybe strided); the gradients of w and b are summed in double. */

/* dst[i] = src[i * stride] for i < n. */
static void load_doubles_f32(double *dst, const float *src, int64_t stride,
                             int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = src[i * stride];
}

/* f64 twin of load_doubles_f32 */
static void load_doubles_f64(double *dst, const double *src, int64_t stride,
                             int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = src[i * stride];
}

/* dst[i * stride] = src[i] for i < n, rounded to dst's dtype. */
static void store_doubles_f32(float *dst, int64_t stride, const double *src,
                              int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i * stride] = src[i];
}

/* f64 twin of store_doubles_f32 */
static void store_doubles_f64(double *dst, int64_t stride, const double *src,
                              int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i * stride] = src[i];
}

/* p[i * stride] = (1 - momentum) p[i * stride] + momentum v[i] for i < n:
 * a running statistic's update, computed in double. */
static void blend_f32(float *p, int64_t stride, const double *v, int64_t n,
                      double momentum) {
  for (int64_t i = 0; i < n; i++)
    p[i * stride] = (1 - momentum) * p[i * stride] + momentum * v[i];
}

/* f64 twin of blend_f32 */
static void blend_f64(double *p, int64_t stride, const double *v, int64_t n,
                      double momentum) {
  for (int64_t i = 0; i < n; i++)
    p[i * stride] = (1 - momentum) * p[i * stride] + momentum * v[i];
}

/* The n elements of the 1-D tensor t as doubles. */
static void load_doubles(double *dst, const mg_Tensor *t, int64_t n) {
  switch (t->dtype) {
  case MG_F32: load_doubles_f32(dst, mg_data(t), t->stride[0], n); break;
  case MG_F64: load_doubles_f64(dst, mg_data(t), t->stride[0], n); break;
  default: break; /* batch_norm's parameters are float32 or float64 */
  }
}

/* The n doubles at src into the 1-D tensor t, in its dtype. */
static void store_doubles(mg_Tensor *t, const double *src, int64_t n) {
  switch (t->dtype) {
  case MG_F32: store_doubles_f32(mg_data(t), t->stride[0], src, n); break;
  case MG_F64: store_doubles_f64(mg_data(t), t->stride[0], src, n); break;
  default: break;
  }
}

/* t = (1 - momentum) t + momentum v, t a 1-D tensor of n elements. */
static void blend(mg_Tensor *t, const double *v, int64_t n, double momentum) {
  switch (t->dtype) {
  case MG_F32: blend_f32(mg_data(t), t->stride[0], v, n, momentum); break;
  case MG_F64: blend_f64(mg_data(t), t->stride[0], v, n, momentum); break;
  default: break;
  }
}

/* Sums the nch partial arrays of n doubles at part in chunk order, into
 * the first of them. */
static void sum_partials(double *part, int64_t nch, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    double s = 0;
    for (int64_t c = 0; c < nch; c++) s += part[c * n + j];
    part[j] = s;
  }
}

static int no_memory(mg_Context *ctx, const char *op) {
  return mg_error(ctx, MG_ENOMEM, "%s: not enough memory for partial sums", op);
}

/* Sums over a row run in CH_LANES running sums combined in a fixed order
 * at the end: a single running sum is a chain of dependent adds (one per
 * four cycles), while the lanes vectorise. Element j goes to lane j mod
 * CH_LANES, so the order depends on the row's length alone, never on the
 * thread count. */
#define CH_LANES 8
/* The lanes as one vector each (GCC's vector extension): written as
 * arrays, GCC kept the lanes on the stack, a store and a load on every
 * add. */
typedef double ch_d8 __attribute__((vector_size(CH_LANES * sizeof(double))));
typedef float ch_f8 __attribute__((vector_size(CH_LANES * sizeof(float))));

static inline ch_d8 ch_load_f32(const float *p) {
  ch_f8 v;
  memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, ch_d8);
}
/* f64 twin of ch_load_f32 */
static inline ch_d8 ch_load_f64(const double *p) {
  ch_d8 v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Stores v at p, rounded to p's dtype. */
static inline void ch_store_f32(float *p, ch_d8 v) {
  ch_f8 f = __builtin_convertvector(v, ch_f8);
  memcpy(p, &f, sizeof f);
}
/* f64 twin of ch_store_f32 */
static inline void ch_store_f64(double *p, ch_d8 v) { memcpy(p, &v, sizeof v); }

static inline double ch_total(ch_d8 l) {
  double acc = 0;
  for (int k = 0; k < CH_LANES; k++) acc += l[k];
  return acc;
}

/* Two sums over one row of S elements (a layer norm row, a batch norm
 * channel's row) in CH_LANES running sums each, from one pass over the
 * data: the statistics, s1 = sum
 * of v and s2 = sum of v^2 with v = a - shift (shift near the mean, so that
 * the variance s2/n - (s1/n)^2 loses nothing in double); or the gradient's,
 * s1 = sum of b (g) and s2 = sum of b v (times rstd by the caller). */
enum { SUMS_STATS, SUMS_GRAD };
/* Lane l's sums into *s1 and *s2, with the tail's elements j (lanes 0, 1,
 * ...), in lane order. */
static inline void ch_finish(ch_d8 l1, ch_d8 l2, const double *t1, const double *t2,
                             int64_t nt, double *s1, double *s2) {
  for (int64_t l = 0; l < nt; l++) l1[l] += t1[l], l2[l] += t2[l];
  double a = 0, b = 0;
  for (int l = 0; l < CH_LANES; l++) a += l1[l], b += l2[l];
  *s1 += a, *s2 += b;
}

MG_INLINE void lane_sums2_f32(const float *restrict a, const float *restrict b,
                              int64_t S, double sh, int kind, double *s1, double *s2) {
  ch_d8 l1 = {0}, l2 = {0};
  int64_t j = 0;
  for (; j + CH_LANES <= S; j += CH_LANES) {
    ch_d8 v = ch_load_f32(a + j) - sh;
    ch_d8 w = kind == SUMS_GRAD ? ch_load_f32(b + j) : v;
    l1 += w;
    l2 += w * v;
  }
  double t1[CH_LANES], t2[CH_LANES];
  int64_t nt = S - j;
  for (int64_t l = 0; l < nt; l++) {
    double v = (double)a[j + l] - sh, w = kind == SUMS_GRAD ? (double)b[j + l] : v;
    t1[l] = w, t2[l] = w * v;
  }
  ch_finish(l1, l2, t1, t2, nt, s1, s2);
}
/* f64 twin of lane_sums2_f32 */
MG_INLINE void lane_sums2_f64(const double *restrict a, const double *restrict b,
                              int64_t S, double sh, int kind, double *s1, double *s2) {
  ch_d8 l1 = {0}, l2 = {0};
  int64_t j = 0;
  for (; j + CH_LANES <= S; j += CH_LANES) {
    ch_d8 v = ch_load_f64(a + j) - sh;
    ch_d8 w = kind == SUMS_GRAD ? ch_load_f64(b + j) : v;
    l1 += w;
    l2 += w * v;
  }
  double t1[CH_LANES], t2[CH_LANES];
  int64_t nt = S - j;
  for (int64_t l = 0; l < nt; l++) {
    double v = a[j + l] - sh, w = kind == SUMS_GRAD ? b[j + l] : v;
    t1[l] = w, t2[l] = w * v;
  }
  ch_finish(l1, l2, t1, t2, nt, s1, s2);
}

/* ---- layer_norm ---------------------------------------------------------------
 * x [M, D] (leading dims folded, D = the normalized dims), w and b [D]:
 *   y = (x - mean) * rstd * w + b                       per row
 *   gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = g * w
 *   gw = sum over rows of g * xhat, gb = sum over rows of g */

/* Normalizes the M rows of D at X into Y, keeping each row's mean and 1/std
 * (as float64) in MU and RS; W and B are NULL when absent. */
static void layer_norm_rows_f32(mg_Context *ctx, float *Y, double *MU,
                                double *RS, const float *X, const float *W,
                                const float *B, int64_t M, int64_t D,
                                double eps) {
  int nt = mg_threads_for(ctx, M * D);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < M; i++) {
    const float *restrict xr = X + i * D;
    float *restrict yr = Y + i * D;
    /* One pass, about the row's first value (see lane_sums2). */
    double s1 = 0, s2 = 0, sh = D ? xr[0] : 0;
    lane_sums2_f32(xr, NULL, D, sh, SUMS_STATS, &s1, &s2);
    double m = s1 / (double)D, mu = sh + m, v = fmax(s2 / (double)D - m * m, 0);
    double r = 1.0 / sqrt(v + eps);
    /* In float from here, as PyTorch's: the statistics carry the precision. */
    float fm = (float)mu, fr = (float)r;
    if (W && B)
      for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - fm) * fr * W[j] + B[j];
    else
      for (int64_t j = 0; j < D; j++) {
        float h = (xr[j] - fm) * fr;
        yr[j] = (W ? h * W[j] : h) + (B ? B[j] : 0.0f);
      }
    MU[i] = mu, RS[i] = r;
  }
}

/* f64 twin of layer_norm_rows_f32 */
static void layer_norm_rows_f64(mg_Context *ctx, double *Y, double *MU,
                                double *RS, const double *X, const double *W,
                                const double *B, int64_t M, int64_t D,
                                double eps) {
  int nt = mg_threads_for(ctx, M * D);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < M; i++) {
    const double *restrict xr = X + i * D;
    double *restrict yr = Y + i * D;
    /* One pass, about the row's first value (see lane_sums2). */
    double s1 = 0, s2 = 0, sh = D ? xr[0] : 0;
    lane_sums2_f64(xr, NULL, D, sh, SUMS_STATS, &s1, &s2);
    double m = s1 / (double)D, mu = sh + m, v = fmax(s2 / (double)D - m * m, 0);
    double r = 1.0 / sqrt(v + eps);
    int64_t j = 0;
    for (; j + CH_LANES <= D; j += CH_LANES) {
      ch_d8 h = (ch_load_f64(xr + j) - mu) * r;
      if (W) h *= ch_load_f64(W + j);
      if (B) h += ch_load_f64(B + j);
      ch_store_f64(yr + j, h);
    }
    for (; j < D; j++) {
      double h = (xr[j] - mu) * r;
      yr[j] = (W ? h * W[j] : h) + (B ? B[j] : 0.0);
    }
    MU[i] = mu, RS[i] = r;
  }
}

/* One row's gradient: gx (NULL when not needed), and g * xhat and g added
 * into the column sums pw and pb (NULL when not needed). The row sums
 * mean(gh) and mean(gh * xhat) run in CH_LANES lanes, as lane_sum's. */
MG_INLINE void layer_norm_grad_row_f32(float *restrict gx, double *restrict pw,
                                       double *restrict pb, const float *restrict g,
                                       const float *restrict x, const float *restrict W,
                                       double mu, double r, int64_t D) {
  ch_d8 la = {0}, lb = {0};
  int64_t j = 0;
  for (; j + CH_LANES <= D; j += CH_LANES) {
    ch_d8 gj = ch_load_f32(g + j), h = (ch_load_f32(x + j) - mu) * r;
    ch_d8 gh = W ? gj * ch_load_f32(W + j) : gj;
    la += gh, lb += gh * h;
    if (pw) {
      ch_store_f64(pw + j, ch_load_f64(pw + j) + gj * h);
      ch_store_f64(pb + j, ch_load_f64(pb + j) + gj);
    }
  }
  for (int k = 0; j < D; j++, k++) {
    double gj = g[j], h = (x[j] - mu) * r, gh = W ? gj * W[j] : gj;
    la[k] += gh, lb[k] += gh * h;
    if (pw) pw[j] += gj * h, pb[j] += gj;
  }
  if (!gx) return;
  /* In float from here, as the forward's output. */
  float a = (float)(ch_total(la) / (double)D), b = (float)(ch_total(lb) / (double)D);
  float fm = (float)mu, fr = (float)r;
  if (W)
    for (j = 0; j < D; j++) gx[j] = fr * (g[j] * W[j] - a - (x[j] - fm) * fr * b);
  else
    for (j = 0; j < D; j++) gx[j] = fr * (g[j] - a - (x[j] - fm) * fr * b);
}
/* f64 twin of layer_norm_grad_row_f32 */
MG_INLINE void layer_norm_grad_row_f64(double *restrict gx, double *restrict pw,
                                       double *restrict pb, const double *restrict g,
                                       const double *restrict x, const double *restrict W,
                                       double mu, double r, int64_t D) {
  ch_d8 la = {0}, lb = {0};
  int64_t j = 0;
  for (; j + CH_LANES <= D; j += CH_LANES) {
    ch_d8 gj = ch_load_f64(g + j), h = (ch_load_f64(x + j) - mu) * r;
    ch_d8 gh = W ? gj * ch_load_f64(W + j) : gj;
    la += gh, lb += gh * h;
    if (pw) {
      ch_store_f64(pw + j, ch_load_f64(pw + j) + gj * h);
      ch_store_f64(pb + j, ch_load_f64(pb + j) + gj);
    }
  }
  for (int k = 0; j < D; j++, k++) {
    double gj = g[j], h = (x[j] - mu) * r, gh = W ? gj * W[j] : gj;
    la[k] += gh, lb[k] += gh * h;
    if (pw) pw[j] += gj * h, pb[j] += gj;
  }
  if (!gx) return;
  double a = ch_total(la) / (double)D, b = ch_total(lb) / (double)D;
  for (j = 0; j + CH_LANES <= D; j += CH_LANES) {
    ch_d8 gj = ch_load_f64(g + j), h = (ch_load_f64(x + j) - mu) * r;
    ch_d8 gh = W ? gj * ch_load_f64(W + j) : gj;
    ch_store_f64(gx + j, r * (gh - a - h * b));
  }
  for (; j < D; j++) {
    double gj = g[j], h = (x[j] - mu) * r, gh = W ? gj * W[j] : gj;
    gx[j] = r * (gh - a - h * b);
  }
}

/* The rows' gradients: gx into GX (NULL when not needed) and, when part is
 * not NULL, each chunk c's sums of g * xhat and of g over its rows into
 * part + c * D and part + (nch + c) * D. */
static void layer_norm_grad_f32(mg_Context *ctx, float *GX, double *part,
                                int64_t nch, const float *G, const float *X,
                                const float *W, const double *MU,
                                const double *RS, int64_t M, int64_t D) {
  int nt = mg_threads_for(ctx, M * D);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t c = 0; c < nch; c++) {
    double *pw = part ? part + c * D : NULL, *pb = part ? part + (nch + c) * D : NULL;
    for (int64_t i = M * c / nch; i < M * (c + 1) / nch; i++)
      layer_norm_grad_row_f32(GX ? GX + i * D : NULL, pw, pb, G + i * D, X + i * D, W,
                              MU[i], RS[i], D);
  }
}

/* f64 twin of layer_norm_grad_f32 */
static void layer_norm_grad_f64(mg_Context *ctx, double *GX, double *part,
                                int64_t nch, const double *G, const double *X,
                                const double *W, const double *MU,
                                const double *RS, int64_t M, int64_t D) {
  int nt = mg_threads_for(ctx, M * D);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t c = 0; c < nch; c++) {
    double *pw = part ? part + c * D : NULL, *pb = part ? part + (nch + c) * D : NULL;
    for (int64_t i = M * c / nch; i < M * (c + 1) / nch; i++)
      layer_norm_grad_row_f64(GX ? GX + i * D : NULL, pw, pb, G + i * D, X + i * D, W,
                              MU[i], RS[i], D);
  }
}

static int layer_norm_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                               mg_Tensor **grads) {
  mg_Tensor *x = n->saved[0], *w = n->saved[1], *mean = n->saved[2],
            *rstd = n->saved[3], *gc = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
  mg_DType dt = x->dtype;
  int st;
  int64_t M = mg_numel(mean), D = M ? mg_numel(x) / M : 0;
  int need_x = mg_node_needs(n, 0), need_w = n->ninputs > 1 && mg_node_needs(n, 1),
      need_b = n->ninputs > 2 && mg_node_needs(n, 2);
  int64_t nch = mg_nn_nchunks(M, D);
  double *part = NULL;
  if ((st = mg_nn_prep(ctx, &gc, g, dt))) return st;
  if ((need_x && (st = mg_alloc_tensor(ctx, &gx, dt, x->ndim, x->shape))) ||
      (need_w && (st = mg_alloc_tensor(ctx, &gw, dt, 1, &D))) ||
      (need_b && (st = mg_alloc_tensor(ctx, &gb, dt, 1, &D))))
    goto fail;
  if ((need_w || need_b) &&
      !(part = calloc((size_t)(2 * nch * D) + 1, sizeof *part))) {
    st = no_memory(ctx, "layer_norm");
    goto fail;
  }
  void *GX = gx ? mg_data(gx) : NULL;
  const void *W = w ? mg_data(w) : NULL;
  const double *MU = mg_data(mean), *RS = mg_data(rstd);
  switch (dt) {
  case MG_F32:
    layer_norm_grad_f32(ctx, GX, part, nch, mg_data(gc), mg_data(x), W, MU, RS, M, D);
    break;
  case MG_F64:
    layer_norm_grad_f64(ctx, GX, part, nch, mg_data(gc), mg_data(x), W, MU, RS, M, D);
    break;
  default: break; /* nn ops compute in float32 or float64 */
  }
  if (gw) {
    sum_partials(part, nch, D);
    store_doubles(gw, part, D);
  }
  if (gb) {
    sum_partials(part + nch * D, nch, D);
    store_doubles(gb, part + nch * D, D);
  }
  free(part);
  mg_tensor_decref(gc);
  /* w and b have the normalized shape, maybe several dims. */
  if (gw) {
    mg_Tensor *v = NULL;
    if ((st = mg_view(ctx, &v, gw, n->in_ndim[1], n->in_shape[1]))) goto fail2;
    mg_tensor_decref(gw);
    gw = v;
  }
  if (gb) {
    mg_Tensor *v = NULL;
    if ((st = mg_view(ctx, &v, gb, n->in_ndim[2], n->in_shape[2]))) goto fail2;
    mg_tensor_decref(gb);
    gb = v;
  }
  grads[0] = gx;
  if (n->ninputs > 1) grads[1] = gw;
  if (n->ninputs > 2) grads[2] = gb;
  return MG_OK;
fail:
  free(part);
  mg_tensor_decref(gc);
fail2:
  mg_tensor_decref(gx);
  mg_tensor_decref(gw);
  mg_tensor_decref(gb);
  return st;
}

static int same_dims(int n, const int64_t *a, const int64_t *b) {
  return n == 0 || !memcmp(a, b, sizeof(int64_t) * (size_t)n);
}

int mg_layer_norm(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, int nnorm,
                  const int64_t *norm_shape, mg_Tensor *w, mg_Tensor *b,
                  double eps) {
  char sx[MG_SHAPE_BUFSZ], sn[MG_SHAPE_BUFSZ], sp[MG_SHAPE_BUFSZ];
  mg_shape_str(sn, sizeof sn, nnorm, norm_shape);
  if (!(eps >= 0) || isinf(eps)) /* nan or negative: sqrt(var + eps) is nan */
    return mg_error(ctx, MG_EARG, "layer_norm: eps must be a finite number >= 0, "
                    "got %g", eps);
  if (nnorm < 1 || nnorm > x->ndim ||
      !same_dims(nnorm, x->shape + x->ndim - nnorm, norm_shape))
    return mg_error(ctx, MG_ESHAPE, "layer_norm: normalized_shape %s does not "
                    "match the trailing dimensions of input of shape %s", sn,
                    mg_shape_str(sx, sizeof sx, x->ndim, x->shape));
  mg_Tensor *params[2] = {w, b};
  for (int k = 0; k < 2; k++) {
    mg_Tensor *p = params[k];
    if (p && (p->ndim != nnorm || !same_dims(nnorm, p->shape, norm_shape)))
      return mg_error(ctx, MG_ESHAPE, "layer_norm: %s of shape %s does not "
                      "match normalized_shape %s", k ? "bias" : "weight",
                      mg_shape_str(sp, sizeof sp, p->ndim, p->shape), sn);
  }
  int64_t D = 1, M = 1;
  for (int d = 0; d < x->ndim; d++)
    if (d < x->ndim - nnorm) M *= x->shape[d];
    else D *= x->shape[d];
  mg_DType dt = mg_nn_dtype(x->dtype, x->dtype);
  if (w) dt = mg_nn_dtype(dt, w->dtype);
  if (b) dt = mg_nn_dtype(dt, b->dtype);
  mg_Tensor *xc = NULL, *wc = NULL, *bc = NULL, *r = NULL, *mean = NULL,
            *rstd = NULL, *ins[3] = {x, w, b};
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = mg_nn_prep(ctx, &xc, x, dt);
  if (!st && w) st = mg_nn_prep(ctx, &wc, w, dt);
  if (!st && b) st = mg_nn_prep(ctx, &bc, b, dt);
  if (!st) st = mg_alloc_tensor(ctx, &r, dt, x->ndim, x->shape);
  if (!st) st = mg_alloc_tensor(ctx, &mean, MG_F64, 1, &M);
  if (!st) st = mg_alloc_tensor(ctx, &rstd, MG_F64, 1, &M);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  const void *W = wc ? mg_data(wc) : NULL, *B = bc ? mg_data(bc) : NULL;
  if (D > 0) switch (dt) {
    case MG_F32:
      layer_norm_rows_f32(ctx, mg_data(r), mg_data(mean), mg_data(rstd),
                          mg_data(xc), W, B, M, D, eps);
      break;
    case MG_F64:
      layer_norm_rows_f64(ctx, mg_data(r), mg_data(mean), mg_data(rstd),
                          mg_data(xc), W, B, M, D, eps);
      break;
    default: break;
    }
  int nin = b ? 3 : w ? 2 : 1;
  if (mg_needs_grad(ctx, nin, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "layer_norm", layer_norm_backward, nin, ins, &n)) ||
        (st = mg_save(ctx, n, 0, xc)) || (wc && (st = mg_save(ctx, n, 1, wc))) ||
        (st = mg_save(ctx, n, 2, mean)) || (st = mg_save(ctx, n, 3, rstd)))
      goto done;
  }
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(xc);
  mg_tensor_decref(wc);
  mg_tensor_decref(bc);
  mg_tensor_decref(r);
  mg_tensor_decref(mean);
  mg_tensor_decref(rstd);
  return st;
}

/* ---- batch_norm -----------------------------------------------------------------
 * x [N, C, S] (S = the product of the dims after the channel dim), w and b
 * [C]; per channel c over its n = N * S values:
 *   training  y = (x - mean_c) * rstd_c * w_c + b_c with the batch's mean
 *             and biased variance;
 *             gx = w_c * rstd_c * (g - sum(g) / n - xhat * sum(g * xhat) / n)
 *   eval      the same y with the running statistics; gx = g * w_c * rstd_c
 *   both      gw_c = sum(g * xhat), gb_c = sum(g). */

typedef struct {
  int64_t N, C, S;
  int cl; /* laid out [N, S, C] (channels last) rather than [N, C, S] */
} NCS;

/* ---- channels last: [N, S, C], each row of C channels contiguous -------------
 * The same sums, chunks and formulas as the [N, C, S] kernels below, a row
 * of channels at a time (the loops over c vectorise); the sums run in
 * another order, so the last bits may differ from the [N, C, S] path's. */

/* Rows [m0, m1) of channels [c0, c0 + 8 nv) into p1 and p2, the sums in
 * nv vectors of CH_LANES channels held in registers (nv is a constant at
 * each call, so the loops over v unroll): each channel's sum still adds
 * its rows in order, into a partial that starts at 0, so the bits are
 * those of a sum kept in memory. */
MG_INLINE void cl_rows_f32(double *p1, double *p2, const float *a, const float *b,
                           int64_t C, int64_t c0, int64_t m0, int64_t m1,
                           const double *shift, int kind, int nv) {
  ch_d8 s1[8], s2[8], sh[8];
  for (int v = 0; v < nv; v++) {
    s1[v] = (ch_d8){0}, s2[v] = (ch_d8){0};
    sh[v] = ch_load_f64(shift + c0 + CH_LANES * v);
  }
  for (int64_t m = m0; m < m1; m++)
    for (int v = 0; v < nv; v++) {
      int64_t o = m * C + c0 + CH_LANES * v;
      ch_d8 x = ch_load_f32(a + o) - sh[v];
      ch_d8 w = kind == SUMS_GRAD ? ch_load_f32(b + o) : x;
      s1[v] += w, s2[v] += w * x;
    }
  for (int v = 0; v < nv; v++) {
    int64_t c = c0 + CH_LANES * v;
    ch_store_f64(p1 + c, ch_load_f64(p1 + c) + s1[v]);
    ch_store_f64(p2 + c, ch_load_f64(p2 + c) + s2[v]);
  }
}
/* f64 twin of cl_rows_f32 */
MG_INLINE void cl_rows_f64(double *p1, double *p2, const double *a, const double *b,
                           int64_t C, int64_t c0, int64_t m0, int64_t m1,
                           const double *shift, int kind, int nv) {
  ch_d8 s1[8], s2[8], sh[8];
  for (int v = 0; v < nv; v++) {
    s1[v] = (ch_d8){0}, s2[v] = (ch_d8){0};
    sh[v] = ch_load_f64(shift + c0 + CH_LANES * v);
  }
  for (int64_t m = m0; m < m1; m++)
    for (int v = 0; v < nv; v++) {
      int64_t o = m * C + c0 + CH_LANES * v;
      ch_d8 x = ch_load_f64(a + o) - sh[v];
      ch_d8 w = kind == SUMS_GRAD ? ch_load_f64(b + o) : x;
      s1[v] += w, s2[v] += w * x;
    }
  for (int v = 0; v < nv; v++) {
    int64_t c = c0 + CH_LANES * v;
    ch_store_f64(p1 + c, ch_load_f64(p1 + c) + s1[v]);
    ch_store_f64(p2 + c, ch_load_f64(p2 + c) + s2[v]);
  }
}

/* Chunk k's rows of N into part (as channel_partials_f32): channels in
 * groups of 64, 32, 16 or 8 through cl_rows, any left one at a time. */
static void cl_partials_f32(double *part, int64_t k, int64_t nch, NCS s, const float *a,
                            const float *b, const double *shift, int kind) {
  int64_t C = s.C, m0 = s.N * k / nch * s.S, m1 = s.N * (k + 1) / nch * s.S, c0 = 0;
  double *restrict p1 = part + 2 * k * C, *restrict p2 = p1 + C;
  for (int nv = 8; nv >= 1; nv /= 2)
    for (; c0 + nv * CH_LANES <= C; c0 += nv * CH_LANES)
      switch (nv) { /* a constant group size at each call, so cl_rows unrolls */
      case 8: cl_rows_f32(p1, p2, a, b, C, c0, m0, m1, shift, kind, 8); break;
      case 4: cl_rows_f32(p1, p2, a, b, C, c0, m0, m1, shift, kind, 4); break;
      case 2: cl_rows_f32(p1, p2, a, b, C, c0, m0, m1, shift, kind, 2); break;
      default: cl_rows_f32(p1, p2, a, b, C, c0, m0, m1, shift, kind, 1); break;
      }
  for (int64_t m = m0; c0 < C && m < m1; m++)
    for (int64_t c = c0; c < C; c++) {
      double v = (double)a[m * C + c] - shift[c], w = kind == SUMS_GRAD ? (double)b[m * C + c] : v;
      p1[c] += w, p2[c] += w * v;
    }
}
/* f64 twin of cl_partials_f32 */
static void cl_partials_f64(double *part, int64_t k, int64_t nch, NCS s, const double *a,
                            const double *b, const double *shift, int kind) {
  int64_t C = s.C, m0 = s.N * k / nch * s.S, m1 = s.N * (k + 1) / nch * s.S, c0 = 0;
  double *restrict p1 = part + 2 * k * C, *restrict p2 = p1 + C;
  for (int nv = 8; nv >= 1; nv /= 2)
    for (; c0 + nv * CH_LANES <= C; c0 += nv * CH_LANES)
      switch (nv) { /* a constant group size at each call, so cl_rows unrolls */
      case 8: cl_rows_f64(p1, p2, a, b, C, c0, m0, m1, shift, kind, 8); break;
      case 4: cl_rows_f64(p1, p2, a, b, C, c0, m0, m1, shift, kind, 4); break;
      case 2: cl_rows_f64(p1, p2, a, b, C, c0, m0, m1, shift, kind, 2); break;
      default: cl_rows_f64(p1, p2, a, b, C, c0, m0, m1, shift, kind, 1); break;
      }
  for (int64_t m = m0; c0 < C && m < m1; m++)
    for (int64_t c = c0; c < C; c++) {
      double v = a[m * C + c] - shift[c], w = kind == SUMS_GRAD ? b[m * C + c] : v;
      p1[c] += w, p2[c] += w * v;
    }
}

/* y = (x - mean_c) k_c + b_c over rows of C, k = w·rstd per channel
 * (coef: k, mean, b; 3C doubles). */
static void cl_apply_f32(mg_Context *ctx, float *Y, const float *X, const double *coef, NCS s) {
  int64_t C = s.C, M = s.N * s.S;
  const double *K = coef, *MU = coef + C, *T = coef + 2 * C;
  int nt = mg_threads_for(ctx, M * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t m = 0; m < M; m++) {
    const float *restrict xr = X + m * C;
    float *restrict yr = Y + m * C;
    for (int64_t c = 0; c < C; c++) yr[c] = (float)((xr[c] - MU[c]) * K[c] + T[c]);
  }
}
/* f64 twin of cl_apply_f32 */
static void cl_apply_f64(mg_Context *ctx, double *Y, const double *X, const double *coef, NCS s) {
  int64_t C = s.C, M = s.N * s.S;
  const double *K = coef, *MU = coef + C, *T = coef + 2 * C;
  int nt = mg_threads_for(ctx, M * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t m = 0; m < M; m++) {
    const double *restrict xr = X + m * C;
    double *restrict yr = Y + m * C;
    for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - MU[c]) * K[c] + T[c];
  }
}

/* gx = k_c (g - mg_c - (x - mean_c) rstd_c mgx_c), or k_c g without the
 * batch's statistics; coef holds k, mg, mean, rstd·mgx (4C doubles). */
static void cl_grad_x_f32(mg_Context *ctx, float *GX, const float *G, const float *X,
                          const double *coef, NCS s, int batch) {
  int64_t C = s.C, M = s.N * s.S;
  const double *K = coef, *MG = coef + C, *MU = coef + 2 * C, *RG = coef + 3 * C;
  int nt = mg_threads_for(ctx, M * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t m = 0; m < M; m++) {
    const float *restrict gr = G + m * C, *restrict xr = X + m * C;
    float *restrict o = GX + m * C;
    if (batch)
      for (int64_t c = 0; c < C; c++)
        o[c] = (float)(K[c] * (gr[c] - MG[c] - (xr[c] - MU[c]) * RG[c]));
    else
      for (int64_t c = 0; c < C; c++) o[c] = (float)(K[c] * gr[c]);
  }
}
/* f64 twin of cl_grad_x_f32 */
static void cl_grad_x_f64(mg_Context *ctx, double *GX, const double *G, const double *X,
                          const double *coef, NCS s, int batch) {
  int64_t C = s.C, M = s.N * s.S;
  const double *K = coef, *MG = coef + C, *MU = coef + 2 * C, *RG = coef + 3 * C;
  int nt = mg_threads_for(ctx, M * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t m = 0; m < M; m++) {
    const double *restrict gr = G + m * C, *restrict xr = X + m * C;
    double *restrict o = GX + m * C;
    if (batch)
      for (int64_t c = 0; c < C; c++) o[c] = K[c] * (gr[c] - MG[c] - (xr[c] - MU[c]) * RG[c]);
    else
      for (int64_t c = 0; c < C; c++) o[c] = K[c] * gr[c];
  }
}

/* lane_sums2 over chunk k's rows of N, for every chunk of a [N, C, S]
 * buffer a (b: g for SUMS_GRAD, else NULL): part[(2k) C + c] and
 * part[(2k + 1) C + c] += s1 and s2 of channel c. */
static void channel_partials_f32(mg_Context *ctx, double *part, int64_t nch,
                                 NCS s, const float *a, const float *b,
                                 const double *shift, int kind) {
  int64_t C = s.C, S = s.S;
  int nt = mg_threads_for(ctx, s.N * C * S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t k = 0; k < nch; k++) {
    if (s.cl) {
      cl_partials_f32(part, k, nch, s, a, b, shift, kind);
      continue;
    }
    double *p1 = part + 2 * k * C, *p2 = p1 + C;
    for (int64_t i = s.N * k / nch; i < s.N * (k + 1) / nch; i++)
      for (int64_t c = 0; c < C; c++) {
        int64_t o = (i * C + c) * S;
        if (kind == SUMS_GRAD) lane_sums2_f32(a + o, b + o, S, shift[c], SUMS_GRAD, &p1[c], &p2[c]);
        else lane_sums2_f32(a + o, NULL, S, shift[c], SUMS_STATS, &p1[c], &p2[c]);
      }
  }
}

/* f64 twin of channel_partials_f32 */
static void channel_partials_f64(mg_Context *ctx, double *part, int64_t nch,
                                 NCS s, const double *a, const double *b,
                                 const double *shift, int kind) {
  int64_t C = s.C, S = s.S;
  int nt = mg_threads_for(ctx, s.N * C * S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t k = 0; k < nch; k++) {
    if (s.cl) {
      cl_partials_f64(part, k, nch, s, a, b, shift, kind);
      continue;
    }
    double *p1 = part + 2 * k * C, *p2 = p1 + C;
    for (int64_t i = s.N * k / nch; i < s.N * (k + 1) / nch; i++)
      for (int64_t c = 0; c < C; c++) {
        int64_t o = (i * C + c) * S;
        if (kind == SUMS_GRAD) lane_sums2_f64(a + o, b + o, S, shift[c], SUMS_GRAD, &p1[c], &p2[c]);
        else lane_sums2_f64(a + o, NULL, S, shift[c], SUMS_STATS, &p1[c], &p2[c]);
      }
  }
}

/* s1[c] and s2[c] = the per-channel sums of lane_sums2 over all N rows of
 * the dt buffers a and b, through fixed chunks of N (so the order of the
 * additions does not depend on the thread count). */
static int channel_sums2(mg_Context *ctx, double *s1, double *s2, NCS s, mg_DType dt,
                         const void *a, const void *b, const double *shift, int kind) {
  int64_t nch = mg_nn_nchunks(s.N, s.C * s.S), C = s.C;
  double *part = calloc((size_t)(2 * nch * C) + 1, sizeof *part);
  if (!part) return no_memory(ctx, "batch_norm");
  switch (dt) {
  case MG_F32: channel_partials_f32(ctx, part, nch, s, a, b, shift, kind); break;
  case MG_F64: channel_partials_f64(ctx, part, nch, s, a, b, shift, kind); break;
  default: break;
  }
  for (int64_t c = 0; c < C; c++) {
    double t1 = 0, t2 = 0;
    for (int64_t k = 0; k < nch; k++) t1 += part[2 * k * C + c], t2 += part[(2 * k + 1) * C + c];
    s1[c] = t1, s2[c] = t2;
  }
  free(part);
  return MG_OK;
}

/* The first element of each channel of the dt buffer a [N, C, S] (N, S >
 * 0): a shift within the channel's range for its statistics. */
static void channel_firsts(double *out, const void *a, mg_DType dt, NCS s) {
  int64_t step = s.cl ? 1 : s.S;
  switch (dt) {
  case MG_F32:
    for (int64_t c = 0; c < s.C; c++) out[c] = ((const float *)a)[c * step];
    break;
  case MG_F64:
    for (int64_t c = 0; c < s.C; c++) out[c] = ((const double *)a)[c * step];
    break;
  default: break;
  }
}

/* y = (x - mean_c) * rstd_c * w_c + b_c (W, B NULL when absent). */
static void batch_norm_apply_f32(mg_Context *ctx, float *Y, const float *X,
                                 const float *W, const float *B,
                                 const double *MU, const double *RS, NCS s) {
  int64_t C = s.C;
  int nt = mg_threads_for(ctx, s.N * s.S * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < s.N; i++)
    for (int64_t c = 0; c < C; c++) {
      int64_t o = (i * C + c) * s.S;
      double k = (W ? W[c] : 1.0) * RS[c], sh = B ? B[c] : 0.0;
      for (int64_t j = 0; j < s.S; j++)
        Y[o + j] = (X[o + j] - MU[c]) * k + sh;
    }
}

/* f64 twin of batch_norm_apply_f32 */
static void batch_norm_apply_f64(mg_Context *ctx, double *Y, const double *X,
                                 const double *W, const double *B,
                                 const double *MU, const double *RS, NCS s) {
  int64_t C = s.C;
  int nt = mg_threads_for(ctx, s.N * s.S * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < s.N; i++)
    for (int64_t c = 0; c < C; c++) {
      int64_t o = (i * C + c) * s.S;
      double k = (W ? W[c] : 1.0) * RS[c], sh = B ? B[c] : 0.0;
      for (int64_t j = 0; j < s.S; j++)
        Y[o + j] = (X[o + j] - MU[c]) * k + sh;
    }
}

/* gx from g, given the per-channel sums sg of g and sgx of g * xhat: with
 * the batch's statistics (batch) or with constant ones. */
static void batch_norm_grad_x_f32(mg_Context *ctx, float *GX, const float *G,
                                  const float *X, const float *W,
                                  const double *MU, const double *RS,
                                  const double *sg, const double *sgx, NCS s,
                                  int batch) {
  int64_t C = s.C, S = s.S, cnt = s.N * S;
  int nt = mg_threads_for(ctx, s.N * C * S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < s.N; i++)
    for (int64_t c = 0; c < C; c++) {
      int64_t o = (i * C + c) * S;
      double k = (W ? W[c] : 1.0) * RS[c];
      double mg_ = sg[c] / (double)cnt, mgx = sgx[c] / (double)cnt;
      for (int64_t j = 0; j < S; j++) {
        double gj = G[o + j];
        if (batch) {
          double h = (X[o + j] - MU[c]) * RS[c];
          GX[o + j] = k * (gj - mg_ - h * mgx);
        } else {
          GX[o + j] = k * gj;
        }
      }
    }
}

/* f64 twin of batch_norm_grad_x_f32 */
static void batch_norm_grad_x_f64(mg_Context *ctx, double *GX, const double *G,
                                  const double *X, const double *W,
                                  const double *MU, const double *RS,
                                  const double *sg, const double *sgx, NCS s,
                                  int batch) {
  int64_t C = s.C, S = s.S, cnt = s.N * S;
  int nt = mg_threads_for(ctx, s.N * C * S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < s.N; i++)
    for (int64_t c = 0; c < C; c++) {
      int64_t o = (i * C + c) * S;
      double k = (W ? W[c] : 1.0) * RS[c];
      double mg_ = sg[c] / (double)cnt, mgx = sgx[c] / (double)cnt;
      for (int64_t j = 0; j < S; j++) {
        double gj = G[o + j];
        if (batch) {
          double h = (X[o + j] - MU[c]) * RS[c];
          GX[o + j] = k * (gj - mg_ - h * mgx);
        } else {
          GX[o + j] = k * gj;
        }
      }
    }
}

/* dst[c] = P[c] for c < n, as doubles (P, w or b, of dtype dt), or def
 * throughout when P is NULL. */
static void params(double *dst, const void *P, mg_DType dt, int64_t n, double def) {
  if (!P) {
    for (int64_t c = 0; c < n; c++) dst[c] = def;
  } else if (dt == MG_F32) {
    load_doubles_f32(dst, P, 1, n);
  } else {
    load_doubles_f64(dst, P, 1, n);
  }
}

/* y from x in either layout. */
static int bn_apply(mg_Context *ctx, mg_DType dt, void *Y, const void *X, const void *W,
                    const void *B, const double *MU, const double *RS, NCS s) {
  if (!s.cl) {
    if (dt == MG_F32) batch_norm_apply_f32(ctx, Y, X, W, B, MU, RS, s);
    else batch_norm_apply_f64(ctx, Y, X, W, B, MU, RS, s);
    return MG_OK;
  }
  int64_t C = s.C;
  double *coef = malloc(sizeof *coef * (size_t)(3 * C + 1));
  if (!coef) return no_memory(ctx, "batch_norm");
  params(coef, W, dt, C, 1.0);
  params(coef + 2 * C, B, dt, C, 0.0);
  for (int64_t c = 0; c < C; c++) coef[c] *= RS[c], coef[C + c] = MU[c];
  if (dt == MG_F32) cl_apply_f32(ctx, Y, X, coef, s);
  else cl_apply_f64(ctx, Y, X, coef, s);
  free(coef);
  return MG_OK;
}

/* gx from g in either layout (see batch_norm_grad_x_f32). */
static int bn_grad_x(mg_Context *ctx, mg_DType dt, void *GX, const void *G, const void *X,
                     const void *W, const double *MU, const double *RS, const double *sg,
                     const double *sgx, NCS s, int batch) {
  if (!s.cl) {
    if (dt == MG_F32) batch_norm_grad_x_f32(ctx, GX, G, X, W, MU, RS, sg, sgx, s, batch);
    else batch_norm_grad_x_f64(ctx, GX, G, X, W, MU, RS, sg, sgx, s, batch);
    return MG_OK;
  }
  int64_t C = s.C, cnt = s.N * s.S;
  double *coef = malloc(sizeof *coef * (size_t)(4 * C + 1));
  if (!coef) return no_memory(ctx, "batch_norm");
  params(coef, W, dt, C, 1.0);
  for (int64_t c = 0; c < C; c++) {
    coef[c] *= RS[c];
    coef[C + c] = sg[c] / (double)cnt;
    coef[2 * C + c] = MU[c];
    coef[3 * C + c] = RS[c] * (sgx[c] / (double)cnt);
  }
  if (dt == MG_F32) cl_grad_x_f32(ctx, GX, G, X, coef, s, batch);
  else cl_grad_x_f64(ctx, GX, G, X, coef, s, batch);
  free(coef);
  return MG_OK;
}

static int batch_norm_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                               mg_Tensor **grads) {
  mg_Tensor *x = n->saved[0], *w = n->saved[1], *mean = n->saved[2],
            *rstd = n->saved[3], *gc = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
  mg_DType dt = x->dtype;
  int batch = (int)n->i[0], st;
  NCS s = {x->shape[0], x->shape[1], 1, mg_nn_channels_last(x, dt)};
  for (int d = 2; d < x->ndim; d++) s.S *= x->shape[d];
  int64_t C = s.C;
  const double *MU = mg_data(mean), *RS = mg_data(rstd);
  double *sg = calloc((size_t)(2 * C) + 1, sizeof *sg), *sgx = sg + C;
  if (!sg) return no_memory(ctx, "batch_norm");
  if ((st = mg_nn_prep_layout(ctx, &gc, g, dt, s.cl))) goto fail;
  const void *X = mg_data(x), *G = mg_data(gc), *W = w ? mg_data(w) : NULL;
  /* sum(g) and sum(g * xhat) = rstd * sum(g * (x - mean)), in one pass */
  if ((st = channel_sums2(ctx, sg, sgx, s, dt, X, G, MU, SUMS_GRAD))) goto fail;
  for (int64_t c = 0; c < C; c++) sgx[c] *= RS[c];
  if (mg_node_needs(n, 0)) {
    if ((st = mg_alloc_like(ctx, &gx, dt, x->ndim, x->shape, x)) ||
        (st = bn_grad_x(ctx, dt, mg_data(gx), G, X, W, MU, RS, sg, sgx, s, batch)))
      goto fail;
  }
  if (n->ninputs > 1 && mg_node_needs(n, 1)) {
    if ((st = mg_alloc_tensor(ctx, &gw, dt, 1, &C))) goto fail;
    store_doubles(gw, sgx, C);
  }
  if (n->ninputs > 2 && mg_node_needs(n, 2)) {
    if ((st = mg_alloc_tensor(ctx, &gb, dt, 1, &C))) goto fail;
    store_doubles(gb, sg, C);
  }
  free(sg);
  mg_tensor_decref(gc);
  grads[0] = gx;
  if (n->ninputs > 1) grads[1] = gw;
  if (n->ninputs > 2) grads[2] = gb;
  return MG_OK;
fail:
  free(sg);
  mg_tensor_decref(gc);
  mg_tensor_decref(gx);
  mg_tensor_decref(gw);
  mg_tensor_decref(gb);
  return st;
}

static int check_channel_param(mg_Context *ctx, const char *what,
                               const mg_Tensor *p, const mg_Tensor *x) {
  char sp[MG_SHAPE_BUFSZ], sx[MG_SHAPE_BUFSZ];
  if (!p) return MG_OK;
  if (p->ndim != 1 || p->shape[0] != x->shape[1])
    return mg_error(ctx, MG_ESHAPE, "batch_norm: %s of shape %s does not "
                    "match the %lld channels of input of shape %s", what,
                    mg_shape_str(sp, sizeof sp, p->ndim, p->shape),
                    (long long)x->shape[1],
                    mg_shape_str(sx, sizeof sx, x->ndim, x->shape));
  if (p->dtype == MG_I64)
    return mg_error(ctx, MG_EARG, "batch_norm: %s must be float32 or float64, "
                    "got int64", what);
  return MG_OK;
}

int mg_batch_norm(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                  mg_Tensor *running_mean, mg_Tensor *running_var,
                  mg_Tensor *w, mg_Tensor *b, int training, double momentum,
                  double eps) {
  char sx[MG_SHAPE_BUFSZ];
  mg_shape_str(sx, sizeof sx, x->ndim, x->shape);
  if (!(eps >= 0) || isinf(eps)) /* nan or negative: sqrt(var + eps) is nan */
    return mg_error(ctx, MG_EARG, "batch_norm: eps must be a finite number >= 0, "
                    "got %g", eps);
  if (!(momentum >= 0 && momentum <= 1)) /* a weight between old and new stats */
    return mg_error(ctx, MG_EARG, "batch_norm: momentum must be in [0, 1], got %g",
                    momentum);
  if (x->ndim < 2)
    return mg_error(ctx, MG_ESHAPE, "batch_norm: expected input [N, C, ...] "
                    "with at least 2 dimensions, got shape %s", sx);
  if (!running_mean != !running_var)
    return mg_error(ctx, MG_EARG, "batch_norm: running_mean and running_var "
                    "must be given together (or both nil)");
  int st;
  if ((st = check_channel_param(ctx, "running_mean", running_mean, x)) ||
      (st = check_channel_param(ctx, "running_var", running_var, x)) ||
      (st = check_channel_param(ctx, "weight", w, x)) ||
      (st = check_channel_param(ctx, "bias", b, x)))
    return st;
  NCS s = {x->shape[0], x->shape[1], 1, 0};
  for (int d = 2; d < x->ndim; d++) s.S *= x->shape[d];
  int64_t C = s.C, cnt = s.N * s.S;
  int batch = training || !running_mean;
  if (batch && cnt <= 1)
    return mg_error(ctx, MG_EARG, "batch_norm: expected more than 1 value per "
                    "channel when training, got input of shape %s", sx);
  int update = training && running_mean;
  if (update && ((st = mg_check_inplace(ctx, "batch_norm (running_mean)", running_mean)) ||
                 (st = mg_check_inplace(ctx, "batch_norm (running_var)", running_var))))
    return st;
  mg_DType dt = mg_nn_dtype(x->dtype, x->dtype);
  if (w) dt = mg_nn_dtype(dt, w->dtype);
  if (b) dt = mg_nn_dtype(dt, b->dtype);
  mg_Tensor *xc = NULL, *wc = NULL, *bc = NULL, *r = NULL, *mean = NULL,
            *rstd = NULL, *ins[3] = {x, w, b};
  double *unbiased = NULL;
  /* A channels-last batch is normalized as it lies, into a channels-last
   * result. */
  s.cl = mg_nn_channels_last(x, dt);
  int mode = mg_set_grad_enabled(ctx, 0);
  st = mg_nn_prep_layout(ctx, &xc, x, dt, s.cl);
  if (!st && w) st = mg_nn_prep(ctx, &wc, w, dt);
  if (!st && b) st = mg_nn_prep(ctx, &bc, b, dt);
  if (!st) st = mg_alloc_like(ctx, &r, dt, x->ndim, x->shape, xc);
  if (!st) st = mg_alloc_tensor(ctx, &mean, MG_F64, 1, &C);
  if (!st) st = mg_alloc_tensor(ctx, &rstd, MG_F64, 1, &C);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  double *MU = mg_data(mean), *RS = mg_data(rstd);
  const void *X = mg_data(xc), *W = wc ? mg_data(wc) : NULL,
             *B = bc ? mg_data(bc) : NULL;
  if (update && !(unbiased = malloc(sizeof *unbiased * (size_t)(C + 1)))) {
    st = no_memory(ctx, "batch_norm");
    goto done;
  }
  if (batch) {
    /* One pass: the sums of d = x - x_first and of d^2 (MU and RS hold
     * them), then mean = x_first + mean(d), and the sum of squares about
     * the mean sum(d^2) - sum(d)^2 / n. */
    double *first = malloc(sizeof *first * (size_t)(C + 1));
    if (!first) {
      st = no_memory(ctx, "batch_norm");
      goto done;
    }
    channel_firsts(first, X, dt, s);
    st = channel_sums2(ctx, MU, RS, s, dt, X, NULL, first, SUMS_STATS);
    for (int64_t c = 0; !st && c < C; c++) {
      double d = MU[c] / (double)cnt, ss = RS[c] - MU[c] * d;
      ss = ss > 0 ? ss : 0; /* rounding can leave a constant channel a hair below 0 */
      if (update) unbiased[c] = ss / (double)(cnt - 1);
      RS[c] = 1.0 / sqrt(ss / (double)cnt + eps);
      MU[c] = first[c] + d;
    }
    free(first);
    if (st) goto done;
  } else {
    load_doubles(MU, running_mean, C);
    load_doubles(RS, running_var, C);
    for (int64_t c = 0; c < C; c++) RS[c] = 1.0 / sqrt(RS[c] + eps);
  }
  if ((st = bn_apply(ctx, dt, mg_data(r), X, W, B, MU, RS, s))) goto done;
  int nin = b ? 3 : w ? 2 : 1;
  if (mg_needs_grad(ctx, nin, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "batch_norm", batch_norm_backward, nin, ins, &n)) ||
        (st = mg_save(ctx, n, 0, xc)) || (wc && (st = mg_save(ctx, n, 1, wc))) ||
        (st = mg_save(ctx, n, 2, mean)) || (st = mg_save(ctx, n, 3, rstd)))
      goto done;
    n->i[0] = batch;
  }
  /* Last, once nothing can fail: a failed call has no effect. */
  if (update) {
    blend(running_mean, MU, C, momentum);
    blend(running_var, unbiased, C, momentum);
    mg_bump_version(running_mean);
    mg_bump_version(running_var);
  }
  *out = r;
  r = NULL;
done:
  free(unbiased);
  mg_tensor_decref(xc);
  mg_tensor_decref(wc);
  mg_tensor_decref(bc);
  mg_tensor_decref(r);
  mg_tensor_decref(mean);
  mg_tensor_decref(rstd);
  return st;
}
