-- moongrad.nn.transformer: transformer encoder layers over
-- nn.MultiheadAttention, with PyTorch's submodule names, so state dicts
-- from torch.nn.TransformerEncoderLayer and torch.nn.TransformerEncoder
-- load into them.
--
--   TransformerEncoderLayer  PyTorch's layer, its options and defaults
--                            (post-norm, ReLU, dropout 0.1)
--   TransformerEncoder       num_layers copies of a layer, then a norm
--   TransformerBlock         the pre-norm GELU layer of language models,
--                            as a shorthand (dropout 0, causal on request)
--
-- The three share parameter names, so the names alone cannot tell which
-- maths a state dict was trained for: each layer's state_variant() says.
local mg = require "moongrad"
local util = require "moongrad.util"
local F = require "moongrad.functional"
local Module = require "moongrad.nn.module"
local checks = require "moongrad.nn.checks"
local layers = require "moongrad.nn.layers"
local containers = require "moongrad.nn.containers"
local MultiheadAttention = require("moongrad.nn.attention").MultiheadAttention

local is_tensor, is_module = mg.is_tensor, Module.is_module
local type, error, tostring, ipairs = type, error, tostring, ipairs
local tointeger, math_type = math.tointeger, math.type
local fmt, concat = string.format, table.concat

local transformer = {}

-- Constructor errors name the line that called nn.Layer(...): the
-- constructor runs inside Module's __call, one frame further up.
local CTOR = 3

local function shape_str(t) return "[" .. concat(t:shape(), ",") .. "]" end

-- A boolean option or nil; level as error() takes it, from the caller.
local function check_flag(v, name, what, level)
  if v ~= nil and type(v) ~= "boolean" then
    error(fmt("%s: %s must be a boolean, got %s", name, what, checks.show(v)), level + 1)
  end
end

-- What every layer's options must satisfy; returns the dtype. Called by a
-- constructor (init), directly.
local function check_layer(name, d_model, nhead, nhead_name, ff, p, eps, eps_name, dtype)
  checks.size(d_model, name, "d_model", CTOR + 1)
  checks.size(nhead, name, nhead_name, CTOR + 1)
  if d_model % nhead ~= 0 then
    error(fmt("%s: d_model (%d) must be divisible by %s (%d)", name, d_model, nhead_name, nhead),
          CTOR + 1)
  end
  checks.size(ff, name, "dim_feedforward", CTOR + 1)
  checks.probability(p, name, CTOR + 1)
  if type(eps) ~= "number" or not (eps > 0) then
    error(fmt("%s: %s must be a positive number, got %s", name, eps_name, checks.show(eps)),
          CTOR + 1)
  end
  local dt = checks.dtype(dtype, name, CTOR + 1)
  return dt   -- not a tail call, which would lose the caller's line
end

-- The submodules of PyTorch's TransformerEncoderLayer, registered in its
-- order, so state dicts list alike. Arguments already checked.
local function build_layer(self, d_model, nhead, ff, p, eps, batch_first, dtype)
  self.d_model, self.dim_feedforward, self.layer_norm_eps = d_model, ff, eps
  self.batch_first = batch_first
  self.self_attn = MultiheadAttention(d_model, nhead, {dropout = p, batch_first = batch_first,
                                                       dtype = dtype})
  self.linear1 = layers.Linear(d_model, ff, {dtype = dtype})
  self.dropout = layers.Dropout(p)
  self.linear2 = layers.Linear(ff, d_model, {dtype = dtype})
  self.norm1 = layers.LayerNorm(d_model, {eps = eps, dtype = dtype})
  self.norm2 = layers.LayerNorm(d_model, {eps = eps, dtype = dtype})
  self.dropout1 = layers.Dropout(p)
  self.dropout2 = layers.Dropout(p)
end

local ACTIVATIONS = {relu = mg.relu, gelu = function(x) return F.gelu(x) end}

