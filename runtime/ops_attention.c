/*
 * ops_attention.c — scaled dot-product attention as one op, forward and
 * backward (see mg_attention.h). Per (batch entry, head) pair, with P the
 * weights [Lq, Lk]:
 *
 *   forward   P = softmax(scale · q kᵀ + mask)    gemm, then a row pass
 *             o = P v                             gemm
 *   backward  dv = Pᵀ do                          gemm
 *             T  = do vᵀ (or the weights' gradient)
 *             T  = P ⊙ (T - rowsum(T ⊙ P))        a row pass: dscores
 *             dq = scale · T k,  dk = scale · Tᵀ q
 *
 * The products are small (a head is Lq x E), so each runs serial in
 * OpenBLAS and the pairs are spread over threads: a pair's numbers never
 * depend on the thread count.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mg_attention.h"
#include "mg_nn_internal.h"
#include "mg_vmath.h"

/* Where one operand's (b, h) matrices lie: element (b, h, i, j) is at
 * p + (b·sb + h·sh + i·ld + j) elements; rows are contiguous. */
typedef struct {
  char *p;
  int64_t sb, sh, ld;
} Heads;

typedef struct {
  mg_DType dt;
  size_t es;                   /* element size */
  int64_t B, H, Lq, Lk, E, Ev;
  Heads q, k, v, o;
  const char *mask;            /* NULL or the additive mask's (0,0,0,0) */
  int64_t ms[4];               /* its strides */
  int causal;
  double scale;
} Attn;

static inline char *head_at(const Attn *a, const Heads *x, int64_t b, int64_t h) {
  return x->p + (size_t)(b * x->sb + h * x->sh) * a->es;
}

/* ---- the row passes ---------------------------------------------------------- */

/* Pair (b, h)'s scores S [Lq, Lk] (scale · q kᵀ) into its weights, in place:
 * the mask added, causal keys after the query set to 0 outright, then the
 * softmax of each row (max-subtracted, the exps summed in double). A row
 * with every key masked divides 0 by 0: NaN throughout, as in PyTorch. */
static void softmax_scores_f32(const Attn *a, int64_t b, int64_t h, float *S) {
  int64_t Lq = a->Lq, Lk = a->Lk;
  const float *m = a->mask ? (const float *)a->mask + b * a->ms[0] + h * a->ms[1] : NULL;
  for (int64_t i = 0; i < Lq; i++) {
    float *row = S + i * Lk;
    int64_t lim = a->causal && i + 1 < Lk ? i + 1 : Lk;
    if (m) {
      const float *mr = m + i * a->ms[2];
      for (int64_t j = 0; j < lim; j++) row[j] += mr[j * a->ms[3]];
    }
    float mx = lim ? row[0] : 0;
    for (int64_t j = 1; j < lim; j++) mx = row[j] > mx ? row[j] : mx;
    if (isinf(mx) && mx < 0) mx = 0; /* every key masked: 0/0 below */
    for (int64_t j = 0; j < lim; j++) row[j] = mg_vexpf(row[j] - mx);
    double sum = 0;
    for (int64_t j = 0; j < lim; j++) sum += row[j];
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < lim; j++) row[j] *= inv;
    for (int64_t j = lim; j < Lk; j++) row[j] = 0.0f * inv;
  }
}
/* f64 twin of softmax_scores_f32 */
static void softmax_scores_f64(const Attn *a, int64_t b, int64_t h, double *S) {
  int64_t Lq = a->Lq, Lk = a->Lk;
  const double *m = a->mask ? (const double *)a->mask + b * a->ms[0] + h * a->ms[1] : NULL;
  for (int64_t i = 0; i < Lq; i++) {
    double *row = S + i * Lk;
    int64_t lim = a->causal && i + 1 < Lk ? i + 1 : Lk;
    if (m) {
      const double *mr = m + i * a->ms[2];
      for (int64_t j = 0; j < lim; j++) row[j] += mr[j * a->ms[3]];
    }
    double mx = lim ? row[0] : 0;
    for (int64_t j = 1; j < lim; j++) mx = row[j] > mx ? row[j] : mx;
    if (isinf(mx) && mx < 0) mx = 0;
    double sum = 0;
    for (int64_t j = 0; j < lim; j++) {
      row[j] = exp(row[j] - mx);
      sum += row[j];
    }
    double inv = 1.0 / sum;
    for (int64_t j = 0; j < lim; j++) row[j] *= inv;
    for (int64_t j = lim; j < Lk; j++) row[j] = 0.0 * inv;
  }
}

