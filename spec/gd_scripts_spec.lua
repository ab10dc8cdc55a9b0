-- The optimizer example scripts run to the end with small arguments and
-- report what they are there to show. Their seeds are fixed, so the
-- comparisons asserted here hold every run; only wide margins are checked.
-- Specs run from the repository root, after `make`.

local BUILD = require "support.build"
local EXE = BUILD .. "/moongrad"

-- Runs a script with arguments; returns stdout, stderr and the exit code.
local function run(script, args)
  local err = os.tmpname()
  local p = io.popen(("%s %s %s 2>%s </dev/null"):format(EXE, script, args, err))
  local out = p:read("a")
  local _, _, code = p:close()
  local f = assert(io.open(err, "rb"))
  local errtext = f:read("a")
  f:close()
  os.remove(err)
  return out, errtext, code
end

local function last_line(text)
  return text:match("([^\n]*)\n?$")
end

-- "final loss: a 0.1, b 0.2" --> {a = 0.1, b = 0.2}
local function finals(line)
  local list = assert(line:match("^final loss: (.*)$"), "not a final-loss line: " .. line)
  local out = {}
  for item in (list .. ","):gmatch("%s*([^,]+),") do
    local name, value = item:match("^(.-) (%S+)$")
    out[name] = tonumber(value)
  end
  return out
end

describe("scripts/gd_variants.lua", function()
  local out, err, code

  setup(function() out, err, code = run("scripts/gd_variants.lua", "--epochs 20 --points 2000") end)

  it("finishes without errors", function()
    assert.equal("", err)
    assert.equal(0, code)
  end)

  it("prints loss and seconds against examples seen for the three batch sizes", function()
    assert.matches("examples%s+full batch%s+batch 1%s+batch 64", out)
    assert.matches("\n%s+0%s+[%d.]+%s+0%.000", out)
    assert.matches("\n%s+40000%s+[%d.]+%s+[%d.]+%s+[%d.]+%s+[%d.]+%s+[%d.]+%s+[%d.]+\n", out)
    assert.matches("First in examples seen: .+%. First in CPU", (out:gsub("\n", " ")))
  end)

  it("names the cheapest variant per example from the run's own numbers", function()
    local text = out:gsub("\n", " ")
    local named, list = text:match("Per example seen, (.-) costs least %((.-)%)")
    assert(named and list, text)
    local costs = {}
    for name, us in list:gmatch("([%w ]-) ([%d.]+) us") do
      costs[#costs + 1] = {name = name:gsub("^%s+", ""), us = tonumber(us)}
    end
    assert.equal(3, #costs, list)
    assert.equal(named, costs[1].name)
    assert.is_true(costs[1].us <= costs[2].us and costs[2].us <= costs[3].us, list)
  end)

  it("ends with mini-batch and stochastic GD below full batch for equal examples seen", function()
    local f = finals(last_line(out))
    assert.is_number(f["full batch"])
    assert.is_true(f["batch 64"] < f["full batch"], last_line(out))
    assert.is_true(f["batch 1"] < f["full batch"], last_line(out))
  end)
end)

describe("scripts/optimizers.lua", function()
  local out, err, code

  setup(function() out, err, code = run("scripts/optimizers.lua", "--steps 400 --points 1000") end)

  it("finishes without errors", function()
    assert.equal("", err)
    assert.equal(0, code)
  end)

  it("prints the five loss curves side by side", function()
    assert.matches("step%s+SGD%s+momentum%s+Adam%s+RMSprop%s+Adagrad", out)
    local rows = 0
    for line in out:gmatch("[^\n]+") do
      if line:match("^%s+%d+" .. ("%s+[%d.]+"):rep(5) .. "$") then rows = rows + 1 end
    end
    assert.is_true(rows >= 15, "rows: " .. rows)
  end)

  it("ends with every optimizer below the starting loss and the adaptive ones below SGD", function()
    local start = tonumber(out:match("\n%s+0%s+([%d.]+)"))
    local f = finals(last_line(out))
    for _, name in ipairs({"SGD", "momentum", "Adam", "RMSprop", "Adagrad"}) do
      assert.is_number(f[name], name)
      assert.is_true(f[name] < start, name .. ": " .. last_line(out))
    end
    for _, name in ipairs({"momentum", "Adam", "RMSprop", "Adagrad"}) do
      assert.is_true(f[name] < f.SGD, name .. ": " .. last_line(out))
    end
  end)
end)
