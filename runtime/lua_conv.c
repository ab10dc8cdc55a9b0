/*
 * lua_conv.c — the convolutions (ops_conv.c) from Lua: mg._conv2d, published
 * as moongrad.functional's F.conv2d. Options are read here, so a bad one is
 * reported at the caller's line.
 */
#include "lua_bind.h"
#include "mg_conv.h"

/* Option name of the table at arg as a pair: a number n gives {n, n}, a
 * table {a, b} gives {a, b}; absent gives {def, def}. */
static void pair_opt(lua_State *L, int arg, const char *name, int64_t def,
                     int64_t *p) {
  p[0] = p[1] = def;
  if (lua_isnoneornil(L, arg)) return;
  int t = lua_getfield(L, arg, name);
  if (t == LUA_TNUMBER) {
    int ok;
    p[0] = p[1] = (int64_t)lua_tointegerx(L, -1, &ok);
    if (!ok)
      luaL_error(L, "conv2d: option '%s' must be an integer or a pair of "
                 "integers, got %s", name, lua_tostring(L, -1));
  } else if (t == LUA_TTABLE) {
    if (luaL_len(L, -1) != 2)
      luaL_error(L, "conv2d: option '%s' must be an integer or a pair of "
                 "integers, got a table of length %d", name, (int)luaL_len(L, -1));
    for (int k = 0; k < 2; k++) {
      int ok;
      lua_geti(L, -1, k + 1);
      p[k] = (int64_t)lua_tointegerx(L, -1, &ok);
      if (!ok || lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "conv2d: option '%s' must be an integer or a pair of "
                   "integers, got %s in position %d", name,
                   luaL_typename(L, -1), k + 1);
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    luaL_error(L, "conv2d: option '%s' must be an integer or a pair of "
               "integers, got %s", name, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

static mg_Tensor *tensor_arg(lua_State *L, int arg, const char *what, int opt) {
  if (opt && lua_isnoneornil(L, arg)) return NULL;
  mg_Tensor *t = mgl_test(L, arg);
  if (!t)
    luaL_error(L, "conv2d: %s must be a tensor%s, got %s", what,
               opt ? " or nil" : "", lua_isnone(L, arg) ? "nil" : luaL_typename(L, arg));
  return t;
}

/* F.conv2d(x, w [, b [, {stride = 1, padding = 0, dilation = 1, groups = 1}]]) */
static int f_conv2d(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "dilation",
                                      "groups", NULL};
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, "input", 0);
  mg_Tensor *w = tensor_arg(L, 2, "weight", 0);
  mg_Tensor *b = tensor_arg(L, 3, "bias", 1);
  if (!lua_isnoneornil(L, 4)) luaL_checktype(L, 4, LUA_TTABLE);
  mgl_check_options(L, 4, known, "conv2d");
  mg_Conv2dOpts o;
  pair_opt(L, 4, "stride", 1, o.stride);
  pair_opt(L, 4, "padding", 0, o.padding);
  pair_opt(L, 4, "dilation", 1, o.dilation);
  int64_t g[2];
  pair_opt(L, 4, "groups", 1, g);
  if (g[0] != g[1]) luaL_error(L, "conv2d: option 'groups' must be an integer");
  o.groups = g[0];
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_conv2d(ctx, out, x, w, b, &o));
  return 1;
}

const luaL_Reg mgl_conv_functions[] = {
    {"_conv2d", f_conv2d},
    {NULL, NULL}};
