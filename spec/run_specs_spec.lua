-- tools/run-specs.sh, what `make test` runs: a line per spec file as it
-- finishes, the skipped specs with their reasons, the failures in full, a
-- plain summary, and an exit status that fails the build on any failure.
local shell = require "support.shell"

local dir = shell.tmpdir()

local function run(files)
  os.execute("rm -rf " .. shell.quote(dir .. "/specs"))
  os.execute("mkdir -p " .. shell.quote(dir .. "/specs"))
  for name, text in pairs(files) do shell.write_file(dir .. "/specs/" .. name, text) end
  return shell.run_merged("sh tools/run-specs.sh " .. shell.quote(dir .. "/specs"))
end

describe("tools/run-specs.sh", function()
  it("prints each spec file with its count and seconds, then the skipped ones and why", function()
    local out, code = run {
      ["a_spec.lua"] = [[
        describe("a", function()
          it("one", function() assert.equal(1, 1) end)
          it("two", function() assert.equal(2, 2) end)
          it("needs tmux", function() pending("tmux is not installed") end)
        end)]],
      ["b_spec.lua"] = [[
        it("three", function() assert.is_true(true) end)
        describe("a block", function() pending("skipped: no compiler here") end)]],
    }
    assert.equal(0, code, out)
    assert.truthy(out:find("a_spec%.lua%s+2 passed, 1 skipped%s+[%d.]+ s%s+%(2 passed so far%)\n"), out)
    assert.truthy(out:find("b_spec%.lua%s+1 passed, 1 skipped%s+[%d.]+ s%s+%(3 passed so far%)\n"), out)
    assert.truthy(out:find("Skipped (2), and why:\n  a needs tmux\n", 1, true), out)
    assert.truthy(out:find("a_spec.lua @ 4: tmux is not installed\n", 1, true), out)
    -- a block's pending says why in its name, with no "nil error" after it
    assert.truthy(out:find("\n  a block skipped: no compiler here\n    [^\n]*b_spec%.lua @ 2\n"), out)
    assert.falsy(out:find("nil error", 1, true), out)
    assert.truthy(out:find("\n3 passed, 0 failed, 2 skipped\n$"), out)
  end)

  it("shows failures and broken files in full and exits with status 1", function()
    local out, code = run {
      ["c_spec.lua"] = [[it("adds", function() assert.equal(4, 2 + 1) end)]],
      ["d_spec.lua"] = [[error("this file does not load")]],
    }
    assert.equal(1, code, out)
    assert.truthy(out:find("c_spec%.lua%s+0 passed, 1 FAILED"), out)
    assert.truthy(out:find("d_spec%.lua%s+0 passed, 1 FAILED"), out)
    assert.truthy(out:find("Failure %-> [^\n]*c_spec.lua @ 1\nadds\n"), out)
    assert.truthy(out:find("Expected objects to be equal.", 1, true), out)
    assert.truthy(out:find("Error %-> [^\n]*d_spec.lua @ 1\n"), out)
    assert.truthy(out:find("this file does not load", 1, true), out)
    assert.truthy(out:find("\n0 passed, 2 failed, 0 skipped\n$"), out)
  end)
end)
