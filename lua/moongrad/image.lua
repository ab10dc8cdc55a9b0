-- moongrad.image, published as mg.image: PNG and JPEG files to and from
-- uint8 tensors [C, H, W], through Debian's libpng and libjpeg-turbo
-- (runtime/io_image.c; the contract is in runtime/mg_image.h).
--
--   local img = mg.image.load("cat.jpg", {mode = "RGB"})  -- uint8 [3, H, W]
--   mg.image.save("out.png", img)                          -- or floats in [0, 1]
--   mg.image.info("cat.jpg")  --> {width =, height =, channels =, format = "JPEG"}
--   mg.image.decode(bytes [, {mode =, name =}])            -- from a string
--   mg.image.encode(img)  --> the PNG save would write, as a string
--
-- load's modes convert as Pillow's Image.convert does (L from RGB is
-- (19595 R + 38470 G + 7471 B + 32768) >> 16); without a mode the image
-- keeps the file's channels (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA; a
-- palette gives RGB, or RGBA when it has transparency). The pixels equal
-- Pillow 9.4's, except that a 16-bit gray PNG gives its high bytes where
-- Pillow's convert clips them to 255.
--
-- Like Pillow's decompression-bomb guard, an image with more than
-- mg.image.max_pixels pixels (width * height; 178956970 by default,
-- Pillow's error threshold) is refused from its header, before any pixel
-- memory is allocated; mg.image.set_max_pixels(n) changes the limit for
-- this Lua state (0 turns it off) and returns the previous one.
local core = require "moongrad.core"

local error, rawset, setmetatable = error, rawset, setmetatable
local max_pixels = core._image_max_pixels

local image = {
  load = core._image_load,
  decode = core._image_decode,
  info = core._image_info,
  save = core._image_save,
  encode = core._image_encode,
  set_max_pixels = core._image_set_max_pixels,
}

-- image.max_pixels reads the limit; set_max_pixels, which checks the
-- value, is the only way to change it.
return setmetatable(image, {
  __index = function(_, k)
    if k == "max_pixels" then return max_pixels() end
  end,
  __newindex = function(t, k, v)
    if k == "max_pixels" then
      error("image.max_pixels: set it with mg.image.set_max_pixels(n)", 2)
    end
    rawset(t, k, v)
  end,
})
