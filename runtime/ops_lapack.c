/*
 * ops_lapack.c — Cholesky factorization and triangular solves through
 * OpenBLAS's LAPACK and BLAS, each forward beside its backward.
 *
 * mg_cholesky factors with ?potrf, mg_solve_triangular solves with ?trsm
 * and mg_cholesky_solve is two trsm (what ?potrs does). Matrices are the
 * last two dims; the leading dims batch, and two operands must have the
 * same leading dims. Everything runs on contiguous copies.
 *
 * Layout: LAPACK is column-major, and a row-major buffer read column-major
 * is the transpose. A symmetric A is its own transpose, so potrf 'U' on
 * A's row-major buffer reads the row-major lower triangle and writes Uᵀ,
 * the row-major lower factor L, in place: no transposed copies. The CBLAS
 * trsm takes CblasRowMajor itself.
 *
 * The gradients are PyTorch 1.13's formulas (FunctionsManual.cpp), so they
 * follow its conventions: Cholesky's gradient is symmetric, a triangular
 * solve's gradient for A lies in A's triangle, cholesky_solve's gradient for
 * its factor is a full matrix. Backward computes in float64 whatever the
 * dtype (the engine casts each gradient to its input's dtype).
 */
#include <math.h>
#include <limits.h>
#include <string.h>

#include "mg_internal.h"

/* LAPACK's Fortran entry points (no lapack header is installed): Cholesky
 * factorization of a column-major n×n matrix in place. info > 0: the
 * leading minor of that order is not positive-definite. */
void spotrf_(const char *uplo, const int *n, float *a, const int *lda,
             int *info);
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
             int *info);

#define MAX1(x) ((x) > 1 ? (x) : 1)

/* ---- shared checks and kernels -------------------------------------------- */

/* The matrices of t: *nmat of (*rows, *cols), t->ndim >= 2. */
static void matrices(const mg_Tensor *t, int64_t *nmat, int64_t *rows,
                     int64_t *cols) {
  *rows = t->shape[t->ndim - 2];
  *cols = t->shape[t->ndim - 1];
  *nmat = 1;
  for (int d = 0; d < t->ndim - 2; d++) *nmat *= t->shape[d];
}

/* A float32 or float64 tensor of at least two dims, named `what` in op's
 * message. */
static int check_matrix(mg_Context *ctx, const char *op, const char *what,
                        const mg_Tensor *t) {
  char s[MG_SHAPE_BUFSZ];
  if (t->dtype != MG_F32 && t->dtype != MG_F64)
    return mg_error(ctx, MG_EARG, "%s: expected %s to be float32 or float64, "
                    "got %s", op, what, mg_dtype_name(t->dtype));
  if (t->ndim < 2)
    return mg_error(ctx, MG_ESHAPE, "%s: expected %s to be a matrix or a "
                    "batch of them (at least 2 dimensions), got shape %s", op,
                    what, mg_shape_str(s, sizeof s, t->ndim, t->shape));
  /* LAPACK and CBLAS take int sizes, and the leading dim is at least 1 */
  if (t->shape[t->ndim - 1] > INT_MAX || t->shape[t->ndim - 2] > INT_MAX)
    return mg_error(ctx, MG_ESHAPE, "%s: %s of shape %s is larger than "
                    "LAPACK's int sizes allow", op, what,
                    mg_shape_str(s, sizeof s, t->ndim, t->shape));
  return MG_OK;
}

/* As check_matrix, and square. */
static int check_square(mg_Context *ctx, const char *op, const char *what,
                        const mg_Tensor *t) {
  char s[MG_SHAPE_BUFSZ];
  int st = check_matrix(ctx, op, what, t);
  if (st) return st;
  if (t->shape[t->ndim - 1] != t->shape[t->ndim - 2])
    return mg_error(ctx, MG_ESHAPE, "%s: expected %s to be a square matrix "
                    "or a batch of them (..., n, n), got shape %s", op, what,
                    mg_shape_str(s, sizeof s, t->ndim, t->shape));
  return MG_OK;
}

