-- The main job, end to end on the real data (one short epoch here; `make
-- demo` runs the full one): it trains, reports test accuracy in the agreed
-- format and leaves a checkpoint, a history and a chart behind.

local BUILD = require "support.build"
local mg = require "moongrad"

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

describe("scripts/fashion_mnist_mlp.lua", function()
  local out_dir = os.tmpname()
  os.remove(out_dir)

  teardown(function() os.execute("rm -rf '" .. out_dir .. "'") end)

  it("trains, reports test accuracy on its last line and writes checkpoint, history and chart", function()
    local out, code = run((BUILD .. "/moongrad scripts/fashion_mnist_mlp.lua --epochs 1 --out '%s'"):format(out_dir))
    assert.are.equal(0, code, out)
    local last = out:match("([^\n]+)\n?$")
    local acc = tonumber(last:match("^test accuracy: (%d+%.%d%d)%%$"))
    assert.is_number(acc, last)
    assert.is_true(acc > 80, last)            -- one epoch; the full run reaches 89%+
    local net_file = out_dir .. "/best.safetensors"
    local tensors = mg.load(net_file)
    assert.is_truthy(tensors["model.1.weight"])
    local csv = assert(io.open(out_dir .. "/history.csv")):read("a")
    assert.matches("^epoch,", csv)
    local svg = assert(io.open(out_dir .. "/curves.svg")):read("a")
    assert.matches("^<svg", svg)
  end)

  it("rejects an unknown flag with its usage and the flag it was likely meant to be", function()
    local out, code = run(BUILD .. "/moongrad scripts/fashion_mnist_mlp.lua --epoch 3")
    assert.are.equal(2, code, out)
    assert.matches("^Usage: fashion_mnist_mlp%.lua ", out)
    assert.is_truthy(out:find("unknown option '--epoch'\nDid you mean '--epochs'?", 1, true), out)
  end)
end)

describe("the comparisons on Fashion-MNIST", function()
  local out_dir = os.tmpname()
  os.remove(out_dir)
  teardown(function() os.execute("rm -rf '" .. out_dir .. "'") end)

  it("trains five optimizers from the same start and draws their curves in one SVG", function()
    local out, code = run((BUILD .. "/moongrad scripts/fashion_mnist_optimizers.lua --epochs 1 --out '%s'"):format(out_dir))
    assert.are.equal(0, code, out)
    for _, name in ipairs { "SGD", "momentum", "Adam", "RMSprop", "Adagrad" } do
      local acc = tonumber(out:match("\n" .. name .. "%s+(%d+%.%d+)%%"))
      assert.is_true(acc ~= nil and acc > 70, name .. ": " .. out)
    end
    local svg = assert(io.open(out_dir .. "/optimizers.svg")):read("a")
    for _, name in ipairs { "SGD", "momentum", "Adam", "RMSprop", "Adagrad" } do
      assert.is_truthy(svg:find(">" .. name .. "<", 1, true), name)
    end
  end)

  it("compares full-batch, stochastic and mini-batch descent on the same budget", function()
    local out, code = run((BUILD .. "/moongrad scripts/fashion_mnist_gd_variants.lua --epochs 0.1 --out '%s'"):format(out_dir))
    assert.are.equal(0, code, out)
    local loss = {}
    for name, l in out:gmatch("\n?(%a[%a%- ]+) %(.-validation loss (%d+%.%d+)") do loss[name] = tonumber(l) end
    assert.is_number(loss["mini-batch"], out)
    assert.is_number(loss["full batch"], out)
    -- a tenth of an epoch is one full-batch step: mini-batches are far ahead
    assert.is_true(loss["mini-batch"] < loss["full batch"], out)
    assert.is_truthy(io.open(out_dir .. "/loss_vs_examples.svg"))
    assert.is_truthy(io.open(out_dir .. "/loss_vs_seconds.svg"))
  end)
end)

describe("scripts/fashion_mnist_cnn.lua", function()
  local out_dir = os.tmpname()
  os.remove(out_dir)
  teardown(function() os.execute("rm -rf '" .. out_dir .. "'") end)

  it("trains the CNN with augmentation and reports test accuracy on its last line", function()
    local out, code = run((BUILD .. "/moongrad scripts/fashion_mnist_cnn.lua --epochs 1 --out '%s'"):format(out_dir))
    assert.are.equal(0, code, out)
    local acc = tonumber(out:match("test accuracy: (%d+%.%d%d)%%\n?$"))
    assert.is_true(acc ~= nil and acc > 80, out:sub(-300))   -- one epoch; the full run is longer
    assert.is_truthy(mg.load(out_dir .. "/best.safetensors")["model.1.weight"])
    assert.matches("^<svg", assert(io.open(out_dir .. "/curves.svg")):read("a"))
  end)
end)
