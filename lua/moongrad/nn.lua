-- moongrad.nn: modules — layers that hold parameters, containers, losses —
-- and nn.init. `local nn = require "moongrad.nn"`.
--
--   local net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
--   local logits = net(x)                 -- calling a module runs forward
--   net:parameters()  net:train()  net:eval()  net:state_dict()
--
-- Writing your own module (the full contract is atop nn/module.lua):
--
--   local Net = nn.Module:extend("Net")
--   function Net:init(d)  self.fc = nn.Linear(d, 1) end  -- fields register
--   function Net:forward(x) return self.fc(x) end
--   local net = Net(4)
--
-- The pieces live in moongrad/nn/: module.lua (the base class), layers.lua,
-- conv.lua (Conv2d, ConvTranspose2d, the 2-D pools, BatchNorm2d),
-- attention.lua (MultiheadAttention), transformer.lua
-- (TransformerEncoderLayer, TransformerEncoder, TransformerBlock),
-- recurrent.lua (RNN, LSTM, GRU),
-- containers.lua, losses.lua, weight_init.lua (nn.init), utils.lua
-- (nn.utils: nn.l2_penalty, and weight decay coupled vs decoupled) and
-- bridge.lua (nn.from_torch, nn.to_torch: PyTorch's state-dict names).
local Module = require "moongrad.nn.module"

local pairs, ipairs = pairs, ipairs

local nn = {
  Module = Module,
  init = require "moongrad.nn.weight_init",
  is_module = Module.is_module,
  utils = require "moongrad.nn.utils",
}
nn.l2_penalty = nn.utils.l2_penalty

local bridge = require "moongrad.nn.bridge"
nn.from_torch, nn.to_torch = bridge.from_torch, bridge.to_torch

local families = {"layers", "conv", "attention", "transformer", "recurrent", "containers",
                  "losses"}
for _, family in ipairs(families) do
  for name, cls in pairs(require("moongrad.nn." .. family)) do nn[name] = cls end
end

return nn
