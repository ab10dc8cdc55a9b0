/*
 * io_image.c — PNG (libpng) and JPEG (libjpeg-turbo) to and from uint8
 * tensors; the contract is in mg_image.h.
 *
 * Both libraries report errors by calling a function that must not
 * return, so each is given one that longjmps back. Every function here
 * that calls into a library sets its own setjmp first and returns a status
 * when it is jumped to: the jump never crosses a frame but that function's
 * own callees (library code and the small callbacks below), never a Lua
 * frame, and what must be freed afterwards lives in the Dec struct, which
 * the caller frees whichever way the function returned. The output tensor
 * is allocated between two such calls, with no jump armed, because an
 * allocation that meets the memory limit may run Lua's collector
 * (mg_set_reclaim).
 *
 * A decoder hands over rows of interleaved 8-bit samples (1 to 4 per
 * pixel); put_row converts each into the requested mode and scatters it
 * into the tensor's planes, so a non-interlaced PNG or any JPEG needs only
 * one row of scratch. An interlaced PNG is assembled whole first (Adam7's
 * passes each touch every row), in scratch charged to the memory limit.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "io_read.h"
#include "mg_file.h"
#include "mg_image.h"

/* torchvision's x * 255 + 0.5 is two float operations, two roundings. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define FILE_CHUNK (1 << 16) /* bytes read from a file at a time */
/* libjpeg-turbo's TurboJPEG API refuses progressive JPEGs with more scans
 * (TJPARAM_SCANLIMIT): each scan rereads every coefficient, so a small
 * file of thousands of scans decodes for minutes. */
#define MAX_SCANS 500

/* ---- the bytes: a file read in chunks, or a buffer ------------------------ */

typedef struct {
  const uint8_t *p;  /* the bytes not yet handed over */
  size_t n;          /* how many */
  int fd;            /* the file, or -1 for bytes in memory */
  uint8_t *buf;      /* the file's chunk buffer */
  size_t total;      /* bytes taken from the source so far (file: read) */
  int eof;           /* a decoder asked for bytes past the end */
  int err;           /* errno of a failed read, or 0 */
} Src;

/* Makes at least want bytes available (fewer only at the end or on a read
 * error) without consuming any; returns how many are. A file's buffer keeps
 * what was not consumed at its start. */
static size_t src_fill(Src *s, size_t want) {
  if (s->fd < 0 || s->n >= want || s->err) return s->n;
  if (s->n && s->p != s->buf) memmove(s->buf, s->p, s->n);
  s->p = s->buf;
  if (want > FILE_CHUNK) want = FILE_CHUNK;
  while (s->n < want) {
    ssize_t k = read(s->fd, s->buf + s->n, FILE_CHUNK - s->n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) s->err = errno;
    if (k <= 0) break;
    s->n += (size_t)k;
    s->total += (size_t)k;
  }
  return s->n;
}

static void src_take(Src *s, size_t k) {
  s->p += k;
  s->n -= k;
}

/* ---- the decoder's state --------------------------------------------------- */

typedef struct {
  mg_Context *ctx;
  const char *who, *name;  /* for messages */
  Src src;
  char msg[JMSG_LENGTH_MAX + 64]; /* the library's last error */
  char warning[128];       /* libpng's last warning, or "" */
  int scans_exceeded;      /* a progressive JPEG passed MAX_SCANS */
  int64_t w, h;
  int channels;            /* what MG_IMAGE_AUTO gives */
  int row_ch;              /* samples per pixel of the rows decoded */
  const char *format;
  uint8_t *row;            /* one row of scratch, or the whole image */
  uint8_t **rows;          /* an interlaced PNG's row pointers */
  size_t charged;          /* scratch bytes charged to the memory limit */
  /* libpng */
  png_structp png;
  png_infop info;
  int passes;              /* 1, or 7 for Adam7 */
  /* libjpeg */
  struct jpeg_decompress_struct jpg;
  int jpg_made;            /* jpg needs jpeg_destroy_decompress */
  struct jpeg_error_mgr jerr;
  struct jpeg_source_mgr jsrc;
  struct jpeg_progress_mgr jprog;
  size_t jhanded;          /* bytes of src handed to libjpeg, not taken */
  jmp_buf jmp;             /* libjpeg's way back (libpng keeps its own) */
} Dec;

