-- moongrad.nn.layers: the layers with a forward of their own — Linear,
-- Embedding, Dropout, LayerNorm, BatchNorm1d, the activations, Flatten and
-- Identity. Each is a thin module over moongrad.functional: the module holds
-- the parameters and options, F does the arithmetic. Parameters start the
-- way PyTorch's do.
--
-- Constructors take their main sizes positionally and the rest in a
-- trailing options table: nn.Linear(784, 256, {bias = false, dtype = "float64"}).
local mg = require "moongrad"
local util = require "moongrad.util"
local F = require "moongrad.functional"
local Module = require "moongrad.nn.module"
local init = require "moongrad.nn.weight_init"
local checks = require "moongrad.nn.checks"

local is_tensor, no_grad = mg.is_tensor, mg.no_grad
local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local sqrt, math_type = math.sqrt, math.type
local fmt, concat, unpack = string.format, table.concat, table.unpack

local layers = {}

-- Constructor errors name the line that called nn.Layer(...): the
-- constructor runs inside Module's __call, one frame further up.
local CTOR = 3

-- Checks an options table against the names a layer knows; returns it (or {}).
local function options(opts, name, known)
  return util.check_options(opts, name, known, CTOR + 1)
end

local function check_size(v, name, what) checks.size(v, name, what, CTOR + 1) end

local function check_dtype(dtype, name)
  local dt = checks.dtype(dtype, name, CTOR + 1)
  return dt
end

local function param(t) return t:requires_grad() end

local function shape_str(shape) return "[" .. concat(shape, ",") .. "]" end

---------------------------------------------------------------------------
-- Linear(in, out [, {bias = true, dtype}]): y = x W^T + b, W is [out, in].
-- W ~ kaiming_uniform(a = sqrt(5)) = U(±1/sqrt(in)), b ~ U(±1/sqrt(in)).
local Linear = Module:extend("Linear")
layers.Linear = Linear

function Linear:init(in_features, out_features, opts)
  check_size(in_features, "Linear", "in_features")
  check_size(out_features, "Linear", "out_features")
  opts = options(opts, "Linear", {bias = true, dtype = true})
  local dtype = check_dtype(opts.dtype, "Linear")
  self.in_features, self.out_features = in_features, out_features
  self.weight = param(mg.empty({out_features, in_features}, dtype))
  if opts.bias ~= false then self.bias = param(mg.empty({out_features}, dtype)) end
  self:reset_parameters()
end

function Linear:reset_parameters()
  init.kaiming_uniform_(self.weight, {a = sqrt(5)})
  if self.bias then
    local bound = 1 / sqrt(self.in_features)
    init.uniform_(self.bias, -bound, bound)
  end
end

function Linear:forward(x)
  if not is_tensor(x) then
    error(fmt("Linear: expects a tensor, got %s", type(x)), 2)
  end
  local n = x:dim() > 0 and x:size(-1) or 0
  if n ~= self.in_features then
    error(fmt("Linear: expected input with %d features, got %d (input shape %s)",
              self.in_features, n, shape_str(x:shape())), 2)
  end
  return F.linear(x, self.weight, self.bias)
end

function Linear:extra_repr()
  return fmt("in=%d, out=%d, bias=%s", self.in_features, self.out_features,
             tostring(self.bias ~= nil))
end

---------------------------------------------------------------------------
-- Embedding(n, d [, {padding_idx, dtype}]): a [n, d] table of rows looked up
-- by 1-based int64 ids; rows ~ N(0, 1). Row padding_idx (1-based; negative
-- counts from the end) starts at zero and gets no gradient.
local Embedding = Module:extend("Embedding")
layers.Embedding = Embedding

