-- Creating tensors, reading their metadata, converting dtypes and reading
-- and writing elements. Reference values are written out by hand.
local mg = require "moongrad"
local approx = require "support.approx"
local values = approx.assert_values

describe("mg.tensor", function()
  it("makes a 0-d tensor from a number", function()
    local t = mg.tensor(2.5)
    assert.same({}, t:shape())
    assert.equal(0, t:dim())
    assert.equal(1, t:numel())
    assert.equal(2.5, t:item())
    assert.equal("float32", t:dtype())
  end)

  it("makes nested tensors from nested tables, row-major", function()
    local t = mg.tensor({{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}})
    assert.same({2, 3, 2}, t:shape())
    assert.same({{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}},
                t:totable())
    assert.equal(10, t:get(2, 2, 2))
  end)

  it("defaults to float32 and rounds to float32", function()
    local t = mg.tensor({0.1, 1 / 3})
    assert.equal("float32", t:dtype())
    assert.same({approx.f32(0.1), approx.f32(1 / 3)}, t:totable())
    assert.are_not.equal(0.1, t:totable()[1])
  end)

  it("keeps float64 values exactly", function()
    local t = mg.tensor({0.1, 1 / 3, -1e300}, "float64")
    assert.equal("float64", t:dtype())
    assert.same({0.1, 1 / 3, -1e300}, t:totable())
  end)

  it("makes int64 tensors whose elements read back as Lua integers", function()
    local t = mg.tensor({{1, -2}, {3, 4}}, "int64")
    assert.equal("int64", t:dtype())
    assert.equal(math.type(t:totable()[1][2]), "integer")
    assert.equal(-2, t:get(1, 2))
    assert.equal("integer", math.type(t[{1, 2}]))
  end)

  it("accepts booleans as 1 and 0", function()
    values(mg.tensor({true, false, true}, "int64"), {1, 0, 1}, "int64")
  end)

  it("copies a tensor rather than sharing it", function()
    local a = mg.tensor({1, 2, 3})
    local b = mg.tensor(a)
    b[1] = 10
    assert.same({1, 2, 3}, a:totable())
    assert.same({10, 2, 3}, b:totable())
    assert.is_false(a:shares_storage(b))
  end)

  it("converts a tensor it copies to a requested dtype", function()
    values(mg.tensor(mg.tensor({1.75, -1.75}, "float64"), "int64"), {1, -1},
           "int64")
  end)

  it("copies a non-contiguous tensor in its logical order", function()
    local a = mg.tensor({{1, 2, 3}, {4, 5, 6}}):t()
    values(mg.tensor(a), {{1, 4}, {2, 5}, {3, 6}}, "float32")
  end)

  it("makes empty tensors from empty tables", function()
    assert.same({0}, mg.tensor({}):shape())
    assert.same({2, 0}, mg.tensor({{}, {}}):shape())
    assert.equal(0, mg.tensor({{}, {}}):numel())
  end)

  it("rejects a ragged nested table, saying where", function()
    assert.has_error(function() mg.tensor({{1, 2}, {3}}) end,
      "tensor: ragged nested table: element data[2] has 1 entries, expected 2")
    assert.has_error(function() mg.tensor({{1, 2}, 3}) end,
      "tensor: ragged nested table: expected a table at depth 2, got number")
    assert.has_error(function() mg.tensor({1, {2}}) end,
      "tensor: elements must be numbers or booleans, got table")
  end)

  it("rejects a ragged table even when its first row is empty", function()
    assert.has_error(function() mg.tensor({{}, {1}}) end,
      "tensor: ragged nested table: element data[2] has 1 entries, expected 0")
    assert.has_error(function() mg.tensor({{}, 5}) end,
      "tensor: ragged nested table: expected a table at depth 2, got number")
  end)

  it("rejects an unknown dtype", function()
    assert.has_error(function() mg.tensor({1}, "complex64") end,
      "tensor: unknown dtype 'complex64' (expected \"float32\", \"float64\", \"int64\", \"uint8\", \"float16\", \"bfloat16\", \"int32\", \"int16\", \"int8\" or \"bool\")")
  end)
end)

