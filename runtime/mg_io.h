/*
 * mg_io.h — dataset file readers of the core: IDX (MNIST, Fashion-MNIST)
 * and numeric CSV, both read through zlib, so a gzip-compressed file and a
 * plain one are read the same way.
 *
 *   mg_Tensor *x = NULL;
 *   mg_IdxOptions o = {.dtype = -1, .scale = 1.0 / 255};
 *   if (mg_read_idx(ctx, &x, "train-images-idx3-ubyte.gz", &o))
 *     fprintf(stderr, "%s\n", mg_last_error(ctx));
 *
 * Like the rest of the core these return a status and leave a message in
 * the context; every message names the reader and the file ("read_idx:
 * /d/x.gz: bad magic number 0x00000000 (an IDX file starts with 0x0000 then
 * its type byte and dimension count)"). Nothing is read into *out unless
 * the whole file was valid.
 */
#ifndef MG_IO_H
#define MG_IO_H

#include "mg_core.h"

/* ---- IDX (io_idx.c) -------------------------------------------------------
 * The format of MNIST-style files: 0x00 0x00, a type byte (0x08 ubyte, 0x09
 * byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double), the number of dims,
 * then each dim as a big-endian uint32 and the big-endian elements, row
 * major. The tensor gets the header's shape. */
typedef struct {
  int dtype;     /* an mg_DType, or -1 for the type's default: float32 for
                    ubyte, byte, short and float (exact), int64 for int,
                    float64 for double */
  double scale;  /* every value is multiplied by it (1 = as stored); with
                    an int64 result it must be 1 */
} mg_IdxOptions;

/* Reads the IDX file at path (gzip-compressed or not) into a new
 * contiguous tensor. Fails with MG_EIO when the file cannot be opened or
 * read, with MG_EARG for a bad magic number, a dimension count of 0 or
 * more than MG_MAXDIM, data shorter than the dims say ("truncated") or
 * longer ("trailing bytes"). opt may be NULL (defaults). */
int mg_read_idx(mg_Context *ctx, mg_Tensor **out, const char *path,
                const mg_IdxOptions *opt);

/* ---- CSV (io_csv.c) -------------------------------------------------------
 * A table of numbers, one row per line. Cells are separated by one
 * delimiter character and may be surrounded by blanks; a cell is anything
 * strtod reads whole (so "nan" and "inf" too). Blank lines are skipped;
 * "\r\n" line ends are fine. Header cells may be quoted ("name"). */
typedef struct {
  int header;      /* 1: the first line names the columns; 0: it is data;
                      -1: it names them when any of its cells is not a
                      number */
  char delimiter;  /* ',' usually */
  mg_DType dtype;  /* MG_F32 or MG_F64 */
} mg_CsvOptions;

/* Reads the CSV file at path (gzip-compressed or not) into a new [rows,
 * cols] tensor. When the file has a header, *names receives one malloc'd
 * block: cols pointers to the column names followed by their text (free it
 * with one free()); otherwise *names is NULL. *ncols receives cols (also for
 * a file with no rows). A cell that is not a number, or a row with another
 * number of cells than the first, fails with MG_EARG naming the file, the
 * line and the column ("read_csv: d.csv:3: column 2 (\"y\"): \"abc\" is not
 * a number"). */
int mg_read_csv(mg_Context *ctx, mg_Tensor **out, char ***names,
                int64_t *ncols, const char *path, const mg_CsvOptions *opt);

#endif
