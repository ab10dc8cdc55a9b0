/*
 * autograd.c — the graph and the backward engine.
 *
 * Recording (mg_record) links an op's output to a node; backward
 * (mg_backward) walks the nodes reachable from the root once, in an order
 * where each node runs only after every consumer of its output has sent
 * its gradient, and accumulates into leaves. Ops keep their own backward
 * next to their forward, in their family's file; this file knows none of
 * them.
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

static mg_Autograd *meta(mg_Context *ctx, mg_Tensor *t) {
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
  mg_Autograd *m = meta(ctx, t);
  if (!m) return MG_ENOMEM;
  m->requires_grad = on != 0;
  return MG_OK;
}

static int same_shape(int na, const int64_t *a, int nb, const int64_t *b) {
  return na == nb && (na == 0 || !memcmp(a, b, sizeof(int64_t) * (size_t)na));
}

int mg_set_grad(mg_Context *ctx, mg_Tensor *t, mg_Tensor *g) {
  if (g && !same_shape(t->ndim, t->shape, g->ndim, g->shape)) {
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
  mg_Autograd *m = meta(ctx, t);
  if (!m) return MG_ENOMEM;
  if (g) mg_tensor_incref(g);
  mg_tensor_decref(m->grad);
  m->grad = g;
  return MG_OK;
}

int mg_detach(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t) {
  return mg_make_view(ctx, out, t, t->ndim, t->shape, t->stride, t->offset);
}

/* ---- nodes ---------------------------------------------------------------------
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

static void node_decref(mg_Node *n) {
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
  node_decref(m->grad_fn);
  free(m);
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
  mg_Autograd *m = meta(ctx, out);
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
  node_decref(m->grad_fn); /* out is new, but be safe */
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

void mg_bump_version(mg_Tensor *t) { t->storage->version++; }

/* ---- gradients of broadcast inputs ------------------------------------------ */

int mg_sum_to(mg_Context *ctx, mg_Tensor **out, mg_Tensor *grad, int ndim,
              const int64_t *shape) {
  if (same_shape(grad->ndim, grad->shape, ndim, shape)) {
    mg_tensor_incref(grad);
    *out = grad;
    return MG_OK;
  }
  mg_Tensor *cur = grad, *next = NULL;
  mg_tensor_incref(cur);
  int st = MG_OK, lead = grad->ndim - ndim;
  /* Leading dims the input did not have: fold them into one and sum it. */
  if (lead > 0) {
    int64_t shp[MG_MAXDIM], n = 1;
    for (int d = 0; d < lead; d++) n *= cur->shape[d];
    shp[0] = n;
    for (int d = 0; d < ndim; d++) shp[d + 1] = cur->shape[lead + d];
    mg_Tensor *flat = NULL;
    if ((st = mg_reshape(ctx, &flat, cur, ndim + 1, shp))) goto done;
    st = mg_reduce(ctx, &next, NULL, MG_RED_SUM, flat, 0, 0, 0);
    mg_tensor_decref(flat);
    if (st) goto done;
    mg_tensor_decref(cur);
    cur = next;
    next = NULL;
  }
  /* Dims the input had as size 1. */
  for (int d = 0; d < ndim; d++) {
    if (shape[d] != 1 || cur->shape[d] == 1) continue;
    if ((st = mg_reduce(ctx, &next, NULL, MG_RED_SUM, cur, d, 1, 0))) goto done;
    mg_tensor_decref(cur);
    cur = next;
    next = NULL;
  }
  *out = cur;
  return MG_OK;
done:
  mg_tensor_decref(cur);
  return st;
}

/* ---- the engine ------------------------------------------------------------------ */

/* Adds g into a leaf's .grad (taking g when the leaf has none yet). */
static int accumulate_leaf(mg_Context *ctx, mg_Tensor *leaf, mg_Tensor *g) {
  mg_Autograd *m = meta(ctx, leaf);
  if (!m) return MG_ENOMEM;
  if (!m->grad) {
    /* g may alias another gradient (add's backward hands the same tensor
     * to both inputs) or a view: a leaf's .grad must be its own. */
    if (g->refcount == 1 && g->storage->refcount == 1 && mg_is_contiguous(g)) {
      mg_tensor_incref(g);
      m->grad = g;
      return MG_OK;
    }
    return mg_clone(ctx, &m->grad, g);
  }
  return mg_binary_(ctx, MG_OP_ADD, m->grad, g);
}

typedef struct {
  mg_Node **v;
  size_t n, cap;
} NodeList;

static int push(mg_Context *ctx, NodeList *l, mg_Node *n) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    mg_Node **v = realloc(l->v, nc * sizeof *v);
    if (!v) return mg_error(ctx, MG_ENOMEM, "backward: not enough memory");
    l->v = v;
    l->cap = nc;
  }
  l->v[l->n++] = n;
  return MG_OK;
}

