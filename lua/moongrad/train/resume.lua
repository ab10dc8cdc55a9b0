-- moongrad.train.resume: fit's training checkpoints, written and read
-- through moongrad.checkpoint (whose JSON keeps every number exact).
--
-- Two kinds, told apart by extra.fit.epoch_done:
--   mid-epoch  (fit's checkpoint = {every_n_batches = k}): model, optimizer,
--              scheduler, the train loader's position and permutation, every
--              RNG state, the epoch and step, and in extra the history so
--              far, the epoch's partial metric sums and the callbacks' state.
--              Resuming continues the epoch at the next batch.
--   epoch-end  (ModelCheckpoint, or fit's checkpoint at an epoch's end): the
--              same without the loader, which starts the next epoch afresh.
-- The per-step history (history.lr, history.batch_loss, history.lr_groups)
-- goes into the file's body as float64 tensors, not into its JSON header,
-- so the header stays the same size however many steps the run has made
-- (per-epoch records stay in the header). Checkpoints written before kept
-- those lists in the header; they still load.
--
-- Resuming is all or nothing: the file is read once, the training state in
-- extra.fit is checked and every part of the checkpoint is checked against
-- the model, optimizer, scheduler and loader before any of them changes.
local mg = require "moongrad"

local type, ipairs, pairs, tostring, error, pcall, require = type, ipairs, pairs, tostring,
  error, pcall, require
local is_tensor, math_type = mg.is_tensor, math.type
local fmt = string.format

local resume = {}

local function checkpoint_module()
  local ok, ck = pcall(require, "moongrad.checkpoint")
  if not ok then
    error("fit: checkpoints need moongrad.checkpoint, which failed to load: " .. tostring(ck), 0)
  end
  return ck
end

-- Callback states keyed "1", "2", ... (callbacks without state are absent).
local function callback_states(ctx)
  local states = {}
  for i, cb in ipairs(ctx.callbacks) do
    if type(cb.state_dict) == "function" then states[tostring(i)] = cb.state_dict() end
  end
  return states
end

-- A per-step list as a float64 tensor for the file's body (fit records
-- floats, so nothing changes on the way back); a list with holes (a group
-- added part-way) stays a table.
local function step_tensor(list)
  if list == nil then return nil end
  local n = 0
  for _ in pairs(list) do n = n + 1 end
  if n == 0 or #list ~= n then return list end
  return mg.tensor(list, "float64")
end

local function save(path, ctx, mid_epoch)
  local h = ctx.history
  local lr_groups
  if h.lr_groups then
    lr_groups = {}
    for g, list in pairs(h.lr_groups) do lr_groups[g] = step_tensor(list) end
  end
  local fitstate = {
    epoch_done = not mid_epoch,
    batch = mid_epoch and ctx.batch or nil,
    history = {epochs = h.epochs, lr = step_tensor(h.lr), batch_loss = step_tensor(h.batch_loss),
               lr_groups = lr_groups, columns = h.columns},
    train_sums = mid_epoch and ctx.train_metrics:state_dict() or nil,
    callbacks = callback_states(ctx),
  }
  checkpoint_module().save(path, {model = ctx.model, optimizer = ctx.optimizer,
    scheduler = ctx.scheduler, loader = mid_epoch and ctx.train_loader or nil,
    epoch = ctx.epoch, step = ctx.step, extra = {fit = fitstate}})
end

-- After batch ctx.batch of epoch ctx.epoch.
function resume.save_mid_epoch(path, ctx) save(path, ctx, true) end
-- After epoch ctx.epoch's validation and callbacks.
function resume.save_epoch_end(path, ctx) save(path, ctx, false) end

