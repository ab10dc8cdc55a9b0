-- data.ImageFolder (issue 19): a folder of images, one subfolder per class,
-- read as torchvision.datasets.ImageFolder 0.14 reads it. The expected
-- orders and messages are torchvision's, derived by hand from its
-- find_classes/make_dataset (and checked once against torchvision 0.14
-- on the same tree: the tree in "lists classes ..." gives the same
-- samples in the same order there).
local mg = require "moongrad"
local data = require "moongrad.data"
local shell = require "support.shell"

local IMAGES = "spec/fixtures/images/"
local q = shell.quote

local error_of = require("support.check").err_of
local err_of = require("support.check").err_of

local function plain(s) return (s:gsub("%p", "%%%0")) end

local is_root = shell.run("id -u") == "0\n"

-- A tree under a new temporary directory: files maps relative paths to a
-- fixture image's name (copied) or to literal contents ("=text").
local function tree(files)
  local root = shell.tmpdir()
  for rel, src in pairs(files) do
    local path = root .. "/" .. rel
    assert(os.execute("mkdir -p " .. q(path:match("^(.*)/"))))
    if src:sub(1, 1) == "=" then shell.write_file(path, src:sub(2))
    else shell.write_file(path, shell.read_file(IMAGES .. src)) end
  end
  return root
end

