/*
 * tensor.c — storages and tensors: their structs, references and release
 * (with the graph nodes a tensor holds), shape checks, contiguous
 * allocation, raw views (mg_make_view) and storage versions. Filling and
 * copying is tensor_data.c; the differentiable views are views.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mg_internal.h"

/* ---- storage and tensor structs ----------------------------------------- */


/* The data of every empty storage: kernels compute addresses from a
 * tensor's data even when they then touch no element, and NULL + 0 is
 * undefined in C (UBSan's pointer-overflow check stops there). Never
 * written (there is nothing to write) and never freed. */
static max_align_t empty_buffer;

static mg_Storage *storage_new(mg_Context *ctx, size_t nbytes) {
  mg_Storage *s = mg_storage_struct(ctx);
  if (!s) return NULL;
  s->data = &empty_buffer;
  if (nbytes > 0 && !(s->data = mg_buffer_alloc(ctx, nbytes))) {
    mg_storage_struct_free(ctx, s);
    return NULL;
  }
  s->nbytes = nbytes;
  s->refcount = 1;
  s->version = 0;
  s->ctx = ctx;
  s->borrowed = 0;
  s->release = NULL;
  s->release_ud = NULL;
  mg_context_incref(ctx);
  return s;
}

/* The struct goes on the spare list before the context's reference is
 * dropped: a context torn down by that frees the list with it. */
static void storage_decref(mg_Storage *s) {
  if (--s->refcount > 0) return;
  mg_Context *ctx = s->ctx;
  if (!s->borrowed && s->data != &empty_buffer)
    mg_buffer_free(ctx, s->data, s->nbytes);
  else if (s->release) s->release(s->data, s->release_ud);
  mg_storage_struct_free(ctx, s);
  mg_context_decref(ctx);
}

void mg_tensor_incref(mg_Tensor *t) { t->refcount++; }

void mg_tensor_decref(mg_Tensor *t) {
  if (!t || --t->refcount > 0) return;
  if (t->autograd) mg_autograd_free(t);
  mg_Storage *s = t->storage;
  mg_tensor_struct_free(s->ctx, t);
  storage_decref(s);
}

void mg_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d] > 0 ? shape[d] : 1;
  }
}

/* With op NULL the message names no op (the caller's caller knows it: the
 * Lua binding prefixes the function's name). */
int mg_check_shape(mg_Context *ctx, const char *op, int ndim,
                   const int64_t *shape) {
  const char *sep = op ? ": " : "";
  if (!op) op = "";
  if (ndim < 0 || ndim > MG_MAXDIM)
    return mg_error(ctx, MG_ESHAPE, "%s%s%d dimensions requested, at most %d "
                    "are supported", op, sep, ndim, MG_MAXDIM);
  /* n is the product of the nonzero sizes, not numel: a zero-size tensor's
   * strides (mg_contiguous_strides) still multiply the other sizes, so
   * [0, 2^32, 2^32, 2^32] must be refused before they overflow. */
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return mg_error(ctx, MG_ESHAPE, "%s%ssize %lld of dimension %d is "
                      "negative", op, sep, (long long)shape[d], d + 1);
    if (shape[d] == 0) continue;
    /* a multiply that checks, not a division: this runs on every tensor
     * made, and a 64-bit divide costs more than a small op's kernel */
    if (__builtin_mul_overflow(n, shape[d], &n) || n > MG_MAX_NUMEL) {
      char b[MG_SHAPE_BUFSZ];
      return mg_error(ctx, MG_ENOMEM, "%s%snot enough memory: a tensor of "
                      "shape %s is too large", op, sep,
                      mg_shape_str(b, sizeof b, ndim, shape));
    }
  }
  return MG_OK;
}

