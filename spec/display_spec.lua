-- moongrad.display: values as MIME bundles (what a notebook shows), and
-- mg.display outside a notebook.
local mg = require "moongrad"
local display = require "moongrad.display"
local shell = require "support.shell"
local BUILD = require "support.build"

-- Base64 back to bytes, written here independently of the encoder.
local function unbase64(b64)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local bytes, bits, nbits = {}, 0, 0
  for ch in b64:gmatch("[^=]") do
    bits = (bits << 6 | (alphabet:find(ch, 1, true) - 1)) & 0xFFFF
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      bytes[#bytes + 1] = string.char(bits >> nbits & 255)
    end
  end
  return table.concat(bytes)
end

describe("moongrad.display", function()
  it("base64-encodes as RFC 4648's test vectors", function()
    local want = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                   fooba = "Zm9vYmE=", foobar = "Zm9vYmFy", ["\0\255\128"] = "AP+A" }
    for input, b64 in pairs(want) do assert.are.equal(b64, display.base64(input)) end
  end)

  it("shows a small tensor as text and as an HTML table of all its values", function()
    local t = mg.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "int64")
    local b = display.bundle(t)
    assert.are.equal(tostring(t), b["text/plain"])
    local html = b["text/html"]
    assert.truthy(html:find("<caption>int64 tensor of shape [2,3]</caption>", 1, true), html)
    assert.truthy(html:find("<tr><td>1</td><td>2</td><td>3</td></tr>", 1, true), html)
    assert.truthy(html:find("<tr><td>4</td><td>5</td><td>6</td></tr>", 1, true), html)
    assert.is_nil(b["image/png"])
  end)

  it("summarises a big tensor's table to its first and last five rows and columns", function()
    local t = mg.arange(1, 30 * 40 + 1):reshape(30, 40)
    local html = display.bundle(t)["text/html"]
    local rows = select(2, html:gsub("<tr>", ""))
    assert.are.equal(11, rows) -- 5, the "…" row, 5
    local first = html:match("<tr>(.-)</tr>")
    local cells = {}
    for c in first:gmatch("<td>(.-)</td>") do cells[#cells + 1] = c end
    assert.are.same({ "1", "2", "3", "4", "5", "…", "36", "37", "38", "39", "40" }, cells)
  end)

  it("shows tensors of more than two dimensions as their text, escaped", function()
    local html = display.bundle(mg.zeros(2, 2, 2))["text/html"]
    assert.truthy(html:find("<pre>", 1, true))
    assert.truthy(html:find("float32 tensor of shape [2,2,2]", 1, true))
  end)

  it("shows a chart's SVG text as a drawing", function()
    local svg = require("moongrad.plot").lines { series = { { name = "loss", y = { 3, 2, 1 } } } }
    local b = display.bundle(svg)
    assert.are.equal(svg, b["image/svg+xml"])
    assert.are.equal("<SVG chart 760x480>", b["text/plain"])
  end)

  it("gives an image the PNG that mg.image.save writes, only when asked", function()
    local img = mg.randint(0, 255, { 3, 5, 7 }):to("uint8")
    assert.is_nil(display.bundle(img)["image/png"])
    local b64 = display.bundle(img, { image = true })["image/png"]
    local path = os.tmpname()
    mg.image.save(path, img)
    assert.are.equal(display.base64(shell.read_file(path)), b64)
    os.remove(path)
  end)

  it("lays a batch of images out as a grid, 2 pixels apart, 8 to a row", function()
    local batch = mg.full({ 10, 1, 2, 3 }, 200, "uint8")
    local decoded = mg.image.decode(unbase64(display.bundle(batch, { image = true })["image/png"]))
    -- 2 rows of (2 + 2) pixels and 8 columns of (3 + 2), and the border
    assert.are.same({ 1, 2 * 4 + 2, 8 * 5 + 2 }, decoded:shape())
    assert.are.equal(0, decoded[{ 1, 1, 1 }])   -- border
    assert.are.equal(200, decoded[{ 1, 3, 3 }]) -- image 1's first pixel
    assert.are.equal(0, decoded[{ 1, 7, 13 }])  -- row 2, column 3: past the 10th image
  end)

  it("lets a value choose its own forms through __display", function()
    local v = setmetatable({}, { __display = function() return { ["text/html"] = "<b>hi</b>" } end })
    local b = display.bundle(v)
    assert.are.equal("<b>hi</b>", b["text/html"])
    assert.truthy(b["text/plain"])
    local bad = setmetatable({}, { __display = function() return 1 end })
    assert.has_error(function() display.bundle(bad) end,
                     "display: __display must return a table of MIME type -> text, got number")
  end)

  it("prints the text form outside a notebook", function()
    local out = shell.run_merged(shell.quote(BUILD .. "/moongrad") .. " -e " ..
      shell.quote("local mg = require 'moongrad' mg.display(mg.tensor({1, 2}, 'int64'), 'x')"))
    assert.truthy(out:find("int64", 1, true), out)
    assert.truthy(out:find("\nx\n$"), out)
  end)

  it("refuses to encode what is not an image, naming image.encode and the shape", function()
    assert.has_error(function() mg.image.encode(mg.zeros(2, 2)) end)
    local ok, err = pcall(mg.image.encode, mg.zeros(5, 2, 2))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("image.encode: <memory>: expected an image [C, H, W]", 1, true), err)
    assert.truthy(tostring(err):find("[5,2,2]", 1, true), err)
  end)
end)
