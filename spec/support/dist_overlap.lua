-- DistributedDataParallel's overlap, for spec/dist_spec.lua: run under
-- mpirun with overlap=1 or overlap=0; prints what the spec compares.
--   mode=steps    three steps, then the first weight's values
--   mode=accum    two micro-batches inside no_sync, one outside, then sync
--   mode=twice    two backward passes before one sync (an error)
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local dist = require "moongrad.dist"

local o = {}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  o[k] = v
end
local rank = dist.init()
mg.manual_seed(5)
local model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(),
                            nn.Linear(32, 3))
-- 1 KiB buckets: the model's 1,475 parameters fill several, so the later
-- layers' buckets can start while backward computes the earlier ones
local ddp = dist.DistributedDataParallel(model, {bucket_mb = 1 / 1024, overlap = o.overlap == "1"})
mg.manual_seed(100 + rank) -- each rank its own data
local function batch() return mg.randn(6, 8), mg.randint(1, 3, {6}) end
local function backward()
  local x, y = batch()
  F.cross_entropy(model(x), y):backward()
end

-- Two exact fingerprints of a tensor (short lines: mpirun may interleave
-- the ranks' long ones).
local function show(t)
  local sum, weighted = 0, 0
  for i, v in ipairs(t:reshape(-1):totable()) do
    sum, weighted = sum + v, weighted + i * v
  end
  return ("%a %a"):format(sum, weighted)
end

local ok, err = pcall(function()
  if o.mode == "steps" then
    for _ = 1, 3 do
      for _, p in ipairs(model:parameters()) do p.grad = nil end
      backward()
      ddp:sync_gradients()
      mg.no_grad(function()
        for _, p in ipairs(model:parameters()) do p:sub_(p.grad * 0.5) end
      end)
    end
  elseif o.mode == "accum" then
    ddp:no_sync(function() backward(); backward() end)
    backward()
    ddp:sync_gradients()
  elseif o.mode == "twice" then
    backward()
    backward()
    ddp:sync_gradients()
  end
end)
if not ok then print(("rank %d error %s"):format(rank, err)) end
local p1 = model:parameters()[1]
print(("rank %d weights %s"):format(rank, show(p1)))
print(("rank %d grads %s"):format(rank, p1.grad and show(p1.grad) or "nil"))
print(("rank %d buckets %d early %d"):format(rank, ddp:buckets(), dist.stats().early_buckets))
