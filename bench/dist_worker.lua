-- One rank of bench/dist_scaling.lua: trains the Fashion-MNIST MLP or CNN
-- data-parallel for a fixed number of steps and reports, from rank 1, what
-- the step cost and where the time went. Launched by the driver as
--
--   mpirun -np <ranks> build/moongrad bench/dist_worker.lua
--       --model mlp|cnn --threads <per rank> --steps 300 --warmup 20
--
-- and prints one line (rank 1 only):
--
--   run model=mlp ranks=2 threads=1 batch=128 steps=300 samples_per_s=...
--       step_ms=... compute_ms=... comm_ms=... mpi_ms=... allreduce_ms=...
--       params=... buckets=...
--
-- Weak scaling: every rank takes `batch` samples of each global batch, so
-- N ranks train on N * batch samples per step. With one rank there is no
-- DistributedDataParallel at all: that run is plain single-process training,
-- the figure the ranks are compared with.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local dist = require "moongrad.dist"
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local common = require "common"

local opts = require("moongrad.util").parse_flags(arg, { model = "mlp", threads = 1, steps = 300,
                                                         warmup = 20, ["bucket-mb"] = 25 })
local rank, size = dist.init()
-- dist.init() splits the cores between the ranks on this machine; the
-- driver says how many each rank gets instead, so that one rank can have
-- the whole machine (2 threads) or a single core (1 thread).
mg.set_num_threads(math.floor(opts.threads))
mg.manual_seed(rank) -- the models' initial weights are rank 1's anyway (DDP broadcasts them)

-- ---- models: bench/mlp.lua's MLP and scripts/fashion_mnist_cnn.lua's CNN ------------
local MODELS = {
  mlp = {
    batch = 128,
    flat = true,
    build = function()
      return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                           nn.Linear(256, 10))
    end,
  },
  cnn = {
    batch = 128, -- scripts/fashion_mnist_cnn.lua's default --batch-size
    build = function()
      return nn.Sequential(
        nn.Conv2d(1, 32, 3, { padding = 1 }), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, { padding = 1 }), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(256, 10))
    end,
  },
}
local spec = MODELS[opts.model]
if not spec then error("dist_worker: --model must be mlp or cnn, got " .. tostring(opts.model), 0) end

-- ---- data: the real training set, standardised (no augmentation: the CNN
-- script's random crops and flips are per-batch work that is not what is
-- being measured here) ------------------------------------------------------------
local x, y = data.fashion_mnist { split = "train" }
local mean, std = x:mean():item(), x:std():item()
x:add_(-mean):mul_(1 / std) -- in place: a second 188 MB copy per rank buys nothing
if spec.flat then x = x:view(-1, 784) end
local loader = dist.shard(data.DataLoader(data.TensorDataset(x, y),
                                          { batch_size = spec.batch, shuffle = true, drop_last = true }))

-- An endless stream of this rank's batches: a new shuffled epoch when one ends.
local next_batch = common.batches(loader)

local model = spec.build()
local opt = optim.Adam(model, { lr = 1e-3 })
local bucket_mb = opts["bucket-mb"]
local ddp = size > 1 and dist.DistributedDataParallel(model, { bucket_mb = bucket_mb }) or nil

-- Parameters, and the allreduce messages one sync sends: allreduce_buckets
-- (runtime/mpi/dist.c) packs whole gradients greedily into buckets of
-- bucket_mb MiB and sends a gradient larger than a bucket alone, in
-- bucket-sized slices. (The few flags sync_gradients appends ride in the
-- last bucket and are left out here.)
local params, buckets = 0, 0
do
  local cap = math.floor(bucket_mb * 1048576) // 4
  local used = 0
  for _, p in ipairs(model:parameters()) do
    local n = p:numel()
    params = params + n
    if n >= cap then
      if used > 0 then buckets, used = buckets + 1, 0 end
      buckets = buckets + (n + cap - 1) // cap
    else
      if used + n > cap then buckets, used = buckets + 1, 0 end
      used = used + n
    end
  end
  if used > 0 then buckets = buckets + 1 end
end

-- ---- the timed steps ------------------------------------------------------------------
-- compute: fetching the batch, forward, loss, backward and Adam; comm: the
-- whole ddp:sync_gradients call, which includes waiting for the slower rank.
-- dist.stats() adds the seconds inside the MPI calls alone.
local clock = mg.clock
local compute, comm, t_start, mpi0 = 0, 0, nil, nil
for s = 1, opts.warmup + opts.steps do
  if s == opts.warmup + 1 then
    compute, comm = 0, 0
    dist.barrier() -- every rank starts the clock together
    mpi0 = dist.stats().seconds
    t_start = clock()
  end
  local t0 = clock()
  local xb, yb = next_batch()
  opt:zero_grad()
  F.cross_entropy(model(xb), yb):backward()
  local t1 = clock()
  if ddp then ddp:sync_gradients() end
  local t2 = clock()
  opt:step()
  compute = compute + (t1 - t0) + (clock() - t2)
  comm = comm + (t2 - t1)
end
local mpi = dist.stats().seconds - mpi0
dist.barrier()
local elapsed = clock() - t_start

-- The same allreduce with the ranks in step (back to back, after a
-- barrier): what moving the gradients costs here, without the waiting.
local allreduce = 0
if ddp then
  dist.barrier()
  allreduce = common.time_per_call(function() ddp:sync_gradients() end, 5, 5, 3)
end

-- Means over the ranks (the slowest rank's elapsed time counts).
local n = opts.steps
local ms = function(v) return 1e3 * v / n end
local out = {
  compute_ms = ms(dist.allreduce(compute, "mean")),
  comm_ms = ms(dist.allreduce(comm, "mean")),
  mpi_ms = ms(dist.allreduce(mpi, "mean")),
  allreduce_ms = 1e3 * dist.allreduce(allreduce, "mean"),
  elapsed = dist.allreduce(elapsed, "max"),
}
if rank == 1 then
  print(("run model=%s ranks=%d threads=%d batch=%d steps=%d samples_per_s=%.6g step_ms=%.6g "
         .. "compute_ms=%.6g comm_ms=%.6g mpi_ms=%.6g allreduce_ms=%.6g params=%d buckets=%d")
    :format(opts.model, size, mg.get_num_threads(), spec.batch, n,
            size * spec.batch * n / out.elapsed, 1e3 * out.elapsed / n, out.compute_ms, out.comm_ms,
            out.mpi_ms, out.allreduce_ms, params, buckets))
end
dist.finalize()
