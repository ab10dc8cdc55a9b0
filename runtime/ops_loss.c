/*
 * ops_loss.c — loss functions: cross_entropy (softmax fused in), nll_loss,
 * and the elementwise losses (mse, l1, smooth_l1, huber, binary cross
 * entropy on probabilities and on logits), each forward and backward.
 *
 * Semantics are PyTorch's, including the weighted mean (divided by the
 * summed weight of the targets that count, not by their number), label
 * smoothing with class weights, and BCE's log clamped at -100. Losses are
 * computed in double whatever the data's dtype; sums across rows go
 * through fixed chunks (mg_nn_internal.h), so they never depend on the thread
 * count. Each kernel is written for float32 and then, as its "f64 twin",
 * for float64; the entry points pick one per call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_nn_internal.h"
#include "mg_vmath.h"

static const char *const loss_names[MG_NLOSS] = {
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits"};
_Static_assert(sizeof loss_names / sizeof *loss_names == MG_NLOSS,
               "a loss without a name");

const char *mg_loss_name(mg_LossKind kind) { return loss_names[kind]; }

/* The result of a reduction over nrows per-row losses: a 0-d tensor for
 * mean and sum, else shaped (ndim, shape). */
static int alloc_result(mg_Context *ctx, mg_Tensor **out, mg_DType dt,
                        mg_Reduction red, int ndim, const int64_t *shape) {
  if (red == MG_REDUCTION_NONE) return mg_alloc_tensor(ctx, out, dt, ndim, shape);
  return mg_alloc_tensor(ctx, out, dt, 0, NULL);
}

/* A reduced loss's value into its 0-d result. */
static void set_result(mg_Tensor *r, double v) {
  switch (r->dtype) {
  case MG_F32: *(float *)mg_data(r) = (float)v; break;
  case MG_F64: *(double *)mg_data(r) = v; break;
  default: break; /* losses compute in float32 or float64 */
  }
}

/* The factor row r's gradient is scaled by: g[r] itself for 'none', else
 * the one-element g (gs) over the mean's denominator. */
static inline double row_scale_f32(int red, const float *G, int64_t r,
                                   double gs, double denom) {
  if (red == MG_REDUCTION_NONE) return G[r];
  return red == MG_REDUCTION_MEAN ? gs / denom : gs;
}

/* f64 twin of row_scale_f32 */
static inline double row_scale_f64(int red, const double *G, int64_t r,
                                   double gs, double denom) {
  if (red == MG_REDUCTION_NONE) return G[r];
  return red == MG_REDUCTION_MEAN ? gs / denom : gs;
}

/* ---- class layouts ------------------------------------------------------------
 * Inputs are [N, K, d...] (or an unbatched [K]) and seen as N x K x S with
 * S = prod(d...): row r = (n, s) has its K classes S apart, starting at
 * n * K * S + s. Class targets are [N, d...] (0-d when unbatched). */

typedef struct {
  int64_t N, K, S;
} Layout;

static Layout layout_of(const mg_Tensor *x) {
  Layout L = {1, x->shape[x->ndim == 1 ? 0 : 1], 1};
  if (x->ndim >= 2) L.N = x->shape[0];
  for (int d = 2; d < x->ndim; d++) L.S *= x->shape[d];
  return L;
}

static inline int64_t row_start(Layout L, int64_t r) {
  return (r / L.S) * L.K * L.S + r % L.S;
}

/* The shape class targets must have for input x: x's without dim 2. */
static int target_shape(const mg_Tensor *x, int64_t *shape) {
  if (x->ndim == 1) return 0;
  int n = 0;
  for (int d = 0; d < x->ndim; d++)
    if (d != 1) shape[n++] = x->shape[d];
  return n;
}

static int check_class_input(mg_Context *ctx, const char *op, const char *what,
                             const mg_Tensor *x, const mg_Tensor *t, int soft) {
  char sx[MG_SHAPE_BUFSZ], st[MG_SHAPE_BUFSZ];
  mg_shape_str(sx, sizeof sx, x->ndim, x->shape);
  mg_shape_str(st, sizeof st, t->ndim, t->shape);
  if (x->ndim == 0)
    return mg_error(ctx, MG_ESHAPE, "%s: expected %s of shape [N, K, ...] or "
                    "[K], got a 0-d tensor", op, what);
  if (soft) {
    if (t->ndim != x->ndim || memcmp(t->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim))
      return mg_error(ctx, MG_ESHAPE, "%s: float targets are class "
                      "probabilities and must have the %s' shape %s, got %s "
                      "(class labels must be int64)", op, what, sx, st);
    return MG_OK;
  }
  int64_t want[MG_MAXDIM];
  int nw = target_shape(x, want);
  if (t->ndim != nw || (nw && memcmp(t->shape, want, sizeof(int64_t) * (size_t)nw)))
    return mg_error(ctx, MG_ESHAPE, "%s: targets of shape %s do not match %s "
                    "of shape %s", op, st, what, sx);
  return MG_OK;
}

static int check_targets(mg_Context *ctx, const char *op, const mg_Tensor *t,
                         int64_t K, int has_ignore, int64_t ignore) {
  const int64_t *T = mg_data(t);
  int64_t n = mg_numel(t);
  for (int64_t i = 0; i < n; i++)
    if ((T[i] < 1 || T[i] > K) && !(has_ignore && T[i] == ignore))
      return mg_error(ctx, MG_EINDEX, "%s: target %lld out of range for %lld "
                      "classes (targets are 1-based)", op, (long long)T[i],
                      (long long)K);
  return MG_OK;
}

