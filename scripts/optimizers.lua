-- Five optimizers, one network: SGD, SGD with momentum, Adam, RMSprop and
-- Adagrad train copies of the same MLP (same initial weights, same
-- mini-batches) on a two-class spiral. Switching optimizer is one line —
-- the constructor call — and the loss curves are printed side by side.
--
-- Run: build/moongrad scripts/optimizers.lua [--steps 1000] [--points 2000]
local cli = require "moongrad.cli"
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"

local batch = 64

-- N: an even number of points (half per class), at least one batch.
local function even_points(s)
  local v = cli.integer(batch)(s)
  if not v or v % 2 ~= 0 then return nil, ("expected an even integer >= %d, got %s"):format(batch, s) end
  return v
end

local parser = cli.parser("optimizers.lua",
  "Train copies of one MLP on a two-class spiral by SGD, momentum, Adam, RMSprop and Adagrad"
  .. " (same start, same mini-batches of 64); print their loss curves side by side and the"
  .. " final losses, best first.",
  "build/moongrad scripts/optimizers.lua --steps 400 --points 1000")
parser:option("--steps", "Optimizer steps per run, one mini-batch each.", "1000"):convert(cli.integer(1))
parser:option("--points", "Spiral points N, half per class (even, >= 64).", "2000")
  :convert(even_points)
local args = parser:parse(arg)
local steps, n = args.steps, args.points

-- os.clock() is the process's CPU time; with one thread it is the time
-- the training took. (Matrices this small gain nothing from more threads.)
mg.set_num_threads(1)

-- Two interleaved spirals, N/2 points each (as in scripts/gd_variants.lua).
mg.manual_seed(0)
local half = n // 2
local t = mg.rand(n, 1) * (2 * math.pi) + 0.5
local phase = mg.zeros(n, 1)
phase:narrow(1, half + 1, half):fill_(math.pi)
local r = t / (2 * math.pi + 0.5)
local X = mg.empty(n, 2)                                             -- [N, 2]
X:narrow(2, 1, 1):copy_(r * (t + phase):cos())
X:narrow(2, 2, 1):copy_(r * (t + phase):sin())
X:add_(mg.randn(n, 2) * 0.03)
local Y = mg.ones({n}, "int64")                                      -- labels 1, 2
Y:narrow(1, half + 1, half):fill_(2)

local function make_net()
  return nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
end
mg.manual_seed(1)
local init_state = make_net():state_dict()       -- every copy starts here

-- The optimizers. Each rule has its own scale of learning rate, so each
-- got its own from one sweep over 0.001, 0.003, 0.01, ..., 3 at the default
-- settings: the rate with the lowest loss averaged over the run (fast and
-- steady progress), or one step below it when the next larger rate
-- diverged (a rate at the edge of stability is fragile: another seed can
-- tip it over).
local runs = {
  {name = "SGD", make = function(p) return optim.SGD(p, {lr = 0.3}) end},
  {name = "momentum", make = function(p) return optim.SGD(p, {lr = 0.1, momentum = 0.9}) end},
  {name = "Adam", make = function(p) return optim.Adam(p, {lr = 0.1}) end},
  {name = "RMSprop", make = function(p) return optim.RMSprop(p, {lr = 0.03}) end},
  {name = "Adagrad", make = function(p) return optim.Adagrad(p, {lr = 0.3}) end},
}

local function full_loss(net)
  return mg.no_grad(function() return F.cross_entropy(net(X), Y):item() end)
end

-- The steps at which the loss over all N points is recorded: every 1, 2 or
-- 5 times a power of ten, some 15 to 30 rows.
local every = 1
for _, e in ipairs({1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}) do
  if e <= steps / 15 then every = e end
end
local function logged(step) return step % every == 0 or step == steps end

-- Trains one copy; returns {[step] = loss} at the logged steps (and step 0).
local function train(run)
  local net = make_net()
  net:load_state_dict(init_state)
  local opt = run.make(net:parameters())
  mg.manual_seed(2)                    -- the same mini-batches for every run
  local curve, step = {[0] = full_loss(net)}, 0
  local start = os.clock()
  while step < steps do
    local perm = mg.randperm(n)
    for first = 1, n - batch + 1, batch do
      local ids = perm:narrow(1, first, batch)
      local loss = F.cross_entropy(net(X:index_select(1, ids)), Y:index_select(1, ids))
      opt:zero_grad()
      loss:backward()
      opt:step()
      step = step + 1
      if logged(step) then curve[step] = full_loss(net) end
      if step == steps then break end
    end
  end
  run.seconds = os.clock() - start
  return curve
end

print(("Two-class spiral, N = %d, MLP 2-32-32-2 (tanh), cross-entropy, batch %d, %d steps."):format(
      n, batch, steps))
local curves = {}
for i, run in ipairs(runs) do curves[i] = train(run) end

local head = {("%6s"):format("step")}
for _, run in ipairs(runs) do head[#head + 1] = ("%9s"):format(run.name) end
print()
print("Loss over the whole training set:")
print(table.concat(head, "  "))
for step = 0, steps do
  if step == 0 or logged(step) then
    local row = {("%6d"):format(step)}
    for i = 1, #runs do row[#row + 1] = ("%9.4f"):format(curves[i][step]) end
    print(table.concat(row, "  "))
  end
end

-- Final losses, best first.
local order = {}
for i = 1, #runs do order[i] = i end
table.sort(order, function(a, b) return curves[a][steps] < curves[b][steps] end)
print()
print("Final losses, best first:")
local finals = {}
for rank, i in ipairs(order) do
  print(("  %d. %-9s %.4f   (%.2f s)"):format(rank, runs[i].name, curves[i][steps], runs[i].seconds))
end
for i, run in ipairs(runs) do finals[i] = ("%s %.4f"):format(run.name, curves[i][steps]) end
print("final loss: " .. table.concat(finals, ", "))
