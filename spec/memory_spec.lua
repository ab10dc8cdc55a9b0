-- Tensor memory is C memory the collector cannot see by itself; these specs
-- pin the behaviour DESIGN.md promises: a naive loop keeps a flat profile,
-- freed buffers are reused, and <close> releases eagerly.
local mg = require "moongrad"

-- Runs a Lua chunk in a fresh lua5.4 process (so the measurement sees only
-- that loop) and returns what it prints. Under `make test-sanitize` the
-- child turns AddressSanitizer's quarantine off: ASan holds freed blocks
-- back (256 MiB by default) to catch use after free, which would show as
-- growth here; without it RSS means what it means in a normal build.
-- Outside ASan the variable is ignored.
local function run_child(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen('ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0:thread_local_quarantine_size_kb=0" '
                            .. "lua5.4 " .. path .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  assert(ok, "child failed: " .. out)
  return out
end

local rss_fn = [[
local function rss_kib()
  local f = assert(io.open("/proc/self/status"))
  for line in f:lines() do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then f:close() return tonumber(kb) end
  end
end
]]

describe("memory", function()
  it("keeps resident memory flat over a million temporary 1000-element tensors without collectgarbage", function()
    local out = run_child(rss_fn .. [[
local mg = require "moongrad"
local x = mg.ones(1000)
local start, peak = rss_kib(), 0
for i = 1, 1000000 do
  local y = x + i   -- a new 4000-byte tensor every iteration
  if i % 50000 == 0 then peak = math.max(peak, rss_kib()) end
end
print(start, peak)
]])
    local start, peak = out:match("(%d+)%s+(%d+)")
    start, peak = tonumber(start), tonumber(peak)
    assert.is_not_nil(peak, out)
    -- 1,000,000 tensors of 4000 bytes are 4 GB if nothing is reclaimed; the
    -- bound leaves room for the collector's pace, not for a leak.
    assert.is_true(peak - start < 64 * 1024, ("grew by %d KiB"):format(peak - start))
  end)

  it("frees the gradients at zero_grad after an optimizer step, without a collection", function()
    local nn, optim, F = require "moongrad.nn", require "moongrad.optim", require "moongrad.functional"
    local model = nn.Linear(1000, 500)
    local opt = optim.Adam(model, { lr = 1e-3 })
    local x, y = mg.randn(1, 1000), mg.randint(1, 500, { 1 })
    for _ = 1, 2 do
      opt:zero_grad()
      F.cross_entropy(model(x), y):backward()
      opt:step()
    end
    local grads = 4 * (1000 * 500 + 500)
    local before = mg.memory().tensor_bytes
    opt:zero_grad() -- the step held no Lua reference to a .grad: freed here
    assert.equal(before - grads, mg.memory().tensor_bytes)
  end)

  it("keeps a batch-1 training loop flat when it reads every .grad each step", function()
    local out = run_child([[
local mg = require "moongrad"
local nn, optim, F = require "moongrad.nn", require "moongrad.optim", require "moongrad.functional"
local model = nn.Sequential(nn.Linear(1000, 500), nn.ReLU(), nn.Linear(500, 10))
local opt = optim.SGD(model, { lr = 1e-3 })
local x, y = mg.randn(1, 1000), mg.randint(1, 10, { 1 })
local params, peak, start = model:parameters(), 0, nil
for i = 1, 400 do
  opt:zero_grad()
  F.cross_entropy(model(x), y):backward()
  for _, p in ipairs(params) do local g = p.grad end -- Lua holds each .grad a while
  opt:step()
  if i == 20 then start = mg.memory().tensor_bytes end
  if i > 20 then peak = math.max(peak, mg.memory().tensor_bytes) end
end
print(start, peak)
]])
    local start, peak = out:match("(%d+)%s+(%d+)")
    start, peak = tonumber(start), tonumber(peak)
    assert.is_not_nil(peak, out)
    -- each step's 2 MB of gradients, read from Lua, are garbage the
    -- collector must find: 400 steps of them are 800 MB if it never runs
    assert.is_true(peak - start < 32 * 2 ^ 20, ("grew by %d bytes"):format(peak - start))
  end)

  it("reuses freed buffers so a steady loop rarely calls malloc", function()
    local x = mg.ones(256, 256)
    collectgarbage()
    local before = mg.memory()
    for _ = 1, 200 do
      local y = (x * 2 + 1):exp()
      y = nil
      collectgarbage("step", 0)
    end
    local after = mg.memory()
    local allocs = after.allocs - before.allocs
    local hits = after.cache_hits - before.cache_hits
    assert.is_true(allocs >= 600)
    assert.is_true(hits >= allocs * 0.9, ("%d of %d allocations came from the cache"):format(hits, allocs))
  end)

  it("releases a tensor's buffer when a <close> variable goes out of scope", function()
    collectgarbage()
    local before = mg.memory().tensor_bytes
    do
      local big <close> = mg.zeros(1024, 1024)
      assert.are.equal(before + 4 * 1024 * 1024, mg.memory().tensor_bytes)
    end
    assert.are.equal(before, mg.memory().tensor_bytes)
  end)

  it("keeps a view's storage alive after the base tensor is collected", function()
    local v
    do
      local base = mg.arange(10, "float64")
      v = base:narrow(1, 4, 3)
    end
    collectgarbage()
    collectgarbage()
    assert.are.same({3, 4, 5}, v:totable())
  end)

  it("reports tensor, cache and Lua heap sizes through mg.memory", function()
    local m = mg.memory()
    for _, k in ipairs { "tensor_bytes", "peak_bytes", "cached_bytes", "cache_limit",
                         "limit_bytes", "allocs", "cache_hits", "lua_bytes" } do
      assert.is_number(m[k], k)
    end
    mg.empty_cache()
    assert.are.equal(0, mg.memory().cached_bytes)
  end)

  it("raises a clear error past the memory limit and stays usable", function()
    mg.set_memory_limit(1024 * 1024)
    local ok, err = pcall(mg.zeros, 1024, 1024)
    mg.set_memory_limit(0)
    assert.is_false(ok)
    assert.matches("not enough memory for a tensor of 4194304 bytes: the memory limit is 1048576 bytes", err)
    assert.are.equal(4, mg.ones(2, 2):sum():item())
  end)

  it("charges the limit with the bytes a tensor asks for, not its size class", function()
    collectgarbage()
    collectgarbage()
    -- 4 MiB + 4 bytes sits in the allocator's 5 MiB class
    local n = 1024 * 1024 + 1
    mg.set_memory_limit(mg.memory().tensor_bytes + mg.memory().header_bytes + 4 * n + 4096)
    local ok, t = pcall(mg.zeros, n)
    mg.set_memory_limit(0)
    assert.is_true(ok, t)
    assert.equal(n, t:numel())
  end)

  it("raises a clear error for a tensor too large for the machine and stays usable", function()
    for _, make in ipairs({function() return mg.zeros(1e12) end,
                           function() return mg.empty(1e6, 1e6) end,
                           function() return mg.randn(4e11) end}) do
      local ok, err = pcall(make)
      assert.is_false(ok)
      assert.matches("not enough memory for a tensor of %d+ bytes", err)
    end
    local x = mg.ones(3, 3)
    assert.are.equal(9, (x + x):sum():item() / 2)
    assert.are.equal(0, mg.memory().limit_bytes)
  end)
end)

-- An allocation that fails collects garbage and tries again inside itself
-- (issue 18): the call that needed the memory is never run a second time,
-- so calls with side effects before an allocation (backward accumulating
-- into leaves, an optimizer stepping parameter after parameter, in-place
-- ops, augmentations) give what they give without the pressure.
describe("memory pressure", function()
  local MiB = 1024 * 1024
  local nn = require "moongrad.nn"
  local optim = require "moongrad.optim"
  local T = require "moongrad.transforms"

  -- Runs fn(squeeze) under a memory limit `room` bytes above what is live
  -- now. squeeze() fills all but `free` bytes of the limit with tensors
  -- and drops them, so the allocations after it only fit once the
  -- collector has run. Returns fn's result and how many allocations had to
  -- reclaim after the first squeeze.
  local function squeezed(room, free, fn)
    collectgarbage()
    collectgarbage()
    mg.empty_cache()
    local limit = mg.memory().tensor_bytes + room
    local before
    local function squeeze()
      local junk = {}
      local fill = limit - mg.memory().tensor_bytes - free
      for i = 1, fill // MiB do junk[i] = mg.empty(MiB // 4) end
      junk[#junk + 1] = mg.empty(fill % MiB // 4)
      junk = nil -- luacheck: ignore
      before = before or mg.memory().reclaims
    end
    mg.set_memory_limit(limit)
    local ok, out = pcall(fn, squeeze)
    mg.set_memory_limit(0)
    if not ok then error(out, 0) end
    return out, mg.memory().reclaims - before
  end

  -- A leaf w (4 elements) and an 8 MiB leaf x in one graph; dL/dw = 3 each.
  -- Its backward needs three 8 MiB tensors (the gradient of the sum
  -- expanded, x's gradient, and the product summed for w).
  local function graph()
    local w = mg.ones(4):requires_grad()
    local x = mg.zeros(2 * MiB):requires_grad()
    return w, (w:sum() * x):sum() + (w * 3):sum()
  end

  it("gives backward's leaves their gradient once when it had to collect (retain_graph)", function()
    local w, loss = graph()
    local _, reclaims = squeezed(40 * MiB, 4 * MiB, function(squeeze)
      squeeze()
      loss:backward{retain_graph = true}
    end)
    assert.is_true(reclaims > 0, "the workload never reclaimed: it tests nothing")
    assert.same({3, 3, 3, 3}, w.grad:totable())
  end)

  it("finishes backward without retain_graph when it had to collect", function()
    local w, loss = graph()
    local _, reclaims = squeezed(40 * MiB, 4 * MiB, function(squeeze)
      squeeze()
      loss:backward()
    end)
    assert.is_true(reclaims > 0, "the workload never reclaimed: it tests nothing")
    assert.same({3, 3, 3, 3}, w.grad:totable())
  end)

  it("reports a backward that runs out of memory as out of memory, with nothing to collect", function()
    local _, loss = graph()
    local live = {}
    collectgarbage()
    local limit = mg.memory().tensor_bytes + 4 * MiB
    mg.set_memory_limit(limit)
    local ok, err = pcall(function()
      for i = 1, 3 do live[i] = mg.empty(MiB // 4) end -- reachable: nothing to reclaim
      loss:backward()
    end)
    mg.set_memory_limit(0)
    assert.is_false(ok)
    assert.matches("backward: not enough memory for a tensor of 8388608 bytes", err)
    assert.not_matches("second time", err)
  end)

  -- The same seeded workload, free and squeezed, must end the same.
  local workloads = {
    {"an Adam step over many parameters, its state made on the first step", function(squeeze)
      mg.manual_seed(7)
      local net = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                                nn.Linear(512, 10))
      local opt = optim.Adam(net:parameters(), {lr = 1e-2, weight_decay = 0.01})
      local x, y = mg.randn(64, 256), mg.randint(1, 10, {64})
      for _ = 1, 2 do
        opt:zero_grad()
        require("moongrad.functional").cross_entropy(net(x), y):backward()
        squeeze()
        opt:step()
      end
      local out = {}
      for i, p in ipairs(net:parameters()) do out[i] = p:sum():item() end
      return out
    end},
    {"SGD with momentum and in-place ops on a parameter", function(squeeze)
      mg.manual_seed(8)
      local p = mg.randn(512, 512):requires_grad()
      local opt = optim.SGD({p}, {lr = 0.1, momentum = 0.9})
      for _ = 1, 2 do
        opt:zero_grad()
        local loss = (p * p):sum()
        squeeze()
        loss:backward()
        squeeze()
        opt:step()
        squeeze()
        mg.no_grad(function() p:mul_(0.5):add_(mg.ones(512, 512)):abs_() end)
      end
      return {p:sum():item(), p:abs():max():item()}
    end},
    {"a random crop and flip of a batch", function(squeeze)
      mg.manual_seed(9)
      local aug = T.Compose{T.RandomCrop{size = 28, padding = 4}, T.RandomHorizontalFlip()}
      local x = mg.randn(256, 1, 28, 28)
      squeeze()
      local a = aug(x)
      squeeze()
      local b = aug(x)
      return {a:sum():item(), b:sum():item(), (a * b):sum():item()}
    end},
  }
  for _, w in ipairs(workloads) do
    it("gives the same result under memory pressure: " .. w[1], function()
      local free = w[2](function() end)
      local squeezed_out, reclaims = squeezed(48 * MiB, 256 * 1024, w[2])
      assert.is_true(reclaims > 0, "the workload never reclaimed: it tests nothing")
      assert.same(free, squeezed_out)
    end)
  end
end)
