-- moongrad.transforms.functional (also T.functional and T.F): the image
-- functions under the image transforms, with given parameters, as
-- torchvision 0.14's transforms.functional on tensors computes them.
--
--   local F = require("moongrad.transforms").F
--   local y = F.resize(img, 256)                      -- smaller edge -> 256
--   y = F.center_crop(y, 224)
--   y = F.adjust_hue(F.adjust_saturation(y, 1.3), 0.05)
--   y = F.normalize(F.convert_image_dtype(y, "float32"), {0.485, 0.456, 0.406},
--                   {0.229, 0.224, 0.225})
--
-- img is an image [C, H, W] or a batch [N, C, H, W] (every image of a batch
-- gets the same parameters), uint8, float32 or float64; results keep its
-- dtype (uint8 results rounded or truncated as torchvision's are) unless
-- said otherwise. Positions are 1-based: crop(img, 1, 1, h, w) is the
-- top-left h x w window. Optional arguments go in a trailing table.
--
--   resize(img, size, {interpolation = "bilinear", antialias = true, max_size})
--       size: n (the smaller edge becomes n, the aspect ratio kept; max_size
--       caps the longer one), or {h, w}; "nearest", "bilinear" or "bicubic";
--       antialias (bilinear, bicubic) widens the filter when shrinking, as
--       PIL does. The same size returns img itself.
--   crop(img, top, left, height, width)      a view; past the border: zeros
--   center_crop(img, size)                   size n or {h, w}; zero padding when
--                                            larger than the image
--   resized_crop(img, top, left, height, width, size, {interpolation, antialias})
--   pad(img, padding, {fill = 0, padding_mode = "constant"})
--       padding: n, {left/right, top/bottom} or {left, top, right, bottom};
--       modes "constant", "edge", "reflect", "symmetric"
--   hflip(img)  vflip(img)
--   adjust_brightness(img, f)  adjust_contrast(img, f)  adjust_saturation(img, f)
--       f >= 0; 1 leaves the image as it is (1 or 3 channels)
--   adjust_hue(img, f)                       f in [-0.5, 0.5], a turn of the hue wheel
--   rgb_to_grayscale(img, num_output_channels = 1)   (1 or 3 copies of the gray)
--   rotate(img, angle, {interpolation = "nearest", expand = false, center, fill})
--       angle in degrees, counter-clockwise; center = {x, y} from the image's
--       top-left corner (the first pixel spans 0..1; default: the middle);
--       expand makes the output hold the whole rotated image; fill (a number,
--       or one per channel) colors what comes from outside (default zeros)
--   affine(img, angle, translate, scale, shear, {interpolation = "nearest", fill, center})
--       torchvision's: angle in degrees (clockwise, as its F.affine),
--       translate {tx, ty} in pixels, scale > 0, shear in degrees (a number or
--       {sx, sy})
--   normalize(img, mean, std)                float images: (img - mean) / std per channel
--   convert_image_dtype(img, dtype = "float32")   uint8 -> float: / 255;
--                                            float -> uint8: * 255.999, truncated
--   to_dtype(img, dtype, {scale = false})    a plain conversion, or with scale
--                                            convert_image_dtype (torchvision v2's)
--   to_tensor(img)                           T.ToTensor's: uint8 -> float32 / 255
--   get_dimensions(img) -> C, H, W
local mg = require "moongrad"
local util = require "moongrad.transforms.util"

local type, ipairs, tostring, format = type, ipairs, tostring, string.format
local floor, ceil, huge, rad = math.floor, math.ceil, math.huge, math.rad
local cos, sin, tan = math.cos, math.sin, math.tan
local check_image, round_even, raise = util.check_image, util.round_even, util.raise
local FLOAT = util.FLOAT_DTYPES

local F = {}

-- Checks ------------------------------------------------------------------------
-- Errors are raised at the user's call (util.raise), past these helpers.

local function finite(v) return type(v) == "number" and v == v and v ~= huge and v ~= -huge end

local function check_number(name, what, v)
  if not finite(v) then
    raise(format("%s: %s must be a finite number, got %s", name, what, tostring(v)))
  end
  return v
end

local function check_int(name, what, v, lo)
  if math.type(v) ~= "integer" and not (finite(v) and v == floor(v)) then
    raise(format("%s: %s must be an integer, got %s", name, what, tostring(v)))
  end
  if lo and v < lo then
    raise(format("%s: %s must be at least %d, got %s", name, what, lo, tostring(v)))
  end
  return math.tointeger(v)
end

-- A size n or {h, w} (or {n}) of positive integers: returns h, w, and
-- whether it was a single edge.
local function check_size(name, size)
  if type(size) == "table" and (#size == 1 or #size == 2) then
    local h = check_int(name, "size", size[1], 1)
    if #size == 1 then return h, h, true end
    return h, check_int(name, "size", size[2], 1), false
  end
  if type(size) == "number" then
    local n = check_int(name, "size", size, 1)
    return n, n, true
  end
  raise(format("%s: size must be a positive integer or {h, w}, got %s", name,
               type(size) == "table" and "a table of " .. #size or tostring(size)))
end
F._check_size = check_size

local function check_channels(name, C)
  if C ~= 1 and C ~= 3 then
    raise(format("%s: expected an image of 1 or 3 channels, got %d", name, C))
  end
end

local function check_fill(name, fill, C, dtype)
  if fill == nil then return nil end
  util.fill_option(name, fill)
  util.check_fill(name, fill, C, dtype)
  return fill
end

-- Sizes, crops and pads ---------------------------------------------------------------

function F.get_dimensions(img)
  local _, C, H, W = check_image("get_dimensions", img)
  return C, H, W
end

-- torchvision's _compute_resized_output_size: the smaller edge becomes n
-- (the longer one truncated), max_size capping the longer edge.
local function output_size(name, H, W, size, max_size)
  local h, w, edge = check_size(name, size)
  if not edge then
    if max_size then
      raise(name .. ": max_size works only with a size for the smaller edge (a number)")
    end
    return h, w
  end
  local short, long = W <= H and W or H, W <= H and H or W
  local new_short, new_long = h, floor(h * long / short)
  if max_size then
    if max_size <= h then
      raise(format("%s: max_size = %d must be greater than the size of the smaller edge, %d",
                   name, max_size, h))
    end
    if new_long > max_size then
      new_short, new_long = floor(max_size * new_short / new_long), max_size
    end
  end
  if W <= H then return new_long, new_short end
  return new_short, new_long
end
F._output_size = output_size

local RESIZE_MODES = {nearest = true, bilinear = true, bicubic = true}

-- The options of resize and resized_crop (and of the transforms that
-- resize): interpolation, antialias, max_size.
local function resize_options(name, opts, known)
  local get = util.options(name, opts, known or {"interpolation", "antialias", "max_size"})
  local mode = get("interpolation", "any", "bilinear")
  if not RESIZE_MODES[mode] then
    raise(format("%s: option 'interpolation' must be \"nearest\", \"bilinear\" or " ..
                 "\"bicubic\", got %s", name, tostring(mode)))
  end
  local aa = get("antialias", "any", true)
  if type(aa) ~= "boolean" then
    raise(format("%s: option 'antialias' must be a boolean, got %s", name, tostring(aa)))
  end
  return mode, aa, get("max_size", "int", nil), get
end
F._resize_options = resize_options

-- img resized to h x w (img itself when it has that size).
local function resize_to(img, H, W, h, w, mode, aa)
  if h == H and w == W then return img end
  return mg._image_resize(img, h, w, mode, aa)
end
F._resize_to = resize_to

function F.resize(img, size, opts)
  local _, _, H, W = check_image("resize", img)
  local mode, aa, max_size = resize_options("resize", opts)
  local h, w = output_size("resize", H, W, size, max_size)
  return resize_to(img, H, W, h, w, mode, aa)
end

-- The window of img at 1-based (top, left): a view when inside the image,
-- else a copy with zeros where it reaches past the border.
local function crop_(img, H, W, top, left, h, w)
  if top >= 1 and left >= 1 and top + h - 1 <= H and left + w - 1 <= W then
    return img:narrow(-2, top, h):narrow(-1, left, w)
  end
  local t0, l0 = top - 1, left - 1
  return mg._image_pad(img, -l0, -t0, l0 + w - W, t0 + h - H, "constant", 0)
end
F._crop = crop_

function F.crop(img, top, left, height, width)
  local _, _, H, W = check_image("crop", img)
  top, left = check_int("crop", "top", top, nil), check_int("crop", "left", left, nil)
  height = check_int("crop", "height", height, 1)
  width = check_int("crop", "width", width, 1)
  return crop_(img, H, W, top, left, height, width)
end

-- torchvision's center_crop: a too small image is padded with zeros first
-- (half the excess before, the rest after), then the crop is centred
-- (ties rounded to even). Returns the 1-based top and left.
local function center_offsets(H, W, ch, cw)
  local pt = ch > H and (ch - H) // 2 or 0
  local pl = cw > W and (cw - W) // 2 or 0
  local PH, PW = ch > H and ch or H, cw > W and cw or W
  return round_even((PH - ch) / 2) - pt + 1, round_even((PW - cw) / 2) - pl + 1
end
F._center_offsets = center_offsets

function F.center_crop(img, size)
  local _, _, H, W = check_image("center_crop", img)
  local ch, cw = check_size("center_crop", size)
  local top, left = center_offsets(H, W, ch, cw)
  return crop_(img, H, W, top, left, ch, cw)
end

function F.resized_crop(img, top, left, height, width, size, opts)
  local name = "resized_crop"
  local _, _, H, W = check_image(name, img)
  top, left = check_int(name, "top", top, nil), check_int(name, "left", left, nil)
  height, width = check_int(name, "height", height, 1), check_int(name, "width", width, 1)
  local mode, aa, max_size = resize_options(name, opts)
  local h, w = output_size(name, height, width, size, max_size)
  return resize_to(crop_(img, H, W, top, left, height, width), height, width, h, w, mode, aa)
end

local PAD_MODES = {constant = true, edge = true, reflect = true, symmetric = true}

-- padding n, {lr, tb} or {l, t, r, b} as left, top, right, bottom.
local function pad_sides(name, padding)
  local p = type(padding) == "number" and {padding} or padding
  if type(p) ~= "table" or (#p ~= 1 and #p ~= 2 and #p ~= 4) then
    raise(format("%s: padding must be a number or a list of 1, 2 or 4 numbers, got %s", name,
                 type(p) == "table" and "a list of " .. #p or tostring(padding)))
  end
  for i = 1, #p do check_int(name, "padding", p[i], nil) end
  if #p == 1 then return p[1], p[1], p[1], p[1] end
  if #p == 2 then return p[1], p[2], p[1], p[2] end
  return p[1], p[2], p[3], p[4]
end
F._pad_sides = pad_sides

local function pad_mode(name, mode)
  if not PAD_MODES[mode] then
    raise(format("%s: option 'padding_mode' must be \"constant\", \"edge\", \"reflect\" or " ..
                 "\"symmetric\", got %s", name, tostring(mode)))
  end
  return mode
end
F._pad_mode = pad_mode

function F.pad(img, padding, opts)
  local name = "pad"
  check_image(name, img)
  local l, t, r, b = pad_sides(name, padding)
  local get = util.options(name, opts, {"fill", "padding_mode"})
  local fill = get("fill", "number", 0)
  local mode = pad_mode(name, get("padding_mode", "any", "constant"))
  return mg._image_pad(img, l, t, r, b, mode, fill)
end

-- Flips ---------------------------------------------------------------------------------

local function flip_(img, N, vertical)
  local xb, single = util.as_batch(img, N)
  return util.unbatch(mg._flip(xb, mg.ones(N or 1), vertical), single)
end
F._flip = flip_

function F.hflip(img)
  local N = check_image("hflip", img)
  return flip_(img, N, false)
end

function F.vflip(img)
  local N = check_image("vflip", img)
  return flip_(img, N, true)
end

-- Color ----------------------------------------------------------------------------------

local function adjust(kind)
  local name = "adjust_" .. kind
  return function(img, factor)
    local _, C = check_image(name, img)
    check_channels(name, C)
    if kind == "hue" then
      if type(factor) ~= "number" or not (factor >= -0.5 and factor <= 0.5) then
        raise(format("%s: hue_factor (%s) is not in [-0.5, 0.5]", name, tostring(factor)))
      end
    elseif not finite(factor) or factor < 0 then
      raise(format("%s: %s_factor (%s) is not a non-negative number", name, kind,
                   tostring(factor)))
    end
    return mg._image_color(img, {kind, factor})
  end
end

F.adjust_brightness = adjust("brightness")
F.adjust_contrast = adjust("contrast")
F.adjust_saturation = adjust("saturation")
F.adjust_hue = adjust("hue")

function F.rgb_to_grayscale(img, num_output_channels)
  local name = "rgb_to_grayscale"
  local _, C = check_image(name, img)
  check_channels(name, C)
  local n = num_output_channels or 1
  if n ~= 1 and n ~= 3 then
    raise(format("%s: num_output_channels must be 1 or 3, got %s", name, tostring(n)))
  end
  return mg._image_grayscale(img, n)
end

-- Rotations and affine maps ---------------------------------------------------------------

-- torchvision's _get_inverse_affine_matrix: the map from output to input
-- pixels (about center, in pixels from the image's middle) of a rotation
-- by angle degrees, scale, shear {sx, sy} degrees and translation.
local function inverse_affine_matrix(center, angle, translate, scale, shear)
  local rot, sx, sy = rad(angle), rad(shear[1]), rad(shear[2])
  local cx, cy, tx, ty = center[1], center[2], translate[1], translate[2]
  local a = cos(rot - sy) / cos(sy)
  local b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot)
  local c = sin(rot - sy) / cos(sy)
  local d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot)
  local m = {d / scale, -b / scale, 0, -c / scale, a / scale, 0}
  m[3] = m[3] + m[1] * (-cx - tx) + m[2] * (-cy - ty)
  m[6] = m[6] + m[4] * (-cx - tx) + m[5] * (-cy - ty)
  m[3], m[6] = m[3] + cx, m[6] + cy
  return m
end

-- x rounded to float32, as torchvision computes the expanded size.
local function f32(x) return (string.unpack("f", string.pack("f", x))) end

-- torchvision's _compute_affine_output_size: the bounding box of the
-- image's corners under matrix, in float32, trimmed to 1e-4 so that a
-- rounding error never adds a row: returns h, w.
local function expanded_size(m, H, W)
  local t = {}
  for k = 1, 6 do t[k] = f32(m[k]) end
  local lo, hi = {huge, huge}, {-huge, -huge}
  for _, p in ipairs{{-0.5 * W, -0.5 * H}, {-0.5 * W, 0.5 * H}, {0.5 * W, 0.5 * H},
                     {0.5 * W, -0.5 * H}} do
    for k = 1, 2 do
      local v = f32(f32(f32(p[1] * t[3 * k - 2]) + f32(p[2] * t[3 * k - 1])) + t[3 * k])
      if v < lo[k] then lo[k] = v end
      if v > hi[k] then hi[k] = v end
    end
  end
  local tol, half = f32(1e-4), {W * 0.5, H * 0.5}
  local function trunc(v) return v >= 0 and floor(v) or ceil(v) end
  local size = {}
  for k = 1, 2 do
    local cmax = ceil(f32(trunc(f32(f32(hi[k] + half[k]) / tol)) * tol))
    local cmin = floor(f32(trunc(f32(f32(lo[k] + half[k]) / tol)) * tol))
    size[k] = math.tointeger(cmax - cmin)
  end
  return size[2], size[1]
end

local WARP_MODES = {nearest = true, bilinear = true}
F._WARP_MODES = WARP_MODES

-- center {x, y} from the top-left corner, as an offset from the middle.
local function center_offset(name, center, H, W)
  if center == nil then return {0, 0} end
  if type(center) ~= "table" or #center ~= 2 or not finite(center[1]) or not finite(center[2]) then
    raise(format("%s: option 'center' must be {x, y}, got %s", name, tostring(center)))
  end
  return {center[1] - W * 0.5, center[2] - H * 0.5}
end
F._center_offset = center_offset

-- torchvision's rotate: the matrix of a turn by angle degrees
-- (counter-clockwise) about center (an offset from the middle), and the
-- output's size.
local function rotation(angle, center, expand, H, W)
  -- torchvision's rotate turns the other way than its affine: -angle
  local m = inverse_affine_matrix(center, -angle, {0, 0}, 1, {0, 0})
  if expand then return m, expanded_size(m, H, W) end
  return m, H, W
end
F._rotation = rotation

function F.rotate(img, angle, opts)
  local name = "rotate"
  local _, C, H, W = check_image(name, img)
  check_number(name, "angle", angle)
  local get = util.options(name, opts, {"interpolation", "expand", "center", "fill"})
  local mode = util.interpolation_option(name, get("interpolation", "any", "nearest"), WARP_MODES)
  local fill = check_fill(name, get("fill", "any", nil), C, img:dtype())
  local center = center_offset(name, get("center", "any", nil), H, W)
  local m, h, w = rotation(angle, center, get("expand", "any", false), H, W)
  return mg._image_warp(img, m, h, w, mode, fill)
end

function F.affine(img, angle, translate, scale, shear, opts)
  local name = "affine"
  local _, C, H, W = check_image(name, img)
  check_number(name, "angle", angle)
  if type(translate) ~= "table" or #translate ~= 2 then
    raise(format("%s: translate must be {tx, ty}, got %s", name, tostring(translate)))
  end
  check_number(name, "translate[1]", translate[1])
  check_number(name, "translate[2]", translate[2])
  if not finite(scale) or scale <= 0 then
    raise(format("%s: scale must be a positive number, got %s", name, tostring(scale)))
  end
  if type(shear) == "number" then shear = {shear, 0}
  elseif type(shear) == "table" and #shear == 1 then shear = {shear[1], shear[1]} end
  if type(shear) ~= "table" or #shear ~= 2 or not finite(shear[1]) or not finite(shear[2]) then
    raise(format("%s: shear must be a number or {sx, sy}, got %s", name, tostring(shear)))
  end
  local get = util.options(name, opts, {"interpolation", "fill", "center"})
  local mode = util.interpolation_option(name, get("interpolation", "any", "nearest"), WARP_MODES)
  local fill = check_fill(name, get("fill", "any", nil), C, img:dtype())
  local center = center_offset(name, get("center", "any", nil), H, W)
  local m = inverse_affine_matrix(center, angle, translate, scale, shear)
  return mg._image_warp(img, m, H, W, mode, fill)
end

-- dtypes and normalization ---------------------------------------------------------------

local DTYPES = {uint8 = true, float32 = true, float64 = true}

local function check_dtype(name, dtype)
  if not DTYPES[dtype] then
    raise(format("%s: dtype must be \"uint8\", \"float32\" or \"float64\", got %s", name,
                 tostring(dtype)))
  end
  return dtype
end
F._check_dtype = check_dtype

function F.convert_image_dtype(img, dtype)
  check_image("convert_image_dtype", img)
  dtype = check_dtype("convert_image_dtype", dtype or "float32")
  if img:dtype() == dtype then return img end
  return mg._image_convert(img, dtype)
end

function F.to_dtype(img, dtype, opts)
  check_image("to_dtype", img)
  dtype = check_dtype("to_dtype", dtype)
  local get = util.options("to_dtype", opts, {"scale"})
  if img:dtype() == dtype then return img end
  if get("scale", "any", false) then return mg._image_convert(img, dtype) end
  return img:to(dtype)
end

function F.to_tensor(img)
  check_image("to_tensor", img)
  if img:dtype() ~= "uint8" then return img end
  return mg._image_convert(img, "float32")
end

function F.normalize(img, mean, std)
  local name = "normalize"
  local N, C = check_image(name, img, FLOAT)
  if type(mean) == "number" then mean = {mean} end
  if type(std) == "number" then std = {std} end
  if type(mean) ~= "table" or type(std) ~= "table" or #mean ~= #std or #mean == 0 then
    raise(format("%s: mean and std must be lists of the same length, got %s and %s", name,
                 tostring(mean), tostring(std)))
  end
  if #mean ~= 1 and #mean ~= C then
    raise(format("%s: %d mean/std values for %s of %d channels", name, #mean,
                 N and "a batch" or "an image", C))
  end
  for i = 1, #mean do
    check_number(name, format("mean[%d]", i), mean[i])
    check_number(name, format("std[%d]", i), std[i])
    if std[i] == 0 then raise(format("%s: std[%d] is zero", name, i)) end
  end
  return mg._image_normalize(img, mean, std)
end

return F