int mg_check_window_param(mg_Context *ctx, const char *op, const char *what,
                          int64_t v, int64_t min) {
  if (v < min)
    return mg_error(ctx, MG_EARG, "%s: %s must be %s, got %lld", op, what,
                    min > 0 ? "positive" : "non-negative", (long long)v);
  if (v > MG_MAX_WINDOW)
    return mg_error(ctx, MG_EARG, "%s: %s %lld is too large (at most %d)", op,
                    what, (long long)v, MG_MAX_WINDOW);
  return MG_OK;
}

int mg_padded_size(mg_Context *ctx, const char *op, int64_t h, int64_t w,
                   int64_t pad_h, int64_t pad_w, int64_t *ph, int64_t *pw) {
  int st;
  if ((st = mg_check_window_param(ctx, op, "padding", pad_h, 0)) ||
      (st = mg_check_window_param(ctx, op, "padding", pad_w, 0)))
    return st;
  /* h, w are tensor sizes (at most MG_MAX_NUMEL), pads at most 2^31: the
   * sums fit; their product is checked without forming it. */
  *ph = h + 2 * pad_h;
  *pw = w + 2 * pad_w;
  if (*ph > 0 && *pw > MG_MAX_NUMEL / *ph)
    return mg_error(ctx, MG_EARG, "%s: padding %lldx%lld makes the padded "
                    "image %lldx%lld, more than the %lld elements a tensor may "
                    "have", op, (long long)pad_h, (long long)pad_w,
                    (long long)*ph, (long long)*pw, (long long)MG_MAX_NUMEL);
  return MG_OK;
}

int64_t mg_dilated_extent(int64_t k, int64_t d) {
  int64_t e;
  if (k < 1) return k;
  if (__builtin_mul_overflow(d, k - 1, &e) || e == INT64_MAX) return INT64_MAX;
  return e + 1;
}

/* Makes t a contiguous tensor over s from its start. */
static void contiguous_init(mg_Tensor *t, mg_Storage *s, mg_DType dt, int ndim,
                            const int64_t *shape) {
  t->storage = s;
  t->offset = 0;
  t->ndim = ndim;
  t->dtype = dt;
  t->refcount = 1;
  t->autograd = NULL;
  if (ndim > 0 && ndim <= MG_MAXDIM) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
  mg_contiguous_strides(ndim, shape, t->stride);
}

int mg_alloc_tensor(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                    const int64_t *shape) {
  int st = mg_check_shape(ctx, NULL, ndim, shape);
  if (st) return st;
  mg_Tensor *t = mg_tensor_struct(ctx);
  if (!t) return MG_ENOMEM;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  t->storage = storage_new(ctx, (size_t)n * mg_dtype_size(dt));
  if (!t->storage) {
    mg_tensor_struct_free(ctx, t);
    return MG_ENOMEM;
  }
  contiguous_init(t, t->storage, dt, ndim, shape);
  *out = t;
  return MG_OK;
}

int mg_alloc_channels_last(mg_Context *ctx, mg_Tensor **out, mg_DType dt,
                           const int64_t *shape) {
  /* An [N, H, W, C] buffer seen as [N, C, H, W]. */
  int64_t N = shape[0], C = shape[1], H = shape[2], W = shape[3];
  int64_t nhwc[4] = {N, H, W, C}, stride[4] = {H * W * C, 1, W * C, C};
  mg_Tensor *base = NULL;
  int st = mg_alloc_tensor(ctx, &base, dt, 4, nhwc);
  if (!st) st = mg_make_view(ctx, out, base, 4, shape, stride, 0);
  mg_tensor_decref(base);
  return st;
}

int mg_alloc_layout(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                    const int64_t *shape, int cl) {
  return cl ? mg_alloc_channels_last(ctx, out, dt, shape)
            : mg_alloc_tensor(ctx, out, dt, ndim, shape);
}

int mg_alloc_like(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                  const int64_t *shape, const mg_Tensor *like) {
  int same = like && like->ndim == ndim && ndim == 4 &&
             !memcmp(like->shape, shape, sizeof(int64_t) * (size_t)ndim);
  if (!same || mg_is_contiguous(like) || !mg_is_channels_last(like))
    return mg_alloc_tensor(ctx, out, dt, ndim, shape);
  return mg_alloc_channels_last(ctx, out, dt, shape);
}

