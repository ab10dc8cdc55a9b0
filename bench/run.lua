-- `make bench`: every workload in moongrad and in PyTorch, side by side.
--
--   build/moongrad bench/run.lua [--pairs 3] [--only name,name] [--threads 1,2]
--                                [--md build/bench.md] [--python /usr/bin/python3]
--
-- --python none runs moongrad's side alone (as does a machine without
-- Debian's python3-torch).
--
-- Each workload runs as its own process, alternating moongrad and PyTorch
-- (A B A B ...) for --pairs pairs, and the medians are compared:
--   bench <name> threads=<n> moongrad=<v> pytorch=<v> unit=<u> speedup=<x>
-- speedup is pytorch/moongrad for times and sizes, moongrad/pytorch for
-- rates, so above 1 always means moongrad wins. A Markdown table with the
-- targets goes to --md.
--
-- Threads are pinned on both sides: moongrad by mg.set_num_threads(n) (its
-- loops and OpenBLAS share one OpenMP pool and it picks BLAS threads per
-- GEMM shape); PyTorch by torch.set_num_threads(n) plus
-- OPENBLAS_NUM_THREADS=n (its OpenBLAS would otherwise use every core) and,
-- above one thread, OMP_WAIT_POLICY=PASSIVE (without it PyTorch's spinning
-- OpenMP threads make it several times slower here).
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


local function run(cmd) return harness.run(cmd, "bench") end

local function field(out, key, cmd)
  local v = tonumber(out:match("\n?" .. key .. " ([^\n]+)"))
  if not v then error(("bench: no '%s' line from\n  %s\n%s"):format(key, cmd, out), 0) end
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
    if not ok then error("bench: command failed: " .. cmd, 0) end
  end
  return median(ts)
end

