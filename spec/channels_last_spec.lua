-- Channels last: t:contiguous("channels_last") and the ops that keep that
-- layout (elementwise ops, float32 conv2d through oneDNN, batch norm),
-- each giving the numbers it gives in NCHW (which the PyTorch references
-- of the other specs check), conv2d also against PyTorch's own
-- (spec/fixtures/conv_ref.lua).
local mg = require "moongrad"
local F = require "moongrad.functional"
local nn = require "moongrad.nn"
local approx = require "support.approx"
local support = require "support.check"
local conv_ref = dofile("spec/fixtures/conv_ref.lua")

local function check(got, want, tol, what)
  if mg.is_tensor(want) then want = want:totable() end
  local ok, err = pcall(approx.assert_close, got, want, tol, tol)
  if not ok then error((what or "value") .. ": " .. tostring(err), 2) end
end

local function cl(t) return t:contiguous("channels_last") end

local function strides(t) return table.concat(t:stride(), ",") end

-- got holds want's numbers exactly, NaN where want has NaN.
local function same_bits(got, want, what)
  local g, w = approx.flat(got), approx.flat(want)
  assert.are.equal(#w, #g, what)
  for i = 1, #w do
    if w[i] ~= w[i] then assert(g[i] ~= g[i], what .. ": element " .. i .. " should be NaN")
    else assert(g[i] == w[i], ("%s: element %d is %s, not %s"):format(what, i, g[i], w[i])) end
  end
end

describe("t:contiguous(\"channels_last\")", function()
  it("lays a [N, C, H, W] tensor out N, H, W, C, values unchanged", function()
    local x = mg.arange(1, 2 * 3 * 4 * 5 + 1):reshape(2, 3, 4, 5)
    local c = cl(x)
    assert.are.equal("60,1,15,3", strides(c))
    assert.is_true(c:is_contiguous("channels_last"))
    assert.is_false(c:is_contiguous())
    assert.is_false(x:is_contiguous("channels_last"))
    assert.is_true(x:is_contiguous("contiguous_format"))
    assert.are.same(x:totable(), c:totable())
    assert.are.same(x:totable(), c:contiguous():totable())
  end)

  it("returns the tensor itself when it already is laid out so", function()
    local c = cl(mg.randn(2, 3, 4, 5))
    assert.is_true(rawequal(c, c:contiguous("channels_last")))
  end)

  it("passes gradients back to an NCHW tensor", function()
    local x = mg.randn(2, 3, 4, 5, "float64"):requires_grad()
    local g = mg.randn(2, 3, 4, 5, "float64")
    cl(x):backward(g)
    check(x.grad, g, 0, "gradient")
  end)

  it("answers no, as PyTorch does, when asked of a tensor that is not 4-D", function()
    assert.is_false(mg.randn(2, 3):is_contiguous("channels_last"))
  end)

  it("raises a clear error on a tensor that is not 4-D or an unknown format", function()
    local ok, err = pcall(function() return mg.randn(2, 3):contiguous("channels_last") end)
    assert.is_false(ok)
    assert.matches("contiguous: channels_last is for 4-D [N, C, H, W] tensors, got shape [2,3]",
                   err, 1, true)
    ok, err = pcall(function() return mg.randn(2, 3, 4, 5):is_contiguous("nhwc") end)
    assert.is_false(ok)
    assert.matches('is_contiguous: memory format must be "contiguous_format" or ' ..
                   '"channels_last", got nhwc', err, 1, true)
  end)
end)

describe("elementwise ops on channels-last tensors", function()
  it("keep the layout and the values, for one, two and broadcast operands", function()
    mg.manual_seed(1)
    local a, b = mg.randn(2, 6, 5, 7), mg.randn(2, 6, 5, 7)
    local bias = mg.randn(6, 1, 1)
    local ca, cb = cl(a), cl(b)
    local cases = {
      {"relu", mg.relu(ca), mg.relu(a)},
      {"add", ca + cb, a + b},
      {"sub with an NCHW operand", ca - b, a - b},
      {"mul by a broadcast bias", ca * bias, a * bias},
      {"times a number", ca * 3, a * 3},
      {"exp", ca:exp(), a:exp()},
      {"where", mg.where(ca:gt(0), ca, cb), mg.where(a:gt(0), a, b)},
    }
    for _, c in ipairs(cases) do
      assert.is_true(c[2]:is_contiguous("channels_last"), c[1] .. " keeps channels last")
      check(c[2], c[3], 0, c[1])
    end
  end)

  it("keep it on more than one thread too (a tensor large enough to split)", function()
    mg.manual_seed(2)
    local a = mg.randn(8, 16, 32, 32)
    local y = support.on_threads(2, function() return mg.relu(cl(a)) + 1 end)
    assert.is_true(y:is_contiguous("channels_last"))
    check(y, mg.relu(a) + 1, 0, "values")
  end)

  it("leave a transposed matrix's results row-major, as they always were", function()
    local t = mg.randn(3, 4):t()
    assert.is_true((t * 2):is_contiguous())
    assert.is_true((t + t):is_contiguous())
  end)

  it("back-propagate through relu and add in the same layout", function()
    mg.manual_seed(3)
    local x = mg.randn(2, 4, 3, 3, "float64")
    local g = mg.randn(2, 4, 3, 3, "float64")
    local a = x:detach():requires_grad()
    ;(mg.relu(a) * a + a):backward(g)
    local b = cl(x):detach():requires_grad()
    ;(mg.relu(b) * b + b):backward(cl(g))
    check(b.grad, a.grad, 1e-15, "gradient")
  end)
end)

describe("float32 conv2d on a channels-last input", function()
  local runs_during = support.conv_runs_during

  for _, c in ipairs(conv_ref) do
    it("matches PyTorch with " .. c.name .. ", its output and input gradient channels last",
       function()
      local runs, y, x, w, b = runs_during(function()
        local x = cl(mg.tensor(c.x, "float32")):detach():requires_grad()
        local w = mg.tensor(c.w, "float32"):requires_grad()
        local b = c.b and mg.tensor(c.b, "float32"):requires_grad() or nil
        local y = F.conv2d(x, w, b, c.opts)
        y:backward(cl(mg.tensor(c.g, "float32")))
        return y, x, w, b
      end)
      assert.are.same({1, 1, 1}, runs)
      -- With one channel both layouts are the same memory: the input
      -- counts as contiguous, and so does the output.
      if not x:is_contiguous() then
        assert.is_true(y:is_contiguous("channels_last"), "output channels last")
      end
      check(y, c.y, 1e-4, "output")
      check(x.grad, c.gx, 1e-4, "input gradient")
      check(w.grad, c.gw, 1e-4, "weight gradient")
      if b then check(b.grad, c.gb, 1e-4, "bias gradient") end
    end)
  end

  it("reads an NCHW output gradient too", function()
    mg.manual_seed(4)
    local x, w = mg.randn(2, 16, 8, 8), mg.randn(16, 16, 3, 3)
    local g = mg.randn(2, 16, 8, 8)
    local a = x:detach():requires_grad()
    F.conv2d(a, w, nil, {padding = 1}):backward(g)
    local b = cl(x):detach():requires_grad()
    F.conv2d(b, w, nil, {padding = 1}):backward(g)
    check(b.grad, a.grad, 1e-4, "input gradient")
  end)

  it("falls back to contiguous maths where oneDNN does not run (float64)", function()
    mg.manual_seed(5)
    local x, w = mg.randn(2, 3, 6, 6, "float64"), mg.randn(4, 3, 3, 3, "float64")
    local a = x:detach():requires_grad()
    local ya = F.conv2d(a, w, nil, {stride = 2})
    ya:sum():backward()
    local b = cl(x):detach():requires_grad()
    local yb = F.conv2d(b, w, nil, {stride = 2})
    yb:sum():backward()
    check(yb, ya, 1e-12, "output")
    check(b.grad, a.grad, 1e-12, "input gradient")
  end)
end)

describe("batch norm on a channels-last input", function()
  for _, dt in ipairs({"float32", "float64"}) do
    for _, training in ipairs({true, false}) do
      it(("gives the NCHW numbers in %s, %s, and a channels-last result"):format(
         dt, training and "training" or "eval"), function()
        mg.manual_seed(6)
        local x = mg.randn(4, 6, 5, 7, dt) * 3 + 2
        local g = mg.randn(4, 6, 5, 7, dt)
        local w, b = mg.randn(6, dt), mg.randn(6, dt)
        local function run(input, grad)
          local xr = input:detach():requires_grad()
          local wr, br = w:detach():requires_grad(), b:detach():requires_grad()
          local rm, rv = mg.zeros(6, dt) + 0.5, mg.ones(6, dt) * 2
          local y = F.batch_norm(xr, rm, rv, wr, br, {training = training})
          y:backward(grad)
          return y, xr.grad, wr.grad, br.grad, rm, rv
        end
        local want = {run(x, g)}
        local got = {run(cl(x), cl(g))}
        assert.is_true(got[1]:is_contiguous("channels_last"), "output channels last")
        local tol = dt == "float32" and 1e-5 or 1e-12
        local names = {"output", "input gradient", "weight gradient", "bias gradient",
                       "running mean", "running variance"}
        for k = 1, 6 do check(got[k], want[k], tol, names[k]) end
        -- An NCHW output gradient (from an op that does not keep the
        -- layout) gives the same input gradient.
        local mixed = {run(cl(x), g)}
        check(mixed[2], want[2], tol, "input gradient from an NCHW output gradient")
      end)
    end
  end

  it("gives every channel mean 0 and variance 1 in training", function()
    mg.manual_seed(7)
    local y = F.batch_norm(cl(mg.randn(8, 5, 6, 6, "float64") * 4 - 3), nil, nil, nil, nil,
                           {training = true})
    local per_channel = y:permute(2, 1, 3, 4):reshape(5, -1)
    local m = per_channel:mean(2)
    local v = (per_channel * per_channel):mean(2)
    check(m, mg.zeros(5, "float64"), 1e-12, "means")
    check(v, mg.ones(5, "float64"), 1e-4, "variances")  -- eps 1e-5 in the denominator
  end)

  it("gives the same bits on one thread and on two", function()
    mg.manual_seed(8)
    local x = cl(mg.randn(16, 8, 32, 32))
    local g = cl(mg.randn(16, 8, 32, 32))
    local function run(threads)
      return support.on_threads(threads, function()
        local xr = x:detach():requires_grad()
        local y = F.batch_norm(xr, nil, nil, nil, nil, {training = true})
        y:backward(g)
        return y, xr.grad
      end)
    end
    local y1, g1 = run(1)
    local y2, g2 = run(2)
    check(y2, y1, 0, "output")
    check(g2, g1, 0, "input gradient")
  end)
end)

describe("pooling on a channels-last input", function()
  local pool_ref = dofile("spec/fixtures/pool_ref.lua")
  -- The fixtures' 4-D inputs, laid out channels last; 3-D ones and single
  -- channels have nothing to lay out.
  local function cases(list)
    local out = {}
    for _, c in ipairs(list) do
      local x = mg.tensor(c.x, "float64")
      if x:dim() == 4 and x:size(2) > 1 then out[#out + 1] = c end
    end
    return out
  end
  local function opts_of(c, extra)
    local o = {}
    for k, v in pairs(c.opts or {}) do o[k] = v end
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
  local function run(c, f)
    local x = cl(mg.tensor(c.x, "float64")):detach():requires_grad()
    local y, extra = f(x)
    y:backward(cl(mg.tensor(c.g, "float64")))
    return y, x.grad, extra
  end

  for _, c in ipairs(cases(pool_ref.max_pool2d)) do
    it("max_pool2d matches PyTorch's values, indices and gradients: " .. c.note, function()
      local y, gx, idx = run(c, function(x)
        return F.max_pool2d(x, c.kernel, opts_of(c, {return_indices = true}))
      end)
      assert.is_true(y:is_contiguous("channels_last"), "output channels last")
      assert.is_true(idx:is_contiguous("channels_last"), "indices channels last")
      check(y, c.out, 1e-10, "output")
      approx.assert_values(idx, c.indices, "int64")
      check(gx, c.gx, 1e-10, "input gradient")
    end)
  end
  for _, c in ipairs(cases(pool_ref.avg_pool2d)) do
    it("avg_pool2d matches PyTorch's values and gradients: " .. c.note, function()
      local y, gx = run(c, function(x) return F.avg_pool2d(x, c.kernel, opts_of(c)) end)
      assert.is_true(y:is_contiguous("channels_last"), "output channels last")
      check(y, c.out, 1e-10, "output")
      check(gx, c.gx, 1e-10, "input gradient")
    end)
  end

  it("gives the NCHW bits, NaN windows included, for max, avg and adaptive pools", function()
    mg.manual_seed(11)
    local x = mg.randn(3, 5, 9, 11)
    x[1][2][3][4] = 0 / 0
    local fns = {
      function(t) return F.max_pool2d(t, 3, {stride = 2, padding = 1, dilation = 2, ceil_mode = true}) end,
      function(t) return F.avg_pool2d(t, 3, {stride = 2, padding = 1, count_include_pad = false}) end,
      function(t) return F.adaptive_avg_pool2d(t, {4, 3}) end,
    }
    for k, f in ipairs(fns) do
      local a = x:detach():requires_grad()
      local ya = f(a)
      local g = mg.randn(ya:shape())
      ya:backward(g)
      local b = cl(x):detach():requires_grad()
      local yb = f(b)
      yb:backward(cl(g))
      same_bits(yb, ya, "pool " .. k .. " output")
      same_bits(b.grad, a.grad, "pool " .. k .. " gradient")
    end
  end)
end)

describe("a residual block on channels-last input", function()
  it("trains as it does in NCHW: the same loss and parameter gradients", function()
    mg.manual_seed(9)
    local function block()
      mg.manual_seed(10)
      return nn.Sequential(nn.Conv2d(8, 8, 3, {padding = 1, bias = false}), nn.BatchNorm2d(8),
                           nn.ReLU(), nn.Conv2d(8, 8, 3, {padding = 1, bias = false}),
                           nn.BatchNorm2d(8))
    end
    local x = mg.randn(4, 8, 10, 10)
    local function run(input)
      local m = block()
      local y = mg.relu(m(input) + input)
      local loss = (y * y):mean()
      loss:backward()
      local grads = {}
      for name, p in m:named_parameters() do grads[name] = p.grad end
      return loss:item(), grads, y
    end
    local l1, g1 = run(x)
    local l2, g2, y2 = run(cl(x))
    assert.is_true(y2:is_contiguous("channels_last"), "the block's output stays channels last")
    assert.is_true(math.abs(l1 - l2) < 1e-5 * math.abs(l1))
    for name, g in pairs(g1) do check(g2[name], g, 1e-3, name) end
  end)
end)
