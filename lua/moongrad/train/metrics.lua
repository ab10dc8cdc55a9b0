-- moongrad.train.metrics: per-batch metrics accumulated over an epoch, and
-- evaluate(). Every metric is a mean over samples: each batch contributes
-- its value weighted by its number of samples, so a short last batch counts
-- for what it holds.
--
--   local acc = metrics.Accumulator{"accuracy", "top5"}
--   acc:add(out, yb, loss_value)     -- out [N, K] scores, yb [N] int64 or [N, K]
--   acc:result()  --> {loss = ..., accuracy = ..., top5 = ...}
--
-- Metrics by name:
--   "loss"      the loss function's value (always computed; listing it is allowed)
--   "accuracy"  the fraction of samples whose highest score is the target
--               class (int64 targets [N], 1-based); with soft targets [N, K]
--               (MixUp, CutMix, label distributions) the target class is the
--               argmax of the target row
--   "topK"      ("top5", "top3", ...) the fraction whose target class is among
--               the K highest scores (ties counted in the sample's favour)
-- or a table {name = "mae", fn = function(out, yb) return number end}: the
-- batch's mean value, weighted by batch size like the others.
local mg = require "moongrad"

local no_grad, is_tensor = mg.no_grad, mg.is_tensor
local type, ipairs, pairs, pcall, error = type, ipairs, pairs, pcall, error
local tostring, tonumber = tostring, tonumber
local setmetatable = setmetatable
local fmt = string.format

local metrics = {}

-- The class ids [N] (int64) a batch's targets stand for.
local function target_ids(out, yb, name)
  local ys = yb:shape()
  if yb:dtype() == "int64" then
    if #ys ~= 1 then
      error(fmt("%s: integer targets must have shape [N], got [%s]", name,
                table.concat(ys, ",")), 0)
    end
    return yb
  end
  local os = out:shape()
  if #ys == 2 and #os == 2 and ys[1] == os[1] and ys[2] == os[2] then
    return yb:argmax(2)
  end
  error(fmt("%s: targets must be int64 class ids [N] or soft targets shaped like the " ..
            "scores [%s], got %s [%s]", name, table.concat(os, ","), yb:dtype(),
            table.concat(ys, ",")), 0)
end

local function check_scores(out, name)
  local s = out:shape()
  if #s ~= 2 then
    error(fmt("%s: needs class scores of shape [N, K], got [%s]", name,
              table.concat(s, ",")), 0)
  end
  return s
end

-- Number of samples in [N, K] scores whose target is among the k best.
local function count_topk(out, yb, k, name)
  local s = check_scores(out, name)
  local ids = target_ids(out, yb, name)
  if k == 1 then return out:argmax(2):eq(ids):sum():item() end
  local target_score = out:gather(2, ids:reshape(s[1], 1))          -- [N, 1]
  local above = out:gt(target_score):sum(2)                          -- [N]
  return above:lt(k):sum():item()
end

-- A metric spec → {name = ..., count = function(out, yb) → sum over samples}.
local function resolve(m)
  if type(m) == "table" then
    if type(m.name) ~= "string" or type(m.fn) ~= "function" then
      error("metrics: a custom metric is a table {name = string, fn = function(out, yb)}", 0)
    end
    local fn, name = m.fn, m.name
    return {name = name, count = function(out, yb)
      local v = fn(out, yb)
      if is_tensor(v) then v = v:item() end
      if type(v) ~= "number" then
        error(fmt("metric %s: fn must return a number, got %s", name, type(v)), 0)
      end
      return v * out:shape()[1]
    end}
  end
  if m == "accuracy" or m == "acc" then
    return {name = "accuracy", count = function(out, yb) return count_topk(out, yb, 1, "accuracy") end}
  end
  local k = type(m) == "string" and tonumber(m:match("^top(%d+)$"))
  if k and k >= 1 then
    return {name = m, count = function(out, yb) return count_topk(out, yb, k, m) end}
  end
  error(fmt("metrics: unknown metric %s (known: \"loss\", \"accuracy\", \"top5\"-style " ..
            "\"topK\", or {name = ..., fn = ...})", tostring(m)), 0)
end

local Accumulator = {}
Accumulator.__index = Accumulator

-- metrics.Accumulator(list): sums for one pass over a loader. list holds
-- metric names or custom metric tables ("loss" is implied).
function metrics.Accumulator(list)
  local self = setmetatable({n = 0, loss_sum = 0.0, sums = {}, specs = {}}, Accumulator)
  for _, m in ipairs(list or {}) do
    if m ~= "loss" then
      local spec = resolve(m)
      self.specs[#self.specs + 1] = spec
      self.sums[spec.name] = 0.0
    end
  end
  return self
end

-- Adds one batch: out the model's output, yb the targets, loss the batch's
-- mean loss (a number). Returns the batch size.
function Accumulator:add(out, yb, loss)
  if not is_tensor(out) or type(loss) ~= "number" then
    error(fmt("Accumulator:add: expects (output tensor, targets, loss number), got (%s, %s, %s)",
              is_tensor(out) and "tensor" or type(out), is_tensor(yb) and "tensor" or type(yb),
              type(loss)), 2)
  end
  local n = out:shape()[1]
  self.n = self.n + n
  self.loss_sum = self.loss_sum + loss * n
  if #self.specs > 0 then
    local sums = self.sums
    no_grad(function()
      for _, spec in ipairs(self.specs) do
        sums[spec.name] = sums[spec.name] + spec.count(out, yb)
      end
    end)
  end
  return n
end

-- {loss = mean loss, <metric> = mean value, ...}; nan for an empty pass.
function Accumulator:result()
  local n = self.n
  local r = {loss = n > 0 and self.loss_sum / n or 0 / 0}
  for _, spec in ipairs(self.specs) do
    r[spec.name] = n > 0 and self.sums[spec.name] / n or 0 / 0
  end
  return r
end

-- The plain sums (JSON-able), and back: fit saves them mid-epoch.
function Accumulator:state_dict()
  local sums = {}
  for k, v in pairs(self.sums) do sums[k] = v end
  return {n = self.n, loss_sum = self.loss_sum, sums = sums}
end

function Accumulator:load_state_dict(sd)
  self.n, self.loss_sum = sd.n, sd.loss_sum
  for k, v in pairs(sd.sums or {}) do
    if self.sums[k] ~= nil then self.sums[k] = v end
  end
end

-- Replaces the count and sums by sum_list{n, loss_sum, sums...}: fit's
-- distributed mode sums them over the ranks this way.
function Accumulator:reduce(sum_list)
  local vals = {self.n, self.loss_sum}
  for _, spec in ipairs(self.specs) do vals[#vals + 1] = self.sums[spec.name] end
  local out = sum_list(vals)
  self.n, self.loss_sum = math.floor(out[1] + 0.5), out[2]
  for i, spec in ipairs(self.specs) do self.sums[spec.name] = out[i + 2] end
end

-- The metric names an Accumulator reports, in order ("loss" first).
function Accumulator:names()
  local out = {"loss"}
  for _, spec in ipairs(self.specs) do out[#out + 1] = spec.name end
  return out
end

-- evaluate(model, loader, {loss = F.cross_entropy, metrics = {...}}) runs the
-- model in eval mode under no_grad over one pass of loader and returns the
-- metrics {loss = ..., accuracy = ..., ...}. The model's training flag is
-- restored afterwards. opts.on_batch, a function, is called after each batch;
-- opts.reduce(accumulator), when given, combines the sums before the means
-- (fit's distributed mode: over ranks, each evaluating its shard). An empty
-- batch (a rank's share of a short last batch) is skipped.
function metrics.evaluate(model, loader, opts)
  opts = opts or {}
  if type(loader) ~= "table" or type(loader.iter) ~= "function" then
    error(fmt("evaluate: expects a loader (an object with :iter()) as argument #2, got %s",
              type(loader)), 2)
  end
  local mt = getmetatable(model)
  if type(model) ~= "function" and not (type(mt) == "table" and mt.__call) then
    error(fmt("evaluate: expects a model (a module or a function) as argument #1, got %s",
              type(model)), 2)
  end
  local loss_fn = opts.loss or require("moongrad.functional").cross_entropy
  local acc = metrics.Accumulator(opts.metrics or {"accuracy"})
  local on_batch = opts.on_batch
  local was_training = model.training
  if model.eval then model:eval() end
  -- grad mode by hand rather than mg.no_grad(fn): a C call in between would
  -- stop a sliced fit (moongrad.train.job) from pausing in on_batch
  local was_grad = mg.set_grad_enabled(false)
  local ok, err = pcall(function()
    for xb, yb in loader:iter() do
      if loader.last_rows ~= 0 then
        local out = model(xb)
        acc:add(out, yb, loss_fn(out, yb):item())
      end
      if on_batch then on_batch() end
    end
  end)
  mg.set_grad_enabled(was_grad)
  if model.train and was_training ~= nil then model:train(was_training) end
  if not ok then error(err, 0) end
  if opts.reduce then opts.reduce(acc) end
  return acc:result()
end

return metrics
