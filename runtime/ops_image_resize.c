/*
 * ops_image_resize.c — resizing images (mg_image_resize, mg_imageops.h):
 * nearest, bilinear and bicubic, with or without antialias, as
 * torch.nn.functional.interpolate (PyTorch 1.13) computes them on CPU.
 *
 * Every mode is separable: a plan per axis lists, for each output row or
 * column, its input taps and their weights (computed once per call, not
 * per pixel); one pass along rows fills a temporary plane of input rows
 * by output columns, one pass along columns sums its rows into the
 * output. PyTorch sums in the same order (along the width first, each
 * output as w0 x0 + w1 x1 + ... from its first tap, with fused
 * multiply-adds), in float32 for float32 and uint8 images and in float64
 * for float64 ones, so this code does too: the weights are computed in
 * double with every intermediate rounded to float32 where PyTorch's float
 * code rounds (round_to), and the sums run in float (mg_image_madd) or
 * double.
 */
#pragma GCC optimize("fp-contract=off")
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mg_imageops.h"
#include "mg_internal.h"

/* ---- per-axis plans ---------------------------------------------------------- */

typedef struct {
  int64_t in, out;   /* sizes along the axis */
  int identity;      /* out == in and the pass can be skipped */
  int K;             /* most taps of an output (room in the arrays) */
  int kmax;          /* most taps any output uses */
  int *n;            /* [out] taps of each output */
  int64_t *idx;      /* [out * K] input index of each tap */
  double *wd;        /* [out * K] weights (float64 images) */
  float *wf;         /* [out * K] the same as float (float32, uint8) */
  int32_t *ti;       /* [kmax * out] idx by tap then output (the float row */
  float *tw;         /* pass's layout); unused taps weigh 0 */
} Axis;

static void axis_free(Axis *a) {
  free(a->n);
  free(a->idx);
  free(a->wd);
  free(a->wf);
  free(a->ti);
  free(a->tw);
}

/* x rounded to float32 when f32 (a float32 intermediate of PyTorch's), else
 * x itself. Sums and products of two floats are exact in double, so
 * rounding each one emulates float arithmetic. */
static inline double round_to(double x, int f32) { return f32 ? (double)(float)x : x; }

/* Keys' cubic convolution for |x| < 1 and 1 <= |x| < 2, parameter a (PyTorch's
 * cubic_convolution1 and cubic_convolution2, operation by operation). */
static double cubic1(double x, double a, int f) {
  double v = round_to(round_to(round_to((a + 2) * x, f) - (a + 3), f) * x, f);
  return round_to(round_to(v * x, f) + 1, f);
}
static double cubic2(double x, double a, int f) {
  double v = round_to(round_to(round_to(a * x, f) - 5 * a, f) * x, f);
  return round_to(round_to(round_to(v + 8 * a, f) * x, f) - 4 * a, f);
}

/* The antialias filters, PIL's: the triangle (bilinear) and Keys' cubic
 * with a = -0.5 (bicubic). */
static double aa_filter(double x, mg_Interp mode, int f) {
  x = fabs(x);
  if (mode == MG_INTERP_BILINEAR) return x < 1 ? round_to(1 - x, f) : 0;
  if (x < 1) return cubic1(x, -0.5, f);
  if (x < 2) return cubic2(x, -0.5, f);
  return 0;
}

static int axis_alloc(Axis *a, int K) {
  size_t m = (size_t)a->out * (size_t)K;
  a->K = K;
  a->n = calloc((size_t)a->out, sizeof *a->n);
  a->idx = calloc(m, sizeof *a->idx);
  a->wd = calloc(m, sizeof *a->wd);
  a->wf = calloc(m, sizeof *a->wf);
  return a->n && a->idx && a->wd && a->wf ? MG_OK : MG_ENOMEM;
}

