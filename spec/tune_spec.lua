-- moongrad.tune: spaces, grid and random search, studies that persist and
-- resume, trials in worker processes, failures and pruning.

local BUILD = require "support.build"
local mg = require "moongrad"
local tune = require "moongrad.tune"
local space = require "moongrad.tune.space"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)
local function path(name) return dir .. "/" .. name end

local function lines_of(p)
  local out = {}
  for line in io.lines(p) do out[#out + 1] = line end
  return out
end

local function numbers_in(p)
  local out = {}
  for line in io.lines(p) do out[#out + 1] = tonumber(line) end
  table.sort(out)
  return out
end

-- An objective that notes each trial number it runs in a file (workers are
-- other processes: this is how the spec sees what ran).
local function noting(log, f)
  return function(config, trial)
    local fh = assert(io.open(log, "a"))
    fh:write(trial.number, "\n")
    fh:close()
    return f(config, trial)
  end
end

local function quiet(opts)
  opts.verbose = false
  return opts
end

describe("tune spaces", function()
  it("raises a clear error when low is greater than high", function()
    assert.has_error(function() tune.uniform(2, 1) end,
                     "tune.uniform: low (2) must not be greater than high (1)")
    assert.has_error(function() tune.int(5, 3) end,
                     "tune.int: low (5) must not be greater than high (3)")
  end)

  it("refuses a loguniform or logint bound that is not positive", function()
    assert.has_error(function() tune.loguniform(0, 1) end,
                     "tune.loguniform: low must be > 0 (the scale is logarithmic), got 0")
    assert.has_error(function() tune.loguniform(-1e-3, 1) end,
                     "tune.loguniform: low must be > 0 (the scale is logarithmic), got -0.001")
    assert.has_error(function() tune.logint(0, 8) end,
                     "tune.logint: low must be >= 1 (the scale is logarithmic), got 0")
  end)

  it("refuses non-integer int bounds, non-finite bounds and bad choices", function()
    assert.has_error(function() tune.int(1.5, 3) end,
                     "tune.int: low and high must be integers, got 1.5 and 3")
    assert.has_error(function() tune.uniform(0, math.huge) end,
                     "tune.uniform: low and high must be finite numbers, got 0 and inf")
    assert.has_error(function() tune.choice{} end,
                     "tune.choice: expects a non-empty list of values, e.g. tune.choice{32, 64, 128}")
    assert.has_error(function() tune.choice{1, 2, 1} end, "tune.choice: 1 is listed twice")
    assert.has_error(function() tune.choice{1, {}} end,
                     "tune.choice: choice 2 is a table; choices must be numbers, strings or booleans")
  end)

  it("refuses functions in a space, and a grid with nothing to lay it over", function()
    assert.has_error(function() tune.Study{space = {f = print}} end,
      "tune: 'f' in the search space is a function; use a dimension (tune.uniform, tune.choice, ...) or a plain value")
    assert.has_error(function() tune.Study{space = {epochs = 3}, sampler = "grid"} end,
      "tune.Study: the grid sampler needs a space with dimensions to lay its grid over " ..
      "(space = {x = tune.choice{...}, ...})")
    -- fixed values only, or no space: the objective asks for its parameters
    local study = tune.Study{space = {epochs = 3}}
    study:optimize(function(c, trial) return trial:suggest_float("x", 0, 1) + c.epochs end,
                   {trials = 2, verbose = false})
    assert.equal(2, study:counts().complete)
  end)

  it("maps every kind of dimension onto [0, 1] and back", function()
    local dims = {tune.uniform(-2, 6), tune.loguniform(1e-4, 1e-1), tune.int(3, 9),
                  tune.logint(1, 1000), tune.choice{"a", "b", "c"}}
    for _, d in ipairs(dims) do
      for _, u in ipairs{0, 0.1, 0.37, 0.5, 0.93, 1} do
        local v = d:from_unit(u)
        assert.is_true(d:contains(v), d:describe() .. " gave " .. tostring(v))
        if d.kind == "uniform" or d.kind == "loguniform" then
          assert.is_near(u, d:to_unit(v), 1e-12)
        else
          assert.are.equal(v, d:from_unit(d:to_unit(v)))
        end
      end
    end
    -- log dimensions are even in log space
    assert.is_near(1e-3, tune.loguniform(1e-4, 1e-2):from_unit(0.5), 1e-15)
    assert.are.equal(2, tune.choice{1, 2, 3}:from_unit(0.5))
  end)

  it("draws values of the right type inside the bounds", function()
    local s = space.new{lr = tune.loguniform(1e-5, 1e-1), n = tune.logint(2, 64),
                        k = tune.int(-3, 3), act = tune.choice{"relu", "gelu"}, epochs = 4}
    local r = require("moongrad.tune.rng").new(7)
    local seen_low_lr = false
    for _ = 1, 500 do
      local v = s:sample(r)
      assert.is_true(v.lr >= 1e-5 and v.lr <= 1e-1)
      if v.lr < 1e-4 then seen_low_lr = true end
      assert.are.equal("integer", math.type(v.n))
      assert.is_true(v.n >= 2 and v.n <= 64)
      assert.are.equal("integer", math.type(v.k))
      assert.is_true(v.act == "relu" or v.act == "gelu")
      assert.is_nil(v.epochs)
      assert.are.equal(4, s:config(v).epochs)
    end
    -- a quarter of loguniform(1e-5, 1e-1)'s mass lies below 1e-4
    assert.is_true(seen_low_lr)
  end)
end)

describe("tune grid search", function()
  it("tries exactly the product of the choices, each once", function()
    local study = tune.Study{sampler = "grid", space = {
      a = tune.choice{1, 2, 3}, b = tune.choice{"x", "y"}, c = tune.int(0, 1), fixed = true}}
    local seen = {}
    study:optimize(function(c)
      assert.is_true(c.fixed)
      local key = c.a .. c.b .. c.c
      assert.is_nil(seen[key], "tried twice: " .. key)
      seen[key] = true
      return c.a
    end, quiet{workers = 0})
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(12, n)
    assert.are.equal(12, #study:trials())
    for _, a in ipairs{1, 2, 3} do
      for _, b in ipairs{"x", "y"} do
        for _, c in ipairs{0, 1} do assert.is_true(seen[a .. b .. c]) end
      end
    end
  end)

  it("stops at the grid's size when asked for more trials", function()
    local study = tune.Study{sampler = "grid", space = {a = tune.choice{1, 2}}}
    study:optimize(function(c) return c.a end, quiet{workers = 0, trials = 50})
    assert.are.equal(2, #study:trials())
  end)

  it("refuses a continuous dimension with a clear error", function()
    local study = tune.Study{sampler = "grid", space = {lr = tune.loguniform(1e-4, 1)}}
    assert.has_error(function() study:optimize(function() return 0 end, quiet{workers = 0}) end,
      "tune: grid search needs a finite set of values for 'lr' (loguniform(0.0001, 1) has "
      .. "infinitely many); use tune.choice{...}")
  end)
end)

describe("tune random search", function()
  local sp = {x = tune.uniform(-1, 1), w = tune.choice{16, 32, 64}}

  local function configs(seed, workers)
    local study = tune.Study{space = sp, seed = seed}
    study:optimize(function(c) return c.x end, quiet{trials = 8, workers = workers})
    local out = {}
    for _, r in ipairs(study:trials()) do out[r.number] = r.params.x .. "/" .. r.params.w end
    return out
  end

  it("proposes the same configurations for the same seed, in or out of workers", function()
    assert.are.same(configs(5, 0), configs(5, 2))
    assert.are_not.same(configs(5, 0), configs(6, 0))
  end)

  it("needs a number of trials", function()
    local study = tune.Study{space = sp}
    assert.has_error(function() study:optimize(function() return 0 end) end,
                     "study:optimize: say when the study ends: {trials = 30}, {timeout = seconds} or both")
  end)
end)

describe("tune studies", function()
  it("appends every finished trial to the study file as it ends", function()
    local p = path("append.jsonl")
    local study = tune.Study{space = {x = tune.uniform(0, 1)}, path = p, seed = 1}
    local seen_lines = {}
    study:optimize(function(c, trial)
      -- trials run one after another here: trial k sees the k - 1 lines before it
      seen_lines[#seen_lines + 1] = #lines_of(p)
      return c.x
    end, quiet{workers = 0, trials = 4})
    assert.are.same({1, 2, 3, 4}, seen_lines)
    local lines = lines_of(p)
    assert.are.equal(5, #lines)
    assert.is_truthy(lines[1]:find('"moongrad_study":1', 1, true))
    assert.is_truthy(lines[2]:find('"state":"complete"', 1, true))
  end)

  it("resumes from its file and runs only the trials it has not finished", function()
    local p, log = path("resume.jsonl"), path("resume.log")
    local sp = {x = tune.uniform(-3, 3), layers = tune.int(1, 4), epochs = 2}
    local obj = noting(log, function(c) return (c.x - 1) ^ 2 + c.layers end)

    local first = tune.Study{space = sp, path = p, seed = 11}
    first:optimize(obj, quiet{trials = 5, workers = 2})
    assert.are.same({1, 2, 3, 4, 5}, numbers_in(log))

    -- as if the study had been killed while trials 4 and 5 ran: drop their
    -- lines, and leave half a line where a write was cut short
    local lines = lines_of(p)
    local keep = {lines[1]}
    for i = 2, #lines do
      local n = tonumber(lines[i]:match('"number":(%d+)'))
      if n <= 3 then keep[#keep + 1] = lines[i] end
    end
    local fh = assert(io.open(p, "w"))
    fh:write(table.concat(keep, "\n"), "\n", '{"attrs":{},"intermed')
    fh:close()
    os.remove(log)

    local again = tune.Study{space = sp, path = p, seed = 11}
    assert.are.equal(3, #again:trials())
    again:optimize(obj, quiet{trials = 8, workers = 2})
    assert.are.same({4, 5, 6, 7, 8}, numbers_in(log))
    assert.are.equal(8, #again:trials())

    -- the resumed study made the same proposals an uninterrupted one makes
    local straight = tune.Study{space = sp, seed = 11}
    straight:optimize(function(c) return (c.x - 1) ^ 2 + c.layers end, quiet{trials = 8, workers = 0})
    for i, r in ipairs(straight:trials()) do
      assert.are.same(r.params, again:trials()[i].params)
      assert.are.equal(r.value, again:trials()[i].value)
    end
    assert.are.equal(straight:best().value, again:best().value)
    -- every line of the file is a whole record again
    for _, line in ipairs(lines_of(p)) do assert.is_truthy(line:match("}$")) end
  end)

  it("refuses to resume a file made for another search", function()
    local p = path("other.jsonl")
    tune.Study{space = {x = tune.uniform(0, 1)}, path = p}:optimize(
      function(c) return c.x end, quiet{workers = 0, trials = 1})
    assert.has_error(function() tune.Study{space = {x = tune.uniform(0, 2)}, path = p} end,
      "tune.Study: " .. p .. " searched x as uniform(0, 1), now uniform(0, 2); use another path "
      .. "for a new study")
    assert.has_error(function()
      tune.Study{space = {x = tune.uniform(0, 1)}, path = p, direction = "maximize"}
    end, "tune.Study: " .. p .. " was made to minimize, not to maximize; use another path for a "
      .. "new study")
    assert.has_error(function()
      tune.Study{space = {x = tune.uniform(0, 1), y = tune.int(1, 2)}, path = p}
    end)
  end)

  it("finds the best trial for either direction and prints a leaderboard", function()
    local sp = {x = tune.choice{1, 5, 3, 4, 2}}
    local hi = tune.Study{space = sp, sampler = "grid", direction = "maximize", name = "hi"}
    hi:optimize(function(c) return c.x * 1.5 end, quiet{workers = 0})
    assert.are.equal(7.5, hi:best().value)
    assert.are.equal(5, hi:best().config.x)
    local lo = tune.Study{space = sp, sampler = "grid"}
    lo:optimize(function(c) return c.x * 1.5 end, quiet{workers = 0})
    assert.are.equal(1.5, lo:best().value)

    local board = hi:leaderboard{top = 3}
    local lines = {}
    for line in board:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal("hi study: 5 trials (5 complete, 0 pruned, 0 failed), maximize", lines[1])
    assert.is_truthy(lines[2]:match("^rank%s+trial%s+value%s+x%s+seconds$"))
    assert.is_truthy(lines[3]:match("^%s*1%s+2%s+7.5%s+5%s"))
    assert.is_truthy(lines[4]:match("^%s*2%s+4%s+6%s+4%s"))
    assert.is_truthy(lines[5]:match("^%s*3%s+3%s+4.5%s+3%s"))
    assert.are.equal(5, #lines)
  end)

  it("draws each trial's value and the best so far as an SVG", function()
    local study = tune.Study{space = {x = tune.choice{3, 1, 2}}, sampler = "grid"}
    study:optimize(function(c) return c.x end, quiet{workers = 0})
    local svg = study:plot(path("study.svg"))
    assert.is_truthy(svg:match("^<svg"))
    local _, circles = svg:gsub('<circle cx="[%d.]+" cy="[%d.]+" r="3" ', "")
    assert.are.equal(3, circles)               -- one marker per trial
    assert.is_truthy(svg:find(">best so far<", 1, true))
    -- the running best is a step down at trial 2: (1, 3) (2, 3) (2, 1) (3, 1)
    local pts = svg:match('<polyline[^>]-points="([^"]+)"')
    local xs, ys = {}, {}
    for x, y in pts:gmatch("([%d.]+),([%d.]+)") do xs[#xs + 1], ys[#ys + 1] = tonumber(x), tonumber(y) end
    assert.are.equal(4, #ys)
    assert.are.equal(ys[1], ys[2])
    assert.are.equal(xs[2], xs[3])
    assert.is_true(ys[3] > ys[2])               -- lower value, lower on the chart
    assert.are.equal(ys[3], ys[4])
    assert.is_truthy(io.open(path("study.svg")))
  end)

  it("writes its trials as CSV with attributes and errors", function()
    local study = tune.Study{space = {x = tune.choice{1, 2}}, sampler = "grid"}
    study:optimize(function(c, trial)
      trial:set("epochs", 3 * c.x)
      if c.x == 2 then error("boom, with a comma") end
      return c.x
    end, quiet{workers = 0, catch = true})
    local text = study:write_csv(path("trials.csv"))
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal("number,state,value,seconds,x,attr_epochs,error", lines[1])
    assert.is_truthy(lines[2]:match("^1,complete,1.0,[%d.]+,1,3,$"))
    assert.is_truthy(lines[3]:match('^2,failed,,[%d.]+,2,6,".*boom, with a comma"$'))
  end)

  it("checks optimize's options", function()
    local study = tune.Study{space = {x = tune.uniform(0, 1)}}
    local f = function() return 0 end
    assert.has_error(function() study:optimize(f, {trials = 2, worker = 2}) end)
    assert.has_error(function() study:optimize(f, {trials = 0}) end,
                     "study:optimize: trials must be an integer >= 1, got 0")
    assert.has_error(function() study:optimize(f, {trials = 2, workers = -1}) end,
                     "study:optimize: workers must be an integer >= 0, got -1")
    assert.has_error(function() study:optimize(f, {trials = 2, trial_timeout = 0}) end,
                     "study:optimize: trial_timeout must be a number of seconds > 0, got 0")
    assert.has_error(function() study:optimize(f, {trials = 2, workers = 0, trial_timeout = 1}) end,
      "study:optimize: trial_timeout needs a process per trial, which workers = 0 rules out "
      .. "(a trial in this process cannot be stopped from outside)")
    assert.has_error(function() study:optimize("f", {trials = 2}) end)
    assert.has_error(function() tune.Study{space = {x = tune.uniform(0, 1)}, sampler = "nope"} end,
                     "tune.Study: unknown sampler 'nope' (grid, random, bayes, tpe, cmaes, nsga2 or a sampler object)")
    assert.has_error(function() tune.Study{space = {x = tune.uniform(0, 1)}, direction = "up"} end,
                     'tune.Study: direction must be "minimize" or "maximize", got up')
  end)
end)

describe("tune trials in worker processes", function()
  it("records a failing trial with its message and goes on when told to catch", function()
    for _, workers in ipairs{0, 2} do
      local study = tune.Study{space = {x = tune.choice{1, 2, 3, 4}}, sampler = "grid"}
      study:optimize(function(c)
        if c.x == 2 then error("diverged at x = 2") end
        if c.x == 3 then return "nope" end
        return c.x
      end, quiet{workers = workers, catch = true})
      local t = study:trials()
      assert.are.equal(4, #t)
      assert.are.equal("complete", t[1].state)
      assert.are.equal("failed", t[2].state)
      assert.is_truthy(t[2].error:find("diverged at x = 2", 1, true))
      assert.are.equal("failed", t[3].state)
      assert.are.equal("the objective returned a string; it must return a number (the metric to "
                       .. "optimise)", t[3].error)
      assert.are.equal("complete", t[4].state)
      assert.are.equal(1, study:best().value)
    end
  end)

  it("records a worker that crashes or exits as a failed trial", function()
    local study = tune.Study{space = {x = tune.choice{1, 2, 3}}, sampler = "grid"}
    study:optimize(function(c)
      if c.x == 1 then mg._proc_kill(mg._getpid(), "KILL") end
      if c.x == 2 then os.exit(7) end
      return c.x
    end, quiet{workers = 2, catch = true})
    local t = study:trials()
    assert.are.equal("failed", t[1].state)
    assert.is_truthy(t[1].error:match("^the worker died: signal 9"))
    assert.are.equal("the worker exited with code 7 before finishing", t[2].error)
    assert.are.equal("complete", t[3].state)
  end)

  it("records a NaN result and a bad report as failures", function()
    local study = tune.Study{space = {x = tune.choice{1, 2}}, sampler = "grid"}
    study:optimize(function(c, trial)
      if c.x == 1 then return 0 / 0 end
      trial:report(1.5, 0)
    end, quiet{workers = 1, isolate = true, catch = true})
    local t = study:trials()
    assert.is_truthy(t[1].error:match("^the objective returned [-]?nan$"))
    assert.is_truthy(t[2].error:find("trial:report: step must be an integer, got 1.5", 1, true))
  end)

  it("stops a trial that runs past trial_timeout", function()
    local study = tune.Study{space = {x = tune.choice{1, 2}}, sampler = "grid"}
    study:optimize(function(c)
      if c.x == 1 then while true do end end
      return c.x
    end, quiet{workers = 2, trial_timeout = 0.5})
    assert.are.equal("timed out after 0.5 s (trial_timeout)", study:trials()[1].error)
    assert.are.equal("complete", study:trials()[2].state)
  end)

  it("runs trials side by side in several workers", function()
    local study = tune.Study{space = {x = tune.choice{1, 2, 3, 4}}, sampler = "grid"}
    study:optimize(function(c, trial)
      local t0 = mg.clock()
      os.execute("sleep 0.3")
      trial:set("from", t0)
      trial:set("to", mg.clock())
      trial:set("pid", mg._getpid())
      return c.x
    end, quiet{workers = 2, threads = 1})
    local t = study:trials()
    local overlaps, pids = 0, {}
    for i = 1, #t do
      pids[t[i].attrs.pid] = true
      for j = i + 1, #t do
        local a, b = t[i].attrs, t[j].attrs
        if a.from < b.to and b.from < a.to then overlaps = overlaps + 1 end
      end
    end
    assert.is_true(overlaps >= 2)            -- two pairs at least ran at once
    assert.is_nil(pids[mg._getpid()])        -- none ran in this process
  end)

  it("gives each trial its own seed, so trials are reproducible", function()
    local function draws()
      local study = tune.Study{space = {x = tune.choice{1, 2}}, sampler = "grid", seed = 4}
      study:optimize(function(c, trial)
        trial:set("r", mg.rand(1):item())
        return c.x
      end, quiet{workers = 1})
      return {study:trials()[1].attrs.r, study:trials()[2].attrs.r}
    end
    local a, b = draws(), draws()
    assert.are.same(a, b)
    assert.are_not.equal(a[1], a[2])
  end)
end)

describe("tune pruning", function()
  it("applies the median rule step by step", function()
    local pr = tune.MedianPruner{startup_trials = 2}
    local function done(...)
      local inter = {}
      for i, v in ipairs{...} do inter[i] = {i, v} end
      return {state = "complete", intermediate = inter}
    end
    local others = {done(5, 4, 3), done(7, 6, 5), done(9, 8, 7)}
    -- medians: step 1: 7, step 2: 6, step 3: 5
    assert.is_false(pr:should_prune({intermediate = {{1, 7}}}, others))
    assert.is_true(pr:should_prune({intermediate = {{1, 7.5}}}, others))
    -- the trial's best so far counts, not its latest report
    assert.is_false(pr:should_prune({intermediate = {{1, 5}, {2, 6.5}}}, others))
    assert.is_true(pr:should_prune({intermediate = {{1, 7.5}, {2, 6.5}}}, others))
    -- nobody reported step 4: nothing to compare against
    assert.is_false(pr:should_prune({intermediate = {{4, 100}}}, others))
    -- too few completed trials yet; warm-up steps are never pruned
    assert.is_false(pr:should_prune({intermediate = {{1, 100}}}, {others[1]}))
    local warm = tune.MedianPruner{startup_trials = 0, warmup_steps = 2}
    assert.is_false(warm:should_prune({intermediate = {{1, 100}}}, others))
    assert.is_true(warm:should_prune({intermediate = {{1, 100}, {2, 100}}}, others))
    -- running and pruned trials are not the reference
    local running = {{state = "running", intermediate = {{1, 0}}},
                     {state = "pruned", intermediate = {{1, 0}}}}
    assert.is_false(tune.MedianPruner{startup_trials = 0}:should_prune(
      {intermediate = {{1, 100}}}, running))
  end)

  it("checks the median pruner's options", function()
    assert.has_error(function() tune.MedianPruner{startup_trials = -1} end,
                     "tune.MedianPruner: startup_trials must be an integer >= 0, got -1")
    assert.has_error(function() tune.MedianPruner{patience = 3} end)
    assert.has_error(function() tune.Study{space = {x = tune.uniform(0, 1)}, pruner = "sometimes"} end,
      "tune.Study: unknown pruner 'sometimes' (median, halving, none or a pruner object)")
  end)

  it("stops clearly bad trials and lets good ones finish", function()
    -- half the configurations learn (their accuracy rises each epoch), half
    -- are stuck far below; once the completed trials are mostly learners,
    -- the stuck ones are stopped at their first report
    for _, workers in ipairs{0, 2} do
      local study = tune.Study{
        space = {good = tune.choice{true, false}, noise = tune.uniform(0, 0.1)},
        pruner = tune.MedianPruner{startup_trials = 3}, seed = 2, direction = "maximize"}
      study:optimize(function(c, trial)
        local acc
        for epoch = 1, 5 do
          acc = c.good and (0.5 + 0.08 * epoch) or (0.1 + c.noise)
          trial:report(epoch, acc)
          if trial:should_prune() then return acc end
        end
        trial:set("epochs", 5)
        return acc
      end, quiet{trials = 24, workers = workers})
      local pruned, good_pruned, bad_done_late = 0, 0, 0
      for _, r in ipairs(study:trials()) do
        if r.state == "pruned" then
          pruned = pruned + 1
          if r.params.good then good_pruned = good_pruned + 1 end
          assert.is_nil(r.attrs.epochs)
        elseif r.number > 8 and not r.params.good then
          bad_done_late = bad_done_late + 1
        end
      end
      assert.are.equal(0, good_pruned)
      assert.is_true(pruned >= 6, "pruned " .. pruned)
      assert.are.equal(0, bad_done_late)
      assert.is_true(study:best().params.good)
    end
  end)
end)

describe("tune studies stopped with Ctrl-C", function()
  it("stop cleanly, leave no worker behind, and resume where they stopped", function()
    local p, script, log = path("ctrlc.jsonl"), path("ctrlc.lua"), path("ctrlc.out")
    local fh = assert(io.open(script, "w"))
    fh:write(([[
      local tune = require "moongrad.tune"
      local study = tune.Study{space = {x = tune.uniform(0, 1)}, path = %q, seed = 3}
      study:optimize(function(c) os.execute("sleep 0.2") return c.x end,
                     {trials = tonumber(arg[1]), workers = 2})
    ]]):format(p))
    fh:close()
    -- its own process group, as a terminal's foreground job is
    local pid = io.popen(("setsid sh -c 'echo $$; exec " .. BUILD .. "/moongrad %s 200 >%s 2>&1' &")
                         :format(script, log)):read("l")
    pid = assert(tonumber(pid))
    local lines = 0
    for _ = 1, 300 do
      os.execute("sleep 0.1")
      lines = 0
      local f = io.open(p)
      if f then for _ in f:lines() do lines = lines + 1 end f:close() end
      if lines >= 4 then break end
    end
    assert.is_true(lines >= 4, "the study recorded no trials")
    os.execute(("bash -c 'kill -INT -- -%d'"):format(pid))
    for _ = 1, 100 do
      if not os.execute(("bash -c 'kill -0 -- -%d' 2>/dev/null"):format(pid)) then break end
      os.execute("sleep 0.1")
    end
    -- the whole group is gone: the study and its workers
    assert.is_falsy(os.execute(("bash -c 'kill -0 -- -%d' 2>/dev/null"):format(pid)))
    local out = assert(io.open(log)):read("a")
    assert.is_truthy(out:find("study:optimize: interrupted with %d+ trials finished; they are in "
                              .. p:gsub("%p", "%%%0") .. ": run again with the same path to resume"),
                     out)
    local finished = tune.Study{space = {x = tune.uniform(0, 1)}, path = p, seed = 3}:trials()
    assert.is_true(#finished >= 3 and #finished < 200)
    -- run again: the rest of the first 12, and nothing twice
    local again = tune.Study{space = {x = tune.uniform(0, 1)}, path = p, seed = 3}
    again:optimize(function(c) return c.x end, quiet{trials = math.max(12, #finished + 2), workers = 2})
    local seen = {}
    for _, r in ipairs(again:trials()) do
      assert.is_nil(seen[r.number])
      seen[r.number] = true
      assert.are.equal("complete", r.state)
    end
    for n = 1, math.max(12, #finished + 2) do assert.is_true(seen[n], "trial " .. n) end
  end)
end)

describe("tune samplers and pruners in a study", function()
  it("run every sampler with every pruner through forked workers", function()
    for _, sampler in ipairs{"random", "tpe", "bayes"} do
      for _, pruner in ipairs{"none", "median", "halving"} do
        local study = tune.Study{space = {x = tune.uniform(-2, 2), n = tune.logint(1, 32),
                                          kind = tune.choice{"a", "b"}},
                                 sampler = sampler, pruner = pruner, seed = 5}
        study:optimize(function(c, trial)
          local v
          for step = 1, 9 do
            v = c.x ^ 2 + math.log(c.n) + (c.kind == "a" and 0 or 1) + 1 / step
            trial:report(step, v)
            if trial:should_prune() then return v end
          end
          return v
        end, quiet{trials = 14, workers = 2})
        local c = study:counts()
        local what = sampler .. "/" .. pruner
        assert.are.equal(14, c.complete + c.pruned, what)
        assert.are.equal(0, c.failed, what)
        if pruner == "none" then assert.are.equal(0, c.pruned, what) end
        assert.is_true(study:best().value < 3, what)
      end
    end
  end)
end)

describe("tune workers", function()
  it("end with a study that is killed outright", function()
    local script, pids = path("term.lua"), path("term.pids")
    local fh = assert(io.open(script, "w"))
    fh:write(([[
      local mg = require "moongrad"
      local tune = require "moongrad.tune"
      local study = tune.Study{space = {x = tune.uniform(0, 1)}}
      study:optimize(function(c)
        local f = io.open(%q, "a") f:write(mg._getpid(), "\n") f:close()
        while true do end
      end, {trials = 2, workers = 2})
    ]]):format(pids))
    fh:close()
    local pid = assert(tonumber(io.popen(("sh -c 'echo $$; exec " .. BUILD .. "/moongrad %s >/dev/null 2>&1' &")
                                         :format(script)):read("l")))
    local workers = {}
    for _ = 1, 300 do
      os.execute("sleep 0.1")
      workers = {}
      local f = io.open(pids)
      if f then for line in f:lines() do workers[#workers + 1] = tonumber(line) end f:close() end
      if #workers == 2 then break end
    end
    assert.are.equal(2, #workers)
    os.execute("kill -KILL " .. pid)
    local alive
    for _ = 1, 50 do
      alive = 0
      for _, w in ipairs(workers) do
        if os.execute(("kill -0 %d 2>/dev/null"):format(w)) then alive = alive + 1 end
      end
      if alive == 0 then break end
      os.execute("sleep 0.1")
    end
    assert.are.equal(0, alive)
  end)
end)
