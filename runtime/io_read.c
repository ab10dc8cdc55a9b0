/*
 * io_read.c — reading through zlib and charged buffers for the file
 * readers (see io_read.h).
 *
 * gzread hides two things a reader must not miss. A stream that ends early
 * (the file cut anywhere, its 8-byte trailer included) is only a
 * Z_BUF_ERROR left in the file's state while gzread returns the data it
 * had, then 0, as at a clean end; and the CRC-32 and length in the trailer
 * are only checked when a read goes on past the last byte of data. So
 * mg_gz_read reads until it has all it was asked for or gzread returns 0,
 * and at 0 asks gzerror which of the two ends it was.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_read.h"
#include "mg_file.h"

/* gzopen's in and out buffers (3 x bufsize), inflate's state and its
 * 32 KiB window, rounded up. */
#define ZLIB_BYTES(bufsize) (3 * (size_t)(bufsize) + (48u << 10))

int mg_gz_open(mg_Context *ctx, mg_GzFile *g, const char *op,
               const char *path, unsigned bufsize) {
  *g = (mg_GzFile){.ctx = ctx, .op = op, .path = path};
  if (mg_charge(ctx, ZLIB_BYTES(bufsize))) return mg_read_nomem(ctx, op, path);
  g->charged = ZLIB_BYTES(bufsize);
  /* Opened by the file routine, without blocking: a FIFO or a device is
   * refused at once, where gzopen waited for a writer for ever. */
  /* On failure g is closed here (its charge given back once: callers
   * close it again, harmlessly). */
  int fd = -1, st = mg_file_open_read(ctx, op, path, &fd, NULL);
  if (st) {
    mg_gz_close(g);
    return st;
  }
  errno = 0;
  if (!(g->f = gzdopen(fd, "rb"))) {
    int e = errno;
    close(fd);
    mg_gz_close(g);
    return mg_error(ctx, MG_EIO, "%s: %s: cannot open: %s", op, path,
                    e ? strerror(e) : "not enough memory");
  }
  gzbuffer(g->f, bufsize);
  return MG_OK;
}

/* The failure gzread just had, as a message naming the file. */
static int gz_failure(mg_GzFile *g, int code) {
  int z;
  const char *m = gzerror(g->f, &z);
  /* zlib's message starts with the name it knows the file by: "<fd:3>: "
   * (gzdopen) or "path: " (gzopen). */
  if (m[0] == '<' && strstr(m, ">: ")) m = strstr(m, ">: ") + 3;
  size_t pl = strlen(g->path);
  if (!strncmp(m, g->path, pl) && m[pl] == ':' && m[pl + 1] == ' ') m += pl + 2;
  switch (code) {
  case Z_BUF_ERROR:
    return mg_error(g->ctx, MG_EIO, "%s: %s: truncated: the gzip stream is "
                    "cut short after %llu bytes of data (its end or its "
                    "CRC-32 and length trailer is missing)", g->op, g->path,
                    (unsigned long long)g->done);
  case Z_DATA_ERROR:
    return mg_error(g->ctx, MG_EIO, "%s: %s: corrupt gzip data (%s)", g->op,
                    g->path, m);
  case Z_ERRNO:
    return mg_error(g->ctx, MG_EIO, "%s: %s: %s", g->op, g->path,
                    strerror(errno));
  case Z_MEM_ERROR:
    return mg_error(g->ctx, MG_ENOMEM, "%s: not enough memory reading %s: "
                    "zlib could not allocate its buffers", g->op, g->path);
  default:
    return mg_error(g->ctx, MG_EIO, "%s: %s: %s", g->op, g->path, m);
  }
}

int mg_gz_read(mg_GzFile *g, void *buf, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    size_t want = n - *got;
    int r = gzread(g->f, (char *)buf + *got,
                   (unsigned)(want > INT_MAX / 2 ? INT_MAX / 2 : want));
    int code;
    if (r < 0) {
      gzerror(g->f, &code);
      return gz_failure(g, code);
    }
    if (r == 0) {
      gzerror(g->f, &code);
      return code == Z_OK ? MG_OK : gz_failure(g, code);
    }
    *got += (size_t)r;
    g->done += (uint64_t)r;
  }
  return MG_OK;
}

void mg_gz_close(mg_GzFile *g) {
  if (g->f) gzclose(g->f);
  g->f = NULL;
  mg_uncharge(g->ctx, g->charged);
  g->charged = 0;
}

/* ---- charged buffers ---------------------------------------------------- */

int mg_readbuf_reserve(mg_Context *ctx, mg_ReadBuf *b, size_t need) {
  if (need <= b->cap) return MG_OK;
  size_t cap = b->cap ? b->cap : (size_t)1 << 16;
  while (cap < need) {
    if (cap > SIZE_MAX / 2)
      return mg_error(ctx, MG_ENOMEM, "not enough memory for %zu more bytes",
                      need - b->cap);
    cap *= 2;
  }
  if (mg_charge(ctx, cap - b->cap)) return MG_ENOMEM;
  char *p = realloc(b->p, cap);
  if (!p) {
    mg_uncharge(ctx, cap - b->cap);
    return mg_error(ctx, MG_ENOMEM, "not enough memory for %zu more bytes "
                    "(the system refused them)", cap - b->cap);
  }
  b->p = p;
  b->cap = cap;
  return MG_OK;
}

void mg_readbuf_shrink(mg_Context *ctx, mg_ReadBuf *b, size_t n) {
  if (!n || n >= b->cap) return;
  char *p = realloc(b->p, n);
  if (!p) return;
  mg_uncharge(ctx, b->cap - n);
  b->p = p;
  b->cap = n;
}

void mg_readbuf_free(mg_Context *ctx, mg_ReadBuf *b) {
  free(b->p);
  mg_uncharge(ctx, b->cap);
  *b = (mg_ReadBuf){0};
}

int mg_read_nomem(mg_Context *ctx, const char *op, const char *path) {
  static const char lead[] = "not enough memory";
  char why[sizeof ctx->err];
  const char *m = mg_last_error(ctx);
  size_t ol = strlen(op);
  if (!strncmp(m, op, ol) && m[ol] == ':') return MG_ENOMEM; /* done already */
  if (!strncmp(m, lead, sizeof lead - 1)) {
    m += sizeof lead - 1;
    m += *m == ':';
    m += *m == ' ';
  }
  snprintf(why, sizeof why, "%s", m); /* mg_error writes over ctx->err */
  return mg_error(ctx, MG_ENOMEM, "%s: not enough memory reading %s: %s", op,
                  path, why);
}
