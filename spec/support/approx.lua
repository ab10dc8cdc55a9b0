-- Comparing tensors with reference values in specs. References are plain
-- Lua numbers or nested tables computed independently of moongrad (by hand,
-- with Lua's math library, or with a naive loop in the spec); these helpers
-- only read a tensor through totable() and compare.
local approx = {}

local mg = require "moongrad"
-- A required module sees the global assert, not busted's.
local assert = require "luassert"

-- The shape of a nested table ({} for a number).
function approx.shape_of(x)
  local shape = {}
  while type(x) == "table" do
    shape[#shape + 1] = #x
    x = x[1]
  end
  return shape
end

-- Every number of a nested table (or tensor), row-major, into a flat list.
function approx.flat(x, out)
  out = out or {}
  if mg.is_tensor(x) then x = x:totable() end
  if type(x) ~= "table" then
    out[#out + 1] = x
    return out
  end
  for i = 1, #x do approx.flat(x[i], out) end
  return out
end

local function close(a, e, abs_tol, rel_tol)
  if e ~= e then return a ~= a end                  -- nan matches nan
  if e == math.huge or e == -math.huge then return a == e end
  if a ~= a then return false end
  return math.abs(a - e) <= abs_tol + rel_tol * math.abs(e)
end

-- Asserts that actual (a tensor, table or number) has expected's shape and
-- every element within abs_tol + rel_tol * |expected|.
function approx.assert_close(actual, expected, abs_tol, rel_tol)
  abs_tol, rel_tol = abs_tol or 0, rel_tol or 0
  if mg.is_tensor(actual) then
    assert.same(approx.shape_of(expected), actual:shape(), "shape")
  end
  local a, e = approx.flat(actual), approx.flat(expected)
  assert.equal(#e, #a, "element count")
  for i = 1, #e do
    if not close(a[i], e[i], abs_tol, rel_tol) then
      error(("element %d: got %.17g, expected %.17g (abs %g, rel %g)")
            :format(i, a[i], e[i], abs_tol, rel_tol), 2)
    end
  end
end

-- Asserts that a tensor has exactly expected's values, shape and dtype
-- (dtype optional). Exact: use only for values every dtype holds exactly.
function approx.assert_values(t, expected, dtype)
  assert.is_true(mg.is_tensor(t), "not a tensor")
  if dtype then assert.equal(dtype, t:dtype()) end
  assert.same(approx.shape_of(expected), t:shape(), "shape")
  assert.same(expected, t:totable())
end

-- Maps f over a nested table, giving a new one.
function approx.map(x, f)
  if type(x) ~= "table" then return f(x) end
  local r = {}
  for i = 1, #x do r[i] = approx.map(x[i], f) end
  return r
end

-- Nearest float32 to x (by round-tripping through string.pack), for
-- reference values of float32 results.
function approx.f32(x)
  return (string.unpack("f", string.pack("f", x)))
end

return approx
