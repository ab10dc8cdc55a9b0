/*
 * ops_pad.c — pad (torch.nn.functional.pad): constant, reflect, replicate
 * and circular padding of the last dims, forward followed by backward.
 *
 * x [P..., n_1, ..., n_k] -> y [P..., m_1, ..., m_k], m_d = n_d + before_d
 * + after_d (a negative amount crops). Each padded dim gets a map from
 * output position to input position (-1: the constant), so every mode is
 * one gather forward and its scatter-add backward:
 *   forward   y[p, o_1..o_k] = x[p, map_1(o_1)..map_k(o_k)]  (or the value)
 *   backward  gx[p, map_1(o_1)..map_k(o_k)] += g[p, o_1..o_k]
 * The planes p run in parallel; inside a plane the scatter-add runs in
 * output order, so the gradient's bits do not depend on the thread count.
 */
#include <string.h>

#include "mg_conv.h"
#include "mg_nn_internal.h"

static const char *const mode_names[] = {"constant", "reflect", "replicate",
                                         "circular"};

/* The geometry of one call. */
typedef struct {
  int k;                    /* padded dims: the last k */
  int64_t planes;           /* elements of the leading dims */
  int64_t n[MG_MAXDIM];     /* per padded dim: input size */
  int64_t m[MG_MAXDIM];     /* ... output size */
  int64_t before[MG_MAXDIM], after[MG_MAXDIM]; /* ... amounts (< 0 crops) */
  int64_t in_plane, out_plane; /* elements per plane */
  int64_t *map[MG_MAXDIM];  /* per padded dim: output -> input position or -1 */
} Pad;

/* The input position output position o of one dim reads, or -1 for the
 * constant. The checks guarantee one reflection or wrap suffices. */
static int64_t source(mg_PadMode mode, int64_t o, int64_t n, int64_t l, int64_t r) {
  int64_t i = o - l;
  switch (mode) {
  case MG_PAD_REFLECT:
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
    return i;
  case MG_PAD_REPLICATE:
    return i < 0 ? 0 : i >= n ? n - 1 : i;
  case MG_PAD_CIRCULAR: {
    /* PyTorch crops first, then wraps around what is left */
    int64_t c0 = l < 0 ? -l : 0, len = n - c0 - (r < 0 ? -r : 0);
    int64_t j = (o - (l > 0 ? l : 0)) % len;
    return c0 + (j < 0 ? j + len : j);
  }
  default:
    return i >= 0 && i < n ? i : -1;
  }
}

/* Checks the padding against an input of shape [ndim] xs and fills *p but
 * its maps. pad is in PyTorch's order: the last dim's {before, after}
 * first. */
