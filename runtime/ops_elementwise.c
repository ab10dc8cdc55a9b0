/*
 * ops_elementwise.c — unary and binary elementwise ops, comparisons, clamp,
 * where and masked_fill, with NumPy broadcasting.
 *
 * Every op runs on the strided iterator (iter.c): it hands each kernel runs
 * of elements with their inner strides, and -O3's loop versioning gives the
 * stride-1 case its own vectorised loop. Kernels are one plain function per
 * dtype with a switch over the op, so adding an op is one case per dtype.
 *
 * Backward formulas live with autograd (issue 3) next to these forwards.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mg_internal.h"
#include "mg_vmath.h"

static const char *const binary_names[MG_OP_NBINARY] = {
    "add", "sub", "mul", "div", "pow", "floor_divide", "remainder",
    "maximum", "minimum", "atan2", "eq", "ne", "lt", "le", "gt", "ge"};
static const char *const unary_names[MG_OP_NUNARY] = {
    "neg", "abs", "sign", "square", "relu", "floor", "ceil", "round",
    "trunc", "sqrt", "rsqrt", "exp", "log", "log1p", "expm1", "tanh",
    "sigmoid", "sin", "cos", "reciprocal"};
/* The in-place forms' names, for their errors: spelled out rather than
 * formatted on every call (an snprintf was a tenth of a small in-place
 * add's cost, and backward adds into leaf gradients in place). */
static const char *const binary_inplace_names[MG_OP_NBINARY] = {
    "add_", "sub_", "mul_", "div_", "pow_", "floor_divide_", "remainder_",
    "maximum_", "minimum_", "atan2_", "eq_", "ne_", "lt_", "le_", "gt_", "ge_"};
static const char *const unary_inplace_names[MG_OP_NUNARY] = {
    "neg_", "abs_", "sign_", "square_", "relu_", "floor_", "ceil_", "round_",
    "trunc_", "sqrt_", "rsqrt_", "exp_", "log_", "log1p_", "expm1_", "tanh_",
    "sigmoid_", "sin_", "cos_", "reciprocal_"};
_Static_assert(sizeof binary_names / sizeof *binary_names == MG_OP_NBINARY,
               "a binary op without a name");
_Static_assert(sizeof binary_inplace_names / sizeof *binary_inplace_names == MG_OP_NBINARY,
               "a binary op without an in-place name");
_Static_assert(sizeof unary_inplace_names / sizeof *unary_inplace_names == MG_OP_NUNARY,
               "a unary op without an in-place name");
_Static_assert(sizeof unary_names / sizeof *unary_names == MG_OP_NUNARY,
               "a unary op without a name");

const char *mg_binary_name(mg_BinaryOp op) { return binary_names[op]; }
const char *mg_unary_name(mg_UnaryOp op) { return unary_names[op]; }

/* ---- binary kernels: ptrs[0] = out, ptrs[1] = a, ptrs[2] = b ---------------
 * LOOP(expr) runs expr over the run with x = a[i] and y = b[i]. */
#define LOOP(T, expr)                                                      \
  for (int64_t i = 0; i < n; i++) {                                        \
    T x = a[i * sa], y = b[i * sb];                                        \
    o[i * so] = (expr);                                                    \
  }

