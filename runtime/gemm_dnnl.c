/*
 * gemm_dnnl.c — float32 GEMMs through oneDNN's matmul (brgemm kernels),
 * for mg_gemm; see mg_gemm_dnnl.h for which calls it takes.
 *
 * A primitive is made for one shape, transposition, leading dims, beta and
 * thread count, and kept in a small LRU table on the context's oneDNN
 * state (mg_dnnl.h): a training step makes the same few products every
 * time. Making one JIT-compiles its kernel (about 0.5 ms); oneDNN's own
 * process-wide cache then makes the same one again in a few µs, so a
 * shape pushed out of the table costs little when it returns. A shape
 * oneDNN refuses is remembered as refused and goes to OpenBLAS.
 *
 * The operands are described by strides, as cblas_sgemm's are by leading
 * dims, so nothing is copied; beta != 0 is a sum post-op (c's old values
 * times beta added to the product), and a bias row is the matmul's own
 * bias (added to the accumulators, so a layer's output is written once
 * rather than filled with its bias and then read back). The scratchpad
 * (dnnl_scratchpad_mode_user) is a buffer from moongrad's allocator.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mg_dnnl.h"
#include "mg_gemm_dnnl.h"

typedef struct {
  int64_t ta, tb, M, N, K, lda, ldb, ldc, nthreads;
  int64_t bias; /* with a bias row */
  float beta;
} Key;

typedef struct {
  Key key;
  uint64_t used;             /* LRU stamp; 0: empty slot */
  int refused;               /* oneDNN would not make it */
  dnnl_primitive_desc_t pd;
  dnnl_primitive_t prim;
} Entry;

/* Shapes kept: an MLP's three layers take nine products, and its last,
 * smaller batch nine more. */
#define GEMM_CACHE 32

typedef struct {
  struct mg_DnnlState *base;
  uint64_t clock;
  int64_t runs;
  Entry e[GEMM_CACHE];
} Cache;

static void entry_clear(Entry *e) {
  mg_dnnl_lock();
  if (e->prim) dnnl_primitive_destroy(e->prim);
  if (e->pd) dnnl_primitive_desc_destroy(e->pd);
  mg_dnnl_unlock();
  memset(e, 0, sizeof *e);
}

static void cache_release(void *c) {
  Cache *C = c;
  for (int i = 0; i < GEMM_CACHE; i++) entry_clear(&C->e[i]);
  free(C);
}

static Cache *cache_of(mg_Context *ctx) {
  Cache *C = mg_dnnl_cache(ctx, MG_DNNL_GEMM, sizeof *C, cache_release);
  if (C) C->base = ctx->dnnl;
  return C;
}

int64_t mg_gemm_dnnl_runs(const mg_Context *ctx) {
  const Cache *C = ctx->dnnl ? ctx->dnnl->cache[MG_DNNL_GEMM] : NULL;
  return C ? C->runs : 0;
}

/* A rows x cols float32 matrix with row stride rs and column stride cs. */
static dnnl_status_t matrix(dnnl_memory_desc_t *md, int64_t rows, int64_t cols,
                            int64_t rs, int64_t cs) {
  dnnl_dims_t d = {rows, cols}, st = {rs, cs};
  return dnnl_memory_desc_init_by_strides(md, 2, d, dnnl_f32, st);
}

/* The three matrices of k as oneDNN sees them: a [M, K], b [K, N], c [M, N]. */
static dnnl_status_t mds(const Key *k, dnnl_memory_desc_t *a, dnnl_memory_desc_t *b,
                         dnnl_memory_desc_t *c) {
  dnnl_status_t st;
  if ((st = k->ta ? matrix(a, k->M, k->K, 1, k->lda) : matrix(a, k->M, k->K, k->lda, 1)) ||
      (st = k->tb ? matrix(b, k->K, k->N, 1, k->ldb) : matrix(b, k->K, k->N, k->ldb, 1)))
    return st;
  return matrix(c, k->M, k->N, k->ldc, 1);
}

