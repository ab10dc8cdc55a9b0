-- Help for moongrad.tune (hyperparameter search: studies, spaces,
-- samplers, pruners) and moongrad.dist (data-parallel training and
-- messages over MPI). The form of an entry is described in
-- moongrad/help.lua.
--
-- moongrad.dist is required only inside the instance functions and the
-- examples: requiring it loads MPI, and a moongrad built without MPI
-- refuses it.

-- A tiny study's trial object, made without touching the caller's random
-- numbers (each trial reseeds the generator before its objective runs).
local function tiny_trial()
  local mg = require "moongrad"
  local tune = require "moongrad.tune"
  local state = mg.get_rng_state()
  local got
  local study = tune.Study { space = { x = tune.uniform(0, 1) } }
  local ok, err = pcall(study.optimize, study, function(_, trial)
    got = trial
    return 0
  end, { trials = 1, workers = 0, verbose = false })
  mg.set_rng_state(state)
  if not ok then error(err, 0) end
  return got
end

local function a_space() return require("moongrad.tune").uniform(0, 1) end

return {
  ---------------------------------------------------------------------------
  -- moongrad.tune

  tune = {
    sig = 'local tune = require "moongrad.tune"',
    doc = [[Hyperparameter search driven by a validation metric, in the spirit of Optuna. A study draws configurations from a search space (tune.uniform, loguniform, int, logint, choice and plain fixed values), hands each to your objective function(config, trial), which trains, reports intermediate values with trial:report and returns the final metric; a sampler (grid, random, Gaussian-process Bayes, TPE) proposes the next configuration from the trials so far and a pruner (median rule, successive halving) stops trials that are clearly behind. Trials run in forked worker processes by default (a crash or error fails that trial only), in the calling process with workers = 0, or on the ranks of an mpirun job with workers = "mpi". With a path every finished trial is appended to a JSON-lines study file, and opening the same path again resumes the search.]],
    groups = { "Studies", "Search spaces", "Samplers", "Pruners", "Utilities" },
    example = [[
local study = tune.Study{space = {lr = tune.loguniform(1e-4, 1e-1), width = tune.choice{64, 128},
                                  epochs = 3}, direction = "maximize", seed = 1}
local best = study:optimize(function(config, trial)
  return -(math.log(config.lr, 10) + 2) ^ 2       -- stands in for a validation accuracy
end, {trials = 3, workers = 0, verbose = false})
print(best.number, best.config.width, best.config.epochs)   --> 2	128	3]],
    see = { "tune.Study", "tune.Trial", "tune.uniform", "tune.BayesSampler", "tune.MedianPruner" },
  },

  ["tune.Study"] = {
    sig = "tune.Study{[space = {...}] [, direction | directions] [, sampler] [, pruner] [, path] [, seed] [, name]}",
    doc = [[A hyperparameter search: the space, the sampler that proposes each trial's values, the pruner that stops trials early, and the record of every trial (numbered 1, 2, ...). Nothing runs until study:optimize(objective, opts). space maps parameter names to dimensions (tune.uniform, ...) or plain values that every configuration carries unchanged. Without a space (or with fixed values only) the objective asks for its parameters as it runs, define-by-run as in Optuna: trial:suggest_float, suggest_int, suggest_categorical; the two styles also mix. The grid sampler needs a space with dimensions. sampler and pruner take a name or an object (a custom sampler is any table with suggest(space, history, ctx), a custom pruner any table with should_prune(trial, others)). With path, opening a study whose file exists takes its trials, so optimize runs only the numbers still missing, and trial k proposes what it would have in an uninterrupted run; a file made with another direction, other dimensions or other fixed values is refused with an error naming the difference (use another path). Opening never writes: the file is written when optimize runs.

directions = {"minimize", "maximize", ...} makes a multi-objective study, as Optuna's create_study(directions=...): the objective returns a list of values, one per direction (study:tell takes the list), trials are compared by Pareto dominance, study:best_trials() is the Pareto front and optimize returns it, while study:best() raises. Such a study cannot prune (trial:report raises), and its sampler must search several objectives: "nsga2", "tpe", "random" or "grid". leaderboard shows the front, write_csv has value_1, value_2, ... and plot draws the front.]],
    opts = {
      { "space", "{}", "{name = dimension or fixed value, ...}; parameters the objective asks for with trial:suggest_* need not be in it" },
      { "direction", '"minimize"', '"minimize" or "maximize": which way the objective\'s value is better' },
      { "directions", "nil", 'a list of "minimize" / "maximize", one per objective: a multi-objective study (not with direction)' },
      { "sampler", '"random"', '"random", "grid", "bayes", "tpe", "cmaes", "nsga2" or a sampler object (tune.BayesSampler{...}, ...)' },
      { "pruner", "nil", 'nil or "none" (never prune), "median", "halving" or a pruner object (tune.MedianPruner{...}, ...)' },
      { "path", "nil", "the study file (JSON lines): each finished trial is appended to it, and reopening resumes" },
      { "seed", "0", "integer >= 0: keys the sampler's random streams and each trial's seed (trial.seed)" },
      { "name", "nil", "a label for the leaderboard's first line, the plot's title and the file's header" },
    },
    example = [[
local path = os.tmpname()
local space = {x = tune.uniform(-2, 2), act = tune.choice{"relu", "gelu"}, epochs = 3}
local study = tune.Study{space = space, path = path, seed = 1}
study:optimize(function(config) return (config.x - 1) ^ 2 end, {trials = 3, workers = 0, verbose = false})
local again = tune.Study{space = space, path = path, seed = 1}   -- reopened: its 3 trials are back
print(#again:trials(), again:best().config.epochs)               --> 3	3
os.remove(path)]],
    instance = function() return require("moongrad.tune").Study { space = { x = a_space() } } end,
    group = "Studies",
    see = { "tune.Study:optimize", "tune.Trial", "tune.uniform", "tune.RandomSampler", "tune.MedianPruner" },
  },

  ["tune.Study:optimize"] = {
    sig = "study:optimize(objective [, opts]) --> study:best()",
    doc = [[Runs trials until the budget is used: each calls objective(config, trial) with config the proposed values plus the space's fixed ones, after mg.manual_seed(trial.seed), and the objective returns a number (the metric to minimise or maximise; an infinite one is a value, as in Optuna). An error the objective raises, or a crash of its worker process, stops the search as in Optuna: the trial is recorded as failed, the trials running meanwhile finish, and optimize raises "study:optimize: trial n (params) raised an error: ..." with the objective's traceback; catch = true records such failures and goes on instead. A trial that returns NaN or something not a number, or runs past trial_timeout, is recorded as failed and the search goes on; one whose trial:should_prune() said true is recorded as pruned with its last report as value. Returns study:best() (nil when no trial completed). The study ends after trials trials, at timeout, or when a grid sampler's grid is done (which also caps trials); one of them must be given. Ctrl-C stops the search with an error saying how many trials finished; trials still running are dropped and run again when the study is resumed.

With one worker (the default) trials run one after another in this process: the objective's side effects stay, a debugger sees it, nothing is forked, and the caller's random state is put back after each trial. workers = n > 1 runs n at a time, each in a process forked for it (a crash there fails its trial); isolate = true, trial_timeout and logs fork a process per trial even with one worker.

workers = "mpi" (under mpirun -np N, N >= 2, the same script on every rank) runs the study on rank 1 and one trial at a time on each of ranks 2..N; optimize then returns rank 1's study:best() on every rank. ranks_per_trial = k runs each trial on a group of k ranks that is, inside the objective, the whole dist job (N - 1 must be a multiple of k), so train.fit{distributed = true} trains over the group; the group's first rank speaks for it. With "mpi", trial_timeout and logs are refused and a single rank is an error.]],
    opts = {
      { "trials", "nil", "how many trials the study has in all (numbers 1..trials); needed unless timeout is given or the sampler is a grid" },
      { "timeout", "nil", "seconds: no trial starts after this (running ones finish); alone, the study runs until then" },
      { "catch", "false", "true: a trial whose objective raises (or whose worker crashes) is recorded as failed and the search goes on, as Optuna's catch" },
      { "workers", "1", "trials at a time: 1 runs them in this process, n > 1 each in a forked process; 0 always in this process; \"mpi\" uses the other ranks of an mpirun job" },
      { "isolate", "false", "true: each trial in a process forked for it even with one worker (a crash fails only its trial)" },
      { "threads", "cpus // workers", "threads of each worker process (at least 1); in this process, the threads it has; with \"mpi\" the default is what dist.init() gives each rank" },
      { "trial_timeout", "nil", "seconds: a trial's process running longer is killed and its trial failed (forks a process per trial; refused with workers = 0)" },
      { "logs", "nil", "a directory (made if missing): each trial's stdout and stderr go to logs/trial-0001.log, ..., with an error's traceback (forks a process per trial)" },
      { "verbose", "true", "print one line per finished trial: its value or fate, its parameters and the best so far" },
      { "ranks_per_trial", "1", "with workers = \"mpi\": ranks per trial group" },
    },
    example = [[
local study = tune.Study{space = {x = tune.uniform(-2, 2)}, seed = 1}
local best = study:optimize(function(config, trial)
  trial:report(1, math.abs(config.x))      -- an intermediate value, step 1
  return (config.x - 1) ^ 2
end, {trials = 3, workers = 2, verbose = false})
print(best.number, best.value)             --> 2	1.7972088242051]],
    see = { "tune.Study", "tune.Trial", "tune.Study:best", "tune.Study:leaderboard" },
  },

  ["tune.Study:best"] = {
    sig = "study:best() --> record or nil",
    doc = [[The best complete trial (the smallest value when minimising, the largest when maximising; pruned and failed trials are not candidates), as a copy of its record: number, value, params (the searched values), config (params plus the fixed values, what the objective saw), intermediate ({{step, value}, ...} from trial:report), attrs (from trial:set), seed, seconds, started (UTC time) and state. nil when no trial has completed. Rebuild the winning model from best.config.]],
    example = [[
local study = tune.Study{space = {x = tune.int(1, 5), epochs = 2}, sampler = "grid", direction = "maximize"}
study:optimize(function(config) return -math.abs(config.x - 3) end, {workers = 0, verbose = false})
local best = study:best()
print(best.number, best.value, best.params.x, best.config.epochs)   --> 3	0.0	3	2]],
    see = { "tune.Study:leaderboard", "tune.Study:trials", "tune.Study:best_trials" },
  },

  ["tune.Study:best_trials"] = {
    sig = "study:best_trials() --> {record, ...}",
    doc = [[The Pareto front of a study with directions, as Optuna's best_trials: the complete trials that no other complete trial dominates (no worse in every objective and better in one, each objective taken in its direction), in number order, each a copy of its record with values (the list the objective returned), params and config as study:best gives. In a single-objective study, the complete trials that share the best value. Empty when no trial has completed.]],
    example = [[
local study = tune.Study{directions = {"minimize", "minimize"}, seed = 1}
local points = {{1, 4}, {2, 2}, {3, 3}, {4, 1}}   -- (3, 3) is beaten by (2, 2)
for i = 1, 4 do study:tell(study:ask(), points[i]) end
for _, t in ipairs(study:best_trials()) do io.write(t.number, " ") end print()   --> 1 2 4 ]],
    see = { "tune.Study", "tune.Study:best", "tune.NSGAIISampler" },
  },

  ["tune.Study:leaderboard"] = {
    sig = "study:leaderboard([{top = 10}]) --> text",
    doc = [[A table of the best complete trials as text, ready to print: a first line naming the study and counting its complete, pruned and failed trials, then one row per trial with its rank, number, value, searched parameters and seconds, best first (ties go to the lower trial number). top (an integer >= 1) limits the rows; with no complete trial the table says so.]],
    opts = { { "top", "10", "how many of the best complete trials to show" } },
    example = [[
local study = tune.Study{space = {x = tune.int(1, 4)}, sampler = "grid"}
study:optimize(function(config) return (config.x - 2) ^ 2 end, {workers = 0, verbose = false})
print(study:leaderboard{top = 2})]],
    see = { "tune.Study:best", "tune.Study:write_csv", "tune.Study:plot" },
  },

  ["tune.Study:trials"] = {
    sig = "study:trials() --> {record, ...}",
    doc = [[Every trial's record in number order: finished ones, and while optimize runs (from a callback or objective in this process) those still running. A record has number, state ("complete", "pruned", "failed" or "running"), params, value (nil for failed trials; a pruned trial's last report), intermediate, attrs, error, seconds, started and seed. The records are the study's own tables: read them, do not change them.]],
    example = [[
local study = tune.Study{space = {x = tune.int(1, 3)}, sampler = "grid"}
study:optimize(function(config)
  if config.x == 2 then error("out of memory") end
  return config.x
end, {catch = true, verbose = false})
for _, r in ipairs(study:trials()) do print(r.number, r.state, r.value) end]],
    see = { "tune.Study:counts", "tune.Study:write_csv" },
  },

  ["tune.Study:ask"] = {
    sig = "study:ask() --> trial",
    doc = [[Starts a new trial for a loop of one's own, as Optuna's ask: it is numbered after every trial the study holds, marked running, and its parameters come from the next enqueue_trial or else the sampler, which sees every trial told so far. The trial has trial.number, trial.config (the parameters plus the space's fixed values), trial.params and the objective's methods (report, should_prune, set). End it with study:tell. With a path, told trials go into the study file as optimize's do.]],
    example = [[
local study = tune.Study{space = {x = tune.uniform(-2, 2)}, seed = 1}
for _ = 1, 3 do
  local trial = study:ask()
  study:tell(trial, (trial.config.x - 1) ^ 2)
end
print(#study:trials(), study:best().value < 4)   --> 3	true]],
    see = { "tune.Study:tell", "tune.Study:enqueue_trial", "tune.Trial" },
  },

  ["tune.Study:tell"] = {
    sig = { "study:tell(trial, value) --> record", "study:tell(trial, nil, \"pruned\")", "study:tell(trial, why, \"failed\")" },
    doc = [[Ends a trial study:ask started, given as the trial or its number: with its value (a number; an infinite one counts, NaN fails the trial), as pruned (its last report stands as its value) or as failed with a message. Returns the trial's record. Telling a trial twice, one that was never asked, or a value that is not a number raises an error naming it.]],
    example = [[
local study = tune.Study{space = {x = tune.uniform(0, 1)}}
local a, b = study:ask(), study:ask()
study:tell(a, 0.5)
study:tell(b.number, "diverged", "failed")
print(study:trials()[1].state, study:trials()[2].state)   --> complete	failed]],
    see = { "tune.Study:ask" },
  },

  ["tune.Study:enqueue_trial"] = {
    sig = "study:enqueue_trial(params)",
    doc = [[Queues parameters for the next trial optimize runs or ask hands out, as Optuna's enqueue_trial: a known good configuration to start from, or one to check again. A parameter left out is the sampler's choice; each one given must be a name of the space with a value it holds, or the call raises naming it. The queue lives in the study object, not in its file.]],
    example = [[
local study = tune.Study{space = {lr = tune.loguniform(1e-4, 1e-1), width = tune.choice{64, 128}}}
study:enqueue_trial{lr = 3e-3, width = 128}
print(study:ask().config.lr)   --> 0.003]],
    see = { "tune.Study:ask", "tune.Study:optimize" },
  },

  ["tune.Study:param_names"] = {
    sig = "study:param_names() --> {name, ...}",
    doc = [[Every parameter the study searches: the space's dimensions, then the names objectives asked for with trial:suggest_* (define-by-run), each list sorted. These are the leaderboard's and the CSV's columns.]],
    example = [[
local study = tune.Study{space = {x = tune.uniform(0, 1)}}
local trial = study:ask()
trial:suggest_int("n", 1, 3)
study:tell(trial, 0)
print(table.concat(study:param_names(), " "))   --> x n]],
    see = { "tune.Study:leaderboard", "tune.Study:write_csv" },
  },

  ["tune.Study:counts"] = {
    sig = "study:counts() --> {complete =, pruned =, failed =, running =}",
    doc = [[How many of the study's trials are in each state. running is non-zero only while optimize runs; trials a resumed study has not run yet are not counted anywhere.]],
    example = [[
local study = tune.Study{space = {x = tune.choice{1, 5, 3}}, sampler = "grid",
                         pruner = tune.MedianPruner{startup_trials = 1}}
study:optimize(function(config, trial)
  trial:report(1, config.x)
  if trial:should_prune() then return config.x end
  return config.x
end, {workers = 0, verbose = false})
local c = study:counts()
print(c.complete, c.pruned, c.failed)   --> 1	2	0]],
    see = { "tune.Study:trials", "tune.Study:leaderboard" },
  },

  ["tune.Study:plot"] = {
    sig = "study:plot([path [, {title =, ylabel =, width =, height =}]]) --> svg text",
    doc = [[An SVG chart of the search: each complete trial's value against its number, pruned trials in grey at their last report, and the best value so far as a step line; for a study with two or more directions, every complete trial by its first two values with the Pareto front drawn over them (xlabel names the first). Writes the file when path is given (replacing it atomically) and returns the SVG text either way, so a notebook can show it. The title defaults to the study's name (or "Study") and direction.]],
    opts = {
      { "title", '"<name> (<direction>)"', "the chart's title" },
      { "ylabel", '"value"', "the y axis' label" },
      { "xlabel", '"trial"', "the x axis' label (a Pareto front's: the first value)" },
      { "width", "760", "width in pixels" },
      { "height", "480", "height in pixels" },
    },
    example = [[
local study = tune.Study{space = {x = tune.uniform(-2, 2)}, name = "toy", seed = 1}
study:optimize(function(config) return config.x ^ 2 end, {trials = 3, workers = 0, verbose = false})
local path = os.tmpname()
local svg = study:plot(path, {ylabel = "loss"})
print(svg:sub(1, 4))   --> <svg
os.remove(path)]],
    see = { "tune.Study:leaderboard", "tune.Study:write_csv" },
  },

  ["tune.Study:plot_params"] = {
    sig = "study:plot_params([path [, {title =, objective =, columns =, width =, height =}]]) --> svg text",
    doc = [[An SVG chart of what each parameter did, as Optuna's plot_slice: one panel per parameter (declared or asked for define-by-run), every complete trial's value against that parameter's value, on a log axis for log dimensions and by name for a choice, with the best trial ringed (in a study with directions, the Pareto front, by the value objective names). Writes the file when path is given (replaced atomically) and returns the SVG text either way. A study with no parameter is an error.]],
    opts = {
      { "title", '"<name>: value against each parameter"', "the chart's title" },
      { "objective", "1", "with directions: which value is the y axis" },
      { "columns", "3", "panels per row" },
      { "width", "380 per column", "width in pixels" },
      { "height", "340 per row", "height in pixels" },
    },
    example = [[
local study = tune.Study{direction = "maximize", seed = 1}
study:optimize(function(_, trial)
  local lr = trial:suggest_float("lr", 1e-4, 1e-1, {log = true})
  return -(math.log(lr, 10) + 2) ^ 2
end, {trials = 8, verbose = false})
local svg = study:plot_params()
print(svg:find(">lr (log scale)<", 1, true) ~= nil)   --> true]],
    see = { "tune.Study:plot", "plot.panels", "tune.Study:leaderboard" },
  },

  ["tune.Study:write_csv"] = {
    sig = "study:write_csv(path) --> csv text",
    doc = [[Writes one row per trial to the CSV file path (replaced atomically) and returns the text: columns number, state, value (value_1, value_2, ... for a study with directions), seconds, the searched parameters (sorted by name), attr_<key> for every key set with trial:set, and error. Floats are written exactly (they read back to the same number); cells holding commas, quotes or newlines are quoted.]],
    example = [[
local study = tune.Study{space = {x = tune.int(1, 2)}, sampler = "grid"}
study:optimize(function(config, trial) trial:set("epochs", 3); return config.x end,
               {workers = 0, verbose = false})
local path = os.tmpname()
print((study:write_csv(path):match("^[^\n]*")))   --> number,state,value,seconds,x,attr_epochs,error
os.remove(path)]],
    see = { "tune.Study:trials", "tune.Trial:set" },
  },

  ["tune.Trial"] = {
    sig = "trial  -- the objective's second argument: function(config, trial)",
    doc = [[The handle an objective gets for its trial. It carries trial.number (1, 2, ...), trial.config (the configuration, as the first argument) and trial.seed (the generator was seeded with it before the objective started, so a trial's random numbers do not depend on which worker runs it). Through it the objective reports intermediate values (trial:report), asks whether to stop (trial:should_prune) and stores extra results with the record (trial:set); in a worker process these become messages to the study, which answers prune questions at once with every trial in view.]],
    example = [[
local study = tune.Study{space = {x = tune.uniform(0, 1)}, seed = 3}
study:optimize(function(config, trial)
  print(trial.number, trial.config == config)   --> 1	true
  return config.x
end, {trials = 1, workers = 0, verbose = false})]],
    instance = tiny_trial,
    group = "Studies",
    see = { "tune.Trial:report", "tune.Trial:should_prune", "tune.Trial:set", "tune.TrialCallback" },
  },

  ["tune.Trial:suggest_float"] = {
    sig = "trial:suggest_float(name, low, high [, {log = true} | {step = s}]) --> number",
    doc = [[Define-by-run, as Optuna's suggest_float: the value of the float parameter name for this trial, in [low, high] (spread evenly in log space with log = true, low > 0; one of low, low + s, ..., high with step = s, where high - low must be a whole number of steps; step and log together raise, as in Optuna). The study's sampler chooses it from the trials that asked for the same name over the same range (TPE and random search one parameter at a time, as Optuna's default TPE does; the Bayesian sampler proposes the parameters every complete trial asked for together), so a parameter asked for only on one branch of the objective is searched only where that branch runs. Asking again in the same trial gives the same value; asking with another range, or for a name the study's space declares, raises. The value also goes into trial.config and the trial's record (params, the leaderboard, the CSV, the study file). A forked or MPI trial asks the study over its channel.]],
    example = [[
local study = tune.Study{sampler = "tpe", seed = 1}
study:optimize(function(_, trial)
  local lr = trial:suggest_float("lr", 1e-5, 1e-1, {log = true})
  local kind = trial:suggest_categorical("kind", {"mlp", "cnn"})
  local width = kind == "mlp" and trial:suggest_int("width", 16, 256) or 64   -- only for mlp
  return (math.log(lr, 10) + 3) ^ 2 + math.abs(width - 128) / 128
end, {trials = 10, verbose = false})
print(study:best().params.lr > 0)   --> true]],
    see = { "tune.Trial:suggest_int", "tune.Trial:suggest_categorical", "tune.Study" },
  },

  ["tune.Trial:suggest_int"] = {
    sig = "trial:suggest_int(name, low, high [, {log = true} | {step = s}]) --> integer",
    doc = [[Define-by-run: the integer parameter name in low..high inclusive (spread evenly in log space with log = true, low >= 1; one of low, low + s, ..., high with a whole step = s), chosen as trial:suggest_float describes.]],
    example = [[
local study = tune.Study{}
local trial = study:ask()
local layers = trial:suggest_int("layers", 1, 4)
local width = trial:suggest_int("width", 32, 256, {step = 32})
print(layers >= 1 and layers <= 4, trial.config.layers == layers, width % 32)   --> true	true	0
study:tell(trial, layers)]],
    see = { "tune.Trial:suggest_float" },
  },

  ["tune.Trial:suggest_categorical"] = {
    sig = "trial:suggest_categorical(name, {a, b, ...}) --> one of them",
    doc = [[Define-by-run: the categorical parameter name, one of the listed numbers, strings or booleans, chosen as trial:suggest_float describes.]],
    example = [[
local study = tune.Study{seed = 2}
local trial = study:ask()
local act = trial:suggest_categorical("act", {"relu", "gelu", "tanh"})
print(act == "relu" or act == "gelu" or act == "tanh")   --> true
study:tell(trial, 0)]],
    see = { "tune.Trial:suggest_float" },
  },

  ["tune.Trial:report"] = {
    sig = "trial:report(step, value)",
    doc = [[Records an intermediate value of the metric (say the validation accuracy after epoch step) with the trial; pruners compare trials step by step, and the last report stands as a pruned trial's value. step must be an integer and value a number, in the study's direction (a maximised study reports values where larger is better). Report the same steps in every trial so pruners can compare them.]],
    example = [[
local study = tune.Study{space = {lr = tune.loguniform(1e-3, 1e-1)}, seed = 1}
study:optimize(function(config, trial)
  for epoch = 1, 3 do trial:report(epoch, config.lr / epoch) end
  return config.lr / 3
end, {trials = 2, workers = 0, verbose = false})
print(#study:trials()[1].intermediate)   --> 3]],
    see = { "tune.Trial:should_prune", "tune.MedianPruner" },
  },

  ["tune.Trial:should_prune"] = {
    sig = "trial:should_prune() --> boolean",
    doc = [[Asks the study's pruner whether this trial is clearly behind the others, judged on what it has reported so far; without a pruner it is always false. When it returns true the objective should stop training and return (any number): the trial is recorded as pruned, with its last report as its value. Call it after every trial:report, since successive halving judges a trial only at the report that first reaches each rung.]],
    example = [[
local study = tune.Study{space = {x = tune.choice{1, 5}}, sampler = "grid",
                         pruner = tune.MedianPruner{startup_trials = 1}}
study:optimize(function(config, trial)
  for step = 1, 3 do
    trial:report(step, config.x * step)
    if trial:should_prune() then return 0 end
  end
  return config.x * 3
end, {workers = 0, verbose = false})
print(study:trials()[2].state)   --> pruned]],
    see = { "tune.Trial:report", "tune.MedianPruner", "tune.SuccessiveHalvingPruner" },
  },

  ["tune.Trial:set"] = {
    sig = "trial:set(key, value)",
    doc = [[Keeps something with the trial's record, in record.attrs[key] and the study file (the epochs trained, a test metric, a checkpoint's path). key must be a string and value JSON-able data (numbers, strings, booleans, tables of them); anything else raises in the objective, where the mistake is. study:write_csv gives each key a column attr_<key>.]],
    example = [[
local study = tune.Study{space = {x = tune.uniform(0, 1)}, seed = 2}
study:optimize(function(config, trial)
  trial:set("epochs_trained", 4)
  return config.x
end, {trials = 1, workers = 0, verbose = false})
print(study:best().attrs.epochs_trained)   --> 4]],
    see = { "tune.Trial:report", "tune.Study:write_csv" },
  },

  ["tune.TrialCallback"] = {
    sig = "tune.TrialCallback(trial [, {monitor = \"val_loss\"}]) --> callback",
    doc = [[A train.fit callback for use inside an objective: after every epoch it reports the epoch's logs[monitor] to the trial (trial:report(epoch, value)) and, when trial:should_prune() says so, sets ctx.stop so fit ends after that epoch; the objective then returns its metric as usual. monitor must match the study's direction: the default, val_loss, serves a "minimize" study, and a "maximize" study must name its metric (val_accuracy, say), or the callback raises. It raises if the monitored metric is not in the epoch's logs (give fit a val loader, or monitor a train_ metric), and if its first argument is not the objective's trial.]],
    opts = { { "monitor", '"val_loss" when minimizing', "the key of fit's epoch logs to report (val_loss, val_accuracy, train_loss, ...); required when the study maximizes" } },
    example = [[
local study = tune.Study{space = {lr = tune.loguniform(1e-3, 1e-1)}, direction = "maximize", seed = 1}
study:optimize(function(config, trial)
  local cb = tune.TrialCallback(trial, {monitor = "val_accuracy"})
  -- train.fit{..., callbacks = {cb}} calls this after each epoch:
  local ctx = {epoch = 1, logs = {val_accuracy = 0.8}}
  cb.on_epoch_end(ctx)
  print(ctx.stop)   --> nil
  return 0.8
end, {trials = 1, workers = 0, verbose = false})]],
    group = "Studies",
    see = { "tune.Trial:report", "tune.Trial:should_prune" },
  },

  ["tune.cpu_count"] = {
    sig = "tune.cpu_count() --> integer",
    doc = [[The number of CPUs this process may run on (its affinity mask, as taskset or mpirun's binding set it; the online CPUs when that is unknown), at least 1. A natural workers count for study:optimize; each worker then gets cpus // workers threads.]],
    example = [[
local n = tune.cpu_count()
print(n >= 1)   --> true]],
    group = "Utilities",
    see = { "tune.Study:optimize" },
  },

  -- Spaces -------------------------------------------------------------------

  ["tune.Space"] = {
    sig = "d = tune.uniform(...) | tune.loguniform(...) | tune.int(...) | tune.logint(...) | tune.choice{...}",
    doc = [[A dimension of a search space, what tune.uniform, loguniform, int, logint and choice return. It maps its values onto the unit interval [0, 1] and back (linearly or logarithmically for numbers, each integer and each choice owning an equal slice); samplers work in that unit cube. Its fields are kind ("uniform", ...), low and high (numbers) or choices (a list). Anything in a space that is not a dimension (a number, string, boolean or table) is a fixed value every configuration carries; a function or userdata there is an error.]],
    example = [[
local d = tune.loguniform(1e-3, 1e-1)
print(d.kind, d:describe())                  --> loguniform	loguniform(0.001, 0.1)
print(d:to_unit(1e-2), d:contains(0.5))      --> 0.5	false]],
    instance = a_space,
    group = "Search spaces",
    see = { "tune.uniform", "tune.choice", "tune.Study" },
  },

  ["tune.Space:to_unit"] = {
    sig = "d:to_unit(v) --> u in [0, 1]",
    doc = [[Where value v sits in the unit interval: linearly between low and high (logarithmically for loguniform and logint; an integer at the middle of its slice), choice i of n at (i - 0.5) / n. Numbers outside the range clamp to 0 or 1; a value that is not one of a choice's choices raises. A dimension with low == high maps to 0.5.]],
    example = [[
print(tune.uniform(0, 10):to_unit(2.5))         --> 0.25
print(tune.choice{"a", "b"}:to_unit("b"))       --> 0.75]],
    see = { "tune.Space:from_unit" },
  },

  ["tune.Space:from_unit"] = {
    sig = "d:from_unit(u) --> value",
    doc = [[The value at u in the unit interval, the inverse of to_unit: every u gives a valid value (u outside [0, 1] is clamped; integers are rounded and kept within low..high; choice i owns the slice [(i - 1) / n, i / n)).]],
    example = [[
print(tune.int(1, 4):from_unit(0.6))              --> 3
print(string.format("%.4g", tune.loguniform(1e-3, 1e-1):from_unit(0.5)))   --> 0.01]],
    see = { "tune.Space:to_unit", "tune.Space:sample" },
  },

  ["tune.Space:sample"] = {
    sig = "d:sample(u) --> value",
    doc = [[A value drawn from the dimension's prior, given a uniform random number u in [0, 1): the same as from_unit(u), so log dimensions are spread evenly in log space. The caller supplies u so that samplers stay deterministic for a given seed.]],
    example = [[
print(tune.logint(1, 100):sample(0.5))   --> 7]],
    see = { "tune.Space:from_unit" },
  },

  ["tune.Space:grid"] = {
    sig = "d:grid([name]) --> {value, ...}",
    doc = [[Every value of the dimension, as grid search tries them: a choice's choices in order, or the integers low..high. A float dimension (uniform, loguniform) has no finite grid and raises, as does an integer range of more than 10000 values; name (the parameter's) only goes into that error message.]],
    example = [[
print(table.concat(tune.int(2, 5):grid(), " "))        --> 2 3 4 5
print(#tune.choice{"sgd", "adamw"}:grid())             --> 2]],
    see = { "tune.GridSampler" },
  },

  ["tune.Space:contains"] = {
    sig = "d:contains(v) --> boolean",
    doc = [[Whether v is a value of the dimension: one of a choice's choices, or a number in low..high (an integral one for int and logint). A resumed study uses it to check that the recorded trials fit the space.]],
    example = [[
local d = tune.int(1, 3)
print(d:contains(2), d:contains(2.5), d:contains(4))   --> true	false	false]],
    see = { "tune.Space:describe" },
  },

  ["tune.Space:describe"] = {
    sig = "d:describe() --> text",
    doc = [[The dimension as text, the way a script writes it ("uniform(0, 0.5)", 'choice{"relu", "gelu"}'). The study file's header stores these, which is how a reopened study notices a changed space.]],
    example = [[
print(tune.choice{"relu", "gelu", 3}:describe())   --> choice{"relu", "gelu", 3}
print(tune.int(1, 8):describe())                    --> int(1, 8)]],
    see = { "tune.Space" },
  },

  ["tune.uniform"] = {
    sig = "tune.uniform(low, high [, {step = s}])",
    doc = [[A float dimension spread evenly over [low, high] (dropout, momentum). low and high must be finite numbers with low <= high; the values are floats even for integer bounds. With step = s (Optuna's suggest_float step) the values are low, low + s, ..., high, each equally likely and each a point of the grid sampler's grid; high - low must be a whole number of steps (an error says so rather than shortening the range). Like every dimension it takes exactly its arguments: anything more raises rather than being ignored.]],
    example = [[
local d = tune.uniform(0, 0.5)
print(d:describe(), d:sample(0.2))   --> uniform(0, 0.5)	0.1
local s = tune.uniform(0, 0.5, {step = 0.25})
print(s:describe(), s:sample(0.5))   --> uniform(0, 0.5, step 0.25)	0.25]],
    instance = a_space,
    methods_of = "tune.Space",
    group = "Search spaces",
    see = { "tune.loguniform", "tune.Space" },
  },

  ["tune.loguniform"] = {
    sig = "tune.loguniform(low, high)",
    doc = [[A float dimension spread evenly in log space over [low, high], for scales that matter by orders of magnitude (learning rates, weight decay): 1e-4..1e-3 is as likely as 1e-2..1e-1. low must be > 0.]],
    example = [[
local d = tune.loguniform(1e-4, 1e-1)
print(string.format("%.3g", d:sample(1 / 3)))   --> 0.001]],
    instance = function() return require("moongrad.tune").loguniform(1e-3, 1) end,
    methods_of = "tune.Space",
    group = "Search spaces",
    see = { "tune.uniform", "tune.logint" },
  },

  ["tune.int"] = {
    sig = "tune.int(low, high [, {step = s}])",
    doc = [[An integer dimension over low..high, both included, each integer equally likely (layers, kernel size). low and high must be integers (1.0 counts) with low <= high. With step = s (a whole number; high - low a multiple of it) the values are low, low + s, ..., high. Grid search tries every one of them.]],
    example = [[
local d = tune.int(1, 3)
print(d:sample(0.0), d:sample(0.5), d:sample(0.99))   --> 1	2	3]],
    instance = function() return require("moongrad.tune").int(1, 4) end,
    methods_of = "tune.Space",
    group = "Search spaces",
    see = { "tune.logint", "tune.choice" },
  },

  ["tune.logint"] = {
    sig = "tune.logint(low, high)",
    doc = [[An integer dimension over low..high spread evenly in log space (layer widths, batch sizes): 16..32 is as likely as 256..512. low must be >= 1 and both bounds integers.]],
    example = [[
local d = tune.logint(16, 1024)
print(d:sample(0.5), d:contains(100))   --> 126	true]],
    instance = function() return require("moongrad.tune").logint(1, 64) end,
    methods_of = "tune.Space",
    group = "Search spaces",
    see = { "tune.int", "tune.loguniform" },
  },

  ["tune.choice"] = {
    sig = "tune.choice{a, b, ...}",
    doc = [[A dimension taking one of the listed values, each equally likely under the prior: numbers, strings or booleans, each listed once (an empty list, a duplicate, a table or a non-finite number raises). The order is the grid's order; TPESampler models a choice as categories, while BayesSampler gives it one coordinate (choice i owns slice i), so for it neighbouring choices count as similar.]],
    example = [[
local d = tune.choice{"relu", "gelu", "silu"}
print(d:sample(0.5), #d.choices)   --> gelu	3]],
    instance = function() return require("moongrad.tune").choice { "a", "b" } end,
    methods_of = "tune.Space",
    group = "Search spaces",
    see = { "tune.int", "tune.GridSampler" },
  },

  -- Samplers -----------------------------------------------------------------

  ["tune.RandomSampler"] = {
    sig = 'tune.RandomSampler() -- or sampler = "random"',
    doc = [[Random search, the default sampler: each trial draws every value independently from its dimension's prior. Trial k's draws depend only on the study's seed and k, so a resumed or parallel study proposes the same configurations. Takes no options (an options table must be empty).]],
    example = [[
local study = tune.Study{space = {x = tune.uniform(0, 1)}, sampler = tune.RandomSampler(), seed = 7}
study:optimize(function(config) return config.x end, {trials = 3, workers = 0, verbose = false})
print(study:counts().complete)   --> 3]],
    group = "Samplers",
    see = { "tune.GridSampler", "tune.BayesSampler", "tune.TPESampler" },
  },

  ["tune.GridSampler"] = {
    sig = 'tune.GridSampler() -- or sampler = "grid"',
    doc = [[Grid search: trial k takes the k-th combination of every dimension's values, the last parameter name (in sorted order) varying fastest. Only choice and integer dimensions have a grid (a float dimension raises at optimize, as does a grid of more than 10 million combinations); the number of combinations is the study's budget, so optimize needs no trials count and runs at most that many. Takes no options.]],
    example = [[
local study = tune.Study{space = {a = tune.int(1, 2), b = tune.choice{"x", "y"}}, sampler = tune.GridSampler()}
study:optimize(function(config) return config.a end, {workers = 0, verbose = false})
local seen = {}
for _, r in ipairs(study:trials()) do seen[#seen + 1] = r.params.a .. r.params.b end
print(table.concat(seen, " "))   --> 1x 1y 2x 2y]],
    group = "Samplers",
    see = { "tune.Space:grid", "tune.RandomSampler" },
  },

  ["tune.BayesSampler"] = {
    sig = 'tune.BayesSampler([opts]) -- or sampler = "bayes"',
    doc = [[Bayesian optimisation: the first trials are rows of a Latin hypercube over the unit cube (every dimension's range covered evenly, keyed by the seed); after them a Gaussian process with a Matern-5/2 kernel is fitted to the finished trials' values and the next trial is the candidate of largest expected improvement. Half of the random candidates come from a trust region around the best trial (TuRBO's box, halved after a streak of trials that do not improve, doubled after a streak that do, replayed from the history), which keeps a many-moded search refining its best basin. Pruned trials count at their last report, failed ones are left out, and trials running on other workers are assumed to come out at the GP's mean so parallel workers spread out. A configuration already tried is not proposed again while another candidate remains. Each suggestion refits the GP: about 15 ms up to 60 trials and 85 ms at 200 trials in 6 dimensions on one thread, negligible next to training.]],
    opts = {
      { "initial", "max(5, 2 * dims)", "trials taken from the Latin hypercube before the GP (integer >= 2)" },
      { "candidates", "1000", "random points scored by expected improvement each trial" },
      { "local_points", "40", "perturbations scored around each of the best trials, then around the best candidates (>= 0)" },
      { "local_scale", "0.1", "standard deviation of those perturbations in the unit cube, in (0, 1] (the second round uses a quarter)" },
      { "trust_region", "true", "draw half of the random candidates in a trust region around the best trial, sized by TuRBO's rule (false: all from the whole space)" },
      { "xi", "0.01", "exploration margin in standard deviations of the values (>= 0; larger explores more)" },
      { "restarts", "2", "starting points of the GP's hyperparameter fit (1, 2 or 3): each takes 8 iterations, then the best goes on" },
      { "iterations", "80", "most L-BFGS iterations per start of that fit (it usually converges in 20 to 40)" },
    },
    example = [[
local study = tune.Study{space = {x = tune.uniform(-2, 2)}, seed = 1,
                         sampler = tune.BayesSampler{initial = 2, candidates = 100, iterations = 20}}
local best = study:optimize(function(config) return (config.x - 1) ^ 2 end,
                            {trials = 4, workers = 0, verbose = false})
print(best.value < 0.1)   --> true]],
    group = "Samplers",
    see = { "tune.TPESampler", "tune.RandomSampler", "tune.Study" },
  },

  ["tune.TPESampler"] = {
    sig = 'tune.TPESampler([opts]) -- or sampler = "tpe"',
    doc = [[The tree-structured Parzen estimator (Bergstra et al. 2011, with Optuna's defaults): once initial trials have finished, they are ranked (complete ones by value, then pruned ones by how far they got) and split into a good and a bad group; a Parzen density is built from each group and the sampler keeps, among candidates drawn from the good density, the one with the largest ratio good/bad. Integers and stepped dimensions are scored by the mass on their value's slice. Cheaper per suggestion than BayesSampler.

By default each dimension is modelled and chosen on its own. multivariate = true models them jointly, as Optuna's TPESampler(multivariate=True) (BOHB's kernel density): each density is a mixture of product kernels, one per observation over every dimension (Gaussians of width 0.2 n^(-1/(d+4)) of each range, Optuna's categorical kernel for choices) plus the prior, and whole points are drawn and scored, so parameters that are good only together (a narrow diagonal valley, a learning rate tied to a batch size) are found where the independent mode scatters. The sampler then has relative = true: in a define-by-run study it is asked for all the parameters the finished trials share at once.

In a study with directions it is MOTPE, as Optuna 3.1's TPESampler: the good group is whole Pareto fronts while they fit in gamma(n), the front that does not fit filled by greedy hypervolume subset selection, and good trials weigh by their hypervolume contribution. Failed trials are left out; constant_liar counts running ones as bad in both kinds of study.]],
    opts = {
      { "initial", "10", "finished trials (complete or pruned; complete with directions) below which suggestions come from the prior" },
      { "candidates", "24", "draws from the good density per dimension, or of whole points when multivariate" },
      { "gamma", "min(ceil(0.1 n), 25)", "size of the good group: a fraction in (0, 1] of the n ranked trials, or a function n -> count" },
      { "prior_weight", "1", "weight of the prior component against 1 per observation (> 0)" },
      { "bandwidth", '"neighbours"', '"neighbours" (each kernel as wide as the gap to its neighbours) or "scott" (one width for all); independent dimensions only' },
      { "multivariate", "false", "model the dimensions jointly (product kernels); sets relative = true" },
      { "constant_liar", "false", "count trials still running on other workers as bad, to spread parallel suggestions" },
    },
    example = [[
local study = tune.Study{space = {x = tune.uniform(-2, 2), act = tune.choice{"relu", "gelu"}}, seed = 1,
                         sampler = tune.TPESampler{initial = 2}}
study:optimize(function(config) return (config.x - 1) ^ 2 end, {trials = 4, workers = 0, verbose = false})
print(study:counts().complete)   --> 4

-- x and y are good only together (a narrow diagonal valley): model them jointly
local function valley(multivariate)
  local s = tune.Study{space = {x = tune.uniform(-5, 5), y = tune.uniform(-5, 5)}, seed = 1,
                       sampler = tune.TPESampler{multivariate = multivariate}}
  return s:optimize(function(c) return (c.x + c.y - 1) ^ 2 + 100 * (c.x - c.y) ^ 2 end,
                    {trials = 30, workers = 0, verbose = false}).value
end
print(valley(true) < valley(false))   --> true

-- two objectives: every x here is Pareto-optimal, so all trials are on the front
local multi = tune.Study{space = {x = tune.uniform(0, 1)}, directions = {"minimize", "minimize"},
                         sampler = "tpe", seed = 1}
multi:optimize(function(c) return {c.x, (1 - c.x) ^ 2} end, {trials = 15, workers = 0, verbose = false})
print(#multi:best_trials())      --> 15]],
    group = "Samplers",
    see = { "tune.BayesSampler", "tune.RandomSampler", "tune.Study" },
  },

  ["tune.CmaEsSampler"] = {
    sig = 'tune.CmaEsSampler([opts]) -- or sampler = "cmaes"',
    doc = [[CMA-ES, the covariance matrix adaptation evolution strategy (Hansen 2016), with the update of the cmaes library that Optuna's CmaEsSampler uses. The numeric parameters are searched jointly in the unit cube (log dimensions logarithmically, integers on equal slices): each generation of popsize trials is drawn from a Gaussian, ranked by value, and moves its mean toward the best half while the step size and the covariance adapt, so a rotated or badly scaled valley is followed. Draws outside the space are redrawn, then clipped. Choice parameters are drawn from the prior, as are all parameters when fewer than two numeric ones are searched. The sampler keeps no state: each suggestion replays the history, cutting the trials that count (complete ones, and pruned ones at their last value with consider_pruned) into generations of popsize in trial-number order; failed, running and pruned trials take no place, so the next trial fills it, and an infinite value ranks last. Replaying costs about 3 ms at 200 trials in 6 dimensions, 15 ms at 1000. On integers alone it converges onto one configuration and keeps proposing it.]],
    opts = {
      { "sigma0", "1/6", "initial step size, as a fraction of each dimension's range, in (0, 1]" },
      { "popsize", "4 + floor(3 ln d)", "trials per generation for d numeric parameters (integer >= 2)" },
      { "initial", "0", "trials drawn from the prior before CMA-ES starts; the best of them is the starting mean" },
      { "x0", "the centre", "{name = value}: the starting mean; missing names start at their centre" },
      { "consider_pruned", "false", "let pruned trials count at their last reported value" },
    },
    example = [[
local study = tune.Study{space = {x = tune.uniform(-2, 2), y = tune.loguniform(1e-3, 10),
                                  act = tune.choice{"relu", "gelu"}},
                         seed = 1, sampler = tune.CmaEsSampler{popsize = 6}}
local best = study:optimize(function(config) return (config.x - 1) ^ 2 + math.log(config.y) ^ 2 end,
                            {trials = 60, workers = 0, verbose = false})
print(best.value < 0.01)   --> true]],
    group = "Samplers",
    see = { "tune.TPESampler", "tune.BayesSampler", "tune.RandomSampler" },
  },

  ["tune.NSGAIISampler"] = {
    sig = 'tune.NSGAIISampler([opts]) -- or sampler = "nsga2"',
    doc = [[NSGA-II, the elitist non-dominated sorting genetic algorithm (Deb et al. 2002), with the defaults of Optuna's NSGAIISampler: for studies with directions (it searches every objective at once) and for single-objective ones alike. The complete trials are cut, in trial-number order, into generations of population_size; the first generation comes from the prior. Each full generation, pooled with its own parents, is sorted into Pareto fronts and the best fronts become the next parents, the front that does not fit cut by crowding distance (the most isolated points kept). A child is bred from two parents, each the winner of a binary tournament (better front, then larger crowding distance), by uniform or simulated binary crossover (with probability crossover_prob; otherwise it copies one parent), then each parameter is resampled from its prior with probability mutation_prob. Log and integer dimensions cross in the unit cube, so children always lie in the space. Failed, pruned and running trials take no place in a generation (the next complete trial fills it), as in Optuna run one trial at a time. The sampler keeps no state: each suggestion replays the history, about 13 ms at 500 trials and 30 ms at 1000 with two objectives and the default population. Optuna's constraints_func is not offered.]],
    opts = {
      { "population_size", "50", "trials per generation (integer >= 2)" },
      { "mutation_prob", "1 / parameters", "chance of resampling each parameter of a child from its prior, in [0, 1]" },
      { "crossover", '"uniform"', '"uniform" (each parameter from one parent or the other) or "sbx" (simulated binary crossover of numeric parameters; choices cross uniformly)' },
      { "crossover_prob", "0.9", "chance a child is a crossover of two parents rather than a copy of one, in [0, 1]" },
      { "swapping_prob", "0.5", "uniform crossover's chance of taking each parameter from the second parent, in [0, 1]" },
      { "eta", "20 (2 for one objective)", 'SBX distribution index (> 0; larger keeps children nearer their parents); only with crossover = "sbx"' },
    },
    example = [[
-- ZDT1 in two dimensions: the Pareto front is y = 0, f2 = 1 - sqrt(f1)
local study = tune.Study{space = {x = tune.uniform(0, 1), y = tune.uniform(0, 1)}, seed = 1,
                         directions = {"minimize", "minimize"},
                         sampler = tune.NSGAIISampler{population_size = 10}}
local front = study:optimize(function(config)
  local g = 1 + 9 * config.y
  return {config.x, g * (1 - math.sqrt(config.x / g))}
end, {trials = 60, workers = 0, verbose = false})
print(#front == #study:best_trials())   --> true]],
    group = "Samplers",
    see = { "tune.Study", "tune.TPESampler", "tune.RandomSampler" },
  },

  ["tune.MedianPruner"] = {
    sig = 'tune.MedianPruner([opts]) -- or pruner = "median"',
    doc = [[The median stopping rule (Google Vizier, with Optuna's semantics): at a trial's latest reported step, prune it when the best value it has reported so far is worse than the median of what the completed trials reported at that same step. Nothing is pruned before startup_trials trials have completed, at a step below warmup_steps, or when fewer than min_trials completed trials reported that step. All options are integers.]],
    opts = {
      { "startup_trials", "5", "completed trials needed before any pruning" },
      { "warmup_steps", "0", "a trial is never pruned at a step below this" },
      { "interval_steps", "1", "consult the rule only when the trial's number of reports is a multiple of this" },
      { "min_trials", "1", "completed trials that must have reported the step" },
    },
    example = [[
local study = tune.Study{space = {x = tune.choice{1, 5, 3}}, sampler = "grid",
                         pruner = tune.MedianPruner{startup_trials = 1}}
study:optimize(function(config, trial)
  for step = 1, 3 do
    trial:report(step, config.x * step)
    if trial:should_prune() then return 0 end
  end
  return config.x * 3
end, {workers = 0, verbose = false})
print(study:counts().complete, study:counts().pruned)   --> 1	2]],
    group = "Pruners",
    see = { "tune.SuccessiveHalvingPruner", "tune.NopPruner", "tune.Trial:should_prune" },
  },

  ["tune.SuccessiveHalvingPruner"] = {
    sig = 'tune.SuccessiveHalvingPruner([opts]) -- or pruner = "halving"',
    doc = [[Asynchronous successive halving (ASHA, with Optuna's semantics). Rung k sits at step min_resource * reduction_factor ^ (min_early_stopping_rate + k), with the defaults steps 1, 3, 9, 27, ...; at the report that first reaches a rung, a trial goes on only if its value there is among the best 1/reduction_factor of all trials that reached the rung (whatever their state), or, while fewer than reduction_factor trials have, only if it is the best so far. A rung is judged once, so call trial:should_prune() after every report; there is no top rung (the objective decides how long a promoted trial trains).]],
    opts = {
      { "min_resource", "1", "the step of the first rung (a number >= 1)" },
      { "reduction_factor", "3", "eta: ratio of consecutive rung steps and inverse of the fraction promoted (integer >= 2)" },
      { "min_early_stopping_rate", "0", "skips the first rungs (integer >= 0)" },
    },
    example = [[
local study = tune.Study{space = {x = tune.choice{1, 5, 3}}, sampler = "grid",
                         pruner = tune.SuccessiveHalvingPruner{reduction_factor = 2}}
study:optimize(function(config, trial)
  for step = 1, 4 do
    trial:report(step, config.x * step)
    if trial:should_prune() then return 0 end
  end
  return config.x * 4
end, {workers = 0, verbose = false})
print(study:counts().complete, study:counts().pruned)   --> 1	2]],
    group = "Pruners",
    see = { "tune.MedianPruner", "tune.Trial:should_prune" },
  },

  ["tune.NopPruner"] = {
    sig = 'tune.NopPruner() -- or pruner = "none"',
    doc = [[A pruner that never prunes: what a study uses when it is given no pruner. trial:should_prune() then always returns false. Useful to switch pruning off where a pruner object is expected.]],
    example = [[
local study = tune.Study{space = {x = tune.uniform(0, 1)}, pruner = tune.NopPruner()}
study:optimize(function(config, trial)
  trial:report(1, 1e9)
  return trial:should_prune() and 1 or 0
end, {trials = 2, workers = 0, verbose = false})
print(study:best().value)   --> 0.0]],
    group = "Pruners",
    see = { "tune.MedianPruner" },
  },

  ---------------------------------------------------------------------------
  -- moongrad.dist

  dist = {
    sig = 'local dist = require "moongrad.dist"',
    doc = [[Data-parallel training and messages over MPI (Open MPI). The same script runs on every rank, launched with mpirun -np N (add --oversubscribe for more ranks than cores, --allow-run-as-root as root); ranks are numbered 1..size, rank 1 being the main one that logs and saves. dist.init() starts MPI, the collectives (barrier, broadcast, allreduce, allgather) exchange contiguous float32, float64 or int64 tensors, and dist.shard plus dist.DistributedDataParallel make a training loop data-parallel; train.fit{distributed = true} does all of it for you. Every rank must call each collective in the same order with tensors of the same size and dtype; a mismatch is the same error on every rank rather than a hang. Without mpirun the script is a single rank (rank 1 of 1) and everything works, which is how these examples run. require raises, saying what to install, when moongrad was built without MPI.]],
    groups = { "Setup", "Collectives", "Training", "Messages", "Groups", "Statistics" },
    example = [[
local rank, size = dist.init()            -- here one process: rank 1 of 1
local loss = dist.allreduce(0.25, "mean") -- the mean over ranks of a number
if dist.is_main() then print(rank, size, loss) end   --> 1	1	0.25]],
    see = { "dist.init", "dist.allreduce", "dist.DistributedDataParallel", "dist.shard" },
  },

  ["dist.mpi_version"] = {
    sig = "dist.mpi_version",
    doc = [[A string naming the version of the MPI standard the loaded MPI library implements, such as "MPI 3.1" (Open MPI 4 and 5). It is read when the module loads, before dist.init().]],
    example = [[
print(dist.mpi_version)   -- e.g. MPI 3.1]],
    group = "Setup",
    see = { "dist.init" },
  },

  ["dist.init"] = {
    sig = "dist.init() --> rank, size",
    doc = [[Starts MPI (serialized threading: MPI is called from the Lua thread only) and returns this process's rank, 1-based, and the number of ranks. Calling it again returns the same and does nothing else. Unless OMP_NUM_THREADS is set, it gives each rank cpus // (ranks on this machine) threads, so ranks do not fight over cores (mpirun binds one or two ranks to one core each: add --bind-to none to use more). Run without mpirun, the process is a job of one rank. MPI is finalised at exit; after dist.finalize() it cannot start again.]],
    example = [[
local rank, size = dist.init()
print(rank, size, dist.is_initialized())   --> 1	1	true
print(dist.init())                         --> 1	1]],
    group = "Setup",
    see = { "dist.rank", "dist.size", "dist.finalize", "dist.is_initialized" },
  },

  ["dist.is_initialized"] = {
    sig = "dist.is_initialized() --> boolean",
    doc = [[Whether dist.init() has run and MPI has not been finalised since: true between dist.init() and dist.finalize(). Needs no init, so a library can ask before using the collectives.]],
    example = [[
if not dist.is_initialized() then dist.init() end
print(dist.is_initialized())   --> true]],
    group = "Setup",
    see = { "dist.init", "dist.finalize" },
  },

  ["dist.finalize"] = {
    sig = "dist.finalize()",
    doc = [[Ends MPI; the collectives and messages raise afterwards, and MPI cannot be started again in this process. Calling it is optional: a process that called dist.init() finalises at exit by itself (and a rank exiting with an error while the others wait for it ends the job after a few seconds instead of hanging). Before dist.init() it does nothing. The example does not call it, since that would end MPI for the rest of this session.]],
    example = [[
dist.init()
dist.barrier()                -- the script's work ...
-- dist.finalize()            -- ... then, optionally, as the very last dist call
print(dist.is_initialized())  --> true]],
    group = "Setup",
    see = { "dist.init", "dist.is_initialized" },
  },

  ["dist.rank"] = {
    sig = "dist.rank() --> integer",
    doc = [[This process's rank, 1..dist.size() (MPI's rank + 1). Inside dist.with_group it is the rank within the group. Raises "call dist.init() first" before dist.init().]],
    example = [[
dist.init()
print(dist.rank())   --> 1   (under mpirun -np 2: 1 on one process, 2 on the other)]],
    group = "Setup",
    see = { "dist.size", "dist.is_main", "dist.local_rank" },
  },

  ["dist.size"] = {
    sig = "dist.size() --> integer",
    doc = [[The number of ranks in the job (mpirun's -np), or in the group inside dist.with_group. Raises before dist.init().]],
    example = [[
dist.init()
print(dist.size())   --> 1]],
    group = "Setup",
    see = { "dist.rank", "dist.local_size" },
  },

  ["dist.is_main"] = {
    sig = "dist.is_main() --> boolean",
    doc = [[True on rank 1, the rank that should print, write checkpoints and save plots, and also in a process that never called dist.init(), so one script can use it whether it runs under mpirun or not. Inside dist.with_group it is true on the group's first rank.]],
    example = [[
dist.init()
if dist.is_main() then print("rank 1 saves the model") end   --> rank 1 saves the model]],
    group = "Setup",
    see = { "dist.rank" },
  },

  ["dist.local_rank"] = {
    sig = "dist.local_rank() --> integer",
    doc = [[This rank's place, 1-based, among the ranks running on the same machine (sharing memory), for choosing a per-machine resource or a directory. Found once, at dist.init() (or dist.split for a group). Raises before dist.init().]],
    example = [[
dist.init()
print(dist.local_rank(), dist.local_size())   --> 1	1]],
    group = "Setup",
    see = { "dist.local_size", "dist.rank" },
  },

  ["dist.local_size"] = {
    sig = "dist.local_size() --> integer",
    doc = [[How many ranks of the job (or of the group, inside dist.with_group) run on this machine. dist.init() divides the machine's CPUs by it to set each rank's threads. Raises before dist.init().]],
    example = [[
dist.init()
print(dist.local_size())   --> 1]],
    group = "Setup",
    see = { "dist.local_rank", "dist.init" },
  },

  ["dist.barrier"] = {
    sig = "dist.barrier()",
    doc = [[Waits until every rank (of the group, inside dist.with_group) has called it: for example so that no rank reads a file before rank 1 has written it. A collective: every rank must call it.]],
    example = [[
dist.init()
dist.barrier()
print("every rank got here")   --> every rank got here]],
    group = "Collectives",
    see = { "dist.broadcast" },
  },

  ["dist.broadcast"] = {
    sig = { "dist.broadcast(t [, root]) --> t", "dist.broadcast(s [, root]) --> string" },
    doc = [[Copies rank root's tensor into every rank's t, in place, and returns t; root is a rank 1..size, default 1. t must be a contiguous float32, float64 or int64 tensor of the same size and dtype on every rank. Given a string instead, it returns root's string on every rank (the others' strings are ignored and may differ in length), handy for sharing a run name or a config chosen on rank 1.]],
    example = [[
dist.init()
local w = mg.tensor({dist.rank(), 0})     -- differs from rank to rank
dist.broadcast(w)                         -- now rank 1's everywhere
print(w:totable()[1])                     --> 1.0
print(dist.broadcast("run-42"))           --> run-42]],
    group = "Collectives",
    see = { "dist.allreduce", "dist.allgather" },
  },

  ["dist.allreduce"] = {
    sig = { "dist.allreduce(t [, op]) --> t", "dist.allreduce(x [, op]) --> number" },
    doc = [[Combines t over the ranks, elementwise, in place: afterwards every rank's t holds the sum ("sum", the default), the mean ("mean": the sum divided by size), the "max" or the "min" of all ranks' t, and t is returned. t must be a contiguous float32, float64 or int64 tensor of the same size and dtype on every rank; "mean" needs a float tensor. Given a number instead, it returns the combined number (a float), for a loss or a count. Not differentiable: it writes into t's data outside autograd.]],
    example = [[
dist.init()
local g = mg.tensor({1, 2, 3})
dist.allreduce(g, "mean")                  -- in place
print(table.concat(g:totable(), " "))      --> 1.0 2.0 3.0
print(dist.allreduce(5))                   --> 5.0   (5 * size under mpirun)]],
    group = "Collectives",
    see = { "dist.allgather", "dist.broadcast", "dist.DistributedDataParallel" },
  },

  ["dist.allgather"] = {
    sig = "dist.allgather(t) --> tensor",
    doc = [[Every rank's t, stacked in rank order into a new tensor of shape {size, ...t's shape} on every rank (row i is rank i's t). t must have the same size and dtype (float32, float64 or int64) on every rank; a strided t is made contiguous first.]],
    example = [[
dist.init()
local all = dist.allgather(mg.tensor({dist.rank(), 10}))
print(all:shape()[1], all:shape()[2])   --> 1	2]],
    group = "Collectives",
    see = { "dist.allreduce" },
  },

  ["dist.shard"] = {
    sig = "dist.shard(loader) --> loader",
    doc = [[This rank's share of a DataLoader: a copy of loader whose every global batch is the next size * batch_size samples and this rank takes every size-th of them (PyTorch's DistributedSampler split), so loader's batch_size is the per-rank batch. A shuffled order is rank 1's, sent to every rank each epoch, and every rank gets the same number of batches (a short last share may be empty). Iterating it is a collective (each epoch starts by sending rank 1's order and seeds to every rank), so all ranks must iterate it together; dist.shard raises before dist.init() or for something that is not a DataLoader.]],
    example = [[
dist.init()
local ds = data.TensorDataset(mg.arange(8))
local loader = dist.shard(data.DataLoader(ds, {batch_size = 2, shuffle = true}))
print(loader:len())   --> 4]],
    group = "Training",
    see = { "dist.DistributedDataParallel", "data.DataLoader" },
  },

  ["dist.DistributedDataParallel"] = {
    sig = "dist.DistributedDataParallel(model [, {bucket_mb = 25, overlap = false}]) --> ddp",
    doc = [=[Wraps a module for data-parallel training: it checks that every rank holds the same parameter shapes and copies rank 1's parameters and buffers to every rank; ddp(x) calls model(x). After each backward, ddp:sync_gradients() replaces every rank's gradients by their mean over the ranks (packed into buckets of bucket_mb MiB, one allreduce each), so the optimizers on all ranks take the same step. With overlap = true each bucket starts its allreduce during backward as soon as its gradients are complete; that pays off over a network, but not over shared memory on one machine, and then every backward must be followed by sync_gradients (accumulate inside ddp:no_sync). Raises before dist.init() and when ranks hold different models. Its methods:

  ddp:sync_gradients([weight [, extra]])  each grad becomes the sum over ranks of
      weight * grad (weight: 1 / size, the mean); extra, a list of numbers, is
      summed in the same messages and returned
  ddp:no_sync(fn, ...)        fn(...): backward passes that accumulate unsent
  ddp:prepare([weight])       the weight the next overlapped backward sends with
  ddp:broadcast_parameters()  rank 1's parameters and buffers to every rank
  ddp:broadcast_buffers()     rank 1's buffers (batch-norm statistics)
  ddp:buckets()               buckets overlapping backward (0 without overlap)]=],
    opts = {
      { "bucket_mb", "25", "size of each gradient bucket in MiB (a number > 0)" },
      { "overlap", "false", "start each bucket's allreduce during backward" },
    },
    example = [[
dist.init()
local model = nn.Linear(3, 1)
local ddp = dist.DistributedDataParallel(model)
local opt = optim.SGD(model:parameters(), {lr = 0.1})
ddp(mg.randn(4, 3)):pow(2):mean():backward()
ddp:sync_gradients()          -- every rank: the mean gradient over the ranks
opt:step()
print(ddp:buckets())          --> 0]],
    group = "Training",
    see = { "dist.shard", "dist.allreduce" },
  },

  ["dist.send"] = {
    sig = "dist.send(dest, s [, tag])",
    doc = [[Sends the string s to rank dest (1..size of the whole job, even inside dist.with_group), with an integer tag (default 0; up to at least 32767). Point to point: no other rank takes part. It returns at once for a short string and when dest receives it for a long one, so a process sending a long string to itself waits for ever. Messages from one rank with one tag arrive in the order sent. moongrad.tune's MPI search uses these (its tag is 4242).]],
    example = [[
dist.init()
dist.send(1, "hello", 7)       -- to rank 1: here, this very process
print(dist.recv())             --> hello	1	7]],
    group = "Messages",
    see = { "dist.recv", "dist.probe" },
  },

  ["dist.probe"] = {
    sig = "dist.probe() --> source, tag | nil",
    doc = [[The source rank and tag of a message waiting for this rank, from any rank, or nil when there is none. It never waits, so a rank can poll (and sleep in between) instead of spinning on a core in a blocking dist.recv. The message stays queued until dist.recv takes it.]],
    example = [[
dist.init()
print(dist.probe())            --> nil
dist.send(1, "ping", 3)
print(dist.probe())            --> 1	3
print((dist.recv(1)))          --> ping]],
    group = "Messages",
    see = { "dist.recv", "dist.send" },
  },

  ["dist.recv"] = {
    sig = "dist.recv([source]) --> s, source, tag",
    doc = [[Waits for the next message from rank source (any rank when nil) and returns its string, the rank it came from and its tag; ranks are the whole job's, 1-based. It takes messages of any tag. Waits for ever when nothing comes: use dist.probe to check first.]],
    example = [[
dist.init()
dist.send(dist.rank(), "42", 1)
local s, from, tag = dist.recv()
print(tonumber(s), from, tag)   --> 42	1	1]],
    group = "Messages",
    see = { "dist.send", "dist.probe" },
  },

  ["dist.split"] = {
    sig = "dist.split(color) --> group | nil",
    doc = [[Splits the job into groups: every rank of the current job calls it (a collective), and the ranks passing the same color, an integer >= 0, form one group, in rank order; a rank passing nil joins none and gets nil. The group has fields rank (this rank's place in it, 1-based) and size; run code over it with dist.with_group. Under mpirun -np 4, dist.split((dist.rank() - 1) // 2) makes groups {1, 2} and {3, 4}.]],
    example = [[
dist.init()
local group = dist.split((dist.rank() - 1) // 2)
print(group.rank, group.size)   --> 1	1]],
    group = "Groups",
    see = { "dist.with_group" },
  },

  ["dist.with_group"] = {
    sig = "dist.with_group(group, fn, ...) --> fn(...)",
    doc = [[Runs fn(...) with group (from dist.split) as the whole job and returns its results: inside, dist.rank() is 1..group.size, dist.size() the group's size, is_main() true on its first rank, and the collectives, dist.shard, DistributedDataParallel and train.fit{distributed = true} involve the group's ranks only. The world comes back when fn returns or raises (the error is passed on). dist.send and dist.recv keep using the world's ranks. moongrad.tune runs a trial on a group of ranks this way.]],
    example = [[
dist.init()
local group = dist.split(0)
print(dist.with_group(group, function(x)
  return dist.rank(), dist.size(), dist.allreduce(x)
end, 2))                        --> 1	1	2.0]],
    group = "Groups",
    see = { "dist.split", "tune.Study:optimize" },
  },

  ["dist.stats"] = {
    sig = "dist.stats() --> {seconds =, bytes =, calls =, early_buckets =}",
    doc = [[What the collectives have cost this process since the start or the last dist.reset_stats(): seconds spent in them, bytes sent (allgather counts twice its input), the number of calls, and early_buckets, the gradient buckets started during backward (overlap = true). The messages (send, recv) are not counted. Works without dist.init() (everything is zero then).]],
    example = [[
dist.init()
dist.reset_stats()
dist.allreduce(mg.zeros(256))    -- 256 float32 values
local s = dist.stats()
print(s.calls, s.bytes)          --> 1	1024.0]],
    group = "Statistics",
    see = { "dist.reset_stats" },
  },

  ["dist.reset_stats"] = {
    sig = "dist.reset_stats()",
    doc = [[Sets the counters of dist.stats() back to zero, to measure one part of a run (an epoch, a benchmark).]],
    example = [[
dist.init()
dist.barrier()
dist.reset_stats()
print(dist.stats().calls)   --> 0]],
    group = "Statistics",
    see = { "dist.stats" },
  },
}
