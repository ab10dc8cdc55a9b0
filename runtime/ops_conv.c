/*
 * ops_conv.c — conv2d and conv_transpose2d, forward followed by backward.
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
 *
 * conv_transpose2d(x, w) is the input gradient of the conv2d with weight w
 * whose output has x's shape, taken as a forward: y[n,g] = col2im(w[g]ᵀ ·
 * x[n,g]), b pre-filled. Its backward is that conv2d's forward and weight
 * gradient over the columns of g: gx[n,g] = w[g] · cols(g[n,g]) and
 * gw[g] += x[n,g] · cols(g[n,g])ᵀ, the columns made once for both. The
 * kernels below run both ops over the one conv geometry (Geom), the
 * transposed op's result being the conv's input side.
 */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "mg_conv.h"
#include "mg_conv_dnnl.h"
#include "mg_nn_internal.h"

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
/* f64 twin of copy_f32 (4 lanes) */
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
/* f64 twin of zero_f32 (4 lanes) */
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
/* f64 twin of add_f32 (4 lanes, no 4-wide tail) */
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
/* f64 twin of im2col_f32 */
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
/* f64 twin of col2im_f32 */
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
  if (*a > q->Ho) *a = q->Ho; /* zeroing a·W elements must stay in the row */
  *b = q->H - di < q->Ho ? q->H - di : q->Ho;
  if (*b < *a) *b = *a;
  *k0 = *a * q->W + (dj < 0 ? -dj : 0);
  *k1 = *b * q->W - (dj > 0 ? dj : 0);
  if (*k1 < *k0) *k1 = *k0;
}

static void im2col_same_f32(const Geom *q, const float *x, float *cols) {
  int64_t W = q->W, L = q->L;
  for (int64_t c = 0; c < q->Cg; c++)
    for (int64_t i = 0; i < q->kH; i++)
      for (int64_t j = 0; j < q->kW; j++) {
        float *row = cols + ((c * q->kH + i) * q->kW + j) * L;
        const float *xc = x + c * q->H * W;
        int64_t di = i - q->ph, dj = j - q->pw, a, b, k0, k1;
        same_range(q, di, dj, &a, &b, &k0, &k1);
        zero_f32(row, a * W);
        zero_f32(row + b * W, L - b * W);
        copy_f32(row + k0, xc + k0 + di * W + dj, k1 - k0);
        for (int64_t oh = a; oh < b; oh++) {
          for (int64_t ow = 0; ow < -dj; ow++) row[oh * W + ow] = 0;
          for (int64_t ow = W - dj; ow < W; ow++) row[oh * W + ow] = 0;
        }
      }
}
/* f64 twin of im2col_same_f32 */
static void im2col_same_f64(const Geom *q, const double *x, double *cols) {
  int64_t W = q->W, L = q->L;
  for (int64_t c = 0; c < q->Cg; c++)
    for (int64_t i = 0; i < q->kH; i++)
      for (int64_t j = 0; j < q->kW; j++) {
        double *row = cols + ((c * q->kH + i) * q->kW + j) * L;
        const double *xc = x + c * q->H * W;
        int64_t di = i - q->ph, dj = j - q->pw, a, b, k0, k1;
        same_range(q, di, dj, &a, &b, &k0, &k1);
        zero_f64(row, a * W);
        zero_f64(row + b * W, L - b * W);
        copy_f64(row + k0, xc + k0 + di * W + dj, k1 - k0);
        for (int64_t oh = a; oh < b; oh++) {
          for (int64_t ow = 0; ow < -dj; ow++) row[oh * W + ow] = 0;
          for (int64_t ow = W - dj; ow < W; ow++) row[oh * W + ow] = 0;
        }
      }
}

static void col2im_same_f32(const Geom *q, float *cols, float *gx) {
  int64_t W = q->W, L = q->L;
  for (int64_t c = 0; c < q->Cg; c++)
    for (int64_t i = 0; i < q->kH; i++)
      for (int64_t j = 0; j < q->kW; j++) {
        float *row = cols + ((c * q->kH + i) * q->kW + j) * L;
        float *gc = gx + c * q->H * W;
        int64_t di = i - q->ph, dj = j - q->pw, a, b, k0, k1;
        same_range(q, di, dj, &a, &b, &k0, &k1);
        for (int64_t oh = a; oh < b; oh++) {
          for (int64_t ow = 0; ow < -dj; ow++) row[oh * W + ow] = 0;
          for (int64_t ow = W - dj; ow < W; ow++) row[oh * W + ow] = 0;
        }
        add_f32(gc + k0 + di * W + dj, row + k0, k1 - k0);
      }
}
/* f64 twin of col2im_same_f32 */
static void col2im_same_f64(const Geom *q, double *cols, double *gx) {
  int64_t W = q->W, L = q->L;
  for (int64_t c = 0; c < q->Cg; c++)
    for (int64_t i = 0; i < q->kH; i++)
      for (int64_t j = 0; j < q->kW; j++) {
        double *row = cols + ((c * q->kH + i) * q->kW + j) * L;
        double *gc = gx + c * q->H * W;
        int64_t di = i - q->ph, dj = j - q->pw, a, b, k0, k1;
        same_range(q, di, dj, &a, &b, &k0, &k1);
        for (int64_t oh = a; oh < b; oh++) {
          for (int64_t ow = 0; ow < -dj; ow++) row[oh * W + ow] = 0;
          for (int64_t ow = W - dj; ow < W; ow++) row[oh * W + ow] = 0;
        }
        add_f64(gc + k0 + di * W + dj, row + k0, k1 - k0);
      }
}

