-- Attaching to a running job: a training script started with
-- `moongrad --listen` (spec/fixtures/attach_job.lua) and `moongrad --attach`
-- sessions fed from a pipe, with pauses in the input where a user would
-- stop to look. What the job did is read from the per-step lr and loss it
-- writes when it ends.
local mg = require "moongrad"
local shell = require "support.shell"
local terminal = require "support.terminal"
local BUILD = require "support.build"

local EXE = BUILD .. "/moongrad"
local JOB = "spec/fixtures/attach_job.lua"
local q = shell.quote

local function sleep(s) os.execute("sleep " .. s) end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function wait_until(what, check, seconds)
  for _ = 1, (seconds or 60) * 20 do
    if check() then return end
    sleep(0.05)
  end
  error("timed out waiting for " .. what, 2)
end

local Job = {}
Job.__index = Job

-- Starts attach_job.lua listening on dir/job.sock; args after OUT as given.
local function start_job(dir, args, listen)
  local j = setmetatable({dir = dir, sock = dir .. "/job.sock", out = dir .. "/job.out",
                          log = dir .. "/job.log", rc = dir .. "/job.rc"}, Job)
  local cmd = string.format("%s %s %s %s %s", q(EXE), listen or ("--listen=" .. q(j.sock)),
                            q(JOB), q(j.out), args or "")
  os.execute(string.format("(%s >%s 2>&1 & echo $! >%s; wait $!; echo $? >%s) &",
                           cmd, q(j.log), q(dir .. "/job.pid"), q(j.rc)))
  wait_until("the job's pid", function() return exists(dir .. "/job.pid") end)
  j.pid = tonumber(shell.read_file(dir .. "/job.pid"))
  wait_until("the job's socket", function()
    return mg._unix_is_socket(j.sock) or exists(j.rc)
  end)
  return j
end

