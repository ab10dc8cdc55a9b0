/*
 * api.c — the embedding API of moongrad.h: states with a memory budget,
 * protected calls, tensors from host buffers, and how a state finds the Lua
 * library (shared with the moongrad executable, main.c).
 *
 * Every public function does its work in a C function run by lua_pcall
 * (call_protected), so a Lua error -- out-of-memory included -- comes back
 * as a status and a message kept in the state's ApiState, a userdata in the
 * registry whose fixed buffer needs no allocation to fill.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lua_bind.h"
#include "mg_internal.h"
#include "moongrad.h"

/* make install passes the installed library's directory. */
#ifndef MOONGRAD_LUA_DIR
#define MOONGRAD_LUA_DIR "/usr/local/share/lua/5.4"
#endif

_Static_assert(MOONGRAD_FLOAT32 == (int)MG_F32 && MOONGRAD_FLOAT64 == (int)MG_F64 &&
               MOONGRAD_INT64 == (int)MG_I64 && MOONGRAD_UINT8 == (int)MG_U8 &&
               MOONGRAD_FLOAT16 == (int)MG_F16 && MOONGRAD_BFLOAT16 == (int)MG_BF16 &&
               MOONGRAD_INT32 == (int)MG_I32 && MOONGRAD_INT16 == (int)MG_I16 &&
               MOONGRAD_INT8 == (int)MG_I8 && MOONGRAD_BOOL == (int)MG_BOOL &&
               MG_NDTYPES == 10,
               "moongrad_DType mirrors mg_DType");
_Static_assert(MOONGRAD_MAXDIM == MG_MAXDIM, "MOONGRAD_MAXDIM mirrors MG_MAXDIM");

/* Registry keys (their addresses). */
static const char api_key = 0;     /* the ApiState userdata */
static const char lua_dir_key = 0; /* moongrad_set_lua_dir's directory */

/* What the API keeps per state, beside the module's own context. */
typedef struct {
  char err[4096]; /* moongrad_last_error */
} ApiState;

/* The allocator of a state made by moongrad_new: counts Lua's heap and
 * refuses to grow it past the budget it shares with the tensors.
 *
 * Tensors are freed by finalizers, which Lua's emergency collection (run
 * when an allocation fails) does not call: garbage tensors that fill the
 * budget would make every allocation fail, collectgarbage() included. So
 * once a call that met the budget has unwound -- an API call, or pcall and
 * xpcall in the state -- a full collection runs (reclaim), as it does
 * inside a tensor allocation that failed (heap_reclaim). During both, Lua's
 * heap may grow by HEAP_RESERVE whatever the budget says, for the calls of
 * the finalizers themselves. */
typedef struct {
  size_t bytes;      /* Lua's heap */
  size_t budget;     /* used until ctx is attached; then ctx's limit */
  mg_Context *ctx;   /* the state's moongrad context (a reference), or NULL */
  int refused;       /* an allocation was refused for the budget */
  size_t reserve_to; /* while reclaim runs: Lua's heap may grow to this */
} Heap;

/* What a reclaiming collection may take past the budget: a finalizer
 * runs as a Lua call (a call frame, stack room), and one that cannot run
 * leaves its tensor counted until the state is closed. */
#define HEAP_RESERVE ((size_t)1 << 20)

static void *heap_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  Heap *h = ud;
  size_t old = ptr ? osize : 0; /* with ptr NULL, osize is an object type */
  if (nsize == 0) {
    free(ptr);
    h->bytes -= old;
    return NULL;
  }
  if (nsize > old) {
    size_t limit = h->ctx ? h->ctx->mem.limit_bytes : h->budget;
    size_t tensors = h->ctx ? h->ctx->mem.live_bytes : 0;
    size_t cached = h->ctx ? h->ctx->mem.cached_bytes : 0;
    size_t want = h->bytes - old + nsize + tensors;
    if (limit && want + cached > limit && cached) mg_empty_cache(h->ctx);
    if (limit && want > limit && h->bytes - old + nsize > h->reserve_to) {
      h->refused = 1;
      return NULL;
    }
  }
  void *p = realloc(ptr, nsize);
  if (p) h->bytes = h->bytes - old + nsize;
  return p;
}

