/*
 * lua_image.c — images (io_image.c) and directory listings from Lua.
 *
 * Registered with a leading underscore; lua/moongrad/image.lua publishes
 * the image functions as mg.image, lua/moongrad/data/image_folder.lua walks
 * folders with _listdir.
 *
 *   mg._image_load(path [, {mode = "L"|"RGB"|"RGBA"}]) --> uint8 [C, H, W]
 *   mg._image_decode(bytes [, {mode = ..., name = "..."}])
 *   mg._image_info(path) --> {width =, height =, channels =, format =}
 *   mg._image_save(path, t)
 *   mg._image_set_max_pixels(n) --> the previous limit
 *   mg._image_max_pixels() --> the limit
 *   mg._listdir(path [, who]) --> names, kinds, id; or nil, message
 *
 * The pixel limit (width * height above it is refused; 0 for none) is
 * the Lua state's, kept in its registry.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua_bind.h"
#include "mg_image.h"

#define MGL_DIR "moongrad.Dir" /* an open directory, closed by __gc */

static const char max_pixels_key = 0; /* registry: the state's pixel limit */

static int64_t max_pixels(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &max_pixels_key);
  int ok;
  lua_Integer n = lua_tointegerx(L, -1, &ok);
  lua_pop(L, 1);
  return ok ? (int64_t)n : MG_IMAGE_MAX_PIXELS;
}

/* mg._image_set_max_pixels(n) --> the previous limit */
static int f_set_max_pixels(lua_State *L) {
  int ok;
  lua_Integer n = lua_tointegerx(L, 1, &ok);
  if (!ok || n < 0)
    return luaL_error(L, "image.set_max_pixels: expected an integer >= 0 (0: no "
                      "limit), got %s", lua_type(L, 1) == LUA_TNUMBER
                      ? lua_tostring(L, 1)
                      : lua_isnone(L, 1) ? "nil" : luaL_typename(L, 1));
  lua_pushinteger(L, max_pixels(L));
  lua_pushinteger(L, n);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &max_pixels_key);
  return 1;
}

/* mg._image_max_pixels() --> the limit */
static int f_max_pixels(lua_State *L) {
  lua_pushinteger(L, max_pixels(L));
  return 1;
}

/* Argument arg as a path: a string with no NUL byte (C would cut the path
 * at it). */
static const char *check_path(lua_State *L, int arg, const char *who) {
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_error(L, "%s: path must be a string, got %s", who,
               lua_isnone(L, arg) ? "nil" : luaL_typename(L, arg));
  size_t len;
  const char *path = lua_tolstring(L, arg, &len);
  if (strlen(path) != len)
    luaL_error(L, "%s: the path contains a NUL byte (after '%s')", who, path);
  return path;
}

/* The options at arg (a table or nil), with the state's limit. */
static mg_ImageOptions check_options(lua_State *L, int arg, const char *who,
                                     const char *const *known) {
  static const char *const modes[] = {"L", "RGB", "RGBA", NULL};
  mg_ImageOptions o = {MG_IMAGE_AUTO, MG_IMAGE_MAX_PIXELS};
  if (!lua_isnoneornil(L, arg)) {
    mgl_check_options(L, arg, known, who);
    int t = lua_getfield(L, arg, "mode");
    if (t != LUA_TNIL) {
      const char *m = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
      int k = 0;
      while (m && modes[k] && strcmp(modes[k], m)) k++;
      if (!m || !modes[k])
        luaL_error(L, "%s: option 'mode' must be \"L\", \"RGB\" or \"RGBA\", got %s",
                   who, m ? lua_pushfstring(L, "\"%s\"", m) : luaL_typename(L, -1));
      o.mode = (mg_ImageMode)(MG_IMAGE_L + k);
    }
    lua_pop(L, 1);
  }
  o.max_pixels = max_pixels(L);
  return o;
}

/* mg._image_load(path [, opts]) --> tensor */
static int f_load(lua_State *L) {
  static const char *const known[] = {"mode", NULL};
  mg_Context *ctx = mgl_ctx(L);
  const char *path = check_path(L, 1, "image.load");
  mg_ImageOptions o = check_options(L, 2, "image.load", known);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_load(ctx, out, "image.load", path, &o));
  return 1;
}

/* mg._image_decode(bytes [, opts]) --> tensor */
static int f_decode(lua_State *L) {
  static const char *const known[] = {"mode", "name", NULL};
  mg_Context *ctx = mgl_ctx(L);
  if (lua_type(L, 1) != LUA_TSTRING)
    return luaL_error(L, "image.decode: expected the image's bytes as a string, got %s",
                      lua_isnone(L, 1) ? "nil" : luaL_typename(L, 1));
  size_t n;
  const char *bytes = lua_tolstring(L, 1, &n);
  mg_ImageOptions o = check_options(L, 2, "image.decode", known);
  const char *name = "<bytes>";
  if (!lua_isnoneornil(L, 2)) {
    int t = lua_getfield(L, 2, "name");
    if (t == LUA_TSTRING) name = lua_tostring(L, -1); /* anchored by the table */
    else if (t != LUA_TNIL)
      return luaL_error(L, "image.decode: option 'name' must be a string, got %s",
                        luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_image_decode(ctx, out, "image.decode", name, bytes, n, &o));
  return 1;
}

/* mg._image_info(path) --> {width, height, channels, format} */
static int f_info(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *path = check_path(L, 1, "image.info");
  mg_ImageInfo info;
  MGL_TRY(L, ctx, mg_image_info(ctx, &info, "image.info", path));
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, info.width);
  lua_setfield(L, -2, "width");
  lua_pushinteger(L, info.height);
  lua_setfield(L, -2, "height");
  lua_pushinteger(L, info.channels);
  lua_setfield(L, -2, "channels");
  lua_pushstring(L, info.format);
  lua_setfield(L, -2, "format");
  return 1;
}

