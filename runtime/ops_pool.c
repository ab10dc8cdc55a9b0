/*
 * ops_pool.c — max_pool2d, avg_pool2d and adaptive_avg_pool2d, each forward
 * followed by its backward (contracts in mg_pool.h).
 *
 * The input is viewed as P = N·C independent planes of H·W; planes run in
 * parallel when there is enough work, and each output element is written by
 * exactly one thread (the backward passes scatter within their own plane),
 * so results never depend on the thread count. Window bounds follow
 * PyTorch's CPU kernels exactly.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "mg_pool.h"
#include "mg_nn_internal.h"

/* One pooling call's sizes: planes of H×W in, OH×OW out. A channels-last
 * batch (cl) is N × [H, W, C] in memory, P = N·C. */
typedef struct {
  int64_t P, H, W, OH, OW;
  mg_Pool2d p;
  int adaptive;
  int cl;
  int64_t C; /* channels, when cl */
} Geo;

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* PyTorch's pooling_output_shape. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t pad,
                        int64_t d, int ceil_mode) {
  int64_t o = floor_div(in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
  if (ceil_mode && (o - 1) * s >= in + pad) o--;
  return o;
}

/* Checks x and p and fills g (and the output shape, x's leading dims then
 * OH, OW). oh < 0 means a windowed pool; else adaptive to oh × ow. */
static int geometry(mg_Context *ctx, const char *op, const mg_Tensor *x,
                    const mg_Pool2d *p, int64_t oh, int64_t ow, Geo *g,
                    int64_t *oshape) {
  char b1[MG_SHAPE_BUFSZ], b2[MG_SHAPE_BUFSZ];
  if (x->ndim != 3 && x->ndim != 4)
    return mg_error(ctx, MG_ESHAPE, "%s: expected a 3-D [C, H, W] or 4-D [N, C, H, W] "
                    "input, got shape %s", op, mg_shape_str(b1, sizeof b1, x->ndim, x->shape));
  memset(g, 0, sizeof *g);
  g->H = x->shape[x->ndim - 2];
  g->W = x->shape[x->ndim - 1];
  g->P = 1;
  for (int d = 0; d < x->ndim - 2; d++) g->P *= x->shape[d];
  if (oh < 0) {
    g->p = *p;
    for (int i = 0; i < 2; i++) {
      const char *dim = i ? "W" : "H";
      if (p->kernel[i] < 1 || p->stride[i] < 1 || p->dilation[i] < 1 || p->padding[i] < 0)
        return mg_error(ctx, MG_EARG, "%s: kernel size, stride and dilation must be "
                        "positive and padding non-negative, got kernel %lld, stride %lld, "
                        "padding %lld, dilation %lld along %s", op,
                        (long long)p->kernel[i], (long long)p->stride[i],
                        (long long)p->padding[i], (long long)p->dilation[i], dim);
      int st;
      if ((st = mg_check_window_param(ctx, op, "kernel size", p->kernel[i], 1)) ||
          (st = mg_check_window_param(ctx, op, "stride", p->stride[i], 1)) ||
          (st = mg_check_window_param(ctx, op, "dilation", p->dilation[i], 1)))
        return st;
      if (p->padding[i] * 2 > p->kernel[i])
        return mg_error(ctx, MG_EARG, "%s: padding %lld must be at most half of kernel "
                        "size %lld", op, (long long)p->padding[i], (long long)p->kernel[i]);
    }
    int64_t ph, pw, st;
    if ((st = mg_padded_size(ctx, op, g->H, g->W, p->padding[0], p->padding[1], &ph, &pw)))
      return (int)st;
    g->OH = out_size(g->H, p->kernel[0], p->stride[0], p->padding[0], p->dilation[0], p->ceil_mode);
    g->OW = out_size(g->W, p->kernel[1], p->stride[1], p->padding[1], p->dilation[1], p->ceil_mode);
  } else {
    if (oh < 1 || ow < 1)
      return mg_error(ctx, MG_EARG, "%s: output size must be positive, got [%lld,%lld]",
                      op, (long long)oh, (long long)ow);
    g->adaptive = 1;
    g->OH = oh;
    g->OW = ow;
  }
  memcpy(oshape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  oshape[x->ndim - 2] = g->OH;
  oshape[x->ndim - 1] = g->OW;
  if (g->OH < 1 || g->OW < 1 || (g->adaptive && (g->H < 1 || g->W < 1)))
    return mg_error(ctx, MG_ESHAPE, "%s: input of shape %s is too small: the output "
                    "would have shape %s", op,
                    mg_shape_str(b1, sizeof b1, x->ndim, x->shape),
                    mg_shape_str(b2, sizeof b2, x->ndim, oshape));
  return MG_OK;
}

static int threads(const mg_Context *ctx, const Geo *g) {
  int64_t work = g->P * (g->H * g->W + g->OH * g->OW);
  return mg_threads_for(ctx, work);
}

/* ---- max_pool2d --------------------------------------------------------------
 * x is (P, H, W), y and idx are (P, OH, OW); idx is 1-based within a plane.
 * A window's taps start at ih0 = oh·sH - pH, stepping dH, clipped to the
 * input; the initial index is the first tap inside it, so an all -inf
 * window still points at a real element. */

/* The common 2×2 window with stride 2, no padding or dilation, every window
 * inside the input: four taps compared in the general loop's order (row by
 * row; a later tap wins only when larger or NaN), with no clipping. */
static int is_2x2(const Geo *g, const mg_Context *ctx) {
  const mg_Pool2d *p = &g->p;
  return !ctx->reference_kernels && p->kernel[0] == 2 && p->kernel[1] == 2 &&
         p->stride[0] == 2 && p->stride[1] == 2 && p->padding[0] == 0 &&
         p->padding[1] == 0 && p->dilation[0] == 1 && p->dilation[1] == 1 &&
         2 * g->OH <= g->H && 2 * g->OW <= g->W;
}

/* Bitwise selects: on real data the comparisons are coin flips, and both
 * the vector loop and its scalar remainder (rows of 7 or 14 outputs are
 * mostly remainder) must stay free of branches. */
static inline float sel_f32(uint64_t m, float a, float b) { /* m ? a : b */
  uint32_t ua, ub, k = (uint32_t)m;
  memcpy(&ua, &a, 4);
  memcpy(&ub, &b, 4);
  ua = (ua & k) | (ub & ~k);
  memcpy(&a, &ua, 4);
  return a;
}
/* f64 twin of sel_f32 */
static inline double sel_f64(uint64_t m, double a, double b) {
  uint64_t ua, ub;
  memcpy(&ua, &a, 8);
  memcpy(&ub, &b, 8);
  ua = (ua & m) | (ub & ~m);
  memcpy(&a, &ua, 8);
  return a;
}

/* One output row from input rows r0 and r1: the general loop's taps in its
 * order (a later one wins only when larger, or NaN). */
static void max_2x2_row_f32(const float *restrict r0, const float *restrict r1,
                            float *restrict yo, int64_t *restrict io,
                            int64_t OW, int64_t base, int64_t W) {
  for (int64_t ow = 0; ow < OW; ow++) {
    float tap[3] = {r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
    int64_t pos[3] = {base + 2 * ow + 1, base + W + 2 * ow,
                      base + W + 2 * ow + 1};
    float m = r0[2 * ow];
    int64_t at = base + 2 * ow;
    for (int t = 0; t < 3; t++) {
      uint64_t k = 0 - (uint64_t)((tap[t] > m) | (tap[t] != tap[t]));
      m = sel_f32(k, tap[t], m);
      at = (int64_t)(((uint64_t)pos[t] & k) | ((uint64_t)at & ~k));
    }
    yo[ow] = m;
    io[ow] = at;
  }
}
/* f64 twin of max_2x2_row_f32 */
static void max_2x2_row_f64(const double *restrict r0, const double *restrict r1,
                            double *restrict yo, int64_t *restrict io,
                            int64_t OW, int64_t base, int64_t W) {
  for (int64_t ow = 0; ow < OW; ow++) {
    double tap[3] = {r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};
    int64_t pos[3] = {base + 2 * ow + 1, base + W + 2 * ow,
                      base + W + 2 * ow + 1};
    double m = r0[2 * ow];
    int64_t at = base + 2 * ow;
    for (int t = 0; t < 3; t++) {
      uint64_t k = 0 - (uint64_t)((tap[t] > m) | (tap[t] != tap[t]));
      m = sel_f64(k, tap[t], m);
      at = (int64_t)(((uint64_t)pos[t] & k) | ((uint64_t)at & ~k));
    }
    yo[ow] = m;
    io[ow] = at;
  }
}

/* Rows are 7 to 28 outputs, too short for the compiler's vector loop to
 * start: for float, 4 outputs at a time with 8-wide loads split into even
 * and odd taps; a last partial block is redone overlapping the one before
 * (each output depends on the input alone). */
typedef float mp_f8 __attribute__((vector_size(32)));
typedef float mp_f4 __attribute__((vector_size(16)));
typedef int32_t mp_i4 __attribute__((vector_size(16)));
typedef int64_t mp_l4 __attribute__((vector_size(32)));

static inline void max_2x2_block4(const float *r0, const float *r1, float *yo,
                                  int64_t *io, int64_t ow, int64_t base, int64_t W) {
  mp_f8 p, q;
  memcpy(&p, r0 + 2 * ow, sizeof p);
  memcpy(&q, r1 + 2 * ow, sizeof q);
  mp_f4 tap[4] = {__builtin_shufflevector(p, p, 0, 2, 4, 6),
                  __builtin_shufflevector(p, p, 1, 3, 5, 7),
                  __builtin_shufflevector(q, q, 0, 2, 4, 6),
                  __builtin_shufflevector(q, q, 1, 3, 5, 7)};
  mp_l4 at0 = (mp_l4){0, 2, 4, 6} + (base + 2 * ow);
  mp_l4 off[4] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {W, W, W, W}, {W + 1, W + 1, W + 1, W + 1}};
  mp_f4 m = tap[0];
  mp_l4 at = at0;
  for (int t = 1; t < 4; t++) {
    mp_i4 k = (tap[t] > m) | (tap[t] != tap[t]);
    mp_l4 k64 = __builtin_convertvector(k, mp_l4);
    m = (mp_f4)(((mp_i4)tap[t] & k) | ((mp_i4)m & ~k));
    at = ((at0 + off[t]) & k64) | (at & ~k64);
  }
  memcpy(yo + ow, &m, sizeof m);
  memcpy(io + ow, &at, sizeof at);
}

static void max_2x2_rows_f32(const float *r0, const float *r1, float *yo,
                             int64_t *io, int64_t OW, int64_t base, int64_t W) {
  if (OW < 4) {
    max_2x2_row_f32(r0, r1, yo, io, OW, base, W);
    return;
  }
  int64_t ow = 0;
  for (; ow + 4 <= OW; ow += 4) max_2x2_block4(r0, r1, yo, io, ow, base, W);
  if (ow < OW) max_2x2_block4(r0, r1, yo, io, OW - 4, base, W);
}
/* f64 twin of max_2x2_rows_f32 (no 4-wide block: the row loop alone) */
static void max_2x2_rows_f64(const double *r0, const double *r1, double *yo,
                             int64_t *io, int64_t OW, int64_t base, int64_t W) {
  max_2x2_row_f64(r0, r1, yo, io, OW, base, W);
}

static void max_2x2_f32(const Geo *g, float *y, int64_t *idx, const float *x,
                        int nt) {
  int64_t W = g->W;
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++)
    for (int64_t oh = 0; oh < g->OH; oh++) {
      const float *r0 = x + (pl * g->H + 2 * oh) * W;
      int64_t o = (pl * g->OH + oh) * g->OW;
      max_2x2_rows_f32(r0, r0 + W, y + o, idx + o, g->OW, 2 * oh * W + 1, W);
    });
}
/* f64 twin of max_2x2_f32 */
static void max_2x2_f64(const Geo *g, double *y, int64_t *idx, const double *x,
                        int nt) {
  int64_t W = g->W;
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++)
    for (int64_t oh = 0; oh < g->OH; oh++) {
      const double *r0 = x + (pl * g->H + 2 * oh) * W;
      int64_t o = (pl * g->OH + oh) * g->OW;
      max_2x2_rows_f64(r0, r0 + W, y + o, idx + o, g->OW, 2 * oh * W + 1, W);
    });
}

