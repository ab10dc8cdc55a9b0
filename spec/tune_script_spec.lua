-- scripts/tune_fashion_mnist.lua runs a small search end to end on real
-- Fashion-MNIST in two workers, prints the leaderboard, the best
-- configuration and its test accuracy, draws the chart, and resumes when
-- run again on the same directory. (How good the search is shows in a
-- full run.) Specs run from the repository root, after `make`.

local BUILD = require "support.build"
describe("scripts/tune_fashion_mnist.lua", function()
  local out_dir = os.tmpname()
  local flags = "--trials 4 --epochs 2 --train 2000 --val 1000 --workers 2 --sampler %s --out %s"
  local first, second, code1, code2

  local function run(trials, sampler)
    local cmd = (BUILD .. "/moongrad scripts/tune_fashion_mnist.lua " .. flags .. " 2>&1 </dev/null")
      :format(sampler, out_dir):gsub("%-%-trials 4", "--trials " .. trials)
    local p = io.popen(cmd)
    local text = p:read("a")
    local _, _, code = p:close()
    return text, code
  end

  setup(function()
    os.remove(out_dir)
    first, code1 = run(4, "bayes")
    second, code2 = run(6, "bayes")
  end)
  teardown(function() os.execute(("rm -rf '%s'"):format(out_dir)) end)

  it("finishes without errors", function()
    assert.equal(0, code1, first)
    assert.equal(0, code2, second)
  end)

  it("runs every trial, prints a leaderboard and the best configuration's test accuracy", function()
    local _, n = first:gsub("\ntrial %d+/4 ", "")
    assert.equal(4, n, first)
    assert.matches("fashion%-mnist%-mlp [^\n]*study.jsonl: 4 trials %(", first)
    -- the parameters the objective asked for, momentum only if a trial chose SGD
    assert.matches("\nrank%s+trial%s+value%s+dropout%s+lr%s+[%w%s]*optimizer%s+weight_decay%s+width"
                   .. "%s+seconds\n", first)
    local val = tonumber(first:match("best: trial %d+, validation accuracy ([%d.]+)%%"))
    local test = tonumber(first:match("test accuracy of the best configuration: ([%d.]+)%%"))
    assert(val and test, first)
    -- ten classes: guessing gives 10%; two epochs on 2,000 images reach far more
    assert.is_true(val > 50 and test > 50, first)
  end)

  it("continues the study when run again on the same directory", function()
    assert.matches("resuming [^\n]*: 4 trials already finished", second)
    local _, again = second:gsub("\ntrial [1-4]/6 ", "")
    local _, new = second:gsub("\ntrial [56]/6 ", "")
    assert.equal(0, again, second)
    assert.equal(2, new, second)
    local lines = 0
    for _ in io.lines(out_dir .. "/study.jsonl") do lines = lines + 1 end
    assert.equal(1 + 6, lines)
  end)

  it("writes the charts and the trials table", function()
    local svg = assert(io.open(out_dir .. "/study.svg")):read("a")
    assert.matches("^<svg", svg)
    assert.truthy(svg:find("validation accuracy", 1, true))
    local params = assert(io.open(out_dir .. "/params.svg")):read("a")
    for _, s in ipairs {">lr (log scale)<", ">adamw<", ">sgd<", ">width (log scale)<", ">best<"} do
      assert.truthy(params:find(s, 1, true), s)
    end
    local csv = assert(io.open(out_dir .. "/trials.csv")):read("a")
    assert.matches("^number,state,value,seconds,dropout,lr,[%w,]*optimizer,weight_decay,width,"
                   .. "attr_epochs,error\n", csv)
    -- a momentum exactly where a trial chose SGD: the conditional parameter
    local head, col = {}, {}
    for name in csv:match("^[^\n]*"):gmatch("[^,]+") do head[#head + 1] = name; col[name] = #head end
    for line in csv:gmatch("\n([^\n]+)") do
      local cells = {}
      for cell in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = cell end
      if cells[col.state] == "complete" then
        local sgd = cells[col.optimizer] == "sgd"
        assert.equal(sgd, col.momentum ~= nil and cells[col.momentum] ~= "", line)
      end
    end
  end)
end)