local roots = {}
local function new_tree(files)
  local root = tree(files)
  roots[#roots + 1] = root
  return root
end
teardown(function()
  for _, r in ipairs(roots) do os.execute("chmod -R u+rwx " .. q(r) .. "; rm -rf " .. q(r)) end
end)

local function paths(ds, root)
  local out = {}
  for i, s in ipairs(ds.samples) do out[i] = {s[1]:sub(#root + 2), s[2]} end
  return out
end

describe("data.ImageFolder", function()
  it("lists classes in byte order and samples as torchvision orders them", function()
    local root = new_tree {
      ["dog/b.png"] = "rgb8.png",
      ["dog/a.JPG"] = "rgb420.jpg",                -- the extension in any case
      ["dog/notes.txt"] = "=not an image",         -- skipped: not an image extension
      ["dog/x.png.txt"] = "=neither",
      ["dog/.hidden.png"] = "gray8.png",           -- hidden files are not skipped
      ["dog/sub/c.png"] = "la8.png",               -- subfolders are walked
      ["dog/sub-2/d.png"] = "gray8.png",           -- "sub" < "sub-2" < "sub/deeper"
      ["dog/sub/deeper/e.jpeg"] = "gray.jpg",
      ["Zebra/z.png"] = "rgba8.png",               -- "Z" (0x5A) sorts before "c" and "d"
      ["cat/y.webp"] = "gray8.png",                -- an extension torchvision lists
      [".thumbs/t.png"] = "gray8.png",             -- a hidden folder is a class
    }
    local ds = data.ImageFolder(root)
    assert.same({".thumbs", "Zebra", "cat", "dog"}, ds.classes)
    assert.same({[".thumbs"] = 1, Zebra = 2, cat = 3, dog = 4}, ds.class_to_idx)
    assert.same({
      {".thumbs/t.png", 1}, {"Zebra/z.png", 2}, {"cat/y.webp", 3},
      {"dog/.hidden.png", 4}, {"dog/a.JPG", 4}, {"dog/b.png", 4},
      {"dog/sub/c.png", 4}, {"dog/sub-2/d.png", 4}, {"dog/sub/deeper/e.jpeg", 4},
    }, paths(ds, root))
    assert.same({1, 2, 3, 4, 4, 4, 4, 4, 4}, ds.targets)
    assert.equal(9, ds:len())
    assert.equal(9, #ds)
    assert.same({}, ds.skipped)
  end)

  it("gives each sample as an RGB uint8 image and its 1-based label", function()
    local root = new_tree {["a/gray.png"] = "gray8.png", ["b/rgba.png"] = "rgba8.png"}
    local ds = data.ImageFolder(root)
    local img, label = ds:get(1)
    assert.equal(1, label)
    assert.equal("uint8", img:dtype())
    assert.same({3, 31, 45}, img:shape()) -- gray replicated, as pil_loader's convert("RGB")
    local want = mg.image.load(IMAGES .. "gray8.png", {mode = "RGB"})
    assert.equal(0, (img:long() - want:long()):abs():sum():item())
    img, label = ds:get(2)
    assert.equal(2, label)
    assert.same({3, 31, 45}, img:shape()) -- alpha dropped
    assert.matches("ImageFolder:get: index 3 out of range 1..2", err_of(ds.get, ds, 3))
    assert.matches("index 0 out of range", err_of(ds.get, ds, 0))
  end)

  it("applies transform, target_transform and a custom loader", function()
    local root = new_tree {["a/x.png"] = "gray8.png", ["b/y.png"] = "rgb8.png"}
    local loaded = {}
    local ds = data.ImageFolder(root, {
      loader = function(path) loaded[#loaded + 1] = path; return mg.image.load(path) end,
      transform = function(img) return img:float() / 255 end,
      target_transform = function(y) return y * 10 end,
    })
    local x, y = ds:get(2)
    assert.equal("float32", x:dtype())
    assert.same({3, 31, 45}, x:shape())
    assert.equal(20, y)
    assert.same({root .. "/b/y.png"}, loaded)
  end)

  it("takes its own extensions (any case) or an is_valid_file function", function()
    local root = new_tree {["a/x.png"] = "gray8.png", ["a/y.jpg"] = "gray.jpg", ["a/z.bin"] = "gray8.png"}
    local ds = data.ImageFolder(root, {extensions = {".PNG", ".bin"}})
    assert.same({{"a/x.png", 1}, {"a/z.bin", 1}}, paths(ds, root))
    ds = data.ImageFolder(root, {is_valid_file = function(p) return p:match("y%.jpg$") ~= nil end})
    assert.same({{"a/y.jpg", 1}}, paths(ds, root))
  end)

  it("feeds a DataLoader: images of one size stack into a batch", function()
    local root = new_tree {["a/1.png"] = "rgb8.png", ["a/2.jpg"] = "rgb420.jpg", ["b/3.png"] = "gray8.png"}
    local ds = data.ImageFolder(root, {transform = function(img) return img:float() / 255 end})
    local loader = data.DataLoader(ds, {batch_size = 3})
    for xb, yb in loader:iter() do
      assert.same({3, 3, 31, 45}, xb:shape())
      assert.same({1, 1, 2}, yb:totable())
      assert.equal("int64", yb:dtype())
    end
  end)

  it("follows symbolic links and walks a folder that links to itself once", function()
    local root = new_tree {["a/x.png"] = "gray8.png", ["elsewhere/y.png"] = "rgb8.png"}
    assert(os.execute("ln -s ../elsewhere " .. q(root .. "/a/linked")))
    assert(os.execute("ln -s .. " .. q(root .. "/a/loop")))         -- a/loop -> root
    assert(os.execute("ln -s ../a " .. q(root .. "/elsewhere/back"))) -- a cycle through two
    local ds = data.ImageFolder(root)
    assert.same({"a", "elsewhere"}, ds.classes)
    local got = paths(ds, root)
    -- every folder once per class, whichever path reached it first
    local seen = {}
    for _, s in ipairs(got) do seen[s[1]:match("[^/]+$") .. "@" .. s[2]] = true end
    assert.same({["x.png@1"] = true, ["y.png@1"] = true, ["x.png@2"] = true, ["y.png@2"] = true}, seen)
    assert.equal(4, #got)
  end)
end)

describe("data.ImageFolder on bad input", function()
  it("raises torchvision's errors for a root without class folders and a class without images", function()
    local empty = new_tree {["readme.txt"] = "=only a file"}
    assert.matches("ImageFolder: Couldn't find any class folder in " .. plain(empty) .. "%.",
                   err_of(data.ImageFolder, empty))
    local root = new_tree {["a/x.png"] = "gray8.png", ["b/notes.txt"] = "=text", ["c/.keep"] = "="}
    assert.matches("ImageFolder: Found no valid file for the classes b, c%. Supported extensions are: "
                   .. "%.jpg, %.jpeg, %.png, %.ppm, %.bmp, %.pgm, %.tif, %.tiff, %.webp",
                   err_of(data.ImageFolder, root))
  end)

  it("names a root or a class folder it cannot read", function()
    assert.matches("ImageFolder: /nonexistent/images: cannot read the directory: No such file or directory",
                   err_of(data.ImageFolder, "/nonexistent/images"))
    local file = IMAGES .. "gray8.png"
    assert.matches("ImageFolder: " .. plain(file) .. ": cannot read the directory: Not a directory",
                   err_of(data.ImageFolder, file))
    local root = new_tree {["a/x.png"] = "gray8.png", ["b/y.png"] = "gray8.png"}
    assert(os.execute("chmod 000 " .. q(root .. "/b")))
    local want = "ImageFolder: " .. root .. "/b: cannot read the directory: Permission denied"
    if not is_root then
      assert.matches(plain(want), err_of(data.ImageFolder, root))
      return
    end
    -- chmod 000 does not stop root: the listing runs as nobody in a child
    local out, err = shell.run_lua_as_nobody(
      ("local data = require 'moongrad.data'; local _, e = pcall(data.ImageFolder, %q); io.write(e)"):format(root))
    if not out then
      pending("running as root, and " .. err .. ": an unreadable folder cannot be made")
      return
    end
    assert.equal(want, out, err)
  end)

  it("raises from get an error naming a file it cannot decode", function()
    local root = new_tree {["a/ok.png"] = "gray8.png", ["a/text.png"] = "=hello"}
    local ds = data.ImageFolder(root)
    assert.equal(2, ds:len())
    local e = err_of(ds.get, ds, 2)
    assert.matches("image%.load: " .. plain(root) .. "/a/text%.png: not a PNG or JPEG image", e)
    assert.same({3, 31, 45}, ds:get(1):shape())
  end)

  it("skips and lists bad files up front with verify, by header or by full decode", function()
    local whole = shell.read_file(IMAGES .. "rgb8.png")
    local root = new_tree {
      ["a/good.png"] = "rgb8.png",
      ["a/text.png"] = "=hello",
      ["a/empty.jpg"] = "=",
      ["a/cut.png"] = "=" .. whole:sub(1, #whole // 2),  -- the header is whole
      ["a/bomb.png"] = "bad/bomb_100000_100000.png",
      ["a/cmyk.jpg"] = "bad/cmyk.jpg",
      ["b/good.jpg"] = "rgb420.jpg",
    }
    local ds = data.ImageFolder(root, {verify = true})
    assert.same({{"a/cut.png", 1}, {"a/good.png", 1}, {"b/good.jpg", 2}}, paths(ds, root))
    assert.same({1, 1, 2}, ds.targets)
    local why = {}
    for _, s in ipairs(ds.skipped) do why[s[1]:match("[^/]+$")] = s[2] end
    assert.matches("bomb%.png: 100000 x 100000 = 10000000000 pixels is more than the limit", why["bomb.png"])
    assert.matches("cmyk%.jpg: a CMYK JPEG", why["cmyk.jpg"])
    assert.matches("empty%.jpg: empty %(0 bytes%)", why["empty.jpg"])
    assert.matches("text%.png: not a PNG or JPEG image", why["text.png"])
    assert.equal(4, #ds.skipped)
    assert.matches("cut%.png: truncated", err_of(ds.get, ds, 1)) -- past the header
    ds = data.ImageFolder(root, {verify = "full"})
    assert.same({{"a/good.png", 1}, {"b/good.jpg", 2}}, paths(ds, root))
    assert.equal(5, #ds.skipped)
  end)

  it("fails as torchvision does when verify leaves a class empty, saying why", function()
    local root = new_tree {["a/good.png"] = "rgb8.png", ["b/text.png"] = "=hello"}
    assert.matches("Found no valid file for the classes b%. .*%(1 file failed verification, the first: "
                   .. "image%.info: .*text%.png: not a PNG or JPEG image",
                   err_of(data.ImageFolder, root, {verify = true}))
  end)

  it("refuses bad options", function()
    local root = new_tree {["a/x.png"] = "gray8.png"}
    assert.matches("ImageFolder: unknown option 'skip_bad'", err_of(data.ImageFolder, root, {skip_bad = true}))
    assert.matches("ImageFolder: root must be a directory path %(a string%), got nil", err_of(data.ImageFolder))
    assert.matches("ImageFolder: transform must be a function, got number",
                   err_of(data.ImageFolder, root, {transform = 3}))
    assert.matches("give extensions or is_valid_file, not both",
                   err_of(data.ImageFolder, root, {extensions = {".png"}, is_valid_file = print}))
    assert.matches("extensions must be a non%-empty list", err_of(data.ImageFolder, root, {extensions = ".png"}))
    assert.matches('verify must be false, true %("header"%) or "full", got yes',
                   err_of(data.ImageFolder, root, {verify = "yes"}))
  end)
end)
