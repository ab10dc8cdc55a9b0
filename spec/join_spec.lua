-- mg.cat, mg.stack, split/chunk/unbind and tril/triu: values and gradients
-- against PyTorch (spec/fixtures/gen_join.py), gradients against finite
-- differences (mg.gradcheck), the semantics PyTorch users expect (dtype
-- promotion, views, piece sizes) and clear errors on bad input.
local mg = require "moongrad"
local fixture = require "support.fixture"
local ref = dofile("spec/fixtures/join_ref.lua")

local from_ref, error_of = fixture.tensor, require("support.check").err_of

describe("cat, stack, split and tril", function()
  for _, t in ipairs(fixture.tests(ref, { { "float64", 1e-12 }, { "float32", 1e-5 } })) do
    it(t[1], t[2])
  end

  describe("pass gradcheck (float64)", function()
    local function rand(...)
      return mg.randn({ ... }, "float64"):requires_grad()
    end
    local cases = {
      { "cat along dim 1", function(a, b) return mg.cat({ a, b }) end, { rand(2, 3), rand(3, 3) } },
      { "cat along dim -1 of three", function(a, b, c) return mg.cat({ a, b, c }, -1) end,
        { rand(2, 1, 2), rand(2, 1, 3), rand(2, 1, 1) } },
      { "cat of seven (a tree of nodes)", function(...) return mg.cat({ ... }, 2) end,
        { rand(2, 1), rand(2, 2), rand(2, 1), rand(2, 3), rand(2, 1), rand(2, 2), rand(2, 1) } },
      { "stack along a middle dim", function(a, b, c) return mg.stack({ a, b, c }, 2) end,
        { rand(2, 3), rand(2, 3), rand(2, 3) } },
      { "split into pieces", function(x)
          local p = x:split(2, 2)
          return p[1] * p[2] - p[3]:sum(2, true)
        end, { rand(3, 5) } },
      { "chunk", function(x)
          local p = x:chunk(2, -1)
          return p[1]:exp() * p[2]
        end, { rand(2, 2, 4) } },
      { "unbind", function(x)
          local r = x:unbind(2)
          return r[1] * r[2] + r[3]
        end, { rand(4, 3) } },
      { "tril with k = -1", function(x) return x:tril(-1) end, { rand(2, 4, 3) } },
      { "triu with k = 1", function(x) return x:triu(1) end, { rand(2, 3, 4) } },
    }
    for _, c in ipairs(cases) do
      it("for " .. c[1], function()
        assert.is_true(mg.gradcheck(c[2], c[3]))
      end)
    end
  end)

  describe("cat", function()
    it("promotes dtypes as binary ops do (float64 > float32 > int64)", function()
      local i = mg.tensor({ 1, 2 }, "int64")
      local f = mg.tensor({ 0.5 }, "float32")
      local d = mg.tensor({ 0.25 }, "float64")
      assert.are.equal("int64", mg.cat({ i, i }):dtype())
      assert.are.equal("float32", mg.cat({ i, f }):dtype())
      assert.are.equal("float64", mg.cat({ f, i, d }):dtype())
      assert.are.same({ 1, 2, 0.5, 0.25 }, mg.cat({ i, f, d }):totable())
    end)

    it("sends each input its gradient in its own dtype", function()
      local f = mg.tensor({ 1, 2 }, "float32"):requires_grad()
      local d = mg.tensor({ 3 }, "float64"):requires_grad()
      local y = mg.cat({ f, d })
      y:backward(mg.tensor({ 10, 20, 30 }, "float64"))
      assert.are.equal("float32", f.grad:dtype())
      assert.are.same({ 10, 20 }, f.grad:totable())
      assert.are.same({ 30 }, d.grad:totable())
    end)

    it("joins 100 tensors, an RNN's states, with gradients for each", function()
      local hs, ys = {}, {}
      for i = 1, 100 do
        hs[i] = mg.randn({ 2, 3 }, "float64")
        -- every third one requires grad: groups with none need no node
        if i % 3 == 0 then hs[i]:requires_grad() end
        ys[i] = hs[i]
      end
      local y = mg.cat(ys, 2)
      assert.are.same({ 2, 300 }, y:shape())
      local g = mg.randn({ 2, 300 }, "float64")
      y:backward(g)
      for i = 1, 100 do
        local want = g:narrow(2, 3 * i - 2, 3)
        assert.are.same(hs[i]:totable(), y:narrow(2, 3 * i - 2, 3):totable())
        if i % 3 == 0 then
          assert.are.same(want:totable(), hs[i].grad:totable())
        else
          assert.is_nil(hs[i].grad)
        end
      end
    end)

    it("backpropagates through a cat of 100 steps built in a loop", function()
      local w = mg.tensor({ 0.5 }, "float64"):requires_grad()
      local h, hs = mg.zeros({ 1 }, "float64"), {}
      for i = 1, 100 do
        h = (h * w + 0.01 * i):tanh()
        hs[i] = h
      end
      local loss = mg.cat(hs):sum()
      loss:backward()
      assert.is_true(mg.gradcheck(function(v)
        local h2, l = mg.zeros({ 1 }, "float64"), {}
        for i = 1, 100 do
          h2 = (h2 * v + 0.01 * i):tanh()
          l[i] = h2
        end
        return mg.cat(l)
      end, { mg.tensor({ 0.5 }, "float64"):requires_grad() }))
      assert.is_true(w.grad:item() > 0)
    end)

    it("records a cat node only when an input requires grad", function()
      local a = mg.randn(2, 2)
      assert.is_nil(mg.cat({ a, a }):grad_fn())
      local b = mg.randn(2, 2):requires_grad()
      assert.are.equal("cat", mg.cat({ a, b }):grad_fn())
      mg.no_grad(function() assert.is_nil(mg.cat({ a, b }):grad_fn()) end)
    end)

    it("copies: the result shares no storage with its inputs", function()
      local a = mg.zeros(2)
      local y = mg.cat({ a })
      y:fill_(1)
      assert.are.same({ 0, 0 }, a:totable())
    end)

    it("joins non-contiguous inputs and size-0 pieces", function()
      local m = mg.arange(6):reshape(2, 3)
      assert.are.same({ { 0, 3, 1, 4, 2, 5 } }, mg.cat({ m:t():reshape(1, 6) }, 1):totable())
      assert.are.same({ { 0, 3 }, { 1, 4 }, { 2, 5 }, { 9, 9 } },
        mg.cat({ m:t(), mg.zeros({ 0, 2 }, "int64"), mg.full({ 1, 2 }, 9):long() }):totable())
      assert.are.same({ 0 }, mg.cat({ mg.zeros(0), mg.zeros(0) }):shape())
    end)
  end)

  describe("stack", function()
    it("inserts the new dim at 1..ndim + 1 and at negative dims", function()
      local a, b = mg.zeros(2, 3), mg.ones(2, 3)
      assert.are.same({ 2, 2, 3 }, mg.stack({ a, b }):shape())
      assert.are.same({ 2, 2, 3 }, mg.stack({ a, b }, 2):shape())
      assert.are.same({ 2, 3, 2 }, mg.stack({ a, b }, 3):shape())
      assert.are.same({ 2, 3, 2 }, mg.stack({ a, b }, -1):shape())
      assert.are.same({ 2, 2, 3 }, mg.stack({ a, b }, -3):shape())
      assert.are.same({ { 0, 1 }, { 0, 1 }, { 0, 1 } }, mg.stack({ a, b }, 3)[1]:totable())
    end)

    it("stacks 0-d tensors into a vector", function()
      assert.are.same({ 1, 2, 3 }, mg.stack({ mg.tensor(1), mg.tensor(2), mg.tensor(3) }):totable())
    end)
  end)

  describe("split, chunk and unbind", function()
    local t = mg.arange(10):reshape(2, 5)
    local function shapes(pieces)
      local r = {}
      for i, p in ipairs(pieces) do r[i] = p:shape() end
      return r
    end

    it("split by size gives a shorter last piece", function()
      assert.are.same({ { 2, 2 }, { 2, 2 }, { 2, 1 } }, shapes(t:split(2, 2)))
      assert.are.same({ { 2, 5 } }, shapes(t:split(7, 2)))
      assert.are.same({ { { 4 }, { 9 } } }, { t:split(2, -1)[3]:totable() })
    end)

    it("split by sizes gives exactly those pieces, empty ones included", function()
      assert.are.same({ { 2, 1 }, { 2, 0 }, { 2, 4 } }, shapes(t:split({ 1, 0, 4 }, 2)))
      assert.are.same({ { 1, 5 }, { 1, 5 } }, shapes(mg.split(t, { 1, 1 })))
    end)

    it("chunk gives ceil-sized pieces, possibly fewer than asked", function()
      assert.are.same({ { 2, 2 }, { 2, 2 }, { 2, 1 } }, shapes(t:chunk(3, 2)))
      assert.are.same({ { 2 }, { 2 }, { 2 } }, shapes(mg.zeros(6):chunk(4)))
      assert.are.same({ { 2, 5 } }, shapes(t:chunk(1)))
      assert.are.same({ { 1, 5 }, { 1, 5 } }, shapes(t:chunk(5)))
    end)

    it("take integral floats and huge counts", function()
      assert.are.same({ { 2, 2 }, { 2, 2 }, { 2, 1 } }, shapes(t:split(2.0, 2.0)))
      assert.are.same({ { 2, 3 }, { 2, 2 } }, shapes(t:split({ 3.0, 2 }, -1)))
      assert.are.same({ { 2, 1 }, { 2, 1 }, { 2, 1 }, { 2, 1 }, { 2, 1 } },
        shapes(t:chunk(math.maxinteger, 2)))
      assert.are.same({ { 2, 5 } }, shapes(t:split(math.maxinteger, 2)))
    end)

    it("splits a dimension of size 0 as PyTorch does", function()
      assert.are.same({ { 0 } }, shapes(mg.zeros(0):split(2)))
      assert.are.same({ { 0 } }, shapes(mg.zeros(0):split(0)))
      assert.are.same({ { 0 }, { 0 }, { 0 } }, shapes(mg.zeros(0):chunk(3)))
      assert.are.same({}, mg.zeros(0, 2):unbind())
    end)

    it("unbind removes the dim", function()
      local r = t:unbind(2)
      assert.are.equal(5, #r)
      assert.are.same({ 1, 6 }, r[2]:totable())
      assert.are.same({ { 0, 1, 2, 3, 4 }, { 5, 6, 7, 8, 9 } },
        { mg.unbind(t)[1]:totable(), t:unbind(-2)[2]:totable() })
    end)

    it("returns views sharing storage with the tensor", function()
      local x = mg.zeros(2, 4)
      x:split(2, 2)[2]:fill_(1)
      x:chunk(2)[1]:select(2, 1):fill_(2)
      x:unbind(1)[2][1] = 3
      assert.are.same({ { 2, 0, 1, 1 }, { 3, 0, 1, 1 } }, x:totable())
    end)

    it("and cat undo each other", function()
      local x = mg.randn(3, 7)
      assert.are.same(x:totable(), mg.cat(x:split(3, 2), 2):totable())
      assert.are.same(x:totable(), mg.cat(x:chunk(2), 1):totable())
      assert.are.same(x:totable(), mg.stack(x:unbind(2), 2):totable())
    end)
  end)

  describe("tril and triu", function()
    local m = mg.arange(1, 13):reshape(3, 4)
    it("keep the triangle and zero the rest, for any dtype", function()
      assert.are.same({ { 1, 0, 0, 0 }, { 5, 6, 0, 0 }, { 9, 10, 11, 0 } }, m:tril():totable())
      assert.are.same({ { 0, 2, 3, 4 }, { 0, 0, 7, 8 }, { 0, 0, 0, 12 } }, m:triu(1):totable())
      assert.are.equal("int64", m:tril():dtype())
      assert.are.equal("float64", mg.tril(m:double()):dtype())
    end)

    it("treat diagonals past the matrix as keeping all or nothing", function()
      assert.are.same(m:totable(), m:tril(100):totable())
      assert.are.same(mg.zeros(3, 4):long():totable(), m:tril(-3):totable())
      assert.are.same(mg.zeros(3, 4):long():totable(), m:triu(math.maxinteger):totable())
      assert.are.same(m:totable(), m:triu(math.mininteger):totable())
    end)

    it("work on strided inputs and on batches", function()
      assert.are.same({ { 1, 5, 9 }, { 0, 6, 10 }, { 0, 0, 11 }, { 0, 0, 0 } }, m:t():triu():totable())
      local b = mg.stack({ m, m * 2 })
      assert.are.same((m * 2):tril(-1):totable(), b:tril(-1)[2]:totable())
    end)

    it("build a causal mask", function()
      local scores = mg.zeros(3, 3)
      local mask = mg.ones(3, 3):triu(1)
      local masked = scores:masked_fill(mask:gt(0), -math.huge)
      assert.are.same({ 0, -math.huge, -math.huge }, masked[1]:totable())
    end)
  end)

  describe("raise clear errors", function()
    local a = mg.zeros(2, 3)
    it("on mismatched shapes", function()
      local msg = error_of(function() mg.cat({ a, mg.zeros(2, 4) }) end)
      assert.matches("cat: tensor 2 has shape %[2,4%], expected %[%*,3%] %(sizes must match except along dimension 1%)", msg)
      assert.matches("cat: tensor 2 has shape %[3,3%], expected %[2,%*%]",
        error_of(function() mg.cat({ a, mg.zeros(3, 3), mg.zeros(2, 3) }, 2) end))
      assert.matches("cat: tensor 3 has shape %[2,3,1%], expected 2 dimensions",
        error_of(function() mg.cat({ a, a, mg.zeros(2, 3, 1) }) end))
      assert.matches("stack: tensor 2 has shape %[3,2%], expected %[2,3%]",
        error_of(function() mg.stack({ a, mg.zeros(3, 2) }) end))
    end)

    it("on an empty list", function()
      assert.matches("cat: expected a non%-empty list of tensors", error_of(function() mg.cat({}) end))
      assert.matches("stack: expected a non%-empty list of tensors", error_of(function() mg.stack({}) end))
    end)

    it("on a non-tensor element or a missing list", function()
      assert.matches("cat: element 2 of the list is a number, not a tensor",
        error_of(function() mg.cat({ a, 3 }) end))
      assert.matches("stack: element 1 of the list is a table, not a tensor",
        error_of(function() mg.stack({ { 1, 2 } }) end))
      assert.matches("cat: expected a list of tensors, got a tensor", error_of(function() mg.cat(a, a) end))
      assert.matches("cat: expected a list of tensors, got nil", error_of(function() mg.cat() end))
    end)

    it("on a bad dim", function()
      assert.matches("cat: dimension 3 out of range", error_of(function() mg.cat({ a, a }, 3) end))
      assert.matches("cat: dimension 0 out of range", error_of(function() mg.cat({ a, a }, 0) end))
      assert.matches("cat: dimension must be an integer", error_of(function() mg.cat({ a, a }, "x") end))
      assert.matches("stack: dimension 4 out of range", error_of(function() mg.stack({ a, a }, 4) end))
      assert.matches("split: dimension 3 out of range", error_of(function() a:split(1, 3) end))
      assert.matches("chunk: dimension %-3 out of range", error_of(function() a:chunk(2, -3) end))
      assert.matches("unbind: dimension 0 out of range", error_of(function() a:unbind(0) end))
      assert.matches("cat: tensor 1 is 0%-dimensional",
        error_of(function() mg.cat({ mg.tensor(1), mg.tensor(2) }) end))
      assert.matches("unbind: a 0%-d tensor has no dimensions", error_of(function() mg.tensor(1):unbind() end))
    end)

    it("on bad sizes and counts", function()
      assert.matches("split: sizes {1, 3} add up to 4, but dimension 2 has size 3",
        error_of(function() a:split({ 1, 3 }, 2) end))
      assert.matches("split: sizes {9223372036854775807, 9223372036854775807, 2} add up to more than 3",
        error_of(function() a:split({ math.maxinteger, math.maxinteger, 2 }, 2) end))
      assert.matches("split: size 0 only splits a dimension of size 0", error_of(function() a:split(0) end))
      assert.matches("split: size 2 must be a non%-negative integer", error_of(function() a:split({ 1, -1, 2 }, 2) end))
      assert.matches("split: size must be a non%-negative integer", error_of(function() a:split(1.5) end))
      assert.matches("chunk: chunks must be a positive integer, got 0", error_of(function() a:chunk(0) end))
      assert.matches("split: expected a tensor, got string", error_of(function() mg.split("x", 1) end))
    end)

    it("on tril and triu of fewer than 2 dims or a bad diagonal", function()
      assert.matches("tril: expected a tensor with at least 2 dimensions",
        error_of(function() mg.zeros(3):tril() end))
      assert.matches("triu: expected a tensor with at least 2 dimensions",
        error_of(function() mg.tensor(1):triu() end))
      assert.matches("tril: diagonal must be an integer, got 0.5", error_of(function() a:tril(0.5) end))
    end)
  end)
end)
