-- Reductions: sum, mean, prod, max, min, argmax, argmin, var, std.
-- References come from hand computation or from PyTorch through
-- spec/fixtures/gen_reduce.py (never from moongrad itself).
local mg = require "moongrad"

local here = debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./"
local fixtures = dofile(here .. "fixtures/reduce_cases.lua")

local OPS = {"sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std"}

-- ---- helpers ----------------------------------------------------------------

local function flatten(v, out)
  out = out or {}
  if type(v) ~= "table" then
    out[#out + 1] = v
  else
    for _, x in ipairs(v) do flatten(x, out) end
  end
  return out
end

local function values(t) return flatten(t:totable()) end

local function isnan(x) return x ~= x end

-- Tolerance of a result of dtype dt against a reference computed in
-- float64: float32 results are the reference rounded to float32.
local function close(got, want, dt)
  if isnan(want) then return isnan(got) end
  if want == math.huge or want == -math.huge then return got == want end
  if dt == "int64" then return math.type(got) == "integer" and got == want end
  local tol = dt == "float64" and 1e-12 or 1e-6
  return math.abs(got - want) <= tol * math.max(math.abs(want), 1e-300)
    + (dt == "float64" and 1e-300 or 1e-30)
end

local function assert_values(got, want, dt, what)
  assert.are.equal(#want, #got, what .. ": element count")
  for i = 1, #want do
    if not close(got[i], want[i], dt) then
      error(string.format("%s: element %d is %s, expected %s (%s)", what, i,
                          tostring(got[i]), tostring(want[i]), dt), 2)
    end
  end
end

local function assert_tensor(t, shape, dt, want, what)
  assert.are.same(shape, t:shape(), what .. ": shape")
  assert.are.equal(dt, t:dtype(), what .. ": dtype")
  assert_values(values(t), want, dt, what)
end

local function make(input, view)
  local t = mg.tensor(input.data, input.dtype):reshape(input.shape)
  if view and view[1] == "transpose" then
    t = t:transpose(view[2], view[3])
  elseif view and view[1] == "narrow" then
    t = t:narrow(view[2], view[3], view[4])
  end
  return t
end

local error_of = require("support.check").err_of

-- ---- every op against PyTorch ---------------------------------------------------

for _, op in ipairs(OPS) do
  describe(op, function()
    for _, c in ipairs(fixtures.cases) do
      if c.op == op then
        it("matches PyTorch for " .. c.name, function()
          local t = make(fixtures.inputs[c.input], c.view)
          if c.view then assert.is_false(t:is_contiguous()) end
          local r, idx = t[op](t, table.unpack(c.args))
          assert_tensor(r, c.rshape, c.rdtype, c.values, c.name)
          if c.indices then
            assert_tensor(idx, c.rshape, "int64", c.indices, c.name .. " (indices)")
          else
            assert.is_nil(idx)
          end
        end)
      end
    end
  end)
end

-- ---- hand-computed behaviour, op by op ----------------------------------------------

describe("sum", function()
  local t = mg.tensor({{1, 2, 3}, {4, 5, 6}}, "float64")

  it("reduces every element to a 0-d tensor", function()
    local s = t:sum()
    assert.are.same({}, s:shape())
    assert.are.equal(21, s:item())
  end)

  it("reduces over one dimension, 1-based and negative", function()
    assert_tensor(t:sum(1), {3}, "float64", {5, 7, 9}, "sum(1)")
    assert_tensor(t:sum(2), {2}, "float64", {6, 15}, "sum(2)")
    assert_tensor(t:sum(-1), {2}, "float64", {6, 15}, "sum(-1)")
    assert_tensor(t:sum(-2), {3}, "float64", {5, 7, 9}, "sum(-2)")
  end)

  it("reduces over one dimension with keepdim as a boolean or an option", function()
    assert_tensor(t:sum(2, true), {2, 1}, "float64", {6, 15}, "sum(2, true)")
    assert_tensor(t:sum(1, {keepdim = true}), {1, 3}, "float64", {5, 7, 9},
                  "sum(1, {keepdim = true})")
    assert_tensor(t:sum(1, false), {3}, "float64", {5, 7, 9}, "sum(1, false)")
  end)

  it("keeps an all-ones shape for every element with keepdim", function()
    assert_tensor(t:sum{keepdim = true}, {1, 1}, "float64", {21}, "sum{keepdim}")
    assert_tensor(t:sum(nil, true), {1, 1}, "float64", {21}, "sum(nil, true)")
  end)

  it("is also a module function", function()
    assert_tensor(mg.sum(t, 2), {2}, "float64", {6, 15}, "mg.sum(t, 2)")
    assert.are.equal(21, mg.sum(t):item())
  end)

  it("keeps float32 and int64 dtypes", function()
    assert.are.equal("float32", mg.ones(2, 3):sum():dtype())
    local s = mg.tensor({1, 2, 3}, "int64"):sum()
    assert.are.equal("int64", s:dtype())
    assert.are.equal(6, s:item())
    assert.are.equal("integer", math.type(s:item()))
  end)

  it("is exact for int64 beyond 2^53", function()
    local big = mg.tensor({9007199254740993, 2, 9007199254740995}, "int64")
    assert.are.equal(18014398509481990, big:sum():item())
  end)

  it("is 0 over an empty tensor or an empty dimension", function()
    assert.are.equal(0, mg.zeros(0):sum():item())
    assert_tensor(mg.zeros(2, 0):sum(2), {2}, "float32", {0, 0}, "sum over size 0")
    assert_tensor(mg.zeros(0, 3):sum(1), {3}, "float32", {0, 0, 0}, "sum over size 0")
    assert_tensor(mg.zeros(0, 3):sum(2), {0}, "float32", {}, "sum leaving size 0")
  end)

  it("propagates NaN and infinities", function()
    assert.is_true(isnan(mg.tensor({1, 0 / 0, 3}):sum():item()))
    assert.are.equal(math.huge, mg.tensor({1, 1 / 0, 3}):sum():item())
    assert.is_true(isnan(mg.tensor({-1 / 0, 1 / 0}):sum():item()))
  end)
end)

describe("mean", function()
  it("averages over everything and over a dim", function()
    local t = mg.tensor({{1, 2, 3}, {4, 5, 6}}, "float64")
    assert.are.equal(3.5, t:mean():item())
    assert_tensor(t:mean(1), {3}, "float64", {2.5, 3.5, 4.5}, "mean(1)")
    assert_tensor(t:mean(2, true), {2, 1}, "float64", {2, 5}, "mean(2, true)")
  end)

  it("of 60000 float32 values of 0.1 is 0.1 to float precision", function()
    local m = mg.full({60000}, 0.1):mean()
    assert.are.equal("float32", m:dtype())
    assert.is_true(math.abs(m:item() - 0.1) <= 1e-7 * 0.1)
    local cols = mg.full({60000, 3}, 0.1):mean(1)
    for _, v in ipairs(values(cols)) do
      assert.is_true(math.abs(v - 0.1) <= 1e-7 * 0.1)
    end
    local rows = mg.full({3, 60000}, 0.1):mean(2)
    for _, v in ipairs(values(rows)) do
      assert.is_true(math.abs(v - 0.1) <= 1e-7 * 0.1)
    end
  end)

  it("gives float32 for int64 data (PyTorch refuses; we promote)", function()
    local m = mg.tensor({1, 2, 4}, "int64"):mean()
    assert.are.equal("float32", m:dtype())
    assert.is_true(math.abs(m:item() - 7 / 3) < 1e-6)
  end)

  it("is NaN over nothing", function()
    assert.is_true(isnan(mg.zeros(0):mean():item()))
    for _, v in ipairs(values(mg.zeros(2, 0):mean(2))) do assert.is_true(isnan(v)) end
  end)
end)

describe("prod", function()
  it("multiplies over everything and over a dim", function()
    local t = mg.tensor({{1, 2, 3}, {4, 5, 6}}, "float64")
    assert.are.equal(720, t:prod():item())
    assert_tensor(t:prod(2), {2}, "float64", {6, 120}, "prod(2)")
    assert_tensor(t:prod(1, {keepdim = true}), {1, 3}, "float64", {4, 10, 18}, "prod(1)")
  end)

  it("is 1 over nothing", function()
    assert.are.equal(1, mg.zeros(0):prod():item())
    assert_tensor(mg.zeros(2, 0):prod(2), {2}, "float32", {1, 1}, "prod over size 0")
  end)

  it("stays int64 and wraps on overflow like PyTorch", function()
    local p = mg.tensor({4294967296, 4294967296, 3}, "int64"):prod()
    assert.are.equal("int64", p:dtype())
    assert.are.equal(0, p:item())
  end)
end)

describe("max", function()
  local t = mg.tensor({{3, 7, 7, 1}, {9, 0, 9, -2}}, "float64")

  it("over everything is one 0-d tensor", function()
    local m, extra = t:max()
    assert.are.same({}, m:shape())
    assert.are.equal(9, m:item())
    assert.is_nil(extra)
  end)

  it("over a dim returns values and 1-based int64 indices, first on ties", function()
    local v, i = t:max(2)
    assert_tensor(v, {2}, "float64", {7, 9}, "values")
    assert_tensor(i, {2}, "int64", {2, 1}, "indices")
    v, i = t:max(1, true)
    assert_tensor(v, {1, 4}, "float64", {9, 7, 9, 1}, "values")
    assert_tensor(i, {1, 4}, "int64", {2, 1, 2, 1}, "indices")
  end)

  it("returns NaN and the first NaN's position when a row holds NaN", function()
    local n = mg.tensor({{1, 0 / 0, 5, 0 / 0}, {2, 8, 4, 3}}, "float64")
    local v, i = n:max(2)
    local vv = values(v)
    assert.is_true(isnan(vv[1]))
    assert.are.equal(8, vv[2])
    assert.are.same({2, 2}, values(i))
    assert.is_true(isnan(n:max():item()))
  end)

  it("with a tensor argument is the elementwise maximum", function()
    local a = mg.tensor({1, 5, 3}, "float64")
    local b = mg.tensor({4, 2, 3}, "float64")
    assert_tensor(a:max(b), {3}, "float64", {4, 5, 3}, "max(a, b)")
    assert_tensor(mg.max(a, b), {3}, "float64", {4, 5, 3}, "mg.max(a, b)")
    assert_tensor(a:min(b), {3}, "float64", {1, 2, 3}, "min(a, b)")
  end)

  it("keeps the exact int64 value", function()
    local v, i = mg.tensor({1152921504606846977, 1152921504606846979,
                            1152921504606846978}, "int64"):max(1)
    assert.are.equal(1152921504606846979, v:item())
    assert.are.equal(2, i:item())
  end)

  it("over an empty dimension is an error, over a non-empty one fine", function()
    assert.has_error(function() mg.zeros(0, 3):max(1) end)
    assert.matches("max: cannot reduce over an empty dimension %(size 0%)",
                   error_of(function() mg.zeros(0, 3):max(1) end))
    assert.matches("max: cannot reduce over an empty tensor",
                   error_of(function() mg.zeros(0):max() end))
    local v, i = mg.zeros(0, 3):max(2)
    assert.are.same({0}, v:shape())
    assert.are.same({0}, i:shape())
  end)
end)

describe("min", function()
  it("over a dim returns values and 1-based indices, first on ties", function()
    local t = mg.tensor({{3, 1, 7, 1}, {9, 0, 9, -2}}, "int64")
    local v, i = t:min(2)
    assert_tensor(v, {2}, "int64", {1, -2}, "values")
    assert_tensor(i, {2}, "int64", {2, 4}, "indices")
    assert.are.equal(-2, t:min():item())
  end)

  it("over an empty dimension is an error naming min", function()
    assert.matches("min: cannot reduce over an empty dimension %(size 0%)",
                   error_of(function() mg.zeros(3, 0):min(2) end))
  end)
end)

describe("argmax", function()
  local t = mg.tensor({{3, 7, 7, 1}, {9, 0, 9, -2}}, "float32")

  it("over everything is the flat 1-based position as a 0-d int64", function()
    local a = t:argmax()
    assert.are.same({}, a:shape())
    assert.are.equal("int64", a:dtype())
    assert.are.equal(5, a:item())
  end)

  it("over a dim is 1-based, first on ties", function()
    assert_tensor(t:argmax(2), {2}, "int64", {2, 1}, "argmax(2)")
    assert_tensor(t:argmax(-2, true), {1, 4}, "int64", {2, 1, 2, 1}, "argmax(-2, true)")
    assert_tensor(t:argmin(2), {2}, "int64", {4, 4}, "argmin(2)")
    assert.are.equal(8, t:argmin():item())
  end)

  it("over an empty tensor is an error", function()
    assert.matches("argmax: cannot reduce over an empty tensor",
                   error_of(function() mg.zeros(0):argmax() end))
    assert.matches("argmin: cannot reduce over an empty dimension",
                   error_of(function() mg.zeros(2, 0):argmin(2) end))
  end)
end)

describe("var", function()
  local t = mg.tensor({{1, 2, 3, 4}, {2, 2, 2, 2}}, "float64")

  it("is unbiased by default (correction 1)", function()
    assert_tensor(t:var(2), {2}, "float64", {5 / 3, 0}, "var(2)")
    assert.is_true(close(t:var():item(), 5.5 / 7, "float64"))
  end)

  it("takes correction and keepdim as options", function()
    assert_tensor(t:var(2, {correction = 0}), {2}, "float64", {1.25, 0}, "var c=0")
    assert_tensor(t:var(2, {correction = 0, keepdim = true}), {2, 1}, "float64",
                  {1.25, 0}, "var c=0 keepdim")
    assert_tensor(t:var{correction = 0, keepdim = true}, {1, 1}, "float64",
                  {0.6875}, "var of everything, c=0, keepdim")
  end)

  it("is NaN when n - correction <= 0", function()
    assert.is_true(isnan(mg.tensor({5}, "float64"):var():item()))
    assert.are.equal(0, mg.tensor({5}, "float64"):var{correction = 0}:item())
    assert.is_true(isnan(mg.tensor({1, 2}, "float64"):var{correction = 2}:item()))
    assert.is_true(isnan(mg.zeros(0):var():item()))
  end)

  it("is two-pass: exact for a large offset", function()
    -- one-pass E[x^2] - E[x]^2 loses everything here
    local x = mg.tensor({1e8 + 1, 1e8 + 2, 1e8 + 3}, "float64")
    assert.are.equal(1, x:var():item())
  end)

  it("rejects a boolean third argument (unbiased or keepdim?)", function()
    assert.matches("var: expected an options table",
                   error_of(function() t:var(2, true) end))
  end)
end)

describe("std", function()
  it("is the square root of var", function()
    local t = mg.tensor({{1, 2, 3, 4}, {2, 2, 2, 2}}, "float64")
    assert_tensor(t:std(2), {2}, "float64", {math.sqrt(5 / 3), 0}, "std(2)")
    assert_tensor(t:std(2, {correction = 0}), {2}, "float64", {math.sqrt(1.25), 0},
                  "std c=0")
  end)

  it("of int64 gives float32", function()
    local s = mg.tensor({1, 2, 3, 4}, "int64"):std()
    assert.are.equal("float32", s:dtype())
    assert.is_true(math.abs(s:item() - math.sqrt(5 / 3)) < 1e-6)
  end)
end)

-- ---- large tensors: chunked paths and threads --------------------------------------

describe("reductions of large tensors", function()
  local cache = {}
  local function big_input(c)
    local key = c.dtype .. c.n .. tostring(c.nan_at) ..
      table.concat(c.max_at or {}, ",")
    if not cache[key] then
      local data = {}
      for i = 1, c.n do data[i] = ((i - 1) * 7919 % 1009 - 504) / 128 end
      for _, p in ipairs(c.max_at or {}) do data[p] = 100 end
      if c.nan_at then data[c.nan_at] = 0 / 0 end
      cache[key] = mg.tensor(data, c.dtype)
    end
    return cache[key]:reshape(c.shape)
  end

  for _, c in ipairs(fixtures.big) do
    it("match PyTorch for " .. c.name, function()
      local t = big_input(c)
      local r, idx = t[c.op](t, c.dim)
      assert_tensor(r, c.rshape, c.rdtype, c.values, c.name)
      if c.indices then
        assert_tensor(idx, c.rshape, "int64", c.indices, c.name .. " (indices)")
      end
    end)
  end

  it("give identical results with 1 and 2 threads", function()
    local saved = mg.get_num_threads()
    mg.manual_seed(7)
    local shapes = {{600, 700}, {3, 200000}, {200000, 3}}
    local xs = {}
    for k, s in ipairs(shapes) do xs[k] = mg.randn(s[1], s[2]) end
    local function run()
      local out = {}
      for k, x in ipairs(xs) do
        for _, op in ipairs(OPS) do
          for _, dim in ipairs({false, 1, 2}) do
            local r, i
            if dim then r, i = x[op](x, dim) else r = x[op](x) end
            out[#out + 1] = values(r)
            if i then out[#out + 1] = values(i) end
          end
        end
      end
      return out
    end
    mg.set_num_threads(1)
    local one = run()
    mg.set_num_threads(2)
    local two = run()
    mg.set_num_threads(saved)
    assert.are.equal(#one, #two)
    for k = 1, #one do
      assert.are.equal(#one[k], #two[k])
      for i = 1, #one[k] do
        if one[k][i] ~= two[k][i] then
          error(string.format("result %d differs at %d: %.17g vs %.17g", k, i,
                              one[k][i], two[k][i]))
        end
      end
    end
  end)
end)

-- ---- errors ----------------------------------------------------------------------

describe("reduction errors", function()
  local t = mg.ones(2, 3)

  it("name the op and the dim for a dimension out of range", function()
    assert.has_error(function() t:sum(3) end)
    assert.matches("sum: dimension 3 out of range for a 2%-dimensional tensor",
                   error_of(function() t:sum(3) end))
    assert.matches("argmax: dimension %-3 out of range",
                   error_of(function() t:argmax(-3) end))
    assert.matches("max: dimension 0 out of range",
                   error_of(function() t:max(0) end))
    assert.matches("mean: dimension must be an integer",
                   error_of(function() t:mean(1.5) end))
  end)

  it("reject unknown options and badly typed ones", function()
    assert.has_error(function() t:var(1, {bogus = 1}) end)
    assert.matches("var: unknown option 'bogus'",
                   error_of(function() t:var(1, {bogus = 1}) end))
    assert.matches("sum: unknown option 'correction'",
                   error_of(function() t:sum(1, {correction = 0}) end))
    assert.matches("sum: option 'keepdim' must be a boolean",
                   error_of(function() t:sum(1, {keepdim = 1}) end))
    assert.matches("std: option 'correction' must be a number",
                   error_of(function() t:std(1, {correction = "x"}) end))
    assert.matches("prod: expected keepdim %(a boolean%) or an options table",
                   error_of(function() t:prod(1, "yes") end))
  end)

  it("reject a non-tensor self", function()
    assert.has_error(function() mg.sum(3) end)
  end)

  it("report an empty reduction with the input's shape", function()
    assert.matches("min: cannot reduce over an empty tensor %(shape %[2,0%]%)",
                   error_of(function() mg.zeros(2, 0):min() end))
  end)
end)
