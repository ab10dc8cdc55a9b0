-- Batch, stochastic and mini-batch gradient descent are one optimizer
-- (optim.SGD) fed batches of different sizes: all N examples per step, one
-- example per step, or 64. This script trains the same MLP, from the same
-- initial weights, all three ways on a two-class spiral, for the same
-- number of examples seen, and prints the training loss (over all N points)
-- against examples seen and against CPU time.
--
-- Run: build/moongrad scripts/gd_variants.lua [--epochs 100] [--points 2000]
-- (an epoch is N examples seen; a full-batch run takes one step per epoch).
local cli = require "moongrad.cli"
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"

-- N: an even number of points (half per class), at least one batch of 64.
local function even_points(s)
  local v = cli.integer(64)(s)
  if not v or v % 2 ~= 0 then return nil, "expected an even integer >= 64, got " .. s end
  return v
end

local parser = cli.parser("gd_variants.lua",
  "Train one MLP on a two-class spiral by full-batch, stochastic (batch 1) and mini-batch (64)"
  .. " SGD for the same number of examples; print the loss over all N points and the CPU"
  .. " seconds against examples seen, and who reaches each loss first.",
  "build/moongrad scripts/gd_variants.lua --epochs 20 --points 1000")
parser:option("--epochs", "Epochs per variant (an epoch is N examples seen).", "100")
  :convert(cli.integer(1))
parser:option("--points", "Spiral points N, half per class (even, >= 64).", "2000")
  :convert(even_points)
local args = parser:parse(arg)
local epochs, n = args.epochs, args.points

-- os.clock() is the CPU time of the whole process; with one thread that is
-- the time the training took (evaluation is left out of the clock below).
mg.set_num_threads(1)

-- Two interleaved spirals, N/2 points each, with a little noise: class 1
-- at angle t, class 2 at t + pi, the radius growing with t.
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
local init_state = make_net():state_dict()

local function full_loss(net)
  return mg.no_grad(function() return F.cross_entropy(net(X), Y):item() end)
end

-- The learning rates come from one sweep at the default settings (full
-- batch and batch 64: 0.25 0.5 1 2 4; batch 1: 0.02 0.05 0.1 0.2 0.5): for
-- each batch size the rate with the lowest loss averaged over the run
-- (fast and steady progress), or one step below it when the next larger
-- rate diverged or stalled (a rate at the edge of stability is fragile:
-- another seed can tip it over). A bigger batch averages away more
-- gradient noise, so it tolerates a bigger step.
local variants = {
  {name = "full batch", batch = n, lr = 0.5},
  {name = "batch 1", batch = 1, lr = 0.05},
  {name = "batch 64", batch = 64, lr = 0.5},
}

