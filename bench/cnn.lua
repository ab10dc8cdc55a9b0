-- The CNN workload of `make bench` (peer: bench/cnn.py): conv(1→32, 3×3,
-- pad 1)-ReLU-maxpool 2-conv(32→64, 3×3, pad 1)-ReLU-maxpool 2-linear(3136→
-- 128)-ReLU-linear(128→10), Adam(lr 1e-3), batch 128 on Fashion-MNIST.
--
--   build/moongrad bench/cnn.lua epoch <threads>
--
-- Prints seconds per epoch, extrapolated: 5 warm-up steps, then the first
-- `steps` (default 60) batches of a shuffled epoch are timed and scaled to
-- the epoch's 469 batches.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
-- bench/common.lua sits beside this script.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local common = require "common"

common.args(arg, { epoch = true })
local steps = tonumber(arg[3] or "60")
mg.manual_seed(0)
local x, y = data.fashion_mnist { split = "train" }
local loader = data.DataLoader(data.TensorDataset(x, y), { batch_size = 128, shuffle = true })
local model = nn.Sequential(
  nn.Conv2d(1, 32, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
local opt = optim.Adam(model, { lr = 1e-3 })

local function step(xb, yb)
  opt:zero_grad()
  F.cross_entropy(model(xb), yb):backward()
  opt:step()
end

local i, t0 = 0, nil
for xb, yb in loader:iter() do
  i = i + 1
  if i == 6 then t0 = mg.clock() end
  if i > 5 + steps then break end
  step(xb, yb)
end
common.result((mg.clock() - t0) / steps * #loader)
