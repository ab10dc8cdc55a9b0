/*
 * ops_conv.c — conv2d, forward followed by its backward.
 *
 * x [N, C, H, W], w [O, Cg, kH, kW] with Cg = C / groups, y [N, O, Ho, Wo].
 * With K = Cg·kH·kW and L = Ho·Wo, each (sample n, group g) is one gemm
 * over an im2col matrix cols [K, L] of x[n, g]:
 *   forward   y[n,g]  = w[g] · cols             (Og x K)(K x L), b pre-filled
 *   backward  gw[g]  += g[n,g] · colsᵀ          (Og x L)(L x K)
 *             gx[n,g] = col2im(w[g]ᵀ · g[n,g])  (K x Og)(Og x L), scatter-add
 *             gb      = g summed over N, Ho, Wo
 * Samples run in parallel, each thread with its own column buffer (from the
 * context's buffer cache, so repeated calls reuse it) and OpenBLAS single-
 * threaded inside the parallel region; a lone sample gets BLAS threads.
 * The weight gradient sums per-chunk partials in chunk order, the chunks
 * fixed by N alone, so its bits do not depend on the thread count.
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "mg_conv.h"
#include "nn_internal.h"

/* The geometry of one call, shared by the kernels. */
typedef struct {
  int64_t N, C, H, W;      /* input */
  int64_t O, kH, kW;       /* weight */
  int64_t Ho, Wo;          /* output */
  int64_t sh, sw, ph, pw, dh, dw, G;
  int64_t Cg, Og, K, L;    /* per group: channels in/out, cols rows/cols */
  int same_rows;           /* stride 1, dilation 1, Wo == W: see below */
} Geom;

/* The output columns [*lo, *hi) whose input column ow·sw - pw + j·dw
 * falls inside [0, W); the rest read padding. */
static void valid_cols(const Geom *q, int64_t j, int64_t *lo, int64_t *hi) {
  int64_t off = q->pw - j * q->dw; /* iw = ow·sw - off */
  int64_t a = off > 0 ? (off + q->sw - 1) / q->sw : 0;
  int64_t top = q->W - 1 + off;
  int64_t b = top < 0 ? 0 : top / q->sw + 1;
  *lo = a < q->Wo ? a : q->Wo;
  *hi = b < q->Wo ? b : q->Wo;
  if (*hi < *lo) *hi = *lo;
}

/* ---- im2col and col2im ----------------------------------------------------
 * x is one group of one sample [Cg, H, W]; cols [K, L], row (c, i, j) holding
 * x[c, oh·sh - ph + i·dh, ow·sw - pw + j·dw] (0 outside) at column (oh, ow).
 *
 * Rows are short (a row of the output, often 7 to 28 elements) and there
 * are K·Ho of them per sample: the copies and adds use 8-wide vectors
 * directly (a compiler's vectorised loop, built for long runs, would do a
 * 14-element row one element at a time). */

typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));
typedef double f64x4 __attribute__((vector_size(32)));
#define VLOAD(V, p) ({ V v_; memcpy(&v_, (p), sizeof v_); v_; })
#define VSTORE(p, v) do { __typeof__(v) v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)

static inline void copy_f32(float *d, const float *s, int64_t n) {
  if (n < 8) {
    for (int64_t i = 0; i < n; i++) d[i] = s[i];
    return;
  }
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) VSTORE(d + i, VLOAD(f32x8, s + i));
  if (i < n) VSTORE(d + n - 8, VLOAD(f32x8, s + n - 8)); /* overlaps: a copy may */
}
static inline void copy_f64(double *d, const double *s, int64_t n) {
  if (n < 4) {
    for (int64_t i = 0; i < n; i++) d[i] = s[i];
    return;
  }
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) VSTORE(d + i, VLOAD(f64x4, s + i));
  if (i < n) VSTORE(d + n - 4, VLOAD(f64x4, s + n - 4));
}
/* Zeroing without a memset call, which costs more than the stores for
 * a row or two. */