/* The Heap of a state made by moongrad_new, else NULL. */
static Heap *state_heap(lua_State *L) {
  void *ud;
  return lua_getallocf(L, &ud) == heap_alloc ? ud : NULL;
}

/* The context's reclaim function in a state from moongrad_new: the
 * binding's (a full collection inside a tensor allocation that failed),
 * with the heap's reserve. */
static void heap_reclaim(mg_Context *ctx, void *L) {
  Heap *h = state_heap(L);
  size_t was = h ? h->reserve_to : 0;
  if (h && !was) h->reserve_to = h->bytes + HEAP_RESERVE;
  mgl_reclaim(ctx, L);
  if (h) h->reserve_to = was;
}

/* A full collection, finalizers included (they free the tensors), and an
 * empty buffer cache; h and ctx may be NULL. Raises nothing: lua_gc runs
 * finalizers protected. */
static void reclaim(lua_State *L, Heap *h, mg_Context *ctx) {
  size_t was = h ? h->reserve_to : 0; /* a finalizer's pcall may come here */
  if (h && !was) h->reserve_to = h->bytes + HEAP_RESERVE;
  lua_gc(L, LUA_GCCOLLECT);
  if (h) {
    h->reserve_to = was;
    h->refused = 0;
  }
  if (ctx) mg_empty_cache(ctx);
}

static ApiState *api_state(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &api_key);
  ApiState *a = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return a;
}

/* [-0, +0, m] */
static int make_api_state(lua_State *L) {
  if (api_state(L)) return 0;
  ApiState *a = lua_newuserdatauv(L, sizeof *a, 0);
  a->err[0] = '\0';
  lua_rawsetp(L, LUA_REGISTRYINDEX, &api_key);
  return 0;
}

/* The message for a Lua allocation the budget refused. */
static void budget_message(char *buf, size_t n, Heap *h) {
  snprintf(buf, n, "not enough memory: Lua's heap would pass the state's "
           "budget of %zu bytes (Lua holds %zu, tensors %zu)",
           h->ctx ? h->ctx->mem.limit_bytes : h->budget, h->bytes,
           h->ctx ? h->ctx->mem.live_bytes : (size_t)0);
}

static int to_status(int lua_status) {
  switch (lua_status) {
  case LUA_OK: return MOONGRAD_OK;
  case LUA_ERRMEM: return MOONGRAD_ENOMEM;
  case LUA_ERRSYNTAX: return MOONGRAD_ESYNTAX;
  case LUA_ERRFILE: return MOONGRAD_EFILE;
  default: return MOONGRAD_ERROR;
  }
}

/* Records a failure whose error object is on top of the stack, pops it and
 * returns the moongrad status for lua_status. Allocates nothing, and
 * reclaims memory if the budget was met. */
