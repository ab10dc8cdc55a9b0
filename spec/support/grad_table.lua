-- The table of differentiable ops: for every name an op records its
-- backward under (runtime/grad_ops.c), a function to differentiate and a
-- maker of float64 inputs where the op is smooth (no ties, no kinks, no
-- discontinuities within the finite-difference step). spec/gradients_spec.lua
-- gradchecks every entry and proves, through mg._audit_ops, that the table
-- covers the list. Entries may carry gradcheck options (opts).
local mg = require "moongrad"
local F = require "moongrad.functional"

-- A leaf float64 tensor of normal draws, requiring grad.
local function r(...) return mg.randn({...}, "float64"):requires_grad() end

-- Positive: |draws| + 0.5.
local function pos(...) return (mg.randn({...}, "float64"):abs() + 0.5):requires_grad() end

-- In (0.1, 0.9): probabilities away from the clamps.
local function prob(...) return (mg.rand({...}, "float64") * 0.8 + 0.1):requires_grad() end

-- n + 0.1 + 0.3 u: away from whole and half numbers, so floor, round, ... are flat
-- within the step.
local function offgrid(...)
  return (mg.randint(-3, 3, {...}):double() + 0.1 + mg.rand({...}, "float64") * 0.3)
    :requires_grad()
end

local function ids(t) return mg.tensor(t, "int64") end

local function mask(...) return mg.rand({...}):gt(0.5) end

local function unary(name, make)
  return {name, function(x) return x[name](x) end, function() return {(make or r)(3, 4)} end}
end

