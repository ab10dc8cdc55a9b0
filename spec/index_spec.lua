-- index_select, gather, scatter and scatter_add: hand-worked cases, PyTorch
-- references (spec/fixtures/index_ref.lua, written by gen_index.py), round
-- trips, large threaded cases checked against closed forms, and errors.
local mg = require "moongrad"
local ref = require "fixtures.index_ref"

local function long(v) return mg.tensor(v, "int64") end

-- Compares nested tables of numbers: exact for integers, within tol
-- (relative to max(1, |expected|)) for floats.
local function near(actual, expected, tol, path)
  path = path or ""
  if type(expected) == "table" then
    assert(type(actual) == "table", "not a table at " .. path)
    assert(#actual == #expected, ("length %d vs %d at %s"):format(#actual, #expected, path))
    for i = 1, #expected do near(actual[i], expected[i], tol, path .. "[" .. i .. "]") end
    return
  end
  local ok = actual == expected or
    math.abs(actual - expected) <= tol * math.max(1, math.abs(expected))
  assert(ok, ("%s vs expected %s at %s"):format(tostring(actual), tostring(expected), path))
end

local TOL = {float32 = 1e-6, float64 = 1e-12, int64 = 0}

local function check(t, shape, values, dtype)
  assert.are.same(shape, t:shape())
  if dtype then assert.equals(dtype, t:dtype()) end
  near(t:totable(), values, TOL[t:dtype()])
end

-- The fixture case's input, index and src as moongrad values.
local function input_of(c)
  local t = mg.tensor(c.input, c.dtype)
  if c.tr then t = t:transpose(c.tr[1], c.tr[2]) end
  return t
end
local function index_of(c)
  local i = long(c.index)
  if c.index_tr then i = i:transpose(c.index_tr[1], c.index_tr[2]) end
  return i
end
local function src_of(c)
  if type(c.src) == "number" then return c.src end
  return mg.tensor(c.src, c.dtype)
end

describe("index_select", function()
  local m = mg.tensor({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}})

  it("picks rows in the order given, repeats included", function()
    check(m:index_select(1, long {3, 1, 3}), {3, 3}, {{7, 8, 9}, {1, 2, 3}, {7, 8, 9}}, "float32")
  end)

  it("picks columns with a negative dim", function()
    check(m:index_select(-1, long {2}), {3, 1}, {{2}, {5}, {8}})
  end)

  it("takes a Lua table of integers as the ids", function()
    check(m:index_select(2, {3, 3, 1}), {3, 3}, {{3, 3, 1}, {6, 6, 4}, {9, 9, 7}})
  end)

  it("takes a 0-d index and keeps the dim with size 1", function()
    local ids = long {2}:reshape()
    assert.are.same({}, ids:shape())
    check(m:index_select(1, ids), {1, 3}, {{4, 5, 6}})
  end)

  it("gives a size-0 dim for an empty table of ids", function()
    assert.are.same({0, 3}, m:index_select(1, {}):shape())
  end)

  it("selects from a 0-d tensor with one index, giving a 0-d tensor", function()
    local s = mg.tensor(5, "float64")
    local r = s:index_select(1, {1})
    assert.are.same({}, r:shape())
    assert.equals(5, r:item())
  end)

  it("is also mg.index_select(t, dim, ids)", function()
    check(mg.index_select(m, 1, {2}), {1, 3}, {{4, 5, 6}})
  end)

  it("reads non-contiguous ids", function()
    local ids = long({{3, 1}, {2, 2}}):select(2, 1) -- {3, 2}, stride 2
    assert.is_false(ids:is_contiguous())
    check(m:index_select(1, ids), {2, 3}, {{7, 8, 9}, {4, 5, 6}})
  end)

  it("reads a contiguous view that starts at an offset", function()
    local v = m:narrow(1, 2, 2) -- rows 2 and 3
    check(v:index_select(1, {2, 1}), {2, 3}, {{7, 8, 9}, {4, 5, 6}})
    check(v:index_select(2, {3}), {2, 1}, {{6}, {9}})
  end)

  it("reads an expanded input", function()
    local e = mg.tensor({1, 2, 3}, "int64"):expand(2, 3)
    check(e:index_select(2, {3, 1}), {2, 2}, {{3, 1}, {3, 1}}, "int64")
    check(e:index_select(1, {2, 2, 1}), {3, 3}, {{1, 2, 3}, {1, 2, 3}, {1, 2, 3}})
  end)

  it("matches a closed form on a large input across threads", function()
    local threads = mg.get_num_threads()
    mg.set_num_threads(2)
    local R, C = 300, 200
    local t = mg.arange(0, R * C):reshape(R, C) -- t[r][c] = (r-1)*C + (c-1)
    local ids, n = {}, 180
    for j = 1, n do ids[j] = (j * 37) % C + 1 end
    local cols = t:index_select(2, ids)
    local rows = t:index_select(1, ids)
    local colsT = t:t():index_select(1, ids) -- the strided path
    mg.set_num_threads(threads)
    assert.are.same({R, n}, cols:shape())
    local ct, rt, tt = cols:totable(), rows:totable(), colsT:totable()
    for r = 1, R, 7 do
      for j = 1, n do
        assert.equals((r - 1) * C + ids[j] - 1, ct[r][j])
        assert.equals((r - 1) * C + ids[j] - 1, tt[j][r])
      end
    end
    for j = 1, n, 5 do
      for c = 1, C do assert.equals((ids[j] - 1) * C + c - 1, rt[j][c]) end
    end
  end)
end)