/* Output (oh, ow)'s clipped taps [h0, h1) × [w0, w1), stepping by the
 * dilation; the first tap inside is the initial index, so an all -inf
 * window still points at a real element. */
static void max_window(const Geo *g, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1,
                       int64_t *w0, int64_t *w1) {
  const mg_Pool2d *p = &g->p;
  *h0 = oh * p->stride[0] - p->padding[0];
  *w0 = ow * p->stride[1] - p->padding[1];
  *h1 = *h0 + (p->kernel[0] - 1) * p->dilation[0] + 1;
  *w1 = *w0 + (p->kernel[1] - 1) * p->dilation[1] + 1;
  if (*h1 > g->H) *h1 = g->H;
  if (*w1 > g->W) *w1 = g->W;
  while (*h0 < 0) *h0 += p->dilation[0];
  while (*w0 < 0) *w0 += p->dilation[1];
}

static void max_fwd_f32(const Geo *g, float *y, int64_t *idx, const float *x, int nt) {
  const mg_Pool2d *p = &g->p;
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++) {
    const float *xp = x + pl * g->H * g->W;
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1;
        max_window(g, oh, ow, &h0, &h1, &w0, &w1);
        int64_t best = h0 * g->W + w0;
        float m = -INFINITY;
        for (int64_t ih = h0; ih < h1; ih += p->dilation[0])
          for (int64_t iw = w0; iw < w1; iw += p->dilation[1]) {
            float v = xp[ih * g->W + iw];
            if (v > m || isnan(v)) { m = v; best = ih * g->W + iw; }
          }
        int64_t o = (pl * g->OH + oh) * g->OW + ow;
        y[o] = m;
        idx[o] = best + 1;
      }
  });
}
/* f64 twin of max_fwd_f32 */
static void max_fwd_f64(const Geo *g, double *y, int64_t *idx, const double *x, int nt) {
  const mg_Pool2d *p = &g->p;
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++) {
    const double *xp = x + pl * g->H * g->W;
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1;
        max_window(g, oh, ow, &h0, &h1, &w0, &w1);
        int64_t best = h0 * g->W + w0;
        double m = -INFINITY;
        for (int64_t ih = h0; ih < h1; ih += p->dilation[0])
          for (int64_t iw = w0; iw < w1; iw += p->dilation[1]) {
            double v = xp[ih * g->W + iw];
            if (v > m || isnan(v)) { m = v; best = ih * g->W + iw; }
          }
        int64_t o = (pl * g->OH + oh) * g->OW + ow;
        y[o] = m;
        idx[o] = best + 1;
      }
  });
}

