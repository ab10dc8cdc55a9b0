-- Shared by the bench/*.lua workloads: the thread setting, timing, and the
-- one line each workload prints for bench/run.lua to read.
--
-- Every workload is run as `build/moongrad bench/<name>.lua <mode> <threads>`
-- and ends by printing `result <value>` (plus `rss_mib <value>` where the
-- process's peak memory matters). Its PyTorch peer bench/<name>.py prints
-- the same lines.
local mg = require "moongrad"

local common = {}

-- Reads `<mode> <threads>` from the command line and pins the threads.
function common.args(arg, modes)
  local mode, threads = arg[1], tonumber(arg[2] or "1")
  if not modes[mode] then
    local known = {}
    for k in pairs(modes) do known[#known + 1] = k end
    table.sort(known)
    error(("usage: %s <%s> <threads>"):format(arg[0], table.concat(known, "|")), 0)
  end
  mg.set_num_threads(math.floor(threads))
  return mode, threads
end

-- Median of a list of numbers.
function common.median(xs)
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- Median seconds per call of f over `reps` timed batches of `inner` calls,
-- after `warmup` untimed calls.
function common.time_per_call(f, inner, reps, warmup)
  for _ = 1, warmup or inner do f() end
  local clock, per = mg.clock, {}
  for r = 1, reps do
    local t0 = clock()
    for _ = 1, inner do f() end
    per[r] = (clock() - t0) / inner
  end
  return common.median(per)
end

-- Median seconds per iteration of loop(n), which runs its body n times
-- (so that no extra function call per iteration is timed), over `reps`
-- timed calls of loop(inner) after one untimed one.
function common.time_loop(loop, inner, reps)
  loop(inner)
  local clock, per = mg.clock, {}
  for r = 1, reps do
    local t0 = clock()
    loop(inner)
    per[r] = (clock() - t0) / inner
  end
  return common.median(per)
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
