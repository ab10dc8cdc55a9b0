-- moongrad.train: a training loop with callbacks, and evaluation.
--
--   local train = require "moongrad.train"
--   local history = train.fit(net, {
--     train = train_loader, val = val_loader, epochs = 20,
--     optimizer = opt, scheduler = s,          -- stepped after every batch
--     metrics = {"accuracy", "top5"},
--     callbacks = {train.EarlyStopping{patience = 3},
--                  train.HistoryLogger{csv = "run/history.csv"}},
--   })
--   print(train.evaluate(net, test_loader).accuracy)
--
-- train.fit(model, opts) --> history. Each epoch: model:train(); for every
-- batch (xb, yb) of opts.train:iter(): zero_grad, out = model(xb),
-- loss = loss_fn(out, yb), backward, clip, optimizer step, scheduler step;
-- then train.evaluate on opts.val (eval mode, no_grad), the per-epoch
-- scheduler step, and the callbacks. Options:
--   train           the training loader (anything with :iter(), and # for the
--                   progress bar's total); required
--   val             a validation loader: adds val_* metrics to each epoch
--   loss            loss_fn(out, yb) --> scalar tensor (F.cross_entropy)
--   optimizer       required; scheduler: optional
--   scheduler_step  "batch" (default) or "epoch"; ReduceLROnPlateau always
--                   steps once per epoch with the monitored metric
--   monitor         what ReduceLROnPlateau watches ("val_loss", or
--                   "train_loss" without a val loader)
--   epochs          default 1
--   metrics         {"accuracy", "top5", {name = ..., fn = ...}} (the loss is
--                   always measured); see moongrad.train.metrics
--   clip_grad_norm  a max norm for optim.clip_grad_norm before each step
--   callbacks       a list of callbacks (below)
--   progress        "auto" (default), true, false or "quiet";
--                   see moongrad.train.progress (it writes to stdout)
--   checkpoint      {path = ..., every_n_batches = k} saves a resumable
--                   checkpoint every k steps and at each epoch's end;
--                   {path = ..., every = "epoch"} only at epochs' ends
--   resume          a path written by fit (checkpoint option or
--                   ModelCheckpoint): continues that run exactly — the same
--                   batches, random draws and losses as if never stopped
--   distributed     true (or {bucket_mb = 25}) under mpirun: data-parallel
--                   over the ranks (moongrad.train.distributed): the
--                   loaders are sharded, gradients averaged, metrics and
--                   decisions global, and only rank 1 logs and writes files
--   listen          let `moongrad --attach` sessions in between batches
--                   (moongrad.attach): nil serves `moongrad --listen`'s
--                   listener, true that or a new one, "path" a new one at
--                   path (both closed when fit returns), false none
-- A non-finite loss stops training with "fit: loss is nan at epoch 3,
-- batch 17; lower the learning rate or check the data".
--
-- history = {
--   epochs = {{epoch = 1, train_loss = ..., train_accuracy = ..., val_loss = ...,
--              val_accuracy = ..., lr = <the lr of the epoch's last step>,
--              time = <seconds>}, ...},
--   lr = {<lr used by step 1>, ...},  batch_loss = {<loss of step 1>, ...},
--   columns = {"epoch", "train_loss", ..., "lr", "time"},  -- record keys, in order
-- }
-- Losses and metrics are means over samples (each batch weighted by its
-- size); train_* are measured during the epoch, in training mode.
--
-- Callbacks are tables with any of on_train_begin, on_epoch_begin,
-- on_batch_end, on_epoch_end, on_train_end, each called with ctx:
--   ctx.model, ctx.optimizer, ctx.scheduler, ctx.train_loader, ctx.val_loader,
--   ctx.epoch, ctx.epochs, ctx.batch (in the epoch), ctx.step (global),
--   ctx.rank, ctx.world_size, ctx.is_main (distributed only),
--   ctx.history, ctx.logs (on_batch_end: {batch, loss, size, lr};
--   on_epoch_end: the epoch's record), ctx.step_lrs (each group's lr after the
--   step), and ctx.stop: set it to end training after this epoch.
-- The stock ones (moongrad.train.callbacks): EarlyStopping, ModelCheckpoint,
-- HistoryLogger, LRLogger.
--
-- train.evaluate(model, loader, {loss = F.cross_entropy, metrics = {"accuracy"}})
--   --> {loss = ..., accuracy = ...}
--
-- train.fit_job(model, opts) --> a job that runs fit a slice at a time, for
-- hosts that keep their own loop: job:run{batches = n} or job:run{seconds =
-- s} trains until the budget is spent (pausing at batch boundaries) and
-- returns {done, epoch, batch, step, phase, loss, slice_loss, history}; see
-- moongrad.train.job.
local metrics = require "moongrad.train.metrics"
local callbacks = require "moongrad.train.callbacks"

local train = {
  fit = require "moongrad.train.fit",
  fit_job = require "moongrad.train.job",
  evaluate = metrics.evaluate,
  Accumulator = metrics.Accumulator,
  EarlyStopping = callbacks.EarlyStopping,
  ModelCheckpoint = callbacks.ModelCheckpoint,
  HistoryLogger = callbacks.HistoryLogger,
  LRLogger = callbacks.LRLogger,
  history_csv = callbacks.history_csv,
  history_json = callbacks.history_json,
}

return train