/* cols = x[n, g] as columns, by the kernel the geometry picked. */
static void to_cols_f32(const Geom *q, const void *x, void *cols) {
  if (q->same_rows) im2col_same_f32(q, x, cols);
  else im2col_f32(q, x, cols);
}
/* f64 twin of to_cols_f32 */
static void to_cols_f64(const Geom *q, const void *x, void *cols) {
  if (q->same_rows) im2col_same_f64(q, x, cols);
  else im2col_f64(q, x, cols);
}

/* gx [Cg, H, W] += cols scattered back; cols is scratch and may be changed. */
static void from_cols_f32(const Geom *q, void *cols, void *gx) {
  if (q->same_rows) col2im_same_f32(q, cols, gx);
  else col2im_f32(q, cols, gx);
}
/* f64 twin of from_cols_f32 */
static void from_cols_f64(const Geom *q, void *cols, void *gx) {
  if (q->same_rows) col2im_same_f64(q, cols, gx);
  else col2im_f64(q, cols, gx);
}

/* ---- the bias and the weight gradient's partials ---------------------------- */

/* The nb channels of len elements of sample s of R, each set to its bias
 * (or 0). */
static void fill_bias_f32(void *R, const void *B, int64_t s, int64_t nb, int64_t len) {
  for (int64_t c = 0; c < nb; c++) {
    int64_t base = (s * nb + c) * len;
    float v = B ? ((const float *)B)[c] : 0.0f, *p = (float *)R + base;
    for (int64_t i = 0; i < len; i++) p[i] = v;
  }
}
/* f64 twin of fill_bias_f32 */
static void fill_bias_f64(void *R, const void *B, int64_t s, int64_t nb, int64_t len) {
  for (int64_t c = 0; c < nb; c++) {
    int64_t base = (s * nb + c) * len;
    double v = B ? ((const double *)B)[c] : 0.0, *p = (double *)R + base;
    for (int64_t i = 0; i < len; i++) p[i] = v;
  }
}

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
/* f64 twin of sum_f32 */
static double sum_f64(const double *p, int64_t n) {
  double lane[8] = {0}, s = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) lane[k] += p[i + k];
  for (int k = 0; k < 8; k++) s += lane[k];
  for (; i < n; i++) s += p[i];
  return s;
}

/* PB[s, :] = the sums over len of sample s of D [N, nb, len], per channel. */
static void bias_sums_f32(const void *D, int64_t s, int64_t nb, int64_t len, double *PB) {
  for (int64_t c = 0; c < nb; c++) {
    int64_t base = (s * nb + c) * len;
    PB[s * nb + c] = sum_f32((const float *)D + base, len);
  }
}
/* f64 twin of bias_sums_f32 */
static void bias_sums_f64(const void *D, int64_t s, int64_t nb, int64_t len, double *PB) {
  for (int64_t c = 0; c < nb; c++) {
    int64_t base = (s * nb + c) * len;
    PB[s * nb + c] = sum_f64((const double *)D + base, len);
  }
}

/* gb [nb] = PB [N, nb] summed over samples in sample order, in double. */
static void bias_grad_f32(void *gb, const double *PB, int64_t N, int64_t nb) {
  for (int64_t oc = 0; oc < nb; oc++) {
    double acc = 0;
    for (int64_t s = 0; s < N; s++) acc += PB[s * nb + oc];
    ((float *)gb)[oc] = (float)acc;
  }
}
/* f64 twin of bias_grad_f32 */
static void bias_grad_f64(void *gb, const double *PB, int64_t N, int64_t nb) {
  for (int64_t oc = 0; oc < nb; oc++) {
    double acc = 0;
    for (int64_t s = 0; s < N; s++) acc += PB[s * nb + oc];
    ((double *)gb)[oc] = (double)acc;
  }
}