static inline void zero_f32(float *d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) VSTORE(d + i, ((f32x8){0}));
  for (; i < n; i++) d[i] = 0;
}
static inline void zero_f64(double *d, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) VSTORE(d + i, ((f64x4){0}));
  for (; i < n; i++) d[i] = 0;
}
static inline void add_f32(float *d, const float *s, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) VSTORE(d + i, VLOAD(f32x8, d + i) + VLOAD(f32x8, s + i));
  if (i + 4 <= n) {
    VSTORE(d + i, VLOAD(f32x4, d + i) + VLOAD(f32x4, s + i));
    i += 4;
  }
  for (; i < n; i++) d[i] += s[i];
}
static inline void add_f64(double *d, const double *s, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) VSTORE(d + i, VLOAD(f64x4, d + i) + VLOAD(f64x4, s + i));
  for (; i < n; i++) d[i] += s[i];
}

static void im2col_f32(const Geom *q, const float *x, float *cols) {
  for (int64_t c = 0; c < q->Cg; c++)
    for (int64_t i = 0; i < q->kH; i++)
      for (int64_t j = 0; j < q->kW; j++) {
        int64_t lo, hi;
        valid_cols(q, j, &lo, &hi);
        float *row = cols + ((c * q->kH + i) * q->kW + j) * q->L;
        const float *xc = x + c * q->H * q->W;
        for (int64_t oh = 0; oh < q->Ho; oh++) {
          int64_t ih = oh * q->sh - q->ph + i * q->dh;
          float *r = row + oh * q->Wo;
          if (ih < 0 || ih >= q->H) {
            memset(r, 0, (size_t)q->Wo * sizeof *r);
            continue;
          }
          const float *xr = xc + ih * q->W - q->pw + j * q->dw;
          for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0.0f;
          if (q->sw == 1)
            copy_f32(r + lo, xr + lo, hi - lo);
          else
            for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[ow * q->sw];
          for (int64_t ow = hi; ow < q->Wo; ow++) r[ow] = 0.0f;
        }
      }
}

static void im2col_f64(const Geom *q, const double *x, double *cols) {
  for (int64_t c = 0; c < q->Cg; c++)
    for (int64_t i = 0; i < q->kH; i++)
      for (int64_t j = 0; j < q->kW; j++) {
        int64_t lo, hi;
        valid_cols(q, j, &lo, &hi);
        double *row = cols + ((c * q->kH + i) * q->kW + j) * q->L;
        const double *xc = x + c * q->H * q->W;
        for (int64_t oh = 0; oh < q->Ho; oh++) {
          int64_t ih = oh * q->sh - q->ph + i * q->dh;
          double *r = row + oh * q->Wo;
          if (ih < 0 || ih >= q->H) {
            memset(r, 0, (size_t)q->Wo * sizeof *r);
            continue;
          }
          const double *xr = xc + ih * q->W - q->pw + j * q->dw;
          for (int64_t ow = 0; ow < lo; ow++) r[ow] = 0.0;
          if (q->sw == 1)
            copy_f64(r + lo, xr + lo, hi - lo);
          else
            for (int64_t ow = lo; ow < hi; ow++) r[ow] = xr[ow * q->sw];
          for (int64_t ow = hi; ow < q->Wo; ow++) r[ow] = 0.0;
        }
      }
}

/* gx [Cg, H, W] += the columns scattered back (im2col's adjoint). */
static void col2im_f32(const Geom *q, const float *cols, float *gx) {
  for (int64_t c = 0; c < q->Cg; c++)
    for (int64_t i = 0; i < q->kH; i++)
      for (int64_t j = 0; j < q->kW; j++) {
        int64_t lo, hi;
        valid_cols(q, j, &lo, &hi);
        const float *row = cols + ((c * q->kH + i) * q->kW + j) * q->L;
        float *gc = gx + c * q->H * q->W;
        for (int64_t oh = 0; oh < q->Ho; oh++) {
          int64_t ih = oh * q->sh - q->ph + i * q->dh;
          if (ih < 0 || ih >= q->H) continue;
          const float *r = row + oh * q->Wo;
          float *gr = gc + ih * q->W - q->pw + j * q->dw;
          if (q->sw == 1)
            add_f32(gr + lo, r + lo, hi - lo);
          else
            for (int64_t ow = lo; ow < hi; ow++) gr[ow * q->sw] += r[ow];
        }
      }
}