/* Records a failure: "who: name: " then the formatted text. */
__attribute__((format(printf, 3, 4)))
static int fail(Dec *d, int st, const char *fmt, ...) {
  char text[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  return mg_error(d->ctx, st, "%s: %s: %s", d->who, d->name, text);
}

/* The message for a library error, the file's state first: a read error
 * or an end reached early explains whatever the library then said. */
static int fail_decode(Dec *d) {
  if (d->src.err)
    return fail(d, MG_EIO, "reading failed: %s", strerror(d->src.err));
  if (d->src.eof)
    return fail(d, MG_EIO, "truncated: the data ends after %zu byte%s, "
                "inside the %s image", d->src.total,
                d->src.total == 1 ? "" : "s", d->format);
  if (d->scans_exceeded)
    return fail(d, MG_EIO, "a progressive JPEG with more than %d scans "
                "(refused, as libjpeg-turbo's TurboJPEG refuses it)",
                MAX_SCANS);
  if (d->warning[0]) /* libpng says why in a warning: "Image width is zero" */
    return fail(d, MG_EIO, "corrupt %s: %s (%s)", d->format, d->msg, d->warning);
  return fail(d, MG_EIO, "corrupt %s: %s", d->format, d->msg);
}

static int charge(Dec *d, size_t bytes) {
  if (mg_charge(d->ctx, bytes)) return mg_read_nomem(d->ctx, d->who, d->name);
  d->charged += bytes;
  return MG_OK;
}

static int check_pixels(Dec *d, const mg_ImageOptions *o) {
  if (d->w == 0 || d->h == 0)
    return fail(d, MG_EIO, "a %s of %" PRId64 " x %" PRId64 " pixels (an "
                "image needs at least one)", d->format, d->w, d->h);
  if (o && o->max_pixels > 0 && d->w * d->h > o->max_pixels)
    return fail(d, MG_EARG, "%" PRId64 " x %" PRId64 " = %" PRId64 " pixels "
                "is more than the limit of %" PRId64 " (a decompression "
                "bomb? mg.image.set_max_pixels raises it)",
                d->w, d->h, d->w * d->h, o->max_pixels);
  return MG_OK;
}

/* ---- rows into planes ------------------------------------------------------- */

static int mode_channels(mg_ImageMode m, int auto_ch) {
  switch (m) {
  case MG_IMAGE_L: return 1;
  case MG_IMAGE_RGB: return 3;
  case MG_IMAGE_RGBA: return 4;
  default: return auto_ch;
  }
}

/* Pillow's L24: ITU-R 601-2 luma in 16-bit fixed point, rounded. */
static inline uint8_t luma(unsigned r, unsigned g, unsigned b) {
  return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

/* out: row y of plane 0 of a [C, H, W] tensor whose planes are plane
 * elements apart; row: w pixels of sc interleaved samples. */
static void put_row(uint8_t *out, int64_t plane, const uint8_t *row,
                    int64_t w, int sc, mg_ImageMode mode) {
  int dc = mode_channels(mode, sc);
  if (dc == sc && sc == 3) { /* RGB, the common case: one pass, three planes
                              * (a loop per channel strides through the row
                              * three times and took 40% of a JPEG's decode) */
    uint8_t *restrict o0 = out, *restrict o1 = out + plane, *restrict o2 = out + 2 * plane;
    for (int64_t x = 0; x < w; x++) {
      o0[x] = row[3 * x];
      o1[x] = row[3 * x + 1];
      o2[x] = row[3 * x + 2];
    }
    return;
  }
  if (dc == sc) { /* the file's channels: deinterleave */
    for (int c = 0; c < sc; c++) {
      uint8_t *o = out + c * plane;
      for (int64_t x = 0; x < w; x++) o[x] = row[x * sc + c];
    }
    return;
  }
  if (dc == 1) {
    if (sc == 2) /* LA -> L: the gray */
      for (int64_t x = 0; x < w; x++) out[x] = row[2 * x];
    else /* RGB(A) -> L */
      for (int64_t x = 0; x < w; x++) {
        const uint8_t *p = row + x * sc;
        out[x] = luma(p[0], p[1], p[2]);
      }
    return;
  }
  uint8_t *o0 = out, *o1 = out + plane, *o2 = out + 2 * plane;
  uint8_t *o3 = dc == 4 ? out + 3 * plane : NULL;
  for (int64_t x = 0; x < w; x++) {
    const uint8_t *p = row + x * sc;
    uint8_t r, g, b, a;
    if (sc <= 2) {
      r = g = b = p[0];
      a = sc == 2 ? p[1] : 255;
    } else {
      r = p[0], g = p[1], b = p[2];
      a = sc == 4 ? p[3] : 255;
    }
    o0[x] = r, o1[x] = g, o2[x] = b;
    if (dc == 4) o3[x] = a;
  }
}

/* ---- PNG ---------------------------------------------------------------------- */

static void png_err(png_structp png, png_const_charp msg) {
  Dec *d = png_get_error_ptr(png);
  snprintf(d->msg, sizeof d->msg, "%s", msg);
  png_longjmp(png, 1);
}

/* Kept for the message of an error that follows (libpng warns why an
 * IHDR is invalid, then fails with "Invalid IHDR data"); otherwise
 * ignored, as Pillow reads past what libpng warns about. */
static void png_warn(png_structp png, png_const_charp msg) {
  Dec *d = png_get_error_ptr(png);
  if (d) snprintf(d->warning, sizeof d->warning, "%s", msg);
}

static void png_read_cb(png_structp png, png_bytep out, size_t n) {
  Dec *d = png_get_io_ptr(png);
  Src *s = &d->src;
  while (n) {
    size_t k = src_fill(s, n);
    if (k == 0) {
      s->eof = 1;
      png_error(png, "the file ends early");
    }
    if (k > n) k = n;
    memcpy(out, s->p, k);
    src_take(s, k);
    out += k;
    n -= k;
  }
}

/* Reads the chunks before the image data: the size, the colour type and
 * tRNS, nothing that grows with the image. */
static int png_header(Dec *d) {
  png_structp png = d->png;
  if (setjmp(png_jmpbuf(png))) return fail_decode(d);
  /* libpng's default limit is 1,000,000 per side; ours is the pixel count,
   * checked next with a message that says how to raise it. */
  png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  /* A bad CRC is corruption in any chunk, as Pillow takes it. */
  png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
  png_set_read_fn(png, d, png_read_cb);
  png_read_info(png, d->info);
  png_uint_32 w, h;
  int depth, type;
  png_get_IHDR(png, d->info, &w, &h, &depth, &type, NULL, NULL, NULL);
  d->w = w, d->h = h;
  int trns = png_get_valid(png, d->info, PNG_INFO_tRNS) != 0;
  switch (type) {
  case PNG_COLOR_TYPE_GRAY: d->channels = 1; break;
  case PNG_COLOR_TYPE_GRAY_ALPHA: d->channels = 2; break;
  case PNG_COLOR_TYPE_PALETTE: d->channels = trns ? 4 : 3; break;
  case PNG_COLOR_TYPE_RGB_ALPHA: d->channels = 4; break;
  default: d->channels = 3; break;
  }
  return MG_OK;
}

/* Sets up libpng's transforms for mode, once the size is known to be
 * within the limit: libpng then allocates its row buffers (charged here
 * as two rows of 8 bytes a pixel, its widest). */
static int png_setup(Dec *d, mg_ImageMode mode) {
  png_structp png = d->png;
  int st = charge(d, 2 * ((size_t)d->w * 8 + 64));
  if (st) return st;
  if (setjmp(png_jmpbuf(png))) return fail_decode(d);
  png_uint_32 w, h;
  int depth, type;
  png_get_IHDR(png, d->info, &w, &h, &depth, &type, NULL, NULL, NULL);
  int trns = png_get_valid(png, d->info, PNG_INFO_tRNS) != 0;
  if (type == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    if (trns && (mode == MG_IMAGE_AUTO || mode == MG_IMAGE_RGBA))
      png_set_tRNS_to_alpha(png);
  } else if (trns && mode == MG_IMAGE_RGBA) {
    png_set_tRNS_to_alpha(png); /* Pillow's convert_transparent */
  }
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png); /* the high byte, as Pillow */
  d->passes = png_set_interlace_handling(png);
  png_read_update_info(png, d->info);
  d->row_ch = png_get_channels(png, d->info);
  /* The tensor is shaped from the header's channels: the rows must agree. */
  if (d->row_ch < 1 || d->row_ch > 4 ||
      (mode == MG_IMAGE_AUTO && d->row_ch != d->channels) ||
      png_get_rowbytes(png, d->info) != (size_t)d->w * (size_t)d->row_ch)
    return fail(d, MG_EIO, "unexpected PNG layout (%d samples a pixel, %zu "
                "bytes a row)", d->row_ch, (size_t)png_get_rowbytes(png, d->info));
  return MG_OK;
}

/* The rows' scratch, allocated with no jump armed (a charge that meets
 * the limit runs Lua's collector): one row, or for an interlaced PNG the
 * whole image, which Adam7's passes fill bit by bit. */
static int alloc_rows(Dec *d) {
  size_t rowbytes = (size_t)d->w * (size_t)d->row_ch;
  if (d->passes <= 1) {
    if (!(d->row = malloc(rowbytes)))
      return fail(d, MG_ENOMEM, "out of memory for a row of %zu bytes", rowbytes);
    return MG_OK;
  }
  size_t bytes = rowbytes * (size_t)d->h, ptrs = sizeof(uint8_t *) * (size_t)d->h;
  int st = charge(d, bytes + ptrs);
  if (st) return st;
  if (!(d->row = malloc(bytes)) || !(d->rows = malloc(ptrs)))
    return fail(d, MG_ENOMEM, "out of memory for an interlaced image of %zu "
                "bytes", bytes);
  for (int64_t y = 0; y < d->h; y++) d->rows[y] = d->row + (size_t)y * rowbytes;
  return MG_OK;
}

/* Decodes the image data into t ([C, H, W], C as mode gives) and reads
 * the chunks after it, so a file cut after its last row or a bad CRC in
 * its last chunk fails too. */
static int png_pixels(Dec *d, mg_Tensor *t, mg_ImageMode mode) {
  png_structp png = d->png;
  if (setjmp(png_jmpbuf(png))) return fail_decode(d);
  uint8_t *out = mg_data(t);
  int64_t plane = d->w * d->h;
  if (d->passes <= 1) {
    for (int64_t y = 0; y < d->h; y++) {
      png_read_row(png, d->row, NULL);
      put_row(out + y * d->w, plane, d->row, d->w, d->row_ch, mode);
    }
  } else {
    png_read_image(png, d->rows);
    for (int64_t y = 0; y < d->h; y++)
      put_row(out + y * d->w, plane, d->rows[y], d->w, d->row_ch, mode);
  }
  png_read_end(png, NULL);
  return MG_OK;
}

static int png_open(Dec *d) {
  d->format = "PNG";
  d->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, d, png_err, png_warn);
  if (d->png) d->info = png_create_info_struct(d->png);
  if (!d->info) return fail(d, MG_ENOMEM, "out of memory starting libpng");
  return MG_OK;
}

