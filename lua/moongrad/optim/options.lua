-- moongrad.optim.options: each optimizer's options (torch's names, order
-- and defaults), their checks, and the forms a params argument may take.
-- Used by moongrad.optim.optimizer and moongrad.optim.clip.
local mg = require "moongrad"

local is_tensor = mg.is_tensor
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local setmetatable = setmetatable
local fmt, concat = string.format, table.concat

local REQUIRED = setmetatable({}, {__tostring = function() return "<required>" end})

-- Each optimizer's options in torch's order, with their defaults.
local specs = {
  SGD = {"lr", REQUIRED, "momentum", 0, "dampening", 0, "weight_decay", 0,
         "nesterov", false, "maximize", false},
  Adam = {"lr", 1e-3, "betas", {0.9, 0.999}, "eps", 1e-8, "weight_decay", 0,
          "amsgrad", false, "maximize", false},
  AdamW = {"lr", 1e-3, "betas", {0.9, 0.999}, "eps", 1e-8, "weight_decay", 1e-2,
           "amsgrad", false, "maximize", false},
  RMSprop = {"lr", 1e-2, "alpha", 0.99, "eps", 1e-8, "weight_decay", 0,
             "momentum", 0, "centered", false, "maximize", false},
  Adagrad = {"lr", 1e-2, "lr_decay", 0, "weight_decay", 0,
             "initial_accumulator_value", 0, "eps", 1e-10, "maximize", false},
  Adamax = {"lr", 2e-3, "betas", {0.9, 0.999}, "eps", 1e-8, "weight_decay", 0,
            "maximize", false},
  NAdam = {"lr", 2e-3, "betas", {0.9, 0.999}, "eps", 1e-8, "weight_decay", 0,
           "momentum_decay", 4e-3},
  RAdam = {"lr", 1e-3, "betas", {0.9, 0.999}, "eps", 1e-8, "weight_decay", 0},
}

-- Each optimizer's per-parameter state tensors (torch's names, the slots of
-- runtime/ops_optim.c) and what their values must be: "any" finite value,
-- or "nonneg": finite and >= 0 (running averages of squares and sums of
-- them, whose square root the update takes). Besides these a state holds
-- `step` (the number of updates made, >= 1) and, for NAdam, `mu_product`.
local state_slots = {
  SGD = {momentum_buffer = "any"},
  Adam = {exp_avg = "any", exp_avg_sq = "nonneg", max_exp_avg_sq = "nonneg"},
  AdamW = {exp_avg = "any", exp_avg_sq = "nonneg", max_exp_avg_sq = "nonneg"},
  RMSprop = {square_avg = "nonneg", momentum_buffer = "any", grad_avg = "any"},
  Adagrad = {sum = "nonneg"},
  Adamax = {exp_avg = "any", exp_inf = "nonneg"},
  NAdam = {exp_avg = "any", exp_avg_sq = "nonneg"},
  RAdam = {exp_avg = "any", exp_avg_sq = "nonneg"},
}

