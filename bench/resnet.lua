-- The residual convnet workload of `make bench` (twin: bench/resnet.py):
-- one training step of ResNet-20 for CIFAR (He et al. 2016, §4.2) on a
-- random batch of 128 3×32×32 images made once.
--   conv3×3(3→16)-BN-ReLU, then 3 stages of 3 BasicBlocks (16, 32, 64
--   channels; the first block of stages 2 and 3 halves H and W with stride
--   2), global average pool, linear(64→10). A BasicBlock is
--   conv3×3-BN-ReLU-conv3×3-BN plus the shortcut, then ReLU; the shortcut
--   is the input, or a 1×1 conv + BN where the shape changes. Convs have
--   no bias (BN follows each). Cross-entropy, SGD(lr 0.1, momentum 0.9,
--   weight decay 5e-4), batch norm in training mode. The batch is laid out
--   channels last (x:contiguous("channels_last")), which every conv,
--   batch norm and elementwise op keeps, so oneDNN's kernels read and write
--   the activations as they lie (in NCHW each conv reorders them in and
--   out); the twin does the same, which PyTorch runs as fast as NCHW here.
--
--   build/moongrad bench/resnet.lua step <threads>
--
-- Prints ms per training step (zero_grad, forward, loss, backward,
-- update): the median of 5 steps after 2 warm-up steps.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local common = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

common.args(arg, { step = true })

local function conv(cin, cout, k, stride)
  return nn.Conv2d(cin, cout, k, { stride = stride, padding = k // 2, bias = false })
end

local BasicBlock = nn.Module:extend("BasicBlock")

function BasicBlock:init(cin, cout, stride)
  self.conv1, self.bn1 = conv(cin, cout, 3, stride), nn.BatchNorm2d(cout)
  self.conv2, self.bn2 = conv(cout, cout, 3, 1), nn.BatchNorm2d(cout)
  if stride ~= 1 or cin ~= cout then
    self.shortcut = nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))
  end
end

function BasicBlock:forward(x)
  local out = mg.relu(self.bn1(self.conv1(x)))
  out = self.bn2(self.conv2(out))
  return mg.relu(out + (self.shortcut and self.shortcut(x) or x))
end

local layers = { conv(3, 16, 3, 1), nn.BatchNorm2d(16), nn.ReLU() }
local cin = 16
for _, cout in ipairs { 16, 32, 64 } do
  for b = 1, 3 do
    layers[#layers + 1] = BasicBlock(cin, cout, (b == 1 and cout ~= cin) and 2 or 1)
    cin = cout
  end
end
for _, m in ipairs { nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10) } do layers[#layers + 1] = m end
local model = nn.Sequential(table.unpack(layers))

local opt = optim.SGD(model, { lr = 0.1, momentum = 0.9, weight_decay = 5e-4 })
local x, y = mg.randn(128, 3, 32, 32):contiguous("channels_last"), mg.randint(1, 10, { 128 })
common.result(1e3 * common.time_per_call(function() common.step(model, opt, F.cross_entropy, x, y) end,
                                         1, 5, 2))
