-- The float32 transcendental kernels (runtime/mg_vmath.h): exp, expm1, tanh,
-- sigmoid, and the activations and softmax built on them, measured in ulps
-- against references computed in Lua in double (math.exp is libm's) and
-- rounded to float32. Their errors are 0 but for rare double-rounding
-- cases, so the bounds are tight: a wrong low-order coefficient shows up as
-- 2 ulps, a broken reduction or clamp as thousands. Errors too small to
-- move a float32 are caught by the float64 cross_entropy case, which sees
-- the double exp itself.
local mg = require "moongrad"
local F = require "moongrad.functional"
local approx = require "support.approx"
local f32 = approx.f32

local nan, inf = 0 / 0, math.huge
local exp = math.exp

-- ---- measuring ulps ---------------------------------------------------------

-- A float32 value's position on the line of float32 values (-0 and +0 are
-- both 0), so that neighbours differ by 1.
local function ord(x)
  local i = string.unpack("<i4", string.pack("<f", x))
  return i < 0 and -2147483648 - i or i
end

-- The distance in float32 ulps between a result and its reference; NaN
-- must match NaN.
local function ulps(got, want)
  if want ~= want or got ~= got then return (want ~= want and got ~= got) and 0 or inf end
  return math.abs(ord(got) - ord(want))
end

-- The largest error of f (a tensor -> tensor function) over xs against
-- ref (number -> number), and where it was.
local function max_ulps(f, ref, xs)
  local got = f(mg.tensor(xs, "float32")):totable()
  local worst, at = 0, nil
  for i, x in ipairs(xs) do
    local e = ulps(got[i], f32(ref(x)))
    if e > worst then worst, at = e, x end
  end
  return worst, at
end

local function assert_within(bound, f, ref, xs, what)
  local worst, at = max_ulps(f, ref, xs)
  if worst > bound then
    error(("%s: %s ulp at x = %.9g (bound %d)"):format(what, worst, at, bound), 2)
  end
end

-- ---- references, in double --------------------------------------------------

local function ref_exp(x) return exp(x) end

-- Below 1e-2 the series (next term ~x^11/100), where exp(x) - 1 would
-- cancel; above, the cancellation costs at most 7 of 53 bits.
local function ref_expm1(x)
  if math.abs(x) < 1e-2 then
    return x + x * x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x * (1 / 120 + x / 720))))
  end
  return exp(x) - 1
end

local function ref_tanh(x)
  local a = math.abs(x)
  local t
  if a ~= a then return x
  elseif a > 20 then t = 1
  elseif a < 1e-2 then
    local a2 = a * a
    t = a * (1 + a2 * (-1 / 3 + a2 * (2 / 15 + a2 * (-17 / 315 + a2 * 62 / 2835))))
  else
    local e = exp(2 * a)
    t = (e - 1) / (e + 1)
  end
  return x < 0 and -t or t
end

local function ref_sigmoid(x) return 1 / (1 + exp(-x)) end

-- ---- inputs -------------------------------------------------------------------

-- Every input rounded to float32 first: the reference must see the value
-- the tensor holds.
local function floats(list)
  local r = {}
  for i, x in ipairs(list) do r[i] = f32(x) end
  return r
end

