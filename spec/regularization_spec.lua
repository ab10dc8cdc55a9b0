-- Regularization: nn.l2_penalty, weight decay coupled (SGD, Adam: an L2
-- penalty in the gradient) and decoupled (AdamW: a shrink of the weights
-- outside the adaptive step), and dropout's train/eval behaviour.
-- Early stopping is issue 5's.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local approx = require "support.approx"

local error_of = require("support.check").err_of

-- A small float64 regression problem: an MLP, inputs and targets, all
-- drawn from a fixed seed, so that every test starts from the same place.
local function problem()
  mg.manual_seed(123)
  local net = nn.Sequential(nn.Linear(3, 5, {dtype = "float64"}), nn.Tanh(),
                            nn.Linear(5, 2, {dtype = "float64"}))
  local x = mg.randn(16, 3, "float64")
  local y = mg.randn(16, 2, "float64")
  return net, x, y
end

-- A copy of net with the same weights (a fresh model, then load_state_dict).
local function twin(net)
  local copy = problem()
  copy:load_state_dict(net:state_dict())
  return copy
end

-- Trains net for `steps` steps with optimizer make(params) on the MSE loss
-- plus extra(net) (a penalty) when given; returns net.
local function train(net, x, y, make, steps, extra)
  local opt = make(net:parameters())
  for _ = 1, steps do
    opt:zero_grad()
    local loss = F.mse_loss(net(x), y)
    if extra then loss = loss + extra(net) end
    loss:backward()
    opt:step()
  end
  return net
end

-- The largest |a - b| over all parameters of two models of one shape.
local function max_diff(a, b)
  local pa, pb, worst = a:parameters(), b:parameters(), 0
  for i = 1, #pa do
    worst = math.max(worst, (pa[i] - pb[i]):abs():max():item())
  end
  return worst
end

local function sum_of_squares(t)
  local s = 0
  for _, v in ipairs(approx.flat(t)) do s = s + v * v end
  return s
end

