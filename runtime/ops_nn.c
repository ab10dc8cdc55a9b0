/*
 * ops_nn.c — the layers of moongrad.functional that are not normalizations
 * (ops_norm.c) or losses (ops_loss.c): activations, softmax, linear,
 * dropout and embedding, each forward followed by its backward.
 *
 * Every op follows the core's pattern: compute with grad mode off, then
 * record a node when an input requires grad, saving what the backward
 * needs. Rows are processed in parallel when there are many.
 */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "mg_nn_internal.h"
#include "mg_vmath.h"

static const char *const act_names[MG_NACT] = {"leaky_relu", "elu", "gelu",
                                               "gelu", "silu"};
_Static_assert(sizeof act_names / sizeof *act_names == MG_NACT,
               "an activation without a name");

const char *mg_activation_name(mg_Activation act) { return act_names[act]; }

/* ---- activations ------------------------------------------------------------
 * Forward kernels: ptrs[0] = y, ptrs[1] = x. Backward kernels: ptrs[0] = gx,
 * ptrs[1] = g, ptrs[2] = x. ALOOP(expr) runs expr over the run; AVLOOP
 * adds a loop of its own for contiguous runs, which GCC vectorises when
 * expr calls only mg_vmath.h (float32 only: float64 keeps libm, so its
 * twins call libm where the float32 functions call mg_vmath.h). */

typedef struct {
  mg_Activation act;
  double param;
} ActArg;

#define GELU_BETA 0.7978845608028654 /* sqrt(2 / pi) */
#define GELU_KAPPA 0.044715
#define INV_SQRT_2PI 0.3989422804014327

#define ALOOP MG_RUN_LOOP
#define AVLOOP MG_RUN_VLOOP

static inline float gelu_tanh_f32(float x) {
  float inner = (float)GELU_BETA * (x + (float)GELU_KAPPA * x * x * x);
  return 0.5f * x * (1.0f + mg_vtanhf(inner));
}

/* 0.5 x (1 + erf(x / sqrt 2)) in float arithmetic (mg_vmath.h). */
static inline float gelu_f32(float x) {
  float gauss;
  return 0.5f * x * mg_vgelu_cdf2f(x, &gauss);
}

/* f64 twin of gelu_tanh_f32 */
static inline double gelu_tanh_f64(double x) {
  double inner = GELU_BETA * (x + GELU_KAPPA * x * x * x);
  return 0.5 * x * (1.0 + tanh(inner));
}

static void act_f32(char **p, const int64_t *s, int64_t n, const void *arg) {
  const ActArg *aa = arg;
  float *o = (float *)p[0], c = (float)aa->param;
  const float *a = (const float *)p[1];
  int64_t so = s[0], sa = s[1];
  switch (aa->act) {
  case MG_ACT_LEAKY_RELU: ALOOP(float, x > 0 ? x : x * c) break;
  case MG_ACT_ELU: AVLOOP(float, mg_vblendf(x > 0, x, c * mg_vexpm1f(x))) break;
  case MG_ACT_GELU: AVLOOP(float, gelu_f32(x)) break;
  case MG_ACT_GELU_TANH: AVLOOP(float, gelu_tanh_f32(x)) break;
  case MG_ACT_SILU: AVLOOP(float, (float)(x / (1.0 + mg_vexpfd(-x)))) break;
  default: break;
  }
}

/* f64 twin of act_f32 */
static void act_f64(char **p, const int64_t *s, int64_t n, const void *arg) {
  const ActArg *aa = arg;
  double *o = (double *)p[0], c = aa->param;
  const double *a = (const double *)p[1];
  int64_t so = s[0], sa = s[1];
  switch (aa->act) {
  case MG_ACT_LEAKY_RELU: ALOOP(double, x > 0 ? x : x * c) break;
  case MG_ACT_ELU: ALOOP(double, x > 0 ? x : c * expm1(x)) break;
  case MG_ACT_GELU: ALOOP(double, 0.5 * x * (1.0 + erf(x * M_SQRT1_2))) break;
  case MG_ACT_GELU_TANH: ALOOP(double, gelu_tanh_f64(x)) break;
  case MG_ACT_SILU: ALOOP(double, x / (1.0 + exp(-x))) break;
  default: break;
  }
}
#undef AVLOOP
#undef ALOOP

/* dy/dx of each activation at x (c is the parameter), in float32 through
 * mg_vmath.h; with act a constant the switch folds away (act_grad_f32). */
