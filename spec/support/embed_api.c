/*
 * embed_api.c — checks of moongrad.h that spec/embed_spec.lua runs: one
 * line per check, "ok <name>" or "FAIL <name>: <why>", and exit status 1
 * when any failed.
 *
 *   build/tests/embed_api
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "embed_check.h"
#include "moongrad.h"

/* Runs code that must succeed; returns whether it did. */
static int run(lua_State *L, const char *code) {
  if (moongrad_dostring(L, code, "=check") == MOONGRAD_OK) return 1;
  printf("  error: %s\n", moongrad_last_error(L));
  return 0;
}

/* Does global name hold the boolean true? */
static int global_true(lua_State *L, const char *name) {
  lua_getglobal(L, name);
  int ok = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return ok;
}

static void count_release(void *data, void *ud) {
  (void)data;
  ++*(int *)ud;
}

static void borrowed(void) {
  lua_State *L = moongrad_new(NULL);
  double buf[6] = {1, 2, 3, 4, 5, 6}, kept[2] = {7, 8};
  int64_t shape[2] = {2, 3}, shape2[1] = {2};
  int released = 0, kept_released = 0, bad_released = 0;
  check(L != NULL, "borrowed: state", "moongrad_new failed");
  if (!L) return;
  /* Used in ops and views, then dropped: released once, by the collector. */
  int st = moongrad_push_tensor_borrowed(L, MOONGRAD_FLOAT64, 2, shape, buf,
                                         count_release, &released);
  lua_setglobal(L, "x");
  int ok = st == MOONGRAD_OK &&
           run(L, "local mg = require 'moongrad'\n"
                  "local v = x:t():narrow(1, 2, 2)       -- a view of the buffer\n"
                  "sum_ok = ((x * 2 + 1):sum():item() == 2 * 21 + 6) and\n"
                  "         v:sum():item() == 2 + 5 + 3 + 6\n"
                  "x:add_(1)                              -- writes into it\n"
                  "x, v = nil, nil\n"
                  "collectgarbage() collectgarbage()");
  check(ok && global_true(L, "sum_ok"), "borrowed: ops and views read the buffer",
        "wrong sums");
  check(buf[0] == 2 && buf[5] == 7, "borrowed: in-place ops write into it",
        "buffer unchanged");
  check(released == 1, "borrowed: released once when collected",
        "release count is not 1");
  /* Still referenced at close: released by moongrad_close, once. */
  moongrad_push_tensor_borrowed(L, MOONGRAD_FLOAT64, 1, shape2, kept,
                                count_release, &kept_released);
  lua_setglobal(L, "kept");
  ok = kept_released == 0;
  /* A push that fails releases before it returns. */
  st = moongrad_push_tensor_borrowed(L, (moongrad_DType)99, 1, shape2, kept,
                                     count_release, &bad_released);
  check(st == MOONGRAD_ERROR && bad_released == 1 &&
            strstr(moongrad_last_error(L), "unknown dtype"),
        "borrowed: a failed push releases once", moongrad_last_error(L));
  /* NULL data: refused when the shape has elements, an empty tensor when
   * it has none. */
  int64_t three[1] = {3}, none[2] = {2, 0};
  int null_released = 0;
  st = moongrad_push_tensor_borrowed(L, MOONGRAD_FLOAT32, 1, three, NULL,
                                     count_release, &null_released);
  check(st == MOONGRAD_ERROR && null_released == 1 &&
            strstr(moongrad_last_error(L), "moongrad_push_tensor_borrowed: data "
                   "is NULL for a tensor of 3 elements"),
        "borrowed: NULL data for elements is refused", moongrad_last_error(L));
  st = moongrad_push_tensor_borrowed(L, MOONGRAD_FLOAT32, 2, none, NULL, NULL, NULL);
  if (st == MOONGRAD_OK) lua_setglobal(L, "empty");
  check(st == MOONGRAD_OK &&
            run(L, "assert(empty:numel() == 0 and empty:sum():item() == 0 and\n"
                   "       (empty + 1):size(1) == 2)"),
        "borrowed: NULL data for no elements is an empty tensor", moongrad_last_error(L));
  moongrad_close(L);
  check(ok && kept_released == 1, "borrowed: released once by moongrad_close",
        "release count is not 1");
  check(released == 1, "borrowed: never released twice", "released again");
}

/* The storage dtypes cross the API as their bytes: a float16 tensor in,
 * an int32 view and a bool tensor out. */