static int check_weight(mg_Context *ctx, const char *op, const mg_Tensor *w,
                        int64_t K) {
  char sw[MG_SHAPE_BUFSZ];
  if (!w) return MG_OK;
  if (w->ndim != 1 || w->shape[0] != K)
    return mg_error(ctx, MG_ESHAPE, "%s: weight of shape %s does not match "
                    "the %lld classes (expected [%lld])", op,
                    mg_shape_str(sw, sizeof sw, w->ndim, w->shape),
                    (long long)K, (long long)K);
  return mg_nn_constant(ctx, op, "weight", (mg_Tensor *)w);
}

/* Sums per-row values v[r] (and u[r]) over rows [0, R) through fixed chunks;
 * fn fills a chunk's rows and returns their sums. */
typedef void (*ChunkFn)(const void *arg, int64_t r0, int64_t r1, double *sum,
                        double *wsum);

static int run_chunks(mg_Context *ctx, const char *op, int64_t R,
                      int64_t row_cost, ChunkFn fn, const void *arg,
                      double *sum, double *wsum) {
  int64_t nch = mg_nn_nchunks(R, row_cost);
  double *part = calloc((size_t)(2 * nch), sizeof *part);
  if (!part) return mg_error(ctx, MG_ENOMEM, "%s: not enough memory", op);
  int nt = mg_threads_for(ctx, R * row_cost);
  MG_PARALLEL_FOR(nt, for (int64_t c = 0; c < nch; c++) {
    fn(arg, R * c / nch, R * (c + 1) / nch, &part[2 * c], &part[2 * c + 1]);
  });
  *sum = *wsum = 0;
  for (int64_t c = 0; c < nch; c++) *sum += part[2 * c], *wsum += part[2 * c + 1];
  free(part);
  return MG_OK;
}

/* e[j] = exp(x[b + j sk] - sub) for j < m. A loop of its own, with the
 * contiguous case spelled out, so that GCC vectorises it; callers then sum
 * or use e in index order, as they would have one exp at a time. mg_vexp
 * is within 1-2 ulp in double, plenty for these float32 or float64
 * internals. */
#define EXP_BLOCK 256

static void exp_block_f32(double *e, const float *x, int64_t b, int64_t m,
                          int64_t sk, double sub) {
  const float *xb = x + b;
  if (sk == 1)
    for (int64_t j = 0; j < m; j++) e[j] = mg_vexp(xb[j] - sub);
  else
    for (int64_t j = 0; j < m; j++) e[j] = mg_vexp(xb[j * sk] - sub);
}

/* f64 twin of exp_block_f32 */
static void exp_block_f64(double *e, const double *x, int64_t b, int64_t m,
                          int64_t sk, double sub) {
  const double *xb = x + b;
  if (sk == 1)
    for (int64_t j = 0; j < m; j++) e[j] = mg_vexp(xb[j] - sub);
  else
    for (int64_t j = 0; j < m; j++) e[j] = mg_vexp(xb[j * sk] - sub);
}

/* ---- cross_entropy ---------------------------------------------------------------
 * Per row, with logp = log_softmax(x), class weights w (1 when none) and
 * smoothing e over K classes:
 *   class target t:  loss = (1 - e) * -w_t logp_t + (e / K) * -sum_k w_k logp_k
 *                    gx_k = s * ((1 - e) w_t (p_k - [k = t]) + (e / K) (W p_k - w_k))
 *                    with W = sum_k w_k; the mean divides by sum of w_t
 *   probabilities q: q' = (1 - e) q + e / K, loss = -sum_k w_k q'_k logp_k
 *                    gx_k = s * ((sum_j w_j q'_j) p_k - w_k q'_k)
 *                    gq_k = -s (1 - e) w_k logp_k; the mean divides by N*S
 * where s is the upstream gradient over the mean's denominator. The
 * forward keeps logp (the shape of x) for the backward. */

typedef struct {
  Layout L;
  const void *x, *t, *w; /* logits, targets (int64 or probabilities), weight */
  void *logp, *out;      /* out: per-row losses for 'none', else NULL */
  int soft, has_ignore;
  int64_t ignore;
  double eps;
} CEArg;

static void ce_chunk_f32(const void *arg, int64_t r0, int64_t r1, double *sum,
                         double *wsum) {
  const CEArg *a = arg;
  Layout L = a->L;
  const float *X = a->x, *Q = a->t, *W = a->w;
  const int64_t *T = a->t;
  float *LP = a->logp, *O = a->out;
  double e = a->eps, s = 0, ws = 0;
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = row_start(L, r), K = L.K, sk = L.S;
    double mx = -INFINITY, z = 0;
    for (int64_t k = 0; k < K; k++) {
      double v = X[b + k * sk];
      mx = v > mx ? v : mx;
    }
    if (isinf(mx) && mx < 0) mx = 0;
    double ex[EXP_BLOCK];
    for (int64_t k0 = 0; k0 < K; k0 += EXP_BLOCK) {
      int64_t m = K - k0 < EXP_BLOCK ? K - k0 : EXP_BLOCK;
      exp_block_f32(ex, X, b + k0 * sk, m, sk, mx);
      for (int64_t j = 0; j < m; j++) z += ex[j];
    }
    double lse = mx + log(z), loss = 0, wt = 0;
    for (int64_t k = 0; k < K; k++) LP[b + k * sk] = X[b + k * sk] - lse;
    if (a->soft) {
      for (int64_t k = 0; k < K; k++) {
        double q = Q[b + k * sk] * (1 - e) + e / (double)K;
        double wk = W ? W[k] : 1.0;
        loss -= wk * q * LP[b + k * sk];
      }
      wt = 1;
    } else {
      int64_t t = T[r];
      if (!(a->has_ignore && t == a->ignore)) {
        wt = W ? W[t - 1] : 1.0;
        loss = -(1 - e) * wt * LP[b + (t - 1) * sk];
        if (e > 0) {
          double sm = 0;
          for (int64_t k = 0; k < K; k++) sm -= (W ? W[k] : 1.0) * LP[b + k * sk];
          loss += e / (double)K * sm;
        }
      }
    }
    if (O) O[r] = loss;
    s += loss, ws += wt;
  }
  *sum = s, *wsum = ws;
}

