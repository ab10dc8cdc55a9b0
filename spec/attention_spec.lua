-- Attention: F.scaled_dot_product_attention, nn.MultiheadAttention (with
-- key_padding_mask, kdim/vdim and batch_first = false),
-- nn.TransformerEncoderLayer, nn.TransformerEncoder and nn.TransformerBlock
-- against PyTorch (spec/fixtures/gen_attention.py), gradients against
-- finite differences (mg.gradcheck), dropout's structure, masks and NaN
-- rows, state dicts, and error messages.
local mg = require "moongrad"
local F = require "moongrad.functional"
local nn = require "moongrad.nn"
local approx = require "support.approx"
local shell = require "support.shell"
local peers = require "support.peers"
local ref = dofile("spec/fixtures/attention_ref.lua")

local TOL = 1e-10  -- float64 against PyTorch's float64
local TOL32 = 1e-4 -- float32 against the same references
local TOL32_LAYER = 1e-5 -- float32 through the layers, whose references are scaled down

local sdpa = F.scaled_dot_product_attention

-- expected: a nested table, or a tensor computed another way.
local function check(got, expected, tol, what)
  if mg.is_tensor(expected) then expected = expected:totable() end
  local ok, err = pcall(approx.assert_close, got, expected, tol, tol)
  if not ok then error((what or "value") .. ": " .. tostring(err), 2) end
end

-- A fixture mask as moongrad takes it: keep-masks and blocked-masks are int64.
local function fixture_mask(c, dt)
  if c.mask == nil then return nil end
  if c.mask_kind == "add" then return mg.tensor(c.mask, dt) end
  return mg.tensor(c.mask, "int64")
end

-- A mask written by the generator: "flags" (1 = may not attend) as int64,
-- "add" as floats in dt.
local function mask_of(values, kind, dt)
  if values == nil then return nil end
  if kind == "add" then return mg.tensor(values, dt) end
  return mg.tensor(values, "int64")
end

-- Loads the case's state dict, strictly; torch = true: under PyTorch's
-- names (layers.0.…), through load_state_dict's {torch = true}.
local function load(m, c, dt, torch)
  local sd = {}
  for name, v in pairs(c.params) do sd[name] = mg.tensor(v, dt) end
  m:load_state_dict(sd, {torch = torch})
end

local function check_grads(m, c, tol, torch)
  local grads = torch and nn.from_torch(c.grads) or c.grads
  local n = 0
  for name, p in m:named_parameters() do
    check(p.grad, grads[name], tol, name .. " gradient")
    n = n + 1
  end
  local expected = 0
  for _ in pairs(c.grads) do expected = expected + 1 end
  assert.are.equal(expected, n)
end

-- A MultiheadAttention case: the module built with the case's options,
-- its state dict loaded (strict), forward with its masks, and
-- sum(out * g) + sum(weights * gw) back-propagated. Inputs are in the
-- case's layout ([L, N, E] for batch_first = false).
local function run_mha(c, dt)
  local m = nn.MultiheadAttention(c.embed_dim, c.num_heads, {bias = c.bias, kdim = c.kdim,
                                  vdim = c.vdim, batch_first = c.batch_first, dtype = dt})
  load(m, c, dt)
  local query, key, value
  if c.self_attn then
    query = mg.tensor(c.x, dt):requires_grad()
    key, value = query, query
  else
    query = mg.tensor(c.query, dt):requires_grad()
    key = mg.tensor(c.key, dt):requires_grad()
    value = mg.tensor(c.value, dt):requires_grad()
  end
  local out, w = m(query, key, value, {
    attn_mask = mask_of(c.attn_mask or c.mask, c.attn_mask_kind or c.mask_kind, dt),
    key_padding_mask = mask_of(c.key_padding_mask, c.key_padding_mask_kind, dt),
    is_causal = c.is_causal})
  local loss = (out * mg.tensor(c.g, dt)):sum() + (w * mg.tensor(c.gw, dt)):sum()
  loss:backward()
  return m, out, w, query, key, value
end

local function check_mha(c, tol, m, out, w, query, key, value)
  check(out, c.out, tol, "output")
  check(w, c.weights, tol, "averaged weights")
  if c.self_attn then
    check(query.grad, c.gx, tol, "input gradient")
  else
    check(query.grad, c.gquery, tol, "query gradient")
    check(key.grad, c.gkey, tol, "key gradient")
    check(value.grad, c.gvalue, tol, "value gradient")
  end
  check_grads(m, c, tol)
end

-- One `it` per {name, function, message}: the function must raise an
-- error holding prefix .. message.
local function it_raises(prefix, cases)
  for _, case in ipairs(cases) do
    it(case[1], function()
      local ok, err = pcall(case[2])
      assert.is_false(ok)
      assert.matches(prefix .. case[3], err, 1, true)
    end)
  end
end

-- A module with dropout 0.5 gives one output again and again in eval
-- mode, and another in training mode.
local function check_dropout_modes(m, x)
  m:eval()
  local a = m(x)
  check(m(x), a, 0, "eval is deterministic")
  m:train()
  assert.is_false(pcall(approx.assert_close, m(x), a, 1e-6, 1e-6))
end

-- The elements of a tensor that are NaN, counted.
local function count_nan(t)
  local n = 0
  for _, v in ipairs(approx.flat(t)) do
    if v ~= v then n = n + 1 end
  end
  return n
end