/* gx (P, H, W) zeroed, += gy (P, OH, OW) at each saved index. */
static void max_bwd_f32(const Geo *g, float *gx, const float *gy,
                        const int64_t *idx, int nt) {
  int64_t hw = g->H * g->W, ohw = g->OH * g->OW;
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++)
    for (int64_t o = pl * ohw; o < (pl + 1) * ohw; o++) {
      int64_t i = pl * hw + idx[o] - 1;
      gx[i] += gy[o];
    });
}
/* f64 twin of max_bwd_f32 */
static void max_bwd_f64(const Geo *g, double *gx, const double *gy,
                        const int64_t *idx, int nt) {
  int64_t hw = g->H * g->W, ohw = g->OH * g->OW;
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++)
    for (int64_t o = pl * ohw; o < (pl + 1) * ohw; o++) {
      int64_t i = pl * hw + idx[o] - 1;
      gx[i] += gy[o];
    });
}

/* The 2x2 case's backward in one pass: its windows tile the input (but for
 * a last odd row or column, which gets zeros), so every element of gx is
 * written once, the window's maximum getting gy and the rest 0, instead of
 * zeroing gx and then scattering into it. */
static void max_bwd_2x2_f32(const Geo *g, float *gx, const float *gy,
                            const int64_t *idx, int nt) {
  int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++) {
    float *gp = gx + pl * H * W;
    for (int64_t oh = 0; oh < OH; oh++) {
      float *r0 = gp + 2 * oh * W, *r1 = r0 + W;
      const float *go = gy + (pl * OH + oh) * OW;
      const int64_t *io = idx + (pl * OH + oh) * OW;
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t at = io[ow] - 1 - 2 * oh * W - 2 * ow; /* 0, 1, W or W+1 */
        float v = go[ow];
        /* masks, not branches: which tap won is a coin flip */
        r0[2 * ow] = sel_f32(0 - (uint64_t)(at == 0), v, 0);
        r0[2 * ow + 1] = sel_f32(0 - (uint64_t)(at == 1), v, 0);
        r1[2 * ow] = sel_f32(0 - (uint64_t)(at == W), v, 0);
        r1[2 * ow + 1] = sel_f32(0 - (uint64_t)(at == W + 1), v, 0);
      }
      for (int64_t w = 2 * OW; w < W; w++) r0[w] = r1[w] = 0;
    }
    for (int64_t i = 2 * OH * W; i < H * W; i++) gp[i] = 0;
  });
}
/* f64 twin of max_bwd_2x2_f32 */
static void max_bwd_2x2_f64(const Geo *g, double *gx, const double *gy,
                            const int64_t *idx, int nt) {
  int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW;
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++) {
    double *gp = gx + pl * H * W;
    for (int64_t oh = 0; oh < OH; oh++) {
      double *r0 = gp + 2 * oh * W, *r1 = r0 + W;
      const double *go = gy + (pl * OH + oh) * OW;
      const int64_t *io = idx + (pl * OH + oh) * OW;
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t at = io[ow] - 1 - 2 * oh * W - 2 * ow; /* 0, 1, W or W+1 */
        double v = go[ow];
        /* masks, not branches: which tap won is a coin flip */
        r0[2 * ow] = sel_f64(0 - (uint64_t)(at == 0), v, 0);
        r0[2 * ow + 1] = sel_f64(0 - (uint64_t)(at == 1), v, 0);
        r1[2 * ow] = sel_f64(0 - (uint64_t)(at == W), v, 0);
        r1[2 * ow + 1] = sel_f64(0 - (uint64_t)(at == W + 1), v, 0);
      }
      for (int64_t w = 2 * OW; w < W; w++) r0[w] = r1[w] = 0;
    }
    for (int64_t i = 2 * OH * W; i < H * W; i++) gp[i] = 0;
  });
}

