-- mg.linalg.cholesky, mg.linalg.solve_triangular and mg.cholesky_solve:
-- values and gradients against PyTorch (spec/fixtures/gen_linalg.py),
-- gradients against finite differences (mg.gradcheck), and clear errors.
local mg = require "moongrad"
local approx = require "support.approx"
local fixture = require "support.fixture"
local ref = dofile("spec/fixtures/linalg_ref.lua")

local error_of = require("support.check").err_of

-- A float64 tensor of the given shape that requires grad.
local function rand(...)
  return mg.randn({ ... }, "float64"):requires_grad()
end

-- A symmetric positive-definite matrix made from any square x, so that
-- gradcheck's perturbations of x stay inside the op's domain.
local function spd(x)
  local n = x:size(-1)
  return x:matmul(x:transpose(-1, -2)) + mg.eye(n, n, "float64") * n
end

-- A lower triangular matrix with a diagonal far from zero, from any x.
local function lower(x)
  local n = x:size(-1)
  return x:tril() * 0.5 + mg.eye(n, n, "float64") * 2
end

describe("linear algebra", function()
  for _, t in ipairs(fixture.tests(ref, { { "float64", 1e-10 }, { "float32", 1e-4 } })) do
    it(t[1], t[2])
  end

  describe("passes gradcheck (float64)", function()
    mg.manual_seed(11)
    local cases = {
      { "cholesky", function(x) return mg.linalg.cholesky(spd(x)) end, { rand(4, 4) } },
      { "cholesky, upper", function(x) return mg.linalg.cholesky(spd(x), { upper = true }) end,
        { rand(3, 3) } },
      { "cholesky of a batch", function(x) return mg.linalg.cholesky(spd(x)) end, { rand(2, 3, 3) } },
      { "solve_triangular, lower, left", function(a, b)
          return mg.linalg.solve_triangular(lower(a), b, { upper = false })
        end, { rand(3, 3), rand(3, 2) } },
      { "solve_triangular, upper, right", function(a, b)
          return mg.linalg.solve_triangular(lower(a):t(), b, { upper = true, left = false })
        end, { rand(3, 3), rand(4, 3) } },
      { "solve_triangular of a raw matrix (the gradient stays in the triangle)", function(a, b)
          return mg.linalg.solve_triangular(a, b, { upper = true })
        end, { (mg.randn({ 3, 3 }, "float64") * 0.3 + mg.eye(3, 3, "float64") * 2):requires_grad(),
               rand(3, 2) } },
      { "solve_triangular, unitriangular (no gradient on the diagonal)", function(a, b)
          return mg.linalg.solve_triangular(a, b, { upper = false, unitriangular = true })
        end, { (mg.randn({ 3, 3 }, "float64") * 0.3):requires_grad(), rand(3, 2) } },
      { "cholesky_solve", function(b, l) return mg.cholesky_solve(b, lower(l)) end,
        { rand(3, 2), rand(3, 3) } },
      { "cholesky_solve, upper", function(b, l)
          return mg.cholesky_solve(b, lower(l):t(), { upper = true })
        end, { rand(4, 1), rand(4, 4) } },
      { "a GP's negative log marginal likelihood", function(x, y)
          local l = mg.linalg.cholesky(spd(x))
          local v = mg.linalg.solve_triangular(l, y, { upper = false })
          local logdet = (l * mg.eye(3, 3, "float64")):sum(-1):log():sum()
          return (v * v):sum() * 0.5 + logdet
        end, { rand(3, 3), rand(3, 1) } },
    }
    for _, c in ipairs(cases) do
      it("for " .. c[1], function()
        assert.is_true(mg.gradcheck(c[2], c[3]))
      end)
    end
  end)

  describe("cholesky", function()
    it("reads only the triangle it returns", function()
      local a = mg.tensor({ { 4, 99 }, { 2, 5 } }, "float64")
      assert.are.same({ { 2, 0 }, { 1, 2 } }, mg.linalg.cholesky(a):totable())
      local b = mg.tensor({ { 4, 2 }, { 99, 5 } }, "float64")
      assert.are.same({ { 2, 1 }, { 0, 2 } }, mg.linalg.cholesky(b, { upper = true }):totable())
    end)

    it("names the leading minor that is not positive-definite", function()
      local a = mg.tensor({ { 2, 1, 0 }, { 1, 2, 0 }, { 0, 0, -1 } }, "float64")
      assert.matches("linalg.cholesky: the leading minor of order 3 is not positive%-definite",
        error_of(function() mg.linalg.cholesky(a) end))
    end)

    it("names the batch element that is not positive-definite", function()
      local a = mg.stack({ mg.eye(2, 2), mg.tensor({ { 1, 2 }, { 2, 1 } }) })
      assert.matches("linalg.cholesky: batch element 2: the leading minor of order 2",
        error_of(function() mg.linalg.cholesky(a) end))
    end)

    it("rejects a non-square matrix, a vector and an int64 tensor", function()
      assert.matches("linalg.cholesky: expected the input to be a square matrix.*got shape %[2,3%]",
        error_of(function() mg.linalg.cholesky(mg.zeros({ 2, 3 })) end))
      assert.matches("linalg.cholesky: .*at least 2 dimensions.*got shape %[3%]",
        error_of(function() mg.linalg.cholesky(mg.ones({ 3 })) end))
      assert.matches("linalg.cholesky: expected the input to be float32 or float64, got int64",
        error_of(function() mg.linalg.cholesky(mg.eye(2, 2, "int64")) end))
      assert.matches("linalg.cholesky: unknown option 'lower'",
        error_of(function() mg.linalg.cholesky(mg.eye(2, 2), { lower = true }) end))
    end)

    it("frees its copy when the factorization fails", function()
      local a = mg.tensor({ { 1, 2 }, { 2, 1 } }, "float64")
      collectgarbage()
      local before = mg.memory().tensor_bytes
      for _ = 1, 10 do pcall(mg.linalg.cholesky, a) end
      collectgarbage()
      assert.are.equal(before, mg.memory().tensor_bytes)
    end)

    it("factors an empty matrix", function()
      assert.are.same({ 0, 0 }, mg.linalg.cholesky(mg.zeros({ 0, 0 })):shape())
    end)
  end)

  describe("solve_triangular", function()
    local a = mg.tensor({ { 2, 0 }, { 1, 4 } }, "float64")

    it("solves on either side", function()
      local b = mg.tensor({ { 2 }, { 9 } }, "float64")
      assert.are.same({ { 1 }, { 2 } }, mg.linalg.solve_triangular(a, b, { upper = false }):totable())
      local c = mg.tensor({ { 4, 8 } }, "float64")
      assert.are.same({ { 1, 2 } },
        mg.linalg.solve_triangular(a, c, { upper = false, left = false }):totable())
    end)

    it("requires the upper option, as PyTorch does", function()
      assert.matches("linalg.solve_triangular: the option 'upper' is required",
        error_of(function() mg.linalg.solve_triangular(a, a) end))
      assert.matches("linalg.solve_triangular: the option 'upper' is required",
        error_of(function() mg.linalg.solve_triangular(a, a, { left = true }) end))
      assert.matches("option 'upper' must be a boolean",
        error_of(function() mg.linalg.solve_triangular(a, a, { upper = 1 }) end))
    end)

    it("names both shapes when they do not fit", function()
      local err = error_of(function()
        mg.linalg.solve_triangular(a, mg.zeros({ 3, 2 }, "float64"), { upper = false })
      end)
      assert.matches("linalg.solve_triangular: A of shape %[2,2%] and B of shape %[3,2%] do not fit", err)
      err = error_of(function()
        mg.linalg.solve_triangular(a, mg.zeros({ 2, 3 }, "float64"), { upper = false, left = false })
      end)
      assert.matches("A of shape %[2,2%] and B of shape %[2,3%] do not fit", err)
      err = error_of(function()
        mg.linalg.solve_triangular(mg.zeros({ 2, 2, 2 }, "float64"), mg.zeros({ 3, 2, 1 }, "float64"),
          { upper = false })
      end)
      assert.matches("A of shape %[2,2,2%] and B of shape %[3,2,1%] must have the same leading", err)
    end)

    it("rejects mixed dtypes and int64", function()
      assert.matches("A %(float64%) and B %(float32%) must have the same dtype",
        error_of(function() mg.linalg.solve_triangular(a, mg.ones({ 2, 1 }), { upper = false }) end))
      assert.matches("expected B to be float32 or float64, got int64",
        error_of(function()
          mg.linalg.solve_triangular(a, mg.ones({ 2, 1 }, "int64"), { upper = false })
        end))
    end)
  end)

  describe("cholesky_solve", function()
    it("solves A X = B from A's factor", function()
      local A = mg.tensor({ { 4, 2 }, { 2, 5 } }, "float64")
      local B = mg.tensor({ { 8 }, { 12 } }, "float64")
      local x = mg.cholesky_solve(B, mg.linalg.cholesky(A))
      approx.assert_close(x, { { 1 }, { 2 } }, 1e-12, 1e-12)
      local xu = mg.cholesky_solve(B, mg.linalg.cholesky(A, { upper = true }), { upper = true })
      approx.assert_close(xu, { { 1 }, { 2 } }, 1e-12, 1e-12)
    end)

    it("names both shapes when they do not fit", function()
      assert.matches("cholesky_solve: the factor of shape %[2,2%] and B of shape %[3,1%] do not fit",
        error_of(function() mg.cholesky_solve(mg.ones({ 3, 1 }), mg.eye(2, 2)) end))
      assert.matches("cholesky_solve: expected the factor to be a square matrix",
        error_of(function() mg.cholesky_solve(mg.ones({ 3, 1 }), mg.ones({ 3, 2 })) end))
    end)
  end)
end)
