-- Gradients of the reductions, the views and the indexing ops: a central
-- finite-difference check of each backward (the checker below, written for
-- this spec: every input element, any layout, 0-d included), plus
-- gradients worked out by hand in the comments.
local mg = require "moongrad"

local function f64(t) return mg.tensor(t, "float64") end

local function randn(...) return mg.randn({ ... }, "float64") end

local function close(expected, t, tol)
  local got = type(t) == "number" and t or t:totable()
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

-- ---- the checker -------------------------------------------------------------
-- mg.gradcheck: for a random weight v of y's shape, L = sum(fn(inputs) * v)
-- has gradient backward(v); each element of each input that requires grad
-- is moved by ±eps through a detached alias (so inputs may be strided views
-- or 0-d), and (L(x + eps) - L(x - eps)) / 2eps must match the analytic
-- value within tol · (1 + |numeric|).
local TOL = 1e-6

local function check_grad(fn, inputs)
  return mg.gradcheck(fn, inputs, {atol = TOL, rtol = TOL})
end

-- Inputs with well-separated values, so that no max/min is near a tie.
local function distinct(...)
  local shape, n = { ... }, 1
  for _, s in ipairs(shape) do n = n * s end
  local perm = mg.randperm(n):double()
  return (perm + mg.rand({ n }, "float64") * 0.5):reshape(shape) / n
end

mg.manual_seed(20240607)

describe("mg.gradcheck", function()
  it("catches a wrong gradient", function()
    -- autograd sees only the recorded factor of x:detach() * x, so it
    -- reports x where the function's derivative is 2x
    local x = randn(3):requires_grad()
    assert.matches("analytic", err_of(function()
      check_grad(function(p) return p:detach() * p end, x)
    end))
  end)
end)