-- Trains one variant; returns its curve: curve[e + 1] = {loss, seconds}
-- after e epochs (e = 0 is the initial loss).
local function run(v)
  local net = make_net()
  net:load_state_dict(init_state)
  local opt = optim.SGD(net:parameters(), {lr = v.lr})
  mg.manual_seed(2)                    -- the same shuffles for every variant
  local curve, seconds = {{full_loss(net), 0}}, 0
  for _ = 1, epochs do
    local start = os.clock()
    local perm = mg.randperm(n)
    local Xs, Ys = X:index_select(1, perm), Y:index_select(1, perm)
    for first = 1, n, v.batch do
      local len = math.min(v.batch, n - first + 1)
      local loss = F.cross_entropy(net(Xs:narrow(1, first, len)), Ys:narrow(1, first, len))
      opt:zero_grad()
      loss:backward()
      opt:step()
    end
    seconds = seconds + (os.clock() - start)
    curve[#curve + 1] = {full_loss(net), seconds}
  end
  return curve
end

print(("Two-class spiral, N = %d, MLP 2-32-32-2 (tanh), cross-entropy, optim.SGD."):format(n))
local curves = {}
for i, v in ipairs(variants) do
  curves[i] = run(v)
  print(("  %-10s  batch %4d  lr %-5g  %6d steps"):format(v.name, v.batch, v.lr,
        epochs * ((n + v.batch - 1) // v.batch)))
end

-- The table: for each variant the loss over all N points and the CPU
-- seconds spent training so far, after 0, 1, 2, 5 epochs and then every
-- tenth of the run.
local header = {("%8s"):format("examples")}
for _, v in ipairs(variants) do header[#header + 1] = ("%18s"):format(v.name) end
print()
print(table.concat(header, "  "))
local sub = {("%8s"):format("seen")}
for _ = 1, #variants do sub[#sub + 1] = ("%9s %8s"):format("loss", "seconds") end
print(table.concat(sub, "  "))
local every = math.max(1, epochs // 10)
for e = 0, epochs do
  if e <= 2 or e == 5 or e % every == 0 or e == epochs then
    local row = {("%8d"):format(e * n)}
    for i = 1, #variants do
      local c = curves[i][e + 1]
      row[#row + 1] = ("%9.4f %8.3f"):format(c[1], c[2])
    end
    print(table.concat(row, "  "))
  end
end

-- When a curve first is at or below target: examples seen, seconds (nil
-- if it never is).
local function first_reaching(curve, target)
  for e = 1, #curve do
    if curve[e][1] <= target then return (e - 1) * n, curve[e][2] end
  end
end

print()
print("First reaching a loss (examples seen, seconds; - never, within the run):")
local targets, first = {0.6, 0.3, 0.1, 0.03}, {}
for k, target in ipairs(targets) do
  local row, best_e, best_s = {("  loss %-5g"):format(target)}, nil, nil
  for i, v in ipairs(variants) do
    local e, s = first_reaching(curves[i], target)
    row[#row + 1] = e and ("%s %d, %.3f s"):format(v.name, e, s) or v.name .. " -"
    if e and (not best_e or e < best_e[2]) then best_e = {v.name, e} end
    if e and (not best_s or s < best_s[2]) then best_s = {v.name, s} end
  end
  first[k] = {target, best_e, best_s}
  print(table.concat(row, "  |  "))
end

-- Cost per example (microseconds of CPU time) and the final losses.
local per_example, finals = {}, {}
for i, v in ipairs(variants) do
  local c = curves[i][#curves[i]]
  per_example[i] = 1e6 * c[2] / (epochs * n)
  finals[i] = ("%s %.4f"):format(v.name, c[1])
end

-- The summary, from the numbers above: who is first to each target.
local function winners(slot)
  local by, order = {}, {}
  for _, f in ipairs(first) do
    local w = f[slot]
    if w then
      if not by[w[1]] then by[w[1]] = {}; order[#order + 1] = w[1] end
      local list = by[w[1]]
      list[#list + 1] = ("%g"):format(f[1])
    end
  end
  local parts = {}
  for _, name in ipairs(order) do
    parts[#parts + 1] = ("%s (loss %s)"):format(name, table.concat(by[name], ", "))
  end
  return #parts > 0 and table.concat(parts, "; ") or "none reaches a target"
end
-- The cost per example, cheapest first, as this run measured it: one big
-- matrix product usually amortises the per-step overhead, but on a small
-- problem the timer's resolution and the cache can reorder them.
local function cost_sentence()
  local order = {1, 2, 3}
  table.sort(order, function(a, b) return per_example[a] < per_example[b] end)
  local parts = {}
  for k, i in ipairs(order) do
    parts[k] = ("%s %.2f us"):format(variants[i].name, per_example[i])
  end
  local why = order[1] == 1 and ": one big matrix product amortises the per-step overhead."
    or ", so on this problem the per-step overhead is not what dominates."
  return ("Per example seen, %s costs least (%s)%s"):format(variants[order[1]].name,
                                                         table.concat(parts, ", "), why)
end
local lines = {
  ("Summary. Each variant saw %d examples (%d epochs) from the same start."):format(
    epochs * n, epochs),
  ("First in examples seen: %s. First in CPU seconds: %s."):format(winners(2), winners(3)),
  cost_sentence(),
  "Full batch takes one step per epoch, so it learns least per example; batch 1 takes a"
    .. " step per example and learns most per example; batch 64 takes N/64 steps per epoch,"
    .. " which is why mini-batches are the usual choice.",
}
-- Wrap to 78 columns.
local text, out, line = table.concat(lines, " "), {}, ""
for word in text:gmatch("%S+") do
  if #line + #word + 1 > 78 then out[#out + 1] = line; line = word
  else line = line == "" and word or line .. " " .. word end
end
out[#out + 1] = line
print()
print(table.concat(out, "\n"))
print()
print("final loss: " .. table.concat(finals, ", "))
