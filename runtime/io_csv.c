/*
 * io_csv.c — a numeric CSV reader through zlib (plain or .gz files).
 *
 * The file streams through one line buffer: each line is split in place
 * into cells at the delimiter (a quoted cell may contain it, with "" for a
 * quote), each data cell must be a decimal number, and every row must have
 * as many cells as the first. The numbers collect in a growing array of
 * the result's dtype and land in the result tensor at the end, so a
 * failure leaves nothing behind. Every buffer is charged to the state's
 * memory limit (io_read.h): a small .gz can inflate to gigabytes.
 *
 * Nothing is dropped silently: "\n", "\r\n" and a lone "\r" (old Mac
 * files) all end a line, a UTF-8 byte order mark is skipped, and a NUL
 * byte, text after a closing quote or a cell that strtod would read only
 * in part or in another notation (hexadecimal "0x10", "1e") is an error
 * naming the file, the line and the column.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io_read.h"
#include "mg_io.h"

#define OP "read_csv"

/* ---- lines ------------------------------------------------------------------- */

typedef struct {
  mg_GzFile gz;     /* the file */
  mg_ReadBuf buf;   /* text read and not yet taken: [pos, len) */
  size_t pos, len;
  size_t lf;        /* the next LF at or after pos (len: none), SIZE_MAX:
                       not looked for since the last fill */
  int eof;          /* the file has been read to its end */
  int64_t line;     /* the number of the line last taken */
} Lines;

/* Moves the untaken text to the front of the buffer, grows the buffer when
 * that text fills half of it (a long line), and reads the file into the
 * rest, keeping one spare byte past the text (line_next's terminator). */
static int lines_fill(Lines *r) {
  mg_Context *ctx = r->gz.ctx;
  memmove(r->buf.p, r->buf.p + r->pos, r->len - r->pos);
  r->len -= r->pos;
  r->pos = 0;
  r->lf = SIZE_MAX;
  if (r->buf.cap - r->len - 1 < r->buf.cap / 2 &&
      mg_readbuf_reserve(ctx, &r->buf, r->buf.cap + 1))
    return MG_ENOMEM;
  size_t want = r->buf.cap - r->len - 1, got;
  int st = mg_gz_read(&r->gz, r->buf.p + r->len, want, &got);
  if (st) return st;
  r->len += got;
  r->eof = got < want;
  return MG_OK;
}

/* Opens path and reads its start: a UTF-8 byte order mark is skipped, a
 * UTF-16 one refused (its text would show as NUL bytes). */
static int lines_open(mg_Context *ctx, Lines *r, const char *path) {
  *r = (Lines){0};
  int st = mg_gz_open(ctx, &r->gz, OP, path, 1 << 16);
  if (st) return st;
  if (mg_readbuf_reserve(ctx, &r->buf, 1 << 16)) return MG_ENOMEM;
  if ((st = lines_fill(r))) return st;
  const unsigned char *p = (const unsigned char *)r->buf.p;
  if (r->len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) r->pos = 3;
  else if (r->len >= 2 && ((p[0] == 0xFF && p[1] == 0xFE) ||
                           (p[0] == 0xFE && p[1] == 0xFF)))
    return mg_error(ctx, MG_EARG, "%s: %s: a UTF-16 file (it starts with a "
                    "UTF-16 byte order mark); save it as UTF-8", OP, path);
  return MG_OK;
}

static void lines_close(Lines *r) {
  mg_Context *ctx = r->gz.ctx;
  mg_gz_close(&r->gz);
  if (ctx) mg_readbuf_free(ctx, &r->buf);
}

/* The next line as [*s, *e), without its line end; *e may be overwritten
 * (there is always a byte there). *have is 0 at the end of the file. */
static int line_next(Lines *r, char **s, char **e, int *have) {
  for (;;) {
    char *p = r->buf.p + r->pos, *end = r->buf.p + r->len;
    /* The first CR or LF; the search for a CR stops at the next LF, which
     * is remembered, so that a file of CR or of LF lines is scanned once. */
    if (r->lf == SIZE_MAX || r->lf < r->pos) {
      char *lf = memchr(p, '\n', (size_t)(end - p));
      r->lf = lf ? (size_t)(lf - r->buf.p) : r->len;
    }
    char *q = memchr(p, '\r', r->lf - r->pos);
    if (!q) q = r->buf.p + r->lf;
    /* A CR last in the buffer may be the first half of a CRLF. */
    if (q < end && (*q == '\n' || q + 1 < end || r->eof)) {
      size_t skip = *q == '\r' && q + 1 < end && q[1] == '\n' ? 2 : 1;
      *s = p;
      *e = q;
      r->pos = (size_t)(q - r->buf.p) + skip;
      r->line++;
      *have = 1;
      return MG_OK;
    }
    if (r->eof) {
      *have = p < end;
      if (*have) {
        *s = p;
        *e = end;
        r->pos = r->len;
        r->line++;
      }
      return MG_OK;
    }
    int st = lines_fill(r);
    if (st) return st;
  }
}

