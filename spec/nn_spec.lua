-- moongrad.nn: the Module API (registration, names, modes, state dicts,
-- printing), the layers and containers, nn.init's statistics, and the XOR
-- example script. Reference values are computed here with plain Lua loops
-- over totable().

local BUILD = require "support.build"
local mg = require "moongrad"
local nn = require "moongrad.nn"
local approx = require "support.approx"

local close = approx.assert_close

-- Plain-Lua statistics of a tensor's elements.
local function stats(t)
  local xs = approx.flat(t)
  local n, sum, sq, lo, hi = #xs, 0, 0, math.huge, -math.huge
  for _, x in ipairs(xs) do
    sum = sum + x
    lo, hi = math.min(lo, x), math.max(hi, x)
  end
  local mean = sum / n
  for _, x in ipairs(xs) do sq = sq + (x - mean) ^ 2 end
  return {mean = mean, std = math.sqrt(sq / (n - 1)), min = lo, max = hi, n = n}
end

local function names_of(iter)
  local out = {}
  for name in iter do out[#out + 1] = name end
  return out
end

local sorted_keys = require("support.check").sorted_keys

-- The message of the error fn raises (fn must raise).
local error_of = require("support.check").err_of

-- A small custom model: a nested Sequential, a head, a free parameter, a buffer.
local Net = nn.Module:extend("Net")
function Net:init(d_in, d_hidden)
  self.body = nn.Sequential(nn.Linear(d_in, d_hidden), nn.Tanh())
  self.head = nn.Linear(d_hidden, 1)
  self.scale = mg.ones(1):requires_grad()
  self:register_buffer("steps", mg.zeros(1))
end
function Net:forward(x) return self.head(self.body(x)) * self.scale end

before_each(function() mg.manual_seed(1234) end)

describe("nn.Module", function()
  it("lets a custom module be written in a few lines and called like a function", function()
    local Affine = nn.Module:extend("Affine")
    function Affine:init(n) self.w = mg.ones(n):requires_grad() end
    function Affine:forward(x) return x * self.w + 1 end
    local m = Affine(3)
    close(m(mg.tensor({1, 2, 3})), {2, 3, 4})
    assert.equal(3, m:num_parameters())
    assert.equal("Affine", m:class_name())
    assert.is_true(nn.is_module(m))
    assert.equal("class Affine", tostring(Affine))
  end)

  it("registers parameters and submodules in assignment order under dotted names", function()
    local net = Net(2, 3)
    assert.same({"scale", "body.1.weight", "body.1.bias", "head.weight", "head.bias"},
                names_of(net:named_parameters()))
    assert.same({"body", "head"}, names_of(net:named_children()))
    assert.same({"", "body", "body.1", "body.2", "head"}, names_of(net:named_modules()))
    assert.same({"steps"}, names_of(net:named_buffers()))
    assert.equal(net.body[1].weight, net:parameters()[2])
  end)

  it("names a ModuleList's children by position: layers.1.weight", function()
    local Stack = nn.Module:extend("Stack")
    function Stack:init()
      self.layers = nn.ModuleList({nn.Linear(4, 4), nn.Linear(4, 2)})
    end
    assert.same({"layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias"},
                names_of(Stack():named_parameters()))
  end)

  it("keeps numbers, tables, tensors not requiring grad and op results as plain fields", function()
    local m = nn.Module()
    m.n = 3
    m.cfg = {a = 1}
    m.const = mg.ones(2)
    m.fc = nn.Linear(2, 2)
    local w = mg.ones(2):requires_grad()
    m.derived = w * 2
    assert.equal(3, m.n)
    assert.equal(1, m.cfg.a)
    assert.same({"fc.weight", "fc.bias"}, names_of(m:named_parameters()))
    assert.same({}, m:buffers())
    assert.is_true(mg.is_tensor(m.derived))
  end)

  it("lets a plain field become a submodule, and nil unregister a name", function()
    local m = nn.Module()
    m.fc = 1
    m.fc = nn.Linear(2, 2)
    assert.equal(2, #m:parameters())
    m.fc = nil
    assert.equal(0, #m:parameters())
    assert.is_nil(m.fc)
    m.p = mg.zeros(2):requires_grad()
    m.p = nil
    assert.same({}, m:parameters())
  end)

  it("keeps a parameter registered when it is frozen or replaced by another leaf", function()
    local fc = nn.Linear(2, 2)
    fc.weight:requires_grad(false)
    fc.bias = mg.zeros(2)
    assert.same({"weight", "bias"}, names_of(fc:named_parameters()))
    assert.equal(6, fc:num_parameters())
    assert.equal(0, fc:num_parameters({trainable = true}))
  end)

  it("raises when a non-tensor is assigned to a parameter name", function()
    local fc = nn.Linear(2, 2)
    local err = error_of(function() fc.weight = 3 end)
    assert.matches("Linear: cannot assign a number to parameter 'weight' (a tensor or nil expected)",
                   err, 1, true)
    assert.matches("nn_spec.lua", err, 1, true)       -- points at the assignment
    err = error_of(function() fc.bias = fc.bias * 2 end)
    assert.matches("cannot assign the result of an op to parameter 'bias'", err, 1, true)
  end)

  it("raises when a non-module is assigned to a submodule name", function()
    local net = Net(2, 3)
    assert.matches("Net: cannot assign a tensor to submodule 'head' (a module or nil expected)",
                   error_of(function() net.head = mg.ones(2) end), 1, true)
  end)

  it("refuses names that would shadow a method", function()
    local m = nn.Module()
    assert.matches("cannot register submodule 'forward'",
                   error_of(function() m.forward = nn.ReLU() end), 1, true)
    assert.matches("cannot register parameter 'parameters'",
                   error_of(function() m.parameters = mg.ones(1):requires_grad() end), 1, true)
  end)

  it("raises 'Net: forward is not defined' when a module without forward is called", function()
    local Empty = nn.Module:extend("Empty")
    local err = error_of(function() local y = Empty()(mg.ones(1)); return y end)
    assert.matches("Empty: forward is not defined", err, 1, true)
    assert.matches("nn_spec.lua", err, 1, true)
    assert.matches("ModuleList: forward is not defined",
                   error_of(function() return nn.ModuleList()(mg.ones(1)) end), 1, true)
  end)

  it("runs a parent's init when a subclass calls it by the class name", function()
    local Wide = nn.Linear:extend("Wide")
    function Wide:init(n) Wide.super.init(self, n, 2 * n) self.tag = "wide" end
    local w = Wide(3)
    assert.same({6, 3}, w.weight:shape())
    assert.equal("wide", w.tag)
    assert.is_true(w:is_a(nn.Linear))
    assert.is_true(w:is_a(nn.Module))
    assert.is_false(w:is_a(nn.ReLU))
    assert.equal("Wide(in=3, out=6, bias=true)  -- 24 params", tostring(w))
  end)

  it("rejects extend without a class name and extend on an instance", function()
    assert.matches("extend: expects a class name", error_of(function() nn.Module:extend() end), 1, true)
    local m = nn.Module()
    assert.matches("call it on a class", error_of(function() m:extend("X") end), 1, true)
  end)

  it("keeps buffers in state_dict but out of parameters", function()
    local bn = nn.BatchNorm1d(4)
    assert.same({"weight", "bias"}, names_of(bn:named_parameters()))
    assert.same({"running_mean", "running_var", "num_batches_tracked"},
                names_of(bn:named_buffers()))
    assert.same({"bias", "num_batches_tracked", "running_mean", "running_var", "weight"},
                sorted_keys(bn:state_dict()))
    local m = nn.Module()
    m:register_buffer("cache", mg.zeros(2), {persistent = false})
    assert.equal(1, #m:buffers())
    assert.same({}, sorted_keys(m:state_dict()))
  end)

  it("lists children once and modules depth first, itself first", function()
    local shared = nn.Linear(2, 2)
    local seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert.equal(2, #seq:children())
    local mods = seq:modules()
    assert.equal(3, #mods)
    assert.equal(seq, mods[1])
    assert.equal(6, seq:num_parameters())     -- shared weights count once
  end)

  it("applies a function to every module, children before their parent", function()
    local net = Net(2, 3)
    local seen = {}
    assert.equal(net, net:apply(function(m) seen[#seen + 1] = m:class_name() end))
    assert.same({"Linear", "Tanh", "Sequential", "Linear", "Net"}, seen)
    net:apply(function(m)
      if m:is_a(nn.Linear) then nn.init.zeros_(m.bias) end
    end)
    assert.same({0, 0, 0}, net.body[1].bias:totable())
  end)

  it("propagates train and eval to every descendant", function()
    local net = Net(2, 3)
    assert.is_true(net.training and net.body[2].training)
    assert.equal(net, net:eval())
    for _, m in ipairs(net:modules()) do assert.is_false(m.training) end
    net:train()
    for _, m in ipairs(net:modules()) do assert.is_true(m.training) end
    net:train(false)
    assert.is_false(net.head.training)
  end)

  it("drops gradients with zero_grad, or zeroes them in place on request", function()
    local fc = nn.Linear(3, 2)
    fc.weight.grad = mg.ones(2, 3)
    fc.bias.grad = mg.ones(2)
    fc:zero_grad({set_to_none = false})
    assert.same({0, 0}, fc.bias.grad:totable())
    fc:zero_grad()
    assert.is_nil(fc.weight.grad)
    assert.is_nil(fc.bias.grad)
  end)

  it("fills every parameter's grad on backward, and zero_grad clears them", function()
    local net = Net(3, 4)
    local y = net(mg.randn(5, 3))
    y:backward(mg.ones_like(y))
    for name, p in net:named_parameters() do
      assert.is_true(mg.is_tensor(p.grad), name .. " has no grad")
      assert.same(p:shape(), p.grad:shape())
    end
    net:zero_grad()
    for _, p in ipairs(net:parameters()) do assert.is_nil(p.grad) end
  end)

  it("counts parameters: Linear(784, 256) has 200,960", function()
    assert.equal(200960, nn.Linear(784, 256):num_parameters())
    assert.equal(200704, nn.Linear(784, 256, {bias = false}):num_parameters())
    local net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    assert.equal(203530, net:num_parameters())
    assert.equal(4, #net:parameters())
    assert.equal(1 + 2 * 3 + 3 + 3 + 1, Net(2, 3):num_parameters())
  end)

  it("converts its floating parameters and buffers with to()", function()
    local bn = nn.BatchNorm1d(3):double()
    assert.equal("float64", bn.weight:dtype())
    assert.equal("float64", bn.running_var:dtype())
    assert.equal("int64", bn.num_batches_tracked:dtype())
    assert.is_true(bn.weight:is_requires_grad())
    assert.same({"weight", "bias"}, names_of(bn:named_parameters()))
  end)

  describe("clone", function()
    it("makes a deep copy with the same values, class, names and outputs", function()
      local net = Net(2, 3)
      net.note = {tag = "a", sizes = {2, 3}}
      local copy = net:clone()
      assert.is_true(copy:is_a(Net))
      assert.same(net:state_dict_names(), copy:state_dict_names())
      for name, t in pairs(net:state_dict()) do
        local c = copy:state_dict()[name]
        assert.is_false(c:shares_storage(t), name .. " shares storage")
        assert.same(t:totable(), c:totable())
      end
      local x = mg.randn(4, 2)
      assert.same(net(x):totable(), copy(x):totable())
      assert.same(net.note, copy.note)
      assert.are_not.equal(net.note, copy.note)
      assert.are_not.equal(net.note.sizes, copy.note.sizes)
    end)

    it("leaves the original alone when the copy is trained or changed", function()
      local net = Net(2, 3)
      local before = net.head.weight:totable()
      local copy = net:clone()
      mg.no_grad(function() copy.head.weight:fill_(7) end)
      copy.body[1] = nn.Linear(2, 3)
      copy.note = "changed"
      assert.same(before, net.head.weight:totable())
      assert.is_nil(net.note)
      assert.equal(2, #net.body)
      local loss = copy(mg.randn(4, 2)):sum()
      loss:backward()
      assert.is_nil(net.head.weight.grad)
      assert.is_not_nil(copy.head.weight.grad)
    end)

    it("makes parameters new leaves that require grad as the originals do", function()
      local net = Net(2, 3)
      net.head.bias:requires_grad(false)
      local copy = net:clone()
      assert.is_true(copy.head.weight:is_leaf())
      assert.is_true(copy.head.weight:is_requires_grad())
      assert.is_false(copy.head.bias:is_requires_grad())
      assert.same(names_of(net:named_parameters()), names_of(copy:named_parameters()))
      assert.same({"steps"}, names_of(copy:named_buffers()))
    end)

    it("copies gradients, the training flag and non-persistent buffers", function()
      local net = Net(2, 3)
      net(mg.randn(4, 2)):sum():backward()
      net:register_buffer("cache", mg.ones(2), {persistent = false})
      net:eval()
      local copy = net:clone()
      assert.same(net.head.weight.grad:totable(), copy.head.weight.grad:totable())
      assert.is_false(copy.head.weight.grad:shares_storage(net.head.weight.grad))
      assert.is_false(copy.training)
      assert.is_false(copy.body[2].training)
      assert.is_not_nil(copy.cache)
      assert.is_nil(copy:state_dict().cache)
    end)

    it("keeps what is shared within the original shared within the copy", function()
      local Tied = nn.Module:extend("Tied")
      function Tied:init()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)
        self.b.weight = self.a.weight          -- a tied weight
        self.c = self.a                        -- one module under two names
        self.meta = {owner = self}             -- a cycle through a plain table
      end
      local m = Tied()
      local copy = m:clone()
      assert.equal(copy.a.weight, copy.b.weight)
      assert.are_not.equal(m.a.weight, copy.a.weight)
      assert.equal(copy.a, copy.c)
      assert.equal(copy, copy.meta.owner)
      assert.equal(#m:parameters(), #copy:parameters())
    end)
  end)
end)

describe("state_dict and load_state_dict", function()
  it("holds every parameter and buffer by dotted name, sharing storage", function()
    local net = Net(2, 3)
    local sd = net:state_dict()
    assert.same({"body.1.bias", "body.1.weight", "head.bias", "head.weight", "scale", "steps"},
                sorted_keys(sd))
    assert.same({"scale", "steps", "body.1.weight", "body.1.bias", "head.weight", "head.bias"},
                net:state_dict_names())
    assert.is_true(sd["head.weight"]:shares_storage(net.head.weight))
    assert.is_false(sd["head.weight"]:is_requires_grad())
  end)

  it("round-trips into a fresh model, which then gives identical outputs", function()
    local a = Net(4, 5)
    local b = Net(4, 5)
    local x = mg.randn(3, 4)
    assert.are_not.same(a(x):totable(), b(x):totable())
    local result = b:load_state_dict(a:state_dict())
    assert.same({missing = {}, unexpected = {}}, result)
    assert.same(a(x):totable(), b(x):totable())
    assert.is_true(b.head.weight:is_leaf() and b.head.weight:is_requires_grad())
  end)

  it("converts dtypes on load", function()
    local a, b = nn.Linear(2, 2):double(), nn.Linear(2, 2)
    b:load_state_dict(a:state_dict())
    close(b.weight, a.weight:totable(), 1e-7, 1e-6)
    assert.equal("float32", b.weight:dtype())
  end)

  it("names missing entries with their shapes when strict", function()
    local net = Net(2, 3)
    local sd = net:state_dict()
    sd["head.weight"], sd["steps"] = nil, nil
    local err = error_of(function() net:load_state_dict(sd) end)
    assert.matches("Net: load_state_dict: the state dict does not fit the model", err, 1, true)
    assert.matches("missing (2): steps [1], head.weight [1,3]", err, 1, true)
    assert.matches("strict = false", err, 1, true)
  end)

  it("names unexpected entries when strict", function()
    local fc = nn.Linear(2, 2)
    local sd = fc:state_dict()
    sd["extra.weight"] = mg.zeros(3, 4)
    assert.matches("unexpected (1): extra.weight [3,4]",
                   error_of(function() fc:load_state_dict(sd) end), 1, true)
  end)

  it("names mis-shaped entries with both shapes, even when not strict", function()
    local fc = nn.Linear(784, 256)
    local sd = nn.Linear(100, 256):state_dict()
    local err = error_of(function() fc:load_state_dict(sd, {strict = false}) end)
    assert.matches("wrong shape (1): weight is [256,100] in the state dict, [256,784] in the model",
                   err, 1, true)
  end)

  it("copies nothing when any entry is wrong", function()
    local fc = nn.Linear(2, 2)
    local before = fc.bias:totable()
    local sd = {weight = mg.zeros(3, 3), bias = mg.zeros(2)}
    error_of(function() fc:load_state_dict(sd) end)
    assert.same(before, fc.bias:totable())
  end)

  it("rejects entries that are not tensors and arguments that are not tables", function()
    local fc = nn.Linear(2, 2)
    assert.matches("not a tensor (1): bias is a table",
                   error_of(function() fc:load_state_dict({weight = mg.zeros(2, 2), bias = {0, 0}}) end),
                   1, true)
    assert.matches("Linear: load_state_dict expects a table of name = tensor, got string",
                   error_of(function() fc:load_state_dict("model.safetensors") end), 1, true)
    assert.matches("unknown option 'strcit'",
                   error_of(function() fc:load_state_dict({}, {strcit = false}) end), 1, true)
  end)

  it("loads what matches and reports the rest when not strict", function()
    local net = Net(2, 3)
    local src = nn.Linear(3, 1)
    local sd = {["head.weight"] = src.weight, ["head.bias"] = src.bias, ["other"] = mg.ones(1)}
    local result = net:load_state_dict(sd, {strict = false})
    assert.same(src.weight:totable(), net.head.weight:totable())
    assert.same({"scale", "steps", "body.1.weight", "body.1.bias"}, result.missing)
    assert.same({"other"}, result.unexpected)
  end)
end)

describe("printing a module", function()
  it("shows the architecture with PyTorch-like indentation and parameter counts", function()
    local net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    assert.equal(table.concat({
      "Sequential(",
      "  (1): Linear(in=784, out=256, bias=true)  -- 200,960 params",
      "  (2): ReLU()",
      "  (3): Dropout(p=0.2)",
      "  (4): Linear(in=256, out=10, bias=true)  -- 2,570 params",
      ")  -- 203,530 params",
    }, "\n"), tostring(net))
  end)

  it("nests containers and lists a custom module's own parameters", function()
    assert.equal(table.concat({
      "Net(",
      "  (scale): Parameter([1], float32)",
      "  (body): Sequential(",
      "    (1): Linear(in=2, out=3, bias=true)  -- 9 params",
      "    (2): Tanh()",
      "  )  -- 9 params",
      "  (head): Linear(in=3, out=1, bias=true)  -- 4 params",
      ")  -- 14 params",
    }, "\n"), tostring(Net(2, 3)))
  end)

  it("shows each layer's options", function()
    assert.equal("LayerNorm([8], eps=1e-05, elementwise_affine=true)  -- 16 params",
                 tostring(nn.LayerNorm(8)))
    assert.equal("BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=true, track_running_stats=true)"
                 .. "  -- 8 params", tostring(nn.BatchNorm1d(4)))
    assert.equal("Embedding(10, 3)  -- 30 params", tostring(nn.Embedding(10, 3)))
    assert.equal("LeakyReLU(negative_slope=0.2)", tostring(nn.LeakyReLU(0.2)))
    assert.equal("GELU(approximate=tanh)", tostring(nn.GELU({approximate = "tanh"})))
    assert.equal("Softmax(dim=-1)", tostring(nn.Softmax()))
    assert.equal("Flatten(start_dim=2, end_dim=-1)", tostring(nn.Flatten()))
    assert.equal("CrossEntropyLoss(label_smoothing=0.1)",
                 tostring(nn.CrossEntropyLoss({label_smoothing = 0.1})))
    assert.equal("Linear(in=1, out=1, bias=false)  -- 1 param",
                 tostring(nn.Linear(1, 1, {bias = false})))
  end)
end)

describe("nn.init and default initialisation", function()
  it("draws Linear weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in))", function()
    local fc = nn.Linear(400, 300)
    local bound = 1 / math.sqrt(400)
    local w, b = stats(fc.weight), stats(fc.bias)
    assert.is_true(w.min >= -bound and w.max <= bound)
    assert.is_true(w.max > 0.99 * bound and w.min < -0.99 * bound)   -- fills the range
    close(w.std, bound / math.sqrt(3), 0, 0.02)                        -- uniform's std
    assert.is_true(b.min >= -bound and b.max <= bound)
    assert.is_true(b.max > 0.9 * bound and b.min < -0.9 * bound)
  end)

  it("is reproducible under mg.manual_seed", function()
    mg.manual_seed(7)
    local a = nn.Linear(3, 3)
    mg.manual_seed(7)
    local b = nn.Linear(3, 3)
    assert.same(a.weight:totable(), b.weight:totable())
    assert.same(a.bias:totable(), b.bias:totable())
  end)

  it("starts Embedding at N(0, 1) and the norms at weight 1, bias 0, running var 1", function()
    local e = stats(nn.Embedding(1000, 100).weight)
    close(e.mean, 0, 0.01)
    close(e.std, 1, 0.01)
    local ln = nn.LayerNorm({2, 3})
    assert.same({{1, 1, 1}, {1, 1, 1}}, ln.weight:totable())
    assert.same({{0, 0, 0}, {0, 0, 0}}, ln.bias:totable())
    local bn = nn.BatchNorm1d(3)
    assert.same({1, 1, 1}, bn.weight:totable())
    assert.same({0, 0, 0}, bn.bias:totable())
    assert.same({0, 0, 0}, bn.running_mean:totable())
    assert.same({1, 1, 1}, bn.running_var:totable())
    assert.equal(0, bn.num_batches_tracked:item())
    assert.is_nil(nn.LayerNorm(4, {elementwise_affine = false}).weight)
    assert.same({}, nn.BatchNorm1d(4, {affine = false}):parameters())
  end)

  it("gives the gains PyTorch documents", function()
    local gain = nn.init.calculate_gain
    assert.equal(1, gain("linear"))
    assert.equal(1, gain("conv2d"))
    assert.equal(1, gain("sigmoid"))
    assert.equal(5 / 3, gain("tanh"))
    assert.equal(math.sqrt(2), gain("relu"))
    assert.equal(math.sqrt(2 / (1 + 0.01 ^ 2)), gain("leaky_relu"))
    assert.equal(math.sqrt(2 / (1 + 0.2 ^ 2)), gain("leaky_relu", 0.2))
    assert.equal(3 / 4, gain("selu"))
    assert.matches("unsupported nonlinearity 'swish'", error_of(gain, "swish"), 1, true)
  end)

  it("bounds xavier_uniform_ by gain * sqrt(6 / (fan_in + fan_out))", function()
    local t = mg.empty(200, 300)
    assert.equal(t, nn.init.xavier_uniform_(t, 2))
    local a = 2 * math.sqrt(6 / 500)
    local s = stats(t)
    assert.is_true(s.min >= -a and s.max <= a and s.max > 0.99 * a)
    close(s.std, a / math.sqrt(3), 0, 0.02)
  end)

  it("gives xavier_normal_ the std gain * sqrt(2 / (fan_in + fan_out))", function()
    local s = stats(nn.init.xavier_normal_(mg.empty(400, 600)))
    close(s.mean, 0, 0.005)
    close(s.std, math.sqrt(2 / 1000), 0, 0.02)
  end)

  it("gives kaiming_normal_ the std gain / sqrt(fan) on a big tensor", function()
    local s = stats(nn.init.kaiming_normal_(mg.empty(512, 1024), {nonlinearity = "relu"}))
    close(s.std, math.sqrt(2) / math.sqrt(1024), 0, 0.01)
    s = stats(nn.init.kaiming_normal_(mg.empty(512, 1024), {mode = "fan_out", nonlinearity = "relu"}))
    close(s.std, math.sqrt(2) / math.sqrt(512), 0, 0.01)
  end)

  it("bounds kaiming_uniform_ by sqrt(3) * gain / sqrt(fan), counting receptive fields", function()
    local t = nn.init.kaiming_uniform_(mg.empty(64, 16, 3, 3), {a = 0})
    local bound = math.sqrt(3) * math.sqrt(2) / math.sqrt(16 * 9)
    local s = stats(t)
    assert.is_true(s.min >= -bound and s.max <= bound and s.max > 0.99 * bound)
    local fan_in, fan_out = nn.init.fans(t)
    assert.equal(144, fan_in)
    assert.equal(576, fan_out)
  end)

  it("fills constants in place under no_grad on parameters", function()
    local w = mg.empty(2, 2):requires_grad()
    assert.same({{0, 0}, {0, 0}}, nn.init.zeros_(w):totable())
    assert.same({{1, 1}, {1, 1}}, nn.init.ones_(w):totable())
    assert.same({{0.5, 0.5}, {0.5, 0.5}}, nn.init.constant_(w, 0.5):totable())
    assert.is_true(w:is_leaf())
    local u = stats(nn.init.uniform_(mg.empty(1000), -2, -1))
    assert.is_true(u.min >= -2 and u.max <= -1)
    local n = stats(nn.init.normal_(mg.empty(10000), 3, 0.5))
    close(n.mean, 3, 0.02)
    close(n.std, 0.5, 0.02)
  end)

  it("explains bad arguments", function()
    assert.matches("xavier_uniform_: fan in and fan out cannot be computed for a tensor with " ..
                   "fewer than 2 dimensions (shape [5])",
                   error_of(nn.init.xavier_uniform_, mg.empty(5)), 1, true)
    assert.matches("mode must be \"fan_in\" or \"fan_out\"",
                   error_of(nn.init.kaiming_normal_, mg.empty(2, 2), {mode = "in"}), 1, true)
    assert.matches("kaiming_uniform_: unsupported nonlinearity 'foo'",
                   error_of(nn.init.kaiming_uniform_, mg.empty(2, 2), {nonlinearity = "foo"}), 1, true)
    assert.matches("zeros_: expects a tensor, got nil", error_of(nn.init.zeros_), 1, true)
  end)
end)

describe("layers", function()
  it("computes Linear as x W^T + b", function()
    local fc = nn.Linear(3, 2, {dtype = "float64"})
    local x = mg.randn(4, 3, "float64")
    local W, b, X = fc.weight:totable(), fc.bias:totable(), x:totable()
    local expected = {}
    for i = 1, 4 do
      expected[i] = {}
      for j = 1, 2 do
        local s = b[j]
        for k = 1, 3 do s = s + X[i][k] * W[j][k] end
        expected[i][j] = s
      end
    end
    close(fc(x), expected, 1e-12, 1e-12)
    assert.same({2}, fc(mg.randn(3, "float64")):shape())
    assert.is_nil(nn.Linear(3, 2, {bias = false}).bias)
  end)

  it("explains a wrong input feature size in Linear", function()
    local fc = nn.Linear(784, 10)
    local err = error_of(function() return fc(mg.zeros(2, 100)) end)
    assert.matches("Linear: expected input with 784 features, got 100", err, 1, true)
    assert.matches("Linear: in_features must be a positive integer, got 0",
                   error_of(nn.Linear, 0, 3), 1, true)
    assert.matches("Linear: unknown option 'bais' (known: bias, dtype)",
                   error_of(nn.Linear, 2, 3, {bais = false}), 1, true)
  end)

  it("makes Dropout the identity in eval mode and scales kept values in training", function()
    local d = nn.Dropout(0.5)
    local x = mg.ones(1000)
    local y = d(x)
    local kept, zeros = 0, 0
    for _, v in ipairs(y:totable()) do
      if v == 0 then zeros = zeros + 1 else kept = kept + 1; assert.equal(2, v) end
    end
    assert.is_true(zeros > 400 and kept > 400)
    d:eval()
    assert.same(x:totable(), d(x):totable())
    assert.matches("Dropout: p must be a probability in [0, 1], got 1.5",
                   error_of(nn.Dropout, 1.5), 1, true)
  end)

  it("runs the activations elementwise", function()
    local xs = {-2, -0.5, 0, 0.5, 2}
    local x = mg.tensor(xs, "float64")
    local function each(f)
      local out = {}
      for i, v in ipairs(xs) do out[i] = f(v) end
      return out
    end
    local function sigmoid(v) return 1 / (1 + math.exp(-v)) end
    close(nn.ReLU()(x), each(function(v) return math.max(v, 0) end))
    close(nn.Tanh()(x), each(function(v) return (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end),
          1e-12)
    close(nn.Sigmoid()(x), each(sigmoid), 1e-12)
    close(nn.SiLU()(x), each(function(v) return v * sigmoid(v) end), 1e-12)
    close(nn.LeakyReLU(0.2)(x), each(function(v) return v > 0 and v or 0.2 * v end), 1e-12)
    close(nn.ELU()(x), each(function(v) return v > 0 and v or math.exp(v) - 1 end), 1e-12)
    close(nn.GELU({approximate = "tanh"})(x), each(function(v)
      return 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ^ 3)))
    end), 1e-9)
    close(nn.Identity()(x), xs)
  end)

  it("normalises rows with Softmax and LogSoftmax", function()
    local x = mg.tensor({{1, 2, 3}, {0, 0, 0}}, "float64")
    local e = {math.exp(1), math.exp(2), math.exp(3)}
    local z = e[1] + e[2] + e[3]
    close(nn.Softmax(2)(x), {{e[1] / z, e[2] / z, e[3] / z}, {1 / 3, 1 / 3, 1 / 3}}, 1e-12)
    close(nn.LogSoftmax()(x), {{1 - math.log(z), 2 - math.log(z), 3 - math.log(z)},
                               {-math.log(3), -math.log(3), -math.log(3)}}, 1e-12)
  end)

  it("flattens everything but the batch dim by default", function()
    local x = mg.zeros(2, 3, 4, 5)
    assert.same({2, 60}, nn.Flatten()(x):shape())
    assert.same({2, 12, 5}, nn.Flatten(2, 3)(x):shape())
  end)

  it("looks up Embedding rows by 1-based int64 ids, padding rows at zero without grad", function()
    local emb = nn.Embedding(5, 2)
    local W = emb.weight:totable()
    local y = emb(mg.tensor({{5, 1}}, "int64"))
    assert.same({{W[5], W[1]}}, y:totable())
    local padded = nn.Embedding(4, 3, {padding_idx = -1})
    assert.equal(4, padded.padding_idx)
    assert.same({0, 0, 0}, padded.weight:totable()[4])
    local out = padded(mg.tensor({4, 2, 4}, "int64"))
    out:backward(mg.ones_like(out))
    assert.same({{0, 0, 0}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}}, padded.weight.grad:totable())
  end)

  it("gives LayerNorm outputs mean 0 and variance 1 over the normalized dims", function()
    local ln = nn.LayerNorm(6, {dtype = "float64"})
    local y = ln(mg.randn(4, 6, "float64") * 3 + 2):totable()
    for i = 1, 4 do
      local s = stats(y[i])
      close(s.mean, 0, 1e-9)
      close(s.std * math.sqrt(5 / 6), 1, 1e-4)    -- biased variance
    end
    assert.matches("LayerNorm: expected input ending in [6], got shape [4,5]",
                   error_of(function() return ln(mg.zeros(4, 5, "float64")) end), 1, true)
  end)

  it("updates BatchNorm1d's running statistics in training and uses them in eval", function()
    local bn = nn.BatchNorm1d(2, {dtype = "float64"})
    local x = mg.tensor({{1, 10}, {3, 20}, {5, 60}}, "float64")
    local y = bn(x):totable()
    close(stats({y[1][1], y[2][1], y[3][1]}).mean, 0, 1e-12)
    -- running = 0.9 * old + 0.1 * batch (variance unbiased: 4 and 700)
    close(bn.running_mean, {0.1 * 3, 0.1 * 30}, 1e-12)
    close(bn.running_var, {0.9 + 0.1 * 4, 0.9 + 0.1 * 700}, 1e-12)
    assert.equal(1, bn.num_batches_tracked:item())
    bn:eval()
    local rm, rv = bn.running_mean:totable(), bn.running_var:totable()
    close(bn(x), {
      {(1 - rm[1]) / math.sqrt(rv[1] + 1e-5), (10 - rm[2]) / math.sqrt(rv[2] + 1e-5)},
      {(3 - rm[1]) / math.sqrt(rv[1] + 1e-5), (20 - rm[2]) / math.sqrt(rv[2] + 1e-5)},
      {(5 - rm[1]) / math.sqrt(rv[1] + 1e-5), (60 - rm[2]) / math.sqrt(rv[2] + 1e-5)},
    }, 1e-12)
    assert.equal(1, bn.num_batches_tracked:item())
  end)

  it("explains BatchNorm1d inputs of the wrong rank or width", function()
    local bn = nn.BatchNorm1d(16)
    assert.matches("BatchNorm1d: expected input with 16 features (dim 2), got 10",
                   error_of(function() return bn(mg.zeros(4, 10)) end), 1, true)
    assert.matches("BatchNorm1d: expected 2-D [N, C] or 3-D [N, C, L] input, got shape [4]",
                   error_of(function() return bn(mg.zeros(4)) end), 1, true)
  end)

  it("forwards a loss module's options to F and keeps class weights as buffers", function()
    local F = require "moongrad.functional"
    local logits = mg.randn(5, 3, "float64")
    local targets = mg.tensor({1, 3, 2, 2, 1}, "int64")
    local opts = {label_smoothing = 0.1}
    assert.equal(F.cross_entropy(logits, targets, opts):item(),
                 nn.CrossEntropyLoss(opts)(logits, targets):item())
    local a, b = mg.randn(4, "float64"), mg.randn(4, "float64")
    assert.equal(F.mse_loss(a, b):item(), nn.MSELoss()(a, b):item())
    assert.equal(F.l1_loss(a, b, {reduction = "sum"}):item(),
                 nn.L1Loss({reduction = "sum"})(a, b):item())
    local w = mg.tensor({1, 2, 3}, "float64")
    local ce = nn.CrossEntropyLoss({weight = w})
    assert.same({"weight"}, sorted_keys(ce:state_dict()))
    assert.equal(F.cross_entropy(logits, targets, {weight = w}):item(), ce(logits, targets):item())
    local logp = F.log_softmax(logits, -1)
    assert.equal(F.nll_loss(logp, targets, {ignore_index = 2}):item(),
                 nn.NLLLoss({ignore_index = 2})(logp, targets):item())
    assert.equal(F.smooth_l1_loss(a, b, {beta = 0.5}):item(), nn.SmoothL1Loss({beta = 0.5})(a, b):item())
    assert.equal(F.huber_loss(a, b, {delta = 2}):item(), nn.HuberLoss({delta = 2})(a, b):item())
    local y = mg.tensor({0, 1, 1, 0}, "float64")
    assert.equal(F.binary_cross_entropy(a:sigmoid(), y):item(), nn.BCELoss()(a:sigmoid(), y):item())
    local pw = mg.tensor({3}, "float64")
    local bce = nn.BCEWithLogitsLoss({pos_weight = pw, reduction = "sum"})
    assert.equal(F.binary_cross_entropy_with_logits(a, y, {pos_weight = pw, reduction = "sum"}):item(),
                 bce(a, y):item())
    assert.same({"pos_weight"}, sorted_keys(bce:state_dict()))
    assert.matches("MSELoss: unknown option 'reduce'",
                   error_of(nn.MSELoss, {reduce = "sum"}), 1, true)
  end)
end)

describe("containers", function()
  it("chains a Sequential's children and indexes them like an array", function()
    local a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    local seq = nn.Sequential(a, b, c)
    assert.equal(3, #seq)
    assert.equal(a, seq[1])
    assert.equal(c, seq[-1])
    local seen = {}
    for i, m in ipairs(seq) do seen[i] = m end
    assert.same({a, b, c}, seen)
    seq:append(nn.Sigmoid())
    assert.equal(4, #seq)
    seq[2] = nn.Tanh()
    assert.equal("Tanh", seq[2]:class_name())
    assert.equal(nn.Sequential({a, b}):num_parameters(), 9)
    assert.matches("Sequential: argument 2 is a number, expected a module",
                   error_of(nn.Sequential, a, 3), 1, true)
  end)

  it("runs a Sequential forward in order", function()
    local seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    local x = mg.randn(4, 2)
    assert.same(seq[3](seq[2](seq[1](x))):totable(), seq(x):totable())
  end)

  it("keeps a ModuleList's modules in order with append and extend", function()
    local list = nn.ModuleList({nn.Linear(1, 1)})
    list:append(nn.ReLU()):extend({nn.Linear(1, 2), nn.Tanh()})
    assert.equal(4, #list)
    local kinds = {}
    for i, m in ipairs(list) do kinds[i] = m:class_name() end
    assert.same({"Linear", "ReLU", "Linear", "Tanh"}, kinds)
    assert.same({"1.weight", "1.bias", "3.weight", "3.bias"}, names_of(list:named_parameters()))
    assert.matches("ModuleList: append's argument is a string, expected a module",
                   error_of(function() list:append("relu") end), 1, true)
    local Blocks = nn.ModuleList:extend("Blocks")     -- extend on the class makes a class
    assert.is_true(Blocks({nn.ReLU()}):is_a(nn.ModuleList))
  end)

  it("keeps a ModuleDict's constructor names sorted and later ones in order", function()
    local d = nn.ModuleDict({relu = nn.ReLU(), fc = nn.Linear(2, 2)})
    d.head = nn.Linear(2, 1)
    assert.same({"fc", "relu", "head"}, d:keys())
    local seen = {}
    for name, m in pairs(d) do seen[#seen + 1] = name .. "=" .. m:class_name() end
    assert.same({"fc=Linear", "relu=ReLU", "head=Linear"}, seen)
    assert.equal(3, #d)
    assert.is_true(d:contains("relu"))
    assert.same({"fc.weight", "fc.bias", "head.weight", "head.bias"},
                names_of(d:named_parameters()))
    assert.matches("cannot register submodule 'keys'",
                   error_of(function() d.keys = nn.ReLU() end), 1, true)
  end)
end)

describe("scripts/xor_mlp.lua", function()
  it("learns XOR with a hand-written loop, the loss falling", function()
    local p = io.popen(BUILD .. "/moongrad scripts/xor_mlp.lua 2>&1")
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    local losses, last = {}, nil
    for line in out:gmatch("[^\n]+") do
      local l = line:match("loss (%d+%.%d+)")
      if l then losses[#losses + 1] = tonumber(l) end
      last = line
    end
    assert.is_true(#losses >= 5, out)
    assert.is_true(losses[#losses] < losses[1] / 10, out)
    assert.is_true(losses[#losses] < 0.05, out)
    assert.equal("predictions: 0 1 1 0 (expected 0 1 1 0)", last)
  end)
end)