/* f64 twin of ce_chunk_f32 */
static void ce_chunk_f64(const void *arg, int64_t r0, int64_t r1, double *sum,
                         double *wsum) {
  const CEArg *a = arg;
  Layout L = a->L;
  const double *X = a->x, *Q = a->t, *W = a->w;
  const int64_t *T = a->t;
  double *LP = a->logp, *O = a->out;
  double e = a->eps, s = 0, ws = 0;
  for (int64_t r = r0; r < r1; r++) {
    int64_t b = row_start(L, r), K = L.K, sk = L.S;
    double mx = -INFINITY, z = 0;
    for (int64_t k = 0; k < K; k++) {
      double v = X[b + k * sk];
      mx = v > mx ? v : mx;
    }
    if (isinf(mx) && mx < 0) mx = 0;
    double ex[EXP_BLOCK];
    for (int64_t k0 = 0; k0 < K; k0 += EXP_BLOCK) {
      int64_t m = K - k0 < EXP_BLOCK ? K - k0 : EXP_BLOCK;
      exp_block_f64(ex, X, b + k0 * sk, m, sk, mx);
      for (int64_t j = 0; j < m; j++) z += ex[j];
    }
    double lse = mx + log(z), loss = 0, wt = 0;
    for (int64_t k = 0; k < K; k++) LP[b + k * sk] = X[b + k * sk] - lse;
    if (a->soft) {
      for (int64_t k = 0; k < K; k++) {
        double q = Q[b + k * sk] * (1 - e) + e / (double)K;
        double wk = W ? W[k] : 1.0;
        loss -= wk * q * LP[b + k * sk];
      }
      wt = 1;
    } else {
      int64_t t = T[r];
      if (!(a->has_ignore && t == a->ignore)) {
        wt = W ? W[t - 1] : 1.0;
        loss = -(1 - e) * wt * LP[b + (t - 1) * sk];
        if (e > 0) {
          double sm = 0;
          for (int64_t k = 0; k < K; k++) sm -= (W ? W[k] : 1.0) * LP[b + k * sk];
          loss += e / (double)K * sm;
        }
      }
    }
    if (O) O[r] = loss;
    s += loss, ws += wt;
  }
  *sum = s, *wsum = ws;
}

/* What cross_entropy's backward reads and writes. */
typedef struct {
  Layout L;
  const void *logp, *t, *w, *g; /* saved log_softmax, targets, weight; upstream */
  void *gx, *gt;                /* NULL when not needed */
  int red, soft, has_ignore;
  int64_t ignore;
  double eps, denom, gs; /* gs: the one-element g of a reduced loss */
} CEGradArg;

static void ce_grad_f32(mg_Context *ctx, const CEGradArg *a) {
  Layout L = a->L;
  const float *LP = a->logp, *Q = a->t, *W = a->w, *G = a->g;
  const int64_t *T = a->t;
  float *GX = a->gx, *GT = a->gt;
  int red = a->red, soft = a->soft, has_ignore = a->has_ignore;
  int64_t ignore = a->ignore, R = L.N * L.S, K = L.K, sk = L.S;
  double e = a->eps, denom = a->denom, gs = a->gs, wall = 0;
  for (int64_t k = 0; k < K; k++) wall += W ? W[k] : 1.0;
  int nt = mg_threads_for(ctx, R * K);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < R; r++) {
    int64_t b = row_start(L, r);
    double s = row_scale_f32(red, G, r, gs, denom);
    double p[EXP_BLOCK]; /* exp(logp), a block at a time */
    if (soft) {
      double qsum = 0;
      for (int64_t k = 0; k < K; k++)
        qsum += (W ? W[k] : 1.0) * (Q[b + k * sk] * (1 - e) + e / (double)K);
      for (int64_t k0 = 0; k0 < K; k0 += EXP_BLOCK) {
        int64_t m = K - k0 < EXP_BLOCK ? K - k0 : EXP_BLOCK;
        if (GX) exp_block_f32(p, LP, b + k0 * sk, m, sk, 0);
        for (int64_t j = 0; j < m; j++) {
          int64_t k = k0 + j;
          double wk = W ? W[k] : 1.0, lp = LP[b + k * sk];
          double q = Q[b + k * sk] * (1 - e) + e / (double)K;
          if (GX) GX[b + k * sk] = s * (qsum * p[j] - wk * q);
          if (GT) GT[b + k * sk] = -s * (1 - e) * wk * lp;
        }
      }
      continue;
    }
    if (!GX) continue;
    int64_t tg = T[r];
    if (has_ignore && tg == ignore) {
      for (int64_t k = 0; k < K; k++) GX[b + k * sk] = 0;
      continue;
    }
    double wt = W ? W[tg - 1] : 1.0;
    for (int64_t k0 = 0; k0 < K; k0 += EXP_BLOCK) {
      int64_t m = K - k0 < EXP_BLOCK ? K - k0 : EXP_BLOCK;
      exp_block_f32(p, LP, b + k0 * sk, m, sk, 0);
      for (int64_t j = 0; j < m; j++) {
        int64_t k = k0 + j;
        double v = (1 - e) * wt * (p[j] - (k == tg - 1));
        if (e > 0) v += e / (double)K * (wall * p[j] - (W ? W[k] : 1.0));
        GX[b + k * sk] = s * v;
      }
    }
  }
}

