-- The autograd engine's behaviour, independent of any one op's formula.
-- Expected gradients are derived by hand in the comments.
local mg = require "moongrad"

local function f64(t) return mg.tensor(t, "float64") end

local function close(expected, t, tol)
  local got = t:totable()
  local function walk(e, g, path)
    if type(e) == "table" then
      assert.are.equal(#e, #g, "length at " .. path)
      for i = 1, #e do walk(e[i], g[i], path .. "[" .. i .. "]") end
    else
      assert(math.abs(e - g) <= (tol or 1e-12), ("%s: expected %.17g, got %.17g"):format(path, e, g))
    end
  end
  walk(expected, got, "")
end

local err_of = require("support.check").err_of

describe("autograd", function()
  describe("leaves", function()
    it("marks a leaf with requires_grad() and returns it", function()
      local x = f64 { 1, 2 }
      assert.are.equal(x, x:requires_grad())
      assert.is_true(x:is_requires_grad())
      assert.is_true(x:is_leaf())
      assert.is_nil(x:grad_fn())
      x:requires_grad(false)
      assert.is_false(x:is_requires_grad())
    end)

    it("refuses requires_grad on int64 tensors and on results", function()
      assert.matches("requires_grad: only float32 and float64 tensors can require grad",
                     err_of(function() mg.arange(3):requires_grad() end))
      local y = f64 { 1 }:requires_grad() * 2
      assert.matches("requires_grad: only a leaf tensor's flag can be changed; this one was computed by mul",
                     err_of(function() y:requires_grad(false) end))
    end)

    it("names the op that made a result", function()
      local x = f64 { 1 }:requires_grad()
      assert.are.equal("exp", x:exp():grad_fn())
      assert.are.equal("add", (x + x):grad_fn())
      assert.is_false((x + x):is_leaf())
    end)
  end)

  describe("backward", function()
    it("gives d/dx of 3x² + eˣ as 6x + eˣ", function()
      local x = f64 { 0.5, -1 }:requires_grad()
      local y = x * x * 3 + x:exp()
      y:backward(f64 { 1, 1 })
      close({ 3 + math.exp(0.5), -6 + math.exp(-1) }, x.grad)
    end)

    it("adds up the gradients of a tensor used twice", function()
      -- y = x·x + x: dy/dx = 2x + 1
      local x = f64 { 2, -3 }:requires_grad()
      ;(x * x + x):backward(f64 { 1, 1 })
      close({ 5, -5 }, x.grad)
    end)

    it("accumulates into .grad across backward calls until it is cleared", function()
      local x = f64 { 1, 2 }:requires_grad()
      ;(x * 3):backward(f64 { 1, 1 })
      ;(x * 3):backward(f64 { 1, 1 })
      close({ 6, 6 }, x.grad)
      x.grad = nil
      assert.is_nil(x.grad)
      ;(x * 3):backward(f64 { 1, 1 })
      close({ 3, 3 }, x.grad)
    end)

    it("scales by the gradient passed in", function()
      local x = f64 { 1, 2 }:requires_grad()
      ;(x * 5):backward(f64 { 0.5, -2 })
      close({ 2.5, -10 }, x.grad)
    end)

    it("reduces gradients of broadcast operands back to their shapes", function()
      -- y[i][j] = a[i] * b[j]; dL/da[i] = sum_j b[j], dL/db[j] = sum_i a[i]
      local a = f64 { { 1 }, { 2 }, { 3 } }:requires_grad()
      local b = f64 { { 10, 20, 30, 40 } }:requires_grad()
      ;(a * b):backward(mg.ones(3, 4, "float64"))
      close({ { 100 }, { 100 }, { 100 } }, a.grad)
      close({ { 6, 6, 6, 6 } }, b.grad)
      -- a scalar-like [1] operand against a matrix
      local s = f64 { 2 }:requires_grad()
      ;(s * mg.ones(2, 3, "float64")):backward(mg.ones(2, 3, "float64"))
      close({ 6 }, s.grad)
    end)

    it("gives each input a gradient of its own dtype", function()
      local a = mg.tensor({ 1, 2 }, "float32"):requires_grad()
      local b = f64 { 3, 4 }:requires_grad()
      local y = a * b
      assert.are.equal("float64", y:dtype())
      y:backward(f64 { 1, 1 })
      assert.are.equal("float32", a.grad:dtype())
      assert.are.equal("float64", b.grad:dtype())
      close({ 3, 4 }, a.grad)
      close({ 1, 2 }, b.grad)
    end)

    it("flows through matmul to both operands", function()
      -- y = A·B with dL/dy = ones: dA = ones·Bᵀ (row sums of B), dB = Aᵀ·ones
      local A = f64 { { 1, 2 }, { 3, 4 } }:requires_grad()
      local B = f64 { { 5, 6 }, { 7, 8 } }:requires_grad()
      A:matmul(B):backward(mg.ones(2, 2, "float64"))
      close({ { 11, 15 }, { 11, 15 } }, A.grad)
      close({ { 4, 4 }, { 6, 6 } }, B.grad)
    end)

    it("treats a scalar operand as a constant", function()
      -- y = 2/x + x^3 - 1: dy/dx = -2/x² + 3x²
      local x = f64 { 2 }:requires_grad()
      ;(2 / x + x ^ 3 - 1):backward(f64 { 1 })
      close({ -0.5 + 12 }, x.grad)
    end)

    it("needs a gradient for a tensor with more than one element", function()
      local x = f64 { 1, 2 }:requires_grad()
      assert.matches("backward: a gradient can be implied only for a one%-element tensor, this one has shape %[2%]",
                     err_of(function() (x * 2):backward() end))
      assert.matches("backward: a gradient of shape %[3%] does not fit the tensor's shape %[2%]",
                     err_of(function() (x * 2):backward(f64 { 1, 2, 3 }) end))
    end)

    it("implies a gradient of one for a one-element result", function()
      local x = f64 { 3 }:requires_grad()
      ;(x * x):backward()
      close({ 6 }, x.grad)
    end)

    it("refuses a tensor that does not require grad", function()
      assert.matches("backward: the tensor does not require grad",
                     err_of(function() f64 { 1 }:backward() end))
    end)

    it("frees the graph unless retain_graph is given", function()
      local x = f64 { 1, 2 }:requires_grad()
      local y = x:exp()
      y:backward(f64 { 1, 1 }, { retain_graph = true })
      y:backward(f64 { 1, 1 })
      close({ 2 * math.exp(1), 2 * math.exp(2) }, x.grad)
      assert.matches("backward: trying to go through the graph a second time %(at exp%)",
                     err_of(function() y:backward(f64 { 1, 1 }) end))
    end)

    it("rejects unknown options", function()
      local x = f64 { 1 }:requires_grad()
      assert.matches("backward: unknown option 'retain'",
                     err_of(function() (x * 2):backward(nil, { retain = true }) end))
    end)

    it("survives a graph ten thousand ops deep", function()
      local x = f64 { 1 }:requires_grad()
      local y = x
      for _ = 1, 10000 do y = y * 1.0001 end
      y:backward()
      close({ 1.0001 ^ 10000 }, x.grad, 1e-9)
    end)

    it("releases the graph's tensors once nothing refers to it", function()
      collectgarbage()
      collectgarbage()
      local before = mg.memory().tensor_bytes
      do
        local x = mg.randn(256, 256, "float64"):requires_grad()
        local y = ((x * 2):exp() + x):tanh()
        y:backward(mg.ones(256, 256, "float64"))
        x, y = nil, nil
      end
      collectgarbage()
      collectgarbage()
      assert.are.equal(before, mg.memory().tensor_bytes)
    end)

    -- The engine adds a narrow's or select's gradient into its input's
    -- gradient in place when that one is its own, and sums other meeting
    -- gradients in place too; these cases would see a shared sum corrupted.
    it("sums gradients that meet at windows of one tensor, in either order", function()
      -- y = 2x; L = 10 sum(y[1..2]) + sum(y) + 100 y[4]: dL/dy = {11, 11, 1, 101}
      for _, window_first in ipairs { true, false } do
        local x = f64 { 1, 2, 3, 4 }:requires_grad()
        local y = x * 2
        local a, b = y:narrow(1, 1, 2):sum() * 10, y:sum()
        local c = y:select(1, 4) * 100
        local loss = window_first and (a + c) + b or b + (a + c)
        loss:backward()
        close({ 22, 22, 2, 202 }, x.grad)
      end
    end)

    it("keeps a gradient two inputs share apart from what meets one of them later", function()
      -- y + w sends one gradient to both y and w; windows of each add more:
      -- dL/dy = {11, 1, 1}, dL/dw = {1, 1, 101};
      -- x.grad = 2 dL/dy + 3 dL/dw = {25, 5, 305}
      for _, windows_first in ipairs { true, false } do
        local x = f64 { 1, 2, 3 }:requires_grad()
        local y, w = x * 2, x * 3
        -- (the product makes the shared gradient an ordinary dense tensor)
        local s = ((y + w) * f64 { 1, 1, 1 }):sum()
        local win = y:narrow(1, 1, 1):sum() * 10 + w:narrow(1, 3, 1):sum() * 100
        local loss = windows_first and win + s or s + win
        loss:backward()
        close({ 25, 5, 305 }, x.grad)
      end
    end)

    it("adds a window's gradient into a channels-last gradient's same elements", function()
      -- y = 3x on [1, 2, 2, 2] channels last; L = sum(y) + 5 sum(y[:, 2]):
      -- dL/dx = 3 (1 + 5 [channel 2])
      local x = mg.arange(8, "float64"):reshape(1, 2, 2, 2):contiguous("channels_last")
      x:requires_grad()
      local y = x * 3
      local loss = y:sum() + y:select(2, 2):sum() * 5
      loss:backward()
      close({ { { { 3, 3 }, { 3, 3 } }, { { 18, 18 }, { 18, 18 } } } }, x.grad)
    end)
  end)

  describe("grad mode", function()
    it("records nothing inside no_grad and returns fn's results", function()
      local x = f64 { 1 }:requires_grad()
      local y, z = mg.no_grad(function(a) return a * 2, "second" end, x)
      assert.is_false(y:is_requires_grad())
      assert.are.equal("second", z)
      assert.is_true(mg.is_grad_enabled())
    end)

    it("restores grad mode when fn raises", function()
      assert.has_error(function() mg.no_grad(function() error("boom") end) end)
      assert.is_true(mg.is_grad_enabled())
    end)

    it("records again inside enable_grad within no_grad", function()
      local x = f64 { 1 }:requires_grad()
      local y = mg.no_grad(function()
        return mg.enable_grad(function() return x * 2 end)
      end)
      assert.is_true(y:is_requires_grad())
    end)

    it("switches with set_grad_enabled, returning the previous mode", function()
      assert.is_true(mg.set_grad_enabled(false))
      local y = f64 { 1 }:requires_grad() * 2
      assert.is_false(mg.set_grad_enabled(true))
      assert.is_false(y:is_requires_grad())
    end)
  end)

  describe("detach", function()
    it("shares storage but leaves the graph", function()
      local x = f64 { 1, 2 }:requires_grad()
      local d = (x * 2):detach()
      assert.is_false(d:is_requires_grad())
      assert.is_true(d:is_leaf())
      local e = x:detach()
      assert.is_true(e:shares_storage(x))
    end)

    it("stops gradients: d/dx of x·detach(x) is detach(x)", function()
      local x = f64 { 3 }:requires_grad()
      ;(x * x:detach()):backward()
      close({ 3 }, x.grad)
    end)
  end)

  describe("in-place operations", function()
    it("are refused on a tensor that requires grad while recording", function()
      local x = f64 { 1, 2 }:requires_grad()
      assert.matches("add_: in%-place operation on a tensor that requires grad %(a leaf%)",
                     err_of(function() x:add_(1) end))
      local y = x * 2
      assert.matches("exp_: in%-place operation on a tensor that requires grad",
                     err_of(function() y:exp_() end))
      assert.matches("fill_: in%-place", err_of(function() x:fill_(0) end))
      assert.matches("copy_: in%-place", err_of(function() x:copy_(f64 { 0, 0 }) end))
    end)

    it("are allowed inside no_grad, as an optimizer's update is", function()
      local x = f64 { 1, 2 }:requires_grad()
      mg.no_grad(function() x:sub_(f64 { 0.5, 0.5 }) end)
      close({ 0.5, 1.5 }, x)
      assert.is_true(x:is_requires_grad())
    end)

    it("make backward fail when they change a saved tensor", function()
      local x = f64 { 1, 2 }:requires_grad()
      local y = x:exp()          -- saves its result
      local z = y * 1            -- a use of y, so y's node runs
      mg.no_grad(function() y:fill_(0) end)
      assert.matches("backward: a tensor that exp saved for its gradient was modified in place afterwards",
                     err_of(function() z:backward(f64 { 1, 1 }) end))
    end)
  end)

  describe(".grad", function()
    it("can be assigned a tensor of the right shape and dtype, or nil", function()
      local x = f64 { 1, 2 }:requires_grad()
      x.grad = f64 { 7, 8 }
      close({ 7, 8 }, x.grad)
      ;(x * 1):backward(f64 { 1, 1 })
      close({ 8, 9 }, x.grad)
      assert.matches("grad: a gradient of shape %[3%] does not fit a tensor of shape %[2%]",
                     err_of(function() x.grad = f64 { 1, 2, 3 } end))
      assert.matches("grad: a float32 gradient does not fit a float64 tensor",
                     err_of(function() x.grad = mg.tensor { 1, 2 } end))
      assert.matches("grad: can be set to nil or a tensor, got number",
                     err_of(function() x.grad = 3 end))
      x.grad = nil
      assert.is_nil(x.grad)
    end)

    it("is nil before any backward", function()
      assert.is_nil(f64 { 1 }:requires_grad().grad)
    end)

    it("belongs to the leaf: a later backward does not change an earlier read", function()
      local x = f64 { 1 }:requires_grad()
      ;(x + x):backward()
      local first = x.grad:clone()
      ;(x * 3):backward()
      close({ 2 }, first)
      close({ 5 }, x.grad)
    end)
  end)
end)

describe("gradcheck", function()
  it("passes for correct gradients", function()
    mg.manual_seed(3)
    local a = mg.randn(3, 4, "float64"):requires_grad()
    local b = mg.randn(4, 2, "float64"):requires_grad()
    assert.is_true(mg.gradcheck(function(p, q) return (p:matmul(q):tanh() * 2):exp() end, { a, b }))
  end)

  it("checks strided and 0-d inputs through their own elements", function()
    mg.manual_seed(4)
    local base = mg.randn(4, 3, "float64"):requires_grad()
    local strided = base:detach():t():requires_grad()   -- a transposed leaf
    local s = mg.tensor(0.4, "float64"):requires_grad()  -- 0-d
    assert.is_true(mg.gradcheck(function(a, c) return (a * c):exp() end, {strided, s}))
    local ok, msg = mg.gradcheck(function(a) return a * a:detach() end, strided, {raise = false})
    assert.is_false(ok)
    assert.matches("(at {1,1})", msg, 1, true)
  end)

  it("catches a gradient that is wrong", function()
    -- x·detach(x) looks like x² to finite differences (2x) but autograd
    -- sees x·c (gradient c = x): a wrong gradient by construction.
    local x = f64 { 0.7, -1.3 }:requires_grad()
    local ok, msg = mg.gradcheck(function(t) return t * t:detach() end, x, { raise = false })
    assert.is_false(ok)
    assert.matches("gradcheck: input 1, element 1: analytic", msg)
    assert.has_error(function() mg.gradcheck(function(t) return t * t:detach() end, x) end)
  end)

  it("leaves the random stream where it was", function()
    mg.manual_seed(11)
    local expected = mg.rand(3):totable()
    mg.manual_seed(11)
    mg.gradcheck(function(t) return t:exp() end, f64 { 1, 2 }:requires_grad())
    assert.are.same(expected, mg.rand(3):totable())
  end)

  it("asks for float64", function()
    local x = mg.tensor({ 1, 2 }):requires_grad()
    assert.matches("gradcheck: input 1 is float32", err_of(function() mg.gradcheck(function(t) return t * 2 end, x) end))
  end)
end)
