-- moongrad.data's DataLoader: batches of a dataset, one epoch per iter().
--
--   local loader = data.DataLoader(ds, {batch_size = 128, shuffle = true,
--                                       drop_last = false, transform = fn,
--                                       num_workers = 0, prefetch_factor = 2,
--                                       persistent_workers = false})
--   #loader                                -- batches per epoch
--   for xb, yb in loader:iter() do ... end -- one epoch
--
-- Shuffling draws mg.randperm(n) from the state's RNG at the start of each
-- epoch, so mg.manual_seed makes the order reproducible and every epoch's
-- order differs. A dataset with get_batch (TensorDataset, a Subset of one)
-- hands over whole batches gathered in C; any other dataset is read sample
-- by sample and collated: tensors are stacked along a new dim 1, numbers
-- become an int64 tensor when all are Lua integers (class labels) and a
-- float32 one otherwise, tables of numbers become tensors, anything else a
-- Lua list. transform(xb, yb, ...) runs once per batch and returns the
-- batch to yield.
--
-- Per-sample random streams: when the loader runs code that may draw
-- random numbers (ds:get, a collate or a transform), each epoch also draws
-- one epoch seed from the state's RNG (after the order), and ds:get(i) runs
-- inside mg.with_rng_stream(seed, i, ...) and the batch's collate and
-- transform inside stream -k for batch k (-((k-1)*size + rank) when
-- sharded). So a sample's random crop or noise depends on the seed, the
-- epoch and the sample alone -- not on the batch size, the worker count,
-- the thread count or what ran before -- and the main stream moves by the
-- order and the seed only. A TensorDataset gathered by get_batch without a
-- transform draws no seed: its epochs are what they were before seeds.
--
-- Workers: with num_workers = W > 0 the batches are made in W processes
-- forked when iter() begins (moongrad/data/workers.lua): batch k by worker
-- (k - 1) % W + 1, up to prefetch_factor batches per worker ahead, yielded
-- in order, bit for bit the batches of num_workers = 0. The workers end
-- with the iteration: after its last batch, when the for loop is left
-- (break, an error, Ctrl-C through fit), or when the collector finds an
-- unfinished iterator dropped. persistent_workers = true keeps them from
-- epoch to epoch instead (each epoch sends them its order and seed; the
-- dataset and transform stay as they were at the fork) until an iteration
-- is left early or fails, loader:close() or the loader's collection. An
-- error in a worker is raised at its batch as "DataLoader: worker w, batch
-- k: <its message>"; a worker that dies is reported with its exit code or
-- signal.
--
-- Resume: loader:state_dict() is {perm = <this epoch's order, int64> or
-- nil, position = <batches already yielded this epoch>, epoch_seed = <the
-- epoch's seed> or nil}; after loader:load_state_dict(sd) the next iter()
-- yields the rest of that epoch (batch position + 1 on, same order, same
-- draws, whatever num_workers is now) and later epochs shuffle as usual.
-- load_state_dict checks first (position in 0..#loader, perm a permutation
-- of 1..n, epoch_seed an integer) and changes nothing on failure;
-- prepare_load_state_dict(sd) checks and returns the apply step, for
-- moongrad.checkpoint. A state without epoch_seed (saved before seeds
-- existed) resumes with a fresh one.
--
-- Sharding (data-parallel training, moongrad.dist): loader:shard(rank, size)
-- is a copy of the loader for rank `rank` of `size`. Each epoch's order is
-- the unsharded loader's; global batch k is positions k*size*B+1 .. of it
-- (B the batch size), and rank r takes every size-th of those from the
-- r-th on, as PyTorch's DistributedSampler does. So `size` ranks with batch
-- B see together exactly what one loader with batch size*B sees, and
-- #loader is that loader's length. When the last global batch has fewer
-- samples than ranks, some ranks get an empty batch; loader.last_rows and
-- loader.last_global_rows say how many samples the last batch had here and
-- over all ranks. sync(t), when given, makes every rank's t rank 1's: it
-- is called with each epoch's shuffled order and with its seed (a 1-element
-- int64 tensor), so every rank draws the same numbers for a sample
-- (moongrad.dist broadcasts rank 1's).
local mg = require "moongrad"
local workers = require "moongrad.data.workers"

local type, error, setmetatable, pairs = type, error, setmetatable, pairs
local math_type, min, table_unpack, table_pack = math.type, math.min, table.unpack, table.pack
local with_rng_stream = mg.with_rng_stream

local DataLoader = {}
DataLoader.__index = DataLoader
DataLoader.__name = "DataLoader"

local KNOWN = {batch_size = true, shuffle = true, drop_last = true, transform = true,
               collate = true, num_workers = true, prefetch_factor = true,
               persistent_workers = true}

local WEAK = {__mode = "v"}

local function is_callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return mt ~= nil and type(mt.__call) == "function"
end

-- data.DataLoader(ds, {batch_size = 1, shuffle = false, drop_last = false,
-- transform = nil, collate = nil, num_workers = 0, prefetch_factor = 2,
-- persistent_workers = false}); collate(samples) replaces the default
-- collation (samples: a list of table.pack'ed samples).
local function new(ds, opts)
  if type(ds) ~= "table" or type(ds.len) ~= "function" or type(ds.get) ~= "function" then
    error("DataLoader: dataset must have len and get methods", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("DataLoader: options must be a table", 2) end
  for k in pairs(opts) do
    if not KNOWN[k] then error(("DataLoader: unknown option '%s'"):format(tostring(k)), 2) end
  end
  local bs = opts.batch_size or 1
  if math_type(bs) ~= "integer" or bs < 1 then
    error(("DataLoader: batch_size must be an integer >= 1, got %s"):format(tostring(bs)), 2)
  end
  if opts.transform ~= nil and not is_callable(opts.transform) then
    error("DataLoader: transform must be callable", 2)
  end
  if opts.collate ~= nil and not is_callable(opts.collate) then
    error("DataLoader: collate must be callable", 2)
  end
  local nw, pf = opts.num_workers or 0, opts.prefetch_factor or 2
  if math_type(nw) ~= "integer" or nw < 0 then
    error(("DataLoader: num_workers must be an integer >= 0, got %s"):format(tostring(nw)), 2)
  end
  if math_type(pf) ~= "integer" or pf < 1 then
    error(("DataLoader: prefetch_factor must be an integer >= 1, got %s"):format(tostring(pf)), 2)
  end
  for _, k in ipairs{"shuffle", "drop_last", "persistent_workers"} do  -- 1 is a typo, not a yes
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then
      error(("DataLoader: %s must be true or false, got %s"):format(k, tostring(opts[k])), 2)
    end
  end
  return setmetatable({
    dataset = ds,
    batch_size = bs,
    shuffle = opts.shuffle and true or false,
    drop_last = opts.drop_last and true or false,
    transform = opts.transform,
    collate = opts.collate,
    num_workers = nw, prefetch_factor = pf,
    persistent_workers = opts.persistent_workers and true or false,
    _perm = nil,       -- this epoch's order (int64), nil when not shuffling
    _position = 0,     -- batches yielded this epoch
    _seed = nil,       -- this epoch's seed of per-sample streams, nil when not needed
    _resume = false,   -- the next iter() continues the current epoch
    _pool = nil,       -- {workers of the running iteration}, held weakly
    _persistent = nil, -- the persistent workers (persistent_workers = true)
    _iteration = nil,  -- the running iteration's token: older iterators refuse to go on
    shard_rank = 1, shard_size = 1, _sync = nil,
    last_rows = 0, last_global_rows = 0,
  }, DataLoader)
end

-- loader:shard(rank, size [, sync]) --> the loader of rank `rank` (1-based)
-- of `size` ranks (see the top of this file).
function DataLoader:shard(rank, size, sync)
  if math_type(size) ~= "integer" or size < 1 then
    error(("DataLoader:shard: size must be an integer >= 1, got %s"):format(tostring(size)), 2)
  end
  if math_type(rank) ~= "integer" or rank < 1 or rank > size then
    error(("DataLoader:shard: rank must be an integer in 1..%d, got %s"):format(size, tostring(rank)), 2)
  end
  if sync ~= nil and not is_callable(sync) then
    error("DataLoader:shard: sync must be a function sync(perm)", 2)
  end
  local copy = {}
  for k, v in pairs(self) do copy[k] = v end
  copy.shard_rank, copy.shard_size, copy._sync = rank, size, sync
  copy._perm, copy._position, copy._seed, copy._resume = nil, 0, nil, false
  copy._pool, copy._persistent, copy._iteration = nil, nil, nil
  return setmetatable(copy, DataLoader)
end

-- Batches per epoch (global batches of shard_size * batch_size samples when
-- sharded: every rank has as many).
function DataLoader:len()
  local n, bs = self.dataset:len(), self.batch_size * self.shard_size
  if self.drop_last then return n // bs end
  return (n + bs - 1) // bs
end
DataLoader.__len = DataLoader.len

-- ---- collation ----------------------------------------------------------------

local function stack(values, j)
  local first = values[1]
  local shape = first:shape()
  local out = mg.empty({#values, table_unpack(shape)}, first:dtype())
  local ref = table.concat(shape, ",")
  for i = 1, #values do
    local v = values[i]
    if not mg.is_tensor(v) or table.concat(v:shape(), ",") ~= ref then
      error(("DataLoader: cannot collate value %d of the batch's sample %d (%s) with sample 1's (tensor of shape [%s])")
        :format(j, i, mg.is_tensor(v) and "shape [" .. table.concat(v:shape(), ",") .. "]" or type(v), ref), 0)
    end
    out:select(1, i):copy_(v)
  end
  return out
end

local function collate_values(values, j)
  local first = values[1]
  if mg.is_tensor(first) then return stack(values, j) end
  local t = type(first)
  if t == "number" then
    local all_int = true
    for i = 1, #values do
      local v = values[i]
      if type(v) ~= "number" then
        error(("DataLoader: value %d of sample %d is a %s where sample 1's is a number"):format(j, i, type(v)), 0)
      end
      all_int = all_int and math_type(v) == "integer"
    end
    return mg.tensor(values, all_int and "int64" or "float32")
  elseif t == "table" then
    return mg.tensor(values)
  end
  return values
end

-- The default collation of samples (each a table.pack'ed list of values).
local function collate(samples)
  if type(samples) ~= "table" or type(samples[1]) ~= "table" then
    error(("collate: expects a non-empty list of samples (each a list of values), got %s")
      :format(type(samples) == "table" and "a list of " .. type(samples[1]) or type(samples)), 2)
  end
  local nv = samples[1].n or #samples[1]
  local out = {}
  for j = 1, nv do
    local values = {}
    for i = 1, #samples do values[i] = samples[i][j] end
    out[j] = collate_values(values, j)
  end
  return table_unpack(out, 1, nv)
end

-- ---- iteration ----------------------------------------------------------------

-- Does the loader run code of the user's for a batch (get, collate or a
-- transform), which may draw random numbers? Only then does an epoch draw
-- a seed: a TensorDataset gathered by get_batch, untransformed, draws
-- nothing, and its epochs stay as they were before seeds existed.
function DataLoader:_seeded()
  local ds = self.dataset
  return not (ds.get_batch and not self.collate) or self.transform ~= nil
end

-- Batch k of the epoch: its first position in the epoch's order and its
-- length (the global batch's, when sharded).
function DataLoader:_span(k)
  local n, bs = self.dataset:len(), self.batch_size * self.shard_size
  local start = (k - 1) * bs + 1
  return start, start + bs - 1 <= n and bs or n - start + 1
end

-- The rows of this rank's share of a batch of len samples.
function DataLoader:_rows(len)
  local rank, size = self.shard_rank, self.shard_size
  if size == 1 then return len end
  return len < rank and 0 or (len - rank) // size + 1
end

local function read_sample(ds, i) return table_pack(ds:get(i)) end

local function finish(self, rows, ...)
  if self.transform and rows > 0 then return self.transform(...) end
  return ...
end

-- The batch, inside its stream when the epoch has a seed: each sample read
-- in its own stream (its index), then collate and the transform.
local function make_batch(self, ids, rows)
  local ds = self.dataset
  if ds.get_batch and not self.collate then return finish(self, rows, ds:get_batch(ids)) end
  -- an empty share (see the top of this file) has nothing to collate
  if rows == 0 then return {} end
  local list, seed = ids:totable(), self._seed
  local samples = {}
  for i = 1, rows do
    local id = list[i]
    samples[i] = seed and with_rng_stream(seed, id, read_sample, ds, id) or read_sample(ds, id)
  end
  return finish(self, rows, (self.collate or collate)(samples))
end

-- loader:_produce(k) --> batch k of the epoch (this rank's share of it):
-- what one iteration step yields, made in this process or in a worker.
-- Sample i's draws come from stream i of the epoch's seed and the batch's
-- (collate, transform) from stream -k (-((k-1)*size + rank) when sharded),
-- so they depend on the seed and the sample alone: not on the worker
-- count, the batch size, the thread count or what ran before.
function DataLoader:_produce(k)
  local start, len = self:_span(k)
  local size = self.shard_size
  local ids
  if size == 1 then
    ids = self._perm and self._perm:narrow(1, start, len) or mg.arange(start, start + len)
  else
    local pos = mg.arange(start + self.shard_rank - 1, start + len, size, "int64")
    ids = self._perm and self._perm:index_select(1, pos) or pos
  end
  local rows = ids:numel()
  if not self._seed then return make_batch(self, ids, rows) end
  return with_rng_stream(self._seed, -((k - 1) * size + self.shard_rank), make_batch, self, ids, rows)
end

-- A seed for the epoch's streams from the main stream; every rank takes
-- rank 1's when sharded with sync.
local function draw_seed(self)
  local t = mg.randint(0, math.maxinteger, {1})
  if self._sync then self._sync(t) end
  return t:item()
end

-- Stops the workers of an iteration still running (left by a break, or
-- before a new iter()); idle persistent workers stay.
function DataLoader:_stop_workers()
  local pool = self._pool and self._pool[1]
  self._pool = nil
  if pool then pool:close() end
  local kept = self._persistent
  if kept and (kept.running or kept.nw ~= self.num_workers or not self.persistent_workers) then
    kept:close()
    self._persistent = nil
  end
end

-- loader:worker_pids() --> the process ids of the workers alive now, in
-- worker order ({} without any): for watching their memory or CPU.
function DataLoader:worker_pids()
  local pool = (self._pool and self._pool[1]) or self._persistent
  local pids = {}
  if pool and not pool.closed then
    for w = 1, pool.nw do
      if pool.procs[w] then pids[#pids + 1] = pool.procs[w].pid end
    end
  end
  return pids
end

-- loader:close(): stops the loader's workers now, persistent ones too,
-- rather than when the loader is collected. The next iter() starts anew.
function DataLoader:close()
  self:_stop_workers()
  if self._persistent then self._persistent:close() end
  self._persistent, self._iteration = nil, nil
end
DataLoader.__close = DataLoader.close

-- The workers for batches first..last of this epoch: the persistent ones
-- when they are kept, else forked now.
local function workers_for(self, first, last)
  if self.persistent_workers then
    local kept = self._persistent
    if not (kept and not kept.closed) then
      kept = workers.start(self, self.num_workers, true)
      self._persistent = kept
    end
    return kept
  end
  local pool = workers.start(self, min(self.num_workers, last - first + 1), false)
  -- weak: an iterator dropped unfinished lets the collector stop its workers
  self._pool = setmetatable({pool}, WEAK)
  return pool
end

-- for xb, yb, ... in loader:iter() do ... end: one epoch. With workers the
-- for loop's closing value stops them when the loop is left early.
function DataLoader:iter()
  self:_stop_workers()
  local n = self.dataset:len()
  local nb = self:len()
  if self._resume then
    self._resume = false
  else
    self._perm = self.shuffle and n > 0 and mg.randperm(n) or nil
    if self._perm and self._sync then self._sync(self._perm) end
    self._position, self._seed = 0, nil
  end
  -- a state saved before epochs had seeds resumes with a fresh one
  if self._seed == nil and self:_seeded() then self._seed = draw_seed(self) end
  local pool
  if self.num_workers > 0 and self._position < nb then
    pool = workers_for(self, self._position + 1, nb)
    pool:begin(self, self._position + 1, nb)
  end
  local token = {}
  self._iteration = token
  return function()
    if self._iteration ~= token then
      error("DataLoader: this iteration has ended: a newer iter() or load_state_dict replaced it", 2)
    end
    local k = self._position + 1
    if k > nb then return nil end
    local _, len = self:_span(k)
    self._position = k
    self.last_rows, self.last_global_rows = self:_rows(len), len
    if pool then return pool:take(k) end
    return self:_produce(k)
  end, nil, nil, pool
end

-- ---- resume ---------------------------------------------------------------------

function DataLoader:state_dict()
  return {perm = self._perm, position = self._position, epoch_seed = self._seed}
end

-- A problem with perm as the order of an epoch over n samples, or nil: it
-- must be a 1-D int64 tensor holding each of 1..n exactly once.
local function perm_problem(perm, n)
  if not mg.is_tensor(perm) or perm:dtype() ~= "int64" or perm:dim() ~= 1 or perm:numel() ~= n then
    local got = mg.is_tensor(perm) and ("a tensor of %s, shape [%s]"):format(perm:dtype(),
      table.concat(perm:shape(), ",")) or type(perm)
    return ("perm must be a 1-D int64 tensor of %d positions, got %s"):format(n, got)
  end
  if n == 0 then return nil end
  local lo, hi = perm:min():item(), perm:max():item()
  if lo < 1 or hi > n then
    return ("perm must hold each of 1..%d once, it holds %d"):format(n, lo < 1 and lo or hi)
  end
  local counts = mg.zeros(n, "int64"):scatter_add(1, perm, mg.ones(n, "int64"))
  if counts:max():item() > 1 then
    local twice = counts:argmax():item()
    return ("perm must hold each of 1..%d once, it holds %d twice and misses %d"):format(
      n, twice, counts:argmin():item())
  end
end

-- Checks sd and returns the function that installs it (plain assignments),
-- or nil and a message; changes nothing.
local function prepare(self, sd)
  local who = "DataLoader:load_state_dict"
  if type(sd) ~= "table" then return nil, who .. ": expects a table, got " .. type(sd) end
  for k in pairs(sd) do
    if k ~= "position" and k ~= "perm" and k ~= "epoch_seed" then
      return nil, ("%s: unknown entry '%s' (known: perm, position, epoch_seed)"):format(who, tostring(k))
    end
  end
  local pos, perm, seed, nb = sd.position, sd.perm, sd.epoch_seed, self:len()
  if seed ~= nil and math_type(seed) ~= "integer" then
    return nil, ("%s: epoch_seed must be an integer, got %s"):format(who, tostring(seed))
  end
  if math_type(pos) ~= "integer" or pos < 0 or pos > nb then
    return nil, ("%s: position must be an integer in 0..%d (the batches of an epoch), got %s")
                :format(who, nb, tostring(pos))
  end
  if perm ~= nil then
    local problem = perm_problem(perm, self.dataset:len())
    if problem then return nil, who .. ": " .. problem end
    perm = perm:contiguous():clone()   -- the loader's own, whatever happens to sd
  elseif self.shuffle and pos > 0 and pos < nb then
    return nil, who .. ": a shuffling loader needs the epoch's perm to resume mid-epoch"
  end
  -- A shuffling loader without a perm has not drawn this epoch's order yet.
  local resume = pos < nb and (perm ~= nil or not self.shuffle)
  return function()
    self:_stop_workers()
    self._perm, self._position, self._seed, self._resume = perm, pos, seed, resume
    self._iteration = nil
  end
end

-- loader:prepare_load_state_dict(sd) --> apply: checks sd as load_state_dict
-- does, changing nothing; apply() installs it and cannot fail.
function DataLoader:prepare_load_state_dict(sd)
  local apply, problem = prepare(self, sd)
  if not apply then error(problem, 2) end
  return apply
end

-- loader:load_state_dict(sd): all or nothing; position must be 0..#loader
-- and perm (when given) a permutation of 1..n for the dataset's n samples.
function DataLoader:load_state_dict(sd)
  local apply, problem = prepare(self, sd)
  if not apply then error(problem, 2) end
  apply()
end

return {DataLoader = new, collate = collate}
