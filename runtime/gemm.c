/*
 * gemm.c — mg_gemm, every matrix product of the core: float32 products
 * large enough go to oneDNN's matmul (gemm_dnnl.c) and the rest to
 * OpenBLAS, except two shapes OpenBLAS handles badly (K = 1 outer
 * products and M = 1 rows, done here), and deterministic mode's fixed
 * row blocks (see gemm_deterministic).
 */
#include <omp.h>
#include <string.h>
#include <cblas.h>

#include "mg_gemm_dnnl.h"
#include "mg_internal.h"

/* c (M x N) = the outer product of a's M and b's N elements (strides sa,
 * sb): a K = 1 product, as a batch-1 layer's weight gradient is. OpenBLAS
 * runs it through its GEMM kernel at half the speed of this loop; each
 * element is the one rounded product either way. */
static void outer_f32(int64_t M, int64_t N, const float *a, int64_t sa,
                      const float *b, int64_t sb, float *c, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    float ai = a[i * sa], *restrict row = c + i * ldc;
    for (int64_t j = 0; j < N; j++) row[j] = ai * b[j * sb];
  }
}
/* f64 twin of outer_f32 */
static void outer_f64(int64_t M, int64_t N, const double *a, int64_t sa,
                      const double *b, int64_t sb, double *c, int64_t ldc) {
  for (int64_t i = 0; i < M; i++) {
    double ai = a[i * sa], *restrict row = c + i * ldc;
    for (int64_t j = 0; j < N; j++) row[j] = ai * b[j * sb];
  }
}

/* c (1 x N) = op(a) (1 x K) · op(b) (K x N) + beta c as a matrix-vector
 * product, which OpenBLAS runs in about 60% of its GEMM's time for one row
 * (a batch-1 layer forward, or its input gradient). */
static void row_times_matrix(mg_DType dt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
                             int64_t N, int64_t K, const void *a, int64_t lda,
                             const void *b, int64_t ldb, double beta, void *c) {
  /* b stored N x K (tb = Trans): c = b a; stored K x N: c = bᵀ a. */
  CBLAS_TRANSPOSE t = tb == CblasTrans ? CblasNoTrans : CblasTrans;
  int rows = (int)(tb == CblasTrans ? N : K), cols = (int)(tb == CblasTrans ? K : N);
  int inc = ta == CblasNoTrans ? 1 : (int)lda;
  if (dt == MG_F32)
    cblas_sgemv(CblasRowMajor, t, rows, cols, 1.0f, b, (int)ldb, a, inc, (float)beta, c, 1);
  else
    cblas_dgemv(CblasRowMajor, t, rows, cols, 1.0, b, (int)ldb, a, inc, beta, c, 1);
}

