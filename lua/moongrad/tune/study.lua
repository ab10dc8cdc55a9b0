-- moongrad.tune.study: a search, its trials and its file.
--
-- A study owns the space, the sampler that proposes configurations, the
-- pruner that stops trials early, and the records of every trial. Trial
-- numbers run 1..trials; a study opened on an existing file keeps the
-- trials recorded there and runs only the numbers still missing, so an
-- interrupted search resumes where it stopped (a trial that was running
-- when the search was killed runs again from its start).
local mg = require "moongrad"
local util = require "moongrad.util"
local space_mod = require "moongrad.tune.space"
local samplers = require "moongrad.tune.samplers"
local pruners = require "moongrad.tune.pruners"
local store = require "moongrad.tune.store"
local runner = require "moongrad.tune.runner"
local rng = require "moongrad.tune.rng"
local pareto = require "moongrad.tune.pareto"
local json = require "moongrad.json"
local type, ipairs, pairs, error, tostring, print = type, ipairs, pairs, error, tostring, print
local fmt, concat, sort, floor, huge, max, min = string.format, table.concat, table.sort,
  math.floor, math.huge, math.max, math.min

local Study = {}
Study.__index = Study

local function check_integer(who, key, v, lo)
  if type(v) ~= "number" or v ~= floor(v) or v < lo then
    error(fmt("%s: %s must be an integer >= %d, got %s", who, key, lo, tostring(v)), 4)
  end
  return floor(v)
end

-- What a study shows of itself: trial lines, the leaderboard, the plot
-- and the CSV (moongrad.tune.report).
local report = require "moongrad.tune.report"
for name, f in pairs(report.methods) do Study[name] = f end
local value_text = report.value_text

-- A sampler or pruner given by name or as an object with the method `method`.
local function component(what, v, from_name, method)
  if type(v) == "string" then v = from_name(v) end
  if type(v) ~= "table" or type(v[method]) ~= "function" then
    error(fmt("tune.Study: %s must be a name or an object with %s()", what, method), 4)
  end
  return v
end

local function check_direction(dir, what)
  if dir ~= "minimize" and dir ~= "maximize" then
    error(fmt("tune.Study: %s must be \"minimize\" or \"maximize\", got %s", what, tostring(dir)), 4)
  end
  return dir
end

-- tune.Study{space = {...}, direction = "minimize" | "maximize",
--            directions = {"minimize", "maximize", ...},
--            sampler = "random" | "grid" | "bayes" | "tpe" | "cmaes" | "nsga2" | sampler,
--            pruner = nil | "median" | "halving" | pruner,
--            path = "runs/x/study.jsonl", seed = 0, name = "..."}
--
-- directions makes a multi-objective study, as Optuna's: the objective
-- returns one value per direction (a list), trials are compared by Pareto
-- dominance, study:best_trials() is the Pareto front and study:best()
-- raises. Such a study cannot prune (a pruner compares one metric), and
-- its sampler must be able to search several objectives
-- (sampler.multi_objective: random, grid, tpe, nsga2).
local function new(opts)
  local o = util.check_options(opts, "tune.Study", {space = true, direction = true,
    directions = true, sampler = true, pruner = true, path = true, seed = true, name = true}, 3)
  local s = setmetatable({}, Study)
  -- without a space (or with fixed values only) the objective asks for
  -- its parameters itself: trial:suggest_float and friends
  s.space = space_mod.new(o.space or {}, 3)
  if o.directions ~= nil then
    if o.direction ~= nil then
      error("tune.Study: give direction (one objective) or directions (several), not both", 3)
    end
    if type(o.directions) ~= "table" or #o.directions < 1 then
      error("tune.Study: directions must be a list such as {\"minimize\", \"maximize\"}", 3)
    end
    s.directions, s.signs = {}, {}
    for i, d in ipairs(o.directions) do
      s.directions[i] = check_direction(d, fmt("directions[%d]", i))
      s.signs[i] = d == "maximize" and -1 or 1
    end
    s.sign = 1
  else
    local dir = check_direction(o.direction or "minimize", "direction")
    s.direction, s.sign = dir, dir == "maximize" and -1 or 1
  end
  s.seed = o.seed == nil and 0 or check_integer("tune.Study", "seed", o.seed, 0)
  s.sampler = component("sampler", o.sampler or "random", samplers.from_name, "suggest")
  if s.sampler.budget and #s.space.names == 0 then
    error("tune.Study: the grid sampler needs a space with dimensions to lay its grid over " ..
          "(space = {x = tune.choice{...}, ...})", 3)
  end
  if s.directions and not s.sampler.multi_objective then
    error(fmt("tune.Study: the %s sampler searches one objective; a study with directions " ..
              "needs one that searches several (\"nsga2\", \"tpe\", \"random\", \"grid\")",
              tostring(s.sampler.name or "given")), 3)
  end
  if s.directions and o.pruner ~= nil and o.pruner ~= "none" then
    error("tune.Study: a study with directions cannot prune (a pruner compares trials by one " ..
          "metric; Optuna refuses it too)", 3)
  end
  s.pruner = component("pruner", o.pruner or "none", pruners.from_name, "should_prune")
  if o.path ~= nil and type(o.path) ~= "string" then
    error("tune.Study: path must be a string (the study file)", 3)
  end
  if o.path and o.path:find("\0", 1, true) then
    error("tune.Study: the path contains a NUL byte", 3)
  end
  s.path, s.name = o.path, o.name
  s.records = {}       -- number -> record (finished or running)
  s.queue = {}         -- parameters enqueue_trial gave, for the next trials
  if s.path then s:_load() end
  return s
