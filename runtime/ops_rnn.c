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
 * The fused passes compute in double for both dtypes and round once on
 * store: one kernel per cell instead of one per (cell, dtype), and the
 * gemms dominate the time. float32 activations use vmath.h's tanh and
 * sigmoid, float64 libm's, as elsewhere.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "mg_rnn.h"
#include "nn_internal.h"
#include "vmath.h"

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

/* ---- scalar helpers ------------------------------------------------------- */

static inline double get(const void *p, mg_DType dt, int64_t i) {
  return dt == MG_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static inline void put(void *p, mg_DType dt, int64_t i, double v) {
  if (dt == MG_F32) ((float *)p)[i] = (float)v;
  else ((double *)p)[i] = v;
}
static inline double act_sigmoid(mg_DType dt, double x) {
  return dt == MG_F32 ? (double)mg_vsigmoidf((float)x) : 1.0 / (1.0 + exp(-x));
}
static inline double act_tanh(mg_DType dt, double x) {
  return dt == MG_F32 ? (double)mg_vtanhf((float)x) : tanh(x);
}
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
} Step;

/* tanh / relu forward: P_t holds A_t; apply the activation in place. */
static void simple_fw(const Step *s) {
  const Dims *d = s->d;
  for (int64_t n = 0; n < d->N; n++)
    for (int64_t j = 0; j < d->H; j++) {
      int64_t k = n * s->sp + j;
      double a = get(s->p, d->dt, k);
      put(s->p, d->dt, k, d->cell == MG_RNN_TANH ? act_tanh(d->dt, a) : (a > 0 ? a : 0));
    }
}

/* tanh / relu backward: dA = dh · act'(A), from h_t = act(A). */
static void simple_bw(const Step *s) {
  const Dims *d = s->d;
  mg_DType dt = d->dt;
  for (int64_t n = 0; n < d->N; n++)
    for (int64_t j = 0; j < d->H; j++) {
      int64_t kp = n * s->sp + j, kc = n * d->H + j;
      double dh = get(s->gp, dt, kp) + get(s->hc, dt, kc), h = get(s->p, dt, kp);
      double da = d->cell == MG_RNN_TANH ? dh * (1 - h * h) : (h > 0 ? dh : 0);
      put(s->x, dt, n * s->sx + j, da);
    }
}

/* LSTM forward: Z holds A = [a_i, a_f, a_g, a_o];
 * c_t = f c_{t-1} + i g, h_t = o tanh(c_t) (projected: m = o tanh(c_t) into
 * Z, for the caller's h = m W_hrᵀ). */
static void lstm_fw(const Step *s) {
  const Dims *d = s->d;
  mg_DType dt = d->dt;
  int64_t H = d->H, R = d->R;
  for (int64_t n = 0; n < d->N; n++) {
    void *z = at(s->z, s->es, n * s->sz);
    for (int64_t j = 0; j < H; j++) {
      double i = act_sigmoid(dt, get(z, dt, j)), f = act_sigmoid(dt, get(z, dt, H + j));
      double g = act_tanh(dt, get(z, dt, 2 * H + j)), o = act_sigmoid(dt, get(z, dt, 3 * H + j));
      double c = f * get(s->pp, dt, n * s->sp + R + j) + i * g;
      if (dt == MG_F32) c = (float)c; /* h uses the c that is stored */
      put(z, dt, j, i);
      put(z, dt, H + j, f);
      put(z, dt, 2 * H + j, g);
      put(z, dt, 3 * H + j, o);
      put(s->p, dt, n * s->sp + R + j, c);
      if (d->proj) put(z, dt, 4 * H + j, o * act_tanh(dt, c));
      else put(s->p, dt, n * s->sp + j, o * act_tanh(dt, c));
    }
  }
}

/* LSTM backward: dh = dP_h + carry (projected: dm, given), dc = dP_c +
 * carry + dh o tanh'(c); dA = [dc g i(1-i), dc c_{t-1} f(1-f), dc i (1-g²),
 * dh tanh(c) o(1-o)], and the new c carry dc f. */
