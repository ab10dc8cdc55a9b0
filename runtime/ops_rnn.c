/*
 * ops_rnn.c — one recurrent layer over a sequence: the forward recurrence
 * and backpropagation through time, side by side per cell.
 *
 * Layout (see mg_rnn.h): xp [N, T, G·H] the input projection, P [N, T+1,
 * W] the state trajectory (the op's output; a row holds h, R wide, then
 * for LSTM c, H wide: W = R + H; R = H but for a projected LSTM, where R
 * is the projection size), Z [N, T, ZW] what backward needs besides P, per
 * time position:
 *   LSTM  i, f, g, o        (activated gates), and m = o tanh(c) when
 *                           projected (h = m W_hrᵀ)
 *   GRU   r, z, n, W_hn h + b_hn
 *   tanh / relu: nothing (h_t itself gives the derivative)
 *
 * Step k (1..T) of a forward layer reads time position k-1 of xp and state
 * row k-1 of P and writes row k; a reverse layer's step k reads position
 * T-k and row T-k+1 and writes row T-k. Either way row r of P after its
 * initial state is the output at time position r (forward: r-1), so the
 * caller's output view is rows 1..T (forward) or 0..T-1 (reverse).
 *
 * Per step, with A the step's pre-activations:
 *   forward   A  = xp + h_prev W_hhᵀ        one gemm for all gates
 *             fused pass: gates, c, h into Z and P
 *             (projected LSTM: h = m W_hrᵀ, one more gemm)
 *   backward  (projected: dW_hr += dhᵀ m, dm = dh W_hr)
 *             fused pass: dA from dh (+ dc) and Z, P
 *             dh_prev  = dA W_hh             (N x GH)(GH x R)
 *             dW_hh   += dAᵀ h_prev          (GH x N)(N x R)
 * dA over all steps is the gradient of xp, so dW_ih and dx come from the
 * caller's one linear over the whole sequence.
 *
 * Each cell's fused pass is a float32 function with its float64 twin,
 * picked once per call (Kernels). Both compute in double and round once on
 * store, so float32's results stay what the reference checks expect.
 * float32 activations use mg_vmath.h's tanh and sigmoid, which vectorise,
 * float64 libm's, as elsewhere. The passes were a third of an LSTM step
 * when they ran one element at a time on one thread: now each row is a
 * branch-free vectorised loop and the rows are split among threads.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "mg_rnn.h"
#include "mg_nn_internal.h"
#include "mg_vmath.h"

static const char *const cell_names[MG_NRNN] = {"rnn_tanh", "rnn_relu",
                                                "lstm", "gru"};

const char *mg_rnn_cell_name(mg_RnnCell cell) {
  return (unsigned)cell < MG_NRNN ? cell_names[cell] : NULL;
}

int mg_rnn_cell_from_name(const char *name) {
  for (int c = 0; c < MG_NRNN; c++)
    if (!strcmp(name, cell_names[c])) return c;
  return -1;
}

/* Sizes of one call. */
typedef struct {
  mg_RnnCell cell;
  mg_DType dt;
  int64_t N, T, H;
  int64_t R;    /* width of h: the projection size, else H */
  int64_t G;    /* gates: 1, 4 or 3 */
  int64_t W;    /* width of a row of P: R, or R + H for LSTM */
  int64_t ZW;   /* width of a row of Z: 4H (5H projected), or 0 */
  int proj;     /* LSTM with weight_hr */
  int reverse;  /* runs from the last time position to the first */
} Dims;

static void fill_dims(Dims *d, mg_RnnCell cell, int64_t N, int64_t T, int64_t H,
                      int64_t R, int proj, int reverse) {
  int lstm = cell == MG_RNN_LSTM;
  *d = (Dims){.cell = cell, .N = N, .T = T, .H = H, .R = R,
              .G = lstm ? 4 : cell == MG_RNN_GRU ? 3 : 1,
              .W = lstm ? R + H : R,
              .ZW = lstm ? (proj ? 5 : 4) * H : cell == MG_RNN_GRU ? 4 * H : 0,
              .proj = proj, .reverse = reverse};
}

/* Step k's time position (of xp and Z), the row it reads and the row it
 * writes. */
static inline void step_rows(const Dims *d, int64_t k, int64_t *tp, int64_t *rp,
                             int64_t *rc) {
  if (d->reverse) { *tp = d->T - k; *rp = d->T - k + 1; *rc = d->T - k; }
  else { *tp = k - 1; *rp = k - 1; *rc = k; }
}

/* The row of P holding the initial state. */
static inline int64_t initial_row(const Dims *d) { return d->reverse ? d->T : 0; }

/* ---- activations -----------------------------------------------------------
 * float32 cells compute in float, with mg_vmath.h's gate functions (within
 * 3 ulps, 16 lanes to a vector: the gate pass is most of a step beside its
 * products); float64 cells in double, with libm's. */

static inline float sigmoid_f32(float x) { return mg_vgate_sigmoidf(x); }
/* f64 twin of sigmoid_f32 */
static inline double sigmoid_f64(double x) { return 1.0 / (1.0 + exp(-x)); }

static inline float tanh_f32(float x) { return mg_vgate_tanhf(x); }
/* f64 twin of tanh_f32 */
static inline double tanh_f64(double x) { return tanh(x); }

/* A pointer es-sized elements past p. */
static inline void *at(void *p, size_t es, int64_t i) { return (char *)p + i * (int64_t)es; }

/* ---- checks ----------------------------------------------------------------- */

static int check_2d(mg_Context *ctx, const char *op, const char *what,
                    const mg_Tensor *t, int64_t r, int64_t c) {
  char s[MG_SHAPE_BUFSZ];
  if (t->ndim != 2 || t->shape[0] != r || t->shape[1] != c)
    return mg_error(ctx, MG_ESHAPE, "%s: %s of shape %s does not fit "
                    "(expected [%lld, %lld])", op, what,
                    mg_shape_str(s, sizeof s, t->ndim, t->shape),
                    (long long)r, (long long)c);
  return MG_OK;
}

