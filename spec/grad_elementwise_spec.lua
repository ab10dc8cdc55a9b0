-- Gradients of the elementwise ops and matmul: values against PyTorch
-- (spec/fixtures/gen_grad_elementwise.py) and finite differences
-- (mg.gradcheck) on random inputs.
local mg = require "moongrad"
local ref = dofile("spec/fixtures/grad_elementwise_ref.lua")

local function f64(t) return mg.tensor(t, "float64") end

local function close(expected, t, tol, what)
  local got = type(t) == "number" and t or t:totable()
  local function walk(e, g, path)
    if type(e) == "table" then
      for i = 1, #e do walk(e[i], g[i], path .. "[" .. i .. "]") end
    else
      assert(math.abs(e - g) <= tol * (1 + math.abs(e)),
             ("%s%s: expected %.17g, got %.17g"):format(what or "", path, e, g))
    end
  end
  walk(expected, got, "")
end

local unary_call = {
  neg = function(x) return -x end,
}
local binary_call = {
  add = function(x, y) return x + y end, sub = function(x, y) return x - y end,
  mul = function(x, y) return x * y end, div = function(x, y) return x / y end,
  pow = function(x, y) return x ^ y end,
}
local scalar_call = {
  mul = function(x, s, rev) return rev and s * x or x * s end,
  div = function(x, s, rev) return rev and s / x or x / s end,
  pow = function(x, s, rev) return rev and s ^ x or x ^ s end,
  sub = function(x, s, rev) return rev and s - x or x - s end,
  maximum = function(x, s) return x:maximum(s) end,
}

describe("elementwise gradients match PyTorch", function()
  for _, c in ipairs(ref.unary) do
    it("for " .. c.name, function()
      local x = f64(c.x):requires_grad()
      local y = (unary_call[c.name] or function(t) return t[c.name](t) end)(x)
      close(c.out, y, 1e-12, "out")
      y:backward(f64(ref.G))
      close(c.gx, x.grad, 1e-12, "grad")
    end)
  end

  for _, c in ipairs(ref.binary) do
    it(("for %s with a %s right operand"):format(c.name, c.shape), function()
      local x, y = f64(c.x):requires_grad(), f64(c.y):requires_grad()
      local z = (binary_call[c.name] or function(a, b) return a[c.name](a, b) end)(x, y)
      close(c.out, z, 1e-12, "out")
      z:backward(f64(ref.G))
      close(c.gx, x.grad, 1e-12, "grad x")
      close(c.gy, y.grad, 1e-12, "grad y")
    end)
  end

  for _, c in ipairs(ref.scalar) do
    it(("for %s with the scalar %g %s"):format(c.name, c.s, c.reversed and "on the left" or "on the right"), function()
      local x = f64(c.x):requires_grad()
      local z = scalar_call[c.name](x, c.s, c.reversed)
      close(c.out, z, 1e-12, "out")
      z:backward(f64(ref.G))
      close(c.gx, x.grad, 1e-12, "grad")
    end)
  end

  for _, c in ipairs(ref.clamp) do
    it(("for clamp(%s, %s)"):format(tostring(c.min), tostring(c.max)), function()
      local x = f64(c.x):requires_grad()
      local z = x:clamp(c.min, c.max)
      close(c.out, z, 1e-12, "out")
      z:backward(f64(ref.G))
      close(c.gx, x.grad, 1e-12, "grad")
    end)
  end

  for _, c in ipairs(ref.matmul) do
    it("for matmul (" .. c.name .. ")", function()
      local a, b = f64(c.a):requires_grad(), f64(c.b):requires_grad()
      local z = a:matmul(b)
      close(c.out, type(c.out) == "number" and z:item() or z, 1e-12, "out")
      z:backward(f64(c.g))
      close(c.ga, a.grad, 1e-12, "grad a")
      close(c.gb, b.grad, 1e-12, "grad b")
    end)
  end
end)

