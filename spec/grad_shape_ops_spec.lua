-- Gradients of reductions, views and indexing ops against PyTorch
-- (spec/fixtures/gen_grad_shape_ops.py): the same expression in both, the
-- same upstream gradient, the same input.
local mg = require "moongrad"
local ref = dofile("spec/fixtures/grad_shape_ops_ref.lua")

local function close(expected, got, what)
  if type(expected) == "table" then
    assert.are.equal(#expected, #got, what .. ": length")
    for i = 1, #expected do close(expected[i], got[i], what .. "[" .. i .. "]") end
  else
    assert(math.abs(expected - got) <= 1e-12 * (1 + math.abs(expected)),
           ("%s: expected %.17g, got %.17g"):format(what, expected, got))
  end
end

describe("gradients of shape ops match PyTorch", function()
  for _, c in ipairs(ref.cases) do
    it("for " .. c.name .. ": " .. c.expr, function()
      local x = mg.tensor(ref.x, "float64"):requires_grad()
      local env = { x = x, mg = mg, gidx = mg.tensor(ref.gidx, "int64") }
      local y = assert(load("return " .. c.expr, "=expr", "t", env))()
      close(c.out, y:totable(), "out")
      y:backward(mg.tensor(c.g, "float64"))
      close(c.gx, x.grad:totable(), "grad")
    end)
  end
end)
