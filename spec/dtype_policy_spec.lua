-- The dtype policy of docs/CONTRIBUTING.md ("Dtypes in kernels"), read off
-- the C sources: per-dtype code is written out, never generated. The
-- binding (lua_*.c) and the executable (main.c, repl.c) hold no kernels and
-- are not read; dtype.c is the one place that converts between every
-- storage dtype element by element (mg_load_f64 / mg_store_f64), which is
-- the conversion itself rather than a kernel.

local function kernel_files()
  local files = {}
  local p = io.popen("ls runtime/*.c runtime/*.h runtime/mpi/*.c 2>/dev/null")
  for f in p:lines() do
    local base = f:match("[^/]+$")
    if not (base:match("^lua_") or base == "main.c" or base == "repl.c") then files[#files + 1] = f end
  end
  p:close()
  assert(#files > 20, "runtime/ not found: run the specs from the repository root")
  return files
end

local function lines_of(path)
  local t = {}
  for l in io.lines(path) do t[#t + 1] = l end
  return t
end

-- Each finding is "file:line: what"; the specs list them all at once.
local function check(f)
  local found = {}
  for _, path in ipairs(kernel_files()) do
    f(path, lines_of(path), function(n, what) found[#found + 1] = ("%s:%d: %s"):format(path, n, what) end)
  end
  return found
end

local function expect_none(found)
  assert(#found == 0, "\n" .. table.concat(found, "\n"))
end

local rules = {}

function rules.paste(_, lines, bad)
  local in_define = false
  for n, l in ipairs(lines) do
    if l:match("^%s*#%s*define") then in_define = true end
    if in_define and l:find("##", 1, true) then bad(n, "## in a macro: write the functions out") end
    if not l:match("\\%s*$") then in_define = false end
  end
end

function rules.twice(_, lines, bad)
  local seen = {}
  for n, l in ipairs(lines) do
    local inc = l:match('^%s*#%s*include%s*["<]([^">]+)')
    if inc then
      if seen[inc] then bad(n, inc .. " included again (first at line " .. seen[inc] .. ")") end
      seen[inc] = seen[inc] or n
    end
  end
end

-- A float64 function whose float32 twin exists comes right after it, under
-- the marker line. (A float64-only function, an accumulator that serves
-- both dtypes, has no twin to follow.)
function rules.twins(_, lines, bad)
  local defs, seen = {}, {}
  for n, l in ipairs(lines) do
    local name, sfx = l:match("^static[%w%s_%*]-[%s%*]([%w_]+)_(f%d%d)%(")
    if not name then name, sfx = l:match("^MG_INLINE[%w%s_%*]-[%s%*]([%w_]+)_(f%d%d)%(") end
    if name and not l:match(";%s*$") then defs[#defs + 1] = {n = n, name = name, sfx = sfx} end
  end
  local has_f32 = {}
  for _, d in ipairs(defs) do if d.sfx == "f32" then has_f32[d.name] = true end end
  for _, d in ipairs(defs) do
    if d.sfx == "f64" and has_f32[d.name] then
      if not seen[d.name] then bad(d.n, d.name .. "_f64 comes before its twin " .. d.name .. "_f32") end
      local marked = false
      for k = math.max(1, d.n - 4), d.n - 1 do
        if lines[k]:find("f64 twin of " .. d.name .. "_f32", 1, true) then marked = true end
      end
      if not marked then bad(d.n, d.name .. "_f64 lacks the line /* f64 twin of " .. d.name .. "_f32 */") end
    end
    if d.sfx == "f32" then seen[d.name] = true end
  end
end

function rules.per_element(path, lines, bad)
  if path:match("dtype%.c$") then return end
  for n, l in ipairs(lines) do
    local both = l:match("float%s*%*%)") and l:match("double%s*%*%)")
    if both and (l:find("?", 1, true) or l:match("^%s*if%s*%(")) then
      bad(n, "per-element dtype choice: write a float32 kernel and its float64 twin")
    end
  end
end

describe("the dtype policy", function()
  it("has no macro that pastes names (a macro-made family of per-dtype functions)", function()
    expect_none(check(rules.paste))
  end)

  it("includes no file twice (a body instantiated once per type)", function()
    expect_none(check(rules.twice))
  end)

  it("puts every float64 kernel after its float32 twin, under the marker line", function()
    expect_none(check(rules.twins))
  end)

  it("tests no dtype per element (float and double casts side by side in one expression)", function()
    expect_none(check(rules.per_element))
  end)

  it("catches each kind of breach it describes, and passes the written-out form", function()
    local function count(rule, src)
      local lines, n = {}, 0
      for l in (src .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
      rule("ops_made_up.c", lines, function() n = n + 1 end)
      return n
    end
    assert.equal(1, count(rules.paste, "#define F(T) \\\n  static void f_##T(T *x) {}"))
    assert.equal(0, count(rules.paste, "#define LOOP(T, e) \\\n  for (;;) { T x = e; }"))
    assert.equal(1, count(rules.twice, '#define ET float\n#include "body.h"\n#define ET double\n#include "body.h"'))
    local f32 = "static void scale_f32(float *x) {\n}\n"
    local f64 = "static void scale_f64(double *x) {\n}"
    assert.equal(0, count(rules.twins, f64))
    assert.equal(2, count(rules.twins, f64 .. "\n" .. f32))
    assert.equal(1, count(rules.twins, f32 .. f64))
    assert.equal(0, count(rules.twins, f32 .. "/* f64 twin of scale_f32 */\n" .. f64))
    assert.equal(1, count(rules.per_element,
      "  for (i = 0; i < n; i++) s += f32 ? ((const float *)x)[i] : ((const double *)x)[i];"))
    assert.equal(1, count(rules.per_element, "    if (f32) ((float *)y)[i] = v; else ((double *)y)[i] = v;"))
    assert.equal(0, count(rules.per_element, "  fn = dt == MG_F32 ? scale_f32 : scale_f64;"))
  end)
end)
