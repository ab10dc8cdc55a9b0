/*
 * ops_augment.c — batch-level augmentation primitives: flips, padded crops,
 * affine resampling, erasing and pasting (mg_augment.h is their manual).
 *
 * Every primitive has the same shape: check the batch and the parameter
 * tensors, read the per-sample parameters into a plain C array (they are
 * few: N or 6N numbers), allocate the output, then run one loop over the
 * samples, in parallel when the batch is large. Copies move whole rows
 * with memcpy whatever the dtype; only the fills, the horizontal flip and
 * the bilinear sampler look at element types, each a float32 function
 * with its float64 (and, for the pixel movers, uint8) twin, which the
 * primitive picks once before its loop.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_augment.h"
#include "mg_internal.h"

/* ---- shared helpers ----------------------------------------------------- */

/* Sets n contiguous elements at p to v. */
typedef void FillRun(void *p, int64_t n, double v);

static void fill_run_f32(void *p, int64_t n, double v) {
  float *f = p, fv = (float)v;
  for (int64_t i = 0; i < n; i++) f[i] = fv;
}
/* f64 twin of fill_run_f32 */
static void fill_run_f64(void *p, int64_t n, double v) {
  double *f = p, fv = (double)v;
  for (int64_t i = 0; i < n; i++) f[i] = fv;
}
/* u8 twin of fill_run_f32 (v is checked to be a uint8 value) */
static void fill_run_u8(void *p, int64_t n, double v) {
  memset(p, (uint8_t)v, (size_t)n);
}

static FillRun *fill_run_for(mg_DType dt) {
  return dt == MG_U8 ? fill_run_u8 : dt == MG_F32 ? fill_run_f32 : fill_run_f64;
}

/* Checks the batch x and makes *xc a contiguous alias or copy of it. The
 * primitives that only move pixels (u8) take uint8 images too. */
static int prep_batch(mg_Context *ctx, const char *op, mg_Tensor *x,
                      mg_Tensor **xc, int u8) {
  char buf[MG_SHAPE_BUFSZ];
  if (x->ndim != 4)
    return mg_error(ctx, MG_ESHAPE, "%s: expected a batch [N, C, H, W], got "
                    "shape %s", op, mg_shape_str(buf, sizeof buf, x->ndim, x->shape));
  if (x->dtype != MG_F32 && x->dtype != MG_F64 && !(u8 && x->dtype == MG_U8))
    return mg_error(ctx, MG_EARG, "%s: expected a %sfloat32 or float64 batch, "
                    "got %s", op, u8 ? "uint8, " : "", mg_dtype_name(x->dtype));
  if (mg_grad_enabled(ctx) && mg_requires_grad(x))
    return mg_error(ctx, MG_EARG, "%s: the batch requires grad, but "
                    "augmentation is not differentiable (pass x:detach())", op);
  return mg_contiguous(ctx, xc, x);
}

/* Reads parameter tensor t, which must have shape (ndim, shape), into *out,
 * a new array of doubles (row-major) the caller frees. */
static int read_params(mg_Context *ctx, double **out, const char *op,
                       const char *what, const mg_Tensor *t, int ndim,
                       const int64_t *shape) {
  char want[MG_SHAPE_BUFSZ], got[MG_SHAPE_BUFSZ];
  int ok = t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
  if (!ok)
    return mg_error(ctx, MG_ESHAPE, "%s: %s must have shape %s, got %s", op,
                    what, mg_shape_str(want, sizeof want, ndim, shape),
                    mg_shape_str(got, sizeof got, t->ndim, t->shape));
  int64_t n = mg_numel(t);
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  if (!v)
    return mg_error(ctx, MG_ENOMEM, "%s: not enough memory for %lld "
                    "parameters", op, (long long)n);
  for (int64_t i = 0; i < n; i++) v[i] = mg_read(t, i);
  *out = v;
  return MG_OK;
}

/* Is v an integer in [lo, hi]? (parameters arrive as doubles) */
static int int_in(double v, double lo, double hi) {
  return v == floor(v) && v >= lo && v <= hi;
}

