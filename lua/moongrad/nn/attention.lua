-- moongrad.nn.attention: MultiheadAttention, a thin module over
-- F.scaled_dot_product_attention's arithmetic with PyTorch's parameter
-- names, initialisation and masks, so a state dict from
-- torch.nn.MultiheadAttention loads as it is. The transformer layers built
-- on it are in nn/transformer.lua.
--
-- Sequences are batch first by default: [N, L, E] (batch, length,
-- embedding); PyTorch's default, [L, N, E], is batch_first = false.
local mg = require "moongrad"
local util = require "moongrad.util"
local F = require "moongrad.functional"
local Module = require "moongrad.nn.module"
local init = require "moongrad.nn.weight_init"
local checks = require "moongrad.nn.checks"
local layers = require "moongrad.nn.layers"

local is_tensor = mg.is_tensor
local type, error, tostring, rawequal = type, error, tostring, rawequal
local sqrt, huge = math.sqrt, math.huge
local fmt, concat = string.format, table.concat

local attention = {}

-- Constructor errors name the line that called nn.Layer(...): the
-- constructor runs inside Module's __call, one frame further up.
local CTOR = 3

local function shape_str(t) return "[" .. concat(t:shape(), ",") .. "]" end

local function check_size(v, name, what) checks.size(v, name, what, CTOR + 1) end

local function check_p(p, name) checks.probability(p, name, CTOR + 1) end

local function check_dtype(dtype, name)
  local dt = checks.dtype(dtype, name, CTOR + 1)
  return dt
end

local function param(t) return t:requires_grad() end

local function check_flag(v, name, what)
  if v ~= nil and type(v) ~= "boolean" then
    error(fmt("%s: %s must be a boolean, got %s", name, what, checks.show(v)), CTOR + 1)
  end
end

---------------------------------------------------------------------------
-- MultiheadAttention(embed_dim, num_heads [, {dropout = 0, bias = true,
-- batch_first = true, kdim = embed_dim, vdim = embed_dim, dtype}])
--
-- Parameters as in PyTorch: in_proj_weight [3E, E] (xavier_uniform; rows
-- 1..E project the query, E+1..2E the key, 2E+1..3E the value),
-- in_proj_bias [3E] (zeros), out_proj a Linear(E, E) whose bias starts at
-- zero. bias = false drops both biases. A kdim or vdim other than E (keys
-- or values of another width) makes three weights instead of
-- in_proj_weight, under PyTorch's names: q_proj_weight [E, E],
-- k_proj_weight [E, kdim], v_proj_weight [E, vdim], each xavier_uniform;
-- in_proj_bias stays [3E].
--
-- batch_first = true (moongrad's default; PyTorch's is false) takes and
-- returns [N, L, E]; batch_first = false takes and returns [L, N, E], as
-- PyTorch's default does. The weights are [N, L, S] either way.
local MultiheadAttention = Module:extend("MultiheadAttention")
attention.MultiheadAttention = MultiheadAttention

function MultiheadAttention:init(embed_dim, num_heads, opts)
  local name = "MultiheadAttention"
  check_size(embed_dim, name, "embed_dim")
  check_size(num_heads, name, "num_heads")
  opts = util.check_options(opts, name, {dropout = true, bias = true, batch_first = true,
                                         kdim = true, vdim = true, dtype = true}, CTOR + 1)
  if embed_dim % num_heads ~= 0 then
    error(fmt("%s: embed_dim (%d) must be divisible by num_heads (%d)",
              name, embed_dim, num_heads), CTOR)
  end
  check_flag(opts.batch_first, name, "batch_first")
  local kdim, vdim = opts.kdim or embed_dim, opts.vdim or embed_dim
  check_size(kdim, name, "kdim")
  check_size(vdim, name, "vdim")
  local p = opts.dropout or 0
  check_p(p, name)
  local dtype = check_dtype(opts.dtype, name)
  self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
  self.kdim, self.vdim = kdim, vdim
  self.dropout, self.batch_first = p, opts.batch_first ~= false
  if kdim == embed_dim and vdim == embed_dim then
    self.in_proj_weight = param(mg.empty({3 * embed_dim, embed_dim}, dtype))
  else
    self.q_proj_weight = param(mg.empty({embed_dim, embed_dim}, dtype))
    self.k_proj_weight = param(mg.empty({embed_dim, kdim}, dtype))
    self.v_proj_weight = param(mg.empty({embed_dim, vdim}, dtype))
  end
  if opts.bias ~= false then
    self.in_proj_bias = param(mg.empty({3 * embed_dim}, dtype))
  end
  self.out_proj = layers.Linear(embed_dim, embed_dim, {bias = opts.bias ~= false, dtype = dtype})
  self:reset_parameters()
end

