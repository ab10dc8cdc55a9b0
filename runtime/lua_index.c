/*
 * lua_index.c — index_select, gather and the scatter family from Lua.
 *
 * Index tensors are int64 and 1-based, in Lua as in C, so nothing here
 * converts their values; index_select also takes a Lua table of integers.
 * A scatter's src may be a tensor or a number (a 0-d tensor of t's dtype,
 * which the core expands to the index's shape).
 */
#include <math.h>

#include "lua_bind.h"

/* The int64 tensor at arg, or a table of integers at arg turned into a 1-D
 * int64 tensor that replaces the table on the stack (so it stays alive). */
static mg_Tensor *ids_arg(lua_State *L, mg_Context *ctx, int arg,
                          const char *op) {
  mg_Tensor *t = mgl_test(L, arg);
  if (t) return t;
  if (!lua_istable(L, arg))
    luaL_error(L, "%s: indices must be an int64 tensor or a table of "
               "integers, got %s", op, luaL_typename(L, arg));
  int64_t n = (int64_t)luaL_len(L, arg);
  mg_Tensor **slot = mgl_slot(L);
  MGL_TRY(L, ctx, mg_empty(ctx, slot, MG_I64, 1, &n));
  int64_t *ids = mg_data(*slot);
  for (int64_t i = 0; i < n; i++) {
    lua_geti(L, arg, (lua_Integer)i + 1);
    ids[i] = mgl_checkint(L, -1, op, "index");
    lua_pop(L, 1);
  }
  lua_replace(L, arg);
  return *slot;
}

/* The index tensor at arg (gather and scatter take tensors only). */
static mg_Tensor *index_arg(lua_State *L, int arg, const char *op) {
  mg_Tensor *t = mgl_test(L, arg);
  if (!t)
    luaL_error(L, "%s: index must be an int64 tensor, got %s", op,
               luaL_typename(L, arg));
  return t;
}

/* The tensor at arg, or a number at arg as a 0-d tensor of dtype dt (a
 * non-integer number for an int64 t becomes float32, which the core then
 * refuses to store, as add_ does). */
static mg_Tensor *src_arg(lua_State *L, mg_Context *ctx, int arg, mg_DType dt,
                          const char *op) {
  mg_Tensor *t = mgl_test(L, arg);
  if (t) return t;
  if (lua_type(L, arg) != LUA_TNUMBER)
    luaL_error(L, "%s: src must be a tensor or a number, got %s", op,
               luaL_typename(L, arg));
  double v = lua_tonumber(L, arg);
  if (dt == MG_I64 && !(v == floor(v) && fabs(v) < 9.2e18))
    dt = MG_F32;
  int64_t no_dims[1] = {0}; /* a 0-d shape (not NULL: it is memcpy'd) */
  mg_Tensor **slot = mgl_slot(L);
  MGL_TRY(L, ctx, mg_full(ctx, slot, dt, 0, no_dims, v));
  lua_replace(L, arg);
  return *slot;
}

/* t:index_select(dim, ids): the slices of t along dim at ids, in order. */
static int o_index_select(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1); /* uint8 too: batches of images */
  int dim = mgl_checkdim(L, 2, t->ndim, 0, "index_select");
  mg_Tensor *ids = ids_arg(L, ctx, 3, "index_select");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_index_select(ctx, out, t, dim, ids));
  return 1;
}

/* t:gather(dim, idx): out[i][j] = t[i][idx[i][j]] along dim. */
static int o_gather(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  int dim = mgl_checkdim(L, 2, t->ndim, 0, "gather");
  mg_Tensor *idx = index_arg(L, 3, "gather");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_gather(ctx, out, t, dim, idx));
  return 1;
}

/* t:scatter(dim, idx, src) and friends; inplace returns t itself, else a
 * scattered copy (t is left alone). */
static int scatter(lua_State *L, int add, int inplace) {
  const char *op = add ? (inplace ? "scatter_add_" : "scatter_add")
                       : (inplace ? "scatter_" : "scatter");
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  int dim = mgl_checkdim(L, 2, t->ndim, 0, op);
  mg_Tensor *idx = index_arg(L, 3, op);
  mg_Tensor *src = src_arg(L, ctx, 4, t->dtype, op);
  if (inplace) {
    MGL_TRY(L, ctx, mg_scatter_(ctx, t, dim, idx, src, add));
    lua_settop(L, 1);
    return 1;
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_scatter(ctx, out, t, dim, idx, src, add));
  return 1;
}

static int o_scatter(lua_State *L) { return scatter(L, 0, 0); }
static int o_scatter_(lua_State *L) { return scatter(L, 0, 1); }
static int o_scatter_add(lua_State *L) { return scatter(L, 1, 0); }
static int o_scatter_add_(lua_State *L) { return scatter(L, 1, 1); }

const luaL_Reg mgl_index_methods[] = {
    {"index_select", o_index_select}, {"gather", o_gather},
    {"scatter", o_scatter},           {"scatter_", o_scatter_},
    {"scatter_add", o_scatter_add},   {"scatter_add_", o_scatter_add_},
    {NULL, NULL}};

const luaL_Reg mgl_index_functions[] = {{NULL, NULL}};