/* ---- JPEG ---------------------------------------------------------------------- */

static void jpg_error_exit(j_common_ptr cinfo) {
  Dec *d = cinfo->client_data;
  (*cinfo->err->format_message)(cinfo, d->msg);
  longjmp(d->jmp, 1);
}

/* Warnings (corrupt data that libjpeg decodes past) are ignored, as Pillow
 * ignores them; an early end is caught by the source below. */
static void jpg_emit(j_common_ptr cinfo, int level) { (void)cinfo, (void)level; }

static void jpg_progress(j_common_ptr cinfo) {
  Dec *d = cinfo->client_data;
  if (cinfo->is_decompressor &&
      ((j_decompress_ptr)cinfo)->input_scan_number > MAX_SCANS) {
    d->scans_exceeded = 1;
    longjmp(d->jmp, 1);
  }
}

static void jsrc_init(j_decompress_ptr cinfo) { (void)cinfo; }
static void jsrc_term(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean jsrc_fill(j_decompress_ptr cinfo) {
  static const JOCTET fake_eoi[2] = {0xFF, JPEG_EOI};
  Dec *d = cinfo->client_data;
  Src *s = &d->src;
  /* libjpeg asks only once it used all it was handed. */
  src_take(s, d->jhanded);
  d->jhanded = 0;
  if (s->eof || src_fill(s, FILE_CHUNK) == 0) {
    /* As libjpeg's own sources do: an EOI ends the decode cleanly, and
     * eof tells the caller that the file was cut. */
    s->eof = 1;
    cinfo->src->next_input_byte = fake_eoi;
    cinfo->src->bytes_in_buffer = 2;
    return TRUE;
  }
  cinfo->src->next_input_byte = s->p;
  cinfo->src->bytes_in_buffer = d->jhanded = s->n;
  return TRUE;
}

static void jsrc_skip(j_decompress_ptr cinfo, long n) {
  struct jpeg_source_mgr *src = cinfo->src;
  while (n > 0) {
    if ((size_t)n <= src->bytes_in_buffer) {
      src->next_input_byte += n;
      src->bytes_in_buffer -= (size_t)n;
      return;
    }
    n -= (long)src->bytes_in_buffer;
    src->next_input_byte += src->bytes_in_buffer;
    src->bytes_in_buffer = 0;
    jsrc_fill(cinfo);
    if (((Dec *)cinfo->client_data)->src.eof) return; /* keep the EOI */
  }
}

static int jpg_open(Dec *d) {
  d->format = "JPEG";
  d->jpg.err = jpeg_std_error(&d->jerr);
  d->jerr.error_exit = jpg_error_exit;
  d->jerr.emit_message = jpg_emit;
  d->jpg.client_data = d;
  if (setjmp(d->jmp)) return fail_decode(d);
  jpeg_create_decompress(&d->jpg); /* keeps err and client_data */
  d->jpg_made = 1;
  d->jsrc.init_source = jsrc_init;
  d->jsrc.fill_input_buffer = jsrc_fill;
  d->jsrc.skip_input_data = jsrc_skip;
  d->jsrc.resync_to_restart = jpeg_resync_to_restart;
  d->jsrc.term_source = jsrc_term;
  d->jsrc.bytes_in_buffer = 0;
  d->jsrc.next_input_byte = NULL;
  d->jpg.src = &d->jsrc;
  d->jprog.progress_monitor = jpg_progress;
  d->jpg.progress = &d->jprog;
  return MG_OK;
}

/* Reads the markers up to the first scan: the size and colour space. */
static int jpg_header(Dec *d) {
  j_decompress_ptr cinfo = &d->jpg;
  if (setjmp(d->jmp)) return fail_decode(d);
  jpeg_read_header(cinfo, TRUE);
  d->w = cinfo->image_width, d->h = cinfo->image_height;
  switch (cinfo->jpeg_color_space) {
  case JCS_GRAYSCALE: d->channels = 1; break;
  case JCS_YCbCr:
  case JCS_RGB: d->channels = 3; break;
  case JCS_CMYK:
  case JCS_YCCK:
    return fail(d, MG_EIO, "a %s JPEG, which moongrad does not decode "
                "(convert it to RGB first)",
                cinfo->jpeg_color_space == JCS_CMYK ? "CMYK" : "YCCK");
  default:
    return fail(d, MG_EIO, "a JPEG with %d components in an unknown colour "
                "space, which moongrad does not decode", cinfo->num_components);
  }
  return MG_OK;
}

/* Pillow's decoder settings (libjpeg's defaults), and a charge for what
 * libjpeg allocates: a JPEG of several scans keeps every coefficient of
 * the image (64 of 2 bytes a block), and any keeps a few rows of samples
 * for upsampling (an estimate: 48 bytes a pixel of width). */
static int jpg_setup(Dec *d) {
  j_decompress_ptr cinfo = &d->jpg;
  cinfo->out_color_space = d->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  cinfo->dct_method = JDCT_ISLOW;
  cinfo->do_fancy_upsampling = TRUE;
  d->row_ch = d->channels;
  size_t bytes = (size_t)d->w * 48;
  if (cinfo->progressive_mode || cinfo->comps_in_scan < cinfo->num_components)
    for (int c = 0; c < cinfo->num_components; c++) {
      jpeg_component_info *ci = &cinfo->comp_info[c];
      size_t bw = ci->width_in_blocks + ci->h_samp_factor;
      size_t bh = ci->height_in_blocks + ci->v_samp_factor;
      bytes += bw * bh * sizeof(JBLOCK);
    }
  return charge(d, bytes);
}

static int jpg_pixels(Dec *d, mg_Tensor *t, mg_ImageMode mode) {
  j_decompress_ptr cinfo = &d->jpg;
  if (setjmp(d->jmp)) return fail_decode(d);
  jpeg_start_decompress(cinfo);
  if ((int64_t)cinfo->output_width != d->w || (int64_t)cinfo->output_height != d->h ||
      cinfo->output_components != d->row_ch)
    return fail(d, MG_EIO, "unexpected JPEG layout (%u x %u x %d)",
                cinfo->output_width, cinfo->output_height,
                cinfo->output_components);
  uint8_t *out = mg_data(t);
  int64_t plane = d->w * d->h;
  while (cinfo->output_scanline < cinfo->output_height) {
    int64_t y = cinfo->output_scanline;
    JSAMPROW r = d->row;
    if (jpeg_read_scanlines(cinfo, &r, 1) != 1)
      return fail(d, MG_EIO, "corrupt JPEG: no data for row %" PRId64, y + 1);
    put_row(out + y * d->w, plane, d->row, d->w, d->row_ch, mode);
  }
  jpeg_finish_decompress(cinfo);
  /* libjpeg decodes a cut file to its end (gray where data is missing);
   * Pillow refuses it ("image file is truncated"), and so do we. */
  if (d->src.eof || d->src.err) return fail_decode(d);
  return MG_OK;
}

/* ---- telling the format --------------------------------------------------------- */

enum { FMT_PNG, FMT_JPEG };

/* Sets *fmt from the first bytes, or fails naming what the file is. */
static int sniff(Dec *d, int *fmt) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  static const uint8_t jpg_sig[3] = {0xFF, 0xD8, 0xFF};
  size_t n = src_fill(&d->src, 12);
  const uint8_t *p = d->src.p;
  if (d->src.err) return fail(d, MG_EIO, "reading failed: %s", strerror(d->src.err));
  if (n == 0) return fail(d, MG_EIO, "empty (0 bytes), not an image");
  if (!memcmp(p, png_sig, n < 8 ? n : 8)) {
    *fmt = FMT_PNG;
    d->format = "PNG";
  } else if (!memcmp(p, jpg_sig, n < 3 ? n : 3)) {
    *fmt = FMT_JPEG;
    d->format = "JPEG";
  } else {
    const char *what = NULL;
    if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6))) what = "GIF";
    else if (n >= 2 && !memcmp(p, "BM", 2)) what = "BMP";
    else if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) what = "WebP";
    else if (n >= 4 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4))) what = "TIFF";
    else if (n >= 2 && p[0] == 'P' && p[1] >= '1' && p[1] <= '6') what = "PNM (PBM/PGM/PPM)";
    if (what)
      return fail(d, MG_EIO, "a %s image; moongrad decodes PNG and JPEG only", what);
    char hex[3 * 8 + 1] = "";
    for (size_t i = 0; i < n && i < 8; i++)
      snprintf(hex + 3 * i, sizeof hex - 3 * i, "%02x ", p[i]);
    hex[3 * (n < 8 ? n : 8) - 1] = '\0';
    return fail(d, MG_EIO, "not a PNG or JPEG image (it starts with bytes %s)", hex);
  }
  if (n < (*fmt == FMT_PNG ? 8u : 3u)) {
    d->src.eof = 1;
    return fail_decode(d);
  }
  return MG_OK;
}

