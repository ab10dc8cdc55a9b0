-- moongrad.nn.attention: MultiheadAttention and TransformerBlock, thin
-- modules over F.scaled_dot_product_attention's arithmetic. Both keep
-- PyTorch's parameter names and initialisation, so a state dict from
-- torch.nn.MultiheadAttention or torch.nn.TransformerEncoderLayer
-- (batch_first=True, norm_first=True, activation="gelu") loads as it is.
--
-- Sequences are batch first: [N, L, E] (batch, length, embedding).
local mg = require "moongrad"
local util = require "moongrad.util"
local F = require "moongrad.functional"
local Module = require "moongrad.nn.module"
local init = require "moongrad.nn.weight_init"
local checks = require "moongrad.nn.checks"
local layers = require "moongrad.nn.layers"

local is_tensor = mg.is_tensor
local type, error, tostring, rawequal = type, error, tostring, rawequal
local sqrt, math_type, tointeger = math.sqrt, math.type, math.tointeger
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

---------------------------------------------------------------------------
-- MultiheadAttention(embed_dim, num_heads [, {dropout = 0, bias = true,
-- batch_first = true, dtype}])
--
-- Parameters as in PyTorch: in_proj_weight [3E, E] (xavier_uniform; rows
-- 1..E project the query, E+1..2E the key, 2E+1..3E the value),
-- in_proj_bias [3E] (zeros), out_proj a Linear(E, E) whose bias starts at
-- zero. bias = false drops both biases. Only batch-first inputs exist here,
-- so batch_first = false is an error rather than a silent transpose.
local MultiheadAttention = Module:extend("MultiheadAttention")
attention.MultiheadAttention = MultiheadAttention

function MultiheadAttention:init(embed_dim, num_heads, opts)
  local name = "MultiheadAttention"
  check_size(embed_dim, name, "embed_dim")
  check_size(num_heads, name, "num_heads")
  opts = util.check_options(opts, name, {dropout = true, bias = true, batch_first = true,
                                         dtype = true}, CTOR + 1)
  if embed_dim % num_heads ~= 0 then
    error(fmt("%s: embed_dim (%d) must be divisible by num_heads (%d)",
              name, embed_dim, num_heads), CTOR)
  end
  if opts.batch_first == false then
    error(name .. ": only batch_first = true is supported (inputs [N, L, E])", CTOR)
  end
  local p = opts.dropout or 0
  check_p(p, name)
  local dtype = check_dtype(opts.dtype, name)
  self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
  self.dropout, self.batch_first = p, true
  self.in_proj_weight = param(mg.empty({3 * embed_dim, embed_dim}, dtype))
  if opts.bias ~= false then
    self.in_proj_bias = param(mg.empty({3 * embed_dim}, dtype))
  end
  self.out_proj = layers.Linear(embed_dim, embed_dim, {bias = opts.bias ~= false, dtype = dtype})
  self:reset_parameters()
end

-- PyTorch's _reset_parameters: out_proj.weight keeps Linear's own init.
function MultiheadAttention:reset_parameters()
  init.xavier_uniform_(self.in_proj_weight)
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

-- The attention mask as F's attend() takes it: MultiheadAttention follows
-- PyTorch's nn.MultiheadAttention, where a boolean mask marks the pairs
-- that may NOT attend (the opposite of scaled_dot_product_attention), so an
-- int64 mask is flipped into a keep-mask; a float mask is added as it is.
-- [L, S] broadcasts over batch and heads, [N·H, L, S] is one per head.
local function prepare_mask(mask, n, h, l, s)
  if not is_tensor(mask) then
    error(fmt("MultiheadAttention: attn_mask must be a tensor, got %s", type(mask)), 3)
  end
  local shape = mask:shape()
  if #shape == 2 and shape[1] == l and shape[2] == s then
    -- broadcasts as it is
  elseif #shape == 3 and shape[1] == n * h and shape[2] == l and shape[3] == s then
    mask = mask:reshape(n, h, l, s)
  else
    error(fmt("MultiheadAttention: attn_mask must be [L, S] = [%d, %d] or [N*H, L, S] = " ..
              "[%d, %d, %d], got %s", l, s, n * h, l, s, shape_str(mask)), 3)
  end
  if mask:dtype() == "int64" then mask = mask:eq(0) end
  return mask