static inline float modf32(float x, float y) {
  float r = fmodf(x, y);
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
static inline double modf64(double x, double y) {
  double r = fmod(x, y);
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}

static void binary_f32(char **p, const int64_t *s, int64_t n,
                       const void *arg) {
  float *o = (float *)p[0];
  const float *a = (const float *)p[1], *b = (const float *)p[2];
  int64_t so = s[0], sa = s[1], sb = s[2];
  switch (*(const mg_BinaryOp *)arg) {
  case MG_OP_ADD: LOOP(float, x + y) break;
  case MG_OP_SUB: LOOP(float, x - y) break;
  case MG_OP_MUL: LOOP(float, x * y) break;
  case MG_OP_DIV: LOOP(float, x / y) break;
  case MG_OP_POW: LOOP(float, powf(x, y)) break;
  case MG_OP_FLOORDIV: LOOP(float, floorf(x / y)) break;
  case MG_OP_MOD: LOOP(float, modf32(x, y)) break;
  case MG_OP_MAXIMUM: LOOP(float, (x != x || x > y) ? x : y) break;
  case MG_OP_MINIMUM: LOOP(float, (x != x || x < y) ? x : y) break;
  case MG_OP_ATAN2: LOOP(float, atan2f(x, y)) break;
  case MG_OP_EQ: LOOP(float, x == y) break;
  case MG_OP_NE: LOOP(float, x != y) break;
  case MG_OP_LT: LOOP(float, x < y) break;
  case MG_OP_LE: LOOP(float, x <= y) break;
  case MG_OP_GT: LOOP(float, x > y) break;
  case MG_OP_GE: LOOP(float, x >= y) break;
  default: break;
  }
}

/* f64 twin of binary_f32 */
static void binary_f64(char **p, const int64_t *s, int64_t n,
                       const void *arg) {
  double *o = (double *)p[0];
  const double *a = (const double *)p[1], *b = (const double *)p[2];
  int64_t so = s[0], sa = s[1], sb = s[2];
  switch (*(const mg_BinaryOp *)arg) {
  case MG_OP_ADD: LOOP(double, x + y) break;
  case MG_OP_SUB: LOOP(double, x - y) break;
  case MG_OP_MUL: LOOP(double, x * y) break;
  case MG_OP_DIV: LOOP(double, x / y) break;
  case MG_OP_POW: LOOP(double, pow(x, y)) break;
  case MG_OP_FLOORDIV: LOOP(double, floor(x / y)) break;
  case MG_OP_MOD: LOOP(double, modf64(x, y)) break;
  case MG_OP_MAXIMUM: LOOP(double, (x != x || x > y) ? x : y) break;
  case MG_OP_MINIMUM: LOOP(double, (x != x || x < y) ? x : y) break;
  case MG_OP_ATAN2: LOOP(double, atan2(x, y)) break;
  case MG_OP_EQ: LOOP(double, x == y) break;
  case MG_OP_NE: LOOP(double, x != y) break;
  case MG_OP_LT: LOOP(double, x < y) break;
  case MG_OP_LE: LOOP(double, x <= y) break;
  case MG_OP_GT: LOOP(double, x > y) break;
  case MG_OP_GE: LOOP(double, x >= y) break;
  default: break;
  }
}

/* Integer power by squaring; a negative exponent truncates toward zero. */
static inline int64_t ipow(int64_t x, int64_t y) {
  if (y < 0) return x == 1 ? 1 : x == -1 ? ((y & 1) ? -1 : 1) : 0;
  uint64_t r = 1, base = (uint64_t)x;
  while (y) {
    if (y & 1) r *= base;
    base *= base;
    y >>= 1;
  }
  return (int64_t)r;
}
/* y == -1 is its own case: INT64_MIN / -1 overflows, which traps (SIGFPE)
 * on x86 rather than wrapping. */
static inline int64_t ifloordiv(int64_t x, int64_t y) {
  if (y == -1) return (int64_t)(0 - (uint64_t)x);
  int64_t q = x / y;
  return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
}
static inline int64_t imod(int64_t x, int64_t y) {
  if (y == -1) return 0;
  int64_t r = x % y;
  return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}

/* i64 sibling of binary_f32: integer +, - and * wrap around like C's
 * unsigned arithmetic (and like PyTorch), rather than being undefined on
 * overflow. */
static void binary_i64(char **p, const int64_t *s, int64_t n,
                       const void *arg) {
  int64_t *o = (int64_t *)p[0];
  const int64_t *a = (const int64_t *)p[1], *b = (const int64_t *)p[2];
  int64_t so = s[0], sa = s[1], sb = s[2];
  switch (*(const mg_BinaryOp *)arg) {
  case MG_OP_ADD: LOOP(int64_t, (int64_t)((uint64_t)x + (uint64_t)y)) break;
  case MG_OP_SUB: LOOP(int64_t, (int64_t)((uint64_t)x - (uint64_t)y)) break;
  case MG_OP_MUL: LOOP(int64_t, (int64_t)((uint64_t)x * (uint64_t)y)) break;
  case MG_OP_POW: LOOP(int64_t, ipow(x, y)) break;
  case MG_OP_FLOORDIV: LOOP(int64_t, ifloordiv(x, y)) break;
  case MG_OP_MOD: LOOP(int64_t, imod(x, y)) break;
  case MG_OP_MAXIMUM: LOOP(int64_t, x > y ? x : y) break;
  case MG_OP_MINIMUM: LOOP(int64_t, x < y ? x : y) break;
  case MG_OP_EQ: LOOP(int64_t, x == y) break;
  case MG_OP_NE: LOOP(int64_t, x != y) break;
  case MG_OP_LT: LOOP(int64_t, x < y) break;
  case MG_OP_LE: LOOP(int64_t, x <= y) break;
  case MG_OP_GT: LOOP(int64_t, x > y) break;
  case MG_OP_GE: LOOP(int64_t, x >= y) break;
  default: break; /* DIV and ATAN2 never run on int64 (see compute_dtype) */
  }
}
#undef LOOP

static const mg_LoopFn binary_kernels[MG_NDTYPES] = {binary_f32, binary_f64,
                                                     binary_i64};

/* Ops whose int64 result would not be an integer compute in float32. */
static mg_DType compute_dtype(mg_BinaryOp op, mg_DType dt) {
  if (dt == MG_I64 && (op == MG_OP_DIV || op == MG_OP_ATAN2)) return MG_F32;
  return dt;
}

/* t as dtype dt: a new reference to t itself, or a converted copy. */
static int as_dtype(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                    mg_DType dt) {
  return mg_to_dtype(ctx, out, (mg_Tensor *)t, dt);
}

/* Integer floor division and remainder by zero have no value to give. */
static int check_int_divisor(mg_Context *ctx, mg_BinaryOp op, mg_DType dt,
                             const mg_Tensor *b) {
  if (dt != MG_I64 || (op != MG_OP_FLOORDIV && op != MG_OP_MOD)) return MG_OK;
  int64_t n = mg_numel(b);
  for (int64_t i = 0; i < n; i++)
    if (mg_read_i64(b, i) == 0)
      return mg_error(ctx, MG_EARG, "%s: integer division by zero",
                      binary_names[op]);
  return MG_OK;
}

/* out (already allocated with the broadcast shape, dtype dt) = a op b, where
 * a and b already have dtype dt. */
static void run_binary(mg_Context *ctx, mg_Tensor *out, mg_BinaryOp op,
                       const mg_Tensor *a, const mg_Tensor *b) {
  mg_Iter it;
  mg_Tensor *ops[3] = {out, (mg_Tensor *)a, (mg_Tensor *)b};
  if (mg_run_flat(ctx, 3, ops, binary_kernels[out->dtype], &op)) return;
  mg_iter_init_memory_order(&it, 3, ops, out->ndim, out->shape);
  mg_iter_run(ctx, &it, binary_kernels[out->dtype], &op);
}

/* The commonest call, two row-major operands of one shape and dtype small
 * enough for one thread, straight to the kernel: no broadcast, no
 * conversions, no iterator (a third of a small op's time). 0 when the
 * general path must run. */
static int binary_same_shape(mg_Context *ctx, mg_Tensor **out, mg_BinaryOp op,
                             const mg_Tensor *a, const mg_Tensor *b, mg_DType dt,
                             int *st) {
  if (a->dtype != dt || b->dtype != dt || dt == MG_I64 ||
      !mg_same_shape(a->ndim, a->shape, b->ndim, b->shape) ||
      !mg_is_contiguous(a) || !mg_is_contiguous(b))
    return 0;
  int64_t n = mg_numel(a);
  if (n == 0 || mg_threads_for(ctx, n) > 1) return 0;
  mg_Tensor *r = NULL;
  if ((*st = mg_alloc_tensor(ctx, &r, dt, a->ndim, a->shape))) return 1;
  char *ptrs[3] = {mg_data(r), mg_data(a), mg_data(b)};
  int64_t strides[3] = {1, 1, 1};
  binary_kernels[dt](ptrs, strides, n, &op);
  *out = r;
  return 1;
}

static int binary_into_new(mg_Context *ctx, mg_Tensor **out, mg_BinaryOp op,
                           const mg_Tensor *a, const mg_Tensor *b,
                           mg_DType dt) {
  int n, st;
  if (binary_same_shape(ctx, out, op, a, b, dt, &st)) return st;
  int64_t shape[MG_MAXDIM];
  if ((st = mg_broadcast_shapes(ctx, binary_names[op], a->ndim, a->shape,
                                b->ndim, b->shape, &n, shape)))
    return st;
  mg_Tensor *ca = NULL, *cb = NULL, *r = NULL;
  if ((st = as_dtype(ctx, &ca, a, dt)) || (st = as_dtype(ctx, &cb, b, dt)) ||
      (st = check_int_divisor(ctx, op, dt, cb)) ||
      (st = mg_alloc_like(ctx, &r, dt, n, shape, mg_is_channels_last(a) ? a : b)))
    goto done;
  run_binary(ctx, r, op, ca, cb);
  *out = r;
done:
  mg_tensor_decref(ca);
  mg_tensor_decref(cb);
  return st;
}

static int binary_forward(mg_Context *ctx, mg_Tensor **out, mg_BinaryOp op,
                          const mg_Tensor *a, const mg_Tensor *b) {
  mg_DType dt = compute_dtype(op, mg_promote(a->dtype, b->dtype));
  return binary_into_new(ctx, out, op, a, b, dt);
}

/* Floor division and comparisons are flat (zero gradient almost
 * everywhere), so they record nothing, as in PyTorch. */
static int differentiable(mg_BinaryOp op) {
  return op != MG_OP_FLOORDIV && op < MG_OP_EQ;
}

/* d(x op y)/dx and /dy, times g. x, y are the saved operands, out the
 * saved result (POW only). Ties of maximum/minimum split the gradient. */
static void binary_grads(mg_Bw *b, mg_BinaryOp op, mg_Tensor *g,
                         mg_Tensor *x, mg_Tensor *y, mg_Tensor *out,
                         int need_x, int need_y, mg_Tensor **gx,
                         mg_Tensor **gy) {
  mg_Tensor *m, *d;
  switch (op) {
  case MG_OP_ADD: *gx = g, *gy = g; break;
  case MG_OP_SUB: *gx = g, *gy = need_y ? mg_bw_unary(b, MG_OP_NEG, g) : NULL; break;
  case MG_OP_MUL:
    *gx = need_x ? mg_bw_binary(b, MG_OP_MUL, g, y) : NULL;
    *gy = need_y ? mg_bw_binary(b, MG_OP_MUL, g, x) : NULL;
    break;
  case MG_OP_DIV:
    *gx = need_x ? mg_bw_binary(b, MG_OP_DIV, g, y) : NULL;
    *gy = need_y ? mg_bw_unary(b, MG_OP_NEG, mg_bw_binary(b, MG_OP_DIV,
                     mg_bw_binary(b, MG_OP_MUL, g, x),
                     mg_bw_binary(b, MG_OP_MUL, y, y))) : NULL;
    break;
  case MG_OP_POW: /* x^y: y x^(y-1) and x^y log x (0 where x == 0) */
    *gx = need_x ? mg_bw_binary(b, MG_OP_MUL, mg_bw_binary(b, MG_OP_MUL, g, y),
                     mg_bw_binary(b, MG_OP_POW, x, mg_bw_scalar(b, MG_OP_SUB, y, 1)))
                 : NULL;
    *gy = NULL;
    if (need_y) {
      mg_Tensor *t = mg_bw_binary(b, MG_OP_MUL, mg_bw_binary(b, MG_OP_MUL, g, out),
                                  mg_bw_unary(b, MG_OP_LOG, x));
      mg_Tensor *zero = mg_bw_scalar(b, MG_OP_MUL, t, 0), *r = NULL;
      if (t && zero)
        *gy = mg_bw_hold(b, mg_where(b->ctx, &r, mg_bw_scalar(b, MG_OP_EQ, x, 0),
                                     zero, t), &r);
    }
    break;
  case MG_OP_MAXIMUM:
  case MG_OP_MINIMUM:
    m = mg_bw_binary(b, op == MG_OP_MAXIMUM ? MG_OP_GT : MG_OP_LT, x, y);
    m = mg_bw_binary(b, MG_OP_ADD, m,
                     mg_bw_scalar(b, MG_OP_MUL, mg_bw_binary(b, MG_OP_EQ, x, y), 0.5));
    *gx = need_x ? mg_bw_binary(b, MG_OP_MUL, g, m) : NULL;
    *gy = need_y ? mg_bw_binary(b, MG_OP_MUL, g, mg_bw_rscalar(b, MG_OP_SUB, 1, m)) : NULL;
    break;
  case MG_OP_ATAN2: /* atan2(x, y): y/(x²+y²) and -x/(x²+y²) */
    d = mg_bw_binary(b, MG_OP_ADD, mg_bw_binary(b, MG_OP_MUL, x, x),
                     mg_bw_binary(b, MG_OP_MUL, y, y));
    *gx = need_x ? mg_bw_binary(b, MG_OP_MUL, g, mg_bw_binary(b, MG_OP_DIV, y, d)) : NULL;
    *gy = need_y ? mg_bw_unary(b, MG_OP_NEG, mg_bw_binary(b, MG_OP_MUL, g,
                     mg_bw_binary(b, MG_OP_DIV, x, d))) : NULL;
    break;
  case MG_OP_MOD: /* x - y floor(x/y) */
    *gx = g;
    *gy = need_y ? mg_bw_unary(b, MG_OP_NEG, mg_bw_binary(b, MG_OP_MUL, g,
                     mg_bw_binary(b, MG_OP_FLOORDIV, x, y))) : NULL;
    break;
  default: *gx = *gy = NULL; break;
  }
}

static int binary_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *gx, *gy;
  binary_grads(&b, (mg_BinaryOp)n->i[0], g, n->saved[0], n->saved[1],
               n->saved[2], mg_node_needs(n, 0), mg_node_needs(n, 1), &gx, &gy);
  if (mg_node_needs(n, 0))
    mg_bw_out(&b, &grads[0], mg_bw_sum_to(&b, gx, n->in_ndim[0], n->in_shape[0]));
  if (mg_node_needs(n, 1))
    mg_bw_out(&b, &grads[1], mg_bw_sum_to(&b, gy, n->in_ndim[1], n->in_shape[1]));
  return mg_bw_end(&b);
}

