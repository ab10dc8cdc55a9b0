-- moongrad.transforms: batch augmentation. References are built here with
-- plain Lua loops over totable() on tiny hand-made batches with forced
-- parameters; randomness is checked for per-sample variety, seeded
-- reproducibility and independence from the thread count.
local mg = require "moongrad"
local T = require "moongrad.transforms"
local F = require "moongrad.functional"
local approx = require "support.approx"

local close, values = approx.assert_close, approx.assert_values

-- The message of the error fn raises (fn must raise).
local error_of = require("support.check").err_of

-- A batch [N, C, H, W] whose element (n, c, i, j) is f(n, c, i, j) (1-based).
local function batch(N, C, H, W, f, dtype)
  local t = {}
  for n = 1, N do
    t[n] = {}
    for c = 1, C do
      t[n][c] = {}
      for i = 1, H do
        t[n][c][i] = {}
        for j = 1, W do t[n][c][i][j] = f(n, c, i, j) end
      end
    end
  end
  return mg.tensor(t, dtype or "float32")
end

local function distinct(x)
  local seen, count = {}, 0
  for n = 1, x:shape()[1] do
    local key = table.concat(approx.flat(x[n]), ",")
    if not seen[key] then seen[key], count = true, count + 1 end
  end
  return count
end

local function assert_equal_tensors(a, b)
  assert.same(a:shape(), b:shape())
  assert.same(a:totable(), b:totable())
end

-- every pixel its own value, no symmetry
local function ramp(n, c, i, j) return 100 * c + 10 * i + j + 0.5 * n end

local function pipeline()
  return T.Compose{
    T.RandomCrop{size = 28, padding = 4},
    T.RandomHorizontalFlip{},
    T.RandomAffine{degrees = 15, translate = {0.1, 0.1}, scale = {0.9, 1.1}},
    T.RandomErasing{p = 0.5, value = "random"},
    T.GaussianNoise{std = 0.05},
  }
end

