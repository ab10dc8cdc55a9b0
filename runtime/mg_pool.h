/*
 * mg_pool.h — 2-D pooling over [N, C, H, W] (or [C, H, W]) tensors:
 * max_pool2d, avg_pool2d and adaptive_avg_pool2d (ops_pool.c), with
 * PyTorch's output sizes, padding and tie rules. Each op computes in the
 * input's float dtype (int64 computes in float32), is differentiable, and
 * runs over the N·C planes in parallel when they are many.
 */
#ifndef MG_POOL_H
#define MG_POOL_H

#include "mg_core.h"

/* Window geometry; index 0 is H, 1 is W. */
typedef struct {
  int64_t kernel[2];       /* window size, >= 1 */
  int64_t stride[2];       /* >= 1 (the binding defaults it to kernel) */
  int64_t padding[2];      /* implicit padding each side, <= kernel / 2 */
  int64_t dilation[2];     /* spacing of window taps (max only), >= 1 */
  int ceil_mode;           /* round the output size up, as PyTorch does */
  int count_include_pad;   /* avg: the divisor counts padded positions */
} mg_Pool2d;

/* out = the largest element of each window, padding counting as -inf
 * (the first maximum wins a tie; NaN propagates). When indices is not
 * NULL it receives a new int64 tensor shaped like out holding each
 * maximum's 1-based position within its H·W plane. Fails on a rank other
 * than 3 or 4, bad geometry, or an empty output. */
int mg_max_pool2d(mg_Context *ctx, mg_Tensor **out, mg_Tensor **indices,
                  const mg_Tensor *x, const mg_Pool2d *p);
/* out = the mean of each window (padding counts as zeros and, with
 * count_include_pad, in the divisor; a window hanging past the padded
 * input in ceil mode never counts those positions). */
int mg_avg_pool2d(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *x,
                  const mg_Pool2d *p);
/* out [..., OH, OW] = means over windows [floor(i·H/OH), ceil((i+1)·H/OH))
 * (likewise for W); OH, OW >= 1. */
int mg_adaptive_avg_pool2d(mg_Context *ctx, mg_Tensor **out,
                           const mg_Tensor *x, int64_t oh, int64_t ow);

#endif
