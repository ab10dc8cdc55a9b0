-- moongrad.sched.decay: schedules that are a function of the step alone —
-- LambdaLR, MultiplicativeLR, StepLR, MultiStepLR, ConstantLR, LinearLR,
-- ExponentialLR, PolynomialLR and CosineAnnealingLR. Each follows
-- torch.optim.lr_scheduler 1.13 expression for expression (the chainable
-- form in _get_lr, the closed form used by step(epoch) in
-- _closed_form_lr), so the rates agree with PyTorch's to the last bit.
local base = require "moongrad.sched.base"

local Scheduler, parse, checks = base.Scheduler, base.parse, base.checks
local check_optimizer, is_callable, show = base.check_optimizer, base.is_callable, base.show
local type, pairs, ipairs, error, rawget, tostring = type, pairs, ipairs, error, rawget, tostring
local cos, pi, min = math.cos, math.pi, math.min
local sort = table.sort
local fmt = string.format

local decay = {}

-- Options every scheduler takes.
local function common(spec)
  spec.last_epoch = {default = -1, check = checks.last_epoch}
  spec.verbose = {default = false, check = checks.boolean}
  return spec
end

local function current(self)
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr end
  return out
end

local function scaled(self, factor)
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr * factor end
  return out
end

-- LambdaLR and MultiplicativeLR ----------------------------------------------

