/*
 * mg_imageops.h — image transforms: resizing, color adjustments,
 * grayscale, affine warps, padding, dtype conversion and normalization
 * (ops_image.c, ops_image_resize.c, ops_image_color.c, ops_image_warp.c),
 * the mechanism under moongrad.transforms' image pipeline.
 *
 * Each op follows torchvision 0.14's tensor functional
 * (torchvision/transforms/functional_tensor.py on PyTorch 1.13): the same
 * formulas, computed in float32 for float32 and uint8 images (torchvision
 * converts uint8 to float32 first) and in float64 for float64 images, with
 * the same rounding back to uint8 (round half to even after resizing and
 * warping; truncation after the color adjustments and grayscale, as
 * torchvision's .to(torch.uint8) does). The parameters (sizes, factors,
 * matrices) are given; the random transforms draw them in Lua.
 *
 * An image is [C, H, W] and a batch [N, C, H, W], of uint8, float32 or
 * float64, in any layout (a view made by narrow, a crop, is read in place
 * when its rows are contiguous). Every op returns a new contiguous tensor
 * of the input's rank, and of its dtype unless said otherwise; the input
 * is never written. A batch is transformed image by image with the same
 * parameters. The ops are not differentiable: an input that requires grad
 * (while grad mode is on) is refused, naming the op, rather than silently
 * cut from the graph. Small inputs run on the calling thread; a large
 * batch or image is split by planes across the context's threads, and
 * the result never depends on the thread count.
 */
#ifndef MG_IMAGEOPS_H
#define MG_IMAGEOPS_H

#include "mg_core.h"

typedef enum {
  MG_INTERP_NEAREST,   /* torch's "nearest": floor(i * in / out) */
  MG_INTERP_BILINEAR,
  MG_INTERP_BICUBIC,   /* Keys' cubic, a = -0.75 (a = -0.5 with antialias) */
  MG_NINTERP
} mg_Interp;

/* "nearest", "bilinear", "bicubic"; -1 when unknown. */
int mg_interp_from_name(const char *name);

/* x resized to out_h x out_w: torch.nn.functional.interpolate with
 * align_corners=False. With antialias (bilinear and bicubic only), the
 * filter widens with the downscale factor: PIL's ImagingResample, as
 * PyTorch's _upsample_bilinear2d_aa and _upsample_bicubic2d_aa compute
 * it. Separable: one pass along rows, one along columns, with weights
 * computed once per output row and column. uint8 results are rounded to
 * the nearest integer (bicubic clamped to [0, 255] first). */
int mg_image_resize(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                    int64_t out_h, int64_t out_w, mg_Interp mode,
                    int antialias);

/* The four adjustments of ColorJitter (F.adjust_brightness, ...). */
typedef enum {
  MG_COLOR_BRIGHTNESS, /* blend with black: factor >= 0 */
  MG_COLOR_CONTRAST,   /* blend with the image's mean gray: factor >= 0 */
  MG_COLOR_SATURATION, /* blend with the image's gray: factor >= 0 */
  MG_COLOR_HUE,        /* rotate the hue: factor in [-0.5, 0.5] */
  MG_NCOLOR
} mg_ColorKind;

typedef struct {
  mg_ColorKind kind;
  double factor;
} mg_ColorStep;

/* The nsteps adjustments applied in order, each exactly as its
 * torchvision function on the previous one's result (uint8 results
 * truncated after each), fused into at most two passes over each image
 * (one more when a contrast step needs the mean of what came before).
 * Images need 1 or 3 channels; saturation and hue leave a one-channel
 * image as it is, as torchvision does. A factor out of range is an
 * error naming the step. */
int mg_image_color(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                   const mg_ColorStep *steps, int nsteps);

/* F.rgb_to_grayscale: 0.2989 R + 0.587 G + 0.114 B (a one-channel image
 * is copied), with out_channels (1 or 3) copies of it. */
int mg_image_grayscale(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                       int out_channels);

/* Resamples x through inverse affine maps, as torchvision's F_t.affine and
 * F_t.rotate (an affine grid and grid_sample with zeros padding and
 * align_corners=False): output pixel (row i, column j) of an out_h x
 * out_w image reads the input at
 *   (x, y) = (t0 u + t1 v + t2, t3 u + t4 v + t5) + ((W-1)/2, (H-1)/2)
 * with u = j - (out_w-1)/2 and v = i - (out_h-1)/2, nearest (ties to
 * even) or bilinear. theta holds 6 numbers per map: one map for every
 * image (ntheta 1) or one per image of a batch (ntheta N). With fill NULL,
 * pixels outside the input count as zero; with fill (one value per
 * channel, or one for all when nfill is 1; from 0 to 255 for uint8), the
 * result is torchvision's blend out = v m + (1 - m) fill, m the weight
 * that fell inside the image (nearest: fill where the pixel is outside). */
