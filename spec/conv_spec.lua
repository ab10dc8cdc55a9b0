-- F.conv2d: forward values and gradients against PyTorch
-- (spec/fixtures/gen_conv.py), gradients against finite differences
-- (mg.gradcheck), float32, error messages, and results that do not depend
-- on the thread count.
local mg = require "moongrad"
local F = require "moongrad.functional"
local approx = require "support.approx"
local ref = dofile("spec/fixtures/conv_ref.lua")

local TOL = 1e-10  -- float64 against PyTorch's float64
local TOL32 = 1e-4 -- float32 against the same references

local function check(got, expected, tol, what)
  local ok, err = pcall(approx.assert_close, got, expected, tol, tol)
  if not ok then error((what or "value") .. ": " .. tostring(err), 2) end
end

-- Runs a fixture case in dtype dt: returns y and the inputs (with grads).
local function run(c, dt)
  local x = mg.tensor(c.x, dt):requires_grad()
  local w = mg.tensor(c.w, dt):requires_grad()
  local b = c.b and mg.tensor(c.b, dt):requires_grad() or nil
  local y = F.conv2d(x, w, b, c.opts)
  y:backward(mg.tensor(c.g, dt))
  return y, x, w, b
end

describe("conv2d", function()
  describe("matches PyTorch in float64", function()
    for _, c in ipairs(ref) do
      it("with " .. c.name, function()
        local y, x, w, b = run(c, "float64")
        assert.are.equal("float64", y:dtype())
        assert.are.same(approx.shape_of(c.y), y:shape())
        check(y, c.y, TOL, "output")
        check(x.grad, c.gx, TOL, "input gradient")
        check(w.grad, c.gw, TOL, "weight gradient")
        if b then check(b.grad, c.gb, TOL, "bias gradient") end
      end)
    end
  end)

  describe("matches PyTorch in float32", function()
    for i, c in ipairs(ref) do
      if i == 2 or i == 7 then
        it("with " .. c.name, function()
          local y, x, w, b = run(c, "float32")
          assert.are.equal("float32", y:dtype())
          check(y, c.y, TOL32, "output")
          check(x.grad, c.gx, TOL32, "input gradient")
          check(w.grad, c.gw, TOL32, "weight gradient")
          check(b.grad, c.gb, TOL32, "bias gradient")
        end)
      end
    end
  end)

  it("records a conv2d node only when an input requires grad", function()
    local x = mg.randn(1, 1, 3, 3)
    local w = mg.randn(1, 1, 2, 2)
    assert.is_nil(F.conv2d(x, w):grad_fn())
    assert.are.equal("conv2d", F.conv2d(x, w:requires_grad()):grad_fn())
  end)

  describe("passes gradcheck", function()
    mg.manual_seed(7)
    local function r(...) return mg.randn({...}, "float64"):requires_grad() end
    local cases = {
      {"stride 2, padding 1", {r(2, 2, 5, 5), r(3, 2, 3, 3), r(3)}, {stride = 2, padding = 1}},
      {"dilation {2, 1}, non-square kernel", {r(1, 2, 6, 5), r(2, 2, 2, 3), r(2)}, {dilation = {2, 1}, padding = {1, 0}}},
      {"groups 2", {r(2, 4, 4, 4), r(2, 2, 3, 3), r(2)}, {groups = 2, padding = 1}},
      {"depthwise without bias", {r(2, 3, 4, 4), r(3, 1, 3, 3)}, {groups = 3, padding = 1}},
      {"a 1x1 kernel", {r(2, 3, 3, 3), r(2, 3, 1, 1), r(2)}, {}},
    }
    for _, c in ipairs(cases) do
      it("with " .. c[1], function()
        local inputs, opts = c[2], c[3]
        assert.is_true(mg.gradcheck(function(x, w, b) return F.conv2d(x, w, b, opts) end, inputs))
      end)
    end
  end)

  it("gives the same bits with 1 and 2 threads (float32 in deterministic mode)", function()
    -- float32 goes to oneDNN otherwise, whose weight gradient is split by
    -- the thread count (spec/conv_dnnl_spec.lua)
    local saved = mg.get_num_threads()
    local was = mg.are_deterministic_algorithms_enabled()
    local function pass(dt, threads)
      mg.use_deterministic_algorithms(dt == "float32")
      mg.set_num_threads(threads)
      mg.manual_seed(11)
      local x = mg.randn({16, 8, 12, 12}, dt):requires_grad()
      local w = mg.randn({16, 8, 3, 3}, dt):requires_grad()
      local b = mg.randn({16}, dt):requires_grad()
      local y = F.conv2d(x, w, b, {padding = 1})
      y:backward(mg.randn(y:shape(), dt))
      return {y:totable(), x.grad:totable(), w.grad:totable(), b.grad:totable()}
    end
    for _, dt in ipairs({"float32", "float64"}) do
      local one, two = pass(dt, 1), pass(dt, 2)
      mg.set_num_threads(saved)
      mg.use_deterministic_algorithms(was)
      for k = 1, 4 do
        assert.are.same(approx.flat(one[k]), approx.flat(two[k]))
      end
    end
  end)

  describe("refuses", function()
    local function fails(msg, x, w, b, opts)
      local ok, err = pcall(F.conv2d, x, w, b, opts)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(msg, 1, true), tostring(err))
    end

    it("a kernel larger than the padded input", function()
      fails("conv2d: kernel 5x5 (dilated 5x5) is larger than the padded input 4x4",
            mg.zeros(1, 1, 4, 4), mg.zeros(1, 1, 5, 5))
      fails("conv2d: kernel 3x3 (dilated 5x5) is larger than the padded input 4x6",
            mg.zeros(1, 1, 2, 4), mg.zeros(1, 1, 3, 3), nil, {padding = 1, dilation = 2})
    end)

    it("channels not divisible by groups", function()
      fails("conv2d: 3 input channels are not divisible by groups 2",
            mg.zeros(1, 3, 4, 4), mg.zeros(2, 1, 3, 3), nil, {groups = 2})
      fails("conv2d: 3 output channels (weight of shape [3,1,3,3]) are not divisible by groups 2",
            mg.zeros(1, 2, 4, 4), mg.zeros(3, 1, 3, 3), nil, {groups = 2})
    end)

    it("a weight whose channels do not fit the input", function()
      fails("conv2d: weight of shape [4,2,3,3] expects 2 input channels per group, " ..
            "but input of shape [1,3,5,5] has 3",
            mg.zeros(1, 3, 5, 5), mg.zeros(4, 2, 3, 3))
    end)

    it("inputs and weights that are not 4-D, and a bias that does not fit", function()
      fails("conv2d: input must be 4-D [N, C, H, W], got shape [3,5,5]",
            mg.zeros(3, 5, 5), mg.zeros(4, 3, 3, 3))
      fails("conv2d: weight must be 4-D [O, C/groups, kH, kW], got shape [4,3,3]",
            mg.zeros(1, 3, 5, 5), mg.zeros(4, 3, 3))
      fails("conv2d: bias of shape [3] does not fit weight of shape [4,3,3,3] (expected [4])",
            mg.zeros(1, 3, 5, 5), mg.zeros(4, 3, 3, 3), mg.zeros(3))
    end)

    it("non-positive stride or dilation and negative padding", function()
      local x, w = mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3)
      fails("conv2d: stride must be positive, got 0", x, w, nil, {stride = 0})
      fails("conv2d: stride must be positive, got -1", x, w, nil, {stride = {1, -1}})
      fails("conv2d: dilation must be positive, got 0", x, w, nil, {dilation = 0})
      fails("conv2d: padding must be non-negative, got -1", x, w, nil, {padding = -1})
      fails("conv2d: groups must be positive, got 0", x, w, nil, {groups = 0})
    end)

    it("unknown options and malformed pairs", function()
      local x, w = mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3)
      fails("conv2d", x, w, nil, {strides = 2})
      fails("conv2d: option 'padding' must be an integer or a pair of integers",
            x, w, nil, {padding = {1, 2, 3}})
      fails("conv2d: option 'stride' must be an integer or a pair of integers",
            x, w, nil, {stride = 1.5})
    end)
  end)
