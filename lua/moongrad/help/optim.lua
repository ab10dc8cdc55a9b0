-- Help for moongrad.optim (optimizers, gradient clipping), moongrad.sched
-- (learning-rate schedules) and moongrad.train (fit, evaluate, callbacks).
-- The form of an entry is described in moongrad/help.lua.

-- A tiny parameter, for the instances below.
local function one_param()
  return require("moongrad").zeros(1):requires_grad()
end

local function sgd()
  return require("moongrad.optim").SGD({ one_param() }, { lr = 0.1 })
end

-- The shared parts of the optimizer entries.
local PARAMS = [[params is an array of tensors, a module (its :parameters()) or an array of parameter groups {params = {...}, <option> = ...} whose options override the defaults for those tensors.]]

local function opt_instance(kind, opts)
  return function() return require("moongrad.optim")[kind]({ one_param() }, opts) end
end

return {
  ---------------------------------------------------------------------------
  -- optim

  optim = {
    sig = 'local optim = require "moongrad.optim"',
    doc = [[Optimizers with torch.optim's names, options, defaults and update rules (PyTorch 1.13's single-tensor code, operation by operation, so float32 and float64 trajectories match PyTorch's), each parameter's update one fused C kernel; and gradient clipping. An optimizer takes the parameters (tensors, a module, or parameter groups) and an options table; each training step is opt:zero_grad(), loss:backward(), opt:step(). Schedulers (moongrad.sched) change opt.param_groups[i].lr between steps. One difference from PyTorch: the kernels flush subnormal numbers to zero.]],
    groups = { "Optimizers", "Gradient clipping", "Base class" },
    example = [[
local net = nn.Linear(3, 1)
local opt = optim.AdamW(net, {lr = 1e-2, weight_decay = 0.05})
local x, y = mg.randn(8, 3), mg.randn(8, 1)
for _ = 1, 2 do
  opt:zero_grad(); F.mse_loss(net(x), y):backward()
  optim.clip_grad_norm(net, 1.0); opt:step()
end
print(opt.state[net.weight].step)   --> 2]],
    see = { "optim.SGD", "optim.Adam", "optim.AdamW", "optim.Optimizer", "sched", "train.fit" },
  },

  ["optim.SGD"] = {
    sig = "optim.SGD(params, {lr = ... [, momentum] [, dampening] [, weight_decay] [, nesterov] [, maximize]})",
    doc = PARAMS .. [[ Stochastic gradient descent as torch.optim.SGD; lr has no default and must be given (in the options or in every group). With g = grad + weight_decay * p, a momentum buffer b = g on the first step and b = momentum * b + (1 - dampening) * g after; the step is p = p - lr * d with d = g (no momentum), b, or g + momentum * b (nesterov). nesterov needs momentum > 0 and dampening = 0; a bad option raises "SGD: <option> ...".]],
    opts = {
      { "lr", "required", "learning rate, a finite number >= 0" },
      { "momentum", "0", "momentum factor (0: no buffer is kept)" },
      { "dampening", "0", "dampening of the gradient added to the momentum buffer" },
      { "weight_decay", "0", "L2 penalty: adds weight_decay * p to the gradient" },
      { "nesterov", "false", "Nesterov momentum" },
      { "maximize", "false", "ascend: the gradient is negated first" },
    },
    example = [[
local w = mg.tensor({1.0, 2.0}, "float64"):requires_grad()
local opt = optim.SGD({w}, {lr = 0.1, momentum = 0.9})
for _ = 1, 2 do
  opt:zero_grad(); (w * w):sum():backward(); opt:step()
end
print(("%.3f %.3f"):format(w:totable()[1], w:totable()[2]))   --> 0.460 0.920]],
    group = "Optimizers",
    instance = opt_instance("SGD", { lr = 0.1 }),
    methods_of = "optim.Optimizer",
    see = { "optim.Optimizer:step", "optim.Adam", "sched.StepLR" },
  },

  ["optim.Adam"] = {
    sig = "optim.Adam(params [, {lr, betas, eps, weight_decay, amsgrad, maximize}])",
    doc = PARAMS .. [[ Adam as torch.optim.Adam: with g = grad + weight_decay * p (coupled decay: an L2 penalty that the adaptive step rescales, unlike AdamW), m = beta1 * m + (1 - beta1) * g, v = beta2 * v + (1 - beta2) * g^2, and at step t

  p = p - lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)

amsgrad uses the running maximum of v instead of v. The state is exp_avg, exp_avg_sq (and max_exp_avg_sq), as in PyTorch.]],
    opts = {
      { "lr", "1e-3", "learning rate" },
      { "betas", "{0.9, 0.999}", "decay rates of the first and second moment averages, each in [0, 1)" },
      { "eps", "1e-8", "added to the denominator" },
      { "weight_decay", "0", "L2 penalty added to the gradient (coupled)" },
      { "amsgrad", "false", "use the maximum of the second moments seen so far" },
      { "maximize", "false", "ascend: the gradient is negated first" },
    },
    example = [[
local w = mg.tensor({1.0, -1.0}):requires_grad()
local opt = optim.Adam({w}, {lr = 0.1})
opt:zero_grad(); (w * w):sum():backward(); opt:step()
print(("%.2f %.2f"):format(w:totable()[1], w:totable()[2]))   --> 0.90 -0.90
print(opt.state[w].step, opt.state[w].exp_avg:shape()[1])    --> 1  2]],
    group = "Optimizers",
    instance = opt_instance("Adam"),
    methods_of = "optim.Optimizer",
    see = { "optim.AdamW", "optim.NAdam", "optim.RAdam", "optim.Adamax" },
  },

  ["optim.AdamW"] = {
    sig = "optim.AdamW(params [, {lr, betas, eps, weight_decay, amsgrad, maximize}])",
    doc = PARAMS .. [[ Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW: before the Adam update the parameter shrinks, p = p * (1 - lr * weight_decay), and the gradient itself is left alone, so every weight decays by the same factor whatever the size of its gradients (no L2 penalty on the loss does that for Adam). Otherwise the update is Adam's; note the default weight_decay is 1e-2, not 0.]],
    opts = {
      { "lr", "1e-3", "learning rate" },
      { "betas", "{0.9, 0.999}", "decay rates of the moment averages, each in [0, 1)" },
      { "eps", "1e-8", "added to the denominator" },
      { "weight_decay", "1e-2", "decoupled decay: p shrinks by lr * weight_decay each step" },
      { "amsgrad", "false", "use the maximum of the second moments seen so far" },
      { "maximize", "false", "ascend: the gradient is negated first" },
    },
    example = [[
local w = mg.ones(2):requires_grad()
local opt = optim.AdamW({w}, {lr = 0.1, weight_decay = 0.5})
w.grad = mg.zeros(2)          -- no gradient signal: only the decay acts
opt:step()
print(("%.2f"):format(w:totable()[1]))   --> 0.95]],
    group = "Optimizers",
    instance = opt_instance("AdamW"),
    methods_of = "optim.Optimizer",
    see = { "optim.Adam", "nn.l2_penalty" },
  },

  ["optim.RMSprop"] = {
    sig = "optim.RMSprop(params [, {lr, alpha, eps, weight_decay, momentum, centered, maximize}])",
    doc = PARAMS .. [[ RMSprop as torch.optim.RMSprop: with g = grad + weight_decay * p, the running average of squares s = alpha * s + (1 - alpha) * g^2, and a = sqrt(s) + eps (centered: sqrt(s - mean(g)^2) + eps, keeping a running mean of g), the step is p = p - lr * g / a; with momentum > 0 a buffer b = momentum * b + g / a is kept and p = p - lr * b. Note eps is added after the square root, as in PyTorch (not inside it, as in Keras).]],
    opts = {
      { "lr", "1e-2", "learning rate" },
      { "alpha", "0.99", "decay rate of the average of squared gradients" },
      { "eps", "1e-8", "added to the denominator" },
      { "weight_decay", "0", "L2 penalty added to the gradient" },
      { "momentum", "0", "momentum factor" },
      { "centered", "false", "normalize by the estimated variance of the gradient" },
      { "maximize", "false", "ascend: the gradient is negated first" },
    },
    example = [[
local w = mg.tensor({1.0}):requires_grad()
local opt = optim.RMSprop({w}, {lr = 0.01})
opt:zero_grad(); (w * w):sum():backward(); opt:step()
print(("%.4f"):format(w:item()))   --> 0.9000]],
    group = "Optimizers",
    instance = opt_instance("RMSprop"),
    methods_of = "optim.Optimizer",
    see = { "optim.Adam", "optim.Adagrad" },
  },

  ["optim.Adagrad"] = {
    sig = "optim.Adagrad(params [, {lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize}])",
    doc = PARAMS .. [[ Adagrad as torch.optim.Adagrad: with g = grad + weight_decay * p, the sum of squares s = s + g^2 (starting at initial_accumulator_value) and the step's rate clr = lr / (1 + (t - 1) * lr_decay) at step t, p = p - clr * g / (sqrt(s) + eps). The state (sum) is made at a parameter's first step, not at construction as in PyTorch.]],
    opts = {
      { "lr", "1e-2", "learning rate" },
      { "lr_decay", "0", "the rate decays as lr / (1 + (t - 1) * lr_decay)" },
      { "weight_decay", "0", "L2 penalty added to the gradient" },
      { "initial_accumulator_value", "0", "starting value of the sum of squares" },
      { "eps", "1e-10", "added to the denominator" },
      { "maximize", "false", "ascend: the gradient is negated first" },
    },
    example = [[
local w = mg.tensor({1.0}):requires_grad()
local opt = optim.Adagrad({w}, {lr = 0.5})
opt:zero_grad(); (w * w):sum():backward(); opt:step()
print(("%.2f"):format(w:item()), opt.state[w].sum:item())   --> 0.50  4.0]],
    group = "Optimizers",
    instance = opt_instance("Adagrad"),
    methods_of = "optim.Optimizer",
    see = { "optim.RMSprop", "optim.Adam" },
  },

  ["optim.Adamax"] = {
    sig = "optim.Adamax(params [, {lr, betas, eps, weight_decay, maximize}])",
    doc = PARAMS .. [[ Adamax (Adam with the infinity norm) as torch.optim.Adamax: with g = grad + weight_decay * p, m = beta1 * m + (1 - beta1) * g and u = max(beta2 * u, |g| + eps), the step is p = p - lr / (1 - beta1^t) * m / u. State: exp_avg and exp_inf.]],
    opts = {
      { "lr", "2e-3", "learning rate" },
      { "betas", "{0.9, 0.999}", "decay rates of the average and of the infinity norm, each in [0, 1)" },
      { "eps", "1e-8", "added to |g|" },
      { "weight_decay", "0", "L2 penalty added to the gradient" },
      { "maximize", "false", "ascend: the gradient is negated first" },
    },
    example = [[
local w = mg.tensor({1.0}):requires_grad()
local opt = optim.Adamax({w}, {lr = 0.1})
opt:zero_grad(); (w * w):sum():backward(); opt:step()
print(("%.2f"):format(w:item()))   --> 0.90]],
    group = "Optimizers",
    instance = opt_instance("Adamax"),
    methods_of = "optim.Optimizer",
    see = { "optim.Adam" },
  },

  ["optim.NAdam"] = {
    sig = "optim.NAdam(params [, {lr, betas, eps, weight_decay, momentum_decay}])",
    doc = PARAMS .. [[ Adam with Nesterov momentum (Dozat), as torch.optim.NAdam 1.13. With g = grad + weight_decay * p (coupled decay), m and v Adam's averages, mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)), P_t = mu_1 * ... * mu_t (kept in the state as mu_product, in float32 as PyTorch does) and d = sqrt(v / (1 - beta2^t)) + eps, step t is

  p = p - lr * (1 - mu_t) / (1 - P_t) * g / d
        - lr * mu_(t+1) / (1 - P_(t+1)) * m / d

Like PyTorch 1.13's NAdam it has no maximize option.]],
    opts = {
      { "lr", "2e-3", "learning rate" },
      { "betas", "{0.9, 0.999}", "decay rates of the moment averages, each in [0, 1)" },
      { "eps", "1e-8", "added to the denominator" },
      { "weight_decay", "0", "L2 penalty added to the gradient" },
      { "momentum_decay", "4e-3", "how fast mu_t approaches beta1" },
    },
    example = [[
local w = mg.tensor({1.0}):requires_grad()
local opt = optim.NAdam({w}, {lr = 0.1})
opt:zero_grad(); (w * w):sum():backward(); opt:step()
print(opt.state[w].step, opt.state[w].mu_product < 1)   --> 1  true]],
    group = "Optimizers",
    instance = opt_instance("NAdam"),
    methods_of = "optim.Optimizer",
    see = { "optim.Adam", "optim.RAdam" },
  },

  ["optim.RAdam"] = {
    sig = "optim.RAdam(params [, {lr, betas, eps, weight_decay}])",
    doc = PARAMS .. [[ Rectified Adam (Liu et al.) as torch.optim.RAdam 1.13. With g = grad + weight_decay * p (coupled decay), m and v Adam's averages and m_hat = m / (1 - beta1^t): while the variance of the adaptive rate is intractable (rho_t <= 5: the first five steps with the default betas) the step is p = p - lr * m_hat, momentum SGD; after that

  p = p - lr * r_t * m_hat * sqrt(1 - beta2^t) / (sqrt(v) + eps)

r_t being the variance rectification term. Like PyTorch 1.13's RAdam it has no maximize option.]],
    opts = {
      { "lr", "1e-3", "learning rate" },
      { "betas", "{0.9, 0.999}", "decay rates of the moment averages, each in [0, 1)" },
      { "eps", "1e-8", "added to the denominator" },
      { "weight_decay", "0", "L2 penalty added to the gradient" },
    },
    example = [[
local w = mg.tensor({1.0}):requires_grad()
local opt = optim.RAdam({w}, {lr = 0.1})
opt:zero_grad(); (w * w):sum():backward(); opt:step()
-- step 1 is not rectified yet: plain momentum SGD, 1 - 0.1 * 2
print(("%.2f"):format(w:item()))   --> 0.80]],
    group = "Optimizers",
    instance = opt_instance("RAdam"),
    methods_of = "optim.Optimizer",
    see = { "optim.Adam", "optim.NAdam" },
  },

  ["optim.clip_grad_norm"] = {
    sig = "optim.clip_grad_norm(params, max_norm [, {norm_type = 2, error_if_nonfinite = false}])",
    doc = [[Rescales the gradients of params (a tensor, an array of tensors or a module; tensors without .grad are skipped) in place so that their total norm, taken over all of them together, is at most max_norm: each is multiplied by max_norm / (total + 1e-6) when that is below 1. Returns the total norm before clipping (0.0 when no tensor has a gradient), as torch.nn.utils.clip_grad_norm_ does. norm_type is any number > 0, or math.huge (or "inf") for the largest magnitude; max_norm must be >= 0. Call it between backward() and opt:step().]],
    opts = {
      { "norm_type", "2", "order of the norm; math.huge or \"inf\" for the max norm" },
      { "error_if_nonfinite", "false", "raise when the total norm is nan or infinite (otherwise an infinite norm multiplies the gradients by 0, and a nan one leaves them as they are)" },
    },
    example = [[
local w = mg.zeros(2):requires_grad()
w.grad = mg.tensor({3.0, 4.0})
print(optim.clip_grad_norm({w}, 1.0))   --> 5.0
print(("%.3f %.3f"):format(w.grad:totable()[1], w.grad:totable()[2]))   --> 0.600 0.800]],
    group = "Gradient clipping",
    see = { "optim.clip_grad_value", "train.fit" },
  },

  ["optim.clip_grad_value"] = {
    sig = "optim.clip_grad_value(params, clip_value)",
    doc = [[Clamps every gradient of params (a tensor, an array of tensors or a module) to [-clip_value, clip_value] in place, as torch.nn.utils.clip_grad_value_; returns nothing. clip_value must be a number >= 0. Unlike clip_grad_norm this changes the direction of the gradient.]],
    example = [[
local w = mg.zeros(2):requires_grad()
w.grad = mg.tensor({-3.0, 0.5})
optim.clip_grad_value(w, 1.0)
print(w.grad:totable()[1], w.grad:totable()[2])   --> -1.0  0.5]],
    group = "Gradient clipping",
    see = { "optim.clip_grad_norm" },
  },

  ["optim.Optimizer"] = {
    sig = "getmetatable(opt) == optim.Optimizer",
    doc = [[The class every optimizer (optim.SGD, optim.Adam, ...) is an instance of; a script uses it for type checks. An optimizer has opt.kind ("Adam"), opt.param_groups (a list of groups {params = {...}, lr = ..., <every option>}: change an option, as schedulers change lr, and the next step uses it), opt.state (per-parameter state keyed by the parameter tensor: {step = n, exp_avg = tensor, ...}, PyTorch's names) and opt.defaults (the constructor's options, completed). tostring(opt) lists the groups and their options.]],
    example = [[
local opt = optim.Adam({mg.zeros(2):requires_grad()})
print(getmetatable(opt) == optim.Optimizer, opt.kind)   --> true  Adam
print(opt.param_groups[1].lr, opt.defaults.eps)         --> 0.001  1e-08]],
    group = "Base class",
    see = { "optim.Optimizer:step", "optim.Optimizer:state_dict", "optim.Optimizer:add_param_group" },
  },

  ["optim.Optimizer:step"] = {
    sig = "opt:step([closure])",
    doc = [[One update of every parameter that has a .grad, with its group's current options; parameters without a gradient are skipped and get no state. closure, when given, is called first with grad mode on (it should zero the gradients, compute the loss and call backward) and its value is returned, as with PyTorch's step(closure); without it step returns nil.]],
    example = [[
local w = mg.tensor({3.0}):requires_grad()
local opt = optim.SGD({w}, {lr = 0.25})
local loss = opt:step(function()
  opt:zero_grad()
  local l = (w * w):sum(); l:backward(); return l
end)
print(loss:item(), w:item())   --> 9.0  1.5]],
    see = { "optim.Optimizer:zero_grad", "optim.clip_grad_norm" },
  },

  ["optim.Optimizer:zero_grad"] = {
    sig = "opt:zero_grad([{set_to_none = true}])",
    doc = [[Clears the gradients of every parameter of every group before the next backward (gradients accumulate otherwise). By default each .grad is set to nil, which frees it at once (PyTorch 2's default; 1.13's was false); with set_to_none = false existing gradients are zeroed in place instead.]],
    opts = {
      { "set_to_none", "true", "drop the gradients (true) or fill them with zeros (false)" },
    },
    example = [[
local w = mg.ones(2):requires_grad()
local opt = optim.SGD({w}, {lr = 0.1})
w:sum():backward()
opt:zero_grad({set_to_none = false}); print(w.grad:sum():item())   --> 0.0
opt:zero_grad(); print(w.grad)                                     --> nil]],
    see = { "optim.Optimizer:step" },
  },

  ["optim.Optimizer:add_param_group"] = {
    sig = "opt:add_param_group({params = ... [, <option> = value, ...]})",
    doc = [[Adds a parameter group to opt, e.g. layers unfrozen part-way through training. params is a tensor, an array of tensors or a module; options not given come from opt.defaults. It raises, adding nothing, on an unknown or invalid option, a parameter already in opt, an int64 or non-leaf tensor, or an empty list. Schedulers made earlier do not know the new group.]],
    example = [[
local w, b = mg.randn(3, 2):requires_grad(), mg.zeros(3):requires_grad()
local opt = optim.SGD({w}, {lr = 0.1, momentum = 0.9})
opt:add_param_group({params = {b}, lr = 0.01})
print(#opt.param_groups, opt.param_groups[2].lr, opt.param_groups[2].momentum)   --> 2  0.01  0.9]],
    see = { "optim.Optimizer" },
  },

  ["optim.Optimizer:state_dict"] = {
    sig = "opt:state_dict()",
    doc = [[The optimizer's state as a table in PyTorch's layout: {state = {[i] = {step = n, exp_avg = tensor, ...}}, param_groups = {{lr = ..., <options>, params = {1, 2, ...}}}}, parameters numbered from 1 across the groups in order. The state tensors are clones and the options copies, so later steps do not change it. Save it with the model (moongrad.checkpoint does both) to resume training exactly.]],
    example = [[
local w = mg.ones(2):requires_grad()
local opt = optim.SGD({w}, {lr = 0.1, momentum = 0.9})
w:sum():backward(); opt:step()
local sd = opt:state_dict()
print(sd.state[1].step, sd.param_groups[1].params[1], sd.param_groups[1].momentum)   --> 1  1  0.9]],
    see = { "optim.Optimizer:load_state_dict" },
  },

  ["optim.Optimizer:load_state_dict"] = {
    sig = "opt:load_state_dict(sd)",
    doc = [[Restores a state dict made by state_dict(), possibly by another optimizer of the same kind over the same parameters in the same group layout: the groups' options are replaced (the group tables stay the same objects) and the per-parameter state installed, so training continues bit for bit. All or nothing: the number of groups and of parameters per group must match, every option is checked as the constructor checks it, step must be a positive integer and each state tensor of its parameter's shape, finite, and >= 0 where the update takes its square root; the first problem raises and nothing changes.]],
    example = [[
local w = mg.ones(2):requires_grad()
local a = optim.Adam({w}, {lr = 0.1})
w:sum():backward(); a:step()
local b = optim.Adam({w})
b:load_state_dict(a:state_dict())
print(b.param_groups[1].lr, b.state[w].step)   --> 0.1  1
print(pcall(b.load_state_dict, b, {state = {}, param_groups = {}}))]],
    see = { "optim.Optimizer:state_dict", "optim.Optimizer:prepare_load_state_dict" },
  },

  ["optim.Optimizer:prepare_load_state_dict"] = {
    sig = "opt:prepare_load_state_dict(sd) --> apply",
    doc = [[Checks sd exactly as load_state_dict does and builds what loading it needs, changing nothing; returns a function apply() that installs it and cannot fail. Raises on the first problem. moongrad.checkpoint restores a whole training state this way, checking every part before changing any.]],
    example = [[
local w = mg.ones(2):requires_grad()
local a = optim.SGD({w}, {lr = 0.5})
local b = optim.SGD({w}, {lr = 0.1})
local apply = b:prepare_load_state_dict(a:state_dict())
print(b.param_groups[1].lr)   --> 0.1
apply()
print(b.param_groups[1].lr)   --> 0.5]],
    see = { "optim.Optimizer:load_state_dict" },
  },

  ---------------------------------------------------------------------------
  -- sched

  sched = {
    sig = 'local sched = require "moongrad.sched"',
    doc = [[Learning-rate schedules with torch.optim.lr_scheduler's names, options and semantics (PyTorch 1.13: the same rate at every step, to the last bit), so a published recipe's schedule carries over. A scheduler drives an optimizer: it writes opt.param_groups[i].lr (OneCycleLR and CyclicLR also momentum or beta1). Constructing one performs PyTorch's initial step (each group gets initial_lr, last_epoch becomes 0 and the groups hold the first rate); call s:step() after opt:step(), once per batch or once per epoch as the schedule is meant, and s:step(val_loss) for ReduceLROnPlateau. A misspelt or out-of-range option raises an error naming the scheduler and the option.]],
    groups = { "Decay", "Warm-up and annealing", "Cyclic", "On a metric", "Composition", "Base class" },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.StepLR(opt, {step_size = 2, gamma = 0.5})
local lrs = {}
for i = 1, 5 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.1 0.1 0.05 0.05 0.025
print(s.last_epoch, s:get_last_lr()[1])   --> 5  0.025]],
    see = { "sched.Scheduler", "sched.OneCycleLR", "sched.ReduceLROnPlateau", "optim", "train.fit" },
  },

  ["sched.Scheduler"] = {
    sig = 'local Scheduler = require("moongrad.sched.base").Scheduler',
    doc = [[The class every scheduler is made from (PyTorch's _LRScheduler); its methods, listed as sched.Scheduler:<name>, are shared by all of them, except that ReduceLROnPlateau and CosineAnnealingWarmRestarts have a step of their own and SequentialLR's and ChainedScheduler's step takes no argument. A scheduler s has s.optimizer, s.base_lrs (each group's initial_lr), s.last_epoch (the steps taken; 0 after construction) and s.verbose; tostring(s) shows the class, last_epoch and the current rates. sched.is_scheduler(v) tells a scheduler from other values; the class itself only matters for writing a new kind (Scheduler:extend).]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.ExponentialLR(opt, {gamma = 0.5})
s:step()
print(s)                           --> ExponentialLR(last_epoch=1, lr={0.05})
print(s.base_lrs[1], s.last_epoch)   --> 0.1  1]],
    group = "Base class",
    instance = function()
      return require("moongrad.sched").StepLR(sgd(), { step_size = 1 })
    end,
    see = { "sched.Scheduler:step", "sched.Scheduler:get_last_lr", "sched.Scheduler:state_dict", "sched.is_scheduler" },
  },

  ["sched.Scheduler:step"] = {
    sig = { "s:step()", "s:step(epoch)" },
    doc = [[Advances the schedule by one: last_epoch grows by 1 and the next rates are written into the optimizer's groups, computed from the current rates as PyTorch does (so changes made to lr from outside carry on). Call it after opt:step(). s:step(epoch), deprecated in PyTorch but kept because SequentialLR and CosineAnnealingWarmRestarts rely on it, jumps to epoch and uses the schedule's closed form where it has one. ReduceLROnPlateau's step takes a metric instead.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 1.0})
local s = sched.ExponentialLR(opt, {gamma = 0.5})
s:step(); s:step()
print(s.last_epoch, opt.param_groups[1].lr)   --> 2  0.25
s:step(5)                                      -- jump: 1.0 * 0.5^5
print(s.last_epoch, opt.param_groups[1].lr)   --> 5  0.03125]],
    see = { "sched.Scheduler:get_last_lr", "sched.ReduceLROnPlateau:step" },
  },

  ["sched.Scheduler:get_last_lr"] = {
    sig = "s:get_last_lr() --> {lr of group 1, ...}",
    doc = [[The learning rates the scheduler set last, one per parameter group, as a new list (changing it changes nothing). The same values are in opt.param_groups[i].lr unless something else has written them since.]],
    example = [[
local w1, w2 = mg.zeros(1):requires_grad(), mg.zeros(1):requires_grad()
local opt = optim.SGD({{params = {w1}, lr = 0.1}, {params = {w2}, lr = 0.01}}, {lr = 1})
local s = sched.StepLR(opt, {step_size = 1, gamma = 0.5})
s:step()
local lrs = s:get_last_lr()
print(lrs[1], lrs[2])   --> 0.05  0.005]],
    see = { "sched.Scheduler:step" },
  },

  ["sched.Scheduler:state_dict"] = {
    sig = "s:state_dict()",
    doc = [[The scheduler's state as a plain table of numbers, strings, booleans and tables of them: last_epoch, base_lrs and the schedule's own fields, without the optimizer and without functions (LambdaLR's lambdas are not saved, as in PyTorch; a callable table's fields are). Save the optimizer's state_dict with it: the current rates live in the optimizer's groups.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.StepLR(opt, {step_size = 2})
for _ = 1, 3 do s:step() end
local sd = s:state_dict()
print(sd.last_epoch, sd.step_size, sd.gamma, sd.optimizer)   --> 3  2  0.1  nil]],
    see = { "sched.Scheduler:load_state_dict", "optim.Optimizer:state_dict" },
  },

  ["sched.Scheduler:load_state_dict"] = {
    sig = "s:load_state_dict(sd)",
    doc = [[Restores a state saved by state_dict() into a scheduler built the same way (same kind, an optimizer with as many groups); with the optimizer's own state restored too, the schedule continues exactly. A state dict may only set the scheduler's existing data fields, each checked (options as the constructor checks them, lists keeping their length, strings their value); all or nothing: the first problem raises "<Scheduler>: load_state_dict: ..." and nothing changes. It does not touch the optimizer's lr.]],
    example = [[
local w = mg.zeros(1):requires_grad()
local a = sched.StepLR(optim.SGD({w}, {lr = 0.1}), {step_size = 2})
local b = sched.StepLR(optim.SGD({w}, {lr = 0.1}), {step_size = 2})
for _ = 1, 3 do a:step() end
b:load_state_dict(a:state_dict())
print(b.last_epoch, b:get_last_lr()[1], b.optimizer.param_groups[1].lr)   --> 3  0.01  0.1
print(pcall(b.load_state_dict, b, {step_size = 0}))]],
    see = { "sched.Scheduler:state_dict", "sched.Scheduler:prepare_load_state_dict" },
  },

  ["sched.Scheduler:prepare_load_state_dict"] = {
    sig = "s:prepare_load_state_dict(sd) --> apply",
    doc = [[Checks sd as load_state_dict does and changes nothing; returns a function apply() that installs it and cannot fail. Raises on the first problem. moongrad.checkpoint uses it to restore every part of a training state or none.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.StepLR(opt, {step_size = 2})
local apply = s:prepare_load_state_dict({last_epoch = 7})
print(s.last_epoch)   --> 0
apply()
print(s.last_epoch)   --> 7]],
    see = { "sched.Scheduler:load_state_dict" },
  },

  ["sched.Scheduler:extend"] = {
    sig = "local MySched = Scheduler:extend(name)",
    doc = [[For writing a new kind of scheduler: returns a subclass called name that inherits the methods and copies the metamethods (so tostring and sched.is_scheduler work). The subclass defines _get_lr(self), returning the list of rates for the new self.last_epoch (computed from self.base_lrs, or from the current rates for a chainable form), and may define _closed_form_lr(self) for step(epoch). Its constructor calls Scheduler.new and then self:_initial_step().]],
    example = [[
local Scheduler = require("moongrad.sched.base").Scheduler
local Halving = Scheduler:extend("Halving")
function Halving:_get_lr() return {self.base_lrs[1] * 0.5 ^ self.last_epoch} end  -- one group
local s = Scheduler.new(Halving, optim.SGD({mg.zeros(1):requires_grad()}, {lr = 1}), -1)
s:_initial_step(); s:step(); s:step()
print(s, sched.is_scheduler(s))   --> Halving(last_epoch=2, lr={0.25})  true]],
    see = { "sched.Scheduler:new", "sched.LambdaLR" },
  },

  ["sched.Scheduler:new"] = {
    sig = "Scheduler.new(cls, opt, last_epoch [, verbose])",
    doc = [[For writing a new kind of scheduler: makes an instance of cls (a class from Scheduler:extend) on the optimizer opt, as PyTorch's _LRScheduler.__init__ up to its initial step, which the caller performs with self:_initial_step() once its own fields are set. With last_epoch = -1 every group gets initial_lr (its current lr) unless it has one; another last_epoch resumes a schedule and needs initial_lr in every group. Sets base_lrs, last_epoch, optimizer and verbose. Users construct schedulers through sched.StepLR and the others, not this.]],
    example = [[
local Scheduler = require("moongrad.sched.base").Scheduler
local Flat = Scheduler:extend("Flat")
function Flat:_get_lr() return {table.unpack(self.base_lrs)} end
local s = Scheduler.new(Flat, optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.3}), -1)
s:_initial_step()
print(s.last_epoch, s.base_lrs[1])   --> 0  0.3]],
    see = { "sched.Scheduler:extend" },
  },

  ["sched.is_scheduler"] = {
    sig = "sched.is_scheduler(v)",
    doc = [[True when v is a learning-rate scheduler made by moongrad.sched (any kind, including ReduceLROnPlateau and the composites, or a class made with Scheduler:extend), false for anything else.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.ExponentialLR(opt, {gamma = 0.9})
print(sched.is_scheduler(s), sched.is_scheduler(opt), sched.is_scheduler(nil))   --> true  false  false]],
    group = "Base class",
    see = { "sched.Scheduler" },
  },

  ["sched.StepLR"] = {
    sig = "sched.StepLR(opt, {step_size = n [, gamma] [, last_epoch] [, verbose]})",
    doc = [[Decays every group's rate by gamma every step_size steps: lr = base_lr * gamma ^ floor(epoch / step_size), epoch being s.last_epoch, as torch.optim.lr_scheduler.StepLR. step_size is a positive integer and gamma a finite number > 0.]],
    opts = {
      { "step_size", "required", "steps between decays, an integer > 0" },
      { "gamma", "0.1", "multiplicative factor of each decay" },
      { "last_epoch", "-1", "the last step done, to resume a schedule (needs each group's initial_lr)" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.StepLR(opt, {step_size = 2, gamma = 0.5})
local lrs = {}
for i = 1, 5 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.1 0.1 0.05 0.05 0.025]],
    group = "Decay",
    instance = function() return require("moongrad.sched").StepLR(sgd(), { step_size = 1 }) end,
    methods_of = "sched.Scheduler",
    see = { "sched.MultiStepLR", "sched.ExponentialLR" },
  },

  ["sched.MultiStepLR"] = {
    sig = "sched.MultiStepLR(opt, {milestones = {m1, m2, ...} [, gamma] [, last_epoch] [, verbose]})",
    doc = [[Decays every group's rate by gamma at each milestone step: lr = base_lr * gamma ^ (number of milestones <= epoch), as torch.optim.lr_scheduler.MultiStepLR. milestones is a list of integers, in any order; a milestone listed twice decays twice (PyTorch keeps a Counter).]],
    opts = {
      { "milestones", "required", "the steps at which the rate decays, a list of integers" },
      { "gamma", "0.1", "multiplicative factor of each decay" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.MultiStepLR(opt, {milestones = {2, 4}, gamma = 0.1})
local lrs = {}
for i = 1, 5 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.1 0.1 0.01 0.01 0.001]],
    group = "Decay",
    instance = function() return require("moongrad.sched").MultiStepLR(sgd(), { milestones = { 2 } }) end,
    methods_of = "sched.Scheduler",
    see = { "sched.StepLR" },
  },

  ["sched.ExponentialLR"] = {
    sig = "sched.ExponentialLR(opt, {gamma = g [, last_epoch] [, verbose]})",
    doc = [[Decays every group's rate by gamma at every step: lr = base_lr * gamma ^ epoch, as torch.optim.lr_scheduler.ExponentialLR. gamma is required, a finite number > 0.]],
    opts = {
      { "gamma", "required", "multiplicative factor per step" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 1.0})
local s = sched.ExponentialLR(opt, {gamma = 0.5})
local lrs = {}
for i = 1, 4 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 1 0.5 0.25 0.125]],
    group = "Decay",
    instance = function() return require("moongrad.sched").ExponentialLR(sgd(), { gamma = 0.9 }) end,
    methods_of = "sched.Scheduler",
    see = { "sched.StepLR", "sched.MultiplicativeLR" },
  },

  ["sched.LambdaLR"] = {
    sig = "sched.LambdaLR(opt, {lr_lambda = f [, last_epoch] [, verbose]})",
    doc = [[Sets every group's rate to base_lr * lr_lambda(epoch), epoch counting steps from 0, as torch.optim.lr_scheduler.LambdaLR. lr_lambda is a function (or callable table) or a list with one per parameter group, and must return a number. state_dict() does not save the functions, only the fields of callable tables, so a restored LambdaLR needs the same lambdas given again.]],
    opts = {
      { "lr_lambda", "required", "function(epoch) --> factor on base_lr, or a list of them, one per group" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.LambdaLR(opt, {lr_lambda = function(e) return 1 / (e + 1) end})
local lrs = {}
for i = 1, 4 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.1 0.05 0.03333 0.025]],
    group = "Decay",
    instance = function()
      return require("moongrad.sched").LambdaLR(sgd(), { lr_lambda = function() return 1 end })
    end,
    methods_of = "sched.Scheduler",
    see = { "sched.MultiplicativeLR" },
  },

  ["sched.MultiplicativeLR"] = {
    sig = "sched.MultiplicativeLR(opt, {lr_lambda = f [, last_epoch] [, verbose]})",
    doc = [[Multiplies every group's current rate by lr_lambda(epoch) at every step after construction, as torch.optim.lr_scheduler.MultiplicativeLR (LambdaLR scales the base rate instead). lr_lambda is a function or a list with one per group, returning a number; like LambdaLR's, the functions are not part of state_dict().]],
    opts = {
      { "lr_lambda", "required", "function(epoch) --> factor on the current rate, or a list of them, one per group" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.MultiplicativeLR(opt, {lr_lambda = function(e) return 0.5 end})
local lrs = {}
for i = 1, 4 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.1 0.05 0.025 0.0125]],
    group = "Decay",
    instance = function()
      return require("moongrad.sched").MultiplicativeLR(sgd(), { lr_lambda = function() return 1 end })
    end,
    methods_of = "sched.Scheduler",
    see = { "sched.LambdaLR", "sched.ExponentialLR" },
  },

  ["sched.ConstantLR"] = {
    sig = "sched.ConstantLR(opt [, {factor, total_iters, last_epoch, verbose}])",
    doc = [[Holds every group's rate at base_lr * factor for the first total_iters steps, then at base_lr, as torch.optim.lr_scheduler.ConstantLR: a crude warm-up. factor is in (0, 1] and total_iters an integer >= 0.]],
    opts = {
      { "factor", "1/3", "the factor on base_lr until total_iters, in (0, 1]" },
      { "total_iters", "5", "steps at the reduced rate" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.ConstantLR(opt, {factor = 0.5, total_iters = 2})
local lrs = {}
for i = 1, 4 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.05 0.05 0.1 0.1]],
    group = "Warm-up and annealing",
    instance = function() return require("moongrad.sched").ConstantLR(sgd()) end,
    methods_of = "sched.Scheduler",
    see = { "sched.LinearLR", "sched.SequentialLR" },
  },

  ["sched.LinearLR"] = {
    sig = "sched.LinearLR(opt [, {start_factor, end_factor, total_iters, last_epoch, verbose}])",
    doc = [[Moves the factor on base_lr linearly from start_factor to end_factor over total_iters steps, then keeps it: lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters), as torch.optim.lr_scheduler.LinearLR. The usual linear warm-up (followed by a decay through SequentialLR), or a linear decay with end_factor < start_factor. start_factor is in (0, 1], end_factor in [0, 1], total_iters an integer > 0.]],
    opts = {
      { "start_factor", "1/3", "factor on base_lr at step 0, in (0, 1]" },
      { "end_factor", "1.0", "factor on base_lr from step total_iters on, in [0, 1]" },
      { "total_iters", "5", "steps the change takes" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.LinearLR(opt, {start_factor = 0.25, total_iters = 3})
local lrs = {}
for i = 1, 5 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.025 0.05 0.075 0.1 0.1]],
    group = "Warm-up and annealing",
    instance = function() return require("moongrad.sched").LinearLR(sgd()) end,
    methods_of = "sched.Scheduler",
    see = { "sched.ConstantLR", "sched.SequentialLR", "sched.PolynomialLR" },
  },

  ["sched.PolynomialLR"] = {
    sig = "sched.PolynomialLR(opt [, {total_iters, power, last_epoch, verbose}])",
    doc = [[Decays every group's rate polynomially to 0 over total_iters steps, then keeps it at 0: lr = base_lr * (1 - min(epoch, total_iters) / total_iters) ^ power, as torch.optim.lr_scheduler.PolynomialLR. power = 1 is a linear decay to zero. total_iters is an integer > 0 and power a finite number > 0.]],
    opts = {
      { "total_iters", "5", "steps until the rate reaches 0" },
      { "power", "1.0", "the polynomial's power" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.PolynomialLR(opt, {total_iters = 4, power = 2})
local lrs = {}
for i = 1, 6 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.1 0.05625 0.025 0.00625 0 0]],
    group = "Warm-up and annealing",
    instance = function() return require("moongrad.sched").PolynomialLR(sgd()) end,
    methods_of = "sched.Scheduler",
    see = { "sched.LinearLR", "sched.CosineAnnealingLR" },
  },

  ["sched.CosineAnnealingLR"] = {
    sig = "sched.CosineAnnealingLR(opt, {T_max = n [, eta_min] [, last_epoch] [, verbose]})",
    doc = [[Anneals every group's rate along half a cosine from base_lr down to eta_min over T_max steps:

  lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2

computed in PyTorch's recursive form, so it composes with changes made to lr from outside, and past T_max the rate climbs back up (a period of 2 * T_max) rather than staying at eta_min. For restarts use CosineAnnealingWarmRestarts. T_max is an integer > 0, eta_min a number >= 0.]],
    opts = {
      { "T_max", "required", "steps from base_lr to eta_min" },
      { "eta_min", "0", "the lowest rate" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.CosineAnnealingLR(opt, {T_max = 4, eta_min = 0.001})
local lrs = {}
for i = 1, 5 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.1 0.0855 0.0505 0.0155 0.001]],
    group = "Warm-up and annealing",
    instance = function() return require("moongrad.sched").CosineAnnealingLR(sgd(), { T_max = 10 }) end,
    methods_of = "sched.Scheduler",
    see = { "sched.CosineAnnealingWarmRestarts", "sched.OneCycleLR", "sched.SequentialLR" },
  },

  ["sched.CosineAnnealingWarmRestarts"] = {
    sig = "sched.CosineAnnealingWarmRestarts(opt, {T_0 = n [, T_mult] [, eta_min] [, last_epoch] [, verbose]})",
    doc = [[SGDR (Loshchilov and Hutter): cosine annealing from base_lr to eta_min over T_i steps, then a restart at base_lr, the period starting at T_0 and multiplied by T_mult at each restart, as torch.optim.lr_scheduler.CosineAnnealingWarmRestarts:

  lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

Its step also takes a fractional epoch (see sched.CosineAnnealingWarmRestarts:step). T_0 and T_mult are integers >= 1, eta_min a number >= 0.]],
    opts = {
      { "T_0", "required", "steps in the first period" },
      { "T_mult", "1", "factor on the period after each restart, an integer >= 1" },
      { "eta_min", "0", "the lowest rate" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.CosineAnnealingWarmRestarts(opt, {T_0 = 2, T_mult = 2})
local lrs = {}
for i = 1, 7 do lrs[i] = ("%.3g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.1 0.05 0.1 0.0854 0.05 0.0146 0.1]],
    group = "Cyclic",
    instance = function()
      return require("moongrad.sched").CosineAnnealingWarmRestarts(sgd(), { T_0 = 2 })
    end,
    methods_of = "sched.Scheduler",
    see = { "sched.CosineAnnealingWarmRestarts:step", "sched.CosineAnnealingLR" },
  },

  ["sched.CosineAnnealingWarmRestarts:step"] = {
    sig = { "s:step()", "s:step(epoch)" },
    doc = [[s:step() advances one step, restarting when the period ends. s:step(epoch) jumps to epoch, which may be fractional: calling s:step(epoch + i / iters) after batch i of an epoch of iters batches anneals within the epoch, as in PyTorch's example. epoch must be a number >= 0; last_epoch becomes floor(epoch).]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.CosineAnnealingWarmRestarts(opt, {T_0 = 2})
s:step(0.5)
print(("%.4f"):format(opt.param_groups[1].lr), s.last_epoch)   --> 0.0854  0]],
    see = { "sched.CosineAnnealingWarmRestarts", "sched.Scheduler:step" },
  },

  ["sched.CyclicLR"] = {
    sig = "sched.CyclicLR(opt, {base_lr = lo, max_lr = hi [, <options>]})",
    doc = [[Cyclical learning rates (Smith), as torch.optim.lr_scheduler.CyclicLR: the rate climbs linearly from base_lr to max_lr over step_size_up steps and comes back over step_size_down, the cycle's height scaled by mode ("triangular": 1, "triangular2": halved every cycle, "exp_range": gamma ^ step) or by scale_fn(x), x being the cycle number (from 1) or the step, as scale_mode says. base_lr replaces the groups' lr at construction; step it after every batch. With cycle_momentum the optimizer's momentum goes the opposite way between max_momentum and base_momentum (turning momentum on for an SGD built without it), which needs an optimizer with a momentum option (SGD, RMSprop): for Adam pass cycle_momentum = false. base_lr, max_lr and the momenta take a number or a list with one per group.]],
    opts = {
      { "base_lr", "required", "the lower bound of the cycle (number or list per group)" },
      { "max_lr", "required", "the upper bound of the cycle (number or list per group)" },
      { "step_size_up", "2000", "steps from base_lr up to max_lr" },
      { "step_size_down", "nil", "steps back down; nil: step_size_up" },
      { "mode", '"triangular"', '"triangular", "triangular2" or "exp_range"' },
      { "gamma", "1.0", 'the per-step factor of "exp_range"' },
      { "scale_fn", "nil", "a custom function(x) --> scale in place of mode" },
      { "scale_mode", '"cycle"', 'what scale_fn gets: "cycle" (the cycle number) or "iterations" (the step)' },
      { "cycle_momentum", "true", "cycle the momentum inversely to the rate" },
      { "base_momentum", "0.8", "the momentum at the cycle's peak rate" },
      { "max_momentum", "0.9", "the momentum at base_lr" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1, momentum = 0.9})
local s = sched.CyclicLR(opt, {base_lr = 0.01, max_lr = 0.1, step_size_up = 2})
local lrs = {}
for i = 1, 5 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.01 0.055 0.1 0.055 0.01
print(("%.3g %.3g"):format(opt.param_groups[1].lr, opt.param_groups[1].momentum))   --> 0.055 0.85]],
    group = "Cyclic",
    instance = function()
      return require("moongrad.sched").CyclicLR(sgd(), { base_lr = 0.01, max_lr = 0.1 })
    end,
    methods_of = "sched.Scheduler",
    see = { "sched.CyclicLR:scale_fn", "sched.OneCycleLR" },
  },

  ["sched.CyclicLR:scale_fn"] = {
    sig = "s:scale_fn(x)",
    doc = [[The factor on the height of the cycle at x (the cycle number, from 1, or the step, per s.scale_mode): the scale_fn given to the constructor, or the mode's own: 1 for "triangular", 1 / 2^(x - 1) for "triangular2", gamma ^ x for "exp_range". Called by the scheduler at each step; useful to inspect a schedule.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.CyclicLR(opt, {base_lr = 0.01, max_lr = 0.1, mode = "triangular2"})
print(s:scale_fn(1), s:scale_fn(3))   --> 1.0  0.25]],
    see = { "sched.CyclicLR" },
  },

  ["sched.OneCycleLR"] = {
    sig = { "sched.OneCycleLR(opt, {max_lr = hi, total_steps = n [, <options>]})",
            "sched.OneCycleLR(opt, {max_lr = hi, epochs = e, steps_per_epoch = k [, <options>]})" },
    doc = [[The 1cycle policy (Smith), as torch.optim.lr_scheduler.OneCycleLR: the rate rises from max_lr / div_factor to max_lr over the first pct_start of the steps, then anneals to max_lr / div_factor / final_div_factor by the last step; with three_phase it first comes back down to the starting rate symmetrically, then anneals to the minimum. The momentum (SGD, RMSprop) or Adam's beta1 moves inversely between max_momentum and base_momentum. Step it after every batch, total_steps times (or epochs * steps_per_epoch): stepping past the end raises. The groups get initial_lr, max_lr and min_lr (and max_momentum, base_momentum) entries.]],
    opts = {
      { "max_lr", "required", "the peak rate (number or list per group)" },
      { "total_steps", "nil", "steps in the cycle; or give epochs and steps_per_epoch" },
      { "epochs", "nil", "with steps_per_epoch, when total_steps is not given" },
      { "steps_per_epoch", "nil", "with epochs" },
      { "pct_start", "0.3", "the fraction of the steps spent rising, in [0, 1]" },
      { "anneal_strategy", '"cos"', '"cos" or "linear"' },
      { "cycle_momentum", "true", "cycle momentum or beta1 inversely to the rate" },
      { "base_momentum", "0.85", "the momentum at the peak rate" },
      { "max_momentum", "0.95", "the momentum at the start and the end" },
      { "div_factor", "25.0", "the starting rate is max_lr / div_factor" },
      { "final_div_factor", "1e4", "the final rate is the starting rate / final_div_factor" },
      { "three_phase", "false", "come back down to the starting rate before the final annealing" },
      { "last_epoch", "-1", "the last step done, to resume a schedule" },
      { "verbose", "false", "print each change of the rate" },
    },
    example = [[
local opt = optim.Adam({mg.zeros(1):requires_grad()})
local s = sched.OneCycleLR(opt, {max_lr = 0.1, total_steps = 5, pct_start = 0.4})
print(opt.param_groups[1].betas[1])   --> 0.95
local lrs = {}
for i = 1, 5 do lrs[i] = ("%.3g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.004 0.1 0.075 0.025 4e-07]],
    group = "Cyclic",
    instance = function()
      return require("moongrad.sched").OneCycleLR(sgd(), { max_lr = 0.1, total_steps = 10 })
    end,
    methods_of = "sched.Scheduler",
    see = { "sched.CyclicLR", "sched.CosineAnnealingLR" },
  },

  ["sched.ReduceLROnPlateau"] = {
    sig = "sched.ReduceLROnPlateau(opt [, {mode, factor, patience, threshold, ...}])",
    doc = [[Lowers the rate when a metric stops improving, as torch.optim.lr_scheduler.ReduceLROnPlateau: call s:step(metric) once per evaluation (not per batch). A metric improves when it beats the best so far by more than threshold (relative or absolute); after more than patience steps without improvement every group's rate is multiplied by factor, not below min_lr and not at all when the change would be smaller than eps, and then cooldown steps are ignored. Construction changes no rate and, unlike the other schedulers, it takes no last_epoch. s.best holds the best metric (math.huge to start in "min" mode).]],
    opts = {
      { "mode", '"min"', '"min": lower is better (a loss); "max": higher is better (an accuracy)' },
      { "factor", "0.1", "the factor on the rate at each reduction, in [0, 1)" },
      { "patience", "10", "steps without improvement tolerated before reducing" },
      { "threshold", "1e-4", "the margin an improvement must beat" },
      { "threshold_mode", '"rel"', '"rel": best * (1 -/+ threshold); "abs": best -/+ threshold' },
      { "cooldown", "0", "steps after a reduction during which bad steps are not counted" },
      { "min_lr", "0", "the lowest rate (number or list per group)" },
      { "eps", "1e-8", "smaller changes of the rate are skipped" },
      { "verbose", "false", "print each reduction" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.ReduceLROnPlateau(opt, {patience = 1, factor = 0.5})
for _, val_loss in ipairs({1.0, 0.9, 0.95, 0.96, 0.97}) do s:step(val_loss) end
print(opt.param_groups[1].lr, s.best, s.num_bad_epochs)   --> 0.05  0.9  1]],
    group = "On a metric",
    instance = function() return require("moongrad.sched").ReduceLROnPlateau(sgd()) end,
    methods_of = "sched.Scheduler",
    see = { "sched.ReduceLROnPlateau:step", "train.fit", "train.EarlyStopping" },
  },

  ["sched.ReduceLROnPlateau:step"] = {
    sig = "s:step(metric [, epoch])",
    doc = [[Records one value of the monitored metric (a number or a 1-element tensor) and lowers the rates once it has not improved for more than patience steps. epoch, deprecated in PyTorch, sets last_epoch instead of adding one. Raises when metric is missing or not a number: unlike the other schedulers' step, this one cannot be called bare.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.ReduceLROnPlateau(opt, {mode = "max", patience = 0})
s:step(mg.tensor({0.8})); s:step(0.7)
print(opt.param_groups[1].lr, s.last_epoch)   --> 0.01  2]],
    see = { "sched.ReduceLROnPlateau", "sched.ReduceLROnPlateau:is_better" },
  },

  ["sched.ReduceLROnPlateau:is_better"] = {
    sig = "s:is_better(a, best)",
    doc = [[Whether the metric value a counts as an improvement over best under the scheduler's mode and threshold: in "min" mode with "rel" thresholds a < best * (1 - threshold), with "abs" a < best - threshold; in "max" mode a > best * (1 + threshold) or a > best + threshold.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.ReduceLROnPlateau(opt, {threshold = 0.1})
print(s:is_better(0.95, 1.0), s:is_better(0.85, 1.0))   --> false  true]],
    see = { "sched.ReduceLROnPlateau" },
  },

  ["sched.ReduceLROnPlateau:in_cooldown"] = {
    sig = "s:in_cooldown()",
    doc = [[True while the scheduler is in its cooldown after a reduction (s.cooldown_counter > 0), when steps without improvement are not counted.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local s = sched.ReduceLROnPlateau(opt, {patience = 0, cooldown = 2})
s:step(1.0); s:step(2.0)
print(opt.param_groups[1].lr, s:in_cooldown())   --> 0.01  true]],
    see = { "sched.ReduceLROnPlateau" },
  },

  ["sched.SequentialLR"] = {
    sig = "sched.SequentialLR(opt, {schedulers = {s1, s2, ...}, milestones = {m1, ...} [, last_epoch] [, verbose]})",
    doc = [[Runs schedulers one after another, schedulers[i + 1] taking over at step milestones[i], as torch.optim.lr_scheduler.SequentialLR: typically a warm-up, then a decay. The schedulers must be built on opt beforehand; SequentialLR undoes their initial steps (the groups go back to initial_lr) and redoes the first one's. There must be one milestone fewer than schedulers, as increasing integers. As in PyTorch 1.13 the next scheduler starts from its closed form at base_lr, so the warm-up's last rate does not carry over. ReduceLROnPlateau and the composites cannot be parts. Its step takes no argument.]],
    opts = {
      { "schedulers", "required", "the schedulers, in order, all on opt" },
      { "milestones", "required", "the steps at which the next one takes over" },
      { "last_epoch", "-1", "the last step done" },
      { "verbose", "false", "accepted, as in PyTorch" },
    },
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 0.1})
local warm = sched.LinearLR(opt, {start_factor = 0.5, total_iters = 2})
local decay = sched.ExponentialLR(opt, {gamma = 0.5})
local s = sched.SequentialLR(opt, {schedulers = {warm, decay}, milestones = {2}})
local lrs = {}
for i = 1, 5 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.05 0.075 0.1 0.05 0.025]],
    group = "Composition",
    instance = function()
      local sched = require "moongrad.sched"
      local opt = sgd()
      local a, b = sched.ConstantLR(opt), sched.ExponentialLR(opt, { gamma = 0.9 })
      return sched.SequentialLR(opt, { schedulers = { a, b }, milestones = { 5 } })
    end,
    methods_of = "sched.Scheduler",
    see = { "sched.LinearLR", "sched.ChainedScheduler" },
  },

  ["sched.ChainedScheduler"] = {
    sig = "sched.ChainedScheduler({s1, s2, ...})",
    doc = [[Steps several schedulers of one optimizer together, each applying its factor to the rate the previous left, as torch.optim.lr_scheduler.ChainedScheduler: e.g. a constant warm-up factor times an exponential decay. It takes only the list (no optimizer, no options), has no last_epoch of its own, and its step takes no argument; get_last_lr and the state dicts cover all the schedulers. ReduceLROnPlateau and the composites cannot be parts.]],
    example = [[
local opt = optim.SGD({mg.zeros(1):requires_grad()}, {lr = 1.0})
local s = sched.ChainedScheduler({sched.ConstantLR(opt, {factor = 0.5, total_iters = 2}),
                                  sched.ExponentialLR(opt, {gamma = 0.9})})
local lrs = {}
for i = 1, 4 do lrs[i] = ("%.4g"):format(opt.param_groups[1].lr); opt:step(); s:step() end
print(table.concat(lrs, " "))   --> 0.5 0.45 0.81 0.729]],
    group = "Composition",
    instance = function()
      local sched = require "moongrad.sched"
      return sched.ChainedScheduler({ sched.ExponentialLR(sgd(), { gamma = 0.9 }) })
    end,
    methods_of = "sched.Scheduler",
    see = { "sched.SequentialLR" },
  },

  ---------------------------------------------------------------------------
  -- train

  train = {
    sig = 'local train = require "moongrad.train"',
    doc = [[A training loop with callbacks (train.fit), the same loop run a slice at a time for hosts with their own loop (train.fit_job), and evaluation (train.evaluate). fit does, each epoch: model:train(); for every batch zero_grad, forward, loss, backward, optional clipping, opt:step() and the scheduler's step; then evaluation on the val loader in eval mode without grad, and the callbacks. It returns a history of per-epoch records and per-step rates and losses; checkpoints make a run resumable exactly. The loop is short: read lua/moongrad/train/fit.lua and copy it when you need your own.]],
    groups = { "Training loop", "Callbacks", "Metrics and history" },
    example = [[
local x, y = mg.randn(32, 4), mg.randint(1, 3, {32})
local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 8, shuffle = true})
local net = nn.Linear(4, 3)
local history = train.fit(net, {train = loader, optimizer = optim.Adam(net, {lr = 0.01}),
                                epochs = 2, progress = "quiet"})
print(#history.epochs, #history.batch_loss)   --> 2  8
print(train.evaluate(net, loader).accuracy >= 0)   --> true]],
    see = { "train.fit", "train.evaluate", "train.EarlyStopping", "optim", "sched", "data.DataLoader" },
  },

  ["train.fit"] = {
    sig = "train.fit(model, {train = loader, optimizer = opt [, <options>]}) --> history",
    doc = [[Trains model (a module, or any callable table) on opts.train for opts.epochs epochs and returns the history:

  {epochs = {{epoch = 1, train_loss = ..., train_<metric> = ..., val_loss = ...,
              val_<metric> = ..., lr = ..., time = <seconds>}, ...},
   lr = {<lr of step 1>, ...}, batch_loss = {<loss of step 1>, ...},
   columns = {"epoch", "train_loss", ..., "lr", "time"}}

Losses and metrics are means over samples (each batch weighted by its size); train_* are measured during the epoch in training mode, and an epoch's lr is the rate the first group used at its last step. A non-finite loss raises "fit: loss is nan at epoch e, batch b; ...", and SIGINT or SIGTERM stops training after the current step with an error, writing the checkpoint first when the checkpoint option is on. An unknown option raises, listing the known ones.]],
    opts = {
      { "train", "required", "the training loader: anything with :iter() yielding (xb, yb); its # or :len() gives the progress bar's total" },
      { "optimizer", "required", "an optimizer over the model's parameters" },
      { "val", "nil", "a validation loader, evaluated after each epoch: adds val_loss and val_<metric>" },
      { "loss", "F.cross_entropy", "loss_fn(out, yb) --> scalar tensor" },
      { "epochs", "1", "the number of epochs, an integer >= 1" },
      { "metrics", "nil", "{\"accuracy\", \"top5\", {name = ..., fn = ...}}, measured besides the loss, in training and on val; nil measures the loss only" },
      { "scheduler", "nil", "a scheduler, stepped after every optimizer step (see scheduler_step)" },
      { "scheduler_step", '"batch"', '"batch" or "epoch"; a ReduceLROnPlateau always steps once per epoch with the monitored value' },
      { "monitor", '"val_loss"', 'the record key ReduceLROnPlateau is given; "train_loss" without a val loader' },
      { "clip_grad_norm", "nil", "a max norm: optim.clip_grad_norm(model:parameters(), n) before each step" },
      { "callbacks", "{}", "a list of callbacks (tables of hooks, see train.Callback)" },
      { "progress", '"auto"', '"auto" (a bar on a terminal, a live bar and training curves in a notebook, else a line per epoch on stdout), true (the bar), false (a line per epoch) or "quiet"' },
      { "checkpoint", "nil", '{path = p, every_n_batches = k}: a resumable checkpoint every k steps and at each epoch\'s end; {path = p, every = "epoch"}: at epochs\' ends; with neither, only when a signal interrupts' },
      { "resume", "nil", "a checkpoint path written by fit or ModelCheckpoint: continues that run exactly (same batches, random draws and losses)" },
      { "distributed", "nil", "true or {bucket_mb = n, overlap = bool} under mpirun: data-parallel over the ranks (loaders sharded, gradients averaged); only rank 1 logs and writes files" },
      { "listen", "nil", "sessions attach between batches (moongrad.attach): nil serves `moongrad --listen`'s listener if there is one, true that one or a new one at the default path, a string a new one at that path (closed when fit returns), false none" },
    },
    example = [[
local x, y = mg.randn(32, 4), mg.randint(1, 3, {32})
local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 8, shuffle = true})
local net = nn.Linear(4, 3)
local history = train.fit(net, {train = loader, val = loader, epochs = 2, metrics = {"accuracy"},
                                optimizer = optim.SGD(net, {lr = 0.1}), progress = "quiet"})
print(#history.epochs, #history.lr)   --> 2  8
print(table.concat(history.columns, " "))   --> epoch train_loss train_accuracy val_loss val_accuracy lr time]],
    group = "Training loop",
    see = { "train.fit_job", "train.evaluate", "train.Callback", "train.EarlyStopping", "train.ModelCheckpoint", "data.DataLoader" },
  },

  ["train.fit_job"] = {
    sig = "train.fit_job(model, opts) --> job",
    doc = [[train.fit run a slice at a time, for a host that keeps its own loop (a game, a GUI, a controller): opts are fit's, and nothing runs until job:run(budget) trains until the budget is spent, pausing at a batch boundary. Between slices the host may use the model and moongrad freely: each slice swaps in the job's own random state, grad mode and train/eval mode and swaps the host's back, so the result is bit for bit what one fit would give. job.done becomes true at the end, with fit's history in job.history. The options are checked when the first slice starts: an error inside fit (a bad option, a non-finite loss) is raised by the run that hit it, and the job is then done with job.error set.]],
    example = [[
local x, y = mg.randn(16, 4), mg.randint(1, 3, {16})
local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 4})
local net = nn.Linear(4, 3)
local job = train.fit_job(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}),
                                progress = "quiet"})
while not job.done do job:run({batches = 3}) end
print(#job.history.epochs, #job.history.batch_loss)   --> 1  4]],
    group = "Training loop",
    instance = function()
      local mg, nn, optim = require "moongrad", require "moongrad.nn", require "moongrad.optim"
      local data = require "moongrad.data"
      local net = nn.Linear(2, 2)
      local loader = data.DataLoader(data.TensorDataset(mg.randn(4, 2), mg.randint(1, 2, { 4 })),
                                     { batch_size = 2 })
      return require("moongrad.train").fit_job(net, { train = loader, progress = "quiet",
                                                      optimizer = optim.SGD(net, { lr = 0.1 }) })
    end,
    see = { "train.fit_job:run", "train.fit" },
  },

  ["train.fit_job:run"] = {
    sig = "job:run([{batches = n} or {seconds = s}]) --> status",
    doc = [[Runs the job's fit until the budget is spent: n batches (training and validation batches both count), or s seconds of wall time (with both, whichever comes first), or one batch when no budget is given; the slice ends at the first batch boundary after that, so it runs at least one batch. Returns {done, epoch, batch, step, phase = "train" or "val", loss (the last training batch's), slice_loss (the mean over this slice's training batches, nil if none), history (once done)}. Raises fit's error if one happens, and "job:run: the job has finished" once done.]],
    opts = {
      { "batches", "nil", "the number of batches, an integer >= 1" },
      { "seconds", "nil", "a time budget in seconds, >= 0" },
    },
    example = [[
local ds = data.TensorDataset(mg.randn(16, 4), mg.randint(1, 3, {16}))
local net, loader = nn.Linear(4, 3), data.DataLoader(ds, {batch_size = 4})
local job = train.fit_job(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}),
                                epochs = 2, progress = "quiet"})
local st = job:run({batches = 3})
print(st.done, st.epoch, st.batch, st.step, st.phase)   --> false  1  3  3  train
repeat st = job:run({seconds = 0.01}) until st.done
print(#st.history.epochs)   --> 2]],
    see = { "train.fit_job" },
  },

  ["train.evaluate"] = {
    sig = "train.evaluate(model, loader [, {loss, metrics}]) --> {loss = ..., <metric> = ...}",
    doc = [[Runs model over one pass of loader in eval mode with grad off and returns the mean loss and metrics over the samples (each batch weighted by its size); the model's training flag and the grad mode are restored afterwards. model is a module or a function; loader anything with :iter() yielding (xb, yb). The default metrics assume class scores [N, K] with int64 targets; give metrics = {} for other outputs.]],
    opts = {
      { "loss", "F.cross_entropy", "loss_fn(out, yb) --> scalar tensor" },
      { "metrics", '{"accuracy"}', 'names ("accuracy", "topK") or {name = ..., fn = function(out, yb) --> number}; the loss is always measured' },
      { "on_batch", "nil", "a function called after each batch" },
      { "reduce", "nil", "function(accumulator) combining the sums before the means (fit's distributed mode)" },
    },
    example = [[
local x, y = mg.randn(8, 4), mg.randint(1, 3, {8})
local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 4})
local r = train.evaluate(nn.Linear(4, 3), loader, {metrics = {"accuracy", "top2"}})
print(r.loss > 0, r.accuracy <= r.top2)   --> true  true]],
    group = "Training loop",
    see = { "train.fit", "train.Accumulator" },
  },

  ["train.Accumulator"] = {
    sig = "train.Accumulator([metrics]) --> acc",
    doc = [[Sums for one pass over a loader, from which fit and evaluate take their means: metrics is a list of names ("accuracy" or "acc", "top5" and any "topK"; "loss" is implied and may be listed) or custom metrics {name = "mae", fn = function(out, yb) --> number}, a custom value being weighted by the batch size like the rest. "accuracy" takes class scores [N, K] and int64 targets [N] (1-based) or soft targets [N, K] (their argmax); topK counts ties in the sample's favour. An unknown name raises.]],
    example = [[
local acc = train.Accumulator({"accuracy"})
acc:add(mg.tensor({{2.0, 1.0}, {0.0, 3.0}}), mg.tensor({1, 1}, "int64"), 0.5)
acc:add(mg.tensor({{1.0, 0.0}}), mg.tensor({1}, "int64"), 2.0)
local r = acc:result()
print(r.loss, ("%.4f"):format(r.accuracy))   --> 1.0  0.6667]],
    group = "Metrics and history",
    instance = function() return require("moongrad.train").Accumulator({ "accuracy" }) end,
    see = { "train.Accumulator:add", "train.Accumulator:result", "train.evaluate" },
  },

  ["train.Accumulator:add"] = {
    sig = "acc:add(out, yb, loss) --> n",
    doc = [[Adds one batch: out the model's output (its first dim is the batch size n), yb the targets and loss the batch's mean loss as a number. The loss counts n times and each metric is computed without grad on (out, yb). Returns n; raises when out is not a tensor or loss not a number.]],
    example = [[
local acc = train.Accumulator({"top2"})
print(acc:add(mg.tensor({{1.0, 2.0, 3.0}, {3.0, 2.0, 1.0}}), mg.tensor({1, 1}, "int64"), 0.7))   --> 2
print(acc:result().top2)   --> 0.5]],
    see = { "train.Accumulator:result" },
  },

  ["train.Accumulator:result"] = {
    sig = "acc:result() --> {loss = ..., <metric> = ...}",
    doc = [[The means so far: the loss and each metric, averaged over the samples added. Every value is nan when nothing was added.]],
    example = [[
local acc = train.Accumulator()
acc:add(mg.zeros(3, 2), mg.ones(3, "int64"), 0.25)
print(acc:result().loss)   --> 0.25]],
    see = { "train.Accumulator:add" },
  },

  ["train.Accumulator:names"] = {
    sig = "acc:names() --> {\"loss\", ...}",
    doc = [[The names the accumulator reports, in order: "loss" first, then each metric (a custom metric under its name). fit builds its history's columns from them.]],
    example = [[
print(table.concat(train.Accumulator({"acc", "top5"}):names(), " "))   --> loss accuracy top5]],
    see = { "train.Accumulator" },
  },

  ["train.Accumulator:state_dict"] = {
    sig = "acc:state_dict() --> {n = ..., loss_sum = ..., sums = {...}}",
    doc = [[The plain sums (sample count, loss sum and each metric's sum), JSON-able; fit's mid-epoch checkpoints save them so that a resumed epoch's means include the batches before the checkpoint.]],
    example = [[
local acc = train.Accumulator({"accuracy"})
acc:add(mg.tensor({{2.0, 1.0}}), mg.tensor({1}, "int64"), 0.5)
local sd = acc:state_dict()
print(sd.n, sd.loss_sum, sd.sums.accuracy)   --> 1  0.5  1.0]],
    see = { "train.Accumulator:load_state_dict" },
  },

  ["train.Accumulator:load_state_dict"] = {
    sig = "acc:load_state_dict(sd)",
    doc = [[Replaces the count and sums with those of sd (from state_dict); sums of metrics this accumulator does not have are ignored. Nothing is checked.]],
    example = [[
local a, b = train.Accumulator(), train.Accumulator()
a:add(mg.zeros(2, 2), mg.ones(2, "int64"), 1.5)
b:load_state_dict(a:state_dict())
print(b.n, b:result().loss)   --> 2  1.5]],
    see = { "train.Accumulator:state_dict" },
  },

  ["train.Accumulator:reduce"] = {
    sig = "acc:reduce(sum_list)",
    doc = [[Replaces the count and sums with sum_list({n, loss_sum, <metric sums>...}), a function returning a list of the same length: fit's distributed mode passes one that sums the values over the ranks, so every rank gets the global means.]],
    example = [[
local acc = train.Accumulator()
acc:add(mg.zeros(2, 2), mg.ones(2, "int64"), 1.0)
acc:reduce(function(v) return {v[1] * 2, v[2] * 2} end)   -- as if two ranks had the same
print(acc.n, acc:result().loss)   --> 4  1.0]],
    see = { "train.Accumulator" },
  },

  ["train.Callback"] = {
    sig = "local cb = {on_epoch_end = function(ctx) ... end, ...}   -- train.fit{callbacks = {cb}}",
    doc = [[A callback is any table with some of the hooks below; fit calls each as cb.hook(ctx) (with a dot: no self) at its moment, the stock ones (EarlyStopping, ModelCheckpoint, HistoryLogger, LRLogger) included. ctx holds model, optimizer, scheduler, train_loader, val_loader, epoch, epochs, batch (in the epoch), step (global), history, logs, step_lrs, resumed, and rank, world_size, is_main when distributed; set ctx.stop = true to end training after the current epoch. A callback with state_dict() and load_state_dict(sd) (JSON-able tables) has its state saved in fit's checkpoints and restored on resume.]],
    example = [[
local ds = data.TensorDataset(mg.randn(8, 4), mg.randint(1, 3, {8}))
local loader = data.DataLoader(ds, {batch_size = 4})
local net, seen = nn.Linear(4, 3), {}
local cb = {on_epoch_end = function(ctx) seen[#seen + 1] = ctx.epoch; ctx.stop = ctx.epoch == 2 end}
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}), epochs = 5,
                callbacks = {cb}, progress = "quiet"})
print(table.concat(seen, " "))   --> 1 2]],
    group = "Callbacks",
    instance = function()
      local function hook() end
      return { on_train_begin = hook, on_epoch_begin = hook, on_batch_end = hook, on_epoch_end = hook,
               on_train_end = hook, state_dict = function() return {} end, load_state_dict = hook }
    end,
    see = { "train.fit", "train.Callback:on_batch_end", "train.Callback:on_epoch_end", "train.EarlyStopping" },
  },

  ["train.Callback:on_train_begin"] = {
    sig = "cb.on_train_begin(ctx)",
    doc = [[Called once before the first epoch (after a resume has restored the run: ctx.resumed is then true and the callback's saved state already loaded). The stock callbacks reset their best value here unless resumed.]],
    example = [[
local ds = data.TensorDataset(mg.randn(4, 2), mg.randint(1, 2, {4}))
local loader = data.DataLoader(ds, {batch_size = 2})
local net = nn.Linear(2, 2)
local cb = {on_train_begin = function(ctx) print(ctx.epochs, ctx.step, ctx.resumed) end}
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}), epochs = 3,
                callbacks = {cb}, progress = "quiet"})   --> 3  0  nil]],
    see = { "train.Callback" },
  },

  ["train.Callback:on_epoch_begin"] = {
    sig = "cb.on_epoch_begin(ctx)",
    doc = [[Called at the start of each epoch, before model:train() and the first batch; ctx.epoch is the epoch starting (from 1).]],
    example = [[
local ds = data.TensorDataset(mg.randn(4, 2), mg.randint(1, 2, {4}))
local loader = data.DataLoader(ds, {batch_size = 2})
local net, starts = nn.Linear(2, 2), {}
local cb = {on_epoch_begin = function(ctx) starts[#starts + 1] = ctx.step end}
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}), epochs = 3,
                callbacks = {cb}, progress = "quiet"})
print(table.concat(starts, " "))   --> 0 2 4]],
    see = { "train.Callback" },
  },

  ["train.Callback:on_batch_end"] = {
    sig = "cb.on_batch_end(ctx)",
    doc = [[Called after every training step (optimizer and per-batch scheduler step done). ctx.logs is {batch, loss, size, lr}: the batch number in the epoch, its loss, its number of samples and the first group's lr the step used; ctx.step_lrs lists every group's lr after the step, and ctx.step counts steps over the whole run.]],
    example = [[
local ds = data.TensorDataset(mg.randn(6, 2), mg.randint(1, 2, {6}))
local loader = data.DataLoader(ds, {batch_size = 4})
local net, sizes = nn.Linear(2, 2), {}
local cb = {on_batch_end = function(ctx) sizes[#sizes + 1] = ctx.logs.size end}
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}),
                callbacks = {cb}, progress = "quiet"})
print(table.concat(sizes, " "))   --> 4 2]],
    see = { "train.Callback", "train.LRLogger" },
  },

  ["train.Callback:on_epoch_end"] = {
    sig = "cb.on_epoch_end(ctx)",
    doc = [[Called after each epoch's validation and per-epoch scheduler step, with ctx.logs the epoch's record (epoch, train_loss, val_loss, ..., lr, time), already appended to ctx.history.epochs. Set ctx.stop = true here to end training after this epoch (EarlyStopping does).]],
    example = [[
local ds = data.TensorDataset(mg.randn(4, 2), mg.randint(1, 2, {4}))
local loader = data.DataLoader(ds, {batch_size = 2})
local net = nn.Linear(2, 2)
local cb = {on_epoch_end = function(ctx) print(ctx.logs.epoch, ctx.logs.train_loss > 0) end}
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}),
                callbacks = {cb}, progress = "quiet"})   --> 1  true]],
    see = { "train.Callback", "train.EarlyStopping" },
  },

  ["train.Callback:on_train_end"] = {
    sig = "cb.on_train_end(ctx)",
    doc = [[Called once when training ends normally, after the last epoch or an early stop (not when fit raises). EarlyStopping restores the best weights here.]],
    example = [[
local ds = data.TensorDataset(mg.randn(4, 2), mg.randint(1, 2, {4}))
local loader = data.DataLoader(ds, {batch_size = 2})
local net = nn.Linear(2, 2)
local cb = {on_train_end = function(ctx) print(#ctx.history.epochs, ctx.step) end}
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}), epochs = 2,
                callbacks = {cb}, progress = "quiet"})   --> 2  4]],
    see = { "train.Callback" },
  },

  ["train.Callback:state_dict"] = {
    sig = "cb.state_dict() --> table",
    doc = [[Optional: the callback's state as a JSON-able table, which fit's checkpoints (the checkpoint option and ModelCheckpoint) store so that a resumed run carries on; EarlyStopping saves {wait, best, best_epoch} and ModelCheckpoint {best, best_epoch}.]],
    example = [[
local es = train.EarlyStopping({patience = 2})
es.on_train_begin({})
print(es.state_dict().wait, es.state_dict().best)   --> 0  inf]],
    see = { "train.Callback:load_state_dict", "train.fit" },
  },

  ["train.Callback:load_state_dict"] = {
    sig = "cb.load_state_dict(sd)",
    doc = [[Optional: restores what state_dict() returned; fit calls it when resuming from a checkpoint, before on_train_begin, for the callback in the same position of the callbacks list.]],
    example = [[
local es = train.EarlyStopping()
es.load_state_dict({wait = 1, best = 0.25, best_epoch = 3})
print(es.best, es.best_epoch, es.wait)   --> 0.25  3  1]],
    see = { "train.Callback:state_dict" },
  },

  ["train.EarlyStopping"] = {
    sig = "train.EarlyStopping([{monitor, mode, patience, min_delta, restore_best}])",
    doc = [[A callback that stops fit once the monitored record key has not improved by more than min_delta for patience epochs in a row, and with restore_best loads back the weights of the best epoch when training ends (it keeps a clone of them). mode "auto" means "max" for accuracy and topK metrics and "min" for the rest. The monitored key must be in the epoch's records: monitoring val_loss needs a val loader. After the run es.best, es.best_epoch and es.stopped_epoch (nil if it did not stop training) tell what happened.]],
    opts = {
      { "monitor", '"val_loss"', "the record key watched" },
      { "mode", '"auto"', '"min", "max" or "auto"' },
      { "patience", "5", "epochs without improvement before stopping" },
      { "min_delta", "0", "the least change that counts as an improvement" },
      { "restore_best", "true", "load the best epoch's weights at the end" },
    },
    example = [[
local ds = data.TensorDataset(mg.randn(8, 4), mg.randint(1, 3, {8}))
local loader = data.DataLoader(ds, {batch_size = 4})
local net = nn.Linear(4, 3)
local es = train.EarlyStopping({monitor = "train_loss", patience = 1})
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0}), epochs = 10,
                callbacks = {es}, progress = "quiet"})
print(es.best_epoch, es.stopped_epoch)   --> 1  2]],
    group = "Callbacks",
    instance = function() return require("moongrad.train").EarlyStopping() end,
    methods_of = "train.Callback",
    see = { "train.ModelCheckpoint", "sched.ReduceLROnPlateau", "train.Callback" },
  },

  ["train.ModelCheckpoint"] = {
    sig = "train.ModelCheckpoint({path = p [, monitor, mode, save_best, save_last, best_path, last_path, min_delta]})",
    doc = [[A callback that saves a resumable checkpoint (model, optimizer, scheduler, epoch, step and the history so far, through moongrad.checkpoint) at the end of every epoch as the "last" one, and whenever the monitored key improves as the "best" one. By default the files are path itself when only one kind is saved, and path with ".best" / ".last" before its extension when both are ("run/model.safetensors" gives run/model.best.safetensors and run/model.last.safetensors). Either file can be given to fit's resume option. After the run mc.best and mc.best_epoch hold the best value and its epoch.]],
    opts = {
      { "path", "required", "the file name; may be left out when best_path and last_path name every file saved" },
      { "monitor", '"val_loss"', "the record key that decides the best epoch" },
      { "mode", '"auto"', '"min", "max" or "auto" ("max" for accuracy and topK)' },
      { "save_best", "true", "save when the monitored key improves" },
      { "save_last", "true", "save at the end of every epoch" },
      { "best_path", "nil", "the best checkpoint's file, overriding the one made from path" },
      { "last_path", "nil", "the last checkpoint's file, overriding the one made from path" },
      { "min_delta", "0", "the least change that counts as an improvement" },
    },
    example = [[
local ds = data.TensorDataset(mg.randn(8, 4), mg.randint(1, 3, {8}))
local loader = data.DataLoader(ds, {batch_size = 4})
local net, path = nn.Linear(4, 3), os.tmpname()
local mc = train.ModelCheckpoint({path = path, monitor = "train_loss", save_last = false})
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}), epochs = 2,
                callbacks = {mc}, progress = "quiet"})
print(mc.best_epoch, mc.best_path == path, io.open(path) ~= nil)   --> 2  true  true
os.remove(path)]],
    group = "Callbacks",
    instance = function() return require("moongrad.train").ModelCheckpoint({ path = "model.safetensors" }) end,
    methods_of = "train.Callback",
    see = { "train.fit", "train.EarlyStopping", "checkpoint" },
  },

  ["train.HistoryLogger"] = {
    sig = "train.HistoryLogger({csv = path, json = path})",
    doc = [[A callback that rewrites the history as CSV (train.history_csv) and/or JSON (train.history_json) after every epoch, so that a killed run still leaves its log. Give a csv path, a json path or both. Each file is written whole and atomically (a temporary file, then a rename).]],
    opts = {
      { "csv", "nil", "the CSV file's path" },
      { "json", "nil", "the JSON file's path" },
    },
    example = [[
local ds = data.TensorDataset(mg.randn(8, 4), mg.randint(1, 3, {8}))
local loader = data.DataLoader(ds, {batch_size = 4})
local net, path = nn.Linear(4, 3), os.tmpname()
train.fit(net, {train = loader, optimizer = optim.SGD(net, {lr = 0.1}), epochs = 2,
                callbacks = {train.HistoryLogger({csv = path})}, progress = "quiet"})
local f = io.open(path); print(f:read("l")); f:close()   --> epoch,train_loss,lr,time
os.remove(path)]],
    group = "Callbacks",
    instance = function() return require("moongrad.train").HistoryLogger({ csv = "history.csv" }) end,
    methods_of = "train.Callback",
    see = { "train.history_csv", "train.history_json" },
  },

  ["train.LRLogger"] = {
    sig = "train.LRLogger()",
    doc = [[A callback that records every parameter group's learning rate at each step (the rate the step used) in history.lr_groups[g][step]; history.lr, the first group's, is recorded without it. It takes no options.]],
    example = [[
local ds = data.TensorDataset(mg.randn(8, 4), mg.randint(1, 3, {8}))
local loader = data.DataLoader(ds, {batch_size = 4})
local net = nn.Linear(4, 3)
local p = net:parameters()
local opt = optim.SGD({{params = {p[1]}, lr = 0.1}, {params = {p[2]}, lr = 0.01}}, {lr = 1})
local h = train.fit(net, {train = loader, optimizer = opt, callbacks = {train.LRLogger()},
                          progress = "quiet"})
print(#h.lr_groups, h.lr_groups[2][1])   --> 2  0.01]],
    group = "Callbacks",
    instance = function() return require("moongrad.train").LRLogger() end,
    methods_of = "train.Callback",
    see = { "train.Callback:on_batch_end", "sched" },
  },

  ["train.history_csv"] = {
    sig = "train.history_csv(history) --> string",
    doc = [[fit's per-epoch records as CSV text: a header row of history.columns, then one row per epoch (numbers with 10 significant digits, integers as they are, nan and inf spelt out, a missing value empty). Raises when history is not a table with columns and epochs.]],
    example = [[
local h = {columns = {"epoch", "train_loss", "lr", "time"},
           epochs = {{epoch = 1, train_loss = 0.5, lr = 0.1, time = 1.25}}}
local lines = {}
for line in train.history_csv(h):gmatch("[^\n]+") do lines[#lines + 1] = line end
print(lines[1])   --> epoch,train_loss,lr,time
print(lines[2])   --> 1,0.5,0.1,1.25]],
    group = "Metrics and history",
    see = { "train.history_json", "train.HistoryLogger" },
  },

  ["train.history_json"] = {
    sig = "train.history_json(history) --> string",
    doc = [[fit's history as indented JSON text: {"epochs": [...], "lr": [...], "batch_loss": [...]} and "lr_groups" when LRLogger recorded it, the keys in a fixed order, and nan or inf written as null. Raises when history is not a table with columns and epochs.]],
    example = [[
local h = {columns = {"epoch", "train_loss"}, epochs = {{epoch = 1, train_loss = 0.5}},
           lr = {0.1, 0.1}, batch_loss = {0.6, 0.4}}
local text = train.history_json(h)
print(text:find('"batch_loss"', 1, true) ~= nil)   --> true]],
    group = "Metrics and history",
    see = { "train.history_csv", "train.HistoryLogger" },
  },

  ---------------------------------------------------------------------------
  -- attach

  attach = {
    sig = 'local attach = require "moongrad.attach"',
    doc = [[A REPL inside a running training job. A script started with `moongrad --listen` (or a train.fit with the listen option) accepts sessions on a Unix socket only its owner can use; `moongrad --attach PID` (or attach.connect from a notebook) opens one. Commands run at attach points, between two batches and never in the middle of a step (fit has one after every training batch and at each epoch's end; a loop of one's own calls attach.serve). A session sees the globals and model, optimizer, scheduler, history, callbacks, ctx, epoch, epochs, batch, batches, step, loss, train_loader and val_loader, and has the commands lr(), lr(x) and lr(x, group) (read, or set from the next step on), pause() and resume() (the job waits at this attach point, serving its sessions), stop() (fit ends after this epoch), save(path) (a checkpoint fit's resume option takes), status(), detach() (or Ctrl-D), help and mg. An error in a command goes to the session only; Ctrl-C stops a command that runs too long. The job resumes when its last session leaves, and a SIGINT or SIGTERM ends a pause so that fit stops as usual.]],
    groups = { "The job's side", "The session's side" },
    example = [[
-- $ moongrad --listen train.lua      (prints: listening on ... (moongrad --attach 4242))
-- $ moongrad --attach 4242
-- > lr(0.003)                          (every group, from the next step on)
local path = os.tmpname() .. ".sock"
local listener = attach.listen(path)
print(listener.path == path)   --> true
listener:close()               -- the socket goes with it]],
    see = { "attach.listen", "attach.serve", "attach.connect", "train.fit" },
  },

  ["attach.listen"] = {
    sig = "attach.listen([path]) --> listener",
    doc = [[Listens for sessions on a Unix socket at path, by default attach.socket_path(<this pid>), which is what `moongrad --listen` does before the script runs. The socket is created with mode 0600 (bound under umask 0177), the default directory must be private to its owner, and a connection from another user is refused. A socket a dead job left at path is replaced; a live one ("another job is listening") and anything that is not a socket are refused with an error naming the path. The first listener of a process becomes attach.current(). listener:serve(vars) is an attach point (attach.serve), and listener:close() says goodbye to its sessions and removes the socket, as happens when the process ends.]],
    example = [[
local listener = attach.listen(os.tmpname() .. ".sock")
print(attach.current() == listener)   --> true
listener:close()
print(attach.current())   --> nil]],
    group = "The job's side",
    see = { "attach.serve", "attach.socket_path", "train.fit" },
  },

  ["attach.current"] = {
    sig = "attach.current() --> listener or nil",
    doc = [[The process's listener: the one `moongrad --listen` started, or the first attach.listen; nil when there is none (or in a process forked from the job, such as a tune trial, which must not serve the job's sessions). train.fit serves it unless its listen option is false.]],
    example = [[
print(attach.current())   --> nil]],
    group = "The job's side",
    see = { "attach.listen" },
  },

  ["attach.serve"] = {
    sig = "attach.serve(vars)",
    doc = [[The attach point of a training loop of one's own: call it between two steps. It runs whatever the sessions of attach.current() sent, with vars's names visible to them (model, optimizer, step, ... as the loop chooses; ctx = a table whose stop field stop() sets), and while a session has paused the job it waits here, serving. With no listener it does nothing, so a script may call it unconditionally.]],
    example = [[
local net = nn.Linear(4, 2)
local opt = optim.SGD(net, {lr = 0.1})
for step = 1, 3 do
  opt:zero_grad()
  net(mg.randn(8, 4)):pow(2):mean():backward()
  opt:step()
  attach.serve{model = net, optimizer = opt, step = step}   -- sessions act here
end]],
    group = "The job's side",
    see = { "attach.listen", "attach.connect" },
  },

  ["attach.connect"] = {
    sig = { "attach.connect(target [, {quiet = true}]) --> session", "mg.attach(target [, opts]) --> session" },
    doc = [[A session with the job whose pid or socket path target is, as `moongrad --attach` opens; it waits for the job's next attach point (saying so on stderr after a second, unless quiet). session:run(code) runs code there as a typed line (an expression's values are shown) and prints what comes back, results and prints on stdout and errors on stderr, returning false when the code raised; session:complete(expr, sep, prefix) lists names as Tab does; session:close() detaches. session.greeting is the job's greeting and session.open turns false once the job has ended or the session detached. A pid with no job listening raises an error naming the socket it looked for.]],
    example = [[
-- in a notebook, with a job started by `moongrad --listen train.lua`:
--   local job = mg.attach(4242)
--   job:run "pause()"
--   job:run "history.batch_loss[#history.batch_loss]"
--   job:run "lr(0.003); resume()"
print(pcall(attach.connect, 999999999))   --> false  attach: no job 999999999 is listening ...]],
    group = "The session's side",
    see = { "attach", "attach.socket_path" },
  },

  ["mg.attach"] = { alias = "attach.connect" },

  ["attach.socket_path"] = {
    sig = "attach.socket_path(pid) --> path",
    doc = [[Where the job with that pid listens by default: attach.socket_dir() .. "/<pid>.sock". `moongrad --attach PID` looks there.]],
    example = [[
print(attach.socket_path(4242):match("/4242%.sock$") ~= nil)   --> true]],
    group = "The session's side",
    see = { "attach.socket_dir" },
  },

  ["attach.socket_dir"] = {
    sig = "attach.socket_dir() --> path",
    doc = [[The directory default sockets go in: $XDG_RUNTIME_DIR/moongrad when XDG_RUNTIME_DIR is set, else /tmp/moongrad-<uid>. attach.listen creates it with mode 0700 and refuses one that others may enter.]],
    example = [[
print(type(attach.socket_dir()))   --> string]],
    group = "The session's side",
    see = { "attach.socket_path" },
  },
}