/* GW [wn] += the nc partials P [nc, wn], in chunk order. */
static void sum_partials_f32(void *GW, const void *P, int64_t nc, int64_t wn) {
  for (int64_t c = 0; c < nc; c++) {
    float *d = (float *)GW;
    const float *p = (const float *)P + c * wn;
    for (int64_t i = 0; i < wn; i++) d[i] += p[i];
  }
}
/* f64 twin of sum_partials_f32 */
static void sum_partials_f64(void *GW, const void *P, int64_t nc, int64_t wn) {
  for (int64_t c = 0; c < nc; c++) {
    double *d = (double *)GW;
    const double *p = (const double *)P + c * wn;
    for (int64_t i = 0; i < wn; i++) d[i] += p[i];
  }
}

/* The per-dtype kernels of one call, picked once at its entry. */
typedef struct {
  void (*to_cols)(const Geom *q, const void *x, void *cols);
  void (*from_cols)(const Geom *q, void *cols, void *gx);
  void (*fill_bias)(void *R, const void *B, int64_t s, int64_t nb, int64_t len);
  void (*bias_sums)(const void *D, int64_t s, int64_t nb, int64_t len, double *PB);
  void (*bias_grad)(void *gb, const double *PB, int64_t N, int64_t nb);
  void (*sum_partials)(void *GW, const void *P, int64_t nc, int64_t wn);
} Kernels;

static const Kernels KERNELS_F32 = {to_cols_f32, from_cols_f32, fill_bias_f32,
                                    bias_sums_f32, bias_grad_f32, sum_partials_f32};
static const Kernels KERNELS_F64 = {to_cols_f64, from_cols_f64, fill_bias_f64,
                                    bias_sums_f64, bias_grad_f64, sum_partials_f64};

static const Kernels *kernels_for(mg_DType dt) {
  return dt == MG_F32 ? &KERNELS_F32 : &KERNELS_F64;
}

/* x[n, g] as columns: written into cols, or x itself for a 1x1 kernel with
 * stride 1 and no padding that keeps the plane's size (already the [K, L]
 * matrix; a transposed convolution's output padding can make H > Ho). */
static const void *columns(const Geom *q, const Kernels *k, const void *x, void *cols) {
  if (q->kH == 1 && q->kW == 1 && q->sh == 1 && q->sw == 1 && q->ph == 0 &&
      q->pw == 0 && q->Ho == q->H && q->Wo == q->W)
    return x;
  k->to_cols(q, x, cols);
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

/* What both ops check first: stride, dilation, padding (and output_padding
 * when transposed) and groups in range, x and w 4-D; errors name op and
 * the layouts. sx and sw receive the shapes as text, for later messages. */
static int check_common(mg_Context *ctx, const mg_Tensor *x, const mg_Tensor *w,
                        const mg_Conv2dOpts *o, int transposed, char *sx, char *sw) {
  const char *op = transposed ? "conv_transpose2d" : "conv2d";
  mg_shape_str(sx, MG_SHAPE_BUFSZ, x->ndim, x->shape);
  mg_shape_str(sw, MG_SHAPE_BUFSZ, w->ndim, w->shape);
  int st;
  for (int d = 0; d < 2; d++)
    if ((st = mg_check_window_param(ctx, op, "stride", o->stride[d], 1)) ||
        (st = mg_check_window_param(ctx, op, "dilation", o->dilation[d], 1)) ||
        (st = mg_check_window_param(ctx, op, "padding", o->padding[d], 0)) ||
        (transposed && (st = mg_check_window_param(ctx, op, "output_padding",
                                                   o->output_padding[d], 0))))
      return st;
  if (o->groups <= 0)
    return mg_error(ctx, MG_EARG, "%s: groups must be positive, got %lld", op,
                    (long long)o->groups);
  if (x->ndim != 4)
    return mg_error(ctx, MG_ESHAPE, "%s: input must be 4-D %s, got shape %s", op,
                    transposed ? "[N, C_in, H, W]" : "[N, C, H, W]", sx);
  if (w->ndim != 4)
    return mg_error(ctx, MG_ESHAPE, "%s: weight must be 4-D %s, got shape %s", op,
                    transposed ? "[C_in, C_out/groups, kH, kW]" : "[O, C/groups, kH, kW]",
                    sw);
  return MG_OK;
}

/* Padding "same": the total d·(k-1) per dim, half before (rounded down) and
 * the rest after, as PyTorch (which pads the odd zero at the bottom and
 * right). Sets the padding before in *pad and the one extra after in *extra. */
static int same_padding(mg_Context *ctx, const mg_Conv2dOpts *o, int64_t ekH,
                        int64_t ekW, int64_t *pad, int64_t *extra) {
  if (o->stride[0] != 1 || o->stride[1] != 1)
    return mg_error(ctx, MG_EARG, "conv2d: padding \"same\" needs stride 1 "
                    "(as in PyTorch), got stride {%lld, %lld}",
                    (long long)o->stride[0], (long long)o->stride[1]);
  int64_t ek[2] = {ekH, ekW};
  for (int d = 0; d < 2; d++) {
    int st;
    /* a huge extent is refused as padding past MG_MAX_WINDOW */
    int64_t total = ek[d] == INT64_MAX ? INT64_MAX : ek[d] - 1;
    if ((st = mg_check_window_param(ctx, "conv2d", "padding", total / 2, 0)))
      return st;
    pad[d] = total / 2;
    extra[d] = total % 2;
  }
  return MG_OK;
}

/* The sizes derived from the rest of a geometry, and the kernel choice. */
static int finish_geom(const mg_Context *ctx, Geom *q) {
  q->K = q->Cg * q->kH * q->kW;
  q->L = q->Ho * q->Wo;
  q->same_rows = !ctx->reference_kernels && q->sh == 1 && q->sw == 1 &&
                 q->dh == 1 && q->dw == 1 && q->Wo == q->W;
  return MG_OK;
}

static int check(mg_Context *ctx, const mg_Tensor *x, const mg_Tensor *w,
                 const mg_Tensor *b, const mg_Conv2dOpts *o, Geom *q) {
  char sx[MG_SHAPE_BUFSZ], sw[MG_SHAPE_BUFSZ], sb[MG_SHAPE_BUFSZ];
  int st = check_common(ctx, x, w, o, 0, sx, sw);
  if (st) return st;
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
  int64_t pad[2] = {o->padding[0], o->padding[1]}, extra[2] = {0, 0};
  if (o->same && (st = same_padding(ctx, o, ekH, ekW, pad, extra))) return st;
  int64_t pH, pW;
  if ((st = mg_padded_size(ctx, "conv2d", x->shape[2], x->shape[3], pad[0],
                           pad[1], &pH, &pW)))
    return st;
  pH += extra[0];
  pW += extra[1];
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
              .ph = pad[0], .pw = pad[1],
              .dh = o->dilation[0], .dw = o->dilation[1], .G = G,
              .Cg = C / G, .Og = O / G};
  return finish_geom(ctx, q);
}

