/*
 * ops_linalg.c — matrix products through OpenBLAS.
 *
 * matmul follows PyTorch's rules: 1-D·1-D is a dot product, a 1-D operand
 * on the left (right) is a row (column) vector that is dropped from the
 * result, and for 3 or more dimensions the leading dims are batch dims that
 * broadcast. Operands whose last two dims are row- or column-major go to
 * BLAS as they are (a transposed view costs nothing); anything else is
 * copied contiguous first. int64 products run a plain loop.
 */
#include <cblas.h>
#include <string.h>

#include "mg_internal.h"

/* A matrix as BLAS sees it: row-major, maybe transposed, leading dim ld. */
typedef struct {
  CBLAS_TRANSPOSE trans;
  int64_t ld;
} BlasMat;

/* Can the (rows x cols) matrix with strides (rs, cs) go to BLAS as is? */
static int blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                       BlasMat *m) {
  return mg_blas_layout(rows, cols, rs, cs, &m->trans, &m->ld);
}

/* One product of a batched matmul: everything gemm needs, plus each
 * operand's batch strides (0 where it broadcasts). */
typedef struct Batch Batch;

/* c (M x N, contiguous rows of N) = a (M x K) · b (K x N), for one product
 * of j. */
typedef void GemmFn(const Batch *j, const void *a, const void *b, void *c);

struct Batch {
  mg_DType dt;
  GemmFn *gemm;   /* gemm_blas or gemm_i64, chosen once per matmul */
  int nbatch;
  const int64_t *bshape, *sa, *sb;
  const char *pa, *pb;
  char *pc;
  BlasMat ma, mb;
  int64_t M, N, K;
  const int64_t *ast, *bst;
  const mg_Context *ctx;
};

/* float32 and float64: BLAS, with the operands as they lie. */
static void gemm_blas(const Batch *j, const void *a, const void *b, void *c) {
  mg_gemm(j->ctx, j->dt, j->ma.trans, j->mb.trans, j->M, j->N, j->K, a,
          j->ma.ld, b, j->mb.ld, 0.0, c, j->N);
}

/* int64 (no BLAS), wrapping on overflow: i-k-j order keeps the inner loop
 * contiguous in c; a and b are read through their strides ast, bst. */
static void gemm_i64(const Batch *job, const void *a, const void *b, void *c) {
  const int64_t M = job->M, N = job->N, K = job->K;
  const int64_t *a_st = job->ast, *b_st = job->bst;
  const int64_t *A = a, *B = b;
  int64_t *C = c;
  memset(C, 0, sizeof(int64_t) * (size_t)(M * N));
  for (int64_t i = 0; i < M; i++)
    for (int64_t k = 0; k < K; k++) {
      uint64_t x = (uint64_t)A[i * a_st[0] + k * a_st[1]];
      for (int64_t j = 0; j < N; j++)
        C[i * N + j] = (int64_t)((uint64_t)C[i * N + j] +
                                 x * (uint64_t)B[k * b_st[0] + j * b_st[1]]);
    }
}

static void batch_gemm(const Batch *j, int64_t i) {
  size_t es = mg_dtype_size(j->dt);
  int64_t rem = i, oa = 0, ob = 0;
  for (int d = j->nbatch - 1; d >= 0; d--) {
    int64_t idx = rem % j->bshape[d];
    rem /= j->bshape[d];
    oa += idx * j->sa[d];
    ob += idx * j->sb[d];
  }
  j->gemm(j, j->pa + oa * (int64_t)es, j->pb + ob * (int64_t)es,
          j->pc + i * j->M * j->N * (int64_t)es);
}

static int matmul_error(mg_Context *ctx, const mg_Tensor *a,
                        const mg_Tensor *b, int64_t ka, int64_t kb) {
  char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
  return mg_error(ctx, MG_ESHAPE, "matmul: shapes %s and %s do not match "
                  "(%lld vs %lld)", mg_shape_str(ba, sizeof ba, a->ndim, a->shape),
                  mg_shape_str(bb, sizeof bb, b->ndim, b->shape),
                  (long long)ka, (long long)kb);
}