static void lstm_bw(const Step *s) {
  const Dims *d = s->d;
  mg_DType dt = d->dt;
  int64_t H = d->H, R = d->R;
  for (int64_t n = 0; n < d->N; n++) {
    const void *z = at(s->z, s->es, n * s->sz);
    void *dx = at(s->x, s->es, n * s->sx);
    for (int64_t j = 0; j < H; j++) {
      int64_t kp = n * s->sp + R + j, kc = n * H + j;
      double i = get(z, dt, j), f = get(z, dt, H + j);
      double g = get(z, dt, 2 * H + j), o = get(z, dt, 3 * H + j);
      double tc = act_tanh(dt, get(s->p, dt, kp)), cp = get(s->pp, dt, kp);
      double dh = s->dm ? get(s->dm, dt, kc)
                        : get(s->gp, dt, n * s->sp + j) + get(s->hc, dt, kc);
      double dc = get(s->gp, dt, kp) + get(s->cc, dt, kc) + dh * o * (1 - tc * tc);
      put(dx, dt, j, dc * g * i * (1 - i));
      put(dx, dt, H + j, dc * cp * f * (1 - f));
      put(dx, dt, 2 * H + j, dc * i * (1 - g * g));
      put(dx, dt, 3 * H + j, dh * tc * o * (1 - o));
      put(s->cc, dt, kc, dc * f);
    }
  }
}

/* GRU forward: gh = h_{t-1} W_hhᵀ (in s->hc) + b_hh; r = σ(x_r + gh_r),
 * z = σ(x_z + gh_z), n = tanh(x_n + r gh_n), h = (1 - z) n + z h_{t-1}. */
static void gru_fw(const Step *s) {
  const Dims *d = s->d;
  mg_DType dt = d->dt;
  int64_t H = d->H;
  for (int64_t n = 0; n < d->N; n++) {
    const void *x = at(s->x, s->es, n * s->sx), *gh = at(s->hc, s->es, n * 3 * H);
    void *z = at(s->z, s->es, n * s->sz);
    for (int64_t j = 0; j < H; j++) {
      double br = 0, bz = 0, bn = 0;
      if (s->bh) {
        br = get(s->bh, dt, j);
        bz = get(s->bh, dt, H + j);
        bn = get(s->bh, dt, 2 * H + j);
      }
      double r = act_sigmoid(dt, get(x, dt, j) + get(gh, dt, j) + br);
      double u = act_sigmoid(dt, get(x, dt, H + j) + get(gh, dt, H + j) + bz);
      double ghn = get(gh, dt, 2 * H + j) + bn;
      double nn = act_tanh(dt, get(x, dt, 2 * H + j) + r * ghn);
      double hp = get(s->pp, dt, n * s->sp + j);
      put(z, dt, j, r);
      put(z, dt, H + j, u);
      put(z, dt, 2 * H + j, nn);
      put(z, dt, 3 * H + j, ghn);
      put(s->p, dt, n * s->sp + j, (1 - u) * nn + u * hp);
    }
  }
}

/* GRU backward: dn = dh (1-z), dz = dh (h_{t-1} - n); with da_n = dn (1-n²)
 * the input side gets [dr r(1-r), dz z(1-z), da_n] (dr = da_n gh_n), the
 * hidden side (dgh) the same but da_n r, and h_{t-1} directly dh z (left
 * in the carry; the gemm adds dgh W_hh). */
static void gru_bw(const Step *s) {
  const Dims *d = s->d;
  mg_DType dt = d->dt;
  int64_t H = d->H;
  for (int64_t n = 0; n < d->N; n++) {
    const void *z = at(s->z, s->es, n * s->sz);
    void *dx = at(s->x, s->es, n * s->sx), *dg = at(s->dg, s->es, n * 3 * H);
    for (int64_t j = 0; j < H; j++) {
      int64_t kp = n * s->sp + j, kc = n * H + j;
      double r = get(z, dt, j), u = get(z, dt, H + j);
      double nn = get(z, dt, 2 * H + j), ghn = get(z, dt, 3 * H + j);
      double hp = get(s->pp, dt, kp);
      double dh = get(s->gp, dt, kp) + get(s->hc, dt, kc);
      double dan = dh * (1 - u) * (1 - nn * nn);
      double dar = dan * ghn * r * (1 - r), dau = dh * (hp - nn) * u * (1 - u);
      put(dx, dt, j, dar);
      put(dx, dt, H + j, dau);
      put(dx, dt, 2 * H + j, dan);
      put(dg, dt, j, dar);
      put(dg, dt, H + j, dau);
      put(dg, dt, 2 * H + j, dan * r);
      put(s->hc, dt, kc, dh * u);
    }
  }
}

