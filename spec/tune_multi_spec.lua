-- Multi-objective studies, as Optuna's create_study(directions=[...]): the
-- objective returns a list, trials are compared by Pareto dominance,
-- best_trials is the front, and what cannot apply (best, pruning, a
-- single-objective sampler) is refused clearly. Pareto fronts and
-- hypervolumes are worked out by hand in the comments.
local tune = require "moongrad.tune"
local pareto = require "moongrad.tune.pareto"
local shell = require "support.shell"

local dir = shell.tmpdir()

-- Eight trials with chosen values (enqueued, so no sampler decides them),
-- both objectives minimised: points (f1, f2) =
--   1 (1, 9)  2 (2, 7)  3 (3, 8)  4 (4, 4)  5 (5, 5)  6 (6, 2)  7 (8, 1)  8 (7, 3)
-- Trial 3 is beaten by 2 (2 < 3, 7 < 8), 5 by 4, 8 by 6 (6 < 7, 2 < 3);
-- the front is 1, 2, 4, 6, 7.
local POINTS = {{1, 9}, {2, 7}, {3, 8}, {4, 4}, {5, 5}, {6, 2}, {8, 1}, {7, 3}}

local function fixed_study(opts)
  local study = tune.Study(opts)
  for i = 1, #POINTS do study:enqueue_trial{i = i} end
  return study
end