static int record_error(lua_State *L, int lua_status) {
  ApiState *a = api_state(L);
  Heap *h = state_heap(L);
  if (a) {
    if (lua_status == LUA_ERRMEM && h && h->refused)
      budget_message(a->err, sizeof a->err, h);
    else if (lua_type(L, -1) == LUA_TSTRING)
      snprintf(a->err, sizeof a->err, "%s", lua_tostring(L, -1));
    else
      snprintf(a->err, sizeof a->err, "(error object is a %s value)",
               luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  if (h && h->refused) reclaim(L, h, h->ctx);
  return to_status(lua_status);
}

/* Message handler: the message (or the __tostring of an error object) with
 * a traceback. */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Gets a state ready for an API call: stack room and the ApiState, and
 * memory reclaimed if the budget was met since the last API call (in the
 * host's own lua_pcall, say). */
static int begin(lua_State *L) {
  Heap *h = state_heap(L);
  if (h && h->refused) reclaim(L, h, h->ctx);
  if (!lua_checkstack(L, 8)) return MOONGRAD_ENOMEM;
  if (api_state(L)) return MOONGRAD_OK;
  lua_pushcfunction(L, make_api_state);
  int st = lua_pcall(L, 0, 0, 0);
  if (st != LUA_OK) lua_pop(L, 1);
  return to_status(st);
}

/* Runs the function below nargs arguments on top of the stack under
 * lua_pcall with the traceback handler; see moongrad_pcall. */
static int call_protected(lua_State *L, int nargs, int nresults) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int st = lua_pcall(L, nargs, nresults, base);
  lua_remove(L, base);
  return st == LUA_OK ? MOONGRAD_OK : record_error(L, st);
}

/* Runs fn(arg) protected, with results dropped. */
static int run(lua_State *L, lua_CFunction fn, void *arg) {
  int st = begin(L);
  if (st) return st;
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, arg);
  return call_protected(L, 1, 0);
}

const char *moongrad_status_string(int status) {
  static const char *const names[] = {"ok", "error", "not enough memory",
                                      "syntax error", "file error"};
  if (status < 0 || status > MOONGRAD_EFILE) return "unknown status";
  return names[status];
}

const char *moongrad_last_error(lua_State *L) {
  ApiState *a = L && lua_checkstack(L, 1) ? api_state(L) : NULL;
  return a ? a->err : "";
}

/* ---- finding the Lua library ---------------------------------------------- */

/* Pushes dir..sub and returns 1 if it holds moongrad/init.lua. */
static int found_lua_dir(lua_State *L, const char *dir, const char *sub) {
  char probe[PATH_MAX + 64];
  snprintf(probe, sizeof probe, "%s%s/moongrad/init.lua", dir, sub);
  if (access(probe, R_OK) != 0) return 0;
  lua_pushfstring(L, "%s%s", dir, sub);
  return 1;
}

/* Pushes the directory of the Lua library, in the order moongrad.h lists. */
static void push_lua_dir(lua_State *L) {
  char dir[PATH_MAX];
  const char *env = getenv("MOONGRAD_LUA_DIR");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &lua_dir_key) == LUA_TSTRING) return;
  lua_pop(L, 1);
  if (env && *env) {
    lua_pushstring(L, env);
    return;
  }
  ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
  char *slash = n > 0 ? (dir[n] = '\0', strrchr(dir, '/')) : NULL;
  if (slash) *slash = '\0'; /* dir is the executable's directory */
  /* Its parent, grandparent, ...: a checkout (build/moongrad,
   * build/examples/host) or an installation (<prefix>/bin/moongrad). */
  for (int up = 0; slash && up < 3; up++) {
    if (!(slash = strrchr(dir, '/'))) break;
    *slash = '\0';
    if (found_lua_dir(L, dir, "/lua")) return;
    if (up == 0 && found_lua_dir(L, dir, "/share/lua/5.4")) return;
  }
  /* The shared library's own place: <prefix>/lib/libmoongrad.so.0 (or
   * <prefix>/lib/<multiarch>/...) has the Lua library in
   * <prefix>/share/lua/5.4, wherever the host program lives, so an
   * installed tree works from any prefix it is copied to. */
  Dl_info info;
  if (dladdr((void *)push_lua_dir, &info) && info.dli_fname &&
      strlen(info.dli_fname) < sizeof dir) {
    strcpy(dir, info.dli_fname);
    for (int up = 0; up < 3 && (slash = strrchr(dir, '/')); up++) {
      *slash = '\0';
      if (up > 0 && found_lua_dir(L, dir, "/share/lua/5.4")) return;
    }
  }
  lua_pushliteral(L, MOONGRAD_LUA_DIR);
}

/* [-1, +0, e] Puts the directory on top of the stack first on package.path.
 * The library's own directory comes before LUA_PATH's, because the Lua
 * library must match the core it is linked with. */
