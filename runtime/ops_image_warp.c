/*
 * ops_image_warp.c — affine warps of images (mg_image_warp,
 * mg_imageops.h), the sampler under F.affine, F.rotate, RandomAffine and
 * RandomRotation.
 *
 * torchvision builds an affine grid (_gen_affine_grid) and calls
 * grid_sample (zeros padding, align_corners=False), adding a channel of
 * ones whose sampled value, the weight that fell inside the image, blends
 * in the fill color. This file computes the same per output pixel,
 * without the grid: the normalized coordinate
 *   g = x (t0 / (W/2)) + y (t1 / (W/2)) + t2 / (W/2)
 * (x, y the output pixel's offset from the output's centre), then
 * grid_sample's unnormalization (g + 1) W/2 - 1/2 and its bilinear
 * weights, in float32 for float32 and uint8 images (float64 for
 * float64), operation by operation as PyTorch's CPU kernels order them,
 * so that results agree to rounding.
 */
#pragma GCC optimize("fp-contract=off")
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mg_imageops.h"
#include "mg_internal.h"

/* One image's map in float32, as torchvision's grid: the rows of the
 * normalized-grid matrix (theta divided by W/2 and H/2) and grid_sample's
 * unnormalization scales W/2, H/2. */
typedef struct {
  float a[3], b[3];  /* g_x = a0 x + a1 y + a2, g_y = b0 x + b1 y + b2 */
  float sx, sy;      /* W / 2, H / 2 */
} Map;

static void make_map(Map *m, const double *t, int64_t H, int64_t W) {
  for (int k = 0; k < 3; k++) {
    m->a[k] = (float)t[k] / (float)(0.5 * (double)W);
    m->b[k] = (float)t[3 + k] / (float)(0.5 * (double)H);
  }
  m->sx = (float)W / 2;
  m->sy = (float)H / 2;
}

/* The four neighbours of a sample point and their weights; a neighbour
 * outside the image has off -1 (its value counts as zero). */
typedef struct {
  int64_t off[4];  /* nw, ne, sw, se: row * sh + column, or -1 */
  double w[4];     /* their bilinear weights (float32-rounded for f32) */
  int64_t near;    /* nearest: row * sh + column, or -1 */
} Tap;

static inline int64_t inside(double x, double y, int64_t W, int64_t H, int64_t sh) {
  return x >= 0 && x < (double)W && y >= 0 && y < (double)H
             ? (int64_t)y * sh + (int64_t)x : -1;
}

/* The offsets of the four pixels around (xw, yn), the top-left one. */
static inline void corners(Tap *tp, double xw, double yn, int64_t H, int64_t W, int64_t sh) {
  tp->off[0] = inside(xw, yn, W, H, sh);
  tp->off[1] = inside(xw + 1, yn, W, H, sh);
  tp->off[2] = inside(xw, yn + 1, W, H, sh);
  tp->off[3] = inside(xw + 1, yn + 1, W, H, sh);
}

/* The taps of output pixel (i, j) of an oh x ow output, in float32 as
 * torchvision computes them (float32 and uint8 images). */
static void tap_f32(Tap *tp, const Map *m, int64_t i, int64_t j, int64_t oh,
                  int64_t ow, int64_t H, int64_t W, int64_t sh, mg_Interp mode) {
  float x = (float)((double)j - (double)ow * 0.5 + 0.5);
  float y = (float)((double)i - (double)oh * 0.5 + 0.5);
  float gx = x * m->a[0] + y * m->a[1] + m->a[2];
  float gy = x * m->b[0] + y * m->b[1] + m->b[2];
  float ix = mg_image_madd(gx + 1.0f, m->sx, -0.5f);
  float iy = mg_image_madd(gy + 1.0f, m->sy, -0.5f);
  if (mode == MG_INTERP_NEAREST) {
    tp->near = inside(nearbyintf(ix), nearbyintf(iy), W, H, sh);
    return;
  }
  float xw = floorf(ix), yn = floorf(iy);
  float w = ix - xw, e = 1.0f - w, n = iy - yn, s = 1.0f - n;
  tp->w[0] = s * e, tp->w[1] = s * w, tp->w[2] = n * e, tp->w[3] = n * w;
  corners(tp, xw, yn, H, W, sh);
}

/* f64 twin of tap_f32, in pixel coordinates directly (torchvision's
 * detour through the normalized grid only adds rounding): the identity
 * map then reads every pixel exactly. */
