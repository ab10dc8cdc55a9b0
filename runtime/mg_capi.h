/*
 * mg_capi.h — what a separately built C module (moongrad.dist_mpi) may use
 * of the core it is loaded beside.
 *
 * Lua's require loads C modules with local symbol scope, so a second module
 * cannot link against the core's functions: the core it must talk to may be
 * the executable, core.so or libmoongrad.so. Instead the core leaves a
 * table of function pointers in the Lua registry, under MGL_CAPI_KEY, as a
 * light userdata; a module reads it from the state it is opened in, and so
 * always reaches the very core that made the state's tensors.
 */
#ifndef MG_CAPI_H
#define MG_CAPI_H
#include <lua.h>
#include "mg_core.h"

#define MGL_CAPI_KEY "moongrad.capi"
#define MGL_CAPI_VERSION 2

typedef struct mgl_CAPI {
  int version;                                  /* MGL_CAPI_VERSION */
  mg_Tensor *(*test)(lua_State *L, int arg);    /* mgl_test */
  void *(*data)(const mg_Tensor *t);            /* mg_data */
  int64_t (*numel)(const mg_Tensor *t);         /* mg_numel */
  int (*is_contiguous)(const mg_Tensor *t);     /* mg_is_contiguous */
  const char *(*dtype_name)(mg_DType dt);       /* mg_dtype_name */
  mg_Context *(*state_ctx)(lua_State *L);       /* mgl_state_ctx */
  void (*set_grad_hook)(mg_Context *ctx, mg_GradHook hook, void *ud);
} mgl_CAPI;

#endif