static inline float act_slope_f32(mg_Activation act, float x, float c) {
  switch (act) {
  case MG_ACT_LEAKY_RELU: return x > 0 ? 1.0f : c;
  case MG_ACT_ELU: return mg_vblendf(x > 0, 1.0f, c * mg_vexpf(x));
  case MG_ACT_GELU: {
    float gauss, cdf2 = mg_vgelu_cdf2f(x, &gauss);
    return 0.5f * cdf2 + x * (float)INV_SQRT_2PI * gauss;
  }
  case MG_ACT_GELU_TANH: {
    float t = mg_vtanhf((float)GELU_BETA * (x + (float)GELU_KAPPA * x * x * x));
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * (float)GELU_BETA *
                                   (1.0f + 3.0f * (float)GELU_KAPPA * x * x);
  }
  case MG_ACT_SILU: {
    float sg = mg_vsigmoidf(x);
    return sg * (1.0f + x * (1.0f - sg));
  }
  default: return 0;
  }
}

/* f64 twin of act_slope_f32 */
static inline double act_slope_f64(mg_Activation act, double x, double c) {
  switch (act) {
  case MG_ACT_LEAKY_RELU: return x > 0 ? 1.0 : c;
  case MG_ACT_ELU: return x > 0 ? 1.0 : c * exp(x);
  case MG_ACT_GELU:
    return 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
  case MG_ACT_GELU_TANH: {
    double t = tanh(GELU_BETA * (x + GELU_KAPPA * x * x * x));
    return 0.5 * (1.0 + t) +
           0.5 * x * (1.0 - t * t) * GELU_BETA * (1.0 + 3.0 * GELU_KAPPA * x * x);
  }
  case MG_ACT_SILU: {
    double sg = 1.0 / (1.0 + exp(-x));
    return sg * (1.0 + x * (1.0 - sg));
  }
  default: return 0;
  }
}

/* One loop per activation, so that act is a constant in each and the loop
 * body has no switch; contiguous runs get a loop GCC vectorises. */
#define GLOOP(ACT)                                                         \
  if (s[0] == 1 && s[1] == 1 && s[2] == 1) {                               \
    for (int64_t i = 0; i < n; i++)                                        \
      o[i] = g[i] * act_slope_f32(ACT, x[i], c);                           \
  } else {                                                                 \
    for (int64_t i = 0; i < n; i++)                                        \
      o[i * s[0]] = g[i * s[1]] * act_slope_f32(ACT, x[i * s[2]], c);      \
  }

static void act_grad_f32(char **p, const int64_t *s, int64_t n, const void *arg) {
  const ActArg *aa = arg;
  float *o = (float *)p[0], c = (float)aa->param;
  const float *g = (const float *)p[1], *x = (const float *)p[2];
  switch (aa->act) {
  case MG_ACT_LEAKY_RELU: GLOOP(MG_ACT_LEAKY_RELU) break;
  case MG_ACT_ELU: GLOOP(MG_ACT_ELU) break;
  case MG_ACT_GELU: GLOOP(MG_ACT_GELU) break;
  case MG_ACT_GELU_TANH: GLOOP(MG_ACT_GELU_TANH) break;
  case MG_ACT_SILU: GLOOP(MG_ACT_SILU) break;
  default: break;
  }
}
#undef GLOOP

/* f64 twin of act_grad_f32: one loop with the switch inside, as the libm
 * calls do not vectorise anyway. */
static void act_grad_f64(char **p, const int64_t *s, int64_t n, const void *arg) {
  const ActArg *aa = arg;
  double *o = (double *)p[0];
  const double *g = (const double *)p[1], *x = (const double *)p[2];
  for (int64_t i = 0; i < n; i++)
    o[i * s[0]] = g[i * s[1]] * act_slope_f64(aa->act, x[i * s[2]], aa->param);
}

static int activation_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                               mg_Tensor **grads) {
  mg_Tensor *x = n->saved[0], *gx = NULL, *gc = NULL;
  ActArg aa = {(mg_Activation)n->i[0], n->f[0]};
  int st;
  if ((st = mg_to_dtype(ctx, &gc, g, x->dtype)) ||
      (st = mg_alloc_like(ctx, &gx, x->dtype, x->ndim, x->shape, x))) {
    mg_tensor_decref(gc);
    return st;
  }
  mg_Iter it;
  mg_Tensor *ops[3] = {gx, gc, x};
  mg_iter_init_memory_order(&it, 3, ops, x->ndim, x->shape);
  mg_iter_run(ctx, &it, x->dtype == MG_F32 ? act_grad_f32 : act_grad_f64, &aa);
  mg_tensor_decref(gc);
  grads[0] = gx;
  return MG_OK;
}

