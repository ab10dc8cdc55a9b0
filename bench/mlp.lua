-- The MLP workloads of `make bench` (twin: bench/mlp.py): 784-512-256-10
-- with ReLU, Adam(lr 1e-3), cross-entropy.
--
--   build/moongrad bench/mlp.lua epoch <threads>     seconds per shuffled
--       epoch of Fashion-MNIST at batch 128 (training only; loading the data
--       is not timed): the median of 3 epochs after an untimed one, then
--       the process's peak RSS
--   build/moongrad bench/mlp.lua step_b1 <threads>   µs per full training
--   build/moongrad bench/mlp.lua step_b16 <threads>  step (zero_grad, forward,
--       loss, backward, Adam) at batch 1 / 16: median of 20 batches of
--       steps after 200 warm-up steps
--   build/moongrad bench/mlp.lua gemm <threads>      seconds the epoch's
--       GEMMs alone take (the same shapes and transposes, 469 batches),
--       timed as the epoch is
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local common = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local mode = common.args(arg, { epoch = true, step_b1 = true, step_b16 = true, gemm = true })

local function model_and_opt()
  local model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                              nn.Linear(256, 10))
  return model, optim.Adam(model, { lr = 1e-3 })
end

if mode == "epoch" then
  local x, y = data.fashion_mnist { split = "train" }
  local loader = data.DataLoader(data.TensorDataset(x:view(-1, 784), y), { batch_size = 128, shuffle = true })
  local model, opt = model_and_opt()
  local next_batch = common.batches(loader)
  -- The quick form trains on a few batches of each epoch.
  local batches = common.QUICK and 3 or #loader
  local function epoch()
    for _ = 1, batches do common.step(model, opt, F.cross_entropy, next_batch()) end
  end
  common.result(common.time_per_call(epoch, 1, 3), true)
elseif mode == "gemm" then
  -- Forward: x·W1ᵀ, h1·W2ᵀ, h2·W3ᵀ. Backward: every layer's dW = gᵀ·in and
  -- the two hidden layers' dx = g·W (the input needs no gradient).
  local shapes = { -- {rows of A, cols of A, cols of B, transpose A, transpose B}
    { 128, 784, 512, false, true }, { 128, 512, 256, false, true }, { 128, 256, 10, false, true },
    { 10, 128, 256, true, false }, { 128, 10, 256, false, false },
    { 256, 128, 512, true, false }, { 128, 256, 512, false, false },
    { 512, 128, 784, true, false },
  }
  local pairs_ = {}
  for i, s in ipairs(shapes) do
    local m, k, n, ta, tb = table.unpack(s)
    local a = ta and mg.randn(k, m):t() or mg.randn(m, k)
    local b = tb and mg.randn(n, k):t() or mg.randn(k, n)
    pairs_[i] = { a, b }
  end
  local batches = common.QUICK and 3 or 469 -- ceil(60000 / 128); the last one is 96 rows, counted as 128
  local function epoch()
    for _ = 1, batches do
      for _, p in ipairs(pairs_) do local _ = p[1]:matmul(p[2]) end
    end
  end
  common.result(common.time_per_call(epoch, 1, 3))
else
  local batch = mode == "step_b1" and 1 or 16
  local model, opt = model_and_opt()
  local x, y = mg.randn(batch, 784), mg.randint(1, 10, { batch })
  local inner = batch == 1 and 100 or 50
  common.result(1e6 * common.time_per_call(function() common.step(model, opt, F.cross_entropy, x, y) end,
                                           inner, 20, 200))
end
