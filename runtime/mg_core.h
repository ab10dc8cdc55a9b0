/*
 * mg_core.h — the moongrad C core: contexts, tensors and their ops.
 *
 * This header is the manual for the core. It has no Lua dependency: the Lua
 * binding (lua_*.c) is one thin layer on top of it, and a host program may
 * use it directly.
 *
 * A short tour
 * ------------
 *   mg_Context *ctx = mg_context_new();           // RNG, threads, memory
 *   int64_t shape[2] = {2, 3};
 *   mg_Tensor *a = NULL, *b = NULL, *c = NULL;
 *   if (mg_full(ctx, &a, MG_F32, 2, shape, 1.0) ||
 *       mg_randn(ctx, &b, MG_F32, 2, shape) ||
 *       mg_binary(ctx, &c, MG_OP_ADD, a, b))
 *     fprintf(stderr, "%s\n", mg_last_error(ctx));
 *   mg_tensor_decref(a); mg_tensor_decref(b); mg_tensor_decref(c);
 *   mg_context_decref(ctx);
 *
 * Conventions
 * -----------
 * - Every function that can fail returns an int status (MG_OK == 0) and, on
 *   failure, leaves a message naming the op and the offending shapes or
 *   values in the context (mg_last_error). Nothing here aborts or exits.
 * - Outputs come first, then inputs, then sizes and options. An output
 *   `mg_Tensor **out` receives a new reference the caller owns; on failure
 *   *out is left untouched (NULL if it was NULL).
 * - Dimensions and scalar positions are 0-based in C. The Lua binding
 *   converts from 1-based and negative dimensions before calling in; error
 *   messages speak Lua's language (1-based) because that is what users read.
 * - Index *tensors* hold 1-based positions, in C as in Lua (argmax's result,
 *   randperm, the ids of index_select/gather/scatter): they are data that
 *   flows between the two unchanged, so nothing converts them.
 * - Tensors are refcounted and views share a refcounted storage.
 * - Nothing is global: RNG, thread count, the buffer cache and memory
 *   accounting all hang off an mg_Context, one per Lua state.
 *
 * The rest of the manual
 * ----------------------
 * The op families with options of their own have a header each, installed
 * beside this one (include/moongrad/) and read the same way:
 *   mg_conv.h         conv2d, conv_transpose2d, pad
 *   mg_pool.h         max, average and adaptive pooling
 *   mg_rnn.h          the recurrence of RNN, LSTM and GRU layers
 *   mg_augment.h      batch augmentation (crops, flips, affine, erasing)
 *   mg_imageops.h     image resizing, color, warps, dtype conversion
 *   mg_image.h        PNG and JPEG decoding and encoding
 *   mg_io.h           IDX and CSV readers
 *   mg_file.h         atomic whole-file writes and safe reads
 *   mg_safetensors.h  safetensors files
 * moongrad.h is the embedding API (Lua states running scripts).
 */
#ifndef MG_CORE_H
#define MG_CORE_H

#include <stddef.h>
#include <stdint.h>

#define MG_VERSION "0.1.0"
#define MG_MAXDIM 16 /* most dimensions a tensor may have */

/* ---- status ------------------------------------------------------------ */

enum {
  MG_OK = 0,
  MG_EARG,    /* a bad argument: wrong value, option or dtype */
  MG_ESHAPE,  /* shapes that do not fit together */
  MG_EINDEX,  /* an index or dimension out of range */
  MG_ENOMEM,  /* an allocation failed or would pass the memory budget */
  MG_EIO,     /* a file could not be read or written */
  MG_NSTATUS
};
const char *mg_status_string(int status);

/* ---- dtypes ------------------------------------------------------------ */

/* float32, float64 and int64 are computed on. The others are storage
 * dtypes, so that a file's tensors come back as themselves: uint8 (pixels
 * and bytes), float16, bfloat16, int32, int16, int8 and bool. They are
 * created, converted (to any dtype, from any, as PyTorch converts on x86:
 * halves round to nearest even, floats truncate toward zero into integers,
 * anything is true as bool when it is not 0), viewed, copied, filled,
 * indexed (get/set, index_select), joined (cat, stack, with PyTorch's type
 * promotion), printed and saved; the Lua binding refuses them to every op
 * that computes (convert with :float() first), so kernels need not know
 * them. */
typedef enum {
  MG_F32 = 0, MG_F64 = 1, MG_I64 = 2, MG_U8 = 3, MG_F16 = 4, MG_BF16 = 5,
  MG_I32 = 6, MG_I16 = 7, MG_I8 = 8, MG_BOOL = 9, MG_NDTYPES
} mg_DType;

const char *mg_dtype_name(mg_DType dt);       /* "float32", ... */
int mg_dtype_from_name(const char *name);     /* -1 when unknown */
size_t mg_dtype_size(mg_DType dt);            /* bytes per element */
int mg_dtype_is_int(mg_DType dt);             /* an integer dtype (not bool) */
int mg_dtype_is_float(mg_DType dt);           /* float16 ... float64 */
int mg_dtype_computes(mg_DType dt);           /* float32, float64, int64 */
/* The dtype two operands are joined or computed in: PyTorch's
 * promote_types (bool < integers < floats; within a kind the wider type,
 * uint8 with a signed type the next signed type that holds both, float16
 * with bfloat16 float32). */
mg_DType mg_promote(mg_DType a, mg_DType b);
/* Can v be written into a tensor of dtype dt as a value (not a
 * conversion)? Integers must be whole and in range, halves must not
 * overflow (inf and NaN go in as they are); bool and the computing dtypes
 * take any number. mg_dtype_range says what fits, for messages. */
int mg_value_fits(mg_DType dt, double v);
const char *mg_dtype_range(mg_DType dt);

/* ---- context ------------------------------------------------------------ */

typedef struct mg_Context mg_Context;

/* A new context with refcount 1, seeded with 0, using all cores; NULL only
 * when memory is exhausted. */
mg_Context *mg_context_new(void);
void mg_context_incref(mg_Context *ctx);
void mg_context_decref(mg_Context *ctx); /* frees at zero, with its cache */

