/*
 * autograd.c — the graph: grad mode, a tensor's autograd metadata, and
 * recording (mg_record links an op's output to a node). Above tensor.c,
 * below every op: ops keep their own backward next to their forward, in
 * their family's file, and this file knows none of them. The engine that
 * runs the graph is backward.c; releasing nodes is tensor.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "mg_internal.h"

/* ---- grad mode and tensor metadata ------------------------------------------ */

int mg_grad_enabled(const mg_Context *ctx) { return ctx->grad_enabled; }

int mg_set_grad_enabled(mg_Context *ctx, int on) {
  int old = ctx->grad_enabled;
  ctx->grad_enabled = on != 0;
  return old;
}

mg_Autograd *mg_autograd_meta(mg_Context *ctx, mg_Tensor *t) {
  if (!t->autograd && !(t->autograd = calloc(1, sizeof *t->autograd)))
    mg_error(ctx, MG_ENOMEM, "not enough memory for autograd metadata");
  return t->autograd;
}

int mg_requires_grad(const mg_Tensor *t) {
  return t->autograd && t->autograd->requires_grad;
}

int mg_is_leaf(const mg_Tensor *t) {
  return !t->autograd || !t->autograd->grad_fn;
}

mg_Tensor *mg_grad(const mg_Tensor *t) {
  return t->autograd ? t->autograd->grad : NULL;
}

const char *mg_grad_fn_name(const mg_Tensor *t) {
  return t->autograd && t->autograd->grad_fn ? t->autograd->grad_fn->name
                                             : NULL;
}

int mg_set_requires_grad(mg_Context *ctx, mg_Tensor *t, int on) {
  if (!mg_is_leaf(t))
    return mg_error(ctx, MG_EARG, "requires_grad: only a leaf tensor's flag "
                    "can be changed; this one was computed by %s (use "
                    "detach() for a new leaf)", mg_grad_fn_name(t));
  if (on && t->dtype != MG_F32 && t->dtype != MG_F64)
    return mg_error(ctx, MG_EARG, "requires_grad: only float32 and float64 "
                    "tensors can require grad, got %s", mg_dtype_name(t->dtype));
  if (!on && !t->autograd) return MG_OK;
  mg_Autograd *m = mg_autograd_meta(ctx, t);
  if (!m) return MG_ENOMEM;
  m->requires_grad = on != 0;
  return MG_OK;
}

int mg_set_grad(mg_Context *ctx, mg_Tensor *t, mg_Tensor *g) {
  if (g && !mg_same_shape(t->ndim, t->shape, g->ndim, g->shape)) {
    char a[MG_SHAPE_BUFSZ], b[MG_SHAPE_BUFSZ];
    return mg_error(ctx, MG_ESHAPE, "grad: a gradient of shape %s does not "
                    "fit a tensor of shape %s",
                    mg_shape_str(a, sizeof a, g->ndim, g->shape),
                    mg_shape_str(b, sizeof b, t->ndim, t->shape));
  }
  if (g && g->dtype != t->dtype)
    return mg_error(ctx, MG_EARG, "grad: a %s gradient does not fit a %s "
                    "tensor", mg_dtype_name(g->dtype), mg_dtype_name(t->dtype));
  if (!g && !t->autograd) return MG_OK;
  mg_Autograd *m = mg_autograd_meta(ctx, t);
  if (!m) return MG_ENOMEM;
  if (g) mg_tensor_incref(g);
  mg_tensor_decref(m->grad);
  m->grad = g;
  return MG_OK;
}

int mg_detach(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t) {
  return mg_make_view(ctx, out, t, t->ndim, t->shape, t->stride, t->offset);
}

/* ---- recording ------------------------------------------------------------------ */

int mg_needs_grad(const mg_Context *ctx, int n, mg_Tensor *const *inputs) {
  if (!ctx->grad_enabled) return 0;
  for (int i = 0; i < n; i++)
    if (inputs[i] && mg_requires_grad(inputs[i])) return 1;
  return 0;
}

