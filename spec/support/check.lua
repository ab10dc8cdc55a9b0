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

-- on_threads(n, fn) --> fn()'s results, run with n threads; the count
-- before is restored, also when fn raises.
function check.on_threads(n, fn)
  local mg = require "moongrad"
  local before = mg.get_num_threads()
  mg.set_num_threads(n)
  local r = table.pack(pcall(fn))
  mg.set_num_threads(before)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

-- conv_runs_during(fn) --> oneDNN's convolution runs during fn() (forward,
-- backward data, backward weights), then fn()'s results.
function check.conv_runs_during(fn)
  local mg = require "moongrad"
  local a = {mg._conv_dnnl_runs()}
  local r = table.pack(fn())
  local b = {mg._conv_dnnl_runs()}
  return {b[1] - a[1], b[2] - a[2], b[3] - a[3]}, table.unpack(r, 1, r.n)
end

return check