/* ---- cells ------------------------------------------------------------------- */

typedef struct {
  char *s;     /* the cell's text, unquoted, NUL-terminated in place */
  size_t len;  /* its length: a NUL before it is a NUL byte in the file */
} Cell;

static int is_blank(char c, char delim) {
  return (c == ' ' || c == '\t') && c != delim;
}

enum { SPLIT_NOMEM = -1, SPLIT_OPEN_QUOTE = -2, SPLIT_AFTER_QUOTE = -3 };

/* Splits the line [p, end) in place into cells, kept in *cells (a charged
 * buffer); returns their count, or a SPLIT_ code (*bad: the column, 0-based,
 * of text after a closing quote). */
static int64_t split(mg_Context *ctx, char *p, char *end, char delim,
                     mg_ReadBuf *cells, int64_t *bad) {
  int64_t n = 0;
  for (;;) {
    while (p < end && is_blank(*p, delim)) p++;
    char *s = p, *e;
    if (p < end && *p == '"') { /* quoted: "" is a quote */
      s = e = ++p;
      for (;;) {
        if (p >= end) return SPLIT_OPEN_QUOTE;
        if (*p == '"') {
          if (p + 1 < end && p[1] == '"') { *e++ = '"'; p += 2; continue; }
          p++;
          break;
        }
        *e++ = *p++;
      }
      while (p < end && is_blank(*p, delim)) p++;
      if (p < end && *p != delim) {
        *bad = n;
        return SPLIT_AFTER_QUOTE;
      }
    } else {
      while (p < end && *p != delim) p++;
      e = p;
      while (e > s && is_blank(e[-1], delim)) e--;
    }
    if ((size_t)(n + 1) * sizeof(Cell) > cells->cap &&
        mg_readbuf_reserve(ctx, cells, (size_t)(n + 1) * sizeof(Cell)))
      return SPLIT_NOMEM;
    char *next = p; /* at the delimiter or the end */
    ((Cell *)cells->p)[n++] = (Cell){s, (size_t)(e - s)};
    *e = '\0'; /* may overwrite the delimiter or the line end: read first */
    if (next >= end) break;
    p = next + 1;
  }
  return n;
}

static int digit(char c) { return c >= '0' && c <= '9'; }

/* s (length n) is word (lower case, length n) in any case. */
static int is_word(const char *s, size_t n, const char *word) {
  for (size_t i = 0; i < n; i++)
    if ((s[i] | 0x20) != word[i]) return 0;
  return 1;
}

/* s (length n) is "inf", "infinity" or "nan" in any case. */
static int is_special(const char *s, size_t n) {
  return n == 3 ? is_word(s, 3, "inf") || is_word(s, 3, "nan")
                : n == 8 && is_word(s, 8, "infinity");
}

/* A decimal number: [+-] digits [. digits] [e [+-] digits] (a digit on at
 * least one side of the point), or [+-] inf, infinity or nan, in any case:
 * what Python's float() and pandas read. strtod also takes hexadecimal
 * ("0x10" is 16), "nan(...)" and leading whitespace of any kind, which a
 * CSV of decimal numbers only holds by mistake. */
static int is_decimal(const char *s, size_t n) {
  const char *p = s, *end = s + n;
  if (p < end && (*p == '+' || *p == '-')) p++;
  if (p < end && !digit(*p) && *p != '.') return is_special(p, (size_t)(end - p));
  const char *d = p;
  while (p < end && digit(*p)) p++;
  int digits = p > d;
  if (p < end && *p == '.') {
    d = ++p;
    while (p < end && digit(*p)) p++;
    digits |= p > d;
  }
  if (!digits) return 0;
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-')) p++;
    d = p;
    while (p < end && digit(*p)) p++;
    if (p == d) return 0;
  }
  return p == end;
}

