-- moongrad.tune.nsga2: the NSGA-II sampler replays its generations from
-- the history (so it is a pure function of history and ctx), selects
-- parents as Optuna's NSGAIISampler does (spec/fixtures/gen_nsga2.py) and
-- as worked out by hand below, keeps children inside the space, and beats
-- random search on ZDT1 (by hypervolume) and on a sphere (one objective)
-- over the same seeds and budget. A small loop stands in for the study,
-- then a study with directions runs it end to end.
local space = require "moongrad.tune.space"
local rng = require "moongrad.tune.rng"
local pareto = require "moongrad.tune.pareto"
local nsga2 = require "moongrad.tune.nsga2"

local NSGAIISampler = nsga2.NSGAIISampler
local drive = require("support.test_functions").drive
local sqrt = math.sqrt

-- Runs `budget` trials of f (values -> list of losses) as a study with this
-- seed would, every trial complete; sampler nil means random sampling from
-- the same streams. --> the history, and the list of loss points.
local function drive_mo(sp, f, budget, seed, sampler)
  local history, points = {}, {}
  for n = 1, budget do
    local ctx = {number = n, seed = seed, rng = rng.new(seed, n)}
    local v = sampler and sampler:suggest(sp, history, ctx) or sp:sample(ctx.rng)
    local losses = f(v)
    history[n] = {number = n, state = "complete", values = v, losses = losses, intermediate = {}}
    points[n] = losses
  end
  return history, points
end

local function ctx_for(seed, number)
  return {number = number, seed = seed, rng = rng.new(seed, number)}
end

-- ZDT1 (Zitzler, Deb & Thiele 2000) in D dimensions on [0, 1]^D: the front
-- is f2 = 1 - sqrt(f1), reached where x2 = ... = xD = 0.
local D = 4
local ZDT1 = (function()
  local dims = {}
  for j = 1, D do dims["x" .. j] = space.uniform(0, 1) end
  return space.new(dims)
end)()
local function zdt1(v)
  local s = 0
  for j = 2, D do s = s + v["x" .. j] end
  local g = 1 + 9 * s / (D - 1)
  return {v.x1, g * (1 - sqrt(v.x1 / g))}
end

-- Every kind of dimension, stepped ones too, and a fixed value the
-- sampler must leave alone.
local MIXED = space.new{
  lr = space.loguniform(1e-6, 1), dropout = space.uniform(0, 0.5), layers = space.int(1, 4),
  width = space.logint(8, 1024), act = space.choice{"relu", "tanh", "gelu"},
  bias = space.choice{true, false}, momentum = space.uniform(0, 0.9, {step = 0.1}),
  batch = space.int(16, 256, {step = 16}), epochs = 5}
local function mixed_losses(c)
  local l10 = math.log(c.lr, 10)
  return {(l10 + 3) ^ 2 + (c.act == "gelu" and 0 or 1) + math.abs(c.layers - 3)
            + math.abs(c.momentum - 0.5),
          c.dropout + math.log(c.width, 2) / 10 + (c.bias and 0 or 0.5) - l10 / 6
            + c.batch / 256}
end

local X = space.new{x = space.uniform(0, 1)}
local function trial(number, losses, state, values)
  return {number = number, state = state or "complete", values = values or {x = 0.5},
          losses = losses, intermediate = {}}
end

local function numbers(entries)
  local out = {}
  for i, e in ipairs(entries) do out[i] = e.trial.number end
  return out
end

