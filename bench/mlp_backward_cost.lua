-- How much a backward pass costs next to a forward pass, for the
-- 784-512-256-10 MLP at batch 128 with cross-entropy. Run:
--   build/moongrad bench/mlp_backward_cost.lua [threads]
-- Times are CPU seconds (os.clock), so use one thread for wall-clock-like
-- figures; the ratio is what this measures.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"

mg.set_num_threads(tonumber(arg and arg[1]) or 1)
mg.manual_seed(0)
local net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Linear(256, 10))
local x, y = mg.randn(128, 784), mg.randint(1, 10, { 128 })
local N = 200

local function forward() return F.cross_entropy(net(x), y) end
for _ = 1, 20 do mg.no_grad(forward) end
local t0 = os.clock()
for _ = 1, N do mg.no_grad(forward) end
local fwd = (os.clock() - t0) / N

local recorded, backward = 0, 0
for _ = 1, N do
  local a = os.clock()
  local loss = forward()
  local b = os.clock()
  loss:backward()
  recorded, backward = recorded + (b - a), backward + (os.clock() - b)
  net:zero_grad()
end
recorded, backward = recorded / N, backward / N
print(("forward %.3f ms, recording forward %.3f ms, backward %.3f ms: backward = %.2f forwards")
  :format(fwd * 1e3, recorded * 1e3, backward * 1e3, backward / fwd))
