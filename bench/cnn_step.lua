-- One training step (zero_grad, forward, loss, backward, Adam) of the
-- Fashion-MNIST CNN from scripts/fashion_mnist_cnn.lua (with batch norm and
-- dropout) at batch 128, on random data made once; ms per step, the median
-- of 20 steps after 5 warm-up steps. Twin: bench/cnn_step.py.
--   build/moongrad bench/cnn_step.lua step <threads>
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local common = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

common.args(arg, { step = true })
local model = nn.Sequential(
  nn.Conv2d(1, 32, 3, { padding = 1 }), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(32, 64, 3, { padding = 1 }), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
  nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))
local opt = optim.Adam(model, { lr = 1e-3 })
local x, y = mg.randn(128, 1, 28, 28), mg.randint(1, 10, { 128 })
common.result(1e3 * common.time_per_call(function() common.step(model, opt, F.cross_entropy, x, y) end,
                                         1, 20, 5))