static void col2im_f64(const Geom *q, const double *cols, double *gx) {
  for (int64_t c = 0; c < q->Cg; c++)
    for (int64_t i = 0; i < q->kH; i++)
      for (int64_t j = 0; j < q->kW; j++) {
        int64_t lo, hi;
        valid_cols(q, j, &lo, &hi);
        const double *row = cols + ((c * q->kH + i) * q->kW + j) * q->L;
        double *gc = gx + c * q->H * q->W;
        for (int64_t oh = 0; oh < q->Ho; oh++) {
          int64_t ih = oh * q->sh - q->ph + i * q->dh;
          if (ih < 0 || ih >= q->H) continue;
          const double *r = row + oh * q->Wo;
          double *gr = gc + ih * q->W - q->pw + j * q->dw;
          if (q->sw == 1)
            add_f64(gr + lo, r + lo, hi - lo);
          else
            for (int64_t ow = lo; ow < hi; ow++) gr[ow * q->sw] += r[ow];
        }
      }
}

/* ---- im2col and col2im when output rows are as long as input rows ---------
 * With stride 1, dilation 1 and Wo == W ("same" padding across), cols row
 * (c, i, j) is the plane x[c] shifted by di = i - ph rows and dj = j - pw
 * columns: cols[k] = x[k + di·W + dj] over the valid output rows, except in
 * the |dj| columns at one edge, which read padding. So each row is one
 * long vector copy (or add) plus a few zeroed edge elements, instead of Ho
 * short row copies. For col2im the edge elements of the (scratch) columns
 * are zeroed first, so that the one long add puts exact zeros where it
 * wraps into a neighbouring row. */

/* Valid output rows [*a, *b) of shift di, and the flat range [*k0, *k1)
 * that stays inside the plane once shifted by di·W + dj. */
static void same_range(const Geom *q, int64_t di, int64_t dj, int64_t *a,
                       int64_t *b, int64_t *k0, int64_t *k1) {
  *a = di < 0 ? -di : 0;
  *b = q->H - di < q->Ho ? q->H - di : q->Ho;
  if (*b < *a) *b = *a;
  *k0 = *a * q->W + (dj < 0 ? -dj : 0);
  *k1 = *b * q->W - (dj > 0 ? dj : 0);
  if (*k1 < *k0) *k1 = *k0;
}

#define SAME_COLS(T, S)                                                       \
  static void im2col_same_##S(const Geom *q, const T *x, T *cols) {           \
    int64_t W = q->W, L = q->L;                                               \
    for (int64_t c = 0; c < q->Cg; c++)                                       \
      for (int64_t i = 0; i < q->kH; i++)                                     \
        for (int64_t j = 0; j < q->kW; j++) {                                 \
          T *row = cols + ((c * q->kH + i) * q->kW + j) * L;                  \
          const T *xc = x + c * q->H * W;                                     \
          int64_t di = i - q->ph, dj = j - q->pw, a, b, k0, k1;               \
          same_range(q, di, dj, &a, &b, &k0, &k1);                            \
          zero_##S(row, a * W);                                               \
          zero_##S(row + b * W, L - b * W);                                   \
          copy_##S(row + k0, xc + k0 + di * W + dj, k1 - k0);                 \
          for (int64_t oh = a; oh < b; oh++) {                                \
            for (int64_t ow = 0; ow < -dj; ow++) row[oh * W + ow] = 0;        \
            for (int64_t ow = W - dj; ow < W; ow++) row[oh * W + ow] = 0;     \
          }                                                                   \
        }                                                                     \
  }                                                                           \
  static void col2im_same_##S(const Geom *q, T *cols, T *gx) {                \
    int64_t W = q->W, L = q->L;                                               \
    for (int64_t c = 0; c < q->Cg; c++)                                       \
      for (int64_t i = 0; i < q->kH; i++)                                     \
        for (int64_t j = 0; j < q->kW; j++) {                                 \
          T *row = cols + ((c * q->kH + i) * q->kW + j) * L;                  \
          T *gc = gx + c * q->H * W;                                          \
          int64_t di = i - q->ph, dj = j - q->pw, a, b, k0, k1;               \
          same_range(q, di, dj, &a, &b, &k0, &k1);                            \
          for (int64_t oh = a; oh < b; oh++) {                                \
            for (int64_t ow = 0; ow < -dj; ow++) row[oh * W + ow] = 0;        \
            for (int64_t ow = W - dj; ow < W; ow++) row[oh * W + ow] = 0;     \
          }                                                                   \
          add_##S(gc + k0 + di * W + dj, row + k0, k1 - k0);                  \
        }                                                                     \
  }
