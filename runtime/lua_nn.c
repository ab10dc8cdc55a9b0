/*
 * lua_nn.c — the nn ops (ops_nn.c, ops_norm.c, ops_loss.c) from Lua.
 *
 * Registered in the core module with a leading underscore (mg._linear,
 * mg._cross_entropy, ...) and published as moongrad.functional's F.linear,
 * F.cross_entropy, ... (lua/moongrad/functional.lua). They take the
 * functional API's arguments as they are, trailing options table included,
 * so a bad argument raises at the caller's line like any core function.
 */
#include <math.h>
#include <string.h>

#include "lua_bind.h"
#include "mg_attention.h"

/* ---- arguments and options ---------------------------------------------------- */

/* The tensor at arg; raises "op: what must be a tensor, got T" otherwise. */
static mg_Tensor *tensor_arg(lua_State *L, int arg, const char *op,
                             const char *what) {
  mg_Tensor *t = mgl_test(L, arg);
  if (!t)
    luaL_error(L, "%s: %s must be a tensor, got %s", op, what,
               lua_isnone(L, arg) ? "nil" : luaL_typename(L, arg));
  return t;
}

/* As tensor_arg, but nil (or nothing) gives NULL. */
static mg_Tensor *opt_tensor_arg(lua_State *L, int arg, const char *op,
                                 const char *what) {
  if (lua_isnoneornil(L, arg)) return NULL;
  mg_Tensor *t = mgl_test(L, arg);
  if (!t)
    luaL_error(L, "%s: %s must be a tensor or nil, got %s", op, what,
               luaL_typename(L, arg));
  return t;
}

/* Pushes field name of the options table at arg (nil when there is no
 * table); returns its type. */
static int field(lua_State *L, int arg, const char *name) {
  if (lua_isnoneornil(L, arg)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, arg, name);
}

