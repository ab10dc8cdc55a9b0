-- Random numbers: Philox4x32-10 checked against Random123's published
-- known-answer vectors, then reproducibility, resumable state, ranges and
-- (loose, 5-sigma) statistics of every draw.
local mg = require "moongrad"
local approx = require "support.approx"

local function hex(...)
  local r = {}
  for i, v in ipairs{...} do r[i] = ("%08x"):format(v) end
  return table.concat(r, " ")
end

local function stats(list)
  local s1, s2, lo, hi = 0, 0, math.huge, -math.huge
  for _, v in ipairs(list) do
    s1, s2 = s1 + v, s2 + v * v
    lo, hi = math.min(lo, v), math.max(hi, v)
  end
  local n = #list
  local mean = s1 / n
  return mean, math.sqrt(s2 / n - mean * mean), lo, hi
end

describe("the Philox4x32-10 block function", function()
  -- Random123's kat_vectors: philox4x32 10 rounds, (ctr, key) -> out.
  -- mg._philox(key, ctr_lo, ctr_hi): key = k1:k0, ctr_lo = c1:c0, ctr_hi = c3:c2.
  it("matches the all-zero known answer", function()
    assert.equal("6627e8d5 e169c58d bc57ac4c 9b00dbd8", hex(mg._philox(0, 0, 0)))
  end)

  it("matches the all-ones known answer", function()
    -- 0xffffffffffffffff is -1 as a Lua integer
    assert.equal("408f276d 41c83b0e a20bc7c6 6d5451fd",
                 hex(mg._philox(-1, -1, -1)))
  end)

  it("matches the pi-digits known answer", function()
    assert.equal("d16cfe09 94fdcceb 5001e420 24126ea1",
                 hex(mg._philox(0x299f31d0a4093822, 0x85a308d3243f6a88,
                                0x0370734413198a2e)))
  end)
end)

describe("seeding", function()
  it("the same seed gives the same numbers from every draw", function()
    local function draw()
      return {mg.rand(5):totable(), mg.randn(3, 2, "float64"):totable(),
              mg.randint(1, 100, {7}):totable(), mg.randperm(9):totable(),
              mg.rand(3, "float64"):totable()}
    end
    mg.manual_seed(1234)
    local a = draw()
    mg.manual_seed(1234)
    local b = draw()
    assert.same(a, b)
    mg.manual_seed(1235)
    local c = draw()
    assert.are_not.same(a[1], c[1])
    assert.are_not.same(a[4], c[4])
  end)

  it("consecutive draws differ", function()
    mg.manual_seed(0)
    assert.are_not.same(mg.rand(4):totable(), mg.rand(4):totable())
  end)

  it("get_rng_state and set_rng_state resume the stream exactly", function()
    mg.manual_seed(99)
    mg.rand(3)
    local st = mg.get_rng_state()
    assert.equal(99, st.seed)
    local first = {mg.randn(11, "float64"):totable(), mg.randperm(6):totable(),
                   mg.randint(5, {4}):totable()}
    local after = mg.get_rng_state()
    mg.manual_seed(7)                     -- wander off
    mg.rand(100)
    mg.set_rng_state(st)
    local again = {mg.randn(11, "float64"):totable(), mg.randperm(6):totable(),
                   mg.randint(5, {4}):totable()}
    assert.same(first, again)
    assert.same(after, mg.get_rng_state())
  end)

  it("a state survives a round trip through plain numbers", function()
    mg.manual_seed(5)
    mg.rand(10)
    local st = mg.get_rng_state()
    local copy = {seed = st.seed, offset = st.offset}
    local x = mg.rand(4, "float64"):totable()
    mg.set_rng_state(copy)
    assert.same(x, mg.rand(4, "float64"):totable())
  end)
end)

describe("randperm", function()
  it("is a permutation of 1..n as int64", function()
    mg.manual_seed(3)
    for _, n in ipairs{1, 2, 10, 1000} do
      local p = mg.randperm(n)
      assert.equal("int64", p:dtype())
      assert.same({n}, p:shape())
      local seen, t = {}, p:totable()
      for _, v in ipairs(t) do
        assert.equal("integer", math.type(v))
        assert.is_true(v >= 1 and v <= n)
        assert.is_nil(seen[v])
        seen[v] = true
      end
    end
    assert.same({0}, mg.randperm(0):shape())
  end)

  it("actually shuffles", function()
    mg.manual_seed(4)
    local t = mg.randperm(50):totable()
    local fixed = 0
    for i, v in ipairs(t) do if i == v then fixed = fixed + 1 end end
    assert.is_true(fixed < 10)           -- expected 1 fixed point
  end)

  it("rejects a negative n", function()
    assert.has_error(function() mg.randperm(-1) end,
                     "randperm: n must be non-negative, got -1")
  end)
end)