/* ---- decoding ------------------------------------------------------------------------ */

static void dec_free(Dec *d) {
  if (d->png) png_destroy_read_struct(&d->png, d->info ? &d->info : NULL, NULL);
  if (d->jpg_made) jpeg_destroy_decompress(&d->jpg);
  free(d->row);
  free(d->rows);
  if (d->charged) mg_uncharge(d->ctx, d->charged);
  if (d->src.fd >= 0) close(d->src.fd);
  free(d->src.buf);
}

/* The header into d (and *info when asked); then, without info, the
 * pixels into a new tensor. */
static int decode(Dec *d, mg_Tensor **out, const mg_ImageOptions *opt,
                  mg_ImageInfo *info) {
  mg_ImageOptions def = {MG_IMAGE_AUTO, MG_IMAGE_MAX_PIXELS};
  if (!opt) opt = &def;
  if ((unsigned)opt->mode >= MG_NIMAGE_MODES)
    return fail(d, MG_EARG, "unknown mode %d", (int)opt->mode);
  int fmt = FMT_PNG, st = sniff(d, &fmt);
  if (st) return st;
  if (fmt == FMT_PNG) st = png_open(d);
  else st = jpg_open(d);
  if (st || (st = fmt == FMT_PNG ? png_header(d) : jpg_header(d))) return st;
  if (info) {
    info->width = d->w, info->height = d->h;
    info->channels = d->channels;
    info->format = d->format;
    return check_pixels(d, NULL);
  }
  if ((st = check_pixels(d, opt))) return st;
  if ((st = fmt == FMT_PNG ? png_setup(d, opt->mode) : jpg_setup(d)) ||
      (st = alloc_rows(d)))
    return st;
  int64_t shape[3] = {mode_channels(opt->mode, d->channels), d->h, d->w};
  mg_Tensor *t = NULL;
  if (mg_empty(d->ctx, &t, MG_U8, 3, shape))
    return mg_read_nomem(d->ctx, d->who, d->name);
  st = fmt == FMT_PNG ? png_pixels(d, t, opt->mode) : jpg_pixels(d, t, opt->mode);
  if (st) {
    mg_tensor_decref(t);
    return st;
  }
  *out = t;
  return MG_OK;
}