static inline int64_t clamp_index(int64_t i, int64_t n) {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/* PyTorch's _compute_weights_aa: the filter stretched by the downscale
 * factor, centred on each output pixel, normalized to sum to one. */
static void plan_aa(Axis *a, mg_Interp mode, int f) {
  double scale = round_to((double)a->in / (double)a->out, f);
  double half = mode == MG_INTERP_BILINEAR ? 1 : 2;
  double support = scale >= 1 ? round_to(half * scale, f) : half;
  double invscale = scale >= 1 ? round_to(1.0 / scale, f) : 1;
  for (int64_t o = 0; o < a->out; o++) {
    double center = round_to(scale * ((double)o + 0.5), f);
    int64_t lo = (int64_t)(round_to(center - support, f) + 0.5);
    int64_t hi = (int64_t)(round_to(center + support, f) + 0.5);
    if (lo < 0) lo = 0;
    if (hi > a->in) hi = a->in;
    int64_t size = hi - lo;
    if (size > a->K) size = a->K;
    if (size < 0) size = 0;
    double *w = a->wd + o * a->K, total = 0;
    for (int64_t j = 0; j < size; j++) {
      double d = round_to((double)(j + lo) - center, f);
      w[j] = aa_filter(round_to((d + 0.5) * invscale, f), mode, f);
      total = round_to(total + w[j], f);
      a->idx[o * a->K + j] = j + lo;
    }
    for (int64_t j = 0; j < size && total != 0; j++) w[j] = round_to(w[j] / total, f);
    a->n[o] = (int)size;
  }
}

/* PyTorch's compute_indices_weights_linear (two taps, the second clamped
 * to the last input) and compute_indices_weights_cubic (four taps, each
 * clamped, Keys' cubic with a = -0.75), from the source position
 * scale (o + 0.5) - 0.5. */
static void plan_interp(Axis *a, mg_Interp mode, int f) {
  double scale = round_to((double)a->in / (double)a->out, f);
  for (int64_t o = 0; o < a->out; o++) {
    double src = round_to(scale * ((double)o + 0.5) - 0.5, f);
    int64_t *ix = a->idx + o * a->K;
    double *w = a->wd + o * a->K;
    if (mode == MG_INTERP_BILINEAR) {
      if (src < 0) src = 0;
      int64_t i0 = (int64_t)src;
      double l1 = round_to(src - (double)i0, f);
      ix[0] = i0;
      ix[1] = i0 < a->in - 1 ? i0 + 1 : i0;
      w[0] = round_to(1 - l1, f);
      w[1] = l1;
      a->n[o] = 2;
    } else {
      int64_t i0 = (int64_t)floor(src);
      double t = round_to(src - (double)i0, f), t2 = round_to(1 - t, f);
      w[0] = cubic2(round_to(t + 1, f), -0.75, f);
      w[1] = cubic1(t, -0.75, f);
      w[2] = cubic1(t2, -0.75, f);
      w[3] = cubic2(round_to(t2 + 1, f), -0.75, f);
      for (int k = 0; k < 4; k++) ix[k] = clamp_index(i0 - 1 + k, a->in);
      a->n[o] = 4;
    }
  }
}

/* torch's "nearest": floor(o * scale) with a float32 scale, clamped (the
 * scale rounds to float32 for every dtype, as in PyTorch). */
static void plan_nearest(Axis *a) {
  float scale = (float)a->in / (float)a->out;
  for (int64_t o = 0; o < a->out; o++) {
    a->idx[o] = a->out == 2 * a->in ? o >> 1
                                   : clamp_index((int64_t)floorf((float)o * scale), a->in);
    a->wd[o] = 1;
    a->n[o] = 1;
  }
}

static int axis_plan(Axis *a, int64_t in, int64_t out, mg_Interp mode, int aa,
                     int f32) {
  memset(a, 0, sizeof *a);
  a->in = in;
  a->out = out;
  a->identity = in == out;
  int K = 1;
  if (mode == MG_INTERP_BILINEAR || mode == MG_INTERP_BICUBIC) {
    K = mode == MG_INTERP_BILINEAR ? 2 : 4;
    if (aa) {
      /* PyTorch's bound, ceil(support) * 2 + 1, plus the one tap its
       * rounding can add */
      double scale = round_to((double)in / (double)out, f32);
      double support = scale >= 1 ? round_to(K / 2.0 * scale, f32) : K / 2.0;
      K = (int)ceil(support) * 2 + 2;
    }
  }
  if (axis_alloc(a, K)) return MG_ENOMEM;
  if (mode == MG_INTERP_NEAREST) plan_nearest(a);
  else if (aa) plan_aa(a, mode, f32);
  else plan_interp(a, mode, f32);
  for (int64_t m = 0; m < out * (int64_t)K; m++) a->wf[m] = (float)a->wd[m];
  a->kmax = 1;
  for (int64_t o = 0; o < out; o++)
    if (a->n[o] > a->kmax) a->kmax = a->n[o];
  /* the transposed copy: a row pass then walks the outputs in the inner
   * loop, which vectorises (a gather per tap) */
  size_t m = (size_t)a->kmax * (size_t)out;
  if (!(a->ti = malloc(m * sizeof *a->ti)) || !(a->tw = malloc(m * sizeof *a->tw)))
    return MG_ENOMEM;
  for (int k = 0; k < a->kmax; k++)
    for (int64_t o = 0; o < out; o++) {
      int used = k < a->n[o];
      a->ti[k * out + o] = (int32_t)a->idx[o * K + (used ? k : 0)];
      a->tw[k * out + o] = used ? a->wf[o * K + k] : 0.0f;
    }
  return MG_OK;
}

/* ---- the passes ------------------------------------------------------------------
 * Along rows: d[o] = sum_k s[idx[o, k]] w[o, k], from the first tap, for
 * one row. Along columns: d[j] = sum_k rows[idx[k]][j] w[k], for one
 * output row (the loop over j vectorises). */

/* Taps an output does not use weigh 0: adding s * 0 leaves the sum as it
 * is, so every output runs kmax taps and the loop over outputs is
 * uniform. */
static void row_pass_f32(float *restrict d, const float *restrict s, const Axis *a) {
  int64_t n = a->out;
  for (int64_t o = 0; o < n; o++) d[o] = s[a->ti[o]] * a->tw[o];
  for (int k = 1; k < a->kmax; k++) {
    const int32_t *ix = a->ti + k * n;
    const float *w = a->tw + k * n;
    for (int64_t o = 0; o < n; o++) d[o] = mg_image_madd(s[ix[o]], w[o], d[o]);
  }
}
/* f64 twin of row_pass_f32 (output by output, in the plan's own layout:
 * float64 images are rare, and its sums stop at each output's taps) */
static void row_pass_f64(double *d, const double *s, const Axis *a) {
  for (int64_t o = 0; o < a->out; o++) {
    const int64_t *ix = a->idx + o * a->K;
    const double *w = a->wd + o * a->K;
    double acc = s[ix[0]] * w[0];
    for (int k = 1; k < a->n[o]; k++) acc += s[ix[k]] * w[k];
    d[o] = acc;
  }
}

static void col_pass_f32(float *d, const float *const *rows, const Axis *a,
                         int64_t o, int64_t n) {
  const int64_t *ix = a->idx + o * a->K;
  const float *w = a->wf + o * a->K;
  const float *r0 = rows[ix[0]];
  float w0 = w[0];
  for (int64_t j = 0; j < n; j++) d[j] = r0[j] * w0;
  for (int k = 1; k < a->n[o]; k++) {
    const float *r = rows[ix[k]];
    float wk = w[k];
    for (int64_t j = 0; j < n; j++) d[j] = mg_image_madd(r[j], wk, d[j]);
  }
}
/* f64 twin of col_pass_f32 */
static void col_pass_f64(double *d, const double *const *rows, const Axis *a,
                         int64_t o, int64_t n) {
  const int64_t *ix = a->idx + o * a->K;
  const double *w = a->wd + o * a->K;
  const double *r0 = rows[ix[0]];
  double w0 = w[0];
  for (int64_t j = 0; j < n; j++) d[j] = r0[j] * w0;
  for (int k = 1; k < a->n[o]; k++) {
    const double *r = rows[ix[k]];
    double wk = w[k];
    for (int64_t j = 0; j < n; j++) d[j] += r[j] * wk;
  }
}

/* A float row as uint8: rounded half to even, as torch.round, after
 * clamping to [0, 255] (PyTorch clamps bicubic results only; bilinear
 * ones cannot leave the range but by rounding error, which the clamp
 * absorbs the same way). */
static void store_u8(uint8_t *d, const float *s, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    float v = s[j] < 0 ? 0 : s[j] > 255 ? 255 : s[j];
    d[j] = (uint8_t)rintf(v);
  }
}

