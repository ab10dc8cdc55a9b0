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
--                            are a number or a pair {h, w}; padding may also
--                            be "valid" (0) or "same" (stride 1 only; an odd
--                            total d·(k-1) puts the extra zero at the bottom
--                            and right, as PyTorch); im2col + gemm
--                            (runtime/ops_conv.c, bound in lua_conv.c)
--   F.conv_transpose2d(x, w, b, {stride = 1, padding = 0, output_padding = 0,
--                groups = 1, dilation = 1})
--                            x [N, C_in, H, W], w [C_in, C_out/groups, kH, kW],
--                            b [C_out] or nil -> [N, C_out, Ho, Wo] with
--                            Ho = (H-1)·stride - 2·padding + dilation·(kH-1)
--                            + output_padding + 1; output_padding < stride or
--                            dilation; conv2d's input gradient as a forward
--   F.pad(x, pad, {mode = "constant", value = 0})
--                            pad in PyTorch's order, last dim first: {left,
--                            right, top, bottom, ...}; a negative amount crops;
--                            mode "constant" (any dims), "reflect",
--                            "replicate" or "circular" (the last 1-3 dims of a
--                            2-D to 5-D x, as PyTorch); differentiable
--                            (runtime/ops_pad.c)
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
-- attention (composed in Lua from matmul, masked_fill, softmax and dropout)
--   F.scaled_dot_product_attention(q, k, v, {attn_mask, is_causal = false,
--                dropout_p = 0, training = true, scale = 1/sqrt(E)})
--                            q [..., Lq, E], k [..., Lk, E], v [..., Lk, Ev]
--                            -> out [..., Lq, Ev], and the attention weights
--                            [..., Lq, Lk] as a second result (see below)
local mg = require "moongrad"
local util = require "moongrad.util"

local is_tensor = mg.is_tensor
local type, error, tostring, ipairs = type, error, tostring, ipairs
local sqrt, max, huge = math.sqrt, math.max, math.huge
local fmt, concat = string.format, table.concat

local F = {}

local names = {
  "leaky_relu", "elu", "gelu", "silu", "softmax", "log_softmax",
  "linear", "dropout", "embedding", "layer_norm", "batch_norm",
  "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
  "huber_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
  "conv2d", "conv_transpose2d", "pad",
  "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
}
for _, name in ipairs(names) do F[name] = mg["_" .. name] end

F.relu = mg.relu
F.sigmoid = mg.sigmoid
F.tanh = mg.tanh

---------------------------------------------------------------------------
-- Attention.

local function shape_str(t) return "[" .. concat(t:shape(), ",") .. "]" end