const char *mg_last_error(const mg_Context *ctx);
/* Records a failure: formats the message into ctx and returns status. */
int mg_error(mg_Context *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void mg_set_num_threads(mg_Context *ctx, int n); /* n >= 1 */
int mg_get_num_threads(const mg_Context *ctx);
/* Deterministic mode on (1) or off (0); returns the previous setting. On,
 * every op gives the same bits for any thread count (mg_set_num_threads):
 * BLAS products go in fixed row blocks to single-threaded OpenBLAS and
 * LAPACK runs on one thread. Off, results are reproducible for a given
 * thread count only. Every loop of moongrad's own already splits its work
 * by shape, never by thread count. */
int mg_set_deterministic(mg_Context *ctx, int on);
/* With reference kernels on, ops that have fast special-case kernels (2×2
 * max pooling, ...) run their general kernels instead; specs compare the
 * two. Returns the previous setting. */
int mg_set_reference_kernels(mg_Context *ctx, int on);

/* ---- memory -------------------------------------------------------------
 * Tensor buffers come from a size-bucketed cache of freed buffers; a buffer
 * freed into a full cache goes back to the system. live_bytes counts what
 * tensors hold, as asked for (a size class's slack is the allocator's);
 * limit_bytes (0 = none) is a budget for it past which allocations fail
 * with MG_ENOMEM. gc_debt counts bytes handed out since the binding
 * last told Lua's collector (mg_take_gc_debt), less those the core holds
 * itself (mg_gc_forgive). */
typedef struct {
  size_t live_bytes;     /* asked for by storages that are alive (and
                            charged by a file reader's buffers while it
                            reads, mg_charge) */
  size_t header_bytes;   /* tensor structs alive (views included) */
  size_t peak_bytes;     /* highest live_bytes seen */
  size_t cached_bytes;   /* freed buffers kept for reuse */
  size_t cache_limit;    /* most bytes the cache keeps */
  size_t limit_bytes;    /* budget for live_bytes + header_bytes, 0 =
                            unlimited */
  uint64_t allocs;       /* buffers handed out */
  uint64_t cache_hits;   /* of those, how many came from the cache */
  uint64_t reclaims;     /* failed allocations that asked to reclaim and
                            tried again (mg_set_reclaim) */
} mg_MemoryStats;

void mg_memory_stats(const mg_Context *ctx, mg_MemoryStats *out);
void mg_set_memory_limit(mg_Context *ctx, size_t bytes);  /* 0 = none */
/* Charges *other_bytes (read at every allocation; NULL = nothing) to the
 * same limit as the tensors: the embedding API points it at the Lua heap's
 * size, so that one budget covers both. Cached buffers are then given back
 * to the system before the two together would pass the limit. */
void mg_share_memory_limit(mg_Context *ctx, const size_t *other_bytes);
void mg_set_cache_limit(mg_Context *ctx, size_t bytes);
void mg_empty_cache(mg_Context *ctx);   /* returns cached buffers to libc */
/* Reclaiming memory. An allocation that fails (past the limit, or libc
 * out of memory) calls the context's reclaim function once with the
 * argument set for the call running now, empties the cache, and tries
 * again, inside the allocation: the caller never sees the first failure,
 * and no operation is ever run twice to retry it (an op that has already
 * accumulated into gradients or updated parameters goes on from where it
 * was). The Lua binding's function runs a full collection of the state
 * whose tensor finalizers free what is unreachable; its argument is the
 * running lua_State, set around each core call (mg_swap_reclaim_arg sets
 * one and returns the previous one, so calls nest). With no argument set,
 * a failed allocation fails at once. The function may free tensors and run
 * other moongrad calls, but gets no reclaim of its own while it runs. */
typedef void (*mg_ReclaimFn)(mg_Context *ctx, void *arg);
void mg_set_reclaim(mg_Context *ctx, mg_ReclaimFn fn);
void *mg_swap_reclaim_arg(mg_Context *ctx, void *arg);
/* The bytes handed out since the last call, if at least min and at least
 * an eighth of live_bytes (then reset to zero); 0 otherwise. */
size_t mg_take_gc_debt(mg_Context *ctx, size_t min);
/* nbytes of a buffer the core now holds until it frees it itself (a
 * leaf's .grad, allocated since the debt was last taken) come off the
 * debt: no collection is needed to free them; mg_gc_charge puts them back
 * when the binding hands the buffer to Lua. */
void mg_gc_forgive(mg_Context *ctx, size_t nbytes);
void mg_gc_charge(mg_Context *ctx, size_t nbytes);

/* Buffer allocation used by storages; returns NULL with an MG_ENOMEM
 * message in ctx on failure. */
void *mg_buffer_alloc(mg_Context *ctx, size_t nbytes);
void mg_buffer_free(mg_Context *ctx, void *p, size_t nbytes);

/* ---- random numbers -------------------------------------------------------
 * Philox4x32-10, a counter-based generator: the numbers drawn depend only on
 * (seed, stream, offset), never on the thread count, and the state is three
 * integers that save and restore exactly. Each draw advances offset by the
 * number of 128-bit blocks it used. Block b of a stream is Philox's block
 * for key seed and counter (b, stream): streams of one seed are
 * independent sequences, and stream 0 is the main one. */
typedef struct {
  uint64_t seed;    /* the key */
  uint64_t offset;  /* blocks used so far: the counter's low 64 bits */
  uint64_t stream;  /* the counter's high 64 bits; 0 for the main stream */
} mg_RngState;

/* Seeds the main stream: (seed, offset 0, stream 0). */
void mg_manual_seed(mg_Context *ctx, uint64_t seed);
mg_RngState mg_get_rng_state(const mg_Context *ctx);
void mg_set_rng_state(mg_Context *ctx, mg_RngState st);
/* One Philox block: four 32-bit words for (key, counter). */
void mg_philox(uint32_t out[4], uint64_t key, uint64_t ctr_lo, uint64_t ctr_hi);
/* A uniform double in [0,1) drawn from the context's stream (uses a block). */
double mg_rng_uniform(mg_Context *ctx);

/* ---- tensors ------------------------------------------------------------ */

/* Called once when a storage over a borrowed buffer is freed (see
 * mg_from_buffer): the buffer is the owner's again. */
typedef void (*mg_ReleaseFn)(void *data, void *ud);

typedef struct mg_Storage {
  void *data;          /* the elements (or NULL for zero bytes) */
  size_t nbytes;       /* size of data */
  int refcount;        /* tensors sharing this storage */
  uint64_t version;    /* bumped by every in-place write (autograd checks) */
  mg_Context *ctx;     /* owner of the buffer cache (holds a reference) */
  int borrowed;        /* data belongs to someone else (mg_from_buffer) */
  mg_ReleaseFn release; /* borrowed: returns data to its owner, or NULL */
  void *release_ud;    /* the owner's argument to release */
} mg_Storage;

typedef struct mg_Tensor {
  /* The fields every op and every release reads share the first cache
   * line; the shape and strides follow. */
  mg_Storage *storage;        /* shared by views */
  int64_t offset;             /* first element, in elements */
  int ndim;                   /* 0 for a scalar tensor */
  mg_DType dtype;
  int refcount;               /* owners of this tensor struct */
  struct mg_Autograd *autograd; /* NULL for tensors outside autograd */
  int64_t shape[MG_MAXDIM];   /* sizes, shape[0] outermost */
  int64_t stride[MG_MAXDIM];  /* in elements; 0 for broadcast dims */
} mg_Tensor;

void mg_tensor_incref(mg_Tensor *t);
void mg_tensor_decref(mg_Tensor *t);  /* NULL is fine */

int64_t mg_numel(const mg_Tensor *t);
int mg_is_contiguous(const mg_Tensor *t);
/* Does t cover a block of memory exactly once, in some order of its dims
 * (contiguous, or a permutation of it such as channels last)? */
int mg_is_dense(const mg_Tensor *t);
/* Is t a 4-D [N, C, H, W] tensor laid out channels last: memory order
 * N, H, W, C (strides [H·W·C, 1, W·C, C]), as PyTorch's
 * torch.channels_last? */
int mg_is_channels_last(const mg_Tensor *t);
/* Pointer to the first element (storage data + offset). */
void *mg_data(const mg_Tensor *t);
/* "[2,3]" into buf (for messages); returns buf. */
char *mg_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);
#define MG_SHAPE_BUFSZ 256

