-- moongrad.tune with workers = "mpi" and ranks_per_trial = 2: rank 1 runs
-- the study, ranks 2..5 two trials at a time, each on a group of 2 ranks
-- that trains data-parallel. Skipped, with the reason printed, only where
-- Open MPI is absent (tools/deps.sh installs it for make test).
local shell = require "support.shell"

local mpi = require "support.mpi"

local EXE = mpi.EXE
local absent = mpi.absent()
if absent then print("\ntune_mpi_groups_spec: skipping the mpirun specs: " .. absent) end

-- Every rank runs this. Each trial sums the world ranks over its group,
-- trains a linear regression with fit{distributed = true} (batch 4 on each
-- rank) and, in the same process, alone with the group's global batch of
-- 8, and notes in ran.log, on every rank of the group: the trial, the
-- world rank, dist.rank() and dist.size() inside the trial, the sum and
-- the largest difference between the two models' weights. Trial 3 raises;
-- trial 7 reports far worse than the others and should be pruned.
local JOB = [[
local mg = require "moongrad"
local nn, optim, data, train = require "moongrad.nn", require "moongrad.optim",
  require "moongrad.data", require "moongrad.train"
local tune = require "moongrad.tune"
local dist = require "moongrad.dist"
local dir, trials, k = arg[1], tonumber(arg[2]), tonumber(arg[3])
local world = dist.init()

local function note(line)
  local f = assert(io.open(dir .. "/ran.log", "a"))
  f:write(line, "\n")
  f:close()
end

local function regress(lr, distributed)
  mg.manual_seed(11)
  local x = mg.randn(24, 3)
  local y = x:matmul(mg.tensor({{1}, {-2}, {0.5}}))
  local model = nn.Linear(3, 1)
  local loader = data.DataLoader(data.TensorDataset(x, y),
                                 {batch_size = distributed and 4 or 8, shuffle = true})
  train.fit(model, {train = loader, optimizer = optim.SGD(model, {lr = lr}), epochs = 2,
                    loss = nn.MSELoss(), progress = false, distributed = distributed})
  return model.weight
end

local study = tune.Study{space = {lr = tune.uniform(0.05, 0.2)}, path = dir .. "/study.jsonl",
                         seed = 5, pruner = tune.MedianPruner{startup_trials = 2}}
local best = study:optimize(function(c, trial)
  local sum = dist.allreduce(world, "sum")
  local diff = (regress(c.lr, true) - regress(c.lr, false)):abs():max():item()
  note(("%d %d %d %d %g %g"):format(trial.number, world, dist.rank(), dist.size(), sum, diff))
  trial:set("world", world)
  trial:set("sum", sum)
  mg._proc_poll({}, 100)   -- long enough for both groups to get trials
  if trial.number == 3 then error("trial 3 fails") end
  for step = 1, 3 do
    trial:report(step, trial.number == 7 and 100 or 1)
    if trial:should_prune() then
      note(("pruned %d %d %d"):format(trial.number, world, step))
      return 100
    end
  end
  return c.lr
end, {trials = trials, workers = "mpi", ranks_per_trial = k, threads = 1, verbose = world == 1,
       catch = true})
print(("rank %d best %s size %d"):format(world, best and best.number or "nil", dist.size()))
]]

local function run(np, dir, trials, k)
  return shell.run(("%s -np %d %s %s %s %d %d"):format(mpi.mpirun_within(120), np, EXE,
    shell.quote(dir .. "/job.lua"), shell.quote(dir), trials, k))
end

local lines_of, recorded = mpi.lines_of, mpi.recorded

describe("study:optimize{workers = \"mpi\", ranks_per_trial = 2}", function()
  if absent then pending("Open MPI is absent: " .. absent) return end
  local dir
  before_each(function()
    dir = shell.tmpdir()
    shell.write_file(dir .. "/job.lua", JOB)
  end)
  after_each(function() os.execute("rm -rf " .. shell.quote(dir)) end)

  it("runs each trial once on a group of 2 ranks that trains data-parallel and stops together",
     function()
    local out, err, rc = run(5, dir, 8, 2)
    assert.equal(0, rc, err .. out)
    -- every trial ran on both ranks of one group: (2, 3) or (4, 5)
    local ran, pruned = {}, {}
    for _, line in ipairs(lines_of(dir .. "/ran.log")) do
      local n, w, r, s, sum, diff = line:match("^(%d+) (%d+) (%d+) (%d+) (%S+) (%S+)$")
      if n then
        n, w, r = tonumber(n), tonumber(w), tonumber(r)
        ran[n] = ran[n] or {}
        ran[n][w] = true
        assert.equal(2, tonumber(s))          -- dist.size() inside the trial
        assert.equal((w - 2) % 2 + 1, r)      -- dist.rank() within the group
        local leader = w - (w - 2) % 2
        assert.equal(2 * leader + 1, tonumber(sum))  -- the group's two ranks alone
        assert.is_true(tonumber(diff) < 1e-5, "trial " .. n .. ": weights differ by " .. diff)
      else
        local pn, pw, step = line:match("^pruned (%d+) (%d+) (%d+)$")
        assert.is_string(pn, line)
        pruned[#pruned + 1] = {tonumber(pn), tonumber(pw), tonumber(step)}
      end
    end
    local leaders = {}
    for n = 1, 8 do
      local ws = assert(ran[n], "trial " .. n .. " did not run")
      assert.is_true(ws[2] and ws[3] and not ws[4] and not ws[5] or
                     ws[4] and ws[5] and not ws[2] and not ws[3] or false,
                     "trial " .. n .. " ran on more or fewer ranks than one group")
    end
    -- the study file has every trial once, with its leader's attrs
    local by = recorded(dir)
    for n = 1, 8 do
      local r = assert(by[n], "trial " .. n .. " is not in the study file")
      leaders[r.attrs.world] = true
      assert.equal(2 * r.attrs.world + 1, r.attrs.sum)
    end
    assert.are.same({[2] = true, [4] = true}, leaders)
    assert.equal("failed", by[3].state)
    assert.matches("trial 3 fails", by[3].error)
    assert.equal("pruned", by[7].state)
    assert.are.same({{1, 100.0}}, by[7].intermediate)
    for _, n in ipairs{1, 2, 4, 5, 6, 8} do assert.equal("complete", by[n].state) end
    -- both ranks of trial 7's group stopped at step 1, and no one else
    table.sort(pruned, function(a, b) return a[2] < b[2] end)
    local lead = by[7].attrs.world
    assert.are.same({{7, lead, 1}, {7, lead + 1, 1}}, pruned)
    -- every rank's optimize returned rank 1's best, back in the world
    local best = out:match("rank 1 best (%d+) size 5")
    assert.is_string(best)
    for w = 2, 5 do assert.matches("rank " .. w .. " best " .. best .. " size 5", out) end
  end)

  it("raises a clear error when the trial ranks do not split into groups", function()
    local out, err, rc = run(4, dir, 4, 2)
    assert.are_not.equal(0, rc)
    assert.matches("study:optimize: ranks_per_trial = 2 does not divide the 3 trial ranks of " ..
                   "mpirun %-np 4 %(rank 1 runs the study, ranks 2..4 the trials in groups of " ..
                   "2%); launch with %-np N where N %- 1 is a multiple of 2, e.g. %-np 5", err .. out)
    assert.is_nil(io.open(dir .. "/ran.log"))
  end)
end)
