-- The search benchmark of `make bench` (twin: bench/tune_samplers.py, run
-- where python3-optuna is installed): moongrad.tune's samplers on three
-- standard functions, each search a study driven by ask and tell with the
-- parameters asked for define-by-run, as an Optuna user writes it.
--
--   Branin    2-D on [-5, 10] x [0, 15], minimum 0.397887, 40 trials
--   Hartmann  6-D on [0, 1]^6, minimum -3.32237, 60 trials
--   Levy      5-D on [-10, 10]^5, minimum 0 at (1, ..., 1), 60 trials
--
-- For every function and sampler, over seeds 1..SEEDS: the regret (best
-- value found minus the minimum) and the time a trial takes: ask, the
-- suggestions (where define-by-run samplers do their work) and tell; the
-- functions themselves cost microseconds.
-- Prints the medians and the spread, and the twin's when it ran, then the
-- Bayesian sampler's suggestion time against the number of observations
-- and what a process per trial costs, and writes build/tune_bench.md.
--
--   build/moongrad bench/tune_samplers.lua [--seeds 20] [--only branin,levy5]
--       [--samplers random,tpe,tpe-multivariate,bayes,cmaes] [--no-peer]
--       [--md build/tune_bench.md]
local tune = require "moongrad.tune"
local mg = require "moongrad"
local here = (arg[0]:match("^(.*/)") or "./")
local harness = dofile(here .. "harness.lua")
local fmt = string.format

local opts = {seeds = 20, only = nil, samplers = "random,tpe,tpe-multivariate,bayes,cmaes",
              peer = true,
              md = "build/tune_bench.md"}
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--seeds" then opts.seeds, i = tonumber(arg[i + 1]), i + 1
    elseif a == "--only" then opts.only, i = arg[i + 1], i + 1
    elseif a == "--samplers" then opts.samplers, i = arg[i + 1], i + 1
    elseif a == "--no-peer" then opts.peer = false
    elseif a == "--md" then opts.md, i = arg[i + 1], i + 1
    else error("tune_samplers.lua: unknown argument " .. a, 0) end
    i = i + 1
  end
  if not opts.seeds or opts.seeds < 1 then error("tune_samplers.lua: --seeds needs a number >= 1", 0) end
end

-- The functions themselves are the specs' (spec/support/test_functions.lua);
-- each search asks the trial for the coordinates, then evaluates.
local fns = dofile(here .. "../spec/support/test_functions.lua")

local function point(trial, d, low, high)
  local v = {}
  for j = 1, d do v["x" .. j] = trial:suggest_float("x" .. j, low, high) end
  return v
end

local FUNCTIONS = {
  {name = "branin", trials = 40, minimum = 0.397887, f = function(trial)
    return fns.branin{x1 = trial:suggest_float("x1", -5, 10), x2 = trial:suggest_float("x2", 0, 15)}
  end},
  {name = "hartmann6", trials = 60, minimum = -3.32237, f = function(trial)
    return fns.hartmann6(point(trial, 6, 0, 1))
  end},
  {name = "levy5", trials = 60, minimum = 0, f = function(trial)
    return fns.levy(point(trial, 5, -10, 10), 5)
  end},
}

local function wanted(list, name)
  if not list then return true end
  for item in list:gmatch("[^,]+") do if item == name then return true end end
  return false
end

-- The samplers by the names the table shows: a study's sampler name, or
-- Optuna's multivariate TPE's twin.
local function make_sampler(name)
  if name == "tpe-multivariate" then return tune.TPESampler{multivariate = true} end
  return name
end

-- One search: --> regret, seconds per trial.
local function search(fn, sampler, seed)
  local study = tune.Study{sampler = make_sampler(sampler), seed = seed}
  local t0 = mg.clock()
  for _ = 1, fn.trials do
    local trial = study:ask()
    study:tell(trial, fn.f(trial))
  end
  return study:best().value - fn.minimum, (mg.clock() - t0) / fn.trials
end

