-- moongrad.tune.bayes: BayesSampler beats random search on the standard
-- test functions at the same budget, proposes deterministically, spreads
-- parallel workers, avoids duplicates, and checks its options.
local space = require "moongrad.tune.space"
local rng = require "moongrad.tune.rng"
local BayesSampler = require("moongrad.tune.bayes").BayesSampler

local fns = require "support.test_functions"
local branin, hartmann6 = fns.branin, fns.hartmann6

local function unit_space(d)
  local t = {}
  for j = 1, d do t["x" .. j] = space.uniform(0, 1) end
  return space.new(t)
end

-- The study's side of the interface, in a loop (support.test_functions),
-- checking that every suggestion fits the space.
local function minimise(sampler, sp, f, trials, seed)
  return fns.drive(sp, function(values)
    assert.is_nil(sp:mismatch(values))
    return f(values)
  end, trials, seed, sampler)
end

-- What tune's RandomSampler does: space:sample with the trial's stream.
local random = { suggest = function(_, sp, _, ctx) return sp:sample(ctx.rng) end }

local SEEDS = { 1, 2, 3, 4, 5 }

-- The average best loss of BO and of random search over SEEDS.
local function compare(name, sp, f, trials)
  local bo, rs = 0, 0
  for _, seed in ipairs(SEEDS) do
    bo = bo + minimise(BayesSampler(), sp, f, trials, seed) / #SEEDS
    rs = rs + minimise(random, sp, f, trials, seed) / #SEEDS
  end
  print(("\n%s, %d trials, mean best of %d seeds: BayesSampler %.5f, random %.5f")
    :format(name, trials, #SEEDS, bo, rs))
  return bo, rs
end

describe("BayesSampler", function()
  it("beats random search on Branin (30 trials; minimum 0.397887)", function()
    local bo, rs = compare("Branin", space.new { x1 = space.uniform(-5, 10), x2 = space.uniform(0, 15) },
      branin, 30)
    assert.is_true(bo < rs)
    assert.is_true(bo < 0.6, "BO's mean best is near the minimum")
  end)

  it("beats random search on Hartmann-6 (45 trials; minimum -3.32237)", function()
    local bo, rs = compare("Hartmann-6", unit_space(6), hartmann6, 45)
    assert.is_true(bo < rs)
    assert.is_true(bo < -2.6, "BO's mean best is near the minimum")
  end)

  it("starts with a Latin hypercube: each dimension's slices taken once", function()
    local sampler = BayesSampler { initial = 8 }
    local _, history = minimise(sampler, unit_space(3), function(v) return v.x1 end, 8, 42)
    for j = 1, 3 do
      local seen = {}
      for _, t in ipairs(history) do
        local slice = math.floor(t.values["x" .. j] * 8) + 1
        assert.is_nil(seen[slice], "slice taken twice")
        seen[slice] = true
      end
    end
  end)

  it("proposes the same point for the same history and trial (a resumed study)", function()
    local sp = unit_space(2)
    local _, history = minimise(BayesSampler(), sp, function(v) return (v.x1 - 0.3) ^ 2 + v.x2 end, 8, 3)
    local a = BayesSampler():suggest(sp, history, { number = 9, seed = 3, rng = rng.new(3, 9) })
    local b = BayesSampler():suggest(sp, history, { number = 9, seed = 3, rng = rng.new(3, 9) })
    assert.are.same(a, b)
  end)

  it("sends parallel workers elsewhere than a running trial (kriging believer)", function()
    local sp = unit_space(2)
    local f = function(v) return (v.x1 - 0.3) ^ 2 + (v.x2 - 0.6) ^ 2 end
    local _, history = minimise(BayesSampler(), sp, f, 12, 9)
    local ctx = { number = 13, seed = 9, rng = rng.new(9, 13) }
    local first = BayesSampler():suggest(sp, history, ctx)
    history[13] = { number = 13, state = "running", values = first, intermediate = {} }
    local second = BayesSampler():suggest(sp, history, { number = 14, seed = 9, rng = rng.new(9, 14) })
    local dist = math.sqrt((first.x1 - second.x1) ^ 2 + (first.x2 - second.x2) ^ 2)
    assert.is_true(dist > 1e-3, ("the second worker got %.2g away from the first"):format(dist))
  end)

  it("leaves failed trials and records of another space out", function()
    local sp = unit_space(2)
    local _, history = minimise(BayesSampler(), sp, function(v) return v.x1 + v.x2 end, 6, 1)
    history[7] = { number = 7, state = "failed", values = { x1 = 0.5, x2 = 0.5 }, intermediate = {} }
    history[8] = { number = 8, state = "complete", values = { x1 = 0.5, depth = 3 }, loss = -5,
                   intermediate = {} }
    local v = BayesSampler():suggest(sp, history, { number = 9, seed = 1, rng = rng.new(1, 9) })
    assert.is_nil(sp:mismatch(v))
  end)

  it("learns from pruned trials: it stops proposing where the pruner keeps stopping", function()
    local sp = unit_space(2)
    local f = function(v) return v.x1 + v.x2 end          -- best at the origin
    local _, history = minimise(BayesSampler(), sp, f, 8, 1)
    local ctx = function() return { number = 20, seed = 1, rng = rng.new(1, 20) } end
    local free = BayesSampler():suggest(sp, history, ctx())
    assert.is_true(free.x1 + free.x2 < 0.2, "without pruned trials it heads for the origin")
    -- trials near the origin were stopped early with losses worse than any
    -- completed one
    local corner = { { 0.01, 0.02 }, { 0.05, 0.01 }, { 0.02, 0.08 }, { 0.1, 0.03 },
                     { 0.0, 0.0 }, { 0.07, 0.07 } }
    for i, p in ipairs(corner) do
      history[#history + 1] = { number = 8 + i, state = "pruned", values = { x1 = p[1], x2 = p[2] },
                                loss = 2.5, intermediate = { { 1, 2.5 } } }
    end
    local v = BayesSampler():suggest(sp, history, ctx())
    assert.is_true(v.x1 + v.x2 > 0.2, ("still proposing (%.3f, %.3f)"):format(v.x1, v.x2))
  end)

  it("is not thrown off by one diverged trial with an enormous loss", function()
    local sp = unit_space(2)
    local f = function(v) return (v.x1 - 0.7) ^ 2 + (v.x2 - 0.2) ^ 2 end
    local _, history = minimise(BayesSampler(), sp, f, 10, 4)
    local ctx = function() return { number = 30, seed = 4, rng = rng.new(4, 30) } end
    local calm = BayesSampler():suggest(sp, history, ctx())
    history[#history + 1] = { number = 11, state = "complete", values = { x1 = 0.05, x2 = 0.95 },
                              loss = 1e6, intermediate = {} }
    local v = BayesSampler():suggest(sp, history, ctx())
    assert.is_true(f(calm) < 0.05, ("without it: (%.3f, %.3f)"):format(calm.x1, calm.x2))
    -- untamed, the GP flattens and proposes (0.66, 0.63), f = 0.19
    assert.is_true(f(v) < 0.1, ("with it: (%.3f, %.3f)"):format(v.x1, v.x2))
  end)

  it("pulls in the far tail of the losses but keeps their order", function()
    local tame = require("moongrad.tune.bayes")._tame
    local y = { 0.30, 0.25, 0.41, 0.33, 1e6, 0.28, 0.52, 50 }
    local t = tame(y)
    -- quartiles (2nd and 6th of 8 sorted) 0.28 and 0.52: the fence is
    -- 0.52 + 3 * 0.24 = 1.24
    for i, v in ipairs(y) do
      if v <= 1.24 then assert.are.equal(v, t[i]) end
    end
    assert.is_true(t[8] > 1.24 and t[8] < t[5])
    assert.is_near(1.24 + 0.24 * math.log(1 + (1e6 - 1.24) / 0.24), t[5], 1e-9)
    assert.are.same({ 1, 2 }, tame({ 1, 2 }))          -- too few to judge
  end)

  it("searches mixed spaces and never repeats a configuration it can avoid", function()
    local sp = space.new { width = space.choice { 16, 32, 64 }, layers = space.int(1, 3),
                           act = "relu" }
    local f = function(v) return (v.width - 32) ^ 2 / 100 + (v.layers - 2) ^ 2 end
    local _, history = minimise(BayesSampler { initial = 3 }, sp, f, 9, 5)
    local seen = {}
    for _, t in ipairs(history) do
      local k = t.values.width .. "/" .. t.values.layers
      assert.is_nil(seen[k], "configuration " .. k .. " proposed twice")
      seen[k] = true
    end
  end)

  it("handles log and integer dimensions", function()
    local sp = space.new { lr = space.loguniform(1e-4, 1e-1), batch = space.logint(8, 512) }
    local f = function(v) return (math.log(v.lr) - math.log(3e-3)) ^ 2 + math.abs(v.batch - 64) / 64 end
    local best = minimise(BayesSampler { initial = 5 }, sp, f, 15, 2)
    assert.is_true(best < 1)
  end)

  it("keeps its proposals off the bounds when the optimum is inside, and finds one on a bound", function()
    -- a learning rate and weight decay bowl: lr 10^-2.5, wd 10^-4, both well
    -- inside their ranges; the perturbations around the best trials used to
    -- be clamped to the cube, so a fifth of the proposals sat on a bound
    local sp = space.new { lr = space.loguniform(1e-5, 1e-1), wd = space.loguniform(1e-6, 1e-1) }
    local log10 = function(x) return math.log(x, 10) end
    local on_bound, proposals = 0, 0
    for _, seed in ipairs(SEEDS) do
      local _, history = fns.drive(sp, function(v)
        return (log10(v.lr) + 2.5) ^ 2 + 0.3 * (log10(v.wd) + 4) ^ 2
      end, 25, seed, BayesSampler { initial = 5 })
      for i = 6, #history do
        local v = history[i].values
        proposals = proposals + 1
        if v.lr == 1e-5 or v.lr == 1e-1 or v.wd == 1e-6 or v.wd == 1e-1 then
          on_bound = on_bound + 1
        end
      end
    end
    assert.is_true(on_bound <= 2, ("%d of %d proposals on a bound"):format(on_bound, proposals))
    -- with the optimum at lr = 1e-5, the lower bound, the search still gets there
    for _, seed in ipairs(SEEDS) do
      local best = minimise(BayesSampler { initial = 5 }, sp, function(v)
        return (log10(v.lr) + 5) ^ 2 + 0.3 * (log10(v.wd) + 4) ^ 2
      end, 25, seed)
      assert.is_true(best < 0.01, ("seed %d: best %g"):format(seed, best))
    end
  end)

  it("sizes its trust region by TuRBO's rule, replayed from the history", function()
    local bayes = require "moongrad.tune.bayes"
    local sp = unit_space(2)
    local losses, history = {}, {}
    local function at(k) -- the history of the first k losses
      for i = 1, k do
        history[i] = { number = i, state = "complete", values = { x1 = 0.5, x2 = 0.5 },
                       loss = losses[i] }
      end
      for i = k + 1, #history do history[i] = nil end
      return history
    end
    -- two initial trials (best 5), then with d = 2 a streak of max(4, d) = 4
    -- failures halves the side 0.8 -> 0.4, three wins double it back, a
    -- failed or running trial counts for nothing, and 4.999 is no win (it
    -- improves 5 by less than 0.1%)
    losses = { 5, 6, 7, 4.999, 9, 9, 4, 3, 2 }
    assert.equal(0.8, bayes._trust_side(sp, at(2), 2))
    assert.equal(0.8, bayes._trust_side(sp, at(5), 2))
    assert.equal(0.4, bayes._trust_side(sp, at(6), 2))
    assert.equal(0.4, bayes._trust_side(sp, at(8), 2))
    assert.equal(0.8, bayes._trust_side(sp, at(9), 2))
    history[10] = { number = 10, state = "failed", values = { x1 = 0.5, x2 = 0.5 } }
    history[11] = { number = 11, state = "running", values = { x1 = 0.5, x2 = 0.5 } }
    assert.equal(0.8, bayes._trust_side(sp, history, 2))
    -- the seventh halving ends below 2^-7 and starts over at 0.8
    losses = { 1 }
    for i = 2, 1 + 4 * 7 do losses[i] = 2 end
    assert.equal(0.8 / 2 ^ 6, bayes._trust_side(sp, at(1 + 4 * 6), 1))
    assert.equal(0.8, bayes._trust_side(sp, at(1 + 4 * 7), 1))
    -- the box: length scales 0.1 and 0.4 (geometric mean 0.2) stretch a side
    -- of 0.4 to 0.2 and 0.8, clipped to the cube
    local lo, hi = bayes._trust_box(0.4, { 0.5, 0.9 }, { 0.1, 0.4 })
    local approx = require "support.approx"
    approx.assert_close({ lo[1], lo[2], hi[1], hi[2] }, { 0.4, 0.5, 0.6, 1 }, 1e-12, 1e-12)
  end)

  it("rejects unknown options and bad values", function()
    assert.has_error(function() BayesSampler { inital = 5 } end)
    assert.has_error(function() BayesSampler { trust_region = "yes" } end,
                     "tune.BayesSampler: trust_region must be true or false, got yes")
    assert.matches("unknown option 'inital'", select(2, pcall(BayesSampler, { inital = 5 })))
    local bad = {
      { initial = 1 }, { initial = 2.5 }, { candidates = 0 }, { local_points = -1 },
      { local_scale = 0 }, { local_scale = 2 }, { xi = -0.1 }, { xi = 0 / 0 },
      { restarts = 4 }, { iterations = "many" },
    }
    for _, opts in ipairs(bad) do
      local name = next(opts)
      local ok, err = pcall(BayesSampler, opts)
      assert.is_false(ok, name)
      assert.matches("tune.BayesSampler: " .. name .. " must be", err)
    end
  end)
end)