/* The square a (..., n, n) and b (..., R, C) have one dtype and the same
 * leading dims, and n is b's dim `dim` (0: R, 1: C). */
static int check_pair(mg_Context *ctx, const char *op, const mg_Tensor *a,
                      const char *an, const mg_Tensor *b, const char *bn,
                      int dim, const char *why) {
  char sa[MG_SHAPE_BUFSZ], sb[MG_SHAPE_BUFSZ];
  int st;
  if ((st = check_square(ctx, op, an, a)) || (st = check_matrix(ctx, op, bn, b)))
    return st;
  mg_shape_str(sa, sizeof sa, a->ndim, a->shape);
  mg_shape_str(sb, sizeof sb, b->ndim, b->shape);
  if (a->dtype != b->dtype)
    return mg_error(ctx, MG_EARG, "%s: %s (%s) and %s (%s) must have the same "
                    "dtype", op, an, mg_dtype_name(a->dtype), bn,
                    mg_dtype_name(b->dtype));
  int same = a->ndim == b->ndim;
  for (int d = 0; same && d < a->ndim - 2; d++) same = a->shape[d] == b->shape[d];
  if (!same)
    return mg_error(ctx, MG_ESHAPE, "%s: %s of shape %s and %s of shape %s "
                    "must have the same leading (batch) dimensions", op, an,
                    sa, bn, sb);
  if (b->shape[b->ndim - 2 + dim] != a->shape[a->ndim - 1])
    return mg_error(ctx, MG_ESHAPE, "%s: %s of shape %s and %s of shape %s do "
                    "not fit (%s)", op, an, sa, bn, sb, why);
  return MG_OK;
}

/* A new contiguous copy of t in dtype dt. */
static int copy_of(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                   mg_DType dt) {
  mg_Tensor *r = NULL;
  int st = mg_alloc_tensor(ctx, &r, dt, t->ndim, t->shape);
  if (st) return st;
  if ((st = mg_copy_(ctx, r, t))) {
    mg_tensor_decref(r);
    return st;
  }
  *out = r;
  return MG_OK;
}

/* b (M×N, row-major) = op(a)⁻¹ b (left) or b op(a)⁻¹ (right), a triangular,
 * of size M (left) or N (right). */
static void trsm(mg_DType dt, CBLAS_SIDE side, CBLAS_UPLO uplo,
                 CBLAS_TRANSPOSE trans, CBLAS_DIAG diag, int64_t M, int64_t N,
                 const void *a, void *b) {
  if (M == 0 || N == 0) return;
  int lda = (int)MAX1(side == CblasLeft ? M : N), ldb = (int)MAX1(N);
  int locked = mg_blas_begin();
  if (dt == MG_F32)
    cblas_strsm(CblasRowMajor, side, uplo, trans, diag, (int)M, (int)N, 1.0f,
                a, lda, b, ldb);
  else
    cblas_dtrsm(CblasRowMajor, side, uplo, trans, diag, (int)M, (int)N, 1.0,
                a, lda, b, ldb);
  mg_blas_end(locked);
}

/* c (M×N) = op(a) · op(b) in float64, zeros when K == 0. */
static void gemm64(const mg_Context *ctx, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M,
                   int64_t N, int64_t K, const double *a, int64_t lda,
                   const double *b, int64_t ldb, double *c) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    memset(c, 0, sizeof *c * (size_t)(M * N));
    return;
  }
  mg_gemm(ctx, MG_F64, ta, tb, M, N, K, a, MAX1(lda), b, MAX1(ldb), 0.0, c, MAX1(N));
}

/* A saved tensor or gradient as a contiguous float64 tensor held by b,
 * transposed in its last two dims when transpose is set. */
static mg_Tensor *f64_of(mg_Bw *b, mg_Tensor *t, int transpose) {
  mg_Tensor *v = t, *r = NULL;
  if (!t || b->st) return NULL;
  if (transpose) {
    v = mg_bw_hold(b, mg_transpose(b->ctx, &r, t, t->ndim - 2, t->ndim - 1), &r);
    if (!v) return NULL;
    r = NULL;
  }
  return mg_bw_hold(b, copy_of(b->ctx, &r, v, MG_F64), &r);
}

