/*
 * mg_rnn.h — one layer of a recurrent network over a whole sequence
 * (ops_rnn.c), bound in lua_rnn.c as mg._rnn_layer and used by
 * moongrad.nn's RNN, LSTM and GRU modules.
 */
#ifndef MG_RNN_H
#define MG_RNN_H

#include "mg_core.h"

typedef enum {
  MG_RNN_TANH, /* h = tanh(a), a = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh; G = 1 */
  MG_RNN_RELU, /* h = relu(a); G = 1 */
  MG_RNN_LSTM, /* gates i, f, g, o (PyTorch's order); G = 4 */
  MG_RNN_GRU,  /* gates r, z, n (PyTorch's order and formula); G = 3 */
  MG_NRNN
} mg_RnnCell;

const char *mg_rnn_cell_name(mg_RnnCell cell); /* "lstm"; NULL if unknown */
int mg_rnn_cell_from_name(const char *name);   /* -1 when unknown */

/* Runs one layer of cell over T steps and returns the trajectory of its
 * state as one tensor (an autograd node has one output; the caller takes
 * views of it):
 *
 *   out [N, T + 1, W]: a row holds h (R wide), then for LSTM c (H wide),
 *   so W = R + H for LSTM, else R; R = H except for a projected LSTM.
 *   Forward (reverse = 0): row 0 is the initial state (h0, c0) and row t
 *   the state after time position t (1-based), so the output is rows
 *   1..T and (h_n, c_n) row T. Reverse (reverse = 1, time runs from the
 *   last position to the first, as in a bidirectional layer's second
 *   direction): row T is the initial state and row t - 1 the state after
 *   position t, so the output is rows 0..T-1, in time order, and (h_n,
 *   c_n) row 0.
 *
 * xp [N, T, G·H] is the input projection x W_ihᵀ + b_ih, computed by the
 * caller for all steps in one gemm; for tanh, relu and LSTM it also holds
 * b_hh (a constant per gate, so it may be added there), for GRU it must
 * not, because GRU multiplies W_hn h + b_hn by r: pass b_hh [G·H] (or NULL
 * for none) instead. h0 [N, R]; c0 [N, H] for LSTM only (else NULL);
 * w_hh [G·H, R]. w_hr [R, H] (LSTM only, else NULL) projects the hidden
 * state as PyTorch's proj_size does: h = (o ⊙ tanh c) w_hrᵀ, R the
 * projection size. N, T, H and R are at least 1.
 *
 * Per step: one gemm h W_hhᵀ for all gates, then one fused pass for the
 * nonlinearities and the state update (and one gemm for the projection).
 * Differentiable in xp, h0, c0, w_hh, b_hh and w_hr: backpropagation
 * through time runs the steps in reverse with one fused pass per step for
 * the gate gradients, a gemm for the gradient flowing to the previous h
 * and one accumulating into dW_hh (two more for the projection). Every
 * element of out carries gradient, the initial row included (it flows to
 * h0 and c0). Loops are single-threaded but for BLAS, whose results do not
 * depend on the thread count. Fails (MG_ESHAPE, MG_EARG, naming the
 * shapes) on sizes that do not fit together or arguments the cell does
 * not take. */
int mg_rnn_layer(mg_Context *ctx, mg_Tensor **out, mg_RnnCell cell,
                 mg_Tensor *xp, mg_Tensor *h0, mg_Tensor *c0, mg_Tensor *w_hh,
                 mg_Tensor *b_hh, mg_Tensor *w_hr, int reverse);

#endif