static int decode_file(mg_Context *ctx, mg_Tensor **out, mg_ImageInfo *info,
                       const char *who, const char *path,
                       const mg_ImageOptions *opt) {
  Dec d;
  memset(&d, 0, sizeof d);
  d.ctx = ctx, d.who = who, d.name = path;
  int st = mg_file_open_read(ctx, who, path, &d.src.fd, NULL);
  if (st) return st;
  if (!(d.src.buf = malloc(FILE_CHUNK))) {
    close(d.src.fd);
    return mg_error(ctx, MG_ENOMEM, "%s: %s: out of memory", who, path);
  }
  d.src.p = d.src.buf;
  st = decode(&d, out, opt, info);
  dec_free(&d);
  return st;
}

int mg_image_load(mg_Context *ctx, mg_Tensor **out, const char *who,
                  const char *path, const mg_ImageOptions *opt) {
  return decode_file(ctx, out, NULL, who, path, opt);
}

int mg_image_info(mg_Context *ctx, mg_ImageInfo *info, const char *who,
                  const char *path) {
  return decode_file(ctx, NULL, info, who, path, NULL);
}

int mg_image_decode(mg_Context *ctx, mg_Tensor **out, const char *who,
                    const char *name, const void *data, size_t n,
                    const mg_ImageOptions *opt) {
  Dec d;
  memset(&d, 0, sizeof d);
  d.ctx = ctx, d.who = who, d.name = name;
  d.src.fd = -1;
  d.src.p = data;
  d.src.n = d.src.total = n;
  int st = decode(&d, out, opt, NULL);
  dec_free(&d);
  return st;
}

