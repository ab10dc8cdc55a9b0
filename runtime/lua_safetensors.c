/*
 * lua_safetensors.c — mg.save and mg.load (safetensors.c) from Lua, and
 * the file routine of io_file.c for moongrad's Lua modules.
 *
 *   mg.save(path, {name = tensor, ...} [, {key = "value", ...}])
 *   local tensors, metadata = mg.load(path)   -- metadata is {} when none
 *
 * A table of tensors may carry metadata in its metatable's __metadata
 * (strings): nn's state_dict() records there which variant of a module
 * saved it. mg.save writes it (argument 3 wins on a clash), and mg.load
 * puts the keys beginning "moongrad.state." back the same way, so
 * mg.save(p, net:state_dict()) and net:load_state_dict(mg.load(p)) keep
 * them without the user seeing them.
 *
 * For the Lua writers (HistoryLogger, plot, the tune study files), each
 * returning true, or nil and a message naming who and the path:
 *   mg._write_file(path, text, who)    -- whole, atomic (mg_file_write_whole)
 *   mg._append_file(path, text, who)   -- one append (mg_file_append)
 *   mg._read_file(path, who)           -- text, or nil when there is no file
 *
 * Testing hooks, for the next whole-file write (mg.save or _write_file) in
 * this Lua state only, then cleared (nil clears them too):
 *   mg._safetensors_fail_after(nbytes)  ENOSPC once nbytes are written, or
 *                                       at the fsync when the file is shorter
 *   mg._file_hooks{fail_after = n, stop_after = n, named = true}
 *                                       the same, a SIGSTOP after n bytes, a
 *                                       named temporary (see mg_FileHooks)
 * Specs use them to show that a failed or killed save leaves the previous
 * file intact and nothing behind.
 */
#include <stdlib.h>
#include <string.h>

#include "lua_bind.h"
#include "mg_file.h"
#include "mg_safetensors.h"

#define MGL_LOADBOX "moongrad.SafeTensorsLoad"
#define HOOKS_KEY "moongrad.file_hooks" /* registry: the testing hooks */
#define MGL_TEXTBOX "moongrad.FileText"  /* owns a text read by _read_file */

/* Argument arg as a path: a string with no NUL byte, which C would cut
 * the path at (mg.save("d/x\0y") wrote d/x). Returns NULL and pushes the
 * message when raise is 0; raises it otherwise. */
static const char *check_path(lua_State *L, int arg, const char *who,
                              int raise) {
  size_t len;
  const char *path = luaL_checklstring(L, arg, &len);
  if (strlen(path) == len) return path;
  lua_pushfstring(L, "%s: the path contains a NUL byte (after '%s')", who, path);
  if (raise) lua_error(L);
  return NULL;
}

/* The hooks set for the next write, cleared as they are taken. */
static void take_hooks(lua_State *L, mg_FileHooks *h) {
  h->fail_after = h->stop_after = -1;
  h->named = 0;
  if (lua_getfield(L, LUA_REGISTRYINDEX, HOOKS_KEY) == LUA_TTABLE) {
    if (lua_getfield(L, -1, "fail_after") == LUA_TNUMBER)
      h->fail_after = (int64_t)lua_tointeger(L, -1);
    if (lua_getfield(L, -2, "stop_after") == LUA_TNUMBER)
      h->stop_after = (int64_t)lua_tointeger(L, -1);
    lua_getfield(L, -3, "named");
    h->named = lua_toboolean(L, -1);
    lua_pop(L, 3);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, HOOKS_KEY);
  }
  lua_pop(L, 1);
}

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
      mg_Tensor *t = mgl_test_any(L, -1);
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

#define CARRIED_PREFIX "moongrad.state."

/* Argument 3 becomes a new table: the tensors' carried __metadata, then
 * argument 3's own entries over it. Nothing changes without a carried
 * table. */
static void merge_carried_metadata(lua_State *L) {
  lua_settop(L, 3);
  if (!lua_getmetatable(L, 2)) return;
  int carried = lua_getfield(L, -1, "__metadata") == LUA_TTABLE;
  lua_remove(L, -2);
  if (!carried) {
    lua_pop(L, 1);
    return;
  }
  lua_newtable(L);
  for (int from = 4; from >= 3; from--) {  /* the carried table, then arg 3 */
    if (from == 3 && !lua_istable(L, 3)) break;
    lua_pushnil(L);
    while (lua_next(L, from)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 5);
    }
  }
  lua_replace(L, 3);
  lua_settop(L, 3);
}