describe("gather", function()
  local m = mg.tensor({{1, 2}, {3, 4}})

  it("reads t[i][idx[i][j]] along dim 2", function()
    check(m:gather(2, long {{1, 1}, {2, 1}}), {2, 2}, {{1, 1}, {4, 3}})
  end)

  it("reads t[idx[i][j]][j] along dim 1", function()
    check(m:gather(1, long {{2, 1}, {1, 1}, {2, 2}}), {3, 2}, {{3, 2}, {1, 2}, {3, 4}})
  end)

  it("takes an index smaller than the input on the other dims", function()
    local t = mg.tensor({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, "int64")
    check(t:gather(-1, long {{3, 3, 1, 2}}), {1, 4}, {{3, 3, 1, 2}}, "int64")
  end)

  it("gives a 0-d result for a 0-d index into a 1-D tensor", function()
    local r = mg.tensor({5, 6, 7}):gather(1, long {3}:reshape())
    assert.are.same({}, r:shape())
    assert.equals(7, r:item())
  end)

  it("is also mg.gather(t, dim, idx)", function()
    check(mg.gather(m, 2, long {{2}, {2}}), {2, 1}, {{2}, {4}})
  end)

  it("reads an expanded index", function()
    local idx = long({2, 1}):expand(3, 2)
    local t = mg.tensor({{1, 2}, {3, 4}, {5, 6}})
    check(t:gather(2, idx), {3, 2}, {{2, 1}, {4, 3}, {6, 5}})
  end)
end)

describe("scatter", function()
  it("writes src into zeros at the index along dim 1 (PyTorch's example)", function()
    local src = mg.arange(1, 11):reshape(2, 5)
    local r = mg.zeros(3, 5, "int64"):scatter(1, long {{1, 2, 3, 1}}, src)
    check(r, {3, 5}, {{1, 0, 0, 4, 0}, {0, 2, 0, 0, 0}, {0, 0, 3, 0, 0}}, "int64")
  end)

  it("writes a number at the index", function()
    local r = mg.zeros(2, 4):scatter(2, long {{2}, {3}}, 1.5)
    check(r, {2, 4}, {{0, 1.5, 0, 0}, {0, 0, 1.5, 0}})
  end)

  it("writes an integer-valued number into an int64 tensor", function()
    check(mg.zeros(3, "int64"):scatter(1, long {3}, 7.0), {3}, {0, 0, 7}, "int64")
  end)

  it("returns a new tensor and leaves its input alone", function()
    local t = mg.zeros(2, 2)
    local r = t:scatter(1, long {{2, 1}}, 1)
    check(t, {2, 2}, {{0, 0}, {0, 0}})
    check(r, {2, 2}, {{0, 1}, {1, 0}})
  end)

  it("works in place with scatter_ and returns the tensor itself", function()
    local t = mg.zeros(2, 2)
    local r = t:scatter_(-1, long {{2}, {1}}, mg.tensor({{5}, {6}}))
    assert.is_true(rawequal(t, r))
    check(t, {2, 2}, {{0, 5}, {6, 0}})
  end)

  it("converts an int64 src into a float tensor", function()
    check(mg.zeros(3, "float64"):scatter(1, long {2, 3}, long {4, 5}), {3}, {0, 4, 5})
  end)

  it("lets the last write win for a repeated index", function()
    check(mg.zeros(3):scatter_(1, long {2, 2, 2}, mg.tensor({1, 2, 3})), {3}, {0, 3, 0})
  end)

  it("reads src as it was when src is the tensor being written", function()
    local t = mg.tensor({{1, 2}, {3, 4}})
    t:scatter_(1, long {{2, 2}, {1, 1}}, t)
    check(t, {2, 2}, {{3, 4}, {1, 2}})
  end)

  it("reads the index as it was when the index is the tensor being written", function()
    local t = long {{2, 3, 1}}
    t:scatter_(2, t, 0) -- zeros positions 2, 3 and 1, whatever it wrote before
    check(t, {1, 3}, {{0, 0, 0}}, "int64")
    local u = long {{2, 1, 3}}
    u:scatter_(2, u, u) -- u[u[j]] = u[j]: sorts a permutation
    check(u, {1, 3}, {{1, 2, 3}}, "int64")
  end)

  it("writes into a transposed (non-contiguous) tensor", function()
    local base = mg.zeros(3, 2)
    local t = base:t() -- 2x3 view
    t:scatter_(2, long {{3}, {1}}, mg.tensor({{7}, {8}}))
    check(base, {3, 2}, {{0, 8}, {0, 0}, {7, 0}})
  end)
end)

describe("scatter_add", function()
  it("accumulates duplicates", function()
    local t = mg.zeros(5)
    t:scatter_add_(1, long {1, 3, 1, 1, 5}, mg.tensor({1, 2, 3, 4, 5}))
    check(t, {5}, {8, 0, 2, 0, 5})
  end)

  it("accumulates duplicates along dim 2 of int64 data", function()
    local t = long {{10, 20, 30}, {1, 1, 1}}
    local r = t:scatter_add(2, long {{3, 3, 1}, {2, 2, 2}}, long {{1, 2, 3}, {4, 5, 6}})
    check(r, {2, 3}, {{13, 20, 33}, {1, 16, 1}}, "int64")
    check(t, {2, 3}, {{10, 20, 30}, {1, 1, 1}}) -- scatter_add leaves t alone
  end)

  it("adds a number at every index", function()
    check(mg.zeros(2, 3):scatter_add(2, long {{1, 1, 3}, {2, 2, 2}}, 0.5), {2, 3},
      {{1, 0, 0.5}, {0, 1.5, 0}})
  end)

  it("is also mg.scatter_add(t, dim, idx, src)", function()
    check(mg.scatter_add(mg.zeros(2), 1, long {2, 2}, mg.ones(2)), {2}, {0, 2})
  end)

  it("counts an expanded index on a large tensor across threads", function()
    local threads = mg.get_num_threads()
    mg.set_num_threads(2)
    local N = 40000
    -- idx[i][j] = (i-1) % 3 + 1 for 8 rows: row 1 is hit by i = 1, 4, 7,
    -- row 2 by i = 2, 5, 8 and row 3 by i = 3, 6.
    local idx = (mg.arange(0, 8):reshape(8, 1) % 3 + 1):expand(8, N)
    local t = mg.zeros(3, N, "int64"):scatter_add_(1, idx, 1)
    -- and along the last dim: every one of 5 entries of a row lands in column 2
    local u = mg.zeros(N, 3, "float64"):scatter_add_(2, long({2}):expand(N, 5), 0.25)
    mg.set_num_threads(threads)
    local tt, ut = t:totable(), u:totable()
    for j = 1, N, 97 do
      assert.equals(3, tt[1][j]); assert.equals(3, tt[2][j]); assert.equals(2, tt[3][j])
      assert.are.same({0, 1.25, 0}, ut[j])
    end
    local total = 0
    for _, row in ipairs(tt) do for _, v in ipairs(row) do total = total + v end end
    assert.equals(8 * N, total)
  end)
end)

describe("gather and scatter", function()
  it("round-trip a tensor through permutation indices along each dim", function()
    mg.manual_seed(7)
    local t = mg.randn(4, 6, "float64")
    for _, dim in ipairs({1, 2, -1}) do
      local rows = {}
      if dim == 1 then
        local cols = {}
        for j = 1, 6 do cols[j] = mg.randperm(4):totable() end
        for i = 1, 4 do
          rows[i] = {}
          for j = 1, 6 do rows[i][j] = cols[j][i] end
        end
      else
        for i = 1, 4 do rows[i] = mg.randperm(6):totable() end
      end
      local idx = long(rows)
      local g = t:gather(dim, idx)
      local back = mg.zeros(4, 6, "float64"):scatter_(dim, idx, g)
      assert.are.same(t:totable(), back:totable())
    end
  end)

  it("scatter_add of ones counts how often gather read each element", function()
    local idx = long {{1, 1, 2}, {3, 3, 3}}
    local counts = mg.zeros(2, 3):scatter_add(2, idx, mg.ones(2, 3))
    check(counts, {2, 3}, {{2, 1, 0}, {0, 0, 3}})
  end)
end)

describe("index ops match PyTorch", function()
  for _, c in ipairs(ref) do
    it(c.name, function()
      local t, idx = input_of(c), index_of(c)
      if c.op == "index_select" then
        check(t:index_select(c.dim, idx), c.expected_shape, c.expected, c.dtype)
        check(t:index_select(c.dim, c.index), c.expected_shape, c.expected, c.dtype)
      elseif c.op == "gather" then
        check(t:gather(c.dim, idx), c.expected_shape, c.expected, c.dtype)
      else
        local before = t:totable()
        local add = c.op == "scatter_add"
        local r = add and t:scatter_add(c.dim, idx, src_of(c)) or t:scatter(c.dim, idx, src_of(c))
        check(r, c.expected_shape, c.expected, c.dtype)
        assert.are.same(before, t:totable())
        local r2 = add and t:scatter_add_(c.dim, idx, src_of(c)) or t:scatter_(c.dim, idx, src_of(c))
        assert.is_true(rawequal(t, r2))
        check(t, c.expected_shape, c.expected, c.dtype)
      end
    end)
  end
end)

describe("index op errors", function()
  local m = mg.tensor({{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}})
  local function fails(pattern, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert.matches(pattern, err, 1, true)
  end

  it("name an out-of-range id with its 1-based value and dim", function()
    fails("index_select: index 7 out of range for size 5 of dimension 2",
      m.index_select, m, 2, {1, 7})
    fails("index_select: index 0 out of range for size 2 of dimension 1",
      m.index_select, m, -2, long {0})
    fails("gather: index 6 out of range for size 5 of dimension 2",
      m.gather, m, 2, long {{1, 6}})
    fails("scatter_add: index -1 out of range for size 2 of dimension 1",
      m.scatter_add, m, 1, long {{-1}}, 1)
  end)

  it("require int64 indices", function()
    fails("gather: indices must be int64, got float32", m.gather, m, 1, mg.ones(1, 1))
    fails("index_select: indices must be int64, got float64",
      m.index_select, m, 1, mg.ones(1, "float64"))
    fails("scatter: indices must be int64, got float32", m.scatter, m, 1, mg.ones(1, 1), 0)
  end)

  it("require 0-D or 1-D ids for index_select", function()
    fails("index_select: indices must be 0-D or 1-D, got shape [2,2]",
      m.index_select, m, 1, long {{1, 1}, {1, 1}})
  end)

  it("take exactly one id for a 0-d tensor", function()
    local s = mg.tensor(5)
    fails("index_select: a 0-d tensor takes exactly one index, got 2",
      s.index_select, s, 1, {1, 1})
  end)

  it("require the index to have the tensor's number of dims", function()
    fails("gather: index of shape [2] has 1 dimensions but the tensor of shape [2,5] has 2",
      m.gather, m, 1, long {1, 1})
  end)

  it("require the index to fit in the tensor apart from dim", function()
    fails("gather: index of shape [3,1] does not fit in the tensor of shape [2,5] " ..
      "(size 3 vs 2 at dimension 1)", m.gather, m, 2, long {{1}, {1}, {1}})
    fails("scatter: index of shape [1,6] does not fit in the tensor of shape [2,5] " ..
      "(size 6 vs 5 at dimension 2)", m.scatter, m, 1, long {{1, 1, 1, 1, 1, 1}}, 0)
  end)

  it("require src to cover the index", function()
    fails("scatter: index of shape [1,3] does not fit in src of shape [1,2] " ..
      "(size 3 vs 2 at dimension 2)", m.scatter, m, 1, long {{1, 2, 1}}, mg.ones(1, 2))
    fails("scatter_add: src of shape [3] has 1 dimensions but the index of shape [1,3] has 2",
      m.scatter_add, m, 1, long {{1, 2, 1}}, mg.ones(3))
  end)

  it("name a dim out of range", function()
    fails("gather: dimension 3 out of range for a 2-dimensional tensor",
      m.gather, m, 3, long {{1}})
    fails("index_select: dimension -3 out of range", m.index_select, m, -3, {1})
  end)

  it("reject ids and values of the wrong kind", function()
    fails("index_select: index must be an integer, got 1.5", m.index_select, m, 1, {1, 1.5})
    fails("index_select: indices must be an int64 tensor or a table of integers, got string",
      m.index_select, m, 1, "1")
    fails("gather: index must be an int64 tensor, got table", m.gather, m, 1, {{1}})
    fails("scatter_: src must be a tensor or a number, got string",
      m.scatter_, m, 1, long {{1}}, "x")
  end)

  it("refuse a src that cannot be stored in the tensor's dtype", function()
    local t = mg.zeros(3, "int64")
    fails("scatter: src is float32, which cannot be stored in place in an int64 tensor",
      t.scatter_, t, 1, long {1}, 1.5)
    fails("scatter_add: src is float64, which cannot be stored in place in a float32 tensor",
      m.scatter_add, m, 1, long {{1}}, mg.ones(1, 1, "float64"))
  end)

  it("refuse to write into an expanded tensor", function()
    local e = mg.zeros(1, 3):expand(2, 3)
    fails("scatter_: the destination of shape [2,3] is expanded (several of its elements " ..
          "share one memory location); clone it first",
      e.scatter_, e, 1, long {{1}}, 1)
  end)

  it("leave the tensor unchanged when scatter_ fails", function()
    local t = mg.tensor({{1, 2}, {3, 4}})
    -- the bad id comes last, after ids a naive loop would already have written
    fails("scatter: index 9 out of range for size 2 of dimension 1",
      t.scatter_, t, 1, long {{2, 1}, {1, 9}}, mg.full({2, 2}, 7))
    check(t, {2, 2}, {{1, 2}, {3, 4}})
    fails("scatter_add: index 3 out of range", t.scatter_add_, t, 2, long {{1, 1, 2, 3}}, 5)
    check(t, {2, 2}, {{1, 2}, {3, 4}})
    fails("does not fit in src", t.scatter_add_, t, 2, long {{1, 2}}, mg.ones(1, 1))
    check(t, {2, 2}, {{1, 2}, {3, 4}})
  end)
end)