static void storage_dtypes(void) {
  lua_State *L = moongrad_new(NULL);
  check(L != NULL, "storage dtypes: state", "moongrad_new failed");
  if (!L) return;
  uint16_t half[3] = {0x3c00, 0xc100, 0x7c00}; /* 1, -2.5, inf */
  int64_t shape[1] = {3};
  int st = moongrad_push_tensor(L, MOONGRAD_FLOAT16, 1, shape, half);
  if (st == MOONGRAD_OK) lua_setglobal(L, "h");
  check(st == MOONGRAD_OK &&
            run(L, "assert(h:dtype() == 'float16')\n"
                   "local v = h:float():totable()\n"
                   "assert(v[1] == 1 and v[2] == -2.5 and v[3] == math.huge)\n"
                   "i = require('moongrad').tensor({{7, -8}, {9, 10}}, 'int32'):t()\n"
                   "b = h:bool()"),
        "storage dtypes: a float16 tensor goes in as its bits", moongrad_last_error(L));
  moongrad_TensorInfo info;
  int32_t ints[4] = {0};
  lua_getglobal(L, "i");
  st = moongrad_tensor_info(L, -1, &info);
  int ok = st == MOONGRAD_OK && info.dtype == MOONGRAD_INT32 && info.nbytes == 16 &&
           !info.contiguous &&
           moongrad_tensor_copy(L, -1, ints, sizeof ints) == MOONGRAD_OK &&
           ints[0] == 7 && ints[1] == 9 && ints[2] == -8 && ints[3] == 10;
  lua_pop(L, 1);
  check(ok, "storage dtypes: an int32 view comes out as int32_t", moongrad_last_error(L));
  lua_getglobal(L, "b");
  st = moongrad_tensor_info(L, -1, &info);
  const unsigned char *bytes = info.data;
  ok = st == MOONGRAD_OK && info.dtype == MOONGRAD_BOOL && info.nbytes == 3 &&
       bytes && bytes[0] == 1 && bytes[1] == 1 && bytes[2] == 1;
  lua_pop(L, 1);
  check(ok, "storage dtypes: a bool tensor is one byte an element", moongrad_last_error(L));
  moongrad_close(L);
}

static int raise_table(lua_State *L) {
  lua_newtable(L);
  return lua_error(L);
}

static void errors(void) {
  lua_State *L = moongrad_new(NULL);
  check(L != NULL, "errors: state", "moongrad_new failed");
  if (!L) return;
  int top = lua_gettop(L);
  run(L, "mg = require 'moongrad'\n"
         "function fails(a) error('bad ' .. a) end\n"
         "function mismatch() return mg.ones(3, 4):matmul(mg.ones(5, 2)) end\n"
         "function twice(t) return t * 2 end");
  lua_getglobal(L, "fails");
  lua_pushstring(L, "input");
  int st = moongrad_pcall(L, 1, 1);
  check(st == MOONGRAD_ERROR && strstr(moongrad_last_error(L), "check:2: bad input") &&
            strstr(moongrad_last_error(L), "stack traceback") && lua_gettop(L) == top,
        "errors: a Lua error is a status and a message", moongrad_last_error(L));
  lua_getglobal(L, "mismatch");
  st = moongrad_pcall(L, 0, 1);
  check(st == MOONGRAD_ERROR &&
            strstr(moongrad_last_error(L), "matmul: shapes [3,4] and [5,2] do not match"),
        "errors: an op's error names the op", moongrad_last_error(L));
  lua_pushcfunction(L, raise_table);
  st = moongrad_pcall(L, 0, 0);
  check(st == MOONGRAD_ERROR &&
            strstr(moongrad_last_error(L), "(error object is a table value)"),
        "errors: a non-string error object", moongrad_last_error(L));
  st = moongrad_dostring(L, "x = = 1", "=broken");
  check(st == MOONGRAD_ESYNTAX && strstr(moongrad_last_error(L), "broken:1:"),
        "errors: a syntax error", moongrad_last_error(L));
  st = moongrad_dofile(L, "/nonexistent/model.lua");
  check(st == MOONGRAD_EFILE && strstr(moongrad_last_error(L), "cannot open"),
        "errors: a missing script", moongrad_last_error(L));
  lua_pushinteger(L, 3);
  moongrad_TensorInfo info;
  st = moongrad_tensor_info(L, -1, &info);
  lua_pop(L, 1);
  check(st == MOONGRAD_ERROR && strstr(moongrad_last_error(L), "expected a tensor, got a number"),
        "errors: tensor_info of a number", moongrad_last_error(L));
  /* After all that, the state still works, and a copy out of a transposed
   * result gives row-major data. */
  float in[6] = {1, 2, 3, 4, 5, 6}, out[6];
  int64_t shape[2] = {2, 3};
  lua_getglobal(L, "twice");
  st = moongrad_push_tensor(L, MOONGRAD_FLOAT32, 2, shape, in);
  if (st == MOONGRAD_OK) st = moongrad_pcall(L, 1, 1);
  if (st == MOONGRAD_OK) {
    lua_getfield(L, -1, "t");
    lua_insert(L, -2);
    st = moongrad_pcall(L, 1, 1); /* (2 * in):t() */
  }
  int ok = st == MOONGRAD_OK && moongrad_tensor_info(L, -1, &info) == MOONGRAD_OK &&
           info.ndim == 2 && info.shape[0] == 3 && info.shape[1] == 2 &&
           !info.contiguous && info.data == NULL &&
           moongrad_tensor_copy(L, -1, out, sizeof out) == MOONGRAD_OK &&
           out[0] == 2 && out[1] == 8 && out[2] == 4 && out[5] == 12;
  check(ok, "errors: the state is usable afterwards", moongrad_last_error(L));
  st = moongrad_tensor_copy(L, -1, out, 4);
  check(st == MOONGRAD_ERROR && strstr(moongrad_last_error(L), "has 24 bytes, the buffer 4"),
        "errors: tensor_copy checks the size", moongrad_last_error(L));
  st = moongrad_tensor_copy(L, -1, NULL, sizeof out);
  check(st == MOONGRAD_ERROR &&
            strstr(moongrad_last_error(L), "moongrad_tensor_copy: dst is NULL"),
        "errors: tensor_copy into NULL is refused", moongrad_last_error(L));
  st = moongrad_tensor_info(L, -1, NULL);
  check(st == MOONGRAD_ERROR &&
            strstr(moongrad_last_error(L), "moongrad_tensor_info: info is NULL"),
        "errors: tensor_info into NULL is refused", moongrad_last_error(L));
  lua_pop(L, 1);
  check(lua_gettop(L) == top, "errors: the stack is balanced", "stack changed");
  moongrad_close(L);
}

