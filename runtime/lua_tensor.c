/*
 * lua_tensor.c — the tensor's methods from Lua: metadata, views,
 * conversions and element access, and its metatable (the userdata itself
 * and the argument helpers are lua_args.c's).
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "lua_bind.h"

/* ---- metadata -------------------------------------------------------------- */

static void push_shape(lua_State *L, const mg_Tensor *t) {
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->shape[d]);
    lua_rawseti(L, -2, d + 1);
  }
}

static int t_shape(lua_State *L) {
  push_shape(L, mgl_check_any(L, 1));
  return 1;
}

static int t_size(lua_State *L) {
  mg_Tensor *t = mgl_check_any(L, 1);
  if (lua_isnoneornil(L, 2)) {
    push_shape(L, t);
    return 1;
  }
  if (t->ndim == 0) /* checkdim lets dim 1 through for a 0-d tensor */
    return luaL_error(L, "size: a 0-d tensor has no dimensions (dimension "
                      "%s given)", luaL_tolstring(L, 2, NULL));
  lua_pushinteger(L, t->shape[mgl_checkdim(L, 2, t->ndim, 0, "size")]);
  return 1;
}

static int t_stride(lua_State *L) {
  mg_Tensor *t = mgl_check_any(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    if (t->ndim == 0)
      return luaL_error(L, "stride: a 0-d tensor has no dimensions "
                        "(dimension %s given)", luaL_tolstring(L, 2, NULL));
    lua_pushinteger(L, t->stride[mgl_checkdim(L, 2, t->ndim, 0, "stride")]);
    return 1;
  }
  lua_createtable(L, t->ndim, 0);
  for (int d = 0; d < t->ndim; d++) {
    lua_pushinteger(L, t->stride[d]);
    lua_rawseti(L, -2, d + 1);
  }
  return 1;
}

static int t_dim(lua_State *L) {
  lua_pushinteger(L, mgl_check_any(L, 1)->ndim);
  return 1;
}

static int t_numel(lua_State *L) {
  lua_pushinteger(L, mg_numel(mgl_check_any(L, 1)));
  return 1;
}

static int t_dtype(lua_State *L) {
  lua_pushstring(L, mg_dtype_name(mgl_check_any(L, 1)->dtype));
  return 1;
}

/* The memory format at arg: "contiguous_format" (the default, row-major)
 * or "channels_last" (memory order N, H, W, C), PyTorch's
 * torch.contiguous_format and torch.channels_last; 1 for channels last.
 * need4: channels last is refused for a tensor that is not 4-D (making
 * one; asking whether a tensor is one just says no, as PyTorch does). */
static int memory_format(lua_State *L, int arg, const mg_Tensor *t, const char *op,
                         int need4) {
  if (lua_isnoneornil(L, arg)) return 0;
  const char *f = lua_tostring(L, arg);
  if (lua_type(L, arg) != LUA_TSTRING ||
      (strcmp(f, "channels_last") && strcmp(f, "contiguous_format")))
    return luaL_error(L, "%s: memory format must be \"contiguous_format\" or "
                      "\"channels_last\", got %s", op,
                      lua_type(L, arg) == LUA_TSTRING ? f : luaL_typename(L, arg));
  if (strcmp(f, "channels_last")) return 0;
  if (need4 && t->ndim != 4) {
    char b[MG_SHAPE_BUFSZ];
    return luaL_error(L, "%s: channels_last is for 4-D [N, C, H, W] tensors, got shape %s",
                      op, mg_shape_str(b, sizeof b, t->ndim, t->shape));
  }
  return 1;
}

/* t:is_contiguous([format]) */
static int t_is_contiguous(lua_State *L) {
  mg_Tensor *t = mgl_check_any(L, 1);
  int cl = memory_format(L, 2, t, "is_contiguous", 0);
  lua_pushboolean(L, cl ? mg_is_channels_last(t) : mg_is_contiguous(t));
  return 1;
}