static void prepend_path(lua_State *L) {
  if (lua_getglobal(L, "package") != LUA_TTABLE)
    luaL_error(L, "moongrad: the package library is not open "
               "(open the standard libraries first: luaL_openlibs)");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", lua_tostring(L, -3),
                  lua_tostring(L, -3), luaL_optstring(L, -1, ""));
  lua_setfield(L, -3, "path");
  lua_pop(L, 3);
}

/* [-0, +0, e] Registers the linked core as moongrad.core and puts the Lua
 * library's directory first on package.path (lua_bind.h). */
void mgl_preload(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_moongrad_core);
  lua_setfield(L, -2, "moongrad.core");
  lua_pop(L, 1);
  push_lua_dir(L);
  prepend_path(L);
}

int luaopen_moongrad(lua_State *L) {
  make_api_state(L);
  mgl_preload(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad");
  lua_call(L, 1, 1);
  return 1;
}

static int open_body(lua_State *L) {
  luaL_requiref(L, "moongrad", luaopen_moongrad, 0);
  return 0;
}

int moongrad_open(lua_State *L) { return run(L, open_body, NULL); }

static int set_lua_dir_body(lua_State *L) {
  const char *dir = lua_touserdata(L, 1);
  lua_pushstring(L, dir);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &lua_dir_key);
  if (lua_getglobal(L, "package") == LUA_TTABLE) {
    lua_pushstring(L, dir);
    prepend_path(L);
  }
  return 0;
}

int moongrad_set_lua_dir(lua_State *L, const char *dir) {
  return run(L, set_lua_dir_body, (void *)dir);
}

/* ---- states ------------------------------------------------------------------ */

static mg_Context *check_ctx(lua_State *L) {
  mg_Context *ctx = mgl_state_ctx(L);
  if (!ctx)
    luaL_error(L, "moongrad is not open in this state "
               "(call moongrad_open or luaopen_moongrad first)");
  return ctx;
}

/* pcall and xpcall of a budgeted state: as Lua's, except that a Lua
 * allocation the budget refused reports the budget, and that the failed
 * call's garbage is then reclaimed (see Heap), so the code after the pcall
 * can go on. The message is pushed after that; if even that fails, Lua's
 * own "not enough memory" stays. */
static int push_cstring(lua_State *L) {
  lua_pushstring(L, lua_touserdata(L, 1));
  return 1;
}

static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
  if (status == LUA_OK || status == LUA_YIELD)
    return lua_gettop(L) - (int)extra;
  lua_pushboolean(L, 0);
  lua_rotate(L, -2, 1); /* false, message */
  Heap *h = state_heap(L);
  if (h && h->refused) {
    char buf[256];
    budget_message(buf, sizeof buf, h); /* the numbers when it failed */
    reclaim(L, h, h->ctx);
    if (status == LUA_ERRMEM) {
      lua_pushcfunction(L, push_cstring);
      lua_pushlightuserdata(L, buf);
      if (lua_pcall(L, 1, 1, 0) == LUA_OK) lua_replace(L, -2);
      else lua_pop(L, 1);
    }
  }
  return 2;
}

static int budget_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1); /* the first result when the call succeeds */
  lua_insert(L, 1);
  return finish_pcall(L, lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0,
                                    finish_pcall), 0);
}

static int budget_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2); /* f, handler, true, f, args... */
  return finish_pcall(L, lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2,
                                    finish_pcall), 2);
}

typedef struct {
  const moongrad_Options *o;
  Heap *heap;
} NewArgs;