/* The sizes of the hidden side: H and R from weight_hr [R, H] when given,
 * else from weight_hh [G·H, H]; weight_hh must then be [G·H, R]. */
static int check_weights(mg_Context *ctx, const char *op, int64_t G,
                         const mg_Tensor *w_hh, const mg_Tensor *w_hr,
                         int64_t *H, int64_t *R) {
  char sw[MG_SHAPE_BUFSZ], sr[MG_SHAPE_BUFSZ];
  if (!w_hr) {
    if (w_hh->ndim != 2 || w_hh->shape[1] < 1 || w_hh->shape[0] != G * w_hh->shape[1])
      return mg_error(ctx, MG_ESHAPE, "%s: weight_hh of shape %s must be "
                      "[%lld*H, H] with H >= 1", op,
                      mg_shape_str(sw, sizeof sw, w_hh->ndim, w_hh->shape),
                      (long long)G);
    *H = *R = w_hh->shape[1];
    return MG_OK;
  }
  mg_shape_str(sr, sizeof sr, w_hr->ndim, w_hr->shape);
  if (w_hr->ndim != 2 || w_hr->shape[0] < 1 || w_hr->shape[1] < 1)
    return mg_error(ctx, MG_ESHAPE, "%s: weight_hr of shape %s must be [P, H] "
                    "with P, H >= 1", op, sr);
  *R = w_hr->shape[0];
  *H = w_hr->shape[1];
  if (w_hh->ndim != 2 || w_hh->shape[0] != G * *H || w_hh->shape[1] != *R)
    return mg_error(ctx, MG_ESHAPE, "%s: weight_hh of shape %s does not fit "
                    "weight_hr of shape %s (expected [%lld, %lld])", op,
                    mg_shape_str(sw, sizeof sw, w_hh->ndim, w_hh->shape), sr,
                    (long long)(G * *H), (long long)*R);
  return MG_OK;
}

static int check(mg_Context *ctx, mg_RnnCell cell, const mg_Tensor *xp,
                 const mg_Tensor *h0, const mg_Tensor *c0,
                 const mg_Tensor *w_hh, const mg_Tensor *b_hh,
                 const mg_Tensor *w_hr, int reverse, Dims *d) {
  if ((unsigned)cell >= MG_NRNN)
    return mg_error(ctx, MG_EARG, "rnn_layer: unknown cell %d", (int)cell);
  const char *op = cell_names[cell];
  char sx[MG_SHAPE_BUFSZ], sw[MG_SHAPE_BUFSZ];
  int64_t G = cell == MG_RNN_LSTM ? 4 : cell == MG_RNN_GRU ? 3 : 1, H = 0, R = 0;
  if (cell != MG_RNN_LSTM && w_hr)
    return mg_error(ctx, MG_EARG, "%s: takes no weight_hr (only lstm has a "
                    "projection)", op);
  int st = check_weights(ctx, op, G, w_hh, w_hr, &H, &R);
  if (st) return st;
  if (xp->ndim != 3 || xp->shape[0] < 1 || xp->shape[1] < 1 || xp->shape[2] != G * H)
    return mg_error(ctx, MG_ESHAPE, "%s: projected input of shape %s does not "
                    "fit weight_hh of shape %s (expected [N, T, %lld] with N, "
                    "T >= 1)", op, mg_shape_str(sx, sizeof sx, xp->ndim, xp->shape),
                    mg_shape_str(sw, sizeof sw, w_hh->ndim, w_hh->shape),
                    (long long)(G * H));
  int64_t N = xp->shape[0];
  if ((st = check_2d(ctx, op, "h0", h0, N, R))) return st;
  if (cell == MG_RNN_LSTM && !c0)
    return mg_error(ctx, MG_EARG, "%s: needs c0", op);
  if (cell != MG_RNN_LSTM && c0)
    return mg_error(ctx, MG_EARG, "%s: takes no c0 (only lstm has a cell state)", op);
  if (c0 && (st = check_2d(ctx, op, "c0", c0, N, H))) return st;
  if (cell != MG_RNN_GRU && b_hh)
    return mg_error(ctx, MG_EARG, "%s: takes no separate b_hh (add it to the "
                    "projected input)", op);
  if (b_hh && (b_hh->ndim != 1 || b_hh->shape[0] != G * H))
    return mg_error(ctx, MG_ESHAPE, "%s: bias_hh of shape %s does not fit "
                    "(expected [%lld])", op,
                    mg_shape_str(sx, sizeof sx, b_hh->ndim, b_hh->shape),
                    (long long)(G * H));
  fill_dims(d, cell, N, xp->shape[1], H, R, w_hr != NULL, reverse);
  return MG_OK;
}

/* ---- the cells: one fused forward and backward pass per step ---------------
 * Each runs over the N rows of one step. Pointers are to the first element
 * of row (n = 0) of the step's slice; the row strides are P: (T+1)·W, Z
 * and xp/dXP: T·ZW and T·G·H. */

/* Pointers and row strides for one step. */
typedef struct {
  const Dims *d;
  size_t es;
  int64_t sp, sz, sx;   /* row strides of P, Z, xp/dXP */
  void *p, *pp;         /* the P row written and the row read (h slot) */
  void *z;              /* Z at the step's time position */
  void *x;              /* xp (forward) or dXP (backward) at that position */
  const void *gp;       /* backward: dP at the row written (h slot) */
  void *hc;             /* backward: dh carry [N, R]; GRU forward: gh [N, 3H] */
  void *cc;             /* backward, LSTM: dc carry [N, H] */
  const void *dm;       /* backward, projected LSTM: dm [N, H], else NULL */
  const void *bh;       /* GRU: b_hh [3H] or NULL */
  void *dg;             /* GRU backward: dgh [N, 3H] */
  int nt;               /* threads for the cell passes */
} Step;