describe("tune.NSGAIISampler", function()
  it("is a pure function of the history and ctx, so a resumed study proposes the same", function()
    local history = drive_mo(MIXED, mixed_losses, 60, 7, NSGAIISampler{population_size = 10})
    for _, n in ipairs{11, 25, 37, 60} do
      -- a fresh sampler that sees only the trials before n, as after a resume
      local again = NSGAIISampler{population_size = 10}:suggest(MIXED,
        {table.unpack(history, 1, n - 1)}, ctx_for(7, n))
      assert.same(history[n].values, again, "trial " .. n)
    end
    local s = NSGAIISampler{population_size = 10}
    local a = s:suggest(MIXED, history, ctx_for(7, 61))
    assert.same(a, s:suggest(MIXED, history, ctx_for(7, 61)))
    assert.are_not.same(a, s:suggest(MIXED, history, ctx_for(7, 62)))
  end)

  it("reads only trials numbered before the child, and no generation still filling", function()
    local history = drive_mo(ZDT1, zdt1, 25, 3, NSGAIISampler{population_size = 10})
    local s = NSGAIISampler{population_size = 10}
    -- trials 21..25 are the third generation, still filling: trial 26 is
    -- bred from the parents after the second, whatever they hold
    local before = s:suggest(ZDT1, {table.unpack(history, 1, 20)}, ctx_for(3, 26))
    assert.same(before, s:suggest(ZDT1, history, ctx_for(3, 26)))
    history[22].state, history[22].losses = "running", nil
    assert.same(before, s:suggest(ZDT1, history, ctx_for(3, 26)))
    -- trials numbered after the one suggested are not its ancestors
    assert.same(history[15].values, s:suggest(ZDT1, history, ctx_for(3, 15)))
  end)

  it("samples the prior until a generation of trials has completed", function()
    local history = drive_mo(MIXED, mixed_losses, 7, 3, NSGAIISampler{population_size = 8})
    for n = 1, 8 do
      assert.same(MIXED:sample(rng.new(3, n)),
                  NSGAIISampler{population_size = 8}:suggest(MIXED, history, ctx_for(3, n)))
    end
    -- eight trials that failed, ran on, were pruned or no longer fit the
    -- space are no generation
    local h = {}
    for n = 1, 8 do
      h[n] = {number = n, state = n % 2 == 0 and "failed" or "running", values = {x = 0.5},
              intermediate = {}}
    end
    h[3] = trial(3, {1, 2}, "complete", {x = 2})
    h[5] = trial(5, {1, 2}, "pruned")
    local s = NSGAIISampler{population_size = 2}
    assert.same(X:sample(rng.new(3, 9)), s:suggest(X, h, ctx_for(3, 9)))
    -- one complete trial is half a generation of two; with a second, the
    -- next trial is bred from them
    h[9] = trial(9, {1, 2}, "complete", {x = 0.25})
    assert.same(X:sample(rng.new(3, 10)), s:suggest(X, h, ctx_for(3, 10)))
    h[10] = trial(10, {2, 1}, "complete", {x = 0.75})
    assert.are_not.same(X:sample(rng.new(3, 11)), s:suggest(X, h, ctx_for(3, 11)))
  end)

  it("keeps the best fronts and cuts the last by crowding distance (worked by hand)", function()
    -- population_size 4, two losses, x in [0, 1]; trials that count:
    --   1 (1, 5)   2 (2, 3)   4 (4, 1)   5 (5, 5)         generation 1
    --   6 (1.5, 4)   7 (3, 2)   10 (6, 6)   11 (2.5, 6)   generation 2
    -- and that do not: 3 failed, 8 (0, 0) with x = 7 from before the space
    -- changed, 9 running.
    -- Generation 1 fills four places: the parents of trials 6..11 are all
    -- of it; 1, 2 and 4 beat none of each other (front 1), all beat 5.
    -- The parents of trial 12 come from 6, 7, 10, 11 and 1, 2, 4, 5. Front
    -- 1 is (1,5) (1.5,4) (2,3) (3,2) (4,1): trials 1, 6, 2, 7, 4 in order
    -- of f1 (and reverse order of f2); 2 beats 11, 1..4 beat 5 and 10. Five
    -- points for four places: crowding distances over ranges 3 (f1), 4 (f2):
    --   1, 4  extremes: infinite
    --   6     (2 - 1)/3   + (5 - 3)/4 = 1/3 + 1/2 = 5/6
    --   2     (3 - 1.5)/3 + (4 - 2)/4 = 1/2 + 1/2 = 1
    --   7     (4 - 2)/3   + (3 - 1)/4 = 2/3 + 1/2 = 7/6
    -- so 6, although no trial beats it, is the one left out: 1, 2, 4, 7.
    local h = {trial(1, {1, 5}), trial(2, {2, 3}),
               {number = 3, state = "failed", values = {x = 0.1}, intermediate = {}},
               trial(4, {4, 1}), trial(5, {5, 5}), trial(6, {1.5, 4}), trial(7, {3, 2}),
               trial(8, {0, 0}, "complete", {x = 7}), trial(9, {0.5, 0.5}, "running"),
               trial(10, {6, 6}), trial(11, {2.5, 6})}
    local first = nsga2._parents(X, h, 4, 11)
    assert.same({1, 2, 4, 5}, numbers(first))
    local rank = {}
    for i, e in ipairs(first) do rank[i] = e.rank end
    assert.same({1, 1, 1, 2}, rank)
    local second = nsga2._parents(X, h, 4, 12)
    assert.same({1, 2, 4, 7}, numbers(second))
    local inf = math.huge
    assert.same({inf, inf}, {second[1].crowding, second[3].crowding})
    assert.near(1, second[2].crowding, 1e-12)
    assert.near(7 / 6, second[4].crowding, 1e-12)
    -- When 9 completes at (0.5, 0.5), it takes its place by number:
    -- generation 2 is 6, 7, 9, 10 (11 moves to the third). 9 beats every
    -- other point, so it is front 1 alone, and front 2 is the five above,
    -- cut to three by the same distances: 1, 4, 7.
    h[9].state = "complete"
    assert.same({1, 4, 7, 9}, numbers(nsga2._parents(X, h, 4, 12)))

    -- One objective (`loss`): fronts are the distinct losses, best first.
    -- Generation 1 losses 3, 1, 2, 5; generation 2 0.5, 4, 2.5, 6 (trial 8
    -- failed); the four lowest of the eight are 0.5 (5), 1 (2), 2 (3),
    -- 2.5 (7).
    local one = {}
    for n, loss in ipairs{3, 1, 2, 5, 0.5, 4, 2.5, 0, 6} do
      one[n] = {number = n, state = "complete", values = {x = 0.5}, loss = loss}
    end
    one[8].state, one[8].loss = "failed", nil
    assert.same({2, 3, 5, 7}, numbers(nsga2._parents(X, one, 4, 10)))
  end)

  it("counts infinite losses, and crowding distances stay numbers", function()
    -- population_size 4. Generation 1: A (0, inf), B (1, 3), C (2, 2),
    -- D (3, 1), none beating another, all parents. Generation 2: E (inf, 0),
    -- beaten by none, and (5, 5), (6, 6), (7, 7), beaten by B, C and D:
    -- front 1 is A..E, five points for four places. Each infinity stands
    -- one finite range (3) beyond the finite values, at 6, so both losses
    -- range over 6: B gets (2 - 0)/6 + (6 - 2)/6 = 1, C (3 - 1)/6 +
    -- (3 - 1)/6 = 2/3, D 1, and A and E, the extremes, infinity: C is left
    -- out. (Optuna, counting a gap to an infinity as infinite, also leaves
    -- out C: B and D infinite, C 2/3 + 2/3.)
    local inf = math.huge
    local h = {trial(1, {0, inf}), trial(2, {1, 3}), trial(3, {2, 2}), trial(4, {3, 1}),
               trial(5, {inf, 0}), trial(6, {5, 5}), trial(7, {6, 6}), trial(8, {7, 7})}
    assert.same({1, 2, 3, 4}, numbers(nsga2._parents(X, h, 4, 5)))
    local chosen = nsga2._parents(X, h, 4, 9)
    assert.same({1, 2, 4, 5}, numbers(chosen))
    assert.equal(inf, chosen[1].crowding)
    assert.near(1, chosen[2].crowding, 1e-12)
    assert.near(1, chosen[3].crowding, 1e-12)
    assert.equal(inf, chosen[4].crowding)
  end)

  it("breeds each trial from the parents Optuna 3.1's NSGAIISampler would, failures and "
     .. "pruned trials included", function()
    local ref = dofile("spec/fixtures/nsga2_ref.lua")
    for _, c in ipairs(ref) do
      local history = {}
      for n, t in ipairs(c.trials) do
        local losses
        if t.values then
          losses = {}
          for k, d in ipairs(c.directions) do
            losses[k] = d == "maximize" and -t.values[k] or t.values[k]
          end
        end
        if #c.directions == 1 then
          history[n] = {number = n, state = t.state, values = {x = 0.5},
                        loss = losses and losses[1]}
        else
          history[n] = trial(n, losses, t.state)
        end
      end
      for n, expected in ipairs(c.parents) do
        assert.same(expected, numbers(nsga2._parents(X, history, c.population_size, n)),
                    c.name .. ", trial " .. n)
      end
    end
  end)

  it("picks parents by binary tournament: the better front wins", function()
    -- four parents on fronts 1..4 (a chain: (1,1) beats (2,2) beats ...);
    -- the first parent is the better of two drawn at random, so the front-k
    -- parent wins with probability ((5-k)^2 - (4-k)^2) / 16: 7/16, 5/16,
    -- 3/16, 1/16. With swapping_prob 0 and no mutation every crossover
    -- child is its first parent, and crossover_prob 1 makes every child one.
    local h = {}
    for n = 1, 4 do h[n] = trial(n, {n, n}, "complete", {x = n / 10}) end
    local s = NSGAIISampler{population_size = 4, crossover_prob = 1, swapping_prob = 0,
                            mutation_prob = 0}
    local counts, draws = {0, 0, 0, 0}, 3200
    for k = 1, draws do
      local v = s:suggest(X, h, {number = 5, seed = k, rng = rng.new(k, 5)})
      local i = math.floor(v.x * 10 + 0.5)
      counts[i] = counts[i] + 1
    end
    for i, p in ipairs{7 / 16, 5 / 16, 3 / 16, 1 / 16} do
      assert.near(p, counts[i] / draws, 0.03, "front " .. i)
    end
  end)

  it("makes children from the parents' values, then mutates them", function()
    local history = drive_mo(MIXED, mixed_losses, 30, 5, NSGAIISampler{population_size = 10})
    local parents = nsga2._parents(MIXED, history, 10, 31)
    local held = {}
    for _, name in ipairs(MIXED.names) do
      held[name] = {}
      for _, e in ipairs(parents) do held[name][e.trial.values[name]] = true end
    end
    local copy = NSGAIISampler{population_size = 10, crossover_prob = 0, mutation_prob = 0}
    local cross = NSGAIISampler{population_size = 10, crossover_prob = 1, mutation_prob = 0}
    for n = 31, 40 do
      -- without crossover the child is a copy of one parent
      local v = copy:suggest(MIXED, history, ctx_for(5, n))
      local same = false
      for _, e in ipairs(parents) do
        local ok = pcall(assert.same, e.trial.values, v)
        same = same or ok
      end
      assert.is_true(same, "trial " .. n)
      -- uniform crossover takes each value from one of the parents
      v = cross:suggest(MIXED, history, ctx_for(5, n))
      for _, name in ipairs(MIXED.names) do
        assert.is_true(held[name][v[name]], name .. " of trial " .. n)
      end
    end
    -- mutation_prob 1 resamples every parameter from the prior, drawn after
    -- the crossover's draws; a different stream gives different values
    local all = NSGAIISampler{population_size = 10, mutation_prob = 1}
    local v = all:suggest(MIXED, history, ctx_for(5, 31))
    assert.is_nil(MIXED:mismatch(v))
    assert.is_false(held.lr[v.lr] == true)
  end)

  it("crosses a choice whose value is false like any other", function()
    -- swapping_prob 1 takes every parameter from the second parent, so
    -- each child is one of the two parents whole
    local sp = space.new{x = space.uniform(0, 1), bias = space.choice{true, false}}
    local h = {trial(1, {1, 2}, "complete", {x = 0.25, bias = true}),
               trial(2, {2, 1}, "complete", {x = 0.75, bias = false})}
    for _, crossover in ipairs{"uniform", "sbx"} do
      local s = NSGAIISampler{population_size = 2, crossover = crossover, crossover_prob = 1,
                              swapping_prob = 1, mutation_prob = 0}
      local seen = {}
      for k = 1, 40 do
        local v = s:suggest(sp, h, ctx_for(k, 3))
        seen[v.bias] = true
        if crossover == "uniform" then assert.equal(v.x == 0.25, v.bias, "draw " .. k) end
      end
      assert.same({[true] = true, [false] = true}, seen)
    end
  end)

  it("keeps every child inside its dimension, with either crossover", function()
    for _, opts in ipairs{{population_size = 8}, {population_size = 8, crossover = "sbx"},
                          {population_size = 8, crossover = "sbx", eta = 0.5}} do
      local history = drive_mo(MIXED, mixed_losses, 64, 11, NSGAIISampler(opts))
      for n, t in ipairs(history) do
        local v = t.values
        assert.is_nil(MIXED:mismatch(v), "trial " .. n)
        assert.is_nil(v.epochs)                     -- fixed values are not the sampler's
        assert.equal("integer", math.type(v.layers))
        assert.equal("integer", math.type(v.width))
        assert.equal("integer", math.type(v.batch))
        assert.equal(0, v.batch % 16)
        assert.is_true(v.lr >= 1e-6 and v.lr <= 1)
        assert.is_true(v.dropout >= 0 and v.dropout <= 0.5)
      end
    end
    -- a parent whose integer was stored as a float still yields an integer
    local h = {trial(1, {1, 2}, "complete", {n = 3.0}), trial(2, {2, 1}, "complete", {n = 4.0})}
    local N = space.new{n = space.int(1, 9)}
    for k = 1, 20 do
      local v = NSGAIISampler{population_size = 2, mutation_prob = 0}:suggest(N, h, ctx_for(k, 3))
      assert.equal("integer", math.type(v.n))
    end
  end)

  it("crosses numbers by SBX in the unit cube: log dimensions in log space", function()
    -- two parents far apart on a log scale; SBX children land near one of
    -- them in log space (eta 20 keeps them close), never near the
    -- arithmetic midpoint 0.5 that linear crossing would favour
    local sp = space.new{lr = space.loguniform(1e-6, 1)}
    local h = {trial(1, {1, 2}, "complete", {lr = 1e-5}), trial(2, {2, 1}, "complete", {lr = 1e-1})}
    local s = NSGAIISampler{population_size = 2, crossover = "sbx", crossover_prob = 1,
                            mutation_prob = 0}
    local offspring = 0
    for k = 1, 200 do
      local v = s:suggest(sp, h, ctx_for(k, 3))
      local l = math.log(v.lr, 10)
      assert.is_true(l >= -6 and l <= 0)
      if v.lr ~= 1e-5 and v.lr ~= 1e-1 then offspring = offspring + 1 end
      assert.is_true(math.abs(l + 5) < 1.5 or math.abs(l + 1) < 1.5, "lr = " .. v.lr)
    end
    -- half the children are offspring, half a parent's own value
    assert.is_true(offspring > 70 and offspring < 130, offspring)
  end)

  describe("against random sampling on the same seeds and budget", function()
    local SEEDS = {1, 2, 3, 4, 5, 6, 7, 8}

    it("dominates more of ZDT1's objective space in 200 trials", function()
      -- reference point (1.1, 11) bounds every point of ZDT1 (f1 <= 1,
      -- f2 <= g <= 10); the true front's hypervolume is 1.1 * 11 minus the
      -- area above it, 1 - 2/3, i.e. 11.7667
      local best = 1.1 * 11 - 1 / 3
      local ref = {1.1, 11}
      local function mean_hv(opts)
        local s = 0
        for _, seed in ipairs(SEEDS) do
          local _, points = drive_mo(ZDT1, zdt1, 200, seed, opts and NSGAIISampler(opts))
          s = s + pareto.hypervolume(points, ref)
        end
        return s / #SEEDS
      end
      local u = mean_hv{population_size = 20}
      local x = mean_hv{population_size = 20, crossover = "sbx"}
      local r = mean_hv()
      print(string.format("\nZDT1 (%d dims), 200 trials, %d seeds: hypervolume short of the "
                          .. "front's %.4f by NSGA-II %.4f (SBX %.4f), random %.4f", D, #SEEDS,
                          best, best - u, best - x, best - r))
      -- at most two thirds of random search's shortfall
      assert.is_true(best - u < 2 / 3 * (best - r))
      assert.is_true(best - x < 2 / 3 * (best - r))
    end)

    it("finds lower values of a sphere with one objective", function()
      local sp = space.new{x1 = space.uniform(-5, 5), x2 = space.uniform(-5, 5),
                           x3 = space.uniform(-5, 5), x4 = space.uniform(-5, 5)}
      local function sphere(v) return v.x1 ^ 2 + v.x2 ^ 2 + v.x3 ^ 2 + v.x4 ^ 2 end
      local n, r = 0, 0
      for _, seed in ipairs(SEEDS) do
        n = n + drive(sp, sphere, 150, seed, NSGAIISampler{population_size = 15})
        r = r + drive(sp, sphere, 150, seed)
      end
      n, r = n / #SEEDS, r / #SEEDS
      print(string.format("\nsphere (4 dims, min 0), 150 trials, %d seeds: NSGA-II %.4f, "
                          .. "random %.4f", #SEEDS, n, r))
      assert.is_true(n < 0.5 * r)
    end)
  end)

  it("rejects unknown options and bad values, naming tune.NSGAIISampler", function()
    local cases = {
      {{seed = 1}, "unknown option 'seed'"},
      {{population_size = 1}, "population_size must be an integer >= 2, got 1"},
      {{population_size = 10.5}, "population_size must be an integer >= 2, got 10.5"},
      {{population_size = "50"}, "population_size must be an integer >= 2, got 50"},
      {{mutation_prob = 1.5}, "mutation_prob must be nil or a number in %[0, 1%], got 1.5"},
      {{mutation_prob = -0.1}, "mutation_prob must be nil or a number in %[0, 1%], got %-0.1"},
      {{crossover_prob = 2}, "crossover_prob must be a number in %[0, 1%], got 2"},
      {{swapping_prob = 0 / 0}, "swapping_prob must be a number in %[0, 1%], got %-?nan"},
      {{crossover = "blx"}, "crossover must be \"uniform\" or \"sbx\", got blx"},
      {{crossover = "sbx", eta = 0}, "eta must be a finite number > 0, got 0"},
      {{eta = 20}, "eta is simulated binary crossover's; give crossover = \"sbx\" with it"},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(function() local s = NSGAIISampler(c[1]); return s end)
      assert.is_false(ok)
      assert.matches("tune.NSGAIISampler: " .. c[2], err)
      assert.matches("tune_nsga2_spec", err)       -- blames the caller
    end
    assert.has_error(function() NSGAIISampler(3) end,
                     "tune.NSGAIISampler: options must be a table, got number")
    assert.has_error(function() NSGAIISampler{}:suggest(X, {}, {number = 1}) end,
                     "tune.NSGAIISampler: suggest needs ctx.number (the trial's number, from 1) "
                     .. "and ctx.rng, a moongrad.tune.rng stream")
    local s = NSGAIISampler{}
    assert.equal("nsga2", s.name)
    assert.is_true(s.multi_objective and s.relative)
  end)
end)

describe("a study with directions and sampler = \"nsga2\"", function()
  local tune = require "moongrad.tune"
  local shell = require "support.shell"

  -- ZDT1's two losses in two dimensions, with a choice that doubles the
  -- distance to the front when it is "relu"
  local SPACE = {x = tune.uniform(0, 1), y = tune.uniform(0, 1), act = tune.choice{"relu", "gelu"}}
  local function objective(c)
    local g = 1 + 9 * c.y * (c.act == "gelu" and 1 or 2)
    return {c.x, g * (1 - sqrt(c.x / g))}
  end

  it("breeds toward the front and gives it as best_trials", function()
    local study = tune.Study{space = SPACE, directions = {"minimize", "minimize"},
                             sampler = "nsga2", seed = 7}
    local front = study:optimize(objective, {trials = 150, workers = 0, verbose = false})
    local points, trials = {}, study:trials()
    for i, t in ipairs(trials) do points[i] = t.values end
    local expected = {}
    for k, i in ipairs(pareto.fronts(points)[1]) do expected[k] = trials[i].number end
    local got = {}
    for k, t in ipairs(front) do got[k] = t.number end
    assert.same(expected, got)
    -- the first generation (50 trials, the default population) is the
    -- prior; the third, bred from the first two, dominates more (the front
    -- itself would reach 1.1 * 20 - 1/3 = 21.667)
    local function hv(from, to)
      local pts = {}
      for n = from, to do pts[#pts + 1] = trials[n].values end
      return pareto.hypervolume(pts, {1.1, 20})
    end
    assert.is_true(hv(101, 150) > hv(1, 50) + 0.5)
  end)

  it("resumes from its file proposing what an uninterrupted study would", function()
    local path = shell.tmpdir() .. "/nsga2.jsonl"
    os.remove(path)
    local function open(p)
      return tune.Study{space = SPACE, directions = {"minimize", "minimize"}, seed = 9, path = p,
                        sampler = tune.NSGAIISampler{population_size = 8}}
    end
    open(path):optimize(objective, {trials = 21, workers = 0, verbose = false})
    local resumed = open(path)
    resumed:optimize(objective, {trials = 40, workers = 0, verbose = false})
    local straight = open(nil)
    straight:optimize(objective, {trials = 40, workers = 0, verbose = false})
    for n = 1, 40 do
      assert.same(straight:trials()[n].params, resumed:trials()[n].params, "trial " .. n)
    end
  end)
end)
