-- The example notebook (examples/notebook/fashion_mnist.ipynb), run end to
-- end on the kernel by nbclient (Debian's python3-nbclient) as `jupyter
-- nbconvert --execute` runs it: every cell's outputs are what a user sees.
local json = require "dkjson"
local BUILD = require "support.build"
local shell = require "support.shell"

local NOTEBOOK = "examples/notebook/fashion_mnist.ipynb"

-- A cell's source or an output's text: nbformat stores either a string or
-- a list of lines.
local function text(v)
  if type(v) == "table" then return table.concat(v) end
  return v or ""
end

describe("the example notebook", function()
  local cells

  setup(function()
    local out = os.tmpname()
    local log, code = shell.run_merged("/usr/bin/python3 tools/run-notebook.py " ..
      shell.quote(BUILD .. "/moongrad") .. " " .. NOTEBOOK .. " " .. shell.quote(out))
    assert(code == 0, "nbclient could not run the notebook:\n" .. log)
    local nb = json.decode(shell.read_file(out))
    os.remove(out)
    cells = {}
    for _, c in ipairs(nb.cells) do
      if c.cell_type == "code" then cells[#cells + 1] = c end
    end
  end)

  -- The code cell whose source contains s, and its outputs.
  local function cell(s)
    for _, c in ipairs(cells) do
      if text(c.source):find(s, 1, true) then return c, c.outputs end
    end
    error("no cell contains " .. s)
  end

  local function output(outs, kind, mime)
    for _, o in ipairs(outs) do
      if o.output_type == kind and (not mime or (o.data and o.data[mime])) then return o end
    end
  end

  it("prints to the cell as a stream", function()
    local _, outs = cell("mg.manual_seed(0)")
    local s = output(outs, "stream")
    assert.truthy(s and text(s.text):match("^moongrad %d+%.%d+%.%d+ on %d+ threads\n$"), s and text(s.text))
  end)

  it("shows a final expression's values as the cell's result", function()
    local _, outs = cell("x:shape(), y:shape()")
    local r = output(outs, "execute_result")
    assert.are.equal("{10000, 1, 28, 28}\t{10000}", text(r.data["text/plain"]))
  end)

  it("shows a batch of images as a PNG grid, and a tensor as an HTML table", function()
    local _, outs = cell("mg.display(x:narrow(1, 1, 16))")
    local png = output(outs, "display_data", "image/png")
    assert.truthy(png, "no PNG")
    -- a 1-channel grid of 8 x 2 images of 28 pixels, 2 apart: 242 x 62
    local bytes = require("support.base64").decode(text(png.data["image/png"]))
    assert.are.equal("\137PNG", bytes:sub(1, 4))
    local w, h = string.unpack(">I4>I4", bytes, 17)
    assert.are.same({ 242, 62 }, { w, h })
    local labels = output(outs, "stream")
    assert.truthy(text(labels.text):find("^Ankle boot, Pullover, "), text(labels.text))
    local _, touts = cell("x[1][1]:narrow(1, 12, 5)")
    local html = text(output(touts, "execute_result").data["text/html"])
    assert.truthy(html:find("<caption>float32 tensor of shape [5,6]</caption>", 1, true), html)
  end)

  it("answers ?name with the help text", function()
    local _, outs = cell("?nn.Conv2d")
    local h = text(output(outs, "display_data").data["text/plain"])
    assert.truthy(h:find("^nn%.Conv2d%(in_channels, out_channels, kernel_size"), h)
    assert.truthy(h:find("\nExample:\n", 1, true), h)
  end)

  it("leaves train.fit's live progress at its end: the epochs' lines and the curves", function()
    local _, outs = cell("history = train.fit(net")
    local bar = output(outs, "display_data", "text/html")
    local lines = text(bar.data["text/plain"])
    assert.truthy(lines:match("^epoch 1/3  train_loss [%d.]+  train_accuracy [%d.]+  val_loss [%d.]+" ..
                              "  val_accuracy [%d.]+  lr 0%.003  [%d.]+s\nepoch 2/3 .*\nepoch 3/3 "), lines)
    assert.truthy(text(bar.data["text/html"]):find('class="moongrad-progress"', 1, true))
    local svg = output(outs, "display_data", "image/svg+xml")
    assert.truthy(text(svg.data["image/svg+xml"]):find("^<svg"))
    assert.truthy(text(svg.data["image/svg+xml"]):find(">Loss<", 1, true))
    -- the model learnt: 3 epochs on 6,000 images reach well past chance
    local acc = tonumber(lines:match("epoch 3/3 .-val_accuracy ([%d.]+)"))
    assert.is_true(acc > 0.6, "validation accuracy " .. tostring(acc))
  end)

  it("shows a chart as a drawing", function()
    local _, outs = cell("plot.confusion_matrix(counts")
    local r = output(outs, "execute_result", "image/svg+xml")
    assert.truthy(text(r.data["image/svg+xml"]):find("Ankle boot", 1, true))
  end)

  it("reports an error in its cell, and the next cell runs", function()
    local _, outs = cell("net(mg.zeros(1, 3, 28, 28))")
    local e = output(outs, "error")
    assert.truthy(e.evalue:find("Conv2d: expected 4-D [N, 1, H, W] input, got shape [1,3,28,28]", 1, true),
                  e.evalue)
    local _, after = cell("still here")
    assert.truthy(text(output(after, "stream").text):find("^still here: 3 epochs"))
  end)
end)