/* Threads for one step's cell pass: an element of it costs about as much
 * as eight elementwise ops (three or four exponentials). */
static int cell_threads(const mg_Context *ctx, const Dims *d) {
  return mg_threads_for(ctx, d->N * d->H * 8);
}

/* Each pass below runs its rows on s->nt threads; a row's loop has no
 * branch and restrict pointers, so that GCC vectorises it (the options
 * that vary by call, projection and bias, are constant arguments of an
 * always-inlined row function). */

/* tanh / relu forward: P_t holds A_t; apply the activation in place. */
static void simple_fw_f32(const Step *s) {
  const Dims *d = s->d;
  int tanh_cell = d->cell == MG_RNN_TANH;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    float *restrict p = (float *)s->p + n * s->sp;
    if (tanh_cell)
      for (int64_t j = 0; j < d->H; j++) p[j] = tanh_f32(p[j]);
    else
      for (int64_t j = 0; j < d->H; j++) p[j] = p[j] > 0 ? p[j] : 0;
  }
}
/* f64 twin of simple_fw_f32 */
static void simple_fw_f64(const Step *s) {
  const Dims *d = s->d;
  int tanh_cell = d->cell == MG_RNN_TANH;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    double *restrict p = (double *)s->p + n * s->sp;
    if (tanh_cell)
      for (int64_t j = 0; j < d->H; j++) p[j] = tanh_f64(p[j]);
    else
      for (int64_t j = 0; j < d->H; j++) p[j] = p[j] > 0 ? p[j] : 0;
  }
}

/* tanh / relu backward: dA = dh · act'(A), from h_t = act(A). */
static void simple_bw_f32(const Step *s) {
  const Dims *d = s->d;
  int tanh_cell = d->cell == MG_RNN_TANH;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    const float *restrict gp = (const float *)s->gp + n * s->sp;
    const float *restrict hc = (const float *)s->hc + n * d->H;
    const float *restrict p = (const float *)s->p + n * s->sp;
    float *restrict x = (float *)s->x + n * s->sx;
    for (int64_t j = 0; j < d->H; j++) {
      float dh = gp[j] + hc[j], h = p[j];
      x[j] = tanh_cell ? dh * (1 - h * h) : (h > 0 ? dh : 0);
    }
  }
}
/* f64 twin of simple_bw_f32 */
static void simple_bw_f64(const Step *s) {
  const Dims *d = s->d;
  int tanh_cell = d->cell == MG_RNN_TANH;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    const double *restrict gp = (const double *)s->gp + n * s->sp;
    const double *restrict hc = (const double *)s->hc + n * d->H;
    const double *restrict p = (const double *)s->p + n * s->sp;
    double *restrict x = (double *)s->x + n * s->sx;
    for (int64_t j = 0; j < d->H; j++) {
      double dh = gp[j] + hc[j], h = p[j];
      x[j] = tanh_cell ? dh * (1 - h * h) : (h > 0 ? dh : 0);
    }
  }
}

/* LSTM forward: A = [a_i, a_f, a_g, a_o] is Z (h_{t-1} W_hhᵀ) plus X (the
 * input's projection); c_t = f c_{t-1} + i g, h_t = o tanh(c_t)
 * (projected: m = o tanh(c_t) into Z, for the caller's h = m W_hrᵀ). One
 * row: z the row of Z (gates in place), x the row of X, cp c_{t-1}, c c_t,
 * h where h (or m) goes. */
MG_INLINE void lstm_fw_row_f32(float *restrict z, const float *restrict x,
                            const float *restrict cp, float *restrict c,
                            float *restrict h, int64_t H) {
  for (int64_t j = 0; j < H; j++) {
    float i = sigmoid_f32(z[j] + x[j]), f = sigmoid_f32(z[H + j] + x[H + j]);
    float g = tanh_f32(z[2 * H + j] + x[2 * H + j]);
    float o = sigmoid_f32(z[3 * H + j] + x[3 * H + j]);
    float cj = f * cp[j] + i * g;
    z[j] = i;
    z[H + j] = f;
    z[2 * H + j] = g;
    z[3 * H + j] = o;
    c[j] = cj;
    h[j] = o * tanh_f32(cj);
  }
}
/* f64 twin of lstm_fw_row_f32 */
MG_INLINE void lstm_fw_row_f64(double *restrict z, const double *restrict x,
                            const double *restrict cp, double *restrict c,
                            double *restrict h, int64_t H) {
  for (int64_t j = 0; j < H; j++) {
    double i = sigmoid_f64(z[j] + x[j]), f = sigmoid_f64(z[H + j] + x[H + j]);
    double g = tanh_f64(z[2 * H + j] + x[2 * H + j]);
    double o = sigmoid_f64(z[3 * H + j] + x[3 * H + j]);
    double cj = f * cp[j] + i * g;
    z[j] = i;
    z[H + j] = f;
    z[2 * H + j] = g;
    z[3 * H + j] = o;
    c[j] = cj;
    h[j] = o * tanh_f64(cj);
  }
}

