/*
 * lua_create.c — making tensors from Lua, and the state-wide settings
 * (random seed, threads, memory).
 */
#include <string.h>
#include <time.h>

#include "lua_bind.h"
#include "mg_internal.h" /* mg_f2i64 */

/* ---- mg.tensor(data [, dtype]) ------------------------------------------- */

/* Infers the shape of nested tables by following first elements; *leaf
 * gets the Lua type of the first element (LUA_TNIL when there is none). */
static int infer_shape(lua_State *L, int idx, int64_t *shape, int *leaf) {
  int n = 0;
  lua_pushvalue(L, idx);
  *leaf = LUA_TNIL;
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (n >= MG_MAXDIM)
      luaL_error(L, "tensor: nested tables deeper than %d", MG_MAXDIM);
    shape[n++] = (int64_t)luaL_len(L, -1);
    if (shape[n - 1] == 0) break;
    lua_geti(L, -1, 1);
    lua_remove(L, -2);
    *leaf = lua_type(L, -1);
  }
  lua_pop(L, 1);
  return n;
}

/* Writes the nested table at the top of the stack into t's data. only_bool:
 * the dtype was inferred as bool from the first element, so every element
 * must be a boolean (PyTorch would pick a number dtype for a mix). */
static void fill_nested(lua_State *L, mg_Tensor *t, int d, int64_t *pos,
                        int *path, int only_bool) {
  luaL_checkstack(L, 3, "tensor: nesting too deep");
  int64_t len = (int64_t)luaL_len(L, -1);
  if (len != t->shape[d]) {
    char where[128] = "";
    size_t used = 0;
    for (int k = 0; k < d && used < sizeof where; k++)
      used += (size_t)snprintf(where + used, sizeof where - used, "[%d]", path[k]);
    luaL_error(L, "tensor: ragged nested table: element data%s has %I "
               "entries, expected %I", where, (lua_Integer)len,
               (lua_Integer)t->shape[d]);
  }
  for (int64_t i = 1; i <= len; i++) {
    path[d] = (int)i;
    int ty = lua_geti(L, -1, i);
    if (d < t->ndim - 1) {
      if (ty != LUA_TTABLE)
        luaL_error(L, "tensor: ragged nested table: expected a table at depth "
                   "%d, got %s", d + 2, luaL_typename(L, -1));
      fill_nested(L, t, d + 1, pos, path, only_bool);
    } else {
      double v;
      if (ty == LUA_TNUMBER) {
        if (only_bool) {
          luaL_error(L, "tensor: a table of booleans holds a number at element "
                     "%I; give a dtype (\"float32\", \"int64\", ...) to mix "
                     "them", (lua_Integer)*pos + 1);
          return;
        }
        if (t->dtype == MG_I64 && lua_isinteger(L, -1)) {
          ((int64_t *)mg_data(t))[(*pos)++] = (int64_t)lua_tointeger(L, -1);
          lua_pop(L, 1);
          continue;
        }
        v = lua_tonumber(L, -1);
      } else if (ty == LUA_TBOOLEAN) {
        v = lua_toboolean(L, -1);
      } else {
        luaL_error(L, "tensor: elements must be numbers or booleans, got %s",
                   luaL_typename(L, -1));
        return;
      }
      switch (t->dtype) {
      case MG_F32: ((float *)mg_data(t))[*pos] = (float)v; break;
      case MG_F64: ((double *)mg_data(t))[*pos] = v; break;
      case MG_I64: ((int64_t *)mg_data(t))[*pos] = mg_f2i64(v); break; /* inf, 1e300 */
      default: /* a value, not a conversion: it must fit (as in PyTorch) */
        if (!mg_value_fits(t->dtype, v))
          luaL_error(L, "tensor: %f does not fit in %s (%s)", v,
                     mg_dtype_name(t->dtype), mg_dtype_range(t->dtype));
        mg_store_f64((char *)mg_data(t) + *pos * (int64_t)mg_dtype_size(t->dtype),
                     t->dtype, v);
        break;
      }
      (*pos)++;
    }
    lua_pop(L, 1);
  }
}

