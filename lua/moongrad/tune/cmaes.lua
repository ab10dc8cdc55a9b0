-- moongrad.tune.cmaes: the covariance matrix adaptation evolution strategy
-- (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016), a sampler for
-- moongrad.tune with the semantics of Optuna's CmaEsSampler. Re-exported
-- as tune.CmaEsSampler; a study names it sampler = "cmaes".
--
--   local sampler = tune.CmaEsSampler{popsize = 8, sigma0 = 0.2}
--   sampler:suggest(space, history, ctx) --> {name -> value}
--
-- What it searches. The numeric dimensions (uniform, loguniform, int,
-- logint with more than one value) are the coordinates of the unit cube of
-- dim:to_unit, where log dimensions are logarithmic and each integer owns
-- an equal slice. CMA-ES keeps a Gaussian N(mean, sigma^2 C) there, draws
-- a population of popsize points from it, ranks them by loss and moves the
-- mean toward the best half, adapting the step size sigma and the
-- covariance C (so a rotated, badly scaled valley becomes a round one).
-- The update is that of the `cmaes` Python library 0.9.1 which Optuna 3.1
-- uses, negative weights ("active" CMA) included, and spec/tune_cmaes_spec
-- checks it against that library.
--
-- Bounds, as the cmaes library handles them: a draw outside [0, 1] in any
-- coordinate is redrawn, up to 10 * d times, and the last draw is clipped
-- onto the cube. An integer dimension's value is the integer its
-- coordinate falls on, and CMA-ES is told the point the trial really ran
-- (to_unit of its values), as Optuna tells it the trial's parameters.
-- A dimension with a single value takes it; it is not a coordinate.
--
-- Choice dimensions are not modelled (an arbitrary order of the choices
-- gives a Gaussian nothing to learn): like Optuna, which hands them to its
-- independent sampler (random by default), each is drawn from the prior,
-- from the first numbers of ctx.rng. With fewer than two numeric
-- coordinates there is no covariance to adapt (the cmaes library refuses
-- d < 2, and Optuna samples a 1-D study independently): every value then
-- comes from the prior, exactly as tune.RandomSampler draws it.
--
-- Generations, replayed. suggest keeps no state: every call rebuilds the
-- strategy from the history, so a resumed study proposes what an
-- uninterrupted one would have (about 3 ms at 200 trials in 6-D, 15 ms at
-- 1000). Trials numbered 1..initial come from the prior and are not told
-- to CMA-ES. The later
-- trials that count (below) are taken in number order and cut into
-- consecutive generations of popsize; each full generation updates mean,
-- sigma, C and the two evolution paths, and the trial being suggested is
-- drawn from the state after the last full one, with ctx.rng. What counts:
--   complete trials, ranked by loss; an infinite loss is a value and ranks
--     last (+inf) or first (-inf), a NaN after +inf, ties by trial number
--     (CMA-ES uses the ranks only, so no clamping is needed);
--   pruned trials, at the last loss they reported, when consider_pruned is
--     set (Optuna's consider_pruned_trials); otherwise they are skipped;
--   not failed or running trials, trials without a loss, the trial being
--     suggested, nor trials whose values do not fit the space (a study whose
--     space changed; space:mismatch).
-- A trial that does not count takes no place in a generation: the next
-- trial that counts fills it. Run one trial at a time, this means a failed
-- or pruned trial is replaced by another draw from the same generation, and
-- every generation is popsize points drawn from the state it updates (but
-- for a define-by-run study's first trial, drawn from the prior before the
-- study knew its parameters, which counts in the first generation). With
-- parallel workers (or trials told out of order) a trial still running
-- leaves its place to later trials; when it finishes it takes its place by
-- number and the later trials shift into the following generations, so the
-- replay then reconstructs the generations as if trials had finished in
-- number order. Every point is told to CMA-ES relative to the state it
-- updates, whichever state drew it.
--
-- Options (all optional):
--   sigma0           the initial step size in the unit cube, a number in
--                    (0, 1]; default 1/6 (Optuna: a sixth of the range)
--   popsize          points per generation, an integer >= 2; default
--                    4 + floor(3 ln d) for d numeric coordinates (Hansen's)
--   initial          trials drawn from the prior before CMA-ES starts, an
--                    integer >= 0; default 0 (Optuna's n_startup_trials is
--                    1, but its first trial is independent anyway: it has no
--                    search space yet)
--   x0               {name -> value}: the starting mean. Without it (or
--                    for a dimension it leaves out) the mean starts at the
--                    best complete initial trial when there is one, else at
--                    the centre of the cube. Names that are not numeric
--                    dimensions of the space searched are ignored (a
--                    define-by-run study's space grows)
--   consider_pruned  boolean, default false: let pruned trials count, at
--                    their last reported loss
-- There is no restart strategy (Optuna's restart_strategy = "ipop", off by
-- default): once sigma has shrunk, as it does on integers alone, the
-- sampler keeps proposing around the configuration it converged to. There
-- is no seed either: every draw comes from ctx.rng.
local util = require "moongrad.util"

local type, error, ipairs, tostring, setmetatable, pairs = type, error, ipairs, tostring,
  setmetatable, pairs
local sqrt, exp, log, abs, floor, min, max, huge = math.sqrt, math.exp, math.log, math.abs,
  math.floor, math.min, math.max, math.huge
local math_type, fmt, sort = math.type, string.format, table.sort

local NAME = "tune.CmaEsSampler"
local EPS = 1e-8            -- the cmaes library's floor for eigenvalues and norms
local SIGMA_MAX = 1e32      -- the cmaes library's cap on sigma
local MAX_CONDITION = 1e14  -- where the cmaes library stops: C is kept below it

local cmaes = {}

-- ---- a symmetric eigendecomposition ---------------------------------------------

-- eigh(A, d) --> w, V with A = V diag(w) V^T, for the symmetric d x d A
-- (rows of numbers; not modified); V[i][k] is component i of eigenvector k.
-- Cyclic Jacobi rotations: slow for large d but accurate to rounding in
-- small eigenvalues too, which sigma's path control divides by, and C is
-- rarely larger than 20 x 20 in a hyperparameter search. An off-diagonal
-- entry below 1e-16 sqrt(|a_pp a_qq|) is zeroed rather than rotated away
-- (the relative criterion of Demmel and Veselic), so the sweeps end when
-- one finds nothing left to rotate.
local function eigh(A, d)
  local a, v = {}, {}
  for i = 1, d do
    a[i], v[i] = {}, {}
    for j = 1, d do a[i][j], v[i][j] = A[i][j], i == j and 1.0 or 0.0 end
  end
  for _ = 1, 60 do
    local rotated = false
    for p = 1, d - 1 do
      for q = p + 1, d do
        local apq = a[p][q]
        if apq ~= 0 and abs(apq) <= 1e-16 * sqrt(abs(a[p][p] * a[q][q])) then
          a[p][q], a[q][p] = 0.0, 0.0
        elseif apq ~= 0 then
          rotated = true
          local theta = (a[q][q] - a[p][p]) / (2 * apq)
          local t
          if abs(theta) > 1e150 then t = 0.5 / theta
          else t = (theta >= 0 and 1 or -1) / (abs(theta) + sqrt(theta * theta + 1)) end
          local c = 1 / sqrt(t * t + 1)
          local s = t * c
          for k = 1, d do  -- A P
            local akp, akq = a[k][p], a[k][q]
            a[k][p], a[k][q] = c * akp - s * akq, s * akp + c * akq
          end
          local ap, aq = a[p], a[q]
          for k = 1, d do  -- P^T (A P)
            local apk, aqk = ap[k], aq[k]
            ap[k], aq[k] = c * apk - s * aqk, s * apk + c * aqk
          end
          for k = 1, d do
            local vkp, vkq = v[k][p], v[k][q]
            v[k][p], v[k][q] = c * vkp - s * vkq, s * vkp + c * vkq
          end
        end
      end
    end
    if not rotated then break end
  end
  local w = {}
  for i = 1, d do w[i] = a[i][i] end
  return w, v
end
cmaes._eigh = eigh

-- ---- the strategy ------------------------------------------------------------------

-- new_state(mean, sigma, popsize) --> the state of CMA-ES in d = #mean
-- coordinates, a plain table: the constants of Hansen's tutorial (eqs.
-- 48-56, as the cmaes library sets them), mean, sigma, C = I, the paths
-- pc and ps at zero and the generation count g = 0.
local function new_state(mean, sigma, popsize)
  local d, lambda = #mean, popsize
  local mu = lambda // 2
  local wp = {}
  for i = 1, lambda do wp[i] = log((lambda + 1) / 2) - log(i) end
  local function eff(from, to)
    local s, s2 = 0, 0
    for i = from, to do s, s2 = s + wp[i], s2 + wp[i] * wp[i] end
    return s * s / s2
  end
  local mu_eff, mu_eff_minus = eff(1, mu), eff(mu + 1, lambda)
  local c1 = 2 / ((d + 1.3) ^ 2 + mu_eff)
  local cmu = min(1 - c1 - 1e-8, 2 * (mu_eff - 2 + 1 / mu_eff) / ((d + 2) ^ 2 + mu_eff))
  local min_alpha = min(1 + c1 / cmu, 1 + 2 * mu_eff_minus / (mu_eff + 2),
                        (1 - c1 - cmu) / (d * cmu))
  local pos, neg = 0, 0
  for i = 1, lambda do
    if wp[i] > 0 then pos = pos + wp[i] elseif wp[i] < 0 then neg = neg - wp[i] end
  end
  local weights, wsum = {}, 0
  for i = 1, lambda do
    weights[i] = wp[i] >= 0 and wp[i] / pos or min_alpha / neg * wp[i]
    wsum = wsum + weights[i]
  end
  local cs = (mu_eff + 2) / (d + mu_eff + 5)
  local st = {
    d = d, lambda = lambda, mu = mu, mu_eff = mu_eff, weights = weights, wsum = wsum,
    c1 = c1, cmu = cmu, cs = cs, cc = (4 + mu_eff / d) / (d + 4 + 2 * mu_eff / d),
    ds = 1 + 2 * max(0, sqrt((mu_eff - 1) / (d + 1)) - 1) + cs,
    chi_n = sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d * d)),
    mean = {}, sigma = sigma, C = {}, pc = {}, ps = {}, g = 0,
  }
  for i = 1, d do
    st.mean[i], st.pc[i], st.ps[i], st.C[i] = mean[i], 0.0, 0.0, {}
    for j = 1, d do st.C[i][j] = i == j and 1.0 or 0.0 end
  end
  return st