static double num_opt(lua_State *L, int arg, const char *name, double def,
                      const char *op) {
  int t = field(L, arg, name);
  double v = def;
  if (t == LUA_TNUMBER) v = lua_tonumber(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: option '%s' must be a number, got %s", op, name,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* An optional integer option; *has says whether it was given. */
static int64_t int_opt(lua_State *L, int arg, const char *name, int *has,
                       const char *op) {
  int t = field(L, arg, name), ok = 0;
  int64_t v = 0;
  *has = t != LUA_TNIL;
  if (*has) {
    v = (int64_t)lua_tointegerx(L, -1, &ok);
    if (!ok || t != LUA_TNUMBER)
      luaL_error(L, "%s: option '%s' must be an integer, got %s", op, name,
                 t == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

/* An optional tensor option. The options table keeps it alive. */
static mg_Tensor *tensor_opt(lua_State *L, int arg, const char *name,
                             const char *op) {
  int t = field(L, arg, name);
  mg_Tensor *v = NULL;
  if (t != LUA_TNIL && !(v = mgl_test(L, -1)))
    luaL_error(L, "%s: option '%s' must be a tensor, got %s", op, name,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* A string option that must be one of choices (NULL-ended); returns its
 * index, or def when absent. */
static int choice_opt(lua_State *L, int arg, const char *name, int def,
                      const char *const *choices, const char *op) {
  int t = field(L, arg, name), v = def;
  if (t != LUA_TNIL) {
    const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (v = 0; s && choices[v] && strcmp(choices[v], s); v++) {}
    if (!s || !choices[v]) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (int i = 0; choices[i]; i++) {
        if (i) luaL_addstring(&b, choices[i + 1] ? ", " : " or ");
        lua_pushfstring(L, "'%s'", choices[i]);
        luaL_addvalue(&b);
      }
      luaL_pushresult(&b);
      if (s)
        luaL_error(L, "%s: %s must be %s, got '%s'", op, name, lua_tostring(L, -1), s);
      luaL_error(L, "%s: %s must be %s, got %s", op, name, lua_tostring(L, -1),
                 luaL_typename(L, -2));
    }
  }
  lua_pop(L, 1);
  return v;
}

/* reduction = "none" | "mean" | "sum", in mg_Reduction's order. */
static const char *const reductions[] = {"none", "mean", "sum", NULL};

static mg_Reduction reduction_opt(lua_State *L, int arg, const char *op) {
  return (mg_Reduction)choice_opt(L, arg, "reduction", MG_REDUCTION_MEAN,
                                  reductions, op);
}

/* ---- activations ------------------------------------------------------------------ */

static int activation(lua_State *L, mg_Activation act, double param) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = mgl_test(L, 1);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_activation(ctx, out, act, x, param));
  return 1;
}

/* A parameter given as a number at arg 2 or as the field name of an
 * options table there. */
static double param_arg(lua_State *L, const char *op, const char *name,
                        double def) {
  if (lua_type(L, 2) == LUA_TNUMBER) return lua_tonumber(L, 2);
  const char *known[] = {name, NULL};
  mgl_check_options(L, 2, known, op);
  return num_opt(L, 2, name, def, op);
}

/* F.leaky_relu(x, {negative_slope = 0.01}) or F.leaky_relu(x, slope) */
static int f_leaky_relu(lua_State *L) {
  tensor_arg(L, 1, "leaky_relu", "input");
  return activation(L, MG_ACT_LEAKY_RELU,
                    param_arg(L, "leaky_relu", "negative_slope", 0.01));
}

/* F.elu(x, {alpha = 1}) or F.elu(x, alpha) */
static int f_elu(lua_State *L) {
  tensor_arg(L, 1, "elu", "input");
  return activation(L, MG_ACT_ELU, param_arg(L, "elu", "alpha", 1));
}

/* F.gelu(x, {approximate = "none" | "tanh"}) */
static int f_gelu(lua_State *L) {
  static const char *const known[] = {"approximate", NULL};
  static const char *const modes[] = {"none", "tanh", NULL};
  tensor_arg(L, 1, "gelu", "input");
  mgl_check_options(L, 2, known, "gelu");
  int tanh_mode = choice_opt(L, 2, "approximate", 0, modes, "gelu");
  return activation(L, tanh_mode ? MG_ACT_GELU_TANH : MG_ACT_GELU, 0);
}

/* F.silu(x) */
static int f_silu(lua_State *L) {
  tensor_arg(L, 1, "silu", "input");
  return activation(L, MG_ACT_SILU, 0);
}

static int softmax(lua_State *L, int is_log) {
  mg_Context *ctx = mgl_ctx(L);
  const char *op = is_log ? "log_softmax" : "softmax";
  mg_Tensor *x = tensor_arg(L, 1, op, "input");
  int dim = lua_isnoneornil(L, 2) ? x->ndim - 1 : mgl_checkdim(L, 2, x->ndim, 0, op);
  if (x->ndim == 0) dim = 0;
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_softmax(ctx, out, x, dim, is_log));
  return 1;
}

/* The trailing (mask, causal, scale, want_weights) of the attention
 * bindings, from arg on. */
typedef struct {
  mg_Tensor *mask;
  int causal, want_weights;
  double scale;
} AttnArgs;

static AttnArgs attn_args(lua_State *L, int arg) {
  AttnArgs a;
  a.mask = opt_tensor_arg(L, arg, "attention", "mask");
  a.causal = lua_toboolean(L, arg + 1);
  a.scale = mgl_checknum(L, arg + 2, "attention", "scale");
  a.want_weights = lua_toboolean(L, arg + 3);
  return a;
}

/* mg._attention(q, k, v, mask, causal, scale, want_weights) --> out
 * [, weights]: q [B, H, Lq, E], k [B, H, Lk, E], v [B, H, Lk, Ev], mask nil
 * or additive, expanded to [B, H, Lq, Lk] (see mg_attention.h). For
 * F.scaled_dot_product_attention, which checks and broadcasts first. */
static int f_attention(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *q = tensor_arg(L, 1, "attention", "q");
  mg_Tensor *k = tensor_arg(L, 2, "attention", "k");
  mg_Tensor *v = tensor_arg(L, 3, "attention", "v");
  AttnArgs a = attn_args(L, 4);
  mg_Tensor **out = mgl_slot(L), **w = a.want_weights ? mgl_slot(L) : NULL;
  MGL_TRY(L, ctx, mg_attention(ctx, out, w, q, k, v, a.mask, a.causal, a.scale));
  return a.want_weights ? 2 : 1;
}

/* mg._attention_packed(qkv, heads, mask, causal, scale, want_weights) -->
 * out [N, L, E] [, weights]: self-attention over a [N, L, 3E] projection,
 * for nn.MultiheadAttention. */
static int f_attention_packed(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *qkv = tensor_arg(L, 1, "attention", "qkv");
  int64_t heads = mgl_checkint(L, 2, "attention", "heads");
  AttnArgs a = attn_args(L, 3);
  mg_Tensor **out = mgl_slot(L), **w = a.want_weights ? mgl_slot(L) : NULL;
  MGL_TRY(L, ctx, mg_attention_packed(ctx, out, w, qkv, heads, a.mask, a.causal, a.scale));
  return a.want_weights ? 2 : 1;
}

/* F.softmax(x [, dim = -1]), F.log_softmax(x [, dim = -1]) */
static int f_softmax(lua_State *L) { return softmax(L, 0); }
static int f_log_softmax(lua_State *L) { return softmax(L, 1); }

/* ---- layers ---------------------------------------------------------------------- */

/* F.linear(x, w [, b]) */
static int f_linear(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, "linear", "input");
  mg_Tensor *w = tensor_arg(L, 2, "linear", "weight");
  mg_Tensor *b = opt_tensor_arg(L, 3, "linear", "bias");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_linear(ctx, out, x, w, b));
  return 1;
}

/* F.dropout(x [, p = 0.5 [, training = true]]); x itself when not training */
static int f_dropout(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, "dropout", "input");
  double p = lua_isnoneornil(L, 2) ? 0.5 : mgl_checknum(L, 2, "dropout", "p");
  int training = 1;
  if (!lua_isnoneornil(L, 3)) {
    if (!lua_isboolean(L, 3))
      return luaL_error(L, "dropout: training must be a boolean, got %s",
                        luaL_typename(L, 3));
    training = lua_toboolean(L, 3);
  }
  if (!(p >= 0 && p <= 1))
    return luaL_error(L, "dropout: probability must be between 0 and 1, got %f", p);
  if (!training || p == 0) {
    lua_settop(L, 1);
    return 1;
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_dropout(ctx, out, x, p, training));
  return 1;
}

