/*
 * mg_attention.h — scaled dot-product attention as one op (ops_attention.c),
 * bound in lua_nn.c as mg._attention and mg._attention_packed, and used by
 * F.scaled_dot_product_attention and nn.MultiheadAttention whenever no
 * dropout applies to the weights.
 *
 * For every batch entry b and head h:
 *
 *   weights = softmax(q kᵀ · scale + mask), with key j > query i set to
 *             -inf first when causal (a lower triangle from the top left)
 *   out     = weights v
 *
 * computed a (b, h) pair at a time — two products and one row pass forward,
 * four products and one row pass backward, each pair's products serial in
 * OpenBLAS, the pairs spread over threads — so nothing the size of the
 * scores is made but the weights themselves, which the backward needs. The
 * heads are read through their strides wherever they lie (the heads of a
 * [N, L, 3E] projection, transposed views), the output is written with the
 * heads interleaved in each row, as the output projection reads it, and
 * the results do not depend on the thread count. A row every key of which
 * is masked gets NaN, as in PyTorch. float32 or float64; the sums of the
 * softmax run in double.
 */
#ifndef MG_ATTENTION_H
#define MG_ATTENTION_H

#include "mg_core.h"

/* q [B, H, Lq, E], k [B, H, Lk, E], v [B, H, Lk, Ev] of one dtype (float32
 * or float64), any strides (a head whose rows are not contiguous is
 * copied first; a stride of 0, an expanded dim, is read as it is). mask is
 * NULL or an additive mask of q's dtype, [B, H, Lq, Lk] with any strides
 * (a broadcast mask expanded to that shape is never copied); it must not
 * require grad. scale multiplies q kᵀ.
 *
 * *out [B, H, Lq, Ev], differentiable in q, k and v. Its memory is laid
 * out [B, Lq, H, Ev] when q's heads are interleaved in its rows (q's head
 * stride below its row stride, as split heads are), so that transposing
 * dims 2 and 3 back gives a contiguous tensor; else it is contiguous.
 * When weights is not NULL, *weights [B, H, Lq, Lk] is the softmax,
 * differentiable in q and k as a separate node (so its gradient is only
 * computed when something uses it). Fails (MG_ESHAPE, MG_EARG, naming the
 * shapes) on sizes that do not fit together, dtypes that differ or are not
 * floating, or a mask that requires grad. */
int mg_attention(mg_Context *ctx, mg_Tensor **out, mg_Tensor **weights, mg_Tensor *q,
                 mg_Tensor *k, mg_Tensor *v, const mg_Tensor *mask, int causal,
                 double scale);

/* Self-attention over one packed projection: qkv [N, L, 3E] holds q, k and
 * v side by side in each row (nn.MultiheadAttention's in_proj output),
 * each heads heads of D = E / heads. *out is [N, L, E], the heads side by
 * side, and the gradient of qkv is one [N, L, 3E] tensor, so no narrow,
 * reshape or transpose appears in the graph. mask and *weights as for
 * mg_attention, with B = N, H = heads and Lq = Lk = L. */
int mg_attention_packed(mg_Context *ctx, mg_Tensor **out, mg_Tensor **weights,
                        mg_Tensor *qkv, int64_t heads, const mg_Tensor *mask,
                        int causal, double scale);

#endif
