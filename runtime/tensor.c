/*
 * tensor.c — storages, tensors, views, creation and copies.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_internal.h"

/* ---- storage and tensor structs ----------------------------------------- */


/* The data of every empty storage: kernels compute addresses from a
 * tensor's data even when they then touch no element, and NULL + 0 is
 * undefined in C (UBSan's pointer-overflow check stops there). Never
 * written (there is nothing to write) and never freed. */
static max_align_t empty_buffer;

static mg_Storage *storage_new(mg_Context *ctx, size_t nbytes) {
  mg_Storage *s = mg_storage_struct(ctx);
  if (!s) return NULL;
  s->data = &empty_buffer;
  if (nbytes > 0 && !(s->data = mg_buffer_alloc(ctx, nbytes))) {
    mg_storage_struct_free(ctx, s);
    return NULL;
  }
  s->nbytes = nbytes;
  s->refcount = 1;
  s->version = 0;
  s->ctx = ctx;
  s->borrowed = 0;
  s->release = NULL;
  s->release_ud = NULL;
  mg_context_incref(ctx);
  return s;
}

/* The struct goes on the spare list before the context's reference is
 * dropped: a context torn down by that frees the list with it. */
static void storage_decref(mg_Storage *s) {
  if (--s->refcount > 0) return;
  mg_Context *ctx = s->ctx;
  if (!s->borrowed && s->data != &empty_buffer)
    mg_buffer_free(ctx, s->data, s->nbytes);
  else if (s->release) s->release(s->data, s->release_ud);
  mg_storage_struct_free(ctx, s);
  mg_context_decref(ctx);
}

void mg_tensor_incref(mg_Tensor *t) { t->refcount++; }

void mg_tensor_decref(mg_Tensor *t) {
  if (!t || --t->refcount > 0) return;
  if (t->autograd) mg_autograd_free(t);
  mg_Storage *s = t->storage;
  mg_tensor_struct_free(s->ctx, t);
  storage_decref(s);
}

void mg_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d] > 0 ? shape[d] : 1;
  }
}

/* With op NULL the message names no op (the caller's caller knows it: the
 * Lua binding prefixes the function's name). */
int mg_check_shape(mg_Context *ctx, const char *op, int ndim,
                   const int64_t *shape) {
  const char *sep = op ? ": " : "";
  if (!op) op = "";
  if (ndim < 0 || ndim > MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "%s%s%d dimensions requested, at most %d "
                    "are supported", op, sep, ndim, MG_MAXDIM);
  /* n is the product of the nonzero sizes, not numel: a zero-size tensor's
   * strides (mg_contiguous_strides) still multiply the other sizes, so
   * [0, 2^32, 2^32, 2^32] must be refused before they overflow. */
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return mg_error(ctx, MG_ESHAPE, "%s%ssize %lld of dimension %d is "
                      "negative", op, sep, (long long)shape[d], d + 1);
    if (shape[d] == 0) continue;
    if (n > MG_MAX_NUMEL / shape[d]) {
      char b[MG_SHAPE_BUFSZ];
      return mg_error(ctx, MG_ENOMEM, "%s%snot enough memory: a tensor of "
                      "shape %s is too large", op, sep,
                      mg_shape_str(b, sizeof b, ndim, shape));
    }
    n *= shape[d];
  }
  return MG_OK;
}

int mg_check_window_param(mg_Context *ctx, const char *op, const char *what,
                          int64_t v, int64_t min) {
  if (v < min)
    return mg_error(ctx, MG_EARG, "%s: %s must be %s, got %lld", op, what,
                    min > 0 ? "positive" : "non-negative", (long long)v);
  if (v > MG_MAX_WINDOW)
    return mg_error(ctx, MG_EARG, "%s: %s %lld is too large (at most %d)", op,
                    what, (long long)v, MG_MAX_WINDOW);
  return MG_OK;
}

int mg_padded_size(mg_Context *ctx, const char *op, int64_t h, int64_t w,
                   int64_t pad_h, int64_t pad_w, int64_t *ph, int64_t *pw) {
  int st;
  if ((st = mg_check_window_param(ctx, op, "padding", pad_h, 0)) ||
      (st = mg_check_window_param(ctx, op, "padding", pad_w, 0)))
    return st;
  /* h, w are tensor sizes (at most MG_MAX_NUMEL), pads at most 2^31: the
   * sums fit; their product is checked without forming it. */
  *ph = h + 2 * pad_h;
  *pw = w + 2 * pad_w;
  if (*ph > 0 && *pw > MG_MAX_NUMEL / *ph)
    return mg_error(ctx, MG_EARG, "%s: padding %lldx%lld makes the padded "
                    "image %lldx%lld, more than the %lld elements a tensor may "
                    "have", op, (long long)pad_h, (long long)pad_w,
                    (long long)*ph, (long long)*pw, (long long)MG_MAX_NUMEL);
  return MG_OK;
}

