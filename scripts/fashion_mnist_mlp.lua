-- Fashion-MNIST with an MLP: the main job (`make demo` runs it).
--
-- Adam with a linear warm-up then cosine decay (per batch), dropout, early
-- stopping on a validation split, a progress bar, then the test accuracy on
-- the standard 10,000 test images. Writes a checkpoint, the history CSV and
-- an SVG of the training curves into --out.
--
--   build/moongrad scripts/fashion_mnist_mlp.lua [--epochs 20] [--lr 1e-3]
--       [--batch-size 128] [--seed 1] [--out runs/fashion_mnist_mlp]
--       [--resume runs/fashion_mnist_mlp/last.safetensors] [--patience 5]
--       [--train-subset 0] [--threads 0] [--deterministic 0] [--dist]
--
--   mpirun -np 2 build/moongrad scripts/fashion_mnist_mlp.lua --dist
--       the same training data-parallel over 2 ranks (moongrad.dist): each
--       rank takes batch-size / 2 of every batch; rank 1 prints and writes.
--
-- --train-subset n trains and validates on the first n training images
-- (11/12 train, 1/12 validation; 0, the default, is all 60,000). Ctrl-C
-- (or SIGTERM) stops after the current batch with last.safetensors written;
-- --resume on it continues exactly where the run stopped.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local data = require "moongrad.data"
local train = require "moongrad.train"
local plot = require "moongrad.plot"
local cli = require "moongrad.cli"

-- ---- flags -------------------------------------------------------------------
local parser = cli.parser("fashion_mnist_mlp.lua",
  "Train an MLP on Fashion-MNIST (Adam, warm-up then cosine decay, early stopping) and report "
  .. "its test accuracy; writes best.safetensors, last.safetensors, history.csv and curves.svg "
  .. "into --out.",
  "build/moongrad scripts/fashion_mnist_mlp.lua --epochs 3 --out runs/mlp_quick")
parser:option("--epochs", "Epochs to train (at most: early stopping may end sooner).", "20")
  :convert(cli.integer(1))
parser:option("--lr", "Adam's peak learning rate.", "1e-3"):convert(cli.number(0))
parser:option("--batch-size", "Images per batch (over all ranks with --dist).", "128")
  :convert(cli.integer(1))
parser:option("--seed", "Random seed.", "1"):convert(cli.integer(0))
parser:option("--out", "Folder for checkpoints, history and charts.", "runs/fashion_mnist_mlp")
parser:option("--resume", "Checkpoint to continue from, such as --out's last.safetensors (optional).")
  :argname("<checkpoint>")
parser:option("--patience", "Epochs without a better validation accuracy before stopping early.",
              "5"):convert(cli.integer(0))
parser:option("--train-subset", "Train and validate on the first n training images (0: all 60,000).",
              "0"):convert(cli.integer(0))
parser:option("--threads", "Threads (0: moongrad's default).", "0"):convert(cli.integer(0))
parser:option("--deterministic", "1: deterministic algorithms only (bitwise repeatable runs).", "0")
  :convert(cli.integer(0, 1))
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

if opts.threads > 0 then mg.set_num_threads(opts.threads) end
mg.use_deterministic_algorithms(opts.deterministic ~= 0)

-- ---- data ---------------------------------------------------------------------
mg.manual_seed(opts.seed)
local x_train, y_train = data.fashion_mnist { split = "train" }
local x_test, y_test = data.fashion_mnist { split = "test" }
local n_train = x_train:size(1)
if opts.train_subset > 0 then
  n_train = math.min(n_train, opts.train_subset)
  x_train, y_train = x_train:narrow(1, 1, n_train), y_train:narrow(1, 1, n_train)
end
x_train, x_test = x_train:reshape(-1, 784), x_test:reshape(-1, 784)
-- Standardise with the training set's statistics.
local mean, std = x_train:mean():item(), x_train:std():item()
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

local full = data.TensorDataset(x_train, y_train)
local train_set, val_set = table.unpack(data.random_split(full, { n_train - n_train // 12, n_train // 12 },
                                                              { seed = opts.seed }))
local bs = opts.batch_size
if bs % ranks ~= 0 then
  io.stderr:write(("--batch-size %d does not split over %d ranks\n"):format(bs, ranks))
  os.exit(2)
end
local train_loader = data.DataLoader(train_set, { batch_size = bs // ranks, shuffle = true })
if dist then train_loader = dist.shard(train_loader) end -- fit would shard it too
local val_loader = data.DataLoader(val_set, { batch_size = 1000 })
local test_loader = data.DataLoader(data.TensorDataset(x_test, y_test), { batch_size = 1000 })

-- ---- model, optimizer, schedule -------------------------------------------------
local model = nn.Sequential(
  nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
  nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2),
  nn.Linear(256, 10))
local opt = optim.Adam(model, { lr = opts.lr })
local steps = #train_loader * opts.epochs
local warmup = math.min(#train_loader, steps // 10)
local schedule = sched.SequentialLR(opt, {
  schedulers = {
    sched.LinearLR(opt, { start_factor = 0.01, end_factor = 1, total_iters = warmup }),
    sched.CosineAnnealingLR(opt, { T_max = steps - warmup, eta_min = opts.lr * 0.01 }),
  },
  milestones = { warmup },
})
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
  epochs = opts.epochs,
  metrics = { "accuracy" },
  callbacks = {
    -- Validation accuracy keeps improving for a while after validation
    -- loss has turned up (the model grows confident on what it gets
    -- wrong), and accuracy is what we report: monitor it.
    train.EarlyStopping { monitor = "val_accuracy", mode = "max", patience = opts.patience,
                          restore_best = true },
    train.ModelCheckpoint { path = out .. "/best.safetensors", monitor = "val_accuracy", mode = "max",
                            save_best = true, save_last = false },
    train.HistoryLogger { csv = out .. "/history.csv", json = out .. "/history.json" },
  },
  checkpoint = { path = out .. "/last.safetensors", every_n_batches = 100 },
  resume = opts.resume,
  distributed = opts.dist,
})
if rank == 1 then plot.training_curves(history, out .. "/curves.svg", { title = "Fashion-MNIST MLP" }) end

local test = train.evaluate(model, test_loader, { loss = F.cross_entropy, metrics = { "accuracy" } })
say(("wrote %s/best.safetensors, %s/history.csv and %s/curves.svg"):format(out, out, out))
say(("test loss: %.4f"):format(test.loss))
say(("test accuracy: %.2f%%"):format(100 * test.accuracy))
