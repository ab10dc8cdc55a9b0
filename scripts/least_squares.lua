-- Least squares by gradient descent, with nothing but tensor ops.
--
-- Draws X (n x d) and a hidden weight vector, makes noisy targets
-- y = X w* + noise, then fits w by full-batch gradient descent on
-- 1/2n |X w - y|^2, whose gradient is X^T (X w - y) / n.
--
--   build/moongrad scripts/least_squares.lua [--samples 4096] [--features 64] [--steps 300]
local cli = require "moongrad.cli"
local mg = require "moongrad"

local parser = cli.parser("least_squares.lua",
  "Fit least squares by full-batch gradient descent with plain tensor ops on random data"
  .. " (X of samples x features, noisy targets); print the RMS residual as it falls and the"
  .. " largest error in the recovered weights.",
  "build/moongrad scripts/least_squares.lua --samples 1024 --features 16 --steps 100")
parser:option("--samples", "Rows n of X.", "4096"):convert(cli.integer(1))
parser:option("--features", "Columns d of X (and weights to recover).", "64"):convert(cli.integer(1))
parser:option("--steps", "Gradient-descent steps.", "300"):convert(cli.integer(1))
local args = parser:parse(arg)
local n, d, steps = args.samples, args.features, args.steps
local lr = 0.5

mg.manual_seed(1)
local X = mg.randn(n, d, "float64")
local w_true = mg.randn(d, 1, "float64")
local noise = mg.randn(n, 1, "float64") * 0.01
local y = X:matmul(w_true) + noise

local w = mg.zeros(d, 1, "float64")
local Xt = X:t()
local function residual()
  return ((X:matmul(w) - y) ^ 2):mean():sqrt():item()
end

print(("least squares: %d samples, %d features, %d steps of gradient descent"):format(n, d, steps))
local t0 = os.clock()
for step = 1, steps do
  local grad = Xt:matmul(X:matmul(w) - y) / n
  w:sub_(grad * lr)
  if step == 1 or step % 50 == 0 then
    print(("step %4d  rms residual %.6f"):format(step, residual()))
  end
end
local err = (w - w_true):abs():max():item()
print(("max |w - w*| = %.2e  (noise level 1e-2)"):format(err))
print(("rms residual: %.6f  in %.2f s"):format(residual(), os.clock() - t0))
