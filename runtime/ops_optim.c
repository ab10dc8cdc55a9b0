/*
 * ops_optim.c — the optimizers' update rules as fused kernels: one pass over
 * a parameter, its gradient and its optimizer state, in place, with no
 * allocation, plus the gradient norm behind clip_grad_norm.
 *
 * Every kernel is torch.optim 1.13's single-tensor (foreach=False) update,
 * element by element, with the same float operations in the same order and
 * the same roundings, so that a float32 trajectory matches PyTorch's and
 * not only a float64 one:
 *   - each torch op on a tensor rounds to the tensor's dtype, so a float32
 *     kernel computes in float and stores every intermediate as a float;
 *   - a Python scalar meets a tensor cast to the tensor's dtype, so every
 *     coefficient is computed in double (as Python does) and then cast;
 *   - PyTorch's CPU kernels fuse two of their ops into an FMA (measured on
 *     its AVX2 build, for both dtypes): add(b, alpha=s) is fma(s, b, a) and
 *     addcmul(b, c, value=s) is fma(s*b, c, a); addcdiv(b, c, value=s) is
 *     a + (s*b)/c with no fusion. The kernels call fma() exactly there and
 *     forbid the compiler from contracting anything else (the pragma below).
 * The comment above each kernel gives the torch lines it reproduces.
 *
 * Elements are independent, so large tensors are split across threads by
 * element range and the result never depends on the thread count.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "mg_internal.h"

/* a*b + c written in C stays two roundings; only fma() fuses. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

static const char *const optim_names[MG_NOPTIM] = {
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam"};
_Static_assert(sizeof optim_names / sizeof *optim_names == MG_NOPTIM,
               "an optimizer without a name");

/* State tensors by torch's state_dict names, in slot order. */
static const char *const state_names[MG_NOPTIM][MG_OPTIM_MAXSTATE] = {
    [MG_OPTIM_SGD] = {"momentum_buffer"},
    [MG_OPTIM_ADAM] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [MG_OPTIM_ADAMW] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [MG_OPTIM_RMSPROP] = {"square_avg", "momentum_buffer", "grad_avg"},
    [MG_OPTIM_ADAGRAD] = {"sum"},
    [MG_OPTIM_ADAMAX] = {"exp_avg", "exp_inf"},
    [MG_OPTIM_NADAM] = {"exp_avg", "exp_avg_sq"},
    [MG_OPTIM_RADAM] = {"exp_avg", "exp_avg_sq"},
};

const char *mg_optim_name(mg_Optim kind) {
  return kind >= 0 && kind < MG_NOPTIM ? optim_names[kind] : NULL;
}

int mg_optim_from_name(const char *name) {
  for (int k = 0; k < MG_NOPTIM; k++)
    if (strcmp(optim_names[k], name) == 0) return k;
  return -1;
}

const char *mg_optim_state_name(mg_Optim kind, int k) {
  if (kind < 0 || kind >= MG_NOPTIM || k < 0 || k >= MG_OPTIM_MAXSTATE)
    return NULL;
  return state_names[kind][k];
}

int mg_optim_needs_state(mg_Optim kind, int k, const mg_OptimConfig *cfg) {
  switch (kind) {
  case MG_OPTIM_SGD: return k == 0 && cfg->momentum != 0;
  case MG_OPTIM_ADAM:
  case MG_OPTIM_ADAMW: return k < 2 || (k == 2 && cfg->amsgrad);
  case MG_OPTIM_RMSPROP:
    return k == 0 || (k == 1 && cfg->momentum > 0) || (k == 2 && cfg->centered);
  case MG_OPTIM_ADAGRAD: return k == 0;
  case MG_OPTIM_ADAMAX:
  case MG_OPTIM_NADAM:
  case MG_OPTIM_RADAM: return k < 2;
  default: return 0;
  }
}

int mg_optim_state_new(mg_Context *ctx, mg_Tensor **out, mg_Optim kind, int k,
                       const mg_OptimConfig *cfg, const mg_Tensor *param) {
  const char *op = mg_optim_name(kind);
  if (!op || !mg_optim_state_name(kind, k))
    return mg_error(ctx, MG_EARG, "optimizer: no state slot %d", k);
  if (param->dtype == MG_I64)
    return mg_error(ctx, MG_EARG, "%s: parameters must be float32 or float64, "
                    "got int64", op);
  double init = kind == MG_OPTIM_ADAGRAD ? cfg->initial_accumulator_value : 0;
  return mg_full(ctx, out, param->dtype, param->ndim, param->shape, init);
}

/* ---- coefficients --------------------------------------------------------------
 * What one step needs besides the tensors: the configuration's flags and
 * the scalars torch computes in Python (double) before its tensor ops. */

