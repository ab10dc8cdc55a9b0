/*
 * tensor_data.c — tensor contents: the dtype conversion loops behind
 * copy_ and to(), fill_ and zero_, the creations that fill (full, arange,
 * linspace, eye), and reading or writing one element. Above the iterator
 * and autograd's in-place check; records no gradient.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_internal.h"

/* ---- conversion loops ---------------------------------------------------- */

typedef struct {
  mg_DType to, from;
} ConvertArg;

/* n elements of dtype from (stride s[1] elements) into dtype to (s[0]). */
static void convert_any(char **p, const int64_t *s, int64_t n, mg_DType to,
                        mg_DType from) {
  int64_t bo = s[0] * (int64_t)mg_dtype_size(to);
  int64_t bi = s[1] * (int64_t)mg_dtype_size(from);
  char *o = p[0];
  const char *x = p[1];
  if (mg_dtype_is_float(from)) {
    for (int64_t i = 0; i < n; i++)
      mg_store_f64(o + i * bo, to, mg_load_f64(x + i * bi, from));
  } else {
    for (int64_t i = 0; i < n; i++)
      mg_store_i64(o + i * bo, to, mg_load_i64(x + i * bi, from));
  }
}

/* ptrs[0] = destination, ptrs[1] = source. */
static void convert_run(char **p, const int64_t *s, int64_t n,
                        const void *arg) {
  const ConvertArg *a = arg;
  int64_t s0 = s[0], s1 = s[1];
  switch (a->to * MG_NDTYPES + a->from) {
  case MG_F32 * MG_NDTYPES + MG_F32: {
    float *o = (float *)p[0]; const float *x = (const float *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = x[i * s1];
  } break;
  case MG_F32 * MG_NDTYPES + MG_F64: {
    float *o = (float *)p[0]; const double *x = (const double *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = (float)x[i * s1];
  } break;
  case MG_F32 * MG_NDTYPES + MG_I64: {
    float *o = (float *)p[0]; const int64_t *x = (const int64_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = (float)x[i * s1];
  } break;
  case MG_F64 * MG_NDTYPES + MG_F32: {
    double *o = (double *)p[0]; const float *x = (const float *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = x[i * s1];
  } break;
  case MG_F64 * MG_NDTYPES + MG_F64: {
    double *o = (double *)p[0]; const double *x = (const double *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = x[i * s1];
  } break;
  case MG_F64 * MG_NDTYPES + MG_I64: {
    double *o = (double *)p[0]; const int64_t *x = (const int64_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = (double)x[i * s1];
  } break;
  case MG_I64 * MG_NDTYPES + MG_F32: {
    int64_t *o = (int64_t *)p[0]; const float *x = (const float *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = mg_f2i64(x[i * s1]);
  } break;
  case MG_I64 * MG_NDTYPES + MG_F64: {
    int64_t *o = (int64_t *)p[0]; const double *x = (const double *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = mg_f2i64(x[i * s1]);
  } break;
  case MG_I64 * MG_NDTYPES + MG_I64: {
    int64_t *o = (int64_t *)p[0]; const int64_t *x = (const int64_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = x[i * s1];
  } break;
  /* uint8 to and from everything: pixels in, numbers out */
  case MG_F32 * MG_NDTYPES + MG_U8: {
    float *o = (float *)p[0]; const uint8_t *x = (const uint8_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = x[i * s1];
  } break;
  case MG_F64 * MG_NDTYPES + MG_U8: {
    double *o = (double *)p[0]; const uint8_t *x = (const uint8_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = x[i * s1];
  } break;
  case MG_I64 * MG_NDTYPES + MG_U8: {
    int64_t *o = (int64_t *)p[0]; const uint8_t *x = (const uint8_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = x[i * s1];
  } break;
  case MG_U8 * MG_NDTYPES + MG_U8: {
    uint8_t *o = (uint8_t *)p[0]; const uint8_t *x = (const uint8_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = x[i * s1];
  } break;
  case MG_U8 * MG_NDTYPES + MG_F32: {
    uint8_t *o = (uint8_t *)p[0]; const float *x = (const float *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = mg_f2u8(x[i * s1]);
  } break;
  case MG_U8 * MG_NDTYPES + MG_F64: {
    uint8_t *o = (uint8_t *)p[0]; const double *x = (const double *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = mg_f2u8(x[i * s1]);
  } break;
  case MG_U8 * MG_NDTYPES + MG_I64: {
    uint8_t *o = (uint8_t *)p[0]; const int64_t *x = (const int64_t *)p[1];
    for (int64_t i = 0; i < n; i++) o[i * s0] = (uint8_t)x[i * s1];
  } break;
  default: /* the other storage dtypes: one element at a time, through a
            * double (floats) or an int64 (integers), both exact */
    convert_any(p, s, n, a->to, a->from);
    break;
  }
}

int mg_clone_data(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t) {
  mg_Tensor *c = NULL;
  int st = mg_alloc_tensor(ctx, &c, t->dtype, t->ndim, t->shape);
  if (st) return st;
  if (mg_is_contiguous(t))
    memcpy(mg_data(c), mg_data(t), (size_t)mg_numel(t) * mg_dtype_size(t->dtype));
  else
    mg_copy_(ctx, c, t);
  *out = c;
  return MG_OK;
}

int mg_contiguous_data(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t) {
  if (mg_is_contiguous(t)) {
    mg_tensor_incref(t);
    *out = t;
    return MG_OK;
  }
  return mg_clone_data(ctx, out, t);
}

int mg_copy_(mg_Context *ctx, mg_Tensor *dst, const mg_Tensor *src) {
  int n;
  int64_t shape[MG_MAXDIM];
  int st = mg_check_inplace(ctx, "copy_", dst);
  if (st) return st;
  st = mg_broadcast_shapes(ctx, "copy_", dst->ndim, dst->shape,
                               src->ndim, src->shape, &n, shape);
  if (st || n != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * n)) {
    char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
    return mg_error(ctx, MG_ESHAPE, "copy_: source of shape %s does not "
                    "broadcast to destination of shape %s",
                    mg_shape_str(ba, sizeof ba, src->ndim, src->shape),
                    mg_shape_str(bb, sizeof bb, dst->ndim, dst->shape));
  }
  /* A source sharing dst's storage in another layout (t:copy_(t:t())) would
   * be read after part of it was overwritten: copy from a snapshot. */
  mg_Tensor *snap = NULL;
  if (src->storage == dst->storage && !mg_same_view(dst, src)) {
    if ((st = mg_clone_data(ctx, &snap, src))) return st;
    src = snap;
  }
  mg_Iter it;
  mg_Tensor *ops[2] = {dst, (mg_Tensor *)src};
  mg_iter_init_memory_order(&it, 2, ops, dst->ndim, dst->shape);
  ConvertArg a = {dst->dtype, src->dtype};
  mg_iter_run(ctx, &it, convert_run, &a);
  mg_bump_version(dst);
  mg_tensor_decref(snap);
  return MG_OK;
}

/* One named struct for both sides: reading the value at a hand-computed
 * offset missed the padding before the double and filled with garbage. */
typedef struct {
  mg_DType dt;
  double v;
} FillArg;

static void fill_run(char **p, const int64_t *s, int64_t n, const void *arg) {
  const FillArg *fa = arg;
  const double v = fa->v;
  int64_t s0 = s[0];
  switch (fa->dt) {
  case MG_F32: {
    float *o = (float *)p[0], f = (float)v;
    for (int64_t i = 0; i < n; i++) o[i * s0] = f;
  } break;
  case MG_F64: {
    double *o = (double *)p[0];
    for (int64_t i = 0; i < n; i++) o[i * s0] = v;
  } break;
  case MG_U8: {
    uint8_t *o = (uint8_t *)p[0], f = mg_f2u8(v);
    for (int64_t i = 0; i < n; i++) o[i * s0] = f;
  } break;
  case MG_I64: {
    int64_t *o = (int64_t *)p[0], f = mg_f2i64(v);
    for (int64_t i = 0; i < n; i++) o[i * s0] = f;
  } break;
  default: { /* the other storage dtypes: the element's bytes, repeated */
    size_t es = mg_dtype_size(fa->dt);
    char f[8], *o = p[0];
    mg_store_f64(f, fa->dt, v);
    for (int64_t i = 0; i < n; i++) memcpy(o + i * s0 * (int64_t)es, f, es);
  } break;
  }
}

/* A number written into an integer or half tensor must be one of its
 * values (a tensor converted to one wraps or overflows instead, as
 * PyTorch's fill_ checks and its to() does not). */
static int check_value(mg_Context *ctx, const char *op, mg_DType dt,
                       double v) {
  if (mg_value_fits(dt, v)) return MG_OK;
  char num[32]; /* the shortest of 15 or 17 digits that reads back as v */
  snprintf(num, sizeof num, "%.15g", v);
  if (strtod(num, NULL) != v) snprintf(num, sizeof num, "%.17g", v);
  return mg_error(ctx, MG_EARG, "%s: %s does not fit in %s (%s)", op, num,
                  mg_dtype_name(dt), mg_dtype_range(dt));
}

static int fill_named(mg_Context *ctx, const char *op, mg_Tensor *t,
                      double value) {
  int st = check_value(ctx, op, t->dtype, value);
  if (!st) st = mg_check_inplace(ctx, op, t);
  if (st) return st;
  mg_bump_version(t);
  FillArg arg = {t->dtype, value};
  mg_Iter it;
  mg_iter_init_memory_order(&it, 1, &t, t->ndim, t->shape);
  mg_iter_run(ctx, &it, fill_run, &arg);
  return MG_OK;
}

int mg_fill_(mg_Context *ctx, mg_Tensor *t, double value) {
  return fill_named(ctx, "fill_", t, value);
}

int mg_zero_(mg_Context *ctx, mg_Tensor *t) {
  return fill_named(ctx, "zero_", t, 0);
}

/* ---- creation ------------------------------------------------------------ */

int mg_empty(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
             const int64_t *shape) {
  return mg_alloc_tensor(ctx, out, dt, ndim, shape);
}

int mg_full(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
            const int64_t *shape, double value) {
  mg_Tensor *t = NULL;
  int st = check_value(ctx, "full", dt, value);
  if (st || (st = mg_alloc_tensor(ctx, &t, dt, ndim, shape))) return st;
  mg_fill_(ctx, t, value);
  *out = t;
  return MG_OK;
}

/* d[i] = start + i·step for i < n, computed in double and rounded once. */
static void arange_f32(void *d, int64_t n, double start, double step) {
  float *o = d;
  for (int64_t i = 0; i < n; i++) o[i] = (float)(start + (double)i * step);
}
/* f64 twin of arange_f32 */
static void arange_f64(void *d, int64_t n, double start, double step) {
  double *o = d;
  for (int64_t i = 0; i < n; i++) o[i] = (double)(start + (double)i * step);
}
/* The other storage dtypes: one element at a time through a double, as
 * convert_any. */
static void arange_any(mg_Tensor *t, int64_t n, double start, double step) {
  size_t es = mg_dtype_size(t->dtype);
  char *o = mg_data(t);
  for (int64_t i = 0; i < n; i++)
    mg_store_f64(o + i * (int64_t)es, t->dtype, start + (double)i * step);
}

int mg_arange(mg_Context *ctx, mg_Tensor **out, mg_DType dt, double start,
              double end, double step) {
  if (step == 0 || isnan(step) || isnan(start) || isnan(end) ||
      isinf(start) || isinf(end))
    return mg_error(ctx, MG_EARG, "arange: start %g, end %g and step %g do "
                    "not describe a finite range", start, end, step);
  if ((step > 0 && end < start) || (step < 0 && end > start))
    return mg_error(ctx, MG_EARG, "arange: step %g goes away from end (start "
                    "%g, end %g)", step, start, end);
  double count = ceil((end - start) / step);
  if (!(count < 0x1p62)) /* (int64_t) of a larger double is undefined */
    return mg_error(ctx, MG_ENOMEM, "arange: start %g, end %g and step %g "
                    "give %g elements, too many", start, end, step, count);
  int64_t n = (int64_t)count;
  mg_Tensor *t = NULL;
  int st = mg_alloc_tensor(ctx, &t, dt, 1, &n);
  if (st) return st;
  switch (dt) {
  case MG_F32: arange_f32(mg_data(t), n, start, step); break;
  case MG_F64: arange_f64(mg_data(t), n, start, step); break;
  default: arange_any(t, n, start, step); break;
  }
  *out = t;
  return MG_OK;
}

/* Element i of linspace(start, end, steps) with step h: filled from both
 * ends, as PyTorch does, so the last value is exactly end. A single step
 * is start (steps / 2 == 0 would send it to the end half). */
static inline double linspace_at(int64_t i, int64_t steps, double start,
                                 double end, double h) {
  return i < steps / 2 || steps == 1 ? start + h * (double)i
                                     : end - h * (double)(steps - 1 - i);
}

static void linspace_f32(void *d, int64_t steps, double start, double end, double h) {
  float *o = d;
  for (int64_t i = 0; i < steps; i++) o[i] = (float)linspace_at(i, steps, start, end, h);
}
/* f64 twin of linspace_f32 */
static void linspace_f64(void *d, int64_t steps, double start, double end, double h) {
  double *o = d;
  for (int64_t i = 0; i < steps; i++) o[i] = (double)linspace_at(i, steps, start, end, h);
}
/* The other storage dtypes, as arange_any. */
static void linspace_any(mg_Tensor *t, int64_t steps, double start, double end,
                         double h) {
  size_t es = mg_dtype_size(t->dtype);
  char *o = mg_data(t);
  for (int64_t i = 0; i < steps; i++)
    mg_store_f64(o + i * (int64_t)es, t->dtype, linspace_at(i, steps, start, end, h));
}

int mg_linspace(mg_Context *ctx, mg_Tensor **out, mg_DType dt, double start,
                double end, int64_t steps) {
  if (steps < 0)
    return mg_error(ctx, MG_EARG, "linspace: steps must be non-negative, got "
                    "%lld", (long long)steps);
  mg_Tensor *t = NULL;
  int st = mg_alloc_tensor(ctx, &t, dt, 1, &steps);
  if (st) return st;
  double h = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
  switch (dt) {
  case MG_F32: linspace_f32(mg_data(t), steps, start, end, h); break;
  case MG_F64: linspace_f64(mg_data(t), steps, start, end, h); break;
  default: linspace_any(t, steps, start, end, h); break;
  }
  *out = t;
  return MG_OK;
}

int mg_eye(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int64_t n,
           int64_t m) {
  int64_t shape[2] = {n, m};
  mg_Tensor *t = NULL;
  int st = mg_full(ctx, &t, dt, 2, shape, 0);
  if (st) return st;
  size_t es = mg_dtype_size(dt);
  char one[8], *d = mg_data(t);
  mg_store_f64(one, dt, 1); /* the element's bytes, converted once */
  for (int64_t i = 0; i < n && i < m; i++) memcpy(d + (i * m + i) * (int64_t)es, one, es);
  *out = t;
  return MG_OK;
}

/* ---- elements ------------------------------------------------------------ */

/* The address of the element at storage offset o (in elements). */
static char *element_at(const mg_Tensor *t, int64_t o) {
  return (char *)t->storage->data + o * (int64_t)mg_dtype_size(t->dtype);
}

static int element_offset(mg_Context *ctx, const char *op, const mg_Tensor *t,
                          const int64_t *idx, int64_t *off) {
  int64_t o = t->offset;
  for (int d = 0; d < t->ndim; d++) {
    if (idx[d] < 0 || idx[d] >= t->shape[d])
      return mg_error(ctx, MG_EINDEX, "%s: index %lld out of range for size "
                      "%lld of dimension %d", op, (long long)idx[d] + 1,
                      (long long)t->shape[d], d + 1);
    o += idx[d] * t->stride[d];
  }
  *off = o;
  return MG_OK;
}

int mg_get(mg_Context *ctx, double *out, const mg_Tensor *t,
           const int64_t *idx) {
  int64_t o = 0;
  int st = element_offset(ctx, "get", t, idx, &o);
  if (st) return st;
  *out = mg_load_f64(element_at(t, o), t->dtype);
  return MG_OK;
}

int mg_get_i64(mg_Context *ctx, int64_t *out, const mg_Tensor *t,
               const int64_t *idx) {
  int64_t o = 0;
  int st = element_offset(ctx, "get", t, idx, &o);
  if (st) return st;
  *out = mg_load_i64(element_at(t, o), t->dtype);
  return MG_OK;
}

int mg_set(mg_Context *ctx, mg_Tensor *t, const int64_t *idx, double v) {
  int64_t o = 0;
  int st = element_offset(ctx, "set", t, idx, &o);
  if (!st) st = check_value(ctx, "set", t->dtype, v);
  if (st || (st = mg_check_inplace(ctx, "set", t))) return st;
  mg_bump_version(t);
  mg_store_f64(element_at(t, o), t->dtype, v);
  return MG_OK;
}

int mg_set_i64(mg_Context *ctx, mg_Tensor *t, const int64_t *idx,
               int64_t v) {
  if (t->dtype != MG_I64) return mg_set(ctx, t, idx, (double)v);
  int64_t o = 0;
  int st = element_offset(ctx, "set", t, idx, &o);
  if (st || (st = mg_check_inplace(ctx, "set", t))) return st;
  mg_bump_version(t);
  ((int64_t *)t->storage->data)[o] = v;
  return MG_OK;
}

static int64_t linear_offset(const mg_Tensor *t, int64_t i) {
  int64_t o = t->offset;
  for (int d = t->ndim - 1; d >= 0; d--) {
    o += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  return o;
}

double mg_read(const mg_Tensor *t, int64_t i) {
  int64_t o = linear_offset(t, i);
  return mg_load_f64(element_at(t, o), t->dtype);
}

int64_t mg_read_i64(const mg_Tensor *t, int64_t i) {
  int64_t o = linear_offset(t, i);
  return mg_load_i64(element_at(t, o), t->dtype);
}
