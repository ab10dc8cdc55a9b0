-- Every learning-rate schedule of moongrad.sched over 100 steps, drawn as
-- a one-line sparkline (one column per step) with the rate at a few steps
-- below it; schedules that cycle momentum (or Adam's beta1) get a second
-- line for it. Changing a training script's schedule is changing the one
-- line that builds `s`. Run: build/moongrad scripts/schedules.lua (no options;
-- the schedules' own settings assume 100 steps).
local cli = require "moongrad.cli"
local mg = require "moongrad"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"

local STEPS = 100
local SHOW_AT = {0, 10, 25, 50, 75, 99}
local BARS = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"}

cli.parser("schedules.lua",
  "Print every learning-rate schedule of moongrad.sched over 100 steps as a sparkline, with"
  .. " the rate at a few steps (and the momentum of those that cycle it). Takes no options.",
  "build/moongrad scripts/schedules.lua"):parse(arg)

-- A scheduler only reads and writes opt.param_groups; here it drives an
-- optimizer over one dummy parameter.
local function sgd()
  return optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1, momentum = 0.9})
end
local function adam()
  return optim.Adam({mg.zeros(1):requires_grad()}, {lr = 0.001, betas = {0.9, 0.999}})
end

-- A validation loss that falls, stalls, falls again and flattens out:
-- what ReduceLROnPlateau watches.
local function val_loss(step)
  local t = step < 30 and step or (step < 45 and 30 or step - 15)
  return 0.2 + 0.8 * math.exp(-t / 20)
end

local SCHEDULES = {
  {"StepLR {step_size = 30, gamma = 0.5}", sgd, function(opt)
    return sched.StepLR(opt, {step_size = 30, gamma = 0.5}) end},
  {"MultiStepLR {milestones = {30, 60, 90}, gamma = 0.3}", sgd, function(opt)
    return sched.MultiStepLR(opt, {milestones = {30, 60, 90}, gamma = 0.3}) end},
  {"ExponentialLR {gamma = 0.97}", sgd, function(opt)
    return sched.ExponentialLR(opt, {gamma = 0.97}) end},
  {"CosineAnnealingLR {T_max = 100}", sgd, function(opt)
    return sched.CosineAnnealingLR(opt, {T_max = 100}) end},
  {"CosineAnnealingLR {T_max = 30, eta_min = 0.01} (past T_max it climbs back)", sgd,
   function(opt) return sched.CosineAnnealingLR(opt, {T_max = 30, eta_min = 0.01}) end},
  {"CosineAnnealingWarmRestarts {T_0 = 10, T_mult = 2}", sgd, function(opt)
    return sched.CosineAnnealingWarmRestarts(opt, {T_0 = 10, T_mult = 2}) end},
  {"LinearLR {start_factor = 0.1, total_iters = 20} (warm-up)", sgd, function(opt)
    return sched.LinearLR(opt, {start_factor = 0.1, total_iters = 20}) end},
  {"ConstantLR {factor = 0.25, total_iters = 20}", sgd, function(opt)
    return sched.ConstantLR(opt, {factor = 0.25, total_iters = 20}) end},
  {"PolynomialLR {total_iters = 100, power = 2}", sgd, function(opt)
    return sched.PolynomialLR(opt, {total_iters = 100, power = 2}) end},
  {"LambdaLR: linear warm-up to step 10, then 1/sqrt(step)", sgd, function(opt)
    return sched.LambdaLR(opt, {lr_lambda = function(e)
      return math.min((e + 1) / 10, math.sqrt(10 / (e + 1))) end}) end},
  {"OneCycleLR {max_lr = 0.1, total_steps = 100}", sgd, function(opt)
    return sched.OneCycleLR(opt, {max_lr = 0.1, total_steps = 100}) end},
  {"OneCycleLR {three_phase = true, anneal_strategy = \"linear\"} on Adam", adam, function(opt)
    return sched.OneCycleLR(opt, {max_lr = 0.01, total_steps = 100, three_phase = true,
                                  anneal_strategy = "linear"}) end},
  {"CyclicLR {base_lr = 0.01, max_lr = 0.1, step_size_up = 10, mode = \"triangular2\"}", sgd,
   function(opt) return sched.CyclicLR(opt, {base_lr = 0.01, max_lr = 0.1, step_size_up = 10,
                                             mode = "triangular2"}) end},
  {"CyclicLR {step_size_up = 8, step_size_down = 17, mode = \"exp_range\", gamma = 0.99}", sgd,
   function(opt) return sched.CyclicLR(opt, {base_lr = 0.01, max_lr = 0.1, step_size_up = 8,
                                             step_size_down = 17, mode = "exp_range",
                                             gamma = 0.99}) end},
  {"SequentialLR: LinearLR warm-up for 10 steps, then CosineAnnealingLR", sgd, function(opt)
    local warm = sched.LinearLR(opt, {start_factor = 0.01, total_iters = 10})
    local cosine = sched.CosineAnnealingLR(opt, {T_max = 90})
    return sched.SequentialLR(opt, {schedulers = {warm, cosine}, milestones = {10}}) end},
  {"ChainedScheduler: LinearLR warm-up times ExponentialLR {gamma = 0.98}", sgd, function(opt)
    return sched.ChainedScheduler({sched.LinearLR(opt, {start_factor = 0.1, total_iters = 15}),
                                   sched.ExponentialLR(opt, {gamma = 0.98})}) end},
  {"ReduceLROnPlateau {patience = 5, factor = 0.5} on a stalling validation loss", sgd,
   function(opt) return sched.ReduceLROnPlateau(opt, {patience = 5, factor = 0.5}) end,
   plateau = true},
}

-- One column per value, scaled to [lo, hi].
local function sparkline(values, lo, hi)
  local out = {}
  for i, v in ipairs(values) do
    local level = hi > lo and math.floor((v - lo) / (hi - lo) * (#BARS - 1) + 0.5) + 1 or 1
    out[i] = BARS[math.max(1, math.min(#BARS, level))]
  end
  return table.concat(out)
end

local function range(values)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(values) do lo, hi = math.min(lo, v), math.max(hi, v) end
  return lo, hi
end

local function momentum_of(g) return g.betas and g.betas[1] or g.momentum end

-- The rate (and momentum) of group 1 after construction and each step.
local function trace(make_opt, make_sched, plateau)
  local opt = make_opt()
  local s = make_sched(opt)
  local g = opt.param_groups
  local lrs, moms = {g[1].lr}, {momentum_of(g[1])}
  for step = 1, STEPS - 1 do
    if plateau then s:step(val_loss(step)) else s:step() end
    lrs[#lrs + 1], moms[#moms + 1] = g[1].lr, momentum_of(g[1])
  end
  return lrs, moms
end

print(("moongrad.sched: group 1's learning rate over %d steps, one column per step,"
       .. " from 0 to the curve's maximum"):format(STEPS))
for _, def in ipairs(SCHEDULES) do
  local lrs, moms = trace(def[2], def[3], def.plateau)
  local _, hi = range(lrs)
  print()
  print(def[1])
  print(("  lr  %s  max %.3g"):format(sparkline(lrs, 0, hi), hi))
  local lo_m, hi_m = range(moms)
  if hi_m > lo_m then
    print(("  mom %s  %.3g..%.3g"):format(sparkline(moms, lo_m, hi_m), lo_m, hi_m))
  end
  local cells = {}
  for i, step in ipairs(SHOW_AT) do cells[i] = ("%d: %.3g"):format(step, lrs[step + 1]) end
  print("      " .. table.concat(cells, "   "))
end
