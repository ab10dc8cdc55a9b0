/*
 * moongrad.h — embedding moongrad in a C program.
 *
 * A host program keeps its models as Lua scripts and drives them from C:
 * it makes a Lua state with moongrad opened, loads a script, hands it
 * tensors made from its own buffers, calls the script's functions and reads
 * tensors back. Link with libmoongrad.a, Lua 5.4 and the libraries the
 * Makefile's LIBS lists (OpenBLAS, OpenMP, cJSON, zlib, libm).
 *
 * A complete program
 * ------------------
 *   #include <stdio.h>
 *   #include "moongrad.h"
 *
 *   int main(void) {
 *     moongrad_Options opt = {.memory_budget = 256u << 20, .num_threads = 1};
 *     lua_State *L = moongrad_new(&opt);
 *     if (!L) return 1;
 *     if (moongrad_dostring(L, "mg = require 'moongrad'\n"
 *                              "function double(x) return x * 2 end", "=setup"))
 *       goto fail;
 *     float in[3] = {1, 2, 3};
 *     int64_t shape[1] = {3};
 *     lua_getglobal(L, "double");
 *     if (moongrad_push_tensor(L, MOONGRAD_FLOAT32, 1, shape, in) ||
 *         moongrad_pcall(L, 1, 1))               // double(tensor) -> tensor
 *       goto fail;
 *     moongrad_TensorInfo info;
 *     if (moongrad_tensor_info(L, -1, &info)) goto fail;
 *     const float *out = info.data;              // valid while the tensor is
 *     printf("%g %g %g\n", out[0], out[1], out[2]);   // on the stack
 *     moongrad_close(L);
 *     return 0;
 *   fail:
 *     fprintf(stderr, "%s\n", moongrad_last_error(L));
 *     moongrad_close(L);
 *     return 1;
 *   }
 *
 * Conventions
 * -----------
 * - Every function here that can fail returns a status (MOONGRAD_OK == 0)
 *   and keeps the message in the state: moongrad_last_error(L). None of them
 *   raises a Lua error into the host's frames (each runs its work under
 *   lua_pcall, out-of-memory included) and none aborts. The exception is
 *   luaopen_moongrad, a lua_CFunction meant to be called by Lua (require,
 *   luaL_requiref): it raises like any open function; moongrad_open is its
 *   protected twin.
 * - Stack effects are given as in the Lua manual: [-o, +p] pops o values and
 *   pushes p. On failure a function pushes nothing.
 * - A state is used by one thread at a time. Different states are
 *   independent (each has its own random generator, thread setting, buffer
 *   cache, memory budget and error message) and may run at the same time
 *   on different threads.
 * - Signals: while train.fit runs in any state, moongrad's own SIGINT and
 *   SIGTERM handler is in place; a signal then stops every fit running,
 *   in every state and thread, after its step (docs/checkpoints.md:
 *   "Ctrl-C during training"). The host's handlers are back once the last fit has
 *   returned (or its state was closed), and a signal no fit takes -- a
 *   second one before they act on the first -- goes to the host's
 *   handler in the meantime.
 * - moongrad's Lua API is the one scripts use (docs/, DESIGN.md): 1-based
 *   indices, dtypes as strings ("float32", "float64", "int64").
 */
#ifndef MOONGRAD_H
#define MOONGRAD_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status -------------------------------------------------------------- */

enum {
  MOONGRAD_OK = 0,
  MOONGRAD_ERROR,   /* a Lua error: a script's error(), a bad argument, a
                       tensor past the memory budget, ... */
  MOONGRAD_ENOMEM,  /* Lua's heap could not grow (the state's budget or the
                       system) */
  MOONGRAD_ESYNTAX, /* a chunk did not compile */
  MOONGRAD_EFILE    /* a script file could not be opened or read */
};

/* "ok", "error", "not enough memory", "syntax error", "file error". */
const char *moongrad_status_string(int status);

/* The message of the last failure of a moongrad_ call on L: the error with
 * a Lua traceback when one was raised. "" when nothing failed yet (or when
 * not even the message's buffer could be allocated: the status says
 * MOONGRAD_ENOMEM then). The string belongs to the state and stays valid
 * until the next failing call on L or moongrad_close. Never NULL. */
const char *moongrad_last_error(lua_State *L);

/* ---- states ---------------------------------------------------------------- */

/* What moongrad_new sets up; zero fields take the defaults, and a NULL
 * options pointer means all defaults. */
