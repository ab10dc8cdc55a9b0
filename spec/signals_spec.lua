-- SIGINT and SIGTERM during train.fit: the step finishes, the checkpoint is
-- written, fit raises, and resuming continues exactly.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"
local shell = require "support.shell"
local BUILD = require "support.build"

local function tmp(name)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "'")
  return dir .. "/" .. name, dir
end

-- A small problem: returns model, optimizer, loader (seeded).
local function problem()
  mg.manual_seed(1)
  local x, y = mg.randn(64, 4), mg.randint(1, 3, {64})
  local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 8, shuffle = true})
  local model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 3))
  return model, optim.Adam(model, {lr = 0.01}), loader
end

-- A callback that sends the process sig after batch b of epoch e.
local function send_at(sig, e, b)
  return {on_batch_end = function(ctx)
    if ctx.epoch == e and ctx.batch == b then mg._signals_raise(sig) end
  end}
end

local function same_bits(a, b)
  return a:numel() == b:numel() and a:eq(b):sum():item() == a:numel()
end

local function params(model)
  local out = {}
  for _, p in ipairs(model:parameters()) do out[#out + 1] = p:detach():clone() end
  return out
end

describe("signals in train.fit", function()
  it("finishes the step, writes the checkpoint and raises a message naming it on SIGINT", function()
    local path = tmp("ck.safetensors")
    local model, opt, loader = problem()
    local ok, err = pcall(train.fit, model, {train = loader, optimizer = opt, epochs = 3,
      progress = "quiet", checkpoint = {path = path}, callbacks = {send_at("SIGINT", 2, 3)}})
    assert.is_false(ok)
    assert.are.equal(("fit: interrupted by SIGINT at epoch 2, batch 3; checkpoint written to %s: " ..
                      "resume with resume = %s"):format(path, path), err)
    local _, info = require("moongrad.checkpoint").read(path)
    assert.are.same({2, 8 + 3}, {info.epoch, info.step})
  end)

  it("resumes from the interrupted checkpoint to what an uninterrupted fit gives", function()
    local path = tmp("ck.safetensors")
    local model, opt, loader = problem()
    local full = train.fit(model, {train = loader, optimizer = opt, epochs = 3, progress = "quiet"})
    local want = params(model)

    model, opt, loader = problem()
    assert.is_false(pcall(train.fit, model, {train = loader, optimizer = opt, epochs = 3,
      progress = "quiet", checkpoint = {path = path}, callbacks = {send_at("SIGTERM", 2, 5)}}))
    model, opt, loader = problem()
    mg.manual_seed(99) -- the checkpoint brings back every random state
    local h = train.fit(model, {train = loader, optimizer = opt, epochs = 3, progress = "quiet",
                                resume = path})
    assert.are.same(full.batch_loss, h.batch_loss)
    local got = params(model)
    for i = 1, #want do assert.is_true(same_bits(want[i], got[i])) end
  end)

  it("stops at the end of an epoch when the signal comes during its last batch", function()
    local path = tmp("ck.safetensors")
    local model, opt, loader = problem()
    local ok, err = pcall(train.fit, model, {train = loader, optimizer = opt, epochs = 3,
      progress = "quiet", checkpoint = {path = path}, callbacks = {send_at("SIGINT", 1, 8)}})
    assert.is_false(ok)
    assert.matches("^fit: interrupted by SIGINT at the end of epoch 1; checkpoint written to", err)
  end)

  it("says so when no checkpoint could be written", function()
    local model, opt, loader = problem()
    local ok, err = pcall(train.fit, model, {train = loader, optimizer = opt, epochs = 2,
      progress = "quiet", callbacks = {send_at("SIGINT", 1, 2)}})
    assert.is_false(ok)
    assert.are.equal("fit: interrupted by SIGINT at epoch 1, batch 2 (no checkpoint: fit's " ..
                     "checkpoint option is off)", err)
  end)

  it("names both the signal and the failure when the checkpoint cannot be written", function()
    local path = tmp("ck.safetensors")
    local model, opt, loader = problem()
    local full_disk = {on_batch_end = function(ctx)
      if ctx.batch == 2 then mg._safetensors_fail_after(10); mg._signals_raise("SIGINT") end
    end}
    local ok, err = pcall(train.fit, model, {train = loader, optimizer = opt, progress = "quiet",
      checkpoint = {path = path}, callbacks = {full_disk}})
    assert.is_false(ok)
    assert.matches("^fit: interrupted by SIGINT at epoch 1, batch 2; writing the checkpoint " ..
                   "failed: .*checkpoint%.save: .*No space left on device$", err)
  end)

  it("puts back the handlers it replaced when it returns or raises", function()
    local model, opt, loader = problem()
    train.fit(model, {train = loader, optimizer = opt, progress = "quiet"})
    assert.is_true(mg._signals_catch()) -- nothing of fit's left installed
    mg._signals_restore()
    assert.is_false(pcall(train.fit, model, {train = loader, optimizer = opt, progress = "quiet",
      callbacks = {{on_batch_end = function() error("boom") end}}}))
    assert.is_true(mg._signals_catch())
    mg._signals_restore()
  end)

  it("stops a fit_job's slice the same way", function()
    local path = tmp("ck.safetensors")
    local model, opt, loader = problem()
    local job = train.fit_job(model, {train = loader, optimizer = opt, epochs = 2, progress = "quiet",
      checkpoint = {path = path}, callbacks = {send_at("SIGTERM", 1, 4)}})
    local ok, err
    repeat ok, err = pcall(job.run, job, {batches = 3}) until not ok or job.done
    assert.is_false(ok)
    assert.matches("^fit: interrupted by SIGTERM at epoch 1, batch 4; checkpoint written", err)
    assert.is_true(mg._signals_catch()) -- the host's handlers are back
    mg._signals_restore()
  end)
end)

-- The script, end to end: a real SIGINT from outside, then --resume.
describe("scripts/fashion_mnist_mlp.lua interrupted with SIGINT", function()
  local flags = "--train-subset 6000 --batch-size 32 --epochs 3 --threads 1"
  local _, a = tmp("x")
  local _, b = tmp("x")
  local read_file = shell.read_file
  teardown(function() os.execute(("rm -rf '%s' '%s'"):format(a, b)) end)

  local function run(cmd)
    local out, err, code = shell.run(cmd)
    return out .. err, code
  end

  -- history.json without the time columns
  local function history(dir)
    return (read_file(dir .. "/history.json"):gsub('"time":[^,}\n]*', ""))
  end

  it("continues exactly where it stopped when resumed", function()
    local out, code = run((BUILD .. "/moongrad scripts/fashion_mnist_mlp.lua %s --out '%s'"):format(flags, a))
    assert.are.equal(0, code, out)

    -- SIGINT once the first checkpoint (batch 100 of 516) exists
    out, code = run(([[
      ]] .. BUILD .. [[/moongrad scripts/fashion_mnist_mlp.lua %s --out '%s' & pid=$!
      while [ ! -e '%s/last.safetensors' ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done
      kill -INT $pid; wait $pid]]):format(flags, b, b))
    assert.are_not.equal(0, code, out)
    local ck = b .. "/last.safetensors"
    assert.matches("fit: interrupted by SIGINT at [%w ,]+; checkpoint written to ", out)
    assert.is_truthy(out:find(("written to %s: resume with resume = %s"):format(ck, ck), 1, true), out)

    out, code = run((BUILD .. "/moongrad scripts/fashion_mnist_mlp.lua %s --out '%s' --resume '%s'")
                    :format(flags, b, ck))
    assert.are.equal(0, code, out)
    assert.are.equal(history(a), history(b))
    for _, f in ipairs({"last.safetensors", "best.safetensors"}) do
      local ta, tb = mg.load(a .. "/" .. f), mg.load(b .. "/" .. f)
      local n = 0
      for name, t in pairs(ta) do
        n = n + 1
        assert.is_truthy(tb[name], name)
        assert.is_true(same_bits(t, tb[name]), f .. ": " .. name)
      end
      assert.is_true(n > 6)
    end
  end)
end)
