-- moongrad.tune.tpe: the tree-structured Parzen estimator (Bergstra, Bardenet,
-- Bengio & Kegl, "Algorithms for Hyper-Parameter Optimization", NeurIPS
-- 2011), with Optuna's defaults. Re-exported as tune.TPESampler.
--
--   local sampler = tune.TPESampler{initial = 10, candidates = 24}
--   sampler:suggest(space, history, ctx) --> {name -> value}
--
-- How it suggests. The first trials come from the prior (space:sample).
-- After that the finished trials are ranked and split into the gamma(n)
-- best ("good") and the rest ("bad"); per dimension, in the unit space of
-- dim:to_unit (log dimensions are already logarithmic there), each group
-- becomes a Parzen density: a mixture of Gaussians truncated to [0, 1], one
-- at each observation plus a wide prior component (mean 0.5, sd 1), or for
-- a choice dimension the observed counts smoothed by the prior. The sampler
-- draws `candidates` values from the good density l(x) and keeps the one
-- with the largest log l(x) - log g(x), the expected-improvement criterion
-- of the paper. Dimensions are modelled and chosen independently (Optuna's
-- default, multivariate = false); since the densities are products over
-- dimensions, choosing each dimension's best candidate maximises the joint
-- ratio over the candidates drawn. Integer dimensions score a candidate by
-- the mass each density puts on the integer's slice of [0, 1] rather than
-- the density at one point, so that neither density is favoured by where
-- inside the slice the candidate fell.
--
-- Ranking. Complete trials rank by loss (minimised). Pruned trials rank
-- after every complete trial, as in Optuna: those that reached a later step
-- first (the step of their last intermediate report), then by `loss` when
-- they carry one (a pruned trial without a loss ranks last at its step);
-- a pruned trial never reported is ranked as reaching no step. Ties go to
-- the earlier trial number, so the split is deterministic. Failed trials
-- are ignored. Running trials (other workers') are ignored too, unless
-- constant_liar is set: then they join the bad group, which pushes
-- concurrent suggestions away from points still being evaluated.
--
-- Bandwidths. The default ("neighbours") gives each observation the larger
-- of its distances to its left and right neighbours among the sorted means
-- (prior mean included), clipped to [1 / min(100, 1 + k), 1] for k
-- components (Bergstra's adaptive Parzen estimator and its "magic clip").
-- It adapts per point: good trials bunched around an optimum get narrow
-- kernels (exploitation) while isolated ones stay wide (exploration).
-- Scott's rule ("scott": sd * n^(-1/5), the same for every observation,
-- same clip) assumes one roughly Gaussian bump, and with the few good
-- points TPE has (gamma(n) <= 25) its one width is set by the spread of
-- all of them, blurring separate modes; it is kept as an option.
--
-- Options (all optional):
--   initial       integer >= 0, default 10: the number of finished trials
--                 (complete or pruned) below which suggestions come from the
--                 prior (Optuna's n_startup_trials).
--   candidates    integer >= 1, default 24: draws from l(x) per dimension
--                 (Optuna's n_ei_candidates).
--   gamma         how many of the n ranked trials are good: a function
--                 n -> count (its result is floored and clipped to 0..n), or
--                 a number in (0, 1], the fraction ceil(gamma * n). Default
--                 min(ceil(0.1 * n), 25), Optuna's default_gamma.
--   prior_weight  number > 0, default 1: the prior component's weight,
--                 against weight 1 for each observation.
--   bandwidth     "neighbours" (default) or "scott", as above.
--   constant_liar boolean, default false: count running trials as bad.
-- There is no seed: every draw comes from ctx.rng, so a suggestion is a
-- function of (history, ctx) alone.
local util = require "moongrad.util"

local type, error, ipairs, pairs, tostring, setmetatable = type, error, ipairs, pairs, tostring,
  setmetatable
local floor, ceil, min, max = math.floor, math.ceil, math.min, math.max
local exp, log, sqrt, pi, huge = math.exp, math.log, math.sqrt, math.pi, math.huge
local math_type, fmt, sort = math.type, string.format, table.sort

local NAME = "tune.TPESampler"
local LOG_SQRT_2PI = 0.5 * log(2 * pi)
local SQRT_HALF = sqrt(0.5)
local MAX_REJECTS = 64      -- truncated-normal draws before falling back to a clamp

local tpe = {}

-- Numerics -----------------------------------------------------------------------

-- erfc(x) with fractional error below 1.2e-7 everywhere: the Chebyshev fit
-- of Numerical Recipes (2nd ed., section 6.2). Relative accuracy in the tail
-- matters here: a kernel's mass far from its mean is a tiny difference.
local function erfc(x)
  local z = x < 0 and -x or x
  local t = 1 / (1 + 0.5 * z)
  local r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
    + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
    + t * (-0.82215223 + t * 0.17087277)))))))))
  return x < 0 and 2 - r or r
