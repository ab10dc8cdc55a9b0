-- The MLP workloads of `make bench` (peer: bench/mlp.py): 784-512-256-10
-- with ReLU, Adam(lr 1e-3), cross-entropy.
--
--   build/moongrad bench/mlp.lua epoch <threads>     seconds for one shuffled
--       epoch of Fashion-MNIST at batch 128 (training only; loading the data
--       is not timed), then the process's peak RSS
--   build/moongrad bench/mlp.lua step_b1 <threads>   µs per full training
--   build/moongrad bench/mlp.lua step_b16 <threads>  step (zero_grad, forward,
--       loss, backward, Adam) at batch 1 / 16, median
--   build/moongrad bench/mlp.lua gemm <threads>      seconds the epoch's
--       GEMMs alone take (the same shapes and transposes, 469 batches)
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
-- bench/common.lua sits beside this script.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local common = require "common"

local mode = common.args(arg, { epoch = true, step_b1 = true, step_b16 = true, gemm = true })
mg.manual_seed(0)

local function model_and_opt()
  local model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                              nn.Linear(256, 10))
  return model, optim.Adam(model, { lr = 1e-3 })
end

local function step(model, opt, x, y)
  opt:zero_grad()
  F.cross_entropy(model(x), y):backward()
  opt:step()
end

if mode == "epoch" then
  local x, y = data.fashion_mnist { split = "train" }
  local loader = data.DataLoader(data.TensorDataset(x:view(-1, 784), y), { batch_size = 128, shuffle = true })
  local model, opt = model_and_opt()
  local t0 = mg.clock()
  for xb, yb in loader:iter() do step(model, opt, xb, yb) end
  common.result(mg.clock() - t0, true)
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
  local batches = 469 -- ceil(60000 / 128); the last one is 96 rows, counted as 128
  local function epoch()
    for _ = 1, batches do
      for _, p in ipairs(pairs_) do local _ = p[1]:matmul(p[2]) end
    end
  end
  epoch() -- warm-up
  local t0 = mg.clock()
  epoch()
  common.result(mg.clock() - t0)
else
  local batch = mode == "step_b1" and 1 or 16
  local model, opt = model_and_opt()
  local x, y = mg.randn(batch, 784), mg.randint(1, 10, { batch })
  local reps = batch == 1 and 2000 or 1000
  common.result(1e6 * common.time_per_call(function() step(model, opt, x, y) end, reps // 20, 20, 200))
end
