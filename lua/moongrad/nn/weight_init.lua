-- moongrad.nn.init (this file; `nn.init` for users): filling parameters in
-- place with PyTorch's initialisation schemes. Every function works under
-- no_grad, draws from the Lua state's RNG (mg.manual_seed applies) and
-- returns the tensor, so `nn.init.zeros_(m.bias)` can be chained.
--
-- Fans follow PyTorch: for a weight of shape [out, in, k1, k2, ...],
-- fan_in = in * k1 * k2 * ..., fan_out = out * k1 * k2 * ...
local mg = require "moongrad"

local is_tensor, no_grad = mg.is_tensor, mg.no_grad
local sqrt, type, error, pairs = math.sqrt, type, error, pairs
local tostring, pcall = tostring, pcall
local fmt, concat = string.format, table.concat

local init = {}

local function check_tensor(t, fn)
  if not is_tensor(t) then
    error(fmt("%s: expects a tensor, got %s", fn, type(t)), 3)
  end
end

local function check_number(v, fn, what)
  if type(v) ~= "number" then
    error(fmt("%s: %s must be a number, got %s", fn, what, type(v)), 3)
  end
end

local linear_gain = {
  linear = true, identity = true, sigmoid = true,
  conv1d = true, conv2d = true, conv3d = true,
  conv_transpose1d = true, conv_transpose2d = true, conv_transpose3d = true,
}

-- calculate_gain(nonlinearity [, param]) --> the recommended gain: 1 for
-- linear, conv and sigmoid, 5/3 for tanh, sqrt(2) for relu,
-- sqrt(2 / (1 + slope^2)) for leaky_relu (param = slope, default 0.01),
-- 3/4 for selu.
function init.calculate_gain(nonlinearity, param)
  if linear_gain[nonlinearity] then return 1 end
  if nonlinearity == "tanh" then return 5 / 3 end
  if nonlinearity == "relu" then return sqrt(2) end
  if nonlinearity == "selu" then return 3 / 4 end
  if nonlinearity == "leaky_relu" then
    local slope = param == nil and 0.01 or param
    if type(slope) ~= "number" then
      error(fmt("calculate_gain: negative_slope %s is not a valid number", tostring(param)), 2)
    end
    return sqrt(2 / (1 + slope * slope))
  end
  error(fmt("calculate_gain: unsupported nonlinearity '%s'", tostring(nonlinearity)), 2)
end

-- fan_in, fan_out of t for function fn; errors point `level` frames above
-- fans' caller (2: the caller's caller).
local function fans(t, fn, level)
  local shape = t:shape()
  if #shape < 2 then
    error(fmt("%s: fan in and fan out cannot be computed for a tensor with fewer " ..
              "than 2 dimensions (shape [%s])", fn, concat(shape, ",")), level + 1)
  end
  local receptive = 1
  for i = 3, #shape do receptive = receptive * shape[i] end
  return shape[2] * receptive, shape[1] * receptive
end

-- fans(t) --> fan_in, fan_out (t has at least 2 dims).
function init.fans(t)
  check_tensor(t, "fans")
  local fan_in, fan_out = fans(t, "fans", 2)   -- not a tail call: keeps the level
  return fan_in, fan_out
end

local function uniform(t, lo, hi)
  no_grad(function() t:uniform_(lo, hi) end)
  return t
end

local function normal(t, mean, std)
  no_grad(function() t:normal_(mean, std) end)
  return t
end

-- uniform_(t [, a = 0, b = 1]): U(a, b).
function init.uniform_(t, a, b)
  check_tensor(t, "uniform_")
  return uniform(t, a or 0, b or 1)
end

-- normal_(t [, mean = 0, std = 1]): N(mean, std^2).
function init.normal_(t, mean, std)
  check_tensor(t, "normal_")
  return normal(t, mean or 0, std or 1)
end

function init.constant_(t, value)
  check_tensor(t, "constant_")
  check_number(value, "constant_", "value")
  no_grad(function() t:fill_(value) end)
  return t
end

function init.zeros_(t)
  check_tensor(t, "zeros_")
  no_grad(function() t:zero_() end)
  return t
end

function init.ones_(t)
  check_tensor(t, "ones_")
  no_grad(function() t:fill_(1) end)
  return t
end

-- xavier_uniform_(t [, gain = 1]): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)).
function init.xavier_uniform_(t, gain)
  check_tensor(t, "xavier_uniform_")
  gain = gain or 1
  check_number(gain, "xavier_uniform_", "gain")
  local fan_in, fan_out = fans(t, "xavier_uniform_", 2)
  local a = gain * sqrt(6 / (fan_in + fan_out))
  return uniform(t, -a, a)
end

-- xavier_normal_(t [, gain = 1]): N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
function init.xavier_normal_(t, gain)
  check_tensor(t, "xavier_normal_")
  gain = gain or 1
  check_number(gain, "xavier_normal_", "gain")
  local fan_in, fan_out = fans(t, "xavier_normal_", 2)
  return normal(t, 0, gain * sqrt(2 / (fan_in + fan_out)))
end

local kaiming_known = {a = true, mode = true, nonlinearity = true}

-- The std of kaiming_*: gain(nonlinearity, a) / sqrt(fan).
local function kaiming_std(t, opts, fn)
  if opts ~= nil and type(opts) ~= "table" then
    error(fmt("%s: options must be a table ({a, mode, nonlinearity}), got %s", fn, type(opts)), 3)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not kaiming_known[k] then
      error(fmt("%s: unknown option '%s' (known: a, mode, nonlinearity)", fn, tostring(k)), 3)
    end
  end
  local mode = opts.mode or "fan_in"
  if mode ~= "fan_in" and mode ~= "fan_out" then
    error(fmt("%s: mode must be \"fan_in\" or \"fan_out\", got %s", fn, tostring(mode)), 3)
  end
  local a = opts.a or 0
  check_number(a, fn, "a")
  local fan_in, fan_out = fans(t, fn, 3)
  local ok, gain = pcall(init.calculate_gain, opts.nonlinearity or "leaky_relu", a)
  if not ok then error(fn .. ": " .. gain:gsub("^.-calculate_gain: ", ""), 3) end
  return gain / sqrt(mode == "fan_in" and fan_in or fan_out)
end

-- kaiming_uniform_(t [, {a = 0, mode = "fan_in", nonlinearity = "leaky_relu"}]):
-- U(-b, b), b = sqrt(3) * gain / sqrt(fan). PyTorch's Linear uses a = sqrt(5),
-- which gives b = 1 / sqrt(fan_in).
function init.kaiming_uniform_(t, opts)
  check_tensor(t, "kaiming_uniform_")
  local bound = sqrt(3) * kaiming_std(t, opts, "kaiming_uniform_")
  return uniform(t, -bound, bound)
end

-- kaiming_normal_(t [, {a = 0, mode = "fan_in", nonlinearity = "leaky_relu"}]):
-- N(0, std^2), std = gain / sqrt(fan).
function init.kaiming_normal_(t, opts)
  check_tensor(t, "kaiming_normal_")
  return normal(t, 0, kaiming_std(t, opts, "kaiming_normal_"))
end

return init
