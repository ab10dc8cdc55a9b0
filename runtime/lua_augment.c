/*
 * lua_augment.c — the augmentation primitives (ops_augment.c) from Lua.
 *
 * Registered in the core module with a leading underscore (mg._flip,
 * mg._crop_with_padding, mg._affine, mg._erase, mg._paste) and published by
 * moongrad.transforms (transforms.flip_horizontal, ...), which reads the
 * options and draws the per-sample parameters; these only translate
 * positional arguments.
 */
#include "mg_augment.h"
#include "lua_bind.h"

/* The tensor at arg; raises "op: what must be a tensor, got T" otherwise.
 * The images of flip and crop_with_padding may be uint8 (tensor_arg_any):
 * those only move pixels. */
static mg_Tensor *tensor_arg_of(lua_State *L, int arg, const char *op,
                                const char *what, int any) {
  mg_Tensor *t = any ? mgl_test_any(L, arg) : mgl_test(L, arg);
  if (!t)
    luaL_error(L, "%s: %s must be a tensor, got %s", op, what,
               lua_isnone(L, arg) ? "nil" : luaL_typename(L, arg));
  return t;
}

static mg_Tensor *tensor_arg(lua_State *L, int arg, const char *op,
                             const char *what) {
  return tensor_arg_of(L, arg, op, what, 0);
}

/* mg._flip(x, mask, vertical) */
static int f_flip(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  int vertical = lua_toboolean(L, 3);
  const char *op = vertical ? "flip_vertical" : "flip_horizontal";
  mg_Tensor *x = tensor_arg_of(L, 1, op, "x", 1), *m = tensor_arg(L, 2, op, "mask");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_flip(ctx, out, x, m, vertical));
  return 1;
}

/* mg._crop_with_padding(x, top, left, out_h, out_w, pad_h, pad_w, fill) */
static int f_crop_with_padding(lua_State *L) {
  const char *op = "crop_with_padding";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg_of(L, 1, op, "x", 1), *top = tensor_arg(L, 2, op, "top"),
            *left = tensor_arg(L, 3, op, "left");
  int64_t oh = mgl_checkint(L, 4, op, "height"), ow = mgl_checkint(L, 5, op, "width");
  int64_t ph = mgl_checkint(L, 6, op, "padding"), pw = mgl_checkint(L, 7, op, "padding");
  double fill = mgl_checknum(L, 8, op, "fill");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_crop_with_padding(ctx, out, x, top, left, oh, ow, ph, pw, fill));
  return 1;
}

/* mg._affine(x, theta, fill) */
static int f_affine(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, "affine", "x"),
            *theta = tensor_arg(L, 2, "affine", "theta");
  double fill = mgl_checknum(L, 3, "affine", "fill");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_affine(ctx, out, x, theta, fill));
  return 1;
}

/* mg._erase(x, boxes, value) */
static int f_erase(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, "erase", "x"),
            *boxes = tensor_arg(L, 2, "erase", "boxes");
  double value = mgl_checknum(L, 3, "erase", "value");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_erase(ctx, out, x, boxes, value));
  return 1;
}

/* mg._paste(x, src, perm or nil, boxes) */
static int f_paste(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, "paste", "x"), *src = tensor_arg(L, 2, "paste", "src");
  mg_Tensor *perm = lua_isnoneornil(L, 3) ? NULL : tensor_arg(L, 3, "paste", "perm");
  mg_Tensor *boxes = tensor_arg(L, 4, "paste", "boxes");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_paste(ctx, out, x, src, perm, boxes));
  return 1;
}

const luaL_Reg mgl_augment_functions[] = {
    {"_flip", f_flip},
    {"_crop_with_padding", f_crop_with_padding},
    {"_affine", f_affine},
    {"_erase", f_erase},
    {"_paste", f_paste},
    {NULL, NULL}};