/* Checks boxes b[4 n .. 4 n + 3] = (top, left, height, width) against an
 * H x W image. */
static int check_boxes(mg_Context *ctx, const char *op, const double *b,
                       int64_t N, int64_t H, int64_t W) {
  for (int64_t n = 0; n < N; n++) {
    const double *r = b + 4 * n;
    int empty = r[2] == 0 || r[3] == 0;
    if (!int_in(r[2], 0, (double)H) || !int_in(r[3], 0, (double)W) ||
        (!empty && (!int_in(r[0], 1, (double)(H - r[2] + 1)) ||
                    !int_in(r[1], 1, (double)(W - r[3] + 1)))))
      return mg_error(ctx, MG_EINDEX, "%s: box %lld (top %g, left %g, height "
                      "%g, width %g) does not fit in a %lldx%lld image", op,
                      (long long)n + 1, r[0], r[1], r[2], r[3], (long long)H,
                      (long long)W);
  }
  return MG_OK;
}

/* ---- flips -----------------------------------------------------------------
 * x is (N,C,H,W), mask is (N): out[n] = mask[n] ? flip(x[n]) : x[n]. */

/* d (H, W) = s (H, W) with each row reversed. */
typedef void FlipRows(const void *s, void *d, int64_t H, int64_t W);

static void flip_rows_f32(const void *s, void *d, int64_t H, int64_t W) {
  const float *a = s;
  float *b = d;
  for (int64_t i = 0; i < H; i++, a += W, b += W)
    for (int64_t j = 0; j < W; j++) b[j] = a[W - 1 - j];
}
/* f64 twin of flip_rows_f32 */
static void flip_rows_f64(const void *s, void *d, int64_t H, int64_t W) {
  const double *a = s;
  double *b = d;
  for (int64_t i = 0; i < H; i++, a += W, b += W)
    for (int64_t j = 0; j < W; j++) b[j] = a[W - 1 - j];
}
/* u8 twin of flip_rows_f32 */
static void flip_rows_u8(const void *s, void *d, int64_t H, int64_t W) {
  const uint8_t *a = s;
  uint8_t *b = d;
  for (int64_t i = 0; i < H; i++, a += W, b += W)
    for (int64_t j = 0; j < W; j++) b[j] = a[W - 1 - j];
}

int mg_flip(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
            const mg_Tensor *mask, int vertical) {
  const char *op = vertical ? "flip_vertical" : "flip_horizontal";
  mg_Tensor *xc = NULL, *r = NULL;
  double *m = NULL;
  int st = prep_batch(ctx, op, x, &xc, 1);
  if (st) return st;
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if ((st = read_params(ctx, &m, op, "mask", mask, 1, &N)) ||
      (st = mg_alloc_tensor(ctx, &r, x->dtype, 4, x->shape))) goto done;
  size_t es = mg_dtype_size(x->dtype), row = (size_t)W * es;
  const char *src = mg_data(xc);
  char *dst = mg_data(r);
  int64_t plane = H * W;
  FlipRows *flip_rows = x->dtype == MG_F32  ? flip_rows_f32
                        : x->dtype == MG_U8 ? flip_rows_u8
                                            : flip_rows_f64;
  /* one image (a data loader's sample) stays on the calling thread */
  int nt = N > 1 ? mg_threads_for(ctx, mg_numel(x)) : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t nc = 0; nc < N * C; nc++) {
    const char *s = src + (size_t)(nc * plane) * es;
    char *d = dst + (size_t)(nc * plane) * es;
    if (m[nc / C] == 0) {
      memcpy(d, s, (size_t)plane * es);
    } else if (vertical) {
      for (int64_t i = 0; i < H; i++)
        memcpy(d + (size_t)i * row, s + (size_t)(H - 1 - i) * row, row);
    } else {
      flip_rows(s, d, H, W);
    }
  }
  *out = r, r = NULL;
done:
  free(m);
  mg_tensor_decref(xc);
  mg_tensor_decref(r);
  return st;
}

