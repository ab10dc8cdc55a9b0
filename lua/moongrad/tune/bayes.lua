-- moongrad.tune.bayes: Bayesian optimization, a sampler for moongrad.tune.
--
--   local BayesSampler = require("moongrad.tune.bayes").BayesSampler
--   local sampler = BayesSampler{initial = 10}
--   sampler:suggest(space, history, ctx) --> {name -> value}
--
-- The first trials are spread over the space by a Latin hypercube; after
-- them a Gaussian process (moongrad.tune.gp) is fitted to the completed
-- trials' losses and the next trial is the point of largest expected
-- improvement over the best loss so far.
--
-- Candidates. Half of the random points come from the whole cube, half
-- from a trust region around the best trial (TuRBO: Eriksson, Pearce,
-- Gardner, Turner & Poloczek, NeurIPS 2019): a box of side L, stretched
-- per dimension by the GP's length scales over their geometric mean. L
-- starts at 0.8, doubles (up to 1.6) after 3 trials in a row that improve
-- the best loss by more than 0.1%, halves after max(4, d) trials in a row
-- that do not, and starts over at 0.8 once below 2^-7. It is replayed
-- from the complete trials in number order, so it needs no state. On
-- many-moded functions this keeps refining the best basin the GP has found
-- rather than chasing the variance of far corners (Levy-5: median regret
-- 0.77 against 1.22 over 40 seeds), and it costs nothing on smooth ones.
--
-- Options (all optional):
--   initial      trials proposed before the GP takes over (default
--                max(5, 2 * dimensions)); trial number k <= initial takes
--                row k of a Latin hypercube of `initial` rows keyed by the
--                study's seed, so every dimension's range is covered evenly
--                and a resumed study proposes the same points
--   candidates   random points of the unit cube scored by expected
--                improvement each trial (default 1000)
--   local_points perturbations scored around each of the best completed
--                trials and, in a second round, around the best candidates
--                (default 40)
--   local_scale  standard deviation of those perturbations in the unit cube
--                (default 0.1; the second round uses a quarter of it)
--   trust_region boolean, default true: draw half of the random points
--                in the trust region (false: all from the whole cube)
--   xi           exploration margin: improvement counts only beyond
--                best - xi, in standard deviations of the losses (default
--                0.01; larger explores more)
--   restarts     starting points of the GP's hyperparameter fit (default 2,
--                at most 3); each takes 8 iterations, then the best goes on
--   iterations   most L-BFGS iterations of that fit per start (default 80;
--                it usually converges in 20 to 40)
--
-- The history is read as the study records it: complete trials are the
-- observations, and so are pruned trials at their last reported loss (a
-- pessimistic stand-in for a final loss they never reached: without it the
-- GP keeps proposing the region the pruner keeps stopping); failed trials
-- are left out (a failure says nothing about the loss); running trials, proposed to other workers but not
-- finished, are "believed" to come out at the GP's mean (kriging believer),
-- which shrinks the expected improvement around them so parallel workers
-- spread out. A configuration that a trial already holds is not proposed
-- again while another candidate remains.
--
-- Points live in the unit cube through each dimension's to_unit/from_unit.
-- A choice dimension keeps its single coordinate (choice i owns slice i)
-- rather than a one-hot block: the cube keeps one coordinate per
-- parameter, so from_unit decodes every candidate and a perturbation moves
-- to a neighbouring choice, at the price of an arbitrary order of the
-- choices, which the GP's per-dimension length scale can only smooth over.
-- Candidates are snapped to the value they decode to (to_unit of
-- from_unit), so the GP scores the point a trial would really run.
local gp = require "moongrad.tune.gp"
local rng = require "moongrad.tune.rng"
local util = require "moongrad.util"

local exp, sqrt, max, min, floor, huge, pi = math.exp, math.sqrt, math.max, math.min,
  math.floor, math.huge, math.pi
local ipairs, type, tostring, error, fmt, concat = ipairs, type, tostring, error, string.format,
  table.concat
local math_type = math.type

local bayes = {}

-- relative: it models the parameters together, so a define-by-run study
-- proposes the parameters every finished trial asked for jointly
-- (study:_suggest), as Optuna's relative sampling does.
local Bayes = { name = "bayes", relative = true }
Bayes.__index = Bayes

local KNOWN = { initial = true, candidates = true, local_points = true, local_scale = true,
                xi = true, restarts = true, iterations = true, trust_region = true }
local LHS_KEY = 0x4C4853 -- "LHS": the stream of the hypercube's permutations

