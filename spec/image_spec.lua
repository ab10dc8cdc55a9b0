-- mg.image (issue 19): PNG and JPEG through libpng and libjpeg-turbo.
-- The references are Pillow 9.4's pixels for small crops of real
-- photographs in every variant (spec/fixtures/gen_images.py wrote the
-- files and ref.idx.gz; data.read_idx reads it, no image code involved);
-- the float conversion of save is derived by hand from torchvision's
-- save_image (x * 255 + 0.5, clamped, truncated).
local mg = require "moongrad"
local data = require "moongrad.data"
local shell = require "support.shell"
local peers = require "support.peers"

local DIR = "spec/fixtures/images/"
local INDEX = dofile(DIR .. "index.lua")
local MODES = {{nil, 0}, {"L", 4}, {"RGB", 5}, {"RGBA", 8}} -- plane offsets in ref
local CH = {L = 1, RGB = 3, RGBA = 4}
local q = shell.quote

local error_of = require("support.check").err_of
local err_of = require("support.check").err_of

local function plain(s) return (s:gsub("%p", "%%%0")) end

local function bytes_of(name) return shell.read_file(DIR .. name) end

-- The number of positions where a and b (same shape) differ.
local function ndiff(a, b)
  assert.same(b:shape(), a:shape())
  return (a:long() - b:long()):abs():gt(0):sum():item()
end

local ref
local function reference(i, mode)
  ref = ref or data.read_idx(DIR .. "ref.idx.gz", {dtype = "uint8"})
  for _, m in ipairs(MODES) do
    if m[1] == mode then return ref[i]:narrow(1, m[2] + 1, mode and CH[mode] or INDEX[i][2]) end
  end
end

local tmp = shell.tmpdir()
teardown(function() os.execute("chmod -R u+rwx " .. q(tmp) .. "; rm -rf " .. q(tmp)) end)
local function tmp_file(name, contents)
  local path = tmp .. "/" .. name
  if contents then shell.write_file(path, contents) end
  return path
end

local function tensor_bytes()
  collectgarbage()
  collectgarbage()
  return mg.memory().tensor_bytes
end

describe("mg.image.load", function()
  for i, v in ipairs(INDEX) do
    it(("decodes %s (%s) as Pillow does, without a mode and in L, RGB and RGBA"):format(v[1], v[3]),
       function()
      for _, m in ipairs(MODES) do
        local t = mg.image.load(DIR .. v[1], m[1] and {mode = m[1]} or nil)
        assert.equal("uint8", t:dtype())
        assert.is_true(t:is_contiguous())
        assert.equal(0, ndiff(t, reference(i, m[1])), v[1] .. " in mode " .. tostring(m[1]))
      end
    end)
  end

  it("gives the file's own channels without a mode", function()
    local want = {["gray8.png"] = 1, ["la8.png"] = 2, ["rgb8.png"] = 3, ["rgba8.png"] = 4,
                  ["pal8.png"] = 3, ["pal8_trns.png"] = 4, ["gray.jpg"] = 1, ["rgb420.jpg"] = 3}
    for name, c in pairs(want) do
      assert.same({c, 31, 45}, mg.image.load(DIR .. name):shape(), name)
    end
  end)

  it("converts with Pillow's integer luma formula", function()
    -- (19595 R + 38470 G + 7471 B + 32768) >> 16, by hand for one pixel
    local rgb = mg.image.load(DIR .. "rgb8.png")
    local L = mg.image.load(DIR .. "rgb8.png", {mode = "L"})
    local r, g, b = rgb[1][5][7], rgb[2][5][7], rgb[3][5][7]
    assert.equal((19595 * r + 38470 * g + 7471 * b + 32768) >> 16, L[1][5][7])
  end)

  it("tells the format from the bytes, not from the file name", function()
    local jpg_as_png = tmp_file("photo.png", bytes_of("rgb420.jpg"))
    local png_as_jpg = tmp_file("photo.jpg", bytes_of("rgba8.png"))
    local no_ext = tmp_file("photo", bytes_of("gray8.png"))
    assert.equal(0, ndiff(mg.image.load(jpg_as_png), mg.image.load(DIR .. "rgb420.jpg")))
    assert.equal(0, ndiff(mg.image.load(png_as_jpg), mg.image.load(DIR .. "rgba8.png")))
    assert.equal(0, ndiff(mg.image.load(no_ext), mg.image.load(DIR .. "gray8.png")))
    assert.equal("JPEG", mg.image.info(jpg_as_png).format)
  end)

  it("names itself once at the head of its errors", function()
    local _, e = pcall(function() return mg.image.load(DIR .. "missing.png") end)
    assert.matches("^spec/image_spec%.lua:%d+: image%.load: " .. plain(DIR) .. "missing%.png: cannot open", e)
    _, e = pcall(function() return mg.linalg.cholesky(mg.tensor({{-1.0}})) end)
    assert.matches("^spec/image_spec%.lua:%d+: linalg%.cholesky: ", e)
  end)

  it("refuses an unknown mode or option", function()
    assert.matches('image.load: option \'mode\' must be "L", "RGB" or "RGBA", got "rgb"',
                   err_of(mg.image.load, DIR .. "rgb8.png", {mode = "rgb"}))
    assert.matches("image.load: unknown option 'mod'", err_of(mg.image.load, DIR .. "rgb8.png", {mod = "L"}))
    assert.matches("image.load: path must be a string, got nil", err_of(mg.image.load))
    assert.matches("image.load: the path contains a NUL byte",
                   err_of(mg.image.load, DIR .. "rgb8.png\0.jpg"))
  end)
end)