local function objective(_, trial)
  local i = trial:suggest_int("i", 1, #POINTS)
  return {POINTS[i][1], POINTS[i][2]}
end

local function numbers(trials)
  local out = {}
  for k, t in ipairs(trials) do out[k] = t.number end
  return out
end

describe("a study with directions", function()
  it("keeps each trial's values and gives the Pareto front as best_trials", function()
    local study = fixed_study{directions = {"minimize", "minimize"}}
    local front = study:optimize(objective, {trials = 8, verbose = false})
    assert.same({1, 2, 4, 6, 7}, numbers(front))
    assert.same({1, 2, 4, 6, 7}, numbers(study:best_trials()))
    assert.same({4.0, 4.0}, study:trials()[4].values)
    assert.is_nil(study:trials()[4].value)
    -- each trial of the front carries its config, as study:best() does
    assert.equal(6, front[4].config.i)
  end)

  it("flips the maximised objective before comparing", function()
    -- minimising f1 and maximising f2: (1, 9) has the smallest f1 and the
    -- largest f2, so it beats every other trial
    local study = fixed_study{directions = {"minimize", "maximize"}}
    study:optimize(objective, {trials = 8, verbose = false})
    assert.same({1}, numbers(study:best_trials()))
    -- maximising both, a trial is beaten by one no smaller in both: 2 (2, 7)
    -- by 3 (3, 8), 4 (4, 4) by 5 (5, 5), 6 (6, 2) by 8 (7, 3); nothing has
    -- f2 >= 9 but 1, f1 >= 8 but 7, or both at least 3 and 8, 5 and 5, 7
    -- and 3 but 3, 5 and 8 themselves
    local both = fixed_study{directions = {"maximize", "maximize"}}
    both:optimize(objective, {trials = 8, verbose = false})
    assert.same({1, 3, 5, 7, 8}, numbers(both:best_trials()))
  end)

  it("runs the same in forked workers", function()
    local study = fixed_study{directions = {"minimize", "minimize"}}
    study:optimize(objective, {trials = 8, workers = 2, verbose = false})
    assert.same({1, 2, 4, 6, 7}, numbers(study:best_trials()))
    assert.same({8.0, 1.0}, study:trials()[7].values)
  end)

  it("fails a trial that returns a wrong result, and re-raises what the objective raises", function()
    local study = tune.Study{directions = {"minimize", "minimize"}}
    local results = {{1, 2}, 3, {1, 2, 3}, {1, 0 / 0}, {1, "2"}, {math.huge, 1}}
    study:optimize(function(_, trial) return results[trial.number] end,
                   {trials = #results, verbose = false})
    local t = study:trials()
    assert.equal("complete", t[1].state)
    assert.equal("the objective returned a number; a study with 2 directions needs a list of 2 "
                 .. "numbers", t[2].error)
    assert.equal("the objective returned 3 values; the study has 2 directions", t[3].error)
    assert.equal("value 2 of the objective's result is nan", t[4].error)
    assert.equal("value 2 of the objective's result is a string, not a number", t[5].error)
    -- an infinite value counts, as in a single-objective study
    assert.equal("complete", t[6].state)
    assert.same({1, 6}, numbers(study:best_trials()))

    local loud = tune.Study{directions = {"minimize", "minimize"}}
    local ok, err = pcall(loud.optimize, loud, function(_, trial)
      trial:report(1, 0.5)
      return {1, 2}
    end, {trials = 3, verbose = false})
    assert.is_false(ok)
    assert.truthy(err:find("trial:report: a multi-objective study cannot prune", 1, true), err)
    assert.equal(1, #loud:trials())
  end)

  it("is driven by ask and tell with lists of values", function()
    local study = tune.Study{directions = {"minimize", "maximize"}}
    local a, b, c = study:ask(), study:ask(), study:ask()
    study:tell(a, {1, 1})
    study:tell(b, {2, 3})
    assert.has_error(function() study:tell(c, 4) end,
      "study:tell: told a number; a study with 2 directions needs a list of 2 numbers")
    assert.has_error(function() study:tell(c, {4}) end,
      "study:tell: told 1 values; the study has 2 directions")
    assert.has_error(function() study:tell(c, nil, "pruned") end,
      "study:tell: a multi-objective study cannot prune; tell the values, or \"failed\"")
    study:tell(c, {0, 0 / 0})
    assert.equal("failed", study:trials()[3].state)
    assert.equal("value 2 of the values told is nan", study:trials()[3].error)
    -- (1, 1) and (2, 3) with f2 maximised: neither beats the other
    assert.same({1, 2}, numbers(study:best_trials()))
  end)

  it("refuses best(), pruners, single-objective samplers and mixed direction options", function()
    local study = tune.Study{directions = {"minimize", "minimize"}}
    assert.has_error(function() study:best() end,
      "study:best: a study with several directions has no single best trial; " ..
      "study:best_trials() gives the Pareto front")
    assert.has_error(function() tune.Study{directions = {"minimize"}, direction = "minimize"} end,
      "tune.Study: give direction (one objective) or directions (several), not both")
    assert.has_error(function() tune.Study{directions = {"minimize", "up"}} end,
      "tune.Study: directions[2] must be \"minimize\" or \"maximize\", got up")
    assert.has_error(function() tune.Study{directions = {}} end,
      "tune.Study: directions must be a list such as {\"minimize\", \"maximize\"}")
    assert.has_error(function() tune.Study{directions = {"minimize", "minimize"}, sampler = "bayes"} end,
      "tune.Study: the bayes sampler searches one objective; a study with directions needs one " ..
      "that searches several (\"nsga2\", \"tpe\", \"random\", \"grid\")")
    assert.has_error(function()
      tune.Study{directions = {"minimize", "minimize"}, pruner = "median"}
    end, "tune.Study: a study with directions cannot prune (a pruner compares trials by one " ..
         "metric; Optuna refuses it too)")
  end)

  it("resumes from its file and refuses the file for other directions", function()
    local path = dir .. "/multi.jsonl"
    os.remove(path)
    local study = fixed_study{directions = {"minimize", "minimize"}, path = path}
    study:optimize(objective, {trials = 5, verbose = false})
    local again = tune.Study{directions = {"minimize", "minimize"}, path = path}
    for i = 6, #POINTS do again:enqueue_trial{i = i} end
    again:optimize(objective, {trials = 8, verbose = false})
    assert.same({1, 2, 4, 6, 7}, numbers(again:best_trials()))
    assert.has_error(function() tune.Study{directions = {"minimize", "maximize"}, path = path} end,
      "tune.Study: " .. path .. " was made to minimize, minimize, not to minimize, maximize; " ..
      "use another path for a new study")
    assert.has_error(function() tune.Study{path = path} end,
      "tune.Study: " .. path .. " was made to minimize, minimize, not to minimize; " ..
      "use another path for a new study")
  end)

  it("shows the front in the leaderboard, one column per value in the CSV, and plots it", function()
    local study = fixed_study{directions = {"minimize", "minimize"}, name = "two"}
    study:optimize(objective, {trials = 8, verbose = false})
    local board = study:leaderboard()
    assert.truthy(board:find("two study: 8 trials (8 complete, 0 pruned, 0 failed), minimize, "
                             .. "minimize; the Pareto front", 1, true), board)
    local lines = {}
    for line in board:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(7, #lines) -- the title, the header, five trials of the front
    assert.truthy(lines[2]:find("rank%s+trial%s+value 1%s+value 2%s+i%s+seconds"), lines[2])
    assert.truthy(lines[3]:find("^%s*1%s+1%s+1%s+9%s+1%s"), lines[3])
    assert.truthy(lines[7]:find("^%s*5%s+7%s+8%s+1%s+7%s"), lines[7])
    local csv = study:write_csv(dir .. "/multi.csv")
    assert.equal("number,state,value_1,value_2,seconds,i,error", csv:match("^[^\n]+"))
    assert.truthy(csv:find("\n4,complete,4.0,4.0,", 1, true), csv)
    local svg = study:plot(dir .. "/multi.svg")
    assert.truthy(svg:find("Pareto front", 1, true))
    assert.truthy(svg:find("value 1 (minimize)", 1, true))
    local one = tune.Study{directions = {"minimize"}}
    assert.has_error(function() one:plot() end,
      "study:plot: a Pareto front needs two directions; this study has one")
  end)

  it("gives samplers each trial's losses, signs flipped where maximised", function()
    local seen
    local spy = {name = "spy", multi_objective = true, suggest = function(_, space, history)
      seen = history
      return space:sample(require("moongrad.tune.rng").new(1))
    end}
    local study = tune.Study{directions = {"minimize", "maximize"}, sampler = spy,
                             space = {x = tune.uniform(0, 1)}}
    local t = study:ask()
    study:tell(t, {2, 5})
    study:ask()
    assert.same({-5.0}, {seen[1].losses[2]})
    assert.same({2.0, -5.0}, seen[1].losses)
    assert.is_nil(seen[1].loss)
  end)
end)

describe("tune.pareto", function()
  it("sorts points into fronts and measures their hypervolume", function()
    -- the fronts of POINTS: {1, 2, 4, 6, 7}, then {3, 5, 8}
    assert.same({{1, 2, 4, 6, 7}, {3, 5, 8}}, pareto.fronts(POINTS))
    -- (1, 3), (2, 2), (3, 1) up to (4, 4): strips of 3x1, 2x1 and 1x1
    assert.equal(6, pareto.hypervolume({{1, 3}, {2, 2}, {3, 1}}, {4, 4}))
    -- three boxes up to (4, 4, 4): 6 + 6 + 3, less the pairwise overlaps
    -- 4 + 1 + 1, plus the triple 1 = 10
    assert.equal(10, pareto.hypervolume({{1, 2, 3}, {2, 1, 3}, {3, 3, 1}}, {4, 4, 4}))
    -- a point beyond the reference adds nothing
    assert.equal(6, pareto.hypervolume({{1, 3}, {2, 2}, {3, 1}, {5, 0}}, {4, 4}))
  end)

  it("gives crowding distances with the extremes infinite", function()
    -- along f1 the order is 1 (1), 4 (1.5), 2 (2), 3 (3), range 2; along
    -- f2 it is 3, 2, 4, 1, range 2. Point 2: (3 - 1.5)/2 + (2.5 - 1)/2 = 1.5;
    -- point 4: (2 - 1)/2 + (3 - 2)/2 = 1.
    local d = pareto.crowding({{1, 3}, {2, 2}, {3, 1}, {1.5, 2.5}}, {1, 2, 3, 4})
    assert.same({math.huge, 1.5, math.huge, 1.0}, {d[1], d[2], d[3], d[4]})
  end)
end)
