-- The recurrent workloads of `make bench` (twin: bench/recurrent.py): a
-- character-level language model's training step on random tokens made
-- once. Embedding(64, 64) → 2-layer LSTM or GRU, hidden 256, batch first →
-- linear(256, 64) at every position; cross-entropy over all 32 positions
-- of the 64 sequences; RMSprop(lr 1e-3).
--
--   build/moongrad bench/recurrent.lua lstm|gru <threads>
--
-- Prints ms per training step (zero_grad, forward, loss, backward,
-- update): the median of 10 steps after 3 warm-up steps.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local common = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

local mode = common.args(arg, { lstm = true, gru = true })
local VOCAB, EMBED, HIDDEN, SEQ, BATCH = 64, 64, 256, 32, 64

local Net = nn.Module:extend("RecurrentLM")

function Net:init(cell)
  self.embed = nn.Embedding(VOCAB, EMBED)
  self.rnn = nn[cell](EMBED, HIDDEN, { num_layers = 2 })
  self.head = nn.Linear(HIDDEN, VOCAB)
end

function Net:forward(x)
  local out = self.rnn(self.embed(x)) -- the output sequence; the final states are not used
  return self.head(out)
end

local model = Net(mode:upper())
local opt = optim.RMSprop(model, { lr = 1e-3 })
local x, y = mg.randint(1, VOCAB, { BATCH, SEQ }), mg.randint(1, VOCAB, { BATCH * SEQ })
local function loss(logits, target) return F.cross_entropy(logits:reshape(-1, VOCAB), target) end
common.result(1e3 * common.time_per_call(function() common.step(model, opt, loss, x, y) end, 1, 10, 3))
