/*
 * lua_autograd.c — autograd from Lua: backward, requires_grad, detach, the
 * .grad field (in lua_tensor.c's __index/__newindex) and grad mode.
 */
#include "lua_bind.h"

/* t:backward([grad] [, {retain_graph = false}]) */
static int t_backward(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  int opt = 2;
  mg_Tensor *g = mgl_test(L, 2);
  if (g || lua_isnil(L, 2)) opt = 3;
  else if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return luaL_error(L, "backward: expects a gradient tensor and/or an "
                      "options table, got %s", luaL_typename(L, 2));
  static const char *const known[] = {"retain_graph", NULL};
  mgl_check_options(L, opt, known, "backward");
  int retain = mgl_optbool_field(L, opt, "retain_graph", 0, "backward");
  MGL_TRY(L, ctx, mg_backward(ctx, t, g, retain));
  return 0;
}

/* t:requires_grad([flag]) marks a leaf (default true) and returns t. */
static int t_requires_grad(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  int on = 1;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    on = lua_toboolean(L, 2);
  }
  MGL_TRY(L, ctx, mg_set_requires_grad(ctx, t, on));
  lua_settop(L, 1);
  return 1;
}

/* t:is_requires_grad() — whether t takes part in autograd. */
static int t_is_requires_grad(lua_State *L) {
  lua_pushboolean(L, mg_requires_grad(mgl_check_any(L, 1))); /* a query */
  return 1;
}

static int t_is_leaf(lua_State *L) {
  lua_pushboolean(L, mg_is_leaf(mgl_check_any(L, 1)));
  return 1;
}

/* The name of the op that made t, or nil for a leaf. */
static int t_grad_fn(lua_State *L) {
  const char *name = mg_grad_fn_name(mgl_check_any(L, 1));
  if (name) lua_pushstring(L, name);
  else lua_pushnil(L);
  return 1;
}

static int t_detach(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1); /* an alias: data */
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_detach(ctx, out, t));
  return 1;
}

/* Calls the function at 1 with the rest as arguments in grad mode `on`,
 * restoring the previous mode even when it raises. */
static int with_grad_mode(lua_State *L, int on, const char *op) {
  mg_Context *ctx = mgl_ctx(L);
  if (lua_type(L, 1) != LUA_TFUNCTION)
    return luaL_error(L, "%s: expects a function, got %s", op,
                      luaL_typename(L, 1));
  int mode = mg_set_grad_enabled(ctx, on);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  mg_set_grad_enabled(ctx, mode);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

/* mg.no_grad(fn, ...) runs fn(...) without recording; returns its results. */
static int f_no_grad(lua_State *L) { return with_grad_mode(L, 0, "no_grad"); }
static int f_enable_grad(lua_State *L) { return with_grad_mode(L, 1, "enable_grad"); }

static int f_is_grad_enabled(lua_State *L) {
  lua_pushboolean(L, mg_grad_enabled(mgl_ctx(L)));
  return 1;
}

/* mg.set_grad_enabled(flag) returns the previous mode. */
static int f_set_grad_enabled(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, mg_set_grad_enabled(mgl_ctx(L), lua_toboolean(L, 1)));
  return 1;
}

const luaL_Reg mgl_autograd_methods[] = {
    {"backward", t_backward},
    {"requires_grad", t_requires_grad},
    {"is_requires_grad", t_is_requires_grad},
    {"is_leaf", t_is_leaf},
    {"grad_fn", t_grad_fn},
    {"detach", t_detach},
    {NULL, NULL}};

/* mg._grad_ops() -> the names ops record a backward under (grad_ops.c). */
static int f_grad_ops(lua_State *L) {
  int n = mg_grad_op_count();
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, mg_grad_op_name(i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* mg._audit_ops(true) starts noting the ops that record; mg._audit_ops(false)
 * stops and returns the listed names seen and the first unlisted one (or
 * nil). For spec/gradients_spec.lua. */
static int f_audit_ops(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  if (lua_toboolean(L, 1)) {
    MGL_TRY(L, ctx, mg_audit_ops(ctx, 1));
    return 0;
  }
  lua_newtable(L);
  int k = 0;
  for (int i = 0; i < mg_grad_op_count(); i++)
    if (mg_audited_op(ctx, i)) {
      lua_pushstring(L, mg_grad_op_name(i));
      lua_rawseti(L, -2, ++k);
    }
  lua_pushstring(L, mg_audit_unlisted(ctx)); /* nil when NULL */
  mg_audit_ops(ctx, 0);
  return 2;
}

const luaL_Reg mgl_autograd_functions[] = {
    {"_grad_ops", f_grad_ops},
    {"_audit_ops", f_audit_ops},
    {"no_grad", f_no_grad},
    {"enable_grad", f_enable_grad},
    {"is_grad_enabled", f_is_grad_enabled},
    {"set_grad_enabled", f_set_grad_enabled},
    {NULL, NULL}};
