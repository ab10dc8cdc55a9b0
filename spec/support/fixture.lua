-- Running the cases of a PyTorch fixture (spec/fixtures/gen_*.py): each
-- case holds a moongrad expression (`lua`) over inputs x1, x2, ..., the
-- inputs and the upstream gradient g, and PyTorch's output y and input
-- gradients gx, every tensor as {shape = ..., data = flat values}.
local mg = require "moongrad"
local approx = require "support.approx"
-- A required module sees the global assert, not busted's.
local assert = require "luassert"

local fixture = {}

-- A fixture tensor ({shape, data}, flat so a size-0 dim needs no table).
function fixture.tensor(r, dt)
  return mg.tensor(r.data, dt):reshape(r.shape)
end

-- Asserts t has the fixture's shape and values within tol.
function fixture.check(t, r, tol, what)
  assert.are.same(r.shape, t:shape(), what .. ": shape")
  local ok, err = pcall(approx.assert_close, t:reshape(-1), r.data, tol, tol)
  if not ok then error(what .. ": " .. tostring(err), 2) end
end

-- Runs case c in dtype dt: the result and the inputs (with grads).
function fixture.run(c, dt)
  local env = { mg = mg, ipairs = ipairs }
  local xs = {}
  for i, r in ipairs(c.x) do
    xs[i] = fixture.tensor(r, dt):requires_grad()
    env["x" .. i] = xs[i]
  end
  local y = assert(load("return " .. c.lua, "=" .. c.name, "t", env))()
  y:backward(fixture.tensor(c.g, dt))
  return y, xs
end

-- Runs case c in dtype dt and checks the output, the dtype and the input
-- gradients against PyTorch's within tol.
function fixture.check_case(c, dt, tol)
  local y, xs = fixture.run(c, dt)
  assert.are.equal(dt, y:dtype())
  fixture.check(y, c.y, tol, "output")
  for i, x in ipairs(xs) do
    assert.are.equal(dt, x.grad:dtype())
    fixture.check(x.grad, c.gx[i], tol, "gradient of input " .. i)
  end
end

-- The spec's tests of every case in every dtype: a list of {title, fn} for
-- `it`, with dtypes {{"float64", tol}, {"float32", tol}}.
function fixture.tests(ref, dtypes)
  local tests = {}
  for _, dt in ipairs(dtypes) do
    for _, c in ipairs(ref) do
      tests[#tests + 1] = { ("matches PyTorch in %s for %s"):format(dt[1], c.name),
        function() fixture.check_case(c, dt[1], dt[2]) end }
    end
  end
  return tests
end

return fixture
