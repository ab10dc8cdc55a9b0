-- moongrad.sched.base: what every learning-rate scheduler shares — the
-- Scheduler class (torch's _LRScheduler), option parsing with the errors
-- users see, and plain-table state dicts. Users go through moongrad.sched;
-- the scheduler families (decay.lua, cyclic.lua, compose.lua, plateau.lua)
-- build on this file.
--
-- The life of a scheduler, as in torch.optim.lr_scheduler 1.13:
--   * construction records each group's `initial_lr` (when absent), takes
--     base_lrs from it, and performs the initial step: last_epoch becomes 0
--     and the groups get the schedule's first learning rate;
--   * `s:step()` adds one to last_epoch and writes the next rates into
--     opt.param_groups[i].lr, computing them from the current rates (torch's
--     chainable form), so schedulers can be chained;
--   * `s:step(epoch)` (deprecated in torch, kept because SequentialLR and
--     CosineAnnealingWarmRestarts rely on it) jumps to `epoch` and uses the
--     closed form where the scheduler has one.
-- A class defines `_get_lr(self)` (rates for the new last_epoch, chainable
-- form) and may define `_closed_form_lr(self)`.
local setmetatable, getmetatable, rawget = setmetatable, getmetatable, rawget
local type, tostring, tonumber = type, tostring, tonumber
local pairs, ipairs, error = pairs, ipairs, error
local math_type, floor, huge = math.type, math.floor, math.huge
local concat, sort = table.concat, table.sort
local fmt = string.format

local base = {}

-- Values -------------------------------------------------------------------

-- A value as it appears in an error message.
local function show(v)
  if type(v) == "string" then return fmt("%q", v) end
  if type(v) == "number" then
    if v == huge then return "inf" elseif v == -huge then return "-inf" end
    if v ~= v then return "nan" end
    if math_type(v) == "integer" then return tostring(v) end
    local s
    for digits = 15, 17 do   -- the shortest form that reads back as v
      s = fmt("%." .. digits .. "g", v)
      if tonumber(s) == v then break end
    end
    return s:find("[%.eEn]") and s or s .. ".0"
  end
  if type(v) == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = show(v[i]) end
    return "{" .. concat(parts, ", ") .. "}"
  end
  return tostring(v)
end
base.show = show

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and type(rawget(mt, "__call")) == "function"
end
base.is_callable = is_callable

-- An integral number as a Lua integer (20.0 -> 20), or nil.
local function as_integer(v)
  if type(v) ~= "number" then return nil end
  if math_type(v) == "integer" then return v end
  if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return floor(v) end
  return nil
end
base.as_integer = as_integer

-- A copy of plain data: nested tables are copied, functions are dropped
-- (lambdas and custom scale functions are not state, as in torch).
local function copy(v)
  if type(v) == "function" then return nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = copy(x) end
  return out
end
base.copy = copy

-- Option checks: each returns true, or false and what was expected. -----------

local checks = {}
base.checks = checks

function checks.number(v) return type(v) == "number" and v == v, "must be a number" end
function checks.positive(v) -- finite: an infinite factor or step leaves no schedule
  return type(v) == "number" and v > 0 and v < math.huge, "must be a finite number > 0"
end
function checks.nonnegative(v)
  return type(v) == "number" and v >= 0, "must be a number >= 0"
end
function checks.positive_int(v)
  local i = as_integer(v)
  return i ~= nil and i > 0, "must be a positive integer"
end
function checks.nonnegative_int(v)
  local i = as_integer(v)
  return i ~= nil and i >= 0, "must be an integer >= 0"
end
function checks.last_epoch(v)
  local i = as_integer(v)
  return i ~= nil and i >= -1, "must be an integer >= -1"
end
function checks.boolean(v) return type(v) == "boolean", "must be true or false" end
function checks.callable(v) return is_callable(v), "must be a function" end
function checks.table(v) return type(v) == "table", "must be a table" end
function checks.unit(v)      -- a fraction in [0, 1]
  return type(v) == "number" and v >= 0 and v <= 1, "must be a number in [0, 1]"
end
function checks.unit_open(v) -- a fraction in (0, 1]
  return type(v) == "number" and v > 0 and v <= 1, "must be a number in (0, 1]"
end
function checks.number_or_list(v)
  return (type(v) == "number" and v == v) or type(v) == "table",
         "must be a number or a list with one number per param group"
end
function checks.one_of(...)
  local allowed = {...}
  local set, quoted = {}, {}
  for i, a in ipairs(allowed) do set[a] = true; quoted[i] = fmt("%q", a) end
  local want = "must be one of " .. concat(quoted, ", ")
  return function(v) return set[v] == true, want end
end

-- Parses opts against spec, a map from option name to
-- {default = v, required = true, check = fn}. Returns a new table with every
-- option of spec (defaults filled in); integral options (checks named *_int
-- and last_epoch) come back as Lua integers. Raises at `level` (counted from
-- the caller of parse; 3 = the user calling a constructor that calls parse)
-- on a non-table opts, an unknown name, a missing required option or a
-- failed check: "StepLR: gamma must be a number > 0 (got -1)".
function base.parse(name, opts, spec, level)
  level = (level or 2) + 1
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(fmt("%s: options must be a table, got %s", name, type(opts)), level)
  end
  for k in pairs(opts) do
    if spec[k] == nil then
      local known = {}
      for n in pairs(spec) do known[#known + 1] = n end
      sort(known)
      error(fmt("%s: unknown option %s (known: %s)", name, show(k), concat(known, ", ")), level)
    end
  end
  local out = {}
  for k, s in pairs(spec) do
    local v = opts[k]
    if v == nil then
      if s.required then error(fmt("%s: option '%s' is required", name, k), level) end
      v = s.default
    end
    if v ~= nil and s.check then
      local ok, want = s.check(v)
      if not ok then error(fmt("%s: %s %s (got %s)", name, k, want, show(v)), level) end
      if s.check == checks.positive_int or s.check == checks.nonnegative_int
          or s.check == checks.last_epoch then
        v = as_integer(v)
      end
    end
    out[k] = v
  end
  return out
end

-- The optimizer a scheduler drives: anything with a non-empty param_groups
-- list whose groups hold a numeric lr (moongrad.optim objects, or a plain
-- table in tests).
function base.check_optimizer(name, opt, level)
  level = (level or 2) + 1
  if type(opt) ~= "table" or type(opt.param_groups) ~= "table" or #opt.param_groups == 0 then
    error(fmt("%s: expected an optimizer (a table with a non-empty param_groups list), got %s",
              name, type(opt) == "table" and "a table without param_groups" or type(opt)), level)
  end
  for i, g in ipairs(opt.param_groups) do
    if type(g) ~= "table" or type(g.lr) ~= "number" then
      error(fmt("%s: optimizer param_groups[%d] has no numeric lr", name, i), level)
    end
  end
end

-- Whether the optimizer has option `key` (torch looks in optimizer.defaults;
-- a plain-table optimizer without defaults is asked through its first group).
function base.supports(opt, key)
  if type(opt.defaults) == "table" then return opt.defaults[key] ~= nil end
  return opt.param_groups[1][key] ~= nil
end

-- A per-group value: a number for every group, or a list with one number
-- per group (copied). torch's _format_param.
function base.per_group(name, what, opt, v, level)
  level = (level or 2) + 1
  local n = #opt.param_groups
  if type(v) == "number" then
    local out = {}
    for i = 1, n do out[i] = v end
    return out
  end
  if type(v) ~= "table" then
    error(fmt("%s: %s must be a number or a list of %d numbers, got %s", name, what, n, type(v)),
          level)
  end
  if #v ~= n then
    error(fmt("%s: expected %d values for %s (one per param group), got %d", name, n, what, #v),
          level)
  end
  local out = {}
  for i = 1, n do
    if type(v[i]) ~= "number" or v[i] ~= v[i] then
      error(fmt("%s: %s[%d] must be a number, got %s", name, what, i, show(v[i])), level)
    end
    out[i] = v[i]
  end
  return out
end

local function group_lrs(opt)
  local out = {}
  for i, g in ipairs(opt.param_groups) do out[i] = g.lr end
  return out
end
base.group_lrs = group_lrs

-- The Scheduler class -------------------------------------------------------

local Scheduler = {__name = "Scheduler", __scheduler = true}
Scheduler.__index = Scheduler
base.Scheduler = Scheduler

function Scheduler.__tostring(self)
  local lrs = {}
  for i, lr in ipairs(self._last_lr or {}) do lrs[i] = fmt("%.4g", lr) end
  return fmt("%s(last_epoch=%s, lr={%s})", self.__name, tostring(self.last_epoch),
             concat(lrs, ", "))
end

-- A subclass named `name`; metamethods are copied (Lua does not inherit them).
function Scheduler:extend(name)
  local cls = setmetatable({}, {__index = self})
  for k, v in pairs(self) do
    if type(k) == "string" and k:sub(1, 2) == "__" then cls[k] = v end
  end
  cls.__name, cls.__index = name, cls
  return cls
end

function base.is_scheduler(v)
  local mt = type(v) == "table" and getmetatable(v)
  return type(mt) == "table" and mt.__scheduler == true
end

-- A new scheduler of class cls on opt: torch's _LRScheduler.__init__ up to
-- (not including) the initial step, which the constructor performs last
-- with self:_initial_step(). last_epoch ~= -1 resumes a schedule and needs
-- each group's initial_lr.
function Scheduler.new(cls, opt, last_epoch, verbose, level)
  level = (level or 2) + 1
  local self = setmetatable({}, cls)
  for i, g in ipairs(opt.param_groups) do
    if last_epoch == -1 then
      if g.initial_lr == nil then g.initial_lr = g.lr end
    elseif g.initial_lr == nil then
      error(fmt("%s: param_groups[%d] has no initial_lr, which resuming with last_epoch = %d needs",
                cls.__name, i, last_epoch), level)
    end
  end
  local base_lrs = {}
  for i, g in ipairs(opt.param_groups) do base_lrs[i] = g.initial_lr end
  self.optimizer = opt
  self.base_lrs = base_lrs
  self.last_epoch = last_epoch
  self.verbose = verbose or false
  return self
end

function Scheduler:_initial_step()
  self._step_count = 0
  self:step()
end

-- Writes values into the groups' lr and records them as the last rates.
-- (verbose output goes through the global print, which a host may replace)
function Scheduler:_apply(values, epoch)
  for i, g in ipairs(self.optimizer.param_groups) do
    g.lr = values[i]
    if self.verbose then
      if epoch == nil then
        print(fmt("Adjusting learning rate of group %d to %.4e.", i, values[i]))
      else
        local e = math_type(epoch) == "float" and fmt("%.2f", epoch) or fmt("%05d", epoch)
        print(fmt("Epoch %s: adjusting learning rate of group %d to %.4e.", e, i, values[i]))
      end
    end
  end
  self._last_lr = group_lrs(self.optimizer)
end

-- Advances the schedule by one step, or (deprecated) jumps to `epoch`.
function Scheduler:step(epoch)
  self._step_count = self._step_count + 1
  local values
  if epoch == nil then
    self.last_epoch = self.last_epoch + 1
    values = self:_get_lr()
  else
    if type(epoch) ~= "number" then
      error(fmt("%s: step(epoch) expects a number, got %s", self.__name, type(epoch)), 2)
    end
    self.last_epoch = epoch
    values = self._closed_form_lr and self:_closed_form_lr() or self:_get_lr()
  end
  self:_apply(values, epoch)
end

-- The learning rates the scheduler set last, one per param group (a copy).
function Scheduler:get_last_lr()
  return copy(self._last_lr)
end

-- Fields of a state dict that are not plain state: the optimizer, and the
-- class's own list (`cls._not_state`, e.g. LambdaLR's lambdas).
local function is_state(self, k)
  if k == "optimizer" then return false end
  local skip = self._not_state
  return not (skip and skip[k])
end

-- The scheduler's state as a plain table (numbers, strings, booleans and
-- tables of them; no functions, no optimizer). Save the optimizer's state
-- with it: the schedule lives in both.
function Scheduler:state_dict()
  local sd = {}
  for k, v in pairs(self) do
    if is_state(self, k) then sd[k] = copy(v) end
  end
  return sd
end

-- Loading a state dict --------------------------------------------------------
--
-- A state dict is data from a file: it may only set the data fields the
-- scheduler already has (never a method such as step or get_lr, never the
-- optimizer), each to a value that keeps the schedule working. A field with
-- a check (the common ones below, or the class's `_state_checks`, mostly
-- its constructor's option checks) must pass it; any other field must keep
-- its form: a number stays a finite number, a string keeps its value (it
-- names a choice made when the scheduler was built), a table keeps its keys
-- (a list its length, one entry per param group), recursively.

local function finite(v)
  return type(v) == "number" and v == v and v > -huge and v < huge
end

function checks.finite_nonnegative(v)
  return finite(v) and v >= 0, "must be a finite number >= 0"
end
function checks.not_nan(v) return type(v) == "number" and v == v, "must be a number (not nan)" end
function checks.integer_list(v)
  if type(v) ~= "table" then return false, "must be a list of integers" end
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  for i = 1, n do
    if as_integer(v[i]) == nil then return false, "must be a list of integers" end
  end
  return true
end

local COMMON_CHECKS = {
  last_epoch = checks.last_epoch,
  _step_count = checks.nonnegative_int,
  verbose = checks.boolean,
}

local INTEGRAL = {[checks.positive_int] = true, [checks.nonnegative_int] = true,
                  [checks.last_epoch] = true}

-- The keys of t in a fixed order, so that the first problem reported is
-- always the same one.
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  return keys
end

local function path_of(path, k)
  return math_type(k) == "integer" and fmt("%s[%d]", path, k) or path .. "." .. tostring(k)
end

-- Whether new has the form of cur (see above); strict: numbers finite and
-- strings unchanged (the scheduler's own fields), else any number and
-- string (fields of a user's callable lambda). Returns nil, or a message
-- naming path.
local function form_problem(cur, new, path, strict)
  local tc, tn = type(cur), type(new)
  if tc ~= "number" and tc ~= "string" and tc ~= "boolean" and tc ~= "table" then
    return fmt("%s is not data (a %s)", path, tc)
  end
  if tn ~= tc then return fmt("%s must be a %s, got %s", path, tc, show(new)) end
  if tn == "number" then
    if strict and not finite(new) then
      return fmt("%s must be a finite number, got %s", path, show(new))
    end
  elseif tn == "string" then
    if strict and new ~= cur then
      return fmt("%s must be %s (set when the scheduler was built), got %s", path,
                 show(cur), show(new))
    end
  elseif tn == "table" then
    local n = 0
    for _ in pairs(cur) do n = n + 1 end
    if n > 0 and #cur == n and #new ~= n then     -- a list: one entry per group, say
      return fmt("%s must have %d entries, got %s", path, n, show(new))
    end
    for _, k in ipairs(sorted_keys(new)) do
      if cur[k] == nil then return fmt("%s has an entry %s the scheduler has not", path, show(k)) end
      local problem = form_problem(cur[k], new[k], path_of(path, k), strict)
      if problem then return problem end
    end
    for _, k in ipairs(sorted_keys(cur)) do
      if new[k] == nil and type(cur[k]) ~= "function" then
        return fmt("%s lacks the entry %s", path, show(k))
      end
    end
  end
end
base.form_problem = form_problem

-- The checked value of field k of sd for self, or nil and a message.
local function field_value(self, k, v)
  local check = COMMON_CHECKS[k] or (self._state_checks and self._state_checks[k])
  if check then
    local ok, want = check(v)
    if not ok then return nil, fmt("%s %s (got %s)", k, want, show(v)) end
    return INTEGRAL[check] and as_integer(v) or copy(v)
  end
  local problem = form_problem(rawget(self, k), v, k, true)
  if problem then return nil, problem end
  return copy(v)
end

-- Checks sd and returns the function that installs it (plain assignments:
-- it cannot fail), or nil and a message; changes nothing. handled: keys a
-- subclass checks and installs itself (LambdaLR's lambdas, a composite's
-- schedulers). Classes with more state override this method.
function Scheduler:_prepare_state(sd, handled)
  local name = self.__name
  if type(sd) ~= "table" then
    return nil, fmt("%s: load_state_dict expects a table, got %s", name, type(sd))
  end
  local values = {}
  for _, k in ipairs(sorted_keys(sd)) do
    if not (handled and handled[k]) then
      local cur = type(k) == "string" and rawget(self, k)
      if cur == nil or not is_state(self, k) or type(cur) == "function" then
        return nil, fmt("%s: load_state_dict: %s is not part of the scheduler's state " ..
                        "(not one of its data fields)", name, show(k))
      end
      local v, problem = field_value(self, k, sd[k])
      if v == nil then return nil, fmt("%s: load_state_dict: %s", name, problem) end
      values[k] = v
    end
  end
  return function()
    for k, v in pairs(values) do self[k] = v end
  end
end

-- s:prepare_load_state_dict(sd) --> apply: checks sd as load_state_dict does
-- and changes nothing; apply() installs it and cannot fail (how
-- moongrad.checkpoint restores every part of a training state or none).
function Scheduler:prepare_load_state_dict(sd)
  local apply, problem = self:_prepare_state(sd)
  if not apply then error(problem, 2) end
  return apply
end

-- Restores state saved by state_dict() (on a scheduler of the same kind,
-- built on an optimizer with the same number of groups). All or nothing:
-- the whole state dict is checked (see above) before any field changes.
function Scheduler:load_state_dict(sd)
  local apply, problem = self:_prepare_state(sd)
  if not apply then error(problem, 2) end
  apply()
end

return base