/* ---- crop with padding -----------------------------------------------------
 * x is (N,C,H,W), top and left are (N), out is (N,C,out_h,out_w).
 * Output row i of sample n is padded row top[n]-1+i, i.e. input row
 * top[n]-1+i-pad_h; each row is fill, then a memcpy'd run, then fill. */

int mg_crop_with_padding(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                         const mg_Tensor *top, const mg_Tensor *left,
                         int64_t out_h, int64_t out_w, int64_t pad_h,
                         int64_t pad_w, double fill) {
  const char *op = "crop_with_padding";
  mg_Tensor *xc = NULL, *r = NULL;
  double *ty = NULL, *tx = NULL;
  int st = prep_batch(ctx, op, x, &xc, 1);
  if (st) return st;
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t PH, PW;
  if ((st = mg_padded_size(ctx, op, H, W, pad_h, pad_w, &PH, &PW))) goto done;
  if (out_h < 1 || out_w < 1 || out_h > PH || out_w > PW) {
    st = mg_error(ctx, MG_EARG, "%s: crop size %lldx%lld does not fit in the "
                  "padded %lldx%lld image", op, (long long)out_h,
                  (long long)out_w, (long long)PH, (long long)PW);
    goto done;
  }
  if (x->dtype == MG_U8 && !(fill >= 0 && fill <= 255 && fill == floor(fill))) {
    st = mg_error(ctx, MG_EARG, "%s: fill %g is not a uint8 value (an integer "
                  "from 0 to 255)", op, fill);
    goto done;
  }
  if ((st = read_params(ctx, &ty, op, "top", top, 1, &N)) ||
      (st = read_params(ctx, &tx, op, "left", left, 1, &N)))
    goto done;
  for (int64_t n = 0; n < N; n++)
    if (!int_in(ty[n], 1, (double)(PH - out_h + 1)) ||
        !int_in(tx[n], 1, (double)(PW - out_w + 1))) {
      st = mg_error(ctx, MG_EINDEX, "%s: sample %lld's offset (top %g, left "
                    "%g) is outside 1..%lld, 1..%lld", op, (long long)n + 1,
                    ty[n], tx[n], (long long)(PH - out_h + 1),
                    (long long)(PW - out_w + 1));
      goto done;
    }
  int64_t shape[4] = {N, C, out_h, out_w};
  if ((st = mg_alloc_tensor(ctx, &r, x->dtype, 4, shape))) goto done;
  size_t es = mg_dtype_size(x->dtype);
  FillRun *fill_run = fill_run_for(x->dtype);
  const char *src = mg_data(xc);
  char *dst = mg_data(r);
  int nt = N > 1 ? mg_threads_for(ctx, mg_numel(r)) : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t nc = 0; nc < N * C; nc++) {
    int64_t n = nc / C, y0 = (int64_t)ty[n] - 1 - pad_h,
            x0 = (int64_t)tx[n] - 1 - pad_w;
    /* output columns [j0, j1) read input columns x0 + j */
    int64_t j0 = x0 < 0 ? -x0 : 0, j1 = W - x0 < out_w ? W - x0 : out_w;
    if (j1 < j0) j1 = j0;
    const char *s = src + (size_t)(nc * H * W) * es;
    char *d = dst + (size_t)(nc * out_h * out_w) * es;
    for (int64_t i = 0; i < out_h; i++, d += (size_t)out_w * es) {
      int64_t y = y0 + i;
      if (y < 0 || y >= H || j0 >= out_w) {
        fill_run(d, out_w, fill);
        continue;
      }
      fill_run(d, j0, fill);
      memcpy(d + (size_t)j0 * es, s + (size_t)(y * W + x0 + j0) * es,
             (size_t)(j1 - j0) * es);
      fill_run(d + (size_t)j1 * es, out_w - j1, fill);
    }
  }
  *out = r, r = NULL;
done:
  free(ty);
  free(tx);
  mg_tensor_decref(xc);
  mg_tensor_decref(r);
  return st;
}

