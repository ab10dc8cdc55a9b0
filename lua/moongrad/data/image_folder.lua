-- data.ImageFolder: a dataset of image files laid out one folder per class,
-- as torchvision.datasets.ImageFolder (0.14) reads it.
--
--   root/cat/001.png, root/cat/kitten/002.jpg, root/dog/a.jpg, ...
--   local ds = data.ImageFolder("root", {transform = T.Compose{...}})
--   ds.classes        --> {"cat", "dog"}        (sorted by bytes)
--   ds.class_to_idx   --> {cat = 1, dog = 2}
--   ds.samples        --> {{"root/cat/001.png", 1}, ...}; ds.targets {1, ...}
--   local img, label = ds:get(i)  -- transform(mg.image.load(path, {mode = "RGB"})), 1-based label
--
-- As torchvision does:
--   - every subfolder of root is a class, hidden ones (".git") included;
--     classes are sorted by bytes, and labels are 1-based positions in
--     that order;
--   - a class folder is walked recursively, following symbolic links; the
--     samples of a class are ordered as torchvision's
--     sorted(os.walk(...)) orders them: by folder path (bytes), then by
--     file name within a folder. Hidden files are not skipped;
--   - a file is a sample when its name, lowercased, ends with one of the
--     extensions (torchvision's IMG_EXTENSIONS by default, which names
--     formats moongrad does not decode: such a file fails when loaded),
--     or when is_valid_file(path) says so (not both);
--   - a root without subfolders, or a class without samples, is an error
--     with torchvision's wording.
-- Unlike torchvision, a folder that cannot be read is an error naming it
-- (os.walk skips it silently), a folder reached twice through links within
-- a class is walked once (os.walk follows a loop until the path is too
-- long), and the extensions given are lowercased too.
--
-- Bad files. A file that cannot be decoded raises from ds:get(i) an error
-- naming it (image.load: root/cat/x.png: truncated: ...). To find them up
-- front, verify = true (or "header") reads every file's header with
-- mg.image.info, also refusing images above mg.image.max_pixels, and
-- verify = "full" runs the loader on every file; the bad ones are left out
-- of ds.samples and listed in ds.skipped as {path, error} (#ds.skipped
-- counts them), so the dataset's length and labels never change while it
-- is used. A header check cannot see a file cut or corrupted after its
-- header: get still raises for those.
local mg = require "moongrad"

local type, error, pcall, ipairs, pairs, tostring, setmetatable, getmetatable =
  type, error, pcall, ipairs, pairs, tostring, setmetatable, getmetatable
local math_type, table_concat, table_sort = math.type, table.concat, table.sort
local listdir, image_load, image_info = mg._listdir, mg._image_load, mg._image_info

local M = {}

M.IMG_EXTENSIONS = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}

local RGB = {mode = "RGB"}
-- torchvision's pil_loader: the image converted to RGB.
local function default_loader(path)
  return image_load(path, RGB)
end

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt.__call) == "function"
end

-- a < b comparing bytes, as Python compares str; Lua's < goes through
-- strcoll, which a host's locale may change.
local function bytes_less(a, b)
  for i = 1, #a < #b and #a or #b do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function join(dir, name)
  if dir:sub(-1) == "/" then return dir .. name end
  return dir .. "/" .. name
end

local function list(dir, level)
  local names, kinds, id = listdir(dir, "ImageFolder")
  if not names then error(kinds, level + 1) end
  return names, kinds, id
end