static int t_storage_offset(lua_State *L) {
  lua_pushinteger(L, mgl_check_any(L, 1)->offset + 1);
  return 1;
}

/* Do two tensors share storage? (Views of one another do.) */
static int t_shares_storage(lua_State *L) {
  lua_pushboolean(L, mgl_check_any(L, 1)->storage == mgl_check_any(L, 2)->storage);
  return 1;
}

static int t_len(lua_State *L) {
  mg_Tensor *t = mgl_check_any(L, 1);
  if (t->ndim == 0) return luaL_error(L, "#: a 0-d tensor has no length");
  lua_pushinteger(L, t->shape[0]);
  return 1;
}

static void push_number(lua_State *L, const mg_Tensor *t, int64_t i) {
  if (t->dtype == MG_BOOL)
    lua_pushboolean(L, mg_read_i64(t, i) != 0);
  else if (mg_dtype_is_int(t->dtype))
    lua_pushinteger(L, mg_read_i64(t, i));
  else
    lua_pushnumber(L, mg_read(t, i));
}

static int t_item(lua_State *L) {
  mg_Tensor *t = mgl_check_any(L, 1);
  if (mg_numel(t) != 1) {
    char b[MG_SHAPE_BUFSZ];
    return luaL_error(L, "item: a tensor with one element is needed, got "
                      "shape %s (%I elements)",
                      mg_shape_str(b, sizeof b, t->ndim, t->shape),
                      (lua_Integer)mg_numel(t));
  }
  push_number(L, t, 0);
  return 1;
}

/* Nested tables, row-major; *pos walks the linear index. */
static void push_table(lua_State *L, const mg_Tensor *t, int d, int64_t *pos) {
  luaL_checkstack(L, 4, "totable: nesting too deep");
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    if (d == t->ndim - 1)
      push_number(L, t, (*pos)++);
    else
      push_table(L, t, d + 1, pos);
    lua_rawseti(L, -2, i + 1);
  }
}

static int t_totable(lua_State *L) {
  mg_Tensor *t = mgl_check_any(L, 1);
  int64_t pos = 0;
  /* A Lua table holds at most INT_MAX entries: past that (a large
   * expanded view) the answer is an error now, not one after minutes. */
  if (mg_numel(t) > INT_MAX) {
    char b[MG_SHAPE_BUFSZ];
    return luaL_error(L, "totable: a tensor of shape %s has %I elements, more "
                      "than the %d numbers Lua tables can hold",
                      mg_shape_str(b, sizeof b, t->ndim, t->shape),
                      (lua_Integer)mg_numel(t), INT_MAX);
  }
  if (t->ndim == 0)
    push_number(L, t, 0);
  else
    push_table(L, t, 0, &pos);
  return 1;
}

/* ---- views ----------------------------------------------------------------- */

/* A shape at arg (sizes or one table) with nothing after it: a stray value
 * is a size that is not a number, not something to ignore. */
static int shape_only(lua_State *L, int arg, int64_t *shape, const char *op) {
  int n = mgl_checkshape(L, arg, shape, op);
  int next = lua_istable(L, arg) ? arg + 1 : arg + n;
  if (!lua_isnone(L, next))
    luaL_error(L, "%s: sizes must be integers, got %s", op,
               luaL_typename(L, next));
  return n;
}

static int t_view_like(lua_State *L, int copy_ok) {
  const char *op = copy_ok ? "reshape" : "view";
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int64_t shape[MG_MAXDIM];
  int n = shape_only(L, 2, shape, op);
  mg_Tensor **out = mgl_slot(L);
  if (copy_ok)
    MGL_TRY(L, ctx, mg_reshape(ctx, out, t, n, shape));
  else
    MGL_TRY(L, ctx, mg_view(ctx, out, t, n, shape));
  return 1;
}

static int t_reshape(lua_State *L) { return t_view_like(L, 1); }
static int t_view(lua_State *L) { return t_view_like(L, 0); }

