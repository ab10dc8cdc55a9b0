-- moongrad.jupyter: the Jupyter kernel (messaging protocol 5.3).
--
-- `moongrad --kernel CONNECTION_FILE` runs main(): it binds the sockets
-- the connection file names (moongrad.jupyter_wire, runtime/jupyter/wire.c,
-- which signs and checks every message and publishes what the process
-- prints) and serves requests one at a time until a shutdown request.
-- Cells run in one Lua state with `mg` loaded, as in the REPL: an
-- expression's values come back as the cell's result, anything printed is
-- streamed as it happens, an error (with its traceback) fails the cell and
-- never the kernel, and SIGINT (the notebook's interrupt) stops a running
-- cell ("interrupted!"; train.fit finishes its step and checkpoints first).
--
-- `moongrad --install-kernel [--user | --prefix DIR]` writes the kernelspec
-- (install_kernelspec below).
local json = require "dkjson"
local repl = require "moongrad.repl"
local display = require "moongrad.display"
local help = require "moongrad.help"
local mg = require "moongrad"

local M = {}

local VERSION = mg.version
local LANGUAGE_INFO = {
  name = "lua",
  version = _VERSION:match("%d+%.%d+"),
  mimetype = "text/x-lua",
  file_extension = ".lua",
  pygments_lexer = "lua",
  codemirror_mode = "lua",
}

local function encode(v) return json.encode(v) end

-- An empty JSON object: dkjson writes an empty Lua table as an array.
local EMPTY = setmetatable({}, { __jsontype = "object" })

---------------------------------------------------------------------------
-- Lua source: is it complete, and what does it evaluate to?

-- "complete", "incomplete" (more lines would finish it) or "invalid".
local function completeness(code)
  if load("return " .. code .. "\n;", "=cell") then return "complete" end
  local ok, err = load(code, "=cell")
  if ok then return "complete" end
  if err:match("<eof>$") then return "incomplete" end
  return "invalid"
end

-- Compiles a cell so that its last expression's values become the result,
-- as in IPython: the whole cell when it is an expression list, else the
-- statements before its last lines when those lines are one ("x = f()\nx"),
-- else the cell as statements.
local function compile(code, name)
  local fn = load("return " .. code .. "\n;", name)
  if fn then return fn end
  local lines = {}
  for line in (code:gsub("%s+$", "") .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  for k = #lines, 2, -1 do
    local last = table.concat(lines, "\n", k)
    if not last:match("^%s*%-%-") and load("return " .. last .. "\n;", name) then
      fn = load(table.concat(lines, "\n", 1, k - 1) .. "\nreturn " .. last .. "\n;", name)
      if fn then return fn end
    end
  end
  return load(code, name)
end

-- Whether name is a dotted name ("mg", "mg.nn.init"), the only
-- expressions completion and inspection walk (never calls or indexing).
local function dotted(name)
  return name ~= nil and name:match("^[%a_][%w_%.]*$") ~= nil and not name:match("%.%.")
         and not name:match("%.$")
end

-- A request's code and the number of bytes before its cursor: cursor_pos
-- counts unicode code points, and moongrad's names are ASCII, so only
-- text before the cursor that is not ASCII needs the conversion.
local function code_and_cursor(content)
  local code = content.code or ""
  local cursor = content.cursor_pos or utf8.len(code) or #code
  return code, (utf8.offset(code, cursor + 1) or #code + 1) - 1, cursor
end

---------------------------------------------------------------------------
-- Completion: the REPL's candidates (runtime/repl.c) for the name before
-- the cursor, after "expr." or "expr:" when there is one.

local function completion(candidates, code, cursor)
  local before = code:sub(1, cursor)
  local word = before:match("[%a_][%w_]*$") or ""
  local start = #before - #word
  local sep = before:sub(start, start)
  local expr
  if sep == "." or sep == ":" then
    expr = before:sub(1, start - 1):match("([%a_][%w_%.]*)$")
    if not dotted(expr) then return {}, start end
  elseif sep:match("[%w_%)%]\"']") then -- after a number, a call, an index or a string
    return {}, start
  end
  local ok, found = pcall(candidates, expr, expr and sep or "", word)
  local matches = {}
  if ok and type(found) == "table" then
    for name in pairs(found) do matches[#matches + 1] = name end
  end
  table.sort(matches)
  return matches, start
end

---------------------------------------------------------------------------
-- The kernel.

local Kernel = {}
Kernel.__index = Kernel

function Kernel:reply(channel, msg, msg_type, content)
  self.wire:send(channel, msg.idents, msg_type, msg.header, encode(content))
end

function Kernel:publish(msg_type, content, parent)
  self.wire:send("iopub", nil, msg_type, parent or "{}", encode(content))
end

-- Shows a MIME bundle in the cell being served (display_data), or redraws
-- the output with display id (update_display_data).
function Kernel:show(data, id, update)
  self:publish(update and "update_display_data" or "display_data",
               { data = data, metadata = EMPTY, transient = id and { display_id = id } or EMPTY },
               self.parent)
end

function Kernel:status(state, parent)
  self:publish("status", { execution_state = state }, parent)
end

function Kernel:kernel_info()
  return {
    status = "ok",
    protocol_version = "5.3",
    implementation = "moongrad",
    implementation_version = VERSION,
    language_info = LANGUAGE_INFO,
    banner = ("moongrad %s — %s · `mg` is loaded"):format(VERSION, _VERSION),
    help_links = {},
  }
end

-- The error content for a failed cell: the message's first line names the
-- error, the rest (the traceback) goes in traceback.
local function error_content(message)
  message = tostring(message)
  local first = message:match("^[^\n]*")
  local ename = first == "interrupted!" and "Interrupted" or "Error"
  local lines = {}
  for line in (message .. "\n"):gmatch("([^\n]*)\n") do
    -- Below the cell's own frames are the kernel's, of no use to the user.
    if line:find("in field 'run'", 1, true) then break end
    lines[#lines + 1] = line
  end
  return { ename = ename, evalue = first, traceback = lines }
end

-- The value called name ("mg.conv2d", "t.sum"), walked from the globals
-- without running anything else; nil when a part is missing.
local function lookup(name)
  if not dotted(name) then return nil end
  local ok, value = pcall(function()
    local v = _G
    for part in name:gmatch("[^.]+") do v = v[part] end
    return v
  end)
  return ok and value or nil
end

-- "?name" or "name?" alone in a cell asks for help, as in IPython.
local function help_query(code)
  local name = code:match("^%s*%?%s*([%a_][%w_%.:]*)%s*$") or code:match("^%s*([%a_][%w_%.:]*)%s*%?%s*$")
  return name
end

function Kernel:execute(msg, content)
  local code = content.code or ""
  local silent = content.silent == true
  local store = content.store_history ~= false and not silent
  if store then self.count = self.count + 1 end
  local count = self.count
  if not silent then
    self:publish("execute_input", { code = code, execution_count = count }, msg.header)
  end
  local ok_reply = { status = "ok", execution_count = count, user_expressions = EMPTY, payload = {} }
  local query = help_query(code)
  if query then
    local value = lookup((query:gsub(":", ".")))
    if not silent then self:show({ ["text/plain"] = help.text(value ~= nil and value or query) }) end
    return ok_reply
  end
  local fn, err = compile(code, "=[" .. count .. "]")
  local results
  if fn then
    results = table.pack(self.run(fn))
    if not results[1] then err = results[2] end
  end
  self.wire:flush()
  if err then
    local e = error_content(err)
    if not silent then self:publish("error", e, msg.header) end
    return { status = "error", execution_count = count, ename = e.ename, evalue = e.evalue,
             traceback = e.traceback }
  end
  if results.n > 1 and not silent then
    local data
    if results.n == 2 then
      data = display.bundle(results[2]) -- a table, a chart; images only through mg.display
    else
      local shown = {}
      for i = 2, results.n do shown[#shown + 1] = repl.show(results[i]) end
      data = { ["text/plain"] = table.concat(shown, "\t") }
    end
    self:publish("execute_result", { execution_count = count, data = data, metadata = EMPTY },
                 msg.header)
  end
  return ok_reply
end

function Kernel:complete(content)
  local code, byte, cursor = code_and_cursor(content)
  local matches, start = completion(self.candidates, code, byte)
  return {
    status = "ok",
    matches = matches,
    cursor_start = utf8.len(code:sub(1, start)) or start,
    cursor_end = cursor,
    metadata = EMPTY,
  }
end

-- Shift-Tab: the help for the dotted name around the cursor ("mg.zeros",
-- "t:sum"); for a value with no help of its own (a tensor, a number), its
-- type and how the REPL shows it.
function Kernel:inspect(content)
  local code, byte = code_and_cursor(content)
  local head = code:sub(1, byte):match("[%a_][%w_%.:]*$") or ""
  local tail = code:sub(byte + 1):match("^[%w_]*") or ""
  local name = (head .. tail):gsub(":", ".")
  local value = lookup(name)
  if value == nil then
    return { status = "ok", found = false, data = EMPTY, metadata = EMPTY }
  end
  local text
  local kind = mg.is_tensor(value) and "tensor" or type(value)
  if kind == "function" or (kind == "table" and help.resolve(value)) then
    text = help.text(value)
  else
    text = name .. ": " .. kind .. "\n" .. repl.show(value)
  end
  return { status = "ok", found = true, data = { ["text/plain"] = text }, metadata = EMPTY }
end

function Kernel:is_complete(content)
  local status = completeness(content.code or "")
  return { status = status, indent = status == "incomplete" and "  " or nil }
end

-- The shell and control requests, by type; each returns the reply's
-- content. kernel_info and the others answer the same on both channels.
local handlers = {
  kernel_info_request = function(k) return k:kernel_info() end,
  execute_request = function(k, msg, c) return k:execute(msg, c) end,
  complete_request = function(k, _, c) return k:complete(c) end,
  is_complete_request = function(k, _, c) return k:is_complete(c) end,
  inspect_request = function(k, _, c) return k:inspect(c) end,
  history_request = function() return { status = "ok", history = {} } end,
  comm_info_request = function() return { status = "ok", comms = EMPTY } end,
  interrupt_request = function() return { status = "ok" } end,
  shutdown_request = function(k, _, c)
    k.done = true
    return { status = "ok", restart = c.restart == true }
  end,
}

-- Requests without a reply (comm messages for widgets moongrad does not have).
local ignored = { comm_open = true, comm_msg = true, comm_close = true }

function Kernel:serve(channel, msg)
  self.parent = msg.header -- what mg.display's output answers
  local header, err = json.decode(msg.header)
  local content = json.decode(msg.content)
  if type(header) ~= "table" or type(content) ~= "table" or type(header.msg_type) ~= "string" then
    self.wire:log("refused a malformed message on " .. channel .. ": " ..
                  tostring(err or "header or content is not an object"))
    return
  end
  local msg_type = header.msg_type
  if ignored[msg_type] then return end
  local handler = handlers[msg_type]
  self:status("busy", msg.header)
  self.wire:capture(msg.header)
  local reply, waiting
  if handler then
    reply = handler(self, msg, content)
    if msg_type == "execute_request" and reply.status == "error" and
       content.stop_on_error ~= false and content.silent ~= true then
      waiting = self:take_waiting()
    end
    self:reply(channel, msg, msg_type:gsub("_request$", "_reply"), reply)
  else
    self.wire:log("no handler for " .. msg_type)
  end
  self:status("idle", msg.header)
  if waiting then self:abort_queued(waiting) end
end

-- After a cell fails, the cells already sent after it are answered
-- "aborted" without running, as IPython does, so that Run All stops at the
-- first error (a cell sent with stop_on_error = false fails alone). What
-- is waiting is taken before the failed cell is answered: a client sends
-- its next cell once it has that answer, and such a cell runs.
function Kernel:take_waiting()
  local waiting = {}
  while true do
    local channel = self.wire:poll(0)
    if channel == nil then return waiting end
    local msg = self.wire:recv(channel)
    if msg and channel ~= "stdin" then waiting[#waiting + 1] = {channel, msg} end
  end
end

-- Answers the execute requests taken by take_waiting "aborted" and serves
-- the other requests among them as usual.
function Kernel:abort_queued(waiting)
  for _, w in ipairs(waiting) do
    local channel, msg = w[1], w[2]
    local header = channel == "shell" and json.decode(msg.header)
    if self.done then return end
    if type(header) == "table" and header.msg_type == "execute_request" then
      self:status("busy", msg.header)
      self:reply(channel, msg, "execute_reply", { status = "aborted" })
      self:status("idle", msg.header)
    else
      self:serve(channel, msg)
    end
  end
end

function Kernel:loop()
  while not self.done do
    local channel = self.wire:poll(1000)
    if channel == "shell" or channel == "control" then
      local msg, why = self.wire:recv(channel)
      if msg then
        self:serve(channel, msg)
      else
        self.wire:log("refused a message on " .. channel .. ": " .. why)
      end
    elseif channel == "stdin" then
      self.wire:recv(channel) -- input replies only answer requests we never send
    end
  end
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then error("moongrad --kernel: cannot read the connection file: " .. err, 0) end
  local text = f:read("a")
  f:close()
  return text
end

-- main(connection_file, helpers): serves until a shutdown request. helpers
-- come from the executable: run(fn) calls fn as the REPL does (traceback,
-- Ctrl-C) and returns true and its values or false and the message;
-- candidates(expr, sep, prefix) is the REPL's completion.
function M.main(path, helpers)
  local conn, _, err = json.decode(read_file(path))
  if type(conn) ~= "table" then
    error(("moongrad --kernel: %s is not a JSON connection file: %s"):format(path, tostring(err)), 0)
  end
  if _G.mg == nil then _G.mg = mg end
  if _G.help == nil then _G.help = mg.help end
  local wire_module, err2 = require("moongrad.util").require_beside_core(
    "moongrad.jupyter_wire", "jupyter_wire.so")
  if not wire_module then
    error("moongrad --kernel: cannot load the kernel's transport (" .. err2 .. "); " ..
          "install libzmq3-dev and libssl-dev and rebuild (make)", 0)
  end
  local wire = wire_module.open(conn)
  local kernel = setmetatable({ wire = wire, count = 0, run = helpers.run,
                                candidates = helpers.candidates }, Kernel)
  display.set_sink(function(data, id, update) kernel:show(data, id, update) end)
  kernel:status("starting")
  kernel:loop()
  wire:close()
end

---------------------------------------------------------------------------
-- The kernelspec.

-- Where `jupyter kernelspec list` looks: --user puts it under the user's
-- data dir, --prefix DIR under DIR/share/jupyter, and neither under the
-- system's /usr/local/share/jupyter.
local function kernels_dir(where, prefix)
  if where == "user" then
    local data = os.getenv("JUPYTER_DATA_DIR")
    if data and data ~= "" then return data .. "/kernels" end
    local xdg = os.getenv("XDG_DATA_HOME")
    local home = os.getenv("HOME")
    if (not xdg or xdg == "") and not home then
      error("moongrad --install-kernel --user: HOME is not set", 0)
    end
    return ((xdg and xdg ~= "") and xdg or home .. "/.local/share") .. "/jupyter/kernels"
  end
  return (where == "prefix" and prefix or "/usr/local") .. "/share/jupyter/kernels"
end

local function mkdir_p(dir)
  local ok, _, code = os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  if not ok then error(("moongrad --install-kernel: cannot create %s (exit %s)"):format(dir, code), 0) end
end

-- Writes kernel.json for the executable at exe; returns the directory.
function M.install_kernelspec(exe, where, prefix)
  local dir = kernels_dir(where, prefix) .. "/moongrad"
  mkdir_p(dir)
  local spec = {
    argv = { exe, "--kernel", "{connection_file}" },
    display_name = "moongrad (Lua " .. LANGUAGE_INFO.version .. ")",
    language = "lua",
    interrupt_mode = "signal",
    metadata = { debugger = false },
  }
  -- Whole and atomic; a directory or FIFO there is refused (io_file.c).
  local ok, err = require("moongrad.core")._write_file(dir .. "/kernel.json",
    json.encode(spec, { indent = true }) .. "\n", "moongrad --install-kernel")
  if not ok then error(err, 0) end
  return dir
end

return M
