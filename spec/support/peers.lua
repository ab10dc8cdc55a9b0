-- The peers some specs check moongrad's files in (PyTorch, Pillow): Debian
-- packages make test does not install. Without them such a spec is
-- pending; make test-peers installs them and sets MOONGRAD_REQUIRE_PEERS,
-- under which a missing peer fails instead.
--
--   local why = peers.missing("torch", "python3-torch", "PyTorch's side")
--   if why then pending(why) return end
--
-- (pending is busted's, visible in a spec file but not in a module it
-- requires, so the spec calls it.)
local shell = require "support.shell"

local peers = {}

-- missing(module, package, what) --> nil when /usr/bin/python3 imports
-- module (e.g. "torch"), else the reason to give pending ("python3-torch is
-- not installed: PyTorch's side is not checked"). Raises instead under
-- MOONGRAD_REQUIRE_PEERS.
function peers.missing(module, package, what)
  local _, code = shell.run_merged("/usr/bin/python3 -c 'import " .. module .. "'")
  if code == 0 then return nil end
  assert(not os.getenv("MOONGRAD_REQUIRE_PEERS"), package .. " is not installed")
  return package .. " is not installed: " .. what .. " is not checked"
end

return peers