typedef struct {
  int maximize;     /* negate the gradient first */
  int has_wd;       /* weight_decay != 0: add wd * param to the gradient */
  int decoupled;    /* AdamW: param *= decay first instead */
  int use_mom;      /* SGD momentum != 0; RMSprop momentum > 0 */
  int nesterov;     /* SGD */
  int fresh;        /* SGD: the momentum buffer is new: it takes d_p */
  int amsgrad;      /* Adam, AdamW */
  int centered;     /* RMSprop */
  int rectified;    /* RAdam: rho_t > 5 this step */
  double wd;        /* weight decay */
  double decay;     /* AdamW: 1 - lr * wd */
  double b1, c1;    /* beta1 and 1 - beta1 */
  double b2, c2;    /* beta2 and 1 - beta2; RMSprop: alpha and 1 - alpha */
  double mom;       /* momentum */
  double damp1;     /* SGD: 1 - dampening */
  double eps;
  double bc1;       /* RAdam: 1 - beta1^step */
  double bc2;       /* NAdam: 1 - beta2^step */
  double bc2s;      /* Adam, AdamW, RAdam: sqrt(1 - beta2^step) */
  double k1;        /* the update's multiplier: -lr, -step_size, -clr, ... */
  double k2;        /* NAdam: the momentum term's multiplier */
  double lr;        /* RAdam */
  double rect;      /* RAdam: the variance rectification */
} Coef;

/* torch's NAdam keeps mu_product in a float32 tensor (torch.tensor(1.)),
 * whatever the parameters' dtype: every product rounds to float. */
static double f32(double x) { return (double)(float)x; }

/* Fills c for this step (step counts this update: 1 for the first) and, for
 * NAdam, advances *mu_product. */
static void coefficients(Coef *c, mg_Optim kind, const mg_OptimConfig *o,
                         int64_t step_i, double *mu_product) {
  double step = (double)step_i, lr = o->lr;
  memset(c, 0, sizeof *c);
  c->maximize = o->maximize;
  c->wd = o->weight_decay;
  c->has_wd = o->weight_decay != 0;
  c->b1 = o->beta1;
  c->c1 = 1 - o->beta1;
  c->b2 = o->beta2;
  c->c2 = 1 - o->beta2;
  c->eps = o->eps;
  c->mom = o->momentum;
  switch (kind) {
  case MG_OPTIM_SGD:
    c->use_mom = o->momentum != 0;
    c->nesterov = o->nesterov;
    c->damp1 = 1 - o->dampening;
    c->k1 = -lr;
    break;
  case MG_OPTIM_ADAMW:
    c->decoupled = 1;
    c->has_wd = 0;
    c->decay = 1 - lr * o->weight_decay;
    /* fall through */
  case MG_OPTIM_ADAM: {
    double bc1 = 1 - pow(o->beta1, step), bc2 = 1 - pow(o->beta2, step);
    double step_size = lr / bc1;
    c->bc2s = sqrt(bc2);
    c->k1 = -step_size;
    c->amsgrad = o->amsgrad;
    break;
  }
  case MG_OPTIM_RMSPROP:
    c->b2 = o->alpha;
    c->c2 = 1 - o->alpha;
    c->use_mom = o->momentum > 0;
    c->centered = o->centered;
    c->k1 = -lr;
    break;
  case MG_OPTIM_ADAGRAD: {
    double clr = lr / (1 + (step - 1) * o->lr_decay);
    c->k1 = -clr;
    break;
  }
  case MG_OPTIM_ADAMAX: {
    double bias_correction = 1 - pow(o->beta1, step);
    double clr = lr / bias_correction;
    c->k1 = -clr;
    break;
  }
  case MG_OPTIM_NADAM: {
    double b1 = o->beta1, md = o->momentum_decay;
    c->bc2 = 1 - pow(o->beta2, step);
    double mu = b1 * (1. - 0.5 * pow(0.96, step * md));
    double mu_next = b1 * (1. - 0.5 * pow(0.96, (step + 1) * md));
    double mp = f32(f32(*mu_product) * (float)mu);       /* mu_product *= mu */
    double mp_next = f32(f32(mp * (float)mu) * (float)mu_next);
    *mu_product = mp;
    c->k1 = -lr * (1. - mu) / (1. - mp);
    c->k2 = -lr * mu_next / (1. - mp_next);
    break;
  }
  case MG_OPTIM_RADAM: {
    double b2 = o->beta2;
    double bc2 = 1 - pow(b2, step);
    c->bc1 = 1 - pow(o->beta1, step);
    double rho_inf = 2 / (1 - b2) - 1;
    double rho_t = rho_inf - 2 * step * pow(b2, step) / bc2;
    c->lr = lr;
    if (rho_t > 5.) {
      c->rectified = 1;
      c->rect = sqrt((rho_t - 4) * (rho_t - 2) * rho_inf /
                     ((rho_inf - 4) * (rho_inf - 2) * rho_t));
      c->bc2s = sqrt(bc2);
    }
    break;
  }
  default: break;
  }
}