/* ---- channels last -------------------------------------------------------------
 * The same windows, taps and order of comparisons (max) and sums (avg) as
 * the kernels above, a row of C channels at a time: the loops over c run
 * along contiguous memory and vectorise. Batch entries go to threads, so
 * the backward's scatters never meet. */

/* g->cl and g->C for x in dtype dt. */
static void set_layout(Geo *g, const mg_Tensor *x, mg_DType dt) {
  g->cl = mg_nn_channels_last(x, dt);
  g->C = x->ndim == 4 ? x->shape[1] : 1;
}

static void max_fwd_cl_f32(const Geo *g, float *y, int64_t *idx, const float *x, int nt) {
  const mg_Pool2d *p = &g->p;
  int64_t C = g->C, N = g->P / (C ? C : 1);
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < N; n++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = ((n * g->OH + oh) * g->OW + ow) * C;
        max_window(g, oh, ow, &h0, &h1, &w0, &w1);
        float *restrict m = y + o;
        int64_t *restrict bi = idx + o;
        for (int64_t c = 0; c < C; c++) m[c] = -INFINITY, bi[c] = h0 * g->W + w0 + 1;
        for (int64_t ih = h0; ih < h1; ih += p->dilation[0])
          for (int64_t iw = w0; iw < w1; iw += p->dilation[1]) {
            const float *restrict xr = x + ((n * g->H + ih) * g->W + iw) * C;
            int64_t at = ih * g->W + iw + 1;
            for (int64_t c = 0; c < C; c++) {
              int take = xr[c] > m[c] || isnan(xr[c]);
              m[c] = take ? xr[c] : m[c];
              bi[c] = take ? at : bi[c];
            }
          }
      });
}
/* f64 twin of max_fwd_cl_f32 */
static void max_fwd_cl_f64(const Geo *g, double *y, int64_t *idx, const double *x, int nt) {
  const mg_Pool2d *p = &g->p;
  int64_t C = g->C, N = g->P / (C ? C : 1);
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < N; n++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = ((n * g->OH + oh) * g->OW + ow) * C;
        max_window(g, oh, ow, &h0, &h1, &w0, &w1);
        double *restrict m = y + o;
        int64_t *restrict bi = idx + o;
        for (int64_t c = 0; c < C; c++) m[c] = -INFINITY, bi[c] = h0 * g->W + w0 + 1;
        for (int64_t ih = h0; ih < h1; ih += p->dilation[0])
          for (int64_t iw = w0; iw < w1; iw += p->dilation[1]) {
            const double *restrict xr = x + ((n * g->H + ih) * g->W + iw) * C;
            int64_t at = ih * g->W + iw + 1;
            for (int64_t c = 0; c < C; c++) {
              int take = xr[c] > m[c] || isnan(xr[c]);
              m[c] = take ? xr[c] : m[c];
              bi[c] = take ? at : bi[c];
            }
          }
      });
}

