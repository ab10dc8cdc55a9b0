-- moongrad.tune.cmaes: the CMA-ES update matches the cmaes library Optuna
-- uses (spec/fixtures/gen_cmaes.py), the sampler is a pure function of
-- (space, history, ctx) that replays the history into generations as its
-- header documents, stays inside its space, and beats random search on the
-- same budgets and seeds. `drive` stands in for a study.
local space = require "moongrad.tune.space"
local rng = require "moongrad.tune.rng"
local cmaes = require "moongrad.tune.cmaes"
local fns = require "support.test_functions"

local CmaEsSampler = cmaes.CmaEsSampler
local drive = fns.drive
local REF = dofile("spec/fixtures/cmaes_ref.lua")
local log10 = function(x) return math.log(x, 10) end

local function ctx(seed, number) return {number = number, seed = seed, rng = rng.new(seed, number)} end

-- The unit cube [0, 1]^d as a space x1..xd, where to_unit is the identity.
local function unit_cube(d)
  local t = {}
  for j = 1, d do t["x" .. j] = space.uniform(0, 1) end
  return space.new(t)
end

local function cube(d, low, high)
  local t = {}
  for j = 1, d do t["x" .. j] = space.uniform(low, high) end
  return space.new(t)
end

-- Largest absolute difference between two states' mean, sigma (relative),
-- C and paths, or between a state and a fixture generation.
local function state_gap(st, ref)
  local gap = math.abs(st.sigma - ref.sigma) / ref.sigma
  for i = 1, #ref.mean do
    gap = math.max(gap, math.abs(st.mean[i] - ref.mean[i]), math.abs(st.pc[i] - ref.pc[i]),
                   math.abs(st.ps[i] - ref.ps[i]))
    for j = 1, #ref.mean do gap = math.max(gap, math.abs(st.C[i][j] - ref.C[i][j])) end
  end
  return gap
end

-- The fixture case's points as a study's history over unit_cube(d), trial
-- numbers counting from 1 in the order the library was told them.
local function fixture_history(case)
  local history, n = {}, 0
  for _, gen in ipairs(case.generations) do
    for k, x in ipairs(gen.points) do
      n = n + 1
      local v = {}
      for j = 1, case.d do v["x" .. j] = x[j] end
      history[n] = {number = n, state = "complete", values = v, loss = gen.losses[k],
                    intermediate = {}}
    end
  end
  return history
end

-- Every kind of dimension, and a fixed value the sampler must leave alone.
local MIXED = space.new{
  lr = space.loguniform(1e-6, 1), dropout = space.uniform(0, 0.5), layers = space.int(1, 4),
  width = space.logint(8, 1024), act = space.choice{"relu", "tanh", "gelu"},
  bias = space.choice{true, false}, depth = space.int(3, 3), epochs = 5}
local function mixed_loss(c)
  return (log10(c.lr) + 3) ^ 2 + (c.dropout - 0.1) ^ 2 * 10 + math.abs(c.layers - 3)
    + math.abs(log10(c.width) - log10(128)) + (c.act == "gelu" and 0 or 1) + (c.bias and 0 or 0.5)
end

-- A rotation of R^5 (Gram-Schmidt on fixed random vectors) and an
-- ellipsoid along it, axis lengths 1 to 1/sqrt(10^3), minimum 0 at 1.
local ROT = {}
do
  local r = rng.new(99)
  for i = 1, 5 do
    local v = {}
    for j = 1, 5 do v[j] = r:normal() end
    for k = 1, i - 1 do
      local dot = 0
      for j = 1, 5 do dot = dot + v[j] * ROT[k][j] end
      for j = 1, 5 do v[j] = v[j] - dot * ROT[k][j] end
    end
    local norm = 0
    for j = 1, 5 do norm = norm + v[j] ^ 2 end
    for j = 1, 5 do v[j] = v[j] / math.sqrt(norm) end
    ROT[i] = v
  end
end
local function ellipsoid(v)
  local s = 0
  for i = 1, 5 do
    local z = 0
    for j = 1, 5 do z = z + ROT[i][j] * (v["x" .. j] - 1) end
    s = s + 10 ^ (3 * (i - 1) / 4) * z * z
  end
  return s
