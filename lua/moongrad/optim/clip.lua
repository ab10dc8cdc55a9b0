-- moongrad.optim.clip: clip_grad_norm and clip_grad_value, as
-- torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (see moongrad.optim).
local mg = require "moongrad"
local options = require "moongrad.optim.options"

local grad_norm, tensor_list = mg._grad_norm, options.tensor_list
local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local fmt = string.format
local huge, sqrt = math.huge, math.sqrt

local clip = {}

local function grads_of(params, op)
  local list, problem = tensor_list(params, "params")
  if not list then error(op .. ": " .. problem, 3) end
  local grads = {}
  for _, p in ipairs(list) do
    local g = p.grad
    if g then grads[#grads + 1] = g end
  end
  return grads
end

function clip.clip_grad_norm(params, max_norm, opts)
  local op = "clip_grad_norm"
  local grads = grads_of(params, op)
  if type(max_norm) ~= "number" then
    error(fmt("%s: max_norm must be a number, got %s", op, type(max_norm)), 2)
  end
  -- A negative max_norm would flip every gradient and nan would poison them.
  if not (max_norm >= 0) then
    error(fmt("%s: max_norm must be >= 0, got %s", op, tostring(max_norm)), 2)
  end
  local norm_type, error_if_nonfinite = 2, false
  if opts ~= nil then
    if type(opts) ~= "table" then error(fmt("%s: options must be a table, got %s", op, type(opts)), 2) end
    for k in pairs(opts) do
      if k ~= "norm_type" and k ~= "error_if_nonfinite" then
        error(fmt("%s: unknown option '%s'", op, tostring(k)), 2)
      end
    end
    if opts.norm_type ~= nil then norm_type = opts.norm_type end
    if opts.error_if_nonfinite ~= nil then error_if_nonfinite = opts.error_if_nonfinite end
  end
  if norm_type == "inf" then norm_type = huge end
  if type(norm_type) ~= "number" or not (norm_type > 0) then
    error(fmt("%s: norm_type must be a number > 0 or math.huge, got %s", op,
              tostring(norm_type)), 2)
  end
  if #grads == 0 then return 0.0 end
  local total = 0.0
  for _, g in ipairs(grads) do
    local n = grad_norm(g, norm_type)
    if norm_type == huge then
      if n ~= n or n > total then total = n end
    elseif norm_type == 2 then
      total = total + n * n
    else
      total = total + n ^ norm_type
    end
  end
  if norm_type == 2 then total = sqrt(total)
  elseif norm_type ~= huge then total = total ^ (1 / norm_type) end
  if error_if_nonfinite and (total ~= total or total == huge) then
    error(fmt("%s: the total norm of order %s of the gradients is non-finite, so " ..
              "it cannot be clipped", op, tostring(norm_type)), 2)
  end
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    for _, g in ipairs(grads) do g:mul_(coef) end
  end
  return total
end

function clip.clip_grad_value(params, clip_value)
  local grads = grads_of(params, "clip_grad_value")
  if type(clip_value) ~= "number" then
    error(fmt("clip_grad_value: clip_value must be a number, got %s", type(clip_value)), 2)
  end
  -- A negative bound would pin every gradient to +-|clip_value|; nan to nan.
  if not (clip_value >= 0) then
    error(fmt("clip_grad_value: clip_value must be >= 0, got %s", tostring(clip_value)), 2)
  end
  for _, g in ipairs(grads) do
    g:minimum_(clip_value):maximum_(-clip_value)
  end
end

return clip
