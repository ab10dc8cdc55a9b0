-- moongrad.cli: the command lines of scripts, on Debian's lua-argparse.
--
--   local cli = require "moongrad.cli"
--   local parser = cli.parser("fashion_mnist_mlp.lua",
--     "Train an MLP on Fashion-MNIST and chart its history.",
--     "build/moongrad scripts/fashion_mnist_mlp.lua --epochs 3 --out runs/quick")
--   parser:option("--epochs", "Epochs to train.", "20"):convert(cli.integer(1))
--   parser:option("--lr", "Adam's learning rate.", "1e-3"):convert(cli.number(0))
--   parser:flag("--dist", "Train data-parallel under mpirun.")
--   local args = parser:parse(arg)      -- args.epochs, args.lr, args.dist
--
-- The parser is argparse's, with what every moongrad script shares:
-- --help prints the description, each option with its meaning and
-- default, and the example, and exits with status 0; an unknown option, a
-- missing value or a malformed one prints the usage and one line naming
-- it, and exits with status 2 (the shell's convention for a usage error;
-- argparse alone exits with 1, like a failed run). Options keep argparse's
-- names: --batch-size is args.batch_size.
local argparse = require "argparse"

local fmt, tonumber, tostring = string.format, tonumber, tostring
local math_type = math.type

local cli = {}

-- cli.parser(name, description [, example]) --> an argparse parser
function cli.parser(name, description, example)
  local parser = argparse(name, description):help_max_width(80)
  if example then parser:epilog("Example:\n   " .. example) end
  parser.error = function(self, msg)
    io.stderr:write(fmt("%s\n\nError: %s\n", self:get_usage(), msg))
    os.exit(2)
  end
  -- a converter's complaint names its option ("--epochs: expected ...")
  local option = parser.option
  parser.option = function(self, names, ...)
    local opt = option(self, names, ...)
    local convert = opt.convert
    local shown = tostring(names):match("%-%-[%w-]+") or tostring(names)
    opt.convert = function(o, f)
      return convert(o, function(text)
        local v, why = f(text)
        if v == nil then return nil, shown .. ": " .. (why or ("malformed value " .. text)) end
        return v
      end)
    end
    return opt
  end
  return parser
end

local function bounds_text(lo, hi)
  if lo and hi then return fmt(" in %s..%s", tostring(lo), tostring(hi)) end
  if lo then return fmt(" >= %s", tostring(lo)) end
  if hi then return fmt(" <= %s", tostring(hi)) end
  return ""
end

-- cli.integer([lo [, hi]]) --> a converter: the text as an integer within
-- the bounds, or nil and why not.
function cli.integer(lo, hi)
  return function(s)
    local v = math.tointeger(tonumber(s))
    if not v or (lo and v < lo) or (hi and v > hi) then
      return nil, fmt("expected an integer%s, got %s", bounds_text(lo, hi), s)
    end
    return v
  end
end

-- cli.number([above [, upto]]) --> a converter: the text as a finite
-- number > above (when given) and <= upto (when given).
function cli.number(above, upto)
  return function(s)
    local v = tonumber(s)
    if not v or v ~= v or v == math.huge or v == -math.huge or (above and v <= above)
       or (upto and v > upto) then
      local want = above and fmt(" > %s", tostring(above)) or ""
      if upto then want = want .. (above and " and" or "") .. fmt(" <= %s", tostring(upto)) end
      return nil, fmt("expected a number%s, got %s", want, s)
    end
    if math_type(v) == "integer" then v = v + 0.0 end
    return v
  end
end

return cli