end)

describe("conv2d's kernels for rows as long as the input's", function()
  -- Stride 1, dilation 1 and "same" padding across take a fast im2col and
  -- col2im (one long copy or add per row of columns); the general kernels,
  -- selected with mg._set_reference_kernels(true), are the reference. The
  -- two must agree exactly, forward and backward. Deterministic mode keeps
  -- float32 on these kernels rather than oneDNN's.
  local cases = {
    { note = "3x3, padding 1", x = { 2, 3, 6, 5 }, w = { 4, 3, 3, 3 }, o = { padding = 1 } },
    { note = "5x5, padding 2", x = { 2, 2, 7, 9 }, w = { 3, 2, 5, 5 }, o = { padding = 2 } },
    { note = "3x3, padding {0, 1}", x = { 1, 2, 6, 4 }, w = { 2, 2, 3, 3 }, o = { padding = { 0, 1 } } },
    { note = "1x3, padding {2, 1}", x = { 2, 2, 3, 5 }, w = { 2, 2, 1, 3 }, o = { padding = { 2, 1 } } },
    { note = "3x3, padding 1, 2 groups", x = { 2, 4, 5, 5 }, w = { 6, 2, 3, 3 }, o = { padding = 1, groups = 2 } },
  }
  local function go(c, dtype, reference)
    local was = mg._set_reference_kernels(reference)
    local det = mg.are_deterministic_algorithms_enabled()
    mg.use_deterministic_algorithms(true)
    mg.manual_seed(11)
    local x = mg.randn(c.x, dtype):requires_grad()
    local w = mg.randn(c.w, dtype):requires_grad()
    local b = mg.randn({ c.w[1] }, dtype):requires_grad()
    local y = F.conv2d(x, w, b, c.o)
    y:backward(mg.randn(y:shape(), dtype))
    mg._set_reference_kernels(was)
    mg.use_deterministic_algorithms(det)
    return { y:detach():totable(), x.grad:totable(), w.grad:totable(), b.grad:totable() }
  end
  for _, c in ipairs(cases) do
    for _, dtype in ipairs({ "float32", "float64" }) do
      it("agree with the general kernels exactly: " .. c.note .. ", " .. dtype, function()
        local fast, general = go(c, dtype, false), go(c, dtype, true)
        for k, what in ipairs({ "output", "input grad", "weight grad", "bias grad" }) do
          local ok, err = pcall(approx.assert_close, fast[k], general[k], 0, 0)
          assert(ok, what .. ": " .. tostring(err))
        end
      end)
    end
  end
end)

describe("conv2d's bias gradient", function()
  it("is the gradient summed over batch and positions, also when only the bias needs it", function()
    mg.manual_seed(5)
    local x, w = mg.randn({ 3, 2, 5, 4 }, "float64"), mg.randn({ 4, 2, 3, 3 }, "float64")
    local g = mg.randn({ 3, 4, 5, 4 }, "float64")
    local want = g:sum(4):sum(3):sum(1):totable()
    for _, which in ipairs({ "bias alone", "all three" }) do
      local b = mg.randn({ 4 }, "float64"):requires_grad()
      local xi, wi = x, w
      if which == "all three" then xi, wi = x:clone():requires_grad(), w:clone():requires_grad() end
      F.conv2d(xi, wi, b, { padding = 1 }):backward(g)
      local ok, err = pcall(approx.assert_close, b.grad:totable(), want, 1e-12, 1e-12)
      assert(ok, which .. ": " .. tostring(err))
    end
  end)
end)
