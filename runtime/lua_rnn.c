/*
 * lua_rnn.c — one recurrent layer (ops_rnn.c) from Lua: mg._rnn_layer,
 * which moongrad.nn's RNN, LSTM and GRU modules call once per layer.
 */
#include "lua_bind.h"
#include "mg_rnn.h"

static mg_Tensor *tensor_arg(lua_State *L, int arg, const char *what, int opt) {
  if (opt && lua_isnoneornil(L, arg)) return NULL;
  mg_Tensor *t = mgl_test(L, arg);
  if (!t)
    luaL_error(L, "rnn_layer: %s must be a tensor%s, got %s", what,
               opt ? " or nil" : "", lua_isnone(L, arg) ? "nil" : luaL_typename(L, arg));
  return t;
}

/* mg._rnn_layer(cell, xp, h0, c0, w_hh, b_hh [, w_hr [, reverse]]) --> the
 * trajectory [N, T+1, W]; cell is "rnn_tanh", "rnn_relu", "lstm" or "gru";
 * c0 (lstm), b_hh (gru) and w_hr (lstm, projected) may be nil; reverse a
 * boolean (default false) running time backwards. See mg_rnn.h for the
 * layout. */
static int f_rnn_layer(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *name = luaL_checkstring(L, 1);
  int cell = mg_rnn_cell_from_name(name);
  if (cell < 0)
    return luaL_error(L, "rnn_layer: unknown cell '%s' (known: rnn_tanh, "
                      "rnn_relu, lstm, gru)", name);
  mg_Tensor *xp = tensor_arg(L, 2, "xp", 0);
  mg_Tensor *h0 = tensor_arg(L, 3, "h0", 0);
  mg_Tensor *c0 = tensor_arg(L, 4, "c0", 1);
  mg_Tensor *w = tensor_arg(L, 5, "w_hh", 0);
  mg_Tensor *b = tensor_arg(L, 6, "b_hh", 1);
  mg_Tensor *r = tensor_arg(L, 7, "w_hr", 1);
  if (!lua_isnoneornil(L, 8) && !lua_isboolean(L, 8))
    return luaL_error(L, "rnn_layer: reverse must be a boolean or nil, got %s",
                      luaL_typename(L, 8));
  int reverse = lua_toboolean(L, 8);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_rnn_layer(ctx, out, (mg_RnnCell)cell, xp, h0, c0, w, b, r,
                               reverse));
  return 1;
}

const luaL_Reg mgl_rnn_functions[] = {
    {"_rnn_layer", f_rnn_layer},
    {NULL, NULL}};
