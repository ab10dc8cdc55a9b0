-- 2-D pooling (F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d), batch
-- norm over [N, C, H, W], and the nn modules of convolutional networks:
-- values and gradients against PyTorch (spec/fixtures/gen_pool.py),
-- gradients against finite differences (mg.gradcheck), thread-count
-- independence, initialisation statistics and error messages.
local mg = require "moongrad"
local F = require "moongrad.functional"
local nn = require "moongrad.nn"
local approx = require "support.approx"
local ref = dofile("spec/fixtures/pool_ref.lua")

local function f64(t) return mg.tensor(t, "float64") end

local error_of = require("support.check").err_of

-- Runs fn(x, opts-like args) on the case in dtype dt; returns output, grad
-- of x, and whatever else fn returned.
local function run(c, dt, fn)
  local x = mg.tensor(c.x, dt):requires_grad()
  local y, extra = fn(x)
  y:backward(mg.tensor(c.g, dt))
  return y, x.grad, extra
end

local function pool_fn(name, c, extra_opts)
  local opts = {}
  for k, v in pairs(c.opts) do opts[k] = v end
  for k, v in pairs(extra_opts or {}) do opts[k] = v end
  return function(x) return F[name](x, c.kernel, opts) end
end

describe("max_pool2d", function()
  for _, c in ipairs(ref.max_pool2d) do
    it("matches PyTorch's values, indices and gradients in float64: " .. c.note, function()
      local y, gx, idx = run(c, "float64", pool_fn("max_pool2d", c, {return_indices = true}))
      approx.assert_close(y, c.out, 1e-10, 1e-10)
      approx.assert_values(idx, c.indices, "int64")
      approx.assert_close(gx, c.gx, 1e-10, 1e-10)
    end)
    it("matches PyTorch in float32: " .. c.note, function()
      local y, gx = run(c, "float32", pool_fn("max_pool2d", c))
      assert.equal("float32", y:dtype())
      approx.assert_close(y, c.out, 1e-6, 1e-5)
      approx.assert_close(gx, c.gx, 1e-5, 1e-5)
    end)
  end

  it("gives the index of the first maximum in a tie, as PyTorch does", function()
    local x = f64({{{{1, 3, 3}, {3, 2, 3}}}})
    local y, idx = F.max_pool2d(x, {2, 3}, {return_indices = true})
    approx.assert_values(y, {{{{3}}}})
    approx.assert_values(idx, {{{{2}}}}, "int64")
  end)

  it("propagates NaN and treats padding as -inf", function()
    local y = F.max_pool2d(f64({{{{-5, 0 / 0}, {-7, -6}}}}), 2, {stride = 1, padding = 1})
    local v = y:totable()[1][1]
    assert.equal(-5, v[1][1])
    assert.is_true(v[1][2] ~= v[1][2])
    assert.equal(-7, v[3][1])
    assert.equal(-6, v[3][3])
  end)

  it("accepts a non-contiguous input", function()
    local x = mg.randn({2, 3, 6, 5}, "float64")
    local xt = x:transpose(3, 4):contiguous():transpose(3, 4)
    approx.assert_close(F.max_pool2d(xt, 3, {stride = 2, padding = 1}),
                        F.max_pool2d(x, 3, {stride = 2, padding = 1}):totable(), 0, 0)
  end)
end)

describe("avg_pool2d", function()
  for _, c in ipairs(ref.avg_pool2d) do
    it("matches PyTorch's values and gradients in float64: " .. c.note, function()
      local y, gx = run(c, "float64", pool_fn("avg_pool2d", c))
      approx.assert_close(y, c.out, 1e-10, 1e-10)
      approx.assert_close(gx, c.gx, 1e-10, 1e-10)
    end)
    it("matches PyTorch in float32: " .. c.note, function()
      local y, gx = run(c, "float32", pool_fn("avg_pool2d", c))
      approx.assert_close(y, c.out, 1e-5, 1e-5)
      approx.assert_close(gx, c.gx, 1e-5, 1e-5)
    end)
  end
end)

