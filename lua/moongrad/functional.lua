-- moongrad.functional: the layers of a network as plain functions of
-- tensors, differentiable like every other op.
--
--   local F = require "moongrad.functional"
--   local h = F.gelu(F.linear(x, w1, b1))
--   local loss = F.cross_entropy(F.linear(h, w2, b2), labels, {label_smoothing = 0.1})
--
-- Conventions (DESIGN.md): options go in a trailing table and an unknown
-- option is an error; class labels and embedding ids are 1-based int64;
-- dims are 1-based or negative. Names, defaults and results follow
-- torch.nn.functional. Every function accepts float32 and float64.
--
-- Each function is one C kernel with its own backward (runtime/ops_nn.c,
-- ops_norm.c, ops_loss.c; bound in runtime/lua_nn.c, which also reads the
-- options, so a bad argument is reported at the caller's line):
--
-- activations
--   F.relu(x)  F.sigmoid(x)  F.tanh(x)          (the tensor methods)
--   F.leaky_relu(x, {negative_slope = 0.01})    (or F.leaky_relu(x, 0.2))
--   F.elu(x, {alpha = 1})                       (or F.elu(x, 0.5))
--   F.gelu(x, {approximate = "none" | "tanh"})  F.silu(x)
--   F.softmax(x, dim)  F.log_softmax(x, dim)    dim defaults to -1;
--                                               max-subtracted, never overflows
-- layers
--   F.linear(x, w, b)        x [..., in], w [out, in], b [out] or nil: one gemm
--   F.dropout(x, p, training)  p = 0.5, training = true by default; scales the
--                            kept elements by 1 / (1 - p); x itself when not
--                            training or p == 0; draws from the state's RNG
--   F.embedding(ids, weight, {padding_idx})  ids int64 (1-based, any shape),
--                            weight [V, D] -> [ids..., D]
--   F.layer_norm(x, normalized_shape, w, b, {eps = 1e-5})  w and b may be nil
--   F.batch_norm(x, running_mean, running_var, w, b,
--                {training = true, momentum = 0.1, eps = 1e-5})
--                            x [N, C, ...]; training (or no running stats) uses
--                            the batch's statistics and updates the running
--                            ones in place (unbiased variance, not recorded)
--   F.conv2d(x, w, b, {stride = 1, padding = 0, dilation = 1, groups = 1})
--                            x [N, C, H, W], w [O, C/groups, kH, kW], b [O] or
--                            nil -> [N, O, Ho, Wo]; stride, padding, dilation
--                            are a number or a pair {h, w}; im2col + gemm
--                            (runtime/ops_conv.c, bound in lua_conv.c)
--   F.max_pool2d(x, kernel, {stride = kernel, padding = 0, dilation = 1,
--                ceil_mode = false, return_indices = false})
--                            x [N, C, H, W] or [C, H, W]; sizes are a number
--                            or {h, w}; padding counts as -inf; the first max
--                            wins a tie; return_indices adds int64 1-based
--                            positions within each H·W plane
--   F.avg_pool2d(x, kernel, {stride = kernel, padding = 0, ceil_mode = false,
--                count_include_pad = true})
--   F.adaptive_avg_pool2d(x, output_size)  output_size n or {h, w}; windows
--                            [floor(i·H/OH), ceil((i+1)·H/OH))
--                            (runtime/ops_pool.c, bound in lua_pool.c)
-- losses: reduction = "mean" (default) | "sum" | "none"
--   F.cross_entropy(logits, targets, {weight, ignore_index, label_smoothing = 0,
--                   reduction})  logits [N, K, d...] or [K]; targets int64
--                            labels [N, d...] (1-based) or float probabilities
--                            shaped like logits; softmax and loss fused; the
--                            mean divides by the summed weight of the targets
--                            that count, as PyTorch's does
--   F.nll_loss(logp, targets, {weight, ignore_index, reduction})
--   F.mse_loss(a, b, {reduction})  F.l1_loss(a, b, {reduction})
--   F.smooth_l1_loss(a, b, {beta = 1, reduction})
--   F.huber_loss(a, b, {delta = 1, reduction})
--   F.binary_cross_entropy(p, y, {weight, reduction})   log clamped at -100
--   F.binary_cross_entropy_with_logits(z, y, {weight, pos_weight, reduction})
-- Class weights (weight, pos_weight) are constants: they get no gradient.
local mg = require "moongrad"

local F = {}

local names = {
  "leaky_relu", "elu", "gelu", "silu", "softmax", "log_softmax",
  "linear", "dropout", "embedding", "layer_norm", "batch_norm",
  "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
  "huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
  "conv2d",
  "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
}
for _, name in ipairs(names) do F[name] = mg["_" .. name] end

F.relu = mg.relu
F.sigmoid = mg.sigmoid
F.tanh = mg.tanh

return F
