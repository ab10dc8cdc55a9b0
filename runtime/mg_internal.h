/*
 * mg_internal.h — what the core's own files share and nobody else needs:
 * the context's layout and the strided iterator every elementwise loop
 * runs on.
 *
 * The core's files call only downward, never back up and never in a loop;
 * from the top:
 *   ops_*.c, rng.c, io_*.c, api.c; backward.c (the engine) above the ops
 *   ops_elementwise.c, ops_index.c; ops_reduce.c above them
 *   views.c           differentiable views, mg_sum_to's algorithm
 *   reduce_kernels.c  reductions that record nothing (mg_reduce_data)
 *   tensor_data.c     copy_, fill_, creation, one element
 *   autograd.c        grad mode, recording, mg_Bw (grad_ops.c: op list)
 *   iter.c            the strided iterator
 *   tensor.c          storages, tensors and their release, raw views
 *   context_life.c    creating and releasing a context
 *   alloc.c, philox.c buffers and structs; the generator's state
 *   context.c, dtype.c  errors, threads, BLAS; dtypes
 * Backward formulas run with grad mode off, so they may use the forms that
 * record nothing (mg_reduce_data, mg_bw_sum_to) where a recorded op would
 * mean calling up.
 */
#ifndef MG_INTERNAL_H
#define MG_INTERNAL_H

#include <cblas.h>
#include <string.h>

#include "mg_core.h"

#ifdef NDEBUG
#define mg_assert(c) ((void)0)
#else
#include <assert.h>
#define mg_assert(c) assert(c)
#endif

/* d as an int64, saturating. C leaves converting a value outside int64's
 * range (inf, 1e300, 2^63, which is what math.maxinteger becomes as a
 * double) or a NaN undefined; every float-to-int64 store goes through this
 * instead: out-of-range values clamp to INT64_MIN/INT64_MAX, NaN gives 0. */
static inline int64_t mg_f2i64(double d) {
  if (d >= 0x1p63) return INT64_MAX;
  if (d < -0x1p63) return INT64_MIN;
  return d == d ? (int64_t)d : 0;
}

/* A number stored as uint8: truncated toward zero and wrapped modulo 256,
 * through int64 as PyTorch's conversion on x86 goes (cvttsd2si: NaN, inf
 * and anything past int64's range give INT64_MIN, whose low byte is 0). */
static inline uint8_t mg_f2u8(double d) {
  return d >= -0x1p63 && d < 0x1p63 ? (uint8_t)(int64_t)d : 0;
}

/* float32 -> IEEE half, rounded to nearest even: subnormals, overflow to
 * inf from 65520 on, NaN as the quiet NaN 0x7e00 with its sign (c10's
 * fp16_ieee_from_fp32_value, without its float tricks). */