end

function Study:_header()
  return {moongrad_study = 1, name = self.name, direction = self.direction,
          directions = self.directions,
          space = self.space:describe(), fixed = self.space.fixed,
          sampler = self.sampler.name or "custom", seed = self.seed}
end

-- Opens the study's file: checks it was made for the same search, takes
-- its trials.
function Study:_load()
  local header, records = store.load(self.path)
  if not header then return end
  local where = "tune.Study: " .. self.path
  local function goal(d, ds) return ds and concat(ds, ", ") or tostring(d) end
  local was, now_goal = goal(header.direction, header.directions),
    goal(self.direction, self.directions)
  if was ~= now_goal then
    error(fmt("%s was made to %s, not to %s; use another path for a new study", where, was,
              now_goal), 0)
  end
  local now = self.space:describe()
  for name, d in pairs(now) do
    local was = header.space and header.space[name]
    if was ~= d then
      error(fmt("%s searched %s as %s, now %s; use another path for a new study", where, name,
                tostring(was or "nothing (it was not in the space)"), d), 0)
    end
  end
  for name, d in pairs(header.space or {}) do
    if not now[name] then
      error(fmt("%s searched %s (%s), which the space no longer has; use another path for a new "
                .. "study", where, name, d), 0)
    end
  end
  if json.encode(header.fixed or {}) ~= json.encode(self.space.fixed) then
    error(fmt("%s was made with other fixed values (%s, now %s); use another path for a new study",
              where, json.encode(header.fixed or {}), json.encode(self.space.fixed)), 0)
  end
  for _, r in ipairs(records) do
    if type(r.number) == "number" and type(r.params) == "table" then
      r.intermediate, r.attrs, r.dists = r.intermediate or {}, r.attrs or {}, r.dists or {}
      r.specs = r.specs or {}
      self.records[r.number] = r
    end
  end
end