typedef struct {
  size_t memory_budget; /* bytes for tensors and Lua's heap together; past it
                           allocations fail with a catchable Lua error; 0 =
                           no budget */
  int num_threads;      /* threads for moongrad's loops and BLAS; 0 = all
                           cores (as mg.set_num_threads) */
  const char *lua_dir;  /* directory holding moongrad/init.lua; NULL = the
                           usual search (moongrad_set_lua_dir) */
  char *error;          /* if not NULL, moongrad_new writes why it failed */
  size_t error_size;    /* here (a NUL-terminated message of at most this) */
} moongrad_Options;

/* A new Lua state with the standard libraries and moongrad opened
 * (package.loaded.moongrad is set; scripts still `require "moongrad"` to get
 * it, which costs nothing more). The state's allocator counts Lua's heap,
 * so memory_budget covers it as well as tensor storage: an allocation that
 * would pass the budget fails, the state raises a Lua error ("not enough
 * memory: ... budget of N bytes ..."), which Lua code can catch with pcall
 * and a host sees as a failed status, and the process does not grow. After
 * the error the state is usable as before. In such a state pcall and xpcall
 * report a refused Lua allocation with that message rather than Lua's bare
 * "not enough memory" (coroutine.resume still gives the bare one).
 * Tensors are freed by Lua's collector, which may not have run when the
 * budget is met: garbage tensors can fill it. The state then recovers by
 * itself: once a call that met the budget has failed -- a moongrad_ call,
 * or a pcall or xpcall in Lua -- it runs a full collection, so the next
 * call (or the code after the pcall) has the memory garbage held.
 * Returns NULL when the state cannot be made (no memory, or the Lua library
 * is not found: see moongrad_set_lua_dir); options->error says why. Close
 * it with moongrad_close. */
lua_State *moongrad_new(const moongrad_Options *options);

/* Closes a state made by moongrad_new (lua_close, then the allocator's
 * bookkeeping). Every tensor is freed and every borrowed buffer's release
 * callback has run when it returns. NULL is fine. Use lua_close for a state
 * the host made itself. */
void moongrad_close(lua_State *L);

/* [-0, +1, e] Opens moongrad in a state the host made, as
 * `require "moongrad"` would, and pushes the module table:
 * moongrad.core comes from the linked library (package.preload), and the Lua
 * library (lua/moongrad/) is put first on package.path from the first of:
 *   1. the directory given to moongrad_set_lua_dir;
 *   2. the environment variable MOONGRAD_LUA_DIR;
 *   3. relative to the executable: lua/ of a source checkout it was built
 *      in (the nearest of its directory's parent, grandparent and
 *      great-grandparent with lua/moongrad/init.lua: build/moongrad,
 *      build/examples/host), or <prefix>/share/lua/5.4 when it is
 *      <prefix>/bin/x;
 *   4. relative to the shared library the host linked: <prefix>/share/lua/5.4
 *      for <prefix>/lib/libmoongrad.so.0 (or <prefix>/lib/<multiarch>/...),
 *      so an installed tree works wherever the host program is;
 *   5. the directory compiled in as MOONGRAD_LUA_DIR (default
 *      /usr/local/share/lua/5.4).
 * Cases 3 to 5 need the directory to hold moongrad/init.lua; 1 and 2 are
 * taken as given.
 * Needs the standard libraries (luaL_openlibs). A lua_CFunction: call it
 * with luaL_requiref(L, "moongrad", luaopen_moongrad, 0) from protected
 * code, or use moongrad_open. Tensor memory then has no budget until
 * moongrad_set_memory_budget; Lua's heap is the host's allocator's
 * business. */
int luaopen_moongrad(lua_State *L);

/* [-0, +0] luaopen_moongrad, protected: returns a status and leaves the
 * module in package.loaded.moongrad. */
int moongrad_open(lua_State *L);

/* [-0, +0] Uses dir as the directory holding moongrad/init.lua (case 1
 * above). Call it before luaopen_moongrad / moongrad_open; afterwards it
 * still puts dir first on package.path, for modules not loaded yet. The
 * string is copied. */
int moongrad_set_lua_dir(lua_State *L, const char *dir);

/* [-0, +0] Sets the state's memory budget in bytes (0 = none). In a state
 * from moongrad_new it covers tensors and Lua's heap together; in a host's
 * own state, tensors only. mg.set_memory_limit(bytes) from Lua sets the same
 * budget. Before a lower budget applies, a full collection frees what is
 * garbage; allocations still in use are kept even past the budget. */
