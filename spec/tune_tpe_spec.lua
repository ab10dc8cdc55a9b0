-- moongrad.tune.tpe: the TPE sampler is a pure function of (history, ctx),
-- keeps every suggestion inside its space, ranks pruned and running trials
-- as documented, and beats random sampling on Branin and Hartmann-6 over
-- the same budget and seeds. The spec drives the sampler with a small loop
-- standing in for the study.
local space = require "moongrad.tune.space"
local rng = require "moongrad.tune.rng"
local tpe = require "moongrad.tune.tpe"

local TPESampler = tpe.TPESampler
local log10 = function(x) return math.log(x, 10) end

local fns = require "support.test_functions"
local drive, branin, hartmann6 = fns.drive, fns.branin, fns.hartmann6

local BRANIN = space.new{x1 = space.uniform(-5, 10), x2 = space.uniform(0, 15)}
local HARTMANN = space.new{x1 = space.uniform(0, 1), x2 = space.uniform(0, 1),
  x3 = space.uniform(0, 1), x4 = space.uniform(0, 1), x5 = space.uniform(0, 1),
  x6 = space.uniform(0, 1)}

-- Every kind of dimension, and a fixed value the sampler must leave alone.
local MIXED = space.new{
  lr = space.loguniform(1e-6, 1), dropout = space.uniform(0, 0.5), layers = space.int(1, 4),
  width = space.logint(8, 1024), act = space.choice{"relu", "tanh", "gelu"},
  bias = space.choice{true, false}, epochs = 5}
local function mixed_loss(c)
  return (log10(c.lr) + 3) ^ 2 + (c.dropout - 0.1) ^ 2 * 10 + math.abs(c.layers - 3)
    + math.abs(log10(c.width) - log10(128)) + (c.act == "gelu" and 0 or 1) + (c.bias and 0 or 0.5)
end