SAME_COLS(float, f32)
SAME_COLS(double, f64)
#undef SAME_COLS

/* gx [Cg, H, W] += cols scattered back; cols is scratch and may be changed. */
static void col2im(const Geom *q, mg_DType dt, void *cols, void *gx) {
  if (q->same_rows) {
    if (dt == MG_F32) col2im_same_f32(q, cols, gx);
    else col2im_same_f64(q, cols, gx);
  } else if (dt == MG_F32) {
    col2im_f32(q, cols, gx);
  } else {
    col2im_f64(q, cols, gx);
  }
}

/* x[n, g] as columns: written into cols, or x itself for a 1x1 kernel with
 * stride 1 and no padding (already the [K, L] matrix). */
static const void *columns(const Geom *q, mg_DType dt, const void *x, void *cols) {
  if (q->kH == 1 && q->kW == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 &&
      q->pw == 0)
    return x;
  if (q->same_rows) {
    if (dt == MG_F32) im2col_same_f32(q, x, cols);
    else im2col_same_f64(q, x, cols);
  } else if (dt == MG_F32) {
    im2col_f32(q, x, cols);
  } else {
    im2col_f64(q, x, cols);
  }
  return cols;
}

/* Threads for a loop over `items` independent pieces of `cost` flops each. */
/* cost in double: a product of sizes the allocation has not bounded yet. */
static int batch_threads(const mg_Context *ctx, int64_t items, double cost) {
  if (items < 2) return 1;
  double work = (double)items * cost;
  int nt = mg_threads_for(ctx, work < 0x1p62 ? (int64_t)work : INT64_MAX);
  return nt > items ? (int)items : nt;
}

/* ---- checks ---------------------------------------------------------------- */