static void gemm_call(mg_DType dt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
                      int64_t M, int64_t N, int64_t K, const void *a,
                      int64_t lda, const void *b, int64_t ldb, double beta,
                      void *c, int64_t ldc) {
  if (K == 1 && beta == 0) {
    int64_t sa = ta == CblasNoTrans ? lda : 1, sb = tb == CblasNoTrans ? 1 : ldb;
    if (dt == MG_F32) outer_f32(M, N, a, sa, b, sb, c, ldc);
    else outer_f64(M, N, a, sa, b, sb, c, ldc);
    return;
  }
  if (M == 1 && K > 1) {
    row_times_matrix(dt, ta, tb, N, K, a, lda, b, ldb, beta, c);
    return;
  }
  if (dt == MG_F32)
    cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0f, a,
                (int)lda, b, (int)ldb, (float)beta, c, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, 1.0, a,
                (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* Deterministic mode's blocks of rows of c. Threaded OpenBLAS splits K
 * differently from single-threaded OpenBLAS (0.3.21 halves a K between
 * GEMM_Q and 2·GEMM_Q in its threaded driver and rounds it to the unroll
 * in the serial one: a 128x784 · 784x512 product differs in the last bits
 * between 1 and 2 threads), so each block goes to single-threaded
 * OpenBLAS, and the blocks, fixed by M alone, are shared among threads. */
#define MG_DET_GEMM_ROWS 64

static void gemm_deterministic(const mg_Context *ctx, mg_DType dt,
                               CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
                               int64_t M, int64_t N, int64_t K, const void *a,
                               int64_t lda, const void *b, int64_t ldb,
                               double beta, void *c, int64_t ldc) {
  size_t es = mg_dtype_size(dt);
  int64_t nb = (M + MG_DET_GEMM_ROWS - 1) / MG_DET_GEMM_ROWS;
  int nt = 1;
  if (!omp_in_parallel() && 2.0 * (double)M * (double)N * (double)K >= 4e6)
    nt = ctx->nthreads < nb ? ctx->nthreads : (int)nb;
  /* Serial OpenBLAS, under the lock, when the blocks run on this thread. */
  int locked = nt <= 1 ? mg_blas_begin_serial() : 0;
  /* Inside a team of more than one, OpenBLAS runs single-threaded. */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t blk = 0; blk < nb; blk++) {
    int64_t r0 = blk * MG_DET_GEMM_ROWS;
    int64_t m = M - r0 < MG_DET_GEMM_ROWS ? M - r0 : MG_DET_GEMM_ROWS;
    const char *ab = (const char *)a + (size_t)(ta == CblasNoTrans ? r0 * lda : r0) * es;
    gemm_call(dt, ta, tb, m, N, K, ab, lda, b, ldb, beta,
              (char *)c + (size_t)(r0 * ldc) * es, ldc);
  }
  mg_blas_end(locked);
}

void mg_gemm(const mg_Context *ctx, mg_DType dt, CBLAS_TRANSPOSE ta,
             CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K,
             const void *a, int64_t lda, const void *b, int64_t ldb,
             double beta, void *c, int64_t ldc) {
  if (ctx->deterministic) {
    gemm_deterministic(ctx, dt, ta, tb, M, N, K, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  /* The cast: oneDNN's primitive cache hangs on the context, a memo that
   * changes nothing a caller of mg_gemm sees. */
  if (dt == MG_F32 && mg_gemm_dnnl((mg_Context *)ctx, ta, tb, M, N, K, a, lda, b, ldb,
                                   NULL, (float)beta, c, ldc))
    return;
  int locked = mg_blas_begin();
  gemm_call(dt, ta, tb, M, N, K, a, lda, b, ldb, beta, c, ldc);
  mg_blas_end(locked);
}

void mg_gemm_serial(mg_DType dt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M,
                    int64_t N, int64_t K, double alpha, const void *a, int64_t lda,
                    const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) { /* BLAS would check lda against K; the product is empty */
    size_t es = mg_dtype_size(dt);
    for (int64_t i = 0; i < M; i++) {
      char *row = (char *)c + (size_t)(i * ldc) * es;
      for (int64_t j = 0; j < N; j++)
        if (dt == MG_F32) ((float *)row)[j] = beta == 0 ? 0.0f : (float)beta * ((float *)row)[j];
        else ((double *)row)[j] = beta == 0 ? 0.0 : beta * ((double *)row)[j];
    }
    return;
  }
  if (dt == MG_F32)
    cblas_sgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, (float)alpha, a, (int)lda, b,
                (int)ldb, (float)beta, c, (int)ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, (int)M, (int)N, (int)K, alpha, a, (int)lda, b,
                (int)ldb, beta, c, (int)ldc);
}

void mg_gemm_bias(const mg_Context *ctx, mg_DType dt, CBLAS_TRANSPOSE ta,
                  CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K,
                  const void *a, int64_t lda, const void *b, int64_t ldb,
                  const void *bias, void *c, int64_t ldc) {
  if (dt == MG_F32 &&
      mg_gemm_dnnl((mg_Context *)ctx, ta, tb, M, N, K, a, lda, b, ldb, bias, 0.0f, c, ldc))
    return;
  size_t es = mg_dtype_size(dt);
  for (int64_t i = 0; i < M; i++)
    memcpy((char *)c + (size_t)(i * ldc) * es, bias, (size_t)N * es);
  mg_gemm(ctx, dt, ta, tb, M, N, K, a, lda, b, ldb, 1.0, c, ldc);
}