static void lstm_fw_f32(const Step *s) {
  const Dims *d = s->d;
  int64_t H = d->H, R = d->R;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    float *z = (float *)s->z + n * s->sz, *p = (float *)s->p + n * s->sp;
    const float *x = (const float *)s->x + n * s->sx, *cp = (const float *)s->pp + n * s->sp + R;
    lstm_fw_row_f32(z, x, cp, p + R, d->proj ? z + 4 * H : p, H);
  }
}
/* f64 twin of lstm_fw_f32 */
static void lstm_fw_f64(const Step *s) {
  const Dims *d = s->d;
  int64_t H = d->H, R = d->R;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    double *z = (double *)s->z + n * s->sz, *p = (double *)s->p + n * s->sp;
    const double *x = (const double *)s->x + n * s->sx, *cp = (const double *)s->pp + n * s->sp + R;
    lstm_fw_row_f64(z, x, cp, p + R, d->proj ? z + 4 * H : p, H);
  }
}

/* LSTM backward: dh = dP_h + carry (projected: dm, given), dc = dP_c +
 * carry + dh o tanh'(c); dA = [dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g²),
 * dh tanh(c) o(1-o)], and the new c carry dc f. One row: z the gates, c and
 * cp c_t and c_{t-1}, gh and gc dP at h and c, hc the h carry (or dm when
 * proj), cc the c carry, dx dA. */
MG_INLINE void lstm_bw_row_f32(const float *restrict z, const float *restrict c,
                            const float *restrict cp, const float *restrict gh,
                            const float *restrict gc, const float *restrict hc,
                            float *restrict cc, float *restrict dx, int64_t H, int proj) {
  for (int64_t j = 0; j < H; j++) {
    float i = z[j], f = z[H + j], g = z[2 * H + j], o = z[3 * H + j];
    float tc = tanh_f32(c[j]), cpj = cp[j];
    float dh = proj ? hc[j] : gh[j] + hc[j];
    float dc = gc[j] + cc[j] + dh * o * (1 - tc * tc);
    dx[j] = dc * g * i * (1 - i);
    dx[H + j] = dc * cpj * f * (1 - f);
    dx[2 * H + j] = dc * i * (1 - g * g);
    dx[3 * H + j] = dh * tc * o * (1 - o);
    cc[j] = dc * f;
  }
}
/* f64 twin of lstm_bw_row_f32 */
MG_INLINE void lstm_bw_row_f64(const double *restrict z, const double *restrict c,
                            const double *restrict cp, const double *restrict gh,
                            const double *restrict gc, const double *restrict hc,
                            double *restrict cc, double *restrict dx, int64_t H, int proj) {
  for (int64_t j = 0; j < H; j++) {
    double i = z[j], f = z[H + j];
    double g = z[2 * H + j], o = z[3 * H + j];
    double tc = tanh_f64(c[j]), cpj = cp[j];
    double dh = proj ? hc[j] : gh[j] + hc[j];
    double dc = gc[j] + cc[j] + dh * o * (1 - tc * tc);
    dx[j] = dc * g * i * (1 - i);
    dx[H + j] = dc * cpj * f * (1 - f);
    dx[2 * H + j] = dc * i * (1 - g * g);
    dx[3 * H + j] = dh * tc * o * (1 - o);
    cc[j] = dc * f;
  }
}

static void lstm_bw_f32(const Step *s) {
  const Dims *d = s->d;
  int64_t H = d->H, R = d->R;
  const float *dm = s->dm;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    const float *z = (const float *)s->z + n * s->sz, *gp = (const float *)s->gp + n * s->sp;
    const float *c = (const float *)s->p + n * s->sp + R, *cp = (const float *)s->pp + n * s->sp + R;
    float *cc = (float *)s->cc + n * H, *dx = (float *)s->x + n * s->sx;
    if (dm) lstm_bw_row_f32(z, c, cp, gp, gp + R, dm + n * H, cc, dx, H, 1);
    else lstm_bw_row_f32(z, c, cp, gp, gp + R, (const float *)s->hc + n * H, cc, dx, H, 0);
  }
}
/* f64 twin of lstm_bw_f32 */
static void lstm_bw_f64(const Step *s) {
  const Dims *d = s->d;
  int64_t H = d->H, R = d->R;
  const double *dm = s->dm;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    const double *z = (const double *)s->z + n * s->sz, *gp = (const double *)s->gp + n * s->sp;
    const double *c = (const double *)s->p + n * s->sp + R, *cp = (const double *)s->pp + n * s->sp + R;
    double *cc = (double *)s->cc + n * H, *dx = (double *)s->x + n * s->sx;
    if (dm) lstm_bw_row_f64(z, c, cp, gp, gp + R, dm + n * H, cc, dx, H, 1);
    else lstm_bw_row_f64(z, c, cp, gp, gp + R, (const double *)s->hc + n * H, cc, dx, H, 0);
  }
}

/* GRU forward: gh = h_{t-1} W_hhᵀ (in s->hc) + b_hh; r = σ(x_r + gh_r),
 * z = σ(x_z + gh_z), n = tanh(x_n + r gh_n), h = (1 - z) n + z h_{t-1}.
 * One row: x the input side, gh the hidden side, b b_hh (read when bias),
 * hp h_{t-1}, z the saved [r, z, n, gh_n], h h_t. */
MG_INLINE void gru_fw_row_f32(const float *restrict x, const float *restrict gh,
                           const float *restrict b, const float *restrict hp,
                           float *restrict z, float *restrict h, int64_t H, int bias) {
  for (int64_t j = 0; j < H; j++) {
    float br = bias ? b[j] : 0, bz = bias ? b[H + j] : 0, bn = bias ? b[2 * H + j] : 0;
    float r = sigmoid_f32(x[j] + gh[j] + br);
    float u = sigmoid_f32(x[H + j] + gh[H + j] + bz);
    float ghn = gh[2 * H + j] + bn;
    float nn = tanh_f32(x[2 * H + j] + r * ghn);
    z[j] = r;
    z[H + j] = u;
    z[2 * H + j] = nn;
    z[3 * H + j] = ghn;
    h[j] = (1 - u) * nn + u * hp[j];
  }
}
/* f64 twin of gru_fw_row_f32 */
MG_INLINE void gru_fw_row_f64(const double *restrict x, const double *restrict gh,
                           const double *restrict b, const double *restrict hp,
                           double *restrict z, double *restrict h, int64_t H, int bias) {
  for (int64_t j = 0; j < H; j++) {
    double br = bias ? b[j] : 0, bz = bias ? b[H + j] : 0;
    double bn = bias ? b[2 * H + j] : 0;
    double r = sigmoid_f64(x[j] + gh[j] + br);
    double u = sigmoid_f64(x[H + j] + gh[H + j] + bz);
    double ghn = gh[2 * H + j] + bn;
    double nn = tanh_f64(x[2 * H + j] + r * ghn);
    z[j] = r;
    z[H + j] = u;
    z[2 * H + j] = nn;
    z[3 * H + j] = ghn;
    h[j] = (1 - u) * nn + u * hp[j];
  }
}

