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
-- the log marginal likelihood in closed form (exact, not finite
-- differences).
--
--   local model = gp.fit(X, y, {restarts = 2, iterations = 80})
--   local mean, var = model:predict(Xc)   -- lists, in y's units
--   local m2 = model:condition(Xr, yr)    -- more points, same hyperparameters
--
-- X is a list of points (lists of d numbers), y a list of numbers. fit
-- standardises y (mean 0, variance 1) and maximises the log marginal
-- likelihood plus a weak log-normal prior on the length scales (which keeps
-- a handful of points from fitting a length scale of 0 or infinity) by
-- L-BFGS within the bounds below, from fixed starting points: the fit is
-- deterministic. At 200 points in 6 dimensions a fit takes about 35
-- likelihood evaluations of 2 ms each (bench/tune_samplers.lua measures
-- the whole suggestion).
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

-- The negative log marginal likelihood of column y under theta and its
-- gradient (a list in theta's order), from the squared differences D of
-- the points as an (n², d) matrix; nil when K is not positive-definite.
-- The gradient is the textbook one (Rasmussen & Williams 2006, eq. 5.9):
-- with W = K⁻¹ - α αᵀ, ∂/∂θ = ½ Σ W ∘ ∂K/∂θ. Written out rather than
-- left to autograd: a fit evaluates it dozens of times per trial, and the
-- Matérn kernel's derivative in r² has a closed form without the r = 0
-- singularity, ∂k/∂r² = -s (5/6)(1 + a) e^(-a) with a = √5 r.
local function nlml_and_grad(D, y, theta, n, d)
  local w5, wl = {}, {}
  for j = 1, d do
    wl[j] = math.exp(-2 * theta[j])
    w5[j] = { 5 * wl[j] }
  end
  local s, noise = math.exp(theta[d + 1]), math.exp(theta[d + 2])
  return mg.no_grad(function()
    local eye = mg.eye(n, n, "float64")
    local a = D:matmul(mg.tensor(w5, "float64")):reshape(n, n):clamp(0):sqrt()
    local e = (-a):exp()
    local kf = (a * (a + 3) * (1 / 3) + 1) * e * s        -- the signal part of K
    local ok, L = pcall(mg.linalg.cholesky, kf + eye * (noise + JITTER))
    if not ok then return nil end
    local alpha = mg.cholesky_solve(y, L)
    local W = mg.cholesky_solve(eye, L) - alpha:matmul(alpha:t())
    local dk = (a + 1) * e * (-5 / 6 * s)                  -- ∂k/∂r²
    local gl = (W * dk):reshape(1, n * n):matmul(D):totable()[1]
    local g = {}
    for j = 1, d do g[j] = -wl[j] * gl[j] end
    g[d + 1] = 0.5 * (W * kf):sum():item()
    g[d + 2] = 0.5 * noise * (W * eye):sum():item()
    local f = 0.5 * (y * alpha):sum():item() + (L * eye):sum(2):log():sum():item()
      + 0.5 * n * log(2 * pi)
    return f, g
  end)
end

-- The squared differences per dimension between the rows of Xt as an
-- (n², d) matrix.
local function sqdiff(Xt)
  local n = Xt:size(1)
  local diff = Xt:unsqueeze(2) - Xt:unsqueeze(1)
  return (diff * diff):reshape(n * n, Xt:size(2))
end

-- gp.log_marginal_likelihood(X, y, theta) --> value, gradient (a list, in
-- theta's order): log p(y | X, theta) of the outputs y as given (not
-- standardised).
function gp.log_marginal_likelihood(X, y, theta)
  local Xt = as_matrix(X, "X")
  local f, g = nlml_and_grad(sqdiff(Xt), as_column(y), theta, Xt:size(1), Xt:size(2))
  if not f then error("tune.gp: the kernel matrix is not positive-definite under theta", 2) end
  for i = 1, #g do g[i] = -g[i] end
  return -f, g
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

-- The bounds of theta's entries: a list of {lo, hi}.
local function bounds(d)
  local b = {}
  for j = 1, d do b[j] = LOG_L end
  b[d + 1], b[d + 2] = LOG_S, LOG_N
  return b
end

-- fit searches z, unbounded, with theta = lo + (hi - lo) σ(z): a smooth
-- map onto the bounds, so a quasi-Newton method needs no projections.
local function to_theta(z, b)
  local theta, dtheta = {}, {}
  for i, zi in ipairs(z) do
    local sg = 1 / (1 + math.exp(-zi))
    local w = b[i][2] - b[i][1]
    theta[i], dtheta[i] = b[i][1] + w * sg, w * sg * (1 - sg)
  end
  return theta, dtheta
end

local function to_z(theta, b)
  local z = {}
  for i, t in ipairs(theta) do
    local p = (t - b[i][1]) / (b[i][2] - b[i][1])
    p = min(1 - 1e-6, max(1e-6, p))
    z[i] = log(p / (1 - p))
  end
  return z
end

local function dot(a, b)
  local s = 0
  for i = 1, #a do s = s + a[i] * b[i] end
  return s
end

-- A minimisation of fg (z --> f, gradient, or nil where it is undefined)
-- from x by L-BFGS (Nocedal & Wright 2006, algorithm 7.4) with a memory of
-- 8 pairs and a backtracking line search on the Armijo condition.
-- run(iterations) takes up to that many more iterations and returns the
-- point, its value and whether it has converged: the gradient is
-- near 0, or the last three iterations gained less than 1e-3 (a
-- thousandth of a nat of likelihood moves no prediction). A state whose
-- start fails has f = nil.
local function lbfgs(fg, x)
  local f, g = fg(x)
  local S, Y, RHO, n = {}, {}, {}, #x
  local recent, done = {}, not f
  local state = { x = x, f = f }
  function state.run(iterations)
   for _ = 1, done and 0 or iterations do
    -- the two-loop recursion: dir = -H g
    local q, al = { table.unpack(g) }, {}
    for k = #S, 1, -1 do
      al[k] = RHO[k] * dot(S[k], q)
      for i = 1, n do q[i] = q[i] - al[k] * Y[k][i] end
    end
    local gamma = #S > 0 and dot(S[#S], Y[#S]) / dot(Y[#S], Y[#S])
      or 1 / max(1, sqrt(dot(g, g)))
    for i = 1, n do q[i] = q[i] * gamma end
    for k = 1, #S do
      local b = RHO[k] * dot(Y[k], q)
      for i = 1, n do q[i] = q[i] + S[k][i] * (al[k] - b) end
    end
    local dir, slope = {}, 0
    for i = 1, n do dir[i] = -q[i] end
    slope = dot(g, dir)
    if not (slope < 0) then -- not a descent direction: forget the curvature
      S, Y, RHO = {}, {}, {}
      for i = 1, n do dir[i] = -g[i] / max(1, sqrt(dot(g, g))) end
      slope = dot(g, dir)
    end
    local t, xn, fn, gn = 1, {}, nil, nil
    for _ = 1, 30 do
      for i = 1, n do xn[i] = x[i] + t * dir[i] end
      fn, gn = fg(xn)
      if fn and fn <= f + 1e-4 * t * slope then break end
      fn, t = nil, t * 0.5
    end
    if not fn then done = true; break end
    local s, yv = {}, {}
    for i = 1, n do s[i], yv[i] = xn[i] - x[i], gn[i] - g[i] end
    local sy = dot(s, yv)
    if sy > 1e-12 then
      if #S == 8 then
        table.remove(S, 1); table.remove(Y, 1); table.remove(RHO, 1)
      end
      S[#S + 1], Y[#Y + 1], RHO[#RHO + 1] = s, yv, 1 / sy
    end
    x, f, g = xn, fn, gn
    recent[#recent + 1] = f
    local gmax = 0
    for i = 1, n do gmax = max(gmax, math.abs(g[i])) end
    if gmax < 1e-5 or (#recent > 3 and recent[#recent - 3] - f < 1e-3) then
      done = true
      break
    end
   end
   state.x, state.f = x, f
   return state
  end
  return state
end

-- The function fit minimises over z: the negative log marginal likelihood
-- plus the length scales' negative log prior, and its gradient in z.
local function objective(D, y, n, d, b)
  return function(z)
    local theta, dtheta = to_theta(z, b)
    local f, g = nlml_and_grad(D, y, theta, n, d)
    if not f then return nil end
    for j = 1, d do
      local u = (theta[j] - PRIOR_MEAN) / PRIOR_SD
      f, g[j] = f + 0.5 * u * u, g[j] + u / PRIOR_SD
    end
    for i = 1, #g do g[i] = g[i] * dtheta[i] end
    return f, g
  end
end

local RACE = 8 -- iterations each restart takes before the best goes on

-- The starting points of the restarts: moderate and short length scales,
-- little noise; then longer ones.
local STARTS = {
  { l = 0.5, s = 1, n = 1e-2 },
  { l = 0.15, s = 1, n = 1e-4 },
  { l = 1.5, s = 1, n = 1e-3 },
}

-- gp.fit(X, y [, opts]) --> a model with fitted hyperparameters.
-- opts: restarts (2, at most 3), iterations (L-BFGS iterations per start,
-- 80; a fit usually converges in 20 to 40).
function gp.fit(X, y, opts)
  opts = opts or {}
  local Xt = as_matrix(X, "X")
  if #y ~= #X then error(fmt("tune.gp: %d points but %d outputs", #X, #y), 2) end
  local n, d = Xt:size(1), Xt:size(2)
  local ys, mean, sd = standardize(y)
  local yt = as_column(ys)
  local b = bounds(d)
  local fg = objective(sqdiff(Xt), yt, n, d, b)
  -- the restarts race: each takes a few iterations, then only the best
  -- goes on (a start that loses early seldom wins late, and the fit's
  -- time is what a trial waits for)
  local iterations = opts.iterations or 80
  local leader
  for r = 1, min(opts.restarts or 2, #STARTS) do
    local s, start = STARTS[r], {}
    for j = 1, d do start[j] = log(s.l) end
    start[d + 1], start[d + 2] = log(s.s), log(s.n)
    local run = lbfgs(fg, to_z(start, b)).run(min(RACE, iterations))
    if run.f and (not leader or run.f < leader.f) then leader = run end
  end
  if leader then leader.run(iterations - min(RACE, iterations)) end
  local best = leader and (to_theta(leader.x, b))
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
