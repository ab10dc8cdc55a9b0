-- moongrad.tune.gp: the Gaussian-process surrogate of Bayesian optimization.
--
-- A zero-mean GP over points of the unit cube [0, 1]^d with a Matérn-5/2
-- kernel with one length scale per dimension (ARD):
--
--   k(x, x') = s (1 + √5 r + 5/3 r²) exp(-√5 r),  r² = Σ_j (x_j - x'_j)² / l_j²
--
-- plus noise variance n on the diagonal. The hyperparameters are handled
-- as theta = {log l_1 .. log l_d, log s, log n}. Everything runs on
-- moongrad float64 tensors: kernel matrices by broadcasting, the Cholesky
-- factor and the solves through mg.linalg (LAPACK), and the gradient of
-- the log marginal likelihood by autograd through them (exact, not finite
-- differences).
--
--   local model = gp.fit(X, y, {restarts = 2, iterations = 60})
--   local mean, var = model:predict(Xc)   -- lists, in y's units
--   local m2 = model:condition(Xr, yr)    -- more points, same hyperparameters
--
-- X is a list of points (lists of d numbers), y a list of numbers. fit
-- standardises y (mean 0, variance 1) and maximises the log marginal
-- likelihood plus a weak log-normal prior on the length scales (which keeps
-- a handful of points from fitting a length scale of 0 or infinity) with
-- Adam on theta, clamped to the bounds below, from fixed starting points:
-- the fit is deterministic.
local mg = require "moongrad"

local log, sqrt, max, min, huge, pi = math.log, math.sqrt, math.max, math.min, math.huge,
  math.pi
local ipairs, pcall, error, type, fmt = ipairs, pcall, error, type, string.format

local gp = {}

local SQRT5 = sqrt(5)
local JITTER = 1e-9       -- added to the diagonal beyond the fitted noise
-- Bounds of theta: length scales (the cube is 1 wide), signal and noise
-- variance (of standardised outputs).
local LOG_L = { log(0.01), log(20) }
local LOG_S = { log(0.05), log(20) }
local LOG_N = { log(1e-6), log(0.5) }
-- The length scales' prior: log l ~ N(log 0.5, 1.5²).
local PRIOR_MEAN, PRIOR_SD = log(0.5), 1.5

-- ---- the kernel ---------------------------------------------------------------

-- Matérn-5/2 of squared scaled distances r2 (a tensor), times signal (a
-- number or 0-d tensor). sqrt's gradient at 0 is infinite, so r comes from
-- r2 plus 1e-12: the kernel moves by 1e-12 relative, its gradient stays
-- finite on the diagonal.
local function matern52(r2, signal)
  local sr = (r2 + 1e-12):sqrt() * SQRT5
  return (sr + 1 + r2 * (5 / 3)) * (-sr):exp() * signal
end

-- Squared differences per dimension between the rows of A (m, d) and B
-- (n, d): an (m, n, d) tensor.
local function sqdiff(A, B)
  local diff = A:unsqueeze(2) - B:unsqueeze(1)
  return diff * diff
end

-- k(A, B) with inverse squared length scales w (d), signal s. r² as
-- |a|² + |b|² - 2 a·b of the scaled points, one gemm instead of an
-- (m, n, d) tensor of differences (clamped: rounding can make it -1e-16).
local function kernel(A, B, w, s)
  local sw = w:sqrt()
  local As, Bs = A * sw, B * sw
  local r2 = (As * As):sum(2, true) + (Bs * Bs):sum(2):unsqueeze(1) - As:matmul(Bs:t()) * 2
  return matern52(r2:clamp(0), s)
end

local function as_matrix(X, what)
  if type(X) ~= "table" or #X == 0 then
    error(fmt("tune.gp: %s must be a non-empty list of points", what), 3)
  end
  return mg.tensor(X, "float64")
end

