-- moongrad.nn.module: the Module base class every layer and model extends.
--
--   local Net = nn.Module:extend("Net")
--   function Net:init(n_in, n_out)       -- the constructor: Net(2, 1) calls it
--     self.fc1 = nn.Linear(n_in, 8)      -- a module: registered as child "fc1"
--     self.fc2 = nn.Linear(8, n_out)
--     self.scale = mg.ones(1):requires_grad()  -- a leaf requiring grad: a parameter
--   end
--   function Net:forward(x)              -- net(x) calls it
--     return self.fc2(self.fc1(x):tanh()) * self.scale
--   end
--
-- Construction. `Cls(...)` makes an empty module (registries ready, training
-- mode on) and then runs `Cls:init(...)`, so a class extending nn.Module
-- directly never needs to call a parent constructor. A class extending a
-- class that does work in its init calls it by name, first thing:
-- `Wide.super.init(self, ...)` (or `nn.Linear.init(self, ...)`). Never write
-- `self.super`: on an instance of a further subclass it names the wrong class.
--
-- Registration. Assigning a field decides what it is, in this order:
--   * a name already registered keeps its kind: a parameter or buffer name
--     takes a tensor or nil, a submodule name takes a module or nil;
--   * a leaf tensor that requires grad becomes a parameter;
--   * a module becomes a submodule;
--   * anything else (numbers, tables, tensors not requiring grad) is a plain
--     attribute. Tensors that should be saved but not trained go through
--     `self:register_buffer(name, t)`.
-- Parameters, buffers and submodules are kept in insertion order, so dotted
-- names (`layers.1.weight`, `fc1.bias`) and state dicts are stable.
-- Assigning nil unregisters a name. Names may not shadow methods.
--
-- Iteration. `parameters()`, `buffers()`, `children()` and `modules()` return
-- arrays; their `named_*` forms return iterators for a generic for, yielding
-- name and value in registration order (`for name, p in net:named_parameters()`).
-- A tensor or module reachable by two paths is reported once, under the
-- first name. `modules()` and `named_modules()` include the module itself
-- (named "").
local mg = require "moongrad"

local is_tensor = mg.is_tensor
local setmetatable, getmetatable = setmetatable, getmetatable
local rawget, type, tostring, error = rawget, type, tostring, error
local pairs, ipairs, next = pairs, ipairs, next
local math_type = math.type
local concat, remove = table.concat, table.remove
local fmt = string.format

local Module = {__name = "Module"}

-- Registries: names in insertion order plus a name → value map.
local function registry() return {names = {}, map = {}} end