static int check(mg_Context *ctx, int ndim, const int64_t *xs, int npad,
                 const int64_t *pad, mg_PadMode mode, Pad *p) {
  char sx[MG_SHAPE_BUFSZ];
  mg_shape_str(sx, sizeof sx, ndim, xs);
  const char *mn = mode_names[mode];
  if (npad % 2)
    return mg_error(ctx, MG_EARG, "pad: the padding must hold pairs {before, "
                    "after}, got %d values", npad);
  int k = npad / 2;
  if (k > ndim)
    return mg_error(ctx, MG_ESHAPE, "pad: %d padding values pad %d dims, but "
                    "the input of shape %s has %d", npad, k, sx, ndim);
  if (mode != MG_PAD_CONSTANT && !(k >= 1 && k <= 3 && (ndim == k + 1 || ndim == k + 2)))
    return mg_error(ctx, MG_ESHAPE, "pad: mode \"%s\" pads the last 1, 2 or 3 "
                    "dims of a 2-D/3-D, 3-D/4-D or 4-D/5-D input (2, 4 or 6 "
                    "padding values), got %d values for an input of shape %s",
                    mn, npad, sx);
  p->k = k;
  p->planes = 1;
  for (int d = 0; d < ndim - k; d++) p->planes *= xs[d];
  int64_t shape[MG_MAXDIM];
  memcpy(shape, xs, sizeof(int64_t) * (size_t)ndim);
  for (int d = 0; d < k; d++) {
    int dim = ndim - k + d; /* 0-based; pad pairs run from the last dim */
    int64_t n = xs[dim], l = pad[2 * (k - 1 - d)], r = pad[2 * (k - 1 - d) + 1];
    if (l < -MG_MAX_NUMEL || l > MG_MAX_NUMEL || r < -MG_MAX_NUMEL || r > MG_MAX_NUMEL)
      return mg_error(ctx, MG_EARG, "pad: padding {%lld, %lld} of dim %d is "
                      "out of range", (long long)l, (long long)r, dim + 1);
    int64_t m = n + l + r; /* within int64: each term is at most 2^59 */
    if (m < 0 || (mode != MG_PAD_CONSTANT && m < 1))
      return mg_error(ctx, MG_ESHAPE, "pad: padding {%lld, %lld} of dim %d "
                      "leaves %s size %lld of the input of shape %s",
                      (long long)l, (long long)r, dim + 1,
                      m < 0 ? "a negative" : "an empty", (long long)m, sx);
    if (mode == MG_PAD_REFLECT && (l >= n || r >= n || -l >= n || -r >= n))
      return mg_error(ctx, MG_ESHAPE, "pad: reflect padding {%lld, %lld} of dim "
                      "%d must be smaller than its size %lld (input of shape %s)",
                      (long long)l, (long long)r, dim + 1, (long long)n, sx);
    if (mode == MG_PAD_REPLICATE && n == 0)
      return mg_error(ctx, MG_ESHAPE, "pad: replicate padding of dim %d needs "
                      "a non-empty dim (input of shape %s)", dim + 1, sx);
    if (mode == MG_PAD_CIRCULAR) {
      int64_t kept = n - (l < 0 ? -l : 0) - (r < 0 ? -r : 0);
      if (kept < 1 || l > kept || r > kept)
        return mg_error(ctx, MG_ESHAPE, "pad: circular padding {%lld, %lld} of "
                        "dim %d wraps around more than once (size %lld, input of "
                        "shape %s)", (long long)l, (long long)r, dim + 1,
                        (long long)n, sx);
    }
    p->n[d] = n;
    p->m[d] = shape[dim] = m;
    p->before[d] = l;
    p->after[d] = r;
  }
  int st = mg_check_shape(ctx, "pad", ndim, shape);
  if (st) return st;
  p->in_plane = p->out_plane = 1;
  for (int d = 0; d < k; d++) {
    p->in_plane *= p->n[d];
    p->out_plane *= p->m[d];
  }
  return MG_OK;
}

/* The maps, in one int64 tensor *maps that the caller releases. */
static int make_maps(mg_Context *ctx, Pad *p, mg_PadMode mode, mg_Tensor **maps) {
  int64_t total = 0;
  for (int d = 0; d < p->k; d++) total += p->m[d];
  int st = mg_alloc_tensor(ctx, maps, MG_I64, 1, &total);
  if (st) return st;
  int64_t *at = mg_data(*maps);
  for (int d = 0; d < p->k; d++) {
    p->map[d] = at;
    for (int64_t o = 0; o < p->m[d]; o++)
      at[o] = source(mode, o, p->n[d], p->before[d], p->after[d]);
    at += p->m[d];
  }
  return MG_OK;
}

/* The input row (within a plane, in units of the last dim's size) that
 * output row r reads, or -1 when it is all constant. */
static int64_t source_row(const Pad *p, int64_t r) {
  int64_t src = 0, scale = 1;
  for (int d = p->k - 2; d >= 0; d--) {
    int64_t j = p->map[d][r % p->m[d]];
    if (j < 0) return -1;
    src += j * scale;
    scale *= p->n[d];
    r /= p->m[d];
  }
  return src;
}

