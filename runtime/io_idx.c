/*
 * io_idx.c — the IDX reader (MNIST, Fashion-MNIST) through zlib.
 *
 * zlib reads a gzip-compressed file and a plain one alike (io_read.c), so
 * "train-images-idx3-ubyte.gz" and its gunzipped twin both work. The data
 * is decoded chunk by chunk straight into the result tensor (big-endian
 * source -> double -> the result's dtype, scaled), so a 47 MB file never
 * needs a second 47 MB buffer, and the whole read is one pass of inflate
 * plus one of conversion. The file is read to its end, which makes zlib
 * check the gzip trailer and shows data the dims do not account for.
 */
#include <stdint.h>
#include <string.h>

#include "io_read.h"
#include "mg_io.h"

#define OP "read_idx"
#define CHUNK (1 << 16) /* elements decoded per step (fits in L2 as doubles) */

/* ---- the type byte ------------------------------------------------------------ */

typedef struct {
  int code;          /* the IDX type byte */
  const char *name;  /* for messages */
  int size;          /* bytes per element */
  mg_DType def;      /* default result dtype */
} IdxType;

static const IdxType idx_types[] = {
    {0x08, "ubyte", 1, MG_F32},  {0x09, "byte", 1, MG_F32},
    {0x0B, "short", 2, MG_F32},  {0x0C, "int", 4, MG_I64},
    {0x0D, "float", 4, MG_F32},  {0x0E, "double", 8, MG_F64},
};
#define NTYPES ((int)(sizeof idx_types / sizeof idx_types[0]))