int moongrad_set_memory_budget(lua_State *L, size_t bytes);

/* ---- running Lua code ------------------------------------------------------- */

/* [-0, +0] Runs the Lua script at path (no arguments, results dropped). */
int moongrad_dofile(lua_State *L, const char *path);

/* [-0, +0] Runs the chunk code; chunkname names it in messages as
 * luaL_loadbuffer's does ("=model" shows as "model"; NULL: the code). */
int moongrad_dostring(lua_State *L, const char *code, const char *chunkname);

/* [-(nargs+1), +nresults] Calls the function below the nargs arguments on
 * top of the stack, as lua_pcall does (nresults may be LUA_MULTRET). On
 * failure it pops the function and arguments, pushes nothing, and the
 * message (with a traceback) is moongrad_last_error(L); only a call with
 * fewer than nargs + 1 values on the stack fails without popping them. */
int moongrad_pcall(lua_State *L, int nargs, int nresults);

/* ---- tensors ------------------------------------------------------------------ */

typedef enum {
  MOONGRAD_FLOAT32 = 0, /* float */
  MOONGRAD_FLOAT64 = 1, /* double */
  MOONGRAD_INT64 = 2,   /* int64_t (class labels and ids are 1-based) */
  MOONGRAD_UINT8 = 3    /* uint8_t: pixels and bytes, for data only (Lua
                           converts it with :float() before computing) */
} moongrad_DType;

#define MOONGRAD_MAXDIM 16 /* most dimensions a tensor may have */

/* [-0, +1] Pushes a new contiguous tensor of dtype, shape shape[0..ndim-1]
 * (row-major), holding a copy of the numel elements at data (data may be
 * NULL only when numel is 0; otherwise NULL is an error). The host keeps
 * its buffer. Counts against the memory budget. */
int moongrad_push_tensor(lua_State *L, moongrad_DType dtype, int ndim,
                         const int64_t *shape, const void *data);

/* Gives a borrowed buffer back to its owner; ud is what the host passed. */
typedef void (*moongrad_Release)(void *data, void *ud);

/* [-0, +1] Pushes a tensor that uses the host's buffer in place, without
 * copying: data holds the numel elements, row-major, aligned to the element
 * size (data may be NULL only when numel is 0; otherwise NULL is an error,
 * and release has run when it returns). moongrad may read it (and in-place ops such as add_ write into it)
 * until it calls release(data, ud), which happens exactly once: when the
 * last tensor or view using the buffer is collected or closed (at
 * lua_close/moongrad_close at the latest), or before this function returns
 * if it fails. release may be NULL. It runs on the thread using the state,
 * often inside the garbage collector: it must not call into L. Results of
 * ops on the tensor are new tensors with their own memory; the buffer does
 * not count against the budget. */
int moongrad_push_tensor_borrowed(lua_State *L, moongrad_DType dtype,
                                  int ndim, const int64_t *shape, void *data,
                                  moongrad_Release release, void *ud);

/* What moongrad_tensor_info tells about a tensor. */
typedef struct {
  moongrad_DType dtype;
  int ndim;                         /* 0 for a scalar tensor */
  int64_t shape[MOONGRAD_MAXDIM];   /* sizes, outermost first */
  int64_t numel;                    /* product of the sizes */
  size_t nbytes;                    /* numel times the element size */
  int contiguous;                   /* row-major without gaps */
  void *data;                       /* the first element when contiguous,
                                       else NULL: use moongrad_tensor_copy */
} moongrad_TensorInfo;

/* [-0, +0] Describes the tensor at stack index idx in *info. data points
 * into the tensor's storage: it is valid while the tensor is alive (keep it
 * on the stack or in a Lua variable) and shows in-place changes. A value
 * that is not a tensor, or a NULL info, is an error. */
int moongrad_tensor_info(lua_State *L, int idx, moongrad_TensorInfo *info);

/* [-0, +0] Copies the tensor at idx, in any layout, into dst as row-major
 * elements of its own dtype (dst aligned to the element size). nbytes must
 * be the tensor's size in bytes (moongrad_TensorInfo.nbytes); anything else
 * is an error and writes nothing, as is a NULL dst with nbytes above 0. */
int moongrad_tensor_copy(lua_State *L, int idx, void *dst, size_t nbytes);

#ifdef __cplusplus
}
#endif

#endif