local function as_column(y)
  return mg.tensor(y, "float64"):reshape(#y, 1)
end

-- The three parts of theta (a float64 tensor of d + 2) as tensors: the
-- inverse squared length scales (d), the signal and the noise (0-d).
local function split(theta, d)
  local w = (theta:narrow(1, 1, d) * -2):exp()
  return w, theta:select(1, d + 1):exp(), theta:select(1, d + 2):exp()
end

-- The negative log marginal likelihood of column y at the rows of Xt under
-- theta, from the squared differences D (n, n, d): a 0-d tensor that
-- autograd can differentiate in theta.
local function nlml(D, y, theta)
  local n, d = y:size(1), D:size(3)
  local w, s, noise = split(theta, d)
  local K = matern52((D * w):sum(3), s) + mg.eye(n, n, "float64") * (noise + JITTER)
  local L = mg.linalg.cholesky(K)
  local v = mg.linalg.solve_triangular(L, y, { upper = false })
  local logdet = (L * mg.eye(n, n, "float64")):sum(2):log():sum()
  return (v * v):sum() * 0.5 + logdet + 0.5 * n * log(2 * pi)
end

-- The negative log prior of the length scales (0-d tensor).
local function neg_log_prior(theta, d)
  local z = (theta:narrow(1, 1, d) - PRIOR_MEAN) * (1 / PRIOR_SD)
  return (z * z):sum() * 0.5
end

-- gp.log_marginal_likelihood(X, y, theta) --> value, gradient (a list, in
-- theta's order): log p(y | X, theta) of the outputs y as given (not
-- standardised).
function gp.log_marginal_likelihood(X, y, theta)
  local Xt = as_matrix(X, "X")
  local th = mg.tensor(theta, "float64"):requires_grad()
  local f = nlml(sqdiff(Xt, Xt), as_column(y), th)
  f:backward()
  local g = th.grad:totable()
  for i = 1, #g do g[i] = -g[i] end
  return -f:item(), g
end

-- ---- a model: the posterior under fixed hyperparameters --------------------------

local Model = {}
Model.__index = Model

-- Factors K for the standardised outputs; fails (returns nil, message)
-- when K is not positive-definite even with the jitter.
local function posterior(Xt, ys, theta, ymean, ystd)
  local d = Xt:size(2)
  return mg.no_grad(function()
    local th = mg.tensor(theta, "float64")
    local w, s, noise = split(th, d)
    local n = Xt:size(1)
    local K = kernel(Xt, Xt, w, s) + mg.eye(n, n, "float64") * (noise + JITTER)
    local ok, L = pcall(mg.linalg.cholesky, K)
    if not ok then return nil, L end
    return setmetatable({
      X = Xt, ys = ys, L = L, alpha = mg.cholesky_solve(ys, L), w = w, s = s,
      theta = theta, ymean = ymean, ystd = ystd, d = d,
      params = { lengthscales = (th:narrow(1, 1, d)):exp():totable(), signal = s:item(),
                 noise = noise:item() },
    }, Model)
  end)
end

-- Mean and variance of y at the standardised scale, as column tensors.
function Model:_predict(Xc)
  return mg.no_grad(function()
    local Ks = kernel(Xc, self.X, self.w, self.s)            -- (m, n)
    local mean = Ks:matmul(self.alpha)                         -- (m, 1)
    local v = mg.linalg.solve_triangular(self.L, Ks:t(), { upper = false }) -- (n, m)
    local var = ((v * v):sum(1) * -1 + self.s):clamp(1e-12)  -- (m)
    return mean:reshape(-1), var
  end)
end

-- model:predict(Xc) --> means, variances: lists, one per point of Xc, in
-- y's units (the latent function's variance, without the noise).
function Model:predict(Xc)
  local mean, var = self:_predict(as_matrix(Xc, "Xc"))
  local m, v = mean:totable(), var:totable()
  local sd2 = self.ystd * self.ystd
  for i = 1, #m do
    m[i] = self.ymean + self.ystd * m[i]
    v[i] = v[i] * sd2
  end
  return m, v
end

