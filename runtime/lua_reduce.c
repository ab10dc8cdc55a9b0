#include "lua_bind.h"
const luaL_Reg mgl_reduce_methods[] = {{NULL, NULL}};