/* A new float64 tensor held by b, shaped like input i of node n. */
static mg_Tensor *grad_like(mg_Bw *b, const mg_Node *n, int i) {
  mg_Tensor *r = NULL;
  if (b->st) return NULL;
  return mg_bw_hold(b, mg_alloc_tensor(b->ctx, &r, MG_F64, n->in_ndim[i],
                                       n->in_shape[i]), &r);
}

/* Records r = name(ins) when a gradient is needed, saving `keep` (when not
 * NULL) in slot 0 and r in slot 1, and the flags in i[0..2]. On failure
 * frees r. */
static int record(mg_Context *ctx, mg_Tensor *r, const char *name,
                  mg_BackwardFn backward, int nin, mg_Tensor **ins,
                  const mg_Tensor *keep, int f0, int f1, int f2) {
  mg_Node *n;
  int st;
  if (!mg_needs_grad(ctx, nin, ins)) return MG_OK;
  if ((st = mg_record(ctx, r, name, backward, nin, ins, &n)) ||
      (n && keep && (st = mg_save(ctx, n, 0, keep))) ||
      (n && (st = mg_save(ctx, n, 1, r)))) {
    mg_tensor_decref(r);
    return st;
  }
  if (n) n->i[0] = f0, n->i[1] = f1, n->i[2] = f2;
  return MG_OK;
}

/* ---- Cholesky ---------------------------------------------------------------- */

/* Factors the n x n matrix at p in place with LAPACK's potrf (uplo in its
 * column-major terms), returning potrf's info. OpenBLAS's potrf takes a NaN
 * pivot for a positive one (reference LAPACK refuses it): then the info is
 * the first NaN on the factor's diagonal, the order of the minor that
 * failed, and *nan is set. */
static int potrf_f32(const char *uplo, int64_t n, void *pv, int *nan) {
  float *p = pv;
  int ni = (int)n, lda = (int)MAX1(n), info = 0, locked = mg_blas_begin();
  spotrf_(uplo, &ni, p, &lda, &info);
  mg_blas_end(locked);
  *nan = 0;
  for (int64_t i = 0; info == 0 && i < n; i++)
    if (isnan(p[i * (n + 1)])) info = (int)i + 1, *nan = 1;
  return info;
}
/* f64 twin of potrf_f32 */
static int potrf_f64(const char *uplo, int64_t n, void *pv, int *nan) {
  double *p = pv;
  int ni = (int)n, lda = (int)MAX1(n), info = 0, locked = mg_blas_begin();
  dpotrf_(uplo, &ni, p, &lda, &info);
  mg_blas_end(locked);
  *nan = 0;
  for (int64_t i = 0; info == 0 && i < n; i++)
    if (isnan(p[i * (n + 1)])) info = (int)i + 1, *nan = 1;
  return info;
}

/* A (..., n, n) -> L (..., n, n) with A = L Lᵀ (or U with A = Uᵀ U).
 * Reads only the triangle it returns. */
