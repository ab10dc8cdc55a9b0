-- `make bench`'s harness and workloads: each workload script runs (in a
-- short form) and reports its figure, and bench/run.lua prints the lines
-- and the Markdown table the README quotes. Timings themselves are never
-- asserted. Specs run from the repository root, after `make`.

local BUILD = require "support.build"
local EXE = BUILD .. "/moongrad"

local run = require("support.shell").run_merged

local function result(out)
  return tonumber(out:match("result (%S+)"))
end

describe("the bench workloads", function()
  it("time a small op, a backward chain and a matmul in µs", function()
    for _, mode in ipairs({ "add_2x2", "chain_backward", "matmul_100" }) do
      local out, code = run(EXE .. " bench/ops.lua " .. mode .. " 1")
      assert.equal(0, code, out)
      local v = result(out)
      assert(v and v > 0 and v < 1e5, mode .. ": " .. out)
    end
  end)

  it("time the MLP's training step and report a positive figure", function()
    local out, code = run(EXE .. " bench/mlp.lua step_b16 1")
    assert.equal(0, code, out)
    assert.is_true(result(out) > 0, out)
  end)

  it("run the CNN on Fashion-MNIST for a few steps and extrapolate an epoch", function()
    local out, code = run(EXE .. " bench/cnn.lua epoch 1 2")
    assert.equal(0, code, out)
    assert.is_true(result(out) > 0, out)
  end)

  it("train the character-level MLP on the word list and report steps per second", function()
    local out, code = run(EXE .. " bench/charlm.lua steps 1")
    assert.equal(0, code, out)
    assert.is_true(result(out) > 0, out)
  end)

  it("load a folder of images with workers and report images/s, then the loader's peak memory", function()
    local mg = require "moongrad"
    local shell = require "support.shell"
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

  it("refuse an unknown mode with a usage line", function()
    local out, code = run(EXE .. " bench/mlp.lua sideways 1")
    assert.are_not.equal(0, code)
    assert.matches("usage: .*mlp.lua <epoch|gemm|step_b1|step_b16> <threads>", out)
  end)
end)

describe("bench/run.lua", function()
  local md = os.tmpname()
  teardown(function() os.remove(md) end)

  it("prints one line per workload and thread count, and the Markdown table", function()
    local out, code = run(("%s bench/run.lua --pairs 1 --only op_add_2x2,startup,matmul_100 "
      .. "--threads 1,2 --python none --md %s"):format(EXE, md))
    assert.equal(0, code, out)
    local lines = {}
    for name, threads, m, rest in out:gmatch("\nbench (%S+) threads=(%d) moongrad=(%S+) (pytorch=[^\n]*)") do
      lines[#lines + 1] = name .. "/" .. threads
      assert.is_true(tonumber(m) > 0, name)
      assert.matches("^pytorch=n/a unit=%S+ speedup=n/a$", rest)
    end
    -- matmul_100 at both thread counts, the single-threaded ones once.
    assert.same({ "op_add_2x2/1", "matmul_100/1", "matmul_100/2", "startup/1" }, lines)
    assert.matches("PyTorch not installed", out)
    local f = assert(io.open(md))
    local text = f:read("a")
    f:close()
    assert.matches("| workload | threads | moongrad | PyTorch | unit | speedup | target | met |", text, 1, true)
    assert.matches("\n| op_add_2x2 | 1 | %S+ | n/a | us | n/a | ≤ 0.3 us | %a+ |", text)
    assert.matches("\n| startup | 1 | %S+ | n/a | ms | n/a | ≥ 50× | n/a |", text)
  end)
end)
