-- moongrad.json: the project's one JSON codec. encode/decode carry plain
-- Lua data exactly (checkpoint metadata, study files, state-dict variants);
-- encode_plain writes JSON for other programs to read (history logs).
--
-- dkjson alone loses what a training state needs: it writes floats with 14
-- significant digits, turns inf and nan into null, and cannot tell 1 from
-- 1.0 on the way back. This codec wraps it so that a value comes back equal
-- and of the same math.type:
--   * integers are JSON integers ("12"); floats are written with up to 17
--     digits and always with a '.' or an exponent ("0.1", "1.0", "1e+300"),
--     so reading them back gives a float again;
--   * inf, -inf and nan become {"__float__": "inf" | "-inf" | "nan"};
--   * a table whose keys are 1..n is an array, one whose keys are all
--     strings an object (keys sorted, so the text is deterministic); any
--     other table (integer ids with gaps, mixed keys) becomes
--     {"__map__": [[key, value], ...]}, as does an object whose own keys
--     would read as one of these tags.
--   * a tensor, when the caller stores tensors elsewhere (encode's
--     on_tensor), becomes {"__tensor__": name}; decode resolves it from
--     the tensors it is given.
-- Strings must be valid UTF-8 (JSON's alphabet). Functions, userdata
-- (tensors, unless stored elsewhere) and cycles are refused with a message
-- naming where they are.
-- Decoding runs dkjson's parser: text is data, never code.
local json = require "dkjson"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local setmetatable, error, next = setmetatable, error, next
local math_type, huge = math.type, math.huge
local fmt, sort = string.format, table.sort
local utf8_len = utf8.len

local M = {}

local ARRAY = {__jsontype = "array"}
local FLOAT = {__tojson = function(self) return self.text end}

-- The shortest %.Ng that reads back as x, always looking like a float.
local function float_text(x)
  local s
  for digits = 15, 17 do
    s = fmt("%." .. digits .. "g", x)
    if tonumber(s) == x then break end
  end
  if not s:find("[%.eEn]") then s = s .. ".0" end
  return s
end

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "boolean" then return (not a) and b end
  return a < b
end

local encode_value

local function fail(where, what) error(fmt("%s %s", where, what), 0) end

local function encode_table(t, where, visiting)
  if visiting[t] then fail(where, "is part of a reference cycle") end
  visiting[t] = true
  local count, all_strings, tagged = 0, true, false
  for k in pairs(t) do
    count = count + 1
    if type(k) ~= "string" then all_strings = false
    elseif k == "__float__" or k == "__map__" or k == "__tensor__" then tagged = true end
  end
  local out
  if count > 0 and #t == count and t[count] ~= nil and t[1] ~= nil then
    local is_seq = true
    for k in pairs(t) do
      if math_type(k) ~= "integer" or k < 1 or k > count then is_seq = false; break end
    end
    if is_seq then
      out = setmetatable({}, ARRAY)
      for i = 1, count do out[i] = encode_value(t[i], where .. "[" .. i .. "]", visiting) end
      visiting[t] = nil
      return out
    end
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys, key_less)
  if all_strings and not tagged then
    out = setmetatable({}, {__jsontype = "object", __jsonorder = keys})
    for _, k in ipairs(keys) do
      if not utf8_len(k) then fail(where, fmt("has a key that is not valid UTF-8 (%q)", k)) end
      out[k] = encode_value(t[k], where .. "." .. k, visiting)
    end
  else
    local pairs_list = setmetatable({}, ARRAY)
    for i, k in ipairs(keys) do
      local kw = where .. "[" .. tostring(k) .. "]"
      pairs_list[i] = setmetatable({encode_value(k, kw .. " (key)", visiting),
                                    encode_value(t[k], kw, visiting)}, ARRAY)
    end
    out = setmetatable({__map__ = pairs_list}, {__jsontype = "object"})
  end
  visiting[t] = nil
  return out
end