int64_t mg_dilated_extent(int64_t k, int64_t d) {
  int64_t e;
  if (k < 1) return k;
  if (__builtin_mul_overflow(d, k - 1, &e) || e == INT64_MAX) return INT64_MAX;
  return e + 1;
}

/* Makes t a contiguous tensor over s from its start. */
static void contiguous_init(mg_Tensor *t, mg_Storage *s, mg_DType dt, int ndim,
                            const int64_t *shape) {
  t->storage = s;
  t->offset = 0;
  t->ndim = ndim;
  t->dtype = dt;
  t->refcount = 1;
  t->autograd = NULL;
  if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
  mg_contiguous_strides(ndim, shape, t->stride);
}

int mg_alloc_tensor(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                    const int64_t *shape) {
  int st = mg_check_shape(ctx, NULL, ndim, shape);
  if (st) return st;
  mg_Tensor *t = mg_tensor_struct(ctx);
  if (!t) return MG_ENOMEM;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  t->storage = storage_new(ctx, (size_t)n * mg_dtype_size(dt));
  if (!t->storage) {
    mg_tensor_struct_free(ctx, t);
    return MG_ENOMEM;
  }
  contiguous_init(t, t->storage, dt, ndim, shape);
  *out = t;
  return MG_OK;
}

/* The storage is made with no buffer and then pointed at data. */
int mg_from_buffer(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                   const int64_t *shape, void *data, mg_ReleaseFn release,
                   void *ud) {
  int st = mg_check_shape(ctx, "from_buffer", ndim, shape);
  mg_Tensor *t = NULL;
  mg_Storage *s = NULL;
  if (st == MG_OK && ((uintptr_t)data % mg_dtype_size(dt)) != 0)
    st = mg_error(ctx, MG_EARG, "from_buffer: the data pointer is not "
                  "aligned to %zu bytes (%s)", mg_dtype_size(dt),
                  mg_dtype_name(dt));
  if (st == MG_OK && (!(t = mg_tensor_struct(ctx)) || !(s = storage_new(ctx, 0)))) {
    if (t) mg_tensor_struct_free(ctx, t);
    st = MG_ENOMEM; /* the message is in ctx */
  }
  if (st != MG_OK) {
    if (release) release(data, ud);
    return st;
  }
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  s->data = data;
  s->nbytes = (size_t)n * mg_dtype_size(dt);
  s->borrowed = 1;
  s->release = release;
  s->release_ud = ud;
  contiguous_init(t, s, dt, ndim, shape);
  *out = t;
  return MG_OK;
}

int mg_make_view(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int ndim, const int64_t *shape, const int64_t *stride,
                 int64_t offset) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) continue;
    if (n > MG_MAX_NUMEL / shape[d]) {
      char b[MG_SHAPE_BUFSZ];
      /* No op named: the binding prefixes the function (expand: ...). */
      return mg_error(ctx, MG_ESHAPE, "a view of shape %s would have more "
                      "than %lld elements, the most a tensor may have",
                      mg_shape_str(b, sizeof b, ndim, shape),
                      (long long)MG_MAX_NUMEL);
    }
    n *= shape[d];
  }
  mg_Tensor *v = mg_tensor_struct(t->storage->ctx);
  if (!v) return MG_ENOMEM;
  v->storage = t->storage;
  v->storage->refcount++;
  v->offset = offset;
  v->ndim = ndim;
  v->dtype = t->dtype;
  v->refcount = 1;
  v->autograd = NULL;
  if (ndim) { /* a 0-d view may come with NULL shape and strides */
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)ndim);
    memcpy(v->stride, stride, sizeof(int64_t) * (size_t)ndim);
  }
  *out = v;
  return MG_OK;
}

int64_t mg_numel(const mg_Tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

int mg_is_contiguous(const mg_Tensor *t) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != s) return 0;
    s *= t->shape[d];
  }
  return 1;
}

