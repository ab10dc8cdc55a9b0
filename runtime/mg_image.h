/*
 * mg_image.h — PNG and JPEG images to and from uint8 tensors (io_image.c),
 * through Debian's libpng and libjpeg-turbo.
 *
 *   mg_Tensor *img = NULL;                       // uint8 [C, H, W]
 *   mg_ImageOptions o = {.mode = MG_IMAGE_RGB, .max_pixels = MG_IMAGE_MAX_PIXELS};
 *   if (mg_image_load(ctx, &img, "cat.jpg", &o) ||
 *       mg_image_save(ctx, "cat.png", img))
 *     fprintf(stderr, "%s\n", mg_last_error(ctx));
 *
 * Decoded pixels are Pillow's (9.4, Debian 12's python3-pil): JPEG through
 * the same libjpeg-turbo with its defaults (the accurate integer DCT,
 * fancy upsampling), mode conversions with Pillow's formulas. One
 * deliberate difference: a 16-bit gray PNG becomes its high bytes, where
 * Pillow's convert("L") clips the 16-bit values to 255 (a white image);
 * every other 16-bit PNG is its high bytes in Pillow too. And a stricter
 * one: a PNG must be whole through its IEND chunk, every CRC right (Pillow
 * decodes a file cut in its last CRC or its IEND); a JPEG must be whole
 * through its EOI marker, as in Pillow ("image file is truncated").
 *
 * The format is told from the first bytes, never from the file's name. The
 * width and height are checked against max_pixels before any pixel memory
 * is allocated (Pillow's decompression-bomb guard). The result tensor is
 * allocated through the core, so it counts against mg_set_memory_limit;
 * the decoders' large scratch (an interlaced PNG's rows, a progressive
 * JPEG's coefficients) is charged to the same limit while it lives.
 *
 * Every failure returns a status with a message naming the caller, the
 * file and what is wrong, and leaves *out untouched:
 *   "image.load: a/b.png: truncated: the file ends inside the image data"
 *   "image.load: big.png: 100000 x 100000 = 10000000000 pixels is more
 *    than the limit of 178956970 (mg.image.set_max_pixels)"
 */
#ifndef MG_IMAGE_H
#define MG_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_core.h"

/* Pillow's decompression-bomb error threshold, 2 * MAX_IMAGE_PIXELS. */
#define MG_IMAGE_MAX_PIXELS INT64_C(178956970)

/* The channels a decoded image is given. */
typedef enum {
  MG_IMAGE_AUTO = 0, /* the file's own: 1 gray, 2 gray + alpha, 3 RGB,
                        4 RGBA; a palette gives RGB, or RGBA when it has
                        transparency (tRNS) */
  MG_IMAGE_L,        /* 1 channel: gray is kept; RGB(A) becomes
                        (19595 R + 38470 G + 7471 B + 32768) >> 16 */
  MG_IMAGE_RGB,      /* 3 channels: gray is replicated, alpha dropped */
  MG_IMAGE_RGBA,     /* 4 channels: alpha 255 where the file has none, or
                        from tRNS (a palette's, or a gray or RGB value
                        that is transparent) */
  MG_NIMAGE_MODES
} mg_ImageMode;

typedef struct {
  mg_ImageMode mode;    /* see mg_ImageMode */
  int64_t max_pixels;   /* width * height above this is refused; <= 0: no
                           limit */
} mg_ImageOptions;

typedef struct {
  int64_t width, height;
  int channels;         /* what MG_IMAGE_AUTO gives */
  const char *format;   /* "PNG" or "JPEG" (static) */
} mg_ImageInfo;

/* Decodes the PNG or JPEG file at path into a new contiguous uint8 tensor
 * [C, H, W]. The file is opened with mg_file_open_read (a FIFO, device or
 * directory is refused at once, naming what it is). who names the caller
 * in messages ("image.load"). Fails with MG_EIO for a file that cannot be
 * opened or read, is empty, is not a PNG or JPEG (naming GIF, BMP, WebP
 * or TIFF when it is one of those), is truncated, has a bad CRC or corrupt
 * data, has a zero or unsupported size or colour space (CMYK and YCCK
 * JPEGs are refused); MG_EARG when it has more than max_pixels pixels;
 * MG_ENOMEM past the memory limit. opt may be NULL (MG_IMAGE_AUTO, the
 * default limit). */
int mg_image_load(mg_Context *ctx, mg_Tensor **out, const char *who,
                  const char *path, const mg_ImageOptions *opt);

/* The same from n bytes in memory; name stands for the file in messages
 * (the caller's choice: "<bytes>"). The bytes are only read. */
int mg_image_decode(mg_Context *ctx, mg_Tensor **out, const char *who,
                    const char *name, const void *data, size_t n,
                    const mg_ImageOptions *opt);

/* Reads the header of the image at path (and nothing of its pixels) into
 * *info. Fails as mg_image_load does for what a header shows; a limit
 * is not applied (info is how a caller learns the size). */
int mg_image_info(mg_Context *ctx, mg_ImageInfo *info, const char *who,
                  const char *path);

/* Writes t as a PNG file at path, atomically through mg_file_begin/
 * mg_file_write/mg_file_commit (a target that is not a regular file is
 * refused and nothing is written). t is [C, H, W] with C = 1 (gray), 2
 * (gray + alpha), 3 (RGB) or 4 (RGBA), H and W from 1 to 2^31 - 1, any
 * layout, and either uint8 or float32/float64 with values in [0, 1]:
 * those are stored as torchvision.utils.save_image does, x * 255 + 0.5
 * clamped to [0, 255] and truncated, in the tensor's own precision (NaN
 * gives 0). Fails with MG_EARG naming the dtype or shape, MG_EIO for the
 * file (the previous file at path is then as it was). */
int mg_image_save(mg_Context *ctx, const char *who, const char *path,
                  const mg_Tensor *t);

/* The PNG mg_image_save would write, in memory: on success *png is a
 * malloc'd buffer of *len bytes (the caller frees it); on failure *png is
 * NULL. Messages name "<memory>" where mg_image_save names the path. */
int mg_image_encode_png(mg_Context *ctx, const char *who, const mg_Tensor *t,
                        char **png, size_t *len);

#endif
