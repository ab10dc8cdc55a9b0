/*
 * lua_conv.c — the convolutions (ops_conv.c) and padding (ops_pad.c) from
 * Lua: mg._conv2d, mg._conv_transpose2d and mg._pad, published as
 * moongrad.functional's F.conv2d, F.conv_transpose2d and F.pad. Options
 * are read here, so a bad one is reported at the caller's line.
 */
#include <string.h>

#include "lua_bind.h"
#include "mg_conv.h"
#include "mg_conv_dnnl.h"

/* Option name of the table at arg as a pair: a number n gives {n, n}, a
 * table {a, b} gives {a, b}; absent gives {def, def}. */
static void pair_opt(lua_State *L, int arg, const char *op, const char *name,
                     int64_t def, int64_t *p) {
  p[0] = p[1] = def;
  if (lua_isnoneornil(L, arg)) return;
  int t = lua_getfield(L, arg, name);
  if (t == LUA_TNUMBER) {
    int ok;
    p[0] = p[1] = (int64_t)lua_tointegerx(L, -1, &ok);
    if (!ok)
      luaL_error(L, "%s: option '%s' must be an integer or a pair of "
                 "integers, got %s", op, name, lua_tostring(L, -1));
  } else if (t == LUA_TTABLE) {
    if (luaL_len(L, -1) != 2)
      luaL_error(L, "%s: option '%s' must be an integer or a pair of "
                 "integers, got a table of length %d", op, name, (int)luaL_len(L, -1));
    for (int k = 0; k < 2; k++) {
      int ok;
      lua_geti(L, -1, k + 1);
      p[k] = (int64_t)lua_tointegerx(L, -1, &ok);
      if (!ok || lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "%s: option '%s' must be an integer or a pair of "
                   "integers, got %s in position %d", op, name,
                   luaL_typename(L, -1), k + 1);
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    luaL_error(L, "%s: option '%s' must be an integer or a pair of "
               "integers, got %s", op, name, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

static mg_Tensor *tensor_arg(lua_State *L, int arg, const char *op,
                             const char *what, int opt) {
  if (opt && lua_isnoneornil(L, arg)) return NULL;
  mg_Tensor *t = mgl_test(L, arg);
  if (!t)
    luaL_error(L, "%s: %s must be a tensor%s, got %s", op, what,
               opt ? " or nil" : "", lua_isnone(L, arg) ? "nil" : luaL_typename(L, arg));
  return t;
}

/* The options of both convolutions; transposed reads output_padding. */
static void conv_opts(lua_State *L, int arg, const char *op, int transposed,
                      mg_Conv2dOpts *o) {
  static const char *const known[] = {"stride", "padding", "dilation",
                                      "groups", NULL};
  static const char *const known_t[] = {"stride", "padding", "dilation",
                                        "groups", "output_padding", NULL};
  if (!lua_isnoneornil(L, arg)) luaL_checktype(L, arg, LUA_TTABLE);
  mgl_check_options(L, arg, transposed ? known_t : known, op);
  memset(o, 0, sizeof *o);
  pair_opt(L, arg, op, "stride", 1, o->stride);
  pair_opt(L, arg, op, "dilation", 1, o->dilation);
  /* conv2d's padding may be "same" or "valid" (zero), as in PyTorch */
  if (!transposed && !lua_isnoneornil(L, arg) &&
      lua_getfield(L, arg, "padding") == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    if (strcmp(s, "same") == 0) o->same = 1;
    else if (strcmp(s, "valid") != 0)
      luaL_error(L, "%s: option 'padding' must be an integer, a pair of "
                 "integers, \"same\" or \"valid\", got \"%s\"", op, s);
    lua_pop(L, 1);
  } else {
    if (!transposed && !lua_isnoneornil(L, arg)) lua_pop(L, 1);
    pair_opt(L, arg, op, "padding", 0, o->padding);
  }
  if (transposed) pair_opt(L, arg, op, "output_padding", 0, o->output_padding);
  int64_t g[2];
  pair_opt(L, arg, op, "groups", 1, g);
  if (g[0] != g[1]) luaL_error(L, "%s: option 'groups' must be an integer", op);
  o->groups = g[0];
}

/* F.conv2d(x, w [, b [, {stride = 1, padding = 0, dilation = 1, groups = 1}]]),
 * padding also "same" or "valid" */
static int f_conv2d(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, "conv2d", "input", 0);
  mg_Tensor *w = tensor_arg(L, 2, "conv2d", "weight", 0);
  mg_Tensor *b = tensor_arg(L, 3, "conv2d", "bias", 1);
  mg_Conv2dOpts o;
  conv_opts(L, 4, "conv2d", 0, &o);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_conv2d(ctx, out, x, w, b, &o));
  return 1;
}

/* F.conv_transpose2d(x, w [, b [, {stride = 1, padding = 0,
 * output_padding = 0, groups = 1, dilation = 1}]]) */
static int f_conv_transpose2d(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *op = "conv_transpose2d";
  mg_Tensor *x = tensor_arg(L, 1, op, "input", 0);
  mg_Tensor *w = tensor_arg(L, 2, op, "weight", 0);
  mg_Tensor *b = tensor_arg(L, 3, op, "bias", 1);
  mg_Conv2dOpts o;
  conv_opts(L, 4, op, 1, &o);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_conv_transpose2d(ctx, out, x, w, b, &o));
  return 1;
}

/* F.pad(x, pad [, {mode = "constant", value = 0}]): pad a list of integers
 * in PyTorch's order (the last dim's {before, after} first) */
static int f_pad(lua_State *L) {
  static const char *const known[] = {"mode", "value", NULL};
  static const char *const modes[] = {"constant", "reflect", "replicate",
                                      "circular", NULL};
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = mgl_test_any(L, 1);
  if (!x)
    luaL_error(L, "pad: input must be a tensor, got %s",
               lua_isnone(L, 1) ? "nil" : luaL_typename(L, 1));
  if (!lua_istable(L, 2))
    luaL_error(L, "pad: the padding must be a table of integers {left, right, "
               "top, bottom, ...}, got %s", lua_isnone(L, 2) ? "nil" : luaL_typename(L, 2));
  lua_Integer npad = luaL_len(L, 2);
  if (npad > 2 * MG_MAXDIM)
    luaL_error(L, "pad: the padding has %d values, more than 2 per dim of the "
               "largest tensor (%d)", (int)npad, 2 * MG_MAXDIM);
  int64_t pad[2 * MG_MAXDIM];
  for (int i = 0; i < (int)npad; i++) {
    int ok;
    lua_geti(L, 2, i + 1);
    pad[i] = (int64_t)lua_tointegerx(L, -1, &ok);
    if (!ok || lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "pad: padding value %d must be an integer, got %s", i + 1,
                 lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1)
                                                : luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  mgl_check_options(L, 3, known, "pad");
  int mode = 0;
  double value = 0;
  if (!lua_isnoneornil(L, 3)) {
    int t = lua_getfield(L, 3, "mode");
    if (t != LUA_TNIL) {
      const char *m = lua_tostring(L, -1);
      for (mode = 0; m && t == LUA_TSTRING && modes[mode]; mode++)
        if (strcmp(m, modes[mode]) == 0) break;
      if (t != LUA_TSTRING || !modes[mode])
        luaL_error(L, "pad: mode must be \"constant\", \"reflect\", "
                   "\"replicate\" or \"circular\", got %s",
                   t == LUA_TSTRING ? m : luaL_typename(L, -1));
    }
    if (lua_getfield(L, 3, "value") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "pad: value must be a number, got %s", luaL_typename(L, -1));
      value = lua_tonumber(L, -1);
    }
    lua_pop(L, 2);
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_pad(ctx, out, x, (int)npad, pad, (mg_PadMode)mode, value));
  return 1;
}

/* mg._conv_dnnl_runs() --> the forward, backward-data and backward-weights
 * convolutions oneDNN ran in this state (specs check that it ran) */
static int f_conv_dnnl_runs(lua_State *L) {
  int64_t runs[3];
  mg_conv_dnnl_runs(mgl_ctx(L), runs);
  for (int k = 0; k < 3; k++) lua_pushinteger(L, (lua_Integer)runs[k]);
  return 3;
}

const luaL_Reg mgl_conv_functions[] = {
    {"_conv_dnnl_runs", f_conv_dnnl_runs},
    {"_conv2d", f_conv2d},
    {"_conv_transpose2d", f_conv_transpose2d},
    {"_pad", f_pad},
    {NULL, NULL}};
