/*
 * mg_vmath.h — exp, expm1, tanh, sigmoid and GELU's erf that GCC can
 * vectorise.
 *
 * Why: libm's expf, tanhf and expm1f are calls, and a loop that makes a
 * call is not vectorised: a float32 tensor went through them one element
 * at a time (a 256x256 tanh took ~15 ns per element). These functions are
 * static inline and call nothing, so a plain `for` loop over contiguous
 * float data that uses them is vectorised by -O3, with -march=native or
 * for plain x86-64 (make PORTABLE=1).
 *
 * Accuracy: mg_vexp is within 1-2 ulp in double. The float versions
 * (all but GELU's; see its section) compute in double and round once at
 * the end; a double error near 2^-52 can move a float result only when
 * the exact value lies that close to the midpoint between two floats, so
 * they are correctly rounded but for such rare cases, and within 1 ulp
 * always. Float64 tensors keep libm: gradient
 * checks want libm's double accuracy.
 *
 * Special values: NaN in gives NaN out; exp(-inf) = 0, exp(+inf) = inf;
 * overflow gives +inf and underflow subnormals, then 0; tanh(-0) = -0 and
 * expm1(-0) = -0.
 *
 * What keeps them vectorisable, learned from GCC 12's vectoriser reports:
 * no floating-point ternaries. A clamp `x > hi ? hi : x` lets GCC split the
 * loop body into a constant path and the rest, and a ternary with
 * arithmetic on one side moves that arithmetic into a branch; either way the
 * loop keeps a branch around operations that "may trap", which it will not
 * if-convert. So clamps are integer mins on the bits (mg_vclampf), and
 * selections blend bits (mg_vblendf) between two values both computed.
 */
#ifndef MG_VMATH_H
#define MG_VMATH_H

#include <stdint.h>
#include <string.h>

/* ln 2 as hi + lo: hi has its low 21 bits zero, so k * hi is exact for
 * every |k| < 2^21, far beyond the clamps below. */
#define MG_VLN2_HI 6.93147180369123816490e-01
#define MG_VLN2_LO 1.90821492927058770002e-10
#define MG_VLOG2E 1.44269504088896338700e+00
/* Adding 1.5 * 2^52 rounds a double of magnitude < 2^51 to an integer and
 * leaves that integer in the low mantissa bits. */
#define MG_VSHIFT 6755399441055744.0
#define MG_VSHIFT_BITS 0x4338000000000000ull
/* Bits of the clamps: 1418.0 (exp; see mg_vexp_core), 1418.0f, 128.0f
 * (expm1: a float result is inf or -1 beyond it) and 10.0f (tanh). */
#define MG_VEXP_MAX 0x4096280000000000ll
#define MG_VEXPF_MAX 0x44b14000
#define MG_VEXPM1F_MAX 0x43000000
#define MG_VTANHF_MAX 0x41200000