int mg_activation(mg_Context *ctx, mg_Tensor **out, mg_Activation act,
                  const mg_Tensor *x, double param) {
  mg_DType dt = mg_nn_dtype(x->dtype, x->dtype);
  mg_Tensor *xc = NULL, *r = NULL, *ins[1] = {(mg_Tensor *)x};
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = mg_to_dtype(ctx, &xc, (mg_Tensor *)x, dt);
  if (!st) st = mg_alloc_like(ctx, &r, dt, x->ndim, x->shape, xc);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto fail;
  ActArg aa = {act, param};
  mg_Iter it;
  mg_Tensor *ops[2] = {r, xc};
  mg_iter_init_memory_order(&it, 2, ops, r->ndim, r->shape);
  mg_iter_run(ctx, &it, dt == MG_F32 ? act_f32 : act_f64, &aa);
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, act_names[act], activation_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, xc)))
      goto fail;
    n->i[0] = act;
    n->f[0] = param;
  }
  mg_tensor_decref(xc);
  *out = r;
  return MG_OK;
fail:
  mg_tensor_decref(xc);
  mg_tensor_decref(r);
  return st;
}

/* ---- softmax and log_softmax ------------------------------------------------
 * x viewed as [outer, K, inner], reduced along K: each (outer, inner) pair is
 * a "row" of K elements spaced inner apart (inner == 1 is the contiguous
 * case). Sums accumulate in double. */

typedef struct {
  int64_t outer, K, inner;
} Rows;

static Rows rows_of(const mg_Tensor *t, int dim) {
  Rows r = {1, t->shape[dim], 1};
  for (int d = 0; d < dim; d++) r.outer *= t->shape[d];
  for (int d = dim + 1; d < t->ndim; d++) r.inner *= t->shape[d];
  return r;
}

/* Row i's first element. */
static inline int64_t row_base(const Rows *r, int64_t i) {
  return (i / r->inner) * r->K * r->inner + i % r->inner;
}

/* The rows of x into y: softmax, or log_softmax when is_log. The float32
 * function sums in double the exps it wrote into y; its f64 twin sums them
 * as they come (the same sums), and for log_softmax does not store them. */
static void softmax_rows_f32(mg_Context *ctx, float *Y, const float *X, Rows r,
                             int is_log) {
  int64_t nrows = r.outer * r.inner, K = r.K, sk = r.inner;
  int nt = mg_threads_for(ctx, nrows * K);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < nrows; i++) {
    const float *xr = X + row_base(&r, i);
    float *yr = Y + row_base(&r, i);
    float mx = xr[0];
    for (int64_t k = 1; k < K; k++) mx = xr[k * sk] > mx ? xr[k * sk] : mx;
    if (isinf(mx) && mx < 0) mx = 0; /* a row of -inf: nan like PyTorch */
    /* The exps go into y first, in a loop that vectorises, and are then
     * summed in index order: the same sum as adding them as they come. */
    if (sk == 1)
      for (int64_t k = 0; k < K; k++) yr[k] = mg_vexpf(xr[k] - mx);
    else
      for (int64_t k = 0; k < K; k++) yr[k * sk] = mg_vexpf(xr[k * sk] - mx);
    double sum = 0;
    for (int64_t k = 0; k < K; k++) sum += yr[k * sk];
    if (is_log) {
      float lse = (float)(mx + log(sum));
      for (int64_t k = 0; k < K; k++) yr[k * sk] = xr[k * sk] - lse;
    } else {
      float inv = (float)(1.0 / sum);
      for (int64_t k = 0; k < K; k++) yr[k * sk] *= inv;
    }
  }
}

/* f64 twin of softmax_rows_f32 */
static void softmax_rows_f64(mg_Context *ctx, double *Y, const double *X,
                             Rows r, int is_log) {
  int64_t nrows = r.outer * r.inner, K = r.K, sk = r.inner;
  int nt = mg_threads_for(ctx, nrows * K);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < nrows; i++) {
    const double *xr = X + row_base(&r, i);
    double *yr = Y + row_base(&r, i);
    double mx = xr[0];
    for (int64_t k = 1; k < K; k++) mx = xr[k * sk] > mx ? xr[k * sk] : mx;
    if (isinf(mx) && mx < 0) mx = 0;
    double sum = 0;
    if (is_log) {
      for (int64_t k = 0; k < K; k++) sum += exp(xr[k * sk] - mx);
      double lse = mx + log(sum);
      for (int64_t k = 0; k < K; k++) yr[k * sk] = xr[k * sk] - lse;
    } else {
      for (int64_t k = 0; k < K; k++) {
        double e = exp(xr[k * sk] - mx);
        yr[k * sk] = e;
        sum += e;
      }
      double inv = 1.0 / sum;
      for (int64_t k = 0; k < K; k++) yr[k * sk] *= inv;
    }
  }
}

/* softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g),
 * row by row; the sums accumulate in double. */