describe("adaptive_avg_pool2d", function()
  for _, c in ipairs(ref.adaptive_avg_pool2d) do
    it("matches PyTorch's values and gradients in float64: " .. c.note, function()
      local y, gx = run(c, "float64", function(x) return F.adaptive_avg_pool2d(x, c.size) end)
      approx.assert_close(y, c.out, 1e-10, 1e-10)
      approx.assert_close(gx, c.gx, 1e-10, 1e-10)
    end)
    it("matches PyTorch in float32: " .. c.note, function()
      local y, gx = run(c, "float32", function(x) return F.adaptive_avg_pool2d(x, c.size) end)
      approx.assert_close(y, c.out, 1e-5, 1e-5)
      approx.assert_close(gx, c.gx, 1e-5, 1e-5)
    end)
  end
end)

describe("batch_norm over [N, C, H, W]", function()
  for _, c in ipairs(ref.batch_norm) do
    it("matches PyTorch's output, gradients and running statistics in " .. c.note, function()
      local x, w, b = f64(c.x):requires_grad(), f64(c.w):requires_grad(), f64(c.b):requires_grad()
      local rm, rv = f64(c.running_mean), f64(c.running_var)
      local y = F.batch_norm(x, rm, rv, w, b, {training = c.training, momentum = 0.1, eps = 1e-5})
      y:backward(f64(c.g))
      approx.assert_close(y, c.out, 1e-10, 1e-10)
      approx.assert_close(x.grad, c.gx, 1e-10, 1e-10)
      approx.assert_close(w.grad, c.gw, 1e-10, 1e-10)
      approx.assert_close(b.grad, c.gb, 1e-10, 1e-10)
      approx.assert_close(rm, c.running_mean_after, 1e-12, 1e-12)
      approx.assert_close(rv, c.running_var_after, 1e-12, 1e-12)
    end)
  end
end)

describe("pooling gradients", function()
  mg.manual_seed(7)
  local function r(...) return mg.randn({...}, "float64"):requires_grad() end
  local cases = {
    {"max_pool2d with padding, dilation and ceil_mode", function(x)
      return F.max_pool2d(x, {3, 2}, {stride = {2, 1}, padding = 1, dilation = {1, 2}, ceil_mode = true})
    end, r(2, 2, 5, 6)},
    {"max_pool2d with overlapping windows", function(x)
      return F.max_pool2d(x, 3, {stride = 1})
    end, r(1, 3, 5, 5)},
    {"avg_pool2d with count_include_pad false and ceil_mode", function(x)
      return F.avg_pool2d(x, 3, {stride = 2, padding = 1, ceil_mode = true, count_include_pad = false})
    end, r(2, 2, 6, 5)},
    {"avg_pool2d with padding counted", function(x)
      return F.avg_pool2d(x, {2, 3}, {stride = 1, padding = {1, 1}})
    end, r(1, 2, 4, 5)},
    {"adaptive_avg_pool2d", function(x) return F.adaptive_avg_pool2d(x, {3, 4}) end, r(2, 2, 7, 5)},
    {"batch_norm over [N, C, H, W]", function(x, w, b)
      return F.batch_norm(x, nil, nil, w, b)
    end, r(3, 2, 3, 2), r(2), r(2)},
  }
  for _, c in ipairs(cases) do
    it("pass gradcheck for " .. c[1], function()
      assert.is_true(mg.gradcheck(c[2], {table.unpack(c, 3)}))
    end)
  end
end)

