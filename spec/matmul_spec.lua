-- Matrix products: dot, mv, vector-matrix, mm, bmm and broadcast batches,
-- in every dtype and layout. References are hand-computed small cases and
-- a naive triple loop in Lua over random data.
local mg = require "moongrad"
local approx = require "support.approx"
local values, close = approx.assert_values, approx.assert_close

-- C = A B for nested tables, the textbook way.
local function naive_mm(A, B)
  local C = {}
  for i = 1, #A do
    C[i] = {}
    for j = 1, #B[1] do
      local s = 0
      for k = 1, #B do s = s + A[i][k] * B[k][j] end
      C[i][j] = s
    end
  end
  return C
end

local function transpose(A)
  local T = {}
  for j = 1, #A[1] do
    T[j] = {}
    for i = 1, #A do T[j][i] = A[i][j] end
  end
  return T
end

local function random_matrix(m, n, dtype)
  return mg.randn(m, n, "float64"):to(dtype or "float64")
end

describe("matmul of vectors", function()
  it("1-D · 1-D is a 0-d dot product", function()
    local a = mg.tensor({1, 2, 3}, "float64")
    local b = mg.tensor({4, -5, 6}, "float64")
    values(a:matmul(b), 12, "float64")                -- 4 - 10 + 18
    values(a:dot(b), 12, "float64")
    values(mg.dot(a, b), 12, "float64")
  end)

  it("matrix · vector drops the vector's dim (mv)", function()
    local m = mg.tensor({{1, 2}, {3, 4}, {5, 6}}, "float64")
    local v = mg.tensor({1, -1}, "float64")
    values(m:mv(v), {-1, -1, -1}, "float64")
    values(m:matmul(mg.tensor({2, 1}, "float64")), {4, 10, 16}, "float64")
  end)

  it("vector · matrix drops the vector's dim", function()
    local m = mg.tensor({{1, 2}, {3, 4}, {5, 6}}, "float64")
    values(mg.tensor({1, 0, -1}, "float64"):matmul(m), {-4, -4}, "float64")
  end)

  it("vector · batch of matrices broadcasts the vector", function()
    local b = mg.tensor({{{1, 2}, {3, 4}}, {{0, 1}, {1, 0}}}, "float64")
    values(mg.tensor({1, 1}, "float64"):matmul(b), {{4, 6}, {1, 1}}, "float64")
    values(b:matmul(mg.tensor({1, 2}, "float64")), {{5, 11}, {2, 1}}, "float64")
  end)
end)