static int new_body(lua_State *L) {
  NewArgs *a = lua_touserdata(L, 1);
  make_api_state(L);
  luaL_openlibs(L);
  if (a->o && a->o->lua_dir) {
    lua_pushstring(L, a->o->lua_dir);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &lua_dir_key);
  }
  /* Before any module can keep its own reference to the base ones. */
  lua_pushcfunction(L, budget_pcall);
  lua_setglobal(L, "pcall");
  lua_pushcfunction(L, budget_xpcall);
  lua_setglobal(L, "xpcall");
  luaL_requiref(L, "moongrad", luaopen_moongrad, 0);
  mg_Context *ctx = check_ctx(L);
  if (a->o && a->o->num_threads > 0) mg_set_num_threads(ctx, a->o->num_threads);
  mg_set_memory_limit(ctx, a->heap->budget);
  mg_share_memory_limit(ctx, &a->heap->bytes);
  mg_set_reclaim(ctx, heap_reclaim);
  mg_context_incref(ctx); /* kept until after lua_close: the allocator reads it */
  a->heap->ctx = ctx;
  return 0;
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "moongrad: unprotected error in a Lua call: %s\n",
          msg ? msg : "(not a string)");
  return 0;
}

lua_State *moongrad_new(const moongrad_Options *o) {
  Heap *h = calloc(1, sizeof *h);
  lua_State *L = h ? lua_newstate(heap_alloc, h) : NULL;
  if (!L) {
    free(h);
    if (o && o->error && o->error_size)
      snprintf(o->error, o->error_size, "not enough memory for a Lua state");
    return NULL;
  }
  lua_atpanic(L, panic);
  h->budget = o ? o->memory_budget : 0;
  NewArgs args = {o, h};
  if (run(L, new_body, &args) != MOONGRAD_OK) {
    if (o && o->error && o->error_size)
      snprintf(o->error, o->error_size, "%s", moongrad_last_error(L));
    moongrad_close(L);
    return NULL;
  }
  return L;
}

void moongrad_close(lua_State *L) {
  if (!L) return;
  Heap *h = state_heap(L);
  lua_close(L);
  if (!h) return;
  if (h->ctx) {
    mg_share_memory_limit(h->ctx, NULL);
    mg_context_decref(h->ctx);
  }
  free(h);
}

static int set_budget_body(lua_State *L) {
  mg_Context *ctx = check_ctx(L);
  size_t bytes = *(size_t *)lua_touserdata(L, 1);
  Heap *h = state_heap(L);
  mg_MemoryStats m;
  mg_memory_stats(ctx, &m);
  /* Garbage tensors past a lower budget would fail the state's next
   * allocations: they go first. */
  if (bytes && (!m.limit_bytes || bytes < m.limit_bytes)) reclaim(L, h, ctx);
  if (h) h->budget = bytes;
  mg_set_memory_limit(ctx, bytes);
  return 0;
}

int moongrad_set_memory_budget(lua_State *L, size_t bytes) {
  return run(L, set_budget_body, &bytes);
}

/* ---- running Lua code -------------------------------------------------------- */

typedef struct {
  const char *path, *code, *chunkname;
  int load_status; /* luaL_loadfile's or luaL_loadbuffer's */
} LoadArgs;

/* Loads the chunk and, if it compiled, calls it; a load failure is returned
 * (with its message) rather than raised, to keep its status. */
static int do_body(lua_State *L) {
  LoadArgs *a = lua_touserdata(L, 1);
  a->load_status = a->path ? luaL_loadfile(L, a->path)
                           : luaL_loadbuffer(L, a->code, strlen(a->code),
                                             a->chunkname ? a->chunkname : a->code);
  if (a->load_status != LUA_OK) return 1;
  lua_call(L, 0, 0);
  return 0;
}

static int run_chunk(lua_State *L, LoadArgs *a) {
  int st = begin(L);
  if (st) return st;
  lua_pushcfunction(L, do_body);
  lua_pushlightuserdata(L, a);
  a->load_status = LUA_OK;
  st = call_protected(L, 1, 1);
  if (st) return st;
  if (a->load_status != LUA_OK) return record_error(L, a->load_status);
  lua_pop(L, 1);
  return MOONGRAD_OK;
}

