-- A small training job for spec/dist_spec.lua, run as one process or under
-- mpirun: the same data, model and order either way.
--
--   moongrad spec/support/dist_job.lua key=value ...
--     dist=1        train with fit{distributed = true}
--     batch=B       the loader's batch size (per rank when distributed)
--     n=203         samples;  epochs=3;  opt=sgd|adam;  model=mlp|conv
--     out=PATH      rank 1 saves the trained parameters there
--     ckpt=PATH     fit's checkpoint, every 2 batches
--     resume=PATH   resume from it
--     signal_at=S   rank `signal_rank` (default 2) raises SIGINT after step S
--     log=PATH      a HistoryLogger CSV
--     unused=1      the model has a parameter no forward uses
--     overlap=1     distributed with DistributedDataParallel's overlap
local mg = require "moongrad"
local nn = require "moongrad.nn"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"

local o = {batch = "16", n = "203", epochs = "3", opt = "sgd", model = "mlp", signal_rank = "2"}
for _, a in ipairs(arg) do
  local k, v = a:match("^([%w_]+)=(.*)$")
  o[k] = v
end
local dist
if o.dist then
  dist = require "moongrad.dist"
  dist.init()
end

mg.manual_seed(3)
local n = tonumber(o.n)
local x, y
if o.model == "conv" then
  x = mg.randn(n, 1, 6, 6)
  y = (x:reshape(n, 36):mean(2):gt(0)):to("int64") + 1
else
  x = mg.randn(n, 10)
  y = (x:narrow(2, 1, 1):reshape(-1):gt(0)):to("int64") + 1
end
local ds = data.TensorDataset(x, y)
local loader = data.DataLoader(ds, {batch_size = tonumber(o.batch), shuffle = true})
local val = data.DataLoader(ds, {batch_size = 50})

local model
if o.model == "conv" then
  model = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(), nn.Flatten(),
                        nn.Linear(144, 2))
else
  model = nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 2))
end
if o.unused then
  -- a parameter outside every forward: it must keep no gradient
  local Net = nn.Module:extend("Net")
  function Net:init(body)
    self.body, self.spare = body, nn.Linear(3, 3)
  end
  function Net:forward(input) return self.body(input) end
  model = Net(model)
end
local opt = o.opt == "adam" and optim.AdamW(model, {lr = 0.01, weight_decay = 0.01})
            or optim.SGD(model, {lr = 0.1, momentum = 0.9, weight_decay = 1e-3})

local callbacks = {}
if o.signal_at then
  local rank = dist and dist.rank() or 1
  callbacks[#callbacks + 1] = {on_batch_end = function(ctx)
    if ctx.step == tonumber(o.signal_at) and rank == tonumber(o.signal_rank) then
      mg._signals_raise("SIGINT")
    end
  end}
end
if o.log then callbacks[#callbacks + 1] = train.HistoryLogger{csv = o.log} end

local ok, err = pcall(train.fit, model, {
  train = loader, val = val, optimizer = opt, epochs = tonumber(o.epochs),
  metrics = {"accuracy"}, progress = false,
  distributed = o.dist and {overlap = o.overlap == "1"} or nil,
  callbacks = callbacks,
  checkpoint = o.ckpt and {path = o.ckpt, every_n_batches = 2} or nil,
  resume = o.resume,
})
local rank = dist and dist.rank() or 1
if not ok then
  print(("rank %d error: %s"):format(rank, err))
  os.exit(3)
end
if rank == 1 and o.out then
  local sd = {}
  for name, p in model:named_parameters() do sd[name] = p:detach():contiguous() end
  mg.save(o.out, sd)
end
print(("rank %d done spare_grad=%s"):format(rank, tostring(model.spare and model.spare.weight.grad)))