-- Raises unless opts[name] is nil or a number passing ok.
local function check_number(opts, name, ok, what)
  local v = opts[name]
  if v ~= nil and (type(v) ~= "number" or v ~= v or not ok(v)) then
    error(fmt("tune.BayesSampler: %s must be %s, got %s", name, what, tostring(v)), 3)
  end
end

local function is_count(v) return math_type(v) == "integer" or v == floor(v) end

-- bayes.BayesSampler(opts) --> a sampler (see the options above).
function bayes.BayesSampler(opts)
  opts = util.check_options(opts, "tune.BayesSampler", KNOWN, 2)
  local function count(v) return is_count(v) and v >= 1 and v < 2 ^ 31 end
  check_number(opts, "initial", function(v) return is_count(v) and v >= 2 and v < 2 ^ 31 end,
               "an integer >= 2")
  check_number(opts, "candidates", count, "a positive integer")
  check_number(opts, "local_points", function(v) return is_count(v) and v >= 0 and v < 2 ^ 31 end,
               "a non-negative integer")
  check_number(opts, "iterations", count, "a positive integer")
  check_number(opts, "restarts", function(v) return is_count(v) and v >= 1 and v <= 3 end,
               "1, 2 or 3")
  check_number(opts, "local_scale", function(v) return v > 0 and v <= 1 end, "in (0, 1]")
  check_number(opts, "xi", function(v) return v >= 0 and v < huge end,
               "a finite number >= 0")
  if opts.trust_region ~= nil and type(opts.trust_region) ~= "boolean" then
    error(fmt("tune.BayesSampler: trust_region must be true or false, got %s",
              tostring(opts.trust_region)), 2)
  end
  return setmetatable({
    initial = opts.initial and floor(opts.initial), candidates = floor(opts.candidates or 1000),
    local_points = floor(opts.local_points or 40), local_scale = opts.local_scale or 0.1,
    xi = opts.xi or 0.01, restarts = floor(opts.restarts or 2),
    iterations = floor(opts.iterations or 80), trust_region = opts.trust_region ~= false,
  }, Bayes)
end

-- ---- points of the unit cube --------------------------------------------------

-- The point of values in the unit cube (names in space order).
local function encode(space, values)
  local u = {}
  for j, name in ipairs(space.names) do u[j] = space.dims[name]:to_unit(values[name]) end
  return u
end

local function decode(space, u)
  local values = {}
  for j, name in ipairs(space.names) do values[name] = space.dims[name]:from_unit(u[j]) end
  return values
end

-- A configuration's identity, to tell duplicates apart: typed (choice{1,
-- "1"} has two values) and exact for floats.
local function key(space, values)
  local parts = {}
  for j, name in ipairs(space.names) do
    local v = values[name]
    parts[j] = type(v) == "number" and fmt("n%.17g", v) or type(v):sub(1, 1) .. tostring(v)
  end
  return concat(parts, "\0")
end

