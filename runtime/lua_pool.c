/*
 * lua_pool.c — the pooling ops (ops_pool.c) from Lua, registered as
 * mg._max_pool2d, mg._avg_pool2d and mg._adaptive_avg_pool2d and published
 * as F.max_pool2d, ... (lua/moongrad/functional.lua). Sizes are a number
 * (both dims) or a table {h, w}; options go in a trailing table.
 */
#include "lua_bind.h"
#include "mg_pool.h"

/* A size given as an integer or {h, w} at stack index idx; raises naming op
 * and what. */
static void pair_at(lua_State *L, int idx, int64_t out[2], const char *op,
                    const char *what) {
  int ok = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    out[0] = out[1] = (int64_t)lua_tointegerx(L, idx, &ok);
    if (ok) return;
  } else if (lua_type(L, idx) == LUA_TTABLE && luaL_len(L, idx) == 2) {
    ok = 1;
    for (int i = 0; i < 2; i++) {
      int isint = 0;
      lua_geti(L, idx, i + 1);
      out[i] = (int64_t)lua_tointegerx(L, -1, &isint);
      ok = ok && isint && lua_type(L, -1) == LUA_TNUMBER;
      lua_pop(L, 1);
    }
    if (ok) return;
  }
  luaL_error(L, "%s: %s must be an integer or a table {h, w} of integers, got %s",
             op, what, lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx)
                                                      : luaL_typename(L, idx));
}

/* Option name of the table at arg as a pair; def when absent. */
static void pair_opt(lua_State *L, int arg, const char *name, const int64_t def[2],
                     int64_t out[2], const char *op) {
  out[0] = def[0], out[1] = def[1];
  if (lua_isnoneornil(L, arg)) return;
  if (lua_getfield(L, arg, name) != LUA_TNIL) pair_at(L, lua_gettop(L), out, op, name);
  lua_pop(L, 1);
}

static mg_Tensor *input_arg(lua_State *L, const char *op) {
  mg_Tensor *t = mgl_test(L, 1);
  if (!t)
    luaL_error(L, "%s: input must be a tensor, got %s", op,
               lua_isnone(L, 1) ? "nil" : luaL_typename(L, 1));
  return t;
}

/* The geometry shared by max_pool2d and avg_pool2d. */
static void pool_args(lua_State *L, mg_Pool2d *p, const char *op) {
  static const int64_t zero[2] = {0, 0}, one[2] = {1, 1};
  if (lua_isnoneornil(L, 2)) luaL_error(L, "%s: kernel_size is required", op);
  pair_at(L, 2, p->kernel, op, "kernel_size");
  pair_opt(L, 3, "stride", p->kernel, p->stride, op);
  pair_opt(L, 3, "padding", zero, p->padding, op);
  pair_opt(L, 3, "dilation", one, p->dilation, op);
  p->ceil_mode = mgl_optbool_field(L, 3, "ceil_mode", 0, op);
}

/* F.max_pool2d(x, kernel [, {stride = kernel, padding = 0, dilation = 1,
 * ceil_mode = false, return_indices = false}]) -> y [, indices] */
static int f_max_pool2d(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "dilation", "ceil_mode",
                                      "return_indices", NULL};
  const char *op = "max_pool2d";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = input_arg(L, op);
  mgl_check_options(L, 3, known, op);
  mg_Pool2d p = {0};
  pool_args(L, &p, op);
  int want = mgl_optbool_field(L, 3, "return_indices", 0, op);
  mg_Tensor **out = mgl_slot(L);
  mg_Tensor **idx = want ? mgl_slot(L) : NULL;
  MGL_TRY(L, ctx, mg_max_pool2d(ctx, out, idx, x, &p));
  return want ? 2 : 1;
}

/* F.avg_pool2d(x, kernel [, {stride = kernel, padding = 0, ceil_mode = false,
 * count_include_pad = true}]) */
static int f_avg_pool2d(lua_State *L) {
  static const char *const known[] = {"stride", "padding", "ceil_mode",
                                      "count_include_pad", NULL};
  const char *op = "avg_pool2d";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = input_arg(L, op);
  mgl_check_options(L, 3, known, op);
  mg_Pool2d p = {0};
  pool_args(L, &p, op);
  p.count_include_pad = mgl_optbool_field(L, 3, "count_include_pad", 1, op);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_avg_pool2d(ctx, out, x, &p));
  return 1;
}

/* F.adaptive_avg_pool2d(x, output_size)  output_size: n or {h, w} */
static int f_adaptive_avg_pool2d(lua_State *L) {
  const char *op = "adaptive_avg_pool2d";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = input_arg(L, op);
  int64_t size[2];
  if (lua_isnoneornil(L, 2)) luaL_error(L, "%s: output_size is required", op);
  pair_at(L, 2, size, op, "output_size");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_adaptive_avg_pool2d(ctx, out, x, size[0], size[1]));
  return 1;
}

const luaL_Reg mgl_pool_functions[] = {
    {"_max_pool2d", f_max_pool2d},
    {"_avg_pool2d", f_avg_pool2d},
    {"_adaptive_avg_pool2d", f_adaptive_avg_pool2d},
    {NULL, NULL}};