static inline uint16_t mg_f2h(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00;     /* NaN */
  if (ax >= 0x477ff000u) return sign | 0x7c00;    /* >= 65520: inf */
  if (ax < 0x38800000u) {                         /* below 2^-14: subnormal */
    if (ax < 0x33000000u) return sign;            /* <= 2^-25: zero (a tie to even) */
    uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;                     /* 14..24: m >> shift units of 2^-24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return sign | (uint16_t)q;
  }
  uint32_t h = ax - 0x38000000u;                  /* rebias 127 -> 15 */
  uint32_t q = h >> 13, rem = h & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++; /* may carry into inf */
  return sign | (uint16_t)q;
}

/* IEEE half -> float32 (exact). */
static inline float mg_h2f(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f,
           mant = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  /* inf, NaN */
  } else if (exp == 0) {
    float f = (float)mant * 0x1p-24f;          /* zero, subnormal: exact */
    return sign ? -f : f;
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* float32 -> bfloat16 (its top 16 bits), rounded to nearest even; NaN
 * gives 0x7fc0 (c10's round_to_nearest_even). */
static inline uint16_t mg_f2bf(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* bfloat16 -> float32 (exact). */
static inline float mg_bf2f(uint16_t b) {
  uint32_t x = (uint32_t)b << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

/* One element at p, of dtype dt, read as a number: mg_load_f64 exactly for
 * every dtype but int64's largest; mg_load_i64 exactly for integers (floats
 * through mg_f2i64). mg_store_f64/_i64 write v converted into dt as
 * PyTorch converts on x86: halves through float32 rounded to nearest even;
 * floats into integers truncated toward zero (int32, int16 and int8
 * through int32, uint8 through int64, keeping the low bits; int64
 * saturates); integers into narrower ones keep their low bits; bool is
 * v != 0. dtype.c. */
double mg_load_f64(const void *p, mg_DType dt);
int64_t mg_load_i64(const void *p, mg_DType dt);
void mg_store_f64(void *p, mg_DType dt, double v);
void mg_store_i64(void *p, mg_DType dt, int64_t v);

/* Size classes of the buffer cache: four per power of two, from 64 bytes
 * up to 2^47 bytes (a class's buffers are all the same size). */
#define MG_NCLASSES (4 * 42)

typedef struct mg_FreeBuf {
  struct mg_FreeBuf *next; /* next cached buffer of the same class */
} mg_FreeBuf;

struct mg_Context {
  int refcount;             /* the Lua state plus each live storage */
  int nthreads;             /* threads for moongrad's loops and BLAS */
  mg_RngState rng;          /* the default random stream */
  mg_MemoryStats mem;       /* accounting, see mg_MemoryStats */
  size_t gc_debt;           /* bytes handed out since Lua was last told,
                               less those forgiven since */
  mg_FreeBuf *cache[MG_NCLASSES]; /* freed buffers, by size class */
  char err[512];            /* the last failure's message */
  int grad_enabled;         /* record autograd graphs (mg_set_grad_enabled) */
  uint64_t backward_mark;   /* engine: tells this backward's visits apart */
  /* Freed tensor and storage structs, kept for reuse: a small op makes one
   * of each, and malloc/free of them was a quarter of its cost. */
  void *spare_tensors, *spare_storages;
  int n_spare_tensors, n_spare_storages;
  const size_t *other_bytes; /* memory outside tensors charged to the same
                               limit (a host state's Lua heap), or NULL */
  int reference_kernels;    /* use the plain kernels the fast ones are checked
                               against (mg._set_reference_kernels, specs) */
  int deterministic;        /* results independent of the thread count
                               (mg.use_deterministic_algorithms) */
  mg_ReclaimFn reclaim;     /* mg_set_reclaim, or NULL */
  void *reclaim_arg;        /* its argument for the call running now, or NULL */
  int reclaiming;           /* inside reclaim: no nested reclaim */
  mg_GradHook grad_hook;    /* mg_set_grad_hook, or NULL */
  void *grad_hook_ud;
  unsigned char *op_seen;   /* while auditing (mg_audit_ops): a flag per op
                               of grad_ops.c's list, set when it records */
  const char *op_unlisted;  /* while auditing: the first name recorded that
                               the list lacks, or NULL */
  struct mg_DnnlState *dnnl; /* the oneDNN engine, stream and primitive
                               caches (dnnl_base.c), or NULL before first use */
  void (*dnnl_free)(struct mg_Context *ctx); /* releases dnnl: set by
                               dnnl_base.c with it, so that the context,
                               below the ops, calls none of them */
};

/* mg_record's note of each name it records under (grad_ops.c): marks it
 * while auditing; with MG_CHECK_OP_LIST an unlisted name is an error. */
int mg_note_op(mg_Context *ctx, const char *name);

/* Memory a core function holds outside tensors while it works (a file
 * reader's line buffer and parsed numbers), counted against the state's
 * limit as if a tensor held it, so that a small file that inflates to
 * gigabytes meets the limit instead of the machine's memory. mg_charge
 * reclaims once, like a tensor allocation, when the bytes would pass the
 * limit, then fails with MG_ENOMEM and the allocator's message ("not
 * enough memory for N more bytes: the memory limit is ..."); otherwise it
 * counts them in live_bytes until mg_uncharge gives the same count back. The caller allocates the memory itself (realloc
 * lets a growing buffer be remapped rather than copied). */
int mg_charge(mg_Context *ctx, size_t bytes);
void mg_uncharge(mg_Context *ctx, size_t bytes);

/* A Philox word as a float in [0, 1) with 24 random bits, and two words
 * as a double with 53 (philox.c, rng.c). */
static inline float mg_u24(uint32_t x) { return (float)(x >> 8) * 0x1p-24f; }
static inline double mg_u53(uint32_t a, uint32_t b) {
  return ((double)(a >> 5) * 67108864.0 + (double)(b >> 6)) * 0x1p-53;
}

/* Tensor and storage structs, kept on the context's spare lists when freed
 * (mg_empty_cache frees the lists). mg_tensor_struct charges the header
 * against the memory limit; both return NULL with the message in ctx when
 * past the limit or out of memory. The structs come back uninitialised. */
mg_Tensor *mg_tensor_struct(mg_Context *ctx);
void mg_tensor_struct_free(mg_Context *ctx, mg_Tensor *t);
mg_Storage *mg_storage_struct(mg_Context *ctx);
void mg_storage_struct_free(mg_Context *ctx, mg_Storage *s);
/* Tensor headers count against the memory limit (header_bytes): charge
 * reclaims once when past it and fails with an MG_ENOMEM message. */
int mg_charge_header(mg_Context *ctx, size_t bytes);
void mg_uncharge_header(mg_Context *ctx, size_t bytes);

/* ---- the strided iterator ------------------------------------------------
 * Walks up to MG_ITER_MAXOPS same-shaped operands (broadcast ones have
 * stride 0) in row-major order, handing each innermost run to a loop
 * function with the run's base pointers and element strides. Dimensions
 * that are contiguous in every operand are merged first, so a contiguous
 * op is a single run. Large iterations are split across threads by element
 * range, so the work each thread does never depends on the thread count. */
#define MG_ITER_MAXOPS 4

typedef struct {
  int nops;
  int ndim;                                 /* after merging */
  int64_t numel;
  int64_t shape[MG_MAXDIM];
  char *data[MG_ITER_MAXOPS];               /* first element of each */
  size_t esize[MG_ITER_MAXOPS];             /* bytes per element */
  int64_t stride[MG_ITER_MAXOPS][MG_MAXDIM]; /* in elements */
} mg_Iter;

/* ptrs: each operand's first element of the run; strides: each operand's
 * inner stride in elements; n: the run length; arg: the caller's data. */
typedef void (*mg_LoopFn)(char **ptrs, const int64_t *strides, int64_t n,
                          const void *arg);

/* Sets up it for nops tensors viewed with shape (ndim, shape): tensors[k]
 * must broadcast to that shape (checked by the caller). */
void mg_iter_init(mg_Iter *it, int nops, mg_Tensor *const *tensors, int ndim,
                  const int64_t *shape);
/* As mg_iter_init, for loops whose elements do not depend on one another
 * (elementwise ops, copies, fills): when operand 0 is dense but not
 * row-major (a channels-last tensor, a transposed copy), the dims are
 * visited in its memory order, so that operands laid out as it is run
 * as one contiguous stretch. */
void mg_iter_init_memory_order(mg_Iter *it, int nops, mg_Tensor *const *tensors,
                               int ndim, const int64_t *shape);
/* The shortcut for small same-shaped operands: when every tensor is
 * contiguous with t[0]'s element count, or t[0] is dense and every other
 * one laid out as it is (or holds one element, broadcast), and the work
 * is single-threaded, runs fn once over the flat arrays and returns 1;
 * otherwise returns 0 and the caller uses the iterator. */
int mg_run_flat(const mg_Context *ctx, int nops, mg_Tensor *const *t,
                mg_LoopFn fn, const void *arg);
void mg_iter_run(const mg_Context *ctx, const mg_Iter *it, mg_LoopFn fn,
                 const void *arg);

/* A kernel function that takes options (a kind, flags) as constant
 * arguments at each call: inlined always, so that every caller compiles to
 * its own specialised, branch-free loop (the dtype policy's way to share a
 * body between kinds, docs/CONTRIBUTING.md). */
#define MG_INLINE static inline __attribute__((always_inline))

/* Loops over one run of a map kernel (an mg_LoopFn with out o, input a,
 * their strides so and sa, length n): o = expr of x = a[i]. MG_RUN_VLOOP
 * adds a unit-stride copy of the loop, the one GCC vectorises. */
#define MG_RUN_LOOP(T, expr)                                               \
  for (int64_t i = 0; i < n; i++) {                                        \
    T x = a[i * sa];                                                       \
    o[i * so] = (expr);                                                    \
  }
#define MG_RUN_VLOOP(T, expr)                                              \
  if (sa == 1 && so == 1) {                                                \
    for (int64_t i = 0; i < n; i++) {                                      \
      T x = a[i];                                                          \
      o[i] = (expr);                                                       \
    }                                                                      \
  } else                                                                   \
    MG_RUN_LOOP(T, expr)

/* Whether the (rows x cols) matrix with strides (rs, cs) can go to BLAS as
 * it lies: sets *trans and its leading dim *ld and returns 1, else 0. */
int mg_blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                   CBLAS_TRANSPOSE *trans, int64_t *ld);
/* Bracket every direct call into BLAS or LAPACK (mg_gemm does its own):
 *   int locked = mg_blas_begin(); cblas_...(...); mg_blas_end(locked);
 * Outside a parallel region it takes the process's BLAS lock and applies
 * the thread count mg_blas_threads_for chose; see context.c for why. */
int mg_blas_begin(void);
/* The same with OpenBLAS on one thread, whatever the caller's count. */
int mg_blas_begin_serial(void);
void mg_blas_end(int locked);
/* c (M x N, row stride ldc) = op(a) · op(b) + beta · c, row-major, in
 * float32 or float64 (gemm.c): large float32 products through oneDNN's
 * matmul, the rest through OpenBLAS, with the thread count the caller set
 * (mg_blas_threads_for). In deterministic mode (ctx->deterministic) the
 * rows of c go in fixed blocks to single-threaded OpenBLAS, so the bits do
 * not depend on the thread count. */
void mg_gemm(const mg_Context *ctx, mg_DType dt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M,
             int64_t N, int64_t K, const void *a, int64_t lda, const void *b,
             int64_t ldb, double beta, void *c, int64_t ldc);
/* c = alpha · op(a) · op(b) + beta · c straight through OpenBLAS on the
 * calling thread, for ops that run many small products in their own
 * parallel loop (attention's per-head products): inside a team of more
 * than one OpenBLAS runs single-threaded; outside one, the caller holds
 * mg_blas_begin_serial. Empty sizes are fine (K = 0 scales c by beta). */
void mg_gemm_serial(mg_DType dt, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t M,
                    int64_t N, int64_t K, double alpha, const void *a, int64_t lda,
                    const void *b, int64_t ldb, double beta, void *c, int64_t ldc);
/* c = op(a) · op(b) with the N elements at bias added to every row, as a
 * layer's output is: through oneDNN's matmul, which adds the bias to its
 * accumulators, where mg_gemm would take the product there; else the rows
 * are filled with the bias and mg_gemm adds the product (the same
 * sums). */
void mg_gemm_bias(const mg_Context *ctx, mg_DType dt, CBLAS_TRANSPOSE ta,
                  CBLAS_TRANSPOSE tb, int64_t M, int64_t N, int64_t K,
                  const void *a, int64_t lda, const void *b, int64_t ldb,
                  const void *bias, void *c, int64_t ldc);

/* x is (..., R, C), contiguous: zeroes, in place, what tril (upper = 0) or
 * triu (upper = 1) with diagonal k drops (ops_tri.c). */
void mg_zero_triangle(mg_Tensor *x, int64_t k, int upper);

/* ---- writing backward formulas (autograd.c; the op forms mg_bw_binary,
 * _scalar, _rscalar and _unary beside their ops in ops_elementwise.c,
 * mg_bw_sum_to beside expand in views.c) ----------------------------------
 * A backward formula chains several core ops; mg_Bw keeps the chain short:
 * each helper returns a new tensor held by b (released by mg_bw_end), or
 * NULL once any step failed (later steps then do nothing), and mg_bw_end
 * returns the first failure. mg_bw_out hands a result to the engine.
 *
 *   mg_Bw b; mg_bw_begin(&b, ctx);
 *   mg_Tensor *ga = mg_bw_binary(&b, MG_OP_MUL, grad, y);
 *   mg_bw_out(&b, &grads[0], mg_bw_sum_to(&b, ga, n->in_ndim[0], n->in_shape[0]));
 *   return mg_bw_end(&b);
 */
#define MG_BW_MAXTMP 32

typedef struct {
  mg_Context *ctx;
  int st;                        /* the first failure, or MG_OK */
  int n;                         /* temporaries held */
  mg_Tensor *tmp[MG_BW_MAXTMP];
} mg_Bw;

void mg_bw_begin(mg_Bw *b, mg_Context *ctx);
/* Takes over *t, the result of a core call that returned st (a pointer,
 * because C evaluates arguments in no fixed order: *t is read after the
 * call has filled it). */
mg_Tensor *mg_bw_hold(mg_Bw *b, int st, mg_Tensor **t);
mg_Tensor *mg_bw_binary(mg_Bw *b, mg_BinaryOp op, mg_Tensor *x, mg_Tensor *y);
mg_Tensor *mg_bw_scalar(mg_Bw *b, mg_BinaryOp op, mg_Tensor *x, double s);
mg_Tensor *mg_bw_rscalar(mg_Bw *b, mg_BinaryOp op, double s, mg_Tensor *x);
mg_Tensor *mg_bw_unary(mg_Bw *b, mg_UnaryOp op, mg_Tensor *x);
mg_Tensor *mg_bw_sum_to(mg_Bw *b, mg_Tensor *x, int ndim, const int64_t *shape);
/* Stores a new reference to x (if any) in *slot for the engine. */
void mg_bw_out(mg_Bw *b, mg_Tensor **slot, mg_Tensor *x);
int mg_bw_end(mg_Bw *b);

/* For the engine (views.c): if n is a narrow or select, makes *out the
 * same window of t (a tensor of n's input's shape; no node recorded) and
 * returns 1 with the status in *st; 0 for any other node. The engine adds
 * a window's gradient there instead of zeros of the whole input shape. */
int mg_window_of(mg_Context *ctx, const mg_Node *n, mg_Tensor *t,
                 mg_Tensor **out, int *st);

/* Frees a tensor's autograd metadata (its .grad and grad_fn) (tensor.c). */
void mg_autograd_free(mg_Tensor *t);
/* Drops a reference to a node, releasing it and the producers only it held
 * (tensor.c: a node's release releases tensors and the reverse). */
void mg_node_decref(mg_Node *n);
/* t's autograd metadata, made on first use; NULL with the message in ctx
 * when out of memory. */
mg_Autograd *mg_autograd_meta(mg_Context *ctx, mg_Tensor *t);
/* Are the two shapes equal? */
int mg_same_shape(int na, const int64_t *a, int nb, const int64_t *b);
/* A new contiguous tensor with t's dtype, shape and values; records
 * nothing (tensor_data.c; mg_clone is its differentiable form). */
int mg_clone_data(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t);
/* t itself (a new reference) when contiguous, else mg_clone_data's copy;
 * records nothing (mg_contiguous is its differentiable form). */
int mg_contiguous_data(mg_Context *ctx, mg_Tensor **out, mg_Tensor *t);
/* mg_reduce without the graph (reduce_kernels.c): the same result and
 * messages, computed with grad mode off, recording nothing. */
int mg_reduce_data(mg_Context *ctx, mg_Tensor **out, mg_Tensor **indices,
                   mg_ReduceOp op, mg_Tensor *t, int dim, int keepdim,
                   double correction);
/* mg_sum_to with the sum over one dim (or every element, dim < 0) passed
 * in (views.c): mg_sum_to passes the recorded mg_reduce, mg_bw_sum_to the
 * unrecorded mg_reduce_data. */
typedef int (*mg_SumDimFn)(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                           int dim, int keepdim);
int mg_sum_to_by(mg_Context *ctx, mg_Tensor **out, mg_Tensor *grad, int ndim,
                 const int64_t *shape, mg_SumDimFn sum);

/* Do a and b see the same elements in the same positions? */
int mg_same_view(const mg_Tensor *a, const mg_Tensor *b);

/* Allocates the tensor struct and storage for a contiguous tensor. */
int mg_alloc_tensor(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                    const int64_t *shape);
/* t's dims from the largest stride to the smallest into perm (a stable
 * order: dims of equal stride keep theirs). */
void mg_memory_order(const mg_Tensor *t, int *perm);
/* A new tensor laid out channels last when like has this shape and is
 * (and is not also contiguous, as when C = 1): elementwise results keep
 * a channels-last input's layout, as PyTorch's do. Otherwise contiguous,
 * as mg_alloc_tensor; so a transposed matrix's results stay row-major, as
 * they always were here. like may be NULL. */
int mg_alloc_like(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                  const int64_t *shape, const mg_Tensor *like);
/* A new [N, C, H, W] tensor (shape: 4 sizes) laid out channels last. */
int mg_alloc_channels_last(mg_Context *ctx, mg_Tensor **out, mg_DType dt,
                           const int64_t *shape);
/* mg_alloc_channels_last when cl (ndim is then 4), else mg_alloc_tensor. */
int mg_alloc_layout(mg_Context *ctx, mg_Tensor **out, mg_DType dt, int ndim,
                    const int64_t *shape, int cl);
/* A new tensor struct sharing t's storage, with the given geometry. */
int mg_make_view(mg_Context *ctx, mg_Tensor **out, const mg_Tensor *t,
                 int ndim, const int64_t *shape, const int64_t *stride,
                 int64_t offset);

#endif