/* ---- one plane ---------------------------------------------------------------------
 * Scratch for a thread: tmp holds the rows the column pass needs, as
 * input rows by output columns; rows[y] points at row y of the input (in
 * compute precision) after the row pass; acc is one output row, and line
 * one uint8 input row as float. */

typedef struct {
  char *tmp;        /* in.H x out_w elements of the compute dtype */
  const void **rows; /* [in.H] */
  char *acc;        /* out_w elements of the compute dtype */
  float *line;      /* in.W floats */
} Scratch;

static void resize_plane_f32(const mg_ImageIn *in, const char *src, char *dst,
                             const Axis *ax, const Axis *ay, const char *need,
                             Scratch *sc) {
  int64_t ow = ax->out, oh = ay->out;
  /* along rows, into tmp (or in place for a row the width pass leaves
   * alone) */
  for (int64_t y = 0; y < in->H; y++) {
    if (!need[y]) continue;
    const float *s = (const float *)src + y * in->sh;
    float *t = (float *)sc->tmp + y * ow;
    if (ax->identity) sc->rows[y] = s;
    else row_pass_f32(t, s, ax), sc->rows[y] = t;
  }
  /* along columns, into the output */
  for (int64_t o = 0; o < oh; o++) {
    float *d = (float *)dst + o * ow;
    if (ay->identity) memcpy(d, sc->rows[o], (size_t)ow * sizeof *d);
    else col_pass_f32(d, (const float *const *)sc->rows, ay, o, ow);
  }
}
/* f64 twin of resize_plane_f32 */
static void resize_plane_f64(const mg_ImageIn *in, const char *src, char *dst,
                             const Axis *ax, const Axis *ay, const char *need,
                             Scratch *sc) {
  int64_t ow = ax->out, oh = ay->out;
  /* along rows, into tmp (or in place for a row the width pass leaves
   * alone) */
  for (int64_t y = 0; y < in->H; y++) {
    if (!need[y]) continue;
    const double *s = (const double *)src + y * in->sh;
    double *t = (double *)sc->tmp + y * ow;
    if (ax->identity) sc->rows[y] = s;
    else row_pass_f64(t, s, ax), sc->rows[y] = t;
  }
  /* along columns, into the output */
  for (int64_t o = 0; o < oh; o++) {
    double *d = (double *)dst + o * ow;
    if (ay->identity) memcpy(d, sc->rows[o], (size_t)ow * sizeof *d);
    else col_pass_f64(d, (const double *const *)sc->rows, ay, o, ow);
  }
}
/* u8 sibling of resize_plane_f32: computes in float32 as PyTorch does,
 * each input row converted once (a pixel feeds several taps), each output
 * row rounded back through acc. */
