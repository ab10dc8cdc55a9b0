-- What the two harnesses (bench/run.lua, bench/dist_scaling.lua) share:
-- quoting, medians and running a command. Loaded with dofile beside them.
local harness = {}

function harness.sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function harness.median(xs)
  local s = { table.unpack(xs) }
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

-- Runs a shell command (stdin from /dev/null) and returns its output, or
-- raises with it, prefixed by who ran it.
function harness.run(cmd, who)
  local p = assert(io.popen(cmd .. " 2>&1 </dev/null"))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then
    error(("%s: command failed (exit %s):\n  %s\n%s"):format(who, tostring(code), cmd, out), 0)
  end
  return out
end

return harness