/* f64 twin of ce_grad_f32 */
static void ce_grad_f64(mg_Context *ctx, const CEGradArg *a) {
  Layout L = a->L;
  const double *LP = a->logp, *Q = a->t, *W = a->w, *G = a->g;
  const int64_t *T = a->t;
  double *GX = a->gx, *GT = a->gt;
  int red = a->red, soft = a->soft, has_ignore = a->has_ignore;
  int64_t ignore = a->ignore, R = L.N * L.S, K = L.K, sk = L.S;
  double e = a->eps, denom = a->denom, gs = a->gs, wall = 0;
  for (int64_t k = 0; k < K; k++) wall += W ? W[k] : 1.0;
  int nt = mg_threads_for(ctx, R * K);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < R; r++) {
    int64_t b = row_start(L, r);
    double s = row_scale_f64(red, G, r, gs, denom);
    double p[EXP_BLOCK]; /* exp(logp), a block at a time */
    if (soft) {
      double qsum = 0;
      for (int64_t k = 0; k < K; k++)
        qsum += (W ? W[k] : 1.0) * (Q[b + k * sk] * (1 - e) + e / (double)K);
      for (int64_t k0 = 0; k0 < K; k0 += EXP_BLOCK) {
        int64_t m = K - k0 < EXP_BLOCK ? K - k0 : EXP_BLOCK;
        if (GX) exp_block_f64(p, LP, b + k0 * sk, m, sk, 0);
        for (int64_t j = 0; j < m; j++) {
          int64_t k = k0 + j;
          double wk = W ? W[k] : 1.0, lp = LP[b + k * sk];
          double q = Q[b + k * sk] * (1 - e) + e / (double)K;
          if (GX) GX[b + k * sk] = s * (qsum * p[j] - wk * q);
          if (GT) GT[b + k * sk] = -s * (1 - e) * wk * lp;
        }
      }
      continue;
    }
    if (!GX) continue;
    int64_t tg = T[r];
    if (has_ignore && tg == ignore) {
      for (int64_t k = 0; k < K; k++) GX[b + k * sk] = 0;
      continue;
    }
    double wt = W ? W[tg - 1] : 1.0;
    for (int64_t k0 = 0; k0 < K; k0 += EXP_BLOCK) {
      int64_t m = K - k0 < EXP_BLOCK ? K - k0 : EXP_BLOCK;
      exp_block_f64(p, LP, b + k0 * sk, m, sk, 0);
      for (int64_t j = 0; j < m; j++) {
        int64_t k = k0 + j;
        double v = (1 - e) * wt * (p[j] - (k == tg - 1));
        if (e > 0) v += e / (double)K * (wall * p[j] - (W ? W[k] : 1.0));
        GX[b + k * sk] = s * v;
      }
    }
  }
}

static int cross_entropy_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                                  mg_Tensor **grads) {
  mg_Tensor *logp = n->saved[0], *t = n->saved[1], *w = n->saved[2];
  mg_Tensor *gc = NULL, *gx = NULL, *gt = NULL;
  mg_DType dt = logp->dtype;
  int red = (int)n->i[0], soft = (int)n->i[3], st;
  int need_t = soft && mg_node_needs(n, 1);
  if ((st = mg_nn_prep(ctx, &gc, g, dt)) ||
      (mg_node_needs(n, 0) && (st = mg_alloc_tensor(ctx, &gx, dt, logp->ndim, logp->shape))) ||
      (need_t && (st = mg_alloc_tensor(ctx, &gt, dt, logp->ndim, logp->shape)))) {
    mg_tensor_decref(gc);
    mg_tensor_decref(gx);
    return st;
  }
  CEGradArg a = {layout_of(logp), mg_data(logp), mg_data(t),
                 w ? mg_data(w) : NULL, mg_data(gc), gx ? mg_data(gx) : NULL,
                 gt ? mg_data(gt) : NULL, red, soft, (int)n->i[1], n->i[2],
                 n->f[0], n->f[1],
                 red == MG_REDUCTION_NONE ? 0 : mg_nn_scalar(gc)};
  switch (dt) {
  case MG_F32: ce_grad_f32(ctx, &a); break;
  case MG_F64: ce_grad_f64(ctx, &a); break;
  default: break;
  }
  mg_tensor_decref(gc);
  grads[0] = gx;
  grads[1] = gt;
  return MG_OK;
}

