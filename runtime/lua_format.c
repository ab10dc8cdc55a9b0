/*
 * lua_format.c — how a tensor prints: its values as a Lua table literal
 * (so it can be pasted back into mg.tensor), then its dtype and shape.
 * Large tensors are abbreviated the way NumPy does: past 1000 elements,
 * every dim longer than 6 shows its first and last 3 entries around "...".
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua_bind.h"

#define SUMMARY_THRESHOLD 1000 /* elements before abbreviating */
#define EDGE_ITEMS 3           /* entries kept at each end of a dim */
#define LINE_WIDTH 78          /* wrap the innermost dim past this */

typedef struct {
  const mg_Tensor *t;
  int summarize;
  int integral;       /* every float value is a whole number */
  int sci;            /* use scientific notation */
  int width;          /* characters per value, right-aligned */
  int64_t stride[MG_MAXDIM]; /* row-major strides for linear positions */
} Fmt;

static int shown(const Fmt *f, int d, int64_t i) {
  int64_t n = f->t->shape[d];
  return !f->summarize || n <= 2 * EDGE_ITEMS || i < EDGE_ITEMS ||
         i >= n - EDGE_ITEMS;
}

static void format_value(const Fmt *f, double v, int64_t iv, char *buf,
                         size_t n) {
  if (f->t->dtype == MG_BOOL) /* a literal mg.tensor reads back as bool */
    snprintf(buf, n, "%s", v != 0 ? "true" : "false");
  else if (mg_dtype_is_int(f->t->dtype))
    snprintf(buf, n, "%lld", (long long)iv);
  else if (isnan(v))
    snprintf(buf, n, "nan");
  else if (isinf(v))
    snprintf(buf, n, v > 0 ? "inf" : "-inf");
  else if (f->sci)
    snprintf(buf, n, "%.4e", v);
  else if (f->integral)
    snprintf(buf, n, "%.0f.", v);
  else
    snprintf(buf, n, "%.4f", v);
}

/* Visits the shown elements to pick the notation and the column width. */
static void measure(Fmt *f, int d, int64_t base, double *lo, double *hi,
                    int pass) {
  const mg_Tensor *t = f->t;
  for (int64_t i = 0; i < t->shape[d]; i++) {
    if (!shown(f, d, i)) {
      i = t->shape[d] - EDGE_ITEMS - 1;
      continue;
    }
    int64_t pos = base + i * f->stride[d];
    if (d < t->ndim - 1) {
      measure(f, d + 1, pos, lo, hi, pass);
      continue;
    }
    double v = mg_read(t, pos);
    if (pass == 0) {
      if (!isfinite(v)) continue;
      double a = fabs(v);
      if (v != floor(v)) f->integral = 0;
      if (a > *hi) *hi = a;
      if (a > 0 && a < *lo) *lo = a;
    } else {
      char buf[64];
      format_value(f, v, mg_dtype_is_int(t->dtype) ? mg_read_i64(t, pos) : 0, buf,
                   sizeof buf);
      int w = (int)strlen(buf);
      if (w > f->width) f->width = w;
    }
  }
}

static void emit(Fmt *f, luaL_Buffer *b, int d, int64_t base, int indent) {
  const mg_Tensor *t = f->t;
  luaL_addchar(b, '{');
  int col = indent + 1;
  for (int64_t i = 0; i < t->shape[d]; i++) {
    if (!shown(f, d, i)) {
      if (d == t->ndim - 1) {
        luaL_addstring(b, "..., ");
        col += 5;
      } else {
        luaL_addstring(b, "...,\n");
        for (int k = 0; k < indent + 1; k++) luaL_addchar(b, ' ');
      }
      i = t->shape[d] - EDGE_ITEMS - 1;
      continue;
    }
    int64_t pos = base + i * f->stride[d];
    if (d < t->ndim - 1) {
      emit(f, b, d + 1, pos, indent + 1);
    } else {
      char buf[64];
      format_value(f, mg_read(t, pos),
                   mg_dtype_is_int(t->dtype) ? mg_read_i64(t, pos) : 0, buf,
                   sizeof buf);
      if (col + f->width + 2 > LINE_WIDTH && i > 0) {
        luaL_addchar(b, '\n');
        for (int k = 0; k < indent + 1; k++) luaL_addchar(b, ' ');
        col = indent + 1;
      }
      for (int k = (int)strlen(buf); k < f->width; k++) luaL_addchar(b, ' ');
      luaL_addstring(b, buf);
      col += f->width;
    }
    if (i < t->shape[d] - 1) {
      luaL_addchar(b, ',');
      if (d < t->ndim - 1) {
        luaL_addchar(b, '\n');
        if (d < t->ndim - 2) luaL_addchar(b, '\n');
        for (int k = 0; k < indent + 1; k++) luaL_addchar(b, ' ');
      } else {
        luaL_addchar(b, ' ');
        col += 2;
      }
    }
  }
  luaL_addchar(b, '}');
}

void mgl_push_tostring(lua_State *L, const mg_Tensor *t) {
  Fmt f;
  memset(&f, 0, sizeof f);
  f.t = t;
  f.integral = 1;
  int64_t numel = mg_numel(t);
  /* An empty tensor prints its nesting down to the first size-0 dim
   * ([2,0] is {{}, {}}); those empty rows count toward abbreviating. */
  int64_t rows = 1;
  for (int d = 0; d < t->ndim && t->shape[d] > 0; d++) rows *= t->shape[d];
  f.summarize = numel > SUMMARY_THRESHOLD || (numel == 0 && rows > SUMMARY_THRESHOLD);
  mg_contiguous_strides(t->ndim, t->shape, f.stride);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (t->ndim > 0) {
    double lo = INFINITY, hi = 0;
    measure(&f, 0, 0, &lo, &hi, 0);
    f.sci = !mg_dtype_is_int(t->dtype) && !f.integral &&
            (hi >= 1e8 || (lo < 1e-4 && lo > 0));
    if (f.integral && hi >= 1e8) f.sci = 1, f.integral = 0;
    measure(&f, 0, 0, &lo, &hi, 1);
    emit(&f, &b, 0, 0, 0);
  } else {
    double v = mg_read(t, 0);
    f.integral = isfinite(v) && v == floor(v) && fabs(v) < 1e8;
    f.sci = !f.integral && isfinite(v) && v != 0 &&
            (fabs(v) >= 1e8 || fabs(v) < 1e-4);
    char buf[64];
    format_value(&f, v, mg_dtype_is_int(t->dtype) ? mg_read_i64(t, 0) : 0, buf,
                 sizeof buf);
    luaL_addstring(&b, buf);
  }
  char shape[MG_SHAPE_BUFSZ];
  lua_pushfstring(L, "\n[%s tensor of shape %s]", mg_dtype_name(t->dtype),
                  mg_shape_str(shape, sizeof shape, t->ndim, t->shape));
  luaL_addvalue(&b);
  luaL_pushresult(&b);
}
