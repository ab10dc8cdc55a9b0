-- Resident memory over the epochs of the main job's model: the MLP of
-- scripts/fashion_mnist_mlp.lua (784-512-256-10, ReLU, dropout, Adam with a
-- per-batch schedule, shuffled batches of 128, a validation pass every
-- epoch), trained through train.fit, with VmRSS read from /proc/self/status
-- after every epoch. A leak shows as RSS that keeps rising epoch after epoch;
-- the first epoch pays for the buffer cache and the thread pool once.
--
--   build/moongrad tools/rss_over_epochs.lua [--epochs 20] [--train 55000]
--       [--val 5000] [--batch-size 128] [--seed 1]
--
-- Prints one line per epoch, then
--   rss_kib first=<epoch 1> last=<last epoch> max=<max> growth=<last - epoch 1>
--   growth_after_2=<last - epoch 2>
-- (spec/rss_spec.lua reads these two lines).
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local data = require "moongrad.data"
local train = require "moongrad.train"

local opts = require("moongrad.util").parse_flags(arg, {
  epochs = 20, train = 55000, val = 5000, ["batch-size"] = 128, seed = 1 })
local epochs, n_train, n_val = math.floor(opts.epochs), math.floor(opts.train), math.floor(opts.val)

local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  for line in f:lines() do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then f:close() return tonumber(kb) end
  end
  f:close()
  error("no VmRSS in /proc/self/status")
end

mg.manual_seed(opts.seed)
local x, y = data.fashion_mnist { split = "train" }
x = x:reshape(-1, 784)
local mean, std = x:mean():item(), x:std():item()
x = (x - mean) / std
local full = data.TensorDataset(x, y)
local parts = data.random_split(full, { n_train, n_val, 60000 - n_train - n_val }, { seed = opts.seed })
local bs = math.floor(opts["batch-size"])
local train_loader = data.DataLoader(parts[1], { batch_size = bs, shuffle = true })
local val_loader = data.DataLoader(parts[2], { batch_size = 1000 })

local model = nn.Sequential(
  nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
  nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2),
  nn.Linear(256, 10))
local opt = optim.Adam(model, { lr = 1e-3 })
local steps = #train_loader * epochs
local schedule = sched.CosineAnnealingLR(opt, { T_max = steps, eta_min = 1e-5 })

local samples = {}
local sampler = {
  on_epoch_end = function(ctx)
    samples[#samples + 1] = rss_kib()
    io.write(("epoch %d  VmRSS %d KiB\n"):format(#samples, samples[#samples]))
    io.flush()
  end,
}
train.fit(model, {
  train = train_loader, val = val_loader, loss = F.cross_entropy, optimizer = opt,
  scheduler = schedule, scheduler_step = "batch", epochs = epochs, progress = "quiet",
  callbacks = { sampler },
})

local first, last, max = samples[1], samples[#samples], 0
for _, s in ipairs(samples) do max = math.max(max, s) end
print(("rss_kib first=%d last=%d max=%d growth=%d"):format(first, last, max, last - first))
print(("growth_after_2=%d"):format(last - (samples[2] or first)))
