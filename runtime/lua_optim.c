/*
 * lua_optim.c — the optimizer kernels (ops_optim.c) from Lua.
 *
 * Registered as mg._optim_step and mg._grad_norm and used by moongrad.optim
 * (lua/moongrad/optim/optimizer.lua and clip.lua), which keeps the
 * bookkeeping: parameter groups (plain tables of options), one state table
 * per parameter, state dicts.
 * This file only translates those tables into the core's structs and back.
 */
#include <math.h>

#include "lua_bind.h"

/* A number field of the group table at arg, which must be there. */
static double group_num(lua_State *L, int arg, const char *name, const char *op) {
  if (lua_getfield(L, arg, name) != LUA_TNUMBER)
    luaL_error(L, "%s: option '%s' of a parameter group must be a number, got %s",
               op, name, luaL_typename(L, -1));
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The number field name of the group at arg into *dst, when it is there. */
static void group_opt_num(lua_State *L, int arg, const char *name, const char *op,
                          double *dst) {
  int t = lua_getfield(L, arg, name);
  lua_pop(L, 1);
  if (t != LUA_TNIL) *dst = group_num(L, arg, name, op);
}

static int group_bool(lua_State *L, int arg, const char *name, const char *op) {
  int t = lua_getfield(L, arg, name);
  if (t != LUA_TBOOLEAN && t != LUA_TNIL)
    luaL_error(L, "%s: option '%s' of a parameter group must be a boolean, got %s",
               op, name, luaL_typename(L, -1));
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* betas[i] of the table at arg. */
static double beta(lua_State *L, int arg, int i, const char *op) {
  if (lua_geti(L, arg, i) != LUA_TNUMBER)
    luaL_error(L, "%s: option 'betas' of a parameter group must be a table "
               "of two numbers, got %s at position %d", op,
               luaL_typename(L, -1), i);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* The group's options into cfg. Which options a kind has is said once, in
 * lua/moongrad/optim/options.lua, whose groups hold exactly those (defaults
 * filled in); an option a kind does not have is absent here and keeps
 * cfg's zero. */
static void read_config(lua_State *L, int arg, mg_OptimConfig *cfg, const char *op) {
  cfg->lr = group_num(L, arg, "lr", op);
  cfg->weight_decay = group_num(L, arg, "weight_decay", op);
  group_opt_num(L, arg, "momentum", op, &cfg->momentum);
  group_opt_num(L, arg, "dampening", op, &cfg->dampening);
  group_opt_num(L, arg, "alpha", op, &cfg->alpha);
  group_opt_num(L, arg, "eps", op, &cfg->eps);
  group_opt_num(L, arg, "lr_decay", op, &cfg->lr_decay);
  group_opt_num(L, arg, "initial_accumulator_value", op, &cfg->initial_accumulator_value);
  group_opt_num(L, arg, "momentum_decay", op, &cfg->momentum_decay);
  cfg->nesterov = group_bool(L, arg, "nesterov", op);
  cfg->amsgrad = group_bool(L, arg, "amsgrad", op);
  cfg->centered = group_bool(L, arg, "centered", op);
  cfg->maximize = group_bool(L, arg, "maximize", op);
  if (lua_getfield(L, arg, "betas") != LUA_TNIL) {
    if (!lua_istable(L, -1))
      luaL_error(L, "%s: option 'betas' of a parameter group must be a table "
                 "of two numbers, got %s", op, luaL_typename(L, -1));
    int betas = lua_gettop(L);
    cfg->beta1 = beta(L, betas, 1, op);
    cfg->beta2 = beta(L, betas, 2, op);
  }
  lua_pop(L, 1);
}

/* mg._optim_step(kind, param, grad, group, state) -> whether it stepped: one
 * update of param from grad (nil: param's own .grad, read here so that
 * Lua never holds it and zero_grad frees it at once; no .grad, no step)
 * with the options of group (a parameter group table) and the parameter's
 * state table, which it updates: state.step (+1), state.mu_product (NAdam)
 * and the state tensors under torch's names, created on first use. Runs
 * with grad mode off. kind is the optimizer's name ("Adam"). */
static int f_optim_step(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *name = luaL_checkstring(L, 1);
  int kind = mg_optim_from_name(name);
  if (kind < 0) return luaL_error(L, "optimizer: unknown kind '%s'", name);
  const char *op = mg_optim_name(kind);
  mg_Tensor *param = mgl_test(L, 2), *grad = mgl_test(L, 3);
  if (!param) return luaL_error(L, "%s: parameter must be a tensor, got %s", op,
                                luaL_typename(L, 2));
  if (!grad && !lua_isnoneornil(L, 3))
    return luaL_error(L, "%s: grad must be a tensor or nil, got %s", op,
                      luaL_typename(L, 3));
  if (!grad && !(grad = mg_grad(param))) {
    lua_pushboolean(L, 0);
    return 1;
  }
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  lua_settop(L, 5);

  mg_OptimConfig cfg = {0};
  read_config(L, 4, &cfg, op);

  mg_OptimState st = {0};
  int isnum = 0;
  lua_getfield(L, 5, "step");
  st.step = lua_isnil(L, -1) ? 0 : (int64_t)lua_tointegerx(L, -1, &isnum);
  if (!lua_isnil(L, -1) && !isnum)
    return luaL_error(L, "%s: state 'step' must be an integer, got %s", op,
                      luaL_typename(L, -1));
  lua_getfield(L, 5, "mu_product");
  st.mu_product = lua_isnil(L, -1) ? 1.0 : lua_tonumber(L, -1);
  lua_settop(L, 5);

  /* Existing state tensors; missing ones the configuration needs are made
   * here, each held by a userdata on the stack (index made[k]) until the
   * step has succeeded. */
  int made[MG_OPTIM_MAXSTATE] = {0};
  for (int k = 0; k < MG_OPTIM_MAXSTATE; k++) {
    const char *sname = mg_optim_state_name(kind, k);
    if (!sname) break;
    lua_getfield(L, 5, sname);
    mg_Tensor *t = mgl_test(L, -1);
    if (!t && !lua_isnil(L, -1))
      return luaL_error(L, "%s: state '%s' must be a tensor, got %s", op, sname,
                        luaL_typename(L, -1));
    lua_pop(L, 1);
    if (!t && mg_optim_needs_state(kind, k, &cfg)) {
      mg_Tensor **slot = mgl_slot(L);
      MGL_TRY(L, ctx, mg_optim_state_new(ctx, slot, kind, k, &cfg, param));
      t = *slot;
      made[k] = lua_gettop(L);
      st.fresh[k] = 1;
    }
    st.t[k] = t;
  }

  /* Gradients made by backward are contiguous; one assigned by hand may not
   * be. */
  if (!mg_is_contiguous(grad)) {
    mg_Tensor **slot = mgl_slot(L);
    MGL_TRY(L, ctx, mg_contiguous(ctx, slot, grad));
    grad = *slot;
  }

  int mode = mg_set_grad_enabled(ctx, 0);
  int status = MGL_ARM(L, ctx, mg_optim_step(ctx, kind, &cfg, param, grad, &st));
  mg_set_grad_enabled(ctx, mode);
  if (status != MG_OK) return mgl_raise(L, ctx);

  lua_pushinteger(L, (lua_Integer)st.step);
  lua_setfield(L, 5, "step");
  if (kind == MG_OPTIM_NADAM) {
    lua_pushnumber(L, st.mu_product);
    lua_setfield(L, 5, "mu_product");
  }
  for (int k = 0; k < MG_OPTIM_MAXSTATE; k++) {
    if (!made[k]) continue;
    lua_pushvalue(L, made[k]);
    lua_setfield(L, 5, mg_optim_state_name(kind, k));
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* mg._grad_norm(t [, norm_type = 2]) -> the norm as a number (math.huge for
 * the largest magnitude). */
static int f_grad_norm(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  double p = lua_isnoneornil(L, 2) ? 2 : mgl_checknum(L, 2, "clip_grad_norm", "norm_type");
  double out = 0;
  if (MGL_ARM(L, ctx, mg_grad_norm(ctx, &out, t, p)) != MG_OK) return mgl_raise(L, ctx);
  lua_pushnumber(L, out);
  return 1;
}

const luaL_Reg mgl_optim_functions[] = {
    {"_optim_step", f_optim_step},
    {"_grad_norm", f_grad_norm},
    {NULL, NULL}};
