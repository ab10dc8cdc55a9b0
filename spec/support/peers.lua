-- The peers some specs check moongrad's files in (PyTorch, Pillow): Debian
-- packages make test does not install. Without them such a spec is
-- pending; make test-peers installs them and sets MOONGRAD_REQUIRE_PEERS,
-- under which a missing peer fails instead.
local shell = require "support.shell"

local peers = {}

-- have(module, package, what) --> true when /usr/bin/python3 imports
-- module (e.g. "torch"); otherwise marks the running spec pending (saying
-- that `what` is not checked) and returns false.
function peers.have(module, package, what)
  local _, code = shell.run_merged("/usr/bin/python3 -c 'import " .. module .. "'")
  if code == 0 then return true end
  assert(not os.getenv("MOONGRAD_REQUIRE_PEERS"), package .. " is not installed")
  pending(package .. " is not installed: " .. what .. " is not checked")
  return false
end

return peers
