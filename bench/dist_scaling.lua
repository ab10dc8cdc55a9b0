-- `make bench-dist`: data-parallel scaling of moongrad.dist on this machine,
-- and a projection to a cluster.
--
--   build/moongrad bench/dist_scaling.lua [--steps 500] [--pairs 5] [--quick]
--                                         [--md build/dist_scaling.md]
--
-- For the Fashion-MNIST MLP (784-512-256-10) and CNN (scripts/
-- fashion_mnist_cnn.lua's), per-rank batch 128, each configuration runs as
-- its own mpirun job of bench/dist_worker.lua:
--   1x2  one rank with two threads (mpirun -np 1 --bind-to none): the
--        whole machine in one process, the figure to beat
--   2x1  two ranks with one thread each (mpirun -np 2): data-parallel
--   1x1  one rank, one thread: the per-rank compute time of the projection
-- Weak scaling: the per-rank batch is fixed, so two ranks train on twice
-- the samples per step. The MLP times --steps steps, the CNN a fifth as
-- many (its step is ~20x longer), after a few untimed ones. The machine is
-- shared, so the configurations alternate (1x2 2x1 1x1, --pairs times) and
-- medians are reported. Lines:
--
--   dist mlp ranks=2 threads=1 samples_per_s=... vs_1rank=... compute_ms=...
--       comm_ms=... grad_mb=...
--   dist mlp projected ranks=8 net=10Gbit samples_per_s=... efficiency=...
--
-- The projection: N ranks of one thread each on a 10 Gbit/s network, a ring
-- allreduce after backward (DistributedDataParallel's default; no overlap):
--   t_comm(N) = 2(N-1)/N * bytes / 1.25e9 B/s + 2(N-1) * alpha * buckets
-- with alpha = 25 us per message (a typical 10 GbE TCP latency, assumed, not
-- measured), bytes = parameters * 4, t_c = the 1x1 step time, and
--   samples/s(N) = N * B / (t_c + t_comm(N)),  efficiency = t_c / (t_c + t_comm(N))
-- i.e. against N times the one-thread single rank.
local util = require "moongrad.util"

local opts = util.parse_flags(arg, { steps = 500, pairs = 5, quick = false, md = "build/dist_scaling.md" })
if opts.quick then opts.steps, opts.pairs = 10, 1 end
local here = arg[0]:match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")
local sh_quote, median = harness.sh_quote, harness.median
local exe = arg[-1] or "build/moongrad"

local NET_BPS, NET_NAME, ALPHA = 1.25e9, "10Gbit", 25e-6
local PROJECT = { 8, 64 }
local MODELS = {
  { name = "mlp", title = "MLP 784-512-256-10", steps = math.floor(opts.steps) },
  { name = "cnn", title = "CNN (2 conv+BN, 2 linear)", steps = math.max(2, math.floor(opts.steps) // 5) },
}
local CONFIGS = { -- ranks, threads per rank, mpirun's extra flags
  { key = "1x2", ranks = 1, threads = 2, flags = "--bind-to none" },
  { key = "2x1", ranks = 2, threads = 1, flags = "" }, -- Open MPI binds each rank to a core
  { key = "1x1", ranks = 1, threads = 1, flags = "--bind-to none" },
}



local function run(cmd) return harness.run(cmd, "dist_scaling") end

if os.execute("command -v mpirun >/dev/null 2>&1") ~= true then
  error("dist_scaling: mpirun not found (apt-get install openmpi-bin)", 0)
end

-- One worker job; returns its `run` line's fields as numbers.
local function launch(model, cfg)
  local cmd = ("mpirun --allow-run-as-root --oversubscribe -np %d %s %s %s --model %s --threads %d "
               .. "--steps %d --warmup %d")
    :format(cfg.ranks, cfg.flags, sh_quote(exe), sh_quote(here .. "dist_worker.lua"), model.name,
            cfg.threads, model.steps, math.max(1, model.steps // 20))
  local out = run(cmd)
  local line = out:match("run (model=[^\n]*)")
  if not line then error(("dist_scaling: no 'run' line from\n  %s\n%s"):format(cmd, out), 0) end
  local r = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do r[k] = tonumber(v) or v end
  return r
end

-- The 1-minute load average, to show what else the machine was doing.
local function load1()
  local f = io.open("/proc/loadavg")
  local v = f and tonumber(f:read("l"):match("^(%S+)"))
  if f then f:close() end
  return v or 0 / 0
end

local cpu = run("grep -m1 'model name' /proc/cpuinfo"):match(":%s*([^\n]*)") or "unknown CPU"
local cores = run("nproc"):match("%d+")
local mpi = run("mpirun --version"):match("[^\n]+")
print(("dist_scaling: %s, %s cores, %s, %s; %d pairs, alternating 1x2 2x1 1x1; load %.2f")
  :format(cpu, cores, mpi, os.date("!%Y-%m-%d %H:%M UTC"), opts.pairs, load1()))
local load_start = load1()

-- ---- measure ---------------------------------------------------------------------
local FIELDS = { "samples_per_s", "step_ms", "compute_ms", "comm_ms", "mpi_ms", "allreduce_ms" }
local results = {} -- results[model][config key][field] = median
for _, model in ipairs(MODELS) do
  local runs = {}
  for _, cfg in ipairs(CONFIGS) do runs[cfg.key] = {} end
  for _ = 1, math.floor(opts.pairs) do
    for _, cfg in ipairs(CONFIGS) do
      local r = launch(model, cfg)
      table.insert(runs[cfg.key], r)
      -- each run as it ends, with the load, so that a disturbed one shows
      print(("  run %s %s samples_per_s=%.0f load=%.2f"):format(model.name, cfg.key, r.samples_per_s, load1()))
    end
  end
  local res = {}
  for key, list in pairs(runs) do
    local m = { params = list[1].params, buckets = list[1].buckets, batch = list[1].batch }
    for _, f in ipairs(FIELDS) do
      local xs = {}
      for i, r in ipairs(list) do xs[i] = r[f] end
      m[f] = median(xs)
    end
    res[key] = m
  end
  results[model.name] = res
end

local load_end = load1()
print(("dist_scaling: load average %.2f before the runs, %.2f after"):format(load_start, load_end))

-- ---- report ----------------------------------------------------------------------
local function comm_model(n, bytes, buckets)
  return 2 * (n - 1) / n * bytes / NET_BPS + 2 * (n - 1) * ALPHA * buckets
end

local measured, projected = {}, {}
for _, model in ipairs(MODELS) do
  local res = results[model.name]
  local one, two, single = res["1x2"], res["2x1"], res["1x1"]
  local bytes = one.params * 4
  local grad_mb = bytes / 1e6
  print(("dist %s ranks=1 threads=2 samples_per_s=%.0f step_ms=%.3g")
    :format(model.name, one.samples_per_s, one.step_ms))
  print(("dist %s ranks=2 threads=1 samples_per_s=%.0f vs_1rank=%.3g step_ms=%.3g compute_ms=%.3g "
         .. "comm_ms=%.3g mpi_ms=%.3g allreduce_ms=%.3g grad_mb=%.3g buckets=%d")
    :format(model.name, two.samples_per_s, two.samples_per_s / one.samples_per_s, two.step_ms,
            two.compute_ms, two.comm_ms, two.mpi_ms, two.allreduce_ms, grad_mb, two.buckets))
  print(("dist %s ranks=1 threads=1 samples_per_s=%.0f step_ms=%.3g")
    :format(model.name, single.samples_per_s, single.step_ms))
  measured[#measured + 1] = { model = model, one = one, two = two, single = single, grad_mb = grad_mb }

  local t_c = single.step_ms / 1e3
  for _, n in ipairs(PROJECT) do
    local t_comm = comm_model(n, bytes, one.buckets)
    local rate = n * one.batch / (t_c + t_comm)
    local eff = t_c / (t_c + t_comm)
    print(("dist %s projected ranks=%d net=%s samples_per_s=%.0f efficiency=%.2f compute_ms=%.3g comm_ms=%.3g")
      :format(model.name, n, NET_NAME, rate, eff, 1e3 * t_c, 1e3 * t_comm))
    projected[#projected + 1] = { model = model, n = n, rate = rate, eff = eff, t_c = t_c, t_comm = t_comm }
  end
end

local md = {
  ("Measured %s on %s (%s cores), %s; medians of %d runs per configuration, "
   .. "per-rank batch 128, MLP %d timed steps, CNN %d; 1-minute load average %.2f before, %.2f after.")
    :format(os.date("!%Y-%m-%d"), cpu, cores, mpi, opts.pairs, MODELS[1].steps, MODELS[2].steps,
            load_start, load_end),
  "",
  "| model | 1 rank × 2 threads (samples/s) | 2 ranks × 1 thread (samples/s) | ratio | 2-rank step: compute ms | comm ms (in MPI) | allreduce alone ms | gradient MB | 1 rank × 1 thread (samples/s, step ms) |",
  "|---|---|---|---|---|---|---|---|---|",
}
for _, m in ipairs(measured) do
  md[#md + 1] = ("| %s | %.0f | %.0f | %.2f× | %.3g | %.3g (%.3g) | %.3g | %.3g | %.0f, %.3g |")
    :format(m.model.title, m.one.samples_per_s, m.two.samples_per_s, m.two.samples_per_s / m.one.samples_per_s,
            m.two.compute_ms, m.two.comm_ms, m.two.mpi_ms, m.two.allreduce_ms, m.grad_mb,
            m.single.samples_per_s, m.single.step_ms)
end
md[#md + 1] = ""
md[#md + 1] = ("Projection, %s network: t_comm(N) = 2(N−1)/N · bytes / 1.25e9 B/s + 2(N−1) · α · buckets, "
  .. "α = 25 µs, no overlap with backward; t_c = the 1-rank 1-thread step; efficiency = t_c / (t_c + t_comm).")
  :format(NET_NAME)
md[#md + 1] = ""
md[#md + 1] = "| model | ranks | t_c ms | t_comm ms | samples/s | efficiency |"
md[#md + 1] = "|---|---|---|---|---|---|"
for _, p in ipairs(projected) do
  md[#md + 1] = ("| %s | %d | %.3g | %.3g | %.0f | %.0f%% |")
    :format(p.model.title, p.n, 1e3 * p.t_c, 1e3 * p.t_comm, p.rate, 100 * p.eff)
end
local f = assert(io.open(opts.md, "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
print("wrote " .. opts.md)
