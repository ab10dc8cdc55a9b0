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

int mg_blas_begin_serial(void) {
  if (omp_in_parallel()) return 0;
  pthread_mutex_lock(&blas_lock);
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
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

char *mg_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t used = 0;
  used += (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < ndim && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, i ? ",%lld" : "%lld",
                             (long long)shape[i]);
  if (used < n) snprintf(buf + used, n - used, "]");
  return buf;
}