describe("mg.image.decode", function()
  it("decodes bytes in memory as load decodes the file", function()
    for _, name in ipairs {"pal4_trns_adam7.png", "prog420.jpg", "rgba16.png"} do
      for _, m in ipairs(MODES) do
        local opts = m[1] and {mode = m[1]} or nil
        assert.equal(0, ndiff(mg.image.decode(bytes_of(name), opts), mg.image.load(DIR .. name, opts)))
      end
    end
  end)

  it("names the bytes as told in its messages", function()
    assert.matches("image.decode: <bytes>: empty %(0 bytes%), not an image", err_of(mg.image.decode, ""))
    assert.matches("image.decode: cat%.png: truncated",
                   err_of(mg.image.decode, bytes_of("rgb8.png"):sub(1, 100), {name = "cat.png"}))
    assert.matches("image.decode: expected the image's bytes as a string, got table",
                   err_of(mg.image.decode, {}))
  end)
end)

describe("mg.image.info", function()
  it("reads the size, channels and format from the header", function()
    for _, v in ipairs(INDEX) do
      local info = mg.image.info(DIR .. v[1])
      assert.same({width = 45, height = 31, channels = v[2],
                   format = v[1]:match("%.png$") and "PNG" or "JPEG"}, info)
    end
  end)

  it("reads a 100000 x 100000 header without allocating its pixels", function()
    local before = tensor_bytes()
    local info = mg.image.info(DIR .. "bad/bomb_100000_100000.png")
    assert.same({width = 100000, height = 100000, channels = 3, format = "PNG"}, info)
    assert.equal(before, tensor_bytes())
  end)
end)

describe("the pixel limit", function()
  after_each(function() mg.image.set_max_pixels(178956970) end)

  it("is Pillow's decompression-bomb threshold by default", function()
    assert.equal(178956970, mg.image.max_pixels)
  end)

  it("refuses a 100000 x 100000 PNG and a 60000 x 60000 JPEG from the header, naming file, size and limit",
     function()
    local before = tensor_bytes()
    local png = DIR .. "bad/bomb_100000_100000.png"
    assert.matches("image.load: " .. plain(png) .. ": 100000 x 100000 = 10000000000 pixels is more than "
                   .. "the limit of 178956970 %(a decompression bomb%? mg%.image%.set_max_pixels raises it%)",
                   err_of(mg.image.load, png))
    local jpg = DIR .. "bad/bomb_60000_60000.jpg"
    assert.matches(plain(jpg) .. ": 60000 x 60000 = 3600000000 pixels is more than the limit of 178956970",
                   err_of(mg.image.load, jpg))
    assert.matches("image.decode: <bytes>: 100000 x 100000", err_of(mg.image.decode, shell.read_file(png)))
    assert.equal(before, tensor_bytes())
  end)

  it("is set per state with set_max_pixels, which returns the previous limit", function()
    assert.equal(178956970, mg.image.set_max_pixels(45 * 31))
    assert.equal(45 * 31, mg.image.max_pixels)
    assert.same({3, 31, 45}, mg.image.load(DIR .. "rgb8.png"):shape()) -- exactly at the limit
    assert.equal(45 * 31, mg.image.set_max_pixels(45 * 31 - 1))
    assert.matches("45 x 31 = 1395 pixels is more than the limit of 1394",
                   err_of(mg.image.load, DIR .. "rgb8.png"))
    assert.matches("1395 pixels", err_of(mg.image.load, DIR .. "prog420.jpg"))
    mg.image.set_max_pixels(0) -- no limit: the header is then what fails
    assert.matches("bomb_100000_100000%.png: ", err_of(mg.image.load, DIR .. "bad/bomb_100000_100000.png"))
  end)

  it("takes only an integer >= 0, through set_max_pixels", function()
    assert.matches("image.set_max_pixels: expected an integer >= 0 %(0: no limit%), got %-1",
                   err_of(mg.image.set_max_pixels, -1))
    assert.matches("got 1.5", err_of(mg.image.set_max_pixels, 1.5))
    assert.matches("got nil", err_of(mg.image.set_max_pixels))
    assert.matches("set it with mg.image.set_max_pixels",
                   err_of(function() mg.image.max_pixels = 5 end))
    assert.equal(178956970, mg.image.max_pixels)
  end)
end)

