-- Character-level language models on the Debian word list (wamerican's
-- /usr/share/dict/words, the lowercase a-z words): each model learns to
-- spell words one letter at a time, '.' marking the start and the end.
--
--   mlp          the next letter from the 3 before it (make bench's model):
--                embedding(27, 64) -> linear(192, 256)-tanh-linear(256, 27),
--                Adam with cosine decay
--   lstm         the whole prefix through an LSTM(64 -> 256), RMSprop with
--                step decay (the optimizer recurrent nets were tuned with)
--   transformer  2 pre-norm blocks (d 64, 4 heads, causal), AdamW with a
--                linear warm-up then cosine decay. warmup.svg compares
--                shorter runs with and without the warm-up at the peak
--                learning rate and at 3 times it
--
-- Every model reports the validation loss per character (each letter and
-- the end of each word, in nats) on a held-out 10% of the words, and
-- samples a few new words. Gradients are clipped to a global norm of 1
-- (--clip 0 turns it off).
--
--   build/moongrad scripts/char_lm.lua [--models mlp,lstm,transformer]
--       [--steps 3000] [--batch 64] [--seed 1] [--clip 1] [--samples 8]
--       [--eval-every 0] [--transformer-lr 1e-2] [--width 64]
--       [--compare-steps 600] [--val-words 0] [--out runs/char_lm]
--
-- --eval-every 0 evaluates every steps/10 steps; --val-words 0 validates
-- on all the held-out words.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local plot = require "moongrad.plot"
local cli = require "moongrad.cli"

local MODELS = { mlp = true, lstm = true, transformer = true }

-- a comma-separated list of models, trained in that order
local function model_list(s)
  local list = {}
  for name in s:gmatch("[^,]+") do
    if not MODELS[name] then return nil, ("unknown model '%s' (mlp, lstm, transformer)"):format(name) end
    list[#list + 1] = name
  end
  if #list == 0 then return nil, "expected one or more of mlp, lstm, transformer" end
  return list
end

-- a number >= 0 (0 turns gradient clipping off)
local function nonnegative(s)
  local v = cli.number()(s)
  if not v or v < 0 then return nil, "expected a number >= 0, got " .. s end
  return v
end

-- the transformer's width: 4 heads split it evenly
local function width(s)
  local v = cli.integer(4)(s)
  if not v or v % 4 ~= 0 then return nil, "expected a multiple of 4 (4 heads), got " .. s end
  return v
end

local parser = cli.parser("char_lm.lua",
  "Train character-level language models (an MLP, an LSTM, a transformer) on the words of "
  .. "/usr/share/dict/words, report their validation loss per character and sample words; writes "
  .. "val_loss.svg and the transformer's warm-up comparison warmup.svg into --out.",
  "build/moongrad scripts/char_lm.lua --models lstm --steps 300 --out runs/lstm")
parser:option("--models", "The models to train, comma-separated: mlp, lstm, transformer.",
              "mlp,lstm,transformer"):convert(model_list)
parser:option("--steps", "Training steps per model.", "3000"):convert(cli.integer(1))
parser:option("--batch", "Words per batch (the MLP takes 8 times as many 3-letter contexts).", "64")
  :convert(cli.integer(1))
parser:option("--seed", "Random seed.", "1"):convert(cli.integer(0))
parser:option("--clip", "Clip the gradients to this global norm (0: no clipping).", "1")
  :convert(nonnegative)
parser:option("--samples", "Words each trained model samples.", "8"):convert(cli.integer(0))
parser:option("--eval-every", "Steps between validations (0: a tenth of --steps).", "0")
  :convert(cli.integer(0))
parser:option("--transformer-lr", "The transformer's peak learning rate (AdamW).", "1e-2")
  :convert(cli.number(0))
parser:option("--width", "The transformer's model width (a multiple of its 4 heads).", "64")
  :convert(width)
parser:option("--compare-steps", "Steps of each run of the warm-up comparison.", "600")
  :convert(cli.integer(1))
parser:option("--val-words", "Validate on only this many held-out words (0: all of them).", "0")
  :convert(cli.integer(0))
parser:option("--out", "Folder for the charts.", "runs/char_lm")
local opts = parser:parse(arg)
local steps = opts.steps
local eval_every = opts.eval_every
if eval_every < 1 then eval_every = math.max(1, steps // 10) end
os.execute(("mkdir -p '%s'"):format(opts.out))
mg.manual_seed(opts.seed)

-- ---- data ---------------------------------------------------------------------
-- Tokens: '.' is 1, a..z are 2..27. Sequence targets past a word's end are
-- 0, which the loss ignores.
local V, PAD = 27, 0
local function token(ch) return ch:byte() - 95 end
local function letter(t) return t == 1 and "." or string.char(t + 95) end

local words = {}
for w in io.lines("/usr/share/dict/words") do
  if w:match("^[a-z]+$") then words[#words + 1] = w end
end
local order = mg.randperm(#words):totable()
local train_words, val_words, maxlen = {}, {}, 0
for i, k in ipairs(order) do
  local w = words[k]
  if i <= #words * 0.9 then train_words[#train_words + 1] = w else val_words[#val_words + 1] = w end
  maxlen = math.max(maxlen, #w)
end
local keep = opts.val_words -- a smaller validation set, for quick runs
if keep > 0 then
  for i = #val_words, keep + 1, -1 do val_words[i] = nil end
end
local T = maxlen + 1 -- '.' + letters as input, letters + '.' as targets
print(("%d words: %d for training, %d for validation; longest %d letters")
  :format(#words, #train_words, #val_words, maxlen))

-- The 3-letter contexts of every position of every word (for the MLP).
local function contexts(list)
  local ctx, nxt = {}, {}
  for _, w in ipairs(list) do
    local a, b, c = 1, 1, 1
    for i = 1, #w + 1 do
      local t = i <= #w and token(w:sub(i, i)) or 1
      ctx[#ctx + 1], nxt[#nxt + 1] = { a, b, c }, t
      a, b, c = b, c, t
    end
  end
  return mg.tensor(ctx, "int64"), mg.tensor(nxt, "int64")
end

-- Whole words as padded sequences (for the LSTM and the transformer).
local function sequences(list)
  local x, y = {}, {}
  for i, w in ipairs(list) do
    local xi, yi = { 1 }, {}
    for j = 1, #w do
      local t = token(w:sub(j, j))
      xi[j + 1], yi[j] = t, t
    end
    yi[#w + 1] = 1
    for j = #w + 2, T do xi[j], yi[j] = 1, PAD end
    x[i], y[i] = xi, yi
  end
  return mg.tensor(x, "int64"), mg.tensor(y, "int64")
end

local data = {}
data.ctx_train, data.next_train = contexts(train_words)
data.ctx_val, data.next_val = contexts(val_words)
data.seq_train, data.tgt_train = sequences(train_words)
data.seq_val, data.tgt_val = sequences(val_words)
words, order = nil, nil
collectgarbage() -- the Lua tables above would be traversed by every cycle

-- ---- models ---------------------------------------------------------------------
local CharLSTM = nn.Module:extend("CharLSTM")
function CharLSTM:init(hidden)
  self.embed = nn.Embedding(V, 64)
  self.lstm = nn.LSTM(64, hidden)
  self.head = nn.Linear(hidden, V)
end
function CharLSTM:forward(x) -- [N, T] -> logits [N, T, V]
  local out = self.lstm(self.embed(x))
  return self.head(out)
end

local CharTransformer = nn.Module:extend("CharTransformer")
function CharTransformer:init(d, heads, layers)
  self.embed = nn.Embedding(V, d)
  self.pos = (mg.randn(T, d) * 0.02):requires_grad()
  self.blocks = nn.Sequential()
  for _ = 1, layers do self.blocks:append(nn.TransformerBlock(d, heads, { causal = true })) end
  self.norm = nn.LayerNorm(d)
  self.head = nn.Linear(d, V)
end
function CharTransformer:forward(x) -- [N, L] -> logits [N, L, V]
  local L = x:size(2)
  local h = self.embed(x) + self.pos:narrow(1, 1, L)
  return self.head(self.norm(self.blocks(h)))
end

-- ---- training ---------------------------------------------------------------------
-- Each spec returns the model, its optimizer and scheduler, and how to get
-- a batch's loss and the validation loss.
local function seq_loss(model, x, y)
  local logits = model(x)
  return F.cross_entropy(logits:reshape(-1, V), y:reshape(-1), { ignore_index = PAD })
end

local function val_loss(f, X, Y, chunk)
  -- Mean over every target that counts: sums per chunk, then one division.
  return mg.no_grad(function()
    local total, count = 0, 0
    for i = 1, X:size(1), chunk do
      local n = math.min(chunk, X:size(1) - i + 1)
      local x, y = X:narrow(1, i, n), Y:narrow(1, i, n)
      total = total + f(x, y, "sum")
      count = count + y:ne(PAD):sum():item()
    end
    return total / count
  end)
end

local setups = {}

function setups.mlp()
  local model = nn.Sequential(nn.Embedding(V, 64), nn.Flatten(), nn.Linear(3 * 64, 256), nn.Tanh(),
                              nn.Linear(256, V))
  local opt = optim.Adam(model, { lr = 3e-3 })
  local s = sched.CosineAnnealingLR(opt, { T_max = steps, eta_min = 3e-5 })
  local n = data.ctx_train:size(1)
  local batch = opts.batch * 8 -- one word is ~9 predictions; match the sequence models' count
  return model, opt, s, {
    loss = function()
      local idx = mg.randint(1, n, { batch })
      return F.cross_entropy(model(data.ctx_train:index_select(1, idx)), data.next_train:index_select(1, idx))
    end,
    val = function()
      return val_loss(function(x, y, red) return F.cross_entropy(model(x), y, { reduction = red }):item() end,
                      data.ctx_val, data.next_val, 8192)
    end,
    next_logits = function(prefix) -- the last 3 tokens
      local c = { 1, 1, 1 }
      for i = 1, #prefix do c[#c + 1] = prefix[i] end
      return model(mg.tensor({ { c[#c - 2], c[#c - 1], c[#c] } }, "int64"))[1]
    end,
  }
end

local function sequence_setup(model, opt, s)
  local n = data.seq_train:size(1)
  return model, opt, s, {
    loss = function()
      local idx = mg.randint(1, n, { opts.batch })
      return seq_loss(model, data.seq_train:index_select(1, idx), data.tgt_train:index_select(1, idx))
    end,
    val = function()
      return val_loss(function(x, y, red)
        return F.cross_entropy(model(x):reshape(-1, V), y:reshape(-1), { ignore_index = PAD, reduction = red }):item()
      end, data.seq_val, data.tgt_val, 512)
    end,
    next_logits = function(prefix)
      local x = { 1 }
      for i = 1, #prefix do x[#x + 1] = prefix[i] end
      local logits = model(mg.tensor({ x }, "int64"))
      return logits[1][#x]
    end,
  }
end

function setups.lstm()
  local model = CharLSTM(256)
  local opt = optim.RMSprop(model, { lr = 2e-3 })
  return sequence_setup(model, opt, sched.StepLR(opt, { step_size = math.max(1, steps // 3), gamma = 0.3 }))
end

local function transformer(warmup, lr, n)
  local model = CharTransformer(opts.width, 4, 2)
  local opt = optim.AdamW(model, { lr = lr, weight_decay = 0.01 })
  local s
  if warmup then
    local w = math.max(1, n // 10)
    s = sched.SequentialLR(opt, {
      schedulers = {
        sched.LinearLR(opt, { start_factor = 0.01, end_factor = 1, total_iters = w }),
        sched.CosineAnnealingLR(opt, { T_max = math.max(1, n - w), eta_min = lr / 100 }),
      },
      milestones = { w },
    })
  else
    s = sched.CosineAnnealingLR(opt, { T_max = n, eta_min = lr / 100 })
  end
  return sequence_setup(model, opt, s)
end
setups.transformer = function() return transformer(true, opts.transformer_lr, steps) end

local function train(name, setup, n)
  n = n or steps
  local model, opt, s, task = (setup or setups[name])()
  local params = model:parameters()
  local curve, t0 = { x = {}, y = {} }, mg.clock()
  model:train()
  local every = n == steps and eval_every or math.max(1, n // 10)
  for step = 1, n do
    opt:zero_grad()
    local loss = task.loss()
    loss:backward()
    if opts.clip > 0 then optim.clip_grad_norm(params, opts.clip) end
    opt:step()
    s:step()
    if step % every == 0 or step == n then
      model:eval()
      local v = task.val()
      model:train()
      curve.x[#curve.x + 1], curve.y[#curve.y + 1] = step, v
      print(("%-22s step %5d  train %.4f  val %.4f  lr %.2e  %.1fs"):format(
        name, step, loss:item(), v, opt.param_groups[1].lr, mg.clock() - t0))
      if v ~= v then break end -- diverged: NaN from here on
    end
  end
  model:eval()
  return { name = name, curve = curve, val = curve.y[#curve.y], task = task }
end

-- Draws a word letter by letter from the model's softmax until '.'.
local function sample(task)
  local out = {}
  mg.no_grad(function()
    for _ = 1, maxlen do
      local p = F.softmax(task.next_logits(out):double(), -1):totable()
      local u, acc, t = mg.rand(1):item(), 0, V
      for k = 1, V do
        acc = acc + p[k]
        if u < acc then t = k break end
      end
      if t == 1 then break end
      out[#out + 1] = t
    end
  end)
  local s = {}
  for i, t in ipairs(out) do s[i] = letter(t) end
  return table.concat(s)
end

-- ---- run ------------------------------------------------------------------------------
local results, series = {}, {}
for _, name in ipairs(opts.models) do
  local r = train(name)
  results[#results + 1] = r
  series[#series + 1] = { name = name, x = r.curve.x, y = r.curve.y }
  local drawn = {}
  for i = 1, opts.samples do drawn[i] = sample(r.task) end
  print(("%s samples: %s"):format(name, table.concat(drawn, " ")))
  if name == "transformer" then
    -- Warm-up on and off, at the peak learning rate and at 3 times it (the
    -- warm-up is linear over the first tenth, then cosine; without it,
    -- cosine from the first step).
    local cmp, n = {}, opts.compare_steps
    for _, k in ipairs({ 1, 3 }) do
      local lr = opts.transformer_lr * k
      for _, warm in ipairs({ true, false }) do
        local label = ("lr %g, %s"):format(lr, warm and "warm-up" or "no warm-up")
        local run = train("transformer " .. label, function() return transformer(warm, lr, n) end, n)
        cmp[#cmp + 1] = { name = label, x = run.curve.x, y = run.curve.y, dash = (not warm) and "6,4" or nil,
                          color = plot.colors[k == 1 and 1 or 2] }
        print(("warm-up comparison: %s: val %.4f"):format(label, run.val))
      end
    end
    plot.lines { series = cmp, path = opts.out .. "/warmup.svg",
                 title = "Transformer on the word list: with and without warm-up",
                 xlabel = "step", ylabel = "validation loss per character (nats)" }
    print(("wrote %s/warmup.svg"):format(opts.out))
  end
end
plot.lines { series = series, path = opts.out .. "/val_loss.svg", title = "Character-level models on the word list",
             xlabel = "step", ylabel = "validation loss per character (nats)" }
print(("wrote %s/val_loss.svg"):format(opts.out))
for _, r in ipairs(results) do print(("final validation loss per character: %-12s %.4f"):format(r.name, r.val)) end
