-- Views share storage with their base: reshape/view, transpose, permute,
-- narrow, select, squeeze/unsqueeze, expand, flatten. Reference values and
-- strides are derived by hand from row-major layout.
local mg = require "moongrad"
local approx = require "support.approx"
local values = approx.assert_values

-- 0..n-1 as float64, shaped.
local function iota(...)
  local n = 1
  for _, size in ipairs{...} do n = n * size end
  return mg.arange(0, n, 1, "float64"):reshape(...)
end

describe("reshape and view", function()
  it("reshape reorders nothing, only regroups", function()
    values(iota(2, 3):reshape(3, 2), {{0, 1}, {2, 3}, {4, 5}}, "float64")
    values(iota(6):reshape{1, 6}, {{0, 1, 2, 3, 4, 5}}, "float64")
  end)

  it("infers one size given as -1", function()
    assert.same({4, 6}, iota(2, 3, 4):view(4, -1):shape())
    assert.same({2, 12}, iota(2, 3, 4):reshape(-1, 12):shape())
    assert.same({24}, iota(2, 3, 4):view(-1):shape())
  end)

  it("rejects a size that does not fit, or two -1s", function()
    assert.has_error(function() iota(2, 3):view(4, -1) end,
      "view: shape [4,-1] is invalid for a tensor of shape [2,3] (6 elements)")
    assert.has_error(function() iota(2, 3):reshape(5) end,
      "reshape: shape [5] is invalid for a tensor of shape [2,3] (6 elements)")
    assert.has_error(function() iota(2, 3):view(-1, -1) end,
      "view: only one size may be -1")
  end)

  it("view shares storage and writes through", function()
    local base = iota(2, 3)
    local v = base:view(6)
    assert.is_true(base:shares_storage(v))
    v[5] = 100
    assert.equal(100, base:get(2, 2))
  end)

  it("view refuses a transposed tensor with a clear message", function()
    assert.has_error(function() iota(3, 4):t():view(12) end,
      "view: a tensor of shape [4,3] with these strides cannot be viewed as " ..
      "[12]; use reshape (which copies) or contiguous first")
  end)

  it("reshape copies a transposed tensor instead", function()
    local base = iota(2, 3)
    local r = base:t():reshape(6)
    values(r, {0, 3, 1, 4, 2, 5}, "float64")
    assert.is_false(r:shares_storage(base))
    assert.is_true(r:is_contiguous())
  end)

  it("view works on strided tensors where the strides allow it", function()
    -- a [3,4] row block of a [3,8] matrix: rows stay rows
    local base = iota(3, 8)
    local n = base:narrow(2, 1, 4)
    local v = n:view(3, 2, 2)
    assert.same({8, 2, 1}, v:stride())
    values(v[2], {{8, 9}, {10, 11}}, "float64")
    assert.is_true(v:shares_storage(base))
    -- splitting the non-contiguous outer dim is fine too
    local p = iota(2, 3, 4):permute(2, 1, 3)          -- [3,2,4], strides 4,12,1
    assert.same({4, 12, 2, 1}, p:view(3, 2, 2, 2):stride())
    assert.has_error(function() p:view(3, 8) end)
    values(p:reshape(3, 8)[1], {0, 1, 2, 3, 12, 13, 14, 15}, "float64")
  end)

  it("views of an empty tensor are fine", function()
    assert.same({0, 3}, mg.zeros(3, 0):view(0, 3):shape())
    assert.same({2, 0, 5}, mg.zeros(0):reshape(2, 0, 5):shape())
    -- with a zero size, -1 could be anything
    assert.has_error(function() mg.zeros(0):reshape(2, 0, -1) end)
  end)
end)