-- The workloads, in the order they are run and printed. `higher` marks a
-- rate (more is better); `target` is what the benchmark must show: a
-- speedup at least `min`, or an absolute moongrad figure at most `max`.
local WORKLOADS = {
  { name = "mlp_epoch", script = "mlp", mode = "epoch", unit = "s", target = { min = 1.3 } },
  { name = "mlp_step_b1", script = "mlp", mode = "step_b1", unit = "us", target = { min = 3 } },
  { name = "mlp_step_b16", script = "mlp", mode = "step_b16", unit = "us" },
  { name = "cnn_epoch", script = "cnn", mode = "epoch", unit = "s", target = { min = 1.5, threads = 1 } },
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

local only = {}
for _, n in ipairs(list(opts.only)) do only[n] = true end
local thread_counts = {}
for _, t in ipairs(list(opts.threads)) do thread_counts[#thread_counts + 1] = math.tointeger(tonumber(t)) end
local npairs = math.floor(opts.pairs)

local cpu = run("grep -m1 'model name' /proc/cpuinfo"):match(":%s*([^\n]*)") or "unknown CPU"
local cores = run("nproc"):match("%d+")
local torch_version = have_torch and run(python .. " -c 'import torch; print(torch.__version__)'"):match("[^\n]+")
print(("bench: %s, %s cores, %s; %d pairs per workload, alternating moongrad and PyTorch")
  :format(cpu, cores, os.date("!%Y-%m-%d %H:%M UTC"), npairs))
print("bench: moongrad: mg.set_num_threads(n)")
if have_torch then
  print(("bench: PyTorch %s: torch.set_num_threads(n), %s; above 1 thread also OMP_WAIT_POLICY=PASSIVE")
    :format(torch_version, "OPENBLAS_NUM_THREADS=n OMP_NUM_THREADS=n"))
else
  print("bench: PyTorch not installed (sh tools/deps.sh bench installs python3-torch): moongrad only")
end

local rows = {}

local function fmt(v)
  if v == nil then return "n/a" end
  return (v >= 100 and "%.1f" or "%.3g"):format(v)
end

local function report(w, threads, lua_v, py_v, extra, bound)
  local speedup
  if py_v then speedup = w.higher and lua_v / py_v or py_v / lua_v end
  local line = ("bench %s threads=%d moongrad=%s pytorch=%s unit=%s speedup=%s")
    :format(w.name, threads, fmt(lua_v), fmt(py_v), w.unit, speedup and ("%.2f"):format(speedup) or "n/a")
  if extra then line = line .. " " .. extra end
  print(line)
  io.stdout:flush()
  rows[#rows + 1] = { w = w, threads = threads, lua = lua_v, py = py_v, speedup = speedup, extra = extra,
                      bound = bound }
end

-- Alternates moongrad and PyTorch runs; returns the medians of `key`.
local function pairs_of(lua, py, key)
  local a, b = {}, {}
  for i = 1, npairs do
    a[i] = field(run(lua), key, lua)
    if have_torch then b[i] = field(run(py), key, py) end
  end
  return median(a), have_torch and median(b) or nil
end

-- The image benchmarks' folders, made once into build/: 1000 photographs
-- (JPEG, made by Pillow from python3-skimage's photographs) and the
-- Fashion-MNIST training set as PNG files (scripts/export_images.lua).
local PHOTOS, FASHION_PNG = "build/bench_images", "build/fashion_mnist_png"
local have_pil = python ~= "none" and os.execute(python .. " -c 'import PIL' >/dev/null 2>&1") == true
local function image_folders()
  if not os.execute("test -d " .. PHOTOS) then
    if not have_pil then
      error("bench: images_load needs Pillow to make its photo folder (sh tools/deps.sh bench installs "
            .. "python3-pil)", 0)
    end
    run(("%s %s %s.tmp 1000 && mv %s.tmp %s"):format(python, sh_quote(here .. "image_folder.py"), PHOTOS,
                                                     PHOTOS, PHOTOS))
  end
  if not os.execute("test -d " .. FASHION_PNG) then
    run(("rm -rf %s.tmp && %s scripts/export_images.lua %s.tmp --split train && mv %s.tmp %s")
        :format(FASHION_PNG, sh_quote(exe), FASHION_PNG, FASHION_PNG, FASHION_PNG))
  end
end

-- images_load: moongrad against the faster of PyTorch's two idioms (PIL
-- images, or torchvision.io decoding with tensor transforms), each
-- workload's runs alternating.
local function images_load(w, workers)
  local lcmd = ("%s %s throughput %d %s"):format(sh_quote(exe), sh_quote(here .. "images.lua"), workers, PHOTOS)
  local pcmd = function(idiom)
    return ("env %s %s %s throughput %d %s %s"):format(torch_env(1), python, sh_quote(here .. "images.py"),
                                                       workers, PHOTOS, idiom)
  end
  local a, pil, ten = {}, {}, {}
  for i = 1, npairs do
    a[i] = field(run(lcmd), "result", lcmd)
    if have_torch then
      pil[i] = field(run(pcmd("pil")), "result", pcmd("pil"))
      ten[i] = field(run(pcmd("tensor")), "result", pcmd("tensor"))
    end
  end
  local best, idiom
  if have_torch then
    best, idiom = median(pil), "pil"
    if median(ten) > best then best, idiom = median(ten), "tensor" end
  end
  report(w, workers, median(a), best, idiom and ("pytorch_idiom=%s"):format(idiom))
end

local function peak_rss_images(w)
  local lcmd = ("%s %s rss 2 %s/train"):format(sh_quote(exe), sh_quote(here .. "images.lua"), FASHION_PNG)
  local pcmd = ("env %s %s %s rss 2 %s/train"):format(torch_env(1), python, sh_quote(here .. "images.py"),
                       FASHION_PNG)
  local a, b = {}, {}
  for i = 1, npairs do
    a[i] = field(run(lcmd), "rss_mib", lcmd)
    if have_torch then b[i] = field(run(pcmd), "rss_mib", pcmd) end
  end
  report(w, 2, median(a), have_torch and median(b) or nil, "workers=2")
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
        local a, b = {}, {}
        for i = 1, npairs do
          a[i] = launch_ms(w.lua, 9)
          if have_torch then b[i] = launch_ms(w.py, 3) end
        end
        report(w, threads, median(a), have_torch and median(b) or nil)
      elseif w.name == "mlp_epoch" then
        -- Peak RSS from the same runs, and the GEMMs alone for the bound.
        local a, b, ra, rb, g = {}, {}, {}, {}, {}
        for i = 1, npairs do
          local cmd = lua_cmd("mlp", "epoch", threads)
          local out = run(cmd)
          a[i], ra[i] = field(out, "result", cmd), field(out, "rss_mib", cmd)
          local gcmd = lua_cmd("mlp", "gemm", threads)
          g[i] = field(run(gcmd), "result", gcmd)
          if have_torch then
            cmd = py_cmd("mlp", "epoch", threads)
            out = run(cmd)
            b[i], rb[i] = field(out, "result", cmd), field(out, "rss_mib", cmd)
          end
        end
        local lua_v = median(a)
        if next(only) == nil or only.mlp_epoch then
          local bound = lua_v / median(g)
          report(w, threads, lua_v, have_torch and median(b) or nil, ("gemm_bound=%.3f"):format(bound), bound)
        end
        if threads == thread_counts[1] then
          report({ name = "peak_rss_mlp", unit = "MiB", target = { min = 2 } }, threads, median(ra),
                 have_torch and median(rb) or nil)
        end
      else
        local lua_v, py_v = pairs_of(lua_cmd(w.script, w.mode, threads), py_cmd(w.script, w.mode, threads),
                                     "result")
        report(w, threads, lua_v, py_v)
      end
    end
  end
end

-- ---- build/bench.md --------------------------------------------------------------

local GEMM_BOUND = 1.15 -- mlp_epoch within this factor of its GEMMs alone

local function target_text(r)
  local t = r.w.target
  if not t or (t.threads and t.threads ~= r.threads) then return "", "" end
  if t.max then
    return ("≤ %s %s"):format(fmt(t.max), r.w.unit), r.lua <= t.max and "yes" or "no"
  end
  local met = r.speedup and (r.speedup >= t.min and "yes" or "no") or "n/a"
  local text = ("≥ %s×"):format(fmt(t.min))
  if r.bound then
    text = text .. (", gemm_bound ≤ %.2f"):format(GEMM_BOUND)
    if r.bound > GEMM_BOUND then met = "no" end
  end
  return text, met
end

local md = {
  "# moongrad vs PyTorch",
  "",
  ("%s, %s cores, %s. Medians of %d alternating pairs of runs (`make bench`)."):format(
    cpu, cores, os.date("!%Y-%m-%d"), npairs),
  ("moongrad: `mg.set_num_threads(n)`. PyTorch %s: `torch.set_num_threads(n)`, OPENBLAS_NUM_THREADS=n, "
   .. "OMP_NUM_THREADS=n, and OMP_WAIT_POLICY=PASSIVE above one thread."):format(torch_version or "(not installed)"),
  "Speedup above 1 means moongrad is faster (or smaller).",
  "",
  "| workload | threads | moongrad | PyTorch | unit | speedup | target | met |",
  "|---|---|---|---|---|---|---|---|",
}
for _, r in ipairs(rows) do
  local target, met = target_text(r)
  local speed = r.speedup and ("%.2f×"):format(r.speedup) or "n/a"
  if r.extra then speed = speed .. " (" .. r.extra .. ")" end
  md[#md + 1] = ("| %s | %d | %s | %s | %s | %s | %s | %s |"):format(r.w.name, r.threads, fmt(r.lua),
    fmt(r.py), r.w.unit, speed, target, met)
end
os.execute("mkdir -p " .. sh_quote(opts.md:match("^(.*)/") or "."))
local f = assert(io.open(opts.md, "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
print("bench: wrote " .. opts.md)
