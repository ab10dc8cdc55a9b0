-- PyTorch's state-dict names and moongrad's: containers counted from 0 or
-- from 1 (state_dict/load_state_dict {torch = true}, nn.from_torch,
-- nn.to_torch), files PyTorch wrote loading strictly and computing what
-- PyTorch computed (spec/fixtures/torch_bridge.py: an MLP, a CNN with batch
-- norm, a bidirectional projected LSTM, a bidirectional GRU), files moongrad wrote
-- loading into PyTorch (spec/fixtures/torch_check.py, where python3-torch
-- is installed), and the module variants a state dict records.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local checkpoint = require "moongrad.checkpoint"
local approx = require "support.approx"
local shell = require "support.shell"
local peers = require "support.peers"

local DIR = "spec/fixtures/torch_bridge/"

local error_of = require("support.check").err_of

local function sorted(list)
  table.sort(list)
  return list
end

local keys = require("support.check").sorted_keys

-- The models of torch_bridge.py, as a moongrad user writes them.
local MODELS = {
  mlp = function(dtype)
    return nn.Sequential(nn.Linear(4, 8, {dtype = dtype}), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(8, 3, {dtype = dtype}))
  end,
  cnn = function(dtype)
    return nn.Sequential(
      nn.Conv2d(2, 4, 3, {padding = 1, dtype = dtype}), nn.BatchNorm2d(4, {dtype = dtype}),
      nn.ReLU(), nn.MaxPool2d(2),
      nn.Sequential(nn.Conv2d(4, 4, 1, {bias = false, dtype = dtype}),
                    nn.BatchNorm2d(4, {dtype = dtype}), nn.ReLU()),
      nn.Flatten(), nn.Linear(4 * 2 * 2, 3, {dtype = dtype}))
  end,
}

-- A recurrent layer's output sequence through a linear head.
local Recurrent = nn.Module:extend("Recurrent")
function Recurrent:init(rnn, width, dtype)
  self.rnn = rnn
  self.head = nn.Linear(width, 2, {dtype = dtype})
end
function Recurrent:forward(x) return self.head((self.rnn(x))) end

MODELS.lstm = function(dtype)
  return Recurrent(nn.LSTM(3, 5, {num_layers = 2, bidirectional = true, proj_size = 4,
                                  dtype = dtype}), 8, dtype)
end
MODELS.gru = function(dtype)
  return Recurrent(nn.GRU(3, 4, {bidirectional = true, dtype = dtype}), 8, dtype)
end
local CASES = {"mlp", "cnn", "lstm", "gru"}

local function no_dropout(net)
  for _, m in ipairs(net:modules()) do
    if m:class_name() == "Dropout" then m.p = 0 end
  end
end

-- What torch_bridge.run computes, under the same names: train-mode output
-- and gradients, buffers after that forward, then the eval-mode output.
local function run(net, x, g)
  local out = {}
  net:train()
  x = x:detach():clone():requires_grad()
  local y = net(x)
  y:backward(g)
  out["y.train"], out["grad.x"] = y:detach(), x.grad
  -- the two spellings list the same entries in the same order
  local own, torch = net:state_dict_names(), net:state_dict_names({torch = true})
  local params, sd = {}, net:state_dict()
  for name, p in net:named_parameters() do params[name] = p end
  for i, name in ipairs(own) do
    if params[name] then
      out["grad." .. torch[i]] = params[name].grad
    else
      out["after." .. torch[i]] = sd[name]:clone()
    end
  end
  net:eval()
  mg.no_grad(function() out["y.eval"] = net(x:detach()) end)
  return out
end