/* The most elements a tensor or a view may have, counting only its nonzero
 * sizes (so that strides and byte offsets of any dtype stay within
 * int64): 2^59 - 1. Every shape is checked against it where it is made
 * (mg_check_shape for new tensors, mg_make_view for views, expanded ones
 * included), so no later product of sizes can overflow. */
#define MG_MAX_NUMEL (INT64_MAX / 16)

/* Sliding-window geometry (conv2d, pooling, padded crops), checked where
 * the options arrive so that no later arithmetic overflows: stride,
 * padding and dilation (and pooling's kernel size) may be at most
 * MG_MAX_WINDOW (conv's graph keeps them in 32 bits), and the padded
 * image (h + 2 pad_h) x (w + 2 pad_w) must have at most MG_MAX_NUMEL
 * elements. mg_check_window_param fails (MG_EARG, naming op and what)
 * for a value below min or past MG_MAX_WINDOW; mg_padded_size sets the
 * padded sizes or fails naming op and the padding. */
#define MG_MAX_WINDOW INT32_MAX
int mg_check_window_param(mg_Context *ctx, const char *op, const char *what,
                          int64_t v, int64_t min);
int mg_padded_size(mg_Context *ctx, const char *op, int64_t h, int64_t w,
                   int64_t pad_h, int64_t pad_w, int64_t *ph, int64_t *pw);
/* A kernel's extent with dilation, d·(k-1)+1, or INT64_MAX when that does
 * not fit in int64 (larger than any padded size: callers refuse it). */
int64_t mg_dilated_extent(int64_t k, int64_t d);

/* Checks a requested shape (sizes >= 0, ndim <= MG_MAXDIM, a size that
 * fits in memory at all); names op in the error (no op when op is NULL). */
int mg_check_shape(mg_Context *ctx, const char *op, int ndim,
                   const int64_t *shape);
/* Row-major strides for shape. */
void mg_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);

/* Creation. Shapes are checked (every size >= 0, ndim <= MG_MAXDIM). */
int mg_empty(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
             const int64_t *shape);
int mg_full(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
            const int64_t *shape, double value);
/* arange: start, start+step, ... while < end (> end for negative step). */
int mg_arange(mg_Context *ctx, mg_Tensor **out, mg_DType dt, double start,
              double end, double step);
int mg_linspace(mg_Context *ctx, mg_Tensor **out, mg_DType dt, double start,
                double end, int64_t steps);
int mg_eye(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int64_t n,
           int64_t m);
/* A contiguous tensor over a buffer someone else owns (a host program's
 * array): nothing is copied and the buffer is not counted in the memory
 * stats. release (may be NULL) is called exactly once, with data and ud,
 * when the last tensor or view using the buffer is freed -- or before this
 * function returns when it fails. data must hold numel elements of dt,
 * aligned to the element size, and stay valid until then; in-place ops
 * write into it. */
int mg_from_buffer(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                   const int64_t *shape, void *data, mg_ReleaseFn release,
                   void *ud);
/* Random creation from the context's generator. */
int mg_rand(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
            const int64_t *shape);                      /* U[0,1) */
int mg_randn(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
             const int64_t *shape);                     /* N(0,1) */
int mg_randint(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int64_t low,
               int64_t high, int ndim, const int64_t *shape); /* [low,high] */
int mg_randperm(mg_Context *ctx, mg_Tensor **out, int64_t n); /* 1..n, I64 */
/* In-place random fills (any layout). */
int mg_uniform_(mg_Context *ctx, mg_Tensor *t, double lo, double hi);
int mg_normal_(mg_Context *ctx, mg_Tensor *t, double mean, double std);

/* Views: share storage with the input; out is a new tensor struct. When
 * the input requires grad (and grad mode is on) the view records its op and
 * passes gradients back to the input; in-place writes through it are then
 * refused (mg_check_inplace), as on the input itself. */
int mg_view(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int ndim,
            const int64_t *shape);        /* one size may be -1 */
/* reshape = view when the strides allow it, else a contiguous copy. */
int mg_reshape(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               int ndim, const int64_t *shape);
int mg_transpose(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int d0, int d1);
int mg_permute(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               const int *dims);          /* t->ndim dims */
int mg_narrow(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
              int64_t start, int64_t len); /* start is 0-based */