function encode_value(v, where, visiting)
  local tv = type(v)
  if tv == "string" then
    if not utf8_len(v) then fail(where, fmt("is a string that is not valid UTF-8 (%q)", v)) end
    return v
  elseif tv == "boolean" then
    return v
  elseif tv == "number" then
    if math_type(v) == "integer" then return v end
    if v ~= v then return {__float__ = "nan"} end
    if v == huge then return {__float__ = "inf"} end
    if v == -huge then return {__float__ = "-inf"} end
    return setmetatable({text = float_text(v)}, FLOAT)
  elseif tv == "table" then
    return encode_table(v, where, visiting)
  elseif tv == "userdata" and visiting.on_tensor then  -- (the context rides along)
    local name = visiting.on_tensor(v, where)
    if name then return {__tensor__ = name} end
  end
  fail(where, fmt("is a %s, which a checkpoint cannot hold (only numbers, strings, " ..
                  "booleans and tables of them)", tv == "userdata" and "tensor or userdata" or tv))
end

-- encode(v [, where [, on_tensor]]) --> JSON text. Raises "where ... is a
-- function, ..." (where names the value for the message, default "value").
-- on_tensor(u, path), when given, is asked about each userdata u found at
-- path (where's notation, "state.extra.x[2]"): it stores a tensor it takes
-- and returns the name decode will find it under, or returns nil to refuse.
function M.encode(v, where, on_tensor)
  local tree = encode_value(v, where or "value", {on_tensor = on_tensor})
  local text, err = json.encode(tree)
  if not text then error((where or "value") .. ": " .. tostring(err), 0) end
  return text
end

local FLOATS = {inf = huge, ["-inf"] = -huge, nan = 0 / 0}

local function decode_tree(v, tensors)
  if type(v) ~= "table" then return v end
  local name = v.__tensor__
  if tensors and name ~= nil and next(v, next(v)) == nil then
    local t = tensors[name]
    if t == nil then error(fmt("__tensor__ %s names no tensor of the file", tostring(name)), 0) end
    return t
  end
  local f = v.__float__
  if f ~= nil and next(v, next(v)) == nil then
    local x = FLOATS[f]
    if x == nil then error(fmt("unknown __float__ value %s", tostring(f)), 0) end
    return x
  end
  local m = v.__map__
  if m ~= nil and next(v, next(v)) == nil then
    if type(m) ~= "table" then error("__map__ must hold a list of pairs", 0) end
    local out = {}
    for _, kv in ipairs(m) do
      if type(kv) ~= "table" or kv[1] == nil then error("__map__ must hold [key, value] pairs", 0) end
      local k = decode_tree(kv[1], tensors)
      if k ~= k then error("__map__ has a nan key", 0) end
      out[k] = decode_tree(kv[2], tensors)
    end
    return out
  end
  local out = {}
  for k, x in pairs(v) do out[k] = decode_tree(x, tensors) end
  return out
end

-- decode(text [, tensors]) --> value, or nil and a message. tensors: the
-- names {"__tensor__": name} stand for (without it they stay tables).
function M.decode(text, tensors)
  if type(text) ~= "string" then return nil, "expected a string" end
  local ok, v, pos, err = pcall(json.decode, text, 1, nil)
  if not ok then return nil, tostring(v) end
  if err then return nil, err end
  if pos and text:find("%S", pos) then return nil, "unexpected text after the JSON value" end
  local ok2, out = pcall(decode_tree, v, tensors)
  if not ok2 then return nil, out end
  return out
end

-- encode_plain(v [, {indent = false, keyorder = {keys}}]) --> JSON text
-- for other programs: numbers as they are, nan and inf as null, objects'
-- keys in keyorder's order first. Not for reading back exactly (use encode).
function M.encode_plain(v, opts)
  opts = opts or {}
  return json.encode(v, {indent = opts.indent, keyorder = opts.keyorder})
end

M.float_text = float_text
return M