-- spec -> {names = {...} in order, default = {name = value}}
for kind, list in pairs(specs) do
  local names, default = {}, {}
  for i = 1, #list, 2 do
    names[#names + 1] = list[i]
    default[list[i]] = list[i + 1]
  end
  specs[kind] = {names = names, default = default}
end

local function show(v)
  if type(v) == "table" and not is_tensor(v) and v ~= REQUIRED then
    local parts = {}
    for i = 1, #v do parts[i] = show(v[i]) end
    return "{" .. concat(parts, ", ") .. "}"
  end
  if type(v) == "string" then return fmt("%q", v) end
  if v ~= v then return "nan" end           -- tostring gives "-nan" on some systems
  return tostring(v)
end

local function nonneg(v)
  if type(v) ~= "number" or not (v >= 0) then return "must be a number >= 0" end
end
-- An infinite lr, eps, momentum or weight decay leaves no finite update
-- (or none at all).
local function finite_nonneg(v)
  local problem = nonneg(v)
  if problem then return problem end
  if v == math.huge then return "must be finite" end
end
local function number(v)
  if type(v) ~= "number" or v ~= v then return "must be a number" end
end
local function boolean(v)
  if type(v) ~= "boolean" then return "must be a boolean" end
end

-- A problem with option name's value v, or nil.
local checks = {
  lr = finite_nonneg, momentum = finite_nonneg, dampening = number, weight_decay = finite_nonneg,
  eps = finite_nonneg, alpha = nonneg, lr_decay = nonneg,
  initial_accumulator_value = nonneg, momentum_decay = nonneg,
  nesterov = boolean, amsgrad = boolean, centered = boolean, maximize = boolean,
}

-- The error message for the options of group o (nil when they are fine).
-- where: "" for the defaults, "parameter group 2: " for a group. A
-- required option may be missing from the defaults (groups give it).
local function check_options(kind, o, where)
  local spec = specs[kind]
  for _, name in ipairs(spec.names) do
    local v = o[name]
    if v == REQUIRED then
      if where ~= "" then
        return fmt("%s: %soption '%s' is required", kind, where, name)
      end
    elseif name == "betas" then
      if type(v) ~= "table" or is_tensor(v) or #v ~= 2 then
        return fmt("%s: %sbetas must be a table of two numbers, got %s", kind,
                   where, show(v))
      end
      for i = 1, 2 do
        if type(v[i]) ~= "number" or not (v[i] >= 0 and v[i] < 1) then
          return fmt("%s: %sbetas[%d] must be in [0, 1), got %s", kind, where,
                     i, show(v[i]))
        end
      end
    else
      local problem = checks[name](v)
      if problem then
        return fmt("%s: %s%s %s, got %s", kind, where, name, problem, show(v))
      end
    end
  end
  if kind == "SGD" and o.nesterov and (not (o.momentum > 0) or o.dampening ~= 0) then
    return fmt("%s: %snesterov requires momentum > 0 and dampening = 0 (got " ..
               "momentum %s, dampening %s)", kind, where, show(o.momentum),
               show(o.dampening))
  end
end

-- The first key of t (other than skip) that kind does not know, or nil.
local function unknown_key(kind, t, skip)
  local default = specs[kind].default
  local bad
  for k in pairs(t) do
    if k ~= skip and (type(k) ~= "string" or default[k] == nil) then
      if bad == nil or tostring(k) < tostring(bad) then bad = k end
    end
  end
  return bad
end

local function copy(v)
  if type(v) == "table" and not is_tensor(v) and v ~= REQUIRED then
    local c = {}
    for k, x in pairs(v) do c[k] = copy(x) end
    return c
  end
  return v
end

-- ---- parameters -------------------------------------------------------------------

local function is_module(v)
  return type(v) == "table" and not is_tensor(v) and type(v.parameters) == "function"
end

-- The tensors of a params argument (a tensor, an array of tensors or a
-- module), or nil and a message.
local function tensor_list(v, what)
  if is_tensor(v) then return {v} end
  if is_module(v) then return v:parameters() end
  if type(v) ~= "table" then
    return nil, fmt("%s must be a tensor, an array of tensors or a module, got %s",
                    what, type(v))
  end
  local out = {}
  for i = 1, #v do
    if not is_tensor(v[i]) then
      return nil, fmt("%s[%d] must be a tensor, got %s", what, i, type(v[i]))
    end
    out[i] = v[i]
  end
  return out
end

return {
  REQUIRED = REQUIRED,         -- the default of an option that must be given
  specs = specs,               -- kind -> {names = {...}, default = {...}}
  state_slots = state_slots,   -- kind -> {state tensor name = "any" | "nonneg"}
  show = show,                 -- a value as messages and tostring print it
  check_options = check_options,
  unknown_key = unknown_key,
  copy = copy,                 -- a deep copy of plain tables (tensors shared)
  is_module = is_module,
  tensor_list = tensor_list,
}
