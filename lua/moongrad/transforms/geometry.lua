-- moongrad.transforms.geometry: RandomAffine and RandomErasing, added to
-- the moongrad.transforms table (see there for the API). Per-sample
-- parameters are computed with tensor ops over the batch, never a Lua loop
-- over samples or pixels; a single image [C, H, W] is a batch of one.
local mg = require "moongrad"
local util = require "moongrad.transforms.util"

local type, ipairs, tostring, format = type, ipairs, tostring, string.format
local pi, log = math.pi, math.log
local transform, check_image, uniform = util.transform, util.check_image, util.uniform

-- [N] tensors as the columns of a float64 [N, k] tensor
local function columns(N, cols)
  local m = mg.zeros(N, #cols, "float64")
  for k, c in ipairs(cols) do
    if type(c) == "number" then
      m:narrow(2, k, 1):fill_(c)
    else
      m:narrow(2, k, 1):copy_(c:reshape(N, 1))
    end
  end
  return m
end

return function(T)
  -- RandomAffine ---------------------------------------------------------------
  -- Per sample: angle a ~ U(degrees), scale s ~ U(scale), translation
  -- t = round(U(-fx W, fx W)), round(U(-fy H, fy H)). The forward map about
  -- the centre (x right, y down) is out = s R(a) in + t with
  -- R(a) = [[cos a, sin a], [-sin a, cos a]] (counter-clockwise on screen);
  -- the sampler wants its inverse, in = R(-a) (out - t) / s. The warp is
  -- torchvision's (mg._image_warp): bilinear or nearest, and a fill color
  -- blended in where the map reads outside the image.
  function T.RandomAffine(opts)
    local name = "RandomAffine"
    local get = util.options(name, opts, {"degrees", "translate", "scale", "fill",
                                          "interpolation"})
    local degrees = get("degrees", "any", 0)
    if type(degrees) == "number" then
      if degrees < 0 then error("RandomAffine: option 'degrees' must be non-negative", 2) end
      degrees = {-degrees, degrees}
    else
      degrees = get("degrees", "range")
    end
    local translate = get("translate", "pair", nil)
    if translate and (translate[1] < 0 or translate[1] > 1 or translate[2] < 0 or translate[2] > 1) then
      error("RandomAffine: option 'translate' must be fractions in [0, 1]", 2)
    end
    local scale = get("scale", "range", nil)
    if scale and scale[1] <= 0 then
      error("RandomAffine: option 'scale' must be positive", 2)
    end
    local fill = util.fill_option(name, get("fill", "any", 0))
    local interpolation = util.interpolation_option(name, get("interpolation", "any", "bilinear"),
                                                    {nearest = true, bilinear = true})
    local options = {degrees = degrees, translate = translate, scale = scale, fill = fill,
                     interpolation = interpolation}
    return transform(name, options, function(_, x, y)
      local N, C, H, W = check_image(name, x)
      util.check_fill(name, fill, C, x:dtype())
      N = N or 1
      local a = uniform(N, degrees[1] * pi / 180, degrees[2] * pi / 180)
      local c, s = a:cos(), a:sin()
      local inv = scale and 1 / uniform(N, scale[1], scale[2]) or nil
      if inv then c, s = c * inv, s * inv end
      local cols
      if translate then
        local mx, my = translate[1] * W, translate[2] * H
        local tx, ty = uniform(N, -mx, mx):round(), uniform(N, -my, my):round()
        -- -(R(-a) t) / s
        cols = {c, -s, -(c * tx - s * ty), s, c, -(s * tx + c * ty)}
      else
        cols = {c, -s, 0, s, c, 0}
      end
      return mg._image_warp(x, columns(N, cols):view(N, 2, 3), H, W, interpolation, fill), y
    end)
  end

  -- RandomErasing ----------------------------------------------------------------
  -- As torchvision's: with probability p, a rectangle of area ~ U(scale) of
  -- the image and aspect ratio log-uniform in ratio, at a uniform position;
  -- up to 10 tries for one that fits (else nothing is erased). The tries are
  -- drawn for every sample at once and the first that fits is kept.
  local TRIES = 10

  function T.RandomErasing(opts)
    local name = "RandomErasing"
    local get = util.options(name, opts, {"p", "scale", "ratio", "value"})
    local p = get("p", "prob", 0.5)
    local scale = get("scale", "range", {0.02, 0.33})
    local ratio = get("ratio", "range", {0.3, 3.3})
    if scale[1] < 0 or scale[2] > 1 then
      error("RandomErasing: option 'scale' must lie in [0, 1]", 2)
    end
    if ratio[1] <= 0 then error("RandomErasing: option 'ratio' must be positive", 2) end
    local value = get("value", "any", 0)
    if type(value) ~= "number" and value ~= "random" then
      error(format("RandomErasing: option 'value' must be a number or \"random\", got %s",
                   tostring(value)), 2)
    end
    local options = {p = p, scale = scale, ratio = ratio, value = value}
    return transform(name, options, function(_, x, y)
      local N, _, H, W = check_image(name, x, util.FLOAT_DTYPES)
      local single
      x, single = util.as_batch(x, N)
      N = N or 1
      local area = H * W
      local target = uniform(N * TRIES, scale[1] * area, scale[2] * area):view(N, TRIES)
      local aspect = uniform(N * TRIES, log(ratio[1]), log(ratio[2])):exp():view(N, TRIES)
      local h = (target * aspect):sqrt():round()
      local w = (target / aspect):sqrt():round()
      local fits = h:lt(H) * w:lt(W)
      local first = fits:argmax(2):view(N, 1)            -- first try that fits
      local keep = fits:max(2) * mg.rand(N, "float64"):lt(p) -- [N] 1 or 0
      local bh = h:gather(2, first):view(N) * keep
      local bw = w:gather(2, first):view(N) * keep
      local top = (mg.rand(N, "float64") * (H - bh + 1)):floor() + 1
      local left = (mg.rand(N, "float64") * (W - bw + 1)):floor() + 1
      local boxes = columns(N, {top, left, bh, bw})
      if value == "random" then
        return util.unbatch(mg._paste(x, mg.randn_like(x), nil, boxes), single), y
      end
      return util.unbatch(mg._erase(x, boxes, value), single), y
    end)
  end
end
