-- Small helpers the specs share.
local check = {}

-- A required module sees the global assert, not busted's.
local assert = require "luassert"

-- err_of(fn, ...) --> the message of the error fn(...) raises, as a
-- string; fails the spec when fn(...) returns normally.
function check.err_of(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

-- sorted_keys(t) --> t's keys, sorted.
function check.sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

return check