/* ---- saving ------------------------------------------------------------------------------ */

typedef struct {
  mg_Context *ctx;
  const char *who, *path;
  mg_FileWriter fw;    /* the file, when buf is NULL */
  char **buf;          /* or a growing malloc'd buffer */
  size_t len, cap;
  int io_failed;       /* mg_file_write failed (its message is in ctx) */
  char msg[256];       /* libpng's error */
  uint8_t *row;        /* one row, interleaved */
  png_structp png;
  png_infop info;
} Enc;

static void enc_err(png_structp png, png_const_charp msg) {
  Enc *e = png_get_error_ptr(png);
  snprintf(e->msg, sizeof e->msg, "%s", msg);
  png_longjmp(png, 1);
}

static int buf_write(Enc *e, const void *p, size_t n) {
  if (e->len + n > e->cap) {
    size_t cap = e->cap ? e->cap : 4096;
    while (cap < e->len + n) cap *= 2;
    char *b = realloc(*e->buf, cap);
    if (!b) return mg_error(e->ctx, MG_ENOMEM, "%s: out of memory for a PNG of %zu bytes",
                            e->who, e->len + n);
    *e->buf = b, e->cap = cap;
  }
  memcpy(*e->buf + e->len, p, n);
  e->len += n;
  return MG_OK;
}