int mg_select(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
              int64_t index);             /* 0-based; drops dim */
int mg_squeeze(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
               int dim);                  /* dim < 0: every size-1 dim */
int mg_unsqueeze(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int dim);                /* 0..ndim */
int mg_expand(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int ndim,
              const int64_t *shape);      /* -1 keeps a size */
/* The same tensor (a new reference) when already contiguous, else a copy.
 * contiguous, clone and to_dtype pass gradients through unchanged (a
 * conversion to int64 leaves the graph). */
int mg_contiguous(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t);
int mg_clone(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t);
int mg_to_dtype(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t, mg_DType dt);
/* dst[...] = src, src broadcast to dst's shape, converting dtype. */
int mg_copy_(mg_Context *ctx, mg_Tensor *dst, const mg_Tensor *src);
int mg_fill_(mg_Context *ctx, mg_Tensor *t, double value);
int mg_zero_(mg_Context *ctx, mg_Tensor *t); /* fill_ with 0, named zero_ */

/* Element access with 0-based indices, one per dim (bounds checked). */
int mg_get(mg_Context *ctx, double *out, const mg_Tensor *t,
           const int64_t *idx);
int mg_get_i64(mg_Context *ctx, int64_t *out, const mg_Tensor *t,
               const int64_t *idx);
int mg_set(mg_Context *ctx, mg_Tensor *t, const int64_t *idx, double v);
/* As mg_set, for an integer value: exact in an int64 tensor even past 2^53,
 * where a double would round. */
int mg_set_i64(mg_Context *ctx, mg_Tensor *t, const int64_t *idx, int64_t v);
/* Reads element at linear (row-major) position i, any layout. */
double mg_read(const mg_Tensor *t, int64_t i);
int64_t mg_read_i64(const mg_Tensor *t, int64_t i);

/* Broadcast two shapes; fails with MG_ESHAPE naming op. */
int mg_broadcast_shapes(mg_Context *ctx, const char *op, int na,
                        const int64_t *sa, int nb, const int64_t *sb,
                        int *nout, int64_t *out);

/* ---- elementwise ops (ops_elementwise.c) ------------------------------- */

typedef enum {
  /* binary arithmetic */
  MG_OP_ADD, MG_OP_SUB, MG_OP_MUL, MG_OP_DIV, MG_OP_POW, MG_OP_FLOORDIV,
  MG_OP_MOD, MG_OP_MAXIMUM, MG_OP_MINIMUM, MG_OP_ATAN2,
  /* comparisons: masks of 1 and 0 in the computation dtype */
  MG_OP_EQ, MG_OP_NE, MG_OP_LT, MG_OP_LE, MG_OP_GT, MG_OP_GE,
  MG_OP_NBINARY
} mg_BinaryOp;

typedef enum {
  MG_OP_NEG, MG_OP_ABS, MG_OP_SIGN, MG_OP_SQUARE, MG_OP_RELU,
  MG_OP_FLOOR, MG_OP_CEIL, MG_OP_ROUND, MG_OP_TRUNC,
  /* float-only: an int64 input is computed in float32 */
  MG_OP_SQRT, MG_OP_RSQRT, MG_OP_EXP, MG_OP_LOG, MG_OP_LOG1P, MG_OP_EXPM1,
  MG_OP_TANH, MG_OP_SIGMOID, MG_OP_SIN, MG_OP_COS, MG_OP_RECIPROCAL,
  MG_OP_NUNARY
} mg_UnaryOp;

const char *mg_binary_name(mg_BinaryOp op);
const char *mg_unary_name(mg_UnaryOp op);

/* out = a op b with NumPy broadcasting, computed in mg_promote(a, b).
 * Integer division (DIV) of two int64 tensors gives float32. */
int mg_binary(mg_Context *ctx, mg_Tensor **out, mg_BinaryOp op,
              const mg_Tensor *a, const mg_Tensor *b);
/* out = a op s (or s op a when reversed). A scalar does not raise a
 * tensor's dtype, except that a non-integer scalar with an int64 tensor
 * computes in float32 (as PyTorch does). */
int mg_binary_scalar(mg_Context *ctx, mg_Tensor **out, mg_BinaryOp op,
                     const mg_Tensor *a, double s, int s_is_int, int reversed);
/* In place: a = a op b (b broadcast to a's shape, cast to a's dtype). */
int mg_binary_(mg_Context *ctx, mg_BinaryOp op, mg_Tensor *a,
               const mg_Tensor *b);
int mg_binary_scalar_(mg_Context *ctx, mg_BinaryOp op, mg_Tensor *a,
                      double s);
int mg_unary(mg_Context *ctx, mg_Tensor **out, mg_UnaryOp op,
             const mg_Tensor *a);
int mg_unary_(mg_Context *ctx, mg_UnaryOp op, mg_Tensor *a);
/* clamp to [lo, hi]; has_lo/has_hi say which bounds apply. */
int mg_clamp(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *a, int has_lo,
             double lo, int has_hi, double hi);
/* out = cond ? a : b, all three broadcast; cond is nonzero-is-true and of
 * any dtype (bool and uint8 masks included). */
int mg_where(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *cond,
             const mg_Tensor *a, const mg_Tensor *b);
/* t[mask != 0] = value, mask (of any dtype) broadcast to t's shape. */
int mg_masked_fill_(mg_Context *ctx, mg_Tensor *t, const mg_Tensor *mask,
                    double value);
/* The same out of place: out = a copy of t, filled where mask holds.
 * Differentiable in t (its gradient is zero where the mask holds). */
int mg_masked_fill(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                   const mg_Tensor *mask, double value);

/* ---- reductions (ops_reduce.c) ----------------------------------------- */

typedef enum {
  MG_RED_SUM, MG_RED_MEAN, MG_RED_PROD, MG_RED_MAX, MG_RED_MIN,
  MG_RED_ARGMAX, MG_RED_ARGMIN, MG_RED_VAR, MG_RED_STD, MG_NREDUCE
} mg_ReduceOp;

