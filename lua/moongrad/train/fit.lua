-- moongrad.train.fit: the training loop. Read it top to bottom; copy it
-- when you need a loop of your own (the per-batch body is six lines).
local mg = require "moongrad"
local optim = require "moongrad.optim"
local metrics = require "moongrad.train.metrics"
local progress = require "moongrad.train.progress"
local resume = require "moongrad.train.resume"
local distributed = require "moongrad.train.distributed"
local attach = require "moongrad.attach"

local type, ipairs, pairs, tostring, error, pcall = type, ipairs, pairs, tostring, error, pcall
local getmetatable, setmetatable = getmetatable, setmetatable
local huge = math.huge
local fmt, concat, sort = string.format, table.concat, table.sort
local signals_catch, signals_pending = mg._signals_catch, mg._signals_pending
-- Closing it puts back the signal handlers fit replaced, on return or error.
local RESTORE = setmetatable({}, {__close = function() mg._signals_restore() end})

local OPTIONS = {train = 1, val = 1, loss = 1, optimizer = 1, scheduler = 1,
  scheduler_step = 1, epochs = 1, metrics = 1, clip_grad_norm = 1, callbacks = 1,
  progress = 1, resume = 1, checkpoint = 1, monitor = 1, distributed = 1, listen = 1}

-- A function, or a table or userdata with __call.
local function callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt) == "table" and mt.__call ~= nil
end

