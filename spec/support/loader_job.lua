-- A training process with DataLoader workers, for spec/loader_workers_spec.lua:
--
--   loader_job.lua rss [persistent]
--                               8 epochs through 2 workers (persistent ones
--                               with the argument); prints
--                               rss_after_<epoch>=<KiB> and workers_left=<n>
--   loader_job.lua signal DIR   fit with 2 workers and a checkpoint in DIR;
--                               after batch 3 writes the workers' pids to
--                               DIR/ready and waits for SIGINT or SIGTERM
--   loader_job.lua loop DIR     a plain for loop over a loader with workers;
--                               after batch 3 writes DIR/ready and goes on
--                               until Ctrl-C stops it
--   loader_job.lua memory       4 epochs of 3 MiB batches through 2 workers;
--                               prints tensor_mib_after_<epoch>=<MiB>
--   loader_job.lua shard W      (under mpirun) two epochs of dist.shard'ed
--                               random samples through W workers, each rank
--                               seeded apart; prints each sample's draws
--   loader_job.lua whole        the same from one unsharded loader with rank
--                               1's seed
local mg = require "moongrad"
local nn = require "moongrad.nn"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"

local mode, dir = arg[1], arg[2]

local function children()
  local me = mg._getpid()
  local f = assert(io.open(("/proc/%d/task/%d/children"):format(me, me)))
  local s = f:read("a")
  f:close()
  local list = {}
  for pid in s:gmatch("%d+") do list[#list + 1] = pid end
  return list
end

local function rss_kib()
  for line in io.lines("/proc/self/status") do
    local kib = line:match("^VmRSS:%s+(%d+) kB")
    if kib then return tonumber(kib) end
  end
end

local function sleep_ms(ms) mg._proc_poll({}, ms) end

-- Samples with per-sample randomness: noise over a 3 x 32 x 32 image.
local function noisy(n)
  return {len = function() return n end,
          get = function(_, i) return mg.rand(3, 32, 32) + i, (i - 1) % 10 + 1 end}
end

mg.manual_seed(1)
if mode == "rss" then
  local loader = data.DataLoader(noisy(2048), {batch_size = 64, shuffle = true, num_workers = 2,
                                               persistent_workers = dir == "persistent"})
  for epoch = 1, 8 do
    local sum = 0
    for x in loader:iter() do sum = sum + x:narrow(1, 1, 1):sum():item() end
    collectgarbage()
    print(("rss_after_%d=%d"):format(epoch, rss_kib()))
  end
  loader:close()
  print("workers_left=" .. #children())
elseif mode == "signal" then
  local net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
  local loader = data.DataLoader(noisy(512), {batch_size = 16, shuffle = true, num_workers = 2})
  local ok, err = pcall(train.fit, net, {
    train = loader, optimizer = optim.SGD(net, {lr = 0.01}), epochs = 2, progress = "quiet",
    checkpoint = {path = dir .. "/run.safetensors", every_n_batches = 100},
    callbacks = {{on_batch_end = function(ctx)
      if ctx.batch ~= 3 then return end
      local f = assert(io.open(dir .. "/ready.tmp", "w"))
      f:write(table.concat(children(), " "))
      f:close()
      os.rename(dir .. "/ready.tmp", dir .. "/ready")
      for _ = 1, 3000 do
        if mg._signals_pending() then break end
        sleep_ms(10)
      end
    end}},
  })
  io.stderr:write(tostring(err), "\n")
  os.exit(ok and 0 or 1)
elseif mode == "loop" then
  local loader = data.DataLoader(noisy(512), {batch_size = 16, num_workers = 2})
  local b = 0
  for _ = 1, 100 do
    for _ in loader:iter() do
      b = b + 1
      if b == 3 then io.open(dir .. "/ready", "w"):close() end
      sleep_ms(10)
    end
  end
elseif mode == "memory" then
  local image = mg.rand(3, 64, 64)
  local ds = {len = function() return 16 * 64 end, get = function(_, i) return image, i end}
  local loader = data.DataLoader(ds, {batch_size = 64, num_workers = 2})
  for epoch = 1, 4 do
    for _ in loader:iter() do end
    print(("tensor_mib_after_%d=%.1f"):format(epoch, mg.memory().tensor_bytes / 2^20))
  end
elseif mode == "shard" or mode == "whole" then
  local ds = {len = function() return 10 end, get = function(_, i) return mg.rand(2), i end}
  local loader
  if mode == "shard" then
    local dist = require "moongrad.dist"
    dist.init()
    mg.manual_seed(100 + dist.rank())
    loader = dist.shard(data.DataLoader(ds, {batch_size = 2, shuffle = true,
                                             num_workers = tonumber(arg[2])}))
  else
    mg.manual_seed(101)
    loader = data.DataLoader(ds, {batch_size = 4, shuffle = true})
  end
  for e = 1, 2 do
    for x, y in loader:iter() do
      for r, i in ipairs(y:totable()) do
        local v = x[r]:totable()
        print(("epoch %d sample %d: %.9g %.9g"):format(e, i, v[1], v[2]))
      end
    end
  end
  if mode == "shard" then require("moongrad.dist").finalize() end
else
  error("loader_job.lua: mode must be rss, signal, loop, memory, shard or whole")
end
