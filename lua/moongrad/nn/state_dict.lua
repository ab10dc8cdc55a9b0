-- moongrad.nn.state_dict: a module's saved state — state_dict(),
-- load_state_dict() — and dtype conversion (to, double, float, half,
-- bfloat16). These are
-- nn.Module methods; module.lua copies them onto the class.
--
-- PyTorch names the children of Sequential and ModuleList 0, 1, ...;
-- moongrad names them 1, 2, ... like every other index. {torch = true} on
-- state_dict and load_state_dict speaks PyTorch's names: the module knows
-- which path segments are container indices, so the mapping is exact.
-- nn.from_torch(sd) and nn.to_torch(sd) (bridge.lua) shift names without a
-- model, for files handled on their own.
--
-- Modules whose parameter names match another variant's but whose maths
-- differ (TransformerBlock, pre-norm, and TransformerEncoderLayer, post-norm
-- by default) describe themselves with state_variant(). state_dict() carries
-- those descriptions in its metatable's __metadata, mg.save writes them into
-- the file's metadata and mg.load gives them back the same way, so
-- load_state_dict refuses a state dict saved from a different variant. A
-- foreign file (PyTorch's) carries none: the model's class decides.
local mg = require "moongrad"
local json = require "moongrad.json"

local is_tensor, no_grad = mg.is_tensor, mg.no_grad
local type, error, tostring, pairs, ipairs = type, error, tostring, pairs, ipairs
local getmetatable, setmetatable, pcall, next = getmetatable, setmetatable, pcall, next
local tonumber = tonumber
local tointeger = math.tointeger
local concat, sort, fmt = table.concat, table.sort, string.format

-- The metadata key under which the variants travel (mg.save and mg.load
-- carry every "moongrad.state." key along with the tensors): a JSON object of
-- module path -> state_variant() string.
local VARIANTS_KEY = "moongrad.state.variants"

local Module = {}   -- the methods, gathered here for module.lua

local function describe(v) return is_tensor(v) and "tensor" or type(v) end

-- The kind of a dtype for loading: entries convert within a kind (as
-- PyTorch's copy_ does), never across (a float weight into an integer
-- buffer is a mistake, not a conversion).
local KIND = {float16 = "float", bfloat16 = "float", float32 = "float", float64 = "float",
              int8 = "integer", int16 = "integer", int32 = "integer", int64 = "integer",
              uint8 = "integer", bool = "bool"}

local function shape_str(t) return "[" .. concat(t:shape(), ",") .. "]" end

local function join(prefix, name)
  if prefix == "" then return name end
  return prefix .. "." .. name
end

-- A child's name as PyTorch spells it: containers whose children are
-- numbered (Sequential, ModuleList: _indexed_children) count from 0.
local function child_name(m, name, torch)
  if torch and m._indexed_children then
    local i = tointeger(tonumber(name))
    if i then return tostring(i - 1) end
  end
  return name
end

-- Every saved entry {name, tensor} in order: parameters then
-- persistent buffers of each module, modules depth first, names in
-- PyTorch's spelling when torch. Unlike parameters(), a tensor shared by
-- two modules appears under both names. variants (optional) collects
-- path -> state_variant() (paths in moongrad's own spelling).
local function state_entries(m, prefix, out, path, torch, variants, own_prefix)
  if path[m] then
    error(fmt("%s: state_dict: the module contains itself (at '%s')",
              m:class_name(), prefix), 0)
  end
  path[m] = true
  own_prefix = own_prefix or prefix
  if variants and m.state_variant then variants[own_prefix] = m:state_variant() end
  local params, buffers, mods = m._parameters, m._buffers, m._modules
  for _, name in ipairs(params.names) do
    out[#out + 1] = {join(prefix, name), params.map[name]}
  end
  for _, name in ipairs(buffers.names) do
    if not m._non_persistent[name] then
      out[#out + 1] = {join(prefix, name), buffers.map[name]}
    end
  end
  for _, name in ipairs(mods.names) do
    state_entries(mods.map[name], join(prefix, child_name(m, name, torch)), out, path, torch,
                  variants, join(own_prefix, name))
  end
  path[m] = nil
  return out
end

local function check_names_option(self, opts, who, level)
  if opts == nil then return false end
  if type(opts) ~= "table" then
    error(fmt("%s: %s options must be a table, got %s", self:class_name(), who, describe(opts)),
          level + 1)
  end
  for k in pairs(opts) do
    if k ~= "torch" then
      error(fmt("%s: %s: unknown option '%s' (known: torch)", self:class_name(), who,
                tostring(k)), level + 1)
    end
  end
  return opts.torch == true
end

-- The metatable a state dict carries its variants in (see the top).
local function with_variants(sd, variants)
  if next(variants) == nil then return sd end
  return setmetatable(sd, {__metadata = {[VARIANTS_KEY] = json.encode(variants)}})
end

-- state_dict([{torch = false}]) --> {name = tensor}: parameters and
-- buffers, detached from the graph but sharing storage with the module
-- (mg.save writes it as is). torch = true names container children from 0,
-- as PyTorch's state_dict() does.
function Module:state_dict(opts)
  local torch = check_names_option(self, opts, "state_dict", 2)
  local sd, variants = {}, {}
  for _, e in ipairs(state_entries(self, "", {}, {}, torch, variants)) do
    sd[e[1]] = e[2]:detach()
  end
  return with_variants(sd, variants)
end

-- state_dict_names([{torch = false}]): the names of state_dict() in order,
-- for printing and saving in order.
function Module:state_dict_names(opts)
  local torch = check_names_option(self, opts, "state_dict_names", 2)
  local names = {}
  for i, e in ipairs(state_entries(self, "", {}, {}, torch)) do names[i] = e[1] end
  return names
end

-- The variants a state dict records (path -> description), or nil when it
-- records none (PyTorch's files, hand-made tables).
local function recorded_variants(sd)
  local mt = getmetatable(sd)
  local meta = type(mt) == "table" and mt.__metadata
  local text = type(meta) == "table" and meta[VARIANTS_KEY]
  if type(text) ~= "string" then return nil end
  local ok, variants = pcall(json.decode, text)
  if ok and type(variants) == "table" then return variants end
  return nil
end

local function described_list(entries)
  local parts = {}
  for i, e in ipairs(entries) do
    parts[i] = is_tensor(e[2]) and (e[1] .. " " .. shape_str(e[2])) or e[1]
  end
  return concat(parts, ", ")
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

-- The source to copy into t from v (same shape): v itself when copy_ can
-- take it as is, else a converted or detached copy made now, so that the
-- copies into the module allocate nothing and cannot fail. A source sharing
-- t's storage in another layout would make copy_ snapshot it.
local function source_for(t, v)
  if v:dtype() ~= t:dtype() then return v:to(t:dtype()) end
  if v:shares_storage(t) and not (v:storage_offset() == t:storage_offset()
      and same_shape(v:stride(), t:stride())) then
    return v:clone()
  end
  return v
end

-- Names in the other spelling (PyTorch's where moongrad's are expected, or
-- back) would load wrongly or not at all, even with strict = false: when
-- some of the model's names are missing from sd but all of them are there
-- in the other spelling, says so (else nil).
local function other_spelling(self, sd, own, torch)
  local all_there = true
  for _, e in ipairs(own) do
    if sd[e[1]] == nil then all_there = false break end
  end
  if all_there then return nil end
  local alt = state_entries(self, "", {}, {}, not torch)
  for _, e in ipairs(alt) do
    if sd[e[1]] == nil then return nil end
  end
  if torch then
    return "  the names are moongrad's (containers counted from 1), not PyTorch's: " ..
           "load without {torch = true}"
  end
  return "  the names are PyTorch's (containers counted from 0): pass {torch = true} " ..
         "or load nn.from_torch(sd)"
end

-- Checks sd against the module and makes every source tensor ready; returns
-- the function that copies them in (and returns {missing, unexpected}), or
-- nil and a message. Changes nothing.
local function prepare(self, sd, opts)
  local cname = self:class_name()
  if type(sd) ~= "table" then
    return nil, fmt("%s: load_state_dict expects a table of name = tensor, got %s",
                    cname, describe(sd))
  end
  if opts ~= nil and type(opts) ~= "table" then
    return nil, fmt("%s: load_state_dict options must be a table, got %s", cname, describe(opts))
  end
  for k in pairs(opts or {}) do
    if k ~= "strict" and k ~= "torch" then
      return nil, fmt("%s: load_state_dict: unknown option '%s' (known: strict, torch)", cname,
                      tostring(k))
    end
  end
  local strict = not (opts and opts.strict == false)
  local torch = opts and opts.torch == true
  local own_variants = {}
  local own = state_entries(self, "", {}, {}, torch, own_variants)
  local problem = other_spelling(self, sd, own, torch)
  if problem then
    return nil, fmt("%s: load_state_dict: the state dict does not fit the model\n%s", cname,
                    problem)
  end
  local known = {}
  local missing, mismatched, not_tensor, wrong_kind, checked = {}, {}, {}, {}, {}
  local wrong_variant = {}
  local saved_variants = recorded_variants(sd)
  if saved_variants then
    local paths = {}
    for p in pairs(own_variants) do paths[#paths + 1] = p end
    sort(paths)
    for _, p in ipairs(paths) do
      local saved = saved_variants[p]
      if saved ~= nil and saved ~= own_variants[p] then
        wrong_variant[#wrong_variant + 1] = fmt("%s was saved from %s, the model has %s",
                                                p == "" and "the model" or "'" .. p .. "'",
                                                tostring(saved), own_variants[p])
      end
    end
  end
  for _, e in ipairs(own) do
    local name, t = e[1], e[2]
    known[name] = true
    local v = sd[name]
    if v == nil then
      missing[#missing + 1] = e
    elseif not is_tensor(v) then
      not_tensor[#not_tensor + 1] = fmt("%s is a %s", name, describe(v))
    elseif not same_shape(v:shape(), t:shape()) then
      mismatched[#mismatched + 1] = fmt("%s is %s in the state dict, %s in the model",
                                        name, shape_str(v), shape_str(t))
    elseif KIND[v:dtype()] ~= KIND[t:dtype()] then
      wrong_kind[#wrong_kind + 1] = fmt("%s is %s in the state dict, %s in the model",
                                        name, v:dtype(), t:dtype())
    else
      checked[#checked + 1] = {t, v}
    end
  end
  local unexpected = {}
  for k, v in pairs(sd) do
    if not known[k] then unexpected[#unexpected + 1] = {tostring(k), v} end
  end
  sort(unexpected, function(a, b) return a[1] < b[1] end)

  local problems = {}
  if strict and #missing > 0 then
    problems[#problems + 1] = fmt("  missing (%d): %s", #missing, described_list(missing))
  end
  if strict and #unexpected > 0 then
    problems[#problems + 1] = fmt("  unexpected (%d): %s", #unexpected, described_list(unexpected))
  end
  if #mismatched > 0 then
    problems[#problems + 1] = fmt("  wrong shape (%d): %s", #mismatched, concat(mismatched, "; "))
  end
  if #wrong_kind > 0 then
    problems[#problems + 1] = fmt("  wrong dtype (%d): %s", #wrong_kind, concat(wrong_kind, "; "))
  end
  if #not_tensor > 0 then
    problems[#problems + 1] = fmt("  not a tensor (%d): %s", #not_tensor, concat(not_tensor, "; "))
  end
  if #wrong_variant > 0 then
    problems[#problems + 1] = fmt("  wrong variant (%d): %s (same names, different maths)",
                                  #wrong_variant, concat(wrong_variant, "; "))
  end
  if #problems > 0 then
    local hint = strict and (#missing > 0 or #unexpected > 0)
        and "\n  (pass {strict = false} to skip missing and unexpected entries)" or ""
    return nil, fmt("%s: load_state_dict: the state dict does not fit the model\n%s%s",
                    cname, concat(problems, "\n"), hint)
  end
  local copies = {}
  for i, tv in ipairs(checked) do copies[i] = {tv[1], source_for(tv[1], tv[2])} end
  local names = function(list)
    local out = {}
    for i, e in ipairs(list) do out[i] = e[1] end
    return out
  end
  local result = {missing = names(missing), unexpected = names(unexpected)}
  return function()
    no_grad(function()
      for _, pv in ipairs(copies) do pv[1]:copy_(pv[2]) end
    end)
    return result
  end
end

-- prepare_load_state_dict(sd [, opts]) --> apply: checks sd as
-- load_state_dict does and makes every tensor to copy ready, changing
-- nothing; apply() copies them in (it allocates nothing and cannot fail)
-- and returns what load_state_dict returns. moongrad.checkpoint restores a
-- whole training state this way: every part checked before any changes.
function Module:prepare_load_state_dict(sd, opts)
  local apply, problem = prepare(self, sd, opts)
  if not apply then error(problem, 2) end
  return apply
end

-- load_state_dict(sd [, {strict = true, torch = false}]) copies sd's
-- tensors into the module's parameters and buffers in place (under
-- no_grad, converting between the float dtypes, and between the integer
-- ones). Nothing is copied unless everything checks: every entry must be a
-- tensor of the right shape and kind (an integer tensor for an integer
-- buffer, a bool one for a bool buffer, a float one for the rest), a
-- state dict that records the variants it was saved from must match the
-- model's, and when strict, sd must hold exactly the module's names.
-- torch = true reads PyTorch's names (container children from 0). Returns
-- {missing = {names}, unexpected = {names}}, in sd's spelling.
function Module:load_state_dict(sd, opts)
  local apply, problem = prepare(self, sd, opts)
  if not apply then error(problem, 2) end
  return apply()
end

-- Parameters converted to a half dtype cannot require grad (nothing
-- computes on them); whether they did comes back with :float().
local wanted_grad = setmetatable({}, {__mode = "k"})

-- to(dtype) converts floating parameters and buffers ("float32",
-- "float64", or "float16"/"bfloat16" to store a half checkpoint: a forward
-- on a half model is refused until :float()); parameters become new leaves
-- (give the optimizer the new parameters()).
function Module:to(dtype)
  if KIND[dtype] ~= "float" then
    error(fmt("to: expects \"float32\", \"float64\", \"float16\" or \"bfloat16\", got %s",
              tostring(dtype)), 2)
  end
  local half = dtype == "float16" or dtype == "bfloat16"
  for _, m in ipairs(self:modules()) do
    for _, reg in ipairs({m._parameters, m._buffers}) do
      for _, name in ipairs(reg.names) do
        local t = reg.map[name]
        if KIND[t:dtype()] == "float" and t:dtype() ~= dtype then
          local c = t:detach():to(dtype)
          if reg == m._parameters then
            local wants = t:is_requires_grad() or wanted_grad[t] or false
            if half then wanted_grad[c] = wants else c:requires_grad(wants) end
          end
          reg.map[name] = c
        end
      end
    end
  end
  return self
end

function Module:double() return self:to("float64") end
function Module:float() return self:to("float32") end
function Module:half() return self:to("float16") end
function Module:bfloat16() return self:to("bfloat16") end

return Module