describe("metadata", function()
  local t = mg.zeros(2, 3, 4)

  it("reports shape, size, dim, numel and length", function()
    assert.same({2, 3, 4}, t:shape())
    assert.same({2, 3, 4}, t:size())
    assert.equal(3, t:size(2))
    assert.equal(4, t:size(-1))
    assert.equal(2, t:size(-3))
    assert.equal(3, t:dim())
    assert.equal(24, t:numel())
    assert.equal(2, #t)
  end)

  it("refuses # on a 0-d tensor", function()
    assert.has_error(function() return #mg.tensor(1) end,
                     "#: a 0-d tensor has no length")
  end)

  it("reads the single element with item, and refuses more", function()
    assert.equal(7, mg.tensor({{7}}):item())
    assert.has_error(function() mg.zeros(2):item() end,
      "item: a tensor with one element is needed, got shape [2] (2 elements)")
  end)

  it("gives a number from totable on a 0-d tensor", function()
    assert.equal(-3, mg.tensor(-3, "int64"):totable())
  end)
end)

describe("constructors", function()
  it("zeros, ones and full take sizes or a table, and a dtype", function()
    values(mg.zeros(2, 3), {{0, 0, 0}, {0, 0, 0}}, "float32")
    values(mg.ones{2, 2}, {{1, 1}, {1, 1}}, "float32")
    values(mg.ones(3, "int64"), {1, 1, 1}, "int64")
    values(mg.zeros({2}, "float64"), {0, 0}, "float64")
    values(mg.full({2, 2}, 7), {{7, 7}, {7, 7}}, "float32")
    values(mg.full({3}, -2.5, "float64"), {-2.5, -2.5, -2.5}, "float64")
    values(mg.full({2}, 9, "int64"), {9, 9}, "int64")
  end)

  it("makes 0-d and empty shapes", function()
    values(mg.ones({}), 1, "float32")
    assert.same({3, 0}, mg.zeros(3, 0):shape())
    assert.equal(0, mg.zeros(3, 0):numel())
  end)

  it("empty has the requested shape and dtype", function()
    local e = mg.empty(4, 5, "float64")
    assert.same({4, 5}, e:shape())
    assert.equal("float64", e:dtype())
  end)

  it("arange with integers gives int64", function()
    values(mg.arange(5), {0, 1, 2, 3, 4}, "int64")
    values(mg.arange(2, 6), {2, 3, 4, 5}, "int64")
    values(mg.arange(1, 10, 3), {1, 4, 7}, "int64")
  end)

  it("arange with a float gives float32", function()
    values(mg.arange(0, 1, 0.25), {0, 0.25, 0.5, 0.75}, "float32")
    values(mg.arange(2.5), {0, 1, 2}, "float32")
  end)

  it("arange counts down with a negative step, end excluded", function()
    values(mg.arange(5, 0, -1), {5, 4, 3, 2, 1}, "int64")
    values(mg.arange(1, -1, -0.5, "float64"), {1, 0.5, 0, -0.5}, "float64")
  end)

  it("arange takes a dtype", function()
    values(mg.arange(3, "float64"), {0, 1, 2}, "float64")
  end)

  it("arange rejects a zero step or a step away from end", function()
    assert.has_error(function() mg.arange(0, 5, 0) end)
    assert.has_error(function() mg.arange(0, 5, -1) end,
      "arange: step -1 goes away from end (start 0, end 5)")
  end)

  it("linspace hits both endpoints exactly", function()
    local t = mg.linspace(-1, 0.3, 7, "float64"):totable()
    assert.equal(7, #t)
    assert.equal(-1, t[1])
    assert.equal(0.3, t[7])
    for i = 1, 7 do
      assert.near(-1 + (i - 1) * 1.3 / 6, t[i], 1e-15)
    end
    values(mg.linspace(0, 1, 5), {0, 0.25, 0.5, 0.75, 1}, "float32")
    values(mg.linspace(-2, 5, 1), {-2}, "float32")      -- one step is start
    values(mg.linspace(3, 3, 1), {3}, "float32")
    values(mg.linspace(0, 1, 2, "float64"), {0, 1}, "float64")
    values(mg.linspace(4, 1, 4, "int64"), {4, 3, 2, 1}, "int64")
    assert.same({0}, mg.linspace(0, 1, 0):shape())
  end)

  it("eye makes square and rectangular identities", function()
    values(mg.eye(3), {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, "float32")
    values(mg.eye(2, 3, "int64"), {{1, 0, 0}, {0, 1, 0}}, "int64")
    values(mg.eye(3, 2, "float64"), {{1, 0}, {0, 1}, {0, 0}}, "float64")
  end)

  it("*_like copy shape and dtype unless told otherwise", function()
    local t = mg.empty(2, 3, "float64")
    values(mg.zeros_like(t), {{0, 0, 0}, {0, 0, 0}}, "float64")
    values(mg.ones_like(t, "int64"), {{1, 1, 1}, {1, 1, 1}}, "int64")
    values(mg.full_like(t, 4), {{4, 4, 4}, {4, 4, 4}}, "float64")
    local r = mg.rand_like(t)
    assert.same({2, 3}, r:shape())
    assert.equal("float64", r:dtype())
    assert.equal("float32", mg.randn_like(t, "float32"):dtype())
  end)
end)

describe("dtype conversion", function()
  local x = mg.tensor({-2.75, -1.5, -0.5, 0.5, 1.5, 2.75}, "float64")

  it("to int64 truncates toward zero", function()
    values(x:long(), {-2, -1, 0, 0, 1, 2}, "int64")
    values(x:to("int64"), {-2, -1, 0, 0, 1, 2}, "int64")
    values(x:float():to{dtype = "int64"}, {-2, -1, 0, 0, 1, 2}, "int64")
  end)

  it("round-trips through float32 where values are representable", function()
    values(x:float(), {-2.75, -1.5, -0.5, 0.5, 1.5, 2.75}, "float32")
    values(x:float():double(), {-2.75, -1.5, -0.5, 0.5, 1.5, 2.75}, "float64")
  end)

  it("rounds float64 to the nearest float32", function()
    assert.equal(approx.f32(0.1), mg.tensor({0.1}, "float64"):float()[1])
  end)

  it("converts int64 to floats", function()
    values(mg.arange(3):double(), {0, 1, 2}, "float64")
    assert.equal("float", math.type(mg.arange(3):float()[2]))
  end)

  it("returns the same tensor when the dtype already matches", function()
    local t = mg.zeros(2)
    assert.equal(t, t:float())
    assert.equal(t, t:to("float32"))
  end)
end)

describe("clone, copy_, fill_ and zero_", function()
  it("clone is independent of the original", function()
    local a = mg.tensor({{1, 2}, {3, 4}})
    local b = a:clone()
    b[{1, 1}] = 9
    assert.same({{1, 2}, {3, 4}}, a:totable())
    assert.same({{9, 2}, {3, 4}}, b:totable())
    assert.is_false(a:shares_storage(b))
  end)

  it("clone of a view is contiguous and keeps values", function()
    local c = mg.tensor({{1, 2}, {3, 4}}):t():clone()
    assert.is_true(c:is_contiguous())
    values(c, {{1, 3}, {2, 4}}, "float32")
  end)

  it("copy_ broadcasts the source", function()
    local d = mg.zeros(2, 3)
    d:copy_(mg.tensor({1, 2, 3}))
    values(d, {{1, 2, 3}, {1, 2, 3}}, "float32")
    d:copy_(mg.tensor({{5}, {6}}))
    values(d, {{5, 5, 5}, {6, 6, 6}}, "float32")
  end)

  it("copy_ converts dtypes, truncating into int64", function()
    local d = mg.zeros(3, "int64")
    assert.equal(d, d:copy_(mg.tensor({1.9, -1.9, 3}, "float64")))
    values(d, {1, -1, 3}, "int64")
  end)

  it("copy_ writes through into a view", function()
    local base = mg.zeros(2, 3)
    base:t():copy_(mg.tensor({{1, 2}, {3, 4}, {5, 6}}))
    values(base, {{1, 3, 5}, {2, 4, 6}}, "float32")
  end)

  it("copy_ from an overlapping view of itself copies the old values", function()
    local t = mg.tensor({{1, 2}, {3, 4}})
    t:copy_(t:t())
    values(t, {{1, 3}, {2, 4}}, "float32")
    local r = mg.tensor({{1, 2}, {3, 4}, {5, 6}})
    r:narrow(1, 2, 2):copy_(r:narrow(1, 1, 2))    -- shift rows down by one
    values(r, {{1, 2}, {1, 2}, {3, 4}}, "float32")
  end)

  it("copy_ refuses a source that does not broadcast to the destination", function()
    assert.has_error(function() mg.zeros(3):copy_(mg.zeros(2, 3)) end,
      "copy_: source of shape [2,3] does not broadcast to destination of shape [3]")
  end)

  it("fill_ and zero_ write every element and return the tensor", function()
    local t = mg.zeros(2, 2, "float64")
    assert.equal(t, t:fill_(3.25))
    values(t, {{3.25, 3.25}, {3.25, 3.25}}, "float64")
    assert.equal(t, t:zero_())
    values(t, {{0, 0}, {0, 0}}, "float64")
    values(mg.zeros(3, "int64"):fill_(-4), {-4, -4, -4}, "int64")
  end)

  it("fill_ on a strided view touches only the view", function()
    local t = mg.zeros(3, 4)
    t:narrow(2, 2, 2):fill_(1)
    values(t, {{0, 1, 1, 0}, {0, 1, 1, 0}, {0, 1, 1, 0}}, "float32")
  end)
end)

describe("element access", function()
  it("get and set take 1-based and negative indices", function()
    local t = mg.tensor({{1, 2, 3}, {4, 5, 6}})
    assert.equal(2, t:get(1, 2))
    assert.equal(6, t:get(-1, -1))
    assert.equal(4, t:get{2, 1})
    assert.equal(t, t:set(1, 3, 30))
    t:set({-1, 1}, 40)
    values(t, {{1, 2, 30}, {40, 5, 6}}, "float32")
  end)

  it("get and set reject out-of-range positions", function()
    local t = mg.zeros(2, 3)
    assert.has_error(function() t:get(3, 1) end,
                     "get: index 3 out of range for size 2 of dimension 1")
    assert.has_error(function() t:get(1, 0) end,
                     "get: index 0 out of range for size 3 of dimension 2")
    assert.has_error(function() t:set(1, -4, 1) end,
                     "set: index -4 out of range for size 3 of dimension 2")
    assert.has_error(function() t:get(1) end,
                     "get: 1 indices given for a 2-dimensional tensor")
  end)

  it("t[i] on a 1-D tensor is a number", function()
    local t = mg.tensor({10, 20, 30})
    assert.equal(20, t[2])
    assert.equal(30, t[-1])
    assert.equal("number", type(t[1]))
  end)

  it("t[i] on a 2-D tensor is a row view sharing storage", function()
    local t = mg.tensor({{1, 2}, {3, 4}})
    local row = t[2]
    values(row, {3, 4}, "float32")
    assert.is_true(row:shares_storage(t))
    row[1] = 99
    assert.equal(99, t:get(2, 1))
    values(t[-2], {1, 2}, "float32")
  end)

  it("t[{i, j}] reads an element and t[{i}] a sub-tensor", function()
    local t = mg.arange(24):reshape(2, 3, 4)
    assert.equal(23, t[{2, 3, 4}])
    assert.equal(12, t[{-1, 1, 1}])
    values(t[{2, 2}], {16, 17, 18, 19}, "int64")
  end)

  it("rejects an out-of-range t[i]", function()
    local t = mg.zeros(2, 2)
    assert.has_error(function() return t[3] end,
                     "index: index 3 out of range for size 2 of dimension 1")
    assert.has_error(function() return t[0] end,
                     "index: index 0 out of range for size 2 of dimension 1")
  end)

  it("t[i] = number fills a row; t[{i, j}] = number sets an element", function()
    local t = mg.zeros(2, 3)
    t[1] = 7
    values(t, {{7, 7, 7}, {0, 0, 0}}, "float32")
    t[{2, -1}] = 5
    values(t, {{7, 7, 7}, {0, 0, 5}}, "float32")
    local v = mg.zeros(3, "int64")
    v[-1] = 4
    values(v, {0, 0, 4}, "int64")
  end)

  it("t[i] = tensor copies into the row, broadcasting", function()
    local t = mg.zeros(2, 3)
    t[2] = mg.tensor({1, 2, 3})
    values(t, {{0, 0, 0}, {1, 2, 3}}, "float32")
    t[1] = mg.tensor({5})
    values(t, {{5, 5, 5}, {1, 2, 3}}, "float32")
  end)

  it("assignment into a transposed view lands in the base", function()
    local t = mg.zeros(2, 3)
    local tt = t:t()
    tt[3] = mg.tensor({8, 9})
    values(t, {{0, 0, 8}, {0, 0, 9}}, "float32")
  end)

  it("keeps int64 values beyond 2^53 exact", function()
    local big = 9007199254740993          -- 2^53 + 1, not a double
    local t = mg.tensor({big, math.maxinteger, math.mininteger}, "int64")
    local r = t:totable()
    assert.equal(big, r[1])
    assert.equal(math.maxinteger, r[2])
    assert.equal(math.mininteger, r[3])
    assert.equal(big, t[1])
    assert.equal(big, mg.tensor(big, "int64"):item())
    assert.equal(big, t:clone():get(1))
  end)

  it("stores int64 values beyond 2^53 exactly through set and t[i] = v", function()
    local big = 9007199254740993
    local t = mg.zeros(3, "int64")
    t[1] = big
    t:set(2, -big)
    t[{3}] = math.maxinteger
    assert.same({big, -big, math.maxinteger}, t:totable())
    local m = mg.zeros(2, 2, "int64")
    m[{2, 1}] = big
    assert.equal(big, m:get(2, 1))
  end)
end)