/* A transposed convolution's output size along one dim:
 * (n - 1)·s - 2p + d·(k - 1) + op + 1 (maybe negative), or INT64_MAX past
 * MG_MAX_NUMEL. */
static int64_t transposed_size(int64_t n, int64_t k, int64_t s, int64_t p,
                               int64_t d, int64_t op) {
  __int128 v = (__int128)(n - 1) * s - 2 * (__int128)p +
               (__int128)d * (k - 1) + op + 1;
  return v > MG_MAX_NUMEL ? INT64_MAX : (int64_t)v;
}

/* The geometry of conv_transpose2d(x, w) as that of the conv2d whose input
 * gradient it is: the conv's input is the result y [N, C_out, H_out, W_out]
 * (q->C, q->H, q->W), its output is x [N, C_in, H, W] (q->O, q->Ho, q->Wo),
 * its weight is w [C_in, C_out/groups, kH, kW] as it stands. */
static int check_transposed(mg_Context *ctx, const mg_Tensor *x, const mg_Tensor *w,
                            const mg_Tensor *b, const mg_Conv2dOpts *o, Geom *q) {
  char sx[MG_SHAPE_BUFSZ], sw[MG_SHAPE_BUFSZ], sb[MG_SHAPE_BUFSZ];
  int st = check_common(ctx, x, w, o, 1, sx, sw);
  if (st) return st;
  int64_t G = o->groups, Cin = x->shape[1], Cg = w->shape[1];
  if (w->shape[0] != Cin)
    return mg_error(ctx, MG_ESHAPE, "conv_transpose2d: weight of shape %s "
                    "expects %lld input channels, but input of shape %s has %lld",
                    sw, (long long)w->shape[0], sx, (long long)Cin);
  if (Cin % G)
    return mg_error(ctx, MG_ESHAPE, "conv_transpose2d: %lld input channels "
                    "are not divisible by groups %lld", (long long)Cin,
                    (long long)G);
  if (Cg > MG_MAX_NUMEL / G)
    return mg_error(ctx, MG_ESHAPE, "conv_transpose2d: weight of shape %s "
                    "with groups %lld makes too many output channels", sw,
                    (long long)G);
  int64_t Cout = Cg * G;
  if (b && (b->ndim != 1 || b->shape[0] != Cout))
    return mg_error(ctx, MG_ESHAPE, "conv_transpose2d: bias of shape %s does "
                    "not fit weight of shape %s with groups %lld (expected [%lld])",
                    mg_shape_str(sb, sizeof sb, b->ndim, b->shape), sw,
                    (long long)G, (long long)Cout);
  const int64_t *s = o->stride, *p = o->padding, *d = o->dilation,
                *op = o->output_padding;
  for (int k = 0; k < 2; k++)
    if (op[k] >= s[k] && op[k] >= d[k])
      return mg_error(ctx, MG_EARG, "conv_transpose2d: output_padding "
                      "{%lld, %lld} must be smaller than either stride "
                      "{%lld, %lld} or dilation {%lld, %lld} in each dim",
                      (long long)op[0], (long long)op[1], (long long)s[0],
                      (long long)s[1], (long long)d[0], (long long)d[1]);
  if (w->shape[2] == 0 || w->shape[3] == 0)
    return mg_error(ctx, MG_ESHAPE, "conv_transpose2d: kernel of weight of "
                    "shape %s is empty", sw);
  int64_t Ho = transposed_size(x->shape[2], w->shape[2], s[0], p[0], d[0], op[0]);
  int64_t Wo = transposed_size(x->shape[3], w->shape[3], s[1], p[1], d[1], op[1]);
  if (Ho > MG_MAX_NUMEL || Wo > MG_MAX_NUMEL ||
      (Ho > 0 && Wo > 0 && (double)Ho * (double)Wo > (double)MG_MAX_NUMEL) ||
      (double)Cg * (double)w->shape[2] * (double)w->shape[3] > (double)MG_MAX_NUMEL)
    return mg_error(ctx, MG_ESHAPE, "conv_transpose2d: input of shape %s with "
                    "weight of shape %s, stride {%lld, %lld}, padding {%lld, %lld} "
                    "and dilation {%lld, %lld} gives an output too large",
                    sx, sw, (long long)s[0], (long long)s[1], (long long)p[0],
                    (long long)p[1], (long long)d[0], (long long)d[1]);
  if (Ho < 1 || Wo < 1)
    return mg_error(ctx, MG_ESHAPE, "conv_transpose2d: input of shape %s with "
                    "weight of shape %s, stride {%lld, %lld}, padding {%lld, %lld}, "
                    "dilation {%lld, %lld} and output_padding {%lld, %lld} gives "
                    "an output of %lldx%lld, which is too small", sx, sw,
                    (long long)s[0], (long long)s[1], (long long)p[0],
                    (long long)p[1], (long long)d[0], (long long)d[1],
                    (long long)op[0], (long long)op[1], (long long)Ho, (long long)Wo);
  *q = (Geom){.N = x->shape[0], .C = Cout, .H = Ho, .W = Wo,
              .O = Cin, .kH = w->shape[2], .kW = w->shape[3],
              .Ho = x->shape[2], .Wo = x->shape[3],
              .sh = s[0], .sw = s[1], .ph = p[0], .pw = p[1],
              .dh = d[0], .dw = d[1], .G = G, .Cg = Cg, .Og = Cin / G};
  return finish_geom(ctx, q);
}