int mg_binary(mg_Context *ctx, mg_Tensor **out, mg_BinaryOp op,
              const mg_Tensor *a, const mg_Tensor *b) {
  mg_Tensor *ins[2] = {(mg_Tensor *)a, (mg_Tensor *)b}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = binary_forward(ctx, &r, op, a, b);
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (differentiable(op) && mg_needs_grad(ctx, 2, ins)) {
    mg_Node *n;
    /* ADD and SUB need nothing saved; POW also needs its result. */
    int save = op != MG_OP_ADD && op != MG_OP_SUB;
    if ((st = mg_record(ctx, r, binary_names[op], binary_backward, 2, ins, &n)) ||
        (save && ((st = mg_save(ctx, n, 0, a)) || (st = mg_save(ctx, n, 1, b)))) ||
        (op == MG_OP_POW && (st = mg_save(ctx, n, 2, r)))) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = op;
  }
  *out = r;
  return MG_OK;
}

/* A 0-d tensor over a caller-owned buffer, for scalar operands. */
typedef struct {
  mg_Tensor t;
  mg_Storage s;
  union { float f; double d; int64_t i; } v;
} ScalarTensor;

static void scalar_tensor(ScalarTensor *st, mg_DType dt, double value) {
  memset(st, 0, sizeof *st);
  switch (dt) {
  case MG_F32: st->v.f = (float)value; break;
  case MG_F64: st->v.d = value; break;
  default: st->v.i = mg_f2i64(value); break; /* math.maxinteger: 2^63 here */
  }
  st->s.data = &st->v;
  st->s.nbytes = sizeof st->v;
  st->s.refcount = 1; /* never reaches zero: it lives on the stack */
  st->t.storage = &st->s;
  st->t.dtype = dt;
  st->t.refcount = 1;
}

/* An int64 tensor to a negative integer power has no integer answer (0^-1
 * least of all); PyTorch refuses it rather than truncate. */
static int check_int_pow(mg_Context *ctx, const char *op, mg_DType dt,
                         double s) {
  if (dt == MG_I64 && s < 0)
    return mg_error(ctx, MG_EARG, "%s: integers to negative integer powers "
                    "are not allowed (int64 tensor to the power %.17g); "
                    "convert it to float first", op, s);
  return MG_OK;
}

static int binary_scalar_forward(mg_Context *ctx, mg_Tensor **out,
                                 mg_BinaryOp op, const mg_Tensor *a, double s,
                                 int s_is_int, int reversed) {
  if (op == MG_OP_POW && !reversed && s_is_int) {
    int st = check_int_pow(ctx, "pow", a->dtype, s);
    if (st) return st;
  }
  mg_DType dt = a->dtype;
  if (dt == MG_I64 && !s_is_int) dt = MG_F32;
  dt = compute_dtype(op, dt);
  ScalarTensor sc;
  scalar_tensor(&sc, dt, s);
  return reversed ? binary_into_new(ctx, out, op, &sc.t, a, dt)
                  : binary_into_new(ctx, out, op, a, &sc.t, dt);
}

