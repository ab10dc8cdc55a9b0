/*
 * safetensors.c — the safetensors reader and writer (see mg_safetensors.h
 * for the format and the contracts).
 *
 * The reader distrusts the file: every number in the header is checked
 * before it sizes an allocation or a read, and the data region must be
 * tiled exactly by the tensors' spans. The writer goes through
 * mg_file_begin/commit (io_file.c), which make it atomic and refuse what is
 * not a regular file; the reader opens through mg_file_open_read, which
 * never blocks on a FIFO.
 */
#define _GNU_SOURCE 1 /* qsort_r */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mg_file.h"
#include "mg_safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads and writes little-endian data in place"
#endif

#define MAX_EXACT ((double)(1LL << 53)) /* integers a JSON double holds */

/* ---- dtypes of the format ---------------------------------------------------- */

/* Every dtype of the format that moongrad holds, byte for byte: a loaded
 * tensor keeps its dtype and its bytes, and saves back the same. */
typedef struct {
  const char *name;  /* as written in the header */
  int size;          /* bytes per element */
  mg_DType dtype;    /* what it loads as */
} FileDType;

static const FileDType file_dtypes[] = {
    {"F32", 4, MG_F32},  {"F64", 8, MG_F64},   {"I64", 8, MG_I64},
    {"I32", 4, MG_I32},  {"I16", 2, MG_I16},   {"I8", 1, MG_I8},
    {"U8", 1, MG_U8},    {"BOOL", 1, MG_BOOL}, {"F16", 2, MG_F16},
    {"BF16", 2, MG_BF16},
};
#define N_FILE_DTYPES (sizeof file_dtypes / sizeof file_dtypes[0])

static const FileDType *file_dtype(const char *name) {
  for (size_t i = 0; i < N_FILE_DTYPES; i++)
    if (strcmp(file_dtypes[i].name, name) == 0) return &file_dtypes[i];
  return NULL;
}

static const char *dtype_tag(mg_DType dt) {
  for (size_t i = 0; i < N_FILE_DTYPES; i++)
    if (file_dtypes[i].dtype == dt) return file_dtypes[i].name;
  return NULL;
}

/* ---- reading ------------------------------------------------------------------ */

typedef struct {
  const char *name;       /* borrowed from the parsed header */
  const FileDType *fd;
  int ndim;
  int64_t shape[MG_MAXDIM];
  int64_t begin, end;     /* in the data region */
} Entry;

/* A JSON number that is an integer in [0, 2^53]; else -1. */
static int64_t json_count(const cJSON *v) {
  if (!cJSON_IsNumber(v)) return -1;
  double d = v->valuedouble;
  if (!(d >= 0 && d <= MAX_EXACT) || d != floor(d)) return -1;
  return (int64_t)d;
}

/* Checks one tensor's header entry; fills e. */
static int parse_entry(mg_Context *ctx, const char *path, const cJSON *item,
                       Entry *e) {
  const char *name = item->string;
  e->name = name;
  if (!cJSON_IsObject(item))
    return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': expected an object "
                    "{dtype, shape, data_offsets}", path, name);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
  if (!cJSON_IsString(dt))
    return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': missing or non-string "
                    "dtype", path, name);
  if (!(e->fd = file_dtype(dt->valuestring)))
    return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': unsupported dtype '%.32s' "
                    "(moongrad holds F64, F32, F16, BF16, I64, I32, I16, I8, U8 "
                    "and BOOL)", path, name, dt->valuestring);
  if (!cJSON_IsArray(shape))
    return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': missing or non-array "
                    "shape", path, name);
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > MG_MAXDIM)
    return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': %d dimensions, more "
                    "than the %d moongrad supports", path, name, ndim, MG_MAXDIM);
  e->ndim = ndim;
  int64_t numel = 1;
  int overflow = 0, k = 0;
  for (const cJSON *s = shape->child; s; s = s->next, k++) {
    int64_t d = json_count(s);
    if (d < 0)
      return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': shape entry %d is "
                      "not a non-negative integer", path, name, k + 1);
    e->shape[k] = d;
    if (d && numel > (int64_t)MAX_EXACT / d) overflow = 1;
    else numel *= d;
  }
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
      json_count(offs->child) < 0 || json_count(offs->child->next) < 0)
    return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': data_offsets must be "
                    "two non-negative integers [begin, end]", path, name);
  e->begin = json_count(offs->child);
  e->end = json_count(offs->child->next);
  if (e->end < e->begin)
    return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': data_offsets [%lld, "
                    "%lld] end before they begin", path, name,
                    (long long)e->begin, (long long)e->end);
  char sbuf[MG_SHAPE_BUFSZ];
  if (overflow || numel > (int64_t)MAX_EXACT / e->fd->size ||
      numel * e->fd->size != e->end - e->begin)
    return mg_error(ctx, MG_EIO, "load: %s: tensor '%s': shape %s of %s needs "
                    "%s bytes, data_offsets [%lld, %lld] span %lld", path, name,
                    mg_shape_str(sbuf, sizeof sbuf, ndim, e->shape),
                    e->fd->name, overflow ? "too many" : "a different number of",
                    (long long)e->begin, (long long)e->end,
                    (long long)(e->end - e->begin));
  return MG_OK;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const Entry *)a)->name, ((const Entry *)b)->name);
}

