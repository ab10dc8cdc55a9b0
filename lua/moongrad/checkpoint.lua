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
--
-- What goes where in the file (any safetensors reader sees the tensors):
--   model.<name>                 the model's state_dict (parameters, buffers)
--   optimizer.state.<id>.<slot>  optimizer state tensors (exp_avg, ...)
--   loader.<key>                 the loader's tensors (its epoch's perm)
--   __metadata__["moongrad.checkpoint"]   JSON (moongrad.checkpoint.json) of
--     everything else: optimizer param_groups and scalar state, the
--     scheduler's state_dict, the RNG state (seed and offset as decimal
--     strings, all 64 bits), the loader's position, epoch, step, extra.
-- Numbers come back with their math.type and exact value, inf/nan included.
-- The file is written atomically by mg.save; loading parses data only and
-- never executes anything from the file.
local mg = require "moongrad"
local codec = require "moongrad.checkpoint.json"

local is_tensor, get_rng_state, set_rng_state = mg.is_tensor, mg.get_rng_state, mg.set_rng_state
local mg_save, mg_load = mg.save, mg.load
local type, pairs, tostring, tonumber, error, pcall = type, pairs, tostring, tonumber, error, pcall
local math_type, ult = math.type, math.ult
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
                 rng = {seed = u64_string(rng.seed), offset = u64_string(rng.offset)}}
  if opts.model ~= nil then
    local names = {}
    for name, t in pairs(opts.model:state_dict()) do
      tensors["model." .. name] = t
      names[#names + 1] = name
    end
    sort(names)
    state.model = {names = names}
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

-- checkpoint.save(path, {model =, optimizer =, scheduler =, loader =, epoch =,
-- step =, extra =}): every part is optional. extra is any table of numbers,
-- strings, booleans and tables. Atomic: a failure leaves the previous file.
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
  for _, k in pairs({"epoch", "step"}) do
    if opts[k] ~= nil and type(opts[k]) ~= "number" then
      error(fmt("checkpoint.save: %s must be a number, got %s", k, type(opts[k])), 2)
    end
  end
  local ok, tensors, state = pcall(build, opts)
  if not ok then error(tostring(tensors), 2) end
  local encoded, text = pcall(codec.encode, state, "checkpoint.save: state")
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
  local state, err = codec.decode(text)
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

local function missing(path, what, level)
  error(fmt("checkpoint.load: %s: the checkpoint holds no %s state", path, what), level + 1)
end

-- The tensors named prefix.<key>, keyed by <key>.
local function with_prefix(tensors, prefix)
  local out, n = {}, #prefix
  for name, t in pairs(tensors) do
    if name:sub(1, n) == prefix then out[name:sub(n + 1)] = t end
  end
  return out
end

local function optimizer_state_dict(path, tensors, saved, level)
  local state = {}
  for id, scalars in pairs(saved.state or {}) do
    if type(scalars) ~= "table" then
      error(fmt("checkpoint.load: %s: optimizer state %s is corrupt", path, tostring(id)),
            level + 1)
    end
    local st = {}
    for k, v in pairs(scalars) do st[k] = v end
    state[id] = st
  end
  for name, t in pairs(with_prefix(tensors, "optimizer.state.")) do
    local id, slot = name:match("^(%d+)%.(.+)$")
    id = id and math.tointeger(tonumber(id))
    if not id then
      error(fmt("checkpoint.load: %s: unexpected tensor 'optimizer.state.%s'", path, name),
            level + 1)
    end
    state[id] = state[id] or {}
    state[id][slot] = t
  end
  return {state = state, param_groups = saved.param_groups}
end

-- checkpoint.load(path, {model =, optimizer =, scheduler =, loader =,
-- restore_rng = true, strict = true}) restores each object given (strict
-- is passed to model:load_state_dict) and the RNG state; returns
-- {epoch =, step =, extra =}. Asking for a part the file lacks is an error.
function checkpoint.load(path, opts)
  if type(path) ~= "string" then
    error(fmt("checkpoint.load: path must be a string, got %s", type(path)), 2)
  end
  opts = opts or {}
  check_keys("load", opts, LOAD_KEYS, 2)
  local roles = {model = "load_state_dict", optimizer = "load_state_dict",
                 scheduler = "load_state_dict", loader = "load_state_dict"}
  for role, m in pairs(roles) do
    if opts[role] ~= nil then check_object("load", role, opts[role], {m}, 2) end
  end
  local tensors, state = read(path, 2, "load")
  -- Gather every part first, so that a missing one fails before anything changes.
  local model_sd, opt_sd, rng
  if opts.model ~= nil then
    if state.model == nil then missing(path, "model", 2) end
    model_sd = with_prefix(tensors, "model.")
  end
  if opts.optimizer ~= nil then
    local saved = state.optimizer
    if type(saved) ~= "table" or type(saved.param_groups) ~= "table" then
      missing(path, "optimizer", 2)
    end
    local kind = opts.optimizer.kind
    if saved.kind ~= nil and kind ~= nil and saved.kind ~= kind then
      error(fmt("checkpoint.load: %s: the checkpoint holds %s optimizer state, the " ..
                "optimizer is %s", path, tostring(saved.kind), tostring(kind)), 2)
    end
    opt_sd = optimizer_state_dict(path, tensors, saved, 2)
  end
  if opts.scheduler ~= nil and type(state.scheduler) ~= "table" then
    missing(path, "scheduler", 2)
  end
  if opts.loader ~= nil and type(state.loader) ~= "table" then missing(path, "loader", 2) end
  if opts.restore_rng ~= false then
    local r = state.rng
    local seed = type(r) == "table" and parse_u64(r.seed)
    local offset = type(r) == "table" and parse_u64(r.offset)
    if not seed or not offset then
      error(fmt("checkpoint.load: %s: the RNG state is missing or corrupt", path), 2)
    end
    rng = {seed = seed, offset = offset}
  end

  local function apply(what, f, ...)
    local ok, err = pcall(f, ...)
    if not ok then
      error(fmt("checkpoint.load: %s: restoring the %s failed: %s", path, what,
                tostring(err)), 3)
    end
  end
  if model_sd then
    local lopts = opts.strict ~= nil and {strict = opts.strict} or nil
    apply("model", opts.model.load_state_dict, opts.model, model_sd, lopts)
  end
  if opt_sd then apply("optimizer", opts.optimizer.load_state_dict, opts.optimizer, opt_sd) end
  if opts.scheduler ~= nil then
    apply("scheduler", opts.scheduler.load_state_dict, opts.scheduler, state.scheduler)
  end
  if opts.loader ~= nil then
    local sd = {}
    for k, v in pairs(state.loader) do sd[k] = v end
    for k, t in pairs(with_prefix(tensors, "loader.")) do sd[k] = t end
    apply("loader", opts.loader.load_state_dict, opts.loader, sd)
  end
  if rng then set_rng_state(rng) end
  return {epoch = state.epoch, step = state.step, extra = state.extra}
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