static void tap_f64(Tap *tp, const double *t, int64_t i, int64_t j, int64_t oh,
                  int64_t ow, int64_t H, int64_t W, int64_t sh, mg_Interp mode) {
  double u = (double)j - (double)(ow - 1) / 2, v = (double)i - (double)(oh - 1) / 2;
  double ix = t[0] * u + t[1] * v + t[2] + (double)(W - 1) / 2;
  double iy = t[3] * u + t[4] * v + t[5] + (double)(H - 1) / 2;
  if (mode == MG_INTERP_NEAREST) {
    tp->near = inside(nearbyint(ix), nearbyint(iy), W, H, sh);
    return;
  }
  double xw = floor(ix), yn = floor(iy);
  double w = ix - xw, e = 1.0 - w, n = iy - yn, s = 1.0 - n;
  tp->w[0] = s * e, tp->w[1] = s * w, tp->w[2] = n * e, tp->w[3] = n * w;
  corners(tp, xw, yn, H, W, sh);
}

/* The taps of output row i (ow of them) into row: float32's from the
 * image's Map m, float64's from its theta t. */
static void taps_row_f32(Tap *row, const Map *m, const double *t, int64_t i, int64_t oh,
                         int64_t ow, int64_t H, int64_t W, int64_t sh, mg_Interp mode) {
  for (int64_t j = 0; j < ow; j++) {
    row[j].near = -1;
    tap_f32(row + j, m, i, j, oh, ow, H, W, sh, mode);
  }
}
/* f64 twin of taps_row_f32 */
static void taps_row_f64(Tap *row, const Map *m, const double *t, int64_t i, int64_t oh,
                         int64_t ow, int64_t H, int64_t W, int64_t sh, mg_Interp mode) {
  for (int64_t j = 0; j < ow; j++) {
    row[j].near = -1;
    tap_f64(row + j, t, i, j, oh, ow, H, W, sh, mode);
  }
}

/* torchvision's value at tap tp from its neighbours' values v (zero
 * outside the image), blended with fill when has_fill, in float32. */
static inline float bilinear_f32(const Tap *tp, const float v[4], int has_fill,
                               float fill) {
  float w0 = (float)tp->w[0], w1 = (float)tp->w[1], w2 = (float)tp->w[2],
        w3 = (float)tp->w[3];
  float s = v[0] * w0;
  s = mg_image_madd(v[1], w1, s);
  s = mg_image_madd(v[2], w2, s);
  s = mg_image_madd(v[3], w3, s);
  if (!has_fill) return s;
  float m = (tp->off[0] < 0 ? 0.0f : w0) + (tp->off[1] < 0 ? 0.0f : w1) +
            (tp->off[2] < 0 ? 0.0f : w2) + (tp->off[3] < 0 ? 0.0f : w3);
  return s * m + (1.0f - m) * fill;
}
/* f64 twin of bilinear_f32 */
static inline double bilinear_f64(const Tap *tp, const double v[4], int has_fill,
                                double fill) {
  double s = v[0] * tp->w[0] + v[1] * tp->w[1] + v[2] * tp->w[2] + v[3] * tp->w[3];
  if (!has_fill) return s;
  double m = (tp->off[0] < 0 ? 0.0 : tp->w[0]) + (tp->off[1] < 0 ? 0.0 : tp->w[1]) +
             (tp->off[2] < 0 ? 0.0 : tp->w[2]) + (tp->off[3] < 0 ? 0.0 : tp->w[3]);
  return s * m + (1.0 - m) * fill;
}

/* One output row of one plane p from its taps. Outside the image, the
 * nearest pixel is fill (with has_fill) or zero. */
typedef void WarpRow(void *o, const Tap *tp, int64_t n, const void *p,
                     mg_Interp mode, int has_fill, double fill);

/* u8 sibling of row_f32 (computing in float32, as torchvision) */
static void row_u8(void *ov, const Tap *tp, int64_t n, const void *pv,
                   mg_Interp mode, int has_fill, double fillv) {
  uint8_t *o = ov;
  const uint8_t *p = pv;
  float fill = (float)fillv, none = has_fill ? fill : 0.0f;
  for (int64_t j = 0; j < n; j++) {
    const Tap *t = tp + j;
    float v;
    if (mode == MG_INTERP_NEAREST) {
      v = t->near < 0 ? none : p[t->near];
    } else {
      float nb[4];
      for (int k = 0; k < 4; k++) nb[k] = t->off[k] < 0 ? 0.0f : p[t->off[k]];
      v = bilinear_f32(t, nb, has_fill, fill);
    }
    o[j] = (uint8_t)(int)rintf(v); /* v is in [0, 255]: fill is checked */
  }
}

