/*
 * iter.c — the strided, broadcasting iterator under every elementwise loop.
 */
#include <omp.h>
#include <string.h>

#include "mg_internal.h"

void mg_iter_init(mg_Iter *it, int nops, mg_Tensor *const *tensors, int ndim,
                  const int64_t *shape) {
  memset(it, 0, sizeof *it);
  it->nops = nops;
  int64_t st[MG_ITER_MAXOPS][MG_MAXDIM];
  /* Align each operand's dims to the right of the iteration shape; a size-1
   * or missing dim is broadcast with stride 0. */
  for (int k = 0; k < nops; k++) {
    const mg_Tensor *t = tensors[k];
    it->data[k] = (char *)mg_data(t);
    it->esize[k] = mg_dtype_size(t->dtype);
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
      int td = d - lead;
      st[k][d] = (td < 0 || t->shape[td] == 1) ? 0 : t->stride[td];
    }
  }
  /* Drop size-1 dims, then merge neighbours that are contiguous in every
   * operand, outermost first. */
  int n = 0;
  int64_t numel = 1;
  for (int d = 0; d < ndim; d++) {
    numel *= shape[d];
    if (shape[d] == 1) continue;
    if (n > 0) {
      int merge = 1;
      for (int k = 0; k < nops && merge; k++)
        merge = st[k][d] * shape[d] == it->stride[k][n - 1];
      if (merge) {
        it->shape[n - 1] *= shape[d];
        for (int k = 0; k < nops; k++) it->stride[k][n - 1] = st[k][d];
        continue;
      }
    }
    it->shape[n] = shape[d];
    for (int k = 0; k < nops; k++) it->stride[k][n] = st[k][d];
    n++;
  }
  if (n == 0) { /* a single element */
    it->shape[0] = 1;
    n = 1;
  }
  it->ndim = n;
  it->numel = numel;
}

/* Runs elements [begin, end) of the iteration, one inner run at a time. */
static void run_range(const mg_Iter *it, int64_t begin, int64_t end,
                      mg_LoopFn fn, const void *arg) {
  int nd = it->ndim, last = nd - 1;
  int64_t idx[MG_MAXDIM];
  int64_t rem = begin;
  for (int d = last; d >= 0; d--) {
    idx[d] = rem % it->shape[d];
    rem /= it->shape[d];
  }
  char *ptrs[MG_ITER_MAXOPS];
  int64_t inner[MG_ITER_MAXOPS];
  for (int k = 0; k < it->nops; k++) inner[k] = it->stride[k][last];
  int64_t pos = begin;
  while (pos < end) {
    for (int k = 0; k < it->nops; k++) {
      int64_t off = 0;
      for (int d = 0; d < nd; d++) off += idx[d] * it->stride[k][d];
      ptrs[k] = it->data[k] + off * (int64_t)it->esize[k];
    }
    int64_t n = it->shape[last] - idx[last];
    if (n > end - pos) n = end - pos;
    fn(ptrs, inner, n, arg);
    pos += n;
    idx[last] += n;
    for (int d = last; d > 0 && idx[d] >= it->shape[d]; d--) {
      idx[d] = 0;
      idx[d - 1]++;
    }
  }
}

void mg_iter_run(const mg_Context *ctx, const mg_Iter *it, mg_LoopFn fn,
                 const void *arg) {
  if (it->numel == 0) return;
  int nt = mg_threads_for(ctx, it->numel);
  if (nt <= 1) {
    run_range(it, 0, it->numel, fn, arg);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t b = it->numel * t / n, e = it->numel * (t + 1) / n;
    run_range(it, b, e, fn, arg);
  }
}