/* gx (zeroed, channels last) += gy at each saved index, per channel. */
static void max_bwd_cl_f32(const Geo *g, float *gx, const float *gy, const int64_t *idx,
                           int nt) {
  int64_t C = g->C, N = g->P / (C ? C : 1), ohw = g->OH * g->OW, hw = g->H * g->W;
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < N; n++)
    for (int64_t o = n * ohw; o < (n + 1) * ohw; o++)
      for (int64_t c = 0; c < C; c++) gx[(n * hw + idx[o * C + c] - 1) * C + c] += gy[o * C + c];);
}
/* f64 twin of max_bwd_cl_f32 */
static void max_bwd_cl_f64(const Geo *g, double *gx, const double *gy, const int64_t *idx,
                           int nt) {
  int64_t C = g->C, N = g->P / (C ? C : 1), ohw = g->OH * g->OW, hw = g->H * g->W;
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < N; n++)
    for (int64_t o = n * ohw; o < (n + 1) * ohw; o++)
      for (int64_t c = 0; c < C; c++) gx[(n * hw + idx[o * C + c] - 1) * C + c] += gy[o * C + c];);
}

static void avg_window(const Geo *g, int64_t oh, int64_t ow, int64_t *h0,
                       int64_t *h1, int64_t *w0, int64_t *w1, double *div);

/* Channels a block of the window sums holds (on the stack, in double). */
#define CL_BLOCK 256

static void avg_fwd_cl_f32(const Geo *g, float *y, const float *x, int nt) {
  int64_t C = g->C, N = g->P / (C ? C : 1);
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < N; n++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = ((n * g->OH + oh) * g->OW + ow) * C;
        double div, acc[CL_BLOCK];
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        for (int64_t c0 = 0; c0 < C; c0 += CL_BLOCK) {
          int64_t nc = C - c0 < CL_BLOCK ? C - c0 : CL_BLOCK;
          for (int64_t c = 0; c < nc; c++) acc[c] = 0;
          for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) {
              const float *restrict xr = x + ((n * g->H + ih) * g->W + iw) * C + c0;
              for (int64_t c = 0; c < nc; c++) acc[c] += xr[c];
            }
          for (int64_t c = 0; c < nc; c++) y[o + c0 + c] = (float)(acc[c] / div);
        }
      });
}
/* f64 twin of avg_fwd_cl_f32 */
static void avg_fwd_cl_f64(const Geo *g, double *y, const double *x, int nt) {
  int64_t C = g->C, N = g->P / (C ? C : 1);
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < N; n++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = ((n * g->OH + oh) * g->OW + ow) * C;
        double div, acc[CL_BLOCK];
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        for (int64_t c0 = 0; c0 < C; c0 += CL_BLOCK) {
          int64_t nc = C - c0 < CL_BLOCK ? C - c0 : CL_BLOCK;
          for (int64_t c = 0; c < nc; c++) acc[c] = 0;
          for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) {
              const double *restrict xr = x + ((n * g->H + ih) * g->W + iw) * C + c0;
              for (int64_t c = 0; c < nc; c++) acc[c] += xr[c];
            }
          for (int64_t c = 0; c < nc; c++) y[o + c0 + c] = acc[c] / div;
        }
      });
}

