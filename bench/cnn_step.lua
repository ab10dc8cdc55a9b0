-- One training step (zero_grad, forward, loss, backward, Adam) of the
-- Fashion-MNIST CNN from scripts/fashion_mnist_cnn.lua at batch 128; median
-- of 20 steps after 5 warm-up steps. Pair with bench/cnn_step.py.
--   build/moongrad bench/cnn_step.lua [threads]
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"

mg.set_num_threads(tonumber(arg and arg[1]) or 1)
mg.manual_seed(0)
local model = nn.Sequential(
  nn.Conv2d(1, 32, 3, { padding = 1 }), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3, { padding = 1 }), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))
local opt = optim.Adam(model, { lr = 1e-3 })
local x, y = mg.randn(128, 1, 28, 28), mg.randint(1, 10, { 128 })

local function uptime() -- wall clock: os.clock would add up every thread's CPU time
  local f = io.open("/proc/uptime")
  local t = tonumber(f:read("n"))
  f:close()
  return t
end
local times = {}
for i = 1, 25 do
  local t0 = uptime()
  opt:zero_grad()
  F.cross_entropy(model(x), y):backward()
  opt:step()
  if i > 5 then times[#times + 1] = uptime() - t0 end
end
table.sort(times)
print(("cnn step: %.1f ms (median of %d)"):format(times[#times // 2 + 1] * 1e3, #times))
