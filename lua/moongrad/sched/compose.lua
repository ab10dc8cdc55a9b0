-- moongrad.sched.compose: schedulers made of schedulers. SequentialLR hands
-- the optimizer from one scheduler to the next at milestones (warm-up, then
-- decay); ChainedScheduler steps several at once, each multiplying in its
-- factor. Both keep torch 1.13's behaviour, quirks included:
--   * SequentialLR resets every group's lr to initial_lr, undoes the initial
--     step of every scheduler given to it and redoes the first one's;
--   * at a milestone the next scheduler is stepped with step(0), which
--     uses its closed form from base_lr (so a warm-up's last rate does not
--     carry over), and its last_epoch then counts from the milestone;
--   * ChainedScheduler has no last_epoch of its own.
local base = require "moongrad.sched.base"

local Scheduler, parse, checks = base.Scheduler, base.parse, base.checks
local check_optimizer, is_scheduler, group_lrs = base.check_optimizer, base.is_scheduler,
                                                 base.group_lrs
local setmetatable, type, ipairs, error = setmetatable, type, ipairs, error
local concat = table.concat
local fmt = string.format

local compose = {}

-- Checks a list of schedulers that all drive opt (opt nil: the first's).
-- Errors point at the user calling the constructor that calls this.
local function check_schedulers(name, list, opt)
  if type(list) ~= "table" or #list == 0 then
    error(fmt("%s: expects a non-empty list of schedulers, got %s", name,
              type(list) == "table" and "an empty table" or type(list)), 3)
  end
  for i, s in ipairs(list) do
    if not is_scheduler(s) then
      error(fmt("%s: schedulers[%d] is not a scheduler (got %s)", name, i, type(s)), 3)
    end
    if s.__name == "ReduceLROnPlateau" or s.__name == "ChainedScheduler"
        or s.__name == "SequentialLR" then
      error(fmt("%s: schedulers[%d] is a %s, which cannot be composed this way", name, i,
                s.__name), 3)
    end
    opt = opt or s.optimizer
    if s.optimizer ~= opt then
      error(fmt("%s: schedulers[%d] belongs to a different optimizer", name, i), 3)
    end
  end
end

-- State dicts: the composite's fields plus one state dict per scheduler.
local function composite_state_dict(self)
  local sd = Scheduler.state_dict(self)
  local subs = {}
  for i, s in ipairs(self._schedulers) do subs[i] = s:state_dict() end
  sd._schedulers = subs
  return sd
end

-- The composite's own fields and every scheduler's state, all checked
-- before any of them changes.
local function composite_prepare_state(self, sd)
  local apply_own, problem = Scheduler._prepare_state(self, sd, {_schedulers = true})
  if not apply_own then return nil, problem end
  local subs = sd._schedulers
  if type(subs) ~= "table" or #subs ~= #self._schedulers then
    return nil, fmt("%s: load_state_dict expects states for %d schedulers", self.__name,
                    #self._schedulers)
  end
  local applies = {}
  for i, s in ipairs(self._schedulers) do
    local apply, sub_problem = s:_prepare_state(subs[i])
    if not apply then
      return nil, fmt("%s: load_state_dict: schedulers[%d]: %s", self.__name, i, sub_problem)
    end
    applies[i] = apply
  end
  return function()
    apply_own()
    for _, apply in ipairs(applies) do apply() end
  end
end

-- SequentialLR ---------------------------------------------------------------------

local SequentialLR = Scheduler:extend("SequentialLR")
SequentialLR._not_state = {_schedulers = true}
SequentialLR.state_dict = composite_state_dict
SequentialLR._prepare_state = composite_prepare_state
SequentialLR._state_checks = {_milestones = checks.integer_list}

-- sched.SequentialLR(opt, {schedulers = {warmup, decay}, milestones = {5}}):
-- schedulers[i + 1] takes over at step milestones[i].
function compose.SequentialLR(opt, opts)
  check_optimizer("SequentialLR", opt)
  local o = parse("SequentialLR", opts, {
    schedulers = {required = true, check = checks.table},
    milestones = {required = true, check = checks.table},
    last_epoch = {default = -1, check = checks.last_epoch},
    verbose = {default = false, check = checks.boolean},
  })
  local list, ms = o.schedulers, o.milestones
  check_schedulers("SequentialLR", list, opt)
  if #ms ~= #list - 1 then
    error(fmt("SequentialLR: expects one milestone fewer than schedulers, got %d schedulers "
              .. "and %d milestones", #list, #ms), 2)
  end
  local milestones = {}
  for i = 1, #ms do
    local m = base.as_integer(ms[i])
    if m == nil or (i > 1 and m < milestones[i - 1]) then
      error(fmt("SequentialLR: milestones must be increasing integers, got %s", base.show(ms)), 2)
    end
    milestones[i] = m
  end
  for i, g in ipairs(opt.param_groups) do
    if g.initial_lr == nil then
      error(fmt("SequentialLR: param_groups[%d] has no initial_lr", i), 2)
    end
  end

  local self = setmetatable({}, SequentialLR)
  self._schedulers = {}
  for i, s in ipairs(list) do self._schedulers[i] = s end
  self._milestones = milestones
  self.last_epoch = o.last_epoch + 1
  self.optimizer = opt
  self.verbose = o.verbose
  for _, g in ipairs(opt.param_groups) do g.lr = g.initial_lr end  -- back to the start
  for _, s in ipairs(self._schedulers) do s.last_epoch = s.last_epoch - 1 end
  self._schedulers[1]:_initial_step()
  self._last_lr = self._schedulers[1]:get_last_lr()
  return self
end

function SequentialLR:step()
  self.last_epoch = self.last_epoch + 1
  local ms = self._milestones
  local idx = 0                      -- bisect_right(milestones, last_epoch)
  while idx < #ms and ms[idx + 1] <= self.last_epoch do idx = idx + 1 end
  local s = self._schedulers[idx + 1]
  if idx > 0 and ms[idx] == self.last_epoch then
    s:step(0)
  else
    s:step()
  end
  self._last_lr = s:get_last_lr()
end

-- ChainedScheduler -----------------------------------------------------------------

local ChainedScheduler = Scheduler:extend("ChainedScheduler")
ChainedScheduler._not_state = {_schedulers = true}
ChainedScheduler.state_dict = composite_state_dict
ChainedScheduler._prepare_state = composite_prepare_state

function ChainedScheduler.__tostring(self)
  local names = {}
  for i, s in ipairs(self._schedulers) do names[i] = s.__name end
  return fmt("ChainedScheduler(%s)", concat(names, ", "))
end

-- sched.ChainedScheduler({s1, s2}): s:step() steps each in turn.
function compose.ChainedScheduler(schedulers, extra)
  if extra ~= nil then
    error("ChainedScheduler: takes only the list of schedulers (no optimizer, no options)", 2)
  end
  check_schedulers("ChainedScheduler", schedulers)
  local self = setmetatable({}, ChainedScheduler)
  self._schedulers = {}
  for i, s in ipairs(schedulers) do self._schedulers[i] = s end
  self.optimizer = schedulers[1].optimizer
  self._last_lr = group_lrs(self.optimizer)
  return self
end

function ChainedScheduler:step()
  for _, s in ipairs(self._schedulers) do s:step() end
  self._last_lr = group_lrs(self.optimizer)
end

return compose
