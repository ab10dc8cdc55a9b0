-- Standard test functions for samplers, and a loop standing in for a study
-- (tune_bayes_spec, tune_tpe_spec and bench/tune_samplers.lua share them).
local rng = require "moongrad.tune.rng"
local cos, exp, pi = math.cos, math.exp, math.pi

local M = {}

-- Branin-Hoo on [-5, 10] x [0, 15]: three global minima of 0.397887.
function M.branin(v)
  local x1, x2 = v.x1, v.x2
  return (x2 - 5.1 / (4 * pi * pi) * x1 * x1 + 5 / pi * x1 - 6) ^ 2
    + 10 * (1 - 1 / (8 * pi)) * cos(x1) + 10
end

-- Hartmann-6 on [0, 1]^6: minimum -3.32237.
local H_A = { { 10, 3, 17, 3.5, 1.7, 8 }, { 0.05, 10, 17, 0.1, 8, 14 }, { 3, 3.5, 1.7, 10, 17, 8 },
              { 17, 8, 0.05, 10, 0.1, 14 } }
local H_P = { { 1312, 1696, 5569, 124, 8283, 5886 }, { 2329, 4135, 8307, 3736, 1004, 9991 },
              { 2348, 1451, 3522, 2883, 3047, 6650 }, { 4047, 8828, 8732, 5743, 1091, 381 } }
local H_ALPHA = { 1.0, 1.2, 3.0, 3.2 }
function M.hartmann6(v)
  local s = 0
  for i = 1, 4 do
    local inner = 0
    for j = 1, 6 do inner = inner + H_A[i][j] * (v["x" .. j] - H_P[i][j] * 1e-4) ^ 2 end
    s = s - H_ALPHA[i] * exp(-inner)
  end
  return s
end

-- Levy on [-10, 10]^d (v.x1 .. v.xd): minimum 0 at (1, ..., 1), many
-- local minima around it.
function M.levy(v, d)
  local w = {}
  for j = 1, d do w[j] = 1 + (v["x" .. j] - 1) / 4 end
  local s = math.sin(pi * w[1]) ^ 2
  for j = 1, d - 1 do s = s + (w[j] - 1) ^ 2 * (1 + 10 * math.sin(pi * w[j] + 1) ^ 2) end
  return s + (w[d] - 1) ^ 2 * (1 + math.sin(2 * pi * w[d]) ^ 2)
end

-- Runs `budget` trials of f over sp as a study with this seed would (trial
-- k gets the context the study gives it, every trial completes) and
-- returns the best loss and the history; sampler nil means random sampling
-- from the same streams (what tune's RandomSampler does).
function M.drive(sp, f, budget, seed, sampler)
  local history, best = {}, math.huge
  for n = 1, budget do
    local ctx = { number = n, seed = seed, rng = rng.new(seed, n) }
    local v = sampler and sampler:suggest(sp, history, ctx) or sp:sample(ctx.rng)
    local loss = f(v)
    history[n] = { number = n, state = "complete", values = v, loss = loss, intermediate = {} }
    best = math.min(best, loss)
  end
  return best, history
end

return M