void *mg_data(const mg_Tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)mg_dtype_size(t->dtype);
}

static int clone_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t);

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

int mg_broadcast_shapes(mg_Context *ctx, const char *op, int na,
                        const int64_t *sa, int nb, const int64_t *sb,
                        int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t a = ia >= 0 ? sa[ia] : 1, b = ib >= 0 ? sb[ib] : 1;
    if (a != b && a != 1 && b != 1) {
      char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
      return mg_error(ctx, MG_ESHAPE, "%s: shapes %s and %s cannot be "
                      "broadcast together (size %lld vs %lld at dimension "
                      "%d from the right)", op, mg_shape_str(ba, sizeof ba, na, sa),
                      mg_shape_str(bb, sizeof bb, nb, sb), (long long)a,
                      (long long)b, n - i);
    }
    out[i] = a == 1 ? b : a;
  }
  *nout = n;
  return MG_OK;
}

/* Do a and b see the same elements in the same positions? (Strides of
 * size-1 dims never matter.) */
int mg_same_view(const mg_Tensor *a, const mg_Tensor *b) {
  if (a->storage != b->storage || a->offset != b->offset || a->ndim != b->ndim)
    return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d] ||
        (a->shape[d] > 1 && a->stride[d] != b->stride[d]))
      return 0;
  return 1;
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
    if ((st = clone_fwd(ctx, &snap, src))) return st;
    src = snap;
  }
  mg_Iter it;
  mg_Tensor *ops[2] = {dst, (mg_Tensor *)src};
  mg_iter_init(&it, 2, ops, dst->ndim, dst->shape);
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
  mg_iter_init(&it, 1, &t, t->ndim, t->shape);
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

/* Writes value v at linear position i of a contiguous tensor. */
static void put(mg_Tensor *t, int64_t i, double v) {
  void *d = mg_data(t);
  switch (t->dtype) {
  case MG_F32: ((float *)d)[i] = (float)v; break;
  case MG_F64: ((double *)d)[i] = v; break;
  default:
    mg_store_f64((char *)d + i * (int64_t)mg_dtype_size(t->dtype), t->dtype, v);
  }
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
  for (int64_t i = 0; i < n; i++) put(t, i, start + (double)i * step);
  *out = t;
  return MG_OK;
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
  /* Fill from both ends, as PyTorch does, so the last value is exactly end.
   * A single step is start (steps / 2 == 0 would send it to the end half). */
  for (int64_t i = 0; i < steps; i++)
    put(t, i, i < steps / 2 || steps == 1 ? start + h * (double)i
                                          : end - h * (double)(steps - 1 - i));
  *out = t;
  return MG_OK;
}

int mg_eye(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int64_t n,
           int64_t m) {
  int64_t shape[2] = {n, m};
  mg_Tensor *t = NULL;
  int st = mg_full(ctx, &t, dt, 2, shape, 0);
  if (st) return st;
  for (int64_t i = 0; i < n && i < m; i++) put(t, i * m + i, 1);
  *out = t;
  return MG_OK;
}

/* ---- views --------------------------------------------------------------- */

/* Resolves a -1 in a requested shape against numel; checks the total. */
static int infer_shape(mg_Context *ctx, const char *op, const mg_Tensor *t,
                       int ndim, const int64_t *req, int64_t *shape) {
  if (ndim > MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "%s: %d dimensions requested, at most %d "
                    "are supported", op, ndim, MG_MAXDIM);
  int infer = -1;
  int64_t known = 1, numel = mg_numel(t);
  for (int d = 0; d < ndim; d++) {
    if (req[d] == -1) {
      if (infer >= 0)
        return mg_error(ctx, MG_ESHAPE, "%s: only one size may be -1", op);
      infer = d;
    } else if (req[d] < 0) {
      return mg_error(ctx, MG_ESHAPE, "%s: invalid size %lld at dimension %d",
                      op, (long long)req[d], d + 1);
    } else {
      if (req[d] > 0 && known > INT64_MAX / req[d]) {
        char b[MG_SHAPE_BUFSZ];
        return mg_error(ctx, MG_ESHAPE, "%s: shape %s has more than 2^63 "
                        "elements", op, mg_shape_str(b, sizeof b, ndim, req));
      }
      known *= req[d];
    }
    shape[d] = req[d];
  }
  char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      return mg_error(ctx, MG_ESHAPE, "%s: shape %s is invalid for a tensor "
                      "of shape %s (%lld elements)", op,
                      mg_shape_str(ba, sizeof ba, ndim, req),
                      mg_shape_str(bb, sizeof bb, t->ndim, t->shape),
                      (long long)numel);
    shape[infer] = numel / known;
  } else if (known != numel) {
    return mg_error(ctx, MG_ESHAPE, "%s: shape %s is invalid for a tensor of "
                    "shape %s (%lld elements)", op,
                    mg_shape_str(ba, sizeof ba, ndim, req),
                    mg_shape_str(bb, sizeof bb, t->ndim, t->shape),
                    (long long)numel);
  }
  /* A zero-size result still gets strides from its other sizes. */
  return mg_check_shape(ctx, op, ndim, shape);
}