/* ---- affine resampling -------------------------------------------------------
 * x is (N,C,H,W), theta is (N,2,3): bilinear sampling at the inverse-mapped
 * position of every output pixel, fill outside. Coordinates are computed
 * once per pixel and shared by the C channels. */

/* One sample: d (C, H, W) = s (C, H, W) sampled at theta t (2, 3) about
 * the centre (cx, cy). */
static void affine_sample_f32(const double *t, const void *sv, void *dv, int64_t C,
                              int64_t H, int64_t W, double cx, double cy, double fill) {
  const float *s = sv;
  float *d = dv;
  int64_t plane = H * W;
  for (int64_t i = 0; i < H; i++) {
    double v = (double)i - cy;
    for (int64_t j = 0; j < W; j++) {
      double u = (double)j - cx;
      double xs = t[0] * u + t[1] * v + t[2] + cx;
      double ys = t[3] * u + t[4] * v + t[5] + cy;
      double fx = floor(xs), fy = floor(ys);
      double wx = xs - fx, wy = ys - fy;
      /* far outside: every neighbour is fill */
      if (fx < -1 || fy < -1 || fx > (double)W || fy > (double)H) {
        for (int64_t c = 0; c < C; c++) d[c * plane + i * W + j] = (float)fill;
        continue;
      }
      int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
      int in00 = x0 >= 0 && x0 < W && y0 >= 0 && y0 < H;
      int in01 = x0 + 1 >= 0 && x0 + 1 < W && y0 >= 0 && y0 < H;
      int in10 = x0 >= 0 && x0 < W && y0 + 1 >= 0 && y0 + 1 < H;
      int in11 = x0 + 1 >= 0 && x0 + 1 < W && y0 + 1 >= 0 && y0 + 1 < H;
      double w00 = (1 - wx) * (1 - wy), w01 = wx * (1 - wy);
      double w10 = (1 - wx) * wy, w11 = wx * wy;
      int64_t p = y0 * W + x0;
      for (int64_t c = 0; c < C; c++) {
        int64_t b = c * plane;
        double acc = 0;
        /* a zero weight never reads memory, so exact positions on the
         * last row/column stay in bounds */
        if (w00 != 0) acc += w00 * (in00 ? (double)s[b + p] : fill);
        if (w01 != 0) acc += w01 * (in01 ? (double)s[b + p + 1] : fill);
        if (w10 != 0) acc += w10 * (in10 ? (double)s[b + p + W] : fill);
        if (w11 != 0) acc += w11 * (in11 ? (double)s[b + p + W + 1] : fill);
        d[b + i * W + j] = (float)acc;
      }
    }
  }
}
/* f64 twin of affine_sample_f32 */
static void affine_sample_f64(const double *t, const void *sv, void *dv, int64_t C,
                              int64_t H, int64_t W, double cx, double cy, double fill) {
  const double *s = sv;
  double *d = dv;
  int64_t plane = H * W;
  for (int64_t i = 0; i < H; i++) {
    double v = (double)i - cy;
    for (int64_t j = 0; j < W; j++) {
      double u = (double)j - cx;
      double xs = t[0] * u + t[1] * v + t[2] + cx;
      double ys = t[3] * u + t[4] * v + t[5] + cy;
      double fx = floor(xs), fy = floor(ys);
      double wx = xs - fx, wy = ys - fy;
      /* far outside: every neighbour is fill */
      if (fx < -1 || fy < -1 || fx > (double)W || fy > (double)H) {
        for (int64_t c = 0; c < C; c++) d[c * plane + i * W + j] = (double)fill;
        continue;
      }
      int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
      int in00 = x0 >= 0 && x0 < W && y0 >= 0 && y0 < H;
      int in01 = x0 + 1 >= 0 && x0 + 1 < W && y0 >= 0 && y0 < H;
      int in10 = x0 >= 0 && x0 < W && y0 + 1 >= 0 && y0 + 1 < H;
      int in11 = x0 + 1 >= 0 && x0 + 1 < W && y0 + 1 >= 0 && y0 + 1 < H;
      double w00 = (1 - wx) * (1 - wy), w01 = wx * (1 - wy);
      double w10 = (1 - wx) * wy, w11 = wx * wy;
      int64_t p = y0 * W + x0;
      for (int64_t c = 0; c < C; c++) {
        int64_t b = c * plane;
        double acc = 0;
        /* a zero weight never reads memory, so exact positions on the
         * last row/column stay in bounds */
        if (w00 != 0) acc += w00 * (in00 ? (double)s[b + p] : fill);
        if (w01 != 0) acc += w01 * (in01 ? (double)s[b + p + 1] : fill);
        if (w10 != 0) acc += w10 * (in10 ? (double)s[b + p + W] : fill);
        if (w11 != 0) acc += w11 * (in11 ? (double)s[b + p + W + 1] : fill);
        d[b + i * W + j] = (double)acc;
      }
    }
  }
}

