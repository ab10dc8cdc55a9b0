-- mg.gradcheck(fn, inputs, opts): compares the gradients autograd computes
-- for fn with central finite differences, in float64. Inputs may be of any
-- layout (strided views, 0-d).
--
-- fn takes the inputs and returns a tensor y. With a random weight v (drawn
-- from a generator state of its own, so the caller's stream is untouched)
-- the scalar L = sum(y * v) has gradient dL/dx = backward(v), which is
-- compared element by element with (L(x + eps) - L(x - eps)) / 2eps. A
-- random v catches a wrong Jacobian entry almost surely, at the cost of one
-- backward instead of one per output element.
local mg = require "moongrad.core"

local M = {}

local function check_inputs(inputs)
  for i, x in ipairs(inputs) do
    if not mg.is_tensor(x) then
      error(("gradcheck: input %d is a %s, not a tensor"):format(i, type(x)), 3)
    end
    if x:is_requires_grad() and x:dtype() ~= "float64" then
      error(("gradcheck: input %d is %s; finite differences need float64"):format(i, x:dtype()), 3)
    end
  end
end

-- Every index tuple of a tensor of this shape, row-major ({{}} for 0-d).
local function index_tuples(shape)
  local out, ix = {}, {}
  local function rec(d)
    if d > #shape then
      out[#out + 1] = {table.unpack(ix)}
      return
    end
    for i = 1, shape[d] do
      ix[d] = i
      rec(d + 1)
    end
  end
  rec(1)
  return out
end

local function get(t, ix) if #ix == 0 then return t:item() end return t[ix] end
local function set(t, ix, v) if #ix == 0 then t:fill_(v) else t[ix] = v end end

-- L(inputs) = sum(fn(inputs) * v), without recording.
local function objective(fn, inputs, v)
  return mg.no_grad(function()
    return (fn(table.unpack(inputs)) * v):sum():item()
  end)
end

-- Returns true when every gradient matches; otherwise raises (or, with
-- opts.raise == false, returns false and the message).
-- opts: eps (1e-6), atol (1e-5), rtol (1e-3), raise (true).
function M.gradcheck(fn, inputs, opts)
  opts = opts or {}
  if mg.is_tensor(inputs) then inputs = { inputs } end
  if type(fn) ~= "function" then error("gradcheck: fn must be a function", 2) end
  if type(inputs) ~= "table" then error("gradcheck: inputs must be a tensor or a table of tensors", 2) end
  check_inputs(inputs)
  local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3

  local y = fn(table.unpack(inputs))
  if not mg.is_tensor(y) then error("gradcheck: fn must return a tensor", 2) end
  if not y:is_requires_grad() then
    error("gradcheck: fn's result does not require grad (no input that requires grad reaches it)", 2)
  end
  local saved_rng = mg.get_rng_state()
  mg.manual_seed(0x9e3779b9)
  local v = mg.randn(y:shape(), "float64"):to(y:dtype())
  mg.set_rng_state(saved_rng)

  for _, x in ipairs(inputs) do x.grad = nil end
  y:backward(v)

  local failure
  for i, x in ipairs(inputs) do
    if x:is_requires_grad() then
      -- a detached alias: moving its elements moves x's, whatever x's
      -- layout (a strided view, a 0-d tensor)
      local d, g = x:detach(), x.grad
      for k, ix in ipairs(index_tuples(x:shape())) do
        local orig = get(d, ix)
        set(d, ix, orig + eps)
        local hi = objective(fn, inputs, v)
        set(d, ix, orig - eps)
        local lo = objective(fn, inputs, v)
        set(d, ix, orig)
        local numeric = (hi - lo) / (2 * eps)
        local a = g and get(g, ix) or 0
        if math.abs(a - numeric) > atol + rtol * math.abs(numeric) then
          failure = ("gradcheck: input %d, element %d: analytic %.10g vs numerical %.10g (at {%s})")
            :format(i, k, a, numeric, table.concat(ix, ","))
          break
        end
      end
    end
    if failure then break end
  end
  for _, x in ipairs(inputs) do x.grad = nil end
  if failure then
    if opts.raise == false then return false, failure end
    error(failure, 2)
  end
  return true
end

return M