static int cholesky_forward(mg_Context *ctx, mg_Tensor **out,
                            const mg_Tensor *a, int upper) {
  const char *op = "linalg.cholesky";
  int st = check_square(ctx, op, "the input", a);
  if (st) return st;
  mg_Tensor *r = NULL;
  if ((st = copy_of(ctx, &r, a, a->dtype))) return st;
  int64_t nmat, n, n2;
  matrices(r, &nmat, &n, &n2);
  mg_blas_threads_for(ctx, n, n, n);
  /* Column-major 'U' is row-major lower, and the other way round. */
  const char *uplo = upper ? "L" : "U";
  size_t es = mg_dtype_size(r->dtype);
  int (*potrf)(const char *, int64_t, void *, int *) =
      r->dtype == MG_F32 ? potrf_f32 : potrf_f64;
  for (int64_t m = 0; m < nmat && n > 0; m++) {
    char *p = (char *)mg_data(r) + (size_t)(m * n * n) * es;
    int nan, info = potrf(uplo, n, p, &nan);
    if (info != 0) {
      mg_tensor_decref(r);
      if (info < 0)
        return mg_error(ctx, MG_EARG, "%s: LAPACK rejected argument %d",
                        op, -info);
      if (nmat > 1 || a->ndim > 2)
        return mg_error(ctx, MG_EARG, "%s: batch element %lld: the leading "
                        "minor of order %d is not positive-definite%s", op,
                        (long long)m + 1, info, nan ? " (it is NaN)" : "");
      return mg_error(ctx, MG_EARG, "%s: the leading minor of order %d is "
                      "not positive-definite%s", op, info,
                      nan ? " (it is NaN)" : "");
    }
  }
  mg_zero_triangle(r, 0, upper); /* potrf leaves the other triangle as is */
  *out = r;
  return MG_OK;
}

/* gA = L⁻ᵀ Φ L⁻¹ with Φ = tril(Lᵀ gL) symmetrized, its diagonal halved
 * (Murray 2016). For upper, L = Uᵀ and gL = gUᵀ. saved[1] = the factor. */
static int cholesky_backward(mg_Context *ctx, mg_Node *nd, mg_Tensor *g,
                             mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  int upper = (int)nd->i[0];
  mg_Tensor *L = f64_of(&b, nd->saved[1], upper);
  mg_Tensor *gL = f64_of(&b, g, upper);
  mg_Tensor *gA = grad_like(&b, nd, 0);
  if (gA) {
    int64_t nmat, n, n2;
    matrices(gA, &nmat, &n, &n2);
    for (int64_t m = 0; m < nmat; m++) {
      const double *l = (const double *)mg_data(L) + m * n * n;
      const double *gl = (const double *)mg_data(gL) + m * n * n;
      double *p = (double *)mg_data(gA) + m * n * n;
      gemm64(ctx, CblasTrans, CblasNoTrans, n, n, n, l, n, gl, n, p);
      for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < i; j++) p[j * n + i] = p[i * n + j] *= 0.5;
        p[i * n + i] *= 0.5;
      }
      trsm(MG_F64, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, n, n, l, p);
      trsm(MG_F64, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, n, n, l, p);
    }
  }
  mg_bw_out(&b, &grads[0], gA);
  return mg_bw_end(&b);
}

int mg_cholesky(mg_Context *ctx, mg_Tensor **out, mg_Tensor *a, int upper) {
  mg_Tensor *ins[1] = {a}, *r = NULL;
  int st = cholesky_forward(ctx, &r, a, upper);
  if (!st && !(st = record(ctx, r, "linalg.cholesky", cholesky_backward, 1,
                           ins, NULL, upper, 0, 0)))
    *out = r;
  return st;
}

/* ---- triangular solve ------------------------------------------------------ */

/* A (..., n, n) triangular, B (..., n, K) (left) or (..., K, n) (right) ->
 * X shaped like B with A X = B or X A = B. Reads only A's triangle, and
 * not its diagonal when unitriangular. */
static int solve_triangular_forward(mg_Context *ctx, mg_Tensor **out,
                                    const mg_Tensor *a, const mg_Tensor *b,
                                    int upper, int left, int unit) {
  int st = check_pair(ctx, "linalg.solve_triangular", a, "A", b, "B", !left,
                      left ? "A X = B needs as many rows in B as A has"
                           : "X A = B needs as many columns in B as A has");
  if (st) return st;
  mg_Tensor *x = NULL, *ac = NULL;
  if ((st = copy_of(ctx, &x, b, b->dtype))) return st;
  if ((st = mg_contiguous(ctx, &ac, (mg_Tensor *)a))) {
    mg_tensor_decref(x);
    return st;
  }
  int64_t nmat, R, C, n = a->shape[a->ndim - 1];
  matrices(x, &nmat, &R, &C);
  mg_blas_threads_for(ctx, n, n, left ? C : R);
  size_t es = mg_dtype_size(x->dtype);
  for (int64_t m = 0; m < nmat; m++)
    trsm(x->dtype, left ? CblasLeft : CblasRight, upper ? CblasUpper : CblasLower,
         CblasNoTrans, unit ? CblasUnit : CblasNonUnit, R, C,
         (char *)mg_data(ac) + (size_t)(m * n * n) * es,
         (char *)mg_data(x) + (size_t)(m * R * C) * es);
  mg_tensor_decref(ac);
  *out = x;
  return MG_OK;
}

