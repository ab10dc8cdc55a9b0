/*
 * ops_image.c — what the image ops share (reading an image or batch,
 * making the output, choosing threads), and the simple ones: padding,
 * dtype conversion and normalization (mg_imageops.h is their manual).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_imageops.h"
#include "mg_internal.h"

/* ---- shared ------------------------------------------------------------- */

int mg_interp_from_name(const char *name) {
  static const char *const names[MG_NINTERP] = {"nearest", "bilinear", "bicubic"};
  for (int i = 0; i < MG_NINTERP; i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}

int mg_pad_mode_from_name(const char *name) {
  static const char *const names[MG_NPAD] = {"constant", "edge", "reflect", "symmetric"};
  for (int i = 0; i < MG_NPAD; i++)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}

int mg_image_in(mg_Context *ctx, const char *op, mg_Tensor *x,
                mg_ImageIn *in) {
  char buf[MG_SHAPE_BUFSZ];
  memset(in, 0, sizeof *in);
  if (x->ndim != 3 && x->ndim != 4)
    return mg_error(ctx, MG_ESHAPE, "%s: expected an image [C, H, W] or a batch "
                    "[N, C, H, W], got shape %s", op,
                    mg_shape_str(buf, sizeof buf, x->ndim, x->shape));
  if (x->dtype != MG_U8 && x->dtype != MG_F32 && x->dtype != MG_F64)
    return mg_error(ctx, MG_EARG, "%s: expected a uint8, float32 or float64 "
                    "image, got %s", op, mg_dtype_name(x->dtype));
  int b = x->ndim == 4;
  for (int d = b; d < x->ndim; d++)
    if (x->shape[d] == 0)
      return mg_error(ctx, MG_ESHAPE, "%s: the image is empty (shape %s)", op,
                      mg_shape_str(buf, sizeof buf, x->ndim, x->shape));
  if (mg_grad_enabled(ctx) && mg_requires_grad(x))
    return mg_error(ctx, MG_EARG, "%s: the image requires grad, but image "
                    "transforms are not differentiable (pass x:detach())", op);
  mg_Tensor *t = x;
  mg_tensor_incref(t);
  if (x->stride[x->ndim - 1] != 1 && x->shape[x->ndim - 1] > 1) {
    mg_Tensor *c = NULL;
    int mode = mg_set_grad_enabled(ctx, 0);
    int st = mg_contiguous(ctx, &c, x);
    mg_set_grad_enabled(ctx, mode);
    mg_tensor_decref(t);
    if (st) return st;
    t = c;
  }
  in->t = t;
  in->data = mg_data(t);
  in->dt = t->dtype;
  in->batched = b;
  in->N = b ? t->shape[0] : 1;
  in->C = t->shape[b];
  in->H = t->shape[b + 1];
  in->W = t->shape[b + 2];
  in->sn = b ? t->stride[0] : 0;
  in->sc = t->stride[b];
  in->sh = t->stride[b + 1];
  return MG_OK;
}

void mg_image_in_free(mg_ImageIn *in) {
  mg_tensor_decref(in->t);
  in->t = NULL;
}

int mg_image_out(mg_Context *ctx, mg_Tensor **out, const mg_ImageIn *in,
                 mg_DType dt, int64_t C, int64_t h, int64_t w) {
  int64_t shape[4] = {in->N, C, h, w};
  return in->batched ? mg_alloc_tensor(ctx, out, dt, 4, shape)
                     : mg_alloc_tensor(ctx, out, dt, 3, shape + 1);
}

int mg_image_check_rgb(mg_Context *ctx, const char *op, const mg_ImageIn *in) {
  if (in->C == 1 || in->C == 3) return MG_OK;
  return mg_error(ctx, MG_ESHAPE, "%s: expected an image of 1 or 3 channels, got %lld",
                  op, (long long)in->C);
}

int mg_image_check_size(mg_Context *ctx, const char *op, int64_t h, int64_t w) {
  if (h >= 1 && w >= 1 && h <= MG_MAX_WINDOW && w <= MG_MAX_WINDOW) return MG_OK;
  return mg_error(ctx, MG_EARG, "%s: the output size must be from 1x1 to %dx%d, got "
                  "%lldx%lld", op, MG_MAX_WINDOW, MG_MAX_WINDOW, (long long)h,
                  (long long)w);
}

/* Outputs below MG_PARALLEL_GRAIN * 32 elements (about a million) stay on
 * the calling thread: a 224 x 224 sample transformed inside a data
 * loader's worker must not start a thread team per call. */
int mg_image_threads(const mg_Context *ctx, int64_t nplanes, int64_t out_elems) {
  if (nplanes < 2) return 1;
  int nt = mg_threads_for(ctx, out_elems / 32);
  return nt < nplanes ? nt : (int)nplanes;
}

/* Is v a value of dtype dt (for uint8, an integer from 0 to 255)? */
static int fits_dtype(double v, mg_DType dt) {
  if (dt == MG_U8) return v >= 0 && v <= 255 && v == floor(v);
  return v == v;
}

/* ---- padding -----------------------------------------------------------------
 * x is (N,C,H,W), out is (N,C,H+top+bottom,W+left+right). Each output row
 * and column has a source row or column, or -1 for fill; the rows are
 * then copied element by element (padding is not on the hot path). */

/* Output row d (ow wide) of a padded image: d[j] = row[cols[j]], or fill
 * where the row (NULL) or the column (< 0) falls in the padding. */
typedef void PadRow(void *d, const void *row, const int64_t *cols, int64_t ow,
                    double fill);

static void pad_row_f32(void *dv, const void *rowv, const int64_t *cols, int64_t ow,
                        double fill) {
  float *d = dv, f = (float)fill;
  const float *row = rowv;
  for (int64_t j = 0; j < ow; j++) {
    int64_t s = cols[j];
    d[j] = row && s >= 0 ? row[s] : f;
  }
}
/* f64 twin of pad_row_f32 */
static void pad_row_f64(void *dv, const void *rowv, const int64_t *cols, int64_t ow,
                        double fill) {
  double *d = dv, f = (double)fill;
  const double *row = rowv;
  for (int64_t j = 0; j < ow; j++) {
    int64_t s = cols[j];
    d[j] = row && s >= 0 ? row[s] : f;
  }
}
/* u8 twin of pad_row_f32 (fill is checked to be a uint8 value) */
static void pad_row_u8(void *dv, const void *rowv, const int64_t *cols, int64_t ow,
                       double fill) {
  uint8_t *d = dv, f = (uint8_t)fill;
  const uint8_t *row = rowv;
  for (int64_t j = 0; j < ow; j++) {
    int64_t s = cols[j];
    d[j] = row && s >= 0 ? row[s] : f;
  }
}

/* The source index of output index o for an axis of n inputs padded by lo
 * before: -1 means fill (constant mode). */
static int64_t pad_source(int64_t o, int64_t n, int64_t lo, mg_PadMode mode) {
  int64_t i = o - lo;
  if (i >= 0 && i < n) return i;
  switch (mode) {
  case MG_PAD_EDGE: return i < 0 ? 0 : n - 1;
  case MG_PAD_REFLECT: return i < 0 ? -i : 2 * (n - 1) - i;
  case MG_PAD_SYMMETRIC: return i < 0 ? -i - 1 : 2 * n - 1 - i;
  default: return -1;
  }
}

int mg_image_pad(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                 int64_t left, int64_t top, int64_t right, int64_t bottom,
                 mg_PadMode mode, double fill) {
  const char *op = "pad";
  mg_ImageIn in;
  mg_Tensor *r = NULL;
  int64_t *rows = NULL, *cols = NULL;
  int st = mg_image_in(ctx, op, x, &in);
  if (st) goto done;
  int64_t H = in.H, W = in.W;
  int64_t pads[4] = {left, top, right, bottom};
  for (int k = 0; k < 4; k++)
    if (pads[k] < -MG_MAX_WINDOW || pads[k] > MG_MAX_WINDOW) {
      st = mg_error(ctx, MG_EARG, "%s: padding %lld is out of range", op,
                    (long long)pads[k]);
      goto done;
    }
  int64_t oh = H + top + bottom, ow = W + left + right;
  if (oh < 1 || ow < 1) {
    st = mg_error(ctx, MG_EARG, "%s: padding (left %lld, top %lld, right %lld, "
                  "bottom %lld) leaves nothing of a %lldx%lld image", op,
                  (long long)left, (long long)top, (long long)right,
                  (long long)bottom, (long long)H, (long long)W);
    goto done;
  }
  if (mode != MG_PAD_CONSTANT) {
    /* reflect mirrors about the border pixel, symmetric repeats it: at
     * most size - 1, or size, new pixels on a side */
    int64_t slack = mode == MG_PAD_REFLECT ? 1 : 0;
    int bad = left < 0 || top < 0 || right < 0 || bottom < 0;
    if (mode != MG_PAD_EDGE)
      bad = bad || top > H - slack || bottom > H - slack || left > W - slack ||
            right > W - slack;
    if (bad) {
      static const char *const names[MG_NPAD] = {"constant", "edge", "reflect", "symmetric"};
      st = mg_error(ctx, MG_EARG, "%s: %s padding (left %lld, top %lld, right "
                    "%lld, bottom %lld) must be %s the %lldx%lld image's size", op,
                    names[mode], (long long)left, (long long)top, (long long)right,
                    (long long)bottom, mode == MG_PAD_EDGE ? "non-negative, whatever"
                    : slack ? "from 0 to one less than" : "from 0 to at most",
                    (long long)H, (long long)W);
      goto done;
    }
  } else if (!fits_dtype(fill, in.dt)) {
    st = mg_error(ctx, MG_EARG, "%s: fill %g is not a %s value%s", op, fill,
                  mg_dtype_name(in.dt), in.dt == MG_U8 ? " (an integer from 0 to 255)" : "");
    goto done;
  }
  if ((st = mg_image_out(ctx, &r, &in, in.dt, in.C, oh, ow))) goto done;
  rows = malloc((size_t)oh * sizeof *rows);
  cols = malloc((size_t)ow * sizeof *cols);
  if (!rows || !cols) {
    st = mg_error(ctx, MG_ENOMEM, "%s: not enough memory", op);
    goto done;
  }
  for (int64_t i = 0; i < oh; i++) rows[i] = pad_source(i, H, top, mode);
  for (int64_t j = 0; j < ow; j++) cols[j] = pad_source(j, W, left, mode);
  size_t es = mg_dtype_size(in.dt);
  char *dst = mg_data(r);
  PadRow *pad_row = in.dt == MG_U8 ? pad_row_u8 : in.dt == MG_F32 ? pad_row_f32 : pad_row_f64;
  for (int64_t n = 0; n < in.N; n++)
    for (int64_t c = 0; c < in.C; c++) {
      const char *plane = mg_image_plane(&in, n, c);
      char *d = dst + (size_t)((n * in.C + c) * oh * ow) * es;
      for (int64_t i = 0; i < oh; i++, d += (size_t)ow * es) {
        const char *row = rows[i] < 0 ? NULL : plane + (size_t)(rows[i] * in.sh) * es;
        pad_row(d, row, cols, ow, fill);
      }
    }
  *out = r, r = NULL;
done:
  free(rows);
  free(cols);
  mg_image_in_free(&in);
  mg_tensor_decref(r);
  return st;
}

/* ---- dtype conversion -----------------------------------------------------------
 * x is (N,C,H,W), out the same in dt; one row at a time. */

/* Converts n elements of row s into d, from one dtype to another (the same
 * dtype is a memcpy). uint8 to float32 is torchvision's float(v) / 255 (a
 * division, which vectorises; a table lookup does not). */
typedef void ConvertRow(void *d, const void *s, int64_t n);

static void from_u8_f32(void *d, const void *s, int64_t n) {
  const uint8_t *a = s;
  float *o = d;
  for (int64_t i = 0; i < n; i++) o[i] = (float)a[i] / 255.0f;
}
/* f64 twin of from_u8_f32 */
static void from_u8_f64(void *d, const void *s, int64_t n) {
  const uint8_t *a = s;
  double *o = d;
  for (int64_t i = 0; i < n; i++) o[i] = (double)a[i] / 255.0;
}

/* torchvision: image * (255 + 1 - 1e-3), then .to(uint8) */
static void to_u8_f32(void *d, const void *s, int64_t n) {
  const float *a = s;
  uint8_t *o = d;
  for (int64_t i = 0; i < n; i++) o[i] = mg_f2u8((double)(a[i] * 255.999f));
}
/* f64 twin of to_u8_f32 */
static void to_u8_f64(void *d, const void *s, int64_t n) {
  const double *a = s;
  uint8_t *o = d;
  for (int64_t i = 0; i < n; i++) o[i] = mg_f2u8((double)(a[i] * 255.999));
}

static void f32_to_f64(void *d, const void *s, int64_t n) {
  const float *a = s;
  double *o = d;
  for (int64_t i = 0; i < n; i++) o[i] = a[i];
}
static void f64_to_f32(void *d, const void *s, int64_t n) {
  const double *a = s;
  float *o = d;
  for (int64_t i = 0; i < n; i++) o[i] = (float)a[i];
}

/* The converter from one of uint8, float32, float64 to another, or NULL
 * for the same dtype. */
static ConvertRow *converter(mg_DType from, mg_DType to) {
  if (from == to) return NULL;
  if (from == MG_U8) return to == MG_F32 ? from_u8_f32 : from_u8_f64;
  if (to == MG_U8) return from == MG_F32 ? to_u8_f32 : to_u8_f64;
  return from == MG_F32 ? f32_to_f64 : f64_to_f32;
}

int mg_image_convert(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                     mg_DType dt) {
  const char *op = "convert_image_dtype";
  mg_ImageIn in;
  mg_Tensor *r = NULL;
  int st = mg_image_in(ctx, op, x, &in);
  if (st) goto done;
  if (dt != MG_U8 && dt != MG_F32 && dt != MG_F64) {
    st = mg_error(ctx, MG_EARG, "%s: expected uint8, float32 or float64 as "
                  "the dtype, got %s", op, mg_dtype_name(dt));
    goto done;
  }
  if ((st = mg_image_out(ctx, &r, &in, dt, in.C, in.H, in.W))) goto done;
  size_t es = mg_dtype_size(in.dt), eo = mg_dtype_size(dt);
  char *dst = mg_data(r);
  ConvertRow *convert_row = converter(in.dt, dt);
  for (int64_t n = 0; n < in.N; n++)
    for (int64_t c = 0; c < in.C; c++) {
      const char *plane = mg_image_plane(&in, n, c);
      char *d = dst + (size_t)((n * in.C + c) * in.H * in.W) * eo;
      for (int64_t i = 0; i < in.H; i++) {
        char *o = d + (size_t)(i * in.W) * eo;
        const char *a = plane + (size_t)(i * in.sh) * es;
        if (convert_row) convert_row(o, a, in.W);
        else memcpy(o, a, (size_t)in.W * es);
      }
    }
  *out = r, r = NULL;
done:
  mg_image_in_free(&in);
  mg_tensor_decref(r);
  return st;
}

/* ---- normalization ----------------------------------------------------------------
 * x is (N,C,H,W): out = (x - mean[c]) / std[c], torchvision's sub_ then
 * div_, in x's float dtype (uint8: float32 after / 255). */

/* Row o (n wide) = (row a - mean) / std, in the output's dtype: float32
 * for float32 and uint8 input (after / 255), float64 for float64. */
typedef void NormalizeRow(void *o, const void *a, int64_t n, double mean, double std);

static void normalize_row_f32(void *ov, const void *av, int64_t n, double mean,
                              double std) {
  const float *a = av;
  float *o = ov, m = (float)mean, sd = (float)std;
  for (int64_t j = 0; j < n; j++) o[j] = (a[j] - m) / sd;
}
/* f64 twin of normalize_row_f32 */
static void normalize_row_f64(void *ov, const void *av, int64_t n, double mean,
                              double std) {
  const double *a = av;
  double *o = ov, m = (double)mean, sd = (double)std;
  for (int64_t j = 0; j < n; j++) o[j] = (a[j] - m) / sd;
}
/* u8 twin of normalize_row_f32 (float32 out) */
static void normalize_row_u8(void *ov, const void *av, int64_t n, double mean,
                             double std) {
  const uint8_t *a = av;
  float *o = ov, m = (float)mean, sd = (float)std;
  for (int64_t j = 0; j < n; j++) o[j] = ((float)a[j] / 255.0f - m) / sd;
}

int mg_image_normalize(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                       const double *mean, const double *std, int64_t nvals) {
  const char *op = "normalize";
  mg_ImageIn in;
  mg_Tensor *r = NULL;
  int st = mg_image_in(ctx, op, x, &in);
  if (st) goto done;
  if (nvals != 1 && nvals != in.C) {
    st = mg_error(ctx, MG_ESHAPE, "%s: %lld mean/std values for an image of "
                  "%lld channels", op, (long long)nvals, (long long)in.C);
    goto done;
  }
  mg_DType odt = in.dt == MG_U8 ? MG_F32 : in.dt;
  for (int64_t k = 0; k < nvals; k++)
    if ((odt == MG_F32 ? (float)std[k] == 0 : std[k] == 0) || !isfinite(std[k]) ||
        !isfinite(mean[k])) {
      st = mg_error(ctx, MG_EARG, "%s: mean[%lld] = %g and std[%lld] = %g must be "
                    "finite, and std nonzero in %s", op, (long long)k + 1, mean[k],
                    (long long)k + 1, std[k], mg_dtype_name(odt));
      goto done;
    }
  if ((st = mg_image_out(ctx, &r, &in, odt, in.C, in.H, in.W))) goto done;
  size_t es = mg_dtype_size(in.dt), eo = mg_dtype_size(odt);
  int64_t HW = in.H * in.W;
  char *dst = mg_data(r);
  NormalizeRow *normalize_row = in.dt == MG_F64  ? normalize_row_f64
                                : in.dt == MG_U8 ? normalize_row_u8
                                                 : normalize_row_f32;
  for (int64_t n = 0; n < in.N; n++)
    for (int64_t c = 0; c < in.C; c++) {
      const char *plane = mg_image_plane(&in, n, c);
      char *d = dst + (size_t)((n * in.C + c) * HW) * eo;
      int64_t k = nvals == 1 ? 0 : c;
      for (int64_t i = 0; i < in.H; i++)
        normalize_row(d + (size_t)(i * in.W) * eo, plane + (size_t)(i * in.sh) * es,
                      in.W, mean[k], std[k]);
    }
  *out = r, r = NULL;
done:
  mg_image_in_free(&in);
  mg_tensor_decref(r);
  return st;
}