-- One callable per group from a callable or a list of them. Errors point at
-- the user calling the constructor that calls this.
local function lambdas(name, opt, f)
  local n = #opt.param_groups
  if is_callable(f) then
    local out = {}
    for i = 1, n do out[i] = f end
    return out
  end
  if type(f) ~= "table" then
    error(fmt("%s: lr_lambda must be a function or a list of functions, got %s", name, type(f)), 3)
  end
  if #f ~= n then
    error(fmt("%s: expected %d lr_lambdas (one per param group), got %d", name, n, #f), 3)
  end
  local out = {}
  for i = 1, n do
    if not is_callable(f[i]) then
      error(fmt("%s: lr_lambda[%d] must be a function, got %s", name, i, type(f[i])), 3)
    end
    out[i] = f[i]
  end
  return out
end

local function call_lambda(self, i)
  local v = self.lr_lambdas[i](self.last_epoch)
  if type(v) ~= "number" then
    error(fmt("%s: lr_lambda of group %d returned %s at epoch %s, expected a number",
              self.__name, i, type(v), show(self.last_epoch)), 4)
  end
  return v
end

-- Lambdas are not state; a lambda that is a callable table gets its fields
-- saved and restored, the way torch saves a callable object's __dict__.
local function lambda_state_dict(self)
  local sd = Scheduler.state_dict(self)
  local saved = {}
  for i, f in ipairs(self.lr_lambdas) do
    saved[i] = type(f) == "table" and base.copy(f) or false
  end
  sd.lr_lambdas = saved
  return sd
end

-- The saved fields of callable-table lambdas may only set fields those
-- tables have, keeping their types (they are the user's objects: any
-- number or string goes).
local function lambda_prepare_state(self, sd)
  local apply_own, problem = Scheduler._prepare_state(self, sd, {lr_lambdas = true})
  if not apply_own then return nil, problem end
  local saved, fields = sd.lr_lambdas, {}
  if saved ~= nil then
    if type(saved) ~= "table" or #saved ~= #self.lr_lambdas then
      return nil, fmt("%s: load_state_dict: lr_lambdas must be a list of %d entries, got %s",
                      self.__name, #self.lr_lambdas, show(saved))
    end
    for i, entry in ipairs(saved) do
      local f = self.lr_lambdas[i]
      if type(entry) == "table" and type(f) == "table" then
        local values = {}
        for k, v in pairs(entry) do
          local cur = rawget(f, k)
          local bad = cur == nil and fmt("lr_lambdas[%d] has no field %s", i, show(k))
            or base.form_problem(cur, v, fmt("lr_lambdas[%d].%s", i, tostring(k)), false)
          if bad then return nil, fmt("%s: load_state_dict: %s", self.__name, bad) end
          values[k] = base.copy(v)
        end
        fields[f] = values
      elseif entry ~= false and type(entry) ~= "table" then
        return nil, fmt("%s: load_state_dict: lr_lambdas[%d] must be a table or false, got %s",
                        self.__name, i, show(entry))
      end
    end
  end
  return function()
    apply_own()
    for f, values in pairs(fields) do
      for k, v in pairs(values) do f[k] = v end
    end
  end
end

local LambdaLR = Scheduler:extend("LambdaLR")
LambdaLR._not_state = {lr_lambdas = true}
LambdaLR.state_dict, LambdaLR._prepare_state = lambda_state_dict, lambda_prepare_state

-- lr = base_lr * lr_lambda(epoch); lr_lambda is one function or one per group.
function decay.LambdaLR(opt, opts)
  check_optimizer("LambdaLR", opt)
  local o = parse("LambdaLR", opts, common{lr_lambda = {required = true}})
  local fs = lambdas("LambdaLR", opt, o.lr_lambda)
  local self = Scheduler.new(LambdaLR, opt, o.last_epoch, o.verbose)
  self.lr_lambdas = fs
  self:_initial_step()
  return self
end

function LambdaLR:_get_lr()
  local out = {}
  for i, b in ipairs(self.base_lrs) do out[i] = b * call_lambda(self, i) end
  return out
end

local MultiplicativeLR = Scheduler:extend("MultiplicativeLR")
MultiplicativeLR._not_state = {lr_lambdas = true}
MultiplicativeLR.state_dict = lambda_state_dict
MultiplicativeLR._prepare_state = lambda_prepare_state

-- lr = lr * lr_lambda(epoch) at every step after the first.
function decay.MultiplicativeLR(opt, opts)
  check_optimizer("MultiplicativeLR", opt)
  local o = parse("MultiplicativeLR", opts, common{lr_lambda = {required = true}})
  local fs = lambdas("MultiplicativeLR", opt, o.lr_lambda)
  local self = Scheduler.new(MultiplicativeLR, opt, o.last_epoch, o.verbose)
  self.lr_lambdas = fs
  self:_initial_step()
  return self
end

function MultiplicativeLR:_get_lr()
  if self.last_epoch > 0 then
    local out = {}
    for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr * call_lambda(self, i) end
    return out
  end
  return current(self)
end

-- StepLR and MultiStepLR -----------------------------------------------------

local StepLR = Scheduler:extend("StepLR")
StepLR._state_checks = {step_size = checks.positive_int, gamma = checks.positive}

-- lr = base_lr * gamma ^ floor(epoch / step_size).
function decay.StepLR(opt, opts)
  check_optimizer("StepLR", opt)
  local o = parse("StepLR", opts, common{
    step_size = {required = true, check = checks.positive_int},
    gamma = {default = 0.1, check = checks.positive},
  })
  local self = Scheduler.new(StepLR, opt, o.last_epoch, o.verbose)
  self.step_size, self.gamma = o.step_size, o.gamma
  self:_initial_step()
  return self
end

function StepLR:_get_lr()
  if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return current(self) end
  return scaled(self, self.gamma)
end

function StepLR:_closed_form_lr()
  local out = {}
  for i, b in ipairs(self.base_lrs) do
    out[i] = b * self.gamma ^ (self.last_epoch // self.step_size)
  end
  return out
end

local MultiStepLR = Scheduler:extend("MultiStepLR")
MultiStepLR._state_checks = {milestones = checks.integer_list, gamma = checks.positive}

-- lr = base_lr * gamma ^ (number of milestones <= epoch). A milestone listed
-- twice decays twice (torch keeps a Counter).
function decay.MultiStepLR(opt, opts)
  check_optimizer("MultiStepLR", opt)
  local o = parse("MultiStepLR", opts, common{
    milestones = {required = true, check = checks.table},
    gamma = {default = 0.1, check = checks.positive},
  })
  local ms, n = {}, 0
  for _ in pairs(o.milestones) do n = n + 1 end
  for i = 1, n do
    local k = base.as_integer(o.milestones[i])
    if k == nil then
      error(fmt("MultiStepLR: milestones must be a list of integers (milestones[%d] is %s)",
                i, show(o.milestones[i])), 2)
    end
    ms[i] = k
  end
  sort(ms)
  local self = Scheduler.new(MultiStepLR, opt, o.last_epoch, o.verbose)
  self.milestones, self.gamma = ms, o.gamma
  self:_initial_step()
  return self
end

function MultiStepLR:_get_lr()
  local count = 0
  for _, m in ipairs(self.milestones) do
    if m == self.last_epoch then count = count + 1 end
  end
  if count == 0 then return current(self) end
  return scaled(self, self.gamma ^ count)
end

function MultiStepLR:_closed_form_lr()
  local passed = 0   -- bisect_right(milestones, last_epoch)
  for _, m in ipairs(self.milestones) do
    if m <= self.last_epoch then passed = passed + 1 end
  end
  local out = {}
  for i, b in ipairs(self.base_lrs) do out[i] = b * self.gamma ^ passed end
  return out
end

-- ConstantLR and LinearLR ----------------------------------------------------

local ConstantLR = Scheduler:extend("ConstantLR")
ConstantLR._state_checks = {factor = checks.unit_open, total_iters = checks.nonnegative_int}

-- lr = base_lr * factor for the first total_iters steps, then base_lr.
function decay.ConstantLR(opt, opts)
  check_optimizer("ConstantLR", opt)
  local o = parse("ConstantLR", opts, common{
    factor = {default = 1.0 / 3, check = checks.unit_open},
    total_iters = {default = 5, check = checks.nonnegative_int},
  })
  local self = Scheduler.new(ConstantLR, opt, o.last_epoch, o.verbose)
  self.factor, self.total_iters = o.factor, o.total_iters
  self:_initial_step()
  return self
end

function ConstantLR:_get_lr()
  local e = self.last_epoch
  if e == 0 then return scaled(self, self.factor) end
  if e > self.total_iters or e ~= self.total_iters then return current(self) end
  return scaled(self, 1.0 / self.factor)
end

function ConstantLR:_closed_form_lr()
  local out = {}
  local after = self.last_epoch >= self.total_iters and 1 or 0
  for i, b in ipairs(self.base_lrs) do
    out[i] = b * (self.factor + after * (1 - self.factor))
  end
  return out
end

local LinearLR = Scheduler:extend("LinearLR")
LinearLR._state_checks = {start_factor = checks.unit_open, end_factor = checks.unit,
                          total_iters = checks.positive_int}

-- The factor on base_lr goes linearly from start_factor to end_factor over
-- total_iters steps, then stays: a warm-up (or a linear decay).
function decay.LinearLR(opt, opts)
  check_optimizer("LinearLR", opt)
  local o = parse("LinearLR", opts, common{
    start_factor = {default = 1.0 / 3, check = checks.unit_open},
    end_factor = {default = 1.0, check = checks.unit},
    total_iters = {default = 5, check = checks.positive_int},
  })
  local self = Scheduler.new(LinearLR, opt, o.last_epoch, o.verbose)
  self.start_factor, self.end_factor, self.total_iters = o.start_factor, o.end_factor, o.total_iters
  self:_initial_step()
  return self
end

function LinearLR:_get_lr()
  local e, s, f, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
  if e == 0 then return scaled(self, s) end
  if e > n then return current(self) end
  return scaled(self, 1. + (f - s) / (n * s + (e - 1) * (f - s)))
end

function LinearLR:_closed_form_lr()
  local e, s, f, n = self.last_epoch, self.start_factor, self.end_factor, self.total_iters
  local out = {}
  for i, b in ipairs(self.base_lrs) do out[i] = b * (s + (f - s) * min(n, e) / n) end
  return out
end

-- ExponentialLR and PolynomialLR ---------------------------------------------

local ExponentialLR = Scheduler:extend("ExponentialLR")
ExponentialLR._state_checks = {gamma = checks.positive}

-- lr = base_lr * gamma ^ epoch.
function decay.ExponentialLR(opt, opts)
  check_optimizer("ExponentialLR", opt)
  local o = parse("ExponentialLR", opts, common{gamma = {required = true, check = checks.positive}})
  local self = Scheduler.new(ExponentialLR, opt, o.last_epoch, o.verbose)
  self.gamma = o.gamma
  self:_initial_step()
  return self
end

function ExponentialLR:_get_lr()
  if self.last_epoch == 0 then return current(self) end
  return scaled(self, self.gamma)
end

function ExponentialLR:_closed_form_lr()
  local out = {}
  for i, b in ipairs(self.base_lrs) do out[i] = b * self.gamma ^ self.last_epoch end
  return out
end

local PolynomialLR = Scheduler:extend("PolynomialLR")
PolynomialLR._state_checks = {total_iters = checks.positive_int, power = checks.positive}

-- lr = base_lr * (1 - min(epoch, total_iters) / total_iters) ^ power.
function decay.PolynomialLR(opt, opts)
  check_optimizer("PolynomialLR", opt)
  local o = parse("PolynomialLR", opts, common{
    total_iters = {default = 5, check = checks.positive_int},
    power = {default = 1.0, check = checks.positive},
  })
  local self = Scheduler.new(PolynomialLR, opt, o.last_epoch, o.verbose)
  self.total_iters, self.power = o.total_iters, o.power
  self:_initial_step()
  return self
end

function PolynomialLR:_get_lr()
  local e, n = self.last_epoch, self.total_iters
  if e == 0 or e > n then return current(self) end
  return scaled(self, ((1.0 - e / n) / (1.0 - (e - 1) / n)) ^ self.power)
end

function PolynomialLR:_closed_form_lr()
  local out = {}
  for i, b in ipairs(self.base_lrs) do
    out[i] = b * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ^ self.power
  end
  return out
end

-- CosineAnnealingLR ----------------------------------------------------------

local CosineAnnealingLR = Scheduler:extend("CosineAnnealingLR")
CosineAnnealingLR._state_checks = {T_max = checks.positive_int, eta_min = checks.nonnegative}

-- Half a cosine from base_lr down to eta_min over T_max steps, in torch's
-- recursive form: past T_max the rate climbs back up (a period of 2*T_max),
-- and it composes with changes made to lr from outside.
function decay.CosineAnnealingLR(opt, opts)
  check_optimizer("CosineAnnealingLR", opt)
  local o = parse("CosineAnnealingLR", opts, common{
    T_max = {required = true, check = checks.positive_int},
    eta_min = {default = 0, check = checks.nonnegative},
  })
  local self = Scheduler.new(CosineAnnealingLR, opt, o.last_epoch, o.verbose)
  self.T_max, self.eta_min = o.T_max, o.eta_min
  self:_initial_step()
  return self
end

function CosineAnnealingLR:_get_lr()
  local e, T, eta = self.last_epoch, self.T_max, self.eta_min
  local out = {}
  if e == 0 then return current(self) end
  if self._step_count == 1 and e > 0 then         -- resumed with last_epoch
    for i, b in ipairs(self.base_lrs) do
      out[i] = eta + (b - eta) * (1 + cos((e) * pi / T)) / 2
    end
  elseif (e - 1 - T) % (2 * T) == 0 then
    for i, g in ipairs(self.optimizer.param_groups) do
      out[i] = g.lr + (self.base_lrs[i] - eta) * (1 - cos(pi / T)) / 2
    end
  else
    for i, g in ipairs(self.optimizer.param_groups) do
      out[i] = (1 + cos(pi * e / T)) / (1 + cos(pi * (e - 1) / T)) * (g.lr - eta) + eta
    end
  end
  return out
end

function CosineAnnealingLR:_closed_form_lr()
  local e, T, eta = self.last_epoch, self.T_max, self.eta_min
  local out = {}
  for i, b in ipairs(self.base_lrs) do out[i] = eta + (b - eta) * (1 + cos(pi * e / T)) / 2 end
  return out
end

decay.common = common
return decay
