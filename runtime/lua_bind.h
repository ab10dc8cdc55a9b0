/*
 * lua_bind.h — what the Lua binding files share.
 *
 * The binding only translates: it checks Lua arguments, converts 1-based
 * and negative dims to the core's 0-based ones, calls the core and turns a
 * failed status into a Lua error carrying the core's message.
 *
 * Every binding function is registered with the context userdata as its
 * first upvalue (mgl_ctx reads it), so two Lua states never share a
 * context. A family of ops exports a luaL_Reg array of tensor methods (each
 * is also a function of the module: x:exp() == mg.exp(x)) and one of
 * module-only functions; lua_module.c lists the families.
 *
 * Handle before resource: a function that makes a tensor first pushes an
 * empty userdata with mgl_slot, then lets the core fill the slot, so a Lua
 * error at any point never leaks the tensor.
 */
#ifndef MG_LUA_BIND_H
#define MG_LUA_BIND_H

#include <lauxlib.h>
#include <lua.h>

#include "mg_core.h"

#define MGL_TENSOR "moongrad.Tensor" /* the metatable's __name */
/* The dtype names, for messages that list them. */
#define MGL_DTYPE_LIST "\"float32\", \"float64\", \"int64\", \"uint8\", " \
  "\"float16\", \"bfloat16\", \"int32\", \"int16\", \"int8\" or \"bool\""

/* The context userdata every binding function holds as upvalue 1: the
 * context, and the address of the tensor metatable, so that telling a
 * tensor argument needs no registry lookup. */
typedef struct {
  mg_Context *ctx; /* first: what mgl_state_ctx and the context's __gc read */
  const void *tensor_mt;
} mgl_Handle;

mg_Context *mgl_ctx(lua_State *L);
/* Pops the tensor metatable into the registry slot mgl_slot, mgl_push,
 * mgl_test and mgl_check find it by (module opening). */
void mgl_register_tensor_mt(lua_State *L);
/* Pushes a tensor userdata holding NULL; returns its slot. */
mg_Tensor **mgl_slot(lua_State *L);
/* Pushes t (taking over the caller's reference). Use only when t was made
 * without a slot, e.g. a second result. */
void mgl_push(lua_State *L, mg_Tensor *t);
mg_Tensor *mgl_check(lua_State *L, int arg);  /* raises if not a tensor */
/* NULL if not a tensor; raises "tensor was already closed" for a tensor
 * released by <close> (never mistake it for a non-tensor argument). */
mg_Tensor *mgl_test(lua_State *L, int arg);
/* mgl_check and mgl_test refuse a tensor of a storage dtype (uint8,
 * float16, bfloat16, int32, int16, int8, bool), naming the function: no
 * computing kernel knows them. The _any forms take them: for the bindings
 * that only move, convert, join, index, print or save data (mg_core.h
 * lists what the storage dtypes support). */
mg_Tensor *mgl_check_any(lua_State *L, int arg);
mg_Tensor *mgl_test_any(lua_State *L, int arg);
/* mgl_test for callers whose upvalue 1 may be anything (mg_capi.h). */
mg_Tensor *mgl_test_extern(lua_State *L, int arg);
/* The userdata's __gc and __close: drops its reference and empties the
 * slot (lua_args.c, like everything above it here down to mgl_check_options;
 * the method tables are the families' own). */
int mgl_tensor_gc(lua_State *L);

/* Raises the context's last error as a Lua error (never returns). A message
 * that names no op (an allocation failure deep in the core) is prefixed
 * with the name the Lua function was called by. */
int mgl_raise(lua_State *L, mg_Context *ctx);
/* The context's reclaim function (set when the module opens): a full
 * collection of the state the argument is a thread of. */
void mgl_reclaim(mg_Context *ctx, void *L);
/* Tells Lua's collector about tensor bytes handed out, once per MiB. */
void mgl_account(lua_State *L, mg_Context *ctx);

/* Runs a core call with L as the allocator's reclaim argument: an
 * allocation that fails collects garbage and tries again inside the call
 * (mg_set_reclaim), so the call itself is never repeated and may have any
 * side effects. On failure raises; on success accounts the bytes. Every
 * binding's core call that can allocate goes through it (or MGL_ARM). */
#define MGL_TRY(L, ctx, call)                                              \
  do {                                                                     \
    void *mgl_prev_ = mg_swap_reclaim_arg((ctx), (L));                     \
    int mgl_st_ = (call);                                                  \
    mg_swap_reclaim_arg((ctx), mgl_prev_);                                 \
    if (mgl_st_ != MG_OK) mgl_raise((L), (ctx));                           \
    mgl_account((L), (ctx));                                               \
  } while (0)

/* MGL_TRY's reclaim argument for calls that need their status first:
 * `int st = MGL_ARM(L, ctx, call);` then raise or not. */
#define MGL_ARM(L, ctx, call)                                              \
  mgl_arm_end_((ctx), mg_swap_reclaim_arg((ctx), (L)), (call))
static inline int mgl_arm_end_(mg_Context *ctx, void *prev, int st) {
  mg_swap_reclaim_arg(ctx, prev);
  return st;
}

/* A dim argument (1-based, or negative from the end) as a 0-based dim of a
 * tensor with ndim dims; raises naming op. ndim_extra allows one past the
 * end (unsqueeze). */
int mgl_checkdim(lua_State *L, int arg, int ndim, int ndim_extra,
                 const char *op);
/* A shape given as numbers from arg on, or as one table at arg. Returns
 * ndim. */