/* The scalar is a constant: only the tensor operand gets a gradient. The
 * formulas are the tensor-tensor ones with the scalar as a 0-d tensor. */
static int binary_scalar_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                                  mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *s = NULL, *gx, *gy;
  s = mg_bw_hold(&b, mg_full(ctx, &s, g->dtype, 0, NULL, n->f[0]), &s);
  mg_Tensor *a = n->saved[0] ? n->saved[0] : g; /* g: a stand-in, unused */
  int rev = (int)n->i[1];
  binary_grads(&b, (mg_BinaryOp)n->i[0], g, rev ? s : a, rev ? a : s,
               n->saved[2], !rev, rev, &gx, &gy);
  mg_bw_out(&b, &grads[0], mg_bw_sum_to(&b, rev ? gy : gx, n->in_ndim[0],
                                        n->in_shape[0]));
  return mg_bw_end(&b);
}

int mg_binary_scalar(mg_Context *ctx, mg_Tensor **out, mg_BinaryOp op,
                     const mg_Tensor *a, double s, int s_is_int,
                     int reversed) {
  mg_Tensor *ins[1] = {(mg_Tensor *)a}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = binary_scalar_forward(ctx, &r, op, a, s, s_is_int, reversed);
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (differentiable(op) && mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    int save = op != MG_OP_ADD && op != MG_OP_SUB && !(op == MG_OP_MUL) &&
               !(op == MG_OP_DIV && !reversed);
    if ((st = mg_record(ctx, r, binary_names[op], binary_scalar_backward, 1,
                        ins, &n)) ||
        (save && (st = mg_save(ctx, n, 0, a))) ||
        (op == MG_OP_POW && (st = mg_save(ctx, n, 2, r)))) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = op, n->i[1] = reversed, n->f[0] = s;
  }
  *out = r;
  return MG_OK;
}


static int check_inplace(mg_Context *ctx, mg_BinaryOp op, const mg_Tensor *a,
                         mg_DType result) {
  if (result != a->dtype)
    return mg_error(ctx, MG_EARG, "%s_: the result would be %s, which cannot "
                    "be stored in place in a tensor of dtype %s", binary_names[op],
                    mg_dtype_name(result), mg_dtype_name(a->dtype));
  return MG_OK;
}

int mg_binary_(mg_Context *ctx, mg_BinaryOp op, mg_Tensor *a,
               const mg_Tensor *b) {
  mg_DType dt = compute_dtype(op, mg_promote(a->dtype, b->dtype));
  /* A float result is cast to a float destination (as PyTorch does); only
   * an int64 destination cannot hold it. */
  if (a->dtype != MG_I64 && dt != MG_I64) dt = a->dtype;
  int n, st;
  int64_t shape[MG_MAXDIM];
  const char *name = binary_inplace_names[op];
  if ((st = mg_check_inplace(ctx, name, a)) ||
      (st = check_inplace(ctx, op, a, dt)) ||
      (st = mg_broadcast_shapes(ctx, name, a->ndim, a->shape, b->ndim,
                                b->shape, &n, shape)))
    return st;
  if (n != a->ndim || memcmp(shape, a->shape, sizeof(int64_t) * (size_t)n)) {
    char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
    return mg_error(ctx, MG_ESHAPE, "%s: operand of shape %s does not "
                    "broadcast to the destination's shape %s", name,
                    mg_shape_str(ba, sizeof ba, b->ndim, b->shape),
                    mg_shape_str(bb, sizeof bb, a->ndim, a->shape));
  }
  mg_Tensor *cb = NULL;
  if ((st = as_dtype(ctx, &cb, b, dt)) ||
      (st = check_int_divisor(ctx, op, dt, cb))) {
    mg_tensor_decref(cb);
    return st;
  }
  /* An operand sharing a's storage in another layout (a:add_(a:t()),
   * a:mul_(a[1])) would be read after part of it was overwritten: read a
   * snapshot. The very same view is fine: each element reads itself. */
  if (cb->storage == a->storage && !mg_same_view(a, cb)) {
    mg_Tensor *snap = NULL;
    st = mg_clone(ctx, &snap, cb);
    mg_tensor_decref(cb);
    if (st) return st;
    cb = snap;
  }
  run_binary(ctx, a, op, a, cb);
  mg_bump_version(a);
  mg_tensor_decref(cb);
  return MG_OK;
}

int mg_binary_scalar_(mg_Context *ctx, mg_BinaryOp op, mg_Tensor *a,
                      double s) {
  ScalarTensor sc;
  int is_int = s == floor(s) && fabs(s) < 9.2e18;
  if (op == MG_OP_POW && is_int) {
    int st = check_int_pow(ctx, "pow_", a->dtype, s);
    if (st) return st;
  }
  mg_DType dt = a->dtype == MG_I64 && !is_int ? MG_F32 : a->dtype;
  scalar_tensor(&sc, compute_dtype(op, dt), s);
  return mg_binary_(ctx, op, a, &sc.t);
}

/* ---- unary kernels: ptrs[0] = out, ptrs[1] = a ----------------------------
 * ULOOP and VLOOP: see MG_RUN_LOOP in mg_internal.h. */
#define ULOOP MG_RUN_LOOP
#define VLOOP MG_RUN_VLOOP

static void unary_f32(char **p, const int64_t *s, int64_t n,
                      const void *arg) {
  float *o = (float *)p[0];
  const float *a = (const float *)p[1];
  int64_t so = s[0], sa = s[1];
  switch (*(const mg_UnaryOp *)arg) {
  case MG_OP_NEG: VLOOP(float, -x) break;
  case MG_OP_ABS: VLOOP(float, fabsf(x)) break;
  case MG_OP_SIGN: ULOOP(float, (float)((x > 0) - (x < 0))) break;
  case MG_OP_SQUARE: VLOOP(float, x * x) break;
  case MG_OP_RELU: VLOOP(float, x > 0 ? x : (x == x ? 0.0f : x)) break;
  case MG_OP_FLOOR: ULOOP(float, floorf(x)) break;
  case MG_OP_CEIL: ULOOP(float, ceilf(x)) break;
  case MG_OP_ROUND: ULOOP(float, nearbyintf(x)) break;
  case MG_OP_TRUNC: ULOOP(float, truncf(x)) break;
  case MG_OP_SQRT: VLOOP(float, sqrtf(x)) break;
  case MG_OP_RSQRT: VLOOP(float, 1.0f / sqrtf(x)) break;
  case MG_OP_EXP: VLOOP(float, mg_vexpf(x)) break;
  case MG_OP_LOG: ULOOP(float, logf(x)) break;
  case MG_OP_LOG1P: ULOOP(float, log1pf(x)) break;
  case MG_OP_EXPM1: VLOOP(float, mg_vexpm1f(x)) break;
  case MG_OP_TANH: VLOOP(float, mg_vtanhf(x)) break;
  case MG_OP_SIGMOID: VLOOP(float, mg_vsigmoidf(x)) break;
  case MG_OP_SIN: ULOOP(float, sinf(x)) break;
  case MG_OP_COS: ULOOP(float, cosf(x)) break;
  case MG_OP_RECIPROCAL: VLOOP(float, 1.0f / x) break;
  default: break;
  }
}

