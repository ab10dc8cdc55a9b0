-- moongrad.dist and fit{distributed = true}, on two ranks of mpirun on this
-- machine. Skipped, with the reason printed, only where Open MPI is absent
-- (tools/deps.sh installs it for make test).
local mg = require "moongrad"
local shell = require "support.shell"

local mpi = require "support.mpi"

local EXE, MPIRUN = mpi.EXE, mpi.MPIRUN

local function have(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local absent = mpi.absent()
if absent then print("\ndist_spec: skipping the mpirun specs: " .. absent) end

local tmpdir = shell.tmpdir

-- Runs code (a Lua chunk) on np ranks; returns stdout, stderr, exit code.
local function on_ranks(np, code)
  local dir = tmpdir()
  local path = dir .. "/job.lua"
  shell.write_file(path, code)
  local out, err, rc = shell.run(("%s -np %d %s %s"):format(MPIRUN, np, EXE, shell.quote(path)))
  os.execute("rm -rf " .. shell.quote(dir))
  return out, err, rc
end

local function job(args, np)
  local cmd = EXE .. " spec/support/dist_job.lua " .. args
  if np then cmd = ("%s -np %d %s"):format(MPIRUN, np, cmd) end
  return shell.run(cmd)
end

local function max_diff(a_path, b_path)
  local a, b = mg.load(a_path), mg.load(b_path)
  local worst, names = 0, 0
  for k, v in pairs(a) do
    assert(b[k], "missing " .. k)
    assert.same(v:shape(), b[k]:shape())
    worst = math.max(worst, (v - b[k]):abs():max():item())
    names = names + 1
  end
  for k in pairs(b) do assert(a[k], "extra " .. k) end
  return worst, names
end

describe("require 'moongrad.dist'", function()
  it("raises a clear error naming what to install when moongrad was built without MPI", function()
    -- the executable alone in a directory: no MPI module beside its core
    -- and none on the module path
    local dir = tmpdir()
    assert(os.execute(("cp %s %s/"):format(EXE, shell.quote(dir))))
    local code = "local ok, err = pcall(require, 'moongrad.dist'); print(ok, err); " ..
                 "print(require('moongrad').tensor({1, 2}):sum():item())"
    local out, err = shell.run(("cd / && MOONGRAD_LUA_DIR=%s LUA_CPATH='' %s/moongrad -e %s")
      :format(shell.quote(os.getenv("PWD") .. "/lua"), shell.quote(dir), shell.quote(code)))
    os.execute("rm -rf " .. shell.quote(dir))
    assert.matches("^false\t[^\n]*moongrad.dist needs MPI", out, nil, err)
    assert.matches("apt%-get install libopenmpi%-dev openmpi%-bin", out)
    assert.matches("mpirun", out)
    assert.matches("\n3.0\n$", out) -- everything else still works
  end)
end)

describe("moongrad.dist collectives on two ranks", function()
  if absent then pending("Open MPI is absent: " .. absent) return end

  local out, err, rc
  setup(function()
    out, err, rc = on_ranks(2, [[
      local mg = require "moongrad"
      local dist = require "moongrad.dist"
      local before = select(2, pcall(dist.rank))
      local r, n = dist.init()
      local function show(name, v) print(("%d %s %s"):format(r, name, v)) end
      local function list(t) return table.concat(t:reshape(-1):totable(), ",") end
      show("before", before)
      show("rank_size", r .. "/" .. n .. " main=" .. tostring(dist.is_main()))
      show("local", dist.local_rank() .. "/" .. dist.local_size())
      show("sum", list(dist.allreduce(mg.tensor({r, 10 * r}, "float32"), "sum")))
      show("mean", list(dist.allreduce(mg.tensor({r, 10 * r}, "float64"), "mean")))
      show("max", list(dist.allreduce(mg.tensor({r, -r}, "int64"), "max")))
      show("min", list(dist.allreduce(mg.tensor({r, -r}, "int64"), "min")))
      show("number", dist.allreduce(r * 1.5, "sum") .. "," .. dist.allreduce(r, "mean"))
      show("broadcast", list(dist.broadcast(mg.tensor({r, r, r}), 2)))
      local g = dist.allgather(mg.tensor({{r, r + 0.5}}))
      show("allgather", table.concat(g:shape(), "x") .. ":" .. list(g))
      dist.barrier()
      -- the gradient buckets: a 1-element bucket reduces each tensor alone
      -- and slices the big one; weights make a weighted sum
      local ts = {mg.full({5}, r, "float32"), mg.full({2, 3}, 10 * r, "float32"),
                  mg.full({1}, 100 * r, "float32")}
      require("moongrad.dist_mpi").allreduce_buckets(ts, r == 1 and 0.25 or 0.75, 4, 1)
      show("buckets", list(ts[1]) .. "|" .. list(ts[2]) .. "|" .. list(ts[3]))
      local errors = {
        function() dist.allreduce(mg.zeros(r), "sum") end,
        function() dist.allreduce(mg.zeros(2, r == 1 and "float32" or "float64"), "sum") end,
        function() dist.allreduce(mg.zeros(3, 4):t(), "sum") end,
        function() dist.allreduce(mg.zeros(3), "avg") end,
        function() dist.allreduce(mg.zeros(3, "int64"), "mean") end,
        function() dist.broadcast(mg.zeros(3), 3) end,
        function() dist.allreduce({1, 2}, "sum") end,
      }
      for i, f in ipairs(errors) do show("error" .. i, select(2, pcall(f))) end
      -- still in step after the errors
      show("after", list(dist.allreduce(mg.ones(2), "sum")))
    ]])
  end)

  local function line(rank, name)
    return out:match("\n?" .. rank .. " " .. name .. " ([^\n]*)")
  end

  it("ends the job, rather than hanging, when one rank fails while the others wait for it", function()
    local out, err, rc = on_ranks(2, [[
      local mg = require "moongrad"
      local dist = require "moongrad.dist"
      local r = dist.init()
      if r == 2 then error("rank 2 fails") end
      dist.allreduce(mg.ones(3), "sum")  -- rank 1 waits here for rank 2
      print("rank 1 went on")
    ]])
    assert.are_not.equal(0, rc)
    assert.matches("rank 2 fails", err)
    assert.matches("moongrad.dist: rank 2 is exiting with status 1 while other ranks wait " ..
                   "for it; ending the job %(MPI_Abort%)", err)
    assert.not_matches("rank 1 went on", out)
  end)

  it("runs both ranks to the end", function()
    assert.equal(0, rc, err)
    assert.equal("2.0,2.0", line(1, "after"))
    assert.equal("2.0,2.0", line(2, "after"))
  end)

  it("numbers ranks 1..size, rank 1 being the main one, and knows the ranks on this machine", function()
    assert.matches("dist.rank: call dist.init%(%) first", line(1, "before"))
    assert.equal("1/2 main=true", line(1, "rank_size"))
    assert.equal("2/2 main=false", line(2, "rank_size"))
    assert.equal("1/2", line(1, "local"))
    assert.equal("2/2", line(2, "local"))
  end)

  it("allreduces in place with sum, mean, max and min, on tensors and numbers", function()
    for r = 1, 2 do
      assert.equal("3.0,30.0", line(r, "sum"))
      assert.equal("1.5,15.0", line(r, "mean"))
      assert.equal("2,-1", line(r, "max"))
      assert.equal("1,-2", line(r, "min"))
      assert.equal("4.5,1.5", line(r, "number"))
    end
  end)

  it("broadcasts from the given root and gathers every rank's tensor in rank order", function()
    for r = 1, 2 do
      assert.equal("2.0,2.0,2.0", line(r, "broadcast"))
      assert.equal("2x1x2:1.0,1.5,2.0,2.5", line(r, "allgather"))
    end
  end)

  it("sums weighted gradient lists in buckets, leaving the trailing plain tensors unweighted", function()
    -- 0.25 * 1 + 0.75 * 2 = 1.75; 0.25 * 10 + 0.75 * 20 = 17.5; 100 + 200 = 300
    local want = "1.75,1.75,1.75,1.75,1.75|17.5,17.5,17.5,17.5,17.5,17.5|300.0"
    assert.equal(want, line(1, "buckets"))
    assert.equal(want, line(2, "buckets"))
  end)

  it("raises the same clear error on every rank when the ranks' tensors disagree", function()
    for r = 1, 2 do
      assert.matches("^dist.allreduce: ranks passed tensors of different sizes: from 1 to 2 " ..
                     "elements %(rank " .. r .. ": float32 %[" .. r .. "%]%)$", line(r, "error1"))
      assert.matches("^dist.allreduce: ranks passed tensors of different dtypes %(rank " .. r ..
                     ": float%d+ %[2%]%)$", line(r, "error2"))
    end
  end)

  it("rejects strided views, unknown ops, int64 means, bad roots and non-tensors by name", function()
    assert.matches("dist.allreduce: the tensor must be contiguous %(got a strided view of " ..
                   "float32 %[4,3%]%)", line(1, "error3"))
    assert.matches("dist.allreduce: op must be \"sum\", \"mean\", \"max\" or \"min\", got avg",
                   line(1, "error4"))
    assert.matches("dist.allreduce: \"mean\" needs a float tensor, got int64", line(1, "error5"))
    assert.matches("dist.broadcast: root must be a rank in 1..2, got 3", line(1, "error6"))
    assert.matches("dist.allreduce: expects a tensor as argument #1, got table", line(1, "error7"))
  end)
end)

describe("dist.split and dist.with_group", function()
  if absent then pending("Open MPI is absent: " .. absent) return end

  it("run a function with a group of ranks as the whole job, the world back after", function()
    -- rank 1 joins no group; ranks 2 and 3 form one
    local out, err, rc = on_ranks(3, [[
      local mg = require "moongrad"
      local dist = require "moongrad.dist"
      local w = dist.init()
      local function show(name, v) print(("%d %s %s"):format(w, name, v)) end
      local g = dist.split(w > 1 and 7 or nil)
      show("group", tostring(g))
      if g then
        dist.with_group(g, function()
          show("inside", ("%d/%d main=%s local=%d/%d"):format(dist.rank(), dist.size(),
               tostring(dist.is_main()), dist.local_rank(), dist.local_size()))
          show("sum", dist.allreduce(w, "sum"))
          show("string", dist.broadcast(w == 3 and "from world rank 3" or "", 2))
          local ddp = dist.DistributedDataParallel(require("moongrad.nn").Linear(2, 1),
                                                   {overlap = true})
          show("ddp", ddp:buckets())
        end)
        show("raised", select(2, pcall(dist.with_group, g, function() error("in the group") end)))
      end
      show("after", ("%d/%d sum=%g"):format(dist.rank(), dist.size(), dist.allreduce(w, "sum")))
      show("bad", select(2, pcall(dist.with_group, {}, print)))
      show("bad color", select(2, pcall(dist.split, -1)))
    ]])
    assert.equal(0, rc, err)
    assert.matches("1 group nil\n", out)
    for w = 2, 3 do
      assert.matches(w .. " group dist group %(rank " .. (w - 1) .. " of 2%)", out)
      assert.matches(w .. " inside " .. (w - 1) .. "/2 main=" .. tostring(w == 2) .. " local=" ..
                     (w - 1) .. "/2", out)
      assert.matches(w .. " sum 5%.0\n", out)
      assert.matches(w .. " string from world rank 3\n", out)
      assert.matches(w .. " ddp 1\n", out)
      assert.matches(w .. " raised [^\n]*in the group\n", out)
    end
    for w = 1, 3 do
      assert.matches(w .. " after " .. w .. "/3 sum=6\n", out)
      assert.matches(w .. " bad dist.with_group: expects a group from dist.split as argument #1, " ..
                     "got table", out)
      assert.matches(w .. " bad color dist.split: color must be an integer >= 0 or nil, got %-1",
                     out)
    end
  end)
end)

describe("scripts/fashion_mnist_mlp.lua --dist", function()
  if absent then pending("Open MPI is absent: " .. absent) return end

  it("trains on two ranks to the one-process run's accuracy, rank 1 alone printing and writing", function()
    local dir = tmpdir()
    local args = " --train-subset 6000 --epochs 3 --seed 2 --out "
    local one, err1, rc1 = shell.run(EXE .. " scripts/fashion_mnist_mlp.lua" .. args ..
                                     shell.quote(dir .. "/one"))
    assert.equal(0, rc1, err1)
    local two, err2, rc2 = shell.run(MPIRUN .. " -np 2 " .. EXE .. " scripts/fashion_mnist_mlp.lua --dist" ..
                                     args .. shell.quote(dir .. "/two"))
    assert.equal(0, rc2, err2)
    local a1 = tonumber(one:match("test accuracy: ([%d.]+)%%"))
    local a2 = tonumber(two:match("test accuracy: ([%d.]+)%%"))
    assert.is_number(a1)
    assert.is_number(a2)
    -- the same training but for the dropout masks (drawn per half batch)
    assert.is_true(a1 > 80 and math.abs(a1 - a2) < 2, ("one process %.2f%%, two ranks %.2f%%"):format(a1, a2))
    local _, printed = two:gsub("test accuracy:", "")
    assert.equal(1, printed)
    assert.is_true(have(dir .. "/two/history.csv") and have(dir .. "/two/curves.svg"))
    os.execute("rm -rf " .. shell.quote(dir))
  end)
end)

describe("examples/dist_loop.lua, a loop of one's own", function()
  if absent then pending("Open MPI is absent: " .. absent) return end

  it("trains on two ranks to the same weights on both, rank 1 printing", function()
    local out, err, rc = shell.run(("%s -np 2 %s examples/dist_loop.lua"):format(MPIRUN, EXE))
    assert.equal(0, rc, err)
    local losses = {}
    for v in out:gmatch("epoch %d  loss (%S+)") do losses[#losses + 1] = tonumber(v) end
    assert.equal(5, #losses)
    assert.is_true(losses[5] < losses[1] / 4)
    assert.matches("rank 1 of 2: weights sum %S+, ranks agree", out)
    assert.matches("rank 2 of 2: weights sum %S+, ranks agree", out)
  end)
end)

describe("DistributedDataParallel's overlap with backward", function()
  if absent then pending("Open MPI is absent: " .. absent) return end

  local function run(mode, overlap)
    local out, err, rc = shell.run(("%s -np 2 %s spec/support/dist_overlap.lua mode=%s overlap=%d")
      :format(MPIRUN, EXE, mode, overlap))
    assert.equal(0, rc, err)
    local r = {}
    for rank, key, value in out:gmatch("rank (%d) (%a+) ([^\n]*)") do
      r[key .. rank] = value
    end
    return r
  end

  it("gives the blocking sync's gradients and weights bit for bit, buckets starting during backward", function()
    local on, off = run("steps", 1), run("steps", 0)
    for rank = 1, 2 do
      assert.equal(off["weights" .. rank], on["weights" .. rank])
      assert.equal(off["grads" .. rank], on["grads" .. rank])
    end
    assert.equal(on.grads1, on.grads2)
    -- 4 buckets over 3 steps (a first one of 1 MiB at most: here 1 KiB
    -- like the rest), every one started before sync_gradients
    assert.equal("4 early 12", on.buckets1)
    assert.equal("0 early 0", off.buckets1)
  end)

  it("accumulates over backward passes run inside ddp:no_sync(fn)", function()
    local on, off = run("accum", 1), run("accum", 0)
    assert.equal(off.grads1, on.grads1)
    assert.equal(on.grads1, on.grads2)
    assert.is_nil(on.error1)
  end)

  it("raises on every rank when a second backward ran before the sync", function()
    local on = run("twice", 1)
    for rank = 1, 2 do
      assert.matches("ddp:sync_gradients: gradient %d changed after backward had sent it %(a " ..
                     "second backward, or .grad edited before the sync%); accumulate over " ..
                     "several backward passes inside ddp:no_sync%(fn%), then sync once",
                     on["error" .. rank])
    end
  end)
end)

describe("fit{distributed = true}", function()
  if absent then pending("Open MPI is absent: " .. absent) return end
  local dir
  setup(function() dir = tmpdir() end)
  teardown(function() os.execute("rm -rf " .. shell.quote(dir)) end)

  -- One process with batch 2B against two ranks with batch B each.
  local function equivalent(name, single, ranks, tol)
    local a, b = dir .. "/" .. name .. "-1.st", dir .. "/" .. name .. "-2.st"
    local out1, err1, rc1 = job(single .. " out=" .. a)
    assert.equal(0, rc1, err1)
    local out2, err2, rc2 = job("dist=1 " .. ranks .. " out=" .. b, 2)
    assert.equal(0, rc2, err2)
    assert.matches("rank 1 done", out2)
    assert.matches("rank 2 done", out2)
    local worst, names = max_diff(a, b)
    assert.is_true(names >= 4)
    assert.is_true(worst < tol, ("%s: weights differ by %g"):format(name, worst))
    return out1, out2
  end

  it("gives 2 ranks x batch B the weights of 1 process x batch 2B (SGD with momentum)", function()
    -- 203 samples: the last global batch (11) splits 6 + 5
    local out1, out2 = equivalent("sgd", "batch=32", "batch=16", 1e-5)
    -- and the same history: global losses and metrics on every rank
    local last1 = out1:match("epoch 3/3  (train_loss %S+  train_accuracy %S+  val_loss %S+  val_accuracy %S+)")
    local last2 = out2:match("epoch 3/3  (train_loss %S+  train_accuracy %S+  val_loss %S+  val_accuracy %S+)")
    assert.is_string(last1)
    assert.is_string(last2)
    local n1, n2 = {}, {}
    for v in last1:gmatch("%d%.%d+") do n1[#n1 + 1] = tonumber(v) end
    for v in last2:gmatch("%d%.%d+") do n2[#n2 + 1] = tonumber(v) end
    for i = 1, 4 do assert.near(n1[i], n2[i], 2e-4) end
  end)

  it("gives the same weights with AdamW and weight decay on a convolutional net", function()
    equivalent("adamw-conv", "batch=32 opt=adam model=conv", "batch=16 opt=adam model=conv", 1e-5)
  end)

  it("gives the same weights with the gradients sent during backward (overlap = true)", function()
    equivalent("overlap", "batch=32", "batch=16 overlap=1", 1e-5)
    equivalent("overlap-empty-share", "batch=202 epochs=4", "batch=101 epochs=4 overlap=1", 1e-5)
  end)

  it("stays exact when a rank's share of the last batch is empty", function()
    -- batch 2 x 101 = 202: the last global batch has 1 sample, rank 2 none
    equivalent("empty-share", "batch=202 epochs=4", "batch=101 epochs=4", 1e-5)
  end)

  it("leaves a parameter no forward uses without a gradient on every rank", function()
    local _, out2 = equivalent("unused", "batch=32 unused=1", "batch=16 unused=1", 1e-5)
    assert.matches("rank 1 done spare_grad=nil", out2)
    assert.matches("rank 2 done spare_grad=nil", out2)
  end)

  it("lets only rank 1 print progress and write logs and checkpoints", function()
    -- each rank in its own directory: relative paths show who wrote what
    for r = 1, 2 do assert(os.execute(("mkdir -p %s/w%d"):format(shell.quote(dir), r))) end
    local cmd = EXE .. " " .. shell.quote(os.getenv("PWD") .. "/spec/support/dist_job.lua") ..
                " dist=1 log=history.csv ckpt=last.st"
    local out, err, rc = shell.run(("cd %s && %s -np 1 -wdir w1 %s : -np 1 -wdir w2 %s")
      :format(shell.quote(dir), MPIRUN, cmd, cmd))
    assert.equal(0, rc, err)
    local _, epochs = out:gsub("epoch %d/3", "")
    assert.equal(3, epochs)
    assert.is_true(have(dir .. "/w1/history.csv"))
    assert.is_true(have(dir .. "/w1/last.st"))
    assert.is_false(have(dir .. "/w2/history.csv"))
    assert.is_false(have(dir .. "/w2/last.st"))
  end)

  it("stops every rank at the same step when one rank is interrupted, and resumes exactly", function()
    local full, part, ck = dir .. "/full.st", dir .. "/resumed.st", dir .. "/ck.st"
    local _, err0, rc0 = job("dist=1 batch=16 out=" .. full, 2)
    assert.equal(0, rc0, err0)
    -- SIGINT on rank 2 alone after step 9's gradients were summed (epoch 2,
    -- batch 2 of 7): the ranks learn of it with step 10's and stop after it
    local out, _, rc = job("dist=1 batch=16 signal_at=9 ckpt=" .. ck, 2)
    assert.are_not.equal(0, rc)
    assert.matches("rank 1 error: fit: interrupted by a signal on another rank at epoch 2, " ..
                   "batch 3; checkpoint written to " .. ck:gsub("%p", "%%%0"), out)
    assert.matches("rank 2 error: fit: interrupted by SIGINT at epoch 2, batch 3", out)
    local out2, err2, rc2 = job("dist=1 batch=16 resume=" .. ck .. " out=" .. part, 2)
    assert.equal(0, rc2, err2 .. out2)
    assert.equal(0, (max_diff(full, part)))
  end)

  it("raises a clear error for a bad distributed option", function()
    local out = on_ranks(1, [[
      local train, optim, nn, data, mg = require "moongrad.train", require "moongrad.optim",
        require "moongrad.nn", require "moongrad.data", require "moongrad"
      local m = nn.Linear(2, 2)
      local l = data.DataLoader(data.TensorDataset(mg.randn(4, 2), mg.tensor({1, 2, 1, 2}, "int64")))
      print(select(2, pcall(train.fit, m, {train = l, optimizer = optim.SGD(m, {lr = 0.1}),
        distributed = {buckets = 3}})))
      print(select(2, pcall(train.fit, m, {train = l, optimizer = optim.SGD(m, {lr = 0.1}),
        distributed = "yes"})))
    ]])
    assert.matches("fit: unknown distributed option 'buckets' %(known: bucket_mb, overlap%)", out)
    assert.matches("fit: distributed must be true, false or {bucket_mb = n, overlap = bool}, got yes", out)
  end)
end)