/* T = P ⊙ (T - rowsum(T ⊙ P)): the gradient of the scores from that of the
 * weights, T and P [Lq, Lk]; the row sums in double. */
static void dscores_f32(float *T, const float *P, int64_t Lq, int64_t Lk) {
  for (int64_t i = 0; i < Lq; i++) {
    float *t = T + i * Lk;
    const float *p = P + i * Lk;
    double acc = 0;
    for (int64_t j = 0; j < Lk; j++) acc += (double)t[j] * p[j];
    float s = (float)acc;
    for (int64_t j = 0; j < Lk; j++) t[j] = p[j] * (t[j] - s);
  }
}
/* f64 twin of dscores_f32 */
static void dscores_f64(double *T, const double *P, int64_t Lq, int64_t Lk) {
  for (int64_t i = 0; i < Lq; i++) {
    double *t = T + i * Lk;
    const double *p = P + i * Lk;
    double acc = 0;
    for (int64_t j = 0; j < Lk; j++) acc += t[j] * p[j];
    for (int64_t j = 0; j < Lk; j++) t[j] = p[j] * (t[j] - acc);
  }
}

/* ---- one (b, h) pair ------------------------------------------------------------ */

static void pair_forward(const Attn *a, int64_t b, int64_t h, void *P) {
  int64_t Lq = a->Lq, Lk = a->Lk;
  mg_gemm_serial(a->dt, CblasNoTrans, CblasTrans, Lq, Lk, a->E, a->scale,
                 head_at(a, &a->q, b, h), a->q.ld, head_at(a, &a->k, b, h), a->k.ld,
                 0.0, P, Lk);
  if (a->dt == MG_F32) softmax_scores_f32(a, b, h, P);
  else softmax_scores_f64(a, b, h, P);
  mg_gemm_serial(a->dt, CblasNoTrans, CblasNoTrans, Lq, a->Ev, Lk, 1.0, P, Lk,
                 head_at(a, &a->v, b, h), a->v.ld, 0.0, head_at(a, &a->o, b, h), a->o.ld);
}

/* What a backward writes: the gradients' Heads (p NULL when not needed),
 * the incoming gradient's (do for the output, else the weights'). */
typedef struct {
  Heads dq, dk, dv, g;
  int of_weights;  /* g is the weights' gradient [Lq, Lk], not the output's */
} Grads;

static void pair_backward(const Attn *a, const Grads *d, int64_t b, int64_t h,
                          const void *P, void *T) {
  int64_t Lq = a->Lq, Lk = a->Lk;
  size_t es = a->es;
  const char *g = head_at(a, &d->g, b, h);
  if (d->of_weights) {
    for (int64_t i = 0; i < Lq; i++)
      memcpy((char *)T + (size_t)(i * Lk) * es, g + (size_t)(i * d->g.ld) * es,
             (size_t)Lk * es);
  } else {
    if (d->dv.p)
      mg_gemm_serial(a->dt, CblasTrans, CblasNoTrans, Lk, a->Ev, Lq, 1.0, P, Lk, g,
                     d->g.ld, 0.0, head_at(a, &d->dv, b, h), d->dv.ld);
    if (!d->dq.p && !d->dk.p) return;
    mg_gemm_serial(a->dt, CblasNoTrans, CblasTrans, Lq, Lk, a->Ev, 1.0, g, d->g.ld,
                   head_at(a, &a->v, b, h), a->v.ld, 0.0, T, Lk);
  }
  if (a->dt == MG_F32) dscores_f32(T, P, Lq, Lk);
  else dscores_f64(T, P, Lq, Lk);
  if (d->dq.p)
    mg_gemm_serial(a->dt, CblasNoTrans, CblasNoTrans, Lq, a->E, Lk, a->scale, T, Lk,
                   head_at(a, &a->k, b, h), a->k.ld, 0.0, head_at(a, &d->dq, b, h), d->dq.ld);
  if (d->dk.p)
    mg_gemm_serial(a->dt, CblasTrans, CblasNoTrans, Lk, a->E, Lq, a->scale, T, Lk,
                   head_at(a, &a->q, b, h), a->q.ld, 0.0, head_at(a, &d->dk, b, h), d->dk.ld);
}