/* Node parameters: (stride, padding, dilation, output_padding) pairs packed
 * two per int64 (each at most MG_MAX_WINDOW, checked above). */
static int64_t pack(const int64_t *p) { return (p[0] << 32) | p[1]; }
static void unpack(int64_t v, int64_t *p) {
  p[0] = v >> 32;
  p[1] = v & 0xffffffff;
}

static void save_opts(mg_Node *n, const mg_Conv2dOpts *o, int transposed) {
  n->i[0] = pack(o->stride);
  n->i[1] = pack(o->padding);
  n->i[2] = pack(o->dilation);
  n->i[3] = o->groups;
  n->i[4] = transposed ? pack(o->output_padding) : o->same;
}

static mg_Conv2dOpts node_opts(const mg_Node *n, int transposed) {
  mg_Conv2dOpts o = {.groups = n->i[3]};
  unpack(n->i[0], o.stride);
  unpack(n->i[1], o.padding);
  unpack(n->i[2], o.dilation);
  if (transposed) unpack(n->i[4], o.output_padding);
  else o.same = (int)n->i[4];
  return o;
}

/* ---- oneDNN ---------------------------------------------------------------
 * float32 conv2d goes to oneDNN first (conv_dnnl.c); the kernels here take
 * what it declines, float64, deterministic mode and conv_transpose2d. */

static mg_ConvShape dnnl_shape(const Geom *q) {
  return (mg_ConvShape){.N = q->N, .C = q->C, .H = q->H, .W = q->W, .O = q->O,
                        .kH = q->kH, .kW = q->kW, .G = q->G, .Ho = q->Ho,
                        .Wo = q->Wo, .sh = q->sh, .sw = q->sw, .ph = q->ph,
                        .pw = q->pw, .dh = q->dh, .dw = q->dw};
}

/* ---- backward ------------------------------------------------------------- */

/* Chunks of the batch for the weight gradient's partial sums: fixed by N. */
#define CONV_MAX_CHUNKS 16

/* One chunk of the batch in backward, in the conv view of the geometry
 * (see check_transposed): Xin is the conv's input side [N, C, H, W], Gout
 * its output side [N, O, Ho, Wo]. For conv2d Xin is x and Gout the
 * gradient; for conv_transpose2d Xin is the gradient and Gout is x. The
 * weight gradient of both is Gout · columns(Xin)ᵀ, a partial sum per chunk
 * (into P); the input gradient (into GX) is col2im(wᵀ · Gout) for conv2d,
 * w · columns(Xin) for conv_transpose2d; PB [N, nb] takes each sample's
 * per-channel gradient sums for the bias, while the gradient is in cache. */