-- Trials in number order (finished ones, and running ones while optimize runs).
function Study:trials()
  local list = {}
  for _, r in pairs(self.records) do list[#list + 1] = r end
  sort(list, function(a, b) return a.number < b.number end)
  return list
end

-- The declared space's values among a trial's parameters.
function Study:_declared(params)
  local v = {}
  for _, name in ipairs(self.space.names) do v[name] = params[name] end
  return v
end

-- Every parameter name: the declared ones, then those the objectives
-- asked for (define-by-run), each list sorted.
function Study:param_names()
  local names, extra, seen = {}, {}, {}
  for i, n in ipairs(self.space.names) do names[i], seen[n] = n, true end
  for _, r in pairs(self.records) do
    for n in pairs(r.dists or {}) do
      if not seen[n] then extra[#extra + 1], seen[n] = n, true end
    end
  end
  sort(extra)
  for _, n in ipairs(extra) do names[#names + 1] = n end
  return names
end

-- A trial as samplers see it, with the given values of its parameters:
-- losses to minimise (one, or in a multi-objective study one per
-- objective).
function Study:_seen(r, values)
  local losses
  if self.directions and r.values then
    losses = {}
    for k, v in ipairs(r.values) do losses[k] = self.signs[k] * v end
  end
  return {number = r.number, state = r.state, values = values, losses = losses,
          loss = r.value ~= nil and self.sign * r.value or nil, intermediate = r.intermediate}
end

function Study:_history()
  local h = {}
  for i, r in ipairs(self:trials()) do h[i] = self:_seen(r, self:_declared(r.params)) end
  return h
end

local function as_losses(sign, intermediate)
  local out = {}
  for i, r in ipairs(intermediate) do out[i] = {r[1], sign * r[2]} end
  return out
end

function Study:_pruner_says(rec)
  local others = {}
  for _, r in ipairs(self:trials()) do
    if r ~= rec then
      others[#others + 1] = {number = r.number, state = r.state,
                             intermediate = as_losses(self.sign, r.intermediate)}
    end
  end
  return self.pruner:should_prune({number = rec.number,
                                   intermediate = as_losses(self.sign, rec.intermediate)},
                                  others) == true
end

-- A new trial numbered `number`, marked running: its parameters are the
-- next enqueued ones (any missing filled in by the sampler), else the
-- sampler's proposal.
function Study:_start(number)
  local values = {}
  if #self.space.names > 0 then
    local ctx = {number = number, seed = self.seed, rng = rng.new(self.seed, number)}
    values = self.sampler:suggest(self.space, self:_history(), ctx)
    local bad = self.space:mismatch(values)
    if bad then
      error(fmt("tune: the sampler proposed %s = %s, which is not in the space", bad,
                tostring(values[bad])), 0)
    end
  end
  local queued, dynamic = table.remove(self.queue, 1), {}
  for k, v in pairs(queued or {}) do
    if self.space.dims[k] then values[k] = v else dynamic[k] = v end
  end
  local rec = {number = number, state = "running", params = values,
               config = self.space:config(values), intermediate = {}, attrs = {},
               dists = {}, specs = {}, queued = dynamic, relative = self:_relative(number),
               seed = rng.new(self.seed, number, 1):bits() % 2147483647,
               started = os.date("!%Y-%m-%dT%H:%M:%SZ"), t0 = mg.clock()}
  self.records[number] = rec
  return rec
end

-- For a sampler that models parameters together (sampler.relative): the
-- define-by-run parameters every complete trial asked for with the same
-- dimension, proposed jointly for trial `number` up front, as
-- {name = {value, description}}; _suggest hands them out when the
-- objective asks for them as before. nil when there are none.
function Study:_relative(number)
  if not self.sampler.relative then return nil end
  local common
  for _, r in pairs(self.records) do
    if r.state == "complete" then
      if not common then
        common = {}
        for name, d in pairs(r.dists or {}) do common[name] = d end
      else
        for name, d in pairs(common) do
          if not r.dists or r.dists[name] ~= d then common[name] = nil end
        end
      end
    end
  end
  if not common or next(common) == nil then return nil end
  local dims = {}
  for name, d in pairs(common) do
    for _, t in pairs(self.records) do
      if t.dists and t.dists[name] == d and t.specs and t.specs[name] then
        dims[name] = space_mod.from_spec(t.specs[name])
        break
      end
    end
    if not dims[name] then return nil end -- a study file from before specs were kept
  end
  local sp = space_mod.new(dims)
  local history = {}
  for _, r in ipairs(self:trials()) do
    local v, fits = {}, r.dists ~= nil
    for name, d in pairs(common) do
      if not fits or r.dists[name] ~= d then fits = false break end
      v[name] = r.params[name]
    end
    if fits then history[#history + 1] = self:_seen(r, v) end
  end
  local ctx = {number = number, seed = self.seed, rng = rng.new(self.seed, number, 0x52454C)}
  local values = self.sampler:suggest(sp, history, ctx)
  local out = {}
  for name, d in pairs(common) do out[name] = {values[name], d} end
  return out
end

-- A define-by-run parameter of the running trial rec: spec describes its
-- dimension (trial:suggest_*). The sampler proposes it from the trials
-- that asked for the same name with the same dimension, each judged by its
-- value; asked again in one trial, it is the same value.
function Study:_suggest(rec, name, spec)
  local dim = space_mod.from_spec(spec)
  local desc = dim:describe()
  if self.space.dims[name] or self.space.fixed[name] ~= nil then
    error(fmt("trial:suggest: %s is in the study's space already; read it from config.%s",
              name, name), 0)
  end
  local had = rec.dists[name]
  if had then
    if had ~= desc then
      error(fmt("trial:suggest: %s was asked for as %s in this trial, now as %s", name, had,
                desc), 0)
    end
    return rec.params[name]
  end
  local v = rec.queued and rec.queued[name]
  local joint = rec.relative and rec.relative[name]
  if v == nil and joint and joint[2] == desc then
    v = joint[1]
  elseif v ~= nil then
    if not dim:contains(v) then
      error(fmt("trial:suggest: enqueue_trial gave %s = %s, which %s does not hold", name,
                tostring(v), desc), 0)
    end
  else
    if self.sampler.budget then
      error("trial:suggest: the grid sampler searches the declared space only; give the " ..
            "study another sampler", 0)
    end
    local one = space_mod.new({[name] = dim})
    local history = {}
    for _, r in ipairs(self:trials()) do
      if r ~= rec and r.dists and r.dists[name] == desc then
        history[#history + 1] = self:_seen(r, {[name] = r.params[name]})
      end
    end
    local k = 0
    for _ in pairs(rec.dists) do k = k + 1 end
    local ctx = {number = rec.number, seed = self.seed, rng = rng.new(self.seed, rec.number, 2 + k)}
    v = self.sampler:suggest(one, history, ctx)[name]
  end
  rec.params[name], rec.dists[name], rec.specs[name] = v, desc, spec
  if rec.config then rec.config[name] = v end
  return v
end

-- The next trial to run, marked running, or nil when there is none (the
-- budget is used, the time is up, or a trial raised an error optimize
-- re-raises).
function Study:_next()
  local run = self._run
  if run.stop then return nil end
  if run.deadline and mg.clock() >= run.deadline then return nil end
  local number
  while run.cursor <= run.trials do
    if not self.records[run.cursor] then number = run.cursor; break end
    run.cursor = run.cursor + 1
  end
  if not number then return nil end
  run.cursor = number + 1
  return self:_start(number)
end

function Study:_finish(rec, out)
  rec.seconds = floor((mg.clock() - rec.t0) * 1000 + 0.5) / 1000
  rec.t0, rec.config, rec.queued, rec.relative = nil, nil, nil, nil
  if out.error then
    rec.state, rec.error = "failed", out.error
    local run = self._run
    if (out.raised or out.crashed) and run and not run.catch and not run.stop then
      run.stop = {rec = rec, trace = out.trace, crashed = out.crashed}
    end
  elseif out.pruned then
    rec.state = "pruned"
    local last = rec.intermediate[#rec.intermediate]
    rec.value = last and last[2] or nil
  elseif self.directions then
    rec.state, rec.values = "complete", out.value
  else
    rec.state, rec.value = "complete", out.value
  end
  if self.path then
    store.append(self.path, {number = rec.number, state = rec.state, params = rec.params,
                             dists = next(rec.dists) and rec.dists or nil,
                             specs = next(rec.specs) and rec.specs or nil,
                             value = rec.value, values = rec.values,
                             intermediate = rec.intermediate,
                             attrs = rec.attrs, error = rec.error, seconds = rec.seconds,
                             started = rec.started, seed = rec.seed})
  end
  if self._run and self._run.verbose then self:_print_trial(rec) end
end

-- study:optimize(objective, {trials = n, timeout = seconds, catch = false,
--                            workers = 1, isolate = false, threads = auto,
--                            trial_timeout = seconds, logs = dir,
--                            verbose = true, ranks_per_trial = 1})
--   --> study:best(), or study:best_trials() when the study has directions
--
-- trials, timeout or both bound the search (a grid sampler's grid too).
-- An error the objective raises stops the search: the trial is recorded
-- as failed and optimize re-raises the error with the trial's parameters,
-- once the trials running meanwhile have ended; catch = true records
-- failures and goes on, as Optuna's catch does. A NaN or non-number result
-- fails its trial quietly; an infinite one is a value.
--
-- With one worker (the default) trials run in this process, one after
-- another. workers = n > 1 runs n at a time, each in a process forked for
-- it (moongrad.tune.runner); isolate = true, trial_timeout and logs fork
-- one too. workers = 0 always runs in this process.
--
-- workers = "mpi" (under mpirun -np N, N >= 2, the same script on every
-- rank): rank 1 runs the study as here, ranks 2..N run its trials
-- (moongrad.tune.mpi_runner). On ranks 2..N optimize returns rank 1's
-- study:best() once the whole study is done; the study object there stays
-- as it was opened and never writes its file. threads applies to ranks
-- 2..N (default: what dist.init() gives each rank); trial_timeout and logs
-- are refused. ranks_per_trial = k runs each trial on a group of k ranks
-- (N - 1 must be a multiple of k) that is, inside the objective, the
-- whole dist job: data-parallel training (fit{distributed = true}) over
-- the group. Every rank of a group must make the same calls (reports,
-- prune questions); the group's first rank speaks for it.
function Study:optimize(objective, opts)
  if type(objective) ~= "function" then
    error("study:optimize: the objective must be a function(config, trial) returning a number", 2)
  end
  local o = util.check_options(opts, "study:optimize", {trials = true, workers = true,
    threads = true, timeout = true, trial_timeout = true, logs = true, verbose = true,
    ranks_per_trial = true, catch = true, isolate = true}, 2)
  for _, key in ipairs {"catch", "isolate", "verbose"} do
    if o[key] ~= nil and type(o[key]) ~= "boolean" then
      error(fmt("study:optimize: %s must be true or false, got %s", key, tostring(o[key])), 2)
    end
  end
  local budget = self.sampler.budget and self.sampler:budget(self.space)
  local trials, unbounded = o.trials, false
  if trials == nil then
    if budget then
      trials = budget
    elseif o.timeout ~= nil then
      trials, unbounded = math.maxinteger, true
    else
      error("study:optimize: say when the study ends: {trials = 30}, {timeout = seconds} or both", 2)
    end
  end
  trials = check_integer("study:optimize", "trials", trials, 1)
  if budget then trials, unbounded = min(trials, budget), false end
  local mpi = o.workers == "mpi"
  if type(o.workers) == "string" and not mpi then
    error(fmt("study:optimize: workers must be an integer >= 0 or \"mpi\", got %s", o.workers), 2)
  end
  local workers = mpi and "mpi" or o.workers == nil and 1
                  or check_integer("study:optimize", "workers", o.workers, 0)
  if workers == 0 and o.isolate then
    error("study:optimize: isolate = true forks a process per trial; workers = 0 runs them in " ..
          "this one", 2)
  end
  -- one worker runs trials here unless something needs a process per trial
  if workers == 1 and not (o.isolate or o.trial_timeout or o.logs) then workers = 0 end
  local threads = o.threads
  if threads == nil and not mpi then
    threads = workers == 0 and mg.get_num_threads() or max(1, mg._cpu_count() // workers)
  end
  -- under mpi a rank keeps what dist.init() gave it unless threads is set
  if threads ~= nil then threads = check_integer("study:optimize", "threads", threads, 1) end
  for _, key in ipairs {"timeout", "trial_timeout"} do
    if o[key] ~= nil and (type(o[key]) ~= "number" or not (o[key] > 0)) then
      error(fmt("study:optimize: %s must be a number of seconds > 0, got %s", key,
                tostring(o[key])), 2)
    end
  end
  if o.trial_timeout and workers == 0 then
    error("study:optimize: trial_timeout needs a process per trial, which workers = 0 rules out "
          .. "(a trial in this process cannot be stopped from outside)", 2)
  end
  if mpi and o.trial_timeout then
    error("study:optimize: trial_timeout is not supported with workers = \"mpi\" (rank 1 cannot "
          .. "stop a trial running on another rank); use timeout, or watch the time in the "
          .. "objective", 2)
  end
  local k = 1
  if o.ranks_per_trial ~= nil then
    k = check_integer("study:optimize", "ranks_per_trial", o.ranks_per_trial, 1)
    if not mpi and k ~= 1 then
      error(fmt("study:optimize: ranks_per_trial = %d needs workers = \"mpi\" (a trial runs " ..
                "on a group of MPI ranks)", k), 2)
    end
  end
  if mpi and o.logs ~= nil then
    error("study:optimize: logs is not supported with workers = \"mpi\" (a rank's output goes "
          .. "to mpirun's); use mpirun --output-filename dir", 2)
  end
  if mpi then
    local mpi_runner = require "moongrad.tune.mpi_runner"
    local rank, size = mpi_runner.start()
    if size < 2 then
      error("study:optimize: workers = \"mpi\" needs at least 2 ranks (rank 1 runs the study): "
            .. "launch with mpirun -np N", 2)
    end
    if (size - 1) % k ~= 0 then
      error(fmt("study:optimize: ranks_per_trial = %d does not divide the %d trial ranks of " ..
                "mpirun -np %d (rank 1 runs the study, ranks 2..%d the trials in groups of " ..
                "%d); launch with -np N where N - 1 is a multiple of %d, e.g. -np %d", k,
                size - 1, size, size, k, k, 1 + k * ((size - 2) // k + 1)), 2)
    end
    -- every rank takes part in forming the groups
    local group = mpi_runner.group(rank, k)
    -- ranks 2..N run trials; the study, its file and its records are rank 1's
    if rank > 1 then
      return mpi_runner.work(objective, {threads = threads, group = group})
    end
  end
  if o.logs ~= nil then
    if type(o.logs) ~= "string" then error("study:optimize: logs must be a directory path", 2) end
    if o.logs:find("\0", 1, true) then -- os.execute would cut the path there
      error("study:optimize: the logs path contains a NUL byte", 2)
    end
    os.execute(fmt("mkdir -p '%s'", o.logs:gsub("'", "'\\''")))
  end
  if self.path then store.write_header(self.path, self:_header()) end
  self._run = {trials = trials, unbounded = unbounded, cursor = 1, verbose = o.verbose ~= false,
               deadline = o.timeout and mg.clock() + o.timeout or nil, catch = o.catch == true}
  local ok, err = pcall(runner.run, self, objective,
                        {workers = workers, threads = threads, logs = o.logs,
                         trial_timeout = o.trial_timeout, ranks_per_trial = k})
  -- trials still marked running were interrupted: not part of the study
  for n, r in pairs(self.records) do
    if r.state == "running" and not r.asked then self.records[n] = nil end
  end
  local stop = self._run.stop
  self._run = nil
  if not ok then
    if tostring(err):find("interrupted!", 1, true) then
      local c = self:counts()
      err = fmt("study:optimize: interrupted with %d trials finished%s", c.complete + c.pruned
                + c.failed, self.path and ("; they are in " .. self.path
                .. ": run again with the same path to resume") or "")
    end
    error(err, 0)
  end
  if stop then error(self:_loud_error(stop), 0) end
  return self:_result()
end

-- What optimize returns: study:best(), or the Pareto front of a study
-- with directions.
function Study:_result()
  if self.directions then return self:best_trials() end
  return self:best()
end

-- The error optimize raises for a trial whose objective raised (or whose
-- process crashed), when not told to catch; nil without one. stop defaults
-- to the running search's.
function Study:_loud_error(stop)
  stop = stop or (self._run and self._run.stop)
  if not stop then return nil end
  local rec = stop.rec
  return fmt("study:optimize: trial %d (%s) %s: %s\n(the trial is recorded as failed; pass " ..
             "catch = true to record failures and go on)", rec.number,
             self:_params_text(rec.params), stop.crashed and "failed" or "raised an error",
             stop.trace or rec.error)
end

-- study:enqueue_trial(params): the next trial (asked or run by optimize)
-- tries these parameters, as Optuna's enqueue_trial; a parameter left out
-- is the sampler's. Each must be in the space.
function Study:enqueue_trial(params)
  if type(params) ~= "table" then
    error("study:enqueue_trial: expects a table of parameters, e.g. {lr = 0.01}", 2)
  end
  for k, v in pairs(params) do
    if type(k) ~= "string" then
      error(fmt("study:enqueue_trial: parameter names are strings, got %s", tostring(k)), 2)
    end
    if self.space.fixed[k] ~= nil then
      error(fmt("study:enqueue_trial: %s is a fixed value of the space (%s), not searched", k,
                value_text(self.space.fixed[k])), 2)
    end
    local d = self.space.dims[k]
    -- another name is a define-by-run parameter, checked when asked for
    if d and not d:contains(v) then
      error(fmt("study:enqueue_trial: %s = %s is not in the space (%s)", k, tostring(v),
                self.space.dims[k]:describe()), 2)
    end
  end
  local copy = {}
  for k, v in pairs(params) do copy[k] = v end
  self.queue[#self.queue + 1] = copy
end

-- study:ask() --> trial: a new trial, running, numbered after every trial
-- the study holds, with trial.config and trial.params to try and the
-- objective's trial methods (report, should_prune, set). Finish it with
-- study:tell. For a loop that drives the search itself, as Optuna's ask.
function Study:ask()
  if self._run then error("study:ask: optimize is running this study", 2) end
  if self.path and not self._header_written then
    store.write_header(self.path, self:_header())
    self._header_written = true
  end
  local number = 1
  for n in pairs(self.records) do
    if n >= number then number = n + 1 end
  end
  local rec = self:_start(number)
  rec.asked = true
  local trial = runner.local_trial(self, rec)
  trial.params = rec.params
  return trial
end

-- study:tell(trial, value) ends an asked trial: value is its result (a
-- number; an infinite one counts, NaN fails it), or tell(trial, nil,
-- "pruned") (its last report stands) or tell(trial, message, "failed").
-- trial may be the trial or its number. --> the trial's record.
function Study:tell(trial, value, state)
  local number = type(trial) == "table" and trial.number or trial
  local rec = self.records[number]
  if not rec or not rec.asked then
    error(fmt("study:tell: no asked trial %s (ask for one with study:ask())", tostring(number)), 2)
  end
  if rec.state ~= "running" then
    error(fmt("study:tell: trial %d has already been told (%s)", number, rec.state), 2)
  end
  state = state or "complete"
  local out
  if state == "complete" and self.directions then
    local values, why = runner.check_values(value, #self.directions)
    if not values then
      if type(value) == "table" and #value == #self.directions then -- a NaN fails the trial
        out = {error = why:gsub("the objective's result", "the values told")}
      else
        error("study:tell: " .. why:gsub("the objective returned", "told")
                                   :gsub("the objective's result", "the values told"), 2)
      end
    else
      out = {value = values}
    end
  elseif state == "pruned" and self.directions then
    error("study:tell: a multi-objective study cannot prune; tell the values, or \"failed\"", 2)
  elseif state == "complete" then
    if type(value) ~= "number" then
      error(fmt("study:tell: the value must be a number, got %s (to end the trial otherwise " ..
                "say so: tell(trial, nil, \"pruned\") or tell(trial, why, \"failed\"))",
                type(value)), 2)
    end
    out = value ~= value and {error = "the value told was nan"} or {value = value + 0.0}
  elseif state == "pruned" then
    out = {pruned = true}
  elseif state == "failed" then
    out = {error = value ~= nil and tostring(value) or "told as failed"}
  else
    error(fmt("study:tell: state must be \"complete\", \"pruned\" or \"failed\", got %s",
              tostring(state)), 2)
  end
  self:_finish(rec, out)
  return rec
end

-- A copy of a record with its config: the declared space's values, fixed
-- ones and define-by-run parameters, as the objective saw them.
function Study:_with_config(r)
  local b = {}
  for k, v in pairs(r) do b[k] = v end
  b.config = self.space:config(r.params)
  for name in pairs(r.dists or {}) do b.config[name] = r.params[name] end
  return b
end

-- The best complete trial: {number, value, params, config, ...}, or nil.
function Study:best()
  if self.directions then
    error("study:best: a study with several directions has no single best trial; " ..
          "study:best_trials() gives the Pareto front", 2)
  end
  local best
  for _, r in ipairs(self:trials()) do
    if r.state == "complete" and (not best or self.sign * r.value < self.sign * best.value) then
      best = r
    end
  end
  if not best then return nil end
  return self:_with_config(best)
end

-- study:best_trials() --> the complete trials no other complete trial
-- dominates (the Pareto front), in number order, each {number, values,
-- params, config, ...}. In a single-objective study: the trials sharing
-- the best value, as Optuna's best_trials.
function Study:best_trials()
  local done, points = {}, {}
  for _, r in ipairs(self:trials()) do
    if r.state == "complete" then
      done[#done + 1] = r
      local seen = self:_seen(r, {})
      points[#points + 1] = seen.losses or {seen.loss}
    end
  end
  local out = {}
  if #done == 0 then return out end
  for _, i in ipairs(pareto.fronts(points)[1]) do out[#out + 1] = self:_with_config(done[i]) end
  return out
end

-- Counts of trials by state.
function Study:counts()
  local c = {complete = 0, pruned = 0, failed = 0, running = 0}
  for _, r in pairs(self.records) do c[r.state] = (c[r.state] or 0) + 1 end
  return c
end

return {new = new, Study = Study}
