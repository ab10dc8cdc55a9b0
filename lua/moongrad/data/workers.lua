-- moongrad.data.workers: the DataLoader's worker processes (num_workers > 0).
--
-- One iteration (an epoch, or what is left of one) gets its own workers,
-- forked from the training process when iter() begins, so each starts with
-- the loader as it is then: the dataset, this epoch's order and seed. They
-- end with the iteration (its last batch, a break out of the for loop, an
-- error, or the collector finding the iteration abandoned), so nothing a
-- worker accumulates outlives an epoch and the training process holds no
-- workers between epochs (PyTorch's default, persistent_workers = False).
--
-- Batch k goes to worker (k - 1) % W + 1; at most prefetch_factor batches
-- per worker are asked for ahead of the one being taken, and batches are
-- taken in order. A worker makes a batch with the loader's own code (the
-- same streams of random numbers, one thread) and writes it into one of its
-- prefetch_factor shared-memory slots (runtime/lua_shm.c); the training
-- process copies the tensors out into tensors of its own and only then asks
-- that worker for another batch, which is what frees the slot.
--
-- On the socket (runtime/lua_proc.c) the training process sends a batch
-- number (string.pack "<j") and a worker answers each with one frame
-- (string.pack "<s4"): "B" slot, offset, length (where the batch's encoding
-- lies in the slot) or "E" and the error message. The encoding is exact for
-- what a batch holds besides tensors (integers stay integers, floats keep
-- every bit, strings any byte): nil, booleans, numbers, strings and plain
-- tables, with tensors as (dtype, shape, offset) into the slot.
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
local DTYPE_SIZE = {float32 = 4, float64 = 8, int64 = 8, uint8 = 1}

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

-- The life of worker w in the forked process: batches on request until the
-- training process closes the socket; never returns.
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
      local req = read_exact(parent, 8)
      if not req then return end
      local k = sunpack("<j", req)
      local index = jobs % pool.pf + 1
      jobs = jobs + 1
      local made, frame = xpcall(make, message_of, loader, k, slots[index], index)
      if not made then frame = "E" .. frame end
      if not proc_send(fd, spack("<s4", frame)) then return end
    end
  end)
  -- the training process raises this at the batch it waits for
  if not ok then proc_send(fd, spack("<s4", "E" .. tostring(err))) end
  mg._proc_exit(ok and 0 or 3)
end

-- ---- the training process's side ---------------------------------------------

-- M.start(loader, first, last) --> a pool making batches first..last of the
-- loader's current epoch (loader:_produce(k)).
function M.start(loader, first, last)
  local nw = min(loader.num_workers, last - first + 1)
  local pf = loader.prefetch_factor
  local pool = setmetatable({nw = nw, pf = pf, procs = {}, slots = {}, owner = getpid(),
                             next_request = first, next_take = first, last = last},
                            Pool)
  live[pool] = true
  -- the slots exist before the forks, so each worker inherits its own
  for w = 1, nw do
    local list = {}
    for j = 1, pf do
      local s, err = mg._shm_slot()
      if not s then
        pool:close()
        error("DataLoader: cannot make shared memory for the workers: " .. err, 0)
      end
      list[j] = s
    end
    pool.slots[w] = list
  end
  for w = 1, nw do
    local pid, fd = mg._proc_spawn{quiet_signals = true}
    if not pid then
      pool:close()
      error("DataLoader: cannot start a worker: " .. tostring(fd), 0)
    end
    if pid == 0 then worker_main(loader, pool, w, fd) end
    pool.procs[w] = {pid = pid, fd = fd, buf = ""}
  end
  pool:_ask()
  return pool
end

-- Asks for batches until prefetch_factor per worker are on their way.
function Pool:_ask()
  local limit = min(self.last, self.next_take + self.pf * self.nw - 1)
  while self.next_request <= limit do
    local k = self.next_request
    local p = self.procs[(k - 1) % self.nw + 1]
    -- a worker that died is found out when its batch is taken
    proc_send(p.fd, spack("<j", k))
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

-- pool:take(k) --> batch k's values (k must be the next one). The pool
-- closes after the last batch, and on any error before raising it.
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
  if k == self.last then self:close() else self:_ask() end
  return unpack(values, 1, values.n)
end

-- pool:close(): the workers are stopped (SIGKILL: they hold nothing that
-- needs an orderly end) and reaped, and the shared memory let go. Safe to
-- call again; in a process forked from the owner it only lets go.
function Pool:close()
  if self.closed then return end
  self.closed = true
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
end

-- In a worker forked while another pool runs: that pool is the training
-- process's, so its descriptors are closed here and its workers left alone.
function Pool:_forget()
  self.owner = -1
  self:close()
end

Pool.__close = Pool.close
Pool.__gc = Pool.close

-- The pids of the pool's workers (specs).
function Pool:pids()
  local list = {}
  for w, p in ipairs(self.procs) do list[w] = p.pid end
  return list
end

M.encode, M.decode = encode, decode
return M