static int t_flatten(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  if (t->ndim == 0) {
    int64_t one = 1;
    mg_Tensor **out = mgl_slot(L);
    MGL_TRY(L, ctx, mg_reshape(ctx, out, t, 1, &one));
    return 1;
  }
  int s = lua_isnoneornil(L, 2) ? 0 : mgl_checkdim(L, 2, t->ndim, 0, "flatten");
  int e = lua_isnoneornil(L, 3) ? t->ndim - 1
                                : mgl_checkdim(L, 3, t->ndim, 0, "flatten");
  if (s > e)
    return luaL_error(L, "flatten: start dimension %d comes after end "
                      "dimension %d", s + 1, e + 1);
  int64_t shape[MG_MAXDIM];
  int n = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (d > s && d <= e)
      shape[n - 1] *= t->shape[d];
    else
      shape[n++] = t->shape[d];
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_reshape(ctx, out, t, n, shape));
  return 1;
}

static int t_transpose(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int d0 = mgl_checkdim(L, 2, t->ndim, 0, "transpose");
  int d1 = mgl_checkdim(L, 3, t->ndim, 0, "transpose");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_transpose(ctx, out, t, d0, d1));
  return 1;
}

/* t:t() — the transpose of a matrix (a vector stays as it is). */
static int t_t(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  if (t->ndim > 2)
    return luaL_error(L, "t: expects a tensor with at most 2 dimensions, got "
                      "%d (use transpose)", t->ndim);
  mg_Tensor **out = mgl_slot(L);
  if (t->ndim < 2)
    MGL_TRY(L, ctx, mg_view(ctx, out, t, t->ndim, t->shape));
  else
    MGL_TRY(L, ctx, mg_transpose(ctx, out, t, 0, 1));
  return 1;
}

static int t_permute(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int64_t raw[MG_MAXDIM];
  int n = shape_only(L, 2, raw, "permute");
  if (n != t->ndim)
    return luaL_error(L, "permute: %d dimensions given for a %d-dimensional "
                      "tensor", n, t->ndim);
  int dims[MG_MAXDIM];
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, raw[i]);
    dims[i] = mgl_checkdim(L, -1, t->ndim, 0, "permute");
    lua_pop(L, 1);
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_permute(ctx, out, t, dims));
  return 1;
}

static int t_narrow(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  if (t->ndim == 0) /* checkdim lets -1 through: shape[-1] below */
    return luaL_error(L, "narrow: a 0-d tensor has no dimensions");
  int d = mgl_checkdim(L, 2, t->ndim, 0, "narrow");
  int64_t start = mgl_checkint(L, 3, "narrow", "start");
  int64_t len = mgl_checkint(L, 4, "narrow", "length");
  if (start < 0) start += t->shape[d] + 1; /* -1 is the last position */
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_narrow(ctx, out, t, d, start - 1, len));
  return 1;
}

/* A 1-based (or negative) position along a dim of size n as 0-based. */
static int64_t position(int64_t i, int64_t n) { return i < 0 ? n + i : i - 1; }

static int t_select(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  if (t->ndim == 0) /* checkdim lets -1 through: shape[-1] below */
    return luaL_error(L, "select: a 0-d tensor has no dimensions");
  int d = mgl_checkdim(L, 2, t->ndim, 0, "select");
  int64_t i = mgl_checkint(L, 3, "select", "index");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_select(ctx, out, t, d, i == 0 ? -1 : position(i, t->shape[d])));
  return 1;
}

static int t_squeeze(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int d = lua_isnoneornil(L, 2) ? -1 : mgl_checkdim(L, 2, t->ndim, 0, "squeeze");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_squeeze(ctx, out, t, d));
  return 1;
}

static int t_unsqueeze(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int d = mgl_checkdim(L, 2, t->ndim, 1, "unsqueeze");
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_unsqueeze(ctx, out, t, d));
  return 1;
}

