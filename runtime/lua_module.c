/*
 * lua_module.c — luaopen_moongrad_core: one context per Lua state, the
 * tensor metatable, and the function families registered into the module.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <limits.h>
#include <unistd.h>

#include "lua_bind.h"
#include "mg_capi.h"

#define MGL_CONTEXT "moongrad.Context"

static int context_gc(lua_State *L) {
  mg_Context **slot = luaL_checkudata(L, 1, MGL_CONTEXT);
  mg_context_decref(*slot); /* storages still alive keep it until freed */
  *slot = NULL;
  return 0;
}

/* The registry key (its address) of the state's context userdata. */
static const char state_ctx_key = 0;

/* For separately built modules (mg_capi.h). */
static const mgl_CAPI capi = {MGL_CAPI_VERSION, mgl_test_extern, mg_data, mg_numel,
                              mg_is_contiguous, mg_dtype_name, mgl_state_ctx,
                              mg_set_grad_hook};

mg_Context *mgl_state_ctx(lua_State *L) {
  if (!lua_checkstack(L, 1)) return NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_ctx_key);
  mg_Context **slot = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return slot ? *slot : NULL;
}

/* Families of tensor methods; each method is also mg.<name>(t, ...). */
static const luaL_Reg *const method_families[] = {
    mgl_tensor_methods, mgl_create_methods, mgl_ops_methods,
    mgl_reduce_methods, mgl_index_methods, mgl_autograd_methods,
    mgl_join_methods, NULL};
/* Module-only functions, registered after the methods (they win). */
static const luaL_Reg *const function_families[] = {
    mgl_tensor_functions, mgl_create_functions, mgl_ops_functions,
    mgl_index_functions, mgl_autograd_functions, mgl_nn_functions,
    mgl_optim_functions,
    mgl_augment_functions,
    mgl_imageops_functions,
    mgl_io_functions,
    mgl_image_functions,
    mgl_safetensors_functions,
    mgl_conv_functions,
    mgl_pool_functions,
    mgl_join_functions,
    mgl_rnn_functions,
    mgl_proc_functions,
    mgl_shm_functions,
    mgl_linalg_module_functions,
    mgl_signal_functions,
    mgl_complete_functions,
    mgl_attach_functions,
    NULL};

/* mg._core_file() --> the file the running core's code is in: core.so,
 * libmoongrad.so, or the executable it is linked into. moongrad.dist looks
 * for the MPI module it was built with beside it. */
static int core_file(lua_State *L) {
  char path[PATH_MAX];
  Dl_info info;
  struct link_map *map = NULL;
  /* The executable's own link map has an empty name. */
  if (dladdr1((void *)core_file, &info, (void **)&map, RTLD_DL_LINKMAP) && map &&
      map->l_name && map->l_name[0] && realpath(map->l_name, path)) {
    lua_pushstring(L, path);
    return 1;
  }
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  lua_pushstring(L, path);
  return 1;
}

/* [-0, +1, m] The module table of the C core. Every function gets the
 * state's context as upvalue 1; the metamethods also get the methods table
 * as upvalue 2 (for __index). */
int luaopen_moongrad_core(lua_State *L) {
  /* Tensor bytes reach the collector as debt (mgl_account), which only the
   * incremental collector acts on: the generational one (stock lua5.4's
   * default) makes a step a minor collection, and a dead tensor that has
   * grown old (survived two) stays until the Lua heap itself doubles --
   * gigabytes of batches, for a heap that hardly grows. */
  lua_gc(L, LUA_GCINC, 0, 0, 0);
  /* Handle before resource: the userdata exists before the context. */
  mgl_Handle *handle = lua_newuserdatauv(L, sizeof *handle, 0);
  handle->ctx = NULL, handle->tensor_mt = NULL;
  mg_Context **slot = &handle->ctx;
  luaL_newmetatable(L, MGL_CONTEXT);
  lua_pushcfunction(L, context_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  if (!(*slot = mg_context_new())) return luaL_error(L, "moongrad: not enough memory");
  mg_set_reclaim(*slot, mgl_reclaim);
  int ctx = lua_gettop(L);
  lua_pushvalue(L, ctx); /* for mgl_state_ctx (the embedding API) */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_ctx_key);
  lua_pushlightuserdata(L, (void *)&capi);
  lua_setfield(L, LUA_REGISTRYINDEX, MGL_CAPI_KEY);

  lua_newtable(L); /* methods */
  int methods = lua_gettop(L);
  for (int f = 0; method_families[f]; f++) {
    lua_pushvalue(L, ctx);
    luaL_setfuncs(L, method_families[f], 1);
  }

  lua_newtable(L); /* the module */
  int mod = lua_gettop(L);
  for (int f = 0; method_families[f]; f++) {
    lua_pushvalue(L, ctx);
    luaL_setfuncs(L, method_families[f], 1);
  }
  for (int f = 0; function_families[f]; f++) {
    lua_pushvalue(L, ctx);
    luaL_setfuncs(L, function_families[f], 1);
  }
  lua_newtable(L); /* mg.linalg, as torch.linalg */
  lua_pushvalue(L, ctx);
  luaL_setfuncs(L, mgl_linalg_functions, 1);
  lua_setfield(L, mod, "linalg");
  lua_pushvalue(L, methods);
  lua_setfield(L, mod, "Tensor");
  lua_pushcfunction(L, core_file);
  lua_setfield(L, mod, "_core_file");
  lua_pushliteral(L, MG_VERSION);
  lua_setfield(L, mod, "version");

  luaL_newmetatable(L, MGL_TENSOR);
  lua_pushvalue(L, ctx);
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, mgl_tensor_meta, 2);
  lua_pushvalue(L, ctx);
  lua_pushvalue(L, methods);
  luaL_setfuncs(L, mgl_ops_meta, 2);
  lua_pushvalue(L, methods);
  lua_setfield(L, -2, "__methods"); /* for the REPL's completion */
  handle->tensor_mt = lua_topointer(L, -1);
  mgl_register_tensor_mt(L);

  /* The context lives as long as any function holding it as an upvalue. */
  lua_pushvalue(L, mod);
  return 1;
}