end

local function check_input(x, what, e)
  if not is_tensor(x) then
    error(fmt("MultiheadAttention: %s must be a tensor, got %s", what, type(x)), 3)
  end
  if x:dim() ~= 3 or x:size(3) ~= e then
    error(fmt("MultiheadAttention: %s must be [N, L, %d] (batch first), got %s",
              what, e, shape_str(x)), 3)
  end
end

local forward_options = {attn_mask = true, is_causal = true, need_weights = true,
                         average_attn_weights = true}

-- forward(query, key, value [, {attn_mask, is_causal = false,
-- need_weights = true, average_attn_weights = true}]) --> out, weights
--
-- query [N, L, E], key and value [N, S, E] give out [N, L, E] and, when
-- need_weights, the attention weights (after dropout, as PyTorch returns
-- them): [N, L, S] averaged over the heads, or [N, H, L, S] with
-- average_attn_weights = false; nil otherwise. attn_mask as above.
-- is_causal masks key j > i. PyTorch takes it as a hint that attn_mask
-- already is that mask (and needs one); here it builds the mask itself,
-- and applies both when both are given, which agrees with PyTorch
-- whenever the hint is true.
function MultiheadAttention:forward(query, key, value, opts)
  opts = util.check_options(opts, "MultiheadAttention", forward_options, 2)
  local e, h, d = self.embed_dim, self.num_heads, self.head_dim
  check_input(query, "query", e)
  check_input(key, "key", e)
  check_input(value, "value", e)
  local n, l, s = query:size(1), query:size(2), key:size(2)
  if key:size(1) ~= n or value:size(1) ~= n then
    error(fmt("MultiheadAttention: query, key and value must share the batch size, got %s, %s, %s",
              shape_str(query), shape_str(key), shape_str(value)), 2)
  end
  if value:size(2) ~= s then
    error(fmt("MultiheadAttention: key and value must have the same length, got %s and %s",
              shape_str(key), shape_str(value)), 2)
  end
  local mask = opts.attn_mask
  if mask ~= nil then mask = prepare_mask(mask, n, h, l, s) end

  local w, b = self.in_proj_weight, self.in_proj_bias
  local q, k, v
  if rawequal(query, key) and rawequal(key, value) then
    -- Self-attention: one gemm for all three, then views of its columns.
    local qkv = F.linear(query, w, b)
    q, k, v = qkv:narrow(-1, 1, e), qkv:narrow(-1, e + 1, e), qkv:narrow(-1, 2 * e + 1, e)
  else
    local function proj(x, i)
      return F.linear(x, w:narrow(1, i * e + 1, e), b and b:narrow(1, i * e + 1, e))
    end
    q, k, v = proj(query, 0), proj(key, 1), proj(value, 2)
  end
  q, k, v = split_heads(q, h, d), split_heads(k, h, d), split_heads(v, h, d)
  local out, weights = F._attend(q, k, v, mask, opts.is_causal == true, self.dropout,
                                 self.training, 1 / sqrt(d))
  out = self.out_proj(out:transpose(2, 3):reshape(n, l, e))   -- [N, L, E]
  if opts.need_weights == false then return out, nil end
  if opts.average_attn_weights ~= false then weights = weights:mean(2) end
  return out, weights
end

function MultiheadAttention:extra_repr()
  return fmt("embed_dim=%d, num_heads=%d, dropout=%g, bias=%s", self.embed_dim,
             self.num_heads, self.dropout, tostring(self.in_proj_bias ~= nil))
end