void mg_set_grad_hook(mg_Context *ctx, mg_GradHook hook, void *ud) {
  ctx->grad_hook = hook;
  ctx->grad_hook_ud = ud;
}

/* With a grad hook: counts, for each leaf, the edges of this backward that
 * lead to it, so the engine knows when its gradient is complete. */
static void count_leaf_edges(mg_Context *ctx, mg_Node *n, uint64_t mark) {
  for (int i = 0; i < n->ninputs; i++) {
    mg_Tensor *leaf = n->next[i].leaf;
    mg_Autograd *m = leaf ? leaf->autograd : NULL;
    if (!m) continue;
    if (m->hook_mark != mark) {
      m->hook_mark = mark;
      m->hook_pending = 0;
    }
    m->hook_pending++;
  }
}

/* An edge into leaf has delivered (or had nothing to deliver): when it was
 * the last, the hook gets the complete gradient. */
static void leaf_edge_done(mg_Context *ctx, mg_Tensor *leaf) {
  mg_Autograd *m = leaf->autograd;
  if (!ctx->grad_hook || !m || m->hook_mark != ctx->backward_mark) return;
  if (--m->hook_pending == 0 && m->grad) ctx->grad_hook(ctx->grad_hook_ud, leaf, m->grad);
}

/* Every node reachable from root, each once, with pending = the number of
 * edges into it from other reachable nodes. */
static int collect(mg_Context *ctx, mg_Node *root, NodeList *all) {
  NodeList stack = {0};
  uint64_t mark = ++ctx->backward_mark;
  int st = push(ctx, &stack, root);
  root->mark = mark;
  root->pending = 0;
  while (!st && stack.n > 0) {
    mg_Node *n = stack.v[--stack.n];
    if ((st = push(ctx, all, n))) break;
    if (ctx->grad_hook) count_leaf_edges(ctx, n, mark);
    for (int i = 0; i < n->ninputs && !st; i++) {
      mg_Node *p = n->next[i].node;
      if (!p) continue;
      if (p->mark != mark) {
        p->mark = mark;
        p->pending = 0;
        st = push(ctx, &stack, p);
      }
      p->pending++;
    }
  }
  free(stack.v);
  return st;
}

static int check_saved(mg_Context *ctx, const mg_Node *n) {
  if (n->released)
    return mg_error(ctx, MG_EARG, "backward: trying to go through the graph "
                    "a second time (at %s), but its saved tensors were freed "
                    "by the first backward; pass {retain_graph = true} to "
                    "that one", n->name);
  for (int k = 0; k < MG_NODE_MAXSAVED; k++)
    if (n->saved[k] && n->saved[k]->storage->version != n->saved_version[k])
      return mg_error(ctx, MG_EARG, "backward: a tensor that %s saved for "
                      "its gradient was modified in place afterwards "
                      "(version %llu, saved at %llu)", n->name,
                      (unsigned long long)n->saved[k]->storage->version,
                      (unsigned long long)n->saved_version[k]);
  return MG_OK;
}

/* Runs one node's backward and sends each input its gradient. */
static int run_node(mg_Context *ctx, mg_Node *n, NodeList *ready,
                    int retain_graph) {
  mg_Tensor *grads[MG_NODE_MAXIN] = {NULL};
  int st = MG_OK;
  if (n->grad) {
    if ((st = check_saved(ctx, n))) return st;
    st = n->backward(ctx, n, n->grad, grads);
    mg_tensor_decref(n->grad);
    n->grad = NULL;
  }
  for (int i = 0; i < n->ninputs; i++) {
    mg_Tensor *g = grads[i];
    mg_Edge e = n->next[i];
    if (!st && g && g->dtype != n->in_dtype[i]) {
      mg_Tensor *c = NULL;
      st = mg_to_dtype(ctx, &c, g, n->in_dtype[i]);
      mg_tensor_decref(g);
      g = c;
    }
    if (!st && g) {
      mg_assert(same_shape(g->ndim, g->shape, n->in_ndim[i], n->in_shape[i]));
      if (e.leaf) {
        st = accumulate_leaf(ctx, e.leaf, g);
      } else if (e.node && !e.node->grad) {
        mg_tensor_incref(g);
        e.node->grad = g;
      } else if (e.node) {
        mg_Tensor *sum = NULL;
        if (!(st = mg_binary(ctx, &sum, MG_OP_ADD, e.node->grad, g))) {
          mg_tensor_decref(e.node->grad);
          e.node->grad = sum;
        }
      }
    }
    mg_tensor_decref(g);
    if (e.leaf && !st) leaf_edge_done(ctx, e.leaf);
    if (e.node && --e.node->pending == 0 && !st) st = push(ctx, ready, e.node);
  }
  if (!retain_graph) {
    for (int k = 0; k < MG_NODE_MAXSAVED; k++) {
      mg_tensor_decref(n->saved[k]);
      n->saved[k] = NULL;
    }
    n->released = 1;
  }
  return st;
}

