-- Image transforms (issue 19): the functional forms against torchvision
-- 0.14 (spec/fixtures/gen_image_transforms.py: fixed parameters on crops
-- of skimage's astronaut and coffee photographs, a palette of pure and
-- mixed colors, uint8 and float32), then the random transforms' parameter
-- logic with the state's RNG, the single-image and batch forms, uint8
-- through the older batch transforms, and bad input.
--
-- Tolerances: uint8 results within 1 of torchvision's, on at most 1% of
-- the pixels (a value near .5 rounds either way with the float order of
-- the machine: PyTorch's kernels sum with fused multiply-adds where the
-- CPU has them, and so does moongrad; measured on this machine, built
-- with -march=native: every uint8 case agrees to the last bit, resize,
-- warps and color alike); float32 results within 1e-5 (measured worst:
-- 8e-7, bicubic resizing, whose weights PyTorch rounds in another order).
local mg = require "moongrad"
local T = require "moongrad.transforms"
local approx = require "support.approx"

local F = T.F
local close = approx.assert_close

local ref = dofile("spec/fixtures/image_transforms_ref.lua")

local inputs = {}
for name, v in pairs(ref.inputs) do inputs[name] = mg.tensor(v.data, v.dtype) end

local error_of = require("support.check").err_of

-- ColorJitter's adjustments by their 1-based ids.
local JITTER = {"brightness", "contrast", "saturation", "hue"}

-- Each fixture case as a moongrad call (torchvision's 0-based positions
-- made 1-based).
local run = {
  resize = function(x, a)
    return F.resize(x, a.size, {interpolation = a.interpolation, antialias = a.antialias,
                                max_size = a.max_size})
  end,
  crop = function(x, a) return F.crop(x, a.top + 1, a.left + 1, a.height, a.width) end,
  center_crop = function(x, a) return F.center_crop(x, a.size) end,
  resized_crop = function(x, a)
    return F.resized_crop(x, a.top + 1, a.left + 1, a.height, a.width, a.size,
                          {interpolation = a.interpolation, antialias = a.antialias})
  end,
  pad = function(x, a) return F.pad(x, a.padding, {fill = a.fill, padding_mode = a.padding_mode}) end,
  hflip = function(x) return F.hflip(x) end,
  vflip = function(x) return F.vflip(x) end,
  adjust_brightness = function(x, a) return F.adjust_brightness(x, a.factor) end,
  adjust_contrast = function(x, a) return F.adjust_contrast(x, a.factor) end,
  adjust_saturation = function(x, a) return F.adjust_saturation(x, a.factor) end,
  adjust_hue = function(x, a) return F.adjust_hue(x, a.factor) end,
  rgb_to_grayscale = function(x, a) return F.rgb_to_grayscale(x, a.num_output_channels) end,
  color_jitter = function(x, a)
    for _, k in ipairs(a.order) do x = F["adjust_" .. JITTER[k]](x, a[JITTER[k]]) end
    return x
  end,
  rotate = function(x, a)
    return F.rotate(x, a.angle, {interpolation = a.interpolation, expand = a.expand,
                                 center = a.center, fill = a.fill})
  end,
  affine = function(x, a)
    return F.affine(x, a.angle, a.translate, a.scale, a.shear,
                    {interpolation = a.interpolation, fill = a.fill, center = a.center})
  end,
  convert_image_dtype = function(x, a) return F.convert_image_dtype(x, a.dtype) end,
  normalize = function(x, a) return F.normalize(x, a.mean, a.std) end,
}

