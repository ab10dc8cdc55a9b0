-- nn.RNN, nn.LSTM and nn.GRU: outputs, final states and every gradient
-- against PyTorch (spec/fixtures/gen_rnn.py, and gen_rnn_options.py for
-- bidirectional, proj_size and batch_first = false; loaded through a strict
-- load_state_dict with PyTorch's names), gradients against finite
-- differences (mg.gradcheck), float32, dropout between layers, thread-count
-- independence and error messages.
local mg = require "moongrad"
local nn = require "moongrad.nn"
local approx = require "support.approx"
local ref = dofile("spec/fixtures/rnn_ref.lua")
local ref_options = dofile("spec/fixtures/rnn_options_ref.lua")

local TOL = 1e-10  -- float64 against PyTorch's float64
local TOL32 = 1e-4 -- float32 against the same references
local TOL32_OPTIONS = 1e-5 -- the options' cases (smaller weights and sequences)

local function check(got, expected, tol, what)
  local ok, err = pcall(approx.assert_close, got, expected, tol, tol)
  if not ok then error((what or "value") .. ": " .. tostring(err), 2) end
end

-- A module for fixture case c in dtype dt, with PyTorch's parameters.
local function build(c, dt)
  local opts = {dtype = dt}
  for k, v in pairs(c.opts) do opts[k] = v end
  local m = nn[c.kind](c.input_size, c.hidden_size, opts)
  local sd = {}
  for name, v in pairs(c.params) do sd[name] = mg.tensor(v, dt) end
  m:load_state_dict(sd)
  return m
end

-- Runs case c in dtype dt: forward, then backward of the upstream
-- gradients on output and final states. Returns the results and inputs.
local function run(c, dt)
  local m = build(c, dt)
  local x = mg.tensor(c.x, dt):requires_grad()
  local h0 = c.h0 and mg.tensor(c.h0, dt):requires_grad() or nil
  local c0 = c.c0 and mg.tensor(c.c0, dt):requires_grad() or nil
  local y, hn, cn = m(x, h0, c0)
  local loss = (y * mg.tensor(c.gout, dt)):sum() + (hn * mg.tensor(c.gh, dt)):sum()
  if cn then loss = loss + (cn * mg.tensor(c.gc, dt)):sum() end
  loss:backward()
  return m, y, hn, cn, x, h0, c0
end

local function compare(c, dt, tol)
  local m, y, hn, cn, x, h0, c0 = run(c, dt)
  assert.are.equal(dt, y:dtype())
  assert.are.same(approx.shape_of(c.y), y:shape())
  assert.are.same(approx.shape_of(c.hn), hn:shape())
  check(y, c.y, tol, "output")
  check(hn, c.hn, tol, "h_n")
  if c.cn then check(cn, c.cn, tol, "c_n") else assert.is_nil(cn) end
  check(x.grad, c.gx, tol, "input gradient")
  if h0 then check(h0.grad, c.gh0, tol, "h0 gradient") end
  if c0 then check(c0.grad, c.gc0, tol, "c0 gradient") end
  local n = 0
  for name, p in m:named_parameters() do
    check(p.grad, c.grads[name], tol, name .. " gradient")
    n = n + 1
  end
  local expected = 0
  for _ in pairs(c.grads) do expected = expected + 1 end
  assert.are.equal(expected, n)
end

describe("recurrent layers", function()
  describe("match PyTorch in float64", function()
    for _, c in ipairs(ref) do
      it("for " .. c.name, function() compare(c, "float64", TOL) end)
    end
  end)

  describe("match PyTorch in float32", function()
    for _, c in ipairs(ref) do
      it("for " .. c.name, function() compare(c, "float32", TOL32) end)
    end
  end)

  describe("with bidirectional, proj_size or batch_first = false", function()
    describe("match PyTorch in float64", function()
      for _, c in ipairs(ref_options) do
        it("for " .. c.name, function() compare(c, "float64", TOL) end)
      end
    end)

    describe("match PyTorch in float32", function()
      for _, c in ipairs(ref_options) do
        it("for " .. c.name, function() compare(c, "float32", TOL32_OPTIONS) end)
      end
    end)

    it("list their state_dict names in PyTorch's order", function()
      for _, c in ipairs(ref_options) do
        local opts = {}
        for k, v in pairs(c.opts) do opts[k] = v end
        local m = nn[c.kind](c.input_size, c.hidden_size, opts)
        assert.are.same(c.names, m:state_dict_names(), c.name)
      end
    end)

    it("keep the options readable on the module, batch first by default", function()
      local m = nn.LSTM(3, 5, {bidirectional = true, proj_size = 2, batch_first = false})
      assert.is_true(m.bidirectional)
      assert.are.equal(2, m.proj_size)
      assert.is_false(m.batch_first)
      local g = nn.GRU(3, 5)
      assert.is_false(g.bidirectional)
      assert.are.equal(0, g.proj_size)
      assert.is_true(g.batch_first)
    end)

    it("shape a projected bidirectional LSTM as PyTorch does, initialised U(-1/sqrt(H), 1/sqrt(H))", function()
      local m = nn.LSTM(3, 5, {num_layers = 2, proj_size = 2, bidirectional = true})
      local shapes = {}
      for name, p in m:named_parameters() do
        shapes[name] = p:shape()
        assert.is_true(p:abs():max():item() <= 1 / math.sqrt(5))
      end
      assert.are.same({20, 3}, shapes.weight_ih_l0_reverse)
      assert.are.same({20, 2}, shapes.weight_hh_l0)
      assert.are.same({2, 5}, shapes.weight_hr_l0_reverse)
      assert.are.same({20, 4}, shapes.weight_ih_l1)
      local y, hn, cn = m(mg.randn(4, 6, 3))
      assert.are.same({4, 6, 4}, y:shape())
      assert.are.same({4, 4, 2}, hn:shape())
      assert.are.same({4, 4, 5}, cn:shape())
    end)

    it("return time-major outputs with batch_first = false, the batch-first results transposed", function()
      mg.manual_seed(8)
      local a = nn.GRU(3, 4, {num_layers = 2, bidirectional = true, dtype = "float64"})
      local b = nn.GRU(3, 4, {num_layers = 2, bidirectional = true, batch_first = false,
                              dtype = "float64"})
      b:load_state_dict(a:state_dict())
      local x = mg.randn({2, 5, 3}, "float64")
      local ya, ha = a(x)
      local yb, hb = b(x:transpose(1, 2))
      assert.are.same({5, 2, 8}, yb:shape())
      assert.are.same(ya:transpose(1, 2):totable(), yb:totable())
      assert.are.same(ha:totable(), hb:totable())
    end)

    it("give the reverse direction's final state from the first time step", function()
      local m = nn.RNN(3, 4, {bidirectional = true})
      local y, hn = m(mg.randn(2, 5, 3))
      assert.are.same(y:select(2, 5):narrow(2, 1, 4):totable(), hn:select(1, 1):totable())
      assert.are.same(y:select(2, 1):narrow(2, 5, 4):totable(), hn:select(1, 2):totable())
    end)
  end)

  it("name and shape their parameters as PyTorch does, initialised U(-1/sqrt(H), 1/sqrt(H))", function()
    local m = nn.LSTM(3, 5, {num_layers = 2})
    local names, shapes = {}, {}
    for name, p in m:named_parameters() do
      names[#names + 1] = name
      shapes[#shapes + 1] = p:shape()
      local bound = 1 / math.sqrt(5)
      assert.is_true(p:abs():max():item() <= bound)
    end
    assert.are.same({"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                     "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"}, names)
    assert.are.same({{20, 3}, {20, 5}, {20}, {20}, {20, 5}, {20, 5}, {20}, {20}}, shapes)
    assert.are.same({{6, 4}, {6, 2}}, {nn.GRU(4, 2, {bias = false}).weight_ih_l0:shape(),
                                       nn.GRU(4, 2, {bias = false}).weight_hh_l0:shape()})
    assert.are.equal(2, #nn.GRU(4, 2, {bias = false}):parameters())
    assert.are.equal("float64", nn.RNN(2, 2, {dtype = "float64"}).weight_ih_l0:dtype())
  end)

  describe("pass gradcheck in float64", function()
    -- Every parameter, the input and the initial states, through output
    -- and final states (weighted by fixed random tensors).
    -- D directions, R the width of h (the projection size, else 3).
    local function gc(kind, opts, with_c, D, R)
      D, R = D or 1, R or 3
      mg.manual_seed(5)
      local m = nn[kind](2, 3, opts)
      local x = mg.randn({2, 3, 2}, "float64"):requires_grad()
      local L = (opts.num_layers or 1) * D
      local h0 = mg.randn({L, 2, R}, "float64"):requires_grad()
      local c0 = with_c and mg.randn({L, 2, 3}, "float64"):requires_grad() or nil
      local a, b, cc = mg.randn({2, 3, D * R}, "float64"), mg.randn({L, 2, R}, "float64"),
                       mg.randn({L, 2, 3}, "float64")
      local inputs = {x, h0, c0}
      if not c0 then inputs = {x, h0} end
      for _, p in ipairs(m:parameters()) do inputs[#inputs + 1] = p end
      assert.is_true(mg.gradcheck(function()
        local y, hn, cn = m(x, h0, c0)
        local s = (y * a):sum() + (hn * b):sum()
        if cn then s = s + (cn * cc):sum() end
        return s
      end, inputs))
    end

    it("for RNN with tanh and with relu", function()
      gc("RNN", {dtype = "float64"})
      gc("RNN", {dtype = "float64", nonlinearity = "relu", num_layers = 2})
    end)
    it("for LSTM", function()
      gc("LSTM", {dtype = "float64"}, true)
      gc("LSTM", {dtype = "float64", num_layers = 2, bias = false}, true)
    end)
    it("for GRU", function()
      gc("GRU", {dtype = "float64"})
      gc("GRU", {dtype = "float64", num_layers = 2, bias = false})
    end)
    it("for bidirectional layers", function()
      gc("RNN", {dtype = "float64", bidirectional = true, num_layers = 2}, false, 2)
      gc("LSTM", {dtype = "float64", bidirectional = true, num_layers = 2}, true, 2)
      gc("GRU", {dtype = "float64", bidirectional = true}, false, 2)
    end)
    it("for a projected LSTM, in one and two directions", function()
      gc("LSTM", {dtype = "float64", proj_size = 2, num_layers = 2}, true, 1, 2)
      gc("LSTM", {dtype = "float64", proj_size = 1, bidirectional = true}, true, 2, 1)
    end)
  end)

  it("record a layer as one node named after its cell, only when a grad is needed", function()
    local z = mg.zeros
    local w = z(12, 3):requires_grad()
    assert.are.equal("lstm", mg._rnn_layer("lstm", z(2, 4, 12), z(2, 3), z(2, 3), w):grad_fn())
    assert.are.equal("gru", mg._rnn_layer("gru", z(2, 4, 9), z(2, 3), nil, z(9, 3), z(9):requires_grad()):grad_fn())
    assert.is_nil(mg._rnn_layer("rnn_tanh", z(2, 4, 3), z(2, 3), nil, z(3, 3)):grad_fn())
    assert.are.same({2, 5, 6}, mg._rnn_layer("lstm", z(2, 4, 12), z(2, 3), z(2, 3), w):shape())
    local wr = z(2, 3):requires_grad()
    local p = mg._rnn_layer("lstm", z(2, 4, 12), z(2, 2), z(2, 3), z(12, 2), nil, wr, true)
    assert.are.equal("lstm", p:grad_fn())
    assert.are.same({2, 5, 5}, p:shape())
    local m = nn.GRU(2, 3)
    local _, hn = mg.no_grad(function() return m(mg.randn(1, 4, 2)) end)
    assert.is_nil(hn:grad_fn())
  end)

  it("start from zero states when h0 and c0 are absent", function()
    mg.manual_seed(2)
    local m = nn.LSTM(2, 3, {num_layers = 2, dtype = "float64"})
    local x = mg.randn({2, 4, 2}, "float64")
    local z = mg.zeros({2, 2, 3}, "float64")
    local y1, h1, c1 = m(x)
    local y2, h2, c2 = m(x, z, z)
    assert.are.same(y1:totable(), y2:totable())
    assert.are.same(h1:totable(), h2:totable())
    assert.are.same(c1:totable(), c2:totable())
  end)

  it("return the last output as h_n of the top layer", function()
    local m = nn.GRU(3, 4, {num_layers = 2})
    local y, hn = m(mg.randn(2, 5, 3))
    assert.are.same(y:select(2, 5):totable(), hn:select(1, 2):totable())
  end)

  it("apply dropout between layers in training only, never after the top one", function()
    mg.manual_seed(3)
    local x = mg.randn({2, 6, 3}, "float64")
    local m = nn.LSTM(3, 4, {num_layers = 2, dropout = 0.5, dtype = "float64"})
    local plain = nn.LSTM(3, 4, {num_layers = 2, dtype = "float64"})
    plain:load_state_dict(m:state_dict())
    local want = plain(x):totable()
    assert.are_not.same(want, m(x):totable())
    m:eval()
    assert.are.same(want, m(x):totable())
    local one = nn.GRU(3, 4, {dropout = 1, dtype = "float64"})
    local y_train = one(x):totable()
    one:eval()
    assert.are.same(y_train, one(x):totable())
  end)

  it("give the same bits with 1 and 2 threads", function()
    local saved = mg.get_num_threads()
    local function pass(kind, dt, threads, opts)
      mg.set_num_threads(threads)
      mg.manual_seed(11)
      local o = {num_layers = 2, dtype = dt}
      for k, v in pairs(opts or {}) do o[k] = v end
      local m = nn[kind](16, 32, o)
      local x = mg.randn({8, 12, 16}, dt):requires_grad()
      local y, hn = m(x)
      local loss = (y * y):sum() + hn:sum()
      loss:backward()
      local r = {y:totable(), hn:totable(), x.grad:totable()}
      for _, p in ipairs(m:parameters()) do r[#r + 1] = p.grad:totable() end
      return r
    end
    for _, kind in ipairs({"RNN", "LSTM", "GRU"}) do
      for _, dt in ipairs({"float32", "float64"}) do
        local one, two = pass(kind, dt, 1), pass(kind, dt, 2)
        mg.set_num_threads(saved)
        for k = 1, #one do assert.are.same(approx.flat(one[k]), approx.flat(two[k])) end
      end
    end
    local opts = {bidirectional = true, proj_size = 8}
    local one, two = pass("LSTM", "float32", 1, opts), pass("LSTM", "float32", 2, opts)
    mg.set_num_threads(saved)
    for k = 1, #one do assert.are.same(approx.flat(one[k]), approx.flat(two[k])) end
  end)

  describe("refuse", function()
    local function fails(msg, f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find(msg, 1, true), tostring(err))
    end

    it("inputs that are not 3-D or do not fit input_size", function()
      local m = nn.LSTM(4, 3)
      fails("LSTM: input of shape [2,5,3] does not fit input_size 4 (expected [N, T, 4])",
            m, mg.zeros(2, 5, 3))
      fails("LSTM: input must be 3-D [N, T, 4] (batch first), got shape [5,4]", m, mg.zeros(5, 4))
      fails("GRU: input must be a tensor, got table", nn.GRU(4, 3), {1, 2})
      fails("RNN: input of shape [2,0,4] is empty (need N >= 1 and T >= 1)",
            nn.RNN(4, 3), mg.zeros(2, 0, 4))
    end)

    it("initial states of the wrong shape, or only one of h0 and c0", function()
      local m = nn.LSTM(4, 3, {num_layers = 2})
      local x = mg.zeros(2, 5, 4)
      fails("LSTM: h0 of shape [1,2,3] does not fit (expected [L, N, H] = [2,2,3])",
            m, x, mg.zeros(1, 2, 3), mg.zeros(2, 2, 3))
      fails("LSTM: c0 of shape [2,3,3] does not fit (expected [L, N, H] = [2,2,3])",
            m, x, mg.zeros(2, 2, 3), mg.zeros(2, 3, 3))
      fails("LSTM: h0 and c0 must be given together (or neither)", m, x, mg.zeros(2, 2, 3))
      fails("GRU: h0 of shape [2,3] does not fit (expected [L, N, H] = [1,2,3])",
            nn.GRU(4, 3), x, mg.zeros(2, 3))
      fails("RNN: h0 must be a tensor or nil, got number", nn.RNN(4, 3), x, 0)
    end)

    it("initial states that do not fit both directions or the projection", function()
      local x = mg.zeros(2, 5, 4)
      fails("GRU: h0 of shape [1,2,3] does not fit (expected [2*L, N, H] = [2,2,3])",
            nn.GRU(4, 3, {bidirectional = true}), x, mg.zeros(1, 2, 3))
      local m = nn.LSTM(4, 3, {proj_size = 2, num_layers = 2})
      fails("LSTM: h0 of shape [2,2,3] does not fit (expected [L, N, P] = [2,2,2])",
            m, x, mg.zeros(2, 2, 3), mg.zeros(2, 2, 3))
      fails("LSTM: c0 of shape [2,2,2] does not fit (expected [L, N, H] = [2,2,3])",
            m, x, mg.zeros(2, 2, 2), mg.zeros(2, 2, 2))
      fails("RNN: input must be 3-D [T, N, 4] (batch_first = false), got shape [5,4]",
            nn.RNN(4, 3, {batch_first = false}), mg.zeros(5, 4))
      fails("RNN: input of shape [5,2,3] does not fit input_size 4 (expected [T, N, 4])",
            nn.RNN(4, 3, {batch_first = false}), mg.zeros(5, 2, 3))
    end)

    it("bad bidirectional, batch_first and proj_size values", function()
      fails("LSTM: bidirectional must be true or false, got 1", nn.LSTM, 2, 3, {bidirectional = 1})
      fails("GRU: bidirectional must be true or false, got \"yes\"",
            nn.GRU, 2, 3, {bidirectional = "yes"})
      fails("RNN: batch_first must be true or false, got 0", nn.RNN, 2, 3, {batch_first = 0})
      fails("LSTM: proj_size must be smaller than hidden_size, got proj_size = 3 with hidden_size = 3",
            nn.LSTM, 2, 3, {proj_size = 3})
      fails("LSTM: proj_size must be smaller than hidden_size, got proj_size = 7 with hidden_size = 3",
            nn.LSTM, 2, 3, {proj_size = 7})
      fails("LSTM: proj_size must be a non-negative integer (0 for none), got -1",
            nn.LSTM, 2, 3, {proj_size = -1})
      fails("LSTM: proj_size must be a non-negative integer (0 for none), got 1.5",
            nn.LSTM, 2, 3, {proj_size = 1.5})
      fails("GRU: proj_size is only supported by LSTM, got proj_size = 2",
            nn.GRU, 2, 3, {proj_size = 2})
      fails("RNN: proj_size is only supported by LSTM, got proj_size = 1",
            nn.RNN, 2, 3, {proj_size = 1})
      assert.are.equal(0, nn.GRU(2, 3, {proj_size = 0}).proj_size)
    end)

    it("bad sizes and options", function()
      fails("RNN: hidden_size must be a positive integer, got 0", nn.RNN, 2, 0)
      fails("LSTM: input_size must be a positive integer, got 2.5", nn.LSTM, 2.5, 3)
      fails("GRU: num_layers must be a positive integer, got 0", nn.GRU, 2, 3, {num_layers = 0})
      fails("LSTM: dropout must be a probability in [0, 1], got 2", nn.LSTM, 2, 3, {dropout = 2})
      fails("RNN: nonlinearity must be \"tanh\" or \"relu\", got sigmoid",
            nn.RNN, 2, 3, {nonlinearity = "sigmoid"})
      fails("LSTM: unknown option 'nonlinearity'", nn.LSTM, 2, 3, {nonlinearity = "relu"})
      fails("GRU: dtype must be \"float32\" or \"float64\", got int64", nn.GRU, 2, 3, {dtype = "int64"})
    end)

    it("misfitting arguments to the raw layer op, without crashing", function()
      local z = mg.zeros
      fails("lstm: projected input of shape [2,3,8] does not fit weight_hh of shape [12,3]",
            mg._rnn_layer, "lstm", z(2, 3, 8), z(2, 3), z(2, 3), z(12, 3))
      fails("lstm: needs c0", mg._rnn_layer, "lstm", z(2, 3, 12), z(2, 3), nil, z(12, 3))
      fails("gru: h0 of shape [3,3] does not fit (expected [2, 3])",
            mg._rnn_layer, "gru", z(2, 3, 9), z(3, 3), nil, z(9, 3))
      fails("rnn_tanh: weight_hh of shape [3,2] must be [1*H, H] with H >= 1",
            mg._rnn_layer, "rnn_tanh", z(2, 3, 3), z(2, 3), nil, z(3, 2))
      fails("rnn_layer: unknown cell 'cell'", mg._rnn_layer, "cell", z(1), z(1), nil, z(1))
      fails("rnn_layer: xp must be a tensor, got nil", mg._rnn_layer, "gru")
      fails("gru: takes no weight_hr (only lstm has a projection)",
            mg._rnn_layer, "gru", z(2, 3, 9), z(2, 3), nil, z(9, 3), nil, z(2, 3))
      fails("lstm: weight_hh of shape [12,3] does not fit weight_hr of shape [2,3] (expected [12, 2])",
            mg._rnn_layer, "lstm", z(2, 3, 12), z(2, 2), z(2, 3), z(12, 3), nil, z(2, 3))
      fails("lstm: h0 of shape [2,3] does not fit (expected [2, 2])",
            mg._rnn_layer, "lstm", z(2, 3, 12), z(2, 3), z(2, 3), z(12, 2), nil, z(2, 3))
      fails("rnn_layer: reverse must be a boolean or nil, got number",
            mg._rnn_layer, "rnn_tanh", z(2, 3, 3), z(2, 3), nil, z(3, 3), nil, nil, 1)
    end)
  end)
end)
