-- Small helpers the Lua library shares.
local type, error, pairs, tostring = type, error, pairs, tostring
local fmt, concat, sort = string.format, table.concat, table.sort

local util = {}

-- Checks an options table against the names `known` (a set: name -> true)
-- and returns it, or {} for nil. Errors name `name` and list the known
-- options; `level` is error()'s level as seen from the caller of
-- check_options (1 = that caller).
function util.check_options(opts, name, known, level)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(fmt("%s: options must be a table, got %s", name, type(opts)), level + 1)
  end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      sort(names)
      error(fmt("%s: unknown option '%s' (known: %s)", name, tostring(k),
                concat(names, ", ")), level + 1)
    end
  end
  return opts
end

-- Parses a script's "--name value" flags into a copy of `defaults`; a
-- number default makes the value a number; a flag whose default is false
-- may stand alone (--dist: true). Unknown flags and missing or
-- malformed values print a message listing the flags and exit with 2.
function util.parse_flags(args, defaults)
  local opts, names = {}, {}
  for k, v in pairs(defaults) do opts[k] = v; names[#names + 1] = "--" .. k end
  sort(names)
  local function fail(msg)
    io.stderr:write(msg, "; flags: ", concat(names, " "), "\n")
    os.exit(2)
  end
  local i = 1
  while args and args[i] do
    local name = args[i]:match("^%-%-([%w-]+)$")
    if not name or defaults[name] == nil then fail(fmt("unknown argument %q", args[i])) end
    local value = args[i + 1]
    -- a flag whose default is false is a switch when no value follows (--dist)
    if defaults[name] == false and (value == nil or value:match("^%-%-")) then
      value, i = true, i - 1
    end
    if value == nil then fail("--" .. name .. " needs a value") end
    if type(defaults[name]) == "number" then
      value = tonumber(value)
      if not value then fail(fmt("--%s: %q is not a number", name, args[i + 1])) end
    end
    opts[name] = value
    i = i + 2
  end
  return opts
end

-- require(modname) for one of moongrad's optional C modules (file, such as
-- "dist_mpi.so"), built beside the core. When package.cpath does not find
-- it, it is looked for next to the running core first, since it must match
-- that core. Returns the module, or nil and why it could not be loaded.
function util.require_beside_core(modname, file)
  local ok, mod = pcall(require, modname)
  if ok then return mod end
  local core = require("moongrad")._core_file() or ""
  local dir = core:match("^(.*)/[^/]*$") or "."
  local found
  for _, cand in ipairs{dir .. "/" .. file, dir .. "/lua/moongrad/" .. file,
                        dir .. "/../lib/lua/5.4/moongrad/" .. file,
                        dir .. "/lua/5.4/moongrad/" .. file} do
    local f = io.open(cand, "rb")
    if f then
      f:close()
      found = cand
      break
    end
  end
  local loader, err = nil, "no moongrad/" .. file .. " beside " .. core .. " or on package.cpath"
  if found then loader, err = package.loadlib(found, "luaopen_" .. modname:gsub("%.", "_")) end
  if not loader then return nil, tostring(err) end
  mod = loader()
  package.loaded[modname] = mod
  return mod
end

return util
