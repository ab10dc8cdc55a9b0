/*
 * context.c — the bottom of the core, which every file may call: status
 * names, error messages, shape strings, thread settings and the BLAS
 * lock. It calls nothing of the core; creating and releasing a context,
 * which needs the allocator and the generator, is context_life.c (dtypes
 * are in dtype.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <pthread.h>
#include <cblas.h>

#include "mg_internal.h"

static const char *const status_names[MG_NSTATUS] = {
    "ok", "bad argument", "shape mismatch", "index out of range",
    "out of memory", "i/o error"};

const char *mg_status_string(int status) {
  if (status < 0 || status >= MG_NSTATUS) return "unknown status";
  return status_names[status];
}

const char *mg_last_error(const mg_Context *ctx) { return ctx->err; }

int mg_error(mg_Context *ctx, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
  va_end(ap);
  return status;
}

void mg_set_num_threads(mg_Context *ctx, int n) {
  ctx->nthreads = n < 1 ? 1 : n;
}

int mg_get_num_threads(const mg_Context *ctx) { return ctx->nthreads; }

int mg_set_reference_kernels(mg_Context *ctx, int on) {
  int was = ctx->reference_kernels;
  ctx->reference_kernels = on != 0;
  return was;
}

int mg_set_deterministic(mg_Context *ctx, int on) {
  int was = ctx->deterministic;
  ctx->deterministic = on != 0;
  return was;
}

int mg_threads_for(const mg_Context *ctx, int64_t n) {
  if (ctx->nthreads <= 1 || n < MG_PARALLEL_GRAIN || omp_in_parallel())
    return 1;
  int64_t most = n / (MG_PARALLEL_GRAIN / 2);
  return most < ctx->nthreads ? (int)most : ctx->nthreads;
}

/* OpenBLAS shares our OpenMP runtime, so BLAS and moongrad loops never spin
 * against each other; what is left is choosing how many threads a gemm gets.
 * Small products (or a thin K) lose more to the fork/join than threads win.
 * The choice goes into the calling thread's own OpenMP thread count (an ICV
 * of each host thread), never straight into OpenBLAS: see mg_blas_begin. */
void mg_blas_threads_for(const mg_Context *ctx, int64_t m, int64_t n,
                         int64_t k) {
  double flops = 2.0 * (double)m * (double)n * (double)k;
  int want = ctx->nthreads;
  /* Deterministic mode: LAPACK, trsm and gemv run on one thread (their
   * threaded splits depend on the count); mg_gemm spreads its own blocks. */
  if (flops < 4e6 || k < 32 || ctx->deterministic) want = 1;
  if (!omp_in_parallel() && omp_get_max_threads() != want)
    omp_set_num_threads(want);
}

/* OpenBLAS's OpenMP build keeps process-wide state that is not safe to use
 * from several host threads at once (two moongrad states on two threads):
 * its thread count, and the per-thread work buffers that changing the count
 * frees and reallocates, which a threaded call on another host thread may
 * be using; concurrent threaded calls share those buffers too. Measured on
 * Debian 12's 0.3.21: four states training at once gave different numbers
 * than the same trainings one after another. So every BLAS or LAPACK call
 * made outside a parallel region holds this lock, under which OpenBLAS's
 * thread count is set to the caller's choice. Calls inside one of our
 * parallel regions (conv2d's per-sample gemms) run single-threaded in
 * OpenBLAS, touch none of that state and take no lock. The one lock of the
 * process, and the only global: OpenBLAS's state is the process's. */
static pthread_mutex_t blas_lock = PTHREAD_MUTEX_INITIALIZER;

int mg_blas_begin(void) {
  if (omp_in_parallel()) return 0;
  pthread_mutex_lock(&blas_lock);
  int want = omp_get_max_threads();
  if (openblas_get_num_threads() != want) openblas_set_num_threads(want);
  return 1;
}

void mg_blas_end(int locked) {
  if (locked) pthread_mutex_unlock(&blas_lock);
}

int mg_blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                   CBLAS_TRANSPOSE *trans, int64_t *ld) {
  int64_t r1 = rows > 1 ? rows : 1, c1 = cols > 1 ? cols : 1;
  /* A stride along a dim of size 1 never matters. */
  if ((cs == 1 || cols == 1) && (rows == 1 || rs >= c1)) {
    *trans = CblasNoTrans;
    *ld = rows == 1 ? c1 : rs;
    return 1;
  }
  if ((rs == 1 || rows == 1) && (cols == 1 || cs >= r1)) {
    *trans = CblasTrans;
    *ld = cols == 1 ? r1 : cs;
    return 1;
  }
  return 0;
}

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
  int locked = 0;
  if (nt <= 1 && !omp_in_parallel()) { /* serial OpenBLAS, under the lock */
    pthread_mutex_lock(&blas_lock);
    locked = 1;
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  }
  /* Inside a team of more than one, OpenBLAS runs single-threaded. */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t blk = 0; blk < nb; blk++) {
    int64_t r0 = blk * MG_DET_GEMM_ROWS;
    int64_t m = M - r0 < MG_DET_GEMM_ROWS ? M - r0 : MG_DET_GEMM_ROWS;
    const char *ab = (const char *)a + (size_t)(ta == CblasNoTrans ? r0 * lda : r0) * es;
    gemm_call(dt, ta, tb, m, N, K, ab, lda, b, ldb, beta,
              (char *)c + (size_t)(r0 * ldc) * es, ldc);
  }
  if (locked) pthread_mutex_unlock(&blas_lock);
}

void mg_gemm(const mg_Context *ctx, mg_DType dt, CBLAS_TRANSPOSE ta,
             CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K,
             const void *a, int64_t lda, const void *b, int64_t ldb,
             double beta, void *c, int64_t ldc) {
  if (ctx->deterministic) {
    gemm_deterministic(ctx, dt, ta, tb, M, N, K, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  int locked = mg_blas_begin();
  gemm_call(dt, ta, tb, M, N, K, a, lda, b, ldb, beta, c, ldc);
  mg_blas_end(locked);
}

char *mg_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t used = 0;
  used += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, i ? ",%lld" : "%lld",
                             (long long)shape[i]);
  if (used < n) snprintf(buf + used, n - used, "]");
  return buf;
}
