-- float32 F.conv2d through oneDNN (runtime/conv_dnnl.c): forward and the
-- three gradients against PyTorch's references (spec/fixtures/conv_ref.lua)
-- and against moongrad's own im2col path (float64, and float32 in
-- deterministic mode, neither of which goes to oneDNN), at ResNet-20's
-- shapes; mg._conv_dnnl_runs() shows that oneDNN ran, so a dispatch that
-- silently fell back fails here.
local mg = require "moongrad"
local F = require "moongrad.functional"
local approx = require "support.approx"
local ref = dofile("spec/fixtures/conv_ref.lua")

local TOL32 = 1e-4 -- float32 against PyTorch's float64 references

-- oneDNN's runs (forward, backward data, backward weights) during f().
local runs_during = require("support.check").conv_runs_during

-- The largest difference relative to the largest magnitude of want
-- (tensors, compared in float64).
local function rel_err(got, want)
  assert.are.same(want:shape(), got:shape())
  local g, w = got:to("float64"), want:to("float64")
  local scale = w:abs():max():item()
  return (g - w):abs():max():item() / (scale > 0 and scale or 1)
end

-- A tensor of dtype dt from a fixture's table or a float64 tensor.
local function as(v, dt)
  return mg.is_tensor(v) and v:detach():to(dt) or mg.tensor(v, dt)
end

-- conv2d of the case's inputs in dtype dt: the output and the gradients
-- (of those wanted: needs = {x = , w = , b = }, all by default).
local function pass(c, dt, needs)
  needs = needs or {x = true, w = true, b = true}
  local x = as(c.x, dt):requires_grad(needs.x == true)
  local w = as(c.w, dt):requires_grad(needs.w == true)
  local b = c.b and as(c.b, dt):requires_grad(needs.b == true) or nil
  local y = F.conv2d(x, w, b, c.opts)
  y:backward(as(c.g, dt))
  return {y:detach(), x.grad, w.grad, b and b.grad}
end

-- A random case of the given shapes (float64 tensors).
local function case(xs, ws, bias, opts)
  mg.manual_seed(7)
  local c = {x = mg.randn(xs, "float64"), w = mg.randn(ws, "float64"), opts = opts}
  if bias then c.b = mg.randn({ws[1]}, "float64") end
  c.g = mg.randn(F.conv2d(c.x, c.w, c.b, opts):shape(), "float64")
  return c
end

