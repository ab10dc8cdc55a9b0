-- moongrad: tensors and their ops, from the C core, plus what is easier
-- said in Lua. `local mg = require "moongrad"`.
local mg = require "moongrad.core"

return mg
