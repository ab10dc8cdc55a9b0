-- moongrad.nn.bridge: PyTorch's state-dict names and moongrad's, without a
-- model at hand.
--
--   net:load_state_dict(nn.from_torch(mg.load("torch_model.safetensors")))
--   mg.save("for_torch.safetensors", nn.to_torch(net:state_dict()))
--
-- The one difference in names is the numbering of container children:
-- PyTorch's Sequential and ModuleList call theirs 0, 1, ...; moongrad's call
-- them 1, 2, ..., as every index in Lua. Without the model, a path segment
-- made of digits is taken to be such an index (the last segment, the
-- parameter's own name, never is). With the model, {torch = true} on
-- state_dict and load_state_dict maps exactly, and should be preferred when
-- a ModuleDict has keys made of digits.
local mg = require "moongrad"

local is_tensor = mg.is_tensor
local type, error, tostring, pairs = type, error, tostring, pairs
local getmetatable, setmetatable, tointeger, tonumber = getmetatable, setmetatable,
                                                         math.tointeger, tonumber
local concat, fmt = table.concat, string.format

local bridge = {}

-- Each segment of name but the last, shifted by delta when it is digits.
local function shift(name, delta, who)
  local parts = {}
  for seg in (name .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = seg end
  for i = 1, #parts - 1 do
    local seg = parts[i]
    if seg:match("^%d+$") then
      local n = tointeger(tonumber(seg))
      if n == nil then
        error(fmt("%s: '%s': index %s is too large", who, name, seg), 3)
      end
      if n + delta < 0 then
        error(fmt("%s: '%s' has container index %s, but moongrad's start at 1 (is it already " ..
                  "in PyTorch's names?)", who, name, seg), 3)
      end
      parts[i] = tostring(n + delta)
    end
  end
  return concat(parts, ".")
end

local function rename(sd, delta, who)
  if type(sd) ~= "table" then
    error(fmt("%s: expects a state dict (a table of name = tensor), got %s", who,
              is_tensor(sd) and "a tensor" or type(sd)), 3)
  end
  local out = {}
  for name, t in pairs(sd) do
    if type(name) ~= "string" then
      error(fmt("%s: state dict names must be strings, got %s %s", who, type(name),
                tostring(name)), 3)
    end
    out[shift(name, delta, who)] = t
  end
  -- the variants moongrad recorded travel along (their paths are its own)
  local mt = getmetatable(sd)
  if type(mt) == "table" and mt.__metadata ~= nil then
    setmetatable(out, {__metadata = mt.__metadata})
  end
  return out
end

-- from_torch(sd) --> a new table: PyTorch's names (layers.0.weight) as
-- moongrad's (layers.1.weight). The tensors are the same objects.
function bridge.from_torch(sd) return rename(sd, 1, "nn.from_torch") end

-- to_torch(sd) --> a new table: moongrad's names as PyTorch's.
function bridge.to_torch(sd) return rename(sd, -1, "nn.to_torch") end

return bridge
