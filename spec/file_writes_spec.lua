-- The files moongrad writes and reads (runtime/io_file.c): mg.save, and the
-- Lua writers (HistoryLogger, plot, the tune study file and its CSV) through
-- mg._write_file / _append_file / _read_file. A symlinked target keeps its
-- link, a directory, FIFO, device or dangling link is refused with nothing
-- written, the temporary is unique per call and cannot be redirected, a
-- save killed mid-write leaves nothing behind, concurrent savers and
-- loaders in one process always see whole files, a FIFO never blocks a
-- reader, and a path with a NUL byte is an error instead of a shorter path.
local mg = require "moongrad"
local train = require "moongrad.train"
local plot = require "moongrad.plot"
local tune = require "moongrad.tune"
local checkpoint = require "moongrad.checkpoint"
local shell = require "support.shell"
local BUILD = require "support.build"

local q = shell.quote
local is_root = shell.run("id -u") == "0\n"

local function sh(cmd)
  local out, err, code = shell.run(cmd)
  assert(code == 0, cmd .. ": " .. out .. err)
  return out
end

-- "file", "link", "fifo", "directory", "character", or nil when absent.
local function kind(path)
  local out = shell.run("stat -c %F " .. q(path) .. " 2>/dev/null")
  if out == "" then return nil end
  return ({["regular file"] = "file", ["regular empty file"] = "file",
           ["symbolic link"] = "link", fifo = "fifo", directory = "directory",
           ["character special file"] = "character"})[out:gsub("\n$", "")]
end

-- The names in dir, sorted, without . and ..
local function listing(dir)
  local names = {}
  for name in sh("ls -A " .. q(dir)):gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

local function history()
  return {columns = {"epoch", "loss"}, epochs = {{epoch = 1, loss = 0.5}}, lr = {}, batch_loss = {}}
end

-- Each way moongrad writes a file whole, as function(path) that raises on
-- failure, with the name its errors carry.
local writers = {
  {"mg.save", "save", function(p) mg.save(p, {w = mg.ones(3)}) end},
  {"checkpoint.save", "checkpoint.save", function(p)
    checkpoint.save(p, {model = require("moongrad.nn").Linear(2, 1)})
  end},
  {"HistoryLogger", "HistoryLogger", function(p)
    train.HistoryLogger{csv = p}.on_epoch_end({history = history()})
  end},
  {"plot.lines", "lines", function(p) plot.lines{series = {{y = {1, 2}}}, path = p} end},
  {"study:write_csv", "study:write_csv", function(p)
    tune.Study{space = {x = tune.uniform(0, 1)}}:write_csv(p)
  end},
}

describe("writing onto a symbolic link", function()
  for _, w in ipairs(writers) do
    it(w[1] .. " replaces the link's target and keeps the link", function()
      local dir = shell.tmpdir()
      sh(("mkdir %s/real && echo old > %s/real/f && ln -s real/f %s/link")
         :format(q(dir), q(dir), q(dir)))
      w[3](dir .. "/link")
      assert.are.equal("link", kind(dir .. "/link"))
      assert.are.equal("real/f\n", sh("readlink " .. q(dir .. "/link")))
      assert.are_not.equal("old\n", shell.read_file(dir .. "/real/f"))
      assert.are.same({"link", "real"}, listing(dir))
      assert.are.same({"f"}, listing(dir .. "/real"))
      sh("rm -rf " .. q(dir))
    end)
  end

  it("mg.save through a link in another directory writes beside the target", function()
    local dir = shell.tmpdir()
    sh(("mkdir %s/a %s/b && ln -s ../b/m.safetensors %s/a/m.safetensors")
       :format(q(dir), q(dir), q(dir)))
    mg.save(dir .. "/b/m.safetensors", {w = mg.zeros(2)})
    mg.save(dir .. "/a/m.safetensors", {w = mg.ones(2)})
    assert.are.same({1, 1}, mg.load(dir .. "/b/m.safetensors").w:totable())
    assert.are.equal("link", kind(dir .. "/a/m.safetensors"))
    assert.are.same({"m.safetensors"}, listing(dir .. "/a"))
    assert.are.same({"m.safetensors"}, listing(dir .. "/b"))
    sh("rm -rf " .. q(dir))
  end)

  it("refuses a dangling link, creating nothing where it points", function()
    for _, w in ipairs(writers) do
      local dir = shell.tmpdir()
      sh(("ln -s nowhere %s/link"):format(q(dir)))
      local ok, err = pcall(w[3], dir .. "/link")
      assert.is_false(ok, w[1])
      assert.is_truthy(err:find(w[2] .. ": " .. dir .. "/link: is a symbolic link to 'nowhere', "
                                .. "which does not exist; nothing was written", 1, true), err)
      assert.are.same({"link"}, listing(dir))
      sh("rm -rf " .. q(dir))
    end
  end)
end)

