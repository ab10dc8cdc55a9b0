-- moongrad.nn.losses: loss functions as modules, for code that wants a
-- criterion object: `local loss_fn = nn.CrossEntropyLoss{label_smoothing = 0.1}`,
-- then `loss_fn(logits, targets)`. The options table is the one the matching
-- F function takes and is passed on unchanged; class weights (weight,
-- pos_weight) are registered as buffers, so they follow the module into
-- state_dict, as in PyTorch.
local mg = require "moongrad"
local F = require "moongrad.functional"
local Module = require "moongrad.nn.module"

local is_tensor = mg.is_tensor
local type, error, pairs, tostring = type, error, pairs, tostring
local fmt, concat, sort = string.format, table.concat, table.sort

local losses = {}

-- Tensor options, kept as buffers rather than plain options.
local tensor_options = {weight = true, pos_weight = true}

-- name: the module's class name; fn: F's function name; known: its options.
local function loss(name, fn, known)
  local cls = Module:extend(name)
  losses[name] = cls

  function cls:init(opts)
    if opts ~= nil and type(opts) ~= "table" then
      error(fmt("%s: options must be a table, got %s", name, type(opts)), 3)
    end
    local options = {}
    for k, v in pairs(opts or {}) do
      if not known[k] then
        local names = {}
        for n in pairs(known) do names[#names + 1] = n end
        sort(names)
        error(fmt("%s: unknown option '%s' (known: %s)", name, tostring(k),
                  concat(names, ", ")), 3)
      end
      if tensor_options[k] then
        if not is_tensor(v) then
          error(fmt("%s: option %s must be a tensor, got %s", name, k, type(v)), 3)
        end
        self:register_buffer(k, v)
      else
        options[k] = v
      end
    end
    self.options = options
  end

  function cls:forward(input, target)
    local opts = {}
    for k, v in pairs(self.options) do opts[k] = v end
    for k in pairs(tensor_options) do opts[k] = self._buffers.map[k] end
    return F[fn](input, target, opts)
  end

  function cls:extra_repr()
    local parts = {}
    for k, v in pairs(self.options) do parts[#parts + 1] = k .. "=" .. tostring(v) end
    sort(parts)
    return concat(parts, ", ")
  end
end

local reduction = {reduction = true}

loss("CrossEntropyLoss", "cross_entropy",
     {weight = true, ignore_index = true, reduction = true, label_smoothing = true})
loss("NLLLoss", "nll_loss", {weight = true, ignore_index = true, reduction = true})
loss("MSELoss", "mse_loss", reduction)
loss("L1Loss", "l1_loss", reduction)
loss("SmoothL1Loss", "smooth_l1_loss", {reduction = true, beta = true})
loss("HuberLoss", "huber_loss", {reduction = true, delta = true})
loss("BCELoss", "binary_cross_entropy", {weight = true, reduction = true})
loss("BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
     {weight = true, pos_weight = true, reduction = true})

return losses