end
cmaes._new_state = new_state

-- B and D (C = B diag(D^2) B^T) of the state's C, computed once per C. As
-- the cmaes library does, C is symmetrised and rebuilt from its
-- eigenvalues with the negative ones (rounding) raised to a floor; the
-- floor here also keeps C's condition number below MAX_CONDITION, where
-- the library would stop, so that a coordinate CMA-ES has squeezed flat
-- (an integer stuck on one value) cannot make C^(-1/2) blow up.
local function decompose(st)
  if st.B then return st.B, st.D end
  local d, C = st.d, st.C
  for i = 1, d do
    for j = i + 1, d do
      local m = (C[i][j] + C[j][i]) / 2
      C[i][j], C[j][i] = m, m
    end
  end
  local w, B = eigh(C, d)
  local top = 0
  for i = 1, d do top = max(top, w[i]) end
  local least = top / MAX_CONDITION
  local D = {}
  for i = 1, d do
    local e = w[i]
    if e <= 0 then e = EPS end
    if e < least then e = least end
    w[i], D[i] = e, sqrt(e)
  end
  for i = 1, d do
    for j = 1, d do
      local s = 0
      for k = 1, d do s = s + B[i][k] * w[k] * B[j][k] end
      C[i][j] = s
    end
  end
  st.B, st.D = B, D
  return B, D
