/*
 * lua_complete.c — the names Tab completes, for the REPL, the Jupyter
 * kernel and an attached session (moongrad.attach), which all list them
 * the same way: keywords and a root table's names, or the fields of a
 * dotted expression, following metatables' __index tables and the tensor
 * binding's __methods list.
 */
#include <ctype.h>
#include <string.h>

#include "lua_bind.h"

static const char *const keywords[] = {
    "and",   "break", "do",     "else", "elseif", "end",   "false",
    "for",   "function", "goto", "if",  "in",     "local", "nil",
    "not",   "or",    "repeat", "return", "then", "true",  "until",
    "while", NULL};

static int is_keyword(const char *s) {
  int i;
  for (i = 0; keywords[i] != NULL; i++)
    if (strcmp(s, keywords[i]) == 0) return 1;
  return 0;
}

static int is_name_char(int c) { return isalnum(c) || c == '_'; }

int mgl_is_name(const char *s) {
  if (!(isalpha((unsigned char)*s) || *s == '_')) return 0;
  for (; *s; s++)
    if (!is_name_char((unsigned char)*s)) return 0;
  return 1;
}

/* Adds string keys of the table at tbl that start with prefix to the
 * result table at out (name -> "f" function, "t" table, "v" other); the
 * first one seen wins. [-0, +0, m] */
static void add_keys(lua_State *L, int tbl, int out, const char *prefix,
                     int functions_only) {
  size_t plen = strlen(prefix);
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -2);
      int t = lua_type(L, -1);
      if (strncmp(k, prefix, plen) == 0 && mgl_is_name(k) && !is_keyword(k) &&
          (!functions_only || t == LUA_TFUNCTION)) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, out) == LUA_TNIL) {
          lua_pushvalue(L, -3);
          lua_pushstring(L, t == LUA_TFUNCTION ? "f"
                            : t == LUA_TTABLE  ? "t"
                                               : "v");
          lua_rawset(L, out);
        }
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
}

/* Adds the fields of the value at obj: its own keys when it is a table,
 * then what its metatable offers: an __index table (followed a few levels,
 * which covers class hierarchies and cycles) and a __methods table (the
 * tensor binding's list of methods, whose __index is a function). */
static void add_fields(lua_State *L, int obj, int out, const char *prefix,
                       int functions_only, int depth) {
  obj = lua_absindex(L, obj);
  if (lua_type(L, obj) == LUA_TTABLE)
    add_keys(L, obj, out, prefix, functions_only);
  if (depth > 8 || !lua_getmetatable(L, obj)) return;
  lua_pushliteral(L, "__index");
  if (lua_rawget(L, -2) == LUA_TTABLE)
    add_fields(L, -1, out, prefix, functions_only, depth + 1);
  lua_pop(L, 1);
  lua_pushliteral(L, "__methods");
  if (lua_rawget(L, -2) == LUA_TTABLE)
    add_keys(L, lua_absindex(L, -1), out, prefix, functions_only);
  lua_pop(L, 2);
}

/* mgl_candidates(expr, sep, prefix [, root]) -> table of candidates. With
 * expr nil: the keywords and root's names (root's __index tables followed);
 * otherwise expr ("mg" or "mg.nn") is walked from root with ordinary
 * indexing (so lazy fields appear as they would when typed) and its fields
 * are listed; sep ":" keeps functions only. root defaults to the globals.
 * Runs under lua_pcall: an error just means no candidates. */
int mgl_candidates(lua_State *L) {
  const char *expr = lua_tostring(L, 1);
  const char *sep = luaL_checkstring(L, 2);
  const char *prefix = luaL_checkstring(L, 3);
  int out;
  if (lua_isnoneornil(L, 4)) {
    lua_settop(L, 3);
    lua_pushglobaltable(L);
  }
  lua_settop(L, 4);
  lua_newtable(L);
  out = lua_gettop(L);
  lua_pushvalue(L, 4);
  if (expr == NULL) {
    size_t plen = strlen(prefix);
    int i;
    for (i = 0; keywords[i] != NULL; i++) {
      if (strncmp(keywords[i], prefix, plen) != 0) continue;
      lua_pushstring(L, "k");
      lua_setfield(L, out, keywords[i]);
    }
    add_fields(L, -1, out, prefix, 0, 0);
  } else {
    const char *p = expr;
    while (*p) {
      const char *dot = strchr(p, '.');
      size_t len = dot ? (size_t)(dot - p) : strlen(p);
      int t = lua_type(L, -1);
      if (t != LUA_TTABLE && t != LUA_TUSERDATA && t != LUA_TSTRING)
        return 0; /* nothing to index: no candidates */
      lua_pushlstring(L, p, len);
      lua_gettable(L, -2);
      lua_remove(L, -2);
      p += len + (dot != NULL);
    }
    add_fields(L, -1, out, prefix, *sep == ':', 0);
  }
  lua_settop(L, out);
  return 1;
}

const luaL_Reg mgl_complete_functions[] = {{"_candidates", mgl_candidates}, {NULL, NULL}};
