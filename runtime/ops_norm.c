/*
 * ops_norm.c — layer_norm and batch_norm, forward and backward.
 *
 * Statistics accumulate in double whatever the data's dtype, the variance
 * in a second pass over (x - mean) rather than as E[x²] - E[x]², and the
 * per-row (layer_norm) or per-channel (batch_norm) mean and 1/std are kept
 * as float64 tensors for the backward. Sums across rows go through fixed
 * chunks (mg_nn_internal.h), so results never depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_nn_internal.h"

/* Element i of a 1-D float tensor of any stride, as double. */
static inline double at(const mg_Tensor *t, int64_t i) {
  const char *p = (const char *)mg_data(t);
  return t->dtype == MG_F32 ? (double)((const float *)p)[i * t->stride[0]]
                            : ((const double *)p)[i * t->stride[0]];
}

static inline void put(mg_Tensor *t, int64_t i, double v) {
  char *p = (char *)mg_data(t);
  if (t->dtype == MG_F32) ((float *)p)[i * t->stride[0]] = (float)v;
  else ((double *)p)[i * t->stride[0]] = v;
}

/* x[i] of a contiguous float32 or float64 buffer, as double. */
static inline double ld(const void *x, int f32, int64_t i) {
  return f32 ? (double)((const float *)x)[i] : ((const double *)x)[i];
}
static inline void st_(void *x, int f32, int64_t i, double v) {
  if (f32) ((float *)x)[i] = (float)v;
  else ((double *)x)[i] = v;
}

/* Sums the nch partial arrays of n doubles at part in chunk order into t
 * (a contiguous [n] tensor). */
static void sum_partials(mg_Tensor *t, const double *part, int64_t nch,
                         int64_t n) {
  int f32 = t->dtype == MG_F32;
  for (int64_t j = 0; j < n; j++) {
    double s = 0;
    for (int64_t c = 0; c < nch; c++) s += part[c * n + j];
    st_(mg_data(t), f32, j, s);
  }
}

static int no_memory(mg_Context *ctx, const char *op) {
  return mg_error(ctx, MG_ENOMEM, "%s: not enough memory for partial sums", op);
}

/* ---- layer_norm ---------------------------------------------------------------
 * x [M, D] (leading dims folded, D = the normalized dims), w and b [D]:
 *   y = (x - mean) * rstd * w + b                       per row
 *   gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = g * w
 *   gw = sum over rows of g * xhat, gb = sum over rows of g */

static void layer_norm_rows(mg_Context *ctx, mg_Tensor *y, mg_Tensor *mean,
                            mg_Tensor *rstd, const mg_Tensor *x,
                            const mg_Tensor *w, const mg_Tensor *b, int64_t M,
                            int64_t D, double eps) {
  int f32 = x->dtype == MG_F32;
  const void *X = mg_data(x), *W = w ? mg_data(w) : NULL, *B = b ? mg_data(b) : NULL;
  void *Y = mg_data(y);
  double *MU = mg_data(mean), *RS = mg_data(rstd);
  int nt = mg_threads_for(ctx, M * D);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < M; i++) {
    int64_t o = i * D;
    double s = 0, v = 0;
    if (f32) {
      const float *xr = (const float *)X + o;
      for (int64_t j = 0; j < D; j++) s += xr[j];
      double mu = s / (double)D;
      for (int64_t j = 0; j < D; j++) v += (xr[j] - mu) * (xr[j] - mu);
      double r = 1.0 / sqrt(v / (double)D + eps);
      float *yr = (float *)Y + o;
      const float *wr = W, *br = B;
      for (int64_t j = 0; j < D; j++) {
        float h = (float)((xr[j] - mu) * r);
        yr[j] = (wr ? h * wr[j] : h) + (br ? br[j] : 0.0f);
      }
      MU[i] = mu, RS[i] = r;
    } else {
      const double *xr = (const double *)X + o;
      for (int64_t j = 0; j < D; j++) s += xr[j];
      double mu = s / (double)D;
      for (int64_t j = 0; j < D; j++) v += (xr[j] - mu) * (xr[j] - mu);
      double r = 1.0 / sqrt(v / (double)D + eps);
      double *yr = (double *)Y + o;
      const double *wr = W, *br = B;
      for (int64_t j = 0; j < D; j++) {
        double h = (xr[j] - mu) * r;
        yr[j] = (wr ? h * wr[j] : h) + (br ? br[j] : 0.0);
      }
      MU[i] = mu, RS[i] = r;
    }
  }
}