/* Strides for viewing t as shape without a copy, if the layout allows it.
 * Old dims are walked from the innermost out in chunks that are contiguous
 * within themselves; each chunk must be covered exactly by a run of new
 * dims, which then get strides inside that chunk. */
static int view_strides(const mg_Tensor *t, int ndim, const int64_t *shape,
                        int64_t *stride) {
  if (mg_numel(t) == 0 || mg_is_contiguous(t)) {
    mg_contiguous_strides(ndim, shape, stride);
    return 1;
  }
  int nd = ndim - 1;
  int64_t base = t->stride[t->ndim - 1], chunk = 1, covered = 1;
  for (int od = t->ndim - 1; od >= 0; od--) {
    chunk *= t->shape[od];
    int chunk_ends = od == 0 || (t->shape[od - 1] != 1 &&
                                 t->stride[od - 1] != chunk * base);
    if (!chunk_ends) continue;
    while (nd >= 0 && (covered < chunk || shape[nd] == 1)) {
      stride[nd] = covered * base;
      covered *= shape[nd];
      nd--;
    }
    if (covered != chunk) return 0;
    if (od > 0) {
      base = t->stride[od - 1];
      chunk = covered = 1;
    }
  }
  return nd == -1;
}

static int view_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                    int ndim, const int64_t *req) {
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int st = infer_shape(ctx, "view", t, ndim, req, shape);
  if (st) return st;
  if (!view_strides(t, ndim, shape, stride)) {
    char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
    return mg_error(ctx, MG_ESHAPE, "view: a tensor of shape %s with these "
                    "strides cannot be viewed as %s; use reshape (which "
                    "copies) or contiguous first",
                    mg_shape_str(ba, sizeof ba, t->ndim, t->shape),
                    mg_shape_str(bb, sizeof bb, ndim, shape));
  }
  return mg_make_view(ctx, out, t, ndim, shape, stride, t->offset);
}

static int reshape_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                       int ndim, const int64_t *req) {
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int st = infer_shape(ctx, "reshape", t, ndim, req, shape);
  if (st) return st;
  if (view_strides(t, ndim, shape, stride))
    return mg_make_view(ctx, out, t, ndim, shape, stride, t->offset);
  mg_Tensor *c = NULL;
  if ((st = clone_fwd(ctx, &c, t))) return st;
  mg_contiguous_strides(ndim, shape, stride);
  st = mg_make_view(ctx, out, c, ndim, shape, stride, 0);
  mg_tensor_decref(c);
  return st;
}

static int check_dim(mg_Context *ctx, const char *op, const mg_Tensor *t,
                     int dim) {
  if (dim < 0 || dim >= t->ndim)
    return mg_error(ctx, MG_EINDEX, "%s: dimension %d out of range for a "
                    "%d-dimensional tensor", op, dim + 1, t->ndim);
  return MG_OK;
}

static int transpose_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                         int d0, int d1) {
  int st;
  if ((st = check_dim(ctx, "transpose", t, d0)) ||
      (st = check_dim(ctx, "transpose", t, d1)))
    return st;
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  memcpy(stride, t->stride, sizeof stride);
  shape[d0] = t->shape[d1], shape[d1] = t->shape[d0];
  stride[d0] = t->stride[d1], stride[d1] = t->stride[d0];
  return mg_make_view(ctx, out, t, t->ndim, shape, stride, t->offset);
}