local function reg_set(r, name, v)
  local map, names = r.map, r.names
  if v == nil then
    if map[name] == nil then return end
    map[name] = nil
    for i = 1, #names do
      if names[i] == name then remove(names, i) break end
    end
    return
  end
  if map[name] == nil then names[#names + 1] = name end
  map[name] = v
end

local function class_of(m) return getmetatable(m).class end

local function is_module(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  return type(mt) == "table" and rawget(mt, "class") ~= nil
      and rawget(mt, "__module") == true
end

-- "tensor", a module's class name, or Lua's type name: for messages.
local function describe(v)
  if is_tensor(v) then return "tensor" end
  if is_module(v) then return "module " .. class_of(v).__name end
  return type(v)
end

local function shape_str(t)
  return "[" .. concat(t:shape(), ",") .. "]"
end

-- 203530 -> "203,530"
local function thousands(n)
  local s = tostring(n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

-- Integer keys name the children of lists: m[2] is child "2", m[-1] the last.
local function int_name(self, k)
  if k < 0 then k = #self._modules.names + 1 + k end
  return tostring(k)
end

local function index(self, k)
  local v = self._parameters.map[k]
  if v ~= nil then return v end
  v = self._buffers.map[k]
  if v ~= nil then return v end
  if math_type(k) == "integer" then
    return self._modules.map[int_name(self, k)]
  end
  v = self._modules.map[k]
  if v ~= nil then return v end
  v = self._attributes[k]
  if v ~= nil then return v end
  return class_of(self)[k]
end

-- Raises (at the assigning line) when name would shadow a method or the
-- training flag.
local function check_free(self, name, kind, level)
  local cls = class_of(self)
  if cls[name] ~= nil or name == "training" then
    error(fmt("%s: cannot register %s '%s': the name is taken by %s",
              cls.__name, kind, name, name == "training" and "the training flag"
              or "a method of " .. cls.__name), level + 1)
  end
end

local function newindex(self, k, v)
  local cname = class_of(self).__name
  if math_type(k) == "integer" then k = int_name(self, k) end
  if type(k) ~= "string" then
    error(fmt("%s: field names must be strings, got %s", cname, type(k)), 2)
  end
  local params, buffers, mods = self._parameters, self._buffers, self._modules
  if params.map[k] ~= nil then
    if v ~= nil and not is_tensor(v) then
      error(fmt("%s: cannot assign a %s to parameter '%s' (a tensor or nil expected)",
                cname, describe(v), k), 2)
    end
    if v ~= nil and not v:is_leaf() then
      error(fmt("%s: cannot assign the result of an op to parameter '%s' (a leaf " ..
                "tensor expected; use t:detach():requires_grad())", cname, k), 2)
    end
    return reg_set(params, k, v)
  end
  if buffers.map[k] ~= nil then
    if v ~= nil and not is_tensor(v) then
      error(fmt("%s: cannot assign a %s to buffer '%s' (a tensor or nil expected)",
                cname, describe(v), k), 2)
    end
    return reg_set(buffers, k, v)
  end
  if mods.map[k] ~= nil then
    if v ~= nil and not is_module(v) then
      error(fmt("%s: cannot assign a %s to submodule '%s' (a module or nil expected)",
                cname, describe(v), k), 2)
    end
    return reg_set(mods, k, v)
  end
  if is_tensor(v) and v:is_requires_grad() and v:is_leaf() then
    check_free(self, k, "parameter", 2)
    self._attributes[k] = nil
    return reg_set(params, k, v)
  end
  if is_module(v) then
    check_free(self, k, "submodule", 2)
    self._attributes[k] = nil
    return reg_set(mods, k, v)
  end
  self._attributes[k] = v
end

local function call(self, ...)
  local forward = self.forward
  if forward == Module.forward then
    error(fmt("%s: forward is not defined", class_of(self).__name), 2)
  end
  return forward(self, ...)            -- a tail call: errors point at the caller
end

local function len(self)
  local f = class_of(self).__len
  if f == nil then
    error(fmt("%s: a module has no length (only lists such as Sequential do)",
              class_of(self).__name), 2)
  end
  return f(self)
end

local function pairs_of(self)
  local f = class_of(self).__pairs
  if f then return f(self) end
  return next, self, nil
end

-- Defined below; the instance metatable needs them.
local tostring_module

local function new(cls, ...)
  local self = setmetatable({
    _parameters = registry(),          -- name → leaf tensor, trained
    _buffers = registry(),             -- name → tensor, saved but not trained
    _modules = registry(),             -- name → child module
    _attributes = {training = true},   -- every other field
    _non_persistent = {},              -- buffer names left out of state_dict
  }, rawget(cls, "_instance_mt"))
  self:init(...)
  return self
end

-- Instances of one class share a metatable; the class holds the methods.
local function instance_mt(cls)
  return {
    __module = true, class = cls, __name = cls.__name,
    __index = index, __newindex = newindex, __call = call,
    __tostring = function(m) return tostring_module(m) end,
    __len = len, __pairs = pairs_of,
  }
end

local function class_mt(parent, name)
  return {__index = parent, __call = new,
          __tostring = function() return "class " .. name end}
end

local function make_class(parent, name)
  local cls = {__name = name, super = parent}
  cls._instance_mt = instance_mt(cls)
  return setmetatable(cls, class_mt(parent, name))
end

-- Module:extend(name) makes a subclass; call it on any class (nn.Linear:extend).
function Module:extend(name)
  if type(self) ~= "table" or rawget(self, "_instance_mt") == nil then
    error("extend: call it on a class (nn.Module:extend(\"Name\")), not on an instance", 2)
  end
  if type(name) ~= "string" or name == "" then
    error(fmt("extend: expects a class name (a string), got %s", describe(name)), 2)
  end
  return make_class(self, name)
end

-- The constructor run by Cls(...). nn.Module's does nothing: the registries
-- exist before any init runs.
function Module:init() end

function Module:forward()
  error(fmt("%s: forward is not defined", class_of(self).__name), 2)
end

function Module:class_name() return class_of(self).__name end

-- Whether the module is an instance of cls or of a class extending it.
function Module:is_a(cls)
  local c = class_of(self)
  while c do
    if c == cls then return true end
    c = rawget(c, "super")
  end
  return false
end

-- Registration by name, for names computed at run time or to be explicit.
-- register_parameter takes a leaf tensor (registered even if it does not
-- require grad: a frozen parameter) or nil.
function Module:register_parameter(name, t)
  if type(name) ~= "string" then
    error(fmt("register_parameter: expects a name (a string), got %s", describe(name)), 2)
  end
  if t ~= nil and not (is_tensor(t) and t:is_leaf()) then
    error(fmt("%s: register_parameter '%s' expects a leaf tensor or nil, got %s",
              self:class_name(), name, is_tensor(t) and "the result of an op" or describe(t)), 2)
  end
  if self._parameters.map[name] == nil then check_free(self, name, "parameter", 2) end
  self._attributes[name] = nil
  reg_set(self._buffers, name, nil)
  reg_set(self._modules, name, nil)
  reg_set(self._parameters, name, t)
end

-- A buffer is state saved in state_dict but not trained (BatchNorm's running
-- statistics). {persistent = false} keeps it out of state_dict.
function Module:register_buffer(name, t, opts)
  if type(name) ~= "string" then
    error(fmt("register_buffer: expects a name (a string), got %s", describe(name)), 2)
  end
  if t ~= nil and not is_tensor(t) then
    error(fmt("%s: register_buffer '%s' expects a tensor or nil, got %s",
              self:class_name(), name, describe(t)), 2)
  end
  if self._buffers.map[name] == nil then check_free(self, name, "buffer", 2) end
  self._attributes[name] = nil
  reg_set(self._parameters, name, nil)
  reg_set(self._modules, name, nil)
  reg_set(self._buffers, name, t)
  self._non_persistent[name] = (opts and opts.persistent == false) or nil
end

function Module:add_module(name, m)
  if type(name) ~= "string" then
    error(fmt("add_module: expects a name (a string), got %s", describe(name)), 2)
  end
  if m ~= nil and not is_module(m) then
    error(fmt("%s: add_module '%s' expects a module or nil, got %s",
              self:class_name(), name, describe(m)), 2)
  end
  if self._modules.map[name] == nil then check_free(self, name, "submodule", 2) end
  self._attributes[name] = nil
  reg_set(self._parameters, name, nil)
  reg_set(self._buffers, name, nil)
  reg_set(self._modules, name, m)
end

-- Walks: {name, value} lists in registration order, each value once.

local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

local function walk_modules(m, prefix, out, seen)
  if seen[m] then return out end
  seen[m] = true
  out[#out + 1] = {prefix, m}
  local mods = m._modules
  for _, name in ipairs(mods.names) do
    walk_modules(mods.map[name], join(prefix, name), out, seen)
  end
  return out
end

local function walk_members(self, field, recurse)
  local out, seen = {}, {}
  local mods = recurse == false and {{"", self}} or walk_modules(self, "", {}, {})
  for _, e in ipairs(mods) do
    local reg = e[2][field]
    for _, name in ipairs(reg.names) do
      local v = reg.map[name]
      if not seen[v] then
        seen[v] = true
        out[#out + 1] = {join(e[1], name), v}
      end
    end
  end
  return out
end

local function iterate(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

local function values(list)
  local out = {}
  for i, e in ipairs(list) do out[i] = e[2] end
  return out
end

-- parameters([recurse = true]) --> array of tensors
function Module:parameters(recurse) return values(walk_members(self, "_parameters", recurse)) end
function Module:named_parameters(recurse) return iterate(walk_members(self, "_parameters", recurse)) end
function Module:buffers(recurse) return values(walk_members(self, "_buffers", recurse)) end
function Module:named_buffers(recurse) return iterate(walk_members(self, "_buffers", recurse)) end

local function child_list(self)
  local out, seen, mods = {}, {}, self._modules
  for _, name in ipairs(mods.names) do
    local m = mods.map[name]
    if not seen[m] then
      seen[m] = true
      out[#out + 1] = {name, m}
    end
  end
  return out
end

function Module:children() return values(child_list(self)) end
function Module:named_children() return iterate(child_list(self)) end
function Module:modules() return values(walk_modules(self, "", {}, {})) end
function Module:named_modules() return iterate(walk_modules(self, "", {}, {})) end

-- fn(m) on every child (depth first) and then on self; returns self.
function Module:apply(fn)
  if type(fn) ~= "function" then
    error(fmt("apply: expects a function, got %s", describe(fn)), 2)
  end
  for _, m in ipairs(self:children()) do m:apply(fn) end
  fn(self)
  return self
end

-- train([mode = true]) sets training on self and every descendant; returns self.
function Module:train(mode)
  if mode == nil then mode = true end
  if type(mode) ~= "boolean" then
    error(fmt("train: expects a boolean or nothing, got %s", describe(mode)), 2)
  end
  self.training = mode
  for _, m in ipairs(self:children()) do m:train(mode) end
  return self
end

function Module:eval() return self:train(false) end

-- zero_grad() drops every parameter's gradient (p.grad = nil), so the next
-- backward writes fresh ones; {set_to_none = false} zeroes them in place.
function Module:zero_grad(opts)
  local to_none = not (opts and opts.set_to_none == false)
  for _, p in ipairs(self:parameters()) do
    if to_none then
      p.grad = nil
    else
      local g = p.grad
      if g then g:zero_() end
    end
  end
end

-- The number of scalars in parameters(); {trainable = true} counts only
-- those that require grad.
function Module:num_parameters(opts)
  local only = opts and opts.trainable
  local n = 0
  for _, p in ipairs(self:parameters()) do
    if not only or p:is_requires_grad() then n = n + p:numel() end
  end
  return n
end

-- Deep copies for clone(). memo maps each table, tensor and module already
-- copied to its copy, so whatever is shared (a tied weight, a module under
-- two names, a cycle) is shared, once, in the copy.
local copy_module

local function copy_value(v, memo)
  local t = type(v)
  if t ~= "table" and t ~= "userdata" then return v end
  local done = memo[v]
  if done ~= nil then return done end
  if is_tensor(v) then
    local c = v:detach():clone()
    memo[v] = c
    if v:is_leaf() and v:is_requires_grad() then
      c:requires_grad()
      local g = v.grad
      if g ~= nil then c.grad = copy_value(g, memo) end
    end
    return c
  end
  if is_module(v) then return copy_module(v, memo) end
  -- Only plain tables are data to copy; a table with a metatable (a class,
  -- a library object) and other userdata are shared, as Python's deepcopy
  -- shares classes and functions.
  if t ~= "table" or getmetatable(v) ~= nil then return v end
  local c = {}
  memo[v] = c
  for k, e in next, v do c[copy_value(k, memo)] = copy_value(e, memo) end
  return c
end

local function copy_registry(from, to, memo)
  for i, name in ipairs(from.names) do
    to.names[i] = name
    to.map[name] = copy_value(from.map[name], memo)
  end
end

copy_module = function(m, memo)
  -- Built by hand, not by the class's init: init may take arguments clone
  -- cannot know, and would draw fresh random weights.
  local c = {_parameters = registry(), _buffers = registry(), _modules = registry(),
             _attributes = {}, _non_persistent = {}}
  memo[m] = setmetatable(c, getmetatable(m))
  for _, r in ipairs({"_parameters", "_buffers", "_modules"}) do
    copy_registry(rawget(m, r), rawget(c, r), memo)
  end
  local attributes = rawget(c, "_attributes")
  for k, v in pairs(rawget(m, "_attributes")) do attributes[k] = copy_value(v, memo) end
  for k, v in pairs(rawget(m, "_non_persistent")) do rawget(c, "_non_persistent")[k] = v end
  return c
end

-- clone() --> a deep copy of the module, as Python's copy.deepcopy makes
-- one: parameters and buffers become new tensors with the same values
-- (parameters new leaves that require grad as the originals do, with a
-- copy of any gradient), submodules are copied recursively, plain fields
-- (numbers, strings, plain tables) are copied, and a tensor, table or
-- module shared within the original is shared within the copy. Functions,
-- userdata and tables with a metatable are shared with the original. The
-- copy is in the original's mode (training or not) and starts with the
-- same weights; nothing of it is tied to the original. Two tensors that
-- are distinct views of one storage become separate copies.
function Module:clone()
  return copy_module(self, {})
end

-- The text between a layer's parentheses when printed ("in=2, out=8").
function Module:extra_repr() return "" end

local function own_count(m)
  local n = 0
  for _, name in ipairs(m._parameters.names) do n = n + m._parameters.map[name]:numel() end
  return n
end

local function params_note(n)
  if n == 0 then return "" end
  return fmt("  -- %s param%s", thousands(n), n == 1 and "" or "s")
end

local function repr(m, indent)
  local head = m:class_name() .. "(" .. m:extra_repr()
  local mods = m._modules
  if #mods.names == 0 then return head .. ")" .. params_note(own_count(m)) end
  local inner = indent .. "  "
  local lines = {head .. (head:sub(-1) == "(" and "" or ",")}
  for _, name in ipairs(m._parameters.names) do
    local p = m._parameters.map[name]
    lines[#lines + 1] = fmt("%s(%s): Parameter(%s, %s)", inner, name, shape_str(p), p:dtype())
  end
  for _, name in ipairs(mods.names) do
    lines[#lines + 1] = fmt("%s(%s): %s", inner, name, repr(mods.map[name], inner))
  end
  lines[#lines + 1] = indent .. ")" .. params_note(m:num_parameters())
  return concat(lines, "\n")
end

tostring_module = function(m) return repr(m, "") end

-- nn.Module itself is a class like any other: nn.Module() is an empty
-- module to hang children on.
Module._instance_mt = instance_mt(Module)
setmetatable(Module, class_mt(nil, "Module"))

-- state_dict, load_state_dict, to, double and float live in state_dict.lua.
for name, method in pairs(require "moongrad.nn.state_dict") do Module[name] = method end

-- nn.Module.is_module(v): whether v is a module instance.
Module.is_module = is_module

return Module