local function check_options(model, o)
  if type(model) ~= "table" and type(model) ~= "function" then
    error("fit: expects a model (a module or a callable table) as argument #1", 3)
  end
  if type(o) ~= "table" then error("fit: expects an options table as argument #2", 3) end
  for k in pairs(o) do
    if not OPTIONS[k] then
      local known = {}
      for n in pairs(OPTIONS) do known[#known + 1] = n end
      sort(known)
      error(fmt("fit: unknown option '%s' (known: %s)", tostring(k), concat(known, ", ")), 3)
    end
  end
  local function loader(name, v, required)
    if v == nil and not required then return end
    if type(v) ~= "table" or type(v.iter) ~= "function" then
      error(fmt("fit: %s must be a loader (an object with :iter()), got %s", name, type(v)), 4)
    end
  end
  loader("train", o.train, true)
  loader("val", o.val)
  if type(o.optimizer) ~= "table" or type(o.optimizer.step) ~= "function" then
    error("fit: needs an optimizer (optimizer = optim.Adam(model, {...}))", 3)
  end
  local step = o.scheduler_step or "batch"
  if step ~= "batch" and step ~= "epoch" then
    error(fmt("fit: scheduler_step must be \"batch\" or \"epoch\", got %s", tostring(step)), 3)
  end
  local e = o.epochs
  if e ~= nil and (math.type(e) == nil or e ~= math.floor(e) or e < 1) then
    error(fmt("fit: epochs must be an integer >= 1, got %s",
              type(e) == "string" and fmt("%q", e) or tostring(e)), 3)
  end
  if o.loss ~= nil and not callable(o.loss) then
    error(fmt("fit: loss must be a function loss_fn(out, yb), got %s", type(o.loss)), 3)
  end
  if o.scheduler ~= nil and (type(o.scheduler) ~= "table" or type(o.scheduler.step) ~= "function") then
    error(fmt("fit: scheduler must be a scheduler (an object with :step()), got %s",
              type(o.scheduler) == "string" and fmt("%q", o.scheduler) or type(o.scheduler)), 3)
  end
  if o.callbacks ~= nil and type(o.callbacks) ~= "table" then
    error(fmt("fit: callbacks must be a list of callbacks, got %s", type(o.callbacks)), 3)
  end
  if o.monitor ~= nil and type(o.monitor) ~= "string" then
    error(fmt("fit: monitor must be a metric name such as \"val_loss\", got %s",
              tostring(o.monitor)), 3)
  end
  local l = o.listen
  if l ~= nil and type(l) ~= "boolean" and type(l) ~= "string" then
    error(fmt("fit: listen must be true, false or a socket path, got %s", type(l)), 3)
  end
  if l and o.distributed then
    error("fit: listen does not work with distributed training (a change made on one rank " ..
          "would split the replicas)", 3)
  end
  local ck = o.checkpoint
  if ck ~= nil and (type(ck) ~= "table" or type(ck.path) ~= "string") then
    error("fit: checkpoint must be a table {path = ..., every_n_batches = k | every = \"epoch\"}", 3)
  end
end

-- "nan", "inf" or "-inf" for a non-finite number, else nil.
local function non_finite(v)
  if v ~= v then return "nan" end
  if v == huge then return "inf" elseif v == -huge then return "-inf" end
end

local function call(ctx, hook)
  for _, cb in ipairs(ctx.callbacks) do
    local f = cb[hook]
    if f then f(ctx) end
  end
end

-- Records' keys in a stable order: epoch, train_*, val_*, lr, time.
local function columns(names, has_val)
  local cols = {"epoch"}
  for _, n in ipairs(names) do cols[#cols + 1] = "train_" .. n end
  if has_val then
    for _, n in ipairs(names) do cols[#cols + 1] = "val_" .. n end
  end
  cols[#cols + 1] = "lr"
  cols[#cols + 1] = "time"
  return cols
end

-- #loader when the loader has a length, else nil.
local function length(loader)
  local mt = getmetatable(loader)
  if mt and mt.__len then return #loader end
  if type(loader.len) == "function" then return loader:len() end
end

-- The history holds lrs as floats (an lr given as 1 is 1.0), so that its
-- per-step lists go through a checkpoint's float64 tensors unchanged.
local function float_lr(lr)
  if math.type(lr) == "integer" then return lr + 0.0 end
  return lr
end

local function is_plateau(s) return s ~= nil and s.__name == "ReduceLROnPlateau" end

-- The checkpoint of fit's `checkpoint` option, written once per step (by
-- rank 1 alone when distributed, with every rank's partial sums).
local function save_checkpoint(ctx, o, mid_epoch)
  if ctx.saved_step == ctx.step and ctx.saved_mid == mid_epoch then return end
  local run, acc, mine = ctx.run, ctx.train_metrics, nil
  if run and mid_epoch then
    mine = acc:state_dict()
    acc:reduce(function(v) return run:sum_list(v) end)
  end
  if ctx.is_main ~= false then
    if mid_epoch then resume.save_mid_epoch(o.checkpoint.path, ctx)
    else resume.save_epoch_end(o.checkpoint.path, ctx) end
  end
  if mine then acc:load_state_dict(mine) end
  ctx.saved_step, ctx.saved_mid = ctx.step, mid_epoch
end

-- The listener sessions attach through (moongrad.attach), and whether fit
-- opened it (and so closes it): listen = nil takes `moongrad --listen`'s,
-- true that one or a new one, a string a new one on that path.
local function listener_for(o)
  local l = o.listen
  if l == false or (l == nil and o.distributed) then return nil end
  if type(l) == "string" then return attach.listen(l), true end
  local current = attach.current()
  if current or l == nil then return current, false end
  return attach.listen(), true
end

-- An attach point: what sessions sent runs here, between two batches or
-- at an epoch's end (mid_epoch false), where save(path) writes the
-- checkpoint of that kind, which fit's resume option takes.
local function attach_point(ctx, mid_epoch)
  local v = ctx.attach_vars
  v.epoch, v.batch, v.step = ctx.epoch, ctx.batch, ctx.step
  v.loss = ctx.history.batch_loss[ctx.step]
  ctx.attach_mid = mid_epoch
  ctx.listener:serve(v)
end

-- SIGINT or SIGTERM came during the step just finished (see
-- runtime/lua_signal.c): write the checkpoint, then raise.
local function stop_for_signal(ctx, o, sig, mid_epoch)
  mg._signals_clear()
  ctx.progress:abort()
  local where = mid_epoch and fmt("epoch %d, batch %d", ctx.epoch, ctx.batch)
    or fmt("the end of epoch %d", ctx.epoch)
  local msg = fmt("fit: interrupted by %s at %s", sig, where)
  if not o.checkpoint then
    error(msg .. " (no checkpoint: fit's checkpoint option is off)", 0)
  end
  local saved, err = pcall(save_checkpoint, ctx, o, mid_epoch)
  -- distributed: the other ranks leave once rank 1's checkpoint is written
  if ctx.run then ctx.run:barrier() end
  if not saved then error(fmt("%s; writing the checkpoint failed: %s", msg, tostring(err)), 0) end
  local path = o.checkpoint.path
  error(fmt("%s; checkpoint written to %s: resume with resume = %s", msg, path, path), 0)
end

-- One pass over the training loader. skip: batches of this epoch already
-- done before a resume (the loader itself continues where it stopped).
local function train_epoch(ctx, o, skip)
  local model, opt, sched, loss_fn = ctx.model, ctx.optimizer, ctx.scheduler, ctx.loss
  local per_batch = sched and o.scheduler_step ~= "epoch" and not is_plateau(sched)
  local clip, params = o.clip_grad_norm, o.clip_grad_norm and model:parameters()
  local every = o.checkpoint and o.checkpoint.every_n_batches
  local n_batches, run, loader = ctx.n_batches, ctx.run, ctx.train_loader
  local history, acc, bar = ctx.history, ctx.train_metrics, ctx.progress
  if model.train then model:train() end
  local b = skip
  for xb, yb in loader:iter() do
    b = b + 1
    ctx.batch, ctx.step = b, ctx.step + 1
    local lr = float_lr(opt.param_groups[1].lr)
    opt:zero_grad()
    -- distributed: this rank's share of the batch may be empty
    local empty = run and loader.last_rows == 0
    local out, loss, value, sig
    if not empty then
      out = model(xb)
      loss = loss_fn(out, yb)
      value = loss:item()
    end
    local local_value = value
    if run then -- the global batch's gradients, loss and stop signal
      run:prepare(loader)
      if not empty then loss:backward() end
      local any
      value, any = run:sync(value, signals_pending() ~= nil)
      sig = any and (signals_pending() or "a signal on another rank") or nil
    end
    local bad = non_finite(value)
    if bad then
      bar:abort()
      error(fmt("fit: loss is %s at epoch %d, batch %d; lower the learning rate or " ..
                "check the data", bad, ctx.epoch, b), 0)
    end
    if not run then loss:backward() end
    if clip then optim.clip_grad_norm(params, clip) end
    opt:step()
    if per_batch then sched:step() end

    local step_lrs = {}
    for g, group in ipairs(opt.param_groups) do step_lrs[g] = float_lr(group.lr) end
    history.lr[ctx.step], history.batch_loss[ctx.step] = lr, value
    local n = empty and 0 or acc:add(out:detach(), yb, local_value)
    ctx.step_lrs, ctx.logs = step_lrs, {batch = b, loss = value, size = n, lr = lr}
    call(ctx, "on_batch_end")
    if acc.n > 0 then bar:batch(b, acc.loss_sum / acc.n, n, skip + 1) end
    if every and ctx.step % every == 0 and b ~= n_batches then save_checkpoint(ctx, o, true) end
    -- the epoch's last batch is followed by the epoch's end, attached there
    if ctx.listener and b ~= n_batches then attach_point(ctx, true) end
    if not run then sig = signals_pending() end
    -- after an epoch's last batch, fit stops once the epoch has ended
    if sig and b ~= n_batches then stop_for_signal(ctx, o, sig, true) end
    if ctx.job then ctx.job:_tick(ctx, "train", value) end
  end
  if run then acc:reduce(function(v) return run:sum_list(v) end) end
  return acc:result()
end

-- train.fit(model, opts) --> history. See moongrad.train for the options.
-- job: a moongrad.train.job running this fit in slices (it pauses after
-- every batch through job:_tick), or nil.
--
-- SIGINT or SIGTERM stops fit after the step it is in: it writes the
-- checkpoint (when the checkpoint option is on) and raises "fit:
-- interrupted by SIGINT at epoch e, batch b; checkpoint written to P:
-- resume with resume = P". A second signal meanwhile is handled by the
-- handler fit replaced. A job catches signals only while a slice runs.
local function fit(model, o, job)
  check_options(model, o)
  local restore <close> = not job and signals_catch() and RESTORE or nil
  local names = metrics.Accumulator(o.metrics or {}):names()
  local history = {epochs = {}, lr = {}, batch_loss = {}, columns = columns(names, o.val ~= nil)}
  local ctx = {
    model = model, optimizer = o.optimizer, scheduler = o.scheduler,
    train_loader = o.train, val_loader = o.val, loss = o.loss or require("moongrad.functional").cross_entropy,
    epochs = o.epochs or 1, epoch = 0, step = 0, batch = 0,
    history = history, callbacks = o.callbacks or {}, stop = false,
    progress = progress.new(o.progress),
    job = job,
  }
  local listener, own = listener_for(o)
  local closer <close> = own and listener or nil
  ctx.run = distributed.setup(ctx, o)
  if ctx.run and not ctx.is_main then ctx.progress = progress.new("quiet") end
  ctx.n_batches = length(ctx.train_loader)
  local monitor = o.monitor or (o.val and "val_loss" or "train_loss")
  local first_epoch, skip, sums = 1, 0, nil
  if o.resume then
    first_epoch, skip, sums = resume.load(o.resume, ctx)
    ctx.resumed = true
    -- the saved partial sums are all ranks': rank 1 carries them on
    if ctx.run and not ctx.is_main then sums = nil end
  end
  if ctx.run then ctx.run:start(model) end
  if listener then
    ctx.listener = listener
    ctx.attach_vars = {model = model, optimizer = ctx.optimizer, scheduler = ctx.scheduler,
      history = history, callbacks = ctx.callbacks, ctx = ctx, epochs = ctx.epochs,
      batches = ctx.n_batches, train_loader = ctx.train_loader, val_loader = ctx.val_loader,
      _save = function(path)
        if ctx.attach_mid then resume.save_mid_epoch(path, ctx)
        else resume.save_epoch_end(path, ctx) end
      end}
  end

  call(ctx, "on_train_begin")
  for epoch = first_epoch, ctx.epochs do
    ctx.epoch, ctx.batch = epoch, 0
    ctx.train_metrics = metrics.Accumulator(o.metrics or {})
    if sums then ctx.train_metrics:load_state_dict(sums) end
    call(ctx, "on_epoch_begin")
    ctx.progress:epoch_begin(epoch, ctx.epochs, ctx.n_batches)
    local t0 = progress.now()
    local record = {epoch = epoch, lr = ctx.optimizer.param_groups[1].lr}
    for k, v in pairs(train_epoch(ctx, o, skip)) do record["train_" .. k] = v end
    if #history.lr > 0 then record.lr = history.lr[#history.lr] end
    skip, sums = 0, nil
    if ctx.val_loader then
      local run = ctx.run
      if run then run:sync_buffers() end
      -- the same metrics as training measures (evaluate alone defaults to accuracy)
      local r = metrics.evaluate(model, ctx.val_loader, {loss = ctx.loss, metrics = o.metrics or {},
        on_batch = job and function() job:_tick(ctx, "val") end,
        reduce = run and function(acc) acc:reduce(function(v) return run:sum_list(v) end) end})
      for k, v in pairs(r) do record["val_" .. k] = v end
    end
    record.time = progress.now() - t0
    history.epochs[#history.epochs + 1] = record
    local s = ctx.scheduler
    if is_plateau(s) then
      if record[monitor] == nil then
        error(fmt("fit: ReduceLROnPlateau monitors '%s', which the epoch did not produce", monitor), 0)
      end
      s:step(record[monitor])
    elseif s and o.scheduler_step == "epoch" then
      s:step()
    end
    ctx.logs = record
    call(ctx, "on_epoch_end")
    ctx.progress:epoch_end(record, history.columns, history)
    if o.checkpoint and (o.checkpoint.every == "epoch" or o.checkpoint.every_n_batches) then
      save_checkpoint(ctx, o, false)
    end
    if ctx.listener then attach_point(ctx, false) end
    if ctx.stop then break end
    local sig = signals_pending()
    if ctx.run and ctx.run:any(sig ~= nil) then sig = sig or "a signal on another rank" end
    if sig and epoch < ctx.epochs then stop_for_signal(ctx, o, sig, false) end
  end
  call(ctx, "on_train_end")
  return history
end

return fit