static int cmp_begin(const void *a, const void *b) {
  const Entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static int cmp_string_ptr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first of n strings that appears twice, or NULL: sorts a copy of the
 * pointers, so that 100k keys take milliseconds (comparing each with all
 * the earlier ones took 32 s). *nomem is set when the copy cannot be made. */
static const char *find_duplicate(char *const *strs, int n, int *nomem) {
  *nomem = 0;
  if (n < 2) return NULL;
  char **sorted = malloc((size_t)n * sizeof *sorted);
  if (!sorted) {
    *nomem = 1;
    return NULL;
  }
  memcpy(sorted, strs, (size_t)n * sizeof *sorted);
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_string_ptr);
  const char *dup = NULL;
  for (int i = 1; i < n && !dup; i++)
    if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
  free(sorted);
  return dup;
}

/* Copies __metadata__ (an object of strings) into out. */
static int read_metadata(mg_Context *ctx, const char *path, const cJSON *meta,
                         mg_SafeTensors *out) {
  if (!cJSON_IsObject(meta))
    return mg_error(ctx, MG_EIO, "load: %s: __metadata__ must be an object of "
                    "strings", path);
  int n = cJSON_GetArraySize(meta);
  out->meta_keys = calloc((size_t)n + 1, sizeof(char *));
  out->meta_values = calloc((size_t)n + 1, sizeof(char *));
  if (!out->meta_keys || !out->meta_values)
    return mg_error(ctx, MG_ENOMEM, "load: %s: out of memory reading the "
                    "metadata", path);
  for (const cJSON *m = meta->child; m; m = m->next) {
    if (!cJSON_IsString(m))
      return mg_error(ctx, MG_EIO, "load: %s: __metadata__ entry '%s' is not a "
                      "string", path, m->string);
    int i = out->nmeta;
    out->meta_keys[i] = dup_string(m->string);
    out->meta_values[i] = dup_string(m->valuestring);
    out->nmeta++;
    if (!out->meta_keys[i] || !out->meta_values[i])
      return mg_error(ctx, MG_ENOMEM, "load: %s: out of memory reading the "
                      "metadata", path);
  }
  int nomem;
  const char *dup = find_duplicate(out->meta_keys, out->nmeta, &nomem);
  if (nomem)
    return mg_error(ctx, MG_ENOMEM, "load: %s: out of memory reading the "
                    "metadata", path);
  if (dup)
    return mg_error(ctx, MG_EIO, "load: %s: __metadata__ has key '%s' twice",
                    path, dup);
  return MG_OK;
}

/* Reads one tensor's span of the data region (which starts at data_start)
 * into a new tensor. */
