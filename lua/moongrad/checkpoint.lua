-- moongrad.checkpoint: a whole training state in one safetensors file, so
-- that a run stopped at any batch resumes exactly where it was.
--
--   local checkpoint = require "moongrad.checkpoint"
--   checkpoint.save("run.safetensors", {model = net, optimizer = opt,
--     scheduler = s, loader = train_loader, epoch = e, step = global_step,
--     extra = {best_val = 0.31}})
--   local info = checkpoint.load("run.safetensors", {model = net,
--     optimizer = opt, scheduler = s, loader = train_loader})
--   -- info.epoch, info.step, info.extra
--   local apply = checkpoint.prepare("run.safetensors", {model = net, ...})
--   apply()   -- the same as load, in two steps: check, then install
--
-- Loading is all or nothing: every part asked for is checked against its
-- object first (model names, shapes and dtypes; optimizer options, step
-- counts and state values; scheduler fields; the loader's position and
-- permutation; the RNG state; epoch and step), and only then is each part
-- installed, by steps that allocate nothing and cannot fail. A file that
-- does not fit raises an error naming it, the part and the offending entry,
-- and leaves every object as it was.
--
-- What goes where in the file (any safetensors reader sees the tensors):
--   model.<name>                 the model's state_dict (parameters, buffers)
--   optimizer.state.<id>.<slot>  optimizer state tensors (exp_avg, ...)
--   loader.<key>                 the loader's tensors (its epoch's perm)
--   extra.<path>                 tensors found in extra (fit keeps its
--                                per-step history here, so that the header
--                                stays small however long the run)
--   __metadata__["moongrad.checkpoint"]   JSON (moongrad.json) of
--     everything else: optimizer param_groups and scalar state, the
--     scheduler's state_dict, the RNG state (seed and offset as decimal
--     strings, all 64 bits), the loader's position, epoch, step, extra
--     (a tensor in it as {"__tensor__": "extra.<path>"}).
-- Numbers come back with their math.type and exact value, inf/nan included.
-- The file is written atomically by mg.save; loading parses data only and
-- never executes anything from the file.
local mg = require "moongrad"
local codec = require "moongrad.json"

local is_tensor, get_rng_state, set_rng_state = mg.is_tensor, mg.get_rng_state, mg.set_rng_state
local mg_save, mg_load = mg.save, mg.load
local type, pairs, ipairs, tostring, tonumber, error, pcall = type, pairs, ipairs, tostring,
  tonumber, error, pcall
local getmetatable, setmetatable = getmetatable, setmetatable
local math_type, tointeger, ult = math.type, math.tointeger, math.ult
local fmt, sort = string.format, table.sort

local checkpoint = {}

local META_KEY = "moongrad.checkpoint"
local FORMAT_VERSION = 1

-- 64-bit RNG words as unsigned decimal strings ------------------------------

local function u64_string(n)
  if n >= 0 then return tostring(n) end
  local q = (n >> 1) // 5          -- n / 10, reading n as unsigned
  return tostring(q) .. tostring(n - q * 10)
end

local U64_MAX_DIV10 = 1844674407370955161 -- (2^64 - 1) // 10; the last digit is 5

local function parse_u64(s)
  if type(s) ~= "string" or not s:match("^%d+$") or #s > 20 then return nil end
  local v = 0
  for i = 1, #s do
    local d = s:byte(i) - 48
    if ult(U64_MAX_DIV10, v) or (v == U64_MAX_DIV10 and d > 5) then return nil end
    v = v * 10 + d
  end
  return v
end

-- Checks ---------------------------------------------------------------------

local function has_method(obj, name)
  return type(obj) == "table" and type(obj[name]) == "function"
end

local function check_object(fname, role, obj, methods, level)
  for _, m in pairs(methods) do
    if not has_method(obj, m) then
      error(fmt("checkpoint.%s: %s must be an object with a %s method, got %s",
                fname, role, m, type(obj)), level + 1)
    end
  end
