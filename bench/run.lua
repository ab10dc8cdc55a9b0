-- `make bench`: every workload in moongrad and in PyTorch, side by side.
--
--   build/moongrad bench/run.lua [--pairs 3] [--only name,name] [--threads 1,2]
--                                [--md build/bench.md] [--python /usr/bin/python3]
--
-- --python none runs moongrad's side alone (as does a machine without
-- Debian's python3-torch).
--
-- Each workload runs as its own process, which warms up and then times
-- several repetitions, reporting their median (bench/common.lua,
-- bench/common.py): steady state on both sides. The processes alternate,
-- moongrad then PyTorch (A B A B ...), for --pairs pairs, and each side's
-- median over its runs is compared, with the spread (smallest and largest
-- run) beside it:
--   bench <name> threads=<n> moongrad=<v> moongrad_spread=<min>..<max>
--         pytorch=<v> pytorch_spread=<min>..<max> unit=<u>
--         speedup=<x> speedup_spread=<min>..<max>
-- speedup is pytorch/moongrad for times and sizes, moongrad/pytorch for
-- rates, so above 1 always means moongrad wins; its spread is that of the
-- pairs' own ratios. A Markdown table with the targets goes to --md.
--
-- Threads are pinned on both sides, and every run reports the count it ran
-- with, which must be the one asked for: moongrad by mg.set_num_threads(n)
-- (its loops and OpenBLAS share one OpenMP pool and it picks BLAS threads
-- per GEMM shape); PyTorch by torch.set_num_threads(n),
-- torch.set_num_interop_threads(1), OPENBLAS_NUM_THREADS=n and
-- OMP_NUM_THREADS=n (its OpenBLAS would otherwise use every core) and,
-- above one thread, OMP_WAIT_POLICY=PASSIVE (without it PyTorch's spinning
-- OpenMP threads make it several times slower here). The header prints
-- that, the environment both sides inherit (OPENBLAS_CORETYPE, OMP_*), the
-- CPU and the load average at the start and the end.
local mg = require "moongrad"
local util = require "moongrad.util"

local opts = util.parse_flags(arg, { pairs = 3, only = "", threads = "1,2", md = "build/bench.md",
                                     python = "/usr/bin/python3" })
local here = arg[0]:match("^(.*/)") or "./"
local harness = dofile(here .. "harness.lua")
local sh_quote, median = harness.sh_quote, harness.median
local exe = arg[-1] or "build/moongrad"
local python = opts.python


