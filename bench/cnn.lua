-- The CNN workload of `make bench` (twin: bench/cnn.py): conv(1→32, 3×3,
-- pad 1)-ReLU-maxpool 2-conv(32→64, 3×3, pad 1)-ReLU-maxpool 2-linear(3136→
-- 128)-ReLU-linear(128→10), Adam(lr 1e-3), batch 128 on Fashion-MNIST.
--
--   build/moongrad bench/cnn.lua epoch <threads>
--
-- Prints seconds per epoch, extrapolated: after 5 warm-up steps, the
-- median of 3 timed runs of 20 shuffled batches, per step, times the
-- epoch's 469 batches.
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local common = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

common.args(arg, { epoch = true })
local x, y = data.fashion_mnist { split = "train" }
local loader = data.DataLoader(data.TensorDataset(x, y), { batch_size = 128, shuffle = true })
local model = nn.Sequential(
  nn.Conv2d(1, 32, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
local opt = optim.Adam(model, { lr = 1e-3 })
local next_batch = common.batches(loader)
local function step() common.step(model, opt, F.cross_entropy, next_batch()) end
common.result(common.time_per_call(step, 20, 3, 5) * #loader)
