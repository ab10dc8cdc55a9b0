-- `make bench-dist`'s harness (bench/dist_scaling.lua over
-- bench/dist_worker.lua) in its --quick form: a few steps of each
-- configuration under mpirun, the lines it prints, the projection's
-- arithmetic and the Markdown tables. Timings themselves are never asserted.
-- Needs Open MPI: without mpirun or the dist_mpi module the specs are
-- pending, saying why. Specs run from the repository root, after `make`.

local BUILD = require "support.build"
local EXE = BUILD .. "/moongrad"

local run = require("support.shell").run_merged

-- The fields of the `dist <model> ...` line that starts with `prefix`.
local function fields(out, prefix)
  local line = out:match("\n" .. prefix:gsub("%p", "%%%0") .. " ([^\n]*)")
  if not line then return nil end
  local t = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

describe("bench/dist_scaling.lua --quick", function()
  local why = require("support.mpi").absent()
  if why then
    print("dist_bench_spec: skipped: " .. why)
    pending("skipped: " .. why)
    return
  end

  local md = os.tmpname()
  local out, code
  setup(function()
    -- --md elsewhere, so that the specs leave a full run's build/dist_scaling.md alone
    out, code = run(("%s%s bench/dist_scaling.lua --quick --md %s"):format(require("support.mpi").ENV, EXE, md))
  end)
  teardown(function() os.remove(md) end)

  it("runs every configuration under mpirun and exits 0", function()
    assert.equal(0, code, out)
    assert.matches("^dist_scaling: .* cores, .*Open MPI.*; 1 pairs", out)
  end)

  for _, model in ipairs({ "mlp", "cnn" }) do
    it("prints " .. model .. "'s measured lines: rates, the compute/comm split, the gradient size", function()
      local one = fields(out, "dist " .. model .. " ranks=1 threads=2")
      local two = fields(out, "dist " .. model .. " ranks=2 threads=1")
      local single = fields(out, "dist " .. model .. " ranks=1 threads=1")
      assert(one and two and single, out)
      for _, t in ipairs({ one, two, single }) do
        assert.is_true(t.samples_per_s > 0 and t.step_ms > 0, out)
      end
      assert.is_true(two.compute_ms > 0 and two.comm_ms > 0 and two.allreduce_ms > 0, out)
      assert.is_true(math.abs(two.vs_1rank - two.samples_per_s / one.samples_per_s) < 0.01 * two.vs_1rank, out)
      assert.equal(1, two.buckets) -- both models fit one 25 MiB bucket
    end)
  end

  it("reports the gradient bytes as parameters x 4", function()
    -- 784*512+512 + 512*256+256 + 256*10+10 and the CNN's 824,650 parameters
    assert.equal("2.14", tostring(fields(out, "dist mlp ranks=2 threads=1").grad_mb))
    assert.equal("3.3", tostring(fields(out, "dist cnn ranks=2 threads=1").grad_mb))
  end)

  it("projects 8 and 64 ranks with the ring-allreduce model it states", function()
    for _, model in ipairs({ "mlp", "cnn" }) do
      local grad_bytes = fields(out, "dist " .. model .. " ranks=2 threads=1").grad_mb * 1e6
      local single = fields(out, "dist " .. model .. " ranks=1 threads=1")
      for _, n in ipairs({ 8, 64 }) do
        local p = fields(out, ("dist %s projected ranks=%d net=10Gbit"):format(model, n))
        assert(p, out)
        local t_comm = 2 * (n - 1) / n * grad_bytes / 1.25e9 + 2 * (n - 1) * 25e-6
        assert.near(1e3 * t_comm, p.comm_ms, 0.01 * p.comm_ms)
        assert.near(single.step_ms, p.compute_ms, 0.01 * p.compute_ms)
        local eff = p.compute_ms / (p.compute_ms + p.comm_ms)
        assert.near(eff, p.efficiency, 0.006)
        assert.near(n * 128 / (p.compute_ms + p.comm_ms) * 1e3, p.samples_per_s, 0.01 * p.samples_per_s)
      end
    end
  end)

  it("writes the measured and projected Markdown tables", function()
    local f = assert(io.open(md))
    local text = f:read("a")
    f:close()
    assert.matches("| model | 1 rank × 2 threads (samples/s) | 2 ranks × 1 thread (samples/s) | ratio |", text, 1, true)
    assert.matches("\n| MLP 784%-512%-256%-10 | %d+ | %d+ | [%d.]+× |", text)
    assert.matches("\n| CNN [^|]* | %d+ | %d+ | [%d.]+× |", text)
    assert.matches("| model | ranks | t_c ms | t_comm ms | samples/s | efficiency |", text, 1, true)
    assert.matches("\n| MLP 784%-512%-256%-10 | 64 | [%d.]+ | [%d.]+ | %d+ | %d+%% |", text)
    assert.matches("\n| CNN [^|]* | 8 | [%d.]+ | [%d.]+ | %d+ | %d+%% |", text)
    assert.matches("wrote " .. md, out, 1, true)
  end)
end)
