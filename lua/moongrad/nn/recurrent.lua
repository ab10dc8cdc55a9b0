-- moongrad.nn.recurrent: RNN, LSTM and GRU with backpropagation through
-- time. PyTorch's gate order, formulas, options, parameter names and
-- order (per layer k and direction: weight_ih_l{k} [G*H, D_in],
-- weight_hh_l{k} [G*H, R], bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k}
-- [P, H] for a projected LSTM; the reverse direction's the same names with
-- _reverse, after the forward one's) and initialisation (all
-- U(-1/sqrt(H), 1/sqrt(H))), so a state dict from torch.nn.RNN / LSTM /
-- GRU loads as it is.
--
-- Sequences are batch first by default (x [N, T, D]; {batch_first =
-- false}: [T, N, D], PyTorch's default). Forward returns multiple values
-- where PyTorch returns a tuple:
--   rnn(x [, h0])          --> output [N, T, D*R], h_n [L*D, N, R]  (RNN, GRU)
--   lstm(x [, h0, c0])     --> output, h_n, c_n [L*D, N, H]         (LSTM)
-- where D is 2 for a bidirectional module (else 1) and R the projection
-- size of an LSTM with proj_size (else H). h0 and c0 have the shapes of
-- h_n and c_n (zeros when absent), layer-major: layer 1 forward, layer 1
-- reverse, layer 2 forward, ...
--
-- Each layer and direction is one projection of the whole sequence
-- (F.linear: x W_ihᵀ + b_ih, one gemm, whose autograd gives dW_ih and dx)
-- followed by one C op, mg._rnn_layer, that runs the recurrence (forward
-- or reversed in time) and its BPTT (ops_rnn.c). That op returns the
-- state trajectory [N, T+1, W] (the initial state and the state after
-- each time position; W = R, or R + H for LSTM, h then c), and the output
-- and final states are views of it, so their gradients meet there.
local mg = require "moongrad"
local util = require "moongrad.util"
local F = require "moongrad.functional"
local Module = require "moongrad.nn.module"
local init = require "moongrad.nn.weight_init"
local checks = require "moongrad.nn.checks"

local is_tensor, rnn_layer = mg.is_tensor, mg._rnn_layer
local type, error, tostring = type, error, tostring
local sqrt = math.sqrt
local fmt, concat = string.format, table.concat

local recurrent = {}

-- Constructor errors name the line that called nn.LSTM(...): the
-- constructor runs inside Module's __call, one frame further up.
local CTOR = 3

local function shape_str(t) return "[" .. concat(t:shape(), ",") .. "]" end

local function check_size(v, name, what) checks.size(v, name, what, CTOR + 2) end

local function param(t) return t:requires_grad() end

local options = {num_layers = true, bias = true, batch_first = true, dropout = true,
                 bidirectional = true, proj_size = true, dtype = true}
local rnn_options = {nonlinearity = true}
for k in pairs(options) do rnn_options[k] = true end

local function check_boolean(v, name, what)
  if v ~= nil and type(v) ~= "boolean" then
    error(fmt("%s: %s must be true or false, got %s", name, what,
              type(v) == "string" and ("\"" .. v .. "\"") or tostring(v)), CTOR + 2)
  end
end

-- proj_size: 0 (none), or for LSTM an integer in [1, hidden_size).
local function check_proj(p, name, hidden_size)
  if p == nil or p == 0 then return 0 end
  if type(p) ~= "number" or p ~= p // 1 or p < 0 then
    error(fmt("%s: proj_size must be a non-negative integer (0 for none), got %s",
              name, tostring(p)), CTOR + 2)
  end
  if name ~= "LSTM" then
    error(fmt("%s: proj_size is only supported by LSTM, got proj_size = %s", name,
              tostring(p)), CTOR + 2)
  end
  if p >= hidden_size then
    error(fmt("%s: proj_size must be smaller than hidden_size, got proj_size = %s "
              .. "with hidden_size = %d", name, tostring(p), hidden_size), CTOR + 2)
  end
  return math.tointeger(p)
end

-- The shared constructor: sizes, options and the parameters of every layer
-- and direction in PyTorch's order (weight_ih, weight_hh, bias_ih, bias_hh,
-- weight_hr per layer and direction, forward first).
local function build(self, name, gates, input_size, hidden_size, opts, known)
  check_size(input_size, name, "input_size")
  check_size(hidden_size, name, "hidden_size")
  opts = util.check_options(opts, name, known, CTOR + 1)
  local num_layers = opts.num_layers or 1
  check_size(num_layers, name, "num_layers")
  check_boolean(opts.bidirectional, name, "bidirectional")
  check_boolean(opts.batch_first, name, "batch_first")
  check_boolean(opts.bias, name, "bias")
  local proj_size = check_proj(opts.proj_size, name, hidden_size)
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
  self.bias, self.batch_first, self.dropout = opts.bias ~= false, opts.batch_first ~= false, p
  self.bidirectional, self.proj_size = opts.bidirectional == true, proj_size
  local dirs = self.bidirectional and 2 or 1
  local R = proj_size > 0 and proj_size or hidden_size
  local G = gates * hidden_size
  for l = 0, num_layers - 1 do
    local d = l == 0 and input_size or dirs * R
    for dir = 1, dirs do
      local sfx = "_l" .. l .. (dir == 2 and "_reverse" or "")
      self["weight_ih" .. sfx] = param(mg.empty({G, d}, dtype))
      self["weight_hh" .. sfx] = param(mg.empty({G, R}, dtype))
      if self.bias then
        self["bias_ih" .. sfx] = param(mg.empty({G}, dtype))
        self["bias_hh" .. sfx] = param(mg.empty({G}, dtype))
      end
      if proj_size > 0 then
        self["weight_hr" .. sfx] = param(mg.empty({proj_size, hidden_size}, dtype))
      end
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
local function check_input(self, name, x)
  local input_size = self.input_size
  local layout = self.batch_first and "[N, T, %d]" or "[T, N, %d]"
  if not is_tensor(x) then
    error(fmt("%s: input must be a tensor, got %s", name, type(x)), 3)
  end
  if x:dim() ~= 3 then
    error(fmt("%s: input must be 3-D " .. layout .. " (%s), got shape %s",
              name, input_size, self.batch_first and "batch first" or "batch_first = false",
              shape_str(x)), 3)
  end
  if x:size(3) ~= input_size then
    error(fmt("%s: input of shape %s does not fit input_size %d (expected " .. layout .. ")",
              name, shape_str(x), input_size, input_size), 3)
  end
  if x:size(1) < 1 or x:size(2) < 1 then
    error(fmt("%s: input of shape %s is empty (need N >= 1 and T >= 1)", name,
              shape_str(x)), 3)
  end