describe("mg.image under mg.set_memory_limit", function()
  local function under_limit(extra, fn, ...)
    mg.set_memory_limit(tensor_bytes() + extra)
    local ok, err = pcall(fn, ...)
    mg.set_memory_limit(0)
    return ok, err
  end

  it("counts the decoded image like any tensor and names the file past the limit", function()
    local before = tensor_bytes()
    local ok, err = under_limit(2000, mg.image.load, DIR .. "rgb8.png")
    assert.is_false(ok)
    assert.matches("image.load: not enough memory reading " .. plain(DIR) .. "rgb8%.png", err)
    assert.equal(before, tensor_bytes())
    local t = mg.image.load(DIR .. "rgb8.png")
    assert.equal(before + 3 * 31 * 45, tensor_bytes())
    t = nil -- luacheck: ignore
    assert.equal(before, tensor_bytes())
  end)

  it("charges an interlaced PNG's rows and a progressive JPEG's coefficients while decoding", function()
    -- 45 x 31 x 3 = 4185 bytes of pixels; the interlaced image needs as much
    -- again, the progressive JPEG's coefficients about 9 KB.
    local before = tensor_bytes()
    assert.is_true((under_limit(7000, mg.image.load, DIR .. "rgb8.png")))
    local ok, err = under_limit(7000, mg.image.load, DIR .. "rgb8_adam7.png")
    assert.is_false(ok)
    assert.matches("not enough memory reading .*rgb8_adam7%.png", err)
    assert.is_true((under_limit(9000, mg.image.load, DIR .. "rgb420.jpg")))
    ok, err = under_limit(9000, mg.image.load, DIR .. "prog420.jpg")
    assert.is_false(ok)
    assert.matches("not enough memory reading .*prog420%.jpg", err)
    assert.equal(before, tensor_bytes())
  end)
end)

