-- moongrad.nn.utils: helpers that work on a model's parameters rather than
-- on activations. `nn.utils.l2_penalty` (also `nn.l2_penalty`).
--
--   local loss = F.cross_entropy(net(x), y) + nn.l2_penalty(net, 1e-4)
--   local loss = ... + nn.l2_penalty(net, 1e-4, {
--     exclude = function(name, p) return name:match("bias$") end})
--
-- Weight decay, coupled and decoupled. There are two ways to pull weights
-- towards zero, and they are the same thing only in the simplest case:
--
--   * Coupled (an L2 penalty): `weight_decay = wd` in optim.SGD, Adam,
--     RMSprop and Adagrad adds wd·w to each gradient before the update rule
--     sees it. That is exactly the gradient of (wd/2)·Σw², so it is the same
--     as training on loss + nn.l2_penalty(params, wd/2), with any of these
--     optimizers: the optimizer only ever sees the gradient. Note the factor
--     of two: a penalty λ·Σw² matches weight_decay = 2λ.
--   * Decoupled: optim.AdamW shrinks the weights directly, w ← w − lr·wd·w,
--     and then takes the Adam step on the loss's gradient alone. For plain
--     SGD (no momentum) this is the same as coupled decay. For Adam it is
--     not equivalent to any penalty: a penalty's gradient passes through
--     Adam's per-weight scaling (divided by √v), so weights with large
--     gradients are barely decayed, whereas decoupled decay shrinks every
--     weight by the same factor (1 − lr·wd) whatever its gradient history
--     (Loshchilov & Hutter, "Decoupled Weight Decay Regularization").
--     With momentum SGD the two differ too: coupled decay goes through the
--     momentum buffer.
local mg = require "moongrad"
local Module = require "moongrad.nn.module"

local is_tensor, is_module = mg.is_tensor, Module.is_module
local type, error, pairs, ipairs, tostring = type, error, pairs, ipairs, tostring
local fmt = string.format

local utils = {}

local function describe(v)
  if is_tensor(v) then return "tensor" end
  if is_module(v) then return "module " .. v:class_name() end
  return type(v)
end

-- {name, tensor} pairs: dotted names for a module, array indices for a list.
local function named(params)
  local out = {}
  if is_module(params) then
    for name, p in params:named_parameters() do out[#out + 1] = {name, p} end
    return out
  end
  if type(params) ~= "table" then
    error(fmt("l2_penalty: expects a module or an array of tensors, got %s",
              describe(params)), 3)
  end
  for i, p in ipairs(params) do
    if not is_tensor(p) then
      error(fmt("l2_penalty: parameter %d is a %s, expected a tensor", i, describe(p)), 3)
    end
    out[i] = {i, p}
  end
  return out
end

-- l2_penalty(params, lambda [, {exclude = function(name, p) end}]) --> 0-d tensor
--
-- λ·Σ_p Σ_i p_i², differentiable: add it to the loss and backward gives
-- each parameter the extra gradient 2λ·p. params is a module (its
-- parameters(), each once) or an array of tensors; every one counts,
-- biases included, unless exclude(name, p) returns true for it (name is
-- the dotted parameter name for a module, the array index for a list).
-- lambda is a number ≥ 0. With no parameters left the result is a 0-d
-- float32 zero. The penalty equals coupled weight decay of 2λ (see above).
function utils.l2_penalty(params, lambda, opts)
  if type(lambda) ~= "number" or not (lambda >= 0) then
    error(fmt("l2_penalty: lambda must be a number >= 0, got %s", tostring(lambda)), 2)
  end
  local exclude
  if opts ~= nil then
    if type(opts) ~= "table" then
      error(fmt("l2_penalty: options must be a table, got %s", describe(opts)), 2)
    end
    for k in pairs(opts) do
      if k ~= "exclude" then
        error(fmt("l2_penalty: unknown option '%s' (known: exclude)", tostring(k)), 2)
      end
    end
    exclude = opts.exclude
    if exclude ~= nil and type(exclude) ~= "function" then
      error(fmt("l2_penalty: exclude must be a function(name, p), got %s",
                describe(exclude)), 2)
    end
  end
  local total
  for _, e in ipairs(named(params)) do
    local p = e[2]
    if not (exclude and exclude(e[1], p)) then
      local sq = (p * p):sum()
      total = total and total + sq or sq
    end
  end
  if total == nil then return mg.zeros({}) end
  return total * lambda
end

return utils
