-- moongrad.sched: learning-rate schedules with torch.optim.lr_scheduler's
-- semantics (PyTorch 1.13: the same rate at every step, to the last bit),
-- so a published recipe's schedule carries over. `local sched = require
-- "moongrad.sched"`.
--
--   local opt = optim.SGD(net:parameters(), {lr = 0.1, momentum = 0.9})
--   local s = sched.OneCycleLR(opt, {max_lr = 0.1, total_steps = 1000})
--   for step = 1, 1000 do
--     ... loss:backward(); opt:step(); opt:zero_grad()
--     s:step()                         -- after opt:step(), once per step
--   end
--   s:get_last_lr()  --> {lr of group 1, ...}     s.last_epoch --> 1000
--
-- A scheduler writes opt.param_groups[i].lr (and, for OneCycleLR and
-- CyclicLR, momentum or betas[1]). Constructing it performs torch's initial
-- step: each group gets `initial_lr` (its lr at the time, unless already
-- set), last_epoch becomes 0 and the groups hold the first rate.
--
--   sched.StepLR(opt, {step_size = 30, gamma = 0.1})
--   sched.MultiStepLR(opt, {milestones = {30, 80}, gamma = 0.1})
--   sched.ExponentialLR(opt, {gamma = 0.95})
--   sched.CosineAnnealingLR(opt, {T_max = 100, eta_min = 0})
--   sched.CosineAnnealingWarmRestarts(opt, {T_0 = 10, T_mult = 2, eta_min = 0})
--   sched.LinearLR(opt, {start_factor = 1/3, end_factor = 1, total_iters = 5})
--   sched.ConstantLR(opt, {factor = 1/3, total_iters = 5})
--   sched.PolynomialLR(opt, {total_iters = 5, power = 1})
--   sched.LambdaLR(opt, {lr_lambda = function(epoch) return 0.95 ^ epoch end})
--   sched.MultiplicativeLR(opt, {lr_lambda = function(epoch) return 0.95 end})
--   sched.OneCycleLR(opt, {max_lr = 0.1, total_steps = 1000, pct_start = 0.3,
--                          anneal_strategy = "cos", three_phase = false})
--   sched.CyclicLR(opt, {base_lr = 0.001, max_lr = 0.1, step_size_up = 2000,
--                        mode = "triangular"})
--   sched.SequentialLR(opt, {schedulers = {warmup, decay}, milestones = {5}})
--   sched.ChainedScheduler({s1, s2})
--   sched.ReduceLROnPlateau(opt, {mode = "min", factor = 0.1, patience = 10})
--                                       -- then s:step(val_loss)
--
-- Options are torch's keyword arguments under the same names (every
-- scheduler also takes last_epoch, to resume, and verbose); a misspelt or
-- out-of-range option raises an error naming the scheduler and the option.
-- Per-group values (max_lr, base_lr, momentum bounds, min_lr) take a number
-- or a list with one number per param group.
--
-- Saving: s:state_dict() is a plain table (numbers, strings, booleans and
-- nested tables; functions such as LambdaLR's lambdas are not saved, as in
-- torch); s:load_state_dict(sd) on a scheduler built the same way, with the
-- optimizer's own state restored too, continues the schedule exactly. It
-- sets only the scheduler's own data fields, each checked, and changes
-- nothing unless all pass; s:prepare_load_state_dict(sd) checks and returns
-- the apply step (which cannot fail), for moongrad.checkpoint.
-- ReduceLROnPlateau's `best` starts as math.huge (-math.huge in "max" mode).
--
-- Files: sched/base.lua (the Scheduler class, options, state dicts),
-- decay.lua, cyclic.lua, compose.lua and plateau.lua (the schedulers).
local base = require "moongrad.sched.base"

local sched = {is_scheduler = base.is_scheduler}

for _, family in ipairs({"decay", "cyclic", "compose", "plateau"}) do
  for name, ctor in pairs(require("moongrad.sched." .. family)) do
    if name:match("^%u") then sched[name] = ctor end
  end
end

return sched