/* The storage is made with no buffer and then pointed at data. */
int mg_from_buffer(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                   const int64_t *shape, void *data, mg_ReleaseFn release,
                   void *ud) {
  int st = mg_check_shape(ctx, "from_buffer", ndim, shape);
  mg_Tensor *t = NULL;
  mg_Storage *s = NULL;
  if (st == MG_OK && ((uintptr_t)data % mg_dtype_size(dt)) != 0)
    st = mg_error(ctx, MG_EARG, "from_buffer: the data pointer is not "
                  "aligned to %zu bytes (%s)", mg_dtype_size(dt),
                  mg_dtype_name(dt));
  if (st == MG_OK && (!(t = mg_tensor_struct(ctx)) || !(s = storage_new(ctx, 0)))) {
    if (t) mg_tensor_struct_free(ctx, t);
    st = MG_ENOMEM; /* the message is in ctx */
  }
  if (st != MG_OK) {
    if (release) release(data, ud);
    return st;
  }
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  s->data = data;
  s->nbytes = (size_t)n * mg_dtype_size(dt);
  s->borrowed = 1;
  s->release = release;
  s->release_ud = ud;
  contiguous_init(t, s, dt, ndim, shape);
  *out = t;
  return MG_OK;
}

int mg_make_view(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int ndim, const int64_t *shape, const int64_t *stride,
                 int64_t offset) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) continue;
    /* a multiply that checks, not a division: this runs on every tensor
     * made, and a 64-bit divide costs more than a small op's kernel */
    if (shape[d] < 0 || __builtin_mul_overflow(n, shape[d], &n) || n > MG_MAX_NUMEL) {
      char b[MG_SHAPE_BUFSZ];
      /* No op named: the binding prefixes the function (expand: ...). */
      return mg_error(ctx, MG_ESHAPE, "a view of shape %s would have more "
                      "than %lld elements, the most a tensor may have",
                      mg_shape_str(b, sizeof b, ndim, shape),
                      (long long)MG_MAX_NUMEL);
    }
  }
  mg_Tensor *v = mg_tensor_struct(t->storage->ctx);
  if (!v) return MG_ENOMEM;
  v->storage = t->storage;
  v->storage->refcount++;
  v->offset = offset;
  v->ndim = ndim;
  v->dtype = t->dtype;
  v->refcount = 1;
  v->autograd = NULL;
  if (ndim) { /* a 0-d view may come with NULL shape and strides */
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)ndim);
    memcpy(v->stride, stride, sizeof(int64_t) * (size_t)ndim);
  }
  *out = v;
  return MG_OK;
}

int64_t mg_numel(const mg_Tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

int mg_is_contiguous(const mg_Tensor *t) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != s) return 0;
    s *= t->shape[d];
  }
  return 1;
}

void mg_memory_order(const mg_Tensor *t, int *perm) {
  for (int d = 0; d < t->ndim; d++) perm[d] = d;
  for (int i = 1; i < t->ndim; i++)
    for (int j = i; j > 0 && t->stride[perm[j - 1]] < t->stride[perm[j]]; j--) {
      int x = perm[j];
      perm[j] = perm[j - 1], perm[j - 1] = x;
    }
}

int mg_is_dense(const mg_Tensor *t) {
  /* The dims longer than 1, in memory order, must be row-major. */
  int perm[MG_MAXDIM];
  mg_memory_order(t, perm);
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    int64_t n = t->shape[perm[i]];
    if (n == 0) return 1; /* no elements: nothing overlaps */
    if (n == 1) continue;
    if (t->stride[perm[i]] != s) return 0;
    s *= n;
  }
  return 1;
}

