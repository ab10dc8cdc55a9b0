-- moongrad.sched: every scheduler's per-step learning rates (and momentum
-- or beta1) against torch.optim.lr_scheduler (spec/fixtures/gen_sched.py),
-- state dict round trips, torch's construction and composition quirks, and
-- the errors bad options raise. The optimizer is a plain table standing in
-- for moongrad.optim (param_groups is all a scheduler touches); a last
-- block drives real moongrad.optim optimizers (SGD, Adam, AdamW, RMSprop)
-- under schedulers and follows torch's parameter trajectories.

local BUILD = require "support.build"
local sched = require "moongrad.sched"
local ref = dofile("spec/fixtures/sched_ref.lua")

local REL = 1e-12

-- The fixture's named functions, with gen_sched.py's arithmetic.
local FUNCTIONS = {
  warmup5 = function(e) return math.min(1.0, (e + 1) / 5) end,
  decay95 = function(e) return 0.95 ^ e end,
  halve10 = function(e) return 0.5 ^ (e // 10) end,
  const97 = function() return 0.97 end,
  cycle_decay = function(e) return e % 3 == 0 and 0.9 or 1.0 end,
  inv_cycle = function(x) return 1 / (1 + 0.5 * (x - 1)) end,
  iter_decay = function(x) return 0.97 ^ x end,
}

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep_copy(x) end
  return out
end

-- A stand-in optimizer: param groups as plain tables.
local function make_optimizer(groups)
  local opt = {param_groups = {}}
  for i, g in ipairs(groups) do
    opt.param_groups[i] = deep_copy(g)
    opt.param_groups[i].params = {}
  end
  return opt
end

local function resolve(opts)
  local out = {}
  for k, v in pairs(opts) do
    if k == "lr_lambda" or k == "scale_fn" then
      if type(v) == "table" then
        local fs = {}
        for i, n in ipairs(v) do fs[i] = FUNCTIONS[n] end
        v = fs
      else
        v = FUNCTIONS[v]
      end
    end
    out[k] = deep_copy(v)
  end
  return out
end

-- The case's scheduler on opt (sub-schedulers of composites first, in order).
local function build(kind, opts, opt)
  if kind == "SequentialLR" or kind == "ChainedScheduler" then
    local subs = {}
    for i, s in ipairs(opts.schedulers) do subs[i] = build(s.kind, s.opts, opt) end
    if kind == "ChainedScheduler" then return sched.ChainedScheduler(subs) end
    local rest = resolve(opts)
    rest.schedulers = subs
    return sched.SequentialLR(opt, rest)
  end
  return sched[kind](opt, resolve(opts))
end

local function calls_of(case)
  if case.calls then return case.calls end
  local calls = {}
  for i = 1, case.steps do calls[i] = {} end
  return calls
end

local function close(a, e)
  if type(a) ~= "number" then return false end
  return a == e or math.abs(a - e) <= REL * math.abs(e)
end

-- Checks opt and s against row k of the case's reference (row 1: after
-- construction, row k + 1: after the k-th call).
local function check_row(case, k, opt, s)
  for gi, g in ipairs(opt.param_groups) do
    local e = case.lr[k][gi]
    if not close(g.lr, e) then
      error(("step %d, group %d: lr %.17g, torch %.17g"):format(k - 1, gi, g.lr, e), 2)
    end
    local m = g.betas and g.betas[1] or g.momentum
    e = case.momentum[k][gi]
    if not close(m, e) then
      error(("step %d, group %d: momentum %.17g, torch %.17g"):format(k - 1, gi, m, e), 2)
    end
    if not close(s:get_last_lr()[gi], g.lr) then
      error(("step %d, group %d: get_last_lr() is not the group's lr"):format(k - 1, gi), 2)
    end
  end
  if case.last_epoch and s.last_epoch ~= case.last_epoch[k] then
    error(("step %d: last_epoch %s, torch %s"):format(k - 1, tostring(s.last_epoch),
          tostring(case.last_epoch[k])), 2)
  end
end

-- Everything in v is plain data: no functions, userdata or metatables.
local function assert_plain(v, path)
  path = path or "state_dict"
  local t = type(v)
  assert.is_true(t == "number" or t == "string" or t == "boolean" or t == "table",
                 path .. " is a " .. t)
  if t == "table" then
    assert.is_nil(getmetatable(v), path .. " has a metatable")
    for k, x in pairs(v) do
      assert.is_true(type(k) == "string" or type(k) == "number", path .. " has a " .. type(k) .. " key")
      assert_plain(x, path .. "." .. tostring(k))
    end
  end
end

