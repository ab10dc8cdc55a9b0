/*
 * lua_ops.c — elementwise ops, comparisons and matrix products from Lua,
 * including the arithmetic metamethods (a + b, 2 * a, a ^ 2, -a, ...).
 */
#include "lua_bind.h"
#include "mg_gemm_dnnl.h"

/* ---- binary ---------------------------------------------------------------- */

/* a op b where either side may be a Lua number (a scalar operand). */
static int binary(lua_State *L, mg_BinaryOp op) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *a = mgl_test(L, 1), *b = mgl_test(L, 2);
  const char *name = mg_binary_name(op);
  if (!a && !b)
    return luaL_error(L, "%s: expects a tensor operand, got %s and %s", name,
                      luaL_typename(L, 1), luaL_typename(L, 2));
  int sarg = a ? 2 : 1;
  if (!(a && b) && lua_type(L, sarg) != LUA_TNUMBER)
    return luaL_error(L, "%s: expects a tensor or a number, got %s", name,
                      luaL_typename(L, sarg));
  mg_Tensor **out = mgl_slot(L);
  if (a && b)
    MGL_TRY(L, ctx, mg_binary(ctx, out, op, a, b));
  else
    MGL_TRY(L, ctx, mg_binary_scalar(ctx, out, op, a ? a : b,
                                     lua_tonumber(L, sarg),
                                     lua_isinteger(L, sarg), a == NULL));
  return 1;
}

/* a = a op b in place; returns a. */
static int binary_(lua_State *L, mg_BinaryOp op) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *a = mgl_check(L, 1), *b = mgl_test(L, 2);
  if (!b && lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "%s_: expects a tensor or a number, got %s",
                      mg_binary_name(op), luaL_typename(L, 2));
  if (b)
    MGL_TRY(L, ctx, mg_binary_(ctx, op, a, b));
  else
    MGL_TRY(L, ctx, mg_binary_scalar_(ctx, op, a, lua_tonumber(L, 2)));
  lua_settop(L, 1);
  return 1;
}

#define BINARY(fn, OP)                                                     \
  static int fn(lua_State *L) { return binary(L, OP); }                    \
  static int fn##_(lua_State *L) { return binary_(L, OP); }
BINARY(b_add, MG_OP_ADD)
BINARY(b_sub, MG_OP_SUB)
BINARY(b_mul, MG_OP_MUL)
BINARY(b_div, MG_OP_DIV)
BINARY(b_pow, MG_OP_POW)
BINARY(b_floordiv, MG_OP_FLOORDIV)
BINARY(b_mod, MG_OP_MOD)
BINARY(b_maximum, MG_OP_MAXIMUM)
BINARY(b_minimum, MG_OP_MINIMUM)
BINARY(b_atan2, MG_OP_ATAN2)
BINARY(b_eq, MG_OP_EQ)
BINARY(b_ne, MG_OP_NE)
BINARY(b_lt, MG_OP_LT)
BINARY(b_le, MG_OP_LE)
BINARY(b_gt, MG_OP_GT)
BINARY(b_ge, MG_OP_GE)
#undef BINARY

/* ---- unary ----------------------------------------------------------------- */

static int unary(lua_State *L, mg_UnaryOp op, int inplace) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *a = mgl_check(L, 1);
  if (inplace) {
    MGL_TRY(L, ctx, mg_unary_(ctx, op, a));
    lua_settop(L, 1);
    return 1;
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_unary(ctx, out, op, a));
  return 1;
}

#define UNARY(fn, OP)                                                      \
  static int fn(lua_State *L) { return unary(L, OP, 0); }                  \
  static int fn##_(lua_State *L) { return unary(L, OP, 1); }
UNARY(u_neg, MG_OP_NEG)
UNARY(u_abs, MG_OP_ABS)
UNARY(u_sign, MG_OP_SIGN)
UNARY(u_square, MG_OP_SQUARE)
UNARY(u_relu, MG_OP_RELU)
UNARY(u_floor, MG_OP_FLOOR)
UNARY(u_ceil, MG_OP_CEIL)
UNARY(u_round, MG_OP_ROUND)
UNARY(u_trunc, MG_OP_TRUNC)
UNARY(u_sqrt, MG_OP_SQRT)
UNARY(u_rsqrt, MG_OP_RSQRT)
UNARY(u_exp, MG_OP_EXP)
UNARY(u_log, MG_OP_LOG)
UNARY(u_log1p, MG_OP_LOG1P)
UNARY(u_expm1, MG_OP_EXPM1)
UNARY(u_tanh, MG_OP_TANH)
UNARY(u_sigmoid, MG_OP_SIGMOID)
UNARY(u_sin, MG_OP_SIN)
UNARY(u_cos, MG_OP_COS)
UNARY(u_reciprocal, MG_OP_RECIPROCAL)
#undef UNARY

