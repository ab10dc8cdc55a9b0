-- moongrad.nn.recurrent: RNN, LSTM and GRU with backpropagation through
-- time. PyTorch's gate order, formulas, parameter names (weight_ih_l0
-- [G*H, D], weight_hh_l0 [G*H, H], bias_ih_l0, bias_hh_l0, then _l1 ...)
-- and initialisation (all U(-1/sqrt(H), 1/sqrt(H))), so a state dict from
-- torch.nn.RNN / LSTM / GRU (batch_first=True) loads as it is.
--
-- Sequences are batch first: x [N, T, D] (batch, time, features). Forward
-- returns multiple values where PyTorch returns a tuple:
--   rnn(x [, h0])          --> output [N, T, H], h_n [L, N, H]   (RNN, GRU)
--   lstm(x [, h0, c0])     --> output, h_n, c_n                   (LSTM)
-- h0 and c0 are [L, N, H] (zeros when absent).
--
-- Each layer is one projection of the whole sequence (F.linear: x W_ihᵀ +
-- b_ih, one gemm, whose autograd gives dW_ih and dx) followed by one C op,
-- mg._rnn_layer, that runs the recurrence and its BPTT (ops_rnn.c). That op
-- returns the layer's state trajectory [N, T+1, S*H] (row 1 the initial
-- state, row t+1 the state after step t; S = 2 for LSTM, h then c), and the
-- output and final states are views of it, so their gradients meet there.
local mg = require "moongrad"
local util = require "moongrad.util"
local F = require "moongrad.functional"
local Module = require "moongrad.nn.module"
local init = require "moongrad.nn.weight_init"
local checks = require "moongrad.nn.checks"

local is_tensor, rnn_layer = mg.is_tensor, mg._rnn_layer
local type, error, tostring = type, error, tostring
local sqrt, math_type = math.sqrt, math.type
local fmt, concat = string.format, table.concat

local recurrent = {}

-- Constructor errors name the line that called nn.LSTM(...): the
-- constructor runs inside Module's __call, one frame further up.
local CTOR = 3

local function shape_str(t) return "[" .. concat(t:shape(), ",") .. "]" end

local function check_size(v, name, what) checks.size(v, name, what, CTOR + 2) end

local function param(t) return t:requires_grad() end

local options = {num_layers = true, bias = true, batch_first = true, dropout = true,
                 bidirectional = true, dtype = true}
local rnn_options = {nonlinearity = true}
for k in pairs(options) do rnn_options[k] = true end

-- The shared constructor: sizes, options and the parameters of every layer
-- in PyTorch's order (weight_ih, weight_hh, bias_ih, bias_hh per layer).
local function build(self, name, gates, input_size, hidden_size, opts, known)
  check_size(input_size, name, "input_size")
  check_size(hidden_size, name, "hidden_size")
  opts = util.check_options(opts, name, known, CTOR + 1)
  local num_layers = opts.num_layers or 1
  check_size(num_layers, name, "num_layers")
  if opts.bidirectional then
    error(name .. ": bidirectional is not supported (one direction only)", CTOR + 1)
  end
  if opts.batch_first == false then
    error(name .. ": only batch_first = true is supported (inputs [N, T, D])", CTOR + 1)
  end
  local p = opts.dropout or 0
  if type(p) ~= "number" or p < 0 or p > 1 then
    error(fmt("%s: dropout must be a probability in [0, 1], got %s", name, tostring(p)), CTOR + 1)
  end
  local dtype = opts.dtype or "float32"
  if dtype ~= "float32" and dtype ~= "float64" then
    error(fmt("%s: dtype must be \"float32\" or \"float64\", got %s", name, tostring(dtype)),
          CTOR + 1)
  end
  self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
  self.bias, self.batch_first, self.dropout = opts.bias ~= false, true, p
  self.bidirectional = false
  for l = 0, num_layers - 1 do
    local d = l == 0 and input_size or hidden_size
    self["weight_ih_l" .. l] = param(mg.empty({gates * hidden_size, d}, dtype))
    self["weight_hh_l" .. l] = param(mg.empty({gates * hidden_size, hidden_size}, dtype))
    if self.bias then
      self["bias_ih_l" .. l] = param(mg.empty({gates * hidden_size}, dtype))
      self["bias_hh_l" .. l] = param(mg.empty({gates * hidden_size}, dtype))
    end
  end
  self:reset_parameters()
end

-- PyTorch's reset_parameters: every weight and bias U(-1/sqrt(H), 1/sqrt(H)).
local function reset_parameters(self)
  local bound = 1 / sqrt(self.hidden_size)
  for _, p in ipairs(self:parameters()) do init.uniform_(p, -bound, bound) end
end

