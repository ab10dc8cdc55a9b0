/*
 * io_idx.c — the IDX reader (MNIST, Fashion-MNIST) through zlib.
 *
 * gzopen/gzread read a gzip-compressed file and a plain one alike, so
 * "train-images-idx3-ubyte.gz" and its gunzipped twin both work. The data
 * is decoded chunk by chunk straight into the result tensor (big-endian
 * source -> double -> the result's dtype, scaled), so a 47 MB file never
 * needs a second 47 MB buffer, and the whole read is one pass of inflate
 * plus one of conversion.
 */
#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mg_internal.h"
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

/* ---- reading through zlib ------------------------------------------------------ */

/* zlib's message without the "path: " it may start with. */
static const char *gz_message(gzFile f, const char *path, int *code) {
  const char *m = gzerror(f, code);
  size_t n = strlen(path);
  if (!strncmp(m, path, n) && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
  return *code == Z_ERRNO ? strerror(errno) : m;
}

/* Reads up to n bytes; returns how many. A short count means the end of
 * the data or an error: err then holds a message for a read or gzip
 * error, and is empty at the end of the data,
 * including a gzip stream that ends early (zlib's Z_BUF_ERROR), which the
 * caller reports as truncated data. */
#define ERRSZ 160

static int64_t read_some(gzFile f, const char *path, void *buf, int64_t n,
                         char *err /* [ERRSZ] */) {
  int64_t got = 0;
  err[0] = '\0';
  while (got < n) {
    int64_t want = n - got;
    int r = gzread(f, (char *)buf + got,
                   (unsigned)(want > INT_MAX / 2 ? INT_MAX / 2 : want));
    if (r <= 0) {
      int code;
      const char *m = gz_message(f, path, &code);
      if (code == Z_DATA_ERROR)
        snprintf(err, ERRSZ, "corrupt gzip data (%s)", m);
      else if (code != Z_OK && code != Z_BUF_ERROR)
        snprintf(err, ERRSZ, "%s", m);
      return got;
    }
    got += r;
  }
  return got;
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

static int read_header(mg_Context *ctx, gzFile f, const char *path,
                       const IdxType **type, int *ndim, int64_t *shape) {
  unsigned char h[4 * MG_MAXDIM];
  char err[ERRSZ];
  int64_t got = read_some(f, path, h, 4, err);
  if (got < 4)
    return err[0] ? mg_error(ctx, MG_EIO, "%s: %s: %s", OP, path, err)
               : mg_error(ctx, MG_EARG, "%s: %s: truncated header: %lld of "
                          "4 magic bytes", OP, path, (long long)got);
  *type = idx_type(h[2]);
  if (h[0] || h[1] || !*type)
    return mg_error(ctx, MG_EARG, "%s: %s: bad magic number 0x%08x (an IDX "
                    "file starts with 0x0000, a type byte 08/09/0B/0C/0D/0E "
                    "and the number of dimensions)", OP, path, be32(h));
  *ndim = h[3];
  if (*ndim < 1 || *ndim > MG_MAXDIM)
    return mg_error(ctx, MG_EARG, "%s: %s: %d dimensions in the header "
                    "(1 to %d supported)", OP, path, *ndim, MG_MAXDIM);
  got = read_some(f, path, h, 4 * (int64_t)*ndim, err);
  if (got < 4 * *ndim)
    return mg_error(ctx, MG_EARG, "%s: %s: truncated header: %lld of %d bytes "
                    "of dimensions", OP, path, (long long)got, 4 * *ndim);
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

/* Decodes the data section into r (numel elements of type t). */
static int read_data(mg_Context *ctx, gzFile f, const char *path,
                     const IdxType *t, mg_Tensor *r, double scale) {
  int64_t n = mg_numel(r), done = 0;
  size_t es = mg_dtype_size(r->dtype);
  unsigned char *raw = malloc((size_t)CHUNK * t->size);
  double *tmp = malloc(CHUNK * sizeof *tmp);
  int st = MG_OK;
  if (!raw || !tmp) {
    st = mg_error(ctx, MG_ENOMEM, "%s: not enough memory for a read buffer", OP);
    goto done;
  }
  while (done < n) {
    int64_t k = n - done < CHUNK ? n - done : CHUNK;
    char err[ERRSZ];
    int64_t got = read_some(f, path, raw, k * t->size, err);
    int64_t whole = got / t->size;
    decode(tmp, raw, whole, t->code);
    store((char *)mg_data(r) + done * es, r->dtype, tmp, whole, scale);
    if (got < k * t->size) {
      long long have = (long long)(done * t->size + got);
      long long want = (long long)(n * t->size);
      if (err[0])
        st = mg_error(ctx, MG_EIO, "%s: %s: %s after %lld of %lld bytes of "
                      "data", OP, path, err, have, want);
      else
        st = mg_error(ctx, MG_EARG, "%s: %s: truncated: expected %lld bytes "
                      "of data, got %lld", OP, path, want, have);
      goto done;
    }
    done += k;
  }
  /* Anything after the data means the dims are not the data's. Reading on
   * to the end also makes zlib check the gzip trailer (CRC and length). */
  long long extra = 0;
  for (;;) {
    char err[ERRSZ];
    int64_t got = read_some(f, path, raw, (int64_t)CHUNK * t->size, err);
    extra += got;
    if (err[0]) {
      st = mg_error(ctx, MG_EIO, "%s: %s: %s", OP, path, err);
      goto done;
    }
    if (got < (int64_t)CHUNK * t->size) break;
  }
  if (extra) {
    char s[MG_SHAPE_BUFSZ];
    st = mg_error(ctx, MG_EARG, "%s: %s: %lld trailing bytes after the %lld "
                  "bytes of data that dims %s describe (wrong dims?)", OP,
                  path, extra, (long long)(n * t->size),
                  mg_shape_str(s, sizeof s, r->ndim, r->shape));
  }
done:
  free(raw);
  free(tmp);
  return st;
}

int mg_read_idx(mg_Context *ctx, mg_Tensor **out, const char *path,
                const mg_IdxOptions *opt) {
  mg_IdxOptions o = opt ? *opt : (mg_IdxOptions){.dtype = -1, .scale = 1};
  if (o.dtype >= MG_NDTYPES)
    return mg_error(ctx, MG_EARG, "%s: unknown dtype %d", OP, o.dtype);
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return mg_error(ctx, MG_EIO, "%s: cannot open %s (%s)", OP, path,
                    errno ? strerror(errno) : "not enough memory");
  gzbuffer(f, 1 << 18);
  const IdxType *type = NULL;
  int ndim = 0, st;
  int64_t shape[MG_MAXDIM];
  mg_Tensor *r = NULL;
  if ((st = read_header(ctx, f, path, &type, &ndim, shape))) goto done;
  mg_DType dt = o.dtype < 0 ? type->def : (mg_DType)o.dtype;
  if (dt == MG_I64 && o.scale != 1) {
    st = mg_error(ctx, MG_EARG, "%s: %s: a scale of %g needs a float dtype, "
                  "not int64", OP, path, o.scale);
    goto done;
  }
  if ((st = mg_empty(ctx, &r, dt, ndim, shape)) ||
      (st = read_data(ctx, f, path, type, r, o.scale)))
    goto done;
  *out = r;
  r = NULL;
done:
  mg_tensor_decref(r);
  gzclose(f);
  return st;
}