static void gru_fw_f32(const Step *s) {
  const Dims *d = s->d;
  int64_t H = d->H;
  const float *bh = s->bh;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    const float *x = (const float *)s->x + n * s->sx, *gh = (const float *)s->hc + n * 3 * H;
    const float *hp = (const float *)s->pp + n * s->sp;
    float *z = (float *)s->z + n * s->sz, *h = (float *)s->p + n * s->sp;
    if (bh) gru_fw_row_f32(x, gh, bh, hp, z, h, H, 1);
    else gru_fw_row_f32(x, gh, bh, hp, z, h, H, 0);
  }
}
/* f64 twin of gru_fw_f32 */
static void gru_fw_f64(const Step *s) {
  const Dims *d = s->d;
  int64_t H = d->H;
  const double *bh = s->bh;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++) {
    const double *x = (const double *)s->x + n * s->sx, *gh = (const double *)s->hc + n * 3 * H;
    const double *hp = (const double *)s->pp + n * s->sp;
    double *z = (double *)s->z + n * s->sz, *h = (double *)s->p + n * s->sp;
    if (bh) gru_fw_row_f64(x, gh, bh, hp, z, h, H, 1);
    else gru_fw_row_f64(x, gh, bh, hp, z, h, H, 0);
  }
}

/* GRU backward: dn = dh (1-z), dz = dh (h_{t-1} - n); with da_n = dn (1-n²)
 * the input side gets [dr r(1-r), dz z(1-z), da_n] (dr = da_n gh_n), the
 * hidden side (dgh) the same but da_n r, and h_{t-1} directly dh z (left
 * in the carry; the gemm adds dgh W_hh). */
MG_INLINE void gru_bw_row_f32(const float *restrict z, const float *restrict hp,
                           const float *restrict gp, float *restrict hc,
                           float *restrict dx, float *restrict dg, int64_t H) {
  for (int64_t j = 0; j < H; j++) {
    float r = z[j], u = z[H + j], nn = z[2 * H + j], ghn = z[3 * H + j];
    float dh = gp[j] + hc[j];
    float dan = dh * (1 - u) * (1 - nn * nn);
    float dar = dan * ghn * r * (1 - r), dau = dh * (hp[j] - nn) * u * (1 - u);
    dx[j] = dar;
    dx[H + j] = dau;
    dx[2 * H + j] = dan;
    dg[j] = dar;
    dg[H + j] = dau;
    dg[2 * H + j] = dan * r;
    hc[j] = dh * u;
  }
}
/* f64 twin of gru_bw_row_f32 */
MG_INLINE void gru_bw_row_f64(const double *restrict z, const double *restrict hp,
                           const double *restrict gp, double *restrict hc,
                           double *restrict dx, double *restrict dg, int64_t H) {
  for (int64_t j = 0; j < H; j++) {
    double r = z[j], u = z[H + j];
    double nn = z[2 * H + j], ghn = z[3 * H + j];
    double dh = gp[j] + hc[j];
    double dan = dh * (1 - u) * (1 - nn * nn);
    double dar = dan * ghn * r * (1 - r), dau = dh * (hp[j] - nn) * u * (1 - u);
    dx[j] = dar;
    dx[H + j] = dau;
    dx[2 * H + j] = dan;
    dg[j] = dar;
    dg[H + j] = dau;
    dg[2 * H + j] = dan * r;
    hc[j] = dh * u;
  }
}

static void gru_bw_f32(const Step *s) {
  const Dims *d = s->d;
  int64_t H = d->H;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++)
    gru_bw_row_f32((const float *)s->z + n * s->sz, (const float *)s->pp + n * s->sp,
                   (const float *)s->gp + n * s->sp, (float *)s->hc + n * H,
                   (float *)s->x + n * s->sx, (float *)s->dg + n * 3 * H, H);
}
/* f64 twin of gru_bw_f32 */
static void gru_bw_f64(const Step *s) {
  const Dims *d = s->d;
  int64_t H = d->H;
#pragma omp parallel for num_threads(s->nt) schedule(static) if (s->nt > 1)
  for (int64_t n = 0; n < d->N; n++)
    gru_bw_row_f64((const double *)s->z + n * s->sz, (const double *)s->pp + n * s->sp,
                   (const double *)s->gp + n * s->sp, (double *)s->hc + n * H,
                   (double *)s->x + n * s->sx, (double *)s->dg + n * 3 * H, H);
}

/* dst [N, w] = a [N, w] + the first w of each ld-strided row of b, in
 * double and rounded once (dst may be a). */
static void add_rows_f32(void *dst, const void *a, const void *b, int64_t N,
                         int64_t w, int64_t ld) {
  float *y = dst;
  const float *p = a, *q = b;
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < w; j++)
      y[n * w + j] = (float)((double)p[n * w + j] + (double)q[n * ld + j]);
}
/* f64 twin of add_rows_f32 */
static void add_rows_f64(void *dst, const void *a, const void *b, int64_t N,
                         int64_t w, int64_t ld) {
  double *y = dst;
  const double *p = a, *q = b;
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < w; j++)
      y[n * w + j] = (double)((double)p[n * w + j] + (double)q[n * ld + j]);
}

