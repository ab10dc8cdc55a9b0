-- Driving a program through a pseudo-terminal, as a user would: each
-- session runs a command in its own detached tmux session, on a private
-- tmux server (specs neither see nor disturb the user's tmux). Keys go in
-- with send-keys; the screen comes back with capture-pane, polled until
-- the expected text shows or TIMEOUT passes.
local T = {}

T.TIMEOUT = 10 -- seconds to wait for any one screen (a loaded CI machine is slow)

function T.quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
local quote = T.quote

local function shell(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

function T.repo_root()
  local out = shell("pwd")
  return (out:gsub("\n$", ""))
end

local server = "moongrad_spec_" .. tostring(os.time()) .. "_" .. tostring(math.random(1e6))
local function tmux(args)
  return shell("tmux -L " .. server .. " -f /dev/null " .. args)
end

local function sleep(seconds)
  os.execute("sleep " .. seconds)
end

local function clock()
  local out = shell("date +%s.%N")
  return tonumber(out) or os.time()
end

local Session = {}
Session.__index = Session
local count = 0

-- T.start(cmd) --> a session running the shell command cmd in a new 100x40
-- terminal.
function T.start(cmd)
  count = count + 1
  local s = setmetatable({ name = "term" .. count }, Session)
  local out, ok = tmux("new-session -d -s " .. s.name .. " -x 100 -y 40 " .. quote(cmd))
  assert(ok, "tmux new-session failed: " .. out)
  return s
end

-- The screen with its scrollback, wrapped lines joined, trailing blanks cut.
function Session:screen()
  local text = tmux("capture-pane -p -J -S -200 -t " .. self.name)
  return (text:gsub(" +\n", "\n"):gsub("\n+$", ""))
end

-- What the session's process is doing, for a timeout's message: its state,
-- where it sleeps and its signal masks, per thread.
function Session:process_state()
  local pid = tmux("display-message -p -t " .. self.name .. " '#{pane_pid}'"):match("%d+")
  if not pid then return "(no pane process)" end
  local out = shell("for t in /proc/" .. pid .. "/task/*; do echo \"$t: $(cat $t/wchan)\"; " ..
                    "grep -E '^(State|SigPnd|ShdPnd|SigBlk|SigCgt)' $t/status | tr '\\n' ' '; echo; done")
  return out
end

-- Polls the screen until pattern (a Lua pattern, or plain text) is on it.
function Session:wait_for(pattern, plain)
  local deadline = clock() + T.TIMEOUT
  local screen
  repeat
    screen = self:screen()
    if screen:find(pattern, 1, plain) then return screen end
    sleep(0.05)
  until clock() > deadline
  error(("timed out waiting for %q; the screen shows:\n%s\nthe process:\n%s"):format(
    pattern, screen, self:process_state()), 2)
end

local function send(session, args)
  local out, ok = tmux("send-keys -t " .. session.name .. " " .. args)
  assert(ok, "tmux send-keys " .. args .. " failed: " .. out)
end

function Session:type(text) -- literal text: "end" is not the End key
  send(self, "-l " .. quote(text))
end

function Session:key(name) -- Enter, Tab, C-c, C-d, Up, ...
  send(self, name)
end

function Session:line(text)
  self:type(text)
  self:key("Enter")
end

function Session:alive()
  local _, ok = tmux("has-session -t " .. self.name)
  return ok
end

function Session:wait_exit()
  local deadline = clock() + T.TIMEOUT
  while self:alive() do
    if clock() > deadline then error("the program did not exit", 2) end
    sleep(0.05)
  end
end

function Session:close()
  if self:alive() then tmux("kill-session -t " .. self.name) end
end

-- A pseudo-terminal is the one thing these specs need from the machine; a
-- chroot without /dev/pts mounted has none. There the specs are reported as
-- pending with the reason, rather than failing for the machine's sake.
--
-- The probe session then stays until kill_server: a tmux server exits with
-- its last session, and a new-session racing that exit fails with "server
-- exited unexpectedly" (seen on a loaded machine).
local probed, problem
function T.problem()
  if not probed then
    probed = true
    local out, ok = tmux("new-session -d -s probe 'sleep 100000'")
    if os.getenv("MG_SPEC_NO_PTY") then -- to exercise this path on any machine
      tmux("kill-session -t probe")
      out, ok = "MG_SPEC_NO_PTY is set", false
    end
    if not ok then problem = out:gsub("%s+$", "") end
  end
  return problem
end

-- busted's `it`, or, without a pseudo-terminal, one that reports each spec
-- as pending with the reason. Both come from the spec file, and pending as
-- a function that looks busted's up when the spec runs: inside a running
-- spec busted binds the name to another function than at load time.
function T.it_or_pending(it, pending)
  if not T.problem() then return it end
  return function(name)
    it(name, function()
      pending("no pseudo-terminal available (tmux: " .. problem .. ")")
    end)
  end
end

-- Ends the private server and every session on it (a file's teardown).
function T.kill_server()
  tmux("kill-server")
  probed, problem = false, nil
end

return T