-- PyTorch's _reset_parameters: out_proj.weight keeps Linear's own init.
function MultiheadAttention:reset_parameters()
  if self.in_proj_weight then
    init.xavier_uniform_(self.in_proj_weight)
  else
    init.xavier_uniform_(self.q_proj_weight)
    init.xavier_uniform_(self.k_proj_weight)
    init.xavier_uniform_(self.v_proj_weight)
  end
  if self.in_proj_bias then
    init.zeros_(self.in_proj_bias)
    init.zeros_(self.out_proj.bias)
  end
end

-- [N, L, E] -> [N, H, L, D]: heads become a batch dim matmul broadcasts.
local function split_heads(x, h, d)
  local n, l = x:size(1), x:size(2)
  return x:reshape(n, l, h, d):transpose(2, 3)
end

-- Whether a mask holds flags (nonzero = may not attend, PyTorch's True)
-- rather than numbers to add: any dtype but a floating one.
local is_flags = F._is_flags

local function check_mask(mask, what, level)
  if not is_tensor(mask) then
    error(fmt("MultiheadAttention: %s must be a tensor, got %s", what, type(mask)), level + 1)
  end
end

-- The attention mask shaped to broadcast over the scores [N, H, L, S]:
-- [L, S] as it is, [N·H, L, S] one per head.
local function shape_attn_mask(mask, n, h, l, s)
  check_mask(mask, "attn_mask", 3)
  local shape = mask:shape()
  if #shape == 2 and shape[1] == l and shape[2] == s then return mask end
  if #shape == 3 and shape[1] == n * h and shape[2] == l and shape[3] == s then
    return mask:reshape(n, h, l, s)
  end
  error(fmt("MultiheadAttention: attn_mask must be [L, S] = [%d, %d] or [N*H, L, S] = " ..
            "[%d, %d, %d], got %s", l, s, n * h, l, s, shape_str(mask)), 3)
end

-- The key padding mask [N, S] as [N, 1, 1, S]: one row per batch entry.
local function shape_padding_mask(mask, n, s)
  check_mask(mask, "key_padding_mask", 3)
  if mask:dim() ~= 2 or mask:size(1) ~= n or mask:size(2) ~= s then
    error(fmt("MultiheadAttention: key_padding_mask must be [N, S] = [%d, %d], got %s",
              n, s, shape_str(mask)), 3)
  end
  return mask:reshape(n, 1, 1, s)
end

-- A mask as numbers to add to the scores: flags become 0 or -inf.
local function additive(mask, dtype)
  if is_flags(mask) then return mg.zeros(mask:shape(), dtype):masked_fill(mask, -huge) end
  return mask:dtype() == dtype and mask or mask:to(dtype)
end

-- The one mask F's attend() takes, from PyTorch's two: attend reads flags
-- as a keep-mask (nonzero = may attend), so blocked-flags are flipped; a
-- float mask is added as it is. Both masks together are summed as numbers
-- (PyTorch 2's rule; 1.13's wherever it runs: two flag masks block the
-- union, a float attn_mask gets -inf where the padding flags are set).
-- The sum is [N, 1 or H, L, S], never larger than the scores.
local function merge_masks(attn_mask, padding_mask, dtype)
  if padding_mask == nil and attn_mask == nil then return nil end
  if padding_mask ~= nil and attn_mask ~= nil then
    return additive(attn_mask, dtype) + additive(padding_mask, dtype)
  end
  local mask = attn_mask or padding_mask
  if is_flags(mask) then return F._flipped(mask) end
  return mask
end

local function check_input(x, what, e, batch_first)
  if not is_tensor(x) then
    error(fmt("MultiheadAttention: %s must be a tensor, got %s", what, type(x)), 3)
  end
  if x:dim() ~= 3 or x:size(3) ~= e then
    error(fmt("MultiheadAttention: %s must be %s, got %s", what,
              batch_first and fmt("[N, L, %d] (batch first)", e)
                          or fmt("[L, N, %d] (batch_first = false)", e), shape_str(x)), 3)
  end
end

local forward_options = {attn_mask = true, key_padding_mask = true, is_causal = true,
                         need_weights = true, average_attn_weights = true}

-- forward(query, key, value [, {attn_mask, key_padding_mask,
-- is_causal = false, need_weights = true, average_attn_weights = true}])
-- --> out, weights
--
-- Batch first, query [N, L, E], key [N, S, kdim] and value [N, S, vdim]
-- give out [N, L, E] (with batch_first = false: [L, N, ...] in and out)
-- and, when need_weights, the attention weights (after dropout, as
-- PyTorch returns them): [N, L, S] averaged over the heads, or
-- [N, H, L, S] with average_attn_weights = false; nil otherwise.
--
-- Masks follow PyTorch's nn.MultiheadAttention, where a flag marks what
-- may NOT be attended (the opposite of scaled_dot_product_attention): an
-- integer (or bool) mask's nonzero entries block, a float mask is added
-- to the scores. attn_mask is [L, S] (every batch entry and head) or
-- [N*H, L, S] (entry n's head h at row (n-1)*H + h); key_padding_mask
-- [N, S] blocks keys per batch entry (padding). Given both, they are
-- summed as numbers (flags as -inf), as PyTorch 2 does. A query that may
-- attend to no key gets NaN, as in PyTorch.
-- is_causal masks key j > i. PyTorch takes it as a hint that attn_mask
-- already is that mask (and needs one); here it builds the mask itself,
-- and applies both when both are given, which agrees with PyTorch
-- whenever the hint is true.
function MultiheadAttention:forward(query, key, value, opts)
  opts = util.check_options(opts, "MultiheadAttention", forward_options, 2)
  if opts.is_causal ~= nil and type(opts.is_causal) ~= "boolean" then
    error(fmt("MultiheadAttention: is_causal must be a boolean, got %s",
              checks.show(opts.is_causal)), 2)
  end
  local e, h, d, bf = self.embed_dim, self.num_heads, self.head_dim, self.batch_first
  check_input(query, "query", e, bf)
  check_input(key, "key", self.kdim, bf)
  check_input(value, "value", self.vdim, bf)
  local self_attn = rawequal(query, key) and rawequal(key, value)
  if not bf then
    -- [L, N, E] -> [N, L, E]: views, so nothing is copied here.
    query = query:transpose(1, 2)
    key = self_attn and query or key:transpose(1, 2)
    value = self_attn and query or value:transpose(1, 2)
  end
  local n, l, s = query:size(1), query:size(2), key:size(2)
  if key:size(1) ~= n or value:size(1) ~= n then
    error(fmt("MultiheadAttention: query, key and value must share the batch size, got %s, %s, %s",
              shape_str(query), shape_str(key), shape_str(value)), 2)
  end
  if value:size(2) ~= s then
    error(fmt("MultiheadAttention: key and value must have the same length, got %s and %s",
              shape_str(key), shape_str(value)), 2)
  end
  local attn_mask, padding_mask = opts.attn_mask, opts.key_padding_mask
  if attn_mask ~= nil then attn_mask = shape_attn_mask(attn_mask, n, h, l, s) end
  if padding_mask ~= nil then padding_mask = shape_padding_mask(padding_mask, n, s) end
  local mask = merge_masks(attn_mask, padding_mask, query:dtype())

  local w, b = self.in_proj_weight, self.in_proj_bias
  local function bias(i) return b and b:narrow(1, i * e + 1, e) end
  local q, k, v
  if w == nil then
    q = F.linear(query, self.q_proj_weight, bias(0))
    k = F.linear(key, self.k_proj_weight, bias(1))
    v = F.linear(value, self.v_proj_weight, bias(2))
  elseif self_attn then
    -- Self-attention: one gemm for all three, then views of its columns,
    -- or, with no dropout to apply, the fused op over the projection
    -- itself (its gradient is then one tensor, not three windows of it).
    local qkv = F.linear(query, w, b)
    if F._fusable(qkv, qkv, qkv, mask, self.dropout, self.training) then
      local want = opts.need_weights ~= false
      local m4 = F._additive4(mask, qkv:dtype(), {n, h, l, s})
      local out, weights = mg._attention_packed(qkv, h, m4, opts.is_causal == true, 1 / sqrt(d),
                                                want)
      out = self.out_proj(out)                                    -- [N, L, E]
      if not bf then out = out:transpose(1, 2) end                -- [L, N, E]
      if not want then return out, nil end
      if opts.average_attn_weights ~= false then weights = weights:mean(2) end
      return out, weights
    end
    q, k, v = qkv:narrow(-1, 1, e), qkv:narrow(-1, e + 1, e), qkv:narrow(-1, 2 * e + 1, e)
  else
    local function proj(x, i) return F.linear(x, w:narrow(1, i * e + 1, e), bias(i)) end
    q, k, v = proj(query, 0), proj(key, 1), proj(value, 2)
  end
  q, k, v = split_heads(q, h, d), split_heads(k, h, d), split_heads(v, h, d)
  local out, weights = F._attend(q, k, v, mask, opts.is_causal == true, self.dropout,
                                 self.training, 1 / sqrt(d))
  out = self.out_proj(out:transpose(2, 3):reshape(n, l, e))   -- [N, L, E]
  if not bf then out = out:transpose(1, 2) end                -- [L, N, E]
  if opts.need_weights == false then return out, nil end
  if opts.average_attn_weights ~= false then weights = weights:mean(2) end
  return out, weights
end

function MultiheadAttention:extra_repr()
  local extra = ""
  if self.in_proj_weight == nil then extra = fmt(", kdim=%d, vdim=%d", self.kdim, self.vdim) end
  if not self.batch_first then extra = extra .. ", batch_first=false" end
  return fmt("embed_dim=%d, num_heads=%d, dropout=%g, bias=%s%s", self.embed_dim,
             self.num_heads, self.dropout, tostring(self.in_proj_bias ~= nil), extra)
end

return attention
