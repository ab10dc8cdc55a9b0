-- uint8, the storage dtype of pixels and bytes (issue 19): a quarter of
-- float32's memory, made, converted, viewed, indexed, joined, printed and
-- saved; refused, with a message saying how to convert, by every op that
-- computes. Expected values are derived by hand (and, for conversions,
-- agree with PyTorch 1.13: torch.tensor([300., -1., 2.7]).to(torch.uint8)
-- is [44, 255, 2]).
local mg = require "moongrad"
local data = require "moongrad.data"
local F = require "moongrad.functional"

local function u8(t) return mg.tensor(t, "uint8") end
local err_of = require("support.check").err_of

describe("uint8 tensors", function()
  it("are made from tables, numbers and shapes, one byte an element", function()
    local t = u8({{0, 128, 255}})
    assert.equal("uint8", t:dtype())
    assert.same({{0, 128, 255}}, t:totable())
    assert.equal(255, t[1][3])
    assert.equal("integer", math.type(t[1][3]))
    assert.same({0, 0, 0}, mg.zeros(3, "uint8"):totable())
    assert.same({1, 1}, mg.ones({2}, "uint8"):totable())
    assert.same({7, 7}, mg.full({2}, 7, "uint8"):totable())
    assert.equal(0, u8(0):item())
    assert.same({2, 3}, mg.empty(2, 3, "uint8"):shape())
    collectgarbage()
    collectgarbage()
    local before = mg.memory().tensor_bytes
    local big = mg.zeros(1000, 1000, "uint8")
    assert.equal(1000 * 1000, mg.memory().tensor_bytes - before)
    big = nil -- luacheck: ignore
  end)

  it("refuse a value that is not an integer from 0 to 255", function()
    assert.matches("tensor: 300%.0 does not fit in uint8 %(an integer from 0 to 255%)",
                   err_of(mg.tensor, {300}, "uint8"))
    assert.matches("does not fit in uint8", err_of(mg.tensor, {2.5}, "uint8"))
    assert.matches("does not fit in uint8", err_of(mg.tensor, {-1}, "uint8"))
    assert.matches("full: 256 does not fit in uint8", err_of(mg.full, {2}, 256, "uint8"))
    local t = mg.zeros(2, "uint8")
    assert.matches("fill_: %-1 does not fit in uint8", err_of(t.fill_, t, -1))
    assert.matches("set: 256 does not fit in uint8", err_of(function() t[1] = 256 end))
    assert.same({0, 0}, t:totable())
  end)

  it("convert to and from every dtype, wrapping modulo 256 as PyTorch does", function()
    assert.same({44, 255, 2, 0}, mg.tensor({300.5, -1, 2.7, 0 / 0}):to("uint8"):totable())
    assert.same({44, 255}, mg.tensor({300, -1}, "int64"):byte():totable())
    assert.same({0, 128, 255}, mg.tensor({0, 128, 255}, "float64"):to("uint8"):totable())
    local t = u8({0, 128, 255})
    assert.same({0, 128, 255}, t:float():totable())
    assert.equal("float32", t:float():dtype())
    assert.same({0, 128, 255}, t:double():totable())
    assert.same({0, 128, 255}, t:long():totable())
    assert.equal("int64", t:long():dtype())
    assert.same({0, 128 / 255, 1}, (t:double() / 255):totable())
    assert.same({0, 128, 255}, mg.tensor(t, "float32"):totable())
  end)

  it("are viewed, copied, filled and indexed like any tensor", function()
    local t = u8({{1, 2, 3}, {4, 5, 6}})
    assert.same({{1, 4}, {2, 5}, {3, 6}}, t:t():contiguous():totable())
    assert.same({{2, 3}}, t:narrow(1, 1, 1):narrow(2, 2, 2):totable())
    assert.same({4, 5, 6}, t[2]:totable())
    assert.same({1, 2, 3, 4, 5, 6}, t:reshape(6):totable())
    assert.same({{3, 1}, {6, 4}}, t:index_select(2, {3, 1}):totable())
    assert.same({{4, 5, 6}}, t:index_select(1, mg.tensor({2}, "int64")):totable())
    local c = t:clone()
    c[1][1] = 9
    c:narrow(1, 2, 1):copy_(mg.tensor({{7.9, 8, 300}}))
    assert.same({{9, 2, 3}, {7, 8, 44}}, c:totable())
    assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
    c:zero_()
    assert.same({{0, 0, 0}, {0, 0, 0}}, c:totable())
    assert.same({{1, 1}}, mg.ones_like(u8({{5, 5}})):totable())
    assert.equal("uint8", mg.zeros_like(t):dtype())
  end)

  it("join with cat and stack, keeping uint8 unless another dtype comes in", function()
    local a, b = u8({1, 2}), u8({3})
    local c = mg.cat({a, b})
    assert.equal("uint8", c:dtype())
    assert.same({1, 2, 3}, c:totable())
    local s = mg.stack({a, a})
    assert.same({{1, 2}, {1, 2}}, s:totable())
    assert.equal("uint8", s:dtype())
    local m = mg.cat({a, mg.tensor({0.5})})
    assert.equal("float32", m:dtype())
    assert.same({1, 2, 0.5}, m:totable())
    assert.equal("int64", mg.cat({a, mg.tensor({7}, "int64")}):dtype())
  end)

  it("print as integers", function()
    assert.equal("{  0, 128, 255}\n[uint8 tensor of shape [3]]", tostring(u8({0, 128, 255})))
    assert.equal("7\n[uint8 tensor of shape []]", tostring(u8(7)))
  end)

  it("save as safetensors U8 and load back as uint8", function()
    local path = os.tmpname()
    local t = u8({{0, 1}, {254, 255}})
    mg.save(path, {img = t, view = t:t()})
    local f = assert(io.open(path, "rb"))
    local bytes = f:read("a")
    f:close()
    assert.is_truthy(bytes:find('"dtype":"U8"', 1, true))
    local back = mg.load(path)
    os.remove(path)
    assert.equal("uint8", back.img:dtype())
    assert.same({{0, 1}, {254, 255}}, back.img:totable())
    assert.same({{0, 254}, {1, 255}}, back.view:totable())
  end)

  it("batch through a DataLoader as uint8", function()
    local x = u8({{1, 2}, {3, 4}, {5, 6}})
    local loader = data.DataLoader(data.TensorDataset(x, mg.tensor({1, 2, 3}, "int64")),
                                   {batch_size = 2})
    local batches = {}
    for xb in loader:iter() do batches[#batches + 1] = xb end
    assert.equal("uint8", batches[1]:dtype())
    assert.same({{1, 2}, {3, 4}}, batches[1]:totable())
    assert.same({{5, 6}}, batches[2]:totable())
  end)

  it("read Fashion-MNIST's ubyte pixels as they are with read_idx", function()
    local path = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    local raw = data.read_idx(path, {dtype = "uint8"})
    assert.equal("uint8", raw:dtype())
    assert.same({10000, 28, 28}, raw:shape())
    local as_float = data.read_idx(path)
    assert.equal(0, (raw:float() - as_float):abs():max():item())
    assert.matches("uint8 holds ubyte data as it is", err_of(data.read_idx,
      "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", {dtype = "uint8", scale = 2}) ..
      err_of(function()
        local p = os.tmpname() .. ".idx"
        local f = assert(io.open(p, "wb"))
        f:write("\0\0\12\1\0\0\0\1\0\0\0\5") -- one int: 5
        f:close()
        local ok, e = pcall(data.read_idx, p, {dtype = "uint8"})
        os.remove(p)
        if not ok then error(e, 0) end
      end))
  end)

  it("are refused by ops that compute, with a message saying how to convert", function()
    local t = u8({1, 2})
    local expect = "uint8 tensors hold data %(pixels, bytes%) and are not computed on; " ..
                   "convert with :float%(%) %(or :long%(%)%) first"
    assert.matches("add: " .. expect, err_of(function() return t + 1 end))
    assert.matches("add: " .. expect, err_of(function() return mg.ones(2) + t end))
    assert.matches("sum: " .. expect, err_of(function() return t:sum() end))
    assert.matches("exp: " .. expect, err_of(function() return t:exp() end))
    assert.matches("eq: " .. expect, err_of(function() return t:eq(1) end))
    assert.matches("matmul: " .. expect, err_of(function() return t:matmul(t) end))
    assert.matches("relu: " .. expect, err_of(function() return F.relu(t) end))
    assert.matches("requires_grad: " .. expect, err_of(function() return t:requires_grad() end))
    assert.matches("gather: " .. expect,
                   err_of(function() return t:gather(1, mg.tensor({1}, "int64")) end))
    assert.matches("randn: dtype uint8 holds data", err_of(mg.randn, 2, "uint8"))
    assert.matches("rand_like: " .. expect, err_of(mg.rand_like, t))
    assert.same({1, 2}, t:totable())
  end)
end)
