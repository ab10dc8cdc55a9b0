-- Elementwise ops: unary math, binary arithmetic with scalars and
-- broadcasting, dtype promotion, comparisons, where, clamp, masked_fill.
-- References come from Lua's math library and Lua's own operators (whose
-- // and % floor like Python's), and from a naive broadcasting loop below.
local mg = require "moongrad"
local approx = require "support.approx"
local values, close, f32, map = approx.assert_values, approx.assert_close,
                                approx.f32, approx.map

local nan, inf = 0 / 0, math.huge

-- ---- reference implementations, in plain Lua ----------------------------

local function tanh(x) local e = math.exp(2 * x) return (e - 1) / (e + 1) end
local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
local function sign(x) return x > 0 and 1 or x < 0 and -1 or 0 end
local function trunc(x) return x >= 0 and math.floor(x) or math.ceil(x) end
-- round half to even, as C's nearbyint (and NumPy, PyTorch) do
local function round(x)
  local r = math.floor(x + 0.5)
  if r - x == 0.5 and r % 2 ~= 0 then r = r - 1 end
  return r
end

-- name, reference, inputs (float64 inputs chosen inside the op's domain)
local everywhere = {-3.7, -2.5, -1.25, -0.5, -0.1, 0, 0.1, 0.5, 1, 1.5, 2.5, 3.7}
local positive = {0.01, 0.1, 0.5, 1, 2.25, 3.7, 10, 123.5}
local above_m1 = {-0.9, -0.5, -0.1, 0, 1e-3, 0.1, 0.5, 1, 2.5, 3.7}
local nonzero = {-3.7, -2.5, -0.5, -0.1, 0.1, 0.5, 1, 2.5, 3.7}

local unary_cases = {
  {"neg", function(x) return -x end, everywhere},
  {"abs", math.abs, everywhere},
  {"sign", sign, everywhere},
  {"square", function(x) return x * x end, everywhere},
  {"relu", function(x) return math.max(x, 0) end, everywhere},
  {"floor", math.floor, everywhere},
  {"ceil", math.ceil, everywhere},
  {"round", round, {-2.5, -1.5, -0.5, -0.4, 0.5, 0.6, 1.5, 2.5, 3.7}},
  {"trunc", trunc, everywhere},
  {"sqrt", math.sqrt, positive},
  {"rsqrt", function(x) return 1 / math.sqrt(x) end, positive},
  {"exp", math.exp, everywhere},
  {"log", math.log, positive},
  {"log1p", function(x) return math.log(1 + x) end, above_m1},
  {"expm1", function(x) return math.exp(x) - 1 end, everywhere},
  {"tanh", tanh, everywhere},
  {"sigmoid", sigmoid, everywhere},
  {"sin", math.sin, everywhere},
  {"cos", math.cos, everywhere},
  {"reciprocal", function(x) return 1 / x end, nonzero},
}

-- Shape of a broadcast, by NumPy's rule.
local function broadcast_shape(sa, sb)
  local n, out = math.max(#sa, #sb), {}
  for i = 1, n do
    local a, b = sa[#sa - n + i] or 1, sb[#sb - n + i] or 1
    assert(a == b or a == 1 or b == 1, "reference: shapes do not broadcast")
    out[i] = a == 1 and b or a
  end
  return out
end

-- f(a[...], b[...]) over the broadcast shape, by walking every output
-- position and reading each operand at that position clamped to its sizes.
local function broadcast_ref(a, b, f)
  local sa, sb = approx.shape_of(a), approx.shape_of(b)
  local so = broadcast_shape(sa, sb)
  local function read(x, s, idx)
    for d = 1, #s do
      local i = idx[#idx - #s + d]
      x = x[s[d] == 1 and 1 or i]
    end
    return x
  end
  local idx = {}
  local function build(d)
    if d > #so then return f(read(a, sa, idx), read(b, sb, idx)) end
    local r = {}
    for i = 1, so[d] do
      idx[d] = i
      r[i] = build(d + 1)
    end
    return r
  end
  return build(1)
end

-- A nested table of the given shape holding f(k) for k = 1, 2, ...
local function filled(shape, f)
  local k = 0
  local function build(d)
    if d > #shape then k = k + 1 return f(k) end
    local r = {}
    for i = 1, shape[d] do r[i] = build(d + 1) end
    return r
  end
  return build(1)
end

-- ---- unary ----------------------------------------------------------------

describe("unary ops", function()
  for _, case in ipairs(unary_cases) do
    local name, ref, xs = case[1], case[2], case[3]

    it(name .. " matches Lua's math in float64 to 1e-12", function()
      local y = mg.tensor(xs, "float64")[name](mg.tensor(xs, "float64"))
      assert.equal("float64", y:dtype())
      close(y, map(xs, ref), 1e-12, 1e-12)
    end)

    it(name .. " matches in float32 to 1e-6 relative", function()
      local x = mg.tensor(xs)
      local y = x[name](x)
      assert.equal("float32", y:dtype())
      -- the reference sees the same float32-rounded inputs
      close(y, map(map(xs, f32), ref), 1e-7, 1e-6)
    end)

    it(name .. "_ works in place and returns the tensor", function()
      local x = mg.tensor(xs, "float64")
      local expected = x[name](x):totable()
      assert.equal(x, x[name .. "_"](x))
      assert.same(expected, x:totable())
    end)

    it(name .. " is also mg." .. name, function()
      local x = mg.tensor(xs, "float64")
      assert.same(x[name](x):totable(), mg[name](x):totable())
    end)
  end

  it("gives inf and nan at the edges of a domain", function()
    local l = mg.tensor({0, -1}, "float64"):log()
    assert.equal(-inf, l[1])
    assert.is_true(l[2] ~= l[2])                               -- log(-1) is nan
    local r = mg.tensor({-4}, "float64"):sqrt()
    assert.is_true(r[1] ~= r[1])
    assert.equal(inf, mg.tensor({0}, "float64"):reciprocal()[1])
    assert.equal(inf, mg.tensor({1000}, "float64"):exp()[1])
    assert.equal(0, mg.tensor({-1000}, "float64"):sigmoid()[1])
    assert.equal(1, mg.tensor({1000}, "float64"):sigmoid()[1])
  end)

  it("applies to non-contiguous tensors in logical order", function()
    local base = mg.tensor({{0.1, 0.2, 0.3}, {0.4, 0.5, 0.6}}, "float64")
    close(base:t():exp(), {{math.exp(0.1), math.exp(0.4)},
                           {math.exp(0.2), math.exp(0.5)},
                           {math.exp(0.3), math.exp(0.6)}}, 1e-15, 1e-15)
    local y = base:narrow(2, 2, 2):clone()
    base:narrow(2, 2, 2):sqrt_()
    close(base, {{0.1, math.sqrt(0.2), math.sqrt(0.3)},
                 {0.4, math.sqrt(0.5), math.sqrt(0.6)}}, 1e-15, 1e-15)
    assert.same({{0.2, 0.3}, {0.5, 0.6}}, y:totable())
  end)

  it("keeps int64 for abs, neg, sign, square, relu and rounding", function()
    local i = mg.tensor({-3, 0, 5}, "int64")
    values(i:abs(), {3, 0, 5}, "int64")
    values(-i, {3, 0, -5}, "int64")
    values(i:neg(), {3, 0, -5}, "int64")
    values(i:sign(), {-1, 0, 1}, "int64")
    values(i:square(), {9, 0, 25}, "int64")
    values(i:relu(), {0, 0, 5}, "int64")
    values(i:floor(), {-3, 0, 5}, "int64")
    values(i:round(), {-3, 0, 5}, "int64")
    values(mg.tensor({-4}, "int64"):abs_(), {4}, "int64")
  end)

  it("computes float-only ops of int64 in float32", function()
    local y = mg.tensor({4, 9, 2}, "int64"):sqrt()
    assert.equal("float32", y:dtype())
    close(y, {2, 3, math.sqrt(2)}, 0, 1e-7)
    assert.equal("float32", mg.tensor({1}, "int64"):exp():dtype())
    assert.has_error(function() mg.tensor({4}, "int64"):sqrt_() end,
      "sqrt_: the result would be float32, which cannot be stored in place in an int64 tensor")
  end)

  it("unary minus works through Lua's operator", function()
    values(-mg.tensor({1, -2}, "float64"), {-1, 2}, "float64")
  end)
end)

-- ---- binary ---------------------------------------------------------------

describe("binary arithmetic", function()
  local xs = {-7, -3.5, -1, 0.5, 2, 7.25}
  local ys = {2, -2, 3, 0.25, -1.5, 4}
  local ops = {
    {"+", "add", function(a, b) return a + b end},
    {"-", "sub", function(a, b) return a - b end},
    {"*", "mul", function(a, b) return a * b end},
    {"/", "div", function(a, b) return a / b end},
    {"//", "floor_divide", function(a, b) return a // b end},
    {"%", "remainder", function(a, b) return a % b end},
  }
  local apply = {
    ["+"] = function(a, b) return a + b end,
    ["-"] = function(a, b) return a - b end,
    ["*"] = function(a, b) return a * b end,
    ["/"] = function(a, b) return a / b end,
    ["//"] = function(a, b) return a // b end,
    ["%"] = function(a, b) return a % b end,
    ["^"] = function(a, b) return a ^ b end,
  }

  for _, op in ipairs(ops) do
    local sym, name, ref = op[1], op[2], op[3]

    it("a " .. sym .. " b of two float64 tensors matches Lua", function()
      local a, b = mg.tensor(xs, "float64"), mg.tensor(ys, "float64")
      local expected = {}
      for i = 1, #xs do expected[i] = ref(xs[i], ys[i]) end
      close(apply[sym](a, b), expected, 1e-15, 1e-15)
      close(a[name](a, b), expected, 1e-15, 1e-15)
    end)

    it("a " .. sym .. " 3 and 3 " .. sym .. " a take a scalar on either side", function()
      local a = mg.tensor(ys, "float64")
      local right, left = {}, {}
      for i = 1, #ys do
        right[i] = ref(ys[i], 3)
        left[i] = ref(3, ys[i])
      end
      close(apply[sym](a, 3), right, 1e-15, 1e-15)
      close(apply[sym](3, a), left, 1e-15, 1e-15)
    end)
  end

  it("2 - t, 2 / t and 2 ^ t put the scalar on the left", function()
    local t = mg.tensor({1, 4, -0.5}, "float64")
    values(2 - t, {1, -2, 2.5}, "float64")
    values(2 / t, {2, 0.5, -4}, "float64")
    close(2 ^ t, {2, 16, 2 ^ -0.5}, 1e-15, 1e-15)
  end)

  it("^ raises to tensor and scalar powers", function()
    local t = mg.tensor({1.5, 2, 3}, "float64")
    close(t ^ 2, {2.25, 4, 9}, 0, 1e-15)
    close(t ^ 0.5, {math.sqrt(1.5), math.sqrt(2), math.sqrt(3)}, 0, 1e-15)
    close(t ^ mg.tensor({2, -1, 0.5}, "float64"), {2.25, 0.5, math.sqrt(3)},
          0, 1e-15)
    close(t:pow(3), {3.375, 8, 27}, 0, 1e-15)
    values(mg.tensor({2, 3}, "int64") ^ 3, {8, 27}, "int64")
  end)

  it("floors like Lua and Python: -7 // 2 = -4 and -7 % 2 = 1", function()
    local a = mg.tensor({-7, 7, -7, 7, -8}, "int64")
    local b = mg.tensor({2, -2, -2, 2, 2}, "int64")
    values(a // b, {-4, -4, 3, 3, -4}, "int64")
    values(a % b, {1, -1, -1, 1, 0}, "int64")
    local fa, fb = a:double(), b:double()
    values(fa // fb, {-4, -4, 3, 3, -4}, "float64")
    values(fa % fb, {1, -1, -1, 1, 0}, "float64")
    values(mg.tensor({-7.5}, "float64") % 2, {0.5}, "float64")
    values(mg.tensor({7.5}, "float64") % -2, {-0.5}, "float64")
  end)

  it("raises on integer division by zero", function()
    local a = mg.tensor({1, 2}, "int64")
    assert.has_error(function() return a // mg.tensor({1, 0}, "int64") end,
                     "floor_divide: integer division by zero")
    assert.has_error(function() return a % 0 end,
                     "remainder: integer division by zero")
    assert.has_error(function() return 5 // mg.tensor({0}, "int64") end,
                     "floor_divide: integer division by zero")
    assert.has_error(function() a:remainder_(mg.tensor({0}, "int64")) end,
                     "remainder: integer division by zero")
    values(a, {1, 2}, "int64")              -- and leaves a untouched
  end)

  it("divides floats by zero to inf and nan", function()
    local r = mg.tensor({1, -1, 0}, "float64") / 0
    assert.equal(inf, r[1])
    assert.equal(-inf, r[2])
    assert.is_true(r[3] ~= r[3])
  end)

  it("maximum, minimum and atan2 match Lua", function()
    local a = mg.tensor(xs, "float64")
    local b = mg.tensor(ys, "float64")
    local mx, mn, at = {}, {}, {}
    for i = 1, #xs do
      mx[i] = math.max(xs[i], ys[i])
      mn[i] = math.min(xs[i], ys[i])
      at[i] = math.atan(xs[i], ys[i])
    end
    values(a:maximum(b), mx, "float64")
    values(mg.minimum(a, b), mn, "float64")
    close(a:atan2(b), at, 1e-15, 1e-15)
    values(a:maximum(0), map(xs, function(x) return math.max(x, 0) end),
           "float64")
  end)

  it("propagates NaN through maximum, minimum, relu and clamp", function()
    local a = mg.tensor({nan, 1, nan}, "float64")
    local b = mg.tensor({1, nan, nan}, "float64")
    for _, r in ipairs{a:maximum(b), a:minimum(b)} do
      local t = r:totable()
      assert.is_true(t[1] ~= t[1] and t[2] ~= t[2] and t[3] ~= t[3])
    end
    assert.is_true(mg.tensor({nan}):relu()[1] ~= mg.tensor({nan}):relu()[1])
    local c = mg.tensor({nan, 5, -5}, "float64"):clamp(-1, 1):totable()
    assert.is_true(c[1] ~= c[1])
    assert.same({1, -1}, {c[2], c[3]})
  end)
end)

describe("in-place binary ops", function()
  it("add_, sub_, mul_ and div_ update and return the tensor", function()
    local t = mg.tensor({{1, 2}, {3, 4}}, "float64")
    assert.equal(t, t:add_(mg.tensor({10, 20}, "float64")))
    values(t, {{11, 22}, {13, 24}}, "float64")
    t:sub_(1):mul_(2):div_(mg.tensor({{2}, {4}}, "float64"))
    values(t, {{10, 21}, {6, 11.5}}, "float64")
  end)

  it("writes through a strided view", function()
    local base = mg.zeros(2, 3, "float64")
    base:t():add_(mg.tensor({1, 2}, "float64"))
    values(base, {{1, 1, 1}, {2, 2, 2}}, "float64")
  end)

  it("reads an operand that overlaps the destination as it was before", function()
    local a = mg.tensor({{1, 2}, {3, 4}}, "float64")
    a:add_(a:t())                                 -- a + a^T, by hand
    values(a, {{2, 5}, {5, 8}}, "float64")
    local c = mg.tensor({{1, 2}, {3, 4}}, "float64")
    c:mul_(c[1])                                  -- every row times row 1
    values(c, {{1, 4}, {3, 8}}, "float64")
    local d = mg.tensor({1, 2, 3}, "float64")
    d:add_(d)
    values(d, {2, 4, 6}, "float64")
  end)

  it("refuses an expanded destination, whose elements alias", function()
    local base = mg.tensor({{1, 2, 3}}, "float64")
    local e = base:expand(4, 3)
    assert.has_error(function() e:add_(1) end,
      "add_: the destination of shape [4,3] is expanded (several of its " ..
      "elements share one memory location); clone it first")
    assert.has_error(function() e:exp_() end,
      "exp_: the destination of shape [4,3] is expanded (several of its " ..
      "elements share one memory location); clone it first")
    values(base, {{1, 2, 3}}, "float64")
    -- a size-1 dim with stride 0 aliases nothing
    values(mg.tensor({5}, "float64"):expand(1, 1):add_(1), {{6}}, "float64")
    values(e:clone():add_(1), {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}, {2, 3, 4}}, "float64")
  end)

  it("refuses an operand that would change the shape", function()
    assert.has_error(function() mg.zeros(3):add_(mg.zeros(2, 3)) end,
      "add_: operand of shape [2,3] does not broadcast to the destination's shape [3]")
  end)

  it("refuses a result that would not fit the dtype", function()
    assert.has_error(function() mg.zeros(2, "int64"):add_(1.5) end,
      "add_: the result would be float32, which cannot be stored in place in a tensor of dtype int64")
    assert.has_error(function() mg.zeros(2, "int64"):div_(2) end,
      "div_: the result would be float32, which cannot be stored in place in a tensor of dtype int64")
    values(mg.zeros(2, "int64"):add_(2):mul_(3), {6, 6}, "int64")
  end)

  it("casts a float operand to a float destination's dtype", function()
    local t = mg.zeros(2):add_(mg.tensor({0.1, 1}, "float64"))
    values(t, {f32(0.1), 1}, "float32")
  end)
end)

describe("dtype promotion", function()
  local i = mg.tensor({1, 2}, "int64")
  local f = mg.tensor({0.5, 0.25})
  local d = mg.tensor({0.5, 0.25}, "float64")

  it("int64 + float32 gives float32", function()
    values(i + f, {1.5, 2.25}, "float32")
    values(f + i, {1.5, 2.25}, "float32")
  end)

  it("float32 + float64 gives float64", function()
    values(f + d, {1, 0.5}, "float64")
    values(i * d, {0.5, 0.5}, "float64")
  end)

  it("int64 / int64 gives float32", function()
    values(mg.tensor({3, -3}, "int64") / mg.tensor({2, 2}, "int64"),
           {1.5, -1.5}, "float32")
    values(mg.tensor({3}, "int64") / 2, {1.5}, "float32")
    values(6 / mg.tensor({4}, "int64"), {1.5}, "float32")
  end)

  it("an integer scalar keeps int64, a fractional one gives float32", function()
    values(i * 2, {2, 4}, "int64")
    values(i + 2, {3, 4}, "int64")
    values(i * 2.5, {2.5, 5}, "float32")
    values(2.5 - i, {1.5, 0.5}, "float32")
  end)

  it("a scalar never raises a float tensor's dtype", function()
    assert.equal("float32", (f * 3):dtype())
    assert.equal("float32", (0.1 + f):dtype())
    assert.equal("float64", (d * 3):dtype())
    -- the scalar is rounded to float32 and the sum computed in float32
    close(f + 0.1, {f32(f32(0.5) + f32(0.1)), f32(f32(0.25) + f32(0.1))}, 0, 0)
  end)

  it("int64 // and % stay int64", function()
    values(i // 2, {0, 1}, "int64")
    values(i % 2, {1, 0}, "int64")
  end)

  it("atan2 of int64 gives float32", function()
    local r = mg.tensor({1}, "int64"):atan2(mg.tensor({1}, "int64"))
    assert.equal("float32", r:dtype())
    close(r, {math.pi / 4}, 0, 1e-7)
  end)

  it("int64 arithmetic is exact beyond 2^53", function()
    local big = mg.tensor({9007199254740993}, "int64")
    values(big + mg.tensor({2}, "int64"), {9007199254740995}, "int64")
    values(big * 3, {27021597764222979}, "int64")
  end)
end)

describe("comparisons", function()
  local a = mg.tensor({1, 2, 3, 4}, "float64")
  local b = mg.tensor({4, 2, 1, 4}, "float64")
  local cases = {
    {"eq", function(x, y) return x == y end},
    {"ne", function(x, y) return x ~= y end},
    {"lt", function(x, y) return x < y end},
    {"le", function(x, y) return x <= y end},
    {"gt", function(x, y) return x > y end},
    {"ge", function(x, y) return x >= y end},
  }
  for _, c in ipairs(cases) do
    local name, ref = c[1], c[2]
    it(name .. " gives a 1/0 mask in the operands' dtype", function()
      local expected, vs2 = {}, {}
      local av, bv = a:totable(), b:totable()
      for k = 1, 4 do
        expected[k] = ref(av[k], bv[k]) and 1 or 0
        vs2[k] = ref(av[k], 2) and 1 or 0
      end
      values(a[name](a, b), expected, "float64")
      values(a:float()[name](a:float(), b:float()), expected, "float32")
      values(a:long()[name](a:long(), b:long()), expected, "int64")
      values(a[name](a, 2), vs2, "float64")
    end)
  end

  it("promotes mixed operands before comparing", function()
    values(mg.tensor({1, 2}, "int64"):eq(mg.tensor({1, 2.5})), {1, 0}, "float32")
  end)

  it("compares against NaN as false (ne as true)", function()
    local x = mg.tensor({nan}, "float64")
    values(x:eq(x), {0}, "float64")
    values(x:ne(x), {1}, "float64")
    values(x:lt(1), {0}, "float64")
  end)

  it("broadcasts", function()
    values(mg.tensor({{1}, {3}}):gt(mg.tensor({0, 2, 4})),
           {{1, 0, 0}, {1, 1, 0}}, "float32")
  end)
end)

describe("where", function()
  local cond = mg.tensor({1, 0, 1, 0}, "int64")

  it("picks from two tensors by a nonzero condition", function()
    values(mg.where(cond, mg.tensor({1, 2, 3, 4}, "float64"),
                    mg.tensor({-1, -2, -3, -4}, "float64")),
           {1, -2, 3, -4}, "float64")
  end)

  it("takes numbers for either branch", function()
    values(mg.where(cond, mg.tensor({1, 2, 3, 4}), 0), {1, 0, 3, 0}, "float32")
    values(mg.where(cond, 9, mg.tensor({1, 2, 3, 4}, "int64")), {9, 2, 9, 4},
           "int64")
    values(mg.where(mg.tensor({0.5, 0, -2}), 1, -1), {1, -1, 1}, "float32")
  end)

  it("broadcasts all three", function()
    values(mg.where(mg.tensor({{1}, {0}}), mg.tensor({1, 2, 3}), mg.tensor(0)),
           {{1, 2, 3}, {0, 0, 0}}, "float32")
  end)

  it("promotes the branches", function()
    values(mg.where(mg.tensor({1, 0}), mg.tensor({1, 2}, "int64"),
                    mg.tensor({0.5, 0.5}, "float64")), {1, 0.5}, "float64")
  end)

  it("has a method form t:where(cond, other)", function()
    values(mg.tensor({1, 2, 3}):where(mg.tensor({1, 0, 1}), 9), {1, 9, 3},
           "float32")
  end)
end)

describe("clamp", function()
  local t = mg.tensor({-3, -1, 0, 2, 5}, "float64")

  it("clamps to both bounds", function()
    values(t:clamp(-1, 2), {-1, -1, 0, 2, 2}, "float64")
    values(t:clip(0, 1), {0, 0, 0, 1, 1}, "float64")
  end)

  it("clamps to one bound when the other is nil", function()
    values(t:clamp(0), {0, 0, 0, 2, 5}, "float64")
    values(t:clamp(nil, 0), {-3, -1, 0, 0, 0}, "float64")
  end)

  it("takes an options table", function()
    values(t:clamp{min = -2}, {-2, -1, 0, 2, 5}, "float64")
    values(t:clamp{max = 1}, {-3, -1, 0, 1, 1}, "float64")
    values(t:clamp{min = 0, max = 3}, {0, 0, 0, 2, 3}, "float64")
    assert.has_error(function() t:clamp{lo = 1} end,
                     "clamp: unknown option 'lo'")
  end)

  it("keeps int64, rounding fractional bounds inward", function()
    values(mg.tensor({-5, 0, 5}, "int64"):clamp(-1.5, 2.5), {-1, 0, 2}, "int64")
  end)

  it("needs a bound, and min <= max", function()
    assert.has_error(function() t:clamp() end,
                     "clamp: give at least one of min and max")
    assert.has_error(function() t:clamp(2, 1) end,
                     "clamp: min 2 is greater than max 1")
  end)
end)

describe("masked_fill", function()
  it("fills where the mask is nonzero, leaving the input alone", function()
    local t = mg.tensor({{1, 2}, {3, 4}}, "float64")
    local m = mg.tensor({{1, 0}, {0, 1}}, "int64")
    values(t:masked_fill(m, -1), {{-1, 2}, {3, -1}}, "float64")
    values(t, {{1, 2}, {3, 4}}, "float64")
  end)

  it("masked_fill_ works in place with a broadcast mask", function()
    local t = mg.tensor({{1, 2}, {3, 4}}, "float64")
    assert.equal(t, t:masked_fill_(mg.tensor({0, 1}), 0))
    values(t, {{1, 0}, {3, 0}}, "float64")
  end)

  it("takes a comparison's mask", function()
    local t = mg.tensor({-2, 1, -3}, "float64")
    values(t:masked_fill(t:lt(0), 0), {0, 1, 0}, "float64")
  end)

  it("refuses a mask that would change the shape", function()
    assert.has_error(function() mg.zeros(3):masked_fill_(mg.zeros(2, 3), 1) end,
      "masked_fill: mask of shape [2,3] does not broadcast to the tensor's shape [3]")
  end)
end)

-- ---- broadcasting -----------------------------------------------------------

describe("broadcasting", function()
  local shape_pairs = {
    {{3, 1}, {1, 4}},
    {{2, 3, 4}, {4}},
    {{5, 1, 3}, {1, 4, 1}},
    {{4}, {3, 1}},
    {{2, 1, 3}, {2, 3}},
    {{1}, {2, 3}},
    {{6}, {6}},
    {{2, 0}, {1}},
    {{}, {2, 2}},
    {{3, 2}, {}},
  }
  for _, p in ipairs(shape_pairs) do
    local sa, sb = p[1], p[2]
    it(("combines [%s] with [%s]"):format(table.concat(sa, ","),
                                           table.concat(sb, ",")), function()
      local ta = filled(sa, function(k) return k end)
      local tb = filled(sb, function(k) return 10 * k end)
      local a, b = mg.tensor(ta, "float64"), mg.tensor(tb, "float64")
      close(a + b, broadcast_ref(ta, tb, function(x, y) return x + y end), 0, 0)
      close(a * b - b, broadcast_ref(ta, tb, function(x, y) return x * y - y end),
            0, 0)
      close(b / a, broadcast_ref(tb, ta, function(x, y) return x / y end),
            1e-15, 1e-15)
    end)
  end

  it("a scalar combines with any shape", function()
    values(mg.tensor({{1, 2}}, "float64") * 2, {{2, 4}}, "float64")
    values(mg.tensor(5, "float64") - mg.tensor({{1}, {2}}, "float64"),
           {{4}, {3}}, "float64")
    values(mg.tensor(5, "float64") + mg.tensor(1, "float64"), 6, "float64")
  end)

  it("broadcasts a column against a row", function()
    values(mg.tensor({{1}, {2}, {3}}, "int64") * mg.tensor({1, 10}, "int64"),
           {{1, 10}, {2, 20}, {3, 30}}, "int64")
  end)

  it("names both shapes when they do not broadcast", function()
    assert.has_error(function() return mg.zeros(3, 2) + mg.zeros(4) end,
      "add: shapes [3,2] and [4] cannot be broadcast together " ..
      "(size 2 vs 4 at dimension 1 from the right)")
    assert.has_error(function() return mg.zeros(2, 3, 4):mul(mg.zeros(5, 4)) end,
      "mul: shapes [2,3,4] and [5,4] cannot be broadcast together " ..
      "(size 3 vs 5 at dimension 2 from the right)")
    assert.has_error(function() return mg.zeros(2):lt(mg.zeros(3)) end,
      "lt: shapes [2] and [3] cannot be broadcast together " ..
      "(size 2 vs 3 at dimension 1 from the right)")
  end)
end)

-- ---- layouts and threads ----------------------------------------------------

describe("layouts", function()
  it("gives the same results on transposed inputs as on contiguous ones", function()
    local a = mg.arange(12, "float64"):reshape(3, 4)
    local b = mg.arange(12, "float64"):reshape(4, 3) * 0.5 - 1
    local at, bc = a:t(), b:contiguous()
    local atc = at:contiguous()
    assert.same((atc + bc):totable(), (at + b):totable())
    assert.same((atc * b:t():t()):totable(), (at * bc):totable())
    assert.same(atc:tanh():totable(), at:tanh():totable())
    assert.same(atc:gt(bc):totable(), at:gt(b):totable())
    assert.same(mg.where(atc:gt(2), atc, bc):totable(),
                mg.where(at:gt(2), at, b):totable())
    -- and the values themselves
    close(at + b, broadcast_ref(atc:totable(), bc:totable(),
                                function(x, y) return x + y end), 0, 0)
  end)

  -- Big enough for the iterator to walk transposed operands in tiles, with
  -- sizes that are not multiples of a tile and a batch dim in front.
  it("gives exact values on large permuted operands, walked in tiles", function()
    local B, R, C = 3, 70, 131
    local x = mg.arange(B * C * R, "float64"):reshape(B, C, R)
    local xt = x:permute(1, 3, 2)          -- [B, R, C], inner stride R
    local y = mg.arange(B * R * C, "float64"):reshape(B, R, C)
    local s = (xt + y * 0.5):totable()
    local c = xt:contiguous():totable()
    for b = 1, B do
      for r = 1, R do
        for k = 1, C do
          local xv = ((b - 1) * C + (k - 1)) * R + (r - 1)
          local yv = ((b - 1) * R + (r - 1)) * C + (k - 1)
          if c[b][r][k] ~= xv or s[b][r][k] ~= xv + yv * 0.5 then
            error(("wrong value at [%d][%d][%d]"):format(b, r, k))
          end
        end
      end
    end
  end)

  it("handles expanded (stride 0) operands", function()
    local e = mg.tensor({1, 2, 3}, "float64"):expand(2, 3)
    values(e + mg.tensor({{10}, {20}}, "float64"),
           {{11, 12, 13}, {21, 22, 23}}, "float64")
  end)
end)

describe("threads", function()
  local saved
  before_each(function() saved = mg.get_num_threads() end)
  after_each(function() mg.set_num_threads(saved) end)

  -- 1e6 elements, laid out so that thread boundaries fall inside rows and
  -- the iterator has to restart mid-row on a transposed operand.
  local function compute()
    local a = mg.arange(1000000, "float64"):reshape(1000, 1000)
    local col = mg.arange(1000, "float64"):reshape(1000, 1) * 0.001
    return (a:t() * 2 + col):sin(), (a:float() * 1e-6):exp()
  end

  it("gives identical results with 1 and 2 threads, and the right ones", function()
    mg.set_num_threads(1)
    assert.equal(1, mg.get_num_threads())
    local r1, e1 = compute()
    mg.set_num_threads(2)
    assert.equal(2, mg.get_num_threads())
    local r2, e2 = compute()
    local t1, t2 = r1:totable(), r2:totable()
    local u1, u2 = e1:totable(), e2:totable()
    for i = 1, 1000 do
      for j = 1, 1000 do
        if t1[i][j] ~= t2[i][j] or u1[i][j] ~= u2[i][j] then
          error(("thread counts disagree at [%d][%d]"):format(i, j))
        end
      end
    end
    -- r[i][j] = sin(2 a[j][i] + (i-1)/1000) with a[j][i] = 1000(j-1) + i-1
    for i = 1, 1000, 37 do
      for j = 1, 1000, 3 do
        local ref = math.sin(2 * (1000 * (j - 1) + i - 1) + (i - 1) * 0.001)
        if math.abs(t2[i][j] - ref) > 1e-9 then
          error(("r[%d][%d] = %.17g, expected %.17g"):format(i, j, t2[i][j], ref))
        end
        local k = 1000 * (i - 1) + j - 1
        local eref = math.exp(f32(f32(k) * f32(1e-6)))
        assert(math.abs(u2[i][j] - eref) <= 1e-6 * eref, "exp value")
      end
    end
  end)
end)

describe("mg.clock", function()
  it("is a monotonic wall clock in seconds", function()
    local t0 = mg.clock()
    assert.is_number(t0)
    os.execute("sleep 0.05")
    local dt = mg.clock() - t0
    -- sleep's 50 ms pass on the wall clock; CPU time (os.clock) would not
    -- advance by that much.
    assert.is_true(dt >= 0.04 and dt < 5, "elapsed " .. dt)
  end)
end)