static int f_tensor(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *src = mgl_test_any(L, 1);
  int64_t shape[MG_MAXDIM];
  int leaf = lua_type(L, 1), n = 0;
  if (!src && leaf == LUA_TTABLE) n = infer_shape(L, 1, shape, &leaf);
  /* booleans make a bool tensor, as in PyTorch */
  int only_bool = !src && leaf == LUA_TBOOLEAN && lua_isnoneornil(L, 2);
  mg_DType dt = mgl_optdtype_any(L, 2, src ? src->dtype
                                           : only_bool ? MG_BOOL : MG_F32, "tensor");
  lua_settop(L, 2); /* the slot goes to 3, not to an absent argument 1 */
  mg_Tensor **out = mgl_slot(L);
  if (src) { /* always a copy and a new leaf, like torch.tensor(t); grad
               * mode is restored before any error is raised */
    int mode = mg_set_grad_enabled(ctx, 0);
    int st = MGL_ARM(L, ctx, dt == src->dtype ? mg_clone(ctx, out, src)
                                              : mg_to_dtype(ctx, out, src, dt));
    mg_set_grad_enabled(ctx, mode);
    if (st) mgl_raise(L, ctx);
    mgl_account(L, ctx);
    return 1;
  }
  int ty = lua_type(L, 1);
  if (ty == LUA_TNUMBER || ty == LUA_TBOOLEAN) {
    MGL_TRY(L, ctx, mg_full(ctx, out, dt, 0, NULL,
                            ty == LUA_TNUMBER ? lua_tonumber(L, 1)
                                              : lua_toboolean(L, 1)));
    if (dt == MG_I64 && lua_isinteger(L, 1))
      *(int64_t *)mg_data(*out) = (int64_t)lua_tointeger(L, 1);
    return 1;
  }
  if (ty != LUA_TTABLE)
    return luaL_error(L, "tensor: data must be a number, a (nested) table of "
                      "numbers or a tensor, got %s", luaL_typename(L, 1));
  MGL_TRY(L, ctx, mg_empty(ctx, out, dt, n, shape));
  int64_t pos = 0;
  int path[MG_MAXDIM];
  lua_pushvalue(L, 1);
  /* Walk the tables even when there are no elements: {{}, {1}} is ragged
   * although its inferred shape [2,0] holds nothing. */
  fill_nested(L, *out, 0, &pos, path, only_bool);
  lua_pop(L, 1);
  return 1;
}

/* ---- shaped constructors ------------------------------------------------- */

/* Reads "shape..., [dtype]" from arg on; u8: uint8 is allowed (zeros,
 * ones and empty make data; rand and randn compute). */
static int shape_and_dtype(lua_State *L, int arg, int64_t *shape,
                           mg_DType *dt, const char *op, int u8) {
  int n = mgl_checkshape(L, arg, shape, op);
  int next = lua_istable(L, arg) ? arg + 1 : arg + n;
  if (lua_isnil(L, next) && !lua_isnone(L, next + 1)) /* zeros(nil, 3) */
    luaL_error(L, "%s: sizes must be integers, got nil", op);
  if (!lua_isnoneornil(L, next + 1))
    luaL_error(L, "%s: unexpected argument #%d (%s) after the dtype", op,
               next + 1, luaL_typename(L, next + 1));
  if (lua_istable(L, next)) { /* {dtype = ...} */
    /* ones(2, {3}) is a size list in the wrong place, not options: refuse
     * any key but dtype rather than ignore it. */
    lua_pushnil(L);
    while (lua_next(L, next)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING || strcmp(lua_tostring(L, -1), "dtype") != 0) {
        if (lua_type(L, -1) == LUA_TNUMBER)
          luaL_error(L, "%s: sizes must be integers, got table", op);
        luaL_error(L, "%s: unknown option '%s' (dtype)", op, luaL_tolstring(L, -1, NULL));
      }
    }
    lua_getfield(L, next, "dtype");
    lua_replace(L, next);
  }
  if (!lua_isnoneornil(L, next) && lua_type(L, next) != LUA_TSTRING)
    luaL_error(L, "%s: sizes must be integers, got %s", op,
               luaL_typename(L, next));
  *dt = u8 ? mgl_optdtype_any(L, next, MG_F32, op)
          : mgl_optdtype(L, next, MG_F32, op);
  return n;
}