int mg_cross_entropy(mg_Context *ctx, mg_Tensor **out, mg_Tensor *logits,
                     mg_Tensor *targets, mg_Tensor *weight, int has_ignore,
                     int64_t ignore_index, double label_smoothing,
                     mg_Reduction reduction) {
  const char *op = "cross_entropy";
  int soft = targets->dtype != MG_I64, st;
  if ((st = check_class_input(ctx, op, "logits", logits, targets, soft))) return st;
  Layout L = layout_of(logits);
  if (soft && has_ignore)
    return mg_error(ctx, MG_EARG, "cross_entropy: ignore_index is not "
                    "supported with class-probability (float) targets");
  if (!(label_smoothing >= 0 && label_smoothing <= 1))
    return mg_error(ctx, MG_EARG, "cross_entropy: label_smoothing must be "
                    "between 0 and 1, got %g", label_smoothing);
  if ((st = check_weight(ctx, op, weight, L.K))) return st;
  mg_DType dt = mg_nn_dtype(logits->dtype, logits->dtype);
  if (soft) dt = mg_nn_dtype(dt, targets->dtype);
  mg_Tensor *xc = NULL, *tc = NULL, *wc = NULL, *logp = NULL, *r = NULL;
  mg_Tensor *ins[2] = {logits, targets};
  int64_t tshape[MG_MAXDIM];
  int tn = target_shape(logits, tshape);
  int mode = mg_set_grad_enabled(ctx, 0);
  st = mg_nn_prep(ctx, &xc, logits, dt);
  if (!st) st = mg_nn_prep(ctx, &tc, targets, soft ? dt : MG_I64);
  if (!st && !soft) st = check_targets(ctx, op, tc, L.K, has_ignore, ignore_index);
  if (!st && weight) st = mg_nn_prep(ctx, &wc, weight, dt);
  if (!st) st = mg_alloc_tensor(ctx, &logp, dt, logits->ndim, logits->shape);
  if (!st) st = alloc_result(ctx, &r, dt, reduction, tn, tshape);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  CEArg a = {L, mg_data(xc), mg_data(tc), wc ? mg_data(wc) : NULL,
             mg_data(logp), reduction == MG_REDUCTION_NONE ? mg_data(r) : NULL,
             soft, has_ignore, ignore_index, label_smoothing};
  double sum, wsum;
  ChunkFn fn = dt == MG_F32 ? ce_chunk_f32 : ce_chunk_f64;
  if ((st = run_chunks(ctx, op, L.N * L.S, L.K, fn, &a, &sum, &wsum))) goto done;
  if (reduction != MG_REDUCTION_NONE)
    set_result(r, reduction == MG_REDUCTION_MEAN ? sum / wsum : sum);
  if (mg_needs_grad(ctx, 2, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, op, cross_entropy_backward, 2, ins, &n)) ||
        (st = mg_save(ctx, n, 0, logp)) || (st = mg_save(ctx, n, 1, tc)) ||
        (wc && (st = mg_save(ctx, n, 2, wc))))
      goto done;
    n->f[0] = label_smoothing;
    n->f[1] = wsum;
    n->i[0] = reduction;
    n->i[1] = has_ignore;
    n->i[2] = ignore_index;
    n->i[3] = soft;
  }
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(xc);
  mg_tensor_decref(tc);
  mg_tensor_decref(wc);
  mg_tensor_decref(logp);
  mg_tensor_decref(r);
  return st;
}

/* ---- nll_loss ----------------------------------------------------------------------
 * loss = -w_t * x_t per row; gx is zero but at each row's target, where it
 * is -s * w_t. The mean divides by the summed w_t of rows not ignored. */

typedef struct {
  Layout L;
  const void *x, *w;
  const int64_t *t;
  void *out;
  int has_ignore;
  int64_t ignore;
} NLLArg;

static void nll_chunk_f32(const void *arg, int64_t r0, int64_t r1, double *sum,
                          double *wsum) {
  const NLLArg *a = arg;
  const float *X = a->x, *W = a->w;
  float *O = a->out;
  double s = 0, ws = 0;
  for (int64_t r = r0; r < r1; r++) {
    int64_t t = a->t[r];
    double loss = 0, wt = 0;
    if (!(a->has_ignore && t == a->ignore)) {
      wt = W ? W[t - 1] : 1.0;
      loss = -wt * X[row_start(a->L, r) + (t - 1) * a->L.S];
    }
    if (O) O[r] = loss;
    s += loss, ws += wt;
  }
  *sum = s, *wsum = ws;
}

/* f64 twin of nll_chunk_f32 */
static void nll_chunk_f64(const void *arg, int64_t r0, int64_t r1, double *sum,
                          double *wsum) {
  const NLLArg *a = arg;
  const double *X = a->x, *W = a->w;
  double *O = a->out;
  double s = 0, ws = 0;
  for (int64_t r = r0; r < r1; r++) {
    int64_t t = a->t[r];
    double loss = 0, wt = 0;
    if (!(a->has_ignore && t == a->ignore)) {
      wt = W ? W[t - 1] : 1.0;
      loss = -wt * X[row_start(a->L, r) + (t - 1) * a->L.S];
    }
    if (O) O[r] = loss;
    s += loss, ws += wt;
  }
  *sum = s, *wsum = ws;
}

/* gx at each row's target (the rest of GX is zero already); ignore counts
 * only when has_ignore. */
static void nll_grad_f32(float *GX, Layout L, const int64_t *T, const float *W,
                         const float *G, int red, int has_ignore,
                         int64_t ignore, double gs, double denom) {
  int64_t R = L.N * L.S;
  for (int64_t r = 0; r < R; r++) {
    int64_t tg = T[r];
    if (has_ignore && tg == ignore) continue;
    double wt = W ? W[tg - 1] : 1.0;
    GX[row_start(L, r) + (tg - 1) * L.S] = -row_scale_f32(red, G, r, gs, denom) * wt;
  }
}

/* f64 twin of nll_grad_f32 */
static void nll_grad_f64(double *GX, Layout L, const int64_t *T, const double *W,
                         const double *G, int red, int has_ignore,
                         int64_t ignore, double gs, double denom) {
  int64_t R = L.N * L.S;
  for (int64_t r = 0; r < R; r++) {
    int64_t tg = T[r];
    if (has_ignore && tg == ignore) continue;
    double wt = W ? W[tg - 1] : 1.0;
    GX[row_start(L, r) + (tg - 1) * L.S] = -row_scale_f64(red, G, r, gs, denom) * wt;
  }
}