-- Every folder under dir (dir included) as {path, its non-folder names},
-- appended to out; seen holds the folders already walked.
local function walk(dir, seen, out, level)
  local names, kinds, id = list(dir, level + 1)
  if seen[id] then return end
  seen[id] = true
  local files = {}
  for i, n in ipairs(names) do
    if kinds[i] ~= "dir" then files[#files + 1] = n end
  end
  out[#out + 1] = {dir, files}
  for i, n in ipairs(names) do
    if kinds[i] == "dir" then walk(join(dir, n), seen, out, level + 1) end
  end
end

local function has_extension(name, exts)
  local lower = name:lower()
  for _, e in ipairs(exts) do
    if lower:sub(-#e) == e then return true end
  end
  return false
end

-- ---- the dataset ----------------------------------------------------------------

local ImageFolder = {}
ImageFolder.__index = ImageFolder
ImageFolder.__name = "ImageFolder"

local KNOWN = {transform = true, target_transform = true, loader = true, extensions = true,
               is_valid_file = true, verify = true}

local function check_options(root, opts)
  if type(root) ~= "string" then
    error(("ImageFolder: root must be a directory path (a string), got %s"):format(type(root)), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("ImageFolder: options must be a table, got %s"):format(type(opts)), 3)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if not KNOWN[k] then error(("ImageFolder: unknown option '%s'"):format(tostring(k)), 3) end
  end
  for _, k in ipairs{"transform", "target_transform", "loader", "is_valid_file"} do
    if opts[k] ~= nil and not is_callable(opts[k]) then
      error(("ImageFolder: %s must be a function, got %s"):format(k, type(opts[k])), 3)
    end
  end
  if opts.extensions ~= nil and opts.is_valid_file ~= nil then
    error("ImageFolder: give extensions or is_valid_file, not both", 3)
  end
  local exts = M.IMG_EXTENSIONS
  if opts.extensions ~= nil then
    if type(opts.extensions) ~= "table" or #opts.extensions == 0 then
      error("ImageFolder: extensions must be a non-empty list of strings such as {\".png\"}", 3)
    end
    exts = {}
    for i, e in ipairs(opts.extensions) do
      if type(e) ~= "string" or e == "" then
        error(("ImageFolder: extensions[%d] must be a non-empty string, got %s")
          :format(i, tostring(e)), 3)
      end
      exts[i] = e:lower()
    end
  end
  local v = opts.verify
  if v ~= nil and v ~= false and v ~= true and v ~= "header" and v ~= "full" then
    error(("ImageFolder: verify must be false, true (\"header\") or \"full\", got %s")
      :format(tostring(v)), 3)
  end
  return opts, exts, v == true and "header" or v or nil
end

-- The reason a sample cannot be used, or nil.
local function check_file(path, how, loader)
  if how == "full" then
    local ok, err = pcall(loader, path)
    return not ok and tostring(err) or nil
  end
  local ok, info = pcall(image_info, path)
  if not ok then return tostring(info) end
  local limit = mg.image.max_pixels
  if limit > 0 and info.width * info.height > limit then
    return ("image.info: %s: %d x %d = %d pixels is more than the limit of %d")
      :format(path, info.width, info.height, info.width * info.height, limit)
  end
  return nil
end

-- data.ImageFolder(root [, {transform, target_transform, loader, extensions,
-- is_valid_file, verify}]): see the top of this file.
function M.ImageFolder(root, opts)
  local exts, verify
  opts, exts, verify = check_options(root, opts)
  local loader = opts.loader or default_loader
  local is_valid = opts.is_valid_file
  local names, kinds = list(root, 2)
  local classes, class_to_idx = {}, {}
  for i, n in ipairs(names) do
    if kinds[i] == "dir" then
      classes[#classes + 1] = n
      class_to_idx[n] = #classes
    end
  end
  if #classes == 0 then
    error(("ImageFolder: Couldn't find any class folder in %s."):format(root), 2)
  end
  local samples, targets, skipped, empty = {}, {}, {}, {}
  for label, cls in ipairs(classes) do
    local dirs = {}
    walk(join(root, cls), {}, dirs, 2)
    table_sort(dirs, function(a, b) return bytes_less(a[1], b[1]) end)
    local found = false
    for _, d in ipairs(dirs) do
      for _, name in ipairs(d[2]) do
        local path = join(d[1], name)
        local ok
        if is_valid then ok = is_valid(path) else ok = has_extension(name, exts) end
        if ok then
          local why = verify and check_file(path, verify, loader)
          if why then
            skipped[#skipped + 1] = {path, why}
          else
            samples[#samples + 1] = {path, label}
            targets[#targets + 1] = label
            found = true
          end
        end
      end
    end
    if not found then empty[#empty + 1] = cls end
  end
  if #empty > 0 then
    local msg = ("ImageFolder: Found no valid file for the classes %s. "):format(table_concat(empty, ", "))
    if not is_valid then msg = msg .. "Supported extensions are: " .. table_concat(exts, ", ") end
    if #skipped > 0 then
      msg = msg .. (" (%d file%s failed verification, the first: %s)")
        :format(#skipped, #skipped == 1 and "" or "s", skipped[1][2])
    end
    error(msg, 2)
  end
  return setmetatable({
    root = root, classes = classes, class_to_idx = class_to_idx,
    samples = samples, targets = targets, skipped = skipped, extensions = exts,
    loader = loader, transform = opts.transform, target_transform = opts.target_transform,
  }, ImageFolder)
end

function ImageFolder:len() return #self.samples end
ImageFolder.__len = ImageFolder.len

-- ds:get(i) --> image (after transform), label (after target_transform)
function ImageFolder:get(i)
  local n = #self.samples
  if math_type(i) ~= "integer" or i < 1 or i > n then
    error(("ImageFolder:get: index %s out of range 1..%d"):format(tostring(i), n), 2)
  end
  local path, label = self.samples[i][1], self.samples[i][2]
  local img
  if self.loader == default_loader then
    -- Raised here, where the user asked: the message names the file.
    local ok, r = pcall(image_load, path, RGB)
    if not ok then error(r, 2) end
    img = r
  else
    img = self.loader(path)
  end
  if self.transform then img = self.transform(img) end
  if self.target_transform then label = self.target_transform(label) end
  return img, label
end

return M