static int filled(lua_State *L, double v, const char *op) {
  mg_Context *ctx = mgl_ctx(L);
  int64_t shape[MG_MAXDIM];
  mg_DType dt;
  int n = shape_and_dtype(L, 1, shape, &dt, op, 1);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_check_shape(ctx, op, n, shape));
  MGL_TRY(L, ctx, mg_full(ctx, out, dt, n, shape, v));
  return 1;
}

static int f_zeros(lua_State *L) { return filled(L, 0, "zeros"); }
static int f_ones(lua_State *L) { return filled(L, 1, "ones"); }

static int f_empty(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  int64_t shape[MG_MAXDIM];
  mg_DType dt;
  int n = shape_and_dtype(L, 1, shape, &dt, "empty", 1);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_check_shape(ctx, "empty", n, shape));
  MGL_TRY(L, ctx, mg_empty(ctx, out, dt, n, shape));
  return 1;
}

/* mg.full(shape_table, value [, dtype]) */
static int f_full(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  if (!lua_istable(L, 1))
    return luaL_error(L, "full: expects a shape table and a value, as in "
                      "mg.full({2, 3}, 7)");
  int64_t shape[MG_MAXDIM];
  int n = mgl_checkshape(L, 1, shape, "full");
  double v = mgl_checkvalue(L, 2, "full");
  mg_DType dt = mgl_optdtype_any(L, 3, MG_F32, "full");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_check_shape(ctx, "full", n, shape));
  MGL_TRY(L, ctx, mg_full(ctx, out, dt, n, shape, v));
  return 1;
}

static int random_shaped(lua_State *L, int kind, const char *op) {
  mg_Context *ctx = mgl_ctx(L);
  int64_t shape[MG_MAXDIM];
  mg_DType dt;
  int n = shape_and_dtype(L, 1, shape, &dt, op, 0);
  mg_Tensor **out = mgl_slot(L);
  if (kind == 0)
    MGL_TRY(L, ctx, mg_rand(ctx, out, dt, n, shape));
  else
    MGL_TRY(L, ctx, mg_randn(ctx, out, dt, n, shape));
  return 1;
}

static int f_rand(lua_State *L) { return random_shaped(L, 0, "rand"); }
static int f_randn(lua_State *L) { return random_shaped(L, 1, "randn"); }

/* mg.randint(low, high, shape [, dtype]) — integers in [low, high], both
 * inclusive, as math.random(low, high); mg.randint(n, shape) is 1..n. */
static int f_randint(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  int64_t low = 1, high;
  int sarg;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    low = mgl_checkint(L, 1, "randint", "low");
    high = mgl_checkint(L, 2, "randint", "high");
    sarg = 3;
  } else {
    high = mgl_checkint(L, 1, "randint", "n");
    sarg = 2;
  }
  if (!lua_istable(L, sarg))
    return luaL_error(L, "randint: expects a shape table, as in "
                      "mg.randint(1, 10, {2, 3})");
  int64_t shape[MG_MAXDIM];
  int n = mgl_checkshape(L, sarg, shape, "randint");
  mg_DType dt = mgl_optdtype(L, sarg + 1, MG_I64, "randint");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_randint(ctx, out, dt, low, high, n, shape));
  return 1;
}

static int f_randperm(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  int64_t n = mgl_checkint(L, 1, "randperm", "n");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_randperm(ctx, out, n));
  return 1;
}

/* mg.arange(end) | mg.arange(start, end [, step]) [, dtype]: start, ...
 * while < end, like PyTorch. Integers give int64 unless a dtype is given. */
