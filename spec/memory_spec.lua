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
