-- moongrad.optim: optimizers and gradient clipping.
--
--   local optim = require "moongrad.optim"
--   local opt = optim.AdamW(net, {lr = 3e-4, weight_decay = 0.05})
--   for step = 1, n do
--     opt:zero_grad()
--     loss_fn(net(x), y):backward()
--     optim.clip_grad_norm(net:parameters(), 1.0)
--     opt:step()
--   end
--
-- The optimizers are torch.optim's, with its names, defaults and update
-- rules: each step follows torch 1.13's single-tensor (foreach=False) code,
-- float operation by float operation, so a float64 or float32 trajectory
-- matches PyTorch's. The update of each parameter is one fused C kernel
-- (runtime/ops_optim.c, bound as mg._optim_step); this module keeps the
-- bookkeeping.
--
--   optim.SGD(params, {lr = <required>, momentum = 0, dampening = 0,
--                      weight_decay = 0, nesterov = false, maximize = false})
--   optim.Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8,
--                       weight_decay = 0, amsgrad = false, maximize = false})
--   optim.AdamW(params, {... as Adam, weight_decay = 1e-2})  -- decoupled decay
--   optim.RMSprop(params, {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0,
--                          momentum = 0, centered = false, maximize = false})
--   optim.Adagrad(params, {lr = 1e-2, lr_decay = 0, weight_decay = 0,
--                          initial_accumulator_value = 0, eps = 1e-10, maximize = false})
--   optim.Adamax(params, {lr = 2e-3, betas = {0.9, 0.999}, eps = 1e-8,
--                         weight_decay = 0, maximize = false})
--   optim.NAdam(params, {lr = 2e-3, betas = {0.9, 0.999}, eps = 1e-8,
--                        weight_decay = 0, momentum_decay = 4e-3})
--   optim.RAdam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0})
--
-- Weight decay: SGD, Adam, RMSprop, Adagrad, Adamax, NAdam and RAdam add
-- weight_decay * param to the gradient (an L2 penalty, "coupled": Adam then
-- scales it by its adaptive step like the rest of the gradient); AdamW
-- shrinks the parameter by lr * weight_decay before the update ("decoupled",
-- Loshchilov & Hutter), which is what weight decay means for adaptive
-- methods.
--
-- params is an array of tensors, a module (anything with :parameters()), or
-- an array of parameter groups: tables {params = {...}, lr = ..., ...} whose
-- options override the defaults for those parameters, e.g. no weight decay
-- on biases and norm layers:
--   optim.AdamW({{params = weights, weight_decay = 0.1},
--                {params = biases_and_norms, weight_decay = 0}}, {lr = 1e-3})
--
-- An optimizer has
--   opt.param_groups     array of groups: {params = {...}, lr = ..., every option};
--                        change an option (schedulers change lr) and the next
--                        step uses it
--   opt.state            per-parameter state, keyed by the parameter tensor:
--                        {step = n, exp_avg = tensor, ...} (torch's names)
--   opt.defaults         the options given to the constructor, completed
--   opt:step([closure])  one update of every parameter that has a .grad
--                        (others are skipped); closure, when given, is called
--                        first with grad mode on to recompute the loss, and
--                        its value is returned
--   opt:zero_grad([{set_to_none = true}])  grads to nil, or zeroed in place
--   opt:add_param_group(group)
--   opt:state_dict()     {state = {[i] = {step = n, exp_avg = tensor, ...}},
--                         param_groups = {{lr = ..., ..., params = {1, 2, ...}}}}
--                        parameters numbered from 1 across the groups in
--                        order, state tensors cloned
--   opt:load_state_dict(sd)  restores it: training resumes bit for bit; all or
--                        nothing: options checked as the constructor checks
--                        them, step counts positive integers, state tensors
--                        of their parameter's shape, finite, and >= 0 where
--                        the update takes their square root
--   opt:prepare_load_state_dict(sd) --> apply: the same checks, nothing
--                        changed; apply() installs sd and cannot fail
--   tostring(opt)        the groups and their options
--
-- optim.clip_grad_norm(params, max_norm, {norm_type = 2, error_if_nonfinite = false})
--   scales every gradient by max_norm / (total + 1e-6) when that is below 1,
--   total being the norm of all gradients together (norm_type math.huge: the
--   largest magnitude); returns total, before clipping
-- optim.clip_grad_value(params, clip_value)  clamps every gradient to
--   [-clip_value, clip_value] in place
-- params: a tensor, an array of tensors or a module.
--
-- The code: optim/options.lua (options, defaults, checks), optim/optimizer.lua
-- (the object), optim/clip.lua (gradient clipping).
local optimizer = require "moongrad.optim.optimizer"
local clip = require "moongrad.optim.clip"
local options = require "moongrad.optim.options"

local new, error, pairs = optimizer.new, error, pairs

local optim = {
  clip_grad_norm = clip.clip_grad_norm,
  clip_grad_value = clip.clip_grad_value,
  Optimizer = optimizer.Optimizer,   -- the shared metatable (for type checks)
}

-- optim.SGD, optim.Adam, ...: Kind(params [, options])
for kind in pairs(options.specs) do
  optim[kind] = function(params, opts)
    local opt, problem = new(kind, params, opts)
    if not opt then error(problem, 2) end
    return opt
  end
end

return optim