typedef struct {
  const Geom *q;
  mg_DType dt;             /* for the gemms */
  const Kernels *k;        /* the element kernels of dt */
  size_t es;
  int transposed;
  int64_t nc, wn;
  const char *Xin, *Wt, *Gout;
  char *GX, *P, *WS;
  double *PB;
  const mg_Context *ctx;
} BwJob;

/* The bias gradient's data, channels and plane size of a job. */
static void bias_src(const BwJob *j, const char **D, int64_t *nb, int64_t *len) {
  const Geom *q = j->q;
  *D = j->transposed ? j->Xin : j->Gout;
  *nb = j->transposed ? q->C : q->O;
  *len = j->transposed ? q->H * q->W : q->L;
}

static void bw_chunk(const BwJob *j, int64_t c, int tid) {
  const Geom *q = j->q;
  mg_DType dt = j->dt;
  int64_t es = (int64_t)j->es;
  char *cols = j->WS + (int64_t)tid * q->K * q->L * es;
  char *pc = j->P ? j->P + c * j->wn * es : NULL;
  const char *D;
  int64_t nb, len;
  bias_src(j, &D, &nb, &len);
  for (int64_t s = q->N * c / j->nc; s < q->N * (c + 1) / j->nc; s++) {
    if (j->PB) j->k->bias_sums(D, s, nb, len, j->PB);
    for (int64_t gi = 0; gi < q->G; gi++) {
      int64_t in_off = ((s * q->C + gi * q->Cg) * q->H * q->W) * es;
      int64_t out_off = ((s * q->O + gi * q->Og) * q->L) * es;
      const char *xs = j->Xin + in_off, *gs = j->Gout + out_off;
      const char *wg = j->Wt + gi * q->Og * q->K * es;
      const void *B = NULL;
      if (pc || (j->GX && j->transposed)) B = columns(q, j->k, xs, cols);
      if (pc)
        mg_gemm(j->ctx, dt, CblasNoTrans, CblasTrans, q->Og, q->K, q->L, gs, q->L, B, q->L,
             1.0, pc + gi * q->Og * q->K * es, q->K);
      if (!j->GX) continue;
      if (j->transposed) {
        mg_gemm(j->ctx, dt, CblasNoTrans, CblasNoTrans, q->Og, q->L, q->K, wg, q->K, B,
             q->L, 0.0, j->GX + out_off, q->L);
      } else {
        mg_gemm(j->ctx, dt, CblasTrans, CblasNoTrans, q->K, q->L, q->Og, wg, q->K, gs, q->L,
             0.0, cols, q->L);
        j->k->from_cols(q, cols, j->GX + in_off);
      }
    }
  }
}