static int permute_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                       const int *dims) {
  int seen[MG_MAXDIM] = {0}, st;
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  for (int d = 0; d < t->ndim; d++) {
    if ((st = check_dim(ctx, "permute", t, dims[d]))) return st;
    if (seen[dims[d]]++)
      return mg_error(ctx, MG_EARG, "permute: dimension %d appears twice",
                      dims[d] + 1);
    shape[d] = t->shape[dims[d]];
    stride[d] = t->stride[dims[d]];
  }
  return mg_make_view(ctx, out, t, t->ndim, shape, stride, t->offset);
}

static int narrow_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                      int dim, int64_t start, int64_t len) {
  int st = check_dim(ctx, "narrow", t, dim);
  if (st) return st;
  if (start < 0 || len < 0 || start > t->shape[dim] ||
      len > t->shape[dim] - start) /* start + len could overflow */
    return mg_error(ctx, MG_EINDEX, "narrow: start %lld and length %lld do "
                    "not fit in size %lld of dimension %d", (long long)start + 1,
                    (long long)len, (long long)t->shape[dim], dim + 1);
  int64_t shape[MG_MAXDIM];
  memcpy(shape, t->shape, sizeof shape);
  shape[dim] = len;
  return mg_make_view(ctx, out, t, t->ndim, shape, t->stride,
                      t->offset + start * t->stride[dim]);
}

static int select_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                      int dim, int64_t index) {
  int st = check_dim(ctx, "select", t, dim);
  if (st) return st;
  if (index < 0 || index >= t->shape[dim])
    return mg_error(ctx, MG_EINDEX, "select: index %lld out of range for "
                    "size %lld of dimension %d", (long long)index + 1,
                    (long long)t->shape[dim], dim + 1);
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (d == dim) continue;
    shape[n] = t->shape[d];
    stride[n++] = t->stride[d];
  }
  return mg_make_view(ctx, out, t, n, shape, stride,
                      t->offset + index * t->stride[dim]);
}

static int squeeze_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                       int dim) {
  if (dim >= 0) {
    int st = check_dim(ctx, "squeeze", t, dim);
    if (st) return st;
  }
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 1 && (dim < 0 || d == dim)) continue;
    shape[n] = t->shape[d];
    stride[n++] = t->stride[d];
  }
  return mg_make_view(ctx, out, t, n, shape, stride, t->offset);
}

static int unsqueeze_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                         int dim) {
  if (dim < 0 || dim > t->ndim)
    return mg_error(ctx, MG_EINDEX, "unsqueeze: dimension %d out of range "
                    "for a %d-dimensional tensor (1..%d)", dim + 1, t->ndim,
                    t->ndim + 1);
  if (t->ndim >= MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "unsqueeze: at most %d dimensions are "
                    "supported", MG_MAXDIM);
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int n = 0;
  for (int d = 0; d <= t->ndim; d++) {
    if (d == dim) {
      shape[n] = 1;
      stride[n++] = d < t->ndim ? t->stride[d] * t->shape[d] : 1;
    }
    if (d < t->ndim) {
      shape[n] = t->shape[d];
      stride[n++] = t->stride[d];
    }
  }
  return mg_make_view(ctx, out, t, n, shape, stride, t->offset);
}

static int expand_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                      int ndim, const int64_t *req) {
  char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
  if (ndim < t->ndim || ndim > MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "expand: cannot expand shape %s to %s "
                    "(fewer dimensions)",
                    mg_shape_str(ba, sizeof ba, t->ndim, t->shape),
                    mg_shape_str(bb, sizeof bb, ndim, req));
  int64_t shape[MG_MAXDIM], stride[MG_MAXDIM];
  int lead = ndim - t->ndim;
  for (int d = 0; d < ndim; d++) {
    int td = d - lead;
    int64_t have = td >= 0 ? t->shape[td] : 1;
    int64_t want = req[d] == -1 && td >= 0 ? have : req[d];
    if (want < 0 || (have != want && have != 1))
      return mg_error(ctx, MG_ESHAPE, "expand: cannot expand shape %s to %s "
                      "(size %lld vs %lld at dimension %d)",
                      mg_shape_str(ba, sizeof ba, t->ndim, t->shape),
                      mg_shape_str(bb, sizeof bb, ndim, req), (long long)have,
                      (long long)req[d], d + 1);
    shape[d] = want;
    stride[d] = (td < 0 || have != want) ? 0 : t->stride[td];
  }
  return mg_make_view(ctx, out, t, ndim, shape, stride, t->offset);
}

