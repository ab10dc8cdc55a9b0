-- A training loop of your own, data-parallel over MPI ranks:
--
--   mpirun -np 2 build/moongrad examples/dist_loop.lua
--
-- (as root add --allow-run-as-root; more ranks than cores, --oversubscribe;
-- several machines, --host a,b or --hostfile). Every rank runs this file.
-- The three lines marked "dist" are all that differ from a one-process loop.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local dist = require "moongrad.dist"

local rank, size = dist.init()                                   -- dist
mg.manual_seed(1) -- the same data on every rank; the shards differ

local x = mg.randn(1000, 20)
local y = x:narrow(2, 1, 3):sum(2):gt(0):to("int64") + 1
local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 32, shuffle = true})
loader = dist.shard(loader)       -- this rank's 32 of each 32 * size   -- dist

local model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
local ddp = dist.DistributedDataParallel(model) -- rank 1's weights to all -- dist
local opt = optim.Adam(model, {lr = 1e-2})

for epoch = 1, 5 do
  local loss_sum, batches = 0, 0
  for xb, yb in loader:iter() do
    opt:zero_grad()
    local loss = F.cross_entropy(model(xb), yb)
    loss:backward()
    ddp:sync_gradients() -- the mean of the ranks' gradients
    opt:step()
    loss_sum, batches = loss_sum + loss:item(), batches + 1
  end
  -- the mean over ranks of each rank's mean loss
  local mean = dist.allreduce(loss_sum / batches, "mean")
  if dist.is_main() then print(("epoch %d  loss %.4f"):format(epoch, mean)) end
end

-- every rank holds the same weights
local w = model:parameters()[1]:sum():item()
local lo, hi = dist.allreduce(w, "min"), dist.allreduce(w, "max")
print(("rank %d of %d: weights sum %.6f, ranks %s"):format(rank, size, w,
      lo == hi and "agree" or "DIFFER"))
