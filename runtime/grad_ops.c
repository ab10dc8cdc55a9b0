/*
 * grad_ops.c — the names under which ops record a backward (mg_record),
 * in one table, so that the gradient spec can prove it checks every one
 * (spec/gradients_spec.lua walks its own table of ops and input makers and
 * compares what was recorded with this list), and the audit that does it.
 *
 * Adding an op that records a backward means adding its name here and an
 * entry to the spec's table; builds with MG_CHECK_OP_LIST (the sanitized
 * one) refuse to record under a name missing here, so the whole suite
 * finds an op that was not added.
 */
#include <stdlib.h>
#include <string.h>

#include "mg_internal.h"

static const char *const names[] = {
    /* elementwise (ops_elementwise.c) */
    "neg", "abs", "sign", "square", "relu", "floor", "ceil", "round", "trunc", "sqrt",
    "rsqrt", "exp", "log", "log1p", "expm1", "tanh", "sigmoid", "sin", "cos", "reciprocal",
    "add", "sub", "mul", "div", "pow", "remainder", "maximum", "minimum", "atan2", "clamp",
    "where", "masked_fill",
    /* reductions (ops_reduce.c) */
    "sum", "mean", "prod", "max", "min", "var", "std",
    /* views and copies (views.c) */
    "view", "reshape", "squeeze", "unsqueeze", "transpose", "permute", "narrow", "select",
    "expand", "clone", "contiguous", "to",
    /* indexing, joining, triangles (ops_index.c, ops_join.c, ops_tri.c) */
    "index_select", "gather", "scatter", "scatter_add", "cat", "stack", "tril", "triu",
    /* linear algebra (ops_linalg.c, ops_lapack.c) */
    "matmul", "linalg.cholesky", "linalg.solve_triangular", "cholesky_solve",
    /* layers (ops_nn.c, ops_norm.c, ops_conv.c, ops_pad.c, ops_pool.c, ops_rnn.c) */
    "linear", "leaky_relu", "elu", "gelu", "silu", "softmax", "log_softmax", "dropout",
    "embedding", "layer_norm", "batch_norm", "conv2d", "conv_transpose2d", "pad",
    "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "rnn_tanh", "rnn_relu", "lstm", "gru",
    /* attention (ops_attention.c) */
    "attention", "attention_packed", "attention_weights",
    /* losses (ops_loss.c) */
    "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits",
};

#define NNAMES ((int)(sizeof names / sizeof *names))

int mg_grad_op_count(void) { return NNAMES; }

const char *mg_grad_op_name(int i) { return i >= 0 && i < NNAMES ? names[i] : NULL; }

int mg_grad_op_index(const char *name) {
  for (int i = 0; i < NNAMES; i++)
    if (strcmp(names[i], name) == 0) return i;
  return -1;
}

int mg_audit_ops(mg_Context *ctx, int on) {
  free(ctx->op_seen);
  ctx->op_seen = NULL;
  ctx->op_unlisted = NULL;
  if (!on) return MG_OK;
  ctx->op_seen = calloc(NNAMES, 1);
  return ctx->op_seen ? MG_OK
                      : mg_error(ctx, MG_ENOMEM, "not enough memory to audit the ops");
}

int mg_audited_op(const mg_Context *ctx, int i) {
  return ctx->op_seen && i >= 0 && i < NNAMES && ctx->op_seen[i];
}

const char *mg_audit_unlisted(const mg_Context *ctx) { return ctx->op_unlisted; }

int mg_note_op(mg_Context *ctx, const char *name) {
  int i = mg_grad_op_index(name);
  if (i < 0) {
    if (ctx->op_seen && !ctx->op_unlisted) ctx->op_unlisted = name;
#ifdef MG_CHECK_OP_LIST
    return mg_error(ctx, MG_EARG, "%s: records a backward but is not listed in "
                    "runtime/grad_ops.c (add it there and to spec/gradients_spec.lua)",
                    name);
#endif
    return MG_OK;
  }
  if (ctx->op_seen) ctx->op_seen[i] = 1;
  return MG_OK;
}
