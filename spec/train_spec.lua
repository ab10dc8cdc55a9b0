-- moongrad.train: metrics, the fit loop, its callbacks, progress output and
-- exact resume. Specs run from the repository root.

local BUILD = require "support.build"
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local train = require "moongrad.train"
local metrics = require "moongrad.train.metrics"

-- A stand-in loader over tensors x [N, ...], y [N]: fixed order, batches of
-- bs, with the loader protocol fit uses (iter, #, state_dict).
local Fake = {}
Fake.__index = Fake
Fake.__len = function(self) return (self.n + self.bs - 1) // self.bs end
local function FakeLoader(x, y, bs)
  return setmetatable({x = x, y = y, bs = bs, n = x:shape()[1], position = 0}, Fake)
end
function Fake:iter()
  local i = self.position * self.bs
  return function()
    if i >= self.n then self.position = 0 return nil end
    local len = math.min(self.bs, self.n - i)
    local xb, yb = self.x:narrow(1, i + 1, len), self.y:narrow(1, i + 1, len)
    i = i + len
    return xb, yb
  end
end
function Fake:state_dict() return {position = self.position} end
function Fake:load_state_dict(sd) self.position = sd.position end

local function tmpdir()
  local p = io.popen("mktemp -d")
  local d = p:read("l")
  p:close()
  return d
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- A two-class problem on 4 features: the class is the sign of feature 1.
local function toy_data(n, seed)
  mg.manual_seed(seed or 1)
  local x = mg.randn(n, 4)
  local y = x:narrow(2, 1, 1):reshape(n):gt(0):long() + 1
  return x, y
end

-- A model whose validation loss (under mse_loss against zero targets) is
-- scripted: in eval mode it outputs sqrt(val[k]) on the k-th evaluation.
-- In training mode it is y = x * w, so its weight moves every epoch.
local Scripted = nn.Module:extend("Scripted")
function Scripted:init(val)
  self.w = mg.tensor({1.0}):requires_grad()
  self.val, self.evals = val, 0
end
function Scripted:forward(x)
  if self.training then return x * self.w end
  return mg.full(x:shape(), math.sqrt(self.val[self.evals]))
end
function Scripted:eval()
  self.evals = self.evals + 1
  return nn.Module.eval(self)
end

local function scripted_fit(val, extra)
  local net = Scripted(val)
  local x = mg.ones(4, 1)
  local o = {train = FakeLoader(x, mg.zeros(4, 1), 2), val = FakeLoader(x, mg.zeros(4, 1), 4),
             loss = F.mse_loss, optimizer = optim.SGD(net, {lr = 0.1}), epochs = #val,
             progress = "quiet", callbacks = {}}
  local weights = {}
  o.callbacks[1] = {on_epoch_end = function(ctx) weights[ctx.epoch] = ctx.model.w:item() end}
  for k, v in pairs(extra or {}) do
    if k == "callbacks" then
      for _, cb in ipairs(v) do o.callbacks[#o.callbacks + 1] = cb end
    else
      o[k] = v
    end
  end
  local history = train.fit(net, o)
  return history, net, weights
end

describe("train metrics", function()
  local scores = mg.tensor({{0.1, 0.9, 0.0}, {2, 1, 0}, {0, 0, 1}, {1, 3, 2}, {5, 4, 3}})
  local targets = mg.tensor({2, 1, 2, 3, 3}, "int64")

  it("counts accuracy as argmax against int64 targets", function()
    local acc = metrics.Accumulator{"accuracy"}
    acc:add(scores, targets, 0.5)
    assert.are.equal(2 / 5, acc:result().accuracy)
  end)

  it("counts top-k as the target among the k highest scores", function()
    local acc = metrics.Accumulator{"top2", "top3"}
    acc:add(scores, targets, 0.5)
    assert.are.equal(4 / 5, acc:result().top2)
    assert.are.equal(1, acc:result().top3)
  end)

  it("uses the argmax of soft targets as the class", function()
    local soft = mg.tensor({{0, 0.7, 0.3}, {0.6, 0.4, 0}, {0.1, 0.1, 0.8}, {0.5, 0, 0.5}})
    local acc = metrics.Accumulator{"accuracy"}
    acc:add(scores:narrow(1, 1, 4), soft, 1.0)
    -- argmax of the rows of soft: 2, 1, 3, 1 (first of a tie); of scores: 2, 1, 3, 2
    assert.are.equal(3 / 4, acc:result().accuracy)
  end)

  it("weights each batch's loss and metrics by its number of samples", function()
    local acc = metrics.Accumulator{"accuracy"}
    acc:add(scores:narrow(1, 1, 3), targets:narrow(1, 1, 3), 1.0)   -- 2 of 3 right
    acc:add(scores:narrow(1, 4, 1), targets:narrow(1, 4, 1), 5.0)   -- wrong
    local r = acc:result()
    assert.are.equal((3 * 1.0 + 5.0) / 4, r.loss)
    assert.are.equal(2 / 4, r.accuracy)
  end)

  it("accepts a custom metric {name, fn}, weighted by batch size", function()
    local acc = metrics.Accumulator{{name = "mean_out", fn = function(out) return out:mean() end}}
    acc:add(mg.tensor({{1}, {3}}), mg.tensor({1, 1}, "int64"), 0)
    acc:add(mg.tensor({{6}}), mg.tensor({1}, "int64"), 0)
    assert.are.equal((2 * 2 + 6) / 3, acc:result().mean_out)
  end)

  it("rejects an unknown metric and a target of the wrong shape", function()
    assert.has_error(function() metrics.Accumulator{"precision"} end,
      'metrics: unknown metric precision (known: "loss", "accuracy", "top5"-style "topK", ' ..
      'or {name = ..., fn = ...})')
    local acc = metrics.Accumulator{"accuracy"}
    assert.has_error(function() acc:add(scores, mg.zeros(5, 2), 0) end,
      "accuracy: targets must be int64 class ids [N] or soft targets shaped like the " ..
      "scores [5,3], got float32 [5,2]")
  end)

  it("evaluate matches the loss and accuracy of the whole set at once", function()
    local x, y = toy_data(50)
    local net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    net:train()
    local r = train.evaluate(net, FakeLoader(x, y, 16), {metrics = {"accuracy"}})
    local out = mg.no_grad(function() return net(x) end)
    assert.is_true(math.abs(r.loss - F.cross_entropy(out, y):item()) < 1e-6)
    assert.are.equal(out:argmax(2):eq(y):sum():item() / 50, r.accuracy)
    assert.is_true(net.training)   -- restored
  end)
end)

describe("train.fit", function()
  it("trains, records per-epoch metrics and per-step learning rates", function()
    local x, y = toy_data(64)
    local net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    local opt = optim.Adam(net, {lr = 0.02})
    local h = train.fit(net, {train = FakeLoader(x, y, 16), val = FakeLoader(x, y, 32),
                              optimizer = opt, epochs = 6, metrics = {"accuracy"},
                              progress = "quiet"})
    assert.are.equal(6, #h.epochs)
    assert.are.equal(24, #h.lr)
    assert.are.equal(24, #h.batch_loss)
    assert.are.same({"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                     "lr", "time"}, h.columns)
    assert.is_true(h.epochs[6].val_loss < h.epochs[1].val_loss)
    assert.is_true(h.epochs[6].val_accuracy > 0.9)
    for _, rec in ipairs(h.epochs) do
      for _, c in ipairs(h.columns) do assert.are.equal("number", type(rec[c])) end
    end
  end)

  it("measures on the validation set what it measures in training: a regression needs no accuracy", function()
    local x = mg.randn(32, 3)
    local y = x:sum(2)
    local net = nn.Sequential(nn.Linear(3, 1), nn.Flatten(1))
    local h = train.fit(net, {train = FakeLoader(x, y, 8), val = FakeLoader(x, y, 16),
                              loss = F.mse_loss, optimizer = optim.SGD(net, {lr = 0.05}),
                              epochs = 2, progress = "quiet"})
    assert.are.same({"epoch", "train_loss", "val_loss", "lr", "time"}, h.columns)
    assert.is_nil(h.epochs[2].val_accuracy)
    assert.is_true(h.epochs[2].val_loss < h.epochs[1].val_loss)
  end)

  it("steps the scheduler after every batch by default", function()
    local x, y = toy_data(12)
    local net = nn.Linear(4, 2)
    local opt = optim.SGD(net, {lr = 1.0})
    local h = train.fit(net, {train = FakeLoader(x, y, 4), optimizer = opt, epochs = 2,
                              scheduler = sched.StepLR(opt, {step_size = 1, gamma = 0.5}),
                              progress = "quiet"})
    assert.are.same({1, 0.5, 0.25, 0.125, 0.0625, 0.03125}, h.lr)
    assert.are.equal(0.25, h.epochs[1].lr)     -- the lr of the epoch's last step
  end)

  it("steps the scheduler once per epoch with scheduler_step = \"epoch\"", function()
    local x, y = toy_data(12)
    local net = nn.Linear(4, 2)
    local opt = optim.SGD(net, {lr = 1.0})
    local h = train.fit(net, {train = FakeLoader(x, y, 4), optimizer = opt, epochs = 3,
                              scheduler = sched.StepLR(opt, {step_size = 1, gamma = 0.5}),
                              scheduler_step = "epoch", progress = "quiet"})
    assert.are.same({1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25}, h.lr)
  end)

  it("steps ReduceLROnPlateau per epoch with the validation loss", function()
    local net = Scripted({1.0, 2.0, 3.0, 0.5})
    local x = mg.ones(4, 1)
    local opt = optim.SGD(net, {lr = 1.0})
    local h = train.fit(net, {train = FakeLoader(x, mg.zeros(4, 1), 4),
                              val = FakeLoader(x, mg.zeros(4, 1), 4), loss = F.mse_loss,
                              optimizer = opt, epochs = 4, progress = "quiet",
                              scheduler = sched.ReduceLROnPlateau(opt, {patience = 0, factor = 0.5})})
    -- epoch 1 sets the best; epochs 2 and 3 are worse: halved after each
    assert.are.same({1.0, 1.0, 0.5, 0.25}, h.lr)
  end)

  it("clips the gradient norm before each step", function()
    local w = mg.tensor({0.0, 0.0}):requires_grad()
    local model = setmetatable({}, {__call = function(_, x) return x * w end})
    model.parameters = function() return {w} end
    local x = mg.tensor({{300.0, 400.0}})
    local loss = function(out) return out:sum() end
    train.fit(model, {train = FakeLoader(x, mg.zeros(1), 1), loss = loss, epochs = 1,
                      optimizer = optim.SGD({w}, {lr = 1.0}), clip_grad_norm = 1.0,
                      progress = "quiet"})
    -- the gradient (300, 400) has norm 500; clipped to norm 1 it is (0.6, 0.8)
    local v = w:totable()
    assert.is_true(math.abs(v[1] + 0.6) < 1e-5 and math.abs(v[2] + 0.8) < 1e-5)
  end)

  it("stops at a non-finite loss with a message naming the epoch and batch", function()
    local x, y = toy_data(40)
    local net = nn.Linear(4, 2)
    local calls = 0
    local loss = function(out, yb)
      calls = calls + 1
      if calls == 7 then return mg.tensor(0 / 0) end
      if calls == 8 then return mg.tensor(math.huge) end
      return F.cross_entropy(out, yb)
    end
    local o = {train = FakeLoader(x, y, 8), optimizer = optim.SGD(net, {lr = 0.1}), epochs = 3,
               loss = loss, progress = "quiet"}
    assert.has_error(function() train.fit(net, o) end,
      "fit: loss is nan at epoch 2, batch 2; lower the learning rate or check the data")
    assert.has_error(function() train.fit(net, o) end,
      "fit: loss is inf at epoch 1, batch 1; lower the learning rate or check the data")
  end)

  it("rejects unknown options and a missing optimizer", function()
    local x, y = toy_data(8)
    assert.has_error(function()
      train.fit(nn.Linear(4, 2), {train = FakeLoader(x, y, 4), epoch = 3})
    end)
    assert.has_error(function() train.fit(nn.Linear(4, 2), {train = FakeLoader(x, y, 4)}) end,
      "fit: needs an optimizer (optimizer = optim.Adam(model, {...}))")
  end)
end)

describe("EarlyStopping", function()
  -- Drives the callback with a fake ctx over scripted epoch logs; returns
  -- the epoch at which it asked to stop (nil: never).
  local function drive(es, values, key)
    local ctx = {history = {}, stop = false, model = nil}
    es.on_train_begin(ctx)
    for epoch, v in ipairs(values) do
      ctx.epoch, ctx.logs = epoch, {epoch = epoch, [key or "val_loss"] = v}
      es.on_epoch_end(ctx)
      if ctx.stop then return epoch end
    end
  end

  it("stops after patience epochs without improvement", function()
    local seq = {1.0, 0.8, 0.85, 0.9, 0.79, 0.8, 0.81, 0.82}
    assert.are.equal(4, drive(train.EarlyStopping{patience = 2, restore_best = false}, seq))
    local es = train.EarlyStopping{patience = 3, restore_best = false}
    assert.are.equal(8, drive(es, seq))
    assert.are.equal(5, es.best_epoch)
    assert.are.equal(0.79, es.best)
  end)

  it("counts only improvements larger than min_delta", function()
    local seq = {1.0, 0.8, 0.85, 0.9, 0.79, 0.8, 0.81, 0.82}
    local es = train.EarlyStopping{patience = 3, min_delta = 0.02, restore_best = false}
    assert.are.equal(5, drive(es, seq))
    assert.are.equal(2, es.best_epoch)
  end)

  it("maximises accuracy metrics (mode auto) and honours an explicit mode", function()
    local acc = {0.5, 0.6, 0.59, 0.58}
    assert.are.equal(4, drive(train.EarlyStopping{monitor = "val_accuracy", patience = 2,
                                                  restore_best = false}, acc, "val_accuracy"))
    assert.is_nil(drive(train.EarlyStopping{monitor = "val_score", mode = "max", patience = 3,
                                            restore_best = false}, acc, "val_score"))
  end)

  it("names the monitored metric when the logs lack it", function()
    local es = train.EarlyStopping{}
    assert.has_error(function() drive(es, {1.0}, "train_loss") end,
      "EarlyStopping: the monitored metric 'val_loss' is not in the epoch's logs " ..
      "(have: train_loss); give fit a val loader or monitor a train_ metric")
  end)

  it("stops fit at the right epoch and restores the best weights", function()
    local es = train.EarlyStopping{patience = 2}
    -- (squares of float32-exact numbers: the model outputs their square roots)
    local h, net, weights = scripted_fit({9, 4, 1, 2.25, 1.5625, 0.25, 0.0625},
                                         {callbacks = {es}})
    assert.are.equal(5, #h.epochs)          -- best at 3, then two epochs without gain
    assert.are.equal(5, es.stopped_epoch)
    assert.are.equal(3, es.best_epoch)
    assert.are.same({9, 4, 1, 2.25, 1.5625},
      (function() local t = {} for i, r in ipairs(h.epochs) do t[i] = r.val_loss end return t end)())
    assert.are_not.equal(weights[3], weights[5])
    assert.are.equal(weights[3], net.w:item())
  end)
end)

describe("ModelCheckpoint", function()
  local checkpoint = require "moongrad.checkpoint"

  it("writes the best and the last checkpoint", function()
    local dir = tmpdir()
    local mc = train.ModelCheckpoint{path = dir .. "/model.safetensors"}
    local h, _, weights = scripted_fit({3.0, 1.0, 2.0, 1.5}, {callbacks = {mc}})
    assert.are.equal(4, #h.epochs)
    assert.are.equal(dir .. "/model.best.safetensors", mc.best_path)
    assert.are.equal(dir .. "/model.last.safetensors", mc.last_path)
    local best, last = Scripted({}), Scripted({})
    assert.are.equal(2, checkpoint.load(mc.best_path, {model = best}).epoch)
    assert.are.equal(4, checkpoint.load(mc.last_path, {model = last}).epoch)
    assert.are.equal(weights[2], best.w:item())
    assert.are.equal(weights[4], last.w:item())
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("writes only what it is asked to", function()
    local dir = tmpdir()
    local mc = train.ModelCheckpoint{path = dir .. "/m.safetensors", save_last = false}
    scripted_fit({3.0, 1.0}, {callbacks = {mc}})
    assert.are.equal(dir .. "/m.safetensors", mc.best_path)  -- one kind: the path as given
    assert.is_truthy(io.open(dir .. "/m.safetensors"))
    assert.is_falsy(io.open(dir .. "/m.last.safetensors"))
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("takes best_path and last_path alone, and says which path is missing", function()
    local dir = tmpdir()
    local mc = train.ModelCheckpoint{best_path = dir .. "/b.safetensors", last_path = dir .. "/l.safetensors"}
    scripted_fit({3.0, 1.0}, {callbacks = {mc}})
    assert.is_truthy(io.open(dir .. "/b.safetensors"))
    assert.is_truthy(io.open(dir .. "/l.safetensors"))
    os.execute("rm -rf '" .. dir .. "'")
    assert.has_error(function() train.ModelCheckpoint{best_path = "b.safetensors"} end,
      "ModelCheckpoint: saving the last checkpoint needs last_path or path (or save_last = false)")
    assert.has_no.errors(function() train.ModelCheckpoint{best_path = "b.safetensors", save_last = false} end)
  end)
end)

describe("HistoryLogger", function()
  it("writes the history as CSV with a header row and as JSON", function()
    local dir = tmpdir()
    local logger = train.HistoryLogger{csv = dir .. "/h.csv", json = dir .. "/h.json"}
    local h = scripted_fit({9, 0.25, 2.25}, {callbacks = {logger}})
    local lines = {}
    for line in read_file(dir .. "/h.csv"):gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(4, #lines)
    assert.are.equal("epoch,train_loss,val_loss,lr,time", lines[1])
    local row = {}
    for cell in lines[3]:gmatch("[^,]+") do row[#row + 1] = tonumber(cell) end
    assert.are.equal(2, row[1])
    assert.is_true(math.abs(row[2] - h.epochs[2].train_loss) < 1e-9)
    assert.are.equal(0.25, row[3])
    assert.are.equal(0.1, row[4])
    local decoded = require("dkjson").decode(read_file(dir .. "/h.json"))
    assert.are.equal(3, #decoded.epochs)
    assert.are.equal(2.25, decoded.epochs[3].val_loss)
    assert.are.equal(#h.lr, #decoded.lr)
    assert.are.equal(#h.batch_loss, #decoded.batch_loss)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe("LRLogger", function()
  it("records every param group's lr per step", function()
    local x, y = toy_data(8)
    local a, b = nn.Linear(4, 2), nn.Linear(2, 2)
    local net = nn.Sequential(a, b)
    local opt = optim.SGD({{params = a:parameters(), lr = 0.1},
                           {params = b:parameters(), lr = 0.01}}, {lr = 1})
    local h = train.fit(net, {train = FakeLoader(x, y, 4), optimizer = opt, epochs = 1,
                              callbacks = {train.LRLogger()}, progress = "quiet"})
    assert.are.same({{0.1, 0.1}, {0.01, 0.01}}, h.lr_groups)
    assert.are.same({0.1, 0.1}, h.lr)
  end)
end)

describe("the progress output", function()
  local script = [[
local mg = require "moongrad"
local nn, optim, train = require "moongrad.nn", require "moongrad.optim", require "moongrad.train"
local L = {}
L.__index, L.__len = L, function() return 3 end
function L:iter()
  local i = 0
  return function()
    i = i + 1
    if i <= 3 then return mg.randn(4, 4), mg.tensor({1, 2, 1, 2}, "int64") end
  end
end
local net = nn.Linear(4, 2)
train.fit(net, {train = setmetatable({}, L), optimizer = optim.SGD(net, {lr = 0.1}),
                epochs = 2, progress = %s})
]]
  local function run(mode)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(script:format(mode))
    f:close()
    local p = io.popen(BUILD .. "/moongrad " .. path .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(path)
    return out
  end

  it("prints one summary line per epoch and no \\r when stdout is a pipe", function()
    local out = run('"auto"')
    assert.is_nil(out:find("\r", 1, true))
    assert.is_truthy(out:match("^epoch 1/2  train_loss %d%.%d+  lr 0%.1  %d+%.%ds\nepoch 2/2 "))
  end)

  it("draws the bar with \\r, loss, samples/s and ETA when asked to", function()
    local out = run("true")
    assert.is_truthy(out:find("\repoch 1/2 [", 1, true))
    assert.is_truthy(out:find("3/3  loss ", 1, true))
    assert.is_truthy(out:find("samples/s  ETA ", 1, true))
  end)
end)

describe("exact resume", function()
  local data = require "moongrad.data"
  local T = require "moongrad.transforms"

  -- A fresh run of the same recipe: shuffling loader, noise augmentation,
  -- dropout, Adam and OneCycleLR per batch. Returns fit's options.
  local function recipe(seed)
    mg.manual_seed(7)
    local x = mg.randn(60, 1, 2, 2)
    local y = x:reshape(60, 4):sum(2):gt(0):long() + 1
    mg.manual_seed(seed)
    local net = nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3),
                              nn.Linear(16, 2))
    local opt = optim.Adam(net, {lr = 0.01})
    local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 8, shuffle = true,
                                   transform = T.GaussianNoise{std = 0.1}})
    local val = data.DataLoader(data.TensorDataset(x, y), {batch_size = 30})
    return net, {train = loader, val = val, optimizer = opt, epochs = 4,
                 scheduler = sched.OneCycleLR(opt, {max_lr = 0.05, total_steps = 32}),
                 metrics = {"accuracy"}, progress = "quiet"}
  end

  local function crash_at(step)
    return {on_batch_end = function(ctx) if ctx.step == step then error("simulated crash", 0) end end}
  end

  local threads
  before_each(function() threads = mg.get_num_threads() mg.set_num_threads(1) end)
  after_each(function() mg.set_num_threads(threads) end)

  local function check_resume(ck, crash_step, first_step)
    local net, o = recipe(1)
    local full = train.fit(net, o)
    assert.are.equal(32, #full.batch_loss)

    local dir = tmpdir()
    ck.path = dir .. "/run.safetensors"
    net, o = recipe(1)
    o.checkpoint, o.callbacks = ck, {crash_at(crash_step)}
    assert.has_error(function() train.fit(net, o) end, "simulated crash")

    net, o = recipe(99)                       -- other initial weights: all restored
    local seen
    o.resume = ck.path
    o.callbacks = {{on_batch_end = function(ctx) seen = seen or ctx.step end}}
    local resumed = train.fit(net, o)
    assert.are.equal(first_step, seen)
    os.execute("rm -rf '" .. dir .. "'")
    assert.are.equal(#full.batch_loss, #resumed.batch_loss)
    for i = 1, #full.batch_loss do
      assert.are.equal(full.batch_loss[i], resumed.batch_loss[i])
      assert.are.equal(full.lr[i], resumed.lr[i])
    end
    for e = 1, 4 do
      assert.are.equal(full.epochs[e].train_loss, resumed.epochs[e].train_loss)
      assert.are.equal(full.epochs[e].val_loss, resumed.epochs[e].val_loss)
      assert.are.equal(full.epochs[e].train_accuracy, resumed.epochs[e].train_accuracy)
    end
  end

  it("continues a run killed mid-epoch with the same per-batch losses", function()
    -- saved after step 10 (epoch 2, batch 2), killed at step 13
    check_resume({every_n_batches = 5}, 13, 11)
  end)

  it("continues from an end-of-epoch checkpoint with the same losses", function()
    check_resume({every = "epoch"}, 21, 17)      -- saved after epoch 2, killed in epoch 3
  end)
end)