-- Checks an input sequence and an optional initial state; errors point at
-- the caller of forward (level 3: this, run, then the caller, as forward
-- and Module's __call both tail-call).
local function check_input(name, x, input_size)
  if not is_tensor(x) then
    error(fmt("%s: input must be a tensor, got %s", name, type(x)), 3)
  end
  if x:dim() ~= 3 then
    error(fmt("%s: input must be 3-D [N, T, %d] (batch first), got shape %s",
              name, input_size, shape_str(x)), 3)
  end
  if x:size(3) ~= input_size then
    error(fmt("%s: input of shape %s does not fit input_size %d (expected [N, T, %d])",
              name, shape_str(x), input_size, input_size), 3)
  end
  if x:size(1) < 1 or x:size(2) < 1 then
    error(fmt("%s: input of shape %s is empty (need N >= 1 and T >= 1)", name,
              shape_str(x)), 3)
  end
end

local function check_state(name, what, s, l, n, h)
  if s == nil then return end
  if not is_tensor(s) then
    error(fmt("%s: %s must be a tensor or nil, got %s", name, what, type(s)), 3)
  end
  if s:dim() ~= 3 or s:size(1) ~= l or s:size(2) ~= n or s:size(3) ~= h then
    error(fmt("%s: %s of shape %s does not fit (expected [L, N, H] = [%d,%d,%d])",
              name, what, shape_str(s), l, n, h), 3)
  end
end

-- [L, N, H] from the L layers' final states [N, H].
local function stack_layers(list)
  if #list == 1 then return list[1]:unsqueeze(1) end
  return mg.stack(list, 1)
end

-- The layers, bottom to top: each one's output (after dropout between
-- layers, in training) is the next one's input.
local function run(self, name, cell, x, h0, c0)
  local H, L = self.hidden_size, self.num_layers
  check_input(name, x, self.input_size)
  local n, t = x:size(1), x:size(2)
  check_state(name, "h0", h0, L, n, H)
  check_state(name, "c0", c0, L, n, H)
  local lstm = cell == "lstm"
  local S = lstm and 2 or 1
  local dtype = self.weight_hh_l0:dtype()
  local zeros = (h0 == nil or (lstm and c0 == nil)) and mg.zeros({n, H}, dtype)
  local input, hs, cs = x, {}, {}
  for l = 1, L do
    local sfx = "_l" .. (l - 1)
    local w_ih, w_hh = self["weight_ih" .. sfx], self["weight_hh" .. sfx]
    local b_ih, b_hh = self["bias_ih" .. sfx], self["bias_hh" .. sfx]
    local hl = h0 and h0:select(1, l) or zeros
    local traj
    if cell == "gru" then -- b_hh stays apart: r multiplies W_hn h + b_hn
      traj = rnn_layer(cell, F.linear(input, w_ih, b_ih), hl, nil, w_hh, b_hh)
    else
      local xp = F.linear(input, w_ih, b_ih and b_ih + b_hh)
      local cl = lstm and (c0 and c0:select(1, l) or zeros) or nil
      traj = rnn_layer(cell, xp, hl, cl, w_hh)
    end
    local last = traj:select(2, t + 1)
    hs[l] = last:narrow(2, 1, H)
    if lstm then cs[l] = last:narrow(2, H + 1, H) end
    input = traj:narrow(2, 2, t)
    if S > 1 then input = input:narrow(3, 1, H) end
    if l < L and self.dropout > 0 and self.training then
      input = F.dropout(input, self.dropout, true)
    end
  end
  if lstm then return input, stack_layers(hs), stack_layers(cs) end
  return input, stack_layers(hs)
end

---------------------------------------------------------------------------
-- RNN(input_size, hidden_size [, {nonlinearity = "tanh", num_layers = 1,
-- bias = true, batch_first = true, dropout = 0, dtype}])
--
-- h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh), act tanh or relu.
local RNN = Module:extend("RNN")
recurrent.RNN = RNN

function RNN:init(input_size, hidden_size, opts)
  local nl = type(opts) == "table" and opts.nonlinearity or "tanh"
  if nl ~= "tanh" and nl ~= "relu" then
    error(fmt("RNN: nonlinearity must be \"tanh\" or \"relu\", got %s", tostring(nl)), CTOR)
  end
  self.nonlinearity = nl
  build(self, "RNN", 1, input_size, hidden_size, opts, rnn_options)
end

RNN.reset_parameters = reset_parameters

-- forward(x [N, T, D] [, h0 [L, N, H]]) --> output [N, T, H], h_n [L, N, H]
function RNN:forward(x, h0)
  return run(self, "RNN", "rnn_" .. self.nonlinearity, x, h0)
end

---------------------------------------------------------------------------
-- LSTM(input_size, hidden_size [, {num_layers = 1, bias = true,
-- batch_first = true, dropout = 0, dtype}])
--
-- Gates i, f, g, o (PyTorch's order, rows of weight_ih/weight_hh in blocks
-- of H): c_t = f c_{t-1} + i g, h_t = o tanh(c_t).
local LSTM = Module:extend("LSTM")
recurrent.LSTM = LSTM

function LSTM:init(input_size, hidden_size, opts)
  build(self, "LSTM", 4, input_size, hidden_size, opts, options)
end

LSTM.reset_parameters = reset_parameters

-- forward(x [N, T, D] [, h0, c0 [L, N, H]]) --> output [N, T, H],
-- h_n [L, N, H], c_n [L, N, H]. PyTorch's (h0, c0) tuple is two arguments
-- here, and its (output, (h_n, c_n)) three results; h0 and c0 come
-- together or not at all, as in PyTorch.
function LSTM:forward(x, h0, c0)
  if (h0 == nil) ~= (c0 == nil) then
    error("LSTM: h0 and c0 must be given together (or neither)", 2)
  end
  return run(self, "LSTM", "lstm", x, h0, c0)
end

---------------------------------------------------------------------------
-- GRU(input_size, hidden_size [, {num_layers = 1, bias = true,
-- batch_first = true, dropout = 0, dtype}])
--
-- Gates r, z, n (PyTorch's order): r = σ(W_ir x + b_ir + W_hr h + b_hr),
-- z likewise, n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
-- h_t = (1 - z) n + z h_{t-1}.
local GRU = Module:extend("GRU")
recurrent.GRU = GRU

function GRU:init(input_size, hidden_size, opts)
  build(self, "GRU", 3, input_size, hidden_size, opts, options)
end

GRU.reset_parameters = reset_parameters

-- forward(x [N, T, D] [, h0 [L, N, H]]) --> output [N, T, H], h_n [L, N, H]
function GRU:forward(x, h0)
  return run(self, "GRU", "gru", x, h0)
end

return recurrent