/* f64 twin of unary_f32 */
static void unary_f64(char **p, const int64_t *s, int64_t n,
                      const void *arg) {
  double *o = (double *)p[0];
  const double *a = (const double *)p[1];
  int64_t so = s[0], sa = s[1];
  switch (*(const mg_UnaryOp *)arg) {
  case MG_OP_NEG: VLOOP(double, -x) break;
  case MG_OP_ABS: VLOOP(double, fabs(x)) break;
  case MG_OP_SIGN: ULOOP(double, (double)((x > 0) - (x < 0))) break;
  case MG_OP_SQUARE: VLOOP(double, x * x) break;
  case MG_OP_RELU: VLOOP(double, x > 0 ? x : (x == x ? 0.0 : x)) break;
  case MG_OP_FLOOR: ULOOP(double, floor(x)) break;
  case MG_OP_CEIL: ULOOP(double, ceil(x)) break;
  case MG_OP_ROUND: ULOOP(double, nearbyint(x)) break;
  case MG_OP_TRUNC: ULOOP(double, trunc(x)) break;
  case MG_OP_SQRT: VLOOP(double, sqrt(x)) break;
  case MG_OP_RSQRT: VLOOP(double, 1.0 / sqrt(x)) break;
  case MG_OP_EXP: ULOOP(double, exp(x)) break;
  case MG_OP_LOG: ULOOP(double, log(x)) break;
  case MG_OP_LOG1P: ULOOP(double, log1p(x)) break;
  case MG_OP_EXPM1: ULOOP(double, expm1(x)) break;
  case MG_OP_TANH: ULOOP(double, tanh(x)) break;
  case MG_OP_SIGMOID: ULOOP(double, 1.0 / (1.0 + exp(-x))) break;
  case MG_OP_SIN: ULOOP(double, sin(x)) break;
  case MG_OP_COS: ULOOP(double, cos(x)) break;
  case MG_OP_RECIPROCAL: VLOOP(double, 1.0 / x) break;
  default: break;
  }
}

/* i64 sibling of unary_f32 */
static void unary_i64(char **p, const int64_t *s, int64_t n,
                      const void *arg) {
  int64_t *o = (int64_t *)p[0];
  const int64_t *a = (const int64_t *)p[1];
  int64_t so = s[0], sa = s[1];
  switch (*(const mg_UnaryOp *)arg) {
  case MG_OP_NEG: ULOOP(int64_t, (int64_t)(0 - (uint64_t)x)) break;
  case MG_OP_ABS: ULOOP(int64_t, x < 0 ? (int64_t)(0 - (uint64_t)x) : x) break;
  case MG_OP_SIGN: ULOOP(int64_t, (x > 0) - (x < 0)) break;
  case MG_OP_SQUARE: ULOOP(int64_t, (int64_t)((uint64_t)x * (uint64_t)x)) break;
  case MG_OP_RELU: ULOOP(int64_t, x > 0 ? x : 0) break;
  default: ULOOP(int64_t, x) break; /* floor, ceil, round, trunc */
  }
}
#undef VLOOP
#undef ULOOP

static const mg_LoopFn unary_kernels[MG_NDTYPES] = {unary_f32, unary_f64,
                                                    unary_i64};

static mg_DType unary_dtype(mg_UnaryOp op, mg_DType dt) {
  return (dt == MG_I64 && op >= MG_OP_SQRT) ? MG_F32 : dt;
}

static void run_unary(mg_Context *ctx, mg_Tensor *out, mg_UnaryOp op,
                      const mg_Tensor *a) {
  mg_Iter it;
  mg_Tensor *ops[2] = {out, (mg_Tensor *)a};
  if (mg_run_flat(ctx, 2, ops, unary_kernels[out->dtype], &op)) return;
  mg_iter_init_memory_order(&it, 2, ops, out->ndim, out->shape);
  mg_iter_run(ctx, &it, unary_kernels[out->dtype], &op);
}

static int unary_forward(mg_Context *ctx, mg_Tensor **out, mg_UnaryOp op,
                         const mg_Tensor *a) {
  mg_DType dt = unary_dtype(op, a->dtype);
  mg_Tensor *ca = NULL, *r = NULL;
  int st;
  if ((st = as_dtype(ctx, &ca, a, dt)) ||
      (st = mg_alloc_like(ctx, &r, dt, a->ndim, a->shape, a))) {
    mg_tensor_decref(ca);
    return st;
  }
  run_unary(ctx, r, op, ca);
  mg_tensor_decref(ca);
  *out = r;
  return MG_OK;
}

/* Ops whose gradient is best written with their result rather than their
 * input (exp: g·y, tanh: g(1-y²), ...) save the result. */
static int saves_result(mg_UnaryOp op) {
  return op == MG_OP_RELU || op == MG_OP_SQRT || op == MG_OP_RSQRT ||
         op == MG_OP_EXP || op == MG_OP_EXPM1 || op == MG_OP_TANH ||
         op == MG_OP_SIGMOID || op == MG_OP_RECIPROCAL;
}

/* ---- fused gradients: ptrs[0] = out, ptrs[1] = g, ptrs[2] = y -------------
 * For the ops whose derivative is a function of their result y, g·f'(y) in
 * one pass instead of two or three temporaries. relu follows PyTorch's
 * threshold_backward: the gradient passes unless y <= 0 (so it passes
 * where y is NaN). */
#define GLOOP(T, expr)                                                     \
  if (so == 1 && sg == 1 && sy == 1)                                       \
    for (int64_t i = 0; i < n; i++) {                                      \
      T g = G[i], y = Y[i];                                                \
      o[i] = (expr);                                                       \
    }                                                                      \
  else                                                                     \
    for (int64_t i = 0; i < n; i++) {                                      \
      T g = G[i * sg], y = Y[i * sy];                                      \
      o[i * so] = (expr);                                                  \
    }

static void grad_f32(char **p, const int64_t *s, int64_t n, const void *arg) {
  float *o = (float *)p[0];
  const float *G = (const float *)p[1], *Y = (const float *)p[2];
  int64_t so = s[0], sg = s[1], sy = s[2];
  switch (*(const mg_UnaryOp *)arg) {
  case MG_OP_RELU: GLOOP(float, y <= 0 ? 0.0f : g) break;
  case MG_OP_EXP: GLOOP(float, g * y) break;
  case MG_OP_TANH: GLOOP(float, g * (1.0f - y * y)) break;
  case MG_OP_SIGMOID: GLOOP(float, g * (y * (1.0f - y))) break;
  default: break;
  }
}

/* f64 twin of grad_f32 */
static void grad_f64(char **p, const int64_t *s, int64_t n, const void *arg) {
  double *o = (double *)p[0];
  const double *G = (const double *)p[1], *Y = (const double *)p[2];
  int64_t so = s[0], sg = s[1], sy = s[2];
  switch (*(const mg_UnaryOp *)arg) {
  case MG_OP_RELU: GLOOP(double, y <= 0 ? 0.0 : g) break;
  case MG_OP_EXP: GLOOP(double, g * y) break;
  case MG_OP_TANH: GLOOP(double, g * (1.0 - y * y)) break;
  case MG_OP_SIGMOID: GLOOP(double, g * (y * (1.0 - y))) break;
  default: break;
  }
}
#undef GLOOP

