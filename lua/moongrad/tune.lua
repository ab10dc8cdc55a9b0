-- moongrad.tune: hyperparameter search driven by validation metrics.
--
--   local tune = require "moongrad.tune"
--   local study = tune.Study{
--     space = {lr = tune.loguniform(1e-4, 1e-1), width = tune.choice{128, 256, 512},
--              dropout = tune.uniform(0, 0.5), epochs = 5},
--     direction = "maximize", sampler = "bayes", pruner = "median",
--     path = "runs/tune/study.jsonl", seed = 1}
--   study:optimize(function(config, trial)
--     ... build and train a model from config ...
--     for epoch = 1, config.epochs do
--       train_one_epoch(); local acc = validate()
--       trial:report(epoch, acc)
--       if trial:should_prune() then return acc end
--     end
--     return acc
--   end, {trials = 40, workers = tune.cpu_count()})
--   print(study:leaderboard())
--   study:plot("runs/tune/study.svg")
--   local best = study:best()   --> {number, value, config, params, ...}
--
-- Spaces: tune.uniform, loguniform, int, logint, choice, and plain values
-- (moongrad.tune.space), or define-by-run: trial:suggest_float and friends
-- inside the objective. Samplers: "grid", "random", "bayes" (a Gaussian
-- process with expected improvement), "tpe" (tree-structured Parzen
-- estimators), "cmaes" (CMA-ES), "nsga2" (NSGA-II), or tune.GridSampler{},
-- RandomSampler{}, BayesSampler{...}, TPESampler{...}, CmaEsSampler{...},
-- NSGAIISampler{...} with options. tune.Study{directions = {...}} makes a
-- multi-objective study: study:best_trials() is its Pareto front. Pruners: "median" (the median stopping
-- rule), "halving" (asynchronous successive halving), or
-- tune.MedianPruner{...}, SuccessiveHalvingPruner{...}. Call
-- trial:should_prune() after every trial:report (successive halving judges
-- a trial at the report that reaches each rung).
--
-- Trials run in this process, or with workers > 1 in forked worker
-- processes (moongrad.tune.runner). An error the objective raises stops
-- the search and is raised again with the trial's parameters, unless
-- catch = true records it and goes on. study:ask() and study:tell(trial,
-- value) drive a study from a loop of one's own; study:enqueue_trial(params)
-- queues parameters to try. With a path, each trial is appended to the
-- study file as it ends, and opening the same path again resumes the study.
-- Under mpirun, workers = "mpi" runs the study on rank 1 and its trials on
-- ranks 2..N instead (moongrad.tune.mpi_runner).
local space = require "moongrad.tune.space"
local samplers = require "moongrad.tune.samplers"
local pruners = require "moongrad.tune.pruners"
local study = require "moongrad.tune.study"

local tune = {}

tune.uniform = space.uniform
tune.loguniform = space.loguniform
tune.int = space.int
tune.logint = space.logint
tune.choice = space.choice

tune.GridSampler = samplers.GridSampler
tune.RandomSampler = samplers.RandomSampler
tune.MedianPruner = pruners.MedianPruner
tune.NopPruner = pruners.NopPruner

-- Loaded on first use: they pull in the GP and Parzen estimator code.
function tune.BayesSampler(opts) return require("moongrad.tune.bayes").BayesSampler(opts) end
function tune.TPESampler(opts) return require("moongrad.tune.tpe").TPESampler(opts) end
function tune.CmaEsSampler(opts) return require("moongrad.tune.cmaes").CmaEsSampler(opts) end
function tune.NSGAIISampler(opts) return require("moongrad.tune.nsga2").NSGAIISampler(opts) end
function tune.SuccessiveHalvingPruner(opts)
  return require("moongrad.tune.halving").SuccessiveHalvingPruner(opts)
end

-- tune.Study{space =, direction =, sampler =, pruner =, path =, seed =, name =}
function tune.Study(opts) return study.new(opts) end

-- tune.TrialCallback(trial, {monitor = "val_accuracy"}): a train.fit
-- callback that reports the monitored metric after every epoch and stops
-- training (ctx.stop) when the pruner says so; the objective then returns.
function tune.TrialCallback(trial, opts)
  local util = require "moongrad.util"
  local o = util.check_options(opts, "tune.TrialCallback", {monitor = true}, 2)
  if type(trial) ~= "table" or type(trial.report) ~= "function" then
    error("tune.TrialCallback: expects the objective's trial as argument #1", 2)
  end
  local monitor = o.monitor
  if monitor == nil then
    if trial.direction == "maximize" then
      error("tune.TrialCallback: the study maximizes, so say which metric to report: " ..
            "{monitor = \"val_accuracy\"} (the default, val_loss, is one to minimize)", 2)
    end
    monitor = "val_loss"
  end
  return {
    on_epoch_end = function(ctx)
      local v = ctx.logs[monitor]
      if type(v) ~= "number" then
        error(string.format("tune.TrialCallback: the monitored metric '%s' is not in the epoch's "
                            .. "logs; give fit a val loader or monitor a train_ metric", monitor), 0)
      end
      trial:report(ctx.epoch, v)
      if trial:should_prune() then ctx.stop = true end
    end,
  }
end

-- The CPUs this process may use: a natural number of workers.
function tune.cpu_count() return require("moongrad")._cpu_count() end

return tune