static void softmax_grad_rows_f32(mg_Context *ctx, float *GX, const float *G,
                                  const float *Y, Rows r, int is_log) {
  int64_t nrows = r.outer * r.inner, K = r.K, sk = r.inner;
  int nt = mg_threads_for(ctx, nrows * K);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < nrows; i++) {
    int64_t b = row_base(&r, i);
    const float *yr = Y + b, *gr = G + b;
    float *o = GX + b;
    double acc = 0;
    if (is_log) {
      for (int64_t k = 0; k < K; k++) acc += gr[k * sk];
      float a = (float)acc;
      if (sk == 1) /* the loop GCC vectorises */
        for (int64_t k = 0; k < K; k++) o[k] = gr[k] - mg_vexpf(yr[k]) * a;
      else
        for (int64_t k = 0; k < K; k++) o[k * sk] = gr[k * sk] - mg_vexpf(yr[k * sk]) * a;
    } else {
      for (int64_t k = 0; k < K; k++) acc += (double)gr[k * sk] * yr[k * sk];
      for (int64_t k = 0; k < K; k++) o[k * sk] = yr[k * sk] * (gr[k * sk] - (float)acc);
    }
  }
}

/* f64 twin of softmax_grad_rows_f32 */
static void softmax_grad_rows_f64(mg_Context *ctx, double *GX, const double *G,
                                  const double *Y, Rows r, int is_log) {
  int64_t nrows = r.outer * r.inner, K = r.K, sk = r.inner;
  int nt = mg_threads_for(ctx, nrows * K);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t i = 0; i < nrows; i++) {
    int64_t b = row_base(&r, i);
    const double *yr = Y + b, *gr = G + b;
    double *o = GX + b;
    double acc = 0;
    if (is_log) {
      for (int64_t k = 0; k < K; k++) acc += gr[k * sk];
      for (int64_t k = 0; k < K; k++) o[k * sk] = gr[k * sk] - exp(yr[k * sk]) * acc;
    } else {
      for (int64_t k = 0; k < K; k++) acc += gr[k * sk] * yr[k * sk];
      for (int64_t k = 0; k < K; k++) o[k * sk] = yr[k * sk] * (gr[k * sk] - acc);
    }
  }
}

static int softmax_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                            mg_Tensor **grads) {
  mg_Tensor *y = n->saved[0], *gc = NULL, *gx = NULL;
  int is_log = (int)n->i[1], st;
  Rows r = y->ndim == 0 ? (Rows){1, 1, 1} : rows_of(y, (int)n->i[0]);
  if ((st = mg_nn_prep(ctx, &gc, g, y->dtype)) ||
      (st = mg_alloc_tensor(ctx, &gx, y->dtype, y->ndim, y->shape))) {
    mg_tensor_decref(gc);
    return st;
  }
  switch (y->dtype) {
  case MG_F32: softmax_grad_rows_f32(ctx, mg_data(gx), mg_data(gc), mg_data(y), r, is_log); break;
  case MG_F64: softmax_grad_rows_f64(ctx, mg_data(gx), mg_data(gc), mg_data(y), r, is_log); break;
  default: break; /* nn ops compute in float32 or float64 */
  }
  mg_tensor_decref(gc);
  grads[0] = gx;
  return MG_OK;
}

int mg_softmax(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *x, int dim,
               int is_log) {
  const char *name = is_log ? "log_softmax" : "softmax";
  mg_Tensor *xc = NULL, *r = NULL, *ins[1] = {(mg_Tensor *)x};
  int st;
  if (x->ndim == 0 ? dim != 0 : (dim < 0 || dim >= x->ndim))
    return mg_error(ctx, MG_EINDEX, "%s: dimension %d out of range for a "
                    "%d-dimensional tensor", name, dim + 1, x->ndim);
  mg_DType dt = mg_nn_dtype(x->dtype, x->dtype);
  int mode = mg_set_grad_enabled(ctx, 0);
  st = mg_nn_prep(ctx, &xc, (mg_Tensor *)x, dt);
  if (!st) st = mg_alloc_tensor(ctx, &r, dt, x->ndim, x->shape);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto fail;
  Rows rows = x->ndim == 0 ? (Rows){1, 1, 1} : rows_of(xc, dim);
  if (rows.K > 0) switch (dt) {
    case MG_F32: softmax_rows_f32(ctx, mg_data(r), mg_data(xc), rows, is_log); break;
    case MG_F64: softmax_rows_f64(ctx, mg_data(r), mg_data(xc), rows, is_log); break;
    default: break;
    }
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, name, softmax_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, r)))
      goto fail;
    n->i[0] = x->ndim == 0 ? -1 : dim;
    n->i[1] = is_log;
  }
  mg_tensor_decref(xc);
  *out = r;
  return MG_OK;
fail:
  mg_tensor_decref(xc);
  mg_tensor_decref(r);
  return st;
}

/* ---- linear -------------------------------------------------------------------
 * x is [M, in] (leading dims folded), w [out, in], y [M, out]:
 *   forward   y  = x · wᵀ + b      gemm(NoTrans, Trans), b pre-filled, beta 1
 *   backward  gx = g · w           gemm(NoTrans, NoTrans)
 *             gw = gᵀ · x          gemm(Trans, NoTrans)
 *             gb = gᵀ · 1          gemv(Trans)
 * w goes to BLAS as it lies when it is row- or column-major (a transposed
 * view, as with tied weights, costs no copy). */

