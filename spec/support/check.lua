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

return check