static int t_expand(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int64_t shape[MG_MAXDIM];
  int n;
  mg_Tensor *like = mgl_test_any(L, 2);
  if (like) {
    n = like->ndim;
    memcpy(shape, like->shape, sizeof shape);
  } else {
    n = shape_only(L, 2, shape, "expand");
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_expand(ctx, out, t, n, shape));
  return 1;
}

/* [N, C, H, W] t copied into an [N, H, W, C] buffer and seen as
 * [N, C, H, W] again, through recorded permutes, so gradients flow. */
static int channels_last(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t) {
  static const int to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
  mg_Tensor *p = NULL, *c = NULL;
  int st = mg_permute(ctx, &p, t, to_nhwc);
  if (!st) st = mg_contiguous(ctx, &c, p);
  if (!st) st = mg_permute(ctx, out, c, to_nchw);
  mg_tensor_decref(p);
  mg_tensor_decref(c);
  return st;
}

/* t:contiguous([format]): t itself when it already is laid out so. */
static int t_contiguous(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int cl = memory_format(L, 2, t, "contiguous", 1);
  if (cl ? mg_is_channels_last(t) : mg_is_contiguous(t)) {
    lua_settop(L, 1);
    return 1;
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, cl ? channels_last(ctx, out, t) : mg_contiguous(ctx, out, t));
  return 1;
}

static int t_clone(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_clone(ctx, out, t));
  return 1;
}

/* ---- conversions and in-place writes -------------------------------------- */

static int convert(lua_State *L, mg_DType dt) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  if (t->dtype == dt) {
    lua_settop(L, 1);
    return 1;
  }
  mg_Tensor **out = mgl_slot(L);
  MGL_TRY(L, ctx, mg_to_dtype(ctx, out, t, dt));
  return 1;
}

static int t_to(lua_State *L) {
  mgl_check_any(L, 1);
  if (lua_istable(L, 2)) { /* t:to{dtype = "float64"} */
    lua_getfield(L, 2, "dtype");
    lua_replace(L, 2);
  }
  if (lua_isnoneornil(L, 2))
    return luaL_error(L, "to: a dtype is needed (" MGL_DTYPE_LIST ")");
  return convert(L, mgl_optdtype_any(L, 2, MG_F32, "to"));
}
static int t_float(lua_State *L) { return convert(L, MG_F32); }
static int t_double(lua_State *L) { return convert(L, MG_F64); }
static int t_long(lua_State *L) { return convert(L, MG_I64); }
static int t_byte(lua_State *L) { return convert(L, MG_U8); }
static int t_half(lua_State *L) { return convert(L, MG_F16); }
static int t_bfloat16(lua_State *L) { return convert(L, MG_BF16); }
static int t_int(lua_State *L) { return convert(L, MG_I32); }
static int t_short(lua_State *L) { return convert(L, MG_I16); }
static int t_char(lua_State *L) { return convert(L, MG_I8); }
static int t_bool(lua_State *L) { return convert(L, MG_BOOL); }

static int t_copy_(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1), *src = mgl_check_any(L, 2);
  MGL_TRY(L, ctx, mg_copy_(ctx, t, src));
  lua_settop(L, 1);
  return 1;
}

static int t_fill_(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  double v = mgl_checkvalue(L, 2, "fill_");
  MGL_TRY(L, ctx, mg_fill_(ctx, t, v));
  lua_settop(L, 1);
  return 1;
}

static int t_zero_(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  MGL_TRY(L, ctx, mg_zero_(ctx, t));
  lua_settop(L, 1);
  return 1;
}

/* ---- element access -------------------------------------------------------- */

/* Reads n 1-based positions (from a table at arg, or args arg..arg+n-1) as
 * 0-based indices. */
