-- Writes Fashion-MNIST as PNG files in the image-folder layout that
-- data.ImageFolder (and torchvision's ImageFolder) reads: one folder per
-- class under train/ and test/, named so that sorting them gives the
-- dataset's own label order, and one 28x28 grayscale PNG per image named
-- by its position in the IDX file (so a class folder lists its images in
-- the file's order):
--
--   OUTDIR/train/01_t-shirt-top/00001.png ... OUTDIR/test/10_ankle-boot/09999.png
--
--   build/moongrad scripts/export_images.lua OUTDIR [--limit 0] [--split both]
local mg = require "moongrad"
local data = require "moongrad.data"
local cli = require "moongrad.cli"

local parser = cli.parser("export_images.lua",
  "Write Fashion-MNIST as PNG files, one folder per class (data.ImageFolder's layout), "
  .. "under OUTDIR/train and OUTDIR/test.",
  "build/moongrad scripts/export_images.lua runs/fmnist_png --limit 600")
parser:argument("outdir", "Folder to write train/ and test/ into (made if missing).")
parser:option("--limit", "Write only the first N images of each split (0: all).", "0")
  :convert(cli.integer(0))
parser:option("--split", "Which split to write.", "both"):choices{"train", "test", "both"}
local args = parser:parse(arg)

local ROOT = "/usr/share/datasets/fashion-mnist"
-- Fashion-MNIST's labels 0..9 in order; the two-digit prefix keeps that order
-- when a folder listing is sorted, so label k is the k-th class.
local CLASSES = {"t-shirt-top", "trouser", "pullover", "dress", "coat",
                 "sandal", "shirt", "sneaker", "bag", "ankle-boot"}

local function mkdir(path)
  if not os.execute(("mkdir -p '%s'"):format(path:gsub("'", "'\\''"))) then
    error("export_images: cannot make " .. path, 0)
  end
end

local function export(split)
  local prefix = split == "train" and "train" or "t10k"
  local images = data.read_idx(("%s/%s-images-idx3-ubyte.gz"):format(ROOT, prefix), {dtype = "uint8"})
  local labels = data.read_idx(("%s/%s-labels-idx1-ubyte.gz"):format(ROOT, prefix), {dtype = "int64"})
  local n = images:size(1)
  if args.limit > 0 and args.limit < n then n = args.limit end
  local dirs = {}
  for k, name in ipairs(CLASSES) do
    dirs[k] = ("%s/%s/%02d_%s"):format(args.outdir, split, k, name)
    mkdir(dirs[k])
  end
  local width = #tostring(images:size(1))
  local ids = labels:totable()
  for i = 1, n do
    -- [28, 28] -> [1, 28, 28]: one gray channel
    mg.image.save(("%s/%0" .. width .. "d.png"):format(dirs[ids[i] + 1], i), images[i]:unsqueeze(1))
    if i % 10000 == 0 then io.write(("%s: %d of %d\n"):format(split, i, n)) io.flush() end
  end
  print(("%s: wrote %d images into %s/%s"):format(split, n, args.outdir, split))
end

for _, split in ipairs(args.split == "both" and {"train", "test"} or {args.split}) do
  export(split)
end