int mg_is_channels_last(const mg_Tensor *t) {
  if (t->ndim != 4) return 0;
  const int64_t *sh = t->shape, *st = t->stride;
  int64_t C = sh[1], W = sh[3], H = sh[2];
  /* Strides [H·W·C, 1, W·C, C]; a dim of size 1 may have any. */
  return (C == 1 || st[1] == 1) && (W == 1 || st[3] == C) && (H == 1 || st[2] == W * C) &&
         (sh[0] == 1 || st[0] == H * W * C);
}

void *mg_data(const mg_Tensor *t) {
  return (char *)t->storage->data + t->offset * (int64_t)mg_dtype_size(t->dtype);
}

int mg_same_shape(int na, const int64_t *a, int nb, const int64_t *b) {
  return na == nb && (na == 0 || !memcmp(a, b, sizeof(int64_t) * (size_t)na));
}

/* Storage versioning: every in-place write bumps its storage's version, and
 * a backward refuses a saved tensor whose version moved (mg_save). */
void mg_bump_version(mg_Tensor *t) { t->storage->version++; }

int mg_broadcast_shapes(mg_Context *ctx, const char *op, int na,
                        const int64_t *sa, int nb, const int64_t *sb,
                        int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = na - n + i, ib = nb - n + i;
    int64_t a = ia >= 0 ? sa[ia] : 1, b = ib >= 0 ? sb[ib] : 1;
    if (a != b && a != 1 && b != 1) {
      char ba[MG_SHAPE_BUFSZ], bb[MG_SHAPE_BUFSZ];
      return mg_error(ctx, MG_ESHAPE, "%s: shapes %s and %s cannot be "
                      "broadcast together (size %lld vs %lld at dimension "
                      "%d from the right)", op, mg_shape_str(ba, sizeof ba, na, sa),
                      mg_shape_str(bb, sizeof bb, nb, sb), (long long)a,
                      (long long)b, n - i);
    }
    out[i] = a == 1 ? b : a;
  }
  *nout = n;
  return MG_OK;
}

/* Do a and b see the same elements in the same positions? (Strides of
 * size-1 dims never matter.) */
int mg_same_view(const mg_Tensor *a, const mg_Tensor *b) {
  if (a->storage != b->storage || a->offset != b->offset || a->ndim != b->ndim)
    return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d] ||
        (a->shape[d] > 1 && a->stride[d] != b->stride[d]))
      return 0;
  return 1;
}

/* ---- releasing graph nodes ------------------------------------------------
 * A tensor holds its grad_fn and a node holds its saved tensors, so the two
 * releases call each other and live in one file, beside the tensor's.
 * Releasing a node can release its producers in turn; a long chain (an RNN
 * unrolled over thousands of steps) would overflow the C stack if that
 * recursed, so releases go through an explicit work list. */

static void node_free_one(mg_Node *n, mg_Node ***work, size_t *nwork,
                          size_t *cap) {
  for (int k = 0; k < MG_NODE_MAXSAVED; k++) mg_tensor_decref(n->saved[k]);
  mg_tensor_decref(n->grad);
  for (int i = 0; i < n->ninputs; i++) {
    mg_tensor_decref(n->next[i].leaf);
    mg_Node *p = n->next[i].node;
    if (p && --p->refcount == 0) {
      if (*nwork == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        mg_Node **w = realloc(*work, nc * sizeof *w);
        if (!w) continue; /* out of memory: leak rather than crash */
        *work = w;
        *cap = nc;
      }
      (*work)[(*nwork)++] = p;
    }
  }
  free(n);
}

void mg_node_decref(mg_Node *n) {
  if (!n || --n->refcount > 0) return;
  mg_Node **work = NULL;
  size_t nwork = 0, cap = 0;
  node_free_one(n, &work, &nwork, &cap);
  while (nwork > 0) node_free_one(work[--nwork], &work, &nwork, &cap);
  free(work);
}

void mg_autograd_free(mg_Tensor *t) {
  mg_Autograd *m = t->autograd;
  t->autograd = NULL;
  mg_tensor_decref(m->grad);
  mg_node_decref(m->grad_fn);
  free(m);
}
