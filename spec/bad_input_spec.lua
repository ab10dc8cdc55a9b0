-- Bad input everywhere in the public Lua API (issue 11): every row does
-- one wrong thing and must raise a Lua error whose message names the
-- function and what was wrong with the argument, with no C-level noise and
-- no Lua internals leaking from moongrad's own code. After the whole table
-- the state must still compute correctly.
--
-- A row is {name, function, needles}: needles is a list of plain strings
-- that must all appear in the message (the function's name first, then the
-- offending value, shape, type or option). Each function builds whatever it
-- needs (a fresh model, optimizer or loader), so no row depends on another.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local F = require "moongrad.functional"
local optim = require "moongrad.optim"
local sched = require "moongrad.sched"
local data = require "moongrad.data"
local T = require "moongrad.transforms"
local train = require "moongrad.train"
local tune = require "moongrad.tune"
local checkpoint = require "moongrad.checkpoint"

local nan, inf = 0 / 0, math.huge

local function I(t) return mg.tensor(t, "int64") end
local function net() return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)) end
local function adam(m) return optim.Adam(m or net(), {lr = 1e-3}) end
local function dataset() return data.TensorDataset(mg.randn(8, 4), I{1, 2, 1, 2, 1, 2, 1, 2}) end
local function loader() return data.DataLoader(dataset(), {batch_size = 4}) end
local function images() return mg.rand(2, 1, 8, 8) end
local function space() return {lr = tune.uniform(0, 1)} end
local function fit_opts(extra)
  local m = net()
  local o = {train = loader(), optimizer = adam(m), epochs = 1, progress = false}
  for k, v in pairs(extra or {}) do o[k] = v end
  return m, o
end