static int nll_loss_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                             mg_Tensor **grads) {
  mg_Tensor *t = n->saved[0], *w = n->saved[1], *gc = NULL, *gx = NULL;
  mg_DType dt = n->in_dtype[0];
  int red = (int)n->i[0], has_ignore = (int)n->i[1], st;
  if ((st = mg_nn_prep(ctx, &gc, g, dt)) ||
      (st = mg_full(ctx, &gx, dt, n->in_ndim[0], n->in_shape[0], 0))) {
    mg_tensor_decref(gc);
    return st;
  }
  Layout L = layout_of(gx);
  const int64_t *T = mg_data(t);
  const void *W = w ? mg_data(w) : NULL, *G = mg_data(gc);
  double gs = red == MG_REDUCTION_NONE ? 0 : mg_nn_scalar(gc);
  switch (dt) {
  case MG_F32:
    nll_grad_f32(mg_data(gx), L, T, W, G, red, has_ignore, n->i[2], gs, n->f[1]);
    break;
  case MG_F64:
    nll_grad_f64(mg_data(gx), L, T, W, G, red, has_ignore, n->i[2], gs, n->f[1]);
    break;
  default: break;
  }
  mg_tensor_decref(gc);
  grads[0] = gx;
  return MG_OK;
}

int mg_nll_loss(mg_Context *ctx, mg_Tensor **out, mg_Tensor *logp,
                mg_Tensor *targets, mg_Tensor *weight, int has_ignore,
                int64_t ignore_index, mg_Reduction reduction) {
  const char *op = "nll_loss";
  int st;
  if (targets->dtype != MG_I64)
    return mg_error(ctx, MG_EARG, "nll_loss: targets must be int64 class "
                    "labels (1-based), got %s", mg_dtype_name(targets->dtype));
  if ((st = check_class_input(ctx, op, "input", logp, targets, 0))) return st;
  Layout L = layout_of(logp);
  if ((st = check_weight(ctx, op, weight, L.K))) return st;
  mg_DType dt = mg_nn_dtype(logp->dtype, logp->dtype);
  mg_Tensor *xc = NULL, *tc = NULL, *wc = NULL, *r = NULL, *ins[1] = {logp};
  int64_t tshape[MG_MAXDIM];
  int tn = target_shape(logp, tshape);
  int mode = mg_set_grad_enabled(ctx, 0);
  st = mg_nn_prep(ctx, &xc, logp, dt);
  if (!st) st = mg_contiguous(ctx, &tc, targets);
  if (!st) st = check_targets(ctx, op, tc, L.K, has_ignore, ignore_index);
  if (!st && weight) st = mg_nn_prep(ctx, &wc, weight, dt);
  if (!st) st = alloc_result(ctx, &r, dt, reduction, tn, tshape);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  NLLArg a = {L, mg_data(xc), wc ? mg_data(wc) : NULL, mg_data(tc),
              reduction == MG_REDUCTION_NONE ? mg_data(r) : NULL,
              has_ignore, ignore_index};
  double sum, wsum;
  ChunkFn fn = dt == MG_F32 ? nll_chunk_f32 : nll_chunk_f64;
  if ((st = run_chunks(ctx, op, L.N * L.S, 1, fn, &a, &sum, &wsum))) goto done;
  if (reduction != MG_REDUCTION_NONE)
    set_result(r, reduction == MG_REDUCTION_MEAN ? sum / wsum : sum);
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, op, nll_loss_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, tc)) || (wc && (st = mg_save(ctx, n, 1, wc))))
      goto done;
    n->f[1] = wsum;
    n->i[0] = reduction;
    n->i[1] = has_ignore;
    n->i[2] = ignore_index;
  }
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(xc);
  mg_tensor_decref(tc);
  mg_tensor_decref(wc);
  mg_tensor_decref(r);
  return st;
}

/* ---- elementwise losses ------------------------------------------------------------
 * Per element with d = x - y (x the input, y the target), weight w and
 * pos_weight c (1 when absent):
 *   mse        d²                                  dx = 2d
 *   l1         |d|                                 dx = sign(d)
 *   smooth_l1  |d| < beta ? d²/(2 beta) : |d| - beta/2    dx = clamp(d/beta, -1, 1)
 *   huber      |d| < delta ? d²/2 : delta (|d| - delta/2)  dx = clamp(d, -delta, delta)
 *   (for these dy = -dx)
 *   bce        -w (y max(log x, -100) + (1 - y) max(log(1 - x), -100))
 *              dx = w (x - y) / max(x (1 - x), eps), dy = w (log(1 - x) - log x)
 *   bce_logits w ((1 - y) x + (1 + (c - 1) y) softplus(-x))
 *              dx = w (sigmoid(x) (c y + 1 - y) - c y)
 *              dy = w ((c - 1) softplus(-x) - x) */

/* PyTorch's floor for BCE's gradient denominator: 1e-12 as a float. */
#define BCE_EPS ((double)1e-12f)

static inline double sgn(double v) { return (v > 0) - (v < 0); }

static inline double softplus_neg(double x) { /* log(1 + exp(-x)), stable */
  return log1p(mg_vexp(-fabs(x))) + (x < 0 ? -x : 0);
}

/* With e = exp(-|x|), which never overflows: 1/(1 + e) or e/(1 + e). */
static inline double sigmoid(double x) {
  double e = mg_vexp(-fabs(x));
  return (x >= 0 ? 1.0 : e) / (1.0 + e);
}

static inline double loss_value(mg_LossKind k, double x, double y, double w,
                                double c, double prm) {
  double d = x - y, ad = fabs(d);
  switch (k) {
  case MG_LOSS_MSE: return d * d;
  case MG_LOSS_L1: return ad;
  case MG_LOSS_SMOOTH_L1: return ad < prm ? 0.5 * d * d / prm : ad - 0.5 * prm;
  case MG_LOSS_HUBER: return ad < prm ? 0.5 * d * d : prm * (ad - 0.5 * prm);
  case MG_LOSS_BCE: {
    double lx = fmax(log(x), -100.0), l1x = fmax(log(1 - x), -100.0);
    return -w * (y * lx + (1 - y) * l1x);
  }
  case MG_LOSS_BCE_LOGITS:
    return w * ((1 - y) * x + (1 + (c - 1) * y) * softplus_neg(x));
  default: return 0;
  }
}