/* The fused gradient of op (g cast to y's dtype first if it differs). */
static mg_Tensor *fused_grad(mg_Bw *b, mg_UnaryOp op, mg_Tensor *g, mg_Tensor *y) {
  mg_Tensor *gc = NULL, *r = NULL;
  if (b->st) return NULL;
  int st = mg_to_dtype(b->ctx, &gc, g, y->dtype);
  if (!st) st = mg_alloc_like(b->ctx, &r, y->dtype, y->ndim, y->shape, y);
  if (!st) {
    mg_Iter it;
    mg_Tensor *ops[3] = {r, gc, y};
    mg_LoopFn fn = y->dtype == MG_F32 ? grad_f32 : grad_f64;
    if (!mg_run_flat(b->ctx, 3, ops, fn, &op)) {
      mg_iter_init_memory_order(&it, 3, ops, y->ndim, y->shape);
      mg_iter_run(b->ctx, &it, fn, &op);
    }
  }
  mg_tensor_decref(gc);
  return mg_bw_hold(b, st, &r);
}

static int unary_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                          mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *x = n->saved[0], *y = n->saved[0], *d = NULL; /* x or y */
  mg_UnaryOp op = (mg_UnaryOp)n->i[0];
  switch (op) {
  case MG_OP_NEG: d = mg_bw_unary(&b, MG_OP_NEG, g); break;
  case MG_OP_ABS: d = mg_bw_binary(&b, MG_OP_MUL, g, mg_bw_unary(&b, MG_OP_SIGN, x)); break;
  case MG_OP_SIGN: case MG_OP_FLOOR: case MG_OP_CEIL: case MG_OP_ROUND:
  case MG_OP_TRUNC: d = mg_bw_scalar(&b, MG_OP_MUL, g, 0); break;
  case MG_OP_SQUARE: d = mg_bw_binary(&b, MG_OP_MUL, g, mg_bw_scalar(&b, MG_OP_MUL, x, 2)); break;
  case MG_OP_RELU: case MG_OP_EXP: case MG_OP_TANH: case MG_OP_SIGMOID:
    d = fused_grad(&b, op, g, y);
    break;
  case MG_OP_SQRT: d = mg_bw_binary(&b, MG_OP_DIV, g, mg_bw_scalar(&b, MG_OP_MUL, y, 2)); break;
  case MG_OP_RSQRT: /* -y³/2 */
    d = mg_bw_binary(&b, MG_OP_MUL, g, mg_bw_scalar(&b, MG_OP_MUL,
          mg_bw_binary(&b, MG_OP_MUL, y, mg_bw_binary(&b, MG_OP_MUL, y, y)), -0.5));
    break;
  case MG_OP_LOG: d = mg_bw_binary(&b, MG_OP_DIV, g, x); break;
  case MG_OP_LOG1P: d = mg_bw_binary(&b, MG_OP_DIV, g, mg_bw_scalar(&b, MG_OP_ADD, x, 1)); break;
  case MG_OP_EXPM1: d = mg_bw_binary(&b, MG_OP_MUL, g, mg_bw_scalar(&b, MG_OP_ADD, y, 1)); break;
  case MG_OP_SIN: d = mg_bw_binary(&b, MG_OP_MUL, g, mg_bw_unary(&b, MG_OP_COS, x)); break;
  case MG_OP_COS:
    d = mg_bw_unary(&b, MG_OP_NEG, mg_bw_binary(&b, MG_OP_MUL, g, mg_bw_unary(&b, MG_OP_SIN, x)));
    break;
  case MG_OP_RECIPROCAL: /* -y² */
    d = mg_bw_unary(&b, MG_OP_NEG, mg_bw_binary(&b, MG_OP_MUL, g, mg_bw_binary(&b, MG_OP_MUL, y, y)));
    break;
  default: break;
  }
  mg_bw_out(&b, &grads[0], d);
  return mg_bw_end(&b);
}

int mg_unary(mg_Context *ctx, mg_Tensor **out, mg_UnaryOp op,
             const mg_Tensor *a) {
  mg_Tensor *ins[1] = {(mg_Tensor *)a}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = unary_forward(ctx, &r, op, a);
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, unary_names[op], unary_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, saves_result(op) ? r : a))) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = op;
  }
  *out = r;
  return MG_OK;
}

int mg_unary_(mg_Context *ctx, mg_UnaryOp op, mg_Tensor *a) {
  const char *name = unary_inplace_names[op];
  int st;
  if ((st = mg_check_inplace(ctx, name, a))) return st;
  if (unary_dtype(op, a->dtype) != a->dtype)
    return mg_error(ctx, MG_EARG, "%s_: the result would be float32, which "
                    "cannot be stored in place in an int64 tensor",
                    unary_names[op]);
  run_unary(ctx, a, op, a);
  mg_bump_version(a);
  return MG_OK;
}

/* ---- clamp ----------------------------------------------------------------- */

typedef struct {
  int has_lo, has_hi;
  double lo, hi;
} ClampArg;

static void clamp_f32(char **p, const int64_t *s, int64_t n, const void *arg) {
  const ClampArg *c = arg;
  float *o = (float *)p[0];
  const float *a = (const float *)p[1];
  float lo = c->has_lo ? (float)c->lo : -INFINITY;
  float hi = c->has_hi ? (float)c->hi : INFINITY;
  for (int64_t i = 0; i < n; i++) {
    float x = a[i * s[1]];
    o[i * s[0]] = x != x ? x : x < lo ? lo : x > hi ? hi : x;
  }
}

/* f64 twin of clamp_f32 */
static void clamp_f64(char **p, const int64_t *s, int64_t n, const void *arg) {
  const ClampArg *c = arg;
  double *o = (double *)p[0];
  const double *a = (const double *)p[1];
  double lo = c->has_lo ? c->lo : -INFINITY;
  double hi = c->has_hi ? c->hi : INFINITY;
  for (int64_t i = 0; i < n; i++) {
    double x = a[i * s[1]];
    o[i * s[0]] = x != x ? x : x < lo ? lo : x > hi ? hi : x;
  }
}

/* i64 sibling of clamp_f32 */
static void clamp_i64(char **p, const int64_t *s, int64_t n, const void *arg) {
  const ClampArg *c = arg;
  int64_t *o = (int64_t *)p[0];
  const int64_t *a = (const int64_t *)p[1];
  int64_t lo = c->has_lo ? mg_f2i64(ceil(c->lo)) : INT64_MIN;
  int64_t hi = c->has_hi ? mg_f2i64(floor(c->hi)) : INT64_MAX;
  for (int64_t i = 0; i < n; i++) {
    int64_t x = a[i * s[1]];
    o[i * s[0]] = x < lo ? lo : x > hi ? hi : x;
  }
}

static const mg_LoopFn clamp_kernels[MG_NDTYPES] = {clamp_f32, clamp_f64,
                                                    clamp_i64};

