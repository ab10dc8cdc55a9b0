-- Help for moongrad.nn (`nn`): the module, nn.Module and its methods, the
-- layers, containers and losses, nn.init, nn.utils and the PyTorch bridge.
-- The form of an entry is described in moongrad/help.lua.

-- The options RNN, LSTM and GRU share, after the layer's own first row
-- (if any), with what proj_size means for the layer.
local function recurrent_opts(first, proj_size)
  local rows = { first }
  for _, row in ipairs({
    { "num_layers", "1", "stacked layers, each fed the previous one's output" },
    { "bias", "true", "false: no bias_ih and bias_hh" },
    { "batch_first", "true", "false: x and out are [T, N, ...] (PyTorch's default)" },
    { "dropout", "0", "dropout probability on the output of every layer but the last, in training" },
    { "bidirectional", "false", "true adds a reverse direction per layer; outputs concatenated" },
    { "proj_size", "0", proj_size },
    { "dtype", '"float32"', 'the parameters\' dtype: "float32" or "float64"' },
  }) do
    rows[#rows + 1] = row
  end
  return rows
end

return {
  nn = {
    sig = 'local nn = require "moongrad.nn"',
    doc = [[Modules: layers that hold parameters, containers of modules, and losses as objects, plus nn.init (weight initialisation) and nn.utils. A module is called like a function (net(x) runs its forward), keeps its parameters, buffers and submodules by name in the order they were assigned, and switches between training and eval mode. Layers keep PyTorch's parameter names, shapes, initialisation and maths, so state dicts load both ways; the differences are Lua's: sequence layers are batch first by default, container children are numbered from 1, and class labels and embedding ids are 1-based. Write your own layers with nn.Module:extend.]],
    groups = { "Module", "Layers", "Convolution and pooling", "Normalization", "Recurrent",
               "Attention", "Activations", "Losses", "Containers", "Init and utils",
               "Bridging PyTorch" },
    example = [[
local net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
local y = net(mg.randn(3, 4))
print(table.concat(y:shape(), "x"), net:num_parameters())   --> 3x2  58
local loss = nn.CrossEntropyLoss()(y, mg.tensor({1, 2, 2}, "int64"))
loss:backward()
print(net[1].weight.grad ~= nil)                             --> true]],
    see = { "nn.Module", "nn.Module:extend", "nn.Sequential", "nn.init", "F" },
  },

  ---------------------------------------------------------------------------
  -- nn.Module and its methods

  ["nn.Module"] = {
    sig = { "nn.Module()", "local Cls = nn.Module:extend(name)" },
    doc = [[The base class of every layer, container and loss; extend it (nn.Module:extend) to write your own. Assigning a field of a module decides what it is: a leaf tensor that requires grad becomes a parameter, a module becomes a submodule, anything else is a plain attribute; tensors to save but not train go through register_buffer, and a name already registered keeps its kind (assigning nil unregisters it). Calling a module runs its forward; nn.Module() itself is an empty module (no forward) to hang children on. Names may not shadow a method or the training flag, and a parameter must be a leaf tensor (t:detach():requires_grad() for the result of an op).]],
    example = [[
local m = nn.Module()
m.fc = nn.Linear(2, 3)                  -- a module: a child
m.scale = mg.ones(1):requires_grad()    -- a leaf requiring grad: a parameter
m.note = "hi"                           -- anything else: a plain attribute
print(table.concat(m:state_dict_names(), " "))   --> scale fc.weight fc.bias
print(m.training, #m:children())                 --> true  1]],
    group = "Module",
    see = { "nn.Module:extend", "nn.Module:parameters", "nn.Module:state_dict" },
  },

  ["nn.Module:extend"] = {
    sig = "local Cls = Base:extend(name)",
    doc = [[Makes a new module class called name that inherits from Base (nn.Module, or any layer class such as nn.Linear); this is how you write your own layers. Calling the class, Cls(...), makes an empty module in training mode and then runs Cls:init(...); define init to create parameters and submodules by assigning fields of self, and forward for what calling an instance does. A class extending one whose init does work calls it first, by name: Cls.super.init(self, ...) (never self.super, which names the wrong class on an instance of a further subclass). Raises when called on an instance or without a string name (a ModuleList instance has an extend of its own, which appends).]],
    example = [[
local MLP = nn.Module:extend("MLP")
function MLP:init(d_in, d_hidden, d_out)
  self.fc1 = nn.Linear(d_in, d_hidden)   -- submodules register by assignment
  self.fc2 = nn.Linear(d_hidden, d_out)
  self.drop = nn.Dropout(0.1)
end
function MLP:forward(x) return self.fc2(self.drop(self.fc1(x):relu())) end
local net = MLP(4, 8, 2)
print(net:class_name(), table.concat(net(mg.randn(3, 4)):shape(), "x"), net:num_parameters())   --> MLP  3x2  58]],
    see = { "nn.Module:init", "nn.Module:forward", "nn.Module:extra_repr" },
  },

  ["nn.Module:init"] = {
    sig = "function Cls:init(...) ... end",
    doc = [[The constructor a module class defines: Cls(...) makes the empty module (registries ready, training mode on) and calls self:init(...) with the same arguments, then returns the module. nn.Module's own init does nothing, so a class extending nn.Module directly never calls a parent constructor; a class extending a layer that does work in init calls it first with Cls.super.init(self, ...) or Parent.init(self, ...). Its return values are ignored.]],
    example = [[
local Scaled = nn.Linear:extend("Scaled")
function Scaled:init(d_in, d_out, s)
  Scaled.super.init(self, d_in, d_out)   -- Linear's init: weight and bias
  self.s = s                             -- a number: a plain attribute
end
function Scaled:forward(x) return nn.Linear.forward(self, x) * self.s end
local m = Scaled(3, 2, 10)
print(m:class_name(), table.concat(m(mg.randn(4, 3)):shape(), "x"), #m:parameters())   --> Scaled  4x2  2]],
    see = { "nn.Module:extend", "nn.Module:forward" },
  },

  ["nn.Module:forward"] = {
    sig = { "function Cls:forward(...) ... end", "net(...)" },
    doc = [[What calling a module computes: net(...) calls net:forward(...) with the same arguments and returns all its results (a layer may return several, as LSTM does). Each class defines its own; nn.Module's raises "forward is not defined", as do ModuleList, ModuleDict and a bare nn.Module(), which only hold modules. Use self.training inside forward to behave differently in training and eval mode.]],
    example = [[
local Pair = nn.Module:extend("Pair")
function Pair:init() self.fc = nn.Linear(2, 2) end
function Pair:forward(a, b) return self.fc(a), self.fc(b) end
local p = Pair()
local ya, yb = p(mg.randn(1, 2), mg.randn(5, 2))
print(ya:size(1), yb:size(1))   --> 1  5]],
    see = { "nn.Module:extend", "nn.Module:train" },
  },

  ["nn.Module:extra_repr"] = {
    sig = { "net:extra_repr()", "function Cls:extra_repr() return text end" },
    doc = [[The text printed between a module's parentheses by tostring(net) and print(net), such as "in=2, out=8, bias=true" for a Linear; nn.Module's is the empty string. Define it in your own class to show its settings. The printout also lists each submodule and each parameter of a module with children, and the parameter counts.]],
    example = [[
local Gain = nn.Module:extend("Gain")
function Gain:init(g) self.g = g end
function Gain:forward(x) return x * self.g end
function Gain:extra_repr() return "g=" .. self.g end
print(Gain(3))                     --> Gain(g=3)
print(nn.Linear(2, 8):extra_repr())   --> in=2, out=8, bias=true]],
    see = { "nn.Module:extend" },
  },

  ["nn.Module:class_name"] = {
    sig = "net:class_name()",
    doc = [[The name the module's class was given by extend ("Linear", "Sequential", or your own), as a string.]],
    example = [[
print(nn.Conv2d(1, 2, 3):class_name())   --> Conv2d]],
    see = { "nn.Module:is_a", "nn.Module:extend" },
  },

  ["nn.Module:is_a"] = {
    sig = "net:is_a(cls)",
    doc = [[Whether the module is an instance of class cls or of a class extending it (cls is the class table itself, such as nn.Linear, not a name). Every module is_a nn.Module.]],
    example = [[
local bn = nn.BatchNorm2d(4)
print(bn:is_a(nn.BatchNorm2d), bn:is_a(nn.BatchNorm1d), bn:is_a(nn.Linear))   --> true  true  false]],
    see = { "nn.Module:class_name", "nn.is_module" },
  },

  ["nn.Module:is_module"] = { alias = "nn.is_module" },

  ["nn.Module:register_parameter"] = {
    sig = "net:register_parameter(name, t)",
    doc = [[Registers the leaf tensor t as a parameter called name, for names computed at run time or to register a tensor that does not require grad (a frozen parameter, which plain assignment would make an attribute). Replaces a parameter of that name and takes the name away from a buffer, child or attribute that had it; t = nil unregisters it. Raises when t is the result of an op (not a leaf) or when name is a method's name or "training".]],
    example = [[
local m = nn.Module()
for i = 1, 2 do m:register_parameter("w" .. i, mg.zeros(3)) end   -- frozen: no grad
print(#m:parameters(), m.w1:is_requires_grad())   --> 2  false
m:register_parameter("w2", nil)
print(#m:parameters())                            --> 1]],
    see = { "nn.Module:register_buffer", "nn.Module:add_module", "nn.Module:parameters" },
  },

  ["nn.Module:register_buffer"] = {
    sig = "net:register_buffer(name, t [, opts])",
    doc = [[Registers tensor t as a buffer called name: state that state_dict saves and to()/double() convert, but that parameters() leaves out, so optimizers do not train it (BatchNorm's running statistics are buffers). After registering, net.name = t2 replaces the buffer; t = nil unregisters it. Raises when t is not a tensor or nil, or when name is a method's name or "training".]],
    opts = {
      { "persistent", "true", "false leaves the buffer out of state_dict (it is still in buffers())" },
    },
    example = [[
local m = nn.Module()
m:register_buffer("mean", mg.zeros(3))
m:register_buffer("cache", mg.zeros(3), {persistent = false})
print(#m:buffers(), table.concat(m:state_dict_names(), " "))   --> 2  mean]],
    see = { "nn.Module:buffers", "nn.Module:register_parameter", "nn.Module:state_dict" },
  },

  ["nn.Module:add_module"] = {
    sig = "net:add_module(name, m)",
    doc = [[Registers module m as a child called name, the same as net[name] = m but usable with names computed at run time. m = nil unregisters the child. Raises when m is not a module or nil, or when name is a method's name or "training".]],
    example = [[
local m = nn.Module()
for i = 1, 3 do m:add_module("layer" .. i, nn.Linear(2, 2)) end
print(#m:children(), m.layer3:class_name())   --> 3  Linear]],
    see = { "nn.Module:children", "nn.ModuleList", "nn.ModuleDict" },
  },

  ["nn.Module:parameters"] = {
    sig = "net:parameters([recurse])",
    doc = [[An array of the module's parameters, its own first and then its submodules' depth first, in registration order; what an optimizer is given. A tensor reached by two paths (a tied weight) appears once. recurse = false gives only the module's own parameters (default true).]],
    example = [[
local net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
local ps = net:parameters()
print(#ps, table.concat(ps[1]:shape(), "x"))   --> 4  3x4
local opt = optim.SGD(ps, {lr = 0.1})]],
    see = { "nn.Module:named_parameters", "nn.Module:num_parameters" },
  },

  ["nn.Module:named_parameters"] = {
    sig = "for name, p in net:named_parameters([recurse]) do ... end",
    doc = [[An iterator for a generic for over the module's parameters as dotted name and tensor ("fc1.weight", "1.bias"), in the order parameters() gives them, each tensor once under the first name that reaches it. recurse = false yields only the module's own (default true).]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
local names = {}
for name, p in net:named_parameters() do names[#names + 1] = name end
print(table.concat(names, " "))   --> 1.weight 1.bias 3.weight 3.bias]],
    see = { "nn.Module:parameters", "nn.Module:state_dict_names" },
  },

  ["nn.Module:buffers"] = {
    sig = "net:buffers([recurse])",
    doc = [[An array of the module's buffers (tensors registered with register_buffer, including non-persistent ones), its own first and then its submodules' depth first, each once. recurse = false gives only the module's own (default true).]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
print(#net:buffers(), #net:buffers(false))   --> 3  0]],
    see = { "nn.Module:named_buffers", "nn.Module:register_buffer" },
  },

  ["nn.Module:named_buffers"] = {
    sig = "for name, t in net:named_buffers([recurse]) do ... end",
    doc = [[An iterator for a generic for over the module's buffers as dotted name and tensor, in the order buffers() gives them, each tensor once. recurse = false yields only the module's own (default true).]],
    example = [[
local names = {}
for name in nn.Sequential(nn.BatchNorm1d(3)):named_buffers() do names[#names + 1] = name end
print(table.concat(names, " "))   --> 1.running_mean 1.running_var 1.num_batches_tracked]],
    see = { "nn.Module:buffers", "nn.Module:named_parameters" },
  },

  ["nn.Module:children"] = {
    sig = "net:children()",
    doc = [[An array of the module's direct submodules in registration order, each once (not the module itself, not grandchildren).]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Tanh()))
print(#net:children(), #net:modules())   --> 2  5]],
    see = { "nn.Module:named_children", "nn.Module:modules" },
  },

  ["nn.Module:named_children"] = {
    sig = "for name, m in net:named_children() do ... end",
    doc = [[An iterator for a generic for over the module's direct submodules as name and module, in registration order, each module once.]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
for name, m in net:named_children() do print(name, m:class_name()) end
--> 1  Linear
--> 2  ReLU]],
    see = { "nn.Module:children", "nn.Module:named_modules" },
  },

  ["nn.Module:modules"] = {
    sig = "net:modules()",
    doc = [[An array of every module in the tree, the module itself first and then its descendants depth first, each once.]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1))
local names = {}
for _, m in ipairs(net:modules()) do names[#names + 1] = m:class_name() end
print(table.concat(names, " "))   --> Sequential Linear Dropout]],
    see = { "nn.Module:named_modules", "nn.Module:apply", "nn.Module:children" },
  },

  ["nn.Module:named_modules"] = {
    sig = "for name, m in net:named_modules() do ... end",
    doc = [[An iterator for a generic for over every module in the tree as dotted path and module, the module itself first under the name "" and then its descendants depth first, each once.]],
    example = [==[
local net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
local names = {}
for name in net:named_modules() do names[#names + 1] = "<" .. name .. ">" end
print(table.concat(names, " "))   --> <> <1> <2> <2.1>]==],
    see = { "nn.Module:modules", "nn.Module:named_children" },
  },

  ["nn.Module:apply"] = {
    sig = "net:apply(fn)",
    doc = [[Calls fn(m) on every module of the tree, children first (depth first) and the module itself last, and returns net; the usual way to initialise all layers of one kind. Raises when fn is not a function.]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
net:apply(function(m)
  if m:is_a(nn.Linear) then nn.init.xavier_uniform_(m.weight); nn.init.zeros_(m.bias) end
end)
print(net[3].bias:item())   --> 0.0]],
    see = { "nn.Module:modules", "nn.init" },
  },

  ["nn.Module:train"] = {
    sig = "net:train([mode])",
    doc = [[Sets training mode (mode = true, the default) or eval mode (false) on the module and every descendant, and returns net. The flag, net.training, changes what Dropout and BatchNorm do (and the dropout of attention and recurrent layers); modules start in training mode. Raises when mode is not a boolean.]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
net:eval()
print(net.training, net[2].training)   --> false  false
print(net:train().training)            --> true]],
    see = { "nn.Module:eval" },
  },

  ["nn.Module:eval"] = {
    sig = "net:eval()",
    doc = [[Puts the module and every descendant in eval mode (net:train(false)) and returns net: Dropout passes its input through and BatchNorm uses its running statistics. It does not turn off autograd; wrap inference in mg.no_grad for that.]],
    example = [[
local d = nn.Dropout(0.5):eval()
print(d(mg.ones(4)):sum():item())   --> 4.0]],
    see = { "nn.Module:train", "mg.no_grad" },
  },

  ["nn.Module:zero_grad"] = {
    sig = "net:zero_grad([opts])",
    doc = [[Clears the gradients of every parameter before the next backward: by default it drops them (p.grad = nil), so backward writes fresh ones; {set_to_none = false} zeroes the existing gradients in place instead. Returns nothing. Gradients accumulate across backward calls, as in PyTorch, so call this (or the optimizer's zero_grad) once per step.]],
    opts = {
      { "set_to_none", "true", "false zeroes each existing grad in place instead of dropping it" },
    },
    example = [[
local lin = nn.Linear(3, 1)
lin(mg.randn(2, 3)):sum():backward()
lin:zero_grad()
print(lin.weight.grad)   --> nil]],
    see = { "nn.Module:parameters", "optim.Optimizer:zero_grad" },
  },

  ["nn.Module:num_parameters"] = {
    sig = "net:num_parameters([opts])",
    doc = [[The number of scalars in the module's parameters (each tensor counted once), as an integer. {trainable = true} counts only the parameters that require grad.]],
    opts = {
      { "trainable", "false", "count only parameters that require grad" },
    },
    example = [[
local net = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 1))
print(net:num_parameters())                      --> 61
net[1].weight:requires_grad(false)               -- freeze it
print(net:num_parameters({trainable = true}))    --> 11]],
    see = { "nn.Module:parameters" },
  },

  ["nn.Module:clone"] = {
    sig = "net:clone()",
    doc = [[A deep copy of the module, as Python's copy.deepcopy makes one: new parameter and buffer tensors with the same values (parameters are new leaves that require grad as the originals do, with a copy of any gradient), submodules and plain tables copied recursively, and whatever is shared inside the original (a tied weight) shared once in the copy. Functions and tables with a metatable are shared, not copied. The copy is in the original's mode, built without running init, and tied to the original in nothing.]],
    example = [[
local a = nn.Linear(2, 2)
local b = a:clone()
print((a.weight - b.weight):abs():max():item(), rawequal(a.weight, b.weight))   --> 0.0  false
nn.init.zeros_(b.weight)
print(a.weight:abs():sum():item() > 0)   --> true]],
    see = { "nn.TransformerEncoder", "nn.Module:state_dict" },
  },

  ["nn.Module:state_dict"] = {
    sig = "net:state_dict([opts])",
    doc = [[A table of dotted name = tensor holding every parameter and persistent buffer of the tree, detached from the graph but sharing storage with the module; mg.save writes it as it is. Unlike parameters(), a tensor shared by two modules appears under each name. {torch = true} names container children from 0 as PyTorch does ("0.weight" instead of "1.weight"). Layers whose names match another variant's maths (the transformer layers) record which variant they are in the table's metadata, which mg.save keeps, so loading into the wrong variant is refused.]],
    opts = {
      { "torch", "false", "true: PyTorch's names (Sequential and ModuleList children from 0)" },
    },
    example = [[
local net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
local path = os.tmpname()
mg.save(path, net:state_dict())
net:load_state_dict(mg.load(path))
os.remove(path)
print(table.concat(net:state_dict()["1.weight"]:shape(), "x"))   --> 3x2]],
    see = { "nn.Module:load_state_dict", "nn.Module:state_dict_names", "mg.save" },
  },

  ["nn.Module:state_dict_names"] = {
    sig = "net:state_dict_names([opts])",
    doc = [[The names of state_dict() as an array, in the module's order (parameters then persistent buffers of each module, modules depth first), since a Lua table has no order of its own. {torch = true} gives PyTorch's names.]],
    opts = {
      { "torch", "false", "true: PyTorch's names (Sequential and ModuleList children from 0)" },
    },
    example = [[
local net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
print(table.concat(net:state_dict_names(), " "))                 --> 1.weight 1.bias 3.weight 3.bias
print(table.concat(net:state_dict_names({torch = true}), " "))   --> 0.weight 0.bias 2.weight 2.bias]],
    see = { "nn.Module:state_dict" },
  },

  ["nn.Module:load_state_dict"] = {
    sig = "net:load_state_dict(sd [, opts])",
    doc = [[Copies the tensors of sd (name = tensor, as state_dict makes or mg.load reads) into the module's parameters and buffers in place, under no_grad, converting between float dtypes (float16 or bfloat16 into float32, say) and between integer ones. Nothing is copied unless everything checks: each entry must be a tensor of the module's shape and kind, a recorded variant must match, and when strict, sd must hold exactly the module's names; otherwise it raises a message listing what is missing, unexpected or of the wrong shape. PyTorch's names (children from 0) are refused with a hint unless {torch = true} is given. Returns {missing = {names}, unexpected = {names}} (both empty when strict).]],
    opts = {
      { "strict", "true", "false skips names missing from sd and entries the module does not have" },
      { "torch", "false", "true reads PyTorch's names (Sequential and ModuleList children from 0)" },
    },
    example = [[
local a, b = nn.Linear(2, 3), nn.Linear(2, 3)
b:load_state_dict(a:state_dict())
print((a.weight - b.weight):abs():max():item())   --> 0.0
local r = b:load_state_dict({weight = mg.zeros(3, 2), extra = mg.ones(1)}, {strict = false})
print(r.missing[1], r.unexpected[1], b.weight:sum():item())   --> bias  extra  0.0]],
    see = { "nn.Module:state_dict", "nn.Module:prepare_load_state_dict", "mg.load" },
  },

  ["nn.Module:prepare_load_state_dict"] = {
    sig = "local apply = net:prepare_load_state_dict(sd [, opts])",
    doc = [[Checks sd exactly as load_state_dict does and readies every tensor to copy, changing nothing; raises what load_state_dict would. The returned function apply() then copies them in (it allocates nothing and cannot fail) and returns what load_state_dict returns. Use it to check several parts of a state (a model and its optimizer, say) before changing any of them, as moongrad.checkpoint does.]],
    opts = {
      { "strict", "true", "false skips names missing from sd and entries the module does not have" },
      { "torch", "false", "true reads PyTorch's names (Sequential and ModuleList children from 0)" },
    },
    example = [[
local a, b = nn.Linear(2, 3), nn.Linear(2, 3)
local apply = b:prepare_load_state_dict(a:state_dict())   -- checked; b unchanged
local r = apply()
print(#r.missing, (a.weight - b.weight):abs():max():item())   --> 0  0.0]],
    see = { "nn.Module:load_state_dict", "checkpoint" },
  },

  ["nn.Module:to"] = {
    sig = "net:to(dtype)",
    doc = [[Converts every floating parameter and buffer of the tree to dtype ("float32", "float64", or "float16"/"bfloat16" to store a half-precision copy) and returns net; integer buffers such as num_batches_tracked are left alone. Parameters become new leaf tensors, so give an optimizer net:parameters() again after converting. Half parameters cannot require grad and a forward on them is refused until :float(), which restores requires_grad as it was. Raises for any other dtype.]],
    example = [[
local lin = nn.Linear(2, 2):to("float64")
print(lin.weight:dtype(), lin(mg.randn(1, 2, "float64")):dtype())   --> float64  float64
lin:half()
print(lin.weight:dtype(), lin:float().weight:is_requires_grad())    --> float16  true]],
    see = { "nn.Module:double", "nn.Module:float", "nn.Module:half", "nn.Module:bfloat16" },
  },

  ["nn.Module:double"] = {
    sig = "net:double()",
    doc = [[net:to("float64"): converts the floating parameters and buffers to float64 and returns net. Parameters become new tensors; give an optimizer the new parameters().]],
    example = [[
local lin = nn.Linear(2, 2):double()
print(lin.bias:dtype())   --> float64]],
    see = { "nn.Module:to" },
  },

  ["nn.Module:float"] = {
    sig = "net:float()",
    doc = [[net:to("float32"): converts the floating parameters and buffers to float32 and returns net; after half() or bfloat16() it brings back the parameters' requires_grad. Parameters become new tensors; give an optimizer the new parameters().]],
    example = [[
local lin = nn.Linear(2, 2):half():float()
print(lin.weight:dtype(), lin.weight:is_requires_grad())   --> float32  true]],
    see = { "nn.Module:to", "nn.Module:half" },
  },

  ["nn.Module:half"] = {
    sig = "net:half()",
    doc = [[net:to("float16"): converts the floating parameters and buffers to float16 and returns net, to save a half-size checkpoint. float16 is a storage dtype: a forward on the converted module is refused until :float() or :double(), and its parameters do not require grad meanwhile.]],
    example = [[
local lin = nn.Linear(2, 2):half()
local path = os.tmpname()
mg.save(path, lin:state_dict())
print(mg.load(path).weight:dtype())   --> float16
os.remove(path)]],
    see = { "nn.Module:to", "nn.Module:bfloat16", "nn.Module:float" },
  },

  ["nn.Module:bfloat16"] = {
    sig = "net:bfloat16()",
    doc = [[net:to("bfloat16"): converts the floating parameters and buffers to bfloat16 and returns net, to save a half-size checkpoint. As with half(), a forward is refused until :float() and the parameters do not require grad meanwhile.]],
    example = [[
local lin = nn.Linear(2, 2):bfloat16()
print(lin.weight:dtype())   --> bfloat16]],
    see = { "nn.Module:to", "nn.Module:half" },
  },

  ---------------------------------------------------------------------------
  -- Layers

  ["nn.Linear"] = {
    sig = "nn.Linear(in_features, out_features [, opts])",
    doc = [[A fully connected layer, y = x W^T + b, on inputs [..., in_features] giving [..., out_features]. Parameters: weight [out_features, in_features] and bias [out_features], both drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)) as PyTorch's are (kaiming_uniform with a = sqrt(5)). Raises when the input's last dim is not in_features.]],
    opts = {
      { "bias", "true", "false: no bias parameter" },
      { "dtype", '"float32"', 'the parameters\' dtype: "float32" or "float64"' },
    },
    example = [[
local fc = nn.Linear(4, 3)
local y = fc(mg.randn(2, 5, 4))
print(table.concat(y:shape(), "x"), table.concat(fc.weight:shape(), "x"))   --> 2x5x3  3x4
print(fc)   --> Linear(in=4, out=3, bias=true)  -- 15 params]],
    group = "Layers",
    instance = function() return require("moongrad.nn").Linear(2, 1) end,
    methods_of = "nn.Module",
    see = { "F.linear", "nn.Linear:reset_parameters", "nn.Sequential" },
  },

  ["nn.Linear:reset_parameters"] = {
    sig = "fc:reset_parameters()",
    doc = [[Draws weight and bias again as the constructor does (U(-1/sqrt(in_features), 1/sqrt(in_features))), in place, from the current RNG state. Returns nothing.]],
    example = [[
local fc = nn.Linear(2, 2)
nn.init.zeros_(fc.weight)
fc:reset_parameters()
print(fc.weight:abs():max():item() > 0)   --> true]],
    see = { "nn.Linear", "nn.init" },
  },

  ["nn.Embedding"] = {
    sig = "nn.Embedding(num_embeddings, embedding_dim [, opts])",
    doc = [[A lookup table of num_embeddings rows of size embedding_dim: ids, an int64 tensor of any shape [...], give [..., embedding_dim]. Ids are 1-based (PyTorch's id i is i + 1 here; the rows are the same). The parameter weight [num_embeddings, embedding_dim] starts N(0, 1); row padding_idx starts at zero and gets no gradient. An id outside 1..num_embeddings raises.]],
    opts = {
      { "padding_idx", "nil", "a row (1-based; negative counts from the end) kept at zero, with no gradient" },
      { "dtype", '"float32"', 'the weight\'s dtype: "float32" or "float64"' },
    },
    example = [[
local emb = nn.Embedding(10, 3, {padding_idx = 1})
local y = emb(mg.tensor({{1, 2}, {9, 10}}, "int64"))
print(table.concat(y:shape(), "x"), y[1][1]:abs():sum():item())   --> 2x2x3  0.0]],
    group = "Layers",
    instance = function() return require("moongrad.nn").Embedding(4, 2) end,
    methods_of = "nn.Module",
    see = { "F.embedding", "nn.Embedding:reset_parameters" },
  },

  ["nn.Embedding:reset_parameters"] = {
    sig = "emb:reset_parameters()",
    doc = [[Draws the weight again from N(0, 1), in place, and zeroes the padding_idx row if there is one. Returns nothing.]],
    example = [[
local emb = nn.Embedding(5, 2, {padding_idx = -1})
emb:reset_parameters()
print(emb.weight[5]:abs():sum():item())   --> 0.0]],
    see = { "nn.Embedding" },
  },

  ["nn.Dropout"] = {
    sig = "nn.Dropout([p])",
    doc = [[In training mode, zeroes each element with probability p (default 0.5) and scales the kept ones by 1/(1-p), so the expected value is unchanged; in eval mode it returns its input. The output has the input's shape. p is a number, not an options table; it raises unless 0 <= p <= 1. The mask draws from the RNG (mg.manual_seed applies).]],
    example = [[
local drop = nn.Dropout(0.5)
local y = drop(mg.ones(2, 4))              -- training: each 0 or 2
print(table.concat(y:shape(), "x"))        --> 2x4
print(drop:eval()(mg.ones(4)):sum():item())   --> 4.0]],
    group = "Layers",
    see = { "F.dropout", "nn.Module:eval" },
  },

  ["nn.Identity"] = {
    sig = "nn.Identity()",
    doc = [[Returns its input unchanged (the same tensor): a placeholder where a layer is optional, such as a skipped normalisation. It has no parameters, and any constructor arguments are ignored, as in PyTorch.]],
    example = [[
local x = mg.randn(2, 3)
print(rawequal(nn.Identity()(x), x))   --> true]],
    group = "Layers",
    see = { "nn.Sequential" },
  },

  ["nn.Flatten"] = {
    sig = "nn.Flatten([start_dim [, end_dim]])",
    doc = [[Merges dims start_dim..end_dim (1-based, negative from the end) into one: the defaults, 2 and -1, keep the batch dim and flatten the rest, [N, C, H, W] giving [N, C*H*W], as PyTorch's nn.Flatten() (whose start_dim=1 is 0-based). Raises when a dim is not an integer.]],
    example = [[
local x = mg.randn(2, 3, 4, 5)
print(table.concat(nn.Flatten()(x):shape(), "x"))       --> 2x60
print(table.concat(nn.Flatten(2, 3)(x):shape(), "x"))   --> 2x12x5]],
    group = "Layers",
    see = { "mg.flatten", "nn.AdaptiveAvgPool2d" },
  },

  ---------------------------------------------------------------------------
  -- Convolution and pooling

  ["nn.Conv2d"] = {
    sig = "nn.Conv2d(in_channels, out_channels, kernel_size [, opts])",
    doc = [[A 2-D convolution (cross-correlation, as PyTorch) over [N, in_channels, H, W] giving [N, out_channels, H', W']; the input must be 4-D (PyTorch's unbatched [C, H, W] is not taken). Sizes (kernel_size, stride, padding, dilation) are a number for both dims or a table {h, w}. Parameters: weight [out_channels, in_channels/groups, kH, kW] and bias [out_channels], both from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels/groups*kH*kW, as PyTorch's. Both channel counts must divide by groups; padding "same" needs stride 1.

  H' = floor((H + 2*padding - dilation*(kH - 1) - 1) / stride) + 1
  (W' likewise)]],
    opts = {
      { "stride", "1", "step of the window: n or {sh, sw}" },
      { "padding", "0", 'n, {ph, pw}, "valid" (0) or "same" (output keeps H and W; stride 1 only; an odd extra row or column goes at the bottom or right)' },
      { "dilation", "1", "spacing of the kernel's taps: n or {dh, dw}" },
      { "groups", "1", "split the channels into this many independent groups" },
      { "bias", "true", "false: no bias parameter" },
      { "padding_mode", '"zeros"', '"zeros", "reflect", "replicate" or "circular": how the padding is filled' },
      { "dtype", '"float32"', 'the parameters\' dtype: "float32" or "float64"' },
    },
    example = [[
local conv = nn.Conv2d(3, 8, 3, {padding = 1})
local y = conv(mg.randn(2, 3, 5, 5))
print(table.concat(y:shape(), "x"), table.concat(conv.weight:shape(), "x"))   --> 2x8x5x5  8x3x3x3
local down = nn.Conv2d(3, 4, 3, {stride = 2})
print(table.concat(down(mg.randn(1, 3, 9, 9)):shape(), "x"))                --> 1x4x4x4]],
    group = "Convolution and pooling",
    instance = function() return require("moongrad.nn").Conv2d(1, 1, 1) end,
    methods_of = "nn.Module",
    see = { "F.conv2d", "nn.ConvTranspose2d", "nn.MaxPool2d", "nn.BatchNorm2d" },
  },

  ["nn.Conv2d:reset_parameters"] = {
    sig = "conv:reset_parameters()",
    doc = [[Draws weight and bias again as the constructor does (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in from the weight's shape), in place. Returns nothing.]],
    example = [[
local conv = nn.Conv2d(2, 4, 3)
conv:reset_parameters()
print(conv.bias:abs():max():item() <= 1 / math.sqrt(18))   --> true]],
    see = { "nn.Conv2d" },
  },

  ["nn.ConvTranspose2d"] = {
    sig = { "nn.ConvTranspose2d(in_channels, out_channels, kernel_size [, opts])",
            "up(x [, output_size])" },
    doc = [[The transposed convolution (conv2d's gradient with respect to its input, run as a layer; "deconvolution") over [N, in_channels, H, W], giving [N, out_channels, H', W']; with stride 2 it upsamples. Parameters: weight [in_channels, out_channels/groups, kH, kW] (PyTorch's layout) and bias [out_channels], initialised as PyTorch's, from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = out_channels/groups*kH*kW. The forward may take output_size ({h, w} or {N, C, h, w}) to pick the output_padding that gives that size, as PyTorch's; an unreachable size raises. Sizes are a number or {h, w}; output_padding must be smaller than stride or dilation.

  H' = (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1]],
    opts = {
      { "stride", "1", "n or {sh, sw}" },
      { "padding", "0", "n or {ph, pw}: removed from each side of the output" },
      { "output_padding", "0", "n or {ph, pw}: added to one side of the output, to reach odd sizes" },
      { "groups", "1", "split the channels into this many independent groups" },
      { "bias", "true", "false: no bias parameter" },
      { "dilation", "1", "n or {dh, dw}" },
      { "padding_mode", '"zeros"', 'only "zeros" (as in PyTorch)' },
      { "dtype", '"float32"', 'the parameters\' dtype: "float32" or "float64"' },
    },
    example = [[
local up = nn.ConvTranspose2d(8, 4, 4, {stride = 2, padding = 1})
local x = mg.randn(1, 8, 5, 5)
print(table.concat(up(x):shape(), "x"), table.concat(up.weight:shape(), "x"))   --> 1x4x10x10  8x4x4x4
print(table.concat(up(x, {11, 11}):shape(), "x"))                               --> 1x4x11x11]],
    group = "Convolution and pooling",
    instance = function() return require("moongrad.nn").ConvTranspose2d(1, 1, 1) end,
    methods_of = "nn.Module",
    see = { "F.conv_transpose2d", "nn.Conv2d" },
  },

  ["nn.ConvTranspose2d:reset_parameters"] = {
    sig = "up:reset_parameters()",
    doc = [[Draws weight and bias again as the constructor does (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = out_channels/groups*kH*kW), in place. Returns nothing.]],
    example = [[
local up = nn.ConvTranspose2d(4, 2, 2)
up:reset_parameters()
print(up.bias:abs():max():item() <= 1 / math.sqrt(8))   --> true]],
    see = { "nn.ConvTranspose2d" },
  },

  ["nn.MaxPool2d"] = {
    sig = "nn.MaxPool2d(kernel_size [, opts])",
    doc = [[The maximum over each kernel_size window of [N, C, H, W] (or [C, H, W]), giving [N, C, H', W']; no parameters. Sizes are a number or {h, w}; padding counts as -inf and the first maximum wins a tie. With return_indices it returns a second result, the int64 position of each maximum within its H*W plane, 1-based (PyTorch's + 1). Bad geometry (padding over half the kernel, say) raises when the layer runs.

  H' = floor((H + 2*padding - dilation*(kH - 1) - 1) / stride) + 1
  (ceil instead of floor with ceil_mode; W' likewise)]],
    opts = {
      { "stride", "kernel_size", "step of the window: n or {sh, sw}" },
      { "padding", "0", "n or {ph, pw} of -inf on each side" },
      { "dilation", "1", "spacing of the window's taps: n or {dh, dw}" },
      { "ceil_mode", "false", "true rounds the output size up (a last, partial window)" },
      { "return_indices", "false", "true also returns the argmax positions (int64, 1-based)" },
    },
    example = [[
local pool = nn.MaxPool2d(2)
print(table.concat(pool(mg.randn(1, 3, 5, 5)):shape(), "x"))   --> 1x3x2x2
local y, idx = nn.MaxPool2d(2, {return_indices = true})(mg.randn(1, 1, 4, 4))
print(table.concat(idx:shape(), "x"), idx:dtype())           --> 1x1x2x2  int64]],
    group = "Convolution and pooling",
    see = { "F.max_pool2d", "nn.AvgPool2d", "nn.AdaptiveAvgPool2d" },
  },

  ["nn.AvgPool2d"] = {
    sig = "nn.AvgPool2d(kernel_size [, opts])",
    doc = [[The mean over each kernel_size window of [N, C, H, W] (or [C, H, W]), giving [N, C, H', W'] with H' = floor((H + 2*padding - kH) / stride) + 1 (ceil with ceil_mode); no parameters. Sizes are a number or {h, w}. PyTorch's divisor_override is not taken. Bad geometry raises when the layer runs.]],
    opts = {
      { "stride", "kernel_size", "step of the window: n or {sh, sw}" },
      { "padding", "0", "n or {ph, pw} of zeros on each side" },
      { "ceil_mode", "false", "true rounds the output size up" },
      { "count_include_pad", "true", "false divides by the number of real (unpadded) elements in the window" },
    },
    example = [[
local pool = nn.AvgPool2d(3, {stride = 2, padding = 1})
print(table.concat(pool(mg.randn(1, 2, 6, 6)):shape(), "x"))   --> 1x2x3x3
print(nn.AvgPool2d(2)(mg.ones(1, 1, 2, 2)):item())             --> 1.0]],
    group = "Convolution and pooling",
    see = { "F.avg_pool2d", "nn.MaxPool2d", "nn.AdaptiveAvgPool2d" },
  },

  ["nn.AdaptiveAvgPool2d"] = {
    sig = "nn.AdaptiveAvgPool2d(output_size)",
    doc = [[Averages [N, C, H, W] (or [C, H, W]) down to [N, C, h, w] for output_size n (h = w = n) or {h, w}, whatever H and W are: output row i (1-based) averages input rows floor((i-1)*H/h) + 1 through ceil(i*H/h), so windows may overlap. AdaptiveAvgPool2d(1) is global average pooling, before a Flatten and a classifier. No parameters; unlike PyTorch, neither size may be nil.]],
    example = [[
local gap = nn.AdaptiveAvgPool2d(1)
print(table.concat(gap(mg.randn(2, 16, 7, 7)):shape(), "x"))                       --> 2x16x1x1
print(table.concat(nn.AdaptiveAvgPool2d({2, 3})(mg.randn(1, 2, 7, 9)):shape(), "x"))   --> 1x2x2x3]],
    group = "Convolution and pooling",
    see = { "F.adaptive_avg_pool2d", "nn.AvgPool2d", "nn.Flatten" },
  },

  ---------------------------------------------------------------------------
  -- Normalization

  ["nn.BatchNorm1d"] = {
    sig = "nn.BatchNorm1d(num_features [, opts])",
    doc = [[Batch normalisation over [N, C] or [N, C, L] (C = num_features), per feature: in training mode with the batch's mean and (biased) variance, updating the running statistics (with the unbiased variance); in eval mode with the running ones. Parameters weight [C] (ones) and bias [C] (zeros) when affine; buffers running_mean [C] (zeros), running_var [C] (ones) and num_batches_tracked (int64 0) when track_running_stats. Without running statistics it always uses the batch's. Raises on other ranks or a wrong C.]],
    opts = {
      { "eps", "1e-5", "added to the variance before the square root" },
      { "momentum", "0.1", "weight of the batch in the running statistics; false keeps a cumulative average (PyTorch's momentum=None)" },
      { "affine", "true", "false: no weight and bias" },
      { "track_running_stats", "true", "false: no running statistics, batch statistics in eval mode too" },
      { "dtype", '"float32"', 'the parameters\' and buffers\' dtype: "float32" or "float64"' },
    },
    example = [[
local bn = nn.BatchNorm1d(4)
local y = bn(mg.randn(8, 4))
print(table.concat(y:shape(), "x"), bn.num_batches_tracked:item())   --> 8x4  1
bn:eval()
print(table.concat(bn(mg.randn(2, 4, 3)):shape(), "x"))              --> 2x4x3]],
    group = "Normalization",
    instance = function() return require("moongrad.nn").BatchNorm1d(2) end,
    methods_of = "nn.Module",
    see = { "F.batch_norm", "nn.BatchNorm2d", "nn.LayerNorm" },
  },

  ["nn.BatchNorm1d:reset_running_stats"] = {
    sig = "bn:reset_running_stats()",
    doc = [[Resets the running statistics in place: running_mean to 0, running_var to 1 and num_batches_tracked to 0 (nothing when the layer does not track them). The weight and bias are left alone. Returns nothing.]],
    example = [[
local bn = nn.BatchNorm1d(3)
bn(mg.randn(4, 3))
bn:reset_running_stats()
print(bn.num_batches_tracked:item(), bn.running_var:sum():item())   --> 0  3.0]],
    see = { "nn.BatchNorm1d", "nn.BatchNorm2d" },
  },

  ["nn.BatchNorm2d"] = {
    sig = "nn.BatchNorm2d(num_features [, opts])",
    doc = [[Batch normalisation over [N, C, H, W] (C = num_features), with statistics per channel over N, H and W: in training mode the batch's, updating the running ones; in eval mode the running ones. It has BatchNorm1d's options, parameters (weight and bias [C]) and buffers (running_mean, running_var, num_batches_tracked), and extends it (bn:is_a(nn.BatchNorm1d) is true). Raises unless the input is 4-D with C channels.]],
    opts = {
      { "eps", "1e-5", "added to the variance before the square root" },
      { "momentum", "0.1", "weight of the batch in the running statistics; false keeps a cumulative average" },
      { "affine", "true", "false: no weight and bias" },
      { "track_running_stats", "true", "false: no running statistics, batch statistics in eval mode too" },
      { "dtype", '"float32"', 'the parameters\' and buffers\' dtype: "float32" or "float64"' },
    },
    example = [[
local bn = nn.BatchNorm2d(3)
local y = bn(mg.randn(4, 3, 2, 2))
print(table.concat(y:shape(), "x"), table.concat(bn:state_dict_names(), " "))
--> 4x3x2x2  weight bias running_mean running_var num_batches_tracked]],
    group = "Normalization",
    instance = function() return require("moongrad.nn").BatchNorm2d(2) end,
    methods_of = "nn.Module",
    see = { "nn.BatchNorm1d", "nn.Conv2d", "F.batch_norm" },
  },

  ["nn.BatchNorm2d:reset_running_stats"] = { alias = "nn.BatchNorm1d:reset_running_stats" },

  ["nn.LayerNorm"] = {
    sig = "nn.LayerNorm(normalized_shape [, opts])",
    doc = [[Normalises each sample over its trailing dims normalized_shape (a size, or a table of sizes) to mean 0 and variance 1, then scales by weight and adds bias: [..., *normalized_shape] in, the same shape out. Parameters weight (ones) and bias (zeros), each shaped normalized_shape, when elementwise_affine. The same in training and eval mode. Raises when the input does not end in normalized_shape.]],
    opts = {
      { "eps", "1e-5", "added to the variance before the square root" },
      { "elementwise_affine", "true", "false: no weight and no bias" },
      { "bias", "true", "false: a weight but no bias" },
      { "dtype", '"float32"', 'the parameters\' dtype: "float32" or "float64"' },
    },
    example = [[
local ln = nn.LayerNorm(4)
local y = ln(mg.randn(2, 3, 4))
print(table.concat(y:shape(), "x"), table.concat(ln.weight:shape(), "x"))   --> 2x3x4  4
print(table.concat(nn.LayerNorm({3, 4}).bias:shape(), "x"))               --> 3x4]],
    group = "Normalization",
    see = { "F.layer_norm", "nn.BatchNorm1d" },
  },

  ---------------------------------------------------------------------------
  -- Recurrent

  ["nn.RNN"] = {
    sig = { "nn.RNN(input_size, hidden_size [, opts])", "local out, h_n = rnn(x [, h0])" },
    doc = [[An Elman RNN, h_t = act(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh) with act tanh or relu, stacked in layers and optionally bidirectional, with backpropagation through time. Batch first by default (PyTorch's default is not); h0 defaults to zeros, and its rows (like h_n's) are layer 1 forward, layer 1 reverse, layer 2 forward, .... Parameters per layer k = 0, 1, ... (PyTorch's names, so its state dicts load; _reverse for the reverse direction): weight_ih_l{k} [H, input_size or D*H], weight_hh_l{k} [H, H], bias_ih_l{k} and bias_hh_l{k} [H], all from U(-1/sqrt(H), 1/sqrt(H)).

  x [N, T, input_size] -> out [N, T, D*H];  h_n, h0 [num_layers*D, N, H]
  D = 2 if bidirectional else 1;  H = hidden_size]],
    opts = recurrent_opts({ "nonlinearity", '"tanh"', '"tanh" or "relu"' }, "LSTM only: anything but 0 raises here"),
    example = [[
local rnn = nn.RNN(4, 6, {nonlinearity = "relu"})
local out, h_n = rnn(mg.randn(2, 5, 4))
print(table.concat(out:shape(), "x"), table.concat(h_n:shape(), "x"))   --> 2x5x6  1x2x6
print(table.concat(rnn:state_dict_names(), " "))   --> weight_ih_l0 weight_hh_l0 bias_ih_l0 bias_hh_l0]],
    group = "Recurrent",
    instance = function() return require("moongrad.nn").RNN(2, 2) end,
    methods_of = "nn.Module",
    see = { "nn.LSTM", "nn.GRU" },
  },

  ["nn.RNN:reset_parameters"] = {
    sig = "rnn:reset_parameters()",
    doc = [[Draws every weight and bias again from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in place, as the constructor (and PyTorch) does. Returns nothing.]],
    example = [[
local rnn = nn.RNN(3, 4)
rnn:reset_parameters()
print(rnn.weight_hh_l0:abs():max():item() <= 0.5)   --> true]],
    see = { "nn.RNN" },
  },

  ["nn.LSTM"] = {
    sig = { "nn.LSTM(input_size, hidden_size [, opts])", "local out, h_n, c_n = lstm(x [, h0, c0])" },
    doc = [[A long short-term memory network with PyTorch's gates (i, f, g, o in blocks of H rows), formulas, options and parameter names, so its state dicts load; backpropagation through time included. Batch first by default (PyTorch's default is not). Where PyTorch takes and returns tuples, Lua uses several values: lstm(x, h0, c0), both states or neither (zeros), returns out, h_n, c_n. Parameters per layer k = 0, 1, ... (and _reverse): weight_ih_l{k} [4H, input_size or D*R], weight_hh_l{k} [4H, R], bias_ih_l{k} and bias_hh_l{k} [4H], weight_hr_l{k} [P, H] with proj_size P, all from U(-1/sqrt(H), 1/sqrt(H)).

  x [N, T, input_size] -> out [N, T, D*R]
  h_n, h0 [num_layers*D, N, R];  c_n, c0 [num_layers*D, N, H]
  D = 2 if bidirectional else 1;  R = proj_size if > 0 else H]],
    opts = recurrent_opts(nil, "P in 1..hidden_size-1 projects h_t to P values (weight_hr)"),
    example = [[
local lstm = nn.LSTM(4, 6, {num_layers = 2})
local out, h, c = lstm(mg.randn(3, 5, 4))
print(table.concat(out:shape(), "x"), table.concat(h:shape(), "x"), table.concat(c:shape(), "x"))
--> 3x5x6  2x3x6  2x3x6
local out2 = lstm(mg.randn(3, 5, 4), h, c)   -- carry the state on]],
    group = "Recurrent",
    instance = function() return require("moongrad.nn").LSTM(2, 2) end,
    methods_of = "nn.Module",
    see = { "nn.GRU", "nn.RNN" },
  },

  ["nn.LSTM:reset_parameters"] = {
    sig = "lstm:reset_parameters()",
    doc = [[Draws every weight and bias (weight_hr included) again from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in place, as the constructor (and PyTorch) does. Returns nothing.]],
    example = [[
local lstm = nn.LSTM(3, 4)
lstm:reset_parameters()
print(lstm.bias_ih_l0:abs():max():item() <= 0.5)   --> true]],
    see = { "nn.LSTM" },
  },

  ["nn.GRU"] = {
    sig = { "nn.GRU(input_size, hidden_size [, opts])", "local out, h_n = gru(x [, h0])" },
    doc = [[A gated recurrent unit network with PyTorch's gates (r, z, n in blocks of H rows), formulas and parameter names, so its state dicts load; backpropagation through time included. Batch first by default (PyTorch's default is not): x [N, T, input_size] gives out [N, T, D*H] (D = 2 when bidirectional) and h_n [num_layers*D, N, H]; h0 is shaped like h_n (zeros when absent). Parameters per layer k = 0, 1, ... (and _reverse): weight_ih_l{k} [3H, input_size or D*H], weight_hh_l{k} [3H, H], bias_ih_l{k} and bias_hh_l{k} [3H], all from U(-1/sqrt(H), 1/sqrt(H)).

  r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z likewise
  n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
  h_t = (1 - z) * n + z * h_(t-1)]],
    opts = recurrent_opts(nil, "LSTM only: anything but 0 raises here"),
    example = [[
local gru = nn.GRU(4, 6, {bidirectional = true})
local out, h_n = gru(mg.randn(2, 5, 4))
print(table.concat(out:shape(), "x"), table.concat(h_n:shape(), "x"))   --> 2x5x12  2x2x6
local tm = nn.GRU(4, 6, {batch_first = false})
print(table.concat(tm(mg.randn(5, 2, 4)):shape(), "x"))                 --> 5x2x6]],
    group = "Recurrent",
    instance = function() return require("moongrad.nn").GRU(2, 2) end,
    methods_of = "nn.Module",
    see = { "nn.LSTM", "nn.RNN" },
  },

  ["nn.GRU:reset_parameters"] = {
    sig = "gru:reset_parameters()",
    doc = [[Draws every weight and bias again from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in place, as the constructor (and PyTorch) does. Returns nothing.]],
    example = [[
local gru = nn.GRU(3, 4)
gru:reset_parameters()
print(gru.weight_ih_l0:abs():max():item() <= 0.5)   --> true]],
    see = { "nn.GRU" },
  },

  ---------------------------------------------------------------------------
  -- Attention

  ["nn.MultiheadAttention"] = {
    sig = { "nn.MultiheadAttention(embed_dim, num_heads [, opts])",
            "local out, weights = mha(query, key, value [, fopts])" },
    doc = [[Multi-head scaled dot-product attention with PyTorch's parameters, initialisation and mask convention, so a torch.nn.MultiheadAttention state dict loads; embed_dim E must divide by num_heads. Batch first by default (PyTorch's default is not): query [N, L, E], key [N, S, kdim] and value [N, S, vdim] give out [N, L, E] and the attention weights [N, L, S] averaged over heads (nil with need_weights = false). Parameters: in_proj_weight [3E, E] (xavier_uniform; query, key, value rows) and in_proj_bias [3E] (zeros), or q_proj_weight [E, E], k_proj_weight [E, kdim], v_proj_weight [E, vdim] when kdim or vdim is not E; out_proj, a Linear(E, E) with zero bias. In the masks a flag (bool, or nonzero integer) marks what may NOT be attended, the opposite of F.scaled_dot_product_attention, and a float mask is added to the scores.

  fopts: attn_mask [L, S] or [N*num_heads, L, S]
         key_padding_mask [N, S] (flags the padding keys)
         is_causal = false (true: query i sees keys 1..i)
         need_weights = true, average_attn_weights = true
         (false: weights [N, num_heads, L, S])]],
    opts = {
      { "dropout", "0", "dropout on the attention weights, in training" },
      { "bias", "true", "false: no in_proj_bias and no out_proj bias" },
      { "batch_first", "true", "false: query, key, value and out are [L, N, E] (PyTorch's default)" },
      { "kdim", "embed_dim", "the keys' width" },
      { "vdim", "embed_dim", "the values' width" },
      { "dtype", '"float32"', 'the parameters\' dtype: "float32" or "float64"' },
    },
    example = [[
local mha = nn.MultiheadAttention(8, 2)
local x = mg.randn(2, 5, 8)
local out, w = mha(x, x, x, {is_causal = true})
print(table.concat(out:shape(), "x"), table.concat(w:shape(), "x"))   --> 2x5x8  2x5x5
print(w[1][1][2])                                                     --> 0.0
local pad = mg.tensor({{false, false, false, true, true}, {false, false, false, false, false}})
print(mha(x, x, x, {key_padding_mask = pad, need_weights = false}):size(2))   --> 5]],
    group = "Attention",
    instance = function() return require("moongrad.nn").MultiheadAttention(2, 1) end,
    methods_of = "nn.Module",
    see = { "F.scaled_dot_product_attention", "nn.TransformerEncoderLayer" },
  },

  ["nn.MultiheadAttention:reset_parameters"] = {
    sig = "mha:reset_parameters()",
    doc = [[Re-initialises the input projections as PyTorch's _reset_parameters does: xavier_uniform for in_proj_weight (or q/k/v_proj_weight), zeros for in_proj_bias and out_proj's bias. out_proj's weight is left as it is. Returns nothing.]],
    example = [[
local mha = nn.MultiheadAttention(4, 2)
nn.init.ones_(mha.in_proj_bias)
mha:reset_parameters()
print(mha.in_proj_bias:abs():sum():item())   --> 0.0]],
    see = { "nn.MultiheadAttention", "nn.init.xavier_uniform_" },
  },

  ["nn.TransformerEncoderLayer"] = {
    sig = { "nn.TransformerEncoderLayer(d_model, nhead [, opts])",
            "layer(src [, {src_mask, src_key_padding_mask, is_causal}])" },
    doc = [[PyTorch's transformer encoder layer, with its submodules (self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2), defaults and maths, so its state dicts load. Batch first by default (PyTorch's default is not): src [N, L, d_model] gives the same shape. src_mask is self_attn's attn_mask ([L, L] or [N*nhead, L, L]) and src_key_padding_mask its key_padding_mask ([N, L]): flags (bool or nonzero integer) block, floats are added; is_causal = true blocks the keys after each query. The layer records its variant (state_variant), so a state dict of another variant (a TransformerBlock's, say) is refused.

  post-norm (default): x = norm1(x + sa(x));  x = norm2(x + ff(x))
  norm_first = true:   x = x + sa(norm1(x));  x = x + ff(norm2(x))
  ff(x) = dropout2(linear2(dropout(activation(linear1(x)))))]],
    opts = {
      { "dim_feedforward", "2048", "the hidden width of the feed-forward part (linear1's output)" },
      { "dropout", "0.1", "dropout in attention, after it and in the feed-forward part" },
      { "activation", '"relu"', '"relu" or "gelu" (the exact, erf GELU)' },
      { "layer_norm_eps", "1e-5", "the eps of norm1 and norm2" },
      { "batch_first", "true", "false: src is [L, N, d_model] (PyTorch's default)" },
      { "norm_first", "false", "true: pre-norm (see above)" },
      { "dtype", '"float32"', 'the parameters\' dtype: "float32" or "float64"' },
    },
    example = [[
local layer = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16})
local y = layer(mg.randn(2, 5, 8), {is_causal = true})
print(table.concat(y:shape(), "x"))   --> 2x5x8
print(layer:state_variant())   --> TransformerEncoderLayer(norm_first=false, activation=relu)]],
    group = "Attention",
    instance = function()
      return require("moongrad.nn").TransformerEncoderLayer(2, 1, { dim_feedforward = 2 })
    end,
    methods_of = "nn.Module",
    see = { "nn.TransformerEncoder", "nn.TransformerBlock", "nn.MultiheadAttention" },
  },

  ["nn.TransformerEncoderLayer:state_variant"] = {
    sig = "layer:state_variant()",
    doc = [[A string naming the maths the layer's parameters are for: its norm order, activation, and layer_norm_eps when not 1e-5. Layers with equal strings compute the same function from the same weights. state_dict records it and load_state_dict refuses a state dict recorded from another variant (names alone cannot tell a post-norm layer from a pre-norm one).]],
    example = [[
local layer = nn.TransformerEncoderLayer(8, 2, {norm_first = true, activation = "gelu"})
print(layer:state_variant())   --> TransformerEncoderLayer(norm_first=true, activation=gelu)]],
    see = { "nn.TransformerBlock:state_variant", "nn.Module:load_state_dict" },
  },

  ["nn.TransformerEncoder"] = {
    sig = { "nn.TransformerEncoder(encoder_layer, num_layers [, opts])",
            "enc(src [, {mask, src_key_padding_mask, is_causal}])" },
    doc = [[A stack of num_layers copies of encoder_layer, then an optional norm, as torch.nn.TransformerEncoder. The copies are deep (encoder_layer:clone(), so all start with the same weights, as PyTorch's deepcopy) and live in the ModuleList layers; encoder_layer itself is not part of the model. The forward passes src through each layer with {src_mask = mask, src_key_padding_mask, is_causal}, and returns the same shape. State dict names are 1-based (layers.1.self_attn...); PyTorch's layers.0... load with {torch = true}. Positions marked as padding get what the layers compute (PyTorch's slow path), not the zeros PyTorch's eval fast path may give.]],
    opts = {
      { "norm", "nil", "a module (a LayerNorm) applied to the last layer's output" },
    },
    example = [[
local layer = nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 16})
local enc = nn.TransformerEncoder(layer, 2, {norm = nn.LayerNorm(8)})
local y = enc(mg.randn(2, 5, 8))
print(table.concat(y:shape(), "x"), #enc.layers)   --> 2x5x8  2
print(enc:state_dict_names()[1])                  --> layers.1.self_attn.in_proj_weight]],
    group = "Attention",
    see = { "nn.TransformerEncoderLayer", "nn.Module:clone" },
  },

  ["nn.TransformerBlock"] = {
    sig = { "nn.TransformerBlock(d_model, num_heads [, opts])", "block(x [, {attn_mask}])" },
    doc = [[The pre-norm GELU transformer layer of language models, as a shorthand: the maths of TransformerEncoderLayer with norm_first = true and activation = "gelu", with the same submodule names, but dropout 0 and a feed-forward width of 4*d_model by default, and causal attention on request. Always batch first: x [N, L, d_model] gives the same shape; attn_mask is as for MultiheadAttention (a flag blocks, a float is added). It is not PyTorch's default layer (post-norm, ReLU); use TransformerEncoderLayer for that, for key padding masks or for batch_first = false. Give dim_feedforward or mlp_ratio, not both.

  x = x + dropout1(self_attn(norm1(x)))
  x = x + dropout2(linear2(dropout(gelu(linear1(norm2(x))))))]],
    opts = {
      { "dim_feedforward", "4*d_model", "the hidden width of the feed-forward part" },
      { "mlp_ratio", "4", "dim_feedforward as a multiple of d_model (must give a whole number)" },
      { "dropout", "0", "dropout in attention, after it and in the feed-forward part" },
      { "causal", "false", "true: every forward is causal (query i sees keys 1..i)" },
      { "eps", "1e-5", "the eps of norm1 and norm2" },
      { "dtype", '"float32"', 'the parameters\' dtype: "float32" or "float64"' },
    },
    example = [[
local block = nn.TransformerBlock(8, 2, {causal = true})
local y = block(mg.randn(2, 5, 8))
print(table.concat(y:shape(), "x"), block.dim_feedforward)   --> 2x5x8  32]],
    group = "Attention",
    instance = function() return require("moongrad.nn").TransformerBlock(2, 1) end,
    methods_of = "nn.Module",
    see = { "nn.TransformerEncoderLayer", "nn.MultiheadAttention" },
  },

  ["nn.TransformerBlock:state_variant"] = {
    sig = "block:state_variant()",
    doc = [[A string naming the maths the block's parameters are for: the equivalent TransformerEncoderLayer's variant (pre-norm, GELU, the eps when not 1e-5), with causal=true when the block is causal. state_dict records it, and load_state_dict refuses a state dict recorded from another variant, such as a post-norm TransformerEncoderLayer with the same names.]],
    example = [[
print(nn.TransformerBlock(8, 2, {causal = true}):state_variant())
--> TransformerEncoderLayer(norm_first=true, activation=gelu, causal=true)]],
    see = { "nn.TransformerEncoderLayer:state_variant", "nn.Module:load_state_dict" },
  },

  ---------------------------------------------------------------------------
  -- Activations

  ["nn.ReLU"] = {
    sig = "nn.ReLU()",
    doc = [[max(0, x) elementwise; any shape in, the same shape out; no parameters. PyTorch's inplace option is not taken.]],
    example = [[
print(nn.ReLU()(mg.tensor({-1.0, 2.0})):totable()[2])   --> 2.0]],
    group = "Activations",
    see = { "mg.relu", "nn.LeakyReLU", "nn.GELU" },
  },

  ["nn.LeakyReLU"] = {
    sig = "nn.LeakyReLU([negative_slope])",
    doc = [[x for x >= 0 and negative_slope*x below, elementwise (negative_slope defaults to 0.01); any shape in, the same shape out. The slope is a number, not an options table.]],
    example = [[
local act = nn.LeakyReLU(0.1)
print(act(mg.tensor({-1.0, 2.0})):totable()[1])   --> -0.10000000149012]],
    group = "Activations",
    see = { "F.leaky_relu", "nn.ReLU", "nn.ELU" },
  },

  ["nn.ELU"] = {
    sig = "nn.ELU([alpha])",
    doc = [[x for x > 0 and alpha*(exp(x) - 1) below, elementwise (alpha defaults to 1); any shape in, the same shape out. alpha is a number, not an options table.]],
    example = [[
print(nn.ELU(0.5)(mg.tensor({-100.0})):item())   --> -0.5]],
    group = "Activations",
    see = { "F.elu", "nn.LeakyReLU" },
  },

  ["nn.GELU"] = {
    sig = "nn.GELU([opts])",
    doc = [[The Gaussian error linear unit, x*Phi(x), elementwise; any shape in, the same shape out. The default is the exact (erf) form; {approximate = "tanh"} uses the tanh approximation, as PyTorch's option does.]],
    opts = {
      { "approximate", '"none"', '"none" (exact, erf) or "tanh"' },
    },
    example = [[
print(string.format("%.4f", nn.GELU()(mg.tensor({1.0})):item()))   --> 0.8413
local fast = nn.GELU({approximate = "tanh"})]],
    group = "Activations",
    see = { "F.gelu", "nn.SiLU" },
  },

  ["nn.SiLU"] = {
    sig = "nn.SiLU()",
    doc = [[x*sigmoid(x) elementwise (also called swish); any shape in, the same shape out; no parameters.]],
    example = [[
print(string.format("%.4f", nn.SiLU()(mg.tensor({1.0})):item()))   --> 0.7311]],
    group = "Activations",
    see = { "F.silu", "nn.GELU", "nn.Sigmoid" },
  },

  ["nn.Sigmoid"] = {
    sig = "nn.Sigmoid()",
    doc = [[1 / (1 + exp(-x)) elementwise; any shape in, the same shape out; no parameters. Before a BCELoss; BCEWithLogitsLoss on the raw scores is the more accurate pair.]],
    example = [[
print(nn.Sigmoid()(mg.tensor({0.0})):item())   --> 0.5]],
    group = "Activations",
    see = { "mg.sigmoid", "nn.BCEWithLogitsLoss" },
  },

  ["nn.Tanh"] = {
    sig = "nn.Tanh()",
    doc = [[The hyperbolic tangent elementwise; any shape in, the same shape out; no parameters.]],
    example = [[
print(nn.Tanh()(mg.tensor({0.0})):item())   --> 0.0]],
    group = "Activations",
    see = { "mg.tanh", "nn.Sigmoid" },
  },

  ["nn.Softmax"] = {
    sig = "nn.Softmax([dim])",
    doc = [[exp(x) / sum(exp(x)) along dim (1-based, negative from the end; default -1, the last), computed without overflow; the output has the input's shape and sums to 1 along dim. dim is a number, not an options table; it raises when dim is not an integer.]],
    example = [[
local p = nn.Softmax()(mg.tensor({{1.0, 1.0}, {0.0, 0.0}}))
print(p:sum(2):totable()[1], p:totable()[1][1])   --> 1.0  0.5]],
    group = "Activations",
    see = { "F.softmax", "nn.LogSoftmax" },
  },

  ["nn.LogSoftmax"] = {
    sig = "nn.LogSoftmax([dim])",
    doc = [[log(softmax(x)) along dim (1-based, negative from the end; default -1), computed stably; the output has the input's shape. Its output is what NLLLoss expects; CrossEntropyLoss does both steps on raw scores.]],
    example = [[
local lp = nn.LogSoftmax()(mg.zeros(1, 2))
print(string.format("%.4f", lp:totable()[1][1]))   --> -0.6931]],
    group = "Activations",
    see = { "F.log_softmax", "nn.NLLLoss", "nn.Softmax" },
  },

  ---------------------------------------------------------------------------
  -- Losses

  ["nn.CrossEntropyLoss"] = {
    sig = { "nn.CrossEntropyLoss([opts])", "loss_fn(logits, targets)" },
    doc = [[Softmax cross-entropy as a module: loss_fn(logits, targets) is F.cross_entropy(logits, targets, opts). logits are raw scores [N, C] (or [N, C, d...], or [C]); targets are int64 class labels [N] (or [N, d...]), 1-based (PyTorch's + 1), or float class probabilities shaped like logits. The mean divides by the summed weight of the targets that count, as PyTorch's. weight is kept as a buffer, so it is in state_dict.]],
    opts = {
      { "weight", "nil", "a tensor [C] of class weights" },
      { "ignore_index", "nil", "a label (1-based) whose targets count for nothing" },
      { "label_smoothing", "0", "mix the targets with the uniform distribution by this much" },
      { "reduction", '"mean"', '"mean", "sum" or "none" (a loss per target)' },
    },
    example = [[
local loss_fn = nn.CrossEntropyLoss()
local loss = loss_fn(mg.zeros(2, 3), mg.tensor({1, 3}, "int64"))
print(string.format("%.4f", loss:item()))   --> 1.0986
local smooth = nn.CrossEntropyLoss({label_smoothing = 0.1, weight = mg.tensor({1, 2, 1})})]],
    group = "Losses",
    see = { "F.cross_entropy", "nn.NLLLoss", "nn.BCEWithLogitsLoss" },
  },

  ["nn.NLLLoss"] = {
    sig = { "nn.NLLLoss([opts])", "loss_fn(log_probs, targets)" },
    doc = [[Negative log-likelihood as a module: loss_fn(log_probs, targets) is F.nll_loss(log_probs, targets, opts), minus the log-probability of each target class. log_probs are [N, C] (or [N, C, d...]), usually from LogSoftmax; targets are int64 class labels, 1-based. weight is kept as a buffer.]],
    opts = {
      { "weight", "nil", "a tensor [C] of class weights" },
      { "ignore_index", "nil", "a label (1-based) whose targets count for nothing" },
      { "reduction", '"mean"', '"mean", "sum" or "none"' },
    },
    example = [[
local lp = nn.LogSoftmax()(mg.zeros(1, 2))
print(string.format("%.4f", nn.NLLLoss()(lp, mg.tensor({2}, "int64")):item()))   --> 0.6931]],
    group = "Losses",
    see = { "F.nll_loss", "nn.LogSoftmax", "nn.CrossEntropyLoss" },
  },

  ["nn.MSELoss"] = {
    sig = { "nn.MSELoss([opts])", "loss_fn(input, target)" },
    doc = [[Mean squared error as a module: loss_fn(input, target) is F.mse_loss(input, target, opts), the mean (or sum) of (input - target)^2 over inputs of the same shape.]],
    opts = {
      { "reduction", '"mean"', '"mean", "sum" or "none" (elementwise)' },
    },
    example = [[
local loss_fn = nn.MSELoss()
print(loss_fn(mg.tensor({1.0, 2.0}), mg.zeros(2)):item())   --> 2.5]],
    group = "Losses",
    see = { "F.mse_loss", "nn.L1Loss", "nn.HuberLoss" },
  },

  ["nn.L1Loss"] = {
    sig = { "nn.L1Loss([opts])", "loss_fn(input, target)" },
    doc = [[Mean absolute error as a module: loss_fn(input, target) is F.l1_loss(input, target, opts), the mean (or sum) of |input - target| over inputs of the same shape.]],
    opts = {
      { "reduction", '"mean"', '"mean", "sum" or "none" (elementwise)' },
    },
    example = [[
print(nn.L1Loss()(mg.tensor({1.0, -2.0}), mg.zeros(2)):item())   --> 1.5]],
    group = "Losses",
    see = { "F.l1_loss", "nn.MSELoss", "nn.SmoothL1Loss" },
  },

  ["nn.SmoothL1Loss"] = {
    sig = { "nn.SmoothL1Loss([opts])", "loss_fn(input, target)" },
    doc = [[Smooth L1 loss as a module (F.smooth_l1_loss): for d = |input - target|, 0.5*d^2/beta where d < beta and d - 0.5*beta elsewhere, then the mean (or sum). It equals HuberLoss(delta = beta) divided by beta.]],
    opts = {
      { "beta", "1", "where the loss turns from quadratic to linear" },
      { "reduction", '"mean"', '"mean", "sum" or "none" (elementwise)' },
    },
    example = [[
print(nn.SmoothL1Loss()(mg.tensor({0.5, 3.0}), mg.zeros(2)):item())   --> 1.3125]],
    group = "Losses",
    see = { "F.smooth_l1_loss", "nn.HuberLoss", "nn.L1Loss" },
  },

  ["nn.HuberLoss"] = {
    sig = { "nn.HuberLoss([opts])", "loss_fn(input, target)" },
    doc = [[Huber loss as a module (F.huber_loss): for d = |input - target|, 0.5*d^2 where d < delta and delta*(d - 0.5*delta) elsewhere, then the mean (or sum).]],
    opts = {
      { "delta", "1", "where the loss turns from quadratic to linear" },
      { "reduction", '"mean"', '"mean", "sum" or "none" (elementwise)' },
    },
    example = [[
local loss_fn = nn.HuberLoss({delta = 2})
print(loss_fn(mg.tensor({0.5, 3.0}), mg.zeros(2)):item())   --> 2.0625]],
    group = "Losses",
    see = { "F.huber_loss", "nn.SmoothL1Loss", "nn.MSELoss" },
  },

  ["nn.BCELoss"] = {
    sig = { "nn.BCELoss([opts])", "loss_fn(probs, targets)" },
    doc = [[Binary cross-entropy on probabilities as a module (F.binary_cross_entropy): -(y*log p + (1 - y)*log(1 - p)) per element, the logs clamped at -100 as PyTorch's, then the mean (or sum). probs (after a sigmoid) and float targets in [0, 1] have the same shape. weight is kept as a buffer. BCEWithLogitsLoss on raw scores is more accurate.]],
    opts = {
      { "weight", "nil", "a tensor of per-element weights, broadcast against the loss" },
      { "reduction", '"mean"', '"mean", "sum" or "none" (elementwise)' },
    },
    example = [[
local loss = nn.BCELoss()(mg.tensor({0.5, 0.5}), mg.tensor({1.0, 0.0}))
print(string.format("%.4f", loss:item()))   --> 0.6931]],
    group = "Losses",
    see = { "F.binary_cross_entropy", "nn.BCEWithLogitsLoss", "nn.Sigmoid" },
  },

  ["nn.BCEWithLogitsLoss"] = {
    sig = { "nn.BCEWithLogitsLoss([opts])", "loss_fn(logits, targets)" },
    doc = [[Binary cross-entropy on raw scores as a module (F.binary_cross_entropy_with_logits): the sigmoid and the loss in one, stable for large scores. logits and float targets in [0, 1] have the same shape. pos_weight [C] scales the positive term of each class (more than 1 raises recall); weight and pos_weight are kept as buffers.]],
    opts = {
      { "weight", "nil", "a tensor of per-element weights, broadcast against the loss" },
      { "pos_weight", "nil", "a tensor [C] weighting the positive targets of each class" },
      { "reduction", '"mean"', '"mean", "sum" or "none" (elementwise)' },
    },
    example = [[
local loss_fn = nn.BCEWithLogitsLoss({pos_weight = mg.tensor({3.0})})
local loss = loss_fn(mg.zeros(2, 1), mg.tensor({{1.0}, {0.0}}))
print(string.format("%.4f", loss:item()))   --> 1.3863]],
    group = "Losses",
    see = { "F.binary_cross_entropy_with_logits", "nn.BCELoss" },
  },

  ---------------------------------------------------------------------------
  -- Containers

  ["nn.Sequential"] = {
    sig = { "nn.Sequential(m1, m2, ...)", "nn.Sequential({m1, m2, ...})" },
    doc = [[A chain of modules: seq(x) feeds x through each child in turn and returns the last output (each child takes one input). The children are named "1", "2", ... and index like a Lua array: seq[1], seq[-1] (the last), #seq, ipairs(seq); seq[2] = m replaces child 2 and seq:append(m) adds one. State dict names are "1.weight", ...; PyTorch's, from 0, with {torch = true}. Raises when an argument is not a module.]],
    example = [[
local net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
print(table.concat(net(mg.randn(3, 4)):shape(), "x"), #net)   --> 3x2  3
print(net[-1])   --> Linear(in=8, out=2, bias=true)  -- 18 params
net:append(nn.Softmax())
print(#net)      --> 4]],
    group = "Containers",
    instance = function() return require("moongrad.nn").Sequential() end,
    methods_of = "nn.Module",
    see = { "nn.ModuleList", "nn.ModuleDict", "nn.Module:state_dict_names" },
  },

  ["nn.Sequential:append"] = {
    sig = "seq:append(m)",
    doc = [[Adds module m as the next child (named #seq + 1) and returns the Sequential, so calls chain. Raises when m is not a module.]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 4)):append(nn.ReLU()):append(nn.Linear(4, 1))
print(#net, table.concat(net(mg.randn(5, 2)):shape(), "x"))   --> 3  5x1]],
    see = { "nn.Sequential", "nn.ModuleList:append" },
  },

  ["nn.ModuleList"] = {
    sig = "nn.ModuleList([{m1, m2, ...}])",
    doc = [[A list that holds modules so their parameters register, for a model that decides how to call them; it has no forward of its own. The children are named "1", "2", ... and index like a Lua array: list[i], list[-1], #list, ipairs(list); list[i] = m replaces one, append and extend add. State dict names are "1.weight", ...; PyTorch's, from 0, with {torch = true}. Raises when given a module or an element that is not one.]],
    example = [[
local Stack = nn.Module:extend("Stack")
function Stack:init(n) self.layers = nn.ModuleList({}) for i = 1, n do self.layers:append(nn.Linear(4, 4)) end end
function Stack:forward(x) for _, l in ipairs(self.layers) do x = l(x):relu() end return x end
local net = Stack(3)
print(#net.layers, table.concat(net(mg.randn(2, 4)):shape(), "x"))   --> 3  2x4
print(net:state_dict_names()[1])                                   --> layers.1.weight]],
    group = "Containers",
    instance = function() return require("moongrad.nn").ModuleList() end,
    methods_of = "nn.Module",
    see = { "nn.Sequential", "nn.ModuleDict" },
  },

  ["nn.ModuleList:append"] = {
    sig = "list:append(m)",
    doc = [[Adds module m as the next child (named #list + 1) and returns the list. Raises when m is not a module.]],
    example = [[
local list = nn.ModuleList()
list:append(nn.Linear(2, 2)):append(nn.ReLU())
print(#list, list[2]:class_name())   --> 2  ReLU]],
    see = { "nn.ModuleList", "nn.ModuleList:extend" },
  },

  ["nn.ModuleList:extend"] = {
    sig = { "list:extend({m1, m2, ...})", "nn.ModuleList:extend(name)" },
    doc = [[On an instance, appends each module of the array in order and returns the list; every element is checked before any is added, and a non-module raises. On the class itself, nn.ModuleList:extend(name) is nn.Module:extend: it makes a subclass.]],
    example = [[
local list = nn.ModuleList({nn.Linear(2, 2)})
list:extend({nn.ReLU(), nn.Linear(2, 1)})
print(#list, list[-1]:class_name())   --> 3  Linear]],
    see = { "nn.ModuleList:append", "nn.Module:extend" },
  },

  ["nn.ModuleDict"] = {
    sig = "nn.ModuleDict([{name = m, ...}])",
    doc = [[Modules by name, for a model that picks them by key; it has no forward of its own. The constructor's names register in sorted order (a Lua table has none); later assignments, d.name = m, in the order they happen. d.name or d["name"] gets one, #d counts them, and pairs(d) or d:items() iterate in order. Names must be strings; raises when a value is not a module.]],
    example = [[
local heads = nn.ModuleDict({cls = nn.Linear(4, 3), box = nn.Linear(4, 2)})
heads.extra = nn.Identity()
print(table.concat(heads:keys(), " "), #heads)    --> box cls extra  3
print(table.concat(heads.cls(mg.randn(1, 4)):shape(), "x"))   --> 1x3]],
    group = "Containers",
    instance = function() return require("moongrad.nn").ModuleDict() end,
    methods_of = "nn.Module",
    see = { "nn.ModuleList", "nn.Sequential" },
  },

  ["nn.ModuleDict:keys"] = {
    sig = "d:keys()",
    doc = [[An array of the dict's names in order (sorted for the constructor's, then in assignment order).]],
    example = [[
local d = nn.ModuleDict({b = nn.ReLU(), a = nn.Tanh()})
print(table.concat(d:keys(), " "))   --> a b]],
    see = { "nn.ModuleDict:values", "nn.ModuleDict:items" },
  },

  ["nn.ModuleDict:values"] = {
    sig = "d:values()",
    doc = [[An array of the dict's modules, in the order of keys().]],
    example = [[
local d = nn.ModuleDict({b = nn.ReLU(), a = nn.Tanh()})
print(d:values()[1]:class_name())   --> Tanh]],
    see = { "nn.ModuleDict:keys", "nn.ModuleDict:items" },
  },

  ["nn.ModuleDict:items"] = {
    sig = "for name, m in d:items() do ... end",
    doc = [[An iterator for a generic for over name and module, in the order of keys(); pairs(d) does the same.]],
    example = [[
local d = nn.ModuleDict({b = nn.ReLU(), a = nn.Tanh()})
for name, m in d:items() do print(name, m:class_name()) end
--> a  Tanh
--> b  ReLU]],
    see = { "nn.ModuleDict:keys" },
  },

  ["nn.ModuleDict:contains"] = {
    sig = "d:contains(name)",
    doc = [[Whether the dict holds a module called name.]],
    example = [[
local d = nn.ModuleDict({a = nn.ReLU()})
print(d:contains("a"), d:contains("z"))   --> true  false]],
    see = { "nn.ModuleDict" },
  },

  ---------------------------------------------------------------------------
  -- Init and utils

  ["nn.init"] = {
    sig = "nn.init",
    doc = [[PyTorch's initialisation schemes, filling a tensor in place: constants (zeros_, ones_, constant_), plain random (uniform_, normal_), and the fan-scaled ones (xavier_*, kaiming_*), with calculate_gain and fans to help. Each works under no_grad (so it can fill a parameter), draws from the RNG (mg.manual_seed applies) and returns the tensor. Fans follow PyTorch: for a weight [out, in, k1, k2, ...], fan_in = in*k1*k2*... and fan_out = out*k1*k2*....]],
    groups = { "Constant", "Random", "Scaled by fans", "Helpers" },
    group = "Init and utils",
    example = [[
local fc = nn.Linear(4, 3)
nn.init.xavier_uniform_(fc.weight)
nn.init.zeros_(fc.bias)
print(fc.bias:abs():sum():item(), fc.weight:is_leaf())   --> 0.0  true]],
    see = { "nn.Module:apply", "nn.Linear" },
  },

  ["nn.init.calculate_gain"] = {
    sig = "nn.init.calculate_gain(nonlinearity [, param])",
    doc = [[The gain recommended for a nonlinearity, as PyTorch's: 1 for "linear", "identity", "sigmoid" and the conv names ("conv2d", "conv_transpose2d", ...), 5/3 for "tanh", sqrt(2) for "relu", 3/4 for "selu", and sqrt(2 / (1 + slope^2)) for "leaky_relu" with param the slope (default 0.01). Raises for any other name.]],
    example = [[
print(nn.init.calculate_gain("relu"), nn.init.calculate_gain("linear"))   --> 1.4142135623731  1
print(string.format("%.4f", nn.init.calculate_gain("leaky_relu", 0.2)))    --> 1.3868]],
    group = "Helpers",
    see = { "nn.init.xavier_uniform_", "nn.init.kaiming_uniform_" },
  },

  ["nn.init.fans"] = {
    sig = "local fan_in, fan_out = nn.init.fans(t)",
    doc = [[The fan_in and fan_out of a weight shaped [out, in, k1, k2, ...]: in*k1*k2*... and out*k1*k2*..., as PyTorch's _calculate_fan_in_and_fan_out. Raises for a tensor of fewer than 2 dims.]],
    example = [[
print(nn.init.fans(mg.empty(16, 3, 3, 3)))   --> 27  144]],
    group = "Helpers",
    see = { "nn.init.xavier_uniform_", "nn.init.kaiming_uniform_" },
  },

  ["nn.init.constant_"] = {
    sig = "nn.init.constant_(t, value)",
    doc = [[Fills t with the number value, in place, and returns t. Raises when value is not a number.]],
    example = [[
print(nn.init.constant_(mg.empty(2, 3), 0.5):sum():item())   --> 3.0]],
    group = "Constant",
    see = { "nn.init.zeros_", "nn.init.ones_" },
  },

  ["nn.init.zeros_"] = {
    sig = "nn.init.zeros_(t)",
    doc = [[Fills t with zeros, in place, and returns t; the usual start for biases.]],
    example = [[
local fc = nn.Linear(3, 2)
print(nn.init.zeros_(fc.bias):abs():sum():item())   --> 0.0]],
    group = "Constant",
    see = { "nn.init.ones_", "nn.init.constant_" },
  },

  ["nn.init.ones_"] = {
    sig = "nn.init.ones_(t)",
    doc = [[Fills t with ones, in place, and returns t.]],
    example = [[
print(nn.init.ones_(mg.empty(2, 2)):sum():item())   --> 4.0]],
    group = "Constant",
    see = { "nn.init.zeros_", "nn.init.constant_" },
  },

  ["nn.init.uniform_"] = {
    sig = "nn.init.uniform_(t [, a [, b]])",
    doc = [[Fills t in place with draws from U(a, b) (defaults 0 and 1) and returns t.]],
    example = [[
local w = nn.init.uniform_(mg.empty(100), -0.1, 0.1)
print(w:min():item() >= -0.1, w:max():item() <= 0.1)   --> true  true]],
    group = "Random",
    see = { "nn.init.normal_", "nn.init.xavier_uniform_" },
  },

  ["nn.init.normal_"] = {
    sig = "nn.init.normal_(t [, mean [, std]])",
    doc = [[Fills t in place with draws from N(mean, std^2) (defaults 0 and 1) and returns t; normal_(w, 0, 0.02) is the start of many transformer weights.]],
    example = [[
local w = nn.init.normal_(mg.empty(100, 50), 0, 0.02)
print(string.format("%.2f", w:std():item()))   --> 0.02]],
    group = "Random",
    see = { "nn.init.uniform_", "nn.init.xavier_normal_" },
  },

  ["nn.init.xavier_uniform_"] = {
    sig = "nn.init.xavier_uniform_(t [, gain])",
    doc = [[Glorot initialisation: fills t in place from U(-a, a) with a = gain*sqrt(6 / (fan_in + fan_out)) (gain defaults to 1) and returns t. Suits tanh and sigmoid layers; MultiheadAttention's projections start this way. Raises for a tensor of fewer than 2 dims.]],
    example = [[
local w = nn.init.xavier_uniform_(mg.empty(50, 100))
print(w:abs():max():item() <= math.sqrt(6 / 150))   --> true]],
    group = "Scaled by fans",
    see = { "nn.init.xavier_normal_", "nn.init.calculate_gain", "nn.init.fans" },
  },

  ["nn.init.xavier_normal_"] = {
    sig = "nn.init.xavier_normal_(t [, gain])",
    doc = [[Glorot initialisation, normal form: fills t in place from N(0, std^2) with std = gain*sqrt(2 / (fan_in + fan_out)) (gain defaults to 1) and returns t. Raises for a tensor of fewer than 2 dims.]],
    example = [[
local w = nn.init.xavier_normal_(mg.empty(100, 50), nn.init.calculate_gain("tanh"))
print(string.format("%.1f", w:std():item()))   --> 0.2]],
    group = "Scaled by fans",
    see = { "nn.init.xavier_uniform_", "nn.init.calculate_gain" },
  },

  ["nn.init.kaiming_uniform_"] = {
    sig = "nn.init.kaiming_uniform_(t [, opts])",
    doc = [[He initialisation: fills t in place from U(-b, b) with b = sqrt(3)*gain/sqrt(fan), gain = calculate_gain(nonlinearity, a) and fan the fan_in or fan_out of mode, and returns t. PyTorch's Linear and Conv2d use a = sqrt(5), which gives b = 1/sqrt(fan_in). Note the defaults (leaky_relu with a = 0, which is relu's gain). Raises for fewer than 2 dims, an unknown option or a bad mode.]],
    opts = {
      { "a", "0", "the negative slope for leaky_relu (or param of calculate_gain)" },
      { "mode", '"fan_in"', '"fan_in" keeps the forward variance, "fan_out" the backward one' },
      { "nonlinearity", '"leaky_relu"', "the name calculate_gain takes" },
    },
    example = [[
local w = nn.init.kaiming_uniform_(mg.empty(100, 50), {nonlinearity = "relu"})
print(w:abs():max():item() <= math.sqrt(6 / 50))   --> true]],
    group = "Scaled by fans",
    see = { "nn.init.kaiming_normal_", "nn.init.calculate_gain", "nn.init.fans" },
  },

  ["nn.init.kaiming_normal_"] = {
    sig = "nn.init.kaiming_normal_(t [, opts])",
    doc = [[He initialisation, normal form: fills t in place from N(0, std^2) with std = gain/sqrt(fan), gain = calculate_gain(nonlinearity, a) and fan the fan_in or fan_out of mode, and returns t; the usual start for ReLU networks. Raises for fewer than 2 dims, an unknown option or a bad mode.]],
    opts = {
      { "a", "0", "the negative slope for leaky_relu (or param of calculate_gain)" },
      { "mode", '"fan_in"', '"fan_in" keeps the forward variance, "fan_out" the backward one' },
      { "nonlinearity", '"leaky_relu"', "the name calculate_gain takes" },
    },
    example = [[
local w = nn.init.kaiming_normal_(mg.empty(100, 50), {mode = "fan_out", nonlinearity = "relu"})
print(string.format("%.2f", w:std():item()))   --> 0.14]],
    group = "Scaled by fans",
    see = { "nn.init.kaiming_uniform_", "nn.init.calculate_gain" },
  },

  ["nn.utils"] = {
    sig = "nn.utils",
    doc = [[Helpers that work on a model's parameters rather than on activations; for now nn.utils.l2_penalty (also nn.l2_penalty). An L2 penalty of lambda equals coupled weight decay of 2*lambda (weight_decay in optim.SGD or Adam), not the decoupled decay of optim.AdamW.]],
    example = [[
local net = nn.Linear(2, 1)
local loss = net(mg.randn(4, 2)):pow(2):mean() + nn.utils.l2_penalty(net, 1e-4)
print(loss:dim())   --> 0]],
    group = "Init and utils",
    see = { "nn.l2_penalty", "optim.AdamW" },
  },

  ["nn.utils.l2_penalty"] = { alias = "nn.l2_penalty" },

  ["nn.l2_penalty"] = {
    sig = { "nn.l2_penalty(params, lambda [, opts])", "nn.utils.l2_penalty(params, lambda [, opts])" },
    doc = [[lambda times the sum of squares of every parameter, as a differentiable 0-d tensor to add to the loss (backward then gives each parameter 2*lambda*p more). params is a module (each of its parameters once) or an array of tensors; biases count too unless exclude(name, p) returns true (name is the dotted parameter name for a module, the array index for a list). With no parameters left it is a 0-d zero. This is coupled weight decay of 2*lambda; AdamW's decoupled decay is not any penalty. Raises unless lambda is a number >= 0.]],
    opts = {
      { "exclude", "nil", "function(name, p) returning true for parameters to leave out" },
    },
    example = [[
local fc = nn.Linear(2, 1)
nn.init.ones_(fc.weight); nn.init.constant_(fc.bias, 2)
print(nn.l2_penalty(fc, 0.5):item())   --> 3.0
local no_bias = function(name) return name:match("bias$") end
print(nn.l2_penalty(fc, 0.5, {exclude = no_bias}):item())   --> 1.0]],
    group = "Init and utils",
    see = { "nn.utils", "optim.AdamW" },
  },

  ["nn.is_module"] = {
    sig = { "nn.is_module(v)", "nn.Module.is_module(v)", "net:is_module()" },
    doc = [[Whether v is a module instance (of any class made with extend): true for nn.Linear(2, 2), false for a class itself, a plain table or any other value.]],
    example = [[
print(nn.is_module(nn.ReLU()), nn.is_module(nn.ReLU), nn.is_module({}))   --> true  false  false]],
    group = "Module",
    see = { "nn.Module", "nn.Module:is_a" },
  },

  ---------------------------------------------------------------------------
  -- Bridging PyTorch

  ["nn.from_torch"] = {
    sig = "nn.from_torch(sd)",
    doc = [[A new state dict with PyTorch's names turned into moongrad's, without the model at hand: every path segment made of digits but the last (a container index) goes up by 1, so "layers.0.weight" becomes "layers.1.weight"; the tensors are the same objects. Prefer load_state_dict(sd, {torch = true}) when you have the model: it knows which segments are indices, which matters for a ModuleDict with digit keys. Raises when sd is not a table of string names.]],
    example = [[
local sd = nn.from_torch({["0.weight"] = mg.zeros(2, 2), ["0.bias"] = mg.zeros(2)})
local net = nn.Sequential(nn.Linear(2, 2))
net:load_state_dict(sd)
print(sd["1.weight"] ~= nil, net[1].bias:sum():item())   --> true  0.0]],
    group = "Bridging PyTorch",
    see = { "nn.to_torch", "nn.Module:load_state_dict", "mg.load" },
  },

  ["nn.to_torch"] = {
    sig = "nn.to_torch(sd)",
    doc = [[A new state dict with moongrad's names turned into PyTorch's: every path segment made of digits but the last goes down by 1 ("1.weight" becomes "0.weight"), so PyTorch loads the file with strict=True; the tensors are the same objects. net:state_dict({torch = true}) does the same with the model's help. Raises on a segment 0, which is already PyTorch's numbering.]],
    example = [[
local net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
local sd = nn.to_torch(net:state_dict())
print(sd["0.weight"] ~= nil, sd["2.bias"] ~= nil)   --> true  true
local path = os.tmpname()
mg.save(path, sd)
os.remove(path)]],
    group = "Bridging PyTorch",
    see = { "nn.from_torch", "nn.Module:state_dict", "mg.save" },
  },
}