/* acc [w] += the N rows of x [N, w], in row order. */
static void acc_rows_f32(double *acc, const void *x, int64_t N, int64_t w) {
  const float *p = x;
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < w; j++) acc[j] += (double)p[n * w + j];
}
/* f64 twin of acc_rows_f32 */
static void acc_rows_f64(double *acc, const void *x, int64_t N, int64_t w) {
  const double *p = x;
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < w; j++) acc[j] += (double)p[n * w + j];
}

/* dst [n] = src rounded to the dtype. */
static void from_double_f32(void *dst, const double *src, int64_t n) {
  float *y = dst;
  for (int64_t j = 0; j < n; j++) y[j] = (float)src[j];
}
/* f64 twin of from_double_f32 */
static void from_double_f64(void *dst, const double *src, int64_t n) {
  double *y = dst;
  for (int64_t j = 0; j < n; j++) y[j] = (double)src[j];
}

/* The per-dtype kernels of one call, picked once at its entry. */
typedef struct {
  void (*simple_fw)(const Step *s);
  void (*simple_bw)(const Step *s);
  void (*lstm_fw)(const Step *s);
  void (*lstm_bw)(const Step *s);
  void (*gru_fw)(const Step *s);
  void (*gru_bw)(const Step *s);
  void (*add_rows)(void *dst, const void *a, const void *b, int64_t N, int64_t w,
                   int64_t ld);
  void (*acc_rows)(double *acc, const void *x, int64_t N, int64_t w);
  void (*from_double)(void *dst, const double *src, int64_t n);
} Kernels;

static const Kernels KERNELS_F32 = {simple_fw_f32, simple_bw_f32, lstm_fw_f32,
                                    lstm_bw_f32, gru_fw_f32, gru_bw_f32,
                                    add_rows_f32, acc_rows_f32, from_double_f32};
static const Kernels KERNELS_F64 = {simple_fw_f64, simple_bw_f64, lstm_fw_f64,
                                    lstm_bw_f64, gru_fw_f64, gru_bw_f64,
                                    add_rows_f64, acc_rows_f64, from_double_f64};

/* ---- backward ------------------------------------------------------------- */

/* A projected LSTM's step, before lstm_bw: dh = dP_h + carry (into the
 * carry), dW_hr += dhᵀ m, and dm = dh W_hr for lstm_bw. */
static void proj_bw(mg_Context *ctx, const Kernels *k, const Step *s,
                    const void *w_hr, void *dwr, void *dm) {
  const Dims *d = s->d;
  mg_DType dt = d->dt;
  int64_t N = d->N, H = d->H, R = d->R;
  k->add_rows(s->hc, s->hc, s->gp, N, R, s->sp);
  mg_gemm(ctx, dt, CblasTrans, CblasNoTrans, R, H, N, s->hc, R,
          at(s->z, s->es, 4 * H), s->sz, 1.0, dwr, H);
  mg_gemm(ctx, dt, CblasNoTrans, CblasNoTrans, N, H, R, s->hc, R, w_hr, H, 0.0, dm, H);
}

/* Inputs of the node: xp, h0, w_hh, c0 (LSTM) or b_hh (GRU) or none, then
 * w_hr for a projected LSTM. Saved: P (the output), Z, w_hh, and b_hh (GRU)
 * or w_hr (projected LSTM). */