/* Threads for B·H pairs: the products' flops say how much work there is. */
static int pair_threads(const mg_Context *ctx, const Attn *a) {
  int64_t pairs = a->B * a->H;
  int64_t work = pairs * a->Lq * (a->Lk + 1) * (a->E + a->Ev + 1) / 16;
  int nt = mg_threads_for(ctx, work);
  return nt > pairs ? (int)(pairs > 0 ? pairs : 1) : nt;
}

static void run_forward(const mg_Context *ctx, const Attn *a, char *P) {
  int64_t pairs = a->B * a->H;
  size_t psize = (size_t)(a->Lq * a->Lk) * a->es;
  int nt = pair_threads(ctx, a);
  /* Serial OpenBLAS, under the lock, when the pairs run on this thread;
   * inside a team of more than one it runs single-threaded anyway. */
  int locked = nt <= 1 ? mg_blas_begin_serial() : 0;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t x = 0; x < pairs; x++) pair_forward(a, x / a->H, x % a->H, P + (size_t)x * psize);
  mg_blas_end(locked);
}

static int run_backward(mg_Context *ctx, const Attn *a, const Grads *d, const char *P) {
  int64_t pairs = a->B * a->H;
  size_t psize = (size_t)(a->Lq * a->Lk) * a->es;
  int nt = pair_threads(ctx, a);
  char *scratch = malloc(psize * (size_t)nt + 1);
  if (!scratch)
    return mg_error(ctx, MG_ENOMEM, "attention: not enough memory for the backward's "
                    "scores (%lld x %lld per thread)", (long long)a->Lq, (long long)a->Lk);
  int locked = nt <= 1 ? mg_blas_begin_serial() : 0;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t x = 0; x < pairs; x++)
    pair_backward(a, d, x / a->H, x % a->H, P + (size_t)x * psize,
                  scratch + (size_t)omp_get_thread_num() * psize);
  mg_blas_end(locked);
  free(scratch);
  return MG_OK;
}

/* ---- operands ------------------------------------------------------------------ */

/* Can a [..., L, E] tensor's last two dims go to BLAS as they lie? Rows
 * must be contiguous and must not overlap. */
static int rows_usable(const mg_Tensor *t, int rows_dim) {
  int64_t L = t->shape[rows_dim], E = t->shape[rows_dim + 1];
  int64_t sr = t->stride[rows_dim], sc = t->stride[rows_dim + 1];
  return (E <= 1 || sc == 1) && (L <= 1 || sr >= (E > 1 ? E : 1));
}

/* *out = t in dtype dt with rows BLAS can read: t itself (a new reference)
 * when it has them, else a contiguous copy. */
static int prep_rows(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t, mg_DType dt,
                     int rows_dim) {
  if (t->dtype == dt && rows_usable(t, rows_dim)) {
    mg_tensor_incref(t);
    *out = t;
    return MG_OK;
  }
  return mg_nn_prep(ctx, out, t, dt);
}

/* The row stride BLAS is given for rows of E elements: any value of at
 * least max(1, E) does for a single row. */
static int64_t ld_of(int64_t stride, int64_t L, int64_t E) {
  int64_t e1 = E > 1 ? E : 1;
  return L <= 1 || stride < e1 ? e1 : stride;
}

