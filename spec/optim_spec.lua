-- moongrad.optim: every optimizer configuration's 30-step trajectory against
-- torch.optim (spec/fixtures/gen_optim.py, float64 and float32), parameter
-- groups, zero_grad, closures, state dicts that resume bit for bit,
-- gradient clipping against torch.nn.utils, the kernels' contracts, and
-- error messages.
local mg = require "moongrad"
local optim = require "moongrad.optim"
local nn = require "moongrad.nn"
local approx = require "support.approx"
local ref = dofile("spec/fixtures/optim_ref.lua")

local TOL = {float64 = 1e-10, float32 = 1e-6}  -- relative, against PyTorch

-- "lr = 0.05, momentum = 0.9" from an options table, sorted by name.
local function describe_opts(opts)
  local keys = {}
  for k in pairs(opts) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = opts[k]
    if type(v) == "table" then v = "{" .. table.concat(v, ", ") .. "}" end
    parts[#parts + 1] = k .. " = " .. tostring(v)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- The problems of the fixture: fresh parameters and the objective.
local function params_for(problem, dtype)
  local params = {}
  for i, v in ipairs(ref[problem].x0) do params[i] = mg.tensor(v, dtype):requires_grad() end
  return params
end

local function objective(problem, params)
  if problem == "rosenbrock" then
    local x, y = params[1], params[2]
    return ((1 - x) ^ 2 + 100 * (y - x ^ 2) ^ 2):sum()
  end
  local x = params[1]
  local A = mg.tensor(ref.quadratic.A, x:dtype())
  local b = mg.tensor(ref.quadratic.b, x:dtype())
  return 0.5 * (x:matmul(A) * x):sum() - (b * x):sum()
end

-- One training step: gradients of the objective (negated when the
-- optimizer maximizes), then opt:step().
local function train_step(opt, problem, params, negate)
  opt:zero_grad()
  local f = objective(problem, params)
  if negate then f = -f end
  f:backward()
  opt:step()
end

-- Asserts that every number of got is within tol of expected, relative to
-- the larger of the number and the largest of its step. An element passing
-- near zero carries the rounding of its larger neighbours (the quadratic's
-- gradient is a float32 matmul whose summation order is the BLAS kernel's,
-- which differs between CPUs), so an element-wise relative test would
-- measure the CPU, not the optimizer.
local function check_close(got, expected, tol, what)
  local g, e = approx.flat(got), approx.flat(expected)
  assert.equal(#e, #g, what .. ": element count")
  local scale = 1e-12
  for i = 1, #e do scale = math.max(scale, math.abs(e[i])) end
  for i = 1, #e do
    local a, x = g[i], e[i]
    if not (math.abs(a - x) <= tol * math.max(math.abs(x), scale)) then
      error(string.format("%s, element %d: got %.17g, expected %.17g (relative error %.3g)",
                          what, i, a, x, math.abs(a - x) / math.abs(x)), 2)
    end
  end
end

local function values(params)
  local out = {}
  for i, p in ipairs(params) do out[i] = p:totable() end
  return out
end

describe("optimizers, against torch.optim's trajectories", function()
  for _, t in ipairs(ref.trajectories) do
    it(string.format("%s %s on %s in %s: 30 steps as in torch", t.optim,
                     describe_opts(t.opts), t.problem, t.dtype), function()
      local params = params_for(t.problem, t.dtype)
      local opt = optim[t.optim](params, t.opts)
      for s = 1, ref.steps do
        train_step(opt, t.problem, params, t.opts.maximize)
        check_close(values(params), t.steps[s], TOL[t.dtype], "step " .. s)
      end
    end)
  end
end)

describe("parameter groups", function()
  it("give each group its own options, the rest from the defaults (as torch)", function()
    local x, y = table.unpack(params_for("rosenbrock", "float64"))
    local opt = optim.Adam({{params = {x}, lr = 0.02, amsgrad = true}, {params = {y}}}, {lr = 0.05})
    assert.equal(0.02, opt.param_groups[1].lr)
    assert.is_true(opt.param_groups[1].amsgrad)
    assert.equal(0.05, opt.param_groups[2].lr)
    assert.is_false(opt.param_groups[2].amsgrad)
    assert.same({0.9, 0.999}, opt.param_groups[2].betas)
    for s = 1, ref.steps do
      train_step(opt, "rosenbrock", {x, y})
      check_close({x:totable(), y:totable()}, ref.groups[s], 1e-10, "step " .. s)
    end
  end)

  it("can be added part-way with add_param_group (as torch)", function()
    local x, y = table.unpack(params_for("rosenbrock", "float64"))
    local opt = optim.SGD({x}, {lr = 2e-4, momentum = 0.9})
    for s = 1, ref.steps do
      if s == 11 then opt:add_param_group({params = {y}, lr = 1e-4, momentum = 0}) end
      opt:zero_grad()
      y.grad = nil
      objective("rosenbrock", {x, y}):backward()
      opt:step()
      check_close({x:totable(), y:totable()}, ref.add_group[s], 1e-10, "step " .. s)
    end
    assert.equal(2, #opt.param_groups)
    assert.equal(0, opt.param_groups[2].dampening)
  end)

  it("leave out weight decay for biases and norm layers when asked", function()
    mg.manual_seed(1)
    local net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    local decay, no_decay = {}, {}
    for name, p in net:named_parameters() do
      if name:match("bias$") or name:match("^2%.") then
        no_decay[#no_decay + 1] = p
      else
        decay[#decay + 1] = p
      end
    end
    local opt = optim.AdamW({{params = decay, weight_decay = 0.1},
                             {params = no_decay, weight_decay = 0}}, {lr = 1e-2})
    assert.equal(2, #opt.param_groups[1].params)
    assert.equal(4, #opt.param_groups[2].params)
    -- with zero gradients only the decoupled decay moves a parameter
    for _, p in ipairs(net:parameters()) do p.grad = mg.zeros_like(p) end
    local before = {}
    for i, p in ipairs(net:parameters()) do before[i] = p:clone() end
    opt:step()
    for i, p in ipairs(net:parameters()) do
      local moved = not (p:eq(before[i]):sum():item() == p:numel())
      local decayed = opt.param_groups[1].params[1] == p or opt.param_groups[1].params[2] == p
      assert.equal(decayed, moved)
    end
  end)

  it("take a module (anything with :parameters()) as the parameters", function()
    local net = nn.Linear(3, 2)
    local opt = optim.SGD(net, {lr = 0.1})
    assert.equal(2, #opt.param_groups[1].params)
    assert.equal(net.weight, opt.param_groups[1].params[1])
  end)

  it("use a changed lr (or betas) at the next step, as schedulers do", function()
    local p = mg.tensor({1, 2}, "float64"):requires_grad()
    local opt = optim.SGD({p}, {lr = 0.1})
    p.grad = mg.tensor({1, 1}, "float64")
    opt:step()
    opt.param_groups[1].lr = 0.5
    opt:step()
    assert.same({1 - 0.1 - 0.5, 2 - 0.1 - 0.5}, p:totable())
    local q = mg.tensor({1}, "float64"):requires_grad()
    local a = optim.Adam({q}, {lr = 0.1})
    a.param_groups[1].betas = {0.5, 0.9}
    q.grad = mg.tensor({2}, "float64")
    a:step()
    assert.same({0.5 * 0 + 0.5 * 2}, a.state[q].exp_avg:totable())
  end)

  it("skip a parameter that has no gradient, and keep no state for it", function()
    local p = mg.tensor({1, 2}, "float64"):requires_grad()
    local q = mg.tensor({3}, "float64"):requires_grad()
    local opt = optim.Adam({p, q}, {lr = 0.1})
    p.grad = mg.tensor({1, -1}, "float64")
    opt:step()
    assert.same({3}, q:totable())
    assert.is_nil(opt.state[q])
    assert.equal(1, opt.state[p].step)
    assert.is_not.same({1, 2}, p:totable())
  end)

  it("show themselves with tostring", function()
    local opt = optim.SGD({{params = {mg.zeros(2, 3):requires_grad()}},
                           {params = {mg.zeros(4):requires_grad()}, lr = 0.5}},
                          {lr = 0.1, momentum = 0.9})
    local s = tostring(opt)
    assert.truthy(s:find("^SGD %("))
    assert.truthy(s:find("parameter group 1: 1 tensor, 6 elements", 1, true))
    assert.truthy(s:find("parameter group 2: 1 tensor, 4 elements", 1, true))
    assert.truthy(s:find("lr = 0.5", 1, true))
    assert.truthy(s:find("momentum = 0.9", 1, true))
  end)
end)

describe("zero_grad", function()
  it("sets gradients to nil by default", function()
    local p = mg.tensor({1, 2}):requires_grad()
    local opt = optim.SGD({p}, {lr = 0.1})
    local loss = (p * p):sum()
    loss:backward()
    assert.is_not_nil(p.grad)
    opt:zero_grad()
    assert.is_nil(p.grad)
  end)

  it("zeros them in place with {set_to_none = false}", function()
    local p = mg.tensor({1, 2}):requires_grad()
    local opt = optim.SGD({p}, {lr = 0.1})
    local loss = (p * p):sum()
    loss:backward()
    local g = p.grad
    opt:zero_grad{set_to_none = false}
    assert.same({0, 0}, p.grad:totable())
    assert.is_true(p.grad:shares_storage(g))
    -- and the next backward accumulates into them
    loss = (p * 3):sum()
    loss:backward()
    assert.same({3, 3}, g:totable())
  end)
end)

describe("step with a closure", function()
  it("evaluates the closure with grad enabled and returns its loss", function()
    local params = params_for("quadratic", "float64")
    local opt = optim.Adam(params, {lr = 0.05})
    local closure = function()
      opt:zero_grad()
      local f = objective("quadratic", params)
      f:backward()
      return f:item()
    end
    for s = 1, 5 do
      local expected = objective("quadratic", params):item()
      local loss = mg.no_grad(function() return opt:step(closure) end)
      assert.equal(expected, loss)
    end
    local adam = ref.trajectories
    for _, t in ipairs(adam) do
      if t.optim == "Adam" and t.problem == "quadratic" and t.dtype == "float64"
          and next(t.opts, next(t.opts)) == nil then
        check_close(values(params), t.steps[5], 1e-10, "step 5")
      end
    end
  end)

  it("returns nil without a closure", function()
    local p = mg.tensor({1}):requires_grad()
    assert.is_nil(optim.SGD({p}, {lr = 1}):step())
  end)
end)

describe("state_dict", function()
  it("numbers parameters across groups and holds torch's state names", function()
    local a, b, c = mg.zeros(2):requires_grad(), mg.zeros(3):requires_grad(), mg.zeros(1):requires_grad()
    local opt = optim.Adam({{params = {a, b}}, {params = {c}, lr = 0.5}}, {amsgrad = true})
    a.grad, c.grad = mg.ones(2), mg.ones(1)
    opt:step()
    local sd = opt:state_dict()
    assert.same({1, 2}, sd.param_groups[1].params)
    assert.same({3}, sd.param_groups[2].params)
    assert.equal(0.5, sd.param_groups[2].lr)
    assert.same({0.9, 0.999}, sd.param_groups[1].betas)
    assert.is_nil(sd.state[2])
    assert.equal(1, sd.state[1].step)
    for _, name in ipairs({"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}) do
      assert.is_true(mg.is_tensor(sd.state[3][name]))
    end
  end)

  it("clones the state: later steps do not change a saved dict", function()
    local p = mg.tensor({1, 2}, "float64"):requires_grad()
    local opt = optim.SGD({p}, {lr = 0.1, momentum = 0.9})
    p.grad = mg.tensor({1, 1}, "float64")
    opt:step()
    local sd = opt:state_dict()
    opt:step()
    opt.param_groups[1].lr = 7
    assert.same({1, 1}, sd.state[1].momentum_buffer:totable())
    assert.equal(0.1, sd.param_groups[1].lr)
  end)

  -- Twenty steps straight versus ten, a state dict, and ten more on new
  -- parameter tensors and a new optimizer: the same numbers, bit for bit.
  local cases = {
    {"SGD", {lr = 2e-4, momentum = 0.9, nesterov = true, weight_decay = 0.1}},
    {"SGD", {lr = 2e-4, momentum = 0.9, dampening = 0.3}},
    {"Adam", {lr = 0.05, amsgrad = true, weight_decay = 0.1}},
    {"AdamW", {lr = 0.05}},
    {"RMSprop", {lr = 1e-3, centered = true, momentum = 0.9}},
    {"Adagrad", {lr = 0.1, lr_decay = 0.01, initial_accumulator_value = 0.1}},
    {"Adamax", {lr = 0.05}},
    {"NAdam", {lr = 0.05}},
    {"RAdam", {lr = 1e-3}},
  }
  for _, case in ipairs(cases) do
    local kind, opts = case[1], case[2]
    for _, dtype in ipairs({"float64", "float32"}) do
      it(string.format("round-trips %s %s in %s: training resumes bit for bit", kind,
                       describe_opts(opts), dtype), function()
        local straight = params_for("rosenbrock", dtype)
        local opt = optim[kind](straight, opts)
        for _ = 1, 20 do train_step(opt, "rosenbrock", straight) end

        local first = params_for("rosenbrock", dtype)
        local opt1 = optim[kind](first, opts)
        for _ = 1, 10 do train_step(opt1, "rosenbrock", first) end
        local sd = opt1:state_dict()
        local resumed = {}
        for i, p in ipairs(first) do resumed[i] = p:detach():clone():requires_grad() end
        local opt2 = optim[kind](resumed, {lr = 123})   -- options come from sd
        opt2:load_state_dict(sd)
        assert.equal(opts.lr, opt2.param_groups[1].lr)
        for _ = 1, 10 do train_step(opt2, "rosenbrock", resumed) end
        for i = 1, #straight do
          local a, b = straight[i]:totable(), resumed[i]:totable()
          for j = 1, #a do assert.is_true(a[j] == b[j], "element differs") end
        end
      end)
    end
  end

  it("keeps the group tables (a scheduler holding one still works)", function()
    local p = mg.zeros(2):requires_grad()
    local opt = optim.SGD({p}, {lr = 0.1})
    local group = opt.param_groups[1]
    local sd = opt:state_dict()
    sd.param_groups[1].lr = 0.3
    sd.param_groups[1].initial_lr = 0.3           -- keys a scheduler adds are kept
    opt:load_state_dict(sd)
    assert.equal(group, opt.param_groups[1])
    assert.equal(0.3, group.lr)
    assert.equal(0.3, group.initial_lr)
    assert.equal(p, group.params[1])
  end)

  it("refuses a state dict that does not fit", function()
    local p, q = mg.zeros(2):requires_grad(), mg.zeros(3):requires_grad()
    local opt = optim.Adam({p, q})
    p.grad, q.grad = mg.ones(2), mg.ones(3)
    opt:step()
    local sd = opt:state_dict()
    local other = optim.Adam({{params = {p}}, {params = {q}}})
    assert.has_error(function() other:load_state_dict(sd) end,
      "Adam: load_state_dict: the state dict has 1 parameter groups, the optimizer 2")
    local fewer = optim.Adam({p})
    assert.has_error(function() fewer:load_state_dict(sd) end,
      "Adam: load_state_dict: parameter group 1 has 1 parameters, the saved one 2")
    local swapped = optim.Adam({q, p})
    local ok, err = pcall(swapped.load_state_dict, swapped, sd)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("state of parameter 1: 'exp_avg' has shape [2], the parameter [3]", 1, true))
  end)

  -- An optimizer of kind with every state slot in use, after two steps on
  -- two parameters, and its state dict.
  local FULL = {
    SGD = {lr = 0.1, momentum = 0.9}, Adam = {amsgrad = true}, AdamW = {amsgrad = true},
    RMSprop = {momentum = 0.9, centered = true}, Adagrad = {}, Adamax = {}, NAdam = {},
    RAdam = {},
  }
  local function stepped(kind)
    local params = {mg.tensor({1, -2, 3}, "float64"):requires_grad(),
                    mg.tensor({{0.5, 1}, {2, -1}}, "float64"):requires_grad()}
    local opt = optim[kind](params, FULL[kind])
    for _ = 1, 2 do
      for i, p in ipairs(params) do p.grad = p:detach() * i end
      opt:step()
    end
    return opt, params
  end

  -- Everything load_state_dict may change, to compare before and after.
  local function contents(opt)
    local out = {groups = {}, state = {}, state_table = opt.state}
    for i, g in ipairs(opt.param_groups) do
      local copy = {table = g}
      for k, v in pairs(g) do
        if k == "params" then copy[k] = {table.unpack(v)}
        elseif type(v) == "table" then copy[k] = {table.unpack(v)}
        else copy[k] = v end
      end
      out.groups[i] = copy
    end
    for p, st in pairs(opt.state) do
      local copy = {}
      for k, v in pairs(st) do copy[k] = mg.is_tensor(v) and v:totable() or v end
      out.state[p] = copy
    end
    return out
  end

  it("knows every state entry the kernels keep (its checks cover them all)", function()
    local slots = require("moongrad.optim.options").state_slots
    for kind in pairs(FULL) do
      local opt = stepped(kind)
      for _, st in pairs(opt.state) do
        for k in pairs(st) do
          assert.is_truthy(k == "step" or (kind == "NAdam" and k == "mu_product") or slots[kind][k],
                           kind .. " keeps " .. k)
        end
      end
    end
  end)

  -- {kind, what, change(sd), message}: each refused, the optimizer as it was.
  local tamperings = {
    {"Adam", "step 0", function(sd) sd.state[1].step = 0 end,
     "Adam: load_state_dict: state of parameter 1: 'step' must be a positive integer " ..
     "(the updates made), got 0"},
    {"Adam", "step -1", function(sd) sd.state[2].step = -1 end, "parameter 2: 'step' must be a positive integer"},
    {"Adam", "step 1.5", function(sd) sd.state[1].step = 1.5 end, "got 1.5"},
    {"SGD", "a missing step", function(sd) sd.state[1].step = nil end,
     "SGD: load_state_dict: state of parameter 1: 'step' is missing"},
    {"Adam", "a negative exp_avg_sq", function(sd) sd.state[2].exp_avg_sq:fill_(-1) end,
     "Adam: load_state_dict: state of parameter 2: 'exp_avg_sq' must be >= 0, holds -1.0"},
    {"AdamW", "a negative max_exp_avg_sq", function(sd) sd.state[1].max_exp_avg_sq[2] = -3 end,
     "'max_exp_avg_sq' must be >= 0, holds -3.0"},
    {"Adagrad", "a negative sum", function(sd) sd.state[1].sum[1] = -0.25 end,
     "Adagrad: load_state_dict: state of parameter 1: 'sum' must be >= 0, holds -0.25"},
    {"RMSprop", "a negative square_avg", function(sd) sd.state[2].square_avg:fill_(-2) end,
     "RMSprop: load_state_dict: state of parameter 2: 'square_avg' must be >= 0"},
    {"Adamax", "a negative exp_inf", function(sd) sd.state[1].exp_inf[3] = -1 end,
     "'exp_inf' must be >= 0"},
    {"RAdam", "NaN in exp_avg_sq", function(sd) sd.state[1].exp_avg_sq[1] = 0 / 0 end,
     "RAdam: load_state_dict: state of parameter 1: 'exp_avg_sq' holds NaN"},
    {"SGD", "inf in momentum_buffer", function(sd) sd.state[2].momentum_buffer:fill_(-math.huge) end,
     "SGD: load_state_dict: state of parameter 2: 'momentum_buffer' holds an infinite value"},
    {"RMSprop", "NaN in grad_avg", function(sd) sd.state[1].grad_avg[2] = 0 / 0 end,
     "'grad_avg' holds NaN"},
    {"NAdam", "mu_product 0", function(sd) sd.state[1].mu_product = 0 end,
     "NAdam: load_state_dict: state of parameter 1: 'mu_product' must be a number in (0, 1], got 0"},
    {"Adam", "a state tensor of another shape", function(sd) sd.state[2].exp_avg = mg.zeros(4) end,
     "'exp_avg' has shape [4], the parameter [2,2]"},
    {"Adam", "an int64 state tensor", function(sd) sd.state[1].exp_avg = mg.zeros(3, "int64") end,
     "'exp_avg' is int64"},
    {"Adam", "a number where a tensor belongs", function(sd) sd.state[1].exp_avg = 0 end,
     "'exp_avg' must be a tensor, got number"},
    {"Adam", "an entry Adam does not keep", function(sd) sd.state[1].momentum_buffer = mg.zeros(3) end,
     "state of parameter 1: unknown entry \"momentum_buffer\" (Adam keeps exp_avg, exp_avg_sq, " ..
     "max_exp_avg_sq, step)"},
    {"Adam", "state for a parameter no group has", function(sd) sd.state[3] = {step = 1} end,
     "Adam: load_state_dict: state for parameter 3, which no group has"},
    {"Adam", "a parameter number twice", function(sd) sd.param_groups[1].params = {1, 1} end,
     "Adam: load_state_dict: parameter group 1: params[2] must be a parameter number >= 1 " ..
     "that no other entry has, got 1"},
    {"Adam", "lr -1 in a group", function(sd) sd.param_groups[1].lr = -1 end,
     "Adam: load_state_dict: parameter group 1: lr must be a number >= 0, got -1"},
    {"SGD", "nesterov without momentum", function(sd)
      sd.param_groups[1].nesterov, sd.param_groups[1].momentum = true, 0
    end, "SGD: load_state_dict: parameter group 1: nesterov requires momentum > 0"},
    {"Adam", "a function in a group", function(sd) sd.param_groups[1].hook = print end,
     "Adam: load_state_dict: parameter group 1: entry \"hook\" must be plain data under a " ..
     "string key, got function"},
  }
  for _, case in ipairs(tamperings) do
    local kind, what, change, msg = case[1], case[2], case[3], case[4]
    it(("%s: refuses a state dict with %s and changes nothing"):format(kind, what), function()
      local source = stepped(kind)
      local sd = source:state_dict()
      change(sd)
      local opt = stepped(kind)
      opt.param_groups[1].lr = 0.0625          -- different from sd's
      local before = contents(opt)
      local ok, err = pcall(opt.load_state_dict, opt, sd)
      assert.is_false(ok, "loaded")
      assert.truthy(tostring(err):find(msg, 1, true), "got: " .. tostring(err))
      assert.same(before, contents(opt))
      assert.equal(before.state_table, opt.state)
      for i, g in ipairs(before.groups) do assert.equal(g.table, opt.param_groups[i]) end
    end)
  end

  it("prepares a load without changing anything, then installs it without allocating", function()
    local source = stepped("Adam")
    local sd = source:state_dict()
    local opt = stepped("Adam")
    opt.param_groups[1].lr = 0.5
    local before = contents(opt)
    local apply = opt:prepare_load_state_dict(sd)
    assert.same(before, contents(opt))
    collectgarbage()
    mg.set_memory_limit(1)                  -- any tensor allocation fails from here
    local ok, err = pcall(apply)
    mg.set_memory_limit(0)
    assert.is_true(ok, tostring(err))
    assert.same(contents(source).groups[1].lr, opt.param_groups[1].lr)
    for i, p in ipairs(opt.param_groups[1].params) do
      local q = source.param_groups[1].params[i]
      assert.same(source.state[q].exp_avg_sq:totable(), opt.state[p].exp_avg_sq:totable())
    end
  end)

  it("changes nothing when memory runs out part-way through the state", function()
    local params, opt = {}, nil
    for i = 1, 4 do params[i] = mg.randn(64, 64):double():requires_grad() end
    opt = optim.Adam(params)
    for _, p in ipairs(params) do p.grad = mg.randn(64, 64):double() end
    opt:step()
    local sd = opt:state_dict()
    opt.param_groups[1].lr = 0.25
    local before = contents(opt)
    collectgarbage()
    -- room for three of the eight state tensors (32 KiB each)
    mg.set_memory_limit(mg.memory().tensor_bytes + 3 * 32768 + 16384)
    local ok, err = pcall(opt.load_state_dict, opt, sd)
    mg.set_memory_limit(0)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("not enough memory", 1, true), tostring(err))
    assert.same(before, contents(opt))
  end)
end)

describe("clip_grad_norm", function()
  local function setup()
    local a = mg.zeros(2, 3, "float64"):requires_grad()
    local b = mg.zeros(4, "float64"):requires_grad()
    a.grad = mg.tensor(ref.clip_grad_norm.G1, "float64")
    b.grad = mg.tensor(ref.clip_grad_norm.G2, "float64")
    return a, b
  end

  for _, c in ipairs(ref.clip_grad_norm.cases) do
    it(string.format("returns the total norm and scales like torch (max_norm %g, norm_type %g)",
                     c.max_norm, c.norm_type), function()
      local a, b = setup()
      local total = optim.clip_grad_norm({a, b}, c.max_norm, {norm_type = c.norm_type})
      assert.equal("number", type(total))
      check_close(total, c.total, 1e-12, "total")
      check_close({a.grad:totable(), b.grad:totable()}, c.grads, 1e-12, "grads")
    end)
  end

  it("takes a module or one tensor, and returns 0 when nothing has a gradient", function()
    local net = nn.Linear(2, 2)
    assert.equal(0, optim.clip_grad_norm(net, 1))
    local t = mg.zeros(2):requires_grad()
    t.grad = mg.tensor({3, 4})
    assert.is_true(math.abs(optim.clip_grad_norm(t, 1) - 5) < 1e-6)
    approx.assert_close(t.grad, {0.6, 0.8}, 1e-6, 1e-6)
  end)

  it("raises on a non-finite norm when asked to", function()
    local t = mg.zeros(2):requires_grad()
    t.grad = mg.tensor({0 / 0, 1})
    assert.has_error(function() optim.clip_grad_norm({t}, 1, {error_if_nonfinite = true}) end,
      "clip_grad_norm: the total norm of order 2 of the gradients is non-finite, so it cannot be clipped")
  end)
end)

describe("clip_grad_value", function()
  it("clamps every gradient in place like torch", function()
    local a = mg.zeros(2, 3, "float64"):requires_grad()
    local b = mg.zeros(4, "float64"):requires_grad()
    a.grad = mg.tensor(ref.clip_grad_norm.G1, "float64")
    b.grad = mg.tensor(ref.clip_grad_norm.G2, "float64")
    local ga = a.grad
    optim.clip_grad_value({a, b}, ref.clip_grad_value.clip_value)
    assert.same(ref.clip_grad_value.grads, {a.grad:totable(), b.grad:totable()})
    assert.is_true(a.grad:shares_storage(ga))
  end)
end)

describe("the update kernels", function()
  it("record nothing: a parameter stays a leaf, whatever the grad mode", function()
    local p = mg.tensor({1, 2}):requires_grad()
    local opt = optim.Adam({p})
    p.grad = mg.ones(2)
    opt:step()
    assert.is_true(p:is_leaf())
    assert.is_nil(p:grad_fn())
    assert.is_true(mg.is_grad_enabled())
  end)

  it("mark the parameter as changed: a graph that saved it fails at backward", function()
    local p = mg.tensor({1, 2}):requires_grad()
    local opt = optim.SGD({p}, {lr = 0.1})
    local y = (p * p):sum()
    p.grad = mg.ones(2)
    opt:step()
    assert.has_error(function() y:backward() end,
      "backward: a tensor that mul saved for its gradient was modified in place afterwards (version 1, saved at 0)")
  end)

  it("flush a state that decays below the smallest normal float to zero (subnormals are slow)", function()
    -- exp_avg after one step is 0.1 * 1.2e-36 = 1.2e-37; with zero gradients
    -- it shrinks by 0.9 a step and passes FLT_MIN (1.18e-38) after 22 steps.
    for _, dtype in ipairs({"float32", "float64"}) do
      local p = mg.tensor({1, 1}, dtype):requires_grad()
      local opt = optim.Adam({p}, {lr = 1e-3})
      p.grad = mg.tensor({1.2e-36, 1}, dtype)
      opt:step()
      p.grad = mg.zeros(2, dtype)
      for _ = 1, 30 do opt:step() end
      local m = opt.state[p].exp_avg:totable()
      if dtype == "float32" then
        assert.equal(0, m[1])
      else -- 1.2e-37 * 0.9^30 is a normal double: kept
        assert.is_true(math.abs(m[1] / (1.2e-37 * 0.9 ^ 30) - 1) < 1e-12)
      end
      assert.is_true(m[2] > 0)
    end
  end)

  it("update a large tensor exactly as small ones (vector and scalar paths agree)", function()
    mg.manual_seed(3)
    for _, dtype in ipairs({"float32", "float64"}) do
      for _, kind in ipairs({"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam"}) do
        local opts = {lr = 0.01}
        if kind == "SGD" then opts.momentum = 0.9 end
        if kind == "RMSprop" then opts.centered, opts.momentum = true, 0.5 end
        local big = mg.randn(1000, dtype):requires_grad()
        local grads = {}
        for s = 1, 3 do grads[s] = mg.randn(1000, dtype) end
        local small = {}
        for i = 1, 10 do small[i] = big:detach():narrow(1, (i - 1) * 100 + 1, 7):clone():requires_grad() end
        local ob, os = optim[kind]({big}, opts), optim[kind](small, opts)
        for s = 1, 3 do
          big.grad = grads[s]
          for i = 1, 10 do small[i].grad = grads[s]:narrow(1, (i - 1) * 100 + 1, 7):clone() end
          ob:step()
          os:step()
        end
        for i = 1, 10 do
          local a, b = big:narrow(1, (i - 1) * 100 + 1, 7):totable(), small[i]:totable()
          for j = 1, 7 do assert.is_true(a[j] == b[j], kind .. " " .. dtype .. " element differs") end
        end
      end
    end
  end)

  it("give the same numbers on one thread and on several", function()
    local n = mg.get_num_threads()
    local function run(threads)
      mg.set_num_threads(threads)
      mg.manual_seed(5)
      local p = mg.randn(200000):requires_grad()
      local opt = optim.Adam({p}, {lr = 0.01, amsgrad = true})
      for _ = 1, 3 do
        p.grad = mg.randn(200000)
        opt:step()
      end
      return p
    end
    local one, many = run(1), run(4)
    mg.set_num_threads(n)
    assert.equal(200000, one:eq(many):sum():item())
  end)

  it("allocate nothing after the first step", function()
    local p = mg.randn(1000):requires_grad()
    local opt = optim.Adam({p}, {amsgrad = true})
    p.grad = mg.randn(1000)
    opt:step()
    local before = mg.memory().allocs
    for _ = 1, 10 do opt:step() end
    assert.equal(before, mg.memory().allocs)
  end)
end)

describe("errors", function()
  local p = mg.zeros(2):requires_grad()

  local function raises(msg, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok, "no error")
    err = tostring(err)
    assert.truthy(err:find(msg, 1, true), "got: " .. err)
  end

  it("name the optimizer and the option", function()
    raises("Adam: lr must be a number >= 0, got -1", optim.Adam, {p}, {lr = -1})
    raises("RMSprop: eps must be a number >= 0, got -1e-08", optim.RMSprop, {p}, {eps = -1e-8})
    raises("Adam: betas[1] must be in [0, 1), got 1", optim.Adam, {p}, {betas = {1, 0.999}})
    raises("AdamW: betas[2] must be in [0, 1), got -0.1", optim.AdamW, {p}, {betas = {0.9, -0.1}})
    raises("Adam: betas must be a table of two numbers, got {0.9}", optim.Adam, {p}, {betas = {0.9}})
    raises("SGD: momentum must be a number >= 0, got -0.5", optim.SGD, {p}, {lr = 0.1, momentum = -0.5})
    raises("SGD: weight_decay must be a number >= 0, got -1", optim.SGD, {p}, {lr = 0.1, weight_decay = -1})
    raises("SGD: nesterov requires momentum > 0 and dampening = 0 (got momentum 0, dampening 0)",
           optim.SGD, {p}, {lr = 0.1, nesterov = true})
    raises("SGD: nesterov requires momentum > 0 and dampening = 0 (got momentum 0.9, dampening 0.1)",
           optim.SGD, {p}, {lr = 0.1, nesterov = true, momentum = 0.9, dampening = 0.1})
    raises("Adam: unknown option 'beta'", optim.Adam, {p}, {beta = 0.9})
    raises("NAdam: unknown option 'maximize'", optim.NAdam, {p}, {maximize = true})
    raises("Adam: amsgrad must be a boolean, got 1", optim.Adam, {p}, {amsgrad = 1})
    raises("SGD: parameter group 1: option 'lr' is required", optim.SGD, {p})
    raises("Adam: parameter group 2: lr must be a number >= 0, got -1", optim.Adam,
           {{params = {p}}, {params = {mg.zeros(1):requires_grad()}, lr = -1}})
    raises("Adam: parameter group 1: unknown option 'weight_decy'", optim.Adam,
           {{params = {p}, weight_decy = 0}})
  end)

  it("describe bad parameters", function()
    raises("Adam: got an empty parameter list", optim.Adam, {})
    raises("Adam: params must be an array of tensors, a module or an array of parameter groups, got a tensor",
           optim.Adam, p)
    raises("Adam: parameter group 1: parameter 1 is not a leaf tensor", optim.Adam, {p * 2})
    raises("Adam: parameter group 1: parameter 1 is int64", optim.Adam, {mg.zeros(2, "int64")})
    raises("Adam: parameter group 2: parameter 1 appears more than once", optim.Adam,
           {{params = {p}}, {params = {p}}})
    local opt = optim.Adam({p})
    raises("Adam: parameter group 2: parameter 1 appears more than once",
           opt.add_param_group, opt, {params = {p}})
    raises("Adam: step expects a closure (function) or nothing, got number", opt.step, opt, 1)
    raises("Adam: zero_grad: unknown option 'set_to_nil'", opt.zero_grad, opt, {set_to_nil = true})
  end)

  it("from the kernel name the shapes", function()
    local group = optim.Adam({p}).param_groups[1]
    raises("Adam: grad of shape [3] does not match parameter of shape [2]",
           mg._optim_step, "Adam", p, mg.zeros(3), group, {})
    raises("Adam: grad of dtype float64 does not match parameter of dtype float32",
           mg._optim_step, "Adam", p, mg.zeros(2, "float64"), group, {})
    raises("Adam: state 'exp_avg' of shape [4] does not match parameter of shape [2]",
           mg._optim_step, "Adam", p, mg.zeros(2), group, {exp_avg = mg.zeros(4)})
    raises("Adam: parameter of shape [3,2] is not contiguous",
           mg._optim_step, "Adam", mg.zeros(2, 3):t(), mg.zeros(3, 2), group, {})
  end)
end)
