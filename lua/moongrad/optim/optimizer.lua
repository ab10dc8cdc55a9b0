-- moongrad.optim.optimizer: the optimizer object every kind shares:
-- parameter groups, per-parameter state, step, zero_grad, state dicts.
-- The update itself is one C kernel per parameter (mg._optim_step); see
-- moongrad.optim for the user's view.
local mg = require "moongrad"
local options = require "moongrad.optim.options"

local optim_step, enable_grad, is_tensor = mg._optim_step, mg.enable_grad, mg.is_tensor
local specs, show, check_options = options.specs, options.show, options.check_options
local state_slots = options.state_slots
local unknown_key, copy = options.unknown_key, options.copy
local is_module, tensor_list = options.is_module, options.tensor_list
local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local setmetatable, error = setmetatable, error
local fmt, concat, sort = string.format, table.concat, table.sort
local tointeger, math_type, huge = math.tointeger, math.type, math.huge

local Optimizer = {}
Optimizer.__index = Optimizer
Optimizer.__name = "moongrad.Optimizer"

-- Adds group (a table with params and options) to self; returns a message
-- on failure, with nothing added.
local function add_group(self, group, gi)
  local kind = self.kind
  local where = fmt("parameter group %d: ", gi)
  if type(group) ~= "table" or is_tensor(group) then
    return fmt("%s: a parameter group must be a table {params = ..., <options>}, got %s",
               kind, is_tensor(group) and "a tensor" or type(group))
  end
  local params, problem = tensor_list(group.params, "params")
  if not params then return fmt("%s: %s%s", kind, where, problem) end
  if #params == 0 then return fmt("%s: %sgot an empty parameter list", kind, where) end
  local bad = unknown_key(kind, group, "params")
  if bad ~= nil then return fmt("%s: %sunknown option '%s'", kind, where, tostring(bad)) end
  local seen = {}
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do seen[p] = true end
  end
  for i, p in ipairs(params) do
    if seen[p] then
      return fmt("%s: %sparameter %d appears more than once (in this group " ..
                 "or in another one)", kind, where, i)
    end
    seen[p] = true
    if p:dtype() == "int64" then
      return fmt("%s: %sparameter %d is int64; only float tensors can be optimized",
                 kind, where, i)
    end
    if not p:is_leaf() then
      return fmt("%s: %sparameter %d is not a leaf tensor (the result of an op); " ..
                 "optimize the tensors it was computed from", kind, where, i)
    end
  end
  local new = {params = params}
  for _, name in ipairs(specs[kind].names) do
    local v = group[name]
    if v == nil then v = self.defaults[name] end
    new[name] = copy(v)
  end
  problem = check_options(kind, new, where)
  if problem then return problem end
  self.param_groups[#self.param_groups + 1] = new
end

-- opt:add_param_group{params = {...}, lr = ..., ...}: options not given come
-- from the optimizer's defaults.
function Optimizer:add_param_group(group)
  local problem = add_group(self, group, #self.param_groups + 1)
  if problem then error(problem, 2) end
end

-- opt:step([closure]): one update of every parameter that has a gradient.
function Optimizer:step(closure)
  local loss
  if closure ~= nil then
    if type(closure) ~= "function" then
      error(fmt("%s: step expects a closure (function) or nothing, got %s",
                self.kind, type(closure)), 2)
    end
    loss = enable_grad(closure)
  end
  local kind, state = self.kind, self.state
  for _, group in ipairs(self.param_groups) do
    local params = group.params
    for i = 1, #params do
      -- The kernel reads p's .grad itself (nil): a .grad read here would
      -- be a Lua reference that only the collector drops, where zero_grad
      -- frees it at once.
      local p = params[i]
      local st = state[p]
      if st then
        optim_step(kind, p, nil, group, st)
      else
        st = {}
        if optim_step(kind, p, nil, group, st) then state[p] = st end
      end
    end
  end
  return loss
end

-- opt:zero_grad([{set_to_none = true}])
function Optimizer:zero_grad(opts)
  local set_to_none = true
  if opts ~= nil then
    if type(opts) ~= "table" then
      error(fmt("%s: zero_grad expects an options table, got %s", self.kind,
                type(opts)), 2)
    end
    for k in pairs(opts) do
      if k ~= "set_to_none" then
        error(fmt("%s: zero_grad: unknown option '%s'", self.kind, tostring(k)), 2)
      end
    end
    if opts.set_to_none ~= nil then set_to_none = opts.set_to_none end
  end
  for _, group in ipairs(self.param_groups) do
    for _, p in ipairs(group.params) do
      if set_to_none then
        p.grad = nil
      else
        local g = p.grad
        if g then g:zero_() end
      end
    end
  end
end

-- A deep copy of a per-parameter state table: tensors cloned.
local function clone_state(st)
  local out = {}
  for k, v in pairs(st) do
    out[k] = is_tensor(v) and v:clone() or copy(v)
  end
  return out
end

function Optimizer:state_dict()
  local index, n, groups = {}, 0, {}
  for gi, g in ipairs(self.param_groups) do
    local packed, ids = {}, {}
    for k, v in pairs(g) do
      if k ~= "params" then packed[k] = copy(v) end
    end
    for i, p in ipairs(g.params) do
      if not index[p] then
        n = n + 1
        index[p] = n
      end
      ids[i] = index[p]
    end
    packed.params = ids
    groups[gi] = packed
  end
  local state = {}
  for p, st in pairs(self.state) do
    local i = index[p]
    if i then state[i] = clone_state(st) end
  end
  return {state = state, param_groups = groups}
end

-- The keys of t in order (numbers before strings), so that the first
-- problem found is always the same one.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "number" or type(a) == "string") then return a < b end
    return type(a) == "number"
  end)
  return keys
