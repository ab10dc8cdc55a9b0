-- What the mpirun specs share: the executable, whether Open MPI is there,
-- and the mpirun command line.
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

return mpi
