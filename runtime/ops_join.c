/*
 * ops_join.c — cat and stack: one tensor made from a list of tensors.
 *
 * The forward is one copy of each input into its window of the result
 * (mg_copy_ converts dtypes and runs on the strided iterator). The backward
 * hands each input the same window of the gradient.
 *
 * A list can be long (an RNN's hidden states over 100 steps) while a node
 * holds at most MG_NODE_MAXIN inputs. Rather than copying the data again
 * through a chain of smaller cats, the gradient is routed through a tree:
 * the inputs are split into at most MG_NODE_MAXIN groups, each group is
 * recorded as a cat onto a view of its window of the result, and the
 * result's node takes those views as its inputs (recursively, so the tree
 * has depth log4(n)). The views only carry nodes; nothing is copied for
 * them, and their backward passes gradient windows down without copying.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mg_internal.h"

/* "[2,*,4]": shape with dim shown as any size, for messages. */
static char *shape_except(char *buf, size_t n, const mg_Tensor *t, int dim) {
  size_t k = 0;
  buf[k++] = '[';
  for (int d = 0; d < t->ndim && k + 24 < n; d++) {
    int w = d == dim ? snprintf(buf + k, n - k, "%s*", d ? "," : "")
                     : snprintf(buf + k, n - k, "%s%lld", d ? "," : "",
                                (long long)t->shape[d]);
    k += (size_t)w;
  }
  snprintf(buf + k, n - k, "]");
  return buf;
}

/* Checks that ts[0..n-1] can be joined along dim (0-based) and fills the
 * result's dtype and shape. Messages number tensors from 1, as Lua does. */
static int check_cat(mg_Context *ctx, const char *op, int n,
                     mg_Tensor *const *ts, int dim, mg_DType *dt,
                     int64_t *shape) {
  char a[MG_SHAPE_BUFSZ], b[MG_SHAPE_BUFSZ];
  if (n < 1)
    return mg_error(ctx, MG_EARG, "%s: expected a non-empty list of tensors",
                    op);
  for (int i = 0; i < n; i++)
    if (!ts[i])
      return mg_error(ctx, MG_EARG, "%s: tensor %d is missing", op, i + 1);
  const mg_Tensor *t0 = ts[0];
  for (int i = 0; i < n; i++)
    if (ts[i]->ndim == 0)
      return mg_error(ctx, MG_ESHAPE, "%s: tensor %d is 0-dimensional and "
                      "has no dimension to join along (use stack)", op, i + 1);
  if (dim < 0 || dim >= t0->ndim)
    return mg_error(ctx, MG_EINDEX, "%s: dimension %d out of range for "
                    "%d-dimensional tensors", op, dim + 1, t0->ndim);
  *dt = t0->dtype;
  memcpy(shape, t0->shape, sizeof(int64_t) * (size_t)t0->ndim);
  shape[dim] = 0;
  for (int i = 0; i < n; i++) {
    const mg_Tensor *t = ts[i];
    if (t->ndim != t0->ndim)
      return mg_error(ctx, MG_ESHAPE, "%s: tensor %d has shape %s, expected "
                      "%d dimensions like tensor 1's %s", op, i + 1,
                      mg_shape_str(a, sizeof a, t->ndim, t->shape), t0->ndim,
                      mg_shape_str(b, sizeof b, t0->ndim, t0->shape));
    int fits = 1;
    for (int d = 0; fits && d < t->ndim; d++)
      fits = d == dim || t->shape[d] == t0->shape[d];
    if (!fits)
      return mg_error(ctx, MG_ESHAPE, "%s: tensor %d has shape %s, expected "
                      "%s (sizes must match except along dimension %d)", op,
                      i + 1, mg_shape_str(a, sizeof a, t->ndim, t->shape),
                      shape_except(b, sizeof b, t0, dim), dim + 1);
    if (t->shape[dim] > INT64_MAX - shape[dim])
      return mg_error(ctx, MG_ESHAPE, "%s: the joined size along dimension "
                      "%d does not fit in 64 bits", op, dim + 1);
    shape[dim] += t->shape[dim];
    *dt = mg_promote(*dt, t->dtype);
  }
  return mg_check_shape(ctx, op, t0->ndim, shape);
}

/* The window of r along dim from start, len long (a view, never recorded). */
static int window(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *r,
                  int dim, int64_t start, int64_t len) {
  int64_t shape[MG_MAXDIM];
  memcpy(shape, r->shape, sizeof(int64_t) * (size_t)r->ndim);
  shape[dim] = len;
  return mg_make_view(ctx, out, r, r->ndim, shape, r->stride,
                      r->offset + start * r->stride[dim]);
}

/* i[0] = dim; i[1] = bit k set when input k is a group's view inside the
 * tree (its gradient may stay a strided window: only this file's nodes
 * read it); the others get contiguous gradients, as every view op hands
 * the engine. */
static int cat_backward(mg_Context *ctx, mg_Node *n, mg_Tensor *g,
                        mg_Tensor **grads) {
  mg_Bw b;
  mg_bw_begin(&b, ctx);
  int dim = (int)n->i[0];
  int64_t start = 0;
  for (int k = 0; k < n->ninputs; k++) {
    int64_t len = n->in_shape[k][dim];
    if (mg_node_needs(n, k)) {
      mg_Tensor *w = NULL, *c = NULL;
      w = mg_bw_hold(&b, window(ctx, &w, g, dim, start, len), &w);
      if (w && !((n->i[1] >> k) & 1))
        w = mg_bw_hold(&b, mg_contiguous(ctx, &c, w), &c);
      mg_bw_out(&b, &grads[k], w);
    }
    start += len;
  }
  return mg_bw_end(&b);
}

