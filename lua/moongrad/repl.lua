-- How the REPL shows the values an expression returns: tensors by their
-- own __tostring, moongrad's modules as their public names grouped (what
-- help(module) lists), other plain tables as short Lua literals ({2, 3}
-- rather than "table: 0x55..."), everything else as print would.
local help = require "moongrad.help"

local M = {}

local MAX_ITEMS = 20 -- entries shown per table before "..."
local MAX_DEPTH = 3  -- nesting shown before "{...}"

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local show

local function show_table(t, depth, seen)
  if seen[t] then return "{<cycle>}" end
  if depth > MAX_DEPTH then return "{...}" end
  seen[t] = true
  local parts, count = {}, 0
  local n = #t
  for i = 1, n do
    count = count + 1
    if count > MAX_ITEMS then parts[#parts + 1] = "..." break end
    parts[#parts + 1] = show(t[i], depth + 1, seen)
  end
  local keys = {}
  for k in pairs(t) do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    count = count + 1
    if count > MAX_ITEMS then parts[#parts + 1] = "..." break end
    local key = is_identifier(k) and k or "[" .. show(k, depth + 1, seen) .. "]"
    parts[#parts + 1] = key .. " = " .. show(t[k], depth + 1, seen)
  end
  seen[t] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end

function show(v, depth, seen)
  if type(v) == "string" then
    return depth > 0 and ("%q"):format(v) or v
  end
  if type(v) == "table" and getmetatable(v) == nil then
    return show_table(v, depth, seen)
  end
  return tostring(v)
end

-- The text for one value, as the REPL prints it.
function M.show(v)
  return help.module_summary(v) or show(v, 0, {})
end

-- Prints the results of one REPL line, tab-separated like print.
function M.print(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = M.show((select(i, ...))) end
  io.stdout:write(table.concat(out, "\t"), "\n")
end

return M
