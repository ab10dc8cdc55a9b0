-- moongrad.tune as an Optuna user expects it: errors in the objective are
-- loud, infinite values count, a timeout alone bounds a study, trials run
-- in the caller's process unless asked otherwise, and a loop of one's own
-- drives a study with ask and tell.
local mg = require "moongrad"
local tune = require "moongrad.tune"
local shell = require "support.shell"

local dir = shell.tmpdir()

local function quiet(opts)
  opts.verbose = false
  return opts
end

local function states(study)
  local out = {}
  for i, t in ipairs(study:trials()) do out[i] = t.state end
  return out
end

describe("tune.Study:optimize, as Optuna users expect", function()
  it("re-raises an objective's error with the trial's parameters and runs no more trials", function()
    for _, workers in ipairs {1, 2} do
      local study = tune.Study{space = {x = tune.choice{1, 2, 3, 4}}, sampler = "grid"}
      local ok, err = pcall(study.optimize, study, function(c)
        if c.x == 2 then return c.z + 1 end -- the typo an Optuna user would make
        return c.x
      end, quiet{workers = workers})
      assert.is_false(ok)
      assert.truthy(err:find("study:optimize: trial 2 (x=2) raised an error: ", 1, true), err)
      assert.truthy(err:find("attempt to perform arithmetic on a nil value (field 'z')", 1, true), err)
      assert.truthy(err:find("pass catch = true", 1, true), err)
      local t = study:trials()
      assert.equal("failed", t[2].state, workers)
      -- in this process nothing runs after the failure; with two workers
      -- the one already running finishes and is kept
      if workers == 1 then assert.same({"complete", "failed"}, states(study)) end
      for _, r in ipairs(t) do assert.are_not.equal("running", r.state) end
    end
  end)

  it("names a crashed worker's trial when it stops the study", function()
    local study = tune.Study{space = {x = tune.choice{1, 2}}, sampler = "grid"}
    local ok, err = pcall(study.optimize, study, function(c)
      if c.x == 1 then os.exit(3) end
      return c.x
    end, quiet{isolate = true})
    assert.is_false(ok)
    assert.truthy(err:find("trial 1 (x=1) failed: the worker exited with code 3", 1, true), err)
  end)

  it("counts an infinite result as a value and a NaN as a failure", function()
    local study = tune.Study{space = {x = tune.choice{1, 2, 3}}, sampler = "grid"}
    study:optimize(function(c)
      if c.x == 1 then return math.huge end
      if c.x == 2 then return 0 / 0 end
      return 5
    end, quiet{})
    assert.same({"complete", "failed", "complete"}, states(study))
    assert.equal(math.huge, study:trials()[1].value)
    assert.equal(3, study:best().number)
    local up = tune.Study{space = {x = tune.choice{1, 2}}, sampler = "grid", direction = "maximize"}
    up:optimize(function(c) return c.x == 1 and math.huge or 1 end, quiet{})
    assert.equal(1, up:best().number)
    assert.equal(math.huge, up:best().value)
  end)

  it("lets the Bayesian sampler learn from infinite values", function()
    local study = tune.Study{space = {x = tune.uniform(0, 1), y = tune.uniform(0, 1)},
                             sampler = "bayes", seed = 3}
    study:optimize(function(c)
      if c.x > 0.7 then return math.huge end
      return (c.x - 0.3) ^ 2 + (c.y - 0.5) ^ 2
    end, quiet{trials = 16})
    local c = study:counts()
    assert.equal(16, c.complete)
    assert.is_true(study:best().value < 0.05)
  end)

  it("stops at a timeout given alone", function()
    local study = tune.Study{space = {x = tune.uniform(0, 1)}}
    local t0 = mg.clock()
    study:optimize(function(c)
      local t = mg.clock()
      while mg.clock() - t < 0.02 do end
      return c.x
    end, quiet{timeout = 0.3})
    local n = #study:trials()
    assert.is_true(n >= 2 and n <= 16, n)
    assert.is_true(mg.clock() - t0 < 2)
  end)

  it("runs trials in this process by default, so their side effects stay", function()
    local count = 0
    local study = tune.Study{space = {x = tune.uniform(0, 1)}}
    study:optimize(function(c, trial)
      count = count + 1
      trial:set("pid", mg._getpid())
      return c.x
    end, quiet{trials = 5})
    assert.equal(5, count)
    for _, t in ipairs(study:trials()) do assert.equal(mg._getpid(), t.attrs.pid) end
    -- isolate = true forks a process per trial, as before
    local isolated = tune.Study{space = {x = tune.uniform(0, 1)}}
    isolated:optimize(function(c, trial)
      count = count + 1
      trial:set("pid", mg._getpid())
      return c.x
    end, quiet{trials = 2, isolate = true})
    assert.equal(5, count)
    for _, t in ipairs(isolated:trials()) do assert.are_not.equal(mg._getpid(), t.attrs.pid) end
  end)

  it("puts the caller's random state back after trials in its process", function()
    mg.manual_seed(11)
    local expected = mg.rand(1):item()
    mg.manual_seed(11)
    local study = tune.Study{space = {x = tune.uniform(0, 1)}}
    study:optimize(function(c) return mg.rand(1):item() + c.x end, quiet{trials = 3})
    assert.equal(expected, mg.rand(1):item())
  end)

  it("refuses options of the wrong kind", function()
    local study = tune.Study{space = {x = tune.uniform(0, 1)}}
    local f = function() return 0 end
    assert.has_error(function() study:optimize(f, {trials = 1, catch = "yes"}) end,
                     "study:optimize: catch must be true or false, got yes")
    assert.has_error(function() study:optimize(f, {trials = 1, workers = 0, isolate = true}) end,
                     "study:optimize: isolate = true forks a process per trial; workers = 0 " ..
                     "runs them in this one")
  end)
end)

