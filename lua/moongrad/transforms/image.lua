-- moongrad.transforms.image: the image transforms of torchvision 0.14,
-- added to the moongrad.transforms table (see there for the common rules).
--
--   Resize(size, {interpolation = "bilinear", antialias = true, max_size})
--       size n: the smaller edge becomes n (aspect ratio kept); {h, w}: exactly
--   CenterCrop(size)                     n or {h, w}; zero padding if larger
--   RandomResizedCrop(size, {scale = {0.08, 1}, ratio = {3/4, 4/3},
--                            interpolation = "bilinear", antialias = true})
--       a random window of a random area (scale, of the image's) and aspect
--       ratio (log-uniform in ratio), resized to size; after 10 tries that do
--       not fit, the central crop of the largest window with a ratio in range
--   ColorJitter{brightness = 0, contrast = 0, saturation = 0, hue = 0}
--       each a number v (a factor drawn from [max(0, 1 - v), 1 + v]; hue: from
--       [-v, v], v <= 0.5) or {lo, hi}; the four adjustments in a random order
--   Grayscale{num_output_channels = 1}   RandomGrayscale{p = 0.1}
--   RandomRotation(degrees, {interpolation = "nearest", expand = false, center, fill = 0})
--       degrees d (an angle from [-d, d]) or {lo, hi}, counter-clockwise
--   Pad(padding, {fill = 0, padding_mode = "constant"})
--   ToTensor()                           uint8 [C, H, W] -> float32 in [0, 1]
--                                        (float images pass as they are)
--   ConvertImageDtype(dtype)             "float32", "float64" or "uint8", scaled
--
-- A transform taking a size or degrees takes them first, or as a field of
-- one options table: Resize(224, {antialias = false}) or
-- Resize{size = 224, antialias = false}. Each is called on an image or a
-- batch; the random ones draw per image (a batch's images may come out in
-- one size only). They return x itself when they change nothing, as
-- torchvision does. t:get_params(...) returns a random transform's draws
-- (from the state's RNG, as a call would draw them):
--   RandomResizedCrop: rrc:get_params(img) -> top, left, height, width (1-based)
--   ColorJitter: cj:get_params() -> order (a permutation of 1..4: brightness,
--       contrast, saturation, hue), and the four factors (nil when disabled)
--   RandomRotation: rot:get_params() -> angle
local mg = require "moongrad"
local util = require "moongrad.transforms.util"

local type, ipairs, pairs, tostring, select = type, ipairs, pairs, tostring, select
local format = string.format
local floor, sqrt, log, exp, huge = math.floor, math.sqrt, math.log, math.exp, math.huge
local transform, check_image, raise = util.transform, util.check_image, util.raise
local each_image, round_even = util.each_image, util.round_even

-- The color transforms take 1 or 3 channels.
local function check_rgb(name, C)
  if C ~= 1 and C ~= 3 then
    raise(format("%s: expected an image of 1 or 3 channels, got %d", name, C))
  end
end

-- The first argument and the options of a transform called as T.X(a, opts),
-- T.X{key = a, ...} or T.X{a, ...} (a one value, or the list part).
local function lead_and_options(name, key, a, opts)
  if type(a) ~= "table" then return a, opts end
  local named = false
  for k in pairs(a) do if type(k) ~= "number" then named = true end end
  if not named then return a, opts end
  if opts ~= nil then
    raise(format("%s: give the options in one table, not two", name))
  end
  local rest, lead = {}, a[key]
  for k, v in pairs(a) do if type(k) ~= "number" and k ~= key then rest[k] = v end end
  if lead == nil and #a > 0 then lead = #a == 1 and a[1] or {table.unpack(a)} end
  return lead, rest
end

return function(T)
  local F = T.functional

  -- Conversions ------------------------------------------------------------------

  function T.ToTensor(opts)
    util.options("ToTensor", opts, {})
    return transform("ToTensor", {}, function(_, x, y)
      check_image("ToTensor", x)
      if x:dtype() ~= "uint8" then return x, y end
      return mg._image_convert(x, "float32"), y
    end)
  end

  function T.ConvertImageDtype(dtype)
    local name = "ConvertImageDtype"
    if type(dtype) == "table" then dtype = dtype.dtype or dtype[1] end
    F._check_dtype(name, dtype)
    return transform(name, {dtype = dtype}, function(_, x, y)
      check_image(name, x)
      if x:dtype() == dtype then return x, y end
      return mg._image_convert(x, dtype), y
    end)
  end

  -- Sizes --------------------------------------------------------------------------

  function T.Resize(size, opts)
    local name = "Resize"
    size, opts = lead_and_options(name, "size", size, opts)
    if size == nil then raise("Resize: a size is required") end
    F._check_size(name, size)
    local mode, aa, max_size = F._resize_options(name, opts)
    local options = {size = size, interpolation = mode, antialias = aa, max_size = max_size}
    return transform(name, options, function(_, x, y)
      local _, _, H, W = check_image(name, x)
      local h, w = F._output_size(name, H, W, size, max_size)
      return F._resize_to(x, H, W, h, w, mode, aa), y
    end)
  end

  function T.CenterCrop(size)
    local name = "CenterCrop"
    size = lead_and_options(name, "size", size, nil)
    local ch, cw = F._check_size(name, size)
    return transform(name, {size = size}, function(_, x, y)
      local _, _, H, W = check_image(name, x)
      local top, left = F._center_offsets(H, W, ch, cw)
      return F._crop(x, H, W, top, left, ch, cw), y
    end)
  end

  function T.Pad(padding, opts)
    local name = "Pad"
    padding, opts = lead_and_options(name, "padding", padding, opts)
    local l, t, r, b = F._pad_sides(name, padding)
    local get = util.options(name, opts, {"fill", "padding_mode"})
    local fill = get("fill", "number", 0)
    local mode = F._pad_mode(name, get("padding_mode", "any", "constant"))
    return transform(name, {padding = padding, fill = fill, padding_mode = mode}, function(_, x, y)
      check_image(name, x)
      return mg._image_pad(x, l, t, r, b, mode, fill), y
    end)
  end

  -- RandomResizedCrop ---------------------------------------------------------------
  -- torchvision's get_params: up to 10 tries of an area uniform in scale
  -- (times the image's) and an aspect ratio log-uniform in ratio, rounded
  -- to whole pixels (ties to even), the first that fits placed uniformly;
  -- else the central crop of the image clipped to the ratio range. All
  -- 22 numbers are drawn at once (20 for the tries, 2 for the place).

  local TRIES = 10

  local function resized_crop_params(H, W, scale, ratio)
    local area = H * W
    local lr1, lr2 = log(ratio[1]), log(ratio[2])
    local u = mg.rand(2 * TRIES + 2, "float64"):totable()
    for k = 0, TRIES - 1 do
      local target = area * (scale[1] + u[2 * k + 1] * (scale[2] - scale[1]))
      local aspect = exp(lr1 + u[2 * k + 2] * (lr2 - lr1))
      local w = round_even(sqrt(target * aspect))
      local h = round_even(sqrt(target / aspect))
      if w > 0 and w <= W and h > 0 and h <= H then
        local top = floor(u[2 * TRIES + 1] * (H - h + 1))
        local left = floor(u[2 * TRIES + 2] * (W - w + 1))
        return top + 1, left + 1, h, w
      end
    end
    local in_ratio, w, h = W / H, W, H
    if in_ratio < ratio[1] then
      h = round_even(w / ratio[1])
    elseif in_ratio > ratio[2] then
      w = round_even(h * ratio[2])
    end
    return (H - h) // 2 + 1, (W - w) // 2 + 1, h, w
  end

  -- A range option {lo, hi} of positive numbers.
  local function positive_range(name, key, get, default)
    local v = get(key, "range", default)
    if not (v[1] > 0) or v[2] == huge then
      raise(format("%s: option '%s' must be {lo, hi} with 0 < lo <= hi < inf, got {%s, %s}",
                   name, key, tostring(v[1]), tostring(v[2])))
    end
    return v
  end

  function T.RandomResizedCrop(size, opts)
    local name = "RandomResizedCrop"
    size, opts = lead_and_options(name, "size", size, opts)
    if size == nil then raise("RandomResizedCrop: a size is required") end
    local sh, sw = F._check_size(name, size)
    local mode, aa, _, get = F._resize_options(name, opts, {"scale", "ratio", "interpolation",
                                                            "antialias"})
    local scale = positive_range(name, "scale", get, {0.08, 1})
    local ratio = positive_range(name, "ratio", get, {3 / 4, 4 / 3})
    local options = {size = size, scale = scale, ratio = ratio, interpolation = mode,
                     antialias = aa}
    local t = transform(name, options, function(self, x, y)
      return each_image(name, x, function(img)
        local _, _, H, W = check_image(name, img)
        local top, left, h, w = self:get_params(img)
        return F._resize_to(F._crop(img, H, W, top, left, h, w), h, w, sh, sw, mode, aa)
      end), y
    end)
    function t.get_params(_, img)
      local _, _, H, W = check_image(name, img)
      return resized_crop_params(H, W, scale, ratio)
    end
    return t
  end

  -- ColorJitter ------------------------------------------------------------------------
  -- torchvision's: the order is a random permutation of the four
  -- adjustments (mg.randperm(4)), then one factor is drawn for each enabled
  -- one (brightness, contrast, saturation, hue, in that order); all of an
  -- image's adjustments run in one pass of mg._image_color.

  local JITTER = {"brightness", "contrast", "saturation", "hue"}

  -- torchvision's _check_input: a number v >= 0 gives [center - v, center
  -- + v] (the low end clipped at 0 but for hue), a pair must lie in bound;
  -- nil when the range is the identity.
  local function jitter_range(name, key, v)
    local hue = key == "hue"
    local center, lo_bound, hi_bound = hue and 0 or 1, hue and -0.5 or 0, hue and 0.5 or huge
    local r
    if type(v) == "number" then
      if not (v >= 0) then
        raise(format("%s: %s = %s must be non-negative", name, key, tostring(v)))
      end
      r = {center - v, center + v}
      if not hue and r[1] < 0 then r[1] = 0 end
      if hue and v > 0.5 then
        raise(format("%s: hue = %s must be at most 0.5", name, tostring(v)))
      end
    elseif type(v) == "table" and #v == 2 and type(v[1]) == "number" and type(v[2]) == "number" then
      if not (lo_bound <= v[1] and v[1] <= v[2] and v[2] <= hi_bound) then
        raise(format("%s: %s = {%s, %s} must lie within [%s, %s], low first", name, key,
                     tostring(v[1]), tostring(v[2]), tostring(lo_bound),
                     hi_bound == huge and "inf" or tostring(hi_bound)))
      end
      r = {v[1], v[2]}
    else
      raise(format("%s: %s must be a number or a pair {lo, hi}, got %s", name, key, tostring(v)))
    end
    if r[1] == center and r[2] == center then return nil end
    return r
  end

  function T.ColorJitter(opts, ...)
    local name = "ColorJitter"
    if type(opts) == "number" or select("#", ...) > 0 then
      opts = {brightness = opts, contrast = (...), saturation = select(2, ...),
              hue = select(3, ...)}
    end
    local get = util.options(name, opts, JITTER)
    local ranges, options = {}, {}
    for k, key in ipairs(JITTER) do
      ranges[k] = jitter_range(name, key, get(key, "any", 0))
      options[key] = ranges[k] or false
    end
    local t = transform(name, options, function(self, x, y)
      check_image(name, x)
      return each_image(name, x, function(img)
        local _, C = check_image(name, img)
        check_rgb(name, C)
        local order, b, c, s, h = self:get_params()
        local factors, steps = {b, c, s, h}, {}
        for _, k in ipairs(order) do
          if factors[k] then
            steps[#steps + 1] = JITTER[k]
            steps[#steps + 1] = factors[k]
          end
        end
        if #steps == 0 then return img end
        return mg._image_color(img, steps)
      end), y
    end)
    function t.get_params()
      local order = mg.randperm(4):totable()
      local n = 0
      for k = 1, 4 do if ranges[k] then n = n + 1 end end
      local u, f, i = n > 0 and mg.rand(n, "float64"):totable() or {}, {}, 0
      for k = 1, 4 do
        local r = ranges[k]
        if r then
          i = i + 1
          f[k] = r[1] + u[i] * (r[2] - r[1])
        end
      end
      return order, f[1], f[2], f[3], f[4]
    end
    return t
  end

  -- Grayscale ---------------------------------------------------------------------------

  function T.Grayscale(opts)
    local name = "Grayscale"
    if type(opts) == "number" then opts = {num_output_channels = opts} end
    local get = util.options(name, opts, {"num_output_channels"})
    local n = get("num_output_channels", "int", 1)
    if n ~= 1 and n ~= 3 then
      raise(format("%s: option 'num_output_channels' must be 1 or 3, got %s", name, tostring(n)))
    end
    return transform(name, {num_output_channels = n}, function(_, x, y)
      local _, C = check_image(name, x)
      check_rgb(name, C)
      return mg._image_grayscale(x, n), y
    end)
  end

  -- With probability p, the image in gray with as many channels as it had.
  function T.RandomGrayscale(opts)
    local name = "RandomGrayscale"
    local get = util.options(name, opts, {"p"})
    local p = get("p", "prob", 0.1)
    return transform(name, {p = p}, function(_, x, y)
      check_image(name, x)
      return each_image(name, x, function(img)
        local _, C = check_image(name, img)
        check_rgb(name, C)
        if mg.rand(1, "float64"):item() >= p then return img end
        return mg._image_grayscale(img, C)
      end), y
    end)
  end

  -- RandomRotation ------------------------------------------------------------------------

  function T.RandomRotation(degrees, opts)
    local name = "RandomRotation"
    degrees, opts = lead_and_options(name, "degrees", degrees, opts)
    if type(degrees) == "table" and #degrees == 1 then degrees = degrees[1] end
    local range
    if type(degrees) == "number" then
      if not (degrees >= 0) or degrees == huge then
        raise(format("%s: degrees = %s must be a non-negative number", name, tostring(degrees)))
      end
      range = {-degrees, degrees}
    elseif type(degrees) == "table" and #degrees == 2 and type(degrees[1]) == "number"
        and type(degrees[2]) == "number" and degrees[1] <= degrees[2]
        and degrees[1] > -huge and degrees[2] < huge then
      range = {degrees[1], degrees[2]}
    else
      raise(format("%s: degrees must be a number or {lo, hi} with lo <= hi, got %s", name,
                   tostring(degrees)))
    end
    local get = util.options(name, opts, {"interpolation", "expand", "center", "fill"})
    local mode = util.interpolation_option(name, get("interpolation", "any", "nearest"),
                                           F._WARP_MODES)
    local expand = get("expand", "any", false) and true or false
    local center = get("center", "any", nil)
    local fill = util.fill_option(name, get("fill", "any", 0))
    local options = {degrees = range, interpolation = mode, expand = expand, center = center,
                     fill = fill}
    local t = transform(name, options, function(self, x, y)
      return each_image(name, x, function(img)
        local _, C, H, W = check_image(name, img)
        util.check_fill(name, fill, C, img:dtype())
        local c = F._center_offset(name, center, H, W)
        local m, h, w = F._rotation(self:get_params(), c, expand, H, W)
        return mg._image_warp(img, m, h, w, mode, fill)
      end), y
    end)
    function t.get_params()
      return range[1] + mg.rand(1, "float64"):item() * (range[2] - range[1])
    end
    return t
  end
end