/* y's plane pl from x's, element size es (y pre-filled with the constant). */
static void gather_plane(const Pad *p, size_t es, const char *x, char *y, int64_t pl) {
  int64_t W = p->m[p->k - 1], nW = p->n[p->k - 1], rows = p->out_plane / (W ? W : 1);
  const int64_t *map = p->map[p->k - 1];
  const char *xp = x + (size_t)(pl * p->in_plane) * es;
  char *yp = y + (size_t)(pl * p->out_plane) * es;
  for (int64_t r = 0; r < rows; r++) {
    int64_t sr = source_row(p, r);
    if (sr < 0) continue;
    const char *xr = xp + (size_t)(sr * nW) * es;
    char *yr = yp + (size_t)(r * W) * es;
    for (int64_t o = 0; o < W; o++) {
      int64_t j = map[o];
      if (j < 0) continue;
      switch (es) { /* fixed sizes, so each copy is one move */
      case 1: memcpy(yr + o, xr + j, 1); break;
      case 2: memcpy(yr + 2 * o, xr + 2 * j, 2); break;
      case 4: memcpy(yr + 4 * o, xr + 4 * j, 4); break;
      case 8: memcpy(yr + 8 * o, xr + 8 * j, 8); break;
      default: memcpy(yr + (size_t)o * es, xr + (size_t)j * es, es);
      }
    }
  }
}

/* gx's plane pl += g's plane scattered back. */
static void scatter_plane_f32(const Pad *p, const char *g, char *gx, int64_t pl) {
  int64_t W = p->m[p->k - 1], nW = p->n[p->k - 1], rows = p->out_plane / (W ? W : 1);
  const int64_t *map = p->map[p->k - 1];
  for (int64_t r = 0; r < rows; r++) {
    int64_t sr = source_row(p, r);
    if (sr < 0) continue;
    int64_t src = pl * p->in_plane + sr * nW, dst = pl * p->out_plane + r * W;
    float *a = (float *)gx + src;
    const float *b = (const float *)g + dst;
    for (int64_t o = 0; o < W; o++)
      if (map[o] >= 0) a[map[o]] += b[o];
  }
}
/* f64 twin of scatter_plane_f32 */
static void scatter_plane_f64(const Pad *p, const char *g, char *gx, int64_t pl) {
  int64_t W = p->m[p->k - 1], nW = p->n[p->k - 1], rows = p->out_plane / (W ? W : 1);
  const int64_t *map = p->map[p->k - 1];
  for (int64_t r = 0; r < rows; r++) {
    int64_t sr = source_row(p, r);
    if (sr < 0) continue;
    int64_t src = pl * p->in_plane + sr * nW, dst = pl * p->out_plane + r * W;
    double *a = (double *)gx + src;
    const double *b = (const double *)g + dst;
    for (int64_t o = 0; o < W; o++)
      if (map[o] >= 0) a[map[o]] += b[o];
  }
}

/* Threads for planes of `each` elements. */
static int plane_threads(const mg_Context *ctx, int64_t planes, int64_t each) {
  if (planes < 2) return 1;
  double work = (double)planes * (double)each;
  int nt = mg_threads_for(ctx, work < 0x1p62 ? (int64_t)work : INT64_MAX);
  return nt > planes ? (int)planes : nt;
}

/* Rebuilds the geometry of node n: input shape from the node, the padding
 * from the saved int64 tensor, the mode from i[0]. */
static int node_pad(mg_Context *ctx, mg_Node *n, Pad *p, mg_Tensor **maps) {
  const mg_Tensor *pads = n->saved[0];
  int npad = (int)pads->shape[0];
  const int64_t *pd = mg_data(pads);
  mg_PadMode mode = (mg_PadMode)n->i[0];
  int st = check(ctx, n->in_ndim[0], n->in_shape[0], npad, pd, mode, p);
  return st ? st : make_maps(ctx, p, mode, maps);
}