describe("reduction gradients", function()
  describe("sum", function()
    it("is ones of the input's shape, whatever the dims", function()
      local x = randn(2, 3):requires_grad()
      x:sum():backward()
      close({ { 1, 1, 1 }, { 1, 1, 1 } }, x.grad)
      x.grad = nil
      x:sum(2):sum():backward()
      close({ { 1, 1, 1 }, { 1, 1, 1 } }, x.grad)
    end)

    it("passes the checker over all elements, a dim, keepdim and -1", function()
      local x = randn(2, 3, 4):requires_grad()
      assert.is_true(check_grad(function(p) return p:sum() end, x))
      assert.is_true(check_grad(function(p) return p:sum(2) end, x))
      assert.is_true(check_grad(function(p) return p:sum(1, true) end, x))
      assert.is_true(check_grad(function(p) return p:sum(-1) end, x))
      assert.is_true(check_grad(function(p) return p:sum { keepdim = true } end, x))
    end)

    it("works on a 0-d tensor and on a float32 tensor", function()
      local s = f64(2.5):requires_grad()
      assert.is_true(check_grad(function(p) return p:sum() end, s))
      assert.is_true(check_grad(function(p) return p:sum(1) * 3 end, s))
      local x = mg.tensor({ 1, 2, 3 }):requires_grad()
      local y = x:sum(1) * 2
      y:backward()
      assert.are.equal("float32", x.grad:dtype())
      close({ 2, 2, 2 }, x.grad)
    end)
  end)

  describe("mean", function()
    it("is 1/n of the reduced count", function()
      local x = randn(2, 4):requires_grad()
      x:mean():backward()
      close({ { 1 / 8, 1 / 8, 1 / 8, 1 / 8 }, { 1 / 8, 1 / 8, 1 / 8, 1 / 8 } }, x.grad)
      x.grad = nil
      x:mean(1):sum():backward()
      close({ { 0.5, 0.5, 0.5, 0.5 }, { 0.5, 0.5, 0.5, 0.5 } }, x.grad)
    end)

    it("passes the checker", function()
      local x = randn(3, 2, 2):requires_grad()
      assert.is_true(check_grad(function(p) return p:mean() end, x))
      assert.is_true(check_grad(function(p) return p:mean(3) end, x))
      assert.is_true(check_grad(function(p) return p:mean(2, true) end, x))
    end)
  end)

  describe("prod", function()
    it("is the product of the others, exact with one zero and zero with two", function()
      -- prod{2, 0, 3} = 0; d/dx1 = 0*3, d/dx2 = 2*3 = 6, d/dx3 = 2*0
      local x = f64({ 2, 0, 3 }):requires_grad()
      x:prod():backward()
      close({ 0, 6, 0 }, x.grad)
      local y = f64({ 0, 4, 0 }):requires_grad()
      y:prod():backward()
      close({ 0, 0, 0 }, y.grad)
      -- rows: {1, 2, 3} -> {6, 3, 2}; {4, 0, 5} -> {0, 20, 0}
      local z = f64({ { 1, 2, 3 }, { 4, 0, 5 } }):requires_grad()
      z:prod(2):sum():backward()
      close({ { 6, 3, 2 }, { 0, 20, 0 } }, z.grad)
    end)

    it("passes the checker, with and without zeros", function()
      local x = randn(3, 4):requires_grad()
      assert.is_true(check_grad(function(p) return p:prod() end, x))
      assert.is_true(check_grad(function(p) return p:prod(1) end, x))
      assert.is_true(check_grad(function(p) return p:prod(2, true) end, x))
      local z = f64({ { 1.5, 0, -2 }, { 0, 0, 3 }, { 0.5, 2, 1.25 } }):requires_grad()
      assert.is_true(check_grad(function(p) return p:prod(2) end, z))
      assert.is_true(check_grad(function(p) return p:prod(1) end, z))
      assert.is_true(check_grad(function(p) return p:narrow(1, 1, 1):prod() end, z))
    end)
  end)

  describe("max and min", function()
    it("send g to the position of the extreme over a dim (one-hot at the index)", function()
      local x = f64({ { 1, 5, 2 }, { 7, 0, 7 } }):requires_grad()
      local v, i = x:max(2)
      assert.is_false(i:is_requires_grad())
      close({ 2, 1 }, i)
      v:backward(f64({ 10, 20 }))
      -- the tie in row 2 goes to the first occurrence, as the index says
      close({ { 0, 10, 0 }, { 20, 0, 0 } }, x.grad)
      x.grad = nil
      local m = x:min(1, true)
      m:sum():backward()
      close({ { 1, 0, 1 }, { 0, 1, 0 } }, x.grad)
    end)

    it("share g evenly among tied extremes over every element", function()
      local x = f64({ { 1, 3 }, { 3, 2 } }):requires_grad()
      x:max():backward()
      close({ { 0, 0.5 }, { 0.5, 0 } }, x.grad)
      x.grad = nil
      x:min():backward()
      close({ { 1, 0 }, { 0, 0 } }, x.grad)
    end)

    it("pass the checker on distinct values", function()
      local x = distinct(3, 4):requires_grad()
      assert.is_true(check_grad(function(p) return p:max(1) end, x))
      assert.is_true(check_grad(function(p) return p:max(2, true) end, x))
      assert.is_true(check_grad(function(p) return p:min(-1) end, x))
      assert.is_true(check_grad(function(p) return p:max() end, x))
      assert.is_true(check_grad(function(p) return p:min { keepdim = true } end, x))
    end)

    it("work on a 0-d tensor", function()
      local s = f64(4):requires_grad()
      local v = s:max(1)
      v:backward()
      close(1, s.grad)
    end)

    it("leave argmax and argmin out of the graph", function()
      local x = randn(2, 3):requires_grad()
      assert.is_false(x:argmax(2):is_requires_grad())
      assert.is_false(x:argmin():is_requires_grad())
    end)
  end)

  describe("var and std", function()
    it("match the formulas on a small case", function()
      -- x = {1, 2, 4}, mean 7/3, unbiased: d var/dx = 2 (x - mean) / 2
      local x = f64({ 1, 2, 4 }):requires_grad()
      x:var():backward()
      close({ 1 - 7 / 3, 2 - 7 / 3, 4 - 7 / 3 }, x.grad, 1e-14)
      -- d std/dx = (x - mean) / (2 std), std = sqrt(7/3)
      x.grad = nil
      x:std():backward()
      local s = math.sqrt(7 / 3)
      close({ (1 - 7 / 3) / (2 * s), (2 - 7 / 3) / (2 * s), (4 - 7 / 3) / (2 * s) }, x.grad, 1e-14)
    end)

    it("give std a zero gradient (not nan) where the std is zero", function()
      local x = f64({ { 2, 2, 2 }, { 1, 2, 3 } }):requires_grad()
      x:std(2):sum():backward()
      close({ { 0, 0, 0 }, { -0.5, 0, 0.5 } }, x.grad)
    end)

    it("pass the checker with both corrections, dims and keepdim", function()
      local x = randn(3, 4):requires_grad()
      assert.is_true(check_grad(function(p) return p:var() end, x))
      assert.is_true(check_grad(function(p) return p:var(1) end, x))
      assert.is_true(check_grad(function(p) return p:var(2, { correction = 0, keepdim = true }) end, x))
      assert.is_true(check_grad(function(p) return p:std() end, x))
      assert.is_true(check_grad(function(p) return p:std(2) end, x))
      assert.is_true(check_grad(function(p) return p:std(1, { correction = 0 }) end, x))
      assert.is_true(check_grad(function(p) return p:std { keepdim = true } end, x))
    end)
  end)
end)