/* How BLAS reads the 2-D tensor t: transposed or not, leading dim ld. 0
 * when its strides do not allow it (then it is copied). */
static int blas_layout(const mg_Tensor *t, CBLAS_TRANSPOSE *trans, int64_t *ld) {
  return mg_blas_layout(t->shape[0], t->shape[1], t->stride[0], t->stride[1], trans, ld);
}

static CBLAS_TRANSPOSE flip(CBLAS_TRANSPOSE t) {
  return t == CblasNoTrans ? CblasTrans : CblasNoTrans;
}

static int linear_shape_error(mg_Context *ctx, const mg_Tensor *x,
                              const mg_Tensor *w, const mg_Tensor *b) {
  char sx[MG_SHAPE_BUFSZ], sw[MG_SHAPE_BUFSZ], sb[MG_SHAPE_BUFSZ];
  mg_shape_str(sx, sizeof sx, x->ndim, x->shape);
  mg_shape_str(sw, sizeof sw, w->ndim, w->shape);
  if (w->ndim != 2)
    return mg_error(ctx, MG_ESHAPE, "linear: weight must be 2-D [out, in], "
                    "got shape %s", sw);
  if (x->ndim == 0 || x->shape[x->ndim - 1] != w->shape[1])
    return mg_error(ctx, MG_ESHAPE, "linear: input of shape %s does not fit "
                    "weight of shape %s (expected input [..., %lld])", sx, sw,
                    (long long)w->shape[1]);
  return mg_error(ctx, MG_ESHAPE, "linear: bias of shape %s does not fit "
                  "weight of shape %s (expected [%lld])",
                  mg_shape_str(sb, sizeof sb, b->ndim, b->shape), sw,
                  (long long)w->shape[0]);
}

static int linear_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Tensor *x = n->saved[0], *w = n->saved[1], *gc = NULL;
  mg_Tensor *gx = NULL, *gw = NULL, *gb = NULL, *ones = NULL;
  mg_DType dt = x->dtype;
  int64_t in = w->shape[1], out = w->shape[0], M = 1;
  for (int d = 0; d < n->in_ndim[0] - 1; d++) M *= n->in_shape[0][d];
  CBLAS_TRANSPOSE wt = CblasNoTrans;
  int64_t ldw = 1;
  int st;
  blas_layout(w, &wt, &ldw); /* the forward made sure it can */
  if ((st = mg_nn_prep(ctx, &gc, g, dt))) return st;
  const void *G = mg_data(gc);
  if (mg_node_needs(n, 0)) {
    /* gemm (beta 0) writes all of gx and gw; zeros only for an empty sum. */
    if ((st = M && in && out ? mg_alloc_tensor(ctx, &gx, dt, n->in_ndim[0], n->in_shape[0])
                             : mg_full(ctx, &gx, dt, n->in_ndim[0], n->in_shape[0], 0)))
      goto fail;
    if (M && in && out) {
      mg_blas_threads_for(ctx, M, in, out);
      mg_gemm(ctx, dt, CblasNoTrans, wt, M, in, out, G, out, mg_data(w), ldw, 0,
              mg_data(gx), in);
    }
  }
  if (mg_node_needs(n, 1)) {
    if ((st = M && in && out ? mg_alloc_tensor(ctx, &gw, dt, 2, w->shape)
                             : mg_full(ctx, &gw, dt, 2, w->shape, 0)))
      goto fail;
    if (M && in && out) {
      mg_blas_threads_for(ctx, out, in, M);
      mg_gemm(ctx, dt, CblasTrans, CblasNoTrans, out, in, M, G, out, mg_data(x),
              in, 0, mg_data(gw), in);
    }
  }
  if (n->ninputs > 2 && mg_node_needs(n, 2)) {
    if ((st = mg_full(ctx, &gb, dt, 1, &out, 0)) ||
        (st = mg_full(ctx, &ones, dt, 1, &M, 1)))
      goto fail;
    if (M && out) {
      mg_blas_threads_for(ctx, M, out, 1);
      int locked = mg_blas_begin();
      if (dt == MG_F32)
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)M, (int)out, 1.0f, G,
                    (int)out, mg_data(ones), 1, 0.0f, mg_data(gb), 1);
      else
        cblas_dgemv(CblasRowMajor, CblasTrans, (int)M, (int)out, 1.0, G,
                    (int)out, mg_data(ones), 1, 0.0, mg_data(gb), 1);
      mg_blas_end(locked);
    }
  }
  mg_tensor_decref(gc);
  mg_tensor_decref(ones);
  grads[0] = gx;
  grads[1] = gw;
  if (n->ninputs > 2) grads[2] = gb;
  return MG_OK;
