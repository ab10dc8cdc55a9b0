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
local type, ipairs, tostring, error, pcall, require = type, ipairs, tostring, error, pcall,
  require
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

local function save(path, ctx, mid_epoch)
  local h = ctx.history
  local fitstate = {
    epoch_done = not mid_epoch,
    batch = mid_epoch and ctx.batch or nil,
    history = {epochs = h.epochs, lr = h.lr, batch_loss = h.batch_loss,
               lr_groups = h.lr_groups, columns = h.columns},
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

-- Restores a checkpoint written by save_* into ctx's model, optimizer,
-- scheduler, loader, RNG, history and callbacks. Returns the epoch to run
-- next, the number of its batches already done (0 for a fresh epoch) and the
-- epoch's partial metric sums (or nil).
function resume.load(path, ctx)
  local ck = checkpoint_module()
  local info = ck.load(path, {model = ctx.model, optimizer = ctx.optimizer,
                              scheduler = ctx.scheduler, restore_rng = true})
  local st = type(info.extra) == "table" and info.extra.fit
  if type(st) ~= "table" then
    error(fmt("fit: %s is not a checkpoint written by fit (no training state in it)", path), 0)
  end
  ctx.step = info.step
  local h, history = st.history, ctx.history
  history.epochs, history.lr, history.batch_loss = h.epochs or {}, h.lr or {}, h.batch_loss or {}
  history.lr_groups = h.lr_groups
  for i, cb in ipairs(ctx.callbacks) do
    local sd = st.callbacks and st.callbacks[tostring(i)]
    if sd and type(cb.load_state_dict) == "function" then cb.load_state_dict(sd) end
  end
  if st.epoch_done then return info.epoch + 1, 0, nil end
  ck.load(path, {loader = ctx.train_loader, restore_rng = false})
  return info.epoch, st.batch, st.train_sums
end

return resume