static void element_index(lua_State *L, const mg_Tensor *t, int arg,
                          int from_table, int n, int64_t *idx,
                          const char *op) {
  if (n != t->ndim)
    luaL_error(L, "%s: %d indices given for a %d-dimensional tensor", op, n,
               t->ndim);
  for (int d = 0; d < n; d++) {
    if (from_table) lua_geti(L, arg, d + 1);
    int64_t i = mgl_checkint(L, from_table ? -1 : arg + d, op, "index");
    if (from_table) lua_pop(L, 1);
    if (i == 0 || i > t->shape[d] || i < -t->shape[d])
      luaL_error(L, "%s: index %I out of range for size %I of dimension %d",
                 op, (lua_Integer)i, (lua_Integer)t->shape[d], d + 1);
    idx[d] = position(i, t->shape[d]);
  }
}

/* A 1-based (or negative) index at arg along dim d, as 0-based. */
static int64_t checkpos(lua_State *L, int arg, const mg_Tensor *t, int d,
                        const char *op) {
  int64_t i = mgl_checkint(L, arg, op, "index");
  if (i == 0 || i > t->shape[d] || i < -t->shape[d])
    luaL_error(L, "%s: index %I out of range for size %I of dimension %d",
               op, (lua_Integer)i, (lua_Integer)t->shape[d], d + 1);
  return position(i, t->shape[d]);
}

static void push_element(lua_State *L, mg_Context *ctx, const mg_Tensor *t,
                         const int64_t *idx) {
  if (t->dtype == MG_BOOL || mg_dtype_is_int(t->dtype)) {
    int64_t v = 0;
    MGL_TRY(L, ctx, mg_get_i64(ctx, &v, t, idx));
    if (t->dtype == MG_BOOL) lua_pushboolean(L, v != 0);
    else lua_pushinteger(L, v);
  } else {
    double v = 0;
    MGL_TRY(L, ctx, mg_get(ctx, &v, t, idx));
    lua_pushnumber(L, v);
  }
}

static int t_get(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int64_t idx[MG_MAXDIM];
  int tab = lua_istable(L, 2);
  element_index(L, t, 2, tab, tab ? (int)luaL_len(L, 2) : lua_gettop(L) - 1,
                idx, "get");
  push_element(L, ctx, t, idx);
  return 1;
}

static int t_set(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int64_t idx[MG_MAXDIM];
  int top = lua_gettop(L), tab = lua_istable(L, 2);
  int n = tab ? (int)luaL_len(L, 2) : top - 2;
  if (n != t->ndim)
    return luaL_error(L, "set: %d indices given for a %d-dimensional tensor "
                      "(t:set(i1, ..., i%d, value) or t:set({i1, ...}, value))",
                      n < 0 ? 0 : n, t->ndim, t->ndim);
  double v = mgl_checkvalue(L, top, "set");
  element_index(L, t, 2, tab, tab ? (int)luaL_len(L, 2) : top - 2, idx, "set");
  if (lua_isinteger(L, top)) /* exact in int64 past 2^53 */
    MGL_TRY(L, ctx, mg_set_i64(ctx, t, idx, (int64_t)lua_tointeger(L, top)));
  else
    MGL_TRY(L, ctx, mg_set(ctx, t, idx, v));
  lua_settop(L, 1);
  return 1;
}

/* t.grad: the accumulated gradient (a tensor sharing the gradient's
 * storage), or nil. */
static int push_grad(lua_State *L, mg_Context *ctx, mg_Tensor *t) {
  mg_Tensor *g = mg_grad(t);
  if (!g) {
    lua_pushnil(L);
    return 1;
  }
  mg_tensor_incref(g);
  mgl_push(L, g);
  /* Held by Lua now: only the collector frees it (the core forgave its
   * bytes when it stored it, mg_gc_forgive). */
  mg_gc_charge(ctx, g->storage->nbytes);
  return 1;
}

/* t[i]: a view of position i along dim 1, or a number for a 1-D tensor.
 * t[{i, j}]: an element when every dim is given, else a view.
 * t.name: a method, or the field grad. */