static int f_arange(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  int nnum = 0, all_int = 1;
  double v[3];
  while (nnum < 3 && lua_type(L, nnum + 1) == LUA_TNUMBER) {
    all_int = all_int && lua_isinteger(L, nnum + 1);
    v[nnum] = lua_tonumber(L, nnum + 1);
    nnum++;
  }
  if (nnum == 0)
    return luaL_error(L, "arange: expects (end), (start, end) or (start, end, "
                      "step), got %s", luaL_typename(L, 1));
  double start = nnum >= 2 ? v[0] : 0, end = nnum >= 2 ? v[1] : v[0];
  double step = nnum == 3 ? v[2] : 1;
  mg_DType dt = mgl_optdtype(L, nnum + 1, all_int ? MG_I64 : MG_F32, "arange");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_arange(ctx, out, dt, start, end, step));
  return 1;
}

static int f_linspace(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  double a = mgl_checknum(L, 1, "linspace", "start");
  double b = mgl_checknum(L, 2, "linspace", "end");
  int64_t n = mgl_checkint(L, 3, "linspace", "steps");
  mg_DType dt = mgl_optdtype(L, 4, MG_F32, "linspace");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_linspace(ctx, out, dt, a, b, n));
  return 1;
}

static int f_eye(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  int64_t n = mgl_checkint(L, 1, "eye", "n"), m = n;
  int darg = 2;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    m = mgl_checkint(L, 2, "eye", "m");
    darg = 3;
  }
  mg_DType dt = mgl_optdtype(L, darg, MG_F32, "eye");
  if (n < 0 || m < 0)
    return luaL_error(L, "eye: sizes must be non-negative, got %I and %I",
                      (lua_Integer)n, (lua_Integer)m);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_eye(ctx, out, dt, n, m));
  return 1;
}

/* ---- *_like --------------------------------------------------------------- */

static int like(lua_State *L, int kind, const char *op) {
  mg_Context *ctx = mgl_ctx(L);
  int data = kind <= 3; /* zeros, ones and full make data; rand computes */
  mg_Tensor *t = data ? mgl_check_any(L, 1) : mgl_check(L, 1);
  int darg = kind == 3 ? 3 : 2;
  double v = kind == 3 ? mgl_checkvalue(L, 2, op) : kind;
  mg_DType dt = data ? mgl_optdtype_any(L, darg, t->dtype, op)
                     : mgl_optdtype(L, darg, t->dtype, op);
  mg_Tensor **out = mgl_slot(L);
  if (kind == 4)
    MGL_TRY(L, ctx, mg_rand(ctx, out, dt, t->ndim, t->shape));
  else if (kind == 5)
    MGL_TRY(L, ctx, mg_randn(ctx, out, dt, t->ndim, t->shape));
  else
    MGL_TRY(L, ctx, mg_full(ctx, out, dt, t->ndim, t->shape, v));
  return 1;
}

static int f_zeros_like(lua_State *L) { return like(L, 0, "zeros_like"); }
static int f_ones_like(lua_State *L) { return like(L, 1, "ones_like"); }
static int f_full_like(lua_State *L) { return like(L, 3, "full_like"); }
static int f_rand_like(lua_State *L) { return like(L, 4, "rand_like"); }
static int f_randn_like(lua_State *L) { return like(L, 5, "randn_like"); }

/* ---- in-place random fills -------------------------------------------------- */

static int t_uniform_(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  double lo = lua_isnoneornil(L, 2) ? 0 : mgl_checknum(L, 2, "uniform_", "low");
  double hi = lua_isnoneornil(L, 3) ? 1 : mgl_checknum(L, 3, "uniform_", "high");
  MGL_TRY(L, ctx, mg_uniform_(ctx, t, lo, hi));
  lua_settop(L, 1);
  return 1;
}