int mg_image_warp(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                  const double *theta, int64_t ntheta, int64_t out_h,
                  int64_t out_w, mg_Interp mode, const double *fill,
                  int64_t nfill);

typedef enum {
  MG_PAD_CONSTANT,  /* fill */
  MG_PAD_EDGE,      /* repeat the border pixel */
  MG_PAD_REFLECT,   /* mirror without repeating it (pad < size) */
  MG_PAD_SYMMETRIC, /* mirror repeating it (pad <= size) */
  MG_NPAD
} mg_PadMode;

/* "constant", "edge", "reflect", "symmetric"; -1 when unknown. */
int mg_pad_mode_from_name(const char *name);

/* F.pad: left, top, right, bottom columns and rows added around each
 * image (negative values crop instead, as torch's pad does), the new ones
 * filled as mode says. fill must be a value of x's dtype (for uint8 an
 * integer from 0 to 255). F.crop past the image's border is a constant
 * pad with fill 0. */
int mg_image_pad(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                 int64_t left, int64_t top, int64_t right, int64_t bottom,
                 mg_PadMode mode, double fill);

/* F.convert_image_dtype to dt: uint8 -> float divides by 255; float ->
 * uint8 multiplies by 255.999 and truncates; float <-> float converts.
 * dt equal to x's dtype gives a copy. */
int mg_image_convert(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                     mg_DType dt);

/* F.normalize: (x - mean[c]) / std[c] per channel c, in x's float dtype
 * (mean and std rounded to it first; a std that rounds to zero is an
 * error). nvals is 1 (every channel) or C. A uint8 x is first scaled to
 * float32 by 1/255, as T.ToTensor does: ToTensor and Normalize fused,
 * with the same result as the two in turn. */
int mg_image_normalize(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                       const double *mean, const double *std, int64_t nvals);

/* ---- shared by the ops_image*.c files ----------------------------------- */

/* a b + c in float32, fused where the machine fuses it: PyTorch's kernels,
 * built for such machines, sum the taps of a resize or a warp with fused
 * multiply-adds, and agreeing with them to the bit (uint8 results
 * included) needs the same. Explicit, so that it never depends on the
 * compiler's optimization level; the files compile with fp-contract off. */
static inline float mg_image_madd(float a, float b, float c) {
#ifdef __FMA__
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}

/* An image or batch as the kernels read it: N planes groups of C planes of
 * H rows of W elements; rows are contiguous, the other strides are free. */
typedef struct {
  mg_Tensor *t;        /* the tensor read (x, or a contiguous copy): owned */
  const char *data;    /* its first element */
  mg_DType dt;
  int batched;         /* x was [N, C, H, W] (else N is 1) */
  int64_t N, C, H, W;
  int64_t sn, sc, sh;  /* strides of N, C and rows, in elements */
} mg_ImageIn;

/* Checks x for op (rank 3 or 4, a uint8, float32 or float64 dtype, no
 * empty dimension but N, not requiring grad) and fills *in; *in owns a
 * reference to free with mg_image_in_free (also after a failure). */
int mg_image_in(mg_Context *ctx, const char *op, mg_Tensor *x,
                mg_ImageIn *in);
void mg_image_in_free(mg_ImageIn *in);
/* The first element of plane (n, c). */
static inline const char *mg_image_plane(const mg_ImageIn *in, int64_t n,
                                         int64_t c) {
  return in->data + (size_t)(n * in->sn + c * in->sc) * mg_dtype_size(in->dt);
}
/* A new contiguous output like in with C channels of h x w, of dtype dt. */
int mg_image_out(mg_Context *ctx, mg_Tensor **out, const mg_ImageIn *in,
                 mg_DType dt, int64_t C, int64_t h, int64_t w);
/* Fails naming op unless the image has 1 or 3 channels (the color ops). */
int mg_image_check_rgb(mg_Context *ctx, const char *op, const mg_ImageIn *in);
/* Fails naming op unless h x w is an output size from 1x1 to
 * MG_MAX_WINDOW x MG_MAX_WINDOW. */
int mg_image_check_size(mg_Context *ctx, const char *op, int64_t h, int64_t w);
/* Threads for an output of out_elems elements in nplanes planes: one
 * unless the output is large (a single small image never starts threads). */
int mg_image_threads(const mg_Context *ctx, int64_t nplanes, int64_t out_elems);

#endif