static int rnn_backward(mg_Context *ctx, mg_Node *node, mg_Tensor *g,
                        mg_Tensor **grads) {
  mg_Tensor *P = node->saved[0], *Z = node->saved[1], *W = node->saved[2];
  mg_Tensor *B = node->saved[3];
  mg_RnnCell cell = (mg_RnnCell)node->i[0];
  int proj = (int)node->i[2];
  mg_Tensor *WR = proj ? B : NULL;
  if (proj) B = NULL;
  int64_t H = WR ? WR->shape[1] : W->shape[1], R = W->shape[1];
  Dims d;
  fill_dims(&d, cell, P->shape[0], P->shape[1] - 1, H, R, proj, (int)node->i[1]);
  d.dt = P->dtype;
  mg_DType dt = d.dt;
  const Kernels *kern = dt == MG_F32 ? &KERNELS_F32 : &KERNELS_F64;
  int64_t N = d.N, T = d.T, G = d.G, GH = G * H;
  size_t es = mg_dtype_size(dt);
  int64_t nh[2] = {N, H}, nr[2] = {N, R}, xs[3] = {N, T, GH}, gs[2] = {N, 3 * H};
  mg_Tensor *gc = NULL, *dxp = NULL, *dhc = NULL, *dcc = NULL, *dw = NULL;
  mg_Tensor *dgh = NULL, *dbacc = NULL, *db = NULL, *dh0 = NULL, *dc0 = NULL;
  mg_Tensor *dwr = NULL, *dm = NULL;
  int st;
  int need_b = cell == MG_RNN_GRU && B && mg_node_needs(node, 3);
  if ((st = mg_nn_prep(ctx, &gc, g, dt)) ||
      (st = mg_alloc_tensor(ctx, &dxp, dt, 3, xs)) ||
      (st = mg_full(ctx, &dhc, dt, 2, nr, 0)) ||
      (cell == MG_RNN_LSTM && (st = mg_full(ctx, &dcc, dt, 2, nh, 0))) ||
      (st = mg_full(ctx, &dw, dt, 2, W->shape, 0)) ||
      (cell == MG_RNN_GRU && (st = mg_alloc_tensor(ctx, &dgh, dt, 2, gs))) ||
      (need_b && (st = mg_full(ctx, &dbacc, MG_F64, 1, &W->shape[0], 0))) ||
      (WR && (st = mg_full(ctx, &dwr, dt, 2, WR->shape, 0))) ||
      (WR && (st = mg_alloc_tensor(ctx, &dm, dt, 2, nh))))
    goto done;
  Step s = {.d = &d, .es = es, .sp = (T + 1) * d.W, .sz = T * d.ZW,
            .nt = cell_threads(ctx, &d),
            .sx = T * GH, .hc = mg_data(dhc), .cc = dcc ? mg_data(dcc) : NULL,
            .dm = dm ? mg_data(dm) : NULL, .dg = dgh ? mg_data(dgh) : NULL};
  void *pd = mg_data(P), *zd = Z ? mg_data(Z) : NULL, *xd = mg_data(dxp);
  void *gd = mg_data(gc), *wd = mg_data(W), *hdst = mg_data(dhc);
  mg_blas_threads_for(ctx, N, GH, R);
  for (int64_t k = T; k >= 1; k--) {
    int64_t tp, rp, rc;
    step_rows(&d, k, &tp, &rp, &rc);
    s.p = at(pd, es, rc * d.W);
    s.pp = at(pd, es, rp * d.W);
    s.gp = at(gd, es, rc * d.W);
    s.z = zd ? at(zd, es, tp * d.ZW) : NULL;
    s.x = at(xd, es, tp * GH);
    /* The hidden side's pre-activation gradient: dA itself, or dgh. */
    const void *da = s.x;
    int64_t lda = s.sx;
    switch (cell) {
    case MG_RNN_TANH: case MG_RNN_RELU: kern->simple_bw(&s); break;
    case MG_RNN_LSTM:
      if (WR) proj_bw(ctx, kern, &s, mg_data(WR), mg_data(dwr), mg_data(dm));
      kern->lstm_bw(&s);
      break;
    default:
      kern->gru_bw(&s);
      da = s.dg;
      lda = 3 * H;
      /* bias gradient summed over the batch, in step order */
      if (dbacc) kern->acc_rows(mg_data(dbacc), s.dg, N, 3 * H);
      break;
    }
    /* dW_hh += daᵀ h_prev; then the carry: dh_prev = da W_hh (+ GRU's
     * direct part, already in the carry). */
    mg_gemm(ctx, dt, CblasTrans, CblasNoTrans, GH, R, N, da, lda, s.pp, s.sp, 1.0,
            mg_data(dw), R);
    mg_gemm(ctx, dt, CblasNoTrans, CblasNoTrans, N, R, GH, da, lda, wd, R,
            cell == MG_RNN_GRU ? 1.0 : 0.0, hdst, R);
  }
  /* The initial row of the trajectory is (h0, c0) itself. */
  const void *g0 = at(gd, es, initial_row(&d) * d.W);
  if (mg_node_needs(node, 1)) {
    if ((st = mg_alloc_tensor(ctx, &dh0, dt, 2, nr))) goto done;
    kern->add_rows(mg_data(dh0), hdst, g0, N, R, s.sp);
  }
  if (cell == MG_RNN_LSTM && mg_node_needs(node, 3)) {
    if ((st = mg_alloc_tensor(ctx, &dc0, dt, 2, nh))) goto done;
    kern->add_rows(mg_data(dc0), s.cc, at((void *)g0, es, R), N, H, s.sp);
  }
  if (dbacc) {
    if ((st = mg_alloc_tensor(ctx, &db, dt, 1, &W->shape[0]))) goto done;
    kern->from_double(mg_data(db), mg_data(dbacc), 3 * H);
  }
  if (mg_node_needs(node, 0)) { grads[0] = dxp; dxp = NULL; }
  grads[1] = dh0;
  dh0 = NULL;
  if (mg_node_needs(node, 2)) { grads[2] = dw; dw = NULL; }
  if (cell == MG_RNN_LSTM) { grads[3] = dc0; dc0 = NULL; }
  if (cell == MG_RNN_GRU) { grads[3] = db; db = NULL; }
  if (WR && mg_node_needs(node, 4)) { grads[4] = dwr; dwr = NULL; }
done:
  mg_tensor_decref(gc);
  mg_tensor_decref(dxp);
  mg_tensor_decref(dhc);
  mg_tensor_decref(dcc);
  mg_tensor_decref(dw);
  mg_tensor_decref(dgh);
  mg_tensor_decref(dbacc);
  mg_tensor_decref(db);
  mg_tensor_decref(dh0);
  mg_tensor_decref(dc0);
  mg_tensor_decref(dwr);
  mg_tensor_decref(dm);
  return st;
}

/* ---- forward -------------------------------------------------------------- */

/* P = the trajectory, Z = the saved gates (NULL for tanh/relu); rd is
 * w_hr's data for a projected LSTM. */