int mgl_checkshape(lua_State *L, int arg, int64_t *shape, const char *op);
/* A dtype string at arg (or the default when none/nil); mgl_optdtype
 * refuses the storage dtypes, mgl_optdtype_any takes them (creators of
 * data). */
mg_DType mgl_optdtype(lua_State *L, int arg, mg_DType def, const char *op);
mg_DType mgl_optdtype_any(lua_State *L, int arg, mg_DType def,
                          const char *op);
/* An integer argument, with an error naming op when it is not one. */
int64_t mgl_checkint(lua_State *L, int arg, const char *op, const char *what);
/* A value to write into a tensor: a number, or a boolean as 1 or 0. */
double mgl_checkvalue(lua_State *L, int arg, const char *op);
/* A number argument, with an error naming op when it is not one. */
double mgl_checknum(lua_State *L, int arg, const char *op, const char *what);
/* Reads an optional boolean field of an options table at arg. */
int mgl_optbool_field(lua_State *L, int arg, const char *name, int def,
                      const char *op);
/* Rejects keys of the options table at arg not in the NULL-ended list. */
void mgl_check_options(lua_State *L, int arg, const char *const *known,
                       const char *op);

/* Function families (each defined in its own lua_*.c file). */
extern const luaL_Reg mgl_tensor_methods[];    /* lua_tensor.c */
extern const luaL_Reg mgl_tensor_functions[];
extern const luaL_Reg mgl_create_methods[];    /* lua_create.c */
extern const luaL_Reg mgl_create_functions[];
extern const luaL_Reg mgl_ops_methods[];       /* lua_ops.c */
extern const luaL_Reg mgl_ops_functions[];
extern const luaL_Reg mgl_reduce_methods[];    /* lua_reduce.c */
extern const luaL_Reg mgl_index_methods[];     /* lua_index.c */
extern const luaL_Reg mgl_index_functions[];
extern const luaL_Reg mgl_autograd_methods[];  /* lua_autograd.c */
extern const luaL_Reg mgl_autograd_functions[];
extern const luaL_Reg mgl_nn_functions[];      /* lua_nn.c: F.*, as mg._* */
extern const luaL_Reg mgl_optim_functions[];   /* lua_optim.c: mg._optim_step, ... */
extern const luaL_Reg mgl_augment_functions[]; /* lua_augment.c: mg._flip, ... */
extern const luaL_Reg mgl_imageops_functions[]; /* lua_imageops.c: mg._image_resize, ... */
extern const luaL_Reg mgl_io_functions[];      /* lua_io.c: mg._read_idx, mg._read_csv */
extern const luaL_Reg mgl_image_functions[];   /* lua_image.c: mg._image_load, mg._listdir, ... */
extern const luaL_Reg mgl_safetensors_functions[]; /* lua_safetensors.c: mg.save, mg.load */
extern const luaL_Reg mgl_conv_functions[];    /* lua_conv.c: mg._conv2d */
extern const luaL_Reg mgl_pool_functions[];    /* lua_pool.c: mg._max_pool2d, ... */
extern const luaL_Reg mgl_join_methods[];     /* lua_join.c: tril, triu */
extern const luaL_Reg mgl_join_functions[];   /* lua_join.c: mg.cat, mg.stack */
extern const luaL_Reg mgl_linalg_functions[];  /* lua_linalg.c: mg.linalg.* */
extern const luaL_Reg mgl_linalg_module_functions[]; /* mg.cholesky_solve */
extern const luaL_Reg mgl_signal_functions[];  /* lua_signal.c: mg._signals_* */
extern const luaL_Reg mgl_rnn_functions[];     /* lua_rnn.c: mg._rnn_layer */
extern const luaL_Reg mgl_proc_functions[];    /* lua_proc.c: mg._proc_spawn, ... */
extern const luaL_Reg mgl_shm_functions[];     /* lua_shm.c: mg._shm_slot */
extern const luaL_Reg mgl_complete_functions[]; /* lua_complete.c: mg._candidates */
extern const luaL_Reg mgl_attach_functions[];  /* lua_attach.c: mg._unix_listen, ... */
extern const luaL_Reg mgl_tensor_meta[];       /* metamethods, lua_tensor.c */
extern const luaL_Reg mgl_ops_meta[];          /* arithmetic, lua_ops.c */

/* candidates(expr, sep, prefix [, root]) -> {name = kind}: the names Tab
 * completes. expr nil: the keywords and the names in root (default: the
 * globals) starting with prefix; otherwise expr ("mg" or "mg.nn") is walked
 * from root and its fields listed, only functions when sep is ":". kind is
 * "f" (function), "t" (table), "k" (keyword) or "v". Registered as
 * mg._candidates; the REPL and the Jupyter kernel call it too
 * (lua_complete.c). */
int mgl_candidates(lua_State *L);
/* Whether s is a Lua name (letters, digits, '_', not starting with a digit). */
int mgl_is_name(const char *s);

/* Formats t the way __tostring shows it (lua_format.c); pushes a string. */
void mgl_push_tostring(lua_State *L, const mg_Tensor *t);

int luaopen_moongrad_core(lua_State *L);
/* The context of the state's moongrad.core (the last one opened), or NULL
 * when it was never opened; raises nothing (lua_module.c). */
mg_Context *mgl_state_ctx(lua_State *L);
/* [-0, +0, e] Registers the linked core as package.preload["moongrad.core"]
 * and puts the Lua library's directory first on package.path, found as
 * moongrad.h's luaopen_moongrad describes (api.c; the executable uses it
 * too). */
void mgl_preload(lua_State *L);

#endif