int moongrad_dofile(lua_State *L, const char *path) {
  LoadArgs a = {path ? path : "", NULL, NULL, 0};
  return run_chunk(L, &a);
}

int moongrad_dostring(lua_State *L, const char *code, const char *chunkname) {
  LoadArgs a = {NULL, code ? code : "", chunkname, 0};
  return run_chunk(L, &a);
}

int moongrad_pcall(lua_State *L, int nargs, int nresults) {
  if (nargs < 0 || lua_gettop(L) < nargs + 1 || !lua_checkstack(L, 8)) {
    ApiState *a = lua_checkstack(L, 1) ? api_state(L) : NULL;
    if (a) snprintf(a->err, sizeof a->err, "moongrad_pcall: %s",
                    nargs < 0 || lua_gettop(L) < nargs + 1
                        ? "fewer values on the stack than nargs + 1"
                        : "no room on the Lua stack");
    return MOONGRAD_ERROR;
  }
  int st = begin(L);
  if (st) {
    lua_pop(L, nargs + 1);
    return st;
  }
  return call_protected(L, nargs, nresults);
}

/* ---- tensors ------------------------------------------------------------------ */

typedef struct {
  int dtype, ndim;
  const int64_t *shape;
  void *data;
  moongrad_Release release;
  void *ud;
  int taken;      /* borrowed: the buffer now belongs to a tensor */
} PushArgs;

static void check_dtype_ndim(lua_State *L, const char *fn, PushArgs *a) {
  if (a->dtype < 0 || a->dtype >= MG_NDTYPES)
    luaL_error(L, "%s: unknown dtype %d", fn, a->dtype);
  if (a->ndim < 0 || a->ndim > MG_MAXDIM || (a->ndim > 0 && !a->shape))
    luaL_error(L, "%s: %d dimensions (at most %d, with a shape array)", fn,
               a->ndim, MG_MAXDIM);
}

static int push_copy_body(lua_State *L) {
  PushArgs *a = lua_touserdata(L, 1);
  mg_Context *ctx = check_ctx(L);
  check_dtype_ndim(L, "moongrad_push_tensor", a);
  mg_Tensor **slot = mgl_slot(L);
  MGL_TRY(L, ctx, mg_empty(ctx, slot, (mg_DType)a->dtype, a->ndim, a->shape));
  size_t n = (size_t)mg_numel(*slot) * mg_dtype_size((mg_DType)a->dtype);
  if (n > 0) {
    if (!a->data)
      luaL_error(L, "moongrad_push_tensor: data is NULL for a tensor of %I "
                 "elements", (lua_Integer)mg_numel(*slot));
    memcpy(mg_data(*slot), a->data, n);
  }
  return 1;
}

static int push_borrowed_body(lua_State *L) {
  static const char fn[] = "moongrad_push_tensor_borrowed";
  PushArgs *a = lua_touserdata(L, 1);
  mg_Context *ctx = check_ctx(L);
  check_dtype_ndim(L, fn, a);
  if (!a->data) {
    if (mg_check_shape(ctx, fn, a->ndim, a->shape) != MG_OK) mgl_raise(L, ctx);
    int64_t n = 1;
    for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
    if (n > 0)
      luaL_error(L, "%s: data is NULL for a tensor of %I elements", fn, (lua_Integer)n);
  }
  mg_Tensor **slot = mgl_slot(L);
  a->taken = 1; /* from here on mg_from_buffer releases it on failure */
  if (mg_from_buffer(ctx, slot, (mg_DType)a->dtype, a->ndim, a->shape,
                     a->data, a->release, a->ud) != MG_OK)
    mgl_raise(L, ctx);
  return 1;
}

static int push(lua_State *L, lua_CFunction body, PushArgs *a) {
  int st = begin(L);
  if (st == MOONGRAD_OK) {
    lua_pushcfunction(L, body);
    lua_pushlightuserdata(L, a);
    st = call_protected(L, 1, 1);
  }
  return st;
}