local T = {
  -- elementwise
  unary("neg"), unary("abs"), unary("square"), unary("relu"), unary("exp"), unary("tanh"),
  unary("sigmoid"), unary("sin"), unary("cos"), unary("expm1"),
  unary("sqrt", pos), unary("rsqrt", pos), unary("log", pos), unary("log1p", pos),
  unary("reciprocal", pos),
  unary("sign", offgrid), unary("floor", offgrid), unary("ceil", offgrid),
  unary("round", offgrid), unary("trunc", offgrid),
  {"add", function(a, b) return a + b end, function() return {r(3, 4), r(4)} end},
  {"sub", function(a, b) return a - b end, function() return {r(3, 1), r(1, 4)} end},
  {"mul", function(a, b) return a * b end, function() return {r(3, 4), r(3, 4)} end},
  {"div", function(a, b) return a / b end, function() return {r(3, 4), pos(3, 4)} end},
  {"pow", function(a, b) return a ^ b end, function() return {pos(3, 4), r(3, 4)} end},
  {"remainder", function(a) return a % 7 end, function() return {offgrid(3, 4)} end},
  {"maximum", function(a, b) return mg.maximum(a, b) end, function() return {r(3, 4), r(3, 4)} end},
  {"minimum", function(a, b) return mg.minimum(a, b) end, function() return {r(3, 4), r(3, 4)} end},
  {"atan2", function(a, b) return mg.atan2(a, b) end, function() return {r(3, 4), pos(3, 4)} end},
  {"clamp", function(x) return x:clamp(-0.5, 0.5) end,
   function() return {(mg.tensor({-0.9, -0.2, 0.1, 0.3, 0.8, 1.7}, "float64")):requires_grad()} end},
  -- the mask is drawn inside, from a fixed seed: the same at every call
  {"where", function(a, b) mg.manual_seed(1) return mg.where(mask(3, 4), a, b) end,
   function() return {r(3, 4), r(3, 4)} end},
  {"masked_fill", function(x) mg.manual_seed(2) return x:masked_fill(mask(3, 4), 0.5) end,
   function() return {r(3, 4)} end},
  -- reductions
  {"sum", function(x) return x:sum(2) end, function() return {r(3, 4)} end},
  {"mean", function(x) return x:mean(1, true) end, function() return {r(3, 4)} end},
  {"prod", function(x) return x:prod(2) end, function() return {r(3, 4)} end},
  {"max", function(x) return (x:max(2)) end, function() return {r(3, 5)} end},
  {"min", function(x) return x:min() end, function() return {r(3, 5)} end},
  {"var", function(x) return x:var(2) end, function() return {r(3, 5)} end},
  {"std", function(x) return x:std() end, function() return {r(3, 5)} end},
  -- views and copies
  {"view", function(x) return x:view(4, 3) end, function() return {r(3, 4)} end},
  {"reshape", function(x) return x:t():reshape(12) end, function() return {r(3, 4)} end},
  {"squeeze", function(x) return x:squeeze(2) end, function() return {r(3, 1, 4)} end},
  {"unsqueeze", function(x) return x:unsqueeze(1) end, function() return {r(3, 4)} end},
  {"transpose", function(x) return x:transpose(1, 3) end, function() return {r(2, 3, 4)} end},
  {"permute", function(x) return x:permute(3, 1, 2) end, function() return {r(2, 3, 4)} end},
  {"narrow", function(x) return x:narrow(2, 2, 2) end, function() return {r(3, 4)} end},
  {"select", function(x) return x:select(2, 3) end, function() return {r(3, 4)} end},
  {"expand", function(x) return x:expand(3, 4) end, function() return {r(3, 1)} end},
  {"clone", function(x) return x:clone() end, function() return {r(3, 4)} end},
  {"contiguous", function(x) return x:t():contiguous() end, function() return {r(3, 4)} end},
  -- through float32 and back: the step must dwarf float32's rounding
  {"to", function(x) return x:to("float32"):to("float64") end, function() return {r(3, 4)} end,
   opts = {eps = 1e-2, atol = 1e-4}},
  -- indexing, joining, triangles
  {"index_select", function(x) return x:index_select(1, ids({3, 1, 3})) end,
   function() return {r(3, 4)} end},
  {"gather", function(x) return x:gather(2, ids({{1, 1}, {4, 2}, {3, 3}})) end,
   function() return {r(3, 4)} end},
  {"scatter", function(x, src) return x:scatter(2, ids({{2}, {4}, {1}}), src) end,
   function() return {r(3, 4), r(3, 1)} end},
  {"scatter_add", function(x, src) return x:scatter_add(2, ids({{2, 2}, {4, 1}, {1, 3}}), src) end,
   function() return {r(3, 4), r(3, 2)} end},
  {"cat", function(a, b) return mg.cat({a, b}, 2) end, function() return {r(3, 2), r(3, 4)} end},
  {"stack", function(a, b) return mg.stack({a, b}, 1) end, function() return {r(3, 4), r(3, 4)} end},
  {"tril", function(x) return x:tril(-1) end, function() return {r(2, 4, 4)} end},
  {"triu", function(x) return x:triu(1) end, function() return {r(4, 5)} end},
  -- linear algebra
  {"matmul", function(a, b) return a:matmul(b) end, function() return {r(2, 3, 4), r(4, 5)} end},
  {"linalg.cholesky", function(a) return mg.linalg.cholesky(a:matmul(a:t()) + mg.eye(4, "float64") * 4) end,
   function() return {r(4, 4)} end},
  {"linalg.solve_triangular", function(l, b)
    return mg.linalg.solve_triangular(l:tril() + mg.eye(3, "float64") * 3, b, {upper = false})
  end, function() return {r(3, 3), r(3, 2)} end},
  {"cholesky_solve", function(l, b)
    return mg.cholesky_solve(b, l:tril() + mg.eye(3, "float64") * 3)
  end, function() return {r(3, 3), r(3, 2)} end},
  -- layers
  {"linear", F.linear, function() return {r(2, 3, 4), r(5, 4), r(5)} end},
  {"leaky_relu", function(x) return F.leaky_relu(x, 0.1) end, function() return {r(3, 4)} end},
  {"elu", function(x) return F.elu(x, {alpha = 1.3}) end, function() return {r(3, 4)} end},
  {"gelu", function(x) return F.gelu(x, {approximate = "tanh"}) end, function() return {r(3, 4)} end},
  {"silu", F.silu, function() return {r(3, 4)} end},
  {"softmax", function(x) return F.softmax(x, 2) end, function() return {r(2, 3, 4)} end},
  {"log_softmax", function(x) return F.log_softmax(x, 1) end, function() return {r(3, 4)} end},
  {"dropout", function(x) mg.manual_seed(3) return F.dropout(x, 0.4, true) end,
   function() return {r(3, 4)} end},
  {"embedding", function(w) return F.embedding(ids({{1, 3}, {3, 5}}), w) end,
   function() return {r(5, 3)} end},
  {"layer_norm", function(x, w, b) return F.layer_norm(x, {4}, w, b) end,
   function() return {r(3, 4), r(4), r(4)} end},
  {"batch_norm", function(x, w, b) return F.batch_norm(x, nil, nil, w, b, {training = true}) end,
   function() return {r(4, 3, 2, 2), r(3), r(3)} end},
  {"conv2d", function(x, w, b) return F.conv2d(x, w, b, {stride = 2, padding = 1}) end,
   function() return {r(2, 2, 5, 5), r(3, 2, 3, 3), r(3)} end},
  {"conv_transpose2d", function(x, w, b)
    return F.conv_transpose2d(x, w, b, {stride = 2, padding = 1, output_padding = 1})
  end, function() return {r(2, 2, 3, 3), r(2, 3, 3, 3), r(3)} end},
  {"pad", function(x) return F.pad(x, {1, 2, 2, 0}, {mode = "reflect"}) end,
   function() return {r(1, 2, 4, 4)} end},
  {"max_pool2d", function(x) return F.max_pool2d(x, 2) end, function() return {r(2, 2, 4, 4)} end},
  {"avg_pool2d", function(x) return F.avg_pool2d(x, 3, {stride = 2, padding = 1}) end,
   function() return {r(2, 2, 5, 5)} end},
  {"adaptive_avg_pool2d", function(x) return F.adaptive_avg_pool2d(x, {2, 3}) end,
   function() return {r(2, 2, 5, 7)} end},
  {"rnn_tanh", function(xp, h0, w) return mg._rnn_layer("rnn_tanh", xp, h0, nil, w) end,
   function() return {r(2, 3, 4), r(2, 4), r(4, 4)} end},
  {"rnn_relu", function(xp, h0, w) return mg._rnn_layer("rnn_relu", xp, h0, nil, w, nil, nil, true) end,
   function() return {r(2, 3, 4), pos(2, 4), pos(4, 4)} end},
  {"lstm", function(xp, h0, c0, w, wr)
    return mg._rnn_layer("lstm", xp, h0, c0, w, nil, wr)
  end, function() return {r(2, 3, 12), r(2, 2), r(2, 3), r(12, 2), r(2, 3)} end},
  {"gru", function(xp, h0, w, b) return mg._rnn_layer("gru", xp, h0, nil, w, b) end,
   function() return {r(2, 3, 9), r(2, 3), r(9, 3), r(9)} end},
  -- attention: the fused op (runtime/ops_attention.c) under its three names
  {"attention", function(q, k, v, m)
    return F.scaled_dot_product_attention(q, k, v, {attn_mask = m})
  end, function()
    return {r(2, 2, 3, 4), r(2, 2, 5, 4), r(2, 2, 5, 3), mg.randn({3, 5}, "float64")}
  end},
  {"attention_packed", function(qkv) return mg._attention_packed(qkv, 2, nil, true, 0.4, false) end,
   function() return {r(2, 4, 12)} end},
  {"attention_weights", function(q, k)
    local _, w = F.scaled_dot_product_attention(q, k, mg.ones({2, 3, 2}, "float64"), {is_causal = true})
    return w
  end, function() return {r(2, 3, 4), r(2, 3, 4)} end},
  -- losses
  {"cross_entropy", function(x) return F.cross_entropy(x, ids({2, 1, 3}), {label_smoothing = 0.1}) end,
   function() return {r(3, 4)} end},
  {"nll_loss", function(x) return F.nll_loss(x, ids({2, 1, 3})) end, function() return {r(3, 4)} end},
  {"mse_loss", F.mse_loss, function() return {r(3, 4), r(3, 4)} end},
  {"l1_loss", F.l1_loss, function() return {r(3, 4), r(3, 4)} end},
  {"smooth_l1_loss", function(a, b) return F.smooth_l1_loss(a, b, {beta = 0.5}) end,
   function() return {r(3, 4), r(3, 4)} end},
  {"huber_loss", function(a, b) return F.huber_loss(a, b, {delta = 0.5}) end,
   function() return {r(3, 4), r(3, 4)} end},
  {"binary_cross_entropy", F.binary_cross_entropy, function() return {prob(3, 4), prob(3, 4)} end},
  {"binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
   function() return {r(3, 4), prob(3, 4)} end},
}

return T
