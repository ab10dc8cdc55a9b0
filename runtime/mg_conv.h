/*
 * mg_conv.h — convolutions (ops_conv.c), bound in lua_conv.c as mg._conv2d
 * and published as moongrad.functional's F.conv2d.
 */
#ifndef MG_CONV_H
#define MG_CONV_H

#include "mg_core.h"

typedef struct {
  int64_t stride[2];   /* rows, columns; > 0 */
  int64_t padding[2];  /* zeros added on each side; >= 0 */
  int64_t dilation[2]; /* spacing of the kernel taps; > 0 */
  int64_t groups;      /* C and O both divisible by it; C for depthwise */
} mg_Conv2dOpts;

/* out [N, O, Ho, Wo] = the 2-D cross-correlation of x [N, C, H, W] with
 * w [O, C/groups, kH, kW], plus b [O] (or no bias when b is NULL), as
 * torch.nn.functional.conv2d; Ho = (H + 2ph - dh(kH - 1) - 1) / sh + 1.
 * Computes in the promoted float dtype (float32 or float64) by im2col and
 * one gemm per (sample, group), threaded over the batch; differentiable in
 * x, w and b, with a backward that gives the same bits whatever the thread
 * count. Fails (MG_ESHAPE / MG_EARG, message naming the shapes) on a
 * kernel larger than the padded input, channels not divisible by groups,
 * a weight that does not fit the input, or bad stride/padding/dilation. */
int mg_conv2d(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, mg_Tensor *w,
              mg_Tensor *b, const mg_Conv2dOpts *o);

#endif