const char *mg_reduce_name(mg_ReduceOp op);
/* Reduces over dim (or every element when dim < 0, giving a 0-d tensor).
 * Float32 data accumulates in double. ARGMAX/ARGMIN give 1-based int64
 * positions. correction is used by VAR/STD only
 * (1 = unbiased). For MAX/MIN over a dim, indices (if non-NULL) receives
 * the 1-based int64 positions. Every reduction but ARGMAX/ARGMIN is
 * differentiable (max/min over every element share the gradient among
 * tied extremes; over a dim they send it to the index); indices never
 * are. */
int mg_reduce(mg_Context *ctx, mg_Tensor **out, mg_Tensor **indices,
              mg_ReduceOp op, mg_Tensor *t, int dim, int keepdim,
              double correction);

/* ---- linear algebra (ops_linalg.c) ------------------------------------- */

/* Matrix product with PyTorch's rules: 1-D·1-D dot, 2-D·2-D, matrix-vector,
 * vector-matrix, and batched with broadcast batch dims for ndim >= 3. */
int mg_matmul(mg_Context *ctx, mg_Tensor **out, mg_Tensor *a, mg_Tensor *b);

/* ---- Cholesky and triangular solves (ops_lapack.c) ------------------------
 * LAPACK and BLAS from OpenBLAS, in float32 and float64. Matrices are the
 * last two dims of a tensor; leading dims batch, and the two operands of a
 * solve must have the same leading dims (no broadcasting). Each result is
 * a new contiguous tensor, and each op is differentiable with PyTorch's
 * gradient conventions (see ops_lapack.c). */

/* The Cholesky factor of the symmetric positive-definite a (..., n, n):
 * lower L with a = L Lᵀ, or with upper the upper U = Lᵀ with a = Uᵀ U. Only
 * that triangle of a is read. A matrix that is not positive-definite fails
 * naming the order of the first leading minor that is not ("linalg.cholesky:
 * the leading minor of order 3 is not positive-definite"), and the batch
 * element when batched. Its gradient is symmetric. */
int mg_cholesky(mg_Context *ctx, mg_Tensor **out, mg_Tensor *a, int upper);
/* X with a X = b (left) or X a = b (not left), a (..., n, n) triangular
 * (upper or lower; only that triangle is read, and its diagonal is taken
 * as ones when unitriangular), b (..., n, K) (left) or (..., K, n). a and
 * b have one dtype. A zero on the diagonal gives infinities, not an error,
 * as in PyTorch. a's gradient lies in its triangle. */
int mg_solve_triangular(mg_Context *ctx, mg_Tensor **out, mg_Tensor *a,
                        mg_Tensor *b, int upper, int left, int unitriangular);
/* X with (L Lᵀ) X = b (or (Uᵀ U) X = b with upper) from a Cholesky factor
 * l (..., n, n) and b (..., n, K), as torch.cholesky_solve. The factor's
 * gradient is a full matrix (PyTorch's convention): mask it with tril/triu
 * when the factor is made of free entries. */
int mg_cholesky_solve(mg_Context *ctx, mg_Tensor **out, mg_Tensor *b,
                      mg_Tensor *l, int upper);

/* ---- indexing (ops_index.c) -------------------------------------------- */

/* ids: int64, 1-based, 1-D. */
int mg_index_select(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                    int dim, const mg_Tensor *ids);
/* out[i][j] = t[i][idx[i][j]] along dim (1-based int64 idx). */
int mg_gather(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
              const mg_Tensor *idx);
/* t[...idx...] = src (or +=, when add) along dim, in place. */
int mg_scatter_(mg_Context *ctx, mg_Tensor *t, int dim, const mg_Tensor *idx,
                const mg_Tensor *src, int add);
/* The same out of place: out = a copy of t with src scattered into it.
 * Differentiable in t and src (a 0-d src stands for a number). */
int mg_scatter(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int dim,
               const mg_Tensor *idx, const mg_Tensor *src, int add);

/* ---- joining and triangles (ops_join.c, ops_tri.c) ---------------------- */

/* Concatenates the n >= 1 tensors ts along dim (0-based): every tensor has
 * the same number of dims (at least one) and the same sizes except along
 * dim; the result is computed in their promoted dtype (mg_promote, as
 * binary ops do). Unlike PyTorch's legacy rule, a 1-D empty tensor is not
 * skipped when the others have more dims: it is a shape mismatch.
 * Differentiable in every input, for any n (past MG_NODE_MAXIN inputs the
 * gradient is routed through a tree of nodes; the data is copied once). */
int mg_cat(mg_Context *ctx, mg_Tensor **out, int n, mg_Tensor *const *ts,
           int dim);
/* Joins the n >= 1 equally shaped tensors ts along a new dim inserted at
 * dim (0..ndim); dtypes promote as for mg_cat. Differentiable. */
int mg_stack(mg_Context *ctx, mg_Tensor **out, int n, mg_Tensor *const *ts,
             int dim);
/* A copy of t (ndim >= 2) keeping the lower (tril) or upper (triu)
 * triangle of each matrix in its last two dims, zero elsewhere: element
 * (i, j) is kept when j - i <= k (tril) or j - i >= k (triu). Any dtype;
 * differentiable (the gradient is masked the same way). */
int mg_tril(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int64_t k);
int mg_triu(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t, int64_t k);

/* ---- nn ops (ops_nn.c, ops_norm.c, ops_loss.c) -----------------------------
 * The layers of moongrad.functional, each a forward with its backward in C.
 * All of them differentiate like any other op (they record when an input
 * requires grad), compute in the promoted float dtype of their inputs
 * (int64 data computes in float32) and take float32 and float64. Class
 * labels and embedding ids are 1-based int64, as everywhere. */

typedef enum {
  MG_ACT_LEAKY_RELU, /* x > 0 ? x : param * x */
  MG_ACT_ELU,        /* x > 0 ? x : param * (exp(x) - 1) */
  MG_ACT_GELU,       /* x * Phi(x), with erf */
  MG_ACT_GELU_TANH,  /* the tanh approximation of gelu */
  MG_ACT_SILU,       /* x * sigmoid(x) */
  MG_NACT
} mg_Activation;

typedef enum {
  MG_REDUCTION_NONE, /* one loss per element (or per sample) */
  MG_REDUCTION_MEAN, /* their (weighted) mean, a 0-d tensor */
  MG_REDUCTION_SUM   /* their sum, a 0-d tensor */
} mg_Reduction;