int moongrad_push_tensor(lua_State *L, moongrad_DType dtype, int ndim,
                         const int64_t *shape, const void *data) {
  PushArgs a = {(int)dtype, ndim, shape, (void *)data, NULL, NULL, 0};
  return push(L, push_copy_body, &a);
}

int moongrad_push_tensor_borrowed(lua_State *L, moongrad_DType dtype,
                                  int ndim, const int64_t *shape, void *data,
                                  moongrad_Release release, void *ud) {
  PushArgs a = {(int)dtype, ndim, shape, data, release, ud, 0};
  int st = push(L, push_borrowed_body, &a);
  if (!a.taken && release) release(data, ud);
  return st;
}

typedef struct {
  moongrad_TensorInfo *info;
  void *dst;
  size_t nbytes;
} InfoArgs;

static mg_Tensor *check_tensor(lua_State *L, const char *fn) {
  mg_Tensor *t = mgl_test_any(L, 2); /* storage dtypes go out as they came in */
  if (!t)
    luaL_error(L, "%s: expected a tensor, got a %s", fn, luaL_typename(L, 2));
  return t;
}

static int info_body(lua_State *L) {
  InfoArgs *a = lua_touserdata(L, 1);
  mg_Tensor *t = check_tensor(L, "moongrad_tensor_info");
  moongrad_TensorInfo *info = a->info;
  if (!info) luaL_error(L, "moongrad_tensor_info: info is NULL");
  info->dtype = (moongrad_DType)t->dtype;
  info->ndim = t->ndim;
  for (int d = 0; d < MOONGRAD_MAXDIM; d++)
    info->shape[d] = d < t->ndim ? t->shape[d] : 0;
  info->numel = mg_numel(t);
  info->nbytes = (size_t)info->numel * mg_dtype_size(t->dtype);
  info->contiguous = mg_is_contiguous(t);
  info->data = info->contiguous ? mg_data(t) : NULL;
  return 0;
}

static int copy_body(lua_State *L) {
  InfoArgs *a = lua_touserdata(L, 1);
  mg_Tensor *t = check_tensor(L, "moongrad_tensor_copy");
  mg_Context *ctx = check_ctx(L);
  size_t want = (size_t)mg_numel(t) * mg_dtype_size(t->dtype);
  if (!a->dst && a->nbytes > 0)
    luaL_error(L, "moongrad_tensor_copy: dst is NULL (for %I bytes)",
               (lua_Integer)a->nbytes);
  if (a->nbytes != want)
    luaL_error(L, "moongrad_tensor_copy: the tensor has %I bytes, the "
               "buffer %I", (lua_Integer)want, (lua_Integer)a->nbytes);
  if (want == 0) return 0;
  mg_Tensor **slot = mgl_slot(L); /* a view of dst, freed with the userdata */
  if (mg_from_buffer(ctx, slot, t->dtype, t->ndim, t->shape, a->dst, NULL,
                     NULL) != MG_OK)
    mgl_raise(L, ctx);
  int grad = mg_set_grad_enabled(ctx, 0); /* a copy out records nothing */
  int st = mg_copy_(ctx, *slot, t);
  mg_set_grad_enabled(ctx, grad);
  if (st != MG_OK) mgl_raise(L, ctx);
  return 0;
}

static int tensor_call(lua_State *L, int idx, lua_CFunction body, InfoArgs *a) {
  int st = begin(L);
  if (st) return st;
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, body);
  lua_pushlightuserdata(L, a);
  lua_pushvalue(L, idx);
  return call_protected(L, 2, 0);
}

int moongrad_tensor_info(lua_State *L, int idx, moongrad_TensorInfo *info) {
  InfoArgs a = {info, NULL, 0};
  return tensor_call(L, idx, info_body, &a);
}

int moongrad_tensor_copy(lua_State *L, int idx, void *dst, size_t nbytes) {
  InfoArgs a = {NULL, dst, nbytes};
  return tensor_call(L, idx, copy_body, &a);
}
