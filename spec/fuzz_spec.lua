-- The fuzz harnesses (fuzz/, the Makefile's fuzzing section) replay their
-- committed corpora: every seed and every crash the fuzzer once found runs
-- again under ASan and UBSan, so a fixed bug that comes back fails here.
-- No fuzzing happens in the specs (`make fuzz` does that); they need
-- clang-14 with libFuzzer and are skipped, saying why, without it.

local HARNESSES = {"safetensors", "idx", "csv", "lua", "image"}

local run = require("support.shell").run_merged

local function have_libfuzzer()
  local out, code = run("command -v clang-14")
  if code ~= 0 then return false, "clang-14 is not installed" end
  local dir = run("clang-14 -print-resource-dir"):gsub("%s+$", "")
  local f = io.open(dir .. "/lib/linux/libclang_rt.fuzzer-x86_64.a")
  if not f then return false, "clang-14's libFuzzer (libclang-rt-14-dev) is not installed" end
  f:close()
  return true, out
end

describe("the fuzz harnesses", function()
  local ok, why = have_libfuzzer()
  if not ok then
    print("fuzz_spec: skipped: " .. why .. " (sh tools/deps.sh sanitize installs it)")
    pending("skipped: " .. why)
    return
  end

  local build_out, build_code
  setup(function()
    build_out, build_code = run("make -s -j2 fuzz-harnesses")
  end)

  it("build with clang-14 under ASan and UBSan", function()
    assert.equal(0, build_code, build_out)
  end)

  for _, h in ipairs(HARNESSES) do
    it("run every file of fuzz/corpus/" .. h .. " without a crash or a sanitizer report", function()
      assert.equal(0, build_code, build_out)
      local out, code = run(("build-fuzz/%s_fuzz -runs=0 -timeout=60 -rss_limit_mb=2048 "
                             .. "-artifact_prefix=build-fuzz/replay-%s- fuzz/corpus/%s"):format(h, h, h))
      assert.equal(0, code, out)
      assert.is_nil(out:find("runtime error", 1, true), out)
      assert.truthy(out:find("Done %d+ runs"), out)
    end)
  end
end)
