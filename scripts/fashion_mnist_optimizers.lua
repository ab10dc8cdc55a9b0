-- The same MLP trained on Fashion-MNIST by SGD, SGD with momentum, Adam,
-- RMSprop and Adagrad from the same initial weights and the same batches;
-- one SVG with the five training-loss curves, and a table of validation
-- accuracy per epoch.
--
--   build/moongrad scripts/fashion_mnist_optimizers.lua [--epochs 2] [--out runs/optimizers]
local cli = require "moongrad.cli"
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"
local plot = require "moongrad.plot"

local parser = cli.parser("fashion_mnist_optimizers.lua",
  "Train one Fashion-MNIST MLP by SGD, momentum, Adam, RMSprop and Adagrad from the same start;"
  .. " print validation accuracy per epoch and write optimizers.svg (training-loss curves) to --out.",
  "build/moongrad scripts/fashion_mnist_optimizers.lua --epochs 1 --out runs/optimizers_quick")
parser:option("--epochs", "Epochs to train each optimizer.", "2"):convert(cli.integer(1))
parser:option("--out", "Directory for optimizers.svg (created if missing).", "runs/optimizers")
local args = parser:parse(arg)
local epochs, out = args.epochs, args.out
os.execute(("mkdir -p '%s'"):format(out))

mg.manual_seed(1)
local x, y = data.fashion_mnist { split = "train" }
x = x:reshape(-1, 784)
x = (x - x:mean():item()) / x:std():item()
local train_set, val_set = table.unpack(data.random_split(data.TensorDataset(x, y), { 55000, 5000 }, { seed = 1 }))
local val_loader = data.DataLoader(val_set, { batch_size = 1000 })

local function make_model()
  return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
end
local initial = make_model():state_dict()

local optimizers = {
  { "SGD", function(m) return optim.SGD(m, { lr = 0.1 }) end },
  { "momentum", function(m) return optim.SGD(m, { lr = 0.05, momentum = 0.9 }) end },
  { "Adam", function(m) return optim.Adam(m, { lr = 1e-3 }) end },
  { "RMSprop", function(m) return optim.RMSprop(m, { lr = 1e-3 }) end },
  { "Adagrad", function(m) return optim.Adagrad(m, { lr = 1e-2 }) end },
}

local series, rows = {}, {}
for _, o in ipairs(optimizers) do
  local name, make = o[1], o[2]
  local model = make_model()
  model:load_state_dict(initial)
  local opt = make(model)
  mg.manual_seed(2) -- the same batch order for every optimizer
  local loader = data.DataLoader(train_set, { batch_size = 128, shuffle = true })
  local xs, ys, step, running = {}, {}, 0, 0
  local accs = {}
  for epoch = 1, epochs do
    model:train()
    for xb, yb in loader:iter() do
      opt:zero_grad()
      local loss = F.cross_entropy(model(xb), yb)
      loss:backward()
      opt:step()
      step = step + 1
      running = running + loss:item()
      if step % 50 == 0 then
        xs[#xs + 1], ys[#ys + 1] = step, running / 50
        running = 0
      end
    end
    accs[epoch] = train.evaluate(model, val_loader, { metrics = { "accuracy" } }).accuracy
  end
  series[#series + 1] = { name = name, x = xs, y = ys }
  rows[#rows + 1] = { name, accs }
end

plot.lines { series = series, path = out .. "/optimizers.svg", title = "Fashion-MNIST MLP: training loss by optimizer",
             xlabel = "step", ylabel = "training loss (mean of 50 steps)", log_y = true }
print(("%-10s"):format("optimizer") .. (" epoch %d"):rep(epochs):format(table.unpack((function()
  local t = {} for e = 1, epochs do t[e] = e end return t end)())))
for _, r in ipairs(rows) do
  local cells = {}
  for e = 1, epochs do cells[e] = ("%7.2f%%"):format(100 * r[2][e]) end
  print(("%-10s"):format(r[1]) .. table.concat(cells, " "))
end
print("wrote " .. out .. "/optimizers.svg")