end

-- The standard normal's mass on [za, zb], taken from the nearer tail.
local function normal_mass(za, zb)
  if za > 0 then return 0.5 * (erfc(za * SQRT_HALF) - erfc(zb * SQRT_HALF)) end
  if zb < 0 then return 0.5 * (erfc(-zb * SQRT_HALF) - erfc(-za * SQRT_HALF)) end
  return 1 - 0.5 * (erfc(-za * SQRT_HALF) + erfc(zb * SQRT_HALF))
end

local function logsumexp(xs, n)
  local m = -huge
  for i = 1, n do if xs[i] > m then m = xs[i] end end
  if m == -huge then return -huge end
  local s = 0
  for i = 1, n do s = s + exp(xs[i] - m) end
  return m + log(s)
end

-- Parzen densities on [0, 1] ----------------------------------------------------------

-- A mixture of Gaussians truncated to [0, 1]: mu, sigma and log weight per
-- component (the weight includes 1 / the component's mass on [0, 1]).
local function mixture(points, prior_weight, bandwidth)
  local n = #points
  local k = n + 1                                  -- observations + the prior
  local lo_sigma = 1 / min(100, 1 + k)
  local mu, sigma = {}, {}
  for i = 1, n do mu[i] = points[i] end
  mu[k], sigma[k] = 0.5, 1
  if bandwidth == "scott" then
    local h = 0
    if n > 1 then
      local mean, ss = 0, 0
      for i = 1, n do mean = mean + mu[i] end
      mean = mean / n
      for i = 1, n do ss = ss + (mu[i] - mean) ^ 2 end
      h = sqrt(ss / (n - 1)) * n ^ (-0.2)
    end
    for i = 1, n do sigma[i] = h end
  else
    local order = {}
    for i = 1, k do order[i] = i end
    sort(order, function(a, b)
      if mu[a] ~= mu[b] then return mu[a] < mu[b] end
      return a < b
    end)
    for j = 1, k do
      local i = order[j]
      if i ~= k then
        local left = j > 1 and mu[i] - mu[order[j - 1]] or 0
        local right = j < k and mu[order[j + 1]] - mu[i] or 0
        sigma[i] = max(left, right)
      end
    end
  end
  for i = 1, n do sigma[i] = min(1, max(lo_sigma, sigma[i])) end
  local logw, total = {}, n + prior_weight
  for i = 1, k do
    local w = (i == k and prior_weight or 1) / total
    logw[i] = log(w) - log(normal_mass(-mu[i] / sigma[i], (1 - mu[i]) / sigma[i]))
  end
  return {n = k, mu = mu, sigma = sigma, logw = logw, weight_total = total,
          prior_weight = prior_weight, terms = {}}
end

-- log density at u in [0, 1].
local function log_pdf(m, u)
  local terms = m.terms
  for i = 1, m.n do
    local z = (u - m.mu[i]) / m.sigma[i]
    terms[i] = m.logw[i] - log(m.sigma[i]) - LOG_SQRT_2PI - 0.5 * z * z
  end
  return logsumexp(terms, m.n)
end

-- log of the mass on [a, b] within [0, 1].
local function log_mass(m, a, b)
  local s = 0
  for i = 1, m.n do
    local mu, sd = m.mu[i], m.sigma[i]
    s = s + exp(m.logw[i]) * normal_mass((a - mu) / sd, (b - mu) / sd)
  end
  return s > 0 and log(s) or -huge
end

-- One draw from the mixture: a component by weight, then a truncated normal
-- by rejection (every mean lies in [0, 1], so a draw lands inside with
-- probability >= 0.38; the clamp after MAX_REJECTS misses is a safeguard).
local function draw(m, r)
  local pick, acc = r:uniform() * m.weight_total, 0
  local c = m.n
  for i = 1, m.n - 1 do
    acc = acc + 1
    if pick < acc then c = i; break end
  end
  local mu, sd = m.mu[c], m.sigma[c]
  for _ = 1, MAX_REJECTS do
    local x = mu + sd * r:normal()
    if x >= 0 and x <= 1 then return x end
  end
  return min(1, max(0, mu))
end

-- Choosing one dimension's value ------------------------------------------------------

local function suggest_choice(dim, good, bad, opts, r)
  local nc = #dim.choices
  local function probs(values)
    local p = {}
    for i = 1, nc do p[i] = opts.prior_weight / nc end
    for _, v in ipairs(values) do
      for i, c in ipairs(dim.choices) do
        if c == v then p[i] = p[i] + 1; break end
      end
    end
    local total = #values + opts.prior_weight
    for i = 1, nc do p[i] = p[i] / total end
    return p
  end
  local pl, pg = probs(good), probs(bad)
  local best, best_score = nil, -huge
  for _ = 1, opts.candidates do
    local u, acc, c = r:uniform(), 0, nc
    for i = 1, nc - 1 do
      acc = acc + pl[i]
      if u < acc then c = i; break end
    end
    local score = log(pl[c]) - log(pg[c])
    if score > best_score then best, best_score = c, score end
  end
  return dim.choices[best]
end

local function suggest_number(dim, good, bad, opts, r)
  local function units(values)
    local us = {}
    for i, v in ipairs(values) do us[i] = dim:to_unit(v) end
    return us
  end
  local l = mixture(units(good), opts.prior_weight, opts.bandwidth)
  local g = mixture(units(bad), opts.prior_weight, opts.bandwidth)
  local best, best_score = nil, -huge
  for _ = 1, opts.candidates do
    local u = draw(l, r)
    local score
    if dim.integer then
      local v = dim:from_unit(u)
      local a, b = dim:to_unit(v - 0.5), dim:to_unit(v + 0.5)
      score = log_mass(l, a, b) - log_mass(g, a, b)
    else
      score = log_pdf(l, u) - log_pdf(g, u)
    end
    if best == nil or score > best_score then best, best_score = u, score end
  end
  return dim:from_unit(best)
end

-- Ranking the history -----------------------------------------------------------------

local function last_step(t)
  local iv = t.intermediate
  local last = type(iv) == "table" and iv[#iv]
  return type(last) == "table" and type(last[1]) == "number" and last[1] or -huge
end

-- The ranked trials (best first) and the running ones, other than `self`.
local function rank(history, self_number)
  local ranked, running = {}, {}
  for _, t in ipairs(history) do
    local loss = t.loss
    local has_loss = type(loss) == "number" and loss == loss
    if t.number == self_number then
      -- this trial itself: nothing known yet
    elseif t.state == "complete" and has_loss then
      ranked[#ranked + 1] = {trial = t, group = 0, a = loss, b = 0}
    elseif t.state == "pruned" then
      ranked[#ranked + 1] = {trial = t, group = 1, a = -last_step(t), b = has_loss and loss or huge}
    elseif t.state == "running" then
      running[#running + 1] = t
    end
  end
  sort(ranked, function(x, y)
    if x.group ~= y.group then return x.group < y.group end
    if x.a ~= y.a then return x.a < y.a end
    if x.b ~= y.b then return x.b < y.b end
    return x.trial.number < y.trial.number
  end)
  return ranked, running
end

local function default_gamma(n) return min(ceil(0.1 * n), 25) end

local function good_count(gamma, n)
  local k = gamma(n)
  if type(k) ~= "number" or k ~= k then
    error(fmt("%s: gamma(%d) returned %s; it must return a number of trials", NAME, n,
              tostring(k)), 3)
  end
  return min(n, max(0, floor(k)))
end

-- The sampler ---------------------------------------------------------------------------

local Sampler = {}
Sampler.__index = Sampler

local KNOWN = {initial = true, candidates = true, gamma = true, prior_weight = true,
               bandwidth = true, constant_liar = true}

local function whole(v) return math_type(v) == "integer" or (type(v) == "number" and v == floor(v)
  and v > -huge and v < huge) end

function tpe.TPESampler(opts)
  opts = util.check_options(opts, NAME, KNOWN, 2)
  local function bad(msg, ...) error(fmt("%s: " .. msg, NAME, ...), 3) end
  local s = {initial = 10, candidates = 24, gamma = default_gamma, prior_weight = 1.0,
             bandwidth = "neighbours", constant_liar = false}
  for key, least in pairs{initial = 0, candidates = 1} do
    local v = opts[key]
    if v ~= nil then
      if not whole(v) or v < least then
        bad("%s must be an integer >= %d, got %s", key, least, tostring(v))
      end
      s[key] = floor(v)
    end
  end
  local gamma = opts.gamma
  if type(gamma) == "number" then
    if not (gamma > 0 and gamma <= 1) then
      bad("gamma must be a fraction in (0, 1] or a function n -> count, got %s", tostring(gamma))
    end
    s.gamma = function(n) return ceil(gamma * n) end
  elseif type(gamma) == "function" then
    s.gamma = gamma
  elseif gamma ~= nil then
    bad("gamma must be a fraction in (0, 1] or a function n -> count, got a %s", type(gamma))
  end
  local pw = opts.prior_weight
  if pw ~= nil then
    if type(pw) ~= "number" or not (pw > 0 and pw < huge) then
      bad("prior_weight must be a finite number > 0, got %s", tostring(pw))
    end
    s.prior_weight = pw
  end
  if opts.bandwidth ~= nil then
    if opts.bandwidth ~= "neighbours" and opts.bandwidth ~= "scott" then
      bad("bandwidth must be \"neighbours\" or \"scott\", got %s", tostring(opts.bandwidth))
    end
    s.bandwidth = opts.bandwidth
  end
  if opts.constant_liar ~= nil then
    if type(opts.constant_liar) ~= "boolean" then
      bad("constant_liar must be a boolean, got %s", tostring(opts.constant_liar))
    end
    s.constant_liar = opts.constant_liar
  end
  return setmetatable(s, Sampler)
end

-- sampler:suggest(space, history, ctx) --> {name -> value}, one value for
-- each name in space.names. history: the study's trials in number order;
-- ctx: {number, seed, rng}; every random draw comes from ctx.rng.
function Sampler:suggest(space, history, ctx)
  if type(ctx) ~= "table" or type(ctx.rng) ~= "table" then
    error(NAME .. ": suggest needs ctx.rng, a moongrad.tune.rng stream", 2)
  end
  local r = ctx.rng
  local ranked, running = rank(history or {}, ctx.number)
  local n = #ranked
  if n == 0 or n < self.initial then return space:sample(r) end
  local n_good = good_count(self.gamma, n)
  local good_trials, bad_trials = {}, {}
  for i, e in ipairs(ranked) do
    if i <= n_good then good_trials[#good_trials + 1] = e.trial
    else bad_trials[#bad_trials + 1] = e.trial end
  end
  if self.constant_liar then
    for _, t in ipairs(running) do bad_trials[#bad_trials + 1] = t end
  end
  local values = {}
  for _, name in ipairs(space.names) do
    local dim = space.dims[name]
    -- Observations of this dimension (a trial from before the space changed
    -- may lack it or hold a value outside it: such a trial is skipped here).
    local function observed(trials)
      local out = {}
      for _, t in ipairs(trials) do
        local v = t.values and t.values[name]
        if v ~= nil and dim:contains(v) then out[#out + 1] = v end
      end
      return out
    end
    local good, bad = observed(good_trials), observed(bad_trials)
    if dim.kind == "choice" then
      values[name] = suggest_choice(dim, good, bad, self, r)
    else
      values[name] = suggest_number(dim, good, bad, self, r)
    end
  end
  return values
end

-- Internals the spec checks against closed forms.
tpe._erfc, tpe._mixture, tpe._log_pdf, tpe._log_mass, tpe._rank = erfc, mixture, log_pdf,
  log_mass, rank

return tpe