describe("transpose, t and permute", function()
  it("transpose swaps two dims as a view", function()
    local base = iota(2, 3)
    local t = base:transpose(1, 2)
    values(t, {{0, 3}, {1, 4}, {2, 5}}, "float64")
    assert.same({1, 3}, t:stride())
    assert.is_false(t:is_contiguous())
    assert.is_true(t:shares_storage(base))
    t[{3, 1}] = -1
    assert.equal(-1, base:get(1, 3))
  end)

  it("transpose takes negative dims", function()
    assert.same({4, 3, 2}, iota(2, 3, 4):transpose(-1, 1):shape())
    assert.same({2, 4, 3}, iota(2, 3, 4):transpose(-1, -2):shape())
  end)

  it("t transposes a matrix and leaves a vector alone", function()
    values(iota(2, 2):t(), {{0, 2}, {1, 3}}, "float64")
    values(iota(3):t(), {0, 1, 2}, "float64")
    assert.has_error(function() iota(2, 2, 2):t() end,
      "t: expects a tensor with at most 2 dimensions, got 3 (use transpose)")
  end)

  it("permute reorders dims", function()
    local p = iota(2, 3, 4):permute(3, 1, 2)
    assert.same({4, 2, 3}, p:shape())
    assert.same({1, 12, 4}, p:stride())
    -- p[k][i][j] = base[i][j][k] = 12(i-1) + 4(j-1) + (k-1)
    assert.equal(12 * 1 + 4 * 2 + 3, p:get(4, 2, 3))
    assert.same({4, 2, 3}, iota(2, 3, 4):permute{-1, 1, 2}:shape())
  end)

  it("permute rejects a repeated dim", function()
    assert.has_error(function() iota(2, 3):permute(1, 1) end,
                     "permute: dimension 1 appears twice")
  end)
end)

describe("narrow and select", function()
  it("narrow keeps a range along a dim", function()
    local base = iota(3, 4)
    local n = base:narrow(2, 2, 2)
    values(n, {{1, 2}, {5, 6}, {9, 10}}, "float64")
    assert.same({4, 1}, n:stride())
    assert.equal(2, n:storage_offset())
    n:fill_(0)
    values(base, {{0, 0, 0, 3}, {4, 0, 0, 7}, {8, 0, 0, 11}}, "float64")
  end)

  it("narrow rejects a range past the end", function()
    assert.has_error(function() iota(3, 4):narrow(2, 3, 3) end,
      "narrow: start 3 and length 3 do not fit in size 4 of dimension 2")
  end)

  it("select drops a dim, with 1-based and negative positions", function()
    local base = iota(2, 3)
    values(base:select(1, 2), {3, 4, 5}, "float64")
    values(base:select(2, -1), {2, 5}, "float64")
    local s = base:select(2, 1)
    assert.is_true(s:shares_storage(base))
    s:fill_(7)
    values(base, {{7, 1, 2}, {7, 4, 5}}, "float64")
  end)

  it("select rejects a position out of range", function()
    assert.has_error(function() iota(2, 3):select(2, 4) end)
    assert.has_error(function() iota(2, 3):select(1, 0) end)
  end)
end)

describe("squeeze and unsqueeze", function()
  it("squeeze drops every size-1 dim, or the one named", function()
    local t = mg.zeros(1, 3, 1, 2)
    assert.same({3, 2}, t:squeeze():shape())
    assert.same({3, 1, 2}, t:squeeze(1):shape())
    assert.same({1, 3, 2}, t:squeeze(-2):shape())
    assert.same({1, 3, 1, 2}, t:squeeze(2):shape())   -- size 3: unchanged
  end)

  it("unsqueeze inserts a size-1 dim, -1 meaning at the end", function()
    local t = iota(2, 3)
    assert.same({1, 2, 3}, t:unsqueeze(1):shape())
    assert.same({2, 1, 3}, t:unsqueeze(2):shape())
    assert.same({2, 3, 1}, t:unsqueeze(3):shape())
    assert.same({2, 3, 1}, t:unsqueeze(-1):shape())
    values(t:unsqueeze(2), {{{0, 1, 2}}, {{3, 4, 5}}}, "float64")
  end)

  it("unsqueeze and squeeze are views", function()
    local base = iota(3)
    local u = base:unsqueeze(1)
    u[{1, 2}] = 50
    assert.equal(50, base[2])
    assert.is_true(u:squeeze():shares_storage(base))
  end)
end)

