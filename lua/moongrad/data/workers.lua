-- moongrad.data.workers: the DataLoader's worker processes (num_workers > 0).
--
-- Workers are forked from the training process, so each starts with the
-- loader as it is then (the dataset, the transform) shared copy-on-write.
-- By default an iteration (an epoch, or what is left of one) gets workers
-- of its own, forked when iter() begins: they end with it (its last batch,
-- a break out of the for loop, an error, or the collector finding the
-- iteration dropped), nothing a worker accumulates outlives an epoch and
-- the training process holds no workers between epochs (PyTorch's default,
-- persistent_workers = False). With persistent_workers = true the workers
-- stay from epoch to epoch (what the loader held when they were forked
-- stays theirs, as in PyTorch), which spares each epoch the forks and the
-- workers' first touches of their memory; an iteration left early or
-- failed still stops them, and the next iter() forks new ones.
--
-- Each epoch begins with its order and seed, sent to every worker; batch k
-- goes to worker (k - 1) % W + 1; at most prefetch_factor batches per
-- worker are asked for ahead of the one being taken, and batches are taken
-- in order. A worker makes a batch with the loader's own code (the same
-- streams of random numbers, one thread) and writes it into one of its
-- prefetch_factor shared-memory slots (runtime/lua_shm.c); the training
-- process copies the tensors out into tensors of its own and only then asks
-- that worker for another batch, which is what frees the slot.
--
-- On the socket (runtime/lua_proc.c) every message is a frame (string.pack
-- "<s4"). The training process sends "P" has_seed, seed, n (an epoch: its
-- seed, and its order of n positions in the epoch slot, none when n = 0)
-- and "K" k (make batch k); a worker answers each K with "B" slot, offset,
-- length (where the batch's encoding lies in the slot) or "E" and the
-- error message. The encoding is exact for what a batch holds besides
-- tensors (integers stay integers, floats keep every bit, strings any
-- byte): nil, booleans, numbers, strings and plain tables, with tensors as
-- (dtype, shape, offset) into the slot.
local mg = require "moongrad"

local type, pairs, ipairs, error, tostring, setmetatable = type, pairs, ipairs, error,
  tostring, setmetatable
local getmetatable, pcall, xpcall = getmetatable, pcall, xpcall
local math_type, min, fmt, concat = math.type, math.min, string.format, table.concat
local pack, unpack, spack, sunpack = table.pack, table.unpack, string.pack, string.unpack
local is_tensor = mg.is_tensor
local proc_send, proc_recv, proc_close = mg._proc_send, mg._proc_recv, mg._proc_close
local proc_kill, proc_wait, getpid = mg._proc_kill, mg._proc_wait, mg._getpid

local ALIGN = 64 -- where tensors start in a slot
local DTYPE_SIZE = {float32 = 4, float64 = 8, int64 = 8, uint8 = 1, float16 = 2, bfloat16 = 2,
                    int32 = 4, int16 = 2, int8 = 1, bool = 1}

local M = {}

-- ---- the encoding of a batch ---------------------------------------------------

-- Encodes values (a table.pack'ed list) into a string and a list of the
-- tensors it refers to, laid out from offset 0 at ALIGN boundaries; returns
-- the string, the tensors, their offsets and the bytes they take. k: the
-- batch number, for messages.
local function encode(values, k)
  local out, tensors, offsets, size = {}, {}, {}, 0
  local visiting = {}
  local function put(v, where)
    local t = type(v)
    if v == nil then out[#out + 1] = "n"
    elseif t == "boolean" then out[#out + 1] = v and "t" or "f"
    elseif t == "number" then
      out[#out + 1] = math_type(v) == "integer" and "i" .. spack("<j", v) or "d" .. spack("<n", v)
    elseif t == "string" then out[#out + 1] = "s" .. spack("<s4", v)
    elseif is_tensor(v) then
      if not v:is_contiguous() then v = v:contiguous() end
      local shape = v:shape()
      tensors[#tensors + 1], offsets[#tensors + 1] = v, size
      out[#out + 1] = "T" .. spack("<s1 B", v:dtype(), #shape)
      for d = 1, #shape do out[#out + 1] = spack("<j", shape[d]) end
      out[#out + 1] = spack("<j", size)
      local bytes = v:numel() * DTYPE_SIZE[v:dtype()]
      size = size + (bytes + ALIGN - 1) // ALIGN * ALIGN
    elseif t == "table" and getmetatable(v) == nil then
      if visiting[v] then error(fmt("%s contains itself", where), 0) end
      visiting[v] = true
      local count = 0
      for _ in pairs(v) do count = count + 1 end
      out[#out + 1] = "{" .. spack("<I4", count)
      for key, x in pairs(v) do
        if type(key) == "table" or is_tensor(key) then
          error(fmt("%s has a %s as a key", where, type(key)), 0)
        end
        put(key, where)
        put(x, fmt("%s[%s]", where, type(key) == "string" and fmt("%q", key) or tostring(key)))
      end
      visiting[v] = nil
    else
      error(fmt("%s is a %s", where, t == "table" and "table with a metatable" or t), 0)
    end
  end
  out[1] = spack("<I4", values.n)
  for j = 1, values.n do
    local ok, err = pcall(put, values[j], "value " .. j)
    if not ok then
      error(fmt("DataLoader: batch %d cannot leave a worker: %s (batches from workers hold " ..
                "tensors, numbers, strings, booleans and plain tables)", k, err), 0)
    end
  end
  return concat(out), tensors, offsets, size
end

-- The values encoded in s (tensors read out of slot), as a table.pack'ed list.
local function decode(s, slot)
  local pos = 1
  local function get()
    local tag = s:sub(pos, pos)
    pos = pos + 1
    if tag == "n" then return nil
    elseif tag == "t" then return true
    elseif tag == "f" then return false
    elseif tag == "i" or tag == "d" then
      local v
      v, pos = sunpack(tag == "i" and "<j" or "<n", s, pos)
      return v
    elseif tag == "s" then
      local v
      v, pos = sunpack("<s4", s, pos)
      return v
    elseif tag == "T" then
      local dtype, ndim
      dtype, ndim, pos = sunpack("<s1 B", s, pos)
      local shape = {}
      for d = 1, ndim do shape[d], pos = sunpack("<j", s, pos) end
      local off
      off, pos = sunpack("<j", s, pos)
      return slot:read_tensor(off, dtype, shape)
    elseif tag == "{" then
      local count, t = nil, {}
      count, pos = sunpack("<I4", s, pos)
      for _ = 1, count do
        local key = get()
        t[key] = get()
      end
      return t
    end
    error(fmt("DataLoader: a worker's batch is garbled (tag %q at byte %d)", tag, pos - 1), 0)
  end
  local n
  n, pos = sunpack("<I4", s, pos)
  local values = {n = n}
  for j = 1, n do values[j] = get() end
  return values
end

-- ---- the worker ---------------------------------------------------------------

local Pool = {}
Pool.__index = Pool

local live = setmetatable({}, {__mode = "k"}) -- this process's running pools

-- The next n bytes from p (a worker as the training process sees it, or
-- the training process as a worker sees it: {fd =, buf =}); nil at the end
-- of the stream.
local function read_exact(p, n)
  while #p.buf < n do
    local data = proc_recv(p.fd)
    if not data or data == "" then return nil end
    p.buf = p.buf .. data
  end
  local s = p.buf:sub(1, n)
  p.buf = p.buf:sub(n + 1)
  return s
end

-- The next frame (string.pack "<s4") from p; nil at the end of the stream.
local function read_frame(p)
  local head = read_exact(p, 4)
  if not head then return nil end
  return read_exact(p, (sunpack("<I4", head)))
end

local function message_of(e) return tostring(e) end

-- Makes batch k into slot; returns the frame that says where it is.
local function make(loader, k, slot, slot_index)
  local values = pack(loader:_produce(k))
  local header, tensors, offsets, size = encode(values, k)
  slot:reserve(size + #header)
  for i, t in ipairs(tensors) do slot:write(offsets[i], t) end
  slot:write(size, header)
  return "B" .. spack("<I4 j j", slot_index, size, #header)
end

-- Takes an epoch message: the loader's order and seed as the training
-- process drew them.
local function begin_epoch(loader, frame, epoch_slot)
  local has_seed, seed, n = sunpack("<B j j", frame, 2)
  loader._seed = has_seed == 1 and seed or nil
  if n > 0 then
    epoch_slot:attach(n * 8)
    loader._perm = epoch_slot:read_tensor(0, "int64", {n})
  else
    loader._perm = nil
  end
end

-- The life of worker w in the forked process: epochs and batches on
-- request until the training process closes the socket; never returns.
local function worker_main(loader, pool, w, fd)
  local ok, err = pcall(function()
    -- what belongs to the training process or to other workers is let go
    for other in pairs(live) do
      if other ~= pool then other:_forget() end
    end
    for v = 1, pool.nw do
      if v ~= w then
        for _, s in ipairs(pool.slots[v]) do s:close() end
      end
    end
    for _, p in pairs(pool.procs) do proc_close(p.fd) end
    mg.set_num_threads(1)
    local parent, slots, jobs = {fd = fd, buf = ""}, pool.slots[w], 0
    while true do
      local msg = read_frame(parent)
      if not msg then return end
      if msg:sub(1, 1) == "P" then
        begin_epoch(loader, msg, pool.epoch_slot)
      else
        local k = sunpack("<j", msg, 2)
        local index = jobs % pool.pf + 1
        jobs = jobs + 1
        local made, frame = xpcall(make, message_of, loader, k, slots[index], index)
        if not made then frame = "E" .. frame end
        if not proc_send(fd, spack("<s4", frame)) then return end
      end
    end
  end)
  -- the training process raises this at the batch it waits for
  if not ok then proc_send(fd, spack("<s4", "E" .. tostring(err))) end
  mg._proc_exit(ok and 0 or 3)
end

-- ---- the training process's side ---------------------------------------------

-- Closes what was made so far and raises.
local function give_up(pool, what, err)
  pool:close()
  error(fmt("DataLoader: cannot %s: %s", what, tostring(err)), 0)
end

-- M.start(loader, nw, persistent) --> a pool of nw workers forked now, idle
-- until pool:begin starts an epoch. A pool that is not persistent closes
-- after its first epoch's last batch.
function M.start(loader, nw, persistent)
  local pf = loader.prefetch_factor
  local pool = setmetatable({nw = nw, pf = pf, procs = {}, slots = {}, owner = getpid(),
                             persistent = persistent, running = false}, Pool)
  live[pool] = true
  -- the slots exist before the forks, so each worker inherits its own
  local slot, err = mg._shm_slot()
  if not slot then give_up(pool, "make shared memory for the workers", err) end
  pool.epoch_slot = slot
  for w = 1, nw do
    local list = {}
    for j = 1, pf do
      list[j], err = mg._shm_slot()
      if not list[j] then give_up(pool, "make shared memory for the workers", err) end
    end
    pool.slots[w] = list
  end
  for w = 1, nw do
    local pid, fd = mg._proc_spawn{quiet_signals = true}
    if not pid then give_up(pool, "start a worker", fd) end
    if pid == 0 then worker_main(loader, pool, w, fd) end
    pool.procs[w] = {pid = pid, fd = fd, buf = ""}
  end
  return pool
end

-- pool:begin(loader, first, last): an epoch of the loader (its order and
-- seed as they are now), of which the pool makes batches first..last.
function Pool:begin(loader, first, last)
  local perm, seed = loader._perm, loader._seed
  local n = perm and perm:numel() or 0
  if n > 0 then
    -- every worker has read the last epoch's order: all its batches were taken
    self.epoch_slot:reserve(n * 8)
    self.epoch_slot:write(0, perm:contiguous())
  end
  local msg = spack("<s4", "P" .. spack("<B j j", seed and 1 or 0, seed or 0, n))
  for _, p in ipairs(self.procs) do proc_send(p.fd, msg) end
  self.next_request, self.next_take, self.last, self.running = first, first, last, true
  self:_ask()
end

-- Asks for batches until prefetch_factor per worker are on their way.
function Pool:_ask()
  local limit = min(self.last, self.next_take + self.pf * self.nw - 1)
  while self.next_request <= limit do
    local k = self.next_request
    local p = self.procs[(k - 1) % self.nw + 1]
    -- a worker that died is found out when its batch is taken
    proc_send(p.fd, spack("<s4", "K" .. spack("<j", k)))
    self.next_request = k + 1
  end
end

-- How worker p ended ("exited with code 3", "was killed by signal 9
-- (Killed)"); reaps it.
local function ending(p)
  local how, code, name = proc_wait(p.pid, true)
  p.reaped = true
  if how == "exit" then return fmt("exited with code %d", code) end
  if how == "signal" then return fmt("was killed by signal %d (%s)", code, tostring(name)) end
  return "ended (" .. tostring(code) .. ")"
end

-- pool:take(k) --> batch k's values (k must be the next one). After the
-- epoch's last batch the pool is idle (persistent) or closed; on any error
-- it closes before raising.
function Pool:take(k)
  if self.closed then
    error("DataLoader: this iteration's workers have stopped after an error", 0)
  end
  if k ~= self.next_take then -- the loader's own bookkeeping went wrong
    error(fmt("DataLoader: batch %d asked of the workers, %d expected", k, self.next_take), 0)
  end
  local w = (k - 1) % self.nw + 1
  local p = self.procs[w]
  local frame = read_frame(p)
  local problem
  if not frame then
    problem = fmt("DataLoader: worker %d (pid %d) %s while making batch %d", w, p.pid,
                  ending(p), k)
  elseif frame:sub(1, 1) == "E" then
    problem = fmt("DataLoader: worker %d, batch %d: %s", w, k, frame:sub(2))
  end
  local values
  if not problem then
    local ok, res = pcall(function()
      local index, off, len = sunpack("<I4 j j", frame, 2)
      local slot = self.slots[w][index]
      if not slot then error(fmt("DataLoader: worker %d answered with slot %d", w, index), 0) end
      slot:attach(off + len)
      return decode(slot:read_string(off, len), slot)
    end)
    if ok then values = res else problem = tostring(res) end
  end
  if problem then
    self:close()
    error(problem, 0)
  end
  self.next_take = k + 1
  if k < self.last then
    self:_ask()
  else
    self.running = false
    if not self.persistent then self:close() end
  end
  return unpack(values, 1, values.n)
end

-- pool:close(): the workers are stopped (SIGKILL: they hold nothing that
-- needs an orderly end) and reaped, and the shared memory let go. Safe to
-- call again; in a process forked from the owner it only lets go.
function Pool:close()
  if self.closed then return end
  self.closed, self.running = true, false
  live[self] = nil
  local mine = getpid() == self.owner
  for _, p in pairs(self.procs) do
    proc_close(p.fd)
    if mine and not p.reaped then
      proc_kill(p.pid, "KILL")
      proc_wait(p.pid, true)
      p.reaped = true
    end
  end
  for _, list in pairs(self.slots) do
    for _, s in ipairs(list) do s:close() end
  end
  if self.epoch_slot then self.epoch_slot:close() end
end

-- In a worker forked while another pool runs: that pool is the training
-- process's, so its descriptors are closed here and its workers left alone.
function Pool:_forget()
  self.owner = -1
  self:close()
end

-- The for loop's closing value: an epoch left before its end (a break, an
-- error in the loop) stops the workers, persistent ones too (what they
-- were asked to make is not wanted any more).
function Pool:__close()
  if self.running then self:close() end
end
Pool.__gc = Pool.close

M.encode, M.decode = encode, decode
return M
