-- moongrad.tune.space: what a search may try.
--
-- A space is a table from parameter names to dimensions or fixed values:
--
--   {lr = tune.loguniform(1e-4, 1e-1), width = tune.choice{128, 256, 512},
--    dropout = tune.uniform(0, 0.5), layers = tune.int(1, 3), epochs = 5}
--
-- Dimensions:
--   uniform(low, high)     a float, evenly spread
--   uniform(low, high, {step = s})  one of low, low + s, ..., high
--   loguniform(low, high)  a float spread evenly in log space (0 < low)
--   int(low, high)         an integer in low..high, inclusive
--   int(low, high, {step = s})      one of low, low + s, ..., high
--   logint(low, high)      an integer spread evenly in log space (1 <= low)
--   choice{a, b, ...}      one of the listed values (numbers, strings, booleans)
-- Anything else (a number, string, boolean or table) is a fixed value that
-- every configuration carries unchanged.
--
-- Every dimension maps its values onto the unit interval and back
-- (to_unit/from_unit): linear or logarithmic for numbers, with each integer
-- owning an equal slice, and each choice one slice of [0, 1]. Samplers work
-- in that unit cube; from_unit(u) of any u in [0, 1] is a valid value.
local type, error, ipairs, pairs, tostring = type, error, ipairs, pairs, tostring
local floor, log, exp, min, max, huge = math.floor, math.log, math.exp, math.min, math.max,
  math.huge
local math_type, fmt, sort, concat = math.type, string.format, table.sort, table.concat

local space = {}

local Dim = {}
Dim.__index = Dim

local function finite(x) return type(x) == "number" and x == x and x ~= huge and x ~= -huge end

local function num_text(x)
  if math_type(x) == "integer" then return tostring(x) end
  return fmt("%.6g", x)
end

local function bounds(who, low, high, integer, positive)
  if not finite(low) or not finite(high) then
    error(fmt("tune.%s: low and high must be finite numbers, got %s and %s", who,
              tostring(low), tostring(high)), 3)
  end
  if integer and (low ~= floor(low) or high ~= floor(high)) then
    error(fmt("tune.%s: low and high must be integers, got %s and %s", who,
              num_text(low), num_text(high)), 3)
  end
  if low > high then
    error(fmt("tune.%s: low (%s) must not be greater than high (%s)", who,
              num_text(low), num_text(high)), 3)
  end
  if positive and low < positive then
    error(fmt("tune.%s: low must be %s (the scale is logarithmic), got %s", who,
              positive == 1 and ">= 1" or "> 0", num_text(low)), 3)
  end
end

-- A dimension takes exactly its arguments: tune.uniform(0, 1, 6) would
-- otherwise search something other than what the script says.
local function no_more(who, expected, n, extra)
  if n > 0 then
    local shown = type(extra) == "table" and "a table" or tostring(extra)
    error(fmt("tune.%s: takes %s; got %d more argument%s (%s)", who, expected, n,
              n == 1 and "" or "s", shown), 3)
  end
end

local function new(kind, t)
  t.kind = kind
  return setmetatable(t, Dim)
end

-- The options table a stepped dimension takes: {step = s} --> s or nil.
-- The range must hold a whole number of steps (Optuna shortens high with
-- a warning; here the script says what it searches, or hears why not).
local function step_of(who, opts, low, high, integer)
  if opts == nil then return nil end
  if type(opts) ~= "table" then
    error(fmt("tune.%s: the third argument is an options table {step = ...}, got %s", who,
              tostring(opts)), 3)
  end
  for k in pairs(opts) do
    if k ~= "step" then
      error(fmt("tune.%s: unknown option '%s' (known: step)", who, tostring(k)), 3)
    end
  end
  local st = opts.step
  if st == nil then return nil end
  if not finite(st) or not (st > 0) or (integer and st ~= floor(st)) then
    error(fmt("tune.%s: step must be a %s > 0, got %s", who,
              integer and "whole number" or "finite number", tostring(st)), 3)
  end
  local k = (high - low) / st
  if math.abs(k - floor(k + 0.5)) > 1e-9 * max(1, k) then
    error(fmt("tune.%s: high - low (%s - %s) must be a whole number of steps (%s)", who,
              num_text(high), num_text(low), num_text(st)), 3)
  end
  return st, floor(k + 0.5) + 1
end

function space.uniform(low, high, opts, ...)
  no_more("uniform", "(low, high [, {step = s}])", select("#", ...), ...)
  bounds("uniform", low, high)
  local st, count = step_of("uniform", opts, low, high)
  return new("uniform", {low = low + 0.0, high = high + 0.0, step = st and st + 0.0,
                         count = count})
