-- Trains a small residual CNN on a folder of images, one subfolder per
-- class (the layout data.ImageFolder and torchvision read). DIR is either
-- that folder itself, or holds train/ and (optionally) test/ folders of
-- that layout, as scripts/export_images.lua writes them. A tenth of the
-- training images (--val-fraction) is held out for validation.
--
--   build/moongrad scripts/train_images.lua DIR [--epochs 10] [--size 0]
--       [--batch-size 64] [--lr 3e-3] [--workers 2] [--mode auto]
--       [--val-fraction 0.1] [--seed 1] [--out runs/train_images]
--       [--resume runs/train_images/last.safetensors]
--
-- Images are decoded and augmented in --workers background processes
-- (RandomResizedCrop, horizontal flips and a light ColorJitter for color
-- images), batches come out identical whatever the worker count, and a
-- run stopped with Ctrl-C resumes exactly. Writes into --out: best.safetensors
-- (the best validation accuracy), last.safetensors (resumable), history.csv,
-- curves.svg and confusion.svg (test images, or validation ones without a
-- test/ folder), and prints each class's accuracy.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local data = require "moongrad.data"
local T = require "moongrad.transforms"
local train = require "moongrad.train"
local plot = require "moongrad.plot"
local checkpoint = require "moongrad.checkpoint"
local cli = require "moongrad.cli"

-- a share strictly between 0 and 1 (1 would leave nothing to train on)
local function fraction(s)
  local v = cli.number(0, 1)(s)
  if not v or v == 1 then return nil, "expected a number > 0 and < 1, got " .. s end
  return v
end

local parser = cli.parser("train_images.lua",
  "Train a small residual CNN on a folder of images and print each class's accuracy; writes "
  .. "best.safetensors, last.safetensors, history.csv, curves.svg and confusion.svg into --out.",
  "build/moongrad scripts/train_images.lua runs/fmnist_png --epochs 2 --size 32")
parser:argument("dir", "A folder of class folders, or one holding train/ (and test/) of them.")
parser:option("--epochs", "Epochs to train.", "10"):convert(cli.integer(1))
parser:option("--batch-size", "Images per batch.", "64"):convert(cli.integer(1))
parser:option("--lr", "Peak learning rate of the one-cycle schedule (AdamW).", "3e-3")
  :convert(cli.number(0))
parser:option("--size", "Side the images are cropped and resized to (0: the first image's "
              .. "shorter side, at most 64).", "0"):convert(cli.integer(0))
parser:option("--workers", "Background processes decoding and augmenting images (0: none).", "2")
  :convert(cli.integer(0))
parser:option("--mode", "Channels: L (gray), RGB, or auto (the first image's).", "auto")
  :choices{"auto", "L", "RGB"}
parser:option("--val-fraction", "Share of the training images held out for validation.", "0.1")
  :convert(fraction)
parser:option("--seed", "Random seed.", "1"):convert(cli.integer(0))
parser:option("--out", "Folder for checkpoints, history and charts.", "runs/train_images")
parser:option("--resume", "Checkpoint to resume from, such as --out's last.safetensors (optional).")
  :argname("<checkpoint>")
local args = parser:parse(arg)

local function is_dir(path) return mg._listdir(path) ~= nil end

-- ---- the folders ---------------------------------------------------------------
local train_dir, test_dir = args.dir, nil
if is_dir(args.dir .. "/train") then
  train_dir = args.dir .. "/train"
  if is_dir(args.dir .. "/test") then test_dir = args.dir .. "/test" end
end
mg.manual_seed(args.seed)
local listing = data.ImageFolder(train_dir)   -- only to look at the first image
if listing:len() == 0 then
  io.stderr:write(("train_images.lua: no images under %s\n"):format(train_dir))
  os.exit(1)
