/*
 * mg_gemm_dnnl.h — float32 GEMMs through oneDNN's matmul primitive
 * (gemm_dnnl.c), which mg_gemm (gemm.c) tries before OpenBLAS. On this
 * round's AVX-512 machine oneDNN's brgemm kernels ran the products of
 * training steps at 1.04-1.29x OpenBLAS 0.3.21's sgemm on one thread and
 * 1.2-1.6x on two; without AVX-512 its jit gemm is on par with OpenBLAS
 * (`make bench-gemm`, docs/performance.md).
 */
#ifndef MG_GEMM_DNNL_H
#define MG_GEMM_DNNL_H

#include <cblas.h>

#include "mg_internal.h"

/* c (M x N, row stride ldc) = op(a) · op(b) + beta · c in float32,
 * row-major, as cblas_sgemm with alpha 1, plus the N floats at bias added
 * to every row unless bias is NULL. Returns 1 when oneDNN computed
 * it; 0 when it does not take this call (the caller then runs OpenBLAS,
 * c untouched): inside a parallel region, in deterministic or
 * reference-kernels mode, for products too small to pay a primitive's
 * one-off creation (M, N or K under 16, or under 2^20 multiply-adds), or
 * when oneDNN refused the shape or failed to run it. */
int mg_gemm_dnnl(mg_Context *ctx, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
                 int64_t M, int64_t N, int64_t K, const float *a, int64_t lda,
                 const float *b, int64_t ldb, const float *bias, float beta,
                 float *c, int64_t ldc);

/* How many products oneDNN ran for this context (specs read it to see
 * that it ran). */
int64_t mg_gemm_dnnl_runs(const mg_Context *ctx);

#endif