static int t_normal_(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check(L, 1);
  double m = lua_isnoneornil(L, 2) ? 0 : mgl_checknum(L, 2, "normal_", "mean");
  double s = lua_isnoneornil(L, 3) ? 1 : mgl_checknum(L, 3, "normal_", "std");
  MGL_TRY(L, ctx, mg_normal_(ctx, t, m, s));
  lua_settop(L, 1);
  return 1;
}

/* ---- state-wide settings -------------------------------------------------- */

static int f_manual_seed(lua_State *L) {
  mg_manual_seed(mgl_ctx(L), (uint64_t)mgl_checkint(L, 1, "manual_seed", "seed"));
  return 0;
}

/* The generator's state as {seed = s, offset = n}, with stream = k as well
 * inside mg.with_rng_stream (stream 0, the main one, is left out: the
 * state looks as it did before streams existed). set_rng_state takes it
 * back, stream 0 when the table has none, so a run resumes with exactly
 * the same random numbers. */
static int f_get_rng_state(lua_State *L) {
  mg_RngState st = mg_get_rng_state(mgl_ctx(L));
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)st.seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)st.offset);
  lua_setfield(L, -2, "offset");
  if (st.stream != 0) {
    lua_pushinteger(L, (lua_Integer)st.stream);
    lua_setfield(L, -2, "stream");
  }
  return 1;
}

static int f_set_rng_state(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  mg_RngState st;
  lua_getfield(L, 1, "seed");
  st.seed = (uint64_t)mgl_checkint(L, -1, "set_rng_state", "seed");
  lua_getfield(L, 1, "offset");
  st.offset = (uint64_t)mgl_checkint(L, -1, "set_rng_state", "offset");
  st.stream = 0;
  if (lua_getfield(L, 1, "stream") != LUA_TNIL)
    st.stream = (uint64_t)mgl_checkint(L, -1, "set_rng_state", "stream");
  mg_set_rng_state(mgl_ctx(L), st);
  return 0;
}

/* What a with_rng_stream call puts back when it ends. */
typedef struct {
  mg_Context *ctx;   /* the state's (__close runs without the upvalue) */
  mg_RngState saved; /* the generator's state before the call */
  int armed;         /* saved is still to be put back */
} RngGuard;

#define MGL_RNG_GUARD "moongrad.RngGuard"

static int rng_guard_close(lua_State *L) {
  RngGuard *g = luaL_checkudata(L, 1, MGL_RNG_GUARD);
  if (g->armed) {
    g->armed = 0;
    mg_set_rng_state(g->ctx, g->saved);
  }
  return 0;
}

/* mg.with_rng_stream(seed, stream, fn, ...) --> fn(...)'s results. fn runs
 * with the generator at (seed, stream, offset 0); the state from before is
 * back once fn returns or raises, so draws inside are a pure function of
 * (seed, stream) and the calls fn makes, and the outer stream goes on as if
 * fn had not run. The guard is a to-be-closed slot rather than a pcall: an
 * error keeps its traceback, and a yield inside fn is refused (the outer
 * code would otherwise draw from fn's stream while fn is suspended). */
static int f_with_rng_stream(lua_State *L) {
  uint64_t seed = (uint64_t)mgl_checkint(L, 1, "with_rng_stream", "seed");
  uint64_t stream = (uint64_t)mgl_checkint(L, 2, "with_rng_stream", "stream");
  if (lua_type(L, 3) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 3, "__call") == LUA_TNIL)
      return luaL_error(L, "with_rng_stream: expects a function as argument "
                        "#3, got %s", luaL_typename(L, 3));
    lua_pop(L, 1);
  }
  int top = lua_gettop(L);
  mg_Context *ctx = mgl_ctx(L);
  luaL_checkstack(L, top, "with_rng_stream: too many arguments");
  RngGuard *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->armed = 0;
  if (luaL_newmetatable(L, MGL_RNG_GUARD)) {
    lua_pushcfunction(L, rng_guard_close);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  g->ctx = ctx;
  g->saved = mg_get_rng_state(ctx);
  g->armed = 1;
  lua_toclose(L, top + 1);
  mg_RngState st = {seed, 0, stream};
  mg_set_rng_state(ctx, st);
  for (int i = 3; i <= top; i++) lua_pushvalue(L, i);
  lua_call(L, top - 3, LUA_MULTRET);
  return lua_gettop(L) - (top + 1);
}

