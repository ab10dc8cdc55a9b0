-- moongrad.transforms: augmentation, for batches and for single images.
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
--   -- the image pipeline torchvision users know, per sample (a dataset's
--   -- transform, before batching): uint8 [3, H, W] in, float32 [3, 224, 224] out
--   local train_tf = T.Compose{
--     T.RandomResizedCrop(224), T.RandomHorizontalFlip(),
--     T.ColorJitter{brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.1},
--     T.ToTensor(), T.Normalize{mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225}},
--   }
--
-- A transform is a callable t(x, y) -> x, y. x is an image [C, H, W] or a
-- batch [N, C, H, W]; y (passed through untouched except by MixUp and
-- CutMix) is int64 class ids [N] (1-based) or float soft targets [N, K], or
-- nil. Images may be uint8, float32 or float64 (uint8 is what an image file
-- decodes to); each transform keeps the dtype, except ToTensor and
-- ConvertImageDtype, and those that compute in float only say so.
-- Every sample of a batch gets its own random draw. The parameters are
-- drawn in Lua from the state's RNG (mg.rand, mg.randint, mg.randperm),
-- then C primitives apply them; so mg.manual_seed makes a pipeline
-- reproducible, mg.get_rng_state captures it, and results never depend on
-- mg.set_num_threads. Transforms never write into x (one may return x
-- itself when it changes nothing, as torchvision does). They are not
-- differentiable: an image that requires grad is refused.
--
-- Batch transforms (options in one table; an unknown option is an error)
--   Compose{t1, t2, ...}                  applies them in order (ToTensor then
--                                         Normalize on uint8: one fused pass)
--   Lambda(fn)                            fn(xb, yb) -> xb[, yb] (yb kept when
--                                         fn returns one value)
--   Normalize{mean = {...}, std = {...}}  per channel: (x - mean) / std; float
--                                         images only (after ToTensor)
--   RandomHorizontalFlip{p = 0.5}         RandomVerticalFlip{p = 0.5}
--   RandomCrop{size = 28 | {h, w}, padding = 0, fill = 0}
--                                         pad every side, crop at a random place
--   RandomAffine{degrees = 0 | {lo, hi}, translate = {fx, fy}, scale = {lo, hi},
--                interpolation = "bilinear", fill = 0 | {r, g, b}}
--                                         rotation (degrees, counter-clockwise),
--                                         translation (fractions of W and H,
--                                         whole pixels) and scale about the
--                                         centre; fill blends in outside, as
--                                         torchvision's does
--   RandomErasing{p = 0.5, scale = {0.02, 0.33}, ratio = {0.3, 3.3},
--                 value = 0 | "random"}   erases one random rectangle (float)
--   GaussianNoise{std = 0.1, mean = 0}    adds N(mean, std^2) per element (float)
--   MixUp{alpha = 0.2, num_classes = K}   CutMix{alpha = 1.0, num_classes = K}
--                                         mix samples with a permutation of the
--                                         batch; yb becomes soft targets [N, K]
--                                         (float32, or yb's float dtype) that
--                                         F.cross_entropy accepts (batches only)
-- Image transforms, torchvision 0.14's (moongrad.transforms.image has the
-- details): Resize, CenterCrop, RandomResizedCrop, ColorJitter, Grayscale,
-- RandomGrayscale, RandomRotation, Pad, ToTensor, ConvertImageDtype; their
-- functional forms are T.functional (also T.F): resize, crop, center_crop,
-- resized_crop, pad, hflip, vflip, adjust_brightness, adjust_contrast,
-- adjust_saturation, adjust_hue, rgb_to_grayscale, rotate, affine,
-- normalize, convert_image_dtype, to_dtype.
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
local transform, check_image = util.transform, util.check_image
local as_batch, unbatch = util.as_batch, util.unbatch
local FLOAT = util.FLOAT_DTYPES
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

-- ToTensor then Normalize on a uint8 image run as one pass (the same
-- numbers: mg._image_normalize scales by 1/255 in float32 first).
local function fused(to_tensor, normalize)
  return function(x, y)
    if mg.is_tensor(x) and x:dtype() == "uint8" then return normalize:_from_uint8(x), y end
    return normalize(to_tensor(x, y))
  end
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
  local steps, i = {}, 1
  while i <= #ts do
    local a, b = ts[i], ts[i + 1]
    if type(a) == "table" and a.name == "ToTensor" and type(b) == "table" and b._from_uint8 then
      steps[#steps + 1], i = fused(a, b), i + 2
    else
      steps[#steps + 1], i = a, i + 1
    end
  end
  local t = transform("Compose", {}, function(_, x, y)
    for k = 1, #steps do x, y = steps[k](x, y) end
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
  -- the channel count must fit the image's
  local function check_channels(N, C)
    if #mean ~= 1 and #mean ~= C then
      util.raise(format("Normalize: %d mean/std values for %s of %d channels", #mean,
                        N and "a batch" or "an image", C))
    end
  end
  local t = transform("Normalize", {mean = mean, std = std}, function(_, x, y)
    check_channels(check_image("Normalize", x, FLOAT))
    return mg._image_normalize(x, mean, std), y
  end)
  -- ToTensor and Normalize in one pass (Compose uses it)
  function t._from_uint8(_, x)
    check_channels(check_image("Normalize", x))
    return mg._image_normalize(x, mean, std)
  end
  return t
end

-- Flips, crops and noise ------------------------------------------------------------

local function random_flip(name, vertical)
  return function(opts)
    local get = util.options(name, opts, {"p"})
    local p = get("p", "prob", 0.5)
    return transform(name, {p = p}, function(_, x, y)
      local N = check_image(name, x)
      if N then return _flip(x, mg.rand(N, "float64"):lt(p), vertical), y end
      -- one image: the same draw as a batch of one, and x itself when it
      -- stays as it is
      if mg.rand(1, "float64"):item() >= p then return x, y end
      return _flip(x:unsqueeze(1), mg.ones(1), vertical):squeeze(1), y
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
    local N, _, H, W = check_image(name, x)
    local PH, PW = H + 2 * padding, W + 2 * padding
    if sh > PH or sw > PW then
      error(format("RandomCrop: size %dx%d is larger than the padded %dx%d image",
                   sh, sw, PH, PW), 2)
    end
    if x:dtype() == "uint8" and not (fill >= 0 and fill <= 255 and fill == math.floor(fill)) then
      error(format("RandomCrop: fill %s is not a uint8 value (an integer from 0 to 255)",
                   tostring(fill)), 2)
    end
    local xb, single = as_batch(x, N)
    local top = mg.randint(1, PH - sh + 1, {N or 1})
    local left = mg.randint(1, PW - sw + 1, {N or 1})
    return unbatch(_crop(xb, top, left, sh, sw, padding, padding, fill), single), y
  end)
end

function T.GaussianNoise(opts)
  local get = util.options("GaussianNoise", opts, {"std", "mean"})
  local std = get("std", "nonneg", 0.1)
  local mean = get("mean", "number", 0)
  return transform("GaussianNoise", {std = std, mean = mean}, function(_, x, y)
    check_image("GaussianNoise", x, FLOAT)
    local noise = mg.randn_like(x)
    if std ~= 1 then noise:mul_(std) end
    if mean ~= 0 then noise:add_(mean) end
    return x + noise, y
  end)
end

-- The rest lives beside this file, along its seams.
require("moongrad.transforms.geometry")(T)
require("moongrad.transforms.mix")(T)
T.functional = require("moongrad.transforms.functional")
T.F = T.functional
require("moongrad.transforms.image")(T)

return T