int mg_affine(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
              const mg_Tensor *theta, double fill) {
  const char *op = "affine";
  mg_Tensor *xc = NULL, *r = NULL;
  double *th = NULL;
  int st = prep_batch(ctx, op, x, &xc, 0);
  if (st) return st;
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t tshape[3] = {N, 2, 3};
  if ((st = read_params(ctx, &th, op, "theta", theta, 3, tshape))) goto done;
  for (int64_t k = 0; k < 6 * N; k++)
    if (!isfinite(th[k])) {
      st = mg_error(ctx, MG_EARG, "%s: theta of sample %lld is not finite",
                    op, (long long)(k / 6) + 1);
      goto done;
    }
  if ((st = mg_alloc_tensor(ctx, &r, x->dtype, 4, x->shape))) goto done;
  const char *src = mg_data(xc);
  char *dst = mg_data(r);
  size_t es = mg_dtype_size(x->dtype);
  void (*sample)(const double *, const void *, void *, int64_t, int64_t, int64_t,
                 double, double, double) =
      x->dtype == MG_F32 ? affine_sample_f32 : affine_sample_f64;
  double cx = (double)(W - 1) / 2, cy = (double)(H - 1) / 2;
  int64_t plane = H * W;
  int nt = mg_threads_for(ctx, 8 * mg_numel(r)); /* ~8 flops per element */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t n = 0; n < N; n++)
    sample(th + 6 * n, src + (size_t)(n * C * plane) * es,
           dst + (size_t)(n * C * plane) * es, C, H, W, cx, cy, fill);
  *out = r, r = NULL;
done:
  free(th);
  mg_tensor_decref(xc);
  mg_tensor_decref(r);
  return st;
}

/* ---- erasing and pasting -----------------------------------------------------
 * x is (N,C,H,W), boxes is (N,4) = (top, left, height, width), 1-based. */

int mg_erase(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
             const mg_Tensor *boxes, double value) {
  const char *op = "erase";
  mg_Tensor *xc = NULL, *r = NULL;
  double *bx = NULL;
  int st = prep_batch(ctx, op, x, &xc, 0);
  if (st) return st;
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t bshape[2] = {N, 4};
  if ((st = read_params(ctx, &bx, op, "boxes", boxes, 2, bshape)) ||
      (st = check_boxes(ctx, op, bx, N, H, W)) ||
      (st = mg_alloc_tensor(ctx, &r, x->dtype, 4, x->shape)))
    goto done;
  size_t es = mg_dtype_size(x->dtype);
  FillRun *fill_run = fill_run_for(x->dtype);
  const char *src = mg_data(xc);
  char *dst = mg_data(r);
  int64_t plane = H * W;
  int nt = mg_threads_for(ctx, mg_numel(r));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t nc = 0; nc < N * C; nc++) {
    const double *b = bx + 4 * (nc / C);
    char *d = dst + (size_t)(nc * plane) * es;
    memcpy(d, src + (size_t)(nc * plane) * es, (size_t)plane * es);
    int64_t y0 = (int64_t)b[0] - 1, x0 = (int64_t)b[1] - 1;
    int64_t h = (int64_t)b[2], w = (int64_t)b[3];
    if (h == 0 || w == 0) continue;
    for (int64_t i = y0; i < y0 + h; i++)
      fill_run(d + (size_t)(i * W + x0) * es, w, value);
  }
  *out = r, r = NULL;