/* ---- the kernels -------------------------------------------------------------
 * Each runs elements [b, e) of p (the parameter), g (its gradient) and the
 * state slots s[0..2], all contiguous and of one dtype. Each float32 kernel
 * is followed by its float64 twin, the same lines with the type changed. */

typedef struct {
  void *p;                         /* the parameter, updated */
  const void *g;                   /* its gradient */
  void *s[MG_OPTIM_MAXSTATE];      /* state slots (NULL when unused) */
  Coef c;
} Job;

typedef void (*KernelFn)(const Job *j, int64_t b, int64_t e);

/* torch.maximum / amax: NaN in either operand wins. */
static inline float max_f32(float a, float b) { return (a != a || a > b) ? a : b; }
/* f64 twin of max_f32 */
static inline double max_f64(double a, double b) { return (a != a || a > b) ? a : b; }

/* SGD — torch/optim/sgd.py _single_tensor_sgd:
 *   d_p = grad (or -grad); d_p = d_p.add(param, alpha=weight_decay)
 *   buf = clone(d_p) (first step) or buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
 *   d_p = d_p.add(buf, alpha=momentum) (nesterov) or buf
 *   param.add_(d_p, alpha=-lr) */
MG_INLINE void sgd_run_f32(const Job *j, int64_t b, int64_t e, int use_mom, int fresh) {
  float *restrict p = j->p, *restrict buf = j->s[0];
  const float *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd, nesterov = c->nesterov;
  const float wd = (float)c->wd, mom = (float)c->mom, damp1 = (float)c->damp1,
              k = (float)c->k1;
  for (int64_t i = b; i < e; i++) {
    float d = maximize ? -g[i] : g[i];
    if (has_wd) d = fmaf(wd, p[i], d);
    if (use_mom) {
      float v = fresh ? d : fmaf(damp1, d, buf[i] * mom);
      buf[i] = v;
      d = nesterov ? fmaf(mom, v, d) : v;
    }
    p[i] = fmaf(k, d, p[i]);
  }
}

/* f64 twin of sgd_run_f32 */
MG_INLINE void sgd_run_f64(const Job *j, int64_t b, int64_t e, int use_mom, int fresh) {
  double *restrict p = j->p, *restrict buf = j->s[0];
  const double *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd, nesterov = c->nesterov;
  const double wd = c->wd, mom = c->mom, damp1 = c->damp1, k = c->k1;
  for (int64_t i = b; i < e; i++) {
    double d = maximize ? -g[i] : g[i];
    if (has_wd) d = fma(wd, p[i], d);
    if (use_mom) {
      double v = fresh ? d : fma(damp1, d, buf[i] * mom);
      buf[i] = v;
      d = nesterov ? fma(mom, v, d) : v;
    }
    p[i] = fma(k, d, p[i]);
  }
}

static void sgd_f32(const Job *j, int64_t b, int64_t e) {
  const Coef *c = &j->c;
  if (!c->use_mom) sgd_run_f32(j, b, e, 0, 0);
  else if (c->fresh) sgd_run_f32(j, b, e, 1, 1);
  else sgd_run_f32(j, b, e, 1, 0);
}

/* f64 twin of sgd_f32 */
static void sgd_f64(const Job *j, int64_t b, int64_t e) {
  const Coef *c = &j->c;
  if (!c->use_mom) sgd_run_f64(j, b, e, 0, 0);
  else if (c->fresh) sgd_run_f64(j, b, e, 1, 1);
  else sgd_run_f64(j, b, e, 1, 0);
}

/* Adam and AdamW — adam.py _single_tensor_adam, adamw.py _single_tensor_adamw:
 *   grad = grad (or -grad)
 *   AdamW: param.mul_(1 - lr * weight_decay)
 *   Adam:  grad = grad.add(param, alpha=weight_decay)
 *   exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
 *   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
 *   amsgrad: torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
 *   denom = (exp_avg_sq (or max).sqrt() / bias_correction2_sqrt).add_(eps)
 *   param.addcdiv_(exp_avg, denom, value=-step_size)
 * The last two as param += (-step_size b) exp_avg / (sqrt + eps b) with b =
 * bias_correction2_sqrt: the same quotient (within an ulp) with one division
 * fewer. The square root and the divisions share the divider, and three of
 * them per element bound the update (a batch-1 MLP step's Adam over 535,000
 * parameters: 380 µs, half the step). */