static void budget(void) {
  const size_t budget = 64u << 20;
  moongrad_Options opt = {.memory_budget = budget};
  lua_State *L = moongrad_new(&opt);
  check(L != NULL, "budget: state", "moongrad_new failed");
  if (!L) return;
  int ok = run(L,
      "local mg = require 'moongrad'\n"
      "local ok, err = pcall(mg.zeros, 100000000)         -- 400 MB\n"
      "tensor_ok = not ok and err:find('not enough memory for a tensor of 400000000 bytes', 1, true)\n"
      "  and err:find('budget of 67108864 bytes', 1, true) ~= nil\n"
      "tensor_err = err\n"
      "ok, err = pcall(function() local t = {} for i = 1, 1e8 do t[i] = i end end)\n"
      "table_ok = not ok and err:find('not enough memory: ', 1, true) == 1\n"
      "  and err:find('budget of 67108864 bytes', 1, true) ~= nil\n"
      "table_err = err\n"
      "ok, err = pcall(string.rep, 'x', 200000000)\n"
      "string_ok = not ok and err:find('budget of 67108864 bytes', 1, true) ~= nil\n"
      "after_ok = (mg.ones(3) * 2):sum():item() == 6\n"
      "local big = mg.zeros(1000000)                       -- 4 MB fits\n"
      "fits_ok = big:sum():item() == 0");
  lua_getglobal(L, "tensor_err");
  lua_getglobal(L, "table_err");
  printf("  tensor: %s\n  table: %s\n", lua_tostring(L, -2), lua_tostring(L, -1));
  lua_pop(L, 2);
  check(ok && global_true(L, "tensor_ok"), "budget: a too-big tensor is a catchable error",
        "no clear error");
  check(ok && global_true(L, "table_ok"), "budget: a table past the budget is a catchable error",
        "no clear error");
  check(ok && global_true(L, "string_ok"), "budget: a string past the budget too", "no error");
  check(ok && global_true(L, "after_ok") && global_true(L, "fits_ok"),
        "budget: the state is usable afterwards", "wrong result");
  /* Uncaught in Lua, the failure reaches the host as a status. */
  int st = moongrad_dostring(L, "local t = {} for i = 1, 1e8 do t[i] = {} end", "=grow");
  check(st == MOONGRAD_ENOMEM &&
            strstr(moongrad_last_error(L), "budget of 67108864 bytes"),
        "budget: uncaught, the host gets ENOMEM and the budget", moongrad_last_error(L));
  check(run(L, "assert((require('moongrad').arange(4) + 1):sum():item() == 10)"),
        "budget: still usable after the uncaught error", moongrad_last_error(L));
  check(moongrad_set_memory_budget(L, 0) == MOONGRAD_OK &&
            run(L, "assert(require('moongrad').zeros(20000000):numel() == 20000000)"),
        "budget: lifted, a bigger tensor fits", moongrad_last_error(L));
  moongrad_close(L);
}

/* 60 MB of tensors that nothing can reach any more: the collector has not
 * run yet, and only their finalizers free them. */
