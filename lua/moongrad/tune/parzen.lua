-- moongrad.tune.parzen: the Parzen densities of the TPE sampler
-- (moongrad.tune.tpe) on the unit cube of dim:to_unit.
--
--   parzen.mixture(points, prior_weight, bandwidth [, weights]) --> m
--       one dimension: a mixture of Gaussians truncated to [0, 1], one per
--       point plus a prior component (mean 0.5, sd 1)
--   parzen.log_pdf(m, u), parzen.log_mass(m, a, b), parzen.draw(m, r)
--   parzen.joint(dims, rows, prior_weight [, weights]) --> m
--       several dimensions: a mixture of product kernels, one per row plus
--       the prior, with a categorical kernel for a choice dimension
--   parzen.joint_log_pdf(m, x), parzen.draw_joint(m, dims, r, x)
--   parzen.value_slice(dim, v) --> the slice of [0, 1] a discrete value owns
--   parzen.erfc(x), parzen.normal_mass(za, zb)
--
-- Every kernel is normalised on [0, 1], so densities of the good and bad
-- groups compare fairly near the cube's faces; r is a moongrad.tune.rng
-- stream, the only source of randomness.
local min, max = math.min, math.max
local exp, log, sqrt, pi, huge = math.exp, math.log, math.sqrt, math.pi, math.huge
local ipairs, sort = ipairs, table.sort

local LOG_SQRT_2PI = 0.5 * log(2 * pi)
local SQRT_HALF = sqrt(0.5)
local MAX_REJECTS = 64      -- truncated-normal draws before falling back to a clamp

local parzen = {}

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

local function log_normal_mass(za, zb)
  local s = normal_mass(za, zb)
  return s > 0 and log(s) or -huge
end

local function logsumexp(xs, n)
  local m = -huge
  for i = 1, n do if xs[i] > m then m = xs[i] end end
  if m == -huge then return -huge end
  local s = 0
  for i = 1, n do s = s + exp(xs[i] - m) end
  return m + log(s)
end

-- The index of the component a uniform draw picks: components 1..k-1 weigh
-- w[i] (1 when w is nil), the last one the rest of `total`.
local function pick_component(r, total, k, w)
  local pick, acc = r:uniform() * total, 0
  for i = 1, k - 1 do
    acc = acc + (w and w[i] or 1)
    if pick < acc then return i end
  end
  return k
end

-- A Gaussian draw truncated to [0, 1], by rejection (every mean lies in
-- [0, 1], so a draw lands inside with probability >= 0.38; the clamp after
-- MAX_REJECTS misses is a safeguard).
local function truncated(mu, sd, r)
  for _ = 1, MAX_REJECTS do
    local x = mu + sd * r:normal()
    if x >= 0 and x <= 1 then return x end
  end
  return min(1, max(0, mu))
end

-- Parzen densities on [0, 1] ----------------------------------------------------------