/* The Heads of a 4-D [B, H, L, E] tensor. */
static Heads heads4(const mg_Tensor *t) {
  return (Heads){mg_data(t), t->stride[0], t->stride[1],
                 ld_of(t->stride[2], t->shape[2], t->shape[3])};
}

/* A new [B, H, L, E] tensor of dtype dt: laid out [B, L, H, E] (a transposed
 * view, made outside the graph) when interleaved, else contiguous. */
static int alloc_heads(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int64_t B,
                       int64_t H, int64_t L, int64_t E, int interleaved) {
  if (!interleaved) return mg_alloc_tensor(ctx, out, dt, 4, (int64_t[]){B, H, L, E});
  mg_Tensor *t = NULL;
  int st = mg_alloc_tensor(ctx, &t, dt, 4, (int64_t[]){B, L, H, E});
  if (!st) {
    int mode = mg_set_grad_enabled(ctx, 0);
    st = mg_transpose(ctx, out, t, 1, 2);
    mg_set_grad_enabled(ctx, mode);
  }
  mg_tensor_decref(t);
  return st;
}

/* Are t's heads interleaved in its rows (split heads of a [B, L, H·E]
 * tensor)? Then its gradient and the output are laid out the same way. */
static int interleaved(const mg_Tensor *t) {
  return t->shape[1] > 1 && t->shape[2] > 1 && t->stride[1] < t->stride[2];
}

/* The mask's part of a (b, h) pair, checked against the scores' shape. */
static int set_mask(mg_Context *ctx, Attn *a, const mg_Tensor *mask) {
  if (!mask) return MG_OK;
  char sb[MG_SHAPE_BUFSZ];
  int64_t want[4] = {a->B, a->H, a->Lq, a->Lk};
  if (mask->ndim != 4 || memcmp(mask->shape, want, sizeof want))
    return mg_error(ctx, MG_ESHAPE, "attention: mask must be [B, H, Lq, Lk] = [%lld,%lld,"
                    "%lld,%lld] (expanded to it), got %s", (long long)a->B, (long long)a->H,
                    (long long)a->Lq, (long long)a->Lk,
                    mg_shape_str(sb, sizeof sb, mask->ndim, mask->shape));
  if (mask->dtype != a->dt)
    return mg_error(ctx, MG_EARG, "attention: mask must have the dtype of q (%s), got %s",
                    mg_dtype_name(a->dt), mg_dtype_name(mask->dtype));
  if (mg_grad_enabled(ctx) && mg_requires_grad(mask))
    return mg_error(ctx, MG_EARG, "attention: mask must not require grad (the fused "
                    "op does not differentiate it)");
  a->mask = mg_data(mask);
  memcpy(a->ms, mask->stride, sizeof a->ms);
  return MG_OK;
}

/* ---- autograd ------------------------------------------------------------------- */

/* The saved operands of a general node (q, k, v tensors) or a packed one
 * (qkv, heads in n->i[0]) as an Attn; P, the weights, is the last saved. */
static Attn attn_of_node(mg_Node *n, const mg_Tensor *P) {
  Attn a = {0};
  a.dt = P->dtype, a.es = mg_dtype_size(P->dtype);
  a.B = P->shape[0], a.H = P->shape[1], a.Lq = P->shape[2], a.Lk = P->shape[3];
  a.scale = n->f[0];
  int64_t heads = n->i[0];
  if (heads > 0) {
    const mg_Tensor *qkv = n->saved[0];
    int64_t E = qkv->shape[2] / 3, D = E / heads;
    char *p = mg_data(qkv);
    int64_t ld = ld_of(qkv->stride[1], qkv->shape[1], 3 * E);
    a.E = a.Ev = D;
    a.q = (Heads){p, qkv->stride[0], D, ld};
    a.k = (Heads){p + (size_t)E * a.es, qkv->stride[0], D, ld};
    a.v = (Heads){p + (size_t)(2 * E) * a.es, qkv->stride[0], D, ld};
  } else {
    a.E = n->saved[0]->shape[3];
    a.q = heads4(n->saved[0]), a.k = heads4(n->saved[1]);
    if (n->saved[2]) {
      a.Ev = n->saved[2]->shape[3];
      a.v = heads4(n->saved[2]);
    }
  }
  return a;
}

