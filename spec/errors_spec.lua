-- Bad input never crashes moongrad: every bad call raises a Lua error whose
-- message names the op and the offending shapes or values, at the caller's
-- line, and the state stays usable afterwards (DESIGN.md, "The runtime never
-- aborts the process on bad input").
--
-- Each row is {name, function, pattern[, after]}: calling function must
-- fail with a message matching the Lua pattern; after (if any) runs next,
-- then a small valid computation checks that the state still works.
local mg = require "moongrad"

local function I(t) return mg.tensor(t, "int64") end

-- A tensor that a `<close>` variable has already released.
local function closed_tensor()
  local keep
  do
    local x <close> = mg.ones(2, 2)
    keep = x
  end
  return keep
end

-- A nested table n levels deep around one number.
local function nested(n)
  local t = 1
  for _ = 1, n do t = {t} end
  return t
end

local MiB = 1 << 20

local cases = {
  -- wrong argument types, to every family ----------------------------------
  {"a string operand of +", function() return mg.ones(2) + "x" end,
   "add: expects a tensor or a number, got string"},
  {"a table operand of *", function() return mg.ones(2) * {} end,
   "mul: expects a tensor or a number, got table"},
  {"a nil operand of sub", function() return mg.ones(2):sub(nil) end,
   "sub: expects a tensor or a number, got nil"},
  {"a boolean operand of add_", function() return mg.ones(2):add_(true) end,
   "add_: expects a tensor or a number, got boolean"},
  {"a string where exp expects a tensor", function() return mg.exp("x") end,
   "bad argument #1 to 'exp' %(moongrad%.Tensor expected, got string%)"},
  {"a table as matmul's operand", function() return mg.ones(2, 2):matmul({{1}}) end,
   "bad argument #1 to 'matmul' %(moongrad%.Tensor expected, got table%)"},
  {"a number where copy_ expects a tensor", function() return mg.ones(3):copy_(3) end,
   "bad argument #1 to 'copy_' %(moongrad%.Tensor expected, got number%)"},
  {"a string where where() expects a condition", function() return mg.where("c", 1, 2) end,
   "bad argument #1 to 'where' %(moongrad%.Tensor expected, got string%)"},
  {"a boolean size", function() return mg.zeros(2, true) end,
   "zeros: sizes must be integers, got boolean"},
  {"a fractional size", function() return mg.ones(2.5) end,
   "ones: sizes must be integers, got 2%.5"},
  {"a nil size", function() return mg.zeros(nil, 3) end,
   "zeros: sizes must be integers, got nil"},
  {"a string size for reshape", function() return mg.ones(4):reshape(2, "two") end,
   "reshape: sizes must be integers, got string"},
  {"a string dimension", function() return mg.ones(2, 2):transpose("a", 1) end,
   "transpose: dimension must be an integer, got string"},
  {"a string fill value", function() return mg.ones(2):fill_("x") end,
   "fill_: value must be a number, got string"},
  {"a boolean clamp bound", function() return mg.ones(2):clamp(true) end,
   "clamp: min must be a number, got boolean"},
  {"a string narrow start", function() return mg.ones(3):narrow(1, "a", 1) end,
   "narrow: start must be an integer, got string"},
  {"a string as tensor data", function() return mg.tensor("abc") end,
   "tensor: data must be a number, a %(nested%) table of numbers or a tensor, got string"},
  {"no tensor data at all", function() return mg.tensor() end,
   "tensor: data must be .* got nil"},
  {"a string seed", function() return mg.manual_seed("x") end,
   "manual_seed: seed must be an integer, got string"},
  {"a string value for set", function() return mg.ones(2):set(1, "x") end,
   "set: value must be a number, got string"},
  {"a string assigned to an element", function() local t = mg.ones(3); t[1] = "x" end,
   "index: can assign a number, a boolean or a tensor, got string"},
  {"a boolean index", function() return mg.ones(3)[true] end,
   "index: cannot index a tensor with a boolean"},
  {"a new field on a tensor", function() local t = mg.ones(3); t.foo = 1 end,
   "tensor: cannot set field 'foo'"},

  -- shape mismatches ----------------------------------------------------------
  {"shapes that do not broadcast", function() return mg.ones(2, 3) + mg.ones(4) end,
   "add: shapes %[2,3%] and %[4%] cannot be broadcast together %(size 3 vs 4 at dimension 1 from the right%)"},
  {"a matmul of mismatched matrices", function() return mg.ones(3, 4):matmul(mg.ones(5, 2)) end,
   "matmul: shapes %[3,4%] and %[5,2%] do not match %(4 vs 5%)"},
  {"a dot product of mismatched vectors", function() return mg.ones(3):matmul(mg.ones(4)) end,
   "matmul: shapes %[3%] and %[4%] do not match %(3 vs 4%)"},
  {"a batched matmul with mismatched batches",
   function() return mg.ones(2, 3, 4):matmul(mg.ones(3, 4, 5)) end,
   "matmul: shapes %[2,3,4%] and %[3,4,5%] do not match: batch dimensions %[2%] and %[3%]"},
  {"mm of a vector", function() return mg.ones(3):mm(mg.ones(3, 3)) end,
   "mm: expects 2%-D and 2%-D tensors, got shapes %[3%] and %[3,3%]"},
  {"copy_ from a non-broadcastable source", function() return mg.ones(2, 3):copy_(mg.ones(3, 2)) end,
   "copy_: source of shape %[3,2%] does not broadcast to destination of shape %[2,3%]"},
  {"add_ with an operand larger than the destination",
   function() return mg.ones(3):add_(mg.ones(2, 3)) end,
   "add_: operand of shape %[2,3%] does not broadcast to the destination's shape %[3%]"},
  {"add_ into an expanded tensor", function() return mg.ones(3):expand(4, 3):add_(1) end,
   "add_: the destination of shape %[4,3%] is expanded"},
  {"masked_fill with a mask of another shape",
   function() return mg.ones(3):masked_fill(mg.ones(2), 0) end,
   "masked_fill: mask of shape %[2%] does not broadcast to the tensor's shape %[3%]"},
  {"a view of another size", function() return mg.ones(2, 3):view(4) end,
   "view: shape %[4%] is invalid for a tensor of shape %[2,3%] %(6 elements%)"},
  {"a view of a transposed tensor", function() return mg.ones(2, 3):t():view(6) end,
   "view: a tensor of shape %[3,2%] with these strides cannot be viewed as %[6%]; use reshape"},
  {"reshape with two -1", function() return mg.ones(2, 3):reshape(-1, -1) end,
   "reshape: only one size may be %-1"},
  {"reshape to a negative size", function() return mg.ones(2, 3):reshape(-2, -3) end,
   "reshape: invalid size %-2 at dimension 1"},
  {"reshape to an overflowing shape",
   function() return mg.ones(0):reshape(math.maxinteger, math.maxinteger, 0) end,
   "reshape: shape %[9223372036854775807,9223372036854775807,0%] has more than 2%^63 elements"},
  {"a negative size", function() return mg.zeros(2, -3) end,
   "zeros: size %-3 of dimension 2 is negative"},
  {"more than 16 dimensions", function() return mg.zeros(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1) end,
   "zeros: more than 16 dimensions requested"},
  {"nested tables 17 deep", function() return mg.tensor(nested(17)) end,
   "tensor: nested tables deeper than 16"},
  {"expand to a different size", function() return mg.ones(3):expand(4) end,
   "expand: cannot expand shape %[3%] to %[4%] %(size 3 vs 4 at dimension 1%)"},

  -- indices out of range ---------------------------------------------------
  {"t[0]", function() return mg.ones(3)[0] end,
   "index: index 0 out of range for size 3 of dimension 1"},
  {"t[99]", function() return mg.ones(3)[99] end,
   "index: index 99 out of range for size 3 of dimension 1"},
  {"t[{1, 99}]", function() return mg.ones(2, 3)[{1, 99}] end,
   "index: index 99 out of range for size 3 of dimension 2"},
  {"t[{1, 1, 1}] on a matrix", function() return mg.ones(2, 3)[{1, 1, 1}] end,
   "index: 3 indices given for a 2%-dimensional tensor"},
  {"t[99] = v", function() local t = mg.ones(3); t[99] = 1 end,
   "index: index 99 out of range for size 3 of dimension 1"},
  {"select past the end", function() return mg.ones(2, 3):select(2, 4) end,
   "select: index 4 out of range for size 3 of dimension 2"},
  {"narrow past the end", function() return mg.ones(2, 3):narrow(2, 2, 5) end,
   "narrow: start 2 and length 5 do not fit in size 3 of dimension 2"},
  {"narrow with an overflowing length", function() return mg.ones(2):narrow(1, 2, math.maxinteger) end,
   "narrow: start 2 and length 9223372036854775807 do not fit in size 2 of dimension 1"},
  {"get with too few indices", function() return mg.ones(2, 3):get(1) end,
   "get: 1 indices given for a 2%-dimensional tensor"},
  {"get out of range", function() return mg.ones(2, 3):get(1, 4) end,
   "get: index 4 out of range for size 3 of dimension 2"},
  {"set with too many indices", function() return mg.ones(2, 3):set(1, 2, 3, 4) end,
   "set: 3 indices given for a 2%-dimensional tensor"},
  {"item of a multi-element tensor", function() return mg.ones(2):item() end,
   "item: a tensor with one element is needed, got shape %[2%] %(2 elements%)"},
  {"# of a 0-d tensor", function() return #mg.tensor(3) end,
   "#: a 0%-d tensor has no length"},

  -- bad dimensions ----------------------------------------------------------
  {"transpose(1, 5) of a matrix", function() return mg.ones(2, 3):transpose(1, 5) end,
   "transpose: dimension 5 out of range for a 2%-dimensional tensor %(expected %-2%.%.%-1 or 1%.%.2%)"},
  {"unsqueeze(7) of a matrix", function() return mg.ones(2, 3):unsqueeze(7) end,
   "unsqueeze: dimension 7 out of range for a 2%-dimensional tensor %(expected %-3%.%.%-1 or 1%.%.3%)"},
  {"squeeze(0)", function() return mg.ones(2, 3):squeeze(0) end,
   "squeeze: dimension 0 out of range for a 2%-dimensional tensor"},
  {"permute with a repeated dimension", function() return mg.ones(2, 3, 4):permute(1, 1, 2) end,
   "permute: dimension 1 appears twice"},
  {"permute with too few dimensions", function() return mg.ones(2, 3, 4):permute(1, 2) end,
   "permute: 2 dimensions given for a 3%-dimensional tensor"},
  {"size(1) of a 0-d tensor", function() return mg.tensor(3):size(1) end,
   "size: a 0%-d tensor has no dimensions %(dimension 1 given%)"},
  {"flatten with start after end", function() return mg.ones(2, 3, 4):flatten(3, 1) end,
   "flatten: start dimension 3 comes after end dimension 1"},

  -- bad dtypes --------------------------------------------------------------
  {"the dtype \"complex64\"", function() return mg.zeros(2, "complex64") end,
   "zeros: unknown dtype 'complex64' %(expected \"float32\", \"float64\", \"int64\", \"uint8\", \"float16\", \"bfloat16\", \"int32\", \"int16\", \"int8\" or \"bool\"%)"},
  {"42 as a dtype", function() return mg.tensor({1}, 42) end,
   "tensor: dtype must be a string %(\"float32\", \"float64\", \"int64\", \"uint8\", \"float16\", \"bfloat16\", \"int32\", \"int16\", \"int8\" or \"bool\"%), got number"},
  {"to(\"complex64\")", function() return mg.ones(2):to("complex64") end,
   "to: unknown dtype 'complex64'"},
  {"rand with an integer dtype", function() return mg.rand(2, "int64") end,
   "rand: dtype must be float32 or float64, got int64"},

  -- bad options -------------------------------------------------------------
  {"an unknown option of clamp", function() return mg.ones(2):clamp{min = 0, maxx = 1} end,
   "clamp: unknown option 'maxx'"},
  {"clamp with min above max", function() return mg.ones(2):clamp(2, 1) end,
   "clamp: min 2 is greater than max 1"},
  {"clamp without bounds", function() return mg.ones(2):clamp() end,
   "clamp: give at least one of min and max"},

  -- int64 tensors in place --------------------------------------------------
  {"sqrt_ on int64", function() return mg.ones(2, "int64"):sqrt_() end,
   "sqrt_: the result would be float32, which cannot be stored in place in an int64 tensor"},
  {"add_(0.5) on int64", function() return mg.ones(2, "int64"):add_(0.5) end,
   "add_: the result would be float32, which cannot be stored in place in a tensor of dtype int64"},
  {"div_ on int64", function() return mg.ones(2, "int64"):div_(2) end,
   "div_: the result would be float32, which cannot be stored in place in a tensor of dtype int64"},

  -- integer division by zero ------------------------------------------------
  {"int64 // 0", function() return mg.ones(2, "int64") // 0 end,
   "floor_divide: integer division by zero"},
  {"int64 % 0", function() return mg.ones(2, "int64") % 0 end,
   "remainder: integer division by zero"},
  {"int64 // a tensor holding a zero", function() return I{4, 2} // I{2, 0} end,
   "floor_divide: integer division by zero"},

  -- creation and settings ---------------------------------------------------
  {"randint with an empty range", function() return mg.randint(5, 3, {2}) end,
   "randint: empty range %[5, 3%]"},
  {"randperm(-1)", function() return mg.randperm(-1) end,
   "randperm: n must be non%-negative, got %-1"},
  {"arange with a zero step", function() return mg.arange(0, 10, 0) end,
   "arange: start 0, end 10 and step 0 do not describe a finite range"},
  {"arange stepping away from its end", function() return mg.arange(0, 10, -1) end,
   "arange: step %-1 goes away from end %(start 0, end 10%)"},
  {"arange with too many elements", function() return mg.arange(math.mininteger, math.maxinteger) end,
   "arange: start %S+, end %S+ and step 1 give %S+ elements, too many"},
  {"linspace with negative steps", function() return mg.linspace(0, 1, -5) end,
   "linspace: steps must be non%-negative, got %-5"},
  {"eye of a negative size", function() return mg.eye(-1) end,
   "eye: sizes must be non%-negative, got %-1 and %-1"},
  {"uniform_ with low above high", function() return mg.ones(3):uniform_(2, 1) end,
   "uniform_: expected low <= high, got 2 and 1"},
  {"set_num_threads(0)", function() return mg.set_num_threads(0) end,
   "set_num_threads: n must be between 1 and 1024, got 0"},
  {"a negative memory limit", function() return mg.set_memory_limit(-1) end,
   "set_memory_limit: bytes must be >= 0 %(0 = no limit%), got %-1"},

  -- nested tables -------------------------------------------------------------
  {"a ragged nested table", function() return mg.tensor({{1, 2}, {3}}) end,
   "tensor: ragged nested table: element data%[2%] has 1 entries, expected 2"},
  {"a number where a row should be", function() return mg.tensor({{1, 2}, 3}) end,
   "tensor: ragged nested table: expected a table at depth 2, got number"},
  {"a string element", function() return mg.tensor({{1, "a"}}) end,
   "tensor: elements must be numbers or booleans, got string"},

  -- lifetime and calling mistakes ---------------------------------------------
  {"a method on a tensor closed by <close>", function() return closed_tensor():exp() end,
   "calling 'exp' on bad self %(tensor was already closed%)"},
  {"arithmetic on a closed tensor", function() return closed_tensor() + 1 end,
   "bad argument #1 to 'add' %(tensor was already closed%)"},
  {"a closed tensor as an argument", function() return mg.ones(2, 2):matmul(closed_tensor()) end,
   "bad argument #1 to 'matmul' %(tensor was already closed%)"},
  {"indexing a closed tensor", function() return closed_tensor()[1] end,
   "tensor was already closed"},
  -- another library's userdata is never taken for a tensor (the binding
  -- tells tensors by their metatable's address)
  {"a file handle as an operand", function() return mg.ones(2) + io.stdout end,
   "add: expects a tensor or a number, got userdata"},
  {"a file handle as a tensor argument", function() return mg.exp(io.stderr) end,
   "bad argument #1 to '[%w%.]*exp' %(moongrad%.Tensor expected, got FILE%*%)"},
  {"a method called with . instead of :", function() return mg.ones(2).exp() end,
   "bad argument #1 to 'exp' %(moongrad%.Tensor expected, got no value%)"},
  {"reshape called with . instead of :", function() return mg.ones(4).reshape(2, 2) end,
   "bad argument #1 to 'reshape' %(moongrad%.Tensor expected, got number%)"},

  -- memory ----------------------------------------------------------------------
  {"a 10^18-element tensor", function() return mg.zeros(1e6, 1e6, 1e6) end,
   "zeros: not enough memory: a tensor of shape %[1000000,1000000,1000000%] is too large"},
  -- 2^50 float32 elements: more bytes than any address space, so this fails
  -- the same way whatever the machine's overcommit setting.
  {"a 4 PiB tensor", function() return mg.randn(1 << 25, 1 << 25) end,
   "randn: not enough memory for a tensor of 4503599627370496 bytes"},
  {"a 4 PiB result of an op", function() return mg.ones(1):expand(1 << 25, 1 << 25) + 1 end,
   "add: not enough memory for a tensor of 4503599627370496 bytes"},
  {"an allocation past mg.set_memory_limit",
   function()
     mg.set_memory_limit(MiB)
     local ok, err = pcall(function() return mg.zeros(10 * MiB // 4) end)
     mg.set_memory_limit(0)
     if ok then return err end
     error(err, 0)
   end,
   "zeros: not enough memory for a tensor of 10485760 bytes: the memory limit is 1048576 bytes",
   function() -- the limit lifted, the same allocation succeeds
     local t = mg.zeros(10 * MiB // 4)
     assert.equal(10 * MiB // 4, t:numel())
     assert.equal(0, t:sum():item())
   end},

  -- reductions and indexing (ops_reduce.c, ops_index.c) -------------------------
  {"sum over dimension 3 of a matrix", function() return mg.ones(2, 3):sum(3) end,
   "sum: dimension 3 out of range for a 2%-dimensional tensor %(expected %-2%.%.%-1 or 1%.%.2%)"},
  {"sum with a string keepdim", function() return mg.ones(2, 3):sum(1, "yes") end,
   "sum: expected keepdim %(a boolean%) or an options table, got string"},
  {"sum with an unknown option", function() return mg.ones(2, 3):sum(1, {keep = true}) end,
   "sum: unknown option 'keep'"},
  {"max over dimension -3 of a matrix", function() return mg.ones(2, 3):max(-3) end,
   "max: dimension %-3 out of range for a 2%-dimensional tensor"},
  {"max of an empty tensor", function() return mg.ones(0):max() end,
   "max: cannot reduce over an empty tensor %(shape %[0%]%)"},
  {"var with a boolean flag", function() return mg.ones(3):var(1, true) end,
   "var: expected an options table such as {correction = 0, keepdim = true}, got a boolean"},
  {"index_select with an id past the end", function() return mg.ones(3, 2):index_select(1, I{4}) end,
   "index_select: index 4 out of range for size 3 of dimension 1"},
  {"index_select with id 0", function() return mg.ones(3, 2):index_select(1, I{0}) end,
   "index_select: index 0 out of range for size 3 of dimension 1"},
  {"index_select with float ids", function() return mg.ones(3, 2):index_select(1, mg.tensor{1, 2}) end,
   "index_select: indices must be int64, got float32"},
  {"index_select with a string for ids", function() return mg.ones(3, 2):index_select(1, "x") end,
   "index_select: indices must be an int64 tensor or a table of integers, got string"},
  {"gather with an index of another ndim", function() return mg.ones(3, 2):gather(2, I{1, 2}) end,
   "gather: index of shape %[2%] has 1 dimensions but the tensor of shape %[3,2%] has 2"},
  {"gather with an index past the end", function() return mg.ones(3, 2):gather(2, I{{1}, {2}, {3}}) end,
   "gather: index 3 out of range for size 2 of dimension 2"},
  {"scatter_ with an index past the end", function() return mg.zeros(3, 2):scatter_(2, I{{1}, {3}, {1}}, 1) end,
   "scatter_?: index 3 out of range for size 2 of dimension 2"},
}

-- A small valid computation: after any error the state must still work.
local function still_works()
  local a = mg.tensor({{1, 2}, {3, 4}}, "float64")
  assert.same({{8, 11}, {16, 23}}, (a:matmul(a) + 1):totable())
  assert.equal(3, mg.arange(1, 4):numel())
end

describe("bad input", function()
  assert(#cases >= 40, "at least 40 cases")

  for _, case in ipairs(cases) do
    local name, fn, pattern, after = case[1], case[2], case[3], case[4]
    it("raises a clear error for " .. name, function()
      local ok, msg = pcall(fn)
      assert.is_false(ok)
      assert.is_string(msg)
      assert.matches(pattern, msg)
      if after then after() end
      still_works()
    end)
  end
end)

describe("error messages", function()
  -- Each pcall and the line lookup share one line, so `line` is the line of
  -- the bad call itself.
  local function where(msg, line)
    assert.matches("errors_spec%.lua:" .. line .. ": ", msg)
  end

  it("carry the caller's line for a core error from a method", function()
    local ok, msg = pcall(function() return mg.ones(3, 4):matmul(mg.ones(5, 2)) end); local line = debug.getinfo(1, "l").currentline
    assert.is_false(ok)
    where(msg, line)
    assert.matches(":%d+: matmul: shapes %[3,4%] and %[5,2%]", msg)
  end)

  it("carry the caller's line for an error from an operator", function()
    local ok, msg = pcall(function() return mg.ones(2, 3) + mg.ones(4) end); local line = debug.getinfo(1, "l").currentline
    assert.is_false(ok)
    where(msg, line)
  end)

  it("carry the caller's line for an index out of range", function()
    local ok, msg = pcall(function() return mg.ones(3)[99] end); local line = debug.getinfo(1, "l").currentline
    assert.is_false(ok)
    where(msg, line)
  end)

  it("carry the caller's line for a module function", function()
    local ok, msg = pcall(function() return mg.randperm(-1) end); local line = debug.getinfo(1, "l").currentline
    assert.is_false(ok)
    where(msg, line)
  end)

  it("carry the caller's line and the op for an allocation failure", function()
    local ok, msg = pcall(function() return mg.zeros(1 << 25, 1 << 25) end); local line = debug.getinfo(1, "l").currentline
    assert.is_false(ok)
    where(msg, line)
    assert.matches(":%d+: zeros: not enough memory", msg)
  end)

  it("carry the caller's line for a closed tensor", function()
    local t = closed_tensor()
    local ok, msg = pcall(function() return t:sum() end); local line = debug.getinfo(1, "l").currentline
    assert.is_false(ok)
    where(msg, line)
  end)
end)

describe("edge values that are not errors", function()
  it("divides the most negative int64 by -1 without a crash (it wraps)", function()
    local m = I{math.mininteger, 7}
    assert.same({math.mininteger, -7}, (m // -1):totable())
    assert.same({0, 0}, (m % -1):totable())
    still_works()
  end)

  it("prints a closed tensor instead of failing", function()
    assert.equal("[closed tensor]", tostring(closed_tensor()))
  end)

  it("stores a float64 operand in place into a float32 tensor", function()
    local t = mg.ones(2):add_(mg.tensor({0.5, 1.5}, "float64"))
    assert.equal("float32", t:dtype())
    assert.same({1.5, 2.5}, t:totable())
  end)
end)

-- The same rows in a fresh lua5.4 process, which must then exit with status
-- 0: a crash or abort anywhere, even at exit, fails this. (The child runs
-- this file with describe/it replaced; it skips this block.)
if not rawget(_G, "MG_ERRORS_CHILD") then
  describe("a fresh lua5.4 process", function()
    it("survives every bad input and exits normally", function()
      local spec = debug.getinfo(1, "S").source:match("^@(.*)$")
      local code = ([[
MG_ERRORS_CHILD = true
assert = require "luassert"
local n, failed = 0, 0
function describe(_, body) body() end
function it(name, body)
  n = n + 1
  local ok, err = pcall(body)
  if not ok then failed = failed + 1; print("FAILED: " .. name .. ": " .. tostring(err)) end
end
dofile(%q)
local mg = require "moongrad"
local big = mg.ones(4 * 1024 * 1024) * 2 -- a multithreaded loop before exit
print(("ran %%d, failed %%d"):format(n, failed))
]]):format(spec)
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write(code)
      f:close()
      local p = assert(io.popen("lua5.4 " .. path .. " 2>&1"))
      local out = p:read("a")
      local ok, how, status = p:close()
      os.remove(path)
      assert.is_true(ok, ("child %s %s: %s"):format(tostring(how), tostring(status), out))
      assert.matches("ran %d+, failed 0", out)
      assert.is_true(tonumber(out:match("ran (%d+)")) >= #cases)
    end)
  end)
end
