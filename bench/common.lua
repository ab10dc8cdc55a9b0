-- Shared by the bench/*.lua workloads: the thread setting, steady-state
-- timing, and the lines each workload prints for bench/run.lua to read.
--
-- Every workload is run as `build/moongrad bench/<name>.lua <mode> <threads>`
-- and prints `threads <n>` (the count it really runs with, which run.lua
-- checks), then `result <value>` (plus `rss_mib <value>` where the
-- process's peak memory matters). Its PyTorch twin bench/<name>.py prints
-- the same lines.
--
-- Timing is steady state: untimed warm-up calls first (first-touch
-- allocations, caches, lazily built plans), then several timed repetitions
-- in the process, of which the median is the result. With
-- MOONGRAD_BENCH_QUICK set (and not "0") every count shrinks to one,
-- so that the specs can run each workload in a moment; such figures mean
-- nothing.
local mg = require "moongrad"

local common = {}

local quick = os.getenv("MOONGRAD_BENCH_QUICK")
common.QUICK = quick ~= nil and quick ~= "" and quick ~= "0"

-- Reads `<mode> <threads>` from the command line, pins the threads,
-- prints the count in force and seeds the generator (0, as the twin does).
function common.args(arg, modes)
  local mode, threads = arg[1], math.tointeger(tonumber(arg[2] or "1"))
  if not modes[mode] or not threads or threads < 1 then
    local known = {}
    for k in pairs(modes) do known[#known + 1] = k end
    table.sort(known)
    error(("usage: %s <%s> <threads>"):format(arg[0], table.concat(known, "|")), 0)
  end
  mg.set_num_threads(threads)
  print(("threads %d"):format(mg.get_num_threads()))
  mg.manual_seed(0)
  return mode, threads
end

-- The counts to time with: as given, or one of each in the quick form.
function common.counts(warmup, reps, inner)
  if common.QUICK then return 1, 1, 1 end
  return warmup, reps, inner
end

-- Median of a list of numbers.
function common.median(xs)
  local s = { table.unpack(xs) }
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- Median seconds per iteration of loop(n), which runs its body n times
-- (so that no extra function call per iteration is timed), over `reps`
-- timed calls of loop(inner) after loop(warmup) (default: inner).
function common.time_loop(loop, inner, reps, warmup)
  warmup, reps, inner = common.counts(warmup or inner, reps, inner)
  loop(warmup)
  local clock, per = mg.clock, {}
  for r = 1, reps do
    local t0 = clock()
    loop(inner)
    per[r] = (clock() - t0) / inner
  end
  return common.median(per)
end

-- Median seconds per call of f over `reps` timed batches of `inner` calls,
-- after `warmup` untimed calls (default: inner).
function common.time_per_call(f, inner, reps, warmup)
  return common.time_loop(function(n) for _ = 1, n do f() end end, inner, reps, warmup)
end

-- A function returning the loader's next batch each call, starting a new
-- (reshuffled) epoch when one ends, so that warm-up and timed steps can
-- run on from each other. The first epoch starts at the first call.
function common.batches(loader)
  local next_batch
  return function()
    local x, y
    if next_batch then x, y = next_batch() end
    if x == nil then
      next_batch = loader:iter()
      x, y = next_batch()
    end
    return x, y
  end
end

-- One training step: gradients dropped (zero_grad's default sets them to
-- nil, as PyTorch's set_to_none=True), forward, loss, backward, update.
function common.step(model, opt, loss_fn, x, y)
  opt:zero_grad()
  loss_fn(model(x), y):backward()
  opt:step()
end

-- Peak resident memory of this process so far, in MiB (VmHWM).
function common.peak_rss_mib()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) / 1024
end

function common.result(value, rss)
  print(("result %.6g"):format(value))
  if rss then print(("rss_mib %.1f"):format(common.peak_rss_mib())) end
end

return common
