/*
 * io_csv.c — a numeric CSV reader through zlib (plain or .gz files).
 *
 * The file is read whole, then parsed in place: each line is split into
 * cells at the delimiter (a quoted cell may contain it, with "" for a
 * quote), each data cell must be a number strtod reads whole, and every
 * row must have as many cells as the first. The numbers collect in a
 * growing double array and land in the result tensor at the end, so a
 * failure leaves nothing behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mg_internal.h"
#include "mg_io.h"

#define OP "read_csv"

/* ---- the whole file ------------------------------------------------------------ */

/* Reads path (through zlib) into a malloc'd NUL-terminated buffer. */
static int slurp(mg_Context *ctx, const char *path, char **text, size_t *len) {
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return mg_error(ctx, MG_EIO, "%s: cannot open %s (%s)", OP, path,
                    errno ? strerror(errno) : "not enough memory");
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  int st = MG_OK;
  for (;;) {
    if (!buf) {
      st = mg_error(ctx, MG_ENOMEM, "%s: %s: not enough memory to read it", OP, path);
      break;
    }
    if (cap - n < 2) {
      char *b = realloc(buf, cap * 2);
      if (!b) { free(buf); buf = NULL; continue; }
      buf = b;
      cap *= 2;
    }
    size_t want = cap - n - 1;
    int r = gzread(f, buf + n, (unsigned)(want > (1u << 30) ? 1u << 30 : want));
    if (r < 0) {
      int code;
      const char *m = gzerror(f, &code);
      size_t pl = strlen(path); /* zlib's message may start with "path: " */
      if (!strncmp(m, path, pl) && m[pl] == ':' && m[pl + 1] == ' ') m += pl + 2;
      st = mg_error(ctx, MG_EIO, "%s: %s: %s%s%s", OP, path,
                    code == Z_DATA_ERROR ? "corrupt gzip data (" : "",
                    code == Z_ERRNO ? strerror(errno) : m,
                    code == Z_DATA_ERROR ? ")" : "");
      break;
    }
    if (r == 0) {
      int code;
      gzerror(f, &code);
      if (code == Z_BUF_ERROR)
        st = mg_error(ctx, MG_EIO, "%s: %s: truncated: the gzip stream ends "
                      "early", OP, path);
      break;
    }
    n += (size_t)r;
  }
  gzclose(f);
  if (st) {
    free(buf);
    return st;
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return MG_OK;
}

/* ---- cells ------------------------------------------------------------------- */

typedef struct {
  char *s;  /* the cell's text, unquoted, NUL-terminated in place */
} Cell;

static int is_blank(char c, char delim) {
  return (c == ' ' || c == '\t') && c != delim;
}

/* Splits the line [p, end) in place into cells; returns their count, or -1
 * for an unterminated quote. Grows *cells as needed (-2 on no memory). */
static int64_t split(char *p, char *end, char delim, Cell **cells,
                     int64_t *cap) {
  int64_t n = 0;
  for (;;) {
    while (p < end && is_blank(*p, delim)) p++;
    char *s = p, *e;
    if (p < end && *p == '"') { /* quoted: "" is a quote */
      s = e = ++p;
      for (;;) {
        if (p >= end) return -1;
        if (*p == '"') {
          if (p + 1 < end && p[1] == '"') { *e++ = '"'; p += 2; continue; }
          p++;
          break;
        }
        *e++ = *p++;
      }
      while (p < end && *p != delim) p++; /* blanks after the quote */
    } else {
      while (p < end && *p != delim) p++;
      e = p;
      while (e > s && is_blank(e[-1], delim)) e--;
    }
    if (n == *cap) {
      int64_t c = *cap ? *cap * 2 : 16;
      Cell *nc = realloc(*cells, (size_t)c * sizeof *nc);
      if (!nc) return -2;
      *cells = nc;
      *cap = c;
    }
    char *next = p; /* at the delimiter or the end */
    (*cells)[n++].s = s;
    *e = '\0'; /* may overwrite the delimiter or the line end: read first */
    if (next >= end) break;
    p = next + 1;
  }
  return n;
}

static int parse_number(const char *s, double *v) {
  if (!*s) return 0;
  char *end;
  *v = strtod(s, &end);
  return *end == '\0';
}

/* ---- the reader ---------------------------------------------------------------- */

typedef struct {
  double *v;      /* the numbers so far */
  int64_t n, cap;
} Values;

static int push_row(Values *vals, const Cell *cells, int64_t ncell,
                    int64_t *bad) {
  if (vals->n + ncell > vals->cap) {
    int64_t c = vals->cap ? vals->cap : 1024;
    while (c < vals->n + ncell) c *= 2;
    double *nv = realloc(vals->v, (size_t)c * sizeof *nv);
    if (!nv) return -1;
    vals->v = nv;
    vals->cap = c;
  }
  for (int64_t j = 0; j < ncell; j++)
    if (!parse_number(cells[j].s, &vals->v[vals->n + j])) {
      *bad = j;
      return 0;
    }
  vals->n += ncell;
  return 1;
}

/* One malloc'd block: n pointers, then the names' text. */
static char **names_block(const Cell *cells, int64_t n) {
  size_t text = 0;
  for (int64_t j = 0; j < n; j++) text += strlen(cells[j].s) + 1;
  char **names = malloc((size_t)n * sizeof *names + text);
  if (!names) return NULL;
  char *p = (char *)(names + n);
  for (int64_t j = 0; j < n; j++) {
    size_t l = strlen(cells[j].s) + 1;
    memcpy(p, cells[j].s, l);
    names[j] = p;
    p += l;
  }
  return names;
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
  char *text = NULL;
  size_t len = 0;
  int st = slurp(ctx, path, &text, &len);
  if (st) return st;

  Cell *cells = NULL;
  int64_t cap = 0, ncols = -1, rows = 0, line = 0;
  Values vals = {0};
  char **names = NULL;
  mg_Tensor *r = NULL;
  char *p = text, *end = text + len;
  while (p < end) {
    char *eol = memchr(p, '\n', (size_t)(end - p));
    char *next = eol ? eol + 1 : end;
    if (!eol) eol = end;
    if (eol > p && eol[-1] == '\r') eol--;
    line++;
    char *q = p;
    while (q < eol && (*q == ' ' || *q == '\t')) q++;
    if (q == eol) { p = next; continue; } /* a blank line */
    int64_t nc = split(p, eol, o.delimiter, &cells, &cap);
    if (nc == -2) goto nomem;
    if (nc == -1) {
      st = mg_error(ctx, MG_EARG, "%s: %s:%lld: a quoted cell is not closed "
                    "on its line", OP, path, (long long)line);
      goto done;
    }
    if (ncols < 0) { /* the first line: a header? */
      ncols = nc;
      int header = o.header;
      if (header < 0) {
        double v;
        header = 0;
        for (int64_t j = 0; j < nc && !header; j++)
          header = !parse_number(cells[j].s, &v);
      }
      if (header) {
        if (!(names = names_block(cells, nc))) goto nomem;
        p = next;
        continue;
      }
    }
    if (nc != ncols) {
      st = mg_error(ctx, MG_EARG, "%s: %s:%lld: %lld cells, expected %lld "
                    "(as on the first line)", OP, path, (long long)line,
                    (long long)nc, (long long)ncols);
      goto done;
    }
    int64_t bad = -1;
    int ok = push_row(&vals, cells, nc, &bad);
    if (ok < 0) goto nomem;
    if (!ok) {
      char col[160] = "";
      if (names) snprintf(col, sizeof col, " (\"%.120s\")", names[bad]);
      st = mg_error(ctx, MG_EARG, "%s: %s:%lld: column %lld%s: \"%.60s\" is "
                    "not a number", OP, path, (long long)line,
                    (long long)bad + 1, col, cells[bad].s);
      goto done;
    }
    rows++;
    p = next;
  }
  if (ncols < 0) ncols = 0; /* an empty file */
  int64_t shape[2] = {rows, ncols};
  if ((st = mg_empty(ctx, &r, o.dtype, 2, shape))) goto done;
  if (o.dtype == MG_F32) {
    float *d = mg_data(r);
    for (int64_t i = 0; i < vals.n; i++) d[i] = (float)vals.v[i];
  } else if (vals.n) {
    memcpy(mg_data(r), vals.v, (size_t)vals.n * sizeof(double));
  }
  *out = r;
  *names_out = names;
  *ncols_out = ncols;
  r = NULL;
  names = NULL;
  goto done;
nomem:
  st = mg_error(ctx, MG_ENOMEM, "%s: %s: not enough memory to parse it", OP, path);
done:
  mg_tensor_decref(r);
  free(names);
  free(cells);
  free(vals.v);
  free(text);
  return st;
}
