-- `make bench`'s harness and workloads: each workload script runs in its
-- short form (MOONGRAD_BENCH_QUICK: one repetition) and reports
-- its figure, and bench/run.lua prints the lines and the Markdown table the
-- README quotes, with the spread and the settings. Timings themselves are
-- never asserted. Specs run from the repository root, after `make`.

local BUILD = require "support.build"
local EXE = BUILD .. "/moongrad"
local shell = require "support.shell"
local peers = require "support.peers"

local run = shell.run_merged
local QUICK = "MOONGRAD_BENCH_QUICK=1 "

local function result(out)
  return tonumber(out:match("result (%S+)"))
end

-- Every workload with a PyTorch twin: script, mode.
local WORKLOADS = {
  { "ops", "add_2x2" }, { "ops", "chain_backward" }, { "ops", "matmul_100" },
  { "mlp", "step_b1" }, { "mlp", "step_b16" }, { "mlp", "epoch" }, { "mlp", "gemm" },
  { "cnn", "epoch" }, { "cnn_step", "step" }, { "charlm", "steps" },
  { "recurrent", "lstm" }, { "recurrent", "gru" }, { "transformer", "step" }, { "resnet", "step" },
}

-- Checks one run's output: exit 0, the thread count asked for, a positive result.
local function check_run(cmd, threads)
  local out, code = run(QUICK .. cmd)
  assert.equal(0, code, cmd .. "\n" .. out)
  assert(out:match("^threads " .. threads .. "\n"), cmd .. ": " .. out)
  local v = result(out)
  assert(v and v > 0 and v < math.huge, cmd .. ": " .. out)
  return out
end

describe("the bench workloads", function()
  it("each run in their short form, report the thread count they run with and a positive figure", function()
    for _, w in ipairs(WORKLOADS) do
      local out = check_run(("%s bench/%s.lua %s 1"):format(EXE, w[1], w[2]), 1)
      if w[2] == "epoch" and w[1] == "mlp" then assert.matches("\nrss_mib %d", out) end
    end
  end)

  it("include the samplers' search benchmark, which prints regrets and writes its table", function()
    local md = os.tmpname()
    local out, code = run(("%s bench/tune_samplers.lua --seeds 1 --only branin --samplers random,tpe " ..
                           "--no-peer --md %s"):format(EXE, shell.quote(md)))
    assert.equal(0, code, out)
    assert.matches("\nbranin +moongrad random +regret +[%d.e+-]+ %(", out)
    assert.matches("\nbranin +moongrad tpe +regret +[%d.e+-]+ %(", out)
    local text = shell.read_file(md)
    os.remove(md)
    assert.matches("| branin | moongrad tpe | [%d.e+-]+ %(", text)
  end)

  it("pin the thread count asked for", function()
    check_run(EXE .. " bench/recurrent.lua gru 2", 2)
  end)

  it("have PyTorch twins that run the same short forms", function()
    local why = peers.missing("torch", "python3-torch", "the bench's PyTorch twins")
    if why then pending(why) return end
    -- one mode of each script: every PyTorch start costs a second or two
    local seen = {}
    for _, w in ipairs(WORKLOADS) do
      if not seen[w[1]] then
        seen[w[1]] = true
        check_run(("OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/%s.py %s 1"):format(w[1], w[2]), 1)
      end
    end
  end)

  it("drop gradients in the PyTorch twins (set_to_none=True), as moongrad's zero_grad does", function()
    local calls = 0
    for path in shell.run_merged("ls bench/*.py"):gmatch("[^\n]+") do
      local text = shell.read_file(path)
      for args in text:gmatch("%.zero_grad(%b())") do
        calls = calls + 1
        assert.equal("(set_to_none=True)", args, path)
      end
    end
    assert.equal(1, calls) -- common.step, which every training twin steps with
  end)

  it("give every PyTorch optimizer foreach=True, its faster multi-tensor update", function()
    local made = 0
    for path in shell.run_merged("ls bench/*.py"):gmatch("[^\n]+") do
      for args in shell.read_file(path):gmatch("torch%.optim%.%w+(%b())") do
        made = made + 1
        assert.matches("foreach=True", args, 1, true)
      end
    end
    assert.is_true(made >= 6)
  end)

  it("load a folder of images with workers and report images/s, then the loader's peak memory", function()
    local mg = require "moongrad"
    local dir = shell.tmpdir()
    for k = 1, 2 do
      os.execute(("mkdir -p %s/c%d"):format(dir, k))
      for i = 1, 10 do mg.image.save(("%s/c%d/%d.png"):format(dir, k, i), mg.rand(3, 40, 50)) end
    end
    local out, code = run(EXE .. " bench/images.lua throughput 1 " .. dir)
    assert.equal(0, code, out)
    assert.is_true(result(out) > 0, out)
    out, code = run(EXE .. " bench/images.lua rss 1 " .. dir)
    assert.equal(0, code, out)
    assert.is_true(tonumber(out:match("rss_mib (%S+)")) > 0, out)
    shell.run("rm -rf " .. shell.quote(dir))
  end)

  it("refuse an unknown mode or a thread count that is not a positive integer with a usage line", function()
    for _, args in ipairs { "sideways 1", "epoch 0", "epoch two" } do
      local out, code = run(EXE .. " bench/mlp.lua " .. args)
      assert.are_not.equal(0, code)
      assert.matches("usage: .*mlp.lua <epoch|gemm|step_b1|step_b16> <threads>", out)
    end
  end)
end)