end

function space.loguniform(low, high, ...)
  no_more("loguniform", "(low, high)", select("#", ...), ...)
  bounds("loguniform", low, high)
  if not (low > 0) then
    error(fmt("tune.loguniform: low must be > 0 (the scale is logarithmic), got %s",
              num_text(low)), 2)
  end
  return new("loguniform", {low = low + 0.0, high = high + 0.0, log = true})
end

function space.int(low, high, opts, ...)
  no_more("int", "(low, high [, {step = s}])", select("#", ...), ...)
  bounds("int", low, high, true)
  local st, count = step_of("int", opts, low, high, true)
  if st == 1 then st, count = nil, nil end -- the plain integer dimension
  return new("int", {low = floor(low), high = floor(high), integer = true,
                     step = st and floor(st), count = count})
end

function space.logint(low, high, ...)
  no_more("logint", "(low, high)", select("#", ...), ...)
  bounds("logint", low, high, true, 1)
  return new("logint", {low = floor(low), high = floor(high), integer = true, log = true})
end

function space.choice(choices, ...)
  no_more("choice", "one list of values", select("#", ...), ...)
  if type(choices) ~= "table" or #choices == 0 then
    error("tune.choice: expects a non-empty list of values, e.g. tune.choice{32, 64, 128}", 2)
  end
  local list, seen = {}, {}
  for i, v in ipairs(choices) do
    local tv = type(v)
    if tv ~= "number" and tv ~= "string" and tv ~= "boolean" then
      error(fmt("tune.choice: choice %d is a %s; choices must be numbers, strings or booleans",
                i, tv), 2)
    end
    if tv == "number" and not finite(v) then
      error(fmt("tune.choice: choice %d is %s; numbers must be finite", i, tostring(v)), 2)
    end
    if seen[v] then error(fmt("tune.choice: %s is listed twice", tostring(v)), 2) end
    seen[v] = true
    list[i] = v
  end
  return new("choice", {choices = list})
end

local function is_dim(v) return getmetatable(v) == Dim end
space.is_dim = is_dim

-- The dimension's bounds in the space samplers measure distance in.
local function scaled_bounds(d)
  if d.kind == "uniform" then return d.low, d.high end
  if d.kind == "loguniform" then return log(d.low), log(d.high) end
  if d.kind == "int" then return d.low - 0.5, d.high + 0.5 end
  if d.kind == "logint" then return log(d.low - 0.5), log(d.high + 0.5) end
end

-- The k-th value (k = 0, 1, ...) of a stepped dimension.
function Dim:_nth(k)
  if k >= self.count - 1 then return self.high end -- high itself, not low + k·step rounded
  return self.low + k * self.step
end

-- value -> [0, 1]
function Dim:to_unit(v)
  if self.step then -- each value owns an equal slice, as an integer does
    local k = min(self.count - 1, max(0, floor((v - self.low) / self.step + 0.5)))
    return (k + 0.5) / self.count
  end
  if self.kind == "choice" then
    for i, c in ipairs(self.choices) do
      if c == v then return (i - 0.5) / #self.choices end
    end
    error(fmt("tune: %s is not one of the choices", tostring(v)), 2)
  end
  local lo, hi = scaled_bounds(self)
  if hi == lo then return 0.5 end
  local s = self.log and log(v) or v
  return min(1, max(0, (s - lo) / (hi - lo)))
end

-- [0, 1] -> value (u outside [0, 1] is clamped).
function Dim:from_unit(u)
  u = min(1, max(0, u))
  if self.kind == "choice" then
    local n = #self.choices
    return self.choices[min(n, floor(u * n) + 1)]
  end
  if self.step then return self:_nth(min(self.count - 1, floor(u * self.count))) end
  local lo, hi = scaled_bounds(self)
  local s = lo + u * (hi - lo)
  local v = self.log and exp(s) or s
  if self.integer then return min(self.high, max(self.low, floor(v + 0.5))) end
  return min(self.high, max(self.low, v))
end

-- A value drawn from the dimension's prior with a uniform u in [0, 1).
function Dim:sample(u)
  return self:from_unit(u)
end

