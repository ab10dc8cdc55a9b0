-- moongrad.dist: data-parallel training over MPI (Open MPI), launched with
-- mpirun on one machine or many.
--
--   mpirun -np 4 moongrad train.lua          (add --oversubscribe for more
--                                              ranks than cores; as root,
--                                              --allow-run-as-root)
--   local dist = require "moongrad.dist"
--   dist.init()                       --> rank, size (ranks are 1..size)
--   dist.rank()  dist.size()  dist.is_main()      (rank 1 logs and saves)
--   dist.local_rank()  dist.local_size()           (ranks on this machine)
--   dist.barrier()
--   dist.broadcast(t [, root = 1])    root's values into every rank's t;
--                                     a string instead of t returns root's
--   dist.allreduce(t, "sum" | "mean" | "max" | "min")  in place, returns t;
--                                     a number instead of t returns a number
--   dist.allgather(t)                 --> tensor {size, ...t's shape}
--   dist.shard(loader)                --> this rank's share of each batch
--   dist.DistributedDataParallel(model [, {bucket_mb = 25, overlap = false}])
--   dist.stats()                      --> {seconds, bytes, calls, early_buckets}
--   dist.send(dest, s)  dist.probe()  dist.recv([source])   strings between ranks
--   dist.split(color)                 --> group (nil for a nil color)
--   dist.with_group(group, fn, ...)   --> fn(...), run with group as the job
--
-- Groups of ranks: dist.split(color), called by every rank, puts the
-- ranks passing the same color into one group (in rank order; a rank
-- passing nil joins none). Inside dist.with_group(group, fn, ...) the
-- group is the whole job: dist.rank() is 1..group.size, dist.size() the
-- group's size, is_main() true on its first rank, and the collectives,
-- shard, DistributedDataParallel and train.fit{distributed = true} run
-- over the group alone (a DistributedDataParallel belongs to the group it
-- was made in). The world comes back when fn returns or raises. send,
-- probe and recv always use the world's ranks. moongrad.tune runs one
-- trial per group this way (study:optimize{workers = "mpi",
-- ranks_per_trial = k}).
--
-- Tensors are float32, float64 or int64 and contiguous; every rank must
-- call each collective in the same order with tensors of the same size and
-- dtype (checked: a mismatch is the same error on every rank). train.fit's
-- `distributed = true` does all of this for a training loop: see
-- moongrad.train.
--
-- dist.init() gives each rank cpus / (ranks on the machine) threads unless
-- OMP_NUM_THREADS is set, so ranks do not fight over cores.
local mg = require "moongrad"

local type, error, pcall, ipairs, tostring, setmetatable = type, error, pcall, ipairs,
  tostring, setmetatable
local fmt = string.format

local C, err = require("moongrad.util").require_beside_core("moongrad.dist_mpi", "dist_mpi.so")
if not C then
  error(fmt("moongrad.dist needs MPI: this moongrad was built without it or cannot load " ..
            "it (%s). Install Open MPI (apt-get install libopenmpi-dev openmpi-bin) and " ..
            "rebuild (make), then launch with mpirun -np N", err), 2)
end

local dist = {mpi_version = C.mpi_version}

local rank0, size = nil, nil -- MPI's 0-based rank and the size, after init
local local_rank0, local_size   -- the same among the ranks on this machine
-- (all four the current group's inside with_group)
local world_size                -- the world's, for send and recv
local current                   -- the group of with_group, nil for the world

local function need(fn)
  if not rank0 then error(fmt("dist.%s: call dist.init() first", fn), 3) end
end

-- dist.init() --> rank (1-based), size. Calling it again is harmless.
function dist.init()
  if not rank0 then
    rank0, size = C.init()
    world_size = size
    -- a collective: asked once, here, where every rank calls it
    local_rank0, local_size = C.local_rank_size()
    local env = os.getenv("OMP_NUM_THREADS")
    if not (env and env ~= "") then
      mg.set_num_threads(math.max(1, mg._cpu_count() // local_size))
    end
  end
  return rank0 + 1, size
end

function dist.is_initialized() return rank0 ~= nil and C.initialized() end
function dist.rank() need("rank") return rank0 + 1 end
function dist.size() need("size") return size end
-- True on rank 1, and in a process that never called dist.init().
function dist.is_main() return not rank0 or rank0 == 0 end

function dist.local_rank() need("local_rank") return local_rank0 + 1 end
function dist.local_size() need("local_size") return local_size end

-- Ends MPI; later collectives raise. A process that exits without calling
-- it finalises at exit.
function dist.finalize()
  if rank0 then C.finalize() end
end

function dist.barrier() need("barrier") C.barrier() end

local function check_tensor(fn, t)
  if not mg.is_tensor(t) then
    error(fmt("dist.%s: expects a tensor as argument #1, got %s", fn, type(t)), 3)
  end
end

function dist.broadcast(t, root)
  need("broadcast")
  if type(t) ~= "string" then check_tensor("broadcast", t) end
  root = root or 1
  if math.type(root) ~= "integer" or root < 1 or root > size then
    error(fmt("dist.broadcast: root must be a rank in 1..%d, got %s", size, tostring(root)), 2)
  end
  if type(t) == "string" then return C.broadcast_string(t, root - 1) end
  return C.broadcast(t, root - 1)
end

local OPS = {sum = true, mean = true, max = true, min = true}

function dist.allreduce(t, op)
  need("allreduce")
  op = op or "sum"
  if not OPS[op] then
    error(fmt("dist.allreduce: op must be \"sum\", \"mean\", \"max\" or \"min\", got %s",
              tostring(op)), 2)
  end
  if type(t) == "number" then
    local v = C.allreduce(mg.tensor({t}, "float64"), op == "mean" and "sum" or op):item()
    return op == "mean" and v / size or v
  end
  check_tensor("allreduce", t)
  if op == "mean" and t:dtype() == "int64" then
    error("dist.allreduce: \"mean\" needs a float tensor, got int64 (use \"sum\")", 2)
  end
  C.allreduce(t, op == "mean" and "sum" or op)
  if op == "mean" and size > 1 then mg.no_grad(function() t:mul_(1 / size) end) end
  return t
end

function dist.allgather(t)
  need("allgather")
  check_tensor("allgather", t)
  local shape = t:shape()
  table.insert(shape, 1, size)
  local out = mg.empty(shape, t:dtype())
  C.allgather(t:contiguous(), out)
  return out
end

function dist.stats() return C.stats() end
function dist.reset_stats() C.reset_stats() end

-- dist.shard(loader) --> loader:shard(rank, size) whose shuffled order is
-- rank 1's on every rank.
function dist.shard(loader)
  need("shard")
  if type(loader) ~= "table" or type(loader.shard) ~= "function" then
    error(fmt("dist.shard: expects a DataLoader, got %s", type(loader)), 2)
  end
  return loader:shard(rank0 + 1, size, function(perm) C.broadcast(perm, 0) end)
end

-- ---- DistributedDataParallel ---------------------------------------------------

local DDP = {}
DDP.__index = DDP
DDP.__name = "DistributedDataParallel"

-- Forwards to the model, so ddp(x) works where model(x) did.
function DDP.__call(self, ...) return self.module(...) end

local function list_of(iter_or_list)
  if type(iter_or_list) == "table" then return iter_or_list end
  local out = {}
  for t in iter_or_list do out[#out + 1] = t end
  return out
end

-- dist.DistributedDataParallel(model, {bucket_mb = 25, overlap = false}):
-- checks that every rank holds the same parameter shapes and copies rank
-- 1's parameters and buffers to all ranks. After each backward,
-- ddp:sync_gradients() makes every rank's gradients the average over ranks
-- (gradients packed into buckets of bucket_mb MiB, one allreduce each).
--
-- overlap = true: each bucket starts its allreduce during backward, as
-- soon as its gradients are complete (the first bucket holds at most 1 MiB,
-- so the last layers' start early), and sync_gradients waits for the rest.
-- Worth it where the transfer is network time; on one machine it costs
-- (Open MPI's non-blocking allreduce is slower than its blocking one over
-- shared memory, and its copies compete with backward for the cores), so
-- it is off by default. With it, a backward must be followed by
-- sync_gradients before the next; to accumulate gradients over several
-- backward passes, run all but the last inside ddp:no_sync(fn). A weight
-- other than 1 / size goes to ddp:prepare(weight) before the backward
-- (fit does this).
function dist.DistributedDataParallel(model, opts)
  need("DistributedDataParallel")
  opts = opts or {}
  if type(model) ~= "table" or type(model.parameters) ~= "function" then
    error("dist.DistributedDataParallel: expects a module (with :parameters())", 2)
  end
  if type(opts) ~= "table" then
    error("dist.DistributedDataParallel: options must be a table", 2)
  end
  for k in pairs(opts) do
    if k ~= "bucket_mb" and k ~= "overlap" then
      error(fmt("dist.DistributedDataParallel: unknown option '%s' (known: bucket_mb, overlap)",
                tostring(k)), 2)
    end
  end
  local mb = opts.bucket_mb or 25
  if type(mb) ~= "number" or not (mb > 0) or mb == math.huge then
    error(fmt("dist.DistributedDataParallel: bucket_mb must be a number > 0, got %s",
              tostring(mb)), 2)
  end
  local self = setmetatable({module = model, bucket_bytes = math.floor(mb * 1048576),
                             params = list_of(model:parameters())}, DDP)
  if opts.overlap ~= nil and type(opts.overlap) ~= "boolean" then
    error(fmt("dist.DistributedDataParallel: overlap must be true or false, got %s",
              tostring(opts.overlap)), 2)
  end
  self.buffers = model.buffers and list_of(model:buffers()) or {}
  self:_check_same_model()
  self:broadcast_parameters()
  -- nil when the parameters mix dtypes: then sync_gradients does it all
  self._overlap = opts.overlap and C.overlap_new(self.params, self.bucket_bytes) or nil
  self:prepare()
  return self
end

-- ddp:prepare([weight]): the weight (default 1 / size) the next backward's
-- gradients are summed with, when overlapping.
function DDP:prepare(weight)
  self._weight = weight or 1 / size
  if self._overlap then C.overlap_arm(self._overlap, self._weight) end
end

-- ddp:no_sync(fn, ...): runs fn (backward passes that accumulate) without
-- sending gradients; the next backward outside sends the sums.
function DDP:no_sync(fn, ...)
  if not self._overlap then return fn(...) end
  C.overlap_arm(self._overlap, nil)
  local res = table.pack(pcall(fn, ...))
  C.overlap_arm(self._overlap, self._weight)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- How many buckets overlap with backward (0 without overlap).
function DDP:buckets()
  return self._overlap and C.overlap_buckets(self._overlap) or 0
end

-- Every rank's parameters must match in number, dtype and shape.
function DDP:_check_same_model()
  -- a fingerprint of fixed size (so that it reaches every rank whatever
  -- the models), and its negation: one max gives each rank both extremes
  local ps, total, positional = self.params, 0, 0
  for i, p in ipairs(ps) do
    total, positional = total + p:numel(), positional + i * p:numel()
  end
  local print_ = mg.tensor({#ps, total, positional, -#ps, -total, -positional}, "int64")
  local v = C.allreduce(print_, "max"):totable()
  if v[1] ~= -v[4] or v[2] ~= -v[5] or v[3] ~= -v[6] then
    local shapes = {}
    for i, p in ipairs(ps) do shapes[i] = "[" .. table.concat(p:shape(), ",") .. "]" end
    error(fmt("dist.DistributedDataParallel: ranks hold different models (rank %d: %d " ..
              "parameters %s)", rank0 + 1, #ps, table.concat(shapes, " ")), 3)
  end
end

-- Rank 1's parameters and buffers into every rank's.
function DDP:broadcast_parameters()
  mg.no_grad(function()
    for _, p in ipairs(self.params) do C.broadcast(p, 0) end
    self:broadcast_buffers()
  end)
end

-- Rank 1's buffers (batch norm's running statistics) into every rank's.
function DDP:broadcast_buffers()
  for _, b in ipairs(self.buffers) do
    if b:is_contiguous() then C.broadcast(b, 0)
    else b:copy_(C.broadcast(b:contiguous(), 0)) end
  end
end

-- Every parameter's gradient, contiguous; where a parameter has none,
-- zeros stand in (set as its .grad) and missing[i] says so.
local function gradients(params)
  local grads, missing = {}, {}
  for i, p in ipairs(params) do
    local g = p.grad
    if g == nil then
      missing[i] = true
      g = mg.zeros(p:shape(), p:dtype())
      p.grad = g
    elseif not g:is_contiguous() then
      g = g:contiguous()
      p.grad = g
    end
    grads[i] = g
  end
  return grads, missing
end

-- After the sums: meta holds, per parameter, how many ranks had its
-- gradient, then the extras. A gradient no rank had goes back to nil.
-- Returns the summed extras.
local function settle(params, missing, meta, nextra)
  local vals, n = meta:totable(), #params
  for i = 1, n do
    if missing[i] and vals[i] == 0 then params[i].grad = nil end
  end
  local out = {}
  for j = 1, nextra do out[j] = vals[n + j] end
  return out
end

local function new_meta(n, missing, extra, dtype)
  local meta = mg.zeros({n + #extra}, dtype)
  for i = 1, n do meta[i] = missing[i] and 0 or 1 end
  for j, v in ipairs(extra) do meta[n + j] = v end
  return meta
end

-- ddp:sync_gradients([weight [, extra]]): every parameter's gradient
-- becomes the sum over ranks of weight * gradient (weight defaults to
-- 1 / size: the mean; fit passes local rows / global rows, exact for a
-- mean loss with uneven shares). A parameter no rank has a gradient for
-- keeps none; one that has a gradient on some ranks gets the sum, zeros
-- standing in for the others. extra, a list of numbers, is summed over
-- ranks as it is, in the same messages, and returned (fit's loss, signal).
function DDP:sync_gradients(weight, extra)
  weight = weight or self._weight
  extra = extra or {}
  if self._overlap then return self:_finish_overlap(weight, extra) end
  -- one call per dtype (float32 parameters, float64 ones); the flags that
  -- say which ranks had a gradient and the extras ride, unweighted, at the
  -- end of the first group
  local grads, missing = gradients(self.params)
  local groups, order = {}, {}
  for _, g in ipairs(grads) do
    local dt = g:dtype()
    if not groups[dt] then
      groups[dt] = {}
      order[#order + 1] = dt
    end
    local list = groups[dt]
    list[#list + 1] = g
  end
  local first = order[1] or "float32"
  local meta = new_meta(#self.params, missing, extra, first)
  groups[first] = groups[first] or {}
  order[1] = first
  local list = groups[first]
  list[#list + 1] = meta
  for k, dt in ipairs(order) do
    C.allreduce_buckets(groups[dt], weight, self.bucket_bytes, k == 1 and 1 or 0)
  end
  return settle(self.params, missing, meta, #extra)
end

-- The gradients went (or go now) in the overlap's buckets; the presence
-- flags and extras follow in one small message.
function DDP:_finish_overlap(weight, extra)
  if weight ~= self._weight then
    error(fmt("ddp:sync_gradients: weight %s differs from the %s the backward's gradients " ..
              "were sent with; pass it to ddp:prepare(weight) before backward",
              tostring(weight), tostring(self._weight)), 3)
  end
  local grads, missing = gradients(self.params)
  local ok, err = pcall(C.overlap_finish, self._overlap, grads)
  self:prepare()
  if not ok then error(err, 0) end
  local meta = new_meta(#self.params, missing, extra, "float64")
  C.allreduce_buckets({meta}, 1, 8 * meta:numel(), 1)
  return settle(self.params, missing, meta, #extra)
end

-- ---- messages (moongrad.tune over ranks) ----------------------------------------
--
-- Strings from one rank to another, outside the collectives (a study on
-- rank 1 handing trials to the other ranks: moongrad.tune, workers = "mpi"):
--   dist.send(dest, s [, tag = 0])   s to rank dest; returns at once for a
--                                    short s, when dest receives a long one
--   dist.probe()                     --> source, tag of a waiting message, or
--                                    nil; never waits
--   dist.recv([source])              --> s, source, tag: the next message from
--                                    source (any rank when nil); waits
-- Messages from one rank with one tag arrive in the order they were sent.

local function check_rank(fn, what, r, optional)
  if optional and r == nil then return end
  if math.type(r) ~= "integer" or r < 1 or r > world_size then
    error(fmt("dist.%s: %s must be a rank in 1..%d%s, got %s", fn, what, world_size,
              optional and " or nil" or "", tostring(r)), 3)
  end
end

function dist.send(dest, s, tag)
  need("send")
  check_rank("send", "dest", dest)
  if type(s) ~= "string" then
    error(fmt("dist.send: the message must be a string, got %s", type(s)), 2)
  end
  C.send(dest - 1, s, tag or 0)
end

function dist.probe()
  need("probe")
  local source, tag = C.probe()
  if source == nil then return nil end
  return source + 1, tag
end

function dist.recv(source)
  need("recv")
  check_rank("recv", "source", source, true)
  local s, from, tag = C.recv(source and source - 1)
  return s, from + 1, tag
end

-- ---- groups of ranks -------------------------------------------------------------

local Group = {}
Group.__index = Group
Group.__name = "moongrad.dist.Group"

function Group.__tostring(g) return fmt("dist group (rank %d of %d)", g.rank, g.size) end

-- dist.split(color) --> group ({rank, size}: this rank's place in it), or
-- nil where color is nil. A collective: every rank of the current job
-- (the world, or the group of an enclosing with_group) calls it.
function dist.split(color)
  need("split")
  if color ~= nil and (math.type(color) ~= "integer" or color < 0) then
    error(fmt("dist.split: color must be an integer >= 0 or nil, got %s", tostring(color)), 2)
  end
  local c, r, s, lr, ls = C.split(color)
  if not c then return nil end
  return setmetatable({rank = r + 1, size = s, _c = c, _local = {lr, ls}}, Group)
end

-- dist.with_group(group, fn, ...) --> fn(...)'s results, run with group
-- as the whole job; what was current before (the world) comes back after,
-- also when fn raises.
function dist.with_group(group, fn, ...)
  need("with_group")
  if getmetatable(group) ~= Group then
    error(fmt("dist.with_group: expects a group from dist.split as argument #1, got %s",
              type(group)), 2)
  end
  if type(fn) ~= "function" then
    error(fmt("dist.with_group: expects a function as argument #2, got %s", type(fn)), 2)
  end
  local saved = {rank0, size, local_rank0, local_size, current}
  C.use(group._c)
  rank0, size, current = group.rank - 1, group.size, group
  local_rank0, local_size = group._local[1], group._local[2]
  local res = table.pack(pcall(fn, ...))
  rank0, size, local_rank0, local_size, current = table.unpack(saved, 1, 5)
  C.use(current and current._c)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

return dist