done:
  free(bx);
  mg_tensor_decref(xc);
  mg_tensor_decref(r);
  return st;
}

int mg_paste(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
             const mg_Tensor *src, const mg_Tensor *perm,
             const mg_Tensor *boxes) {
  const char *op = "paste";
  mg_Tensor *xc = NULL, *sc = NULL, *sc0 = NULL, *r = NULL;
  double *bx = NULL, *pm = NULL;
  char b1[MG_SHAPE_BUFSZ], b2[MG_SHAPE_BUFSZ];
  int st = prep_batch(ctx, op, x, &xc, 0);
  if (st) return st;
  int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  if (src->ndim != 4 || src->shape[1] != C || src->shape[2] != H ||
      src->shape[3] != W || (!perm && src->shape[0] != N)) {
    st = mg_error(ctx, MG_ESHAPE, "%s: source of shape %s does not match the "
                  "batch's %s", op, mg_shape_str(b1, sizeof b1, src->ndim, src->shape),
                  mg_shape_str(b2, sizeof b2, 4, x->shape));
    goto done;
  }
  if (src->dtype == MG_I64) {
    st = mg_error(ctx, MG_EARG, "%s: the source must be float32 or float64, "
                  "got int64", op);
    goto done;
  }
  int64_t M = src->shape[0], bshape[2] = {N, 4};
  if ((st = read_params(ctx, &bx, op, "boxes", boxes, 2, bshape)) ||
      (perm && (st = read_params(ctx, &pm, op, "perm", perm, 1, &N))) ||
      (st = check_boxes(ctx, op, bx, N, H, W)))
    goto done;
  for (int64_t n = 0; pm && n < N; n++)
    if (!int_in(pm[n], 1, (double)M)) {
      st = mg_error(ctx, MG_EINDEX, "%s: perm[%lld] = %g is outside 1..%lld",
                    op, (long long)n + 1, pm[n], (long long)M);
      goto done;
    }
  /* the source in the batch's dtype, contiguous, outside any graph */
  int mode = mg_set_grad_enabled(ctx, 0);
  st = mg_to_dtype(ctx, &sc0, (mg_Tensor *)src, x->dtype);
  if (!st) st = mg_contiguous(ctx, &sc, sc0);
  mg_set_grad_enabled(ctx, mode);
  if (st || (st = mg_alloc_tensor(ctx, &r, x->dtype, 4, x->shape))) goto done;
  size_t es = mg_dtype_size(x->dtype);
  const char *xs = mg_data(xc), *ss = mg_data(sc);
  char *dst = mg_data(r);
  int64_t plane = H * W;
  int nt = mg_threads_for(ctx, mg_numel(r));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t nc = 0; nc < N * C; nc++) {
    int64_t n = nc / C, c = nc % C;
    const double *b = bx + 4 * n;
    char *d = dst + (size_t)(nc * plane) * es;
    memcpy(d, xs + (size_t)(nc * plane) * es, (size_t)plane * es);
    int64_t y0 = (int64_t)b[0] - 1, x0 = (int64_t)b[1] - 1;
    int64_t h = (int64_t)b[2], w = (int64_t)b[3];
    if (h == 0 || w == 0) continue;
    int64_t m = pm ? (int64_t)pm[n] - 1 : n;
    const char *s = ss + (size_t)((m * C + c) * plane) * es;
    for (int64_t i = y0; i < y0 + h; i++)
      memcpy(d + (size_t)(i * W + x0) * es, s + (size_t)(i * W + x0) * es,
             (size_t)w * es);
  }
  *out = r, r = NULL;
done:
  free(bx);
  free(pm);
  mg_tensor_decref(xc);
  mg_tensor_decref(sc0);
  mg_tensor_decref(sc);
  mg_tensor_decref(r);
  return st;
}
