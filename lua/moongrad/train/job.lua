-- moongrad.train.job: train.fit a bounded slice at a time.
--
-- A host with its own loop (a game, a GUI, a controller, a C program) can
-- not hand control to fit for minutes. A job runs the same fit inside a
-- coroutine that pauses at batch boundaries, training or validation, once
-- the slice's budget is spent:
--
--   local job = train.fit_job(model, {train = loader, optimizer = opt, epochs = 5,
--                                     progress = "quiet"})
--   while not job.done do
--     local s = job:run{seconds = 0.005}    -- or {batches = 10}; default: one batch
--     draw_frame(s.epoch, s.step, s.loss)   -- the host's own work
--   end
--   local history = job.history             -- what fit returned
--
-- A slice ends at the first batch boundary after its budget, so it runs at
-- least one batch and overshoots by at most one. Between slices the host
-- may use the model and moongrad freely: each slice swaps in the job's own
-- random generator state, grad mode and the model's train/eval mode, and
-- swaps the host's back when it pauses, so a job's result is bit for bit
-- what one uninterrupted fit gives, whatever the host did in between. An
-- error inside fit (a non-finite loss, a bad option) is raised by the run
-- that hit it; the job is then done, with job.error set.
local mg = require "moongrad"
local fit = require "moongrad.train.fit"

local type, error, tostring, setmetatable = type, error, tostring, setmetatable
local fmt = string.format
local create, resume, yield, status = coroutine.create, coroutine.resume, coroutine.yield,
  coroutine.status

local Job = {}
Job.__index = Job

-- Called by fit after every batch (phase "train" or "val"): pause when the
-- slice's budget is spent.
function Job:_tick(ctx, phase, loss)
  self.epoch, self.batch, self.step, self.phase = ctx.epoch, ctx.batch, ctx.step, phase
  if loss then
    self.loss = loss
    self.slice_sum, self.slice_n = self.slice_sum + loss, self.slice_n + 1
  end
  self.slice_batches = self.slice_batches + 1
  local due = self.slice_batches >= self.max_batches
    or (self.deadline ~= nil and mg.clock() >= self.deadline)
  if due then yield() end
end

local function status_of(job)
  return {done = job.done, epoch = job.epoch, batch = job.batch, step = job.step,
          phase = job.phase, loss = job.loss,
          slice_loss = job.slice_n > 0 and job.slice_sum / job.slice_n or nil,
          history = job.history}
end

local function check_budget(b)
  if b == nil then return 1, nil end
  if type(b) ~= "table" then error("job:run: expects {batches = n} or {seconds = s}", 3) end
  for k in pairs(b) do
    if k ~= "batches" and k ~= "seconds" then
      error(fmt("job:run: unknown budget '%s' (batches, seconds)", tostring(k)), 3)
    end
  end
  local n, s = b.batches, b.seconds
  if n ~= nil and (type(n) ~= "number" or n ~= math.floor(n) or n < 1) then
    error(fmt("job:run: batches must be an integer >= 1, got %s", tostring(n)), 3)
  end
  if s ~= nil and (type(s) ~= "number" or not (s >= 0)) then
    error(fmt("job:run: seconds must be a number >= 0, got %s", tostring(s)), 3)
  end
  if n == nil and s == nil then return 1, nil end
  return n or math.huge, s and mg.clock() + s or nil
end

-- job:run{batches = n | seconds = s} --> status {done, epoch, batch, step,
-- phase ("train" or "val"), loss (the last training batch's), slice_loss
-- (the mean over this slice's training batches, nil if it had none),
-- history (once done)}
function Job:run(budget)
  if self.error then error("job:run: the job has failed: " .. tostring(self.error), 2) end
  if self.done then error("job:run: the job has finished (job.history holds the result)", 2) end
  self.max_batches, self.deadline = check_budget(budget)
  self.slice_batches, self.slice_sum, self.slice_n = 0, 0, 0

  -- the host's state out, the job's in
  local model = self.model
  local host_rng, host_grad, host_training = mg.get_rng_state(), mg.is_grad_enabled(), model.training
  if self.rng then mg.set_rng_state(self.rng) end
  if self.grad ~= nil then mg.set_grad_enabled(self.grad) end
  if self.training ~= nil and model.train then model:train(self.training) end

  -- SIGINT/SIGTERM stop the slice's fit after its step (see fit); between
  -- slices the host's handlers are in place
  local caught = mg._signals_catch()
  local ok, res = resume(self.co)
  if caught then mg._signals_restore() end

  self.rng, self.grad, self.training = mg.get_rng_state(), mg.is_grad_enabled(), model.training
  mg.set_rng_state(host_rng)
  mg.set_grad_enabled(host_grad)
  if host_training ~= nil and model.train then model:train(host_training) end

  if not ok then
    self.done, self.error = true, res
    error(res, 0)
  end
  if status(self.co) == "dead" then self.done, self.history = true, res end
  return status_of(self)
end

-- train.fit_job(model, opts) --> a job; opts are fit's.
local function fit_job(model, opts)
  -- grad = true: fit starts with recording on, whatever the host's mode
  local job = setmetatable({model = model, done = false, step = 0, slice_batches = 0,
                            max_batches = 1, grad = true}, Job)
  job.co = create(function() return fit(model, opts, job) end)
  return job
end

return fit_job
