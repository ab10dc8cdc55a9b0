/*
 * mg_dnnl.h — what moongrad's two oneDNN paths share (dnnl_base.c): the
 * context's engine and stream, the lock around creating and destroying
 * primitives, the thread-count bracket and running a primitive with its
 * scratchpad from moongrad's allocator. conv_dnnl.c (conv2d) and
 * gemm_dnnl.c (float32 GEMMs) each hang their own primitive cache on the
 * state; neither calls the other.
 */
#ifndef MG_DNNL_H
#define MG_DNNL_H

#include <oneapi/dnnl/dnnl.h>

#include "mg_internal.h"

/* The users of the state, each with a cache slot. */
enum { MG_DNNL_CONV, MG_DNNL_GEMM, MG_DNNL_USERS };

struct mg_DnnlState {
  int broken; /* the engine or stream could not be made: never retry */
  dnnl_engine_t eng;
  dnnl_stream_t stream;
  void *cache[MG_DNNL_USERS];                        /* each user's, or NULL */
  void (*cache_release[MG_DNNL_USERS])(void *cache); /* frees cache[i] */
};

/* The context's state, made on first use; NULL when oneDNN has no CPU
 * engine here (the caller then falls back). */
struct mg_DnnlState *mg_dnnl_state(mg_Context *ctx);

/* User user's cache on the context's state: bytes of zeroes made on first
 * use, which the state frees with release when the context goes; NULL
 * when oneDNN is unavailable or memory ran out. */
void *mg_dnnl_cache(mg_Context *ctx, int user, size_t bytes,
                    void (*release)(void *cache));

/* oneDNN keeps a process-wide primitive cache behind its own lock, which
 * ThreadSanitizer cannot see inside the uninstrumented library: two
 * states creating primitives on two threads read as a race there. Every
 * creation and destruction (rare: once per shape and context) takes this
 * lock as well, so the ordering is visible; executes do not. */
void mg_dnnl_lock(void);
void mg_dnnl_unlock(void);

/* Sets the calling thread's OpenMP thread count (what oneDNN reads when it
 * makes a primitive and when it runs one) to nt; returns the count that
 * mg_dnnl_threads_end restores. */
int mg_dnnl_threads_begin(int nt);
void mg_dnnl_threads_end(int was);

/* Runs primitive p of descriptor pd with nargs args (args has room for
 * one more: the scratchpad, a buffer from the allocator) and waits for it.
 * MG_OK, or MG_ENOMEM (a message set) when the scratchpad did not fit, or
 * MG_EARG with oneDNN's status in *dst (no message: the caller names its
 * op). */
int mg_dnnl_run(mg_Context *ctx, struct mg_DnnlState *S, dnnl_primitive_desc_t pd,
                dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args,
                dnnl_status_t *dst);

/* A float32 tensor of at least bytes bytes, from the allocator. */
int mg_dnnl_buffer(mg_Context *ctx, mg_Tensor **t, size_t bytes);

#endif