/* The cell as a number, blanks around it allowed; 0 if it is not one. */
static int parse_number(const Cell *c, char delim, double *v) {
  const char *s = c->s, *e = c->s + c->len;
  while (s < e && is_blank(*s, delim)) s++;
  while (e > s && is_blank(e[-1], delim)) e--;
  if (!is_decimal(s, (size_t)(e - s))) return 0;
  char *stop;
  *v = strtod(s, &stop);
  return stop == e; /* not so only under a locale whose point is not '.' */
}

/* Up to 60 bytes of the cell for a message, control bytes as \xNN. */
static const char *shown(char *out, size_t cap, const Cell *c) {
  size_t o = 0;
  for (size_t i = 0; i < c->len && i < 60 && o + 5 < cap; i++) {
    unsigned char b = (unsigned char)c->s[i];
    if (b < 0x20 || b == 0x7F) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", b);
    else out[o++] = (char)b;
  }
  out[o] = '\0';
  return out;
}

/* ---- the reader ---------------------------------------------------------------- */

typedef struct {
  mg_Context *ctx;
  const char *path;
  const mg_CsvOptions *o;
  Lines lines;
  mg_ReadBuf cells;   /* the current line's Cells */
  mg_ReadBuf vals;    /* the numbers so far, in the result's dtype */
  int64_t nvals;
  char **names;       /* the header's block (see names_block), or NULL */
  int64_t nnames;     /* how many names it holds */
  size_t names_bytes; /* its size, charged while reading */
} Reader;

/* " (\"name\")" for column j when the header names it, else "" (a row
 * may have more cells than the header). */
static const char *column_name(const Reader *r, int64_t j, char *out,
                               size_t cap) {
  out[0] = '\0';
  if (j < r->nnames) snprintf(out, cap, " (\"%.120s\")", r->names[j]);
  return out;
}

/* One malloc'd block: n pointers, then the names' text. */
static int names_block(Reader *r, const Cell *cells, int64_t n) {
  size_t text = 0;
  for (int64_t j = 0; j < n; j++) text += cells[j].len + 1;
  size_t bytes = (size_t)n * sizeof(char *) + text;
  if (mg_charge(r->ctx, bytes)) return MG_ENOMEM;
  char **names = malloc(bytes);
  if (!names) {
    mg_uncharge(r->ctx, bytes);
    return mg_error(r->ctx, MG_ENOMEM, "not enough memory for %zu more "
                    "bytes (the system refused them)", bytes);
  }
  char *p = (char *)(names + n);
  for (int64_t j = 0; j < n; j++) {
    memcpy(p, cells[j].s, cells[j].len + 1);
    names[j] = p;
    p += cells[j].len + 1;
  }
  r->names = names;
  r->nnames = n;
  r->names_bytes = bytes;
  return MG_OK;
}

/* Appends the row's numbers; *bad receives the column of a cell that is
 * not one (then nothing is appended). */
static int push_row(Reader *r, const Cell *cells, int64_t n, int64_t *bad) {
  size_t es = mg_dtype_size(r->o->dtype);
  if (mg_readbuf_reserve(r->ctx, &r->vals, (size_t)(r->nvals + n) * es))
    return MG_ENOMEM;
  for (int64_t j = 0; j < n; j++) {
    double v;
    if (!parse_number(&cells[j], r->o->delimiter, &v)) {
      *bad = j;
      return MG_EARG;
    }
    if (r->o->dtype == MG_F32) ((float *)r->vals.p)[r->nvals + j] = (float)v;
    else ((double *)r->vals.p)[r->nvals + j] = v;
  }
  r->nvals += n;
  return MG_OK;
}

