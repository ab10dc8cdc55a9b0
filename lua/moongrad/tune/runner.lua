-- moongrad.tune.runner: running trials, in this process or in workers.
--
-- With workers > 1 (or isolate, trial_timeout or logs: see study:optimize)
-- every trial runs in a process forked for it from the study's process, so
-- whatever the script loaded before optimize() (a data set, a tokenizer)
-- is shared copy-on-write, a trial that leaks or corrupts
-- memory cannot hurt the next one, and a crash (a signal, os.exit) is
-- recorded as a failed trial. The worker talks to the study over a socket,
-- one JSON object per line:
--
--   worker -> study   {"t":"report","step":s,"value":v}   trial:report
--                     {"t":"prune?"}                       trial:should_prune
--                     {"t":"suggest","name":n,"spec":d}     trial:suggest_*
--                     {"t":"attr","key":k,"value":v}        trial:set
--                     {"t":"done","value":v} | {"t":"error","message":m,"raised":b}
--   study -> worker   {"prune":true|false}, {"value":v} | {"error":m}
--
-- The study asks the pruner (it alone sees every trial) and answers at once,
-- so should_prune compares against trials finished a moment ago on another
-- worker. Otherwise trials run one after another in the calling process
-- (run_inline): the objective's side effects stay, a debugger sees it, no
-- fork is paid for, and a crash ends the study's process. workers = "mpi"
-- runs them on the other ranks of an mpirun job, with the same messages
-- (moongrad.tune.mpi_runner).
local mg = require "moongrad"
local json = require "moongrad.json"
local util = require "moongrad.util"
local space_mod = require "moongrad.tune.space"
local type, pairs, ipairs, error, tostring, pcall, xpcall = type, pairs, ipairs, error,
  tostring, pcall, xpcall
local fmt, floor, huge = string.format, math.floor, math.huge
local traceback = debug.traceback

local runner = {}

-- The handle an objective gets ----------------------------------------------------

local Trial = {}
Trial.__index = Trial

local function finite(x) return type(x) == "number" and x == x and x ~= huge and x ~= -huge end

-- trial:report(step, value): an intermediate validation metric (after an
-- epoch, say); pruners compare trials step by step.
function Trial:report(step, value)
  if self.directions then
    error("trial:report: a multi-objective study cannot prune, so it takes no intermediate " ..
          "values (as in Optuna); return the objectives' values at the end", 2)
  end
  if type(step) ~= "number" or step ~= floor(step) then
    error(fmt("trial:report: step must be an integer, got %s", tostring(step)), 2)
  end
  if type(value) ~= "number" then
    error(fmt("trial:report: value must be a number, got %s", type(value)), 2)
  end
  self._chan.report(floor(step), value + 0.0)
end

-- trial:should_prune() --> true when the pruner says this trial is clearly
-- behind; the objective should then return (its last report stands as its
-- value and the trial is recorded as pruned).
function Trial:should_prune()
  if self.directions then
    error("trial:should_prune: a multi-objective study cannot prune (as in Optuna)", 2)
  end
  if self._chan.prune() then
    self.pruned = true
    return true
  end
  return false
end

-- trial:set(key, value): keep something with the trial's record (epochs
-- trained, a test metric); value must be JSON-able data.
function Trial:set(key, value)
  if type(key) ~= "string" then error("trial:set: key must be a string", 2) end
  json.encode(value, "trial:set: value")   -- fail here, in the objective
  self._chan.attr(key, value)
end

-- Define-by-run: the objective asks for a parameter where it needs one,
-- as in Optuna, and a parameter asked for only on some branch is searched
-- only where that branch runs. The study's sampler chooses the value from
-- the trials that asked for the same parameter with the same range; the
-- same name asked again in one trial gives the same value.
local function suggest(trial, who, name, make, ...)
  if type(name) ~= "string" or name == "" then
    error(fmt("trial:%s: the name must be a non-empty string, got %s", who, tostring(name)), 3)
  end
  local ok, dim = pcall(make, ...)
  if not ok then
    error(fmt("trial:%s(%q): %s", who, name, (tostring(dim):gsub("^tune%.%w+: ", ""))), 3)
  end
  local v = trial._chan.suggest(name, dim:_spec())
  trial.config[name] = v
  return v