/* Lua calls __unm with the operand twice. */
static int m_unm(lua_State *L) {
  lua_settop(L, 1);
  return u_neg(L);
}

/* ---- clamp, where, masked_fill --------------------------------------------- */

/* t:clamp(min, max) with either bound nil, or t:clamp{min = a, max = b}. */
static int o_clamp(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *a = mgl_check(L, 1);
  if (lua_istable(L, 2) && !mgl_test(L, 2)) {
    static const char *const known[] = {"min", "max", NULL};
    mgl_check_options(L, 2, known, "clamp");
    lua_getfield(L, 2, "min");
    lua_getfield(L, 2, "max");
    lua_remove(L, 2);
  }
  int has_lo = !lua_isnoneornil(L, 2), has_hi = !lua_isnoneornil(L, 3);
  double lo = has_lo ? mgl_checknum(L, 2, "clamp", "min") : 0;
  double hi = has_hi ? mgl_checknum(L, 3, "clamp", "max") : 0;
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_clamp(ctx, out, a, has_lo, lo, has_hi, hi));
  return 1;
}

/* The tensor at arg, or a number at arg as a 0-d tensor of dtype dt. */
static mg_Tensor *tensor_or_scalar(lua_State *L, mg_Context *ctx, int arg,
                                   mg_DType dt, const char *op) {
  mg_Tensor *t = mgl_test(L, arg);
  if (t) return t;
  double v = mgl_checknum(L, arg, op, "value");
  if (dt == MG_I64 && !lua_isinteger(L, arg)) dt = MG_F32;
  mg_Tensor **slot = mgl_slot(L);
  MGL_TRY(L, ctx, mg_full(ctx, slot, dt, 0, NULL, v));
  lua_replace(L, arg); /* keep it alive in the argument's place */
  return mgl_test(L, arg);
}

/* A mask at arg: any dtype, nonzero meaning true (the core reads a bool
 * or other stored integer mask, PyTorch's kind, through an int64 copy).
 * float16 and bfloat16 are refused here as everywhere in the binding. */
static mg_Tensor *mask_arg(lua_State *L, int arg) {
  mg_Tensor *m = mgl_check_any(L, arg);
  return mg_dtype_is_float(m->dtype) ? mgl_check(L, arg) : m;
}

/* mg.where(cond, a, b): a where cond is nonzero, else b. */
static int f_where(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *cond = mask_arg(L, 1);
  mg_Tensor *ta = mgl_test(L, 2), *tb = mgl_test(L, 3);
  mg_DType dt = ta ? ta->dtype : tb ? tb->dtype : MG_F32;
  mg_Tensor *a = tensor_or_scalar(L, ctx, 2, dt, "where");
  mg_Tensor *b = tensor_or_scalar(L, ctx, 3, dt, "where");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_where(ctx, out, cond, a, b));
  return 1;
}

/* t:where(cond, other) — PyTorch's method form: t where cond, else other. */
static int o_where(lua_State *L) {
  lua_settop(L, 3);    /* (t, cond, other) */
  lua_pushvalue(L, 2);
  lua_remove(L, 2);    /* (t, other, cond) */
  lua_insert(L, 1);    /* (cond, t, other) */
  return f_where(L);
}

static int o_masked_fill_(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1), *mask = mask_arg(L, 2);
  double v = mgl_checknum(L, 3, "masked_fill", "value");
  MGL_TRY(L, ctx, mg_masked_fill_(ctx, t, mask, v));
  lua_settop(L, 1);
  return 1;
}

static int o_masked_fill(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1), *mask = mask_arg(L, 2);
  double v = mgl_checknum(L, 3, "masked_fill", "value");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_masked_fill(ctx, out, t, mask, v));
  return 1;
}

/* ---- matrix products ------------------------------------------------------- */

