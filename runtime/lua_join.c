/*
 * lua_join.c — mg.cat and mg.stack (a Lua list of tensors in, one tensor
 * out) and the tril/triu methods.
 *
 * split, chunk and unbind, the inverses of cat and stack, are plain Lua
 * over narrow and select (lua/moongrad/init.lua): views whose gradients
 * those ops already record.
 */
#include <limits.h>

#include "lua_bind.h"

/* The tensors of the list at arg, in a userdata array pushed on the stack
 * (so a Lua error raised while reading them frees it); they stay alive
 * through the list. Returns the array and sets *n. */
static mg_Tensor **list_arg(lua_State *L, int arg, int *n, const char *op) {
  if (!lua_istable(L, arg) || mgl_test_any(L, arg))
    luaL_error(L, "%s: expected a list of tensors, got %s", op,
               mgl_test_any(L, arg) ? "a tensor" : luaL_typename(L, arg));
  lua_Integer len = luaL_len(L, arg);
  if (len < 1)
    luaL_error(L, "%s: expected a non-empty list of tensors", op);
  if (len > INT_MAX / (lua_Integer)sizeof(mg_Tensor *))
    luaL_error(L, "%s: too many tensors (%I)", op, len);
  mg_Tensor **ts = lua_newuserdatauv(L, (size_t)len * sizeof *ts, 0);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_geti(L, arg, i);
    if (!(ts[i - 1] = mgl_test_any(L, -1))) /* uint8 too: data */
      luaL_error(L, "%s: element %I of the list is a %s, not a tensor", op,
                 i, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  *n = (int)len;
  return ts;
}

/* mg.cat(tensors [, dim = 1]) */
static int f_cat(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  int n;
  lua_settop(L, 2); /* the dim stays at 2 when list_arg pushes its array */
  mg_Tensor **ts = list_arg(L, 1, &n, "cat");
  int dim = lua_isnoneornil(L, 2) ? 0 : mgl_checkdim(L, 2, ts[0]->ndim, 0, "cat");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_cat(ctx, out, n, ts, dim));
  return 1;
}

/* mg.stack(tensors [, dim = 1]); dim may be one past the last (ndim + 1). */
static int f_stack(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  int n;
  lua_settop(L, 2);
  mg_Tensor **ts = list_arg(L, 1, &n, "stack");
  int dim = lua_isnoneornil(L, 2) ? 0 : mgl_checkdim(L, 2, ts[0]->ndim, 1, "stack");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_stack(ctx, out, n, ts, dim));
  return 1;
}

/* t:tril([k = 0]), t:triu([k = 0]) */
static int tri(lua_State *L, int upper) {
  const char *op = upper ? "triu" : "tril";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  int64_t k = lua_isnoneornil(L, 2) ? 0 : mgl_checkint(L, 2, op, "diagonal");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, upper ? mg_triu(ctx, out, t, k) : mg_tril(ctx, out, t, k));
  return 1;
}

static int o_tril(lua_State *L) { return tri(L, 0); }
static int o_triu(lua_State *L) { return tri(L, 1); }

const luaL_Reg mgl_join_methods[] = {
    {"tril", o_tril}, {"triu", o_triu}, {NULL, NULL}};

const luaL_Reg mgl_join_functions[] = {
    {"cat", f_cat}, {"stack", f_stack}, {NULL, NULL}};