static int read_tensor(mg_Context *ctx, const char *path, FILE *f,
                       int64_t data_start, const Entry *e, mg_Tensor **out) {
  mg_Tensor *t = NULL;
  int st = mg_empty(ctx, &t, e->fd->dtype, e->ndim, e->shape);
  if (st) { /* the allocator's message names no file */
    char why[256];
    snprintf(why, sizeof why, "%s", mg_last_error(ctx));
    return mg_error(ctx, st, "load: %s: tensor '%s': %s", path, e->name, why);
  }
  int64_t nbytes = e->end - e->begin;
  unsigned char *buf = mg_data(t);
  if (nbytes > 0 &&
      (fseeko(f, (off_t)(data_start + e->begin), SEEK_SET) != 0 ||
       fread(buf, 1, (size_t)nbytes, f) != (size_t)nbytes)) {
    st = mg_error(ctx, MG_EIO, "load: %s: truncated or unreadable data of "
                  "tensor '%s' (%s)", path, e->name,
                  ferror(f) ? strerror(errno) : "end of file");
  }
  if (st) {
    mg_tensor_decref(t);
    return st;
  }
  *out = t;
  return MG_OK;
}

/* Parses the header (already read into hdr, hlen bytes) and the data. */
static int load_body(mg_Context *ctx, const char *path, FILE *f, char *hdr,
                     int64_t hlen, int64_t data_size, mg_SafeTensors *out) {
  if (hlen < 2 || hdr[0] != '{')
    return mg_error(ctx, MG_EIO, "load: %s: not a safetensors file: the header "
                    "does not start with '{'", path);
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
  if (!root) {
    long at = end ? (long)(end - hdr) : -1;
    return mg_error(ctx, MG_EIO, "load: %s: invalid JSON in the header near "
                    "byte %ld of %lld", path, at, (long long)hlen);
  }
  int st = MG_OK;
  Entry *entries = NULL;
  for (const char *p = end; p < hdr + hlen; p++) {
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\0') {
      st = mg_error(ctx, MG_EIO, "load: %s: unexpected bytes after the JSON "
                    "header at byte %ld", path, (long)(p - hdr));
      goto done;
    }
  }
  if (!cJSON_IsObject(root)) {
    st = mg_error(ctx, MG_EIO, "load: %s: the header is not a JSON object", path);
    goto done;
  }
  int count = cJSON_GetArraySize(root), n = 0, seen_meta = 0;
  entries = calloc((size_t)count + 1, sizeof *entries);
  if (!entries) {
    st = mg_error(ctx, MG_ENOMEM, "load: %s: out of memory", path);
    goto done;
  }
  for (const cJSON *item = root->child; item; item = item->next) {
    if (strcmp(item->string, "__metadata__") == 0) {
      if (seen_meta++) {
        st = mg_error(ctx, MG_EIO, "load: %s: __metadata__ appears twice", path);
        goto done;
      }
      if ((st = read_metadata(ctx, path, item, out))) goto done;
      continue;
    }
    if ((st = parse_entry(ctx, path, item, &entries[n]))) goto done;
    n++;
  }
  qsort(entries, (size_t)n, sizeof *entries, cmp_name);
  for (int i = 1; i < n; i++) {
    if (strcmp(entries[i].name, entries[i - 1].name) == 0) {
      st = mg_error(ctx, MG_EIO, "load: %s: tensor '%s' appears twice in the "
                    "header", path, entries[i].name);
      goto done;
    }
  }
  /* The spans must tile [0, data_size) in order: no hole, no overlap. */
  qsort(entries, (size_t)n, sizeof *entries, cmp_begin);
  int64_t pos = 0;
  for (int i = 0; i < n; i++) {
    if (entries[i].begin != pos) {
      st = mg_error(ctx, MG_EIO, "load: %s: tensor '%s' starts at data byte %lld, "
                    "expected %lld (%s)", path, entries[i].name,
                    (long long)entries[i].begin, (long long)pos,
                    entries[i].begin > pos ? "a hole in the data"
                                           : "overlapping tensors");
      goto done;
    }
    pos = entries[i].end;
  }
  if (pos != data_size) {
    st = mg_error(ctx, MG_EIO, "load: %s: %s: the tensors cover %lld bytes of "
                  "data, the file holds %lld after the header", path,
                  pos > data_size ? "truncated" : "unindexed bytes at the end",
                  (long long)pos, (long long)data_size);
    goto done;
  }
  out->names = calloc((size_t)n + 1, sizeof(char *));
  out->tensors = calloc((size_t)n + 1, sizeof(mg_Tensor *));
  if (!out->names || !out->tensors) {
    st = mg_error(ctx, MG_ENOMEM, "load: %s: out of memory", path);
    goto done;
  }
  for (int i = 0; i < n; i++) {
    if (!(out->names[i] = dup_string(entries[i].name))) {
      st = mg_error(ctx, MG_ENOMEM, "load: %s: out of memory", path);
      goto done;
    }
    out->n = i + 1;
    if ((st = read_tensor(ctx, path, f, 8 + hlen, &entries[i],
                          &out->tensors[i])))
      goto done;
  }
