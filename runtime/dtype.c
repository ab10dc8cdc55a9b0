/*
 * dtype.c — the dtypes: names, sizes, kinds, promotion, and one element of
 * any dtype read or written as a number (the conversions every copy, fill
 * and element access goes through, as PyTorch converts on x86).
 */
#include <math.h>
#include <string.h>

#include "mg_internal.h"

static const char *const dtype_names[MG_NDTYPES] = {
    "float32", "float64", "int64", "uint8", "float16",
    "bfloat16", "int32", "int16", "int8", "bool"};
static const size_t dtype_sizes[MG_NDTYPES] = {4, 8, 8, 1, 2, 2, 4, 2, 1, 1};

const char *mg_dtype_name(mg_DType dt) { return dtype_names[dt]; }
size_t mg_dtype_size(mg_DType dt) { return dtype_sizes[dt]; }

int mg_dtype_is_int(mg_DType dt) {
  return dt == MG_I64 || dt == MG_I32 || dt == MG_I16 || dt == MG_I8 ||
         dt == MG_U8;
}

int mg_dtype_is_float(mg_DType dt) {
  return dt == MG_F32 || dt == MG_F64 || dt == MG_F16 || dt == MG_BF16;
}

int mg_dtype_computes(mg_DType dt) {
  return dt == MG_F32 || dt == MG_F64 || dt == MG_I64;
}

int mg_dtype_from_name(const char *name) {
  for (int i = 0; i < MG_NDTYPES; i++)
    if (strcmp(name, dtype_names[i]) == 0) return i;
  return -1;
}

mg_DType mg_promote(mg_DType a, mg_DType b) {
  if (a == b || b == MG_BOOL) return a;
  if (a == MG_BOOL) return b;
  int fa = mg_dtype_is_float(a), fb = mg_dtype_is_float(b);
  if (fa != fb) return fa ? a : b; /* a float wins over any integer */
  if (fa) {
    if (a == MG_F64 || b == MG_F64) return MG_F64;
    return MG_F32; /* float32 with a half, or float16 with bfloat16 */
  }
  if (a == MG_U8 || b == MG_U8) { /* the signed type that holds both */
    mg_DType s = a == MG_U8 ? b : a;
    return s == MG_I8 ? MG_I16 : s;
  }
  return dtype_sizes[a] >= dtype_sizes[b] ? a : b;
}

/* The integer range of each integer dtype (for values written in). */
static int int_range(mg_DType dt, double *lo, double *hi) {
  switch (dt) {
  case MG_I32: *lo = INT32_MIN, *hi = INT32_MAX; return 1;
  case MG_I16: *lo = INT16_MIN, *hi = INT16_MAX; return 1;
  case MG_I8: *lo = INT8_MIN, *hi = INT8_MAX; return 1;
  case MG_U8: *lo = 0, *hi = UINT8_MAX; return 1;
  default: return 0;
  }
}

int mg_value_fits(mg_DType dt, double v) {
  double lo, hi;
  if (int_range(dt, &lo, &hi)) return v >= lo && v <= hi && v == floor(v);
  if (dt == MG_F16) return !isfinite(v) || fabs(v) < 65520; /* rounds to 65504 */
  if (dt == MG_BF16) return !isfinite(v) || isfinite(mg_bf2f(mg_f2bf((float)v)));
  return 1;
}

const char *mg_dtype_range(mg_DType dt) {
  switch (dt) {
  case MG_I32: return "an integer from -2147483648 to 2147483647";
  case MG_I16: return "an integer from -32768 to 32767";
  case MG_I8: return "an integer from -128 to 127";
  case MG_U8: return "an integer from 0 to 255";
  case MG_F16: return "finite values up to 65504 in magnitude";
  case MG_BF16: return "finite values up to 3.39e38 in magnitude";
  default: return "any number";
  }
}

/* ---- one element ------------------------------------------------------------ */

/* d converted to int32 as x86's cvttsd2si does (what PyTorch's
 * static_cast gives there): truncated toward zero, and INT32_MIN for NaN
 * and for anything outside int32's range. int16 and int8 keep its low
 * bits. */
static int32_t f2i32(double d) {
  return d > -2147483649.0 && d < 2147483648.0 ? (int32_t)d : INT32_MIN;
}

double mg_load_f64(const void *p, mg_DType dt) {
  switch (dt) {
  case MG_F32: return *(const float *)p;
  case MG_F64: return *(const double *)p;
  case MG_F16: return mg_h2f(*(const uint16_t *)p);
  case MG_BF16: return mg_bf2f(*(const uint16_t *)p);
  default: return (double)mg_load_i64(p, dt);
  }
}

int64_t mg_load_i64(const void *p, mg_DType dt) {
  switch (dt) {
  case MG_I64: return *(const int64_t *)p;
  case MG_I32: return *(const int32_t *)p;
  case MG_I16: return *(const int16_t *)p;
  case MG_I8: return *(const int8_t *)p;
  case MG_U8: return *(const uint8_t *)p;
  case MG_BOOL: return *(const uint8_t *)p != 0;
  default: return mg_f2i64(mg_load_f64(p, dt));
  }
}

void mg_store_f64(void *p, mg_DType dt, double v) {
  switch (dt) {
  case MG_F32: *(float *)p = (float)v; break;
  case MG_F64: *(double *)p = v; break;
  /* through float32, as PyTorch's Half(float) and BFloat16(float) do */
  case MG_F16: *(uint16_t *)p = mg_f2h((float)v); break;
  case MG_BF16: *(uint16_t *)p = mg_f2bf((float)v); break;
  case MG_I64: *(int64_t *)p = mg_f2i64(v); break;
  case MG_I32: *(int32_t *)p = f2i32(v); break;
  case MG_I16: *(int16_t *)p = (int16_t)f2i32(v); break;
  case MG_I8: *(int8_t *)p = (int8_t)f2i32(v); break;
  case MG_U8: *(uint8_t *)p = mg_f2u8(v); break;
  case MG_BOOL: *(uint8_t *)p = v != 0; break; /* NaN is true */
  default: break;
  }
}

void mg_store_i64(void *p, mg_DType dt, int64_t v) {
  switch (dt) {
  case MG_I64: *(int64_t *)p = v; break;
  case MG_I32: *(int32_t *)p = (int32_t)v; break; /* low bits: wraps */
  case MG_I16: *(int16_t *)p = (int16_t)v; break;
  case MG_I8: *(int8_t *)p = (int8_t)v; break;
  case MG_U8: *(uint8_t *)p = (uint8_t)v; break;
  case MG_BOOL: *(uint8_t *)p = v != 0; break;
  case MG_F64: *(double *)p = (double)v; break;
  default: mg_store_f64(p, dt, (float)v); break; /* float32 and halves */
  }
}