-- model:condition(Xr, yr) --> a model with the points Xr observed as yr
-- (y's units) too, under the same hyperparameters and standardisation:
-- how a sampler pretends pending trials came out ("kriging believer").
function Model:condition(Xr, yr)
  if #Xr == 0 then return self end
  local ys = {}
  for i, v in ipairs(yr) do ys[i] = (v - self.ymean) / self.ystd end
  local m = posterior(mg.cat({ self.X, as_matrix(Xr, "Xr") }, 1),
                      mg.cat({ self.ys, as_column(ys) }, 1), self.theta, self.ymean, self.ystd)
  return m or self
end

-- gp.standardize(y) --> a standardised copy of y, its mean and standard
-- deviation (1 when y is constant).
local function standardize(y)
  local n, mean, var = #y, 0, 0
  for _, v in ipairs(y) do mean = mean + v / n end
  for _, v in ipairs(y) do var = var + (v - mean) ^ 2 / n end
  local sd = var > 1e-24 and sqrt(var) or 1
  local ys = {}
  for i, v in ipairs(y) do ys[i] = (v - mean) / sd end
  return ys, mean, sd
end
gp.standardize = standardize

-- gp.new(X, y, theta [, {standardize = true}]) --> a model with the given
-- hyperparameters (nil and a message when K is not positive-definite).
function gp.new(X, y, theta, opts)
  local ys, mean, sd = y, 0, 1
  if not (opts and opts.standardize == false) then ys, mean, sd = standardize(y) end
  return posterior(as_matrix(X, "X"), as_column(ys), theta, mean, sd)
end

-- ---- fitting ---------------------------------------------------------------------

local function clamp_theta(t, d)
  for j = 1, d do t[j] = min(LOG_L[2], max(LOG_L[1], t[j])) end
  t[d + 1] = min(LOG_S[2], max(LOG_S[1], t[d + 1]))
  t[d + 2] = min(LOG_N[2], max(LOG_N[1], t[d + 2]))
  return t
end

-- The objective fit minimises and its gradient, or nil when K fails.
local function objective(D, y, theta, d)
  local th = mg.tensor(theta, "float64"):requires_grad()
  local ok, f = pcall(function() return nlml(D, y, th) + neg_log_prior(th, d) end)
  if not ok then return nil end
  f:backward()
  return f:item(), th.grad:totable()
end

-- Adam on theta from start, clamped to the bounds; the best point seen.
local function adam(D, y, start, d, iterations, lr)
  local theta, m, v = clamp_theta(start, d), {}, {}
  for i = 1, #theta do m[i], v[i] = 0, 0 end
  local best_f, best = huge, nil
  local b1, b2 = 0.9, 0.999
  for step = 1, iterations do
    local f, g = objective(D, y, theta, d)
    if not f then break end
    if f < best_f then best_f, best = f, { table.unpack(theta) } end
    local c1, c2 = 1 - b1 ^ step, 1 - b2 ^ step
    for i = 1, #theta do
      m[i] = b1 * m[i] + (1 - b1) * g[i]
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
      theta[i] = theta[i] - lr * (m[i] / c1) / (sqrt(v[i] / c2) + 1e-8)
    end
    clamp_theta(theta, d)
  end
  local f = objective(D, y, theta, d)
  if f and f < best_f then best_f, best = f, theta end
  return best, best_f
end

-- The starting points of the restarts: moderate and short length scales,
-- little noise; then longer ones.
local STARTS = {
  { l = 0.5, s = 1, n = 1e-2 },
  { l = 0.15, s = 1, n = 1e-4 },
  { l = 1.5, s = 1, n = 1e-3 },
}

-- gp.fit(X, y [, opts]) --> a model with fitted hyperparameters.
-- opts: restarts (2, at most 3), iterations (60), lr (0.1).
function gp.fit(X, y, opts)
  opts = opts or {}
  local Xt = as_matrix(X, "X")
  if #y ~= #X then error(fmt("tune.gp: %d points but %d outputs", #X, #y), 2) end
  local d = Xt:size(2)
  local ys, mean, sd = standardize(y)
  local yt = as_column(ys)
  local D = sqdiff(Xt, Xt)
  local best, best_f = nil, huge
  for r = 1, min(opts.restarts or 2, #STARTS) do
    local s, start = STARTS[r], {}
    for j = 1, d do start[j] = log(s.l) end
    start[d + 1], start[d + 2] = log(s.s), log(s.n)
    local theta, f = adam(D, yt, start, d, opts.iterations or 60, opts.lr or 0.1)
    if theta and f < best_f then best, best_f = theta, f end
  end
  if not best then -- every start failed: a smooth, noisy fallback
    best = {}
    for j = 1, d do best[j] = log(0.5) end
    best[d + 1], best[d + 2] = 0, log(0.1)
  end
  local model = posterior(Xt, yt, best, mean, sd)
  if not model then
    best[d + 2] = LOG_N[2]
    model = assert(posterior(Xt, yt, best, mean, sd))
  end
  return model
end

return gp