/* gx (zeroed, channels last) += gy / divisor over each window. */
static void avg_bwd_cl_f32(const Geo *g, float *gx, const float *gy, int nt) {
  int64_t C = g->C, N = g->P / (C ? C : 1);
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < N; n++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = ((n * g->OH + oh) * g->OW + ow) * C;
        double div;
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) {
            float *restrict gr = gx + ((n * g->H + ih) * g->W + iw) * C;
            for (int64_t c = 0; c < C; c++) gr[c] += (float)(gy[o + c] / div);
          }
      });
}
/* f64 twin of avg_bwd_cl_f32 */
static void avg_bwd_cl_f64(const Geo *g, double *gx, const double *gy, int nt) {
  int64_t C = g->C, N = g->P / (C ? C : 1);
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < N; n++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = ((n * g->OH + oh) * g->OW + ow) * C;
        double div;
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) {
            double *restrict gr = gx + ((n * g->H + ih) * g->W + iw) * C;
            for (int64_t c = 0; c < C; c++) gr[c] += gy[o + c] / div;
          }
      });
}

/* The geometry a pooling node keeps: planes from its input's shape, output
 * sizes from the gradient's; window options in i[] and f[] (see record). */
static void node_geo(const mg_Node *n, const mg_Tensor *gy, Geo *g) {
  int nd = n->in_ndim[0];
  memset(g, 0, sizeof *g);
  g->H = n->in_shape[0][nd - 2];
  g->W = n->in_shape[0][nd - 1];
  g->P = 1;
  for (int d = 0; d < nd - 2; d++) g->P *= n->in_shape[0][d];
  g->OH = gy->shape[nd - 2];
  g->OW = gy->shape[nd - 1];
  g->p.kernel[0] = n->i[0], g->p.kernel[1] = n->i[1];
  g->p.stride[0] = n->i[2], g->p.stride[1] = n->i[3];
  g->p.padding[0] = (int64_t)n->f[0], g->p.padding[1] = (int64_t)n->f[1];
  g->p.dilation[0] = n->i[4], g->p.dilation[1] = n->i[5];
  g->p.count_include_pad = n->f[2] != 0;
  g->adaptive = ((int)n->f[3] & 1) != 0;
  g->cl = ((int)n->f[3] & 2) != 0;
  g->C = nd == 4 ? n->in_shape[0][1] : 1;
}

static void record_geo(mg_Node *n, const Geo *g) {
  n->i[0] = g->p.kernel[0], n->i[1] = g->p.kernel[1];
  n->i[2] = g->p.stride[0], n->i[3] = g->p.stride[1];
  n->i[4] = g->p.dilation[0], n->i[5] = g->p.dilation[1];
  n->f[0] = (double)g->p.padding[0], n->f[1] = (double)g->p.padding[1];
  n->f[2] = g->p.count_include_pad;
  n->f[3] = g->adaptive + 2 * g->cl;
}

/* A gradient for input 0 (zeroed unless the kernel writes all of it) and
 * gy as a tensor of its dtype, both contiguous or, for a channels-last
 * pool (cl), both channels last. */
static int bwd_prep(mg_Context *ctx, mg_Node *n, mg_Tensor *gy, mg_Tensor **gx,
                    mg_Tensor **gc, int zeroed, int cl) {
  mg_DType dt = mg_nn_dtype(n->in_dtype[0], n->in_dtype[0]);
  int st = mg_nn_prep_layout(ctx, gc, gy, dt, cl);
  if (!st && cl) {
    st = mg_alloc_channels_last(ctx, gx, dt, n->in_shape[0]);
    if (!st && zeroed && (st = mg_zero_(ctx, *gx))) {
      mg_tensor_decref(*gx);
      *gx = NULL;
    }
  } else if (!st) {
    st = zeroed ? mg_full(ctx, gx, dt, n->in_ndim[0], n->in_shape[0], 0)
                : mg_alloc_tensor(ctx, gx, dt, n->in_ndim[0], n->in_shape[0]);
  }
  if (st) {
    mg_tensor_decref(*gc);
    *gc = NULL;
  }
  return st;
}

