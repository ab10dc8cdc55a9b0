-- The `moongrad` executable's command line: scripts and their arguments,
-- -e, -i, -l, -v, -h, stdin, errors and exit codes, and finding the Lua
-- library with no environment variable. Specs run from the repository root.

local BUILD = require "support.build"

local EXE = BUILD .. "/moongrad"

local shell = require "support.shell"
local quote, run = shell.quote, shell.run

local function write_temp(text)
  local path = os.tmpname()
  shell.write_file(path, text)
  return path
end

local temps = {}
local function temp_script(text)
  local path = write_temp(text)
  temps[#temps + 1] = path
  return path
end

local function repo_root()
  local p = io.popen("pwd")
  local dir = p:read("l")
  p:close()
  return dir
end

describe("the moongrad executable", function()
  after_each(function()
    for _, path in ipairs(temps) do os.remove(path) end
    temps = {}
  end)

  it("exists (run `make` first)", function()
    local f = io.open(EXE, "rb")
    assert.is_not_nil(f, EXE .. " is missing")
    f:close()
  end)

  describe("running a script", function()
    it("passes the arguments in arg and as ...", function()
      local script = temp_script([[
        print(arg[0] == (...) and "no" or arg[0])
        print(#arg, arg[1], arg[2], arg[3])
        print(select("#", ...), ...)
      ]])
      local out, err, code = run(EXE .. " " .. script .. " one 'two words' 3")
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal(script .. "\n3\tone\ttwo words\t3\n3\tone\ttwo words\t3\n", out)
    end)

    it("puts the interpreter and its options at negative indices of arg", function()
      local script = temp_script("print(arg[-3], arg[-2], arg[-1], arg[0])")
      local out, _, code = run(EXE .. " -e 'x = 1' " .. script)
      assert.are.equal(0, code)
      assert.are.equal(EXE .. "\t-e\tx = 1\t" .. script .. "\n", out)
    end)

    it("exits 0 when the script succeeds", function()
      local _, _, code = run(EXE .. " " .. temp_script("local x = 1 + 1"))
      assert.are.equal(0, code)
    end)

    it("lets os.exit set the exit status", function()
      local _, _, code = run(EXE .. " " .. temp_script("os.exit(3)"))
      assert.are.equal(3, code)
      _, _, code = run(EXE .. " " .. temp_script("os.exit(false)"))
      assert.are.equal(1, code)
    end)

    it("reports a runtime error with a traceback on stderr and exits 1", function()
      local script = temp_script("local function f() error('boom') end\nf()\n")
      local out, err, code = run(EXE .. " " .. script)
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.are.equal("moongrad: " .. script .. ":1: boom\n", err:match("^[^\n]*\n"))
      assert.truthy(err:find("stack traceback:", 1, true))
      assert.truthy(err:find("in local 'f'", 1, true) or err:find("in function 'f'", 1, true))
    end)

    it("reports a syntax error with file and line and exits 1", function()
      local script = temp_script("local x = 1\nlocal = 2\n")
      local _, err, code = run(EXE .. " " .. script)
      assert.are.equal(1, code)
      assert.truthy(err:find("^moongrad: " .. script:gsub("%p", "%%%0") .. ":2: .*near"))
    end)

    it("describes an error value that is not a string", function()
      local _, err, code = run(EXE .. " -e 'error({})'")
      assert.are.equal(1, code)
      assert.truthy(err:find("(error object is a table value)", 1, true))
    end)

    it("reports a missing script file and exits 1", function()
      local _, err, code = run(EXE .. " /nonexistent/script.lua")
      assert.are.equal(1, code)
      assert.truthy(err:find("^moongrad: cannot open /nonexistent/script.lua"))
    end)

    it("takes everything after -- as the script and its arguments", function()
      local script = temp_script("print(...)")
      local out, _, code = run(EXE .. " -- " .. script .. " -e -v")
      assert.are.equal(0, code)
      assert.are.equal("-e\t-v\n", out)
    end)
  end)

  describe("-e", function()
    it("runs the code", function()
      local out, _, code = run(EXE .. " -e 'print(6 * 7)'")
      assert.are.equal(0, code)
      assert.are.equal("42\n", out)
    end)

    it("runs several in command-line order, sharing globals", function()
      local out, _, code = run(EXE .. " -e 'x = 1' -e 'io.write(x, \"a\")' '-eio.write(x + 1)' -e 'print()'")
      assert.are.equal(0, code)
      assert.are.equal("1a2\n", out)
    end)

    it("runs before the script", function()
      local script = temp_script("print(greeting)")
      local out = run(EXE .. " -e 'greeting = \"hi\"' " .. script)
      assert.are.equal("hi\n", out)
    end)

    it("stops at the first failing chunk and exits 1", function()
      local out, err, code = run(EXE .. " -e 'error(\"first\")' -e 'print(\"second\")'")
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(err:find("^moongrad: %(command line%):1: first\nstack traceback:"))
    end)

    it("reports a syntax error", function()
      local _, err, code = run(EXE .. " -e 'x ='")
      assert.are.equal(1, code)
      assert.truthy(err:find("^moongrad: %(command line%):1: .*near <eof>"))
    end)

    it("needs an argument", function()
      local out, err, code = run(EXE .. " -e")
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(err:find("'-e' needs an argument", 1, true))
    end)
  end)

  describe("-l", function()
    it("requires a module into a global named after it", function()
      local out, _, code = run(EXE .. " -l moongrad -e 'print(moongrad.ones ~= nil)'")
      assert.are.equal(0, code)
      assert.are.equal("true\n", out)
    end)

    it("accepts a global name with g=mod", function()
      local out, _, code = run(EXE .. " -l m=moongrad -e 'print(m.ones ~= nil)'")
      assert.are.equal(0, code)
      assert.are.equal("true\n", out)
    end)
  end)

  describe("-v and -h", function()
    it("prints the version with -v and --version", function()
      for _, opt in ipairs { "-v", "--version" } do
        local out, err, code = run(EXE .. " " .. opt)
        assert.are.equal(0, code)
        assert.are.equal("", err)
        assert.truthy(out:find("^moongrad 0%.1%.0 %(Lua 5%.4[%.%d]*%)\n$"), out)
      end
    end)

    it("prints the usage on stdout with -h and --help", function()
      for _, opt in ipairs { "-h", "--help" } do
        local out, _, code = run(EXE .. " " .. opt)
        assert.are.equal(0, code)
        assert.truthy(out:find("^usage: moongrad %[options%] %[script %[args%]%]"))
        assert.truthy(out:find("-e code", 1, true))
      end
    end)

    it("rejects an unknown option with the usage on stderr and exit 1", function()
      local out, err, code = run(EXE .. " --frobnicate")
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.truthy(err:find("unrecognized option '--frobnicate'", 1, true))
      assert.truthy(err:find("usage: moongrad", 1, true))
      _, _, code = run(EXE .. " -x")
      assert.are.equal(1, code)
    end)
  end)

  describe("stdin", function()
    it("is run as a script when it is not a terminal and no script is given", function()
      local out, _, code = run(EXE, "print('from stdin', select('#', ...))")
      assert.are.equal(0, code)
      assert.are.equal("from stdin\t0\n", out)
    end)

    it("is the script when it is named -, with arguments", function()
      local out, _, code = run(EXE .. " - a b", "print(arg[0], ...)")
      assert.are.equal(0, code)
      assert.are.equal("-\ta\tb\n", out)
    end)

    it("reports an error in it as from stdin and exits 1", function()
      local _, err, code = run(EXE, "error('oops')")
      assert.are.equal(1, code)
      assert.truthy(err:find("^moongrad: stdin:1: oops"))
    end)
  end)

  describe("-i", function()
    it("runs the script, then reads chunks from stdin and prints their values", function()
      local script = temp_script("x = 20")
      local input = "x + 1\nfunction f()\n  return x * 2\nend\nf()\nerror('no')\n'still here'\n"
      local out, err, code = run(EXE .. " -i " .. script, input)
      assert.are.equal(0, code)
      assert.are.equal("21\n40\nstill here\n", out)
      assert.truthy(err:find("^stdin:1: no\nstack traceback:"))
    end)

    it("has the global mg loaded", function()
      local out = run(EXE .. " -i", "mg.ones(2, 3):numel()\n")
      assert.are.equal("6\n", out)
    end)

    it("shows plain tables as Lua literals rather than addresses", function()
      local out = run(EXE .. " -i", "mg.ones(2, 3):shape()\n{b = 'x', 1, {2, 3}}\n")
      assert.are.equal('{2, 3}\n{1, {2, 3}, b = "x"}\n', out)
    end)
  end)

  describe("finding the Lua library", function()
    it("needs no LUA_PATH or LUA_CPATH", function()
      local out, err, code = run("env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
        .. EXE .. " -e 'local mg = require \"moongrad\"; print(mg.ones(2, 2):numel())'")
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal("4\n", out)
    end)

    it("works from another working directory", function()
      local exe = repo_root() .. "/" .. EXE
      local out, err, code = run("cd /tmp && env -u LUA_PATH -u LUA_CPATH "
        .. quote(exe) .. " -e 'print(require(\"moongrad\").zeros(3):numel())'")
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal("3\n", out)
    end)

    it("prefers its own library to one on LUA_PATH", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. dir .. "/moongrad"))
      local f = assert(io.open(dir .. "/moongrad/init.lua", "w"))
      f:write("return { impostor = true }\n")
      f:close()
      local out, _, code = run("LUA_PATH=" .. quote(dir .. "/?.lua;" .. dir .. "/?/init.lua") .. " "
        .. EXE .. " -e 'print(require(\"moongrad\").impostor)'")
      os.execute("rm -rf " .. quote(dir))
      assert.are.equal(0, code)
      assert.are.equal("nil\n", out)
    end)

    it("ignores LUA_PATH with -E", function()
      local out, _, code = run("LUA_PATH='/mg_cli_nowhere/?.lua' " .. EXE
        .. " -E -e 'print(package.path:find(\"mg_cli_nowhere\", 1, true), require(\"moongrad\").ones ~= nil)'")
      assert.are.equal(0, code)
      assert.are.equal("nil\ttrue\n", out)
    end)

    it("keeps LUA_PATH's directories for other modules", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. dir))
      local f = assert(io.open(dir .. "/mg_cli_probe.lua", "w"))
      f:write("return 'found'\n")
      f:close()
      local out = run("LUA_PATH=" .. quote(dir .. "/?.lua;;") .. " "
        .. EXE .. " -e 'print((require(\"mg_cli_probe\")))'")
      os.execute("rm -rf " .. quote(dir))
      assert.are.equal("found\n", out)
    end)
  end)

  describe("OpenBLAS's kernels", function()
    -- mg.blas_core() returns OpenBLAS's kernel set and, when OpenBLAS fell
    -- back to generic kernels on a CPU it does not know, the set to ask for.
    local probe = " -e 'print(require(\"moongrad\").blas_core())'"

    it("are the CPU's own: nothing better is left to ask for", function()
      local out, _, code = run("env -u OPENBLAS_CORETYPE " .. EXE .. probe)
      assert.are.equal(0, code)
      assert.matches("^%S+\tnil\n$", out)
    end)

    it("are the ones OPENBLAS_CORETYPE names when the user sets it", function()
      local out = run("OPENBLAS_CORETYPE=Prescott " .. EXE .. probe)
      assert.matches("^Prescott\t", out)
    end)

    it("are chosen without losing the script's arguments or stdin", function()
      local script = temp_script("print(select('#', ...), table.concat({...}, '|'), io.read('a'))")
      local out = run("env -u OPENBLAS_CORETYPE " .. EXE .. " " .. script .. " a 'b c' ''", "in")
      assert.are.equal("3\ta|b c|\tin\n", out)
    end)
  end)
end)