end

local function shape_text(t) return "[" .. concat(t:shape(), ",") .. "]" end

-- A problem with the values of state tensor t, or nil: NaN and infinities
-- (never produced by a step from finite data) are refused everywhere, and
-- negative values where the update takes a square root of them.
local function value_problem(t, rule)
  if t:numel() == 0 then return nil end
  local lo, hi = t:min():item(), t:max():item()
  if lo ~= lo or hi ~= hi then return "holds NaN" end
  if lo == -huge or hi == huge then return "holds an infinite value" end
  if rule == "nonneg" and lo < 0 then
    return fmt("must be >= 0, holds %s", show(lo))
  end
end

-- A one-element tensor as its number (torch keeps step in a tensor).
local function as_number(v)
  if is_tensor(v) and v:numel() == 1 then return v:item() end
  return v
end

-- Plain data a group may carry besides its options (schedulers add
-- initial_lr, max_lr, ...): numbers, strings, booleans and tables of them.
local function is_plain(v, depth)
  local tv = type(v)
  if tv == "number" or tv == "string" or tv == "boolean" then return true end
  if tv ~= "table" or is_tensor(v) or depth > 8 then return false end
  for k, x in pairs(v) do
    if not (is_plain(k, depth + 1) and is_plain(x, depth + 1)) then return false end
  end
  return true
end

