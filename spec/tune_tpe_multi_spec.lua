-- moongrad.tune.tpe beyond one objective and independent dimensions:
-- multivariate TPE's joint density matches a hand derivation and Optuna
-- 3.1's Parzen estimator (spec/fixtures/gen_tpe_multi.py), its suggestions
-- are deterministic and inside the space, and it beats independent TPE on
-- a rotated valley; MOTPE's good/bad split and weights match a hand
-- derivation and Optuna, and its suggestions approach ZDT1's Pareto front
-- far better than random search. The samplers are driven by small loops
-- standing in for the study, then once through tune.Study itself.
local space = require "moongrad.tune.space"
local rng = require "moongrad.tune.rng"
local tpe = require "moongrad.tune.tpe"
local pareto = require "moongrad.tune.pareto"
local tune = require "moongrad.tune"
local fns = require "support.test_functions"

local TPESampler = tpe.TPESampler
local ref = dofile("spec/fixtures/tpe_multi_ref.lua")
local exp, log, sqrt, pi = math.exp, math.log, math.sqrt, math.pi

local function phi(z) return exp(-z * z / 2) / sqrt(2 * pi) end

-- Every kind of dimension, and a fixed value the sampler must leave alone.
local MIXED = space.new{
  lr = space.loguniform(1e-6, 1), dropout = space.uniform(0, 0.5), layers = space.int(1, 4),
  width = space.logint(8, 1024), act = space.choice{"relu", "tanh", "gelu"},
  bias = space.choice{true, false}, decay = space.uniform(0, 0.1, {step = 0.02}),
  batch = space.int(16, 256, {step = 16}), epochs = 5}
local function mixed_loss(c)
  local lg = function(x) return log(x, 10) end
  return (lg(c.lr) + 3) ^ 2 + (c.dropout - 0.1) ^ 2 * 10 + math.abs(c.layers - 3)
    + math.abs(lg(c.width) - lg(128)) + (c.act == "gelu" and 0 or 1) + (c.bias and 0 or 0.5)
    + math.abs(c.decay - 0.04) * 10 + math.abs(c.batch - 64) / 64
end

-- A narrow valley along the diagonal, off centre: good points have x and y
-- in a fixed relation, which independent densities cannot express.
local VALLEY = space.new{x = space.uniform(-5, 5), y = space.uniform(-5, 5)}
local function valley(v)
  local a = (v.x + v.y) / sqrt(2) - 1
  local b = (v.x - v.y) / sqrt(2) - 0.5
  return a * a + 100 * b * b
end

-- ZDT1 (Zitzler, Deb & Thiele 2000) in 4 dimensions: the Pareto front is
-- f2 = 1 - sqrt(f1) where x2 = x3 = x4 = 0.
local ZDT = space.new{x1 = space.uniform(0, 1), x2 = space.uniform(0, 1),
                      x3 = space.uniform(0, 1), x4 = space.uniform(0, 1)}
local function zdt1(v)
  local g = 1 + 9 * (v.x2 + v.x3 + v.x4) / 3
  return {v.x1, g * (1 - sqrt(v.x1 / g))}
end

-- The study's side for several objectives: every trial completes with
-- its losses. --> the hypervolume the trials dominate up to (1.1, 1.1),
-- and the history.
local function drive_multi(sp, f, budget, seed, sampler)
  local history, points = {}, {}
  for n = 1, budget do
    local ctx = {number = n, seed = seed, rng = rng.new(seed, n)}
    local v = sampler and sampler:suggest(sp, history, ctx) or sp:sample(ctx.rng)
    points[n] = f(v)
    history[n] = {number = n, state = "complete", values = v, losses = points[n],
                  intermediate = {}}
  end
  return pareto.hypervolume(points, {1.1, 1.1}), history
end

local function numbers(trials)
  local out = {}
  for i, t in ipairs(trials) do out[i] = t.number end
  return out
end

-- complete trials with these losses, numbered from 1
local function multi_history(losses)
  local h = {}
  for i, l in ipairs(losses) do
    h[i] = {number = i, state = "complete", values = {}, losses = l, intermediate = {}}
  end
  return h
end

local function with_gamma(k) return TPESampler{initial = 0, gamma = function() return k end} end

