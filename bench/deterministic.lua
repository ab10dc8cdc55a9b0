-- The cost of deterministic mode: one epoch of the Fashion-MNIST MLP
-- (scripts/fashion_mnist_mlp.lua's model, batch 128, Adam) at 2 threads,
-- default vs mg.use_deterministic_algorithms(true), alternated in one run.
--   build/moongrad bench/deterministic.lua [--threads 2] [--rounds 2]
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"

local opts = require("moongrad.util").parse_flags(arg, {threads = 2, rounds = 2})
mg.set_num_threads(math.floor(opts.threads))
local x, y = data.fashion_mnist {split = "train"}
x = ((x - 0.286) / 0.353):reshape(-1, 784)

local function epoch(deterministic)
  mg.use_deterministic_algorithms(deterministic)
  mg.manual_seed(1)
  local model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                              nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
  local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 128, shuffle = true})
  local t0 = mg.clock()
  train.fit(model, {train = loader, optimizer = optim.Adam(model, {lr = 1e-3}),
                    loss = F.cross_entropy, epochs = 1, progress = "quiet"})
  return mg.clock() - t0
end

local sums = {[false] = 0, [true] = 0}
for _ = 1, math.floor(opts.rounds) do
  for _, d in ipairs({false, true}) do sums[d] = sums[d] + epoch(d) end
end
print(("threads %d: default %.2f s/epoch, deterministic %.2f s/epoch, ratio %.2f"):format(
  mg.get_num_threads(), sums[false] / opts.rounds, sums[true] / opts.rounds, sums[true] / sums[false]))