fail:
  mg_tensor_decref(gc);
  mg_tensor_decref(ones);
  mg_tensor_decref(gx);
  mg_tensor_decref(gw);
  mg_tensor_decref(gb);
  return st;
}

int mg_linear(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, mg_Tensor *w,
              mg_Tensor *b) {
  if (w->ndim != 2 || x->ndim == 0 || x->shape[x->ndim - 1] != w->shape[1] ||
      (b && (b->ndim != 1 || b->shape[0] != w->shape[0])))
    return linear_shape_error(ctx, x, w, b);
  mg_DType dt = mg_nn_dtype(mg_nn_dtype(x->dtype, w->dtype), b ? b->dtype : x->dtype);
  int64_t in = w->shape[1], nout = w->shape[0], M = 1, shape[MG_MAXDIM];
  for (int d = 0; d < x->ndim - 1; d++) M *= (shape[d] = x->shape[d]);
  shape[x->ndim - 1] = nout;
  mg_Tensor *xc = NULL, *wc = NULL, *bc = NULL, *r = NULL, *ins[3] = {x, w, b};
  CBLAS_TRANSPOSE wt = CblasNoTrans;
  int64_t ldw = 1;
  int st, mode = mg_set_grad_enabled(ctx, 0);
  if ((st = mg_nn_prep(ctx, &xc, x, dt)) || (st = mg_to_dtype(ctx, &wc, w, dt)))
    goto fail;
  if (!blas_layout(wc, &wt, &ldw)) {
    mg_Tensor *c = NULL;
    if ((st = mg_clone(ctx, &c, wc))) goto fail;
    mg_tensor_decref(wc);
    wc = c;
    blas_layout(wc, &wt, &ldw);
  }
  if (b && (st = mg_nn_prep(ctx, &bc, b, dt))) goto fail;
  if ((st = mg_alloc_tensor(ctx, &r, dt, x->ndim, shape))) goto fail;
  mg_set_grad_enabled(ctx, mode);
  size_t es = mg_dtype_size(dt);
  char *R = mg_data(r);
  if (M && nout && in) {
    mg_blas_threads_for(ctx, M, nout, in);
    if (bc)
      mg_gemm_bias(ctx, dt, CblasNoTrans, flip(wt), M, nout, in, mg_data(xc), in,
                   mg_data(wc), ldw, mg_data(bc), R, nout);
    else
      mg_gemm(ctx, dt, CblasNoTrans, flip(wt), M, nout, in, mg_data(xc), in,
              mg_data(wc), ldw, 0.0, R, nout);
  } else if (M && nout) { /* no inputs: the bias alone */
    for (int64_t i = 0; i < M; i++)
      if (bc) memcpy(R + i * nout * (int64_t)es, mg_data(bc), (size_t)nout * es);
      else memset(R + i * nout * (int64_t)es, 0, (size_t)nout * es);
  }
  if (mg_needs_grad(ctx, b ? 3 : 2, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "linear", linear_backward, b ? 3 : 2, ins, &n)) ||
        (st = mg_save(ctx, n, 0, xc)) || (st = mg_save(ctx, n, 1, wc)))
      goto fail;
  }
  mg_tensor_decref(xc);
  mg_tensor_decref(wc);
  mg_tensor_decref(bc);
  *out = r;
  return MG_OK;
fail:
  mg_set_grad_enabled(ctx, mode);
  mg_tensor_decref(xc);
  mg_tensor_decref(wc);
  mg_tensor_decref(bc);
  mg_tensor_decref(r);
  return st;
}

/* ---- dropout --------------------------------------------------------------------
 * One pass draws the mask and writes the output. The draw is the one
 * mg_rand makes for x's dtype (same blocks, same values), so for a given
 * generator state mask == (rand(shape) < 1 - p). The saved mask holds 0 or
 * 1 / (1 - p), so the backward is one multiply: gx = g * mask. */

static inline float u24(uint32_t x) { return (float)(x >> 8) * 0x1p-24f; }
static inline double u53(uint32_t a, uint32_t b) {
  return ((double)(a >> 5) * 67108864.0 + (double)(b >> 6)) * 0x1p-53;
}

/* y = x * mask over n elements, the mask drawn from the Philox stream
 * (key, stream) from block base on: four uniforms of 24 bits per block in
 * float32, two of 53 bits in float64. */