-- u clamped to the cube and snapped to the value it decodes to (a
-- continuous dimension's coordinate is its value already: only clamped).
local function snap(space, u)
  for j, name in ipairs(space.names) do
    local dim, v = space.dims[name], min(1, max(0, u[j]))
    if dim.integer or dim.step or dim.kind == "choice" then v = dim:to_unit(dim:from_unit(v)) end
    u[j] = v
  end
  return u
end

-- Row `number` of the Latin hypercube of n rows: in each dimension a
-- permutation (keyed by seed and dimension, so the same for every trial)
-- picks the row's slice, and r jitters within it.
local function lhs_point(space, n, number, seed, r)
  local u = {}
  for j = 1, #space.names do
    local perm, pr = {}, rng.new(seed, LHS_KEY, j, n)
    for i = 1, n do perm[i] = i end
    for i = n, 2, -1 do -- Fisher-Yates
      local k = pr:int(i)
      perm[i], perm[k] = perm[k], perm[i]
    end
    u[j] = (perm[number] - 1 + r:uniform()) / n
  end
  return u
end

-- ---- expected improvement ----------------------------------------------------------

-- The standard normal CDF via erfc (Numerical Recipes' Chebyshev fit,
-- relative error below 1.2e-7 everywhere, which TPE's kernels use too).
local erfc = require("moongrad.tune.parzen").erfc

local function norm_cdf(z) return 0.5 * erfc(-z / sqrt(2)) end
local function norm_pdf(z) return exp(-0.5 * z * z) / sqrt(2 * pi) end

-- E[max(best - xi - f, 0)] for f ~ N(mean, var).
local function expected_improvement(mean, var, best, xi)
  local sd = sqrt(var)
  local imp = best - xi - mean
  if sd < 1e-12 then return max(imp, 0) end
  local z = imp / sd
  return imp * norm_cdf(z) + sd * norm_pdf(z)
end
bayes.expected_improvement = expected_improvement

-- Scores the points by expected improvement, standardised units: a list
-- of {ei, u}.
local function score(model, points, best, xi)
  local mean, var = model:predict(points)
  local sd = model.ystd
  local scored = {}
  for i, u in ipairs(points) do
    local ei = expected_improvement(mean[i] / sd, var[i] / (sd * sd), best / sd, xi)
    scored[i] = { ei == ei and ei or -1, u } -- a NaN would break the sort
  end
  return scored
end

local function by_ei(a, b) return a[1] > b[1] end

-- The k scored points of largest expected improvement, largest first (the
-- earlier of equals first): a pass over the list rather than a sort of it,
-- which took a fifth of a suggestion's time at a few dozen trials.
local function top(scored, k)
  local out = {}
  for _, s in ipairs(scored) do
    local n = #out
    if n < k or s[1] > out[n][1] then
      local i = n < k and n + 1 or n
      out[i] = s
      while i > 1 and out[i][1] > out[i - 1][1] do
        out[i], out[i - 1] = out[i - 1], out[i]
        i = i - 1
      end
    end
  end
  return out
end

-- count perturbations of each of the centres, with standard deviation scale.
local function perturb(space, centres, count, scale, r, out)
  for _, c in ipairs(centres) do
    for _ = 1, count do
      local u = {}
      for j = 1, #c do
        -- reflected at the cube's faces: clamping would pile every
        -- overshooting perturbation onto the bound itself, where the GP's
        -- variance (and so the expected improvement) is largest
        local v = c[j] + scale * r:normal()
        if v < 0 then v = -v elseif v > 1 then v = 2 - v end
        u[j] = v
      end
      out[#out + 1] = snap(space, u)
    end
  end
  return out
end

-- ---- the trust region ------------------------------------------------------------------

-- The side of the trust region after the complete trials of `history`
-- (number order) that fit the space, the first n_init of them the initial
-- design: TuRBO's rule, replayed.
local function trust_side(space, history, n_init)
  local d = #space.names
  local side, wins, losses, best, seen = 0.8, 0, 0, huge, 0
  for _, t in ipairs(history) do
    if t.state == "complete" and t.loss and t.loss == t.loss and t.values
       and not space:mismatch(t.values) then
      seen = seen + 1
      if seen > n_init then
        if t.loss < best - 1e-3 * math.abs(best) then wins, losses = wins + 1, 0
        else wins, losses = 0, losses + 1 end
        if wins >= 3 then side, wins = min(2 * side, 1.6), 0
        elseif losses >= max(4, d) then side, losses = side / 2, 0 end
        if side < 0.5 ^ 7 then side = 0.8 end -- TuRBO's smallest side: start over
      end
      best = min(best, t.loss)
    end
  end
  return side
end

-- The trust region's box around the point centre: per dimension the side
-- times its length scale over the length scales' geometric mean.
local function trust_box(side, centre, lengthscales)
  local d, mean = #centre, 0
  for j = 1, d do mean = mean + math.log(lengthscales[j]) / d end
  mean = exp(mean)
  local lo, hi = {}, {}
  for j = 1, d do
    local half = side * lengthscales[j] / mean / 2
    lo[j], hi[j] = max(0, centre[j] - half), min(1, centre[j] + half)
  end
  return lo, hi
end

-- ---- the sampler ---------------------------------------------------------------------

function Bayes:_initial(space)
  return self.initial or max(5, 2 * #space.names)
end

-- values, or when a trial already holds them, a fresh draw from the prior
-- (up to 100 tries: a nearly used-up discrete space may have none left).
local function untaken(space, values, taken, r)
  for _ = 1, 100 do
    if not taken[key(space, values)] then return values end
    values = space:sample(r)
  end
  return values
end

-- The history as the GP sees it: the points and losses of completed
-- trials (and those as {loss, point} pairs), the points of running ones,
-- and the keys of every configuration a trial holds. A record that does not
-- fit the space (a study whose space changed) says nothing about it.
local function read_history(space, history)
  local h = { X = {}, y = {}, completed = {}, pending = {}, taken = {} }
  for _, t in ipairs(history) do
    if t.values and not space:mismatch(t.values) then
      h.taken[key(space, t.values)] = true
      if t.state == "complete" and t.loss then
        local u = encode(space, t.values)
        h.X[#h.X + 1], h.y[#h.y + 1] = u, t.loss
        h.completed[#h.completed + 1] = { t.loss, u }
      elseif t.state == "pruned" and t.loss and t.loss == t.loss and t.loss < huge then
        h.X[#h.X + 1], h.y[#h.y + 1] = encode(space, t.values), t.loss
      elseif t.state == "running" then
        h.pending[#h.pending + 1] = encode(space, t.values)
      end
    end
  end
  -- an infinite value is a trial's real value, but a GP cannot fit it: it
  -- stands in as the worst (or best) finite loss seen, or says nothing
  local lo, hi = huge, -huge
  for _, v in ipairs(h.y) do
    if v > -huge and v < huge then lo, hi = math.min(lo, v), math.max(hi, v) end
  end
  for i = #h.y, 1, -1 do
    local v = h.y[i]
    if v == huge or v == -huge then
      if lo > hi then
        table.remove(h.y, i)
        table.remove(h.X, i)
      else
        h.y[i] = v > 0 and hi or lo
      end
    end
  end
  local completed = {}
  for _, c in ipairs(h.completed) do
    if c[1] > -huge and c[1] < huge then completed[#completed + 1] = c
    elseif lo <= hi then completed[#completed + 1] = { c[1] > 0 and hi or lo, c[2] } end
  end
  h.completed = completed
  return h
end

-- Losses with the far tail pulled in: above the upper fence q3 + 3·(q3 - q1)
-- a loss keeps its rank but is squeezed logarithmically. One diverged trial
-- (a loss of 1e6 among losses near 0.3) would otherwise take the whole
-- standardised scale and flatten the GP everywhere else.
local function tame(y)
  local sorted = {}
  for i, v in ipairs(y) do sorted[i] = v end
  table.sort(sorted)
  local n = #sorted
  if n < 4 then return y end
  local q1, q3 = sorted[floor((n - 1) * 0.25) + 1], sorted[floor((n - 1) * 0.75) + 1]
  local spread = q3 - q1
  if not (spread > 0) then return y end
  local fence = q3 + 3 * spread
  local out = {}
  for i, v in ipairs(y) do
    out[i] = v > fence and fence + spread * math.log(1 + (v - fence) / spread) or v
  end
  return out
end

function Bayes:suggest(space, history, ctx)
  local r = ctx.rng
  if #space.names == 0 then return {} end
  local h = read_history(space, history)
  local X, y, pending, taken, completed = h.X, h.y, h.pending, h.taken, h.completed
  local n_init = self:_initial(space)
  if ctx.number <= n_init then
    return untaken(space, decode(space, lhs_point(space, n_init, ctx.number, ctx.seed or 0, r)),
                   taken, r)
  end
  if #X < 2 then return untaken(space, space:sample(r), taken, r) end

  local model = gp.fit(X, tame(y), { restarts = self.restarts, iterations = self.iterations })
  local best = huge   -- the incumbent: complete trials only
  for _, c in ipairs(completed) do best = min(best, c[1]) end
  if #pending > 0 then
    model = model:condition(pending, (model:predict(pending)))
  end

  -- random points (every other one in the trust region), then
  -- perturbations of the best trials
  table.sort(completed, function(a, b) return a[1] < b[1] end)
  local lo, hi
  if self.trust_region and #completed > 0 then
    lo, hi = trust_box(trust_side(space, history, n_init), completed[1][2],
                       model.params.lengthscales)
  end
  local points = {}
  for i = 1, self.candidates do
    local u, boxed = {}, lo and i % 2 == 1
    for j = 1, #space.names do
      u[j] = boxed and lo[j] + (hi[j] - lo[j]) * r:uniform() or r:uniform()
    end
    points[i] = snap(space, u)
  end
  local centres = {}
  for i = 1, min(5, #completed) do centres[i] = completed[i][2] end
  perturb(space, centres, self.local_points, self.local_scale, r, points)
  local scored = score(model, points, best, self.xi)
  -- a finer round around the best candidates
  centres = {}
  for i, s in ipairs(top(scored, 5)) do centres[i] = s[2] end
  local fine = perturb(space, centres, self.local_points, self.local_scale / 4, r, {})
  for _, s in ipairs(score(model, fine, best, self.xi)) do scored[#scored + 1] = s end

  -- the best candidate no trial holds: nearly always among the first few
  for pass = 1, 2 do
    local order = scored
    if pass == 1 then order = top(scored, 8) else table.sort(scored, by_ei) end
    for _, s in ipairs(order) do
      local values = decode(space, s[2])
      if not taken[key(space, values)] then return values end
    end
  end
  return untaken(space, space:sample(r), taken, r) -- every candidate is taken
end

bayes._tame, bayes._trust_side, bayes._trust_box = tame, trust_side, trust_box -- for specs

return bayes
