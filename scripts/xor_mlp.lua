-- XOR, the classic problem no straight line can separate, learned by a
-- two-layer MLP with a hand-written loop that spells out the four steps of
-- backpropagation.
--
--   build/moongrad scripts/xor_mlp.lua [--steps 1000] [--lr 0.5]
local cli = require "moongrad.cli"
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"

local parser = cli.parser("xor_mlp.lua",
  "Learn XOR with a 2-8-1 MLP and a hand-written gradient-descent loop; print the loss every"
  .. " 100 steps and the four predictions.",
  "build/moongrad scripts/xor_mlp.lua --steps 300 --lr 1")
parser:option("--steps", "Gradient-descent steps on the four points.", "1000"):convert(cli.integer(1))
parser:option("--lr", "Learning rate.", "0.5"):convert(cli.number(0))
local args = parser:parse(arg)

mg.manual_seed(1)
local X = mg.tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}})
local Y = mg.tensor({{0}, {1}, {1}, {0}})
local net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
local lr = args.lr
print(net)

for step = 1, args.steps do
  local logits = net(X)                                       -- 1. forward
  local loss = F.binary_cross_entropy_with_logits(logits, Y)  -- 2. loss
  loss:backward()                                             -- 3. backward: p.grad = d loss / d p
  mg.no_grad(function()                                       -- 4. update, not recorded
    for _, p in ipairs(net:parameters()) do p:sub_(p.grad * lr) end
  end)
  net:zero_grad()                                             -- grads accumulate: clear them
  if step == 1 or step % 100 == 0 or step == args.steps then
    print(("step %4d  loss %.4f"):format(step, loss:item()))
  end
end

local probs = mg.no_grad(function() return net(X):sigmoid() end)
local predicted = {}
for i = 1, 4 do
  local x, p = X[i], probs[{i, 1}]
  predicted[i] = p > 0.5 and 1 or 0
  print(("%d xor %d -> %.3f"):format(x[1], x[2], p))
end
print("predictions: " .. table.concat(predicted, " ") .. " (expected 0 1 1 0)")