static int clone_fwd(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t) {
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


static int to_dtype_fwd(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t,
                        mg_DType dt) {
  if (dt == t->dtype) {
    mg_tensor_incref(t);
    *out = t;
    return MG_OK;
  }
  mg_Tensor *c = NULL;
  int st = mg_alloc_tensor(ctx, &c, dt, t->ndim, t->shape);
  if (st) return st;
  mg_copy_(ctx, c, t);
  *out = c;
  return MG_OK;
}

/* ---- gradients of views and copies ----------------------------------------
 * The public view functions build their view with mg_make_view (which never
 * records: it also makes detached aliases and the kernels' scratch views)
 * and then, when t needs a gradient, record a node on the new tensor
 * struct, which stays a view sharing t's storage. The backward formulas
 * move the gradient back to t's geometry: reshape it, transpose or permute
 * it back, place it inside zeros (narrow, select), or sum it over the
 * expanded dims. Each hands the engine a contiguous tensor of t's shape, so
 * no later backward meets a strided or stride-0 gradient it did not make. */

/* Hands r to *out, recording it first as name(t) when t needs a gradient;
 * p0..p2 go to the node's i[] for the backward. Takes r over (and frees it
 * on failure). An r that is t itself (contiguous() of a contiguous tensor)
 * records nothing: t's own history is the right one. */
static int view_record(mg_Context *ctx, mg_Tensor **out, mg_Tensor *r,
                       const mg_Tensor *t, const char *name,
                       mg_BackwardFn backward, int64_t p0, int64_t p1,
                       int64_t p2) {
  mg_Tensor *ins[1] = {(mg_Tensor *)t};
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    int st = mg_record(ctx, r, name, backward, 1, ins, &n);
    if (st) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = p0, n->i[1] = p1, n->i[2] = p2;
  }
  *out = r;
  return MG_OK;
}

/* Hands x to the engine as a contiguous tensor (a copy only when x is
 * strided). */
static void bw_out_contiguous(mg_Bw *b, mg_Tensor **slot, mg_Tensor *x) {
  mg_Tensor *c = NULL;
  if (b->st || !x) return;
  mg_bw_out(b, slot, mg_bw_hold(b, mg_contiguous(b->ctx, &c, x), &c));
}

/* view, reshape, squeeze, unsqueeze, flatten: g reshaped to t's shape. */
static int reshape_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                            mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *r = NULL;
  r = mg_bw_hold(&b, reshape_fwd(ctx, &r, g, n->in_ndim[0], n->in_shape[0]), &r);
  bw_out_contiguous(&b, &grads[0], r);
  return mg_bw_end(&b);
}

int mg_view(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int ndim,
            const int64_t *shape) {
  mg_Tensor *r = NULL;
  int st = view_fwd(ctx, &r, t, ndim, shape);
  if (st) return st;
  return view_record(ctx, out, r, t, "view", reshape_backward, 0, 0, 0);
}

int mg_reshape(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               int ndim, const int64_t *shape) {
  mg_Tensor *r = NULL;
  int st = reshape_fwd(ctx, &r, t, ndim, shape);
  if (st) return st;
  return view_record(ctx, out, r, t, "reshape", reshape_backward, 0, 0, 0);
}

int mg_squeeze(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               int dim) {
  mg_Tensor *r = NULL;
  int st = squeeze_fwd(ctx, &r, t, dim);
  if (st) return st;
  return view_record(ctx, out, r, t, "squeeze", reshape_backward, 0, 0, 0);
}

int mg_unsqueeze(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int dim) {
  mg_Tensor *r = NULL;
  int st = unsqueeze_fwd(ctx, &r, t, dim);
  if (st) return st;
  return view_record(ctx, out, r, t, "unsqueeze", reshape_backward, 0, 0, 0);
}

/* transpose(d0, d1) is its own inverse. */
static int transpose_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                              mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *r = NULL;
  r = mg_bw_hold(&b, transpose_fwd(ctx, &r, g, (int)n->i[0], (int)n->i[1]), &r);
  bw_out_contiguous(&b, &grads[0], r);
  return mg_bw_end(&b);
}

int mg_transpose(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int d0, int d1) {
  mg_Tensor *r = NULL;
  int st = transpose_fwd(ctx, &r, t, d0, d1);
  if (st) return st;
  return view_record(ctx, out, r, t, "transpose", transpose_backward, d0, d1,
                     0);
}

/* g permuted by the inverse permutation, packed in i[0] four bits a dim
 * (MG_MAXDIM == 16 dims fit in 64 bits). */