static int max_pool2d_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *gy,
                               mg_Tensor **grads) {
  mg_Tensor *gx = NULL, *gc = NULL;
  Geo g;
  node_geo(n, gy, &g);
  int fast = !g.cl && is_2x2(&g, ctx);
  int st = bwd_prep(ctx, n, gy, &gx, &gc, !fast, g.cl);
  if (st) return st;
  const int64_t *idx = mg_data(n->saved[0]);
  int nt = threads(ctx, &g);
  if (g.cl) {
    if (gx->dtype == MG_F32) max_bwd_cl_f32(&g, mg_data(gx), mg_data(gc), idx, nt);
    else max_bwd_cl_f64(&g, mg_data(gx), mg_data(gc), idx, nt);
  } else if (gx->dtype == MG_F32) {
    if (fast) max_bwd_2x2_f32(&g, mg_data(gx), mg_data(gc), idx, nt);
    else max_bwd_f32(&g, mg_data(gx), mg_data(gc), idx, nt);
  } else {
    if (fast) max_bwd_2x2_f64(&g, mg_data(gx), mg_data(gc), idx, nt);
    else max_bwd_f64(&g, mg_data(gx), mg_data(gc), idx, nt);
  }
  mg_tensor_decref(gc);
  grads[0] = gx;
  return MG_OK;
}

int mg_max_pool2d(mg_Context *ctx, mg_Tensor **out, mg_Tensor **indices,
                  const mg_Tensor *x, const mg_Pool2d *p) {
  int64_t oshape[MG_MAXDIM];
  Geo g;
  int st = geometry(ctx, "max_pool2d", x, p, -1, -1, &g, oshape);
  if (st) return st;
  mg_DType dt = mg_nn_dtype(x->dtype, x->dtype);
  mg_Tensor *xc = NULL, *y = NULL, *idx = NULL, *ins[1] = {(mg_Tensor *)x};
  /* A channels-last batch is pooled as it lies, into channels-last
   * results (the indices too, as in PyTorch). */
  set_layout(&g, x, dt);
  int mode = mg_set_grad_enabled(ctx, 0);
  st = mg_nn_prep_layout(ctx, &xc, (mg_Tensor *)x, dt, g.cl);
  if (!st) st = mg_alloc_layout(ctx, &y, dt, x->ndim, oshape, g.cl);
  if (!st) st = mg_alloc_layout(ctx, &idx, MG_I64, x->ndim, oshape, g.cl);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto fail;
  int fast = !g.cl && is_2x2(&g, ctx), nt = threads(ctx, &g);
  if (g.cl) {
    if (dt == MG_F32) max_fwd_cl_f32(&g, mg_data(y), mg_data(idx), mg_data(xc), nt);
    else max_fwd_cl_f64(&g, mg_data(y), mg_data(idx), mg_data(xc), nt);
  } else if (dt == MG_F32) {
    if (fast) max_2x2_f32(&g, mg_data(y), mg_data(idx), mg_data(xc), nt);
    else max_fwd_f32(&g, mg_data(y), mg_data(idx), mg_data(xc), nt);
  } else {
    if (fast) max_2x2_f64(&g, mg_data(y), mg_data(idx), mg_data(xc), nt);
    else max_fwd_f64(&g, mg_data(y), mg_data(idx), mg_data(xc), nt);
  }
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, y, "max_pool2d", max_pool2d_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, idx)))
      goto fail;
    record_geo(n, &g);
  }
  mg_tensor_decref(xc);
  if (indices) *indices = idx;
  else mg_tensor_decref(idx);
  *out = y;
  return MG_OK;
fail:
  mg_tensor_decref(xc);
  mg_tensor_decref(y);
  mg_tensor_decref(idx);
  return st;
}

/* ---- avg_pool2d and adaptive_avg_pool2d ---------------------------------------
 * x is (P, H, W), y is (P, OH, OW). Both are means over a window [h0, h1) ×
 * [w0, w1) with a divisor; avg_window gives PyTorch's bounds for either. */

static void avg_window(const Geo *g, int64_t oh, int64_t ow, int64_t *h0,
                       int64_t *h1, int64_t *w0, int64_t *w1, double *div) {
  if (g->adaptive) {
    *h0 = oh * g->H / g->OH, *h1 = ((oh + 1) * g->H + g->OH - 1) / g->OH;
    *w0 = ow * g->W / g->OW, *w1 = ((ow + 1) * g->W + g->OW - 1) / g->OW;
    *div = (double)((*h1 - *h0) * (*w1 - *w0));
    return;
  }
  const mg_Pool2d *p = &g->p;
  int64_t hs = oh * p->stride[0] - p->padding[0], ws = ow * p->stride[1] - p->padding[1];
  int64_t he = hs + p->kernel[0], we = ws + p->kernel[1];
  if (he > g->H + p->padding[0]) he = g->H + p->padding[0];
  if (we > g->W + p->padding[1]) we = g->W + p->padding[1];
  int64_t pool = (he - hs) * (we - ws);
  if (hs < 0) hs = 0;
  if (ws < 0) ws = 0;
  if (he > g->H) he = g->H;
  if (we > g->W) we = g->W;
  *h0 = hs, *h1 = he, *w0 = ws, *w1 = we;
  *div = (double)(p->count_include_pad ? pool : (he - hs) * (we - ws));
}