static void run_forward(mg_Context *ctx, const Dims *d, const void *xd,
                        const void *h0, const void *c0, const void *wd,
                        const void *bd, const void *rd, void *pd, void *zd,
                        void *ghd) {
  mg_DType dt = d->dt;
  const Kernels *kern = dt == MG_F32 ? &KERNELS_F32 : &KERNELS_F64;
  size_t es = mg_dtype_size(dt);
  int64_t N = d->N, T = d->T, H = d->H, R = d->R, GH = d->G * H;
  Step s = {.d = d, .es = es, .sp = (T + 1) * d->W, .sz = T * d->ZW,
            .nt = cell_threads(ctx, d),
            .sx = T * GH, .hc = ghd, .bh = bd};
  void *row0 = at(pd, es, initial_row(d) * d->W);
  for (int64_t n = 0; n < N; n++) {
    memcpy(at(row0, es, n * s.sp), at((void *)h0, es, n * R), (size_t)R * es);
    if (c0) memcpy(at(row0, es, n * s.sp + R), at((void *)c0, es, n * H), (size_t)H * es);
  }
  mg_blas_threads_for(ctx, N, GH, R);
  for (int64_t k = 1; k <= T; k++) {
    int64_t tp, rp, rc;
    step_rows(d, k, &tp, &rp, &rc);
    s.p = at(pd, es, rc * d->W);
    s.pp = at(pd, es, rp * d->W);
    s.z = zd ? at(zd, es, tp * d->ZW) : NULL;
    s.x = at((void *)xd, es, tp * GH);
    switch (d->cell) {
    case MG_RNN_TANH: case MG_RNN_RELU: /* A = xp + h W_hhᵀ, in P */
      for (int64_t n = 0; n < N; n++)
        memcpy(at(s.p, es, n * s.sp), at(s.x, es, n * s.sx), (size_t)H * es);
      mg_gemm(ctx, dt, CblasNoTrans, CblasTrans, N, H, H, s.pp, s.sp, wd, H, 1.0, s.p, s.sp);
      kern->simple_fw(&s);
      break;
    case MG_RNN_LSTM: /* h W_hhᵀ in Z; the gate pass adds xp */
      mg_gemm(ctx, dt, CblasNoTrans, CblasTrans, N, GH, R, s.pp, s.sp, wd, R, 0.0, s.z, s.sz);
      kern->lstm_fw(&s);
      if (d->proj) /* h = m W_hrᵀ */
        mg_gemm(ctx, dt, CblasNoTrans, CblasTrans, N, R, H, at(s.z, es, 4 * H), s.sz,
                rd, H, 0.0, s.p, s.sp);
      break;
    default: /* GRU: the hidden side apart, r multiplies its n part */
      mg_gemm(ctx, dt, CblasNoTrans, CblasTrans, N, GH, H, s.pp, s.sp, wd, H, 0.0, ghd, GH);
      kern->gru_fw(&s);
      break;
    }
  }
}

int mg_rnn_layer(mg_Context *ctx, mg_Tensor **out, mg_RnnCell cell,
                 mg_Tensor *xp, mg_Tensor *h0, mg_Tensor *c0, mg_Tensor *w_hh,
                 mg_Tensor *b_hh, mg_Tensor *w_hr, int reverse) {
  Dims d = {0};
  int st = check(ctx, cell, xp, h0, c0, w_hh, b_hh, w_hr, reverse != 0, &d);
  if (st) return st;
  mg_DType dt = mg_nn_dtype(mg_nn_dtype(xp->dtype, h0->dtype), w_hh->dtype);
  if (c0) dt = mg_nn_dtype(dt, c0->dtype);
  if (b_hh) dt = mg_nn_dtype(dt, b_hh->dtype);
  if (w_hr) dt = mg_nn_dtype(dt, w_hr->dtype);
  d.dt = dt;
  mg_Tensor *xc = NULL, *hc = NULL, *cc = NULL, *wc = NULL, *bc = NULL, *rc = NULL;
  mg_Tensor *P = NULL, *Z = NULL, *gh = NULL;
  int64_t ps[3] = {d.N, d.T + 1, d.W}, zs[3] = {d.N, d.T, d.ZW};
  int64_t gs[2] = {d.N, d.G * d.H};
  int mode = mg_set_grad_enabled(ctx, 0);
  if ((st = mg_nn_prep(ctx, &xc, xp, dt)) || (st = mg_nn_prep(ctx, &hc, h0, dt)) ||
      (c0 && (st = mg_nn_prep(ctx, &cc, c0, dt))) ||
      (st = mg_nn_prep(ctx, &wc, w_hh, dt)) ||
      (b_hh && (st = mg_nn_prep(ctx, &bc, b_hh, dt))) ||
      (w_hr && (st = mg_nn_prep(ctx, &rc, w_hr, dt))) ||
      (st = mg_alloc_tensor(ctx, &P, dt, 3, ps)) ||
      (d.ZW && (st = mg_alloc_tensor(ctx, &Z, dt, 3, zs))) ||
      (cell == MG_RNN_GRU && (st = mg_alloc_tensor(ctx, &gh, dt, 2, gs))))
    goto done;
  run_forward(ctx, &d, mg_data(xc), mg_data(hc), cc ? mg_data(cc) : NULL,
              mg_data(wc), bc ? mg_data(bc) : NULL, rc ? mg_data(rc) : NULL,
              mg_data(P), Z ? mg_data(Z) : NULL, gh ? mg_data(gh) : NULL);
  mg_set_grad_enabled(ctx, mode);
  mg_Tensor *ins[5] = {xp, h0, w_hh, cell == MG_RNN_LSTM ? c0 : b_hh, w_hr};
  int nin = w_hr ? 5 : 4;
  if (mg_needs_grad(ctx, nin, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, P, cell_names[cell], rnn_backward, nin, ins, &n)) ||
        (st = mg_save(ctx, n, 0, P)) || (Z && (st = mg_save(ctx, n, 1, Z))) ||
        (st = mg_save(ctx, n, 2, wc)) || (bc && (st = mg_save(ctx, n, 3, bc))) ||
        (rc && (st = mg_save(ctx, n, 3, rc))))
      goto done;
    n->i[0] = cell;
    n->i[1] = d.reverse;
    n->i[2] = d.proj;
  }
  *out = P;
  P = NULL;
done:
  mg_set_grad_enabled(ctx, mode);
  mg_tensor_decref(xc);
  mg_tensor_decref(hc);
  mg_tensor_decref(cc);
  mg_tensor_decref(wc);
  mg_tensor_decref(bc);
  mg_tensor_decref(rc);
  mg_tensor_decref(P);
  mg_tensor_decref(Z);
  mg_tensor_decref(gh);
  return st;
}