/* ---- backward ------------------------------------------------------------- */

/* A projected LSTM's step, before lstm_bw: dh = dP_h + carry (into the
 * carry), dW_hr += dhᵀ m, and dm = dh W_hr for lstm_bw. */
static void proj_bw(mg_Context *ctx, const Step *s, const void *w_hr, void *dwr,
                    void *dm) {
  const Dims *d = s->d;
  mg_DType dt = d->dt;
  int64_t N = d->N, H = d->H, R = d->R;
  for (int64_t n = 0; n < N; n++)
    for (int64_t j = 0; j < R; j++)
      put(s->hc, dt, n * R + j, get(s->hc, dt, n * R + j) + get(s->gp, dt, n * s->sp + j));
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
    case MG_RNN_TANH: case MG_RNN_RELU: simple_bw(&s); break;
    case MG_RNN_LSTM:
      if (WR) proj_bw(ctx, &s, mg_data(WR), mg_data(dwr), mg_data(dm));
      lstm_bw(&s);
      break;
    default:
      gru_bw(&s);
      da = s.dg;
      lda = 3 * H;
      if (dbacc) { /* bias gradient summed over the batch, in step order */
        double *acc = mg_data(dbacc);
        for (int64_t n = 0; n < N; n++)
          for (int64_t j = 0; j < 3 * H; j++) acc[j] += get(s.dg, dt, n * 3 * H + j);
      }
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
    for (int64_t n = 0; n < N; n++)
      for (int64_t j = 0; j < R; j++)
        put(mg_data(dh0), dt, n * R + j, get(hdst, dt, n * R + j) + get(g0, dt, n * s.sp + j));
  }
  if (cell == MG_RNN_LSTM && mg_node_needs(node, 3)) {
    if ((st = mg_alloc_tensor(ctx, &dc0, dt, 2, nh))) goto done;
    for (int64_t n = 0; n < N; n++)
      for (int64_t j = 0; j < H; j++)
        put(mg_data(dc0), dt, n * H + j,
            get(s.cc, dt, n * H + j) + get(g0, dt, n * s.sp + R + j));
  }
  if (dbacc) {
    if ((st = mg_alloc_tensor(ctx, &db, dt, 1, &W->shape[0]))) goto done;
    const double *acc = mg_data(dbacc);
    for (int64_t j = 0; j < 3 * H; j++) put(mg_data(db), dt, j, acc[j]);
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
  size_t es = mg_dtype_size(dt);
  int64_t N = d->N, T = d->T, H = d->H, R = d->R, GH = d->G * H;
  Step s = {.d = d, .es = es, .sp = (T + 1) * d->W, .sz = T * d->ZW,
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
      simple_fw(&s);
      break;
    case MG_RNN_LSTM: /* A in Z */
      for (int64_t n = 0; n < N; n++)
        memcpy(at(s.z, es, n * s.sz), at(s.x, es, n * s.sx), (size_t)GH * es);
      mg_gemm(ctx, dt, CblasNoTrans, CblasTrans, N, GH, R, s.pp, s.sp, wd, R, 1.0, s.z, s.sz);
      lstm_fw(&s);
      if (d->proj) /* h = m W_hrᵀ */
        mg_gemm(ctx, dt, CblasNoTrans, CblasTrans, N, R, H, at(s.z, es, 4 * H), s.sz,
                rd, H, 0.0, s.p, s.sp);
      break;
    default: /* GRU: the hidden side apart, r multiplies its n part */
      mg_gemm(ctx, dt, CblasNoTrans, CblasTrans, N, GH, H, s.pp, s.sp, wd, H, 0.0, ghd, GH);
      gru_fw(&s);
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