end

-- The dimension suggest_float or suggest_int describes: {log = true} and
-- {step = s} as in Optuna, which refuses the two together.
local function numeric(who, opts, plain, logd)
  local o = util.check_options(opts, "trial:" .. who, {log = true, step = true}, 3)
  if o.log and o.step ~= nil then
    error(fmt("trial:%s: step and log cannot be used together (as in Optuna)", who), 3)
  end
  if o.step ~= nil then
    return function(low, high) return plain(low, high, {step = o.step}) end
  end
  return o.log and logd or plain
end

-- trial:suggest_float(name, low, high [, {log = true} | {step = s}])
--   --> a float in [low, high] (one of low, low + s, ..., high with a step)
function Trial:suggest_float(name, low, high, opts)
  return suggest(self, "suggest_float", name,
                 numeric("suggest_float", opts, space_mod.uniform, space_mod.loguniform), low, high)
end

-- trial:suggest_int(name, low, high [, {log = true} | {step = s}])
--   --> an integer in low..high (one of low, low + s, ..., high with a step)
function Trial:suggest_int(name, low, high, opts)
  return suggest(self, "suggest_int", name,
                 numeric("suggest_int", opts, space_mod.int, space_mod.logint), low, high)
end

-- trial:suggest_categorical(name, {a, b, ...}) --> one of the choices
function Trial:suggest_categorical(name, choices)
  return suggest(self, "suggest_categorical", name, space_mod.choice, choices)
end

-- t.direction: the study's, "minimize" or "maximize" (TrialCallback's
-- default monitor follows it); t.directions instead in a multi-objective
-- study.
local function new_trial(t, chan)
  return setmetatable({number = t.number, config = t.config, seed = t.seed,
                       direction = t.direction, directions = t.directions, _chan = chan}, Trial)
end