static int backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g, mg_Tensor **grads,
                    int transposed) {
  mg_Tensor *x = n->saved[0], *w = n->saved[1], *gc = NULL, *ws = NULL;
  mg_Tensor *gx = NULL, *gw = NULL, *gb = NULL, *part = NULL, *pb = NULL;
  mg_Tensor *xs = NULL; /* a contiguous copy of x the fallback made, or NULL */
  mg_DType dt = x->dtype;
  mg_Conv2dOpts o = node_opts(n, transposed);
  Geom q;
  int st = transposed ? check_transposed(ctx, x, w, NULL, &o, &q)
                      : check(ctx, x, w, NULL, &o, &q);
  if (st) return st;
  int need_x = mg_node_needs(n, 0), need_w = mg_node_needs(n, 1);
  int need_b = n->ninputs > 2 && mg_node_needs(n, 2);
  size_t es = mg_dtype_size(dt);
  int64_t nc = q.N < CONV_MAX_CHUNKS ? q.N : CONV_MAX_CHUNKS;
  int64_t wn = q.O * q.K, nb = transposed ? q.C : q.O;
  int nt = batch_threads(ctx, nc, 4.0 * q.O * q.K * q.L * (double)(q.N / (nc ? nc : 1)));
  int dnnl = !transposed && mg_conv_dnnl_usable(ctx, dt) && q.N > 0 && q.O > 0 && q.K > 0;
  /* oneDNN reads a channels-last x and g as they lie (the forward saved x
   * so only when it ran there); the im2col path wants both contiguous. */
  if ((st = mg_nn_prep_layout(ctx, &gc, g, dt, dnnl && mg_nn_channels_last(g, dt))))
    return st;
  if (dnnl) {
    mg_ConvShape cs = dnnl_shape(&q);
    int took;
    if ((st = mg_conv_dnnl_backward(ctx, &cs, n->ninputs > 2, x, w, gc,
                                    need_x ? &gx : NULL, need_w ? &gw : NULL,
                                    need_b ? &gb : NULL, &took)))
      goto fail;
    if (took) goto done;
  }
  if (!mg_is_contiguous(gc) || !mg_is_contiguous(x)) {
    /* oneDNN did not take it: the fallback's operands are contiguous. */
    mg_Tensor *g2 = NULL, *x2 = NULL;
    if ((st = mg_nn_prep(ctx, &g2, gc, dt)) || (st = mg_nn_prep(ctx, &x2, x, dt))) {
      mg_tensor_decref(g2);
      goto fail;
    }
    mg_tensor_decref(gc);
    gc = g2;
    x = xs = x2;
  }
  if (need_x && (st = mg_full(ctx, &gx, dt, 4, x->shape, 0))) goto fail;
  if (need_w) {
    int64_t psz = nc * wn;
    if ((st = mg_full(ctx, &gw, dt, 4, w->shape, 0)) ||
        (st = mg_full(ctx, &part, dt, 1, &psz, 0)))
      goto fail;
  }
  if (need_b) {
    int64_t pbn = q.N * nb;
    if ((st = mg_full(ctx, &gb, dt, 1, &nb, 0)) ||
        (st = mg_alloc_tensor(ctx, &pb, MG_F64, 1, &pbn)))
      goto fail;
  }
  BwJob job = {&q, dt, kernels_for(dt), es, transposed, nc, wn,
               transposed ? mg_data(gc) : mg_data(x), mg_data(w),
               transposed ? mg_data(x) : mg_data(gc),
               gx ? mg_data(gx) : NULL, part ? mg_data(part) : NULL, NULL,
               pb ? mg_data(pb) : NULL, ctx};
  int ran = 0; /* the chunks took the bias sums */
  if ((need_x || need_w) && q.N > 0 && q.K > 0 && q.L > 0) {
    ran = 1;
    /* [nt, K, L], not its product: the shape check bounds the size. */
    int64_t wsz[3] = {nt, q.K, q.L};
    if ((st = mg_alloc_tensor(ctx, &ws, dt, 3, wsz))) goto fail;
    job.WS = mg_data(ws);
    char *P = job.P;
    if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
      for (int64_t c = 0; c < nc; c++) bw_chunk(&job, c, omp_get_thread_num());
    } else { /* outside any OpenMP construct, so that BLAS may thread */
      mg_blas_threads_for(ctx, q.Og, q.K, q.L);
      for (int64_t c = 0; c < nc; c++) bw_chunk(&job, c, 0);
    }
    if (P) job.k->sum_partials(mg_data(gw), P, nc, wn);
  }
  if (gb) { /* per-sample sums added in sample order, in double */
    double *PB = mg_data(pb);
    const char *D;
    int64_t len;
    bias_src(&job, &D, &nb, &len);
    if (!ran)
      for (int64_t s = 0; s < q.N; s++) job.k->bias_sums(D, s, nb, len, PB);
    job.k->bias_grad(mg_data(gb), PB, q.N, nb);
  }
done:
  mg_tensor_decref(gc);
  mg_tensor_decref(xs);
  mg_tensor_decref(ws);
  mg_tensor_decref(part);
  mg_tensor_decref(pb);
  grads[0] = gx;
  grads[1] = gw;
  if (n->ninputs > 2) grads[2] = gb;
  return MG_OK;
fail:
  mg_tensor_decref(gc);
  mg_tensor_decref(xs);
  mg_tensor_decref(ws);
  mg_tensor_decref(part);
  mg_tensor_decref(pb);
  mg_tensor_decref(gx);
  mg_tensor_decref(gw);
  mg_tensor_decref(gb);
  return st;
}

static int conv2d_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  return backward(ctx, n, g, grads, 0);
}

static int conv_transpose2d_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                                     mg_Tensor **grads) {
  return backward(ctx, n, g, grads, 1);
}

/* ---- forward -------------------------------------------------------------- */

/* One sample, the result filled with the bias first: conv2d's output
 * += w · columns(x); conv_transpose2d's output (the conv view's input)
 * += col2im(wᵀ · x). */
typedef struct {
  const Geom *q;
  mg_DType dt;             /* for the gemms */
  const Kernels *k;        /* the element kernels of dt */
  size_t es;
  int transposed;
  const char *X, *Wt, *B;
  char *R, *WS;
  const mg_Context *ctx;
} FwJob;