MG_INLINE void adam_run_f32(const Job *j, int64_t b, int64_t e, int amsgrad) {
  float *restrict p = j->p, *restrict m = j->s[0], *restrict v = j->s[1],
        *restrict vmax = j->s[2];
  const float *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd, decoupled = c->decoupled;
  const float wd = (float)c->wd, decay = (float)c->decay, b1 = (float)c->b1,
              c1 = (float)c->c1, b2 = (float)c->b2, c2 = (float)c->c2,
              epsb = (float)(c->eps * c->bc2s), kb = (float)(c->k1 * c->bc2s);
  for (int64_t i = b; i < e; i++) {
    float d = maximize ? -g[i] : g[i];
    float pi = p[i];
    if (decoupled) pi = pi * decay;
    else if (has_wd) d = fmaf(wd, pi, d);
    float mi = fmaf(c1, d, m[i] * b1);
    float vi = fmaf(c2 * d, d, v[i] * b2);
    m[i] = mi;
    v[i] = vi;
    if (amsgrad) vmax[i] = vi = max_f32(vmax[i], vi);
    p[i] = pi + (kb * mi) / (sqrtf(vi) + epsb);
  }
}

/* f64 twin of adam_run_f32 */
MG_INLINE void adam_run_f64(const Job *j, int64_t b, int64_t e, int amsgrad) {
  double *restrict p = j->p, *restrict m = j->s[0], *restrict v = j->s[1],
         *restrict vmax = j->s[2];
  const double *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd, decoupled = c->decoupled;
  const double wd = c->wd, decay = c->decay, b1 = c->b1, c1 = c->c1,
               b2 = c->b2, c2 = c->c2, epsb = c->eps * c->bc2s, kb = c->k1 * c->bc2s;
  for (int64_t i = b; i < e; i++) {
    double d = maximize ? -g[i] : g[i];
    double pi = p[i];
    if (decoupled) pi = pi * decay;
    else if (has_wd) d = fma(wd, pi, d);
    double mi = fma(c1, d, m[i] * b1);
    double vi = fma(c2 * d, d, v[i] * b2);
    m[i] = mi;
    v[i] = vi;
    if (amsgrad) vmax[i] = vi = max_f64(vmax[i], vi);
    p[i] = pi + (kb * mi) / (sqrt(vi) + epsb);
  }
}

static void adam_f32(const Job *j, int64_t b, int64_t e) {
  const Coef *c = &j->c;
  if (c->amsgrad) adam_run_f32(j, b, e, 1);
  else adam_run_f32(j, b, e, 0);
}

/* f64 twin of adam_f32 */
static void adam_f64(const Job *j, int64_t b, int64_t e) {
  const Coef *c = &j->c;
  if (c->amsgrad) adam_run_f64(j, b, e, 1);
  else adam_run_f64(j, b, e, 0);
}

/* RMSprop — rmsprop.py _single_tensor_rmsprop (alpha is b2 here):
 *   grad = grad (or -grad); grad = grad.add(param, alpha=weight_decay)
 *   square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
 *   centered: grad_avg.mul_(alpha).add_(grad, alpha=1 - alpha)
 *             avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
 *   else:     avg = square_avg.sqrt()
 *   avg = avg.add_(eps)
 *   momentum > 0: buf.mul_(momentum).addcdiv_(grad, avg); param.add_(buf, alpha=-lr)
 *   else:         param.addcdiv_(grad, avg, value=-lr) */
MG_INLINE void rmsprop_run_f32(const Job *j, int64_t b, int64_t e, int use_mom, int centered) {
  float *restrict p = j->p, *restrict sq = j->s[0], *restrict buf = j->s[1],
        *restrict ga = j->s[2];
  const float *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd;
  const float wd = (float)c->wd, alpha = (float)c->b2, c2 = (float)c->c2,
              mom = (float)c->mom, eps = (float)c->eps, k = (float)c->k1;
  for (int64_t i = b; i < e; i++) {
    float d = maximize ? -g[i] : g[i];
    if (has_wd) d = fmaf(wd, p[i], d);
    float s = fmaf(c2 * d, d, sq[i] * alpha);
    sq[i] = s;
    float avg;
    if (centered) {
      float a = fmaf(c2, d, ga[i] * alpha);
      ga[i] = a;
      avg = sqrtf(fmaf(-a, a, s));
    } else {
      avg = sqrtf(s);
    }
    avg = avg + eps;
    if (use_mom) {
      float v = buf[i] * mom + d / avg;
      buf[i] = v;
      p[i] = fmaf(k, v, p[i]);
    } else {
      p[i] = p[i] + (k * d) / avg;
    }
  }
}