describe("nn.l2_penalty", function()
  it("is lambda times the sum of squares of every parameter, biases included", function()
    local net = problem()
    local expected = 0
    for _, p in ipairs(net:parameters()) do expected = expected + sum_of_squares(p:detach()) end
    local pen = nn.l2_penalty(net, 0.01)
    assert.equal(0, pen:dim())
    assert.equal("float64", pen:dtype())
    approx.assert_close(pen:item(), 0.01 * expected, 0, 1e-14)
    assert.equal(nn.utils.l2_penalty, nn.l2_penalty)
  end)

  it("gives each parameter the gradient 2 * lambda * p", function()
    local net = problem()
    nn.l2_penalty(net, 0.3):backward()
    for _, p in ipairs(net:parameters()) do
      approx.assert_close(p.grad, (p:detach() * 0.6):totable(), 1e-15, 1e-15)
    end
  end)

  it("takes an array of tensors as well as a module", function()
    local net = problem()
    local a = nn.l2_penalty(net, 0.5):item()
    local b = nn.l2_penalty(net:parameters(), 0.5):item()
    assert.equal(a, b)
    local w = mg.tensor({1, -2, 3}, "float64"):requires_grad()
    assert.equal(0.1 * 14, nn.l2_penalty({w}, 0.1):item())
  end)

  it("skips the parameters exclude(name, p) picks: names for a module, indices for a list", function()
    local net = problem()
    local seen = {}
    local pen = nn.l2_penalty(net, 1, {exclude = function(name, p)
      seen[#seen + 1] = name
      assert.is_true(mg.is_tensor(p))
      return name:match("bias$") ~= nil
    end})
    assert.same({"1.weight", "1.bias", "3.weight", "3.bias"}, seen)
    local weights = sum_of_squares(net[1].weight:detach()) + sum_of_squares(net[3].weight:detach())
    approx.assert_close(pen:item(), weights, 0, 1e-14)
    local params = net:parameters()
    local only_first = nn.l2_penalty(params, 1, {exclude = function(i) return i > 1 end})
    approx.assert_close(only_first:item(), sum_of_squares(params[1]:detach()), 0, 1e-14)
  end)

  it("is a 0-d zero when nothing is left", function()
    local pen = nn.l2_penalty({}, 0.1)
    assert.equal(0, pen:dim())
    assert.equal(0, pen:item())
    assert.equal(0, nn.l2_penalty(problem(), 1, {exclude = function() return true end}):item())
  end)

  it("names bad arguments", function()
    local net = problem()
    assert.matches("l2_penalty: lambda must be a number >= 0, got -1",
                   error_of(nn.l2_penalty, net, -1), 1, true)
    assert.matches("l2_penalty: lambda must be a number >= 0, got nil",
                   error_of(nn.l2_penalty, net), 1, true)
    assert.matches("l2_penalty: expects a module or an array of tensors, got number",
                   error_of(nn.l2_penalty, 3, 0.1), 1, true)
    assert.matches("l2_penalty: parameter 2 is a number, expected a tensor",
                   error_of(nn.l2_penalty, {mg.ones(2), 5}, 0.1), 1, true)
    assert.matches("l2_penalty: unknown option 'exlude' (known: exclude)",
                   error_of(nn.l2_penalty, net, 0.1, {exlude = print}), 1, true)
    assert.matches("l2_penalty: exclude must be a function(name, p), got string",
                   error_of(nn.l2_penalty, net, 0.1, {exclude = "bias"}), 1, true)
  end)
end)

describe("coupled weight decay", function()
  local lambda = 0.05

  it("in plain SGD equals SGD on loss + l2_penalty(lambda) with weight_decay = 2 lambda", function()
    local net, x, y = problem()
    local ref = twin(net)
    train(net, x, y, function(p) return optim.SGD(p, {lr = 0.1, weight_decay = 2 * lambda}) end, 20)
    train(ref, x, y, function(p) return optim.SGD(p, {lr = 0.1}) end, 20,
          function(m) return nn.l2_penalty(m, lambda) end)
    assert.is_true(max_diff(net, ref) < 1e-12, "differ by " .. max_diff(net, ref))
    -- and the decay did something: without it the weights end elsewhere
    local plain = train(twin(problem()), x, y, function(p) return optim.SGD(p, {lr = 0.1}) end, 20)
    assert.is_true(max_diff(net, plain) > 1e-3)
  end)

  it("in SGD with momentum (and nesterov) equals the penalty too: it goes through the momentum", function()
    for _, opts in ipairs({{momentum = 0.9}, {momentum = 0.9, dampening = 0.1},
                           {momentum = 0.8, nesterov = true}}) do
      local net, x, y = problem()
      local ref = twin(net)
      local with_wd = {lr = 0.05, weight_decay = 2 * lambda}
      local without = {lr = 0.05}
      for k, v in pairs(opts) do with_wd[k], without[k] = v, v end
      train(net, x, y, function(p) return optim.SGD(p, with_wd) end, 20)
      train(ref, x, y, function(p) return optim.SGD(p, without) end, 20,
            function(m) return nn.l2_penalty(m, lambda) end)
      assert.is_true(max_diff(net, ref) < 1e-12, "differ by " .. max_diff(net, ref))
    end
  end)

  it("in Adam equals the penalty as well: Adam only sees the gradient", function()
    local net, x, y = problem()
    local ref = twin(net)
    train(net, x, y, function(p) return optim.Adam(p, {lr = 0.01, weight_decay = 2 * lambda}) end, 20)
    train(ref, x, y, function(p) return optim.Adam(p, {lr = 0.01}) end, 20,
          function(m) return nn.l2_penalty(m, lambda) end)
    assert.is_true(max_diff(net, ref) < 1e-12, "differ by " .. max_diff(net, ref))
  end)
end)

describe("decoupled weight decay (AdamW)", function()
  it("differs from Adam's coupled decay with the same weight_decay", function()
    local net, x, y = problem()
    local adamw = twin(net)
    train(net, x, y, function(p) return optim.Adam(p, {lr = 0.01, weight_decay = 0.1}) end, 20)
    train(adamw, x, y, function(p) return optim.AdamW(p, {lr = 0.01, weight_decay = 0.1}) end, 20)
    assert.is_true(max_diff(net, adamw) > 1e-4, "differ by only " .. max_diff(net, adamw))
  end)

  it("takes the hand-computed step: p(1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps)", function()
    local lr, wd, b1, b2, eps = 0.01, 0.1, 0.9, 0.999, 1e-8
    local net, x, y = problem()
    local before = {}
    for i, p in ipairs(net:parameters()) do before[i] = p:detach():clone() end
    local opt = optim.AdamW(net:parameters(), {lr = lr, betas = {b1, b2}, eps = eps,
                                               weight_decay = wd})
    opt:zero_grad()
    F.mse_loss(net(x), y):backward()
    local grads = {}
    for i, p in ipairs(net:parameters()) do grads[i] = p.grad:clone() end
    opt:step()
    for i, p in ipairs(net:parameters()) do
      local g = grads[i]
      local m_hat = g * (1 - b1) / (1 - b1)           -- step 1: bias-corrected moments
      local v_hat = g * g * (1 - b2) / (1 - b2)
      local expected = before[i] * (1 - lr * wd) - m_hat / (v_hat:sqrt() + eps) * lr
      approx.assert_close(p:detach(), expected:totable(), 1e-12, 1e-12)
    end
  end)

  it("shrinks the weights independently of the gradient's scale, unlike coupled decay", function()
    -- Adam's step hardly changes when the loss is scaled (m / sqrt(v) is
    -- scale-free), so with decoupled decay the whole trajectory stays put.
    -- A coupled decay is a gradient, so scaling the loss changes its weight.
    local function scaled(make, scale)
      local net, x, y = problem()
      local opt = make(net:parameters())
      for _ = 1, 20 do
        opt:zero_grad()
        local loss = F.mse_loss(net(x), y) * scale
        loss:backward()
        opt:step()
      end
      return net
    end
    local adamw = function(p) return optim.AdamW(p, {lr = 0.01, weight_decay = 0.5}) end
    local adam = function(p) return optim.Adam(p, {lr = 0.01, weight_decay = 0.5}) end
    assert.is_true(max_diff(scaled(adamw, 1), scaled(adamw, 100)) < 1e-5)
    assert.is_true(max_diff(scaled(adam, 1), scaled(adam, 100)) > 1e-3)
  end)
end)