done:
  free(entries);
  cJSON_Delete(root);
  return st;
}

int mg_safetensors_load(mg_Context *ctx, mg_SafeTensors *out,
                        const char *path) {
  memset(out, 0, sizeof *out);
  int fd;
  int st = mg_file_open_read(ctx, "load", path, &fd, NULL);
  if (st) return st;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    return mg_error(ctx, MG_ENOMEM, "load: %s: out of memory opening it", path);
  }
  struct stat sb;
  unsigned char lenbuf[8];
  char *hdr = NULL;
  if (fstat(fileno(f), &sb) != 0) {
    st = mg_error(ctx, MG_EIO, "load: %s: cannot stat: %s", path, strerror(errno));
    goto done;
  }
  int64_t size = (int64_t)sb.st_size;
  if (size < 8 || fread(lenbuf, 1, 8, f) != 8) {
    st = mg_error(ctx, MG_EIO, "load: %s: truncated: the file has %lld bytes, "
                  "too few for the 8-byte header length", path, (long long)size);
    goto done;
  }
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenbuf[i];
  if (hlen > (uint64_t)(size - 8)) {
    st = mg_error(ctx, MG_EIO, "load: %s: truncated: header says %llu bytes, "
                  "the file has %lld", path, (unsigned long long)hlen,
                  (long long)size);
    goto done;
  }
  if (hlen > MG_SAFETENSORS_MAX_HEADER) {
    st = mg_error(ctx, MG_EIO, "load: %s: header of %llu bytes is larger than "
                  "the %d-byte limit", path, (unsigned long long)hlen,
                  MG_SAFETENSORS_MAX_HEADER);
    goto done;
  }
  if (!(hdr = malloc((size_t)hlen + 1))) {
    st = mg_error(ctx, MG_ENOMEM, "load: %s: out of memory for a %llu-byte "
                  "header", path, (unsigned long long)hlen);
    goto done;
  }
  if (fread(hdr, 1, (size_t)hlen, f) != (size_t)hlen) {
    st = mg_error(ctx, MG_EIO, "load: %s: truncated header", path);
    goto done;
  }
  hdr[hlen] = '\0';
  st = load_body(ctx, path, f, hdr, (int64_t)hlen, size - 8 - (int64_t)hlen, out);
done:
  free(hdr);
  fclose(f);
  if (st) mg_safetensors_free(out);
  return st;
}

void mg_safetensors_free(mg_SafeTensors *st) {
  for (int i = 0; i < st->n; i++) {
    if (st->tensors) mg_tensor_decref(st->tensors[i]);
    if (st->names) free(st->names[i]);
  }
  for (int i = 0; i < st->nmeta; i++) {
    free(st->meta_keys[i]);
    free(st->meta_values[i]);
  }
  free(st->names);
  free(st->tensors);
  free(st->meta_keys);
  free(st->meta_values);
  memset(st, 0, sizeof *st);
}

/* ---- writing ------------------------------------------------------------------ */

static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
          : (*p & 0xf8) == 0xf0 ? 3 : -1;
    if (n < 0 || (n == 1 && *p < 0xc2)) return 0;
    uint32_t cp = *p & (0x7f >> n);
    p++;
    for (int i = 0; i < n; i++, p++) {
      if ((*p & 0xc0) != 0x80) return 0;
      cp = cp << 6 | (*p & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
  }
  return 1;
}

static int cmp_index_name(const void *a, const void *b, void *names) {
  const char *const *nm = names;
  return strcmp(nm[*(const int *)a], nm[*(const int *)b]);
}

/* A header past the reader's limit is refused: a file saved with one
 * could not be loaded back. The names' and metadata's text alone is a
 * lower bound, checked before the header is built (which for 100 MB of
 * metadata costs several times that in memory); build_header checks the
 * exact size. */
