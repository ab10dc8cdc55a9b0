-- Resident memory across the epochs of a short training run of the main
-- job's model (tools/rss_over_epochs.lua: the Fashion-MNIST MLP through
-- train.fit on a subset). A per-batch leak of even one small tensor adds up
-- to megabytes over the run; a flat profile after the first epoch (which
-- fills the buffer cache) is what the design promises. Sizes only, no
-- timing. Specs run from the repository root, after `make`.

local BUILD = require "support.build"

-- From epoch 2 to the last, RSS may move by allocator noise and the Lua
-- collector's pace, not by a leak: 40 batches an epoch, 6 epochs, and a
-- leak of one 128x512 activation per batch alone would be 40 MiB.
local BOUND_KIB = 16 * 1024

describe("resident memory over epochs", function()
  it("stays within 16 MiB from the second epoch to the sixth of the MLP", function()
    -- Under `make test-sanitize`, without ASan's quarantine (see memory_spec).
    local p = assert(io.popen('ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0:thread_local_quarantine_size_kb=0" '
                              .. BUILD .. "/moongrad tools/rss_over_epochs.lua --epochs 6 "
                              .. "--train 5000 --val 1000 2>&1 </dev/null"))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    local growth = tonumber(out:match("growth_after_2=(%-?%d+)"))
    assert.is_not_nil(growth, out)
    assert.is_true(growth < BOUND_KIB, ("RSS grew by %d KiB after epoch 2:\n%s"):format(growth, out))
  end)
end)
