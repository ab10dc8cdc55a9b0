-- moongrad: tensors, their ops and autograd, from the C core, plus what is
-- easier said in Lua. `local mg = require "moongrad"`.
local mg = require "moongrad.core"

mg.gradcheck = require("moongrad.gradcheck").gradcheck

return mg