-- A saved per-step list (a tensor, or a table in older files) as a table of
-- numbers, or nil and what is wrong with it.
local function number_list(v)
  if is_tensor(v) then
    if v:dim() ~= 1 or v:dtype() == "int64" then
      return nil, fmt("a %s tensor of %d dims where a float list belongs", v:dtype(), v:dim())
    end
    return v:totable()
  end
  if type(v) ~= "table" then return nil, "a " .. type(v) .. " where a list belongs" end
  for k, x in pairs(v) do
    if math_type(k) ~= "integer" or k < 1 or type(x) ~= "number" then
      return nil, fmt("entry %s is not a number at a step", tostring(k))
    end
  end
  return v
end

-- The history and counters of fit's state st (extra.fit) checked and made
-- ready: returns {history fields}, or nil and a message.
local function fit_state(st, info)
  if type(st) ~= "table" then return nil, "it holds no training state (not written by fit)" end
  if type(st.epoch_done) ~= "boolean" then return nil, "epoch_done must be a boolean" end
  if math_type(info.epoch) ~= "integer" or math_type(info.step) ~= "integer" then
    return nil, "it has no epoch and step"
  end
  local h = st.history
  if type(h) ~= "table" or type(h.epochs or {}) ~= "table" then
    return nil, "history must be a table with a list of epochs"
  end
  for i, rec in ipairs(h.epochs or {}) do
    if type(rec) ~= "table" then return nil, fmt("history.epochs[%d] is not a record", i) end
  end
  local out = {epochs = h.epochs or {}}
  for _, k in ipairs({"lr", "batch_loss"}) do
    local list, problem = number_list(h[k] or {})
    if not list then return nil, fmt("history.%s: %s", k, problem) end
    out[k] = list
  end
  if h.lr_groups ~= nil then
    if type(h.lr_groups) ~= "table" then return nil, "history.lr_groups must be a table" end
    out.lr_groups = {}
    for g, v in pairs(h.lr_groups) do
      local list, problem = number_list(v)
      if not list then return nil, fmt("history.lr_groups[%s]: %s", tostring(g), problem) end
      out.lr_groups[g] = list
    end
  end
  if st.callbacks ~= nil and type(st.callbacks) ~= "table" then
    return nil, "callbacks must be a table of states"
  end
  if not st.epoch_done then
    if math_type(st.batch) ~= "integer" or st.batch < 0 then
      return nil, fmt("batch must be an integer >= 0, got %s", tostring(st.batch))
    end
    local sums = st.train_sums
    if type(sums) ~= "table" or math_type(sums.n) ~= "integer" or sums.n < 0
        or type(sums.loss_sum) ~= "number" or type(sums.sums or {}) ~= "table" then
      return nil, "train_sums must be {n = count, loss_sum = number, sums = {...}}"
    end
  end
  return out
end

-- Restores a checkpoint written by save_* into ctx's model, optimizer,
-- scheduler, loader, RNG, history and callbacks. Returns the epoch to run
-- next, the number of its batches already done (0 for a fresh epoch) and the
-- epoch's partial metric sums (or nil).
function resume.load(path, ctx)
  local ck = checkpoint_module()
  local tensors, state = ck.read(path)
  local st = type(state.extra) == "table" and state.extra.fit or nil
  local history, problem = fit_state(st, {epoch = state.epoch, step = state.step})
  if not history then error(fmt("fit: %s: %s", path, problem), 0) end
  local mid = not st.epoch_done
  local apply = ck.prepare(path, {model = ctx.model, optimizer = ctx.optimizer,
                                  scheduler = ctx.scheduler,
                                  loader = mid and ctx.train_loader or nil,
                                  restore_rng = true}, {tensors, state})
  local info = apply()
  ctx.step = info.step
  local into = ctx.history
  into.epochs, into.lr, into.batch_loss = history.epochs, history.lr, history.batch_loss
  into.lr_groups = history.lr_groups
  for i, cb in ipairs(ctx.callbacks) do
    local sd = st.callbacks and st.callbacks[tostring(i)]
    if sd and type(cb.load_state_dict) == "function" then cb.load_state_dict(sd) end
  end
  if st.epoch_done then return info.epoch + 1, 0, nil end
  return info.epoch, st.batch, st.train_sums
end

return resume