static size_t metadata_bytes(int nmeta, const char *const *keys,
                             const char *const *values) {
  size_t meta = 0;
  for (int i = 0; i < nmeta; i++) meta += strlen(keys[i]) + strlen(values[i]);
  return meta;
}

static int header_too_big(mg_Context *ctx, const char *path, size_t bytes,
                          int exact, size_t meta) {
  return mg_error(ctx, MG_EARG, "save: %s: the header would be %s%zu bytes "
                  "(its metadata's keys and values: %zu bytes), more than the "
                  "%d bytes a safetensors reader accepts; nothing was written",
                  path, exact ? "" : "at least ", bytes, meta,
                  MG_SAFETENSORS_MAX_HEADER);
}

static int check_header_size(mg_Context *ctx, const char *path, int n,
                             const char *const *names, int nmeta,
                             const char *const *keys,
                             const char *const *values) {
  size_t meta = metadata_bytes(nmeta, keys, values), total = meta;
  for (int j = 0; j < n; j++) total += strlen(names[j]);
  return total > MG_SAFETENSORS_MAX_HEADER
             ? header_too_big(ctx, path, total, 0, meta)
             : MG_OK;
}

/* Builds the padded header; *out is malloc'd, *len its length (a multiple
 * of 8, so that the data starts 8-aligned). */
static int build_header(mg_Context *ctx, const char *path, int n,
                        const char *const *names, mg_Tensor *const *tensors,
                        const int *order, int nmeta, const char *const *keys,
                        const char *const *values, char **out, size_t *len) {
  cJSON *root = cJSON_CreateObject();
  int ok = root != NULL;
  if (ok && nmeta > 0) {
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    ok = meta != NULL;
    for (int i = 0; ok && i < nmeta; i++)
      ok = cJSON_AddStringToObject(meta, keys[i], values[i]) != NULL;
  }
  int64_t offset = 0;
  char num[32];
  for (int j = 0; ok && j < n; j++) {
    const mg_Tensor *t = tensors[order[j]];
    cJSON *e = cJSON_AddObjectToObject(root, names[order[j]]);
    ok = e && cJSON_AddStringToObject(e, "dtype", dtype_tag(t->dtype));
    cJSON *shape = ok ? cJSON_AddArrayToObject(e, "shape") : NULL;
    cJSON *offs = shape ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
    ok = offs != NULL;
    for (int d = 0; ok && d < t->ndim; d++) {
      snprintf(num, sizeof num, "%lld", (long long)t->shape[d]);
      ok = cJSON_AddItemToArray(shape, cJSON_CreateRaw(num));
    }
    int64_t nbytes = mg_numel(t) * (int64_t)mg_dtype_size(t->dtype);
    for (int k = 0; ok && k < 2; k++) {
      snprintf(num, sizeof num, "%lld", (long long)(offset + k * nbytes));
      ok = cJSON_AddItemToArray(offs, cJSON_CreateRaw(num));
    }
    offset += nbytes;
  }
  char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  if (!text)
    return mg_error(ctx, MG_ENOMEM, "save: %s: out of memory building the "
                    "header", path);
  size_t tl = strlen(text), padded = (tl + 7) / 8 * 8;
  if (padded > MG_SAFETENSORS_MAX_HEADER) {
    cJSON_free(text);
    return header_too_big(ctx, path, padded, 1,
                          metadata_bytes(nmeta, keys, values));
  }
  char *h = malloc(padded);
  if (!h) {
    cJSON_free(text);
    return mg_error(ctx, MG_ENOMEM, "save: %s: out of memory", path);
  }
  memcpy(h, text, tl);
  memset(h + tl, ' ', padded - tl);
  cJSON_free(text);
  *out = h;
  *len = padded;
  return MG_OK;
}