local function spread(xs)
  local s = {table.unpack(xs)}
  table.sort(s)
  return s[1], s[#s]
end

local rows = {}
print(fmt("tune samplers: %d seeds; regret = best found - minimum (median, min-max); the time " ..
          "per trial (ask, suggestions, tell)", opts.seeds))
for _, fn in ipairs(FUNCTIONS) do
  if wanted(opts.only, fn.name) then
    for sampler in opts.samplers:gmatch("[^,]+") do
      local regrets, times = {}, {}
      for seed = 1, opts.seeds do
        regrets[seed], times[seed] = search(fn, sampler, seed)
      end
      local lo, hi = spread(regrets)
      local row = {fn = fn.name, sampler = "moongrad " .. sampler, regret = harness.median(regrets),
                   lo = lo, hi = hi, ms = 1e3 * harness.median(times)}
      rows[#rows + 1] = row
      print(fmt("%-10s %-18s regret %10.4g (%.3g-%.3g)  %8.2f ms/trial", row.fn, row.sampler,
                row.regret, lo, hi, row.ms))
      io.stdout:flush()
    end
  end
end

-- The twin, where Optuna is installed: the same functions, trials and seeds.
if opts.peer then
  local py = "/usr/bin/python3"
  local have = os.execute(py .. " -c 'import optuna' 2>/dev/null")
  if not have then
    print("(python3-optuna is not installed: Optuna's side is not run; make bench installs it)")
  else
    local cmd = fmt("%s %s --seeds %d%s", py, harness.sh_quote(here .. "tune_samplers.py"),
                    opts.seeds, opts.only and (" --only " .. harness.sh_quote(opts.only)) or "")
    for line in harness.run(cmd, "tune_samplers.py"):gmatch("[^\n]+") do
      local f, s, r, lo, hi, ms = line:match("^ROW (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$")
      if f then
        local row = {fn = f, sampler = "optuna " .. s, regret = tonumber(r), lo = tonumber(lo),
                     hi = tonumber(hi), ms = tonumber(ms)}
        rows[#rows + 1] = row
        print(fmt("%-10s %-18s regret %10.4g (%.3g-%.3g)  %8.2f ms/trial", row.fn, row.sampler,
                  row.regret, row.lo, row.hi, row.ms))
      end
    end
  end
end

-- The Bayesian sampler's suggestion time against the number of observations
-- (issue 24's target: 100 ms at 200 in 6-D on one thread): a history of
-- random points of Hartmann-6, the median of 5 suggestions after a warm-up.
local suggest_rows = {}
if wanted(opts.samplers, "bayes") then
  local bayes = require "moongrad.tune.bayes"
  local rng = require "moongrad.tune.rng"
  local space = require "moongrad.tune.space"
  local threads = mg.get_num_threads()
  mg.set_num_threads(1)
  local dims = {}
  for j = 1, 6 do dims["x" .. j] = tune.uniform(0, 1) end
  local sp = space.new(dims)
  print("BayesSampler suggestion time, 6-D, one thread (median of 5):")
  for _, n in ipairs {20, 60, 120, 200} do
    local r, history = rng.new(7), {}
    for i = 1, n do
      local v = {}
      for j = 1, 6 do v["x" .. j] = r:uniform() end
      history[i] = {number = i, state = "complete", values = v, loss = fns.hartmann6(v)}
    end
    local sampler, times = bayes.BayesSampler(), {}
    for rep = 0, 5 do
      local t0 = mg.clock()
      sampler:suggest(sp, history, {rng = rng.new(1, rep), number = n + 1, seed = 1})
      if rep > 0 then times[rep] = mg.clock() - t0 end
    end
    suggest_rows[#suggest_rows + 1] = {n = n, ms = 1e3 * harness.median(times)}
    print(fmt("  %3d observations  %7.1f ms", n, suggest_rows[#suggest_rows].ms))
  end
  mg.set_num_threads(threads)
end

-- What a process per trial costs: a trivial objective run in this process,
-- in a process forked per trial (isolate) and in two workers, with and
-- without 256 MiB of data loaded (a fork copies the page tables of all of
-- it and the child's exit tears them down). Median of 3 runs of 40 trials.
local fork_rows = {}
do
  local function per_trial(o)
    local times = {}
    for rep = 1, 3 do
      local study = tune.Study{space = {x = tune.uniform(0, 1)}, seed = rep}
      local t0 = mg.clock()
      o.trials, o.verbose = 40, false
      study:optimize(function(c) return c.x end, o)
      times[rep] = (mg.clock() - t0) / 40
    end
    return 1e3 * harness.median(times)
  end
  print("the cost of a trial's process, trivial objective (median of 3 x 40 trials):")
  for _, loaded in ipairs {0, 256} do
    local data = loaded > 0 and mg.ones(loaded * 1024 * 1024 // 4) or nil
    local row = {loaded = loaded, inline = per_trial{workers = 0},
                 isolate = per_trial{isolate = true}, two = per_trial{workers = 2}}
    fork_rows[#fork_rows + 1] = row
    print(fmt("  %3d MiB loaded: in this process %.3f ms, a fork per trial %.2f ms, " ..
              "2 workers %.2f ms", loaded, row.inline, row.isolate, row.two))
    data = nil
    collectgarbage()
  end
end

local md = {"| function | sampler | median regret (min-max) | ms per trial |", "|---|---|---|---|"}
for _, r in ipairs(rows) do
  md[#md + 1] = fmt("| %s | %s | %.4g (%.3g-%.3g) | %.2f |", r.fn, r.sampler, r.regret, r.lo, r.hi, r.ms)
end
local dir = opts.md:match("^(.*)/[^/]*$")
if dir then os.execute("mkdir -p " .. harness.sh_quote(dir)) end
local f = assert(io.open(opts.md, "w"))
if #suggest_rows > 0 then
  md[#md + 1] = "\n| observations (6-D) | BayesSampler suggestion, ms (1 thread) |"
  md[#md + 1] = "|---|---|"
  for _, r in ipairs(suggest_rows) do md[#md + 1] = fmt("| %d | %.1f |", r.n, r.ms) end
end
md[#md + 1] = "\n| data loaded | in this process, ms per trial | a fork per trial | 2 workers |"
md[#md + 1] = "|---|---|---|---|"
for _, r in ipairs(fork_rows) do
  md[#md + 1] = fmt("| %d MiB | %.3f | %.2f | %.2f |", r.loaded, r.inline, r.isolate, r.two)
end
f:write(fmt("%d seeds, %s\n\n", opts.seeds, os.date("!%Y-%m-%d %H:%M UTC")), table.concat(md, "\n"), "\n")
f:close()
print("wrote " .. opts.md)