-- A mixture of Gaussians truncated to [0, 1]: mu, sigma and log weight per
-- component (the weight includes 1 / the component's mass on [0, 1]).
-- weights: one per point, or nil for 1 each.
local function mixture(points, prior_weight, bandwidth, weights)
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
  local sum = n
  if weights then
    sum = 0
    for i = 1, n do sum = sum + weights[i] end
  end
  local logw, total = {}, sum + prior_weight
  for i = 1, k do
    local w = (i == k and prior_weight or (weights and weights[i] or 1)) / total
    logw[i] = log(w) - log(normal_mass(-mu[i] / sigma[i], (1 - mu[i]) / sigma[i]))
  end
  return {n = k, mu = mu, sigma = sigma, logw = logw, weight_total = total, w = weights,
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

-- One draw from the mixture: a component by weight, then its truncated normal.
local function draw(m, r)
  local c = pick_component(r, m.weight_total, m.n, m.w)
  return truncated(m.mu[c], m.sigma[c], r)
end

-- The slice of [0, 1] a discrete dimension's value v owns (an integer's,
-- or a stepped dimension's lattice point's), or nil for a continuous one.
local function value_slice(dim, v)
  if dim.step then
    local c, h = dim:to_unit(v), 0.5 / dim.count
    return c - h, c + h
  end
  if dim.integer then return dim:to_unit(v - 0.5), dim:to_unit(v + 0.5) end
end

-- The product-kernel mixture over the dimensions `dims` (a list) of the
-- observations `rows` (each a list of unit coordinates and choice indices
-- in the order of dims), weights as mixture's. One column per dimension
-- holds every component's kernel there; component n + 1 is the prior.
local function joint(dims, rows, prior_weight, weights)
  local n, d = #rows, #dims
  local k = n + 1
  local sd = min(1, max(1 / min(100, 1 + k), 0.2 * max(n, 1) ^ (-1 / (d + 4))))
  local total = prior_weight
  for i = 1, n do total = total + (weights and weights[i] or 1) end
  local logw = {}
  for i = 1, n do logw[i] = log((weights and weights[i] or 1) / total) end
  logw[k] = log(prior_weight / total)
  local cols = {}
  for j, dim in ipairs(dims) do
    local col = {}
    if dim.kind == "choice" then
      local nc = #dim.choices
      local smooth = prior_weight / k
      local norm = smooth * nc + 1
      col.choice, col.nc, col.at = true, nc, {}
      for i = 1, n do col.at[i] = rows[i][j] end
      col.p_hit, col.p_miss = (smooth + 1) / norm, smooth / norm
      col.log_hit, col.log_miss, col.log_prior = log(col.p_hit), log(col.p_miss), -log(nc)
    else
      -- per component: mean, sd and the log of its normalising constant on
      -- [0, 1] (for a discrete dimension the mass on [0, 1], for a float one
      -- that plus log(sd sqrt(2 pi)), which the density divides by)
      col.discrete = dim.integer or dim.step ~= nil
      col.mu, col.sigma, col.lognorm = {}, {}, {}
      for i = 1, k do
        local mu, s = 0.5, 1
        if i <= n then mu, s = rows[i][j], sd end
        col.mu[i], col.sigma[i] = mu, s
        local lz = log(normal_mass(-mu / s, (1 - mu) / s))
        col.lognorm[i] = col.discrete and lz or lz + log(s) + LOG_SQRT_2PI
      end
    end
    cols[j] = col
  end
  return {n = k, cols = cols, logw = logw, w = weights, weight_total = total, terms = {}}
end

-- log density at the point x: x[j] is dimension j's unit coordinate (a
-- choice dimension's choice index); for a discrete number dimension
-- x.lo[j] and x.hi[j] bound its value's slice.
local function joint_log_pdf(m, x)
  local terms, k = m.terms, m.n
  for i = 1, k do terms[i] = m.logw[i] end
  for j, col in ipairs(m.cols) do
    if col.choice then
      local c = x[j]
      for i = 1, k - 1 do terms[i] = terms[i] + (col.at[i] == c and col.log_hit or col.log_miss) end
      terms[k] = terms[k] + col.log_prior
    elseif col.discrete then
      local a, b = x.lo[j], x.hi[j]
      for i = 1, k do
        local mu, s = col.mu[i], col.sigma[i]
        terms[i] = terms[i] + log_normal_mass((a - mu) / s, (b - mu) / s) - col.lognorm[i]
      end
    else
      local u = x[j]
      for i = 1, k do
        local z = (u - col.mu[i]) / col.sigma[i]
        terms[i] = terms[i] - 0.5 * z * z - col.lognorm[i]
      end
    end
  end
  return logsumexp(terms, k)
end

-- One joint draw into x: a component, then each dimension from its kernel.
local function draw_joint(m, dims, r, x)
  local c = pick_component(r, m.weight_total, m.n, m.w)
  for j, col in ipairs(m.cols) do
    if col.choice then
      local nc, u, acc = col.nc, r:uniform(), 0
      local at = c < m.n and col.at[c]
      x[j] = nc
      for q = 1, nc - 1 do
        acc = acc + (not at and 1 / nc or (q == at and col.p_hit or col.p_miss))
        if u < acc then x[j] = q; break end
      end
    else
      x[j] = truncated(col.mu[c], col.sigma[c], r)
      if col.discrete then x.lo[j], x.hi[j] = value_slice(dims[j], dims[j]:from_unit(x[j])) end
    end
  end
end

parzen.erfc, parzen.normal_mass, parzen.value_slice = erfc, normal_mass, value_slice
parzen.mixture, parzen.log_pdf, parzen.log_mass, parzen.draw = mixture, log_pdf, log_mass, draw
parzen.joint, parzen.joint_log_pdf, parzen.draw_joint = joint, joint_log_pdf, draw_joint

return parzen
