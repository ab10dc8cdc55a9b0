/*
 * lua_imageops.c — the image ops (mg_imageops.h) from Lua, registered in
 * the core module with a leading underscore (mg._image_resize, ...) and
 * published by moongrad.transforms (T.F.resize, T.Resize, ...), which
 * checks the options and draws the random parameters; these translate
 * positional arguments. Images may be uint8 (mgl_check_any).
 */
#include <string.h>

#include "lua_bind.h"
#include "mg_imageops.h"

/* The image at arg 1, uint8 included; raises naming op otherwise. */
static mg_Tensor *image_arg(lua_State *L, const char *op) {
  mg_Tensor *t = mgl_test_any(L, 1);
  if (!t)
    luaL_error(L, "%s: the image must be a tensor, got %s", op,
               lua_isnone(L, 1) ? "nil" : luaL_typename(L, 1));
  return t;
}

/* The list of numbers at arg (a number counts as a list of one) in a
 * userdata pushed on the stack (freed by the collector, so an error later
 * leaks nothing); *n receives its length. NULL when arg is nil. The
 * caller fixes the stack's size first (lua_settop), so that a pushed
 * userdata never stands in for an argument that was not given. */
static double *numbers_arg(lua_State *L, int arg, int64_t *n, const char *op,
                           const char *what) {
  *n = 0;
  if (lua_isnoneornil(L, arg)) return NULL;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    double *v = lua_newuserdatauv(L, sizeof *v, 0);
    v[0] = lua_tonumber(L, arg);
    *n = 1;
    return v;
  }
  if (lua_type(L, arg) != LUA_TTABLE)
    luaL_error(L, "%s: %s must be a number or a list of numbers, got %s", op, what,
               luaL_typename(L, arg));
  lua_Integer len = luaL_len(L, arg);
  if (len < 1 || len > 1 << 20)
    luaL_error(L, "%s: %s must hold 1 or more numbers, got %I", op, what, len);
  double *v = lua_newuserdatauv(L, (size_t)len * sizeof *v, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti(L, arg, i);
    if (lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "%s: %s[%I] must be a number, got %s", op, what, i,
                 luaL_typename(L, -1));
    v[i - 1] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  *n = len;
  return v;
}

/* A name from the NULL-ended list at arg, as its index. */
static int name_arg(lua_State *L, int arg, int (*lookup)(const char *),
                    const char *op, const char *what) {
  const char *s = lua_tostring(L, arg);
  int k = s && lua_type(L, arg) == LUA_TSTRING ? lookup(s) : -1;
  if (k < 0)
    luaL_error(L, "%s: unknown %s %s", op, what,
               s ? s : luaL_typename(L, arg));
  return k;
}

/* mg._image_resize(x, h, w, interpolation, antialias) */
static int f_resize(lua_State *L) {
  const char *op = "resize";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = image_arg(L, op);
  int64_t h = mgl_checkint(L, 2, op, "height"), w = mgl_checkint(L, 3, op, "width");
  int mode = name_arg(L, 4, mg_interp_from_name, op, "interpolation");
  int aa = lua_toboolean(L, 5);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_resize(ctx, out, x, h, w, (mg_Interp)mode, aa));
  return 1;
}