/* The incoming gradient g of the output [B, H, Lq, Ev] (general) or
 * [N, L, E] (packed), or of the weights, readable as Heads: *gc holds the
 * reference to release. */
static int grad_heads(mg_Context *ctx, mg_Tensor **gc, Heads *gh, mg_Tensor *g,
                      const Attn *a, int64_t heads) {
  int packed = heads > 0 && g->ndim == 3;
  int st = prep_rows(ctx, gc, g, a->dt, packed ? 1 : 2);
  if (st) return st;
  const mg_Tensor *t = *gc;
  if (packed) {
    int64_t D = t->shape[2] / heads;
    *gh = (Heads){mg_data(t), t->stride[0], D, ld_of(t->stride[1], t->shape[1], t->shape[2])};
  } else {
    *gh = heads4(t);
  }
  return MG_OK;
}

/* One gradient tensor shaped like the input and its Heads; for the packed
 * input all three go into one [N, L, 3E] tensor (zeroed when some part
 * will not be written). */
static int packed_grad(mg_Context *ctx, mg_Tensor **out, Grads *d, const Attn *a,
                       const mg_Tensor *qkv, int need_v) {
  int st = mg_alloc_tensor(ctx, out, a->dt, 3, qkv->shape);
  if (st) return st;
  if (!need_v && (st = mg_zero_(ctx, *out))) return st;
  mg_Tensor *t = *out;
  int64_t E = t->shape[2] / 3, ld = ld_of(t->stride[1], t->shape[1], t->shape[2]);
  char *p = mg_data(t);
  d->dq = (Heads){p, t->stride[0], a->E, ld};
  d->dk = (Heads){p + (size_t)E * a->es, t->stride[0], a->E, ld};
  if (need_v) d->dv = (Heads){p + (size_t)(2 * E) * a->es, t->stride[0], a->E, ld};
  return MG_OK;
}

static int backward_common(mg_Context *ctx, mg_Node *n, mg_Tensor *g, mg_Tensor **grads,
                           int of_weights) {
  const mg_Tensor *P = n->saved[MG_NODE_MAXSAVED - 1];
  Attn a = attn_of_node(n, P);
  int64_t heads = n->i[0];
  Grads d = {0};
  d.of_weights = of_weights;
  mg_Tensor *gc = NULL, *gq = NULL, *gk = NULL, *gv = NULL;
  int st = grad_heads(ctx, &gc, &d.g, g, &a, heads);
  if (st) return st;
  if (heads > 0) {
    if ((st = packed_grad(ctx, &gq, &d, &a, n->saved[0], !of_weights))) goto fail;
  } else {
    const mg_Tensor *q = n->saved[0], *k = n->saved[1], *v = n->saved[2];
    if (mg_node_needs(n, 0)) {
      if ((st = alloc_heads(ctx, &gq, a.dt, a.B, a.H, a.Lq, a.E, interleaved(q)))) goto fail;
      d.dq = heads4(gq);
    }
    if (mg_node_needs(n, 1)) {
      if ((st = alloc_heads(ctx, &gk, a.dt, a.B, a.H, a.Lk, a.E, interleaved(k)))) goto fail;
      d.dk = heads4(gk);
    }
    if (!of_weights && mg_node_needs(n, 2)) {
      if ((st = alloc_heads(ctx, &gv, a.dt, a.B, a.H, a.Lk, a.Ev, interleaved(v)))) goto fail;
      d.dv = heads4(gv);
    }
  }
  if ((st = run_backward(ctx, &a, &d, mg_data(P)))) goto fail;
  mg_tensor_decref(gc);
  grads[0] = gq;
  if (heads == 0) {
    grads[1] = gk;
    if (!of_weights) grads[2] = gv;
  }
  return MG_OK;
fail:
  mg_tensor_decref(gc);
  mg_tensor_decref(gq);
  mg_tensor_decref(gk);
  mg_tensor_decref(gv);
  return st;
}