describe("state-dict names", function()
  local function model()
    local Net = nn.Module:extend("Net")
    function Net:init()
      self.body = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 3)))
      self.heads = nn.ModuleList({nn.Linear(3, 1), nn.Linear(3, 2)})
      self.extra = nn.ModuleDict({out = nn.Linear(2, 2)})
    end
    return Net()
  end

  it("count a Sequential's and a ModuleList's children from 0 with {torch = true}", function()
    local net = model()
    assert.same({"body.0.weight", "body.0.bias", "body.2.0.weight", "body.2.0.bias",
                 "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias",
                 "extra.out.weight", "extra.out.bias"}, net:state_dict_names({torch = true}))
    assert.same({"body.1.weight", "body.1.bias", "body.3.1.weight", "body.3.1.bias",
                 "heads.1.weight", "heads.1.bias", "heads.2.weight", "heads.2.bias",
                 "extra.out.weight", "extra.out.bias"}, net:state_dict_names())
    assert.same(sorted(net:state_dict_names({torch = true})),
                keys(net:state_dict({torch = true})))
  end)

  it("load a state dict in PyTorch's names with {torch = true}, strict", function()
    local a, b = model(), model()
    local result = b:load_state_dict(a:state_dict({torch = true}), {torch = true})
    assert.same({missing = {}, unexpected = {}}, result)
    assert.same(a.heads[2].weight:totable(), b.heads[2].weight:totable())
    assert.same(a.body[3][1].bias:totable(), b.body[3][1].bias:totable())
  end)

  it("shift container indices without a model: nn.from_torch and nn.to_torch", function()
    local w = mg.ones(2)
    local sd = nn.from_torch({["0.weight"] = w, ["layers.10.norm.bias"] = w, scale = w,
                              ["blocks.0.attn.in_proj_weight"] = w})
    assert.same({"1.weight", "blocks.1.attn.in_proj_weight", "layers.11.norm.bias", "scale"},
                keys(sd))
    assert.is_true(rawequal(sd["1.weight"], w))
    assert.same({"0.weight", "blocks.0.attn.in_proj_weight", "layers.10.norm.bias", "scale"},
                keys(nn.to_torch(sd)))
    local net = model()
    assert.same(keys(net:state_dict({torch = true})), keys(nn.to_torch(net:state_dict())))
    assert.same(keys(net:state_dict()), keys(nn.from_torch(net:state_dict({torch = true}))))
  end)

  it("leave a parameter's own name alone even when it is digits", function()
    assert.same({"1.0"}, keys(nn.from_torch({["0.0"] = mg.ones(1)})))
  end)

  it("refuse to shift an index 0 to moongrad's names twice", function()
    assert.matches("nn.to_torch: 'heads.0.weight' has container index 0, but moongrad's " ..
                   "start at 1", error_of(nn.to_torch, {["heads.0.weight"] = mg.ones(1)}), 1, true)
    assert.matches("nn.from_torch: expects a state dict (a table of name = tensor), got string",
                   error_of(nn.from_torch, "model.safetensors"), 1, true)
    assert.matches("nn.to_torch: state dict names must be strings, got number 1",
                   error_of(nn.to_torch, {mg.ones(1)}), 1, true)
  end)

  it("refuse PyTorch's names without {torch = true}, even with strict = false", function()
    -- two layers of one shape: '1.weight' exists in both spellings, and
    -- strict = false alone would load PyTorch's second layer into the first
    local net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    local before = net[1].weight:totable()
    local sd = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)):state_dict({torch = true})
    for _, opts in ipairs({{}, {strict = false}}) do
      local err = error_of(net.load_state_dict, net, sd, opts)
      assert.matches("the names are PyTorch's (containers counted from 0): pass {torch = true} " ..
                     "or load nn.from_torch(sd)", err, 1, true)
    end
    assert.same(before, net[1].weight:totable())
    assert.matches("the names are moongrad's (containers counted from 1), not PyTorch's",
                   error_of(net.load_state_dict, net, net:state_dict(), {torch = true}), 1, true)
  end)

  it("reject unknown options", function()
    local net = model()
    assert.matches("Net: state_dict: unknown option 'torhc' (known: torch)",
                   error_of(net.state_dict, net, {torhc = true}), 1, true)
    assert.matches("Net: load_state_dict: unknown option 'torhc' (known: strict, torch)",
                   error_of(net.load_state_dict, net, {}, {torhc = true}), 1, true)
    assert.matches("Net: state_dict_names options must be a table, got string",
                   error_of(net.state_dict_names, net, "torch"), 1, true)
  end)
end)

describe("a PyTorch file", function()
  for _, case in ipairs(CASES) do
    for _, dtype in ipairs({"float64", "float32"}) do
      it(("(%s) loads strictly and computes what PyTorch did in %s"):format(case, dtype), function()
        local tol = dtype == "float64" and 1e-10 or 1e-5
        local net = MODELS[case](dtype)
        no_dropout(net)
        net:load_state_dict(mg.load(DIR .. case .. ".safetensors"), {torch = true})
        local io = mg.load(DIR .. case .. "_io.safetensors")
        local got = run(net, io.x:to(dtype), io.g:to(dtype))
        assert.same(keys(io), sorted({"x", "g", table.unpack(keys(got))}))
        for name, t in pairs(got) do
          local ok, err = pcall(approx.assert_close, t, io[name]:totable(), tol, tol)
          assert(ok, name .. ": " .. tostring(err))
        end
      end)
    end
  end

  it("loads through nn.from_torch, and a float32 file into a float32 model", function()
    local net = MODELS.mlp("float32")
    local sd = mg.load(DIR .. "mlp_f32.safetensors")
    assert.equal("float32", sd["0.weight"]:dtype())
    net:load_state_dict(nn.from_torch(sd))
    assert.same(sd["3.bias"]:totable(), net[4].bias:totable())
  end)
end)