static int layer_norm_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                               mg_Tensor **grads) {
  mg_Tensor *x = n->saved[0], *w = n->saved[1], *mean = n->saved[2],
            *rstd = n->saved[3], *gc = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
  mg_DType dt = x->dtype;
  int f32 = dt == MG_F32, st;
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
  const void *X = mg_data(x), *G = mg_data(gc), *W = w ? mg_data(w) : NULL;
  void *GX = gx ? mg_data(gx) : NULL;
  const double *MU = mg_data(mean), *RS = mg_data(rstd);
  int nt = mg_threads_for(ctx, M * D);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t c = 0; c < nch; c++) {
    double *pw = part ? part + c * D : NULL, *pb = part ? part + (nch + c) * D : NULL;
    for (int64_t i = M * c / nch; i < M * (c + 1) / nch; i++) {
      int64_t o = i * D;
      double mu = MU[i], r = RS[i], a = 0, b = 0;
      for (int64_t j = 0; j < D; j++) {
        double gj = ld(G, f32, o + j), h = (ld(X, f32, o + j) - mu) * r;
        double gh = W ? gj * ld(W, f32, j) : gj;
        a += gh, b += gh * h;
        if (pw) pw[j] += gj * h, pb[j] += gj;
      }
      if (!GX) continue;
      a /= (double)D, b /= (double)D;
      for (int64_t j = 0; j < D; j++) {
        double gj = ld(G, f32, o + j), h = (ld(X, f32, o + j) - mu) * r;
        double gh = W ? gj * ld(W, f32, j) : gj;
        st_(GX, f32, o + j, r * (gh - a - h * b));
      }
    }
  }
  if (gw) sum_partials(gw, part, nch, D);
  if (gb) sum_partials(gb, part + nch * D, nch, D);
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
  if (D > 0) layer_norm_rows(ctx, r, mean, rstd, xc, wc, bc, M, D, eps);
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
} NCS;

/* Per-channel sums over the N and S dims of f(value, channel) for a [N, C,
 * S] buffer: out[c] = sum of (a[i] - shift[c]) * (b ? b[i] : 1) (or the
 * square of a[i] - shift[c] when square), through fixed chunks of N. */
static int channel_sums(mg_Context *ctx, double *out, NCS s, const void *a,
                        const double *shift, const double *scale,
                        const void *b, int square, int f32) {
  int64_t nch = mg_nn_nchunks(s.N, s.C * s.S), C = s.C, S = s.S;
  double *part = calloc((size_t)(nch * C) + 1, sizeof *part);
  if (!part) return no_memory(ctx, "batch_norm");
  int nt = mg_threads_for(ctx, s.N * C * S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t k = 0; k < nch; k++) {
    double *p = part + k * C;
    for (int64_t i = s.N * k / nch; i < s.N * (k + 1) / nch; i++)
      for (int64_t c = 0; c < C; c++) {
        int64_t o = (i * C + c) * S;
        double sh = shift ? shift[c] : 0, sc = scale ? scale[c] : 1, acc = 0;
        for (int64_t j = 0; j < S; j++) {
          double v = (ld(a, f32, o + j) - sh) * sc;
          acc += square ? v * v : b ? v * ld(b, f32, o + j) : v;
        }
        p[c] += acc;
      }
  }
  for (int64_t c = 0; c < C; c++) {
    double t = 0;
    for (int64_t k = 0; k < nch; k++) t += part[k * C + c];
    out[c] = t;
  }
  free(part);
  return MG_OK;
}