int mg_backward(mg_Context *ctx, mg_Tensor *root, mg_Tensor *grad,
                int retain_graph) {
  char a[MG_SHAPE_BUFSZ], b[MG_SHAPE_BUFSZ];
  if (!mg_requires_grad(root))
    return mg_error(ctx, MG_EARG, "backward: the tensor does not require "
                    "grad (no recorded op made it from a tensor that "
                    "requires grad, or it was computed inside no_grad)");
  mg_Tensor *g = NULL;
  int st;
  if (grad) {
    if (!same_shape(grad->ndim, grad->shape, root->ndim, root->shape))
      return mg_error(ctx, MG_ESHAPE, "backward: a gradient of shape %s "
                      "does not fit the tensor's shape %s",
                      mg_shape_str(a, sizeof a, grad->ndim, grad->shape),
                      mg_shape_str(b, sizeof b, root->ndim, root->shape));
    if ((st = mg_to_dtype(ctx, &g, grad, root->dtype))) return st;
  } else {
    if (mg_numel(root) != 1)
      return mg_error(ctx, MG_EARG, "backward: a gradient can be implied "
                      "only for a one-element tensor, this one has shape %s; "
                      "pass the gradient: t:backward(grad)",
                      mg_shape_str(a, sizeof a, root->ndim, root->shape));
    if ((st = mg_full(ctx, &g, root->dtype, root->ndim, root->shape, 1)))
      return st;
  }
  int mode = mg_set_grad_enabled(ctx, 0);
  mg_Node *top = root->autograd->grad_fn;
  if (!top) { /* a leaf: its gradient is the given one */
    st = accumulate_leaf(ctx, root, g);
    mg_tensor_decref(g);
    mg_set_grad_enabled(ctx, mode);
    if (!st && ctx->grad_hook) ctx->grad_hook(ctx->grad_hook_ud, root, mg_grad(root));
    return st;
  }
  NodeList all = {0}, ready = {0};
  if (!(st = collect(ctx, top, &all))) {
    mg_tensor_decref(top->grad);
    top->grad = g;
    g = NULL;
    st = push(ctx, &ready, top);
  }
  while (!st && ready.n > 0) st = run_node(ctx, ready.v[--ready.n], &ready, retain_graph);
  /* On failure, gradients parked on nodes that never ran are dropped. */
  for (size_t i = 0; i < all.n; i++) {
    mg_tensor_decref(all.v[i]->grad);
    all.v[i]->grad = NULL;
  }
  mg_tensor_decref(g);
  free(all.v);
  free(ready.v);
  mg_set_grad_enabled(ctx, mode);
  return st;
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

mg_Tensor *mg_bw_binary(mg_Bw *b, mg_BinaryOp op, mg_Tensor *x, mg_Tensor *y) {
  mg_Tensor *t = NULL;
  if (b->st || !x || !y) return NULL;
  return mg_bw_hold(b, mg_binary(b->ctx, &t, op, x, y), &t);
}

mg_Tensor *mg_bw_scalar(mg_Bw *b, mg_BinaryOp op, mg_Tensor *x, double s) {
  mg_Tensor *t = NULL;
  if (b->st || !x) return NULL;
  return mg_bw_hold(b, mg_binary_scalar(b->ctx, &t, op, x, s, 0, 0), &t);
}

mg_Tensor *mg_bw_rscalar(mg_Bw *b, mg_BinaryOp op, double s, mg_Tensor *x) {
  mg_Tensor *t = NULL;
  if (b->st || !x) return NULL;
  return mg_bw_hold(b, mg_binary_scalar(b->ctx, &t, op, x, s, 0, 1), &t);
}

mg_Tensor *mg_bw_unary(mg_Bw *b, mg_UnaryOp op, mg_Tensor *x) {
  mg_Tensor *t = NULL;
  if (b->st || !x) return NULL;
  return mg_bw_hold(b, mg_unary(b->ctx, &t, op, x), &t);
}

mg_Tensor *mg_bw_sum_to(mg_Bw *b, mg_Tensor *x, int ndim, const int64_t *shape) {
  mg_Tensor *t = NULL;
  if (b->st || !x) return NULL;
  return mg_bw_hold(b, mg_sum_to(b->ctx, &t, x, ndim, shape), &t);
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