describe("randint", function()
  it("randint(low, high, shape) covers [low, high], both inclusive", function()
    mg.manual_seed(10)
    local t = mg.randint(-2, 3, {2000})
    assert.equal("int64", t:dtype())
    local count = {}
    for _, v in ipairs(t:totable()) do
      assert.is_true(v >= -2 and v <= 3)
      count[v] = (count[v] or 0) + 1
    end
    for v = -2, 3 do
      assert.is_true((count[v] or 0) > 2000 / 6 * 0.7, "value " .. v .. " is rare")
    end
  end)

  it("randint(n, shape) gives 1..n", function()
    mg.manual_seed(11)
    local t = mg.randint(4, {2, 500})
    assert.same({2, 500}, t:shape())
    local seen = {}
    for _, v in ipairs(approx.flat(t)) do
      assert.is_true(v >= 1 and v <= 4)
      seen[v] = true
    end
    assert.same({true, true, true, true}, seen)
  end)

  it("a one-value range gives that value, and a dtype may be asked for", function()
    approx.assert_values(mg.randint(7, 7, {3}), {7, 7, 7}, "int64")
    local f = mg.randint(0, 1, {10}, "float64")
    assert.equal("float64", f:dtype())
    for _, v in ipairs(f:totable()) do assert.is_true(v == 0 or v == 1) end
  end)

  it("rejects an empty range", function()
    assert.has_error(function() mg.randint(2, 1, {3}) end,
                     "randint: empty range [2, 1]")
  end)
end)

describe("rand and randn", function()
  it("rand lies in [0, 1) with mean 1/2 and std 1/sqrt(12)", function()
    mg.manual_seed(20)
    for _, dt in ipairs{"float32", "float64"} do
      local t = mg.rand(100000, dt)
      assert.equal(dt, t:dtype())
      local mean, sd, lo, hi = stats(t:totable())
      assert.is_true(lo >= 0 and hi < 1)
      -- std of the mean: 0.2887 / sqrt(1e5) = 9.1e-4; 5 sigma
      assert.is_true(math.abs(mean - 0.5) < 5 * 9.1e-4, "mean " .. mean)
      assert.is_true(math.abs(sd - 1 / math.sqrt(12)) < 0.005, "std " .. sd)
    end
  end)

  it("randn has mean 0 and std 1", function()
    mg.manual_seed(21)
    for _, dt in ipairs{"float32", "float64"} do
      local mean, sd = stats(mg.randn(100000, dt):totable())
      -- std of the mean 1/sqrt(1e5) = 3.2e-3; of the std about 2.2e-3
      assert.is_true(math.abs(mean) < 5 * 3.2e-3, "mean " .. mean)
      assert.is_true(math.abs(sd - 1) < 5 * 2.2e-3, "std " .. sd)
    end
  end)

  it("randn has normal tails: about 4.55% beyond 2 sigma", function()
    mg.manual_seed(22)
    local beyond = 0
    for _, v in ipairs(mg.randn(100000, "float64"):totable()) do
      if math.abs(v) > 2 then beyond = beyond + 1 end
    end
    -- binomial sd: sqrt(1e5 * 0.0455 * 0.9545) = 66
    assert.is_true(math.abs(beyond - 4550) < 5 * 66, "beyond 2 sigma: " .. beyond)
  end)

  it("refuses an int64 dtype", function()
    assert.has_error(function() mg.rand(2, "int64") end,
                     "rand: dtype must be float32 or float64, got int64")
    assert.has_error(function() mg.randn({2}, "int64") end,
                     "randn: dtype must be float32 or float64, got int64")
  end)

  it("an odd count draws the same prefix as an even one", function()
    mg.manual_seed(23)
    local a = mg.randn(7, "float64"):totable()
    mg.manual_seed(23)
    local b = mg.randn(8, "float64"):totable()
    for i = 1, 7 do assert.equal(b[i], a[i]) end
  end)
end)