-- Checks a layer's input x and masks, naming them as the caller's options
-- do (so a bad mask is not reported as self_attn's). masks: {value, option
-- name, "attn" ([L, L] or [N*H, L, L]) or "padding" ([N, L])}, value may
-- be nil. level as error() takes it, counted from the caller.
local function check_src(layer, name, arg, x, masks, level)
  local d, bf = layer.d_model, layer.batch_first
  if not is_tensor(x) or x:dim() ~= 3 or x:size(3) ~= d then
    error(fmt("%s: expects %s %s, got %s", name, arg,
              fmt(bf and "[N, L, %d]" or "[L, N, %d] (batch_first = false)", d),
              is_tensor(x) and shape_str(x) or type(x)), level + 1)
  end
  local n, l = x:size(bf and 1 or 2), x:size(bf and 2 or 1)
  local nh = n * layer.self_attn.num_heads
  for _, m in ipairs(masks) do
    local mask, option, kind = m[1], m[2], m[3]
    if mask ~= nil then
      if not is_tensor(mask) then
        error(fmt("%s: %s must be a tensor, got %s", name, option, type(mask)), level + 1)
      end
      local sh = mask:shape()
      local ok, want
      if kind == "padding" then
        ok, want = #sh == 2 and sh[1] == n and sh[2] == l, fmt("[N, L] = [%d, %d]", n, l)
      else
        ok = (#sh == 2 and sh[1] == l and sh[2] == l)
            or (#sh == 3 and sh[1] == nh and sh[2] == l and sh[3] == l)
        want = fmt("[L, L] = [%d, %d] or [N*nhead, L, L] = [%d, %d, %d]", l, l, nh, l, l)
      end
      if not ok then
        error(fmt("%s: %s must be %s, got %s", name, option, want, shape_str(mask)), level + 1)
      end
    end
  end
end

-- A forward's options {<mask_name>, src_key_padding_mask, is_causal},
-- checked, with src and the masks checked against layer unless it is
-- false. Returns mask, padding mask, is_causal. Called by a forward.
local function read_options(name, opts, mask_name, layer, src)
  opts = util.check_options(opts, name, {[mask_name] = true, src_key_padding_mask = true,
                                         is_causal = true}, 3)
  check_flag(opts.is_causal, name, "is_causal", 3)
  local mask, padding = opts[mask_name], opts.src_key_padding_mask
  if layer then
    check_src(layer, name, "src", src, {{mask, mask_name, "attn"},
                                        {padding, "src_key_padding_mask", "padding"}}, 3)
  end
  return mask, padding, opts.is_causal
end

-- PyTorch's TransformerEncoderLayer.forward (its slow path), for either
-- order of norms: attn_opts go to self_attn as they are (checked).
local function encode(self, x, norm_first, activation, attn_opts)
  attn_opts.need_weights = false
  local function sa(h) return self.dropout1(self.self_attn(h, h, h, attn_opts)) end
  local function ff(h)
    return self.dropout2(self.linear2(self.dropout(activation(self.linear1(h)))))
  end
  if norm_first then
    x = x + sa(self.norm1(x))
    return x + ff(self.norm2(x))
  end
  x = self.norm1(x + sa(x))
  return self.norm2(x + ff(x))
end

-- "…(norm_first=…, activation=…)" with the eps when it is not 1e-5.
local function variant(norm_first, activation, eps, extra)
  return fmt("TransformerEncoderLayer(norm_first=%s, activation=%s%s%s)", tostring(norm_first),
             activation, eps ~= 1e-5 and fmt(", layer_norm_eps=%g", eps) or "", extra or "")
end

---------------------------------------------------------------------------
-- TransformerEncoderLayer(d_model, nhead [, {dim_feedforward = 2048,
-- dropout = 0.1, activation = "relu" | "gelu", layer_norm_eps = 1e-5,
-- batch_first = true, norm_first = false, dtype}])
--
-- torch.nn.TransformerEncoderLayer, with its submodules (self_attn,
-- linear1, dropout, linear2, norm1, norm2, dropout1, dropout2) and its
-- defaults, except batch_first: moongrad's default is true ([N, L, E]),
-- PyTorch's false ([L, N, E]; give batch_first = false for it).
--   post-norm (norm_first = false, PyTorch's default):
--     x = norm1(x + dropout1(self_attn(x)))
--     x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))
--   pre-norm (norm_first = true):
--     x = x + dropout1(self_attn(norm1(x)))
--     x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))
-- "gelu" is the exact (erf) GELU, as PyTorch's.
local TransformerEncoderLayer = Module:extend("TransformerEncoderLayer")
transformer.TransformerEncoderLayer = TransformerEncoderLayer