describe("expand", function()
  it("repeats size-1 dims without copying (stride 0)", function()
    local base = mg.tensor({{1}, {2}}, "float64")
    local e = base:expand(2, 3)
    values(e, {{1, 1, 1}, {2, 2, 2}}, "float64")
    assert.same({1, 0}, e:stride())
    assert.is_true(e:shares_storage(base))
    base[{2, 1}] = 5
    values(e[2], {5, 5, 5}, "float64")
  end)

  it("adds leading dims and keeps sizes given as -1", function()
    local e = mg.tensor({1, 2, 3}):expand(2, -1)
    values(e, {{1, 2, 3}, {1, 2, 3}}, "float32")
    assert.same({0, 1}, e:stride())
    assert.same({4, 2, 3}, mg.zeros(2, 1):expand(4, 2, 3):shape())
  end)

  it("expands to another tensor's shape", function()
    assert.same({3, 4}, mg.zeros(1, 4):expand(mg.zeros(3, 4)):shape())
  end)

  it("refuses to expand a size other than 1", function()
    assert.has_error(function() mg.zeros(2, 3):expand(2, 4) end,
      "expand: cannot expand shape [2,3] to [2,4] (size 3 vs 4 at dimension 2)")
  end)
end)

describe("flatten and contiguous", function()
  it("flatten gives 1-D, or merges a range of dims", function()
    values(iota(2, 2):flatten(), {0, 1, 2, 3}, "float64")
    assert.same({2, 12}, iota(2, 3, 4):flatten(2):shape())
    assert.same({6, 4}, iota(2, 3, 4):flatten(1, 2):shape())
    assert.same({2, 3, 4}, iota(2, 3, 4):flatten(2, 2):shape())
    assert.same({1}, mg.tensor(3):flatten():shape())
  end)

  it("flatten of a contiguous tensor is a view, of a transposed one a copy", function()
    local base = iota(2, 3)
    assert.is_true(base:flatten():shares_storage(base))
    local f = base:t():flatten()
    values(f, {0, 3, 1, 4, 2, 5}, "float64")
    assert.is_false(f:shares_storage(base))
  end)

  it("contiguous returns the tensor itself when already contiguous", function()
    local base = iota(2, 3)
    assert.equal(base, base:contiguous())
  end)

  it("contiguous copies a strided tensor into row-major order", function()
    local base = iota(2, 3)
    local c = base:t():contiguous()
    assert.is_true(c:is_contiguous())
    assert.same({2, 1}, c:stride())
    values(c, {{0, 3}, {1, 4}, {2, 5}}, "float64")
    assert.is_false(c:shares_storage(base))
  end)
end)

describe("strides and contiguity", function()
  it("a fresh tensor has row-major strides", function()
    assert.same({12, 4, 1}, mg.zeros(2, 3, 4):stride())
    assert.equal(4, mg.zeros(2, 3, 4):stride(2))
    assert.equal(1, mg.zeros(2, 3, 4):stride(-1))
    assert.same({}, mg.tensor(1):stride())
  end)

  it("size-1 dims do not break contiguity", function()
    assert.is_true(mg.zeros(3, 1):t():is_contiguous())
    assert.is_true(iota(3, 4):narrow(1, 2, 1):is_contiguous())
    assert.is_false(iota(3, 4):narrow(2, 2, 2):is_contiguous())
    assert.is_false(mg.zeros(1, 3):expand(2, 3):is_contiguous())
  end)

  it("views of views compose", function()
    local base = iota(4, 5)
    local v = base:t():narrow(1, 2, 3):select(2, 4)   -- column 2..4 of row 4
    values(v, {16, 17, 18}, "float64")
    assert.equal(17, v:storage_offset())        -- 1-based: element 16 is the 17th
    v[1] = -16
    assert.equal(-16, base:get(4, 2))
  end)
end)