static int clamp_forward(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *a,
                         int has_lo, double lo, int has_hi, double hi) {
  if (!has_lo && !has_hi)
    return mg_error(ctx, MG_EARG, "clamp: give at least one of min and max");
  if (has_lo && has_hi && lo > hi)
    return mg_error(ctx, MG_EARG, "clamp: min %g is greater than max %g", lo,
                    hi);
  mg_Tensor *r = NULL;
  int st = mg_alloc_like(ctx, &r, a->dtype, a->ndim, a->shape, a);
  if (st) return st;
  ClampArg c = {has_lo, has_hi, lo, hi};
  mg_Iter it;
  mg_Tensor *ops[2] = {r, (mg_Tensor *)a};
  mg_iter_init_memory_order(&it, 2, ops, r->ndim, r->shape);
  mg_iter_run(ctx, &it, clamp_kernels[a->dtype], &c);
  *out = r;
  return MG_OK;
}

/* The gradient passes where lo <= x <= hi (bounds included, as PyTorch). */
static int clamp_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                          mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *x = n->saved[0], *d = g;
  if (n->i[0]) d = mg_bw_binary(&b, MG_OP_MUL, d, mg_bw_scalar(&b, MG_OP_GE, x, n->f[0]));
  if (n->i[1]) d = mg_bw_binary(&b, MG_OP_MUL, d, mg_bw_scalar(&b, MG_OP_LE, x, n->f[1]));
  mg_bw_out(&b, &grads[0], d);
  return mg_bw_end(&b);
}

int mg_clamp(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *a, int has_lo,
             double lo, int has_hi, double hi) {
  mg_Tensor *ins[1] = {(mg_Tensor *)a}, *r = NULL;
  int st = clamp_forward(ctx, &r, a, has_lo, lo, has_hi, hi);
  if (st) return st;
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "clamp", clamp_backward, 1, ins, &n)) ||
        (st = mg_save(ctx, n, 0, a))) {
      mg_tensor_decref(r);
      return st;
    }
    if (n) n->i[0] = has_lo, n->i[1] = has_hi, n->f[0] = lo, n->f[1] = hi;
  }
  *out = r;
  return MG_OK;
}

/* ---- where and masked_fill ------------------------------------------------- */

typedef struct {
  mg_DType out, cond;
} WhereArg;

/* ptrs: out, cond, a, b — a and b already in the out dtype, whose elements
 * are moved as bytes; one kernel per dtype of cond. */
static void where_run_f32(char **p, const int64_t *s, int64_t n, const void *arg) {
  const WhereArg *w = arg;
  size_t es = mg_dtype_size(w->out);
  const float *c = (const float *)p[1];
  for (int64_t i = 0; i < n; i++) {
    const char *src = c[i * s[1]] != 0 ? p[2] + i * s[2] * (int64_t)es
                                       : p[3] + i * s[3] * (int64_t)es;
    memcpy(p[0] + i * s[0] * (int64_t)es, src, es);
  }
}
/* f64 twin of where_run_f32 */
static void where_run_f64(char **p, const int64_t *s, int64_t n, const void *arg) {
  const WhereArg *w = arg;
  size_t es = mg_dtype_size(w->out);
  const double *c = (const double *)p[1];
  for (int64_t i = 0; i < n; i++) {
    const char *src = c[i * s[1]] != 0 ? p[2] + i * s[2] * (int64_t)es
                                       : p[3] + i * s[3] * (int64_t)es;
    memcpy(p[0] + i * s[0] * (int64_t)es, src, es);
  }
}
/* i64 sibling of where_run_f32 */
static void where_run_i64(char **p, const int64_t *s, int64_t n, const void *arg) {
  const WhereArg *w = arg;
  size_t es = mg_dtype_size(w->out);
  const int64_t *c = (const int64_t *)p[1];
  for (int64_t i = 0; i < n; i++) {
    const char *src = c[i * s[1]] != 0 ? p[2] + i * s[2] * (int64_t)es
                                       : p[3] + i * s[3] * (int64_t)es;
    memcpy(p[0] + i * s[0] * (int64_t)es, src, es);
  }
}

/* The kernel for a cond (or mask) of dtype dt: the bindings hand the core
 * only the dtypes that compute (a stored one is converted to int64), and
 * the int64 kernel serves any other. */
static mg_LoopFn kernel_for(mg_DType dt, mg_LoopFn f32, mg_LoopFn f64, mg_LoopFn i64) {
  return dt == MG_F32 ? f32 : dt == MG_F64 ? f64 : i64;
}

/* The kernels read a condition or mask as float32, float64 or int64; one
 * of a storage dtype is read through a copy, float32 for float16 and
 * bfloat16 (exact, so 0.5 stays true), int64 for bool, uint8, int32, ...;
 * *tmp owns it (it stays NULL when none is needed). */
static int mask_as_computing(mg_Context *ctx, const mg_Tensor **m, mg_Tensor **tmp) {
  *tmp = NULL;
  if (mg_dtype_computes((*m)->dtype)) return MG_OK;
  mg_DType to = mg_dtype_is_float((*m)->dtype) ? MG_F32 : MG_I64;
  int st = mg_to_dtype(ctx, tmp, (mg_Tensor *)*m, to);
  if (!st) *m = *tmp;
  return st;
}

static int where_forward(mg_Context *ctx, mg_Tensor **out,
                         const mg_Tensor *cond, const mg_Tensor *a,
                         const mg_Tensor *b) {
  int n1, n, st;
  int64_t s1[MG_MAXDIM], shape[MG_MAXDIM];
  if ((st = mg_broadcast_shapes(ctx, "where", a->ndim, a->shape, b->ndim,
                                b->shape, &n1, s1)) ||
      (st = mg_broadcast_shapes(ctx, "where", cond->ndim, cond->shape, n1, s1,
                                &n, shape)))
    return st;
  mg_DType dt = mg_promote(a->dtype, b->dtype);
  mg_Tensor *ca = NULL, *cb = NULL, *cm = NULL, *r = NULL;
  if ((st = as_dtype(ctx, &ca, a, dt)) || (st = as_dtype(ctx, &cb, b, dt)) ||
      (st = mask_as_computing(ctx, &cond, &cm)) ||
      (st = mg_alloc_like(ctx, &r, dt, n, shape, mg_is_channels_last(a) ? a : b)))
    goto done;
  WhereArg w = {dt, cond->dtype};
  mg_Iter it;
  mg_Tensor *ops[4] = {r, (mg_Tensor *)cond, ca, cb};
  mg_iter_init_memory_order(&it, 4, ops, n, shape);
  mg_iter_run(ctx, &it, kernel_for(cond->dtype, where_run_f32, where_run_f64,
                                   where_run_i64), &w);
  *out = r;
done:
  mg_tensor_decref(ca);
  mg_tensor_decref(cb);
  mg_tensor_decref(cm);
  return st;
}

