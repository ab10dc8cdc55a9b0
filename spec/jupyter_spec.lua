-- The Jupyter kernel (`moongrad --kernel`), driven by Jupyter's own client:
-- spec/support/jupyter_driver.py starts it through a kernelspec written by
-- `moongrad --install-kernel --prefix`, runs the steps each spec gives and
-- prints what came back (replies, iopub messages, the kernel's log).
local json = require "dkjson"
local BUILD = require "support.build"
local shell = require "support.shell"

local EXE = BUILD .. "/moongrad"

local prefix -- the kernelspec's prefix, written once for the file

local function install(args)
  return shell.run_merged(shell.quote(EXE) .. " --install-kernel " .. args)
end

-- Runs the steps against a new kernel; returns the driver's report.
local function drive(steps)
  local out, code = shell.run_merged("/usr/bin/python3 spec/support/jupyter_driver.py " ..
    shell.quote(prefix .. "/share/jupyter") .. " " .. shell.quote(json.encode(steps)))
  assert(code == 0, "the driver failed:\n" .. out)
  local report = json.decode(out:match("([^\n]+)\n*$") or "")
  assert(type(report) == "table", "the driver printed no report:\n" .. out)
  return report
end

-- The iopub messages of one result, of one type.
local function of_type(result, kind)
  local found = {}
  for _, m in ipairs(result.iopub or {}) do
    if m.type == kind then found[#found + 1] = m.content end
  end
  return found
end

describe("the Jupyter kernel", function()
  setup(function()
    prefix = shell.tmpdir()
    local out, code = install("--prefix " .. shell.quote(prefix))
    assert(code == 0, out)
  end)

  teardown(function()
    os.execute("rm -rf " .. shell.quote(prefix))
  end)

  it("writes a kernelspec that runs this executable with the connection file", function()
    local spec = json.decode(shell.read_file(prefix .. "/share/jupyter/kernels/moongrad/kernel.json"))
    assert.are.same({ "--kernel", "{connection_file}" }, { spec.argv[2], spec.argv[3] })
    assert.truthy(spec.argv[1]:match("/moongrad$"))
    assert.are.equal("lua", spec.language)
    assert.are.equal("signal", spec.interrupt_mode)
  end)

  it("refuses an unknown --install-kernel option and a missing connection file", function()
    local out, code = install("--elsewhere")
    assert.are_not.equal(0, code)
    assert.truthy(out:find("usage: moongrad --install-kernel", 1, true), out)
    out, code = shell.run_merged(shell.quote(EXE) .. " --kernel /nonexistent/conn.json")
    assert.are_not.equal(0, code)
    assert.truthy(out:find("cannot read the connection file", 1, true), out)
  end)

  it("runs cells: an expression's value is the result, prints stream as they happen", function()
    local r = drive {
      { op = "execute", code = "1 + 1" },
      { op = "execute", code = "print('hello'); io.write('x\\n'); io.stderr:write('err\\n')" },
      { op = "execute", code = "t = mg.ones(2, 2)" },
      { op = "execute", code = "t:sum()" },
    }.results
    assert.are.equal("ok", r[1].reply.status)
    assert.are.equal(1, r[1].reply.execution_count)
    assert.are.equal("2", of_type(r[1], "execute_result")[1].data["text/plain"])
    assert.are.same({ code = "1 + 1", execution_count = 1 }, of_type(r[1], "execute_input")[1])
    local streams = of_type(r[2], "stream")
    local text = { stdout = "", stderr = "" }
    for _, s in ipairs(streams) do text[s.name] = text[s.name] .. s.text end
    assert.are.same({ stdout = "hello\nx\n", stderr = "err\n" }, text)
    assert.are.same({}, of_type(r[3], "execute_result")) -- a statement shows nothing
    assert.truthy(of_type(r[4], "execute_result")[1].data["text/plain"]:find("^4"))
    assert.are.equal(4, r[4].reply.execution_count)
  end)

  it("shows a tensor as a table too, a chart as a drawing, and mg.display's images as PNG", function()
    local r = drive {
      { op = "execute", code = "mg.tensor({{1, 2}, {3, 4}}, 'int64')" },
      { op = "execute", code = "require('moongrad.plot').lines{series = {{name = 'loss', y = {3, 1}}}}" },
      { op = "execute", code = "print('before') mg.display(mg.zeros(3, 4, 4, 'uint8')) print('after')" },
    }.results
    local data = of_type(r[1], "execute_result")[1].data
    assert.truthy(data["text/html"]:find("<tr><td>1</td><td>2</td></tr>", 1, true), data["text/html"])
    data = of_type(r[2], "execute_result")[1].data
    assert.truthy(data["image/svg+xml"]:find("^<svg"), data["image/svg+xml"])
    -- in the order printed: the stream, the image, the stream
    local kinds = {}
    for _, m in ipairs(r[3].iopub) do
      if m.type ~= "execute_input" then kinds[#kinds + 1] = m.type end
    end
    assert.are.same({ "stream", "display_data", "stream" }, kinds)
    local png = of_type(r[3], "display_data")[1].data["image/png"]
    assert.truthy(png:find("^iVBORw0KGgo"), png) -- base64 of the PNG signature
  end)

  it("reports an error with its traceback and goes on serving", function()
    local r = drive {
      { op = "execute", code = "local x = 1\nerror('boom')" },
      { op = "execute", code = "x = = 1" },
      { op = "execute", code = "'still here'" },
    }.results
    assert.are.equal("error", r[1].reply.status)
    local e = of_type(r[1], "error")[1]
    assert.are.equal("[1]:2: boom", e.evalue)
    assert.are.equal("stack traceback:", e.traceback[2])
    for _, line in ipairs(e.traceback) do -- the kernel's own frames are cut
      assert.falsy(line:find("jupyter.lua", 1, true), line)
    end
    assert.are.equal("error", r[2].reply.status)
    assert.truthy(r[2].reply.evalue:find("unexpected symbol", 1, true))
    assert.are.equal("still here", of_type(r[3], "execute_result")[1].data["text/plain"])
  end)

  it("aborts the cells queued after a failing one, as Run All expects, unless told not to", function()
    local r = drive {
      { op = "execute_queued", codes = { "os.execute('sleep 0.5') error('first')", "ran2 = true", "ran3 = true" } },
      { op = "execute", code = "ran2, ran3" },
      { op = "execute_queued", stop_on_error = false,
        codes = { "os.execute('sleep 0.5') error('again')", "ran4 = true" } },
      { op = "execute", code = "ran4" },
    }.results
    local statuses = {}
    for i, reply in ipairs(r[1].replies) do statuses[i] = reply.status end
    assert.are.same({ "error", "aborted", "aborted" }, statuses)
    assert.are.equal("nil\tnil", of_type(r[2], "execute_result")[1].data["text/plain"])
    assert.are.same({ "error", "ok" }, { r[3].replies[1].status, r[3].replies[2].status })
    assert.are.equal("true", of_type(r[4], "execute_result")[1].data["text/plain"])
  end)

  it("stops a running cell on interrupt, and the kernel lives on", function()
    local report = drive {
      { op = "interrupt_idle" },
      { op = "execute_interrupted", code = "n = 0 while true do n = n + 1 end", after = 1.0 },
      { op = "execute", code = "n > 0" },
    }
    local r = report.results
    assert.are.equal("error", r[2].reply.status)
    assert.are.equal("Interrupted", r[2].reply.ename)
    assert.are.equal("true", of_type(r[3], "execute_result")[1].data["text/plain"])
    assert.is_true(report.alive)
  end)

  it("shows train.fit's progress in place, with the curves redrawn as the epochs go", function()
    local r = drive {
      { op = "execute", code = [[
local nn, optim, train, data = require "moongrad.nn", require "moongrad.optim",
  require "moongrad.train", require "moongrad.data"
mg.manual_seed(1)
local ds = data.TensorDataset(mg.randn(32, 4), mg.randint(1, 2, {32}))
local net = nn.Linear(4, 2)
history = train.fit(net, {train = data.DataLoader(ds, {batch_size = 8}),
                          optimizer = optim.SGD(net, {lr = 0.1}), epochs = 3})]] },
      { op = "execute", code = "#history.epochs" },
    }.results
    assert.are.equal("ok", r[1].reply.status, r[1].reply.evalue)
    local first, updates = {}, {}
    for _, m in ipairs(r[1].iopub) do
      if m.type == "display_data" or m.type == "update_display_data" then
        local id = m.content.transient.display_id
        assert.truthy(id, "a live output without a display_id")
        if m.type == "display_data" then first[#first + 1] = id
        else updates[id] = (updates[id] or 0) + 1 end
      end
    end
    assert.are.equal(2, #first) -- the bar, then the curves
    assert.is_true(updates[first[1]] >= 6, "bar updates: " .. tostring(updates[first[1]]))
    assert.are.equal(2, updates[first[2]]) -- curves redrawn after epochs 2 and 3
    local last_svg
    for _, m in ipairs(r[1].iopub) do
      if m.content.transient and m.content.transient.display_id == first[2] then
        last_svg = m.content.data["image/svg+xml"]
      end
    end
    assert.truthy(last_svg and last_svg:find("^<svg"), "the curves are not an SVG")
    assert.are.same({}, of_type(r[1], "stream")) -- no \r bar printed besides
    assert.are.equal("3", of_type(r[2], "execute_result")[1].data["text/plain"])
  end)

  it("answers help: Shift-Tab, ?name, name?, help(x) and a module's names", function()
    local r = drive {
      { op = "inspect", code = "y = mg.zeros(", cursor = 12 },
      { op = "execute", code = "?mg.zeros" },
      { op = "execute", code = "mg.zeros?" },
      { op = "execute", code = "help(mg.zeros)" },
      { op = "execute", code = "mg" },
      { op = "execute", code = "?no_such_name_here" },
    }.results
    assert.is_true(r[1].reply.found)
    local tip = r[1].reply.data["text/plain"]
    assert.truthy(tip:find("^mg%.zeros%("), tip)
    assert.truthy(tip:find("Example:", 1, true), tip)
    for i = 2, 3 do
      local shown = of_type(r[i], "display_data")[1]
      assert.truthy(shown and shown.data["text/plain"]:find("^mg%.zeros%("), "cell " .. i)
    end
    local printed = ""
    for _, s in ipairs(of_type(r[4], "stream")) do printed = printed .. s.text end
    assert.truthy(printed:find("^mg%.zeros%("), printed)
    local listing = of_type(r[5], "execute_result")[1].data["text/plain"]
    assert.truthy(listing:find("^mg: "), listing)
    assert.truthy(listing:find("\n  Creation  ", 1, true), listing)
    assert.truthy(listing:find(" zeros_like", 1, true), listing)
    assert.falsy(listing:find("function: 0x", 1, true), listing)
    local none = of_type(r[6], "display_data")[1].data["text/plain"]
    assert.truthy(none:find('nothing is called "no_such_name_here"', 1, true), none)
  end)

  it("stops a training loop on interrupt after its step, and the next cell works", function()
    local r = drive {
      { op = "execute_interrupted", after = 2.0, code = [[
local nn, optim, train, data = require "moongrad.nn", require "moongrad.optim",
  require "moongrad.train", require "moongrad.data"
local ds = data.TensorDataset(mg.randn(256, 64), mg.randint(1, 2, {256}))
net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 2))
train.fit(net, {train = data.DataLoader(ds, {batch_size = 8}),
                optimizer = optim.SGD(net, {lr = 0.01}), epochs = 100000})]] },
      { op = "execute", code = "net(mg.randn(1, 64)):shape()[2]" },
    }.results
    assert.are.equal("error", r[1].reply.status)
    assert.truthy(r[1].reply.evalue:find("fit: interrupted by SIGINT at", 1, true), r[1].reply.evalue)
    assert.are.equal("2", of_type(r[2], "execute_result")[1].data["text/plain"])
  end)

  it("completes globals, fields and tensor methods", function()
    local r = drive {
      { op = "complete", code = "x = mg.randp", cursor = 12 },
      { op = "execute", code = "t = mg.zeros(3)" },
      { op = "complete", code = "t:resh", cursor = 6 },
      { op = "complete", code = "pri", cursor = 3 },
    }.results
    assert.are.same({ "randperm" }, r[1].reply.matches)
    assert.are.same({ 7, 12 }, { r[1].reply.cursor_start, r[1].reply.cursor_end })
    assert.are.same({ "reshape" }, r[3].reply.matches)
    assert.are.same({ "print" }, r[4].reply.matches)
  end)

  it("tells complete, incomplete and invalid code apart", function()
    local r = drive {
      { op = "is_complete", code = "for i = 1, 3 do" },
      { op = "is_complete", code = "for i = 1, 3 do print(i) end" },
      { op = "is_complete", code = "x = = 1" },
    }.results
    assert.are.equal("incomplete", r[1].reply.status)
    assert.are.equal("complete", r[2].reply.status)
    assert.are.equal("invalid", r[3].reply.status)
  end)

  it("refuses unsigned and malformed messages, logs them and keeps serving", function()
    local report = drive {
      { op = "unsigned" },
      { op = "garbage" },
      { op = "execute", code = "unsigned_ran == nil" },
    }
    assert.are.equal("true", of_type(report.results[3], "execute_result")[1].data["text/plain"])
    assert.truthy(report.log:find("refused a message on shell: bad signature", 1, true), report.log)
    assert.truthy(report.log:find("no <IDS|MSG> delimiter", 1, true), report.log)
  end)

  it("exits on a shutdown request", function()
    local report = drive { { op = "execute", code = "1" }, { op = "shutdown" } }
    assert.is_true(report.results[2].exited)
    assert.is_false(report.alive)
    -- in the sanitized tree, a leak or an error at exit shows in the log
    assert.falsy(report.log:find("Sanitizer", 1, true), report.log)
  end)
end)