describe("tune.TPESampler{multivariate = true}", function()
  it("sets relative only when multivariate", function()
    assert.is_true(TPESampler{multivariate = true}.relative)
    assert.is_nil(TPESampler{}.relative)
    assert.is_nil(TPESampler{multivariate = false}.relative)
    assert.is_true(TPESampler{}.multi_objective)
    assert.is_true(TPESampler{multivariate = true}.multi_objective)
  end)

  it("gives the joint log-density of one observation worked out by hand", function()
    -- a = uniform(0, 1), c = choice{"x", "y"}; one good trial (0.5, "x").
    -- n = 1, d = 2: the sd 0.2 * 1^(-1/6) = 0.2 is clipped up to
    -- 1 / min(100, n + 2) = 1/3. Two components, weights 1/2 and 1/2:
    --   the observation's: a ~ N(0.5, 1/3) truncated to [0, 1], whose mass
    --     there is Z1 = P(|N(0,1)| < 1.5) = 0.8663855974622838; c's kernel
    --     gives each choice p / (n + 1) = 1/2, plus 1 for "x", over 2:
    --     0.75 for "x", 0.25 for "y"
    --   the prior: a ~ N(0.5, 1) truncated, Z0 = P(|N(0,1)| < 0.5) =
    --     0.3829249225480262; c uniform, 1/2 each
    -- At (0.5, "x"): l = 1/2 (3 phi(0) / Z1) 0.75 + 1/2 (phi(0) / Z0) 0.5,
    -- log l = -0.2504081076165299; at (0.2, "y"), z = -0.9 and -0.3:
    -- l = 1/2 (3 phi(0.9) / Z1) 0.25 + 1/2 (phi(0.3) / Z0) 0.5,
    -- log l = -1.0101431057294525.
    local Z1, Z0 = 0.8663855974622838, 0.3829249225480262
    local sp = space.new{a = space.uniform(0, 1), c = space.choice{"x", "y"}}
    local f = tpe._joint_density(sp, {{a = 0.5, c = "x"}})
    local at_obs = log(0.5 * (3 * phi(0) / Z1) * 0.75 + 0.5 * (phi(0) / Z0) * 0.5)
    local away = log(0.5 * (3 * phi(0.9) / Z1) * 0.25 + 0.5 * (phi(0.3) / Z0) * 0.5)
    assert.near(-0.2504081076165299, at_obs, 1e-12)
    assert.near(at_obs, f{a = 0.5, c = "x"}, 1e-6)      -- erfc is good to 1.2e-7
    assert.near(away, f{a = 0.2, c = "y"}, 1e-6)
  end)

  it("gives the joint log-density of Optuna 3.1's multivariate Parzen estimator", function()
    local sp = space.new{a = space.uniform(-2, 3), act = space.choice{"relu", "tanh", "gelu"},
      k = space.int(1, 6), lr = space.loguniform(1e-4, 1e-1),
      q = space.uniform(0, 1, {step = 0.25}), w = space.int(0, 100, {step = 10})}
    for _, c in ipairs(ref.joint) do
      local f = tpe._joint_density(sp, c.obs, c.prior_weight, c.weights)
      for i, p in ipairs(c.points) do
        assert.near(c.log_pdf[i], f(p), 5e-6, c.name .. ", point " .. i)
      end
    end
  end)

  it("is a normalised density over floats, integers, stepped floats and choices", function()
    local sp = space.new{a = space.uniform(0, 1), k = space.int(1, 3),
                         q = space.uniform(0, 1, {step = 0.5}), c = space.choice{"x", "y"}}
    local f = tpe._joint_density(sp, {{a = 0.1, k = 1, q = 0, c = "x"},
      {a = 0.15, k = 3, q = 0.5, c = "x"}, {a = 0.9, k = 2, q = 1, c = "y"},
      {a = 0.5, k = 2, q = 0.5, c = "y"}})
    local steps, total = 2000, 0
    for _, k in ipairs{1, 2, 3} do
      for _, q in ipairs{0, 0.5, 1} do
        for _, c in ipairs{"x", "y"} do
          for i = 0, steps do
            local w = (i == 0 or i == steps) and 0.5 or 1
            total = total + w * exp(f{a = i / steps, k = k, q = q, c = c}) / steps
          end
        end
      end
    end
    assert.near(1, total, 1e-5)
  end)

  it("gives the same values for the same history and ctx", function()
    local _, history = fns.drive(MIXED, mixed_loss, 30, 7, TPESampler{multivariate = true})
    local function ctx(n) return {number = n, seed = 7, rng = rng.new(7, n)} end
    local a = TPESampler{multivariate = true}:suggest(MIXED, history, ctx(31))
    local b = TPESampler{multivariate = true}:suggest(MIXED, history, ctx(31))
    assert.same(a, b)
    assert.are_not.same(a, TPESampler{multivariate = true}:suggest(MIXED, history, ctx(32)))
    -- and not what the independent sampler proposes from the same stream
    assert.are_not.same(a, TPESampler{}:suggest(MIXED, history, ctx(31)))
  end)

  it("keeps every suggestion inside its dimension, for every kind of dimension", function()
    local _, history = fns.drive(MIXED, mixed_loss, 60, 11, TPESampler{multivariate = true,
                                                                       initial = 8})
    for n, t in ipairs(history) do
      local v = t.values
      assert.is_nil(MIXED:mismatch(v), "trial " .. n)
      assert.is_nil(v.epochs)                     -- fixed values are not the sampler's
      assert.equal("integer", math.type(v.layers))
      assert.equal("integer", math.type(v.width))
      assert.equal("integer", math.type(v.batch))
      assert.is_true(v.batch % 16 == 0)
      assert.is_true(v.lr >= 1e-6 and v.lr <= 1)
      assert.is_true(v.dropout >= 0 and v.dropout <= 0.5)
    end
    -- and it learns: the late trials are better than the early random ones
    local early, late = 0, 0
    for n = 1, 8 do early = early + history[n].loss / 8 end
    for n = 41, 60 do late = late + history[n].loss / 20 end
    assert.is_true(late < 0.6 * early, late .. " vs " .. early)
  end)

  it("samples the prior until `initial` trials have finished", function()
    local _, history = fns.drive(MIXED, mixed_loss, 4, 3, TPESampler{initial = 5,
                                                                     multivariate = true})
    assert.same(MIXED:sample(rng.new(3, 5)), TPESampler{initial = 5, multivariate = true}
      :suggest(MIXED, history, {number = 5, seed = 3, rng = rng.new(3, 5)}))
  end)

  it("leaves out of both densities a trial that lacks a dimension", function()
    local _, history = fns.drive(VALLEY, valley, 20, 2, TPESampler{multivariate = true})
    local ctx = function() return {number = 23, seed = 2, rng = rng.new(2, 23)} end
    local plain = TPESampler{multivariate = true}:suggest(VALLEY, history, ctx())
    -- the best losses of all, but from before the space had y: they change
    -- the split (two good places taken), not the densities
    history[21] = {number = 21, state = "complete", values = {x = 1}, loss = -100}
    history[22] = {number = 22, state = "complete", values = {x = 99, y = 0}, loss = -200}
    local v = TPESampler{multivariate = true}:suggest(VALLEY, history, ctx())
    assert.is_nil(VALLEY:mismatch(v))
    assert.are_not.same(plain, v)
  end)

  it("beats independent TPE on a rotated narrow valley over the same seeds and budget", function()
    local SEEDS, joint, indep, wins = {1, 2, 3, 4, 5, 6, 7, 8}, 0, 0, 0
    for _, seed in ipairs(SEEDS) do
      local j = fns.drive(VALLEY, valley, 60, seed, TPESampler{multivariate = true})
      local i = fns.drive(VALLEY, valley, 60, seed, TPESampler{})
      joint, indep = joint + j / #SEEDS, indep + i / #SEEDS
      if j < i then wins = wins + 1 end
    end
    print(string.format("\nrotated valley, 60 trials, %d seeds: multivariate TPE %.4f, "
                        .. "independent %.4f (multivariate better on %d)", #SEEDS, joint, indep,
                        wins))
    assert.is_true(joint < 0.5 * indep)
    assert.is_true(wins >= 5)
  end)

  it("is modelled jointly when a define-by-run study asks for its parameters", function()
    local inner, asked = TPESampler{multivariate = true, initial = 5}, {}
    local spy = setmetatable({relative = true, suggest = function(self, sp, history, ctx)
      asked[#asked + 1] = table.concat(sp.names, ",")
      return inner.suggest(self, sp, history, ctx)
    end}, {__index = inner})
    local study = tune.Study{sampler = spy, seed = 4}
    for _ = 1, 12 do
      local trial = study:ask()
      study:tell(trial, valley{x = trial:suggest_float("x", -5, 5),
                               y = trial:suggest_float("y", -5, 5)})
    end
    local joint = 0
    for _, names in ipairs(asked) do if names == "x,y" then joint = joint + 1 end end
    assert.is_true(joint >= 10, table.concat(asked, " "))
    assert.equal(12, study:counts().complete)
  end)
end)

describe("tune.TPESampler on several objectives", function()
  -- Seven trials, both losses minimised:
  --   1 (1, 5)  2 (2, 3)  3 (4, 1)  4 (3.1, 3.9)  5 (5, 2.5)  6 (3.2, 3.8)  7 (6, 6)
  -- Front 1 is {1, 2, 3}; 2 beats 4 and 6, 3 beats 5, and 4, 5, 6 do not
  -- beat each other: front 2 is {4, 5, 6}; 7 is front 3.
  local SEVEN = {{1, 5}, {2, 3}, {4, 1}, {3.1, 3.9}, {5, 2.5}, {3.2, 3.8}, {6, 6}}

  it("splits by whole fronts, then by greedy hypervolume on the front that does not fit", function()
    -- 5 good: front 1 (3) fits, front 2 (3 more) does not; 2 of it are
    -- chosen. Its worst point is (5, 3.9), the reference (5.5, 4.29).
    -- Alone, 4 dominates 2.4 * 0.39 = 0.936, 5 0.5 * 1.79 = 0.895, 6
    -- 2.3 * 0.49 = 1.127: 6 first. Beside 6, 4 adds 0.936 - 2.3 * 0.39 =
    -- 0.039 and 5 adds 0.895 - 0.5 * 0.49 = 0.65: then 5. (The two largest
    -- alone would have been 6 and 4.)
    local good, bad, weights = tpe._split(with_gamma(5), multi_history(SEVEN), 8)
    assert.same({1, 2, 3, 5, 6}, numbers(good))
    assert.same({4, 7}, numbers(bad))
    assert.equal(5, #weights)
    assert.same({3, 2}, pareto.hssp({{3.1, 3.9}, {5, 2.5}, {3.2, 3.8}}, {5.5, 4.29}, 2))
    -- whole fronts only: 3 good is front 1, 6 good fronts 1 and 2
    assert.same({1, 2, 3}, numbers((tpe._split(with_gamma(3), multi_history(SEVEN), 8))))
    assert.same({1, 2, 3, 4, 5, 6}, numbers((tpe._split(with_gamma(6), multi_history(SEVEN), 8))))
  end)

  it("selects lazily what plain greedy hypervolume selection selects", function()
    -- the plain greedy rule, measuring every candidate in every round
    local function greedy(points, hv_ref, count)
      local taken, chosen, picked = {}, {}, {}
      while #picked < count do
        local best, best_hv = nil, -math.huge
        for i, p in ipairs(points) do
          if not taken[i] then
            chosen[#picked + 1] = p
            local v = pareto.hypervolume(chosen, hv_ref)
            if v > best_hv then best, best_hv = i, v end
          end
        end
        taken[best], chosen[#picked + 1], picked[#picked + 1] = true, points[best], best
      end
      return picked
    end
    for seed = 1, 60 do
      local r, m = rng.new(seed, 77), 2 + seed % 2
      local all = {}
      for i = 1, 10 + r:int(40) do
        all[i] = {}
        for k = 1, m do all[i][k] = r:uniform() end
      end
      local front = {}
      for q, i in ipairs(pareto.fronts(all)[1]) do front[q] = all[i] end
      local hv_ref, count = m == 2 and {1.1, 1.1} or {1.1, 1.1, 1.1}, math.max(1, #front // 2)
      assert.same(greedy(front, hv_ref, count), pareto.hssp(front, hv_ref, count), "seed " .. seed)
    end
  end)

  it("weights the good trials by their hypervolume contribution", function()
    -- good = front 1: (1, 5), (2, 3), (4, 1); worst (4, 5), reference
    -- (4.4, 5.5). Sweeping f1: [1, 2) under f2 from 5 (0.5 high), [2, 4)
    -- from 3 (2.5), [4, 4.4] from 1 (4.5): 0.5 + 5 + 1.8 = 7.3. Without
    -- (1, 5): 6.8, without (2, 3): 0.5 * 3 + 1.8 = 3.3, without (4, 1):
    -- 0.5 + 2.4 * 2.5 = 6.5. Contributions 0.5, 4, 0.8; over the largest:
    local _, _, weights = tpe._split(with_gamma(3), multi_history(SEVEN), 8)
    assert.near(0.125, weights[1], 1e-9)
    assert.near(1, weights[2], 1e-9)
    assert.near(0.2, weights[3], 1e-9)
    assert.same({1.0}, tpe._hv_weights{{losses = {3, 3}}})
  end)

  it("splits and weights as Optuna 3.1's MOTPE does", function()
    for _, c in ipairs(ref.split) do
      local good, _, weights = tpe._split(with_gamma(c.n_good), multi_history(c.losses),
                                          #c.losses + 1)
      assert.same(c.good, numbers(good), c.name)
      for i, w in ipairs(c.weights) do assert.near(w, weights[i], 1e-9, c.name) end
    end
  end)

  it("ignores pruned, failed and NaN trials, and counts running ones as bad only with "
     .. "constant_liar", function()
    local h = multi_history(SEVEN)
    h[8] = {number = 8, state = "pruned", values = {}, loss = -1, intermediate = {{1, -1}}}
    h[9] = {number = 9, state = "failed", values = {}, intermediate = {}}
    h[10] = {number = 10, state = "complete", values = {}, losses = {0, 0 / 0}}
    h[11] = {number = 11, state = "running", values = {}, intermediate = {}}
    h[12] = {number = 12, state = "running", values = {}, intermediate = {}}
    local good, bad = tpe._split(with_gamma(5), h, 12)
    assert.same({1, 2, 3, 5, 6}, numbers(good))
    assert.same({4, 7}, numbers(bad))
    local liar = TPESampler{initial = 0, gamma = function() return 5 end, constant_liar = true}
    good, bad = tpe._split(liar, h, 12)
    assert.same({1, 2, 3, 5, 6}, numbers(good))
    assert.same({4, 7, 11}, numbers(bad))            -- 12 is the trial being suggested
    -- fewer than `initial` complete trials: the prior
    assert.is_nil(tpe._split(TPESampler{initial = 8}, h, 12))
  end)

  it("ranks infinite losses as such and clips them to measure hypervolumes", function()
    -- 1 (1, 5)  2 (2, 3)  3 (-inf, 4)  4 (4, inf)  5 (5, 5)  6 (6, 6)
    -- 3 beats 1, 5 and 6 but not 2: front 1 is {2, 3}; front 2 is {1, 4}
    -- (4 is beaten by 2 only). With 3 good, one of front 2 joins: its
    -- finite worst is (4, 5), reference (4.4, 5.5), where 4's infinite f2
    -- is clipped to 5.5 and dominates nothing; 1 dominates 3.4 * 0.5.
    local h = multi_history{{1, 5}, {2, 3}, {-math.huge, 4}, {4, math.huge}, {5, 5}, {6, 6}}
    local good, bad, weights = tpe._split(with_gamma(3), h, 7)
    assert.same({1, 2, 3}, numbers(good))
    assert.same({4, 5, 6}, numbers(bad))
    -- weights: reference (2.2, 5.5); 3's -inf is clipped to the best
    -- finite f1, 1: (1, 4), which dominates 1's (1, 5). Sweeping f1: [1, 2)
    -- from 4 (1.5 high), [2, 2.2] from 3 (2.5): 2. Without 1: 2; without
    -- 2: 1.2 * 1.5 = 1.8; without 3: 0.5 + 0.2 * 2.5 = 1. Contributions
    -- 0 (+1e-12), 0.2 and 1.
    assert.near(1e-12, weights[1], 1e-13)
    assert.near(0.2, weights[2], 1e-9)
    assert.near(1, weights[3], 1e-9)
  end)

  it("splits a single-objective history by rank, as before", function()
    local _, history = fns.drive(MIXED, mixed_loss, 30, 7, TPESampler{})
    local good, bad, weights = tpe._split(TPESampler{}, history, 31)
    local ranked = tpe._rank(history, 31)
    assert.is_nil(weights)
    assert.equal(3, #good)                           -- ceil(0.1 * 30)
    for i, e in ipairs(ranked) do
      assert.equal(e.trial, i <= 3 and good[i] or bad[i - 3])
    end
  end)

  it("proposes for single-objective histories exactly what it did before", function()
    -- the univariate sampler on the mixed space of tune_tpe_spec (no stepped
    -- dimensions), pinned from moongrad before multivariate and
    -- multi-objective TPE existed (commit a2cb19a): its best loss in 40
    -- trials with seed 7 and its proposal for trial 41
    local sp = space.new{
      lr = space.loguniform(1e-6, 1), dropout = space.uniform(0, 0.5), layers = space.int(1, 4),
      width = space.logint(8, 1024), act = space.choice{"relu", "tanh", "gelu"},
      bias = space.choice{true, false}, epochs = 5}
    local lg = function(x) return log(x, 10) end
    local function loss(c)
      return (lg(c.lr) + 3) ^ 2 + (c.dropout - 0.1) ^ 2 * 10 + math.abs(c.layers - 3)
        + math.abs(lg(c.width) - lg(128)) + (c.act == "gelu" and 0 or 1) + (c.bias and 0 or 0.5)
    end
    local best, history = fns.drive(sp, loss, 40, 7, TPESampler{})
    assert.equal(0.080205217234565404, best)
    assert.same({lr = 0.0020096573857920114, dropout = 0.30595923213403647, layers = 2,
                 width = 131, act = "gelu", bias = true},
                TPESampler{}:suggest(sp, history, {number = 41, seed = 7, rng = rng.new(7, 41)}))
  end)

  it("approaches ZDT1's Pareto front measurably better than random search", function()
    local SEEDS, budget = {1, 2, 3, 4, 5, 6}, 60
    local uni, joint, rnd = 0, 0, 0
    for _, seed in ipairs(SEEDS) do
      uni = uni + drive_multi(ZDT, zdt1, budget, seed, TPESampler{}) / #SEEDS
      joint = joint + drive_multi(ZDT, zdt1, budget, seed, TPESampler{multivariate = true})
        / #SEEDS
      rnd = rnd + drive_multi(ZDT, zdt1, budget, seed) / #SEEDS
    end
    print(string.format("\nZDT1 (4-D), %d trials, %d seeds, hypervolume to (1.1, 1.1): "
                        .. "MOTPE %.4f, multivariate MOTPE %.4f, random %.4f (the front's "
                        .. "is 0.8767)", budget, #SEEDS, uni, joint, rnd))
    assert.is_true(uni > rnd + 0.1)
    assert.is_true(joint > rnd + 0.1)
  end)

  it("searches a study with directions named with sampler = \"tpe\"", function()
    local function run(sampler, seed)
      local study = tune.Study{space = {x1 = tune.uniform(0, 1), x2 = tune.uniform(0, 1),
                                        x3 = tune.uniform(0, 1), x4 = tune.uniform(0, 1)},
                               directions = {"minimize", "minimize"}, sampler = sampler,
                               seed = seed}
      study:optimize(function(config) return zdt1(config) end,
                     {trials = 40, workers = 0, verbose = false})
      local points = {}
      for i, t in ipairs(study:best_trials()) do points[i] = t.values end
      -- a reference 40 trials reach: (1.1, 1.1) holds few of their points
      return pareto.hypervolume(points, {1.1, 4})
    end
    local t, r = 0, 0
    for seed = 1, 3 do
      t, r = t + run("tpe", seed), r + run("random", seed)
    end
    print(string.format("\nZDT1 through tune.Study, 40 trials, 3 seeds, hypervolume to (1.1, 4): "
                        .. "tpe %.4f, random %.4f", t / 3, r / 3))
    assert.is_true(t > r + 0.6, t .. " vs " .. r)
  end)

  it("rejects a history whose trials hold different numbers of losses", function()
    local h = multi_history{{1, 2}, {2, 1}, {0, 0, 0}}
    assert.has_error(function() tpe._split(with_gamma(1), h, 4) end,
      "tune.TPESampler: trial 1 has 2 losses and trial 3 has 3; a multi-objective history "
      .. "needs one per objective in every trial")
  end)
end)

describe("tune.TPESampler's new options", function()
  it("raise clear errors for bad values", function()
    local cases = {
      {{multivariate = "yes"}, "tune.TPESampler: multivariate must be a boolean, got yes"},
      {{multivariate = 1}, "tune.TPESampler: multivariate must be a boolean, got 1"},
      {{multivariate = true, bandwidth = "scott"}, "tune.TPESampler: bandwidth is for "
        .. "independent dimensions; with multivariate = true every kernel is 0.2 n^(-1/(d+4)) "
        .. "of its range wide"},
    }
    for _, c in ipairs(cases) do
      assert.has_error(function() TPESampler(c[1]) end, c[2])
      local _, err = pcall(function() local s = TPESampler(c[1]); return s end)
      assert.matches("tune_tpe_multi_spec", err)   -- blames the caller
    end
    assert.has_error(function() TPESampler{multivariat = true} end,
      "tune.TPESampler: unknown option 'multivariat' (known: bandwidth, candidates, "
      .. "constant_liar, gamma, initial, multivariate, prior_weight)")
  end)
end)