static int batch_norm_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                               mg_Tensor **grads) {
  mg_Tensor *x = n->saved[0], *w = n->saved[1], *mean = n->saved[2],
            *rstd = n->saved[3], *gc = NULL, *gx = NULL, *gw = NULL, *gb = NULL;
  mg_DType dt = x->dtype;
  int f32 = dt == MG_F32, batch = (int)n->i[0], st;
  NCS s = {x->shape[0], x->shape[1], 1};
  for (int d = 2; d < x->ndim; d++) s.S *= x->shape[d];
  int64_t C = s.C, S = s.S, cnt = s.N * S;
  const double *MU = mg_data(mean), *RS = mg_data(rstd);
  double *sg = calloc((size_t)(2 * C) + 1, sizeof *sg), *sgx = sg + C;
  if (!sg) return no_memory(ctx, "batch_norm");
  if ((st = mg_nn_prep(ctx, &gc, g, dt))) goto fail;
  const void *X = mg_data(x), *G = mg_data(gc);
  if ((st = channel_sums(ctx, sg, s, G, NULL, NULL, NULL, 0, f32)) ||
      (st = channel_sums(ctx, sgx, s, X, MU, RS, G, 0, f32)))
    goto fail;
  if (mg_node_needs(n, 0)) {
    if ((st = mg_alloc_tensor(ctx, &gx, dt, x->ndim, x->shape))) goto fail;
    void *GX = mg_data(gx);
    int nt = mg_threads_for(ctx, s.N * C * S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < s.N; i++)
      for (int64_t c = 0; c < C; c++) {
        int64_t o = (i * C + c) * S;
        double k = (w ? at(w, c) : 1.0) * RS[c];
        double mg_ = sg[c] / (double)cnt, mgx = sgx[c] / (double)cnt;
        for (int64_t j = 0; j < S; j++) {
          double gj = ld(G, f32, o + j);
          if (batch) {
            double h = (ld(X, f32, o + j) - MU[c]) * RS[c];
            st_(GX, f32, o + j, k * (gj - mg_ - h * mgx));
          } else {
            st_(GX, f32, o + j, k * gj);
          }
        }
      }
  }
  if (n->ninputs > 1 && mg_node_needs(n, 1)) {
    if ((st = mg_alloc_tensor(ctx, &gw, dt, 1, &C))) goto fail;
    for (int64_t c = 0; c < C; c++) st_(mg_data(gw), f32, c, sgx[c]);
  }
  if (n->ninputs > 2 && mg_node_needs(n, 2)) {
    if ((st = mg_alloc_tensor(ctx, &gb, dt, 1, &C))) goto fail;
    for (int64_t c = 0; c < C; c++) st_(mg_data(gb), f32, c, sg[c]);
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
  NCS s = {x->shape[0], x->shape[1], 1};
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
  int mode = mg_set_grad_enabled(ctx, 0);
  st = mg_nn_prep(ctx, &xc, x, dt);
  if (!st && w) st = mg_nn_prep(ctx, &wc, w, dt);
  if (!st && b) st = mg_nn_prep(ctx, &bc, b, dt);
  if (!st) st = mg_alloc_tensor(ctx, &r, dt, x->ndim, x->shape);
  if (!st) st = mg_alloc_tensor(ctx, &mean, MG_F64, 1, &C);
  if (!st) st = mg_alloc_tensor(ctx, &rstd, MG_F64, 1, &C);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  int f32 = dt == MG_F32;
  double *MU = mg_data(mean), *RS = mg_data(rstd);
  const void *X = mg_data(xc);
  if (update && !(unbiased = malloc(sizeof *unbiased * (size_t)(C + 1)))) {
    st = no_memory(ctx, "batch_norm");
    goto done;
  }
  if (batch) {
    if ((st = channel_sums(ctx, MU, s, X, NULL, NULL, NULL, 0, f32))) goto done;
    for (int64_t c = 0; c < C; c++) MU[c] /= (double)cnt;
    if ((st = channel_sums(ctx, RS, s, X, MU, NULL, NULL, 1, f32))) goto done;
    for (int64_t c = 0; c < C; c++) { /* RS holds the sum of squares */
      if (update) unbiased[c] = RS[c] / (double)(cnt - 1);
      RS[c] = 1.0 / sqrt(RS[c] / (double)cnt + eps);
    }
  } else {
    for (int64_t c = 0; c < C; c++) {
      MU[c] = at(running_mean, c);
      RS[c] = 1.0 / sqrt(at(running_var, c) + eps);
    }
  }
  void *Y = mg_data(r);
  int nt = mg_threads_for(ctx, cnt * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < s.N; i++)
    for (int64_t c = 0; c < C; c++) {
      int64_t o = (i * C + c) * s.S;
      double k = (wc ? at(wc, c) : 1.0) * RS[c], sh = bc ? at(bc, c) : 0.0;
      for (int64_t j = 0; j < s.S; j++)
        st_(Y, f32, o + j, (ld(X, f32, o + j) - MU[c]) * k + sh);
    }
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
    for (int64_t c = 0; c < C; c++) {
      put(running_mean, c, (1 - momentum) * at(running_mean, c) + momentum * MU[c]);
      put(running_var, c, (1 - momentum) * at(running_var, c) + momentum * unbiased[c]);
    }
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
