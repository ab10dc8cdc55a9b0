/*
 * mg_conv.h — convolutions (ops_conv.c) and the padding of inputs they use
 * (ops_pad.c), bound in lua_conv.c as mg._conv2d, mg._conv_transpose2d and
 * mg._pad and published as moongrad.functional's F.conv2d,
 * F.conv_transpose2d and F.pad.
 */
#ifndef MG_CONV_H
#define MG_CONV_H

#include "mg_core.h"

typedef struct {
  int64_t stride[2];   /* rows, columns; > 0 */
  int64_t padding[2];  /* zeros added on each side; >= 0 */
  int64_t dilation[2]; /* spacing of the kernel taps; > 0 */
  int64_t groups;      /* C and O both divisible by it; C for depthwise */
  int same;            /* conv2d: padding "same" (padding[] unused) */
  int64_t output_padding[2]; /* conv_transpose2d: rows, columns added at
                                the bottom and right; < stride or dilation */
} mg_Conv2dOpts;

/* out [N, O, Ho, Wo] = the 2-D cross-correlation of x [N, C, H, W] with
 * w [O, C/groups, kH, kW], plus b [O] (or no bias when b is NULL), as
 * torch.nn.functional.conv2d; Ho = (H + 2ph - dh(kH - 1) - 1) / sh + 1.
 * Computes in the promoted float dtype (float32 or float64) by im2col and
 * one gemm per (sample, group), threaded over the batch, except float32
 * outside deterministic mode, which goes to oneDNN (conv_dnnl.c) where it
 * takes the geometry; differentiable in x, w and b, with a backward that
 * gives the same bits whatever the thread count on the im2col path (in
 * oneDNN's, the weight gradient's last bits depend on it). Fails (MG_ESHAPE / MG_EARG, message naming the shapes) on a
 * kernel larger than the padded input, channels not divisible by groups,
 * a weight that does not fit the input, or bad stride/padding/dilation.
 * With o->same, padding is "same" as in PyTorch: stride 1 only (fails
 * otherwise), d·(k-1) zeros per dim, half before rounded down and the rest
 * after, so Ho = H and Wo = W. */
int mg_conv2d(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, mg_Tensor *w,
              mg_Tensor *b, const mg_Conv2dOpts *o);

/* out [N, C_out, Ho, Wo] = the transposed convolution of x [N, C_in, H, W]
 * with w [C_in, C_out/groups, kH, kW], plus b [C_out] (or none when b is
 * NULL), as torch.nn.functional.conv_transpose2d: conv2d's input gradient
 * taken as a forward, Ho = (H - 1)·sh - 2ph + dh(kH - 1) + oph + 1 (o->same
 * is ignored). Computes in the promoted float dtype like mg_conv2d, with
 * its threading and thread-count-independent backward; differentiable in
 * x, w and b. Fails (MG_ESHAPE / MG_EARG, message naming the shapes) on an
 * output smaller than 1x1, input channels not divisible by groups, a
 * weight or bias that does not fit, output_padding not smaller than
 * either stride or dilation, or bad stride/padding/dilation. */
int mg_conv_transpose2d(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                        mg_Tensor *w, mg_Tensor *b, const mg_Conv2dOpts *o);

/* How pad fills: a constant, the mirror image without the edge (reflect),
 * the edge repeated (replicate), or the other side (circular). */
typedef enum {
  MG_PAD_CONSTANT,
  MG_PAD_REFLECT,
  MG_PAD_REPLICATE,
  MG_PAD_CIRCULAR
} mg_PadMode;

/* out = x padded as torch.nn.functional.pad: pad holds npad values in
 * pairs {before, after}, the last dim's first (4-D: {left, right, top,
 * bottom}); a negative amount crops. MG_PAD_CONSTANT fills with value and
 * pads any of the dims; the other modes take no value (0) and pad the last
 * 1, 2 or 3 dims of a 2-D/3-D, 3-D/4-D or 4-D/5-D x, with reflect padding
 * smaller than the dim, circular padding at most the dim, replicate on a
 * non-empty dim. Any dtype (the data is moved, not computed);
 * differentiable in x. Fails (MG_EARG / MG_ESHAPE, naming the padding, dim
 * and shape) otherwise. */
int mg_pad(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, int npad,
           const int64_t *pad, mg_PadMode mode, double value);

#endif