-- Every value, for grid search (choice and integer dimensions).
function Dim:grid(name)
  if self.kind == "choice" then return {table.unpack(self.choices)} end
  if self.step then
    if self.count > 10000 then
      error(fmt("tune: grid search over '%s' would try %d values; use tune.choice{...}",
                name, self.count), 3)
    end
    local out = {}
    for k = 0, self.count - 1 do out[k + 1] = self:_nth(k) end
    return out
  end
  if self.integer then
    if self.high - self.low >= 10000 then
      error(fmt("tune: grid search over '%s' would try %d integers; use tune.choice{...}",
                name, self.high - self.low + 1), 3)
    end
    local out = {}
    for v = self.low, self.high do out[#out + 1] = v end
    return out
  end
  error(fmt("tune: grid search needs a finite set of values for '%s' (%s has infinitely many); "
            .. "use tune.choice{...}", name, self:describe()), 3)
end

-- Whether v is a value of this dimension (checks a resumed study's records).
function Dim:contains(v)
  if self.kind == "choice" then
    for _, c in ipairs(self.choices) do if c == v then return true end end
    return false
  end
  if type(v) ~= "number" then return false end
  if self.integer and v ~= floor(v) then return false end
  if self.step and not (v >= self.low and v <= self.high) then return false end
  if self.step then -- on the lattice, up to the rounding of low + k·step
    local k = (v - self.low) / self.step
    return math.abs(k - floor(k + 0.5)) <= 1e-9 * max(1, k)
  end
  return v >= self.low and v <= self.high
end

function Dim:describe()
  if self.kind == "choice" then
    local parts = {}
    for i, c in ipairs(self.choices) do
      parts[i] = type(c) == "string" and fmt("%q", c) or (type(c) == "number" and num_text(c) or tostring(c))
    end
    return "choice{" .. concat(parts, ", ") .. "}"
  end
  if self.step then
    return fmt("%s(%s, %s, step %s)", self.kind, num_text(self.low), num_text(self.high),
               num_text(self.step))
  end
  return fmt("%s(%s, %s)", self.kind, num_text(self.low), num_text(self.high))
end

-- A dimension as plain data, for the wire between a trial's process and
-- the study (define-by-run suggestions), and back.
function Dim:_spec()
  if self.kind == "choice" then return {kind = "choice", choices = self.choices} end
  return {kind = self.kind, low = self.low, high = self.high, step = self.step}
end

function space.from_spec(spec)
  if type(spec) ~= "table" then error("tune: a dimension's spec must be a table", 2) end
  if spec.kind == "choice" then return space.choice(spec.choices) end
  local make = ({uniform = space.uniform, loguniform = space.loguniform, int = space.int,
                 logint = space.logint})[spec.kind]
  if not make then error("tune: unknown dimension kind " .. tostring(spec.kind), 2) end
  if spec.step ~= nil then return make(spec.low, spec.high, {step = spec.step}) end
  return make(spec.low, spec.high)
end

-- A space ----------------------------------------------------------------------

local Space = {}
Space.__index = Space

-- space.new(tbl) --> {names = sorted searched names, dims = {name -> Dim},
--                     fixed = {name -> value}}
function space.new(tbl, level)
  level = (level or 1) + 1
  if type(tbl) ~= "table" then
    error("tune: the search space must be a table of name = dimension or value", level)
  end
  local s = setmetatable({names = {}, dims = {}, fixed = {}}, Space)
  for name, v in pairs(tbl) do
    if type(name) ~= "string" then
      error(fmt("tune: search space keys must be parameter names (strings), got %s",
                tostring(name)), level)
    end
    if is_dim(v) then
      s.names[#s.names + 1] = name
      s.dims[name] = v
    elseif type(v) == "function" or type(v) == "userdata" or type(v) == "thread" then
      error(fmt("tune: '%s' in the search space is a %s; use a dimension (tune.uniform, "
                .. "tune.choice, ...) or a plain value", name, type(v)), level)
    else
      s.fixed[name] = v
    end
  end
  sort(s.names)
  return s
end

-- The full configuration a trial sees: the searched values plus the fixed ones.
function Space:config(values)
  local c = {}
  for k, v in pairs(self.fixed) do c[k] = v end
  for _, name in ipairs(self.names) do c[name] = values[name] end
  return c
end

-- One configuration drawn from the prior (rng: a moongrad.tune.rng stream).
function Space:sample(r)
  local values = {}
  for _, name in ipairs(self.names) do values[name] = self.dims[name]:sample(r:uniform()) end
  return values
end

-- name -> description, for the study file's header and error messages.
function Space:describe()
  local d = {}
  for _, name in ipairs(self.names) do d[name] = self.dims[name]:describe() end
  return d
end

-- The first searched name whose value in `values` is missing or not in the
-- space, or nil when all fit.
function Space:mismatch(values)
  for _, name in ipairs(self.names) do
    if values[name] == nil or not self.dims[name]:contains(values[name]) then return name end
  end
  for name in pairs(values) do
    if not self.dims[name] then return name end
  end
end

return space