/* gB = A⁻ᵀ gX (left) or gX A⁻ᵀ (right); gA = -gB Xᵀ (left) or -Xᵀ gB
 * (right), kept in A's triangle (without the diagonal when unitriangular).
 * saved[0] = A, saved[1] = X; i = {upper, left, unitriangular}. */
static int solve_triangular_backward(mg_Context *ctx, mg_Node *nd,
                                     mg_Tensor *g, mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  int upper = (int)nd->i[0], left = (int)nd->i[1], unit = (int)nd->i[2];
  mg_Tensor *A = f64_of(&b, nd->saved[0], 0);
  mg_Tensor *gB = f64_of(&b, g, 0); /* becomes gB in place */
  mg_Tensor *X = mg_node_needs(nd, 0) ? f64_of(&b, nd->saved[1], 0) : NULL;
  mg_Tensor *gA = X ? grad_like(&b, nd, 0) : NULL;
  if (!b.st) {
    int64_t nmat, R, C, n = A->shape[A->ndim - 1];
    matrices(gB, &nmat, &R, &C);
    for (int64_t m = 0; m < nmat; m++) {
      const double *a = (const double *)mg_data(A) + m * n * n;
      double *gb = (double *)mg_data(gB) + m * R * C;
      trsm(MG_F64, left ? CblasLeft : CblasRight, upper ? CblasUpper : CblasLower,
           CblasTrans, unit ? CblasUnit : CblasNonUnit, R, C, a, gb);
      if (!gA) continue;
      const double *x = (const double *)mg_data(X) + m * R * C;
      double *ga = (double *)mg_data(gA) + m * n * n;
      if (left)
        gemm64(ctx, CblasNoTrans, CblasTrans, n, n, C, gb, C, x, C, ga);
      else
        gemm64(ctx, CblasTrans, CblasNoTrans, n, n, R, x, C, gb, C, ga);
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
          int keep = upper ? j - i >= unit : i - j >= unit;
          ga[i * n + j] = keep ? -ga[i * n + j] : 0.0;
        }
    }
  }
  mg_bw_out(&b, &grads[0], gA);
  if (mg_node_needs(nd, 1)) mg_bw_out(&b, &grads[1], gB);
  return mg_bw_end(&b);
}

int mg_solve_triangular(mg_Context *ctx, mg_Tensor **out, mg_Tensor *a,
                        mg_Tensor *b, int upper, int left, int unitriangular) {
  mg_Tensor *ins[2] = {a, b}, *r = NULL;
  int st = solve_triangular_forward(ctx, &r, a, b, upper, left, unitriangular);
  if (!st && !(st = record(ctx, r, "linalg.solve_triangular",
                           solve_triangular_backward, 2, ins, a, upper, left,
                           unitriangular)))
    *out = r;
  return st;
}

/* ---- Cholesky solve -------------------------------------------------------- */

/* x (n×K) = (L Lᵀ)⁻¹ x, or (Uᵀ U)⁻¹ x, in place: two triangular solves. */
static void chol_solve(mg_DType dt, int upper, int64_t n, int64_t K,
                       const void *l, void *x) {
  CBLAS_UPLO uplo = upper ? CblasUpper : CblasLower;
  trsm(dt, CblasLeft, uplo, upper ? CblasTrans : CblasNoTrans, CblasNonUnit,
       n, K, l, x);
  trsm(dt, CblasLeft, uplo, upper ? CblasNoTrans : CblasTrans, CblasNonUnit,
       n, K, l, x);
}