describe("dropout", function()
  -- Checks y against x elementwise: each y is 0 or x * (1 / (1 - p)) exactly
  -- (the kernel multiplies by the rounded scale, in x's dtype); returns the
  -- fraction of zeros and the keep mask (1 or 0 per element).
  local function check_scaled(x, y, p)
    local scale = 1 / (1 - p)
    if x:dtype() == "float32" then scale = approx.f32(scale) end
    local xs, ys, mask, zeros = approx.flat(x:detach()), approx.flat(y:detach()), {}, 0
    for i = 1, #xs do
      local kept = xs[i] * scale
      if x:dtype() == "float32" then kept = approx.f32(kept) end
      if ys[i] == 0 then
        zeros, mask[i] = zeros + 1, 0
      else
        assert.equal(kept, ys[i], "element " .. i)
        mask[i] = 1
      end
    end
    return zeros / #xs, mask
  end

  it("nn.Dropout(p) in training zeroes about p of the elements and scales the rest by 1/(1-p)", function()
    for _, dt in ipairs({"float64", "float32"}) do
      for _, p in ipairs({0.1, 0.3, 0.5, 0.8}) do
        mg.manual_seed(17)
        local x = mg.randn({100, 100}, dt)
        local d = nn.Dropout(p)
        assert.is_true(d.training)
        local frac = check_scaled(x, d(x), p)
        assert.is_true(math.abs(frac - p) < 0.03, ("p = %g: dropped %g"):format(p, frac))
      end
    end
  end)

  it("draws a new mask on each call in training", function()
    mg.manual_seed(4)
    local d, x = nn.Dropout(0.5), mg.ones(200, "float64")
    assert.are_not.same(d(x):totable(), d(x):totable())
  end)

  it("nn.Dropout in eval mode is the identity and draws no random numbers", function()
    local d = nn.Dropout(0.5)
    d:eval()
    local x = mg.randn(10, 10, "float64")
    local state = mg.get_rng_state()
    assert.same(x:totable(), d(x):totable())
    assert.same(state, mg.get_rng_state())
    d:train()
    assert.are_not.same(x:totable(), d(x):totable())
  end)

  it("follows net:train() and net:eval() inside a model", function()
    mg.manual_seed(9)
    local net = nn.Sequential(nn.Linear(4, 50, {dtype = "float64"}), nn.Dropout(0.5),
                              nn.Linear(50, 1, {dtype = "float64"}))
    local x = mg.randn(8, 4, "float64")
    local no_dropout = net[3](net[1](x)):totable()
    net:eval()
    assert.same(no_dropout, net(x):totable())
    net:train()
    assert.are_not.same(no_dropout, net(x):totable())
  end)

  it("F.dropout(x, p, false) and p = 0 are the identity; p = 1 gives zeros", function()
    local x = mg.randn(5, 6, "float64")
    assert.same(x:totable(), F.dropout(x, 0.5, false):totable())
    assert.same(x:totable(), F.dropout(x, 0, true):totable())
    assert.same(x:totable(), nn.Dropout(0)(x):totable())
    assert.same(mg.zeros(5, 6, "float64"):totable(), F.dropout(x, 1, true):totable())
    assert.same(mg.zeros(5, 6, "float64"):totable(), nn.Dropout(1)(x):totable())
  end)

  it("sends the gradient through the same mask, scaled the same way", function()
    for _, dt in ipairs({"float64", "float32"}) do
      mg.manual_seed(21)
      local p = 0.4
      local x = mg.randn({30, 40}, dt):requires_grad()
      local y = nn.Dropout(p)(x)
      local _, mask = check_scaled(x, y, p)
      local g = mg.randn({30, 40}, dt)
      y:backward(g)
      -- the gradient is g * (mask / (1 - p)): what dropout does to x, done to g
      local _, gmask = check_scaled(g, x.grad, p)
      for i = 1, #mask do
        if mask[i] == 0 then
          assert.equal(0, approx.flat(x.grad)[i], "element " .. i)
        else
          assert.equal(1, gmask[i], "element " .. i)
        end
      end
    end
  end)

  it("passes the whole gradient through when not training", function()
    local x = mg.randn(3, 4, "float64"):requires_grad()
    local g = mg.randn(3, 4, "float64")
    F.dropout(x, 0.5, false):backward(g)
    assert.same(g:totable(), x.grad:totable())
  end)
end)
