/*
 * io_read.h — what the dataset file readers (io_idx.c, io_csv.c) share:
 * reading a file through zlib with every error reported, buffers whose
 * memory counts against the state's memory limit, and out-of-memory
 * messages that name the file.
 *
 * A few hundred bytes of gzip can inflate to gigabytes, so a reader must
 * neither hold memory the limit does not see nor trust a stream whose CRC
 * was never checked:
 *
 *   mg_GzFile g;
 *   if (mg_gz_open(ctx, &g, "read_csv", path, 1 << 16)) return MG_EIO;
 *   size_t got;
 *   int st = mg_gz_read(&g, buf, n, &got);  // got < n: the end, verified
 *   mg_gz_close(&g);
 */
#ifndef IO_READ_H
#define IO_READ_H

#include <zlib.h>

#include "mg_internal.h"

/* ---- reading through zlib ----------------------------------------------- */

typedef struct {
  gzFile f;          /* the open file */
  mg_Context *ctx;   /* where messages go */
  const char *op;    /* the reader, for messages ("read_csv") */
  const char *path;  /* the file, for messages */
  size_t charged;    /* bytes of zlib's buffers charged to the limit */
  uint64_t done;     /* bytes of data delivered so far */
} mg_GzFile;

/* Opens path, gzip-compressed or plain (zlib tells them apart), with zlib
 * buffers for bufsize bytes of input, and charges them to the memory limit.
 * Fails with MG_EIO ("read_csv: cannot open /d/x.csv (No such file or
 * directory)") or MG_ENOMEM naming the file; on failure g needs no close. */
int mg_gz_open(mg_Context *ctx, mg_GzFile *g, const char *op,
               const char *path, unsigned bufsize);

/* Reads up to n bytes into buf and sets *got. Fewer than n only at the end
 * of the data, and only once zlib has checked the CRC-32 and length in the
 * trailer of every gzip member. Fails with MG_EIO and a message naming the
 * file for a read error, corrupt gzip data (a wrong CRC or length
 * included) or a gzip stream that ends early (a missing or cut trailer
 * included); *got then holds the bytes delivered before the failure. */
int mg_gz_read(mg_GzFile *g, void *buf, size_t n, size_t *got);

/* Closes the file and gives its charge back. */
void mg_gz_close(mg_GzFile *g);

/* ---- buffers charged to the memory limit ------------------------------- */

typedef struct {
  char *p;     /* the bytes, or NULL */
  size_t cap;  /* bytes allocated, all charged (mg_charge) */
} mg_ReadBuf;

/* Makes b hold at least need bytes, keeping its contents: its capacity at
 * least doubles (from 64 KiB), through realloc. Fails with MG_ENOMEM and
 * the allocator's message ("not enough memory for N more bytes: the memory
 * limit is ..."), leaving b as it was. */
int mg_readbuf_reserve(mg_Context *ctx, mg_ReadBuf *b, size_t need);

/* Gives back the capacity past n bytes (best effort: b stays as it was if
 * the system does not shrink it). */
void mg_readbuf_shrink(mg_Context *ctx, mg_ReadBuf *b, size_t n);

/* Frees b and gives its charge back; b is then empty and can be reused. */
void mg_readbuf_free(mg_Context *ctx, mg_ReadBuf *b);

/* Rewrites the MG_ENOMEM message in ctx ("not enough memory for a tensor of
 * N bytes: the memory limit is ...") as "op: not enough memory reading
 * path: for a tensor of N bytes: the memory limit is ..."; returns
 * MG_ENOMEM. A message that already starts with "op:" is left as it is. */
int mg_read_nomem(mg_Context *ctx, const char *op, const char *path);

#endif