describe("matmul of matrices", function()
  it("mm multiplies two matrices", function()
    local a = mg.tensor({{1, 2, 3}, {4, 5, 6}}, "float64")
    local b = mg.tensor({{7, 8}, {9, 10}, {11, 12}}, "float64")
    -- 1*7+2*9+3*11 = 58, 1*8+2*10+3*12 = 64, 4*7+5*9+6*11 = 139, 4*8+5*10+6*12 = 154
    values(a:mm(b), {{58, 64}, {139, 154}}, "float64")
    values(a:matmul(b), {{58, 64}, {139, 154}}, "float64")
    values(a:float():mm(b:float()), {{58, 64}, {139, 154}}, "float32")
  end)

  it("matches a naive triple loop on random float64 matrices", function()
    mg.manual_seed(1)
    for _, mnk in ipairs{{1, 1, 1}, {7, 5, 3}, {17, 33, 9}, {64, 48, 80}} do
      local m, n, k = mnk[1], mnk[2], mnk[3]
      local A, B = random_matrix(m, k), random_matrix(k, n)
      close(A:matmul(B), naive_mm(A:totable(), B:totable()), 1e-12, 1e-12)
    end
  end)

  it("matches the naive loop for one row and for an inner size of 1 (a batch of one), in every layout", function()
    -- [1, k] · [k, n] goes to a matrix-vector product and [m, 1] · [1, n]
    -- to an outer product: each operand given as it is or as a transpose.
    mg.manual_seed(4)
    local function layouts(rows, cols, dtype)
      -- as it is, a transpose, and a transposed slice of a wider matrix
      return {random_matrix(rows, cols, dtype), random_matrix(cols, rows, dtype):t(),
              random_matrix(cols, rows + 2, dtype):narrow(2, 2, rows):t()}
    end
    for _, dtype in ipairs({"float64", "float32"}) do
      local tol = dtype == "float64" and 1e-12 or 1e-5
      for _, mnk in ipairs{{1, 37, 19}, {1, 5, 300}, {23, 41, 1}, {1, 1, 7}} do
        local m, n, k = mnk[1], mnk[2], mnk[3]
        for _, A in ipairs(layouts(m, k, dtype)) do
          for _, B in ipairs(layouts(k, n, dtype)) do
            close(A:matmul(B), naive_mm(A:totable(), B:totable()), tol, tol)
          end
        end
      end
    end
  end)

  it("matches the naive loop in float32 to float32 precision", function()
    mg.manual_seed(2)
    local A, B = random_matrix(20, 30, "float32"), random_matrix(30, 10, "float32")
    close(A:matmul(B), naive_mm(A:totable(), B:totable()), 1e-4, 1e-5)
  end)

  it("gives the same product for transposed operands as for contiguous ones", function()
    mg.manual_seed(3)
    local A, B = random_matrix(6, 4), random_matrix(6, 5)   -- A^T B is 4x5
    local ref = naive_mm(transpose(A:totable()), B:totable())
    close(A:t():matmul(B), ref, 1e-12, 1e-12)
    close(A:t():contiguous():matmul(B), ref, 1e-12, 1e-12)
    -- both transposed: (B^T A)^T = A^T B
    close(B:t():matmul(A):t(), ref, 1e-12, 1e-12)
    local C = random_matrix(5, 4)
    close(A:matmul(C:t()), naive_mm(A:totable(), transpose(C:totable())),
          1e-12, 1e-12)
  end)

  it("handles strided operands BLAS cannot take as they are", function()
    mg.manual_seed(4)
    local big = random_matrix(8, 10)
    local A = big:narrow(2, 2, 5)                       -- rows of stride 10
    local B = random_matrix(5, 3)
    close(A:matmul(B), naive_mm(A:totable(), B:totable()), 1e-12, 1e-12)
    -- every other column: inner stride 2
    local S = mg.zeros(5, 6, "float64")
    local Sv = S:view(5, 3, 2):select(3, 1)           -- 5x3, strides (6, 2)
    Sv:copy_(B)
    close(A:matmul(Sv), naive_mm(A:totable(), B:totable()), 1e-12, 1e-12)
    -- an expanded (stride 0) operand
    local row = mg.tensor({{1, 2, 3, 4, 5}}, "float64"):expand(3, 5)
    close(row:matmul(B), naive_mm(row:totable(), B:totable()), 1e-12, 1e-12)
  end)

  it("multiplies int64 matrices exactly", function()
    local a = mg.tensor({{1, 2}, {3, 4}}, "int64")
    values(a:matmul(a), {{7, 10}, {15, 22}}, "int64")
    values(a:matmul(a:t()), {{5, 11}, {11, 25}}, "int64")
    values(a:mv(mg.tensor({1, -1}, "int64")), {-1, -1}, "int64")
    local big = mg.tensor({{3037000499}}, "int64")   -- squares to just under 2^63
    values(big:matmul(big), {{9223372030926249001}}, "int64")
  end)

  it("promotes mixed dtypes", function()
    local i = mg.tensor({{1, 2}}, "int64")
    values(i:matmul(mg.tensor({{0.5}, {0.25}})), {{1}}, "float32")
    values(i:matmul(mg.tensor({{0.5}, {0.25}}, "float64")), {{1}}, "float64")
    values(mg.tensor({{0.5, 1}}):matmul(mg.tensor({{2}, {3}}, "float64")),
           {{4}}, "float64")
  end)

  it("gives zeros when the inner size is 0", function()
    values(mg.ones(3, 0):matmul(mg.ones(0, 2)), {{0, 0}, {0, 0}, {0, 0}},
           "float32")
    values(mg.ones(0, "float64"):dot(mg.ones(0, "float64")), 0, "float64")
    values(mg.ones(2, 0, "int64"):matmul(mg.ones(0, 1, "int64")), {{0}, {0}},
           "int64")
    assert.same({0, 4}, mg.ones(0, 3):matmul(mg.ones(3, 4)):shape())
  end)

  it("names both shapes when they do not match", function()
    assert.has_error(function() mg.ones(3, 4):matmul(mg.ones(5, 2)) end,
                     "matmul: shapes [3,4] and [5,2] do not match (4 vs 5)")
    assert.has_error(function() mg.ones(3):matmul(mg.ones(4)) end,
                     "matmul: shapes [3] and [4] do not match (3 vs 4)")
    assert.has_error(function() mg.ones(2, 3):matmul(mg.ones(4)) end,
                     "matmul: shapes [2,3] and [4] do not match (3 vs 4)")
    assert.has_error(function() mg.ones(3):matmul(mg.ones(4, 2)) end,
                     "matmul: shapes [3] and [4,2] do not match (3 vs 4)")
    assert.has_error(function() mg.ones(2, 2, 3):matmul(mg.ones(2, 4, 1)) end,
                     "matmul: shapes [2,2,3] and [2,4,1] do not match (3 vs 4)")
  end)

  it("refuses 0-d operands", function()
    assert.has_error(function() mg.tensor(2):matmul(mg.ones(2)) end,
      "matmul: both arguments need at least 1 dimension, got 0-d and 1-d")
  end)

  it("mm, mv, bmm and dot check their operands' dims", function()
    assert.has_error(function() mg.ones(3):mm(mg.ones(3, 2)) end,
      "mm: expects 2-D and 2-D tensors, got shapes [3] and [3,2]")
    assert.has_error(function() mg.ones(2, 3):mv(mg.ones(3, 1)) end,
      "mv: expects 2-D and 1-D tensors, got shapes [2,3] and [3,1]")
    assert.has_error(function() mg.ones(2, 3):bmm(mg.ones(3, 2)) end,
      "bmm: expects 3-D and 3-D tensors, got shapes [2,3] and [3,2]")
    assert.has_error(function() mg.ones(2, 3):dot(mg.ones(2, 3)) end,
      "dot: expects 1-D and 1-D tensors, got shapes [2,3] and [2,3]")
  end)
end)

