-- moongrad.transforms: augmentation pipelines over whole batches.
--
--   local T = require "moongrad.transforms"
--   local augment = T.Compose{
--     T.RandomCrop{size = 28, padding = 2},
--     T.RandomHorizontalFlip{p = 0.5},
--     T.Normalize{mean = {0.286}, std = {0.353}},
--   }
--   local loader = data.DataLoader(ds, {batch_size = 128, shuffle = true,
--                                       transform = augment})
--
-- A transform is a callable t(xb, yb) -> xb, yb on a BATCH: xb is a float32
-- or float64 tensor [N, C, H, W]; yb (passed through untouched except by
-- MixUp and CutMix) is int64 class ids [N] (1-based) or float soft targets
-- [N, K], or nil. Every sample gets its own random draw. The parameters are
-- drawn in Lua as tensors from the state's RNG (mg.rand, mg.randint, ...),
-- then ONE C primitive applies them to the whole batch; so mg.manual_seed
-- makes a pipeline reproducible, mg.get_rng_state captures it, and results
-- never depend on mg.set_num_threads. Transforms never write into xb.
--
-- Transforms (options in one table; an unknown option is an error)
--   Compose{t1, t2, ...}                  applies them in order
--   Lambda(fn)                            fn(xb, yb) -> xb[, yb] (yb kept when
--                                         fn returns one value)
--   Normalize{mean = {...}, std = {...}}  per channel: (x - mean) / std
--   RandomHorizontalFlip{p = 0.5}         RandomVerticalFlip{p = 0.5}
--   RandomCrop{size = 28 | {h, w}, padding = 0, fill = 0}
--                                         pad every side, crop at a random place
--   RandomAffine{degrees = 0 | {lo, hi}, translate = {fx, fy}, scale = {lo, hi},
--                fill = 0}                rotation (degrees, counter-clockwise),
--                                         translation (fractions of W and H,
--                                         whole pixels) and scale about the
--                                         centre; bilinear, fill outside
--   RandomErasing{p = 0.5, scale = {0.02, 0.33}, ratio = {0.3, 3.3},
--                 value = 0 | "random"}   erases one random rectangle
--   GaussianNoise{std = 0.1, mean = 0}    adds N(mean, std^2) per element
--   MixUp{alpha = 0.2, num_classes = K}   CutMix{alpha = 1.0, num_classes = K}
--                                         mix samples with a permutation of the
--                                         batch; yb becomes soft targets [N, K]
--                                         (float32, or yb's float dtype) that
--                                         F.cross_entropy accepts
-- The batch primitives underneath (1-based positions, per-sample tensors):
--   T.flip_horizontal(x, mask)  T.flip_vertical(x, mask)      mask [N], nonzero flips
--   T.crop_with_padding(x, top, left, size, padding, fill)    top/left [N] in the
--                                         padded image; size, padding: n or {h, w}
--   T.affine(x, theta, fill)              theta [N, 2, 3], inverse maps in pixel
--                                         coordinates about the image centre
--   T.erase(x, boxes, value)              boxes [N, 4] = top, left, height, width
--   T.paste(x, src, perm, boxes)          x[n]'s box <- src[perm[n]]'s box
--   T.sample_beta(a, b)                   a Beta(a, b) number from the state's RNG
local mg = require "moongrad"
local util = require "moongrad.transforms.util"

local type, ipairs, pairs, tostring, format = type, ipairs, pairs, tostring, string.format
local transform, check_batch = util.transform, util.check_batch
local _flip, _crop = mg._flip, mg._crop_with_padding

local T = {}

-- Primitives -------------------------------------------------------------------

-- n or {h, w} as two numbers
local function hw(v) if type(v) == "table" then return v[1], v[2] end return v, v end

function T.flip_horizontal(x, mask) return _flip(x, mask, false) end
function T.flip_vertical(x, mask) return _flip(x, mask, true) end
function T.crop_with_padding(x, top, left, size, padding, fill)
  local h, w = hw(size)
  local ph, pw = hw(padding or 0)
  return _crop(x, top, left, h, w, ph, pw, fill or 0)
end
function T.affine(x, theta, fill) return mg._affine(x, theta, fill or 0) end
function T.erase(x, boxes, value) return mg._erase(x, boxes, value or 0) end
function T.paste(x, src, perm, boxes) return mg._paste(x, src, perm, boxes) end
function T.sample_beta(a, b)
  if type(a) ~= "number" or type(b) ~= "number" or not (a > 0 and b > 0)
      or a == math.huge or b == math.huge then
    error(format("sample_beta: a and b must be finite numbers > 0, got %s and %s", tostring(a),
                 tostring(b)), 2)
  end
  return util.beta(a, b)
end

-- Composition ----------------------------------------------------------------------

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

function T.Compose(list)
  if type(list) ~= "table" then
    error(format("Compose: expects a table of transforms, got %s", type(list)), 2)
  end
  local ts = {}
  for i = 1, #list do
    if not is_callable(list[i]) then
      error(format("Compose: element %d is not a transform (a %s)", i, type(list[i])), 2)
    end
    ts[i] = list[i]
  end
  for k in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      error(format("Compose: unexpected key '%s' (pass a list of transforms)", tostring(k)), 2)
    end
  end
  local t = transform("Compose", {}, function(_, x, y)
    for i = 1, #ts do x, y = ts[i](x, y) end
    return x, y
  end)
  t.transforms = ts
  return t
end

function T.Lambda(fn)
  if not is_callable(fn) then
    error(format("Lambda: expects a function, got %s", type(fn)), 2)
  end
  return transform("Lambda", {}, function(_, x, y)
    local n, x2, y2 = util.pack(fn(x, y))
    if n < 2 then y2 = y end
    return x2, y2
  end)
end

-- Normalize ------------------------------------------------------------------------

local function number_list(name, key, v)
  if type(v) == "number" then v = {v} end
  if type(v) ~= "table" or #v == 0 then
    error(format("%s: option '%s' must be a number or a list of numbers", name, key), 3)
  end
  for i, e in ipairs(v) do
    if type(e) ~= "number" or e ~= e or e == math.huge or e == -math.huge then
      error(format("%s: %s[%d] must be a finite number, got %s", name, key, i,
                   type(e) == "number" and tostring(e) or type(e)), 3)
    end
  end
  return v
end

function T.Normalize(opts)
  local get = util.options("Normalize", opts, {"mean", "std"})
  local mean = number_list("Normalize", "mean", get("mean", "any", nil))
  local std = number_list("Normalize", "std", get("std", "any", nil))
  if #mean ~= #std then
    error(format("Normalize: mean has %d values but std has %d", #mean, #std), 2)
  end
  for i, s in ipairs(std) do
    if s == 0 then error(format("Normalize: std[%d] is zero", i), 2) end
  end
  local cache = {} -- dtype -> {mean, std} as [1, C, 1, 1]
  return transform("Normalize", {mean = mean, std = std}, function(_, x, y)
    local _, C = check_batch("Normalize", x)
    if #mean ~= 1 and #mean ~= C then
      error(format("Normalize: %d mean/std values for a batch of %d channels", #mean, C), 2)
    end
    local dt = x:dtype()
    local c = cache[dt]
    if not c then
      local n = #mean
      c = {mg.tensor(mean, dt):view(1, n, 1, 1), mg.tensor(std, dt):view(1, n, 1, 1)}
      cache[dt] = c
    end
    return (x - c[1]) / c[2], y
  end)
end

-- Flips, crops and noise ------------------------------------------------------------

local function random_flip(name, vertical)
  return function(opts)
    local get = util.options(name, opts, {"p"})
    local p = get("p", "prob", 0.5)
    return transform(name, {p = p}, function(_, x, y)
      local N = check_batch(name, x)
      return _flip(x, mg.rand(N, "float64"):lt(p), vertical), y
    end)
  end
end

T.RandomHorizontalFlip = random_flip("RandomHorizontalFlip", false)
T.RandomVerticalFlip = random_flip("RandomVerticalFlip", true)

function T.RandomCrop(opts)
  local name = "RandomCrop"
  local get = util.options(name, opts, {"size", "padding", "fill"})
  local size = get("size", "any", nil)
  if size == nil then error("RandomCrop: option 'size' is required", 2) end
  local sh, sw = hw(size)
  if math.type(sh) ~= "integer" or math.type(sw) ~= "integer" or sh < 1 or sw < 1 then
    error("RandomCrop: option 'size' must be a positive integer or {h, w} of them", 2)
  end
  local padding = get("padding", "int", 0)
  -- The C core's bound on window geometry (MG_MAX_WINDOW), so that the
  -- padded size below cannot wrap around.
  if padding < 0 or padding > 0x7fffffff then
    error(format("RandomCrop: option 'padding' must be in [0, 2147483647], got %d", padding), 2)
  end
  local fill = get("fill", "number", 0)
  return transform(name, {size = size, padding = padding, fill = fill}, function(_, x, y)
    local N, _, H, W = check_batch(name, x)
    local PH, PW = H + 2 * padding, W + 2 * padding
    if sh > PH or sw > PW then
      error(format("RandomCrop: size %dx%d is larger than the padded %dx%d image",
                   sh, sw, PH, PW), 2)
    end
    local top = mg.randint(1, PH - sh + 1, {N})
    local left = mg.randint(1, PW - sw + 1, {N})
    return _crop(x, top, left, sh, sw, padding, padding, fill), y
  end)
end

function T.GaussianNoise(opts)
  local get = util.options("GaussianNoise", opts, {"std", "mean"})
  local std = get("std", "nonneg", 0.1)
  local mean = get("mean", "number", 0)
  return transform("GaussianNoise", {std = std, mean = mean}, function(_, x, y)
    check_batch("GaussianNoise", x)
    local noise = mg.randn_like(x)
    if std ~= 1 then noise:mul_(std) end
    if mean ~= 0 then noise:add_(mean) end
    return x + noise, y
  end)
end

-- The rest lives beside this file, along its seams.
require("moongrad.transforms.geometry")(T)
require("moongrad.transforms.mix")(T)

return T