end

-- h0 [L*D, N, R] or c0 [L*D, N, H]; what names the expected layout.
local function check_state(name, what, s, layout, l, n, h)
  if s == nil then return end
  if not is_tensor(s) then
    error(fmt("%s: %s must be a tensor or nil, got %s", name, what, type(s)), 3)
  end
  if s:dim() ~= 3 or s:size(1) ~= l or s:size(2) ~= n or s:size(3) ~= h then
    error(fmt("%s: %s of shape %s does not fit (expected %s = [%d,%d,%d])",
              name, what, shape_str(s), layout, l, n, h), 3)
  end
end

-- [L*D, N, ·] from the final states [N, ·] of every layer and direction.
local function stack_layers(list)
  if #list == 1 then return list[1]:unsqueeze(1) end
  return mg.stack(list, 1)
end

-- The layers, bottom to top: each one's output (both directions'
-- concatenated, after dropout between layers in training) is the next
-- one's input.
local function run(self, name, cell, x, h0, c0)
  local H, L = self.hidden_size, self.num_layers
  local R = self.proj_size > 0 and self.proj_size or H
  local D = self.bidirectional and 2 or 1
  check_input(self, name, x)
  if not self.batch_first then x = x:transpose(1, 2) end
  local n, t = x:size(1), x:size(2)
  local ld = D == 2 and "2*L" or "L"
  check_state(name, "h0", h0, fmt("[%s, N, %s]", ld, R == H and "H" or "P"), L * D, n, R)
  check_state(name, "c0", c0, fmt("[%s, N, H]", ld), L * D, n, H)
  local lstm = cell == "lstm"
  local dtype = self.weight_hh_l0:dtype()
  local hzero = h0 == nil and mg.zeros({n, R}, dtype)
  local czero = lstm and c0 == nil and mg.zeros({n, H}, dtype)
  local input, hs, cs = x, {}, {}
  for l = 1, L do
    local outs = {}
    for dir = 1, D do
      local sfx = "_l" .. (l - 1) .. (dir == 2 and "_reverse" or "")
      local w_ih, w_hh = self["weight_ih" .. sfx], self["weight_hh" .. sfx]
      local b_ih, b_hh = self["bias_ih" .. sfx], self["bias_hh" .. sfx]
      local k = (l - 1) * D + dir
      local hl = h0 and h0:select(1, k) or hzero
      local rev = dir == 2
      local traj
      if cell == "gru" then -- b_hh stays apart: r multiplies W_hn h + b_hn
        traj = rnn_layer(cell, F.linear(input, w_ih, b_ih), hl, nil, w_hh, b_hh, nil, rev)
      else
        local xp = F.linear(input, w_ih, b_ih and b_ih + b_hh)
        local cl = lstm and (c0 and c0:select(1, k) or czero) or nil
        traj = rnn_layer(cell, xp, hl, cl, w_hh, nil, self["weight_hr" .. sfx], rev)
      end
      -- The reverse direction's output is rows 1..T of its trajectory and
      -- its final state row 1; the forward one's rows 2..T+1 and T+1.
      local last = traj:select(2, rev and 1 or t + 1)
      hs[k] = last:narrow(2, 1, R)
      if lstm then cs[k] = last:narrow(2, R + 1, H) end
      local out = traj:narrow(2, rev and 1 or 2, t)
      if lstm then out = out:narrow(3, 1, R) end
      outs[dir] = out
    end
    input = D == 2 and mg.cat(outs, 3) or outs[1]
    if l < L and self.dropout > 0 and self.training then
      input = F.dropout(input, self.dropout, true)
    end
  end
  if not self.batch_first then input = input:transpose(1, 2) end
  if lstm then return input, stack_layers(hs), stack_layers(cs) end
  return input, stack_layers(hs)
