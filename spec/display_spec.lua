-- moongrad.display: values as MIME bundles (what a notebook shows), and
-- mg.display outside a notebook.
local mg = require "moongrad"
local display = require "moongrad.display"
local shell = require "support.shell"
local BUILD = require "support.build"

local unbase64 = require("support.base64").decode

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

  it("writes bools and every integer dtype's values exactly in the table", function()
    local b = display.bundle(mg.tensor({ 1, 0 }, "int64"):eq(1):to("bool"))["text/html"]
    assert.truthy(b:find("<tr><td>true</td><td>false</td></tr>", 1, true), b)
    local i = display.bundle(mg.tensor({ 70000, -3 }, "int32"))["text/html"]
    assert.truthy(i:find("<tr><td>70000</td><td>-3</td></tr>", 1, true), i)
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
    local b = display.bundle(img, { image = true })
    local b64 = b["image/png"]
    -- only the picture and a line: a notebook would show HTML before PNG
    assert.is_nil(b["text/html"])
    assert.are.equal("<uint8 image of shape [3,5,7]>", b["text/plain"])
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

  describe("in a notebook (a sink set, as the kernel sets one)", function()
    local sent
    before_each(function()
      sent = {}
      display.set_sink(function(data, id, update) sent[#sent + 1] = { data = data, id = id, update = update } end)
    end)
    after_each(function() display.set_sink(nil) end)

    it("returns a handle per value whose update redraws that output by its id", function()
      local a, b = mg.display("one", "two")
      a:update("three")
      assert.are.equal(3, #sent)
      assert.are.same({ false, false, true }, { sent[1].update, sent[2].update, sent[3].update })
      assert.are.equal(sent[1].id, sent[3].id)
      assert.are_not.equal(sent[1].id, sent[2].id)
      assert.are.equal("three", sent[3].data["text/plain"])
      assert.is_truthy(b.id)
    end)

    it("turns train.fit's progress into a bar and curves redrawn in place", function()
      local nn, optim, train = require "moongrad.nn", require "moongrad.optim", require "moongrad.train"
      local data = require "moongrad.data"
      mg.manual_seed(1)
      local x, y = mg.randn(12, 4), mg.tensor({ 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2 }, "int64")
      local loader = data.DataLoader(data.TensorDataset(x, y), { batch_size = 4 })
      local net = nn.Linear(4, 2)
      train.fit(net, { train = loader, optimizer = optim.SGD(net, { lr = 0.1 }), epochs = 3 })
      local bar, curves = sent[1].id, nil
      for _, m in ipairs(sent) do
        if m.data["image/svg+xml"] then curves = curves or m.id end
      end
      assert.is_truthy(curves, "no curves shown")
      assert.are_not.equal(bar, curves)
      local bar_updates, curve_msgs, last_bar = 0, {}, nil
      for _, m in ipairs(sent) do
        if m.id == bar then
          if m.update then bar_updates = bar_updates + 1 end
          last_bar = m.data
        elseif m.id == curves then
          curve_msgs[#curve_msgs + 1] = m.update
        end
      end
      -- one curves output drawn after epoch 1, redrawn after epochs 2 and 3
      assert.are.same({ false, true, true }, curve_msgs)
      -- the bar: shown once, then only updated (each epoch's start, its last
      -- batch and its summary at least)
      assert.is_true(bar_updates >= 8, "bar updates: " .. bar_updates)
      local text = last_bar["text/plain"]
      assert.is_truthy(text:match("^epoch 1/3  train_loss [%d.]+  lr 0%.1  [%d.]+s\nepoch 2/3 .*\nepoch 3/3 "), text)
      assert.is_truthy(last_bar["text/html"]:find("moongrad-progress", 1, true))
      -- the running bar carries a <progress> element with the batch count
      local seen_running = false
      for _, m in ipairs(sent) do
        local html = m.data["text/html"] or ""
        if m.id == bar and html:find('<progress max="1" value="1.0000"', 1, true)
           and m.data["text/plain"]:find("3/3  loss ", 1, true) then
          seen_running = true
        end
      end
      assert.is_true(seen_running)
    end)

    it("keeps to text lines (or nothing) when fit's progress is false or quiet", function()
      local progress = require "moongrad.train.progress"
      for _, mode in ipairs({ false, "quiet" }) do
        local p = progress.new(mode, io.open("/dev/null", "w"))
        p:epoch_begin(1, 1, 2)
        p:batch(1, 0.5, 4)
        p:batch(2, 0.5, 4)
        p:epoch_end({ epoch = 1, train_loss = 0.5, time = 0 }, { "epoch", "train_loss", "time" }, { epochs = {} })
      end
      assert.are.equal(0, #sent)
      assert.is_truthy(progress.new(true).lines, "true in a notebook shows in place")
    end)
  end)
end)