/* F.embedding(ids, weight [, {padding_idx = nil}]) */
static int f_embedding(lua_State *L) {
  static const char *const known[] = {"padding_idx", NULL};
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *ids = tensor_arg(L, 1, "embedding", "ids");
  mg_Tensor *w = tensor_arg(L, 2, "embedding", "weight");
  mgl_check_options(L, 3, known, "embedding");
  int has_pad;
  int64_t pad = int_opt(L, 3, "padding_idx", &has_pad, "embedding");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_embedding(ctx, out, ids, w, has_pad, pad));
  return 1;
}

/* F.layer_norm(x, normalized_shape [, w [, b [, {eps = 1e-5}]]]);
 * normalized_shape is a table of sizes or one size. */
static int f_layer_norm(lua_State *L) {
  static const char *const known[] = {"eps", NULL};
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, "layer_norm", "input");
  int64_t shape[MG_MAXDIM];
  if (lua_type(L, 2) != LUA_TNUMBER && (!lua_istable(L, 2) || mgl_test(L, 2)))
    return luaL_error(L, "layer_norm: normalized_shape must be a table of "
                      "sizes, got %s", luaL_typename(L, 2));
  int n = lua_type(L, 2) == LUA_TNUMBER
              ? (shape[0] = mgl_checkint(L, 2, "layer_norm", "normalized_shape"), 1)
              : mgl_checkshape(L, 2, shape, "layer_norm");
  mg_Tensor *w = opt_tensor_arg(L, 3, "layer_norm", "weight");
  mg_Tensor *b = opt_tensor_arg(L, 4, "layer_norm", "bias");
  mgl_check_options(L, 5, known, "layer_norm");
  double eps = num_opt(L, 5, "eps", 1e-5, "layer_norm");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_layer_norm(ctx, out, x, n, shape, w, b, eps));
  return 1;
}

/* F.batch_norm(x, running_mean, running_var [, w [, b [, {training = true,
 * momentum = 0.1, eps = 1e-5}]]]) */
static int f_batch_norm(lua_State *L) {
  static const char *const known[] = {"training", "momentum", "eps", NULL};
  const char *op = "batch_norm";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, op, "input");
  mg_Tensor *rm = opt_tensor_arg(L, 2, op, "running_mean");
  mg_Tensor *rv = opt_tensor_arg(L, 3, op, "running_var");
  mg_Tensor *w = opt_tensor_arg(L, 4, op, "weight");
  mg_Tensor *b = opt_tensor_arg(L, 5, op, "bias");
  mgl_check_options(L, 6, known, op);
  int training = mgl_optbool_field(L, 6, "training", 1, op);
  double momentum = num_opt(L, 6, "momentum", 0.1, op);
  double eps = num_opt(L, 6, "eps", 1e-5, op);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_batch_norm(ctx, out, x, rm, rv, w, b, training, momentum, eps));
  return 1;
}

/* ---- losses ---------------------------------------------------------------------- */