/* f64 twin of rmsprop_run_f32 */
MG_INLINE void rmsprop_run_f64(const Job *j, int64_t b, int64_t e, int use_mom, int centered) {
  double *restrict p = j->p, *restrict sq = j->s[0], *restrict buf = j->s[1],
         *restrict ga = j->s[2];
  const double *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd;
  const double wd = c->wd, alpha = c->b2, c2 = c->c2, mom = c->mom,
               eps = c->eps, k = c->k1;
  for (int64_t i = b; i < e; i++) {
    double d = maximize ? -g[i] : g[i];
    if (has_wd) d = fma(wd, p[i], d);
    double s = fma(c2 * d, d, sq[i] * alpha);
    sq[i] = s;
    double avg;
    if (centered) {
      double a = fma(c2, d, ga[i] * alpha);
      ga[i] = a;
      avg = sqrt(fma(-a, a, s));
    } else {
      avg = sqrt(s);
    }
    avg = avg + eps;
    if (use_mom) {
      double v = buf[i] * mom + d / avg;
      buf[i] = v;
      p[i] = fma(k, v, p[i]);
    } else {
      p[i] = p[i] + (k * d) / avg;
    }
  }
}

static void rmsprop_f32(const Job *j, int64_t b, int64_t e) {
  const Coef *c = &j->c;
  if (c->use_mom && c->centered) rmsprop_run_f32(j, b, e, 1, 1);
  else if (c->use_mom) rmsprop_run_f32(j, b, e, 1, 0);
  else if (c->centered) rmsprop_run_f32(j, b, e, 0, 1);
  else rmsprop_run_f32(j, b, e, 0, 0);
}

/* f64 twin of rmsprop_f32 */
static void rmsprop_f64(const Job *j, int64_t b, int64_t e) {
  const Coef *c = &j->c;
  if (c->use_mom && c->centered) rmsprop_run_f64(j, b, e, 1, 1);
  else if (c->use_mom) rmsprop_run_f64(j, b, e, 1, 0);
  else if (c->centered) rmsprop_run_f64(j, b, e, 0, 1);
  else rmsprop_run_f64(j, b, e, 0, 0);
}

/* Adagrad — adagrad.py _single_tensor_adagrad (dense):
 *   grad = grad (or -grad); grad = grad.add(param, alpha=weight_decay)
 *   clr = lr / (1 + (step - 1) * lr_decay)
 *   state_sum.addcmul_(grad, grad, value=1)
 *   std = state_sum.sqrt().add_(eps)
 *   param.addcdiv_(grad, std, value=-clr) */
static void adagrad_f32(const Job *j, int64_t b, int64_t e) {
  float *restrict p = j->p, *restrict sum = j->s[0];
  const float *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd;
  const float wd = (float)c->wd, eps = (float)c->eps, k = (float)c->k1;
  for (int64_t i = b; i < e; i++) {
    float d = maximize ? -g[i] : g[i];
    if (has_wd) d = fmaf(wd, p[i], d);
    float s = fmaf(d, d, sum[i]);
    sum[i] = s;
    float std = sqrtf(s) + eps;
    p[i] = p[i] + (k * d) / std;
  }
}

/* f64 twin of adagrad_f32 */
static void adagrad_f64(const Job *j, int64_t b, int64_t e) {
  double *restrict p = j->p, *restrict sum = j->s[0];
  const double *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd;
  const double wd = c->wd, eps = c->eps, k = c->k1;
  for (int64_t i = b; i < e; i++) {
    double d = maximize ? -g[i] : g[i];
    if (has_wd) d = fma(wd, p[i], d);
    double s = fma(d, d, sum[i]);
    sum[i] = s;
    double std = sqrt(s) + eps;
    p[i] = p[i] + (k * d) / std;
  }
}

/* Adamax — adamax.py _single_tensor_adamax:
 *   grad = grad (or -grad); grad = grad.add(param, alpha=weight_decay)
 *   exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
 *   exp_inf = amax(cat([exp_inf.mul_(beta2), grad.abs().add_(eps)]), 0)
 *   clr = lr / (1 - beta1 ** step)
 *   param.addcdiv_(exp_avg, exp_inf, value=-clr) */
static void adamax_f32(const Job *j, int64_t b, int64_t e) {
  float *restrict p = j->p, *restrict m = j->s[0], *restrict u = j->s[1];
  const float *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd;
  const float wd = (float)c->wd, b1 = (float)c->b1, c1 = (float)c->c1,
              b2 = (float)c->b2, eps = (float)c->eps, k = (float)c->k1;
  for (int64_t i = b; i < e; i++) {
    float d = maximize ? -g[i] : g[i];
    if (has_wd) d = fmaf(wd, p[i], d);
    float mi = fmaf(c1, d, m[i] * b1);
    float ui = max_f32(u[i] * b2, fabsf(d) + eps);
    m[i] = mi;
    u[i] = ui;
    p[i] = p[i] + (k * mi) / ui;
  }
}