-- Temporary files, removed after the table has run.
local temps = {}
local function tmp(contents)
  local path = os.tmpname()
  temps[#temps + 1] = path
  if contents then
    local f = assert(io.open(path, "wb"))
    f:write(contents)
    f:close()
  end
  return path
end
-- A FIFO, and a symbolic link to nothing, among the temporaries. The FIFO
-- is held open for reading and writing, so that a writer or reader that
-- wrongly opens it does not block (opening a FIFO blocks until its other
-- end is open).
local held = {}
local function fifo()
  local path = tmp()
  os.remove(path)
  assert(os.execute("mkfifo '" .. path .. "'"))
  held[#held + 1] = assert(io.open(path, "r+"))
  return path
end
local function dangling_link()
  local path = tmp()
  os.remove(path)
  assert(os.execute("ln -s '" .. path .. ".nowhere' '" .. path .. "'"))
  return path
end
local function saved_model(m)
  local path = tmp()
  mg.save(path, (m or net()):state_dict())
  return path
end
local function truncated_file()
  local path = saved_model()
  local f = assert(io.open(path, "rb"))
  local whole = f:read("a")
  f:close()
  return tmp(whole:sub(1, #whole - 20))
end

-- An Adam optimizer over m (a fresh net by default) after one step: it has
-- state for every parameter.
local function stepped_adam(m)
  m = m or net()
  local opt = adam(m)
  F.mse_loss(m(mg.ones(2, 4)), mg.zeros(2, 2)):backward()
  opt:step()
  return opt, m
end

-- A string row starts the rows of one module.
local rows = {
  -- tensors -------------------------------------------------------------
  "tensors",
  {"a table with a string in it as tensor data", function() return mg.tensor({1, "a"}) end,
   {"tensor", "string"}},
  {"ragged nested tables as tensor data", function() return mg.tensor({{1, 2}, {3}}) end,
   {"tensor", "ragged"}},
  {"an unknown dtype", function() return mg.tensor({1, 2}, "complex64") end,
   {"tensor", "complex64"}},
  -- the storage dtypes (float16, bfloat16, int32, int16, int8, bool; uint8's are with images)
  {"arithmetic on a float16 tensor", function() return mg.ones(2, "float16") * 2 end,
   {"mul", "float16", ":float()"}},
  {"a sum of a bool tensor", function() return mg.ones(2, "bool"):sum() end,
   {"sum", "bool", ":long()"}},
  {"a matmul of int32 matrices", function() return mg.ones(2, 2, "int32"):matmul(mg.ones(2, 2)) end,
   {"matmul", "int32", ":long()"}},
  {"randn asked for bfloat16", function() return mg.randn(2, "bfloat16") end,
   {"randn", "bfloat16", ":to(\"bfloat16\")"}},
  {"200 written into an int8 tensor", function() return mg.full({2}, 200, "int8") end,
   {"full", "200", "int8", "-128 to 127"}},
  {"1e6 written into a float16 tensor", function() return mg.zeros(2, "float16"):fill_(1e6) end,
   {"fill_", "1000000", "float16", "65504"}},
  {"a table mixing booleans and numbers", function() return mg.tensor({true, 1}) end,
   {"tensor", "booleans", "element 2", "dtype"}},
  {"a negative size", function() return mg.zeros(-1, 2) end, {"zeros", "-1"}},
  {"a NaN size", function() return mg.randn(nan) end, {"randn", "nan"}},
  {"a table where a size belongs", function() return mg.ones(2, {3}) end, {"ones", "table"}},
  {"shapes that do not broadcast", function() return mg.ones(2, 3) + mg.ones(4) end,
   {"add", "[2,3]", "[4]"}},
  {"matmul of mismatched inner sizes", function() return mg.ones(2, 3):matmul(mg.ones(2, 3)) end,
   {"matmul", "[2,3]"}},
  {"a sum over a dimension out of range", function() return mg.ones(2, 3):sum(3) end,
   {"sum", "3"}},
  {"a transpose of a dimension out of range", function() return mg.ones(2, 3):transpose(1, 5) end,
   {"transpose", "5"}},
  {"argmax over dimension 0", function() return mg.ones(2, 3):argmax(0) end, {"argmax", "0"}},
  {"a reshape to the wrong element count", function() return mg.ones(6):reshape(4, 2) end,
   {"reshape", "6"}},
  {"narrow past the end", function() return mg.ones(3):narrow(1, 3, 5) end, {"narrow", "5"}},
  {"index_select with float ids", function() return mg.ones(3):index_select(1, mg.ones(1)) end,
   {"index_select", "float32"}},
  {"index_select with an id out of range", function() return mg.ones(3):index_select(1, I{4}) end,
   {"index_select", "4"}},
  {"item of a 3-element tensor", function() return mg.ones(3):item() end, {"item", "3"}},
  {"randn of int64 (normal draws are not integers)", function() return mg.randn(2, "int64") end,
   {"randn", "int64"}},
  {"requires_grad on an int64 tensor", function() return I{1, 2}:requires_grad() end,
   {"requires_grad", "int64"}},
  {"backward from a non-scalar", function() return mg.ones(3):requires_grad():exp():backward() end,
   {"backward", "3"}},
  {"a string assigned as a gradient", function() local x = mg.ones(2); x.grad = "g" end,
   {"grad", "string"}},
  {"a gradient of the wrong shape", function() local x = mg.ones(2); x.grad = mg.ones(3) end,
   {"grad", "[3]"}},
  {"randperm of a negative count", function() return mg.randperm(-3) end, {"randperm", "-3"}},
  {"with_rng_stream of a number", function() return mg.with_rng_stream(1, 2, 3) end,
   {"with_rng_stream", "function", "number"}},
  {"with_rng_stream with a float seed", function() return mg.with_rng_stream(0.5, 2, print) end,
   {"with_rng_stream", "seed", "0.5"}},
  {"set_rng_state with a string stream", function()
    return mg.set_rng_state({seed = 1, offset = 0, stream = "x"})
  end, {"set_rng_state", "stream"}},
  {"zero threads", function() return mg.set_num_threads(0) end, {"set_num_threads", "0"}},
  {"no_grad of a string", function() return mg.no_grad("f") end, {"no_grad", "string"}},
  {"a cast to an unknown dtype", function() return mg.ones(2):to("float8") end,
   {"to", "float8"}},
  {"clamp with min above max", function() return mg.ones(3):clamp(2, 1) end, {"clamp", "2", "1"}},
  {"cat of mismatched shapes", function() return mg.cat({mg.ones(2, 3), mg.ones(2, 4)}, 1) end,
   {"cat", "[2,4]"}},
  {"gather with an index out of range", function() return mg.ones(2, 2):gather(2, I{{3, 1}, {1, 1}}) end,
   {"gather", "3"}},
  {"squeeze of dimension 5 of a vector", function() return mg.ones(3):squeeze(5) end, {"squeeze", "5"}},
  {"permute naming a dimension twice", function() return mg.ones(2, 3):permute(1, 1) end,
   {"permute", "1"}},
  {"an element index of nan", function() return mg.ones(3)[nan] end, {"index", "nan"}},
  {"arange with step 0", function() return mg.arange(1, 5, 0) end, {"arange", "step 0"}},
  {"an int64 tensor to the power -1", function() return I{0, 2} ^ -1 end,
   {"pow", "negative integer powers", "-1"}},
  {"an int64 tensor raised in place to the power -2", function() return I{0, 2}:pow_(-2) end,
   {"pow_", "negative integer powers", "-2"}},
  {"Cholesky of a NaN matrix", function() return mg.linalg.cholesky(mg.tensor({{4, 1}, {1, nan}})) end,
   {"linalg.cholesky", "order 2", "NaN"}},
  -- issue 18: one bound on element counts where shapes are made
  {"an expand to 2^64 elements", function() return mg.ones(1, 1):expand(2 ^ 32, 2 ^ 32) end,
   {"expand", "[4294967296,4294967296]", "576460752303423487"}},
  {"an expand to 2^63 elements", function() return mg.zeros(1, 2):expand(2 ^ 62, 2) end,
   {"expand", "[4611686018427387904,2]"}},
  {"totable of a 2^41-element expanded view", function()
    return mg.zeros(1, 2):expand(2 ^ 40, 2):totable()
  end, {"totable", "[1099511627776,2]", "2199023255552 elements"}},
  -- issue 18: writes into expanded (overlapping) views
  {"copy_ into an expanded view", function() return mg.zeros(1):expand(3):copy_(mg.tensor({1, 2, 3})) end,
   {"copy_", "[3]", "expanded"}},
  {"fill_ of an expanded view", function() return mg.zeros(1):expand(3):fill_(1) end,
   {"fill_", "[3]", "expanded"}},
  {"zero_ of an expanded view", function() return mg.ones(1, 2):expand(3, 2):zero_() end,
   {"zero_", "[3,2]", "expanded"}},
  {"masked_fill_ of an expanded view", function()
    return mg.zeros(1):expand(3):masked_fill_(mg.tensor({1, 0, 1}):gt(0), 2)
  end, {"masked_fill_", "[3]", "expanded"}},
  {"an element assigned into an expanded view", function() local e = mg.zeros(1):expand(3); e[2] = 5 end,
   {"set", "[3]", "expanded"}},
  {"uniform_ of an expanded view", function() return mg.zeros(1):expand(3):uniform_() end,
   {"uniform_", "[3]", "expanded"}},
  {"normal_ of an expanded view", function() return mg.zeros(1):expand(3):normal_() end,
   {"normal_", "[3]", "expanded"}},
  {"scatter_ into an expanded view", function()
    return mg.zeros(1, 3):expand(2, 3):scatter_(1, I{{1}}, 1)
  end, {"scatter_", "[2,3]", "expanded"}},
  {"chunk(2^31) of an empty tensor under a memory limit", function()
    mg.set_memory_limit(64 * 2 ^ 20)
    local ok, err = pcall(function() return mg.tensor({}):chunk(2 ^ 31) end)
    mg.set_memory_limit(0)
    if not ok then error(err, 0) end
  end, {"narrow", "not enough memory for a tensor header", "67108864"}},

  -- nn and functional ---------------------------------------------------
  "nn",
  {"a Linear with zero inputs", function() return nn.Linear(0, 3) end, {"Linear", "0"}},
  {"a Linear with a string size", function() return nn.Linear("4", 3) end, {"Linear", "in_features", '"4"'}},
  {"a Linear of int64 parameters", function() return nn.Linear(4, 3, {dtype = "int64"}) end,
   {"Linear", "dtype", "int64"}},
  {"a Linear given the wrong feature count", function() return nn.Linear(4, 3)(mg.ones(2, 5)) end,
   {"Linear", "4 features", "[2,5]"}},
  {"a Linear called on a string", function() return nn.Linear(4, 3)("x") end,
   {"Linear", "string"}},
  {"a Dropout with p = 1.5", function() return nn.Dropout(1.5) end, {"Dropout", "1.5"}},
  {"a Dropout with p = nan", function() return nn.Dropout(nan) end, {"Dropout", "nan"}},
  {"F.dropout with p = -0.1", function() return F.dropout(mg.ones(3), -0.1, true) end,
   {"dropout", "-0.1"}},
  {"a Conv2d with kernel size 0", function() return nn.Conv2d(3, 8, 0) end, {"Conv2d", "0"}},
  {"a Conv2d on a 3-D input", function() return nn.Conv2d(3, 8, 3)(mg.ones(2, 3, 8)) end,
   {"Conv2d", "[2,3,8]"}},
  {"a Conv2d on the wrong channel count", function() return nn.Conv2d(3, 8, 3)(mg.ones(1, 4, 8, 8)) end,
   {"Conv2d", "[1,4,8,8]"}},
  {"a Conv2d with padding_mode \"mirror\"", function() return nn.Conv2d(3, 8, 3, {padding_mode = "mirror"}) end,
   {"Conv2d", "padding_mode", "mirror"}},
  {"a reflect-padded Conv2d on an input smaller than its padding", function()
    return nn.Conv2d(1, 1, 3, {padding = 4, padding_mode = "reflect"})(mg.ones(1, 1, 8, 4))
  end, {"Conv2d", "reflect", "{4, 4}", "[1,1,8,4]"}},
  {"a ConvTranspose2d with padding_mode \"circular\"", function()
    return nn.ConvTranspose2d(3, 8, 3, {padding_mode = "circular"})
  end, {"ConvTranspose2d", "padding_mode", "circular"}},
  {"a ConvTranspose2d asked for an output size out of reach", function()
    return nn.ConvTranspose2d(1, 1, 3, {stride = 2})(mg.ones(1, 1, 3, 3), {20, 7})
  end, {"ConvTranspose2d", "{20, 7}", "{7, 7}", "{8, 8}"}},
  {"an Embedding id past the table", function() return nn.Embedding(10, 4)(I{11}) end,
   {"embedding", "11"}},
  {"an Embedding given float ids", function() return nn.Embedding(10, 4)(mg.ones(2)) end,
   {"embedding", "float32"}},
  {"a Sequential holding a string", function() return nn.Sequential(nn.Linear(2, 2), "relu") end,
   {"Sequential", "string"}},
  {"a BatchNorm1d on the wrong feature count", function() return nn.BatchNorm1d(4)(mg.ones(2, 5)) end,
   {"BatchNorm1d", "4 features", "[2,5]"}},
  {"a LayerNorm on the wrong last size", function() return nn.LayerNorm(4)(mg.ones(2, 5)) end,
   {"LayerNorm", "[4]", "[2,5]"}},
  {"a MaxPool2d of size 0", function() return nn.MaxPool2d(0) end, {"MaxPool2d", "0"}},
  {"an LSTM with input size 0", function() return nn.LSTM(0, 4) end, {"LSTM", "0"}},
  {"an LSTM with proj_size equal to hidden_size", function() return nn.LSTM(3, 4, {proj_size = 4}) end,
   {"LSTM", "proj_size = 4", "hidden_size = 4"}},
  {"a GRU with a projection", function() return nn.GRU(3, 4, {proj_size = 2}) end,
   {"GRU", "proj_size = 2", "only", "LSTM"}},
  {"an RNN with bidirectional = \"yes\"", function() return nn.RNN(3, 4, {bidirectional = "yes"}) end,
   {"RNN", "bidirectional", "yes"}},
  {"a bidirectional GRU given one direction's h0", function()
    return nn.GRU(3, 4, {bidirectional = true})(mg.ones(2, 5, 3), mg.zeros(1, 2, 4))
  end, {"GRU", "h0", "[1,2,4]", "[2,2,4]"}},
  {"attention heads that do not divide the width", function() return nn.MultiheadAttention(10, 3) end,
   {"MultiheadAttention", "10", "3"}},
  {"a key padding mask of the wrong shape", function()
    local x = mg.ones(2, 3, 8)
    return nn.MultiheadAttention(8, 2)(x, x, x, {key_padding_mask = I{{0, 0, 1}}})
  end, {"MultiheadAttention", "key_padding_mask", "[1,3]"}},
  {"keys narrower than kdim", function()
    local x = mg.ones(2, 3, 8)
    return nn.MultiheadAttention(8, 2, {kdim = 5})(x, x, x)
  end, {"MultiheadAttention", "key", "5", "[2,3,8]"}},
  {"an encoder layer with an unknown activation",
   function() return nn.TransformerEncoderLayer(8, 2, {activation = "tanh"}) end,
   {"TransformerEncoderLayer", "activation", "tanh"}},
  {"an encoder layer on the wrong width",
   function() return nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 8})(mg.ones(2, 3, 6)) end,
   {"TransformerEncoderLayer", "[2,3,6]"}},
  {"a TransformerEncoder of 0 layers",
   function() return nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 0) end,
   {"TransformerEncoder", "num_layers", "0"}},
  {"a TransformerEncoder padding mask of the wrong length", function()
    local enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, {dim_feedforward = 8}), 2)
    return enc(mg.ones(2, 3, 8), {src_key_padding_mask = I{{0, 0, 0, 1}, {0, 0, 1, 1}}})
  end, {"TransformerEncoder", "src_key_padding_mask", "[2,4]"}},
  {"cross_entropy with float targets", function() return F.cross_entropy(mg.ones(2, 3), mg.ones(2)) end,
   {"cross_entropy", "[2]", "int64"}},
  {"cross_entropy with a 0 class (labels are 1-based)",
   function() return F.cross_entropy(mg.ones(2, 3), I{0, 1}) end, {"cross_entropy", "0"}},
  {"softmax over dimension 3 of a matrix", function() return F.softmax(mg.ones(2, 2), 3) end,
   {"softmax", "3"}},
  {"mse_loss of different shapes", function() return F.mse_loss(mg.ones(3), mg.ones(4)) end,
   {"mse_loss", "[3]", "[4]"}},
  {"gelu with an unknown approximation", function() return F.gelu(mg.ones(2), {approximate = "fast"}) end,
   {"gelu", "fast"}},
  {"conv2d with stride 0", function()
    return F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(1, 1, 3, 3), nil, {stride = 0})
  end, {"conv2d", "stride", "0"}},
  -- issue 18: window geometry past int64 (UBSan stopped at these before)
  {"conv2d with padding 2^62", function()
    return F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(1, 1, 3, 3), nil, {padding = 2 ^ 62})
  end, {"conv2d", "padding", "4611686018427387904"}},
  {"conv2d with dilation 2^62", function()
    return F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(1, 1, 3, 3), nil, {dilation = 2 ^ 62})
  end, {"conv2d", "dilation", "4611686018427387904"}},
  {"conv2d with padding whose padded image passes the element bound", function()
    return F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(1, 1, 3, 3), nil, {padding = 2 ^ 30})
  end, {"conv2d", "padding", "2147483652x2147483652"}},
  {"conv2d with a huge expanded kernel and dilation", function()
    return F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(1, 1, 1, 1):expand(1, 1, 1, 2 ^ 40), nil,
                    {dilation = 2 ^ 30})
  end, {"conv2d", "larger than the padded input"}},
  -- issue 20: padding "same"/"valid", padding modes, transposed convolutions
  {"conv2d with padding \"same\" and stride 2", function()
    return F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(1, 1, 3, 3), nil, {padding = "same", stride = 2})
  end, {"conv2d", "same", "stride {2, 2}"}},
  {"conv2d with padding \"full\"", function()
    return F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(1, 1, 3, 3), nil, {padding = "full"})
  end, {"conv2d", "padding", "full"}},
  {"conv2d with padding \"same\" and a dilated kernel past the window bound", function()
    return F.conv2d(mg.ones(1, 1, 4, 4), mg.ones(1, 1, 1, 1):expand(1, 1, 1, 2 ^ 40), nil,
                    {padding = "same", dilation = 2 ^ 30})
  end, {"conv2d", "padding"}},
  {"conv_transpose2d with output_padding as large as the stride", function()
    return F.conv_transpose2d(mg.ones(1, 1, 3, 3), mg.ones(1, 1, 3, 3), nil,
                              {stride = 2, output_padding = 2})
  end, {"conv_transpose2d", "output_padding {2, 2}", "stride {2, 2}"}},
  {"conv_transpose2d with padding that leaves no output", function()
    return F.conv_transpose2d(mg.ones(1, 1, 2, 2), mg.ones(1, 1, 2, 2), nil, {padding = 2})
  end, {"conv_transpose2d", "[1,1,2,2]", "too small"}},
  {"conv_transpose2d with channels not divisible by groups", function()
    return F.conv_transpose2d(mg.ones(1, 3, 2, 2), mg.ones(3, 1, 2, 2), nil, {groups = 2})
  end, {"conv_transpose2d", "3 input channels", "groups 2"}},
  {"conv_transpose2d with a weight for other channels", function()
    return F.conv_transpose2d(mg.ones(1, 3, 2, 2), mg.ones(2, 1, 2, 2))
  end, {"conv_transpose2d", "[2,1,2,2]", "[1,3,2,2]"}},
  {"conv_transpose2d with stride 2^40 and a huge input", function()
    return F.conv_transpose2d(mg.ones(1, 1, 1, 1):expand(1, 1, 2 ^ 40, 1), mg.ones(1, 1, 1, 1), nil,
                              {stride = 2 ^ 30})
  end, {"conv_transpose2d", "too large"}},
  {"pad with reflect padding as large as the input", function()
    return F.pad(mg.ones(1, 1, 3, 3), {3, 3, 0, 0}, {mode = "reflect"})
  end, {"pad", "reflect", "{3, 3}", "[1,1,3,3]"}},
  {"pad with circular padding that wraps twice", function()
    return F.pad(mg.ones(1, 1, 3, 3), {0, 0, 4, 0}, {mode = "circular"})
  end, {"pad", "circular", "{4, 0}", "[1,1,3,3]"}},
  {"pad with padding 2^62", function()
    return F.pad(mg.ones(1, 1, 3, 3), {2 ^ 62, 0})
  end, {"pad", "4611686018427387904"}},
  {"pad with three values", function() return F.pad(mg.ones(2, 2), {1, 1, 1}) end, {"pad", "3 values"}},
  {"pad in reflect mode over a 1-D input", function()
    return F.pad(mg.ones(4), {1, 1}, {mode = "reflect"})
  end, {"pad", "reflect", "[4]"}},
  {"avg_pool2d with kernel 2^62 and padding 2^61", function()
    return F.avg_pool2d(mg.ones(1, 1, 4, 4), 2 ^ 62, {padding = 2 ^ 61})
  end, {"avg_pool2d", "kernel size", "4611686018427387904"}},
  {"max_pool2d with stride 2^40", function()
    return F.max_pool2d(mg.ones(1, 1, 4, 4), 2, {stride = 2 ^ 40})
  end, {"max_pool2d", "stride", "1099511627776"}},
  {"layer_norm with eps = nan", function()
    return F.layer_norm(mg.ones(2, 4), {4}, nil, nil, {eps = nan})
  end, {"layer_norm", "eps", "nan"}},
  {"a BatchNorm1d with momentum 2", function() return nn.BatchNorm1d(4, {momentum = 2}) end,
   {"BatchNorm1d", "momentum", "2"}},
  {"a BatchNorm1d with eps -1", function() return nn.BatchNorm1d(4, {eps = -1}) end,
   {"BatchNorm1d", "eps", "-1"}},
  {"a LeakyReLU slope of 'x'", function() return nn.LeakyReLU("x") end,
   {"LeakyReLU", "negative_slope", '"x"'}},
  {"an ELU with alpha = nan", function() return nn.ELU(nan) end, {"ELU", "alpha", "nan"}},
  {"an Embedding padding_idx past the table", function() return nn.Embedding(10, 4, {padding_idx = 11}) end,
   {"Embedding", "padding_idx", "11"}},
  {"a ModuleList holding a number", function() return nn.ModuleList({3}) end, {"ModuleList", "number"}},
  {"nll_loss with reduction 'avg'", function()
    return F.nll_loss(mg.ones(2, 3), I{1, 2}, {reduction = "avg"})
  end, {"nll_loss", "reduction", "avg"}},
  {"cross_entropy with label_smoothing 2", function()
    return F.cross_entropy(mg.ones(2, 3), I{1, 2}, {label_smoothing = 2})
  end, {"cross_entropy", "label_smoothing", "2"}},
  {"load_state_dict missing a key", function()
    local sd = net():state_dict(); sd["1.weight"] = nil
    return net():load_state_dict(sd)
  end, {"load_state_dict", "1.weight"}},
  {"load_state_dict with an extra key", function()
    local sd = net():state_dict(); sd["9.weight"] = mg.ones(2)
    return net():load_state_dict(sd)
  end, {"load_state_dict", "9.weight"}},
  {"load_state_dict with a wrong shape", function()
    local sd = net():state_dict(); sd["1.weight"] = mg.ones(3, 5)
    return net():load_state_dict(sd)
  end, {"load_state_dict", "1.weight", "[3,5]"}},
  {"load_state_dict of a string", function() return net():load_state_dict("model.safetensors") end,
   {"load_state_dict", "string"}},
  {"load_state_dict of PyTorch's names without {torch = true}", function()
    return net():load_state_dict(net():state_dict({torch = true}), {strict = false})
  end, {"load_state_dict", "PyTorch's", "torch = true"}},
  {"nn.to_torch of a name with index 0", function()
    return nn.to_torch({["0.weight"] = mg.ones(1)})
  end, {"nn.to_torch", "0.weight", "index 0"}},
  {"nn.from_torch of a file name", function() return nn.from_torch("model.safetensors") end,
   {"nn.from_torch", "string"}},
  {"load_state_dict of an int32 weight", function()
    local sd = net():state_dict(); sd["1.weight"] = mg.zeros(3, 4, "int32")
    return net():load_state_dict(sd)
  end, {"load_state_dict", "wrong dtype", "1.weight", "int32", "float32"}},
  {"Module:to(\"int8\")", function() return net():to("int8") end, {"to", "int8", "float16"}},

  -- optim ---------------------------------------------------------------
  "optim",
  {"Adam with lr = nan", function() return optim.Adam(net(), {lr = nan}) end, {"Adam", "lr", "nan"}},
  {"Adam with a negative lr", function() return optim.Adam(net(), {lr = -1}) end, {"Adam", "lr", "-1"}},
  {"SGD with lr as a string", function() return optim.SGD(net(), {lr = "0.1"}) end,
   {"SGD", "lr", '"0.1"'}},
  {"Adam with one beta", function() return optim.Adam(net(), {betas = {0.9}}) end, {"Adam", "betas"}},
  {"Adam with beta1 = 1.5", function() return optim.Adam(net(), {betas = {1.5, 0.999}}) end,
   {"Adam", "1.5"}},
  {"Adam with eps = inf", function() return optim.Adam(net(), {eps = inf}) end, {"Adam", "eps", "inf"}},
  {"Adam over a string", function() return optim.Adam("params") end, {"Adam", "string"}},
  {"Adam over no parameters", function() return optim.Adam({}) end, {"Adam", "empty"}},
  {"SGD with a negative momentum", function() return optim.SGD(net(), {lr = 0.1, momentum = -1}) end,
   {"SGD", "momentum", "-1"}},
  {"SGD nesterov without momentum", function() return optim.SGD(net(), {lr = 0.1, nesterov = true}) end,
   {"SGD", "nesterov"}},
  {"an unknown Adam option", function() return optim.Adam(net(), {lr = 1e-3, foo = 1}) end,
   {"Adam", "foo"}},
  {"RMSprop with alpha = -0.1", function() return optim.RMSprop(net(), {alpha = -0.1}) end,
   {"RMSprop", "alpha", "-0.1"}},
  {"AdamW with a negative weight decay", function() return optim.AdamW(net(), {weight_decay = -1}) end,
   {"AdamW", "weight_decay", "-1"}},
  {"Adam over an int64 tensor", function() return optim.Adam({I{1, 2}}) end, {"Adam", "int64"}},
  {"clip_grad_norm with a negative max_norm", function() return optim.clip_grad_norm(net(), -1) end,
   {"clip_grad_norm", "-1"}},
  {"clip_grad_norm with max_norm = nan", function() return optim.clip_grad_norm(net(), nan) end,
   {"clip_grad_norm", "nan"}},
  {"clip_grad_value of a string", function() return optim.clip_grad_value(net(), "1") end,
   {"clip_grad_value", "string"}},
  {"SGD with dampening = nan", function() return optim.SGD(net(), {lr = 0.1, dampening = nan}) end,
   {"SGD", "dampening", "nan"}},
  {"SGD with weight_decay = inf", function() return optim.SGD(net(), {lr = 0.1, weight_decay = inf}) end,
   {"SGD", "weight_decay", "inf"}},
  {"Adam with beta1 = nan", function() return optim.Adam(net(), {betas = {nan, 0.9}}) end,
   {"Adam", "betas[1]", "nan"}},
  {"a parameter group with lr = nan", function()
    return optim.Adam({{params = net():parameters(), lr = nan}})
  end, {"Adam", "parameter group 1", "lr", "nan"}},
  {"the same parameter twice", function()
    local p = net():parameters()[1]
    return optim.Adam({p, p})
  end, {"Adam", "parameter 2", "more than once"}},
  {"a step given a number for its closure", function() return adam():step(3) end,
   {"step", "closure", "number"}},
  {"clip_grad_value with a negative bound", function() return optim.clip_grad_value(net(), -1) end,
   {"clip_grad_value", "-1"}},
  {"an optimizer state_dict that is a string", function() return adam():load_state_dict("x") end,
   {"load_state_dict", "string"}},
  {"an optimizer state_dict with two groups for one", function()
    local sd = adam():state_dict()
    sd.param_groups[2] = sd.param_groups[1]
    return adam():load_state_dict(sd)
  end, {"load_state_dict", "2", "1"}},
  {"an optimizer state_dict with step 0", function()
    local opt, m = stepped_adam()
    local sd = opt:state_dict()
    sd.state[1].step = 0
    return adam(m):load_state_dict(sd)
  end, {"Adam", "load_state_dict", "parameter 1", "'step'", "got 0"}},
  {"an optimizer state_dict with a negative exp_avg_sq", function()
    local opt, m = stepped_adam()
    local sd = opt:state_dict()
    sd.state[2].exp_avg_sq:fill_(-1)
    return adam(m):load_state_dict(sd)
  end, {"Adam", "load_state_dict", "parameter 2", "'exp_avg_sq'", ">= 0", "-1"}},

  -- sched ---------------------------------------------------------------
  "sched",
  {"a scheduler given a non-optimizer", function() return sched.StepLR("opt", {step_size = 1}) end,
   {"StepLR", "optimizer", "string"}},
  {"a scheduler given a model", function() return sched.ExponentialLR(net(), {gamma = 0.9}) end,
   {"ExponentialLR", "optimizer"}},
  {"StepLR with step_size 0", function() return sched.StepLR(adam(), {step_size = 0}) end,
   {"StepLR", "step_size", "0"}},
  {"StepLR without step_size", function() return sched.StepLR(adam(), {}) end, {"StepLR", "step_size"}},
  {"StepLR with gamma = nan", function() return sched.StepLR(adam(), {step_size = 1, gamma = nan}) end,
   {"StepLR", "gamma", "nan"}},
  {"StepLR with an unknown option", function() return sched.StepLR(adam(), {step_size = 1, foo = 1}) end,
   {"StepLR", "foo"}},
  {"OneCycleLR without total_steps", function() return sched.OneCycleLR(adam(), {max_lr = 0.1}) end,
   {"OneCycleLR", "total_steps"}},
  {"OneCycleLR with negative total_steps",
   function() return sched.OneCycleLR(adam(), {max_lr = 0.1, total_steps = -5}) end,
   {"OneCycleLR", "total_steps", "-5"}},
  {"MultiStepLR with a fractional milestone",
   function() return sched.MultiStepLR(adam(), {milestones = {1.5}}) end,
   {"MultiStepLR", "milestones[1]", "1.5"}},
  {"MultiStepLR with a string of milestones",
   function() return sched.MultiStepLR(adam(), {milestones = "3"}) end,
   {"MultiStepLR", "milestones", "\"3\""}},
  {"CosineAnnealingLR with T_max = 0", function() return sched.CosineAnnealingLR(adam(), {T_max = 0}) end,
   {"CosineAnnealingLR", "T_max", "0"}},
  {"warm restarts with T_0 = 0", function() return sched.CosineAnnealingWarmRestarts(adam(), {T_0 = 0}) end,
   {"CosineAnnealingWarmRestarts", "T_0", "0"}},
  {"LinearLR starting at factor 0", function() return sched.LinearLR(adam(), {start_factor = 0}) end,
   {"LinearLR", "start_factor", "0"}},
  {"LambdaLR with a number for lr_lambda", function() return sched.LambdaLR(adam(), {lr_lambda = 3}) end,
   {"LambdaLR", "lr_lambda", "number"}},
  {"SequentialLR of strings",
   function() return sched.SequentialLR(adam(), {schedulers = {"a", "b"}, milestones = {2}}) end,
   {"SequentialLR", "schedulers"}},
  {"ReduceLROnPlateau with mode 'up'", function() return sched.ReduceLROnPlateau(adam(), {mode = "up"}) end,
   {"ReduceLROnPlateau", "mode", "up"}},
  {"ReduceLROnPlateau stepped without a metric", function()
    return sched.ReduceLROnPlateau(adam()):step()
  end, {"ReduceLROnPlateau", "step"}},
  {"a step to epoch 'x'", function() return sched.StepLR(adam(), {step_size = 1}):step("x") end,
   {"StepLR", "step", "string"}},
  {"OneCycleLR with max_lr = nan", function()
    return sched.OneCycleLR(adam(), {max_lr = nan, total_steps = 10})
  end, {"OneCycleLR", "max_lr", "nan"}},
  {"ExponentialLR with gamma = inf", function() return sched.ExponentialLR(adam(), {gamma = inf}) end,
   {"ExponentialLR", "gamma", "inf"}},
  {"CyclicLR with mode 'sine'", function()
    return sched.CyclicLR(adam(), {base_lr = 0.01, max_lr = 0.1, mode = "sine", cycle_momentum = false})
  end, {"CyclicLR", "mode", "sine"}},
  {"ReduceLROnPlateau with factor 1", function() return sched.ReduceLROnPlateau(adam(), {factor = 1}) end,
   {"ReduceLROnPlateau", "factor", "1"}},
  {"CosineAnnealingLR with eta_min = nan", function()
    return sched.CosineAnnealingLR(adam(), {T_max = 3, eta_min = nan})
  end, {"CosineAnnealingLR", "eta_min", "nan"}},
  {"a ChainedScheduler of numbers", function() return sched.ChainedScheduler({1, 2}) end,
   {"ChainedScheduler", "schedulers[1]", "number"}},
  {"a OneCycleLR stepped past its end", function()
    local s = sched.OneCycleLR(adam(), {max_lr = 0.1, total_steps = 2})
    for _ = 1, 5 do s:step() end
  end, {"OneCycleLR", "step 3", "total_steps = 2"}},
  {"a scheduler state_dict with last_epoch 'x'", function()
    return sched.StepLR(adam(), {step_size = 1}):load_state_dict({last_epoch = "x"})
  end, {"StepLR", "last_epoch", '"x"'}},
  {"a scheduler state_dict that is a number",
   function() return sched.StepLR(adam(), {step_size = 1}):load_state_dict(5) end,
   {"StepLR", "load_state_dict", "number"}},
  {"a scheduler state_dict setting its step method", function()
    local s = sched.StepLR(adam(), {step_size = 1})
    local sd = s:state_dict()
    sd.step = 4
    return s:load_state_dict(sd)
  end, {"StepLR", "load_state_dict", '"step"', "not part of the scheduler's state"}},

  -- data ----------------------------------------------------------------
  "data",
  {"a DataLoader with batch_size 0", function() return data.DataLoader(dataset(), {batch_size = 0}) end,
   {"DataLoader", "batch_size", "0"}},
  {"a DataLoader with batch_size 1.5", function() return data.DataLoader(dataset(), {batch_size = 1.5}) end,
   {"DataLoader", "batch_size", "1.5"}},
  {"a DataLoader with batch_size '8'", function() return data.DataLoader(dataset(), {batch_size = "8"}) end,
   {"DataLoader", "batch_size", "8"}},
  {"a DataLoader over a string", function() return data.DataLoader("train.csv", {batch_size = 8}) end,
   {"DataLoader", "dataset"}},
  {"a DataLoader with a misspelt option",
   function() return data.DataLoader(dataset(), {batch_size = 2, shufle = true}) end,
   {"DataLoader", "shufle"}},
  {"a DataLoader with a number as transform",
   function() return data.DataLoader(dataset(), {batch_size = 2, transform = 3}) end,
   {"DataLoader", "transform"}},
  {"a TensorDataset of nothing", function() return data.TensorDataset() end, {"TensorDataset", "at least one"}},
  {"a TensorDataset of different lengths", function() return data.TensorDataset(mg.ones(3), mg.ones(4)) end,
   {"TensorDataset", "3", "4"}},
  {"a TensorDataset of a string", function() return data.TensorDataset("x") end,
   {"TensorDataset", "string"}},
  {"a dataset sample 0", function() return dataset():get(0) end, {"get", "0"}},
  {"a Subset with id 0", function() return data.Subset(dataset(), {0}) end, {"Subset", "0"}},
  {"random_split lengths that do not sum", function() return data.random_split(dataset(), {3, 3}) end,
   {"random_split", "6", "8"}},
  {"random_split with a negative length", function() return data.random_split(dataset(), {-1, 9}) end,
   {"random_split", "-1"}},
  {"a loader state_dict that is a string", function() return loader():load_state_dict("x") end,
   {"load_state_dict", "table"}},
  {"a loader state_dict whose perm holds 1 twice", function()
    return loader():load_state_dict({perm = I{1, 1, 2, 3, 4, 5, 6, 7}, position = 1})
  end, {"DataLoader:load_state_dict", "perm", "1..8", "1 twice"}},
  {"a DataLoader with drop_last 'yes'",
   function() return data.DataLoader(dataset(), {batch_size = 2, drop_last = "yes"}) end,
   {"DataLoader", "drop_last", "yes"}},
  {"a DataLoader with shuffle = 1", function() return data.DataLoader(dataset(), {batch_size = 2, shuffle = 1}) end,
   {"DataLoader", "shuffle", "1"}},
  {"a DataLoader with num_workers -1", function() return data.DataLoader(dataset(), {num_workers = -1}) end,
   {"DataLoader", "num_workers", "-1"}},
  {"a DataLoader with num_workers '2'", function() return data.DataLoader(dataset(), {num_workers = "2"}) end,
   {"DataLoader", "num_workers", "2"}},
  {"a DataLoader with persistent_workers 1",
   function() return data.DataLoader(dataset(), {num_workers = 2, persistent_workers = 1}) end,
   {"DataLoader", "persistent_workers", "1"}},
  {"a DataLoader with prefetch_factor 0",
   function() return data.DataLoader(dataset(), {num_workers = 2, prefetch_factor = 0}) end,
   {"DataLoader", "prefetch_factor", "0"}},
  {"a loader state_dict whose epoch_seed is a string", function()
    return loader():load_state_dict({position = 0, epoch_seed = "42"})
  end, {"DataLoader:load_state_dict", "epoch_seed", "42"}},
  {"random_split with a nan length", function() return data.random_split(dataset(), {nan, 8}) end,
   {"random_split", "lengths[1]", "nan"}},
  {"collate of samples with different shapes", function()
    return data.collate({{mg.ones(2)}, {mg.ones(3)}})
  end, {"collate", "[3]", "[2]"}},
  {"collate of a string", function() return data.collate("batch") end, {"collate", "string"}},
  {"read_csv of a missing file", function() return data.read_csv("/nonexistent/moongrad.csv") end,
   {"read_csv", "/nonexistent/moongrad.csv"}},
  {"read_idx of a missing file", function() return data.read_idx("/nonexistent/moongrad.idx") end,
   {"read_idx", "/nonexistent/moongrad.idx"}},
  {"read_csv of a cell holding a NUL byte", function() return data.read_csv(tmp("a,b\n1,2\n3\0,4\n")) end,
   {"read_csv", ":3: column 1 (\"a\")", "NUL byte"}},
  {"read_csv of a hexadecimal cell", function() return data.read_csv(tmp("1,2\n0x10,4\n")) end,
   {"read_csv", ":2: column 1", "\"0x10\" is not a number", "hexadecimal"}},
  {"read_csv of a cell cut after its exponent", function() return data.read_csv(tmp("1,2\n3,1e\n")) end,
   {"read_csv", ":2: column 2", "\"1e\" is not a number"}},
  {"read_csv of text after a closing quote", function() return data.read_csv(tmp("a\n\"1\"5\n")) end,
   {"read_csv", ":2: column 1 (\"a\")", "after the closing quote"}},
  {"read_csv of a UTF-16 file", function() return data.read_csv(tmp("\255\254a\0,\0b\0\n\0")) end,
   {"read_csv", "UTF-16"}},
  {"read_idx of a gzip file whose CRC trailer is cut", function()
    local plain, gz = tmp(string.char(0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3)), tmp()
    assert(os.execute(("gzip -nc %s > %s"):format(plain, gz)))
    local f = assert(io.open(gz, "rb"))
    local bytes = f:read("a")
    f:close()
    return data.read_idx(tmp(bytes:sub(1, #bytes - 3)))
  end, {"read_idx", "truncated", "gzip"}},
  {"read_csv past the memory limit", function()
    local path = tmp(("1,2,3,4\n"):rep(50000))
    mg.set_memory_limit(mg.memory().tensor_bytes + 512 * 1024)
    local ok, err = pcall(data.read_csv, path)
    mg.set_memory_limit(0)
    assert(not ok, "read_csv read 800 KB of numbers under a 512 KiB limit")
    error(err, 0)
  end, {"read_csv", "not enough memory reading /"}},
  -- images and image folders (issue 19)
  {"image.load of a text file", function() return mg.image.load(tmp("hello, world\n")) end,
   {"image.load", "not a PNG or JPEG image", "68 65 6c 6c 6f"}},
  {"image.load of a FIFO", function() return mg.image.load(fifo()) end, {"image.load", "a FIFO"}},
  {"image.load of a directory", function() return mg.image.load("spec/fixtures/images") end,
   {"image.load", "spec/fixtures/images", "is a directory"}},
  {"image.load of a PNG cut after 100 bytes", function()
    local f = assert(io.open("spec/fixtures/images/rgb8.png", "rb"))
    local bytes = f:read(100)
    f:close()
    return mg.image.load(tmp(bytes))
  end, {"image.load", "truncated", "after 100 bytes", "PNG"}},
  {"image.load of a 100000 x 100000 PNG header", function()
    return mg.image.load("spec/fixtures/images/bad/bomb_100000_100000.png")
  end, {"image.load", "bomb_100000_100000.png", "100000 x 100000", "178956970"}},
  {"image.load with mode 'rgb'", function() return mg.image.load("spec/fixtures/images/rgb8.png", {mode = "rgb"}) end,
   {"image.load", "mode", "\"rgb\""}},
  {"image.decode of a number", function() return mg.image.decode(42) end, {"image.decode", "number"}},
  {"image.save of an int64 tensor", function() return mg.image.save(tmp(), mg.zeros({3, 2, 2}, "int64")) end,
   {"image.save", "int64"}},
  {"image.save of a [5,2,2] tensor", function() return mg.image.save(tmp(), mg.zeros({5, 2, 2}, "uint8")) end,
   {"image.save", "[5,2,2]"}},
  {"image.set_max_pixels(-1)", function() return mg.image.set_max_pixels(-1) end,
   {"image.set_max_pixels", "-1"}},
  {"an ImageFolder over a missing folder", function() return data.ImageFolder("/nonexistent/images") end,
   {"ImageFolder", "/nonexistent/images", "cannot read the directory"}},
  {"an ImageFolder over a folder without class folders", function()
    local dir = tmp()
    os.remove(dir)
    assert(os.execute("mkdir '" .. dir .. "'"))
    return data.ImageFolder(dir)
  end, {"ImageFolder", "Couldn't find any class folder"}},
  {"an ImageFolder with verify = 'yes'", function()
    return data.ImageFolder("spec/fixtures", {verify = "yes"})
  end, {"ImageFolder", "verify", "yes"}},

  -- transforms ----------------------------------------------------------
  "transforms",
  {"Normalize with a zero std", function() return T.Normalize {mean = {0.5}, std = {0}} end,
   {"Normalize", "std[1]", "zero"}},
  {"Normalize with mismatched mean and std", function() return T.Normalize {mean = {1, 2}, std = {1}} end,
   {"Normalize", "2", "1"}},
  {"Normalize with a string mean", function() return T.Normalize {mean = "x", std = {1}} end,
   {"Normalize", "mean"}},
  {"Normalize for 2 channels on 3", function()
    return T.Normalize {mean = {0, 0}, std = {1, 1}}(mg.ones(2, 3, 4, 4))
  end, {"Normalize", "2", "3 channels"}},
  {"RandomCrop without a size", function() return T.RandomCrop {} end, {"RandomCrop", "size"}},
  {"RandomCrop of size 0", function() return T.RandomCrop {size = 0} end, {"RandomCrop", "size"}},
  {"RandomCrop larger than the image", function() return T.RandomCrop {size = 40}(images()) end,
   {"RandomCrop", "40"}},
  {"RandomCrop with padding 2^62", function() return T.RandomCrop {size = 8, padding = 2 ^ 62} end,
   {"RandomCrop", "padding", "4611686018427387904"}},
  {"crop_with_padding with padding 2^62", function()
    return T.crop_with_padding(images(), I{1, 1}, I{1, 1}, 8, 2 ^ 62)
  end, {"crop_with_padding", "padding", "4611686018427387904"}},
  {"RandomCrop on a 2-D tensor", function() return T.RandomCrop {size = 4}(mg.ones(4, 4)) end,
   {"RandomCrop", "[4,4]"}},
  {"RandomHorizontalFlip on a vector", function() return T.RandomHorizontalFlip {}(mg.ones(3)) end,
   {"RandomHorizontalFlip", "[3]"}},
  {"RandomHorizontalFlip with p = 1.5", function() return T.RandomHorizontalFlip {p = 1.5} end,
   {"RandomHorizontalFlip", "p", "1.5"}},
  {"GaussianNoise with std = -1", function() return T.GaussianNoise {std = -1} end,
   {"GaussianNoise", "std", "-1"}},
  {"Compose of a string", function() return T.Compose("crop") end, {"Compose", "string"}},
  {"Compose holding a number", function() return T.Compose {T.Lambda(function(x) return x end), 3} end,
   {"Compose", "element 2", "number"}},
  {"Lambda of a number", function() return T.Lambda(3) end, {"Lambda", "number"}},
  {"MixUp with alpha = -1", function() return T.MixUp {alpha = -1, num_classes = 2} end,
   {"MixUp", "alpha", "-1"}},
  {"MixUp with labels of the wrong shape",
   function() return T.MixUp {alpha = 1, num_classes = 2}(images(), I{1, 2, 1}) end,
   {"MixUp", "[3]"}},
  {"CutMix with zero classes", function() return T.CutMix {alpha = 1, num_classes = 0} end,
   {"CutMix", "num_classes"}},
  {"RandomErasing with p = 2", function() return T.RandomErasing {p = 2} end,
   {"RandomErasing", "p", "2"}},
  {"Normalize with std = nan", function() return T.Normalize {mean = {0}, std = {nan}} end,
   {"Normalize", "std[1]", "nan"}},
  {"GaussianNoise with std = nan", function() return T.GaussianNoise {std = nan} end,
   {"GaussianNoise", "std", "nan"}},
  {"sample_beta with a = -1", function() return T.sample_beta(-1, 1) end, {"sample_beta", "-1"}},
  {"MixUp with a label past num_classes",
   function() return T.MixUp {alpha = 1, num_classes = 2}(images(), I{1, 3}) end,
   {"MixUp", "1..2", "3"}},
  {"RandomErasing on a vector", function() return T.RandomErasing {p = 1}(mg.ones(3)) end,
   {"RandomErasing", "[3]"}},
  {"RandomErasing with scale low > high", function() return T.RandomErasing {scale = {0.5, 0.1}} end,
   {"RandomErasing", "scale", "{0.5, 0.1}"}},
  {"RandomAffine with string degrees", function() return T.RandomAffine {degrees = "x"} end,
   {"RandomAffine", "degrees"}},
  {"RandomAffine on a 2-D tensor", function() return T.RandomAffine {degrees = 10}(mg.ones(8, 8)) end,
   {"RandomAffine", "[8,8]"}},
  -- the image transforms (issue 19): images [C, H, W] or batches, uint8 or float
  {"Resize of size 0", function() return T.Resize(0) end, {"Resize", "size", "0"}},
  {"Resize of an empty image", function() return T.Resize(4)(mg.zeros(3, 0, 5, "uint8")) end,
   {"Resize", "empty", "[3,0,5]"}},
  {"Resize on a 2-D tensor", function() return T.Resize(4)(mg.ones(5, 5)) end, {"Resize", "[5,5]"}},
  {"Resize with interpolation 'area'", function() return T.Resize(4, {interpolation = "area"}) end,
   {"Resize", "interpolation", "area"}},
  {"resize with max_size below the size", function() return T.F.resize(mg.ones(3, 5, 6), 10, {max_size = 8}) end,
   {"resize", "max_size", "8"}},
  {"RandomResizedCrop with scale low > high", function() return T.RandomResizedCrop(8, {scale = {0.9, 0.1}}) end,
   {"RandomResizedCrop", "scale", "{0.9, 0.1}"}},
  {"RandomResizedCrop with a negative ratio", function() return T.RandomResizedCrop(8, {ratio = {-1, 2}}) end,
   {"RandomResizedCrop", "ratio", "-1"}},
  {"CenterCrop of size {0, 4}", function() return T.CenterCrop {0, 4} end, {"CenterCrop", "size", "0"}},
  {"crop of height 0", function() return T.F.crop(mg.ones(3, 5, 5), 1, 1, 0, 3) end, {"crop", "height", "0"}},
  {"pad with reflect past the image", function()
    return T.F.pad(mg.ones(3, 4, 4), 4, {padding_mode = "reflect"})
  end, {"pad", "reflect", "4x4"}},
  {"ColorJitter with brightness = -0.5", function() return T.ColorJitter {brightness = -0.5} end,
   {"ColorJitter", "brightness", "-0.5"}},
  {"ColorJitter with hue = 0.7", function() return T.ColorJitter {hue = 0.7} end, {"ColorJitter", "hue", "0.7"}},
  {"adjust_hue with factor 0.6", function() return T.F.adjust_hue(mg.rand(3, 4, 4), 0.6) end,
   {"adjust_hue", "0.6", "[-0.5, 0.5]"}},
  {"adjust_brightness with factor -1", function() return T.F.adjust_brightness(mg.rand(3, 4, 4), -1) end,
   {"adjust_brightness", "-1"}},
  {"adjust_saturation of a 4-channel image", function()
    return T.F.adjust_saturation(mg.rand(4, 5, 5), 1.2)
  end, {"adjust_saturation", "1 or 3 channels", "4"}},
  {"Normalize on a uint8 image", function()
    return T.Normalize {mean = {0.5}, std = {0.5}}(mg.zeros(1, 4, 4, "uint8"))
  end, {"Normalize", "uint8", "ToTensor"}},
  {"Grayscale with 2 output channels", function() return T.Grayscale {num_output_channels = 2} end,
   {"Grayscale", "num_output_channels", "2"}},
  {"RandomRotation with degrees = -5", function() return T.RandomRotation(-5) end,
   {"RandomRotation", "degrees", "-5"}},
  {"RandomRotation with expand on a batch", function()
    mg.manual_seed(1)
    return T.RandomRotation({10, 80}, {expand = true})(mg.ones(4, 3, 9, 13, "uint8"))
  end, {"RandomRotation", "different sizes"}},
  {"rotate with a fill for 2 channels of 3", function()
    return T.F.rotate(mg.rand(3, 4, 4), 10, {fill = {1, 2}})
  end, {"rotate", "2 fill values", "3 channels"}},
  {"RandomCrop of a uint8 image with fill 300", function()
    return T.RandomCrop {size = 4, padding = 1, fill = 300}(mg.zeros(3, 4, 4, "uint8"))
  end, {"RandomCrop", "fill 300", "uint8"}},
  {"ToTensor of an int64 tensor", function() return T.ToTensor()(mg.zeros(3, 4, 4, "int64")) end,
   {"ToTensor", "int64"}},
  {"ConvertImageDtype to int64", function() return T.ConvertImageDtype("int64") end,
   {"ConvertImageDtype", "int64"}},

  -- train ---------------------------------------------------------------
  "train",
  {"fit without an optimizer", function()
    local m, o = fit_opts(); o.optimizer = nil
    return train.fit(m, o)
  end, {"fit", "optimizer"}},
  {"fit of a string model", function() local _, o = fit_opts(); return train.fit("net", o) end,
   {"fit", "model"}},
  {"fit with a string for options", function() return train.fit(net(), "fast") end, {"fit", "options"}},
  {"fit with epochs = -1", function() local m, o = fit_opts{epochs = -1}; return train.fit(m, o) end,
   {"fit", "epochs", "-1"}},
  {"fit with epochs = 'ten'", function() local m, o = fit_opts{epochs = "ten"}; return train.fit(m, o) end,
   {"fit", "epochs", '"ten"'}},
  {"fit with loss = 'mse'", function() local m, o = fit_opts{loss = "mse"}; return train.fit(m, o) end,
   {"fit", "loss", "string"}},
  {"fit with scheduler = 'cos'", function() local m, o = fit_opts{scheduler = "cos"}; return train.fit(m, o) end,
   {"fit", "scheduler", '"cos"'}},
  {"fit with callbacks = 'x'", function() local m, o = fit_opts{callbacks = "x"}; return train.fit(m, o) end,
   {"fit", "callbacks", "string"}},
  {"fit with monitor = 3", function() local m, o = fit_opts{monitor = 3}; return train.fit(m, o) end,
   {"fit", "monitor", "3"}},
  {"fit with a number as train loader", function()
    local m, o = fit_opts{train = 3}
    return train.fit(m, o)
  end, {"fit", "train", "number"}},
  {"fit with a misspelt option", function()
    local m, o = fit_opts{epoch = 3}
    return train.fit(m, o)
  end, {"fit", "epoch"}},
  {"fit with scheduler_step 'sometimes'", function()
    local m, o = fit_opts{scheduler_step = "sometimes"}
    return train.fit(m, o)
  end, {"fit", "scheduler_step", "sometimes"}},
  {"fit with a string checkpoint", function()
    local m, o = fit_opts{checkpoint = "ckpt"}
    return train.fit(m, o)
  end, {"fit", "checkpoint"}},
  {"fit_job without an optimizer", function()
    local m, o = fit_opts(); o.optimizer = nil
    return train.fit_job(m, o):run()   -- a job checks its options on its first run
  end, {"fit", "optimizer"}},
  {"a job slice of -1 seconds", function()
    local m, o = fit_opts()
    return train.fit_job(m, o):run {seconds = -1}
  end, {"run", "seconds", "-1"}},
  {"evaluate on a string loader", function() return train.evaluate(net(), "val") end,
   {"evaluate", "string"}},
  {"evaluate with an unknown metric", function()
    return train.evaluate(net(), loader(), {metrics = {"f7"}})
  end, {"metrics", "unknown metric", "f7"}},
  {"a job slice of 0 batches", function()
    local m, o = fit_opts()
    return train.fit_job(m, o):run {batches = 0}
  end, {"run", "batches", "0"}},
  {"evaluate of a string model", function() return train.evaluate("net", loader()) end,
   {"evaluate", "model", "string"}},
  {"an Accumulator given a string", function() return train.Accumulator():add("out") end,
   {"Accumulator:add", "string"}},
  {"EarlyStopping monitoring a number", function() return train.EarlyStopping {monitor = 3} end,
   {"EarlyStopping", "monitor", "number"}},
  {"ModelCheckpoint in mode 'up'", function() return train.ModelCheckpoint {path = tmp(), mode = "up"} end,
   {"ModelCheckpoint", "mode", "up"}},
  {"a HistoryLogger with a number as csv path", function() return train.HistoryLogger {csv = 3} end,
   {"HistoryLogger", "csv", "number"}},
  {"a HistoryLogger with a NUL byte in its json path", function()
    return train.HistoryLogger {json = "run/h\0.json"}
  end, {"HistoryLogger", "json", "NUL byte"}},
  {"history_json of a number", function() return train.history_json(3) end, {"history_json", "number"}},
  {"EarlyStopping in mode 'sideways'", function() return train.EarlyStopping {mode = "sideways"} end,
   {"EarlyStopping", "mode", "sideways"}},
  {"EarlyStopping with patience -1", function() return train.EarlyStopping {patience = -1} end,
   {"EarlyStopping", "patience", "-1"}},
  {"ModelCheckpoint without a path", function() return train.ModelCheckpoint {} end,
   {"ModelCheckpoint", "path"}},
  {"history_csv of a string history", function() return train.history_csv("h", tmp()) end,
   {"history_csv", "string"}},

  -- tune ----------------------------------------------------------------
  "tune",
  {"uniform with low > high", function() return tune.uniform(1, 0) end, {"tune.uniform", "1", "0"}},
  {"loguniform from 0", function() return tune.loguniform(0, 1) end, {"tune.loguniform", "0"}},
  {"an empty choice", function() return tune.choice {} end, {"tune.choice", "empty"}},
  {"a choice of a table", function() return tune.choice {{}} end, {"tune.choice", "table"}},
  {"uniform from nan", function() return tune.uniform(nan, 1) end, {"tune.uniform", "nan"}},
  {"int with a fractional low", function() return tune.int(1.5, 3) end, {"tune.int", "1.5"}},
  {"logint from -1", function() return tune.logint(-1, 8) end, {"tune.logint", "-1"}},
  {"a Study with an unknown sampler", function()
    return tune.Study {space = space(), sampler = "annealing"}
  end, {"tune.Study", "sampler", "annealing"}},
  {"a Study with an unknown pruner", function()
    return tune.Study {space = space(), pruner = "never"}
  end, {"tune.Study", "pruner", "never"}},
  {"a grid Study without a space", function() return tune.Study {sampler = "grid"} end,
   {"tune.Study", "grid", "space"}},
  {"a grid Study over fixed values only", function()
     return tune.Study {space = {lr = 0.1}, sampler = "grid"} end, {"tune.Study", "grid"}},
  {"a Study with a suggestion outside its range", function()
     local t = tune.Study {}:ask()
     return t:suggest_float("lr", 1, 0) end, {"suggest_float", "lr", "greater"}},
  {"a Study with direction 'up'", function() return tune.Study {space = space(), direction = "up"} end,
   {"tune.Study", "direction", "up"}},
  {"a Study with a numeric key in its space", function()
    return tune.Study {space = {tune.uniform(0, 1)}}
  end, {"tune", "parameter names", "1"}},
  {"a Study with a string seed", function() return tune.Study {space = space(), seed = "x"} end,
   {"tune.Study", "seed", "x"}},
  {"a Study with an unknown option", function() return tune.Study {space = space(), trails = 3} end,
   {"tune.Study", "trails"}},
  {"optimize of a string", function()
    return tune.Study {space = space()}:optimize("f", {trials = 1})
  end, {"optimize", "objective"}},
  {"optimize without trials", function()
    return tune.Study {space = space()}:optimize(function() return 0 end, {})
  end, {"optimize", "trials"}},
  {"optimize with trials = -1", function()
    return tune.Study {space = space()}:optimize(function() return 0 end, {trials = -1})
  end, {"optimize", "trials", "-1"}},
  {"optimize with a trial_timeout of 0", function()
    return tune.Study {space = space()}:optimize(function() return 0 end, {trials = 1, trial_timeout = 0})
  end, {"optimize", "trial_timeout", "0"}},
  {"a TrialCallback of a string", function() return tune.TrialCallback("trial") end,
   {"tune.TrialCallback", "trial"}},
  {"uniform up to inf", function() return tune.uniform(0, inf) end, {"tune.uniform", "inf"}},
  {"optimize with workers = -1", function()
    return tune.Study {space = space()}:optimize(function() return 0 end, {trials = 1, workers = -1})
  end, {"optimize", "workers", "-1"}},
  {"a leaderboard of the top -1", function() return tune.Study {space = space()}:leaderboard {top = -1} end,
   {"leaderboard", "top", "-1"}},
  {"a study plot to a number", function() return tune.Study {space = space()}:plot(3) end,
   {"study:plot", "path", "number"}},
  {"a study CSV written to a table", function() return tune.Study {space = space()}:write_csv({}) end,
   {"study:write_csv", "path", "table"}},
  {"a study CSV written onto a FIFO", function() return tune.Study {space = space()}:write_csv(fifo()) end,
   {"study:write_csv", "FIFO", "not a regular file"}},
  {"a study plot written onto a directory", function() return tune.Study {space = space()}:plot("/tmp") end,
   {"lines", "/tmp", "is a directory"}},
  {"a Study whose path has a NUL byte", function()
    return tune.Study {space = space(), path = "s\0.jsonl"}
  end, {"tune.Study", "NUL byte"}},
  {"a MedianPruner with warmup_steps -1", function() return tune.MedianPruner {warmup_steps = -1} end,
   {"tune.MedianPruner", "warmup_steps", "-1"}},
  {"a TPESampler with gamma 2", function() return tune.TPESampler {gamma = 2} end,
   {"tune.TPESampler", "gamma", "2"}},
  {"a BayesSampler with an unknown option", function() return tune.BayesSampler {warmup = 3} end,
   {"BayesSampler", "warmup"}},

  -- checkpoints ---------------------------------------------------------
  "checkpoints",
  {"mg.load of a missing file", function() return mg.load("/nonexistent/model.safetensors") end,
   {"load", "/nonexistent/model.safetensors"}},
  {"mg.load of a table", function() return mg.load({}) end, {"load", "table"}},
  {"mg.load of a truncated file", function() return mg.load(truncated_file()) end,
   {"load", "truncated"}},
  {"mg.load of a file that is not safetensors", function() return mg.load(tmp("garbage, not a header")) end,
   {"load"}},
  {"mg.load of an empty file", function() return mg.load(tmp("")) end, {"load"}},
  {"mg.load of a U32 tensor", function()
    local h = '{"ids":{"dtype":"U32","shape":[1],"data_offsets":[0,4]}}'
    local path = tmp(string.pack("<I8", #h) .. h .. "\1\0\0\0")
    return mg.load(path)
  end, {"load", "tensor 'ids'", "unsupported dtype 'U32'", "I32"}},
  {"mg.save of a string", function() return mg.save(tmp(), "weights") end, {"save", "string"}},
  {"mg.save of a table holding a string", function() return mg.save(tmp(), {w = "x"}) end,
   {"save", "w", "string"}},
  {"mg.save with a tensor under a number key", function() return mg.save(tmp(), {mg.ones(2)}) end,
   {"save", "names must be strings", "number"}},
  {"mg.load of a directory", function() return mg.load("/tmp") end, {"load", "/tmp", "not a regular file"}},
  {"mg.load of a FIFO", function() return mg.load(fifo()) end, {"load", "FIFO", "not a regular file"}},
  {"mg.load of a path with a NUL byte", function() return mg.load("model\0.safetensors") end,
   {"load", "NUL byte", "model"}},
  {"mg.save onto a directory", function() return mg.save("/tmp", {w = mg.ones(2)}) end,
   {"save", "/tmp", "is a directory", "nothing was written"}},
  {"mg.save onto a FIFO", function() return mg.save(fifo(), {w = mg.ones(2)}) end,
   {"save", "FIFO", "not a regular file"}},
  {"mg.save through a dangling symbolic link", function()
    return mg.save(dangling_link(), {w = mg.ones(2)})
  end, {"save", "symbolic link", "does not exist"}},
  {"mg.save to a path with a NUL byte", function()
    return mg.save("model\0.safetensors", {w = mg.ones(2)})
  end, {"save", "NUL byte", "model"}},
  {"mg.load with options 3", function() return mg.load(saved_model(), 3) end, {"load", "options", "number"}},
  {"checkpoint.save of a function in extra", function()
    return checkpoint.save(tmp(), {model = net(), extra = {f = print}})
  end, {"checkpoint.save", "extra.f", "function"}},
  {"checkpoint.save of a string optimizer", function()
    return checkpoint.save(tmp(), {model = net(), optimizer = "adam"})
  end, {"checkpoint.save", "optimizer", "string"}},
  {"mg.save into a missing directory", function()
    return mg.save("/nonexistent/dir/model.safetensors", {w = mg.ones(2)})
  end, {"save", "/nonexistent/dir/model.safetensors"}},
  {"a model loaded from a file of another shape", function()
    return nn.Linear(4, 5):load_state_dict(mg.load(saved_model(nn.Linear(4, 3))))
  end, {"load_state_dict", "weight", "[3,4]"}},
  {"checkpoint.save of a string model", function()
    return checkpoint.save(tmp(), {model = "net"})
  end, {"checkpoint.save", "model", "string"}},
  {"checkpoint.save to a number path", function()
    return checkpoint.save(42, {model = net()})
  end, {"checkpoint.save", "path", "number"}},
  {"checkpoint.save with a string epoch", function()
    return checkpoint.save(tmp(), {model = net(), epoch = "3"})
  end, {"checkpoint.save", "epoch", "string"}},
  {"checkpoint.save with an unknown option", function()
    return checkpoint.save(tmp(), {model = net(), epoc = 3})
  end, {"checkpoint.save", "epoc"}},
  {"checkpoint.load of a missing file", function()
    return checkpoint.load("/nonexistent/ckpt.safetensors", {model = net()})
  end, {"load", "/nonexistent/ckpt.safetensors"}},
  {"checkpoint.load of a truncated file", function()
    return checkpoint.load(truncated_file(), {model = net()})
  end, {"load", "truncated"}},
  {"checkpoint.load into a model of another shape", function()
    local path = tmp()
    checkpoint.save(path, {model = nn.Linear(4, 3)})
    return checkpoint.load(path, {model = nn.Linear(4, 5)})
  end, {"load", "weight"}},
  {"checkpoint.load of a plain state dict", function()
    return checkpoint.load(saved_model(), {model = net()})
  end, {"checkpoint.load", "not a moongrad checkpoint"}},
  {"checkpoint.load asking for an optimizer the file lacks", function()
    local path, m = tmp(), net()
    checkpoint.save(path, {model = m})
    return checkpoint.load(path, {model = m, optimizer = adam(m)})
  end, {"checkpoint.load", "optimizer"}},
  {"checkpoint.load with an unknown option", function()
    return checkpoint.load(saved_model(), {modle = net()})
  end, {"checkpoint.load", "modle"}},
  {"checkpoint.load of an Adam state with step -1", function()
    local path = tmp()
    local opt, m = stepped_adam()
    opt.state[m:parameters()[1]].step = -1
    checkpoint.save(path, {model = m, optimizer = opt})
    return checkpoint.load(path, {model = m, optimizer = adam(m)})
  end, {"checkpoint.load", "optimizer", "parameter 1", "'step'", "-1"}},
  {"checkpoint.load of a loader perm with an index twice", function()
    local path, ld = tmp(), loader()
    ld._perm, ld._position = I{1, 2, 3, 4, 5, 6, 7, 7}, 1
    checkpoint.save(path, {loader = ld})
    return checkpoint.load(path, {loader = loader()})
  end, {"checkpoint.load", "loader", "perm", "7 twice"}},
  {"checkpoint.load of scheduler state mapping get_last_lr to data", function()
    local path, opt = tmp(), adam()
    local s = sched.StepLR(opt, {step_size = 1})
    s.get_last_lr = 0.5
    checkpoint.save(path, {optimizer = opt, scheduler = s})
    return checkpoint.load(path, {optimizer = opt, scheduler = sched.StepLR(opt, {step_size = 1})})
  end, {"checkpoint.load", "scheduler", "StepLR", '"get_last_lr"'}},
  {"checkpoint.load of a negative epoch", function()
    local path = tmp()
    mg.save(path, {}, {["moongrad.checkpoint"] = '{"format":"moongrad.checkpoint","version":1,' ..
                                                 '"epoch":-1,"rng":{"seed":"1","offset":"0"}}'})
    return checkpoint.load(path)
  end, {"checkpoint.load", "epoch", "-1"}},
  {"checkpoint.read of a file that is not safetensors", function()
    return checkpoint.read(tmp("\1\0\0\0\0\0\0\0{"))
  end, {"checkpoint.read", "not a safetensors file"}},
}

local cases, per_module, module = {}, {}, nil
for _, row in ipairs(rows) do
  if type(row) == "string" then
    module = row
  else
    cases[#cases + 1] = row
    per_module[module] = (per_module[module] or 0) + 1
  end
end

-- Lua internals or C noise that must never reach the user from moongrad.
local NOISE = {
  "%(null%)", "0x%x%x%x%x+", "attempt to index", "attempt to perform arithmetic",
  "attempt to call", "attempt to compare", "attempt to concatenate", "attempt to get length",
  "bad argument #%d+ to '%?'", "bad 'for'", "stack traceback",
}

local function still_works()
  local x = mg.tensor({{1, 2}, {3, 4}}, "float64"):requires_grad()
  local loss = (x:matmul(mg.tensor({{1}, {1}}, "float64")) ^ 2):sum()
  loss:backward()
  assert.same({{6, 6}, {14, 14}}, x.grad:totable())
  local m = nn.Linear(2, 1)
  local opt = optim.SGD(m, {lr = 0.1})
  opt:zero_grad()
  F.mse_loss(m(mg.ones(4, 2)), mg.zeros(4, 1)):backward()
  opt:step()
end

describe("bad input across the public API", function()
  it("has at least 120 rows, at least 8 for each module", function()
    assert.is_true(#cases >= 120, #cases .. " rows")
    for _, m in ipairs {"tensors", "nn", "optim", "sched", "data", "transforms", "train", "tune",
                        "checkpoints"} do
      assert.is_true((per_module[m] or 0) >= 8, m .. ": " .. tostring(per_module[m]) .. " rows")
    end
    local f = assert(io.open("docs/reliability.md"))
    local doc = f:read("a")
    f:close()
    assert.is_truthy(doc:find("a table of " .. #cases .. " bad calls", 1, true),
                     "docs/reliability.md should say the table has " .. #cases .. " rows")
  end)

  for i, case in ipairs(cases) do
    local name, fn, needles = case[1], case[2], case[3]
    it(("raises a clear error for %s (row %d)"):format(name, i), function()
      local ok, msg = pcall(fn)
      assert.is_false(ok, name .. ": returned instead of raising")
      assert.equal("string", type(msg), name .. ": the error is not a string")
      for _, needle in ipairs(needles) do
        assert.is_truthy(msg:find(needle, 1, true),
                         ("%s: %q does not mention %q"):format(name, msg, needle))
      end
      for _, noise in ipairs(NOISE) do
        assert.is_falsy(msg:find(noise), ("%s: %q carries %q"):format(name, msg, noise))
      end
    end)
  end

  it("leaves the state working after the whole table", function()
    still_works()
    for _, f in ipairs(held) do f:close() end
    for _, path in ipairs(temps) do os.remove(path) end
  end)
end)
