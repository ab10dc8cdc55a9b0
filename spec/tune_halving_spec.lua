-- moongrad.tune.halving: where the rungs sit, who is promoted and who is
-- pruned at each, on hand-built studies; then a simulated study in which
-- the best trial survives every rung and each rung holds fewer trials.
local halving = require "moongrad.tune.halving"

local SHA = halving.SuccessiveHalvingPruner

-- A trial with reports {{step, loss}, ...}.
local function trial(number, reports, state)
  return {number = number, state = state or "running", intermediate = reports}
end

-- Trials 101, 102, ... each reporting `loss` at `step` only.
local function at(step, losses, state)
  local out = {}
  for i, loss in ipairs(losses) do out[i] = trial(100 + i, {{step, loss}}, state) end
  return out
end

describe("tune.SuccessiveHalvingPruner", function()
  describe("rungs", function()
    it("sit at min_resource * eta^k with the defaults", function()
      assert.same({1, 3, 9, 27, 81}, SHA():rungs(100))
      assert.equal("integer", math.type(SHA():rung_step(4)))
    end)

    it("follow eta = 2", function()
      assert.same({1, 2, 4, 8, 16}, SHA{reduction_factor = 2}:rungs(31))
    end)

    it("start at min_resource > 1", function()
      assert.same({5, 15, 45}, SHA{min_resource = 5}:rungs(134))
      assert.same({4, 8, 16, 32}, SHA{min_resource = 4, reduction_factor = 2}:rungs(32))
    end)

    it("skip the first min_early_stopping_rate rungs", function()
      assert.same({8, 16, 32}, SHA{min_resource = 4, reduction_factor = 2,
                                   min_early_stopping_rate = 1}:rungs(63))
      assert.same({9, 27}, SHA{min_early_stopping_rate = 2}:rungs(80))
    end)
  end)

  describe("at rung 0", function()
    local p = SHA{reduction_factor = 3}

    it("promotes the first trial to reach it", function()
      assert.is_false(p:should_prune(trial(1, {{1, 99}}), {}))
    end)

    it("with fewer than eta competitors, promotes only the best so far (ties promote)",
       function()
      local others = at(1, {0.5})
      assert.is_true(p:should_prune(trial(2, {{1, 0.7}}), others))
      assert.is_false(p:should_prune(trial(2, {{1, 0.3}}), others))
      assert.is_false(p:should_prune(trial(2, {{1, 0.5}}), others))
    end)

    it("with n competitors, promotes the best floor(n / eta)", function()
      local others = at(1, {0.1, 0.2, 0.3, 0.4, 0.5})         -- n = 6 with the trial: best 2
      assert.is_false(p:should_prune(trial(9, {{1, 0.15}}), others))
      assert.is_false(p:should_prune(trial(9, {{1, 0.2}}), others))
      assert.is_true(p:should_prune(trial(9, {{1, 0.25}}), others))
      local eight = at(1, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8})   -- n = 9: best 3
      assert.is_false(p:should_prune(trial(9, {{1, 0.25}}), eight))
      assert.is_true(p:should_prune(trial(9, {{1, 0.35}}), eight))
    end)

    it("counts the rung values of complete, pruned, failed and running trials alike", function()
      local others = {trial(1, {{1, 0.1}}, "complete"), trial(2, {{1, 0.2}}, "pruned"),
                      trial(3, {{1, 0.3}}, "failed"), trial(4, {{1, 0.4}}, "running"),
                      trial(5, {}, "failed")}
      assert.is_true(p:should_prune(trial(9, {{1, 0.15}}), others))  -- n = 5: best 1
      assert.is_false(p:should_prune(trial(9, {{1, 0.05}}), others))
    end)

    it("ignores the trial's own entry among the others and NaN values", function()
      local others = at(1, {0.1, 0 / 0, 0 / 0})
      others[#others + 1] = trial(9, {{1, 0.0}})
      assert.is_true(p:should_prune(trial(9, {{1, 0.2}}), others))   -- n = 2: best 1
    end)

    it("prunes a NaN loss at a rung but not between rungs", function()
      assert.is_true(p:should_prune(trial(1, {{1, 0 / 0}}), {}))
      assert.is_false(p:should_prune(trial(1, {{1, 1}, {2, 0 / 0}}), {}))
    end)
  end)

  describe("at higher rungs (eta = 3: steps 1, 3, 9)", function()
    local p = SHA()
    -- Six trials that passed rung 0 and reached step 3 or beyond.
    local others = {
      trial(1, {{1, 0.9}, {2, 0.8}, {3, 0.10}}, "complete"),
      trial(2, {{1, 0.9}, {2, 0.8}, {3, 0.20}, {9, 0.05}}, "complete"),
      trial(3, {{1, 0.9}, {4, 0.30}}, "running"),     -- judged at rung 3 by its step-4 report
      trial(4, {{1, 0.9}, {3, 0.40}}, "pruned"),
      trial(5, {{1, 0.9}, {3, 0.50}}, "pruned"),
      trial(6, {{1, 0.0}}, "pruned"),                 -- never reached rung 3
    }

    it("judges a trial at step 3 against the values others had at step >= 3", function()
      local reports = {{1, 0.5}, {2, 0.5}}
      reports[3] = {3, 0.25}                          -- n = 6 at rung 3: best 2
      assert.is_true(p:should_prune(trial(9, reports), others))
      reports[3] = {3, 0.2}
      assert.is_false(p:should_prune(trial(9, reports), others))
    end)

    it("does not judge reports between rungs, however bad", function()
      assert.is_false(p:should_prune(trial(9, {{1, 0.5}, {2, 1e9}}), others))
      assert.is_false(p:should_prune(trial(9, {{1, 0.5}, {3, 0.1}, {4, 1e9}}), others))
    end)

    it("never demotes: a rung passed earlier is not judged again", function()
      local promoted = trial(9, {{1, 0.5}, {3, 0.1}})
      assert.is_false(p:should_prune(promoted, others))
      local later = at(3, {0.01, 0.02, 0.03, 0.04, 0.05, 0.06})
      promoted.intermediate[3] = {5, 0.1}
      assert.is_false(p:should_prune(promoted, later))
    end)

    it("judges every rung a report reaches at once, lowest first", function()
      -- one report at step 10 reaches rungs 3 and 9 with the same loss
      assert.is_true(p:should_prune(trial(9, {{1, 0.5}, {10, 0.25}}), others))   -- fails rung 3
      assert.is_false(p:should_prune(trial(9, {{1, 0.5}, {10, 0.04}}), others))
      -- rung 9 holds trial 2 alone (0.05): passing rung 3 is not enough
      assert.is_true(p:should_prune(trial(9, {{1, 0.5}, {10, 0.15}}), {others[1], others[2],
        trial(7, {{3, 0.9}}), trial(8, {{3, 0.9}}), trial(10, {{3, 0.9}})}))
    end)
  end)

  describe("with min_resource > 1 (min_resource = 4, eta = 2: steps 4, 8, 16)", function()
    local p = SHA{min_resource = 4, reduction_factor = 2}
    local others = at(4, {0.1, 0.2, 0.3})
    for _, t in ipairs(others) do t.intermediate[2] = {8, t.intermediate[1][2] / 2} end

    it("never prunes before the first rung step", function()
      for step = 1, 3 do
        assert.is_false(p:should_prune(trial(9, {{step, 1e9}}), others))
      end
    end)

    it("promotes the best half at each rung", function()
      -- n = 4 at step 4 and at step 8: best 2
      assert.is_false(p:should_prune(trial(9, {{4, 0.2}}), others))
      assert.is_true(p:should_prune(trial(9, {{4, 0.21}}), others))
      assert.is_false(p:should_prune(trial(9, {{4, 0.2}, {6, 5}, {8, 0.1}}), others))
      assert.is_true(p:should_prune(trial(9, {{4, 0.2}, {6, 5}, {8, 0.11}}), others))
    end)
  end)

  it("never prunes a trial that reports no rung step", function()
    local p = SHA{min_resource = 10, reduction_factor = 2}
    local others = at(10, {0.1, 0.2, 0.3, 0.4})
    local reports = {}
    for step = 1, 9 do
      reports[step] = {step, 100 + step}
      assert.is_false(p:should_prune(trial(9, reports), others))
    end
    assert.is_false(p:should_prune(trial(9, {}), others))
    assert.is_false(SHA{min_early_stopping_rate = 1}:should_prune(trial(9, {{1, 1e9}, {2, 1e9}}),
                                                                  at(1, {0.1, 0.2, 0.3})))
  end)

  it("in a simulated study, keeps the best trial and thins each rung", function()
    -- 81 trials arrive one after another; trial i has quality q_i (a fixed
    -- permutation of 1..81) and loss q_i + 1/step; each trains to step 27.
    local p = SHA()
    local q, done = {}, {}
    for i = 1, 81 do q[i] = (i * 37) % 81 + 1 end
    local reached = {[1] = 0, [3] = 0, [9] = 0, [27] = 0}
    local best
    for i = 1, 81 do
      if q[i] == 1 then best = i end
      local t = trial(i, {})
      for step = 1, 27 do
        t.intermediate[step] = {step, q[i] + 1 / step}
        if reached[step] then reached[step] = reached[step] + 1 end
        if p:should_prune(t, done) then t.state = "pruned"; break end
      end
      t.state = t.state == "running" and "complete" or t.state
      done[#done + 1] = t
      if i == best then assert.equal("complete", t.state) end
    end
    assert.equal(81, reached[1])
    assert.is_true(reached[3] < 81 and reached[9] < reached[3] and reached[27] < reached[9])
    assert.is_true(reached[27] >= 1)
  end)

  it("rejects unknown options and bad values", function()
    local cases = {
      {{eta = 3}, "unknown option 'eta'"},
      {{reduction_factor = 1}, "reduction_factor must be an integer >= 2, got 1"},
      {{reduction_factor = 2.5}, "reduction_factor must be an integer >= 2, got 2.5"},
      {{min_resource = 0}, "min_resource must be a number >= 1, got 0"},
      {{min_resource = 0.5}, "min_resource must be a number >= 1, got 0.5"},
      {{min_resource = "1"}, "min_resource must be a number >= 1, got 1"},
      {{min_early_stopping_rate = -1}, "min_early_stopping_rate must be an integer >= 0, got %-1"},
      {{min_early_stopping_rate = 0.5}, "min_early_stopping_rate must be an integer >= 0"},
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(function() local p = SHA(c[1]); return p end)
      assert.is_false(ok)
      assert.matches("tune.SuccessiveHalvingPruner: " .. c[2], err)
      assert.matches("tune_halving_spec", err)       -- blames the caller
    end
    assert.has_error(function() SHA("fast") end,
                     "tune.SuccessiveHalvingPruner: options must be a table, got string")
  end)
end)