/* Reads every line; *ncols receives the number of columns (-1: no line). */
static int read_rows(Reader *r, int64_t *ncols, int64_t *rows) {
  mg_Context *ctx = r->ctx;
  const char *path = r->path;
  char delim = r->o->delimiter, col[160], txt[300];
  *ncols = -1;
  *rows = 0;
  for (;;) {
    char *p, *eol;
    int have, st = line_next(&r->lines, &p, &eol, &have);
    long long line = (long long)r->lines.line;
    if (st) return st;
    if (!have) return MG_OK;
    char *q = p;
    while (q < eol && (*q == ' ' || *q == '\t')) q++;
    if (q == eol) continue; /* a blank line */
    int nul = memchr(q, '\0', (size_t)(eol - q)) != NULL;
    int64_t bad = 0, nc = split(ctx, p, eol, delim, &r->cells, &bad);
    const Cell *cells = (const Cell *)r->cells.p;
    if (nc == SPLIT_NOMEM) return MG_ENOMEM;
    if (nc == SPLIT_OPEN_QUOTE)
      return mg_error(ctx, MG_EARG, "%s: %s:%lld: a quoted cell is not "
                      "closed on its line", OP, path, line);
    if (nc == SPLIT_AFTER_QUOTE)
      return mg_error(ctx, MG_EARG, "%s: %s:%lld: column %lld%s: text after "
                      "the closing quote", OP, path, line, (long long)bad + 1,
                      column_name(r, bad, col, sizeof col));
    for (int64_t j = 0; nul && j < nc; j++)
      if (memchr(cells[j].s, '\0', cells[j].len))
        return mg_error(ctx, MG_EARG, "%s: %s:%lld: column %lld%s: a NUL byte "
                        "in the cell (a binary file?)", OP, path, line,
                        (long long)j + 1, column_name(r, j, col, sizeof col));
    if (*ncols < 0) { /* the first line: a header? */
      *ncols = nc;
      int header = r->o->header;
      double v;
      for (int64_t j = 0; j < nc && header < 0; j++)
        if (!parse_number(&cells[j], delim, &v)) header = 1;
      if (header > 0) {
        if (names_block(r, cells, nc)) return MG_ENOMEM;
        continue;
      }
    }
    if (nc != *ncols)
      return mg_error(ctx, MG_EARG, "%s: %s:%lld: %lld cells, expected %lld "
                      "(as on the first line)", OP, path, line,
                      (long long)nc, (long long)*ncols);
    st = push_row(r, cells, nc, &bad);
    if (st == MG_ENOMEM) return st;
    if (st) {
      const char *s = cells[bad].s;
      while (is_blank(*s, delim)) s++;
      s += *s == '+' || *s == '-';
      int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
      return mg_error(ctx, MG_EARG, "%s: %s:%lld: column %lld%s: \"%s\" is "
                      "not a number%s", OP, path, line, (long long)bad + 1,
                      column_name(r, bad, col, sizeof col),
                      shown(txt, sizeof txt, &cells[bad]),
                      hex ? " (hexadecimal is not read: decimal numbers, "
                            "inf and nan are)" : "");
    }
    (*rows)++;
  }
}

int mg_read_csv(mg_Context *ctx, mg_Tensor **out, char ***names_out,
                int64_t *ncols_out, const char *path, const mg_CsvOptions *opt) {
  mg_CsvOptions o = opt ? *opt : (mg_CsvOptions){-1, ',', MG_F32};
  if (o.dtype != MG_F32 && o.dtype != MG_F64)
    return mg_error(ctx, MG_EARG, "%s: dtype must be float32 or float64, got %s",
                    OP, mg_dtype_name(o.dtype));
  if (o.delimiter == '\0' || o.delimiter == '\n' || o.delimiter == '\r' ||
      o.delimiter == '"')
    return mg_error(ctx, MG_EARG, "%s: the delimiter cannot be a line end, a "
                    "quote or NUL", OP);
  Reader r = {.ctx = ctx, .path = path, .o = &o};
  mg_Tensor *t = NULL;
  int64_t ncols = -1, rows = 0;
  int st = lines_open(ctx, &r.lines, path);
  if (!st) st = read_rows(&r, &ncols, &rows);
  /* What the tensor does not need goes before it is made. */
  lines_close(&r.lines);
  mg_readbuf_free(ctx, &r.cells);
  if (st) goto done;
  if (ncols < 0) ncols = 0; /* an empty file */
  size_t es = mg_dtype_size(o.dtype);
  mg_readbuf_shrink(ctx, &r.vals, (size_t)r.nvals * es);
  int64_t shape[2] = {rows, ncols};
  if ((st = mg_empty(ctx, &t, o.dtype, 2, shape))) goto done;
  if (r.nvals) memcpy(mg_data(t), r.vals.p, (size_t)r.nvals * es);
  *out = t;
  *names_out = r.names; /* the caller's now: no longer charged */
  *ncols_out = ncols;
  t = NULL;
  r.names = NULL;
done:
  if (st == MG_ENOMEM) st = mg_read_nomem(ctx, OP, path);
  mg_tensor_decref(t);
  free(r.names);
  mg_uncharge(ctx, r.names_bytes);
  mg_readbuf_free(ctx, &r.vals);
  return st;
}
