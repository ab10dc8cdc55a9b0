-- The DataLoader's per-sample random streams and its worker processes
-- (num_workers > 0): the batches and every random draw are the same bits
-- whatever the worker count, resume holds across worker counts, errors and
-- deaths in workers reach the loop, and workers end with their iteration
-- (break, error, collection, signals) leaving no process, descriptor or
-- shared memory behind. Specs run from the repository root, after `make`.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"
local shell = require "support.shell"
local BUILD = require "support.build"

local error_of = require("support.check").err_of

-- This process's children, as {pid = state} (state Z: a zombie).
local function children()
  local me, out = mg._getpid(), {}
  local f = assert(io.open(("/proc/%d/task/%d/children"):format(me, me)))
  local list = f:read("a")
  f:close()
  for pid in list:gmatch("%d+") do
    local st = io.open("/proc/" .. pid .. "/stat")
    if st then
      out[tonumber(pid)] = st:read("a"):match("^%d+ %b() (%a)")
      st:close()
    end
  end
  return out
end

-- The pids of a children() table, sorted.
local pids_of = require("support.check").sorted_keys

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- Entries of a directory (/proc/<pid>/fd, /dev/shm).
local function entries(dir)
  local p = io.popen("ls -A " .. dir .. " 2>/dev/null")
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

local function open_fds() return mg._open_fd_count() end