static void row_f32(void *ov, const Tap *tp, int64_t n, const void *pv,
                    mg_Interp mode, int has_fill, double fillv) {
  float *o = ov;
  const float *p = pv;
  float fill = (float)fillv, none = has_fill ? fill : 0.0f;
  for (int64_t j = 0; j < n; j++) {
    const Tap *t = tp + j;
    if (mode == MG_INTERP_NEAREST) {
      o[j] = t->near < 0 ? none : p[t->near];
    } else {
      float nb[4];
      for (int k = 0; k < 4; k++) nb[k] = t->off[k] < 0 ? 0.0f : p[t->off[k]];
      o[j] = bilinear_f32(t, nb, has_fill, fill);
    }
  }
}
/* f64 twin of row_f32 */
static void row_f64(void *ov, const Tap *tp, int64_t n, const void *pv,
                    mg_Interp mode, int has_fill, double fillv) {
  double *o = ov;
  const double *p = pv;
  double fill = (double)fillv, none = has_fill ? fill : 0.0;
  for (int64_t j = 0; j < n; j++) {
    const Tap *t = tp + j;
    if (mode == MG_INTERP_NEAREST) {
      o[j] = t->near < 0 ? none : p[t->near];
    } else {
      double nb[4];
      for (int k = 0; k < 4; k++) nb[k] = t->off[k] < 0 ? 0.0 : p[t->off[k]];
      o[j] = bilinear_f64(t, nb, has_fill, fill);
    }
  }
}

int mg_image_warp(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                  const double *theta, int64_t ntheta, int64_t out_h,
                  int64_t out_w, mg_Interp mode, const double *fill,
                  int64_t nfill) {
  const char *op = "warp";
  mg_ImageIn in;
  mg_Tensor *r = NULL;
  Tap *taps = NULL;
  int st = mg_image_in(ctx, op, x, &in);
  if (st) goto done;
  if (mode != MG_INTERP_NEAREST && mode != MG_INTERP_BILINEAR) {
    st = mg_error(ctx, MG_EARG, "%s: interpolation must be nearest or bilinear", op);
    goto done;
  }
  if (ntheta != 1 && ntheta != in.N) {
    st = mg_error(ctx, MG_ESHAPE, "%s: %lld maps for %lld images", op,
                  (long long)ntheta, (long long)in.N);
    goto done;
  }
  for (int64_t k = 0; k < 6 * ntheta; k++)
    if (!isfinite(theta[k])) {
      st = mg_error(ctx, MG_EARG, "%s: the map of image %lld is not finite", op,
                    (long long)(k / 6) + 1);
      goto done;
    }
  if (fill && nfill != 1 && nfill != in.C) {
    st = mg_error(ctx, MG_ESHAPE, "%s: %lld fill values for an image of %lld "
                  "channels", op, (long long)nfill, (long long)in.C);
    goto done;
  }
  for (int64_t k = 0; fill && k < nfill; k++)
    if (!isfinite(fill[k]) || (in.dt == MG_U8 && !(fill[k] >= 0 && fill[k] <= 255))) {
      st = mg_error(ctx, MG_EARG, "%s: fill[%lld] = %g is not %s", op, (long long)k + 1,
                    fill[k], in.dt == MG_U8 ? "from 0 to 255 (the image is uint8)" : "finite");
      goto done;
    }
  if ((st = mg_image_check_size(ctx, op, out_h, out_w))) goto done;
  if ((st = mg_image_out(ctx, &r, &in, in.dt, in.C, out_h, out_w))) goto done;
  mg_DType dt = in.dt;
  size_t es = mg_dtype_size(dt);
  /* float32 and uint8 images map in float32, as torchvision */
  void (*taps_row)(Tap *, const Map *, const double *, int64_t, int64_t, int64_t,
                   int64_t, int64_t, int64_t, mg_Interp) =
      dt == MG_F64 ? taps_row_f64 : taps_row_f32;
  WarpRow *warp_row = dt == MG_U8 ? row_u8 : dt == MG_F32 ? row_f32 : row_f64;
  int64_t plane = out_h * out_w;
  char *dst = mg_data(r);
  int nt = mg_image_threads(ctx, in.N, in.N * in.C * plane);
  /* a row of taps per thread, shared by the channels */
  taps = malloc((size_t)nt * (size_t)out_w * sizeof *taps);
  if (!taps) {
    st = mg_error(ctx, MG_ENOMEM, "%s: not enough memory for %lld taps", op,
                  (long long)(nt * out_w));
    goto done;
  }
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < in.N; n++) {
    const double *t = theta + 6 * (ntheta == 1 ? 0 : n);
    Tap *row = taps + (size_t)omp_get_thread_num() * (size_t)out_w;
    Map m;
    make_map(&m, t, in.H, in.W);
    char *d = dst + (size_t)(n * in.C * plane) * es;
    for (int64_t i = 0; i < out_h; i++) {
      taps_row(row, &m, t, i, out_h, out_w, in.H, in.W, in.sh, mode);
      for (int64_t c = 0; c < in.C; c++) {
        const char *p = mg_image_plane(&in, n, c);
        double fv = fill ? fill[nfill == 1 ? 0 : c] : 0;
        char *o = d + (size_t)(c * plane + i * out_w) * es;
        warp_row(o, row, out_w, p, mode, fill != NULL, fv);
      }
    }
  });
  *out = r, r = NULL;
done:
  free(taps);
  mg_image_in_free(&in);
  mg_tensor_decref(r);
  return st;
}
