-- Help for moongrad.functional (`F`), moongrad.plot and moongrad.checkpoint.
-- The form of an entry is described in moongrad/help.lua.
return {
  ---------------------------------------------------------------------------
  -- F

  F = {
    sig = 'local F = require "moongrad.functional"',
    doc = [[The layers of a network as plain differentiable functions of tensors, with torch.nn.functional's names, defaults and results. Options go in a trailing table and an unknown option is an error; class labels and embedding ids are 1-based int64, dims are 1-based or negative. Most functions are one C kernel with its own backward, computing in float64 when an operand is float64 and in float32 otherwise (integer input included).]],
    groups = { "Activations", "Layers", "Normalization", "Convolution and pooling", "Losses", "Attention" },
    example = [[
local x, w, b = mg.randn(4, 3), mg.randn(2, 3):requires_grad(), mg.zeros(2)
local loss = F.cross_entropy(F.linear(F.relu(x), w, b), mg.tensor({1, 2, 2, 1}, "int64"))
loss:backward()
print(table.concat(w.grad:shape(), "x"))   --> 2x3]],
    see = { "nn", "mg", "optim" },
  },

  -- Activations -------------------------------------------------------------

  ["F.relu"] = {
    sig = { "F.relu(x)", "x:relu()" },
    doc = [[max(x, 0) elementwise; the same function as mg.relu. The result keeps x's dtype (an int64 tensor stays int64). PyTorch's inplace=True is x:relu_().]],
    example = [[
print(F.relu(mg.tensor({-1, 0, 2})):sum():item())   --> 2.0]],
    group = "Activations",
    see = { "mg.relu", "nn.ReLU", "F.leaky_relu", "F.gelu" },
  },

  ["F.sigmoid"] = {
    sig = { "F.sigmoid(x)", "x:sigmoid()" },
    doc = [[1 / (1 + exp(-x)) elementwise; the same function as mg.sigmoid. Integer input gives float32. For a binary loss on raw scores use F.binary_cross_entropy_with_logits rather than sigmoid followed by F.binary_cross_entropy: it stays accurate for large |x|.]],
    example = [[
print(F.sigmoid(mg.tensor({0})):item())   --> 0.5]],
    group = "Activations",
    see = { "mg.sigmoid", "nn.Sigmoid", "F.silu", "F.binary_cross_entropy_with_logits" },
  },

  ["F.tanh"] = {
    sig = { "F.tanh(x)", "x:tanh()" },
    doc = [[The hyperbolic tangent elementwise, in (-1, 1); the same function as mg.tanh. Integer input gives float32.]],
    example = [[
print(string.format("%.4f", F.tanh(mg.tensor({1})):item()))   --> 0.7616]],
    group = "Activations",
    see = { "mg.tanh", "nn.Tanh", "F.sigmoid" },
  },

  ["F.leaky_relu"] = {
    sig = { "F.leaky_relu(x [, opts])", "F.leaky_relu(x, negative_slope)" },
    doc = [[x where x > 0, negative_slope * x elsewhere. The slope is given in an options table or directly as a number (PyTorch's positional form). The result is float32 or float64.]],
    opts = { { "negative_slope", "0.01", "the slope for negative inputs" } },
    example = [[
local x = mg.tensor({-2, 3})
local a, b = F.leaky_relu(x), F.leaky_relu(x, {negative_slope = 0.5})
print(string.format("%.2f %.2f", a:get(1), b:get(1)))   --> -0.02 -1.00]],
    group = "Activations",
    see = { "nn.LeakyReLU", "F.relu", "F.elu" },
  },

  ["F.elu"] = {
    sig = { "F.elu(x [, opts])", "F.elu(x, alpha)" },
    doc = [[The exponential linear unit: x where x > 0, alpha * (exp(x) - 1) elsewhere. alpha is given in an options table or directly as a number. The result is float32 or float64.]],
    opts = { { "alpha", "1", "the value the output approaches as x goes to -inf is -alpha" } },
    example = [[
local y = F.elu(mg.tensor({-1, 2}), {alpha = 2})
print(string.format("%.4f %.1f", y:get(1), y:get(2)))   --> -1.2642 2.0]],
    group = "Activations",
    see = { "nn.ELU", "F.leaky_relu", "F.gelu" },
  },

  ["F.gelu"] = {
    sig = "F.gelu(x [, opts])",
    doc = [[The Gaussian error linear unit x * Phi(x), Phi the standard normal CDF. approximate = "tanh" uses the tanh formula of the GPT-2 and BERT code, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); any other string is an error. The result is float32 or float64.]],
    opts = { { "approximate", '"none"', '"none" (the exact erf form) or "tanh"' } },
    example = [[
local x = mg.tensor({1})
local exact, approx = F.gelu(x), F.gelu(x, {approximate = "tanh"})
print(string.format("%.4f %.4f", exact:item(), approx:item()))   --> 0.8413 0.8412]],
    group = "Activations",
    see = { "nn.GELU", "F.silu", "F.relu" },
  },

  ["F.silu"] = {
    sig = "F.silu(x)",
    doc = [[x * sigmoid(x) elementwise (also called swish). Takes no options; the result is float32 or float64.]],
    example = [[
print(string.format("%.4f", F.silu(mg.tensor({1})):item()))   --> 0.7311]],
    group = "Activations",
    see = { "nn.SiLU", "F.gelu", "F.sigmoid" },
  },

  ["F.softmax"] = {
    sig = "F.softmax(x [, dim])",
    doc = [[exp(x) normalized to sum to 1 along dim, which is 1-based or negative and defaults to -1 (the last dim; PyTorch warns and guesses when dim is left out). The maximum is subtracted first, so large inputs never overflow. A dim outside x's dims is an error; a 0-d x gives 1.]],
    example = [[
local p = F.softmax(mg.tensor({{1, 2, 3}, {0, 0, 0}}))
print(p:sum(2):get(1), string.format("%.4f", p:get(2, 1)))   --> 1.0  0.3333]],
    group = "Activations",
    see = { "F.log_softmax", "nn.Softmax", "F.cross_entropy" },
  },

  ["F.log_softmax"] = {
    sig = "F.log_softmax(x [, dim])",
    doc = [[log(softmax(x)) along dim (1-based or negative, default -1), computed as x - max - log(sum(exp(x - max))), so it neither overflows nor loses the small probabilities. Feed it to F.nll_loss; F.cross_entropy does both steps in one kernel.]],
    example = [[
local lp = F.log_softmax(mg.tensor({{1, 1}}), 2)
print(string.format("%.4f", lp:get(1, 1)))   --> -0.6931]],
    group = "Activations",
    see = { "F.softmax", "F.nll_loss", "nn.LogSoftmax" },
  },

  -- Layers ------------------------------------------------------------------

  ["F.linear"] = {
    sig = "F.linear(x, weight [, bias])",
    doc = [[x @ weight^T + bias as one gemm: x [..., in], weight [out, in] (PyTorch's layout), bias [out] or nil, result [..., out]. A 1-D x [in] gives [out]. An input whose last dim is not in, a weight that is not 2-D or a bias that is not [out] is an error naming the shapes.]],
    example = [[
local y = F.linear(mg.ones(2, 3), mg.ones(4, 3), mg.ones(4))
print(table.concat(y:shape(), "x"), y:get(1, 1))   --> 2x4  4.0]],
    group = "Layers",
    see = { "nn.Linear", "mg.matmul" },
  },

  ["F.dropout"] = {
    sig = "F.dropout(x [, p [, training]])",
    doc = [[Zeroes each element with probability p (default 0.5) and scales the kept ones by 1 / (1 - p), so the expectation is unchanged. training defaults to true as in PyTorch; with training false or p == 0 the result is x itself. The mask is drawn from the state's random generator (mg.manual_seed repeats it). p outside [0, 1] or a training flag that is not a boolean is an error; p and training are positional, not an options table.]],
    example = [[
local y = F.dropout(mg.ones(1000), 0.5)
print(y:max():item(), F.dropout(y, 0.5, false) == y)   --> 2.0  true]],
    group = "Layers",
    see = { "nn.Dropout", "mg.manual_seed" },
  },

  ["F.embedding"] = {
    sig = "F.embedding(ids, weight [, opts])",
    doc = [[Looks up rows of weight [V, D]: ids is an int64 tensor of any shape holding 1-based ids in 1..V (PyTorch's are 0-based), and the result is [ids..., D]. The gradient scatter-adds into weight's rows (repeated ids accumulate). padding_idx, also 1-based, leaves that row's gradient zero; the forward still returns the row as it is. Float ids, an id outside 1..V or a weight that is not 2-D is an error.]],
    opts = { { "padding_idx", "nil", "an id (1-based) whose row receives no gradient" } },
    example = [[
local weight = mg.arange(0, 6, "float32"):reshape(3, 2)
local e = F.embedding(mg.tensor({{3, 1}}, "int64"), weight)
print(table.concat(e:shape(), "x"), e:get(1, 1, 1))   --> 1x2x2  4.0]],
    group = "Layers",
    see = { "nn.Embedding" },
  },

  ["F.pad"] = {
    sig = "F.pad(x, pad [, opts])",
    doc = [[Pads (or, with negative amounts, crops) x. pad lists {before, after} pairs in PyTorch's order, last dim first: {left, right}, then {left, right, top, bottom}, and so on; an odd count is an error. Mode "constant" pads any dims with value; "reflect", "replicate" and "circular" pad the last 1, 2 or 3 dims of a 2-D to 5-D x (2, 4 or 6 values), with PyTorch's limits (reflect needs amounts smaller than the dim, circular wraps at most once) and take no value. Works on any dtype and is differentiable.]],
    opts = {
      { "mode", '"constant"', '"constant", "reflect", "replicate" or "circular"' },
      { "value", "0", "the fill of mode constant" },
    },
    example = [[
local t = mg.tensor({{1, 2, 3}})
print(F.pad(t, {1, 2}):shape()[2], F.pad(t, {1, 0}, {value = 9}):get(1, 1))   --> 6  9.0
print(F.pad(t, {2, 0}, {mode = "reflect"}):get(1, 1))   --> 3.0]],
    group = "Convolution and pooling",
    see = { "nn.Conv2d", "F.conv2d" },
  },

  -- Normalization -----------------------------------------------------------

  ["F.layer_norm"] = {
    sig = "F.layer_norm(x, normalized_shape [, weight [, bias [, opts]]])",
    doc = [[Normalizes x over its trailing dims to mean 0 and variance 1 (the biased variance, as PyTorch), then multiplies by weight and adds bias. normalized_shape is one size or a list of sizes that must equal x's last dims; weight and bias have that shape or are nil (pass nil to skip one and still give opts).]],
    opts = { { "eps", "1e-5", "added to the variance before the square root; a finite number >= 0" } },
    example = [[
local y = F.layer_norm(mg.tensor({{1, 2, 3}}), {3})
print(string.format("%.4f %.4f", y:get(1, 1), y:get(1, 3)))   --> -1.2247 1.2247]],
    group = "Normalization",
    see = { "nn.LayerNorm", "F.batch_norm" },
  },

  ["F.batch_norm"] = {
    sig = "F.batch_norm(x, running_mean, running_var [, weight [, bias [, opts]]])",
    doc = [[Normalizes each channel of x [N, C, ...] over the batch and any spatial dims, then applies weight and bias ([C] each, or nil). When training, or when running_mean and running_var are nil, it uses the batch's statistics and, if the running ones are given, updates them in place: running = (1 - momentum) * running + momentum * batch, with the unbiased variance (not recorded by autograd). With training false it normalizes by the running statistics. Unlike PyTorch, training defaults to true. The two running tensors come together or not at all, and training needs more than one value per channel.]],
    opts = {
      { "training", "true", "use (and update) the batch statistics; false uses the running ones" },
      { "momentum", "0.1", "weight of the new batch in the running statistics, in [0, 1]" },
      { "eps", "1e-5", "added to the variance before the square root" },
    },
    example = [[
local rm, rv = mg.zeros(2), mg.ones(2)
local y = F.batch_norm(mg.tensor({{1, 2}, {3, 6}}), rm, rv)
print(string.format("%.4f %.2f", y:get(1, 1), rm:get(2)))   --> -1.0000 0.40]],
    group = "Normalization",
    see = { "nn.BatchNorm2d", "nn.BatchNorm1d", "F.layer_norm" },
  },

  -- Convolution and pooling -------------------------------------------------

  ["F.conv2d"] = {
    sig = "F.conv2d(x, weight [, bias [, opts]])",
    doc = [[2-D cross-correlation: x [N, C, H, W], weight [O, C/groups, kH, kW], bias [O] or nil, result [N, O, Ho, Wo] with Ho = floor((H + 2*padding - dilation*(kH-1) - 1) / stride) + 1. stride, padding and dilation are a number or a pair {h, w}; padding may also be "valid" (no padding) or "same" (output as large as the input, stride 1 only; an odd total puts the extra zero at the bottom and right, as PyTorch). Unlike PyTorch, x must be 4-D (unbatched [C, H, W] is refused). float32 usually runs through oneDNN, float64 (and deterministic mode) through im2col and gemm; a channels-last x gives a channels-last result.]],
    opts = {
      { "stride", "1", "step of the window: n or {sh, sw}" },
      { "padding", "0", 'zeros added on each side: n, {ph, pw}, "valid" or "same"' },
      { "dilation", "1", "spacing of the kernel taps: n or {dh, dw}" },
      { "groups", "1", "split the channels into groups convolved separately; C and O must divide by it" },
    },
    example = [[
local x = mg.randn(1, 2, 5, 5)
local y = F.conv2d(x, mg.randn(4, 2, 3, 3), nil, {padding = 1})
local z = F.conv2d(x, mg.randn(4, 1, 3, 3), mg.zeros(4), {stride = 2, groups = 2})
print(table.concat(y:shape(), "x"), table.concat(z:shape(), "x"))   --> 1x4x5x5  1x4x2x2]],
    group = "Convolution and pooling",
    see = { "nn.Conv2d", "F.conv_transpose2d", "F.pad", "F.max_pool2d" },
  },

  ["F.conv_transpose2d"] = {
    sig = "F.conv_transpose2d(x, weight [, bias [, opts]])",
    doc = [[The transposed convolution (conv2d's input gradient run forward, for upsampling): x [N, C_in, H, W], weight [C_in, C_out/groups, kH, kW] (PyTorch's layout), bias [C_out] or nil, result [N, C_out, Ho, Wo] with Ho = (H-1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1. Sizes are a number or a pair {h, w}; padding must be numbers (no "same"), and output_padding must be smaller than stride or dilation. x must be 4-D.]],
    opts = {
      { "stride", "1", "upsampling step: n or {sh, sw}" },
      { "padding", "0", "removed from each side of the output: n or {ph, pw}" },
      { "output_padding", "0", "extra rows/columns at the bottom and right, to pick among the sizes one stride allows" },
      { "groups", "1", "split the channels into groups" },
      { "dilation", "1", "spacing of the kernel taps" },
    },
    example = [[
local x = mg.randn(1, 2, 5, 5)
local y = F.conv_transpose2d(x, mg.randn(2, 3, 4, 4), nil, {stride = 2, padding = 1})
print(table.concat(y:shape(), "x"))   --> 1x3x10x10]],
    group = "Convolution and pooling",
    see = { "nn.ConvTranspose2d", "F.conv2d" },
  },

  ["F.max_pool2d"] = {
    sig = "F.max_pool2d(x, kernel_size [, opts])",
    doc = [[The maximum over each kernel_size window of x [N, C, H, W] or [C, H, W]; sizes are a number or a pair {h, w}, and stride defaults to kernel_size. Padding counts as -inf and may be at most half the kernel; the first maximum wins a tie. With return_indices it also returns an int64 tensor of each maximum's 1-based position within its H*W plane (PyTorch's are 0-based). The result is float32 or float64.]],
    opts = {
      { "stride", "kernel_size", "step of the window: n or {sh, sw}" },
      { "padding", "0", "implicit -inf border: n or {ph, pw}" },
      { "dilation", "1", "spacing of the window's taps" },
      { "ceil_mode", "false", "round the output size up, so a partial last window counts" },
      { "return_indices", "false", "also return the positions of the maxima" },
    },
    example = [[
local x = mg.arange(1, 17, "float32"):reshape(1, 1, 4, 4)
local y, idx = F.max_pool2d(x, 2, {return_indices = true})
print(y:get(1, 1, 1, 1), idx:get(1, 1, 2, 2))   --> 6.0  16]],
    group = "Convolution and pooling",
    see = { "nn.MaxPool2d", "F.avg_pool2d", "F.adaptive_avg_pool2d" },
  },

  ["F.avg_pool2d"] = {
    sig = "F.avg_pool2d(x, kernel_size [, opts])",
    doc = [[The mean over each kernel_size window of x [N, C, H, W] or [C, H, W]; sizes are a number or a pair {h, w}, and stride defaults to kernel_size. Padding adds zeros (at most half the kernel) that count in the divisor unless count_include_pad is false. PyTorch's divisor_override is not supported.]],
    opts = {
      { "stride", "kernel_size", "step of the window: n or {sh, sw}" },
      { "padding", "0", "implicit zero border: n or {ph, pw}" },
      { "ceil_mode", "false", "round the output size up, so a partial last window counts" },
      { "count_include_pad", "true", "divide by the whole window, padding included; false divides by the real elements only" },
    },
    example = [[
local x = mg.arange(1, 17, "float32"):reshape(1, 1, 4, 4)
print(F.avg_pool2d(x, 2):get(1, 1, 1, 1))   --> 3.5
local y = F.avg_pool2d(x, 3, {stride = 1, padding = 1, count_include_pad = false})
print(y:get(1, 1, 1, 1))   --> 3.5]],
    group = "Convolution and pooling",
    see = { "nn.AvgPool2d", "F.max_pool2d", "F.adaptive_avg_pool2d" },
  },

  ["F.adaptive_avg_pool2d"] = {
    sig = "F.adaptive_avg_pool2d(x, output_size)",
    doc = [[Averages x [N, C, H, W] or [C, H, W] down to output_size (a number or {oh, ow}) whatever the input size: output row i (counting from 0) averages input rows floor(i*H/oh) up to but not including ceil((i+1)*H/oh), so windows may overlap. output_size 1 is global average pooling. Unlike PyTorch, nil for "keep this size" is not accepted, and output_size is required.]],
    example = [[
local x = mg.arange(1, 17, "float32"):reshape(1, 1, 4, 4)
local y = F.adaptive_avg_pool2d(x, {3, 2})
print(F.adaptive_avg_pool2d(x, 1):item(), table.concat(y:shape(), "x"))   --> 8.5  1x1x3x2]],
    group = "Convolution and pooling",
    see = { "nn.AdaptiveAvgPool2d", "F.avg_pool2d" },
  },

  -- Losses ------------------------------------------------------------------

  ["F.cross_entropy"] = {
    sig = "F.cross_entropy(logits, targets [, opts])",
    doc = [[log_softmax and the negative log-likelihood fused in one kernel. logits are [N, K, d...] or [K]; targets are int64 class labels [N, d...] (0-d for [K]) in 1..K (1-based, PyTorch's are 0-based), or float class probabilities shaped like logits. The mean divides by the summed weight of the targets that count, as PyTorch. Unlike PyTorch, ignore_index has no default (PyTorch's is -100): without it every label must be in 1..K. A label out of range, float labels of the wrong shape, ignore_index with probability targets or a weight that requires grad is an error.]],
    opts = {
      { "weight", "nil", "a [K] tensor of class weights (a constant: it must not require grad)" },
      { "ignore_index", "nil", "a label value whose targets add nothing to the loss or the divisor (int targets only)" },
      { "label_smoothing", "0", "in [0, 1]: mixes the target with the uniform distribution" },
      { "reduction", '"mean"', '"mean", "sum" or "none" (the per-target losses, [N, d...])' },
    },
    example = [[
local logits = mg.tensor({{2, 0, -1}, {0.5, 1.5, 0}})
local y = mg.tensor({1, 2}, "int64")
print(string.format("%.4f", F.cross_entropy(logits, y):item()))   --> 0.3171
local some = F.cross_entropy(logits, mg.tensor({1, -100}, "int64"), {ignore_index = -100})
print(string.format("%.4f", some:item()))   --> 0.1698]],
    group = "Losses",
    see = { "nn.CrossEntropyLoss", "F.nll_loss", "F.log_softmax" },
  },

  ["F.nll_loss"] = {
    sig = "F.nll_loss(logp, targets [, opts])",
    doc = [[The negative log-likelihood of log-probabilities: -logp[target] per sample, weighted. logp is [N, K, d...] or [K] (usually from F.log_softmax), targets int64 labels [N, d...] in 1..K (1-based). The mean divides by the summed weight of the targets that count. Unlike PyTorch, ignore_index has no default. Float targets, a label out of range or a weight that requires grad is an error.]],
    opts = {
      { "weight", "nil", "a [K] tensor of class weights (a constant)" },
      { "ignore_index", "nil", "a label value whose targets add nothing to the loss or the divisor" },
      { "reduction", '"mean"', '"mean", "sum" or "none"' },
    },
    example = [[
local logp = F.log_softmax(mg.tensor({{2, 0, -1}, {0.5, 1.5, 0}}))
print(string.format("%.4f", F.nll_loss(logp, mg.tensor({1, 2}, "int64")):item()))   --> 0.3171]],
    group = "Losses",
    see = { "nn.NLLLoss", "F.cross_entropy", "F.log_softmax" },
  },

  ["F.mse_loss"] = {
    sig = "F.mse_loss(input, target [, opts])",
    doc = [[The squared error (input - target)^2, averaged, summed or per element. input and target must have the same shape (PyTorch broadcasts with a warning; moongrad refuses); both get gradients.]],
    opts = { { "reduction", '"mean"', '"mean", "sum" or "none"' } },
    example = [[
local a, b = mg.tensor({0, 1, 4}), mg.tensor({1, 1, 1})
print(string.format("%.4f", F.mse_loss(a, b):item()))   --> 3.3333
print(F.mse_loss(a, b, {reduction = "sum"}):item())   --> 10.0]],
    group = "Losses",
    see = { "nn.MSELoss", "F.l1_loss", "F.huber_loss" },
  },

  ["F.l1_loss"] = {
    sig = "F.l1_loss(input, target [, opts])",
    doc = [[The absolute error |input - target|, averaged, summed or per element. input and target must have the same shape.]],
    opts = { { "reduction", '"mean"', '"mean", "sum" or "none"' } },
    example = [[
print(F.l1_loss(mg.tensor({0, 1, 4}), mg.tensor({1, 1, 1}), {reduction = "sum"}):item())   --> 4.0]],
    group = "Losses",
    see = { "nn.L1Loss", "F.mse_loss", "F.smooth_l1_loss" },
  },

  ["F.smooth_l1_loss"] = {
    sig = "F.smooth_l1_loss(input, target [, opts])",
    doc = [[With d = |input - target|: 0.5 d^2 / beta where d < beta, d - 0.5 beta elsewhere (beta 0 is the L1 loss). input and target must have the same shape; a negative beta is an error. It equals F.huber_loss divided by beta.]],
    opts = {
      { "beta", "1", "where the loss turns from quadratic to linear; >= 0" },
      { "reduction", '"mean"', '"mean", "sum" or "none"' },
    },
    example = [[
local a, b = mg.tensor({0, 1, 4}), mg.tensor({1, 1, 1})
print(F.smooth_l1_loss(a, b):item(), F.smooth_l1_loss(a, b, {beta = 2}):item())   --> 1.0  0.75]],
    group = "Losses",
    see = { "nn.SmoothL1Loss", "F.huber_loss", "F.l1_loss" },
  },

  ["F.huber_loss"] = {
    sig = "F.huber_loss(input, target [, opts])",
    doc = [[With d = |input - target|: 0.5 d^2 where d < delta, delta (d - 0.5 delta) elsewhere. input and target must have the same shape; a negative delta is an error.]],
    opts = {
      { "delta", "1", "where the loss turns from quadratic to linear; >= 0" },
      { "reduction", '"mean"', '"mean", "sum" or "none"' },
    },
    example = [[
print(F.huber_loss(mg.tensor({0, 1, 4}), mg.tensor({1, 1, 1}), {delta = 2}):item())   --> 1.5]],
    group = "Losses",
    see = { "nn.HuberLoss", "F.smooth_l1_loss", "F.mse_loss" },
  },

  ["F.binary_cross_entropy"] = {
    sig = "F.binary_cross_entropy(p, y [, opts])",
    doc = [[-(y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1] and targets y of the same shape; each log is clamped at -100, as PyTorch, so p = 0 or 1 gives a finite loss. A p outside [0, 1] (or NaN) is an error naming its position; for raw scores use F.binary_cross_entropy_with_logits.]],
    opts = {
      { "weight", "nil", "a tensor broadcastable to p, multiplying each element's loss (a constant)" },
      { "reduction", '"mean"', '"mean", "sum" or "none"' },
    },
    example = [[
local p, y = mg.tensor({0.9, 0.2, 0.5}), mg.tensor({1, 0, 1})
print(string.format("%.4f", F.binary_cross_entropy(p, y):item()))   --> 0.3406]],
    group = "Losses",
    see = { "nn.BCELoss", "F.binary_cross_entropy_with_logits", "F.sigmoid" },
  },

  ["F.binary_cross_entropy_with_logits"] = {
    sig = "F.binary_cross_entropy_with_logits(z, y [, opts])",
    doc = [[The binary cross-entropy of sigmoid(z) against targets y of the same shape, computed from the logits z in a form that stays exact for large |z|. pos_weight multiplies the loss of the positive term (y log sigmoid(z)), to balance rare positives; it and weight broadcast to z's shape and must not require grad.]],
    opts = {
      { "weight", "nil", "a tensor broadcastable to z, multiplying each element's loss" },
      { "pos_weight", "nil", "a tensor broadcastable to z (e.g. one value per class, [K]) weighting the positive term" },
      { "reduction", '"mean"', '"mean", "sum" or "none"' },
    },
    example = [[
local z, y = mg.tensor({2, -1, 0}), mg.tensor({1, 0, 1})
print(string.format("%.4f", F.binary_cross_entropy_with_logits(z, y):item()))   --> 0.3778
local weighted = F.binary_cross_entropy_with_logits(z, y, {pos_weight = mg.tensor({3})})
print(string.format("%.4f", weighted:item()))   --> 0.9245]],
    group = "Losses",
    see = { "nn.BCEWithLogitsLoss", "F.binary_cross_entropy" },
  },

  -- Attention ---------------------------------------------------------------

  ["F.scaled_dot_product_attention"] = {
    sig = "F.scaled_dot_product_attention(q, k, v [, opts])",
    doc = [[softmax(q k^T * scale + mask) v over the last two dims, batch dims in front broadcasting as in matmul: q [..., Lq, E], k [..., Lk, E], v [..., Lk, Ev] give out [..., Lq, Ev]. It also returns the attention weights [..., Lq, Lk] (after dropout) as a second result, which PyTorch's does not. attn_mask's dtype says what it is: an integer or bool mask is a keep-mask (nonzero or true = may attend), a float mask is added to the scores (-math.huge blocks); it broadcasts to [..., Lq, Lk] and a 0/1 float mask from a comparison needs :long() to act as a keep-mask. A query that may attend to nothing gets a NaN row, as in PyTorch; attn_mask together with is_causal is an error.]],
    opts = {
      { "attn_mask", "nil", "keep-mask (int64/bool) or additive float mask, broadcast to [..., Lq, Lk]" },
      { "is_causal", "false", "query i sees keys 1..i only (lower triangle from the top left)" },
      { "dropout_p", "0", "dropout probability on the weights, in [0, 1]" },
      { "training", "true", "apply dropout_p only when true (moongrad's addition)" },
      { "scale", "1/sqrt(E)", "factor on the scores" },
    },
    example = [[
local q, k, v = mg.randn(2, 4, 5, 8), mg.randn(2, 4, 7, 8), mg.randn(2, 4, 7, 16)
local out, w = F.scaled_dot_product_attention(q, k, v)
print(table.concat(out:shape(), "x"), table.concat(w:shape(), "x"))   --> 2x4x5x16  2x4x5x7
local x = mg.randn(3, 4)
local _, wc = F.scaled_dot_product_attention(x, x, x, {is_causal = true})
print(wc:get(1, 2))   --> 0.0]],
    group = "Attention",
    see = { "nn.MultiheadAttention", "nn.TransformerEncoderLayer", "F.softmax" },
  },

  ---------------------------------------------------------------------------
  -- plot

  plot = {
    sig = 'local plot = require "moongrad.plot"',
    doc = [[Charts as SVG, written in plain Lua with no dependencies: line charts of any series, a training run's curves from train.fit's history, and confusion matrices. Each function returns the SVG text and, given a path, also writes it there (whole and atomically). Axes get round ticks (1, 2 or 5 times a power of ten), a grid and a legend; non-finite points break a line instead of failing.]],
    groups = { "Charts", "Style" },
    example = [[
local svg = plot.lines{series = {{name = "loss", y = {2.3, 1.1, 0.7, 0.5}}}, title = "Loss"}
print(svg:sub(1, 4))   --> <svg]],
    see = { "train.fit" },
  },

  ["plot.colors"] = {
    sig = "plot.colors",
    doc = [[The ten colors (the Tableau palette, as hex strings "#1f77b4", ...) given to series that set no color of their own, in order, starting again after the tenth. A constant table: reading it to match other charts is fine; changing it changes later plots.]],
    example = [[
print(#plot.colors, plot.colors[1])   --> 10  #1f77b4]],
    group = "Style",
    see = { "plot.lines" },
  },

  ["plot.lines"] = {
    sig = "plot.lines(opts)",
    doc = [[Draws one or more series on one panel and returns the SVG text, writing it to opts.path when given. Each series is a table {name, x, y, color, dash, markers, line}: y a list of numbers, x a list (default 1..#y), color (default from plot.colors), dash an SVG stroke-dasharray such as "4 2", markers = false to hide the dots drawn on series of up to 40 points, line = false for dots only (a scatter). Non-finite points break the line; with log_y, points <= 0 are skipped. An empty series list, a series without y or a path that is not a string is an error.]],
    opts = {
      { "series", "required", "the list of series described above" },
      { "path", "nil", "file to write the SVG to" },
      { "title", "nil", "title above the panel" },
      { "xlabel", "nil", "x axis label" },
      { "ylabel", "nil", "y axis label" },
      { "log_y", "false", "logarithmic y axis (base 10)" },
      { "width", "760", "image width in pixels" },
      { "height", "480", "image height in pixels" },
    },
    example = [[
local path = os.tmpname()
local svg = plot.lines{path = path, title = "Loss", xlabel = "step", log_y = true,
  series = {{name = "SGD", y = {2.3, 1.2, 0.8}},
            {name = "Adam", x = {1, 2, 3}, y = {2.3, 0.9, 0.5}, dash = "4 2"}}}
local f = io.open(path); print(f:read("a") == svg); f:close()   --> true
os.remove(path)]],
    group = "Charts",
    see = { "plot.training_curves", "plot.colors" },
  },

  cli = {
    sig = 'local cli = require "moongrad.cli"',
    doc = [[Command lines for scripts, on Debian's lua-argparse: one style for every script in scripts/ (--epochs 5), --help with each option's meaning, default and an example, and exit status 2 with a line naming the option for anything a script does not take.]],
    groups = { "Scripts" },
    example = [[
local parser = cli.parser("demo.lua", "Print a number.", "build/moongrad demo.lua --n 3")
parser:option("--n", "The number.", "1"):convert(cli.integer(0))
print(parser:parse({"--n", "7"}).n)   --> 7]],
    see = { "cli.parser" },
  },

  ["cli.parser"] = {
    sig = "cli.parser(name, description [, example]) --> parser",
    doc = [[A command-line parser for a script: Debian's lua-argparse, as every script in scripts/ uses it. Declare options with parser:option("--epochs", "Epochs to train.", "20"):convert(cli.integer(1)), switches with parser:flag("--dist", "..."), positional arguments with parser:argument(...), then args = parser:parse(arg) (--batch-size becomes args.batch_size). --help prints the description, every option with its meaning and default, and the example, and exits with status 0; an unknown option, a missing value or one a converter refuses prints the usage and one line naming the option, and exits with status 2 (argparse alone exits with 1).]],
    example = [[
local parser = cli.parser("demo.lua", "Train something small.", "build/moongrad demo.lua --epochs 3")
parser:option("--epochs", "Epochs to train.", "20"):convert(cli.integer(1))
parser:option("--lr", "Learning rate.", "1e-3"):convert(cli.number(0))
parser:flag("--quick", "A run of a few seconds.")
local args = parser:parse({"--epochs", "3", "--quick"})
print(args.epochs, args.lr, args.quick)   --> 3	0.001	true]],
    group = "Scripts",
    see = { "cli.integer", "cli.number" },
  },

  ["cli.integer"] = {
    sig = "cli.integer([lo [, hi]]) --> converter",
    doc = [[A converter for parser:option(...):convert(...): the text as an integer within lo..hi (either bound may be nil), or nil and "expected an integer >= 1, got x", which cli.parser prefixes with the option's name.]],
    example = [[
print(cli.integer(1)("5"), cli.integer(1)("0"))   --> 5	nil	expected an integer >= 1, got 0]],
    group = "Scripts",
    see = { "cli.parser", "cli.number" },
  },

  ["cli.number"] = {
    sig = "cli.number([above [, upto]]) --> converter",
    doc = [[A converter: the text as a finite float greater than above and at most upto (either may be nil), or nil and what was expected.]],
    example = [[
print(cli.number(0)("3e-4"), cli.number(0, 1)("2"))   --> 0.0003	nil	expected a number > 0 and <= 1, got 2]],
    group = "Scripts",
    see = { "cli.parser", "cli.integer" },
  },

  ["plot.panels"] = {
    sig = "plot.panels(opts)",
    doc = [[Draws several panels in a grid (columns per row, default 3) and returns the SVG text, writing it to opts.path when given. Each panel is {title, xlabel, ylabel, series, log_x, log_y, x_labels} and is drawn as plot.lines draws its one panel; log_x makes a logarithmic x axis (points <= 0 skipped; over two decades or less the ticks at 2 and 5 times the powers of ten are named too), and x_labels = {"a", "b", ...} a categorical one whose values are 1..K. A series with ring = true is drawn as open rings, to mark chosen points over a scatter (study:plot_params rings the best trial). An empty panel list, or a panel whose series plot.lines would refuse, is an error naming the panel.]],
    opts = {
      { "panels", "required", "the list of panels described above" },
      { "columns", "3", "panels per row" },
      { "path", "nil", "file to write the SVG to" },
      { "title", "nil", "title above the grid" },
      { "width", "380 per column", "image width in pixels" },
      { "height", "340 per row", "image height in pixels" },
    },
    example = [[
local svg = plot.panels{title = "Search", panels = {
  {title = "lr", log_x = true, series = {{name = "trial", x = {1e-4, 1e-3, 1e-2}, y = {0.8, 0.9, 0.7}, line = false},
                                         {name = "best", x = {1e-3}, y = {0.9}, line = false, ring = true}}},
  {title = "act", x_labels = {"relu", "gelu"}, series = {{x = {1, 2}, y = {0.9, 0.8}, line = false}}}}}
print(svg:find(">gelu<", 1, true) ~= nil)   --> true]],
    group = "Charts",
    see = { "plot.lines", "tune.Study:plot_params" },
  },

  ["plot.training_curves"] = {
    sig = "plot.training_curves(history [, path [, opts]])",
    doc = [[Draws a history from train.fit (or any table {epochs = {{epoch, train_loss, val_loss, train_accuracy, val_accuracy}, ...}, lr = {...}}) as side-by-side panels: loss per epoch (train and validation), accuracy per epoch when recorded and the learning rate per step when history.lr is non-empty. Returns the SVG text and writes it to path when given. A table without epochs, or a history with nothing to draw, is an error.]],
    opts = {
      { "title", "nil", "title above the panels" },
      { "width", "400 per panel", "image width in pixels" },
      { "height", "400", "image height in pixels" },
    },
    example = [[
local history = {lr = {0.1, 0.1, 0.05, 0.05},
  epochs = {{epoch = 1, train_loss = 1.0, val_loss = 1.1},
            {epoch = 2, train_loss = 0.7, val_loss = 0.9}}}
local svg = plot.training_curves(history, nil, {title = "run"})
print(svg:match('width="(%d+)"'))   --> 800]],
    group = "Charts",
    see = { "train.fit", "plot.lines" },
  },

  ["plot.confusion_matrix"] = {
    sig = "plot.confusion_matrix(counts, classes [, path [, opts]])",
    doc = [[Draws a classifier's confusion matrix as a heatmap: counts[i][j] is the number of samples of true class i predicted as j (a table of K rows or a [K, K] tensor), classes the K class names. A cell's shade is its share of its row, so small classes read on the same scale, with the count written in it; the right margin gives each class's accuracy and the subtitle the overall accuracy. Returns the SVG text and writes it to path when given. Rows of the wrong length or a negative count is an error.]],
    opts = {
      { "title", '"Confusion matrix"', "title above the matrix" },
      { "size", "28 to 56 (560 / K)", "cell size in pixels" },
    },
    example = [[
local svg = plot.confusion_matrix({{5, 1}, {2, 8}}, {"cat", "dog"})
print(svg:match("accuracy [%d.]+%%"))   --> accuracy 81.25%]],
    group = "Charts",
    see = { "plot.lines", "train.evaluate" },
  },

  ---------------------------------------------------------------------------
  -- checkpoint

  checkpoint = {
    sig = 'local checkpoint = require "moongrad.checkpoint"',
    doc = [[A whole training state in one safetensors file, so that a run stopped at any batch resumes exactly: the model's state dict, the optimizer's and scheduler's state, the data loader's position, the RNG state, epoch, step and any extra values. Tensors go in the file's body (any safetensors reader sees them), the rest as exact JSON in its metadata. Saving is atomic; loading checks every part against its object before changing anything, and never executes code from the file.]],
    groups = { "Save and restore", "Inspect" },
    example = [[
local net = nn.Linear(2, 1)
local path = os.tmpname()
checkpoint.save(path, {model = net, epoch = 3})
print(checkpoint.load(path, {model = net}).epoch)   --> 3
os.remove(path)]],
    see = { "mg.save", "mg.load", "train.fit", "nn.Module:state_dict" },
  },

  ["checkpoint.save"] = {
    sig = "checkpoint.save(path, opts)",
    doc = [[Writes the parts given in opts to the safetensors file path, atomically (a failure, a full disk included, leaves the previous file), with the current RNG state always included. Each object part needs a state_dict method. epoch and step must be integers >= 0 (2.0 counts as 2); extra may hold numbers (exact, inf and nan included), strings, booleans, tables and tensors (stored in the file's body). An unknown option is an error.]],
    opts = {
      { "model", "nil", "a module (anything with state_dict)" },
      { "optimizer", "nil", "an optimizer: param groups and state" },
      { "scheduler", "nil", "a learning-rate scheduler" },
      { "loader", "nil", "a DataLoader: its epoch's order and position" },
      { "epoch", "nil", "integer >= 0, returned by load" },
      { "step", "nil", "integer >= 0, returned by load" },
      { "extra", "nil", "any table of your own values, returned by load" },
    },
    example = [[
local net = nn.Linear(2, 1)
local opt = optim.SGD(net, {lr = 0.1})
local path = os.tmpname()
checkpoint.save(path, {model = net, optimizer = opt, epoch = 1, step = 50, extra = {best = 0.25}})
print(checkpoint.read(path)["model.weight"]:shape()[2])   --> 2
os.remove(path)]],
    group = "Save and restore",
    see = { "checkpoint.load", "checkpoint.read", "mg.save" },
  },

  ["checkpoint.load"] = {
    sig = "checkpoint.load(path [, opts])",
    doc = [[Restores each object given in opts from the checkpoint at path, and the RNG state, and returns {epoch =, step =, extra =} as saved. All or nothing: every part is checked against its object first (names, shapes, dtypes, optimizer options, ...), and a mismatch, a part the file lacks or a file that is not a moongrad checkpoint raises an error naming the file and the part, leaving every object as it was. Objects need a load_state_dict method.]],
    opts = {
      { "model", "nil", "the module to load the model state into" },
      { "optimizer", "nil", "the optimizer to restore (of the saved kind)" },
      { "scheduler", "nil", "the scheduler to restore" },
      { "loader", "nil", "the DataLoader to put back at its saved position" },
      { "restore_rng", "true", "false leaves the RNG state as it is" },
      { "strict", "nil (true)", "passed to model:load_state_dict; false skips missing and unexpected names" },
    },
    example = [[
local net, path = nn.Linear(2, 1), os.tmpname()
checkpoint.save(path, {model = net, step = 120, extra = {best = 0.5}})
local a = mg.rand(1):item()
local info = checkpoint.load(path, {model = nn.Linear(2, 1)})
print(info.step, info.extra.best, mg.rand(1):item() == a)   --> 120  0.5  true
os.remove(path)]],
    group = "Save and restore",
    see = { "checkpoint.save", "checkpoint.prepare", "nn.Module:load_state_dict" },
  },

  ["checkpoint.prepare"] = {
    sig = "checkpoint.prepare(path [, opts [, contents]])",
    doc = [[checkpoint.load in two steps: reads and checks the file against the objects (same options as load) and makes the restored state ready without changing anything, then returns apply; apply() installs it and returns what load returns. apply allocates nothing and cannot fail, except in an object of your own that has load_state_dict but no prepare_load_state_dict, so several checkpoints can be checked before any is applied. contents = {tensors, state}, the two results of checkpoint.read, saves reading the file again. Its errors say "checkpoint.load".]],
    opts = {
      { "model", "nil", "as in checkpoint.load" },
      { "optimizer", "nil", "as in checkpoint.load" },
      { "scheduler", "nil", "as in checkpoint.load" },
      { "loader", "nil", "as in checkpoint.load" },
      { "restore_rng", "true", "as in checkpoint.load" },
      { "strict", "nil (true)", "as in checkpoint.load" },
    },
    example = [[
local net, path = nn.Linear(2, 1), os.tmpname()
checkpoint.save(path, {model = net, epoch = 2})
local apply = checkpoint.prepare(path, {model = nn.Linear(2, 1)}, {checkpoint.read(path)})
print(apply().epoch)   --> 2
os.remove(path)]],
    group = "Save and restore",
    see = { "checkpoint.load", "checkpoint.read" },
  },

  ["checkpoint.read"] = {
    sig = "checkpoint.read(path)",
    doc = [[The raw contents of a checkpoint, for inspection: returns tensors (a table by their names in the file: "model.<name>", "optimizer.state.<id>.<slot>", "loader.<key>", "extra.<path>") and state (the decoded metadata record: format, version, epoch, step, rng, extra, and the optimizer, scheduler and loader records). A file without moongrad's checkpoint metadata is an error (mg.load reads its tensors).]],
    example = [[
local path = os.tmpname()
checkpoint.save(path, {model = nn.Linear(2, 1), epoch = 4})
local tensors, state = checkpoint.read(path)
print(tensors["model.bias"]:numel(), state.epoch, state.format)   --> 1  4  moongrad.checkpoint
os.remove(path)]],
    group = "Inspect",
    see = { "checkpoint.load", "checkpoint.prepare", "mg.load" },
  },
}
