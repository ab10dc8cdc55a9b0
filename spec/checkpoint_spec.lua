-- Checkpoints: mg.save / mg.load (safetensors files, runtime/safetensors.c)
-- and moongrad.checkpoint (whole training states). Round trips of every
-- dtype and layout, the file layout other frameworks read, a file written
-- the way Hugging Face's safetensors writes one (spec/fixtures/
-- gen_safetensors.py), corrupt files that must fail cleanly, atomic writes
-- under injected failures, and exact resumption of training.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local data = require "moongrad.data"
local checkpoint = require "moongrad.checkpoint"
local codec = require "moongrad.json"
local json = require "dkjson"

local FIXTURE = "spec/fixtures/interop.safetensors"

-- Helpers ---------------------------------------------------------------------

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p '" .. tmpdir .. "'"))
local function tmp(name) return tmpdir .. "/" .. name end

local function read_bytes(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write_bytes(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Files in tmpdir whose name contains pattern (plain).
local function leftovers(pattern)
  local p = io.popen("ls -a '" .. tmpdir .. "'")
  local out = {}
  for name in p:lines() do
    if name:find(pattern, 1, true) then out[#out + 1] = name end
  end
  p:close()
  return out
end

-- Deep equality where nan equals nan and -0.0 differs from 0.0 (in floats).
local function same_value(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false end
    if a ~= a then return b ~= b end
    if a == 0 and math.type(a) == "float" then return 1 / a == 1 / b end
    return a == b
  end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not same_value(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function same_tensor(a, b)
  if a:dtype() ~= b:dtype() then return false end
  if table.concat(a:shape(), ",") ~= table.concat(b:shape(), ",") then return false end
  if a:numel() == 0 then return true end
  return same_value(a:totable(), b:totable())
end

-- The header of a safetensors file as a Lua table, and the data offset.
local function header_of(path)
  local s = read_bytes(path)
  local n = string.unpack("<I8", s)
  return json.decode(s:sub(9, 8 + n)), 8 + n, s
end

-- A safetensors file from a header table (or raw header text) and data.
local function craft(path, header, body)
  local text = type(header) == "string" and header or json.encode(header)
  write_bytes(path, string.pack("<I8", #text) .. text .. (body or ""))
end

local function load_error(path)
  local ok, err = pcall(mg.load, path)
  assert.is_false(ok, "expected load to fail")
  return err
end

-- mg.save / mg.load -------------------------------------------------------------

describe("mg.save and mg.load", function()
  it("round trip float32, float64 and int64 tensors exactly, specials included", function()
    local path = tmp("dtypes.safetensors")
    local t = {
      f32 = mg.tensor({{1.5, -2.25, 1e-30}, {3.4e38, 0.1, -7}}, "float32"),
      f64 = mg.tensor({0.1, 1 / 3, -1e300, 5e-324, math.pi}, "float64"),
      i64 = mg.tensor({math.maxinteger, math.mininteger, 0, -1, 9007199254740993}, "int64"),
      specials = mg.tensor({math.huge, -math.huge, 0 / 0, -0.0}, "float64"),
    }
    mg.save(path, t)
    local back = mg.load(path)
    for name, x in pairs(t) do
      assert.is_true(same_tensor(x, back[name]), name)
    end
    local i = back.i64:totable()
    assert.are.equal(math.maxinteger, i[1])
    assert.are.equal(math.mininteger, i[2])
    assert.are.equal(9007199254740993, i[5])
  end)

  it("round trip 0-d and empty tensors", function()
    local path = tmp("shapes.safetensors")
    local t = {
      scalar = mg.tensor(2.5, "float64"),
      iscalar = mg.tensor(7, "int64"),
      empty = mg.zeros(0),
      empty2d = mg.zeros(3, 0, 2):to("int64"),
    }
    mg.save(path, t)
    local back = mg.load(path)
    assert.are.same({}, back.scalar:shape())
    assert.are.equal(2.5, back.scalar:item())
    assert.are.equal(7, back.iscalar:item())
    assert.are.same({0}, back.empty:shape())
    assert.are.same({3, 0, 2}, back.empty2d:shape())
    assert.are.equal("int64", back.empty2d:dtype())
  end)

  it("write non-contiguous views as their elements in row-major order", function()
    local path = tmp("views.safetensors")
    local base = mg.arange(0, 24, 1, "float64"):reshape(2, 3, 4)
    local t = {
      transposed = base:transpose(1, 3),
      narrowed = base:narrow(3, 2, 2),
      expanded = mg.tensor({1, 2, 3}, "int64"):reshape(3, 1):expand(3, 4),
      grad_view = mg.randn(3, 4):requires_grad():transpose(1, 2),
    }
    assert.is_false(t.transposed:is_contiguous())
    mg.save(path, t)
    local back = mg.load(path)
    for name, x in pairs(t) do
      assert.is_true(same_tensor(x:detach():contiguous(), back[name]), name)
      assert.is_true(back[name]:is_contiguous())
    end
  end)

  it("round trip a big-ish tensor (4M float32, 16 MB)", function()
    local path = tmp("big.safetensors")
    mg.manual_seed(3)
    local x = mg.randn(2048, 2048)
    mg.save(path, {x = x})
    local y = mg.load(path).x
    assert.are.equal(0, (x - y):abs():max():item())
    assert.are.equal(8 + select(2, header_of(path)) - 8 + 2048 * 2048 * 4,
                     #read_bytes(path))
  end)

  it("round trip metadata, and give an empty table when there is none", function()
    local path = tmp("meta.safetensors")
    local meta = {format = "pt", empty = "", unicode = "héllo ✓ 𝄞",
                  quotes = "a \"quoted\" \\ back\nslash", json = '{"a": [1, 2]}'}
    mg.save(path, {x = mg.ones(2)}, meta)
    local t, m = mg.load(path, {metadata = true})
    assert.are.same(meta, m)
    assert.are.equal(1, select("#", mg.load(path)))
    assert.are.same({1, 1}, t.x:totable())
    mg.save(path, {x = mg.ones(2)})
    local _, m2 = mg.load(path, {metadata = true})
    assert.are.same({}, m2)
    mg.save(path, {})
    local t3, m3 = mg.load(path, {metadata = true})
    assert.are.same({}, t3)
    assert.are.same({}, m3)
  end)

  it("load a module's state dict as DESIGN.md shows: net:load_state_dict(mg.load(path))", function()
    local path = tmp("net.safetensors")
    local net, net2 = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    mg.save(path, net:state_dict(), {format = "pt"}) -- metadata must not get in the way
    net2:load_state_dict(mg.load(path))
    for name, t in pairs(net:state_dict()) do
      assert.is_true(same_tensor(t, net2:state_dict()[name]), name)
    end
  end)

  it("write the public layout: LE length, padded JSON header, contiguous sorted offsets", function()
    local path = tmp("layout.safetensors")
    mg.save(path, {b = mg.ones(2, 3), a = mg.zeros(4, "float64"), c = mg.tensor({5}, "int64")},
            {note = "x"})
    local h, data_start, s = header_of(path)
    assert.are.equal(0, data_start % 8)
    assert.are.same({note = "x"}, h.__metadata__)
    assert.are.same({dtype = "F64", shape = {4}, data_offsets = {0, 32}}, h.a)
    assert.are.same({dtype = "F32", shape = {2, 3}, data_offsets = {32, 56}}, h.b)
    assert.are.same({dtype = "I64", shape = {1}, data_offsets = {56, 64}}, h.c)
    assert.are.equal(data_start + 64, #s)
    assert.are.equal(1.0, (string.unpack("<f", s, data_start + 33)))
    assert.are.equal(5, (string.unpack("<i8", s, data_start + 57)))
  end)

  it("refuse bad arguments with messages naming the problem", function()
    local path = tmp("bad.safetensors")
    local function err(...)
      local ok, e = pcall(mg.save, ...)
      assert.is_false(ok)
      return e
    end
    assert.matches("'x' must be a tensor, got number", err(path, {x = 1}))
    assert.matches("names must be strings", err(path, {mg.ones(1)}))
    assert.matches("'__metadata__' is reserved", err(path, {__metadata__ = mg.ones(1)}))
    assert.matches("metadata value of 'k' must be a string", err(path, {}, {k = 1}))
    assert.matches("not valid UTF%-8", err(path, {["\xff"] = mg.ones(1)}))
    assert.matches("not valid UTF%-8", err(path, {}, {k = "\xc3"}))
    assert.matches("a tensor name is empty", err(path, {[""] = mg.ones(1)}))
    assert.matches("expects a table", err(path, nil))
    assert.is_false(exists(path))
  end)

  -- A header the loader refuses (MG_SAFETENSORS_MAX_HEADER) must be refused
  -- by the save: a fit checkpoint with a long history saved, then could not
  -- be loaded back.
  it("refuse metadata past the loaders' 100 MB header limit, naming the file and the sizes", function()
    local path = tmp("big-meta.safetensors")
    mg.save(path, {w = mg.ones(2)}, {version = "old"})
    local ok, e = pcall(mg.save, path, {w = mg.ones(2)}, {history = string.rep("x", 100000000)})
    assert.is_false(ok)
    assert.are.equal(("save: %s: the header would be at least 100000008 bytes (its metadata's keys "
                      .. "and values: 100000007 bytes), more than the 100000000 bytes a safetensors "
                      .. "reader accepts; nothing was written"):format(path), e)
    -- under the limit as text, over it once JSON escapes each quote as \"
    ok, e = pcall(mg.save, path, {w = mg.ones(2)}, {history = string.rep('"', 50000000)})
    collectgarbage()
    assert.is_false(ok)
    assert.is_truthy(e:find(("save: %s: the header would be 1000000"):format(path), 1, true), e)
    assert.is_truthy(e:find("(its metadata's keys and values: 50000007 bytes), more than the "
                            .. "100000000 bytes", 1, true), e)
    local _, m = mg.load(path, {metadata = true})
    assert.are.same({version = "old"}, m)
    assert.are.same({}, leftovers(".tmp-"))
  end)

  it("name the file and the tensor when it does not fit in the memory limit", function()
    local path = tmp("limit.safetensors")
    mg.save(path, {w = mg.zeros(1000, 1000)})
    mg.set_memory_limit(1000000)
    local ok, e = pcall(mg.load, path)
    mg.set_memory_limit(0)
    assert.is_false(ok)
    assert.is_truthy(e:find(("load: %s: tensor 'w': not enough memory for a tensor of 4000000 bytes")
                            :format(path), 1, true), e)
    -- saving a view copies it first: that copy too
    local v = mg.zeros(1000, 1000):t()
    mg.set_memory_limit(v:numel() * 4 + 1000)
    ok, e = pcall(mg.save, path, {v = v})
    mg.set_memory_limit(0)
    assert.is_false(ok)
    assert.is_truthy(e:find(("save: %s: tensor 'v': not enough memory for a tensor of 4000000 bytes")
                            :format(path), 1, true), e)
  end)
end)

-- interop -----------------------------------------------------------------------

describe("reading files written by other frameworks", function()
  it("reads a file laid out like safetensors.torch.save_file, converting dtypes", function()
    local t, m = mg.load(FIXTURE, {metadata = true})
    assert.are.same({format = "pt", source = "gen_safetensors.py"}, m)
    local f32 = function(x) return (string.unpack("<f", string.pack("<f", x))) end
    assert.are.equal("float32", t["linear.weight"]:dtype())
    assert.are.same({{0.5, -1.25, 3.0}, {f32(1e-3), -2.5e7, 0.0}}, t["linear.weight"]:totable())
    assert.are.same({0.25, -0.75}, t["linear.bias"]:totable())
    assert.are.equal("float64", t.scale:dtype())
    assert.are.same({}, t.scale:shape())
    assert.are.equal(math.pi, t.scale:item())
    assert.are.same({1, -2, 9007199254740993, math.mininteger}, t.steps:totable())
    assert.are.same({{1, -7}, {2147483647, -2147483648}}, t.ids32:totable())
    assert.are.same({-32768, 5, 32767}, t.ids16:totable())
    assert.are.same({-128, 0, 127}, t.ids8:totable())
    assert.are.same({{0, 128, 255}}, t.pixels:totable())
    assert.are.same({1, 0, 1}, t.mask:totable())
    for _, k in ipairs({"ids32", "ids16", "ids8", "mask"}) do
      assert.are.equal("int64", t[k]:dtype())
    end
    assert.are.equal("uint8", t.pixels:dtype()) -- U8 stays U8 (a re-save keeps it)
    assert.are.equal("float32", t.half:dtype())
    assert.are.same({1.0, -2.5, 65504.0, 2 ^ -24, 0.0}, t.half:totable())
    assert.are.same({1.0, -3.0, 0.15625, 256.0}, t.brain:totable())
    assert.are.same({0, 4}, t.empty:shape())
  end)

  it("says 'unsupported dtype' for dtypes it cannot convert", function()
    local path = tmp("f8.safetensors")
    craft(path, {x = {dtype = "F8_E4M3", shape = {2}, data_offsets = {0, 2}}}, "\1\2")
    assert.matches("tensor 'x': unsupported dtype 'F8_E4M3'", load_error(path))
  end)

  it("accepts a header padded with spaces and keys in any order", function()
    local path = tmp("padded.safetensors")
    local h = '{"x":{"data_offsets":[0,8],"shape":[2],"dtype":"F32"}}     '
    craft(path, h, string.pack("<ff", 1.5, -2))
    assert.are.same({1.5, -2}, mg.load(path).x:totable())
  end)
end)

-- corrupt files -----------------------------------------------------------------

describe("loading a corrupt or truncated file", function()
  local path = tmp("corrupt.safetensors")
  local good = {x = {dtype = "F32", shape = {2}, data_offsets = {0, 8}}}
  local body = string.pack("<ff", 1, 2)

  it("names the file and says the header length exceeds the file", function()
    write_bytes(path, string.pack("<I8", 1234) .. string.rep(" ", 92))
    assert.are.equal("load: " .. path .. ": truncated: header says 1234 bytes, the file has 100",
                     load_error(path))
  end)

  it("explains each kind of damage", function()
    local cases = {
      {"", "truncated: the file has 0 bytes"},
      {"\1\0\0", "truncated: the file has 3 bytes"},
      {string.pack("<I8", 0), "does not start with '{'"},
      {string.pack("<I8", 4) .. "[1] ", "does not start with '{'"},
      {string.pack("<I8", 2^62), "truncated: header says 4611686018427387904 bytes"},
      {string.pack("<I8", 5) .. '{"x":', "invalid JSON in the header"},
      {string.pack("<I8", 6) .. '{} {} ', "unexpected bytes after the JSON header"},
    }
    for _, c in ipairs(cases) do
      write_bytes(path, c[1])
      local e = load_error(path)
      assert.matches("^load: " .. path:gsub("%p", "%%%0") .. ": ", e)
      assert.is_truthy(e:find(c[2], 1, true), e .. " (expected: " .. c[2] .. ")")
    end
    local headers = {
      {{x = {dtype = "Q32", shape = {2}, data_offsets = {0, 8}}}, body, "unsupported dtype 'Q32'"},
      {{x = {shape = {2}, data_offsets = {0, 8}}}, body, "missing or non-string dtype"},
      {{x = {dtype = "F32", shape = {3}, data_offsets = {0, 8}}}, body, "needs a different number of bytes"},
      {{x = {dtype = "F32", shape = {-2}, data_offsets = {0, 8}}}, body, "shape entry 1 is not a non-negative integer"},
      {{x = {dtype = "F32", shape = {1.5}, data_offsets = {0, 8}}}, body, "shape entry 1"},
      {{x = {dtype = "F32", shape = "2", data_offsets = {0, 8}}}, body, "non-array shape"},
      {{x = {dtype = "F32", shape = {2}, data_offsets = {8, 0}}}, body, "end before they begin"},
      {{x = {dtype = "F32", shape = {2}, data_offsets = {0}}}, body, "two non-negative integers"},
      {{x = {dtype = "F32", shape = {2}, data_offsets = {0, 8}}}, body .. "xx", "unindexed bytes at the end"},
      {{x = {dtype = "F32", shape = {4}, data_offsets = {0, 16}}}, body, "truncated: the tensors cover 16 bytes"},
      {{x = {dtype = "F32", shape = {1}, data_offsets = {4, 8}}}, body, "a hole in the data"},
      {{x = {dtype = "F32", shape = {2}, data_offsets = {0, 8}},
        y = {dtype = "F32", shape = {1}, data_offsets = {4, 8}}}, body, "overlapping tensors"},
      {{x = {dtype = "F32", shape = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2},
             data_offsets = {0, 8}}}, body, "17 dimensions"},
      {{x = {dtype = "F32", shape = {2 ^ 40, 2 ^ 40}, data_offsets = {0, 8}}}, body, "too many bytes"},
      {{__metadata__ = {a = 1}}, "", "__metadata__ entry 'a' is not a string"},
      {{__metadata__ = "x"}, "", "__metadata__ must be an object"},
      {{x = 3}, "", "tensor 'x': expected an object"},
      {'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' ..
       '"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', body, "tensor 'x' appears twice"},
      {'{"__metadata__":{},"__metadata__":{}}', "", "__metadata__ appears twice"},
      {'{"__metadata__":{"k":"a","k":"b"}}', "", "__metadata__ has key 'k' twice"},
      {{x = {dtype = "U64", shape = {1}, data_offsets = {0, 8}}}, string.rep("\255", 8),
       "U64 element 1 does not fit in int64"},
    }
    for i, c in ipairs(headers) do
      craft(path, c[1], c[2])
      local e = load_error(path)
      assert.is_truthy(e:find("load: " .. path .. ": ", 1, true), e)
      assert.is_truthy(e:find(c[3], 1, true), ("case %d: %s (expected: %s)"):format(i, e, c[3]))
    end
  end)

  -- Each key was compared with every earlier one: 100k keys took 32 s,
  -- 400k minutes. In a child process, whose time limit is only a safety net.
  it("loads 400,000 metadata keys (a 5 MB file) without a quadratic duplicate check", function()
    local meta_path = tmp("many-keys.safetensors")
    local keys = {}
    for i = 1, 400000 do keys[i] = ('"k%d":"v%d"'):format(i, i) end
    craft(meta_path, '{"__metadata__":{' .. table.concat(keys, ",") .. '}}')
    keys = nil
    local script = tmp("many-keys.lua")
    write_bytes(script, ([[
      local mg = require "moongrad"
      local _, m = mg.load(%q, {metadata = true})
      local n = 0
      for _ in pairs(m) do n = n + 1 end
      print(n, m.k1, m.k400000)
    ]]):format(meta_path))
    local p = io.popen("timeout 60 lua5.4 '" .. script .. "' 2>&1")
    local out = p:read("a")
    p:close()
    assert.are.equal("400000\tv1\tv400000\n", out)
  end)

  it("finds a metadata key given twice among 20,000", function()
    local keys = {}
    for i = 1, 20000 do keys[i] = ('"k%d":"v"'):format(i) end
    keys[#keys + 1] = '"k777":"again"'
    craft(path, '{"__metadata__":{' .. table.concat(keys, ",") .. '}}')
    assert.are.equal("load: " .. path .. ": __metadata__ has key 'k777' twice", load_error(path))
  end)

  it("says which file is missing or is a directory", function()
    assert.are.equal("load: " .. tmp("nope") .. ": cannot open: No such file or directory",
                     load_error(tmp("nope")))
    assert.matches("not a regular file", load_error(tmpdir))
  end)

  it("never crashes on random byte flips and truncations (2000 mutants)", function()
    local src = tmp("fuzz-src.safetensors")
    mg.save(src, {w = mg.randn(3, 4), b = mg.tensor({1, 2, 3}, "int64"),
                  s = mg.tensor(1.0, "float64"), e = mg.zeros(0, 2)}, {k = "v"})
    local orig = read_bytes(src)
    local header_end = select(2, header_of(src))
    local rng = {state = 12345}
    local function rand(n)  -- a small LCG, independent of mg's generator
      rng.state = (rng.state * 6364136223846793005 + 1442695040888963407)
      return ((rng.state >> 33) % n) + 1
    end
    local loaded, failed = 0, 0
    for i = 1, 2000 do
      local bytes = {orig:byte(1, -1)}
      local kind = i % 4
      if kind == 0 then                        -- truncate anywhere
        bytes = {orig:byte(1, rand(#orig) - 1)}
      else
        for _ = 1, rand(4) do                  -- flip bytes, mostly in the header
          local pos = kind == 3 and rand(#orig) or rand(header_end)
          bytes[pos] = (bytes[pos] ~ (1 << (rand(8) - 1))) & 255
        end
      end
      local s = {}
      for j = 1, #bytes, 4096 do
        s[#s + 1] = string.char(table.unpack(bytes, j, math.min(j + 4095, #bytes)))
      end
      write_bytes(path, table.concat(s))
      local ok, t, m = pcall(mg.load, path, {metadata = true})
      if ok then
        loaded = loaded + 1
        assert.are.equal("table", type(t))
        assert.are.equal("table", type(m))
      else
        failed = failed + 1
        assert.is_truthy(t:find("load: " .. path .. ": ", 1, true), t)
      end
    end
    assert.is_true(failed > 1000)
    assert.is_true(loaded > 0)     -- flips in the data region load fine
  end)
end)

-- atomic writes -----------------------------------------------------------------

describe("atomic saving", function()
  local path = tmp("atomic.safetensors")
  local old = {w = mg.ones(64, 64)}

  it("keeps the previous file intact when a write fails partway (injected)", function()
    mg.save(path, old, {version = "old"})
    local before = read_bytes(path)
    local new = {w = mg.zeros(64, 64), v = mg.randn(100)}
    for _, n in ipairs({0, 1, 7, 8, 50, 200, 4000, 16000}) do
      mg._safetensors_fail_after(n)
      local ok, err = pcall(mg.save, path, new, {version = "new"})
      assert.is_false(ok)
      assert.are.equal(("save: %s: writing failed after %d bytes: No space left on device")
                       :format(path, n), err)
      assert.are.equal(before, read_bytes(path))
      assert.are.same({}, leftovers(".tmp-"))
    end
    local _, m = mg.load(path, {metadata = true})
    assert.are.equal("old", m.version)
  end)

  it("keeps the previous file intact when the fsync finds the disk full (injected)", function()
    mg.save(path, old, {version = "old"})
    local before = read_bytes(path)
    mg._safetensors_fail_after(1e9) -- past the file's end: the fsync fails
    local ok, err = pcall(mg.save, path, {w = mg.zeros(8)})
    assert.is_false(ok)
    assert.are.equal(("save: %s: fsync of the temporary file failed: No space left on device")
                     :format(path), err)
    assert.are.equal(before, read_bytes(path))
    assert.are.same({}, leftovers(".tmp-"))
  end)

  it("keeps a training checkpoint loadable when the next one hits a full disk", function()
    local ck = tmp("full_disk.safetensors")
    mg.manual_seed(5)
    local net = nn.Linear(3, 2)
    local opt = optim.Adam(net, {lr = 0.1})
    checkpoint.save(ck, {model = net, optimizer = opt, epoch = 1, step = 10})
    local want = net.weight:clone()
    net.weight:detach():fill_(7)
    mg._safetensors_fail_after(100)
    local ok, err = pcall(checkpoint.save, ck, {model = net, optimizer = opt, epoch = 2, step = 20})
    assert.is_false(ok)
    assert.is_truthy(err:find(("checkpoint.save: %s: writing failed after 100 bytes: " ..
                               "No space left on device"):format(ck), 1, true), err)
    assert.are.same({}, leftovers(".tmp-"))
    local info = checkpoint.load(ck, {model = net, optimizer = opt})
    assert.are.same({1, 10}, {info.epoch, info.step})
    assert.are.same(want:totable(), net.weight:totable())
  end)

  it("clears the injected failure after one save", function()
    mg._safetensors_fail_after(10)
    assert.is_false(pcall(mg.save, path, old))
    mg.save(path, {w = mg.zeros(2)})
    assert.are.same({0, 0}, mg.load(path).w:totable())
    mg._safetensors_fail_after(10)
    mg._safetensors_fail_after(nil)
    mg.save(path, old)
  end)

  it("is not stopped by a directory squatting on the old temporary name <path>.tmp-<pid>", function()
    mg.save(path, old, {version = "old"})
    local pid = read_bytes("/proc/self/stat"):match("^(%d+)")
    local squat = path .. ".tmp-" .. pid
    assert(os.execute("mkdir '" .. squat .. "'"))
    local ok, err = pcall(mg.save, path, {w = mg.zeros(1)})
    os.execute("rmdir '" .. squat .. "'")
    assert.is_true(ok, err)
    assert.are.same({0}, mg.load(path).w:totable())
  end)

  it("fails cleanly in a directory that is not writable", function()
    local dir = tmp("readonly")
    assert(os.execute("mkdir -p '" .. dir .. "' && chmod 555 '" .. dir .. "'"))
    local target = dir .. "/x.safetensors"
    local probe = io.open(dir .. "/probe", "w")   -- root ignores permissions
    if probe then
      probe:close()
      os.remove(dir .. "/probe")
      target = "/proc/moongrad-checkpoint-spec.safetensors"
    end
    local ok, err = pcall(mg.save, target, old)
    os.execute("chmod 755 '" .. dir .. "'")
    assert.is_false(ok)
    assert.is_truthy(err:find("save: " .. target .. ": cannot create the temporary file", 1, true), err)
    assert.is_false(exists(target))
  end)

  it("refuses to save over a directory, creating nothing in it or beside it", function()
    local target = tmp("is-a-dir")
    assert(os.execute("mkdir -p '" .. target .. "/sub'"))
    local ok, err = pcall(mg.save, target, old)
    assert.is_false(ok)
    assert.are.equal("save: " .. target .. ": is a directory, not a regular file; nothing was "
                     .. "written", err)
    assert.are.same({}, leftovers(".tmp-"))
  end)
end)

-- the JSON codec ----------------------------------------------------------------

describe("moongrad.json", function()
  it("round trips numbers exactly, keeping integers and floats apart", function()
    local v = {1, 1.0, -0.0, 0.1, 1 / 3, 1e300, 5e-324, -2.5e-8, math.maxinteger,
               math.mininteger, 2 ^ 53 + 0.0, math.huge, -math.huge, 0 / 0, 123456789012}
    local back = codec.decode(codec.encode(v))
    assert.is_true(same_value(v, back))
    assert.are.equal("integer", math.type(back[1]))
    assert.are.equal("float", math.type(back[2]))
  end)

  it("round trips nested tables, sparse and mixed keys, and tag-like strings", function()
    local v = {
      list = {1, "two", true, {3}}, empty = {}, sparse = {[1] = "a", [3] = "c"},
      ids = {[2] = {step = 4}, [10] = {step = 5}}, mixed = {1, 2, x = "y"},
      floats = {[1.5] = "k", [true] = false}, strings = {"inf", "nan", "__float__"},
      tricky = {__float__ = "inf", other = 1}, tag_only = {__map__ = "not a map"},
    }
    assert.is_true(same_value(v, codec.decode(codec.encode(v))))
  end)

  it("writes the same text for the same value (sorted keys)", function()
    local a = codec.encode({b = 1, a = {z = 2, y = 0.5}, c = "x"})
    assert.are.equal('{"a":{"y":0.5,"z":2},"b":1,"c":"x"}', a)
  end)

  it("refuses functions, tensors, cycles and non-UTF-8 strings, naming where", function()
    local function err(v)
      local ok, e = pcall(codec.encode, v, "extra")
      assert.is_false(ok)
      return e
    end
    assert.matches("extra.f is a function", err({f = print}))
    assert.matches("extra.t is a tensor", err({t = mg.ones(1)}))
    local c = {}
    c.self = c
    assert.matches("extra.self is part of a reference cycle", err(c))
    assert.matches("not valid UTF%-8", err({s = "\xff"}))
  end)

  it("hands tensors to on_tensor and gets them back by name; a __tensor__ key stays data", function()
    local t = mg.tensor({1.5, 2.5}, "float64")
    local stored = {}
    local text = codec.encode({h = {lr = t}, user = {__tensor__ = "x"}}, "state", function(u, where)
      stored[where] = u
      return "T1"
    end)
    assert.are.same({["state.h.lr"] = t}, stored)
    local back = codec.decode(text, {T1 = t})
    assert.are.equal(t, back.h.lr)
    assert.are.same({__tensor__ = "x"}, back.user)
    assert.matches("names no tensor", select(2, codec.decode(text, {})))
    assert.matches("state.h.lr is a tensor", select(2, pcall(codec.encode, {h = {lr = t}}, "state")))
  end)

  it("reports malformed JSON instead of raising", function()
    local v, e = codec.decode("{epoch = os.exit(1)}")
    assert.is_nil(v)
    assert.is_string(e)
    assert.is_nil((codec.decode('{"__float__": "huge"}')))
  end)
end)

-- moongrad.checkpoint -------------------------------------------------------------

-- A small model with dropout (uses the RNG) and batch norm (buffers).
local function make_run(seed)
  mg.manual_seed(seed)
  local net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
                            nn.Linear(8, 3))
  local opt = optim.Adam(net, {lr = 0.01, betas = {0.9, 0.99}, weight_decay = 1e-4,
                               amsgrad = true})
  local warm = sched.LinearLR(opt, {start_factor = 0.1, total_iters = 3})
  local cos = sched.CosineAnnealingLR(opt, {T_max = 20, eta_min = 1e-4})
  local s = sched.SequentialLR(opt, {schedulers = {warm, cos}, milestones = {3}})
  return net, opt, s
end

local function train_steps(net, opt, s, n)
  net:train()
  for _ = 1, n do
    local x = mg.randn(16, 4)
    local y = mg.randint(1, 3, {16}):to("int64")
    opt:zero_grad()
    local loss = F.cross_entropy(net(x), y)
    loss:backward()
    opt:step()
    s:step()
  end
end

local function params_of(net)
  local out = {}
  for name, t in pairs(net:state_dict()) do out[name] = t:clone() end
  return out
end

describe("moongrad.checkpoint", function()
  local path = tmp("run.safetensors")

  it("resumes training exactly: model, Adam, schedulers and RNG", function()
    local threads = mg.get_num_threads()
    mg.set_num_threads(1)
    finally(function() mg.set_num_threads(threads) end)
    local net, opt, s = make_run(7)
    train_steps(net, opt, s, 5)
    checkpoint.save(path, {model = net, optimizer = opt, scheduler = s, epoch = 2, step = 5,
                           extra = {best = 0.25, note = "mid-run", tags = {"a", "b"}}})
    train_steps(net, opt, s, 7)
    local straight = params_of(net)
    local lr = opt.param_groups[1].lr

    local net2, opt2, s2 = make_run(99)           -- different init and RNG
    mg.manual_seed(12345)
    local info = checkpoint.load(path, {model = net2, optimizer = opt2, scheduler = s2})
    assert.are.same({epoch = 2, step = 5, extra = {best = 0.25, note = "mid-run",
                                                   tags = {"a", "b"}}}, info)
    train_steps(net2, opt2, s2, 7)
    local resumed = params_of(net2)
    for name, t in pairs(straight) do
      assert.is_true(same_tensor(t, resumed[name]), name)   -- exactly, not approximately
    end
    assert.are.equal(lr, opt2.param_groups[1].lr)
  end)

  it("restores optimizer groups with their numbers, booleans and tables as they were", function()
    local net, opt, s = make_run(1)
    train_steps(net, opt, s, 2)
    checkpoint.save(path, {model = net, optimizer = opt, scheduler = s})
    local net2, opt2, s2 = make_run(2)
    checkpoint.load(path, {model = net2, optimizer = opt2, scheduler = s2})
    local g, g2 = opt.param_groups[1], opt2.param_groups[1]
    for k, v in pairs(g) do
      if k ~= "params" then assert.is_true(same_value(v, g2[k]), k) end
    end
    assert.are.equal(true, g2.amsgrad)
    assert.are.same({0.9, 0.99}, g2.betas)
    assert.are.equal("integer", math.type(opt2.state[g2.params[1]].step))
    assert.is_true(same_value(s:state_dict(), s2:state_dict()))
  end)

  it("keeps inf in a scheduler's state (ReduceLROnPlateau's best)", function()
    local net = nn.Linear(2, 1)
    local opt = optim.SGD(net, {lr = 0.1, momentum = 0.9})
    local s = sched.ReduceLROnPlateau(opt, {patience = 1})
    checkpoint.save(path, {optimizer = opt, scheduler = s})
    local s2 = sched.ReduceLROnPlateau(opt, {patience = 1})
    s2.best = 0
    checkpoint.load(path, {optimizer = opt, scheduler = s2})
    assert.are.equal(math.huge, s2.best)
    assert.is_true(same_value(s:state_dict(), s2:state_dict()))
  end)

  it("resumes a shuffling DataLoader mid-epoch in the same order", function()
    local ds = data.TensorDataset(mg.arange(1, 21, 1, "int64"))
    mg.manual_seed(5)
    local loader = data.DataLoader(ds, {batch_size = 3, shuffle = true})
    local seen, rest = 0, {}
    for xb in loader:iter() do
      seen = seen + 1
      if seen == 2 then checkpoint.save(path, {loader = loader}) end
      if seen > 2 then rest[#rest + 1] = xb:totable() end
    end
    local loader2 = data.DataLoader(ds, {batch_size = 3, shuffle = true})
    mg.manual_seed(77)
    checkpoint.load(path, {loader = loader2})
    local again = {}
    for xb in loader2:iter() do again[#again + 1] = xb:totable() end
    assert.are.same(rest, again)
  end)

  it("keeps all 64 bits of the RNG state, and restore_rng = false leaves it alone", function()
    mg.set_rng_state({seed = -1, offset = math.mininteger + 5})   -- 2^64-1, 2^63+5
    checkpoint.save(path, {epoch = 1})
    local _, state = checkpoint.read(path)
    assert.are.same({seed = "18446744073709551615", offset = "9223372036854775813"}, state.rng)
    mg.manual_seed(1)
    checkpoint.load(path, {restore_rng = false})
    assert.are.same({seed = 1, offset = 0}, mg.get_rng_state())
    checkpoint.load(path)
    assert.are.same({seed = -1, offset = math.mininteger + 5}, mg.get_rng_state())
    mg.manual_seed(0)
  end)

  it("stores tensors under names any safetensors reader sees", function()
    local net, opt, s = make_run(3)
    train_steps(net, opt, s, 1)
    checkpoint.save(path, {model = net, optimizer = opt})
    local t, m = mg.load(path, {metadata = true})
    assert.is_truthy(t["model.1.weight"])
    assert.is_truthy(t["model.2.running_mean"])
    assert.is_truthy(t["optimizer.state.1.exp_avg"])
    assert.is_truthy(t["optimizer.state.1.max_exp_avg_sq"])
    assert.is_string(m["moongrad.checkpoint"])
  end)

  it("gives clear errors for files and requests that do not fit", function()
    local function err(f, ...)
      local ok, e = pcall(f, ...)
      assert.is_false(ok)
      return e
    end
    local plain = tmp("plain.safetensors")
    mg.save(plain, {x = mg.ones(1)})
    assert.matches("not a moongrad checkpoint", err(checkpoint.load, plain))
    checkpoint.save(path, {epoch = 1})
    assert.matches("holds no optimizer state",
                   err(checkpoint.load, path, {optimizer = optim.SGD(nn.Linear(1, 1), {lr = 1})}))
    assert.matches("unknown option 'modle'", err(checkpoint.save, path, {modle = 1}))
    assert.matches("model must be an object with a state_dict method",
                   err(checkpoint.save, path, {model = 3}))
    assert.matches("checkpoint.load: .*cannot open", err(checkpoint.load, tmp("missing")))
    local net = nn.Linear(2, 2)
    checkpoint.save(path, {model = net, optimizer = optim.SGD(net, {lr = 1})})
    assert.matches("holds SGD optimizer state, the optimizer is Adam",
                   err(checkpoint.load, path, {optimizer = optim.Adam(net)}))
    assert.matches("cannot restore the model: Linear: load_state_dict",
                   err(checkpoint.load, path, {model = nn.Linear(3, 2)}))
    local before = read_bytes(path)
    assert.matches("extra.cb is a function", err(checkpoint.save, path, {extra = {cb = print}}))
    assert.are.equal(before, read_bytes(path))
  end)

  it("never executes code from the file: corrupt metadata is an error, code stays a string", function()
    mg.save(path, {}, {["moongrad.checkpoint"] = "{format = os.exit(3)}"})
    local ok, e = pcall(checkpoint.load, path)
    assert.is_false(ok)
    assert.matches("checkpoint metadata is corrupt", e)
    checkpoint.save(path, {extra = {code = "os.exit(3)", more = "]]..error('x')..[["}})
    assert.are.same({code = "os.exit(3)", more = "]]..error('x')..[["},
                    checkpoint.load(path).extra)
  end)
end)

-- all or nothing -------------------------------------------------------------------

-- A copy of v where tensors are cloned and tables copied (params lists keep
-- their tensors: a group must hold the very same parameters).
local function deep(v, keep_tensors)
  if mg.is_tensor(v) then return keep_tensors and v or v:clone() end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = deep(x, keep_tensors or k == "params") end
  return out
end

-- deep() equality: tensors by value (bits), params by identity.
local function same_deep(a, b, by_identity)
  if mg.is_tensor(a) or mg.is_tensor(b) then
    if by_identity then return rawequal(a, b) end
    return mg.is_tensor(a) and mg.is_tensor(b) and same_tensor(a, b)
  end
  if type(a) ~= "table" or type(b) ~= "table" then return same_value(a, b) end
  for k, v in pairs(a) do
    if not same_deep(v, b[k], by_identity or k == "params") then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- A scheduler's fields (its sub-schedulers' too), without the optimizer.
local function sched_fields(s)
  local out = {}
  for k, v in pairs(s) do
    if k == "_schedulers" then
      out[k] = {}
      for i, sub in ipairs(v) do out[k][i] = sched_fields(sub) end
    elseif k ~= "optimizer" and type(v) ~= "function" then
      out[k] = deep(v)
    end
  end
  return out
end

-- Everything checkpoint.load may change in objs, by value and identity.
local function snapshot(objs)
  local opt, loader = objs.optimizer, objs.loader
  local snap = {rng = mg.get_rng_state(), model = deep(objs.model:state_dict()),
                group_tables = {}, groups = deep(opt.param_groups), state_table = opt.state,
                state = {}, sched = sched_fields(objs.scheduler),
                loader = {perm = loader._perm and loader._perm:clone(),
                          position = loader._position, resume = loader._resume}}
  for i, g in ipairs(opt.param_groups) do snap.group_tables[i] = g end
  for p, st in pairs(opt.state) do snap.state[p] = deep(st) end
  return snap
end

local function assert_unchanged(objs, snap, what)
  local now = snapshot(objs)
  assert.are.same(snap.rng, now.rng, what .. ": the RNG state changed")
  assert.is_true(same_deep(snap.model, now.model), what .. ": the model changed")
  assert.is_true(same_deep(snap.groups, now.groups), what .. ": the param groups changed")
  for i, g in ipairs(snap.group_tables) do
    assert.are.equal(g, objs.optimizer.param_groups[i], what .. ": a group table was replaced")
  end
  assert.are.equal(snap.state_table, objs.optimizer.state, what .. ": the state was replaced")
  for p, st in pairs(snap.state) do
    assert.is_true(same_deep(st, now.state[p]), what .. ": the optimizer state changed")
  end
  for p in pairs(now.state) do assert.is_truthy(snap.state[p], what .. ": new optimizer state") end
  assert.is_true(same_deep(snap.sched, now.sched), what .. ": the scheduler changed")
  assert.is_true(same_deep(snap.loader, now.loader), what .. ": the loader changed")
end

-- Model, Adam (amsgrad), SequentialLR of LinearLR and CosineAnnealingLR and a
-- shuffling loader, after `steps` steps, the loader two batches into an epoch.
local function training_state(seed, steps)
  local net, opt, s = make_run(seed)
  train_steps(net, opt, s, steps)
  local ds = data.TensorDataset(mg.arange(1, 21, 1, "int64"))
  local loader = data.DataLoader(ds, {batch_size = 3, shuffle = true})
  local it = loader:iter()
  it() it()
  return {model = net, optimizer = opt, scheduler = s, loader = loader}
end

local function save_state(path, objs, extra)
  checkpoint.save(path, {model = objs.model, optimizer = objs.optimizer,
    scheduler = objs.scheduler, loader = objs.loader, epoch = 3, step = 17, extra = extra})
end

-- A copy of checkpoint src changed by mutate(tensors, state).
local function tampered(src, name, mutate)
  local tensors, state = checkpoint.read(src)
  mutate(tensors, state)
  local names = {}          -- tensors left in extra keep their names
  for k, t in pairs(tensors) do names[t] = k end
  local path = tmp(name)
  mg.save(path, tensors, {["moongrad.checkpoint"] =
    codec.encode(state, "state", function(t) return names[t] end)})
  return path
end

-- objs hold what want holds (the loader continues its epoch where want's
-- iteration is).
local function assert_restored(objs, want)
  local a, b = snapshot(want), snapshot(objs)
  assert.is_true(same_deep(a.model, b.model), "model")
  for i, g in ipairs(a.groups) do
    g.params, b.groups[i].params = nil, nil
    assert.is_true(same_deep(g, b.groups[i]), "param group " .. i)
  end
  for i, p in ipairs(want.model:parameters()) do
    local q = objs.model:parameters()[i]
    assert.is_true(same_deep(want.optimizer.state[p], objs.optimizer.state[q]), "state " .. i)
  end
  assert.is_true(same_deep(a.sched, b.sched), "scheduler")
  assert.is_true(same_tensor(a.loader.perm, b.loader.perm), "perm")
  assert.are.equal(a.loader.position, b.loader.position)
  assert.are.same(a.rng, b.rng)
end

local function ones_like(t, v) return mg.full(t:shape(), v, t:dtype()) end

describe("checkpoint.load, all or nothing", function()
  local good = tmp("good.safetensors")
  save_state(good, training_state(7, 3))

  -- {what, mutate(tensors, state), needles}: each file must be refused
  -- with a message naming the file, the part and the offending entry, and
  -- leave every object exactly as it was.
  local cases = {
    {"Adam step 0", function(_, s) s.optimizer.state[1].step = 0 end,
     {"optimizer", "parameter 1", "'step'", "positive integer", "got 0"}},
    {"Adam step -1", function(_, s) s.optimizer.state[2].step = -1 end,
     {"optimizer", "parameter 2", "'step'", "got -1"}},
    {"Adam step 1.5", function(_, s) s.optimizer.state[1].step = 1.5 end,
     {"optimizer", "'step'", "got 1.5"}},
    {"Adam step 'x'", function(_, s) s.optimizer.state[1].step = "x" end,
     {"optimizer", "'step'", "\"x\""}},
    {"a negative exp_avg_sq", function(t)
      local k = "optimizer.state.3.exp_avg_sq"
      t[k] = ones_like(t[k], -1)
    end, {"optimizer", "parameter 3", "'exp_avg_sq'", ">= 0", "-1"}},
    {"a negative max_exp_avg_sq", function(t)
      local k = "optimizer.state.6.max_exp_avg_sq"
      t[k] = ones_like(t[k], -0.5)
    end, {"optimizer", "parameter 6", "'max_exp_avg_sq'", "-0.5"}},
    {"NaN in exp_avg", function(t)
      local k = "optimizer.state.1.exp_avg"
      t[k] = ones_like(t[k], 0 / 0)
    end, {"optimizer", "parameter 1", "'exp_avg'", "NaN"}},
    {"inf in exp_avg_sq", function(t)
      local k = "optimizer.state.2.exp_avg_sq"
      t[k] = ones_like(t[k], math.huge)
    end, {"optimizer", "parameter 2", "'exp_avg_sq'", "infinite"}},
    {"a state tensor of the wrong shape", function(t)
      t["optimizer.state.1.exp_avg"] = mg.zeros(3)
    end, {"optimizer", "parameter 1", "'exp_avg'", "[3]", "[8,4]"}},
    {"an int64 state tensor", function(t)
      local k = "optimizer.state.2.exp_avg"
      t[k] = t[k]:to("int64")
    end, {"optimizer", "parameter 2", "'exp_avg'", "int64"}},
    {"an unknown state entry", function(t) t["optimizer.state.1.velocity"] = mg.zeros(8, 4) end,
     {"optimizer", "parameter 1", "unknown entry \"velocity\"", "exp_avg_sq"}},
    {"state for a parameter no group has", function(_, s) s.optimizer.state[7] = {step = 1} end,
     {"optimizer", "parameter 7"}},
    {"a negative lr", function(_, s) s.optimizer.param_groups[1].lr = -1 end,
     {"optimizer", "parameter group 1", "lr", "-1"}},
    {"betas out of range", function(_, s) s.optimizer.param_groups[1].betas = {1.5, 0.9} end,
     {"optimizer", "betas[1]", "1.5"}},
    {"amsgrad 'yes'", function(_, s) s.optimizer.param_groups[1].amsgrad = "yes" end,
     {"optimizer", "amsgrad", "yes"}},
    {"a parameter number twice", function(_, s) s.optimizer.param_groups[1].params[2] = 1 end,
     {"optimizer", "params[2]", "1"}},
    {"a group entry that is not data", function(_, s)
      s.optimizer.param_groups[1].params = {1, 2, 3, 4, 5, 6.5}
    end, {"optimizer", "params[6]", "6.5"}},
    {"a model tensor of the wrong shape after a valid optimizer part", function(t)
      t["model.5.bias"] = mg.zeros(4)
    end, {"model", "5.bias", "[4]", "[3]"}},
    {"a float tensor for an int64 buffer", function(t)
      t["model.2.num_batches_tracked"] = mg.tensor(3.5, "float64")
    end, {"model", "2.num_batches_tracked", "float64", "int64"}},
    {"a missing model tensor", function(t) t["model.1.weight"] = nil end,
     {"model", "missing", "1.weight"}},
    {"a scheduler state setting the method step", function(_, s) s.scheduler.step = 5 end,
     {"scheduler", "SequentialLR", "\"step\"", "not part of the scheduler's state"}},
    {"a sub-scheduler state setting get_last_lr", function(_, s)
      s.scheduler._schedulers[2].get_last_lr = {0.1}
    end, {"scheduler", "schedulers[2]", "CosineAnnealingLR", "\"get_last_lr\""}},
    {"a scheduler state setting the optimizer", function(_, s) s.scheduler.optimizer = {} end,
     {"scheduler", "\"optimizer\""}},
    {"a scheduler T_max of 0", function(_, s) s.scheduler._schedulers[2].T_max = 0 end,
     {"scheduler", "T_max", "positive integer", "0"}},
    {"a fractional last_epoch", function(_, s) s.scheduler.last_epoch = 1.5 end,
     {"scheduler", "last_epoch", "1.5"}},
    {"base_lrs for two groups", function(_, s) s.scheduler._schedulers[1].base_lrs = {0.1, 0.2} end,
     {"scheduler", "schedulers[1]", "base_lrs must have 1 entries, got {0.1, 0.2}"}},
    {"a NaN rate", function(_, s) s.scheduler._last_lr = {0 / 0} end,
     {"scheduler", "_last_lr[1]", "finite", "nan"}},
    {"a perm holding an index twice", function(t)
      local p = t["loader.perm"]:totable()
      p[1] = p[2]
      t["loader.perm"] = mg.tensor(p, "int64")
    end, {"loader", "perm", "each of 1..20 once", "twice"}},
    {"a perm missing an index (0 instead)", function(t)
      local p = t["loader.perm"]:totable()
      p[5] = 0
      t["loader.perm"] = mg.tensor(p, "int64")
    end, {"loader", "perm", "holds 0"}},
    {"a perm of the wrong length", function(t) t["loader.perm"] = mg.randperm(19) end,
     {"loader", "perm", "20 positions", "[19]"}},
    {"a float perm", function(t) t["loader.perm"] = t["loader.perm"]:to("float64") end,
     {"loader", "perm", "1-D int64 tensor", "a tensor of float64"}},
    {"a loader position past the epoch", function(_, s) s.loader.position = 8 end,
     {"loader", "position", "0..7", "8"}},
    {"a negative loader position", function(_, s) s.loader.position = -1 end,
     {"loader", "position", "-1"}},
    {"a corrupt RNG seed", function(_, s) s.rng.seed = "12x" end, {"RNG", "seed", "\"12x\""}},
    {"an RNG offset past 2^64", function(_, s) s.rng.offset = "18446744073709551616" end,
     {"RNG", "offset", "18446744073709551616"}},
    {"a negative epoch", function(_, s) s.epoch = -1 end, {"epoch", "-1"}},
    {"a fractional step", function(_, s) s.step = 2.5 end, {"step", "2.5"}},
  }

  for _, case in ipairs(cases) do
    local what, mutate, needles = case[1], case[2], case[3]
    it("refuses " .. what .. " and changes nothing", function()
      local path = tampered(good, "bad.safetensors", mutate)
      local objs = training_state(99, 1)
      local snap = snapshot(objs)
      local ok, err = pcall(checkpoint.load, path, objs)
      assert.is_false(ok, what .. ": loaded")
      err = tostring(err)
      assert.is_truthy(err:find("checkpoint.load: " .. path .. ": ", 1, true), err)
      for _, needle in ipairs(needles) do
        assert.is_truthy(err:find(needle, 1, true), ("%q does not mention %q"):format(err, needle))
      end
      assert_unchanged(objs, snap, what)
    end)
  end

  it("restores every part when nothing is wrong (the same file, untouched)", function()
    local objs = training_state(99, 1)
    local info = checkpoint.load(tampered(good, "same.safetensors", function() end), objs)
    assert.are.same({3, 17}, {info.epoch, info.step})
    assert_restored(objs, training_state(7, 3))
  end)

  it("installs a prepared checkpoint without allocating, so it cannot fail part-way", function()
    local objs = training_state(99, 1)
    local apply = checkpoint.prepare(good, objs)
    collectgarbage()
    mg.set_memory_limit(1)               -- any tensor allocation now fails
    local ok, info = pcall(apply)
    mg.set_memory_limit(0)
    assert.is_true(ok, tostring(info))
    assert.are.same({3, 17}, {info.epoch, info.step})
    assert_restored(objs, training_state(7, 3))
  end)

  it("changes nothing when memory runs out while the checkpoint is prepared", function()
    local contents = {checkpoint.read(good)}
    for _, room in ipairs({0, 256, 512, 1024}) do   -- out of memory at different points
      local objs = training_state(99, 1)
      local snap = snapshot(objs)
      collectgarbage()
      mg.set_memory_limit(mg.memory().tensor_bytes + room)
      local ok, err = pcall(function() checkpoint.prepare(good, objs, contents)() end)
      mg.set_memory_limit(0)
      assert.is_false(ok)
      assert.is_truthy(err:find("checkpoint.load: " .. good .. ": ", 1, true), err)
      assert.matches("cannot restore the %a+: %a+: not enough memory", err)
      assert_unchanged(objs, snap, "out of memory")
    end
  end)

  it("puts back an object of the user's own when a later one fails", function()
    local net = nn.Linear(2, 2)
    checkpoint.save(good, {model = net, optimizer = optim.SGD(net, {lr = 0.1}), epoch = 1})
    local log = {}
    local function own(name, fail)
      local obj = {value = name .. " before"}
      function obj.state_dict() return {value = obj.value} end
      function obj.load_state_dict(_, sd)
        if fail then error(name .. " refuses", 0) end
        obj.value = sd.value or (name .. " loaded")
        log[#log + 1] = name .. ": " .. obj.value
      end
      return obj
    end
    local model, opt = own("model"), own("optimizer", true)
    local ok, err = pcall(checkpoint.load, good, {model = model, optimizer = opt})
    assert.is_false(ok)
    assert.matches("cannot restore the optimizer: optimizer refuses", err)
    assert.are.equal("model before", model.value)
    assert.are.same({"model: model loaded", "model: model before"}, log)
  end)
end)

-- The loader and the model on their own -------------------------------------

describe("loader:load_state_dict and model:load_state_dict, all or nothing", function()
  local function loader_at(pos)
    local ds = data.TensorDataset(mg.arange(1, 11, 1, "int64"))
    local loader = data.DataLoader(ds, {batch_size = 2, shuffle = true})
    local it = loader:iter()
    for _ = 1, pos do it() end
    return loader
  end

  it("refuses a perm that is not a permutation of 1..n and keeps its own", function()
    local bad = {
      {{1, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "holds 1 twice and misses 10"},
      {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "holds 0"},
      {{1, 2, 3, 4, 5, 6, 7, 8, 9, 11}, "holds 11"},
      {{1, 2, 3}, "10 positions"},
    }
    for _, case in ipairs(bad) do
      local loader = loader_at(2)
      local perm, pos = loader._perm:clone(), loader._position
      local ok, err = pcall(loader.load_state_dict, loader,
                            {perm = mg.tensor(case[1], "int64"), position = 1})
      assert.is_false(ok)
      assert.is_truthy(err:find("DataLoader:load_state_dict: perm", 1, true), err)
      assert.is_truthy(err:find(case[2], 1, true), err)
      assert.is_true(same_tensor(perm, loader._perm))
      assert.are.equal(pos, loader._position)
    end
  end)

  it("refuses a position past the epoch and an unknown entry", function()
    local loader = loader_at(1)
    assert.has_error(function() loader:load_state_dict({position = 6}) end,
      "DataLoader:load_state_dict: position must be an integer in 0..5 (the batches of an " ..
      "epoch), got 6")
    assert.has_error(function() loader:load_state_dict({position = 0, order = {}}) end,
      "DataLoader:load_state_dict: unknown entry 'order' (known: perm, position, epoch_seed)")
    assert.are.equal(1, loader._position)
  end)

  it("keeps a copy of the perm it is given", function()
    local loader, src = loader_at(0), loader_at(2)
    local sd = src:state_dict()
    loader:load_state_dict(sd)
    local want = sd.perm:clone()
    sd.perm:fill_(1)
    assert.is_true(same_tensor(want, loader._perm))
  end)

  it("refuses a float tensor for an integer buffer and copies nothing", function()
    local bn = nn.BatchNorm1d(3)
    local sd = nn.BatchNorm1d(3):state_dict()
    sd.weight = mg.full({3}, 5)
    sd.num_batches_tracked = mg.tensor(2.5, "float64")
    local ok, err = pcall(bn.load_state_dict, bn, sd)
    assert.is_false(ok)
    assert.is_truthy(err:find("wrong dtype (1): num_batches_tracked is float64 in the state " ..
                              "dict, int64 in the model", 1, true), err)
    assert.are.same({1, 1, 1}, bn.weight:totable())
  end)

  it("loads its own state dict back (a source sharing the destination's storage)", function()
    local m = nn.Linear(3, 2)
    local before = m.weight:clone()
    local sd = m:state_dict()
    sd.weight = m.weight:detach():t():contiguous():t()   -- a copy, then a view of it
    sd.bias = m.bias:detach()
    m:load_state_dict(sd)
    assert.is_true(same_tensor(before, m.weight:detach()))
  end)
end)

-- fit's checkpoints: the header stays small ----------------------------------------

describe("fit's checkpoints", function()
  local train = require "moongrad.train"

  local function fit_run(n, seed, extra)
    mg.manual_seed(7)                   -- the same data in every run
    local x = mg.randn(n * 4, 3)
    local y = (x:sum(2):gt(0):long() + 1)
    mg.manual_seed(seed or 1)           -- the resumed run starts elsewhere
    local net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    local opt = optim.SGD(net, {lr = 1, momentum = 0.5})
    local o = {train = data.DataLoader(data.TensorDataset(x, y), {batch_size = 4, shuffle = true}),
               optimizer = opt, epochs = 2, progress = "quiet",
               scheduler = sched.StepLR(opt, {step_size = 3, gamma = 0.5}),
               callbacks = {train.LRLogger()}}
    for k, v in pairs(extra or {}) do o[k] = v end
    return net, o
  end

  -- fit_run(6) with a checkpoint every 4 steps, killed at step 9 (epoch 2,
  -- batch 3): the checkpoint holds step 8.
  local function crashed_run(path)
    local net, o = fit_run(6, 1, {checkpoint = {path = path, every_n_batches = 4}})
    table.insert(o.callbacks, {on_batch_end = function(ctx)
      if ctx.step == 9 then error("crash", 0) end
    end})
    assert.is_false(pcall(train.fit, net, o))
  end

  local threads   -- one thread: the same sums in every run
  before_each(function() threads = mg.get_num_threads() mg.set_num_threads(1) end)
  after_each(function() mg.set_num_threads(threads) end)

  local function header_bytes(path)
    local s = read_bytes(path)
    return string.unpack("<I8", s)
  end

  it("keep the JSON header the same size however many steps the run made", function()
    local sizes = {}
    for _, n in ipairs({5, 400}) do
      local path = tmp("fit" .. n .. ".safetensors")
      local net, o = fit_run(n, 1, {checkpoint = {path = path, every = "epoch"}})
      train.fit(net, o)
      sizes[#sizes + 1] = header_bytes(path)
      local t = mg.load(path)
      assert.are.same({2 * n}, t["extra.fit.history.lr"]:shape())
      assert.are.same({2 * n}, t["extra.fit.history.batch_loss"]:shape())
      assert.are.same({2 * n}, t["extra.fit.history.lr_groups[1]"]:shape())
    end
    -- 790 more steps: a few more digits in offsets and counters, no per-step bytes
    assert.is_true(sizes[2] - sizes[1] < 300, ("%d then %d bytes"):format(sizes[1], sizes[2]))
  end)

  it("resume to the very history of an uninterrupted run, lr_groups and float types included",
     function()
    local full = train.fit(fit_run(6))
    local path = tmp("fit_resume.safetensors")
    crashed_run(path)
    local resumed = train.fit(fit_run(6, 5, {resume = path}))   -- other initial weights
    for _, k in ipairs({"lr", "batch_loss"}) do
      assert.are.equal(#full[k], #resumed[k])
      for i = 1, #full[k] do
        assert.are.equal(full[k][i], resumed[k][i])
        assert.are.equal(math.type(full[k][i]), math.type(resumed[k][i]))
      end
    end
    assert.is_true(same_value(full.lr_groups, resumed.lr_groups))
    for e = 1, 2 do assert.are.equal(full.epochs[e].train_loss, resumed.epochs[e].train_loss) end
  end)

  it("still resume from a checkpoint that kept the history in its header (the old layout)",
     function()
    local full = train.fit(fit_run(6))
    local path = tmp("fit_old.safetensors")
    crashed_run(path)
    local old = tampered(path, "fit_old2.safetensors", function(t, s)
      local h = s.extra.fit.history
      h.lr, h.batch_loss = h.lr:totable(), h.batch_loss:totable()
      h.lr_groups = {h.lr_groups[1]:totable()}
      for name in pairs(t) do
        if name:sub(1, 6) == "extra." then t[name] = nil end
      end
    end)
    assert.is_nil(mg.load(old)["extra.fit.history.lr"])
    local resumed = train.fit(fit_run(6, 5, {resume = old}))
    assert.is_true(same_value(full.batch_loss, resumed.batch_loss))
    assert.is_true(same_value(full.lr, resumed.lr))
  end)

  it("refuse a checkpoint whose training state is corrupt, changing nothing", function()
    local path = tmp("fit_bad.safetensors")
    local net, o = fit_run(5, 1, {checkpoint = {path = path, every = "epoch"}})
    train.fit(net, o)
    local bad = tampered(path, "fit_bad2.safetensors", function(_, s)
      s.extra.fit.history.batch_loss = {1, "x"}
    end)
    net, o = fit_run(5, 3, {resume = bad})
    local before = deep(net:state_dict())
    local ok, err = pcall(train.fit, net, o)
    assert.is_false(ok)
    assert.is_truthy(err:find("fit: " .. bad .. ": history.batch_loss: entry 2", 1, true), err)
    assert.is_true(same_deep(before, net:state_dict()))
  end)
end)

teardown(function() os.execute("rm -rf '" .. tmpdir .. "'") end)