describe("transforms", function()
  describe("every transform", function()
    local all = {
      T.RandomHorizontalFlip{}, T.RandomVerticalFlip{p = 0.3},
      T.RandomCrop{size = 6, padding = 2, fill = 1}, T.RandomAffine{degrees = 30, translate = {0.2, 0.1}, scale = {0.8, 1.2}},
      T.RandomErasing{p = 1, value = "random"}, T.RandomErasing{p = 1, value = 3},
      T.GaussianNoise{std = 0.2}, T.Normalize{mean = {0.1, 0.2}, std = {2, 4}},
      T.Lambda(function(x) return x * 2 end),
    }
    for _, dtype in ipairs{"float32", "float64"} do
      it("preserves the batch's shape and dtype (" .. dtype .. ") and leaves the input alone", function()
        local x = batch(5, 2, 6, 6, ramp, dtype)
        local before = x:totable()
        local y = mg.randint(1, 3, {5})
        for _, t in ipairs(all) do
          local xo, yo = t(x, y)
          assert.same({5, 2, 6, 6}, xo:shape(), t.name)
          assert.equal(dtype, xo:dtype(), t.name)
          assert.equal(y, yo, t.name)
        end
        assert.same(before, x:totable())
      end)
    end

    it("accepts a non-contiguous batch", function()
      local x = batch(3, 1, 5, 5, ramp)
      local xt = x:transpose(3, 4)
      assert.is_false(xt:is_contiguous())
      values(T.RandomHorizontalFlip{p = 0}(xt), xt:contiguous():totable())
      values(T.flip_horizontal(xt, mg.ones(3)), T.flip_horizontal(xt:contiguous(), mg.ones(3)):totable())
    end)
  end)

  describe("RandomHorizontalFlip", function()
    it("with p = 1 reverses every row of every sample", function()
      local x = batch(3, 2, 3, 4, ramp)
      local ref = approx.map(x:totable(), function(v) return v end)
      for n = 1, 3 do
        for c = 1, 2 do
          for i = 1, 3 do
            local row, rev = ref[n][c][i], {}
            for j = 1, 4 do rev[j] = row[5 - j] end
            ref[n][c][i] = rev
          end
        end
      end
      values(T.RandomHorizontalFlip{p = 1}(x), ref, "float32")
    end)

    it("with p = 0 is the identity, and flips exactly the masked samples", function()
      local x = batch(3, 1, 2, 3, ramp, "float64")
      values(T.RandomHorizontalFlip{p = 0}(x), x:totable())
      local out = T.flip_horizontal(x, mg.tensor({0, 1, 0}))
      values(out[1], x[1]:totable())
      values(out[2], T.flip_horizontal(x, mg.ones(3))[2]:totable())
      values(out[3], x[3]:totable())
    end)

    it("RandomVerticalFlip with p = 1 reverses the rows", function()
      local x = batch(2, 1, 3, 2, ramp)
      local out = T.RandomVerticalFlip{p = 1}(x):totable()
      local ref = x:totable()
      for n = 1, 2 do assert.same({ref[n][1][3], ref[n][1][2], ref[n][1][1]}, out[n][1]) end
    end)

    it("draws per sample: 64 identical images are not all flipped alike", function()
      mg.manual_seed(7)
      local x = batch(1, 1, 4, 4, ramp):expand(64, 1, 4, 4)
      assert.equal(2, distinct(T.RandomHorizontalFlip{}(x)))
    end)
  end)

  describe("RandomCrop", function()
    -- the reference: pad by p with fill, then take the window at (top, left)
    local function reference(x, tops, lefts, h, w, p, fill)
      local t, out = x:totable(), {}
      for n = 1, #t do
        out[n] = {}
        for c = 1, #t[n] do
          local img, H, W = t[n][c], #t[n][c], #t[n][c][1]
          out[n][c] = {}
          for i = 1, h do
            out[n][c][i] = {}
            for j = 1, w do
              local si, sj = tops[n] + i - 1 - p, lefts[n] + j - 1 - p
              local inside = si >= 1 and si <= H and sj >= 1 and sj <= W
              out[n][c][i][j] = inside and img[si][sj] or fill
            end
          end
        end
      end
      return out
    end

    it("crop_with_padding at known offsets equals padding then cropping", function()
      local x = batch(4, 2, 4, 5, ramp)
      local tops, lefts = {1, 3, 5, 2}, {1, 4, 2, 5}
      local out = T.crop_with_padding(x, mg.tensor(tops, "int64"), mg.tensor(lefts), {4, 5}, 2, -7)
      values(out, reference(x, tops, lefts, 4, 5, 2, -7), "float32")
      -- a smaller window than the image, without padding
      local out2 = T.crop_with_padding(x, mg.tensor({1, 1, 2, 1}), mg.tensor({2, 1, 3, 1}), 3)
      values(out2, reference(x, {1, 1, 2, 1}, {2, 1, 3, 1}, 3, 3, 0, 0))
    end)

    it("draws offsets per sample and stays within the padded image", function()
      mg.manual_seed(3)
      local x = mg.ones(64, 1, 6, 6):mul_(5)
      local out = T.RandomCrop{size = 6, padding = 2, fill = 0}(x)
      assert.is_true(distinct(out) > 10)
      -- every crop keeps at least a 2x2 corner of the image
      for n = 1, 64 do assert.is_true(out[n]:sum():item() >= 5 * 16) end
    end)

    it("with no padding and the full size is the identity", function()
      local x = batch(3, 1, 5, 5, ramp)
      values(T.RandomCrop{size = 5}(x), x:totable())
    end)

    it("can change the image size", function()
      assert.same({2, 3, 4, 6}, T.RandomCrop{size = {4, 6}, padding = 1}(mg.rand(2, 3, 5, 5)):shape())
    end)
  end)

  describe("RandomAffine", function()
    it("with identity parameters is the identity", function()
      local x = batch(3, 2, 5, 4, ramp, "float64")
      local theta = mg.tensor({{1, 0, 0}, {0, 1, 0}}, "float64"):view(1, 2, 3):expand(3, 2, 3)
      values(T.affine(x, theta), x:totable())
      values(T.RandomAffine{}(x), x:totable())
      values(T.RandomAffine{degrees = 0, scale = {1, 1}, translate = {0, 0}}(x), x:totable())
    end)

    for _, n in ipairs{3, 4} do
      it("rotating a square " .. n .. "x" .. n .. " image by 90 degrees turns it counter-clockwise", function()
        local x = batch(2, 2, n, n, ramp)
        local src, ref = x:totable(), {}
        for s = 1, 2 do
          ref[s] = {}
          for c = 1, 2 do
            ref[s][c] = {}
            for i = 1, n do
              ref[s][c][i] = {}
              for j = 1, n do ref[s][c][i][j] = src[s][c][j][n + 1 - i] end
            end
          end
        end
        close(T.RandomAffine{degrees = {90, 90}}(x), ref, 1e-5)
      end)
    end

    it("translates by whole pixels and fills what comes in", function()
      -- the inverse map in = out - (1, 0): a shift one pixel to the right
      local x = batch(1, 1, 2, 3, ramp)
      local theta = mg.tensor({{{1, 0, -1}, {0, 1, 0}}})
      local s = x:totable()[1][1]
      values(T.affine(x, theta, 9), {{{{9, s[1][1], s[1][2]}, {9, s[2][1], s[2][2]}}}})
    end)

    it("interpolates bilinearly between pixels", function()
      local x = mg.tensor({{{{0, 10}}}}, "float64")
      local theta = mg.tensor({{{1, 0, 0.25}, {0, 1, 0}}}, "float64")
      close(T.affine(x, theta, 0), {{{{2.5, 7.5}}}}, 1e-12)
    end)

    it("draws per sample", function()
      mg.manual_seed(11)
      local x = batch(1, 1, 8, 8, ramp):expand(64, 1, 8, 8)
      assert.equal(64, distinct(T.RandomAffine{degrees = 20}(x)))
    end)
  end)

  describe("RandomErasing", function()
    it("erase with a full box fills the whole image", function()
      local x = batch(2, 3, 4, 5, ramp)
      local boxes = mg.tensor({{1, 1, 4, 5}, {2, 3, 0, 0}}, "int64")
      local out = T.erase(x, boxes, -2)
      values(out[1], mg.full({3, 4, 5}, -2):totable())
      values(out[2], x[2]:totable())
    end)

    it("erases exactly the forced rectangle of every channel", function()
      mg.manual_seed(5)
      local x = mg.ones(16, 2, 8, 8)
      local out = T.RandomErasing{p = 1, scale = {0.25, 0.25}, ratio = {1, 1}, value = 7}(x)
      for n = 1, 16 do
        for c = 1, 2 do
          local plane = out[n][c]
          assert.equal(16, plane:eq(7):sum():item())
          assert.equal(48, plane:eq(1):sum():item())
        end
      end
      assert.is_true(distinct(out) > 8) -- positions differ per sample
    end)

    it("with p = 0 changes nothing, and value = 'random' fills the box with noise", function()
      local x = batch(4, 1, 6, 6, ramp)
      values(T.RandomErasing{p = 0}(x), x:totable())
      local out = T.RandomErasing{p = 1, scale = {0.25, 0.25}, ratio = {1, 1}, value = "random"}(x)
      for n = 1, 4 do
        assert.equal(36 - 9, out[n]:eq(x[n]):sum():item())
      end
    end)

    it("paste copies the box from the permuted source", function()
      local x = batch(3, 1, 4, 4, function(n) return n end)
      local out = T.paste(x, x, mg.tensor({2, 3, 1}, "int64"), mg.tensor({{1, 1, 2, 2}, {3, 2, 2, 3}, {1, 1, 0, 0}}))
      local o = out:totable()
      assert.equal(2, o[1][1][2][2]); assert.equal(1, o[1][1][3][3])
      assert.equal(3, o[2][1][4][4]); assert.equal(2, o[2][1][4][1])
      values(out[3], x[3]:totable())
    end)
  end)

  describe("GaussianNoise and Normalize", function()
    it("adds noise of the requested spread", function()
      mg.manual_seed(2)
      local x = mg.zeros(16, 1, 32, 32, "float64")
      local out = T.GaussianNoise{std = 0.5, mean = 1}(x)
      close(out:mean():item(), 1, 0.02)
      close(out:std():item(), 0.5, 0.02)
    end)

    it("normalizes each channel with its mean and std", function()
      local x = batch(2, 2, 2, 2, ramp, "float64")
      local out = T.Normalize{mean = {100, 200}, std = {2, 4}}(x)
      local ref = approx.map(x:totable(), function(v) return v end)
      for n = 1, 2 do
        for c = 1, 2 do
          for i = 1, 2 do
            for j = 1, 2 do ref[n][c][i][j] = (ref[n][c][i][j] - 100 * c) / (2 * c) end
          end
        end
      end
      close(out, ref, 1e-12)
      close(T.Normalize{mean = {1}, std = {2}}(mg.ones(1, 3, 1, 1)), {{{{0}}, {{0}}, {{0}}}}, 0)
    end)
  end)

  describe("Compose and Lambda", function()
    it("apply transforms in order and pass labels along", function()
      local x, y = mg.ones(1, 1, 1, 1), mg.tensor({3}, "int64")
      local t = T.Compose{
        T.Lambda(function(a) return a + 1 end),
        T.Lambda(function(a, b) return a * 3, b + 1 end),
      }
      local xo, yo = t(x, y)
      values(xo, {{{{6}}}})
      values(yo, {4}, "int64")
      values(T.Compose{}(x, y), {{{{1}}}})
    end)
  end)

  describe("randomness", function()
    it("is reproducible under mg.manual_seed and mg.set_rng_state", function()
      local x = batch(8, 1, 28, 28, ramp)
      local p = pipeline()
      mg.manual_seed(123)
      local a = p(x)
      mg.manual_seed(123)
      assert_equal_tensors(a, p(x))
      local state = mg.get_rng_state()
      local b = p(x)
      mg.set_rng_state(state)
      assert_equal_tensors(b, p(x))
      assert.is_false(pcall(assert_equal_tensors, a, b))
    end)

    it("does not depend on the thread count", function()
      local old = mg.get_num_threads()
      local x = batch(1, 1, 28, 28, ramp):expand(256, 1, 28, 28):contiguous()
      local y = mg.randint(1, 10, {256})
      local outs = {}
      for k, threads in ipairs{1, 4} do
        mg.set_num_threads(threads)
        mg.manual_seed(99)
        local xo = pipeline()(x)
        local xm, ym = T.CutMix{num_classes = 10}(T.MixUp{num_classes = 10}(xo, y))
        outs[k] = {xo, xm, ym}
      end
      mg.set_num_threads(old)
      for i = 1, 3 do assert_equal_tensors(outs[1][i], outs[2][i]) end
    end)

    it("samples Beta(a, b) with the right mean", function()
      mg.manual_seed(4)
      for _, ab in ipairs{{2, 5}, {0.4, 0.4}} do
        local sum, n = 0, 3000
        for _ = 1, n do
          local v = T.sample_beta(ab[1], ab[2])
          assert.is_true(v >= 0 and v <= 1)
          sum = sum + v
        end
        close(sum / n, ab[1] / (ab[1] + ab[2]), 0.015)
      end
    end)
  end)

  describe("MixUp and CutMix", function()
    local N, K = 6, 4
    local labels = mg.tensor({1, 2, 3, 4, 1, 2}, "int64")
    local function onehot(y) return mg.arange(1, K + 1):view(1, K):eq(y:view(-1, 1)):to("float32") end

    it("MixUp mixes images and one-hot targets with the same lambda", function()
      local x = batch(N, 1, 3, 3, ramp)
      mg.manual_seed(8)
      local state = mg.get_rng_state()
      local t = T.MixUp{alpha = 0.4, num_classes = K}
      local xm, ym = t(x, labels)
      -- the same draws, replayed: lambda, then the permutation
      mg.set_rng_state(state)
      local lam = T.sample_beta(0.4, 0.4)
      local perm = mg.randperm(N)
      assert.equal(lam, t.last_lambda)
      close(xm, (x * lam + x:index_select(1, perm) * (1 - lam)):totable(), 1e-5)
      local oh = onehot(labels)
      close(ym, (oh * lam + oh:index_select(1, perm) * (1 - lam)):totable(), 1e-6)
      close(ym:sum(2), {1, 1, 1, 1, 1, 1}, 1e-6)
      assert.equal("float32", ym:dtype())
      F.cross_entropy(mg.randn(N, K), ym) -- soft targets are accepted
    end)

    it("MixUp mixes soft targets too", function()
      local soft = mg.full({N, K}, 0.25, "float64")
      local _, ym = T.MixUp{}(mg.rand(N, 1, 2, 2, "float64"), soft)
      close(ym, soft:totable(), 1e-12)
      assert.equal("float64", ym:dtype())
    end)

    it("CutMix pastes boxes and weights targets by the exact kept area", function()
      mg.manual_seed(21)
      local x = batch(N, 2, 8, 8, function(n) return n end)
      local state = mg.get_rng_state()
      local t = T.CutMix{alpha = 1, num_classes = K}
      local xc, yc = t(x, labels)
      mg.set_rng_state(state)
      T.sample_beta(1, 1)
      local perm = mg.randperm(N):totable()
      local lams = t.last_lambda:totable()
      local oh, y = onehot(labels):totable(), yc:totable()
      for n = 1, N do
        -- the share of pixels still from sample n is lambda
        local kept = xc[n]:eq(n):sum():item() / (2 * 64)
        if perm[n] ~= n then close(kept, lams[n], 1e-12) end
        assert.is_true(lams[n] >= 0 and lams[n] <= 1)
        local ref = {}
        for k = 1, K do ref[k] = lams[n] * oh[n][k] + (1 - lams[n]) * oh[perm[n]][k] end
        close(y[n], ref, 1e-6)
      end
      close(yc:sum(2), {1, 1, 1, 1, 1, 1}, 1e-6)
      F.cross_entropy(mg.randn(N, K), yc)
    end)
  end)

  describe("errors", function()
    it("name the transform for a batch of the wrong rank or dtype", function()
      assert.matches("RandomHorizontalFlip: expected a batch %[N, C, H, W%] or an image " ..
                     "%[C, H, W%], got shape %[4,4%]",
                     error_of(T.RandomHorizontalFlip{}, mg.rand(4, 4)))
      assert.matches("RandomCrop: expected a uint8, float32 or float64 image, got int64",
                     error_of(T.RandomCrop{size = 2}, mg.zeros(1, 1, 2, 2, "int64")))
      assert.matches("Normalize: expected a batch tensor", error_of(T.Normalize{mean = {0}, std = {1}}, {1, 2}))
      assert.matches("Normalize: 2 mean/std values for a batch of 3 channels",
                     error_of(T.Normalize{mean = {0, 0}, std = {1, 1}}, mg.rand(1, 3, 2, 2)))
      assert.matches("RandomCrop: size 9x9 is larger than the padded 8x8 image",
                     error_of(T.RandomCrop{size = 9, padding = 2}, mg.rand(1, 1, 4, 4)))
    end)

    it("reject bad options", function()
      assert.matches("RandomHorizontalFlip: option 'p' must be in %[0, 1%], got 1.5",
                     error_of(T.RandomHorizontalFlip, {p = 1.5}))
      assert.matches("RandomErasing: option 'p' must be in %[0, 1%], got %-0.1",
                     error_of(T.RandomErasing, {p = -0.1}))
      assert.matches("RandomCrop: unknown option 'paddding' %(known: size, padding, fill%)",
                     error_of(T.RandomCrop, {size = 28, paddding = 4}))
      assert.matches("MixUp: unknown option 'alhpa'", error_of(T.MixUp, {alhpa = 1}))
      assert.matches("RandomCrop: option 'size' is required", error_of(T.RandomCrop, {}))
      assert.matches("RandomAffine: option 'scale' must be {low, high}", error_of(T.RandomAffine, {scale = {2, 1}}))
      assert.matches("CutMix: option 'alpha' must be positive", error_of(T.CutMix, {alpha = 0}))
      assert.matches("Normalize: std%[2%] is zero", error_of(T.Normalize, {mean = {0, 0}, std = {1, 0}}))
      assert.matches("RandomErasing: option 'value'", error_of(T.RandomErasing, {value = "noise"}))
      assert.matches("Compose: element 2 is not a transform", error_of(T.Compose, {T.Lambda(print), 3}))
      assert.matches("Lambda: expects a function", error_of(T.Lambda, 3))
    end)

    it("point at the caller's line", function()
      -- (not tail calls: a tail call leaves no caller's frame to point at)
      local ok, err = pcall(function() local t = T.RandomCrop{size = 28, paddding = 4}; return t end)
      assert.is_false(ok)
      assert.matches("transforms_spec.lua:%d+: RandomCrop: unknown option", err)
      ok, err = pcall(function() local t = T.RandomHorizontalFlip{p = 2}; return t end)
      assert.matches("transforms_spec.lua:%d+: RandomHorizontalFlip", err)
      ok, err = pcall(function() local a = T.RandomCrop{size = 2}(mg.rand(2, 2)); return a end)
      assert.matches("transforms_spec.lua:%d+: RandomCrop: expected a batch", err)
    end)

    it("explain bad labels for MixUp and CutMix", function()
      local x = mg.rand(2, 1, 2, 2)
      assert.matches("MixUp: option 'num_classes' is needed", error_of(T.MixUp{}, x, mg.tensor({1, 2}, "int64")))
      assert.matches("CutMix: labels must lie in 1..3, got values in 1..4",
                     error_of(T.CutMix{num_classes = 3}, x, mg.tensor({1, 4}, "int64")))
      assert.matches("MixUp: needs the labels", error_of(T.MixUp{num_classes = 3}, x))
    end)

    it("come from the primitives with the offending values", function()
      local x = mg.rand(2, 1, 4, 4)
      assert.matches("erase: box 1 %(top 2, left 1, height 4, width 4%) does not fit in a 4x4 image",
                     error_of(T.erase, x, mg.tensor({{2, 1, 4, 4}, {1, 1, 0, 0}})))
      assert.matches("affine: theta must have shape %[2,2,3%], got %[2,6%]",
                     error_of(T.affine, x, mg.zeros(2, 6)))
      assert.matches("flip_horizontal: mask must have shape %[2%], got %[3%]",
                     error_of(T.flip_horizontal, x, mg.ones(3)))
      assert.matches("paste: perm%[2%] = 5 is outside 1..2",
                     error_of(T.paste, x, x, mg.tensor({1, 5}), mg.zeros(2, 4)))
      local w = mg.rand(1, 1, 2, 2):requires_grad()
      assert.matches("not differentiable", error_of(T.flip_horizontal, w, mg.ones(1)))
    end)
  end)
end)
