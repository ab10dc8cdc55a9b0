-- moongrad.data: datasets, the DataLoader, file readers and Fashion-MNIST.
-- `local data = require "moongrad.data"`.
--
--   local x, y = data.fashion_mnist{split = "train"}  -- [60000,1,28,28], [60000]
--   local train, val = table.unpack(data.random_split(
--       data.TensorDataset(x, y), {0.9, 0.1}, {seed = 42}))
--   local loader = data.DataLoader(train, {batch_size = 128, shuffle = true})
--   for xb, yb in loader:iter() do ... end
--
-- Datasets (moongrad/data/datasets.lua): any table with ds:len() and
-- ds:get(i) (1-based) is one; data.TensorDataset(x, y, ...),
-- data.Subset(ds, ids), data.random_split(ds, lengths, {seed = n}).
-- The DataLoader is in moongrad/data/loader.lua; data.ImageFolder(root,
-- {...}), a folder of images with one subfolder per class, in
-- moongrad/data/image_folder.lua.
--
-- Readers (C, through zlib: .gz and plain files alike):
--   data.read_idx(path [, {dtype = ..., scale = 1}]) --> tensor shaped as
--     the file's dims; the default dtype is float32 for ubyte, byte, short
--     and float data (exact), int64 for int, float64 for double; every
--     value is multiplied by scale.
--   data.read_csv(path [, {header = nil|true|false, delimiter = ",",
--     dtype = "float32"}]) --> tensor [rows, cols], column names (or nil).
--     header = nil: the first line is a header when any cell of it is not
--     a number. Lines end with LF, CRLF or a lone CR; a UTF-8 byte order
--     mark is skipped. A cell is a decimal number (1, -2.5, .5, 1e-3) or
--     inf, infinity or nan, blanks around it allowed; anything else
--     ("0x10", "1e", a NUL byte, text after a closing quote) is an error.
-- Every error names the file (and for CSV the line and column). A gzip
-- file must be whole (its CRC trailer is checked), and what a reader holds
-- while it reads counts against mg.set_memory_limit, so a small .gz that
-- inflates to gigabytes stops at the limit: "not enough memory reading
-- <file>".
local mg = require "moongrad"
local datasets = require "moongrad.data.datasets"
local loader = require "moongrad.data.loader"
local image_folder = require "moongrad.data.image_folder"

local type, error, pcall, tostring = type, error, pcall, tostring

local data = {
  TensorDataset = datasets.TensorDataset,
  Subset = datasets.Subset,
  random_split = datasets.random_split,
  DataLoader = loader.DataLoader,
  ImageFolder = image_folder.ImageFolder,
  collate = loader.collate,
  read_idx = mg._read_idx,
  read_csv = mg._read_csv,
}

-- ---- Fashion-MNIST ---------------------------------------------------------------

data.fashion_mnist_classes = {
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

local FASHION_ROOT = "/usr/share/datasets/fashion-mnist"
local FASHION_FILES = {
  train = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"},
  test = {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
}
local FASHION_KNOWN = {split = true, root = true, normalize = true}

local function fashion_read(path, opts, level)
  local ok, t = pcall(mg._read_idx, path, opts)
  if ok then return t end
  local msg = tostring(t)
  local why = msg:match("^read_idx: .-: cannot open: (.*)$")
  if why then -- missing or unreadable: the package is what to install
    error(("fashion_mnist: cannot open %s (%s); install the Debian package dataset-fashion-mnist")
      :format(path, why), level + 1)
  end
  error("fashion_mnist: " .. msg:gsub("^read_idx: ", ""), level + 1)
end

-- data.fashion_mnist{split = "train" | "test", root = <dir>, normalize = true}
-- --> x float32 [N, 1, 28, 28] (in [0, 1]; 0..255 with normalize = false),
-- y int64 [N] with labels 1..10 (names in data.fashion_mnist_classes).
function data.fashion_mnist(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("fashion_mnist: options must be a table", 2) end
  for k in pairs(opts) do
    if not FASHION_KNOWN[k] then
      error(("fashion_mnist: unknown option '%s'"):format(tostring(k)), 2)
    end
  end
  local split = opts.split or "train"
  local files = FASHION_FILES[split]
  if not files then
    error(("fashion_mnist: split must be \"train\" or \"test\", got %s"):format(tostring(split)), 2)
  end
  local root = (opts.root or FASHION_ROOT):gsub("/$", "")
  local scale = opts.normalize == false and 1 or 1 / 255
  local x = fashion_read(root .. "/" .. files[1], {dtype = "float32", scale = scale}, 2)
  local y = fashion_read(root .. "/" .. files[2], {dtype = "int64"}, 2)
  local xs = x:shape()
  if #xs ~= 3 or xs[2] ~= 28 or xs[3] ~= 28 then
    error(("fashion_mnist: %s/%s holds images of shape [%s], not [N,28,28]")
      :format(root, files[1], table.concat(xs, ",")), 2)
  end
  if y:dim() ~= 1 or y:size(1) ~= xs[1] then
    error(("fashion_mnist: %s/%s holds %d labels for %d images")
      :format(root, files[2], y:numel(), xs[1]), 2)
  end
  return x:view(xs[1], 1, 28, 28), y:add_(1)
end

-- data.fashion_mnist_dataset{...} --> TensorDataset(x, y) of the above.
function data.fashion_mnist_dataset(opts)
  return data.TensorDataset(data.fashion_mnist(opts))
end

return data