end
local first = mg.image.info(listing.samples[1][1])
local mode = args.mode ~= "auto" and args.mode or (first.channels <= 2 and "L" or "RGB")
local channels = mode == "L" and 1 or 3
local size = args.size > 0 and args.size or math.min(64, first.width, first.height)
local classes = listing.classes
print(("%s: %d images of %d classes, %s, trained at %dx%d"):format(train_dir, listing:len(),
      #classes, mode, size, size))

-- ---- transforms: statistics first, then augmentation ----------------------------
local function loader(path) return mg.image.load(path, {mode = mode}) end
local plain = T.Compose{T.Resize(size), T.CenterCrop(size), T.ToTensor()}
-- per-channel mean and std over (up to) 512 training images
local stats_ds = data.ImageFolder(train_dir, {loader = loader, transform = plain})
local sample = {}
local step = math.max(1, stats_ds:len() // 512)
for i = 1, stats_ds:len(), step do sample[#sample + 1] = (stats_ds:get(i)) end
local pixels = mg.stack(sample):transpose(1, 2):reshape(channels, -1)
local mean, std = {}, {}
for c = 1, channels do
  mean[c] = pixels[c]:mean():item()
  std[c] = math.max(pixels[c]:std():item(), 1e-3)
end
local normalize = T.Normalize{mean = mean, std = std}

local augment = {T.RandomResizedCrop(size, {scale = {0.6, 1}}), T.RandomHorizontalFlip()}
if channels == 3 then augment[#augment + 1] = T.ColorJitter{brightness = 0.2, contrast = 0.2, saturation = 0.2} end
augment[#augment + 1] = T.ToTensor()
augment[#augment + 1] = normalize
local train_tf = T.Compose(augment)
local eval_tf = T.Compose{T.Resize(size), T.CenterCrop(size), T.ToTensor(), normalize}

local full_train = data.ImageFolder(train_dir, {loader = loader, transform = train_tf})
local full_eval = data.ImageFolder(train_dir, {loader = loader, transform = eval_tf})
local n = full_train:len()
local n_val = math.max(1, math.floor(n * args.val_fraction + 0.5))
local order = mg.randperm(n)
local train_ids, val_ids = order:narrow(1, 1, n - n_val), order:narrow(1, n - n_val + 1, n_val)
local train_set = data.Subset(full_train, train_ids)
local val_set = data.Subset(full_eval, val_ids)
local test_set = test_dir and data.ImageFolder(test_dir, {loader = loader, transform = eval_tf}) or nil

local function loader_of(ds, shuffle)
  return data.DataLoader(ds, {batch_size = args.batch_size, shuffle = shuffle,
                              num_workers = args.workers, persistent_workers = args.workers > 0})
end
local train_loader = loader_of(train_set, true)
local val_loader = loader_of(val_set, false)

-- ---- the model: a stem, three residual stages, global average pooling -----------
local Block = nn.Module:extend("ResidualBlock")
function Block:init(c_in, c_out, stride)
  self.conv1 = nn.Conv2d(c_in, c_out, 3, {stride = stride, padding = 1, bias = false})
  self.bn1 = nn.BatchNorm2d(c_out)
  self.conv2 = nn.Conv2d(c_out, c_out, 3, {padding = 1, bias = false})
  self.bn2 = nn.BatchNorm2d(c_out)
  if stride ~= 1 or c_in ~= c_out then   -- a 1x1 projection where the shape changes
    self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, {stride = stride, bias = false}),
                              nn.BatchNorm2d(c_out))
  end
end
function Block:forward(x)
  local y = self.bn2(self.conv2(self.bn1(self.conv1(x)):relu()))
  return (y + (self.skip and self.skip(x) or x)):relu()
end

local Net = nn.Module:extend("ResNetSmall")
function Net:init(c_in, k)
  self.stem = nn.Sequential(nn.Conv2d(c_in, 16, 3, {padding = 1, bias = false}),
                            nn.BatchNorm2d(16), nn.ReLU())
  self.stages = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
  self.head = nn.Linear(64, k)
end
function Net:forward(x)
  local y = self.stages(self.stem(x))
  return self.head(F.adaptive_avg_pool2d(y, 1):flatten(2))
end

local model = Net(channels, #classes)
local opt = optim.AdamW(model, {lr = args.lr, weight_decay = 5e-4})
local schedule = sched.OneCycleLR(opt, {max_lr = args.lr, total_steps = #train_loader * args.epochs})

-- ---- training ---------------------------------------------------------------------
local out = args.out
if not os.execute(("mkdir -p '%s'"):format(out:gsub("'", "'\\''"))) then
  io.stderr:write("train_images.lua: cannot make " .. out .. "\n")
  os.exit(1)
end
local history = train.fit(model, {
  train = train_loader,
  val = val_loader,
  loss = F.cross_entropy,
  optimizer = opt,
  scheduler = schedule,
  scheduler_step = "batch",
  epochs = args.epochs,
  metrics = {"accuracy"},
  callbacks = {
    train.ModelCheckpoint{path = out .. "/best.safetensors", monitor = "val_accuracy", mode = "max",
                          save_best = true, save_last = false},
    train.HistoryLogger{csv = out .. "/history.csv"},
  },
  checkpoint = {path = out .. "/last.safetensors", every_n_batches = 200},
  resume = args.resume,
})
plot.training_curves(history, out .. "/curves.svg", {title = "Residual CNN on " .. args.dir})

-- ---- per-class accuracy and the confusion matrix of the best model -----------------
checkpoint.load(out .. "/best.safetensors", {model = model})
model:eval()
local eval_set = test_set or val_set
local k = #classes
local counts = mg.zeros(k, k, "int64")
mg.no_grad(function()
  for xb, yb in loader_of(eval_set, false):iter() do
    local pred = model(xb):argmax(2)
    -- counts[true][pred] += 1 for every image of the batch
    local flat = (yb - 1) * k + pred
    counts:view(k * k):scatter_add_(1, flat, mg.ones(flat:numel(), "int64"))
  end
end)
local rows = counts:totable()
local right, total = 0, 0
print(("\nper-class accuracy on the %s images:"):format(test_set and "test" or "validation"))
for i = 1, k do
  local n_i = 0
  for j = 1, k do n_i = n_i + rows[i][j] end
  right, total = right + rows[i][i], total + n_i
  print(("  %-24s %6.2f%%  (%d of %d)"):format(classes[i], n_i > 0 and 100 * rows[i][i] / n_i or 0,
                                               rows[i][i], n_i))
end
print(("accuracy: %.2f%% (%d of %d)"):format(100 * right / total, right, total))
plot.confusion_matrix(rows, classes, out .. "/confusion.svg",
                      {title = ("Residual CNN, %s images"):format(test_set and "test" or "validation")})
print(("wrote %s/best.safetensors, last.safetensors, history.csv, curves.svg and confusion.svg"):format(out))