/* B (..., n, K), L (..., n, n) a Cholesky factor -> X (..., n, K). */
static int cholesky_solve_forward(mg_Context *ctx, mg_Tensor **out,
                                  const mg_Tensor *bt, const mg_Tensor *l,
                                  int upper) {
  int st = check_pair(ctx, "cholesky_solve", l, "the factor", bt, "B", 0,
                      "B needs as many rows as the factor has");
  if (st) return st;
  mg_Tensor *x = NULL, *lc = NULL;
  if ((st = copy_of(ctx, &x, bt, bt->dtype))) return st;
  if ((st = mg_contiguous(ctx, &lc, (mg_Tensor *)l))) {
    mg_tensor_decref(x);
    return st;
  }
  int64_t nmat, n, K;
  matrices(x, &nmat, &n, &K);
  mg_blas_threads_for(ctx, n, n, K);
  size_t es = mg_dtype_size(x->dtype);
  for (int64_t m = 0; m < nmat; m++)
    chol_solve(x->dtype, upper, n, K, (char *)mg_data(lc) + (size_t)(m * n * n) * es,
               (char *)mg_data(x) + (size_t)(m * n * K) * es);
  mg_tensor_decref(lc);
  *out = x;
  return MG_OK;
}

/* gB = A⁻¹ gX; with C = gB Xᵀ + X gBᵀ, gL = -C L (or -U C for upper), a
 * full matrix as in PyTorch. saved[0] = the factor, saved[1] = X. */
static int cholesky_solve_backward(mg_Context *ctx, mg_Node *nd, mg_Tensor *g,
                                   mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  int upper = (int)nd->i[0];
  mg_Tensor *L = f64_of(&b, nd->saved[0], 0);
  mg_Tensor *gB = f64_of(&b, g, 0);
  mg_Tensor *X = mg_node_needs(nd, 1) ? f64_of(&b, nd->saved[1], 0) : NULL;
  mg_Tensor *gL = X ? grad_like(&b, nd, 1) : NULL;
  mg_Tensor *C = X ? grad_like(&b, nd, 1) : NULL; /* scratch */
  if (!b.st) {
    int64_t nmat, n, K;
    matrices(gB, &nmat, &n, &K);
    for (int64_t m = 0; m < nmat; m++) {
      const double *l = (const double *)mg_data(L) + m * n * n;
      double *gb = (double *)mg_data(gB) + m * n * K;
      chol_solve(MG_F64, upper, n, K, l, gb);
      if (!gL) continue;
      const double *x = (const double *)mg_data(X) + m * n * K;
      double *c = (double *)mg_data(C) + m * n * n;
      double *gl = (double *)mg_data(gL) + m * n * n;
      gemm64(ctx, CblasNoTrans, CblasTrans, n, n, K, gb, K, x, K, c);
      for (int64_t i = 0; i < n; i++) /* C += Cᵀ */
        for (int64_t j = 0; j <= i; j++)
          c[i * n + j] = c[j * n + i] = c[i * n + j] + c[j * n + i];
      if (upper)
        gemm64(ctx, CblasNoTrans, CblasNoTrans, n, n, n, l, n, c, n, gl);
      else
        gemm64(ctx, CblasNoTrans, CblasNoTrans, n, n, n, c, n, l, n, gl);
      for (int64_t i = 0; i < n * n; i++) gl[i] = -gl[i];
    }
  }
  if (mg_node_needs(nd, 0)) mg_bw_out(&b, &grads[0], gB);
  mg_bw_out(&b, &grads[1], gL);
  return mg_bw_end(&b);
}

int mg_cholesky_solve(mg_Context *ctx, mg_Tensor **out, mg_Tensor *b,
                      mg_Tensor *l, int upper) {
  mg_Tensor *ins[2] = {b, l}, *r = NULL;
  int st = cholesky_solve_forward(ctx, &r, b, l, upper);
  if (!st && !(st = record(ctx, r, "cholesky_solve", cholesky_solve_backward,
                           2, ins, l, upper, 0, 0)))
    *out = r;
  return st;
}