describe("view gradients", function()
  it("keep views as views that record their op", function()
    local x = randn(2, 3):requires_grad()
    local cases = {
      view = x:view(3, 2), reshape = x:reshape(6), transpose = x:transpose(1, 2),
      permute = x:permute(2, 1), narrow = x:narrow(2, 1, 2), select = x:select(1, 2),
      squeeze = x:unsqueeze(1):squeeze(), unsqueeze = x:unsqueeze(3),
      expand = x:unsqueeze(1):expand(4, 2, 3),
    }
    for name, v in pairs(cases) do
      assert.is_true(v:shares_storage(x), name .. " copied")
      assert.are.equal(name, v:grad_fn())
      assert.is_false(v:is_leaf())
    end
  end)

  it("pass a view's gradient to its leaf", function()
    -- the narrow window gets ones, the rest zeros
    local x = randn(3, 4):requires_grad()
    x:narrow(2, 2, 2):sum():backward()
    close({ { 0, 1, 1, 0 }, { 0, 1, 1, 0 }, { 0, 1, 1, 0 } }, x.grad)
    x.grad = nil
    x:select(1, 3):sum():backward()
    close({ { 0, 0, 0, 0 }, { 0, 0, 0, 0 }, { 1, 1, 1, 1 } }, x.grad)
    x.grad = nil
    x[2]:sum():backward()
    close({ { 0, 0, 0, 0 }, { 1, 1, 1, 1 }, { 0, 0, 0, 0 } }, x.grad)
    x.grad = nil
    -- expanded 5 times: each element is used 5 times
    x:unsqueeze(1):expand(5, 3, 4):sum():backward()
    close({ { 5, 5, 5, 5 }, { 5, 5, 5, 5 }, { 5, 5, 5, 5 } }, x.grad)
  end)

  it("pass the checker for each view", function()
    local x = randn(2, 3, 4):requires_grad()
    local fns = {
      function(p) return p:view(6, 4) end,
      function(p) return p:view(-1) end,
      function(p) return p:reshape(4, 6) end,
      function(p) return p:flatten(2, 3) end,
      function(p) return p:transpose(1, 3) end,
      function(p) return p:permute(3, 1, 2) end,
      function(p) return p:narrow(3, 2, 2) end,
      function(p) return p:narrow(1, 2, 1) end,
      function(p) return p:select(2, 3) end,
      function(p) return p:select(3, -1) end,
      function(p) return p:unsqueeze(2) end,
      function(p) return p:narrow(2, 1, 1):squeeze() end,
      function(p) return p:narrow(2, 1, 1):squeeze(2) end,
      function(p) return p:unsqueeze(1):expand(3, 2, 3, 4) end,
      function(p) return p:narrow(3, 1, 1):expand(2, 3, 5) end,
      function(p) return p:clone() end,
      function(p) return p:transpose(1, 2):contiguous() end,
      function(p) return p:to("float64") end, -- no conversion: p itself
      function(p) return p[2] end,
      function(p) return p[{ 1, 3 }] end,
    }
    for _, fn in ipairs(fns) do assert.is_true(check_grad(fn, x)) end
  end)

  it("reshape back through a copy when the layout does not allow a view", function()
    local x = randn(3, 4):requires_grad()
    local r = x:t():reshape(12)
    assert.is_false(r:shares_storage(x))
    assert.is_true(check_grad(function(p) return p:t():reshape(2, 6) end, x))
  end)

  it("work for a non-contiguous leaf", function()
    local x = randn(4, 3):t():requires_grad()
    assert.is_false(x:is_contiguous())
    assert.is_true(check_grad(function(p) return (p * p):sum(1) end, x))
    assert.is_true(check_grad(function(p) return p:reshape(12):narrow(1, 3, 5) end, x))
  end)

  it("chain with elementwise ops and broadcasting", function()
    local x, w = randn(3, 4):requires_grad(), randn(4):requires_grad()
    assert.is_true(check_grad(function(p, q)
      return (p:t() * q:unsqueeze(2)):exp():sum(1):narrow(1, 2, 2)
    end, { x, w }))
    assert.is_true(check_grad(function(p, q)
      return (p + q):tanh():transpose(1, 2):reshape(2, 6):max(2)
    end, { x, w }))
    assert.is_true(check_grad(function(p, q)
      return (q:expand(3, 4) * p):select(2, 2) + p:mean(2)
    end, { x, w }))
    -- one tensor reached through two views: their gradients add up
    assert.is_true(check_grad(function(p)
      return p:narrow(1, 1, 2) * p:narrow(1, 2, 2):exp()
    end, x))
  end)

  it("send a float32 gradient back through a dtype conversion", function()
    local x = mg.tensor({ 1, 2 }):requires_grad()
    local y = x:double() * f64({ 3, 4 })
    y:sum():backward()
    assert.are.equal("float32", x.grad:dtype())
    close({ 3, 4 }, x.grad)
    assert.is_false(x:long():is_requires_grad())
  end)

  it("leave detach out of the graph", function()
    local x = randn(2):requires_grad()
    assert.is_false(x:detach():is_requires_grad())
    assert.is_true(x:detach():shares_storage(x))
  end)

  it("refuse in-place writes through a view of a tensor that requires grad", function()
    local x = randn(2, 3):requires_grad()
    assert.matches("in%-place operation on a tensor that requires grad",
                   err_of(function() x:narrow(1, 1, 1):fill_(0) end))
    assert.matches("in%-place", err_of(function() x[1] = 3 end))
    mg.no_grad(function() x:narrow(1, 1, 1):fill_(0) end)
    close({ 0, 0, 0 }, x[1])
  end)
end)

