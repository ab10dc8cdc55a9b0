-- Running commands and handling files from specs: the executable, make,
-- compilers and tools are driven through the shell.
local shell = {}

-- s as one single-quoted shell word.
function shell.quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function shell.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

function shell.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Runs a command line with stdin from /dev/null; returns its output with
-- stderr mixed in, as a terminal would show it, and the exit code.
function shell.run_merged(cmdline)
  local p = io.popen("(" .. cmdline .. ") 2>&1 </dev/null")
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

-- A new empty directory under /tmp; returns its path.
function shell.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shell.quote(dir)))
  return dir
end

-- Runs a shell command line; stdin comes from the given text (or
-- /dev/null). Returns stdout, stderr and the exit code.
function shell.run(cmdline, stdin)
  local err = os.tmpname()
  local input
  if stdin then
    input = os.tmpname()
    shell.write_file(input, stdin)
  end
  local p = io.popen("(" .. cmdline .. ") 2>" .. err .. " <" .. (input or "/dev/null"))
  local out = p:read("a")
  local _, _, code = p:close()
  local errtext = shell.read_file(err)
  os.remove(err)
  if input then os.remove(input) end
  return out, errtext, code
end

-- Runs `lua5.4 -e code` as the user nobody, for checks that root's
-- permissions would hide (chmod 000 does not stop root). Returns its
-- stdout and stderr, or nil and why it cannot run (no setpriv).
function shell.run_lua_as_nobody(code)
  local _, _, found = shell.run("command -v setpriv")
  if found ~= 0 then return nil, "setpriv is not installed" end
  return shell.run("setpriv --reuid=65534 --regid=65534 --clear-groups lua5.4 -e " .. shell.quote(code))
end

return shell
