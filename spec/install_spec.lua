-- make install and make uninstall, the pkg-config file, the man page and the
-- rockspec, checked on real installations in temporary prefixes: stock
-- lua5.4, the installed executable, C programs built with pkg-config's flags
-- and luarocks all use what was installed. Specs run from the repository
-- root after `make all`.

local BUILD = require "support.build"

local shell = require "support.shell"
local quote, read_file, write_file, run = shell.quote, shell.read_file, shell.write_file, shell.run

-- These specs are about stock lua5.4, luarocks and the default tree's
-- installation, so under `make test-sanitize` they take the sanitized
-- tree's lua5.4 shim (<MOONGRAD_BUILD>/bin, see the Makefile) off PATH.
local STOCK_PATH = {}
for dir in os.getenv("PATH"):gmatch("[^:]+") do
  if dir:sub(-#BUILD - 5) ~= "/" .. BUILD .. "/bin" then STOCK_PATH[#STOCK_PATH + 1] = dir end
end
STOCK_PATH = "export PATH=" .. quote(table.concat(STOCK_PATH, ":")) .. "; "

-- Runs a command that must succeed; returns its stdout.
local function check(cmdline)
  local out, err, code = run(STOCK_PATH .. cmdline)
  assert(code == 0, ("%s\nexited %s:\n%s%s"):format(cmdline, tostring(code), out, err))
  return out
end

local ROOT = check("pwd"):match("[^\n]+")
local TMP = check("mktemp -d"):match("[^\n]+")
local VERSION = read_file("runtime/mg_core.h"):match('#define MG_VERSION "([^"]+)"')
-- moongrad.dist's module exists where Open MPI was found at build time.
local HAVE_MPI = io.open(BUILD .. "/lua/moongrad/dist_mpi.so") ~= nil

local function make(target, vars)
  return check("make -s -C " .. quote(ROOT) .. " " .. target .. " " .. vars)
end

-- Every file and link below dir (paths relative to it), sorted.
local function list_files(dir)
  local out = check("cd " .. quote(dir) .. " && find . \\( -type f -o -type l \\) | sort")
  local files = {}
  for line in out:gmatch("[^\n]+") do files[#files + 1] = line:sub(3) end
  return files
end

-- What make install must put below the prefix.
local function expected_files()
  local files = {
    "bin/moongrad",
    "include/moongrad/mg_augment.h",
    "include/moongrad/mg_conv.h",
    "include/moongrad/mg_core.h",
    "include/moongrad/mg_file.h",
    "include/moongrad/mg_image.h",
    "include/moongrad/mg_imageops.h",
    "include/moongrad/mg_io.h",
    "include/moongrad/mg_pool.h",
    "include/moongrad/mg_rnn.h",
    "include/moongrad/mg_safetensors.h",
    "lib/libmoongrad.a",
    "lib/libmoongrad.so",
    "lib/libmoongrad.so.0",
    "lib/libmoongrad.so." .. VERSION,
    "lib/lua/5.4/moongrad/core.so",
    "lib/lua/5.4/moongrad/jupyter_wire.so",
    "lib/pkgconfig/moongrad.pc",
    "share/man/man1/moongrad.1",
  }
  if io.open("runtime/moongrad.h") then files[#files + 1] = "include/moongrad/moongrad.h" end
  if HAVE_MPI then files[#files + 1] = "lib/lua/5.4/moongrad/dist_mpi.so" end
  for path in check("cd lua && find moongrad -name '*.lua'"):gmatch("[^\n]+") do
    files[#files + 1] = "share/lua/5.4/" .. path
  end
  table.sort(files)
  return files
end

-- The environment in which stock lua5.4 finds a tree's modules first.
local function lua_env(tree)
  return ("LUA_PATH=%s LUA_CPATH=%s"):format(
    quote(tree .. "/share/lua/5.4/?.lua;" .. tree .. "/share/lua/5.4/?/init.lua;;"),
    quote(tree .. "/lib/lua/5.4/?.so;;"))
end

-- A matrix product and a layer through the loaded modules, and where the
-- Lua library came from.
local COMPUTE = [[
local mg = require "moongrad"
local nn = require "moongrad.nn"
local y = nn.Linear(3, 2)(mg.ones(4, 3))
print(mg.ones(2, 3):matmul(mg.full({3, 2}, 1.5)):sum():item(), y:shape()[1],
      package.searchpath("moongrad", package.path))
]]
-- Where stock lua5.4 found the C module.
local WHICH_CORE = 'print(package.searchpath("moongrad.core", package.cpath))'

-- A matrix product through mg_core.h and a convolution through mg_conv.h:
-- ones [1,1,3,3] convolved with ones [1,1,2,2] gives 4 in each of 2x2.
local C_PROGRAM = [[
#include <stdio.h>
#include <mg_core.h>
#include <mg_conv.h>

int main(void) {
  mg_Context *ctx = mg_context_new();
  int64_t sa[2] = {2, 3}, sb[2] = {3, 2}, sx[4] = {1, 1, 3, 3}, sw[4] = {1, 1, 2, 2};
  mg_Tensor *a = NULL, *b = NULL, *c = NULL, *x = NULL, *w = NULL, *y = NULL;
  mg_Conv2dOpts o = {{1, 1}, {0, 0}, {1, 1}, 1, 0, {0, 0}};
  const float *p, *q;
  if (ctx == NULL) return 1;
  if (mg_full(ctx, &a, MG_F32, 2, sa, 2.0) || mg_full(ctx, &b, MG_F32, 2, sb, 1.5) ||
      mg_matmul(ctx, &c, a, b) || mg_full(ctx, &x, MG_F32, 4, sx, 1.0) ||
      mg_full(ctx, &w, MG_F32, 4, sw, 1.0) || mg_conv2d(ctx, &y, x, w, NULL, &o)) {
    fprintf(stderr, "%s\n", mg_last_error(ctx));
    return 1;
  }
  p = mg_data(c);
  q = mg_data(y);
  printf("%s %s %g %g %g %g conv %g %g %g %g\n", mg_dtype_name(c->dtype), MG_VERSION,
         p[0], p[1], p[2], p[3], q[0], q[1], q[2], q[3]);
  mg_tensor_decref(a);
  mg_tensor_decref(b);
  mg_tensor_decref(c);
  mg_tensor_decref(x);
  mg_tensor_decref(w);
  mg_tensor_decref(y);
  mg_context_decref(ctx);
  return 0;
}
]]

teardown(function() os.execute("rm -rf " .. quote(TMP)) end)

describe("make install PREFIX=...", function()
  local P = TMP .. "/prefix"
  local pkg = "PKG_CONFIG_PATH=" .. quote(P .. "/lib/pkgconfig") .. " pkg-config "

  setup(function() make("install", "PREFIX=" .. quote(P)) end)

  it("installs exactly the executable, libraries, headers, Lua library, .pc and man page", function()
    assert.are.same(expected_files(), list_files(P))
    assert.are.equal("", check("diff -r lua/moongrad " .. quote(P .. "/share/lua/5.4/moongrad")))
    assert.are.equal("", check("cmp runtime/mg_core.h " .. quote(P .. "/include/moongrad/mg_core.h")))
    check("test -x " .. quote(P .. "/bin/moongrad"))
  end)

  it("gives the shared library a soname, with the usual links to it", function()
    local dyn = check("readelf -d " .. quote(P .. "/lib/libmoongrad.so." .. VERSION))
    assert.truthy(dyn:find("Library soname: [libmoongrad.so.0]", 1, true))
    assert.truthy(dyn:find("Shared library: [libopenblas.so.0]", 1, true))
    assert.truthy(dyn:find("Shared library: [libgomp.so.1]", 1, true))
    assert.truthy(dyn:find("Shared library: [libcjson.so.1]", 1, true))
    assert.are.equal("libmoongrad.so.0\n", check("readlink " .. quote(P .. "/lib/libmoongrad.so")))
    assert.are.equal("libmoongrad.so." .. VERSION .. "\n",
                     check("readlink " .. quote(P .. "/lib/libmoongrad.so.0")))
  end)

  it("lets stock lua5.4 require moongrad with the prefix's paths, from anywhere", function()
    local out = check("cd / && " .. lua_env(P) .. " lua5.4 -e " .. quote(COMPUTE)
                      .. " -e " .. quote(WHICH_CORE))
    assert.are.equal(("18.0\t4\t%s/share/lua/5.4/moongrad/init.lua\n%s/lib/lua/5.4/moongrad/core.so\n")
                     :format(P, P), out)
  end)

  it("installs moongrad.dist's MPI module where the installed executable and lua5.4 find it", function()
    if not HAVE_MPI then pending("moongrad was built without MPI") return end
    local code = quote("print(require('moongrad.dist').mpi_version, " ..
                       "package.loaded['moongrad.dist_mpi'] ~= nil)")
    local out = check("cd / && env -u LUA_PATH -u LUA_CPATH " .. quote(P .. "/bin/moongrad")
                      .. " -e " .. code)
    assert.matches("^MPI %d%.%d\ttrue\n$", out)
    out = check("cd / && " .. lua_env(P) .. " lua5.4 -e " .. code)
    assert.matches("^MPI %d%.%d\ttrue\n$", out)
  end)

  it("installs the Jupyter kernel's transport where the installed executable finds it", function()
    local kdir = P .. "/kernelspec"
    local out = check("cd / && env -u LUA_PATH -u LUA_CPATH " .. quote(P .. "/bin/moongrad") ..
                      " --install-kernel --prefix " .. quote(kdir) .. " && env -u LUA_PATH -u LUA_CPATH " ..
                      quote(P .. "/bin/moongrad") .. " -e " ..
                      quote("print(require('moongrad.util').require_beside_core('moongrad.jupyter_wire', " ..
                            "'jupyter_wire.so') ~= nil)"))
    assert.are.equal(("installed the moongrad kernelspec in %s/share/jupyter/kernels/moongrad\ntrue\n")
                     :format(kdir), out)
    local spec = read_file(kdir .. "/share/jupyter/kernels/moongrad/kernel.json")
    assert.truthy(spec:find('"' .. P .. '/bin/moongrad"', 1, true), spec)
  end)

  it("runs the installed executable from another directory, with its own Lua library", function()
    local out = check("cd / && env -u LUA_PATH -u LUA_CPATH " .. quote(P .. "/bin/moongrad")
                      .. " -e " .. quote("print(require'moongrad'.version)") .. " -e " .. quote(COMPUTE))
    assert.are.equal(("%s\n18.0\t4\t%s/share/lua/5.4/moongrad/init.lua\n"):format(VERSION, P), out)
  end)

  it("writes a pkg-config file with the prefix's directories and the dependencies' flags", function()
    assert.are.equal(VERSION .. "\n", check(pkg .. "--modversion moongrad"))
    local flags = " " .. check(pkg .. "--cflags --libs moongrad")
    assert.truthy(flags:find(" -I" .. P .. "/include/moongrad ", 1, true))
    assert.truthy(flags:find(" -I/usr/include/lua5.4 ", 1, true))
    assert.truthy(flags:find(" -L" .. P .. "/lib -lmoongrad ", 1, true))
    assert.truthy(flags:find(" -llua5.4 ", 1, true))
    local static = " " .. check(pkg .. "--libs --static moongrad")
    for _, lib in ipairs {"-lopenblas", "-lgomp", "-ldnnl", "-lcjson", "-lpng16", "-ljpeg", "-lz", "-lm"} do
      assert.truthy(static:find(" " .. lib .. " ", 1, true), lib .. " missing from " .. static)
    end
    assert.truthy(static:find(" %-Wl,%-rpath,/usr/lib/[^ ]*/openblas%-openmp "))
  end)

  describe("builds and runs a C program with pkg-config's flags", function()
    local src = TMP .. "/prog.c"
    setup(function() write_file(src, C_PROGRAM) end)

    it("against the shared library", function()
      local exe = TMP .. "/prog_shared"
      check(("cc -o %s %s $(%s --cflags --libs moongrad) -Wl,-rpath,%s")
            :format(quote(exe), quote(src), pkg, quote(P .. "/lib")))
      assert.are.equal("float32 " .. VERSION .. " 9 9 9 9 conv 4 4 4 4\n", check(quote(exe)))
      local ldd = check("ldd " .. quote(exe))
      assert.truthy(ldd:find("libmoongrad.so.0 => " .. P .. "/lib/libmoongrad.so.0", 1, true))
      assert.truthy(ldd:find("openblas-openmp/libopenblas.so.0", 1, true))
    end)

    it("against the static library", function()
      local exe = TMP .. "/prog_static"
      check(("cc -o %s %s $(%s --cflags --libs --static moongrad | sed 's/-lmoongrad\\b/-l:libmoongrad.a/')")
            :format(quote(exe), quote(src), pkg))
      assert.are.equal("float32 " .. VERSION .. " 9 9 9 9 conv 4 4 4 4\n", check(quote(exe)))
      local ldd = check("ldd " .. quote(exe))
      assert.is_nil(ldd:find("libmoongrad", 1, true))
      assert.truthy(ldd:find("openblas-openmp/libopenblas.so.0", 1, true))
    end)

    it("the example host, against the installed headers, library and Lua library", function()
      local exe = TMP .. "/host"
      check(("cc -o %s examples/host/host.c $(%s --cflags --libs moongrad) -Wl,-rpath,%s -lm")
            :format(quote(exe), pkg, quote(P .. "/lib")))
      assert.truthy(check("ldd " .. quote(exe)):find(P .. "/lib/libmoongrad.so.0", 1, true))
      -- With the specs' LUA_PATH gone and no MOONGRAD_LUA_DIR, the library
      -- finds its Lua modules from where it is installed (<prefix>/lib ->
      -- <prefix>/share/lua/5.4), not from this checkout.
      local out = check("env -u LUA_PATH -u LUA_CPATH -u MOONGRAD_LUA_DIR " .. quote(exe)
                        .. " examples/host/model.lua " .. quote(TMP .. "/host.safetensors"))
      assert.truthy(out:find("reloaded: predictions match", 1, true))
      local probe = TMP .. "/where.lua"
      local f = assert(io.open(probe, "w"))
      f:write("io.write(package.searchpath('moongrad.train', package.path))\n"
              .. "function set_data() end function train_slice() return 0 end\n")
      f:close()
      local where = run("env -u LUA_PATH -u LUA_CPATH -u MOONGRAD_LUA_DIR " .. quote(exe) .. " "
                        .. quote(probe))
      assert.truthy(where:find(P .. "/share/lua/5.4/moongrad/train.lua", 1, true), where)
    end)
  end)

  describe("installs a man page", function()
    local man = P .. "/share/man/man1/moongrad.1"

    it("that groff formats without a warning and man renders", function()
      local out, err, code = run("groff -man -Tutf8 -z -ww " .. quote(man))
      assert.are.equal(0, code)
      assert.are.equal("", out .. err)
      local text = check("MANWIDTH=80 MANPAGER=cat man -l " .. quote(man))
      for _, section in ipairs {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT",
                                "FILES", "EXAMPLES", "SEE ALSO"} do
        assert.truthy(text:find("\n" .. section .. "\n", 1, true), section .. " is missing")
      end
    end)

    it("that documents every option of the usage text and the environment", function()
      local text = check("groff -man -Tascii -P-cbou " .. quote(man))
      local options = assert(text:match("\nOPTIONS(\n.-)\nENVIRONMENT\n"))
      local usage = check(BUILD .. "/moongrad -h"):match("\nOptions:\n(.-)\n%S")
      local flags = {}
      for line in usage:gmatch("[^\n]+") do
        local first, rest = line:match("^  (%-%S*)(.*)")
        if first then
          flags[#flags + 1] = first:gsub(",$", "")
          flags[#flags + 1] = rest:match("^%s(%-%-%a+)")
        end
      end
      assert.is_true(#flags >= 11)
      -- An option's heading is the tag of a .TP paragraph: "-v, --version".
      local documented = {}
      for heading in options:gmatch("\n       (%-[^\n]*)") do
        for item in (heading .. ","):gmatch("([^%s,]+)[^,]*,%s*") do documented[item] = true end
      end
      for _, flag in ipairs(flags) do
        assert.is_true(documented[flag], flag .. " is not documented")
      end
      local env = assert(text:match("\nENVIRONMENT(\n.-)\nFILES\n"))
      for _, var in ipairs {"LUA_PATH", "LUA_CPATH", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                            "MOONGRAD_LUA_DIR", "MOONGRAD_HISTORY"} do
        assert.truthy(env:find("\n%s+" .. var .. "\n"), var .. " is not documented")
      end
    end)
  end)
end)

describe("make install with DESTDIR", function()
  local stage = TMP .. "/stage"
  local prefix = "/opt/moongrad-spec-" .. check("echo $$"):match("%d+")

  it("stages the files below DESTDIR for the final prefix, and uninstalls them there", function()
    local vars = "DESTDIR=" .. quote(stage) .. " PREFIX=" .. prefix
    make("install", vars)
    assert.is_nil(io.open(prefix .. "/bin/moongrad"))
    assert.are.same(expected_files(), list_files(stage .. prefix))
    local pc = read_file(stage .. prefix .. "/lib/pkgconfig/moongrad.pc")
    assert.truthy(pc:find("\nprefix=" .. prefix .. "\n", 1, true))
    assert.is_nil(pc:find(stage, 1, true))
    local out = check("cd / && " .. quote(stage .. prefix .. "/bin/moongrad")
                      .. " -e " .. quote("print(package.searchpath('moongrad', package.path))"))
    assert.are.equal(stage .. prefix .. "/share/lua/5.4/moongrad/init.lua\n", out)
    make("uninstall", vars)
    assert.are.same({}, list_files(stage))
  end)
end)

describe("make uninstall", function()
  local P = TMP .. "/shared-prefix"
  local others = {"bin/other-tool", "lib/libother.so", "share/lua/5.4/other.lua",
                  "share/lua/5.4/moongrad/local_addition.lua", "share/man/man1/other.1"}

  it("removes what install put there and the emptied moongrad directories, nothing else", function()
    for _, path in ipairs(others) do
      check("mkdir -p " .. quote((P .. "/" .. path):match("(.*)/")))
      write_file(P .. "/" .. path, "not moongrad's\n")
    end
    make("install", "PREFIX=" .. quote(P))
    make("uninstall", "PREFIX=" .. quote(P))
    local left = list_files(P)
    table.sort(others)
    assert.are.same(others, left)
    local dirs = check("cd " .. quote(P) .. " && find . -type d -path '*moongrad*' | sort")
    assert.are.equal("./share/lua/5.4/moongrad\n", dirs)
    for _, path in ipairs(others) do
      assert.are.equal("not moongrad's\n", read_file(P .. "/" .. path))
    end
  end)
end)

describe("the rockspec", function()
  local tree = TMP .. "/rocks"

  it("builds and installs the module with luarocks make, for stock lua5.4", function()
    check("luarocks --lua-version=5.4 make --tree=" .. quote(tree))
    check("test -f " .. quote(tree .. "/lib/luarocks/rocks-5.4/moongrad/scm-1/moongrad-scm-1.rockspec"))
    local out = check("cd / && " .. lua_env(tree) .. " lua5.4 -e " .. quote(COMPUTE)
                      .. " -e " .. quote(WHICH_CORE))
    assert.are.equal(("18.0\t4\t%s/share/lua/5.4/moongrad/init.lua\n%s/lib/lua/5.4/moongrad/core.so\n")
                     :format(tree, tree), out)
    assert.are.equal("", check("diff -r lua/moongrad " .. quote(tree .. "/share/lua/5.4/moongrad")))
  end)
end)