-- A multi-objective result: a list of k numbers --> the list as floats, or
-- nil and why it is not one. A NaN among them fails the trial; infinite
-- values count, as a single infinite value does.
function runner.check_values(res, k)
  if type(res) ~= "table" then
    return nil, fmt("the objective returned %s; a study with %d directions needs a list of %d " ..
                    "numbers", res == nil and "nothing" or ("a " .. type(res)), k, k)
  end
  if #res ~= k then
    return nil, fmt("the objective returned %d values; the study has %d directions", #res, k)
  end
  local out = {}
  for i = 1, k do
    local v = res[i]
    if type(v) ~= "number" then
      return nil, fmt("value %d of the objective's result is a %s, not a number", i, type(v))
    end
    if v ~= v then return nil, fmt("value %d of the objective's result is nan", i) end
    out[i] = v + 0.0
  end
  return out
end

-- Runs the objective and turns what happened into {value=} or {error=};
-- raised marks an error the objective raised (optimize re-raises it
-- unless told to catch). An infinite value is a value, as in Optuna; NaN
-- and anything not a number fail the trial without stopping the study.
local function call_objective(objective, trial)
  mg.manual_seed(trial.seed)
  local ok, res = xpcall(objective, function(e)
    local msg = tostring(e)
    -- the objective's frames, down to where the study called it
    local trace = traceback(msg, 2)
    local cut = trace:find("\n%s*%[C%]: in function 'xpcall'")
    return {message = msg, trace = cut and trace:sub(1, cut - 1) or trace}
  end, trial.config, trial)
  if not ok then return {error = res.message, trace = res.trace, raised = true} end
  if trial.pruned then return {pruned = true} end
  if trial.directions then
    local values, why = runner.check_values(res, #trial.directions)
    if not values then return {error = why} end
    return {value = values}
  end
  if type(res) ~= "number" then
    return {error = fmt("the objective returned %s; it must return a number (the metric to %s)",
                        res == nil and "nothing" or ("a " .. type(res)), "optimise")}
  end
  if res ~= res then return {error = "the objective returned nan"} end
  return {value = res + 0.0}
end

-- A trial run away from the study (a forked worker, another MPI rank): the
-- objective's calls become messages through send(msg); answer() waits for
-- the study's reply to a prune question. The outcome is sent too, and
-- returned.
local function run_remote(objective, t, send, answer)
  local chan = {
    report = function(step, value) send {t = "report", step = step, value = value} end,
    attr = function(k, v) send {t = "attr", key = k, value = v} end,
    prune = function()
      send {t = "prune?"}
      return answer().prune == true
    end,
    suggest = function(name, spec)
      send {t = "suggest", name = name, spec = spec}
      local a = answer()
      if a.error then error(a.error, 0) end
      return a.value
    end,
  }
  local out = call_objective(objective, new_trial(t, chan))
  if out.error then send {t = "error", message = out.error, raised = out.raised}
  else send {t = "done", value = out.value, pruned = out.pruned} end
  return out
end

-- The study side ------------------------------------------------------------------
--
-- `study` supplies: study:_next() --> number, values, config, seed or nil;
-- study:_pruner_says(rec) --> bool; study:_finish(rec, outcome).

-- The handle of a trial run in the study's process: its reports and
-- attributes go straight into rec (study:ask hands these out too).
function runner.local_trial(study, rec)
  return new_trial({number = rec.number, config = rec.config, seed = rec.seed,
                    direction = study.direction, directions = study.directions}, {
    report = function(step, value) rec.intermediate[#rec.intermediate + 1] = {step, value} end,
    prune = function() return study:_pruner_says(rec) end,
    attr = function(k, v) rec.attrs[k] = v end,
    suggest = function(name, spec) return study:_suggest(rec, name, spec) end,
  })
end

-- Trials one after another in this process. Each seeds the generator
-- from its trial's seed; the caller's generator state is put back after,
-- as if the trial had run elsewhere.
local function run_inline(study, objective)
  while true do
    local rec = study:_next()
    if not rec then return end
    local rng_state = mg.get_rng_state()
    local out = call_objective(objective, runner.local_trial(study, rec))
    mg.set_rng_state(rng_state)
    study:_finish(rec, out)
  end
end

-- In the forked worker: run one trial, talk over fd, never return.
local function worker_main(fd, rec, objective, o)
  local code = 0
  local ok, err = pcall(function()
    local inbuf = ""
    local function send(msg)
      local okk, e = mg._proc_send(fd, json.encode(msg) .. "\n")
      if not okk then error("tune worker: lost the study (" .. tostring(e) .. ")", 0) end
    end
    if o.log_path then
      local redirected, why = mg._proc_redirect(o.log_path)
      if not redirected then -- the trial fails, and the study says why
        send {t = "error", message = why}
        return
      end
    end
    mg.set_num_threads(o.threads)
    local function answer()
      while not inbuf:find("\n") do
        local data = mg._proc_recv(fd)
        if not data or data == "" then error("tune worker: lost the study", 0) end
        inbuf = inbuf .. data
      end
      local line
      line, inbuf = inbuf:match("^([^\n]*)\n(.*)$")
      return json.decode(line)
    end
    local out = run_remote(objective, {number = rec.number, config = rec.config, seed = rec.seed,
                                       direction = o.direction, directions = o.directions},
                           send, answer)
    -- the study prints the message; the log file gets the traceback
    if out.error and o.log_path then io.stderr:write(out.trace or out.error, "\n") end
  end)
  if not ok then
    pcall(io.stderr.write, io.stderr, tostring(err), "\n")
    code = 3
  end
  mg._proc_exit(code)
end

local function describe_end(how, code, name)
  if how == "exit" then return fmt("the worker exited with code %d before finishing", code) end
  return fmt("the worker died: signal %d (%s)", code, tostring(name))
end

-- One message line from where rec runs; reply(msg) answers a prune
-- question. --> the trial's outcome ({value, pruned} or {error}) once it
-- has one, else nil.
function runner.handle(study, rec, line, reply)
  local okd, msg = pcall(json.decode, line)
  if not okd or type(msg) ~= "table" then
    return {error = "the worker sent something unreadable: " .. line:sub(1, 80)}
  end
  if msg.t == "report" then
    rec.intermediate[#rec.intermediate + 1] = {msg.step, msg.value}
  elseif msg.t == "attr" then
    rec.attrs[msg.key] = msg.value
  elseif msg.t == "prune?" then
    reply {prune = study:_pruner_says(rec)}
  elseif msg.t == "suggest" then
    local ok, v = pcall(study._suggest, study, rec, msg.name, msg.spec)
    reply(ok and {value = v} or {error = tostring(v)})
  elseif msg.t == "done" then
    return {value = msg.value, pruned = msg.pruned}
  elseif msg.t == "error" then
    return {error = msg.message, raised = msg.raised == true}
  end
end

local function run_forked(study, objective, o)
  local active, count = {}, 0     -- fd -> worker
  local function fds()
    local list = {}
    for fd in pairs(active) do list[#list + 1] = fd end
    table.sort(list)
    return list
  end

  local function start(rec)
    local log_path = o.logs and fmt("%s/trial-%04d.log", o.logs, rec.number) or nil
    local pid, fd = mg._proc_spawn()
    if not pid then error("tune: cannot start a worker: " .. tostring(fd), 0) end
    if pid == 0 then
      for other in pairs(active) do mg._proc_close(other) end
      worker_main(fd, rec, objective, {threads = o.threads, log_path = log_path,
                                       direction = study.direction,
                                       directions = study.directions})
    end
    active[fd] = {pid = pid, fd = fd, rec = rec, buf = "", started = mg.clock()}
    count = count + 1
  end

  local function finish(w, outcome)
    active[w.fd] = nil
    count = count - 1
    mg._proc_close(w.fd)
    local how, code, name = mg._proc_wait(w.pid, true)
    if not outcome then -- a crash is as loud as an error; trial_timeout's kill is not
      outcome = {error = w.killed or describe_end(how, code, name), crashed = not w.killed}
    end
    study:_finish(w.rec, outcome)
  end

  local function handle(w, line)
    return runner.handle(study, w.rec, line, function(msg)
      mg._proc_send(w.fd, json.encode(msg) .. "\n")
    end)
  end

  local function kill_all()
    for _, w in pairs(active) do
      mg._proc_kill(w.pid, "KILL")
      mg._proc_close(w.fd)
      mg._proc_wait(w.pid, true)
    end
    active, count = {}, 0
  end

  local ok, err = pcall(function()
    while true do
      while count < o.workers do
        local rec = study:_next()
        if not rec then break end
        start(rec)
      end
      if count == 0 then return end
      local ready = mg._proc_poll(fds(), 200)
      for _, fd in ipairs(ready) do
        local w = active[fd]
        local data = mg._proc_recv(fd)
        if not data or data == "" then
          finish(w, w.outcome)
        else
          w.buf = w.buf .. data
          for line in w.buf:gmatch("([^\n]*)\n") do
            local out = handle(w, line)
            if out then w.outcome = out end
          end
          w.buf = w.buf:match("([^\n]*)$")
        end
      end
      if o.trial_timeout then
        local now = mg.clock()
        for _, w in pairs(active) do
          if not w.killed and now - w.started > o.trial_timeout then
            w.killed = fmt("timed out after %g s (trial_timeout)", o.trial_timeout)
            mg._proc_kill(w.pid, "KILL")
          end
        end
      end
    end
  end)
  if not ok then
    kill_all()   -- their trials stay out of the file: a resumed study runs them again
    error(err, 0)
  end
end

runner.run_remote = run_remote

function runner.run(study, objective, o)
  if o.workers == 0 then return run_inline(study, objective) end
  if o.workers == "mpi" then return require("moongrad.tune.mpi_runner").run(study, objective, o) end
  return run_forked(study, objective, o)
end

return runner