describe("a file moongrad writes with {torch = true}", function()
  it("loads into PyTorch with strict=True and PyTorch computes the same", function()
    local why = peers.missing("torch", "python3-torch", "PyTorch's side")
    if why then pending(why) return end
    local dir, args = shell.tmpdir(), {}
    for _, case in ipairs(CASES) do
      for _, dtype in ipairs({"float64", "float32"}) do
        mg.manual_seed(7)
        local net = MODELS[case](dtype)
        no_dropout(net)
        local ref = mg.load(DIR .. case .. "_io.safetensors")
        local x, g = mg.randn(ref.x:shape()):to(dtype), mg.randn(ref.g:shape()):to(dtype)
        local state = ("%s/%s_%s.safetensors"):format(dir, case, dtype)
        local io_path = ("%s/%s_%s_io.safetensors"):format(dir, case, dtype)
        mg.save(state, net:state_dict({torch = true}))  -- before run() moves the statistics
        local io = run(net, x, g)
        io.x, io.g = x, g
        mg.save(io_path, io)
        args[#args + 1] = case .. " " .. shell.quote(state) .. " " .. shell.quote(io_path)
      end
    end
    local out, rc = shell.run_merged("cd spec/fixtures && /usr/bin/python3 torch_check.py " ..
                                     table.concat(args, " "))
    assert.equal(0, rc, out)
    os.execute("rm -rf " .. shell.quote(dir))
  end)
end)

describe("a state dict of a module with variants", function()
  -- Two classes with the same parameter names and different maths, as
  -- TransformerBlock (pre-norm) and TransformerEncoderLayer (post-norm).
  local Norm = nn.Module:extend("Norm")
  function Norm:init(first)
    self.norm_first = first
    self.fc = nn.Linear(2, 2)
  end
  function Norm:state_variant()
    return ("Norm(norm_first=%s)"):format(tostring(self.norm_first))
  end
  local function pair(first)
    return nn.Sequential(nn.Linear(2, 2), Norm(first))
  end
  local path
  before_each(function() path = os.tmpname() end)
  after_each(function() os.remove(path) end)

  it("records the variants and refuses to load into another one", function()
    local sd = pair(true):state_dict()
    local err = error_of(function() pair(false):load_state_dict(sd) end)
    assert.matches("wrong variant (1): '2' was saved from Norm(norm_first=true), the model " ..
                   "has Norm(norm_first=false) (same names, different maths)", err, 1, true)
    assert.matches("wrong variant", error_of(function()
      pair(false):load_state_dict(sd, {strict = false})
    end), 1, true)
    pair(true):load_state_dict(sd)
  end)

  it("keeps them through mg.save and mg.load, and nn.to_torch and nn.from_torch", function()
    mg.save(path, nn.to_torch(pair(true):state_dict()))
    local loaded, meta = mg.load(path, {metadata = true})
    assert.equal('{"2":"Norm(norm_first=true)"}', meta["moongrad.state.variants"])
    assert.matches("wrong variant", error_of(function()
      pair(false):load_state_dict(loaded, {torch = true})
    end), 1, true)
    assert.matches("wrong variant", error_of(function()
      pair(false):load_state_dict(nn.from_torch(loaded))
    end), 1, true)
    pair(true):load_state_dict(mg.load(path), {torch = true})
  end)

  it("keeps them through a checkpoint", function()
    checkpoint.save(path, {model = pair(true)})
    assert.matches("wrong variant", error_of(checkpoint.load, path, {model = pair(false)}),
                   1, true)
    checkpoint.load(path, {model = pair(true)})
  end)

  it("loads a foreign state dict, which records none, by the model's class", function()
    local plain = {}
    for k, v in pairs(pair(true):state_dict()) do plain[k] = v end
    pair(false):load_state_dict(plain)
  end)

  it("lets metadata given to mg.save win over what the state dict carries", function()
    mg.save(path, pair(true):state_dict(), {["moongrad.state.variants"] = "{}"})
    pair(false):load_state_dict(mg.load(path))
  end)
end)