describe("writing onto a path that is not a regular file", function()
  local targets = {
    {"a directory", "mkdir %s", "directory"},
    {"a FIFO (named pipe)", "mkfifo %s", "fifo"},
    -- As root a rename over a device node replaces it (it did /dev/null):
    -- a node of our own, never the system's. Others cannot make one, and
    -- /dev/null's directory is not theirs to write in.
    {"a character device", is_root and "mknod %s c 1 3" or nil, "character"},
  }
  for _, t in ipairs(targets) do
    for _, w in ipairs(writers) do
      it(("%s refuses %s, naming it, and leaves it as it was"):format(w[1], t[1]), function()
        local dir = shell.tmpdir()
        local path = dir .. "/target"
        if t[2] then sh(t[2]:format(q(path))) else path = "/dev/null" end
        -- a FIFO held open at both ends: a writer that wrongly opens it
        -- does not block (it did: plot.lines hung on one)
        local hold = t[3] == "fifo" and assert(io.open(path, "r+"))
        local ok, err = pcall(w[3], path)
        if hold then hold:close() end
        assert.is_false(ok)
        assert.is_truthy(err:find(("%s: %s: is %s, not a regular file; nothing was written")
                                  :format(w[2], path, t[1]), 1, true), err)
        assert.are.equal(t[3], kind(path))
        assert.are.same(t[2] and {"target"} or {}, listing(dir))
        sh("rm -rf " .. q(dir))
      end)
    end
  end

  it("refuses a link to a directory, naming where it leads", function()
    local dir = shell.tmpdir()
    sh(("mkdir %s/d && ln -s d %s/link"):format(q(dir), q(dir)))
    local ok, err = pcall(mg.save, dir .. "/link", {w = mg.ones(1)})
    assert.is_false(ok)
    assert.is_truthy(err:find(("save: %s/link: links to %s/d, which is a directory, not a "
                               .. "regular file"):format(dir, sh("realpath " .. q(dir)):gsub("\n", "")),
                              1, true), err)
    assert.are.same({}, listing(dir .. "/d"))
    sh("rm -rf " .. q(dir))
  end)

  it("a tune study refuses a FIFO as its file at once, without blocking", function()
    local dir = shell.tmpdir()
    sh("mkfifo " .. q(dir .. "/study.jsonl"))
    -- in a child: before the fix, reading the FIFO blocked for ever
    local script = dir .. "/child.lua"
    shell.write_file(script, ([[
      local tune = require "moongrad.tune"
      local ok, err = pcall(tune.Study, {space = {x = tune.uniform(0, 1)}, path = %q})
      print(ok, err)
    ]]):format(dir .. "/study.jsonl"))
    local out, err, code = shell.run("timeout 60 lua5.4 " .. q(script))
    assert.are.equal(0, code, out .. err)
    assert.is_truthy(out:find("false\ttune: " .. dir .. "/study.jsonl: is a FIFO (named pipe), "
                              .. "not a regular file", 1, true), out .. err)
    assert.are.equal("fifo", kind(dir .. "/study.jsonl"))
    sh("rm -rf " .. q(dir))
  end)

  it("a trial whose log path is a FIFO fails with a clear error instead of blocking", function()
    local dir = shell.tmpdir()
    sh("mkdir " .. q(dir .. "/logs") .. " && mkfifo " .. q(dir .. "/logs/trial-0001.log"))
    -- in a child: before, the worker's open of its log waited for a reader
    local script = dir .. "/child.lua"
    shell.write_file(script, ([[
      local tune = require "moongrad.tune"
      local study = tune.Study{space = {x = tune.uniform(0, 1)}, seed = 1}
      study:optimize(function(c) return c.x end,
                     {trials = 2, workers = 1, logs = %q, verbose = false})
      for _, r in ipairs(study:trials()) do print(r.number, r.state, r.error) end
    ]]):format(dir .. "/logs"))
    local out, err, code = shell.run("timeout 60 lua5.4 " .. q(script))
    assert.are.equal(0, code, out .. err)
    assert.is_truthy(out:find(("1\tfailed\t[^\n]*tune: trial log: %s/logs/trial%%-0001%%.log: is a FIFO "
                               .. "%%(named pipe%%), not a regular file; nothing was written"):format(dir:gsub("%%-", "%%%%-"))),
                     out .. err)
    assert.is_truthy(out:find("2\tcomplete", 1, true), out .. err)
    assert.are.equal("fifo", kind(dir .. "/logs/trial-0001.log"))
    sh("rm -rf " .. q(dir))
  end)
end)

