-- moongrad.tune with workers = "mpi": rank 1 runs the study, ranks 2..N its
-- trials, under mpirun on this machine. Skipped, with the reason printed,
-- only where Open MPI is absent (tools/deps.sh installs it for make test).
local shell = require "support.shell"

local mpi = require "support.mpi"

local EXE, MPIRUN = mpi.EXE, mpi.MPIRUN
local absent = mpi.absent()
if absent then print("\ntune_mpi_spec: skipping the mpirun specs: " .. absent) end

-- The script every rank runs: a study of `trials` trials in study.jsonl,
-- each trial noting its number in ran.log and its rank with trial:set.
-- Trial 3 raises; trial 7 reports far worse than the others and should be
-- pruned (the median pruner judges it against the trials finished before).
local JOB = [[
local mg = require "moongrad"
local tune = require "moongrad.tune"
local dist = require "moongrad.dist"
local dir, trials = arg[1], tonumber(arg[2])
local rank = dist.init()
local study = tune.Study{space = {x = tune.uniform(0, 1), epochs = 3}, path = dir .. "/study.jsonl",
                         seed = 5, pruner = tune.MedianPruner{startup_trials = 2}}
local opened = #study:trials()
local best = study:optimize(function(c, trial)
  local log = assert(io.open(dir .. "/ran.log", "a"))
  log:write(trial.number, "\n")
  log:close()
  trial:set("rank", dist.rank())
  trial:set("threads", mg.get_num_threads())
  mg._proc_poll({}, 100)   -- long enough for both worker ranks to get trials
  if trial.number == 3 then error("trial 3 fails") end
  for step = 1, c.epochs do
    trial:report(step, trial.number == 7 and 100 or 1)
    if trial:should_prune() then return 100 end
  end
  return c.x
end, {trials = trials, workers = "mpi", threads = 1, verbose = rank == 1, catch = arg[3] ~= "loud"})
print(("rank %d best %s opened %d"):format(rank, best and best.number or "nil", opened))
]]

local tmpdir = shell.tmpdir

local function run(np, dir, trials, mode)
  return shell.run(("%s -np %d %s %s %s %d %s"):format(MPIRUN, np, EXE, shell.quote(dir .. "/job.lua"),
                                                      shell.quote(dir), trials, mode or ""))
end

local lines_of, recorded = mpi.lines_of, mpi.recorded