_Static_assert(MG_MAXDIM <= 16, "permute packs a dim into four bits");

static int permute_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                            mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  int inv[MG_MAXDIM];
  uint64_t packed = (uint64_t)n->i[0];
  for (int d = 0; d < n->in_ndim[0]; d++) inv[d] = (int)((packed >> (4 * d)) & 15);
  mg_Tensor *r = NULL;
  r = mg_bw_hold(&b, permute_fwd(ctx, &r, g, inv), &r);
  bw_out_contiguous(&b, &grads[0], r);
  return mg_bw_end(&b);
}

int mg_permute(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               const int *dims) {
  mg_Tensor *r = NULL;
  int st = permute_fwd(ctx, &r, t, dims);
  if (st) return st;
  uint64_t packed = 0; /* inv[dims[d]] = d */
  for (int d = 0; d < t->ndim; d++) packed |= (uint64_t)d << (4 * dims[d]);
  return view_record(ctx, out, r, t, "permute", permute_backward,
                     (int64_t)packed, 0, 0);
}

/* narrow and select: zeros of t's shape with g copied into the same
 * window (i[0] = dim, i[1] = start or index, i[2] = length; -1 for select). */
static int window_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *z = NULL, *w = NULL;
  z = mg_bw_hold(&b, mg_full(ctx, &z, g->dtype, n->in_ndim[0], n->in_shape[0], 0), &z);
  if (z) {
    int dim = (int)n->i[0];
    w = mg_bw_hold(&b, n->i[2] < 0 ? select_fwd(ctx, &w, z, dim, n->i[1])
                                   : narrow_fwd(ctx, &w, z, dim, n->i[1], n->i[2]), &w);
  }
  if (w && (b.st = mg_copy_(ctx, w, g)) == MG_OK) mg_bw_out(&b, &grads[0], z);
  return mg_bw_end(&b);
}

int mg_narrow(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
              int64_t start, int64_t len) {
  mg_Tensor *r = NULL;
  int st = narrow_fwd(ctx, &r, t, dim, start, len);
  if (st) return st;
  return view_record(ctx, out, r, t, "narrow", window_backward, dim, start,
                     len);
}

int mg_select(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
              int64_t index) {
  mg_Tensor *r = NULL;
  int st = select_fwd(ctx, &r, t, dim, index);
  if (st) return st;
  return view_record(ctx, out, r, t, "select", window_backward, dim, index,
                     -1);
}

/* expand: g summed over the broadcast dims back to t's shape. */
static int expand_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  bw_out_contiguous(&b, &grads[0], mg_bw_sum_to(&b, g, n->in_ndim[0], n->in_shape[0]));
  return mg_bw_end(&b);
}

int mg_expand(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int ndim,
              const int64_t *shape) {
  mg_Tensor *r = NULL;
  int st = expand_fwd(ctx, &r, t, ndim, shape);
  if (st) return st;
  return view_record(ctx, out, r, t, "expand", expand_backward, 0, 0, 0);
}

/* clone, contiguous (when it copies) and to_dtype pass g through; the
 * engine casts it to t's dtype. */
static int identity_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                             mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  bw_out_contiguous(&b, &grads[0], g);
  return mg_bw_end(&b);
}

int mg_clone(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t) {
  mg_Tensor *r = NULL;
  int st = clone_fwd(ctx, &r, t);
  if (st) return st;
  return view_record(ctx, out, r, t, "clone", identity_backward, 0, 0, 0);
}

int mg_contiguous(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t) {
  if (mg_is_contiguous(t)) {
    mg_tensor_incref(t);
    *out = t;
    return MG_OK;
  }
  mg_Tensor *r = NULL;
  int st = clone_fwd(ctx, &r, t);
  if (st) return st;
  return view_record(ctx, out, r, t, "contiguous", identity_backward, 0, 0, 0);
}

/* A conversion to int64 leaves the graph: integer tensors have no
 * gradient (as in PyTorch). */
int mg_to_dtype(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t, mg_DType dt) {
  mg_Tensor *r = NULL;
  int st = to_dtype_fwd(ctx, &r, t, dt);
  if (st) return st;
  if ((dt != MG_F32 && dt != MG_F64) || r == t) { /* no gradient into others */
    *out = r;
    return MG_OK;
  }
  return view_record(ctx, out, r, t, "to", identity_backward, 0, 0, 0);
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