describe("the temporary file", function()
  it("is never the per-process name <path>.tmp-<pid>: a link planted there redirects nothing",
     function()
    local dir = shell.tmpdir()
    local path, victim = dir .. "/m.safetensors", dir .. "/victim"
    shell.write_file(victim, "precious")
    sh(("ln -s victim %s"):format(q(path .. ".tmp-" .. mg._getpid())))
    mg.save(path, {w = mg.ones(2)})
    assert.are.equal("precious", shell.read_file(victim))
    assert.are.same({1, 1}, mg.load(path).w:totable())
    assert.are.equal("link", kind(path .. ".tmp-" .. mg._getpid()))
    sh("rm -rf " .. q(dir))
  end)

  it("named (where O_TMPFILE is missing) is fresh for every save and removed on failure", function()
    local dir = shell.tmpdir()
    local path = dir .. "/m.safetensors"
    mg.save(path, {w = mg.zeros(2)})
    mg._file_hooks{named = true}
    mg.save(path, {w = mg.ones(2)})
    assert.are.same({1, 1}, mg.load(path).w:totable())
    mg._file_hooks{named = true, fail_after = 20}
    local ok, err = pcall(mg.save, path, {w = mg.full({2}, 3)})
    assert.is_false(ok)
    assert.are.equal(("save: %s: writing failed after 20 bytes: No space left on device")
                     :format(path), err)
    mg._file_hooks{named = true}
    local okw, werr = mg._write_file(dir .. "/h.csv", "a,b\n", "HistoryLogger")
    assert.is_true(okw, werr)
    assert.are.same({"h.csv", "m.safetensors"}, listing(dir))
    assert.are.same({1, 1}, mg.load(path).w:totable())
    sh("rm -rf " .. q(dir))
  end)

  it("keeps the permission bits of the file it replaces", function()
    local dir = shell.tmpdir()
    local path = dir .. "/m.safetensors"
    mg.save(path, {w = mg.zeros(2)})
    sh("chmod 600 " .. q(path))
    mg.save(path, {w = mg.ones(2)})
    assert.are.equal("600\n", sh("stat -c %a " .. q(path)))
    sh("chmod 640 " .. q(path))
    assert.is_true(mg._write_file(path, "text", "x"))
    assert.are.equal("640\n", sh("stat -c %a " .. q(path)))
    sh("rm -rf " .. q(dir))
  end)

  -- The child stops itself mid-write (the stop_after hook), is killed with
  -- SIGKILL, and the directory is then as it was before the save began.
  local function kill_mid_save(named)
    local dir = shell.tmpdir()
    local path = dir .. "/m.safetensors"
    mg.save(path, {w = mg.zeros(4)}, {version = "old"})
    local script = dir .. "/child.lua"
    shell.write_file(script, ([[
      local mg = require "moongrad"
      mg._file_hooks{stop_after = 1000000, named = %s}
      mg.save(%q, {w = mg.ones(1000000)}, {version = "new"})
    ]]):format(tostring(named), path))
    local out = sh(([[
      lua5.4 %s & pid=$!
      for i in $(seq 600); do
        state=$(awk '{print $3}' /proc/$pid/stat 2>/dev/null)
        [ "$state" = T ] && break
        sleep 0.1
      done
      echo "state $state"
      kill -9 $pid
      wait $pid
      echo "killed $?"
    ]]):format(q(script)))
    assert.is_truthy(out:find("state T\nkilled 137\n", 1, true), out)
    os.remove(script)
    local _, meta = mg.load(path, {metadata = true})
    assert.are.equal("old", meta.version)
    local left = listing(dir)
    sh("rm -rf " .. q(dir))
    return left
  end

  it("leaves nothing behind when the saving process is killed mid-write", function()
    assert.are.same({"m.safetensors"}, kill_mid_save(false))
  end)

  it("named, leaves one recognisable stale file when the process is killed mid-write", function()
    local left = kill_mid_save(true)
    assert.are.equal(2, #left, table.concat(left, " "))
    assert.are.equal("m.safetensors", left[1])
    assert.matches("^m%.safetensors%.tmp%-%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x$", left[2])
  end)

  it("lets two states on two threads save one path while two more load it: all whole #tsan", function()
    local dir = shell.tmpdir()
    local out, code = shell.run_merged("timeout 300 " .. BUILD .. "/tests/file_threads " .. q(dir))
    sh("rm -rf " .. q(dir))
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("\nwhole\n", 1, true), out)
  end)
end)