/* d(loss)/dx into *gx and d(loss)/dy into *gy. */
static inline void loss_grads(mg_LossKind k, double x, double y, double w,
                              double c, double prm, double *gx, double *gy) {
  double d = x - y, ad = fabs(d);
  switch (k) {
  case MG_LOSS_MSE: *gx = 2 * d; *gy = -*gx; break;
  case MG_LOSS_L1: *gx = sgn(d); *gy = -*gx; break;
  case MG_LOSS_SMOOTH_L1: *gx = ad < prm ? d / prm : sgn(d); *gy = -*gx; break;
  case MG_LOSS_HUBER: *gx = ad < prm ? d : prm * sgn(d); *gy = -*gx; break;
  case MG_LOSS_BCE:
    *gx = w * (x - y) / fmax(x * (1 - x), BCE_EPS);
    *gy = w * (log(1 - x) - log(x));
    break;
  case MG_LOSS_BCE_LOGITS:
    *gx = w * (sigmoid(x) * (c * y + 1 - y) - c * y);
    *gy = w * ((c - 1) * softplus_neg(x) - x);
    break;
  default: *gx = *gy = 0; break;
  }
}

typedef struct {
  mg_LossKind kind;
  const void *x, *y, *w, *c;
  void *out;
  double prm;
} PointArg;

static void point_chunk_f32(const void *arg, int64_t r0, int64_t r1,
                            double *sum, double *unused) {
  const PointArg *a = arg;
  const float *X = a->x, *Y = a->y, *W = a->w, *C = a->c;
  float *O = a->out;
  double s = 0;
  for (int64_t i = r0; i < r1; i++) {
    double v = loss_value(a->kind, X[i], Y[i], W ? W[i] : 1.0,
                          C ? C[i] : 1.0, a->prm);
    if (O) O[i] = v;
    s += v;
  }
  *sum = s;
  *unused = 0;
}

/* f64 twin of point_chunk_f32 */
static void point_chunk_f64(const void *arg, int64_t r0, int64_t r1,
                            double *sum, double *unused) {
  const PointArg *a = arg;
  const double *X = a->x, *Y = a->y, *W = a->w, *C = a->c;
  double *O = a->out;
  double s = 0;
  for (int64_t i = r0; i < r1; i++) {
    double v = loss_value(a->kind, X[i], Y[i], W ? W[i] : 1.0,
                          C ? C[i] : 1.0, a->prm);
    if (O) O[i] = v;
    s += v;
  }
  *sum = s;
  *unused = 0;
}

/* gx and gy (each NULL when not needed) of the N elements, scaled by the
 * upstream g (G for 'none', else gs over N for the mean). */
static void point_grad_f32(mg_Context *ctx, const PointArg *a, float *GX,
                           float *GY, const float *G, int red, double gs,
                           int64_t N) {
  const float *X = a->x, *Y = a->y, *W = a->w, *C = a->c;
  mg_LossKind kind = a->kind;
  int nt = mg_threads_for(ctx, N);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < N; i++) {
    double dx, dy, s = row_scale_f32(red, G, i, gs, (double)N);
    loss_grads(kind, X[i], Y[i], W ? W[i] : 1.0, C ? C[i] : 1.0, a->prm, &dx, &dy);
    if (GX) GX[i] = s * dx;
    if (GY) GY[i] = s * dy;
  }
}

/* f64 twin of point_grad_f32 */
static void point_grad_f64(mg_Context *ctx, const PointArg *a, double *GX,
                           double *GY, const double *G, int red, double gs,
                           int64_t N) {
  const double *X = a->x, *Y = a->y, *W = a->w, *C = a->c;
  mg_LossKind kind = a->kind;
  int nt = mg_threads_for(ctx, N);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < N; i++) {
    double dx, dy, s = row_scale_f64(red, G, i, gs, (double)N);
    loss_grads(kind, X[i], Y[i], W ? W[i] : 1.0, C ? C[i] : 1.0, a->prm, &dx, &dy);
    if (GX) GX[i] = s * dx;
    if (GY) GY[i] = s * dy;
  }
}

static int loss_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                         mg_Tensor **grads) {
  mg_Tensor *x = n->saved[0], *y = n->saved[1], *w = n->saved[2],
            *c = n->saved[3], *gc = NULL, *gx = NULL, *gy = NULL;
  mg_DType dt = x->dtype;
  int red = (int)n->i[1], st;
  if ((st = mg_nn_prep(ctx, &gc, g, dt)) ||
      (mg_node_needs(n, 0) && (st = mg_alloc_tensor(ctx, &gx, dt, x->ndim, x->shape))) ||
      (mg_node_needs(n, 1) && (st = mg_alloc_tensor(ctx, &gy, dt, x->ndim, x->shape)))) {
    mg_tensor_decref(gc);
    mg_tensor_decref(gx);
    return st;
  }
  int64_t N = mg_numel(x);
  PointArg a = {(mg_LossKind)n->i[0], mg_data(x), mg_data(y),
                w ? mg_data(w) : NULL, c ? mg_data(c) : NULL, NULL, n->f[0]};
  void *GX = gx ? mg_data(gx) : NULL, *GY = gy ? mg_data(gy) : NULL;
  double gs = red == MG_REDUCTION_NONE ? 0 : mg_nn_scalar(gc);
  switch (dt) {
  case MG_F32: point_grad_f32(ctx, &a, GX, GY, mg_data(gc), red, gs, N); break;
  case MG_F64: point_grad_f64(ctx, &a, GX, GY, mg_data(gc), red, gs, N); break;
  default: break;
  }
  mg_tensor_decref(gc);
  grads[0] = gx;
  grads[1] = gy;
  return MG_OK;
}