describe("elementwise gradients pass gradcheck", function()
  local function randn(...) return mg.randn(...):double() end
  before_each(function() mg.manual_seed(7) end)

  local smooth_unary = { "neg", "square", "exp", "tanh", "sigmoid", "sin", "cos", "expm1" }
  for _, name in ipairs(smooth_unary) do
    it("for " .. name, function()
      local x = randn(3, 4):requires_grad()
      assert.is_true(mg.gradcheck(function(t) return t[name](t) end, x))
    end)
  end

  it("for ops defined on positive numbers", function()
    local x = (mg.rand(3, 4):double() + 0.5):requires_grad()
    for _, name in ipairs { "sqrt", "rsqrt", "log", "log1p", "reciprocal" } do
      assert.is_true(mg.gradcheck(function(t) return t[name](t) end, x), name)
    end
  end)

  it("for ops with kinks, away from the kink", function()
    local x = f64({ { -1.5, -0.3, 0.4, 2 }, { 0.9, -2.2, 1.1, -0.7 } }):requires_grad()
    assert.is_true(mg.gradcheck(function(t) return t:abs() + t:relu() * 3 end, x))
    assert.is_true(mg.gradcheck(function(t) return t:clamp(-1, 1) end, x))
  end)

  it("for binary ops with broadcasting on both sides", function()
    local a = randn(3, 1):requires_grad()
    local b = randn(1, 4):requires_grad()
    assert.is_true(mg.gradcheck(function(p, q) return p * q + p - q / (q * q + 1) end, { a, b }))
    assert.is_true(mg.gradcheck(function(p, q) return p:atan2(q) end, { a, b }))
    local pos = (mg.rand(3, 1):double() + 0.5):requires_grad()
    assert.is_true(mg.gradcheck(function(p, q) return p ^ q end, { pos, b }))
  end)

  it("for matmul in all its shapes", function()
    local cases = {
      { { 3 }, { 3 } }, { { 2, 3 }, { 3 } }, { { 3 }, { 3, 4 } }, { { 2, 3 }, { 3, 4 } },
      { { 5, 2, 3 }, { 3, 4 } }, { { 2, 3 }, { 5, 3, 4 } }, { { 2, 1, 2, 3 }, { 4, 3, 2 } },
    }
    for _, c in ipairs(cases) do
      local a, b = randn(c[1]):requires_grad(), randn(c[2]):requires_grad()
      assert.is_true(mg.gradcheck(function(p, q) return p:matmul(q) end, { a, b }))
    end
  end)

  it("for a transposed matmul operand", function()
    local a = randn(3, 2):requires_grad()
    local b = randn(3, 4):requires_grad()
    assert.is_true(mg.gradcheck(function(p, q) return p:t():matmul(q) end, { a, b }))
  end)

  it("for where, choosing between two differentiable tensors", function()
    local a, b = randn(2, 3):requires_grad(), randn(3):requires_grad()
    local cond = f64({ { 1, 0, 1 }, { 0, 0, 1 } })
    assert.is_true(mg.gradcheck(function(p, q) return mg.where(cond, p, q) end, { a, b }))
  end)
end)

describe("the fused gradients of relu, exp, tanh and sigmoid", function()
  local slope = {
    relu = function(y) return y <= 0 and 0 or 1 end,
    exp = function(y) return y end,
    tanh = function(y) return 1 - y * y end,
    sigmoid = function(y) return y * (1 - y) end,
  }
  for name, f in pairs(slope) do
    it("compute g·f'(y) for " .. name .. " in float32, with a non-contiguous gradient", function()
      local x = mg.tensor({ { -2, -0.5, 0, 0.25 }, { 0.75, 1.5, -3, 4 }, { 0.1, -0.1, 2.5, -1 } }, "float32")
        :requires_grad()
      local y = x[name](x)
      local g = mg.tensor({ { 1, 2, 3 }, { -1, 0.5, 4 }, { 2, -2, 1 }, { 0.25, 3, -1 } }, "float32"):t()
      assert.is_false(g:is_contiguous())
      y:backward(g)
      local yt, gt, dx = y:detach():totable(), g:totable(), x.grad:totable()
      for i = 1, 3 do
        for j = 1, 4 do
          local want = gt[i][j] * f(yt[i][j])
          assert(math.abs(dx[i][j] - want) <= 1e-6 * (1 + math.abs(want)),
                 ("%s: grad[%d][%d] = %.9g, expected %.9g"):format(name, i, j, dx[i][j], want))
        end
      end
    end)
  end

  it("let relu's gradient through where the output is NaN, as PyTorch's threshold_backward does", function()
    local x = mg.tensor({ 0 / 0, -1, 2, 0 }, "float64"):requires_grad()
    x:relu():backward(mg.tensor({ 5, 5, 5, 5 }, "float64"))
    assert.same({ 5, 0, 5, 0 }, x.grad:totable())
  end)
end)