end

local function check_keys(fname, opts, known, level)
  if type(opts) ~= "table" then
    error(fmt("checkpoint.%s: expects an options table as argument 2, got %s",
              fname, type(opts)), level + 1)
  end
  for k in pairs(opts) do
    if not known[k] then
      local names = {}
      for n in pairs(known) do names[#names + 1] = n end
      sort(names)
      error(fmt("checkpoint.%s: unknown option '%s' (known: %s)", fname, tostring(k),
                table.concat(names, ", ")), level + 1)
    end
  end
end

-- Splits a state table into its top-level tensors (into tensors under
-- prefix) and the rest (returned, for JSON).
local function split_tensors(sd, prefix, tensors)
  local rest = {}
  for k, v in pairs(sd) do
    if is_tensor(v) then
      if type(k) ~= "string" then
        error(fmt("checkpoint.save: %s state has a tensor under a non-string key %s",
                  prefix, tostring(k)), 0)
      end
      tensors[prefix .. "." .. k] = v
    else
      rest[k] = v
    end
  end
  return rest
end

-- save -----------------------------------------------------------------------

local SAVE_KEYS = {model = true, optimizer = true, scheduler = true, loader = true,
                   epoch = true, step = true, extra = true}

local function build(opts)
  local tensors = {}
  local rng = get_rng_state()
  local state = {format = "moongrad.checkpoint", version = FORMAT_VERSION,
                 epoch = opts.epoch, step = opts.step, extra = opts.extra,
                 rng = {seed = u64_string(rng.seed), offset = u64_string(rng.offset),
                        stream = rng.stream and u64_string(rng.stream)}}
  if opts.model ~= nil then
    local names, sd = {}, opts.model:state_dict()
    for name, t in pairs(sd) do
      tensors["model." .. name] = t
      names[#names + 1] = name
    end
    sort(names)
    -- the module variants the state dict records (nn/state_dict.lua)
    local mt = getmetatable(sd)
    state.model = {names = names, metadata = type(mt) == "table" and mt.__metadata or nil}
  end
  if opts.optimizer ~= nil then
    local sd = opts.optimizer:state_dict()
    local scalars = {}
    for id, st in pairs(sd.state) do
      scalars[id] = split_tensors(st, "optimizer.state." .. tostring(id), tensors)
    end
    state.optimizer = {kind = opts.optimizer.kind, param_groups = sd.param_groups,
                       state = scalars}
  end
  if opts.scheduler ~= nil then state.scheduler = opts.scheduler:state_dict() end
  if opts.loader ~= nil then
    state.loader = split_tensors(opts.loader:state_dict(), "loader", tensors)
  end
  return tensors, state
end

local STATE_WHERE = "checkpoint.save: state"

-- The codec's on_tensor: a tensor in extra goes into the file's body under
-- extra.<path>; anywhere else it is refused.
local function extra_tensors(tensors)
  return function(t, where)
    local path = where:sub(#STATE_WHERE + 2)
    if not is_tensor(t) or path:sub(1, 5) ~= "extra" then return nil end
    local name, n = path, 1
    while tensors[name] ~= nil do
      n = n + 1
      name = path .. "#" .. n
    end
    tensors[name] = t
    return name
  end
end

-- A counter given to save: nil, or an integer >= 0 (2.0 is 2).
local function counter(v)
  if v == nil then return true, nil end
  local i = math_type(v) == "integer" and v or (type(v) == "number" and tointeger(v))
  if not i or i < 0 then return false end
  return true, i
end

-- checkpoint.save(path, {model =, optimizer =, scheduler =, loader =, epoch =,
-- step =, extra =}): every part is optional. epoch and step are integers
-- >= 0; extra is any table of numbers, strings, booleans, tables and tensors
-- (tensors are stored in the file's body). Atomic: a failure leaves the
-- previous file.
function checkpoint.save(path, opts)
  if type(path) ~= "string" then
    error(fmt("checkpoint.save: path must be a string, got %s", type(path)), 2)
  end
  check_keys("save", opts, SAVE_KEYS, 2)
  if opts.model ~= nil then check_object("save", "model", opts.model, {"state_dict"}, 2) end
  if opts.optimizer ~= nil then
    check_object("save", "optimizer", opts.optimizer, {"state_dict"}, 2)
  end
  if opts.scheduler ~= nil then
    check_object("save", "scheduler", opts.scheduler, {"state_dict"}, 2)
  end
  if opts.loader ~= nil then check_object("save", "loader", opts.loader, {"state_dict"}, 2) end
  local counters = {}
  for _, k in ipairs({"epoch", "step"}) do
    local ok, v = counter(opts[k])
    if not ok then
      error(fmt("checkpoint.save: %s must be an integer >= 0, got %s", k,
                type(opts[k]) == "number" and tostring(opts[k]) or type(opts[k])), 2)
    end
    counters[k] = v
  end
  local built = {}
  for k, v in pairs(opts) do built[k] = v end
  built.epoch, built.step = counters.epoch, counters.step
  local ok, tensors, state = pcall(build, built)
  if not ok then error(tostring(tensors), 2) end
  local encoded, text = pcall(codec.encode, state, STATE_WHERE, extra_tensors(tensors))
  if not encoded then error(text, 2) end
  local saved, err = pcall(mg_save, path, tensors, {[META_KEY] = text})
  if not saved then error("checkpoint." .. tostring(err), 2) end
end

-- load -----------------------------------------------------------------------

local LOAD_KEYS = {model = true, optimizer = true, scheduler = true, loader = true,
                   restore_rng = true, strict = true}

-- Reads and checks path; returns tensors, state, or raises at level naming
-- the function who ("load" or "read").
local function read(path, level, who)
  local ok, tensors, meta = pcall(mg_load, path, { metadata = true })
  if not ok then
    error("checkpoint." .. who .. (tostring(tensors):gsub("^load", "", 1)), level + 1)
  end
  local text = meta[META_KEY]
  if text == nil then
    error(fmt("checkpoint.%s: %s: not a moongrad checkpoint (no '%s' metadata); " ..
              "mg.load reads its tensors", who, path, META_KEY), level + 1)
  end
  local state, err = codec.decode(text, tensors)
  if type(state) ~= "table" or state.format ~= "moongrad.checkpoint" then
    error(fmt("checkpoint.%s: %s: the checkpoint metadata is corrupt (%s)", who, path,
              err or "not a checkpoint record"), level + 1)
  end
  if math_type(state.version) ~= "integer" or state.version > FORMAT_VERSION then
    error(fmt("checkpoint.%s: %s: checkpoint format version %s is newer than this " ..
              "moongrad reads (%d)", who, path, tostring(state.version), FORMAT_VERSION), level + 1)
  end
  return tensors, state
end

-- The tensors named prefix.<key>, keyed by <key>.
local function with_prefix(tensors, prefix)
  local out, n = {}, #prefix
  for name, t in pairs(tensors) do
    if name:sub(1, n) == prefix then out[name:sub(n + 1)] = t end
  end
  return out
end

-- The optimizer's state dict from the file's record and tensors, or nil
-- and a message.
local function optimizer_state_dict(tensors, saved)
  local state = {}
  for id, scalars in pairs(saved.state or {}) do
    if type(scalars) ~= "table" then
      return nil, fmt("the state of parameter %s is not a table", tostring(id))
    end
    local st = {}
    for k, v in pairs(scalars) do st[k] = v end
    state[id] = st
  end
  for name, t in pairs(with_prefix(tensors, "optimizer.state.")) do
    local id, slot = name:match("^(%d+)%.(.+)$")
    id = id and math.tointeger(tonumber(id))
    if not id then return nil, fmt("unexpected tensor 'optimizer.state.%s'", name) end
    state[id] = state[id] or {}
    state[id][slot] = t
  end
  return {state = state, param_groups = saved.param_groups}
end

-- Each part of the file asked for by opts, as {role, object, state dict,
-- extra argument}, in the order they are installed; or nil and a message.
local function gather(tensors, state, opts)
  local parts = {}
  if opts.model ~= nil then
    if state.model == nil then return nil, "the checkpoint holds no model state" end
    local sd = with_prefix(tensors, "model.")
    if type(state.model.metadata) == "table" then
      setmetatable(sd, {__metadata = state.model.metadata})
    end
    parts[#parts + 1] = {"model", opts.model, sd,
                         opts.strict ~= nil and {strict = opts.strict} or nil}
  end
  if opts.optimizer ~= nil then
    local saved = state.optimizer
    if type(saved) ~= "table" or type(saved.param_groups) ~= "table" then
      return nil, "the checkpoint holds no optimizer state"
    end
    local kind = opts.optimizer.kind
    if saved.kind ~= nil and kind ~= nil and saved.kind ~= kind then
      return nil, fmt("the checkpoint holds %s optimizer state, the optimizer is %s",
                      tostring(saved.kind), tostring(kind))
    end
    local sd, problem = optimizer_state_dict(tensors, saved)
    if not sd then return nil, "optimizer state: " .. problem end
    parts[#parts + 1] = {"optimizer", opts.optimizer, sd}
  end
  if opts.scheduler ~= nil then
    if type(state.scheduler) ~= "table" then
      return nil, "the checkpoint holds no scheduler state"
    end
    parts[#parts + 1] = {"scheduler", opts.scheduler, state.scheduler}
  end
  if opts.loader ~= nil then
    if type(state.loader) ~= "table" then return nil, "the checkpoint holds no loader state" end
    local sd = {}
    for k, v in pairs(state.loader) do sd[k] = v end
    for k, t in pairs(with_prefix(tensors, "loader.")) do sd[k] = t end
    parts[#parts + 1] = {"loader", opts.loader, sd}
  end
  return parts
end

-- "cannot restore the optimizer: <why>", without the position in moongrad's
-- code that an error from inside a tensor op carries.
local function cannot(role, err)
  return fmt("cannot restore the %s: %s", role, (tostring(err):gsub("^[^:\n]+%.lua:%d+: ", "")))
end

-- Restores the objects without prepare_load_state_dict (a user's own
-- model, say) through their load_state_dict, in order; if one fails, those
-- restored before it get back the state_dict they had. Returns nil, or the
-- message of the failure.
local function restore_foreign(foreign)
  local before = {}
  for i, part in ipairs(foreign) do
    local obj = part[2]
    before[i] = has_method(obj, "state_dict") and obj:state_dict() or nil
  end
  for i, part in ipairs(foreign) do
    local ok, err = pcall(part[2].load_state_dict, part[2], part[3], part[4])
    if not ok then
      for j = i - 1, 1, -1 do
        if before[j] ~= nil then pcall(foreign[j][2].load_state_dict, foreign[j][2], before[j]) end
      end
      return cannot(part[1], err)
    end
  end
end

-- Checks everything the file holds for opts and makes it ready; returns the
-- function that installs it and returns info, or nil and a message (without
-- the "checkpoint.load: path: " that the caller adds). Changes nothing.
local function prepare(tensors, state, opts)
  local parts, problem = gather(tensors, state, opts)
  if not parts then return nil, problem end
  local info = {}
  for _, k in ipairs({"epoch", "step"}) do
    local ok, v = counter(state[k])
    if not ok then
      return nil, fmt("%s must be an integer >= 0, got %s", k, tostring(state[k]))
    end
    info[k] = v
  end
  info.extra = state.extra
  local rng
  if opts.restore_rng ~= false then
    local r = state.rng
    if type(r) ~= "table" then return nil, "the RNG state is missing" end
    rng = {}
    for _, k in ipairs({"seed", "offset", "stream"}) do
      rng[k] = parse_u64(r[k])
      -- stream: saved only inside mg.with_rng_stream (0, the main one, is left out)
      if not rng[k] and not (k == "stream" and r[k] == nil) then
        return nil, fmt("the RNG state is corrupt: %s must be an unsigned 64-bit integer " ..
                        "in decimal, got %s", k, type(r[k]) == "string" and fmt("%q", r[k])
                        or tostring(r[k]))
      end
    end
  end
  local applies, foreign = {}, {}
  for _, part in ipairs(parts) do
    local role, obj = part[1], part[2]
    if has_method(obj, "prepare_load_state_dict") then
      local ok, apply = pcall(obj.prepare_load_state_dict, obj, part[3], part[4])
      if not ok then return nil, cannot(role, apply) end
      applies[#applies + 1] = apply
    else
      foreign[#foreign + 1] = part
    end
  end
  return function()
    local failed = restore_foreign(foreign)
    if failed then return nil, failed end
    for _, apply in ipairs(applies) do apply() end
    if rng then set_rng_state(rng) end
    return info
  end
end

local function check_load_args(who, path, opts, level)
  if type(path) ~= "string" then
    error(fmt("checkpoint.%s: path must be a string, got %s", who, type(path)), level + 1)
  end
  check_keys(who, opts, LOAD_KEYS, level + 1)
  for _, role in ipairs({"model", "optimizer", "scheduler", "loader"}) do
    if opts[role] ~= nil then
      check_object(who, role, opts[role], {"load_state_dict"}, level + 1)
    end
  end
end

-- checkpoint.prepare(path, opts [, contents]) --> apply: everything
-- checkpoint.load(path, opts) does except changing anything: the file is
-- read and checked against the objects, and the restored state is made
-- ready. apply() installs it (without allocating: it cannot fail, except in
-- an object of your own that has load_state_dict but no
-- prepare_load_state_dict) and returns what load returns. contents, the
-- two values of checkpoint.read(path), saves reading the file again.
function checkpoint.prepare(path, opts, contents)
  opts = opts or {}
  check_load_args("prepare", path, opts, 2)
  local tensors, state
  if contents ~= nil then
    tensors, state = contents[1], contents[2]
    if type(tensors) ~= "table" or type(state) ~= "table" then
      error("checkpoint.prepare: contents must be {tensors, state} from checkpoint.read", 2)
    end
  else
    tensors, state = read(path, 2, "load")
  end
  local apply, problem = prepare(tensors, state, opts)
  if not apply then error(fmt("checkpoint.load: %s: %s", path, problem), 2) end
  return function()
    local info, failed = apply()
    if not info then error(fmt("checkpoint.load: %s: %s", path, failed), 2) end
    return info
  end
end

-- checkpoint.load(path, {model =, optimizer =, scheduler =, loader =,
-- restore_rng = true, strict = true}) restores each object given (strict
-- is passed to model:load_state_dict) and the RNG state; returns
-- {epoch =, step =, extra =}. Asking for a part the file lacks is an error.
-- All or nothing: see the top of this file.
function checkpoint.load(path, opts)
  opts = opts or {}
  check_load_args("load", path, opts, 2)
  local tensors, state = read(path, 2, "load")
  local apply, problem = prepare(tensors, state, opts)
  if not apply then error(fmt("checkpoint.load: %s: %s", path, problem), 2) end
  local info, failed = apply()
  if not info then error(fmt("checkpoint.load: %s: %s", path, failed), 2) end
  return info
end

-- checkpoint.read(path) --> tensors, state: the raw contents (tensors by
-- their file names, the decoded metadata record), for inspection.
function checkpoint.read(path)
  if type(path) ~= "string" then
    error(fmt("checkpoint.read: path must be a string, got %s", type(path)), 2)
  end
  return read(path, 2, "read")
end

return checkpoint