static const IdxType *idx_type(int code) {
  for (int i = 0; i < NTYPES; i++)
    if (idx_types[i].code == code) return &idx_types[i];
  return NULL;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- decoding -------------------------------------------------------------------- */

/* src holds n big-endian elements of type code; dst receives them. */
static void decode(double *dst, const unsigned char *src, int64_t n, int code) {
  switch (code) {
  case 0x08:
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
    break;
  case 0x09:
    for (int64_t i = 0; i < n; i++) dst[i] = (signed char)src[i];
    break;
  case 0x0B:
    for (int64_t i = 0; i < n; i++)
      dst[i] = (int16_t)(uint16_t)(src[2 * i] << 8 | src[2 * i + 1]);
    break;
  case 0x0C:
    for (int64_t i = 0; i < n; i++) dst[i] = (int32_t)be32(src + 4 * i);
    break;
  case 0x0D:
    for (int64_t i = 0; i < n; i++) {
      uint32_t u = be32(src + 4 * i);
      float f;
      memcpy(&f, &u, 4);
      dst[i] = f;
    }
    break;
  case 0x0E:
    for (int64_t i = 0; i < n; i++) {
      uint64_t u = (uint64_t)be32(src + 8 * i) << 32 | be32(src + 8 * i + 4);
      double d;
      memcpy(&d, &u, 8);
      dst[i] = d;
    }
    break;
  }
}

/* out[0..n) = src * scale in out's dtype. */
static void store(void *out, mg_DType dt, const double *src, int64_t n,
                  double scale) {
  switch (dt) {
  case MG_F32: {
    float *o = out;
    if (scale == 1)
      for (int64_t i = 0; i < n; i++) o[i] = (float)src[i];
    else
      for (int64_t i = 0; i < n; i++) o[i] = (float)(src[i] * scale);
    break;
  }
  case MG_F64: {
    double *o = out;
    for (int64_t i = 0; i < n; i++) o[i] = src[i] * scale;
    break;
  }
  case MG_U8: { /* ubyte files only (read_idx checks): exact */
    uint8_t *o = out;
    for (int64_t i = 0; i < n; i++) o[i] = (uint8_t)src[i];
    break;
  }
  default: { /* int64: integer sources are exact; floats truncate */
    int64_t *o = out;
    for (int64_t i = 0; i < n; i++)
      o[i] = src[i] == src[i] && src[i] > -9.2e18 && src[i] < 9.2e18
                 ? (int64_t)src[i] : 0;
    break;
  }
  }
}

/* ---- the reader ---------------------------------------------------------------- */

static int read_header(mg_GzFile *g, const IdxType **type, int *ndim,
                       int64_t *shape) {
  mg_Context *ctx = g->ctx;
  const char *path = g->path;
  unsigned char h[4 * MG_MAXDIM];
  size_t got;
  int st = mg_gz_read(g, h, 4, &got);
  if (st) return st;
  if (got < 4)
    return mg_error(ctx, MG_EARG, "%s: %s: truncated header: %zu of 4 magic "
                    "bytes", OP, path, got);
  *type = idx_type(h[2]);
  if (h[0] || h[1] || !*type)
    return mg_error(ctx, MG_EARG, "%s: %s: bad magic number 0x%08x (an IDX "
                    "file starts with 0x0000, a type byte 08/09/0B/0C/0D/0E "
                    "and the number of dimensions)", OP, path, be32(h));
  *ndim = h[3];
  if (*ndim < 1 || *ndim > MG_MAXDIM)
    return mg_error(ctx, MG_EARG, "%s: %s: %d dimensions in the header "
                    "(1 to %d supported)", OP, path, *ndim, MG_MAXDIM);
  if ((st = mg_gz_read(g, h, 4 * (size_t)*ndim, &got))) return st;
  if (got < 4 * (size_t)*ndim)
    return mg_error(ctx, MG_EARG, "%s: %s: truncated header: %zu of %d bytes "
                    "of dimensions", OP, path, got, 4 * *ndim);
  int64_t total = (*type)->size;
  for (int d = 0; d < *ndim; d++) {
    shape[d] = be32(h + 4 * d);
    if (shape[d] && total > INT64_MAX / 16 / shape[d]) {
      char s[MG_SHAPE_BUFSZ];
      return mg_error(ctx, MG_EARG, "%s: %s: dims %s are too large", OP, path,
                      mg_shape_str(s, sizeof s, d + 1, shape));
    }
    total *= shape[d];
  }
  return MG_OK;
}

/* Decodes the data section into r (numel elements of type t), then reads
 * on to the end of the file, which must come right after. */
static int read_data(mg_GzFile *g, const IdxType *t, mg_Tensor *r,
                     double scale) {
  mg_Context *ctx = g->ctx;
  int64_t n = mg_numel(r), done = 0;
  size_t es = mg_dtype_size(r->dtype), chunk = (size_t)CHUNK * t->size;
  mg_ReadBuf raw = {0}, tmp = {0};
  int st;
  if ((st = mg_readbuf_reserve(ctx, &raw, chunk)) ||
      (st = mg_readbuf_reserve(ctx, &tmp, CHUNK * sizeof(double)))) {
    st = mg_read_nomem(ctx, OP, g->path);
    goto done;
  }
  while (done < n) {
    int64_t k = n - done < CHUNK ? n - done : CHUNK;
    size_t got;
    if ((st = mg_gz_read(g, raw.p, (size_t)k * t->size, &got))) goto done;
    int64_t whole = (int64_t)got / t->size;
    decode((double *)tmp.p, (unsigned char *)raw.p, whole, t->code);
    store((char *)mg_data(r) + done * es, r->dtype, (double *)tmp.p, whole,
          scale);
    if (got < (size_t)k * t->size) {
      st = mg_error(ctx, MG_EARG, "%s: %s: truncated: expected %lld bytes "
                    "of data, got %lld", OP, g->path,
                    (long long)(n * t->size),
                    (long long)(done * t->size + (int64_t)got));
      goto done;
    }
    done += k;
  }
  /* Anything after the data means the dims are not the data's; one chunk
   * of it is enough to say so (a gzip bomb of trailing zeros is not
   * inflated to the end). */
  size_t extra;
  if ((st = mg_gz_read(g, raw.p, chunk, &extra))) goto done;
  if (extra) {
    char s[MG_SHAPE_BUFSZ];
    st = mg_error(ctx, MG_EARG, "%s: %s: %s%zu trailing bytes after the %lld "
                  "bytes of data that dims %s describe (wrong dims?)", OP,
                  g->path, extra == chunk ? "at least " : "", extra,
                  (long long)(n * t->size),
                  mg_shape_str(s, sizeof s, r->ndim, r->shape));
  }
done:
  mg_readbuf_free(ctx, &raw);
  mg_readbuf_free(ctx, &tmp);
  return st;
}

int mg_read_idx(mg_Context *ctx, mg_Tensor **out, const char *path,
                const mg_IdxOptions *opt) {
  mg_IdxOptions o = opt ? *opt : (mg_IdxOptions){.dtype = -1, .scale = 1};
  if (o.dtype >= MG_NDTYPES)
    return mg_error(ctx, MG_EARG, "%s: unknown dtype %d", OP, o.dtype);
  if (o.dtype >= 0 && o.dtype != MG_U8 && !mg_dtype_computes((mg_DType)o.dtype))
    return mg_error(ctx, MG_EARG, "%s: dtype %s is not read directly (float32, "
                    "float64, int64 or uint8; convert the tensor with :to())", OP,
                    mg_dtype_name((mg_DType)o.dtype));
  mg_GzFile g;
  int st = mg_gz_open(ctx, &g, OP, path, 1 << 18);
  if (st) return st;
  const IdxType *type = NULL;
  int ndim = 0;
  int64_t shape[MG_MAXDIM];
  mg_Tensor *r = NULL;
  if ((st = read_header(&g, &type, &ndim, shape))) goto done;
  mg_DType dt = o.dtype < 0 ? type->def : (mg_DType)o.dtype;
  if (mg_dtype_is_int(dt) && o.scale != 1) {
    st = mg_error(ctx, MG_EARG, "%s: %s: a scale of %g needs a float dtype, "
                  "not %s", OP, path, o.scale, mg_dtype_name(dt));
    goto done;
  }
  if (dt == MG_U8 && type->code != 0x08) {
    st = mg_error(ctx, MG_EARG, "%s: %s: uint8 holds ubyte data as it is; "
                  "this file's %s data needs float32, float64 or int64", OP,
                  path, type->name);
    goto done;
  }
  if ((st = mg_empty(ctx, &r, dt, ndim, shape))) {
    if (st == MG_ENOMEM) st = mg_read_nomem(ctx, OP, path);
    goto done;
  }
  if ((st = read_data(&g, type, r, o.scale))) goto done;
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(r);
  mg_gz_close(&g);
  return st;
}