---------------------------------------------------------------------------
-- TransformerBlock(d_model, num_heads [, {dim_feedforward = 4·d_model
-- (or mlp_ratio = 4), dropout = 0, causal = false, eps = 1e-5, dtype}])
--
-- A pre-norm transformer encoder layer:
--   x = x + dropout1(self_attn(norm1(x)))
--   x = x + dropout2(linear2(dropout(gelu(linear1(norm2(x))))))
-- the math of torch.nn.TransformerEncoderLayer(d_model, nhead,
-- dim_feedforward, dropout, activation="gelu", batch_first=True,
-- norm_first=True), with its submodule names, so its state dict loads.
-- causal = true makes every forward causal (a language model's block).
local TransformerBlock = Module:extend("TransformerBlock")
attention.TransformerBlock = TransformerBlock

function TransformerBlock:init(d_model, num_heads, opts)
  local name = "TransformerBlock"
  check_size(d_model, name, "d_model")
  check_size(num_heads, name, "num_heads")
  opts = util.check_options(opts, name, {dim_feedforward = true, mlp_ratio = true, dropout = true,
                                         causal = true, eps = true, dtype = true}, CTOR + 1)
  if d_model % num_heads ~= 0 then
    error(fmt("%s: d_model (%d) must be divisible by num_heads (%d)", name, d_model, num_heads),
          CTOR)
  end
  if opts.dim_feedforward ~= nil and opts.mlp_ratio ~= nil then
    error(name .. ": give dim_feedforward or mlp_ratio, not both", CTOR)
  end
  local ff = opts.dim_feedforward
  if ff == nil then
    local ratio = opts.mlp_ratio or 4
    if type(ratio) ~= "number" or ratio <= 0 or (ratio * d_model) % 1 ~= 0 then
      error(fmt("%s: mlp_ratio must be a positive number making mlp_ratio * d_model whole, got %s",
                name, tostring(ratio)), CTOR)
    end
    ff = tointeger(ratio * d_model)
  end
  check_size(ff, name, "dim_feedforward")
  local p = opts.dropout or 0
  check_p(p, name)
  local dtype = check_dtype(opts.dtype, name)
  local eps = opts.eps or 1e-5
  self.d_model, self.dim_feedforward, self.causal = d_model, ff, opts.causal == true
  -- Registered in TransformerEncoderLayer's order, so state dicts list alike.
  self.self_attn = MultiheadAttention(d_model, num_heads, {dropout = p, dtype = dtype})
  self.linear1 = layers.Linear(d_model, ff, {dtype = dtype})
  self.dropout = layers.Dropout(p)
  self.linear2 = layers.Linear(ff, d_model, {dtype = dtype})
  self.norm1 = layers.LayerNorm(d_model, {eps = eps, dtype = dtype})
  self.norm2 = layers.LayerNorm(d_model, {eps = eps, dtype = dtype})
  self.dropout1 = layers.Dropout(p)
  self.dropout2 = layers.Dropout(p)
end

-- forward(x [, {attn_mask}]) --> [N, L, d_model]; attn_mask as for
-- MultiheadAttention (int64 nonzero = may not attend, float added).
function TransformerBlock:forward(x, opts)
  opts = util.check_options(opts, "TransformerBlock", {attn_mask = true}, 2)
  if not is_tensor(x) or x:dim() ~= 3 or x:size(3) ~= self.d_model then
    error(fmt("TransformerBlock: expects x [N, L, %d], got %s", self.d_model,
              is_tensor(x) and shape_str(x) or type(x)), 2)
  end
  local h = self.norm1(x)
  local a = self.self_attn(h, h, h, {attn_mask = opts.attn_mask, is_causal = self.causal,
                                     need_weights = false})
  x = x + self.dropout1(a)
  local f = self.linear2(self.dropout(F.gelu(self.linear1(self.norm2(x)))))
  return x + self.dropout2(f)
end

function TransformerBlock:extra_repr()
  return fmt("d_model=%d, dim_feedforward=%d, causal=%s", self.d_model, self.dim_feedforward,
             tostring(self.causal))
end

return attention
