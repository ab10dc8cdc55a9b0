-- Every differentiable op, gradient-checked in float64 from one table
-- (spec/support/grad_table.lua) against central finite differences
-- (mg.gradcheck), and the table proven complete: the ops that record a
-- backward are listed in runtime/grad_ops.c, and each must have recorded
-- while its entry ran.
local mg = require "moongrad"
local table_of_ops = require "support.grad_table"

describe("the gradient of", function()
  for _, entry in ipairs(table_of_ops) do
    it(entry[1] .. " agrees with finite differences in float64", function()
      mg.manual_seed(11)
      local inputs = entry[3]()
      mg._audit_ops(true)
      local ok, err = pcall(mg.gradcheck, entry[2], inputs, entry.opts)
      local seen, unlisted = mg._audit_ops(false)
      assert(ok, err)
      assert.is_nil(unlisted, "an op recorded under a name runtime/grad_ops.c lacks")
      local recorded = {}
      for _, name in ipairs(seen) do recorded[name] = true end
      assert.is_true(recorded[entry[1]], entry[1] .. " did not record: the entry checks another op")
    end)
  end
end)

describe("the table of differentiable ops", function()
  it("covers every op that records a backward, once", function()
    local covered, twice = {}, {}
    for _, entry in ipairs(table_of_ops) do
      if covered[entry[1]] then twice[#twice + 1] = entry[1] end
      covered[entry[1]] = true
    end
    assert.same({}, twice)
    local missing = {}
    for _, name in ipairs(mg._grad_ops()) do
      if not covered[name] then missing[#missing + 1] = name end
      covered[name] = nil
    end
    assert.same({}, missing, "ops listed in runtime/grad_ops.c without an entry")
    assert.same({}, covered, "entries for ops runtime/grad_ops.c does not list")
  end)

  it("notices an op recorded under a name the list lacks", function()
    mg._audit_ops(true)
    local x = mg.randn(3, "float64"):requires_grad()
    local _ = x * 2
    local seen, unlisted = mg._audit_ops(false)
    assert.same({"mul"}, seen)
    assert.is_nil(unlisted)
  end)
end)