describe("tune spaces", function()
  it("refuse arguments a dimension does not take", function()
    assert.has_error(function() tune.uniform(0, 1, 6) end,
                     "tune.uniform: the third argument is an options table {step = ...}, got 6")
    assert.has_error(function() tune.uniform(0, 1, {step = 0.1}, 2) end,
                     "tune.uniform: takes (low, high [, {step = s}]); got 1 more argument (2)")
    assert.has_error(function() tune.uniform(0, 1, {stride = 0.1}) end,
                     "tune.uniform: unknown option 'stride' (known: step)")
    assert.has_error(function() tune.loguniform(1e-3, 1, true) end,
                     "tune.loguniform: takes (low, high); got 1 more argument (true)")
    assert.has_error(function() tune.int(1, 9, 2) end,
                     "tune.int: the third argument is an options table {step = ...}, got 2")
    assert.has_error(function() tune.logint(1, 9, 2, 3) end,
                     "tune.logint: takes (low, high); got 2 more arguments (2)")
    assert.has_error(function() tune.choice({1, 2}, 3) end,
                     "tune.choice: takes one list of values; got 1 more argument (3)")
  end)

  it("take a step: every value on the lattice low, low + step, ..., high", function()
    local d = tune.uniform(0, 1, {step = 0.25})
    assert.equal("uniform(0, 1, step 0.25)", d:describe())
    assert.same({0, 0.25, 0.5, 0.75, 1}, d:grid("x"))
    -- each of the five values owns a fifth of the unit interval
    assert.equal(0, d:from_unit(0.19))
    assert.equal(0.25, d:from_unit(0.21))
    assert.equal(1, d:from_unit(1))
    assert.equal(0.7, d:to_unit(0.75))
    assert.is_true(d:contains(0.5))
    assert.is_false(d:contains(0.3))
    -- 0.1 steps: the last value is high itself, not 0.1 * 10 rounded
    local tenth = tune.uniform(0, 1, {step = 0.1})
    assert.equal(1.0, tenth:from_unit(1))
    assert.is_true(tenth:contains(0.3))
    local i = tune.int(0, 100, {step = 25})
    assert.same({0, 25, 50, 75, 100}, i:grid("n"))
    assert.equal(math.type(50), math.type(i:from_unit(0.5)))
    assert.equal("int(0, 100, step 25)", i:describe())
    -- step 1 is the plain integer dimension (a study file written before
    -- steps existed still matches)
    assert.equal("int(0, 4)", tune.int(0, 4, {step = 1}):describe())
    assert.has_error(function() tune.uniform(0, 1, {step = 0.3}) end,
                     "tune.uniform: high - low (1 - 0) must be a whole number of steps (0.3)")
    assert.has_error(function() tune.uniform(0, 1, {step = 0}) end,
                     "tune.uniform: step must be a finite number > 0, got 0")
    assert.has_error(function() tune.int(0, 10, {step = 2.5}) end,
                     "tune.int: step must be a whole number > 0, got 2.5")
  end)

  it("with a step, are searched on the lattice by every sampler and by grid search", function()
    for _, sampler in ipairs {"random", "tpe", "bayes", "grid"} do
      local study = tune.Study{space = {x = tune.uniform(-1, 1, {step = 0.5}),
                                        n = tune.int(2, 10, {step = 4})}, sampler = sampler}
      study:optimize(function(c) return (c.x - 0.5) ^ 2 + c.n end,
                     {trials = sampler == "grid" and nil or 15, verbose = false})
      for _, t in ipairs(study:trials()) do
        local x, n = t.params.x, t.params.n
        assert.is_true(x == -1 or x == -0.5 or x == 0 or x == 0.5 or x == 1, sampler .. " " .. x)
        assert.is_true(n == 2 or n == 6 or n == 10, sampler .. " " .. n)
      end
      if sampler == "grid" then assert.equal(15, #study:trials()) end
      assert.same({x = 0.5, n = 2}, study:best().config)
    end
  end)
end)

describe("tune.TrialCallback", function()
  it("needs the metric named when the study maximizes", function()
    local up = tune.Study{space = {x = tune.uniform(0, 1)}, direction = "maximize"}
    local trial = up:ask()
    assert.has_error(function() tune.TrialCallback(trial) end,
      "tune.TrialCallback: the study maximizes, so say which metric to report: " ..
      "{monitor = \"val_accuracy\"} (the default, val_loss, is one to minimize)")
    local cb = tune.TrialCallback(trial, {monitor = "val_accuracy"})
    cb.on_epoch_end({epoch = 1, logs = {val_accuracy = 0.5}})
    up:tell(trial, 0.5)
    assert.same({{1, 0.5}}, up:trials()[1].intermediate)
    local down = tune.Study{space = {x = tune.uniform(0, 1)}}
    local t2 = down:ask()
    tune.TrialCallback(t2).on_epoch_end({epoch = 1, logs = {val_loss = 0.25}})
    assert.same({{1, 0.25}}, down:trials()[1].intermediate)
  end)
end)

describe("tune ask and tell", function()
  it("drives a study from a loop of one's own", function()
    local study = tune.Study{space = {x = tune.choice{1, 2, 3}, lr = 0.1}, sampler = "grid"}
    local seen = {}
    for i = 1, 3 do
      local trial = study:ask()
      assert.equal(i, trial.number)
      assert.equal(0.1, trial.config.lr)
      assert.equal(trial.params.x, trial.config.x)
      seen[#seen + 1] = trial.config.x
      trial:report(1, trial.config.x * 10)
      study:tell(trial, trial.config.x * 2)
    end
    table.sort(seen)
    assert.same({1, 2, 3}, seen) -- the grid's points, each once
    assert.same({"complete", "complete", "complete"}, states(study))
    assert.equal(2, study:best().value)
    assert.same({{1, 10}}, study:best().intermediate)
  end)

  it("prunes, fails and refuses what it cannot record", function()
    local study = tune.Study{space = {x = tune.uniform(0, 1)}, pruner = tune.MedianPruner{
      startup_trials = 1}}
    local a = study:ask()
    a:report(1, 1.0)
    study:tell(a, 1.0)
    local b = study:ask()
    b:report(1, 5.0)
    assert.is_true(b:should_prune())
    study:tell(b, nil, "pruned")
    local c = study:ask()
    study:tell(c.number, "the data loader died", "failed")
    assert.same({"complete", "pruned", "failed"}, states(study))
    assert.equal(5.0, study:trials()[2].value)
    assert.equal("the data loader died", study:trials()[3].error)
    assert.has_error(function() study:tell(a, 2) end,
                     "study:tell: trial 1 has already been told (complete)")
    assert.has_error(function() study:tell(99, 2) end,
                     "study:tell: no asked trial 99 (ask for one with study:ask())")
    local d = study:ask()
    assert.has_error(function() study:tell(d, "0.5") end,
      "study:tell: the value must be a number, got string (to end the trial otherwise say so: " ..
      "tell(trial, nil, \"pruned\") or tell(trial, why, \"failed\"))")
    assert.has_error(function() study:tell(d, 1, "done") end,
      "study:tell: state must be \"complete\", \"pruned\" or \"failed\", got done")
    study:tell(d, 0 / 0)
    assert.equal("failed", study:trials()[4].state)
  end)

  it("keeps told trials in the study file, which a new study resumes from", function()
    local file = dir .. "/asked.jsonl"
    local study = tune.Study{space = {x = tune.uniform(0, 1)}, path = file, seed = 2}
    for _ = 1, 3 do
      local t = study:ask()
      study:tell(t, t.config.x)
    end
    local again = tune.Study{space = {x = tune.uniform(0, 1)}, path = file, seed = 2}
    assert.equal(3, #again:trials())
    assert.equal(study:best().value, again:best().value)
    assert.equal(4, again:ask().number)
  end)
end)

describe("tune.Study:enqueue_trial", function()
  it("tries the given parameters next, the sampler filling in the rest", function()
    local study = tune.Study{space = {x = tune.uniform(0, 1), n = tune.int(1, 8)}, seed = 5}
    study:enqueue_trial{x = 0.25, n = 3}
    study:enqueue_trial{x = 0.75}
    study:optimize(function(c) return c.x end, quiet{trials = 3})
    local t = study:trials()
    assert.same({0.25, 3}, {t[1].params.x, t[1].params.n})
    assert.equal(0.75, t[2].params.x)
    assert.is_true(t[2].params.n >= 1 and t[2].params.n <= 8)
    study:enqueue_trial{n = 8}
    assert.equal(8, study:ask().config.n)
  end)

  it("refuses parameters the space does not hold", function()
    local study = tune.Study{space = {x = tune.uniform(0, 1), act = tune.choice{"relu", "gelu"},
                                      epochs = 5}}
    assert.has_error(function() study:enqueue_trial{epochs = 3} end,
                     "study:enqueue_trial: epochs is a fixed value of the space (5), not searched")
    assert.has_error(function() study:enqueue_trial{x = 2} end,
                     "study:enqueue_trial: x = 2 is not in the space (uniform(0, 1))")
    assert.has_error(function() study:enqueue_trial{act = "tanh"} end,
                     'study:enqueue_trial: act = tanh is not in the space (choice{"relu", "gelu"})')
    assert.has_error(function() study:enqueue_trial("x") end,
                     "study:enqueue_trial: expects a table of parameters, e.g. {lr = 0.01}")
  end)
end)

describe("tune define-by-run", function()
  local function objective(_, trial)
    local kind = trial:suggest_categorical("kind", {"linear", "quad"})
    local x = trial:suggest_float("x", -4, 4)
    if kind == "quad" then
      local p = trial:suggest_int("p", 1, 3) -- asked for on this branch only
      return (x - 1) ^ 2 + p - 1
    end
    return math.abs(x) + 0.5
  end

  it("asks for parameters inside the objective, a conditional one only where its branch runs", function()
    for _, sampler in ipairs {"random", "tpe", "bayes"} do
      local study = tune.Study{sampler = sampler, seed = 1}
      study:optimize(objective, quiet{trials = 30})
      local quads = 0
      for _, t in ipairs(study:trials()) do
        assert.equal("complete", t.state)
        assert.is_true(t.params.x >= -4 and t.params.x <= 4)
        if t.params.kind == "quad" then
          quads = quads + 1
          assert.equal("integer", math.type(t.params.p))
          assert.is_true(t.params.p >= 1 and t.params.p <= 3)
        else
          assert.equal("linear", t.params.kind)
          assert.is_nil(t.params.p)
        end
      end
      assert.is_true(quads > 0 and quads < 30, sampler)
      assert.is_true(study:best().value < 0.7, sampler)
      local best = study:best()
      assert.equal(best.params.x, best.config.x)
      local board = study:leaderboard{top = 30}
      assert.truthy(board:find("\nrank +trial +value +kind +p +x +seconds\n"), board)
      assert.truthy(board:find(" linear +%- +"), board) -- p was not asked for there
    end
  end)

  it("learns where the minimum is", function()
    local function bowl(_, trial)
      local lr = trial:suggest_float("lr", 1e-5, 1e-1, {log = true})
      local width = trial:suggest_int("width", 8, 512, {log = true})
      return (math.log(lr, 10) + 3) ^ 2 + (math.log(width, 2) - 6) ^ 2
    end
    local study = tune.Study{sampler = "tpe", seed = 3}
    study:optimize(bowl, quiet{trials = 40})
    local random = tune.Study{sampler = "random", seed = 3}
    random:optimize(bowl, quiet{trials = 40})
    -- the second half of TPE's trials beats the second half of random's
    local function late_mean(st)
      local sum, n = 0, 0
      for _, t in ipairs(st:trials()) do
        if t.number > 20 then sum, n = sum + t.value, n + 1 end
      end
      return sum / n
    end
    assert.is_true(late_mean(study) < late_mean(random))
  end)

  it("lets the Gaussian process propose the parameters every trial asks for together", function()
    -- Branin, define-by-run: modelled one parameter at a time the GP does
    -- no better than random search here; modelled jointly it finds a minimum
    local file = dir .. "/branin.jsonl"
    local study = tune.Study{sampler = "bayes", seed = 1, path = file}
    local function branin(_, trial)
      local x1 = trial:suggest_float("x1", -5, 10)
      local x2 = trial:suggest_float("x2", 0, 15)
      return (x2 - 5.1 / (4 * math.pi ^ 2) * x1 * x1 + 5 / math.pi * x1 - 6) ^ 2
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
    end
    study:optimize(branin, quiet{trials = 20})
    local again = tune.Study{sampler = "bayes", seed = 1, path = file} -- the ranges come back
    assert.same({kind = "uniform", low = -5.0, high = 10.0}, again:trials()[1].specs.x1)
    again:optimize(branin, quiet{trials = 35})
    assert.is_true(again:best().value - 0.397887 < 0.1, again:best().value)
  end)

  it("gives the same value for a name asked again, and refuses a clash", function()
    local study = tune.Study{space = {x = tune.uniform(0, 1)}}
    local t = study:ask()
    local a = t:suggest_float("y", 0, 1)
    assert.equal(a, t:suggest_float("y", 0, 1))
    assert.equal(a, t.config.y)
    assert.has_error(function() t:suggest_float("y", 0, 2) end,
      "trial:suggest: y was asked for as uniform(0, 1) in this trial, now as uniform(0, 2)")
    assert.has_error(function() t:suggest_float("x", 0, 1) end,
      "trial:suggest: x is in the study's space already; read it from config.x")
    assert.has_error(function() t:suggest_float("lr", 0, 1, {log = true}) end,
      "trial:suggest_float(\"lr\"): low must be > 0 (the scale is logarithmic), got 0")
    assert.has_error(function() t:suggest_float("lr", 0, 1, {steps = 0.1}) end,
      "trial:suggest_float: unknown option 'steps' (known: log, step)")
    assert.has_error(function() t:suggest_float("lr", 0.1, 1, {step = 0.1, log = true}) end,
      "trial:suggest_float: step and log cannot be used together (as in Optuna)")
    assert.has_error(function() t:suggest_int("k", 0, 9, {step = 2}) end,
      "trial:suggest_int(\"k\"): high - low (9 - 0) must be a whole number of steps (2)")
    local stepped = t:suggest_float("s", 0, 1, {step = 0.1})
    assert.is_true(math.abs(stepped * 10 - math.floor(stepped * 10 + 0.5)) < 1e-9, stepped)
    local k = t:suggest_int("k", 0, 10, {step = 5})
    assert.is_true(k == 0 or k == 5 or k == 10, k)
    assert.has_error(function() t:suggest_int("n", 1.5, 3) end,
      "trial:suggest_int(\"n\"): low and high must be integers, got 1.5 and 3")
    assert.has_error(function() t:suggest_categorical("c", {}) end)
    assert.has_error(function() t:suggest_float(7, 0, 1) end,
      "trial:suggest_float: the name must be a non-empty string, got 7")
    study:tell(t, a)
    local grid = tune.Study{space = {x = tune.choice{1, 2}}, sampler = "grid"}
    local g = grid:ask()
    assert.has_error(function() g:suggest_float("y", 0, 1) end,
      "trial:suggest: the grid sampler searches the declared space only; give the study " ..
      "another sampler")
  end)

  it("asks the study from worker processes", function()
    local study = tune.Study{sampler = "tpe", seed = 2}
    study:optimize(function(_, trial)
      trial:set("pid", mg._getpid())
      return objective(nil, trial)
    end, quiet{trials = 6, workers = 2})
    for _, t in ipairs(study:trials()) do
      assert.are_not.equal(mg._getpid(), t.attrs.pid)
      assert.is_number(t.params.x)
    end
    local bad = tune.Study{space = {x = tune.uniform(0, 1)}}
    local ok, err = pcall(bad.optimize, bad, function(_, trial)
      return trial:suggest_float("x", 0, 1)
    end, quiet{trials = 1, isolate = true})
    assert.is_false(ok)
    assert.truthy(err:find("x is in the study's space already", 1, true), err)
  end)

  it("keeps what was asked for in the study file, and a resumed study samples from it", function()
    local file = dir .. "/dbr.jsonl"
    local study = tune.Study{sampler = "tpe", path = file, seed = 4}
    study:optimize(objective, quiet{trials = 5})
    local again = tune.Study{sampler = "tpe", path = file, seed = 4}
    for _, t in ipairs(again:trials()) do assert.equal("uniform(-4, 4)", t.dists.x) end
    again:optimize(objective, quiet{trials = 8})
    assert.equal(8, #again:trials())
    local csv = again:write_csv(dir .. "/dbr.csv")
    assert.truthy(csv:find("^number,state,value,seconds,kind,p,x,error\n"), csv)
    assert.truthy(csv:find("\n%d+,complete,[^,]+,[^,]+,linear,,[^,]+,\n"), csv) -- no p there
  end)

  it("takes enqueued values for parameters asked for by name", function()
    local study = tune.Study{}
    study:enqueue_trial{x = 0.5, kind = "quad", p = 2}
    study:optimize(objective, quiet{trials = 1})
    assert.same({kind = "quad", x = 0.5, p = 2}, study:trials()[1].params)
    study:enqueue_trial{x = 9}
    local ok, err = pcall(study.optimize, study, objective, quiet{trials = 2})
    assert.is_false(ok)
    assert.truthy(err:find("enqueue_trial gave x = 9, which uniform(-4, 4) does not hold", 1, true), err)
  end)
end)

describe("study:plot_params", function()
  it("draws every trial's value against each parameter, the best trial ringed", function()
    local study = tune.Study{space = {dropout = tune.uniform(0, 0.5)}, direction = "maximize",
                             name = "toy", seed = 1}
    -- three trials with known parameters: trial 2 is the best (0.9)
    local given = {{0.1, 1e-3, "relu"}, {0.2, 1e-2, "gelu"}, {0.3, 1e-4, "relu"}}
    for i, g in ipairs(given) do study:enqueue_trial{dropout = g[1], lr = g[2], act = g[3]} end
    study:optimize(function(c, trial)
      local lr = trial:suggest_float("lr", 1e-5, 1e-1, {log = true})
      local act = trial:suggest_categorical("act", {"relu", "gelu"})
      return ({[0.1] = 0.8, [0.2] = 0.9, [0.3] = 0.7})[c.dropout]
    end, {trials = 3, verbose = false})
    local path = dir .. "/params.svg"
    local svg = study:plot_params(path)
    assert.equal(svg, io.open(path):read("a"))
    -- a panel per parameter, by name, with its axis: act by choice, lr on a log scale
    for _, s in ipairs{">toy: value against each parameter<", ">act<", ">dropout<", ">lr<",
                       ">lr (log scale)<", ">relu<", ">gelu<", ">value (maximize)<", ">best<"} do
      assert.truthy(svg:find(s, 1, true), s)
    end
    -- the best trial is ringed once per panel, plus one ring per legend
    local _, rings = svg:gsub('<circle [^>]*r="6" fill="none"', "")
    assert.equal(6, rings)
    local _, dots = svg:gsub('<circle [^>]*r="3" fill=', "")
    assert.equal(9, dots) -- three trials in each of three panels
  end)

  it("rings the Pareto front of a study with directions, by the objective asked for", function()
    local study = tune.Study{directions = {"minimize", "minimize"}, space = {x = tune.uniform(0, 1)}}
    for _, x in ipairs{0.1, 0.5, 0.9} do study:enqueue_trial{x = x} end
    study:optimize(function(c) return {c.x, 1 - c.x} end, {trials = 3, verbose = false})
    local svg = study:plot_params(nil, {objective = 2})
    assert.truthy(svg:find(">value 2 (minimize)<", 1, true))
    assert.truthy(svg:find(">Pareto front<", 1, true))
    local _, rings = svg:gsub('<circle [^>]*r="6" fill="none"', "")
    assert.equal(4, rings) -- all three trials are on the front, and the legend's
    assert.has_error(function() study:plot_params(nil, {objective = 3}) end,
      "study:plot_params: objective must be an integer in 1..2, got 3")
  end)

  it("says so when there is nothing to draw", function()
    assert.has_error(function() tune.Study{}:plot_params() end,
      "study:plot_params: the study has no parameters to show (none declared or asked for)")
    assert.has_error(function() tune.Study{}:plot_params(3) end,
      "study:plot_params: path must be a file name (a string) or nil, got number")
  end)
end)
