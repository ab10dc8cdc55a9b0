#include "lua_bind.h"
const luaL_Reg mgl_index_methods[] = {{NULL, NULL}};
const luaL_Reg mgl_index_functions[] = {{NULL, NULL}};
