-- Help for moongrad's tensor math (`mg`): pointwise ops and their
-- operators, comparisons, reductions, matrix products and mg.linalg.
-- The form of an entry is described in moongrad/help.lua.
return {
  ---------------------------------------------------------------------------
  -- Pointwise math: binary ops (a + b and friends)

  ["mg.add"] = {
    sig = { "mg.add(a, b)", "a:add(b)", "a + b" },
    doc = [[Elementwise a + b; the operator a + b calls it. Either operand may be a Lua number (the other must be a tensor), and two tensors broadcast as in PyTorch. The result's dtype is the two dtypes promoted (float64 over float32, any float over int64); a number keeps the tensor's dtype, except that a Lua float such as 2.0 or 0.5 with an int64 tensor gives float32. There is no alpha argument as in torch.add (write a + b * alpha; a third argument is ignored), int64 sums wrap around on overflow, and uint8, bool, float16 and the other storage dtypes are refused until converted with :float() or :long().]],
    example = [[
local a = mg.tensor({1, 2, 3})
print(a + 10)                        --> {11., 12., 13.}
print(mg.add(a, mg.tensor({{0}, {1}})):shape()[1])   --> 2
print((mg.tensor({1, 2}, "int64") + 1):dtype())      --> int64]],
    group = "Pointwise math",
    see = { "mg.sub", "mg.mul", "mg.add_" },
  },
  ["mg.add_"] = { inplace = "mg.add" },

  ["mg.sub"] = {
    sig = { "mg.sub(a, b)", "a:sub(b)", "a - b" },
    doc = [[Elementwise a - b; the operator a - b calls it. Either operand may be a Lua number (10 - t works), and tensors broadcast; dtypes follow the rules of mg.add. There is no alpha argument as in torch.sub.]],
    example = [[
local a = mg.tensor({1, 2, 3})
print(10 - a)               --> {9., 8., 7.}
print(a:sub(mg.tensor({1})))   --> {0., 1., 2.}]],
    group = "Pointwise math",
    see = { "mg.add", "mg.neg" },
  },
  ["mg.sub_"] = { inplace = "mg.sub" },

  ["mg.mul"] = {
    sig = { "mg.mul(a, b)", "a:mul(b)", "a * b" },
    doc = [[Elementwise product a * b (not the matrix product: that is mg.matmul); the operator a * b calls it. Either operand may be a Lua number, tensors broadcast, and dtypes follow the rules of mg.add; int64 products wrap around on overflow.]],
    example = [[
local a = mg.tensor({1, 2, 3})
print(2 * a)                                   --> {2., 4., 6.}
print(a:mul(mg.tensor({{1}, {-1}})):shape()[1])   --> 2]],
    group = "Pointwise math",
    see = { "mg.div", "mg.matmul", "mg.square" },
  },
  ["mg.mul_"] = { inplace = "mg.mul" },

  ["mg.div"] = {
    sig = { "mg.div(a, b)", "a:div(b)", "a / b" },
    doc = [[Elementwise true division a / b; the operator a / b calls it. Either operand may be a Lua number (1 / t is the reciprocal) and tensors broadcast. As in PyTorch, dividing int64 by int64 gives float32, so 7 / 2 is 3.5 and a division by zero gives inf or nan rather than an error; mg.floor_divide (//) keeps integers. In place, t:div_(b) refuses an int64 t for that reason.]],
    example = [[
local i = mg.tensor({7, -7}, "int64")
print(i / 2)               --> { 3.5000, -3.5000}
print((i / 2):dtype())     --> float32]],
    group = "Pointwise math",
    see = { "mg.floor_divide", "mg.reciprocal", "mg.mul" },
  },
  ["mg.div_"] = { inplace = "mg.div" },

  ["mg.pow"] = {
    sig = { "mg.pow(a, b)", "a:pow(b)", "a ^ b" },
    doc = [[Elementwise a to the power b; the operator a ^ b calls it (Lua's ^, where Python writes **). Either operand may be a Lua number (2 ^ t works) and tensors broadcast; dtypes follow the rules of mg.add, so an int64 tensor to a Lua integer power stays int64 and to 0.5 gives float32. An int64 tensor to a negative integer number is an error, as in PyTorch (convert with :float() first), but negative entries of an int64 exponent tensor are not checked and give 0 for bases other than 1 and -1; the gradient for the exponent is taken as 0 where the base is 0.]],
    example = [[
local a = mg.tensor({1, 2, 3})
print(a ^ 2)      --> {1., 4., 9.}
print(2 ^ a)      --> {2., 4., 8.}
print(pcall(mg.pow, mg.tensor({2}, "int64"), -1))   --> false  pow: integers to negative integer powers are not allowed ...]],
    group = "Pointwise math",
    see = { "mg.square", "mg.sqrt", "mg.exp" },
  },
  ["mg.pow_"] = { inplace = "mg.pow" },

  ["mg.floor_divide"] = {
    sig = { "mg.floor_divide(a, b)", "a:floor_divide(b)", "a // b" },
    doc = [[Elementwise floor(a / b), rounding toward minus infinity as Lua's // does; the operator a // b calls it. Either operand may be a Lua number and tensors broadcast; int64 stays int64 (and an integer divisor of 0 is an error), floats stay floats. It records no gradient (it is flat almost everywhere), as in PyTorch.]],
    example = [[
local i = mg.tensor({7, -7}, "int64")
print(i // 2)                          --> { 3, -4}
print(mg.floor_divide(mg.tensor({7.5}), 2))   --> {3.}]],
    group = "Pointwise math",
    see = { "mg.remainder", "mg.div", "mg.floor" },
  },
  ["mg.floor_divide_"] = { inplace = "mg.floor_divide" },

  ["mg.remainder"] = {
    sig = { "mg.remainder(a, b)", "a:remainder(b)", "a % b" },
    doc = [[Elementwise a - b * floor(a / b): the remainder with the sign of the divisor, as Lua's % and torch.remainder give (not C's fmod); the operator a % b calls it. Either operand may be a Lua number and tensors broadcast; int64 stays int64, and an integer divisor of 0 is an error.]],
    example = [[
local i = mg.tensor({7, -7}, "int64")
print(i % 3)                       --> {1, 2}
print(mg.tensor({7, -7}) % -3)     --> {-2., -1.}]],
    group = "Pointwise math",
    see = { "mg.floor_divide" },
  },
  ["mg.remainder_"] = { inplace = "mg.remainder" },

  ["mg.maximum"] = {
    sig = { "mg.maximum(a, b)", "a:maximum(b)" },
    doc = [[The elementwise larger of a and b, broadcast; either may be a Lua number, so t:maximum(0) is a ReLU. NaN in either operand gives NaN for float dtypes. Where the two are equal the gradient is split evenly between them, as in PyTorch. t:max(other) with a tensor other does the same; t:max(number) does not, since a number there is a dim.]],
    example = [[
local a = mg.tensor({1, 5, 3})
print(a:maximum(mg.tensor({4, 4, 4})))   --> {4., 5., 4.}
print(mg.maximum(a, 2))                  --> {2., 5., 3.}]],
    group = "Pointwise math",
    see = { "mg.minimum", "mg.max", "mg.clamp" },
  },
  ["mg.maximum_"] = { inplace = "mg.maximum" },

  ["mg.minimum"] = {
    sig = { "mg.minimum(a, b)", "a:minimum(b)" },
    doc = [[The elementwise smaller of a and b, broadcast; either may be a Lua number. The gradient at ties is split evenly between the two, as in PyTorch. t:min(other) with a tensor other does the same; t:min(number) reduces over dim number instead.]],
    example = [[
local a = mg.tensor({1, 5, 3})
print(mg.minimum(a, 2))   --> {1., 2., 2.}]],
    group = "Pointwise math",
    see = { "mg.maximum", "mg.min", "mg.clamp" },
  },
  ["mg.minimum_"] = { inplace = "mg.minimum" },

  ["mg.atan2"] = {
    sig = { "mg.atan2(y, x)", "y:atan2(x)" },
    doc = [[Elementwise angle of the point (x, y) in radians, in [-pi, pi]: atan(y / x) with the quadrant taken from the signs of both. Either operand may be a Lua number and tensors broadcast; int64 operands give float32.]],
    example = [[
local y = mg.tensor({1, 1})
print(mg.atan2(y, mg.tensor({1, -1})))   --> {0.7854, 2.3562}]],
    group = "Pointwise math",
    see = { "mg.div" },
  },
  ["mg.atan2_"] = { inplace = "mg.atan2" },

  ---------------------------------------------------------------------------
  -- Pointwise math: unary ops

  ["mg.neg"] = {
    sig = { "mg.neg(t)", "t:neg()", "-t" },
    doc = [[Elementwise -t; the unary minus operator -t calls it. Keeps t's dtype (int64 wraps at its minimum, as in PyTorch).]],
    example = [[
local t = mg.tensor({1, -2})
print(-t)   --> {-1.,  2.}]],
    group = "Pointwise math",
    see = { "mg.sub", "mg.abs" },
  },
  ["mg.neg_"] = { inplace = "mg.neg" },

  ["mg.abs"] = {
    sig = { "mg.abs(t)", "t:abs()" },
    doc = [[Elementwise absolute value, in t's dtype (int64 stays int64). Its gradient is sign(t), so 0 at 0, as in PyTorch.]],
    example = [[
print(mg.tensor({-1.5, 0, 2}):abs())   --> {1.5000, 0.0000, 2.0000}]],
    group = "Pointwise math",
    see = { "mg.sign", "mg.neg" },
  },
  ["mg.abs_"] = { inplace = "mg.abs" },

  ["mg.sign"] = {
    sig = { "mg.sign(t)", "t:sign()" },
    doc = [[Elementwise -1, 0 or 1 by the sign of each element, in t's dtype. A NaN gives 0. Its gradient is zero.]],
    example = [[
print(mg.tensor({-2, 0, 3}):sign())   --> {-1.,  0.,  1.}]],
    group = "Pointwise math",
    see = { "mg.abs" },
  },
  ["mg.sign_"] = { inplace = "mg.sign" },

  ["mg.square"] = {
    sig = { "mg.square(t)", "t:square()" },
    doc = [[Elementwise t * t, in t's dtype (int64 stays int64 and wraps on overflow). Cheaper than t ^ 2 and with the simpler gradient 2t.]],
    example = [[
print(mg.tensor({-2, 3}):square())   --> {4., 9.}]],
    group = "Pointwise math",
    see = { "mg.pow", "mg.sqrt" },
  },
  ["mg.square_"] = { inplace = "mg.square" },

  ["mg.relu"] = {
    sig = { "mg.relu(t)", "t:relu()" },
    doc = [[Elementwise max(t, 0), in t's dtype; NaN stays NaN. The gradient passes where the result is positive. F.relu is this function (nn.ReLU its module form).]],
    example = [[
print(mg.tensor({-1, 0, 2}):relu())   --> {0., 0., 2.}]],
    group = "Pointwise math",
    see = { "mg.sigmoid", "mg.maximum", "mg.clamp" },
  },
  ["mg.relu_"] = { inplace = "mg.relu" },

  ["mg.floor"] = {
    sig = { "mg.floor(t)", "t:floor()" },
    doc = [[Elementwise rounding down to a whole number, in t's dtype (a float tensor stays float; an int64 one is returned unchanged in value). The gradient is zero.]],
    example = [[
print(mg.tensor({-1.7, 1.7}):floor())   --> {-2.,  1.}]],
    group = "Pointwise math",
    see = { "mg.ceil", "mg.round", "mg.trunc", "mg.floor_divide" },
  },
  ["mg.floor_"] = { inplace = "mg.floor" },

  ["mg.ceil"] = {
    sig = { "mg.ceil(t)", "t:ceil()" },
    doc = [[Elementwise rounding up to a whole number, in t's dtype (int64 is returned unchanged in value). The gradient is zero.]],
    example = [[
print(mg.tensor({-1.7, 1.2}):ceil())   --> {-1.,  2.}]],
    group = "Pointwise math",
    see = { "mg.floor", "mg.round", "mg.trunc" },
  },
  ["mg.ceil_"] = { inplace = "mg.ceil" },

  ["mg.round"] = {
    sig = { "mg.round(t)", "t:round()" },
    doc = [[Elementwise rounding to the nearest whole number, halves to even (0.5 -> 0, 2.5 -> 2) as in PyTorch, in t's dtype. There is no decimals argument. The gradient is zero.]],
    example = [[
print(mg.tensor({0.5, 1.5, 2.5, 2.6}):round())   --> {0., 2., 2., 3.}]],
    group = "Pointwise math",
    see = { "mg.floor", "mg.ceil", "mg.trunc" },
  },
  ["mg.round_"] = { inplace = "mg.round" },

  ["mg.trunc"] = {
    sig = { "mg.trunc(t)", "t:trunc()" },
    doc = [[Elementwise rounding toward zero (dropping the fractional part), in t's dtype. The gradient is zero.]],
    example = [[
print(mg.tensor({-1.7, 1.7}):trunc())   --> {-1.,  1.}]],
    group = "Pointwise math",
    see = { "mg.floor", "mg.round" },
  },
  ["mg.trunc_"] = { inplace = "mg.trunc" },

  ["mg.sqrt"] = {
    sig = { "mg.sqrt(t)", "t:sqrt()" },
    doc = [[Elementwise square root; negative elements give nan. An int64 t gives float32 (so t:sqrt_() refuses int64). The gradient 1 / (2 sqrt(t)) is inf at 0.]],
    example = [[
print(mg.tensor({4, 9}):sqrt())   --> {2., 3.}]],
    group = "Pointwise math",
    see = { "mg.rsqrt", "mg.square", "mg.pow" },
  },
  ["mg.sqrt_"] = { inplace = "mg.sqrt" },

  ["mg.rsqrt"] = {
    sig = { "mg.rsqrt(t)", "t:rsqrt()" },
    doc = [[Elementwise 1 / sqrt(t), in one pass; 0 gives inf and negatives nan. An int64 t gives float32.]],
    example = [[
print(mg.tensor({4, 16}):rsqrt())   --> {0.5000, 0.2500}]],
    group = "Pointwise math",
    see = { "mg.sqrt", "mg.reciprocal" },
  },
  ["mg.rsqrt_"] = { inplace = "mg.rsqrt" },

  ["mg.exp"] = {
    sig = { "mg.exp(t)", "t:exp()" },
    doc = [[Elementwise e to the power t. An int64 t gives float32. Large inputs overflow to inf (about 88.7 in float32); for probabilities from scores, F.softmax or mg.sigmoid are the stable forms.]],
    example = [[
print(mg.tensor({0, 1}):exp())   --> {1.0000, 2.7183}]],
    group = "Pointwise math",
    see = { "mg.log", "mg.expm1", "mg.sigmoid" },
  },
  ["mg.exp_"] = { inplace = "mg.exp" },

  ["mg.expm1"] = {
    sig = { "mg.expm1(t)", "t:expm1()" },
    doc = [[Elementwise exp(t) - 1, accurate for t near 0 where exp(t) - 1 loses its digits. An int64 t gives float32.]],
    example = [[
local t = mg.tensor({1e-8}, "float64")
print(t:expm1():item(), (t:exp() - 1):item())   --> 1.000000005e-08  9.9999999392253e-09]],
    group = "Pointwise math",
    see = { "mg.exp", "mg.log1p" },
  },
  ["mg.expm1_"] = { inplace = "mg.expm1" },

  ["mg.log"] = {
    sig = { "mg.log(t)", "t:log()" },
    doc = [[Elementwise natural logarithm: 0 gives -inf and negatives nan (no error). An int64 t gives float32.]],
    example = [[
print(mg.tensor({1, math.exp(2), 0}):log())   --> {  0.,   2., -inf}]],
    group = "Pointwise math",
    see = { "mg.exp", "mg.log1p" },
  },
  ["mg.log_"] = { inplace = "mg.log" },

  ["mg.log1p"] = {
    sig = { "mg.log1p(t)", "t:log1p()" },
    doc = [[Elementwise log(1 + t), accurate for t near 0 where 1 + t rounds away the digits. An int64 t gives float32; t below -1 gives nan.]],
    example = [[
local t = mg.tensor({1e-10}, "float64")
print(t:log1p():item(), (t + 1):log():item())   --> 9.9999999995e-11  1.0000000826904e-10]],
    group = "Pointwise math",
    see = { "mg.log", "mg.expm1" },
  },
  ["mg.log1p_"] = { inplace = "mg.log1p" },

  ["mg.tanh"] = {
    sig = { "mg.tanh(t)", "t:tanh()" },
    doc = [[Elementwise hyperbolic tangent, in (-1, 1). An int64 t gives float32. F.tanh is this function (nn.Tanh its module form).]],
    example = [[
print(mg.tensor({0, 1, -20}):tanh())   --> { 0.0000,  0.7616, -1.0000}]],
    group = "Pointwise math",
    see = { "mg.sigmoid", "mg.relu" },
  },
  ["mg.tanh_"] = { inplace = "mg.tanh" },

  ["mg.sigmoid"] = {
    sig = { "mg.sigmoid(t)", "t:sigmoid()" },
    doc = [[Elementwise logistic function 1 / (1 + exp(-t)), in (0, 1), saturating to 0 and 1 for large |t| without overflow or NaN. An int64 t gives float32. F.sigmoid is this function (nn.Sigmoid its module form).]],
    example = [[
print(mg.tensor({0, 2, -2}):sigmoid())   --> {0.5000, 0.8808, 0.1192}]],
    group = "Pointwise math",
    see = { "mg.tanh", "mg.relu" },
  },
  ["mg.sigmoid_"] = { inplace = "mg.sigmoid" },

  ["mg.sin"] = {
    sig = { "mg.sin(t)", "t:sin()" },
    doc = [[Elementwise sine of t in radians. An int64 t gives float32.]],
    example = [[
print(mg.tensor({0, math.pi / 2}):sin())   --> {0., 1.}]],
    group = "Pointwise math",
    see = { "mg.cos", "mg.atan2" },
  },
  ["mg.sin_"] = { inplace = "mg.sin" },

  ["mg.cos"] = {
    sig = { "mg.cos(t)", "t:cos()" },
    doc = [[Elementwise cosine of t in radians. An int64 t gives float32.]],
    example = [[
print(mg.tensor({0, math.pi}):cos())   --> { 1., -1.}]],
    group = "Pointwise math",
    see = { "mg.sin", "mg.atan2" },
  },
  ["mg.cos_"] = { inplace = "mg.cos" },

  ["mg.reciprocal"] = {
    sig = { "mg.reciprocal(t)", "t:reciprocal()" },
    doc = [[Elementwise 1 / t; 0 gives inf. An int64 t gives float32, as in PyTorch (so t:reciprocal_() refuses int64).]],
    example = [[
print(mg.tensor({2, 4}, "int64"):reciprocal())   --> {0.5000, 0.2500}]],
    group = "Pointwise math",
    see = { "mg.div", "mg.rsqrt" },
  },
  ["mg.reciprocal_"] = { inplace = "mg.reciprocal" },

  ["mg.clamp"] = {
    sig = { "mg.clamp(t, min [, max])", "t:clamp(min [, max])", "t:clamp{min = lo, max = hi}" },
    doc = [[Limits every element to [min, max]: elements below min become min, above max become max, NaN stays NaN. Either bound may be nil (t:clamp(nil, 1) has only a maximum), but not both; the bounds are numbers, not tensors, and min > max is an error. The result keeps t's dtype (for int64 the bounds are rounded inward). The gradient passes where min <= t <= max, bounds included, as in PyTorch. mg.clip is the same function; there is no in-place form.]],
    opts = {
      { "min", "nil", "the lower bound (a number), or nil for none" },
      { "max", "nil", "the upper bound (a number), or nil for none" },
    },
    example = [[
local t = mg.tensor({-2, 0.5, 3})
print(t:clamp(0, 1))        --> {0.0000, 0.5000, 1.0000}
print(t:clamp{max = 0})     --> {-2.,  0.,  0.}]],
    group = "Pointwise math",
    see = { "mg.maximum", "mg.minimum", "mg.relu" },
  },
  ["mg.clip"] = { alias = "mg.clamp" },

  ---------------------------------------------------------------------------
  -- Comparison

  ["mg.eq"] = {
    sig = { "mg.eq(a, b)", "a:eq(b)" },
    doc = [[Elementwise a == b as a mask: 1 where true and 0 where false, in the promoted dtype of the operands (float32 for float32 tensors, int64 for int64 ones), not bool as PyTorch gives; the mask works directly in mg.where, masked_fill and arithmetic (mask:sum() counts). Either operand may be a Lua number and tensors broadcast. Lua's a == b on two tensors compares identity, not values, so use a:eq(b). Comparisons record no gradient.]],
    example = [[
local a = mg.tensor({1, 2, 3})
print(a:eq(2))                                  --> {0., 1., 0.}
print(a:eq(mg.tensor({1, 0, 3})):sum():item())  --> 2.0]],
    group = "Comparison",
    see = { "mg.ne", "mg.where", "mg.lt" },
  },
  ["mg.eq_"] = { inplace = "mg.eq" },

  ["mg.ne"] = {
    sig = { "mg.ne(a, b)", "a:ne(b)" },
    doc = [[Elementwise a ~= b as a 1/0 mask in the operands' promoted dtype (not bool); NaN is unequal to everything, itself included. Either operand may be a Lua number and tensors broadcast. The mask rules are those of mg.eq.]],
    example = [[
print(mg.tensor({1, 2, 0 / 0}):ne(2))   --> {1., 0., 1.}]],
    group = "Comparison",
    see = { "mg.eq" },
  },
  ["mg.ne_"] = { inplace = "mg.ne" },

  ["mg.lt"] = {
    sig = { "mg.lt(a, b)", "a:lt(b)" },
    doc = [[Elementwise a < b as a 1/0 mask in the operands' promoted dtype (not bool; see mg.eq). Either operand may be a Lua number and tensors broadcast. Lua's a < b is not defined for tensors (it raises "attempt to compare"), so this is the way to write it.]],
    example = [[
local a = mg.tensor({1, 2, 3})
print(a:lt(2))                         --> {1., 0., 0.}
print(mg.where(a:lt(2), 0, a))         --> {0., 2., 3.}]],
    group = "Comparison",
    see = { "mg.le", "mg.gt", "mg.where" },
  },
  ["mg.lt_"] = { inplace = "mg.lt" },

  ["mg.le"] = {
    sig = { "mg.le(a, b)", "a:le(b)" },
    doc = [[Elementwise a <= b as a 1/0 mask in the operands' promoted dtype (not bool; see mg.eq). Either operand may be a Lua number and tensors broadcast.]],
    example = [[
print(mg.tensor({1, 2, 3}):le(2))   --> {1., 1., 0.}]],
    group = "Comparison",
    see = { "mg.lt", "mg.ge" },
  },
  ["mg.le_"] = { inplace = "mg.le" },

  ["mg.gt"] = {
    sig = { "mg.gt(a, b)", "a:gt(b)" },
    doc = [[Elementwise a > b as a 1/0 mask in the operands' promoted dtype (not bool; see mg.eq). Either operand may be a Lua number and tensors broadcast. In place, t:gt_(b) overwrites t with the mask.]],
    example = [[
local a = mg.tensor({-1, 2, 3})
print(a:gt(0))                      --> {0., 1., 1.}
print((a:gt(0) * a):sum():item())   --> 5.0]],
    group = "Comparison",
    see = { "mg.ge", "mg.lt", "mg.where" },
  },
  ["mg.gt_"] = { inplace = "mg.gt" },

  ["mg.ge"] = {
    sig = { "mg.ge(a, b)", "a:ge(b)" },
    doc = [[Elementwise a >= b as a 1/0 mask in the operands' promoted dtype (not bool; see mg.eq). Either operand may be a Lua number and tensors broadcast.]],
    example = [[
print(mg.tensor({1, 2, 3}, "int64"):ge(2))   --> {0, 1, 1}]],
    group = "Comparison",
    see = { "mg.gt", "mg.le" },
  },
  ["mg.ge_"] = { inplace = "mg.ge" },

  ---------------------------------------------------------------------------
  -- Reduction

  ["mg.sum"] = {
    sig = { "mg.sum(t [, dim [, keepdim]])", "t:sum([dim [, keepdim]])" },
    doc = [[The sum of every element (a 0-d tensor) or, with dim, along that dim (1-based; negative counts from the end), which is removed unless keepdim is true. keepdim may also be given as an options table, t:sum(2, {keepdim = true}), and t:sum{keepdim = true} sums everything into a tensor of t's ndim with all sizes 1. Only one dim at a time: a list of dims, as PyTorch takes, is read as an options table and refused. float32 accumulates in double; int64 stays int64 and wraps on overflow. The sum of nothing is 0.]],
    example = [[
local t = mg.tensor({{1, 2, 3}, {4, 5, 6}})
print(t:sum():item())   --> 21.0
print(t:sum(1))         --> {5., 7., 9.}
print(t:sum(-1, true))  --> {{ 6.}, {15.}}   (shape {2, 1})]],
    group = "Reduction",
    see = { "mg.mean", "mg.prod" },
  },

  ["mg.mean"] = {
    sig = { "mg.mean(t [, dim [, keepdim]])", "t:mean([dim [, keepdim]])" },
    doc = [[The mean of every element (a 0-d tensor) or along dim (1-based, negative from the end), which is removed unless keepdim is true (or {keepdim = true}; t:mean{keepdim = true} keeps every dim as size 1). An int64 t gives float32 (PyTorch refuses it). The mean of nothing is nan.]],
    example = [[
local t = mg.tensor({{1, 2}, {3, 4}})
print(t:mean():item())   --> 2.5
print(t:mean(2))         --> {1.5000, 3.5000}]],
    group = "Reduction",
    see = { "mg.sum", "mg.var", "mg.std" },
  },

  ["mg.prod"] = {
    sig = { "mg.prod(t [, dim [, keepdim]])", "t:prod([dim [, keepdim]])" },
    doc = [[The product of every element (a 0-d tensor) or along dim (1-based, negative from the end), removed unless keepdim is true (or {keepdim = true}). int64 stays int64 and wraps on overflow; the product of nothing is 1. The gradient is exact where t holds zeros.]],
    example = [[
local t = mg.tensor({{1, 2}, {3, 4}})
print(t:prod():item())   --> 24.0
print(t:prod(1))         --> {3., 8.}]],
    group = "Reduction",
    see = { "mg.sum" },
  },

  ["mg.max"] = {
    sig = { "mg.max(t)", "mg.max(t, dim [, keepdim])", "mg.max(t, other)",
            "t:max()", "t:max(dim [, keepdim])", "t:max(other)" },
    doc = [[With no dim, the largest element as a 0-d tensor (one value only). With dim (1-based, negative from the end), two tensors: the maxima along dim and their 1-based int64 indices, with dim removed unless keepdim is true (or {keepdim = true}). A tie gives the first index; a NaN counts as the maximum (the value is NaN, the index its first position). With a tensor other, the elementwise maximum (mg.maximum); a number there is a dim, so write t:maximum(0) or t:clamp(0) for a bound. An empty tensor or dim is an error. The gradient goes to the index along a dim and is shared evenly among tied maxima over every element, as in PyTorch.]],
    example = [[
local t = mg.tensor({{1, 5, 3}, {4, 2, 6}})
print(t:max():item())          --> 6.0
local values, indices = t:max(2)
print(values, indices)         --> {5., 6.}  {2, 3}]],
    group = "Reduction",
    see = { "mg.argmax", "mg.min", "mg.maximum" },
  },

  ["mg.min"] = {
    sig = { "mg.min(t)", "mg.min(t, dim [, keepdim])", "mg.min(t, other)",
            "t:min()", "t:min(dim [, keepdim])", "t:min(other)" },
    doc = [[With no dim, the smallest element as a 0-d tensor. With dim (1-based, negative from the end), the minima along dim and their 1-based int64 indices (the first on ties; a NaN counts as the minimum), dim removed unless keepdim is true (or {keepdim = true}). With a tensor other, the elementwise minimum (mg.minimum); a number is read as a dim. An empty tensor or dim is an error.]],
    example = [[
local t = mg.tensor({{1, 5, 3}, {4, 2, 6}})
print(t:min():item())            --> 1.0
local values, indices = t:min(1)
print(values, indices)           --> {1., 2., 3.}  {1, 2, 1}]],
    group = "Reduction",
    see = { "mg.argmin", "mg.max", "mg.minimum" },
  },

  ["mg.argmax"] = {
    sig = { "mg.argmax(t [, dim [, keepdim]])", "t:argmax([dim [, keepdim]])" },
    doc = [[The 1-based int64 index of the largest element: with no dim, its position in t flattened in row-major order (a 0-d tensor); with dim (negative from the end), the index along dim, dim removed unless keepdim is true (or {keepdim = true}). Ties give the first occurrence and a NaN counts as the largest. Indices are 1-based, unlike PyTorch's, so t:gather(dim, t:argmax(dim, true)) picks the maxima. Not differentiable; an empty tensor or dim is an error.]],
    example = [[
local t = mg.tensor({{1, 5, 3}, {4, 2, 6}})
print(t:argmax():item())   --> 6
print(t:argmax(2))         --> {2, 3}]],
    group = "Reduction",
    see = { "mg.max", "mg.argmin" },
  },

  ["mg.argmin"] = {
    sig = { "mg.argmin(t [, dim [, keepdim]])", "t:argmin([dim [, keepdim]])" },
    doc = [[The 1-based int64 index of the smallest element: with no dim, its row-major position in t flattened (a 0-d tensor); with dim (negative from the end), the index along dim, removed unless keepdim is true (or {keepdim = true}). Ties give the first occurrence and a NaN counts as the smallest. Not differentiable; an empty tensor or dim is an error.]],
    example = [[
local t = mg.tensor({{1, 5, 3}, {4, 2, 6}})
print(t:argmin():item())   --> 1
print(t:argmin(1))         --> {1, 2, 1}]],
    group = "Reduction",
    see = { "mg.min", "mg.argmax" },
  },

  ["mg.var"] = {
    sig = { "mg.var(t [, dim] [, opts])", "t:var([dim] [, opts])" },
    doc = [[The variance of every element (a 0-d tensor) or along dim (1-based, negative from the end): the sum of squared deviations from the mean divided by n - correction. The default correction = 1 is the unbiased estimate, as torch.var's; {correction = 0} gives the population variance. Options come only as a table: a positional boolean is refused, since PyTorch's means unbiased and Torch7's the opposite. nan when n - correction <= 0 (a single element); an int64 t gives float32.]],
    opts = {
      { "correction", "1", "subtracted from n in the divisor (0: population variance, 1: sample)" },
      { "keepdim", "false", "keep the reduced dim (or every dim, with no dim) as size 1" },
    },
    example = [[
local t = mg.tensor({1, 2, 3, 4})
print(t:var():item())                   --> 1.6666666269302
print(t:var({correction = 0}):item())   --> 1.25
print(mg.tensor({{1, 3}, {5, 9}}):var(2, {keepdim = true}))   --> {{2.}, {8.}}]],
    group = "Reduction",
    see = { "mg.std", "mg.mean" },
  },

  ["mg.std"] = {
    sig = { "mg.std(t [, dim] [, opts])", "t:std([dim] [, opts])" },
    doc = [[The standard deviation, the square root of mg.var with the same arguments: over every element (a 0-d tensor) or along dim (1-based, negative from the end), dividing by n - correction (default 1, the unbiased estimate as torch.std's; {correction = 0} for the population). Options come only as a table; a positional boolean (PyTorch's unbiased) is an error. nan when n - correction <= 0; an int64 t gives float32.]],
    opts = {
      { "correction", "1", "subtracted from n in the divisor (0: population, 1: sample)" },
      { "keepdim", "false", "keep the reduced dim (or every dim, with no dim) as size 1" },
    },
    example = [[
local t = mg.tensor({1, 2, 3, 4})
print(t:std({correction = 0}):item())   --> 1.1180340051651
print(t:std(1):item())                  --> 1.2909944057465]],
    group = "Reduction",
    see = { "mg.var", "mg.mean" },
  },

  ---------------------------------------------------------------------------
  -- Linear algebra

  ["mg.matmul"] = {
    sig = { "mg.matmul(a, b)", "a:matmul(b)" },
    doc = [[The matrix product with PyTorch's rules: 1-D by 1-D is the dot product (a 0-d tensor); a 1-D a is a row vector and a 1-D b a column vector, dropped from the result; 2-D by 2-D is the matrix product; with 3 or more dims the leading dims are batch dims that broadcast, so {8, 3, 4} by {4, 5} gives {8, 3, 5}. float32 and float64 go to OpenBLAS (transposed views are not copied); int64 runs an exact loop that wraps on overflow. Lua has no @ operator, and a * b is the elementwise product. The inner sizes must agree, or the error names both shapes.]],
    example = [[
local a = mg.randn(8, 3, 4)
print(table.concat(a:matmul(mg.randn(4, 5)):shape(), " "))   --> 8 3 5
local v = mg.tensor({1, 2})
print(mg.matmul(mg.tensor({{1, 2}, {3, 4}}), v))              --> { 5., 11.}]],
    group = "Linear algebra",
    see = { "mg.mm", "mg.bmm", "mg.mv", "mg.dot" },
  },

  ["mg.mm"] = {
    sig = { "mg.mm(a, b)", "a:mm(b)" },
    doc = [[The product of two matrices: a of shape {n, k} by b of shape {k, m} gives {n, m}. Both must be 2-D (anything else is an error naming the shapes); mg.matmul is the general form with vectors and batches.]],
    example = [[
local a = mg.tensor({{1, 2}, {3, 4}})
print(a:mm(mg.eye(2)))   --> {{1., 2.}, {3., 4.}}]],
    group = "Linear algebra",
    see = { "mg.matmul", "mg.mv", "mg.bmm" },
  },

  ["mg.bmm"] = {
    sig = { "mg.bmm(a, b)", "a:bmm(b)" },
    doc = [[Batched matrix products: a of shape {B, n, k} by b of shape {B, k, m} gives {B, n, m}, one product per batch element. Both must be 3-D. Unlike torch.bmm, a batch size of 1 on one side broadcasts (it runs mg.matmul's rules once the dims are checked).]],
    example = [[
local a, b = mg.ones(2, 3, 4), mg.ones(2, 4, 5)
print(table.concat(mg.bmm(a, b):shape(), " "))   --> 2 3 5]],
    group = "Linear algebra",
    see = { "mg.matmul", "mg.mm" },
  },

  ["mg.mv"] = {
    sig = { "mg.mv(A, x)", "A:mv(x)" },
    doc = [[The matrix-vector product: A of shape {n, k} by x of shape {k} gives {n}. A must be 2-D and x 1-D.]],
    example = [[
local A = mg.tensor({{1, 2}, {3, 4}})
print(A:mv(mg.tensor({1, 1})))   --> {3., 7.}]],
    group = "Linear algebra",
    see = { "mg.matmul", "mg.dot" },
  },

  ["mg.dot"] = {
    sig = { "mg.dot(a, b)", "a:dot(b)" },
    doc = [[The dot product of two 1-D tensors of the same size, as a 0-d tensor (:item() gives the number). Both must be 1-D; for sums of elementwise products over other shapes write (a * b):sum(dim).]],
    example = [[
local a, b = mg.tensor({1, 2, 3}), mg.tensor({4, 5, 6})
print(mg.dot(a, b):item())   --> 32.0]],
    group = "Linear algebra",
    see = { "mg.matmul", "mg.mv" },
  },

  ["mg.tril"] = {
    sig = { "mg.tril(t [, k])", "t:tril([k])" },
    doc = [[A copy of t with everything above the k-th diagonal set to zero: element (i, j) of each matrix is kept when j - i <= k. k defaults to 0 (the main diagonal); k = -1 drops the diagonal too, k = 1 keeps one diagonal above it. t needs at least 2 dims; the last two are the matrices and any leading dims batch. The gradient is masked the same way; bool and other storage dtypes must be converted first.]],
    example = [[
print(mg.ones(3, 3):tril())      --> {{1., 0., 0.}, {1., 1., 0.}, {1., 1., 1.}}
print(mg.ones(2, 3):tril(-1))    --> {{0., 0., 0.}, {1., 0., 0.}}]],
    group = "Linear algebra",
    see = { "mg.triu", "mg.linalg.cholesky" },
  },

  ["mg.triu"] = {
    sig = { "mg.triu(t [, k])", "t:triu([k])" },
    doc = [[A copy of t with everything below the k-th diagonal set to zero: element (i, j) of each matrix is kept when j - i >= k. k defaults to 0; k = 1 drops the main diagonal too, so mg.ones(n, n):triu(1) marks the future positions a causal attention mask hides. t needs at least 2 dims; leading dims batch.]],
    example = [[
print(mg.ones(3, 3):triu(1))   --> {{0., 1., 1.}, {0., 0., 1.}, {0., 0., 0.}}]],
    group = "Linear algebra",
    see = { "mg.tril" },
  },

  ["mg.cholesky_solve"] = {
    sig = "mg.cholesky_solve(B, L [, opts])",
    doc = [[Solves A X = B for X given the Cholesky factor L of A (from mg.linalg.cholesky), by two triangular solves; it lives at the top level, as torch.cholesky_solve does, and B comes first. B is {..., n, k} (a 1-D B is an error: make it a column), L is {..., n, n}; both float32 or float64, of one dtype and the same leading (batch) dims. Pass {upper = true} when L is the upper factor. The gradient for L is a full matrix, as PyTorch's; mask it with tril when the factor's entries are free parameters.]],
    opts = {
      { "upper", "false", "true when L is upper triangular (A = U^T U)" },
    },
    example = [[
local A = mg.tensor({{4, 2}, {2, 5}}, "float64")
local L = mg.linalg.cholesky(A)
print(mg.cholesky_solve(mg.tensor({{8}, {12}}, "float64"), L))   --> {{1.}, {2.}}]],
    group = "Linear algebra",
    see = { "mg.linalg.cholesky", "mg.linalg.solve_triangular" },
  },

  ["mg.linalg"] = {
    sig = "mg.linalg",
    doc = [[Matrix factorizations and solves, as torch.linalg: mg.linalg.cholesky and mg.linalg.solve_triangular (mg.cholesky_solve is at the top level, as in torch). They run on OpenBLAS's LAPACK and BLAS in float32 and float64, treat the last two dims as matrices and any leading dims as a batch, and differentiate with PyTorch's formulas. The matrix products (mg.matmul and friends) are in mg itself.]],
    groups = { "Linear algebra" },
    example = [[
local A = mg.tensor({{4, 2}, {2, 5}}, "float64")
local L = mg.linalg.cholesky(A)
print((L:matmul(L:t()) - A):abs():max():item())   --> 0.0]],
    group = "Linear algebra",
    see = { "mg.linalg.cholesky", "mg.linalg.solve_triangular", "mg.cholesky_solve", "mg.matmul" },
  },

  ["mg.linalg.cholesky"] = {
    sig = "mg.linalg.cholesky(A [, opts])",
    doc = [[The Cholesky factor of a symmetric positive-definite A: lower triangular L with A = L L^T, or with {upper = true} the upper U = L^T. A is {..., n, n}, float32 or float64; only the triangle of the factor asked for is read (the lower one by default), with no symmetry check. A matrix that is not positive-definite is an error naming the failing leading minor (and batch element), e.g. "the leading minor of order 2 is not positive-definite"; adding a small multiple of mg.eye(n) is the usual fix. The gradient is symmetric, as PyTorch's.]],
    opts = {
      { "upper", "false", "return the upper factor U = L^T instead of L" },
    },
    example = [[
local A = mg.tensor({{4, 2}, {2, 5}}, "float64")
print(mg.linalg.cholesky(A))                   --> {{2., 0.}, {1., 2.}}
print(pcall(mg.linalg.cholesky, mg.tensor({{1, 2}, {2, 1}})))
--> false  linalg.cholesky: the leading minor of order 2 is not positive-definite]],
    group = "Linear algebra",
    see = { "mg.cholesky_solve", "mg.linalg.solve_triangular", "mg.tril" },
  },

  ["mg.linalg.solve_triangular"] = {
    sig = "mg.linalg.solve_triangular(A, B, {upper = bool [, left = true] [, unitriangular = false]})",
    doc = [[Solves A X = B (or X A = B with left = false) for X, where A is triangular: {..., n, n}, with B {..., n, k} (left) or {..., k, n} (right). upper is required, as in PyTorch: say which triangle of A holds the matrix; only that triangle is read. A and B must be float32 or float64 of one dtype with the same leading (batch) dims. The gradient for A stays in its triangle.]],
    opts = {
      { "upper", "required", "true when A is upper triangular, false when lower" },
      { "left", "true", "solve A X = B; false solves X A = B" },
      { "unitriangular", "false", "take A's diagonal as ones (it is not read)" },
    },
    example = [[
local L = mg.tensor({{2, 0}, {1, 2}}, "float64")
local B = mg.tensor({{8}, {12}}, "float64")
print(mg.linalg.solve_triangular(L, B, {upper = false}))   --> {{4.}, {4.}}
print(mg.linalg.solve_triangular(L, B:t(), {upper = false, left = false}))   --> {{1., 6.}}]],
    group = "Linear algebra",
    see = { "mg.linalg.cholesky", "mg.cholesky_solve" },
  },

  ---------------------------------------------------------------------------
  -- Indexing

  ["mg.where"] = {
    sig = { "mg.where(cond, a, b)", "a:where(cond, b)" },
    doc = [[Elementwise a where cond is nonzero, else b; cond, a and b broadcast together. cond may be a 1/0 mask from a comparison, a bool or another integer tensor; a and b are tensors or Lua numbers, and the result has their promoted dtype (a number takes the other operand's dtype, or float32 when both are numbers; a Lua float with an int64 tensor gives float32). The method form is PyTorch's: a:where(cond, b). The gradient flows to a where cond holds and to b elsewhere. The one-argument torch.where(cond) (the indices) is not provided.]],
    example = [[
local x = mg.tensor({-1, 2, -3})
print(mg.where(x:gt(0), x, 0))                  --> {0., 2., 0.}
print(x:where(mg.tensor({true, false, true}), 9))   --> {-1.,  9., -3.}]],
    group = "Indexing",
    see = { "mg.gt", "mg.clamp" },
  },
}
