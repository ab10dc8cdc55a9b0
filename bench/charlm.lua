-- The character-level workload of `make bench` (twin: bench/charlm.py):
-- the next letter of a word from the 3 before it ('.' pads and ends words),
-- over the lowercase words of /usr/share/dict/words (Debian's wamerican).
-- Embedding(27, 64) over the 3-character context → linear(192, 256)-tanh-
-- linear(256, 27), Adam(lr 1e-3), random batches of 256.
--
--   build/moongrad bench/charlm.lua steps <threads>
--
-- Prints training steps per second: the median of 5 timed runs of 60 steps
-- after 30 warm-up steps.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local common = dofile((arg[0]:match("^(.*/)") or "./") .. "common.lua")

common.args(arg, { steps = true })

-- Tokens: '.' is 1, a..z are 2..27. The Lua tables are dropped once the
-- tensors hold the data: a live 600k-entry table would be traversed by
-- every collection cycle during training.
local function dataset()
  local ctx, nxt = {}, {}
  for word in io.lines("/usr/share/dict/words") do
    if word:match("^[a-z]+$") then
      local a, b, c = 1, 1, 1
      for i = 1, #word + 1 do
        local t = i <= #word and word:byte(i) - 95 or 1
        ctx[#ctx + 1] = { a, b, c }
        nxt[#nxt + 1] = t
        a, b, c = b, c, t
      end
    end
  end
  return mg.tensor(ctx, "int64"), mg.tensor(nxt, "int64"), #nxt
end
local X, Y, n = dataset()
collectgarbage()

local model = nn.Sequential(nn.Embedding(27, 64), nn.Flatten(), nn.Linear(192, 256), nn.Tanh(),
                            nn.Linear(256, 27))
local opt = optim.Adam(model, { lr = 1e-3 })
local function step()
  local idx = mg.randint(1, n, { 256 })
  common.step(model, opt, F.cross_entropy, X:index_select(1, idx), Y:index_select(1, idx))
end
common.result(1 / common.time_per_call(step, 60, 5, 30))
