-- moongrad.train.distributed: what train.fit's `distributed` option adds to
-- the loop, over moongrad.dist (MPI).
--
-- Every rank runs the same fit. The loaders are sharded (rank r takes every
-- size-th sample of each global batch, the order rank 1's), rank 1's
-- parameters are copied to all at the start, and the gradients become the
-- global batch's: the sum over ranks of (local rows / global rows) * local
-- gradient, in a few bucketed allreduces (which start during backward as
-- buckets fill with {overlap = true}). With a mean loss that
-- is exactly the gradient one process gets from the whole global batch,
-- short last batches included. The batch's loss and the stop signal
-- follow in one small message, and the epoch's metrics are summed over
-- ranks, so every rank sees the same history and takes the same decisions
-- (early stopping, plateau schedules, Ctrl-C); only rank 1 writes
-- checkpoints and logs.
local fmt, tostring, type, pairs, setmetatable = string.format, tostring, type, pairs,
  setmetatable
local mg = require "moongrad"

local distributed = {}

local Run = {}
Run.__index = Run

-- The DistributedDataParallel options of fit's distributed option.
local function check_option(v)
  if v == true then return {} end
  if type(v) == "table" then
    for k in pairs(v) do
      if k ~= "bucket_mb" and k ~= "overlap" then
        error(fmt("fit: unknown distributed option '%s' (known: bucket_mb, overlap)",
                  tostring(k)), 0)
      end
    end
    return {bucket_mb = v.bucket_mb, overlap = v.overlap}
  end
  error(fmt("fit: distributed must be true, false or {bucket_mb = n, overlap = bool}, got %s",
            tostring(v)), 0)
end

local function shard(dist, loader, name)
  if (loader.shard_size or 1) > 1 then return loader end -- sharded by the caller
  if type(loader.shard) ~= "function" then
    error(fmt("fit: distributed training shards the %s loader, which needs a DataLoader " ..
              "(or a loader with :shard(rank, size, sync))", name), 0)
  end
  return dist.shard(loader)
end

-- Initialises MPI and shards ctx's loaders; sets ctx.rank, ctx.world_size
-- and ctx.is_main. Returns the run's state, or nil when fit is not
-- distributed.
function distributed.setup(ctx, o)
  if not o.distributed then return nil end
  local ddp_opts = check_option(o.distributed)
  local dist = require "moongrad.dist"
  local rank, size = dist.init()
  ctx.rank, ctx.world_size, ctx.is_main = rank, size, rank == 1
  ctx.train_loader = shard(dist, ctx.train_loader, "train")
  if ctx.val_loader then ctx.val_loader = shard(dist, ctx.val_loader, "val") end
  return setmetatable({dist = dist, ddp_opts = ddp_opts, rank = rank, size = size}, Run)
end

-- After a resume (every rank read the same file): rank 1's weights to all.
function Run:start(model)
  self.ddp = self.dist.DistributedDataParallel(model, self.ddp_opts)
end

-- Before this rank's backward (or in its place, for an empty share): the
-- weight its gradients are summed with, so that they can start on their
-- way during backward.
function Run:prepare(loader)
  self.weight = loader.last_rows / loader.last_global_rows
  self.ddp:prepare(self.weight)
end

-- After loss:backward() on this rank's share (value: its mean loss, nil
-- for an empty share). Makes the gradients the global batch's and returns
-- the global batch's loss and whether any rank caught a signal.
function Run:sync(value, signalled)
  local w = self.weight
  local sums = self.ddp:sync_gradients(w, {value and w * value or 0, signalled and 1 or 0})
  return sums[1], sums[2] > 0
end

-- {a, b, ...} summed over ranks.
function Run:sum_list(vals)
  local t = mg.tensor(vals, "float64")
  self.dist.allreduce(t, "sum")
  return t:totable()
end

function Run:barrier() self.dist.barrier() end

-- True on every rank when flag is true on any.
function Run:any(flag)
  return self.dist.allreduce(flag and 1 or 0, "max") > 0
end

-- Rank 1's buffers (batch norm statistics) to all, before evaluating.
function Run:sync_buffers()
  self.ddp:broadcast_buffers()
end

return distributed