static int pad_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g, mg_Tensor **grads) {
  Pad p;
  mg_Tensor *maps = NULL, *gc = NULL, *gx = NULL;
  mg_DType dt = n->in_dtype[0] == MG_F32 ? MG_F32 : MG_F64;
  int st = node_pad(ctx, n, &p, &maps);
  if (st) return st;
  if ((st = mg_nn_prep(ctx, &gc, g, dt)) ||
      (st = mg_full(ctx, &gx, dt, n->in_ndim[0], n->in_shape[0], 0)))
    goto done;
  if (p.out_plane > 0 && p.in_plane > 0) {
    const char *G = mg_data(gc);
    char *GX = mg_data(gx);
    int nt = plane_threads(ctx, p.planes, p.out_plane);
    void (*scatter)(const Pad *, const char *, char *, int64_t) =
        dt == MG_F32 ? scatter_plane_f32 : scatter_plane_f64;
    MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < p.planes; pl++) { scatter(&p, G, GX, pl); });
  }
  grads[0] = gx;
  gx = NULL;
done:
  mg_tensor_decref(maps);
  mg_tensor_decref(gc);
  mg_tensor_decref(gx);
  return st;
}

int mg_pad(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, int npad,
           const int64_t *pad, mg_PadMode mode, double value) {
  if (mode < MG_PAD_CONSTANT || mode > MG_PAD_CIRCULAR)
    return mg_error(ctx, MG_EARG, "pad: unknown padding mode %d", (int)mode);
  if (mode != MG_PAD_CONSTANT && value != 0)
    return mg_error(ctx, MG_EARG, "pad: mode \"%s\" takes no value, got %g",
                    mode_names[mode], value);
  Pad p;
  int st = check(ctx, x->ndim, x->shape, npad, pad, mode, &p);
  if (st) return st;
  int64_t shape[MG_MAXDIM], n = npad;
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  for (int d = 0; d < p.k; d++) shape[x->ndim - p.k + d] = p.m[d];
  mg_Tensor *xc = NULL, *r = NULL, *maps = NULL, *pads = NULL;
  int mode_was = mg_set_grad_enabled(ctx, 0);
  if ((st = mg_contiguous(ctx, &xc, x)) || (st = make_maps(ctx, &p, mode, &maps)))
    goto fail;
  if (mode != MG_PAD_CONSTANT) {
    if ((st = mg_alloc_tensor(ctx, &r, x->dtype, x->ndim, shape))) goto fail;
  } else if ((st = mg_full(ctx, &r, x->dtype, x->ndim, shape, value))) {
    if (st == MG_EARG) { /* a value the dtype cannot hold: say it is pad's */
      char msg[256];
      const char *m = mg_last_error(ctx), *colon = strstr(m, ": ");
      snprintf(msg, sizeof msg, "%s", colon ? colon + 2 : m);
      st = mg_error(ctx, st, "pad: value %s", msg);
    }
    goto fail;
  }
  mg_set_grad_enabled(ctx, mode_was);
  if (p.out_plane > 0 && p.in_plane > 0) {
    size_t es = mg_dtype_size(x->dtype);
    const char *X = mg_data(xc);
    char *Y = mg_data(r);
    int nt = plane_threads(ctx, p.planes, p.out_plane);
    MG_PARALLEL_FOR(nt, for (int64_t pl = 0; pl < p.planes; pl++) { gather_plane(&p, es, X, Y, pl); });
  }
  if (mg_needs_grad(ctx, 1, &x)) {
    mg_Node *node;
    if ((st = mg_alloc_tensor(ctx, &pads, MG_I64, 1, &n))) goto fail;
    if (npad) memcpy(mg_data(pads), pad, sizeof(int64_t) * (size_t)npad);
    if ((st = mg_record(ctx, r, "pad", pad_backward, 1, &x, &node)) ||
        (st = mg_save(ctx, node, 0, pads)))
      goto fail;
    node->i[0] = mode;
  }
  mg_tensor_decref(xc);
  mg_tensor_decref(maps);
  mg_tensor_decref(pads);
  *out = r;
  return MG_OK;
fail:
  mg_set_grad_enabled(ctx, mode_was);
  mg_tensor_decref(xc);
  mg_tensor_decref(maps);
  mg_tensor_decref(pads);
  mg_tensor_decref(r);
  return st;
}