/* f64 twin of adamax_f32 */
static void adamax_f64(const Job *j, int64_t b, int64_t e) {
  double *restrict p = j->p, *restrict m = j->s[0], *restrict u = j->s[1];
  const double *restrict g = j->g;
  const Coef *c = &j->c;
  const int maximize = c->maximize, has_wd = c->has_wd;
  const double wd = c->wd, b1 = c->b1, c1 = c->c1, b2 = c->b2, eps = c->eps,
               k = c->k1;
  for (int64_t i = b; i < e; i++) {
    double d = maximize ? -g[i] : g[i];
    if (has_wd) d = fma(wd, p[i], d);
    double mi = fma(c1, d, m[i] * b1);
    double ui = max_f64(u[i] * b2, fabs(d) + eps);
    m[i] = mi;
    u[i] = ui;
    p[i] = p[i] + (k * mi) / ui;
  }
}

/* NAdam — nadam.py _single_tensor_nadam (no maximize in 1.13):
 *   grad = grad.add(param, alpha=weight_decay)
 *   exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
 *   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
 *   denom = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
 *   param.addcdiv_(grad, denom, value=-lr * (1. - mu) / (1. - mu_product))
 *   param.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1. - mu_product_next)) */
static void nadam_f32(const Job *j, int64_t b, int64_t e) {
  float *restrict p = j->p, *restrict m = j->s[0], *restrict v = j->s[1];
  const float *restrict g = j->g;
  const Coef *c = &j->c;
  const int has_wd = c->has_wd;
  const float wd = (float)c->wd, b1 = (float)c->b1, c1 = (float)c->c1,
              b2 = (float)c->b2, c2 = (float)c->c2, bc2 = (float)c->bc2,
              eps = (float)c->eps, k1 = (float)c->k1, k2 = (float)c->k2;
  for (int64_t i = b; i < e; i++) {
    float d = g[i];
    if (has_wd) d = fmaf(wd, p[i], d);
    float mi = fmaf(c1, d, m[i] * b1);
    float vi = fmaf(c2 * d, d, v[i] * b2);
    m[i] = mi;
    v[i] = vi;
    float den = sqrtf(vi / bc2) + eps;
    float pi = p[i] + (k1 * d) / den;
    p[i] = pi + (k2 * mi) / den;
  }
}

/* f64 twin of nadam_f32 */
static void nadam_f64(const Job *j, int64_t b, int64_t e) {
  double *restrict p = j->p, *restrict m = j->s[0], *restrict v = j->s[1];
  const double *restrict g = j->g;
  const Coef *c = &j->c;
  const int has_wd = c->has_wd;
  const double wd = c->wd, b1 = c->b1, c1 = c->c1, b2 = c->b2, c2 = c->c2,
               bc2 = c->bc2, eps = c->eps, k1 = c->k1, k2 = c->k2;
  for (int64_t i = b; i < e; i++) {
    double d = g[i];
    if (has_wd) d = fma(wd, p[i], d);
    double mi = fma(c1, d, m[i] * b1);
    double vi = fma(c2 * d, d, v[i] * b2);
    m[i] = mi;
    v[i] = vi;
    double den = sqrt(vi / bc2) + eps;
    double pi = p[i] + (k1 * d) / den;
    p[i] = pi + (k2 * mi) / den;
  }
}

/* RAdam — radam.py _single_tensor_radam (no maximize in 1.13):
 *   grad = grad.add(param, alpha=weight_decay)
 *   exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
 *   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
 *   bias_corrected_exp_avg = exp_avg / bias_correction1
 *   rho_t > 5: adaptive_lr = math.sqrt(bias_correction2) / exp_avg_sq.sqrt().add_(eps)
 *              (a scalar over a tensor is tensor.reciprocal() * scalar)
 *              param.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
 *   else:      param.add_(bias_corrected_exp_avg * lr, alpha=-1.0) */
static void radam_f32(const Job *j, int64_t b, int64_t e) {
  float *restrict p = j->p, *restrict m = j->s[0], *restrict v = j->s[1];
  const float *restrict g = j->g;
  const Coef *c = &j->c;
  const int has_wd = c->has_wd, rectified = c->rectified;
  const float wd = (float)c->wd, b1 = (float)c->b1, c1 = (float)c->c1,
              b2 = (float)c->b2, c2 = (float)c->c2, bc1 = (float)c->bc1,
              bc2s = (float)c->bc2s, eps = (float)c->eps, lr = (float)c->lr,
              rect = (float)c->rect;
  for (int64_t i = b; i < e; i++) {
    float d = g[i];
    if (has_wd) d = fmaf(wd, p[i], d);
    float mi = fmaf(c1, d, m[i] * b1);
    float vi = fmaf(c2 * d, d, v[i] * b2);
    m[i] = mi;
    v[i] = vi;
    float bcm = mi / bc1;
    if (rectified) {
      float adaptive = (1.0f / (sqrtf(vi) + eps)) * bc2s;
      p[i] = p[i] - bcm * lr * adaptive * rect;
    } else {
      p[i] = p[i] - bcm * lr;
    }
  }
}