end

-- The order in which solutions rank: by loss, a NaN after everything, ties
-- by trial number.
local function better(a, b)
  local la, lb = a.loss, b.loss
  local na, nb = la ~= la, lb ~= lb
  if na ~= nb then return nb end
  if not na and la ~= lb then return la < lb end
  return a.number < b.number
end

-- tell(st, solutions): one generation's update of the state (Hansen's eqs.
-- 39-47, in the cmaes library's order). solutions: popsize tables {x =
-- point (d numbers), loss = number, number = trial number}; reordered.
local function tell(st, solutions)
  local d, lambda, mu, weights = st.d, st.lambda, st.mu, st.weights
  st.g = st.g + 1
  sort(solutions, better)
  local B, D = decompose(st)
  st.B, st.D = nil, nil
  local mean, sigma = st.mean, st.sigma
  local y = {}
  for k = 1, lambda do
    local yk, xk = {}, solutions[k].x
    for i = 1, d do yk[i] = (xk[i] - mean[i]) / sigma end
    y[k] = yk
  end
  local yw = {}
  for i = 1, d do
    local s = 0
    for k = 1, mu do s = s + weights[k] * y[k][i] end
    yw[i] = s
    mean[i] = mean[i] + sigma * s   -- c_m = 1
  end
  -- C^(-1/2) v = B diag(1/D) B^T v
  local function inv_sqrt(v)
    local t, out = {}, {}
    for k = 1, d do
      local s = 0
      for i = 1, d do s = s + B[i][k] * v[i] end
      t[k] = s / D[k]
    end
    for i = 1, d do
      local s = 0
      for k = 1, d do s = s + B[i][k] * t[k] end
      out[i] = s
    end
    return out
  end
  local cs, cc, ps, pc = st.cs, st.cc, st.ps, st.pc
  local zw = inv_sqrt(yw)
  local ks, norm = sqrt(cs * (2 - cs) * st.mu_eff), 0
  for i = 1, d do
    ps[i] = (1 - cs) * ps[i] + ks * zw[i]
    norm = norm + ps[i] * ps[i]
  end
  norm = sqrt(norm)
  st.sigma = min(sigma * exp(cs / st.ds * (norm / st.chi_n - 1)), SIGMA_MAX)
  -- h_sigma stalls pc while ps is long (sigma just grew fast). The library
  -- counts 2 (g + 1) with g already advanced, one more than the tutorial;
  -- kept, so that Optuna's users get Optuna's strategy.
  local h = norm / sqrt(1 - (1 - cs) ^ (2 * (st.g + 1))) < (1.4 + 2 / (d + 1)) * st.chi_n
    and 1 or 0
  local kc = h * sqrt(cc * (2 - cc) * st.mu_eff)
  for i = 1, d do pc[i] = (1 - cc) * pc[i] + kc * yw[i] end
  -- negative weights are rescaled by d / |C^(-1/2) y|^2 (eq. 46), which
  -- keeps C positive definite however far the worst points lie
  local wio = {}
  for k = 1, lambda do
    if weights[k] >= 0 then wio[k] = weights[k]
    else
      local z, s = inv_sqrt(y[k]), 0
      for i = 1, d do s = s + z[i] * z[i] end
      wio[k] = weights[k] * d / (s + EPS)
    end
  end
  local c1, cmu, C = st.c1, st.cmu, st.C
  local keep = 1 + c1 * (1 - h) * cc * (2 - cc) - c1 - cmu * st.wsum
  for i = 1, d do
    for j = 1, d do
      local r = 0
      for k = 1, lambda do r = r + wio[k] * y[k][i] * y[k][j] end
      C[i][j] = keep * C[i][j] + c1 * pc[i] * pc[j] + cmu * r
    end
  end
