-- How a tensor prints: its values as a Lua table literal, then a line with
-- its dtype and shape; big tensors abbreviated with "...".
local mg = require "moongrad"

local function lines(s)
  local r = {}
  for l in (s .. "\n"):gmatch("(.-)\n") do r[#r + 1] = l end
  return r
end

describe("tostring of a tensor", function()
  it("shows values, then dtype and shape", function()
    assert.equal("{{1., 2.},\n {3., 4.}}\n[float64 tensor of shape [2,2]]",
                 tostring(mg.tensor({{1, 2}, {3, 4}}, "float64")))
  end)

  it("prints a table literal that mg.tensor reads back", function()
    local s = tostring(mg.tensor({{1.5, -2}, {3, 4.25}}, "float64"))
    local literal = s:match("^(.-)\n%[")
    assert.same({{1.5, -2}, {3, 4.25}}, load("return " .. literal)())
  end)

  it("shows fractions with four decimals, aligned", function()
    assert.equal("{ 0.5000, -1.2500, 10.0000}\n[float32 tensor of shape [3]]",
                 tostring(mg.tensor({0.5, -1.25, 10})))
  end)

  it("shows int64 as integers without a decimal point", function()
    assert.equal("{ 1, -2, 30}\n[int64 tensor of shape [3]]",
                 tostring(mg.tensor({1, -2, 30}, "int64")))
    local big = tostring(mg.tensor({9007199254740993}, "int64"))
    assert.truthy(big:find("9007199254740993", 1, true))
  end)

  it("switches to scientific notation for very large or small values", function()
    assert.equal("{1.0000e-05, 1.0000e+00}\n[float64 tensor of shape [2]]",
                 tostring(mg.tensor({1e-5, 1}, "float64")))
    assert.truthy(tostring(mg.tensor({1e10, 1.5}, "float64")):find("1.0000e+10", 1, true))
  end)

  it("shows nan and inf", function()
    assert.equal("{1.5000,    nan,    inf,   -inf}\n[float32 tensor of shape [4]]",
                 tostring(mg.tensor({1.5, 0 / 0, math.huge, -math.huge})))
  end)

  it("shows a 0-d tensor as a bare value", function()
    assert.equal("3.5000\n[float32 tensor of shape []]", tostring(mg.tensor(3.5)))
    assert.equal("7\n[int64 tensor of shape []]", tostring(mg.tensor(7, "int64")))
    assert.equal("2.\n[float64 tensor of shape []]",
                 tostring(mg.tensor(2, "float64")))
    assert.truthy(tostring(mg.tensor(0 / 0)):find("^nan\n"))
  end)

  it("shows empty tensors", function()
    assert.equal("{}\n[float32 tensor of shape [0]]", tostring(mg.zeros(0)))
    assert.equal("{}\n[float32 tensor of shape [0,3]]", tostring(mg.zeros(0, 3)))
  end)

  it("shows the nesting of empty rows, which mg.tensor reads back", function()
    local s = tostring(mg.zeros(2, 0, "int64"))
    assert.equal("{{},\n {}}\n[int64 tensor of shape [2,0]]", s)
    local literal = s:match("^(.-)\n%[")
    assert.same({2, 0}, mg.tensor(load("return " .. literal)()):shape())
    local many = tostring(mg.zeros(5000, 0))
    assert.is_true(#many < 200, "abbreviated")
  end)

  it("separates the blocks of a 3-D tensor with a blank line", function()
    assert.equal(table.concat({
      "{{{0, 1},",
      "  {2, 3}},",
      "",
      " {{4, 5},",
      "  {6, 7}}}",
      "[int64 tensor of shape [2,2,2]]"}, "\n"),
      tostring(mg.arange(8):reshape(2, 2, 2)))
  end)

  it("shows a view's logical values, not its storage order", function()
    assert.equal("{{1, 3},\n {2, 4}}\n[int64 tensor of shape [2,2]]",
                 tostring(mg.tensor({{1, 2}, {3, 4}}, "int64"):t()))
  end)

  it("abbreviates a 100x100 tensor to its corners", function()
    local s = tostring(mg.arange(10000, "float32"):reshape(100, 100))
    local ls = lines(s)
    assert.is_true(#ls < 30, #ls .. " lines")
    assert.equal("{{   0.,    1.,    2., ...,   97.,   98.,   99.},", ls[1])
    assert.equal(" ...,", ls[4])
    assert.equal(" {9900., 9901., 9902., ..., 9997., 9998., 9999.}}", ls[7])
    assert.equal("[float32 tensor of shape [100,100]]", ls[#ls])
    assert.is_nil(s:find("5000.", 1, true))
  end)

  it("abbreviates a long vector", function()
    assert.equal("{   0,    1,    2, ..., 1997, 1998, 1999}\n" ..
                 "[int64 tensor of shape [2000]]", tostring(mg.arange(2000)))
  end)

  it("does not abbreviate up to 1000 elements, wrapping long rows", function()
    local s = tostring(mg.arange(1000))
    assert.is_nil(s:find("...", 1, true))
    assert.truthy(s:find("999}", 1, true))
    for _, l in ipairs(lines(s)) do assert.is_true(#l <= 80, l) end
  end)
end)
