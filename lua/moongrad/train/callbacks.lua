-- moongrad.train.callbacks: the stock callbacks of fit.
--
-- A callback is any table with some of these hooks, each called with the
-- fit's ctx (see moongrad.train):
--   on_train_begin(ctx)  on_epoch_begin(ctx)  on_batch_end(ctx)
--   on_epoch_end(ctx)    on_train_end(ctx)
-- and optionally state_dict() / load_state_dict(sd) (JSON-able tables), which
-- fit's mid-epoch checkpoints save so that a resumed run carries on.
-- Setting ctx.stop = true ends training after the current epoch.
--
--   train.EarlyStopping{monitor = "val_loss", mode = "auto", patience = 5,
--                       min_delta = 0, restore_best = true}
--   train.ModelCheckpoint{path = "run/model.safetensors", monitor = "val_loss",
--                         mode = "auto", save_best = true, save_last = true}
--   train.HistoryLogger{csv = "run/history.csv", json = "run/history.json"}
--   train.LRLogger()   every param group's lr per step in history.lr_groups
--                      (history.lr, the first group's, is always recorded)
-- mode "auto" is "max" for accuracy and topK metrics, "min" for the rest.
local type, ipairs, pairs, tostring, error, setmetatable = type, ipairs, pairs, tostring,
  error, setmetatable
local require = require
local huge = math.huge
local fmt, concat, sort = string.format, table.concat, table.sort

local callbacks = {}

local function check_opts(name, opts, known)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(fmt("%s: expects an options table, got %s", name, type(opts)), 3)
  end
  for k in pairs(opts) do
    if known[k] == nil then
      local list = {}
      for n in pairs(known) do list[#list + 1] = n end
      sort(list)
      error(fmt("%s: unknown option '%s' (known: %s)", name, tostring(k), concat(list, ", ")), 3)
    end
  end
  return opts
end

local function resolve_mode(name, monitor, mode)
  if type(monitor) ~= "string" then
    error(fmt("%s: monitor must be a metric name such as \"val_loss\", got %s", name,
              type(monitor)), 3)
  end
  mode = mode or "auto"
  if mode == "auto" then
    local m = monitor:gsub("^val_", ""):gsub("^train_", "")
    return (m == "accuracy" or m:match("^top%d+$")) and "max" or "min"
  end
  if mode ~= "min" and mode ~= "max" then
    error(fmt("%s: mode must be \"min\", \"max\" or \"auto\", got %s", name, tostring(mode)), 3)
  end
  return mode
end

-- The monitored value from the epoch's logs, with a clear error if absent.
local function monitored(name, logs, monitor)
  local v = logs[monitor]
  if type(v) ~= "number" then
    local have = {}
    for k, x in pairs(logs) do
      if type(x) == "number" and k ~= "epoch" then have[#have + 1] = k end
    end
    sort(have)
    error(fmt("%s: the monitored metric '%s' is not in the epoch's logs (have: %s); " ..
              "give fit a val loader or monitor a train_ metric", name, monitor,
              concat(have, ", ")), 0)
  end
  return v
end

local function improved(mode, v, best, min_delta)
  if v ~= v then return false end
  if mode == "min" then return v < best - min_delta end
  return v > best + min_delta
end

-- A copy of a module's state, detached from it (tensors cloned).
local function clone_state(model)
  local out = {}
  for k, t in pairs(model:state_dict()) do out[k] = t:clone() end
  return out
end

-- EarlyStopping ---------------------------------------------------------------

-- Stops when the monitored metric has not improved by more than min_delta
-- for `patience` epochs in a row. With restore_best, it keeps a clone of the
-- weights of the best epoch and loads them back when training ends.
-- After the run: es.best, es.best_epoch, es.stopped_epoch (nil if it did
-- not stop training).
function callbacks.EarlyStopping(opts)
  local o = check_opts("EarlyStopping", opts, {monitor = 1, mode = 1, patience = 1,
                                               min_delta = 1, restore_best = 1})
  local monitor = o.monitor or "val_loss"
  local self = {
    monitor = monitor,
    mode = resolve_mode("EarlyStopping", monitor, o.mode),
    patience = o.patience or 5,
    min_delta = math.abs(o.min_delta or 0),
    restore_best = o.restore_best ~= false,
  }
  if type(self.patience) ~= "number" or self.patience < 0 then
    error(fmt("EarlyStopping: patience must be a number >= 0, got %s", tostring(self.patience)), 2)
  end

  function self.on_train_begin(ctx)
    if not ctx.resumed then           -- (a resumed run keeps its loaded state)
      self.wait, self.best_epoch, self.stopped_epoch = 0, nil, nil
      self.best = self.mode == "min" and huge or -huge
    end
    self.best_weights = nil
  end

  function self.on_epoch_end(ctx)
    local v = monitored("EarlyStopping", ctx.logs, self.monitor)
    if improved(self.mode, v, self.best, self.min_delta) then
      self.best, self.best_epoch, self.wait = v, ctx.epoch, 0
      if self.restore_best then self.best_weights = clone_state(ctx.model) end
    else
      self.wait = self.wait + 1
      if self.wait >= self.patience then
        self.stopped_epoch = ctx.epoch
        ctx.stop = true
      end
    end
  end

  function self.on_train_end(ctx)
    if self.restore_best and self.best_weights then
      ctx.model:load_state_dict(self.best_weights)
    end
  end

  -- (the best weights are not saved: a resumed run restores the best epoch
  -- it has seen itself)
  function self.state_dict()
    return {wait = self.wait, best = self.best, best_epoch = self.best_epoch}
  end
  function self.load_state_dict(sd)
    self.wait, self.best, self.best_epoch = sd.wait, sd.best, sd.best_epoch
  end
  return self
end

-- ModelCheckpoint -------------------------------------------------------------

-- "run/model.safetensors" → "run/model.best.safetensors"
local function suffixed(path, tag)
  local stem, ext = path:match("^(.*)(%.[%w]+)$")
  if not stem or stem:find("/[^/]*$") == #stem then return path .. "." .. tag end
  return stem .. "." .. tag .. ext
end
callbacks._suffixed = suffixed

-- Saves the model (with optimizer, scheduler, epoch, step and the history so
-- far, through moongrad.checkpoint) at the end of every epoch as the "last"
-- checkpoint, and whenever the monitored metric improves as the "best".
-- Files: best_path and last_path; by default path itself when only one kind
-- is saved, and path with ".best" / ".last" before its extension when both
-- are. After the run: mc.best, mc.best_epoch.
function callbacks.ModelCheckpoint(opts)
  local o = check_opts("ModelCheckpoint", opts, {path = 1, monitor = 1, mode = 1,
    save_best = 1, save_last = 1, best_path = 1, last_path = 1, min_delta = 1})
  if type(o.path) ~= "string" and not (o.best_path or o.last_path) then
    error("ModelCheckpoint: needs a path (a string)", 2)
  end
  local monitor = o.monitor or "val_loss"
  local self = {
    monitor = monitor,
    mode = resolve_mode("ModelCheckpoint", monitor, o.mode),
    save_best = o.save_best ~= false,
    save_last = o.save_last ~= false,
    min_delta = math.abs(o.min_delta or 0),
  }
  local both = self.save_best and self.save_last
  -- Where one kind goes: its own path, else derived from path (which an
  -- explicit best_path alone does not give the "last" kind).
  local function path_for(kind, explicit)
    if explicit or not self["save_" .. kind] then return explicit end
    if type(o.path) ~= "string" then
      error(("ModelCheckpoint: saving the %s checkpoint needs %s_path or path " ..
             "(or save_%s = false)"):format(kind, kind, kind), 3)
    end
    return both and suffixed(o.path, kind) or o.path
  end
  self.best_path = path_for("best", o.best_path)
  self.last_path = path_for("last", o.last_path)

  function self.on_train_begin(ctx)
    if not ctx.resumed then self.best, self.best_epoch = self.mode == "min" and huge or -huge, nil end
  end

  function self.on_epoch_end(ctx)
    local save = require("moongrad.train.resume").save_epoch_end
    -- distributed: every rank tracks the best (the same on all), rank 1 writes
    if ctx.is_main == false then save = function() end end
    if self.save_best then
      local v = monitored("ModelCheckpoint", ctx.logs, self.monitor)
      if improved(self.mode, v, self.best, self.min_delta) then
        self.best, self.best_epoch = v, ctx.epoch
        save(self.best_path, ctx)
      end
    end
    if self.save_last then save(self.last_path, ctx) end
  end

  function self.state_dict() return {best = self.best, best_epoch = self.best_epoch} end
  function self.load_state_dict(sd) self.best, self.best_epoch = sd.best, sd.best_epoch end
  return self
end

-- HistoryLogger ---------------------------------------------------------------

-- Writes a file whole and atomically through the core's file routine
-- (runtime/io_file.c: a unique temporary, fsync, rename; a symlink's target
-- replaced, a FIFO or directory refused).
local function write_file(path, text, who)
  local ok, err = require("moongrad.core")._write_file(path, text, who)
  if not ok then error(err, 0) end
end

local function csv_number(v)
  if v == nil then return "" end
  if type(v) ~= "number" then return tostring(v) end
  if v ~= v then return "nan" end
  if v == huge then return "inf" elseif v == -huge then return "-inf" end
  if math.type(v) == "integer" then return tostring(v) end
  return fmt("%.10g", v)
end

-- The history's per-epoch records as CSV text: a header row of columns,
-- then one row per epoch.
-- fit's history: a table with columns and epochs (raises at the caller's
-- caller otherwise).
local function check_history(history, who)
  if type(history) ~= "table" or type(history.columns) ~= "table"
      or type(history.epochs) ~= "table" then
    error(fmt("%s: expects fit's history (a table with columns and epochs), got %s", who,
              type(history)), 3)
  end
end

function callbacks.history_csv(history)
  check_history(history, "history_csv")
  local cols = history.columns
  local lines = {concat(cols, ",")}
  for _, rec in ipairs(history.epochs) do
    local row = {}
    for i, c in ipairs(cols) do row[i] = csv_number(rec[c]) end
    lines[#lines + 1] = concat(row, ",")
  end
  return concat(lines, "\n") .. "\n"
end

-- The history as JSON: {"epochs": [...], "lr": [...], "batch_loss": [...]};
-- nan and inf become null.
function callbacks.history_json(history)
  check_history(history, "history_json")
  local json = require "moongrad.json"
  local order, seen = {}, {}
  for _, list in ipairs{{"epochs", "lr", "batch_loss", "lr_groups"}, history.columns} do
    for _, c in ipairs(list) do
      if not seen[c] then order[#order + 1], seen[c] = c, true end
    end
  end
  return json.encode_plain({epochs = history.epochs, lr = history.lr,
                            batch_loss = history.batch_loss, lr_groups = history.lr_groups},
                           {indent = true, keyorder = order}) .. "\n"
end

-- Rewrites the CSV and/or JSON file after every epoch, so that a killed run
-- still leaves its log behind.
function callbacks.HistoryLogger(opts)
  local o = check_opts("HistoryLogger", opts, {csv = 1, json = 1})
  if o.csv == nil and o.json == nil then
    error("HistoryLogger: give a csv path, a json path or both", 2)
  end
  for _, k in ipairs{"csv", "json"} do
    if o[k] ~= nil and type(o[k]) ~= "string" then
      error(fmt("HistoryLogger: %s must be a file path, got %s", k, type(o[k])), 2)
    end
    if o[k] and o[k]:find("\0", 1, true) then
      error(fmt("HistoryLogger: the %s path contains a NUL byte", k), 2)
    end
  end
  local self = {csv = o.csv, json = o.json}
  function self.on_epoch_end(ctx)
    if ctx.is_main == false then return end -- distributed: rank 1 writes
    if self.csv then write_file(self.csv, callbacks.history_csv(ctx.history), "HistoryLogger") end
    if self.json then write_file(self.json, callbacks.history_json(ctx.history), "HistoryLogger") end
  end
  return self
end

-- LRLogger --------------------------------------------------------------------

-- Records every param group's lr at each step (the one the step used) in
-- history.lr_groups[g]; history.lr holds the first group's regardless.
function callbacks.LRLogger()
  local self = {}
  function self.on_train_begin(ctx)
    ctx.history.lr_groups = ctx.history.lr_groups or {}
  end
  function self.on_batch_end(ctx)
    local groups = ctx.history.lr_groups
    for g, lr in ipairs(ctx.step_lrs) do
      groups[g] = groups[g] or {}
      groups[g][ctx.step] = lr
    end
  end
  return self
end

return callbacks
