-- Every script in scripts/ answers --help usefully and refuses nonsense
-- (moongrad.cli on lua-argparse): a description, each option with its
-- meaning and default, an example; an unknown option is an error with
-- exit status 2, before any work starts.
local BUILD = require "support.build"
local shell = require "support.shell"
local cli = require "moongrad.cli"

local function scripts()
  local list = {}
  local p = io.popen("ls scripts/*.lua")
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

local function run(script, args)
  return shell.run_merged(("%s/moongrad %s %s"):format(BUILD, script, args))
end

describe("every script's command line", function()
  for _, script in ipairs(scripts()) do
    it(script .. " answers --help with its options, their defaults and an example", function()
      local out, code = run(script, "--help")
      assert.equal(0, code, out)
      assert.truthy(out:find("^Usage: "), out)
      assert.truthy(out:find("\nOptions:\n", 1, true), out)
      assert.truthy(out:find("\nExample:\n   build/moongrad " .. script, 1, true), out)
      -- every option but --help and switches says what it does and its default
      for line in out:gmatch("\n   (%-%-[^\n]*)") do
        local takes_value = line:find("^%-%-[%w-]+ [<{]")
        if takes_value and not line:find("%-%-help") then
          local block = out:sub(out:find("\n   " .. line, 1, true) + 4)
          local entry = block:match("^(.-)\n   %-") or block:match("^(.-)\n\n") or block
          assert.truthy(entry:find("%(default:%s") or entry:find("required", 1, true)
                        or entry:find("%(optional%)"), script .. ": " .. entry)
        end
      end
    end)

    it(script .. " refuses an unknown option with status 2, before any work", function()
      local out, code = run(script, "--no-such-option 1")
      assert.equal(2, code, out)
      assert.truthy(out:find("unknown option '--no-such-option'", 1, true), out)
      assert.truthy(out:find("^Usage: "), out)
    end)
  end
end)

describe("moongrad.cli", function()
  it("converts integers and numbers within bounds, saying what it expected", function()
    assert.equal(3, cli.integer(1)("3"))
    assert.same({nil, "expected an integer >= 1, got 0"}, {cli.integer(1)("0")})
    assert.same({nil, "expected an integer in 0..9, got 2.5"}, {cli.integer(0, 9)("2.5")})
    assert.equal(0.5, cli.number(0, 1)("0.5"))
    assert.equal("float", math.type(cli.number()("3")))
    assert.same({nil, "expected a number > 0 and <= 1, got 2"}, {cli.number(0, 1)("2")})
    assert.same({nil, "expected a number, got inf"}, {cli.number()("inf")})
  end)
end)