static void fw_sample(const FwJob *j, int64_t s, int tid) {
  const Geom *q = j->q;
  mg_DType dt = j->dt;
  int64_t es = (int64_t)j->es;
  char *cols = j->WS + (int64_t)tid * q->K * q->L * es;
  if (j->transposed) j->k->fill_bias(j->R, j->B, s, q->C, q->H * q->W);
  else j->k->fill_bias(j->R, j->B, s, q->O, q->L);
  if (q->K == 0 || q->L == 0 || q->Og == 0) return; /* the bias alone */
  for (int64_t gi = 0; gi < q->G; gi++) {
    int64_t in_off = ((s * q->C + gi * q->Cg) * q->H * q->W) * es;
    int64_t out_off = ((s * q->O + gi * q->Og) * q->L) * es;
    const char *wg = j->Wt + gi * q->Og * q->K * es;
    if (j->transposed) {
      mg_gemm(j->ctx, dt, CblasTrans, CblasNoTrans, q->K, q->L, q->Og, wg, q->K,
           j->X + out_off, q->L, 0.0, cols, q->L);
      j->k->from_cols(q, cols, j->R + in_off);
    } else {
      const void *cm = columns(q, j->k, j->X + in_off, cols);
      mg_gemm(j->ctx, dt, CblasNoTrans, CblasNoTrans, q->Og, q->L, q->K, wg, q->K,
           cm, q->L, 1.0, j->R + out_off, q->L);
    }
  }
}

static int forward(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, mg_Tensor *w,
                   mg_Tensor *b, const mg_Conv2dOpts *o, int transposed) {
  Geom q;
  int st = transposed ? check_transposed(ctx, x, w, b, o, &q)
                      : check(ctx, x, w, b, o, &q);
  if (st) return st;
  mg_DType dt = mg_nn_dtype(mg_nn_dtype(x->dtype, w->dtype), b ? b->dtype : x->dtype);
  mg_Tensor *xc = NULL, *wc = NULL, *bc = NULL, *r = NULL, *ws = NULL;
  mg_Tensor *ins[3] = {x, w, b};
  int64_t oshape[4] = {q.N, q.O, q.Ho, q.Wo};
  if (transposed) {
    oshape[1] = q.C;
    oshape[2] = q.H;
    oshape[3] = q.W;
  }
  int nt = batch_threads(ctx, q.N, 2.0 * q.O * q.K * q.L);
  int dnnl = !transposed && mg_conv_dnnl_usable(ctx, dt) && q.N > 0 && q.O > 0 && q.K > 0;
  /* A channels-last input goes to oneDNN as it lies, and the output comes
   * out channels last too (PyTorch's rule); the im2col path below wants
   * both contiguous. */
  int cl = dnnl && mg_nn_channels_last(x, dt);
  int mode = mg_set_grad_enabled(ctx, 0);
  if ((st = mg_nn_prep_layout(ctx, &xc, x, dt, cl)) || (st = mg_nn_prep(ctx, &wc, w, dt)) ||
      (b && (st = mg_nn_prep(ctx, &bc, b, dt))) ||
      (st = mg_alloc_layout(ctx, &r, dt, 4, oshape, cl)))
    goto fail;
  int took = 0;
  if (dnnl) {
    mg_ConvShape cs = dnnl_shape(&q);
    if ((st = mg_conv_dnnl_forward(ctx, &cs, xc, wc, bc, r, &took))) goto fail;
  }
  if (!took && cl) { /* oneDNN refused the geometry: NCHW for the fallback */
    mg_tensor_decref(xc);
    mg_tensor_decref(r);
    xc = r = NULL;
    if ((st = mg_nn_prep(ctx, &xc, x, dt)) || (st = mg_alloc_tensor(ctx, &r, dt, 4, oshape)))
      goto fail;
  }
  if (!took && q.N > 0 && oshape[1] > 0 && oshape[2] * oshape[3] > 0) {
    int64_t wsz[3] = {nt, q.K, q.L}; /* the shape check bounds the size */
    if ((st = mg_alloc_tensor(ctx, &ws, dt, 3, wsz))) goto fail;
  }
  mg_set_grad_enabled(ctx, mode);
  size_t es = mg_dtype_size(dt);
  if (ws) {
    FwJob job = {&q, dt, kernels_for(dt), es, transposed, mg_data(xc), mg_data(wc),
                 bc ? mg_data(bc) : NULL, mg_data(r), mg_data(ws), ctx};
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
    if ((st = mg_record(ctx, r, transposed ? "conv_transpose2d" : "conv2d",
                        transposed ? conv_transpose2d_backward : conv2d_backward,
                        b ? 3 : 2, ins, &n)) ||
        (st = mg_save(ctx, n, 0, xc)) || (st = mg_save(ctx, n, 1, wc)))
      goto fail;
    save_opts(n, o, transposed);
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

int mg_conv2d(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, mg_Tensor *w,
              mg_Tensor *b, const mg_Conv2dOpts *o) {
  return forward(ctx, out, x, w, b, o, 0);
}

int mg_conv_transpose2d(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                        mg_Tensor *w, mg_Tensor *b, const mg_Conv2dOpts *o) {
  return forward(ctx, out, x, w, b, o, 1);
}