end
cmaes._tell = tell

-- draw(st, r) --> a point of [0, 1]^d from N(mean, sigma^2 C): redrawn up
-- to 10 d times while outside the cube, then clipped onto it (the cmaes
-- library's ask, with Optuna's n_max_resampling).
local function draw(st, r)
  local d, B, D = st.d, decompose(st)
  local x
  for attempt = 0, 10 * d do
    local z = {}
    for k = 1, d do z[k] = D[k] * r:normal() end
    x = {}
    local inside = true
    for i = 1, d do
      local s = 0
      for k = 1, d do s = s + B[i][k] * z[k] end
      x[i] = st.mean[i] + st.sigma * s
      if not (x[i] >= 0 and x[i] <= 1) then inside = false end
    end
    if inside then return x end
    if attempt == 10 * d then
      for i = 1, d do x[i] = min(1, max(0, x[i])) end
    end
  end
  return x
end
cmaes._draw = draw

-- ---- replaying the history ---------------------------------------------------------

-- The coordinates CMA-ES models: the names of the numeric dimensions with
-- more than one value, in space order.
local function coordinates(space)
  local out = {}
  for _, name in ipairs(space.names) do
    local dim = space.dims[name]
    if dim.kind ~= "choice" and dim.low < dim.high then out[#out + 1] = name end
  end
  return out
end

local function encode(space, coords, values)
  local x = {}
  for i, name in ipairs(coords) do x[i] = space.dims[name]:to_unit(values[name]) end
  return x
end

local function has_loss(t) return type(t.loss) == "number" end

-- replay(sampler, space, history, number) --> the state trial `number`
-- draws from, and the trial numbers of each generation told ({{...}, ...})
-- and of the generation being filled. See the header for what counts.
local function replay(self, space, history, number)
  local coords = coordinates(space)
  local d = #coords
  local mean, best
  for _, t in ipairs(history) do
    if t.number <= self.initial and t.number ~= number and t.state == "complete"
       and has_loss(t) and t.values and not space:mismatch(t.values)
       and (best == nil or better(t, best)) then
      best = t
    end
  end
  if best then mean = encode(space, coords, best.values) end
  mean = mean or {}
  for i, name in ipairs(coords) do
    local dim, v = space.dims[name], self.x0 and self.x0[name]
    if v ~= nil then
      if not dim:contains(v) then
        error(fmt("%s: x0.%s = %s is not in %s", NAME, name, tostring(v), dim:describe()), 3)
      end
      mean[i] = dim:to_unit(v)
    end
    mean[i] = mean[i] or 0.5
  end
  local st = new_state(mean, self.sigma0, self.popsize or 4 + floor(3 * log(d)))
  local told, current = {}, {}
  for _, t in ipairs(history) do
    local counts = t.number > self.initial and t.number ~= number and has_loss(t)
      and (t.state == "complete" or (t.state == "pruned" and self.consider_pruned))
      and t.values and not space:mismatch(t.values)
    if counts then
      current[#current + 1] = {x = encode(space, coords, t.values), loss = t.loss,
                               number = t.number}
      if #current == st.lambda then
        local numbers = {}
        for i, s in ipairs(current) do numbers[i] = s.number end
        told[#told + 1] = numbers
        tell(st, current)
        current = {}
      end
    end
  end
  local filling = {}
  for i, s in ipairs(current) do filling[i] = s.number end
  return st, told, filling, coords
end
cmaes._replay = replay

-- ---- the sampler -------------------------------------------------------------------

local Sampler = {name = "cmaes", relative = true}
Sampler.__index = Sampler

local KNOWN = {sigma0 = true, popsize = true, initial = true, x0 = true, consider_pruned = true}

local function whole(v)
  return math_type(v) == "integer" or (type(v) == "number" and v == floor(v) and v < huge)
end

-- cmaes.CmaEsSampler(opts) --> a sampler (see the options above).
function cmaes.CmaEsSampler(opts)
  opts = util.check_options(opts, NAME, KNOWN, 2)
  local function bad(msg, ...) error(fmt("%s: " .. msg, NAME, ...), 3) end
  local s = {sigma0 = 1 / 6, initial = 0, consider_pruned = false}
  if opts.sigma0 ~= nil then
    local v = opts.sigma0
    if type(v) ~= "number" or not (v > 0 and v <= 1) then
      bad("sigma0 must be a number in (0, 1] (a fraction of each dimension's range), got %s",
          tostring(v))
    end
    s.sigma0 = v
  end
  if opts.popsize ~= nil then
    if not whole(opts.popsize) or opts.popsize < 2 then
      bad("popsize must be an integer >= 2, got %s", tostring(opts.popsize))
    end
    s.popsize = floor(opts.popsize)
  end
  if opts.initial ~= nil then
    if not whole(opts.initial) or opts.initial < 0 then
      bad("initial must be an integer >= 0, got %s", tostring(opts.initial))
    end
    s.initial = floor(opts.initial)
  end
  if opts.consider_pruned ~= nil then
    if type(opts.consider_pruned) ~= "boolean" then
      bad("consider_pruned must be a boolean, got %s", tostring(opts.consider_pruned))
    end
    s.consider_pruned = opts.consider_pruned
  end
  if opts.x0 ~= nil then
    if type(opts.x0) ~= "table" then
      bad("x0 must be a table of parameter name -> starting value, got %s", type(opts.x0))
    end
    s.x0 = {}
    for name, v in pairs(opts.x0) do
      if type(name) ~= "string" then
        bad("x0 must be a table of parameter name -> starting value, got key %s", tostring(name))
      end
      if type(v) ~= "number" or v ~= v or v == huge or v == -huge then
        bad("x0.%s must be a finite number, got %s", name, tostring(v))
      end
      s.x0[name] = v
    end
  end
  return setmetatable(s, Sampler)
end

-- sampler:suggest(space, history, ctx) --> {name -> value}, one value for
-- each name in space.names. history: the study's trials in number order;
-- ctx: {number, seed, rng}; every random draw comes from ctx.rng: first one
-- uniform per choice dimension (in name order), then CMA-ES's normals.
function Sampler:suggest(space, history, ctx)
  if type(ctx) ~= "table" or type(ctx.rng) ~= "table" then
    error(NAME .. ": suggest needs ctx.rng, a moongrad.tune.rng stream", 2)
  end
  local r = ctx.rng
  local coords = coordinates(space)
  if #coords < 2 or ctx.number <= self.initial then return space:sample(r) end
  local values = {}
  for _, name in ipairs(space.names) do
    local dim = space.dims[name]
    if dim.kind == "choice" then values[name] = dim:sample(r:uniform())
    elseif not (dim.low < dim.high) then values[name] = dim.low end
  end
  local st = replay(self, space, history or {}, ctx.number)
  local x = draw(st, r)
  for i, name in ipairs(coords) do values[name] = space.dims[name]:from_unit(x[i]) end
  return values
end

return cmaes
