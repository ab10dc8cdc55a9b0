-- moongrad.data: the IDX and CSV readers on tiny files this spec writes
-- (plain and gzipped), corrupt files, TensorDataset, Subset, random_split,
-- the DataLoader (batching, shuffling, collation, transforms, mid-epoch
-- resume) and Fashion-MNIST from the Debian package.
local mg = require "moongrad"
local data = require "moongrad.data"
local BUILD = require "support.build"
local run_merged = require("support.shell").run_merged

-- ---- helpers ---------------------------------------------------------------------

local tmpfiles = {}

local function tmp_path(suffix)
  local p = os.tmpname()
  tmpfiles[#tmpfiles + 1] = p
  if suffix then
    p = p .. suffix
    tmpfiles[#tmpfiles + 1] = p
  end
  return p
end

local function write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- A gzipped copy of the file at path, through the gzip command.
local function gzip_of(path)
  local gz = tmp_path(".gz")
  assert(os.execute(("gzip -c '%s' > '%s'"):format(path, gz)))
  return gz
end

local IDX_FORMAT = {[0x08] = "B", [0x09] = "b", [0x0B] = ">i2", [0x0C] = ">i4",
                    [0x0D] = ">f", [0x0E] = ">d"}

-- The bytes of an IDX file of type code with dims and row-major values.
local function idx_bytes(code, dims, values)
  local parts = {string.char(0, 0, code, #dims)}
  for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
  for _, v in ipairs(values) do parts[#parts + 1] = string.pack(IDX_FORMAT[code], v) end
  return table.concat(parts)
end

local function flat(t)
  local out = {}
  local function walk(x)
    if type(x) == "table" then for i = 1, #x do walk(x[i]) end else out[#out + 1] = x end
  end
  walk(mg.is_tensor(t) and t:totable() or t)
  return out
end

local error_of = require("support.check").err_of

local function plain(s) return (s:gsub("%p", "%%%0")) end

teardown(function()
  for _, p in ipairs(tmpfiles) do os.remove(p) end
end)

-- ---- IDX -------------------------------------------------------------------------

describe("read_idx", function()
  local cases = {
    {code = 0x08, name = "ubyte", dims = {2, 3, 2}, dtype = "float32",
     values = {0, 1, 2, 127, 128, 255, 3, 4, 5, 6, 7, 250}},
    {code = 0x09, name = "byte", dims = {4}, dtype = "float32", values = {-128, -1, 0, 127}},
    {code = 0x0B, name = "short", dims = {2, 2}, dtype = "float32", values = {-32768, -2, 300, 32767}},
    {code = 0x0C, name = "int", dims = {3}, dtype = "int64", values = {-2147483648, 70000, 2147483647}},
    {code = 0x0D, name = "float", dims = {1, 3}, dtype = "float32", values = {0.5, -1.25, 2.0 ^ 34}},
    {code = 0x0E, name = "double", dims = {2}, dtype = "float64", values = {0.1, -1e300}},
  }
  for _, c in ipairs(cases) do
    for _, gz in ipairs({false, true}) do
      it(("reads %s data from a %s file with the header's dims as %s"):format(
           c.name, gz and "gzipped" or "plain", c.dtype), function()
        local path = write_file(tmp_path(), idx_bytes(c.code, c.dims, c.values))
        if gz then path = gzip_of(path) end
        local t = data.read_idx(path)
        assert.same(c.dims, t:shape())
        assert.equal(c.dtype, t:dtype())
        assert.same(c.values, flat(t))
      end)
    end
  end

  it("converts to the dtype asked for and scales the values", function()
    local path = write_file(tmp_path(), idx_bytes(0x08, {3}, {0, 51, 255}))
    local t = data.read_idx(path, {dtype = "int64"})
    assert.equal("int64", t:dtype())
    assert.same({0, 51, 255}, t:totable())
    local s = data.read_idx(path, {dtype = "float64", scale = 1 / 255})
    assert.equal("float64", s:dtype())
    assert.same({0, 0.2, 1}, s:totable())
    assert.matches("needs a float dtype", error_of(data.read_idx, path, {dtype = "int64", scale = 2}))
  end)

  it("reads the gzipped and the plain file to the same tensor", function()
    local values = {}
    for i = 1, 5 * 7 * 3 do values[i] = (i * 37) % 256 end
    local path = write_file(tmp_path(), idx_bytes(0x08, {5, 7, 3}, values))
    assert.same(data.read_idx(path):totable(), data.read_idx(gzip_of(path)):totable())
  end)

  it("names the file when it cannot be opened", function()
    local err = error_of(data.read_idx, "/nonexistent/x-idx1-ubyte.gz")
    assert.matches("read_idx: /nonexistent/x%-idx1%-ubyte%.gz: cannot open: No such file or directory", err)
  end)

  it("rejects a bad magic number, naming the file", function()
    local path = write_file(tmp_path(), "\1\2\3\4" .. string.rep("\0", 16))
    local err = error_of(data.read_idx, path)
    assert.matches("read_idx: " .. plain(path) .. ": bad magic number 0x01020304", err)
    local bad_type = write_file(tmp_path(), string.char(0, 0, 0x0A, 1) .. string.pack(">I4", 1) .. "x")
    assert.matches(plain(bad_type) .. ": bad magic number 0x00000a01", error_of(data.read_idx, bad_type))
  end)

  it("rejects a file with no dimensions or a header cut short", function()
    local none = write_file(tmp_path(), string.char(0, 0, 8, 0))
    assert.matches(plain(none) .. ": 0 dimensions", error_of(data.read_idx, none))
    local short = write_file(tmp_path(), string.char(0, 0, 8, 3) .. string.pack(">I4", 2))
    assert.matches(plain(short) .. ": truncated header", error_of(data.read_idx, short))
    local empty = write_file(tmp_path(), "")
    assert.matches(plain(empty) .. ": truncated header", error_of(data.read_idx, empty))
  end)

  it("reports truncated data with the expected and actual byte counts", function()
    local bytes = idx_bytes(0x0B, {10, 10}, {})  -- dims promise 200 bytes
    local path = write_file(tmp_path(), bytes .. string.rep("\1", 150))
    assert.matches("read_idx: " .. plain(path) .. ": truncated: expected 200 bytes of data, got 150",
                   error_of(data.read_idx, path))
    assert.matches("truncated: expected 200 bytes of data, got 150", error_of(data.read_idx, gzip_of(path)))
  end)

  it("reports data longer than the dims say (wrong dims)", function()
    local path = write_file(tmp_path(), idx_bytes(0x08, {2, 2}, {1, 2, 3, 4, 5, 6}))
    assert.matches(plain(path) .. ": 2 trailing bytes after the 4 bytes of data that dims %[2,2%] describe",
                   error_of(data.read_idx, path))
    local long = write_file(tmp_path(), idx_bytes(0x08, {2}, {1, 2}) .. ("\0"):rep(1e6))
    assert.matches(plain(long) .. ": at least 65536 trailing bytes after the 2 bytes of data",
                   error_of(data.read_idx, long))  -- not inflated to the end
  end)

  it("reports a gzip stream cut short or corrupted, naming the file", function()
    local values = {}
    for i = 1, 4000 do values[i] = (i * 7919) % 256 end
    local gz = gzip_of(write_file(tmp_path(), idx_bytes(0x08, {4000}, values)))
    local bytes = read_file(gz)
    local cut = write_file(tmp_path(".gz"), bytes:sub(1, #bytes // 2))
    assert.matches("read_idx: " .. plain(cut) .. ": truncated", error_of(data.read_idx, cut))
    local flipped = bytes:sub(1, #bytes - 6) .. string.char((bytes:byte(#bytes - 5) + 1) % 256) .. bytes:sub(#bytes - 4)
    local bad = write_file(tmp_path(".gz"), flipped)  -- a wrong CRC
    assert.matches("read_idx: " .. plain(bad) .. ": corrupt gzip data %(incorrect data check%)",
                   error_of(data.read_idx, bad))
  end)

  it("refuses a gzip file whose CRC and length trailer is cut or missing", function()
    local values = {}
    for i = 1, 4000 do values[i] = (i * 7919) % 256 end
    local bytes = read_file(gzip_of(write_file(tmp_path(), idx_bytes(0x08, {4000}, values))))
    for cut = 1, 8 do  -- the trailer is the last 8 bytes: CRC-32, then the length
      local path = write_file(tmp_path(".gz"), bytes:sub(1, #bytes - cut))
      assert.matches("read_idx: " .. plain(path) .. ": truncated", error_of(data.read_idx, path))
    end
    local n = #bytes  -- the length field off by one: the data is right, the file is not
    local wrong = write_file(tmp_path(".gz"), bytes:sub(1, n - 4) .. string.pack("<I4", 4000 + 8 + 1))
    assert.matches("read_idx: " .. plain(wrong) .. ": corrupt gzip data %(incorrect length check%)",
                   error_of(data.read_idx, wrong))
  end)

  it("rejects unknown options and dtypes", function()
    local path = write_file(tmp_path(), idx_bytes(0x08, {1}, {1}))
    assert.matches("read_idx: unknown option 'sclae'", error_of(data.read_idx, path, {sclae = 2}))
    assert.matches("read_idx: unknown dtype 'complex64'", error_of(data.read_idx, path, {dtype = "complex64"}))
    assert.matches("read_idx: dtype float16 is not read directly %(float32, float64, int64 or uint8",
                   error_of(data.read_idx, path, {dtype = "float16"}))
  end)
end)

-- ---- CSV -------------------------------------------------------------------------

describe("read_csv", function()
  it("reads a file with a header into a tensor and the column names", function()
    local path = write_file(tmp_path(), "x,y,\"label, quoted\"\n1,2.5,3\n-4, 5e-1 ,6\n")
    local t, names = data.read_csv(path)
    assert.same({"x", "y", "label, quoted"}, names)
    assert.equal("float32", t:dtype())
    assert.same({{1, 2.5, 3}, {-4, 0.5, 6}}, t:totable())
  end)

  it("reads a file without a header (detected, or said with header = false)", function()
    local path = write_file(tmp_path(), "1,2\n3,4\n")
    local t, names = data.read_csv(path)
    assert.is_nil(names)
    assert.same({{1, 2}, {3, 4}}, t:totable())
    local u, unames = data.read_csv(path, {header = false})
    assert.is_nil(unames)
    assert.same({{1, 2}, {3, 4}}, u:totable())
  end)

  it("takes a numeric first line as the header when told to", function()
    local path = write_file(tmp_path(), "1,2\n3,4\n")
    local t, names = data.read_csv(path, {header = true})
    assert.same({"1", "2"}, names)
    assert.same({{3, 4}}, t:totable())
  end)

  it("uses another delimiter, float64, CRLF line ends and blank lines", function()
    local path = write_file(tmp_path(), "a;b\r\n\r\n0.1;2\r\n3;4\r\n\r\n")
    local t, names = data.read_csv(path, {delimiter = ";", dtype = "float64"})
    assert.same({"a", "b"}, names)
    assert.equal("float64", t:dtype())
    assert.same({{0.1, 2}, {3, 4}}, t:totable())
  end)

  it("reads a gzipped file", function()
    local path = write_file(tmp_path(), "a,b\n1,2\n")
    local t = data.read_csv(gzip_of(path))
    assert.same({{1, 2}}, t:totable())
  end)

  it("reports a gzipped file cut short", function()
    local rows = {"a,b"}
    for i = 1, 500 do rows[#rows + 1] = i .. "," .. i * i end
    local bytes = read_file(gzip_of(write_file(tmp_path(), table.concat(rows, "\n"))))
    local cut = write_file(tmp_path(".gz"), bytes:sub(1, #bytes - 8))  -- no trailer
    assert.matches("read_csv: " .. plain(cut) .. ": truncated", error_of(data.read_csv, cut))
  end)

  it("gives a header-only file zero rows", function()
    local t, names = data.read_csv(write_file(tmp_path(), "a,b,c\n"))
    assert.same({"a", "b", "c"}, names)
    assert.same({0, 3}, t:shape())
  end)

  it("names the file, line and column of a cell that is not a number", function()
    local path = write_file(tmp_path(), "a,b\n1,2\n3,abc\n")
    assert.matches("read_csv: " .. plain(path) .. ":3: column 2 %(\"b\"%): \"abc\" is not a number",
                   error_of(data.read_csv, path))
    local nohead = write_file(tmp_path(), "1,2\n\n3,\n")
    assert.matches(plain(nohead) .. ":3: column 2: \"\" is not a number",
                   error_of(data.read_csv, nohead, {header = false}))
    local first = write_file(tmp_path(), "1,x\n")
    assert.matches(plain(first) .. ":1: column 2: \"x\" is not a number",
                   error_of(data.read_csv, first, {header = false}))
  end)

  it("names the line of a row with the wrong number of cells", function()
    local path = write_file(tmp_path(), "a,b\n1,2\n3,4,5\n")
    assert.matches(plain(path) .. ":3: 3 cells, expected 2", error_of(data.read_csv, path))
  end)

  it("reads CR-only (old Mac) line ends as line ends, alone or mixed with LF and CRLF", function()
    local t, names = data.read_csv(write_file(tmp_path(), "a,b\r1,2\r3,4\r"))
    assert.same({"a", "b"}, names)
    assert.same({{1, 2}, {3, 4}}, t:totable())
    local mixed = data.read_csv(write_file(tmp_path(), "1,2\r\n3,4\r5,6\n\r7,8"))
    assert.same({{1, 2}, {3, 4}, {5, 6}, {7, 8}}, mixed:totable())
    local bad = write_file(tmp_path(), "1,2\r3,4\r\n\r5,x\r")  -- lines 1, 2 (CRLF), 3 (blank) and 4
    assert.matches(plain(bad) .. ":4: column 2: \"x\" is not a number",
                   error_of(data.read_csv, bad, {header = false}))
    -- The reader's first 65535 bytes end in a CR: alone, then before a LF.
    local cr = write_file(tmp_path(), ("12,3\r"):rep(20000) .. "x,1\r")
    assert.matches(plain(cr) .. ":20001: column 1: \"x\" is not a number",
                   error_of(data.read_csv, cr, {header = false}))
    local crlf = write_file(tmp_path(), ("1,2345\r\n"):rep(20000) .. "x,1\r\n")
    assert.matches(plain(crlf) .. ":20001: column 1: \"x\" is not a number",
                   error_of(data.read_csv, crlf, {header = false}))
    assert.same({20000, 2}, data.read_csv(gzip_of(write_file(tmp_path(), ("12,3\r"):rep(20000)))):shape())
  end)

  it("refuses a NUL byte in a cell, naming the file, line and column", function()
    local path = write_file(tmp_path(), "a,b\n1,2\n3,4\0009\n")
    assert.matches("read_csv: " .. plain(path) .. ":3: column 2 %(\"b\"%): a NUL byte",
                   error_of(data.read_csv, path))
    local head = write_file(tmp_path(), "a,b\0c\n1,2\n")
    assert.matches(plain(head) .. ":1: column 2: a NUL byte", error_of(data.read_csv, head))
    local quoted = write_file(tmp_path(), "1,\"2\0\"\n")
    assert.matches(plain(quoted) .. ":1: column 2: a NUL byte", error_of(data.read_csv, quoted))
    local past = write_file(tmp_path(), "a,b\n1,2,\0\n")  -- a column the header does not name
    assert.matches(plain(past) .. ":2: column 3: a NUL byte", error_of(data.read_csv, past))
    local utf16 = write_file(tmp_path(), "\255\254a\0,\0b\0\n\0")
    assert.matches(plain(utf16) .. ": .*UTF%-16", error_of(data.read_csv, utf16))
  end)

  it("skips a UTF-8 byte order mark at the start of the file", function()
    local t, names = data.read_csv(write_file(tmp_path(), "\239\187\1911,2\n3,4\n"))
    assert.is_nil(names)
    assert.same({{1, 2}, {3, 4}}, t:totable())
    local u, unames = data.read_csv(gzip_of(write_file(tmp_path(), "\239\187\191x,y\n5,6\n")))
    assert.same({"x", "y"}, unames)
    assert.same({{5, 6}}, u:totable())
  end)

  it("reads decimal numbers, inf and nan, with blanks around them", function()
    local cells = {"1", "-2.5", "+.5", "5.", "1e3", "2E-1", "-0", " 12 ", "\t7\t", "\"8\"",
                   "inf", "-Infinity", "+INF"}
    local expected = {1, -2.5, 0.5, 5, 1000, 0.2, 0, 12, 7, 8, math.huge, -math.huge, math.huge}
    local t = data.read_csv(write_file(tmp_path(), table.concat(cells, ",") .. "\n"),
                            {header = false, dtype = "float64"})
    assert.same({expected}, t:totable())
    local n = data.read_csv(write_file(tmp_path(), "nan,NaN,-nan\n"), {header = false}):totable()[1]
    for i = 1, 3 do assert.is_true(n[i] ~= n[i]) end
  end)

  it("refuses what strtod reads but is not a decimal number, naming the file, line, column and text", function()
    for _, cell in ipairs {"0x10", "-0X1p3", "1e", "1e+", ".", "-", "+-1", "1 2", "1.2.3",
                           "nan(1)", "1_000", "\v1", "1\f", "infinit"} do
      local path = write_file(tmp_path(), "1,2\n3," .. cell .. "\n")
      local shown = cell:gsub("[\v\f]", {["\v"] = "\\x0b", ["\f"] = "\\x0c"})
      assert.matches("read_csv: " .. plain(path) .. ":2: column 2: \"" .. plain(shown) .. "\" is not a number",
                     error_of(data.read_csv, path, {header = false}))
    end
    local hex = write_file(tmp_path(), "a\n0x10\n")
    assert.matches("hexadecimal", error_of(data.read_csv, hex))
  end)

  it("refuses text after a closing quote instead of dropping it", function()
    local path = write_file(tmp_path(), "a,b\n\"1\"5,2\n")
    assert.matches("read_csv: " .. plain(path) .. ":2: column 1 %(\"a\"%): text after the closing quote",
                   error_of(data.read_csv, path))
    local past = write_file(tmp_path(), "a\n1,\"2\"x\n")
    assert.matches(plain(past) .. ":2: column 2: text after the closing quote", error_of(data.read_csv, past))
    local ok = data.read_csv(write_file(tmp_path(), "\"1\" ,2\n"))
    assert.same({{1, 2}}, ok:totable())
  end)

  it("names a file it cannot open and rejects bad options", function()
    collectgarbage()
    collectgarbage()
    local before = mg.memory().tensor_bytes
    assert.matches("read_csv: /nonexistent/h.csv: cannot open: No such file or directory",
                   error_of(data.read_csv, "/nonexistent/h.csv"))
    assert.matches("read_idx: /nonexistent/h.gz: cannot open: No such file or directory",
                   error_of(data.read_idx, "/nonexistent/h.gz"))
    -- the readers' charge for zlib's buffers is given back exactly once
    assert.equal(before, mg.memory().tensor_bytes)
    local path = write_file(tmp_path(), "1\n")
    assert.matches("one character", error_of(data.read_csv, path, {delimiter = ";;"}))
    assert.matches("float32", error_of(data.read_csv, path, {dtype = "int64"}))
    assert.matches("unknown option 'sep'", error_of(data.read_csv, path, {sep = ","}))
  end)
end)

-- ---- the readers under a memory limit ---------------------------------------------

-- Runs fn under a memory limit of `extra` bytes above what tensors hold now.
local function under_limit(extra, fn, ...)
  mg.set_memory_limit(mg.memory().tensor_bytes + extra)
  local ok, err = pcall(fn, ...)
  mg.set_memory_limit(0)
  return ok, err
end

-- n gzip members of the same `text` one after another: zlib reads them as
-- one stream, so a few KiB inflate to n times the text.
local function gzip_bomb(text, n)
  return write_file(tmp_path(".gz"), read_file(gzip_of(write_file(tmp_path(), text))):rep(n))
end

describe("the readers under a memory limit", function()
  it("charge their buffers to it and name the file when it is reached", function()
    local rows = {}
    for i = 1, 20000 do rows[i] = i .. "," .. -i .. ",0.5" end
    local csv = write_file(tmp_path(), table.concat(rows, "\n"))
    -- garbage first: hitting the limit collects it (the allocator reclaims)
    collectgarbage()
    collectgarbage()
    local before = mg.memory().tensor_bytes
    local ok, err = under_limit(256 * 1024, data.read_csv, csv)
    assert.is_false(ok)
    assert.matches("read_csv: not enough memory reading " .. plain(csv) .. ": ", err)
    assert.matches("memory limit", err)
    assert.equal(before, mg.memory().tensor_bytes)  -- nothing left charged
    local t = data.read_csv(csv)
    assert.same({20000, 3}, t:shape())
    t = nil  -- luacheck: ignore
    collectgarbage()
    assert.equal(before, mg.memory().tensor_bytes)  -- only the tensor was left charged
  end)

  it("name the file when the tensor itself does not fit", function()
    local idx = write_file(tmp_path(), idx_bytes(0x08, {1000, 1000}, {}))  -- 4 MB as float32
    local ok, err = under_limit(1024 * 1024, data.read_idx, idx)
    assert.is_false(ok)
    assert.matches("read_idx: not enough memory reading " .. plain(idx) .. ": ", err)
    local csv = write_file(tmp_path(), ("1,2,3,4\n"):rep(40000))  -- 640 KB as float32
    ok, err = under_limit(512 * 1024, data.read_csv, csv)
    assert.is_false(ok)
    assert.matches("read_csv: not enough memory reading " .. plain(csv) .. ": ", err)
  end)

  it("stop a gzip bomb at the limit instead of using the machine's memory", function()
    -- 64 MiB of CSV each (many short lines; one long line) from about 64 KiB
    -- of gzip; a 16 MiB limit. Peak RSS is measured in a child process.
    local lines = gzip_bomb((("0,"):rep(63) .. "0\n"):rep(8192), 64)
    local one_line = gzip_bomb(("0,"):rep(512 * 1024), 64)
    local script = write_file(tmp_path(".lua"), [[
      local mg, data = require "moongrad", require "moongrad.data"
      local function kib(field)
        for line in io.lines("/proc/self/status") do
          local v = line:match("^" .. field .. ":%s+(%d+)")
          if v then return tonumber(v) end
        end
      end
      mg.set_memory_limit(16 * 2^20)
      local f = io.open("/proc/self/clear_refs", "w")  -- VmHWM := VmRSS, where the kernel lets us
      if f then f:write("5") f:close() end
      local base = kib("VmRSS")
      for _, path in ipairs(arg) do print((select(2, pcall(data.read_csv, path)))) end
      print("growth_kib=" .. kib("VmHWM") - base)
    ]])
    local out, code = run_merged('ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0:thread_local_quarantine_size_kb=0" '
                                 .. ("timeout 120 %s/moongrad %s %s %s"):format(BUILD, script, lines, one_line))
    assert.equal(0, code, out)
    for _, path in ipairs {lines, one_line} do
      assert.matches("read_csv: not enough memory reading " .. plain(path) .. ": ", out)
    end
    local growth = tonumber(out:match("growth_kib=(%-?%d+)"))
    assert.is_not_nil(growth, out)
    -- the limit, plus zlib's buffers and allocator slack; unbounded, each bomb takes
    -- 64 MiB of text and 128 MiB or more of parsed numbers or cells
    assert.is_true(growth < 40 * 1024, ("peak RSS grew by %d KiB:\n%s"):format(growth, out))
  end)
end)

-- ---- datasets --------------------------------------------------------------------

-- x[i] = {i, 10 i}, y[i] = i: every sample says where it came from.
local function numbered(n)
  local rows, labels = {}, {}
  for i = 1, n do rows[i], labels[i] = {i, 10 * i}, i end
  return data.TensorDataset(mg.tensor(rows), mg.tensor(labels, "int64"))
end

describe("TensorDataset", function()
  it("has one sample per slice along dim 1", function()
    local ds = numbered(5)
    assert.equal(5, ds:len())
    local x, y = ds:get(3)
    assert.same({3, 30}, x:totable())
    assert.equal(3, y:item())
  end)

  it("gathers batches with get_batch", function()
    local x, y = numbered(5):get_batch(mg.tensor({4, 2}, "int64"))
    assert.same({{4, 40}, {2, 20}}, x:totable())
    assert.same({4, 2}, y:totable())
  end)

  it("refuses tensors of different lengths and positions out of range", function()
    assert.matches("same size in dim 1", error_of(data.TensorDataset, mg.zeros(3, 2), mg.zeros(4)))
    assert.matches("out of range 1..5", error_of(function() return numbered(5):get(6) end))
  end)
end)

describe("Subset", function()
  it("picks the samples at its ids, in their order", function()
    local sub = data.Subset(numbered(6), {5, 1, 3})
    assert.equal(3, sub:len())
    local x, y = sub:get(1)
    assert.same({5, 50}, x:totable())
    assert.equal(5, y:item())
    local xb, yb = sub:get_batch(mg.tensor({3, 2}, "int64"))
    assert.same({3, 1}, yb:totable())
    assert.same({{3, 30}, {1, 10}}, xb:totable())
  end)

  it("refuses ids outside the dataset", function()
    assert.matches("Subset: id 7 out of range 1..6", error_of(data.Subset, numbered(6), {1, 7}))
  end)
end)

describe("random_split", function()
  local function ids_of(sub) return sub.indices:totable() end

  it("splits by counts into disjoint subsets covering the dataset", function()
    local parts = data.random_split(numbered(10), {7, 3}, {seed = 1})
    assert.equal(7, parts[1]:len())
    assert.equal(3, parts[2]:len())
    local seen = {}
    for _, p in ipairs(parts) do
      for _, i in ipairs(ids_of(p)) do
        assert.is_nil(seen[i])
        seen[i] = true
      end
    end
    for i = 1, 10 do assert.is_true(seen[i]) end
  end)

  it("splits by fractions, handing out the remainder round robin", function()
    local parts = data.random_split(numbered(11), {0.5, 0.3, 0.2}, {seed = 1})
    assert.same({6, 3, 2}, {parts[1]:len(), parts[2]:len(), parts[3]:len()})
    local halves = data.random_split(numbered(11), {0.5, 0.5})
    assert.same({6, 5}, {halves[1]:len(), halves[2]:len()})
  end)

  it("is determined by the seed and leaves the global RNG stream alone", function()
    mg.manual_seed(123)
    local before = mg.get_rng_state()
    local a = data.random_split(numbered(50), {25, 25}, {seed = 7})
    assert.same(before, mg.get_rng_state())
    local expected = mg.rand(4):totable()
    mg.manual_seed(999)
    local b = data.random_split(numbered(50), {25, 25}, {seed = 7})
    local c = data.random_split(numbered(50), {25, 25}, {seed = 8})
    assert.same(ids_of(a[1]), ids_of(b[1]))
    assert.are_not.same(ids_of(a[1]), ids_of(c[1]))
    mg.manual_seed(123)
    data.random_split(numbered(50), {25, 25}, {seed = 7})
    assert.same(expected, mg.rand(4):totable())
  end)

  it("refuses lengths that do not add up", function()
    assert.matches("lengths sum to 9, but the dataset has 10", error_of(data.random_split, numbered(10), {5, 4}))
    assert.matches("fractions must sum to 1", error_of(data.random_split, numbered(10), {0.5, 0.2}))
  end)
end)

-- ---- DataLoader --------------------------------------------------------------------

local function batches(loader)
  local out = {}
  for xb, yb in loader:iter() do out[#out + 1] = {x = xb, y = yb:totable()} end
  return out
end

local function sizes(bs)
  local out = {}
  for i, b in ipairs(bs) do out[i] = #b.y end
  return out
end

describe("DataLoader", function()
  it("yields batches of batch_size in order, the last one short", function()
    local loader = data.DataLoader(numbered(10), {batch_size = 4})
    assert.equal(3, #loader)
    local bs = batches(loader)
    assert.same({4, 4, 2}, sizes(bs))
    assert.same({1, 2, 3, 4}, bs[1].y)
    assert.same({{9, 90}, {10, 100}}, bs[3].x:totable())
  end)

  it("drops the short last batch with drop_last", function()
    local loader = data.DataLoader(numbered(10), {batch_size = 4, drop_last = true})
    assert.equal(2, #loader)
    assert.same({4, 4}, sizes(batches(loader)))
  end)

  it("shuffles so that each epoch covers every sample once", function()
    mg.manual_seed(3)
    local loader = data.DataLoader(numbered(23), {batch_size = 5, shuffle = true})
    for _ = 1, 3 do
      local seen, count = {}, 0
      for _, b in ipairs(batches(loader)) do
        for r, i in ipairs(b.y) do
          assert.is_nil(seen[i])
          assert.equal(10 * i, b.x:totable()[r][2])  -- x and y stay paired
          seen[i], count = true, count + 1
        end
      end
      assert.equal(23, count)
    end
  end)

  it("is reproducible under mg.manual_seed and differs across epochs", function()
    local loader = data.DataLoader(numbered(30), {batch_size = 30, shuffle = true})
    mg.manual_seed(11)
    local e1, e2 = batches(loader)[1].y, batches(loader)[1].y
    mg.manual_seed(11)
    assert.same(e1, batches(loader)[1].y)
    assert.are_not.same(e1, e2)
  end)

  it("collates a plain Lua dataset: tensors stacked, integers to int64, floats to float32", function()
    local ds = {
      len = function() return 5 end,
      get = function(_, i) return mg.full({2, 2}, i), i, i / 2, "s" .. i end,
    }
    local loader = data.DataLoader(ds, {batch_size = 3})
    local it = loader:iter()
    local x, y, w, s = it()
    assert.same({3, 2, 2}, x:shape())
    assert.same({{3, 3}, {3, 3}}, x:totable()[3])
    assert.equal("int64", y:dtype())
    assert.same({1, 2, 3}, y:totable())
    assert.equal("float32", w:dtype())
    assert.same({0.5, 1, 1.5}, w:totable())
    assert.same({"s1", "s2", "s3"}, s)
    local x2, y2 = it()
    assert.same({2, 2, 2}, x2:shape())
    assert.same({4, 5}, y2:totable())
    assert.is_nil(it())
  end)

  it("names the sample whose tensor does not stack", function()
    local ds = {len = function() return 2 end,
                get = function(_, i) return mg.zeros(i), 1 end}
    local err = error_of(function() return data.DataLoader(ds, {batch_size = 2}):iter()() end)
    assert.matches("sample 2 %(shape %[2%]%)", err)
  end)

  it("calls transform once per batch and yields what it returns", function()
    local calls = 0
    local loader = data.DataLoader(numbered(10), {batch_size = 4, transform = function(xb, yb)
      calls = calls + 1
      return xb * 2, yb
    end})
    local bs = batches(loader)
    assert.equal(3, calls)
    assert.same({{2, 20}, {4, 40}, {6, 60}, {8, 80}}, bs[1].x:totable())
  end)

  it("resumes mid-epoch from state_dict with exactly the remaining batches", function()
    mg.manual_seed(5)
    local loader = data.DataLoader(numbered(17), {batch_size = 4, shuffle = true})
    local full = {}
    local it = loader:iter()
    for _ = 1, 2 do full[#full + 1] = it()[1]:totable() end
    local sd = loader:state_dict()
    assert.equal(2, sd.position)
    local saved_rng = mg.get_rng_state()
    for xb in it do full[#full + 1] = xb:totable() end
    local next_epoch = batches(loader)

    -- a fresh loader, as after a restart
    mg.set_rng_state(saved_rng)
    local again = data.DataLoader(numbered(17), {batch_size = 4, shuffle = true})
    again:load_state_dict({perm = sd.perm:clone(), position = sd.position})
    local rest = {}
    for xb in again:iter() do rest[#rest + 1] = xb:totable() end
    assert.equal(3, #rest)
    for k = 1, 3 do assert.same(full[k + 2], rest[k]) end
    local resumed_next = batches(again)
    for k = 1, #next_epoch do assert.same(next_epoch[k].y, resumed_next[k].y) end
  end)

  it("resumes an unshuffled loader and starts afresh after a finished epoch", function()
    local loader = data.DataLoader(numbered(10), {batch_size = 3})
    loader:load_state_dict({position = 2})
    local bs = batches(loader)
    assert.same({{7, 8, 9}, {10}}, {bs[1].y, bs[2].y})
    assert.same({position = 4}, loader:state_dict())
    loader:load_state_dict(loader:state_dict())
    assert.equal(4, #batches(loader))
  end)

  it("refuses bad options", function()
    assert.matches("batch_size must be an integer >= 1", error_of(data.DataLoader, numbered(3), {batch_size = 0}))
    assert.matches("unknown option 'batchsize'", error_of(data.DataLoader, numbered(3), {batchsize = 2}))
    assert.matches("len and get", error_of(data.DataLoader, {}, {}))
  end)
end)

-- ---- Fashion-MNIST ------------------------------------------------------------------

describe("fashion_mnist", function()
  it("loads the 60,000 training images as [N,1,28,28] in [0,1] with labels 1..10", function()
    local x, y = data.fashion_mnist{split = "train"}
    assert.same({60000, 1, 28, 28}, x:shape())
    assert.equal("float32", x:dtype())
    assert.equal(0, x:min():item())
    assert.equal(1, x:max():item())
    assert.near(0.2860, x:mean():item(), 1e-3)  -- the dataset's known mean
    assert.equal("int64", y:dtype())
    assert.same({60000}, y:shape())
    for k = 1, 10 do assert.equal(6000, y:eq(k):sum():item()) end
  end)

  it("loads the training set within the memory of its two tensors (no second copy of the data)", function()
    local images, labels = 60000 * 784 * 4, 60000 * 8  -- float32, int64
    collectgarbage()
    collectgarbage()
    -- the limit counts what tensors ask for; 4 MiB for zlib and the decode buffers
    mg.set_memory_limit(mg.memory().tensor_bytes + images + labels + 4 * 2^20)
    local ok, err = pcall(data.fashion_mnist, {split = "train"})
    mg.set_memory_limit(0)
    assert.is_true(ok, err)
  end)

  it("loads the 10,000 test images, raw 0..255 with normalize = false", function()
    local x, y = data.fashion_mnist{split = "test", normalize = false}
    assert.same({10000, 1, 28, 28}, x:shape())
    assert.equal(255, x:max():item())
    assert.same({10000}, y:shape())
    assert.equal(1, y:min():item())
    assert.equal(10, y:max():item())
  end)

  it("names the ten classes", function()
    assert.equal(10, #data.fashion_mnist_classes)
    assert.equal("T-shirt/top", data.fashion_mnist_classes[1])
    assert.equal("Ankle boot", data.fashion_mnist_classes[10])
  end)

  it("makes a TensorDataset", function()
    local ds = data.fashion_mnist_dataset{split = "test"}
    assert.equal(10000, ds:len())
    local xb, yb = data.DataLoader(ds, {batch_size = 32}):iter()()
    assert.same({32, 1, 28, 28}, xb:shape())
    assert.same({32}, yb:shape())
  end)

  it("says which file is missing and which package to install", function()
    local err = error_of(data.fashion_mnist, {root = "/nonexistent"})
    assert.matches("fashion_mnist: cannot open /nonexistent/train%-images%-idx3%-ubyte%.gz " ..
                   "%(No such file or directory%); install the Debian package dataset%-fashion%-mnist", err)
  end)

  it("names the corrupt file", function()
    local dir = tmp_path()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    write_file(dir .. "/t10k-images-idx3-ubyte.gz", "garbage!")
    write_file(dir .. "/t10k-labels-idx1-ubyte.gz", idx_bytes(0x08, {1}, {1}))
    local err = error_of(data.fashion_mnist, {split = "test", root = dir})
    os.execute("rm -rf '" .. dir .. "'")
    assert.matches("fashion_mnist: " .. plain(dir) .. "/t10k%-images%-idx3%-ubyte%.gz: bad magic number", err)
  end)
end)
