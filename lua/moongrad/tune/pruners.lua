-- moongrad.tune.pruners: stopping trials that are clearly behind.
--
-- A pruner answers trial:should_prune() from what the trial reported so far
-- and what every other trial of the study reported:
--
--   pruner:should_prune(trial, others) --> boolean
--
--   trial   {number, intermediate = {{step, loss}, ...}} in report order,
--           values already turned into losses (minimised)
--   others  the study's other trials, each {number, state, intermediate}
--
-- MedianPruner is the median stopping rule (Golovin et al. 2017, "Google
-- Vizier"), with Optuna's semantics: at the trial's latest step, stop it
-- when the best loss it has reported so far is worse than the median of
-- what the completed trials reported at that same step.
local util = require "moongrad.util"
local type, ipairs, error, fmt, sort, floor = type, ipairs, error, string.format, table.sort,
  math.floor

local pruners = {}

local Median = {name = "median"}
Median.__index = Median

local function count_option(o, key, default, min)
  local v = o[key]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= floor(v) or v < min then
    error(fmt("tune.MedianPruner: %s must be an integer >= %d, got %s", key, min, tostring(v)), 3)
  end
  return v
end

-- tune.MedianPruner{startup_trials = 5, warmup_steps = 0, interval_steps = 1,
--                   min_trials = 1}
--   startup_trials  no pruning until this many trials have completed
--   warmup_steps    a trial is never pruned at a step below this
--   interval_steps  consult the rule every this many reports
--   min_trials      completed trials that must have reported the step
function pruners.MedianPruner(opts)
  local o = util.check_options(opts, "tune.MedianPruner",
    {startup_trials = true, warmup_steps = true, interval_steps = true, min_trials = true}, 2)
  return setmetatable({
    startup_trials = count_option(o, "startup_trials", 5, 0),
    warmup_steps = count_option(o, "warmup_steps", 0, 0),
    interval_steps = count_option(o, "interval_steps", 1, 1),
    min_trials = count_option(o, "min_trials", 1, 1),
  }, Median)
end

-- The loss `t` reported at `step`, or nil.
local function at_step(t, step)
  for i = #t.intermediate, 1, -1 do
    local r = t.intermediate[i]
    if r[1] == step then return r[2] end
  end
end

function Median:should_prune(trial, others)
  local rep = trial.intermediate
  if #rep == 0 then return false end
  local step = rep[#rep][1]
  if step < self.warmup_steps or #rep % self.interval_steps ~= 0 then return false end
  local completed, at = 0, {}
  for _, o in ipairs(others) do
    if o.state == "complete" then
      completed = completed + 1
      local v = at_step(o, step)
      if v and v == v then at[#at + 1] = v end
    end
  end
  if completed < self.startup_trials or #at < self.min_trials then return false end
  local best = math.huge
  for _, r in ipairs(rep) do
    if r[2] == r[2] and r[2] < best then best = r[2] end
  end
  if best ~= best or best == math.huge then return true end   -- only NaN reported
  sort(at)
  local n = #at
  local median = n % 2 == 1 and at[(n + 1) // 2] or (at[n // 2] + at[n // 2 + 1]) / 2
  return best > median
end

-- Never prunes: what a study uses without a pruner.
local Nop = {name = "none"}
Nop.__index = Nop
function pruners.NopPruner() return setmetatable({}, Nop) end
function Nop:should_prune() return false end

function pruners.from_name(name)
  if name == "median" then return pruners.MedianPruner() end
  if name == "halving" then return require("moongrad.tune.halving").SuccessiveHalvingPruner() end
  if name == "none" then return pruners.NopPruner() end
  -- level 5: from_name <- component <- study.new <- tune.Study <- the user
  error(fmt("tune.Study: unknown pruner '%s' (median, halving, none or a pruner object)",
            tostring(name)), 5)
end

return pruners
