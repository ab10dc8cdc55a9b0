-- What the mpirun specs share: the executable, whether Open MPI is there,
-- the mpirun command line, and reading what a study over ranks wrote.
local json = require "moongrad.json"
local shell = require "support.shell"
local BUILD = require "support.build"

local mpi = {}

-- The executable by absolute path: mpirun may start ranks elsewhere.
mpi.EXE = (BUILD:sub(1, 1) == "/" and "" or os.getenv("PWD") .. "/") .. BUILD .. "/moongrad"

-- Why the mpirun specs cannot run here, or nil when they can.
function mpi.absent()
  local module = BUILD .. "/lua/moongrad/dist_mpi.so"
  local f = io.open(module, "rb")
  if not f then return module .. " was not built (no mpicc: install libopenmpi-dev)" end
  f:close()
  if select(3, shell.run("command -v mpirun")) ~= 0 then return "no mpirun (install openmpi-bin)" end
end

-- More ranks than cores is fine, as root too. Under make test-sanitize the
-- ranks unwind allocations fully, so that Open MPI's own leaks are seen
-- inside its libraries (tools/lsan.supp).
-- mpi.ENV goes before a command that starts mpirun itself.
local asan = os.getenv("ASAN_OPTIONS")
mpi.ENV = asan and "ASAN_OPTIONS=" .. shell.quote(asan .. ":fast_unwind_on_malloc=0") .. " " or ""
mpi.MPIRUN = mpi.ENV .. "mpirun --allow-run-as-root --oversubscribe"
-- The same under a time limit (a hung job fails its spec instead of CI).
function mpi.mpirun_within(seconds)
  return ("%stimeout %d mpirun --allow-run-as-root --oversubscribe"):format(mpi.ENV, seconds)
end

function mpi.lines_of(p)
  local out = {}
  for line in io.lines(p) do out[#out + 1] = line end
  return out
end

-- The trials of dir/study.jsonl by number; fails on a number recorded twice.
function mpi.recorded(dir)
  local lines, by = mpi.lines_of(dir .. "/study.jsonl"), {}
  for i = 2, #lines do
    local r = json.decode(lines[i])
    assert(not by[r.number], "trial " .. r.number .. " recorded twice")
    by[r.number] = r
  end
  return by
end

return mpi