#define GARBAGE "(function() local g = {} for i = 1, 3 do g[i] = mg.zeros(5000000) end end)()\n"
/* A computation that needs Lua's heap to grow, and a look at the tensors. */
#define WORKS "local t = {} for i = 1, 1000 do t[i] = {i} end\n" \
  "assert(#t == 1000 and mg.memory().tensor_bytes < 32 * 2^20)\n"

/* A budget passed by garbage tensors: the state collects them itself. */
static void recovery(void) {
  lua_State *L = moongrad_new(NULL);
  check(L != NULL, "recovery: state", "moongrad_new failed");
  if (!L) return;
  run(L, "mg = require 'moongrad'");
  int ok = run(L, GARBAGE) && moongrad_set_memory_budget(L, 32u << 20) == MOONGRAD_OK;
  check(ok && run(L, "collectgarbage()\n" WORKS),
        "budget: lowered by the host below garbage, the state goes on",
        moongrad_last_error(L));
  /* From Lua: the call that meets the budget may fail, the next one works.
   * The finalizer made after the tensors runs before theirs, while they
   * still fill the budget: the collection has room for it anyway. */
  ok = moongrad_set_memory_budget(L, 0) == MOONGRAD_OK && run(L, GARBAGE) &&
       run(L, "setmetatable({}, {__gc = function() finalized = {1, 2, 3} end})");
  int st = moongrad_dostring(L, "mg.set_memory_limit(32 * 2^20)\n" WORKS, "=lower");
  check(ok && (st == MOONGRAD_OK || st == MOONGRAD_ENOMEM) &&
            run(L, "collectgarbage()\n" WORKS),
        "budget: lowered from Lua below garbage, the next call works",
        moongrad_last_error(L));
  check(run(L, "assert(finalized and #finalized == 3)"),
        "budget: the collection that recovers runs finalizers that allocate",
        moongrad_last_error(L));
  /* Within Lua: once pcall has caught the failure, the script goes on. */
  ok = moongrad_set_memory_budget(L, 0) == MOONGRAD_OK && run(L, GARBAGE);
  check(ok && run(L, "mg.set_memory_limit(32 * 2^20)\n"
                     "caught = pcall(string.rep, 'x', 100000)\n" WORKS),
        "budget: lowered from Lua below garbage, the script goes on after a pcall",
        moongrad_last_error(L));
  /* A tensor that only fits once garbage is collected: the collection runs
   * inside its allocation, and there too a finalizer that allocates runs,
   * though the garbage still fills the budget when it does. */
  ok = moongrad_set_memory_budget(L, 0) == MOONGRAD_OK && run(L, GARBAGE) &&
       run(L, "finalized = nil\n"
              "setmetatable({}, {__gc = function() finalized = string.rep('x', 100000) end})\n"
              "local m = mg.memory()\n"
              "mg.set_memory_limit(m.tensor_bytes + m.lua_bytes + 50000)\n"
              "local t = mg.zeros(2000000)\n"
              "assert(mg.memory().reclaims > 0, 'no reclaim')\n"
              "assert(finalized and #finalized == 100000, 'the finalizer did not run')");
  check(ok, "budget: a collection inside a tensor allocation runs finalizers that allocate",
        moongrad_last_error(L));
  moongrad_close(L);
}

/* A state the host made: luaopen_moongrad through luaL_requiref. */
static int open_in_host_state(lua_State *L) {
  luaL_openlibs(L);
  luaL_requiref(L, "moongrad", luaopen_moongrad, 0);
  lua_setglobal(L, "mg");
  return 0;
}

static void host_state(void) {
  lua_State *L = luaL_newstate();
  lua_pushcfunction(L, open_in_host_state);
  int st = lua_pcall(L, 0, 0, 0);
  check(st == LUA_OK && run(L, "assert(mg.eye(2):sum():item() == 2 and "
                               "require('moongrad.nn').Linear ~= nil)"),
        "host state: luaopen_moongrad opens the library", lua_tostring(L, -1));
  check(moongrad_set_memory_budget(L, 1 << 20) == MOONGRAD_OK &&
            moongrad_dostring(L, "mg.zeros(1000000)", "=big") == MOONGRAD_ERROR &&
            strstr(moongrad_last_error(L), "memory limit is 1048576 bytes"),
        "host state: a tensor budget", moongrad_last_error(L));
  lua_close(L);
  L = luaL_newstate();
  luaL_openlibs(L);
  st = moongrad_set_lua_dir(L, "/nonexistent/lua");
  if (st == MOONGRAD_OK) st = moongrad_open(L);
  check(st == MOONGRAD_ERROR &&
            strstr(moongrad_last_error(L), "/nonexistent/lua/moongrad/init.lua"),
        "host state: moongrad_set_lua_dir is used", moongrad_last_error(L));
  lua_close(L);
}

int main(void) {
  borrowed();
  storage_dtypes();
  errors();
  budget();
  recovery();
  host_state();
  printf("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}