static int attention_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g, mg_Tensor **grads) {
  return backward_common(ctx, n, g, grads, 0);
}

static int weights_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g, mg_Tensor **grads) {
  return backward_common(ctx, n, g, grads, 1);
}

/* Records the output's node and, when asked, the weights' (both save the
 * operands and P in the last slot). ins: q, k, v, or qkv alone. */
static int record(mg_Context *ctx, mg_Tensor *out, mg_Tensor *P, int want_weights,
                  const char *name, int nin, mg_Tensor *const *ins,
                  mg_Tensor *const *saved, int64_t heads, double scale) {
  if (!mg_needs_grad(ctx, nin, ins)) return MG_OK;
  mg_Node *n;
  int st = mg_record(ctx, out, name, attention_backward, nin, ins, &n);
  for (int i = 0; !st && i < nin; i++) st = mg_save(ctx, n, i, saved[i]);
  if (!st) st = mg_save(ctx, n, MG_NODE_MAXSAVED - 1, P);
  if (st) return st;
  n->f[0] = scale, n->i[0] = heads;
  if (!want_weights) return MG_OK;
  /* The weights depend on q and k only (v is left out, or zero in qkv's
   * gradient). */
  int nw = heads > 0 ? 1 : 2;
  if ((st = mg_record(ctx, P, "attention_weights", weights_backward, nw, ins, &n)))
    return st;
  for (int i = 0; !st && i < nw; i++) st = mg_save(ctx, n, i, saved[i]);
  if (!st) st = mg_save(ctx, n, MG_NODE_MAXSAVED - 1, P);
  if (st) return st;
  n->f[0] = scale, n->i[0] = heads;
  return MG_OK;
}

/* ---- entry points --------------------------------------------------------------- */

static int check_float(mg_Context *ctx, const mg_Tensor *t, const char *what,
                       mg_DType dt) {
  if (t->dtype != MG_F32 && t->dtype != MG_F64)
    return mg_error(ctx, MG_EARG, "attention: %s must be float32 or float64, got %s", what,
                    mg_dtype_name(t->dtype));
  if (t->dtype != dt)
    return mg_error(ctx, MG_EARG, "attention: q, k and v must share a dtype, got %s %s "
                    "with q %s", what, mg_dtype_name(t->dtype), mg_dtype_name(dt));
  return MG_OK;
}

int mg_attention(mg_Context *ctx, mg_Tensor **out, mg_Tensor **weights, mg_Tensor *q,
                 mg_Tensor *k, mg_Tensor *v, const mg_Tensor *mask, int causal,
                 double scale) {
  char s1[MG_SHAPE_BUFSZ], s2[MG_SHAPE_BUFSZ], s3[MG_SHAPE_BUFSZ];
  int st;
  if ((st = check_float(ctx, q, "q", q->dtype)) || (st = check_float(ctx, k, "k", q->dtype)) ||
      (st = check_float(ctx, v, "v", q->dtype)))
    return st;
  if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || k->shape[0] != q->shape[0] ||
      v->shape[0] != q->shape[0] || k->shape[1] != q->shape[1] ||
      v->shape[1] != q->shape[1] || k->shape[3] != q->shape[3] ||
      v->shape[2] != k->shape[2])
    return mg_error(ctx, MG_ESHAPE, "attention: expects q [B, H, Lq, E], k [B, H, Lk, E] "
                    "and v [B, H, Lk, Ev], got q %s, k %s, v %s",
                    mg_shape_str(s1, sizeof s1, q->ndim, q->shape),
                    mg_shape_str(s2, sizeof s2, k->ndim, k->shape),
                    mg_shape_str(s3, sizeof s3, v->ndim, v->shape));
  mg_DType dt = q->dtype;
  Attn a = {.dt = dt, .es = mg_dtype_size(dt), .B = q->shape[0], .H = q->shape[1],
            .Lq = q->shape[2], .Lk = k->shape[2], .E = q->shape[3], .Ev = v->shape[3],
            .causal = causal, .scale = scale};
  if ((st = set_mask(ctx, &a, mask))) return st;
  mg_Tensor *qc = NULL, *kc = NULL, *vc = NULL, *o = NULL, *P = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  if (!(st = prep_rows(ctx, &qc, q, dt, 2)) && !(st = prep_rows(ctx, &kc, k, dt, 2)) &&
      !(st = prep_rows(ctx, &vc, v, dt, 2)) &&
      !(st = alloc_heads(ctx, &o, dt, a.B, a.H, a.Lq, a.Ev, interleaved(q))))
    st = mg_alloc_tensor(ctx, &P, dt, 4, (int64_t[]){a.B, a.H, a.Lq, a.Lk});
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  a.q = heads4(qc), a.k = heads4(kc), a.v = heads4(vc), a.o = heads4(o);
  run_forward(ctx, &a, mg_data(P));
  mg_Tensor *ins[3] = {q, k, v}, *saved[3] = {qc, kc, vc};
  if ((st = record(ctx, o, P, weights != NULL, "attention", 3, ins, saved, 0, scale)))
    goto done;
  *out = o, o = NULL;
  if (weights) *weights = P, P = NULL;