local function check(case, out)
  assert.equal(case.dtype, out:dtype())
  if case.dtype == "uint8" then
    assert.same(approx.shape_of(case.out), out:shape())
    local got, want, off = approx.flat(out), approx.flat(case.out), 0
    for k = 1, #want do
      local d = math.abs(got[k] - want[k])
      assert(d <= 1, ("element %d: got %d, expected %d"):format(k, got[k], want[k]))
      off = off + d
    end
    assert(off <= #want / 100, ("%d of %d pixels are off by one"):format(off, #want))
  else
    close(out, case.out, 1e-5)
  end
end

describe("image transforms against torchvision 0.14", function()
  for i, case in ipairs(ref.cases) do
    it(("%s of %s: %s (case %d)"):format(case.fn, case.input, case.note, i), function()
      local x = inputs[case.input]
      local before = x:totable()
      local out = run[case.fn](x, case.args)
      if case.fn == "rgb_to_grayscale" and case.args.num_output_channels == 3
          and x:shape()[1] == 1 then
        -- torchvision 0.14 returns one channel here (its expand to the
        -- input's shape); moongrad gives the three asked for, as
        -- torchvision's later versions do
        assert.same({3, 9, 11}, out:shape())
        for c = 1, 3 do check(case, out:narrow(1, c, 1)) end
      else
        check(case, out)
      end
      assert.same(before, x:totable(), "the input is left alone")
    end)
  end

  it("runs ColorJitter's adjustments as one fused pass with the same results", function()
    for _, case in ipairs(ref.cases) do
      if case.fn == "color_jitter" then
        local steps = {}
        for _, k in ipairs(case.args.order) do
          steps[#steps + 1] = JITTER[k]
          steps[#steps + 1] = case.args[JITTER[k]]
        end
        check(case, mg._image_color(inputs[case.input], steps))
      end
    end
  end)

  it("fuses ToTensor and Normalize on uint8 images with the same numbers", function()
    local x = inputs.astro
    local mean, std = {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}
    local two = T.Normalize{mean = mean, std = std}(T.ToTensor()(x))
    local one = T.Compose{T.ToTensor(), T.Normalize{mean = mean, std = std}}(x)
    assert.equal("float32", one:dtype())
    assert.same(two:totable(), one:totable())
  end)
end)

-- The draws of n uniforms in [0, 1) the transforms see after
-- mg.manual_seed(seed) (the same generator, consumed the same way).
local function uniforms(seed, n)
  mg.manual_seed(seed)
  return mg.rand(n, "float64"):totable()
end

-- Python's round(): ties to even.
local function round_even(x)
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then return f + 1 end
  return f
end

describe("RandomResizedCrop", function()
  it("draws torchvision's window: area and log-ratio uniform, the first of 10 tries that fits", function()
    local img = inputs.astro_big                     -- [3, 23, 31]
    local t = T.RandomResizedCrop(8, {scale = {0.2, 0.9}, ratio = {0.5, 2}})
    for seed = 1, 40 do
      mg.manual_seed(seed)
      local top, left, h, w = t:get_params(img)
      -- the same from the draws, by hand
      local u, H, W = uniforms(seed, 22), 23, 31
      local want
      for k = 0, 9 do
        local area = H * W * (0.2 + u[2 * k + 1] * 0.7)
        local ratio = math.exp(math.log(0.5) + u[2 * k + 2] * (math.log(2) - math.log(0.5)))
        local ww, hh = round_even(math.sqrt(area * ratio)), round_even(math.sqrt(area / ratio))
        if ww > 0 and ww <= W and hh > 0 and hh <= H then
          want = {math.floor(u[21] * (H - hh + 1)) + 1, math.floor(u[22] * (W - ww + 1)) + 1, hh, ww}
          break
        end
      end
      assert.same(want, {top, left, h, w})
      assert.is_true(top >= 1 and left >= 1 and top + h - 1 <= H and left + w - 1 <= W)
    end
  end)

  it("falls back to the central crop clipped to the ratio range when nothing fits", function()
    local t = T.RandomResizedCrop(4, {scale = {2, 3}})  -- always more than the image
    assert.same({1, 14, 10, 13}, {t:get_params(mg.zeros(1, 10, 40, "uint8"))})  -- too wide
    assert.same({14, 1, 13, 10}, {t:get_params(mg.zeros(1, 40, 10, "uint8"))})  -- too tall
    assert.same({1, 1, 12, 14}, {t:get_params(mg.zeros(1, 12, 14, "uint8"))})   -- in range
  end)

  it("crops the drawn window and resizes it, keeping the dtype", function()
    local img = inputs.astro
    local t = T.RandomResizedCrop({6, 7}, {interpolation = "bicubic"})
    mg.manual_seed(5)
    local out = t(img)
    mg.manual_seed(5)
    local top, left, h, w = t:get_params(img)
    assert.same({3, 6, 7}, out:shape())
    assert.equal("uint8", out:dtype())
    assert.same(F.resized_crop(img, top, left, h, w, {6, 7}, {interpolation = "bicubic"}):totable(),
                out:totable())
  end)

  it("draws per image of a batch, as image after image would", function()
    local batch = mg.stack({inputs.astro, inputs.astro, inputs.astro})
    local t = T.RandomResizedCrop(5)
    mg.manual_seed(9)
    local out = t(batch)
    assert.same({3, 3, 5, 5}, out:shape())
    mg.manual_seed(9)
    for n = 1, 3 do assert.same(t(inputs.astro):totable(), out[n]:totable()) end
    assert.are_not.same(out[1]:totable(), out[2]:totable())
  end)
end)

describe("ColorJitter", function()
  it("turns numbers into torchvision's ranges and leaves out the identity ones", function()
    local t = T.ColorJitter{brightness = 0.4, contrast = 1.5, saturation = {0.5, 0.5}, hue = 0.1}
    assert.same({0.6, 1.4}, t.brightness)
    assert.same({0, 2.5}, t.contrast)          -- clipped at 0
    assert.same({0.5, 0.5}, t.saturation)
    assert.same({-0.1, 0.1}, t.hue)
    assert.is_false(T.ColorJitter{brightness = 0}.brightness)
    assert.is_false(T.ColorJitter{brightness = {1, 1}}.brightness)
    assert.same({0.6, 1.4}, T.ColorJitter(0.4).brightness)  -- positional, as torchvision
  end)

  it("draws a permutation of the four adjustments, then one factor for each enabled one", function()
    local t = T.ColorJitter{brightness = 0.4, saturation = {0.2, 0.3}, hue = 0.1}
    local orders = {}
    for seed = 1, 200 do
      mg.manual_seed(seed)
      local order, b, c, s, h = t:get_params()
      local sorted = {table.unpack(order)}
      table.sort(sorted)
      assert.same({1, 2, 3, 4}, sorted)
      orders[table.concat(order)] = true
      -- the draws, by hand: randperm(4) first, then the three factors
      mg.manual_seed(seed)
      mg.randperm(4)
      local u = mg.rand(3, "float64"):totable()
      close(b, 0.6 + u[1] * 0.8, 1e-15)
      assert.is_nil(c)
      close(s, 0.2 + u[2] * 0.1, 1e-15)
      close(h, -0.1 + u[3] * 0.2, 1e-15)
    end
    local n = 0
    for _ in pairs(orders) do n = n + 1 end
    assert.equal(24, n)  -- every order comes up
  end)

  it("applies the drawn adjustments in the drawn order", function()
    local t = T.ColorJitter{brightness = 0.5, contrast = 0.5, saturation = 0.5, hue = 0.2}
    for _, img in ipairs{inputs.astro, inputs.colors_f} do
      for seed = 1, 6 do
        mg.manual_seed(seed)
        local out = t(img)
        mg.manual_seed(seed)
        local order, b, c, s, h = t:get_params()
        local f, want = {b, c, s, h}, img
        for _, k in ipairs(order) do want = F["adjust_" .. JITTER[k]](want, f[k]) end
        assert.equal(img:dtype(), out:dtype())
        assert.same(want:totable(), out:totable())
      end
    end
  end)

  it("returns the image itself when nothing is enabled", function()
    local img = inputs.astro
    assert.equal(img, T.ColorJitter{}(img))
  end)
end)

describe("RandomRotation and RandomGrayscale", function()
  it("draws an angle in range and rotates by it", function()
    local t = T.RandomRotation({-30, 10}, {interpolation = "bilinear", expand = true, fill = 7})
    local img = inputs.astro
    for seed = 1, 5 do
      local u = uniforms(seed, 1)[1]
      mg.manual_seed(seed)
      local angle = t:get_params()
      assert.equal(-30 + u * 40, angle)
      mg.manual_seed(seed)
      local out = t(img)
      assert.same(F.rotate(img, angle, {interpolation = "bilinear", expand = true, fill = 7}):totable(),
                  out:totable())
    end
    assert.same({3, 15, 19}, T.RandomRotation(0)(img):shape())
  end)

  it("with p = 0 leaves the image, with p = 1 grays it keeping the channel count", function()
    local img = inputs.astro
    assert.equal(img, T.RandomGrayscale{p = 0}(img))
    local g = T.RandomGrayscale{p = 1}(img)
    assert.same({3, 15, 19}, g:shape())
    local one = F.rgb_to_grayscale(img):totable()[1]
    for c = 1, 3 do assert.same(one, g:totable()[c]) end
    assert.same({1, 9, 11}, T.RandomGrayscale{p = 1}(inputs.gray):shape())
    assert.same({3, 15, 19}, T.Grayscale{num_output_channels = 3}(img):shape())
    assert.same({1, 15, 19}, T.Grayscale()(img):shape())
  end)
end)

describe("the batch transforms on images", function()
  it("flip one image as a batch of one, and return it as it is when not flipping", function()
    local img = inputs.astro
    assert.equal(img, T.RandomHorizontalFlip{p = 0}(img))
    assert.same(F.hflip(img):totable(), T.RandomHorizontalFlip{p = 1}(img):totable())
    assert.same(F.vflip(img):totable(), T.RandomVerticalFlip{p = 1}(img):totable())
    assert.equal("uint8", T.RandomVerticalFlip{p = 1}(img):dtype())
    local x = mg.stack({img, img, img, img})
    mg.manual_seed(4)
    local batch = T.RandomHorizontalFlip{}(x)
    mg.manual_seed(4)
    assert.same(batch[1]:totable(), T.RandomHorizontalFlip{}(img):totable())
  end)

  it("crop uint8 images with a uint8 fill", function()
    local img = inputs.colors          -- [3, 4, 6]
    mg.manual_seed(2)
    local out = T.RandomCrop{size = {5, 7}, padding = 2, fill = 200}(img)
    assert.same({3, 5, 7}, out:shape())
    assert.equal("uint8", out:dtype())
    mg.manual_seed(2)
    local top, left = mg.randint(1, 4, {1}):item(), mg.randint(1, 4, {1}):item()
    local padded = F.pad(img, 2, {fill = 200})
    assert.same(F.crop(padded, top, left, 5, 7):totable(), out:totable())
    assert.matches("RandomCrop: fill 300 is not a uint8 value",
                   error_of(T.RandomCrop{size = 2, fill = 300}, img))
  end)

  it("warp uint8 images with RandomAffine, nearest or bilinear", function()
    local img = inputs.astro
    assert.same(img:totable(), T.RandomAffine{}(img):totable())
    -- RandomAffine's 90 degrees turn the image counter-clockwise: F.rotate's
    local turn = T.RandomAffine{degrees = {90, 90}, interpolation = "nearest"}
    local sq = inputs.astro:narrow(3, 1, 15)
    assert.same(F.rotate(sq, 90):totable(), turn(sq):totable())
    local out = T.RandomAffine{degrees = 20, fill = {255, 0, 0}}(img)
    assert.equal("uint8", out:dtype())
    assert.same({3, 15, 19}, out:shape())
  end)

  it("Normalize and RandomErasing take one float image; Normalize refuses uint8", function()
    local img = inputs.astro_f
    local out = T.Normalize{mean = {0.5, 0.4, 0.3}, std = {0.2, 0.2, 0.2}}(img)
    assert.same(F.normalize(img, {0.5, 0.4, 0.3}, {0.2, 0.2, 0.2}):totable(), out:totable())
    assert.same({3, 15, 19}, T.RandomErasing{p = 1}(img):shape())
    assert.matches("Normalize: expected a float32 or float64 image, got uint8 %(convert it first",
                   error_of(T.Normalize{mean = {0}, std = {1}}, inputs.astro))
  end)
end)

describe("image pipelines", function()
  local function pipeline()
    return T.Compose{
      T.RandomResizedCrop(8), T.RandomHorizontalFlip(),
      T.ColorJitter{brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.1},
      T.RandomRotation(10), T.ToTensor(), T.Normalize{mean = {0.485, 0.456, 0.406},
                                                      std = {0.229, 0.224, 0.225}},
    }
  end

  it("turn uint8 images of any size into float32 ones of one size, reproducibly", function()
    local p = pipeline()
    mg.manual_seed(7)
    local a = {p(inputs.astro), p(inputs.astro_big), p(inputs.colors)}
    mg.manual_seed(7)
    local b = {p(inputs.astro), p(inputs.astro_big), p(inputs.colors)}
    for k = 1, 3 do
      assert.same({3, 8, 8}, a[k]:shape())
      assert.equal("float32", a[k]:dtype())
      assert.same(a[k]:totable(), b[k]:totable())
    end
    assert.same({3, 3, 8, 8}, mg.stack(a):shape())
  end)

  it("give the same bits whatever the thread count", function()
    local x = mg.stack({inputs.astro_big, inputs.astro_big})
    -- 1.2 million output elements: past the size where the ops use threads
    local big = T.Resize({400, 500}, {interpolation = "bicubic"})
    local threads = mg.get_num_threads()
    mg.set_num_threads(1)
    local one = {big(x), F.rotate(big(x), 33, {interpolation = "bilinear"}),
                 F.adjust_hue(big(x), 0.2)}
    mg.set_num_threads(4)
    local four = {big(x), F.rotate(big(x), 33, {interpolation = "bilinear"}),
                  F.adjust_hue(big(x), 0.2)}
    mg.set_num_threads(threads)
    for k = 1, 3 do assert.same(one[k]:totable(), four[k]:totable()) end
  end)

  it("compute float64 images in float64, agreeing with float32 to rounding", function()
    for _, case in ipairs(ref.cases) do
      if case.input == "astro_f" and (case.fn == "resize" or case.fn == "rotate"
          or case.fn == "adjust_hue" or case.fn == "affine") then
        local out = run[case.fn](inputs.astro_f:double(), case.args)
        assert.equal("float64", out:dtype())
        close(out, case.out, 1e-5)
      end
    end
  end)

  it("refuse an image that requires grad: they are not differentiable", function()
    local x = inputs.astro_f:clone():requires_grad()
    assert.matches("not differentiable", error_of(F.resize, x, 4))
    assert.matches("not differentiable", error_of(F.adjust_hue, x, 0.1))
    assert.equal(8, mg.no_grad(function() return F.resize(x, 8) end):shape()[2])
  end)
end)

describe("Resize, CenterCrop, Pad, ToTensor and ConvertImageDtype", function()
  it("resize the smaller edge, cap the longer one, and return a same-size image as it is", function()
    local img = inputs.astro                     -- 15 x 19
    assert.same({3, 10, 12}, T.Resize(10)(img):shape())
    -- 8 x 10 would pass max_size: 9 x (9 * 8 / 10, truncated)
    assert.same({3, 7, 9}, T.Resize(8, {max_size = 9})(img):shape())
    assert.same({3, 4, 5}, T.Resize{size = {4, 5}, antialias = false}(img):shape())
    assert.equal(img, T.Resize{15, 19}(img))
    assert.same({2, 3, 6, 7}, T.Resize({6, 7})(inputs.pair):shape())
  end)

  it("crop the centre and pad as the functional forms do", function()
    local img = inputs.astro
    assert.same(F.center_crop(img, {8, 11}):totable(), T.CenterCrop{8, 11}(img):totable())
    assert.same(F.pad(img, {1, 2}, {padding_mode = "edge"}):totable(),
                T.Pad({1, 2}, {padding_mode = "edge"})(img):totable())
  end)

  it("convert uint8 to float in [0, 1] and back", function()
    local img = inputs.astro
    local f = T.ToTensor()(img)
    assert.equal("float32", f:dtype())
    assert.equal(f, T.ToTensor()(f))            -- floats pass as they are
    assert.same(f:totable(), T.ConvertImageDtype("float32")(img):totable())
    assert.equal("float64", T.ConvertImageDtype("float64")(img):dtype())
    assert.same(img:totable(), T.ConvertImageDtype("uint8")(f):totable())
    assert.same(f:double():totable(), F.to_dtype(f, "float64"):totable())
    assert.same({{{255}}}, F.to_dtype(mg.ones(1, 1, 1), "uint8", {scale = true}):totable())
    assert.same({{{1}}}, F.to_dtype(mg.ones(1, 1, 1), "uint8"):totable())
  end)
end)