describe("scaled_dot_product_attention", function()
  local function run(c, dt)
    local q = mg.tensor(c.q, dt):requires_grad()
    local k = mg.tensor(c.k, dt):requires_grad()
    local v = mg.tensor(c.v, dt):requires_grad()
    local out = sdpa(q, k, v, {attn_mask = fixture_mask(c, dt), is_causal = c.is_causal,
                               scale = c.scale})
    out:backward(mg.tensor(c.g, dt))
    return out, q, k, v
  end

  describe("matches PyTorch in float64", function()
    for _, c in ipairs(ref.sdpa) do
      it("with " .. c.name, function()
        local out, q, k, v = run(c, "float64")
        assert.are.same(approx.shape_of(c.out), out:shape())
        check(out, c.out, TOL, "output")
        check(q.grad, c.gq, TOL, "q gradient")
        check(k.grad, c.gk, TOL, "k gradient")
        check(v.grad, c.gv, TOL, "v gradient")
      end)
    end
  end)

  it("matches PyTorch in float32", function()
    local c = ref.sdpa[4]
    local out, q = run(c, "float32")
    assert.are.equal("float32", out:dtype())
    check(out, c.out, TOL32, "output")
    check(q.grad, c.gq, TOL32, "q gradient")
  end)

  describe("passes gradcheck in float64", function()
    local cases = {
      {"without a mask", {}},
      {"with is_causal", {is_causal = true}},
      {"with a float mask", {attn_mask = mg.tensor({{0, -1, 0.5, 0}, {0, 0, -math.huge, 2},
                                                    {1, 0, 0, -0.5}}, "float64")}},
      {"with a keep-mask", {attn_mask = mg.tensor({{1, 0, 1, 1}, {1, 1, 0, 0}, {0, 1, 1, 0}},
                                                  "int64")}},
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        mg.manual_seed(7)
        local q = mg.randn(2, 2, 3, 4, "float64"):requires_grad()
        local k = mg.randn(2, 2, 4, 4, "float64"):requires_grad()
        local v = mg.randn(2, 2, 4, 3, "float64"):requires_grad()
        assert.is_true(mg.gradcheck(function(a, b, c) return sdpa(a, b, c, case[2]) end,
                                    {q, k, v}))
      end)
    end
  end)

  it("returns the attention weights as a second result, rows summing to one", function()
    mg.manual_seed(1)
    local q, k, v = mg.randn(2, 3, 4, "float64"), mg.randn(2, 5, 4, "float64"),
                    mg.randn(2, 5, 2, "float64")
    local out, w = sdpa(q, k, v, {is_causal = true})
    assert.are.same({2, 3, 2}, out:shape())
    assert.are.same({2, 3, 5}, w:shape())
    check(w:sum(-1), {{1, 1, 1}, {1, 1, 1}}, 1e-12, "row sums")
    check(w:matmul(v), out, 1e-12, "weights times v")
    -- Causal from the top left: query i sees keys 1..i.
    local wt = w:totable()
    for b = 1, 2 do
      for i = 1, 3 do
        for j = i + 1, 5 do assert.are.equal(0, wt[b][i][j]) end
      end
    end
  end)

  it("treats a float mask as additive and an int64 mask as a keep-mask", function()
    mg.manual_seed(2)
    local q, k, v = mg.randn(1, 2, 3, "float64"), mg.randn(1, 3, 3, "float64"),
                    mg.randn(1, 3, 2, "float64")
    local keep = mg.tensor({{1, 0, 1}, {1, 1, 0}}, "int64")
    local additive = mg.tensor({{0, -math.huge, 0}, {0, 0, -math.huge}}, "float64")
    local a = sdpa(q, k, v, {attn_mask = keep})
    local b = sdpa(q, k, v, {attn_mask = additive})
    check(a, b, 1e-12, "keep-mask vs -inf mask")
    -- A float mask joins the scores in their dtype: the output stays float32.
    assert.are.equal("float32", sdpa(q:float(), k:float(), v:float(), {attn_mask = additive}):dtype())
    -- The same 0/1 values as floats are added, not a mask: 1 shifts scores.
    local c = sdpa(q, k, v, {attn_mask = keep:double()})
    assert.is_false(pcall(approx.assert_close, c, a, 1e-6, 1e-6))
  end)

  it("gives NaN for a query that may attend to nothing, as PyTorch does", function()
    mg.manual_seed(3)
    local q, k, v = mg.randn(1, 2, 3, "float64"), mg.randn(1, 3, 3, "float64"),
                    mg.randn(1, 3, 2, "float64")
    local out, w = sdpa(q, k, v, {attn_mask = mg.tensor({{1, 1, 0}, {0, 0, 0}}, "int64")})
    assert.are.equal(0, count_nan(out:narrow(2, 1, 1)))
    assert.are.equal(2, count_nan(out:narrow(2, 2, 1)))
    assert.are.equal(3, count_nan(w:narrow(2, 2, 1)))
  end)

  it("broadcasts a [Lq, Lk] mask over batch and heads without copying it", function()
    mg.manual_seed(4)
    local q, k, v = mg.randn(2, 3, 4, 5, "float64"), mg.randn(2, 3, 4, 5, "float64"),
                    mg.randn(2, 3, 4, 5, "float64")
    local m = mg.tensor({{1, 0, 0, 0}, {1, 1, 0, 0}, {1, 1, 1, 0}, {1, 1, 1, 1}}, "int64")
    check(sdpa(q, k, v, {attn_mask = m}), sdpa(q, k, v, {is_causal = true}), 1e-12,
          "lower-triangular keep-mask vs is_causal")
  end)

  describe("dropout on the weights", function()
    local q, k, v
    before_each(function()
      mg.manual_seed(5)
      q, k, v = mg.randn(4, 6, 8, "float64"), mg.randn(4, 6, 8, "float64"),
                mg.randn(4, 6, 3, "float64")
    end)

    it("is off when not training", function()
      local a = sdpa(q, k, v)
      local b = sdpa(q, k, v, {dropout_p = 0.5, training = false})
      check(b, a, 0, "eval output")
    end)

    it("zeroes weights and scales the rest by 1/(1-p) when training", function()
      local _, plain = sdpa(q, k, v)
      local out, w = sdpa(q, k, v, {dropout_p = 0.5})
      local pw, dw = approx.flat(plain), approx.flat(w)
      local zeros = 0
      for i = 1, #dw do
        if dw[i] == 0 then
          zeros = zeros + 1
        else
          assert.is_true(math.abs(dw[i] - 2 * pw[i]) < 1e-12)
        end
      end
      assert.is_true(zeros > 0.3 * #dw and zeros < 0.7 * #dw)
      check(out, w:matmul(v), 1e-12, "output from the dropped weights")
    end)

    it("draws from moongrad's RNG, so a seed repeats it", function()
      mg.manual_seed(9)
      local a = sdpa(q, k, v, {dropout_p = 0.3})
      mg.manual_seed(9)
      local b = sdpa(q, k, v, {dropout_p = 0.3})
      check(a, b, 0, "same seed")
    end)
  end)

  describe("raises a clear error", function()
    local q, k, v = mg.randn(2, 3, 4), mg.randn(2, 5, 4), mg.randn(2, 5, 6)
    local cases = {
      {"when q and k differ in their last dim",
       function() sdpa(q, mg.randn(2, 5, 3), v) end, "q and k must have the same last dim"},
      {"when k and v differ in length",
       function() sdpa(q, k, mg.randn(2, 4, 6)) end, "k and v must have the same length"},
      {"for a 1-D input", function() sdpa(mg.randn(4), k, v) end,
       "q must have at least 2 dims [..., L, E], got shape [4]"},
      {"for a non-tensor", function() sdpa(q, {}, v) end, "k must be a tensor"},
      {"when batch dims do not broadcast",
       function() sdpa(mg.randn(3, 3, 4), k, v) end,
       "the batch dims of q [3,3,4] and k [2,5,4] cannot be broadcast together"},
      {"for a mask of the wrong shape",
       function() sdpa(q, k, v, {attn_mask = mg.zeros(3, 4)}) end,
       "attn_mask [3,4] does not broadcast to the scores [..., 3, 5]"},
      {"for attn_mask together with is_causal",
       function() sdpa(q, k, v, {attn_mask = mg.zeros(3, 5), is_causal = true}) end,
       "give attn_mask or is_causal, not both"},
      {"for a dropout_p outside [0, 1]",
       function() sdpa(q, k, v, {dropout_p = 1.5}) end, "dropout_p must be a probability"},
      {"for an is_causal that is not a boolean",
       function() sdpa(q, k, v, {is_causal = 1}) end, "is_causal must be a boolean, got number"},
      {"for an unknown option", function() sdpa(q, k, v, {causal = true}) end,
       "unknown option 'causal'"},
    }
    it_raises("scaled_dot_product_attention: ", cases)
  end)
end)

describe("the fused attention op", function()
  -- F.scaled_dot_product_attention and nn.MultiheadAttention run through
  -- it (runtime/ops_attention.c) whenever no dropout applies, so the
  -- PyTorch references above check it; these check what they do not reach.

  it("passes gradcheck over a packed projection, its weights included, with a mask", function()
    mg.manual_seed(21)
    local qkv = mg.randn(2, 4, 12, "float64"):requires_grad()
    local mask = mg.randn(2, 1, 1, 4, "float64"):expand(2, 2, 4, 4)
    local go, gw = mg.randn(2, 4, 4, "float64"), mg.randn(2, 2, 4, 4, "float64")
    assert.is_true(mg.gradcheck(function(x)
      local out, w = mg._attention_packed(x, 2, mask, true, 0.4, true)
      return (out * go):sum() + (w * gw):sum()
    end, {qkv}))
  end)

  it("passes gradcheck with k and v broadcast over the batch, their gradients summed", function()
    mg.manual_seed(22)
    local q = mg.randn(3, 2, 3, 4, "float64"):requires_grad()
    local k = mg.randn(1, 2, 5, 4, "float64"):requires_grad()
    local v = mg.randn(2, 5, 3, "float64"):requires_grad()
    local gw = mg.randn(3, 2, 3, 5, "float64")
    assert.is_true(mg.gradcheck(function(a, b, c)
      local out, w = sdpa(a, b, c)
      return out:sum() + (w * gw):sum()
    end, {q, k, v}))
  end)

  it("gives a row NaN throughout when a mask blocks the one key causality leaves it", function()
    mg.manual_seed(23)
    local m = nn.MultiheadAttention(8, 2, {dtype = "float64"})
    local x = mg.randn(1, 3, 8, "float64")
    local pad = mg.tensor({{1, 0, 0}}, "int64")   -- key 1 is padding
    local out, w = m(x, x, x, {key_padding_mask = pad, is_causal = true})
    assert.are.equal(8, count_nan(out:narrow(2, 1, 1)))
    assert.are.equal(3, count_nan(w:narrow(2, 1, 1)))
    assert.are.equal(0, count_nan(out:narrow(2, 2, 2)))
  end)

  it("gives the same bits on one thread and on two", function()
    mg.manual_seed(24)
    local qkv = mg.randn(16, 24, 96)
    local g = mg.randn(16, 24, 32)
    local function run(threads)
      return require("support.check").on_threads(threads, function()
        local x = qkv:detach():requires_grad()
        local out = mg._attention_packed(x, 4, nil, true, 0.25, false)
        out:backward(g)
        return out, x.grad
      end)
    end
    local o1, g1 = run(1)
    local o2, g2 = run(2)
    check(o2, o1, 0, "output")
    check(g2, g1, 0, "gradient")
  end)

  it_raises("attention: ", {
    {"names the shapes that do not fit", function()
      mg._attention(mg.randn(2, 2, 3, 4), mg.randn(2, 2, 5, 3), mg.randn(2, 2, 5, 3), nil, false,
                    1, false)
    end, "expects q [B, H, Lq, E], k [B, H, Lk, E] and v [B, H, Lk, Ev], got q [2,2,3,4], " ..
         "k [2,2,5,3], v [2,2,5,3]"},
    {"names a packed projection whose width is not three heads' worth", function()
      mg._attention_packed(mg.randn(2, 3, 10), 2, nil, false, 1, false)
    end, "expects qkv [N, L, 3E] with E divisible by the 2 heads, got [2,3,10]"},
    {"names dtypes that differ", function()
      mg._attention(mg.randn(1, 1, 2, 2), mg.randn(1, 1, 2, 2, "float64"), mg.randn(1, 1, 2, 2),
                    nil, false, 1, false)
    end, "q, k and v must share a dtype, got k float64 with q float32"},
    {"names a mask of the wrong shape", function()
      mg._attention_packed(mg.randn(2, 3, 12), 2, mg.zeros(2, 2, 3, 4), false, 1, false)
    end, "mask must be [B, H, Lq, Lk] = [2,2,3,3] (expanded to it), got [2,2,3,4]"},
  })
end)

describe("MultiheadAttention", function()
  describe("matches PyTorch in float64", function()
    for _, c in ipairs(ref.mha) do
      it("with " .. c.name, function() check_mha(c, TOL, run_mha(c, "float64")) end)
    end
  end)

  it("matches PyTorch in float32", function()
    local c = ref.mha[4]
    local m, out, w, query = run_mha(c, "float32")
    check(out, c.out, TOL32, "output")
    check(w, c.weights, TOL32, "averaged weights")
    check(query.grad, c.gquery, TOL32, "query gradient")
    check_grads(m, c, TOL32)
  end)

  it("passes gradcheck in float64, causal, with all parameters", function()
    mg.manual_seed(11)
    local m = nn.MultiheadAttention(4, 2, {dtype = "float64"})
    local x = mg.randn(2, 3, 4, "float64"):requires_grad()
    local params = m:parameters()
    assert.is_true(mg.gradcheck(function(input)
      return m(input, input, input, {is_causal = true})
    end, {x}))
    -- And through the parameters: gradcheck perturbs its inputs, so the
    -- module's tensors are passed in and swapped into place.
    assert.is_true(mg.gradcheck(function(w_in, b_in, w_out, b_out)
      m.in_proj_weight, m.in_proj_bias = w_in, b_in
      m.out_proj.weight, m.out_proj.bias = w_out, b_out
      return m(x, x, x)
    end, params))
  end)

  it("has PyTorch's parameter names, shapes and initialisation", function()
    mg.manual_seed(12)
    local m = nn.MultiheadAttention(16, 4)
    local names = {}
    for name, p in m:named_parameters() do names[#names + 1] = name .. " " .. table.concat(p:shape(), "x") end
    assert.are.same({"in_proj_weight 48x16", "in_proj_bias 48", "out_proj.weight 16x16",
                     "out_proj.bias 16"}, names)
    local bound = math.sqrt(6 / (16 + 48))          -- xavier_uniform on [3E, E]
    assert.is_true(m.in_proj_weight:abs():max():item() <= bound)
    assert.is_true(m.in_proj_weight:abs():max():item() > 0.9 * bound)
    assert.are.equal(0, m.in_proj_bias:abs():sum():item())
    assert.are.equal(0, m.out_proj.bias:abs():sum():item())
    assert.is_true(m.out_proj.weight:abs():max():item() <= 1 / 4)  -- Linear's U(±1/sqrt(16))
    local nb = nn.MultiheadAttention(8, 2, {bias = false})
    assert.are.equal(2, #nb:parameters())
  end)

  it("returns per-head weights, or none, as asked", function()
    mg.manual_seed(13)
    local m = nn.MultiheadAttention(6, 3)
    local q, kv = mg.randn(2, 4, 6), mg.randn(2, 5, 6)
    local out, w = m(q, kv, kv, {average_attn_weights = false})
    assert.are.same({2, 4, 6}, out:shape())
    assert.are.same({2, 3, 4, 5}, w:shape())
    check(m(q, kv, kv), out, 1e-6, "output")
    local out2, none = m(q, kv, kv, {need_weights = false})
    assert.is_nil(none)
    check(out2, out, 1e-6, "output without weights")
  end)

  it("reads an int64 mask as PyTorch's nn.MultiheadAttention does: 1 = may not attend", function()
    mg.manual_seed(14)
    local m = nn.MultiheadAttention(4, 2, {dtype = "float64"})
    local x = mg.randn(1, 3, 4, "float64")
    local blocked = mg.tensor({{0, 1, 1}, {0, 0, 1}, {0, 0, 0}}, "int64")
    check(m(x, x, x, {attn_mask = blocked}), m(x, x, x, {is_causal = true}), 1e-12,
          "upper-triangular blocked mask vs is_causal")
  end)

  it("applies dropout to the weights in training mode only", function()
    mg.manual_seed(15)
    local m = nn.MultiheadAttention(8, 2, {dropout = 0.5, dtype = "float64"})
    local x = mg.randn(2, 6, 8, "float64")
    m:eval()
    local a = m(x, x, x)
    check(m(x, x, x), a, 0, "eval is deterministic")
    m:train()
    local b, w = m(x, x, x, {average_attn_weights = false})
    local zeros = 0
    for _, e in ipairs(approx.flat(w)) do if e == 0 then zeros = zeros + 1 end end
    assert.is_true(zeros > 0.3 * 2 * 2 * 6 * 6)
    assert.is_false(pcall(approx.assert_close, b, a, 1e-6, 1e-6))
  end)

  describe("raises a clear error", function()
    local m = nn.MultiheadAttention(8, 2)
    local x = mg.randn(2, 3, 8)
    local cases = {
      {"when embed_dim is not divisible by num_heads", function() nn.MultiheadAttention(10, 4) end,
       "embed_dim (10) must be divisible by num_heads (4)"},
      {"for a batch_first that is not a boolean",
       function() nn.MultiheadAttention(8, 2, {batch_first = 0}) end,
       "batch_first must be a boolean, got 0"},
      {"for a kdim that is not a positive integer",
       function() nn.MultiheadAttention(8, 2, {kdim = 0}) end, "kdim must be a positive integer"},
      {"for a dropout outside [0, 1]", function() nn.MultiheadAttention(8, 2, {dropout = -0.1}) end,
       "dropout must be a probability"},
      {"for an input of the wrong rank", function() m(mg.randn(3, 8), x, x) end,
       "query must be [N, L, 8] (batch first), got [3,8]"},
      {"for the wrong embedding size", function() m(x, mg.randn(2, 3, 6), x) end,
       "key must be [N, L, 8]"},
      {"when key and value differ in length", function() m(x, x, mg.randn(2, 4, 8)) end,
       "key and value must have the same length"},
      {"when batch sizes differ", function() m(x, mg.randn(3, 3, 8), mg.randn(3, 3, 8)) end,
       "query, key and value must share the batch size"},
      {"for a mask of the wrong shape", function() m(x, x, x, {attn_mask = mg.zeros(3, 4)}) end,
       "attn_mask must be [L, S] = [3, 3] or [N*H, L, S] = [4, 3, 3], got [3,4]"},
      {"for a key_padding_mask of the wrong shape",
       function() m(x, x, x, {key_padding_mask = mg.zeros(3, 2)}) end,
       "key_padding_mask must be [N, S] = [2, 3], got [3,2]"},
      {"for a key_padding_mask that is not a tensor",
       function() m(x, x, x, {key_padding_mask = {{0, 0, 1}}}) end,
       "key_padding_mask must be a tensor, got table"},
      {"for a key of another width than kdim",
       function() nn.MultiheadAttention(8, 2, {kdim = 5})(x, x, x) end,
       "key must be [N, L, 5] (batch first), got [2,3,8]"},
      {"for a batch-first input given to a batch_first = false module",
       function() nn.MultiheadAttention(8, 2, {batch_first = false})(mg.randn(3, 8), x, x) end,
       "query must be [L, N, 8] (batch_first = false), got [3,8]"},
      {"for an is_causal that is not a boolean", function() m(x, x, x, {is_causal = 1}) end,
       "is_causal must be a boolean, got 1"},
      {"for an unknown option", function() m(x, x, x, {src_key_padding_mask = mg.zeros(2, 3)}) end,
       "unknown option 'src_key_padding_mask'"},
    }
    it_raises("MultiheadAttention: ", cases)
  end)
end)

describe("MultiheadAttention's PyTorch options", function()
  describe("match torch.nn.MultiheadAttention in float64", function()
    for _, c in ipairs(ref.mha_opts) do
      it("with " .. c.name, function() check_mha(c, TOL, run_mha(c, "float64")) end)
    end
  end)

  it("match it in float32, kdim and vdim with a padding mask", function()
    local c = ref.mha_opts[7]
    assert.are.equal(5, c.kdim)
    local m, out, w, query, key, value = run_mha(c, "float32")
    assert.are.equal("float32", out:dtype())
    check_mha(c, TOL32, m, out, w, query, key, value)
  end)

  it("give kdim and vdim their own weights under PyTorch's names, each xavier_uniform", function()
    mg.manual_seed(31)
    local m = nn.MultiheadAttention(16, 4, {kdim = 6, vdim = 10})
    local names = {}
    for name, p in m:named_parameters() do
      names[#names + 1] = name .. " " .. table.concat(p:shape(), "x")
    end
    assert.are.same({"q_proj_weight 16x16", "k_proj_weight 16x6", "v_proj_weight 16x10",
                     "in_proj_bias 48", "out_proj.weight 16x16", "out_proj.bias 16"}, names)
    assert.is_nil(m.in_proj_weight)
    for _, w in ipairs({{m.q_proj_weight, 16}, {m.k_proj_weight, 6}, {m.v_proj_weight, 10}}) do
      local bound = math.sqrt(6 / (16 + w[2]))
      local top = w[1]:abs():max():item()
      assert.is_true(top <= bound and top > 0.8 * bound)
    end
    assert.are.equal(0, m.in_proj_bias:abs():sum():item())
    -- kdim and vdim equal to embed_dim are the packed weight, as in PyTorch.
    local same = nn.MultiheadAttention(8, 2, {kdim = 8, vdim = 8})
    assert.are.same({24, 8}, same.in_proj_weight:shape())
    assert.is_nil(same.q_proj_weight)
  end)

  it("take and return [L, N, E] with batch_first = false, the same maths transposed", function()
    mg.manual_seed(32)
    local a = nn.MultiheadAttention(6, 2, {kdim = 4, dtype = "float64"})
    local b = nn.MultiheadAttention(6, 2, {kdim = 4, batch_first = false, dtype = "float64"})
    b:load_state_dict(a:state_dict())
    local q, k, v = mg.randn(2, 3, 6, "float64"), mg.randn(2, 5, 4, "float64"),
                    mg.randn(2, 5, 6, "float64")
    local pad = mg.tensor({{0, 0, 0, 1, 1}, {0, 0, 0, 0, 0}}, "int64")
    local out_a, w_a = a(q, k, v, {key_padding_mask = pad})
    local out_b, w_b = b(q:transpose(1, 2), k:transpose(1, 2), v:transpose(1, 2),
                         {key_padding_mask = pad})
    assert.are.same({3, 2, 6}, out_b:shape())
    check(out_b:transpose(1, 2), out_a, 1e-12, "output")
    check(w_b, w_a, 1e-12, "weights stay [N, L, S]")
  end)

  it("give padded keys no weight: flags and a 0/-inf float mask agree", function()
    mg.manual_seed(33)
    local m = nn.MultiheadAttention(4, 2, {dtype = "float64"})
    local x = mg.randn(2, 4, 4, "float64")
    local pad = mg.tensor({{0, 0, 1, 1}, {0, 1, 0, 0}}, "int64")
    local inf = -math.huge
    local float_pad = mg.tensor({{0, 0, inf, inf}, {0, inf, 0, 0}}, "float64")
    local out, w = m(x, x, x, {key_padding_mask = pad, average_attn_weights = false})
    local out_f = m(x, x, x, {key_padding_mask = float_pad})
    check(out_f, out, 1e-12, "float padding mask")
    local wt = w:totable()
    for h = 1, 2 do
      for i = 1, 4 do
        assert.are.equal(0, wt[1][h][i][3])
        assert.are.equal(0, wt[1][h][i][4])
        assert.are.equal(0, wt[2][h][i][2])
      end
    end
  end)

  it("block a key that either mask blocks when both are flags", function()
    mg.manual_seed(34)
    local m = nn.MultiheadAttention(4, 2, {dtype = "float64"})
    local x = mg.randn(2, 3, 4, "float64")
    local attn = mg.tensor({{0, 1, 0}, {0, 0, 0}, {0, 0, 1}}, "int64")
    local pad = mg.tensor({{0, 0, 1}, {0, 0, 0}}, "int64")
    local _, w = m(x, x, x, {attn_mask = attn, key_padding_mask = pad})
    local wt = w:totable()
    assert.are.same({0, 0, 0}, {wt[1][1][2], wt[1][1][3], wt[1][3][3]})
    assert.are.equal(0, wt[2][1][2])
    assert.is_true(wt[2][2][3] > 0)
  end)

  it("pass gradcheck in float64 with kdim, vdim and both masks", function()
    mg.manual_seed(35)
    local m = nn.MultiheadAttention(4, 2, {kdim = 3, vdim = 5, dtype = "float64"})
    local q = mg.randn(2, 3, 4, "float64"):requires_grad()
    local k = mg.randn(2, 4, 3, "float64"):requires_grad()
    local v = mg.randn(2, 4, 5, "float64"):requires_grad()
    local attn = mg.tensor({{0, -1, 0.5, 0}, {0, 0, -math.huge, 2}, {1, 0, 0, -0.5}}, "float64")
    local pad = mg.tensor({{0, 0, 0, 1}, {0, 1, 0, 0}}, "int64")
    assert.is_true(mg.gradcheck(function(a, b, c)
      return m(a, b, c, {attn_mask = attn, key_padding_mask = pad})
    end, {q, k, v}))
  end)
end)

describe("TransformerBlock", function()
  local function run(c, dt)
    local m = nn.TransformerBlock(c.d_model, c.num_heads, {dim_feedforward = c.dim_feedforward,
                                                           causal = c.causal, dtype = dt})
    load(m, c, dt)
    local x = mg.tensor(c.x, dt):requires_grad()
    local y = m(x)
    y:backward(mg.tensor(c.g, dt))
    return m, y, x
  end

  describe("matches PyTorch's TransformerEncoderLayer (norm_first, gelu) in float64", function()
    for _, c in ipairs(ref.block) do
      it("with " .. c.name, function()
        local m, y, x = run(c, "float64")
        check(y, c.y, TOL, "output")
        check(x.grad, c.gx, TOL, "input gradient")
        check_grads(m, c, TOL)
      end)
    end
  end)

  it("matches it in float32", function()
    local c = ref.block[2]
    local m, y, x = run(c, "float32")
    check(y, c.y, TOL32, "output")
    check(x.grad, c.gx, TOL32, "input gradient")
    check_grads(m, c, TOL32)
  end)

  it("lists its state dict under TransformerEncoderLayer's names, in its order", function()
    local m = nn.TransformerBlock(8, 2, {mlp_ratio = 2})
    local names = {}
    for name in m:named_parameters() do names[#names + 1] = name end
    assert.are.same({"self_attn.in_proj_weight", "self_attn.in_proj_bias",
                     "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                     "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                     "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"}, names)
    assert.are.same({16, 8}, m.linear1.weight:shape())
    assert.are.same({32, 8}, nn.TransformerBlock(8, 2).linear1.weight:shape())
  end)

  it("is causal when built so: a later position never changes an earlier output", function()
    mg.manual_seed(21)
    local m = nn.TransformerBlock(6, 2, {causal = true, dtype = "float64"})
    local x = mg.randn(1, 4, 6, "float64")
    local y1 = m(x)
    local x2 = x:clone()
    x2:narrow(2, 4, 1):fill_(5)
    local y2 = m(x2)
    check(y2:narrow(2, 1, 3), y1:narrow(2, 1, 3), 1e-12, "earlier positions")
  end)

  it("uses its dropout only in training mode", function()
    mg.manual_seed(22)
    check_dropout_modes(nn.TransformerBlock(8, 2, {dropout = 0.5, dtype = "float64"}),
                        mg.randn(2, 4, 8, "float64"))
  end)

  describe("raises a clear error", function()
    local cases = {
      {"when d_model is not divisible by num_heads", function() nn.TransformerBlock(10, 3) end,
       "d_model (10) must be divisible by num_heads (3)"},
      {"for both dim_feedforward and mlp_ratio",
       function() nn.TransformerBlock(8, 2, {dim_feedforward = 16, mlp_ratio = 2}) end,
       "give dim_feedforward or mlp_ratio, not both"},
      {"for an input of the wrong shape", function() nn.TransformerBlock(8, 2)(mg.randn(2, 3, 6)) end,
       "expects x [N, L, 8], got [2,3,6]"},
    }
    it_raises("TransformerBlock: ", cases)
  end)
end)

-- Runs a TransformerEncoderLayer or TransformerEncoder case: load the
-- state dict (strict), forward with the case's masks, backward with g.
local function run_encoder(m, c, dt, call, torch)
  load(m, c, dt, torch)
  local x = mg.tensor(c.x, dt):requires_grad()
  local y = call(m, x)
  y:backward(mg.tensor(c.g, dt))
  return y, x
end

local function check_encoder(m, c, y, x, tol, torch)
  check(y, c.y, tol, "output")
  check(x.grad, c.gx, tol, "input gradient")
  check_grads(m, c, tol, torch)
end

describe("TransformerEncoderLayer", function()
  local function build(c, dt)
    return nn.TransformerEncoderLayer(c.d_model, c.nhead, {
      dim_feedforward = c.dim_feedforward, dropout = 0, activation = c.activation,
      layer_norm_eps = c.layer_norm_eps, batch_first = c.batch_first,
      norm_first = c.norm_first, dtype = dt})
  end

  local function run(c, dt)
    local m = build(c, dt)
    local y, x = run_encoder(m, c, dt, function(layer, x)
      return layer(x, {src_mask = mask_of(c.src_mask, c.src_mask_kind, dt),
                       src_key_padding_mask = mask_of(c.src_key_padding_mask,
                                                      c.src_key_padding_mask_kind, dt)})
    end)
    return m, y, x
  end

  describe("matches torch.nn.TransformerEncoderLayer in float64", function()
    for _, c in ipairs(ref.layer) do
      it(c.name, function()
        local m, y, x = run(c, "float64")
        check_encoder(m, c, y, x, TOL)
      end)
    end
  end)

  it("matches it in float32, post-norm with both masks", function()
    local c = ref.layer[1]
    local m, y, x = run(c, "float32")
    assert.are.equal("float32", y:dtype())
    check_encoder(m, c, y, x, TOL32_LAYER)
  end)

  it("has PyTorch's defaults: post-norm, ReLU, dim_feedforward 2048, dropout 0.1", function()
    local m = nn.TransformerEncoderLayer(8, 2)
    assert.is_false(m.norm_first)
    assert.are.equal("relu", m.activation)
    assert.are.same({2048, 8}, m.linear1.weight:shape())
    assert.are.equal(0.1, m.dropout.p)
    assert.are.equal(0.1, m.self_attn.dropout)
    assert.are.equal(1e-5, m.norm1.eps)
    assert.is_true(m.batch_first)       -- moongrad's default; PyTorch's is false
    assert.are.equal("TransformerEncoderLayer(norm_first=false, activation=relu)",
                     m:state_variant())
  end)

  it("lists its state dict under PyTorch's names, in its order", function()
    local names = {}
    for name in nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16}):named_parameters() do
      names[#names + 1] = name
    end
    assert.are.same({"self_attn.in_proj_weight", "self_attn.in_proj_bias",
                     "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                     "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                     "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"}, names)
  end)

  it("names in state_variant what makes the same parameters compute other maths", function()
    local function v(opts) return nn.TransformerEncoderLayer(8, 2, opts):state_variant() end
    local post_relu, pre_gelu = v(), v({norm_first = true, activation = "gelu"})
    assert.are.equal("TransformerEncoderLayer(norm_first=true, activation=gelu)", pre_gelu)
    assert.are_not.equal(post_relu, v({activation = "gelu"}))
    assert.are_not.equal(post_relu, v({norm_first = true}))
    assert.are_not.equal(post_relu, v({layer_norm_eps = 1e-6}))
    -- Options that change the layout or training, not the maths, do not count.
    assert.are.equal(post_relu, v({batch_first = false, dropout = 0.3, dim_feedforward = 16}))
    -- TransformerBlock is the pre-norm GELU layer, and says so; causal is other maths.
    assert.are.equal(pre_gelu, nn.TransformerBlock(8, 2):state_variant())
    assert.are.equal("TransformerEncoderLayer(norm_first=true, activation=gelu, causal=true)",
                     nn.TransformerBlock(8, 2, {causal = true}):state_variant())
  end)

  it("takes a TransformerBlock's state dict with norm_first and gelu, and refuses it without",
     function()
    mg.manual_seed(41)
    local block = nn.TransformerBlock(6, 2, {dim_feedforward = 12, dtype = "float64"})
    local pre = nn.TransformerEncoderLayer(6, 2, {dim_feedforward = 12, dropout = 0,
                                                  norm_first = true, activation = "gelu",
                                                  dtype = "float64"})
    local post = nn.TransformerEncoderLayer(6, 2, {dim_feedforward = 12, dropout = 0,
                                                   dtype = "float64"})
    pre:load_state_dict(block:state_dict())
    local x = mg.randn(2, 4, 6, "float64")
    check(pre(x), block(x), 1e-12, "pre-norm GELU")
    -- The names are the same, the maths not: moongrad's state dict says so.
    local ok, err = pcall(post.load_state_dict, post, block:state_dict())
    assert.is_false(ok)
    assert.matches("wrong variant", err, 1, true)
    assert.matches("TransformerEncoderLayer(norm_first=false, activation=relu)", err, 1, true)
    -- A foreign state dict records nothing: it loads, and computes other maths.
    local foreign = {}
    for name, t in pairs(block:state_dict()) do foreign[name] = t end
    post:load_state_dict(foreign)
    assert.is_false(pcall(approx.assert_close, post(x), block(x), 1e-3, 1e-3))
  end)

  it("is causal with is_causal, as with the equivalent flag mask", function()
    mg.manual_seed(42)
    local m = nn.TransformerEncoderLayer(6, 2, {dim_feedforward = 8, dropout = 0,
                                                dtype = "float64"})
    local x = mg.randn(2, 4, 6, "float64")
    local blocked = mg.tensor({{0, 1, 1, 1}, {0, 0, 1, 1}, {0, 0, 0, 1}, {0, 0, 0, 0}}, "int64")
    check(m(x, {is_causal = true}), m(x, {src_mask = blocked}), 1e-12, "causal")
  end)

  it("uses its dropout only in training mode", function()
    mg.manual_seed(43)
    check_dropout_modes(nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16, dropout = 0.5,
                                                         dtype = "float64"}),
                        mg.randn(2, 4, 8, "float64"))
  end)

  it("passes gradcheck in float64, post-norm with a padding mask", function()
    mg.manual_seed(44)
    local m = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 6, dropout = 0,
                                                dtype = "float64"})
    local x = mg.randn(2, 3, 4, "float64"):requires_grad()
    local pad = mg.tensor({{0, 0, 1}, {0, 0, 0}}, "int64")
    assert.is_true(mg.gradcheck(function(input)
      return m(input, {src_key_padding_mask = pad})
    end, {x}))
  end)

  describe("raises a clear error", function()
    local m = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16})
    local cases = {
      {"when d_model is not divisible by nhead", function() nn.TransformerEncoderLayer(10, 3) end,
       "d_model (10) must be divisible by nhead (3)"},
      {"for an unknown activation",
       function() nn.TransformerEncoderLayer(8, 2, {activation = "tanh"}) end,
       "activation must be \"relu\" or \"gelu\", got \"tanh\""},
      {"for a norm_first that is not a boolean",
       function() nn.TransformerEncoderLayer(8, 2, {norm_first = "yes"}) end,
       "norm_first must be a boolean, got \"yes\""},
      {"for a layer_norm_eps that is not positive",
       function() nn.TransformerEncoderLayer(8, 2, {layer_norm_eps = 0}) end,
       "layer_norm_eps must be a positive number, got 0"},
      {"for a dropout outside [0, 1]",
       function() nn.TransformerEncoderLayer(8, 2, {dropout = 2}) end,
       "dropout must be a probability in [0, 1], got 2"},
      {"for an input of the wrong width", function() m(mg.randn(2, 3, 6)) end,
       "expects src [N, L, 8], got [2,3,6]"},
      {"for a padding mask of the wrong shape",
       function() m(mg.randn(2, 3, 8), {src_key_padding_mask = mg.zeros(2, 4)}) end,
       "src_key_padding_mask must be [N, L] = [2, 3], got [2,4]"},
      {"for a src_mask of the wrong shape",
       function() m(mg.randn(2, 3, 8), {src_mask = mg.zeros(5, 3, 3)}) end,
       "src_mask must be [L, L] = [3, 3] or [N*nhead, L, L] = " ..
       "[4, 3, 3], got [5,3,3]"},
      {"for MultiheadAttention's option name",
       function() m(mg.randn(2, 3, 8), {attn_mask = mg.zeros(3, 3)}) end,
       "unknown option 'attn_mask'"},
    }
    it_raises("TransformerEncoderLayer: ", cases)
  end)
