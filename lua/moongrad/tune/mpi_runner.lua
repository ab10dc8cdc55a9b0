-- moongrad.tune.mpi_runner: a study's trials spread over the ranks of an
-- mpirun job (study:optimize{workers = "mpi"}).
--
-- Every rank runs the same script. Rank 1 is the study, exactly as with
-- forked workers: sampler, pruner, study file, printing. Ranks 2..N run
-- trials in their own process, one after another (as workers = 0 does),
-- each trial's messages going to rank 1 with dist.send, one JSON object
-- each, with the forked workers' vocabulary (moongrad.tune.runner):
--
--   worker -> study   {"t":"ready"}                        once, at the start
--                     {"t":"report"} {"t":"prune?"} {"t":"attr"}
--                     {"t":"done"} | {"t":"error"}         the trial's outcome
--   study -> worker   {"prune":true|false}                  at once
--                     {"t":"trial","number","config","seed"} after ready/outcome
--                     {"t":"stop","best"} | {"t":"stop","error"}
--
-- Rank 1 answers prune questions at once with every trial in view. A rank
-- that gets no trial (the budget is used) waits for the stop, which comes
-- when the last trial has finished and carries rank 1's study:best(), so
-- optimize() returns the same best on every rank. A rank that dies takes
-- the mpirun job down: there is no recovery.
--
-- With ranks_per_trial = k > 1, ranks 2..N form groups of k consecutive
-- ranks (dist.split), each running one trial at a time with the group as
-- its whole job (dist.with_group), so the objective can train data-parallel
-- over the group. The group's first rank, its leader, is the only one that
-- talks to rank 1, with the messages above; it passes every message it gets
-- (trial, prune answer, stop) to the rest of its group (dist.broadcast), so
-- the group's ranks run the same trials and stop together. What the other
-- ranks report or set is dropped, and the leader's value is the trial's.
-- Messages go by world rank (dist.send and dist.recv always use those).
local mg = require "moongrad"
local json = require "moongrad.json"
local runner = require "moongrad.tune.runner"
local pcall, error, tostring = pcall, error, tostring
local fmt, min = string.format, math.min

local mpi_runner = {}

-- Ours among the tags of the job's messages.
local TAG = 4242

local dist

-- mpi_runner.start() --> this rank, the number of ranks (MPI started).
function mpi_runner.start()
  dist = dist or require "moongrad.dist"
  return dist.init()
end

-- mpi_runner.group(rank, k) --> this rank's group of k trial ranks (ranks
-- 2..k+1, k+2..2k+1, ...), nil on rank 1 and when k is 1. A collective:
-- every rank calls it.
function mpi_runner.group(rank, k)
  if k == 1 then return nil end
  return dist.split(rank > 1 and (rank - 2) // k or nil)
end

local function send(rank, msg)
  dist.send(rank, json.encode(msg), TAG)
end

-- The next message (from `from`, or from any rank), decoded, and its sender.
-- Waits by probing and sleeping a little: MPI's blocking receive spins, and
-- would take a core from the trial of a rank on the same machine.
local function receive(from)
  local idle = 0
  while true do
    local source = dist.probe()
    if source and (not from or source == from) then
      local text, _, t = dist.recv(source)
      if t ~= TAG then
        error(fmt("tune: rank %d sent a message with tag %d during the search (moongrad.tune's "
                  .. "messages use tag %d; send nothing else while optimize runs)", source, t, TAG), 0)
      end
      return text, source
    end
    mg._proc_poll({}, min(10, 1 + idle // 50))
    idle = idle + 1
  end
end

-- Ranks 2..N: ask for trials until rank 1 says stop. --> rank 1's best.
-- o.group: this rank's group (ranks_per_trial > 1), nil for a rank alone.
function mpi_runner.work(objective, o)
  local threads = mg.get_num_threads()
  if o.threads then mg.set_num_threads(o.threads) end
  local group = o.group
  local leader = not group or group.rank == 1
  local stop
  -- rank 1's next message, the same on every rank of the group
  local function answer()
    local text = leader and (receive(1)) or ""
    if group then text = dist.broadcast(text, 1) end
    local msg = json.decode(text)
    if msg.t == "stop" then
      stop = msg
      error("study:optimize: the study on rank 1 stopped", 0)
    end
    return msg
  end
  local function to_study(msg)
    if leader then send(1, msg) end
  end
  local function trials()
    to_study {t = "ready"}
    local msg = answer()
    while msg.t == "trial" do
      runner.run_remote(objective, msg, to_study, answer)
      if stop then break end
      msg = answer()
    end
  end
  local ok, err = pcall(function()
    if group then dist.with_group(group, trials) else trials() end
  end)
  mg.set_num_threads(threads)
  if stop and stop.loud then error(stop.error, 0) end -- a trial raised: the same error as rank 1
  if stop and stop.error then
    error(fmt("study:optimize: the study on rank 1 stopped with an error: %s", stop.error), 0)
  end
  if not ok and not stop then error(err, 0) end
  return stop.best
end

-- Rank 1: hand out trials and take in what they report, until every
-- trial rank (every group's leader) waits for one and none is left.
function mpi_runner.run(study, objective, o)
  local size, k = dist.size(), o.ranks_per_trial or 1
  local running = {}            -- leader's world rank -> its trial's record
  local waiting, nwaiting = {}, 0  -- leaders with no trial left to run

  local function assign(rank)
    local rec = study:_next()
    if rec then
      running[rank] = rec
      send(rank, {t = "trial", number = rec.number, config = rec.config, seed = rec.seed,
                  direction = study.direction, directions = study.directions})
    elseif not waiting[rank] then
      waiting[rank], nwaiting = true, nwaiting + 1
    end
  end

  local ok, err = pcall(function()
    while nwaiting < (size - 1) // k do
      local line, rank = receive()
      local rec = running[rank]
      if not rec then
        assign(rank)   -- its "ready"
      else
        local out = runner.handle(study, rec, line, function(msg) send(rank, msg) end)
        if out then
          running[rank] = nil
          study:_finish(rec, out)
          assign(rank)
        end
      end
    end
  end)
  -- every other rank is told, whatever happened: none may wait for ever
  -- a trial that raised stops the search on every rank, with its error
  local loud = ok and study:_loud_error()
  local stop = ok and not loud and {t = "stop", best = study:_result()}
               or {t = "stop", error = loud or tostring(err), loud = loud and true}
  for rank = 2, size, k do pcall(send, rank, stop) end
  if not ok then error(err, 0) end
end

return mpi_runner