/* a and b have the same dtype and at least 2 dims. */
static int batched(mg_Context *ctx, mg_Tensor **out, mg_Tensor *a,
                   mg_Tensor *b, const mg_Tensor *orig_a,
                   const mg_Tensor *orig_b) {
  int na = a->ndim, nb = b->ndim, st;
  int64_t M = a->shape[na - 2], K = a->shape[na - 1];
  int64_t N = b->shape[nb - 1];
  if (b->shape[nb - 2] != K)
    return matmul_error(ctx, orig_a, orig_b, K, b->shape[nb - 2]);
  int nbatch;
  int64_t bshape[MG_MAXDIM];
  if (mg_broadcast_shapes(ctx, "matmul", na - 2, a->shape, nb - 2, b->shape,
                          &nbatch, bshape)) {
    char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ], ca[MG_SHAPE_BUFSZ],
        cb[MG_SHAPE_BUFSZ];
    return mg_error(ctx, MG_ESHAPE, "matmul: shapes %s and %s do not match: "
                    "batch dimensions %s and %s cannot be broadcast together",
                    mg_shape_str(ba, sizeof ba, orig_a->ndim, orig_a->shape),
                    mg_shape_str(bb, sizeof bb, orig_b->ndim, orig_b->shape),
                    mg_shape_str(ca, sizeof ca, na - 2, a->shape),
                    mg_shape_str(cb, sizeof cb, nb - 2, b->shape));
  }
  if (nbatch + 2 > MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "matmul: result would have more than %d "
                    "dimensions", MG_MAXDIM);
  int64_t oshape[MG_MAXDIM], count = 1;
  memcpy(oshape, bshape, sizeof(int64_t) * (size_t)nbatch);
  for (int d = 0; d < nbatch; d++) count *= bshape[d];
  oshape[nbatch] = M;
  oshape[nbatch + 1] = N;

  BlasMat ma, mb;
  mg_Tensor *ca = NULL, *cb = NULL, *r = NULL;
  if (a->dtype != MG_I64 &&
      !blas_layout(M, K, a->stride[na - 2], a->stride[na - 1], &ma)) {
    if ((st = mg_clone(ctx, &ca, a))) return st;
    a = ca;
    blas_layout(M, K, a->stride[na - 2], a->stride[na - 1], &ma);
  }
  if (b->dtype != MG_I64 &&
      !blas_layout(K, N, b->stride[nb - 2], b->stride[nb - 1], &mb)) {
    if ((st = mg_clone(ctx, &cb, b))) goto done;
    b = cb;
    blas_layout(K, N, b->stride[nb - 2], b->stride[nb - 1], &mb);
  }
  /* gemm writes every element (beta = 0); only an empty sum needs zeros. */
  if ((st = K == 0 ? mg_full(ctx, &r, a->dtype, nbatch + 2, oshape, 0)
                   : mg_alloc_tensor(ctx, &r, a->dtype, nbatch + 2, oshape)))
    goto done;
  if (M == 0 || N == 0 || K == 0 || count == 0) goto finish;

  /* Batch strides of each operand, 0 where it broadcasts. */
  int64_t sa[MG_MAXDIM] = {0}, sb[MG_MAXDIM] = {0};
  for (int d = 0; d < nbatch; d++) {
    int da = d - (nbatch - (na - 2)), db = d - (nbatch - (nb - 2));
    sa[d] = (da >= 0 && a->shape[da] != 1) ? a->stride[da] : 0;
    sb[d] = (db >= 0 && b->shape[db] != 1) ? b->stride[db] : 0;
  }
  const char *pa = mg_data(a), *pb = mg_data(b);
  char *pc = mg_data(r);
  int64_t ast[2] = {a->stride[na - 2], a->stride[na - 1]};
  int64_t bst[2] = {b->stride[nb - 2], b->stride[nb - 1]};
  /* Many small products: one thread each (OpenBLAS stays single-threaded
   * inside a parallel region); otherwise BLAS threads inside each gemm. */
  Batch job = {a->dtype, a->dtype == MG_I64 ? gemm_i64 : gemm_blas, nbatch,
               bshape, sa, sb, pa, pb, pc, ma, mb, M, N, K, ast, bst, ctx};
  int nt = (count >= 2 && M * N * K < 64 * 64 * 64) ? mg_threads_for(ctx, count * M * N * K) : 1;
  if (nt <= 1) {
    /* Outside any OpenMP construct (even an if(0) one): OpenBLAS would
     * start a nested team for every call. */
    mg_blas_threads_for(ctx, M, N, K);
    for (int64_t i = 0; i < count; i++)
      batch_gemm(&job, i);
  } else {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < count; i++)
      batch_gemm(&job, i);
  }
finish:
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(ca);
  mg_tensor_decref(cb);
  mg_tensor_decref(r);
  return st;
}

static int new_ref(mg_Tensor **out, mg_Tensor *t) {
  mg_tensor_incref(t);
  *out = t;
  return MG_OK;
}

