-- moongrad.transforms.util: what the transform files share — the callable
-- transform object, option and batch checks, and scalar draws (Gamma and
-- Beta) from the state's RNG. Not a public module; see moongrad.transforms.
local mg = require "moongrad"

local type, pairs, ipairs, tostring, select = type, pairs, ipairs, tostring, select
local concat, sort, format = table.concat, table.sort, string.format
local sqrt, log, huge = math.sqrt, math.log, math.huge

local M = {}

-- Transform objects -----------------------------------------------------------

local function describe(self)
  local keys, parts = {}, {}
  for k in pairs(self.options) do keys[#keys + 1] = k end
  sort(keys)
  for _, k in ipairs(keys) do
    local v = self.options[k]
    if type(v) == "table" then
      local items = {}
      for i, e in ipairs(v) do items[i] = tostring(e) end
      v = "{" .. concat(items, ", ") .. "}"
    elseif type(v) == "string" then
      v = format("%q", v)
    end
    parts[#parts + 1] = k .. " = " .. tostring(v)
  end
  return self.name .. "{" .. concat(parts, ", ") .. "}"
end

-- A transform named name: a table holding its checked options (t.options,
-- and each option as a field) whose call t(xb, yb) runs apply(t, xb, yb).
function M.transform(name, options, apply)
  local t = {name = name, options = options}
  for k, v in pairs(options) do t[k] = v end
  return setmetatable(t, {
    __call = apply,
    __tostring = describe,
    __name = "moongrad.transforms." .. name,
  })
end

-- Options ------------------------------------------------------------------------
-- A bad option raises at the caller of the transform's constructor (level
-- 4: fail <- the reader <- the constructor <- its caller).

local function fail(name, msg) error(name .. ": " .. msg, 4) end

-- Checks that opts (nil or a table) names only known options; returns a
-- reader: get(key, kind, default) with kind "prob" | "number" | "positive" |
-- "nonneg" | "int" | "range" | "pair" | "any".
function M.options(name, opts, known)
  if opts ~= nil and type(opts) ~= "table" then
    error(format("%s: options must be a table, got %s", name, type(opts)), 3)
  end
  opts = opts or {}
  local set = {}
  for _, k in ipairs(known) do set[k] = true end
  for k in pairs(opts) do
    if not set[k] then
      error(format("%s: unknown option '%s' (known: %s)", name, tostring(k),
                   concat(known, ", ")), 3)
    end
  end
  -- v if it is a number in [lo, hi], else nil and the complaint
  local function num(key, v, lo, hi, what)
    if type(v) ~= "number" then
      return nil, format("option '%s' must be a number, got %s", key, type(v))
    end
    if v ~= v then return nil, format("option '%s' must be a number, got nan", key) end
    if v < lo or v > hi then return nil, format("option '%s' must be %s, got %s", key, what, v) end
    return v
  end
  return function(key, kind, default)
    local v = opts[key]
    if v == nil then return default end
    local ok, err = true, nil
    if kind == "prob" then ok, err = num(key, v, 0, 1, "in [0, 1]")
    elseif kind == "number" then ok, err = num(key, v, -huge, huge, "a number")
    elseif kind == "nonneg" then ok, err = num(key, v, 0, huge, "non-negative")
    elseif kind == "positive" then
      ok, err = num(key, v, 0, huge, "positive")
      if ok == 0 then ok, err = nil, format("option '%s' must be positive, got 0", key) end
    elseif kind == "int" then
      ok, err = num(key, v, 0, huge, "a non-negative integer")
      if ok and v ~= math.floor(v) then
        ok, err = nil, format("option '%s' must be a non-negative integer, got %s", key, v)
      end
      v = ok and math.tointeger(v) or v
    elseif kind == "range" or kind == "pair" then
      -- a pair {a, b} of numbers; "range" also wants a <= b
      if type(v) ~= "table" or type(v[1]) ~= "number" or type(v[2]) ~= "number" or #v ~= 2 then
        ok, err = nil, format("option '%s' must be a pair of numbers {a, b}", key)
      elseif kind == "range" and v[1] > v[2] then
        ok, err = nil, format("option '%s' must be {low, high} with low <= high, got {%s, %s}",
                              key, v[1], v[2])
      else
        v = {v[1], v[2]}
      end
    end
    if not ok then fail(name, err) end
    return v
  end
end

-- Batches ------------------------------------------------------------------------

-- Checks that x is a float batch [N, C, H, W]; returns N, C, H, W. Raises at
-- the transform's caller (level 3: check_batch -> apply -> caller).
function M.check_batch(name, x)
  if not mg.is_tensor(x) then
    error(format("%s: expected a batch tensor [N, C, H, W], got %s", name, type(x)), 3)
  end
  local s = x:shape()
  if #s ~= 4 then
    error(format("%s: expected a batch [N, C, H, W], got shape [%s]", name, concat(s, ",")), 3)
  end
  local dt = x:dtype()
  if dt ~= "float32" and dt ~= "float64" then
    error(format("%s: expected a float32 or float64 batch, got %s", name, dt), 3)
  end
  return s[1], s[2], s[3], s[4]
end

-- n uniform draws in [lo, hi) as a float64 [n] tensor, from the state's RNG.
function M.uniform(n, lo, hi)
  local u = mg.rand(n, "float64")
  if lo == 0 and hi == 1 then return u end
  return u * (hi - lo) + lo
end

-- Scalar draws ---------------------------------------------------------------------

local function uniform1() return mg.rand(1, "float64"):item() end
local function normal1() return mg.randn(1, "float64"):item() end

-- A Gamma(shape, 1) draw by Marsaglia and Tsang's method ("A simple method
-- for generating gamma variables", 2000); shape < 1 is boosted through
-- Gamma(shape + 1) * U^(1/shape). Every number comes from the state's RNG.
function M.gamma(shape)
  if shape < 1 then
    local u = uniform1()
    return M.gamma(shape + 1) * (u > 0 and u or 1) ^ (1 / shape)
  end
  local d = shape - 1 / 3
  local c = 1 / sqrt(9 * d)
  while true do
    local z, v
    repeat
      z = normal1()
      v = 1 + c * z
    until v > 0
    v = v * v * v
    local u = uniform1()
    if u < 1 - 0.0331 * z ^ 4 or (u > 0 and log(u) < 0.5 * z * z + d * (1 - v + log(v))) then
      return d * v
    end
  end
end

-- A Beta(a, b) draw as X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b).
function M.beta(a, b)
  local x, y = M.gamma(a), M.gamma(b)
  if x + y == 0 then return 0.5 end -- both underflowed (tiny a and b)
  return x / (x + y)
end

-- The number of values a call returned, and the values.
function M.pack(...) return select("#", ...), ... end

return M
