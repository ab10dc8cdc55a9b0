-- moongrad.tune.samplers: grid and random search, and what every sampler is.
--
-- A sampler proposes the searched values of the next trial:
--
--   sampler:suggest(space, history, ctx) --> {name -> value}
--
--   space    a moongrad.tune.space Space (space.names, space.dims)
--   history  the study's trials in number order, each {number, state =
--            "complete" | "pruned" | "failed" | "running", values, loss,
--            losses, intermediate = {{step, value}, ...}}; values are the
--            trial's parameters {name -> value}; `loss` is what is
--            minimised (the value, negated when the study maximises): a
--            number for complete trials (an infinite one counts), the last
--            report for pruned ones, nil for failed and running ones. In a
--            multi-objective study (tune.Study{directions = {...}}) `loss`
--            is nil and complete trials carry `losses`, one per objective,
--            each minimised (negated where that objective is maximised)
--   ctx      {number = the trial's number, seed = the study's seed,
--            rng = a moongrad.tune.rng stream keyed by (seed, number)}
--
-- suggest must be deterministic given its arguments, so a resumed study
-- proposes what an uninterrupted one would have. Samplers may also define
-- sampler:budget(space) --> how many distinct trials exist (grid search),
-- and these fields:
--   relative = true         it models the parameters jointly: a
--                           define-by-run study asks it for every parameter
--                           the finished trials share at once
--   multi_objective = true  it can search a multi-objective study (reads
--                           `losses`); a study with directions refuses a
--                           sampler without it
local util = require "moongrad.util"
local type, ipairs, error, fmt = type, ipairs, error, string.format

local samplers = {}

-- Random search: every value drawn independently from its dimension's prior
-- (Bergstra & Bengio 2012: as good as a grid at a fraction of the trials when
-- only a few parameters matter).
local Random = {name = "random", multi_objective = true}
Random.__index = Random

function samplers.RandomSampler(opts)
  util.check_options(opts, "tune.RandomSampler", {}, 2)
  return setmetatable({}, Random)
end

function Random:suggest(space, history, ctx)
  return space:sample(ctx.rng)
end

-- Grid search: every combination of the dimensions' values (choice and
-- integer dimensions), trial k taking the k-th combination with the last
-- name (in sorted order) varying fastest, so numbering is stable on resume.
local Grid = {name = "grid", multi_objective = true}
Grid.__index = Grid

function samplers.GridSampler(opts)
  util.check_options(opts, "tune.GridSampler", {}, 2)
  return setmetatable({}, Grid)
end

local function axes(space)
  local out, total = {}, 1
  for i, name in ipairs(space.names) do
    out[i] = space.dims[name]:grid(name)
    total = total * #out[i]
    if total > 1e7 then
      error("tune: grid search over this space would try more than 10 million combinations", 4)
    end
  end
  return out, total
end

function Grid:budget(space)
  local _, total = axes(space)
  return total
end

function Grid:suggest(space, history, ctx)
  local ax, total = axes(space)
  if ctx.number > total then
    error(fmt("tune: the grid has %d combinations; trial %d has none", total, ctx.number), 2)
  end
  local k, values = ctx.number - 1, {}
  for i = #space.names, 1, -1 do
    local a = ax[i]
    values[space.names[i]] = a[k % #a + 1]
    k = k // #a
  end
  return values
end

-- The samplers a study can name with a string.
function samplers.from_name(name)
  if name == "random" then return samplers.RandomSampler() end
  if name == "grid" then return samplers.GridSampler() end
  if name == "bayes" then return require("moongrad.tune.bayes").BayesSampler() end
  if name == "tpe" then return require("moongrad.tune.tpe").TPESampler() end
  if name == "cmaes" then return require("moongrad.tune.cmaes").CmaEsSampler() end
  if name == "nsga2" then return require("moongrad.tune.nsga2").NSGAIISampler() end
  -- level 5: from_name <- component <- study.new <- tune.Study <- the user
  error(fmt("tune.Study: unknown sampler '%s' (grid, random, bayes, tpe, cmaes, nsga2 or a " ..
            "sampler object)", tostring(name)), 5)
end

return samplers