static int check_names(mg_Context *ctx, const char *path, int n,
                       const char *const *names, const int *order,
                       mg_Tensor *const *tensors, int nmeta,
                       const char *const *keys, const char *const *values) {
  for (int j = 0; j < n; j++) {
    const char *nm = names[order[j]];
    if (!*nm)
      return mg_error(ctx, MG_EARG, "save: %s: a tensor name is empty", path);
    if (strcmp(nm, "__metadata__") == 0)
      return mg_error(ctx, MG_EARG, "save: %s: '__metadata__' is reserved and "
                      "cannot name a tensor", path);
    if (!valid_utf8(nm))
      return mg_error(ctx, MG_EARG, "save: %s: tensor name '%s' is not valid "
                      "UTF-8", path, nm);
    if (j > 0 && strcmp(nm, names[order[j - 1]]) == 0)
      return mg_error(ctx, MG_EARG, "save: %s: tensor name '%s' given twice",
                      path, nm);
    mg_DType dt = tensors[order[j]]->dtype;
    if (!dtype_tag(dt))
      return mg_error(ctx, MG_EARG, "save: %s: tensor '%s' has an unsupported "
                      "dtype", path, nm);
  }
  for (int i = 0; i < nmeta; i++)
    if (!valid_utf8(keys[i]) || !valid_utf8(values[i]))
      return mg_error(ctx, MG_EARG, "save: %s: metadata entry '%s' is not valid "
                      "UTF-8", path, keys[i]);
  int nomem;
  const char *dup = find_duplicate((char *const *)keys, nmeta, &nomem);
  if (nomem) return mg_error(ctx, MG_ENOMEM, "save: %s: out of memory", path);
  if (dup)
    return mg_error(ctx, MG_EARG, "save: %s: metadata key '%s' given twice",
                    path, dup);
  return MG_OK;
}

/* Writes tensor t's elements in row-major order. */
static int write_tensor(mg_Context *ctx, mg_FileWriter *w, const char *name,
                        mg_Tensor *t) {
  size_t nbytes = (size_t)mg_numel(t) * mg_dtype_size(t->dtype);
  if (nbytes == 0) return MG_OK;
  if (mg_is_contiguous(t)) return mg_file_write(ctx, w, mg_data(t), nbytes);
  mg_Tensor *c = NULL;
  int was = mg_set_grad_enabled(ctx, 0); /* a copy for writing, not a graph op */
  int st = mg_contiguous(ctx, &c, t);
  mg_set_grad_enabled(ctx, was);
  if (st) { /* the allocator's message names no file */
    char why[256];
    snprintf(why, sizeof why, "%s", mg_last_error(ctx));
    return mg_error(ctx, st, "save: %s: tensor '%s': %s", w->path, name, why);
  }
  st = mg_file_write(ctx, w, mg_data(c), nbytes);
  mg_tensor_decref(c);
  return st;
}

int mg_safetensors_save(mg_Context *ctx, const char *path, int n,
                        const char *const *names, mg_Tensor *const *tensors,
                        int nmeta, const char *const *meta_keys,
                        const char *const *meta_values,
                        const mg_FileHooks *hooks) {
  int *order = malloc(((size_t)n + 1) * sizeof *order);
  char *hdr = NULL;
  size_t hlen = 0;
  int st = MG_OK;
  if (!order) {
    st = mg_error(ctx, MG_ENOMEM, "save: %s: out of memory", path);
    goto done;
  }
  for (int i = 0; i < n; i++) order[i] = i;
  qsort_r(order, (size_t)n, sizeof *order, cmp_index_name, (void *)names);
  if ((st = check_names(ctx, path, n, names, order, tensors, nmeta, meta_keys,
                        meta_values)) ||
      (st = check_header_size(ctx, path, n, names, nmeta, meta_keys,
                              meta_values)) ||
      (st = build_header(ctx, path, n, names, tensors, order, nmeta, meta_keys,
                         meta_values, &hdr, &hlen)))
    goto done;

  mg_FileWriter w;
  if ((st = mg_file_begin(ctx, &w, "save", path, hooks))) goto done;
  unsigned char lenbuf[8];
  for (int i = 0; i < 8; i++) lenbuf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  st = mg_file_write(ctx, &w, lenbuf, 8);
  if (!st) st = mg_file_write(ctx, &w, hdr, hlen);
  for (int j = 0; !st && j < n; j++)
    st = write_tensor(ctx, &w, names[order[j]], tensors[order[j]]);
  if (st) mg_file_abort(&w);
  else st = mg_file_commit(ctx, &w);
done:
  free(order);
  free(hdr);
  return st;
}
