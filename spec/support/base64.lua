-- Base64 back to bytes, written independently of moongrad's encoder
-- (moongrad.display) so the specs can check what it writes.
local M = {}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.decode(b64)
  local bytes, bits, nbits = {}, 0, 0
  for ch in b64:gmatch("[^=%s]") do
    bits = (bits << 6 | (ALPHABET:find(ch, 1, true) - 1)) & 0xFFFF
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      bytes[#bytes + 1] = string.char(bits >> nbits & 255)
    end
  end
  return table.concat(bytes)
end

return M