function Embedding:init(num_embeddings, embedding_dim, opts)
  check_size(num_embeddings, "Embedding", "num_embeddings")
  check_size(embedding_dim, "Embedding", "embedding_dim")
  opts = options(opts, "Embedding", {padding_idx = true, dtype = true})
  local dtype = check_dtype(opts.dtype, "Embedding")
  local pad = opts.padding_idx
  if pad ~= nil then
    if math_type(pad) ~= "integer" or pad == 0 or pad > num_embeddings
        or pad < -num_embeddings then
      error(fmt("Embedding: padding_idx must be an id in 1..%d (or -%d..-1), got %s",
                num_embeddings, num_embeddings, tostring(pad)), CTOR)
    end
    if pad < 0 then pad = num_embeddings + 1 + pad end
  end
  self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, pad
  self.weight = param(mg.empty({num_embeddings, embedding_dim}, dtype))
  self:reset_parameters()
end

function Embedding:reset_parameters()
  init.normal_(self.weight, 0, 1)
  if self.padding_idx then
    no_grad(function() self.weight[self.padding_idx] = 0 end)
  end
end

function Embedding:forward(ids)
  if self.padding_idx then
    return F.embedding(ids, self.weight, {padding_idx = self.padding_idx})
  end
  return F.embedding(ids, self.weight)
end

function Embedding:extra_repr()
  local pad = self.padding_idx and fmt(", padding_idx=%d", self.padding_idx) or ""
  return fmt("%d, %d%s", self.num_embeddings, self.embedding_dim, pad)
end

---------------------------------------------------------------------------
-- Dropout([p = 0.5]): zeroes each element with probability p and scales the
-- rest by 1/(1-p) in training mode; the identity in eval mode.
-- The eps of a norm layer (1e-5 for nil): nan, negative or infinite would
-- make every output nan at the first forward.
local function check_eps(eps, name)
  if eps == nil then return 1e-5 end
  if type(eps) ~= "number" or not (eps >= 0 and eps < math.huge) then
    error(fmt("%s: eps must be a finite number >= 0, got %s", name, tostring(eps)), CTOR + 1)
  end
  return eps
end

local Dropout = Module:extend("Dropout")
layers.Dropout = Dropout

function Dropout:init(p)
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then -- not nan either
    error(fmt("Dropout: p must be a probability in [0, 1], got %s", tostring(p)), CTOR)
  end
  self.p = p
end

function Dropout:forward(x) return F.dropout(x, self.p, self.training) end

function Dropout:extra_repr() return fmt("p=%g", self.p) end

---------------------------------------------------------------------------
-- LayerNorm(shape [, {eps = 1e-5, elementwise_affine = true, bias = true, dtype}]):
-- normalises over the trailing dims `shape` (a number or a table of sizes);
-- weight starts at 1, bias at 0.
local LayerNorm = Module:extend("LayerNorm")
layers.LayerNorm = LayerNorm

function LayerNorm:init(shape, opts)
  if math_type(shape) == "integer" then shape = {shape} end
  if type(shape) ~= "table" or #shape == 0 then
    error(fmt("LayerNorm: expects the normalized shape (a size or a table of sizes), got %s",
              tostring(shape)), CTOR)
  end
  for i = 1, #shape do check_size(shape[i], "LayerNorm", "each normalized size") end
  opts = options(opts, "LayerNorm", {eps = true, elementwise_affine = true, bias = true, dtype = true})
  local dtype = check_dtype(opts.dtype, "LayerNorm")
  self.normalized_shape = {unpack(shape)}
  self.eps = check_eps(opts.eps, "LayerNorm")
  self.elementwise_affine = opts.elementwise_affine ~= false
  if self.elementwise_affine then
    self.weight = param(mg.ones(shape, dtype))
    if opts.bias ~= false then self.bias = param(mg.zeros(shape, dtype)) end
  end
end

