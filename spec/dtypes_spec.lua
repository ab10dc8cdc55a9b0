-- The storage dtypes float16, bfloat16, int32, int16, int8 and bool (issue
-- 20): every dtype of a safetensors file comes back as itself, and goes out
-- again with the same bytes. They are made, converted (as PyTorch converts
-- on x86: references from spec/fixtures/gen_dtypes.py), viewed, indexed,
-- joined with PyTorch's type promotion, printed, batched and saved; every
-- op that computes refuses them, saying how to convert. uint8, the first
-- storage dtype, has its own spec/uint8_spec.lua.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local data = require "moongrad.data"
local checkpoint = require "moongrad.checkpoint"
local json = require "dkjson"
local shell = require "support.shell"
local REF = dofile("spec/fixtures/dtypes_ref.lua")

local STORAGE = {"float16", "bfloat16", "int32", "int16", "int8", "bool"}
local SIZE = {float32 = 4, float64 = 8, int64 = 8, uint8 = 1, float16 = 2, bfloat16 = 2,
              int32 = 4, int16 = 2, int8 = 1, bool = 1}

local err_of = require("support.check").err_of

-- A reference value: a hex-float string, or "nan", "inf", "-inf".
local function ref_number(s)
  if s == "nan" then return 0 / 0 end
  if s == "inf" then return math.huge end
  if s == "-inf" then return -math.huge end
  return assert(tonumber(s), s)
end

-- The value of 16-bit patterns, decoded here by hand (independently of the
-- C conversions): IEEE half and bfloat16.
local function half_value(bits)
  local sign = (bits >> 15) == 1 and -1.0 or 1.0
  local e, m = (bits >> 10) & 0x1f, bits & 0x3ff
  if e == 0x1f then return m == 0 and sign * math.huge or 0 / 0 end
  if e == 0 then return sign * m * 2.0 ^ -24 end
  return sign * (1 + m / 1024) * 2.0 ^ (e - 15)
end
local function bf16_value(bits)
  return (string.unpack("<f", string.pack("<I4", bits << 16)))
end

-- Same number, NaN equal to NaN and -0 distinct from 0.
local function same_number(a, b)
  if a ~= a then return b ~= b end
  if a == 0 and b == 0 then return 1 / a == 1 / b end
  return a == b
end

-- The safetensors file at path: {name = {dtype =, shape =, bytes =}}.
local function raw_tensors(path)
  local s = shell.read_file(path)
  local n = string.unpack("<I8", s)
  local header = json.decode(s:sub(9, 8 + n))
  local out = {}
  for name, e in pairs(header) do
    if name ~= "__metadata__" then
      local a, b = e.data_offsets[1], e.data_offsets[2]
      out[name] = {dtype = e.dtype, shape = e.shape, bytes = s:sub(9 + n + a, 8 + n + b)}
    end
  end
  return out
end