static int f_set_num_threads(lua_State *L) {
  int64_t n = mgl_checkint(L, 1, "set_num_threads", "n");
  if (n < 1 || n > 1024)
    return luaL_error(L, "set_num_threads: n must be between 1 and 1024, got "
                      "%I", (lua_Integer)n);
  mg_set_num_threads(mgl_ctx(L), (int)n);
  return 0;
}

static int f_get_num_threads(lua_State *L) {
  lua_pushinteger(L, mg_get_num_threads(mgl_ctx(L)));
  return 1;
}

/* mg.blas_core() --> the name of OpenBLAS's kernel set, and the set to
 * name in OPENBLAS_CORETYPE when OpenBLAS fell back to generic kernels on
 * a CPU it does not know (else nil): see blas_core.c. */
static int f_blas_core(lua_State *L) {
  const char *core = mg_blas_core(), *better = mg_blas_core_for_cpu();
  lua_pushstring(L, core ? core : "unknown");
  if (better) lua_pushstring(L, better);
  else lua_pushnil(L);
  return 2;
}

/* mg.clock() --> seconds on a monotonic wall clock, for timing code: unlike
 * os.clock it does not add up the CPU time of every thread. */
static int f_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
  return 1;
}

/* mg.use_deterministic_algorithms(on): PyTorch's name for the mode in
 * which results do not depend on the thread count (mg_set_deterministic). */
static int f_use_deterministic(lua_State *L) {
  luaL_checkany(L, 1);
  mg_set_deterministic(mgl_ctx(L), lua_toboolean(L, 1));
  return 0;
}

static int f_are_deterministic(lua_State *L) {
  int on = mg_set_deterministic(mgl_ctx(L), 0);
  mg_set_deterministic(mgl_ctx(L), on);
  lua_pushboolean(L, on);
  return 1;
}

/* mg._set_reference_kernels(on) --> the previous setting. With it on, ops
 * that have a fast special-case kernel run the plain general one instead,
 * so that specs can check the two against each other. */
static int f_set_reference_kernels(lua_State *L) {
  lua_pushboolean(L, mg_set_reference_kernels(mgl_ctx(L), lua_toboolean(L, 1)));
  return 1;
}

/* What the collector cannot see: bytes in tensors, the cache and the
 * budget, plus Lua's own heap for comparison. */
static int f_memory(lua_State *L) {
  mg_MemoryStats m;
  mg_memory_stats(mgl_ctx(L), &m);
  lua_createtable(L, 0, 10);
  lua_pushinteger(L, (lua_Integer)m.live_bytes);
  lua_setfield(L, -2, "tensor_bytes");
  lua_pushinteger(L, (lua_Integer)m.header_bytes);
  lua_setfield(L, -2, "header_bytes");
  lua_pushinteger(L, (lua_Integer)m.peak_bytes);
  lua_setfield(L, -2, "peak_bytes");
  lua_pushinteger(L, (lua_Integer)m.cached_bytes);
  lua_setfield(L, -2, "cached_bytes");
  lua_pushinteger(L, (lua_Integer)m.cache_limit);
  lua_setfield(L, -2, "cache_limit");
  lua_pushinteger(L, (lua_Integer)m.limit_bytes);
  lua_setfield(L, -2, "limit_bytes");
  lua_pushinteger(L, (lua_Integer)m.allocs);
  lua_setfield(L, -2, "allocs");
  lua_pushinteger(L, (lua_Integer)m.cache_hits);
  lua_setfield(L, -2, "cache_hits");
  lua_pushinteger(L, (lua_Integer)m.reclaims);
  lua_setfield(L, -2, "reclaims");
  lua_pushinteger(L, (lua_Integer)lua_gc(L, LUA_GCCOUNT) * 1024 +
                         lua_gc(L, LUA_GCCOUNTB));
  lua_setfield(L, -2, "lua_bytes");
  return 1;
}