end

---------------------------------------------------------------------------
-- RNN(input_size, hidden_size [, {nonlinearity = "tanh", num_layers = 1,
-- bias = true, batch_first = true, dropout = 0, bidirectional = false,
-- dtype}])
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

-- forward(x [N, T, D_in] [, h0 [L*D, N, H]]) --> output [N, T, D*H],
-- h_n [L*D, N, H] (x and output [T, N, ·] with batch_first = false)
function RNN:forward(x, h0)
  return run(self, "RNN", "rnn_" .. self.nonlinearity, x, h0)
end

---------------------------------------------------------------------------
-- LSTM(input_size, hidden_size [, {num_layers = 1, bias = true,
-- batch_first = true, dropout = 0, bidirectional = false, proj_size = 0,
-- dtype}])
--
-- Gates i, f, g, o (PyTorch's order, rows of weight_ih/weight_hh in blocks
-- of H): c_t = f c_{t-1} + i g, h_t = o tanh(c_t); with proj_size P,
-- h_t = (o tanh(c_t)) W_hrᵀ, P wide, and weight_hh is [4H, P].
local LSTM = Module:extend("LSTM")
recurrent.LSTM = LSTM

function LSTM:init(input_size, hidden_size, opts)
  build(self, "LSTM", 4, input_size, hidden_size, opts, options)
end

LSTM.reset_parameters = reset_parameters

-- forward(x [N, T, D_in] [, h0 [L*D, N, R], c0 [L*D, N, H]]) --> output
-- [N, T, D*R], h_n [L*D, N, R], c_n [L*D, N, H] (R = proj_size or H; x
-- and output [T, N, ·] with batch_first = false). PyTorch's (h0, c0) tuple is two arguments
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
-- batch_first = true, dropout = 0, bidirectional = false, dtype}])
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

-- forward(x [N, T, D_in] [, h0 [L*D, N, H]]) --> output [N, T, D*H],
-- h_n [L*D, N, H] (x and output [T, N, ·] with batch_first = false)
function GRU:forward(x, h0)
  return run(self, "GRU", "gru", x, h0)
end

return recurrent