/* a gets g where cond holds, b where it does not; cond gets nothing. */
static int where_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                          mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *zero = mg_bw_scalar(&b, MG_OP_MUL, g, 0), *r;
  for (int i = 1; i <= 2; i++) {
    if (!mg_node_needs(n, i) || !zero) continue;
    r = NULL;
    r = mg_bw_hold(&b, where_forward(ctx, &r, n->saved[0],
                                                 i == 1 ? g : zero,
                                                 i == 1 ? zero : g), &r);
    mg_bw_out(&b, &grads[i], mg_bw_sum_to(&b, r, n->in_ndim[i], n->in_shape[i]));
  }
  return mg_bw_end(&b);
}

int mg_where(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *cond,
             const mg_Tensor *a, const mg_Tensor *b) {
  mg_Tensor *ins[3] = {(mg_Tensor *)cond, (mg_Tensor *)a, (mg_Tensor *)b}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = where_forward(ctx, &r, cond, a, b);
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (mg_needs_grad(ctx, 3, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "where", where_backward, 3, ins, &n)) ||
        (st = mg_save(ctx, n, 0, cond))) {
      mg_tensor_decref(r);
      return st;
    }
  }
  *out = r;
  return MG_OK;
}

typedef struct {
  mg_DType mask;
  double value;
} MaskArg;

/* The loop of a masked_fill run for a mask of element type MT: stmt on
 * every element where the mask holds. */
#define MASK_LOOP(MT, stmt)                                                \
  do {                                                                     \
    const MT *mk = (const MT *)p[1];                                       \
    for (int64_t i = 0; i < n; i++)                                        \
      if (mk[i * s[1]] != 0) stmt;                                         \
  } while (0)

/* ptrs: t, mask; one kernel per dtype of t, the mask's dtype picked per
 * run, before its loop. */
static void masked_fill_f32(char **p, const int64_t *s, int64_t n, const void *arg) {
  const MaskArg *m = arg;
  float *o = (float *)p[0], v = (float)m->value;
  switch (m->mask) {
  case MG_F32: MASK_LOOP(float, o[i * s[0]] = v); break;
  case MG_F64: MASK_LOOP(double, o[i * s[0]] = v); break;
  default: MASK_LOOP(int64_t, o[i * s[0]] = v); break;
  }
}
/* f64 twin of masked_fill_f32 */
static void masked_fill_f64(char **p, const int64_t *s, int64_t n, const void *arg) {
  const MaskArg *m = arg;
  double *o = (double *)p[0], v = (double)m->value;
  switch (m->mask) {
  case MG_F32: MASK_LOOP(float, o[i * s[0]] = v); break;
  case MG_F64: MASK_LOOP(double, o[i * s[0]] = v); break;
  default: MASK_LOOP(int64_t, o[i * s[0]] = v); break;
  }
}
/* i64 sibling of masked_fill_f32 */
static void masked_fill_i64(char **p, const int64_t *s, int64_t n, const void *arg) {
  const MaskArg *m = arg;
  int64_t *o = (int64_t *)p[0], v = mg_f2i64(m->value);
  switch (m->mask) {
  case MG_F32: MASK_LOOP(float, o[i * s[0]] = v); break;
  case MG_F64: MASK_LOOP(double, o[i * s[0]] = v); break;
  default: MASK_LOOP(int64_t, o[i * s[0]] = v); break;
  }
}
#undef MASK_LOOP

int mg_masked_fill_(mg_Context *ctx, mg_Tensor *t, const mg_Tensor *mask,
                    double value) {
  int n, st;
  int64_t shape[MG_MAXDIM];
  if ((st = mg_check_inplace(ctx, "masked_fill_", t))) return st;
  st = mg_broadcast_shapes(ctx, "masked_fill", t->ndim, t->shape, mask->ndim,
                           mask->shape, &n, shape);
  if (st || n != t->ndim ||
      memcmp(shape, t->shape, sizeof(int64_t) * (size_t)n)) {
    char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
    return mg_error(ctx, MG_ESHAPE, "masked_fill: mask of shape %s does not "
                    "broadcast to the tensor's shape %s",
                    mg_shape_str(ba, sizeof ba, mask->ndim, mask->shape),
                    mg_shape_str(bb, sizeof bb, t->ndim, t->shape));
  }
  mg_Tensor *cm;
  if ((st = mask_as_computing(ctx, &mask, &cm))) return st;
  MaskArg m = {mask->dtype, value};
  mg_Iter it;
  mg_Tensor *ops[2] = {t, (mg_Tensor *)mask};
  mg_iter_init_memory_order(&it, 2, ops, t->ndim, t->shape);
  mg_iter_run(ctx, &it, kernel_for(t->dtype, masked_fill_f32, masked_fill_f64,
                                   masked_fill_i64), &m);
  mg_tensor_decref(cm);
  mg_bump_version(t);
  return MG_OK;
}

/* g where the mask does not hold, 0 where it does (saved[0] is the mask). */
static int masked_fill_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                                mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *z = NULL, *r = NULL;
  z = mg_bw_hold(&b, mg_full(ctx, &z, g->dtype, 0, NULL, 0), &z);
  if (z) r = mg_bw_hold(&b, where_forward(ctx, &r, n->saved[0], z, g), &r);
  mg_bw_out(&b, &grads[0], r);
  return mg_bw_end(&b);
}

int mg_masked_fill(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                   const mg_Tensor *mask, double value) {
  mg_Tensor *ins[1] = {(mg_Tensor *)t}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = mg_clone(ctx, &r, t);
  if (!st && (st = mg_masked_fill_(ctx, r, mask, value))) {
    mg_tensor_decref(r);
    r = NULL;
  }
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (mg_needs_grad(ctx, 1, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "masked_fill", masked_fill_backward, 1, ins,
                        &n)) ||
        (st = mg_save(ctx, n, 0, mask))) {
      mg_tensor_decref(r);
      return st;
    }
  }
  *out = r;
  return MG_OK;
}

/* ---- helpers for backward formulas (see mg_internal.h) ---------------------
 * The mg_Bw forms of this file's ops, for every backward formula; they live
 * beside the ops they call so that autograd.c calls none. */

mg_Tensor *mg_bw_binary(mg_Bw *b, mg_BinaryOp op, mg_Tensor *x, mg_Tensor *y) {
  mg_Tensor *t = NULL;
  if (b->st || !x || !y) return NULL;
  return mg_bw_hold(b, mg_binary(b->ctx, &t, op, x, y), &t);
}

mg_Tensor *mg_bw_scalar(mg_Bw *b, mg_BinaryOp op, mg_Tensor *x, double s) {
  mg_Tensor *t = NULL;
  if (b->st || !x) return NULL;
  return mg_bw_hold(b, mg_binary_scalar(b->ctx, &t, op, x, s, 0, 0), &t);
}

mg_Tensor *mg_bw_rscalar(mg_Bw *b, mg_BinaryOp op, double s, mg_Tensor *x) {
  mg_Tensor *t = NULL;
  if (b->st || !x) return NULL;
  return mg_bw_hold(b, mg_binary_scalar(b->ctx, &t, op, x, s, 0, 1), &t);
}

mg_Tensor *mg_bw_unary(mg_Bw *b, mg_UnaryOp op, mg_Tensor *x) {
  mg_Tensor *t = NULL;
  if (b->st || !x) return NULL;
  return mg_bw_hold(b, mg_unary(b->ctx, &t, op, x), &t);
}