describe("reading a path that is not a regular file", function()
  it("mg.load refuses a FIFO at once instead of blocking", function()
    local dir = shell.tmpdir()
    local fifo = dir .. "/m.safetensors"
    sh("mkfifo " .. q(fifo))
    local script = dir .. "/child.lua"
    shell.write_file(script, ([[
      local mg = require "moongrad"
      print(pcall(mg.load, %q))
    ]]):format(fifo))
    local out, err, code = shell.run("timeout 60 lua5.4 " .. q(script))
    sh("rm -rf " .. q(dir))
    assert.are.equal(0, code, out .. err)
    assert.are.equal(("false\tload: %s: is a FIFO (named pipe), not a regular file\n"):format(fifo),
                     out)
  end)

  it("read_csv and read_idx refuse a FIFO at once instead of blocking", function()
    local dir = shell.tmpdir()
    local csv, idx = dir .. "/d.csv", dir .. "/l-idx1-ubyte.gz"
    sh("mkfifo " .. q(csv) .. " " .. q(idx))
    local script = dir .. "/child.lua"
    -- in a child: before, gzopen waited for a writer for ever
    shell.write_file(script, ([[
      local mg = require "moongrad"
      print(pcall(mg._read_csv, %q))
      print(pcall(mg._read_idx, %q))
    ]]):format(csv, idx))
    local out, err, code = shell.run("timeout 60 lua5.4 " .. q(script))
    sh("rm -rf " .. q(dir))
    assert.are.equal(0, code, out .. err)
    assert.are.equal(("false\tread_csv: %s: is a FIFO (named pipe), not a regular file\n" ..
                      "false\tread_idx: %s: is a FIFO (named pipe), not a regular file\n"):format(csv, idx),
                     out)
  end)

  it("mg.load refuses a device and a directory, naming what they are", function()
    local ok, err = pcall(mg.load, "/dev/zero")
    assert.is_false(ok)
    assert.are.equal("load: /dev/zero: is a character device, not a regular file", err)
    ok, err = pcall(mg.load, "/tmp")
    assert.is_false(ok)
    assert.are.equal("load: /tmp: is a directory, not a regular file", err)
  end)
end)

describe("a path with a NUL byte", function()
  local cases = {
    {"mg.save", "save", function(p) mg.save(p, {w = mg.ones(1)}) end},
    {"mg.load", "load", function(p) mg.load(p) end},
    {"checkpoint.save", "save", function(p)
      checkpoint.save(p, {model = require("moongrad.nn").Linear(2, 1)})
    end},
    {"checkpoint.load", "load", function(p)
      checkpoint.load(p, {model = require("moongrad.nn").Linear(2, 1)})
    end},
    {"HistoryLogger", "HistoryLogger", function(p) train.HistoryLogger{json = p} end},
    {"plot.lines", "lines", function(p) plot.lines{series = {{y = {1, 2}}}, path = p} end},
    {"plot.training_curves", "training_curves", function(p)
      plot.training_curves({epochs = {{epoch = 1, train_loss = 1}}}, p)
    end},
    {"study:write_csv", "study:write_csv", function(p)
      tune.Study{space = {x = tune.uniform(0, 1)}}:write_csv(p)
    end},
    {"tune.Study", "tune.Study", function(p) tune.Study{space = {x = tune.uniform(0, 1)}, path = p} end},
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " refuses it instead of using the path cut at the NUL", function()
      local dir = shell.tmpdir()
      local ok, err = pcall(c[3], dir .. "/x\0y")
      assert.is_false(ok)
      assert.is_truthy(err:find(c[2], 1, true), err)
      assert.is_truthy(err:find("NUL byte", 1, true), err)
      assert.are.same({}, listing(dir))
      sh("rm -rf " .. q(dir))
    end)
  end

  it("mg.load of such a path does not read the file the cut path names", function()
    local dir = shell.tmpdir()
    mg.save(dir .. "/x", {w = mg.ones(1)})
    local ok, err = pcall(mg.load, dir .. "/x\0y")
    assert.is_false(ok)
    assert.are.equal("load: the path contains a NUL byte (after '" .. dir .. "/x')", err)
    sh("rm -rf " .. q(dir))
  end)
end)
