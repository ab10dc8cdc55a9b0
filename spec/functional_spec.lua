-- moongrad.functional: forward values and gradients against PyTorch
-- (spec/fixtures/gen_functional.py), gradients against finite differences
-- (mg.gradcheck), dropout's randomness, float32, and error messages.
local mg = require "moongrad"
local F = require "moongrad.functional"
local approx = require "support.approx"
local ref = dofile("spec/fixtures/functional_ref.lua")

local TOL = 1e-10   -- float64 against PyTorch's float64
local TOL32 = 2e-5  -- float32 against the same references

local function f64(t) return mg.tensor(t, "float64") end
local function i64(t) return mg.tensor(t, "int64") end

local function check(got, expected, tol, what)
  tol = tol or TOL
  local ok, err = pcall(approx.assert_close, got, expected, tol, tol)
  if not ok then error((what or "value") .. ": " .. tostring(err), 2) end
end

-- "reduction=mean, weight, ignore_index=3" from an options table.
local function describe_opts(opts)
  local keys = {}
  for k in pairs(opts or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = opts[k]
    parts[#parts + 1] = type(v) == "table" and k or (k .. "=" .. tostring(v))
  end
  return #parts > 0 and table.concat(parts, ", ") or "defaults"
end

-- A copy of opts with its tables (class weights) as tensors of dtype dt.
local function tensor_opts(opts, dt)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = type(v) == "table" and mg.tensor(v, dt or "float64") or v end
  return o
end

local function upstream(g, dt) return type(g) == "table" and mg.tensor(g, dt or "float64") or g end

-- backward with g, which may be a number for a one-element result.
local function backward(y, g, dt)
  if type(g) == "number" then y:backward(mg.full(y:shape(), g, dt or "float64"))
  else y:backward(upstream(g, dt)) end
end

describe("F activations", function()
  for _, c in ipairs(ref.activations) do
    it(("match PyTorch for %s (%s)"):format(c.fn, describe_opts(c.opts)), function()
      local x = f64(c.x):requires_grad()
      local y = next(c.opts) and F[c.fn](x, c.opts) or F[c.fn](x)
      check(y, c.out, TOL, "out")
      y:backward(f64(c.g))
      check(x.grad, c.gx, TOL, "grad")
    end)
  end

  it("take their parameter as a plain number too", function()
    local x = f64({-2, 3})
    check(F.leaky_relu(x, 0.2), {-0.4, 3})
    check(F.elu(x, 0.5), {0.5 * (math.exp(-2) - 1), 3})
  end)

  it("match PyTorch in float32 within float32 precision", function()
    for _, c in ipairs(ref.activations) do
      local x = mg.tensor(c.x, "float32"):requires_grad()
      local y = next(c.opts) and F[c.fn](x, c.opts) or F[c.fn](x)
      assert.equal("float32", y:dtype())
      check(y, c.out, TOL32, c.fn .. " out")
      y:backward(mg.tensor(c.g, "float32"))
      check(x.grad, c.gx, TOL32, c.fn .. " grad")
    end
  end)
end)

describe("F.softmax and F.log_softmax", function()
  for _, c in ipairs(ref.softmax) do
    it(("match PyTorch for %s over dim %d of %s"):format(c.fn, c.dim,
       #c.x == 2 and "large logits" or "a [2,3,4] tensor"), function()
      local x = f64(c.x):requires_grad()
      local y = F[c.fn](x, c.dim)
      check(y, c.out, TOL, "out")
      y:backward(f64(c.g))
      check(x.grad, c.gx, TOL, "grad")
    end)
  end

  it("default to the last dim", function()
    local x = f64({{1, 2, 3}, {0, 0, 1}})
    check(F.softmax(x), F.softmax(x, -1):totable())
    check(F.log_softmax(x), F.log_softmax(x, 2):totable())
  end)

  it("stay finite on huge float32 logits", function()
    local y = F.softmax(mg.tensor({{1e30, 0}, {-3e38, 3e38}}, "float32"), -1)
    check(y, {{1, 0}, {0, 1}})
    local l = F.log_softmax(mg.tensor({1000, 0}, "float32"), 1)
    check(l, {0, -1000})
  end)

  it("read non-contiguous input", function()
    local x = f64({{1, 2}, {3, 5}, {0, -1}})
    check(F.softmax(x:t(), 1), F.softmax(x, 2):t():totable())
  end)
end)

describe("F.cross_entropy", function()
  for _, c in ipairs(ref.cross_entropy) do
    local shape = type(c.labels) == "number" and "[K] logits" or
                  (type(c.labels[1]) == "table" and "[N,K,d] logits" or "[N,K] logits")
    it(("matches PyTorch with class labels, %s, %s"):format(shape, describe_opts(c.opts)), function()
      local x = f64(c.logits):requires_grad()
      local loss = F.cross_entropy(x, i64(c.labels), tensor_opts(c.opts))
      check(loss, c.out, TOL, "out")
      backward(loss, c.g)
      check(x.grad, c.gx, TOL, "grad")
    end)
  end

  for _, c in ipairs(ref.cross_entropy_soft) do
    local shape = type(c.logits[1][1]) == "table" and "[N,K,d]" or "[N,K]"
    it(("matches PyTorch with class probabilities, %s, %s"):format(shape, describe_opts(c.opts)), function()
      local x, t = f64(c.logits):requires_grad(), f64(c.probs):requires_grad()
      local loss = F.cross_entropy(x, t, tensor_opts(c.opts))
      check(loss, c.out, TOL, "out")
      backward(loss, c.g)
      check(x.grad, c.gx, TOL, "grad logits")
      check(t.grad, c.gt, TOL, "grad targets")
    end)
  end

  it("matches PyTorch in float32 within float32 precision", function()
    for _, c in ipairs(ref.cross_entropy) do
      local x = mg.tensor(c.logits, "float32"):requires_grad()
      local loss = F.cross_entropy(x, i64(c.labels), tensor_opts(c.opts, "float32"))
      assert.equal("float32", loss:dtype())
      check(loss, c.out, TOL32, "out")
      backward(loss, c.g, "float32")
      check(x.grad, c.gx, TOL32, "grad")
    end
  end)

  it("equals nll_loss of log_softmax", function()
    local x = mg.randn(6, 4, "float64")
    local t = i64({1, 4, 2, 2, 3, 1})
    check(F.cross_entropy(x, t), F.nll_loss(F.log_softmax(x, 2), t):item())
  end)

  it("is finite for logits far beyond exp's range", function()
    local x = f64({{1000, -1000, 0}})
    check(F.cross_entropy(x, i64({1})), 0)
    check(F.cross_entropy(x, i64({2})), 2000)
  end)
end)

describe("F.nll_loss", function()
  for _, c in ipairs(ref.nll_loss) do
    local shape = type(c.labels[1]) == "table" and "[N,K,d]" or "[N,K]"
    it(("matches PyTorch, %s, %s"):format(shape, describe_opts(c.opts)), function()
      local x = f64(c.input):requires_grad()
      local loss = F.nll_loss(x, i64(c.labels), tensor_opts(c.opts))
      check(loss, c.out, TOL, "out")
      backward(loss, c.g)
      check(x.grad, c.gx, TOL, "grad")
    end)
  end
end)

describe("F elementwise losses", function()
  for _, c in ipairs(ref.pointwise) do
    it(("match PyTorch for %s (%s)"):format(c.fn, describe_opts(c.opts)), function()
      local a, b = f64(c.a):requires_grad(), f64(c.b):requires_grad()
      local loss = F[c.fn](a, b, tensor_opts(c.opts))
      check(loss, c.out, TOL, "out")
      backward(loss, c.g)
      check(a.grad, c.ga, TOL, "grad input")
      check(b.grad, c.gb, TOL, "grad target")
    end)
  end

  it("match PyTorch in float32 within float32 precision", function()
    for _, c in ipairs(ref.pointwise) do
      if #c.a == 3 then -- the clamped BCE case has gradients of 1e11 and inf
        local a = mg.tensor(c.a, "float32"):requires_grad()
        local loss = F[c.fn](a, mg.tensor(c.b, "float32"), tensor_opts(c.opts, "float32"))
        check(loss, c.out, TOL32, c.fn .. " out")
        backward(loss, c.g, "float32")
        check(a.grad, c.ga, TOL32, c.fn .. " grad")
      end
    end
  end)

  it("default to the mean", function()
    local a, b = f64({1, 2, 3}), f64({1, 0, 0})
    check(F.mse_loss(a, b), 13 / 3)
    check(F.l1_loss(a, b, {reduction = "sum"}), 5)
  end)

  it("binary_cross_entropy_with_logits stays finite for huge logits", function()
    local z, y = f64({800, -800}), f64({0, 1})
    check(F.binary_cross_entropy_with_logits(z, y, {reduction = "none"}), {800, 800})
  end)
end)

describe("F.linear", function()
  for _, c in ipairs(ref.linear) do
    local dims = type(c.x[1]) ~= "table" and "1-D" or (type(c.x[1][1]) == "table" and "3-D" or "2-D")
    it(("matches PyTorch for %s input %s bias"):format(dims, c.b and "with" or "without"), function()
      local x, w = f64(c.x):requires_grad(), f64(c.w):requires_grad()
      local b = c.b and f64(c.b):requires_grad()
      local y = F.linear(x, w, b)
      check(y, c.out, TOL, "out")
      y:backward(f64(c.g))
      check(x.grad, c.gx, TOL, "grad x")
      check(w.grad, c.gw, TOL, "grad w")
      if b then check(b.grad, c.gb, TOL, "grad b") end
    end)
  end

  it("gives the bias alone (or zeros) when the input has no features", function()
    local b = mg.tensor({1, 2, 3, 4}, "float32")
    assert.same({{1, 2, 3, 4}, {1, 2, 3, 4}, {1, 2, 3, 4}},
                F.linear(mg.zeros(3, 0), mg.zeros(4, 0), b):totable())
    assert.same({{0, 0, 0, 0}, {0, 0, 0, 0}}, F.linear(mg.zeros(2, 0), mg.zeros(4, 0)):totable())
  end)

  it("reads a transposed weight view (tied weights) as it lies", function()
    local c = ref.linear[1]
    local wt = f64(c.w):t():contiguous():requires_grad() -- [in, out]
    local x = f64(c.x)
    local y = F.linear(x, wt:t(), f64(c.b))
    check(y, c.out)
    y:backward(f64(c.g))
    check(wt.grad:t(), c.gw)
  end)

  it("matches PyTorch in float32 within float32 precision", function()
    local c = ref.linear[1]
    local x, w = mg.tensor(c.x, "float32"):requires_grad(), mg.tensor(c.w, "float32"):requires_grad()
    local b = mg.tensor(c.b, "float32"):requires_grad()
    local y = F.linear(x, w, b)
    check(y, c.out, TOL32)
    y:backward(mg.tensor(c.g, "float32"))
    check(x.grad, c.gx, TOL32)
    check(w.grad, c.gw, TOL32)
    check(b.grad, c.gb, TOL32)
  end)

  it("agrees with matmul on larger shapes", function()
    local x, w, b = mg.randn(37, 70, "float64"), mg.randn(45, 70, "float64"), mg.randn(45, "float64")
    local want = (x:matmul(w:t()) + b):totable()
    check(F.linear(x, w, b), want, 1e-12)
  end)
end)

describe("F.embedding", function()
  for _, c in ipairs(ref.embedding) do
    it(("matches PyTorch with %s"):format(describe_opts(c.opts)), function()
      local w = f64(c.weight):requires_grad()
      local y = F.embedding(i64(c.ids), w, c.opts)
      check(y, c.out, TOL, "out")
      y:backward(f64(c.g))
      check(w.grad, c.gw, TOL, "grad")
    end)
  end

  it("accumulates the gradient of repeated ids", function()
    local w = mg.zeros({3, 2}, "float64"):requires_grad()
    F.embedding(i64({2, 2, 2, 1}), w):sum():backward()
    check(w.grad, {{1, 1}, {3, 3}, {0, 0}})
  end)
end)

describe("F.layer_norm", function()
  for _, c in ipairs(ref.layer_norm) do
    it(("matches PyTorch over %d trailing dims %s affine (eps=%g)"):format(#c.shape,
       c.w and "with" or "without", c.opts.eps), function()
      local x = f64(c.x):requires_grad()
      local w = c.w and f64(c.w):requires_grad()
      local b = c.b and f64(c.b):requires_grad()
      local y = F.layer_norm(x, c.shape, w, b, c.opts)
      check(y, c.out, TOL, "out")
      y:backward(f64(c.g))
      check(x.grad, c.gx, TOL, "grad x")
      if w then check(w.grad, c.gw, TOL, "grad w") end
      if b then check(b.grad, c.gb, TOL, "grad b") end
    end)
  end

  it("accepts a single size for normalized_shape", function()
    local x = f64({{1, 2, 3}})
    check(F.layer_norm(x, 3), F.layer_norm(x, {3}):totable())
  end)

  it("keeps a row's variance when its values sit far from zero", function()
    -- Deviations ±0.5e-3 and ±1.5e-3 about 1e4: variance 1.25e-6, which
    -- E[x²] - E[x]² in double (squares near 1e8) gets wrong by about 1%.
    local d = {-1.5, -0.5, 0.5, 1.5}
    local x = f64({{1e4 - 1.5e-3, 1e4 - 0.5e-3, 1e4 + 0.5e-3, 1e4 + 1.5e-3}})
    local y = F.layer_norm(x, 4, nil, nil, {eps = 0})
    local want = {}
    for j = 1, 4 do want[j] = d[j] / math.sqrt(1.25) end
    check(y, {want}, 1e-6)
  end)

  it("computes float32 rows and gradients to float32 precision", function()
    -- 2 rows of 21: eight-wide runs and a tail. Reference: the formulas in
    -- double, in Lua.
    mg.manual_seed(12)
    local D = 21
    local x = (mg.randn(2, D) * 2 + 5):requires_grad()
    local w, b = mg.randn(D):requires_grad(), mg.randn(D):requires_grad()
    local g = mg.randn(2, D)
    local y = F.layer_norm(x, D, w, b)
    y:backward(g)
    local xt, wt, bt, gt = x:totable(), w:totable(), b:totable(), g:totable()
    local wy, wgx, wgw, wgb = {}, {}, {}, {}
    for j = 1, D do wgw[j], wgb[j] = 0, 0 end
    for i = 1, 2 do
      local m, v = 0, 0
      for j = 1, D do m = m + xt[i][j] / D end
      for j = 1, D do v = v + (xt[i][j] - m) ^ 2 / D end
      local r, a, c = 1 / math.sqrt(v + 1e-5), 0, 0
      wy[i], wgx[i] = {}, {}
      for j = 1, D do
        local h = (xt[i][j] - m) * r
        wy[i][j] = h * wt[j] + bt[j]
        a, c = a + gt[i][j] * wt[j] / D, c + gt[i][j] * wt[j] * h / D
        wgw[j], wgb[j] = wgw[j] + gt[i][j] * h, wgb[j] + gt[i][j]
      end
      for j = 1, D do
        wgx[i][j] = r * (gt[i][j] * wt[j] - a - (xt[i][j] - m) * r * c)
      end
    end
    check(y, wy, 2e-5, "out")
    check(x.grad, wgx, 2e-5, "grad x")
    check(w.grad, wgw, 2e-5, "grad w")
    check(b.grad, wgb, 2e-5, "grad b")
  end)
end)

describe("F.batch_norm", function()
  for _, c in ipairs(ref.batch_norm) do
    it(("matches PyTorch for %s input, %s, %s running stats, %s affine"):format(
       #c.x[1] == 3 and type(c.x[1][1]) == "table" and "[N,C,L]" or "[N,C]",
       describe_opts(c.opts), c.running_mean and "with" or "without",
       c.w and "with" or (c.b and "bias-only" or "without")), function()
      local x = f64(c.x):requires_grad()
      local w = c.w and f64(c.w):requires_grad()
      local b = c.b and f64(c.b):requires_grad()
      local rm = c.running_mean and f64(c.running_mean)
      local rv = c.running_var and f64(c.running_var)
      local y = F.batch_norm(x, rm, rv, w, b, c.opts)
      check(y, c.out, TOL, "out")
      if rm then
        check(rm, c.new_running_mean, TOL, "running_mean")
        check(rv, c.new_running_var, TOL, "running_var")
      end
      y:backward(f64(c.g))
      check(x.grad, c.gx, TOL, "grad x")
      if w then check(w.grad, c.gw, TOL, "grad w") end
      if b then check(b.grad, c.gb, TOL, "grad b") end
    end)
  end

  it("updates float32 running statistics of a float32 batch", function()
    local c = ref.batch_norm[1]
    local rm, rv = mg.tensor(c.running_mean, "float32"), mg.tensor(c.running_var, "float32")
    local y = F.batch_norm(mg.tensor(c.x, "float32"), rm, rv, mg.tensor(c.w, "float32"),
                           mg.tensor(c.b, "float32"), c.opts)
    check(y, c.out, TOL32)
    check(rm, c.new_running_mean, TOL32)
    check(rv, c.new_running_var, TOL32)
  end)

  it("keeps float32 statistics exact for a channel far from zero (mean 1e4, spread 1e-2)", function()
    -- [N=64, C=1, L=40] around 1e4, float32; the reference is the mean and
    -- biased variance of the values held, in Lua doubles.
    local vals, n = {}, 64 * 40
    for i = 1, n do vals[i] = 1e4 + 0.01 * math.sin(i * 0.37) end
    local x = mg.tensor(vals, "float32")
    local held = x:totable()
    local mean, ss = 0, 0
    for i = 1, n do mean = mean + held[i] end
    mean = mean / n
    for i = 1, n do ss = ss + (held[i] - mean) ^ 2 end
    local rm, rv = mg.zeros(1, "float64"), mg.zeros(1, "float64")
    local y = F.batch_norm(x:reshape({64, 40, 1}):permute(1, 3, 2), rm, rv, nil, nil,
                           {momentum = 1}):reshape({n}):totable()
    check(rm, {mean}, 1e-12)
    check(rv, {ss / (n - 1)}, 1e-12)
    local rstd = 1 / math.sqrt(ss / n + 1e-5)
    local worst = 0
    for i = 1, n do worst = math.max(worst, math.abs(y[i] - (held[i] - mean) * rstd)) end
    assert.is_true(worst < 2e-6, ("largest error %g"):format(worst))
  end)

  it("leaves the running statistics alone in eval mode", function()
    local rm, rv = f64({0.5, -0.5}), f64({2, 3})
    F.batch_norm(mg.randn(4, 2, "float64"), rm, rv, nil, nil, {training = false})
    check(rm, {0.5, -0.5})
    check(rv, {2, 3})
  end)

  it("does not record the running statistics' update", function()
    local x = mg.randn(4, 2, "float64"):requires_grad()
    local rm, rv = f64({0, 0}), f64({1, 1})
    F.batch_norm(x, rm, rv):sum():backward()
    assert.is_nil(rm:grad_fn())
    assert.is_false(rm:is_requires_grad())
  end)
end)

describe("F.dropout", function()
  it("draws its mask from the state's generator: mask == (rand < 1 - p)", function()
    for _, dt in ipairs({"float32", "float64"}) do
      mg.manual_seed(7)
      local x = mg.ones({5, 7}, dt)
      local y = F.dropout(x, 0.3, true)
      mg.manual_seed(7)
      local keep = mg.rand({5, 7}, dt):lt(0.7)
      check(y, (keep / 0.7):totable(), dt == "float32" and 1e-6 or 1e-15)
    end
  end)

  it("scales kept elements by 1 / (1 - p) and routes the gradient through the mask", function()
    mg.manual_seed(3)
    local x = mg.randn(20, 30, "float64"):requires_grad()
    local y = F.dropout(x, 0.25, true)
    local g = mg.randn(20, 30, "float64")
    y:backward(g)
    local xs, ys, gs, gxs = x:detach():reshape(-1):totable(), y:detach():reshape(-1):totable(),
                            g:reshape(-1):totable(), x.grad:reshape(-1):totable()
    local zeros = 0
    for i = 1, #xs do
      if ys[i] == 0 then
        zeros = zeros + 1
        assert.equal(0, gxs[i])
      else
        assert.is_true(math.abs(ys[i] - xs[i] / 0.75) < 1e-12)
        assert.is_true(math.abs(gxs[i] - gs[i] / 0.75) < 1e-12)
      end
    end
    assert.is_true(zeros > 100 and zeros < 200, "about a quarter dropped, got " .. zeros)
  end)

  it("is the identity when not training or when p is 0", function()
    local x = mg.randn(3, 4)
    assert.equal(x, F.dropout(x, 0.5, false))
    assert.equal(x, F.dropout(x, 0, true))
  end)

  it("gives zeros for p = 1 and a zero gradient", function()
    local x = mg.randn(3, 4, "float64"):requires_grad()
    local y = F.dropout(x, 1, true)
    check(y, mg.zeros(3, 4):totable())
    y:sum():backward()
    check(x.grad, mg.zeros(3, 4):totable())
  end)

  it("defaults to p = 0.5 in training", function()
    mg.manual_seed(11)
    local y = F.dropout(mg.ones(1000))
    local kept = y:gt(0):sum():item()
    assert.is_true(kept > 400 and kept < 600)
    assert.equal(2, y:max():item())
  end)

  it("advances the generator like rand of the same shape", function()
    mg.manual_seed(5)
    F.dropout(mg.ones(9, "float64"), 0.5, true)
    local after = mg.rand(3, "float64"):totable()
    mg.manual_seed(5)
    mg.rand(9, "float64")
    check(mg.rand(3, "float64"), after, 0)
  end)
end)

describe("F gradients agree with finite differences", function()
  local function r(...) return mg.randn({...}, "float64"):requires_grad() end
  local labels = i64({2, 1, 3, 3})
  local cases = {
    {"leaky_relu", function(x) return F.leaky_relu(x, 0.1) end, {r(3, 4)}},
    {"elu", function(x) return F.elu(x, {alpha = 1.3}) end, {r(3, 4)}},
    {"gelu", function(x) return F.gelu(x) end, {r(3, 4)}},
    {"gelu tanh", function(x) return F.gelu(x, {approximate = "tanh"}) end, {r(3, 4)}},
    {"silu", function(x) return F.silu(x) end, {r(3, 4)}},
    {"softmax over dim 2 of 3", function(x) return F.softmax(x, 2) end, {r(2, 3, 4)}},
    {"log_softmax over dim 1", function(x) return F.log_softmax(x, 1) end, {r(3, 4)}},
    {"linear", function(x, w, b) return F.linear(x, w, b) end, {r(2, 3, 4), r(5, 4), r(5)}},
    {"cross_entropy with everything", function(x)
      return F.cross_entropy(x, labels, {weight = f64({0.5, 2, 1}), ignore_index = 1,
                                         label_smoothing = 0.2, reduction = "none"})
    end, {r(4, 3)}},
    {"cross_entropy with probabilities", function(x, t)
      return F.cross_entropy(x, t, {label_smoothing = 0.1})
    end, {r(4, 3), r(4, 3)}},
    {"nll_loss", function(x) return F.nll_loss(x, labels, {weight = f64({1, 2, 3})}) end, {r(4, 3)}},
    {"smooth_l1_loss", function(a, b) return F.smooth_l1_loss(a, b, {beta = 0.7}) end, {r(3, 4), r(3, 4)}},
    {"huber_loss", function(a, b) return F.huber_loss(a, b, {delta = 0.7, reduction = "sum"}) end, {r(3, 4), r(3, 4)}},
    {"binary_cross_entropy", function(p, y)
      return F.binary_cross_entropy(p, y, {weight = f64({1, 2, 0.5})})
    end, {f64({{0.2, 0.6, 0.9}, {0.45, 0.3, 0.7}}):requires_grad(), f64({{0, 1, 0.3}, {1, 0.5, 0}}):requires_grad()}},
    {"binary_cross_entropy_with_logits", function(z, y)
      return F.binary_cross_entropy_with_logits(z, y, {pos_weight = f64({2, 0.5, 1})})
    end, {r(2, 3), f64({{0, 1, 0.3}, {1, 0.5, 0}}):requires_grad()}},
    {"embedding", function(w) return F.embedding(i64({{1, 3}, {3, 2}}), w) end, {r(4, 3)}},
    {"layer_norm", function(x, w, b) return F.layer_norm(x, {3, 4}, w, b) end, {r(2, 3, 4), r(3, 4), r(3, 4)}},
    {"batch_norm in training", function(x, w, b) return F.batch_norm(x, nil, nil, w, b) end, {r(4, 3, 2), r(3), r(3)}},
    {"batch_norm in eval", function(x, w, b)
      return F.batch_norm(x, f64({0.1, 0.2, 0.3}), f64({1, 2, 3}), w, b, {training = false})
    end, {r(4, 3), r(3), r(3)}},
  }
  for _, c in ipairs(cases) do
    it("for " .. c[1], function()
      assert.is_true(mg.gradcheck(c[2], c[3]))
    end)
  end
end)

-- Inputs past the size where loops split across threads and sums across
-- fixed chunks: checked against plain Lua loops, against the same op on
-- single-chunk slices, and for identical results on 1 and 2 threads.
describe("F on large inputs", function()
  local threads
  before_each(function() threads = mg.get_num_threads() end)
  after_each(function() mg.set_num_threads(threads) end)

  -- fn() run on 1 and then 2 threads gives the same tensors.
  local function same_on_threads(fn)
    mg.set_num_threads(1)
    local a = {fn()}
    mg.set_num_threads(2)
    local b = {fn()}
    for i = 1, #a do check(b[i], a[i]:totable(), 0, "result " .. i) end
    return table.unpack(a)
  end

  local function flat(t) return t:reshape(-1):totable() end

  it("cross_entropy sums its chunks like the slices they hold", function()
    mg.manual_seed(1)
    local x, t = mg.randn(2000, 40, "float64"), mg.randint(1, 40, {2000})
    local opts = {weight = mg.rand(40, "float64"), ignore_index = 7, label_smoothing = 0.1, reduction = "sum"}
    local loss, grad = same_on_threads(function()
      local xr = x:detach():requires_grad()
      local l = F.cross_entropy(xr, t, opts)
      l:backward()
      return l, xr.grad
    end)
    local total, grads = 0, {}
    for s = 1, 2000, 100 do
      local xs = x:narrow(1, s, 100):contiguous():requires_grad()
      local l = F.cross_entropy(xs, t:narrow(1, s, 100):contiguous(), opts)
      l:backward()
      total = total + l:item()
      for _, v in ipairs(flat(xs.grad)) do grads[#grads + 1] = v end
    end
    check(loss, total, 1e-12)
    check(flat(grad), grads, 1e-14)
  end)

  it("elementwise losses match a plain sum", function()
    mg.manual_seed(2)
    local a, b = mg.randn(300, 300, "float64"), mg.randn(300, 300, "float64")
    local loss = same_on_threads(function() return F.mse_loss(a, b, {reduction = "sum"}) end)
    local av, bv, sum = flat(a), flat(b), 0
    for i = 1, #av do sum = sum + (av[i] - bv[i]) ^ 2 end
    check(loss, sum, 1e-12)
  end)

  it("softmax rows sum to one", function()
    mg.manual_seed(3)
    local x = mg.randn(300, 200, "float64")
    local y = same_on_threads(function() return F.softmax(x, 2) end)
    check(y:sum(2), mg.ones(300):totable(), 1e-13)
    same_on_threads(function() return F.log_softmax(x, 1) end)
  end)

  it("layer_norm normalizes every row and sums parameter gradients over rows", function()
    mg.manual_seed(4)
    local x, g = mg.randn(300, 256, "float64") * 3 + 1, mg.randn(300, 256, "float64")
    local w, b = mg.randn(256, "float64"), mg.randn(256, "float64")
    local y, gx, gw, gb = same_on_threads(function()
      local xr, wr, br = x:detach():requires_grad(), w:detach():requires_grad(), b:detach():requires_grad()
      local out = F.layer_norm(xr, {256}, wr, br)
      out:backward(g)
      return out, xr.grad, wr.grad, br.grad
    end)
    local h = ((y - b) / w):totable()
    local gt, xt, want_w, want_b = g:totable(), x:totable(), {}, {}
    for j = 1, 256 do want_w[j], want_b[j] = 0, 0 end
    for i = 1, 300 do
      local m, v = 0, 0
      for j = 1, 256 do m = m + h[i][j] end
      for j = 1, 256 do v = v + h[i][j] ^ 2 end
      assert.is_true(math.abs(m / 256) < 1e-9 and math.abs(v / 256 - 1) < 1e-4, "row " .. i)
      local mu, var = 0, 0
      for j = 1, 256 do mu = mu + xt[i][j] end
      mu = mu / 256
      for j = 1, 256 do var = var + (xt[i][j] - mu) ^ 2 end
      local r = 1 / math.sqrt(var / 256 + 1e-5)
      for j = 1, 256 do
        want_w[j] = want_w[j] + gt[i][j] * (xt[i][j] - mu) * r
        want_b[j] = want_b[j] + gt[i][j]
      end
    end
    check(gw, want_w, 1e-10)
    check(gb, want_b, 1e-10)
    check(gx:sum(2), mg.zeros(300):totable(), 1e-9) -- gx is orthogonal to 1 per row
  end)

  it("batch_norm uses exact batch statistics and updates the running ones", function()
    mg.manual_seed(5)
    local x, g = mg.randn(3000, 4, 8, "float64") * 2 - 1, mg.randn(3000, 4, 8, "float64")
    local rm0, rv0 = mg.rand(4, "float64"), mg.rand(4, "float64") + 1
    local rm, rv, y, gx, gw, gb = same_on_threads(function()
      local rm, rv = rm0:clone(), rv0:clone()
      local xr = x:detach():requires_grad()
      local w, b = mg.ones(4, "float64"):requires_grad(), mg.zeros(4, "float64"):requires_grad()
      local out = F.batch_norm(xr, rm, rv, w, b, {momentum = 0.2})
      out:backward(g)
      return rm, rv, out, xr.grad, w.grad, b.grad
    end)
    local xt, yt, gt, gxt = x:totable(), y:totable(), g:totable(), gx:totable()
    local n = 3000 * 8
    for c = 1, 4 do
      local mu, var, ym, yv, sg, sgh, sgx = 0, 0, 0, 0, 0, 0, 0
      for i = 1, 3000 do for j = 1, 8 do mu = mu + xt[i][c][j] end end
      mu = mu / n
      for i = 1, 3000 do for j = 1, 8 do var = var + (xt[i][c][j] - mu) ^ 2 end end
      local r = 1 / math.sqrt(var / n + 1e-5)
      for i = 1, 3000 do
        for j = 1, 8 do
          ym, yv = ym + yt[i][c][j], yv + yt[i][c][j] ^ 2
          sg, sgh = sg + gt[i][c][j], sgh + gt[i][c][j] * (xt[i][c][j] - mu) * r
          sgx = sgx + gxt[i][c][j]
        end
      end
      assert.is_true(math.abs(ym / n) < 1e-10 and math.abs(yv / n - var / n * r * r) < 1e-10)
      check(rm:totable()[c], 0.8 * rm0:totable()[c] + 0.2 * mu, 1e-12)
      check(rv:totable()[c], 0.8 * rv0:totable()[c] + 0.2 * var / (n - 1), 1e-12)
      check(gb:totable()[c], sg, 1e-10)
      check(gw:totable()[c], sgh, 1e-10)
      assert.is_true(math.abs(sgx) < 1e-8, "channel gradient sums to zero")
    end
  end)

  it("embedding accumulates every row of a large batch", function()
    mg.manual_seed(6)
    local ids, g = mg.randint(1, 50, {4000}), mg.randn(4000, 16, "float64")
    local gw = same_on_threads(function()
      local w = mg.zeros({50, 16}, "float64"):requires_grad()
      F.embedding(ids, w):backward(g)
      return w.grad
    end)
    local want, idt, gt = {}, ids:totable(), g:totable()
    for v = 1, 50 do want[v] = {} for d = 1, 16 do want[v][d] = 0 end end
    for i = 1, 4000 do for d = 1, 16 do want[idt[i]][d] = want[idt[i]][d] + gt[i][d] end end
    check(gw, want, 1e-12)
  end)

  it("dropout draws the same mask on any thread count", function()
    same_on_threads(function()
      mg.manual_seed(9)
      return F.dropout(mg.ones(300, 300), 0.4, true)
    end)
  end)
end)

describe("F errors", function()
  local function fails(pattern, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error matching " .. pattern)
    assert.is_truthy(tostring(err):find(pattern, 1, true),
                     ("expected %q in %q"):format(pattern, tostring(err)))
  end
  local logits = mg.zeros(4, 10)

  it("name mismatched cross_entropy targets", function()
    fails("cross_entropy: targets of shape [3] do not match logits of shape [4,10]",
          F.cross_entropy, logits, i64({1, 2, 3}))
    fails("cross_entropy: target 11 out of range for 10 classes", F.cross_entropy, logits, i64({1, 2, 3, 11}))
    fails("cross_entropy: target 0 out of range", F.cross_entropy, logits, i64({0, 2, 3, 1}))
    fails("must have the logits' shape [4,10], got [4]", F.cross_entropy, logits, mg.zeros(4))
    fails("cross_entropy: weight of shape [3] does not match the 10 classes",
          F.cross_entropy, logits, i64({1, 2, 3, 4}), {weight = mg.ones(3)})
    fails("ignore_index is not supported with class-probability", F.cross_entropy, logits,
          mg.zeros(4, 10), {ignore_index = 1})
    fails("label_smoothing must be between 0 and 1, got 1.5", F.cross_entropy, logits,
          i64({1, 2, 3, 4}), {label_smoothing = 1.5})
  end)

  it("reject unknown options and bad option values", function()
    fails("cross_entropy: unknown option 'smoothing'", F.cross_entropy, logits, i64({1, 2, 3, 4}), {smoothing = 0.1})
    fails("reduction must be 'none', 'mean' or 'sum', got 'avg'", F.mse_loss, logits, logits, {reduction = "avg"})
    fails("option 'label_smoothing' must be a number, got string", F.cross_entropy, logits,
          i64({1, 2, 3, 4}), {label_smoothing = "a"})
    fails("option 'ignore_index' must be an integer, got 1.5", F.nll_loss, logits, i64({1, 2, 3, 4}), {ignore_index = 1.5})
    fails("gelu: approximate must be 'none' or 'tanh', got 'fast'", F.gelu, logits, {approximate = "fast"})
    fails("options must be a table, got string", F.layer_norm, logits, {10}, nil, nil, "eps")
  end)

  it("name a class weight that requires grad", function()
    fails("cross_entropy: weight is not differentiable", F.cross_entropy, logits, i64({1, 2, 3, 4}),
          {weight = mg.ones(10):requires_grad()})
  end)

  it("name non-tensor arguments", function()
    fails("linear: weight must be a tensor, got nil", F.linear, logits)
    fails("cross_entropy: targets must be a tensor, got table", F.cross_entropy, logits, {1, 2})
  end)

  it("name mismatched shapes in linear, losses and norms", function()
    fails("linear: input of shape [4,10] does not fit weight of shape [3,5]", F.linear, logits, mg.zeros(3, 5))
    fails("linear: bias of shape [4] does not fit weight of shape [3,10]", F.linear, logits, mg.zeros(3, 10), mg.zeros(4))
    fails("mse_loss: input of shape [4,10] and target of shape [4] differ", F.mse_loss, logits, mg.zeros(4))
    fails("binary_cross_entropy: weight of shape [3] does not broadcast to input of shape [4,10]",
          F.binary_cross_entropy, logits, logits, {weight = mg.ones(3)})
    fails("layer_norm: normalized_shape [5] does not match the trailing dimensions of input of shape [4,10]",
          F.layer_norm, logits, {5})
    fails("layer_norm: weight of shape [4] does not match normalized_shape [10]", F.layer_norm, logits, {10}, mg.ones(4))
    fails("batch_norm: running_mean of shape [4] does not match the 10 channels of input of shape [4,10]",
          F.batch_norm, logits, mg.zeros(4), mg.ones(4))
    fails("batch_norm: expected more than 1 value per channel when training, got input of shape [1,10]",
          F.batch_norm, mg.zeros(1, 10), nil, nil)
    fails("batch_norm: running_mean and running_var must be given together", F.batch_norm, logits, mg.zeros(10), nil)
  end)

  it("name bad probabilities, ids and dropout rates", function()
    fails("binary_cross_entropy: input values must be probabilities between 0 and 1, got 1.5 at position 2",
          F.binary_cross_entropy, mg.tensor({0.5, 1.5}), mg.tensor({0, 1}))
    fails("embedding: id 11 out of range for 10 embeddings", F.embedding, i64({1, 11}), mg.zeros(10, 3))
    fails("embedding: ids must be int64, got float32", F.embedding, mg.tensor({1, 2}), mg.zeros(10, 3))
    fails("dropout: probability must be between 0 and 1, got 1.5", F.dropout, logits, 1.5, true)
    fails("softmax: dimension 3 out of range for a 2-dimensional tensor", F.softmax, logits, 3)
  end)
end)