/* Records r = op(ts[0..n-1]) along dim, as a tree when n > MG_NODE_MAXIN
 * (see the top of the file). r's data is already written. */
static int record_cat(mg_Context *ctx, mg_Tensor *r, const char *op, int n,
                      mg_Tensor *const *ts, int dim) {
  mg_Tensor *ins[MG_NODE_MAXIN] = {NULL};
  int nin = 0, st = MG_OK;
  int64_t inner = 0;
  if (n <= MG_NODE_MAXIN) {
    for (int k = 0; k < n; k++) ins[nin++] = ts[k];
  } else {
    int per = (n + MG_NODE_MAXIN - 1) / MG_NODE_MAXIN;
    int64_t start = 0;
    for (int s = 0; s < n && !st; s += per) {
      int cnt = n - s < per ? n - s : per;
      int64_t len = 0;
      for (int k = s; k < s + cnt; k++) len += ts[k]->shape[dim];
      if (cnt == 1) {
        ins[nin++] = ts[s];
      } else {
        /* A group nothing in needs a gradient stays a plain view: the
         * parent then records no edge to it. */
        if (!(st = window(ctx, &ins[nin], r, dim, start, len)) &&
            mg_needs_grad(ctx, cnt, ts + s))
          st = record_cat(ctx, ins[nin], op, cnt, ts + s, dim);
        inner |= (int64_t)1 << nin;
        nin++;
      }
      start += len;
    }
  }
  mg_Node *node = NULL;
  if (!st) st = mg_record(ctx, r, op, cat_backward, nin, ins, &node);
  if (node) node->i[0] = dim, node->i[1] = inner;
  for (int k = 0; k < nin; k++)
    if ((inner >> k) & 1) mg_tensor_decref(ins[k]);
  return st;
}

static int join(mg_Context *ctx, mg_Tensor **out, const char *op, int n,
                mg_Tensor *const *ts, int dim) {
  mg_DType dt = MG_F32;
  int64_t shape[MG_MAXDIM];
  int st = check_cat(ctx, op, n, ts, dim, &dt, shape);
  if (st) return st;
  mg_Tensor *r = NULL;
  if ((st = mg_alloc_tensor(ctx, &r, dt, ts[0]->ndim, shape))) return st;
  int64_t start = 0;
  for (int k = 0; k < n && !st; k++) {
    mg_Tensor *w = NULL;
    if (!(st = window(ctx, &w, r, dim, start, ts[k]->shape[dim])))
      st = mg_copy_(ctx, w, ts[k]);
    mg_tensor_decref(w);
    start += ts[k]->shape[dim];
  }
  if (!st && mg_needs_grad(ctx, n, ts)) st = record_cat(ctx, r, op, n, ts, dim);
  if (st) {
    mg_tensor_decref(r);
    return st;
  }
  *out = r;
  return MG_OK;
}

int mg_cat(mg_Context *ctx, mg_Tensor **out, int n, mg_Tensor *const *ts,
           int dim) {
  return join(ctx, out, "cat", n, ts, dim);
}

/* stack = cat of the inputs unsqueezed at dim: the unsqueezes are views
 * that record their own (reshaping) backward. */
int mg_stack(mg_Context *ctx, mg_Tensor **out, int n, mg_Tensor *const *ts,
             int dim) {
  char a[MG_SHAPE_BUFSZ], b[MG_SHAPE_BUFSZ];
  if (n < 1)
    return mg_error(ctx, MG_EARG, "stack: expected a non-empty list of "
                    "tensors");
  for (int i = 0; i < n; i++)
    if (!ts[i])
      return mg_error(ctx, MG_EARG, "stack: tensor %d is missing", i + 1);
  const mg_Tensor *t0 = ts[0];
  if (dim < 0 || dim > t0->ndim)
    return mg_error(ctx, MG_EINDEX, "stack: dimension %d out of range for "
                    "%d-dimensional tensors (1..%d)", dim + 1, t0->ndim,
                    t0->ndim + 1);
  for (int i = 1; i < n; i++)
    if (ts[i]->ndim != t0->ndim ||
        (t0->ndim && memcmp(ts[i]->shape, t0->shape,
                            sizeof(int64_t) * (size_t)t0->ndim)))
      return mg_error(ctx, MG_ESHAPE, "stack: tensor %d has shape %s, "
                      "expected %s (stack needs equal shapes)", i + 1,
                      mg_shape_str(a, sizeof a, ts[i]->ndim, ts[i]->shape),
                      mg_shape_str(b, sizeof b, t0->ndim, t0->shape));
  mg_Tensor **us = calloc((size_t)n, sizeof *us);
  if (!us) return mg_error(ctx, MG_ENOMEM, "stack: not enough memory");
  int st = MG_OK;
  for (int i = 0; i < n && !st; i++) st = mg_unsqueeze(ctx, &us[i], ts[i], dim);
  if (!st) st = join(ctx, out, "stack", n, us, dim);
  for (int i = 0; i < n; i++) mg_tensor_decref(us[i]);
  free(us);
  return st;
}