-- Every value of every batch of `epochs` epochs, as plain Lua data, then
-- the main stream's next draw.
local function run(make_loader, epochs)
  local loader = make_loader()
  local out = {}
  for _ = 1, epochs or 2 do
    for x, y, extra in loader:iter() do
      out[#out + 1] = {x:totable(), y:totable(), extra}
    end
  end
  out[#out + 1] = mg.rand(3, "float64"):totable()
  return out
end

-- Samples that draw random numbers: a random 5x5 crop of an 8x8 image, a
-- random flip and uniform noise, as an image pipeline would.
local IMAGES = mg.arange(0, 23 * 3 * 8 * 8):reshape(23, 3, 8, 8):float()
local function random_images(n)
  return {
    len = function() return n or 23 end,
    get = function(_, i)
      local at = mg.randint(0, 3, {2}):totable()
      local x = IMAGES[i]:narrow(2, at[1] + 1, 5):narrow(3, at[2] + 1, 5)
      if mg.rand(1):item() < 0.5 then x = x:index_select(3, mg.tensor({5, 4, 3, 2, 1}, "int64")) end
      return x + mg.rand(3, 5, 5) * 0.1, i, "img" .. i
    end,
  }
end

-- A batch transform that draws too.
local function jitter(x, y, names) return x * (1 + mg.rand(1):item()), y, names end

local function images_loader(nw, extra)
  return function()
    local o = {batch_size = 4, shuffle = true, transform = jitter, num_workers = nw}
    for k, v in pairs(extra or {}) do o[k] = v end
    return data.DataLoader(random_images(), o)
  end
end

describe("DataLoader per-sample streams", function()
  it("give each sample the same draws whatever the batch size and thread count", function()
    local threads = mg.get_num_threads()
    local function per_sample(bs, nt)
      mg.set_num_threads(nt)
      mg.manual_seed(9)
      local loader = data.DataLoader(random_images(), {batch_size = bs, shuffle = true})
      local seen = {}
      for x, y in loader:iter() do
        for r, i in ipairs(y:totable()) do seen[i] = x[r]:totable() end
      end
      return seen
    end
    local ok, err = pcall(function()
      local a = per_sample(4, 1)
      assert.same(a, per_sample(7, 1))
      assert.same(a, per_sample(23, 2))
    end)
    mg.set_num_threads(threads)
    assert(ok, err)
  end)

  it("draw an epoch seed only when the loader runs code that may draw", function()
    local ds = data.TensorDataset(mg.arange(1, 11):float(), mg.arange(1, 11))
    mg.manual_seed(4)
    local plain = data.DataLoader(ds, {batch_size = 3, shuffle = true})
    for _ in plain:iter() do end
    assert.is_nil(plain:state_dict().epoch_seed)
    local after_plain = mg.get_rng_state()
    mg.manual_seed(4)
    mg.randperm(10)
    assert.same(after_plain, mg.get_rng_state()) -- the order alone, as before seeds
    local transformed = data.DataLoader(ds, {batch_size = 3, transform = function(x, y) return x, y end})
    transformed:iter()
    assert.equal("integer", math.type(transformed:state_dict().epoch_seed))
    local per_sample = data.DataLoader(random_images(), {batch_size = 3})
    per_sample:iter()
    assert.equal("integer", math.type(per_sample:state_dict().epoch_seed))
  end)

  it("differ from epoch to epoch and leave the main stream where the epoch seed left it", function()
    mg.manual_seed(2)
    local loader = images_loader(0)()
    local e1, e2 = {}, {}
    for x in loader:iter() do e1[#e1 + 1] = x:totable() end
    local after = mg.get_rng_state()
    for x in loader:iter() do e2[#e2 + 1] = x:totable() end
    assert.are_not.same(e1, e2)
    mg.manual_seed(2)
    mg.randperm(23)
    mg.randint(0, math.maxinteger, {1})
    assert.same(after, mg.get_rng_state())
  end)
end)

describe("DataLoader workers", function()
  it("give the same batches and draws with 0, 1, 2 and 3 workers, shuffled, over two epochs", function()
    mg.manual_seed(42)
    local ref = run(images_loader(0))
    assert.equal(2 * 6 + 1, #ref)
    for _, nw in ipairs{1, 2, 3} do
      mg.manual_seed(42)
      assert.same(ref, run(images_loader(nw)))
    end
    mg.manual_seed(42)
    assert.same(ref, run(images_loader(2, {prefetch_factor = 1})))
    assert.same({}, children())
  end)

  it("persistent ones stay from epoch to epoch and give the same batches", function()
    mg.manual_seed(42)
    local ref = run(images_loader(0), 3)
    mg.manual_seed(42)
    local loader = images_loader(2, {persistent_workers = true})()
    local out, pids = {}, {}
    for e = 1, 3 do
      for x, y, names in loader:iter() do out[#out + 1] = {x:totable(), y:totable(), names} end
      pids[e] = pids_of(children())
    end
    out[#out + 1] = mg.rand(3, "float64"):totable()
    assert.same(ref, out)
    assert.equal(2, #pids[1])
    assert.same(pids[1], pids[3])
    -- a break stops them (what they were asked for is not wanted); the next epoch forks anew
    for _ in loader:iter() do break end
    assert.same({}, children())
    loader:iter()()
    local again = children()
    assert.equal(2, count(again))
    for _, pid in ipairs(pids[1]) do assert.is_nil(again[pid]) end
    loader:close()
    assert.same({}, children())
  end)

  it("persistent ones take a loaded state's order and seed", function()
    mg.manual_seed(6)
    local a = images_loader(0)()
    for _ in a:iter() do end
    local it = a:iter()
    it()
    local sd, rng = a:state_dict(), mg.get_rng_state()
    local rest = {}
    for x in it do rest[#rest + 1] = x:totable() end

    local b = images_loader(2, {persistent_workers = true})()
    for _ in b:iter() do end                 -- the workers exist and are idle
    local before = pids_of(children())
    b:load_state_dict({perm = sd.perm:clone(), position = sd.position, epoch_seed = sd.epoch_seed})
    mg.set_rng_state(rng)
    local got = {}
    for x in b:iter() do got[#got + 1] = x:totable() end
    assert.same(rest, got)
    assert.same(before, pids_of(children()))
    b:close()
  end)

  it("resume mid-epoch from a state_dict with another worker count and yield the same batches", function()
    local function collect(it, out)
      for x, y, names in it do out[#out + 1] = {x:totable(), y:totable(), names} end
      return out
    end
    for _, counts in ipairs{{2, 3}, {2, 0}, {0, 2}} do
      mg.manual_seed(5)
      local loader = images_loader(counts[1])()
      for _ in loader:iter() do end                       -- epoch 1
      local it = loader:iter()                            -- epoch 2: three batches, then "crash"
      local full = {}
      for _ = 1, 3 do
        local x, y, names = it()
        full[#full + 1] = {x:totable(), y:totable(), names}
      end
      local sd, rng = loader:state_dict(), mg.get_rng_state()
      assert.equal(3, sd.position)
      assert.equal("integer", math.type(sd.epoch_seed))
      collect(it, full)
      collect(loader:iter(), full)                        -- epoch 3

      local again = images_loader(counts[2])()
      again:load_state_dict({perm = sd.perm:clone(), position = sd.position, epoch_seed = sd.epoch_seed})
      mg.set_rng_state(rng)
      local rest = collect(again:iter(), {})
      collect(again:iter(), rest)
      assert.equal(#full - 3, #rest)
      for k = 1, #rest do assert.same(full[k + 3], rest[k]) end
    end
    assert.same({}, children())
  end)

  it("carry numbers, strings, booleans, nested tables and tensors of every dtype exactly", function()
    local function collate(samples)
      local s = samples[1]
      return s[1], s[2], {
        int = math.maxinteger, big = 2 ^ 53 + 1, float = 0.1, neg_zero = -0.0, inf = math.huge,
        bytes = "\255\0\n" .. s[2], flag = true, off = false, [7] = "seven",
        nested = {{1, 2.5, "x"}, {s[1] * 2}},
        u8 = mg.tensor({{0, 255}, {7, 128}}):to("uint8"),
        f64 = mg.tensor({1 / 3, -1e300}, "float64"),
        i64 = mg.tensor({math.mininteger, -1}, "int64"),
        empty = mg.zeros(0, 3),
        strided = mg.arange(0, 12):float():reshape(3, 4):t(),
      }, nil, "last"
    end
    local ds = {len = function() return 3 end, get = function(_, i) return mg.full({2}, i / 3), i end}
    local function batches(nw)
      local loader = data.DataLoader(ds, {batch_size = 1, collate = collate, num_workers = nw})
      local out = {}
      for x, y, t, none, last in loader:iter() do
        assert.is_nil(none)
        out[#out + 1] = {x, y, t, last}
      end
      return out
    end
    local ref, got = batches(0), batches(2)
    assert.equal(3, #got)
    for b = 1, 3 do
      local r, g = ref[b], got[b]
      assert.same(r[1]:totable(), g[1]:totable())
      assert.equal(math.type(r[2]), math.type(g[2]))
      assert.equal(r[2], g[2])
      assert.equal("last", g[4])
      local rt, gt = r[3], g[3]
      for _, k in ipairs{"int", "big", "float", "inf", "bytes", "flag", "off", 7} do
        assert.equal(rt[k], gt[k])
        assert.equal(math.type(rt[k]), math.type(gt[k]))
      end
      assert.equal(-math.huge, 1 / gt.neg_zero)
      assert.same(rt.nested[1], gt.nested[1])
      assert.same(rt.nested[2][1]:totable(), gt.nested[2][1]:totable())
      for _, k in ipairs{"u8", "f64", "i64", "empty", "strided"} do
        assert.equal(rt[k]:dtype(), gt[k]:dtype())
        assert.same(rt[k]:shape(), gt[k]:shape())
        assert.same(rt[k]:totable(), gt[k]:totable())
      end
    end
  end)

  it("refuse a batch value that cannot leave a worker, naming it", function()
    local ds = {len = function() return 4 end, get = function(_, i) return mg.zeros(2), print end}
    local loader = data.DataLoader(ds, {batch_size = 2, num_workers = 2,
                                        collate = function(s) return s[1][1], s[1][2] end})
    local err = error_of(function() for _ in loader:iter() do end end)
    assert.matches("DataLoader: worker 1, batch 1: DataLoader: batch 1 cannot leave a worker: value 2 is a function", err, 1, true)
    assert.same({}, children())
  end)

  it("raise a worker's error at the batch where it happened, naming the file, and stop the workers", function()
    local ds = {len = function() return 20 end, get = function(_, i)
      if i == 13 then error("cannot decode /photos/cat13.jpg: not a JPEG file", 0) end
      return mg.full({2}, i), i
    end}
    local fds = open_fds()
    local loader = data.DataLoader(ds, {batch_size = 4, num_workers = 3})
    local got = {}
    local err = error_of(function()
      for _, y in loader:iter() do got[#got + 1] = y:totable()[1] end
    end)
    assert.same({1, 5, 9}, got)
    assert.equal("DataLoader: worker 1, batch 4: cannot decode /photos/cat13.jpg: not a JPEG file", err)
    assert.same({}, children())
    assert.equal(fds, open_fds())
  end)

  it("report a worker killed by a signal as such", function()
    local parent = mg._getpid()
    local ds = {len = function() return 12 end, get = function(_, i)
      if i == 6 and mg._getpid() ~= parent then mg._proc_kill(mg._getpid(), "KILL") end
      return mg.full({2}, i), i
    end}
    local loader = data.DataLoader(ds, {batch_size = 2, num_workers = 2})
    local err = error_of(function() for _ in loader:iter() do end end)
    assert.matches("^DataLoader: worker 1 %(pid %d+%) was killed by signal 9 %(%a+%) while making batch 3$", err)
    assert.same({}, children())
  end)

  it("ignore SIGINT and SIGTERM: the training process decides when they end", function()
    local ds = {len = function() return 8 end, get = function(_, i)
      local t = mg.clock()
      while mg.clock() - t < 0.02 do end -- busy in Lua, where a hook would strike
      return mg.full({1}, i), i
    end}
    local loader = data.DataLoader(ds, {batch_size = 1, num_workers = 2})
    local it = loader:iter()
    local got = {it():item()}
    for pid in pairs(children()) do
      mg._proc_kill(pid, "INT")
      mg._proc_kill(pid, "TERM")
    end
    for x in it do got[#got + 1] = x:item() end
    assert.same({1, 2, 3, 4, 5, 6, 7, 8}, got)
    assert.same({}, children())
  end)

  it("stop when the loop is left by break, when an iteration is dropped, and on a new iter()", function()
    local fds, shm = open_fds(), entries("/dev/shm")
    local loader = images_loader(2)()
    for _ in loader:iter() do break end
    assert.same({}, children())

    local it = loader:iter()
    it()
    assert.equal(2, count(children()))
    it = nil  -- luacheck: ignore (dropped unfinished)
    collectgarbage()
    collectgarbage()
    assert.same({}, children())

    it = loader:iter()
    it()
    local first = children()
    assert.equal(2, count(first))
    local pids = loader:worker_pids()      -- the ones alive now, in worker order
    assert.equal(2, #pids)
    for _, pid in ipairs(pids) do assert.is_truthy(first[pid], pid) end
    local it2 = loader:iter()   -- a new epoch stops the old one's workers
    it2()
    for pid in pairs(first) do assert.is_nil(children()[pid]) end
    assert.equal(2, count(children()))
    assert.matches("this iteration has ended: a newer iter%(%) or load_state_dict replaced it",
                   error_of(it))
    for _ in it2 do end        -- the last batch stops them
    assert.same({}, children())
    assert.same({}, loader:worker_pids())
    collectgarbage()
    assert.equal(fds, open_fds())
    assert.equal(shm, entries("/dev/shm"))
  end)

  it("train with fit as they do without workers, and resume a crashed run with another count", function()
    local function recipe(nw)
      mg.manual_seed(3)
      local ds = random_images()
      local net = nn.Sequential(nn.Flatten(), nn.Linear(75, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 23))
      local loader = data.DataLoader(ds, {batch_size = 4, shuffle = true, transform = jitter, num_workers = nw})
      return net, {train = loader, optimizer = optim.Adam(net, {lr = 0.01}), epochs = 2, progress = "quiet",
                   val = data.DataLoader(ds, {batch_size = 8, num_workers = nw})}
    end
    local net, o = recipe(0)
    local ref = train.fit(net, o)
    net, o = recipe(2)
    local with_workers = train.fit(net, o)
    assert.same(ref.batch_loss, with_workers.batch_loss)
    assert.equal(ref.epochs[2].val_loss, with_workers.epochs[2].val_loss)

    local dir = shell.tmpdir()
    net, o = recipe(2)
    o.checkpoint = {path = dir .. "/run.safetensors", every_n_batches = 2}
    o.callbacks = {{on_batch_end = function(ctx) if ctx.step == 9 then error("simulated crash", 0) end end}}
    assert.has_error(function() train.fit(net, o) end, "simulated crash")
    assert.same({}, children())
    net, o = recipe(3)
    o.resume = dir .. "/run.safetensors"
    local resumed = train.fit(net, o)
    os.execute("rm -rf " .. shell.quote(dir))
    assert.same(ref.batch_loss, resumed.batch_loss)
    assert.same({}, children())
  end)

  it("shard: the ranks' shares together are the unsharded batch, with or without workers", function()
    local size, B = 3, 2
    local function epoch(loader)
      local out = {}
      for x, y in loader:iter() do out[#out + 1] = {x = x, y = y:totable()} end
      return out
    end
    mg.manual_seed(8)
    local whole = epoch(data.DataLoader(random_images(), {batch_size = size * B, shuffle = true}))
    for _, nw in ipairs{0, 2} do
      -- rank 1 draws the order and the seed; the others take them (dist.shard's broadcast)
      local from_rank1 = {}
      local shares = {}
      for rank = 1, size do
        mg.manual_seed(rank == 1 and 8 or 100 + rank)
        local k = 0
        local loader = data.DataLoader(random_images(), {batch_size = B, shuffle = true, num_workers = nw})
          :shard(rank, size, function(t)
            k = k + 1
            if rank == 1 then from_rank1[k] = t:clone() else t:copy_(from_rank1[k]) end
          end)
        shares[rank] = epoch(loader)
      end
      for b, batch in ipairs(whole) do
        for r, i in ipairs(batch.y) do
          local rank, row = (r - 1) % size + 1, (r - 1) // size + 1
          local share = shares[rank][b]
          assert.equal(i, share.y[row])
          assert.same(batch.x[r]:totable(), share.x[row]:totable())
        end
      end
    end
  end)
end)

-- ---- in a process of its own: memory over epochs, and signals --------------------

local JOB = "spec/support/loader_job.lua"

local function run_job(args)
  return shell.run_merged(BUILD .. "/moongrad " .. JOB .. " " .. args)
end

describe("DataLoader workers in a training process", function()
  it("shard through moongrad.dist: ranks seeded apart draw what one loader draws, with or without workers", function()
    local mpi = require "support.mpi"
    local why = mpi.absent()
    if why then pending(why) return end
    local function sorted(text)
      local lines = {}
      for line in text:gmatch("[^\n]+") do
        if line:match("^epoch") then lines[#lines + 1] = line end
      end
      table.sort(lines)
      return lines
    end
    local whole = sorted(run_job("whole"))
    assert.equal(20, #whole)
    for _, nw in ipairs{0, 2} do
      local out, code = shell.run_merged(("%s -np 2 %s %s shard %d"):format(mpi.mpirun_within(120),
                                                                            mpi.EXE, JOB, nw))
      assert.equal(0, code, out)
      assert.same(whole, sorted(out))
    end
  end)

  for _, kind in ipairs{"", "persistent"} do
    it("keep the training process's resident memory flat from epoch to epoch " ..
       (kind == "" and "(workers per epoch)" or "(persistent workers)"), function()
      local out, code = run_job("rss " .. kind)
      assert.equal(0, code, out)
      local rss = {}
      for e, kib in out:gmatch("rss_after_(%d+)=(%d+)") do rss[tonumber(e)] = tonumber(kib) end
      assert.equal(8, #rss, out)
      -- 8 epochs of 32 batches of 64 x 3 x 32 x 32 floats (768 KiB each): a
      -- batch kept per epoch, or a slot mapping left behind, would be 1.5 MiB
      -- an epoch at least
      assert.is_true(rss[8] - rss[3] < 4 * 1024, out)
      assert.is_truthy(out:find("workers_left=0", 1, true), out)
    end)
  end

  it("let the collector free the batches under stock lua5.4, whose collector starts generational", function()
    local out, code = shell.run_merged("lua5.4 " .. JOB .. " memory")
    assert.equal(0, code, out)
    local mib = {}
    for e, v in out:gmatch("tensor_mib_after_(%d+)=([%d.]+)") do mib[tonumber(e)] = tonumber(v) end
    assert.equal(4, #mib, out)
    -- an epoch is 16 batches of 3 MiB: what lives at its end is a batch or two
    assert.is_true(mib[4] < 8 and mib[4] - mib[2] < 3, out)
  end)

  for _, sig in ipairs{"INT", "TERM"} do
    it("stop cleanly when SIG" .. sig .. " reaches the process group during fit", function()
      local dir = shell.tmpdir()
      -- setsid: a group of its own, as a terminal's Ctrl-C reaches a job
      local out = shell.run_merged(([[
        setsid %s/moongrad %s signal %s & pid=$!
        i=0; while [ ! -e %s/ready ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done
        kill -%s -$pid
        wait $pid; echo "exit=$?"
        echo "left=$(ps -o pid= -g $pid | wc -l)"]]):format(BUILD, JOB, shell.quote(dir),
          shell.quote(dir), sig))
      local workers = shell.read_file(dir .. "/ready")
      os.execute("rm -rf " .. shell.quote(dir))
      assert.matches("fit: interrupted by SIG" .. sig .. " at epoch 1, batch 3; checkpoint written to", out, 1, true)
      assert.matches("exit=1", out, 1, true)
      assert.matches("left=0", out, 1, true)
      assert.matches("^%d+ %d+$", workers)
      -- one message: no traceback or output from a worker
      assert.is_nil(out:find("traceback", 1, true), out)
      assert.is_nil(out:find("interrupted!", 1, true), out)
    end)
  end

  it("die with the training process when it is killed outright", function()
    local dir = shell.tmpdir()
    local out = shell.run_merged(([[
      setsid %s/moongrad %s signal %s & pid=$!
      i=0; while [ ! -e %s/ready ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done
      kill -KILL $pid
      wait $pid; echo "exit=$?"
      i=0; while [ -n "$(ps -o pid= -g $pid)" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done
      echo "left=$(ps -o pid= -g $pid | wc -l)"]]):format(BUILD, JOB, shell.quote(dir),
        shell.quote(dir)))
    os.execute("rm -rf " .. shell.quote(dir))
    assert.matches("exit=137", out, 1, true)
    assert.matches("left=0", out, 1, true)
  end)

  it("stop when Ctrl-C interrupts a plain loop", function()
    local dir = shell.tmpdir()
    local out = shell.run_merged(([[
      setsid lua5.4 %s loop %s & pid=$!
      i=0; while [ ! -e %s/ready ] && [ $i -lt 3000 ]; do sleep 0.02; i=$((i+1)); done
      kill -INT -$pid
      wait $pid; echo "exit=$?"
      echo "left=$(ps -o pid= -g $pid | wc -l)"]]):format(JOB, shell.quote(dir), shell.quote(dir)))
    os.execute("rm -rf " .. shell.quote(dir))
    -- stock lua5.4 raises "interrupted!" (the for loop stops the workers);
    -- a host without a SIGINT handler dies of it (the workers die with it)
    assert.is_truthy(out:find("interrupted!", 1, true) or out:find("exit=130", 1, true), out)
    assert.matches("left=0", out, 1, true)
  end)
end)