/* Elementwise losses of mg_loss. */
typedef enum {
  MG_LOSS_MSE, MG_LOSS_L1,
  MG_LOSS_SMOOTH_L1,  /* param = beta */
  MG_LOSS_HUBER,      /* param = delta */
  MG_LOSS_BCE,        /* input: probabilities; log clamped at -100 */
  MG_LOSS_BCE_LOGITS, /* input: logits, in the overflow-free form */
  MG_NLOSS
} mg_LossKind;

const char *mg_activation_name(mg_Activation act);
const char *mg_loss_name(mg_LossKind kind);

/* out = act(x), param as listed at mg_Activation. */
int mg_activation(mg_Context *ctx, mg_Tensor **out, mg_Activation act,
                  const mg_Tensor *x, double param);
/* softmax (or log_softmax when log) of x along dim, max-subtracted so that
 * large logits never overflow. */
int mg_softmax(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *x, int dim,
               int log);

/* y = x·wᵀ + b, one gemm. x is [..., in], w [out, in], b [out] or NULL;
 * y is [..., out]. */
int mg_linear(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, mg_Tensor *w,
              mg_Tensor *b);
/* Inverted dropout: x * mask / (1 - p) with mask ~ Bernoulli(1 - p) from the
 * context's generator (mask == (rand(shape, dtype) < 1 - p) for the same
 * generator state). With training false or p == 0, *out is x itself (a new
 * reference); p == 1 gives zeros. p outside [0, 1] is an error. */
int mg_dropout(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, double p,
               int training);
/* Rows of weight [V, D] picked by ids (int64, 1-based, any shape): out is
 * [ids..., D]. An id equal to padding_idx (when has_padding) gets no
 * gradient. An id outside 1..V is an error naming it. */
int mg_embedding(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *ids,
                 mg_Tensor *weight, int has_padding, int64_t padding_idx);

/* Normalizes over the trailing nnorm dims of x (which must equal
 * norm_shape): (x - mean) / sqrt(var + eps) * w + b, biased variance; w and
 * b (shape norm_shape) may be NULL. */
int mg_layer_norm(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x, int nnorm,
                  const int64_t *norm_shape, mg_Tensor *w, mg_Tensor *b,
                  double eps);
/* Batch normalization of x [N, C, ...] per channel (dim 1). With training
 * (or no running statistics) it normalizes with the batch's mean and
 * biased variance and, when running_mean/running_var are given, updates
 * them in place: running = (1 - momentum) * running + momentum * batch,
 * with the unbiased batch variance (not recorded by autograd). Otherwise
 * it normalizes with the running statistics. running_mean and running_var
 * ([C]) come together or not at all; w and b ([C]) may be NULL. */
int mg_batch_norm(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                  mg_Tensor *running_mean, mg_Tensor *running_var,
                  mg_Tensor *w, mg_Tensor *b, int training, double momentum,
                  double eps);

/* Cross-entropy of logits [N, K, d...] (or [K]) against targets, softmax
 * and loss fused in one pass (and its backward in one more). targets are
 * int64 class labels [N, d...] (1-based), or float probabilities shaped
 * like logits. weight ([K], or NULL) rescales each class; targets equal to
 * ignore_index (when has_ignore; class labels only) contribute nothing.
 * label_smoothing mixes the target with the uniform distribution. The
 * mean divides by the summed weight of the non-ignored targets (by the
 * number of samples for probabilities), as PyTorch does. */
int mg_cross_entropy(mg_Context *ctx, mg_Tensor **out, mg_Tensor *logits,
                     mg_Tensor *targets, mg_Tensor *weight, int has_ignore,
                     int64_t ignore_index, double label_smoothing,
                     mg_Reduction reduction);
/* Negative log-likelihood of log-probabilities [N, K, d...] (or [K]) at the
 * 1-based int64 targets [N, d...]; weight and ignore_index as above. */
int mg_nll_loss(mg_Context *ctx, mg_Tensor **out, mg_Tensor *logp,
                mg_Tensor *targets, mg_Tensor *weight, int has_ignore,
                int64_t ignore_index, mg_Reduction reduction);
/* An elementwise loss between input and target of the same shape, with an
 * optional weight (BCE kinds; broadcast to the input) and pos_weight
 * (MG_LOSS_BCE_LOGITS; broadcast to the input, usually [C]); these two are
 * constants, not differentiated. param as listed at mg_LossKind. */
int mg_loss(mg_Context *ctx, mg_Tensor **out, mg_LossKind kind,
            mg_Tensor *input, mg_Tensor *target, mg_Tensor *weight,
            mg_Tensor *pos_weight, double param, mg_Reduction reduction);

/* ---- autograd (autograd.c: the graph; backward.c: the engine; mg_sum_to
 * is ops_reduce.c's) --------------------------------------------------------
 * A dynamic graph, recorded as differentiable ops run while grad mode is on
 * and an input requires grad. Each recorded op's output points at a node
 * (its grad_fn); a node holds edges to the producers of its inputs (another
 * node, or a leaf tensor whose .grad it accumulates into), the tensors its
 * backward needs (saved as detached aliases, so an output saved by its own
 * node makes no reference cycle), and a few op parameters.
 *
 * An op records itself in three steps, after computing its result with
 * grad mode off (so internal helpers record nothing):
 *   if (mg_needs_grad(ctx, 2, inputs)) {
 *     mg_Node *n;
 *     if ((st = mg_record(ctx, out, "mul", mul_backward, 2, inputs, &n)) ||
 *         (st = mg_save(ctx, n, 0, a)) || (st = mg_save(ctx, n, 1, b))) ...
 *   }
 * Its backward receives the gradient of the output and fills grads[i] for
 * each input i whose edge needs it (mg_node_needs(node, i)), with that
 * input's shape; the engine casts to the input's dtype and accumulates. */

#define MG_NODE_MAXIN 5    /* differentiable inputs of one op */
#define MG_NODE_MAXSAVED 4 /* tensors one op saves for backward */

typedef struct mg_Node mg_Node;
typedef int (*mg_BackwardFn)(mg_Context *ctx, mg_Node *node,
                             mg_Tensor *grad, mg_Tensor **grads);

