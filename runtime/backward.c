/*
 * backward.c — the backward engine: walks the nodes reachable from the
 * root once, in an order where each node runs only after every consumer of
 * its output has sent its gradient, and accumulates into leaves (with an
 * in-place add). Above the ops; it calls each node's backward through its
 * pointer and knows none of them by name (views.c says whether a node is
 * a window that can add into its input's gradient).
 */
#include <stdlib.h>
#include <string.h>

#include "mg_internal.h"

/* ---- the engine ------------------------------------------------------------------ */

/* Adds g into a leaf's .grad (taking g when the leaf has none yet). */
static int accumulate_leaf(mg_Context *ctx, mg_Tensor *leaf, mg_Tensor *g) {
  mg_Autograd *m = mg_autograd_meta(ctx, leaf);
  if (!m) return MG_ENOMEM;
  if (!m->grad) {
    /* g may alias another gradient (add's backward hands the same tensor
     * to both inputs) or a view: a leaf's .grad must be its own. */
    int st = MG_OK;
    if (g->refcount == 1 && g->storage->refcount == 1 && mg_is_contiguous(g)) {
      mg_tensor_incref(g);
      m->grad = g;
    } else {
      st = mg_clone(ctx, &m->grad, g);
    }
    /* zero_grad frees it by its count, not the collector (a borrowed
     * buffer was never charged) */
    if (!st && !m->grad->storage->borrowed) mg_gc_forgive(ctx, m->grad->storage->nbytes);
    return st;
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

/* A node's gradient so far that only the engine holds, over memory no
 * view shares and each element once: the next gradient for that node may
 * be added into it in place. */
static int owned_grad(const mg_Tensor *t, mg_DType dt) {
  return t && t->dtype == dt && t->refcount == 1 && t->storage->refcount == 1 &&
         !t->storage->borrowed && mg_is_dense(t);
}

/* Runs one node's backward and sends each input its gradient. A narrow or
 * select whose input already has an owned gradient adds into its window
 * (a recurrent layer's output and final state are windows of one
 * trajectory); other gradients that meet are summed, in place where the
 * sum so far is owned. */
static int run_node(mg_Context *ctx, mg_Node *n, NodeList *ready,
                    int retain_graph) {
  mg_Tensor *grads[MG_NODE_MAXIN] = {NULL};
  int st = MG_OK;
  if (n->grad) {
    if ((st = check_saved(ctx, n))) return st;
    mg_Node *in = n->ninputs == 1 ? n->next[0].node : NULL;
    mg_Tensor *win = NULL;
    if (in && owned_grad(in->grad, n->grad->dtype) && n->in_dtype[0] == n->grad->dtype &&
        mg_window_of(ctx, n, in->grad, &win, &st)) {
      if (!st) st = mg_binary_(ctx, MG_OP_ADD, win, n->grad);
      mg_tensor_decref(win);
    } else {
      st = n->backward(ctx, n, n->grad, grads);
    }
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
      mg_assert(mg_same_shape(g->ndim, g->shape, n->in_ndim[i], n->in_shape[i]));
      if (e.leaf) {
        st = accumulate_leaf(ctx, e.leaf, g);
      } else if (e.node && !e.node->grad) {
        mg_tensor_incref(g);
        e.node->grad = g;
      } else if (e.node && owned_grad(e.node->grad, g->dtype)) {
        st = mg_binary_(ctx, MG_OP_ADD, e.node->grad, g);
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
    if (!mg_same_shape(grad->ndim, grad->shape, root->ndim, root->shape))
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
