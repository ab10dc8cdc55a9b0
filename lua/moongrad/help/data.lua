-- Help for moongrad.data (datasets, the DataLoader, file readers,
-- Fashion-MNIST), moongrad.transforms (and transforms.F) and mg.image.
-- The form of an entry is described in moongrad/help.lua.

-- A tiny ImageFolder for its instance(): one class folder holding one file
-- (any file passes is_valid_file); the folder is removed again, which the
-- dataset's listing does not need.
local function tiny_image_folder()
  local data = require "moongrad.data"
  local root = os.tmpname()
  os.remove(root)
  os.execute(("mkdir -p '%s/c'"):format(root))
  local f = assert(io.open(root .. "/c/x.png", "wb"))
  f:write("x")
  f:close()
  local ok, ds = pcall(data.ImageFolder, root, { is_valid_file = function() return true end })
  os.remove(root .. "/c/x.png")
  os.remove(root .. "/c")
  os.remove(root)
  if not ok then error(ds, 0) end
  return ds
end

return {
  ---------------------------------------------------------------------------
  -- moongrad.data

  data = {
    sig = 'local data = require "moongrad.data"',
    doc = [[Datasets, the DataLoader that batches them, readers for IDX and CSV files, and Fashion-MNIST. A dataset is any table with ds:len() and ds:get(i) (1-based i) returning one sample's values (x, y, ...); it may also offer ds:get_batch(ids), which the DataLoader then uses to gather whole batches in C. Unlike torch.utils.data there are no Sampler classes: shuffling, dropping the last batch, background workers and sharding are DataLoader options and methods, and the order comes from the state's RNG (mg.manual_seed).]],
    groups = { "Datasets", "Loading", "Files", "Fashion-MNIST" },
    example = [[
local ds = data.TensorDataset(mg.randn(10, 3), mg.randint(1, 3, {10}))
local train_set, val_set = table.unpack(data.random_split(ds, {8, 2}, {seed = 1}))
local loader = data.DataLoader(train_set, {batch_size = 4, shuffle = true})
for xb, yb in loader:iter() do print(xb:shape()[1], yb:dtype()) end
--> 4  int64
--> 4  int64]],
    see = { "data.DataLoader", "data.TensorDataset", "transforms", "mg.image" },
  },

  ["data.TensorDataset"] = {
    sig = "data.TensorDataset(x [, y, ...])",
    doc = [[A dataset of tensors that share their first dim: sample i is (x[i], y[i], ...), each a view of the tensor's i-th slice along dim 1 (a 0-d tensor for a 1-D one). It has get_batch, so a DataLoader over it gathers each batch with one index_select per tensor instead of reading samples one by one. As torch's TensorDataset; it raises when given no tensor, a non-tensor, a 0-d tensor, or tensors whose sizes along dim 1 differ.]],
    example = [[
local ds = data.TensorDataset(mg.arange(1, 7):view(3, 2), mg.tensor({1, 2, 1}, "int64"))
print(ds:len(), #ds)                           --> 3  3
local x, y = ds:get(2)
print(table.concat(x:totable(), " "), y:item())  --> 3 4  2]],
    group = "Datasets",
    instance = function()
      local mg = require "moongrad"
      return require("moongrad.data").TensorDataset(mg.zeros(2, 3))
    end,
    see = { "data.DataLoader", "data.Subset", "data.random_split" },
  },

  ["data.TensorDataset:len"] = {
    sig = { "ds:len()", "#ds" },
    doc = [[The number of samples: the size of the tensors along dim 1.]],
    example = [[
local ds = data.TensorDataset(mg.zeros(5, 2))
print(ds:len(), #ds)   --> 5  5]],
    see = { "data.TensorDataset:get" },
  },

  ["data.TensorDataset:get"] = {
    sig = "ds:get(i)",
    doc = [[Sample i (1-based): the i-th slice along dim 1 of each tensor, as views (writing into them writes into the dataset's tensors). An i that is not an integer in 1..ds:len() raises "index i out of range".]],
    example = [[
local ds = data.TensorDataset(mg.arange(1, 7):view(3, 2), mg.arange(1, 4))
local x, y = ds:get(3)
print(table.concat(x:totable(), " "), y:item())   --> 5 6  3]],
    see = { "data.TensorDataset:get_batch" },
  },

  ["data.TensorDataset:get_batch"] = {
    sig = "ds:get_batch(ids)",
    doc = [[The samples at ids, a 1-D int64 tensor of 1-based positions, as whole batch tensors (new tensors, one index_select along dim 1 per tensor). The DataLoader calls it instead of get and collate when there is no collate option, which is what makes TensorDataset batches fast.]],
    example = [[
local ds = data.TensorDataset(mg.arange(1, 7):view(3, 2), mg.arange(1, 4))
local xb, yb = ds:get_batch(mg.tensor({3, 1}, "int64"))
print(table.concat(xb:shape(), "x"), table.concat(yb:totable(), " "))   --> 2x2  3 1]],
    see = { "data.DataLoader" },
  },

  ["data.Subset"] = {
    sig = "data.Subset(ds, ids)",
    doc = [[The samples of ds at ids, in that order: ids is a table of integers or a 1-D int64 tensor of 1-based positions (repeats allowed). When ds has get_batch, so has the Subset, which keeps a DataLoader over a Subset of a TensorDataset on the fast path. Raises when ds lacks len and get, an id is not an integer, or one lies outside 1..ds:len(). torch.utils.data.Subset takes 0-based indices.]],
    example = [[
local ds = data.TensorDataset(mg.tensor({10, 20, 30, 40}))
local sub = data.Subset(ds, {4, 1})
print(sub:len(), sub:get(1):item())   --> 2  40.0]],
    group = "Datasets",
    instance = function()
      local mg = require "moongrad"
      local data = require "moongrad.data"
      return data.Subset(data.TensorDataset(mg.zeros(3)), { 1 })
    end,
    see = { "data.random_split", "data.TensorDataset" },
  },

  ["data.Subset:len"] = {
    sig = { "sub:len()", "#sub" },
    doc = [[The number of positions the Subset was given (repeats counted).]],
    example = [[
local sub = data.Subset(data.TensorDataset(mg.zeros(5)), {1, 2, 2})
print(sub:len(), #sub)   --> 3  3]],
    see = { "data.Subset:get" },
  },

  ["data.Subset:get"] = {
    sig = "sub:get(i)",
    doc = [[Sample i of the Subset (1-based): ds:get(ids[i]) of the dataset it was made from, returning whatever that returns. An i outside 1..sub:len() raises.]],
    example = [[
local sub = data.Subset(data.TensorDataset(mg.tensor({10, 20, 30})), {3, 1})
print(sub:get(1):item(), sub:get(2):item())   --> 30.0  10.0]],
    see = { "data.Subset" },
  },

  ["data.random_split"] = {
    sig = "data.random_split(ds, lengths [, {seed = n}])",
    doc = [[Splits ds into Subsets over a random permutation of its samples and returns them as a list (use table.unpack). lengths are counts that sum to ds:len(), or fractions that sum to 1: then each part gets the floor of its share and what is left goes one by one to the parts in turn, as torch does. With seed the permutation depends on the seed alone and the state's RNG is left as it was (torch's generator=torch.Generator().manual_seed(n)); without it the permutation is drawn from the state's RNG. Raises when the counts do not sum to the dataset's size or the fractions to 1.]],
    opts = {
      { "seed", "nil", "an integer: the split comes from this seed, and the state's RNG does not move" },
    },
    example = [[
local ds = data.TensorDataset(mg.zeros(10))
local parts = data.random_split(ds, {0.7, 0.3}, {seed = 42})
print(#parts, parts[1]:len(), parts[2]:len())   --> 2  7  3]],
    group = "Datasets",
    see = { "data.Subset", "mg.manual_seed" },
  },

  ["data.ImageFolder"] = {
    sig = "data.ImageFolder(root [, opts])",
    doc = [[A dataset of image files laid out as root/<class>/.../<file>, as torchvision.datasets.ImageFolder reads it: every subfolder of root is a class (sorted by bytes; ds.classes, ds.class_to_idx), each class folder is walked recursively following links, and a file whose lowercased name ends in one of the extensions is a sample. ds:get(i) returns transform(image), target_transform(label), the image by default mg.image.load(path, {mode = "RGB"}) (uint8 [3, H, W]) and labels 1-based. ds.samples lists {path, label}, ds.targets the labels, ds.skipped the files verify left out as {path, error}. Raises when root has no class folder or a class has no valid file; a file that cannot be decoded raises from get, naming it, unless verify left it out up front. Only PNG and JPEG decode, though the default extensions also name .bmp, .tif, .webp and others as torchvision's do.]],
    opts = {
      { "transform", "nil", "fn(img) -> img, applied to each loaded image" },
      { "target_transform", "nil", "fn(label) -> label, applied to each label" },
      { "loader", "nil", "fn(path) -> image; the default is mg.image.load(path, {mode = \"RGB\"})" },
      { "extensions", "{\".jpg\", ...}",
        "the file endings that make a sample, compared lowercased; by default torchvision's .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp; not with is_valid_file" },
      { "is_valid_file", "nil", "fn(path) -> boolean, instead of extensions" },
      { "verify", "false", "true or \"header\": read every header (mg.image.info, and the pixel limit); \"full\": load every file; bad files go to ds.skipped" },
    },
    example = [[
local root = os.tmpname(); os.remove(root)
for _, c in ipairs{"cat", "dog"} do
  os.execute(("mkdir -p '%s/%s'"):format(root, c))
  mg.image.save(("%s/%s/1.png"):format(root, c), mg.rand(3, 8, 8))
end
local ds = data.ImageFolder(root)
local img, label = ds:get(2)
print(ds:len(), ds.classes[2], img:dtype(), label)   --> 2  dog  uint8  2
os.execute(("rm -r '%s'"):format(root))]],
    group = "Datasets",
    instance = tiny_image_folder,
    see = { "mg.image.load", "transforms", "data.DataLoader" },
  },

  ["data.ImageFolder:len"] = {
    sig = { "ds:len()", "#ds" },
    doc = [[The number of samples: #ds.samples (files left out by verify are not counted; #ds.skipped counts those).]],
    example = [[
local root = os.tmpname(); os.remove(root)
os.execute(("mkdir -p '%s/a'"):format(root))
for i = 1, 3 do mg.image.save(("%s/a/%d.png"):format(root, i), mg.zeros(1, 2, 2)) end
print(data.ImageFolder(root):len())   --> 3
os.execute(("rm -r '%s'"):format(root))]],
    see = { "data.ImageFolder:get" },
  },

  ["data.ImageFolder:get"] = {
    sig = "ds:get(i)",
    doc = [[Sample i (1-based): the image at ds.samples[i][1], loaded (by default as uint8 RGB [3, H, W]) and passed through transform, and its 1-based class label passed through target_transform. A file that cannot be decoded raises here with its path in the message; an i outside 1..ds:len() raises.]],
    example = [[
local root = os.tmpname(); os.remove(root)
os.execute(("mkdir -p '%s/a'"):format(root))
mg.image.save(root .. "/a/1.png", mg.zeros(1, 4, 6))
local ds = data.ImageFolder(root, {transform = function(img) return img:float() / 255 end})
local x, y = ds:get(1)
print(table.concat(x:shape(), "x"), x:dtype(), y)   --> 3x4x6  float32  1
os.execute(("rm -r '%s'"):format(root))]],
    see = { "data.ImageFolder" },
  },

  ["data.DataLoader"] = {
    sig = "data.DataLoader(ds [, opts])",
    doc = [[Batches of a dataset, one epoch per loader:iter(). A dataset with get_batch (TensorDataset, a Subset of one) gives whole batches; any other is read sample by sample and put together by collate. Shuffling draws mg.randperm from the state's RNG at the start of every epoch, so mg.manual_seed makes the order reproducible; when the loader runs code of the user's per sample (get, collate or transform) each epoch also draws a seed, and sample i's random numbers come from stream i of it, so augmentations do not depend on batch size, worker count or thread count. With num_workers > 0 batches are made in forked processes, yielded in order and bit for bit equal to num_workers = 0. Unlike PyTorch, transform is applied to each whole batch (transform(xb, yb, ...) returns the batch), collate replaces collate_fn, and there is no sampler or generator option. Raises for a dataset without len and get, an unknown option, or a wrongly typed one (shuffle = 1 is an error, not true).]],
    opts = {
      { "batch_size", "1", "samples per batch, an integer >= 1" },
      { "shuffle", "false", "a new random order every epoch" },
      { "drop_last", "false", "leave out the last batch when it is smaller than batch_size" },
      { "transform", "nil", "fn(xb, yb, ...) -> xb, yb, ...: run on every batch (a transforms.Compose, say)" },
      { "collate", "nil", "fn(samples) -> batch values, replacing data.collate; samples is a list of table.pack'ed samples (used instead of get_batch when given)" },
      { "num_workers", "0", "worker processes making batches in the background (0: in this process)" },
      { "prefetch_factor", "2", "batches each worker may make ahead of the one being taken" },
      { "persistent_workers", "false", "keep the workers from epoch to epoch instead of forking new ones each iter()" },
    },
    example = [[
local ds = data.TensorDataset(mg.randn(10, 3), mg.randint(1, 3, {10}))
local loader = data.DataLoader(ds, {batch_size = 4, shuffle = true, drop_last = true})
print(#loader)                                   --> 2
for xb, yb in loader:iter() do
  print(table.concat(xb:shape(), "x"), yb:dtype())  -- 4x3  int64, twice
end]],
    group = "Loading",
    instance = function()
      local mg = require "moongrad"
      local data = require "moongrad.data"
      return data.DataLoader(data.TensorDataset(mg.zeros(4, 2)), { batch_size = 2 })
    end,
    see = { "data.DataLoader:iter", "data.collate", "data.TensorDataset", "transforms.Compose" },
  },

  ["data.DataLoader:iter"] = {
    sig = "for xb, yb, ... in loader:iter() do ... end",
    doc = [[One epoch: an iterator over the batches (each the values the dataset's samples have, batched). A new iter() starts a new epoch (a new order when shuffling) unless load_state_dict set up a resume, in which case it yields the rest of that epoch. With workers, the workers start here and stop after the last batch, or when the for loop is left by break or an error (the loop's closing value). An iterator replaced by a newer iter() or by load_state_dict raises when called again. An error in a worker is raised at its batch as "DataLoader: worker w, batch k: ...".]],
    example = [[
local loader = data.DataLoader(data.TensorDataset(mg.arange(1, 6)), {batch_size = 2})
for xb in loader:iter() do print(table.concat(xb:totable(), " ")) end
--> 1 2
--> 3 4
--> 5]],
    see = { "data.DataLoader", "data.DataLoader:state_dict" },
  },

  ["data.DataLoader:len"] = {
    sig = { "loader:len()", "#loader" },
    doc = [[Batches per epoch: ceil(n / batch_size), or floor with drop_last. For a sharded loader it counts global batches of size * batch_size samples, which every rank has as many of.]],
    example = [[
local ds = data.TensorDataset(mg.zeros(10))
print(#data.DataLoader(ds, {batch_size = 4}))                      --> 3
print(data.DataLoader(ds, {batch_size = 4, drop_last = true}):len())  --> 2]],
    see = { "data.DataLoader" },
  },

  ["data.DataLoader:shard"] = {
    sig = "loader:shard(rank, size [, sync])",
    doc = [[A copy of the loader for rank `rank` (1-based) of `size` data-parallel ranks, as PyTorch's DistributedSampler splits data: each epoch's order is the unsharded loader's, global batch k is the next size * batch_size positions of it, and rank r takes every size-th of them from the r-th on. So the ranks together see what one loader with batch size * batch_size sees. sync(t), when given, is called with each epoch's shuffled order and seed (int64 tensors) and must make them rank 1's (moongrad.dist passes a broadcast). When the last global batch has fewer samples than ranks, some ranks get an empty batch; loader.last_rows and loader.last_global_rows tell how many samples the last batch had here and over all ranks. Raises unless 1 <= rank <= size.]],
    example = [[
local loader = data.DataLoader(data.TensorDataset(mg.arange(1, 11)), {batch_size = 2})
local second = loader:shard(2, 2)
print(#second)                                                      --> 3
local got = {}
for xb in second:iter() do got[#got + 1] = table.concat(xb:totable(), " ") end
print(table.concat(got, "; "))                                      --> 2 4; 6 8; 10]],
    see = { "data.DataLoader", "dist" },
  },

  ["data.DataLoader:state_dict"] = {
    sig = "loader:state_dict()",
    doc = [[Where the loader is in its epoch: {perm = this epoch's order (an int64 tensor; nil when not shuffling), position = the batches already yielded, epoch_seed = the epoch's seed of per-sample random streams or nil}. Saved with a checkpoint and given to load_state_dict, it lets a run continue mid-epoch with exactly the batches it would have had, whatever the worker count.]],
    example = [[
local loader = data.DataLoader(data.TensorDataset(mg.zeros(6)), {batch_size = 2, shuffle = true})
local it = loader:iter()
it()
local sd = loader:state_dict()
print(sd.position, sd.perm:numel())   --> 1  6]],
    see = { "data.DataLoader:load_state_dict", "checkpoint" },
  },

  ["data.DataLoader:load_state_dict"] = {
    sig = "loader:load_state_dict(sd)",
    doc = [[Restores a state from state_dict: the next iter() yields the rest of that epoch (batch position + 1 on, in the same order and with the same seed). All or nothing: position must be an integer in 0..#loader, perm a 1-D int64 permutation of 1..n for the dataset's n samples, epoch_seed an integer; a shuffling loader needs perm to resume mid-epoch; unknown keys raise. On an error the loader is unchanged.]],
    example = [[
local ds = data.TensorDataset(mg.arange(1, 7))
local a = data.DataLoader(ds, {batch_size = 2, shuffle = true})
local it = a:iter(); it()
local b = data.DataLoader(ds, {batch_size = 2, shuffle = true})
b:load_state_dict(a:state_dict())
local n = 0
for _ in b:iter() do n = n + 1 end
print(n)   --> 2]],
    see = { "data.DataLoader:state_dict", "data.DataLoader:prepare_load_state_dict" },
  },

  ["data.DataLoader:prepare_load_state_dict"] = {
    sig = "local apply = loader:prepare_load_state_dict(sd)",
    doc = [[Checks sd as load_state_dict does, changing nothing, and returns apply, a function that installs it and cannot fail. moongrad.checkpoint uses it to check every part of a checkpoint before changing any. Raises what load_state_dict would raise.]],
    example = [[
local loader = data.DataLoader(data.TensorDataset(mg.zeros(4)), {batch_size = 2})
local apply = loader:prepare_load_state_dict({position = 1})
print(loader:state_dict().position)   --> 0
apply()
print(loader:state_dict().position)   --> 1]],
    see = { "data.DataLoader:load_state_dict" },
  },

  ["data.DataLoader:close"] = {
    sig = "loader:close()",
    doc = [[Stops the loader's worker processes now, persistent ones too, instead of when the loader is garbage-collected; the next iter() forks new ones. An iteration running when the loader is closed cannot go on (its iterator raises). The loader is also a to-be-closed value: local loader <close> = data.DataLoader(...).]],
    example = [[
local loader = data.DataLoader(data.TensorDataset(mg.zeros(8)),
                               {batch_size = 2, num_workers = 2, persistent_workers = true})
for _ in loader:iter() do end
print(#loader:worker_pids())   --> 2
loader:close()
print(#loader:worker_pids())   --> 0]],
    see = { "data.DataLoader:worker_pids" },
  },

  ["data.DataLoader:worker_pids"] = {
    sig = "loader:worker_pids()",
    doc = [[The process ids of the loader's live worker processes, in worker order ({} when there are none), for watching their memory or CPU use. Workers that are not persistent exist only while an iteration runs.]],
    example = [[
local loader = data.DataLoader(data.TensorDataset(mg.zeros(8)), {batch_size = 2, num_workers = 2})
for _ in loader:iter() do
  print(#loader:worker_pids())   --> 2
  break
end]],
    see = { "data.DataLoader:close" },
  },

  ["data.collate"] = {
    sig = "data.collate(samples)",
    doc = [[The DataLoader's default way of putting samples together: samples is a list of samples, each a list of values (as table.pack(ds:get(i)) gives), and it returns one batched value per position. Tensors are stacked along a new dim 1 (all must have sample 1's shape), numbers become an int64 tensor when all are Lua integers (class labels) and a float32 one otherwise, tables of numbers become a tensor, and anything else (strings, say) a plain Lua list. Raises for an empty list, mismatched shapes or a mix of numbers and other values. A collate option of the DataLoader replaces it.]],
    example = [[
local xb, yb, names = data.collate({{mg.zeros(2), 1, "a"}, {mg.ones(2), 2, "b"}})
print(table.concat(xb:shape(), "x"), yb:dtype(), names[2])   --> 2x2  int64  b]],
    group = "Loading",
    see = { "data.DataLoader" },
  },

  ["data.read_idx"] = {
    sig = "data.read_idx(path [, opts])",
    doc = [[Reads an IDX file (the MNIST format), gzip-compressed or plain, into a tensor shaped as the file's dims. The default dtype is float32 for unsigned byte, signed byte, short and float data (exact), int64 for int and float64 for double; every value is multiplied by scale. The gzip stream must be whole (its CRC is checked), and what the reader holds counts against mg.set_memory_limit. Errors name the file: missing, truncated, trailing bytes after the data, or a dtype other than float32, float64, int64 or uint8.]],
    opts = {
      { "dtype", "by the file's type", "\"float32\", \"float64\", \"int64\" or \"uint8\"" },
      { "scale", "1", "every value is multiplied by it (1/255 gives pixels in [0, 1])" },
    },
    example = [[
local path = os.tmpname()
local f = io.open(path, "wb")     -- ubyte data, 2 dims: 2 x 3
f:write(string.pack(">I4I4I4", 0x0802, 2, 3), "\0\1\2\3\4\5"); f:close()
local t = data.read_idx(path, {scale = 1 / 5})
print(table.concat(t:shape(), "x"), t:dtype(), t:max():item())   --> 2x3  float32  1.0
os.remove(path)]],
    group = "Files",
    see = { "data.fashion_mnist", "data.read_csv" },
  },

  ["data.read_csv"] = {
    sig = "data.read_csv(path [, opts])",
    doc = [[Reads a CSV file of numbers (gzip-compressed or plain) into a tensor [rows, cols] and returns it with the list of column names, or nil when there is no header. With header = nil the first line is a header when any of its cells is not a number. A cell is a decimal number (1, -2.5, .5, 1e-3) or inf, infinity or nan, with blanks around it allowed and quotes as in CSV; lines may end with LF, CRLF or CR. Anything else in a data cell, or a row with a different number of cells, raises an error naming the file, line and column.]],
    opts = {
      { "header", "nil", "true: the first line holds names; false: it is data; nil: guessed" },
      { "delimiter", "\",\"", "the one character between cells" },
      { "dtype", "\"float32\"", "\"float32\" or \"float64\"" },
    },
    example = [[
local path = os.tmpname()
local f = io.open(path, "w"); f:write("a,b\n1,2.5\n3,-4\n"); f:close()
local t, names = data.read_csv(path)
print(table.concat(t:shape(), "x"), names[2], t:sum():item())   --> 2x2  b  2.5
os.remove(path)]],
    group = "Files",
    see = { "data.read_idx", "data.TensorDataset" },
  },

  ["data.fashion_mnist"] = {
    sig = "data.fashion_mnist([opts])",
    doc = [[Loads Fashion-MNIST from the IDX files of Debian's dataset-fashion-mnist package and returns x, float32 [N, 1, 28, 28] with pixels in [0, 1] (0..255 with normalize = false), and y, int64 [N] with labels 1..10 (names in data.fashion_mnist_classes). The train split has 60000 images, the test split 10000. torchvision's FashionMNIST labels are 0..9 and it downloads the files; this reads the installed ones, and a missing file raises an error that names the package to install.]],
    opts = {
      { "split", "\"train\"", "\"train\" or \"test\"" },
      { "root", "\"/usr/share/datasets/fashion-mnist\"", "the folder holding the four .gz files" },
      { "normalize", "true", "pixels in [0, 1]; false keeps 0..255 (still float32)" },
    },
    example = [[
local x, y = data.fashion_mnist({split = "test"})
print(table.concat(x:shape(), "x"), y:dtype())        --> 10000x1x28x28  int64
local first = y[1]
print(data.fashion_mnist_classes[first])              --> Ankle boot]],
    group = "Fashion-MNIST",
    see = { "data.fashion_mnist_dataset", "data.fashion_mnist_classes", "data.read_idx" },
  },

  ["data.fashion_mnist_dataset"] = {
    sig = "data.fashion_mnist_dataset([opts])",
    doc = [[data.TensorDataset(data.fashion_mnist(opts)): Fashion-MNIST as a dataset whose samples are an image [1, 28, 28] and a 0-d int64 label in 1..10. Takes the options of data.fashion_mnist (split, root, normalize).]],
    example = [[
local ds = data.fashion_mnist_dataset({split = "test"})
local x, y = ds:get(1)
print(ds:len(), table.concat(x:shape(), "x"), y:item())   --> 10000  1x28x28  10]],
    group = "Fashion-MNIST",
    see = { "data.fashion_mnist", "data.TensorDataset" },
  },

  ["data.fashion_mnist_classes"] = {
    sig = "data.fashion_mnist_classes",
    doc = [[The ten Fashion-MNIST class names, indexed by the 1-based labels data.fashion_mnist returns: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot. A plain Lua list (a constant, not a function).]],
    example = [[
print(#data.fashion_mnist_classes, data.fashion_mnist_classes[1])   --> 10  T-shirt/top]],
    group = "Fashion-MNIST",
    see = { "data.fashion_mnist" },
  },

  ---------------------------------------------------------------------------
  -- moongrad.transforms

  transforms = {
    sig = 'local transforms = require "moongrad.transforms"',
    doc = [[Data augmentation, for batches [N, C, H, W] and single images [C, H, W], uint8, float32 or float64. A transform is a callable object t(x, y) -> x, y: y (class ids, soft targets or nil) passes through untouched except by MixUp and CutMix, so transforms go as the transform option of a DataLoader or of a dataset; tostring(t) shows its options. Every image of a batch gets its own random draw, from the state's RNG (mg.manual_seed makes a pipeline reproducible), and results never depend on the thread count. Transforms never write into x, refuse an x that requires grad (they are not differentiable), and keep the dtype except ToTensor and ConvertImageDtype. The image transforms compute as torchvision 0.14's tensor transforms do; options go in a table (RandomCrop{size = 28, padding = 2}) rather than keyword arguments, and positions are 1-based.]],
    groups = { "Composition", "Conversion and normalization", "Batch augmentation", "Mixing",
               "Image transforms", "Functional", "Primitives" },
    example = [[
local augment = transforms.Compose{
  transforms.RandomCrop{size = 28, padding = 2},
  transforms.RandomHorizontalFlip{p = 0.5},
  transforms.Normalize{mean = {0.286}, std = {0.353}},
}
local xb, yb = augment(mg.rand(8, 1, 28, 28), mg.randint(1, 10, {8}))
print(table.concat(xb:shape(), "x"), yb:dtype())   --> 8x1x28x28  int64]],
    see = { "transforms.F", "data.DataLoader", "mg.image" },
  },

  ["transforms.Compose"] = {
    sig = "transforms.Compose{t1, t2, ...}",
    doc = [[A transform that applies t1, t2, ... in order, each getting the (x, y) the one before returned; t.transforms is the list. ToTensor directly followed by Normalize runs as one fused pass on a uint8 image (the same numbers). As torchvision's Compose, except that the steps take and return (x, y). Raises when an element is not callable or the table has keys other than 1..n.]],
    example = [[
local tf = transforms.Compose{transforms.ToTensor(), transforms.Normalize{mean = {0.5}, std = {0.5}}}
local img = mg.full({1, 2, 2}, 255):to("uint8")
print(tf(img):dtype(), tf(img):max():item(), #tf.transforms)   --> float32  1.0  2]],
    group = "Composition",
    see = { "transforms.Lambda", "data.DataLoader" },
  },

  ["transforms.Lambda"] = {
    sig = "transforms.Lambda(fn)",
    doc = [[A transform from a function: fn(x, y) returns the new x and, optionally, the new y (y is kept when fn returns one value). torchvision's Lambda calls fn with the image alone.]],
    example = [[
local double = transforms.Lambda(function(x) return x * 2 end)
local x, y = double(mg.ones(1, 2, 2), "label")
print(x:sum():item(), y)   --> 8.0  label]],
    group = "Composition",
    see = { "transforms.Compose" },
  },

  ["transforms.Normalize"] = {
    sig = "transforms.Normalize{mean = {...}, std = {...}}",
    doc = [[Per channel, (x - mean[c]) / std[c], on float images or batches (convert uint8 first with ToTensor, or put Normalize right after ToTensor in a Compose, which fuses the two). mean and std are numbers or lists of one value per channel (or one for all). As torchvision's Normalize, without inplace. Raises when mean and std differ in length, a std is zero, the channel count does not match, or the image is uint8.]],
    opts = {
      { "mean", "required", "a number or a list, one per channel" },
      { "std", "required", "a number or a list, one per channel; none may be zero" },
    },
    example = [[
local norm = transforms.Normalize{mean = {0.5, 0.5, 0.5}, std = {0.25, 0.25, 0.25}}
print(norm(mg.ones(3, 2, 2)):max():item())   --> 2.0]],
    group = "Conversion and normalization",
    see = { "transforms.ToTensor", "transforms.F.normalize" },
  },

  ["transforms.ToTensor"] = {
    sig = "transforms.ToTensor()",
    doc = [[uint8 images [C, H, W] (or batches) to float32 in [0, 1], dividing by 255; float images pass as they are. torchvision's ToTensor also turns a PIL image or an HWC array into CHW; here images are already CHW tensors (mg.image.load gives uint8 [C, H, W]). It takes no options.]],
    example = [[
local x = transforms.ToTensor()(mg.full({3, 2, 2}, 255):to("uint8"))
print(x:dtype(), x:max():item())   --> float32  1.0]],
    group = "Conversion and normalization",
    see = { "transforms.ConvertImageDtype", "transforms.Normalize" },
  },

  ["transforms.ConvertImageDtype"] = {
    sig = { "transforms.ConvertImageDtype(dtype)", "transforms.ConvertImageDtype{dtype = dtype}" },
    doc = [[Converts images to dtype ("uint8", "float32" or "float64"), scaling as torchvision's ConvertImageDtype does: uint8 to float divides by 255, float to uint8 multiplies by 255.999 and truncates, float to float converts. An image already of that dtype is returned as it is. dtype is required.]],
    example = [[
local to_u8 = transforms.ConvertImageDtype("uint8")
local x = to_u8(mg.full({1, 1, 1}, 0.5))
print(x:dtype(), x[1][1][1])   --> uint8  127]],
    group = "Conversion and normalization",
    see = { "transforms.ToTensor", "transforms.F.convert_image_dtype" },
  },

  ["transforms.RandomHorizontalFlip"] = {
    sig = "transforms.RandomHorizontalFlip([{p = 0.5}])",
    doc = [[Flips each image left-right with probability p, drawn per image of a batch; an image left alone is returned as it is. As torchvision's RandomHorizontalFlip(p), with p in an options table.]],
    opts = { { "p", "0.5", "the probability of a flip, in [0, 1]" } },
    example = [[
local flip = transforms.RandomHorizontalFlip{p = 1}
print(table.concat(flip(mg.tensor({{{1, 2, 3}}})):view(3):totable(), " "))   --> 3.0 2.0 1.0]],
    group = "Batch augmentation",
    see = { "transforms.RandomVerticalFlip", "transforms.flip_horizontal", "transforms.F.hflip" },
  },

  ["transforms.RandomVerticalFlip"] = {
    sig = "transforms.RandomVerticalFlip([{p = 0.5}])",
    doc = [[Flips each image top-bottom with probability p, drawn per image of a batch. As torchvision's RandomVerticalFlip(p), with p in an options table.]],
    opts = { { "p", "0.5", "the probability of a flip, in [0, 1]" } },
    example = [[
local flip = transforms.RandomVerticalFlip{p = 1}
print(table.concat(flip(mg.tensor({{{1}, {2}}})):view(2):totable(), " "))   --> 2.0 1.0]],
    group = "Batch augmentation",
    see = { "transforms.RandomHorizontalFlip", "transforms.flip_vertical" },
  },

  ["transforms.RandomCrop"] = {
    sig = "transforms.RandomCrop{size = n | {h, w} [, padding = 0] [, fill = 0]}",
    doc = [[Pads every side of each image by padding pixels of value fill, then cuts a size window at a random place, drawn per image. Unlike torchvision's RandomCrop, padding is one non-negative integer for all four sides and there is no pad_if_needed or padding_mode (see transforms.Pad for those). Raises when size is larger than the padded image, or fill is not an integer 0..255 on a uint8 image.]],
    opts = {
      { "size", "required", "the output height and width: n or {h, w}" },
      { "padding", "0", "pixels added on every side before cropping" },
      { "fill", "0", "the value of the padding" },
    },
    example = [[
local crop = transforms.RandomCrop{size = 28, padding = 4}
local xb = crop(mg.rand(2, 1, 28, 28))
print(table.concat(xb:shape(), "x"))   --> 2x1x28x28]],
    group = "Batch augmentation",
    see = { "transforms.RandomResizedCrop", "transforms.crop_with_padding" },
  },

  ["transforms.RandomAffine"] = {
    sig = "transforms.RandomAffine{[degrees =] [, translate =] [, scale =] [, fill =] [, interpolation =]}",
    doc = [[A random rotation, translation and scaling about the image centre, drawn per image: an angle from degrees (counter-clockwise), a shift of up to translate[1] * W and translate[2] * H pixels (rounded to whole pixels), and a scale factor from the scale range; what comes from outside the image is fill. Differences from torchvision's RandomAffine: degrees is optional (default 0), there is no shear or center, and the default interpolation is "bilinear" (torchvision: nearest).]],
    opts = {
      { "degrees", "0", "d (an angle from [-d, d]) or {lo, hi}, in degrees" },
      { "translate", "nil", "{fx, fy}: the largest shift as fractions of width and height, in [0, 1]" },
      { "scale", "nil", "{lo, hi}: the scale factor's range, lo > 0" },
      { "fill", "0", "the value outside the image: a number or one per channel" },
      { "interpolation", "\"bilinear\"", "\"bilinear\" or \"nearest\"" },
    },
    example = [[
local affine = transforms.RandomAffine{degrees = 15, translate = {0.1, 0.1}, scale = {0.9, 1.1}}
local xb = affine(mg.rand(4, 1, 28, 28))
print(table.concat(xb:shape(), "x"))   --> 4x1x28x28]],
    group = "Batch augmentation",
    see = { "transforms.RandomRotation", "transforms.F.affine", "transforms.affine" },
  },

  ["transforms.RandomErasing"] = {
    sig = "transforms.RandomErasing([{p = 0.5, scale = {0.02, 0.33}, ratio = {0.3, 3.3}, value = 0}])",
    doc = [[With probability p per image, sets a random rectangle of every channel to value: its area a fraction from scale of the image's, its aspect ratio log-uniform in ratio, its place uniform; after 10 tries that do not fit nothing is erased. As torchvision's RandomErasing, on float images only (after ToTensor); value is a number or "random" (normal noise), not a per-channel list, and there is no inplace.]],
    opts = {
      { "p", "0.5", "the probability of erasing, per image" },
      { "scale", "{0.02, 0.33}", "the range of the erased area, as a fraction of the image's" },
      { "ratio", "{0.3, 3.3}", "the range of the rectangle's aspect ratio" },
      { "value", "0", "the value written, or \"random\" for standard normal noise" },
    },
    example = [[
local erase = transforms.RandomErasing{p = 1, value = -1}
local x = erase(mg.ones(1, 16, 16))
print(x:min():item())   --> -1.0]],
    group = "Batch augmentation",
    see = { "transforms.erase" },
  },

  ["transforms.GaussianNoise"] = {
    sig = "transforms.GaussianNoise([{std = 0.1, mean = 0}])",
    doc = [[Adds noise drawn from N(mean, std^2) to every element of a float image or batch. Unlike torchvision v2's GaussianNoise (sigma, clip = True), the result is not clipped to [0, 1].]],
    opts = {
      { "std", "0.1", "the noise's standard deviation, >= 0" },
      { "mean", "0", "the noise's mean" },
    },
    example = [[
local noisy = transforms.GaussianNoise{std = 0.05}(mg.zeros(1, 1, 100, 100))
print(noisy:std():item() < 0.06)   --> true]],
    group = "Batch augmentation",
    see = { "transforms.RandomErasing" },
  },

  ["transforms.MixUp"] = {
    sig = "transforms.MixUp{[alpha = 0.2] [, num_classes = K]}",
    doc = [[Mixes each sample of a batch with sample perm[n] of the same batch (perm = mg.randperm(N)): x = lam x + (1 - lam) x[perm], with one lam ~ Beta(alpha, alpha) per batch, and turns the labels into soft targets [N, K] mixed the same way, which F.cross_entropy accepts. yb is int64 class ids 1..K (num_classes required) or float soft targets [N, K]; t.last_lambda holds the lam used. Batches [N, C, H, W] of float32 or float64 only. torchvision v2's MixUp takes 0-based labels and defaults to alpha = 1.]],
    opts = {
      { "alpha", "0.2", "the Beta distribution's parameter, > 0" },
      { "num_classes", "nil", "K; required when yb holds int64 class ids" },
    },
    example = [[
local mix = transforms.MixUp{alpha = 0.2, num_classes = 3}
local xb, yb = mix(mg.rand(4, 1, 8, 8), mg.tensor({1, 2, 3, 1}, "int64"))
print(table.concat(yb:shape(), "x"), yb:dtype(), yb:sum():item())   --> 4x3  float32  4.0]],
    group = "Mixing",
    see = { "transforms.CutMix", "transforms.sample_beta", "F.cross_entropy" },
  },

  ["transforms.CutMix"] = {
    sig = "transforms.CutMix{[alpha = 1.0] [, num_classes = K]}",
    doc = [[Pastes into each sample a box cut from sample perm[n] of the same batch. One lam ~ Beta(alpha, alpha) per batch sets the box's size (half-sides floor(r W) and floor(r H), r = sqrt(1 - lam) / 2), each sample draws its own box centre, and the box is clipped to the image; each sample's labels are mixed by its exact kept area, giving soft targets [N, K]. yb is int64 class ids 1..K (num_classes required) or float soft targets [N, K]; t.last_lambda is the [N] float64 tensor of kept areas. Batches of float32 or float64 only. torchvision v2's CutMix uses one box for the whole batch and 0-based labels.]],
    opts = {
      { "alpha", "1.0", "the Beta distribution's parameter, > 0" },
      { "num_classes", "nil", "K; required when yb holds int64 class ids" },
    },
    example = [[
local cutmix = transforms.CutMix{num_classes = 10}
local xb, yb = cutmix(mg.rand(4, 3, 16, 16), mg.tensor({1, 5, 9, 10}, "int64"))
print(table.concat(yb:shape(), "x"), cutmix.last_lambda:numel())   --> 4x10  4]],
    group = "Mixing",
    see = { "transforms.MixUp", "transforms.paste" },
  },

  ["transforms.Resize"] = {
    sig = { "transforms.Resize(size [, opts])", "transforms.Resize{size = size, ...}" },
    doc = [[Resizes images: size n makes the smaller edge n and keeps the aspect ratio (the longer edge truncated, capped by max_size), size {h, w} gives exactly that. Batches are resized as a whole; an image already of the size is returned as it is. As torchvision's Resize; antialias defaults to true, which shrinks as PIL does (torchvision 0.14's tensor path defaulted to no antialiasing). Raises for a size that is not positive integers, or max_size with a {h, w} size or not above n.]],
    opts = {
      { "interpolation", "\"bilinear\"", "\"nearest\", \"bilinear\" or \"bicubic\"" },
      { "antialias", "true", "widen the filter when shrinking (bilinear and bicubic)" },
      { "max_size", "nil", "with size n: the longest the longer edge may be" },
    },
    example = [[
local img = mg.zeros(3, 375, 500):to("uint8")
print(table.concat(transforms.Resize(256)(img):shape(), "x"))          --> 3x256x341
print(table.concat(transforms.Resize{size = {64, 32}}(img):shape(), "x"))  --> 3x64x32]],
    group = "Image transforms",
    see = { "transforms.F.resize", "transforms.CenterCrop", "transforms.RandomResizedCrop" },
  },

  ["transforms.CenterCrop"] = {
    sig = { "transforms.CenterCrop(size)", "transforms.CenterCrop{size = size}" },
    doc = [[Cuts the central window of size n or {h, w} out of each image; where the size is larger than the image, zeros are padded around it first, as torchvision's CenterCrop does. A window inside the image is a view of it.]],
    example = [[
local img = mg.zeros(3, 375, 500):to("uint8")
print(table.concat(transforms.CenterCrop(224)(img):shape(), "x"))         --> 3x224x224
print(table.concat(transforms.CenterCrop({400, 100})(img):shape(), "x"))  --> 3x400x100]],
    group = "Image transforms",
    see = { "transforms.F.center_crop", "transforms.Resize" },
  },

  ["transforms.RandomResizedCrop"] = {
    sig = { "transforms.RandomResizedCrop(size [, opts])", "transforms.RandomResizedCrop{size = size, ...}" },
    doc = [[A random window of each image, resized to size (n or {h, w}): its area a fraction from scale of the image's and its aspect ratio log-uniform in ratio; after 10 tries that do not fit, the central crop of the largest window with a ratio in range. As torchvision's RandomResizedCrop, with the same draws; t:get_params(img) returns the draw for one image as top, left, height, width (1-based). On a batch each image gets its own window.]],
    opts = {
      { "scale", "{0.08, 1}", "the range of the window's area, as a fraction of the image's" },
      { "ratio", "{3/4, 4/3}", "the range of the window's aspect ratio (width / height)" },
      { "interpolation", "\"bilinear\"", "\"nearest\", \"bilinear\" or \"bicubic\"" },
      { "antialias", "true", "widen the filter when shrinking" },
    },
    example = [[
local rrc = transforms.RandomResizedCrop(224)
local img = mg.randint(0, 255, {3, 375, 500}):to("uint8")
print(table.concat(rrc(img):shape(), "x"))   --> 3x224x224
local top, left, h, w = rrc:get_params(img)]],
    group = "Image transforms",
    see = { "transforms.F.resized_crop", "transforms.RandomCrop" },
  },

  ["transforms.ColorJitter"] = {
    sig = { "transforms.ColorJitter{[brightness =] [, contrast =] [, saturation =] [, hue =]}",
            "transforms.ColorJitter(brightness [, contrast [, saturation [, hue]]])" },
    doc = [[Random changes of brightness, contrast, saturation and hue, applied in a random order, drawn per image. Each option is a number v (a factor drawn from [max(0, 1 - v), 1 + v]; for hue from [-v, v], v <= 0.5) or a range {lo, hi}; 0 leaves that property alone. Images of 1 or 3 channels, any of the three dtypes. As torchvision's ColorJitter; t:get_params() returns the order (a permutation of 1..4: brightness, contrast, saturation, hue) and the four factors (nil where disabled).]],
    opts = {
      { "brightness", "0", "v or {lo, hi}, lo >= 0" },
      { "contrast", "0", "v or {lo, hi}, lo >= 0" },
      { "saturation", "0", "v or {lo, hi}, lo >= 0" },
      { "hue", "0", "v <= 0.5 or {lo, hi} within [-0.5, 0.5]" },
    },
    example = [[
local jitter = transforms.ColorJitter{brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.1}
local img = mg.randint(0, 255, {3, 8, 8}):to("uint8")
local out = jitter(img)
print(table.concat(out:shape(), "x"), out:dtype())   --> 3x8x8  uint8]],
    group = "Image transforms",
    see = { "transforms.F.adjust_brightness", "transforms.F.adjust_hue" },
  },

  ["transforms.Grayscale"] = {
    sig = { "transforms.Grayscale([{num_output_channels = 1}])", "transforms.Grayscale(n)" },
    doc = [[Converts RGB (or gray) images to gray with torchvision's weights (0.2989 R + 0.587 G + 0.114 B), giving 1 channel or 3 equal ones. As torchvision's Grayscale; images must have 1 or 3 channels.]],
    opts = { { "num_output_channels", "1", "1 or 3" } },
    example = [[
local img = mg.randint(0, 255, {3, 4, 4}):to("uint8")
print(transforms.Grayscale()(img):shape()[1], transforms.Grayscale(3)(img):shape()[1])   --> 1  3]],
    group = "Image transforms",
    see = { "transforms.RandomGrayscale", "transforms.F.rgb_to_grayscale" },
  },

  ["transforms.RandomGrayscale"] = {
    sig = "transforms.RandomGrayscale([{p = 0.1}])",
    doc = [[With probability p per image, the image in gray with as many channels as it had (1 or 3). As torchvision's RandomGrayscale(p).]],
    opts = { { "p", "0.1", "the probability, in [0, 1]" } },
    example = [[
local img = mg.randint(0, 255, {3, 4, 4}):to("uint8")
local g = transforms.RandomGrayscale{p = 1}(img):long()
print(g[1]:eq(g[2]):min():item(), g:shape()[1])   --> 1  3]],
    group = "Image transforms",
    see = { "transforms.Grayscale" },
  },

  ["transforms.RandomRotation"] = {
    sig = { "transforms.RandomRotation(degrees [, opts])", "transforms.RandomRotation{degrees = degrees, ...}" },
    doc = [[Rotates each image counter-clockwise by an angle drawn from [-d, d] (degrees = d) or {lo, hi}. expand makes the output large enough for the whole rotated image; otherwise it keeps the input's size and corners come from fill. As torchvision's RandomRotation; t:get_params() draws an angle. On a batch with expand, the images may come out in different sizes, which raises.]],
    opts = {
      { "interpolation", "\"nearest\"", "\"nearest\" or \"bilinear\"" },
      { "expand", "false", "grow the output to hold the whole rotated image" },
      { "center", "nil", "{x, y} in pixels from the top-left corner; nil: the middle" },
      { "fill", "0", "the value outside the image: a number or one per channel" },
    },
    example = [[
local rot = transforms.RandomRotation(30, {expand = true})
local out = rot(mg.zeros(3, 10, 20):to("uint8"))
print(out:shape()[2] >= 10, out:shape()[3] >= 20)   --> true  true]],
    group = "Image transforms",
    see = { "transforms.F.rotate", "transforms.RandomAffine" },
  },

  ["transforms.Pad"] = {
    sig = { "transforms.Pad(padding [, opts])", "transforms.Pad{padding = padding, ...}" },
    doc = [[Pads each image: padding is n (all sides), {left/right, top/bottom} or {left, top, right, bottom}, in pixels. As torchvision's Pad, except that fill is a single number.]],
    opts = {
      { "fill", "0", "the value of constant padding" },
      { "padding_mode", "\"constant\"", "\"constant\", \"edge\", \"reflect\" or \"symmetric\"" },
    },
    example = [[
local img = mg.zeros(3, 10, 20)
print(table.concat(transforms.Pad(2)(img):shape(), "x"))                                   --> 3x14x24
print(table.concat(transforms.Pad({1, 2, 3, 4}, {padding_mode = "reflect"})(img):shape(), "x"))  --> 3x16x24]],
    group = "Image transforms",
    see = { "transforms.F.pad", "transforms.RandomCrop" },
  },

  ["transforms.flip_horizontal"] = {
    sig = "transforms.flip_horizontal(x, mask)",
    doc = [[The primitive under RandomHorizontalFlip: a new batch in which sample n of x [N, C, H, W] is flipped left-right where mask[n] is nonzero and copied otherwise. mask is [N], any dtype; x may be uint8, float32 or float64 and must not require grad.]],
    example = [[
local x = mg.arange(1, 5):view(2, 1, 1, 2):to("float32")
local out = transforms.flip_horizontal(x, mg.tensor({1, 0}))
print(table.concat(out:view(4):totable(), " "))   --> 2.0 1.0 3.0 4.0]],
    group = "Primitives",
    see = { "transforms.flip_vertical", "transforms.RandomHorizontalFlip" },
  },

  ["transforms.flip_vertical"] = {
    sig = "transforms.flip_vertical(x, mask)",
    doc = [[The primitive under RandomVerticalFlip: sample n of x [N, C, H, W] flipped top-bottom where mask[n] ([N]) is nonzero, copied otherwise; returns a new batch.]],
    example = [[
local x = mg.arange(1, 5):view(1, 1, 2, 2):to("float32")
print(table.concat(transforms.flip_vertical(x, mg.ones(1)):view(4):totable(), " "))   --> 3.0 4.0 1.0 2.0]],
    group = "Primitives",
    see = { "transforms.flip_horizontal", "transforms.RandomVerticalFlip" },
  },

  ["transforms.crop_with_padding"] = {
    sig = "transforms.crop_with_padding(x, top, left, size [, padding [, fill]])",
    doc = [[The primitive under RandomCrop: out[n] is the size (n or {h, w}) window of x[n], padded by padding (n or {ph, pw}: rows above and below, columns left and right, default 0) of value fill (default 0), whose first row and column are top[n] and left[n], 1-based in the padded image. top and left are [N] tensors; the padded batch is never built. For uint8, fill must be an integer 0..255.]],
    example = [[
local x = mg.arange(1, 5):view(1, 1, 2, 2):to("float32")
local out = transforms.crop_with_padding(x, mg.tensor({1}), mg.tensor({1}), 2, 1, 0)
print(table.concat(out:view(4):totable(), " "))   --> 0.0 0.0 0.0 1.0]],
    group = "Primitives",
    see = { "transforms.RandomCrop" },
  },

  ["transforms.affine"] = {
    sig = "transforms.affine(x, theta [, fill])",
    doc = [[The batch primitive under RandomAffine: resamples each x[n] (float32 or float64 [N, C, H, W]) bilinearly through the inverse map theta[n] ([N, 2, 3]): output pixel (u, v), measured from the image centre, reads the input at (t11 u + t12 v + t13, t21 u + t22 v + t23) from the centre; neighbours outside count as fill (default 0). The identity matrix returns x exactly. Not transforms.F.affine, which takes an angle, translation, scale and shear.]],
    example = [[
local x = mg.arange(1, 5):view(1, 1, 2, 2):to("float32")
local quarter = mg.tensor({{{0, -1, 0}, {1, 0, 0}}})   -- a quarter turn
print(table.concat(transforms.affine(x, quarter):view(4):totable(), " "))   --> 2.0 4.0 1.0 3.0]],
    group = "Primitives",
    see = { "transforms.RandomAffine", "transforms.F.affine" },
  },

  ["transforms.erase"] = {
    sig = "transforms.erase(x, boxes [, value])",
    doc = [[The primitive under RandomErasing: a copy of the float batch x [N, C, H, W] with box n = boxes[n] = {top, left, height, width} (1-based, [N, 4]) of every channel of sample n set to value (default 0). A box of zero height or width erases nothing; a box must lie inside the image.]],
    example = [[
local x = mg.ones(1, 1, 2, 2)
print(table.concat(transforms.erase(x, mg.tensor({{1, 1, 1, 2}}), -1):view(4):totable(), " "))
--> -1.0 -1.0 1.0 1.0]],
    group = "Primitives",
    see = { "transforms.RandomErasing", "transforms.paste" },
  },

  ["transforms.paste"] = {
    sig = "transforms.paste(x, src, perm, boxes)",
    doc = [[The primitive under CutMix: a copy of the float batch x in which box n (boxes [N, 4] = top, left, height, width, 1-based) of sample n is replaced by the same box of sample perm[n] of src (of sample n when perm is nil). src is [M, C, H, W] with x's C, H and W; perm is [N] with entries in 1..M.]],
    example = [[
local x = mg.zeros(2, 1, 2, 2)
local out = transforms.paste(x, mg.ones(2, 1, 2, 2), mg.tensor({2, 1}), mg.tensor({{1, 1, 1, 1}, {2, 2, 1, 1}}))
print(out:sum():item())   --> 2.0]],
    group = "Primitives",
    see = { "transforms.CutMix", "transforms.erase" },
  },

  ["transforms.sample_beta"] = {
    sig = "transforms.sample_beta(a, b)",
    doc = [[One draw from Beta(a, b), as a Lua number, made from the state's RNG (so mg.manual_seed repeats it); MixUp and CutMix draw their lam with it. a and b must be finite numbers > 0.]],
    example = [[
local lam = transforms.sample_beta(0.2, 0.2)
print(lam >= 0 and lam <= 1)   --> true]],
    group = "Primitives",
    see = { "transforms.MixUp", "transforms.CutMix" },
  },

  ---------------------------------------------------------------------------
  -- transforms.F

  ["transforms.F"] = {
    sig = { "local TF = transforms.F", 'local TF = require "moongrad.transforms.functional"' },
    doc = [[The image functions under the image transforms, with given parameters, as torchvision 0.14's transforms.functional computes them on tensors. img is an image [C, H, W] or a batch [N, C, H, W] (every image of a batch gets the same parameters) of uint8, float32 or float64, and results keep its dtype (uint8 rounded as torchvision rounds) unless the function converts. Positions are 1-based (crop(img, 1, 1, h, w) is the top-left window), optional arguments go in a trailing table, and errors name the function at the caller's line. Also reachable as transforms.functional.]],
    groups = { "Sizes and crops", "Flips", "Color", "Rotation and affine", "Dtypes and normalization" },
    example = [[
local TF = transforms.F
local img = mg.randint(0, 255, {3, 375, 500}):to("uint8")
local y = TF.center_crop(TF.resize(img, 256), 224)
y = TF.normalize(TF.convert_image_dtype(y, "float32"), {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225})
print(table.concat(y:shape(), "x"), y:dtype())   --> 3x224x224  float32]],
    group = "Functional",
    see = { "transforms", "transforms.Resize" },
  },

  ["transforms.functional"] = { alias = "transforms.F", group = "Functional" },

  ["transforms.F.get_dimensions"] = {
    sig = "transforms.F.get_dimensions(img)",
    doc = [[The channels, height and width of an image or batch, as three numbers (torchvision returns a list [C, H, W]). Raises for a tensor that is not an image.]],
    example = [[
print(transforms.F.get_dimensions(mg.zeros(2, 3, 5, 7)))   --> 3  5  7]],
    group = "Sizes and crops",
    see = { "transforms.F" },
  },

  ["transforms.F.resize"] = {
    sig = "transforms.F.resize(img, size [, opts])",
    doc = [[img resized: size n makes the smaller edge n, keeping the aspect ratio (the longer edge truncated, and capped by max_size), size {h, w} gives exactly that. The same size returns img itself. As torchvision's F.resize, except that antialias defaults to true (as PIL resizes).]],
    opts = {
      { "interpolation", "\"bilinear\"", "\"nearest\", \"bilinear\" or \"bicubic\"" },
      { "antialias", "true", "widen the filter when shrinking (bilinear and bicubic)" },
      { "max_size", "nil", "with size n: the longest the longer edge may be; must exceed n" },
    },
    example = [[
local img = mg.zeros(3, 6, 8):to("uint8")
print(table.concat(transforms.F.resize(img, 3):shape(), "x"))                                   --> 3x3x4
print(table.concat(transforms.F.resize(img, {4, 4}, {interpolation = "nearest"}):shape(), "x"))  --> 3x4x4]],
    group = "Sizes and crops",
    see = { "transforms.Resize", "transforms.F.resized_crop" },
  },

  ["transforms.F.crop"] = {
    sig = "transforms.F.crop(img, top, left, height, width)",
    doc = [[The height x width window of img whose top-left pixel is (top, left), 1-based (torchvision's are 0-based). A window inside the image is a view; one reaching past the border is a copy with zeros there, as torchvision pads.]],
    example = [[
local img = mg.arange(1, 13):view(1, 3, 4):float()
local w = transforms.F.crop(img, 2, 3, 2, 2)
print(table.concat(w:reshape(4):totable(), " "))   --> 7.0 8.0 11.0 12.0]],
    group = "Sizes and crops",
    see = { "transforms.F.center_crop", "transforms.F.resized_crop" },
  },

  ["transforms.F.center_crop"] = {
    sig = "transforms.F.center_crop(img, size)",
    doc = [[The central window of size n or {h, w}; where it is larger than the image, zeros pad around it, as torchvision's F.center_crop does.]],
    example = [[
local img = mg.zeros(3, 6, 8)
print(table.concat(transforms.F.center_crop(img, 4):shape(), "x"))         --> 3x4x4
print(table.concat(transforms.F.center_crop(img, {10, 10}):shape(), "x"))  --> 3x10x10]],
    group = "Sizes and crops",
    see = { "transforms.CenterCrop", "transforms.F.crop" },
  },

  ["transforms.F.resized_crop"] = {
    sig = "transforms.F.resized_crop(img, top, left, height, width, size [, opts])",
    doc = [[crop(img, top, left, height, width) (1-based) then resize to size, as torchvision's F.resized_crop; the options are resize's.]],
    opts = {
      { "interpolation", "\"bilinear\"", "\"nearest\", \"bilinear\" or \"bicubic\"" },
      { "antialias", "true", "widen the filter when shrinking" },
      { "max_size", "nil", "with size n: the longest the longer edge may be" },
    },
    example = [[
local img = mg.zeros(3, 6, 8):to("uint8")
print(table.concat(transforms.F.resized_crop(img, 2, 2, 4, 4, 8):shape(), "x"))   --> 3x8x8]],
    group = "Sizes and crops",
    see = { "transforms.RandomResizedCrop", "transforms.F.resize" },
  },

  ["transforms.F.pad"] = {
    sig = "transforms.F.pad(img, padding [, opts])",
    doc = [[img padded by padding: n on every side, {left/right, top/bottom}, or {left, top, right, bottom}, in pixels. As torchvision's F.pad, with a single number as fill.]],
    opts = {
      { "fill", "0", "the value of constant padding" },
      { "padding_mode", "\"constant\"", "\"constant\", \"edge\", \"reflect\" or \"symmetric\"" },
    },
    example = [[
local img = mg.zeros(3, 6, 8)
print(table.concat(transforms.F.pad(img, {1, 2}, {padding_mode = "edge"}):shape(), "x"))  --> 3x10x10]],
    group = "Sizes and crops",
    see = { "transforms.Pad" },
  },

  ["transforms.F.hflip"] = {
    sig = "transforms.F.hflip(img)",
    doc = [[img flipped left-right (a new tensor), as torchvision's F.hflip.]],
    example = [[
local img = mg.arange(1, 4):view(1, 1, 3)
print(table.concat(transforms.F.hflip(img:float()):view(3):totable(), " "))   --> 3.0 2.0 1.0]],
    group = "Flips",
    see = { "transforms.F.vflip", "transforms.RandomHorizontalFlip" },
  },

  ["transforms.F.vflip"] = {
    sig = "transforms.F.vflip(img)",
    doc = [[img flipped top-bottom (a new tensor), as torchvision's F.vflip.]],
    example = [[
local img = mg.arange(1, 4):view(1, 3, 1)
print(table.concat(transforms.F.vflip(img:float()):view(3):totable(), " "))   --> 3.0 2.0 1.0]],
    group = "Flips",
    see = { "transforms.F.hflip", "transforms.RandomVerticalFlip" },
  },

  ["transforms.F.adjust_brightness"] = {
    sig = "transforms.F.adjust_brightness(img, factor)",
    doc = [[img with its brightness scaled by factor >= 0 (0 black, 1 unchanged), clamped to the dtype's range, as torchvision's F.adjust_brightness. Images of 1 or 3 channels.]],
    example = [[
local img = mg.full({3, 1, 1}, 100):to("uint8")
print(transforms.F.adjust_brightness(img, 1.5)[1][1][1])   --> 150]],
    group = "Color",
    see = { "transforms.ColorJitter" },
  },

  ["transforms.F.adjust_contrast"] = {
    sig = "transforms.F.adjust_contrast(img, factor)",
    doc = [[img blended with the mean of its grayscale by factor >= 0 (0 a flat gray, 1 unchanged), as torchvision's F.adjust_contrast. Images of 1 or 3 channels.]],
    example = [[
local img = mg.tensor({{{0.2, 0.8}}})
print(transforms.F.adjust_contrast(img, 0):max():item() - 0.5 < 1e-6)   --> true]],
    group = "Color",
    see = { "transforms.ColorJitter" },
  },

  ["transforms.F.adjust_saturation"] = {
    sig = "transforms.F.adjust_saturation(img, factor)",
    doc = [[img blended with its grayscale by factor >= 0 (0 gray, 1 unchanged, 2 twice as saturated), as torchvision's F.adjust_saturation. Images of 1 or 3 channels (a 1-channel image is returned unchanged).]],
    example = [[
local img = mg.randint(0, 255, {3, 4, 4}):to("uint8")
local g = transforms.F.adjust_saturation(img, 0):long()
print(g[1]:eq(g[3]):min():item())   --> 1]],
    group = "Color",
    see = { "transforms.ColorJitter" },
  },

  ["transforms.F.adjust_hue"] = {
    sig = "transforms.F.adjust_hue(img, factor)",
    doc = [[img with its hue turned by factor, a fraction of the hue wheel in [-0.5, 0.5] (0 unchanged), through HSV as torchvision's F.adjust_hue. Images of 1 or 3 channels (a 1-channel image is returned unchanged); a factor outside the range raises.]],
    example = [[
local red = mg.tensor({{{1}}, {{0}}, {{0}}})
local green = transforms.F.adjust_hue(red, 1 / 3)
print(green[2][1][1])   --> 1.0]],
    group = "Color",
    see = { "transforms.ColorJitter" },
  },

  ["transforms.F.rgb_to_grayscale"] = {
    sig = "transforms.F.rgb_to_grayscale(img [, num_output_channels])",
    doc = [[img in gray, 0.2989 R + 0.587 G + 0.114 B, as 1 channel (the default) or 3 equal ones, as torchvision's F.rgb_to_grayscale. Images of 1 or 3 channels.]],
    example = [[
local img = mg.zeros(3, 2, 2)
print(transforms.F.rgb_to_grayscale(img):shape()[1], transforms.F.rgb_to_grayscale(img, 3):shape()[1])  --> 1  3]],
    group = "Color",
    see = { "transforms.Grayscale" },
  },

  ["transforms.F.rotate"] = {
    sig = "transforms.F.rotate(img, angle [, opts])",
    doc = [[img rotated counter-clockwise by angle degrees about center, as torchvision's F.rotate. Without expand the output keeps img's size and what comes from outside is fill (zeros by default); with expand it is large enough for the whole rotated image.]],
    opts = {
      { "interpolation", "\"nearest\"", "\"nearest\" or \"bilinear\"" },
      { "expand", "false", "grow the output to hold the whole rotated image" },
      { "center", "nil", "{x, y} from the image's top-left corner (the first pixel spans 0..1); nil: the middle" },
      { "fill", "nil", "the value outside the image: a number or one per channel; nil: zeros" },
    },
    example = [[
local img = mg.tensor({{{1, 2}, {3, 4}}})
print(table.concat(transforms.F.rotate(img, 90):view(4):totable(), " "))   --> 2.0 4.0 1.0 3.0
print(table.concat(transforms.F.rotate(mg.zeros(3, 6, 8), 90, {expand = true}):shape(), "x"))  --> 3x8x6]],
    group = "Rotation and affine",
    see = { "transforms.RandomRotation", "transforms.F.affine" },
  },

  ["transforms.F.affine"] = {
    sig = "transforms.F.affine(img, angle, translate, scale, shear [, opts])",
    doc = [[img through torchvision's F.affine: a rotation by angle degrees (clockwise, as torchvision's affine, the opposite of rotate), a translation translate = {tx, ty} in pixels, a scale > 0 and a shear in degrees (a number for x, or {sx, sy}), about center. The output keeps img's size; what comes from outside is fill.]],
    opts = {
      { "interpolation", "\"nearest\"", "\"nearest\" or \"bilinear\"" },
      { "fill", "nil", "the value outside the image: a number or one per channel; nil: zeros" },
      { "center", "nil", "{x, y} from the image's top-left corner; nil: the middle" },
    },
    example = [[
local img = mg.randint(0, 255, {3, 6, 8}):to("uint8")
local out = transforms.F.affine(img, 10, {1, 2}, 1.2, 5)
print(table.concat(out:shape(), "x"), out:dtype())   --> 3x6x8  uint8]],
    group = "Rotation and affine",
    see = { "transforms.RandomAffine", "transforms.F.rotate", "transforms.affine" },
  },

  ["transforms.F.normalize"] = {
    sig = "transforms.F.normalize(img, mean, std)",
    doc = [[(img - mean[c]) / std[c] per channel, for float images; mean and std are numbers or lists of one value per channel (or one for all). As torchvision's F.normalize, without inplace; raises for uint8 images, a zero std, or lists whose length does not fit the channels.]],
    example = [[
print(transforms.F.normalize(mg.ones(3, 1, 1), 0.5, 0.25):sum():item())   --> 6.0]],
    group = "Dtypes and normalization",
    see = { "transforms.Normalize" },
  },

  ["transforms.F.convert_image_dtype"] = {
    sig = "transforms.F.convert_image_dtype(img [, dtype])",
    doc = [[img converted to dtype ("float32" by default, "float64" or "uint8") with scaling, as torchvision's F.convert_image_dtype: uint8 to float divides by 255, float to uint8 multiplies by 255.999 and truncates. img itself when it has that dtype.]],
    example = [[
local x = transforms.F.convert_image_dtype(mg.full({1, 1, 1}, 255):to("uint8"))
print(x:dtype(), x[1][1][1])   --> float32  1.0]],
    group = "Dtypes and normalization",
    see = { "transforms.ConvertImageDtype", "transforms.F.to_dtype" },
  },

  ["transforms.F.to_dtype"] = {
    sig = "transforms.F.to_dtype(img, dtype [, {scale = false}])",
    doc = [[img converted to dtype ("uint8", "float32" or "float64"): a plain conversion, or with scale = true the scaling of convert_image_dtype, as torchvision v2's F.to_dtype. dtype is required here (torchvision defaults to float32). img itself when it has that dtype.]],
    opts = { { "scale", "false", "scale between the uint8 and float ranges as convert_image_dtype does" } },
    example = [[
local img = mg.full({1, 1, 1}, 255):to("uint8")
print(transforms.F.to_dtype(img, "float32")[1][1][1], transforms.F.to_dtype(img, "float32", {scale = true})[1][1][1])
--> 255.0  1.0]],
    group = "Dtypes and normalization",
    see = { "transforms.F.convert_image_dtype" },
  },

  ["transforms.F.to_tensor"] = {
    sig = "transforms.F.to_tensor(img)",
    doc = [[What transforms.ToTensor does: a uint8 image to float32 in [0, 1]; float images are returned as they are. torchvision's to_tensor takes PIL images and HWC arrays; here the input is already a CHW tensor.]],
    example = [[
local x = transforms.F.to_tensor(mg.full({3, 2, 2}, 51):to("uint8"))
print(x:dtype(), x:max():item() - 0.2 < 1e-6)   --> float32  true]],
    group = "Dtypes and normalization",
    see = { "transforms.ToTensor" },
  },

  ---------------------------------------------------------------------------
  -- mg.image

  ["mg.image"] = {
    sig = "mg.image",
    doc = [[PNG and JPEG files to and from uint8 tensors [C, H, W], through libpng and libjpeg-turbo: load, decode, info, save (always PNG), encode. Decoded pixels equal Pillow 9.4's (modes convert with its formulas), except that a 16-bit gray PNG gives its high bytes. As Pillow's decompression-bomb guard, an image of more than mg.image.max_pixels pixels (178956970 by default) is refused from its header; mg.image.set_max_pixels changes the limit. The format is told from the bytes, never from the name; errors name the file and what is wrong with it.]],
    groups = { "Reading", "Writing", "Limits" },
    group = "Files",
    example = [[
local path = os.tmpname()
mg.image.save(path, mg.rand(3, 4, 6))          -- floats in [0, 1] are stored as bytes
local img = mg.image.load(path)
print(img:dtype(), table.concat(img:shape(), "x"), mg.image.info(path).format)   --> uint8  3x4x6  PNG
os.remove(path)]],
    see = { "data.ImageFolder", "transforms.ToTensor" },
  },

  ["mg.image.load"] = {
    sig = "mg.image.load(path [, {mode = \"L\" | \"RGB\" | \"RGBA\"}])",
    doc = [[Decodes the PNG or JPEG file at path into a new uint8 tensor [C, H, W]. Without mode the file's channels are kept (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA; a palette gives RGB, or RGBA with transparency); a mode converts as Pillow's Image.convert does. Raises, naming the file, for a file that is missing, empty, not PNG or JPEG (GIF, BMP, WebP and TIFF are named as such), truncated or corrupt, a CMYK JPEG, or more than mg.image.max_pixels pixels. torchvision.io.read_image is the nearest PyTorch equivalent.]],
    opts = { { "mode", "nil", "\"L\" (1 channel), \"RGB\" or \"RGBA\"; nil keeps the file's channels" } },
    example = [[
local path = os.tmpname()
mg.image.save(path, mg.zeros(3, 2, 5):to("uint8"))
print(table.concat(mg.image.load(path):shape(), "x"), table.concat(mg.image.load(path, {mode = "L"}):shape(), "x"))
--> 3x2x5  1x2x5
os.remove(path)]],
    group = "Reading",
    see = { "mg.image.decode", "mg.image.info", "mg.image.save" },
  },

  ["mg.image.decode"] = {
    sig = "mg.image.decode(bytes [, {mode =, name =}])",
    doc = [[What mg.image.load does, from a Lua string holding a PNG or JPEG file's bytes. name stands for the file in error messages (default "<bytes>").]],
    opts = {
      { "mode", "nil", "\"L\", \"RGB\" or \"RGBA\"; nil keeps the file's channels" },
      { "name", "\"<bytes>\"", "what error messages call the data" },
    },
    example = [[
local bytes = mg.image.encode(mg.zeros(3, 2, 2):to("uint8"))
local img = mg.image.decode(bytes, {mode = "RGBA"})
print(table.concat(img:shape(), "x"))   --> 4x2x2]],
    group = "Reading",
    see = { "mg.image.load", "mg.image.encode" },
  },

  ["mg.image.info"] = {
    sig = "mg.image.info(path)",
    doc = [[Reads only the header of the PNG or JPEG file at path and returns {width =, height =, channels =, format = "PNG" | "JPEG"}, channels being what load without a mode would give. The pixel limit is not applied (info is how to learn the size). Raises as load does for what a header shows.]],
    example = [[
local path = os.tmpname()
mg.image.save(path, mg.zeros(1, 3, 7))
local info = mg.image.info(path)
print(info.width, info.height, info.channels, info.format)   --> 7  3  1  PNG
os.remove(path)]],
    group = "Reading",
    see = { "mg.image.load" },
  },

  ["mg.image.save"] = {
    sig = "mg.image.save(path, img)",
    doc = [[Writes img [C, H, W] as a PNG file at path, whatever the path's extension (a path ending in .jpg still gets PNG bytes). C is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); img is uint8, or float32/float64 with values in [0, 1], stored as torchvision.utils.save_image stores them (x * 255 + 0.5, clamped to 0..255 and truncated). The file is replaced atomically: on an error the old one stays. Raises for another dtype or shape.]],
    example = [[
local path = os.tmpname()
mg.image.save(path, mg.full({1, 1, 1}, 0.5))
print(mg.image.load(path)[1][1][1])   --> 128
os.remove(path)]],
    group = "Writing",
    see = { "mg.image.encode", "mg.image.load" },
  },

  ["mg.image.encode"] = {
    sig = "mg.image.encode(img)",
    doc = [[The PNG file mg.image.save would write for img, as a Lua string; the same dtypes and shapes are accepted.]],
    example = [[
local png = mg.image.encode(mg.zeros(3, 2, 2):to("uint8"))
print(png:sub(2, 4))   --> PNG]],
    group = "Writing",
    see = { "mg.image.save", "mg.image.decode" },
  },

  ["mg.image.set_max_pixels"] = {
    sig = "mg.image.set_max_pixels(n)",
    doc = [[Sets the most pixels (width * height) an image may have for load and decode to decode it, for this Lua state, and returns the previous limit; 0 turns the check off. The default is 178956970, Pillow's error threshold. mg.image.max_pixels reads the limit (assigning to it raises). n must be an integer >= 0.]],
    example = [[
local old = mg.image.set_max_pixels(1000)
print(old, mg.image.max_pixels)   --> 178956970  1000
mg.image.set_max_pixels(old)]],
    group = "Limits",
    see = { "mg.image.load", "mg.image.info" },
  },
}