describe("batched matmul", function()
  it("bmm multiplies matching batches", function()
    mg.manual_seed(5)
    local A, B = mg.randn(3, 4, 5, "float64"), mg.randn(3, 5, 2, "float64")
    local C = A:bmm(B)
    assert.same({3, 4, 2}, C:shape())
    for b = 1, 3 do
      close(C[b], naive_mm(A[b]:totable(), B[b]:totable()), 1e-12, 1e-12)
    end
  end)

  it("broadcasts batch dims: [2,1,3,4] · [5,4,2] is [2,5,3,2]", function()
    mg.manual_seed(6)
    local A, B = mg.randn(2, 1, 3, 4, "float64"), mg.randn(5, 4, 2, "float64")
    local C = A:matmul(B)
    assert.same({2, 5, 3, 2}, C:shape())
    for i = 1, 2 do
      for j = 1, 5 do
        close(C[i][j], naive_mm(A[i][1]:totable(), B[j]:totable()), 1e-12, 1e-12)
      end
    end
  end)

  it("broadcasts a matrix against a batch", function()
    local A = mg.tensor({{1, 2}, {3, 4}}, "float64")
    local B = mg.tensor({{{1, 0}, {0, 1}}, {{0, 1}, {1, 0}}}, "float64")
    values(A:matmul(B), {{{1, 2}, {3, 4}}, {{2, 1}, {4, 3}}}, "float64")
    values(B:matmul(A), {{{1, 2}, {3, 4}}, {{3, 4}, {1, 2}}}, "float64")
  end)

  it("takes transposed batches", function()
    mg.manual_seed(7)
    local A, B = mg.randn(4, 3, 2, "float64"), mg.randn(4, 3, 5, "float64")
    local C = A:transpose(2, 3):matmul(B)               -- [4,2,5]
    for b = 1, 4 do
      close(C[b], naive_mm(transpose(A[b]:totable()), B[b]:totable()),
            1e-12, 1e-12)
    end
    -- a permuted batch dim (batch stride smaller than the matrix strides)
    local P = mg.randn(3, 4, 5, "float64"):permute(2, 1, 3)   -- [4,3,5]
    local W = mg.randn(5, 2, "float64")
    local D = P:matmul(W)
    assert.same({4, 3, 2}, D:shape())
    for b = 1, 4 do
      close(D[b], naive_mm(P[b]:totable(), W:totable()), 1e-12, 1e-12)
    end
  end)

  it("runs many small int64 products", function()
    local A = mg.arange(2 * 3 * 4):reshape(2, 3, 4)
    local B = mg.arange(2 * 4 * 2):reshape(2, 4, 2)
    local C = A:matmul(B)
    assert.equal("int64", C:dtype())
    for b = 1, 2 do
      values(C[b], naive_mm(A[b]:totable(), B[b]:totable()), "int64")
    end
  end)

  it("gives the same results whatever the thread count", function()
    local saved = mg.get_num_threads()
    mg.manual_seed(8)
    local A, B = mg.randn(64, 16, 16, "float64"), mg.randn(64, 16, 16, "float64")
    mg.set_num_threads(1)
    local C1 = A:matmul(B):totable()
    mg.set_num_threads(2)
    local C2 = A:matmul(B):totable()
    mg.set_num_threads(saved)
    for b = 1, 64, 9 do
      close(C2[b], naive_mm(A[b]:totable(), B[b]:totable()), 1e-12, 1e-12)
    end
    close(C1, C2, 1e-12, 1e-12)
  end)
end)