-- Writes a safetensors file of one tensor x (dtype tag, element count, raw bytes).
local function write_one(path, tag, count, bytes)
  local h = json.encode({x = {dtype = tag, shape = {count}, data_offsets = {0, #bytes}}})
  shell.write_file(path, string.pack("<I8", #h) .. h .. bytes)
end

describe("storage dtypes", function()
  it("are made by tensor, zeros, ones, empty, full and the *_like constructors", function()
    for _, dt in ipairs(STORAGE) do
      local one = dt == "bool" and true or 1
      assert.equal(dt, mg.zeros(2, 3, dt):dtype())
      assert.same({{one, one}}, mg.ones({1, 2}, dt):totable())
      assert.same({2}, mg.empty(2, dt):shape())
      assert.same({one, one}, mg.full({2}, 1, dt):totable())
      assert.same({one}, mg.tensor({1}, dt):totable())
      local z = mg.zeros_like(mg.ones(2), dt)
      assert.equal(dt, z:dtype())
      assert.equal(dt, mg.ones_like(z):dtype())
      assert.equal(dt, mg.full_like(z, 1):dtype())
    end
  end)

  it("take one, two or four bytes an element", function()
    for _, dt in ipairs(STORAGE) do
      collectgarbage()
      collectgarbage()
      local before = mg.memory().tensor_bytes
      local t = mg.zeros(1000, 100, dt)
      assert.equal(1000 * 100 * SIZE[dt], mg.memory().tensor_bytes - before, dt)
      t = nil -- luacheck: ignore
    end
  end)

  it("make a bool tensor from a table of booleans, as PyTorch does, and refuse a mix", function()
    local t = mg.tensor({{true, false}, {false, true}})
    assert.equal("bool", t:dtype())
    assert.same({{true, false}, {false, true}}, t:totable())
    assert.equal("bool", mg.tensor(true):dtype())
    assert.is_true(mg.tensor(true):item())
    assert.equal("float32", mg.tensor({1, 2}):dtype())
    assert.same({1, 0}, mg.tensor({true, false}, "int64"):totable())
    assert.matches("tensor: a table of booleans holds a number at element 3; give a dtype",
                   err_of(mg.tensor, {true, false, 1}))
  end)

  it("give Lua booleans for bool, integers for the integer dtypes and floats for halves", function()
    local b = mg.tensor({true, false})
    assert.equal("boolean", type(b[1]))
    assert.is_false(b:get(2))
    for _, dt in ipairs({"int32", "int16", "int8"}) do
      local t = mg.tensor({-7, 5}, dt)
      assert.equal("integer", math.type(t[1]), dt)
      assert.equal(-7, t:get(1))
      assert.equal("integer", math.type(t:narrow(1, 2, 1):item()))
    end
    for _, dt in ipairs({"float16", "bfloat16"}) do
      local t = mg.tensor({1.5, -2}, dt)
      assert.equal("float", math.type(t[1]), dt)
      assert.same({1.5, -2.0}, t:totable())
      assert.equal(1.5, t[1])
    end
  end)

  it("take only values that fit when a number is written in, as PyTorch's fill_ does", function()
    assert.matches("full: 128 does not fit in int8 %(an integer from %-128 to 127%)",
                   err_of(mg.full, {2}, 128, "int8"))
    assert.matches("tensor: 40000%.0+ does not fit in int16", err_of(mg.tensor, {40000}, "int16"))
    assert.matches("does not fit in int32", err_of(mg.tensor, {2.5}, "int32"))
    local h = mg.zeros(2, "float16")
    assert.matches("fill_: 70000 does not fit in float16 %(finite values up to 65504",
                   err_of(h.fill_, h, 70000))
    assert.matches("set: 1e%+39 does not fit in bfloat16",
                   err_of(function() mg.zeros(1, "bfloat16")[1] = 1e39 end))
    h:fill_(math.huge)
    assert.same({math.huge, math.huge}, h:totable())
    h[1] = 65504
    h[2] = 0.1
    assert.same({65504.0, half_value(0x2e66)}, h:totable())
    local b = mg.zeros(3, "bool")
    b[1] = true
    b[2] = 5
    assert.same({true, true, false}, b:totable())
    b:fill_(false)
    assert.same({false, false, false}, b:totable())
    local i = mg.full({2}, -128, "int8")
    i:set(2, 127)
    assert.same({-128, 127}, i:totable())
  end)
end)

describe("conversions", function()
  local TARGETS = {"float16", "bfloat16", "int32", "int16", "int8", "uint8", "bool"}

  -- Converts the rows' x (as src_dtype) to each target and compares with
  -- PyTorch's results.
  local function check_rows(rows, src_dtype, xs)
    local src = mg.tensor(xs, src_dtype)
    for _, dt in ipairs(TARGETS) do
      local got = src:to(dt)
      assert.equal(dt, got:dtype())
      local values = (dt == "float16" or dt == "bfloat16") and got:double():totable()
                     or got:totable()
      for i, row in ipairs(rows) do
        local want = row[dt]
        if dt == "float16" then want = half_value(want)
        elseif dt == "bfloat16" then want = bf16_value(want) end
        assert.is_true(same_number(values[i], want),
          ("%s %s -> %s: got %s, PyTorch %s"):format(src_dtype, tostring(row.x), dt,
                                                     tostring(values[i]), tostring(want)))
      end
    end
  end

  it("from float32 round halves to nearest even (ties, subnormals, overflow, NaN) and truncate into integers as PyTorch on x86", function()
    local xs = {}
    for i, row in ipairs(REF.f32) do xs[i] = ref_number(row.x) end
    check_rows(REF.f32, "float32", xs)
  end)

  it("from float64 go through float32 into halves, as PyTorch's Half(float) does", function()
    local xs = {}
    for i, row in ipairs(REF.f64) do xs[i] = ref_number(row.x) end
    check_rows(REF.f64, "float64", xs)
  end)

  it("from int64 keep the low bits of a narrower integer and round into halves", function()
    local xs = {}
    for i, row in ipairs(REF.ints) do xs[i] = row.x end
    check_rows(REF.ints, "int64", xs)
  end)

  it("come back exactly from every float16 and bfloat16 value (all 65536 patterns each)", function()
    local path = os.tmpname()
    local parts = {}
    for b = 0, 0xffff do parts[#parts + 1] = string.pack("<I2", b) end
    local bytes = table.concat(parts)
    for _, c in ipairs({{"F16", "float16", half_value}, {"BF16", "bfloat16", bf16_value}}) do
      write_one(path, c[1], 0x10000, bytes)
      local t = mg.load(path).x
      assert.equal(c[2], t:dtype())
      local as32 = t:float()
      local values = as32:double():totable()
      for b = 0, 0xffff do
        if not same_number(values[b + 1], c[3](b)) then
          error(("%s 0x%04x reads as %s, expected %s"):format(c[2], b, values[b + 1], c[3](b)))
        end
      end
      -- float32 -> half is exact on every half value (NaNs stay NaN)
      local back = as32:to(c[2]):double():totable()
      for b = 0, 0xffff do
        assert(same_number(back[b + 1], values[b + 1]), ("%s 0x%04x"):format(c[2], b))
      end
    end
    os.remove(path)
  end)

  it("make bool true for everything that is not 0 (NaN included), and bool 1 or 0", function()
    assert.same({false, true, true, true, false},
                mg.tensor({0, 0.5, -2, 0 / 0, -0.0}):to("bool"):totable())
    local b = mg.tensor({true, false})
    assert.same({1.0, 0.0}, b:float():totable())
    assert.same({1, 0}, b:long():totable())
    assert.same({1, 0}, b:int():totable())
    assert.same({1.0, 0.0}, b:half():totable())
  end)

  it("have shorthands half, bfloat16, int, short, char and bool beside float, double, long and byte", function()
    local t = mg.tensor({1.5, -2.5})
    assert.equal("float16", t:half():dtype())
    assert.equal("bfloat16", t:bfloat16():dtype())
    assert.equal("int32", t:int():dtype())
    assert.equal("int16", t:short():dtype())
    assert.equal("int8", t:char():dtype())
    assert.equal("bool", t:bool():dtype())
    assert.same({1, -2}, t:int():totable())
    assert.equal("float16", mg.tensor(t, "float16"):dtype())
    assert.equal("float16", t:to{dtype = "float16"}:dtype())
  end)

  it("cut the graph: a gradient does not flow into or out of a storage dtype", function()
    local w = mg.ones(2):requires_grad()
    local h = w:half()
    assert.is_false(h:is_requires_grad())
    local y = (w * mg.cat({h:float(), mg.ones(1, "int8"):float()}):narrow(1, 1, 2)):sum()
    y:backward()
    assert.same({1.0, 1.0}, w.grad:totable())
  end)
end)

describe("storage tensors as data", function()
  it("are viewed, copied, filled, indexed and selected like any tensor", function()
    for _, dt in ipairs(STORAGE) do
      local t = mg.tensor({{1, 0, 3}, {0, 5, 6}}, dt)
      local v = function(x)
        if dt == "bool" then return x ~= 0 end
        return x
      end
      assert.same({{v(1), v(0)}, {v(0), v(5)}, {v(3), v(6)}}, t:t():contiguous():totable(), dt)
      assert.same({v(0), v(5), v(6)}, t[2]:totable())
      assert.same({{v(3), v(1)}, {v(6), v(0)}}, t:index_select(2, {3, 1}):totable(), dt)
      assert.same({v(1), v(0), v(3), v(0), v(5), v(6)}, t:reshape(6):totable())
      local c = t:clone()
      c:narrow(1, 2, 1):copy_(mg.tensor({{7, 0, 1}}))
      assert.same({{v(1), v(0), v(3)}, {v(7), v(0), v(1)}}, c:totable(), dt)
      c:zero_()
      assert.same({{v(0), v(0), v(0)}, {v(0), v(0), v(0)}}, c:totable())
      assert.equal(dt, t:expand(2, 2, 3):contiguous():dtype())
      assert.equal(dt, t:detach():dtype())
    end
  end)

  it("join with cat and stack in PyTorch's promoted dtype for every pair", function()
    for _, row in ipairs(REF.promote) do
      local a, b, want = row[1], row[2], row[3]
      local c = mg.cat({mg.ones(1, a), mg.zeros(2, b)})
      assert.equal(want, c:dtype(), a .. " with " .. b)
      local one, zero = 1, 0
      if want == "bool" then one, zero = true, false end
      assert.same({one, zero, zero}, c:totable(), a .. " with " .. b)
      assert.equal(want, mg.stack({mg.ones(1, a), mg.zeros(1, b)}):dtype())
    end
    local h = mg.cat({mg.tensor({1.5}, "float16"), mg.tensor({300}, "int16")})
    assert.equal("float16", h:dtype())
    assert.same({1.5, 300.0}, h:totable())
  end)

  it("print bool as true/false, integers as integers and halves as floats", function()
    assert.equal("{ true, false}\n[bool tensor of shape [2]]", tostring(mg.tensor({true, false})))
    assert.equal("true\n[bool tensor of shape []]", tostring(mg.tensor(true)))
    assert.equal("{  -7, 1000}\n[int16 tensor of shape [2]]", tostring(mg.tensor({-7, 1000}, "int16")))
    assert.equal("{ 1.5000, -0.1000}\n[float16 tensor of shape [2]]",
                 tostring(mg.tensor({1.5, -0.1}, "float16")))
    assert.equal("{1., 2.}\n[bfloat16 tensor of shape [2]]", tostring(mg.tensor({1, 2}, "bfloat16")))
  end)

  it("batch through a DataLoader, in the main process and from a worker", function()
    local x = mg.tensor({{1, 2}, {3, 4}, {5, 6}}, "int16")
    local h = mg.tensor({0.5, 1.5, 2.5}, "float16")
    local m = mg.tensor({true, false, true})
    for _, workers in ipairs({0, 1}) do
      local loader = data.DataLoader(data.TensorDataset(x, h, m),
                                     {batch_size = 2, num_workers = workers})
      local got = {}
      for xb, hb, mb in loader:iter() do got[#got + 1] = {xb, hb, mb} end
      assert.equal(2, #got)
      assert.equal("int16", got[1][1]:dtype())
      assert.same({{1, 2}, {3, 4}}, got[1][1]:totable())
      assert.equal("float16", got[1][2]:dtype())
      assert.same({0.5, 1.5}, got[1][2]:totable())
      assert.equal("bool", got[2][3]:dtype())
      assert.same({true}, got[2][3]:totable())
    end
  end)
end)

describe("ops that compute", function()
  it("refuse the storage dtypes, naming the op and saying how to convert", function()
    local half = "tensors are stored, not computed on; convert with :float%(%) %(or :double%(%)%) first"
    local int = "tensors are stored, not computed on; convert with :long%(%) %(or :float%(%)%) first"
    local calls = {
      add = {function(t) return t + 1 end, function(t) return mg.ones(2) + t end},
      sum = {function(t) return t:sum() end}, exp = {function(t) return t:exp() end},
      eq = {function(t) return t:eq(1) end}, matmul = {function(t) return t:matmul(t) end},
      requires_grad = {function(t) return t:requires_grad() end},
      where = {function(t) return mg.where(mg.ones(2), t, mg.zeros(2)) end},
      rand_like = {mg.rand_like},
    }
    for _, dt in ipairs(STORAGE) do
      local t = mg.ones(2, dt)
      local expect = dt .. " " .. ((dt == "float16" or dt == "bfloat16") and half or int)
      for op, fns in pairs(calls) do
        for _, fn in ipairs(fns) do assert.matches(op .. ": " .. expect, err_of(fn, t)) end
      end
      assert.matches("randn: dtype " .. dt .. " is for storage and is not computed on; make a " ..
                     "float32 or int64 tensor and convert it with :to%(\"" .. dt .. "\"%)",
                     err_of(mg.randn, 2, dt))
    end
    local lin = nn.Linear(2, 1)
    assert.matches("linear: float16 " .. half, err_of(lin, mg.ones(1, 2, "float16")))
  end)

  it("keep computing float32, float64 and int64 as before (masks stay float32)", function()
    local m = mg.tensor({1, 2, 3}):gt(1.5)
    assert.equal("float32", m:dtype())
    assert.same({0.0, 1.0, 1.0}, m:totable())
    assert.equal("int64", (mg.tensor({1}, "int64") + mg.tensor({2}, "int64")):dtype())
  end)

  it("take bool and the stored integer dtypes as masks in where and masked_fill, as PyTorch does", function()
    local x = mg.tensor({1, 2, 3})
    for _, dt in ipairs({"bool", "uint8", "int8", "int32"}) do
      local m = mg.tensor({1, 0, 1}):to(dt)
      assert.same({1.0, 0.0, 3.0}, mg.where(m, x, 0):totable(), dt)
      assert.same({0.0, 2.0, 0.0}, x:masked_fill(m, 0):totable(), dt)
      assert.same({7.0, 2.0, 7.0}, x:clone():masked_fill_(m, 7):totable(), dt)
    end
    assert.matches("where: float16 tensors are stored, not computed on",
                   select(2, pcall(mg.where, mg.ones(3):half(), x, 0)), 1, true)
  end)
end)

describe("safetensors", function()
  it("round-trips every dtype of a file with the same dtype tag and the same bytes", function()
    local src = "spec/fixtures/interop.safetensors"
    local path = os.tmpname()
    mg.save(path, mg.load(src))
    local before, after = raw_tensors(src), raw_tensors(path)
    os.remove(path)
    local seen = {}
    for name, e in pairs(before) do
      local a = after[name]
      assert.is_truthy(a, name)
      assert.equal(e.dtype, a.dtype, name)
      assert.same(e.shape, a.shape, name)
      assert.is_true(e.bytes == a.bytes, name .. ": the bytes differ")
      seen[e.dtype] = true
    end
    for _, tag in ipairs({"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}) do
      assert.is_true(seen[tag], tag .. " is not in the fixture")
    end
  end)

  it("writes a storage tensor made here under its own tag, views as their elements", function()
    local path = os.tmpname()
    local i = mg.tensor({{1, -2}, {3, 4}}, "int32")
    mg.save(path, {i = i:t(), h = mg.tensor({1, -2.5}, "float16"), b = mg.tensor({false, true}),
                   bf = mg.tensor({1}, "bfloat16"), s = mg.tensor({-1}, "int16"),
                   c = mg.tensor({-128}, "int8")})
    local raw = raw_tensors(path)
    assert.equal("I32", raw.i.dtype)
    assert.equal(string.pack("<i4i4i4i4", 1, 3, -2, 4), raw.i.bytes)
    assert.equal("F16", raw.h.dtype)
    assert.equal(string.pack("<I2I2", 0x3c00, 0xc100), raw.h.bytes)
    assert.equal("BOOL", raw.b.dtype)
    assert.equal("\0\1", raw.b.bytes)
    assert.equal("BF16", raw.bf.dtype)
    assert.equal(string.pack("<I2", 0x3f80), raw.bf.bytes)
    assert.equal("I16", raw.s.dtype)
    assert.equal("\255\255", raw.s.bytes)
    assert.equal("I8", raw.c.dtype)
    assert.equal("\128", raw.c.bytes)
    local back = mg.load(path)
    os.remove(path)
    assert.same({{1, 3}, {-2, 4}}, back.i:totable())
    assert.equal("int8", back.c:dtype())
  end)

  it("refuses a dtype moongrad cannot hold, naming the file, the tensor and the dtype", function()
    local path = os.tmpname()
    for _, tag in ipairs({"U16", "U32", "U64", "F8_E4M3", "F8_E5M2"}) do
      write_one(path, tag, 1, string.rep("\1", tag:match("%d+") // 8))
      local e = err_of(mg.load, path)
      assert.matches("load: " .. path:gsub("%p", "%%%0") .. ": tensor 'x': unsupported dtype '" ..
                     tag .. "' %(moongrad holds F64, F32, F16, BF16, I64, I32, I16, I8, U8 and BOOL%)",
                     e)
    end
    os.remove(path)
  end)
end)

describe("modules and checkpoints", function()
  local function buffered()
    local m = nn.Linear(2, 2)
    m:register_buffer("steps", mg.tensor({3, -4}, "int32"))
    m:register_buffer("mask", mg.tensor({true, false}))
    return m
  end

  it("load float16 and bfloat16 entries into float32 parameters, as PyTorch's copy_ converts", function()
    local m = buffered()
    local sd = {weight = mg.tensor({{0.5, -1}, {2, 65504}}, "float16"),
                bias = mg.tensor({1, 256}, "bfloat16"),
                steps = mg.tensor({7, 8}, "int64"), mask = mg.tensor({false, true})}
    m:load_state_dict(sd)
    assert.equal("float32", m.weight:dtype())
    assert.same({{0.5, -1.0}, {2.0, 65504.0}}, m.weight:totable())
    assert.same({1.0, 256.0}, m.bias:totable())
    assert.equal("int32", m.steps:dtype())
    assert.same({7, 8}, m.steps:totable())
    assert.same({false, true}, m.mask:totable())
    m:load_state_dict({weight = mg.zeros(2, 2), bias = mg.zeros(2), steps = mg.tensor({1, 2}, "uint8"),
                       mask = mg.tensor({true, true})})
    assert.same({1, 2}, m.steps:totable())
  end)

  it("refuse floats into integers, integers into floats and numbers into bool", function()
    local m = buffered()
    local function with(k, v)
      local sd = m:state_dict()
      sd[k] = v
      return err_of(m.load_state_dict, m, sd)
    end
    assert.matches("wrong dtype %(1%): steps is float16 in the state dict, int32 in the model",
                   with("steps", mg.zeros(2, "float16")))
    assert.matches("wrong dtype %(1%): weight is int8 in the state dict, float32 in the model",
                   with("weight", mg.zeros(2, 2, "int8")))
    assert.matches("wrong dtype %(1%): mask is uint8 in the state dict, bool in the model",
                   with("mask", mg.zeros(2, "uint8")))
    assert.matches("wrong dtype %(1%): steps is bool in the state dict, int32 in the model",
                   with("steps", mg.zeros(2, "bool")))
    assert.same({3, -4}, m.steps:totable())
  end)

  it("convert to float16 with half() to save a half checkpoint, refuse a forward, and come back with float()", function()
    local m = buffered()
    local w = m.weight:clone()
    m:half()
    assert.equal("float16", m.weight:dtype())
    assert.equal("int32", m.steps:dtype())
    assert.equal("bool", m.mask:dtype())
    assert.matches("linear: float16 tensors are stored, not computed on; convert with :float%(%)",
                   err_of(m, mg.ones(1, 2, "float16")))
    local path = os.tmpname()
    mg.save(path, m:state_dict())
    local raw = raw_tensors(path)
    assert.equal("F16", raw.weight.dtype)
    assert.equal("I32", raw.steps.dtype)
    assert.equal("BOOL", raw.mask.dtype)
    os.remove(path)
    m:float()
    assert.equal("float32", m.weight:dtype())
    assert.is_true(m.weight:is_requires_grad())
    assert.is_true((m.weight - w):abs():max():item() < 1e-3)
    m:bfloat16()
    assert.equal("bfloat16", m.bias:dtype())
    m:double()
    assert.equal("float64", m.bias:dtype())
    assert.is_true(m.bias:is_requires_grad())
    assert.matches("to: expects \"float32\", \"float64\", \"float16\" or \"bfloat16\", got int8",
                   err_of(m.to, m, "int8"))
  end)

  it("keep int32 buffers and float16 extra state through a training checkpoint", function()
    local m = buffered()
    local path = os.tmpname()
    local extra = {h = mg.tensor({0.1, -3}, "float16"), ids = mg.tensor({-1, 2}, "int8")}
    checkpoint.save(path, {model = m, extra = extra})
    local fresh = buffered()
    fresh.steps:fill_(0)
    local info = checkpoint.load(path, {model = fresh})
    os.remove(path)
    assert.equal("int32", fresh.steps:dtype())
    assert.same({3, -4}, fresh.steps:totable())
    assert.equal("float16", info.extra.h:dtype())
    assert.same(extra.h:totable(), info.extra.h:totable())
    assert.equal("int8", info.extra.ids:dtype())
    assert.same({-1, 2}, info.extra.ids:totable())
  end)
end)