/* f64 twin of radam_f32 */
static void radam_f64(const Job *j, int64_t b, int64_t e) {
  double *restrict p = j->p, *restrict m = j->s[0], *restrict v = j->s[1];
  const double *restrict g = j->g;
  const Coef *c = &j->c;
  const int has_wd = c->has_wd, rectified = c->rectified;
  const double wd = c->wd, b1 = c->b1, c1 = c->c1, b2 = c->b2, c2 = c->c2,
               bc1 = c->bc1, bc2s = c->bc2s, eps = c->eps, lr = c->lr,
               rect = c->rect;
  for (int64_t i = b; i < e; i++) {
    double d = g[i];
    if (has_wd) d = fma(wd, p[i], d);
    double mi = fma(c1, d, m[i] * b1);
    double vi = fma(c2 * d, d, v[i] * b2);
    m[i] = mi;
    v[i] = vi;
    double bcm = mi / bc1;
    if (rectified) {
      double adaptive = (1.0 / (sqrt(vi) + eps)) * bc2s;
      p[i] = p[i] - bcm * lr * adaptive * rect;
    } else {
      p[i] = p[i] - bcm * lr;
    }
  }
}

/* Adam and AdamW share a kernel (Coef.decoupled tells them apart). */
/* Runs fn with subnormal numbers flushed to zero (FTZ, and DAZ for inputs).
 * Why: a unit that never fires gets a zero gradient, and Adam's exp_avg
 * then decays by beta1 a step into the subnormal range (after ~800 steps
 * from 1e-4), where every multiply takes a microcode assist: a
 * 535,000-parameter step ran four times slower. Flushed, such a state is
 * 0; the update it would have made was below lr * 1e-30. PyTorch keeps
 * subnormals unless torch.set_flush_denormal(True). The caller's
 * floating-point mode is restored. */
static void run_flushed(KernelFn fn, const Job *j, int64_t b, int64_t e) {
#if defined(__SSE__)
  unsigned int csr = _mm_getcsr();
  _mm_setcsr(csr | _MM_FLUSH_ZERO_ON | 0x0040 /* DAZ */);
  fn(j, b, e);
  _mm_setcsr(csr);
#else
  fn(j, b, e);
#endif
}

static const KernelFn kernels[MG_NOPTIM][2] = {
    [MG_OPTIM_SGD] = {sgd_f32, sgd_f64},
    [MG_OPTIM_ADAM] = {adam_f32, adam_f64},
    [MG_OPTIM_ADAMW] = {adam_f32, adam_f64},
    [MG_OPTIM_RMSPROP] = {rmsprop_f32, rmsprop_f64},
    [MG_OPTIM_ADAGRAD] = {adagrad_f32, adagrad_f64},
    [MG_OPTIM_ADAMAX] = {adamax_f32, adamax_f64},
    [MG_OPTIM_NADAM] = {nadam_f32, nadam_f64},
    [MG_OPTIM_RADAM] = {radam_f32, radam_f64},
};

/* ---- the step ------------------------------------------------------------------ */

static int check_like(mg_Context *ctx, const char *op, const char *what,
                      const mg_Tensor *t, const mg_Tensor *param) {
  char a[MG_SHAPE_BUFSZ], b[MG_SHAPE_BUFSZ];
  int same = t->ndim == param->ndim;
  for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == param->shape[d];
  if (!same)
    return mg_error(ctx, MG_ESHAPE, "%s: %s of shape %s does not match "
                    "parameter of shape %s", op, what,
                    mg_shape_str(a, sizeof a, t->ndim, t->shape),
                    mg_shape_str(b, sizeof b, param->ndim, param->shape));
  if (t->dtype != param->dtype)
    return mg_error(ctx, MG_EARG, "%s: %s of dtype %s does not match "
                    "parameter of dtype %s", op, what, mg_dtype_name(t->dtype),
                    mg_dtype_name(param->dtype));
  if (!mg_is_contiguous(t))
    return mg_error(ctx, MG_EARG, "%s: %s of shape %s is not contiguous", op,
                    what, mg_shape_str(a, sizeof a, t->ndim, t->shape));
  return MG_OK;
}

