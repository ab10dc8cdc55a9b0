/*
 * mg_augment.h — batch-level augmentation primitives (ops_augment.c), the
 * mechanism under moongrad.transforms.
 *
 * Each primitive applies per-sample parameters, drawn beforehand by the
 * caller (moongrad.transforms draws them from the state's RNG as tensors),
 * to a whole batch x [N, C, H, W] of float32 or float64 (flips and crops,
 * which only move pixels, take uint8 too) in one pass, and returns a new
 * contiguous tensor of x's dtype; x is never written. They
 * are not differentiable: an input that requires grad (while grad mode is
 * on) is refused rather than silently cut from the graph. Large batches are
 * split across threads by sample; every output element is a function of
 * the inputs alone, so results never depend on the thread count.
 *
 * Parameter tensors may have any dtype and layout. Positions in them are
 * 1-based (a box's top row, a crop's first column, a permutation's
 * entries), as every index tensor in moongrad.
 */
#ifndef MG_AUGMENT_H
#define MG_AUGMENT_H

#include "mg_core.h"

/* Flips sample n left-right (or top-bottom when vertical) where
 * mask[n] != 0; the other samples are copied. mask is [N]. */
int mg_flip(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
            const mg_Tensor *mask, int vertical);

/* out[n] [C, out_h, out_w] = the window of x[n] padded by pad_h rows above
 * and below and pad_w columns left and right (padding = fill), whose first
 * row and column are top[n] and left[n] (1-based, in the padded image:
 * 1 <= top[n] <= H + 2 pad_h - out_h + 1, likewise left). The padded batch
 * is never materialised. top, left are [N]. For a uint8 batch, fill must
 * be an integer from 0 to 255. */
int mg_crop_with_padding(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                         const mg_Tensor *top, const mg_Tensor *left,
                         int64_t out_h, int64_t out_w, int64_t pad_h,
                         int64_t pad_w, double fill);

/* Resamples each x[n] through the inverse affine map theta[n] ([N, 2, 3]):
 * output pixel (col j, row i), in coordinates centred on the image centre
 * (u = j - (W-1)/2, v = i - (H-1)/2), reads the input at
 *   (x_in, y_in) = (t00 u + t01 v + t02, t10 u + t11 v + t12) + centre
 * with bilinear interpolation; neighbours outside the image count as fill.
 * The identity matrix reproduces x exactly. */
int mg_affine(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
              const mg_Tensor *theta, double fill);

/* Copies x and sets the rectangle boxes[n] = (top, left, height, width) of
 * every channel of sample n to value; a box with zero height or width
 * erases nothing. boxes is [N, 4]; a box must lie inside the image. */
int mg_erase(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
             const mg_Tensor *boxes, double value);

/* out = x, then out[n]'s rectangle boxes[n] (every channel) is replaced by
 * the same rectangle of src[perm[n]] (or src[n] when perm is NULL). src is
 * [M, C, H, W] with x's C, H, W (any float dtype); perm is [N] with entries
 * in 1..M. CutMix pastes a batch into itself: src = x. */
int mg_paste(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
             const mg_Tensor *src, const mg_Tensor *perm,
             const mg_Tensor *boxes);

#endif