describe("indexing gradients", function()
  it("index_select accumulates repeated ids", function()
    local x = randn(3, 2):requires_grad()
    x:index_select(1, { 3, 1, 3, 3 }):sum():backward()
    close({ { 1, 1 }, { 0, 0 }, { 3, 3 } }, x.grad)
    x.grad = nil
    x:index_select(2, mg.tensor({ 2, 2 }, "int64")):sum():backward()
    close({ { 0, 2 }, { 0, 2 }, { 0, 2 } }, x.grad)
  end)

  it("index_select passes the checker along each dim", function()
    local x = randn(3, 4, 2):requires_grad()
    local ids = mg.tensor({ 4, 1, 4, 2 }, "int64")
    assert.is_true(check_grad(function(p) return p:index_select(2, ids) end, x))
    assert.is_true(check_grad(function(p) return p:index_select(1, { 2, 2, 3 }) end, x))
    assert.is_true(check_grad(function(p) return p:index_select(3, { 1 }) end, x))
    assert.is_true(check_grad(function(p) return p:t() end, randn(3, 2):requires_grad()))
    assert.is_true(check_grad(function(p) return p:t():index_select(2, { 3, 1 }) end,
                              randn(3, 2):requires_grad()))
  end)

  it("gather adds g at the gathered positions", function()
    -- row 1 reads column 1 twice, row 2 reads columns 2 and 1
    local x = randn(2, 3):requires_grad()
    x:gather(2, mg.tensor({ { 1, 1 }, { 2, 1 } }, "int64")):sum():backward()
    close({ { 2, 0, 0 }, { 1, 1, 0 } }, x.grad)
  end)

  it("gather passes the checker", function()
    local x = randn(3, 4):requires_grad()
    local idx = mg.tensor({ { 4, 4, 1 }, { 2, 3, 3 } }, "int64")
    assert.is_true(check_grad(function(p) return p:gather(2, idx) end, x))
    assert.is_true(check_grad(function(p) return p:gather(1, mg.tensor({ { 3, 1 }, { 3, 3 } }, "int64")) end, x))
  end)

  it("scatter sends g to t (zero where overwritten) and gather(g) to src", function()
    local x = f64({ { 1, 2, 3 }, { 4, 5, 6 } }):requires_grad()
    local src = f64({ { 10, 20, 30 }, { 40, 50, 60 } }):requires_grad()
    local idx = mg.tensor({ { 3 }, { 1 } }, "int64")
    local y = x:scatter(2, idx, src)
    close({ { 1, 2, 10 }, { 40, 5, 6 } }, y)
    assert.are.equal("scatter", y:grad_fn());
    (y * f64({ { 1, 2, 3 }, { 4, 5, 6 } })):sum():backward()
    close({ { 1, 2, 0 }, { 0, 5, 6 } }, x.grad)
    close({ { 3, 0, 0 }, { 4, 0, 0 } }, src.grad) -- only src's corner was read
  end)

  it("scatter and scatter_add pass the checker", function()
    local x, src = randn(3, 4):requires_grad(), randn(3, 5):requires_grad()
    local unique = mg.tensor({ { 2, 4 }, { 1, 3 }, { 4, 1 } }, "int64")
    local dup = mg.tensor({ { 2, 2, 2 }, { 1, 3, 1 }, { 4, 4, 4 } }, "int64")
    assert.is_true(check_grad(function(p, q) return p:scatter(2, unique, q) end, { x, src }))
    assert.is_true(check_grad(function(p, q) return p:scatter_add(2, dup, q) end, { x, src }))
    assert.is_true(check_grad(function(p, q) return p:scatter_add(1, dup:narrow(1, 1, 2), q) end,
                              { x, src }))
    assert.is_true(check_grad(function(p) return p:scatter(2, unique, 7) end, x))
  end)

  it("scatter of a 0-d src sums its gradient", function()
    local s = f64(2):requires_grad()
    local w = f64({ { 1, 2, 3 }, { 4, 5, 6 } })
    local y = mg.zeros({ 2, 3 }, "float64"):scatter(2, mg.tensor({ { 1, 3 }, { 2, 2 } }, "int64"), s);
    (y * w):sum():backward()
    close(1 + 3 + 5 + 5, s.grad) -- gather(w) summed, repeats included
    assert.is_true(check_grad(function(q)
      return mg.zeros({ 2, 3 }, "float64"):scatter_add(1, mg.tensor({ { 1, 2, 2 } }, "int64"), q)
    end, s))
  end)

  it("scatter_ stays refused on a tensor that requires grad", function()
    local x = randn(2, 3):requires_grad()
    assert.matches("scatter_: in%-place", err_of(function()
      x:scatter_(2, mg.tensor({ { 1 }, { 2 } }, "int64"), 0)
    end))
  end)
end)