-- Waits for the job to end; returns its exit code and its steps as
-- {lr = {...}, loss = {...}}.
function Job:wait()
  wait_until("the job to end", function() return exists(self.rc) end)
  local code = tonumber(shell.read_file(self.rc))
  local steps = {lr = {}, loss = {}}
  if exists(self.out) then
    for lr, loss in shell.read_file(self.out):gmatch("\n(%S+) (%S+)") do
      steps.lr[#steps.lr + 1], steps.loss[#steps.loss + 1] = tonumber(lr), tonumber(loss)
    end
  end
  return code, steps
end

function Job:kill()
  if exists(self.rc) then return end
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null") -- fit stops after its step
  pcall(wait_until, "the job to stop", function() return exists(self.rc) end, 10)
end

-- A session fed the given input: strings are lines, numbers are pauses
-- (seconds) before the next line. Returns stdout, stderr, exit code.
local function attach(target, input)
  local parts = {}
  for _, x in ipairs(input) do
    if type(x) == "number" then parts[#parts + 1] = "sleep " .. x
    else parts[#parts + 1] = "printf '%s\\n' " .. q(x) end
  end
  return shell.run(string.format("(%s) | %s --attach %s", table.concat(parts, "; "),
                                 q(EXE), q(target)))
end

describe("moongrad --attach", function()
  local dir, jobs

  before_each(function()
    dir, jobs = shell.tmpdir(), {}
  end)

  after_each(function()
    for _, j in ipairs(jobs) do j:kill() end
    os.execute("rm -rf " .. q(dir))
  end)

  local function job(args, listen)
    local j = start_job(dir, args, listen)
    jobs[#jobs + 1] = j
    return j
  end

  it("changes a paused job's learning rate from its next step, and the job goes on", function()
    local j = job()
    local out, err, code = attach(j.sock, {
      "pause()", "at = step", 'print("AT", at)', "lr(0.05)",
      0.5, 'print("CHECK", step == at)', -- paused: no step while the session thinks
      "error('boom')", "1 + 1",     -- an error goes to the session only
      "resume()", 0.3, 'print("CHECK", step > at)', -- resumed: the job has moved on
      "stop()"})
    assert.equal(0, code, err)
    local at = tonumber(out:match("AT\t(%d+)\n"))
    assert.truthy(at, out)
    assert.truthy(out:find("^attached to job " .. j.pid), out)
    assert.truthy(out:find("lr 0.05 from step " .. (at + 1), 1, true), out)
    local checks = {}
    for v in out:gmatch("CHECK\t(%a+)\n") do checks[#checks + 1] = v end
    assert.same({"true", "true"}, checks, out)
    assert.truthy(out:find("\n2\n", 1, true), out)
    assert.truthy(err:find("attach:1: boom", 1, true), err)

    local rc, steps = j:wait()
    assert.equal(0, rc, shell.read_file(j.log))
    assert.is_true(#steps.lr > at)
    assert.equal(0, #steps.lr % 32) -- stop() ends the run at an epoch's end
    for i, lr in ipairs(steps.lr) do
      assert.equal(i <= at and 0.1 or 0.05, lr, "the lr of step " .. i)
    end
    assert.is_false(mg._unix_is_socket(j.sock)) -- removed when the job ended
  end)

  it("saves a checkpoint that fit resumes from, bit for bit", function()
    local j = job()
    local ck = dir .. "/now.safetensors"
    local out, err, code = attach(j.sock, {
      "pause()", "save(" .. string.format("%q", ck) .. ")", 'print("AT", step, epoch)',
      "stop()"})
    assert.equal(0, code, err)
    local at, epoch = out:match("AT\t(%d+)\t(%d+)\n")
    at, epoch = tonumber(at), tonumber(epoch)
    assert.truthy(at, out)
    local rc, steps = j:wait()
    assert.equal(0, rc, shell.read_file(j.log))
    assert.equal(epoch * 32, #steps.lr)

    -- a new run of the same script, resumed from the checkpoint
    local out2 = dir .. "/resumed.out"
    local o, e, c = shell.run(string.format("%s %s %s %d %s", q(EXE), q(JOB), q(out2), epoch, q(ck)))
    assert.equal(0, c, o .. e)
    local resumed = {}
    for lr, loss in shell.read_file(out2):gmatch("\n(%S+) (%S+)") do
      resumed[#resumed + 1] = {tonumber(lr), tonumber(loss)}
    end
    assert.equal(#steps.lr, #resumed)
    for i = 1, #resumed do
      assert.same({steps.lr[i], steps.loss[i]}, resumed[i], "step " .. i)
    end
  end)

  it("serves a loop of one's own at its attach.serve calls", function()
    local j = job("loop")
    local out, err, code = attach(j.sock, {"pause()", "at = step", 'print("AT", at)',
                                           "lr(0.02)", "status()", "resume()", 0.2, "stop()"})
    assert.equal(0, code, err)
    local at = tonumber(out:match("AT\t(%d+)\n"))
    assert.truthy(at, out)
    assert.truthy(out:find("step " .. at .. ", lr 0.02, paused", 1, true), out)
    local rc, steps = j:wait()
    assert.equal(0, rc, shell.read_file(j.log))
    assert.is_true(#steps.lr > at)
    for i, lr in ipairs(steps.lr) do
      assert.equal(i <= at and 0.1 or 0.02, lr, "the lr of step " .. i)
    end
  end)

  it("lets the job go on when the last session leaves a pause, by detach() or end of input", function()
    local j = job()
    local out, err, code = attach(j.sock, {"pause()", "detach()", "'never run'"})
    assert.equal(0, code, err)
    assert.truthy(err:find("detached; the job goes on", 1, true), err)
    assert.falsy(out:find("never run", 1, true), out)
    for _ = 1, 2 do
      out, err, code = attach(j.sock, {"pause()", "at = step"}) -- then end of input
      assert.equal(0, code, err)
      out = attach(j.sock, {"at = step", 0.3, 'print("CHECK", step > at)'})
      assert.truthy(out:find("CHECK\ttrue\n", 1, true), out)
    end
    attach(j.sock, {"stop()"})
    assert.equal(0, (j:wait()))
  end)

  it("runs lines from a script or a notebook through mg.attach", function()
    local j = job()
    local s = mg.attach(j.sock, {quiet = true})
    assert.truthy(s.greeting:find("attached to job " .. j.pid, 1, true), s.greeting)
    local stdout, stderr = io.stdout, io.stderr
    local out, err = io.tmpfile(), io.tmpfile()
    io.stdout, io.stderr = out, err
    local ok1 = s:run("pause(); lr(0.2)")
    local ok2 = s:run("optimizer.param_groups[1].lr, paused_here")
    local ok3 = s:run("nil + 1")
    s:run("resume(); stop(); detach()")
    io.stdout, io.stderr = stdout, stderr
    out:seek("set")
    err:seek("set")
    local printed, errors = out:read("a"), err:read("a")
    assert.same({true, true, false}, {ok1, ok2, ok3})
    assert.truthy(("\n" .. printed):find("\n0.2\tnil\n", 1, true), printed)
    assert.truthy(errors:find("attempt to perform arithmetic on a nil value", 1, true), errors)
    assert.is_false(s.open)
    assert.equal(0, (j:wait()))
  end)

  it("lists the job's names for completion", function()
    local j = job()
    local s = mg.attach(j.sock, {quiet = true})
    local names = s:complete(nil, "", "opt")
    assert.equal("t", names.optimizer)
    local fields = s:complete("optimizer", ".", "param")
    assert.equal("t", fields.param_groups)
    local methods = s:complete("optimizer", ":", "zero")
    assert.equal("f", methods.zero_grad)
    s:close()
  end)

  it("removes the socket fit's listen option opened when fit returns", function()
    local sock = dir .. "/fit.sock"
    local code = [[
      local mg, nn, optim, train, data = require "moongrad", require "moongrad.nn",
        require "moongrad.optim", require "moongrad.train", require "moongrad.data"
      local attach = require "moongrad.attach"
      local x = mg.randn({32, 4})
      local loader = data.DataLoader(data.TensorDataset(x, x:sum(2):gt(0):long() + 1), {batch_size = 8})
      local net = nn.Linear(4, 2)
      local during
      train.fit(net, {train = loader, optimizer = optim.SGD(net:parameters(), {lr = 0.1}),
        progress = false, listen = arg[1], callbacks = {{on_epoch_end = function()
          during = mg._unix_is_socket(arg[1]) end}}})
      print(during, mg._unix_is_socket(arg[1]), attach.current())
    ]]
    shell.write_file(dir .. "/fit.lua", code)
    local out, err, rc = shell.run(string.format("%s %s %s", q(EXE), q(dir .. "/fit.lua"), q(sock)))
    assert.equal(0, rc, err)
    assert.truthy(out:find("true\tfalse\tnil", 1, true), out)
  end)

  describe("in a terminal", function()
    local it = terminal.it_or_pending(it, function(why) pending(why) end)
    teardown(terminal.kill_server)

    it("completes the job's names, stops a runaway command on Ctrl-C and detaches on Ctrl-D", function()
      local j = job()
      local t = terminal.start(string.format("env MOONGRAD_HISTORY=%s %s --attach %s",
        q(dir .. "/history"), q(terminal.repo_root() .. "/" .. EXE), q(j.sock)))
      t:wait_for("Ctrl-D detaches", true)
      t:wait_for("\n>$")
      t:line("pause()")
      t:wait_for("paused: the job waits here", true)
      t:type("optim")
      t:key("Tab")
      t:wait_for("> optimizer", true)
      t:type(".param_groups[1].lr")
      t:key("Enter")
      t:wait_for("\n0%.1\n>$")
      t:line("while true do end")
      sleep(0.3)
      t:key("C-c")
      t:wait_for("interrupted!", true)
      t:wait_for("\n>$")
      t:line("'AT=' .. step")
      local at = tonumber(t:wait_for("\nAT=%d+\n>$"):match("\nAT=(%d+)\n>$"))
      t:key("C-d")
      t:wait_exit()
      -- the session left the job paused; leaving let it go on
      local out = attach(j.sock, {'print("CHECK", step > ' .. at .. ")", "stop()"})
      assert.truthy(out:find("CHECK\ttrue\n", 1, true), out)
      assert.equal(0, (j:wait()))
    end)
  end)

  describe("refuses", function()
    it("a pid with no job listening, naming where it looked", function()
      local out, err, code = shell.run(q(EXE) .. " --attach 999999999")
      assert.equal(1, code)
      assert.truthy(err:find("no job 999999999 is listening (no socket at ", 1, true), err)
      assert.truthy(err:find("moongrad --listen", 1, true), err)
      assert.falsy(err:find("stack traceback", 1, true), err)
      assert.equal("", out)
    end)

    it("to listen on a path that is not a socket, and leaves it alone", function()
      local path = dir .. "/notes.txt"
      shell.write_file(path, "keep me")
      local _, err, code = shell.run(string.format("%s --listen=%s -e 'print(1)'", q(EXE), q(path)))
      assert.equal(1, code)
      assert.truthy(err:find(path .. " exists and is not a socket", 1, true), err)
      assert.equal("keep me", shell.read_file(path))
      local _, err2, code2 = shell.run(q(EXE) .. " --attach " .. q(path))
      assert.equal(1, code2)
      assert.truthy(err2:find(path .. " is not a socket", 1, true), err2)
      assert.equal("keep me", shell.read_file(path))
    end)

    it("a second job on a socket in use", function()
      local j = job()
      local _, err, code = shell.run(string.format("%s --listen=%s -e 'print(1)'", q(EXE), q(j.sock)))
      assert.equal(1, code)
      assert.truthy(err:find("another job is listening on " .. j.sock, 1, true), err)
      attach(j.sock, {"stop()"})
      assert.equal(0, (j:wait()))
    end)

    it("a default directory others can enter", function()
      local run = dir .. "/run"
      os.execute("mkdir -p " .. q(run .. "/moongrad") .. " && chmod 755 " .. q(run .. "/moongrad"))
      local _, err, code = shell.run(string.format("XDG_RUNTIME_DIR=%s %s --listen -e 'print(1)'",
                                                   q(run), q(EXE)))
      assert.equal(1, code)
      assert.truthy(err:find(run .. "/moongrad is not private %(owner uid %d+, mode 755%)"), err)
    end)

    it("other users: the socket is its owner's alone", function()
      local j = job()
      local mode = shell.run("stat -c %a " .. q(j.sock))
      assert.equal("600\n", mode)
      local _, _, found = shell.run("command -v setpriv")
      if found == 0 then
        os.execute("chmod 755 " .. q(dir))
        local out, err = shell.run("setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c " ..
          q("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1]); print('connected')\n" ..
            "except OSError as e: print(type(e).__name__)") .. " " .. q(j.sock))
        assert.equal("PermissionError\n", out, err)
      end
      attach(j.sock, {"stop()"})
      assert.equal(0, (j:wait()))
    end)

    it("garbage on the socket, and the job goes on serving", function()
      local j = job()
      local fd = assert(mg._unix_connect(j.sock))
      mg._proc_send(fd, "not a frame at all, just bytes \0\1\2")
      mg._proc_close(fd)
      fd = assert(mg._unix_connect(j.sock))
      mg._proc_send(fd, "X" .. string.pack(">I4", 0x7fffffff) .. "print(1)") -- 2 GiB, never sent
      mg._proc_close(fd)
      fd = assert(mg._unix_connect(j.sock)) -- connects and goes
      mg._proc_close(fd)
      local out, err, code = attach(j.sock, {"1 + 2", "stop()"})
      assert.equal(0, code, err)
      assert.truthy(out:find("\n3\n", 1, true), out)
      assert.equal(0, (j:wait()))
    end)
  end)
end)