static int t_index(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) /* a method */
      return 1;
    const char *k = lua_tostring(L, 2);
    if (k[0] == 'g' && strcmp(k, "grad") == 0)
      return push_grad(L, mgl_ctx(L), mgl_check_any(L, 1));
    return 1; /* nil */
  }
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  int64_t idx[MG_MAXDIM];
  if (lua_type(L, 2) == LUA_TNUMBER) {
    if (t->ndim == 0) return luaL_error(L, "index: a 0-d tensor cannot be indexed");
    idx[0] = checkpos(L, 2, t, 0, "index");
    if (t->ndim == 1) {
      push_element(L, ctx, t, idx);
      return 1;
    }
    mg_Tensor **out = mgl_slot(L);
    MGL_TRY(L, ctx, mg_select(ctx, out, t, 0, idx[0]));
    return 1;
  }
  if (lua_istable(L, 2)) {
    int n = (int)luaL_len(L, 2);
    if (n == t->ndim) {
      element_index(L, t, 2, 1, n, idx, "index");
      push_element(L, ctx, t, idx);
      return 1;
    }
    if (n > t->ndim)
      return luaL_error(L, "index: %d indices given for a %d-dimensional tensor",
                        n, t->ndim);
    mg_Tensor **out = mgl_slot(L);
    MGL_TRY(L, ctx, mg_view(ctx, out, t, t->ndim, t->shape));
    for (int d = 0; d < n; d++) {
      lua_geti(L, 2, d + 1);
      mg_Tensor *cur = *out;
      int64_t i = mgl_checkint(L, -1, "index", "index");
      lua_pop(L, 1);
      if (i == 0 || i > cur->shape[0] || i < -cur->shape[0])
        return luaL_error(L, "index: index %I out of range for size %I of "
                          "dimension %d", (lua_Integer)i,
                          (lua_Integer)cur->shape[0], d + 1);
      mg_Tensor *next = NULL;
      MGL_TRY(L, ctx, mg_select(ctx, &next, cur, 0, position(i, cur->shape[0])));
      *out = next;
      mg_tensor_decref(cur);
    }
    return 1;
  }
  return luaL_error(L, "index: cannot index a tensor with a %s",
                    luaL_typename(L, 2));
}