end

local function sphere(v)
  local s = 0
  for _, x in pairs(v) do s = s + (x - 0.3) ^ 2 end
  return s
end

local function rosenbrock(v)
  local s = 0
  for j = 1, 3 do
    s = s + 100 * (v["x" .. (j + 1)] - v["x" .. j] ^ 2) ^ 2 + (1 - v["x" .. j]) ^ 2
  end
  return s
end

describe("tune.CmaEsSampler", function()
  describe("its update, against the cmaes library", function()
    local function tell_case(case, generations)
      local st = cmaes._new_state(case.mean0, case.sigma0, case.popsize)
      local n = 0
      for g = 1, generations do
        local gen, solutions = case.generations[g], {}
        for k, x in ipairs(gen.points) do
          n = n + 1
          solutions[k] = {x = {table.unpack(x)}, loss = gen.losses[k], number = n}
        end
        cmaes._tell(st, solutions)
        assert.is_true(state_gap(st, gen) < 1e-12, case.name .. ", generation " .. g .. ": "
                       .. state_gap(st, gen))
      end
      return st
    end

    it("matches mean, sigma, C and both evolution paths after one generation", function()
      local st = tell_case(REF[1], 1)
      assert.equal(1, st.g)
      assert.equal(8, st.lambda)                 -- 4 + floor(3 ln 4)
    end)

    it("matches them over several generations, through an odd population, an infinite loss, "
       .. "a tie and generations where h_sigma stops pc", function()
      for _, case in ipairs(REF) do tell_case(case, #case.generations) end
    end)

    it("reaches the library's state when the sampler replays a study's history of the same "
       .. "points, one generation per popsize trials", function()
      local ell, slope = REF[1], REF[2]
      local st, told, filling = cmaes._replay(CmaEsSampler{}, unit_cube(4),
                                              fixture_history(ell), #ell.generations * 8 + 1)
      assert.is_true(state_gap(st, ell.generations[#ell.generations]) < 1e-12)
      assert.equal(6, #told)
      assert.same({9, 10, 11, 12, 13, 14, 15, 16}, told[2])
      assert.same({}, filling)
      local x0 = {x1 = slope.mean0[1], x2 = slope.mean0[2], x3 = slope.mean0[3]}
      st = cmaes._replay(CmaEsSampler{popsize = 7, sigma0 = slope.sigma0, x0 = x0}, unit_cube(3),
                         fixture_history(slope), 57)
      assert.is_true(state_gap(st, slope.generations[#slope.generations]) < 1e-12)
    end)

    it("suggests a draw from the replayed state", function()
      local history = fixture_history(REF[1])
      local s = CmaEsSampler{}
      local st = cmaes._replay(s, unit_cube(4), history, 49)
      local x = cmaes._draw(st, rng.new(3, 49))
      local v = s:suggest(unit_cube(4), history, ctx(3, 49))
      assert.same({x1 = x[1], x2 = x[2], x3 = x[3], x4 = x[4]}, v)
    end)

    it("decomposes symmetric matrices, small eigenvalues included", function()
      local A = {{4, 1, 0.5}, {1, 3, 1e-3}, {0.5, 1e-3, 1e-9}}
      local w, V = cmaes._eigh(A, 3)
      for i = 1, 3 do
        for j = 1, 3 do
          local s, dot = 0, 0
          for k = 1, 3 do s, dot = s + V[i][k] * w[k] * V[j][k], dot + V[k][i] * V[k][j] end
          assert.near(A[i][j], s, 1e-14)
          assert.near(i == j and 1 or 0, dot, 1e-14)
        end
      end
      -- det A = product of eigenvalues, so the smallest is right to rounding
      local det = 4 * (3e-9 - 1e-6) - 1 * (1e-9 - 5e-4) + 0.5 * (1e-3 - 1.5)
      assert.near(det, w[1] * w[2] * w[3], 1e-15 * math.abs(det) + 1e-15)
    end)
  end)

  describe("as a pure function of the history", function()
    it("gives the same values for the same history and ctx, and others for another trial",
       function()
      local _, history = drive(MIXED, mixed_loss, 30, 7, CmaEsSampler{})
      local a = CmaEsSampler{}:suggest(MIXED, history, ctx(7, 31))
      assert.same(a, CmaEsSampler{}:suggest(MIXED, history, ctx(7, 31)))
      assert.are_not.same(a, CmaEsSampler{}:suggest(MIXED, history, ctx(7, 32)))
    end)

    it("proposes again, from a resumed history, what it proposed for every trial", function()
      local sp = cube(4, -2, 2)
      local _, history = drive(sp, rosenbrock, 40, 5, CmaEsSampler{})
      for k = 1, 40 do
        local resumed = {table.unpack(history, 1, k - 1)}
        assert.same(history[k].values, CmaEsSampler{}:suggest(sp, resumed, ctx(5, k)),
                    "trial " .. k)
      end
    end)
  end)

  describe("searching", function()
    local SEEDS = {1, 2, 3, 4, 5, 6, 7, 8}
    -- The median best loss of CMA-ES and of random search, on how many
    -- seeds CMA-ES found the lower one, and CMA-ES's histories.
    local function versus_random(sp, f, budget)
      local c, r, wins, histories = {}, {}, 0, {}
      for i, seed in ipairs(SEEDS) do
        c[i], histories[i] = drive(sp, f, budget, seed, CmaEsSampler{})
        r[i] = drive(sp, f, budget, seed)
        if c[i] < r[i] then wins = wins + 1 end
      end
      table.sort(c)
      table.sort(r)
      return (c[4] + c[5]) / 2, (r[4] + r[5]) / 2, wins, histories
    end

    it("converges on a 4-D sphere, 50 times closer than random search in 120 trials", function()
      local c, r, wins = versus_random(cube(4, -1, 1), sphere, 120)
      print(string.format("\nsphere 4-D, 120 trials, median best: CMA-ES %.3g, random %.3g", c, r))
      assert.is_true(c < r / 50)
      assert.equal(#SEEDS, wins)
    end)

    it("converges on a rotated ellipsoid (axes 1 to 1/30) in 5-D, 20 times closer than random "
       .. "search in 200 trials, and learns its rotation", function()
      local sp = cube(5, -5, 5)
      local c, r, wins, histories = versus_random(sp, ellipsoid, 200)
      print(string.format("\nrotated ellipsoid 5-D, 200 trials, median best: CMA-ES %.3g, random %.3g",
                          c, r))
      assert.is_true(c < r / 20)
      assert.equal(#SEEDS, wins)
      -- C has learned the rotated frame: along the flattest axis (ROT[1])
      -- its variance is more than 8 times that along the steepest (ROT[5];
      -- 1000 at the optimum, after many more generations), while across
      -- the coordinate axes its diagonal varies less than half as much
      local st = cmaes._replay(CmaEsSampler{}, sp, histories[1], 201)
      local function along(u)
        local s = 0
        for a = 1, 5 do for b = 1, 5 do s = s + u[a] * st.C[a][b] * u[b] end end
        return s
      end
      local hi, lo = 0, math.huge
      for a = 1, 5 do hi, lo = math.max(hi, st.C[a][a]), math.min(lo, st.C[a][a]) end
      local learned = along(ROT[1]) / along(ROT[5])
      assert.is_true(learned > 8, "ratio " .. learned)
      assert.is_true(hi / lo < learned / 2, "diagonal ratio " .. hi / lo)
    end)

    it("descends 4-D Rosenbrock's curved valley 5 times lower than random search in 200 trials",
       function()
      local c, r, wins = versus_random(cube(4, -2, 2), rosenbrock, 200)
      print(string.format("\nRosenbrock 4-D, 200 trials, median best: CMA-ES %.3g, random %.3g", c, r))
      assert.is_true(c < r / 5)
      assert.is_true(wins >= 7)
    end)

    it("keeps every suggestion inside its dimension: log and int dims, a one-valued dim, "
       .. "fixed values untouched, choices drawn from the prior", function()
      local budget = 80
      local _, history = drive(MIXED, mixed_loss, budget, 11, CmaEsSampler{})
      local seen = {}
      for n, t in ipairs(history) do
        local v = t.values
        assert.is_nil(MIXED:mismatch(v), "trial " .. n)
        assert.is_nil(v.epochs)                     -- fixed values are not the sampler's
        assert.equal("integer", math.type(v.layers))
        assert.equal("integer", math.type(v.width))
        assert.equal(3, v.depth)
        -- the first draws of the trial's stream, in name order (act, bias)
        local r = rng.new(11, n)
        assert.equal(MIXED.dims.act:sample(r:uniform()), v.act)
        assert.equal(MIXED.dims.bias:sample(r:uniform()), v.bias)
        seen[v.act] = true
      end
      assert.same({relu = true, tanh = true, gelu = true}, seen)
      -- and it searches log dimensions in log space: the optima (1e-3, 128)
      -- lie far from the middle of their linear ranges
      local _, random = drive(MIXED, mixed_loss, budget, 11)
      local function late(h, f)
        local s = 0
        for n = budget - 29, budget do s = s + f(h[n].values) end
        return s / 30
      end
      local lr_gap = function(v) return math.abs(log10(v.lr) + 3) end
      local width_gap = function(v) return math.abs(log10(v.width) - log10(128)) end
      assert.is_true(late(history, lr_gap) < 0.5 * late(random, lr_gap))
      assert.is_true(late(history, width_gap) < 0.7 * late(random, width_gap))
    end)

    it("redraws points outside the cube and clips the last one onto it", function()
      local sp = cube(8, 0, 1)
      local x0 = {}
      for j = 1, 8 do x0["x" .. j] = 0 end
      local clipped = 0
      for n = 1, 20 do
        local v = CmaEsSampler{x0 = x0, sigma0 = 1}:suggest(sp, {}, ctx(1, n))
        assert.is_nil(sp:mismatch(v))
        for j = 1, 8 do if v["x" .. j] == 0 then clipped = clipped + 1 end end
      end
      assert.is_true(clipped > 0)                 -- about half the coordinates of a clipped draw
    end)

    it("runs a study by name, define-by-run parameters included", function()
      local tune = require "moongrad.tune"
      local study = tune.Study{sampler = "cmaes", seed = 3}
      for _ = 1, 60 do
        local trial = study:ask()
        local x, y = trial:suggest_float("x", -5, 5), trial:suggest_float("y", 1e-3, 1e3, {log = true})
        study:tell(trial, (x - 1) ^ 2 + (log10(y) - 1) ^ 2)
      end
      assert.equal(60, study:counts().complete)
      assert.is_true(study:best().value < 0.05, "best " .. study:best().value)
    end)
  end)

  describe("small spaces", function()
    it("draws a one-coordinate or choice-only space from the prior, as random search does",
       function()
      local spaces = {space.new{x = space.uniform(0, 1)},
                      space.new{x = space.loguniform(1, 10), act = space.choice{"a", "b"},
                                n = space.int(2, 2)},
                      space.new{act = space.choice{"a", "b"}}}
      for _, sp in ipairs(spaces) do
        local _, history = drive(sp, function() return 1 end, 12, 4)
        assert.same(sp:sample(rng.new(4, 13)), CmaEsSampler{}:suggest(sp, history, ctx(4, 13)))
      end
      assert.same({}, CmaEsSampler{}:suggest(space.new{epochs = 3}, {}, ctx(1, 1)))
    end)

    it("gives a one-valued dimension its value and leaves it out of the strategy", function()
      local sp = space.new{a = space.uniform(0, 1), b = space.uniform(0, 1),
                           c = space.int(7, 7), d = space.uniform(2.5, 2.5)}
      local _, history = drive(sp, function(v) return (v.a - 0.2) ^ 2 + v.b end, 30, 2,
                               CmaEsSampler{})
      local st, _, _, coords = cmaes._replay(CmaEsSampler{}, sp, history, 31)
      assert.same({"a", "b"}, coords)
      assert.equal(2, st.d)
      for _, t in ipairs(history) do
        assert.equal(7, t.values.c)
        assert.equal(2.5, t.values.d)
      end
    end)
  end)

  describe("reading the history", function()
    local SP = cube(2, -5, 5)                        -- popsize 4 + floor(3 ln 2) = 6
    local function quad(v) return (v.x1 - 1) ^ 2 + 3 * (v.x2 + 2) ^ 2 end

    it("lets failed, running and pruned trials, trials without a loss and trials that do not "
       .. "fit the space take no place: the next trial that counts takes it", function()
      local _, history = drive(SP, quad, 40, 6, CmaEsSampler{})
      local spoiled, clean = {}, {}
      for n, t in ipairs(history) do
        local copy = {number = n, state = t.state, values = t.values, loss = t.loss,
                      intermediate = {}}
        if n == 5 then copy.state, copy.loss = "failed", nil
        elseif n == 12 then copy.state, copy.intermediate = "pruned", {{1, t.loss}}
        elseif n == 13 then copy.state, copy.loss = "running", nil
        elseif n == 20 then copy.values = {x1 = 99, x2 = 0}
        elseif n == 21 then copy.values = {x1 = 0, x2 = 0, x3 = 1}
        elseif n == 22 then copy.loss = nil
        else clean[#clean + 1] = copy end
        spoiled[n] = copy
      end
      local s = CmaEsSampler{}
      local st, told, filling = cmaes._replay(s, SP, spoiled, 41)
      local st2, told2, filling2 = cmaes._replay(s, SP, clean, 41)
      assert.same({1, 2, 3, 4, 6, 7}, told[1])
      assert.same({8, 9, 10, 11, 14, 15}, told[2])
      assert.same({16, 17, 18, 19, 23, 24}, told[3])
      assert.same(told2, told)
      assert.same(filling2, filling)
      assert.equal(0, state_gap(st, st2))
      assert.same(s:suggest(SP, clean, ctx(6, 41)), s:suggest(SP, spoiled, ctx(6, 41)))
    end)

    it("counts pruned trials at their last loss with consider_pruned", function()
      local _, history = drive(SP, quad, 30, 8, CmaEsSampler{})
      local pruned = {}
      for n, t in ipairs(history) do
        pruned[n] = {number = n, state = (n % 5 == 0) and "pruned" or "complete",
                     values = t.values, loss = t.loss, intermediate = {}}
      end
      local s = CmaEsSampler{consider_pruned = true}
      local st, told = cmaes._replay(s, SP, pruned, 31)
      local st2, told2 = cmaes._replay(s, SP, history, 31)
      assert.same(told2, told)
      assert.equal(5, #told)
      assert.equal(0, state_gap(st, st2))
      local _, skipped = cmaes._replay(CmaEsSampler{}, SP, pruned, 31)
      assert.equal(4, #skipped)                  -- 24 that count: 4 generations
    end)

    it("gives a straggler its place by number once it finishes (trials told out of order)",
       function()
      local _, history = drive(SP, quad, 12, 9)
      local s = CmaEsSampler{}
      history[3].state, history[3].loss = "running", nil
      local _, told, filling = cmaes._replay(s, SP, history, 13)
      assert.same({{1, 2, 4, 5, 6, 7}}, told)
      assert.same({8, 9, 10, 11, 12}, filling)
      history[3].state, history[3].loss = "complete", quad(history[3].values)
      _, told, filling = cmaes._replay(s, SP, history, 13)
      assert.same({{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}}, told)
      assert.same({}, filling)
      -- the trial being suggested never counts, whatever the history says of it
      history[13] = {number = 13, state = "complete", values = history[1].values, loss = -1,
                     intermediate = {}}
      local _, told13 = cmaes._replay(s, SP, history, 13)
      assert.same(told, told13)
    end)

    it("ranks an infinite loss last (or first) and a NaN after it", function()
      local _, history = drive(SP, quad, 6, 10)
      local function state_with(loss)
        local h = {}
        for n, t in ipairs(history) do
          h[n] = {number = n, state = "complete", values = t.values,
                  loss = n == 4 and loss or t.loss}
        end
        return (cmaes._replay(CmaEsSampler{}, SP, h, 7))
      end
      assert.equal(0, state_gap(state_with(math.huge), state_with(1e300)))
      assert.equal(0, state_gap(state_with(0 / 0), state_with(1e300)))
      assert.equal(0, state_gap(state_with(-math.huge), state_with(-1e300)))
      assert.is_true(state_gap(state_with(math.huge), state_with(-math.huge)) > 1e-3)
    end)

    it("draws the first `initial` trials from the prior, then starts at the best of them",
       function()
      local s = CmaEsSampler{initial = 5}
      local _, history = drive(SP, quad, 7, 12, s)
      for n = 1, 5 do assert.same(SP:sample(rng.new(12, n)), history[n].values) end
      local best = 1
      for n = 2, 5 do if history[n].loss < history[best].loss then best = n end end
      local st, told, filling = cmaes._replay(s, SP, history, 8)
      assert.same({}, told)
      assert.same({6, 7}, filling)
      assert.near(SP.dims.x1:to_unit(history[best].values.x1), st.mean[1], 1e-15)
      assert.near(SP.dims.x2:to_unit(history[best].values.x2), st.mean[2], 1e-15)
      -- a failed initial trial is no start
      history[best].state, history[best].loss = "failed", nil
      local st2 = cmaes._replay(s, SP, history, 8)
      assert.is_true(st2.mean[1] ~= st.mean[1])
      -- without initial trials, the centre of the cube
      assert.same({0.5, 0.5}, cmaes._replay(CmaEsSampler{}, SP, {}, 1).mean)
    end)

    it("starts at x0, its missing names at the centre, names outside the space ignored",
       function()
      local sp = space.new{lr = space.loguniform(1e-4, 1), w = space.uniform(0, 1),
                           n = space.int(0, 9), act = space.choice{"a", "b"}}
      local s = CmaEsSampler{x0 = {lr = 1e-2, n = 9, act = 1, other = 3}}
      local st, _, _, coords = cmaes._replay(s, sp, {}, 1)
      assert.same({"lr", "n", "w"}, coords)
      assert.near(0.5, st.mean[1], 1e-12)         -- 1e-2 is halfway in log space
      assert.near(0.95, st.mean[2], 1e-12)        -- 9 owns the slice [0.9, 1]
      assert.equal(0.5, st.mean[3])
      assert.near(1 / 6, st.sigma, 0)
      assert.has_error(function()
        CmaEsSampler{x0 = {lr = 5}}:suggest(sp, {}, ctx(1, 1))
      end, "tune.CmaEsSampler: x0.lr = 5 is not in loguniform(0.0001, 1)")
    end)
  end)

  it("rejects unknown options and bad values, blaming the caller", function()
    local cases = {
      {{seed = 1}, "unknown option 'seed' %(known: consider_pruned, initial, popsize, sigma0, x0%)"},
      {{sigma0 = 0}, "sigma0 must be a number in %(0, 1%] %(a fraction of each dimension's "
                     .. "range%), got 0"},
      {{sigma0 = 1.5}, "sigma0 must be a number in %(0, 1%]"},
      {{sigma0 = "big"}, "sigma0 must be a number in %(0, 1%]"},
      {{popsize = 1}, "popsize must be an integer >= 2, got 1"},
      {{popsize = 6.5}, "popsize must be an integer >= 2, got 6.5"},
      {{initial = -1}, "initial must be an integer >= 0, got %-1"},
      {{initial = math.huge}, "initial must be an integer >= 0, got inf"},
      {{consider_pruned = "yes"}, "consider_pruned must be a boolean, got yes"},
      {{x0 = 3}, "x0 must be a table of parameter name %-> starting value, got number"},
      {{x0 = {0.5}}, "x0 must be a table of parameter name %-> starting value, got key 1"},
      {{x0 = {lr = "big"}}, "x0.lr must be a finite number, got big"},
      {{x0 = {lr = 0 / 0}}, "x0.lr must be a finite number, got"},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(function() local s = CmaEsSampler(c[1]); return s end)
      assert.is_false(ok)
      assert.matches("tune.CmaEsSampler: " .. c[2], err)
      assert.matches("tune_cmaes_spec", err)       -- blames the caller
    end
    assert.has_error(function() CmaEsSampler(3) end,
                     "tune.CmaEsSampler: options must be a table, got number")
    assert.has_error(function() CmaEsSampler{}:suggest(cube(2, 0, 1), {}, {number = 1}) end,
                     "tune.CmaEsSampler: suggest needs ctx.rng, a moongrad.tune.rng stream")
  end)
end)
