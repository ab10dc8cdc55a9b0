/*
 * lua_reduce.c — reductions from Lua: sum, mean, prod, max, min, argmax,
 * argmin, var, std. Each is a tensor method and a module function
 * (t:sum(1) == mg.sum(t, 1)).
 *
 * The shared calling convention, t:op([dim [, keepdim | options]]):
 *   t:sum()                     every element -> a 0-d tensor
 *   t:sum(dim)                  over dim (1-based, negative from the end)
 *   t:sum(dim, true)            ... keeping dim as size 1
 *   t:sum(dim, {keepdim = true})
 *   t:sum({keepdim = true})     every element, the result shaped all-ones
 * var and std take options only ({correction = 1, keepdim = false}):
 * a boolean there would be ambiguous, since PyTorch's positional flag is
 * `unbiased` and Torch7's meant the opposite.
 */
#include "lua_bind.h"

typedef struct {
  int dim;           /* 0-based, or -1 for every element */
  int keepdim;
  double correction; /* var/std */
} ReduceArgs;

/* Reads (t, [dim], [keepdim | options]) for reduction op. */
static ReduceArgs check_args(lua_State *L, const mg_Tensor *t, const char *op,
                             int with_correction) {
  static const char *const plain[] = {"keepdim", NULL};
  static const char *const corr[] = {"keepdim", "correction", NULL};
  ReduceArgs a = {-1, 0, 1.0};
  int optarg = 3;
  if (lua_istable(L, 2) && !mgl_test(L, 2)) {
    if (!lua_isnoneornil(L, 3))
      luaL_error(L, "%s: unexpected argument after the options table", op);
    optarg = 2;                 /* t:sum{keepdim = true} */
  } else if (!lua_isnoneornil(L, 2)) {
    a.dim = mgl_checkdim(L, 2, t->ndim, 0, op);
    if (a.dim < 0) a.dim = 0;   /* -1 of a 0-d tensor: its one element */
  }
  switch (lua_type(L, optarg)) {
  case LUA_TNONE:
  case LUA_TNIL: break;
  case LUA_TBOOLEAN:
    if (with_correction)
      luaL_error(L, "%s: expected an options table such as {correction = 0, "
                 "keepdim = true}, got a boolean", op);
    a.keepdim = lua_toboolean(L, optarg);
    break;
  case LUA_TTABLE:
    mgl_check_options(L, optarg, with_correction ? corr : plain, op);
    a.keepdim = mgl_optbool_field(L, optarg, "keepdim", 0, op);
    if (with_correction) {
      int ty = lua_getfield(L, optarg, "correction");
      if (ty != LUA_TNIL)
        a.correction = mgl_checknum(L, -1, op, "option 'correction'");
      lua_pop(L, 1);
    }
    break;
  default:
    luaL_error(L, "%s: expected keepdim (a boolean) or an options table, "
               "got %s", op, luaL_typename(L, optarg));
  }
  return a;
}

/* One result: sum, mean, prod, argmax, argmin, var, std. */
static int reduce1(lua_State *L, mg_ReduceOp op) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  int corr = op == MG_RED_VAR || op == MG_RED_STD;
  ReduceArgs a = check_args(L, t, mg_reduce_name(op), corr);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_reduce(ctx, out, NULL, op, t, a.dim, a.keepdim,
                            a.correction));
  return 1;
}

/* t:max() -> 0-d tensor; t:max(dim [, keepdim]) -> values, 1-based int64
 * indices (first occurrence on ties, the first NaN if any); t:max(other)
 * -> the elementwise maximum (mg.maximum). min alike. */
static int extreme(lua_State *L, mg_ReduceOp op, mg_BinaryOp binop) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1), *other = mgl_test(L, 2);
  if (other) {
    if (!lua_isnoneornil(L, 3))
      luaL_error(L, "%s: with a tensor operand (elementwise %s) no further "
                 "arguments are taken", mg_reduce_name(op),
                 mg_binary_name(binop));
    mg_Tensor **out = mgl_slot(L);
    MGL_TRY(L, ctx, mg_binary(ctx, out, binop, t, other));
    return 1;
  }
  ReduceArgs a = check_args(L, t, mg_reduce_name(op), 0);
  mg_Tensor **out = mgl_slot(L);
  if (a.dim < 0) {
    MGL_TRY(L, ctx, mg_reduce(ctx, out, NULL, op, t, -1, a.keepdim, 0));
    return 1;
  }
  mg_Tensor **idx = mgl_slot(L);
  MGL_TRY(L, ctx, mg_reduce(ctx, out, idx, op, t, a.dim, a.keepdim, 0));
  return 2;
}

static int r_sum(lua_State *L) { return reduce1(L, MG_RED_SUM); }
static int r_mean(lua_State *L) { return reduce1(L, MG_RED_MEAN); }
static int r_prod(lua_State *L) { return reduce1(L, MG_RED_PROD); }
static int r_argmax(lua_State *L) { return reduce1(L, MG_RED_ARGMAX); }
static int r_argmin(lua_State *L) { return reduce1(L, MG_RED_ARGMIN); }
static int r_var(lua_State *L) { return reduce1(L, MG_RED_VAR); }
static int r_std(lua_State *L) { return reduce1(L, MG_RED_STD); }
static int r_max(lua_State *L) {
  return extreme(L, MG_RED_MAX, MG_OP_MAXIMUM);
}
static int r_min(lua_State *L) {
  return extreme(L, MG_RED_MIN, MG_OP_MINIMUM);
}

const luaL_Reg mgl_reduce_methods[] = {
    {"sum", r_sum},       {"mean", r_mean},     {"prod", r_prod},
    {"max", r_max},       {"min", r_min},       {"argmax", r_argmax},
    {"argmin", r_argmin}, {"var", r_var},       {"std", r_std},
    {NULL, NULL}};
