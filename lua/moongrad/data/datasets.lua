-- moongrad.data's datasets: TensorDataset, Subset and random_split.
--
-- The Dataset protocol is two methods: ds:len() (the number of samples) and
-- ds:get(i) (1-based) returning the sample's values (x, y, ...). Any table
-- with those two methods is a dataset. A dataset may also offer the fast
-- path ds:get_batch(ids), ids a 1-D int64 tensor of 1-based positions,
-- returning whole batch tensors; DataLoader uses it when present, so a
-- TensorDataset's batches are gathered in C (index_select) without any
-- per-sample Lua.
local mg = require "moongrad"

local type, select, error, setmetatable = type, select, error, setmetatable
local math_type, math_floor = math.type, math.floor

local M = {}

local function is_int64_vector(t)
  return mg.is_tensor(t) and t:dtype() == "int64" and t:dim() == 1
end

-- ---- TensorDataset ------------------------------------------------------------

local TensorDataset = {}
TensorDataset.__index = TensorDataset
TensorDataset.__name = "TensorDataset"

-- data.TensorDataset(x, y, ...): sample i is (x[i], y[i], ...), slices along
-- dim 1; every tensor must have the same size there.
function M.TensorDataset(...)
  local n = select("#", ...)
  if n == 0 then error("TensorDataset: needs at least one tensor", 2) end
  local tensors = {...}
  local size
  for k = 1, n do
    local t = tensors[k]
    if not mg.is_tensor(t) then
      error(("TensorDataset: argument %d must be a tensor, got %s"):format(k, type(t)), 2)
    end
    if t:dim() == 0 then
      error(("TensorDataset: argument %d is a 0-d tensor (samples are slices along dim 1)"):format(k), 2)
    end
    local s = t:size(1)
    if size and s ~= size then
      error(("TensorDataset: tensors must have the same size in dim 1: argument 1 has %d, argument %d has %d")
        :format(size, k, s), 2)
    end
    size = s
  end
  return setmetatable({tensors = tensors, n = n, size = size}, TensorDataset)
end

function TensorDataset:len() return self.size end
TensorDataset.__len = TensorDataset.len

local function check_position(i, n, who)
  if math_type(i) ~= "integer" or i < 1 or i > n then
    error(("%s: index %s out of range 1..%d"):format(who, tostring(i), n), 3)
  end
end

-- The i-th slices (views of the tensors; 0-d tensors for 1-D ones).
function TensorDataset:get(i)
  check_position(i, self.size, "TensorDataset:get")
  local out = {}
  for k = 1, self.n do out[k] = self.tensors[k]:select(1, i) end
  return table.unpack(out, 1, self.n)
end

-- Batch tensors of the samples at ids (int64 1-D, 1-based): new tensors.
function TensorDataset:get_batch(ids)
  local out = {}
  for k = 1, self.n do out[k] = self.tensors[k]:index_select(1, ids) end
  return table.unpack(out, 1, self.n)
end

-- ---- Subset ---------------------------------------------------------------

local Subset = {}
Subset.__index = Subset
Subset.__name = "Subset"

local function subset_get_batch(self, ids)
  return self.dataset:get_batch(self.indices:index_select(1, ids))
end

-- data.Subset(ds, ids): the samples of ds at ids (a table of integers or a
-- 1-D int64 tensor of 1-based positions), in that order.
function M.Subset(ds, ids)
  if type(ds) ~= "table" or type(ds.len) ~= "function" or type(ds.get) ~= "function" then
    error("Subset: dataset must have len and get methods", 2)
  end
  if type(ids) == "table" then
    for k = 1, #ids do
      if math_type(ids[k]) ~= "integer" then
        error(("Subset: ids[%d] must be an integer, got %s"):format(k, tostring(ids[k])), 2)
      end
    end
    ids = #ids > 0 and mg.tensor(ids, "int64") or mg.empty({0}, "int64")
  elseif not is_int64_vector(ids) then
    error("Subset: ids must be a table of integers or a 1-D int64 tensor", 2)
  end
  local n = ds:len()
  if ids:numel() > 0 then
    local lo, hi = ids:min():item(), ids:max():item()
    if lo < 1 or hi > n then
      error(("Subset: id %d out of range 1..%d"):format(lo < 1 and lo or hi, n), 2)
    end
  end
  local self = setmetatable({dataset = ds, indices = ids:contiguous()}, Subset)
  if ds.get_batch then self.get_batch = subset_get_batch end
  return self
end

function Subset:len() return self.indices:numel() end
Subset.__len = Subset.len

function Subset:get(i)
  check_position(i, self.indices:numel(), "Subset:get")
  return self.dataset:get(self.indices:get(i))
end

-- ---- random_split -------------------------------------------------------------

-- Split sizes from counts (summing to n) or fractions (summing to 1; the
-- floors, then one more each, round robin, for what is left, as torch).
local function split_sizes(lengths, n)
  local sum, all_int = 0, true
  for k = 1, #lengths do
    local l = lengths[k]
    if type(l) ~= "number" or not (l >= 0 and l < math.huge) then
      error(("random_split: lengths[%d] must be a number >= 0, got %s"):format(k, tostring(l)), 3)
    end
    sum = sum + l
    all_int = all_int and math_type(l) == "integer"
  end
  if all_int then
    if sum ~= n then
      error(("random_split: lengths sum to %d, but the dataset has %d samples"):format(sum, n), 3)
    end
    return lengths
  end
  if math.abs(sum - 1) > 1e-6 then
    error(("random_split: fractions must sum to 1, got %g"):format(sum), 3)
  end
  local sizes, used = {}, 0
  for k = 1, #lengths do
    sizes[k] = math_floor(n * lengths[k])
    used = used + sizes[k]
  end
  for k = 0, n - used - 1 do
    local j = k % #lengths + 1
    sizes[j] = sizes[j] + 1
  end
  return sizes
end

-- data.random_split(ds, {n1, n2, ...} or {0.9, 0.1}, {seed = 42}) --> Subsets
-- of a random permutation. With a seed the permutation comes from that seed
-- alone and the state's RNG stream is left exactly as it was; without one
-- it is drawn from the stream (reproducible under mg.manual_seed).
function M.random_split(ds, lengths, opts)
  if type(ds) ~= "table" or type(ds.len) ~= "function" then
    error("random_split: dataset must have len and get methods", 2)
  end
  if type(lengths) ~= "table" or #lengths == 0 then
    error("random_split: lengths must be a non-empty table", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "seed" then error(("random_split: unknown option '%s'"):format(tostring(k)), 2) end
  end
  local n = ds:len()
  local sizes = split_sizes(lengths, n)
  local perm
  if opts.seed ~= nil then
    if math_type(opts.seed) ~= "integer" then
      error("random_split: option 'seed' must be an integer", 2)
    end
    local saved = mg.get_rng_state()
    mg.manual_seed(opts.seed)
    perm = n > 0 and mg.randperm(n) or mg.empty({0}, "int64")
    mg.set_rng_state(saved)
  else
    perm = n > 0 and mg.randperm(n) or mg.empty({0}, "int64")
  end
  local out, offset = {}, 1
  for k = 1, #sizes do
    out[k] = M.Subset(ds, perm:narrow(1, offset, sizes[k]):clone())
    offset = offset + sizes[k]
  end
  return out
end

M.is_int64_vector = is_int64_vector
return M