function TransformerEncoderLayer:init(d_model, nhead, opts)
  local name = "TransformerEncoderLayer"
  opts = util.check_options(opts, name, {dim_feedforward = true, dropout = true,
                                         activation = true, layer_norm_eps = true,
                                         batch_first = true, norm_first = true, dtype = true},
                            CTOR + 1)
  local ff, p, eps = opts.dim_feedforward or 2048, opts.dropout or 0.1, opts.layer_norm_eps or 1e-5
  local dtype = check_layer(name, d_model, nhead, "nhead", ff, p, eps, "layer_norm_eps", opts.dtype)
  local activation = opts.activation or "relu"
  if ACTIVATIONS[activation] == nil then
    error(fmt("%s: activation must be \"relu\" or \"gelu\", got %s", name,
              checks.show(activation)), CTOR)
  end
  check_flag(opts.batch_first, name, "batch_first", CTOR)
  check_flag(opts.norm_first, name, "norm_first", CTOR)
  self.norm_first, self.activation = opts.norm_first == true, activation
  build_layer(self, d_model, nhead, ff, p, eps, opts.batch_first ~= false, dtype)
end

-- forward(src [, {src_mask, src_key_padding_mask, is_causal = false}])
-- --> output shaped like src ([N, L, d_model], or [L, N, d_model] when
-- batch_first = false). src_mask is self_attn's attn_mask ([L, L] or
-- [N*nhead, L, L]), src_key_padding_mask its key_padding_mask ([N, L]);
-- flags (int64, nonzero) block, floats are added, as in
-- nn.MultiheadAttention. is_causal blocks key j > i: PyTorch 2 takes it as
-- a hint that src_mask is that mask; here it builds the mask, which agrees
-- whenever the hint is true.
function TransformerEncoderLayer:forward(src, opts)
  local mask, padding, causal = read_options("TransformerEncoderLayer", opts, "src_mask", self, src)
  return encode(self, src, self.norm_first, ACTIVATIONS[self.activation],
                {attn_mask = mask, key_padding_mask = padding, is_causal = causal})
end

-- state_variant() --> a string naming the maths the parameters are for:
-- norm order, activation, and the norms' eps when not PyTorch's default.
-- Equal strings mean the same parameters compute the same function.
function TransformerEncoderLayer:state_variant()
  return variant(self.norm_first, self.activation, self.layer_norm_eps)
end

function TransformerEncoderLayer:extra_repr()
  return fmt("d_model=%d, dim_feedforward=%d, norm_first=%s, activation=%s%s", self.d_model,
             self.dim_feedforward, tostring(self.norm_first), self.activation,
             self.batch_first and "" or ", batch_first=false")
end

---------------------------------------------------------------------------
-- TransformerEncoder(encoder_layer, num_layers [, {norm}])
--
-- torch.nn.TransformerEncoder: `layers`, a ModuleList of num_layers deep
-- copies of encoder_layer (encoder_layer:clone(), as PyTorch deep-copies:
-- every layer starts with the same weights, and encoder_layer itself is
-- not part of the model), then `norm`, a module or nil, on the output.
-- Its state dict names are PyTorch's but 1-based, as every moongrad list
-- is: layers.1.self_attn.in_proj_weight is PyTorch's layers.0.… .
--
-- Padded positions: moongrad computes PyTorch's slow path at every
-- position, so a position that src_key_padding_mask marks as padding gets
-- whatever the layers compute for its query (it still attends to the
-- unpadded keys), exactly as PyTorch in training mode or with
-- enable_nested_tensor=False. PyTorch 1.13 in eval mode may take its
-- nested-tensor fast path instead and return 0 at those positions;
-- the unpadded positions agree either way. Zero the padded rows yourself
-- where that matters (out:masked_fill(pad:reshape(N, L, 1), 0)).
local TransformerEncoder = Module:extend("TransformerEncoder")
transformer.TransformerEncoder = TransformerEncoder

function TransformerEncoder:init(encoder_layer, num_layers, opts)
  local name = "TransformerEncoder"
  if not is_module(encoder_layer) then
    error(fmt("%s: encoder_layer must be a module (a TransformerEncoderLayer), got %s", name,
              type(encoder_layer)), CTOR)
  end
  checks.size(num_layers, name, "num_layers", CTOR)
  opts = util.check_options(opts, name, {norm = true}, CTOR + 1)
  if opts.norm ~= nil and not is_module(opts.norm) then
    error(fmt("%s: norm must be a module (a LayerNorm) or nil, got %s", name, type(opts.norm)),
          CTOR)
  end
  local copies = {}
  for i = 1, num_layers do copies[i] = encoder_layer:clone() end
  self.layers = containers.ModuleList(copies)
  self.num_layers = num_layers
  if opts.norm ~= nil then self.norm = opts.norm end
