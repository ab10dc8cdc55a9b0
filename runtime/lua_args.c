/*
 * lua_args.c — the binding's crossing, which every lua_*.c calls: the
 * state's context, the tensor userdata (push, test, check, release),
 * raising a core error under the called function's name, and checking Lua
 * arguments. Calls no other binding file.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "lua_bind.h"

/* ---- the userdata ---------------------------------------------------------- */

mg_Context *mgl_ctx(lua_State *L) {
  return *(mg_Context **)lua_touserdata(L, lua_upvalueindex(1));
}

/* The tensor metatable is also kept in the registry under a light userdata
 * key: found by pointer, where luaL_setmetatable and luaL_testudata intern
 * and compare its name on every call (5% of a small op). */
static const char tensor_mt_key = 0;

void mgl_register_tensor_mt(lua_State *L) {
  lua_rawsetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
}

mg_Tensor **mgl_slot(lua_State *L) {
  mg_Tensor **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = NULL;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
  lua_setmetatable(L, -2);
  return slot;
}

void mgl_push(lua_State *L, mg_Tensor *t) {
  /* The userdata allocation may raise; the tensor must not leak then. */
  mg_Tensor **slot = lua_newuserdatauv(L, sizeof *slot, 0);
  *slot = t;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
  lua_setmetatable(L, -2);
}

/* The slot of the tensor userdata at arg, or NULL if it is something else.
 * A binding function compares the metatable's address with its handle's;
 * a function without one (own_handle 0, or no upvalue) looks in the
 * registry. */
static mg_Tensor **tensor_slot(lua_State *L, int arg, int own_handle) {
  mg_Tensor **slot = lua_touserdata(L, arg);
  if (!slot || !lua_getmetatable(L, arg)) return NULL;
  const mgl_Handle *h = own_handle ? lua_touserdata(L, lua_upvalueindex(1)) : NULL;
  int same;
  if (h && h->tensor_mt) {
    same = lua_topointer(L, -1) == h->tensor_mt;
    lua_pop(L, 1);
  } else {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tensor_mt_key);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return same ? slot : NULL;
}

static void push_function_name(lua_State *L);

/* The tensor at arg, NULL if it is something else; raises for a closed one. */
static mg_Tensor *test_tensor(lua_State *L, int arg, int own_handle) {
  mg_Tensor **slot = tensor_slot(L, arg, own_handle);
  if (slot && !*slot) luaL_argerror(L, arg, "tensor was already closed");
  return slot ? *slot : NULL;
}

mg_Tensor *mgl_test_any(lua_State *L, int arg) { return test_tensor(L, arg, 1); }

mg_Tensor *mgl_check_any(lua_State *L, int arg) {
  mg_Tensor **slot = tensor_slot(L, arg, 1);
  if (!slot) luaL_checkudata(L, arg, MGL_TENSOR); /* raises the usual error */
  if (!*slot) luaL_argerror(L, arg, "tensor was already closed");
  return *slot;
}

/* Why a storage dtype is not computed on, and how to convert it. */
static const char *storage_reason(mg_DType dt) {
  switch (dt) {
  case MG_U8:
    return "uint8 tensors hold data (pixels, bytes) and are not computed on; "
           "convert with :float() (or :long()) first";
  case MG_F16:
  case MG_BF16:
    return "tensors are stored, not computed on; convert with :float() (or "
           ":double()) first";
  default: /* int32, int16, int8, bool */
    return "tensors are stored, not computed on; convert with :long() (or "
           ":float()) first";
  }
}

/* The storage dtypes are refused here, once, for every binding that
 * computes: its kernels know float32, float64 and int64 only. */
static mg_Tensor *refuse_storage(lua_State *L, mg_Tensor *t) {
  if (t && !mg_dtype_computes(t->dtype)) {
    const char *dn = t->dtype == MG_U8 ? "" : mg_dtype_name(t->dtype);
    const char *sp = t->dtype == MG_U8 ? "" : " ";
    push_function_name(L);
    if (!lua_isstring(L, -1))
      luaL_error(L, "%s%s%s", dn, sp, storage_reason(t->dtype));
    const char *fn = lua_tostring(L, -1);
    luaL_error(L, "%s: %s%s%s", fn + (fn[0] == '_' && fn[1]), dn, sp,
               storage_reason(t->dtype));
  }
  return t;
}