static int check(mg_Context *ctx, const mg_Tensor *x, const mg_Tensor *w,
                 const mg_Tensor *b, const mg_Conv2dOpts *o, Geom *q) {
  char sx[MG_SHAPE_BUFSZ], sw[MG_SHAPE_BUFSZ], sb[MG_SHAPE_BUFSZ];
  mg_shape_str(sx, sizeof sx, x->ndim, x->shape);
  mg_shape_str(sw, sizeof sw, w->ndim, w->shape);
  int st;
  for (int d = 0; d < 2; d++)
    if ((st = mg_check_window_param(ctx, "conv2d", "stride", o->stride[d], 1)) ||
        (st = mg_check_window_param(ctx, "conv2d", "dilation", o->dilation[d], 1)) ||
        (st = mg_check_window_param(ctx, "conv2d", "padding", o->padding[d], 0)))
      return st;
  if (o->groups <= 0)
    return mg_error(ctx, MG_EARG, "conv2d: groups must be positive, got %lld",
                    (long long)o->groups);
  if (x->ndim != 4)
    return mg_error(ctx, MG_ESHAPE, "conv2d: input must be 4-D [N, C, H, W], "
                    "got shape %s", sx);
  if (w->ndim != 4)
    return mg_error(ctx, MG_ESHAPE, "conv2d: weight must be 4-D [O, C/groups, "
                    "kH, kW], got shape %s", sw);
  int64_t G = o->groups, C = x->shape[1], O = w->shape[0];
  if (C % G)
    return mg_error(ctx, MG_ESHAPE, "conv2d: %lld input channels are not "
                    "divisible by groups %lld", (long long)C, (long long)G);
  if (O % G)
    return mg_error(ctx, MG_ESHAPE, "conv2d: %lld output channels (weight of "
                    "shape %s) are not divisible by groups %lld", (long long)O,
                    sw, (long long)G);
  if (w->shape[1] != C / G)
    return mg_error(ctx, MG_ESHAPE, "conv2d: weight of shape %s expects %lld "
                    "input channels per group, but input of shape %s has %lld "
                    "(%lld channels / groups %lld)", sw, (long long)w->shape[1],
                    sx, (long long)(C / G), (long long)C, (long long)G);
  if (b && (b->ndim != 1 || b->shape[0] != O))
    return mg_error(ctx, MG_ESHAPE, "conv2d: bias of shape %s does not fit "
                    "weight of shape %s (expected [%lld])",
                    mg_shape_str(sb, sizeof sb, b->ndim, b->shape), sw,
                    (long long)O);
  int64_t ekH = mg_dilated_extent(w->shape[2], o->dilation[0]);
  int64_t ekW = mg_dilated_extent(w->shape[3], o->dilation[1]);
  int64_t pH, pW;
  if ((st = mg_padded_size(ctx, "conv2d", x->shape[2], x->shape[3],
                           o->padding[0], o->padding[1], &pH, &pW)))
    return st;
  if (w->shape[2] == 0 || w->shape[3] == 0 || ekH > pH || ekW > pW)
    return mg_error(ctx, MG_ESHAPE, "conv2d: kernel %lldx%lld (dilated "
                    "%lldx%lld) is larger than the padded input %lldx%lld",
                    (long long)w->shape[2], (long long)w->shape[3],
                    (long long)ekH, (long long)ekW, (long long)pH, (long long)pW);
  *q = (Geom){.N = x->shape[0], .C = C, .H = x->shape[2], .W = x->shape[3],
              .O = O, .kH = w->shape[2], .kW = w->shape[3],
              .Ho = (pH - ekH) / o->stride[0] + 1,
              .Wo = (pW - ekW) / o->stride[1] + 1,
              .sh = o->stride[0], .sw = o->stride[1],
              .ph = o->padding[0], .pw = o->padding[1],
              .dh = o->dilation[0], .dw = o->dilation[1], .G = G,
              .Cg = C / G, .Og = O / G};
  q->K = q->Cg * q->kH * q->kW;
  q->L = q->Ho * q->Wo;
  q->same_rows = !ctx->reference_kernels && q->sh == 1 && q->sw == 1 &&
                 q->dh == 1 && q->dw == 1 && q->Wo == q->W;
  return MG_OK;
}

/* Node parameters: (stride, padding, dilation) pairs packed two per int64. */
static int64_t pack(const int64_t *p) { return (p[0] << 32) | p[1]; }
static void unpack(int64_t v, int64_t *p) {
  p[0] = v >> 32;
  p[1] = v & 0xffffffff;
}

/* ---- backward ------------------------------------------------------------- */

/* Sums in double over 8 interleaved lanes: independent additions vectorise
 * (one running sum waits on each add's latency), and the order depends on
 * n alone. */
static double sum_f32(const float *p, int64_t n) {
  double lane[8] = {0}, s = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) lane[k] += (double)p[i + k];
  for (int k = 0; k < 8; k++) s += lane[k];
  for (; i < n; i++) s += (double)p[i];
  return s;
}
static double sum_f64(const double *p, int64_t n) {
  double lane[8] = {0}, s = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) lane[k] += p[i + k];
  for (int k = 0; k < 8; k++) s += lane[k];
  for (; i < n; i++) s += p[i];
  return s;
}