static int matmul_checked(lua_State *L, const char *op, int na, int nb) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *a = mgl_check(L, 1), *b = mgl_check(L, 2);
  if ((na && a->ndim != na) || (nb && b->ndim != nb)) {
    char sa[MG_SHAPE_BUFSZ], sb[MG_SHAPE_BUFSZ];
    return luaL_error(L, "%s: expects %d-D and %d-D tensors, got shapes %s "
                      "and %s", op, na, nb,
                      mg_shape_str(sa, sizeof sa, a->ndim, a->shape),
                      mg_shape_str(sb, sizeof sb, b->ndim, b->shape));
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_matmul(ctx, out, a, b));
  return 1;
}

static int o_matmul(lua_State *L) { return matmul_checked(L, "matmul", 0, 0); }
static int o_mm(lua_State *L) { return matmul_checked(L, "mm", 2, 2); }
static int o_bmm(lua_State *L) { return matmul_checked(L, "bmm", 3, 3); }
static int o_mv(lua_State *L) { return matmul_checked(L, "mv", 2, 1); }
static int o_dot(lua_State *L) { return matmul_checked(L, "dot", 1, 1); }

const luaL_Reg mgl_ops_methods[] = {
    {"add", b_add}, {"add_", b_add_}, {"sub", b_sub}, {"sub_", b_sub_},
    {"mul", b_mul}, {"mul_", b_mul_}, {"div", b_div}, {"div_", b_div_},
    {"pow", b_pow}, {"pow_", b_pow_},
    {"floor_divide", b_floordiv}, {"floor_divide_", b_floordiv_},
    {"remainder", b_mod}, {"remainder_", b_mod_},
    {"maximum", b_maximum}, {"maximum_", b_maximum_},
    {"minimum", b_minimum}, {"minimum_", b_minimum_},
    {"atan2", b_atan2}, {"atan2_", b_atan2_},
    {"eq", b_eq}, {"ne", b_ne}, {"lt", b_lt}, {"le", b_le}, {"gt", b_gt},
    {"ge", b_ge}, {"eq_", b_eq_}, {"ne_", b_ne_}, {"lt_", b_lt_},
    {"le_", b_le_}, {"gt_", b_gt_}, {"ge_", b_ge_},
    {"neg", u_neg}, {"neg_", u_neg_}, {"abs", u_abs}, {"abs_", u_abs_},
    {"sign", u_sign}, {"sign_", u_sign_}, {"square", u_square},
    {"square_", u_square_}, {"relu", u_relu}, {"relu_", u_relu_},
    {"floor", u_floor}, {"floor_", u_floor_}, {"ceil", u_ceil},
    {"ceil_", u_ceil_}, {"round", u_round}, {"round_", u_round_},
    {"trunc", u_trunc}, {"trunc_", u_trunc_}, {"sqrt", u_sqrt},
    {"sqrt_", u_sqrt_}, {"rsqrt", u_rsqrt}, {"rsqrt_", u_rsqrt_},
    {"exp", u_exp}, {"exp_", u_exp_}, {"log", u_log}, {"log_", u_log_},
    {"log1p", u_log1p}, {"log1p_", u_log1p_}, {"expm1", u_expm1},
    {"expm1_", u_expm1_}, {"tanh", u_tanh}, {"tanh_", u_tanh_},
    {"sigmoid", u_sigmoid}, {"sigmoid_", u_sigmoid_}, {"sin", u_sin},
    {"sin_", u_sin_}, {"cos", u_cos}, {"cos_", u_cos_},
    {"reciprocal", u_reciprocal}, {"reciprocal_", u_reciprocal_},
    {"clamp", o_clamp}, {"clip", o_clamp}, {"where", o_where},
    {"masked_fill", o_masked_fill}, {"masked_fill_", o_masked_fill_},
    {"matmul", o_matmul}, {"mm", o_mm}, {"bmm", o_bmm}, {"mv", o_mv},
    {"dot", o_dot}, {NULL, NULL}};

/* mg._gemm_dnnl_runs() --> the float32 products oneDNN's matmul ran in
 * this state (specs check that it ran) */
static int f_gemm_dnnl_runs(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)mg_gemm_dnnl_runs(mgl_ctx(L)));
  return 1;
}

const luaL_Reg mgl_ops_functions[] = {
    {"where", f_where}, {"_gemm_dnnl_runs", f_gemm_dnnl_runs}, {NULL, NULL}};

const luaL_Reg mgl_ops_meta[] = {
    {"__add", b_add},      {"__sub", b_sub},  {"__mul", b_mul},
    {"__div", b_div},      {"__pow", b_pow},  {"__unm", m_unm},
    {"__idiv", b_floordiv}, {"__mod", b_mod}, {NULL, NULL}};