mg_Tensor *mgl_test(lua_State *L, int arg) {
  return refuse_storage(L, mgl_test_any(L, arg));
}

mg_Tensor *mgl_test_extern(lua_State *L, int arg) {
  return refuse_storage(L, test_tensor(L, arg, 0));
}

mg_Tensor *mgl_check(lua_State *L, int arg) {
  return refuse_storage(L, mgl_check_any(L, arg));
}

/* Does message m start with an op's name ("matmul: ...", "image.load: ...")? */
static int names_op(const char *m) {
  size_t k = strspn(m, "abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_#.");
  return k > 0 && m[k] == ':';
}

/* Pushes the name the running C function was called by: the method, field
 * or metamethod name, else its name in the module table; nil if unknown. */
static void push_function_name(lua_State *L) {
  lua_Debug ar;
  if (!lua_getstack(L, 0, &ar)) {
    lua_pushnil(L);
    return;
  }
  lua_getinfo(L, "nf", &ar); /* pushes the function */
  if (ar.name && ar.namewhat &&
      (strcmp(ar.namewhat, "method") == 0 || strcmp(ar.namewhat, "field") == 0 ||
       strcmp(ar.namewhat, "metamethod") == 0)) {
    lua_pop(L, 1);
    lua_pushstring(L, ar.name);
    return;
  }
  int fn = lua_gettop(L);
  lua_pushnil(L); /* the answer */
  if (luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) &&
      lua_getfield(L, -1, "moongrad.core") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_rawequal(L, -1, fn) && lua_type(L, -2) == LUA_TSTRING) {
        lua_pop(L, 1);
        lua_replace(L, fn + 1);
        break;
      }
      lua_pop(L, 1);
    }
  }
  lua_settop(L, fn + 1);
  lua_remove(L, fn);
}

/* Core messages name their op, except allocation failures deep in the core
 * ("not enough memory for a tensor of N bytes"), which are prefixed here
 * with the name of the Lua function that was called. */
int mgl_raise(lua_State *L, mg_Context *ctx) {
  const char *msg = mg_last_error(ctx);
  if (!names_op(msg)) {
    push_function_name(L);
    /* mg._conv2d is F.conv2d's binding: the user called conv2d. */
    if (lua_isstring(L, -1)) {
      const char *fn = lua_tostring(L, -1);
      return luaL_error(L, "%s: %s", fn + (fn[0] == '_' && fn[1]), msg);
    }
  }
  return luaL_error(L, "%s", msg);
}

/* Inside a core call, between its own steps: the collector may run any
 * finalizer, and each tensor the call uses is held by a reference of its
 * own (an argument on L's stack, a graph edge, a slot), never only by
 * garbage. The allocator empties the cache afterwards. */
void mgl_reclaim(mg_Context *ctx, void *L) {
  (void)ctx;
  lua_gc((lua_State *)L, LUA_GCCOLLECT);
}

/* Tensor bytes reach Lua's collector as debt, so that dead tensors are
 * found although the Lua heap itself hardly grows; mg_take_gc_debt says
 * when a step is due. */
void mgl_account(lua_State *L, mg_Context *ctx) {
  size_t debt = mg_take_gc_debt(ctx, (size_t)1 << 20);
  if (debt) lua_gc(L, LUA_GCSTEP, (int)(debt >> 10));
}

int mgl_tensor_gc(lua_State *L) {
  mg_Tensor **slot = tensor_slot(L, 1, 1);
  if (!slot) slot = luaL_checkudata(L, 1, MGL_TENSOR); /* raises */
  mg_tensor_decref(*slot);
  *slot = NULL;
  return 0;
}

/* ---- argument helpers ------------------------------------------------------ */

int64_t mgl_checkint(lua_State *L, int arg, const char *op, const char *what) {
  int ok;
  lua_Integer v = lua_tointegerx(L, arg, &ok);
  if (!ok) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      luaL_error(L, "%s: %s must be an integer, got %s", op, what,
                 lua_tostring(L, arg));
    else
      luaL_error(L, "%s: %s must be an integer, got %s", op, what,
                 luaL_typename(L, arg));
  }
  return (int64_t)v;
}

double mgl_checknum(lua_State *L, int arg, const char *op, const char *what) {
  int ok;
  lua_Number v = lua_tonumberx(L, arg, &ok);
  if (!ok || lua_type(L, arg) != LUA_TNUMBER)
    luaL_error(L, "%s: %s must be a number, got %s", op, what,
               luaL_typename(L, arg));
  return (double)v;
}