/* Chunks of the batch for the weight gradient's partial sums: fixed by N. */
#define CONV_MAX_CHUNKS 16

/* One chunk of the batch in backward: the weight gradient's partial sum
 * for the chunk (into P), each sample's input gradient (into GX) and each
 * sample's per-channel gradient sums for the bias (into PB, [N, O]), taken
 * while the sample's gradient is in cache for the gemms. */
typedef struct {
  const Geom *q;
  mg_DType dt;
  size_t es;
  int64_t nc, wn;
  const char *X, *Wt, *Gd;
  char *GX, *P, *WS;
  double *PB;
  const mg_Context *ctx;
} BwJob;

/* PB[s, :] = the sums over L of sample s's gradient, per output channel. */
static void bias_sums(const Geom *q, mg_DType dt, const char *Gd, int64_t s, double *PB) {
  for (int64_t oc = 0; oc < q->O; oc++) {
    int64_t base = (s * q->O + oc) * q->L;
    PB[s * q->O + oc] = dt == MG_F32 ? sum_f32((const float *)Gd + base, q->L)
                                     : sum_f64((const double *)Gd + base, q->L);
  }
}

static void bw_chunk(const BwJob *j, int64_t c, int tid) {
  const Geom *q = j->q;
  mg_DType dt = j->dt;
  int64_t es = (int64_t)j->es;
  char *cols = j->WS + (int64_t)tid * q->K * q->L * es;
  char *pc = j->P ? j->P + c * j->wn * es : NULL;
  for (int64_t s = q->N * c / j->nc; s < q->N * (c + 1) / j->nc; s++) {
    if (j->PB) bias_sums(q, dt, j->Gd, s, j->PB);
    for (int64_t gi = 0; gi < q->G; gi++) {
      const char *xs = j->X + ((s * q->C + gi * q->Cg) * q->H * q->W) * es;
      const char *gs = j->Gd + ((s * q->O + gi * q->Og) * q->L) * es;
      const char *wg = j->Wt + gi * q->Og * q->K * es;
      if (pc) {
        const void *B = columns(q, dt, xs, cols);
        mg_gemm(j->ctx, dt, CblasNoTrans, CblasTrans, q->Og, q->K, q->L, gs, q->L, B, q->L,
             1.0, pc + gi * q->Og * q->K * es, q->K);
      }
      if (j->GX) {
        char *gxs = j->GX + ((s * q->C + gi * q->Cg) * q->H * q->W) * es;
        mg_gemm(j->ctx, dt, CblasTrans, CblasNoTrans, q->K, q->L, q->Og, wg, q->K, gs, q->L,
             0.0, cols, q->L);
        col2im(q, dt, cols, gxs);
      }
    }
  }
}