end)

describe("TransformerEncoder", function()
  local function build(c, dt)
    local layer = nn.TransformerEncoderLayer(c.d_model, c.nhead, {
      dim_feedforward = c.dim_feedforward, dropout = 0, activation = c.activation,
      batch_first = c.batch_first, norm_first = c.norm_first, dtype = dt})
    return nn.TransformerEncoder(layer, c.num_layers,
                                 {norm = nn.LayerNorm(c.d_model, {dtype = dt})})
  end

  local function run(c, dt)
    local m = build(c, dt)
    local y, x = run_encoder(m, c, dt, function(enc, x)
      return enc(x, {mask = mask_of(c.mask, c.mask_kind, dt),
                     src_key_padding_mask = mask_of(c.src_key_padding_mask,
                                                    c.src_key_padding_mask_kind, dt)})
    end, true)
    return m, y, x
  end

  describe("matches torch.nn.TransformerEncoder in float64", function()
    for _, c in ipairs(ref.encoder) do
      it("with " .. c.name, function()
        local m, y, x = run(c, "float64")
        check_encoder(m, c, y, x, TOL, true)
      end)
    end
  end)

  it("matches it in float32", function()
    local c = ref.encoder[2]
    local m, y, x = run(c, "float32")
    check_encoder(m, c, y, x, TOL32_LAYER, true)
  end)

  it("stacks deep copies that start equal and train apart, leaving the layer given out", function()
    mg.manual_seed(51)
    local layer = nn.TransformerEncoderLayer(4, 2, {dim_feedforward = 8})
    local enc = nn.TransformerEncoder(layer, 3)
    assert.are.equal(3, #enc.layers)
    for i = 1, 3 do
      local l = enc.layers[i]
      assert.are_not.equal(layer, l)
      assert.are.same(layer.linear1.weight:totable(), l.linear1.weight:totable())
      assert.is_false(l.linear1.weight:shares_storage(layer.linear1.weight))
      assert.is_true(l.linear1.weight:is_requires_grad())
    end
    assert.are.equal(3 * layer:num_parameters(), enc:num_parameters())
    assert.is_false(enc.layers[1].linear1.weight:shares_storage(enc.layers[2].linear1.weight))
    local names = enc:state_dict_names()
    assert.are.equal("layers.1.self_attn.in_proj_weight", names[1])
    assert.are.equal("layers.3.norm2.bias", names[#names])
    assert.is_nil(enc.norm)
  end)

  it("names its state dict as PyTorch's with {torch = true}, and records each layer's variant",
     function()
    local c = ref.encoder[1]
    local m = build(c, "float64")
    local ours, theirs = {}, {}
    for name in pairs(m:state_dict({torch = true})) do ours[#ours + 1] = name end
    for name in pairs(c.params) do theirs[#theirs + 1] = name end
    table.sort(ours)
    table.sort(theirs)
    assert.are.same(theirs, ours)
    -- A pre-norm encoder has the same names; a post-norm one's state dict
    -- says which layers it was saved from.
    local pre = build({d_model = c.d_model, nhead = c.nhead, dim_feedforward = c.dim_feedforward,
                       activation = c.activation, batch_first = true, norm_first = true,
                       num_layers = c.num_layers}, "float64")
    local ok, err = pcall(pre.load_state_dict, pre, m:state_dict())
    assert.is_false(ok)
    assert.matches("'layers.1' was saved from TransformerEncoderLayer(norm_first=false", err,
                   1, true)
  end)

  it("writes a file with {torch = true} that PyTorch loads strictly and computes alike",
     function()
    local why = peers.missing("torch", "python3-torch", "PyTorch's side")
    if why then pending(why) return end
    local dir = shell.tmpdir()
    local configs = {
      {d_model = 8, nhead = 2, dim_feedforward = 16, activation = "relu", norm_first = false,
       batch_first = true, num_layers = 2, norm = true, dtype = "float64", L = 5},
      {d_model = 6, nhead = 3, dim_feedforward = 12, activation = "gelu", norm_first = true,
       batch_first = false, num_layers = 3, norm = false, dtype = "float32", L = 4},
    }
    for i, cfg in ipairs(configs) do
      mg.manual_seed(60 + i)
      local dt = cfg.dtype
      local layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.nhead, {
        dim_feedforward = cfg.dim_feedforward, dropout = 0, activation = cfg.activation,
        norm_first = cfg.norm_first, batch_first = cfg.batch_first, dtype = dt})
      local norm = cfg.norm and nn.LayerNorm(cfg.d_model, {dtype = dt}) or nil
      local enc = nn.TransformerEncoder(layer, cfg.num_layers, {norm = norm})
      for _, p in ipairs(enc:parameters()) do   -- every layer different
        mg.no_grad(function() p:copy_(mg.randn(p:shape(), dt) * 0.5) end)
      end
      local n, l = 2, cfg.L
      local x = mg.randn(cfg.batch_first and {n, l, cfg.d_model} or {l, n, cfg.d_model}, dt)
      local io = {x = x, g = mg.randn(x:shape(), dt),
                  src_key_padding_mask = mg.tensor({{0, 0, 0, 1, 1}, {0, 0, 0, 0, 1}}, "int64")
                                          :narrow(2, 1, l)}
      if i == 1 then io.mask = mg.ones(l, l):triu(1):long() end
      local xr = x:clone():requires_grad()
      local y = enc(xr, {mask = io.mask, src_key_padding_mask = io.src_key_padding_mask})
      y:backward(io.g)
      io.y, io["grad.x"] = y:detach(), xr.grad
      local state = ("%s/state%d.safetensors"):format(dir, i)
      local io_path = ("%s/io%d.safetensors"):format(dir, i)
      mg.save(state, enc:state_dict({torch = true}))
      mg.save(io_path, io)
      local json = ('{"d_model": %d, "nhead": %d, "dim_feedforward": %d, "activation": "%s", ' ..
                    '"norm_first": %s, "batch_first": %s, "num_layers": %d, "norm": %s}')
                   :format(cfg.d_model, cfg.nhead, cfg.dim_feedforward, cfg.activation,
                           tostring(cfg.norm_first), tostring(cfg.batch_first), cfg.num_layers,
                           tostring(cfg.norm))
      local out, rc = shell.run_merged(
        "cd spec/fixtures && /usr/bin/python3 gen_attention_check.py " .. shell.quote(json) ..
        " " .. shell.quote(state) .. " " .. shell.quote(io_path))
      assert.equal(0, rc, out)
    end
    os.execute("rm -rf " .. shell.quote(dir))
  end)

  it("passes each layer the mask, the padding mask and is_causal", function()
    mg.manual_seed(52)
    local layer = nn.TransformerEncoderLayer(6, 2, {dim_feedforward = 8, dropout = 0,
                                                    dtype = "float64"})
    local norm = nn.LayerNorm(6, {dtype = "float64"})
    local enc = nn.TransformerEncoder(layer, 2, {norm = norm})
    local x = mg.randn(2, 4, 6, "float64")
    local pad = mg.tensor({{0, 0, 0, 1}, {0, 0, 1, 1}}, "int64")
    local by_hand = x
    for i = 1, 2 do
      by_hand = enc.layers[i](by_hand, {src_key_padding_mask = pad, is_causal = true})
    end
    check(enc(x, {src_key_padding_mask = pad, is_causal = true}), enc.norm(by_hand), 1e-12,
          "the layers in turn, then the norm")
  end)

  it("computes padded positions as PyTorch's slow path, where its eval fast path trims and zeroes",
     function()
    local c = ref.fast_path[1]
    local layer = nn.TransformerEncoderLayer(c.d_model, c.nhead, {
      dim_feedforward = c.dim_feedforward, dtype = "float64"})
    local enc = nn.TransformerEncoder(layer, 2,
                                      {norm = nn.LayerNorm(c.d_model, {dtype = "float64"})})
    load(enc, c, "float64", true)
    enc:eval()
    local pad = mg.tensor(c.src_key_padding_mask, "int64")
    local y = enc(mg.tensor(c.x, "float64"), {src_key_padding_mask = pad})
    -- moongrad keeps every position: [2, 5, 8]. PyTorch's fast path
    -- returned [2, 4, 8] (the longest unpadded length).
    assert.are.same({2, 5, 8}, y:shape())
    local yt, fast = y:totable(), c.y_fast
    for n = 1, 2 do
      for l = 1, 4 do
        if c.src_key_padding_mask[n][l] == 0 then
          check(yt[n][l], fast[n][l], 1e-10, "unpadded position " .. n .. "," .. l)
        end
      end
    end
    -- A padded position is not PyTorch's norm(0) (the final norm's bias).
    assert.is_false(pcall(approx.assert_close, yt[1][4], fast[1][4], 1e-3, 1e-3))
  end)

  describe("raises a clear error", function()
    local layer = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16})
    local cases = {
      {"for a layer that is not a module", function() nn.TransformerEncoder({}, 2) end,
       "encoder_layer must be a module (a TransformerEncoderLayer), got table"},
      {"for num_layers 0", function() nn.TransformerEncoder(layer, 0) end,
       "num_layers must be a positive integer, got 0"},
      {"for a norm that is not a module",
       function() nn.TransformerEncoder(layer, 2, {norm = 1e-5}) end,
       "norm must be a module (a LayerNorm) or nil, got number"},
      {"for a 2-D input", function() nn.TransformerEncoder(layer, 1)(mg.randn(3, 8)) end,
       "expects src [N, L, 8], got [3,8]"},
      {"for a padding mask of the wrong shape, under its own option name",
       function()
         nn.TransformerEncoder(layer, 2)(mg.randn(2, 3, 8), {src_key_padding_mask = mg.zeros(3)})
       end, "src_key_padding_mask must be [N, L] = [2, 3], got [3]"},
      {"for a mask of the wrong shape, under its own option name",
       function() nn.TransformerEncoder(layer, 2)(mg.randn(2, 3, 8), {mask = mg.zeros(2, 3)}) end,
       "mask must be [L, L] = [3, 3] or [N*nhead, L, L] = [4, 3, 3], got [2,3]"},
      {"for the layer's option name",
       function()
         nn.TransformerEncoder(layer, 1)(mg.randn(1, 3, 8), {src_mask = mg.zeros(3, 3)})
       end,
       "unknown option 'src_mask'"},
    }
    it_raises("TransformerEncoder: ", cases)
  end)
end)

describe("bool masks, PyTorch's kind", function()
  it("mean what int64 flags mean, in every function that takes a mask", function()
    mg.manual_seed(21)
    local x = mg.randn(2, 5, 8)
    local pad = mg.tensor({{false, false, false, true, true}, {false, false, false, false, false}})
    local causal = mg.ones(5, 5):triu(1):long():to("bool")
    local mha = nn.MultiheadAttention(8, 2)
    local function same(a, b) assert.equal(0, (a - b):abs():max():item()) end
    same(mha(x, x, x, {key_padding_mask = pad}), mha(x, x, x, {key_padding_mask = pad:long()}))
    same(mha(x, x, x, {attn_mask = causal}), mha(x, x, x, {attn_mask = causal:long()}))
    same(mha(x, x, x, {attn_mask = causal, key_padding_mask = pad}),
         mha(x, x, x, {attn_mask = causal:long(), key_padding_mask = pad:long()}))
    local layer = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16, dropout = 0})
    same(layer(x, {src_key_padding_mask = pad}), layer(x, {src_key_padding_mask = pad:long()}))
    -- scaled_dot_product_attention's flags mean "may attend"
    local keep = causal:long():eq(0):long():to("bool")
    same(F.scaled_dot_product_attention(x, x, x, {attn_mask = keep}),
         F.scaled_dot_product_attention(x, x, x, {attn_mask = keep:long()}))
  end)
end)
