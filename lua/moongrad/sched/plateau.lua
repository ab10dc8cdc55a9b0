-- moongrad.sched.plateau: ReduceLROnPlateau, the scheduler driven by a
-- metric rather than by the step count. torch.optim.lr_scheduler 1.13's
-- logic: a metric "improves" when it beats the best so far by more than the
-- threshold; after more than `patience` steps without improvement every
-- group's lr is multiplied by factor (not below min_lr, and not at all when
-- the change would be smaller than eps), then `cooldown` steps are ignored.
local base = require "moongrad.sched.base"

local Scheduler, parse, checks = base.Scheduler, base.parse, base.checks
local check_optimizer, per_group, show = base.check_optimizer, base.per_group, base.show
local setmetatable, type, ipairs, error, pcall = setmetatable, type, ipairs, error, pcall
local huge, max, math_type = math.huge, math.max, math.type
local fmt = string.format

local plateau = {}

local ReduceLROnPlateau = Scheduler:extend("ReduceLROnPlateau")

local MODES = checks.one_of("min", "max")
local THRESHOLD_MODES = checks.one_of("rel", "abs")
local function FACTOR(v)
  return type(v) == "number" and v >= 0 and v < 1, "must be a number in [0, 1)"
end

-- Checks mode and threshold_mode and sets mode_worse (torch's _init_is_better).
local function init_is_better(self, level)
  local ok, want = MODES(self.mode)
  if not ok then error(fmt("ReduceLROnPlateau: mode %s (got %s)", want, show(self.mode)), level) end
  ok, want = THRESHOLD_MODES(self.threshold_mode)
  if not ok then
    error(fmt("ReduceLROnPlateau: threshold_mode %s (got %s)", want, show(self.threshold_mode)),
          level)
  end
  self.mode_worse = self.mode == "min" and huge or -huge
end

-- sched.ReduceLROnPlateau(opt, {mode = "min", factor = 0.1, patience = 10,
-- threshold = 1e-4, threshold_mode = "rel", cooldown = 0, min_lr = 0, eps = 1e-8});
-- then s:step(val_loss) once per evaluation.
function plateau.ReduceLROnPlateau(opt, opts)
  check_optimizer("ReduceLROnPlateau", opt)
  local o = parse("ReduceLROnPlateau", opts, {
    mode = {default = "min", check = MODES},
    factor = {default = 0.1, check = FACTOR},
    patience = {default = 10, check = checks.nonnegative_int},
    threshold = {default = 1e-4, check = checks.nonnegative},
    threshold_mode = {default = "rel", check = THRESHOLD_MODES},
    cooldown = {default = 0, check = checks.nonnegative_int},
    min_lr = {default = 0, check = checks.number_or_list},
    eps = {default = 1e-8, check = checks.nonnegative},
    verbose = {default = false, check = checks.boolean},
  })
  local self = setmetatable({}, ReduceLROnPlateau)
  self.factor = o.factor
  self.optimizer = opt
  self.min_lrs = per_group("ReduceLROnPlateau", "min_lr", opt, o.min_lr)
  self.patience = o.patience
  self.verbose = o.verbose
  self.cooldown = o.cooldown
  self.cooldown_counter = 0
  self.mode = o.mode
  self.threshold = o.threshold
  self.threshold_mode = o.threshold_mode
  self.eps = o.eps
  self.last_epoch = 0
  init_is_better(self, 3)
  self:_reset()
  self._last_lr = base.group_lrs(opt)
  return self
end

function ReduceLROnPlateau:_reset()
  self.best = self.mode_worse
  self.cooldown_counter = 0
  self.num_bad_epochs = 0
end

function ReduceLROnPlateau:is_better(a, best)
  if self.mode == "min" and self.threshold_mode == "rel" then
    return a < best * (1. - self.threshold)
  elseif self.mode == "min" then
    return a < best - self.threshold
  elseif self.threshold_mode == "rel" then
    return a > best * (self.threshold + 1.)
  end
  return a > best + self.threshold
end

function ReduceLROnPlateau:in_cooldown() return self.cooldown_counter > 0 end

-- A number from a number or a 1-element tensor (anything with :item()).
local function to_number(v)
  if type(v) == "number" then return v end
  if type(v) == "userdata" or type(v) == "table" then
    local ok, x = pcall(function() return v:item() end)
    if ok and type(x) == "number" then return x end
  end
  return nil
end

-- Records metric (a number or 1-element tensor), reducing the rates once
-- the metric has stopped improving. epoch (deprecated in torch) overrides
-- the step count.
function ReduceLROnPlateau:step(metric, epoch)
  local current = to_number(metric)
  if current == nil then
    error(fmt("ReduceLROnPlateau: step expects the monitored metric (a number or a "
              .. "1-element tensor), got %s", type(metric)), 2)
  end
  if epoch == nil then epoch = self.last_epoch + 1 end
  self.last_epoch = epoch

  if self:is_better(current, self.best) then
    self.best = current
    self.num_bad_epochs = 0
  else
    self.num_bad_epochs = self.num_bad_epochs + 1
  end
  if self:in_cooldown() then
    self.cooldown_counter = self.cooldown_counter - 1
    self.num_bad_epochs = 0                -- ignore bad epochs in cooldown
  end
  if self.num_bad_epochs > self.patience then
    self:_reduce_lr(epoch)
    self.cooldown_counter = self.cooldown
    self.num_bad_epochs = 0
  end
  self._last_lr = base.group_lrs(self.optimizer)
end

function ReduceLROnPlateau:_reduce_lr(epoch)
  for i, g in ipairs(self.optimizer.param_groups) do
    local old_lr = g.lr + 0.0
    local new_lr = max(old_lr * self.factor, self.min_lrs[i])
    if old_lr - new_lr > self.eps then
      g.lr = new_lr
      if self.verbose then
        print(fmt("Epoch %s: reducing learning rate of group %d to %.4e.",
                  math_type(epoch) == "float" and fmt("%.2f", epoch) or fmt("%05d", epoch),
                  i, new_lr))
      end
    end
  end
end

ReduceLROnPlateau._state_checks = {
  mode = MODES, threshold_mode = THRESHOLD_MODES, factor = FACTOR,
  patience = checks.nonnegative_int, cooldown = checks.nonnegative_int,
  cooldown_counter = checks.nonnegative_int, num_bad_epochs = checks.nonnegative_int,
  threshold = checks.nonnegative, eps = checks.nonnegative,
  best = checks.not_nan, mode_worse = checks.not_nan,
}

-- mode_worse follows mode (torch's _init_is_better after loading).
function ReduceLROnPlateau:_prepare_state(sd)
  local apply, problem = Scheduler._prepare_state(self, sd)
  if not apply then return nil, problem end
  return function()
    apply()
    self.mode_worse = self.mode == "min" and huge or -huge
  end
end

return plateau
