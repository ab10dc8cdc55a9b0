-- scripts/char_lm.lua runs end to end with a few steps: every model trains,
-- reports its validation loss per character and samples words, and the
-- warm-up comparison is drawn. (How well the models learn shows in a full
-- run; a spec cannot wait for one.) Specs run from the repository root,
-- after `make`.

local BUILD = require "support.build"
describe("scripts/char_lm.lua", function()
  local out_dir = os.tmpname()
  local out, code

  setup(function()
    os.remove(out_dir)
    local p = io.popen((BUILD .. "/moongrad scripts/char_lm.lua --steps 20 --eval-every 10 --compare-steps 10 --val-words 300 --samples 3 "
      .. "--out %s 2>&1 </dev/null"):format(out_dir))
    out = p:read("a")
    local _
    _, _, code = p:close()
  end)
  teardown(function() os.execute(("rm -rf '%s'"):format(out_dir)) end)

  it("finishes without errors", function()
    assert.equal(0, code, out)
  end)

  it("reports a finite validation loss per character for every model, below uniform guessing", function()
    for _, name in ipairs({ "mlp", "lstm", "transformer" }) do
      local v = tonumber(out:match("final validation loss per character: " .. name .. "%s+(%S+)"))
      assert(v, name .. " has no final line in:\n" .. out)
      -- Guessing uniformly among 27 tokens costs log(27) = 3.30 nats.
      assert(v > 0 and v < math.log(27), name .. ": " .. tostring(v))
    end
  end)

  it("samples words made of letters", function()
    for _, name in ipairs({ "mlp", "lstm", "transformer" }) do
      local line = out:match(name .. " samples: ([^\n]*)")
      assert(line, name .. " samples missing")
      assert.matches("^[a-z ]*$", line)
    end
  end)

  it("draws the transformer with and without warm-up, at two learning rates, in one SVG", function()
    local f = assert(io.open(out_dir .. "/warmup.svg"))
    local svg = f:read("a")
    f:close()
    for _, lr in ipairs({ "0.01", "0.03" }) do
      assert.matches("lr " .. lr .. ", warm%-up<", svg)
      assert.matches("lr " .. lr .. ", no warm%-up<", svg)
      assert.matches("warm%-up comparison: lr " .. lr .. ", no warm%-up: val %d", out)
    end
  end)
end)