static int color_from_name(const char *s) {
  static const char *const names[MG_NCOLOR] = {"brightness", "contrast",
                                               "saturation", "hue"};
  for (int i = 0; i < MG_NCOLOR; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

/* mg._image_color(x, {kind1, factor1, kind2, factor2, ...}) */
static int f_color(lua_State *L) {
  const char *op = "adjust_color";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = image_arg(L, op);
  luaL_checktype(L, 2, LUA_TTABLE);
  mg_ColorStep steps[16];
  lua_Integer len = luaL_len(L, 2);
  if (len < 0 || len > 32 || len % 2)
    luaL_error(L, "%s: expected up to 16 pairs of a name and a factor", op);
  int n = (int)(len / 2);
  for (int k = 0; k < n; k++) {
    lua_geti(L, 2, 2 * k + 1);
    steps[k].kind = (mg_ColorKind)name_arg(L, -1, color_from_name, op, "adjustment");
    lua_geti(L, 2, 2 * k + 2);
    steps[k].factor = mgl_checknum(L, -1, op, "factor");
    lua_pop(L, 2);
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_color(ctx, out, x, steps, n));
  return 1;
}

/* mg._image_grayscale(x, num_output_channels) */
static int f_grayscale(lua_State *L) {
  const char *op = "rgb_to_grayscale";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = image_arg(L, op);
  int64_t n = mgl_checkint(L, 2, op, "num_output_channels");
  if (n != 1 && n != 3)
    luaL_error(L, "%s: num_output_channels must be 1 or 3, got %I", op, (lua_Integer)n);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_grayscale(ctx, out, x, (int)n));
  return 1;
}

/* mg._image_warp(x, theta, out_h, out_w, interpolation, fill): theta is a
 * list of 6 numbers (every image) or a tensor [N, 2, 3] (one per image);
 * fill is nil, a number or a list. */
static int f_warp(lua_State *L) {
  const char *op = "warp";
  lua_settop(L, 6);
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = image_arg(L, op);
  int64_t nt = 0, nfill = 0;
  double *theta;
  mg_Tensor *tt = mgl_test(L, 2);
  if (tt) {
    int64_t m = mg_numel(tt);
    if (m < 6 || m % 6 || tt->shape[tt->ndim - 1] != 3)
      luaL_error(L, "%s: theta must be [2, 3] or [N, 2, 3]", op);
    theta = lua_newuserdatauv(L, (size_t)m * sizeof *theta, 0);
    for (int64_t i = 0; i < m; i++) theta[i] = mg_read(tt, i);
    nt = m / 6;
  } else {
    theta = numbers_arg(L, 2, &nt, op, "theta");
    if (nt != 6) luaL_error(L, "%s: theta must hold 6 numbers", op);
    nt = 1;
  }
  int64_t h = mgl_checkint(L, 3, op, "height"), w = mgl_checkint(L, 4, op, "width");
  int mode = name_arg(L, 5, mg_interp_from_name, op, "interpolation");
  double *fill = numbers_arg(L, 6, &nfill, op, "fill");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_warp(ctx, out, x, theta, nt, h, w, (mg_Interp)mode,
                                fill, nfill));
  return 1;
}

/* mg._image_pad(x, left, top, right, bottom, mode, fill) */
static int f_pad(lua_State *L) {
  const char *op = "pad";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = image_arg(L, op);
  int64_t p[4];
  for (int k = 0; k < 4; k++) p[k] = mgl_checkint(L, 2 + k, op, "padding");
  int mode = name_arg(L, 6, mg_pad_mode_from_name, op, "padding mode");
  double fill = lua_isnoneornil(L, 7) ? 0 : mgl_checknum(L, 7, op, "fill");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_pad(ctx, out, x, p[0], p[1], p[2], p[3],
                               (mg_PadMode)mode, fill));
  return 1;
}

/* mg._image_convert(x, dtype) */
static int f_convert(lua_State *L) {
  const char *op = "convert_image_dtype";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = image_arg(L, op);
  mg_DType dt = mgl_optdtype_any(L, 2, MG_F32, op);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_convert(ctx, out, x, dt));
  return 1;
}

/* mg._image_normalize(x, mean, std) */
static int f_normalize(lua_State *L) {
  const char *op = "normalize";
  lua_settop(L, 3);
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = image_arg(L, op);
  int64_t nm = 0, ns = 0;
  double *mean = numbers_arg(L, 2, &nm, op, "mean");
  double *std = numbers_arg(L, 3, &ns, op, "std");
  if (!mean || !std || nm != ns)
    luaL_error(L, "%s: mean and std must be lists of the same length", op);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_normalize(ctx, out, x, mean, std, nm));
  return 1;
}

const luaL_Reg mgl_imageops_functions[] = {
    {"_image_resize", f_resize},
    {"_image_color", f_color},
    {"_image_grayscale", f_grayscale},
    {"_image_warp", f_warp},
    {"_image_pad", f_pad},
    {"_image_convert", f_convert},
    {"_image_normalize", f_normalize},
    {NULL, NULL}};
