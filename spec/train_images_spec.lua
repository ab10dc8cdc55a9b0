-- scripts/export_images.lua and scripts/train_images.lua (issue 19, item 6):
-- Fashion-MNIST written as an image folder reads back as exactly the IDX
-- files' images and labels, so a loader over the folder gives the batches
-- a loader over the IDX files gives; and the training script runs on such
-- a folder, writing what it promises.
local mg = require "moongrad"
local data = require "moongrad.data"
local T = require "moongrad.transforms"
local shell = require "support.shell"
local BUILD = require "support.build"

local ROOT = "/usr/share/datasets/fashion-mnist"
local LIMIT = 600
local q = shell.quote

local dir
setup(function()
  dir = shell.tmpdir()
  local out, code = shell.run_merged(("%s/moongrad scripts/export_images.lua %s --limit %d")
                                     :format(BUILD, q(dir), LIMIT))
  assert(code == 0, out)
end)
teardown(function() shell.run("rm -rf " .. q(dir)) end)

-- The IDX files' first LIMIT training images (uint8) and labels (0-based).
local function idx()
  local x = data.read_idx(ROOT .. "/train-images-idx3-ubyte.gz", {dtype = "uint8"}):narrow(1, 1, LIMIT)
  local y = data.read_idx(ROOT .. "/train-labels-idx1-ubyte.gz", {dtype = "int64"}):narrow(1, 1, LIMIT)
  return x, y
end

describe("export_images.lua", function()
  it("writes one folder per class, in label order, holding the IDX files' pixels", function()
    local x, y = idx()
    local ds = data.ImageFolder(dir .. "/train", {loader = function(p) return mg.image.load(p) end})
    assert.equal(LIMIT, ds:len())
    assert.equal(10, #ds.classes)
    assert.equal("01_t-shirt-top", ds.classes[1])
    assert.equal("10_ankle-boot", ds.classes[10])
    local labels = y:totable()
    for i = 1, ds:len() do
      local path, label = ds.samples[i][1], ds.samples[i][2]
      local k = tonumber(path:match("/(%d+)%.png$"))  -- the image's position in the IDX file
      assert.equal(labels[k] + 1, label, path)
      local img = ds:get(i)
      assert.same({1, 28, 28}, img:shape())
      assert.equal(0, (img[1]:long() - x[k]:long()):abs():max():item(), path)
    end
  end)
end)

describe("training from the exported folder", function()
  it("gives the batches the IDX files give, shuffled, with workers, over two epochs", function()
    local x, y = idx()
    -- the folder lists the images class by class, each class in file order
    local folder = data.ImageFolder(dir .. "/train", {
      loader = function(p) return mg.image.load(p, {mode = "L"}) end, transform = T.ToTensor()})
    local order = {}
    for i = 1, folder:len() do order[i] = tonumber(folder.samples[i][1]:match("/(%d+)%.png$")) end
    local ys = y:totable()
    -- the same samples read from the IDX tensors, in the folder's order, one by
    -- one (so both loaders draw the same per-epoch seed)
    local from_idx = {
      len = function() return #order end,
      get = function(_, i) return x[order[i]]:unsqueeze(1):float() / 255, ys[order[i]] + 1 end,
    }
    local function batches(ds, workers)
      mg.manual_seed(7)
      local loader = data.DataLoader(ds, {batch_size = 32, shuffle = true, num_workers = workers,
                                          persistent_workers = workers > 0})
      local out = {}
      for _ = 1, 2 do
        for xb, yb in loader:iter() do out[#out + 1] = {xb, yb} end
      end
      loader:close()
      return out
    end
    local a, b = batches(folder, 2), batches(from_idx, 0)
    assert.equal(#b, #a)
    assert.equal(2 * math.ceil(LIMIT / 32), #a)
    for k = 1, #a do
      assert.equal("float32", a[k][1]:dtype())
      assert.same(b[k][1]:shape(), a[k][1]:shape())
      assert.equal(0, (a[k][1] - b[k][1]):abs():max():item(), "batch " .. k)
      assert.same(b[k][2]:totable(), a[k][2]:totable(), "batch " .. k)
    end
  end)

  it("trains a residual CNN with train_images.lua and writes its checkpoint, history and charts", function()
    local out_dir = dir .. "/run"
    local out, code = shell.run_merged(("%s/moongrad scripts/train_images.lua %s --epochs 1 --workers 2 "
                                        .. "--out %s"):format(BUILD, q(dir), q(out_dir)))
    assert.equal(0, code, out)
    assert.is_truthy(out:find(dir .. "/train: 600 images of 10 classes, L, trained at 28x28", 1, true), out)
    assert.is_truthy(out:find("per%-class accuracy on the test images"), out)
    assert.is_truthy(out:find("10_ankle%-boot%s+%d+%.%d+%%"), out)
    for _, f in ipairs{"best.safetensors", "last.safetensors", "history.csv", "curves.svg", "confusion.svg"} do
      local h = io.open(out_dir .. "/" .. f)
      assert.is_truthy(h, f .. " was not written")
      h:close()
    end
    local svg = io.open(out_dir .. "/confusion.svg"):read("a")
    assert.is_truthy(svg:find("10_ankle-boot", 1, true))
    assert.is_truthy(svg:find("accuracy %d+%.%d+%% %(%d+ of 600%)"))
  end)

  it("answers --help and refuses a bad argument", function()
    local out, code = shell.run_merged(BUILD .. "/moongrad scripts/train_images.lua --help")
    assert.equal(0, code, out)
    assert.is_truthy(out:find("Usage: train_images.lua", 1, true), out)
    out, code = shell.run_merged(BUILD .. "/moongrad scripts/train_images.lua " .. q(dir) .. " --epochs zero")
    assert.is_not.equal(0, code)
    assert.is_truthy(out:find("expected an integer >= 1, got zero", 1, true), out)
  end)
end)
