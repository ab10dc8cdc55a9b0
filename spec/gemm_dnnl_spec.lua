-- float32 matrix products through oneDNN's matmul (runtime/gemm_dnnl.c),
-- which mg_gemm tries before OpenBLAS for products of at least 2^20
-- multiply-adds. The operands are small integers, so every partial sum is
-- an integer below 2^24 and exact in float32 in any order of summation:
-- the reference is the textbook triple loop in Lua, and the products must
-- equal it bit for bit. mg._gemm_dnnl_runs() shows that oneDNN ran, so a
-- dispatch that silently fell back to OpenBLAS fails here.
local mg = require "moongrad"
local F = require "moongrad.functional"

local M, K, N = 64, 300, 200 -- 3.84e6 multiply-adds

-- Entries of A [M, K] and B [K, N] in -4..4 and -3..3: |sums| <= 12 K.
local function a_at(i, k) return (i * 3 + k * 7) % 9 - 4 end
local function b_at(k, j) return (k * 5 + j * 11) % 7 - 3 end

local function table_of(rows, cols, at)
  local t = {}
  for i = 1, rows do
    local r = {}
    for j = 1, cols do r[j] = at(i, j) end
    t[i] = r
  end
  return t
end

local A, B = table_of(M, K, a_at), table_of(K, N, b_at)
local C = {}
for i = 1, M do
  local r, ai = {}, A[i]
  for j = 1, N do
    local s = 0
    for k = 1, K do s = s + ai[k] * B[k][j] end
    r[j] = s
  end
  C[i] = r
end

-- The oneDNN runs during f(), and f's result.
local function runs_during(f)
  local before = mg._gemm_dnnl_runs()
  local r = f()
  return mg._gemm_dnnl_runs() - before, r
end

-- got (a tensor) equals want (nested tables) exactly, plus bias[j] if given.
local function assert_exact(got, want, bias)
  assert.are.same({#want, #want[1]}, got:shape())
  local g = got:totable()
  for i = 1, #want do
    for j = 1, #want[1] do
      local w = want[i][j] + (bias and bias[j] or 0)
      if g[i][j] ~= w then
        error(("element [%d][%d] is %.9g, want %.9g"):format(i, j, g[i][j], w), 2)
      end
    end
  end
end

-- A as [M, K] float32, contiguous or as the transpose of a contiguous [K, M].
local function a_tensor(transposed)
  local t = mg.tensor(A, "float32")
  return transposed and t:t():contiguous():t() or t
end

local function b_tensor(transposed)
  local t = mg.tensor(B, "float32")
  return transposed and t:t():contiguous():t() or t
end

describe("float32 products through oneDNN", function()
  for _, ta in ipairs({false, true}) do
    for _, tb in ipairs({false, true}) do
      local name = ("A%s · B%s"):format(ta and " (transposed in memory)" or "",
                                          tb and " (transposed in memory)" or "")
      it("computes " .. name .. " exactly, on oneDNN", function()
        local a, b = a_tensor(ta), b_tensor(tb)
        local runs, got = runs_during(function() return a:matmul(b) end)
        assert.equal(1, runs)
        assert_exact(got, C)
      end)
    end
  end

  it("takes operands whose rows are wider than the matrix (leading dims)", function()
    local wide = mg.zeros({M, K + 37}, "float32")
    wide:narrow(2, 5, K):copy_(mg.tensor(A, "float32"))
    local a = wide:narrow(2, 5, K)
    assert.is_false(a:is_contiguous())
    local runs, got = runs_during(function() return a:matmul(mg.tensor(B, "float32")) end)
    assert.equal(1, runs)
    assert_exact(got, C)
  end)

  it("adds F.linear's bias in the product (oneDNN's bias argument)", function()
    local x, w = mg.tensor(A, "float32"), b_tensor(false):t() -- w [N, K]
    local bias = {}
    for j = 1, N do bias[j] = j % 13 - 6 end
    local runs, got = runs_during(function()
      return F.linear(x, w, mg.tensor(bias, "float32"))
    end)
    assert.equal(1, runs)
    assert_exact(got, C, bias)
  end)

  it("computes the same at two threads", function()
    local was = mg.get_num_threads()
    mg.set_num_threads(2)
    local ok, err = pcall(function()
      local runs, got = runs_during(function() return a_tensor(false):matmul(b_tensor(true)) end)
      assert.equal(1, runs)
      assert_exact(got, C)
    end)
    mg.set_num_threads(was)
    assert(ok, err)
  end)

  it("stays exact for a shape that comes back after 40 others pushed it out", function()
    local a, b = a_tensor(false), b_tensor(false)
    assert_exact(a:matmul(b), C)
    for n = 1, 40 do
      local x = mg.ones(64, 256 + n)
      local got = x:matmul(mg.ones(256 + n, 64))
      assert.equal(256 + n, got:max():item())
    end
    local runs, got = runs_during(function() return a:matmul(b) end)
    assert.equal(1, runs)
    assert_exact(got, C)
  end)

  it("agrees with float64 on random data to float32's rounding", function()
    mg.manual_seed(3)
    local a, b = mg.randn(128, 784), mg.randn(784, 512)
    local runs, got = runs_during(function() return a:matmul(b) end)
    assert.equal(1, runs)
    local want = a:double():matmul(b:double())
    -- Each sum has 784 terms of size ~1: float32 rounding leaves ~1e-4.
    assert.is_true((got:double() - want):abs():max():item() < 1e-3)
  end)

  it("still computes the product when oneDNN's scratchpad would pass the memory limit", function()
    -- B transposed in memory: with AVX-512 oneDNN then wants a scratchpad
    -- of ~77 KB, which does not fit, and OpenBLAS computes the product
    -- (oneDNN's kernels without AVX-512 want none, and run).
    local a, b = a_tensor(false), b_tensor(true)
    collectgarbage()
    collectgarbage() -- no garbage left that a reclaim could free
    local m = mg.memory()
    -- room for the result, not for the scratchpad as well
    mg.set_memory_limit(m.tensor_bytes + m.header_bytes + M * N * 4 + 4096)
    local ok, got = pcall(function() return a:matmul(b) end)
    mg.set_memory_limit(0)
    assert(ok, got)
    assert_exact(got, C)
  end)

  it("leaves small products, float64 and deterministic mode to OpenBLAS", function()
    local small = mg.ones(16, 16, "float32")
    local runs = runs_during(function() return small:matmul(small) end)
    assert.equal(0, runs)
    runs = runs_during(function() return a_tensor(false):double():matmul(b_tensor(false):double()) end)
    assert.equal(0, runs)
    mg.use_deterministic_algorithms(true)
    local ok, err = pcall(function()
      local r, got = runs_during(function() return a_tensor(false):matmul(b_tensor(false)) end)
      assert.equal(0, r)
      assert_exact(got, C)
    end)
    mg.use_deterministic_algorithms(false)
    assert(ok, err)
  end)
end)