done:
  mg_tensor_decref(qc);
  mg_tensor_decref(kc);
  mg_tensor_decref(vc);
  mg_tensor_decref(o);
  mg_tensor_decref(P);
  return st;
}

int mg_attention_packed(mg_Context *ctx, mg_Tensor **out, mg_Tensor **weights,
                        mg_Tensor *qkv, int64_t heads, const mg_Tensor *mask,
                        int causal, double scale) {
  char s1[MG_SHAPE_BUFSZ];
  int st;
  if ((st = check_float(ctx, qkv, "qkv", qkv->dtype))) return st;
  if (qkv->ndim != 3 || qkv->shape[2] % 3 != 0 || heads < 1 ||
      (qkv->shape[2] / 3) % heads != 0)
    return mg_error(ctx, MG_ESHAPE, "attention: expects qkv [N, L, 3E] with E divisible "
                    "by the %lld heads, got %s", (long long)heads,
                    mg_shape_str(s1, sizeof s1, qkv->ndim, qkv->shape));
  mg_DType dt = qkv->dtype;
  int64_t N = qkv->shape[0], L = qkv->shape[1], E = qkv->shape[2] / 3, D = E / heads;
  Attn a = {.dt = dt, .es = mg_dtype_size(dt), .B = N, .H = heads, .Lq = L, .Lk = L,
            .E = D, .Ev = D, .causal = causal, .scale = scale};
  if ((st = set_mask(ctx, &a, mask))) return st;
  mg_Tensor *c = NULL, *o = NULL, *P = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  if (!(st = prep_rows(ctx, &c, qkv, dt, 1)) &&
      !(st = mg_alloc_tensor(ctx, &o, dt, 3, (int64_t[]){N, L, E})))
    st = mg_alloc_tensor(ctx, &P, dt, 4, (int64_t[]){N, heads, L, L});
  mg_set_grad_enabled(ctx, mode);
  if (st) goto done;
  char *p = mg_data(c);
  int64_t ld = ld_of(c->stride[1], L, 3 * E);
  a.q = (Heads){p, c->stride[0], D, ld};
  a.k = (Heads){p + (size_t)E * a.es, c->stride[0], D, ld};
  a.v = (Heads){p + (size_t)(2 * E) * a.es, c->stride[0], D, ld};
  a.o = (Heads){mg_data(o), L * E, D, E > 1 ? E : 1};
  run_forward(ctx, &a, mg_data(P));
  mg_Tensor *ins[1] = {qkv}, *saved[1] = {c};
  if ((st = record(ctx, o, P, weights != NULL, "attention_packed", 1, ins, saved, heads,
                   scale)))
    goto done;
  *out = o, o = NULL;
  if (weights) *weights = P, P = NULL;
done:
  mg_tensor_decref(c);
  mg_tensor_decref(o);
  mg_tensor_decref(P);
  return st;
}
