-- moongrad.tune.gp, the surrogate of Bayesian optimization: its posterior
-- and likelihood against PyTorch's textbook computation
-- (spec/fixtures/gen_gp.py), its likelihood gradient against finite
-- differences, and a fit that improves the likelihood.
local gp = require "moongrad.tune.gp"
local rng = require "moongrad.tune.rng"
local approx = require "support.approx"
local ref = dofile("spec/fixtures/gp_ref.lua")

local log = math.log

-- n points of the unit cube in d dimensions and a smooth function of them.
local function data(n, d, seed)
  local r, X, y = rng.new(seed), {}, {}
  for i = 1, n do
    X[i] = {}
    for j = 1, d do X[i][j] = r:uniform() end
    y[i] = math.sin(5 * X[i][1]) + (d > 1 and X[i][2] ^ 2 or 0) + 0.01 * r:normal()
  end
  return X, y
end

describe("the GP surrogate", function()
  for _, c in ipairs(ref) do
    it("matches the textbook posterior and likelihood for " .. c.name, function()
      local model = assert(gp.new(c.x, c.y, c.theta, { standardize = false }))
      local mean, var = model:predict(c.xc)
      approx.assert_close(mean, c.mean, 1e-6, 1e-6)
      approx.assert_close(var, c.var, 1e-6, 1e-6)
      local lml = gp.log_marginal_likelihood(c.x, c.y, c.theta)
      approx.assert_close({ lml }, { c.lml }, 1e-6, 1e-8)
    end)
  end

  it("has the log marginal likelihood's gradient of finite differences", function()
    local X, y = data(12, 3, 5)
    local theta = { log(0.3), log(0.8), log(2), log(1.3), log(0.01) }
    local _, g = gp.log_marginal_likelihood(X, y, theta)
    local eps = 1e-6
    for i = 1, #theta do
      local hi, lo = { table.unpack(theta) }, { table.unpack(theta) }
      hi[i], lo[i] = theta[i] + eps, theta[i] - eps
      local numeric = (gp.log_marginal_likelihood(X, y, hi) - gp.log_marginal_likelihood(X, y, lo))
        / (2 * eps)
      assert(math.abs(g[i] - numeric) < 1e-5 * (1 + math.abs(numeric)),
        ("theta[%d]: analytic %.10g vs numerical %.10g"):format(i, g[i], numeric))
    end
  end)

  it("fits hyperparameters that raise the likelihood above every start", function()
    local X, y = data(20, 2, 7)
    local ys = gp.standardize(y)
    local model = gp.fit(X, y)
    local fitted = gp.log_marginal_likelihood(X, ys, model.theta)
    for _, s in ipairs({ { 0.5, 1, 1e-2 }, { 0.15, 1, 1e-4 } }) do
      local start = gp.log_marginal_likelihood(X, ys, { log(s[1]), log(s[1]), log(s[2]), log(s[3]) })
      assert.is_true(fitted > start + 1, ("fitted %.4f vs start %.4f"):format(fitted, start))
    end
    -- the first input matters more than the second (sin(5x) against x²)
    assert.is_true(model.params.lengthscales[1] < model.params.lengthscales[2])
  end)

  it("fits deterministically and finds irrelevant dimensions", function()
    local X, y = data(25, 4, 3)
    local a, b = gp.fit(X, y), gp.fit(X, y)
    assert.are.same(a.theta, b.theta)
    -- dims 3 and 4 do not enter y: long length scales
    assert.is_true(a.params.lengthscales[3] > 2 and a.params.lengthscales[4] > 2)
  end)

  it("interpolates its data when the noise is small", function()
    local X, y = data(15, 2, 11)
    local model = gp.fit(X, y)
    local mean, var = model:predict(X)
    approx.assert_close(mean, y, 0.05, 0)
    for i = 1, #var do assert.is_true(var[i] < 0.01) end
  end)

  it("believes pending points at the given values (kriging believer)", function()
    local X, y = data(10, 2, 13)
    local model = gp.fit(X, y)
    local pending = { { 0.31, 0.62 }, { 0.9, 0.1 } }
    local m0, v0 = model:predict(pending)
    local m1, v1 = model:condition(pending, m0):predict(pending)
    approx.assert_close(m1, m0, 1e-3, 1e-3)
    for i = 1, 2 do assert.is_true(v1[i] < v0[i] / 10) end
  end)

  it("rejects mismatched data", function()
    assert.has_error(function() gp.fit({ { 0.1 }, { 0.2 } }, { 1 }) end,
      "tune.gp: 2 points but 1 outputs")
    assert.has_error(function() gp.fit({}, {}) end, "tune.gp: X must be a non-empty list of points")
  end)
end)
