-- moongrad's side of the image-loading benchmark (bench/images.py is
-- PyTorch's): data.ImageFolder, the image transforms and a DataLoader with
-- `workers` worker processes, on the same folder.
--
--   build/moongrad bench/images.lua throughput WORKERS DIR
--       decode + RandomResizedCrop(224) + horizontal flip + ColorJitter(0.4,
--       0.4, 0.4) + ToTensor + Normalize into batches of 64, shuffled;
--       prints "result <images/s>" over two epochs after a warm-up epoch (the
--       workers persist, as a training run's do).
--   build/moongrad bench/images.lua rss WORKERS DIR
--       one epoch over DIR (the exported Fashion-MNIST folder) with ToTensor +
--       Normalize, batches of 128; prints "rss_mib <peak MiB>": the largest
--       sum of the main process's and its workers' resident memory seen after
--       any batch (the same measure as bench/images.py's).
local mg = require "moongrad"
local data = require "moongrad.data"
local T = require "moongrad.transforms"

local mode, workers, root = arg[1], math.tointeger(tonumber(arg[2] or "")), arg[3]
if not (mode == "throughput" or mode == "rss") or not workers or not root then
  io.stderr:write("usage: images.lua throughput|rss WORKERS DIR\n")
  os.exit(2)
end
mg.set_num_threads(1)
mg.manual_seed(1)

local function rss_kib(pid)
  local f = io.open(("/proc/%d/status"):format(pid))
  if not f then return 0 end
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")) or 0
end

if mode == "throughput" then
  local tf = T.Compose{
    T.RandomResizedCrop(224), T.RandomHorizontalFlip(),
    T.ColorJitter{brightness = 0.4, contrast = 0.4, saturation = 0.4},
    T.ToTensor(), T.Normalize{mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225}},
  }
  local ds = data.ImageFolder(root, {transform = tf})
  local loader = data.DataLoader(ds, {batch_size = 64, shuffle = true, num_workers = workers,
                                      persistent_workers = workers > 0})
  for _ in loader:iter() do end -- warm-up: workers started, files in the page cache
  local t0, n = mg.clock(), 0
  for _ = 1, 2 do
    for xb in loader:iter() do n = n + xb:size(1) end
  end
  print(("result %.6g"):format(n / (mg.clock() - t0)))
else
  local tf = T.Compose{T.ToTensor(), T.Normalize{mean = {0.286}, std = {0.353}}}
  local ds = data.ImageFolder(root, {transform = tf,
                                     loader = function(p) return mg.image.load(p, {mode = "L"}) end})
  local loader = data.DataLoader(ds, {batch_size = 128, shuffle = true, num_workers = workers})
  local me = tonumber(io.open("/proc/self/stat"):read("a"):match("^(%d+)"))
  local peak = 0
  for _ in loader:iter() do
    local kib = rss_kib(me)
    for _, pid in ipairs(loader:worker_pids()) do kib = kib + rss_kib(pid) end
    peak = math.max(peak, kib)
  end
  print(("rss_mib %.1f"):format(peak / 1024))
end
