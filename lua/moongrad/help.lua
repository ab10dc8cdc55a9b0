-- moongrad.help: help(x) for every public function, module and class.
--
--   help(F.conv2d)        -- a function, by value
--   help(nn.LSTM)         -- a class (or help(layer) for an instance of it)
--   help "conv2d"         -- by name: exact ("F.conv2d"), by last part, or a search
--   help(mg)              -- a module: what it is and its names, grouped
--
-- The text comes from one source: the doc tables in moongrad/help/*.lua
-- (FILES below), one entry per public name, keyed by the name as a script
-- writes it with the usual locals (mg, nn, F, optim, sched, data,
-- transforms, train, tune, plot, checkpoint, dist, attach). A method is written
-- "nn.Module:parameters"; a tensor method shares its entry with the
-- function of the same name ("mg.sum" covers t:sum). An entry is
--   {sig = "F.conv2d(x, weight [, bias] [, opts])"  -- or a list of forms
--    doc = "One paragraph: what it does, its arguments, what it returns.",
--    opts = {{"stride", "1", "step of the window: n or {sh, sw}"}, ...},
--    example = "Lua code that runs as it stands",
--    see = {"nn.Conv2d"}, group = "Convolution",
--    methods_of = "optim.Optimizer",  -- a class whose methods live elsewhere
--    instance = function() return <one of these> end}  -- (specs: its methods)
-- or a shorthand: {inplace = "mg.abs"} for t:abs_(), {alias = "transforms.F"}.
-- A module's entry ("nn") may give groups = {"Layers", "Losses", ...}, the
-- order its listing shows its names' groups in.
--
-- The REPL and the notebook define the global help; mg.help is the same.
-- Every public name has an entry, and every example runs: spec/help_spec.lua.
local M = {}

local fmt, concat, sort = string.format, table.concat, table.sort
local type, pairs, ipairs, getmetatable, rawget = type, pairs, ipairs, getmetatable, rawget

-- The public modules, by the local name scripts give them.
M.MODULES = {
  { "mg", "moongrad" }, { "nn", "moongrad.nn" }, { "F", "moongrad.functional" },
  { "optim", "moongrad.optim" }, { "sched", "moongrad.sched" }, { "data", "moongrad.data" },
  { "transforms", "moongrad.transforms" }, { "train", "moongrad.train" },
  { "tune", "moongrad.tune" }, { "plot", "moongrad.plot" },
  { "checkpoint", "moongrad.checkpoint" }, { "dist", "moongrad.dist" },
  { "attach", "moongrad.attach" }, { "cli", "moongrad.cli" },
}

-- The doc tables, moongrad/help/<file>.lua.
M.FILES = { "tensor", "math", "nn", "functional", "optim", "data", "tune" }

---------------------------------------------------------------------------
-- The public names: walked from the modules themselves, so a name added to
-- a module without an entry is noticed.

local function public_key(k)
  return type(k) == "string" and not k:match("^_")
end

-- The classes whose method tables a module holds, and so whose methods
-- are public names ("mg.Tensor:sum" shares the entry "mg.sum").
local CLASS_METHODS = {
  { "mg.Tensor", function() return require("moongrad").Tensor end },
  { "nn.Module", function() return require("moongrad.nn").Module end },
  { "optim.Optimizer", function() return require("moongrad.optim").Optimizer end },
}

local function is_class(v)
  if rawget(v, "_instance_mt") or rawget(v, "__index") then return true end
  for _, c in ipairs(CLASS_METHODS) do
    if c[2]() == v then return true end
  end
  return false
end

-- A table of functions reached from a module (mg.linalg, nn.init,
-- transforms.F): its names are public names too.
local function is_namespace(v)
  if type(v) ~= "table" or is_class(v) then return false end
  for name, mod in pairs(package.loaded) do -- a module of its own (mg.image)
    if mod == v and type(name) == "string" and name:match("^moongrad%.") then return true end
  end
  if getmetatable(v) ~= nil then return false end
  for _, x in pairs(v) do
    if type(x) == "function" then return true end
  end
  return false
end

-- Public function fields of a method table and the tables its __index
-- chain reaches.
function M.methods_of(t)
  local names, seen = {}, {}
  local guard = 0
  while type(t) == "table" and guard < 16 do
    guard = guard + 1
    for k, v in pairs(t) do
      if public_key(k) and type(v) == "function" and not seen[k] then
        seen[k] = true
        names[#names + 1] = k
      end
    end
    local mt = getmetatable(t)
    local idx = mt and rawget(mt, "__index")
    t = idx ~= t and idx or nil
  end
  sort(names)
  return names
end

-- Every public name: a list of {name, value}, modules first, then their
-- fields (sorted), then the methods of the classes above. A table reached
-- twice (transforms.functional is transforms.F) is walked once; its other
-- names are listed but not walked again.
function M.public_names()
  local out, walked = {}, {}
  local function walk(prefix, t)
    walked[t] = prefix
    local keys = {}
    for k in pairs(t) do
      if public_key(k) then keys[#keys + 1] = k end
    end
    sort(keys)
    for _, k in ipairs(keys) do
      local v, name = t[k], prefix .. "." .. k
      out[#out + 1] = { name, v }
      if is_namespace(v) and not walked[v] then walk(name, v) end
    end
  end
  for _, m in ipairs(M.MODULES) do
    -- a module this build lacks (moongrad.dist needs MPI's) is left out
    local ok, mod = pcall(require, m[2])
    if ok and type(mod) == "table" then
      out[#out + 1] = { m[1], mod }
      walk(m[1], mod)
    end
  end
  for _, c in ipairs(CLASS_METHODS) do
    local t = c[2]()
    for _, k in ipairs(M.methods_of(t)) do out[#out + 1] = { c[1] .. ":" .. k, t[k] } end
  end
  return out
end

---------------------------------------------------------------------------
-- The entries.

local entries -- name -> entry, loaded on first use

local function load_entries()
  if entries then return entries end
  local all = {}
  for _, file in ipairs(M.FILES) do
    local ok, t = pcall(require, "moongrad.help." .. file)
    if not ok then error(fmt("help: cannot load moongrad/help/%s.lua: %s", file, tostring(t)), 0) end
    for name, e in pairs(t) do
      if all[name] then error(fmt("help: %s has two entries (one in help/%s.lua)", name, file), 0) end
      e.name = name
      e.file = file
      all[name] = e
    end
  end
  entries = all
  return all
end

function M.entries() return load_entries() end

-- A tensor method shares the entry of the module function of its name.
local function entry_name(name)
  local method = name:match("^mg%.Tensor:(.+)$")
  if method then return "mg." .. method end
  return name
end

-- The entry for name, following alias; nil when there is none.
function M.entry(name)
  local all = load_entries()
  local e = all[entry_name(name)]
  local guard = 0
  while e and e.alias and guard < 8 do
    e, guard = all[e.alias], guard + 1
  end
  return e
end

---------------------------------------------------------------------------
-- Finding the entry for a value.

local by_value -- value -> name

local function value_map()
  if by_value then return by_value end
  by_value = {}
  for _, nv in ipairs(M.public_names()) do
    local name, v = nv[1], nv[2]
    local t = type(v)
    if (t == "function" or t == "table") and by_value[v] == nil and M.entry(name) then
      by_value[v] = name
    end
    -- an nn class's instances share its _instance_mt
    if t == "table" and type(rawget(v, "_instance_mt")) == "table" then
      by_value[v._instance_mt] = by_value[v._instance_mt] or name
    end
  end
  return by_value
end

local by_instance -- metatable -> entry name, from the entries' instances

-- The entry name for an instance: its class's, found through nn's
-- class_name, a metatable's __name ("moongrad.Optimizer" -> optim.Optimizer)
-- or the instance tables entries give.
local function instance_name(v)
  local mt = getmetatable(v)
  if type(mt) ~= "table" then return nil end
  local map = value_map()
  if map[mt] then return map[mt] end
  local nn = require "moongrad.nn"
  local last
  if nn.is_module(v) then
    last = v:class_name()
  else
    local n = rawget(mt, "__name")
    last = type(n) == "string" and n:match("([%w_]+)$")
  end
  if last then
    for _, m in ipairs(M.MODULES) do
      if M.entry(m[1] .. "." .. last) then return m[1] .. "." .. last end
    end
  end
  -- The classes whose instances only their constructors can show: each
  -- makes one, once, and its metatable is remembered.
  if not by_instance then
    by_instance = {}
    local names = {}
    for name, e in pairs(load_entries()) do
      if e.instance then names[#names + 1] = name end
    end
    sort(names)
    for _, name in ipairs(names) do
      local ok, obj = pcall(load_entries()[name].instance)
      local omt = ok and getmetatable(obj)
      if type(omt) == "table" and by_instance[omt] == nil then by_instance[omt] = name end
    end
  end
  return by_instance[mt]
end

-- Entries whose last part is word (as written, then in any case), and
-- those whose name contains it, each sorted.
local function search(word)
  local w = word:lower()
  local same, exact, partial = {}, {}, {}
  for name in pairs(load_entries()) do
    local last = name:match("[%.:]([^%.:]+)$") or name
    if last == word then
      same[#same + 1] = name
    elseif last:lower() == w then
      exact[#exact + 1] = name
    elseif name:lower():find(w, 1, true) then
      partial[#partial + 1] = name
    end
  end
  sort(same)
  sort(exact)
  sort(partial)
  if #same == 1 then return same, {} end
  for _, n in ipairs(exact) do same[#same + 1] = n end
  return same, partial
end

---------------------------------------------------------------------------
-- The text.

local WIDTH = 78

-- Wraps a paragraph at WIDTH, each line starting with indent.
local function wrap(text, indent)
  local lines, line = {}, indent
  for word in text:gmatch("%S+") do
    if #line > #indent and #line + 1 + #word > WIDTH then
      lines[#lines + 1] = line
      line = indent .. word
    else
      line = (#line > #indent) and (line .. " " .. word) or (line .. word)
    end
  end
  if #line > #indent then lines[#lines + 1] = line end
  return concat(lines, "\n")
end

-- Paragraphs are separated by blank lines; a line indented by 2 or more
-- spaces (a list, a formula) stays as it is.
local function paragraphs(text, indent)
  local out = {}
  for para in (text .. "\n\n"):gmatch("(.-)\n%s*\n") do
    if para:match("^%s*$") then
      -- nothing
    elseif para:match("^  ") or para:match("\n  ") then
      local lines = {}
      for l in (para .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = indent .. l end
      out[#out + 1] = concat(lines, "\n")
    else
      out[#out + 1] = wrap(para, indent)
    end
  end
  return concat(out, "\n\n")
end

local function sigs(e)
  if type(e.sig) == "table" then return e.sig end
  return { e.sig or e.name }
end

local function module_listing(e)
  local prefix = e.name .. "."
  local groups, order = {}, {}
  for name, x in pairs(load_entries()) do
    local rest = name:sub(#prefix + 1)
    if name:sub(1, #prefix) == prefix and not rest:find("[%.:]") and not x.inplace then
      local g = x.group or (x.alias and (M.entry(x.alias) or {}).group) or "Other"
      if not groups[g] then
        groups[g] = {}
        order[#order + 1] = g
      end
      groups[g][#groups[g] + 1] = rest
    end
  end
  local rank = {}
  for i, g in ipairs(e.groups or {}) do rank[g] = i end
  sort(order, function(a, b)
    local ra, rb = rank[a] or math.huge, rank[b] or math.huge
    if ra ~= rb then return ra < rb end
    return a < b
  end)
  local width = 0
  for _, g in ipairs(order) do width = math.max(width, #g) end
  local lines = {}
  for _, g in ipairs(order) do
    sort(groups[g])
    local head = fmt("  %-" .. width .. "s  ", g)
    local text = wrap(concat(groups[g], " "), string.rep(" ", #head))
    lines[#lines + 1] = head .. text:sub(#head + 1)
  end
  local inplace = false
  for name, x in pairs(load_entries()) do
    if x.inplace and name:sub(1, #prefix) == prefix then inplace = true end
  end
  if inplace then
    lines[#lines + 1] = "  (most pointwise ops also have an in-place form, name_: t:add_(u))"
  end
  return concat(lines, "\n")
end

-- The help text of the entry called name.
function M.render(name)
  local e = M.entry(name)
  if not e then return nil end
  local out = {}
  if e.inplace then
    local base = M.entry(e.inplace)
    local method = e.name:match("[%.:]([^%.:]+)$")
    out[#out + 1] = fmt("t:%s(...)", method)
    out[#out + 1] = ""
    out[#out + 1] = wrap(fmt("In place: t:%s(...) computes what %s does and writes the result " ..
                             "into t, which it returns. It takes the same arguments.",
                             method, base and sigs(base)[1]:match("^[^(]+") or e.inplace), "  ")
    if base then
      out[#out + 1] = ""
      out[#out + 1] = "See also: " .. e.inplace
    end
    return concat(out, "\n")
  end
  for _, s in ipairs(sigs(e)) do out[#out + 1] = s end
  if e.doc then
    out[#out + 1] = ""
    out[#out + 1] = paragraphs(e.doc, "  ")
  end
  if e.opts and #e.opts > 0 then
    out[#out + 1] = ""
    out[#out + 1] = "Options (default):"
    local width = 0
    for _, o in ipairs(e.opts) do width = math.max(width, #o[1] + 3 + #o[2]) end
    width = math.min(width, 28)
    for _, o in ipairs(e.opts) do
      local head = fmt("  %-" .. width .. "s  ", o[1] .. " = " .. o[2])
      local body = wrap(o[3] or "", string.rep(" ", #head))
      out[#out + 1] = head .. body:sub(#head + 1)
    end
  end
  if e.groups then
    local listing = module_listing(e)
    if listing ~= "" then
      out[#out + 1] = ""
      out[#out + 1] = "Names:"
      out[#out + 1] = listing
    end
  end
  if e.example then
    out[#out + 1] = ""
    out[#out + 1] = "Example:"
    for l in (e.example:gsub("\n+$", "") .. "\n"):gmatch("([^\n]*)\n") do
      out[#out + 1] = l == "" and "" or "  " .. l
    end
  end
  if e.see and #e.see > 0 then
    out[#out + 1] = ""
    out[#out + 1] = "See also: " .. concat(e.see, ", ")
  end
  return concat(out, "\n")
end

-- The entry name help(x) shows, or nil and why not.
function M.resolve(x)
  if type(x) == "string" then
    if M.entry(x) then return x end
    local exact, partial = search(x)
    if #exact == 1 then return exact[1] end
    if #exact == 0 and #partial == 1 then return partial[1] end
    if #exact + #partial == 0 then
      return nil, fmt("help: nothing is called %q; help(mg) lists the tensor functions, " ..
                      "help(nn), help(F), help(optim) ... the others", x)
    end
    local list = {}
    for _, n in ipairs(exact) do list[#list + 1] = n end
    for _, n in ipairs(partial) do list[#list + 1] = n end
    if #list > 40 then
      list[41] = fmt("... (%d more)", #list - 40)
      for i = #list, 42, -1 do list[i] = nil end
    end
    return nil, fmt("help: %q matches several names; ask for one of them:\n  %s",
                    x, concat(list, "\n  "))
  end
  if x == nil then
    return nil, "help: got nil, so there is nothing to describe (a misspelt name?); " ..
                "help \"word\" searches the names, help(mg) lists the tensor functions"
  end
  local mg = require "moongrad"
  if mg.is_tensor(x) then return "mg.Tensor" end
  local map = value_map()
  if map[x] then return map[x] end
  local name = instance_name(x)
  if name then return name end
  return nil, fmt("help: no help for this %s (%s): it is not one of moongrad's " ..
                  "functions, modules or classes", type(x), tostring(x))
end

-- The text help(x) prints.
function M.text(x)
  local name, why = M.resolve(x)
  if not name then return why end
  return M.render(name)
end

-- help(x): prints the help for x.
function M.help(x)
  io.stdout:write(M.text(x), "\n")
end

-- The grouped listing the REPL prints for a module's table, or nil when
-- v is not one of the public modules. Cheap for any other value: the
-- entries load only for a module.
function M.module_summary(v)
  if type(v) ~= "table" then return nil end
  for _, m in ipairs(M.MODULES) do
    if package.loaded[m[2]] == v then
      local e = M.entry(m[1])
      if not e then return nil end
      local doc = (e.doc or ""):gsub("%s+", " ")
      local first = doc:match("^(.-%.)%s") or doc
      return fmt("%s: %s\n%s\nhelp(%s.name) or help \"name\" for one of them",
                 m[1], first, module_listing(e), m[1])
    end
  end
  return nil
end

return M