-- 40,001 points over [-100, 100]: the step is not a power of two, so the
-- mantissas vary, and the ends reach float32 exp's overflow and underflow.
local sweep = {}
for i = 0, 40000 do sweep[#sweep + 1] = -100 + 200 * i / 40000 end
-- and, closer in, 20,001 points over [-1, 1], where tanh, expm1 and
-- sigmoid change regime
for i = 0, 20000 do sweep[#sweep + 1] = -1 + 2 * i / 20000 + 1e-5 end
sweep = floats(sweep)

local tiny = floats({1e-30, -1e-30, 1e-8, -1e-8, 3e-6, -3e-6, 1e-3, -1e-3, 1e-38,
                     -1e-38, 1e-40, -1e-40, 2 ^ -149, -2 ^ -149, 2 ^ -126, 0.03, -0.03,
                     0.34, -0.35, 0.347, -0.347})
local edges = floats({88.7, 88.72, 88.7228, 88.7229, 88.73, 88.8, 89, -87.3, -87.34,
                      -103.27, -103.9, -103.97, -103.98, -104, -150, 9, 9.1, 10,
                      -10, 10.5, 20, -20, 1e4, -1e4, 3.4e38, -3.4e38})
local special = {inf, -inf, nan, 0.0, -0.0}

local function all_inputs()
  local xs = {}
  for _, list in ipairs({sweep, tiny, edges, special}) do
    for _, x in ipairs(list) do xs[#xs + 1] = x end
  end
  return xs
end
local xs = all_inputs()

local function method(name) return function(t) return t[name](t) end end

-- ---- specs ----------------------------------------------------------------------

describe("float32 exp", function()
  it("is within 1 ulp of the correctly rounded value over the whole range", function()
    assert_within(1, method("exp"), ref_exp, xs, "exp")
  end)

  it("gives exact results at 0, the infinities and NaN", function()
    local y = mg.tensor({0, -0.0, -inf, inf, nan}, "float32"):exp():totable()
    assert.equal(1, y[1])
    assert.equal(1, y[2])
    assert.equal(0, y[3])
    assert.equal(inf, y[4])
    assert.is_true(y[5] ~= y[5])
  end)

  it("overflows to inf and underflows through the denormals to 0 where float32 does", function()
    local y = mg.tensor(floats({88.72, 88.73, -103.9, -104}), "float32"):exp():totable()
    assert.is_true(y[1] < inf and y[1] > 3.3e38)
    assert.equal(inf, y[2])
    assert.equal(2 ^ -149, y[3]) -- the smallest denormal
    assert.equal(0, y[4])
  end)
end)

describe("float32 expm1", function()
  it("is within 1 ulp of the correctly rounded value, keeping relative accuracy near 0", function()
    assert_within(1, method("expm1"), ref_expm1, xs, "expm1")
  end)

  it("keeps the sign of zero and reaches -1 and inf", function()
    local y = mg.tensor({-0.0, -inf, inf, -200}, "float32"):expm1():totable()
    assert.equal(-inf, 1 / y[1])
    assert.equal(-1, y[2])
    assert.equal(inf, y[3])
    assert.equal(-1, y[4])
  end)
end)

describe("float32 tanh", function()
  it("is within 1 ulp of the correctly rounded value over the whole range", function()
    assert_within(1, method("tanh"), ref_tanh, xs, "tanh")
  end)

  it("is odd, exact at 0 and -0, saturates to 1 and keeps NaN", function()
    local y = mg.tensor({0, -0.0, 10, -10, 1e4, inf, -inf, nan, 2 ^ -149}, "float32"):tanh():totable()
    assert.equal(0, y[1])
    assert.equal(inf, 1 / y[1])
    assert.equal(-inf, 1 / y[2])
    assert.same({1, -1, 1, 1, -1}, {y[3], y[4], y[5], y[6], y[7]})
    assert.is_true(y[8] ~= y[8])
    assert.equal(2 ^ -149, y[9])
  end)
end)

describe("float32 sigmoid", function()
  it("is within 1 ulp of the correctly rounded value over the whole range", function()
    assert_within(1, method("sigmoid"), ref_sigmoid, xs, "sigmoid")
  end)

  it("is 1/2 at 0 and exactly 0 and 1 at the infinities", function()
    local y = mg.tensor({0, -inf, inf, nan}, "float32"):sigmoid():totable()
    assert.same({0.5, 0, 1}, {y[1], y[2], y[3]})
    assert.is_true(y[4] ~= y[4])
  end)
end)

-- The recurrent cells' gate functions (mg_vgate_sigmoidf, mg_vgate_tanhf:
-- float arithmetic, looser than the ops' above), read through one time
-- step of an LSTM cell with a zero state and W_hh = 0, one hidden unit per
-- row: its c is sigmoid(a_i) tanh(a_g), so a_g = 20 (tanh rounds to 1)
-- leaves sigmoid(a_i), and a_i = 20 (sigmoid rounds to 1) leaves tanh(a_g).
local function gate_cells(pre)
  local n = #pre
  local xp = mg.tensor(pre, "float32"):reshape({n, 1, 4})
  local P = mg._rnn_layer("lstm", xp, mg.zeros({n, 1}), mg.zeros({n, 1}), mg.zeros({4, 1}))
  local c = {}
  for i, row in ipairs(P:totable()) do c[i] = row[2][2] end
  return c
end

local function gate_sigmoid(list)
  local pre = {}
  for i, x in ipairs(list) do pre[i] = {x, 0, 20, 20} end
  return gate_cells(pre)
end

local function gate_tanh(list)
  local pre = {}
  for i, x in ipairs(list) do pre[i] = {20, 0, x, 20} end
  return gate_cells(pre)
end

-- The largest error over the inputs whose reference is a normal float32
-- (the gates flush what would be subnormal), and where it was.
local function gate_max_ulps(f, ref, list)
  local got, worst, at = f(list), 0, nil
  for i, x in ipairs(list) do
    local want = f32(ref(x))
    if not (math.abs(want) < 2 ^ -126 and want ~= 0) then
      local e = ulps(got[i], want)
      if e > worst then worst, at = e, x end
    end
  end
  return worst, at
end

describe("float32 recurrent gates", function()
  it("compute sigmoid within 3 ulps over the whole range", function()
    local worst, at = gate_max_ulps(gate_sigmoid, ref_sigmoid, xs)
    assert.is_true(worst <= 3, ("sigmoid gate: %s ulp at x = %.9g"):format(worst, at))
  end)

  it("compute tanh within 2 ulps over the whole range", function()
    local worst, at = gate_max_ulps(gate_tanh, ref_tanh, xs)
    assert.is_true(worst <= 2, ("tanh gate: %s ulp at x = %.9g"):format(worst, at))
  end)

  it("give 0 and 1 (tanh -1 and 1) at the infinities, 0 for a sigmoid below float32's normals, and keep NaN", function()
    local s = gate_sigmoid({-inf, inf, 0, -87.3, -88, -200, nan})
    assert.same({0, 1, 0.5, 0, 0}, {s[1], s[2], s[3], s[5], s[6]})
    assert.is_true(s[4] >= 2 ^ -126, "sigmoid(-87.3) is still a normal float32")
    assert.is_true(s[7] ~= s[7])
    local t = gate_tanh({-inf, inf, 0, 0.5, -0.5, 10, nan})
    assert.same({-1, 1, 0, 1}, {t[1], t[2], t[3], t[6]})
    assert.equal(-t[4], t[5]) -- odd
    assert.is_true(t[7] ~= t[7])
  end)
end)

describe("float32 kernels on views", function()
  it("give the same values in place and on strided views as on contiguous tensors", function()
    local vals = {}
    for i = 1, 600 do vals[i] = f32(-30 + i * 0.1) end
    for _, name in ipairs({"exp", "expm1", "tanh", "sigmoid"}) do
      local x = mg.tensor(vals, "float32"):reshape({20, 30})
      local want = x[name](x):t():totable()
      local xt = x:t()
      assert.same(want, xt[name](xt):totable(), name .. " on a transposed view")
      local y = x:clone()
      y[name .. "_"](y)
      assert.same(x[name](x):totable(), y:totable(), name .. " in place")
    end
  end)
end)

describe("float32 activations built on them", function()
  it("give silu and elu within 1 ulp over the whole range", function()
    local function ref_silu(x)
      if x == -inf then return nan end
      return x * ref_sigmoid(x)
    end
    assert_within(1, F.silu, ref_silu, xs, "silu")
    -- elu rounds expm1 to float32, then multiplies by alpha in float32
    local function ref_elu(x) return x > 0 and x or f32(0.5 * f32(ref_expm1(x))) end
    assert_within(1, function(t) return F.elu(t, 0.5) end, ref_elu, xs, "elu")
  end)
end)

-- erf in double: its Taylor series below 2.5 (terms fall below 1e-17 of
-- the sum before the loop ends), above it 1 - erfc by erfc's continued
-- fraction (Lentz), 200 levels deep.
local function ref_erf(x)
  local z = math.abs(x)
  if z ~= z then return x end
  local r
  if z < 2.5 then
    local t, sum, n = z, z, 0
    repeat
      n = n + 1
      t = -t * z * z / n
      sum = sum + t / (2 * n + 1)
    until math.abs(t) < 1e-18 * math.abs(sum)
    r = sum * 2 / math.sqrt(math.pi)
  elseif z > 10 then
    r = 1
  else
    local f = z
    for k = 200, 1, -1 do f = z + (k / 2) / f end
    r = 1 - math.exp(-z * z) / math.sqrt(math.pi) / f
  end
  return x < 0 and -r or r
end

describe("float32 gelu (erf)", function()
  -- F.gelu computes 0.5 x (1 + erf(x / sqrt 2)) in float32 arithmetic
  -- (mg_vmath.h's mg_vgelu_cdf2f); against the double reference that
  -- leaves a few ulps, and for x < 0, where 1 + erf is small, an absolute
  -- error under |x| 2^-24 (checked over every 7th float in [-20, 20] when
  -- the fit was made). A wrong erf coefficient costs far more.
  it("is within a few ulps of GELU computed in double", function()
    local xs = {}
    for i = 0, 20000 do xs[#xs + 1] = f32(-8 + 16 * i / 20000 + 3e-5) end
    for _, x in ipairs(tiny) do xs[#xs + 1] = x end
    local got = F.gelu(mg.tensor(xs, "float32")):totable()
    for i, x in ipairs(xs) do
      local want = 0.5 * x * (1 + ref_erf(x / math.sqrt(2)))
      local err = math.abs(got[i] - want)
      if not (ulps(got[i], f32(want)) <= 4 or err <= math.abs(x) * 2 ^ -24) then
        error(("gelu(%.9g) = %.9g, want %.9g"):format(x, got[i], want))
      end
    end
  end)

  it("has the derivative of GELU computed in double", function()
    local xs = {}
    for i = 0, 4000 do xs[#xs + 1] = f32(-7 + 14 * i / 4000 + 1e-4) end
    local x = mg.tensor(xs, "float32"):requires_grad()
    F.gelu(x):sum():backward()
    local got = x.grad:totable()
    for i, v in ipairs(xs) do
      local want = 0.5 * (1 + ref_erf(v / math.sqrt(2))) + v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi)
      if math.abs(got[i] - want) > 4e-7 then
        error(("gelu'(%.9g) = %.9g, want %.9g"):format(v, got[i], want))
      end
    end
  end)

  it("keeps gelu(0) = 0, gelu(-0) = -0 and NaN, and is x and 0 at the infinities", function()
    local got = F.gelu(mg.tensor({0, -0.0, nan, inf, -inf}, "float32")):totable()
    assert.equal(0, got[1])
    assert.is_true(got[2] == 0 and 1 / got[2] < 0)
    assert.is_true(got[3] ~= got[3])
    assert.equal(inf, got[4])
  end)
end)

describe("float32 softmax", function()
  it("is within 2 ulp of softmax computed in double over rows spanning the range", function()
    -- rows of 50 from the sweep: each row's max is subtracted, as in C
    local rows, want = {}, {}
    for r = 0, 199 do
      local row, e, sum = {}, {}, 0
      for k = 1, 50 do row[k] = sweep[(r * 50 + k * 37) % #sweep + 1] * 0.2 end
      row = floats(row)
      local mx = math.max(table.unpack(row))
      for k = 1, 50 do e[k] = exp(f32(row[k] - mx)); sum = sum + e[k] end
      for k = 1, 50 do want[#want + 1] = f32(e[k] / sum) end
      rows[#rows + 1] = row
    end
    local got = approx.flat(F.softmax(mg.tensor(rows, "float32"), 2))
    local worst, at = 0, nil
    for i = 1, #want do
      local u = ulps(got[i], want[i])
      if u > worst then worst, at = u, i end
    end
    if worst > 2 then error(("softmax: %d ulp at element %d"):format(worst, at)) end
  end)
end)

describe("float64", function()
  -- Neighbouring doubles differ by 1 (-0 and +0 are both 0).
  local function ord64(x)
    local i = string.unpack("<i8", string.pack("<d", x))
    return i < 0 and math.mininteger - i or i
  end

  it("exp keeps libm's results", function()
    local vals = {}
    for i = 1, 2001 do vals[i] = -700 + 1400 * (i - 1) / 2000 + 1e-3 end
    local y = mg.tensor(vals, "float64"):exp():totable()
    for i, x in ipairs(vals) do assert.equal(exp(x), y[i]) end
  end)

  it("cross_entropy's exps (double mg_vexp) are within 2 ulp of libm's, subnormals included", function()
    -- Each row has one logit 0, its target, and the rest below -45: their
    -- exps vanish beside 1, so log-sum-exp is exactly 0, logp = x, and the
    -- gradient of the summed loss at a non-target class is exactly what
    -- the kernel computed for exp(x), down to the subnormals below -708.
    local rows, targets, want = {}, {}, {}
    for r = 1, 60 do
      local row = {}
      for k = 1, 50 do
        local x = -45 - 700 * ((r * 50 + k * 37) % 3001) / 3000
        row[k] = k == r % 50 + 1 and 0 or x
      end
      rows[r], targets[r] = row, r % 50 + 1
    end
    local x = mg.tensor(rows, "float64"):requires_grad()
    F.cross_entropy(x, mg.tensor(targets, "int64"), {reduction = "sum"}):backward()
    local g, worst, at = x.grad:totable(), 0, nil
    for r = 1, 60 do
      for k = 1, 50 do
        local v = rows[r][k]
        local e = v == 0 and 0 or math.abs(ord64(g[r][k]) - ord64(exp(v)))
        if e > worst then worst, at = e, v end
      end
    end
    if worst > 2 then error(("%d ulp at x = %.17g"):format(worst, at)) end
  end)
end)
