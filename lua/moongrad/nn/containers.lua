-- moongrad.nn.containers: modules that hold modules.
--
--   Sequential(m1, m2, ...)   children "1", "2", ...; forward chains them
--   ModuleList({m1, m2, ...}) a list to index and loop over; no forward
--   ModuleDict({name = m})    modules by name; no forward
--
-- Lists index like Lua arrays and like tensors: seq[1], seq[-1] (the last),
-- #seq, ipairs(seq); seq[2] = nn.ReLU() replaces child 2.
local Module = require "moongrad.nn.module"

local is_module = Module.is_module
local type, error, pairs, ipairs, select, tostring = type, error, pairs, ipairs, select, tostring
local rawget = rawget
local sort, fmt = table.sort, string.format

local containers = {}

-- Constructor errors name the line that called nn.Sequential(...).
local CTOR = 3

local function check_module(m, who, where, level)
  if not is_module(m) then
    local what = type(m) == "table" and "table that is not a module" or type(m)
    error(fmt("%s: %s is a %s, expected a module", who, where, what), level + 1)
  end
end

local function list_len(self) return #self._modules.names end

-- The children in order, for `for i, m in ipairs(list)` written as a method.
local function list_append(self, m, level)
  check_module(m, self:class_name(), "append's argument", level + 1)
  self:add_module(tostring(#self._modules.names + 1), m)
  return self
end

---------------------------------------------------------------------------
-- Sequential(m1, m2, ...) or Sequential({m1, m2, ...}): forward(x) feeds x
-- through each child in turn and returns the last output.
local Sequential = Module:extend("Sequential")
containers.Sequential = Sequential
Sequential.__len = list_len
-- children are numbered: PyTorch's names count them from 0 (state_dict.lua)
Sequential._indexed_children = true

function Sequential:init(...)
  local n, mods = select("#", ...), {...}
  if n == 1 and type(mods[1]) == "table" and not is_module(mods[1]) then
    mods = mods[1]
    n = #mods
  end
  for i = 1, n do
    check_module(mods[i], "Sequential", "argument " .. i, CTOR)
    self:add_module(tostring(i), mods[i])
  end
end

function Sequential:forward(x)
  local mods = self._modules
  for _, name in ipairs(mods.names) do x = mods.map[name](x) end
  return x
end

-- append(m) adds m as the next child; returns the Sequential.
function Sequential:append(m) return list_append(self, m, 2) end

---------------------------------------------------------------------------
-- ModuleList([{m1, m2, ...}]): holds modules so their parameters register;
-- the owner decides how to call them.
local ModuleList = Module:extend("ModuleList")
containers.ModuleList = ModuleList
ModuleList.__len = list_len
ModuleList._indexed_children = true

function ModuleList:init(mods)
  if mods == nil then return end
  if type(mods) ~= "table" or is_module(mods) then
    error(fmt("ModuleList: expects an array of modules, got %s",
              is_module(mods) and "a module" or type(mods)), CTOR)
  end
  for i, m in ipairs(mods) do
    check_module(m, "ModuleList", "element " .. i, CTOR)
    self:add_module(tostring(i), m)
  end
end

function ModuleList:append(m) return list_append(self, m, 2) end

-- extend({m, ...}) appends each module in order; returns the list. On the
-- class itself it is Module's extend: nn.ModuleList:extend("Blocks").
function ModuleList:extend(mods)
  if rawget(self, "_instance_mt") then return Module.extend(self, mods) end
  if type(mods) ~= "table" or is_module(mods) then
    error(fmt("ModuleList: extend expects an array of modules, got %s", type(mods)), 2)
  end
  for i, m in ipairs(mods) do
    check_module(m, "ModuleList", "extend's element " .. i, 2)
  end
  for _, m in ipairs(mods) do list_append(self, m, 2) end
  return self
end

---------------------------------------------------------------------------
-- ModuleDict([{name = m, ...}]): modules by name. The constructor's names
-- register in sorted order (a Lua table has none); later assignments
-- (d.head = m) in the order they happen. Iterate with pairs(d) or d:items().
local ModuleDict = Module:extend("ModuleDict")
containers.ModuleDict = ModuleDict
ModuleDict.__len = list_len

function ModuleDict:init(mods)
  if mods == nil then return end
  if type(mods) ~= "table" or is_module(mods) then
    error(fmt("ModuleDict: expects a table of name = module, got %s",
              is_module(mods) and "a module" or type(mods)), CTOR)
  end
  local names = {}
  for k, m in pairs(mods) do
    if type(k) ~= "string" then
      error(fmt("ModuleDict: names must be strings, got %s %s", type(k), tostring(k)), CTOR)
    end
    check_module(m, "ModuleDict", "'" .. k .. "'", CTOR)
    names[#names + 1] = k
  end
  sort(names)
  for _, k in ipairs(names) do self:add_module(k, mods[k]) end
end

-- keys() --> array of names in order; values() --> array of modules.
function ModuleDict:keys()
  local out = {}
  for i, name in ipairs(self._modules.names) do out[i] = name end
  return out
end

function ModuleDict:values()
  local out, mods = {}, self._modules
  for i, name in ipairs(mods.names) do out[i] = mods.map[name] end
  return out
end

-- items() --> an iterator of name, module in order; pairs(d) does the same.
function ModuleDict:items()
  local names, map, i = self:keys(), self._modules.map, 0
  return function()
    i = i + 1
    local name = names[i]
    if name then return name, map[name] end
  end
end

function ModuleDict:contains(name) return self._modules.map[name] ~= nil end

ModuleDict.__pairs = function(self) return self:items() end

return containers