/* t[i] = v / t[{i, j}] = v: v is a number (fills) or a tensor (copies). */
static int t_newindex(lua_State *L) {
  mg_Context *ctx = mgl_ctx(L);
  mg_Tensor *t = mgl_check_any(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    if (strcmp(lua_tostring(L, 2), "grad") != 0)
      return luaL_error(L, "tensor: cannot set field '%s' (only grad can be "
                        "assigned)", lua_tostring(L, 2));
    mg_Tensor *g = lua_isnil(L, 3) ? NULL : mgl_test_any(L, 3);
    if (!g && !lua_isnil(L, 3))
      return luaL_error(L, "grad: can be set to nil or a tensor, got %s",
                        luaL_typename(L, 3));
    MGL_TRY(L, ctx, mg_set_grad(ctx, t, g));
    return 0;
  }
  int64_t idx[MG_MAXDIM];
  int n;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    if (t->ndim == 0) return luaL_error(L, "index: a 0-d tensor cannot be indexed");
    n = 1;
    idx[0] = checkpos(L, 2, t, 0, "index");
  } else if (lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    if (n > t->ndim || n == 0)
      return luaL_error(L, "index: %d indices given for a %d-dimensional tensor",
                        n, t->ndim);
    for (int d = 0; d < n; d++) {
      lua_geti(L, 2, d + 1);
      int64_t i = mgl_checkint(L, -1, "index", "index");
      lua_pop(L, 1);
      if (i == 0 || i > t->shape[d] || i < -t->shape[d])
        return luaL_error(L, "index: index %I out of range for size %I of "
                          "dimension %d", (lua_Integer)i,
                          (lua_Integer)t->shape[d], d + 1);
      idx[d] = position(i, t->shape[d]);
    }
  } else {
    return luaL_error(L, "index: cannot index a tensor with a %s",
                      luaL_typename(L, 2));
  }
  mg_Tensor *src = mgl_test_any(L, 3);
  int ty = lua_type(L, 3);
  if (!src && ty != LUA_TNUMBER && ty != LUA_TBOOLEAN)
    return luaL_error(L, "index: can assign a number, a boolean or a tensor, "
                      "got %s", luaL_typename(L, 3));
  double v = ty == LUA_TBOOLEAN ? lua_toboolean(L, 3) : lua_tonumber(L, 3);
  if (n == t->ndim && !src) {
    if (lua_isinteger(L, 3)) /* exact in int64 past 2^53 */
      MGL_TRY(L, ctx, mg_set_i64(ctx, t, idx, (int64_t)lua_tointeger(L, 3)));
    else
      MGL_TRY(L, ctx, mg_set(ctx, t, idx, v));
    return 0;
  }
  /* Build the target view, then fill or copy into it. */
  mg_Tensor **view = mgl_slot(L);
  MGL_TRY(L, ctx, mg_view(ctx, view, t, t->ndim, t->shape));
  for (int d = 0; d < n; d++) {
    mg_Tensor *cur = *view, *next = NULL;
    MGL_TRY(L, ctx, mg_select(ctx, &next, cur, 0, idx[d]));
    *view = next;
    mg_tensor_decref(cur);
  }
  if (src)
    MGL_TRY(L, ctx, mg_copy_(ctx, *view, src));
  else
    MGL_TRY(L, ctx, mg_fill_(ctx, *view, v));
  return 0;
}

static int t_tostring(lua_State *L) {
  mg_Tensor **slot = luaL_checkudata(L, 1, MGL_TENSOR);
  if (!*slot) /* printing must not fail, even after <close> */
    lua_pushliteral(L, "[closed tensor]");
  else
    mgl_push_tostring(L, *slot);
  return 1;
}

const luaL_Reg mgl_tensor_methods[] = {
    {"shape", t_shape},         {"size", t_size},
    {"stride", t_stride},       {"dim", t_dim},
    {"ndim", t_dim},            {"numel", t_numel},
    {"dtype", t_dtype},         {"is_contiguous", t_is_contiguous},
    {"storage_offset", t_storage_offset},
    {"shares_storage", t_shares_storage},
    {"item", t_item},           {"totable", t_totable},
    {"reshape", t_reshape},     {"view", t_view},
    {"flatten", t_flatten},     {"transpose", t_transpose},
    {"t", t_t},                 {"permute", t_permute},
    {"narrow", t_narrow},       {"select", t_select},
    {"squeeze", t_squeeze},     {"unsqueeze", t_unsqueeze},
    {"expand", t_expand},       {"contiguous", t_contiguous},
    {"clone", t_clone},         {"to", t_to},
    {"type", t_to},             {"float", t_float},
    {"double", t_double},       {"long", t_long},
    {"byte", t_byte},           {"half", t_half},
    {"bfloat16", t_bfloat16},   {"int", t_int},
    {"short", t_short},         {"char", t_char},
    {"bool", t_bool},
    {"copy_", t_copy_},         {"fill_", t_fill_},
    {"zero_", t_zero_},         {"get", t_get},
    {"set", t_set},             {NULL, NULL}};

const luaL_Reg mgl_tensor_functions[] = {{NULL, NULL}};

/* __index needs the methods table as its second upvalue (lua_module.c). */
const luaL_Reg mgl_tensor_meta[] = {
    {"__gc", mgl_tensor_gc}, {"__close", mgl_tensor_gc},
    {"__len", t_len},        {"__tostring", t_tostring},
    {"__index", t_index},    {"__newindex", t_newindex},
    {NULL, NULL}};
