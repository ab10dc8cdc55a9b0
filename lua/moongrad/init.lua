-- moongrad: tensors, their ops and autograd, from the C core, plus what is
-- easier said in Lua. `local mg = require "moongrad"`.
local mg = require "moongrad.core"

local Tensor = mg.Tensor
local is_tensor, math_type, tointeger, min = mg.is_tensor, math.type, math.tointeger, math.min

mg.gradcheck = require("moongrad.gradcheck").gradcheck
mg.image = require "moongrad.image"
-- mg.display(x): x in its richest form, inline in a notebook (moongrad.display).
function mg.display(...) return require("moongrad.display").display(...) end
-- mg.help(x): the help for a function, module or class (moongrad.help); the
-- REPL and the notebook call it help.
function mg.help(x) return require("moongrad.help").help(x) end
-- mg.attach(pid_or_path): a session inside a job started with --listen
-- (moongrad.attach); session:run(code) runs code there, as a typed line.
function mg.attach(target, opts) return require("moongrad.attach").connect(target, opts) end

-- ---- splitting: the inverses of mg.cat and mg.stack -------------------------
-- Each piece is a view (narrow or select), so it shares t's storage and its
-- gradient flows back into t's window.

-- v as an integer (2.0 counts, as in the C functions' arguments), or nil.
local function as_integer(v)
  if math_type(v) == "float" then return tointeger(v) end
  return math_type(v) == "integer" and v or nil
end

-- Raises (at the caller of op) unless t is a tensor and dim (default 1)
-- one of its dims, 1-based or negative as everywhere; returns the size of
-- dim and dim.
local function check_args(t, dim, op)
  if not is_tensor(t) then
    error(("%s: expected a tensor, got %s"):format(op, type(t)), 3)
  end
  local nd, d = t:dim(), as_integer(dim or 1)
  if not d then
    error(("%s: dimension must be an integer, got %s"):format(op, tostring(dim)), 3)
  end
  dim = d
  if nd == 0 then
    error(("%s: a 0-d tensor has no dimensions"):format(op), 3)
  end
  if dim == 0 or dim < -nd or dim > nd then
    error(("%s: dimension %d out of range for a %d-dimensional tensor (expected %d..-1 or 1..%d)")
      :format(op, dim, nd, -nd, nd), 3)
  end
  return t:size(dim), dim
end

-- t:split(size, dim = 1): pieces of `size` along dim, the last one shorter
-- when size does not divide it; t:split({s1, s2, ...}, dim): pieces of
-- exactly those sizes, which must add up to the size of dim.
function Tensor.split(t, sizes, dim)
  local n
  n, dim = check_args(t, dim, "split")
  local pieces = {}
  if type(sizes) == "table" then
    local list = {}
    for i, s in ipairs(sizes) do
      list[i] = as_integer(s)
      if not list[i] or s < 0 then
        error(("split: size %d must be a non-negative integer, got %s"):format(i, tostring(s)), 2)
      end
    end
    local total = 0
    for _, s in ipairs(list) do
      if s > math.maxinteger - total then -- the sum would wrap around
        error(("split: sizes {%s} add up to more than %d, the size of dimension %d")
          :format(table.concat(list, ", "), n, dim), 2)
      end
      total = total + s
    end
    if total ~= n then
      error(("split: sizes {%s} add up to %d, but dimension %d has size %d")
        :format(table.concat(list, ", "), total, dim, n), 2)
    end
    local start = 1
    for i, s in ipairs(list) do
      pieces[i] = t:narrow(dim, start, s)
      start = start + s
    end
    return pieces
  end
  local size = as_integer(sizes)
  if not size or size < 0 then
    error(("split: size must be a non-negative integer or a list of sizes, got %s"):format(tostring(sizes)), 2)
  end
  if size == 0 and n > 0 then
    error(("split: size 0 only splits a dimension of size 0, dimension %d has size %d"):format(dim, n), 2)
  end
  if n == 0 then return { t:narrow(dim, 1, 0) } end
  for start = 1, n, size do
    pieces[#pieces + 1] = t:narrow(dim, start, min(size, n - start + 1))
  end
  return pieces
end

-- t:chunk(chunks, dim = 1): split into pieces of ceil(size / chunks), so
-- there may be fewer than chunks pieces (6 into 4 gives three of 2); a
-- dimension of size 0 gives chunks empty pieces, as PyTorch does.
function Tensor.chunk(t, chunks, dim)
  local n
  n, dim = check_args(t, dim, "chunk")
  local c = as_integer(chunks)
  if not c or c < 1 then
    error(("chunk: chunks must be a positive integer, got %s"):format(tostring(chunks)), 2)
  end
  if n == 0 then
    local pieces = {}
    for i = 1, c do pieces[i] = t:narrow(dim, 1, 0) end
    return pieces
  end
  return Tensor.split(t, (n - 1) // c + 1, dim) -- ceil(n / c), overflow-free
end

-- t:unbind(dim = 1): the slices along dim, each with dim removed.
function Tensor.unbind(t, dim)
  local n
  n, dim = check_args(t, dim, "unbind")
  local pieces = {}
  for i = 1, n do pieces[i] = t:select(dim, i) end
  return pieces
end

-- Like the C methods, each is also a function of the module.
mg.split, mg.chunk, mg.unbind = Tensor.split, Tensor.chunk, Tensor.unbind

return mg