end

-- forward(src [, {mask, src_key_padding_mask, is_causal = false}]) -->
-- output shaped like src: each layer in turn gets
-- {src_mask = mask, src_key_padding_mask, is_causal}, then norm if any.
function TransformerEncoder:forward(src, opts)
  -- src and the masks are checked here, under this forward's option names,
  -- when the layers are TransformerEncoderLayers; other layers check their own.
  local first = self.layers[1]
  local mask, padding, causal = read_options("TransformerEncoder", opts, "mask",
                                             first:is_a(TransformerEncoderLayer) and first, src)
  if not is_tensor(src) then
    error(fmt("TransformerEncoder: expects src to be a tensor, got %s", type(src)), 2)
  end
  local out = src
  for _, layer in ipairs(self.layers) do
    out = layer(out, {src_mask = mask, src_key_padding_mask = padding, is_causal = causal})
  end
  if self.norm ~= nil then out = self.norm(out) end
  return out
end

function TransformerEncoder:extra_repr() return fmt("num_layers=%d", self.num_layers) end

---------------------------------------------------------------------------
-- TransformerBlock(d_model, num_heads [, {dim_feedforward = 4·d_model
-- (or mlp_ratio = 4), dropout = 0, causal = false, eps = 1e-5, dtype}])
--
-- The pre-norm GELU layer of language models, as a shorthand:
--   x = x + dropout1(self_attn(norm1(x)))
--   x = x + dropout2(linear2(dropout(gelu(linear1(norm2(x))))))
-- the maths of TransformerEncoderLayer(d_model, nhead, {norm_first = true,
-- activation = "gelu"}) (and of PyTorch's with batch_first=True), with its
-- submodule names, so either's state dict loads. It is NOT PyTorch's
-- default layer (post-norm, ReLU), which has the same names: for that
-- (and for key padding masks and batch_first = false) use
-- TransformerEncoderLayer. causal = true makes every forward causal (a
-- language model's block).
local TransformerBlock = Module:extend("TransformerBlock")
transformer.TransformerBlock = TransformerBlock

function TransformerBlock:init(d_model, num_heads, opts)
  local name = "TransformerBlock"
  opts = util.check_options(opts, name, {dim_feedforward = true, mlp_ratio = true, dropout = true,
                                         causal = true, eps = true, dtype = true}, CTOR + 1)
  if opts.dim_feedforward ~= nil and opts.mlp_ratio ~= nil then
    error(name .. ": give dim_feedforward or mlp_ratio, not both", CTOR)
  end
  local ff = opts.dim_feedforward
  if ff == nil and math_type(d_model) == "integer" then
    local ratio = opts.mlp_ratio or 4
    if type(ratio) ~= "number" or ratio <= 0 or (ratio * d_model) % 1 ~= 0 then
      error(fmt("%s: mlp_ratio must be a positive number making mlp_ratio * d_model whole, got %s",
                name, tostring(ratio)), CTOR)
    end
    ff = tointeger(ratio * d_model)
  end
  local p, eps = opts.dropout or 0, opts.eps or 1e-5
  local dtype = check_layer(name, d_model, num_heads, "num_heads", ff, p, eps, "eps", opts.dtype)
  check_flag(opts.causal, name, "causal", CTOR)
  self.causal = opts.causal == true
  build_layer(self, d_model, num_heads, ff, p, eps, true, dtype)
end

-- forward(x [, {attn_mask}]) --> [N, L, d_model]; attn_mask as for
-- MultiheadAttention (int64 nonzero = may not attend, float added).
function TransformerBlock:forward(x, opts)
  opts = util.check_options(opts, "TransformerBlock", {attn_mask = true}, 2)
  check_src(self, "TransformerBlock", "x", x, {{opts.attn_mask, "attn_mask", "attn"}}, 2)
  return encode(self, x, true, ACTIVATIONS.gelu,
                {attn_mask = opts.attn_mask, is_causal = self.causal})
end

-- state_variant() --> the equivalent TransformerEncoderLayer's variant
-- (pre-norm, GELU), with causal=true when the block is causal: the same
-- names then compute a different function.
function TransformerBlock:state_variant()
  return variant(true, "gelu", self.layer_norm_eps, self.causal and ", causal=true" or nil)
end

function TransformerBlock:extra_repr()
  return fmt("d_model=%d, dim_feedforward=%d, causal=%s", self.d_model, self.dim_feedforward,
             tostring(self.causal))
end

return transformer