describe("tune.TPESampler", function()
  it("gives the same values for the same history and ctx", function()
    local _, history = drive(MIXED, mixed_loss, 30, 7, TPESampler{})
    local s = TPESampler{}
    local a = s:suggest(MIXED, history, {number = 31, seed = 7, rng = rng.new(7, 31)})
    local b = TPESampler{}:suggest(MIXED, history, {number = 31, seed = 7, rng = rng.new(7, 31)})
    assert.same(a, b)
    local c = s:suggest(MIXED, history, {number = 32, seed = 7, rng = rng.new(7, 32)})
    assert.are_not.same(a, c)
  end)

  it("samples the prior until `initial` trials have finished", function()
    local _, history = drive(MIXED, mixed_loss, 4, 3, TPESampler{initial = 5})
    local r1, r2 = rng.new(3, 5), rng.new(3, 5)
    assert.same(MIXED:sample(r1),
                TPESampler{initial = 5}:suggest(MIXED, history, {number = 5, seed = 3, rng = r2}))
    -- running and failed trials do not count as finished
    history[5] = {number = 5, state = "running", values = history[4].values, intermediate = {}}
    history[6] = {number = 6, state = "failed", values = history[3].values, intermediate = {}}
    r1, r2 = rng.new(3, 7), rng.new(3, 7)
    assert.same(MIXED:sample(r1),
                TPESampler{initial = 5}:suggest(MIXED, history, {number = 7, seed = 3, rng = r2}))
  end)

  it("keeps every suggestion inside its dimension: integers integral, choices listed, "
     .. "bounds respected", function()
    local _, history = drive(MIXED, mixed_loss, 60, 11, TPESampler{initial = 8})
    for n, t in ipairs(history) do
      local v = t.values
      assert.is_nil(MIXED:mismatch(v), "trial " .. n)
      assert.is_nil(v.epochs)                     -- fixed values are not the sampler's
      assert.equal("integer", math.type(v.layers))
      assert.equal("integer", math.type(v.width))
      assert.is_true(v.lr >= 1e-6 and v.lr <= 1)
      assert.is_true(v.dropout >= 0 and v.dropout <= 0.5)
    end
  end)

  it("models log dimensions in log space", function()
    local budget, tail = 80, 30
    local _, h_tpe = drive(MIXED, mixed_loss, budget, 5, TPESampler{})
    local _, h_rnd = drive(MIXED, mixed_loss, budget, 5)
    local function late(history, f)
      local s = 0
      for n = budget - tail + 1, budget do s = s + f(history[n].values) end
      return s / tail
    end
    -- the optima lie at 1e-3 and 128, far from the middle of the linear range
    local lr_gap = function(v) return math.abs(log10(v.lr) + 3) end
    local width_gap = function(v) return math.abs(log10(v.width) - log10(128)) end
    assert.is_true(late(h_tpe, lr_gap) < 0.5 * late(h_rnd, lr_gap))
    assert.is_true(late(h_tpe, width_gap) < 0.5 * late(h_rnd, width_gap))
  end)

  it("learns which choice is best", function()
    local sp = space.new{act = space.choice{"relu", "tanh", "gelu", "silu"},
                         x = space.uniform(0, 1)}
    local f = function(v) return (v.act == "gelu" and 0 or 1) + 0.1 * v.x end
    for _, seed in ipairs{1, 2, 3} do
      local _, history = drive(sp, f, 40, seed, TPESampler{})
      local gelu = 0
      for n = 21, 40 do gelu = gelu + (history[n].values.act == "gelu" and 1 or 0) end
      assert.is_true(gelu >= 14, "seed " .. seed .. ": " .. gelu .. " of 20")
    end
  end)

  it("skips trials whose values predate a change of space", function()
    local _, history = drive(BRANIN, branin, 20, 2, TPESampler{})
    history[21] = {number = 21, state = "complete", values = {x1 = 99}, loss = -100}
    history[22] = {number = 22, state = "complete", values = {}, loss = -200}
    local v = TPESampler{}:suggest(BRANIN, history, {number = 23, seed = 2, rng = rng.new(2, 23)})
    assert.is_nil(BRANIN:mismatch(v))
  end)

  it("ranks complete trials by loss, then pruned ones by step reached, then by loss", function()
    local function t(number, state, loss, step)
      return {number = number, state = state, loss = loss, values = {},
              intermediate = step and {{1, 0}, {step, 0}} or {}}
    end
    local history = {t(1, "pruned", 0.1, 3), t(2, "complete", 5), t(3, "failed"),
      t(4, "pruned", 0.5, 9), t(5, "running"), t(6, "complete", 2), t(7, "pruned", 0.2, 9),
      t(8, "pruned", nil, 9), t(9, "pruned"), t(10, "complete", 2), t(11, "running")}
    local ranked, running = tpe._rank(history, 11)
    local order = {}
    for i, e in ipairs(ranked) do order[i] = e.trial.number end
    assert.same({6, 10, 2, 7, 4, 8, 1, 9}, order)
    assert.equal(1, #running)
    assert.equal(5, running[1].number)
  end)

  it("with constant_liar, steers away from points other workers are evaluating", function()
    local _, history = drive(BRANIN, branin, 30, 4, TPESampler{})
    local ctx = function() return {number = 31, seed = 4, rng = rng.new(4, 31)} end
    local plain = TPESampler{}:suggest(BRANIN, history, ctx())
    for k = 1, 6 do
      history[#history + 1] = {number = 30 + k, state = "running", values = plain,
                               intermediate = {}}
    end
    ctx = function() return {number = 40, seed = 4, rng = rng.new(4, 40)} end
    assert.same(TPESampler{}:suggest(BRANIN, history, ctx()),
                TPESampler{}:suggest(BRANIN, {table.unpack(history, 1, 30)}, ctx()))
    local liar = TPESampler{constant_liar = true}:suggest(BRANIN, history, ctx())
    local far = function(v) return math.abs(v.x1 - plain.x1) + math.abs(v.x2 - plain.x2) end
    assert.is_true(far(liar) > far(TPESampler{}:suggest(BRANIN, history, ctx())))
  end)

  it("builds normalised truncated Parzen densities", function()
    assert.near(1, tpe._erfc(0), 1e-7)
    assert.near(0.157299207050285, tpe._erfc(1), 2e-7 * 0.157)
    assert.near(1.842700792949715, tpe._erfc(-1), 2e-7)
    assert.near(2.209049699858544e-05, tpe._erfc(3), 2e-7 * 2.2e-5)
    for _, bw in ipairs{"neighbours", "scott"} do
      local m = tpe._mixture({0.02, 0.3, 0.31, 0.97}, 1, bw)
      local steps, s = 2000, 0
      for i = 0, steps do
        local w = (i == 0 or i == steps) and 0.5 or 1
        s = s + w * math.exp(tpe._log_pdf(m, i / steps))
      end
      assert.near(1, s / steps, 1e-4)
      assert.near(0, tpe._log_mass(m, 0, 1), 1e-6)
    end
  end)

  describe("against random sampling on the same seeds and budget", function()
    local SEEDS = {1, 2, 3, 4, 5, 6, 7, 8}
    local function averages(sp, f, budget, opts)
      local t, r = 0, 0
      for _, seed in ipairs(SEEDS) do
        t = t + drive(sp, f, budget, seed, TPESampler(opts))
        r = r + drive(sp, f, budget, seed)
      end
      return t / #SEEDS, r / #SEEDS
    end

    it("finds lower Branin values (min 0.397887) in 60 trials", function()
      local t, r = averages(BRANIN, branin, 60)
      print(string.format("\nBranin, 60 trials, %d seeds: TPE %.4f, random %.4f", #SEEDS, t, r))
      assert.is_true(t < r)
    end)

    it("finds lower Hartmann-6 values (min -3.32237) in 60 trials", function()
      local t, r = averages(HARTMANN, hartmann6, 60)
      local s = averages(HARTMANN, hartmann6, 60, {bandwidth = "scott"})
      print(string.format("\nHartmann-6, 60 trials, %d seeds: TPE %.4f (Scott's rule %.4f), "
                          .. "random %.4f", #SEEDS, t, s, r))
      assert.is_true(t < r)
      assert.is_true(t < s)                     -- why neighbour bandwidths are the default
    end)
  end)

  it("rejects unknown options and bad values", function()
    local cases = {
      {{seed = 1}, "unknown option 'seed'"},
      {{initial = -1}, "initial must be an integer >= 0"},
      {{initial = 2.5}, "initial must be an integer >= 0"},
      {{candidates = 0}, "candidates must be an integer >= 1"},
      {{gamma = 0}, "gamma must be a fraction in %(0, 1%]"},
      {{gamma = 1.5}, "gamma must be a fraction in %(0, 1%]"},
      {{gamma = "ten"}, "gamma must be a fraction"},
      {{prior_weight = 0}, "prior_weight must be a finite number > 0"},
      {{prior_weight = math.huge}, "prior_weight must be a finite number > 0"},
      {{bandwidth = "silverman"}, "bandwidth must be \"neighbours\" or \"scott\""},
      {{constant_liar = "yes"}, "constant_liar must be a boolean"},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(function() local s = TPESampler(c[1]); return s end)
      assert.is_false(ok)
      assert.matches("tune.TPESampler: " .. c[2], err)
      assert.matches("tune_tpe_spec", err)         -- blames the caller
    end
    assert.has_error(function() TPESampler(3) end,
                     "tune.TPESampler: options must be a table, got number")
    local _, history = drive(BRANIN, branin, 12, 1, TPESampler{})
    local s = TPESampler{gamma = function() return nil end}
    assert.has_error(function()
      s:suggest(BRANIN, history, {number = 13, seed = 1, rng = rng.new(1, 13)})
    end, "tune.TPESampler: gamma(12) returned nil; it must return a number of trials")
    assert.has_error(function() TPESampler{}:suggest(BRANIN, history, {number = 13}) end,
                     "tune.TPESampler: suggest needs ctx.rng, a moongrad.tune.rng stream")
  end)
end)