static void dropout_fill_f32(mg_Context *ctx, float *Y, float *M,
                             const float *X, int64_t n, int64_t nblocks,
                             uint64_t key, uint64_t base, uint64_t stream,
                             double p) {
  double keep = 1.0 - p, scale = p < 1 ? 1.0 / keep : 0.0;
  float keepf = (float)keep;
  int nt = mg_threads_for(ctx, n);
  MG_PARALLEL_FOR(nt, for (int64_t blk = 0; blk < nblocks; blk++) {
    uint32_t r[4];
    mg_philox(r, key, base + (uint64_t)blk, stream);
    int64_t first = blk * 4;
    int count = n - first < 4 ? (int)(n - first) : 4;
    for (int k = 0; k < count; k++) {
      int64_t i = first + k;
      float m = u24(r[k]) < keepf ? (float)scale : 0.0f;
      M[i] = m;
      Y[i] = X[i] * m;
    }
  });
}

/* f64 twin of dropout_fill_f32 */
static void dropout_fill_f64(mg_Context *ctx, double *Y, double *M,
                             const double *X, int64_t n, int64_t nblocks,
                             uint64_t key, uint64_t base, uint64_t stream,
                             double p) {
  double keep = 1.0 - p, scale = p < 1 ? 1.0 / keep : 0.0;
  int nt = mg_threads_for(ctx, n);
  MG_PARALLEL_FOR(nt, for (int64_t blk = 0; blk < nblocks; blk++) {
    uint32_t r[4];
    mg_philox(r, key, base + (uint64_t)blk, stream);
    int64_t first = blk * 2;
    int count = n - first < 2 ? (int)(n - first) : 2;
    for (int k = 0; k < count; k++) {
      int64_t i = first + k;
      double m = u53(r[2 * k], r[2 * k + 1]) < keep ? scale : 0.0;
      M[i] = m;
      Y[i] = X[i] * m;
    }
  });
}

/* Fills y and mask from x and moves the generator past the blocks used. */
static void dropout_fill(mg_Context *ctx, mg_Tensor *y, mg_Tensor *mask,
                         const mg_Tensor *x, double p) {
  int64_t n = mg_numel(x), pb = x->dtype == MG_F32 ? 4 : 2;
  int64_t nblocks = (n + pb - 1) / pb;
  uint64_t key = ctx->rng.seed, base = ctx->rng.offset, stream = ctx->rng.stream;
  switch (x->dtype) {
  case MG_F32:
    dropout_fill_f32(ctx, mg_data(y), mg_data(mask), mg_data(x), n, nblocks,
                     key, base, stream, p);
    break;
  case MG_F64:
    dropout_fill_f64(ctx, mg_data(y), mg_data(mask), mg_data(x), n, nblocks,
                     key, base, stream, p);
    break;
  default: break;
  }
  ctx->rng.offset = base + (uint64_t)nblocks;
}

static int dropout_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                            mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_bw_out(&b, &grads[0], mg_bw_binary(&b, MG_OP_MUL, g, n->saved[0]));
  return mg_bw_end(&b);
}

int mg_dropout(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, double p,
               int training) {
  if (!(p >= 0 && p <= 1))
    return mg_error(ctx, MG_EARG, "dropout: probability must be between 0 "
                    "and 1, got %g", p);
  if (!training || p == 0) {
    mg_tensor_incref(x);
    *out = x;
    return MG_OK;
  }
  mg_DType dt = mg_nn_dtype(x->dtype, x->dtype);
  mg_Tensor *xc = NULL, *r = NULL, *mask = NULL, *ins[1] = {x};
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = mg_nn_prep(ctx, &xc, x, dt);
  if (!st) st = mg_alloc_tensor(ctx, &r, dt, x->ndim, x->shape);
  if (!st) st = mg_alloc_tensor(ctx, &mask, dt, x->ndim, x->shape);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  mg_RngState rng = mg_get_rng_state(ctx);
  dropout_fill(ctx, r, mask, xc, p);
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "dropout", dropout_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, mask))) {
      mg_set_rng_state(ctx, rng); /* a failed call leaves no trace */
      goto done;
    }
  }
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(xc);
  mg_tensor_decref(mask);
  mg_tensor_decref(r);
  return st;
}

/* ---- embedding --------------------------------------------------------------------
 * ids [...] (1-based), weight [V, D] -> out [..., D]: a row copy per id.
 * The backward scatter-adds g's rows into a zero [V, D]; duplicate ids
 * accumulate. Threads split the D columns (never the ids), so no two
 * threads write one element and the sums do not depend on the thread
 * count. */

static int check_ids(mg_Context *ctx, const mg_Tensor *ids, int64_t V) {
  const int64_t *ID = mg_data(ids);
  int64_t n = mg_numel(ids);
  for (int64_t i = 0; i < n; i++)
    if (ID[i] < 1 || ID[i] > V)
      return mg_error(ctx, MG_EINDEX, "embedding: id %lld out of range for "
                      "%lld embeddings (ids are 1-based)", (long long)ID[i],
                      (long long)V);
  return MG_OK;
}

/* gw[id - 1] += g[i] for each id not padding, on nt threads, each adding
 * into its own share of the D columns. */