describe("float32 conv2d through oneDNN", function()
  describe("matches PyTorch", function()
    for _, c in ipairs(ref) do
      it("with " .. c.name .. ", running oneDNN each way", function()
        local runs, got = runs_during(function() return pass(c, "float32") end)
        assert.are.same({1, 1, 1}, runs)
        local names = {"output", "input gradient", "weight gradient", "bias gradient"}
        local want = {c.y, c.gx, c.gw, c.gb}
        for k = 1, 4 do
          if want[k] then
            local ok, err = pcall(approx.assert_close, got[k], want[k], TOL32, TOL32)
            assert(ok, names[k] .. ": " .. tostring(err))
          end
        end
      end)
    end
  end)

  describe("matches moongrad's own path at ResNet-20's shapes", function()
    -- Batch 2 to 4 instead of 128: the formats oneDNN chooses depend on the
    -- channels and the plane, not on the batch.
    local shapes = {
      {"3 -> 16 channels, 32x32, 3x3", {2, 3, 32, 32}, {16, 3, 3, 3}, {padding = 1}},
      {"16 channels, 32x32, 3x3", {2, 16, 32, 32}, {16, 16, 3, 3}, {padding = 1}},
      {"16 -> 32, 3x3 stride 2", {2, 16, 32, 32}, {32, 16, 3, 3}, {padding = 1, stride = 2}},
      {"16 -> 32, 1x1 stride-2 shortcut", {2, 16, 32, 32}, {32, 16, 1, 1}, {stride = 2}},
      {"32 channels, 16x16, 3x3", {4, 32, 16, 16}, {32, 32, 3, 3}, {padding = 1}},
      {"32 -> 64, 3x3 stride 2", {4, 32, 16, 16}, {64, 32, 3, 3}, {padding = 1, stride = 2}},
      {"32 -> 64, 1x1 stride-2 shortcut", {4, 32, 16, 16}, {64, 32, 1, 1}, {stride = 2}},
      {"64 channels, 8x8, 3x3", {4, 64, 8, 8}, {64, 64, 3, 3}, {padding = 1}},
      {"groups 4", {2, 16, 12, 12}, {32, 4, 3, 3}, {padding = 1, groups = 4}},
      {"depthwise", {2, 16, 12, 12}, {16, 1, 3, 3}, {padding = 1, groups = 16}},
      {"dilation 2", {2, 16, 12, 12}, {16, 16, 3, 3}, {padding = 2, dilation = 2}},
      {"padding \"same\" with an even kernel", {2, 8, 9, 9}, {8, 8, 4, 4}, {padding = "same"}},
      {"a stride that drops the last rows", {2, 8, 10, 9}, {8, 8, 3, 3}, {stride = 3}},
    }
    for _, s in ipairs(shapes) do
      for _, bias in ipairs({false, true}) do
        it("with " .. s[1] .. (bias and ", with bias" or ", without bias"), function()
          local c = case(s[2], s[3], bias, s[4])
          local runs, fast = runs_during(function() return pass(c, "float32") end)
          assert.are.same({1, 1, 1}, runs)
          local wide = pass(c, "float64")
          local was = mg.are_deterministic_algorithms_enabled()
          mg.use_deterministic_algorithms(true)
          local plain32 = {runs_during(function() return pass(c, "float32") end)}
          mg.use_deterministic_algorithms(was)
          assert.are.same({0, 0, 0}, plain32[1])
          for k = 1, bias and 4 or 3 do
            assert.is_true(rel_err(fast[k], wide[k]) < 2e-6, "part " .. k .. " against float64")
            assert.is_true(rel_err(fast[k], plain32[2][k]) < 2e-6, "part " .. k .. " against float32")
          end
        end)
      end
    end
  end)

  it("gives each gradient alone, the others not wanted", function()
    local c = case({2, 16, 8, 8}, {16, 16, 3, 3}, true, {padding = 1})
    local all = pass(c, "float64")
    for k, needs in ipairs({{x = true}, {w = true}, {b = true}}) do
      local _, got = runs_during(function() return pass(c, "float32", needs) end)
      for j = 2, 4 do
        if j == k + 1 then assert.is_true(rel_err(got[j], all[j]) < 2e-6)
        else assert.is_nil(got[j]) end
      end
    end
  end)

  it("leaves float64, deterministic mode, reference kernels and conv_transpose2d to moongrad's own path", function()
    local c = case({2, 16, 8, 8}, {16, 16, 3, 3}, true, {padding = 1})
    assert.are.same({0, 0, 0}, (runs_during(function() return pass(c, "float64") end)))
    local was = mg.are_deterministic_algorithms_enabled()
    mg.use_deterministic_algorithms(true)
    assert.are.same({0, 0, 0}, (runs_during(function() return pass(c, "float32") end)))
    mg.use_deterministic_algorithms(was)
    was = mg._set_reference_kernels(true)
    assert.are.same({0, 0, 0}, (runs_during(function() return pass(c, "float32") end)))
    mg._set_reference_kernels(was)
    assert.are.same({0, 0, 0}, (runs_during(function()
      local x = mg.randn({2, 16, 8, 8}):requires_grad()
      local y = F.conv_transpose2d(x, mg.randn({16, 8, 3, 3}), nil, {padding = 1})
      y:sum():backward()
    end)))
  end)

  it("gives the same bits at 1 and 2 threads in deterministic mode", function()
    -- Outside it the weight gradient's sum over the batch is split by the
    -- thread count (at this shape its last bits differ between 1 and 2).
    local saved = mg.get_num_threads()
    local was = mg.are_deterministic_algorithms_enabled()
    mg.use_deterministic_algorithms(true)
    local function at(threads)
      mg.set_num_threads(threads)
      mg.manual_seed(11)
      local x = mg.randn({32, 32, 16, 16}):requires_grad()
      local w = mg.randn({32, 32, 3, 3}):requires_grad()
      local y = F.conv2d(x, w, nil, {padding = 1})
      y:backward(mg.randn(y:shape()))
      return {y, x.grad, w.grad}
    end
    local one, two = at(1), at(2)
    mg.set_num_threads(saved)
    mg.use_deterministic_algorithms(was)
    for k = 1, 3 do assert.are.same(approx.flat(one[k]), approx.flat(two[k]), "part " .. k) end
  end)

  it("takes its buffers from moongrad's allocator: a memory limit fails cleanly and loses nothing", function()
    local c = case({4, 16, 16, 16}, {16, 16, 3, 3}, true, {padding = 1})
    local x, w = c.x:to("float32"), c.w:to("float32")
    local b, g = c.b:to("float32"), c.g:to("float32")
    local want = pass(c, "float64")
    collectgarbage()
    local base = mg.memory().tensor_bytes
    local failed, passed = 0, 0
    for extra = 0, 600 * 1024, 24 * 1024 do
      mg.set_memory_limit(base + extra)
      local ok, err = pcall(function()
        local xr, wr = x:detach():requires_grad(), w:detach():requires_grad()
        local y = F.conv2d(xr, wr, b, {padding = 1})
        y:backward(g)
        return {y:detach(), xr.grad, wr.grad}
      end)
      mg.set_memory_limit(0)
      if ok then
        passed = passed + 1
        for k = 1, 3 do assert.is_true(rel_err(err[k], want[k]) < 2e-6) end
      else
        failed = failed + 1
        assert.is_truthy(tostring(err):find("not enough memory", 1, true), tostring(err))
      end
      collectgarbage()
    end
    assert.is_true(failed > 0 and passed > 0, failed .. " failed, " .. passed .. " passed")
  end)
end)
