-- moongrad.tune.store: a study's file, one JSON object per line.
--
-- The first line describes the study (direction, the space as text, the
-- fixed values); every later line is one finished trial, appended and
-- flushed as the trial ends, so a study killed at any moment keeps every
-- trial it finished. A last line cut short by such a kill is dropped when
-- the study is opened again, and the file rewritten without it when the
-- study next runs (opening a study never writes).
--
-- Every read, rewrite and append goes through the core's file routine
-- (runtime/io_file.c): a rewrite is atomic (a unique temporary, fsync,
-- rename), a symlinked study file keeps its link, and a FIFO, directory or
-- device at the path is refused at once instead of blocking or being
-- replaced.
local json = require "moongrad.json"
local core = require "moongrad.core"
local type, ipairs, pairs, error, tostring = type, ipairs, pairs, error, tostring
local fmt, concat = string.format, table.concat
local read_file, write_file, append_file = core._read_file, core._write_file, core._append_file

local store = {}

-- store.write_file(path, text, who, level): path replaced whole by text,
-- atomically; raises "who: path: ..." at level (0: no position).
function store.write_file(path, text, who, level)
  local ok, err = write_file(path, text, who)
  if not ok then error(err, level and level + 1 or 0) end
end

local function read_lines(path)
  local text, err = read_file(path, "tune")
  if not text then
    if err then error(err, 0) end
    return nil
  end
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines, text:sub(-1) == "\n"
end

local function rewrite(path, lines)
  store.write_file(path, concat(lines, "\n") .. "\n", "tune")
end

-- Reads the file: header, records, and what a cut-short write left (its
-- lines without the cut tail, true; or nil, true when the last record only
-- lacks its newline). Never writes: a study is opened on every rank of an
-- MPI search, and only rank 1 may touch the file (store.write_header).
local function scan(path)
  local lines, ends_clean = read_lines(path)
  if not lines or #lines == 0 then return nil, {} end
  local records, header = {}, nil
  for i, line in ipairs(lines) do
    local ok, v = pcall(json.decode, line)
    if not ok or type(v) ~= "table" then
      if i == #lines and i > 1 then
        -- the tail of a write cut short by a kill: drop it
        lines[i] = nil
        return header, records, lines, true
      end
      error(fmt("tune: %s line %d is not a study record (%s)", path, i,
                ok and "not an object" or tostring(v)), 0)
    end
    if i == 1 then
      if v.moongrad_study == nil then
        error(fmt("tune: %s is not a moongrad study file (its first line has no "
                  .. "\"moongrad_study\")", path), 0)
      end
      header = v
    else
      records[#records + 1] = v
    end
  end
  return header, records, nil, not ends_clean
end

-- store.load(path) --> header, {trial records} (nil, {} when there is no file)
function store.load(path)
  local header, records = scan(path)
  return header, records
end

-- One record, in one write(2) on an O_APPEND descriptor.
local function append(path, line)
  local ok, err = append_file(path, line .. "\n", "tune")
  if not ok then error(err, 0) end
end

-- Before a run's first record: the file made whole (a tail cut short by a
-- kill dropped, a missing last newline added), or started with the header.
function store.write_header(path, header)
  if path:find("\0", 1, true) then -- os.execute would cut the path there
    error("tune: the study file's path contains a NUL byte", 0)
  end
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then os.execute(fmt("mkdir -p '%s'", dir:gsub("'", "'\\''"))) end
  local found, _, whole, broken = scan(path)
  if found then
    if whole then
      rewrite(path, whole)
    elseif broken then
      append(path, "")
    end
    return
  end
  append(path, json.encode(header, "study header"))
end

function store.append(path, record)
  append(path, json.encode(record, "trial record"))
end

-- CSV of the records: number, state, value (value_1 .. value_k for a
-- study of k objectives), seconds, one column per parameter and per
-- attribute, and the error.
function store.csv(records, names, objectives)
  local attr_names, seen = {}, {}
  for _, r in ipairs(records) do
    for k in pairs(r.attrs or {}) do
      if not seen[k] then seen[k] = true; attr_names[#attr_names + 1] = k end
    end
  end
  table.sort(attr_names)
  local function cell(v)
    if v == nil then return "" end
    if type(v) == "number" then
      return math.type(v) == "integer" and tostring(v) or json.float_text(v)
    end
    local s = type(v) == "table" and json.encode(v) or tostring(v)
    if s:find('[,"\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
    return s
  end
  local head = {"number", "state"}
  if objectives then
    for k = 1, objectives do head[#head + 1] = "value_" .. k end
  else
    head[#head + 1] = "value"
  end
  head[#head + 1] = "seconds"
  for _, n in ipairs(names) do head[#head + 1] = n end
  for _, n in ipairs(attr_names) do head[#head + 1] = "attr_" .. n end
  head[#head + 1] = "error"
  local out = {concat(head, ",")}
  for _, r in ipairs(records) do
    local row = {cell(r.number), cell(r.state)}
    if objectives then
      for k = 1, objectives do row[#row + 1] = cell(r.values and r.values[k]) end
    else
      row[#row + 1] = cell(r.value)
    end
    row[#row + 1] = cell(r.seconds)
    for _, n in ipairs(names) do row[#row + 1] = cell(r.params[n]) end
    for _, n in ipairs(attr_names) do row[#row + 1] = cell((r.attrs or {})[n]) end
    row[#row + 1] = cell(r.error)
    out[#out + 1] = concat(row, ",")
  end
  return concat(out, "\n") .. "\n"
end

return store
