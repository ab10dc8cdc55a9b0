-- moongrad: tensors, their ops and autograd, from the C core, plus what is
-- easier said in Lua. `local mg = require "moongrad"`.
local mg = require "moongrad.core"

local Tensor = mg.Tensor
local is_tensor, math_type, min = mg.is_tensor, math.type, math.min

mg.gradcheck = require("moongrad.gradcheck").gradcheck

-- ---- splitting: the inverses of mg.cat and mg.stack -------------------------
-- Each piece is a view (narrow or select), so it shares t's storage and its
-- gradient flows back into t's window.

-- Raises (at the caller of op) unless t is a tensor and dim (default 1)
-- one of its dims, 1-based or negative as everywhere; returns the size of
-- dim and dim.
local function check_args(t, dim, op)
  if not is_tensor(t) then
    error(("%s: expected a tensor, got %s"):format(op, type(t)), 3)
  end
  dim = dim or 1
  local nd = t:dim()
  if math_type(dim) ~= "integer" then
    error(("%s: dimension must be an integer, got %s"):format(op, tostring(dim)), 3)
  end
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
    local total = 0
    for i, s in ipairs(sizes) do
      if math_type(s) ~= "integer" or s < 0 then
        error(("split: size %d must be a non-negative integer, got %s"):format(i, tostring(s)), 2)
      end
      total = total + s
    end
    if total ~= n then
      error(("split: sizes {%s} add up to %d, but dimension %d has size %d")
        :format(table.concat(sizes, ", "), total, dim, n), 2)
    end
    local start = 1
    for i, s in ipairs(sizes) do
      pieces[i] = t:narrow(dim, start, s)
      start = start + s
    end
    return pieces
  end
  if math_type(sizes) ~= "integer" or sizes < 0 then
    error(("split: size must be a non-negative integer or a list of sizes, got %s"):format(tostring(sizes)), 2)
  end
  if sizes == 0 and n > 0 then
    error(("split: size 0 only splits a dimension of size 0, dimension %d has size %d"):format(dim, n), 2)
  end
  if n == 0 then return { t:narrow(dim, 1, 0) } end
  for start = 1, n, sizes do
    pieces[#pieces + 1] = t:narrow(dim, start, min(sizes, n - start + 1))
  end
  return pieces
end

-- t:chunk(chunks, dim = 1): split into pieces of ceil(size / chunks), so
-- there may be fewer than chunks pieces (6 into 4 gives three of 2); a
-- dimension of size 0 gives chunks empty pieces, as PyTorch does.
function Tensor.chunk(t, chunks, dim)
  local n
  n, dim = check_args(t, dim, "chunk")
  if math_type(chunks) ~= "integer" or chunks < 1 then
    error(("chunk: chunks must be a positive integer, got %s"):format(tostring(chunks)), 2)
  end
  if n == 0 then
    local pieces = {}
    for i = 1, chunks do pieces[i] = t:narrow(dim, 1, 0) end
    return pieces
  end
  return Tensor.split(t, (n + chunks - 1) // chunks, dim)
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