static int f_empty_cache(lua_State *L) {
  mg_empty_cache(mgl_ctx(L));
  return 0;
}

static int f_set_memory_limit(lua_State *L) {
  int64_t n = lua_isnoneornil(L, 1) ? 0 : mgl_checkint(L, 1, "set_memory_limit", "bytes");
  if (n < 0)
    return luaL_error(L, "set_memory_limit: bytes must be >= 0 (0 = no limit), "
                      "got %I", (lua_Integer)n);
  mg_set_memory_limit(mgl_ctx(L), (size_t)n);
  return 0;
}

static int f_set_cache_limit(lua_State *L) {
  int64_t n = mgl_checkint(L, 1, "set_cache_limit", "bytes");
  if (n < 0)
    return luaL_error(L, "set_cache_limit: bytes must be >= 0, got %I",
                      (lua_Integer)n);
  mg_set_cache_limit(mgl_ctx(L), (size_t)n);
  return 0;
}

/* mg._philox(key, ctr_lo, ctr_hi) --> four 32-bit words. A testing hook,
 * not API: it exposes the raw block function so a spec can check it against
 * Random123's published known-answer vectors (every random draw rests on
 * it). Words are packed as in mg_philox: k0 = low 32 bits of key, c0/c1 =
 * low/high of ctr_lo, c2/c3 = low/high of ctr_hi. */
static int f_philox(lua_State *L) {
  uint64_t key = (uint64_t)mgl_checkint(L, 1, "_philox", "key");
  uint64_t lo = (uint64_t)mgl_checkint(L, 2, "_philox", "ctr_lo");
  uint64_t hi = (uint64_t)mgl_checkint(L, 3, "_philox", "ctr_hi");
  uint32_t r[4];
  mg_philox(r, key, lo, hi);
  for (int k = 0; k < 4; k++) lua_pushinteger(L, (lua_Integer)r[k]);
  return 4;
}

static int f_is_tensor(lua_State *L) {
  lua_pushboolean(L, luaL_testudata(L, 1, MGL_TENSOR) != NULL); /* even closed */
  return 1;
}

const luaL_Reg mgl_create_methods[] = {
    {"uniform_", t_uniform_}, {"normal_", t_normal_}, {NULL, NULL}};

const luaL_Reg mgl_create_functions[] = {
    {"tensor", f_tensor},
    {"zeros", f_zeros},
    {"ones", f_ones},
    {"empty", f_empty},
    {"full", f_full},
    {"rand", f_rand},
    {"randn", f_randn},
    {"randint", f_randint},
    {"randperm", f_randperm},
    {"arange", f_arange},
    {"linspace", f_linspace},
    {"eye", f_eye},
    {"zeros_like", f_zeros_like},
    {"ones_like", f_ones_like},
    {"full_like", f_full_like},
    {"rand_like", f_rand_like},
    {"randn_like", f_randn_like},
    {"manual_seed", f_manual_seed},
    {"get_rng_state", f_get_rng_state},
    {"set_rng_state", f_set_rng_state},
    {"with_rng_stream", f_with_rng_stream},
    {"set_num_threads", f_set_num_threads},
    {"get_num_threads", f_get_num_threads},
    {"blas_core", f_blas_core},
    {"clock", f_clock},
    {"memory", f_memory},
    {"empty_cache", f_empty_cache},
    {"set_memory_limit", f_set_memory_limit},
    {"set_cache_limit", f_set_cache_limit},
    {"is_tensor", f_is_tensor},
    {"_philox", f_philox},
    {"_set_reference_kernels", f_set_reference_kernels},
    {"use_deterministic_algorithms", f_use_deterministic},
    {"are_deterministic_algorithms_enabled", f_are_deterministic},
    {NULL, NULL}};
