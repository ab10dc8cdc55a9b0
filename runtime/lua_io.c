/*
 * lua_io.c — the dataset file readers (io_idx.c, io_csv.c) from Lua.
 *
 * Registered in the core module with a leading underscore (mg._read_idx,
 * mg._read_csv) and published by moongrad.data as data.read_idx and
 * data.read_csv, which take the same arguments.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_bind.h"
#include "mg_io.h"

/* The string option name of the options table at arg, or def. */
static const char *str_opt(lua_State *L, int arg, const char *name,
                           const char *def, const char *op) {
  if (lua_isnoneornil(L, arg)) return def;
  int t = lua_getfield(L, arg, name);
  const char *v = def;
  if (t == LUA_TSTRING) v = lua_tostring(L, -1); /* kept alive by the table */
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: option '%s' must be a string, got %s", op, name,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

static void check_path_and_options(lua_State *L, const char *op,
                                   const char *const *known) {
  if (lua_type(L, 1) != LUA_TSTRING)
    luaL_error(L, "%s: path must be a string, got %s", op,
               lua_isnone(L, 1) ? "nil" : luaL_typename(L, 1));
  if (!lua_isnoneornil(L, 2)) {
    if (!lua_istable(L, 2))
      luaL_error(L, "%s: options must be a table, got %s", op,
                 luaL_typename(L, 2));
    mgl_check_options(L, 2, known, op);
  }
}

/* mg._read_idx(path [, {dtype = ..., scale = 1}]) --> tensor */
static int f_read_idx(lua_State *L) {
  static const char *const known[] = {"dtype", "scale", NULL};
  mg_Context *ctx = mgl_ctx(L);
  check_path_and_options(L, "read_idx", known);
  mg_IdxOptions o = {.dtype = -1, .scale = 1};
  const char *dt = str_opt(L, 2, "dtype", NULL, "read_idx");
  if (dt && (o.dtype = mg_dtype_from_name(dt)) < 0)
    return luaL_error(L, "read_idx: unknown dtype '%s' (float32, float64, "
                      "int64 or uint8)", dt);
  if (!lua_isnoneornil(L, 2)) {
    int t = lua_getfield(L, 2, "scale");
    if (t == LUA_TNUMBER) o.scale = lua_tonumber(L, -1);
    else if (t != LUA_TNIL)
      return luaL_error(L, "read_idx: option 'scale' must be a number, got %s",
                        luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  const char *path = lua_tostring(L, 1);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_read_idx(ctx, out, path, &o));
  return 1;
}

/* mg._read_csv(path [, {header = nil|true|false, delimiter = ",",
 * dtype = "float32"}]) --> tensor [rows, cols], names table (or nil) */
static int f_read_csv(lua_State *L) {
  static const char *const known[] = {"header", "delimiter", "dtype", NULL};
  mg_Context *ctx = mgl_ctx(L);
  check_path_and_options(L, "read_csv", known);
  mg_CsvOptions o = {.header = -1, .delimiter = ',', .dtype = MG_F32};
  if (!lua_isnoneornil(L, 2)) {
    int t = lua_getfield(L, 2, "header");
    if (t == LUA_TBOOLEAN) o.header = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
      return luaL_error(L, "read_csv: option 'header' must be a boolean, got %s",
                        luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  const char *delim = str_opt(L, 2, "delimiter", ",", "read_csv");
  if (strlen(delim) != 1)
    return luaL_error(L, "read_csv: option 'delimiter' must be one character, "
                      "got \"%s\"", delim);
  o.delimiter = delim[0];
  const char *dt = str_opt(L, 2, "dtype", "float32", "read_csv");
  int dti = mg_dtype_from_name(dt);
  if (dti != MG_F32 && dti != MG_F64)
    return luaL_error(L, "read_csv: option 'dtype' must be \"float32\" or "
                      "\"float64\", got \"%s\"", dt);
  o.dtype = (mg_DType)dti;
  const char *path = lua_tostring(L, 1);
  char **names = NULL;
  int64_t ncols = 0;
  lua_createtable(L, 0, 0); /* made before the names exist: no leak below */
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_read_csv(ctx, out, &names, &ncols, path, &o));
  if (!names) {
    lua_pushnil(L);
    return 2;
  }
  /* Copy the names into the table made above; pushing a string can only
   * fail on memory exhaustion, where the block's few bytes are the least
   * of it. */
  lua_rotate(L, -2, 1); /* tensor, names table */
  for (int64_t j = 0; j < ncols; j++) {
    lua_pushstring(L, names[j]);
    lua_rawseti(L, -2, j + 1);
  }
  free(names);
  return 2;
}

const luaL_Reg mgl_io_functions[] = {
    {"_read_idx", f_read_idx},
    {"_read_csv", f_read_csv},
    {NULL, NULL}};