/* mg._image_save(path, t) */
/* mg._image_encode(img) -> the PNG's bytes as a string. */
static int f_encode(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_test_any(L, 1);
  if (!t)
    return luaL_error(L, "image.encode: expected a tensor [C, H, W] as argument 1, got %s",
                      luaL_typename(L, 1));
  char *png = NULL;
  size_t len = 0;
  MGL_TRY(L, ctx, mg_image_encode_png(ctx, "image.encode", t, &png, &len));
  lua_pushlstring(L, png, len); /* may raise: memory; png is then lost */
  free(png);
  return 1;
}

static int f_save(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  const char *path = check_path(L, 1, "image.save");
  mg_Tensor *t = mgl_test_any(L, 2);
  if (!t)
    return luaL_error(L, "image.save: expected a tensor [C, H, W] as argument 2, got %s",
                      luaL_typename(L, 2));
  MGL_TRY(L, ctx, mg_image_save(ctx, "image.save", path, t));
  return 0;
}

/* ---- directories ------------------------------------------------------------------ */

static int dir_gc(lua_State *L) {
  DIR **d = luaL_checkudata(L, 1, MGL_DIR);
  if (*d) closedir(*d);
  *d = NULL;
  return 0;
}

/* What an entry is, symbolic links followed (a dangling one is "other"),
 * as Python's DirEntry.is_dir() and os.walk(followlinks=True) see it. */
static const char *entry_kind(DIR *dir, const struct dirent *e) {
  struct stat sb;
  switch (e->d_type) {
  case DT_DIR: return "dir";
  case DT_REG: return "file";
  case DT_LNK:
  case DT_UNKNOWN:
    if (fstatat(dirfd(dir), e->d_name, &sb, 0) != 0) return "other";
    return S_ISDIR(sb.st_mode) ? "dir" : S_ISREG(sb.st_mode) ? "file" : "other";
  default: return "other";
  }
}

static int dir_failed(lua_State *L, const char *who, const char *path) {
  int e = errno;
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s: cannot read the directory: %s", who, path,
                  strerror(e));
  return 2;
}

typedef struct {
  const char *name;  /* anchored by the names table */
  const char *kind;  /* static */
} Entry;

static int entry_cmp(const void *a, const void *b) {
  return strcmp(((const Entry *)a)->name, ((const Entry *)b)->name);
}

/* mg._listdir(path [, who]) --> names, kinds, id: the entries of the
 * directory but "." and "..", sorted by bytes (strcmp, whatever the
 * locale), each one's kind ("file", "dir" or "other": symbolic links
 * followed), and the directory's identity "dev:inode" (a walk that
 * follows links uses it to visit each directory once). A directory that
 * cannot be read gives nil and "who: path: cannot read the directory:
 * <reason>", for the caller to raise where the user called it. */
static int f_listdir(lua_State *L) {
  const char *who = luaL_optstring(L, 2, "listdir");
  const char *path = check_path(L, 1, who);
  DIR **dp = lua_newuserdatauv(L, sizeof *dp, 0); /* handle before resource */
  *dp = NULL;
  if (luaL_newmetatable(L, MGL_DIR)) {
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  struct stat sb;
  if (!(*dp = opendir(path)) || fstat(dirfd(*dp), &sb) != 0)
    return dir_failed(L, who, path);
  lua_newtable(L); /* names, in readdir's order for now */
  int names = lua_gettop(L);
  lua_newtable(L); /* kinds */
  int kinds = lua_gettop(L);
  lua_Integer n = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(*dp);
    if (!e) {
      if (errno) return dir_failed(L, who, path);
      break;
    }
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, names, ++n);
    lua_pushstring(L, entry_kind(*dp, e));
    lua_rawseti(L, kinds, n);
  }
  closedir(*dp);
  *dp = NULL;
  /* Sort (name, kind) pairs in C; the strings stay in the tables. */
  Entry *es = lua_newuserdatauv(L, sizeof(Entry) * (size_t)(n ? n : 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, names, i);
    es[i - 1].name = lua_tostring(L, -1);
    lua_rawgeti(L, kinds, i);
    const char *k = lua_tostring(L, -1);
    es[i - 1].kind = k[0] == 'd' ? "dir" : k[0] == 'f' ? "file" : "other";
    lua_pop(L, 2);
  }
  qsort(es, (size_t)n, sizeof *es, entry_cmp);
  lua_createtable(L, (int)n, 0);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_pushstring(L, es[i - 1].name);
    lua_rawseti(L, -3, i);
    lua_pushstring(L, es[i - 1].kind);
    lua_rawseti(L, -2, i);
  }
  lua_pushfstring(L, "%I:%I", (lua_Integer)sb.st_dev, (lua_Integer)sb.st_ino);
  return 3;
}

const luaL_Reg mgl_image_functions[] = {
    {"_image_load", f_load},
    {"_image_decode", f_decode},
    {"_image_info", f_info},
    {"_image_save", f_save},
    {"_image_encode", f_encode},
    {"_image_set_max_pixels", f_set_max_pixels},
    {"_image_max_pixels", f_max_pixels},
    {"_listdir", f_listdir},
    {NULL, NULL}};
