-- moongrad.attach: a REPL inside a running training job.
--
--   $ moongrad --listen train.lua            # the job; prints its socket
--   $ moongrad --attach 4242                 # another terminal: PID or path
--   attached to job 4242 (train.lua): epoch 2/10, batch 37/469, step 506, ...
--   > lr()                     --> 0.01
--   > lr(0.003)                -- every group, from the next step on
--   > pause()                  -- the job waits at this attach point ...
--   > history.batch_loss[#history.batch_loss]
--   > save("now.safetensors")  -- a checkpoint fit's resume option takes
--   > resume()                 -- ... and goes on
--   > detach()                 -- or Ctrl-D: the job goes on alone
--
-- The job listens (`moongrad --listen`, attach.listen, or train.fit's
-- `listen` option) on a Unix socket only its owner can use. Commands run
-- at attach points, between two batches and never in the middle of a step:
-- train.fit has one after every training batch and at every epoch's end; a
-- loop of one's own calls attach.serve(vars). From a notebook or a script,
-- attach.connect(target) gives a session whose run(code) does what a typed
-- line does.
--
-- A session sees, besides the globals: model, optimizer, scheduler,
-- history, callbacks (fit's live list: a callback added there runs from the
-- next batch), ctx (fit's callback context), epoch, epochs, batch,
-- batches, step, loss, train_loader, val_loader, and the commands lr,
-- pause, resume, stop, save, status, detach, help and mg. Globals a session
-- sets stay in that session; its print prints there. An error in a command
-- goes to the session; the job never sees it. Ctrl-C in the session stops
-- a command that runs too long. While paused the job serves its sessions
-- and waits; it resumes when the last one leaves, and a SIGINT or SIGTERM
-- to the job ends the pause, so that fit stops as it always does.
--
-- The wire: frames of a kind byte and a string.pack(">s4") payload. The
-- session sends X (code), C (completion: expr \0 sep \0 prefix) and I
-- (interrupt); the job sends H (the greeting), O (printed text), R (the
-- shown results), E (an error), D (a command is done; payload "running",
-- "paused" or "detached"), L (candidates, "name\tkind\n" each) and B (the
-- job has ended).
local mg = require "moongrad"
local repl = require "moongrad.repl"

local type, pairs, ipairs, tostring, select, error, pcall, xpcall, load, setmetatable =
  type, pairs, ipairs, tostring, select, error, pcall, xpcall, load, setmetatable
local getmetatable = getmetatable
local fmt, concat, spack, sunpack = string.format, table.concat, string.pack, string.unpack
local send, recv, poll, close = mg._proc_send, mg._proc_recv, mg._proc_poll, mg._proc_close
local signals_pending = mg._signals_pending

local M = {}

---------------------------------------------------------------------------
-- Where a job's socket is.

-- $XDG_RUNTIME_DIR/moongrad when that is set, else /tmp/moongrad-<uid>:
-- either way a directory only its owner may use.
function M.socket_dir()
  local run = os.getenv("XDG_RUNTIME_DIR")
  if run and run:sub(1, 1) == "/" then return run .. "/moongrad" end
  return "/tmp/moongrad-" .. mg._uid()
end

-- attach.socket_path(pid) --> where the job with that pid listens by default.
function M.socket_path(pid)
  return fmt("%s/%d.sock", M.socket_dir(), pid)
end

---------------------------------------------------------------------------
-- Frames.

local function frame(kind, payload)
  return kind .. spack(">s4", payload or "")
end

local MAX_FRAME = 64 << 20 -- bytes: a longer frame is garbage, not code

-- The first complete frame in buf: kind, payload and the rest of buf; nil
-- while there is none; false when buf starts with a frame too long to be
-- one.
local function take_frame(buf)
  if #buf < 5 then return nil end
  local len = sunpack(">I4", buf, 2)
  if len > MAX_FRAME then return false end
  if #buf < 5 + len then return nil end
  return buf:sub(1, 1), buf:sub(6, 5 + len), buf:sub(6 + len)
end

---------------------------------------------------------------------------
-- The job's side.

local Listener = {}
Listener.__index = Listener

local current -- the process's listener (--listen), if any

-- attach.listen([path]) --> a listener on path (default
-- attach.socket_path(<this pid>)); the first one becomes attach.current().
function M.listen(path)
  if path ~= nil and type(path) ~= "string" then
    error("attach.listen: expects a socket path (a string) or nothing, got " .. type(path), 2)
  end
  if path == nil then
    local ok, err = mg._unix_private_dir(M.socket_dir())
    if not ok then error(err, 2) end
    path = M.socket_path(mg._getpid())
  end
  local fd, err = mg._unix_listen(path)
  if not fd then error(err, 2) end
  local self = setmetatable({fd = fd, path = path, clients = {}, paused = false,
                             scope = setmetatable({}, {__index = _G}), vars = {},
                             pid = mg._getpid()}, Listener)
  if current == nil then current = self end
  return self
end

-- A process forked from the job (a tune trial, a loader worker) has a copy
-- of its listener, which is not its own to serve or remove.
local function owned(l) return l.fd ~= nil and l.pid == mg._getpid() end

-- attach.current() --> the listener `moongrad --listen` (or the first
-- attach.listen) started, or nil.
function M.current()
  if current and owned(current) then return current end
  return nil
end

-- Says goodbye to every session, stops listening and removes the socket.
function Listener:close()
  if not owned(self) then return end
  for _, c in ipairs(self.clients) do
    send(c.fd, frame("B", "the job has ended"))
    close(c.fd)
  end
  self.clients = {}
  close(self.fd)
  mg._unix_unlink(self.path)
  self.fd = nil
  if current == self then current = nil end
end
Listener.__gc = Listener.close
Listener.__close = Listener.close

local function drop(self, c)
  for i, x in ipairs(self.clients) do
    if x == c then table.remove(self.clients, i) break end
  end
  close(c.fd)
  c.closed = true
end

-- Sends to a session; one that went away is dropped.
local function tell(self, c, kind, payload)
  if c.closed then return end
  if not send(c.fd, frame(kind, payload)) then drop(self, c) end
end

-- Reads what a session sent into its buffer; false when it has gone.
local function receive(c)
  local data = recv(c.fd)
  if data == nil or data == "" then return false end
  c.buf = c.buf .. data
  return true
end

local function fmt_number(v)
  if math.type(v) == "float" then return fmt("%.6g", v) end
  return tostring(v)
end

-- "epoch 2/10, batch 37/469, step 506, loss 0.412, lr 0.01, running"
local function status_line(self)
  local v, parts = self.vars, {}
  if v.epoch then parts[#parts + 1] = fmt("epoch %s%s", v.epoch, v.epochs and "/" .. v.epochs or "") end
  if v.batch then parts[#parts + 1] = fmt("batch %s%s", v.batch, v.batches and "/" .. v.batches or "") end
  if v.step then parts[#parts + 1] = "step " .. v.step end
  if v.loss then parts[#parts + 1] = "loss " .. fmt_number(v.loss) end
  local opt = v.optimizer
  if type(opt) == "table" and type(opt.param_groups) == "table" and opt.param_groups[1] then
    parts[#parts + 1] = "lr " .. fmt_number(opt.param_groups[1].lr)
  end
  parts[#parts + 1] = self.paused and "paused" or "running"
  return concat(parts, ", ")
end

local function greeting(self)
  local script = arg and arg[0] and (" (" .. tostring(arg[0]) .. ")") or ""
  local names = {}
  for k in pairs(self.vars) do
    if type(k) == "string" and not k:match("^_") then names[#names + 1] = k end
  end
  table.sort(names)
  return fmt("attached to job %d%s: %s\n" ..
             "names: %s\n" ..
             "commands: lr([x]), pause(), resume(), stop(), save(path), status(), detach(); " ..
             "Ctrl-D detaches, Ctrl-C stops a command\n",
             mg._getpid(), script, status_line(self), concat(names, ", "))
end

-- The commands every session has; self.running is the session whose
-- command runs.
local function commands(self)
  local cmd = {}
  function cmd.print(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    local text = concat(parts, "\t") .. "\n"
    local c = self.running
    if c then tell(self, c, "O", text) else io.stdout:write(text) end
  end
  function cmd.pause()
    self.paused = true
    return "paused: the job waits here until resume() or the last session leaves"
  end
  function cmd.resume() self.paused = false; return "resumed" end
  function cmd.status() return status_line(self) end
  function cmd.detach()
    if self.running then self.running.detaching = true end
  end
  function cmd.stop()
    local ctx = self.vars.ctx
    if type(ctx) ~= "table" then error("stop: this attach point has no fit to stop", 2) end
    ctx.stop, self.paused = true, false
    return "stopping: fit ends after this epoch"
  end
  -- lr() --> group 1's lr; lr(x) sets every group's; lr(x, g) group g's.
  function cmd.lr(x, g)
    local opt = self.vars.optimizer
    if type(opt) ~= "table" or type(opt.param_groups) ~= "table" then
      error("lr: this attach point has no optimizer", 2)
    end
    local groups = opt.param_groups
    if x == nil then return groups[1].lr end
    if type(x) ~= "number" or not (x >= 0) or x == math.huge then
      error("lr: expects a finite number >= 0, got " .. tostring(x), 2)
    end
    if g ~= nil and (math.type(g) ~= "integer" or groups[g] == nil) then
      error(fmt("lr: no param group %s (the optimizer has %d)", tostring(g), #groups), 2)
    end
    for i, group in ipairs(groups) do
      if g == nil or i == g then group.lr = x + 0.0 end
    end
    local from = self.vars.step and fmt(" from step %d", self.vars.step + 1) or ""
    return fmt("lr %s%s%s", fmt_number(x + 0.0), g and fmt(" (group %d)", g) or "", from)
  end
  function cmd.save(path)
    if type(path) ~= "string" then error("save: expects a path (a string)", 2) end
    local v = self.vars
    if type(v._save) == "function" then
      v._save(path)
    elseif v.model then
      require("moongrad.checkpoint").save(path, {model = v.model, optimizer = v.optimizer,
                                                 scheduler = v.scheduler, epoch = v.epoch,
                                                 step = v.step})
    else
      error("save: this attach point has no model", 2)
    end
    return "saved " .. path
  end
  cmd.help, cmd.mg = mg.help, mg
  return cmd
end

-- The code a session sent, read as the REPL reads a line: an expression
-- first ("=expr" is the old spelling), else statements.
local function compile(src, env)
  if src:sub(1, 1) == "=" then src = src:sub(2) end
  local f = load("return " .. src .. ";", "=attach", "t", env)
  if f then return f end
  return load(src, "=attach", "t", env)
end

-- The traceback down to the command, without this module's frames.
local function handler(msg)
  if type(msg) ~= "string" then
    local mt = getmetatable(msg)
    msg = mt and mt.__tostring and tostring(msg) or fmt("(error object is a %s value)", type(msg))
  end
  local tb = debug.traceback(msg, 2)
  local cut = tb:find("\n%s*%[C%]: in function 'xpcall'")
  return cut and tb:sub(1, cut - 1) or tb
end

-- While a command runs, an I frame from its session stops it (other
-- frames wait their turn).
local function interrupt_hook(c)
  return function()
    if #poll({c.fd}, 0) == 0 then return end
    if not receive(c) then c.gone = true return end
    local keep, stop, buf = {}, false, c.buf
    while true do
      local kind, payload, rest = take_frame(buf)
      if not kind then break end -- a bad frame is handled after the command
      if kind == "I" then stop = true else keep[#keep + 1] = frame(kind, payload) end
      buf = rest
    end
    c.buf = concat(keep) .. buf
    if stop then error("interrupted!", 2) end
  end
end

local function run_code(self, c, src)
  local f, err = compile(src, c.env)
  if not f then
    tell(self, c, "E", err)
    return
  end
  self.running = c
  local old_hook, old_mask, old_count = debug.gethook()
  debug.sethook(interrupt_hook(c), "", 1000)
  local res = table.pack(xpcall(f, handler))
  if old_hook then debug.sethook(old_hook, old_mask, old_count) else debug.sethook() end
  self.running = nil
  if not res[1] then
    tell(self, c, "E", res[2])
  elseif res.n > 1 then
    local shown = {}
    for i = 2, res.n do shown[i - 1] = repl.show(res[i]) end
    tell(self, c, "R", concat(shown, "\t"))
  end
end

local function complete(self, c, payload)
  local expr, sep, prefix = payload:match("^(.-)%z(.-)%z(.*)$")
  local lines = {}
  if expr then
    local ok, cands = pcall(mg._candidates, expr ~= "" and expr or nil, sep, prefix, c.env)
    if ok and type(cands) == "table" then
      for name, kind in pairs(cands) do lines[#lines + 1] = name .. "\t" .. kind .. "\n" end
    end
  end
  tell(self, c, "L", concat(lines))
end

-- Runs what a session has sent, frame by frame.
local function handle(self, c)
  while not c.closed do
    local kind, payload, rest = take_frame(c.buf)
    if kind == false then
      tell(self, c, "E", "attach: a frame longer than " .. MAX_FRAME .. " bytes; closing")
      drop(self, c)
      return
    end
    if not kind then break end
    c.buf = rest
    if kind == "X" then
      run_code(self, c, payload)
      local leaving = c.detaching or c.gone
      tell(self, c, "D", leaving and "detached" or self.paused and "paused" or "running")
      if leaving and not c.closed then drop(self, c) end
    elseif kind == "C" then
      complete(self, c, payload)
    end -- "I" with nothing running: nothing to stop
  end
end

local function accept_all(self)
  while true do
    local fd, err = mg._unix_accept(self.fd)
    if not fd then
      if err then io.stderr:write("moongrad: ", err, "\n") end
      return
    end
    local c = {fd = fd, buf = "", env = setmetatable({}, {__index = self.scope})}
    self.clients[#self.clients + 1] = c
    tell(self, c, "H", greeting(self))
  end
end

-- One round: new sessions in, and whatever they sent run. timeout_ms: how
-- long to wait for something to happen (0: not at all).
local function service(self, timeout_ms)
  local fds = {self.fd}
  for _, c in ipairs(self.clients) do fds[#fds + 1] = c.fd end
  local ready = {}
  for _, fd in ipairs(poll(fds, timeout_ms)) do ready[fd] = true end
  if ready[self.fd] then accept_all(self) end
  for _, c in ipairs({table.unpack(self.clients)}) do
    if ready[c.fd] and not c.closed then
      if receive(c) then handle(self, c) else drop(self, c) end
    end
  end
end

-- listener:serve(vars): an attach point. Runs what the sessions sent and,
-- while paused, waits for more. vars: the names sessions see (model,
-- optimizer, history, ...); a function vars._save(path) does save's work.
function Listener:serve(vars)
  if not owned(self) or self.serving then return end
  self.serving = true
  self.vars = vars or {}
  local scope = self.scope
  for k in pairs(scope) do scope[k] = nil end
  for k, v in pairs(self.vars) do
    if type(k) == "string" and not k:match("^_") then scope[k] = v end
  end
  self.commands = self.commands or commands(self)
  for k, v in pairs(self.commands) do scope[k] = v end
  local ok, err = pcall(function()
    service(self, 0)
    while self.paused and #self.clients > 0 and not signals_pending() do
      service(self, 200)
    end
    self.paused = false -- resumed, the last session left, or a signal came
  end)
  self.serving = false
  if not ok then error(err, 0) end
end

-- attach.serve(vars): the attach point of a loop of one's own, for the
-- listener `moongrad --listen` started (nothing happens without one).
function M.serve(vars)
  if vars ~= nil and type(vars) ~= "table" then
    error("attach.serve: expects a table of names (model = ..., optimizer = ...), got " ..
          type(vars), 2)
  end
  local l = M.current()
  if l then l:serve(vars) end
end

---------------------------------------------------------------------------
-- The session's side.

local Session = {}
Session.__index = Session

-- "4242" or a path --> the socket's path.
local function resolve(target)
  local pid = tostring(target):match("^%d+$")
  if pid then
    local path = M.socket_path(tonumber(pid))
    if not mg._unix_is_socket(path) then
      error(fmt("attach: no job %s is listening (no socket at %s); start it with " ..
                "moongrad --listen", pid, path), 0)
    end
    return path
  end
  if type(target) ~= "string" or target == "" then
    error("attach: expects a job's pid or its socket path, got " .. tostring(target), 0)
  end
  return target
end

-- The next frame from the job: kind, payload; nil, "timeout" or nil,
-- "closed". timeout_ms nil waits for ever.
local function wait_frame(s, timeout_ms)
  while true do
    local kind, payload, rest = take_frame(s.buf)
    if kind == false then return nil, "closed" end -- not a job at the other end
    if kind then
      s.buf = rest
      return kind, payload
    end
    if #poll({s.fd}, timeout_ms or -1) == 0 then
      if timeout_ms then return nil, "timeout" end
    else
      local data = recv(s.fd)
      if data == nil or data == "" then return nil, "closed" end
      s.buf = s.buf .. data
    end
  end
end

-- attach.connect(target [, {quiet = true}]) --> a session with the job
-- whose pid or socket path target is. It waits for the job's next attach
-- point (saying so on stderr after a second, unless quiet); the greeting
-- is session.greeting.
function M.connect(target, opts)
  local path = resolve(target)
  local fd, err, why = mg._unix_connect(path)
  if not fd then
    if why == "refused" then
      err = fmt("attach: nothing listens on %s any more (the job has ended)", path)
    end
    error(err, 0)
  end
  local s = setmetatable({fd = fd, path = path, buf = "", open = true}, Session)
  local kind, text = wait_frame(s, 1000)
  if kind == nil and text == "timeout" then
    if not (opts and opts.quiet) then
      io.stderr:write("waiting for the job to reach an attach point (its next batch)...\n")
    end
    kind, text = wait_frame(s)
  end
  if kind ~= "H" then
    s:close()
    error(fmt("attach: the job at %s %s", path,
              kind == "B" and "has ended" or "closed the connection"), 0)
  end
  s.greeting = text
  return s
end

-- session:run(code) --> ok: sends code to the job and prints what comes
-- back (results and prints on stdout, errors on stderr) as it comes. ok is
-- false when the code raised; session.open turns false once the job has
-- ended or the session detached. Ctrl-C while waiting asks the job to stop
-- the command.
function Session:run(code)
  if not self.open then error("attach: the session is closed", 2) end
  if type(code) ~= "string" then error("session:run: expects code (a string)", 2) end
  send(self.fd, frame("X", code))
  local ok = true
  while true do
    local got, kind, text = pcall(wait_frame, self)
    if not got then -- Ctrl-C (the REPL's "interrupted!"): pass it on
      if not tostring(kind):find("interrupted!", 1, true) then error(kind, 0) end
      send(self.fd, frame("I"))
    elseif kind == nil or kind == "B" then
      io.stderr:write("the job has ended\n")
      self:close()
      return false
    elseif kind == "O" then
      io.stdout:write(text)
    elseif kind == "R" then
      io.stdout:write(text, "\n")
    elseif kind == "E" then
      ok = false
      io.stdout:flush()
      io.stderr:write(text, "\n")
    elseif kind == "D" then
      self.state = text
      break
    end
  end
  io.stdout:flush()
  if self.state == "detached" then
    io.stderr:write("detached; the job goes on\n")
    self:close()
  end
  return ok
end

-- session:complete(expr, sep, prefix) --> {name = kind}, as Tab lists them.
function Session:complete(expr, sep, prefix)
  if not self.open then return {} end
  send(self.fd, frame("C", (expr or "") .. "\0" .. sep .. "\0" .. prefix))
  local kind, text = wait_frame(self, 5000)
  local out = {}
  if kind == "L" then
    for name, k in text:gmatch("([^\t\n]+)\t([^\n]+)\n") do out[name] = k end
  end
  return out
end

function Session:close()
  if self.open then
    close(self.fd)
    self.open = false
  end
end
Session.__gc = Session.close
Session.__close = Session.close

-- The terminal client behind `moongrad --attach`: connects, prints the
-- greeting, and returns what the REPL loop drives (run, complete, close).
function M._terminal(target)
  local s = M.connect(target)
  io.stdout:write(s.greeting)
  io.stdout:flush()
  return {
    run = function(code)
      s:run(code)
      return s.open
    end,
    complete = function(expr, sep, prefix) return s:complete(expr, sep, prefix) end,
    close = function() s:close() end,
  }
end

return M
