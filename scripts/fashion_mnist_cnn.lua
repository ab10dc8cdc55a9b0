-- Fashion-MNIST with a small CNN: conv-batchnorm-relu-pool twice, then two
-- linear layers with dropout; random crops and horizontal flips as
-- augmentation; Adam under a OneCycle schedule. Writes a checkpoint, the
-- history CSV and an SVG of the curves into --out.
--
--   build/moongrad scripts/fashion_mnist_cnn.lua [--epochs 15] [--lr 3e-3]
--       [--batch-size 128] [--seed 1] [--out runs/fashion_mnist_cnn]
--       [--resume runs/fashion_mnist_cnn/last.safetensors] [--dist]
--
-- --dist under `mpirun -np N`: data-parallel over N ranks, each taking
-- batch-size / N of every batch; rank 1 prints and writes.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local data = require "moongrad.data"
local T = require "moongrad.transforms"
local train = require "moongrad.train"
local plot = require "moongrad.plot"
local cli = require "moongrad.cli"

-- ---- flags -------------------------------------------------------------------
local parser = cli.parser("fashion_mnist_cnn.lua",
  "Train a small CNN on Fashion-MNIST with augmentation (Adam, OneCycle) and report its test "
  .. "accuracy; writes best.safetensors, last.safetensors, history.csv and curves.svg into --out.",
  "build/moongrad scripts/fashion_mnist_cnn.lua --epochs 1 --out runs/cnn_quick")
parser:option("--epochs", "Epochs to train.", "15"):convert(cli.integer(1))
parser:option("--lr", "Peak learning rate of the one-cycle schedule (Adam).", "3e-3")
  :convert(cli.number(0))
parser:option("--batch-size", "Images per batch (over all ranks with --dist).", "128")
  :convert(cli.integer(1))
parser:option("--seed", "Random seed.", "1"):convert(cli.integer(0))
parser:option("--out", "Folder for checkpoints, history and charts.", "runs/fashion_mnist_cnn")
parser:option("--resume", "Checkpoint to continue from, such as --out's last.safetensors (optional).")
  :argname("<checkpoint>")
parser:flag("--dist", "Train data-parallel, one rank of `mpirun -np N`.")
local opts = parser:parse(arg)
-- --dist: one rank of `mpirun -np N`; --batch-size stays the global batch
-- (N ranks of batch-size / N), so the training is the single process's.
local dist, rank, ranks = nil, 1, 1
if opts.dist then
  dist = require "moongrad.dist"
  rank, ranks = dist.init()
end
local function say(...) if rank == 1 then print(...) end end
os.execute(("mkdir -p '%s'"):format(opts.out))

-- ---- data ---------------------------------------------------------------------
mg.manual_seed(opts.seed)
local x_train, y_train = data.fashion_mnist { split = "train" }
local x_test, y_test = data.fashion_mnist { split = "test" }
local mean, std = x_train:mean():item(), x_train:std():item()
local normalize = T.Normalize { mean = { mean }, std = { std } }
local augment = T.Compose { T.RandomCrop { size = 28, padding = 2 }, T.RandomHorizontalFlip {}, normalize }

local full = data.TensorDataset(x_train, y_train)
local train_set, val_set = table.unpack(data.random_split(full, { 55000, 5000 }, { seed = opts.seed }))
local bs = opts.batch_size
if bs % ranks ~= 0 then
  io.stderr:write(("--batch-size %d does not split over %d ranks\n"):format(bs, ranks))
  os.exit(2)
end
local train_loader = data.DataLoader(train_set, { batch_size = bs // ranks, shuffle = true, transform = augment })
if dist then train_loader = dist.shard(train_loader) end -- fit would shard it too
local val_loader = data.DataLoader(val_set, { batch_size = 1000, transform = normalize })
local test_loader = data.DataLoader(data.TensorDataset(x_test, y_test), { batch_size = 1000, transform = normalize })

-- ---- model, optimizer, schedule -------------------------------------------------
local model = nn.Sequential(
  nn.Conv2d(1, 32, 3, { padding = 1 }), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3, { padding = 1 }), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(),
  nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.3),
  nn.Linear(256, 10))
local opt = optim.Adam(model, { lr = opts.lr })
local epochs = opts.epochs
local schedule = sched.OneCycleLR(opt, { max_lr = opts.lr, total_steps = #train_loader * epochs })
say(model)

-- ---- training -------------------------------------------------------------------
local out = opts.out
local history = train.fit(model, {
  train = train_loader,
  val = val_loader,
  loss = F.cross_entropy,
  optimizer = opt,
  scheduler = schedule,
  scheduler_step = "batch",
  epochs = epochs,
  metrics = { "accuracy" },
  callbacks = {
    train.ModelCheckpoint { path = out .. "/best.safetensors", monitor = "val_accuracy", mode = "max",
                            save_best = true, save_last = false },
    train.HistoryLogger { csv = out .. "/history.csv", json = out .. "/history.json" },
  },
  checkpoint = { path = out .. "/last.safetensors", every_n_batches = 100 },
  resume = opts.resume,
  distributed = opts.dist,
})
if rank == 1 then plot.training_curves(history, out .. "/curves.svg", { title = "Fashion-MNIST CNN" }) end

local test = train.evaluate(model, test_loader, { loss = F.cross_entropy, metrics = { "accuracy" } })
say(("wrote %s/best.safetensors, %s/history.csv and %s/curves.svg"):format(out, out, out))
say(("test loss: %.4f"):format(test.loss))
say(("test accuracy: %.2f%%"):format(100 * test.accuracy))
