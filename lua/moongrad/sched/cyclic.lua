-- moongrad.sched.cyclic: schedules that go up and down — warm restarts
-- (CosineAnnealingWarmRestarts), cyclical rates (CyclicLR) and the 1cycle
-- policy (OneCycleLR). CyclicLR and OneCycleLR also cycle momentum
-- (SGD-like groups) or beta1 (Adam-like groups), inversely to the rate.
-- Expressions follow torch.optim.lr_scheduler 1.13 term by term.
local base = require "moongrad.sched.base"
local common = require("moongrad.sched.decay").common

local Scheduler, parse, checks = base.Scheduler, base.parse, base.checks
local check_optimizer, per_group, supports, show = base.check_optimizer, base.per_group,
                                                   base.supports, base.show
local type, ipairs, error, select = type, ipairs, error, select
local cos, pi, floor, log = math.cos, math.pi, math.floor, math.log
local unpack = table.unpack
local fmt = string.format

local cyclic = {}

-- b ^ n for integers, staying an integer (torch's int ** int).
local function ipow(b, n)
  local r = 1
  for _ = 1, n do r = r * b end
  return r
end

-- CosineAnnealingWarmRestarts --------------------------------------------------

local CAWR = Scheduler:extend("CosineAnnealingWarmRestarts")
CAWR._state_checks = {T_0 = checks.positive_int, T_i = checks.positive_int,
  T_mult = checks.positive_int, T_cur = checks.finite_nonnegative, eta_min = checks.nonnegative}

-- Cosine annealing from base_lr to eta_min over T_i steps, then a restart;
-- T_i starts at T_0 and is multiplied by T_mult at each restart.
-- s:step() advances one step; s:step(epoch) jumps to a (fractional) epoch,
-- e.g. s:step(epoch + i / iters_per_epoch) after each batch.
function cyclic.CosineAnnealingWarmRestarts(opt, opts)
  local name = "CosineAnnealingWarmRestarts"
  check_optimizer(name, opt)
  local o = parse(name, opts, common{
    T_0 = {required = true, check = checks.positive_int},
    T_mult = {default = 1, check = checks.positive_int},
    eta_min = {default = 0, check = checks.nonnegative},
  })
  local self = Scheduler.new(CAWR, opt, o.last_epoch, o.verbose)
  self.T_0, self.T_i, self.T_mult, self.eta_min = o.T_0, o.T_0, o.T_mult, o.eta_min
  self.T_cur = o.last_epoch
  self:_initial_step()
  return self
end

function CAWR:_get_lr()
  local out = {}
  for i, b in ipairs(self.base_lrs) do
    out[i] = self.eta_min + (b - self.eta_min) * (1 + cos(pi * self.T_cur / self.T_i)) / 2
  end
  return out
end

function CAWR:step(epoch)
  if epoch == nil and self.last_epoch < 0 then epoch = 0 end
  if epoch == nil then
    epoch = self.last_epoch + 1
    self.T_cur = self.T_cur + 1
    if self.T_cur >= self.T_i then
      self.T_cur = self.T_cur - self.T_i
      self.T_i = self.T_i * self.T_mult
    end
  else
    if type(epoch) ~= "number" or epoch ~= epoch then
      error(fmt("%s: step(epoch) expects a number, got %s", self.__name, show(epoch)), 2)
    end
    if epoch < 0 then
      error(fmt("%s: expected a non-negative epoch, got %s", self.__name, show(epoch)), 2)
    end
    local T_0, T_mult = self.T_0, self.T_mult
    if epoch >= T_0 then
      if T_mult == 1 then
        self.T_cur = epoch % T_0
      else
        -- Python's math.log(x, b) is log(x) / log(b), not Lua's log2 for b == 2.
        local n = floor(log(epoch / T_0 * (T_mult - 1) + 1) / log(T_mult))
        self.T_cur = epoch - T_0 * (ipow(T_mult, n) - 1) / (T_mult - 1)
        self.T_i = T_0 * ipow(T_mult, n)
      end
    else
      self.T_i = T_0
      self.T_cur = epoch
    end
  end
  self.last_epoch = floor(epoch)
  self:_apply(self:_get_lr(), epoch)
end

-- CyclicLR ---------------------------------------------------------------------

local CyclicLR = Scheduler:extend("CyclicLR")
CyclicLR._state_checks = {
  mode = checks.one_of("triangular", "triangular2", "exp_range"), gamma = checks.positive,
  scale_mode = checks.one_of("cycle", "iterations"), total_size = checks.positive,
  step_ratio = checks.unit_open,
}

-- The rate climbs from base_lr to max_lr over step_size_up steps and comes
-- back over step_size_down (default: step_size_up); the height of each
-- cycle is scaled by mode ("triangular": 1, "triangular2": halved every
-- cycle, "exp_range": gamma ^ step) or by scale_fn(x), x being the cycle
-- number (scale_mode = "cycle", from 1) or the step (scale_mode =
-- "iterations"). base_lr replaces the groups' lr. With cycle_momentum,
-- momentum goes the opposite way between max_momentum and base_momentum.
function cyclic.CyclicLR(opt, opts)
  check_optimizer("CyclicLR", opt)
  local o = parse("CyclicLR", opts, common{
    base_lr = {required = true, check = checks.number_or_list},
    max_lr = {required = true, check = checks.number_or_list},
    step_size_up = {default = 2000, check = checks.positive},
    step_size_down = {check = checks.nonnegative},
    mode = {default = "triangular",
            check = checks.one_of("triangular", "triangular2", "exp_range")},
    gamma = {default = 1.0, check = checks.positive},
    scale_fn = {check = checks.callable},
    scale_mode = {default = "cycle", check = checks.one_of("cycle", "iterations")},
    cycle_momentum = {default = true, check = checks.boolean},
    base_momentum = {default = 0.8, check = checks.number_or_list},
    max_momentum = {default = 0.9, check = checks.number_or_list},
  })
  local groups = opt.param_groups
  local base_lrs = per_group("CyclicLR", "base_lr", opt, o.base_lr)
  if o.last_epoch == -1 then
    for i, g in ipairs(groups) do g.lr = base_lrs[i] end
  end
  local max_lrs = per_group("CyclicLR", "max_lr", opt, o.max_lr)
  local base_momentums, max_momentums
  if o.cycle_momentum then
    if not supports(opt, "momentum") then
      error("CyclicLR: cycle_momentum needs an optimizer with a momentum option "
            .. "(pass cycle_momentum = false)", 2)
    end
    local bm = per_group("CyclicLR", "base_momentum", opt, o.base_momentum)
    if o.last_epoch == -1 then
      for i, g in ipairs(groups) do g.momentum = bm[i] end
    end
    base_momentums = {}
    for i, g in ipairs(groups) do base_momentums[i] = g.momentum end
    max_momentums = per_group("CyclicLR", "max_momentum", opt, o.max_momentum)
  end

  local self = Scheduler.new(CyclicLR, opt, o.last_epoch, o.verbose)
  local up = o.step_size_up + 0.0
  local down = o.step_size_down and o.step_size_down + 0.0 or up
  self.max_lrs = max_lrs
  self.total_size = up + down
  self.step_ratio = up / self.total_size
  self.mode, self.gamma = o.mode, o.gamma
  if o.scale_fn == nil then
    self.scale_mode = o.mode == "exp_range" and "iterations" or "cycle"
  else
    self._scale_fn_custom = o.scale_fn
    self.scale_mode = o.scale_mode
  end
  self.cycle_momentum = o.cycle_momentum
  self.base_momentums, self.max_momentums = base_momentums, max_momentums
  self:_initial_step()
  self.base_lrs = base_lrs
  return self
end

function CyclicLR:scale_fn(x)
  if self._scale_fn_custom then return self._scale_fn_custom(x) end
  if self.mode == "triangular" then return 1. end
  if self.mode == "triangular2" then return 1 / (2. ^ (x - 1)) end
  return self.gamma ^ x
end

function CyclicLR:_get_lr()
  local e = self.last_epoch
  local cycle = floor(1 + e / self.total_size)
  local x = 1. + e / self.total_size - cycle
  local scale_factor
  if x <= self.step_ratio then
    scale_factor = x / self.step_ratio
  else
    scale_factor = (x - 1) / (self.step_ratio - 1)
  end
  local s = self:scale_fn(self.scale_mode == "cycle" and cycle or e)
  local lrs = {}
  for i, b in ipairs(self.base_lrs) do
    local base_height = (self.max_lrs[i] - b) * scale_factor
    lrs[i] = b + base_height * s
  end
  if self.cycle_momentum then
    for i, g in ipairs(self.optimizer.param_groups) do
      local base_height = (self.max_momentums[i] - self.base_momentums[i]) * scale_factor
      g.momentum = self.max_momentums[i] - base_height * s
    end
  end
  return lrs
end

-- OneCycleLR ---------------------------------------------------------------------

local OneCycleLR = Scheduler:extend("OneCycleLR")
OneCycleLR._state_checks = {total_steps = checks.positive_int,
  anneal_strategy = checks.one_of("cos", "linear")}

-- The 1cycle policy: from max_lr / div_factor up to max_lr over the first
-- pct_start of total_steps (or epochs * steps_per_epoch), then down to
-- initial_lr / final_div_factor; with three_phase, back down to the initial
-- rate symmetrically first and only then to the minimum. Momentum (or
-- Adam's beta1) cycles inversely between max_momentum and base_momentum.
-- Stepping past total_steps is an error.
function cyclic.OneCycleLR(opt, opts)
  check_optimizer("OneCycleLR", opt)
  local o = parse("OneCycleLR", opts, common{
    max_lr = {required = true, check = checks.number_or_list},
    total_steps = {check = checks.positive_int},
    epochs = {check = checks.positive_int},
    steps_per_epoch = {check = checks.positive_int},
    pct_start = {default = 0.3, check = checks.unit},
    anneal_strategy = {default = "cos", check = checks.one_of("cos", "linear")},
    cycle_momentum = {default = true, check = checks.boolean},
    base_momentum = {default = 0.85, check = checks.number_or_list},
    max_momentum = {default = 0.95, check = checks.number_or_list},
    div_factor = {default = 25., check = checks.positive},
    final_div_factor = {default = 1e4, check = checks.positive},
    three_phase = {default = false, check = checks.boolean},
  })
  local total = o.total_steps
  if total == nil then
    if o.epochs == nil or o.steps_per_epoch == nil then
      error("OneCycleLR: give total_steps, or both epochs and steps_per_epoch", 2)
    end
    total = o.epochs * o.steps_per_epoch
  end
  local p = o.pct_start
  local phases
  if o.three_phase then
    phases = {
      {end_step = (p * total + 0.0) - 1, start_lr = "initial_lr", end_lr = "max_lr",
       start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = (2 * p * total + 0.0) - 2, start_lr = "max_lr", end_lr = "initial_lr",
       start_momentum = "base_momentum", end_momentum = "max_momentum"},
      {end_step = total - 1, start_lr = "initial_lr", end_lr = "min_lr",
       start_momentum = "max_momentum", end_momentum = "max_momentum"},
    }
  else
    phases = {
      {end_step = (p * total + 0.0) - 1, start_lr = "initial_lr", end_lr = "max_lr",
       start_momentum = "max_momentum", end_momentum = "base_momentum"},
      {end_step = total - 1, start_lr = "max_lr", end_lr = "min_lr",
       start_momentum = "base_momentum", end_momentum = "max_momentum"},
    }
  end

  local groups = opt.param_groups
  local max_lrs = per_group("OneCycleLR", "max_lr", opt, o.max_lr)
  if o.last_epoch == -1 then
    for i, g in ipairs(groups) do
      g.initial_lr = max_lrs[i] / o.div_factor
      g.max_lr = max_lrs[i]
      g.min_lr = g.initial_lr / o.final_div_factor
    end
  end
  local use_beta1 = false
  if o.cycle_momentum then
    if not supports(opt, "momentum") and not supports(opt, "betas") then
      error("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas "
            .. "(pass cycle_momentum = false)", 2)
    end
    use_beta1 = supports(opt, "betas")
    local max_m = per_group("OneCycleLR", "max_momentum", opt, o.max_momentum)
    local base_m = per_group("OneCycleLR", "base_momentum", opt, o.base_momentum)
    if o.last_epoch == -1 then
      for i, g in ipairs(groups) do
        if use_beta1 then
          g.betas = {max_m[i], select(2, unpack(g.betas))}
        else
          g.momentum = max_m[i]
        end
        g.max_momentum, g.base_momentum = max_m[i], base_m[i]
      end
    end
  end
  if o.last_epoch ~= -1 then
    for i, g in ipairs(groups) do
      if g.max_lr == nil or g.min_lr == nil or (o.cycle_momentum and g.max_momentum == nil) then
        error(fmt("OneCycleLR: param_groups[%d] lacks the max_lr/min_lr/momentum entries "
                  .. "that resuming with last_epoch = %d needs", i, o.last_epoch), 2)
      end
    end
  end

  local self = Scheduler.new(OneCycleLR, opt, o.last_epoch, o.verbose)
  self.total_steps = total
  self._schedule_phases = phases
  self.anneal_strategy = o.anneal_strategy
  self.cycle_momentum = o.cycle_momentum
  self.use_beta1 = use_beta1
  self:_initial_step()
  return self
end

local anneal = {
  -- Cosine anneal from start to stop as pct goes from 0 to 1.
  cos = function(start, stop, pct)
    local cos_out = cos(pi * pct) + 1
    return stop + (start - stop) / 2.0 * cos_out
  end,
  -- Linear anneal from start to stop as pct goes from 0 to 1.
  linear = function(start, stop, pct) return (stop - start) * pct + start end,
}

function OneCycleLR:_get_lr()
  local step_num = self.last_epoch
  if step_num > self.total_steps then
    error(fmt("OneCycleLR: step %d is past the end of the schedule (total_steps = %d)",
              step_num, self.total_steps), 3)
  end
  local f = anneal[self.anneal_strategy]
  local phases = self._schedule_phases
  local lrs = {}
  for gi, g in ipairs(self.optimizer.param_groups) do
    local start_step, lr, momentum = 0, nil, nil
    for i, phase in ipairs(phases) do
      local end_step = phase.end_step
      if step_num <= end_step or i == #phases then
        if end_step == start_step then
          error(fmt("OneCycleLR: phase %d of the schedule is empty (total_steps = %d is too "
                    .. "small for pct_start)", i, self.total_steps), 3)
        end
        local pct = (step_num - start_step) / (end_step - start_step)
        lr = f(g[phase.start_lr], g[phase.end_lr], pct)
        if self.cycle_momentum then
          momentum = f(g[phase.start_momentum], g[phase.end_momentum], pct)
        end
        break
      end
      start_step = phase.end_step
    end
    lrs[gi] = lr
    if self.cycle_momentum then
      if self.use_beta1 then
        g.betas = {momentum, select(2, unpack(g.betas))}
      else
        g.momentum = momentum
      end
    end
  end
  return lrs
end

return cyclic
