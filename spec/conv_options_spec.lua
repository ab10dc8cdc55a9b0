-- The convolution options a PyTorch user reaches for (issue 20): F.pad in
-- every mode, F.conv2d's padding "same" and "valid", nn.Conv2d's
-- padding_mode, F.conv_transpose2d and nn.ConvTranspose2d. Values and
-- gradients against PyTorch 1.13 (spec/fixtures/gen_conv_options.py),
-- modules loading PyTorch's state dicts with strict checking; gradients
-- against finite differences (mg.gradcheck); errors.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local approx = require "support.approx"
local ref = dofile("spec/fixtures/conv_options_ref.lua")

local TOL = 1e-10  -- float64 against PyTorch's float64
local TOL32 = 1e-5 -- float32 against the same references

local function check(got, expected, tol, what)
  local ok, err = pcall(approx.assert_close, got, expected, tol, tol)
  if not ok then error((what or "value") .. ": " .. tostring(err), 2) end
end

local function fails(needle, fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error containing: " .. needle)
  assert.is_truthy(tostring(err):find(needle, 1, true), tostring(err))
end

local function leaf(t, dt) return mg.tensor(t, dt):requires_grad() end

-- Output and gradients (flat lists) of f(inputs..., opts) for seeded
-- random inputs of the given shapes in dtype dt.
local function run_random(f, shapes, opts, dt)
  mg.manual_seed(23)
  local ins = {}
  for i, shape in ipairs(shapes) do ins[i] = mg.randn(shape, dt):requires_grad() end
  ins[#ins + 1] = opts
  local y = f(table.unpack(ins, 1, #shapes + 1))
  y:backward(mg.randn(y:shape(), dt))
  local out = {approx.flat(y:detach())}
  for i = 1, #shapes do out[i + 1] = approx.flat(ins[i].grad) end
  return out
end

-- Asserts that run_random(...) gives the same bits under settings a and b;
-- set(v) applies a setting and returns the previous one.
local function same_bits(set, a, b, ...)
  local saved = set(a)
  local one = run_random(...)
  set(b)
  local two = run_random(...)
  set(saved)
  assert.are.same(one, two)
end

local function set_threads(n)
  local old = mg.get_num_threads()
  mg.set_num_threads(n)
  return old
end

-- A fixture case of a function of (x, w, b) run in dtype dt and checked.
local function check_conv(f, c, dt, tol)
  local x, w = leaf(c.x, dt), leaf(c.w, dt)
  local b = c.b and leaf(c.b, dt) or nil
  local y = f(x, w, b, c.opts)
  assert.are.equal(dt, y:dtype())
  assert.are.same(approx.shape_of(c.y), y:shape())
  y:backward(mg.tensor(c.g, dt))
  check(y, c.y, tol, "output")
  check(x.grad, c.gx, tol, "input gradient")
  check(w.grad, c.gw, tol, "weight gradient")
  if b then check(b.grad, c.gb, tol, "bias gradient") end
end

-- A fixture case of a module, its parameters loaded from PyTorch's state
-- dict (strict), run in dtype dt and checked.
local function check_module(M, c, dt, tol)
  local opts = {dtype = dt}
  for k, v in pairs(c.opts) do opts[k] = v end
  local m = M(c.args[1], c.args[2], c.args[3], opts)
  local sd = {}
  for k, v in pairs(c.sd) do sd[k] = mg.tensor(v, dt) end
  m:load_state_dict(sd)
  local x = leaf(c.x, dt)
  local y = m(x, c.output_size)
  assert.are.same(approx.shape_of(c.y), y:shape())
  y:backward(mg.tensor(c.g, dt))
  check(y, c.y, tol, "output")
  check(x.grad, c.gx, tol, "input gradient")
  check(m.weight.grad, c.gw, tol, "weight gradient")
  if c.gb then check(m.bias.grad, c.gb, tol, "bias gradient") end
end

-- Each family of fixture cases: how to run one, and which also run in
-- float32.
local families = {
  {"conv2d with padding \"same\" or \"valid\"", ref.conv2d,
   function(c, dt, tol) check_conv(F.conv2d, c, dt, tol) end, {2}},
  {"nn.Conv2d with each padding_mode, loading PyTorch's state dict", ref.conv2d_module,
   function(c, dt, tol) check_module(nn.Conv2d, c, dt, tol) end, {2, 6}},
  {"conv_transpose2d", ref.transpose,
   function(c, dt, tol) check_conv(F.conv_transpose2d, c, dt, tol) end, {1, 12, 20}},
  {"nn.ConvTranspose2d, loading PyTorch's state dict", ref.transpose_module,
   function(c, dt, tol) check_module(nn.ConvTranspose2d, c, dt, tol) end, {2, 4}},
}

for _, fam in ipairs(families) do
  local name, cases, run, f32 = fam[1], fam[2], fam[3], fam[4]
  describe(name, function()
    describe("matches PyTorch in float64", function()
      for _, c in ipairs(cases) do
        it("with " .. c.name, function() run(c, "float64", TOL) end)
      end
    end)
    describe("matches PyTorch in float32", function()
      for _, i in ipairs(f32) do
        it("with " .. cases[i].name, function() run(cases[i], "float32", TOL32) end)
      end
    end)
  end)
end

describe("F.pad", function()
  describe("matches PyTorch in float64", function()
    for _, c in ipairs(ref.pad) do
      it("with " .. c.name, function()
        local x = leaf(c.x, "float64")
        local y = F.pad(x, c.pad, {mode = c.mode, value = c.value})
        assert.are.same(approx.shape_of(c.y), y:shape())
        y:backward(mg.tensor(c.g, "float64"))
        check(y, c.y, TOL, "output")
        check(x.grad, c.gx, TOL, "input gradient")
      end)
    end
  end)

  it("matches PyTorch in float32 in every mode", function()
    for _, c in ipairs(ref.pad) do
      local x = leaf(c.x, "float32")
      local y = F.pad(x, c.pad, {mode = c.mode, value = c.value})
      assert.are.equal("float32", y:dtype())
      y:backward(mg.tensor(c.g, "float32"))
      check(y, c.y, TOL32, c.name .. ": output")
      check(x.grad, c.gx, TOL32, c.name .. ": input gradient")
    end
  end)

  it("pads with zeros by default and keeps an int64 tensor's values exactly", function()
    local big = 2 ^ 53 + 1
    local x = mg.tensor({{big, 2}}, "int64")
    local y = F.pad(x, {1, 0, 0, 1}, {value = 7})
    assert.are.equal("int64", y:dtype())
    assert.are.same({{7, big, 2}, {7, 7, 7}}, y:totable())
    assert.are.same({{0, 1, 2, 0}}, F.pad(mg.tensor({{1, 2}}), {1, 1}):totable())
  end)

  it("moves uint8 data too, and refuses a value uint8 cannot hold", function()
    local u = mg.tensor({{1, 2, 3}, {4, 5, 6}}, "uint8")
    local y = F.pad(u, {1, 1}, {mode = "reflect"})
    assert.are.equal("uint8", y:dtype())
    assert.are.same({{2, 1, 2, 3, 2}, {5, 4, 5, 6, 5}}, y:totable())
    fails("pad: value 300 does not fit in uint8", F.pad, u, {1, 1}, {value = 300})
  end)

  it("records a pad node only when the input requires grad", function()
    assert.is_nil(F.pad(mg.ones(1, 1, 2, 2), {1, 1, 1, 1}):grad_fn())
    assert.are.equal("pad", F.pad(mg.ones(1, 1, 2, 2):requires_grad(), {1, 1}):grad_fn())
  end)

  describe("passes gradcheck", function()
    mg.manual_seed(3)
    local cases = {
      {"constant with a crop", {1, 2, 3, 4}, {2, -1, 1, 0}, "constant"},
      {"reflect", {2, 1, 3, 4}, {2, 1, 1, 2}, "reflect"},
      {"replicate", {1, 2, 2, 3}, {2, 3, 1, 0}, "replicate"},
      {"circular", {2, 1, 3, 3}, {3, 1, 2, 2}, "circular"},
      {"reflect over the last dim of a 3-D input", {2, 2, 4}, {3, 2}, "reflect"},
    }
    for _, c in ipairs(cases) do
      it("in " .. c[1], function()
        local x = mg.randn(c[2], "float64"):requires_grad()
        assert.is_true(mg.gradcheck(function(t) return F.pad(t, c[3], {mode = c[4]}) end, {x}))
      end)
    end
  end)

  it("gives the same bits with 1 and 2 threads", function()
    same_bits(set_threads, 1, 2, function(x, o) return F.pad(x, {3, 2, 3, 1}, o) end,
              {{8, 16, 40, 40}}, {mode = "reflect"}, "float32")
  end)

  describe("refuses", function()
    local x = mg.zeros(1, 1, 3, 3)
    it("an odd number of padding values, and more pairs than dims", function()
      fails("pad: the padding must hold pairs {before, after}, got 3 values", F.pad, x, {1, 1, 1})
      fails("pad: 10 padding values pad 5 dims, but the input of shape [1,1,3,3] has 4",
            F.pad, x, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
    end)
    it("reflect padding as large as the dim, and circular padding that wraps twice", function()
      fails("pad: reflect padding {3, 0} of dim 4 must be smaller than its size 3 " ..
            "(input of shape [1,1,3,3])", F.pad, x, {3, 0, 0, 0}, {mode = "reflect"})
      fails("pad: circular padding {0, 4} of dim 3 wraps around more than once",
            F.pad, x, {0, 0, 0, 4}, {mode = "circular"})
      fails("pad: replicate padding of dim 4 needs a non-empty dim",
            F.pad, mg.zeros(1, 1, 3, 0), {1, 1, 0, 0}, {mode = "replicate"})
    end)
    it("a non-constant mode on a rank PyTorch does not pad, or with a value", function()
      fails('pad: mode "reflect" pads the last 1, 2 or 3 dims of a 2-D/3-D, 3-D/4-D or ' ..
            "4-D/5-D input (2, 4 or 6 padding values), got 2 values for an input of shape [1,1,3,3]",
            F.pad, x, {1, 1}, {mode = "reflect"})
      fails('pad: mode "circular" takes no value, got 1', F.pad, x, {1, 1, 1, 1},
            {mode = "circular", value = 1})
    end)
    it("a crop past the size, unknown modes and options, and malformed padding", function()
      fails("pad: padding {-2, -2} of dim 4 leaves a negative size -1 of the input of shape [1,1,3,3]",
            F.pad, x, {-2, -2})
      fails('pad: mode must be "constant", "reflect", "replicate" or "circular", got mirror',
            F.pad, x, {1, 1}, {mode = "mirror"})
      fails("pad: unknown option 'fill'", F.pad, x, {1, 1}, {fill = 1})
      fails("pad: padding value 2 must be an integer, got 1.5", F.pad, x, {1, 1.5})
      fails("pad: the padding must be a table of integers", F.pad, x, 1)
    end)
  end)
end)

describe("conv2d with padding \"same\" or \"valid\"", function()
  it("keeps H and W with \"same\" and pads nothing with \"valid\"", function()
    local x, w = mg.randn(1, 2, 5, 6), mg.randn(3, 2, 4, 3)
    assert.are.same({1, 3, 5, 6}, F.conv2d(x, w, nil, {padding = "same", dilation = 2}):shape())
    assert.are.same(F.conv2d(x, w):totable(), F.conv2d(x, w, nil, {padding = "valid"}):totable())
  end)

  it("passes gradcheck with an even kernel (the extra zero at the bottom and right)", function()
    mg.manual_seed(9)
    local function r(...) return mg.randn({...}, "float64"):requires_grad() end
    assert.is_true(mg.gradcheck(function(x, w, b)
      return F.conv2d(x, w, b, {padding = "same", dilation = {1, 3}})
    end, {r(2, 2, 4, 5), r(2, 2, 2, 2), r(2)}))
  end)

  it("agrees with the general kernels with an even kernel", function()
    same_bits(mg._set_reference_kernels, false, true,
              function(x, w, o) return F.conv2d(x, w, nil, o) end, {{2, 3, 5, 7}, {2, 3, 4, 2}},
              {padding = "same"}, "float64")
  end)

  it("refuses \"same\" with a stride, and other strings", function()
    local x, w = mg.zeros(1, 1, 5, 5), mg.zeros(1, 1, 3, 3)
    fails('conv2d: padding "same" needs stride 1 (as in PyTorch), got stride {1, 2}',
          F.conv2d, x, w, nil, {padding = "same", stride = {1, 2}})
    fails('conv2d: option \'padding\' must be an integer, a pair of integers, "same" or "valid", got "full"',
          F.conv2d, x, w, nil, {padding = "full"})
  end)
end)

describe("nn.Conv2d's padding_mode", function()
  it("shows padding \"same\" and the padding mode", function()
    local m = nn.Conv2d(2, 4, 3, {padding = "same", padding_mode = "circular", bias = false})
    assert.are.equal("2, 4, kernel_size={3, 3}, stride={1, 1}, padding=same, " ..
                     "bias=false, padding_mode=circular", m:extra_repr())
  end)

  it("refuses an unknown mode, \"same\" with a stride, and padding the input cannot mirror", function()
    fails('Conv2d: padding_mode must be "zeros", "reflect", "replicate" or "circular", got mirror',
          nn.Conv2d, 1, 1, 3, {padding_mode = "mirror"})
    fails('Conv2d: padding "same" needs stride 1 (as in PyTorch), got stride {2, 2}',
          nn.Conv2d, 1, 1, 3, {padding = "same", stride = 2})
    local m = nn.Conv2d(1, 1, 3, {padding = {1, 3}, padding_mode = "reflect"})
    fails('Conv2d: padding_mode "reflect" needs padding smaller than the input\'s size: ' ..
          "padding {3, 3} of dim 4, input of shape [1,1,5,3]", m, mg.zeros(1, 1, 5, 3))
    m = nn.Conv2d(1, 1, 3, {padding = 4, padding_mode = "circular"})
    fails('Conv2d: padding_mode "circular" needs padding at most the input\'s size: ' ..
          "padding {4, 4} of dim 4, input of shape [1,1,5,3]", m, mg.zeros(1, 1, 5, 3))
  end)
end)

describe("conv_transpose2d", function()
  it("is the input gradient of conv2d", function()
    mg.manual_seed(17)
    local x = mg.randn({2, 4, 7, 6}, "float64"):requires_grad()
    local w = mg.randn({6, 2, 3, 2}, "float64")
    local opts = {stride = 2, padding = 1, dilation = {1, 2}, groups = 2}
    local y = F.conv2d(x, w, nil, opts)
    local g = mg.randn(y:shape(), "float64")
    y:backward(g)
    opts.output_padding = {0, 1} -- the one row/column conv2d's stride dropped
    check(F.conv_transpose2d(g, w, nil, opts), x.grad:totable(), 1e-12)
  end)

  it("records a conv_transpose2d node only when an input requires grad", function()
    local x, w = mg.randn(1, 2, 3, 3), mg.randn(2, 1, 2, 2)
    assert.is_nil(F.conv_transpose2d(x, w):grad_fn())
    assert.are.equal("conv_transpose2d", F.conv_transpose2d(x, w:requires_grad()):grad_fn())
  end)

  describe("passes gradcheck", function()
    mg.manual_seed(19)
    local function r(...) return mg.randn({...}, "float64"):requires_grad() end
    local cases = {
      {"stride 2, padding 1, output_padding 1", {r(2, 2, 3, 3), r(2, 3, 3, 3), r(3)},
       {stride = 2, padding = 1, output_padding = 1}},
      {"groups 2 and dilation {2, 1}, no bias", {r(1, 4, 3, 2), r(4, 1, 2, 3)},
       {groups = 2, dilation = {2, 1}}},
      {"output_padding below the dilation", {r(1, 1, 3, 3), r(1, 2, 2, 2), r(2)},
       {dilation = 2, output_padding = 1}},
      {"a 1x1 kernel with stride 3", {r(2, 3, 2, 2), r(3, 2, 1, 1), r(2)}, {stride = 3}},
    }
    for _, c in ipairs(cases) do
      it("with " .. c[1], function()
        local inputs, opts = c[2], c[3]
        assert.is_true(mg.gradcheck(function(x, w, b) return F.conv_transpose2d(x, w, b, opts) end, inputs))
      end)
    end
  end)

  it("gives the same bits with 1 and 2 threads", function()
    for _, dt in ipairs({"float32", "float64"}) do
      same_bits(set_threads, 1, 2, F.conv_transpose2d, {{16, 8, 10, 10}, {8, 6, 4, 4}, {6}},
                {stride = 2, padding = 1}, dt)
    end
  end)

  it("agrees with the general kernels where output rows are as long as input rows", function()
    same_bits(mg._set_reference_kernels, false, true, F.conv_transpose2d,
              {{2, 4, 5, 6}, {4, 3, 3, 3}, {6}}, {padding = 1, groups = 2}, "float64")
  end)

  describe("refuses", function()
    local x = mg.zeros(1, 4, 3, 3)
    it("output_padding as large as both stride and dilation", function()
      fails("conv_transpose2d: output_padding {2, 0} must be smaller than either stride {2, 2} " ..
            "or dilation {1, 1} in each dim", F.conv_transpose2d, x, mg.zeros(4, 1, 3, 3), nil,
            {stride = 2, output_padding = {2, 0}})
    end)
    it("an output smaller than 1x1", function()
      fails("conv_transpose2d: input of shape [1,4,3,3] with weight of shape [4,1,2,2], stride {1, 1}, " ..
            "padding {2, 2}, dilation {1, 1} and output_padding {0, 0} gives an output of 0x0, which is too small",
            F.conv_transpose2d, x, mg.zeros(4, 1, 2, 2), nil, {padding = 2})
      fails("gives an output of -1x1, which is too small",
            F.conv_transpose2d, mg.zeros(1, 1, 2, 2), mg.zeros(1, 1, 2, 2), nil, {padding = {2, 1}})
    end)
    it("channels not divisible by groups and weights that do not fit", function()
      fails("conv_transpose2d: 4 input channels are not divisible by groups 3",
            F.conv_transpose2d, x, mg.zeros(4, 1, 3, 3), nil, {groups = 3})
      fails("conv_transpose2d: weight of shape [3,1,3,3] expects 3 input channels, but input of shape [1,4,3,3] has 4",
            F.conv_transpose2d, x, mg.zeros(3, 1, 3, 3))
      fails("conv_transpose2d: weight must be 4-D [C_in, C_out/groups, kH, kW], got shape [4,3,3]",
            F.conv_transpose2d, x, mg.zeros(4, 3, 3))
      fails("conv_transpose2d: input must be 4-D [N, C_in, H, W], got shape [4,3,3]",
            F.conv_transpose2d, mg.zeros(4, 3, 3), mg.zeros(4, 1, 3, 3))
      fails("conv_transpose2d: bias of shape [3] does not fit weight of shape [4,1,3,3] with groups 2 (expected [2]",
            F.conv_transpose2d, x, mg.zeros(4, 1, 3, 3), mg.zeros(3), {groups = 2})
    end)
    it("bad stride, padding, output_padding and unknown options", function()
      local w = mg.zeros(4, 1, 3, 3)
      fails("conv_transpose2d: stride must be positive, got 0", F.conv_transpose2d, x, w, nil, {stride = 0})
      fails("conv_transpose2d: padding must be non-negative, got -1", F.conv_transpose2d, x, w, nil, {padding = -1})
      fails("conv_transpose2d: output_padding must be non-negative, got -1",
            F.conv_transpose2d, x, w, nil, {output_padding = -1})
      fails("conv_transpose2d: unknown option", F.conv_transpose2d, x, w, nil, {outpad = 1})
      fails("conv_transpose2d: option 'padding' must be an integer or a pair of integers",
            F.conv_transpose2d, x, w, nil, {padding = "same"})
    end)
  end)
end)

describe("nn.ConvTranspose2d", function()
  it("has PyTorch's parameter shapes and draws them from U(±1/sqrt(out/groups·kH·kW))", function()
    mg.manual_seed(31)
    local m = nn.ConvTranspose2d(8, 4, 3, {groups = 2})
    assert.are.same({8, 2, 3, 3}, m.weight:shape())
    assert.are.same({4}, m.bias:shape())
    -- fan_in is 2·3·3 = 18, as torch computes it from this weight; 8·3·3 would be half the bound
    local bound = 1 / math.sqrt(18)
    local wmax = m.weight:abs():max():item()
    assert.is_true(wmax <= bound and wmax > bound / 2 + 0.05, tostring(wmax))
    assert.is_true(m.bias:abs():max():item() <= bound)
    assert.are.same({"bias", "weight"}, (function()
      local names = m:state_dict_names()
      table.sort(names)
      return names
    end)())
  end)

  it("takes output_size as {h, w} or {N, C, h, w}", function()
    local m = nn.ConvTranspose2d(1, 1, 3, {stride = 2, padding = 1})
    local x = mg.randn(1, 1, 4, 4)
    assert.are.same({1, 1, 7, 7}, m(x):shape())
    assert.are.same({1, 1, 8, 7}, m(x, {8, 7}):shape())
    assert.are.same({1, 1, 7, 8}, m(x, {1, 1, 7, 8}):shape())
  end)

  it("refuses output sizes out of reach, padding modes and wrong inputs", function()
    local m = nn.ConvTranspose2d(1, 1, 3, {stride = 2})
    fails("ConvTranspose2d: requested an output size of {9, 10}, but valid sizes range from {7, 7} " ..
          "to {8, 8} (for an input of {3, 3})", m, mg.zeros(1, 1, 3, 3), {9, 10})
    fails("ConvTranspose2d: output_size must be a table of 2 or 4 integers", m, mg.zeros(1, 1, 3, 3), {9})
    fails('ConvTranspose2d: padding_mode must be "zeros"', nn.ConvTranspose2d, 1, 1, 3, {padding_mode = "reflect"})
    fails("ConvTranspose2d: expected 4-D [N, 1, H, W] input, got shape [1,2,3,3]", m, mg.zeros(1, 2, 3, 3))
  end)
end)

-- The other way round: PyTorch loads moongrad's state dicts (strict) into
-- its own modules and gets moongrad's outputs. Checked where Debian's
-- python3-torch is installed (the fixtures' generator needs it); values go
-- over as Python literals, since that torch reads no safetensors.
describe("PyTorch", function()
  local shell = require "support.shell"
  local peers = require "support.peers"

  -- v as a Python literal: nested lists of numbers, dicts, strings, bools.
  local function py(v)
    if mg.is_tensor(v) then return py(v:totable()) end
    if type(v) == "table" then
      if #v > 0 or next(v) == nil then
        local parts = {}
        for i = 1, #v do parts[i] = py(v[i]) end
        return "[" .. table.concat(parts, ", ") .. "]"
      end
      local parts, keys = {}, {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      for _, k in ipairs(keys) do parts[#parts + 1] = py(k) .. ": " .. py(v[k]) end
      return "{" .. table.concat(parts, ", ") .. "}"
    end
    if type(v) == "string" then return string.format("%q", v) end
    if type(v) == "boolean" then return v and "True" or "False" end
    return string.format("%.17g", v)
  end

  it("loads moongrad's Conv2d and ConvTranspose2d state dicts and gets the same outputs", function()
    local why = peers.missing("torch", "python3-torch",
                              "PyTorch's loading of moongrad's state dicts")
    if why then pending(why) return end
    mg.manual_seed(37)
    local cases = {
      {"Conv2d", {2, 3, {2, 3}}, {padding = "same", padding_mode = "reflect"}, {2, 2, 5, 4}},
      {"Conv2d", {4, 2, 3}, {padding = 2, padding_mode = "circular", groups = 2, stride = 2}, {1, 4, 4, 5}},
      {"ConvTranspose2d", {4, 2, 3}, {stride = 2, padding = 1, groups = 2, dilation = 2}, {2, 4, 3, 3},
       {8, 7}},
    }
    local items = {}
    for i, c in ipairs(cases) do
      local opts = {dtype = "float64"}
      for k, v in pairs(c[3]) do opts[k] = v end
      local m = nn[c[1]](c[2][1], c[2][2], c[2][3], opts)
      local x = mg.randn(c[4], "float64")
      local sd = {}
      for k, t in pairs(m:state_dict()) do sd[k] = t end
      items[i] = {cls = c[1], args = c[2], kwargs = c[3], x = x, y = m(x, c[5]), sd = sd,
                  output_size = c[5] or false}
    end
    local dir = shell.tmpdir()
    shell.write_file(dir .. "/cases.py", "cases = " .. py(items) .. "\n")
    local script = table.concat({
      "import sys, torch",
      "torch.set_default_dtype(torch.float64)",
      "sys.path.insert(0, sys.argv[1])",
      "from cases import cases",
      "for c in cases:",
      "    m = getattr(torch.nn, c['cls'])(*c['args'], **c['kwargs'])",
      "    m.load_state_dict({k: torch.tensor(v) for k, v in c['sd'].items()}, strict=True)",
      "    x = torch.tensor(c['x'])",
      "    y = m(x, output_size=c['output_size']) if c['output_size'] else m(x)",
      "    print((y - torch.tensor(c['y'])).abs().max().item())",
    }, "\n")
    local out, rc = shell.run_merged("/usr/bin/python3 -c " .. shell.quote(script) .. " " .. shell.quote(dir))
    os.execute("rm -rf " .. shell.quote(dir))
    assert.are.equal(0, rc, out)
    local k = 0
    for line in out:gmatch("[^\n]+") do
      local err = tonumber(line)
      if err then
        k = k + 1
        assert.is_true(err < 1e-12, cases[k][1] .. " differs by " .. line)
      end
    end
    assert.are.equal(#cases, k, out)
  end)
end)
