-- Embedding moongrad in C (runtime/moongrad.h): the example host program,
-- four states trained on four threads at once, SIGINT and SIGTERM with
-- several states listening, the memory budget, borrowed buffers and errors
-- through the C API. The C programs are built by `make` (the Makefile's
-- embedding section); specs run from the repository root. `make test-tsan`
-- runs the specs tagged #tsan against programs built with ThreadSanitizer.

local BUILD = require "support.build"

-- Runs a command line with no LUA_PATH (a host finds the library itself);
-- returns stdout (stderr appended) and the exit code.
local function run(cmdline)
  local p = io.popen("env -u LUA_PATH -u LUA_CPATH timeout 300 " .. cmdline .. " 2>&1")
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

-- Asserts that out has the line "ok <name>".
local function assert_ok(out, name)
  assert(out:find("\nok " .. name .. "\n", 1, true) or out:find("^ok " .. name .. "\n"),
         "no 'ok " .. name .. "' in:\n" .. out)
end

describe("the example host program", function()
  local out, code
  -- run from a folder outside the checkout: the model script is found from
  -- the executable, and the checkpoint goes into the working directory
  local cwd = os.tmpname()
  setup(function()
    os.remove(cwd)
    assert(os.execute("mkdir -p '" .. cwd .. "'"))
    local exe = BUILD:sub(1, 1) == "/" and BUILD or (os.getenv("PWD") .. "/" .. BUILD)
    out, code = run(("sh -c \"cd '%s' && exec '%s/examples/host'\""):format(cwd, exe))
  end)
  teardown(function() os.execute("rm -rf '" .. cwd .. "'") end)

  it("trains the Lua model in slices and the loss falls", function()
    assert.equal(0, code, out)
    local losses = {}
    for loss in out:gmatch("slice %d+: mean loss (%S+)") do losses[#losses + 1] = tonumber(loss) end
    assert.equal(5, #losses, out)
    assert.is_true(losses[5] < losses[1] / 10, out)
    assert.is_true(losses[5] < 1e-3, out)
  end)

  it("predicts sin(x) on a borrowed host buffer", function()
    local n = 0
    for p, s in out:gmatch("predict%(%s*%S+%) =%s*(%S+)%s+sin =%s*(%S+)") do
      n = n + 1
      assert.is_true(math.abs(tonumber(p) - tonumber(s)) < 0.05, out)
    end
    assert.equal(5, n, out)
    assert.matches("test buffer released 1 time%(s%)", out)
  end)

  it("reloads the checkpoint into a fresh state with matching predictions", function()
    assert.truthy(out:find("saved host_model.safetensors\n", 1, true), out)
    assert.truthy(io.open(cwd .. "/host_model.safetensors"), "no checkpoint in the working directory")
    assert.matches("reloaded: predictions match", out)
  end)

  it("fails with a message and a non-zero status when the script fails", function()
    local bad = os.tmpname()
    local f = assert(io.open(bad, "w"))
    f:write("function train_slice() error('no data') end\nfunction set_data() end\n")
    f:close()
    local o, c = run(BUILD .. "/examples/host " .. bad .. " " .. cwd .. "/unused.safetensors")
    os.remove(bad)
    assert.are_not.equal(0, c)
    assert.matches("host: .*no data", o)
  end)
end)

describe("several states on several host threads #tsan", function()
  it("train at once with the results of one after another", function()
    local out, code = run(BUILD .. "/tests/embed_threads")
    assert.equal(0, code, out)
    local n = 0
    for seed, loss, sum in out:gmatch("threads seed (%d+): loss (%S+) checksum (%S+)") do
      n = n + 1
      assert.matches("sequential seed " .. seed .. ": loss " .. loss:gsub("%p", "%%%0")
                     .. " checksum " .. sum:gsub("%p", "%%%0"), out)
    end
    assert.equal(4, n, out)
    assert.matches("\nsame\n", out)
  end)
end)

describe("SIGINT and SIGTERM in a host running several states on several threads #tsan", function()
  local out, code
  setup(function() out, code = run(BUILD .. "/tests/embed_signals") end)

  it("passes every check", function()
    assert.equal(0, code, out)
    assert.matches("all passed", out)
  end)

  it("stop every fit that listens, each after its step and with its checkpoint", function()
    assert_ok(out, "two fits: one SIGTERM stops fit 1 after its step")
    assert_ok(out, "two fits: one SIGTERM stops fit 2 after its step")
    assert_ok(out, "two fits: the host's handler does not see the SIGTERM they took")
  end)

  it("still stop a fit when a fit in another state has returned", function()
    assert_ok(out, "a fit that returns first: it finishes")
    assert_ok(out, "a fit that returns first: the other fit still stops on SIGTERM")
    assert_ok(out, "a fit that returns first: the host does not see the SIGTERM")
  end)

  it("reach the host's own handlers again once the last state stops listening", function()
    assert_ok(out, "two fits: the host's handlers are back afterwards")
    assert_ok(out, "two fits: a later SIGTERM reaches the host")
    assert_ok(out, "a fit that returns first: the host's handlers are back")
    assert_ok(out, "four states catching and restoring at once: each catches its own")
    assert_ok(out, "four states catching and restoring at once: the host's handlers are back after the last")
    assert_ok(out, "four states catching and restoring at once: a later SIGTERM reaches the host")
  end)

  it("are given back to the host by a state closed while it listens", function()
    assert_ok(out, "a state closed while listening: the host's handlers are back")
    assert_ok(out, "a state closed while listening: a later SIGTERM reaches the host")
  end)

  it("reach the host when no state takes them, as with a single fit", function()
    assert_ok(out, "one state: a signal while nobody listens reaches the host")
    assert_ok(out, "one state: a signal while it listens is noted, not the host's")
    assert_ok(out, "one state: a second signal before it acts reaches the host")
    assert_ok(out, "one state: a signal after it acted reaches the host")
    assert_ok(out, "one state: a signal acted on is not raised again")
    assert_ok(out, "one state: a signal noted but not acted on is raised again for the host")
    assert_ok(out, "one state: the host's handlers are back")
  end)
end)

describe("the C API", function()
  local out, code
  setup(function() out, code = run(BUILD .. "/tests/embed_api") end)

  it("passes every check", function()
    assert.equal(0, code, out)
    assert.matches("all passed", out)
  end)

  describe("memory budget", function()
    it("makes a too-big tensor a catchable error naming the budget", function()
      assert_ok(out, "budget: a too-big tensor is a catchable error")
      assert.matches("tensor: zeros: not enough memory for a tensor of 400000000 bytes: "
                     .. "it would pass the state's budget of 67108864 bytes", out)
    end)
    it("makes a Lua table that grows past it a catchable error", function()
      assert_ok(out, "budget: a table past the budget is a catchable error")
      assert.matches("table: not enough memory: Lua's heap would pass the state's "
                     .. "budget of 67108864 bytes", out)
      assert_ok(out, "budget: a string past the budget too")
    end)
    it("leaves the state usable: a small computation afterwards is right", function()
      assert_ok(out, "budget: the state is usable afterwards")
      assert_ok(out, "budget: uncaught, the host gets ENOMEM and the budget")
      assert_ok(out, "budget: still usable after the uncaught error")
      assert_ok(out, "budget: lifted, a bigger tensor fits")
    end)
    it("limits tensors in a state the host made itself", function()
      assert_ok(out, "host state: a tensor budget")
    end)
    it("passed by garbage tensors, is recovered by the state itself, with no help from the host", function()
      assert_ok(out, "budget: lowered by the host below garbage, the state goes on")
      assert_ok(out, "budget: lowered from Lua below garbage, the next call works")
      assert_ok(out, "budget: lowered from Lua below garbage, the script goes on after a pcall")
      assert_ok(out, "budget: the collection that recovers runs finalizers that allocate")
      assert_ok(out, "budget: a collection inside a tensor allocation runs finalizers that allocate")
    end)
  end)

  it("passes the storage dtypes (float16, int32, bool) in and out as their bytes", function()
    assert_ok(out, "storage dtypes: a float16 tensor goes in as its bits")
    assert_ok(out, "storage dtypes: an int32 view comes out as int32_t")
    assert_ok(out, "storage dtypes: a bool tensor is one byte an element")
  end)

  describe("borrowed buffers", function()
    it("are read and written in place by ops and views", function()
      assert_ok(out, "borrowed: ops and views read the buffer")
      assert_ok(out, "borrowed: in-place ops write into it")
    end)
    it("are released exactly once: when collected, at close, or on a failed push", function()
      assert_ok(out, "borrowed: released once when collected")
      assert_ok(out, "borrowed: released once by moongrad_close")
      assert_ok(out, "borrowed: a failed push releases once")
      assert_ok(out, "borrowed: never released twice")
    end)
    it("refuse a NULL data pointer for a shape with elements, and allow it for an empty one", function()
      assert_ok(out, "borrowed: NULL data for elements is refused")
      assert_ok(out, "borrowed: NULL data for no elements is an empty tensor")
    end)
  end)

  describe("errors", function()
    it("come back from moongrad_pcall as a status and a message", function()
      assert_ok(out, "errors: a Lua error is a status and a message")
      assert_ok(out, "errors: an op's error names the op")
      assert_ok(out, "errors: a non-string error object")
      assert_ok(out, "errors: the stack is balanced")
    end)
    it("of loading are told apart from errors of running", function()
      assert_ok(out, "errors: a syntax error")
      assert_ok(out, "errors: a missing script")
    end)
    it("leave the state usable, and tensors read back row-major", function()
      assert_ok(out, "errors: the state is usable afterwards")
      assert_ok(out, "errors: tensor_copy checks the size")
      assert_ok(out, "errors: tensor_info of a number")
    end)
    it("refuse a NULL destination rather than write through it", function()
      assert_ok(out, "errors: tensor_copy into NULL is refused")
      assert_ok(out, "errors: tensor_info into NULL is refused")
    end)
  end)

  it("opens moongrad in a state the host made, from a directory it names", function()
    assert_ok(out, "host state: luaopen_moongrad opens the library")
    assert_ok(out, "host state: moongrad_set_lua_dir is used")
  end)
end)