/* F.cross_entropy(logits, targets [, {weight, ignore_index, label_smoothing = 0,
 * reduction = "mean"}]) */
static int f_cross_entropy(lua_State *L) {
  static const char *const known[] = {"weight", "ignore_index",
                                      "label_smoothing", "reduction", NULL};
  const char *op = "cross_entropy";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, op, "logits"), *t = tensor_arg(L, 2, op, "targets");
  mgl_check_options(L, 3, known, op);
  mg_Tensor *w = tensor_opt(L, 3, "weight", op);
  int has_ignore;
  int64_t ignore = int_opt(L, 3, "ignore_index", &has_ignore, op);
  double smoothing = num_opt(L, 3, "label_smoothing", 0, op);
  mg_Reduction red = reduction_opt(L, 3, op);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_cross_entropy(ctx, out, x, t, w, has_ignore, ignore,
                                   smoothing, red));
  return 1;
}

/* F.nll_loss(logp, targets [, {weight, ignore_index, reduction = "mean"}]) */
static int f_nll_loss(lua_State *L) {
  static const char *const known[] = {"weight", "ignore_index", "reduction", NULL};
  const char *op = "nll_loss";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, op, "input"), *t = tensor_arg(L, 2, op, "targets");
  mgl_check_options(L, 3, known, op);
  mg_Tensor *w = tensor_opt(L, 3, "weight", op);
  int has_ignore;
  int64_t ignore = int_opt(L, 3, "ignore_index", &has_ignore, op);
  mg_Reduction red = reduction_opt(L, 3, op);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_nll_loss(ctx, out, x, t, w, has_ignore, ignore, red));
  return 1;
}

/* The elementwise losses: F.<name>(input, target [, options]); param_name
 * (or NULL) is the kind's number option. */
static int elementwise(lua_State *L, mg_LossKind kind, const char *param_name) {
  const char *op = mg_loss_name(kind);
  const char *known[4] = {"reduction", NULL, NULL, NULL};
  int k = 1;
  if (param_name) known[k++] = param_name;
  if (kind == MG_LOSS_BCE || kind == MG_LOSS_BCE_LOGITS) known[k++] = "weight";
  if (kind == MG_LOSS_BCE_LOGITS) known[k++] = "pos_weight";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *x = tensor_arg(L, 1, op, "input"), *y = tensor_arg(L, 2, op, "target");
  mgl_check_options(L, 3, known, op);
  mg_Tensor *w = tensor_opt(L, 3, "weight", op), *c = tensor_opt(L, 3, "pos_weight", op);
  double param = param_name ? num_opt(L, 3, param_name, 1, op) : 0;
  mg_Reduction red = reduction_opt(L, 3, op);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_loss(ctx, out, kind, x, y, w, c, param, red));
  return 1;
}

static int f_mse_loss(lua_State *L) { return elementwise(L, MG_LOSS_MSE, NULL); }
static int f_l1_loss(lua_State *L) { return elementwise(L, MG_LOSS_L1, NULL); }
static int f_smooth_l1_loss(lua_State *L) { return elementwise(L, MG_LOSS_SMOOTH_L1, "beta"); }
static int f_huber_loss(lua_State *L) { return elementwise(L, MG_LOSS_HUBER, "delta"); }
static int f_bce(lua_State *L) { return elementwise(L, MG_LOSS_BCE, NULL); }
static int f_bce_logits(lua_State *L) { return elementwise(L, MG_LOSS_BCE_LOGITS, NULL); }

const luaL_Reg mgl_nn_functions[] = {
    {"_leaky_relu", f_leaky_relu},
    {"_elu", f_elu},
    {"_gelu", f_gelu},
    {"_silu", f_silu},
    {"_softmax", f_softmax},
    {"_log_softmax", f_log_softmax},
    {"_attention", f_attention},
    {"_attention_packed", f_attention_packed},
    {"_linear", f_linear},
    {"_dropout", f_dropout},
    {"_embedding", f_embedding},
    {"_layer_norm", f_layer_norm},
    {"_batch_norm", f_batch_norm},
    {"_cross_entropy", f_cross_entropy},
    {"_nll_loss", f_nll_loss},
    {"_mse_loss", f_mse_loss},
    {"_l1_loss", f_l1_loss},
    {"_smooth_l1_loss", f_smooth_l1_loss},
    {"_huber_loss", f_huber_loss},
    {"_binary_cross_entropy", f_bce},
    {"_binary_cross_entropy_with_logits", f_bce_logits},
    {NULL, NULL}};