static void enc_write(png_structp png, png_bytep p, size_t n) {
  Enc *e = png_get_io_ptr(png);
  if (e->buf ? buf_write(e, p, n) : mg_file_write(e->ctx, &e->fw, p, n)) {
    e->io_failed = 1;
    png_error(png, "writing failed");
  }
}

static void enc_flush(png_structp png) { (void)png; }
static void enc_warn(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Element (c, y, x) of t as a byte, as save_image stores it. */
static inline uint8_t to_byte(const mg_Tensor *t, const char *base, int64_t off) {
  switch (t->dtype) {
  case MG_U8: return ((const uint8_t *)base)[off];
  case MG_F32: {
    float v = ((const float *)base)[off] * 255.0f;
    v = v + 0.5f;
    return v >= 255.0f ? 255 : v >= 0.0f ? (uint8_t)v : 0; /* NaN: 0 */
  }
  default: {
    double v = ((const double *)base)[off] * 255.0;
    v = v + 0.5;
    return v >= 255.0 ? 255 : v >= 0.0 ? (uint8_t)v : 0;
  }
  }
}

static int enc_rows(Enc *e, const mg_Tensor *t) {
  static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                               PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  int64_t C = t->shape[0], H = t->shape[1], W = t->shape[2];
  if (setjmp(png_jmpbuf(e->png))) {
    if (e->io_failed) return MG_EIO;
    return mg_error(e->ctx, MG_EIO, "%s: %s: libpng failed: %s", e->who,
                    e->path, e->msg);
  }
  png_set_write_fn(e->png, e, enc_write, enc_flush);
  png_set_IHDR(e->png, e->info, (png_uint_32)W, (png_uint_32)H, 8, types[C],
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(e->png, e->info);
  const char *base = (const char *)t->storage->data;
  for (int64_t y = 0; y < H; y++) {
    for (int64_t x = 0; x < W; x++)
      for (int64_t c = 0; c < C; c++)
        e->row[x * C + c] = to_byte(t, base, t->offset + c * t->stride[0] +
                                    y * t->stride[1] + x * t->stride[2]);
    png_write_row(e->png, e->row);
  }
  png_write_end(e->png, NULL);
  return MG_OK;
}

/* Checks t as an image to store; path names it in messages. */
static int check_savable(mg_Context *ctx, const char *who, const char *path,
                         const mg_Tensor *t) {
  if (t->dtype != MG_U8 && t->dtype != MG_F32 && t->dtype != MG_F64)
    return mg_error(ctx, MG_EARG, "%s: %s: expected a uint8 tensor, or a "
                    "float one with values in [0, 1], got %s", who, path,
                    mg_dtype_name(t->dtype));
  char s[MG_SHAPE_BUFSZ];
  if (t->ndim != 3 || t->shape[0] < 1 || t->shape[0] > 4 || t->shape[1] < 1 ||
      t->shape[2] < 1 || t->shape[1] > PNG_UINT_31_MAX ||
      t->shape[2] > PNG_UINT_31_MAX)
    return mg_error(ctx, MG_EARG, "%s: %s: expected an image [C, H, W] with "
                    "C = 1, 2, 3 or 4 and H, W from 1 to 2^31 - 1, got shape %s",
                    who, path, mg_shape_str(s, sizeof s, t->ndim, t->shape));
  return MG_OK;
}

/* Encodes t into the file at path, or into *buf (*len bytes) when buf is
 * not NULL. */
static int encode_png(mg_Context *ctx, const char *who, const char *path,
                      const mg_Tensor *t, char **buf, size_t *len) {
  int st = check_savable(ctx, who, path, t);
  if (st) return st;
  Enc e;
  memset(&e, 0, sizeof e);
  e.ctx = ctx, e.who = who, e.path = path, e.buf = buf;
  size_t rowbytes = (size_t)t->shape[0] * (size_t)t->shape[2];
  st = mg_charge(ctx, rowbytes);
  if (st) return mg_read_nomem(ctx, who, path);
  if (!(e.row = malloc(rowbytes)) ||
      !(e.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, enc_err, enc_warn)) ||
      !(e.info = png_create_info_struct(e.png))) {
    st = mg_error(ctx, MG_ENOMEM, "%s: %s: out of memory for a row of %zu bytes",
                  who, path, rowbytes);
  } else if (buf) {
    *buf = NULL;
    if ((st = enc_rows(&e, t))) {
      free(*buf);
      *buf = NULL;
    }
    *len = e.len;
  } else if (!(st = mg_file_begin(ctx, &e.fw, who, path, NULL))) {
    if ((st = enc_rows(&e, t))) mg_file_abort(&e.fw);
    else st = mg_file_commit(ctx, &e.fw);
  }
  if (e.png) png_destroy_write_struct(&e.png, e.info ? &e.info : NULL);
  free(e.row);
  mg_uncharge(ctx, rowbytes);
  return st;
}

int mg_image_save(mg_Context *ctx, const char *who, const char *path,
                  const mg_Tensor *t) {
  return encode_png(ctx, who, path, t, NULL, NULL);
}

int mg_image_encode_png(mg_Context *ctx, const char *who, const mg_Tensor *t,
                        char **png, size_t *len) {
  return encode_png(ctx, who, "<memory>", t, png, len);
}