-- The optimizer state a checkpoint keeps: each group's options.
local function groups_state(opt)
  local out = {}
  for i, g in ipairs(opt.param_groups) do
    out[i] = {}
    for k, v in pairs(g) do
      if k ~= "params" then out[i][k] = deep_copy(v) end
    end
  end
  return out
end

local function load_groups_state(opt, saved)
  for i, g in ipairs(opt.param_groups) do
    for k in pairs(g) do if k ~= "params" then g[k] = nil end end
    for k, v in pairs(saved[i]) do g[k] = deep_copy(v) end
  end
end

-- Runs a scheduler call: no arguments, an epoch, or a metric.
local function call(s, args) s:step(table.unpack(args)) end

describe("moongrad.sched", function()
  describe("against torch.optim.lr_scheduler", function()
    for _, case in ipairs(ref) do
      local calls = calls_of(case)
      it(("%s gives torch's rates for %d steps"):format(case.name, #calls), function()
        local opt = make_optimizer(case.groups)
        local s = build(case.kind, case.opts, opt)
        check_row(case, 1, opt, s)
        for k, args in ipairs(calls) do
          call(s, args)
          check_row(case, k + 1, opt, s)
        end
      end)
    end
  end)

  describe("state_dict", function()
    for _, case in ipairs(ref) do
      local calls = calls_of(case)
      it(("round-trips %s at step 10 and continues identically"):format(case.name), function()
        local opt = make_optimizer(case.groups)
        local s = build(case.kind, case.opts, opt)
        for k = 1, 10 do call(s, calls[k]) end
        local sd, opt_sd = s:state_dict(), groups_state(opt)
        assert_plain(sd)
        for k = 11, 15 do call(s, calls[k]) end   -- the saved state must not move with s

        local opt2 = make_optimizer(case.groups)
        local s2 = build(case.kind, case.opts, opt2)
        load_groups_state(opt2, opt_sd)
        s2:load_state_dict(sd)
        check_row(case, 11, opt2, s2)
        for k = 11, #calls do
          call(s2, calls[k])
          check_row(case, k + 1, opt2, s2)
        end
      end)
    end

    it("leaves out the optimizer and LambdaLR's functions, as torch does", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}, {lr = 0.2, momentum = 0.9}})
      local s = sched.LambdaLR(opt, {lr_lambda = {FUNCTIONS.decay95, FUNCTIONS.halve10}})
      local sd = s:state_dict()
      assert.is_nil(sd.optimizer)
      assert.same({false, false}, sd.lr_lambdas)
      assert.same({0.1, 0.2}, sd.base_lrs)
      assert.equal(0, sd.last_epoch)
    end)

    it("saves and restores the fields of a callable-table lambda", function()
      local function make_lambda()
        return setmetatable({rate = 0.9}, {__call = function(self, e) return self.rate ^ e end})
      end
      local opt = make_optimizer({{lr = 1.0, momentum = 0}})
      local f = make_lambda()
      local s = sched.LambdaLR(opt, {lr_lambda = f})
      f.rate = 0.5
      s:step()
      local sd = s:state_dict()
      assert.same({{rate = 0.5}}, sd.lr_lambdas)
      local opt2 = make_optimizer({{lr = 1.0, momentum = 0}})
      local g = make_lambda()
      local s2 = sched.LambdaLR(opt2, {lr_lambda = g})
      s2:load_state_dict(sd)
      assert.equal(0.5, g.rate)
      s2:step()
      assert.equal(0.25, opt2.param_groups[1].lr)
    end)

    it("keeps ReduceLROnPlateau's infinite best and its counters", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
      local s = sched.ReduceLROnPlateau(opt, {patience = 1, cooldown = 3})
      assert.equal(math.huge, s:state_dict().best)
      s:step(1.0); s:step(1.0); s:step(1.0)
      local sd = s:state_dict()
      assert.same({best = 1.0, num_bad_epochs = 0, cooldown_counter = 3, last_epoch = 3},
                  {best = sd.best, num_bad_epochs = sd.num_bad_epochs,
                   cooldown_counter = sd.cooldown_counter, last_epoch = sd.last_epoch})
    end)

    it("rejects a state dict for ReduceLROnPlateau with an unknown mode", function()
      local s = sched.ReduceLROnPlateau(make_optimizer({{lr = 0.1, momentum = 0}}))
      local sd = s:state_dict()
      sd.mode = "lowest"
      assert.has_error(function() s:load_state_dict(sd) end,
                       'ReduceLROnPlateau: load_state_dict: mode must be one of "min", "max" (got "lowest")')
    end)

    -- Everything a scheduler keeps (sub-schedulers included), by value.
    local function fields(s)
      local out = {}
      for k, v in pairs(s) do
        if k == "_schedulers" then
          out[k] = {}
          for i, sub in ipairs(v) do out[k][i] = fields(sub) end
        elseif k ~= "optimizer" then
          out[k] = type(v) == "function" and v or deep_copy(v)
        end
      end
      return out
    end

    local function one_group() return make_optimizer({{lr = 0.1, momentum = 0.9}}) end
    local function warm_cos(opt)
      local warm = sched.LinearLR(opt, {start_factor = 0.1, total_iters = 3})
      local cos = sched.CosineAnnealingLR(opt, {T_max = 10})
      return sched.SequentialLR(opt, {schedulers = {warm, cos}, milestones = {3}})
    end

    -- {what, make(opt), change(sd), message}: refused, the scheduler as it was.
    local tamperings = {
      {"a key naming the method step", function(o) return sched.StepLR(o, {step_size = 2}) end,
       function(sd) sd.step = 3 end,
       'StepLR: load_state_dict: "step" is not part of the scheduler\'s state (not one of its data fields)'},
      {"get_lr mapped to data", function(o) return sched.ExponentialLR(o, {gamma = 0.9}) end,
       function(sd) sd.get_last_lr = {0.1} end, '"get_last_lr" is not part of the scheduler\'s state'},
      {"the optimizer", function(o) return sched.ExponentialLR(o, {gamma = 0.9}) end,
       function(sd) sd.optimizer = {param_groups = {}} end, '"optimizer" is not part of'},
      {"an unknown field", function(o) return sched.StepLR(o, {step_size = 2}) end,
       function(sd) sd.warmup = 5 end, '"warmup" is not part of'},
      {"a fractional last_epoch", function(o) return sched.StepLR(o, {step_size = 2}) end,
       function(sd) sd.last_epoch = 2.5 end,
       "StepLR: load_state_dict: last_epoch must be an integer >= -1 (got 2.5)"},
      {"a negative step count", function(o) return sched.StepLR(o, {step_size = 2}) end,
       function(sd) sd._step_count = -1 end, "_step_count must be an integer >= 0 (got -1)"},
      {"step_size 0", function(o) return sched.StepLR(o, {step_size = 2}) end,
       function(sd) sd.step_size = 0 end, "StepLR: load_state_dict: step_size must be a positive integer (got 0)"},
      {"a NaN in base_lrs", function(o) return sched.StepLR(o, {step_size = 2}) end,
       function(sd) sd.base_lrs = {0 / 0} end, "base_lrs[1] must be a finite number, got nan"},
      {"base_lrs for three groups", function(o) return sched.StepLR(o, {step_size = 2}) end,
       function(sd) sd.base_lrs = {0.1, 0.1, 0.1} end, "base_lrs must have 1 entries, got {0.1, 0.1, 0.1}"},
      {"a string where a list belongs", function(o) return sched.StepLR(o, {step_size = 2}) end,
       function(sd) sd._last_lr = "0.1" end, '_last_lr must be a table, got "0.1"'},
      {"an unknown anneal strategy", function(o)
        return sched.OneCycleLR(o, {max_lr = 0.1, total_steps = 20})
      end, function(sd) sd.anneal_strategy = "sine" end,
       'OneCycleLR: load_state_dict: anneal_strategy must be one of "cos", "linear" (got "sine")'},
      {"a phase that names another group key", function(o)
        return sched.OneCycleLR(o, {max_lr = 0.1, total_steps = 20})
      end, function(sd) sd._schedule_phases[1].end_lr = "lr" end,
       '_schedule_phases[1].end_lr must be "max_lr" (set when the scheduler was built), got "lr"'},
      {"an unknown mode", function(o) return sched.ReduceLROnPlateau(o) end,
       function(sd) sd.mode = "lowest" end, 'ReduceLROnPlateau: load_state_dict: mode must be one of "min", "max"'},
      {"a NaN best", function(o) return sched.ReduceLROnPlateau(o) end,
       function(sd) sd.best = 0 / 0 end, "best must be a number (not nan) (got nan)"},
      {"a bad sub-scheduler state", warm_cos,
       function(sd) sd._schedulers[2].T_max = 0 end,
       "SequentialLR: load_state_dict: schedulers[2]: CosineAnnealingLR: load_state_dict: " ..
       "T_max must be a positive integer (got 0)"},
      {"a sub-scheduler state setting a method", warm_cos,
       function(sd) sd._schedulers[1].step = 1 end, 'schedulers[1]: LinearLR: load_state_dict: "step"'},
      {"too few sub-scheduler states", warm_cos,
       function(sd) sd._schedulers[2] = nil end, "SequentialLR: load_state_dict expects states for 2 schedulers"},
      {"a lambda field of another type", function(o)
        return sched.LambdaLR(o, {lr_lambda = setmetatable({rate = 0.9},
          {__call = function(self, e) return self.rate ^ e end})})
      end, function(sd) sd.lr_lambdas[1].rate = "fast" end,
       'LambdaLR: load_state_dict: lr_lambdas[1].rate must be a number, got "fast"'},
      {"a field the lambda has not", function(o)
        return sched.LambdaLR(o, {lr_lambda = setmetatable({rate = 0.9},
          {__call = function(self, e) return self.rate ^ e end})})
      end, function(sd) sd.lr_lambdas[1].__call = 1 end,
       'LambdaLR: load_state_dict: lr_lambdas[1] has no field "__call"'},
    }
    for _, case in ipairs(tamperings) do
      local what, make, change, msg = case[1], case[2], case[3], case[4]
      it("refuses a state dict with " .. what .. " and changes nothing", function()
        local source = make(one_group())
        for _ = 1, 4 do source:step(source.mode and 1.0 or nil) end
        local sd = source:state_dict()
        change(sd)
        local s = make(one_group())
        s:step(s.mode and 2.0 or nil)
        local before = fields(s)
        local ok, err = pcall(s.load_state_dict, s, sd)
        assert.is_false(ok, "loaded")
        assert.truthy(tostring(err):find(msg, 1, true), "got: " .. tostring(err))
        assert.same(before, fields(s))
        assert.equal("function", type(s.step))
        s:step(s.mode and 2.0 or nil)             -- still a working scheduler
      end)
    end

    it("prepares a load without changing anything; apply installs it", function()
      local source = warm_cos(one_group())
      for _ = 1, 5 do source:step() end
      local s = warm_cos(one_group())
      local before = fields(s)
      local apply = s:prepare_load_state_dict(source:state_dict())
      assert.same(before, fields(s))
      apply()
      assert.same(fields(source), fields(s))
    end)
  end)

  describe("construction", function()
    it("performs the initial step: initial_lr set, last_epoch 0, first rate applied", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}, {lr = 0.05, momentum = 0.9}})
      local s = sched.LinearLR(opt, {start_factor = 0.5, total_iters = 4})
      assert.equal(0, s.last_epoch)
      assert.same({0.1, 0.05}, {opt.param_groups[1].initial_lr, opt.param_groups[2].initial_lr})
      assert.same({0.05, 0.025}, s:get_last_lr())
      assert.same({0.1, 0.05}, s.base_lrs)
    end)

    it("keeps an existing initial_lr (a second scheduler builds on the first's)", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
      sched.ConstantLR(opt, {factor = 0.5})
      local s = sched.ExponentialLR(opt, {gamma = 0.5})
      assert.same({0.1}, s.base_lrs)
      assert.equal(0.05, opt.param_groups[1].lr)
    end)

    it("gives a copy from get_last_lr", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
      local s = sched.StepLR(opt, {step_size = 2})
      s:get_last_lr()[1] = 7
      assert.same({0.1}, s:get_last_lr())
    end)

    it("accepts integral floats where torch wants integers", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
      local s = sched.OneCycleLR(opt, {max_lr = 0.1, total_steps = 20.0})
      assert.equal(20, s.total_steps)
      assert.equal("integer", math.type(s.total_steps))
    end)

    it("drives the design's example: OneCycleLR over 20 steps", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
      local s = sched.OneCycleLR(opt, {max_lr = 0.1, total_steps = 20})
      local peak, peak_at = 0, nil
      for step = 1, 19 do
        s:step()
        if opt.param_groups[1].lr > peak then peak, peak_at = opt.param_groups[1].lr, step end
      end
      assert.equal(0.1, peak)
      assert.equal(5, peak_at)             -- pct_start 0.3: step 0.3 * 20 - 1
      assert.is_true(math.abs(opt.param_groups[1].lr - 0.1 / 25 / 1e4) < 1e-15)
    end)

    it("prints each change when verbose", function()
      local printed = {}
      local real_print = print
      _G.print = function(s) printed[#printed + 1] = s end
      local ok, err = pcall(function()
        local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
        local s = sched.StepLR(opt, {step_size = 1, gamma = 0.5, verbose = true})
        s:step()
      end)
      _G.print = real_print
      assert(ok, err)
      assert.same({"Adjusting learning rate of group 1 to 1.0000e-01.",
                   "Adjusting learning rate of group 1 to 5.0000e-02."}, printed)
    end)

    it("prints as its class with last_epoch and rates", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
      local s = sched.StepLR(opt, {step_size = 1, gamma = 0.5})
      s:step()
      assert.equal("StepLR(last_epoch=1, lr={0.05})", tostring(s))
      assert.is_true(sched.is_scheduler(s))
      assert.is_false(sched.is_scheduler(opt))
    end)
  end)

  describe("step(epoch)", function()
    it("jumps to an epoch with the closed form", function()
      local opt = make_optimizer({{lr = 1.0, momentum = 0.9}})
      local s = sched.StepLR(opt, {step_size = 3, gamma = 0.5})
      s:step(7)
      assert.equal(7, s.last_epoch)
      assert.equal(0.25, opt.param_groups[1].lr)
      s:step()
      assert.equal(0.25, opt.param_groups[1].lr)
      s:step()
      assert.equal(0.125, opt.param_groups[1].lr)
    end)

    it("gives CosineAnnealingLR's closed form at any epoch", function()
      local opt = make_optimizer({{lr = 1.0, momentum = 0.9}})
      local s = sched.CosineAnnealingLR(opt, {T_max = 10, eta_min = 0.1})
      s:step(5)
      assert.is_true(math.abs(opt.param_groups[1].lr - 0.55) < 1e-15)
    end)
  end)

  describe("ReduceLROnPlateau", function()
    it("takes a 1-element tensor as the metric", function()
      local mg = require "moongrad"
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
      local s = sched.ReduceLROnPlateau(opt, {patience = 0})
      s:step(mg.tensor({0.5}, "float64"))
      s:step(mg.tensor({0.6}, "float64"))
      assert.equal(0.5, s.best)
      assert.is_true(math.abs(opt.param_groups[1].lr - 0.01) < 1e-17)
      assert.same(s:get_last_lr(), {opt.param_groups[1].lr})
    end)

    it("has get_last_lr before its first step", function()
      local opt = make_optimizer({{lr = 0.1, momentum = 0.9}})
      assert.same({0.1}, sched.ReduceLROnPlateau(opt):get_last_lr())
    end)
  end)

  describe("SequentialLR", function()
    it("resets the rate to initial_lr and redoes only the first scheduler's step", function()
      local opt = make_optimizer({{lr = 1.0, momentum = 0.9}})
      local warm = sched.LinearLR(opt, {start_factor = 0.5, total_iters = 2})
      local decay = sched.ExponentialLR(opt, {gamma = 0.5})
      assert.equal(0.5, opt.param_groups[1].lr)
      local s = sched.SequentialLR(opt, {schedulers = {warm, decay}, milestones = {2}})
      assert.equal(0.5, opt.param_groups[1].lr)
      assert.same({0, -1, 0}, {warm.last_epoch, decay.last_epoch, s.last_epoch})
      s:step(); s:step()
      assert.equal(1.0, opt.param_groups[1].lr)   -- step(0) on decay: its closed form at 0
      assert.equal(0, decay.last_epoch)
      s:step()
      assert.equal(0.5, opt.param_groups[1].lr)
    end)
  end)

  describe("errors", function()
    local function opt1() return make_optimizer({{lr = 0.1, momentum = 0.9}}) end
    local function adam1() return make_optimizer({{lr = 0.1, betas = {0.9, 0.999}}}) end
    local function opt2()
      return make_optimizer({{lr = 0.1, momentum = 0.9}, {lr = 0.2, momentum = 0.9}})
    end
    local cases = {
      {"an unknown option name", function() sched.StepLR(opt1(), {step_size = 2, gama = 0.5}) end,
       'StepLR: unknown option "gama" (known: gamma, last_epoch, step_size, verbose)'},
      {"a missing required option", function() sched.StepLR(opt1(), {gamma = 0.5}) end,
       "StepLR: option 'step_size' is required"},
      {"options that are not a table", function() sched.ExponentialLR(opt1(), 0.9) end,
       "ExponentialLR: options must be a table, got number"},
      {"gamma <= 0", function() sched.StepLR(opt1(), {step_size = 2, gamma = 0}) end,
       "StepLR: gamma must be a finite number > 0 (got 0)"},
      {"a negative ExponentialLR gamma", function() sched.ExponentialLR(opt1(), {gamma = -0.5}) end,
       "ExponentialLR: gamma must be a finite number > 0 (got -0.5)"},
      {"a fractional step_size", function() sched.StepLR(opt1(), {step_size = 2.5}) end,
       "StepLR: step_size must be a positive integer (got 2.5)"},
      {"T_max <= 0", function() sched.CosineAnnealingLR(opt1(), {T_max = 0}) end,
       "CosineAnnealingLR: T_max must be a positive integer (got 0)"},
      {"T_0 <= 0", function() sched.CosineAnnealingWarmRestarts(opt1(), {T_0 = -1}) end,
       "CosineAnnealingWarmRestarts: T_0 must be a positive integer (got -1)"},
      {"T_mult < 1", function() sched.CosineAnnealingWarmRestarts(opt1(), {T_0 = 5, T_mult = 0}) end,
       "CosineAnnealingWarmRestarts: T_mult must be a positive integer (got 0)"},
      {"a negative epoch for CosineAnnealingWarmRestarts", function()
         sched.CosineAnnealingWarmRestarts(opt1(), {T_0 = 5}):step(-1) end,
       "CosineAnnealingWarmRestarts: expected a non-negative epoch, got -1"},
      {"a start_factor of 0", function() sched.LinearLR(opt1(), {start_factor = 0}) end,
       "LinearLR: start_factor must be a number in (0, 1] (got 0)"},
      {"an end_factor above 1", function() sched.LinearLR(opt1(), {end_factor = 1.5}) end,
       "LinearLR: end_factor must be a number in [0, 1] (got 1.5)"},
      {"a ConstantLR factor above 1", function() sched.ConstantLR(opt1(), {factor = 2}) end,
       "ConstantLR: factor must be a number in (0, 1] (got 2)"},
      {"a milestone that is not an integer", function()
         sched.MultiStepLR(opt1(), {milestones = {3, "x"}}) end,
       'MultiStepLR: milestones must be a list of integers (milestones[2] is "x")'},
      {"an unknown CyclicLR mode", function()
         sched.CyclicLR(opt1(), {base_lr = 0.01, max_lr = 0.1, mode = "sawtooth"}) end,
       'CyclicLR: mode must be one of "triangular", "triangular2", "exp_range" (got "sawtooth")'},
      {"an unknown scale_mode", function()
         sched.CyclicLR(opt1(), {base_lr = 0.01, max_lr = 0.1, scale_mode = "epoch"}) end,
       'CyclicLR: scale_mode must be one of "cycle", "iterations" (got "epoch")'},
      {"CyclicLR momentum cycling on Adam", function()
         sched.CyclicLR(adam1(), {base_lr = 0.01, max_lr = 0.1}) end,
       "CyclicLR: cycle_momentum needs an optimizer with a momentum option (pass cycle_momentum = false)"},
      {"a per-group list of the wrong length", function()
         sched.CyclicLR(opt2(), {base_lr = {0.01}, max_lr = 0.1}) end,
       "CyclicLR: expected 2 values for base_lr (one per param group), got 1"},
      {"an unknown anneal_strategy", function()
         sched.OneCycleLR(opt1(), {max_lr = 0.1, total_steps = 10, anneal_strategy = "cosine"}) end,
       'OneCycleLR: anneal_strategy must be one of "cos", "linear" (got "cosine")'},
      {"OneCycleLR without a length", function() sched.OneCycleLR(opt1(), {max_lr = 0.1, epochs = 3}) end,
       "OneCycleLR: give total_steps, or both epochs and steps_per_epoch"},
      {"a pct_start above 1", function()
         sched.OneCycleLR(opt1(), {max_lr = 0.1, total_steps = 10, pct_start = 1.5}) end,
       "OneCycleLR: pct_start must be a number in [0, 1] (got 1.5)"},
      {"OneCycleLR stepped past total_steps", function()
         local s = sched.OneCycleLR(opt1(), {max_lr = 0.1, total_steps = 3})
         for _ = 1, 4 do s:step() end end,
       "OneCycleLR: step 4 is past the end of the schedule (total_steps = 3)"},
      {"OneCycleLR on an optimizer without momentum or betas", function()
         sched.OneCycleLR(make_optimizer({{lr = 0.1}}), {max_lr = 0.1, total_steps = 3}) end,
       "OneCycleLR: cycle_momentum needs an optimizer with momentum or betas (pass cycle_momentum = false)"},
      {"an unknown ReduceLROnPlateau mode", function() sched.ReduceLROnPlateau(opt1(), {mode = "mn"}) end,
       'ReduceLROnPlateau: mode must be one of "min", "max" (got "mn")'},
      {"an unknown threshold_mode", function()
         sched.ReduceLROnPlateau(opt1(), {threshold_mode = "relative"}) end,
       'ReduceLROnPlateau: threshold_mode must be one of "rel", "abs" (got "relative")'},
      {"a plateau factor >= 1", function() sched.ReduceLROnPlateau(opt1(), {factor = 1.0}) end,
       "ReduceLROnPlateau: factor must be a number in [0, 1) (got 1.0)"},
      {"a min_lr list of the wrong length", function()
         sched.ReduceLROnPlateau(opt2(), {min_lr = {0, 0, 0}}) end,
       "ReduceLROnPlateau: expected 2 values for min_lr (one per param group), got 3"},
      {"ReduceLROnPlateau stepped without a metric", function()
         sched.ReduceLROnPlateau(opt1()):step() end,
       "ReduceLROnPlateau: step expects the monitored metric (a number or a 1-element tensor), got nil"},
      {"a lambda count that does not match the groups", function()
         sched.LambdaLR(opt2(), {lr_lambda = {FUNCTIONS.decay95}}) end,
       "LambdaLR: expected 2 lr_lambdas (one per param group), got 1"},
      {"a lambda that is not a function", function() sched.LambdaLR(opt1(), {lr_lambda = 0.9}) end,
       "LambdaLR: lr_lambda must be a function or a list of functions, got number"},
      {"a lambda returning a non-number", function()
         sched.LambdaLR(opt1(), {lr_lambda = function() return "x" end}) end,
       "LambdaLR: lr_lambda of group 1 returned string at epoch 0, expected a number"},
      {"something that is not an optimizer", function() sched.StepLR({}, {step_size = 1}) end,
       "StepLR: expected an optimizer (a table with a non-empty param_groups list), got a table without param_groups"},
      {"a group without an lr", function()
         sched.StepLR({param_groups = {{momentum = 0.9}}}, {step_size = 1}) end,
       "StepLR: optimizer param_groups[1] has no numeric lr"},
      {"resuming without initial_lr", function()
         sched.StepLR(opt1(), {step_size = 1, last_epoch = 5}) end,
       "StepLR: param_groups[1] has no initial_lr, which resuming with last_epoch = 5 needs"},
      {"SequentialLR with one milestone too many", function()
         local opt = opt1()
         local a, b = sched.LinearLR(opt), sched.ExponentialLR(opt, {gamma = 0.9})
         sched.SequentialLR(opt, {schedulers = {a, b}, milestones = {2, 4}}) end,
       "SequentialLR: expects one milestone fewer than schedulers, got 2 schedulers and 2 milestones"},
      {"SequentialLR over another optimizer's scheduler", function()
         local opt = opt1()
         local a, b = sched.LinearLR(opt), sched.ExponentialLR(opt1(), {gamma = 0.9})
         sched.SequentialLR(opt, {schedulers = {a, b}, milestones = {2}}) end,
       "SequentialLR: schedulers[2] belongs to a different optimizer"},
      {"SequentialLR over ReduceLROnPlateau", function()
         local opt = opt1()
         local a, b = sched.LinearLR(opt), sched.ReduceLROnPlateau(opt)
         sched.SequentialLR(opt, {schedulers = {a, b}, milestones = {2}}) end,
       "SequentialLR: schedulers[2] is a ReduceLROnPlateau, which cannot be composed this way"},
      {"ChainedScheduler over schedulers of two optimizers", function()
         sched.ChainedScheduler({sched.LinearLR(opt1()), sched.LinearLR(opt1())}) end,
       "ChainedScheduler: schedulers[2] belongs to a different optimizer"},
      {"ChainedScheduler over nothing", function() sched.ChainedScheduler({}) end,
       "ChainedScheduler: expects a non-empty list of schedulers, got an empty table"},
      {"ChainedScheduler given an optimizer", function()
         local opt = opt1()
         sched.ChainedScheduler(opt, {sched.LinearLR(opt)}) end,
       "ChainedScheduler: takes only the list of schedulers (no optimizer, no options)"},
    }
    for _, c in ipairs(cases) do
      it("rejects " .. c[1], function()
        local ok, err = pcall(c[2])
        assert.is_false(ok)
        assert.equal(c[3], (tostring(err):gsub("^[^:]*:%d+: ", "")))
      end)
    end

    it("points at the caller's line", function()
      local ok, err = pcall(function() sched.StepLR(opt1(), {step_size = 0}) end)
      assert.is_false(ok)
      assert.matches("^spec/sched_spec%.lua:%d+: StepLR: step_size", err)
      ok, err = pcall(function()
        sched.CyclicLR(opt2(), {base_lr = {0.1}, max_lr = 0.2})
      end)
      assert.matches("^spec/sched_spec%.lua:%d+: CyclicLR:", err)
      ok, err = pcall(function() sched.ReduceLROnPlateau(opt1()):step("x") end)
      assert.matches("^spec/sched_spec%.lua:%d+: ReduceLROnPlateau:", err)
    end)
  end)

  describe("with moongrad.optim", function()
    local mg = require "moongrad"
    local optim = require "moongrad.optim"
    local TRAJ_REL, TRAJ_ABS = 1e-10, 1e-14  -- the optimizers' own float64 arithmetic

    local function param()
      return mg.tensor({0.0}, "float64"):requires_grad()
    end

    -- Drives the optimizer over the fixture's quadratic sum(c * p^2).
    for _, t in ipairs(ref.trajectories) do
      it(("follows torch's parameters with %s"):format(t.name), function()
        local c = ref.trajectories.c
        local p = mg.tensor(ref.trajectories.p0, "float64"):requires_grad()
        local opt = optim[t.optimizer]({p}, deep_copy(t.optimizer_opts))
        local s = build(t.kind, t.opts, opt)
        for k = 1, #t.params do
          local v, g, loss = p:totable(), {}, 0
          for i = 1, #v do
            loss = loss + c[i] * v[i] * v[i]
            g[i] = 2 * c[i] * v[i]
          end
          p.grad = mg.tensor(g, "float64")
          opt:step()
          if t.kind == "ReduceLROnPlateau" then s:step(loss) else s:step() end
          assert.is_true(close(opt.param_groups[1].lr, t.lr[k]),
                         ("step %d: lr %.17g, torch %.17g"):format(k, opt.param_groups[1].lr, t.lr[k]))
          for i, x in ipairs(p:totable()) do
            local e = t.params[k][i]
            if math.abs(x - e) > TRAJ_ABS + TRAJ_REL * math.abs(e) then
              error(("step %d, p[%d]: %.17g, torch %.17g"):format(k, i, x, e))
            end
          end
        end
      end)
    end

    it("makes optim.SGD step with the scheduled rate", function()
      local p = param()
      local opt = optim.SGD({p}, {lr = 1.0})
      local s = sched.StepLR(opt, {step_size = 1, gamma = 0.5})
      local expected = 0
      for _ = 1, 4 do
        p.grad = mg.tensor({1.0}, "float64")
        expected = expected - opt.param_groups[1].lr
        opt:step()
        s:step()
      end
      assert.equal(expected, p:item())       -- -(1 + 0.5 + 0.25 + 0.125)
      assert.equal(0.0625, opt.param_groups[1].lr)
    end)

    it("sets optim.Adam's beta1 with OneCycleLR, keeping beta2", function()
      local opt = optim.Adam({param()}, {lr = 0.001, betas = {0.9, 0.999}})
      local s = sched.OneCycleLR(opt, {max_lr = 0.01, total_steps = 10})
      assert.same({0.95, 0.999}, opt.param_groups[1].betas)
      for _ = 1, 3 do opt:step(); s:step() end
      assert.is_true(opt.param_groups[1].betas[1] < 0.95)
      assert.equal(0.999, opt.param_groups[1].betas[2])
    end)

    it("refuses to cycle momentum on optim.Adam or optim.Adagrad with CyclicLR", function()
      local adam = optim.Adam({param()}, {lr = 0.001})
      assert.has_error(function() sched.CyclicLR(adam, {base_lr = 0.001, max_lr = 0.01}) end)
      sched.CyclicLR(adam, {base_lr = 0.001, max_lr = 0.01, cycle_momentum = false})
      local adagrad = optim.Adagrad({param()}, {lr = 0.01})
      assert.has_error(function() sched.OneCycleLR(adagrad, {max_lr = 0.1, total_steps = 5}) end)
    end)

    it("resumes from the optimizer's and the scheduler's state dicts", function()
      local function run(n, from)
        local p = mg.tensor(from and from.p or {1.0, -2.0}, "float64"):requires_grad()
        local opt = optim.SGD({p}, {lr = 0.1, momentum = 0.9})
        local s = sched.OneCycleLR(opt, {max_lr = 0.1, total_steps = 30})
        if from then
          opt:load_state_dict(from.opt)
          s:load_state_dict(from.sched)
        end
        local trace = {}
        for i = 1, n do
          p.grad = p:detach() * 2
          opt:step()
          s:step()
          local g = opt.param_groups[1]
          trace[i] = {g.lr, g.momentum, p:totable()}
        end
        return trace, {opt = opt:state_dict(), sched = s:state_dict(), p = p:totable()}
      end
      local straight = run(20)
      local _, saved = run(10)
      local resumed = run(10, saved)
      for i = 1, 10 do assert.same(straight[10 + i], resumed[i]) end
    end)
  end)
end)

describe("scripts/schedules.lua", function()
  it("draws every schedule as a 100-step sparkline", function()
    local p = io.popen(BUILD .. "/moongrad scripts/schedules.lua 2>&1")
    local out = p:read("a")
    assert.is_true(p:close(), out)
    local lines, moms = 0, 0
    for line in out:gmatch("[^\n]+") do
      local bars = line:match("^  lr  (%S+)")
      if bars then
        lines = lines + 1
        assert.equal(100, utf8.len(bars), line)
      end
      if line:match("^  mom ") then moms = moms + 1 end
    end
    assert.equal(17, lines, out)
    assert.equal(4, moms, out)   -- OneCycleLR twice, CyclicLR twice
  end)
end)
