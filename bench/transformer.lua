-- The transformer workload of `make bench` (twin: bench/transformer.py): a
-- small causal language model's training step on random tokens made once.
-- Token embedding(64, 128) plus learned positions [32, 128] → 2 pre-norm
-- blocks (d 128, 4 heads, GELU MLP 4×, dropout 0, causal) → LayerNorm →
-- linear(128, 64); cross-entropy over all 32 positions of the 64
-- sequences; AdamW(lr 1e-3, weight decay 0.01).
--
--   build/moongrad bench/transformer.lua step <threads>
--
-- Prints ms per training step (zero_grad, forward, loss, backward,
-- update): the median of 10 steps after 3 warm-up steps.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local common = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

common.args(arg, { step = true })
local VOCAB, D, HEADS, SEQ, BATCH = 64, 128, 4, 32, 64

local Net = nn.Module:extend("TinyCausalLM")

function Net:init()
  self.tok = nn.Embedding(VOCAB, D)
  self.pos = (mg.randn(SEQ, D) * 0.02):requires_grad()
  -- TransformerBlock is TransformerEncoderLayer(norm_first = true,
  -- activation = "gelu", dim_feedforward = 4·D, dropout = 0), causal.
  self.blocks = nn.ModuleList { nn.TransformerBlock(D, HEADS, { causal = true }),
                                nn.TransformerBlock(D, HEADS, { causal = true }) }
  self.norm = nn.LayerNorm(D)
  self.head = nn.Linear(D, VOCAB)
end

function Net:forward(x)
  local h = self.tok(x) + self.pos
  for _, block in ipairs(self.blocks) do h = block(h) end
  return self.head(self.norm(h))
end

local model = Net()
local opt = optim.AdamW(model, { lr = 1e-3, weight_decay = 0.01 })
local x, y = mg.randint(1, VOCAB, { BATCH, SEQ }), mg.randint(1, VOCAB, { BATCH * SEQ })
local function loss(logits, target) return F.cross_entropy(logits:reshape(-1, VOCAB), target) end
common.result(1e3 * common.time_per_call(function() common.step(model, opt, loss, x, y) end, 1, 10, 3))