local function list(s)
  local t = {}
  for v in tostring(s):gmatch("[^,]+") do t[#t + 1] = v end
  return t
end

local function fail(msg) error("bench: " .. msg, 0) end

local function run(cmd) return harness.run(cmd, "bench") end

-- The value of a workload's `<key> <value>` line.
local function field(out, key, cmd)
  local v = tonumber(("\n" .. out):match("\n" .. key .. " ([^\n]+)"))
  if not v then fail(("no '%s' line from\n  %s\n%s"):format(key, cmd, out)) end
  return v
end

local have_torch = python ~= "none" and os.execute(python .. " -c 'import torch' >/dev/null 2>&1") == true

local function lua_cmd(script, mode, threads)
  return ("%s %s %s %d"):format(sh_quote(exe), sh_quote(here .. script .. ".lua"), mode, threads)
end

local function torch_env(threads)
  local env = ("OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d"):format(threads, threads)
  if threads > 1 then env = env .. " OMP_WAIT_POLICY=PASSIVE" end
  return env
end

local function py_cmd(script, mode, threads)
  return ("env %s %s %s %s %d"):format(torch_env(threads), python, sh_quote(here .. script .. ".py"),
                                       mode, threads)
end

-- Median wall time of `n` launches of a command, in ms.
local function launch_ms(cmd, n)
  local ts = {}
  for i = 1, n do
    local t0 = mg.clock()
    local ok = os.execute(cmd .. " >/dev/null 2>&1")
    ts[i] = (mg.clock() - t0) * 1e3
    if not ok then fail("command failed: " .. cmd) end
  end
  return median(ts)
end

-- The workloads, in the order they are run and printed. `higher` marks a
-- rate (more is better); `target` is what the benchmark must show (issue
-- 22's targets): a speedup at least `min`, or an absolute moongrad figure
-- at most `max`. `single`: run at one thread only.
local WORKLOADS = {
  { name = "mlp_epoch", script = "mlp", mode = "epoch", unit = "s", target = { min = 1.5 } },
  { name = "mlp_step_b1", script = "mlp", mode = "step_b1", unit = "us", target = { min = 3 } },
  { name = "mlp_step_b16", script = "mlp", mode = "step_b16", unit = "us" },
  { name = "cnn_epoch", script = "cnn", mode = "epoch", unit = "s", target = { min = 1.5 } },
  { name = "cnn_step", script = "cnn_step", mode = "step", unit = "ms", target = { min = 1.5 } },
  { name = "lstm_step", script = "recurrent", mode = "lstm", unit = "ms", target = { min = 1.5 } },
  { name = "gru_step", script = "recurrent", mode = "gru", unit = "ms", target = { min = 1.5 } },
  { name = "transformer_step", script = "transformer", mode = "step", unit = "ms", target = { min = 1.5 } },
  { name = "resnet20_step", script = "resnet", mode = "step", unit = "ms", target = { min = 1.5 } },
  { name = "charlm_steps", script = "charlm", mode = "steps", unit = "steps/s", higher = true,
    target = { min = 2 } },
  { name = "op_add_2x2", script = "ops", mode = "add_2x2", unit = "us", single = true, target = { max = 0.3 } },
  { name = "op_chain_backward", script = "ops", mode = "chain_backward", unit = "us", single = true,
    target = { max = 5 } },
  { name = "matmul_100", script = "ops", mode = "matmul_100", unit = "us" },
  { name = "startup", unit = "ms", single = true, target = { min = 50 },
    lua = exe .. " -e ''", py = python .. " -c 'import torch'" },
  -- images: "threads" is the number of worker processes (1 thread each)
  { name = "images_load", unit = "images/s", higher = true, target = { min = 2 } },
  { name = "peak_rss_images", unit = "MiB", single = true, target = { min = 2 } },
}

local only, known = {}, { peak_rss_mlp = true }
for _, w in ipairs(WORKLOADS) do known[w.name] = true end
for _, n in ipairs(list(opts.only)) do
  if not known[n] then
    local names = {}
    for k in pairs(known) do names[#names + 1] = k end
    table.sort(names)
    fail(("--only: no workload '%s' (workloads: %s)"):format(n, table.concat(names, ", ")))
  end
  only[n] = true
end
local thread_counts = {}
for _, t in ipairs(list(opts.threads)) do
  local n = math.tointeger(tonumber(t))
  if not n or n < 1 then fail(("--threads: '%s' is not a positive integer"):format(t)) end
  thread_counts[#thread_counts + 1] = n
end
local npairs = math.tointeger(opts.pairs)
if not npairs or npairs < 1 then fail(("--pairs must be a positive integer, got %s"):format(opts.pairs)) end

-- ---- the header: machine, settings, environment ------------------------------------

local function loadavg()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("l") or ""
  if f then f:close() end
  return s:match("^(%S+ %S+ %S+)") or "unknown"
end

-- The variables of this environment both sides inherit that change how
-- their BLAS and OpenMP run: "NAME=value, ..." or "none set".
local function runtime_env()
  local names = {}
  for line in run("env"):gmatch("[^\n]+") do
    local name = line:match("^([%w_]+)=") or ""
    if name:match("^G?OMP_") or (name:match("^OPENBLAS_") and name ~= "OPENBLAS_CORETYPE") then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  for i, name in ipairs(names) do names[i] = name .. "=" .. os.getenv(name) end
  return #names > 0 and table.concat(names, " ") or "none set"
end

local load_start = loadavg()
local cpu = run("grep -m1 'model name' /proc/cpuinfo"):match(":%s*([^\n]*)") or "unknown CPU"
-- The CPUs the workloads may run on (their affinity, which they inherit
-- from this process: OMP_PROC_BIND, for one, pins it to a single CPU) next
-- to the machine's; OMP_NUM_THREADS would change what nproc says.
local cores = run("env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc"):match("%d+")
local all_cores = run("nproc --all"):match("%d+")
if all_cores ~= cores then cores = ("%s cores, of which %s usable here"):format(all_cores, cores)
else cores = cores .. " cores" end
local revision = run("git -C " .. sh_quote(here) .. " rev-parse --short HEAD 2>/dev/null || echo unknown")
  :match("[^\n]+")
local torch_version = have_torch and run(python .. " -c 'import torch; print(torch.__version__)'"):match("[^\n]+")
local HEADER = {
  machine = ("%s, %s, %s"):format(cpu, cores, os.date("!%Y-%m-%d %H:%M UTC")),
  method = ("%d alternating pair%s of processes (moongrad, PyTorch) per figure, each process timing "
            .. "several repetitions after warm-up (steady state)"):format(npairs, npairs == 1 and "" or "s"),
  moongrad = ("moongrad %s (%s): mg.set_num_threads(n)"):format(mg.version, revision),
  pytorch = have_torch and ("PyTorch %s: torch.set_num_threads(n), torch.set_num_interop_threads(1), "
                            .. "OPENBLAS_NUM_THREADS=n OMP_NUM_THREADS=n; above 1 thread also "
                            .. "OMP_WAIT_POLICY=PASSIVE"):format(torch_version)
    or "PyTorch not installed (sh tools/deps.sh bench installs python3-torch): moongrad only",
  idiom = "PyTorch idiom: zero_grad(set_to_none=True), optimizers with foreach=True, "
          .. "torch.set_flush_denormal(True), no .item() or other sync in the timed loop, "
          .. "data made or loaded before timing, batches by permutation indexing, torchvision's "
          .. "BasicBlock (in-place add and ReLU); ResNet-20 channels last on both sides",
  env = ("environment of both sides: OPENBLAS_CORETYPE=%s; OMP/OpenBLAS: %s")
    :format(os.getenv("OPENBLAS_CORETYPE") or "unset", runtime_env()),
}
local quick = os.getenv("MOONGRAD_BENCH_QUICK")
if quick and quick ~= "" and quick ~= "0" then
  HEADER.method = HEADER.method .. ". MOONGRAD_BENCH_QUICK is set: one repetition of everything, "
                  .. "the figures mean nothing"
end
for _, k in ipairs { "machine", "method", "moongrad", "pytorch", "idiom", "env" } do
  print("bench: " .. HEADER[k])
end
print("bench: load average at start: " .. load_start)
io.stdout:flush()

-- ---- measuring ------------------------------------------------------------------

local rows = {}

local function fmt(v)
  if v == nil then return "n/a" end
  return (v >= 100 and "%.1f" or "%.3g"):format(v)
end

-- {median, min, max} of a list of numbers, or nil for an empty list.
local function summary(xs)
  if xs == nil or #xs == 0 then return nil end
  return { median(xs), math.min(table.unpack(xs)), math.max(table.unpack(xs)) }
end

local function spread(s) return s and (fmt(s[2]) .. ".." .. fmt(s[3])) or "n/a" end

-- lua_vs, py_vs: each run's figure, pair by pair (py_vs nil without PyTorch).
local function report(w, threads, lua_vs, py_vs, extra, bound)
  local a, b = summary(lua_vs), summary(py_vs)
  local speedup, ratios
  if b then
    speedup = w.higher and a[1] / b[1] or b[1] / a[1]
    local r = {}
    for i = 1, math.min(#lua_vs, #py_vs) do
      r[i] = w.higher and lua_vs[i] / py_vs[i] or py_vs[i] / lua_vs[i]
    end
    ratios = summary(r)
  end
  local line = ("bench %s threads=%d moongrad=%s moongrad_spread=%s pytorch=%s pytorch_spread=%s unit=%s "
                .. "speedup=%s speedup_spread=%s")
    :format(w.name, threads, fmt(a[1]), spread(a), fmt(b and b[1]), spread(b), w.unit,
            speedup and ("%.2f"):format(speedup) or "n/a",
            ratios and ("%.2f..%.2f"):format(ratios[2], ratios[3]) or "n/a")
  if extra then line = line .. " " .. extra end
  print(line)
  io.stdout:flush()
  rows[#rows + 1] = { w = w, threads = threads, lua = a, py = b, speedup = speedup, ratios = ratios,
                      extra = extra, bound = bound }
end

-- Runs the commands in turn (moongrad's, then PyTorch's, ...) for --pairs
-- pairs; returns each command's outputs, run by run. A run that reports a
-- thread count other than `threads` is an error: its figure would be
-- mislabelled.
local function alternate(cmds, threads)
  local outs = {}
  for j in ipairs(cmds) do outs[j] = {} end
  for i = 1, npairs do
    for j, cmd in ipairs(cmds) do
      local out = run(cmd)
      local got = ("\n" .. out):match("\nthreads (%d+)")
      if threads and got and tonumber(got) ~= threads then
        fail(("asked for %d threads, the run reports %s:\n  %s"):format(threads, got, cmd))
      end
      outs[j][i] = out
    end
  end
  return outs
end

-- The `key` figures of a command's outputs.
local function figures(outs, key, cmd)
  if outs == nil then return nil end
  local vs = {}
  for i, out in ipairs(outs) do vs[i] = field(out, key, cmd) end
  return vs
end

-- A workload with a moongrad and a PyTorch script printing `result`.
local function scripted(w, threads)
  local lcmd, pcmd = lua_cmd(w.script, w.mode, threads), py_cmd(w.script, w.mode, threads)
  local outs = alternate(have_torch and { lcmd, pcmd } or { lcmd }, threads)
  report(w, threads, figures(outs[1], "result", lcmd), figures(outs[2], "result", pcmd))
end

-- mlp_epoch, with the peak RSS of the same runs (peak_rss_mlp, at the first
-- thread count) and the epoch's GEMMs alone for the bound.
local function mlp_epoch(w, threads)
  local lcmd, gcmd, pcmd = lua_cmd("mlp", "epoch", threads), lua_cmd("mlp", "gemm", threads),
                           py_cmd("mlp", "epoch", threads)
  local outs = alternate(have_torch and { lcmd, gcmd, pcmd } or { lcmd, gcmd }, threads)
  local a = figures(outs[1], "result", lcmd)
  if next(only) == nil or only.mlp_epoch then
    local bound = median(a) / median(figures(outs[2], "result", gcmd))
    report(w, threads, a, figures(outs[3], "result", pcmd), ("gemm_bound=%.3f"):format(bound), bound)
  end
  if threads == thread_counts[1] and (next(only) == nil or only.peak_rss_mlp) then
    report({ name = "peak_rss_mlp", unit = "MiB", target = { min = 2 } }, threads,
           figures(outs[1], "rss_mib", lcmd), figures(outs[3], "rss_mib", pcmd))
  end
end

local function startup(w)
  local a, b = {}, {}
  for i = 1, npairs do
    a[i] = launch_ms(w.lua, 9)
    if have_torch then b[i] = launch_ms(w.py, 3) end
  end
  report(w, 1, a, have_torch and b or nil)
end

-- The image benchmarks' folders, made once into build/: 1000 photographs
-- (JPEG, made by Pillow from python3-skimage's photographs) and the
-- Fashion-MNIST training set as PNG files (scripts/export_images.lua).
local PHOTOS, FASHION_PNG = "build/bench_images", "build/fashion_mnist_png"
local have_pil = python ~= "none" and os.execute(python .. " -c 'import PIL' >/dev/null 2>&1") == true
local function image_folders()
  if not os.execute("test -d " .. PHOTOS) then
    if not have_pil then
      fail("images_load needs Pillow to make its photo folder (sh tools/deps.sh bench installs python3-pil)")
    end
    run(("%s %s %s.tmp 1000 && mv %s.tmp %s"):format(python, sh_quote(here .. "image_folder.py"), PHOTOS,
                                                     PHOTOS, PHOTOS))
  end
  if not os.execute("test -d " .. FASHION_PNG) then
    run(("rm -rf %s.tmp && %s scripts/export_images.lua %s.tmp --split train && mv %s.tmp %s")
        :format(FASHION_PNG, sh_quote(exe), FASHION_PNG, FASHION_PNG, FASHION_PNG))
  end
end

-- images_load: moongrad against the faster (by median) of PyTorch's two
-- idioms (PIL images, or torchvision.io decoding with tensor transforms),
-- the three runs alternating.
local function images_load(w, workers)
  local lcmd = ("%s %s throughput %d %s"):format(sh_quote(exe), sh_quote(here .. "images.lua"), workers, PHOTOS)
  local function pcmd(idiom)
    return ("env %s %s %s throughput %d %s %s"):format(torch_env(1), python, sh_quote(here .. "images.py"),
                                                       workers, PHOTOS, idiom)
  end
  local outs = alternate(have_torch and { lcmd, pcmd("pil"), pcmd("tensor") } or { lcmd })
  local best, idiom
  if have_torch then
    local pil, ten = figures(outs[2], "result", pcmd("pil")), figures(outs[3], "result", pcmd("tensor"))
    best, idiom = pil, "pil"
    if median(ten) > median(pil) then best, idiom = ten, "tensor" end
  end
  report(w, workers, figures(outs[1], "result", lcmd), best, idiom and ("pytorch_idiom=%s"):format(idiom))
end

local function peak_rss_images(w)
  local lcmd = ("%s %s rss 2 %s/train"):format(sh_quote(exe), sh_quote(here .. "images.lua"), FASHION_PNG)
  local pcmd = ("env %s %s %s rss 2 %s/train"):format(torch_env(1), python, sh_quote(here .. "images.py"),
                       FASHION_PNG)
  local outs = alternate(have_torch and { lcmd, pcmd } or { lcmd })
  report(w, 2, figures(outs[1], "rss_mib", lcmd), figures(outs[2], "rss_mib", pcmd), "workers=2")
end

for _, w in ipairs(WORKLOADS) do
  if (w.name == "images_load" or w.name == "peak_rss_images") and (next(only) == nil or only[w.name]) then
    local made, why = pcall(image_folders)
    if not made then
      print(("bench: %s skipped: %s"):format(w.name, tostring(why)))
    elseif w.name == "images_load" then
      for _, workers in ipairs(thread_counts) do images_load(w, workers) end
    else
      peak_rss_images(w)
    end
  elseif next(only) == nil or only[w.name] or (w.name == "mlp_epoch" and only.peak_rss_mlp) then
    for _, threads in ipairs(w.single and { 1 } or thread_counts) do
      if w.name == "startup" then
        startup(w)
      elseif w.name == "mlp_epoch" then
        -- peak_rss_mlp alone needs the first thread count only
        if next(only) == nil or only.mlp_epoch or threads == thread_counts[1] then mlp_epoch(w, threads) end
      else
        scripted(w, threads)
      end
    end
  end
end
local load_end = loadavg()
print("bench: load average at end: " .. load_end)

-- ---- build/bench.md --------------------------------------------------------------

local GEMM_BOUND = 1.15 -- mlp_epoch within this factor of its GEMMs alone

local function target_text(r)
  local t = r.w.target
  if not t then return "", "" end
  if t.max then
    return ("≤ %s %s"):format(fmt(t.max), r.w.unit), r.lua[1] <= t.max and "yes" or "no"
  end
  local met = r.speedup and (r.speedup >= t.min and "yes" or "no") or "n/a"
  local text = ("≥ %s×"):format(fmt(t.min))
  if r.bound then
    text = text .. (", gemm_bound ≤ %.2f"):format(GEMM_BOUND)
    if r.bound > GEMM_BOUND then met = "no" end
  end
  return text, met
end

-- "median (min–max)"
local function cell(s)
  if not s then return "n/a" end
  return ("%s (%s–%s)"):format(fmt(s[1]), fmt(s[2]), fmt(s[3]))
end

local md = {
  "# moongrad vs PyTorch",
  "",
  ("%s. %s (`make bench`)."):format(HEADER.machine, HEADER.method),
  "",
  "- " .. HEADER.moongrad .. ".",
  "- " .. HEADER.pytorch .. ".",
  "- " .. HEADER.idiom .. ".",
  "- " .. HEADER.env .. ".",
  ("- Load average (1, 5, 15 min): %s at the start, %s at the end."):format(load_start, load_end),
  "",
  "Each figure is the median of the runs, in parentheses the smallest and largest run (for the "
  .. "speedup: of the pairs' own ratios). Speedup above 1 means moongrad is faster (or smaller).",
  "",
  "| workload | threads | moongrad | PyTorch | unit | speedup | target | met |",
  "|---|---|---|---|---|---|---|---|",
}
for _, r in ipairs(rows) do
  local target, met = target_text(r)
  local speed = r.speedup and ("%.2f× (%.2f–%.2f)"):format(r.speedup, r.ratios[2], r.ratios[3]) or "n/a"
  if r.extra then speed = speed .. " (" .. r.extra .. ")" end
  md[#md + 1] = ("| %s | %d | %s | %s | %s | %s | %s | %s |"):format(r.w.name, r.threads, cell(r.lua),
    cell(r.py), r.w.unit, speed, target, met)
end
os.execute("mkdir -p " .. sh_quote(opts.md:match("^(.*)/") or "."))
local f = assert(io.open(opts.md, "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
print("bench: wrote " .. opts.md)
