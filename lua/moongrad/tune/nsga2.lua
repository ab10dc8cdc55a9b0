-- moongrad.tune.nsga2: NSGA-II, the non-dominated sorting genetic algorithm
-- (Deb, Pratap, Agarwal & Meyarivan, "A fast and elitist multiobjective
-- genetic algorithm: NSGA-II", IEEE TEVC 2002), with the defaults of
-- Optuna 3.1's NSGAIISampler. Re-exported as tune.NSGAIISampler; a study
-- names it sampler = "nsga2".
--
--   local sampler = tune.NSGAIISampler{population_size = 20}
--   sampler:suggest(space, history, ctx) --> {name -> value}
--
-- It searches multi-objective studies (complete trials carry `losses`, one
-- per objective, all minimised) and single-objective ones alike (`loss`,
-- read as one objective), proposing every parameter of a trial together.
--
-- Generations, replayed. The trials that count (below) are taken in
-- number order and cut into consecutive generations of population_size.
-- Until the first generation is full, children come from the prior
-- (space:sample). Each full generation, pooled with the parents it was
-- bred from, yields the next parents (elitism: a good trial survives until
-- better ones displace it): the pool is sorted into Pareto fronts
-- (moongrad.tune.pareto) and whole fronts are taken, best first, while
-- they fit in population_size; the front that does not fit is cut by
-- crowding distance, the most isolated points kept (ties to the earlier
-- trial). The trial being suggested is bred from the parents after the
-- last full generation among the trials numbered before it; a generation
-- still filling is not read.
--
-- What counts: complete trials whose losses are numbers, none NaN
-- (infinite ones count), as many as the first such trial has, and whose
-- values fit the space. Failed, pruned and running trials, and records
-- from before a change of space, take no place in a generation: the next
-- trial that counts fills it. Run one trial at a time, that is Optuna's
-- rule (a generation ends once population_size of its trials have
-- completed; failed ones are replaced, not parents). With parallel workers
-- a trial still running leaves its place to later ones and takes it back
-- by number when it finishes, so the replay then reads the generations as
-- if trials had finished in number order (moongrad.tune.cmaes cuts its
-- generations the same way).
--
-- So the sampler holds no state: every suggestion replays the generations
-- from the history, and a resumed study proposes what an uninterrupted
-- one would have. The replay costs O(generations * population_size^2 *
-- objectives) per suggestion: about 13 ms at 500 trials and 30 ms at 1000
-- with two objectives and the default population (one core), small next
-- to any trial worth tuning.
--
-- A child. With probability crossover_prob two parents are chosen, each by
-- a binary tournament (two parents drawn at random, the one on the better
-- front wins, then the one with the larger crowding distance, then the
-- first drawn; the second parent is drawn from the others), and crossed:
--   "uniform"  each parameter from the second parent with probability
--              swapping_prob, else from the first (Optuna's default,
--              UniformCrossover)
--   "sbx"      simulated binary crossover (Deb & Agrawal 1995) of each
--              numeric parameter in the unit cube of dim:to_unit, with
--              Optuna's bounded form so children stay in [0, 1]: half the
--              parameters take one of the two offspring values, half one
--              parent's; choice parameters cross uniformly
-- otherwise the child copies one parent drawn at random. Then each
-- parameter is mutated, resampled from its prior, with probability
-- mutation_prob. SBX crosses log, integer and stepped dimensions in their
-- unit coordinates (log-scaled, one slice per integer or step), and every
-- value is a parent's own or decodes through dim:from_unit, so children
-- are always inside the space. Every random draw comes from ctx.rng.
--
-- Optuna's tournament compares two parents by dominance alone; this one
-- uses Deb's crowded comparison (front, then crowding distance), as the
-- paper does. Optuna's constraints_func (constrained dominance) is not
-- offered.
--
-- Options (all optional):
--   population_size  integer >= 2, default 50: trials per generation.
--   mutation_prob    a number in [0, 1], default 1 / the number of
--                    parameters: the chance to resample each parameter.
--   crossover        "uniform" (default) or "sbx".
--   crossover_prob   a number in [0, 1], default 0.9: the chance a child
--                    is a crossover rather than a copy of one parent.
--   swapping_prob    a number in [0, 1], default 0.5: uniform crossover's
--                    chance of taking each parameter from the second
--                    parent (choice parameters use it under "sbx" too).
--   eta              SBX's distribution index, a finite number > 0: larger
--                    keeps children nearer their parents; default 20 for
--                    several objectives and 2 for one, as Optuna's
--                    SBXCrossover. Only with crossover = "sbx".
local pareto = require "moongrad.tune.pareto"
local util = require "moongrad.util"

local type, error, ipairs, tostring, setmetatable = type, error, ipairs, tostring, setmetatable
local floor, min, max, huge = math.floor, math.min, math.max, math.huge
local tointeger, fmt, sort, unpack = math.tointeger, string.format, table.sort, table.unpack

local NAME = "tune.NSGAIISampler"

local nsga2 = {}

-- Reading the history ------------------------------------------------------------------

-- The losses of a complete trial as a list, or nil when it has none usable.
local function losses_of(t)
  local ls = t.losses
  if type(ls) ~= "table" then
    if type(t.loss) ~= "number" then return nil end
    ls = {t.loss}
  end
  if #ls == 0 then return nil end
  for k = 1, #ls do
    local v = ls[k]
    if type(v) ~= "number" or v ~= v then return nil end
  end
  return ls
end

local function fits(space, values)
  if type(values) ~= "table" then return false end
  for _, name in ipairs(space.names) do
    local v = values[name]
    if v == nil or not space.dims[name]:contains(v) then return false end
  end
  return true
end

-- The trials that count among those numbered before `number`, in number
-- order, each as {trial, losses}, and the number of objectives (nil when
-- none counts).
local function counted(space, history, number)
  local list, m = {}, nil
  for _, t in ipairs(history) do
    local n = type(t.number) == "number" and tointeger(t.number)
    if t.state == "complete" and n and n < number then
      local ls = losses_of(t)
      if ls and (m == nil or #ls == m) and fits(space, t.values) then
        m = m or #ls
        list[#list + 1] = {trial = t, losses = ls}
      end
    end
  end
  sort(list, function(a, b) return a.trial.number < b.trial.number end)
  return list, m
end

-- Elitist selection ---------------------------------------------------------------------

-- pareto.crowding divides each loss's gaps by its range over the front, so
-- an infinite loss would turn distances into inf/inf. Each infinity stands
-- in for a value one range beyond the front's finite ones (past the
-- largest for +inf, the smallest for -inf): the order along that loss is
-- kept, and so are the extremes' infinite distances.
local function finite_points(points, front)
  local out = {}
  for _, i in ipairs(front) do out[i] = points[i] end
  for k = 1, #points[front[1]] do
    local lo, hi, any_inf = huge, -huge, false
    for _, i in ipairs(front) do
      local v = points[i][k]
      if v == huge or v == -huge then any_inf = true
      else lo, hi = min(lo, v), max(hi, v) end
    end
    if any_inf then
      if lo > hi then lo, hi = 0, 0 end
      local span = hi - lo > 0 and hi - lo or 1
      for _, i in ipairs(front) do
        local v = points[i][k]
        if v == huge or v == -huge then
          if out[i] == points[i] then out[i] = {unpack(points[i])} end
          out[i][k] = v == huge and hi + span or lo - span
        end
      end
    end
  end
  return out
end

-- Chooses up to population_size of pool (a list of {trial, losses}) by
-- front and crowding distance; each chosen entry gets rank (its front, 1
-- the best) and crowding (its distance within that front, in this pool).
-- --> the chosen entries, in number order.
local function select(pool, population_size)
  local points = {}
  for i, e in ipairs(pool) do points[i] = e.losses end
  local chosen = {}
  for rank, front in ipairs(pareto.fronts(points)) do
    if #chosen >= population_size then break end
    local dist = pareto.crowding(finite_points(points, front), front)
    local order = {unpack(front)}
    if #chosen + #order > population_size then
      sort(order, function(a, b)
        if dist[a] ~= dist[b] then return dist[a] > dist[b] end
        return pool[a].trial.number < pool[b].trial.number
      end)
    end
    for p = 1, min(#order, population_size - #chosen) do
      local i = order[p]
      chosen[#chosen + 1] = {trial = pool[i].trial, losses = pool[i].losses, rank = rank,
                             crowding = dist[i]}
    end
  end
  sort(chosen, function(a, b) return a.trial.number < b.trial.number end)
  return chosen
end

-- The parents trial `number` is bred from, replayed from the history: a
-- list of {trial, losses, rank, crowding} in number order, empty until a
-- generation is full; and the number of objectives.
local function parents(space, history, population_size, number)
  local list, m = counted(space, history, number)
  local chosen = {}
  for g = 1, #list // population_size do
    local pool = {}
    for i = (g - 1) * population_size + 1, g * population_size do pool[#pool + 1] = list[i] end
    for _, e in ipairs(chosen) do pool[#pool + 1] = e end
    chosen = select(pool, population_size)
  end
  return chosen, m
end

-- Making a child ------------------------------------------------------------------------

-- Deb's crowded comparison: the better front, then the more isolated point.
local function beats(a, b)
  if a.rank ~= b.rank then return a.rank < b.rank end
  return a.crowding > b.crowding
end

-- A binary tournament among pop, leaving out `taken` unless it is the only
-- member.
local function tournament(pop, r, taken)
  local pool = pop
  if taken and #pop > 1 then
    pool = {}
    for _, e in ipairs(pop) do if e ~= taken then pool[#pool + 1] = e end end
  end
  local a, b = pool[r:int(#pool)], pool[r:int(#pool)]
  if beats(b, a) then return b end
  return a
end

-- A parent's value of dim, as the child carries it: integers as Lua
-- integers, whatever the record kept.
local function own(dim, v)
  if dim.integer then return tointeger(v) or floor(v) end
  return v
end

-- Simulated binary crossover of unit coordinates x1, x2 in [0, 1] as Optuna
-- 3.1's SBXCrossover: the spread factor's distribution is scaled (alpha)
-- so that both offspring lie inside the bounds; then one of the two
-- offspring or one of the two parents, each with probability 1/4.
-- --> an offspring's coordinate, or nil and 1 or 2 for a parent (whose own
-- value the child then keeps exactly, not its round trip through the cube).
local function sbx(x1, x2, eta, r)
  local lo, hi = min(x1, x2), max(x1, x2)
  local diff = max(hi - lo, 1e-10)
  local e = 1 / (eta + 1)
  local u = r:uniform()
  local function beta_q(beta)
    local ua = u * (2 - beta ^ -(eta + 1))
    if ua <= 1 then return ua ^ e end
    return (1 / (2 - ua)) ^ e
  end
  if r:uniform() < 0.5 then
    if r:uniform() < 0.5 then
      return 0.5 * ((lo + hi) - beta_q(1 + 2 * lo / diff) * diff)
    end
    return 0.5 * ((lo + hi) + beta_q(1 + 2 * (1 - hi) / diff) * diff)
  end
  if r:uniform() < 0.5 then return nil, 1 end
  return nil, 2
end

-- The sampler ---------------------------------------------------------------------------

local Sampler = {name = "nsga2", multi_objective = true, relative = true}
Sampler.__index = Sampler

local KNOWN = {population_size = true, mutation_prob = true, crossover = true,
               crossover_prob = true, swapping_prob = true, eta = true}

local function probability(v)
  return type(v) == "number" and v >= 0 and v <= 1
end

-- nsga2.NSGAIISampler(opts) --> a sampler (see the options above).
function nsga2.NSGAIISampler(opts)
  opts = util.check_options(opts, NAME, KNOWN, 2)
  local function bad(msg, ...) error(fmt("%s: " .. msg, NAME, ...), 3) end
  local s = {population_size = 50, mutation_prob = nil, crossover = "uniform",
             crossover_prob = 0.9, swapping_prob = 0.5, eta = nil}
  local ps = opts.population_size
  if ps ~= nil then
    if type(ps) ~= "number" or ps ~= floor(ps) or ps < 2 or ps >= 2 ^ 31 then
      bad("population_size must be an integer >= 2, got %s", tostring(ps))
    end
    s.population_size = floor(ps)
  end
  if opts.mutation_prob ~= nil then
    if not probability(opts.mutation_prob) then
      bad("mutation_prob must be nil or a number in [0, 1], got %s", tostring(opts.mutation_prob))
    end
    s.mutation_prob = opts.mutation_prob
  end
  for _, key in ipairs{"crossover_prob", "swapping_prob"} do
    if opts[key] ~= nil then
      if not probability(opts[key]) then
        bad("%s must be a number in [0, 1], got %s", key, tostring(opts[key]))
      end
      s[key] = opts[key]
    end
  end
  if opts.crossover ~= nil then
    if opts.crossover ~= "uniform" and opts.crossover ~= "sbx" then
      bad("crossover must be \"uniform\" or \"sbx\", got %s", tostring(opts.crossover))
    end
    s.crossover = opts.crossover
  end
  if opts.eta ~= nil then
    local eta = opts.eta
    if type(eta) ~= "number" or not (eta > 0 and eta < huge) then
      bad("eta must be a finite number > 0, got %s", tostring(eta))
    end
    if s.crossover ~= "sbx" then
      bad("eta is simulated binary crossover's; give crossover = \"sbx\" with it")
    end
    s.eta = eta
  end
  return setmetatable(s, Sampler)
end

-- sampler:suggest(space, history, ctx) --> {name -> value}, one value for
-- each name in space.names. history: the study's trials in number order;
-- ctx: {number, seed, rng}; only trials numbered before ctx.number are
-- read, and every random draw comes from ctx.rng.
function Sampler:suggest(space, history, ctx)
  local number = type(ctx) == "table" and type(ctx.number) == "number" and tointeger(ctx.number)
  if not number or number < 1 or type(ctx.rng) ~= "table" then
    error(NAME .. ": suggest needs ctx.number (the trial's number, from 1) and ctx.rng, " ..
          "a moongrad.tune.rng stream", 2)
  end
  local r, names = ctx.rng, space.names
  if #names == 0 then return {} end
  local pop, m = parents(space, history or {}, self.population_size, number)
  if #pop == 0 then return space:sample(r) end

  local child = {}
  if r:uniform() < self.crossover_prob then
    local p1 = tournament(pop, r)
    local p2 = tournament(pop, r, p1)
    local a, b = p1.trial.values, p2.trial.values
    local eta = self.eta or (m > 1 and 20 or 2)
    for _, name in ipairs(names) do
      local dim = space.dims[name]
      local u, parent
      if self.crossover == "sbx" and dim.kind ~= "choice" then
        u, parent = sbx(dim:to_unit(a[name]), dim:to_unit(b[name]), eta, r)
      else
        parent = r:uniform() < self.swapping_prob and 2 or 1
      end
      -- the parent's table is picked, not its value: a choice may be false
      if u then child[name] = dim:from_unit(u)
      else child[name] = own(dim, (parent == 2 and b or a)[name]) end
    end
  else
    local p = pop[r:int(#pop)].trial.values
    for _, name in ipairs(names) do child[name] = own(space.dims[name], p[name]) end
  end

  local mutation_prob = self.mutation_prob or 1 / #names
  for _, name in ipairs(names) do
    if r:uniform() < mutation_prob then child[name] = space.dims[name]:sample(r:uniform()) end
  end
  return child
end

-- Internals the spec checks by hand and against Optuna: the parents of a trial.
nsga2._parents = parents

return nsga2