static int f_save(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *path = check_path(L, 1, "save", 1);
  if (!lua_istable(L, 2))
    return luaL_error(L, "save: expects a table of name = tensor as argument 2, "
                      "got %s", luaL_typename(L, 2));
  if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3))
    return luaL_error(L, "save: metadata (argument 3) must be a table of "
                      "strings, got %s", luaL_typename(L, 3));
  merge_carried_metadata(L);
  const char **names, **keys = NULL;
  void **tensors, **values = NULL;
  int n = collect(L, 2, "tensor", 1, &names, &tensors);
  int nmeta = lua_istable(L, 3) ? collect(L, 3, "metadata", 0, &keys, &values) : 0;
  mg_FileHooks hooks;
  take_hooks(L, &hooks);
  MGL_TRY(L, ctx, mg_safetensors_save(ctx, path, n, names,
                                      (mg_Tensor *const *)tensors, nmeta, keys,
                                      (const char *const *)values, &hooks));
  return 0;
}

static int f_fail_after(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_pushnil(L);
  else {
    int64_t n = mgl_checkint(L, 1, "_safetensors_fail_after", "nbytes");
    if (n < 0) return luaL_error(L, "_safetensors_fail_after: nbytes must be >= 0");
    lua_createtable(L, 0, 1);
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, -2, "fail_after");
  }
  lua_setfield(L, LUA_REGISTRYINDEX, HOOKS_KEY);
  return 0;
}

static int f_file_hooks(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, HOOKS_KEY);
  return 0;
}

/* ---- the Lua writers' file routine ------------------------------------------------ */

/* true, or nil and the message. */
static int file_result(lua_State *L, mg_Context *ctx, int st) {
  mgl_account(L, ctx);
  if (st == MG_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, mg_last_error(ctx));
  return 2;
}

/* nil, then the message on top of the stack. */
static int nil_and_message(lua_State *L) {
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* _write_file and _append_file: (path, text [, who]). */
static int write_or_append(lua_State *L, int append) {
  mg_Context *ctx = mgl_ctx(L);
  const char *who = luaL_optstring(L, 3, append ? "append_file" : "write_file");
  size_t len;
  const char *text = luaL_checklstring(L, 2, &len);
  const char *path = check_path(L, 1, who, 0);
  if (!path) return nil_and_message(L);
  if (append) return file_result(L, ctx, mg_file_append(ctx, who, path, text, len));
  mg_FileHooks hooks;
  take_hooks(L, &hooks);
  return file_result(L, ctx, mg_file_write_whole(ctx, who, path, text, len, &hooks));
}

static int f_write_file(lua_State *L) { return write_or_append(L, 0); }
static int f_append_file(lua_State *L) { return write_or_append(L, 1); }

static int textbox_gc(lua_State *L) {
  char **box = luaL_checkudata(L, 1, MGL_TEXTBOX);
  free(*box);
  *box = NULL;
  return 0;
}

/* text; nil when there is no file; nil and a message on failure. */
static int f_read_file(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *who = luaL_optstring(L, 2, "read_file");
  const char *path = check_path(L, 1, who, 0);
  if (!path) return nil_and_message(L);
  /* Handle before resource: pushing the text may raise (memory). */
  char **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  if (luaL_newmetatable(L, MGL_TEXTBOX)) {
    lua_pushcfunction(L, textbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  size_t len;
  int st = mg_file_read_whole(ctx, who, path, box, &len);
  if (st) return file_result(L, ctx, st);
  if (!*box) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, *box, len);
  free(*box);
  *box = NULL;
  return 1;
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
  const char *path = check_path(L, 1, "load", 1);
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
  int meta = lua_gettop(L), carried = 0;
  for (int i = 0; i < box->nmeta; i++) {
    lua_pushstring(L, box->meta_values[i]);
    lua_setfield(L, meta, box->meta_keys[i]);
    if (strncmp(box->meta_keys[i], CARRIED_PREFIX, sizeof CARRIED_PREFIX - 1) == 0) {
      if (!carried++) lua_newtable(L);
      lua_pushstring(L, box->meta_values[i]);
      lua_setfield(L, meta + 1, box->meta_keys[i]);
    }
  }
  if (carried) {  /* tensors, metadata, carried -> {__metadata = carried} */
    lua_createtable(L, 0, 1);
    lua_insert(L, -2);
    lua_setfield(L, -2, "__metadata");
    lua_setmetatable(L, meta - 1);
  }
  mg_safetensors_free(box);
  if (!want_meta) lua_pop(L, 1);
  return want_meta ? 2 : 1;
}

const luaL_Reg mgl_safetensors_functions[] = {
    {"save", f_save},
    {"load", f_load},
    {"_safetensors_fail_after", f_fail_after},
    {"_file_hooks", f_file_hooks},
    {"_write_file", f_write_file},
    {"_append_file", f_append_file},
    {"_read_file", f_read_file},
    {NULL, NULL}};