int mg_record(mg_Context *ctx, mg_Tensor *out, const char *name,
              mg_BackwardFn backward, int n, mg_Tensor *const *inputs,
              mg_Node **node) {
  *node = NULL;
#ifndef MG_CHECK_OP_LIST
  if (ctx->op_seen)
#endif
  {
    int st = mg_note_op(ctx, name);
    if (st) return st;
  }
  /* An op that handed back one of its inputs (contiguous() of a contiguous
   * tensor) is the identity: the input's own history is the right one. */
  for (int i = 0; i < n; i++)
    if (inputs[i] == out) return MG_OK;
  mg_assert(n <= MG_NODE_MAXIN);
  mg_Node *nd = calloc(1, sizeof *nd);
  if (!nd) return mg_error(ctx, MG_ENOMEM, "%s: not enough memory for the "
                           "autograd graph", name);
  mg_Autograd *m = mg_autograd_meta(ctx, out);
  if (!m) {
    free(nd);
    return MG_ENOMEM;
  }
  nd->refcount = 1; /* out's reference */
  nd->name = name;
  nd->backward = backward;
  nd->ninputs = n;
  for (int i = 0; i < n; i++) {
    mg_Tensor *t = inputs[i];
    if (!t) continue;
    nd->in_ndim[i] = t->ndim;
    if (t->ndim) memcpy(nd->in_shape[i], t->shape, sizeof(int64_t) * (size_t)t->ndim);
    nd->in_dtype[i] = t->dtype;
    if (!mg_requires_grad(t)) continue;
    if (t->autograd->grad_fn) {
      nd->next[i].node = t->autograd->grad_fn;
      t->autograd->grad_fn->refcount++;
    } else {
      nd->next[i].leaf = t;
      mg_tensor_incref(t);
    }
  }
  mg_node_decref(m->grad_fn); /* out is new, but be safe */
  m->grad_fn = nd;
  m->requires_grad = 1;
  *node = nd;
  return MG_OK;
}

int mg_save(mg_Context *ctx, mg_Node *node, int k, const mg_Tensor *t) {
  if (!node) return MG_OK;
  mg_assert(k < MG_NODE_MAXSAVED);
  mg_Tensor *alias = NULL;
  int st = mg_detach(ctx, &alias, t);
  if (st) return st;
  mg_tensor_decref(node->saved[k]);
  node->saved[k] = alias;
  node->saved_version[k] = t->storage->version;
  return MG_OK;
}

int mg_node_needs(const mg_Node *node, int i) {
  return node->next[i].node || node->next[i].leaf;
}

int mg_check_inplace(mg_Context *ctx, const char *op, mg_Tensor *t) {
  if (ctx->grad_enabled && mg_requires_grad(t))
    return mg_error(ctx, MG_EARG, "%s: in-place operation on a tensor that "
                    "requires grad%s; use the out-of-place form, or run it "
                    "inside mg.no_grad", op,
                    mg_is_leaf(t) ? " (a leaf)" : "");
  /* An expanded tensor (stride 0 along a dim of size > 1) has several
   * elements in one memory location: a write would land once per alias
   * (x:expand(4, 3):add_(1) adds 4; copy_ keeps the last row), so refuse
   * it, as PyTorch does. */
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] == 0 && t->shape[d] > 1) {
      char b[MG_SHAPE_BUFSZ];
      return mg_error(ctx, MG_EARG, "%s: the destination of shape %s is "
                      "expanded (several of its elements share one memory "
                      "location); clone it first", op,
                      mg_shape_str(b, sizeof b, t->ndim, t->shape));
    }
  return MG_OK;
}

/* ---- helpers for backward formulas (see mg_internal.h) ----------------------- */

void mg_bw_begin(mg_Bw *b, mg_Context *ctx) {
  b->ctx = ctx;
  b->st = MG_OK;
  b->n = 0;
}

mg_Tensor *mg_bw_hold(mg_Bw *b, int st, mg_Tensor **tp) {
  mg_Tensor *t = *tp;
  if (b->st || st) {
    if (!b->st) b->st = st;
    mg_tensor_decref(t);
    return NULL;
  }
  if (b->n == MG_BW_MAXTMP) {
    mg_tensor_decref(t);
    b->st = mg_error(b->ctx, MG_EARG, "backward: formula too long");
    return NULL;
  }
  b->tmp[b->n++] = t;
  return t;
}

void mg_bw_out(mg_Bw *b, mg_Tensor **slot, mg_Tensor *x) {
  if (b->st || !x) return;
  mg_tensor_incref(x);
  *slot = x;
}

int mg_bw_end(mg_Bw *b) {
  for (int i = 0; i < b->n; i++) mg_tensor_decref(b->tmp[i]);
  b->n = 0;
  return b->st;
}