describe("masked_fill gradients", function()
  it("are g where the mask does not hold and zero where it does", function()
    local x = f64({ { 1, 5 }, { 4, 2 } }):requires_grad()
    local y = x:masked_fill(x:gt(3), -1)
    close({ { 1, -1 }, { -1, 2 } }, y)
    assert.are.equal("masked_fill", y:grad_fn());
    (y * 3):sum():backward()
    close({ { 3, 0 }, { 0, 3 } }, x.grad)
  end)

  it("pass the checker with a broadcast mask", function()
    local x = randn(3, 4):requires_grad()
    local mask = mg.tensor({ 1, 0, 0, 1 }, "int64")
    assert.is_true(check_grad(function(p) return p:masked_fill(mask, 0.5) end, x))
    assert.is_true(check_grad(function(p) return p:t():masked_fill(mask:view(4, 1), 2) end, x))
  end)

  it("leave masked_fill_ refused on a tensor that requires grad", function()
    local x = randn(2):requires_grad()
    assert.matches("masked_fill_: in%-place", err_of(function() x:masked_fill_(x:gt(0), 0) end))
    assert.is_false(mg.no_grad(function() return x:masked_fill(x:gt(0), 0) end):is_requires_grad())
  end)
end)

describe("mg.gradcheck on the same ops", function()
  it("agrees with the spec's checker", function()
    local x = randn(3, 4):requires_grad()
    for _, fn in ipairs {
      function(p) return p:sum(2) end, function(p) return p:prod(1) end,
      function(p) return p:std(2) end, function(p) return p:t():narrow(1, 2, 2) end,
      function(p) return p:index_select(2, { 1, 1, 4 }) end,
      function(p) return p:masked_fill(p:gt(0), 0) end,
    } do
      assert.is_true(mg.gradcheck(fn, { x }))
    end
  end)
end)