describe("pooling on many planes", function()
  it("gives the same values and gradients on one thread as on several", function()
    local nt = mg.get_num_threads()
    local x = mg.randn({8, 16, 33, 31}, "float32")
    local g = mg.randn({8, 16, 17, 16}, "float32")
    local function go(threads)
      mg.set_num_threads(threads)
      local out = {}
      for _, f in ipairs({
        function(t) return F.max_pool2d(t, 3, {stride = 2, padding = 1}) end,
        function(t) return F.avg_pool2d(t, 3, {stride = 2, padding = 1}) end,
        function(t) return F.adaptive_avg_pool2d(t, {17, 16}) end,
      }) do
        local xi = x:clone():requires_grad()
        local y = f(xi)
        y:backward(g)
        out[#out + 1] = {y:totable(), xi.grad:totable()}
      end
      return out
    end
    local one, many = go(1), go(math.max(nt, 4))
    mg.set_num_threads(nt)
    for i = 1, #one do
      approx.assert_close(many[i][1], one[i][1], 0, 0)
      approx.assert_close(many[i][2], one[i][2], 0, 0)
    end
  end)
end)

describe("2x2 max pooling's fast kernel", function()
  -- The general kernel (mg._set_reference_kernels(true)) is the reference:
  -- values, indices and gradients must agree exactly, ties, NaN and -inf
  -- included, for odd and even sizes.
  local function pool(x, ref, opts)
    local was = mg._set_reference_kernels(ref)
    local xi = x:clone():requires_grad()
    local y, idx = F.max_pool2d(xi, 2, opts or {}), nil
    -- Leave a NaN-filled buffer of the gradient's size in the cache, so
    -- that a kernel that fails to write some element shows it.
    do local junk <close> = mg.full(x:shape(), 0 / 0, x:dtype()) end
    y:backward(mg.ones(y:shape(), x:dtype()) * mg.arange(y:numel(), x:dtype()):reshape(table.unpack(y:shape())))
    idx = select(2, F.max_pool2d(x, 2, {return_indices = true}))
    mg._set_reference_kernels(was)
    return y:totable(), xi.grad:totable(), idx and idx:totable()
  end

  for _, dtype in ipairs({"float32", "float64"}) do
    -- Widths give rows of 2, 6, 8 and 15 outputs: shorter than, a multiple
    -- of, and overlapping the float kernel's blocks of 4.
    for _, hw in ipairs({{9, 5}, {9, 12}, {6, 17}, {7, 30}}) do
    it(("agrees with the general kernel in %s on ties, NaN and -inf, %dx%d planes")
         :format(dtype, hw[1], hw[2]), function()
      mg.manual_seed(3)
      -- Rounded values make ties common; sprinkle NaN and -inf.
      local x = (mg.randn({3, 4, hw[1], hw[2]}, dtype) * 2):round()
      local flat = x:view(-1)
      for i = 1, flat:numel(), 17 do flat[i] = 0 / 0 end
      for i = 5, flat:numel(), 23 do flat[i] = -math.huge end
      local y1, g1, i1 = pool(x, false)
      local y2, g2, i2 = pool(x, true)
      approx.assert_close(y2, y1, 0, 0)
      approx.assert_close(g2, g1, 0, 0)
      if i1 then assert.same(i2, i1) end
    end)
    end
  end

  it("leaves ceil-mode windows that hang over the edge to the general kernel", function()
    local x = mg.arange(1, 50, "float64"):reshape(1, 7, 7)
    local y = F.max_pool2d(x, 2, {ceil_mode = true})
    assert.same({4, 4}, {y:size(2), y:size(3)})
    local t = y:totable()
    assert.equal(49, t[1][4][4])
    assert.equal(9, t[1][1][1])
  end)
end)

describe("pooling errors", function()
  local x = mg.randn({1, 2, 5, 5})
  it("refuses padding over half the kernel", function()
    assert.matches("max_pool2d: padding 2 must be at most half of kernel size 3",
                   error_of(F.max_pool2d, x, 3, {padding = 2}), 1, true)
    assert.matches("avg_pool2d: padding 2 must be at most half of kernel size 2",
                   error_of(F.avg_pool2d, x, {3, 2}, {padding = {1, 2}}), 1, true)
  end)
  it("names the shapes when the output would be empty", function()
    assert.matches("max_pool2d: input of shape [1,2,5,5] is too small: the output would " ..
                   "have shape [1,2,0,0]", error_of(F.max_pool2d, x, 3, {dilation = 3}), 1, true)
    assert.matches("avg_pool2d: input of shape [1,2,5,5] is too small",
                   error_of(F.avg_pool2d, x, 6), 1, true)
  end)
  it("refuses inputs that are not 3-D or 4-D", function()
    assert.matches("max_pool2d: expected a 3-D [C, H, W] or 4-D [N, C, H, W] input, got " ..
                   "shape [5,5]", error_of(F.max_pool2d, mg.randn({5, 5}), 2), 1, true)
    assert.matches("adaptive_avg_pool2d: expected a 3-D",
                   error_of(F.adaptive_avg_pool2d, mg.randn({1, 1, 1, 5, 5}), 2), 1, true)
  end)
  it("refuses bad sizes and options", function()
    assert.matches("max_pool2d: kernel_size must be an integer or a table {h, w} of integers, got 2.5",
                   error_of(F.max_pool2d, x, 2.5), 1, true)
    assert.matches("stride must be an integer or a table {h, w}",
                   error_of(F.avg_pool2d, x, 2, {stride = {1}}), 1, true)
    assert.matches("kernel size, stride and dilation must be positive",
                   error_of(F.max_pool2d, x, 2, {stride = 0}), 1, true)
    assert.matches("unknown option 'dilation'", error_of(F.avg_pool2d, x, 2, {dilation = 2}), 1, true)
    assert.matches("adaptive_avg_pool2d: output size must be positive, got [0,2]",
                   error_of(F.adaptive_avg_pool2d, x, {0, 2}), 1, true)
    assert.matches("max_pool2d: input must be a tensor, got nil", error_of(F.max_pool2d), 1, true)
  end)
end)

describe("nn.Conv2d", function()
  it("starts like PyTorch's: U(±1/sqrt(fan_in)) for weight and bias", function()
    mg.manual_seed(1)
    local c = nn.Conv2d(16, 32, 3, {groups = 2})
    assert.same({32, 8, 3, 3}, c.weight:shape())
    assert.same({32}, c.bias:shape())
    local bound = 1 / math.sqrt(8 * 3 * 3)
    local w = approx.flat(c.weight)
    local lo, hi, sum, sq = math.huge, -math.huge, 0, 0
    for _, v in ipairs(w) do
      lo, hi, sum, sq = math.min(lo, v), math.max(hi, v), sum + v, sq + v * v
    end
    assert.is_true(lo >= -bound and hi <= bound)
    assert.is_true(hi > 0.95 * bound and lo < -0.95 * bound)
    assert.near(0, sum / #w, 0.05 * bound)
    assert.near(bound / math.sqrt(3), math.sqrt(sq / #w), 0.05 * bound)
    for _, v in ipairs(approx.flat(c.bias)) do assert.is_true(math.abs(v) <= bound) end
    assert.equal(2, #c:parameters())
  end)

  it("takes per-dim sizes, drops the bias on request and prints its options", function()
    local c = nn.Conv2d(3, 4, {3, 5}, {stride = 2, padding = {1, 2}, bias = false, dtype = "float64"})
    assert.same({4, 3, 3, 5}, c.weight:shape())
    assert.is_nil(c.bias)
    assert.equal("float64", c.weight:dtype())
    assert.equal("Conv2d(3, 4, kernel_size={3, 5}, stride={2, 2}, padding={1, 2}, bias=false)" ..
                 "  -- 180 params", tostring(c))
    assert.equal("Conv2d(2, 2, kernel_size={3, 3}, stride={1, 1}, dilation={2, 2}, groups=2)" ..
                 "  -- 20 params", tostring(nn.Conv2d(2, 2, 3, {dilation = 2, groups = 2})))
  end)

  it("runs F.conv2d with its parameters and options", function()
    local c = nn.Conv2d(4, 6, 3, {stride = 2, padding = 1, groups = 2, dtype = "float64"})
    local x = mg.randn({2, 4, 9, 8}, "float64")
    local y = c(x)
    assert.same({2, 6, 5, 4}, y:shape())
    approx.assert_close(y, F.conv2d(x, c.weight, c.bias, {stride = 2, padding = 1, groups = 2}):totable(), 0, 0)
  end)

  it("refuses channels not divisible by groups and bad sizes", function()
    assert.matches("Conv2d: in_channels (3) and out_channels (4) must be divisible by groups (2)",
                   error_of(nn.Conv2d, 3, 4, 3, {groups = 2}), 1, true)
    assert.matches("Conv2d: kernel_size must be an integer >= 1 or a table {h, w} of them, got 0",
                   error_of(nn.Conv2d, 3, 4, 0), 1, true)
    assert.matches("Conv2d: unknown option 'pad'", error_of(nn.Conv2d, 3, 4, 3, {pad = 1}), 1, true)
    assert.matches("Conv2d: expected 4-D [N, 3, H, W] input, got shape [1,2,5,5]",
                   error_of(nn.Conv2d(3, 4, 3), mg.randn({1, 2, 5, 5})), 1, true)
  end)
end)

describe("nn pooling modules", function()
  local x = mg.randn({2, 3, 7, 6}, "float64")
  it("run the functional pools with their options", function()
    local m = nn.MaxPool2d(3, {stride = 2, padding = 1, ceil_mode = true})
    approx.assert_close(m(x), F.max_pool2d(x, 3, {stride = 2, padding = 1, ceil_mode = true}):totable(), 0, 0)
    local y, idx = nn.MaxPool2d(2, {return_indices = true})(x)
    assert.same({2, 3, 3, 3}, y:shape())
    assert.equal("int64", idx:dtype())
    local a = nn.AvgPool2d({3, 2}, {stride = 1, padding = 1, count_include_pad = false})
    approx.assert_close(a(x), F.avg_pool2d(x, {3, 2}, {stride = 1, padding = 1,
                                                      count_include_pad = false}):totable(), 0, 0)
    approx.assert_close(nn.AdaptiveAvgPool2d({1, 1})(x), x:mean(4, true):mean(3, true):totable(), 1e-12, 1e-12)
  end)

  it("print like PyTorch's, with sizes as {h, w}", function()
    assert.equal("MaxPool2d(kernel_size={2, 2}, stride={2, 2}, padding={0, 0}, dilation={1, 1}, " ..
                 "ceil_mode=false)", tostring(nn.MaxPool2d(2)))
    assert.equal("AvgPool2d(kernel_size={3, 3}, stride={2, 2}, padding={1, 1}, count_include_pad=false)",
                 tostring(nn.AvgPool2d(3, {stride = 2, padding = 1, count_include_pad = false})))
    assert.equal("AdaptiveAvgPool2d(output_size={1, 1})", tostring(nn.AdaptiveAvgPool2d(1)))
  end)

  it("refuse bad sizes when built", function()
    assert.matches("MaxPool2d: stride must be an integer >= 1", error_of(nn.MaxPool2d, 2, {stride = 0}), 1, true)
    assert.matches("AdaptiveAvgPool2d: output_size must be", error_of(nn.AdaptiveAvgPool2d, {2}), 1, true)
    assert.matches("AvgPool2d: unknown option 'dilation'", error_of(nn.AvgPool2d, 2, {dilation = 2}), 1, true)
  end)
end)

describe("nn.BatchNorm2d", function()
  local c = ref.batch_norm[1]

  it("normalises per channel over N, H, W and updates its running statistics", function()
    local bn = nn.BatchNorm2d(2, {dtype = "float64"})
    mg.no_grad(function()
      bn.weight:copy_(f64(c.w))
      bn.bias:copy_(f64(c.b))
      bn.running_mean:copy_(f64(c.running_mean))
      bn.running_var:copy_(f64(c.running_var))
    end)
    local x = f64(c.x):requires_grad()
    local y = bn(x)
    y:backward(f64(c.g))
    approx.assert_close(y, c.out, 1e-10, 1e-10)
    approx.assert_close(x.grad, c.gx, 1e-10, 1e-10)
    approx.assert_close(bn.weight.grad, c.gw, 1e-10, 1e-10)
    approx.assert_close(bn.running_mean, c.running_mean_after, 1e-12, 1e-12)
    approx.assert_close(bn.running_var, c.running_var_after, 1e-12, 1e-12)
    assert.equal(1, bn.num_batches_tracked:item())
    bn:eval()
    local e = ref.batch_norm[2]
    mg.no_grad(function()
      bn.weight:copy_(f64(e.w))
      bn.bias:copy_(f64(e.b))
      bn.running_mean:copy_(f64(e.running_mean))
      bn.running_var:copy_(f64(e.running_var))
    end)
    approx.assert_close(bn(f64(e.x)), e.out, 1e-10, 1e-10)
    approx.assert_close(bn.running_mean, e.running_mean, 0, 0)
  end)

  it("keeps BatchNorm1d's parameters, buffers and printing", function()
    local bn = nn.BatchNorm2d(4, {momentum = 0.2})
    assert.is_true(bn:is_a(nn.BatchNorm1d))
    assert.same({4}, bn.weight:shape())
    local keys = {}
    for k in pairs(bn:state_dict()) do keys[#keys + 1] = k end
    table.sort(keys)
    assert.same({"bias", "num_batches_tracked", "running_mean", "running_var", "weight"}, keys)
    assert.equal("BatchNorm2d(4, eps=1e-05, momentum=0.2, affine=true, track_running_stats=true)" ..
                 "  -- 8 params", tostring(bn))
  end)

  it("refuses inputs that are not [N, C, H, W] with its channel count", function()
    assert.matches("BatchNorm2d: expected 4-D [N, C, H, W] input, got shape [2,4]",
                   error_of(nn.BatchNorm2d(4), mg.randn({2, 4})), 1, true)
    assert.matches("BatchNorm2d: expected input with 4 features (dim 2), got 3",
                   error_of(nn.BatchNorm2d(4), mg.randn({2, 3, 2, 2})), 1, true)
    assert.matches("BatchNorm2d: num_features must be a positive integer",
                   error_of(nn.BatchNorm2d, 0), 1, true)
  end)
end)