static int matmul_forward(mg_Context *ctx, mg_Tensor **out, mg_Tensor *a,
                          mg_Tensor *b) {
  if (a->ndim == 0 || b->ndim == 0)
    return mg_error(ctx, MG_ESHAPE, "matmul: both arguments need at least 1 "
                    "dimension, got %d-d and %d-d", a->ndim, b->ndim);
  mg_DType dt = mg_promote(a->dtype, b->dtype);
  mg_Tensor *ca = NULL, *cb = NULL, *va = NULL, *vb = NULL, *r = NULL;
  int st;
  if ((st = mg_to_dtype(ctx, &ca, a, dt)) ||
      (st = mg_to_dtype(ctx, &cb, b, dt)))
    goto done;
  /* Vectors become 1-row / 1-column matrices; their dim is dropped after. */
  int drop_m = ca->ndim == 1, drop_n = cb->ndim == 1;
  if ((st = drop_m ? mg_unsqueeze(ctx, &va, ca, 0) : new_ref(&va, ca)) ||
      (st = drop_n ? mg_unsqueeze(ctx, &vb, cb, 1) : new_ref(&vb, cb)))
    goto done;
  if (drop_m && drop_n && va->shape[1] != vb->shape[0]) {
    st = matmul_error(ctx, a, b, a->shape[0], b->shape[0]);
    goto done;
  }
  if ((st = batched(ctx, &r, va, vb, a, b))) goto done;
  if (drop_m || drop_n) {
    int64_t shape[MG_MAXDIM];
    int n = 0;
    for (int d = 0; d < r->ndim; d++) {
      if (drop_m && d == r->ndim - 2) continue;
      if (drop_n && d == r->ndim - 1) continue;
      shape[n++] = r->shape[d];
    }
    st = mg_view(ctx, out, r, n, shape);
  } else {
    *out = r;
    r = NULL;
  }
done:
  mg_tensor_decref(ca);
  mg_tensor_decref(cb);
  mg_tensor_decref(va);
  mg_tensor_decref(vb);
  mg_tensor_decref(r);
  return st;
}

/* ga = g · bᵀ and gb = aᵀ · g, on the operands as matrices: a vector
 * operand is the row (column) it was treated as, and a broadcast batch dim
 * is summed back to the operand's own shape. */
static int matmul_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                           mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  mg_Tensor *a = n->saved[0], *bm = n->saved[1], *t = NULL;
  if (a->ndim == 1 && bm->ndim == 1) { /* dot: g is 0-d */
    if (mg_node_needs(n, 0)) mg_bw_out(&b, &grads[0], mg_bw_binary(&b, MG_OP_MUL, g, bm));
    if (mg_node_needs(n, 1)) mg_bw_out(&b, &grads[1], mg_bw_binary(&b, MG_OP_MUL, g, a));
    return mg_bw_end(&b);
  }
  mg_Tensor *a2 = a, *b2 = bm, *g2 = g;
  if (a->ndim == 1) {
    a2 = mg_bw_hold(&b, mg_unsqueeze(ctx, &t, a, 0), &t);
    t = NULL;
    if (g2) g2 = mg_bw_hold(&b, mg_unsqueeze(ctx, &t, g2, g2->ndim - (bm->ndim == 1 ? 0 : 1)), &t);
  }
  if (bm->ndim == 1) {
    t = NULL;
    b2 = mg_bw_hold(&b, mg_unsqueeze(ctx, &t, bm, 1), &t);
    t = NULL;
    if (g2) g2 = mg_bw_hold(&b, mg_unsqueeze(ctx, &t, g2, g2->ndim), &t);
  }
  for (int i = 0; i < 2 && !b.st; i++) {
    if (!mg_node_needs(n, i)) continue;
    mg_Tensor *other = i == 0 ? b2 : a2, *ot = NULL, *prod = NULL, *r = NULL;
    ot = mg_bw_hold(&b, mg_transpose(ctx, &ot, other, other->ndim - 2, other->ndim - 1), &ot);
    if (!ot) break;
    prod = mg_bw_hold(&b, i == 0 ? matmul_forward(ctx, &prod, g2, ot)
                                 : matmul_forward(ctx, &prod, ot, g2), &prod);
    mg_Tensor *mat = i == 0 ? a2 : b2;
    mg_Tensor *summed = mg_bw_sum_to(&b, prod, mat->ndim, mat->shape);
    if (!summed) break;
    r = mg_bw_hold(&b, mg_reshape(ctx, &r, summed, n->in_ndim[i], n->in_shape[i]), &r);
    mg_bw_out(&b, &grads[i], r);
  }
  return mg_bw_end(&b);
}

int mg_matmul(mg_Context *ctx, mg_Tensor **out, mg_Tensor *a, mg_Tensor *b) {
  mg_Tensor *ins[2] = {a, b}, *r = NULL;
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = matmul_forward(ctx, &r, a, b);
  mg_set_grad_enabled(ctx, mode);
  if (st) return st;
  if (mg_needs_grad(ctx, 2, ins)) {
    mg_Node *n;
    if ((st = mg_record(ctx, r, "matmul", matmul_backward, 2, ins, &n)) ||
        (st = mg_save(ctx, n, 0, a)) || (st = mg_save(ctx, n, 1, b))) {
      mg_tensor_decref(r);
      return st;
    }
  }
  *out = r;
  return MG_OK;
}
