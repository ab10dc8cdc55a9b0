-- Reproducible training: the same seed and thread count give the same bits;
-- deterministic mode (mg.use_deterministic_algorithms) gives the same bits
-- for any thread count.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local data = require "moongrad.data"
local train = require "moongrad.train"

-- The first n Fashion-MNIST training images, standardised, flat or not.
local function subset(n, flat)
  local x, y = data.fashion_mnist {split = "train"}
  x, y = x:narrow(1, 1, n), y:narrow(1, 1, n)
  x = (x - 0.286) / 0.353
  if flat then x = x:reshape(n, 784) end
  return x, y
end

local function mlp()
  return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                       nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
end

local function cnn()
  return nn.Sequential(nn.Conv2d(1, 8, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Conv2d(8, 16, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                       nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
end

-- Trains a fresh model for a few Adam steps on shuffled batches with the
-- given thread count; returns its parameters and the batch losses.
local function run(make, flat, threads)
  local saved = mg.get_num_threads()
  mg.set_num_threads(threads)
  mg.manual_seed(7)
  local x, y = subset(512, flat)
  local model = make()
  local loader = data.DataLoader(data.TensorDataset(x, y), {batch_size = 128, shuffle = true})
  local history = train.fit(model, {train = loader, optimizer = optim.Adam(model, {lr = 1e-3}),
                                    loss = F.cross_entropy, epochs = 2, progress = "quiet"})
  mg.set_num_threads(saved)
  local params = {}
  for _, p in ipairs(model:parameters()) do params[#params + 1] = p:detach():clone() end
  return params, history.batch_loss
end

-- Bit for bit: every element equal (and no NaN).
local function same_bits(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i]:numel() ~= b[i]:numel() or a[i]:eq(b[i]):sum():item() ~= a[i]:numel() then
      return false
    end
  end
  return true
end

local function same_losses(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

describe("determinism", function()
  after_each(function() mg.use_deterministic_algorithms(false) end)

  it("trains an MLP to the same losses and weights twice with the same seed and threads", function()
    local p1, l1 = run(mlp, true, 2)
    local p2, l2 = run(mlp, true, 2)
    assert.is_true(same_losses(l1, l2))
    assert.is_true(same_bits(p1, p2))
  end)

  it("is off by default and reports its setting", function()
    assert.is_false(mg.are_deterministic_algorithms_enabled())
    mg.use_deterministic_algorithms(true)
    assert.is_true(mg.are_deterministic_algorithms_enabled())
  end)

  it("gives the same product on 1, 2 and 4 threads where OpenBLAS's threaded split differs", function()
    mg.use_deterministic_algorithms(true)
    mg.manual_seed(3)
    local saved = mg.get_num_threads()
    for _, s in ipairs({{128, 784, 512}, {200, 450, 300}, {784, 128, 512}}) do
      local a, b = mg.randn(s[1], s[2]), mg.randn(s[2], s[3])
      local r = {}
      for _, t in ipairs({1, 2, 4}) do
        mg.set_num_threads(t)
        r[#r + 1] = a:matmul(b)
        r[#r + 1] = a:t():t():matmul(b:t():contiguous():t()) -- transposed layouts
      end
      assert.is_true(same_bits({r[1], r[2], r[1], r[2]}, {r[3], r[4], r[5], r[6]}))
    end
    mg.set_num_threads(saved)
  end)

  for _, case in ipairs({{"an MLP", mlp, true}, {"a small CNN", cnn, false}}) do
    it("trains " .. case[1] .. " to the same bits on 1 and 2 threads in deterministic mode", function()
      mg.use_deterministic_algorithms(true)
      local p1, l1 = run(case[2], case[3], 1)
      local p2, l2 = run(case[2], case[3], 2)
      assert.is_true(same_losses(l1, l2))
      assert.is_true(same_bits(p1, p2))
    end)
  end
end)