function LayerNorm:forward(x)
  local shape, ns = x:shape(), self.normalized_shape
  local ok = #shape >= #ns
  for i = 1, #ns do
    ok = ok and shape[#shape - #ns + i] == ns[i]
  end
  if not ok then
    error(fmt("LayerNorm: expected input ending in %s, got shape %s",
              shape_str(ns), shape_str(shape)), 2)
  end
  return F.layer_norm(x, ns, self.weight, self.bias, {eps = self.eps})
end

function LayerNorm:extra_repr()
  return fmt("%s, eps=%g, elementwise_affine=%s", shape_str(self.normalized_shape),
             self.eps, tostring(self.elementwise_affine))
end

---------------------------------------------------------------------------
-- BatchNorm1d(n [, {eps = 1e-5, momentum = 0.1, affine = true,
-- track_running_stats = true, dtype}]) over [N, n] or [N, n, L] inputs.
-- Training mode normalises with the batch's statistics and updates the
-- running ones (buffers running_mean, running_var, num_batches_tracked);
-- eval mode uses the running ones. momentum = false keeps a cumulative
-- average (PyTorch's momentum=None).
local BatchNorm1d = Module:extend("BatchNorm1d")
layers.BatchNorm1d = BatchNorm1d

function BatchNorm1d:init(num_features, opts)
  local name = self:class_name()
  check_size(num_features, name, "num_features")
  opts = options(opts, name, {eps = true, momentum = true, affine = true,
                                       track_running_stats = true, dtype = true})
  local dtype = check_dtype(opts.dtype, name)
  local momentum = opts.momentum
  if momentum == nil then momentum = 0.1 end
  if momentum ~= false and (type(momentum) ~= "number" or not (momentum >= 0 and momentum <= 1)) then
    error(fmt("%s: momentum must be a number in [0, 1] or false, got %s", name, tostring(momentum)),
          CTOR)
  end
  self.num_features = num_features
  self.eps = check_eps(opts.eps, name)
  self.momentum = momentum
  self.affine = opts.affine ~= false
  self.track_running_stats = opts.track_running_stats ~= false
  if self.affine then
    self.weight = param(mg.ones({num_features}, dtype))
    self.bias = param(mg.zeros({num_features}, dtype))
  end
  if self.track_running_stats then
    self:register_buffer("running_mean", mg.zeros({num_features}, dtype))
    self:register_buffer("running_var", mg.ones({num_features}, dtype))
    self:register_buffer("num_batches_tracked", mg.tensor(0, "int64"))
  end
end

function BatchNorm1d:reset_running_stats()
  if not self.track_running_stats then return end
  no_grad(function()
    self.running_mean:zero_()
    self.running_var:fill_(1)
    self.num_batches_tracked:zero_()
  end)
end

-- The input ranks a batch norm class accepts, and how its messages say so
-- (BatchNorm2d, in nn/conv.lua, replaces them).
BatchNorm1d.input_ranks = {[2] = true, [3] = true}
BatchNorm1d.input_desc = "2-D [N, C] or 3-D [N, C, L]"

function BatchNorm1d:forward(x)
  local name = self:class_name()
  if not is_tensor(x) then
    error(fmt("%s: expects a tensor, got %s", name, type(x)), 2)
  end
  local shape = x:shape()
  if not self.input_ranks[#shape] then
    error(fmt("%s: expected %s input, got shape %s", name, self.input_desc,
              shape_str(shape)), 2)
  end
  if shape[2] ~= self.num_features then
    error(fmt("%s: expected input with %d features (dim 2), got %d (input shape %s)",
              name, self.num_features, shape[2], shape_str(shape)), 2)
  end
  local factor = self.momentum or 0
  if self.training and self.track_running_stats then
    no_grad(function() self.num_batches_tracked:add_(1) end)
    if self.momentum == false then factor = 1 / self.num_batches_tracked:item() end
  end
  -- Batch statistics in training, and in eval too when there are no running ones.
  local batch_stats = self.training or not self.track_running_stats
  return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                      {training = batch_stats, momentum = factor, eps = self.eps})
end

function BatchNorm1d:extra_repr()
  return fmt("%d, eps=%g, momentum=%s, affine=%s, track_running_stats=%s",
             self.num_features, self.eps, tostring(self.momentum), tostring(self.affine),
             tostring(self.track_running_stats))
end

---------------------------------------------------------------------------
-- Activations and shape helpers: no parameters.

-- A parameterless layer whose forward is fn(x, self).
local function simple(name, fn, repr)
  local cls = Module:extend(name)
  function cls:forward(x) return fn(x, self) end
  if repr then cls.extra_repr = repr end
  layers[name] = cls
  return cls
end

simple("Identity", function(x) return x end)
simple("ReLU", function(x) return x:relu() end)
simple("Tanh", function(x) return x:tanh() end)
simple("Sigmoid", function(x) return x:sigmoid() end)
simple("SiLU", function(x) return F.silu(x) end)

-- LeakyReLU([negative_slope = 0.01])
local LeakyReLU = simple("LeakyReLU", function(x, m) return F.leaky_relu(x, m.negative_slope) end,
  function(m) return fmt("negative_slope=%g", m.negative_slope) end)
function LeakyReLU:init(slope)
  if slope ~= nil and (type(slope) ~= "number" or slope ~= slope) then
    error(fmt("LeakyReLU: negative_slope must be a number, got %s", checks.show(slope)), CTOR)
  end
  self.negative_slope = slope or 0.01
end

-- ELU([alpha = 1])
local ELU = simple("ELU", function(x, m) return F.elu(x, m.alpha) end,
  function(m) return fmt("alpha=%g", m.alpha) end)
function ELU:init(alpha)
  if alpha ~= nil and (type(alpha) ~= "number" or alpha ~= alpha) then
    error(fmt("ELU: alpha must be a number, got %s", checks.show(alpha)), CTOR)
  end
  self.alpha = alpha or 1
end

-- GELU([{approximate = "none" | "tanh"}])
local GELU = simple("GELU", function(x, m) return F.gelu(x, {approximate = m.approximate}) end,
  function(m) return m.approximate ~= "none" and fmt("approximate=%s", m.approximate) or "" end)
function GELU:init(opts)
  opts = options(opts, "GELU", {approximate = true})
  local a = opts.approximate or "none"
  if a ~= "none" and a ~= "tanh" then
    error(fmt("GELU: approximate must be \"none\" or \"tanh\", got %s", tostring(a)), CTOR)
  end
  self.approximate = a
end

-- Softmax([dim = -1]) and LogSoftmax([dim = -1])
local function with_dim(name, fn)
  local cls = simple(name, function(x, m) return fn(x, m.dim) end,
    function(m) return fmt("dim=%d", m.dim) end)
  function cls:init(dim)
    if dim ~= nil and math_type(dim) ~= "integer" then
      error(fmt("%s: dim must be an integer, got %s", name, tostring(dim)), CTOR)
    end
    self.dim = dim or -1
  end
end
with_dim("Softmax", function(x, dim) return F.softmax(x, dim) end)
with_dim("LogSoftmax", function(x, dim) return F.log_softmax(x, dim) end)

-- Flatten([start_dim = 2, end_dim = -1]): merges dims start..end; the
-- default keeps the batch dim: [N, C, H, W] -> [N, C*H*W].
local Flatten = simple("Flatten", function(x, m) return x:flatten(m.start_dim, m.end_dim) end,
  function(m) return fmt("start_dim=%d, end_dim=%d", m.start_dim, m.end_dim) end)
function Flatten:init(start_dim, end_dim)
  for _, d in ipairs({start_dim or 2, end_dim or -1}) do
    if math_type(d) ~= "integer" then
      error(fmt("Flatten: dims must be integers, got %s", tostring(d)), CTOR)
    end
  end
  self.start_dim, self.end_dim = start_dim or 2, end_dim or -1
end

return layers