/* Makes e's descriptor and primitive for its key, or marks it refused. */
static void make(Cache *C, Entry *e) {
  dnnl_memory_desc_t a, b, c, bias;
  dnnl_matmul_desc_t md;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  int ok = 0;
  mg_dnnl_lock();
  if (!mds(&e->key, &a, &b, &c) && !matrix(&bias, 1, e->key.N, e->key.N, 1) &&
      !dnnl_matmul_desc_init(&md, &a, &b, e->key.bias ? &bias : NULL, &c) &&
      !dnnl_primitive_attr_create(&attr) &&
      !dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) &&
      (e->key.beta == 0.0f ||
       (!dnnl_post_ops_create(&po) && !dnnl_post_ops_append_sum(po, e->key.beta) &&
        !dnnl_primitive_attr_set_post_ops(attr, po))) &&
      !dnnl_primitive_desc_create(&e->pd, &md, attr, C->base->eng, NULL)) {
    if (!dnnl_primitive_create(&e->prim, e->pd)) ok = 1;
    else e->prim = NULL;
  } else {
    e->pd = NULL;
  }
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  mg_dnnl_unlock();
  if (!ok) e->refused = 1;
}

/* The entry of k, made when missing, the least recently used one giving
 * way. */
static Entry *lookup(Cache *C, const Key *k) {
  Entry *victim = &C->e[0];
  for (int i = 0; i < GEMM_CACHE; i++) {
    Entry *e = &C->e[i];
    if (e->used && memcmp(&e->key, k, sizeof *k) == 0) {
      e->used = ++C->clock;
      return e;
    }
    if (e->used < victim->used) victim = e;
  }
  entry_clear(victim);
  victim->key = *k;
  victim->used = ++C->clock;
  make(C, victim);
  return victim;
}

int mg_gemm_dnnl(mg_Context *ctx, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb,
                 int64_t M, int64_t N, int64_t K, const float *a, int64_t lda,
                 const float *b, int64_t ldb, const float *bias, float beta,
                 float *c, int64_t ldc) {
  if (omp_in_parallel() || ctx->deterministic || ctx->reference_kernels ||
      M < 16 || N < 16 || K < 16 || (double)M * (double)N * (double)K < 0x1p20)
    return 0;
  Cache *C = cache_of(ctx);
  if (!C) return 0;
  Key k;
  memset(&k, 0, sizeof k); /* the padding too: keys compare by memcmp */
  k.ta = ta != CblasNoTrans, k.tb = tb != CblasNoTrans;
  k.M = M, k.N = N, k.K = K, k.lda = lda, k.ldb = ldb, k.ldc = ldc;
  k.nthreads = omp_get_max_threads();
  k.bias = bias != NULL;
  k.beta = beta;
  Entry *e = lookup(C, &k);
  if (e->refused) return 0;
  dnnl_memory_desc_t amd, bmd, cmd, vmd;
  dnnl_memory_t am = NULL, bm = NULL, cm = NULL, vm = NULL;
  dnnl_status_t dst = mds(&k, &amd, &bmd, &cmd);
  int ran = 0;
  if (!dst && !dnnl_memory_create(&am, &amd, C->base->eng, (void *)a) &&
      !dnnl_memory_create(&bm, &bmd, C->base->eng, (void *)b) &&
      !dnnl_memory_create(&cm, &cmd, C->base->eng, c) &&
      (!bias || (!matrix(&vmd, 1, N, N, 1) &&
                 !dnnl_memory_create(&vm, &vmd, C->base->eng, (void *)bias)))) {
    /* the last slot is mg_dnnl_run's, for the scratchpad */
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm},
                               {DNNL_ARG_DST, cm}, {DNNL_ARG_BIAS, vm}};
    ran = mg_dnnl_run(ctx, C->base, e->pd, e->prim, bias ? 4 : 3, args, &dst) == MG_OK;
  }
  if (am) dnnl_memory_destroy(am);
  if (bm) dnnl_memory_destroy(bm);
  if (cm) dnnl_memory_destroy(cm);
  if (vm) dnnl_memory_destroy(vm);
  if (ran) C->runs++;
  return ran;
}