local function ran(dir)
  local out = {}
  for line in io.lines(dir .. "/ran.log") do out[#out + 1] = tonumber(line) end
  table.sort(out)
  return out
end

describe("study:optimize{workers = \"mpi\"}", function()
  if absent then pending("Open MPI is absent: " .. absent) return end
  local dir
  before_each(function()
    dir = tmpdir()
    shell.write_file(dir .. "/job.lua", JOB)
  end)
  after_each(function() os.execute("rm -rf " .. shell.quote(dir)) end)

  it("runs every trial once on the worker ranks, records failures and prunes over MPI", function()
    local out, err, rc = run(3, dir, 8)
    assert.equal(0, rc, err .. out)
    assert.are.same({1, 2, 3, 4, 5, 6, 7, 8}, ran(dir))
    local by, ranks = recorded(dir), {}
    for n = 1, 8 do
      local r = assert(by[n], "trial " .. n .. " is not in the study file")
      ranks[r.attrs.rank] = true
      assert.equal(1, r.attrs.threads)   -- threads = 1 on the worker ranks
    end
    assert.are.same({[2] = true, [3] = true}, ranks)
    assert.equal("failed", by[3].state)
    assert.matches("trial 3 fails", by[3].error)
    assert.equal("pruned", by[7].state)
    assert.are.same({{1, 100.0}}, by[7].intermediate)
    for _, n in ipairs{1, 2, 4, 5, 6, 8} do assert.equal("complete", by[n].state) end
    -- rank 1 printed the trials; every rank's optimize returned rank 1's best
    assert.matches("trial 7/8 pruned at step 1", out)
    local best = out:match("rank 1 best (%d+)")
    assert.is_string(best)
    assert.matches("rank 2 best " .. best .. " ", out)
    assert.matches("rank 3 best " .. best .. " ", out)
  end)

  it("stops every rank with the trial's error when it is not told to catch", function()
    local out, err, rc = run(3, dir, 8, "loud")
    assert.are_not.equal(0, rc)
    local text = out .. err
    local _, n = text:gsub("study:optimize: trial 3 %(x=[%d.e-]+%) raised an error: [^\n]*trial 3 fails", "")
    assert.is_true(n >= 3, text) -- rank 1 and both trial ranks raise it
    assert.equal("failed", recorded(dir)[3].state)
  end)

  it("resumes its study file on rank 1, running only the missing trials", function()
    local _, err, rc = run(3, dir, 5)
    assert.equal(0, rc, err)
    -- as if killed while trials 4 and 5 ran: their lines gone, half a line left
    local keep = {}
    for i, line in ipairs(lines_of(dir .. "/study.jsonl")) do
      if i == 1 or tonumber(line:match('"number":(%d+)')) <= 3 then keep[#keep + 1] = line end
    end
    shell.write_file(dir .. "/study.jsonl", table.concat(keep, "\n") .. '\n{"attrs":{},"inter')
    os.remove(dir .. "/ran.log")
    local out, err2, rc2 = run(3, dir, 8)
    assert.equal(0, rc2, err2 .. out)
    assert.are.same({4, 5, 6, 7, 8}, ran(dir))
    local by = recorded(dir)
    for n = 1, 8 do assert.is_table(by[n], "trial " .. n .. " is not in the study file") end
    -- every rank opened the 3 trials; only rank 1 wrote, so the file is whole
    for r = 1, 3 do assert.matches("rank " .. r .. " best %d+ opened 3", out) end
    for _, line in ipairs(lines_of(dir .. "/study.jsonl")) do assert.matches("}$", line) end
  end)

  it("raises a clear error on a single rank", function()
    local out, err, rc = run(1, dir, 4)
    assert.are_not.equal(0, rc)
    assert.matches('study:optimize: workers = "mpi" needs at least 2 ranks %(rank 1 runs the ' ..
                   'study%): launch with mpirun %-np N', err .. out)
    local fh = io.open(dir .. "/ran.log")
    assert.is_nil(fh)
  end)
end)

describe("dist.send, dist.probe and dist.recv", function()
  if absent then pending("Open MPI is absent: " .. absent) return end

  it("carry strings of any bytes and size between two ranks and name their bad arguments", function()
    local dir = tmpdir()
    shell.write_file(dir .. "/job.lua", [[
      local dist = require "moongrad.dist"
      local rank = dist.init()
      local big = string.rep("x\0y", 100000)   -- past any eager limit
      if rank == 2 then
        dist.send(1, "hello\0there", 5)
        dist.send(1, big)
        print("2 echo", (dist.recv(1)))
      else
        local source, tag
        repeat source, tag = dist.probe() until source
        print("1 probe", source, tag)
        print("1 recv", dist.recv(2))
        local s, from, t = dist.recv()
        print("1 big", s == big, from, t)
        dist.send(2, "back")
        print("1 none", dist.probe())
        for _, f in ipairs{function() dist.send(3, "x") end, function() dist.send(2, 1) end,
                           function() dist.send(2, "x", -1) end, function() dist.recv(0) end} do
          print("1 error", select(2, pcall(f)))
        end
      end
    ]])
    local out, err, rc = shell.run(("%s -np 2 %s %s"):format(MPIRUN, EXE, shell.quote(dir .. "/job.lua")))
    os.execute("rm -rf " .. shell.quote(dir))
    assert.equal(0, rc, err)
    assert.matches("1 probe\t2\t5\n", out)
    assert.matches("1 recv\thello\0there\t2\t5\n", out)
    assert.matches("1 big\ttrue\t2\t0\n", out)
    assert.matches("2 echo\tback\n", out)
    assert.matches("1 none\tnil\n", out)
    assert.matches("dist.send: dest must be a rank in 1..2, got 3", out)
    assert.matches("dist.send: the message must be a string, got number", out)
    assert.matches("dist.send: the tag must be in 0..%d+, got %-1", out)
    assert.matches("dist.recv: source must be a rank in 1..2 or nil, got 0", out)
  end)
end)