typedef struct mg_Autograd {
  int requires_grad;   /* leaves: set by the user; results: grad_fn != NULL */
  mg_Node *grad_fn;    /* the node that made this tensor; NULL for leaves */
  mg_Tensor *grad;     /* accumulated gradient of a leaf, or NULL */
  int hook_pending;    /* engine, with a grad hook: gradients still to come */
  uint64_t hook_mark;  /* engine: the backward hook_pending counts for */
} mg_Autograd;

typedef struct {
  mg_Node *node;       /* the input's producer, or NULL */
  mg_Tensor *leaf;     /* or the leaf tensor to accumulate into, or NULL */
} mg_Edge;

struct mg_Node {
  int refcount;                       /* tensors and nodes pointing here */
  const char *name;                   /* the op, for messages */
  mg_BackwardFn backward;
  int ninputs;
  mg_Edge next[MG_NODE_MAXIN];        /* where each input's gradient goes */
  int in_ndim[MG_NODE_MAXIN];         /* each input's shape and dtype, */
  int64_t in_shape[MG_NODE_MAXIN][MG_MAXDIM]; /* which its grad must have */
  mg_DType in_dtype[MG_NODE_MAXIN];
  mg_Tensor *saved[MG_NODE_MAXSAVED]; /* detached aliases, or NULL */
  uint64_t saved_version[MG_NODE_MAXSAVED]; /* storage version when saved */
  double f[4];                        /* op parameters: scalars, ... */
  int64_t i[6];                       /* ... dims, flags */
  int released;                       /* saved tensors already freed */
  int pending;                        /* engine: edges still to arrive */
  uint64_t mark;                      /* engine: visited by this backward */
  mg_Tensor *grad;                    /* engine: gradient summed so far */
};

/* Grad mode: recording happens only while it is on (the default). */
int mg_grad_enabled(const mg_Context *ctx);
int mg_set_grad_enabled(mg_Context *ctx, int on); /* returns the old mode */

int mg_requires_grad(const mg_Tensor *t);
/* Marks a leaf as requiring grad (or not); float dtypes only; fails on a
 * non-leaf. */
int mg_set_requires_grad(mg_Context *ctx, mg_Tensor *t, int on);
int mg_is_leaf(const mg_Tensor *t);
mg_Tensor *mg_grad(const mg_Tensor *t);          /* borrowed, or NULL */
/* Replaces t's .grad (NULL clears it); g must match t's shape. */
int mg_set_grad(mg_Context *ctx, mg_Tensor *t, mg_Tensor *g);
/* A new tensor sharing t's storage, outside the graph. */
int mg_detach(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t);
const char *mg_grad_fn_name(const mg_Tensor *t); /* NULL for leaves */

/* Does any input require grad while grad mode is on? */
int mg_needs_grad(const mg_Context *ctx, int n, mg_Tensor *const *inputs);
/* Makes the node for out = op(inputs) and sets out's grad_fn to it. */
int mg_record(mg_Context *ctx, mg_Tensor *out, const char *name,
              mg_BackwardFn backward, int n, mg_Tensor *const *inputs,
              mg_Node **node);

/* ---- the ops that record a backward (grad_ops.c) ---------------------------- */

int mg_grad_op_count(void);                /* how many names the list has */
const char *mg_grad_op_name(int i);        /* name i (0-based), or NULL */
int mg_grad_op_index(const char *name);    /* its index, or -1 when unlisted */
/* Starts (on) or stops auditing in ctx; starting clears what was seen. */
int mg_audit_ops(mg_Context *ctx, int on);
/* Whether op i recorded since the audit started. */
int mg_audited_op(const mg_Context *ctx, int i);
/* The first name recorded since the audit started that the list lacks,
 * or NULL. */
const char *mg_audit_unlisted(const mg_Context *ctx);

/* Saves t in slot k of node (a detached alias; its version is checked at
 * backward time, so an in-place change in between is an error). */
int mg_save(mg_Context *ctx, mg_Node *node, int k, const mg_Tensor *t);
/* Does input i of node need a gradient? */
int mg_node_needs(const mg_Node *node, int i);
/* Every in-place write calls this first (ops, copy_, fill_, t[i] = v,
 * random fills, scatter_): writing into a tensor that requires grad while
 * recording would silently break the graph, and writing into an expanded
 * tensor (stride 0 along a dim of size > 1) would land several times in one
 * element; both are refused, naming op. */
int mg_check_inplace(mg_Context *ctx, const char *op, mg_Tensor *t);
/* Marks an in-place write (bumps the storage's version). */
void mg_bump_version(mg_Tensor *t);

/* Backpropagates from root. grad is d(loss)/d(root); NULL means 1 and
 * needs a one-element root. Gradients accumulate into leaves' .grad.
 * Without retain_graph the graph's saved tensors are released as each
 * node is used, and a second backward through it is an error. */
int mg_backward(mg_Context *ctx, mg_Tensor *root, mg_Tensor *grad,
                int retain_graph);

/* A function the engine calls, during a backward, as soon as a leaf's
 * gradient for it is complete (every path from the root to the leaf has
 * added its part), with the leaf and its .grad; the backward goes on
 * afterwards. Data-parallel training starts sending a gradient while the
 * rest are still being computed. One hook per context; NULL removes it.
 * The hook must not run ops on ctx that record or fail. */
typedef void (*mg_GradHook)(void *ud, mg_Tensor *leaf, mg_Tensor *grad);
void mg_set_grad_hook(mg_Context *ctx, mg_GradHook hook, void *ud);

/* grad summed over the broadcast dims down to shape (ndim, shape): the
 * gradient of a broadcast input. A new reference to grad if nothing to do. */
int mg_sum_to(mg_Context *ctx, mg_Tensor **out, mg_Tensor *grad, int ndim,
              const int64_t *shape);

/* ---- optimizer updates (ops_optim.c) ---------------------------------------
 * The update rules of moongrad.optim as fused kernels: one pass over a
 * parameter, its gradient and its optimizer state, in place, allocating
 * nothing. Each is torch.optim 1.13's single-tensor (foreach=False) update
 * with the same float operations in the same order, so float32 and float64
 * trajectories both match PyTorch's. The bookkeeping (parameter groups,
 * which state belongs to which parameter, state dicts) is the caller's.
 *
 * A step writes into a parameter that requires grad: it records nothing,
 * bumps the storage versions of the parameter and of the state it wrote
 * (so a graph that saved the old values fails at backward), and is meant
 * to run with grad mode off. */