static void embedding_scatter_f32(float *GW, const float *G, const int64_t *ID,
                                  int64_t nid, int64_t D, int nt, int has_pad,
                                  int64_t pad) {
  /* One share of the columns per thread. */
  MG_PARALLEL_FOR(nt, for (int t = 0; t < nt; t++) {
    int64_t c0 = D * t / nt, c1 = D * (t + 1) / nt;
    for (int64_t i = 0; i < nid; i++) {
      if (has_pad && ID[i] == pad) continue;
      float *o = GW + (ID[i] - 1) * D;
      const float *src = G + i * D;
      for (int64_t c = c0; c < c1; c++) o[c] += src[c];
    }
  });
}

/* f64 twin of embedding_scatter_f32 */
static void embedding_scatter_f64(double *GW, const double *G, const int64_t *ID,
                                  int64_t nid, int64_t D, int nt, int has_pad,
                                  int64_t pad) {
  /* One share of the columns per thread. */
  MG_PARALLEL_FOR(nt, for (int t = 0; t < nt; t++) {
    int64_t c0 = D * t / nt, c1 = D * (t + 1) / nt;
    for (int64_t i = 0; i < nid; i++) {
      if (has_pad && ID[i] == pad) continue;
      double *o = GW + (ID[i] - 1) * D;
      const double *src = G + i * D;
      for (int64_t c = c0; c < c1; c++) o[c] += src[c];
    }
  });
}

static int embedding_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                              mg_Tensor **grads) {
  mg_Tensor *ids = n->saved[0], *gc = NULL, *gw = NULL;
  mg_DType dt = n->in_dtype[0];
  int64_t D = n->in_shape[0][1], nid = mg_numel(ids), pad = n->i[1];
  int has_pad = (int)n->i[0], st;
  if ((st = mg_nn_prep(ctx, &gc, g, dt)) ||
      (st = mg_full(ctx, &gw, dt, 2, n->in_shape[0], 0))) {
    mg_tensor_decref(gc);
    return st;
  }
  const int64_t *ID = mg_data(ids);
  int nt = mg_threads_for(ctx, nid * D);
  if (nt > D) nt = D > 0 ? (int)D : 1;
  switch (dt) {
  case MG_F32:
    embedding_scatter_f32(mg_data(gw), mg_data(gc), ID, nid, D, nt, has_pad, pad);
    break;
  case MG_F64:
    embedding_scatter_f64(mg_data(gw), mg_data(gc), ID, nid, D, nt, has_pad, pad);
    break;
  default: break;
  }
  mg_tensor_decref(gc);
  grads[0] = gw;
  return MG_OK;
}

int mg_embedding(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *ids,
                 mg_Tensor *weight, int has_padding, int64_t padding_idx) {
  char sw[MG_SHAPE_BUFSZ];
  if (ids->dtype != MG_I64)
    return mg_error(ctx, MG_EARG, "embedding: ids must be int64, got %s",
                    mg_dtype_name(ids->dtype));
  if (weight->ndim != 2)
    return mg_error(ctx, MG_ESHAPE, "embedding: weight must be 2-D [V, D], "
                    "got shape %s", mg_shape_str(sw, sizeof sw, weight->ndim,
                                                 weight->shape));
  if (ids->ndim + 1 > MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "embedding: ids have too many dimensions");
  int64_t V = weight->shape[0], D = weight->shape[1], shape[MG_MAXDIM];
  mg_DType dt = mg_nn_dtype(weight->dtype, weight->dtype);
  mg_Tensor *ic = NULL, *wc = NULL, *r = NULL, *ins[1] = {weight};
  for (int d = 0; d < ids->ndim; d++) shape[d] = ids->shape[d];
  shape[ids->ndim] = D;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = mg_contiguous(ctx, &ic, (mg_Tensor *)ids);
  if (!st) st = check_ids(ctx, ic, V);
  if (!st) st = mg_nn_prep(ctx, &wc, weight, dt);
  if (!st) st = mg_alloc_tensor(ctx, &r, dt, ids->ndim + 1, shape);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  int64_t nid = mg_numel(ic);
  size_t row = (size_t)D * mg_dtype_size(dt);
  const int64_t *ID = mg_data(ic);
  const char *W = mg_data(wc);
  char *R = mg_data(r);
  int nt = mg_threads_for(ctx, nid * D);
  MG_PARALLEL_FOR(nt, for (int64_t i = 0; i < nid; i++) {
    if (row) memcpy(R + (size_t)i * row, W + (size_t)(ID[i] - 1) * row, row);
  });
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "embedding", embedding_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, ic)))
      goto done;
    n->i[0] = has_padding;
    n->i[1] = padding_idx;
  }
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(ic);
  mg_tensor_decref(wc);
  mg_tensor_decref(r);
  return st;
}