/* t broadcast to x's shape, contiguous, dtype dt (NULL stays NULL). */
static int expand_like(mg_Context *ctx, mg_Tensor **out, const char *op,
                       const char *what, mg_Tensor *t, const mg_Tensor *x,
                       mg_DType dt) {
  char st_[MG_SHAPE_BUFSZ], sx[MG_SHAPE_BUFSZ];
  if (!t) return MG_OK;
  int n, st;
  int64_t shape[MG_MAXDIM];
  if (mg_broadcast_shapes(ctx, op, t->ndim, t->shape, x->ndim, x->shape, &n, shape) ||
      n != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)n))
    return mg_error(ctx, MG_ESHAPE, "%s: %s of shape %s does not broadcast to "
                    "input of shape %s", op, what,
                    mg_shape_str(st_, sizeof st_, t->ndim, t->shape),
                    mg_shape_str(sx, sizeof sx, x->ndim, x->shape));
  if ((st = mg_nn_constant(ctx, op, what, t))) return st;
  mg_Tensor *e = NULL;
  if ((st = mg_expand(ctx, &e, t, x->ndim, x->shape))) return st;
  st = mg_nn_prep(ctx, out, e, dt);
  mg_tensor_decref(e);
  return st;
}

/* The index of the first of x's n values that is not a probability (nan,
 * or outside [0, 1]), or -1 when all are. */
static int64_t first_non_probability_f32(const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!(x[i] >= 0 && x[i] <= 1)) return i;
  return -1;
}

/* f64 twin of first_non_probability_f32 */
static int64_t first_non_probability_f64(const double *x, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (!(x[i] >= 0 && x[i] <= 1)) return i;
  return -1;
}

static int check_probabilities(mg_Context *ctx, const mg_Tensor *x) {
  int64_t n = mg_numel(x), i = -1;
  switch (x->dtype) {
  case MG_F32: i = first_non_probability_f32(mg_data(x), n); break;
  case MG_F64: i = first_non_probability_f64(mg_data(x), n); break;
  default: break;
  }
  if (i >= 0)
    return mg_error(ctx, MG_EARG, "binary_cross_entropy: input values must "
                    "be probabilities between 0 and 1, got %g at position "
                    "%lld (for logits use binary_cross_entropy_with_logits)",
                    mg_read(x, i), (long long)i + 1);
  return MG_OK;
}

int mg_loss(mg_Context *ctx, mg_Tensor **out, mg_LossKind kind,
            mg_Tensor *input, mg_Tensor *target, mg_Tensor *weight,
            mg_Tensor *pos_weight, double param, mg_Reduction reduction) {
  const char *op = loss_names[kind];
  char sx[MG_SHAPE_BUFSZ], sy[MG_SHAPE_BUFSZ];
  if (input->ndim != target->ndim ||
      memcmp(input->shape, target->shape, sizeof(int64_t) * (size_t)input->ndim))
    return mg_error(ctx, MG_ESHAPE, "%s: input of shape %s and target of "
                    "shape %s differ", op,
                    mg_shape_str(sx, sizeof sx, input->ndim, input->shape),
                    mg_shape_str(sy, sizeof sy, target->ndim, target->shape));
  if ((kind == MG_LOSS_SMOOTH_L1 || kind == MG_LOSS_HUBER) && !(param >= 0))
    return mg_error(ctx, MG_EARG, "%s: %s must be >= 0, got %g", op,
                    kind == MG_LOSS_HUBER ? "delta" : "beta", param);
  mg_DType dt = mg_nn_dtype(input->dtype, target->dtype);
  mg_Tensor *xc = NULL, *yc = NULL, *wc = NULL, *cc = NULL, *r = NULL;
  mg_Tensor *ins[2] = {input, target};
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = mg_nn_prep(ctx, &xc, input, dt);
  if (!st) st = mg_nn_prep(ctx, &yc, target, dt);
  if (!st) st = expand_like(ctx, &wc, op, "weight", weight, input, dt);
  if (!st) st = expand_like(ctx, &cc, op, "pos_weight", pos_weight, input, dt);
  if (!st && kind == MG_LOSS_BCE) st = check_probabilities(ctx, xc);
  if (!st) st = alloc_result(ctx, &r, dt, reduction, input->ndim, input->shape);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  int64_t N = mg_numel(xc);
  PointArg a = {kind, mg_data(xc), mg_data(yc), wc ? mg_data(wc) : NULL,
                cc ? mg_data(cc) : NULL,
                reduction == MG_REDUCTION_NONE ? mg_data(r) : NULL, param};
  double sum, unused;
  ChunkFn fn = dt == MG_F32 ? point_chunk_f32 : point_chunk_f64;
  if ((st = run_chunks(ctx, op, N, 1, fn, &a, &sum, &unused))) goto done;
  if (reduction != MG_REDUCTION_NONE)
    set_result(r, reduction == MG_REDUCTION_MEAN ? sum / (double)N : sum);
  if (mg_needs_grad(ctx, 2, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, op, loss_backward, 2, ins, &n)) ||
        (st = mg_save(ctx, n, 0, xc)) || (st = mg_save(ctx, n, 1, yc)) ||
        (wc && (st = mg_save(ctx, n, 2, wc))) || (cc && (st = mg_save(ctx, n, 3, cc))))
      goto done;
    n->i[0] = kind;
    n->i[1] = reduction;
    n->f[0] = param;
  }
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(xc);
  mg_tensor_decref(yc);
  mg_tensor_decref(wc);
  mg_tensor_decref(cc);
  mg_tensor_decref(r);
  return st;
}
