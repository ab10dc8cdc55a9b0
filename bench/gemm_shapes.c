/*
 * gemm_shapes.c — `make bench-gemm`: float32 products at the shapes of the
 * training workloads, through OpenBLAS's cblas_sgemm and through oneDNN's
 * matmul (what runtime/gemm_dnnl.c calls), the two alternating, on one
 * thread unless OMP_NUM_THREADS says otherwise. The evidence behind
 * mg_gemm's choice; see docs/performance.md.
 *
 *   build/gemm_shapes            every shape of the table below
 *   build/gemm_shapes M K N ta tb beta
 *
 * Prints, per shape, the median µs of 7 batches for each library, the
 * ratio (OpenBLAS / oneDNN: above 1, oneDNN is faster) and the kernel
 * oneDNN chose. Hold each library to one instruction set to compare
 * machines: ONEDNN_MAX_CPU_ISA=AVX2 with OPENBLAS_CORETYPE=Haswell.
 */
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  int M, K, N, ta, tb;
  float beta;
  const char *what;
} Shape;

static const Shape shapes[] = {
    {128, 784, 512, 0, 1, 0, "MLP layer 1 forward, batch 128"},
    {128, 512, 784, 0, 0, 0, "MLP layer 1 input gradient"},
    {512, 128, 784, 1, 0, 0, "MLP layer 1 weight gradient"},
    {64, 256, 1024, 0, 1, 1, "LSTM step, h W_hh^T added to the gates"},
    {64, 1024, 256, 0, 0, 0, "LSTM step backward, dgates W_hh"},
    {1024, 64, 256, 1, 0, 1, "LSTM step backward, dW_hh accumulated"},
    {2048, 128, 384, 0, 1, 0, "transformer q, k, v projection"},
    {2048, 128, 512, 0, 1, 0, "transformer feed-forward in"},
    {2048, 512, 128, 0, 1, 0, "transformer feed-forward out"},
};

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#define CHECK(call)                                                        \
  do {                                                                     \
    dnnl_status_t s_ = (call);                                             \
    if (s_ != dnnl_success) {                                              \
      fprintf(stderr, "gemm_shapes: %s failed (status %d)\n", #call, s_); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

/* A rows x cols matrix, row-major, or its transpose in memory. */
static void md(dnnl_memory_desc_t *d, int rows, int cols, int trans) {
  dnnl_dims_t dims = {rows, cols};
  CHECK(dnnl_memory_desc_init_by_tag(d, 2, dims, dnnl_f32, trans ? dnnl_ba : dnnl_ab));
}

static void run(const Shape *s, dnnl_engine_t eng, dnnl_stream_t st) {
  size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
  float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
  if (!a || !b || !c) exit(1);
  for (size_t i = 0; i < na; i++) a[i] = (float)(i % 7) * 0.1f;
  for (size_t i = 0; i < nb; i++) b[i] = (float)(i % 5) * 0.1f;
  memset(c, 0, nc * sizeof *c);

  dnnl_memory_desc_t amd, bmd, cmd;
  md(&amd, s->M, s->K, s->ta);
  md(&bmd, s->K, s->N, s->tb);
  md(&cmd, s->M, s->N, 0);
  dnnl_matmul_desc_t mmd;
  CHECK(dnnl_matmul_desc_init(&mmd, &amd, &bmd, NULL, &cmd));
  dnnl_primitive_attr_t attr;
  CHECK(dnnl_primitive_attr_create(&attr));
  dnnl_post_ops_t po = NULL;
  if (s->beta != 0) {
    CHECK(dnnl_post_ops_create(&po));
    CHECK(dnnl_post_ops_append_sum(po, s->beta));
    CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
  }
  dnnl_primitive_desc_t pd;
  CHECK(dnnl_primitive_desc_create(&pd, &mmd, attr, eng, NULL));
  const char *impl = "?";
  dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
  dnnl_primitive_t p;
  CHECK(dnnl_primitive_create(&p, pd));
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  dnnl_memory_t am, bm, cm, pm = NULL;
  CHECK(dnnl_memory_create(&am, &amd, eng, a));
  CHECK(dnnl_memory_create(&bm, &bmd, eng, b));
  CHECK(dnnl_memory_create(&cm, &cmd, eng, c));
  int nargs = 3;
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
  if (smd && dnnl_memory_desc_get_size(smd)) {
    CHECK(dnnl_memory_create(&pm, smd, eng, DNNL_MEMORY_ALLOCATE));
    args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, pm};
  }

  /* Enough calls per batch for about 20 ms, after a warm-up of each. */
  int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
  double flops = 2.0 * s->M * s->N * s->K;
  int reps = (int)(2e9 / flops) + 1;
  enum { BATCHES = 7 };
  double tb[BATCHES], td[BATCHES];
  for (int k = -1; k < BATCHES; k++) {
    double t = now();
    for (int r = 0; r < reps; r++)
      cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
                  s->tb ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f, a, lda,
                  b, ldb, s->beta, c, s->N);
    if (k >= 0) tb[k] = (now() - t) / reps;
    t = now();
    for (int r = 0; r < reps; r++) CHECK(dnnl_primitive_execute(p, st, nargs, args));
    CHECK(dnnl_stream_wait(st));
    if (k >= 0) td[k] = (now() - t) / reps;
  }
  qsort(tb, BATCHES, sizeof *tb, cmp);
  qsort(td, BATCHES, sizeof *td, cmp);
  printf("gemm M=%d K=%d N=%d ta=%d tb=%d beta=%g openblas_us=%.1f onednn_us=%.1f "
         "ratio=%.2f kernel=%s  (%s)\n", s->M, s->K, s->N, s->ta, s->tb, s->beta,
         tb[BATCHES / 2] * 1e6, td[BATCHES / 2] * 1e6, tb[BATCHES / 2] / td[BATCHES / 2],
         impl, s->what);

  if (pm) dnnl_memory_destroy(pm);
  dnnl_memory_destroy(am);
  dnnl_memory_destroy(bm);
  dnnl_memory_destroy(cm);
  dnnl_primitive_destroy(p);
  dnnl_primitive_desc_destroy(pd);
  if (po) dnnl_post_ops_destroy(po);
  dnnl_primitive_attr_destroy(attr);
  free(a);
  free(b);
  free(c);
}

int main(int argc, char **argv) {
  dnnl_engine_t eng;
  dnnl_stream_t st;
  CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
  CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
  if (argc == 7) {
    Shape s = {atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]) != 0,
               atoi(argv[5]) != 0, (float)atof(argv[6]), "given"};
    if (s.M < 1 || s.K < 1 || s.N < 1) {
      fprintf(stderr, "gemm_shapes: M, K and N must be positive\n");
      return 2;
    }
    run(&s, eng, st);
  } else if (argc == 1) {
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) run(&shapes[i], eng, st);
  } else {
    fprintf(stderr, "usage: gemm_shapes [M K N ta tb beta]\n");
    return 2;
  }
  dnnl_stream_destroy(st);
  dnnl_engine_destroy(eng);
  return 0;
}