-- Raises unless the batch dims (all but the last two) of a and b broadcast.
local function check_batch(fn, a, an, b, bn, level)
  local sa, sb = a:shape(), b:shape()
  for i = 1, max(#sa, #sb) - 2 do
    local da, db = sa[#sa - 1 - i], sb[#sb - 1 - i]
    if da and db and da ~= db and da ~= 1 and db ~= 1 then
      error(fmt("%s: the batch dims of %s %s and %s %s cannot be broadcast together",
                fn, an, shape_str(a), bn, shape_str(b)), level + 1)
    end
  end
end

-- Masks of these dtypes hold numbers to add to the scores; any other
-- (int64; bool, uint8, int32 where they exist) holds flags.
local FLOATING = {float32 = true, float64 = true, float16 = true, bfloat16 = true}
local function is_flags(mask) return not FLOATING[mask:dtype()] end
F._is_flags = is_flags   -- for nn.MultiheadAttention's masks

-- A flag mask flipped: 1 where it is 0. Stored dtypes (bool, uint8, ...)
-- compare as int64.
local function flipped(mask)
  if mask:dtype() ~= "int64" then mask = mask:long() end
  return mask:eq(0)
end
F._flipped = flipped

-- attend(q, k, v, mask, causal, p, training, scale) --> out, weights.
-- The arithmetic behind F.scaled_dot_product_attention and
-- nn.MultiheadAttention, arguments already checked. mask is nil, a flag
-- keep-mask (nonzero = may attend) or a float mask added to the scores;
-- causal may come with a mask (MultiheadAttention allows both, and then
-- applies both). Masks broadcast into the scores: nothing the size of the
-- scores is made for them.
-- The fused op (runtime/ops_attention.c) computes softmax(q kᵀ · scale +
-- mask) v a head at a time without making the scores as separate tensors;
-- it takes 4-D operands [B, H, L, E] and an additive mask of the
-- operands' dtype. Dropout on the weights, a mask that requires grad and
-- operands of more than 4 dims or of differing dtypes go the composed way
-- below instead.
local FUSED_DTYPES = {float32 = true, float64 = true}

-- t's shape with size-1 dims in front up to 4 dims.
local function shape4(t)
  local sh = t:shape()
  while #sh < 4 do table.insert(sh, 1, 1) end
  return sh
end

-- mask as numbers to add to the scores, of dtype dt, expanded to size4
-- (4 sizes); a flag keep-mask becomes 0 / -inf. nil for no mask.
local function additive4(mask, dt, size4)
  if mask == nil then return nil end
  if is_flags(mask) then
    mask = mg.zeros(mask:shape(), dt):masked_fill(flipped(mask), -huge)
  elseif mask:dtype() ~= dt then
    mask = mask:to(dt)
  end
  return mask:reshape(shape4(mask)):expand(size4)
end
F._additive4 = additive4   -- for nn.MultiheadAttention's packed path

-- Can the fused op take these operands? (Masks with more than 4 dims
-- broadcast into scores of as many, so the operands decide.)
local function fusable(q, k, v, mask, p, training)
  if p > 0 and training then return false end
  local dt = q:dtype()
  if not FUSED_DTYPES[dt] or k:dtype() ~= dt or v:dtype() ~= dt then return false end
  if q:dim() > 4 or k:dim() > 4 or v:dim() > 4 then return false end
  if mask ~= nil and (mask:dim() > 4 or mask:is_requires_grad()) then return false end
  return true
end
F._fusable = fusable   -- for nn.MultiheadAttention's packed path

-- t with size-1 batch dims in front up to 4 dims, expanded to the batch
-- dims b1, b2.
local function as4(t, b1, b2)
  local sh = shape4(t)
  return t:reshape(sh):expand(b1, b2, sh[3], sh[4])
end

local function attend_fused(q, k, v, mask, causal, scale)
  local nd = max(q:dim(), k:dim(), v:dim())
  local function bdim(t, i)   -- batch dim i (1 or 2 of 4) of t, or 1
    local j = i - (4 - t:dim())
    return j >= 1 and t:size(j) or 1
  end
  local b1 = max(bdim(q, 1), bdim(k, 1), bdim(v, 1))
  local b2 = max(bdim(q, 2), bdim(k, 2), bdim(v, 2))
  local q4, k4, v4 = as4(q, b1, b2), as4(k, b1, b2), as4(v, b1, b2)
  local lq, lk = q4:size(3), k4:size(3)
  local m4 = additive4(mask, q:dtype(), {b1, b2, lq, lk})
  local out, weights = mg._attention(q4, k4, v4, m4, causal, scale, true)
  if nd < 4 then
    -- Back to the operands' own number of dims: [b2, L, E] or [L, E].
    local keep = {}
    for i = 5 - nd, 4 do keep[#keep + 1] = i end
    local function drop(t)
      local sh, kept = t:shape(), {}
      for _, i in ipairs(keep) do kept[#kept + 1] = sh[i] end
      return t:reshape(kept)
    end
    out, weights = drop(out), drop(weights)
  end
  return out, weights
end

local function attend(q, k, v, mask, causal, p, training, scale)
  if fusable(q, k, v, mask, p, training) then
    return attend_fused(q, k, v, mask, causal, scale)
  end
  local lq, lk = q:size(-2), k:size(-2)
  -- Scaling q rather than the scores touches Lq·E numbers instead of Lq·Lk
  -- (PyTorch's MultiheadAttention does the same).
  local scores = (q * scale):matmul(k:transpose(-2, -1))      -- [..., Lq, Lk]
  if mask ~= nil then
    if is_flags(mask) then
      scores = scores:masked_fill(flipped(mask), -huge)
    else
      -- In the scores' dtype, so a float64 mask leaves float32 scores float32.
      if mask:dtype() ~= scores:dtype() then mask = mask:to(scores:dtype()) end
      scores = scores + mask
    end
  end
  if causal then
    -- One [Lq, Lk] mask, broadcast over the batch dims: position i (query)
    -- may not see j > i, counted from the top left as in PyTorch.
    local dt = q:dtype()
    local cols, rows = mg.arange(1, lk + 1, dt):reshape(1, lk), mg.arange(1, lq + 1, dt):reshape(lq, 1)
    local later = cols:gt(rows)                                  -- [Lq, Lk]
    scores = scores:masked_fill(later, -huge)
  end
  local weights = mg._softmax(scores, -1)
  if p > 0 and training then weights = mg._dropout(weights, p, true) end
  return weights:matmul(v), weights
end
F._attend = attend  -- for nn.MultiheadAttention, which checks its own inputs

local sdpa_options = {attn_mask = true, is_causal = true, dropout_p = true,
                      training = true, scale = true}

-- F.scaled_dot_product_attention(q, k, v [, opts]) --> out, weights
--
-- softmax(q kᵀ · scale + mask) v over the last two dims, any batch dims in
-- front (broadcast, as matmul does): q [..., Lq, E], k [..., Lk, E],
-- v [..., Lk, Ev] give out [..., Lq, Ev]. PyTorch 2.x's function, plus the
-- attention weights [..., Lq, Lk] (after dropout) as a second result,
-- which a caller taking one result never sees.
--
-- opts.attn_mask: the mask's dtype says what it is, as bool vs float does
-- in PyTorch: an integer (int64, or bool) mask is a keep-mask (nonzero =
-- may attend, PyTorch's True), a float mask is added
-- to the scores (0 to keep, -inf to block). Either broadcasts to
-- [..., Lq, Lk]; a [Lq, Lk] mask is never copied per batch or head. A 0/1
-- mask from a comparison is float: `m:long()` makes it a keep-mask.
-- opts.is_causal: query i attends to keys 1..i only (a [Lq, Lk] lower
-- triangle from the top left); not together with attn_mask, as in PyTorch.
-- opts.dropout_p (0), opts.training (true): dropout on the weights through
-- F.dropout, so the state's RNG draws it. opts.scale: 1/sqrt(E) by default.
--
-- A query that may attend to nothing gets NaN in its row of out and
-- weights, as in PyTorch: softmax over all -inf has no answer.
function F.scaled_dot_product_attention(q, k, v, opts)
  local fn = "scaled_dot_product_attention"
  opts = util.check_options(opts, fn, sdpa_options, 2)
  for i, t in ipairs({q, k, v}) do
    local name = ({"q", "k", "v"})[i]
    if not is_tensor(t) then
      error(fmt("%s: %s must be a tensor, got %s", fn, name, type(t)), 2)
    end
    if t:dim() < 2 then
      error(fmt("%s: %s must have at least 2 dims [..., L, E], got shape %s",
                fn, name, shape_str(t)), 2)
    end
  end
  if q:size(-1) ~= k:size(-1) then
    error(fmt("%s: q and k must have the same last dim (E), got q %s and k %s",
              fn, shape_str(q), shape_str(k)), 2)
  end
  if k:size(-2) ~= v:size(-2) then
    error(fmt("%s: k and v must have the same length (Lk), got k %s and v %s",
              fn, shape_str(k), shape_str(v)), 2)
  end
  check_batch(fn, q, "q", k, "k", 2)
  check_batch(fn, q, "q", v, "v", 2)
  check_batch(fn, k, "k", v, "v", 2)
  for _, flag in ipairs({"is_causal", "training"}) do
    local b = opts[flag]
    if b ~= nil and type(b) ~= "boolean" then
      error(fmt("%s: %s must be a boolean, got %s", fn, flag, type(b)), 2)
    end
  end
  local mask, causal = opts.attn_mask, opts.is_causal == true
  if mask ~= nil then
    if not is_tensor(mask) then
      error(fmt("%s: attn_mask must be a tensor, got %s", fn, type(mask)), 2)
    end
    if causal then
      error(fmt("%s: give attn_mask or is_causal, not both", fn), 2)
    end
    local ms, lq, lk = mask:shape(), q:size(-2), k:size(-2)
    local okq = #ms < 2 or ms[#ms - 1] == 1 or ms[#ms - 1] == lq
    local okk = #ms < 1 or ms[#ms] == 1 or ms[#ms] == lk
    if not (okq and okk) then
      error(fmt("%s: attn_mask %s does not broadcast to the scores [..., %d, %d]",
                fn, shape_str(mask), lq, lk), 2)
    end
  end
  local p = opts.dropout_p or 0
  if type(p) ~= "number" or p < 0 or p > 1 then
    error(fmt("%s: dropout_p must be a probability in [0, 1], got %s", fn, tostring(p)), 2)
  end
  local scale = opts.scale
  if scale == nil then scale = 1 / sqrt(q:size(-1)) end
  if type(scale) ~= "number" then
    error(fmt("%s: scale must be a number, got %s", fn, type(scale)), 2)
  end
  local out, weights = attend(q, k, v, mask, causal, p, opts.training ~= false, scale)
  return out, weights
end

return F
