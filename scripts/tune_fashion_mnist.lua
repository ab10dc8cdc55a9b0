-- Hyperparameter search for the Fashion-MNIST MLP.
--
-- Searches the optimizer (AdamW, or SGD with momentum), its learning rate
-- and weight decay, and the dropout and width of a two-layer MLP trained on
-- a subset of the training images, judged by accuracy on a validation split
-- carved from the rest of the training set. The objective asks for its
-- parameters as it builds the run (define-by-run, as in Optuna), so the
-- momentum is searched only in the trials that chose SGD.
-- Trials run in parallel worker processes (forked after the data is loaded,
-- so it is shared), the median rule stops trials that are clearly behind,
-- and every finished trial is appended to --out/study.jsonl: running the
-- script again with the same --out continues the study. At the end: the
-- leaderboard, a chart of the search (--out/study.svg), the validation
-- accuracy against each hyperparameter (--out/params.svg), and the best
-- trial's model evaluated once on the 10,000 test images.
--
--   build/moongrad scripts/tune_fashion_mnist.lua [--trials 40] [--workers N]
--       [--sampler bayes|tpe|random|cmaes] [--epochs 8] [--train 20000]
--       [--val 5000] [--batch-size 128] [--seed 1] [--out runs/tune_fashion_mnist]
--   mpirun -np N build/moongrad scripts/tune_fashion_mnist.lua --mpi [...]
--       rank 1 runs the study, ranks 2..N train the trials (--out on a
--       file system every rank sees: ranks save their trials' models there)
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local data = require "moongrad.data"
local train = require "moongrad.train"
local tune = require "moongrad.tune"
local cli = require "moongrad.cli"

local parser = cli.parser("tune_fashion_mnist.lua",
  "Search the Fashion-MNIST MLP's optimizer, learning rate, weight decay, dropout and width by "
  .. "validation accuracy, then test the best trial's model; writes study.jsonl (resumed when run "
  .. "again), study.svg, params.svg, trials.csv and each trial's model into --out.",
  "build/moongrad scripts/tune_fashion_mnist.lua --trials 8 --out runs/tune8")
parser:option("--trials", "Trials the study should have in all (a resumed study runs the rest).",
              "40"):convert(cli.integer(1))
parser:option("--workers", "Worker processes training trials at once; the default is the CPU count.",
              tostring(tune.cpu_count())):convert(cli.integer(1))
parser:option("--sampler", "How trials choose their hyperparameters.", "bayes")
  :choices{"bayes", "tpe", "random", "cmaes"}
parser:option("--epochs", "Epochs each trial trains (at most: the pruner may stop it).", "8")
  :convert(cli.integer(1))
parser:option("--train", "Training images each trial learns from.", "20000")
  :convert(cli.integer(1, 60000))
parser:option("--val", "Training images held out to judge the trials.", "5000")
  :convert(cli.integer(1, 60000))
parser:option("--batch-size", "Images per batch.", "128"):convert(cli.integer(1))
parser:option("--seed", "Random seed of the data split and the sampler.", "1"):convert(cli.integer(0))
parser:option("--out", "Folder for the study, its charts and the trials' models.",
              "runs/tune_fashion_mnist")
parser:flag("--mpi", "Rank 1 of `mpirun -np N` runs the study, ranks 2..N train the trials.")
local opts = parser:parse(arg)
if opts.train + opts.val > 60000 then parser:error("--train plus --val must be at most 60000") end
local rank, ranks = 1, 1
if opts.mpi then rank, ranks = require("moongrad.dist").init() end
local out = opts.out
os.execute(("mkdir -p '%s/models'"):format(out))

-- ---- data: loaded once, before the workers are forked ----------------------------------
local x_all, y_all = data.fashion_mnist { split = "train" }
local x_test, y_test = data.fashion_mnist { split = "test" }
x_all, x_test = x_all:reshape(-1, 784), x_test:reshape(-1, 784)
local n_train, n_val = opts.train, opts.val
-- A fixed shuffle of the 60,000 training images: the first --train train,
-- the next --val validate; the test set is never looked at while searching.
mg.manual_seed(opts.seed)
local order = mg.randperm(60000)
local train_ids, val_ids = order:narrow(1, 1, n_train), order:narrow(1, n_train + 1, n_val)
local x_train, y_train = x_all:index_select(1, train_ids), y_all:index_select(1, train_ids)
local x_val, y_val = x_all:index_select(1, val_ids), y_all:index_select(1, val_ids)
local mean, std = x_train:mean():item(), x_train:std():item()
x_train, x_val, x_test = (x_train - mean) / std, (x_val - mean) / std, (x_test - mean) / std
x_all = nil

local function model_for(width, dropout)
  return nn.Sequential(
    nn.Linear(784, width), nn.ReLU(), nn.Dropout(dropout),
    nn.Linear(width, width // 2), nn.ReLU(), nn.Dropout(dropout),
    nn.Linear(width // 2, 10))
end

-- The optimizer a trial asks for, and its settings: SGD wants larger steps
-- than AdamW, and only SGD has a momentum to search.
local function optimizer_for(model, trial)
  local kind = trial:suggest_categorical("optimizer", { "adamw", "sgd" })
  local weight_decay = trial:suggest_float("weight_decay", 1e-6, 1e-1, { log = true })
  if kind == "sgd" then
    return optim.SGD(model, { lr = trial:suggest_float("lr", 1e-3, 0.3, { log = true }),
                              momentum = trial:suggest_float("momentum", 0.8, 0.99),
                              nesterov = true, weight_decay = weight_decay })
  end
  return optim.AdamW(model, { lr = trial:suggest_float("lr", 1e-4, 3e-2, { log = true }),
                              weight_decay = weight_decay })
end

-- ---- the objective: one training run, judged on the validation split ------------------
local function objective(config, trial)
  local model = model_for(trial:suggest_int("width", 32, 1024, { log = true }),
                          trial:suggest_float("dropout", 0, 0.6))
  local loader = data.DataLoader(data.TensorDataset(x_train, y_train),
                                 { batch_size = config.batch_size, shuffle = true })
  local opt = optimizer_for(model, trial)
  local ok, history = pcall(train.fit, model, {
    train = loader,
    val = data.DataLoader(data.TensorDataset(x_val, y_val), { batch_size = 1000 }),
    loss = F.cross_entropy, optimizer = opt,
    scheduler = sched.CosineAnnealingLR(opt, { T_max = #loader * config.epochs }),
    epochs = config.epochs, metrics = { "accuracy" }, progress = "quiet",
    callbacks = { tune.TrialCallback(trial, { monitor = "val_accuracy" }) },
  })
  -- a learning rate too large makes the loss NaN: a bad configuration, not
  -- a bug, so the trial fails quietly (NaN) and the search goes on, where
  -- any other error stops it
  if not ok and tostring(history):find("^fit: loss is") then return 0 / 0 end
  if not ok then error(history, 0) end
  local last = history.epochs[#history.epochs]
  trial:set("epochs", #history.epochs)
  mg.save(("%s/models/trial-%04d.safetensors"):format(out, trial.number), model:state_dict())
  return last.val_accuracy
end

local study = tune.Study {
  name = "fashion-mnist-mlp",
  -- what every trial shares; the searched parameters are the objective's
  space = { epochs = opts.epochs, batch_size = opts.batch_size },
  direction = "maximize",
  sampler = opts.sampler,
  pruner = tune.MedianPruner { startup_trials = 4, warmup_steps = 2 },
  path = out .. "/study.jsonl",
  seed = opts.seed,
}
local before = #study:trials()
local workers = opts.mpi and ranks - 1 or opts.workers
if rank == 1 then
  if before > 0 then print(("resuming %s: %d trials already finished"):format(study.path, before)) end
  print(("searching with %s on %d training / %d validation images, %d trials, %d %s")
        :format(opts.sampler, n_train, n_val, opts.trials, workers,
                opts.mpi and "worker ranks" or "workers"))
end
study:optimize(objective, { trials = opts.trials, workers = opts.mpi and "mpi" or workers,
                            logs = not opts.mpi and out .. "/logs" or nil })
if rank > 1 then return end   -- the results are rank 1's to show

print()
print(study:leaderboard { top = 10 })
study:plot(out .. "/study.svg", { title = "Fashion-MNIST MLP: hyperparameter search",
                                  ylabel = "validation accuracy" })
study:plot_params(out .. "/params.svg", { title = "Fashion-MNIST MLP: validation accuracy " ..
                                                 "against each hyperparameter" })
study:write_csv(out .. "/trials.csv")

-- ---- the best trial's model on the test set --------------------------------------------
local best = study:best()
if not best then
  print("no trial completed")
  os.exit(1)
end
local model = model_for(best.config.width, best.config.dropout)
model:load_state_dict(mg.load(("%s/models/trial-%04d.safetensors"):format(out, best.number)))
local test = train.evaluate(model, data.DataLoader(data.TensorDataset(x_test, y_test),
                                                   { batch_size = 1000 }),
                            { loss = F.cross_entropy, metrics = { "accuracy" } })
local parts = {}
for _, name in ipairs(study:param_names()) do
  local v = best.config[name]
  if v ~= nil then
    parts[#parts + 1] = name .. " = " .. (math.type(v) == "float" and ("%.4g"):format(v) or tostring(v))
  end
end
print()
print(("best: trial %d, validation accuracy %.2f%%: %s"):format(best.number, 100 * best.value,
                                                            table.concat(parts, ", ")))
print(("test accuracy of the best configuration: %.2f%% (%d test images)")
      :format(100 * test.accuracy, y_test:shape()[1]))
print(("charts: %s/study.svg, %s/params.svg   trials: %s/trials.csv   study: %s")
      :format(out, out, out, study.path))