static int conv2d_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Tensor *x = n->saved[0], *w = n->saved[1], *gc = NULL, *ws = NULL;
  mg_Tensor *gx = NULL, *gw = NULL, *gb = NULL, *part = NULL, *pb = NULL;
  mg_DType dt = x->dtype;
  mg_Conv2dOpts o = {.groups = n->i[3]};
  unpack(n->i[0], o.stride);
  unpack(n->i[1], o.padding);
  unpack(n->i[2], o.dilation);
  Geom q;
  int st = check(ctx, x, w, NULL, &o, &q);
  if (st) return st;
  int need_x = mg_node_needs(n, 0), need_w = mg_node_needs(n, 1);
  int need_b = n->ninputs > 2 && mg_node_needs(n, 2);
  size_t es = mg_dtype_size(dt);
  int64_t nc = q.N < CONV_MAX_CHUNKS ? q.N : CONV_MAX_CHUNKS;
  int64_t wn = q.O * q.K;
  int nt = batch_threads(ctx, nc, 4.0 * q.O * q.K * q.L * (double)(q.N / (nc ? nc : 1)));
  if ((st = mg_nn_prep(ctx, &gc, g, dt))) return st;
  if (need_x && (st = mg_full(ctx, &gx, dt, 4, x->shape, 0))) goto fail;
  if (need_w) {
    int64_t psz = nc * wn;
    if ((st = mg_full(ctx, &gw, dt, 4, w->shape, 0)) ||
        (st = mg_full(ctx, &part, dt, 1, &psz, 0)))
      goto fail;
  }
  if (need_b) {
    int64_t pbn = q.N * q.O;
    if ((st = mg_full(ctx, &gb, dt, 1, &q.O, 0)) ||
        (st = mg_alloc_tensor(ctx, &pb, MG_F64, 1, &pbn)))
      goto fail;
  }
  int ran = 0; /* the chunks took the bias sums */
  if ((need_x || need_w) && q.N > 0 && q.K > 0 && q.L > 0) {
    ran = 1;
    /* [nt, K, L], not its product: the shape check bounds the size. */
    int64_t wsz[3] = {nt, q.K, q.L};
    if ((st = mg_alloc_tensor(ctx, &ws, dt, 3, wsz))) goto fail;
    BwJob job = {&q, dt, es, nc, wn, mg_data(x), mg_data(w), mg_data(gc),
                 gx ? mg_data(gx) : NULL, part ? mg_data(part) : NULL, mg_data(ws),
                 pb ? mg_data(pb) : NULL, ctx};
    char *P = job.P;
    if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
      for (int64_t c = 0; c < nc; c++) bw_chunk(&job, c, omp_get_thread_num());
    } else { /* outside any OpenMP construct, so that BLAS may thread */
      mg_blas_threads_for(ctx, q.Og, q.K, q.L);
      for (int64_t c = 0; c < nc; c++) bw_chunk(&job, c, 0);
    }
    if (P) { /* partials summed in chunk order */
      char *GW = mg_data(gw);
      for (int64_t c = 0; c < nc; c++)
        if (dt == MG_F32) {
          float *d = (float *)GW, *p = (float *)P + c * wn;
          for (int64_t i = 0; i < wn; i++) d[i] += p[i];
        } else {
          double *d = (double *)GW, *p = (double *)P + c * wn;
          for (int64_t i = 0; i < wn; i++) d[i] += p[i];
        }
    }
  }
  if (gb) { /* per-sample sums added in sample order, in double */
    double *PB = mg_data(pb);
    if (!ran)
      for (int64_t s = 0; s < q.N; s++) bias_sums(&q, dt, mg_data(gc), s, PB);
    for (int64_t oc = 0; oc < q.O; oc++) {
      double acc = 0;
      for (int64_t s = 0; s < q.N; s++) acc += PB[s * q.O + oc];
      if (dt == MG_F32) ((float *)mg_data(gb))[oc] = (float)acc;
      else ((double *)mg_data(gb))[oc] = acc;
    }
  }
  mg_tensor_decref(gc);
  mg_tensor_decref(ws);
  mg_tensor_decref(part);
  mg_tensor_decref(pb);
  grads[0] = gx;
  grads[1] = gw;
  if (n->ninputs > 2) grads[2] = gb;
  return MG_OK;
fail:
  mg_tensor_decref(gc);
  mg_tensor_decref(ws);
  mg_tensor_decref(part);
  mg_tensor_decref(pb);
  mg_tensor_decref(gx);
  mg_tensor_decref(gw);
  mg_tensor_decref(gb);
  return st;
}

/* ---- forward -------------------------------------------------------------- */

/* One sample: the output filled with the bias, then += W · columns. */
typedef struct {
  const Geom *q;
  mg_DType dt;
  size_t es;
  const char *X, *Wt, *B;
  char *R, *WS;
  const mg_Context *ctx;
} FwJob;