describe("bench/run.lua", function()
  local md = os.tmpname()
  local dir = shell.tmpdir()
  -- A stand-in for python3 with "PyTorch" installed: its workloads report
  -- 4, 2, then 8 (units) on their first, second and later runs, at
  -- FAKE_THREADS threads or else the count they were asked for.
  local fake = dir .. "/python3"
  shell.write_file(fake, [[#!/bin/sh
if [ "$1" = -c ]; then case "$2" in *print*) echo 9.9-fake;; esac; exit 0; fi
runs="$(dirname "$0")/runs"
echo x >> "$runs"
case $(wc -l < "$runs") in 1) v=4;; 2) v=2;; *) v=8;; esac
echo "threads ${FAKE_THREADS:-$3}"
echo "result $v"
]])
  os.execute("chmod +x " .. shell.quote(fake))
  teardown(function()
    os.remove(md)
    shell.run("rm -rf " .. shell.quote(dir))
  end)

  local function read_md()
    local f = assert(io.open(md))
    local text = f:read("a")
    f:close()
    return text
  end

  it("prints a line per workload and thread count with each side's spread, and the Markdown table", function()
    local out, code = run(("%s%s bench/run.lua --pairs 1 --only op_add_2x2,startup,matmul_100 "
      .. "--threads 1,2 --python none --md %s"):format(QUICK, EXE, md))
    assert.equal(0, code, out)
    local lines = {}
    for name, threads, m, lo, hi, rest in
        out:gmatch("\nbench (%S+) threads=(%d) moongrad=(%S+) moongrad_spread=(%S+)%.%.(%S+) ([^\n]*)") do
      lines[#lines + 1] = name .. "/" .. threads
      assert.is_true(tonumber(lo) > 0 and tonumber(lo) <= tonumber(m) and tonumber(m) <= tonumber(hi), name)
      assert.matches("^pytorch=n/a pytorch_spread=n/a unit=%S+ speedup=n/a speedup_spread=n/a$", rest)
    end
    -- matmul_100 at both thread counts, the single-threaded ones once.
    assert.same({ "op_add_2x2/1", "matmul_100/1", "matmul_100/2", "startup/1" }, lines)
    assert.matches("PyTorch not installed", out)
    assert.matches("MOONGRAD_BENCH_QUICK is set", out)
    assert.matches("\nbench: moongrad %S+ %(%w+%): mg.set_num_threads%(n%)\n", out)
    assert.matches("\nbench: environment of both sides: OPENBLAS_CORETYPE=%S+; OMP/OpenBLAS: ", out)
    assert.matches("\nbench: load average at start: [%d.]+ [%d.]+ [%d.]+\n", out)
    local text = read_md()
    assert.matches("| workload | threads | moongrad | PyTorch | unit | speedup | target | met |", text,
                   1, true)
    assert.matches("\n| op_add_2x2 | 1 | %S+ %(%S+–%S+%) | n/a | us | n/a | ≤ 0.3 us | %a+ |", text)
    assert.matches("\n| startup | 1 | %S+ %(%S+–%S+%) | n/a | ms | n/a | ≥ 50× | n/a |", text)
    assert.matches("OPENBLAS_CORETYPE=", text, 1, true)
    assert.matches("Load average", text, 1, true)
  end)

  it("gives each side's median and spread over the pairs, and the spread of the pairs' speedups", function()
    os.remove(dir .. "/runs")
    local out, code = run(("%s%s bench/run.lua --pairs 3 --only op_add_2x2 --python %s --md %s")
      :format(QUICK, EXE, fake, md))
    assert.equal(0, code, out)
    local lo, hi, slo, shi = out:match("\nbench op_add_2x2 threads=1 moongrad=%S+ "
      .. "moongrad_spread=(%S+)%.%.(%S+) pytorch=4 pytorch_spread=2%.%.8 unit=us speedup=%S+ "
      .. "speedup_spread=(%S+)%.%.(%S+)\n")
    assert(lo, out)
    assert.is_true(0 < tonumber(lo) and tonumber(lo) <= tonumber(hi), out)
    -- the pairs' own ratios (4, 2 and 8 over moongrad's figures) are not all equal
    assert.is_true(0 < tonumber(slo) and tonumber(slo) < tonumber(shi), out)
    assert.matches("\nbench: PyTorch 9.9%-fake: torch.set_num_threads%(n%), "
                   .. "torch.set_num_interop_threads%(1%)", out)
    assert.matches("zero_grad(set_to_none=True)", out, 1, true)
    assert.matches("\n| op_add_2x2 | 1 | %S+ %(%S+–%S+%) | 4 %(2–8%) | us | %S+× %(%S+–%S+%) "
                   .. "| ≤ 0.3 us | %a+ |", read_md())
  end)

  it("refuses a run that reports another thread count than the one asked for", function()
    local out, code = run(("FAKE_THREADS=1 %s%s bench/run.lua --pairs 1 --only matmul_100 --threads 2 "
      .. "--python %s --md %s"):format(QUICK, EXE, fake, md))
    assert.are_not.equal(0, code)
    assert.matches("bench: asked for 2 threads, the run reports 1:", out, 1, true)
    assert.matches("bench/ops.py' matmul_100 2", out, 1, true)
  end)

  it("refuses an unknown workload or a pair count below one", function()
    local out, code = run(EXE .. " bench/run.lua --python none --only op_add,startup")
    assert.are_not.equal(0, code)
    assert.matches("--only: no workload 'op_add' (workloads: ", out, 1, true)
    out, code = run(EXE .. " bench/run.lua --python none --pairs 0")
    assert.are_not.equal(0, code)
    assert.matches("--pairs must be a positive integer, got 0", out, 1, true)
  end)
end)
