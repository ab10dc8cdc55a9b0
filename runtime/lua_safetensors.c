/*
 * lua_safetensors.c — mg.save and mg.load (safetensors.c) from Lua.
 *
 *   mg.save(path, {name = tensor, ...} [, {key = "value", ...}])
 *   local tensors, metadata = mg.load(path)   -- metadata is {} when none
 *
 * and one testing hook, mg._safetensors_fail_after(nbytes): the next save
 * in this Lua state fails with ENOSPC once nbytes are written, or at its
 * fsync when the file is shorter (then the hook clears itself; nil clears
 * it too). Specs use it to
 * show that a failed save leaves the previous file intact.
 */
#include <string.h>

#include "lua_bind.h"
#include "mg_safetensors.h"

#define MGL_LOADBOX "moongrad.SafeTensorsLoad"
#define FAIL_KEY "moongrad.safetensors_fail_after" /* registry: the hook */

/* ---- mg.save ---------------------------------------------------------------- */

/* Collects the string → X pairs of the table at arg into arrays living in
 * userdata (so a Lua error never leaks them); with tensors, values must be
 * tensors, else strings. The strings stay anchored by the table. Returns
 * the count. */
static int collect(lua_State *L, int arg, const char *what, int want_tensors,
                   const char ***keys, void ***values) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    n++;
    lua_pop(L, 1);
  }
  *keys = lua_newuserdatauv(L, sizeof(char *) * ((size_t)n + 1), 0);
  *values = lua_newuserdatauv(L, sizeof(void *) * ((size_t)n + 1), 0);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    size_t len;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "save: %s names must be strings, got a %s key", what,
                 luaL_typename(L, -2));
    const char *k = lua_tolstring(L, -2, &len);
    if (strlen(k) != len)
      luaL_error(L, "save: %s name '%s...' contains a NUL byte", what, k);
    if (want_tensors) {
      mg_Tensor *t = mgl_test(L, -1);
      if (!t)
        luaL_error(L, "save: '%s' must be a tensor, got %s", k,
                   luaL_typename(L, -1));
      (*values)[i] = t;
    } else {
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "save: metadata value of '%s' must be a string, got %s", k,
                   luaL_typename(L, -1));
      const char *v = lua_tolstring(L, -1, &len);
      if (strlen(v) != len)
        luaL_error(L, "save: metadata value of '%s' contains a NUL byte", k);
      (*values)[i] = (void *)v;
    }
    (*keys)[i++] = k;
    lua_pop(L, 1);
  }
  return n;
}

static int f_save(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  if (!lua_istable(L, 2))
    return luaL_error(L, "save: expects a table of name = tensor as argument 2, "
                      "got %s", luaL_typename(L, 2));
  if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3))
    return luaL_error(L, "save: metadata (argument 3) must be a table of "
                      "strings, got %s", luaL_typename(L, 3));
  const char **names, **keys = NULL;
  void **tensors, **values = NULL;
  int n = collect(L, 2, "tensor", 1, &names, &tensors);
  int nmeta = lua_istable(L, 3) ? collect(L, 3, "metadata", 0, &keys, &values) : 0;
  lua_getfield(L, LUA_REGISTRYINDEX, FAIL_KEY);
  int64_t fail_after = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : -1;
  lua_pop(L, 1);
  if (fail_after >= 0) { /* one save only */
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, FAIL_KEY);
  }
  MGL_TRY(L, ctx, mg_safetensors_save(ctx, path, n, names,
                                      (mg_Tensor *const *)tensors, nmeta, keys,
                                      (const char *const *)values, fail_after));
  return 0;
}

static int f_fail_after(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_pushnil(L);
  else {
    int64_t n = mgl_checkint(L, 1, "_safetensors_fail_after", "nbytes");
    if (n < 0) return luaL_error(L, "_safetensors_fail_after: nbytes must be >= 0");
    lua_pushinteger(L, (lua_Integer)n);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, FAIL_KEY);
  return 0;
}

/* ---- mg.load ---------------------------------------------------------------- */

static int loadbox_gc(lua_State *L) {
  mg_safetensors_free(luaL_checkudata(L, 1, MGL_LOADBOX));
  return 0;
}

/* mg.load(path) -> tensors; mg.load(path, {metadata = true}) -> tensors,
 * metadata. One result by default, so net:load_state_dict(mg.load(path))
 * works for every file, including ones with metadata. */
static int f_load(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *path = luaL_checkstring(L, 1);
  static const char *const known[] = {"metadata", NULL};
  mgl_check_options(L, 2, known, "load");
  int want_meta = mgl_optbool_field(L, 2, "metadata", 0, "load");
  lua_settop(L, 1);
  /* Handle before resource: the box frees whatever a Lua error leaves. */
  mg_SafeTensors *box = lua_newuserdatauv(L, sizeof *box, 0);
  memset(box, 0, sizeof *box);
  if (luaL_newmetatable(L, MGL_LOADBOX)) {
    lua_pushcfunction(L, loadbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  MGL_TRY(L, ctx, mg_safetensors_load(ctx, box, path));
  lua_createtable(L, 0, box->n);
  for (int i = 0; i < box->n; i++) {
    mg_Tensor **slot = mgl_slot(L);
    *slot = box->tensors[i];
    box->tensors[i] = NULL;
    lua_setfield(L, -2, box->names[i]);
  }
  lua_createtable(L, 0, box->nmeta);
  for (int i = 0; i < box->nmeta; i++) {
    lua_pushstring(L, box->meta_values[i]);
    lua_setfield(L, -2, box->meta_keys[i]);
  }
  mg_safetensors_free(box);
  if (!want_meta) lua_pop(L, 1);
  return want_meta ? 2 : 1;
}

const luaL_Reg mgl_safetensors_functions[] = {
    {"save", f_save},
    {"load", f_load},
    {"_safetensors_fail_after", f_fail_after},
    {NULL, NULL}};
