-- Help for moongrad's tensors (`mg`): the module, creation, dtypes, shapes
-- and views, indexing, autograd, random numbers, threads, memory, files.
-- The form of an entry is described in moongrad/help.lua.
return {
  mg = {
    sig = 'local mg = require "moongrad"',
    doc = [[Tensors, their ops and reverse-mode autograd, from moongrad's C core. A tensor has a dtype (float32 unless a creator or its data says otherwise: arange, randint and randperm make int64), a shape and strides; ops broadcast as PyTorch's do, dims and indices are 1-based (negative counts from the end), and an op records itself for backward when grad mode is on and an input requires grad. Each tensor function that takes a tensor first is also a method: mg.sum(t) is t:sum(), mg.reshape(t, 2, 3) is t:reshape(2, 3).]],
    groups = { "Creation", "Random", "Shape and views", "Indexing", "Pointwise math", "Comparison",
               "Reduction", "Linear algebra", "Autograd", "Dtype", "Files", "Threads and memory",
               "Notebook and help" },
    example = [[
local x = mg.randn(3, 4):requires_grad()
local loss = (x * 2):sum()
loss:backward()
print(x.grad:shape()[1], x.grad[{1, 1}])   --> 3  2.0]],
    see = { "mg.Tensor", "nn", "F", "optim" },
  },

  ["mg.Tensor"] = {
    sig = { "mg.Tensor", "local t = mg.tensor(data [, dtype])" },
    doc = [[The tensor class: a userdata whose methods live in the table mg.Tensor (add a function there and every tensor has it as a method). t.grad is the accumulated gradient after backward (nil before); it may be assigned nil or a tensor of t's shape, and no other field can be set. Arithmetic operators broadcast and take a number on either side; comparisons are methods (t:lt(u), t:eq(u)), since Lua's < raises for tensors and == only tells whether two values are the same tensor object. Indexing is 1-based and negative counts from the end: t[i] is a view of position i along dim 1 (a number when t is 1-D), t[{i, j}] is an element when every dim is given and a view otherwise, and assigning t[i] = v or t[{i, j}] = v fills with a number or boolean or copies a tensor (broadcast). #t is the size of dim 1 (an error for a 0-d tensor), tostring(t) and print(t) show the values as a Lua table literal followed by the dtype and shape, abbreviated past 1000 elements.

  a + b   a - b   a * b   a / b   a ^ b   -a
  a // b  (floor division)    a % b  (remainder with the divisor's sign, as in Lua)
  int64 / int64 gives float32 (true division), as in PyTorch]],
    example = [[
local t = mg.tensor({{1, 2}, {3, 4}})
print(t[{2, 1}], #t)                 --> 3.0  2
print((t * 2 + 1)[{2, 2}])           --> 9.0
t[1] = 0                             -- fills row 1
print(t:gt(2):sum():item())          --> 2.0
print(mg.tensor({7}, "int64") // 2)]],
    group = "Creation",
    see = { "mg.tensor", "mg.get", "mg.set", "mg.shape", "mg.dtype", "mg.backward" },
  },

  -------------------------------------------------------------------------
  -- Creation

  ["mg.tensor"] = {
    sig = "mg.tensor(data [, dtype])",
    doc = [[A new tensor from data: a number or boolean (a 0-d tensor), a nested Lua table of numbers or booleans (one level per dim, rows of equal length), or a tensor (always copied, as a new leaf outside the graph, like torch.tensor). The dtype defaults to float32, to bool for a table of booleans, and to the source's dtype for a tensor; any dtype name may be given. Ragged tables, a number among booleans without a dtype, and values that do not fit a storage dtype (300 as uint8) are errors.]],
    example = [[
local t = mg.tensor({{1, 2}, {3, 4}}, "float64")
print(t:dtype(), table.concat(t:shape(), "x"), t[{2, 1}])   --> float64  2x2  3.0
print(mg.tensor({true, false}):dtype(), mg.tensor(5):dim())  --> bool  0
local px = mg.tensor({0, 128, 255}, "uint8")]],
    group = "Creation",
    see = { "mg.Tensor", "mg.totable", "mg.zeros", "mg.arange" },
  },

  ["mg.zeros"] = {
    sig = { "mg.zeros(d1, d2, ... [, dtype])", "mg.zeros({d1, d2, ...} [, dtype])" },
    doc = [[A new tensor of the given shape filled with zeros. The shape is given as numbers or as one list (none gives a 0-d tensor); dtype is any dtype name ("float32", "float64", "int64", "uint8", "float16", "bfloat16", "int32", "int16", "int8", "bool"), or {dtype = name}, and defaults to float32. A negative size or more than 16 dims is an error.]],
    example = [[
local z = mg.zeros(2, 3)
print(z:shape()[1], z:shape()[2], z:dtype())   --> 2  3  float32
local w = mg.zeros({4}, "int64")
print(w:dtype(), mg.zeros():dim())              --> int64  0]],
    group = "Creation",
    see = { "mg.ones", "mg.full", "mg.empty", "mg.zeros_like" },
  },

  ["mg.ones"] = {
    sig = { "mg.ones(d1, d2, ... [, dtype])", "mg.ones({d1, d2, ...} [, dtype])" },
    doc = [[A new tensor of the given shape filled with ones. The shape is numbers or one list, and dtype (any dtype name, or {dtype = name}) defaults to float32, as for mg.zeros.]],
    example = [[
local o = mg.ones{2, 2}
print(o:sum():item())              --> 4.0
print(mg.ones(3, "bool"):dtype())  --> bool]],
    group = "Creation",
    see = { "mg.zeros", "mg.full", "mg.ones_like" },
  },

  ["mg.empty"] = {
    sig = { "mg.empty(d1, d2, ... [, dtype])", "mg.empty({d1, d2, ...} [, dtype])" },
    doc = [[A new tensor of the given shape whose values are not set: whatever the memory held, possibly a freed tensor's numbers. Use it only when every element is written before it is read; it saves the fill that mg.zeros does. Shape and dtype are given as for mg.zeros (default float32).]],
    example = [[
local buf = mg.empty(2, 3)
buf:fill_(1)
print(buf:sum():item())   --> 6.0]],
    group = "Creation",
    see = { "mg.zeros", "mg.fill_" },
  },

  ["mg.full"] = {
    sig = "mg.full({d1, d2, ...}, value [, dtype])",
    doc = [[A new tensor of the shape given as a list, every element value (a number, or a boolean as 1 or 0). The dtype is any dtype name and defaults to float32 even for an integer value (PyTorch would pick int64 there). The shape must be a table: mg.full(2, 7) is an error.]],
    example = [[
print(mg.full({2, 2}, 7):sum():item())        --> 28.0
print(mg.full({3}, 5, "int64"):totable()[3])  --> 5]],
    group = "Creation",
    see = { "mg.zeros", "mg.ones", "mg.full_like" },
  },

  ["mg.arange"] = {
    sig = { "mg.arange(stop [, dtype])", "mg.arange(start, stop [, step] [, dtype])" },
    doc = [[A 1-D tensor of start, start + step, ... up to but not including stop (start defaults to 0 and step to 1; a negative step counts down), as PyTorch's arange. The values are those of PyTorch, 0-based: mg.arange(5) is 0..4. When every number given is an integer the dtype is int64, otherwise float32; dtype may be "float32", "float64" or "int64". A step of 0 is an error.]],
    example = [[
print(table.concat(mg.arange(5):totable(), " "))         --> 0 1 2 3 4
print(table.concat(mg.arange(5, 0, -2):totable(), " "))  --> 5 3 1
print(mg.arange(0, 1, 0.25):dtype())                     --> float32]],
    group = "Creation",
    see = { "mg.linspace", "mg.randperm" },
  },

  ["mg.linspace"] = {
    sig = "mg.linspace(start, stop, steps [, dtype])",
    doc = [[A 1-D tensor of steps evenly spaced values from start to stop, both included (steps = 1 gives just start, 0 an empty tensor). dtype is "float32" (the default), "float64" or "int64"; a negative steps is an error.]],
    example = [[
local x = mg.linspace(0, 1, 5)
print(x[2], x[5], x:numel())   --> 0.25  1.0  5]],
    group = "Creation",
    see = { "mg.arange" },
  },

  ["mg.eye"] = {
    sig = "mg.eye(n [, m] [, dtype])",
    doc = [[The n-by-m identity matrix (m defaults to n): ones on the diagonal, zeros elsewhere. dtype is "float32" (the default), "float64" or "int64"; negative sizes are an error.]],
    example = [[
local I = mg.eye(3)
print(I:sum():item(), I[{2, 2}], I[{1, 2}])   --> 3.0  1.0  0.0
print(mg.eye(2, 4):shape()[2])                --> 4]],
    group = "Creation",
    see = { "mg.zeros", "mg.tril" },
  },

  ["mg.zeros_like"] = {
    sig = "mg.zeros_like(t [, dtype])",
    doc = [[A new contiguous tensor of t's shape filled with zeros, in t's dtype unless dtype is given. It never requires grad, whatever t does.]],
    example = [[
local x = mg.randn(2, 3)
local z = mg.zeros_like(x, "int64")
print(z:shape()[2], z:dtype(), z:sum():item())   --> 3  int64  0]],
    group = "Creation",
    see = { "mg.zeros", "mg.ones_like", "mg.full_like" },
  },

  ["mg.ones_like"] = {
    sig = "mg.ones_like(t [, dtype])",
    doc = [[A new contiguous tensor of t's shape filled with ones, in t's dtype unless dtype is given. It never requires grad.]],
    example = [[
local o = mg.ones_like(mg.zeros(2, 2, "float64"))
print(o:dtype(), o:sum():item())   --> float64  4.0]],
    group = "Creation",
    see = { "mg.ones", "mg.zeros_like", "mg.full_like" },
  },

  ["mg.full_like"] = {
    sig = "mg.full_like(t, value [, dtype])",
    doc = [[A new contiguous tensor of t's shape with every element value (a number or a boolean), in t's dtype unless dtype is given. It never requires grad.]],
    example = [[
local f = mg.full_like(mg.zeros(3), 2.5)
print(f:sum():item())   --> 7.5]],
    group = "Creation",
    see = { "mg.full", "mg.zeros_like", "mg.ones_like" },
  },

  ["mg.clone"] = {
    sig = { "mg.clone(t)", "t:clone()" },
    doc = [[A copy of t with storage of its own, contiguous, in t's dtype. Unlike detach it stays in the graph: when t requires grad the copy's gradient flows back to t (so the copy is not a leaf). Use t:detach():clone() for an independent copy outside autograd.]],
    example = [[
local a = mg.tensor({1, 2, 3})
local b = a:clone()
b[1] = 10
print(a[1], b[1], a:shares_storage(b))   --> 1.0  10.0  false]],
    group = "Creation",
    see = { "mg.detach", "mg.contiguous", "mg.copy_" },
  },

  ["mg.is_tensor"] = {
    sig = "mg.is_tensor(v)",
    doc = [[true when v is a moongrad tensor (even one already released by a <close> variable), false for anything else, including tables of numbers.]],
    example = [[
print(mg.is_tensor(mg.zeros(1)), mg.is_tensor({1, 2}), mg.is_tensor(3))   --> true  false  false]],
    group = "Creation",
    see = { "mg.Tensor", "mg.tensor" },
  },

  -------------------------------------------------------------------------
  -- Random

  ["mg.manual_seed"] = {
    sig = "mg.manual_seed(seed)",
    doc = [[Seeds the state's random number generator (a counter-based Philox generator) with the integer seed and rewinds it to the start of its main stream, so the draws that follow (rand, randn, randint, randperm, uniform_, normal_, dropout, shuffling) repeat from run to run. The draws depend only on the seed and the calls made, not on the thread count.]],
    example = [[
mg.manual_seed(42)
local a = mg.randn(3)
mg.manual_seed(42)
print(mg.randn(3)[2] == a[2])   --> true]],
    group = "Random",
    see = { "mg.get_rng_state", "mg.set_rng_state", "mg.with_rng_stream" },
  },

  ["mg.get_rng_state"] = {
    sig = "mg.get_rng_state()",
    doc = [[The generator's position as a plain table {seed = s, offset = n}, plus stream = k inside mg.with_rng_stream (the main stream, 0, is left out). Give it to mg.set_rng_state to draw the same numbers again, or save it with a checkpoint to resume a run exactly.]],
    example = [[
local s = mg.get_rng_state()
local a = mg.rand(3)
mg.set_rng_state(s)
print(mg.rand(3)[3] == a[3], s.seed, s.offset)   --> true  0  0]],
    group = "Random",
    see = { "mg.set_rng_state", "mg.manual_seed" },
  },

  ["mg.set_rng_state"] = {
    sig = "mg.set_rng_state(state)",
    doc = [[Puts the generator back at a position taken by mg.get_rng_state: a table with integer fields seed and offset, and optionally stream (0, the main stream, when absent). A missing or non-integer seed or offset is an error.]],
    example = [[
local s = mg.get_rng_state()
local first = mg.randint(100, {4}):totable()
mg.set_rng_state(s)
print(mg.randint(100, {4}):totable()[4] == first[4])   --> true]],
    group = "Random",
    see = { "mg.get_rng_state", "mg.manual_seed" },
  },

  ["mg.with_rng_stream"] = {
    sig = "mg.with_rng_stream(seed, stream, fn, ...)",
    doc = [[Runs fn(...) with the generator at stream number stream of seed (offset 0) and returns fn's results; the previous generator state comes back when fn returns or raises, so the caller's sequence goes on as if fn had not run. Draws inside are a function of (seed, stream) and what fn does only: give each worker, trial or sample its own stream for reproducible, independent randomness. A coroutine yield inside fn is refused.]],
    example = [[
local function draw() return mg.rand(2) end
local a = mg.with_rng_stream(7, 1, draw)
local b = mg.with_rng_stream(7, 1, draw)
local c = mg.with_rng_stream(7, 2, draw)
print(a[1] == b[1], a[1] == c[1])   --> true  false]],
    group = "Random",
    see = { "mg.manual_seed", "mg.get_rng_state" },
  },

  ["mg.rand"] = {
    sig = { "mg.rand(d1, d2, ... [, dtype])", "mg.rand({d1, d2, ...} [, dtype])" },
    doc = [[A new tensor of the given shape with values drawn uniformly from [0, 1). The shape is numbers or one list; dtype is "float32" (the default) or "float64" (or {dtype = name}); other dtypes are an error.]],
    example = [[
local u = mg.rand(2, 3)
print(u:shape()[2], u:min():item() >= 0, u:max():item() < 1)   --> 3  true  true]],
    group = "Random",
    see = { "mg.randn", "mg.rand_like", "mg.uniform_", "mg.manual_seed" },
  },

  ["mg.randn"] = {
    sig = { "mg.randn(d1, d2, ... [, dtype])", "mg.randn({d1, d2, ...} [, dtype])" },
    doc = [[A new tensor of the given shape with values drawn from the standard normal distribution (mean 0, standard deviation 1). The shape is numbers or one list; dtype is "float32" (the default) or "float64".]],
    example = [[
local x = mg.randn({1000}, "float64")
print(x:dtype(), math.abs(x:mean():item()) < 0.2)   --> float64  true]],
    group = "Random",
    see = { "mg.rand", "mg.randn_like", "mg.normal_", "mg.manual_seed" },
  },

  ["mg.rand_like"] = {
    sig = "mg.rand_like(t [, dtype])",
    doc = [[A new tensor of t's shape with values uniform in [0, 1), in t's dtype unless dtype is given. The dtype must be float32 or float64 (an int64 t needs dtype = "float32"); the result does not require grad.]],
    example = [[
local u = mg.rand_like(mg.zeros(2, 2))
print(u:shape()[1], u:dtype())   --> 2  float32]],
    group = "Random",
    see = { "mg.rand", "mg.randn_like" },
  },

  ["mg.randn_like"] = {
    sig = "mg.randn_like(t [, dtype])",
    doc = [[A new tensor of t's shape with standard normal values, in t's dtype unless dtype is given (float32 or float64). Handy for noise of an activation's shape; the result does not require grad.]],
    example = [[
local x = mg.zeros(4, 3, "float64")
local noise = mg.randn_like(x) * 0.1
print(noise:dtype(), noise:shape()[1])   --> float64  4]],
    group = "Random",
    see = { "mg.randn", "mg.rand_like" },
  },

  ["mg.randint"] = {
    sig = { "mg.randint(low, high, {d1, ...} [, dtype])", "mg.randint(n, {d1, ...} [, dtype])" },
    doc = [[A new tensor of the shape given as a list, with integers drawn uniformly from low to high, both included, as math.random(low, high) does; mg.randint(n, shape) draws from 1 to n. Unlike PyTorch's randint, high is inclusive. The dtype is int64 unless "float32" or "float64" is given; low > high is an error.]],
    example = [[
local labels = mg.randint(10, {8})   -- class ids 1..10
print(labels:dtype(), labels:min():item() >= 1, labels:max():item() <= 10)   --> int64  true  true
local dice = mg.randint(1, 6, {2, 3})]],
    group = "Random",
    see = { "mg.randperm", "mg.rand" },
  },

  ["mg.randperm"] = {
    sig = "mg.randperm(n)",
    doc = [[A random permutation of the integers 1..n as a 1-D int64 tensor (1-based, unlike PyTorch's 0..n-1), ready to use as indices, e.g. with index_select to shuffle rows. n = 0 gives an empty tensor; a negative n is an error.]],
    example = [[
local p = mg.randperm(5)
print(p:numel(), p:sum():item())   --> 5  15
local shuffled = mg.arange(10):reshape(5, 2):index_select(1, p)]],
    group = "Random",
    see = { "mg.randint", "mg.index_select" },
  },

  ["mg.uniform_"] = {
    sig = { "mg.uniform_(t [, low [, high]])", "t:uniform_([low [, high]])" },
    doc = [[Fills t in place with values drawn uniformly from [low, high) (default 0 and 1) and returns t. t must be float32 or float64, and a leaf that requires grad is refused unless inside mg.no_grad (as nn.init does).]],
    example = [[
local w = mg.empty(3, 4):uniform_(-0.1, 0.1)
print(w:abs():max():item() <= 0.1)   --> true]],
    group = "Random",
    see = { "mg.normal_", "mg.rand", "mg.no_grad" },
  },

  ["mg.normal_"] = {
    sig = { "mg.normal_(t [, mean [, std]])", "t:normal_([mean [, std]])" },
    doc = [[Fills t in place with values drawn from a normal distribution of the given mean (default 0) and standard deviation (default 1) and returns t. t must be float32 or float64, and a leaf that requires grad is refused unless inside mg.no_grad.]],
    example = [[
local w = mg.zeros(1000, "float64"):normal_(5, 0.01)
print(math.abs(w:mean():item() - 5) < 0.01)   --> true]],
    group = "Random",
    see = { "mg.uniform_", "mg.randn", "mg.no_grad" },
  },

  -------------------------------------------------------------------------
  -- Shape and views

  ["mg.shape"] = {
    sig = { "mg.shape(t)", "t:shape()" },
    doc = [[t's sizes as a new Lua list, {} for a 0-d tensor (PyTorch's t.shape). Changing the list does not change t.]],
    example = [[
local s = mg.zeros(2, 3, 4):shape()
print(#s, table.concat(s, "x"))   --> 3  2x3x4]],
    group = "Shape and views",
    see = { "mg.size", "mg.dim", "mg.numel" },
  },

  ["mg.size"] = {
    sig = { "mg.size(t [, dim])", "t:size([dim])" },
    doc = [[The size of dimension dim (1-based, negative from the end) as an integer, or with no dim the whole shape as a list, like t:shape(). A dim out of range, or any dim of a 0-d tensor, is an error.]],
    example = [[
local x = mg.zeros(2, 3, 4)
print(x:size(1), x:size(-1), #x:size())   --> 2  4  3]],
    group = "Shape and views",
    see = { "mg.shape", "mg.dim" },
  },

  ["mg.dim"] = {
    sig = { "mg.dim(t)", "t:dim()" },
    doc = [[The number of dimensions of t (0 for a tensor made from a single number). t:ndim() is the same.]],
    example = [[
print(mg.zeros(2, 3):dim(), mg.tensor(5):dim())   --> 2  0]],
    group = "Shape and views",
    see = { "mg.ndim", "mg.shape", "mg.numel" },
  },

  ["mg.ndim"] = {
    sig = { "mg.ndim(t)", "t:ndim()" },
    doc = [[The number of dimensions of t; the same function as t:dim() (PyTorch's t.ndim is a property, here it is a method).]],
    example = [[
print(mg.zeros(2, 3, 4):ndim())   --> 3]],
    group = "Shape and views",
    see = { "mg.dim", "mg.shape" },
  },

  ["mg.numel"] = {
    sig = { "mg.numel(t)", "t:numel()" },
    doc = [[The number of elements of t: the product of its sizes (1 for a 0-d tensor, 0 when any size is 0).]],
    example = [[
print(mg.zeros(2, 3, 4):numel(), mg.tensor(7):numel())   --> 24  1
print(mg.zeros(0, 5):numel())                            --> 0]],
    group = "Shape and views",
    see = { "mg.shape", "mg.dim" },
  },

  ["mg.stride"] = {
    sig = { "mg.stride(t [, dim])", "t:stride([dim])" },
    doc = [[How many elements apart in storage consecutive positions of each dim are: a list of all strides, or the stride of dim (1-based, negative from the end). A contiguous [2, 3] tensor has strides {3, 1}; its transpose {1, 3}; an expanded dim 0.]],
    example = [[
local m = mg.zeros(2, 3)
print(table.concat(m:stride(), ","), table.concat(m:t():stride(), ","))   --> 3,1  1,3
print(m:stride(1), m:expand(4, 2, 3):stride(1))                          --> 3  0]],
    group = "Shape and views",
    see = { "mg.is_contiguous", "mg.storage_offset" },
  },

  ["mg.storage_offset"] = {
    sig = { "mg.storage_offset(t)", "t:storage_offset()" },
    doc = [[The position in its storage of t's first element, 1-based: 1 for a tensor that starts its storage, more for a view into the middle of another tensor (PyTorch counts from 0, so its value is one less).]],
    example = [[
local m = mg.arange(6):reshape(2, 3)
print(m:storage_offset(), m[2]:storage_offset())   --> 1  4
print(m:narrow(2, 3, 1):storage_offset())          --> 3]],
    group = "Shape and views",
    see = { "mg.stride", "mg.shares_storage" },
  },

  ["mg.is_contiguous"] = {
    sig = { "mg.is_contiguous(t [, format])", "t:is_contiguous([format])" },
    doc = [[true when t's elements lie in storage in row-major order with no gaps. format "channels_last" asks instead whether a 4-D [N, C, H, W] tensor is laid out N, H, W, C (false for other ranks); "contiguous_format" is the default. Any other format is an error.]],
    example = [[
local m = mg.zeros(2, 3)
print(m:is_contiguous(), m:t():is_contiguous())   --> true  false
local x = mg.zeros(1, 3, 2, 2):contiguous("channels_last")
print(x:is_contiguous("channels_last"))            --> true]],
    group = "Shape and views",
    see = { "mg.contiguous", "mg.stride" },
  },

  ["mg.contiguous"] = {
    sig = { "mg.contiguous(t [, format])", "t:contiguous([format])" },
    doc = [[t itself when it is already laid out row-major, otherwise a contiguous copy (which passes gradients back to t). With format "channels_last" a 4-D [N, C, H, W] tensor is copied into N, H, W, C memory order while keeping its [N, C, H, W] shape, as PyTorch's memory_format=torch.channels_last; a tensor of another rank is then an error.]],
    example = [[
local m = mg.arange(6):reshape(2, 3):t()
local c = m:contiguous()
print(m:is_contiguous(), c:is_contiguous(), c:contiguous() == c)   --> false  true  true]],
    group = "Shape and views",
    see = { "mg.is_contiguous", "mg.clone", "mg.view" },
  },

  ["mg.shares_storage"] = {
    sig = { "mg.shares_storage(a, b)", "a:shares_storage(b)" },
    doc = [[true when a and b are views of the same storage, so that writing into one can change the other (a view, a detach, a reshape that did not copy). Both arguments must be tensors.]],
    example = [[
local m = mg.zeros(2, 3)
print(m:t():shares_storage(m), m:clone():shares_storage(m))   --> true  false]],
    group = "Shape and views",
    see = { "mg.clone", "mg.view", "mg.storage_offset" },
  },

  ["mg.reshape"] = {
    sig = { "mg.reshape(t, d1, d2, ...)", "t:reshape(d1, d2, ...)", "t:reshape({d1, d2, ...})" },
    doc = [[t with a new shape of the same number of elements; one size may be -1, inferred from the others. It is a view sharing t's storage when t's strides allow it, otherwise a contiguous copy; either way gradients flow back to t. A shape whose element count differs is an error.]],
    example = [[
local m = mg.arange(12):reshape(3, -1)
print(table.concat(m:shape(), "x"), m[{2, 1}])   --> 3x4  4
print(table.concat(m:t():reshape({12}):shape(), "x"))   --> 12]],
    group = "Shape and views",
    see = { "mg.view", "mg.flatten", "mg.unsqueeze" },
  },

  ["mg.view"] = {
    sig = { "mg.view(t, d1, d2, ...)", "t:view(d1, d2, ...)", "t:view({d1, d2, ...})" },
    doc = [[t seen with a new shape, always sharing its storage (one size may be -1). Unlike reshape it never copies: when t's strides cannot express the new shape (a transpose made flat, for one) it raises, suggesting reshape or contiguous.]],
    example = [[
local m = mg.arange(6)
local v = m:view(2, 3)
v[{1, 1}] = 100
print(m[1], v:shares_storage(m))   --> 100  true
print(pcall(mg.view, v:t(), 6))    -- false, and why]],
    group = "Shape and views",
    see = { "mg.reshape", "mg.contiguous" },
  },

  ["mg.flatten"] = {
    sig = { "mg.flatten(t [, start [, stop]])", "t:flatten([start [, stop]])" },
    doc = [[t with dims start through stop (1-based, both included; defaults 1 and -1, so everything) merged into one. A view when the strides allow, else a copy, as reshape. A 0-d tensor becomes a 1-element 1-D tensor; start after stop is an error.]],
    example = [[
local x = mg.zeros(2, 3, 4)
print(table.concat(x:flatten():shape(), "x"))       --> 24
print(table.concat(x:flatten(2):shape(), "x"))      --> 2x12
print(table.concat(x:flatten(1, 2):shape(), "x"))   --> 6x4]],
    group = "Shape and views",
    see = { "mg.reshape", "mg.view" },
  },

  ["mg.transpose"] = {
    sig = { "mg.transpose(t, dim1, dim2)", "t:transpose(dim1, dim2)" },
    doc = [[A view of t with dims dim1 and dim2 swapped (1-based, negative from the end); no data moves, so the result is usually not contiguous. For a matrix t:t() is shorter.]],
    example = [[
local x = mg.zeros(2, 3, 4)
print(table.concat(x:transpose(1, 3):shape(), "x"))     --> 4x3x2
print(table.concat(x:transpose(-1, -2):shape(), "x"))   --> 2x4x3]],
    group = "Shape and views",
    see = { "mg.t", "mg.permute", "mg.contiguous" },
  },

  ["mg.t"] = {
    sig = { "mg.t(t)", "t:t()" },
    doc = [[The transpose of a matrix, as a view; a 1-D or 0-d tensor comes back unchanged (as a new view). A tensor of more than 2 dims is an error: use transpose(dim1, dim2).]],
    example = [[
local m = mg.tensor({{1, 2, 3}, {4, 5, 6}})
print(table.concat(m:t():shape(), "x"), m:t()[{3, 1}])   --> 3x2  3.0]],
    group = "Shape and views",
    see = { "mg.transpose", "mg.permute" },
  },

  ["mg.permute"] = {
    sig = { "mg.permute(t, d1, d2, ...)", "t:permute(d1, d2, ...)", "t:permute({d1, d2, ...})" },
    doc = [[A view of t with its dims reordered: dim k of the result is dim dk of t (1-based, negative allowed). Every dim must be named exactly once.]],
    example = [[
local img = mg.zeros(2, 3, 32, 32)          -- N, C, H, W
print(table.concat(img:permute(1, 3, 4, 2):shape(), "x"))   --> 2x32x32x3]],
    group = "Shape and views",
    see = { "mg.transpose", "mg.contiguous" },
  },

  ["mg.narrow"] = {
    sig = { "mg.narrow(t, dim, start, length)", "t:narrow(dim, start, length)" },
    doc = [[A view of length consecutive positions of t along dim, from position start (1-based; negative counts from the end, -1 being the last). The window must fit in the dim. Writes through the view change t, and gradients flow back into the window.]],
    example = [[
local m = mg.arange(12):reshape(3, 4)
print(table.concat(m:narrow(2, 2, 2)[1]:totable(), " "))    --> 1 2
print(table.concat(m:narrow(1, -1, 1)[1]:totable(), " "))   --> 8 9 10 11]],
    group = "Shape and views",
    see = { "mg.select", "mg.split", "mg.index_select" },
  },

  ["mg.select"] = {
    sig = { "mg.select(t, dim, index)", "t:select(dim, index)" },
    doc = [[A view of t at position index along dim (1-based, negative from the end), with that dim removed: a row of a matrix is t:select(1, i), a column t:select(2, j). t[i] is t:select(1, i). An index of 0 or past the size is an error.]],
    example = [[
local m = mg.arange(6):reshape(2, 3)
print(table.concat(m:select(2, -1):totable(), " "))   --> 2 5
print(m:select(1, 2):dim())                           --> 1]],
    group = "Shape and views",
    see = { "mg.narrow", "mg.unbind", "mg.index_select" },
  },

  ["mg.squeeze"] = {
    sig = { "mg.squeeze(t [, dim])", "t:squeeze([dim])" },
    doc = [[A view of t without its size-1 dims, or with only dim removed when dim is given and has size 1 (a dim of another size leaves t's shape as it is, as in PyTorch).]],
    example = [[
local x = mg.zeros(1, 3, 1)
print(table.concat(x:squeeze():shape(), "x"))    --> 3
print(table.concat(x:squeeze(1):shape(), "x"))   --> 3x1
print(table.concat(x:squeeze(2):shape(), "x"))   --> 1x3x1]],
    group = "Shape and views",
    see = { "mg.unsqueeze", "mg.reshape" },
  },

  ["mg.unsqueeze"] = {
    sig = { "mg.unsqueeze(t, dim)", "t:unsqueeze(dim)" },
    doc = [[A view of t with a new size-1 dim inserted at position dim, which may be 1..ndim + 1 (or -1 for a new last dim). Useful to make shapes broadcast: a [3] vector becomes a column with unsqueeze(2).]],
    example = [[
local v = mg.tensor({1, 2, 3})
print(table.concat(v:unsqueeze(1):shape(), "x"))    --> 1x3
print(table.concat(v:unsqueeze(-1):shape(), "x"))   --> 3x1]],
    group = "Shape and views",
    see = { "mg.squeeze", "mg.expand" },
  },

  ["mg.expand"] = {
    sig = { "mg.expand(t, d1, d2, ...)", "t:expand(d1, ...)", "t:expand({d1, ...})", "t:expand(other)" },
    doc = [[A view of t repeated along its size-1 dims to the given shape (or other's shape) without copying: the repeated elements share memory (stride 0). -1 keeps a size, and new leading dims may be added. Expanding a dim whose size is not 1 is an error, and in-place writes into an expanded tensor are refused; clone it first for a writable copy.]],
    example = [[
local col = mg.tensor({{1}, {2}})
local e = col:expand(2, 3)
print(table.concat(e:shape(), "x"), e[{2, 3}], e:stride(2))   --> 2x3  2.0  0]],
    group = "Shape and views",
    see = { "mg.unsqueeze", "mg.clone" },
  },

  ["mg.split"] = {
    sig = { "mg.split(t, size [, dim])", "t:split(size [, dim])", "t:split({s1, s2, ...} [, dim])" },
    doc = [[Cuts t along dim (default 1) into a Lua list of views: pieces of size positions (the last one shorter when size does not divide the dim), or with a list, pieces of exactly those sizes, which must add up to the dim's size. Each piece shares t's storage, and gradients flow back into its window. The inverse of mg.cat.]],
    example = [[
local m = mg.arange(10):reshape(5, 2)
local parts = m:split(2)
print(#parts, parts[3]:shape()[1])                   --> 3  1
local a, b = table.unpack(m:split({1, 4}))
print(b:shape()[1], b:shares_storage(m))            --> 4  true]],
    group = "Shape and views",
    see = { "mg.chunk", "mg.unbind", "mg.narrow", "mg.cat" },
  },

  ["mg.chunk"] = {
    sig = { "mg.chunk(t, chunks [, dim])", "t:chunk(chunks [, dim])" },
    doc = [[Cuts t along dim (default 1) into pieces of ceil(size / chunks) positions, as a Lua list of views; as in PyTorch there may be fewer than chunks pieces (a dim of 6 in 4 chunks gives three of 2). chunks must be a positive integer.]],
    example = [[
local pieces = mg.arange(6):chunk(4)
print(#pieces, pieces[1]:numel())   --> 3  2]],
    group = "Shape and views",
    see = { "mg.split", "mg.unbind" },
  },

  ["mg.unbind"] = {
    sig = { "mg.unbind(t [, dim])", "t:unbind([dim])" },
    doc = [[The slices of t along dim (default 1) as a Lua list of views, each with that dim removed: t:select(dim, 1), t:select(dim, 2), ... The inverse of mg.stack.]],
    example = [[
local m = mg.arange(6):reshape(2, 3)
local cols = m:unbind(2)
print(#cols, table.concat(cols[1]:totable(), " "))   --> 3  0 3]],
    group = "Shape and views",
    see = { "mg.select", "mg.split", "mg.stack" },
  },

  ["mg.cat"] = {
    sig = "mg.cat({t1, t2, ...} [, dim])",
    doc = [[Joins a non-empty list of tensors along an existing dim (default 1) into a new tensor (a copy). They must have the same number of dims and the same sizes except along dim; dtypes promote as in a + b. Differentiable in every input.]],
    example = [[
local a, b = mg.ones(2, 3), mg.zeros(1, 3)
print(table.concat(mg.cat({a, b}):shape(), "x"))                         --> 3x3
print(table.concat(mg.cat({a, mg.zeros(2, 1)}, -1):shape(), "x"))         --> 2x4]],
    group = "Shape and views",
    see = { "mg.stack", "mg.split" },
  },

  ["mg.stack"] = {
    sig = "mg.stack({t1, t2, ...} [, dim])",
    doc = [[Joins a non-empty list of equally shaped tensors along a new dim inserted at position dim (default 1; it may be ndim + 1 to add a last dim), into a new tensor. Dtypes promote as in mg.cat; differentiable.]],
    example = [[
local a, b = mg.ones(2, 3), mg.zeros(2, 3)
print(table.concat(mg.stack({a, b}):shape(), "x"))      --> 2x2x3
print(table.concat(mg.stack({a, b}, 3):shape(), "x"))   --> 2x3x2]],
    group = "Shape and views",
    see = { "mg.cat", "mg.unbind" },
  },

  -------------------------------------------------------------------------
  -- Indexing

  ["mg.get"] = {
    sig = { "mg.get(t, i1, i2, ...)", "t:get(i1, i2, ...)", "t:get({i1, i2, ...})" },
    doc = [[The element of t at the given positions, one per dim (1-based, negative from the end), as a Lua value: an integer for integer dtypes, a boolean for bool, a float otherwise. t[{i, j}] does the same; a wrong number of indices or one out of range is an error.]],
    example = [[
local m = mg.arange(6):reshape(2, 3)
print(m:get(2, 3), m:get({1, -1}), m[{2, 1}])   --> 5  2  3]],
    group = "Indexing",
    see = { "mg.set", "mg.item", "mg.Tensor" },
  },

  ["mg.set"] = {
    sig = { "mg.set(t, i1, i2, ..., value)", "t:set(i1, i2, ..., value)", "t:set({i1, i2, ...}, value)" },
    doc = [[Writes value (a number or boolean) into the element of t at the given positions, one per dim, and returns t. The value is converted to t's dtype (a float into int64 truncates). t[{i, j}] = value does the same; a leaf that requires grad is refused outside mg.no_grad.]],
    example = [[
local m = mg.zeros(2, 2)
m:set(1, 2, 5):set({2, 1}, 7)
print(m[{1, 2}], m[{2, 1}])   --> 5.0  7.0]],
    group = "Indexing",
    see = { "mg.get", "mg.fill_", "mg.Tensor" },
  },

  ["mg.item"] = {
    sig = { "mg.item(t)", "t:item()" },
    doc = [[The single value of a one-element tensor (of any shape, such as a loss) as a Lua number: an integer for integer dtypes, a boolean for bool, a float otherwise. A tensor with more or fewer elements is an error.]],
    example = [[
local loss = mg.tensor({1, 2, 3}):sum()
print(loss:item(), mg.tensor({{5}}, "int64"):item())   --> 6.0  5]],
    group = "Indexing",
    see = { "mg.totable", "mg.get" },
  },

  ["mg.totable"] = {
    sig = { "mg.totable(t)", "t:totable()" },
    doc = [[t's values as nested Lua tables, one level per dim in row-major order (a number for a 0-d tensor); integers for integer dtypes, booleans for bool. The inverse of mg.tensor. A tensor of more than about 2^31 elements is an error.]],
    example = [[
local rows = mg.tensor({{1, 2}, {3, 4}}, "int64"):totable()
print(#rows, rows[2][1])   --> 2  3]],
    group = "Indexing",
    see = { "mg.tensor", "mg.item" },
  },

  ["mg.index_select"] = {
    sig = { "mg.index_select(t, dim, ids)", "t:index_select(dim, ids)" },
    doc = [[A new tensor of the slices of t along dim at the positions ids, in that order (repeats allowed). ids is a 1-D int64 tensor or a Lua list of integers, 1-based (negative positions are out of range here, unlike in select); the result has #ids positions along dim. Works on every dtype, uint8 images included, and is differentiable in t.]],
    example = [[
local m = mg.arange(6):reshape(3, 2)
print(table.concat(m:index_select(1, {3, 1}):flatten():totable(), " "))   --> 4 5 0 1
local cols = m:index_select(2, mg.tensor({2}, "int64"))]],
    group = "Indexing",
    see = { "mg.gather", "mg.select", "mg.randperm" },
  },

  ["mg.gather"] = {
    sig = { "mg.gather(t, dim, index)", "t:gather(dim, index)" },
    doc = [=[Picks values of t along dim at the positions in index, an int64 tensor of 1-based positions with as many dims as t: for dim 2 of a matrix, out[i][j] = t[i][index[i][j]]. The result has index's shape. Differentiable in t; picking each row's value for its label is t:gather(2, labels:unsqueeze(2)).]=],
    example = [[
local scores = mg.tensor({{0.1, 0.9}, {0.8, 0.2}})
local picked = scores:gather(2, mg.tensor({{2}, {1}}, "int64"))
print(picked[{1, 1}] > 0.89, picked[{2, 1}] > 0.79)   --> true  true]],
    group = "Indexing",
    see = { "mg.scatter", "mg.index_select" },
  },

  ["mg.scatter"] = {
    sig = { "mg.scatter(t, dim, index, src)", "t:scatter(dim, index, src)" },
    doc = [=[A copy of t in which the values of src are written at the positions in index along dim (index is an int64 tensor of 1-based positions, as for gather: for dim 2, out[i][index[i][j]] = src[i][j]). src is a tensor or a number written everywhere index points. t itself is left alone; differentiable in t and src. t:scatter_ does the same in place.]=],
    example = [[
local z = mg.zeros(2, 3)
local out = z:scatter(2, mg.tensor({{3}, {1}}, "int64"), 5)
print(out[{1, 3}], out[{2, 1}], z:sum():item())   --> 5.0  5.0  0.0]],
    group = "Indexing",
    see = { "mg.scatter_add", "mg.gather" },
  },

  ["mg.scatter_"] = { inplace = "mg.scatter" },

  ["mg.scatter_add"] = {
    sig = { "mg.scatter_add(t, dim, index, src)", "t:scatter_add(dim, index, src)" },
    doc = [[Like scatter, but adds src's values at the positions in index instead of writing them, so repeated positions accumulate: a histogram or a sum per class. Returns a new tensor; t:scatter_add_ adds in place. src is a tensor or a number.]],
    example = [[
local counts = mg.zeros(3):scatter_add(1, mg.tensor({1, 1, 3}, "int64"), 1)
print(table.concat(counts:totable(), " "))   --> 2.0 0.0 1.0]],
    group = "Indexing",
    see = { "mg.scatter", "mg.gather" },
  },

  ["mg.scatter_add_"] = { inplace = "mg.scatter_add" },

  ["mg.masked_fill"] = {
    sig = { "mg.masked_fill(t, mask, value)", "t:masked_fill(mask, value)" },
    doc = [[A copy of t with value (a number) wherever mask is nonzero. mask broadcasts to t's shape and may be of any dtype except float16 and bfloat16 (a bool mask, or a 0/1 mask from a comparison such as t:lt(0)). Differentiable in t, with zero gradient where the mask holds; t:masked_fill_ fills in place.]],
    example = [[
local x = mg.tensor({-1, 2, -3})
print(table.concat(x:masked_fill(x:lt(0), 0):totable(), " "))   --> 0.0 2.0 0.0]],
    group = "Indexing",
    see = { "mg.where", "mg.fill_" },
  },

  ["mg.masked_fill_"] = { inplace = "mg.masked_fill" },

  ["mg.fill_"] = {
    sig = { "mg.fill_(t, value)", "t:fill_(value)" },
    doc = [[Sets every element of t to value (a number, or a boolean as 1 or 0) and returns t. On a view it fills the window in the storage it shares; an expanded tensor, or a leaf that requires grad outside mg.no_grad, is refused.]],
    example = [[
local m = mg.zeros(2, 3)
m:select(1, 2):fill_(7)
print(m:sum():item())   --> 21.0]],
    group = "Indexing",
    see = { "mg.zero_", "mg.full", "mg.copy_" },
  },

  ["mg.zero_"] = {
    sig = { "mg.zero_(t)", "t:zero_()" },
    doc = [[Sets every element of t to zero and returns t; the same rules as fill_ apply (views fill their window, leaves that require grad are refused outside mg.no_grad).]],
    example = [[
local x = mg.ones(3)
print(x:zero_():sum():item())   --> 0.0]],
    group = "Indexing",
    see = { "mg.fill_", "mg.zeros" },
  },

  ["mg.copy_"] = {
    sig = { "mg.copy_(t, src)", "t:copy_(src)" },
    doc = [[Copies src's values into t and returns t: src broadcasts to t's shape and is converted to t's dtype (a float into an integer dtype truncates). Writes into t's existing storage, so through a view it fills a window of a larger tensor. A src that does not broadcast is an error.]],
    example = [[
local m = mg.zeros(2, 3)
m:copy_(mg.tensor({1, 2, 3}))          -- broadcast to both rows
print(m:sum():item())                   --> 12.0
print(mg.zeros(2, "int64"):copy_(mg.tensor({1.7, -2.2})):totable()[2])   --> -2]],
    group = "Indexing",
    see = { "mg.clone", "mg.fill_" },
  },

  -------------------------------------------------------------------------
  -- Autograd

  ["mg.backward"] = {
    sig = { "mg.backward(t [, grad] [, opts])", "t:backward([grad] [, opts])" },
    doc = [[Backpropagates from t through the ops recorded since its inputs were marked with requires_grad, adding d(t)/d(leaf) into each leaf's .grad (gradients accumulate: clear them between steps). grad is d(loss)/d(t) and may be left out only when t has one element (it is then 1). The graph's saved tensors are freed as backward uses them, so a second backward through the same graph raises unless the first passed retain_graph.]],
    opts = {
      { "retain_graph", "false", "keep the graph's saved tensors so backward can run through it again" },
    },
    example = [[
local x = mg.tensor({1, 2, 3}):requires_grad()
local y = (x * x):sum()
y:backward()
print(table.concat(x.grad:totable(), " "))   --> 2.0 4.0 6.0
x.grad = nil                                 -- clear before the next step
(x * 2):backward(mg.ones(3))]],
    group = "Autograd",
    see = { "mg.requires_grad", "mg.no_grad", "mg.detach", "mg.gradcheck" },
  },

  ["mg.requires_grad"] = {
    sig = { "mg.requires_grad(t [, flag])", "t:requires_grad([flag])" },
    doc = [[Marks the leaf t as requiring grad (flag defaults to true; false unmarks it) and returns t, so ops on it are recorded and backward fills t.grad. It is PyTorch's requires_grad_(); t:is_requires_grad() reads the flag. Only float32 and float64 tensors can require grad, and only a leaf's flag can change: a computed tensor raises (detach it for a new leaf). flag must be a boolean.]],
    example = [[
local w = mg.randn(3, 2):requires_grad()
print(w:is_requires_grad(), (w * 2):is_requires_grad())   --> true  true
print(mg.zeros(2):requires_grad(false):is_requires_grad()) --> false]],
    group = "Autograd",
    see = { "mg.is_requires_grad", "mg.backward", "mg.detach" },
  },

  ["mg.is_requires_grad"] = {
    sig = { "mg.is_requires_grad(t)", "t:is_requires_grad()" },
    doc = [[true when t takes part in autograd: a leaf marked with requires_grad, or a result computed from one while grad mode was on. PyTorch's t.requires_grad property.]],
    example = [[
local x = mg.ones(2):requires_grad()
local y = mg.no_grad(function() return x * 2 end)
print(x:is_requires_grad(), y:is_requires_grad())   --> true  false]],
    group = "Autograd",
    see = { "mg.requires_grad", "mg.is_leaf" },
  },

  ["mg.is_leaf"] = {
    sig = { "mg.is_leaf(t)", "t:is_leaf()" },
    doc = [[true when t was not computed by a recorded op: every tensor made directly (requiring grad or not), every result of ops whose inputs do not require grad or that ran under mg.no_grad, and every detached tensor. Only leaves get a .grad from backward and can change their requires_grad flag.]],
    example = [[
local x = mg.ones(2):requires_grad()
print(x:is_leaf(), (x * 2):is_leaf(), (x * 2):detach():is_leaf())   --> true  false  true]],
    group = "Autograd",
    see = { "mg.grad_fn", "mg.requires_grad" },
  },

  ["mg.grad_fn"] = {
    sig = { "mg.grad_fn(t)", "t:grad_fn()" },
    doc = [[The name of the op that computed t and will carry its gradient back (such as "mul" or "sum"), or nil for a leaf. Unlike PyTorch's grad_fn it is a string, for inspecting a graph, not an object to call.]],
    example = [[
local x = mg.ones(2):requires_grad()
print((x * 3):sum():grad_fn(), x:grad_fn())   --> sum  nil]],
    group = "Autograd",
    see = { "mg.is_leaf", "mg.backward" },
  },

  ["mg.detach"] = {
    sig = { "mg.detach(t)", "t:detach()" },
    doc = [[A new tensor sharing t's storage but outside the graph: a leaf that does not require grad, so nothing computed from it is recorded. Writing into it changes t; use t:detach():clone() for an independent copy.]],
    example = [[
local x = mg.ones(2):requires_grad()
local d = (x * 2):detach()
print(d:is_requires_grad(), d:is_leaf(), x:detach():shares_storage(x))   --> false  true  true]],
    group = "Autograd",
    see = { "mg.clone", "mg.no_grad" },
  },

  ["mg.no_grad"] = {
    sig = "mg.no_grad(fn, ...)",
    doc = [[Calls fn(...) with grad mode off and returns its results: nothing computed inside is recorded, and in-place updates of leaves that require grad (optimizer steps, initialization) are allowed. The previous mode comes back when fn returns or raises. A function, not a context manager as in PyTorch.]],
    example = [[
local w = mg.ones(2):requires_grad()
local y, n = mg.no_grad(function(k) return w * k, 5 end, 3)
print(y:is_requires_grad(), n)   --> false  5
mg.no_grad(function() w:sub_(0.1) end)]],
    group = "Autograd",
    see = { "mg.enable_grad", "mg.set_grad_enabled", "mg.is_grad_enabled" },
  },

  ["mg.enable_grad"] = {
    sig = "mg.enable_grad(fn, ...)",
    doc = [[Calls fn(...) with grad mode on and returns its results, restoring the previous mode afterwards even when fn raises: the way to record a piece of computation from inside mg.no_grad.]],
    example = [[
local x = mg.ones(2):requires_grad()
local r = mg.no_grad(function()
  return mg.enable_grad(function() return (x * 2):is_requires_grad() end)
end)
print(r)   --> true]],
    group = "Autograd",
    see = { "mg.no_grad", "mg.set_grad_enabled" },
  },

  ["mg.is_grad_enabled"] = {
    sig = "mg.is_grad_enabled()",
    doc = [[true when grad mode is on (the default), so ops on tensors that require grad are recorded; false inside mg.no_grad or after mg.set_grad_enabled(false).]],
    example = [[
print(mg.is_grad_enabled(), mg.no_grad(mg.is_grad_enabled))   --> true  false]],
    group = "Autograd",
    see = { "mg.set_grad_enabled", "mg.no_grad" },
  },

  ["mg.set_grad_enabled"] = {
    sig = "mg.set_grad_enabled(flag)",
    doc = [[Turns grad mode on or off for everything that follows and returns the previous mode (flag must be a boolean). Prefer mg.no_grad(fn), which restores the mode even on an error; with this one, put the old mode back yourself.]],
    example = [[
local was = mg.set_grad_enabled(false)
print(was, mg.is_grad_enabled())   --> true  false
mg.set_grad_enabled(was)]],
    group = "Autograd",
    see = { "mg.no_grad", "mg.is_grad_enabled" },
  },

  ["mg.gradcheck"] = {
    sig = "mg.gradcheck(fn, inputs [, opts])",
    doc = [[Checks the gradients autograd computes for fn against central finite differences and returns true when they agree. inputs is a tensor or a list of tensors passed to fn, which returns a tensor; every input that requires grad must be float64 and is checked element by element (keep them small). A mismatch raises a message naming the input, element, and both values, or with raise = false returns false and that message.]],
    opts = {
      { "eps", "1e-6", "step of the finite differences" },
      { "atol", "1e-5", "absolute tolerance" },
      { "rtol", "1e-3", "tolerance relative to the numerical gradient" },
      { "raise", "true", "false returns false and the message instead of raising" },
    },
    example = [[
local x = mg.randn(3, "float64"):requires_grad()
print(mg.gradcheck(function(t) return t:tanh() * 2 end, x))   --> true
local w = mg.randn(2, "float64")
local a = mg.randn(2, "float64"):requires_grad()
print(mg.gradcheck(function(p, q) return p * q end, {a, w}, {raise = false}))   --> true]],
    group = "Autograd",
    see = { "mg.backward" },
  },

  -------------------------------------------------------------------------
  -- Dtype

  ["mg.dtype"] = {
    sig = { "mg.dtype(t)", "t:dtype()" },
    doc = [[t's dtype as a string. Ops compute in "float32", "float64" and "int64"; "uint8", "float16", "bfloat16", "int32", "int16", "int8" and "bool" are storage dtypes: they are made, converted, viewed, indexed, joined, printed and saved, but an op that computes refuses them and says how to convert.]],
    example = [[
print(mg.zeros(1):dtype(), mg.arange(3):dtype(), mg.tensor({true}):dtype())   --> float32  int64  bool]],
    group = "Dtype",
    see = { "mg.to", "mg.float", "mg.long" },
  },

  ["mg.to"] = {
    sig = { "mg.to(t, dtype)", "t:to(dtype)", "t:to({dtype = dtype})" },
    doc = [[t converted to dtype: t itself when it already has that dtype, else a new tensor. Conversions follow PyTorch on x86: floats truncate toward zero into integer dtypes, out-of-range values wrap (300 into uint8 is 44), bool is x ~= 0, float16 and bfloat16 round to nearest even. A conversion between float32 and float64 passes gradients back to t; one to an integer or storage dtype leaves the graph. Without a dtype it raises.]],
    example = [[
print(table.concat(mg.tensor({1.7, -1.7}):to("int64"):totable(), " "))   --> 1 -1
print(table.concat(mg.tensor({300, -1}):to("uint8"):totable(), " "))    --> 44 255
print(mg.arange(3):to{dtype = "float64"}:dtype())                      --> float64]],
    group = "Dtype",
    see = { "mg.type", "mg.dtype", "mg.float" },
  },

  ["mg.type"] = {
    sig = { "mg.type(t, dtype)", "t:type(dtype)" },
    doc = [[The same function as t:to(dtype). Unlike PyTorch's t.type(), calling it without a dtype does not return the type's name: it raises (use t:dtype() to ask).]],
    example = [[
print(mg.zeros(2):type("int32"):dtype())   --> int32]],
    group = "Dtype",
    see = { "mg.to", "mg.dtype" },
  },

  ["mg.float"] = {
    sig = { "mg.float(t)", "t:float()" },
    doc = [[t as float32 (t itself when it already is), as t:to("float32"). The usual first step for uint8 pixels, int64 labels or stored dtypes before computing.]],
    example = [[
local px = mg.tensor({0, 128, 255}, "uint8")
print((px:float() / 255):dtype())   --> float32]],
    group = "Dtype",
    see = { "mg.to", "mg.double", "mg.long" },
  },

  ["mg.double"] = {
    sig = { "mg.double(t)", "t:double()" },
    doc = [[t as float64 (t itself when it already is), as t:to("float64"). Gradients pass back through the conversion from float32.]],
    example = [[
print(mg.ones(2):double():dtype())   --> float64]],
    group = "Dtype",
    see = { "mg.to", "mg.float" },
  },

  ["mg.long"] = {
    sig = { "mg.long(t)", "t:long()" },
    doc = [[t as int64 (t itself when it already is), as t:to("int64"); floats truncate toward zero. int64 is the dtype of indices and class labels.]],
    example = [[
print(table.concat(mg.tensor({2.9, -2.9}):long():totable(), " "))   --> 2 -2]],
    group = "Dtype",
    see = { "mg.to", "mg.int", "mg.float" },
  },

  ["mg.int"] = {
    sig = { "mg.int(t)", "t:int()" },
    doc = [[t as int32, a storage dtype (for files and interchange; convert with :long() or :float() before computing). Floats truncate toward zero and out-of-range values wrap.]],
    example = [[
print(mg.tensor({1.5}):int():dtype())   --> int32]],
    group = "Dtype",
    see = { "mg.to", "mg.long", "mg.short" },
  },

  ["mg.short"] = {
    sig = { "mg.short(t)", "t:short()" },
    doc = [[t as int16, a storage dtype: convert with :long() or :float() before computing. Floats truncate toward zero and out-of-range values wrap.]],
    example = [[
print(mg.tensor({3}):short():dtype())   --> int16]],
    group = "Dtype",
    see = { "mg.to", "mg.int", "mg.char" },
  },

  ["mg.char"] = {
    sig = { "mg.char(t)", "t:char()" },
    doc = [[t as int8 (signed bytes, PyTorch's char), a storage dtype: convert with :long() or :float() before computing. Floats truncate toward zero and out-of-range values wrap.]],
    example = [[
print(mg.tensor({-1.5}):char():totable()[1])   --> -1]],
    group = "Dtype",
    see = { "mg.to", "mg.byte" },
  },

  ["mg.byte"] = {
    sig = { "mg.byte(t)", "t:byte()" },
    doc = [[t as uint8 (PyTorch's byte), the dtype of pixels: a quarter of float32's memory, stored, indexed, joined and saved, but not computed on (convert with :float() first). Floats truncate and out-of-range values wrap, as in PyTorch (300 becomes 44, -1 becomes 255).]],
    example = [[
print(table.concat(mg.tensor({300, -1, 7.9}):byte():totable(), " "))   --> 44 255 7]],
    group = "Dtype",
    see = { "mg.to", "mg.float", "mg.char" },
  },

  ["mg.half"] = {
    sig = { "mg.half(t)", "t:half()" },
    doc = [[t as float16, a storage dtype (half the memory of float32, for files and interchange; convert with :float() before computing). Values round to nearest even, and those beyond float16's range (largest finite value 65504) become inf.]],
    example = [[
local h = mg.tensor({0.1, 70000}):half()
print(h:dtype(), h:float()[2])   --> float16  inf]],
    group = "Dtype",
    see = { "mg.to", "mg.bfloat16", "mg.float" },
  },

  ["mg.bfloat16"] = {
    sig = { "mg.bfloat16(t)", "t:bfloat16()" },
    doc = [[t as bfloat16, a storage dtype with float32's range and 8 bits of precision (convert with :float() before computing). Values round to nearest even.]],
    example = [[
local b = mg.tensor({1.5, 1/3}):bfloat16()
print(b:dtype(), b:float()[1])   --> bfloat16  1.5]],
    group = "Dtype",
    see = { "mg.to", "mg.half", "mg.float" },
  },

  ["mg.bool"] = {
    sig = { "mg.bool(t)", "t:bool()" },
    doc = [[t as bool: true where t is nonzero. A storage dtype whose elements read back as Lua booleans; masks of this dtype work with mg.where and masked_fill, and :float() or :long() turns it into numbers for computing.]],
    example = [[
local b = mg.tensor({0, 2, -1}):bool()
print(b[1], b[2], b:float():sum():item())   --> false  true  2.0]],
    group = "Dtype",
    see = { "mg.to", "mg.masked_fill" },
  },

  -------------------------------------------------------------------------
  -- Files

  ["mg.save"] = {
    sig = "mg.save(path, {name = tensor, ...} [, metadata])",
    doc = [[Writes a table of named tensors to a safetensors file, which PyTorch and other safetensors readers load. Every dtype is saved byte for byte, views included; metadata is an optional table of string keys and string values stored in the header. The file is written atomically: a failed or interrupted save leaves the previous file intact. A non-tensor value, a non-string name or a bad path raises.]],
    example = [[
local path = os.tmpname()
mg.save(path, {w = mg.ones(2, 2), step = mg.tensor({3}, "int64")}, {note = "demo"})
local t = mg.load(path)
print(t.w:sum():item(), t.step:dtype())   --> 4.0  int64
os.remove(path)]],
    group = "Files",
    see = { "mg.load", "checkpoint" },
  },

  ["mg.load"] = {
    sig = "mg.load(path [, {metadata = true}])",
    doc = [[Reads a safetensors file and returns its tensors as a table of name = tensor, each in its stored dtype (F32, F64, I64, I32, I16, I8, U8, BOOL, F16, BF16). With {metadata = true} it also returns the header's metadata as a table of strings ({} when there is none). A missing, truncated or malformed file raises a message naming the path; net:load_state_dict(mg.load(path)) restores a model.]],
    opts = {
      { "metadata", "false", "also return the file's metadata table as a second result" },
    },
    example = [[
local path = os.tmpname()
mg.save(path, {x = mg.arange(3)}, {epoch = "7"})
local tensors, meta = mg.load(path, {metadata = true})
print(tensors.x:totable()[3], meta.epoch)   --> 2  7
os.remove(path)]],
    group = "Files",
    see = { "mg.save", "checkpoint" },
  },

  -------------------------------------------------------------------------
  -- Threads and memory

  ["mg.set_num_threads"] = {
    sig = "mg.set_num_threads(n)",
    doc = [[Sets how many threads moongrad's loops and OpenBLAS's products use in this Lua state, from 1 to 1024 (the default is the number of processors). Small ops run on one thread whatever the setting. Results are reproducible for a given count; mg.use_deterministic_algorithms(true) makes them the same for any count.]],
    example = [[
local before = mg.get_num_threads()
mg.set_num_threads(1)
print(mg.get_num_threads())   --> 1
mg.set_num_threads(before)]],
    group = "Threads and memory",
    see = { "mg.get_num_threads", "mg.use_deterministic_algorithms" },
  },

  ["mg.get_num_threads"] = {
    sig = "mg.get_num_threads()",
    doc = [[The number of threads ops may use, as set by mg.set_num_threads (by default the number of processors).]],
    example = [[
print(mg.get_num_threads() >= 1)   --> true]],
    group = "Threads and memory",
    see = { "mg.set_num_threads" },
  },

  ["mg.use_deterministic_algorithms"] = {
    sig = "mg.use_deterministic_algorithms(on)",
    doc = [[With on true, every op gives the same bits whatever the thread count: matrix products go in fixed blocks to single-threaded OpenBLAS calls and LAPACK runs on one thread, at some cost in speed. With false (the default) results are reproducible for a given thread count only. The argument is required; any value counts by Lua truth.]],
    example = [[
mg.use_deterministic_algorithms(true)
print(mg.are_deterministic_algorithms_enabled())   --> true
mg.use_deterministic_algorithms(false)]],
    group = "Threads and memory",
    see = { "mg.are_deterministic_algorithms_enabled", "mg.set_num_threads" },
  },

  ["mg.are_deterministic_algorithms_enabled"] = {
    sig = "mg.are_deterministic_algorithms_enabled()",
    doc = [[true when mg.use_deterministic_algorithms(true) is in effect, so results do not depend on the thread count.]],
    example = [[
print(mg.are_deterministic_algorithms_enabled())   --> false]],
    group = "Threads and memory",
    see = { "mg.use_deterministic_algorithms" },
  },

  ["mg.blas_core"] = {
    sig = "local core, better = mg.blas_core()",
    doc = [[The name of the kernel set OpenBLAS picked for this CPU (such as "Haswell" or "SkylakeX"; "unknown" when it cannot say), and a second value naming a better set when OpenBLAS fell back to generic kernels on a CPU it does not know (nil otherwise). Set OPENBLAS_CORETYPE to that name before starting to get the fast kernels.]],
    example = [[
local core, better = mg.blas_core()
print(type(core), better == nil or type(better) == "string")   --> string  true]],
    group = "Threads and memory",
    see = { "mg.set_num_threads" },
  },

  ["mg.clock"] = {
    sig = "mg.clock()",
    doc = [[Seconds on a monotonic wall clock, as a float, for timing code: subtract two readings. Unlike os.clock, which adds up the CPU time of every thread, it measures elapsed time.]],
    example = [[
local t0 = mg.clock()
mg.randn(64, 64):matmul(mg.randn(64, 64))
print(mg.clock() - t0 >= 0)   --> true]],
    group = "Threads and memory",
    see = { "mg.memory" },
  },

  ["mg.memory"] = {
    sig = "mg.memory()",
    doc = [[A table of what Lua's collector cannot see, in bytes and counts:

  tensor_bytes  held by live tensors' storages
  header_bytes  tensor structs alive (views too)
  peak_bytes    highest tensor_bytes so far
  cached_bytes  freed buffers kept for reuse
  cache_limit   most bytes the cache keeps
  limit_bytes   the budget of set_memory_limit (0 = none)
  allocs        buffers handed out; cache_hits: of those, from the cache
  reclaims      allocations that collected garbage and retried
  lua_bytes     the Lua heap, for comparison

Dead tensors are freed when Lua collects them; moongrad tells the collector about tensor bytes, and an allocation that fails runs a full collection and retries before it raises.]],
    example = [[
collectgarbage()
local before = mg.memory().tensor_bytes
local t = mg.zeros(1000)                      -- 1000 float32
print(mg.memory().tensor_bytes - before)      --> 4000]],
    group = "Threads and memory",
    see = { "mg.set_memory_limit", "mg.set_cache_limit", "mg.empty_cache" },
  },

  ["mg.empty_cache"] = {
    sig = "mg.empty_cache()",
    doc = [[Gives the buffers kept in moongrad's cache of freed tensor memory back to the system, so the process's memory shrinks; live tensors are not touched. Call collectgarbage() first so that dead tensors reach the cache.]],
    example = [[
local t = mg.zeros(1000)
t = nil
collectgarbage()
mg.empty_cache()
print(mg.memory().cached_bytes)   --> 0]],
    group = "Threads and memory",
    see = { "mg.set_cache_limit", "mg.memory" },
  },

  ["mg.set_memory_limit"] = {
    sig = "mg.set_memory_limit([bytes])",
    doc = [[Sets a budget for tensor memory (storages and tensor structs) in this Lua state; 0 or nil removes it (the default). An allocation that would pass it first collects garbage, empties the cache and tries again; if it still does not fit it raises "not enough memory ..." naming the limit, so a runaway script fails cleanly instead of swapping. A negative value is an error.]],
    example = [[
mg.set_memory_limit(1000000)                  -- 1 MB
local ok = pcall(mg.zeros, 1000000)           -- 4 MB of float32
mg.set_memory_limit(0)                        -- no limit again
print(ok)   --> false]],
    group = "Threads and memory",
    see = { "mg.memory", "mg.set_cache_limit" },
  },

  ["mg.set_cache_limit"] = {
    sig = "mg.set_cache_limit(bytes)",
    doc = [[Sets how many bytes of freed tensor buffers moongrad keeps for reuse (default 1 GiB, 1 << 30); a buffer freed into a full cache goes back to the system, and lowering the limit below what is cached empties the cache. 0 disables the cache; a negative value is an error.]],
    example = [[
mg.set_cache_limit(64 << 20)
print(mg.memory().cache_limit)   --> 67108864
mg.set_cache_limit(1 << 30)]],
    group = "Threads and memory",
    see = { "mg.empty_cache", "mg.memory" },
  },

  -------------------------------------------------------------------------
  -- Notebook and help

  ["mg.display"] = {
    sig = "local h1, h2 = mg.display(v1, v2, ...)",
    doc = [[Shows each value in its richest form: in a Jupyter notebook an image tensor ([C, H, W] with 1, 3 or 4 channels, or a batch [N, C, H, W] as a grid) as a PNG, another tensor as an HTML table, a plot chart as SVG, anything else as text; in a script or the REPL it prints the text form. It returns one handle per value, whose h:update(v) redraws that output in place (a live progress view). A value whose metatable has __display (a function returning {[mime type] = text}) chooses its own forms.]],
    example = [[
local h = mg.display(mg.tensor({{1, 2}, {3, 4}}))
h:update(mg.zeros(2, 2))]],
    group = "Notebook and help",
    see = { "mg.help", "plot" },
  },

  ["mg.help"] = {
    sig = { "mg.help(x)", "help(x)" },
    doc = [[Prints the help for x: a function or class by value (help(F.conv2d), help(nn.LSTM), or an instance such as a tensor or a layer), a module (help(mg) lists its names by group), or a name as a string, exact ("F.conv2d"), by its last part ("conv2d") or a search of the names. The REPL and the notebook define it as the global help.]],
    example = [[
mg.help(mg.eye)
help "arange"]],
    group = "Notebook and help",
    see = { "mg" },
  },

  ["mg.version"] = {
    sig = "mg.version",
    doc = [[moongrad's version as a string, "major.minor.patch" (a field, not a function).]],
    example = [[
print(type(mg.version), mg.version:match("^%d+%.%d+%.%d+$") ~= nil)   --> string  true]],
    group = "Notebook and help",
    see = { "mg" },
  },
}