describe("threads", function()
  local saved
  before_each(function() saved = mg.get_num_threads() end)
  after_each(function() mg.set_num_threads(saved) end)

  it("give the same numbers with 1 and 2 threads", function()
    local function draw()
      mg.manual_seed(77)
      return {mg.rand(300001):totable(), mg.randn(200003, "float64"):totable(),
              mg.randint(1, 1000, {100001}):totable(), mg.get_rng_state()}
    end
    mg.set_num_threads(1)
    local a = draw()
    mg.set_num_threads(2)
    local b = draw()
    assert.same(a[4], b[4])
    for k = 1, 3 do
      local x, y = a[k], b[k]
      assert.equal(#x, #y)
      for i = 1, #x do
        if x[i] ~= y[i] then error(("draw %d differs at %d"):format(k, i)) end
      end
    end
  end)
end)

describe("uniform_ and normal_", function()
  it("uniform_ fills in place within [low, high)", function()
    mg.manual_seed(30)
    local t = mg.zeros(1000, "float64")
    assert.equal(t, t:uniform_(-2, 5))
    local mean, _, lo, hi = stats(t:totable())
    assert.is_true(lo >= -2 and hi < 5)
    assert.is_true(math.abs(mean - 1.5) < 5 * 7 / math.sqrt(12 * 1000))
  end)

  it("normal_ fills in place with the given mean and std", function()
    mg.manual_seed(31)
    local t = mg.zeros(10000):normal_(10, 0.5)
    local mean, sd = stats(t:totable())
    assert.is_true(math.abs(mean - 10) < 5 * 0.5 / 100, "mean " .. mean)
    assert.is_true(math.abs(sd - 0.5) < 0.05, "std " .. sd)
  end)

  it("fills only a non-contiguous view, and all of it", function()
    mg.manual_seed(32)
    local base = mg.full({6, 8}, -1, "float64")
    local v = base:t():narrow(1, 3, 4)             -- columns 3..6, transposed
    v:uniform_(10, 11)
    local b = base:totable()
    for i = 1, 6 do
      for j = 1, 8 do
        if j >= 3 and j <= 6 then
          assert.is_true(b[i][j] >= 10 and b[i][j] < 11)
        else
          assert.equal(-1, b[i][j])
        end
      end
    end
    v:normal_(0, 1)
    for _, x in ipairs(approx.flat(v)) do assert.is_true(x > -8 and x < 8) end
    assert.equal(-1, base:get(1, 1))
  end)

  it("draws into a view the values a fresh tensor of its shape would get", function()
    mg.manual_seed(33)
    local fresh = mg.rand(3, 4, "float64"):totable()
    mg.manual_seed(33)
    local v = mg.zeros(4, 3, "float64"):t()
    v:uniform_()
    assert.same(fresh, v:totable())
  end)

  it("refuse int64 tensors and bad parameters", function()
    assert.has_error(function() mg.zeros(2, "int64"):uniform_() end,
                     "uniform_: dtype must be float32 or float64, got int64")
    assert.has_error(function() mg.zeros(2):uniform_(1, 0) end,
                     "uniform_: expected low <= high, got 1 and 0")
    assert.has_error(function() mg.zeros(2):normal_(0, -1) end,
                     "normal_: std must be non-negative, got -1")
  end)
end)

describe("streams (mg.with_rng_stream)", function()
  -- Expected values come from the block function alone (checked above
  -- against Random123's vectors) and the documented conversions: a float32
  -- is word >> 8 times 2^-24, a float64 is (a >> 5, b >> 6) as 53 bits.
  local function f32_blocks(seed, stream, first, nblocks)
    local out = {}
    for blk = first, first + nblocks - 1 do
      local w = {mg._philox(seed, blk, stream)}
      for k = 1, 4 do out[#out + 1] = (w[k] >> 8) * 2.0 ^ -24 end
    end
    return out
  end

  it("draw Philox blocks whose counter's high word is the stream, from offset 0", function()
    local seed, stream = 0x1234abcd5678, 77
    mg.manual_seed(3)
    mg.rand(10)
    local got = mg.with_rng_stream(seed, stream, function() return mg.rand(6):totable() end)
    local want = f32_blocks(seed, stream, 0, 2)
    for i = 1, 6 do assert.equal(want[i], got[i]) end
    -- a negative stream is its two's complement: the loader's batch streams
    local w = {mg._philox(seed, 0, -5)}
    local d = mg.with_rng_stream(seed, -5, function() return mg.rand(1, "float64"):item() end)
    assert.equal(((w[1] >> 5) * 67108864.0 + (w[2] >> 6)) * 2.0 ^ -53, d)
  end)

  it("leave the outer stream to go on as if nothing had run", function()
    mg.manual_seed(11)
    mg.rand(5)
    local expected = mg.rand(7):totable()
    local after = mg.get_rng_state()
    mg.manual_seed(11)
    mg.rand(5)
    mg.with_rng_stream(1, 2, function()
      mg.rand(1000)
      mg.randperm(9)
      mg.randint(1, 5, {3})
    end)
    assert.same(expected, mg.rand(7):totable())
    assert.same(after, mg.get_rng_state())
  end)

  it("put the state back when fn raises, with the error as it was raised", function()
    mg.manual_seed(4)
    local before = mg.get_rng_state()
    local ok, trace = xpcall(mg.with_rng_stream, debug.traceback, 9, 9, function()
      mg.rand(100)
      error("cannot decode img_7.png", 0)
    end)
    assert.is_false(ok)
    assert.matches("^cannot decode img_7.png\nstack traceback:", trace)
    assert.same(before, mg.get_rng_state())
  end)

  it("draw what depends on (seed, stream) and the calls alone, not on what ran before or the thread count", function()
    local threads = mg.get_num_threads()
    local function inside()
      return mg.with_rng_stream(21, 1000, function()
        return {mg.rand(50001):sum():item(), mg.randn(7):totable(), mg.randperm(6):totable()}
      end)
    end
    local ok, err = pcall(function()
      mg.set_num_threads(1)
      mg.manual_seed(1)
      local a = inside()
      mg.set_num_threads(2)
      mg.manual_seed(2)
      mg.rand(333)
      assert.same(a, inside())
      assert.are_not.same(a, mg.with_rng_stream(21, 1001, function()
        return {mg.rand(50001):sum():item(), mg.randn(7):totable(), mg.randperm(6):totable()}
      end))
    end)
    mg.set_num_threads(threads)
    assert(ok, err)
  end)

  it("nest, and show the stream in get_rng_state only inside one", function()
    mg.manual_seed(6)
    assert.is_nil(mg.get_rng_state().stream)
    mg.with_rng_stream(5, 1, function()
      mg.rand(4)
      local outer = mg.get_rng_state()
      assert.same({seed = 5, offset = 1, stream = 1}, outer)
      local inner = mg.with_rng_stream(5, 2, mg.get_rng_state)
      assert.same({seed = 5, offset = 0, stream = 2}, inner)
      assert.same(outer, mg.get_rng_state())
    end)
    assert.same({seed = 6, offset = 0}, mg.get_rng_state())
  end)

  it("have states that set_rng_state takes back, through a checkpoint too", function()
    local checkpoint = require "moongrad.checkpoint"
    local path = os.tmpname()
    local st, want = mg.with_rng_stream(8, -3, function()
      mg.rand(9)
      local s = mg.get_rng_state()
      checkpoint.save(path, {})
      return s, mg.rand(5):totable()
    end)
    mg.manual_seed(0)
    mg.set_rng_state(st)
    assert.same(want, mg.rand(5):totable())
    mg.manual_seed(0)
    checkpoint.load(path)
    os.remove(path)
    assert.same(st, mg.get_rng_state())
    assert.same(want, mg.rand(5):totable())
    mg.manual_seed(0)
  end)

  it("pass fn its arguments and return all its results, nils included", function()
    local n, a, b, c = (function(...) return select("#", ...), ... end)(
      mg.with_rng_stream(1, 1, function(x, y, z) return x, y, z end, "a", nil, 3))
    assert.same({3, "a", nil, 3}, {n, a, b, c})
    local callable = setmetatable({}, {__call = function(_, v) return v * 2 end})
    assert.equal(8, mg.with_rng_stream(1, 1, callable, 4))
  end)

  it("refuse what is not a function and a yield across them, leaving the state alone", function()
    mg.manual_seed(12)
    local before = mg.get_rng_state()
    assert.has_error(function() mg.with_rng_stream(1, 2, 3) end,
                     "with_rng_stream: expects a function as argument #3, got number")
    assert.has_error(function() mg.with_rng_stream(1.5, 2, print) end)
    local co = coroutine.wrap(function()
      return mg.with_rng_stream(1, 2, function() coroutine.yield(1) end)
    end)
    assert.has_error(co, "attempt to yield across a C-call boundary")
    assert.same(before, mg.get_rng_state())
  end)

  it("drive dropout as every other draw", function()
    local F = require "moongrad.functional"
    local x = mg.ones(64)
    local function mask(stream)
      return mg.with_rng_stream(3, stream, function() return F.dropout(x, 0.5, true):totable() end)
    end
    assert.same(mask(1), mask(1))
    assert.are_not.same(mask(1), mask(2))
  end)
end)