static void resize_plane_u8(const mg_ImageIn *in, const char *src, char *dst,
                            const Axis *ax, const Axis *ay, const char *need,
                            Scratch *sc) {
  int64_t ow = ax->out, oh = ay->out;
  for (int64_t y = 0; y < in->H; y++) {
    if (!need[y]) continue;
    const uint8_t *s = (const uint8_t *)src + y * in->sh;
    float *t = (float *)sc->tmp + y * ow;
    float *line = ax->identity ? t : sc->line;
    for (int64_t j = 0; j < in->W; j++) line[j] = s[j];
    if (!ax->identity) row_pass_f32(t, line, ax);
    sc->rows[y] = t;
  }
  for (int64_t o = 0; o < oh; o++) {
    float *d = (float *)sc->acc;
    const float *res = d;
    if (ay->identity) res = sc->rows[o];
    else col_pass_f32(d, (const float *const *)sc->rows, ay, o, ow);
    store_u8((uint8_t *)dst + o * ow, res, ow);
  }
}

/* n rounded up to a multiple of 64 (a cache line), so that the pieces
 * of one scratch block stay aligned. */
static size_t round_up(size_t n) { return (n + 63) & ~(size_t)63; }

/* Nearest: a gather of one element per output pixel, in x's dtype. */
static void nearest_plane_f32(const mg_ImageIn *in, const char *src, char *dst,
                              const Axis *ax, const Axis *ay) {
  int64_t ow = ax->out, oh = ay->out;
  for (int64_t o = 0; o < oh; o++) {
    int64_t y = ay->idx[o];
    const float *s = (const float *)src + y * in->sh;
    float *d = (float *)dst + o * ow;
    for (int64_t j = 0; j < ow; j++) d[j] = s[ax->idx[j]];
  }
}
/* f64 twin of nearest_plane_f32 */
static void nearest_plane_f64(const mg_ImageIn *in, const char *src, char *dst,
                              const Axis *ax, const Axis *ay) {
  int64_t ow = ax->out, oh = ay->out;
  for (int64_t o = 0; o < oh; o++) {
    int64_t y = ay->idx[o];
    const double *s = (const double *)src + y * in->sh;
    double *d = (double *)dst + o * ow;
    for (int64_t j = 0; j < ow; j++) d[j] = s[ax->idx[j]];
  }
}
/* u8 twin of nearest_plane_f32 */
static void nearest_plane_u8(const mg_ImageIn *in, const char *src, char *dst,
                             const Axis *ax, const Axis *ay) {
  int64_t ow = ax->out, oh = ay->out;
  for (int64_t o = 0; o < oh; o++) {
    int64_t y = ay->idx[o];
    const uint8_t *s = (const uint8_t *)src + y * in->sh;
    uint8_t *d = (uint8_t *)dst + o * ow;
    for (int64_t j = 0; j < ow; j++) d[j] = s[ax->idx[j]];
  }
}

