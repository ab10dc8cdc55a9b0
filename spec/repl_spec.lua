-- The REPL, driven as a user would through a pseudo-terminal: each spec
-- starts `build/moongrad` in its own detached tmux session (on a private
-- tmux server, with a temporary history file), types into it with
-- send-keys and reads the screen with capture-pane until the expected text
-- shows or a few seconds pass.

local BUILD = require "support.build"
local terminal = require "support.terminal"

local EXE = BUILD .. "/moongrad"
local quote = terminal.quote

local function sleep(seconds)
  os.execute("sleep " .. seconds)
end

-- Starts the REPL in a new 100x40 session.
local function start(history)
  local s = terminal.start("env MOONGRAD_HISTORY=" .. quote(history) .. " " ..
                           quote(terminal.repo_root() .. "/" .. EXE))
  s:wait_for("`mg` is loaded", true)
  s:wait_for("\n>$")
  return s
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local it = terminal.it_or_pending(it, function(why) pending(why) end)

describe("the REPL", function()
  local repl, history

  before_each(function()
    repl = nil
    if terminal.problem() then return end
    history = os.tmpname()
    os.remove(history) -- the REPL creates it
    repl = start(history)
  end)

  after_each(function()
    if repl then repl:close() end
    if history then os.remove(history) end
  end)

  teardown(function()
    terminal.kill_server()
  end)

  it("greets with a banner naming the version and the mg global", function()
    local screen = repl:screen()
    assert.truthy(screen:find("^moongrad 0%.1%.0 "))
    assert.truthy(screen:find("Lua 5.4", 1, true))
    assert.truthy(screen:find("Ctrl-D to quit", 1, true))
  end)

  it("prints the value of an expression", function()
    repl:line("1+1")
    repl:wait_for("> 1%+1\n2\n>$")
  end)

  it("prints every value an expression list returns", function()
    repl:line("'a', 2, nil")
    repl:wait_for("\na%s+2%s+nil\n>$")
  end)

  it("prints nothing for a statement", function()
    repl:line("x = 5")
    repl:line("x * 2")
    local screen = repl:wait_for("> x %* 2\n10\n>$")
    assert.truthy(screen:find("> x = 5\n> x %* 2"))
  end)

  it("pretty-prints a tensor", function()
    repl:line("mg.ones(2,2)")
    local screen = repl:wait_for("float32.*\n>$")
    local shown = screen:match("> mg%.ones%(2,2%)\n(.*)\n>$")
    assert.truthy(shown and shown:find("1"), screen)
  end)

  it("prints a module as its public names grouped, and help(x) for a function", function()
    repl:line("mg")
    local screen = repl:wait_for("help%(mg%.name%) or help \"name\" for one of them\n>$")
    assert.truthy(screen:find("\n  Creation  ", 1, true), screen)
    assert.falsy(screen:find("function: 0x", 1, true), screen)
    repl:line("help(mg.zeros)")
    screen = repl:wait_for("See also: [^\n]*\n>$")
    assert.truthy(screen:find("\nmg%.zeros%(d1, d2"), screen)
    assert.truthy(screen:find("\nExample:\n", 1, true), screen)
  end)

  it("reads more lines while a chunk is incomplete", function()
    repl:line("function f()")
    repl:wait_for(">>$")
    repl:line("return 42")
    repl:line("end")
    repl:line("f()")
    repl:wait_for("> function f%(%)\n>> return 42\n>> end\n> f%(%)\n42\n>$")
  end)

  it("reports an error and goes on", function()
    repl:line("error('boom')")
    repl:wait_for("stdin:1: boom\nstack traceback:", true)
    repl:line("1+2")
    repl:wait_for("> 1%+2\n3\n>$")
  end)

  it("reports a syntax error and goes on", function()
    repl:line("x = = 1")
    repl:wait_for("stdin:1: unexpected symbol near '='", true)
    repl:line("'ok'")
    repl:wait_for("\nok\n>$")
  end)

  it("completes a unique field after a dot with Tab", function()
    repl:type("mg.randp")
    repl:key("Tab")
    repl:wait_for("> mg.randperm", true)
    repl:type("4):numel()")
    repl:key("Enter")
    repl:wait_for("> mg%.randperm%(4%):numel%(%)\n4\n>$")
  end)

  it("lists the candidates on a second Tab", function()
    repl:type("mg.ra")
    repl:key("Tab")
    repl:wait_for("> mg.rand", true)
    repl:key("Tab")
    local screen = repl:wait_for("randperm", true)
    local listing = screen:match("\n([^\n]*randperm[^\n]*)")
    for _, name in ipairs { "rand", "randn", "randint", "randperm" } do
      assert.truthy((" " .. listing .. " "):find("%s" .. name .. "%s"), name .. " missing from: " .. listing)
    end
  end)

  it("completes globals and keywords at the start of a line", function()
    repl:type("pri")
    repl:key("Tab")
    repl:wait_for("> print", true)
    repl:key("C-c")
    repl:wait_for("\n>$")
    repl:type("retu")
    repl:key("Tab")
    repl:wait_for("> return$")
  end)

  it("completes tensor methods after a colon", function()
    repl:line("x = mg.ones(3)")
    repl:type("x:shap")
    repl:key("Tab")
    repl:wait_for("> x:shape(", true)
  end)

  it("completes nothing inside a string", function()
    repl:type("s = 'mg.randp")
    repl:key("Tab")
    sleep(0.3)
    repl:type("'")
    repl:key("Enter")
    repl:line("s")
    repl:wait_for("\nmg%.randp\n>$")
  end)

  it("interrupts a running chunk on Ctrl-C and returns to the prompt", function()
    repl:line("while true do end")
    sleep(0.3)
    repl:key("C-c")
    repl:wait_for("interrupted!", true)
    repl:line("1+1")
    repl:wait_for("> 1%+1\n2\n>$")
  end)

  it("interrupts a loop of long C calls (big matmuls) on Ctrl-C", function()
    repl:line("a = mg.randn(600, 600); n = 0; while true do a = a:matmul(a):tanh(); n = n + 1 end")
    sleep(0.5)
    repl:key("C-c")
    repl:wait_for("interrupted!", true)
    repl:line("a:size(1)")
    repl:wait_for("> a:size%(1%)\n600\n>$")
  end)

  it("stops train.fit after its step on Ctrl-C, then Ctrl-C interrupts the REPL's chunks again", function()
    repl:line("nn, optim, data, train = require 'moongrad.nn', require 'moongrad.optim', " ..
              "require 'moongrad.data', require 'moongrad.train'")
    repl:line("m = nn.Linear(4, 2); ld = data.DataLoader(data.TensorDataset(mg.randn(32, 4), " ..
              "mg.randint(1, 2, {32})), {batch_size = 8})")
    repl:line("train.fit(m, {train = ld, optimizer = optim.SGD(m, {lr = 0.1}), epochs = 1e9, " ..
              "progress = 'quiet'})")
    sleep(0.5)
    repl:key("C-c")
    repl:wait_for("fit: interrupted by SIGINT at ", true)
    repl:line("while true do end")
    sleep(0.3)
    repl:key("C-c")
    repl:wait_for("interrupted!", true)
    repl:line("1+1")
    repl:wait_for("> 1%+1\n2\n>$")
  end)

  it("clears the line on Ctrl-C at the prompt", function()
    repl:type("abc")
    repl:wait_for("> abc", true)
    repl:key("C-c")
    repl:wait_for("> abc^C\n>$")
    repl:line("1+1")
    repl:wait_for("> 1%+1\n2\n>$")
  end)

  it("drops an unfinished chunk on Ctrl-C", function()
    repl:line("function g()")
    repl:wait_for(">>$")
    repl:key("C-c")
    repl:wait_for("\n>$")
    repl:line("1+1")
    repl:wait_for("> 1%+1\n2\n>$")
  end)

  it("exits on Ctrl-D", function()
    repl:key("C-d")
    repl:wait_exit()
  end)

  it("keeps history in the MOONGRAD_HISTORY file across sessions", function()
    repl:line("hist_marker = 12345")
    repl:line("for i = 1, 2 do")
    repl:line("print(i * 10)")
    repl:line("end")
    repl:wait_for("\n20\n>$")
    repl:key("C-d")
    repl:wait_exit()
    local saved = read_file(history)
    assert.truthy(saved and saved:find("hist_marker = 12345", 1, true), saved)

    -- A new session recalls the multi-line chunk as one entry, then the line.
    repl = start(history)
    repl:key("Up")
    repl:wait_for("> for i = 1, 2 do\nprint%(i %* 10%)\nend$")
    repl:key("Enter")
    repl:wait_for("\n10\n20\n>$")
    repl:key("Up")
    repl:key("Up")
    repl:wait_for("> hist_marker = 12345$")
  end)
end)