int mg_optim_step(mg_Context *ctx, mg_Optim kind, const mg_OptimConfig *cfg,
                  mg_Tensor *param, const mg_Tensor *grad,
                  mg_OptimState *state) {
  const char *op = mg_optim_name(kind);
  char a[MG_SHAPE_BUFSZ], what[64];
  int st;
  if (!op) return mg_error(ctx, MG_EARG, "optimizer: unknown kind %d", (int)kind);
  if (param->dtype == MG_I64)
    return mg_error(ctx, MG_EARG, "%s: parameters must be float32 or float64, "
                    "got int64", op);
  if (!mg_is_contiguous(param))
    return mg_error(ctx, MG_EARG, "%s: parameter of shape %s is not contiguous "
                    "(make it with :contiguous() before :requires_grad())", op,
                    mg_shape_str(a, sizeof a, param->ndim, param->shape));
  if ((st = check_like(ctx, op, "grad", grad, param))) return st;
  if (grad->storage == param->storage)
    return mg_error(ctx, MG_EARG, "%s: grad shares storage with its parameter", op);

  Job job;
  memset(&job, 0, sizeof job);
  for (int k = 0; k < MG_OPTIM_MAXSTATE; k++) {
    if (!mg_optim_needs_state(kind, k, cfg)) continue;
    const char *name = state_names[kind][k];
    mg_Tensor *s = state->t[k];
    if (!s)
      return mg_error(ctx, MG_EARG, "%s: state '%s' is missing", op, name);
    snprintf(what, sizeof what, "state '%s'", name);
    if ((st = check_like(ctx, op, what, s, param))) return st;
    int shared = s->storage == param->storage || s->storage == grad->storage;
    for (int l = 0; l < k; l++)
      shared |= job.s[l] && state->t[l]->storage == s->storage;
    if (shared)
      return mg_error(ctx, MG_EARG, "%s: state '%s' shares storage with the "
                      "parameter, its gradient or other state", op, name);
    job.s[k] = mg_data(s);
  }

  int64_t step = state->step + 1;
  coefficients(&job.c, kind, cfg, step, &state->mu_product);
  job.c.fresh = kind == MG_OPTIM_SGD && state->fresh[0];
  job.p = mg_data(param);
  job.g = mg_data(grad);
  KernelFn fn = kernels[kind][param->dtype == MG_F64];
  int64_t n = mg_numel(param);
  int nt = mg_threads_for(ctx, n);
  if (nt <= 1) {
    run_flushed(fn, &job, 0, n);
  } else {
#pragma omp parallel num_threads(nt)
    {
      int t = omp_get_thread_num(), T = omp_get_num_threads();
      run_flushed(fn, &job, n * t / T, n * (t + 1) / T);
    }
  }
  state->step = step;
  for (int k = 0; k < MG_OPTIM_MAXSTATE; k++) {
    state->fresh[k] = 0;
    if (job.s[k]) mg_bump_version(state->t[k]);
  }
  mg_bump_version(param);
  return MG_OK;
}

/* ---- gradient norms --------------------------------------------------------------- */

/* The sum of |x|^norm_type over the n contiguous elements of x, in order,
 * in double (for INFINITY: the largest |x|, NaN winning). */
static double norm_acc_f32(const float *x, int64_t n, double norm_type) {
  double acc = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = fabs((double)x[i]);
    if (isinf(norm_type)) acc = (v != v || v > acc) ? v : acc;
    else if (norm_type == 2) acc += v * v;
    else if (norm_type == 1) acc += v;
    else acc += pow(v, norm_type);
  }
  return acc;
}

/* f64 twin of norm_acc_f32 */
static double norm_acc_f64(const double *x, int64_t n, double norm_type) {
  double acc = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = fabs((double)x[i]);
    if (isinf(norm_type)) acc = (v != v || v > acc) ? v : acc;
    else if (norm_type == 2) acc += v * v;
    else if (norm_type == 1) acc += v;
    else acc += pow(v, norm_type);
  }
  return acc;
}

int mg_grad_norm(mg_Context *ctx, double *out, const mg_Tensor *t,
                 double norm_type) {
  if (t->dtype != MG_F32 && t->dtype != MG_F64)
    return mg_error(ctx, MG_EARG, "clip_grad_norm: gradients must be float32 "
                    "or float64, got %s", mg_dtype_name(t->dtype));
  if (!(norm_type > 0))
    return mg_error(ctx, MG_EARG, "clip_grad_norm: norm_type must be positive "
                    "or math.huge, got %g", norm_type);
  /* Another layout is read from a contiguous copy, in the same order. */
  mg_Tensor *c = NULL;
  if (!mg_is_contiguous(t)) {
    int st = mg_clone_data(ctx, &c, t);
    if (st) return st;
  }
  const void *x = mg_data(c ? c : t);
  int64_t n = mg_numel(t);
  double acc = t->dtype == MG_F32 ? norm_acc_f32(x, n, norm_type)
                                  : norm_acc_f64(x, n, norm_type);
  mg_tensor_decref(c);
  if (isinf(norm_type)) *out = acc;
  else if (norm_type == 2) *out = sqrt(acc);
  else if (norm_type == 1) *out = acc;
  else *out = pow(acc, 1 / norm_type);
  return MG_OK;
}