int mgl_checkdim(lua_State *L, int arg, int ndim, int ndim_extra,
                 const char *op) {
  int64_t d = mgl_checkint(L, arg, op, "dimension");
  int n = ndim + (ndim_extra ? 1 : 0);
  int lo = n > 0 ? -n : -1, hi = n > 0 ? n : 1;
  if (d == 0 || d < lo || d > hi)
    luaL_error(L, "%s: dimension %I out of range for a %d-dimensional tensor "
               "(expected %d..-1 or 1..%d)", op, (lua_Integer)d, ndim, lo, hi);
  return (int)(d > 0 ? d - 1 : n + d);
}

/* A size from a Lua value, with an error naming op. */
static int64_t size_at(lua_State *L, int idx, const char *op) {
  int ok;
  lua_Integer v = lua_tointegerx(L, idx, &ok);
  if (!ok || lua_type(L, idx) != LUA_TNUMBER)
    luaL_error(L, "%s: sizes must be integers, got %s", op,
               lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx)
                                               : luaL_typename(L, idx));
  return (int64_t)v;
}

int mgl_checkshape(lua_State *L, int arg, int64_t *shape, const char *op) {
  int n = 0;
  if (lua_istable(L, arg) && !mgl_test_any(L, arg)) {
    n = (int)luaL_len(L, arg);
    if (n > MG_MAXDIM)
      luaL_error(L, "%s: %d dimensions requested, at most %d are supported",
                 op, n, MG_MAXDIM);
    for (int i = 1; i <= n; i++) {
      lua_geti(L, arg, i);
      shape[i - 1] = size_at(L, -1, op);
      lua_pop(L, 1);
    }
    return n;
  }
  int top = lua_gettop(L);
  for (int i = arg; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
    if (n >= MG_MAXDIM)
      luaL_error(L, "%s: more than %d dimensions requested", op, MG_MAXDIM);
    shape[n++] = size_at(L, i, op);
  }
  return n;
}

mg_DType mgl_optdtype_any(lua_State *L, int arg, mg_DType def,
                          const char *op) {
  if (lua_isnoneornil(L, arg)) return def;
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_error(L, "%s: dtype must be a string (" MGL_DTYPE_LIST "), got %s", op,
               luaL_typename(L, arg));
  int dt = mg_dtype_from_name(lua_tostring(L, arg));
  if (dt < 0)
    luaL_error(L, "%s: unknown dtype '%s' (expected " MGL_DTYPE_LIST ")", op,
               lua_tostring(L, arg));
  return (mg_DType)dt;
}

mg_DType mgl_optdtype(lua_State *L, int arg, mg_DType def, const char *op) {
  mg_DType dt = mgl_optdtype_any(L, arg, def, op);
  if (!mg_dtype_computes(dt))
    luaL_error(L, "%s: dtype %s %s and is not computed on; make a float32 or "
               "int64 tensor and convert it with :to(\"%s\")", op,
               mg_dtype_name(dt), dt == MG_U8 ? "holds data" : "is for storage",
               mg_dtype_name(dt));
  return dt;
}

double mgl_checkvalue(lua_State *L, int arg, const char *op) {
  if (lua_type(L, arg) == LUA_TBOOLEAN) return lua_toboolean(L, arg);
  return mgl_checknum(L, arg, op, "value");
}

int mgl_optbool_field(lua_State *L, int arg, const char *name, int def,
                      const char *op) {
  if (lua_isnoneornil(L, arg)) return def;
  int t = lua_getfield(L, arg, name);
  int v = def;
  if (t == LUA_TBOOLEAN)
    v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: option '%s' must be a boolean, got %s", op, name,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

void mgl_check_options(lua_State *L, int arg, const char *const *known,
                       const char *op) {
  if (lua_isnoneornil(L, arg)) return;
  if (!lua_istable(L, arg))
    luaL_error(L, "%s: options must be a table, got %s", op,
               luaL_typename(L, arg));
  lua_pushnil(L);
  while (lua_next(L, arg)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING)
      for (int i = 0; known[i] && !ok; i++)
        ok = strcmp(known[i], lua_tostring(L, -1)) == 0;
    if (!ok)
      luaL_error(L, "%s: unknown option '%s'", op, luaL_tolstring(L, -1, NULL));
  }
}
