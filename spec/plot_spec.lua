-- moongrad.plot: SVG line charts of training histories and comparisons.
local plot = require "moongrad.plot"

-- A history shaped like train.fit's: 8 epochs, 40 steps.
local function sample_history()
  local h = {epochs = {}, lr = {}}
  for e = 1, 8 do
    h.epochs[e] = {epoch = e, train_loss = 1.2 * math.exp(-e / 3) + 0.2,
                   val_loss = 1.1 * math.exp(-e / 4) + 0.3,
                   train_accuracy = 0.95 - 0.4 * math.exp(-e / 2),
                   val_accuracy = 0.9 - 0.4 * math.exp(-e / 2.5)}
  end
  for s = 1, 40 do h.lr[s] = 1e-3 * 0.5 * (1 + math.cos(math.pi * (s - 1) / 40)) end
  return h
end

-- Checks the text is one <svg> element whose tags all close, and that every
-- number in its attributes is finite. Returns the attribute numbers.
local function check_svg(svg)
  assert.is_truthy(svg:match("^<svg xmlns=\"http://www.w3.org/2000/svg\""))
  assert.is_truthy(svg:match("</svg>\n$"))
  local depth = 0
  for slash, name, selfclose in svg:gmatch("<(/?)([%w]+)[^>]-(/?)>") do
    if slash == "/" then depth = depth - 1
    elseif selfclose ~= "/" then depth = depth + 1 end
    assert.is_true(depth >= 0, "unbalanced </" .. name .. ">")
  end
  assert.are.equal(0, depth)
  local numbers = {}
  for attr in svg:gmatch('="([^"]*)"') do
    for num in attr:gmatch("[-+]?%d*%.?%d+[eE]?[-+]?%d*") do
      local v = tonumber(num)
      if v then numbers[#numbers + 1] = v end
    end
    assert.is_nil(attr:lower():find("nan", 1, true))
    assert.is_nil(attr:lower():find("inf", 1, true))
  end
  for _, v in ipairs(numbers) do assert.is_true(v == v and math.abs(v) < 1e6) end
  return numbers
end

describe("plot.training_curves", function()
  it("writes an SVG with loss, accuracy and learning-rate panels", function()
    local path = os.tmpname()
    local svg = plot.training_curves(sample_history(), path, {title = "MLP & <co>"})
    local f = assert(io.open(path, "rb"))
    assert.are.equal(svg, f:read("a"))
    f:close()
    os.remove(path)
    check_svg(svg)
    for _, s in ipairs{">Loss<", ">Accuracy<", ">Learning rate<", ">train<", ">validation<",
                       ">epoch<", ">step<", "MLP &amp; &lt;co&gt;"} do
      assert.is_truthy(svg:find(s, 1, true), s)
    end
    local _, lines = svg:gsub("<polyline", "")
    assert.are.equal(5, lines)                   -- 2 loss, 2 accuracy, 1 lr
  end)

  it("leaves out panels the history has nothing for", function()
    local h = {epochs = {{epoch = 1, train_loss = 1.0}, {epoch = 2, train_loss = 0.5}}, lr = {}}
    local svg = plot.training_curves(h)
    check_svg(svg)
    assert.is_truthy(svg:find(">Loss<", 1, true))
    assert.is_nil(svg:find(">Accuracy<", 1, true))
    assert.is_nil(svg:find(">validation<", 1, true))
  end)

  it("breaks a line at non-finite values instead of writing them", function()
    local h = sample_history()
    h.epochs[4].val_loss = 0 / 0
    h.epochs[5].train_loss = math.huge
    local svg = plot.training_curves(h)
    check_svg(svg)
    local _, lines = svg:gsub("<polyline", "")
    assert.are.equal(7, lines)
  end)
end)

describe("plot.lines", function()
  it("draws several named series on one panel, optionally on a log scale", function()
    local series = {}
    for i, name in ipairs{"SGD", "Adam", "RMSprop"} do
      local y = {}
      for s = 1, 50 do y[s] = 2 * math.exp(-s / (10 * i)) + 0.01 end
      series[i] = {name = name, y = y}
    end
    series[3].y[10] = 0                   -- dropped on a log axis
    local svg = plot.lines{series = series, title = "Optimizers", xlabel = "step",
                           ylabel = "loss", log_y = true}
    check_svg(svg)
    for _, s in ipairs{">SGD<", ">Adam<", ">RMSprop<", ">Optimizers<", ">1<", ">0.1<"} do
      assert.is_truthy(svg:find(s, 1, true), s)
    end
    local _, lines = svg:gsub("<polyline", "")
    assert.are.equal(4, lines)
  end)

  it("rejects a call without series", function()
    assert.has_error(function() plot.lines{series = {}} end,
      "lines: series must be a non-empty list of {name = ..., x = {...}, y = {...}}")
  end)
end)

describe("plot.panels", function()
  it("draws a grid of panels with log and categorical x axes and ringed points", function()
    local svg = plot.panels{title = "Grid", columns = 2, panels = {
      {title = "lr", log_x = true, series = {
        {name = "trial", x = {1e-4, 1e-3, 3e-3, 1e-2}, y = {3, 1, 1.5, 2}, line = false},
        {name = "best", x = {1e-3}, y = {1}, line = false, ring = true}}},
      {title = "act", x_labels = {"relu", "gelu"}, series = {{x = {1, 2, 1}, y = {1, 2, 3}, line = false}}},
      {title = "third", series = {{y = {1, 2}}}},
    }}
    check_svg(svg)
    -- two columns: the third panel starts a second row, below the first
    local titles = {}
    for x, y, name in svg:gmatch('<text x="([%d.]+)" y="([%d.]+)" font%-size="15" font%-weight="bold" '
                                 .. 'text%-anchor="middle" [^>]*>([^<]*)<') do
      titles[name] = {tonumber(x), tonumber(y)}
    end
    assert.is_true(titles.lr[2] == titles.act[2] and titles.act[1] > titles.lr[1])
    assert.is_true(titles.third[1] == titles.lr[1] and titles.third[2] > titles.lr[2])
    -- the log axis names its decades (and, over two decades or less, 2 and 5 times them)
    for _, label in ipairs{">1e-4<", ">0.001<", ">0.01<", ">0.002<", ">0.005<", ">relu<", ">gelu<"} do
      assert.is_truthy(svg:find(label, 1, true), label)
    end
    -- the ring: open circles, one in the legend and one at the point
    local _, rings = svg:gsub('<circle [^>]*r="6" fill="none"', "")
    assert.are.equal(2, rings)
  end)

  it("rejects a call without panels", function()
    assert.has_error(function() plot.panels{panels = {}} end,
      "panels: expects {panels = {{series = {...}, ...}, ...}}")
    assert.has_error(function() plot.panels{panels = {{series = {}}}} end,
      "panels: panel 1: series must be a non-empty list of {name = ..., x = {...}, y = {...}}")
  end)
end)

describe("plot axes", function()
  it("puts ticks on round numbers covering the data", function()
    local ax = plot._nice_axis(0.29, 0.97, 6)
    local v = {}
    for i, t in ipairs(ax.ticks) do v[i] = t.label end
    assert.are.same({"0.2", "0.4", "0.6", "0.8", "1.0"}, v)
    assert.is_true(ax.lo <= 0.29 and ax.hi >= 0.97)
  end)

  it("uses every integer on a short integer axis", function()
    local ax = plot._nice_axis(1, 8, 6, true, true)
    assert.are.equal(8, #ax.ticks)
    assert.are.equal("1", ax.ticks[1].label)
  end)

  it("puts log ticks on 1, 2 and 5 times powers of ten", function()
    local ax = plot._log_axis(0.03, 2.5)
    local v = {}
    for i, t in ipairs(ax.ticks) do v[i] = t.label end
    assert.are.same({"0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5"}, v)
  end)
end)

describe("plot.confusion_matrix", function()
  local mg = require "moongrad"

  it("writes each count, each class's accuracy and the overall accuracy", function()
    local path = os.tmpname()
    local svg = plot.confusion_matrix({{8, 2, 0}, {1, 9, 0}, {0, 5, 5}}, {"cat", "dog", "a<b"}, path,
                                      {title = "pets"})
    local f = assert(io.open(path))
    assert.equal(svg, f:read("a"))
    f:close()
    os.remove(path)
    -- 22 of 30 right; rows: 8/10, 9/10, 5/10
    assert.is_truthy(svg:find("accuracy 73.33%% %(22 of 30%)"))
    for _, s in ipairs{">80.0%<", ">90.0%<", ">50.0%<", ">8<", ">9<", ">5<", ">2<", ">1<"} do
      assert.is_truthy(svg:find(s, 1, true), s)
    end
    assert.is_truthy(svg:find("a&lt;b", 1, true))   -- names are escaped
    assert.is_falsy(svg:find(">0<", 1, true))        -- empty cells stay blank
    assert.is_truthy(svg:find("<title>", 1, true) == nil and svg:find("pets", 1, true))
  end)

  it("takes a [K, K] tensor of counts", function()
    local svg = plot.confusion_matrix(mg.tensor({{3, 1}, {0, 4}}, "int64"), {"a", "b"})
    assert.is_truthy(svg:find("accuracy 87.50%% %(7 of 8%)"))
  end)

  it("refuses counts that do not match the classes", function()
    assert.has_error(function() plot.confusion_matrix({{1, 2}}, {"a", "b"}) end,
      "confusion_matrix: expects K rows of K counts and K class names")
    assert.has_error(function() plot.confusion_matrix({{1, 2}, {3}}, {"a", "b"}) end,
      "confusion_matrix: row 2 must hold 2 counts")
    assert.has_error(function() plot.confusion_matrix({{1, -2}, {3, 4}}, {"a", "b"}) end,
      "confusion_matrix: count [1][2] must be a number >= 0, got -2")
  end)
end)
