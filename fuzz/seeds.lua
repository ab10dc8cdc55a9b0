-- Writes the seed corpora of the fuzz harnesses into fuzz/corpus/<harness>/:
-- small valid files and nearly-valid ones (one field off, truncated) that
-- start the fuzzer next to the readers' interesting branches. Run from the
-- repository root with `build/moongrad fuzz/seeds.lua`; the output is
-- committed, so this only needs running again to change the seeds.
local mg = require "moongrad"

local function write(harness, name, bytes)
  os.execute("mkdir -p fuzz/corpus/" .. harness)
  local f = assert(io.open(("fuzz/corpus/%s/%s"):format(harness, name), "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- ---- safetensors: files moongrad writes, then hand-made headers ------------
local tmp = os.tmpname()
mg.save(tmp, {w = mg.tensor({{1, 2, 3}, {4, 5, 6}}), b = mg.tensor({0.5}, "float64"),
              i = mg.tensor({7, -8}, "int64"), e = mg.zeros({0, 3})},
        {epoch = "3", note = "seed"})
local real = read(tmp)
write("safetensors", "moongrad-saved", real)
mg.save(tmp, {s = mg.tensor(2.5)}) -- a 0-d tensor
write("safetensors", "scalar", read(tmp))
os.remove(tmp)
write("safetensors", "truncated", real:sub(1, #real - 5))
write("safetensors", "header-only", real:sub(1, 8 + string.unpack("<I8", real)))

local function st(header, data)
  return string.pack("<I8", #header) .. header .. (data or "")
end
write("safetensors", "f16-bf16-u8", st(
  '{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},' ..
  '"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]},' ..
  '"c":{"dtype":"U8","shape":[2],"data_offsets":[6,8]},' ..
  '"d":{"dtype":"BOOL","shape":[1],"data_offsets":[8,9]}}',
  "\0\60\0\188\128\63\1\255\1"))
write("safetensors", "ints", st(
  '{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1]},' ..
  '"b":{"dtype":"I16","shape":[1],"data_offsets":[1,3]},' ..
  '"c":{"dtype":"I32","shape":[1],"data_offsets":[3,7]},' ..
  '"d":{"dtype":"U16","shape":[1],"data_offsets":[7,9]},' ..
  '"e":{"dtype":"U32","shape":[1],"data_offsets":[9,13]},' ..
  '"f":{"dtype":"U64","shape":[1],"data_offsets":[13,21]}}',
  ("\255"):rep(21)))
write("safetensors", "overlap", st(
  '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' ..
  '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', ("\0"):rep(8)))
write("safetensors", "hole", st(
  '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', ("\0"):rep(8)))
write("safetensors", "huge-shape", st(
  '{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'))
write("safetensors", "negative", st(
  '{"a":{"dtype":"F64","shape":[-1],"data_offsets":[8,0]},"__metadata__":{"k":1}}'))
write("safetensors", "f8", st(
  '{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', "\0"))
write("safetensors", "length-past-file", string.pack("<I8", 1 << 40) .. "{}")
write("safetensors", "padded", st('{}        '))
-- Many metadata keys (400, a 3 KB seed: libFuzzer sizes its inputs from the
-- corpus): the duplicate-key check once compared each key with every
-- earlier one (100k keys took 32 s); and one key given twice among many.
-- (A FIFO, the other small input that hung mg.load, cannot be a corpus
-- file: spec/file_writes_spec.lua covers it.)
local keys = {}
for i = 1, 400 do keys[i] = ('"%x":""'):format(i) end
write("safetensors", "metadata-400-keys", st('{"__metadata__":{' .. table.concat(keys, ",") .. '}}'))
write("safetensors", "metadata-duplicate-key", st(
  '{"__metadata__":{"a":"1","b":"2","c":"3","d":"4","b":"5","e":"6"}}'))

-- ---- IDX: byte 0 is the harness's options, then the file -------------------
local function idx(opts, code, dims, data)
  local s = string.char(opts, 0, 0, code, #dims)
  for _, d in ipairs(dims) do s = s .. string.pack(">I4", d) end
  return s .. data
end
write("idx", "ubyte-2x3", idx(0, 0x08, {2, 3}, "\0\1\2\3\4\255"))
write("idx", "ubyte-scaled-f64", idx(6, 0x08, {3}, "\0\128\255"))
write("idx", "byte", idx(1, 0x09, {2}, "\127\128"))
write("idx", "short", idx(0, 0x0B, {2}, string.pack(">i2>i2", -3, 300)))
write("idx", "int-i64", idx(3, 0x0C, {2, 1}, string.pack(">i4>i4", -7, 1 << 30)))
write("idx", "float", idx(0, 0x0D, {1}, string.pack(">f", 1.5)))
write("idx", "double", idx(2, 0x0E, {2}, string.pack(">d>d", -0.25, 1e300)))
write("idx", "labels-1d", idx(3, 0x08, {4}, "\0\9\3\1"))
write("idx", "empty-dim", idx(0, 0x08, {0, 5}, ""))
write("idx", "truncated", idx(0, 0x0D, {2, 2}, string.pack(">f>f", 1, 2)))
write("idx", "trailing", idx(0, 0x08, {1}, "\1\2"))
write("idx", "bad-type", idx(0, 0x07, {1}, "\1"))
write("idx", "huge-dims", idx(0, 0x08, {65536, 65536, 65536}, "\1"))
write("idx", "too-many-dims", idx(0, 0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}, "\1"))
-- bytes as one gzip member (gzip -9n: no name, no time stamp).
local function gzip(bytes)
  local plain = os.tmpname()
  local f = assert(io.open(plain, "wb"))
  f:write(bytes)
  f:close()
  local gz = assert(io.popen("gzip -9nc " .. plain, "r"))
  local out = gz:read("a")
  gz:close()
  os.remove(plain)
  return out
end
local ubyte_gz = gzip(idx(0, 0x08, {2, 3}, "\0\1\2\3\4\255"):sub(2))
write("idx", "ubyte-gzip", "\0" .. ubyte_gz)
-- The trailer (CRC-32, then the length) cut or wrong: each must fail.
write("idx", "gzip-trailer-cut", "\0" .. ubyte_gz:sub(1, -4))
write("idx", "gzip-no-trailer", "\0" .. ubyte_gz:sub(1, -9))
write("idx", "gzip-wrong-length", "\0" .. ubyte_gz:sub(1, -5) .. string.pack("<I4", 2 * 3 + 12 + 1))
-- Bombs of about 16 KB: dims of 16 Mi elements (64 MiB as float32, past
-- the harness's 32 MiB limit) with their zeros; a 2-element file followed
-- by 16 MiB of trailing zeros (one chunk of them is enough to refuse it).
write("idx", "gzip-bomb-dims", "\0" .. gzip(idx(0, 0x08, {4096, 4096}, ("\0"):rep(1 << 24)):sub(2)))
write("idx", "gzip-bomb-trailing", "\0" .. gzip(idx(0, 0x08, {2}, ("\0"):rep(1 << 24)):sub(2)))

-- ---- CSV: byte 0 is the options (header, delimiter, dtype), then the file ---
-- bits 0-1: header guess/0/1; bits 2-3: ',' ';' tab space; bit 4: float64.
write("csv", "header-guess", "\0" .. "x,y,label\n1,2,0\n3.5,-4e3,1\n")
write("csv", "quoted-header", "\2" .. '"a b","c,d",e\r\n1,2,3\r\n')
write("csv", "no-header-f64", "\17" .. "1,2\n\n3,4\nnan,inf\n")
write("csv", "empty-fields", "\1" .. "1,,3\n,,\n")
write("csv", "semicolon", "\5" .. "a;b\n 1 ; 2 \n")
write("csv", "tab", "\9" .. "1\t2\t3\n4\t5\t6\n")
write("csv", "space", "\13" .. "1 2\n3 4\n")
write("csv", "ragged", "\0" .. "1,2,3\n4,5\n")
write("csv", "not-a-number", "\2" .. "h1,h2\n1,abc\n")
write("csv", "header-only", "\2" .. '"only","names"\n')
write("csv", "unterminated-quote", "\2" .. '"a,b\n1,2\n')
write("csv", "empty", "\0")
write("csv", "hex-and-signs", "\1" .. "0x10,+1,-.5e-3,1e400\n")
-- What strtod reads but a CSV of decimal numbers only holds by mistake.
write("csv", "not-decimal", "\1" .. "-0X1p3,nan(1),1e,1e+,.,-,1.2.3,infinit,\v1\n")
write("csv", "specials", "\17" .. "inf,-Infinity,+NaN,nan, 12 ,\"7\"\n")
write("csv", "bom-numeric", "\1" .. "\239\187\191" .. "1,2\n3,4\n")
write("csv", "bom-header", "\0" .. "\239\187\191" .. "x,y\n1,2\n")
write("csv", "utf16", "\0" .. "\255\254a\0,\0b\0\n\0")
write("csv", "cr-only", "\0" .. "a,b\r1,2\r3,4\r")
write("csv", "mixed-line-ends", "\1" .. "1,2\r\n3,4\r5,6\n\r7,8")
write("csv", "nul-in-cell", "\0" .. "a,b\n1,2\n3\0009,4\n")
write("csv", "after-quote", "\2" .. "a,b\n\"1\"5,2\n")
local csv_gz = gzip(("1,2\n"):rep(100))
write("csv", "gzip-trailer-cut", "\1" .. csv_gz:sub(1, -4))
-- Bombs past the CSV harness's 1 MiB limit: 512 KiB of short lines in 2
-- gzip members (zlib reads them as one stream; as float64 their numbers
-- take 2 MiB), and one 256 KiB line (its cells alone take 2 MiB).
write("csv", "gzip-bomb-lines", "\17" .. gzip(("0,0,0,0,0,0,0,0\n"):rep(1 << 14)):rep(2))
write("csv", "gzip-bomb-one-line", "\1" .. gzip(("0,"):rep(1 << 17)))

-- ---- lua: bytes the harness decodes into calls -------------------------------
-- A fixed generator, so the seeds are the same on every run.
local state = 12345
local function bytes(n)
  local t = {}
  for i = 1, n do
    state = (state * 1103515245 + 12345) % 2147483648
    t[i] = string.char(state >> 16 & 255)
  end
  return table.concat(t)
end
for i = 1, 8 do write("lua", ("random-%d"):format(i), bytes(64 * i)) end
-- Hand-made: statement (slot, kind, op, args...) bytes that build a tensor
-- from a nested table, view it and write through the view.
write("lua", "tensor-view-write",
  "\0\1\0\5\9\1\1\1" .. "\1\1\3\2\2\0\3\3" .. "\1\1\5\2\0\3\2\3\3" .. "\1\1\12\2\1\3")

-- ---- image: the PNG and JPEG fixtures (spec/fixtures/images) -----------------
-- Byte 0 as image_fuzz.c reads it: the mode in bits 0-1, 4 for a file, 8
-- for the header only. Each valid file once (its byte 0 cycling through
-- the choices), then broken ones: cut, a flipped CRC or data byte, a header
-- that asks for too many pixels or none.
local images = "spec/fixtures/images/"
local index = dofile(images .. "index.lua")
local kept = {}
for i, v in ipairs(index) do
  local bytes_ = read(images .. v[1])
  if #bytes_ <= 6000 then
    write("image", v[1], string.char((i - 1) % 8) .. bytes_)
    kept[v[1]] = bytes_
  end
end
for _, f in ipairs {"bomb_100000_100000.png", "zero_width.png", "bomb_60000_60000.jpg", "cmyk.jpg"} do
  write("image", "bad-" .. f, "\0" .. read(images .. "bad/" .. f))
end
local function flip(s, at) return s:sub(1, at - 1) .. string.char(s:byte(at) ~ 0x55) .. s:sub(at + 1) end
for _, f in ipairs {"rgb8_adam7.png", "pal4_trns_adam7.png", "prog420.jpg", "rgb422.jpg", "gray.jpg"} do
  local s = kept[f]
  write("image", "cut-half-" .. f, "\2" .. s:sub(1, #s // 2))
  write("image", "cut-end-" .. f, "\6" .. s:sub(1, #s - 3))
  write("image", "flipped-" .. f, "\3" .. flip(s, #s * 2 // 3))
end
local png = kept["gray8.png"]
local idat = png:find("IDAT", 1, true)
write("image", "bad-crc-IDAT-gray8.png", "\1" .. flip(png, idat + 4 + string.unpack(">I4", png, idat - 4)))
