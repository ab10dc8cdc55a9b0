-- train.fit_job: fit a bounded slice at a time, for hosts with their own loop.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"

-- A small classification problem and a fresh, seeded setup for it.
local function setup(seed)
  mg.manual_seed(seed)
  local x = mg.randn(96, 6)
  local y = (x:narrow(2, 1, 1) + x:narrow(2, 2, 1)):gt(0):reshape(96):to("int64") + 1
  local model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
  local opt = optim.SGD(model, {lr = 0.1, momentum = 0.9})
  local opts = {
    train = data.DataLoader(data.TensorDataset(x:narrow(1, 1, 64), y:narrow(1, 1, 64)),
                            {batch_size = 8, shuffle = true}),
    val = data.DataLoader(data.TensorDataset(x:narrow(1, 65, 32), y:narrow(1, 65, 32)),
                          {batch_size = 8}),
    loss = F.cross_entropy, optimizer = opt, epochs = 3, metrics = {"accuracy"},
    progress = "quiet",
  }
  return model, opts
end

local function weights(model)
  local out = {}
  for k, t in pairs(model:state_dict()) do out[k] = t:totable() end
  return out
end

describe("train.fit_job", function()
  it("gives bit for bit what fit gives, whatever the host does between slices", function()
    local m1, o1 = setup(3)
    local h1 = train.fit(m1, o1)

    local m2, o2 = setup(3)
    local job = train.fit_job(m2, o2)
    local slices = 0
    while not job.done do
      job:run{batches = 5}
      slices = slices + 1
      -- the host draws random numbers, switches modes and runs inference
      mg.rand(7)
      m2:eval()
      mg.no_grad(function() m2(mg.randn(2, 6)) end)
      mg.set_grad_enabled(true)
    end
    assert.is_true(slices >= 8)          -- 3 epochs x (8 train + 4 val) batches / 5
    assert.are.same(weights(m1), weights(m2))
    assert.are.same(h1.batch_loss, job.history.batch_loss)
    for e = 1, 3 do
      assert.are.equal(h1.epochs[e].val_loss, job.history.epochs[e].val_loss)
      assert.are.equal(h1.epochs[e].val_accuracy, job.history.epochs[e].val_accuracy)
    end
  end)

  it("runs one batch per slice by default and as many as asked otherwise", function()
    local model, opts = setup(1)
    local job = train.fit_job(model, opts)
    local s = job:run()
    assert.are.same({1, 1, 1, "train"}, {s.epoch, s.batch, s.step, s.phase})
    assert.is_true(s.loss > 0)
    assert.are.equal(s.loss, s.slice_loss)
    s = job:run{batches = 3}
    assert.are.same({1, 4, 4, "train"}, {s.epoch, s.batch, s.step, s.phase})
    s = job:run{batches = 5}             -- the epoch's last 4 batches, then 1 of validation
    assert.are.same({1, 8, "val"}, {s.epoch, s.step, s.phase})
    s = job:run{batches = 3}             -- the other 3 validation batches
    assert.are.same({1, 8, "val"}, {s.epoch, s.step, s.phase})
    s = job:run()
    assert.are.same({2, 1, 9, "train"}, {s.epoch, s.batch, s.step, s.phase})
    assert.is_false(s.done)
  end)

  it("reports the mean training loss of each slice", function()
    local model, opts = setup(1)
    local job = train.fit_job(model, opts)
    job:run()
    local s = job:run{batches = 3}
    local v = job:run{batches = 5}       -- 4 training batches, 1 of validation
    local w = job:run{batches = 3}       -- validation only
    while not job.done do job:run{batches = 100} end
    local h = job.history.batch_loss
    assert.is_near((h[2] + h[3] + h[4]) / 3, s.slice_loss, 1e-12)
    assert.is_near((h[5] + h[6] + h[7] + h[8]) / 4, v.slice_loss, 1e-12)
    assert.is_nil(w.slice_loss)
  end)

  it("ends a slice at the first batch boundary after its time budget", function()
    local model, opts = setup(1)
    local job = train.fit_job(model, opts)
    assert.are.equal(1, job:run{seconds = 0}.step)
    assert.are.equal(2, job:run{seconds = 0}.step)
    local s = job:run{seconds = 1e6, batches = 2}   -- whichever is spent first
    assert.are.equal(4, s.step)
    while not job.done do s = job:run{seconds = 10} end
    assert.is_true(s.done)
    assert.are.equal(3, #s.history.epochs)
    assert.are.equal(24, #s.history.batch_loss)
  end)

  it("restores the host's grad mode, model mode and random state after each slice", function()
    local model, opts = setup(2)
    local job = train.fit_job(model, opts)
    model:eval()
    mg.set_grad_enabled(false)
    local before = mg.get_rng_state()
    job:run{batches = 10}                -- into validation, where fit turns grad off
    assert.is_false(mg.is_grad_enabled())
    assert.is_false(model.training)
    assert.are.same(before, mg.get_rng_state())
    mg.set_grad_enabled(true)
    job:run{batches = 3}
    assert.is_true(mg.is_grad_enabled())
    assert.is_false(model.training)
  end)

  it("raises fit's errors from the slice that hit them, then refuses to run", function()
    local model, opts = setup(1)
    opts.optimizer = optim.SGD(model, {lr = 1e30})
    local job = train.fit_job(model, opts)
    local ok, err
    for _ = 1, 30 do
      ok, err = pcall(job.run, job, {batches = 1})
      if not ok then break end
    end
    assert.is_false(ok)
    assert.is_truthy(err:find("fit: loss is [%-]?[%a]+ at epoch 1, batch %d+; lower the learning rate"))
    assert.is_true(job.done)
    assert.has_error(function() job:run() end, "job:run: the job has failed: " .. err)
    local m2, o2 = setup(1)
    assert.has_error(function() train.fit_job(m2, {optimizer = o2.optimizer}):run() end,
                     "fit: train must be a loader (an object with :iter()), got nil")
  end)

  it("checks its budget and refuses to run once finished", function()
    local model, opts = setup(1)
    opts.epochs = 1
    local job = train.fit_job(model, opts)
    assert.has_error(function() job:run{steps = 3} end, "job:run: unknown budget 'steps' (batches, seconds)")
    assert.has_error(function() job:run{batches = 0} end, "job:run: batches must be an integer >= 1, got 0")
    assert.has_error(function() job:run{seconds = -1} end, "job:run: seconds must be a number >= 0, got -1")
    while not job.done do job:run{batches = 100} end
    assert.has_error(function() job:run() end,
                     "job:run: the job has finished (job.history holds the result)")
  end)
end)
