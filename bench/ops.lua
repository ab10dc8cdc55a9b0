-- The per-op overhead workloads of `make bench` (peer: bench/ops.py), in µs
-- per call, float32, median of 20 timed batches:
--   add_2x2         c = a + b on 2×2 tensors
--   chain_backward  ((a*b + a):relu()):sum():backward() on 2×2 leaves
--   matmul_100      a:matmul(b) on 100×100 matrices
--
--   build/moongrad bench/ops.lua add_2x2|chain_backward|matmul_100 <threads>
local mg = require "moongrad"
local common = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local mode = common.args(arg, { add_2x2 = true, chain_backward = true, matmul_100 = true })
-- Each loop runs its op n times inline: the time is the op's, not a call's.
local loop, inner
if mode == "add_2x2" then
  local a, b = mg.randn(2, 2), mg.randn(2, 2)
  loop, inner = function(n) for _ = 1, n do local _ = a + b end end, 50000
elseif mode == "chain_backward" then
  local a, b = mg.randn(2, 2):requires_grad(), mg.randn(2, 2):requires_grad()
  loop, inner = function(n) for _ = 1, n do ((a * b + a):relu()):sum():backward() end end, 5000
else
  local a, b = mg.randn(100, 100), mg.randn(100, 100)
  loop, inner = function(n) for _ = 1, n do local _ = a:matmul(b) end end, 500
end
common.result(1e6 * common.time_loop(loop, inner, 20))