static inline uint64_t mg_vbits(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static inline double mg_vdouble(uint64_t u) {
  double x;
  memcpy(&x, &u, sizeof x);
  return x;
}

static inline float mg_vfloat(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* x with |x| limited to the positive float whose bits are hi, keeping the
 * sign; NaN stays NaN. */
static inline float mg_vclampf(float x, int32_t hi) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  int32_t a = (int32_t)(u & 0x7fffffffu);
  int32_t c = a < hi ? a : hi;
  c = a > 0x7f800000 ? a : c; /* NaN */
  return mg_vfloat((u & 0x80000000u) | (uint32_t)c);
}

/* The same for a double. Plain x86-64 has no 64-bit integer compare, so
 * loops using it vectorise only with AVX-512 (or AVX2). */
static inline double mg_vclamp(double x, int64_t hi) {
  uint64_t u = mg_vbits(x);
  int64_t a = (int64_t)(u & 0x7fffffffffffffffull);
  int64_t c = a < hi ? a : hi;
  c = a > 0x7ff0000000000000ll ? a : c; /* NaN */
  return mg_vdouble((u & 0x8000000000000000ull) | (uint64_t)c);
}

/* c ? a : b for c from a comparison, a and b both computed. */
static inline float mg_vblendf(int c, float a, float b) {
  uint32_t m = 0u - (uint32_t)c, ua, ub;
  memcpy(&ua, &a, sizeof ua);
  memcpy(&ub, &b, sizeof ub);
  return mg_vfloat((ua & m) | (ub & ~m));
}

/* The reduction all functions share: x = k ln2 + r with |r| <= ln2/2
 * (Cody-Waite: the hi product is exact, the lo one carries the rest).
 * Returns e^r - 1 by its Taylor polynomial to r^13 in Horner form (the r^14
 * term is below 2^-57 relative), which keeps relative accuracy for tiny r,
 * and sets *kb to k + 2048 (never negative, so it halves with a logical
 * shift). Needs |x| <= 1418; NaN gives NaN. */
static inline double mg_vexp_reduce(double x, uint64_t *kb) {
  double kd = x * MG_VLOG2E + MG_VSHIFT;
  *kb = mg_vbits(kd) - MG_VSHIFT_BITS + 2048;
  kd -= MG_VSHIFT;
  double r = (x - kd * MG_VLN2_HI) - kd * MG_VLN2_LO;
  double q = 1.0 / 6227020800.0;
  q = q * r + 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  q = q * r + 1.0;
  return q * r;
}

/* e^x for |x| <= 1418: e^r times 2^k as 2^k1 * 2^k2, k1 = floor(k/2),
 * both built from exponent bits. k is within [-2046, 2046], where neither
 * factor is subnormal until the result is far below the smallest double:
 * a result that underflows is rounded once, by the last multiplication,
 * and one that overflows becomes +inf (at the ends of the range a factor
 * is exactly 0 or inf). */
static inline double mg_vexp_core(double x) {
  uint64_t kb;
  double q = mg_vexp_reduce(x, &kb);
  /* h = k1 + 1024; biased exponents k1 + 1023 = h - 1 and
   * k2 + 1023 = k - k1 + 1023 = kb - h - 1. */
  uint64_t h = kb >> 1;
  double s1 = mg_vdouble((h - 1) << 52);
  double s2 = mg_vdouble((kb - h - 1) << 52);
  return (q + 1.0) * s1 * s2;
}

/* e^x - 1 for |x| <= 700 as 2^k (e^r - 1) + (2^k - 1): for k = 0 that is
 * e^r - 1 itself, accurate relative to x however small x is; for k != 0
 * (|x| > 0.34) the two terms cancel by at most a bit, and 2^k - 1 is exact
 * up to k = 53. */
static inline double mg_vexpm1_core(double x) {
  uint64_t kb;
  double q = mg_vexp_reduce(x, &kb);
  double s = mg_vdouble((kb - 2048 + 1023) << 52);
  /* The result has x's sign; copysign keeps it for x = -0 too. */
  return __builtin_copysign(s * q + (s - 1.0), x);
}

/* e^x, any double. */
static inline double mg_vexp(double x) {
  return mg_vexp_core(mg_vclamp(x, MG_VEXP_MAX));
}

/* e^x in double for a float x, for float kernels that go on in double; its
 * clamp vectorises on plain x86-64, mg_vexp's does not. */
static inline double mg_vexpfd(float x) {
  return mg_vexp_core((double)mg_vclampf(x, MG_VEXPF_MAX));
}

static inline float mg_vexpf(float x) { return (float)mg_vexpfd(x); }

static inline float mg_vexpm1f(float x) {
  return (float)mg_vexpm1_core((double)mg_vclampf(x, MG_VEXPM1F_MAX));
}

/* tanh |x| = m / (m + 2) with m = e^2|x| - 1, the usual (t - 1)/(t + 1)
 * with t = e^2|x| but with no cancellation near 0, so no separate
 * polynomial (and no selection) for small |x|. |x| is capped at 10, where
 * tanh is 1 - 4e-9 and already rounds to 1.0f. copysign restores the sign,
 * so tanh(-0) = -0 and NaN stays NaN. */
static inline float mg_vtanhf(float x) {
  double a = __builtin_fabs((double)mg_vclampf(x, MG_VTANHF_MAX));
  double m = mg_vexpm1_core(2.0 * a);
  return (float)__builtin_copysign(m / (m + 2.0), (double)x);
}

/* 1 / (1 + e^-x) in double: limits 0 and 1 exactly at -+inf, and no
 * cancellation anywhere. */
static inline float mg_vsigmoidf(float x) {
  return (float)(1.0 / (1.0 + mg_vexpfd(-x)));
}

/* ---- GELU in float32 arithmetic ----------------------------------------
 * GELU is the one activation large enough to matter in a training step
 * (a transformer's feed-forward layer is 4x the model width), and the
 * double-precision erf it used ran at a third of PyTorch's speed there. So
 * GELU alone computes in float, 16 lanes to a vector instead of 8, with
 * an accuracy budget set by what it feeds: 0.5 x (1 + erf(x / sqrt 2))
 * within a few ulps, and, where 1 + erf cancels (x < 0), within |x| 2^-24
 * absolute (spec/vmath_spec.lua holds it to both). */

/* e^-w for w in [0, 87.3365] in float: Cody-Waite reduction (ln 2's hi
 * part has 9 low zero bits, so k * hi is exact) and e^r's Taylor
 * polynomial to r^7 (the r^8 term is below 6e-9 relative); 2^k from
 * exponent bits, never subnormal in this range. */
static inline float mg_vexpf_neg(float w) {
  float kf = -w * 1.44269504f + 12582912.0f; /* 1.5 * 2^23 rounds */
  uint32_t kb;
  memcpy(&kb, &kf, sizeof kb);
  int32_t k = (int32_t)(kb - 0x4b400000u);
  kf -= 12582912.0f;
  float r = (-w - kf * 0.693145751953125f) - kf * 1.42860677e-06f;
  float q = 1.0f / 5040;
  q = q * r + 1.0f / 720;
  q = q * r + 1.0f / 120;
  q = q * r + 1.0f / 24;
  q = q * r + 1.0f / 6;
  q = q * r + 0.5f;
  q = q * r + 1.0f;
  q = q * r + 1.0f;
  return q * mg_vfloat((uint32_t)(k + 127) << 23);
}

/* 1 + erf(x / sqrt 2), which is 2 Phi(x), and *gauss = e^(-x^2 / 2), both
 * for GELU and its derivative, as functions of s = |x| (scaling x by
 * 1/sqrt 2 first would round it, an error that 1 + erf then magnifies
 * where it cancels). Below s = 0.7071, erf(s / sqrt 2) = s P(s^2), a
 * least-squares fit to 2.9e-8 relative with its coefficients in float.
 * Above, erfc(s / sqrt 2) = e^(-s^2/2) t R(t), t = 1 / (1 + s/2), a fit of
 * R to 1.6e-8, so 1 + erf is erfc itself for x < 0, with no cancellation,
 * and 2 - erfc for x > 0. Past s = 12.7 erfc and the Gaussian are 0 (both
 * below 1e-35). Both halves are computed and one chosen (mg_vblendf), so a
 * loop over it vectorises; NaN gives NaN. */
static inline float mg_vgelu_cdf2f(float x, float *gauss) {
  float s = __builtin_fabsf(x), v = x * x;
  float p = -1.702959526e-05f;
  p = p * v + 2.298639738e-04f;
  p = p * v - 2.374406205e-03f;
  p = p * v + 1.994708553e-02f;
  p = p * v - 1.329807639e-01f;
  p = p * v + 7.978845835e-01f;
  float es = p * s; /* erf(s / sqrt 2) for small s */
  float t = 1.0f / (1.0f + 0.5f * s);
  float q = 1.290696561e-01f;
  q = q * t - 3.405553401e-01f;
  q = q * t + 7.441508770e-02f;
  q = q * t + 6.386873126e-01f;
  q = q * t - 7.230946422e-01f;
  q = q * t + 6.148658693e-02f;
  q = q * t + 5.806903169e-02f;
  q = q * t + 3.048098683e-01f;
  q = q * t + 3.985251784e-01f;
  q = q * t + 3.989554644e-01f;
  int far = !(s < 12.7f);
  float e = mg_vblendf(far, 0.0f, mg_vexpf_neg(mg_vclampf(0.5f * v, 0x42a20000))); /* 81.0f */
  float ec = e * t * q; /* erfc(s / sqrt 2) */
  int neg = x < 0;
  float big = mg_vblendf(neg, ec, 2.0f - ec);
  float small = 1.0f + mg_vblendf(neg, -es, es);
  *gauss = e;
  return mg_vblendf(s < 0.7071f, small, big);
}

/* ---- recurrent gates in float32 arithmetic -------------------------------
 * An LSTM's gate pass is three sigmoids and two tanhs per hidden unit at
 * every time step, and in double (mg_vsigmoidf, mg_vtanhf) it was 13% of a
 * training step whose matrix products run at the core's peak. The gate
 * versions compute in float, 16 lanes to a vector, within 3 ulps
 * (spec/vmath_spec.lua holds them to it through an LSTM cell): well inside
 * what the cells' results are compared with (PyTorch's own float gates
 * differ from the exact values by about as much). The element-wise
 * sigmoid and tanh ops keep the correctly rounded versions above. */

/* Bits of 87.3365f, the largest float w whose e^-w is still normal. */
#define MG_VGATE_EXP_MAX 0x42aeac4a

/* e^-w for w >= 0 (any float, NaN gives NaN): 0 past w = 87.3365, where it
 * would be subnormal (a gate's flushed denormal). */
static inline float mg_vgate_expf_neg(float w) {
  float e = mg_vexpf_neg(mg_vclampf(w, MG_VGATE_EXP_MAX));
  return mg_vblendf(w > 87.3365f, 0.0f, e);
}

/* 1 / (1 + e^-x), through e = e^-|x| in (0, 1], so nothing overflows: 1 /
 * (1 + e) for x >= 0 and e / (1 + e) below; sigmoid(-inf) = 0 and
 * sigmoid(inf) = 1 exactly. */
static inline float mg_vgate_sigmoidf(float x) {
  float e = mg_vgate_expf_neg(__builtin_fabsf(x));
  float s = 1.0f / (1.0f + e);
  return mg_vblendf(x < 0, e * s, s);
}

/* tanh x for |x| = t: below t = 0.5, t P(t^2) with P tanh's Taylor series
 * to t^15 (the t^17 term is below 2^-27 relative there); above, (1 - e) /
 * (1 + e) with e = e^-2t <= e^-1, where 1 - e loses under a bit. The sign
 * is x's (tanh(-0) = -0); NaN gives NaN. */
static inline float mg_vgate_tanhf(float x) {
  float t = __builtin_fabsf(x), u = t * t;
  float p = -929569.0f / 638512875.0f;
  p = p * u + 21844.0f / 6081075.0f;
  p = p * u - 1382.0f / 155925.0f;
  p = p * u + 62.0f / 2835.0f;
  p = p * u - 17.0f / 315.0f;
  p = p * u + 2.0f / 15.0f;
  p = p * u - 1.0f / 3.0f;
  float small = t + t * (u * p);
  float e = mg_vgate_expf_neg(2.0f * t);
  float big = (1.0f - e) / (1.0f + e);
  return __builtin_copysignf(mg_vblendf(t < 0.5f, small, big), x);
}

#endif
