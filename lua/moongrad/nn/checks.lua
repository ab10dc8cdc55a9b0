-- moongrad.nn.checks: the argument checks layer constructors share. Each
-- takes `level` as error() does, counted from the function that calls it,
-- so that the message points at the user's line.
local type, error, tostring = type, error, tostring
local math_type, fmt = math.type, string.format

local checks = {}

-- v as a message shows it: a string in quotes, so that "4" is not read as 4.
local function show(v)
  if type(v) == "string" then return fmt("%q", v) end
  return tostring(v)
end
checks.show = show

-- A positive integer size.
function checks.size(v, name, what, level)
  if math_type(v) ~= "integer" or v < 1 then
    error(fmt("%s: %s must be a positive integer, got %s", name, what, show(v)), level + 1)
  end
end

-- A parameter dtype: "float32" (the default, for nil) or "float64".
function checks.dtype(dtype, name, level)
  if dtype ~= nil and dtype ~= "float32" and dtype ~= "float64" then
    error(fmt("%s: dtype must be \"float32\" or \"float64\", got %s", name, tostring(dtype)), level + 1)
  end
  return dtype or "float32"
end

-- A dropout probability in [0, 1].
function checks.probability(p, name, level)
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then -- not nan either
    error(fmt("%s: dropout must be a probability in [0, 1], got %s", name, show(p)), level + 1)
  end
end

return checks