int mg_image_resize(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                    int64_t out_h, int64_t out_w, mg_Interp mode,
                    int antialias) {
  const char *op = "resize";
  mg_ImageIn in;
  mg_Tensor *r = NULL;
  Axis ax, ay;
  memset(&ax, 0, sizeof ax);
  memset(&ay, 0, sizeof ay);
  char *need = NULL, *scratch = NULL;
  int st = mg_image_in(ctx, op, x, &in);
  if (st) goto done;
  if (mode < 0 || mode >= MG_NINTERP) {
    st = mg_error(ctx, MG_EARG, "%s: unknown interpolation mode %d", op, (int)mode);
    goto done;
  }
  if ((st = mg_image_check_size(ctx, op, out_h, out_w))) goto done;
  if (mode == MG_INTERP_NEAREST) antialias = 0;
  int f32 = in.dt != MG_F64;
  if (axis_plan(&ax, in.W, out_w, mode, antialias, f32) ||
      axis_plan(&ay, in.H, out_h, mode, antialias, f32)) {
    st = mg_error(ctx, MG_ENOMEM, "%s: not enough memory for the weights", op);
    goto done;
  }
  if ((st = mg_image_out(ctx, &r, &in, in.dt, in.C, out_h, out_w))) goto done;
  int64_t planes = in.N * in.C;
  int nt = mg_image_threads(ctx, planes, planes * out_h * out_w);
  size_t cs = in.dt == MG_F64 ? sizeof(double) : sizeof(float);
  size_t tmp_bytes = round_up((size_t)(in.H * out_w) * cs);
  size_t rows_bytes = round_up((size_t)in.H * sizeof(void *));
  size_t acc_bytes = round_up((size_t)out_w * cs);
  size_t line_bytes = round_up((size_t)in.W * sizeof(float));
  size_t per = tmp_bytes + rows_bytes + acc_bytes + line_bytes;
  need = calloc((size_t)in.H, 1);
  if (mode != MG_INTERP_NEAREST &&
      (!need || !(scratch = malloc(per * (size_t)nt)))) {
    st = mg_error(ctx, MG_ENOMEM, "%s: not enough memory for %zu bytes of "
                  "scratch", op, per * (size_t)nt);
    goto done;
  }
  /* the input rows the column pass reads */
  for (int64_t o = 0; need && o < out_h; o++)
    for (int k = 0; k < ay.n[o]; k++) need[ay.idx[o * ay.K + k]] = 1;
  size_t es = mg_dtype_size(in.dt);
  char *dst = mg_data(r);
  void (*nearest_plane)(const mg_ImageIn *, const char *, char *, const Axis *,
                        const Axis *) =
      in.dt == MG_U8 ? nearest_plane_u8 : in.dt == MG_F32 ? nearest_plane_f32 : nearest_plane_f64;
  void (*resize_plane)(const mg_ImageIn *, const char *, char *, const Axis *,
                       const Axis *, const char *, Scratch *) =
      in.dt == MG_U8 ? resize_plane_u8 : in.dt == MG_F32 ? resize_plane_f32 : resize_plane_f64;
  MG_PARALLEL_FOR(nt, for (int64_t p = 0; p < planes; p++) {
    const char *src = mg_image_plane(&in, p / in.C, p % in.C);
    char *d = dst + (size_t)(p * out_h * out_w) * es;
    if (mode == MG_INTERP_NEAREST) {
      nearest_plane(&in, src, d, &ax, &ay);
      continue;
    }
    char *base = scratch + per * (size_t)omp_get_thread_num();
    Scratch sc = {base, (const void **)(base + tmp_bytes), base + tmp_bytes + rows_bytes,
                  (float *)(base + tmp_bytes + rows_bytes + acc_bytes)};
    resize_plane(&in, src, d, &ax, &ay, need, &sc);
  });
  *out = r, r = NULL;
done:
  axis_free(&ax);
  axis_free(&ay);
  free(need);
  free(scratch);
  mg_image_in_free(&in);
  mg_tensor_decref(r);
  return st;
}