-- The state table for parameter p (number i) from a saved one, every value
-- checked: step a positive integer, the kind's state tensors of p's shape
-- and a float dtype (cloned into p's dtype, as torch does), finite, and >= 0
-- where the update needs it; NAdam's mu_product in (0, 1]. Returns the
-- table, or nil and a message.
local function restore_state(kind, p, saved, i)
  local function bad(f, ...)
    return nil, fmt("%s: load_state_dict: state of parameter %d: " .. f, kind, i, ...)
  end
  if type(saved) ~= "table" or is_tensor(saved) then
    return bad("must be a table, got %s", is_tensor(saved) and "a tensor" or type(saved))
  end
  local slots, st = state_slots[kind], {}
  for _, k in ipairs(sorted_keys(saved)) do
    local v = saved[k]
    if k == "step" then
      v = as_number(v)
      local s = type(v) == "number" and tointeger(v)
      if not s or s < 1 then
        return bad("'step' must be a positive integer (the updates made), got %s",
                   is_tensor(v) and "a tensor of " .. v:numel() .. " elements" or show(v))
      end
      v = s
    elseif k == "mu_product" and kind == "NAdam" then
      v = as_number(v)
      if type(v) ~= "number" or not (v > 0 and v <= 1) then
        return bad("'mu_product' must be a number in (0, 1], got %s",
                   is_tensor(v) and "a tensor" or show(v))
      end
    elseif type(k) == "string" and slots[k] then
      if not is_tensor(v) then return bad("'%s' must be a tensor, got %s", k, type(v)) end
      if concat(v:shape(), ",") ~= concat(p:shape(), ",") then
        return bad("'%s' has shape %s, the parameter %s", k, shape_text(v), shape_text(p))
      end
      if v:dtype() == "int64" then
        return bad("'%s' is int64; optimizer state is float32 or float64", k)
      end
      v = v:dtype() == p:dtype() and v:clone() or v:to(p:dtype())
      if not v:is_contiguous() then v = v:contiguous() end
      local problem = value_problem(v, slots[k])
      if problem then return bad("'%s' %s", k, problem) end
    else
      local names = sorted_keys(slots)
      names[#names + 1] = "step"
      if kind == "NAdam" then names[#names + 1] = "mu_product" end
      return bad("unknown entry %s (%s keeps %s)", show(k), kind, concat(names, ", "))
    end
    st[k] = v
  end
  if st.step == nil then return bad("'step' is missing") end
  return st
end

-- A group's options from a saved group: every option checked as the
-- constructor checks it (missing ones from the defaults), other keys plain
-- data. Returns the options (without params), or nil and a message.
local function restore_options(self, saved, gi)
  local kind, o = self.kind, {}
  local where = fmt("load_state_dict: parameter group %d: ", gi)
  for _, k in ipairs(sorted_keys(saved)) do
    local v = saved[k]
    if k ~= "params" then
      if type(k) ~= "string" or not is_plain(v, 0) then
        return nil, fmt("%s: %sentry %s must be plain data under a string key, got %s",
                        kind, where, show(k), is_tensor(v) and "a tensor" or type(v))
      end
      o[k] = copy(v)
    end
  end
  for _, name in ipairs(specs[kind].names) do
    if o[name] == nil then o[name] = copy(self.defaults[name]) end
  end
  local problem = check_options(kind, o, where)
  if problem then return nil, problem end
  return o
end

-- Checks sd against self and builds everything loading it needs; returns
-- the function that installs it (which allocates nothing and cannot fail),
-- or nil and a message. Nothing of self changes here.
local function prepare(self, sd)
  local kind = self.kind
  if type(sd) ~= "table" or type(sd.state) ~= "table" or type(sd.param_groups) ~= "table" then
    return nil, fmt("%s: load_state_dict expects a table {state = ..., param_groups = ...}, got %s",
                    kind, type(sd) == "table" and "a table without them" or type(sd))
  end
  local groups, saved = self.param_groups, sd.param_groups
  if #groups ~= #saved then
    return nil, fmt("%s: load_state_dict: the state dict has %d parameter groups, the " ..
                    "optimizer %d", kind, #saved, #groups)
  end
  local id_map, new_options = {}, {}
  for gi, g in ipairs(groups) do
    local sg = saved[gi]
    local ids = type(sg) == "table" and sg.params
    if type(ids) ~= "table" or #ids ~= #g.params then
      return nil, fmt("%s: load_state_dict: parameter group %d has %d parameters, the " ..
                      "saved one %s", kind, gi, #g.params,
                      type(ids) == "table" and tostring(#ids) or "none")
    end
    for i = 1, #ids do
      local id = ids[i]
      if math_type(id) ~= "integer" or id < 1 or id_map[id] then
        return nil, fmt("%s: load_state_dict: parameter group %d: params[%d] must be a " ..
                        "parameter number >= 1 that no other entry has, got %s", kind, gi, i,
                        show(id))
      end
      id_map[id] = g.params[i]
    end
    local o, problem = restore_options(self, sg, gi)
    if not o then return nil, problem end
    new_options[gi] = o
  end
  local state = {}
  for _, id in ipairs(sorted_keys(sd.state)) do
    local p = id_map[id]
    if not p then
      return nil, fmt("%s: load_state_dict: state for parameter %s, which no group has",
                      kind, show(id))
    end
    local restored, problem = restore_state(kind, p, sd.state[id], id)
    if not restored then return nil, problem end
    state[p] = restored
  end
  return function()
    for gi, g in ipairs(groups) do
      for k in pairs(g) do
        if k ~= "params" then g[k] = nil end
      end
      for k, v in pairs(new_options[gi]) do g[k] = v end
    end
    self.state = state
  end
end

-- opt:prepare_load_state_dict(sd) --> apply: checks sd (see load_state_dict)
-- and makes everything loading it needs, changing nothing; apply() then
-- installs it and cannot fail. moongrad.checkpoint restores a whole
-- training state this way: every part checked before any part changes.
function Optimizer:prepare_load_state_dict(sd)
  local apply, problem = prepare(self, sd)
  if not apply then error(problem, 2) end
  return apply
end

-- opt:load_state_dict(sd): the state and options of sd (from state_dict,
-- possibly of another optimizer object over the same parameters in the same
-- order). The group tables stay the same objects; their options are replaced.
-- All or nothing: every option is checked as the constructor checks it and
-- every state entry as a step would have left it (step a positive integer;
-- state tensors of the parameter's shape, finite, and >= 0 for averages of
-- squares), before anything changes.
function Optimizer:load_state_dict(sd)
  local apply, problem = prepare(self, sd)
  if not apply then error(problem, 2) end
  apply()
end

function Optimizer:__tostring()
  local lines = {self.kind .. " ("}
  local names = specs[self.kind].names
  for gi, g in ipairs(self.param_groups) do
    local numel = 0
    for _, p in ipairs(g.params) do numel = numel + p:numel() end
    lines[#lines + 1] = fmt("  parameter group %d: %d tensor%s, %d elements", gi,
                            #g.params, #g.params == 1 and "" or "s", numel)
    local shown = {}
    for _, name in ipairs(names) do
      lines[#lines + 1] = fmt("    %s = %s", name, show(g[name]))
      shown[name] = true
    end
    local extra = {}                    -- set by schedulers: initial_lr, ...
    for k in pairs(g) do
      if k ~= "params" and not shown[k] then extra[#extra + 1] = tostring(k) end
    end
    sort(extra)
    for _, k in ipairs(extra) do
      lines[#lines + 1] = fmt("    %s = %s", k, show(g[k]))
    end
  end
  lines[#lines + 1] = ")"
  return concat(lines, "\n")
end

-- Makes an optimizer of kind; returns it, or nil and a message.
local function new(kind, params, opts)
  if opts ~= nil and (type(opts) ~= "table" or is_tensor(opts)) then
    return nil, fmt("%s: options must be a table, got %s", kind,
                    is_tensor(opts) and "a tensor" or type(opts))
  end
  opts = opts or {}
  local bad = unknown_key(kind, opts)
  if bad ~= nil then return nil, fmt("%s: unknown option '%s'", kind, tostring(bad)) end
  local defaults = {}
  for _, name in ipairs(specs[kind].names) do
    local v = opts[name]
    if v == nil then v = specs[kind].default[name] end
    defaults[name] = copy(v)
  end
  local problem = check_options(kind, defaults, "")
  if problem then return nil, problem end
  local self = setmetatable({kind = kind, param_groups = {}, state = {},
                             defaults = defaults}, Optimizer)
  local groups
  if is_module(params) then
    groups = {{params = params:parameters()}}
  elseif is_tensor(params) then
    return nil, fmt("%s: params must be an array of tensors, a module or an array " ..
                    "of parameter groups, got a tensor (write {t})", kind)
  elseif type(params) ~= "table" then
    return nil, fmt("%s: params must be an array of tensors, a module or an array " ..
                    "of parameter groups, got %s", kind, type(params))
  elseif #params == 0 then
    return nil, fmt("%s: got an empty parameter list", kind)
  elseif is_tensor(params[1]) then
    groups = {{params = params}}
  else
    groups = params
  end
  for gi, g in ipairs(groups) do
    local problem = add_group(self, g, gi)
    if problem then return nil, problem end
  end
  return self
end

return {Optimizer = Optimizer, new = new}