typedef enum {
  MG_OPTIM_SGD, MG_OPTIM_ADAM, MG_OPTIM_ADAMW, MG_OPTIM_RMSPROP,
  MG_OPTIM_ADAGRAD, MG_OPTIM_ADAMAX, MG_OPTIM_NADAM, MG_OPTIM_RADAM,
  MG_NOPTIM
} mg_Optim;

/* One parameter group's options (torch's names and meanings); each kind
 * reads the fields it has. */
typedef struct {
  double lr;
  double weight_decay;    /* added to the gradient (L2); AdamW: decoupled */
  double momentum;        /* SGD, RMSprop */
  double dampening;       /* SGD */
  double alpha;           /* RMSprop: smoothing constant */
  double beta1, beta2;    /* Adam, AdamW, Adamax, NAdam, RAdam */
  double eps;
  double lr_decay;        /* Adagrad */
  double initial_accumulator_value; /* Adagrad: the sum's first value */
  double momentum_decay;  /* NAdam */
  int nesterov;           /* SGD */
  int amsgrad;            /* Adam, AdamW */
  int centered;           /* RMSprop */
  int maximize;           /* all but NAdam and RAdam */
} mg_OptimConfig;

#define MG_OPTIM_MAXSTATE 3 /* state tensors an optimizer keeps per parameter */

/* One parameter's optimizer state. */
typedef struct {
  int64_t step;                    /* updates done; mg_optim_step adds one */
  double mu_product;               /* NAdam: product of the mu so far, 1 at
                                      first (float32-rounded, as torch's) */
  mg_Tensor *t[MG_OPTIM_MAXSTATE]; /* state tensors by slot (borrowed) */
  int fresh[MG_OPTIM_MAXSTATE];    /* t[k] was just made: SGD copies d_p into
                                      a fresh momentum buffer, as torch
                                      clones it, instead of decaying it */
} mg_OptimState;

const char *mg_optim_name(mg_Optim kind);   /* "Adam"; NULL when unknown */
int mg_optim_from_name(const char *name);   /* -1 when unknown */
/* torch's state_dict name of slot k ("exp_avg"), NULL past the last. */
const char *mg_optim_state_name(mg_Optim kind, int k);
/* Does this configuration use slot k (Adam's max_exp_avg_sq only with
 * amsgrad, SGD's momentum_buffer only with momentum, ...)? */
int mg_optim_needs_state(mg_Optim kind, int k, const mg_OptimConfig *cfg);
/* A new state tensor for slot k, contiguous, shaped like param: zeros, or
 * initial_accumulator_value for Adagrad's sum. Mark it fresh. */
int mg_optim_state_new(mg_Context *ctx, mg_Tensor **out, mg_Optim kind, int k,
                       const mg_OptimConfig *cfg, const mg_Tensor *param);
/* One update of param (contiguous, float32 or float64) from grad (same
 * shape and dtype), with every slot the configuration needs present in
 * state (same shape and dtype, contiguous). Multithreaded over elements
 * when large; the result never depends on the thread count. On failure
 * (a mismatch, named like "Adam: grad of shape [3] does not match
 * parameter of shape [4]") nothing is written. */
int mg_optim_step(mg_Context *ctx, mg_Optim kind, const mg_OptimConfig *cfg,
                  mg_Tensor *param, const mg_Tensor *grad,
                  mg_OptimState *state);
/* The norm_type-norm of t (any layout), accumulated in double: norm_type
 * > 0, or INFINITY for the largest magnitude. For clip_grad_norm. */
int mg_grad_norm(mg_Context *ctx, double *out, const mg_Tensor *t,
                 double norm_type);

/* ---- OpenBLAS's kernel set (blas_core.c) ------------------------------- */

/* The name of the kernel set OpenBLAS chose when it loaded ("Haswell",
 * "SkylakeX", ...). */
const char *mg_blas_core(void);
/* When OpenBLAS fell back to a generic pre-AVX set (Prescott) on a CPU it
 * does not know but that has AVX2 and FMA or AVX-512: the name to put in
 * OPENBLAS_CORETYPE before OpenBLAS loads ("Haswell", "SkylakeX",
 * "Cooperlake"); else NULL. The variable is read once, when the library
 * loads, so taking the advice means starting the process again with it
 * set (the moongrad executable does this itself). */
const char *mg_blas_core_for_cpu(void);

/* ---- threading helpers (context.c) ------------------------------------- */

/* Elements below which an elementwise loop stays on one thread. */
#define MG_PARALLEL_GRAIN 32768
/* Threads to use for a loop of n elements of work. */
int mg_threads_for(const mg_Context *ctx, int64_t n);

/* MG_PARALLEL_FOR(nt, for (...) body): the loop split statically over nt
 * threads, or, when nt is 1, run in the calling thread without entering
 * OpenMP at all. libgomp starts a team for every region, even under if(0)
 * or num_threads(1): about 1.4 µs and a futex call, more than a whole small
 * op costs.
 *
 * The body is compiled twice, once per branch, and the two copies may fuse
 * a*b + c into an FMA differently; results then differ in the last bit
 * between 1 and 2 threads. So a body whose floating-point work is inline
 * and multiplies and adds keeps its one OpenMP region (if (nt > 1)); only
 * bodies that copy, compare, add or divide, or call their arithmetic
 * through a function pointer, or files compiled with fp-contract off, use
 * this. */
#define MG_PRAGMA(x) _Pragma(#x)
#define MG_PARALLEL_FOR(nt, ...)                                    \
  do {                                                              \
    if ((nt) > 1) {                                                 \
      MG_PRAGMA(omp parallel for num_threads(nt) schedule(static))  \
      __VA_ARGS__                                                   \
    } else {                                                        \
      __VA_ARGS__                                                   \
    }                                                               \
  } while (0)
/* Sets OpenBLAS's thread count for a gemm of this size. */
void mg_blas_threads_for(const mg_Context *ctx, int64_t m, int64_t n,
                         int64_t k);

#endif
