/*
 * mg_conv_dnnl.h — float32 conv2d through oneDNN's convolution primitives
 * (conv_dnnl.c), called by ops_conv.c before its own im2col + gemm path,
 * which stays the fallback and the reference: oneDNN's blocked JIT kernels
 * are several times faster for ResNet-sized convs on AVX-512 machines.
 */
#ifndef MG_CONV_DNNL_H
#define MG_CONV_DNNL_H

#include "mg_internal.h"

/* One conv2d's geometry, as ops_conv.c checked it: input [N, C, H, W],
 * weight [O, C/G, kH, kW], output [N, O, Ho, Wo]; padding ph, pw before
 * (the padding after is what makes Ho and Wo). */
typedef struct {
  int64_t N, C, H, W;     /* input */
  int64_t O, kH, kW, G;   /* weight and groups */
  int64_t Ho, Wo;         /* output */
  int64_t sh, sw, ph, pw; /* stride, padding before */
  int64_t dh, dw;         /* dilation (1: none) */
} mg_ConvShape;

/* Whether a conv2d in dtype dt may go to oneDNN in this context: float32,
 * outside deterministic mode (oneDNN's bits depend on the thread count)
 * and reference-kernels mode. */
int mg_conv_dnnl_usable(const mg_Context *ctx, mg_DType dt);

/* y (allocated by the caller) = conv2d(x, w) + b (b may be NULL), x, w
 * and b float32; w and b contiguous, x and y each contiguous or channels
 * last (mg_is_channels_last), which oneDNN's kernels read and write with
 * no reorder where they chose that layout themselves. Sets *took to 1 when oneDNN ran,
 * to 0 (returning MG_OK, y untouched) when it does not take this geometry,
 * so that the caller computes it; returns a status with a message naming
 * conv2d and the shapes when oneDNN failed while running. */
int mg_conv_dnnl_forward(mg_Context *ctx, const mg_ConvShape *s, mg_Tensor *x,
                         mg_Tensor *w, mg_Tensor *b, mg_Tensor *y, int *took);

/* The gradients of conv2d(x, w [, b]) for the output gradient g (float32;
 * x and g each contiguous or channels last, w contiguous): new tensors in
 * *gx (laid out as x), *gw and *gb for each of those pointers that is not
 * NULL (gb only with has_bias). *took and the status
 * as for mg_conv_dnnl_forward; nothing is set unless *took is 1. */
int mg_conv_dnnl_backward(mg_Context *ctx, const mg_ConvShape *s, int has_bias,
                          mg_Tensor *x, mg_Tensor *w, mg_Tensor *g,
                          mg_Tensor **gx, mg_Tensor **gw, mg_Tensor **gb,
                          int *took);

/* How many forward, backward-data and backward-weights runs oneDNN made
 * for this context (specs read them to see that it ran). */
void mg_conv_dnnl_runs(const mg_Context *ctx, int64_t runs[3]);

#endif
