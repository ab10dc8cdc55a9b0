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
 * the whole file was valid, the CRC-32 and length trailer of a gzip file
 * included (a file cut anywhere fails with MG_EIO, "truncated").
 *
 * The memory a reader holds while it reads (zlib's buffers, a line, the
 * numbers parsed so far) counts against the context's memory limit as
 * tensors do, so a small .gz that inflates to gigabytes fails with
 * MG_ENOMEM at the limit ("read_csv: not enough memory reading /d/x.csv.gz:
 * for 8388608 more bytes: the memory limit is ...").
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
 * read or its gzip data is corrupt or cut short, with MG_EARG for a bad
 * magic number, a dimension count of 0 or more than MG_MAXDIM, data shorter
 * than the dims say ("truncated") or longer ("trailing bytes"), with
 * MG_ENOMEM naming the file past the memory limit. opt may be NULL
 * (defaults). */
int mg_read_idx(mg_Context *ctx, mg_Tensor **out, const char *path,
                const mg_IdxOptions *opt);

/* ---- CSV (io_csv.c) -------------------------------------------------------
 * A table of numbers, one row per line. Lines end with "\n", "\r\n" or a
 * lone "\r" (old Mac files); blank lines are skipped; a UTF-8 byte order
 * mark at the start is skipped (a UTF-16 one is an error). Cells are
 * separated by one delimiter character and may be surrounded by blanks
 * (space, tab) or quoted ("name", with "" for a quote). A data cell is a
 * decimal number, [+-]digits[.digits][e[+-]digits] with a digit on at
 * least one side of the point, or inf, infinity or nan in any case with an
 * optional sign (what Python's float() and pandas read). Other forms
 * strtod would take ("0x10", "0x1p3", "nan(1)", other whitespace) and
 * partial numbers ("1e", "1.2.3") are errors, as are a NUL byte in a cell
 * and text after a closing quote. */
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
 * a number"), a read or gzip error with MG_EIO, the memory limit with
 * MG_ENOMEM, each naming the file. */
int mg_read_csv(mg_Context *ctx, mg_Tensor **out, char ***names,
                int64_t *ncols, const char *path, const mg_CsvOptions *opt);

#endif