describe("mg.image on bad input", function()
  -- Each error names the file and what is wrong, and leaves nothing
  -- behind (the memory count is as before).
  local function refuses(path, pattern)
    local before = tensor_bytes()
    local e = err_of(mg.image.load, path)
    assert.matches("image%.load: " .. plain(path) .. ": " .. pattern, e)
    assert.equal(before, tensor_bytes())
    return e
  end

  it("refuses a file cut anywhere, PNG or JPEG, interlaced or progressive", function()
    for _, name in ipairs {"rgb8.png", "rgb8_adam7.png", "pal4_trns_adam7.png", "rgb420.jpg",
                           "prog420.jpg", "gray_prog.jpg"} do
      local whole = bytes_of(name)
      for _, keep in ipairs {1, 4, 8, 16, 33, 60, #whole // 3, #whole // 2, #whole - 13, #whole - 2,
                             #whole - 1} do
        local path = tmp_file("cut.img", whole:sub(1, keep))
        refuses(path, "truncated: the data ends after " .. keep .. " bytes?, inside the "
                .. (name:match("png$") and "PNG" or "JPEG") .. " image")
        assert.matches("truncated", err_of(mg.image.decode, whole:sub(1, keep)))
      end
    end
  end)

  it("refuses a PNG with a bad CRC in its header or its image data", function()
    local png = bytes_of("gray8.png")
    local function flipped(at) return png:sub(1, at - 1) .. string.char(png:byte(at) ~ 1) .. png:sub(at + 1) end
    refuses(tmp_file("crc.png", flipped(30)), "corrupt PNG: IHDR: CRC error")
    local idat = png:find("IDAT", 1, true)
    local len = string.unpack(">I4", png, idat - 4)
    refuses(tmp_file("crc.png", flipped(idat + 4 + len)), "corrupt PNG: IDAT: CRC error")
  end)

  it("refuses an empty file, a PNG of width 0, a text file named .png and other formats", function()
    refuses(tmp_file("empty.png", ""), "empty %(0 bytes%), not an image")
    refuses(DIR .. "bad/zero_width.png", "corrupt PNG: Invalid IHDR data %(Image width is zero in IHDR%)")
    refuses(tmp_file("notes.png", "hello, world\n"),
            "not a PNG or JPEG image %(it starts with bytes 68 65 6c 6c 6f 2c 20 77%)")
    refuses(tmp_file("anim.png", "GIF89a\1\0\1\0\0\0\0;"), "a GIF image; moongrad decodes PNG and JPEG only")
    refuses(tmp_file("x.png", "BM" .. ("\0"):rep(60)), "a BMP image")
    refuses(tmp_file("x.jpg", "RIFF\0\0\0\0WEBPVP8 "), "a WebP image")
    refuses(tmp_file("x.jpg", "II*\0\8\0\0\0"), "a TIFF image")
  end)

  it("refuses a CMYK JPEG, saying so", function()
    refuses(DIR .. "bad/cmyk.jpg", "a CMYK JPEG, which moongrad does not decode %(convert it to RGB first%)")
    assert.matches("CMYK", err_of(mg.image.info, DIR .. "bad/cmyk.jpg"))
  end)

  it("refuses a directory, a FIFO and a missing file at once", function()
    refuses(tmp, "is a directory, not a regular file")
    local fifo = tmp_file("pipe.png")
    assert(os.execute("mkfifo " .. q(fifo)))
    local held = assert(io.open(fifo, "r+")) -- a wrong blocking open would not hang
    refuses(fifo, "is a FIFO %(named pipe%), not a regular file")
    assert.matches("is a FIFO", err_of(mg.image.info, fifo))
    held:close()
    refuses(tmp .. "/missing.png", "cannot open: No such file or directory")
  end)

  it("refuses a file it may not read", function()
    local path = tmp_file("secret.png", bytes_of("rgb8.png"))
    assert(os.execute("chmod 000 " .. q(path)))
    if shell.run("id -u") ~= "0\n" then
      refuses(path, "cannot open: Permission denied")
      return
    end
    -- chmod 000 does not stop root: the load runs as nobody in a child
    local out, err = shell.run_lua_as_nobody(
      ("local mg = require 'moongrad'; io.write(select(2, pcall(mg.image.load, %q)))"):format(path))
    if not out then
      pending("running as root, and " .. err .. ": an unreadable file cannot be made")
      return
    end
    assert.equal("image.load: " .. path .. ": cannot open: Permission denied", out, err)
  end)
end)

describe("mg.image.save", function()
  it("writes PNGs that load back to the same pixels, 1 to 4 channels, any layout", function()
    for _, name in ipairs {"gray8.png", "la8.png", "rgb420.jpg", "rgba8.png"} do
      local t = mg.image.load(DIR .. name)
      local path = tmp_file("rt.png")
      mg.image.save(path, t)
      assert.equal(0, ndiff(mg.image.load(path), t), name)
      local view = t:transpose(2, 3) -- [C, W, H], not contiguous
      mg.image.save(path, view)
      assert.equal(0, ndiff(mg.image.load(path), view:contiguous()), name .. " transposed")
      assert.equal("PNG", mg.image.info(path).format)
    end
  end)

  it("stores floats as torchvision's save_image: x * 255 + 0.5, clamped, truncated", function()
    local values = {0, 0.25, 0.5, 0.75, 1, 1.5, -0.5, 0 / 0}
    local want = {0, 64, 128, 191, 255, 255, 0, 0} -- 63.75+.5, 127.5+.5, 191.25+.5, ...
    for _, dt in ipairs {"float32", "float64"} do
      local path = tmp_file("f.png")
      mg.image.save(path, mg.tensor({{values}}, dt))
      assert.same({{want}}, mg.image.load(path):totable(), dt)
    end
  end)

  it("replaces an existing file and refuses what it cannot write, writing nothing", function()
    local path = tmp_file("keep.png")
    mg.image.save(path, mg.image.load(DIR .. "rgb8.png"))
    mg.image.save(path, mg.image.load(DIR .. "gray8.png"))
    assert.equal(1, mg.image.info(path).channels)
    local before = shell.read_file(path)
    assert.matches("image.save: .*keep%.png: expected a uint8 tensor, or a float one with values in %[0, 1%], got int64",
                   err_of(mg.image.save, path, mg.zeros({1, 2, 2}, "int64")))
    assert.matches("expected an image %[C, H, W%] with C = 1, 2, 3 or 4 and H, W from 1 to 2%^31 %- 1, got shape %[5,2,2%]",
                   err_of(mg.image.save, path, mg.zeros({5, 2, 2}, "uint8")))
    assert.matches("got shape %[2,2%]", err_of(mg.image.save, path, mg.zeros({2, 2}, "uint8")))
    assert.matches("got shape %[3,0,4%]", err_of(mg.image.save, path, mg.zeros({3, 0, 4}, "uint8")))
    assert.matches("image.save: expected a tensor %[C, H, W%] as argument 2, got string",
                   err_of(mg.image.save, path, "pixels"))
    assert.equal(before, shell.read_file(path))
    assert.matches("image.save: " .. plain(tmp) .. ": is a directory, not a regular file",
                   err_of(mg.image.save, tmp, mg.zeros({1, 2, 2}, "uint8")))
    local fifo = tmp_file("out.png")
    os.remove(fifo)
    assert(os.execute("mkfifo " .. q(fifo)))
    local held = assert(io.open(fifo, "r+"))
    assert.matches("is a FIFO %(named pipe%), not a regular file; nothing was written",
                   err_of(mg.image.save, fifo, mg.zeros({1, 2, 2}, "uint8")))
    held:close()
    assert.matches("image.save: the path contains a NUL byte",
                   err_of(mg.image.save, path .. "\0x", mg.zeros({1, 2, 2}, "uint8")))
  end)

  -- Pillow reading our files is checked where Debian's python3-pil is
  -- installed (the fixtures' generator needs it); the specs never depend on
  -- it otherwise.
  it("writes files Pillow reads as the same pixels", function()
    local why = peers.missing("PIL, numpy", "python3-pil", "Pillow's reading of our PNGs")
    if why then pending(why) return end
    local cases = {}
    for c, name in ipairs {"gray8.png", "la8.png", "rgb420.jpg", "rgba8.png"} do
      local t = mg.image.load(DIR .. name)
      local path = tmp_file("pil" .. c .. ".png")
      mg.image.save(path, t)
      cases[#cases + 1] = {path, t}
    end
    local float = mg.image.load(DIR .. "rgb8.png"):float() / 255
    mg.image.save(tmp_file("pilf.png"), float)
    cases[#cases + 1] = {tmp_file("pilf.png"), mg.image.load(DIR .. "rgb8.png")}
    local script = "import sys, numpy as np\nfrom PIL import Image\n"
      .. "for p in sys.argv[1:]:\n"
      .. "    a = np.asarray(Image.open(p))\n"
      .. "    a = a[..., None] if a.ndim == 2 else a\n"
      .. "    print(' '.join(map(str, a.transpose(2, 0, 1).reshape(-1))))\n"
    local args = {}
    for _, c in ipairs(cases) do args[#args + 1] = q(c[1]) end
    local out, err, rc = shell.run("/usr/bin/python3 -c " .. q(script) .. " " .. table.concat(args, " "))
    assert.equal(0, rc, err)
    local k = 0
    for line in out:gmatch("[^\n]+") do
      k = k + 1
      local got = {}
      for v in line:gmatch("%d+") do got[#got + 1] = tonumber(v) end
      assert.same(cases[k][2]:reshape(-1):totable(), got, cases[k][1])
    end
    assert.equal(#cases, k)
  end)
end)
