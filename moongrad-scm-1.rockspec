-- `luarocks make` in a checkout builds the C module with the repository's
-- Makefile and installs the Lua library and core.so into the rock tree
-- (make install-lua, pointed at the rock's directories). The C libraries
-- come from Debian: sh tools/deps.sh build installs them.
rockspec_format = "3.0"
package = "moongrad"
version = "scm-1"
source = {
  url = "git+file://.", -- built from the checkout it sits in
}
description = {
  summary = "A training runtime: tensors, autograd and optimizers in C, driven from Lua 5.4",
  detailed = [[
Tensors, reverse-mode autograd, neural-network layers, fused optimizers,
data loading, checkpoints (safetensors) and hyperparameter search, with
every loop over tensor elements in C on OpenBLAS and one OpenMP pool.
require "moongrad" loads it.]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "make",
  build_target = "build/lua/moongrad/core.so",
  -- luarocks' CFLAGS (-O2 -fPIC) first; the Makefile's own optimisation
  -- after it, so the rock's module is built as `make` builds it.
  build_variables = { CFLAGS = "$(CFLAGS) -O3 -march=native -g" },
  install_target = "install-lua",
  install_variables = { luadir = "$(LUADIR)", luacdir = "$(LIBDIR)" },
}
