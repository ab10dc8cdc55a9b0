-- moongrad.tune.halving: asynchronous successive halving (ASHA; Li, Jamieson,
-- Rostamizadeh et al., "A System for Massively Parallel Hyperparameter
-- Tuning", MLSys 2020, arXiv:1810.05934), with the semantics of Optuna's
-- SuccessiveHalvingPruner. Re-exported as tune.SuccessiveHalvingPruner.
--
--   local pruner = tune.SuccessiveHalvingPruner{min_resource = 1, reduction_factor = 3}
--   pruner:should_prune(trial, others) --> true to stop the trial now
--
-- Rungs. Rung k (k = 0, 1, 2, ...) sits at step
--   min_resource * reduction_factor ^ (min_early_stopping_rate + k),
-- so with the defaults at steps 1, 3, 9, 27, ... A trial's value at a rung
-- is the loss of its first report at a step >= the rung's step (a trial
-- that reports every second step is judged at step 4 for the rung at 3).
-- There is no top rung: the objective decides how long a promoted trial
-- runs (the paper's maximum resource R).
--
-- The decision. should_prune looks at the rungs the trial's latest report
-- reaches for the first time (its earlier reports all stood below them);
-- with no such rung it returns false, so a trial that never reaches a rung
-- step is never pruned. At each newly reached rung, lowest first, the
-- competitors are the trial's own value there and the rung values of every
-- other trial that reached the rung, whatever its state now (complete,
-- pruned, failed or running, as in Optuna; NaN values are left out). Of
-- the n competitors the best floor(n / eta) are promoted: the trial goes
-- on if its loss is <= the floor(n / eta)-th smallest (ties promote).
-- Fewer than eta competitors: the paper's ASHA would wait until the rung
-- holds eta trials before promoting anyone, but a trial here cannot be
-- suspended, so - as in Optuna - it is promoted only if it is the best so
-- far (<= the smallest; the first trial at a rung always goes on). A NaN
-- loss at a rung prunes. A rung is judged once, by the report that first
-- reaches it: a promoted trial is never demoted when better trials arrive
-- later, which is what makes the scheme asynchronous. The study must
-- therefore call should_prune after every report.
--
-- Options (all optional):
--   min_resource             number >= 1, default 1: the step of rung 0
--                            (with min_early_stopping_rate 0).
--   reduction_factor         integer >= 2, default 3: eta, the ratio of
--                            consecutive rung steps and the inverse of the
--                            fraction promoted.
--   min_early_stopping_rate  integer >= 0, default 0: s, skips the first s
--                            rungs (the paper's minimum early-stopping rate).
local util = require "moongrad.util"

local type, error, ipairs, tostring, setmetatable = type, error, ipairs, tostring, setmetatable
local floor, max, huge = math.floor, math.max, math.huge
local fmt, sort = string.format, table.sort

local NAME = "tune.SuccessiveHalvingPruner"

local halving = {}

local Pruner = {}
Pruner.__index = Pruner

local KNOWN = {min_resource = true, reduction_factor = true, min_early_stopping_rate = true}

local function finite(v) return type(v) == "number" and v == v and v > -huge and v < huge end

function halving.SuccessiveHalvingPruner(opts)
  opts = util.check_options(opts, NAME, KNOWN, 2)
  local p = {min_resource = 1, reduction_factor = 3, min_early_stopping_rate = 0}
  -- name, least value, whether it must be an integer
  for _, o in ipairs{{"min_resource", 1, false}, {"reduction_factor", 2, true},
                     {"min_early_stopping_rate", 0, true}} do
    local key, least, integer = o[1], o[2], o[3]
    local v = opts[key]
    if v ~= nil then
      if not finite(v) or v < least or (integer and v ~= floor(v)) then
        error(fmt("%s: %s must be %s >= %d, got %s", NAME, key,
                  integer and "an integer" or "a number", least, tostring(v)), 2)
      end
      p[key] = integer and floor(v) or v
    end
  end
  return setmetatable(p, Pruner)
end

-- The step of rung k (k = 0, 1, ...), by repeated multiplication so that
-- integer settings give integer steps.
function Pruner:rung_step(k)
  local step = self.min_resource
  for _ = 1, self.min_early_stopping_rate + k do step = step * self.reduction_factor end
  return step
end

-- The rung steps up to and including `last` (a step).
function Pruner:rungs(last)
  local out, k = {}, 0
  while true do
    local step = self:rung_step(k)
    if step > last then return out end
    out[#out + 1] = step
    k = k + 1
  end
end

-- A trial's loss at the rung at `step`: its first report at a step >= step.
local function value_at(t, step)
  local iv = t.intermediate
  if type(iv) ~= "table" then return nil end
  for _, rep in ipairs(iv) do
    if rep[1] >= step then return rep[2] end
  end
  return nil
end

-- Whether `loss` is among the best floor(n / eta) of the n competitors at
-- the rung at `step` (the best one when n < eta).
local function promotable(self, number, loss, step, others)
  local values = {loss}
  for _, t in ipairs(others) do
    if t.number ~= number then
      local v = value_at(t, step)
      if type(v) == "number" and v == v then values[#values + 1] = v end
    end
  end
  sort(values)
  local k = max(1, #values // self.reduction_factor)
  return loss <= values[k]
end

-- pruner:should_prune(trial, others) --> bool. trial: {number, intermediate
-- = {{step, loss}, ...}} in report order, the latest last; others: every
-- other trial of the study, {number, state, intermediate}. Call it after
-- each report (see the header).
function Pruner:should_prune(trial, others)
  local iv = trial.intermediate
  if type(iv) ~= "table" or #iv == 0 then return false end
  local latest = iv[#iv]
  local step, loss = latest[1], latest[2]
  local before = -huge
  for i = 1, #iv - 1 do before = max(before, iv[i][1]) end
  local k = 0
  while true do
    local rung = self:rung_step(k)
    if rung > step then return false end
    if rung > before then                       -- this report is the first to reach it
      if loss ~= loss then return true end
      if not promotable(self, trial.number, loss, rung, others or {}) then return true end
    end
    k = k + 1
  end
end

return halving
