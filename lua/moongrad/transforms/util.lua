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

-- Errors ---------------------------------------------------------------------------

-- Raises msg at the first function up the stack that is neither
-- moongrad.transforms' own nor a C function: the user's call, however many
-- helpers (or a Compose) lie between.
function M.raise(msg)
  for level = 3, 200 do
    local info = debug.getinfo(level, "S")
    if not info then break end
    if info.what ~= "C" and not info.source:find("moongrad/transforms", 1, true) then
      error(msg, level)
    end
  end
  error(msg, 2)
end
local raise = M.raise

-- Options ------------------------------------------------------------------------
-- A bad option raises at the user's call of the constructor (M.raise).

local function fail(name, msg) raise(name .. ": " .. msg) end

-- Checks that opts (nil or a table) names only known options; returns a
-- reader: get(key, kind, default) with kind "prob" | "number" | "positive" |
-- "nonneg" | "int" | "range" | "pair" | "any".
function M.options(name, opts, known)
  if opts ~= nil and type(opts) ~= "table" then
    raise(format("%s: options must be a table, got %s", name, type(opts)))
  end
  opts = opts or {}
  local set = {}
  for _, k in ipairs(known) do set[k] = true end
  for k in pairs(opts) do
    if not set[k] then
      raise(format("%s: unknown option '%s' (known: %s)", name, tostring(k),
                   concat(known, ", ")))
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

-- A fill option: a finite number or a list of them (one per channel).
function M.fill_option(name, v)
  local ok = type(v) == "number" and v == v and v ~= huge and v ~= -huge
  if type(v) == "table" then
    ok = #v > 0
    for _, e in ipairs(v) do
      if type(e) ~= "number" or e ~= e or e == huge or e == -huge then ok = false end
    end
  end
  if not ok then
    raise(format("%s: option 'fill' must be a finite number or a list of them, got %s", name,
                 type(v) == "table" and "a table" or tostring(v)))
  end
  return v
end

-- A list fill must have one value per channel (or one for all), and a
-- uint8 image's fill values from 0 to 255.
function M.check_fill(name, fill, C, dtype)
  local list = type(fill) == "table" and fill or {fill}
  if #list ~= 1 and #list ~= C then
    raise(format("%s: %d fill values for an image of %d channels", name, #list, C))
  end
  for _, v in ipairs(list) do
    if dtype == "uint8" and not (v >= 0 and v <= 255) then
      raise(format("%s: fill %s is not from 0 to 255 (the image is uint8)", name, tostring(v)))
    end
  end
end

-- An interpolation option: one of the names in allowed (a set).
function M.interpolation_option(name, v, allowed)
  if not allowed[v] then
    local names = {}
    for k in pairs(allowed) do names[#names + 1] = '"' .. k .. '"' end
    sort(names)
    raise(format("%s: option 'interpolation' must be %s, got %s", name, concat(names, " or "),
                 type(v) == "string" and format("%q", v) or tostring(v)))
  end
  return v
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

-- Checks that x is an image [C, H, W] or a batch [N, C, H, W] of a dtype in
-- dtypes (a set; "uint8", "float32", "float64" when nil), with no empty
-- image; returns N (nil for one image), C, H, W. Raises at the user's call
-- (M.raise).
local IMAGE_DTYPES = {uint8 = true, float32 = true, float64 = true}
local FLOAT_DTYPES = {float32 = true, float64 = true}
M.FLOAT_DTYPES = FLOAT_DTYPES

function M.check_image(name, x, dtypes)
  if not mg.is_tensor(x) then
    raise(format("%s: expected a batch tensor [N, C, H, W] or an image [C, H, W], got %s",
                 name, type(x)))
  end
  local s = x:shape()
  if #s ~= 3 and #s ~= 4 then
    raise(format("%s: expected a batch [N, C, H, W] or an image [C, H, W], got shape [%s]",
                 name, concat(s, ",")))
  end
  local dt = x:dtype()
  dtypes = dtypes or IMAGE_DTYPES
  if not dtypes[dt] then
    if dtypes == FLOAT_DTYPES and dt == "uint8" then
      raise(format("%s: expected a float32 or float64 image, got uint8 (convert it first " ..
                   "with T.ToTensor() or T.ConvertImageDtype(\"float32\"))", name))
    end
    raise(format("%s: expected a %s image, got %s", name,
                 dtypes == FLOAT_DTYPES and "float32 or float64" or "uint8, float32 or float64",
                 dt))
  end
  local b = #s == 4 and 1 or 0
  if s[b + 1] == 0 or s[b + 2] == 0 or s[b + 3] == 0 then
    raise(format("%s: the image is empty (shape [%s])", name, concat(s, ",")))
  end
  if b == 1 then return s[1], s[2], s[3], s[4] end
  return nil, s[1], s[2], s[3]
end

-- x as a batch, and whether it was one image (N, from check_image, is
-- nil): batch transforms run on a single image as on a batch of one, with
-- the same draws; unbatch undoes it.
function M.as_batch(x, N)
  if N then return x, false end
  return x:unsqueeze(1), true
end
function M.unbatch(x, single) if single then return x:squeeze(1) end return x end

-- fn(image) for an image, or for each image of a batch, stacked: the
-- random transforms draw their parameters per image. Raises naming the
-- transform when the images come out in different sizes.
function M.each_image(name, x, fn)
  if x:ndim() == 3 then return fn(x) end
  local outs, first = {}, nil
  for n = 1, x:shape()[1] do
    local o = fn(x[n])
    local s = table.concat(o:shape(), ",")
    if first and s ~= first then
      raise(format("%s: the images of the batch came out in different sizes ([%s] and " ..
                   "[%s]); apply it to each sample before batching", name, first, s))
    end
    first = first or s
    outs[n] = o
  end
  if #outs == 0 then return x end
  return mg.stack(outs)
end

-- x rounded to the nearest integer, ties to even (Python's round()).
function M.round_even(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

-- n uniform draws in [lo, hi) as a float64 [n] tensor, from the state's RNG.
function M.uniform(n, lo, hi)
  local u = mg.rand(n, "float64")
  if lo == 0 and hi == 1 then return u end
  return u * (hi - lo) + lo
end

-- Scalar draws ---------------------------------------------------------------------

local function uniform1() return mg.rand(1, "float64"):item() end
M.uniform1 = uniform1
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