static void avg_fwd_f32(const Geo *g, float *y, const float *x, int nt) {
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = (pl * g->OH + oh) * g->OW + ow;
        double div, s = 0;
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        const float *xp = x + pl * g->H * g->W;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * g->W + iw];
        y[o] = (float)(s / div);
      });
}
/* f64 twin of avg_fwd_f32 */
static void avg_fwd_f64(const Geo *g, double *y, const double *x, int nt) {
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = (pl * g->OH + oh) * g->OW + ow;
        double div, s = 0;
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        const double *xp = x + pl * g->H * g->W;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * g->W + iw];
        y[o] = (double)(s / div);
      });
}

/* gx (P, H, W) zeroed, += gy / divisor over each window. */
static void avg_bwd_f32(const Geo *g, float *gx, const float *gy, int nt) {
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = (pl * g->OH + oh) * g->OW + ow;
        double div;
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        float v = (float)(gy[o] / div);
        float *gp = gx + pl * g->H * g->W;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) gp[ih * g->W + iw] += v;
      });
}
/* f64 twin of avg_bwd_f32 */
static void avg_bwd_f64(const Geo *g, double *gx, const double *gy, int nt) {
  MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < g->P; pl++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0, h1, w0, w1, o = (pl * g->OH + oh) * g->OW + ow;
        double div;
        avg_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        double v = (double)(gy[o] / div);
        double *gp = gx + pl * g->H * g->W;
        for (int64_t ih = h0; ih < h1; ih++)
          for (int64_t iw = w0; iw < w1; iw++) gp[ih * g->W + iw] += v;
      });
}

static int avg_pool_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *gy,
                             mg_Tensor **grads) {
  mg_Tensor *gx = NULL, *gc = NULL;
  Geo g;
  node_geo(n, gy, &g);
  int st = bwd_prep(ctx, n, gy, &gx, &gc, 1, g.cl);
  if (st) return st;
  int nt = threads(ctx, &g);
  if (g.cl) {
    if (gx->dtype == MG_F32) avg_bwd_cl_f32(&g, mg_data(gx), mg_data(gc), nt);
    else avg_bwd_cl_f64(&g, mg_data(gx), mg_data(gc), nt);
  } else if (gx->dtype == MG_F32) {
    avg_bwd_f32(&g, mg_data(gx), mg_data(gc), nt);
  } else {
    avg_bwd_f64(&g, mg_data(gx), mg_data(gc), nt);
  }
  mg_tensor_decref(gc);
  grads[0] = gx;
  return MG_OK;
}

static int avg_pool(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *x,
                    const char *op, const mg_Pool2d *p, int64_t oh, int64_t ow) {
  int64_t oshape[MG_MAXDIM];
  Geo g;
  int st = geometry(ctx, op, x, p, oh, ow, &g, oshape);
  if (st) return st;
  mg_DType dt = mg_nn_dtype(x->dtype, x->dtype);
  mg_Tensor *xc = NULL, *y = NULL, *ins[1] = {(mg_Tensor *)x};
  set_layout(&g, x, dt);
  int mode = mg_set_grad_enabled(ctx, 0);
  st = mg_nn_prep_layout(ctx, &xc, (mg_Tensor *)x, dt, g.cl);
  if (!st) st = mg_alloc_layout(ctx, &y, dt, x->ndim, oshape, g.cl);
  mg_set_grad_enabled(ctx, mode);
  if (st) goto fail;
  int nt = threads(ctx, &g);
  if (g.cl) {
    if (dt == MG_F32) avg_fwd_cl_f32(&g, mg_data(y), mg_data(xc), nt);
    else avg_fwd_cl_f64(&g, mg_data(y), mg_data(xc), nt);
  } else if (dt == MG_F32) {
    avg_fwd_f32(&g, mg_data(y), mg_data(xc), nt);
  } else {
    avg_fwd_f64(&g, mg_data(y), mg_data(xc), nt);
  }
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, y, op, avg_pool_backward, 1, ins, &n))) goto fail;
    record_geo(n, &g);
  }
  mg_tensor_decref(xc);
  *out = y;
  return MG_OK;
fail:
  mg_tensor_decref(xc);
  mg_tensor_decref(y);
  return st;
}

int mg_avg_pool2d(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *x,
                  const mg_Pool2d *p) {
  return avg_pool(ctx, out, x, "avg_pool2d", p, -1, -1);
}

int mg_adaptive_avg_pool2d(mg_Context *ctx, mg_Tensor **out,
                           const mg_Tensor *x, int64_t oh, int64_t ow) {
  if (oh < 1 || ow < 1)
    return mg_error(ctx, MG_EARG, "adaptive_avg_pool2d: output size must be positive, "
                    "got [%lld,%lld]", (long long)oh, (long long)ow);
  return avg_pool(ctx, out, x, "adaptive_avg_pool2d", NULL, oh, ow);
}
