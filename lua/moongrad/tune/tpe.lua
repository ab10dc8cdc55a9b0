-- moongrad.tune.tpe: the tree-structured Parzen estimator (Bergstra, Bardenet,
-- Bengio & Kegl, "Algorithms for Hyper-Parameter Optimization", NeurIPS
-- 2011), with Optuna's defaults. Re-exported as tune.TPESampler.
--
--   local sampler = tune.TPESampler{initial = 10, candidates = 24}
--   local joint = tune.TPESampler{multivariate = true}
--   sampler:suggest(space, history, ctx) --> {name -> value}
--
-- How it suggests. The first trials come from the prior (space:sample).
-- After that the finished trials are ranked and split into the gamma(n)
-- best ("good") and the rest ("bad"); per dimension, in the unit space of
-- dim:to_unit (log dimensions are already logarithmic there), each group
-- becomes a Parzen density (moongrad.tune.parzen): a mixture of Gaussians
-- truncated to [0, 1], one at each observation plus a wide prior component
-- (mean 0.5, sd 1), or for a choice dimension the observed counts smoothed
-- by the prior. The sampler
-- draws `candidates` values from the good density l(x) and keeps the one
-- with the largest log l(x) - log g(x), the expected-improvement criterion
-- of the paper. Dimensions are modelled and chosen independently (Optuna's
-- default, multivariate = false); since the densities are products over
-- dimensions, choosing each dimension's best candidate maximises the joint
-- ratio over the candidates drawn. Discrete dimensions (integers, and
-- floats or integers with a step) score a candidate by the mass each
-- density puts on its value's slice of [0, 1] rather than the density at
-- one point, so that neither density is favoured by where inside the slice
-- the candidate fell.
--
-- Multivariate (multivariate = true; Falkner, Klein & Hutter 2018, as
-- Optuna's TPESampler(multivariate=True)). Independent densities cannot see
-- that two parameters are good only together (a learning rate and a batch
-- size, a narrow diagonal valley); here each group's density is a mixture
-- of product kernels over all d dimensions, one joint component per
-- observation plus the prior component. A candidate is drawn jointly (a
-- component by weight, then every dimension from that component's kernel)
-- and scored by the joint log l(x) - log g(x). A number dimension's kernel
-- is the truncated Gaussian at the observation with the sd
-- 0.2 * n^(-1/(d + 4)) of the unit range (Scott's rule as BOHB and Optuna
-- use it, n the group's observations, at least 1), clipped to
-- [1 / min(100, n + 2), 1] as above; the per-point widths of the
-- independent mode do not carry over, since one observation's neighbours
-- differ from one dimension to the next. A discrete dimension again
-- scores by its slice's mass. A choice dimension's kernel at an observed
-- choice c gives each choice p / (n + 1), plus 1 for c, normalised (p the
-- prior weight; Optuna's categorical kernel), so that a component still
-- scores, less, at the other choices. The sampler sets relative = true: a
-- define-by-run study hands it every parameter the finished trials share
-- at once. A trial lacking one of the dimensions (it predates a change of
-- space) is left out of both densities.
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
-- Several objectives (MOTPE: Ozaki, Tanigaki, Watanabe & Onishi 2020, as
-- Optuna 3.1's TPESampler does it). When the complete trials carry
-- `losses` (a list, each minimised) instead of `loss`, the study is
-- multi-objective (the sampler has multi_objective = true) and the split
-- is by Pareto rank: whole non-dominated fronts join the good group while
-- they fit in gamma(n); the front that does not fit gives the remaining
-- places by greedy hypervolume subset selection (each time the point that
-- adds the most hypervolume to those taken, the earlier trial on a tie),
-- with Optuna's reference point: 10% beyond the worst of each loss over
-- that front (0.9 of it for a negative worst, 1e-12 for a zero one). Good
-- observations are weighted by their hypervolume contribution within the
-- good group (same reference rule), over the largest contribution, so the
-- kernels at well-spread points of the front count most; the prior keeps
-- its prior_weight. Pruned trials are ignored (a multi-objective study
-- cannot prune), as are failed ones and trials whose losses hold a NaN;
-- constant_liar still counts running trials as bad (Optuna 3.1 ignores
-- them there; a running trial's place on the front is unknown, which is
-- what the bad group is for). An infinite loss ranks as such; to measure
-- hypervolumes it is clipped to the finite range of the points compared.
-- The good and bad groups hold their trials in number order.
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
-- Every observation weighs 1 against the prior's prior_weight (Optuna's
-- default_weights ramps down the oldest observations beyond 25; this
-- sampler does not), except the good ones of a multi-objective study.
-- Every kernel is a normalised truncated normal; Optuna 3.1's density
-- leaves out a kernel's 1/sd (optuna/optuna#5109, fixed in later
-- releases), which tilts its scores towards wide kernels.
--
-- Options (all optional):
--   initial       integer >= 0, default 10: the number of finished trials
--                 (complete or pruned; complete with several objectives)
--                 below which suggestions come from the prior (Optuna's
--                 n_startup_trials).
--   candidates    integer >= 1, default 24: draws from l(x) per dimension,
--                 or of whole points when multivariate (n_ei_candidates).
--   gamma         how many of the n ranked trials are good: a function
--                 n -> count (its result is floored and clipped to 0..n), or
--                 a number in (0, 1], the fraction ceil(gamma * n). Default
--                 min(ceil(0.1 * n), 25), Optuna's default_gamma.
--   prior_weight  number > 0, default 1: the prior component's weight,
--                 against weight 1 for each observation.
--   bandwidth     "neighbours" (default) or "scott", as above; for
--                 independent dimensions only (an error with multivariate).
--   multivariate  boolean, default false: model the dimensions jointly.
--   constant_liar boolean, default false: count running trials as bad.
-- There is no seed: every draw comes from ctx.rng, so a suggestion is a
-- function of (history, ctx) alone.
local util = require "moongrad.util"
local pareto = require "moongrad.tune.pareto"
local parzen = require "moongrad.tune.parzen"

local type, error, ipairs, pairs, tostring, setmetatable = type, error, ipairs, pairs, tostring,
  setmetatable
local floor, ceil, min, max = math.floor, math.ceil, math.min, math.max
local log, huge = math.log, math.huge
local math_type, fmt, sort = math.type, string.format, table.sort
local hypervolume, fronts = pareto.hypervolume, pareto.fronts

local mixture, log_pdf, log_mass, draw = parzen.mixture, parzen.log_pdf, parzen.log_mass,
  parzen.draw
local joint, joint_log_pdf, draw_joint = parzen.joint, parzen.joint_log_pdf, parzen.draw_joint
local value_slice = parzen.value_slice

local NAME = "tune.TPESampler"
local EPS = 1e-12           -- Optuna's floor of a hypervolume contribution

local tpe = {}

-- Choosing one dimension's value ------------------------------------------------------

-- good, bad: the groups' values of this dimension; gw: the good ones'
-- weights (nil: 1 each).
local function suggest_choice(dim, good, bad, gw, opts, r)
  local nc = #dim.choices
  local function probs(values, weights)
    local p = {}
    for i = 1, nc do p[i] = opts.prior_weight / nc end
    local sum = #values
    if weights then sum = 0 end
    for j, v in ipairs(values) do
      local w = weights and weights[j] or 1
      if weights then sum = sum + w end
      for i, c in ipairs(dim.choices) do
        if c == v then p[i] = p[i] + w; break end
      end
    end
    local total = sum + opts.prior_weight
    for i = 1, nc do p[i] = p[i] / total end
    return p
  end
  local pl, pg = probs(good, gw), probs(bad)
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

local function suggest_number(dim, good, bad, gw, opts, r)
  local function units(values)
    local us = {}
    for i, v in ipairs(values) do us[i] = dim:to_unit(v) end
    return us
  end
  local l = mixture(units(good), opts.prior_weight, opts.bandwidth, gw)
  local g = mixture(units(bad), opts.prior_weight, opts.bandwidth)
  local best, best_score = nil, -huge
  for _ = 1, opts.candidates do
    local u = draw(l, r)
    local score
    local a, b = value_slice(dim, dim:from_unit(u))
    if a then
      score = log_mass(l, a, b) - log_mass(g, a, b)
    else
      score = log_pdf(l, u) - log_pdf(g, u)
    end
    if best == nil or score > best_score then best, best_score = u, score end
  end
  return dim:from_unit(best)
end

-- Choosing all dimensions jointly -----------------------------------------------------

local function choice_index(dim, v)
  for i, c in ipairs(dim.choices) do if c == v then return i end end
end

-- The rows (and weights) of the trials holding a value of every dimension.
local function joint_rows(names, dims, trials, weights)
  local rows, ws = {}, weights and {}
  for t_i, t in ipairs(trials) do
    local v, row = t.values, {}
    local ok = type(v) == "table"
    for j = 1, ok and #names or 0 do
      local x, dim = v[names[j]], dims[j]
      if x == nil or not dim:contains(x) then ok = false; break end
      row[j] = dim.kind == "choice" and choice_index(dim, x) or dim:to_unit(x)
    end
    if ok then
      rows[#rows + 1] = row
      if ws then ws[#ws + 1] = weights[t_i] end
    end
  end
  return rows, ws
end

local function suggest_joint(space, good, bad, gw, opts, r)
  local names, dims = space.names, {}
  for j, name in ipairs(names) do dims[j] = space.dims[name] end
  local rows, ws = joint_rows(names, dims, good, gw)
  local l = joint(dims, rows, opts.prior_weight, ws)
  local g = joint(dims, (joint_rows(names, dims, bad)), opts.prior_weight)
  local best, best_score = nil, -huge
  for _ = 1, opts.candidates do
    local x = {lo = {}, hi = {}}
    draw_joint(l, dims, r, x)
    local score = joint_log_pdf(l, x) - joint_log_pdf(g, x)
    if best == nil or score > best_score then best, best_score = x, score end
  end
  local values = {}
  for j, dim in ipairs(dims) do
    values[names[j]] = dim.kind == "choice" and dim.choices[best[j]] or dim:from_unit(best[j])
  end
  return values
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

local function good_count(gamma, n, level)
  local k = gamma(n)
  if type(k) ~= "number" or k ~= k then
    error(fmt("%s: gamma(%d) returned %s; it must return a number of trials", NAME, n,
              tostring(k)), level + 1)
  end
  return min(n, max(0, floor(k)))
end

-- Several objectives ------------------------------------------------------------------

-- The good and bad trials (number order) of `done`, complete trials with
-- their losses in number order, n_good of them good.
local function split_multi(done, n_good)
  local points, is_good, count = {}, {}, 0
  for i, t in ipairs(done) do points[i] = t.losses end
  for _, front in ipairs(fronts(points)) do
    if count >= n_good then break end
    if count + #front <= n_good then
      for _, i in ipairs(front) do is_good[i] = true end
      count = count + #front
    else
      local sub = {}
      for q, i in ipairs(front) do sub[q] = points[i] end
      local clipped, ref = pareto.reference(sub)
      for _, q in ipairs(pareto.hssp(clipped, ref, n_good - count)) do is_good[front[q]] = true end
      break
    end
  end
  local good, bad = {}, {}
  for i, t in ipairs(done) do
    if is_good[i] then good[#good + 1] = t else bad[#bad + 1] = t end
  end
  return good, bad
end

-- MOTPE's weights of the good trials: each one's hypervolume contribution
-- (what the group loses without it, plus EPS) over the largest.
local function hv_weights(good)
  local n = #good
  if n <= 1 then return n == 1 and {1.0} or {} end
  local points = {}
  for i, t in ipairs(good) do points[i] = t.losses end
  local clipped, ref = pareto.reference(points)
  local all, c, top = hypervolume(clipped, ref), {}, 0
  for i = 1, n do
    local others = {}
    for q = 1, n do if q ~= i then others[#others + 1] = clipped[q] end end
    c[i] = all - hypervolume(others, ref) + EPS
    top = max(top, c[i])
  end
  for i = 1, n do c[i] = min(1, max(0, c[i] / top)) end
  return c
end

local function valid_losses(ls)
  if type(ls) ~= "table" or #ls == 0 then return false end
  for _, v in ipairs(ls) do
    if type(v) ~= "number" or v ~= v then return false end
  end
  return true
end

-- The good and bad trials of a history and the good ones' weights (nil: 1
-- each), or nil while fewer than `initial` trials have finished. level:
-- where gamma's and the history's errors point.
local function split(s, history, self_number, level)
  local multi = false
  for _, t in ipairs(history) do
    if t.state == "complete" and type(t.losses) == "table" and t.number ~= self_number then
      multi = true
      break
    end
  end
  local good, bad, weights, running = {}, {}, nil, nil
  if not multi then
    local ranked
    ranked, running = rank(history, self_number)
    local n = #ranked
    if n == 0 or n < s.initial then return nil end
    local n_good = good_count(s.gamma, n, level + 1)
    for i, e in ipairs(ranked) do
      if i <= n_good then good[#good + 1] = e.trial
      else bad[#bad + 1] = e.trial end
    end
  else
    local done, first = {}, nil
    running = {}
    for _, t in ipairs(history) do
      if t.number == self_number then
        -- this trial itself: nothing known yet
      elseif t.state == "complete" and valid_losses(t.losses) then
        first = first or t
        if #t.losses ~= #first.losses then
          error(fmt("%s: trial %s has %d losses and trial %s has %d; a multi-objective " ..
                    "history needs one per objective in every trial", NAME,
                    tostring(first.number), #first.losses, tostring(t.number), #t.losses),
                level + 1)
        end
        done[#done + 1] = t
      elseif t.state == "running" then
        running[#running + 1] = t
      end
    end
    local n = #done
    if n == 0 or n < s.initial then return nil end
    good, bad = split_multi(done, good_count(s.gamma, n, level + 1))
    weights = hv_weights(good)
  end
  if s.constant_liar then
    for _, t in ipairs(running) do bad[#bad + 1] = t end
  end
  return good, bad, weights
end

-- The sampler ---------------------------------------------------------------------------

local Sampler = {multi_objective = true}
Sampler.__index = Sampler

local KNOWN = {initial = true, candidates = true, gamma = true, prior_weight = true,
               bandwidth = true, multivariate = true, constant_liar = true}

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
  for _, key in ipairs{"multivariate", "constant_liar"} do
    if opts[key] ~= nil then
      if type(opts[key]) ~= "boolean" then
        bad("%s must be a boolean, got %s", key, tostring(opts[key]))
      end
      s[key] = opts[key]
    end
  end
  if s.multivariate then
    if opts.bandwidth ~= nil then
      bad("bandwidth is for independent dimensions; with multivariate = true every kernel " ..
          "is 0.2 n^(-1/(d+4)) of its range wide")
    end
    s.relative = true
  else
    s.multivariate = nil     -- relative stays nil: the sampler is asked per parameter
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
  local good_trials, bad_trials, weights = split(self, history or {}, ctx.number, 2)
  if not good_trials then return space:sample(r) end
  if self.multivariate then
    return suggest_joint(space, good_trials, bad_trials, weights, self, r)
  end
  local values = {}
  for _, name in ipairs(space.names) do
    local dim = space.dims[name]
    -- Observations of this dimension (a trial from before the space changed
    -- may lack it or hold a value outside it: such a trial is skipped here).
    local function observed(trials, ws)
      local out, kept = {}, ws and {}
      for i, t in ipairs(trials) do
        local v = t.values and t.values[name]
        if v ~= nil and dim:contains(v) then
          out[#out + 1] = v
          if kept then kept[#kept + 1] = ws[i] end
        end
      end
      return out, kept
    end
    local good, gw = observed(good_trials, weights)
    local bad = observed(bad_trials)
    if dim.kind == "choice" then
      values[name] = suggest_choice(dim, good, bad, gw, self, r)
    else
      values[name] = suggest_number(dim, good, bad, gw, self, r)
    end
  end
  return values
end

-- Internals the specs check against closed forms and Optuna.
tpe._erfc, tpe._mixture, tpe._log_pdf, tpe._log_mass, tpe._rank = parzen.erfc, mixture,
  log_pdf, log_mass, rank
tpe._hv_weights = hv_weights

-- The good and bad trials a sampler would model for this history (nil
-- while it still samples the prior), and the good ones' weights.
function tpe._split(sampler, history, number)
  local good, bad, weights = split(sampler, history, number, 2)
  return good, bad, weights
end

-- The joint density a multivariate sampler builds from the values
-- (name -> value) of trials over space, as a function values -> log density
-- in the unit space of dim:to_unit.
function tpe._joint_density(space, trials_values, prior_weight, weights)
  local names, dims = space.names, {}
  for j, name in ipairs(names) do dims[j] = space.dims[name] end
  local trials = {}
  for i, v in ipairs(trials_values) do trials[i] = {values = v} end
  local rows, ws = joint_rows(names, dims, trials, weights)
  local m = joint(dims, rows, prior_weight or 1.0, ws)
  return function(values)
    local x = {lo = {}, hi = {}}
    for j, dim in ipairs(dims) do
      local v = values[names[j]]
      if dim.kind == "choice" then x[j] = choice_index(dim, v)
      else
        x[j] = dim:to_unit(v)
        x.lo[j], x.hi[j] = value_slice(dim, v)
      end
    end
    return joint_log_pdf(m, x)
  end
end

return tpe