static void fw_sample(const FwJob *j, int64_t s, int tid) {
  const Geom *q = j->q;
  mg_DType dt = j->dt;
  int64_t es = (int64_t)j->es;
  char *cols = j->WS + (int64_t)tid * q->K * q->L * es;
  for (int64_t gi = 0; gi < q->G; gi++) {
    char *y = j->R + ((s * q->O + gi * q->Og) * q->L) * es;
    for (int64_t oc = 0; oc < q->Og; oc++) {
      int64_t ob = gi * q->Og + oc;
      if (dt == MG_F32) {
        float v = j->B ? ((const float *)j->B)[ob] : 0.0f, *p = (float *)y + oc * q->L;
        for (int64_t i = 0; i < q->L; i++) p[i] = v;
      } else {
        double v = j->B ? ((const double *)j->B)[ob] : 0.0, *p = (double *)y + oc * q->L;
        for (int64_t i = 0; i < q->L; i++) p[i] = v;
      }
    }
    if (q->K == 0) continue;
    const char *xs = j->X + ((s * q->C + gi * q->Cg) * q->H * q->W) * es;
    const void *cm = columns(q, dt, xs, cols);
    mg_gemm(j->ctx, dt, CblasNoTrans, CblasNoTrans, q->Og, q->L, q->K,
         j->Wt + gi * q->Og * q->K * es, q->K, cm, q->L, 1.0, y, q->L);
  }
}

int mg_conv2d(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, mg_Tensor *w,
              mg_Tensor *b, const mg_Conv2dOpts *o) {
  Geom q;
  int st = check(ctx, x, w, b, o, &q);
  if (st) return st;
  mg_DType dt = mg_nn_dtype(mg_nn_dtype(x->dtype, w->dtype), b ? b->dtype : x->dtype);
  mg_Tensor *xc = NULL, *wc = NULL, *bc = NULL, *r = NULL, *ws = NULL;
  mg_Tensor *ins[3] = {x, w, b};
  int64_t oshape[4] = {q.N, q.O, q.Ho, q.Wo};
  int nt = batch_threads(ctx, q.N, 2.0 * q.O * q.K * q.L);
  int mode = mg_set_grad_enabled(ctx, 0);
  if ((st = mg_nn_prep(ctx, &xc, x, dt)) || (st = mg_nn_prep(ctx, &wc, w, dt)) ||
      (b && (st = mg_nn_prep(ctx, &bc, b, dt))) ||
      (st = mg_alloc_tensor(ctx, &r, dt, 4, oshape)))
    goto fail;
  if (q.N > 0 && q.O > 0 && q.L > 0) {
    int64_t wsz[3] = {nt, q.K, q.L}; /* the shape check bounds the size */
    if ((st = mg_alloc_tensor(ctx, &ws, dt, 3, wsz))) goto fail;
  }
  mg_set_grad_enabled(ctx, mode);
  size_t es = mg_dtype_size(dt);
  if (ws) {
    FwJob job = {&q, dt, es, mg_data(xc), mg_data(wc), bc ? mg_data(bc) : NULL,
                 mg_data(r), mg_data(ws), ctx};
    if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
      for (int64_t s = 0; s < q.N; s++) fw_sample(&job, s, omp_get_thread_num());
    } else { /* outside any OpenMP construct, so that BLAS may thread */
      mg_blas_threads_for(ctx, q.Og, q.L, q.K);
      for (int64_t s = 0; s < q.N; s++) fw_sample(&job, s, 0);
    }
  }
  if (mg_needs_grad(ctx, b ? 3 : 2, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "conv2d", conv2d_backward, b ? 3 : 2, ins, &n)) ||
        (st = mg_save(ctx, n, 0, xc)) || (st = mg_save(ctx, n, 1, wc)))
      goto fail;
    n->i[0] = pack(o->stride);
    n->i[1] = pack(o->padding);
    n->i[2] = pack(o->dilation);
    n->i[3] = o->groups;
  }
  mg_tensor_decref(xc);
  mg_tensor_decref(wc);
  mg_tensor_decref(bc);
  mg_tensor_decref(ws);
  *out = r;
  return MG_OK;
fail:
  mg_set_grad_enabled(ctx, mode);
  mg_tensor_decref(xc);
  mg_tensor_decref(wc);
  mg_tensor_decref(bc);
  mg_tensor_decref(ws);
  mg_tensor_decref(r);
  return st;
}
