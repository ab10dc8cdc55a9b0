/*
 * reduce_kernels.c — the kernels of the reductions: sum, mean, prod, max,
 * min, argmax, argmin, var and std, over every element or over one
 * dimension.
 *
 * Every reduction makes its input contiguous and views it as (outer, n,
 * inner), reducing the middle axis:
 *   - inner == 1 (the last dim, or everything): each output reduces a
 *     contiguous row of n elements. Rows longer than MG_RED_CHUNK are split
 *     into fixed chunks whose partial results are combined in order, so a
 *     full reduction is parallel and yet gives the same bits for any thread
 *     count.
 *   - inner > 1: a block of columns accumulates the rows one after the
 *     other into a buffer of accumulators (a contiguous sweep per row, no
 *     strided gathers). Many rows are split into fixed chunks of rows whose
 *     partial columns are combined in order, so even a reduction with one
 *     outer slice (a mean over the batch) runs on every thread.
 * Units of work depend only on the shape, so each output element is always
 * computed by the same sequence of operations: results never depend on the
 * thread count.
 *
 * Numbers: float32 and float64 data accumulate in double; int64 sum and
 * prod accumulate exactly in int64 (wrapping on overflow, as PyTorch);
 * int64 mean/var/std accumulate in double and give float32 (PyTorch refuses
 * them; we promote). var/std are two-pass (the mean, then the squared
 * deviations) and divide by n - correction, giving nan when that is <= 0
 * (where PyTorch gives nan or inf). NaN propagates through sum, prod, max
 * and min; argmax/argmin and max/min's indices point at the first NaN, else
 * at the first occurrence of the extreme value, as PyTorch does. The sum of
 * nothing is 0, the product 1, the mean nan; max/min/argmax/argmin of
 * nothing are errors.
 *
 * This file records nothing: mg_reduce_data is a reduction without the
 * graph, which ops_reduce.c makes differentiable (mg_reduce) and backward
 * formulas call directly (they run with grad mode off).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "mg_internal.h"

static const char *const reduce_names[MG_NREDUCE] = {
    "sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std"};
_Static_assert(sizeof reduce_names / sizeof *reduce_names == MG_NREDUCE,
               "a reduction without a name");

const char *mg_reduce_name(mg_ReduceOp op) { return reduce_names[op]; }

/* Elements per chunk of a long row: fixed, so that the partials (and the
 * order they are combined in) do not depend on the thread count. */
#define MG_RED_CHUNK 65536
/* Widest column block of an inner > 1 reduction, and about how many
 * elements one unit of such a reduction sweeps (both fixed, as above). */
#define MG_RED_BLOCK 4096
#define MG_RED_COLS_CHUNK (1 << 18)
/* Independent accumulators of a row sum: room for SIMD and pipelining. */
#define LANES 16

/* What a kernel accumulates. The int64 kernel reads K_SUM/K_SQDEV in
 * double (for mean, var, std) and K_ISUM/K_IPROD in exact int64. */
enum { K_SUM, K_PROD, K_ISUM, K_IPROD, K_SQDEV, K_MAX, K_MIN, K_NKINDS };

/* One accumulated value: a sum or product (d, or i for the int64 kinds), or
 * an extreme value (d for float data, i for int64) and its 0-based
 * position. */
typedef struct {
  union {
    double d;
    int64_t i;
  } v;
  int64_t at;
} Acc;

/* A reduction in flight: the contiguous input viewed as (outer, n, inner)
 * and the output, outer*inner elements in row-major order. */
typedef struct {
  mg_ReduceOp op;      /* decides how an accumulated value is finished */
  int kop;             /* what the kernels accumulate (K_*) */
  mg_DType dt;         /* input dtype */
  const char *x;       /* first input element */
  int64_t outer, n, inner;
  const double *mean;  /* K_SQDEV: the mean of each output position */
  double correction;   /* VAR/STD: subtracted from n in the divisor */
  mg_DType odt;        /* output dtype */
  char *out;           /* first output element */
  int64_t *idx;        /* MAX/MIN: 1-based positions, or NULL */
} Job;

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- row kernels: one contiguous row of n elements -> one Acc -------------
 * x is (n); m is the row's mean (read by the sqdev kernels only). A sum or
 * product (row_fold, row_ifold) folds its values into LANES independent
 * accumulators from the identity, then folds the lanes as a fixed tree:
 * vectorisable, and the same bits on every run. A max or min (row_best)
 * finds the first extreme a block at a time: a SIMD pass finds the block's
 * extreme e (max and min are associative, so its lanes may meet in any
 * order) and whether it holds a NaN; only a block that improves on the best
 * so far is scanned again for the position. The first NaN wins outright.
 * The float kernels and the int64 sum and sqdev (mean, var, std) accumulate
 * in double; isum and iprod wrap like C's unsigned arithmetic. */
#define BEST_BLOCK 1024

typedef Acc RowFn(const void *x, int64_t n, double m);

/* The row's sum (kind K_SUM), sum of squared deviations from m (K_SQDEV)
 * or product (K_PROD), in double. */
MG_INLINE Acc row_fold_f32(const float *x, int64_t n, double m, int kind) {
  int prod = kind == K_PROD, sq = kind == K_SQDEV;
  Acc a = {{0}, 0};
  double id = prod ? 1 : 0, l[LANES], tail = id;
  for (int k = 0; k < LANES; k++) l[k] = id;
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) {
      double v = (double)x[i + k];
      if (prod) l[k] *= v;
      else l[k] += sq ? (v - m) * (v - m) : v;
    }
  for (; i < n; i++) {
    double v = (double)x[i];
    if (prod) tail *= v;
    else tail += sq ? (v - m) * (v - m) : v;
  }
  for (int w = LANES / 2; w >= 1; w /= 2)
    for (int k = 0; k < w; k++) {
      if (prod) l[k] *= l[k + w];
      else l[k] += l[k + w];
    }
  if (prod) l[0] *= tail;
  else l[0] += tail;
  a.v.d = l[0];
  return a;
}

/* f64 twin of row_fold_f32 */
MG_INLINE Acc row_fold_f64(const double *x, int64_t n, double m, int kind) {
  int prod = kind == K_PROD, sq = kind == K_SQDEV;
  Acc a = {{0}, 0};
  double id = prod ? 1 : 0, l[LANES], tail = id;
  for (int k = 0; k < LANES; k++) l[k] = id;
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) {
      double v = (double)x[i + k];
      if (prod) l[k] *= v;
      else l[k] += sq ? (v - m) * (v - m) : v;
    }
  for (; i < n; i++) {
    double v = (double)x[i];
    if (prod) tail *= v;
    else tail += sq ? (v - m) * (v - m) : v;
  }
  for (int w = LANES / 2; w >= 1; w /= 2)
    for (int k = 0; k < w; k++) {
      if (prod) l[k] *= l[k + w];
      else l[k] += l[k + w];
    }
  if (prod) l[0] *= tail;
  else l[0] += tail;
  a.v.d = l[0];
  return a;
}

MG_INLINE Acc row_fold_i64(const int64_t *x, int64_t n, double m, int kind) {
  int prod = kind == K_PROD, sq = kind == K_SQDEV;
  Acc a = {{0}, 0};
  double id = prod ? 1 : 0, l[LANES], tail = id;
  for (int k = 0; k < LANES; k++) l[k] = id;
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) {
      double v = (double)x[i + k];
      if (prod) l[k] *= v;
      else l[k] += sq ? (v - m) * (v - m) : v;
    }
  for (; i < n; i++) {
    double v = (double)x[i];
    if (prod) tail *= v;
    else tail += sq ? (v - m) * (v - m) : v;
  }
  for (int w = LANES / 2; w >= 1; w /= 2)
    for (int k = 0; k < w; k++) {
      if (prod) l[k] *= l[k + w];
      else l[k] += l[k + w];
    }
  if (prod) l[0] *= tail;
  else l[0] += tail;
  a.v.d = l[0];
  return a;
}

/* int64's exact sum (prod = 0) or product, wrapping. */
MG_INLINE Acc row_ifold_i64(const int64_t *x, int64_t n, int prod) {
  Acc a = {{0}, 0};
  uint64_t id = prod ? 1 : 0, l[LANES], tail = id;
  for (int k = 0; k < LANES; k++) l[k] = id;
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) {
      uint64_t v = (uint64_t)x[i + k];
      if (prod) l[k] *= v;
      else l[k] += v;
    }
  for (; i < n; i++) {
    uint64_t v = (uint64_t)x[i];
    if (prod) tail *= v;
    else tail += v;
  }
  for (int w = LANES / 2; w >= 1; w /= 2)
    for (int k = 0; k < w; k++) {
      if (prod) l[k] *= l[k + w];
      else l[k] += l[k + w];
    }
  if (prod) l[0] *= tail;
  else l[0] += tail;
  a.v.i = (int64_t)l[0];
  return a;
}

static Acc row_sum_f32(const void *x, int64_t n, double m) {
  return row_fold_f32(x, n, m, K_SUM);
}

/* f64 twin of row_sum_f32 */
static Acc row_sum_f64(const void *x, int64_t n, double m) {
  return row_fold_f64(x, n, m, K_SUM);
}

static Acc row_sum_i64(const void *x, int64_t n, double m) {
  return row_fold_i64(x, n, m, K_SUM);
}

static Acc row_sqdev_f32(const void *x, int64_t n, double m) {
  return row_fold_f32(x, n, m, K_SQDEV);
}

/* f64 twin of row_sqdev_f32 */
static Acc row_sqdev_f64(const void *x, int64_t n, double m) {
  return row_fold_f64(x, n, m, K_SQDEV);
}

static Acc row_sqdev_i64(const void *x, int64_t n, double m) {
  return row_fold_i64(x, n, m, K_SQDEV);
}

static Acc row_prod_f32(const void *x, int64_t n, double m) {
  return row_fold_f32(x, n, m, K_PROD);
}

/* f64 twin of row_prod_f32 */
static Acc row_prod_f64(const void *x, int64_t n, double m) {
  return row_fold_f64(x, n, m, K_PROD);
}

static Acc row_isum_i64(const void *x, int64_t n, double m) {
  return row_ifold_i64(x, n, 0);
}

static Acc row_iprod_i64(const void *x, int64_t n, double m) {
  return row_ifold_i64(x, n, 1);
}

/* The row's first maximum (want_max) or minimum, or its first NaN. */
MG_INLINE Acc row_best_f32(const float *x, int64_t n, int want_max) {
  Acc a = {{0}, 0};
  float b = x[0];
  int64_t at = 0;
  for (int64_t s = 0; s < n; s += BEST_BLOCK) {
    const float *y = x + s;
    int64_t len = n - s < BEST_BLOCK ? n - s : BEST_BLOCK, i;
    float e = y[0];
    int nan = 0;
    if (want_max) {
#pragma omp simd reduction(max : e) reduction(| : nan)
      for (int64_t q = 0; q < len; q++) {
        e = y[q] > e ? y[q] : e;
        nan |= y[q] != y[q];
      }
    } else {
#pragma omp simd reduction(min : e) reduction(| : nan)
      for (int64_t q = 0; q < len; q++) {
        e = y[q] < e ? y[q] : e;
        nan |= y[q] != y[q];
      }
    }
    if (nan) { /* the first NaN is the answer */
      for (i = 0; y[i] == y[i]; i++) {}
      b = y[i];
      at = s + i;
      break;
    }
    /* a better block: where e first occurs, LANES at a time, then 1 */
    if (want_max ? e > b : e < b) {
      int64_t q = 0;
      for (; q + LANES <= len; q += LANES) {
        int hit = 0;
        for (int k = 0; k < LANES; k++) hit |= y[q + k] == e;
        if (hit) break;
      }
      while (y[q] != e) q++;
      b = e;
      at = s + q;
    }
  }
  a.v.d = b;
  a.at = at;
  return a;
}

/* f64 twin of row_best_f32 */
MG_INLINE Acc row_best_f64(const double *x, int64_t n, int want_max) {
  Acc a = {{0}, 0};
  double b = x[0];
  int64_t at = 0;
  for (int64_t s = 0; s < n; s += BEST_BLOCK) {
    const double *y = x + s;
    int64_t len = n - s < BEST_BLOCK ? n - s : BEST_BLOCK, i;
    double e = y[0];
    int nan = 0;
    if (want_max) {
#pragma omp simd reduction(max : e) reduction(| : nan)
      for (int64_t q = 0; q < len; q++) {
        e = y[q] > e ? y[q] : e;
        nan |= y[q] != y[q];
      }
    } else {
#pragma omp simd reduction(min : e) reduction(| : nan)
      for (int64_t q = 0; q < len; q++) {
        e = y[q] < e ? y[q] : e;
        nan |= y[q] != y[q];
      }
    }
    if (nan) { /* the first NaN is the answer */
      for (i = 0; y[i] == y[i]; i++) {}
      b = y[i];
      at = s + i;
      break;
    }
    /* a better block: where e first occurs, LANES at a time, then 1 */
    if (want_max ? e > b : e < b) {
      int64_t q = 0;
      for (; q + LANES <= len; q += LANES) {
        int hit = 0;
        for (int k = 0; k < LANES; k++) hit |= y[q + k] == e;
        if (hit) break;
      }
      while (y[q] != e) q++;
      b = e;
      at = s + q;
    }
  }
  a.v.d = b;
  a.at = at;
  return a;
}

MG_INLINE Acc row_best_i64(const int64_t *x, int64_t n, int want_max) {
  Acc a = {{0}, 0};
  int64_t b = x[0];
  int64_t at = 0;
  for (int64_t s = 0; s < n; s += BEST_BLOCK) {
    const int64_t *y = x + s;
    int64_t len = n - s < BEST_BLOCK ? n - s : BEST_BLOCK;
    int64_t e = y[0];
    if (want_max) {
#pragma omp simd reduction(max : e)
      for (int64_t q = 0; q < len; q++) e = y[q] > e ? y[q] : e;
    } else {
#pragma omp simd reduction(min : e)
      for (int64_t q = 0; q < len; q++) e = y[q] < e ? y[q] : e;
    }
    /* a better block: where e first occurs, LANES at a time, then 1 */
    if (want_max ? e > b : e < b) {
      int64_t q = 0;
      for (; q + LANES <= len; q += LANES) {
        int hit = 0;
        for (int k = 0; k < LANES; k++) hit |= y[q + k] == e;
        if (hit) break;
      }
      while (y[q] != e) q++;
      b = e;
      at = s + q;
    }
  }
  a.v.i = b;
  a.at = at;
  return a;
}

static Acc row_max_f32(const void *x, int64_t n, double m) {
  return row_best_f32(x, n, 1);
}

/* f64 twin of row_max_f32 */
static Acc row_max_f64(const void *x, int64_t n, double m) {
  return row_best_f64(x, n, 1);
}

static Acc row_max_i64(const void *x, int64_t n, double m) {
  return row_best_i64(x, n, 1);
}

static Acc row_min_f32(const void *x, int64_t n, double m) {
  return row_best_f32(x, n, 0);
}

/* f64 twin of row_min_f32 */
static Acc row_min_f64(const void *x, int64_t n, double m) {
  return row_best_f64(x, n, 0);
}

static Acc row_min_i64(const void *x, int64_t n, double m) {
  return row_best_i64(x, n, 0);
}

/* ---- column kernels: (rows, w) with row stride `stride` -> w values -------
 * val receives w doubles (w int64 for isum, iprod and the int64 extremes),
 * at the 0-based rows of the extremes; mean holds the w means for sqdev.
 * Row 0 initialises the accumulators and every later row xr is folded in,
 * so rows == 0 starts from the identity instead (sums and products only:
 * extremes of nothing are rejected before any kernel runs). */
typedef void ColsFn(const void *x, int64_t rows, int64_t stride, int64_t w,
                    void *val, int64_t *at, const double *mean);

static void cols_sum_f32(const void *vx, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  const float *x = vx;
  double *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 0;
    return;
  }
  const float *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = xr[c];
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++) a[c] += xr[c];
  }
}

/* f64 twin of cols_sum_f32 */
static void cols_sum_f64(const void *vx, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  const double *x = vx;
  double *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 0;
    return;
  }
  const double *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = xr[c];
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++) a[c] += xr[c];
  }
}

static void cols_sum_i64(const void *vx, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  const int64_t *x = vx;
  double *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 0;
    return;
  }
  const int64_t *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = (double)xr[c];
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++) a[c] += (double)xr[c];
  }
}

static void cols_sqdev_f32(const void *vx, int64_t rows, int64_t stride,
                           int64_t w, void *val, int64_t *at,
                           const double *mean) {
  const float *x = vx;
  double *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 0;
    return;
  }
  const float *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = (xr[c] - mean[c]) * (xr[c] - mean[c]);
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++)
      a[c] += (xr[c] - mean[c]) * (xr[c] - mean[c]);
  }
}

/* f64 twin of cols_sqdev_f32 */
static void cols_sqdev_f64(const void *vx, int64_t rows, int64_t stride,
                           int64_t w, void *val, int64_t *at,
                           const double *mean) {
  const double *x = vx;
  double *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 0;
    return;
  }
  const double *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = (xr[c] - mean[c]) * (xr[c] - mean[c]);
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++)
      a[c] += (xr[c] - mean[c]) * (xr[c] - mean[c]);
  }
}

static void cols_sqdev_i64(const void *vx, int64_t rows, int64_t stride,
                           int64_t w, void *val, int64_t *at,
                           const double *mean) {
  const int64_t *x = vx;
  double *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 0;
    return;
  }
  const int64_t *xr = x;
  for (int64_t c = 0; c < w; c++)
    a[c] = ((double)xr[c] - mean[c]) * ((double)xr[c] - mean[c]);
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++)
      a[c] += ((double)xr[c] - mean[c]) * ((double)xr[c] - mean[c]);
  }
}

static void cols_prod_f32(const void *vx, int64_t rows, int64_t stride,
                          int64_t w, void *val, int64_t *at,
                          const double *mean) {
  const float *x = vx;
  double *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 1;
    return;
  }
  const float *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = xr[c];
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++) a[c] *= xr[c];
  }
}

/* f64 twin of cols_prod_f32 */
static void cols_prod_f64(const void *vx, int64_t rows, int64_t stride,
                          int64_t w, void *val, int64_t *at,
                          const double *mean) {
  const double *x = vx;
  double *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 1;
    return;
  }
  const double *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = xr[c];
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++) a[c] *= xr[c];
  }
}

static void cols_isum_i64(const void *vx, int64_t rows, int64_t stride,
                          int64_t w, void *val, int64_t *at,
                          const double *mean) {
  const int64_t *x = vx;
  uint64_t *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 0;
    return;
  }
  const int64_t *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = (uint64_t)xr[c];
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++) a[c] += (uint64_t)xr[c];
  }
}

static void cols_iprod_i64(const void *vx, int64_t rows, int64_t stride,
                           int64_t w, void *val, int64_t *at,
                           const double *mean) {
  const int64_t *x = vx;
  uint64_t *a = val;
  if (rows == 0) {
    for (int64_t c = 0; c < w; c++) a[c] = 1;
    return;
  }
  const int64_t *xr = x;
  for (int64_t c = 0; c < w; c++) a[c] = (uint64_t)xr[c];
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++) a[c] *= (uint64_t)xr[c];
  }
}

/* Each column's first maximum (want_max) or minimum, or its first NaN, and
 * its row in at. */
MG_INLINE void cols_best_f32(const float *x, int64_t rows, int64_t stride,
                          int64_t w, double *a, int64_t *at, int want_max) {
  const float *xr = x;
  for (int64_t c = 0; c < w; c++) {
    a[c] = xr[c];
    at[c] = 0;
  }
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++)
      if ((want_max ? xr[c] > a[c] : xr[c] < a[c]) ||
          (xr[c] != xr[c] && a[c] == a[c])) {
        a[c] = xr[c];
        at[c] = r;
      }
  }
}

/* f64 twin of cols_best_f32 */
MG_INLINE void cols_best_f64(const double *x, int64_t rows, int64_t stride,
                          int64_t w, double *a, int64_t *at, int want_max) {
  const double *xr = x;
  for (int64_t c = 0; c < w; c++) {
    a[c] = xr[c];
    at[c] = 0;
  }
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++)
      if ((want_max ? xr[c] > a[c] : xr[c] < a[c]) ||
          (xr[c] != xr[c] && a[c] == a[c])) {
        a[c] = xr[c];
        at[c] = r;
      }
  }
}

MG_INLINE void cols_best_i64(const int64_t *x, int64_t rows, int64_t stride,
                          int64_t w, int64_t *a, int64_t *at, int want_max) {
  const int64_t *xr = x;
  for (int64_t c = 0; c < w; c++) {
    a[c] = xr[c];
    at[c] = 0;
  }
  for (int64_t r = 1; r < rows; r++) {
    xr = x + r * stride;
    for (int64_t c = 0; c < w; c++)
      if (want_max ? xr[c] > a[c] : xr[c] < a[c]) {
        a[c] = xr[c];
        at[c] = r;
      }
  }
}

static void cols_max_f32(const void *x, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  cols_best_f32(x, rows, stride, w, val, at, 1);
}

/* f64 twin of cols_max_f32 */
static void cols_max_f64(const void *x, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  cols_best_f64(x, rows, stride, w, val, at, 1);
}

static void cols_max_i64(const void *x, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  cols_best_i64(x, rows, stride, w, val, at, 1);
}

static void cols_min_f32(const void *x, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  cols_best_f32(x, rows, stride, w, val, at, 0);
}

/* f64 twin of cols_min_f32 */
static void cols_min_f64(const void *x, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  cols_best_f64(x, rows, stride, w, val, at, 0);
}

static void cols_min_i64(const void *x, int64_t rows, int64_t stride,
                         int64_t w, void *val, int64_t *at,
                         const double *mean) {
  cols_best_i64(x, rows, stride, w, val, at, 0);
}

/* ---- combining: the partials of consecutive chunks, in order -------------
 * (va, aa) = (va, aa) followed by (vb, ab), w values each (laid out as the
 * column kernels leave them), where ab are already positions in the whole
 * reduced dim. float32 and float64 data both accumulate in double, so they
 * share the _f64 kernels. A later extreme replaces the earlier only when
 * strictly better (or the first NaN), keeping the first occurrence. */
typedef void CombineFn(void *va, int64_t *aa, const void *vb,
                       const int64_t *ab, int64_t w);

static void combine_sum_f64(void *va, int64_t *aa, const void *vb,
                            const int64_t *ab, int64_t w) {
  double *da = va;
  const double *db = vb;
  for (int64_t c = 0; c < w; c++) da[c] += db[c];
}

static void combine_prod_f64(void *va, int64_t *aa, const void *vb,
                             const int64_t *ab, int64_t w) {
  double *da = va;
  const double *db = vb;
  for (int64_t c = 0; c < w; c++) da[c] *= db[c];
}

static void combine_isum_i64(void *va, int64_t *aa, const void *vb,
                             const int64_t *ab, int64_t w) {
  uint64_t *ua = va;
  const uint64_t *ub = vb;
  for (int64_t c = 0; c < w; c++) ua[c] += ub[c];
}

static void combine_iprod_i64(void *va, int64_t *aa, const void *vb,
                              const int64_t *ab, int64_t w) {
  uint64_t *ua = va;
  const uint64_t *ub = vb;
  for (int64_t c = 0; c < w; c++) ua[c] *= ub[c];
}

/* Extremes: the later replaces the earlier when better (want_max: larger)
 * or, for doubles, the first NaN. */
MG_INLINE void combine_best_f64(double *da, int64_t *aa, const double *db,
                             const int64_t *ab, int64_t w, int want_max) {
  for (int64_t c = 0; c < w; c++)
    if (da[c] == da[c] &&
        ((want_max ? db[c] > da[c] : db[c] < da[c]) || db[c] != db[c])) {
      da[c] = db[c];
      aa[c] = ab[c];
    }
}

MG_INLINE void combine_best_i64(int64_t *ia, int64_t *aa, const int64_t *ib,
                             const int64_t *ab, int64_t w, int want_max) {
  for (int64_t c = 0; c < w; c++)
    if (want_max ? ib[c] > ia[c] : ib[c] < ia[c]) {
      ia[c] = ib[c];
      aa[c] = ab[c];
    }
}

static void combine_max_f64(void *va, int64_t *aa, const void *vb,
                            const int64_t *ab, int64_t w) {
  combine_best_f64(va, aa, vb, ab, w, 1);
}

static void combine_max_i64(void *va, int64_t *aa, const void *vb,
                            const int64_t *ab, int64_t w) {
  combine_best_i64(va, aa, vb, ab, w, 1);
}

static void combine_min_f64(void *va, int64_t *aa, const void *vb,
                            const int64_t *ab, int64_t w) {
  combine_best_f64(va, aa, vb, ab, w, 0);
}

static void combine_min_i64(void *va, int64_t *aa, const void *vb,
                            const int64_t *ab, int64_t w) {
  combine_best_i64(va, aa, vb, ab, w, 0);
}

/* ---- finishing: accumulated values -> output elements k0 .. k0+w-1 -------
 * One kernel per output dtype: mean, var and std are float32 or float64
 * (float32 for int64 data); int64 results are the exact sums and products,
 * the int64 extremes and every argmax/argmin. */
typedef void FinishFn(const Job *j, int64_t k0, int64_t w, const void *val,
                      const int64_t *at);

static void finish_f32(const Job *j, int64_t k0, int64_t w, const void *val,
                       const int64_t *at) {
  const double *d = val;
  double n = (double)j->n, div = n - j->correction;
  float *o = (float *)(void *)j->out + k0;
  switch (j->op) {
  case MG_RED_SUM:
  case MG_RED_PROD:
  case MG_RED_MAX:
  case MG_RED_MIN:
    for (int64_t c = 0; c < w; c++) o[c] = (float)d[c];
    if (j->idx) /* max and min only */
      for (int64_t c = 0; c < w; c++) j->idx[k0 + c] = at[c] + 1;
    break;
  case MG_RED_MEAN:
    for (int64_t c = 0; c < w; c++) o[c] = (float)(d[c] / n);
    break;
  case MG_RED_VAR:
    for (int64_t c = 0; c < w; c++) o[c] = (float)(div > 0 ? d[c] / div : NAN);
    break;
  case MG_RED_STD:
    for (int64_t c = 0; c < w; c++)
      o[c] = (float)sqrt(div > 0 ? d[c] / div : NAN);
    break;
  default: break;
  }
}

/* f64 twin of finish_f32 */
static void finish_f64(const Job *j, int64_t k0, int64_t w, const void *val,
                       const int64_t *at) {
  const double *d = val;
  double n = (double)j->n, div = n - j->correction;
  double *o = (double *)(void *)j->out + k0;
  switch (j->op) {
  case MG_RED_SUM:
  case MG_RED_PROD:
  case MG_RED_MAX:
  case MG_RED_MIN:
    for (int64_t c = 0; c < w; c++) o[c] = (double)d[c];
    if (j->idx) /* max and min only */
      for (int64_t c = 0; c < w; c++) j->idx[k0 + c] = at[c] + 1;
    break;
  case MG_RED_MEAN:
    for (int64_t c = 0; c < w; c++) o[c] = (double)(d[c] / n);
    break;
  case MG_RED_VAR:
    for (int64_t c = 0; c < w; c++) o[c] = (double)(div > 0 ? d[c] / div : NAN);
    break;
  case MG_RED_STD:
    for (int64_t c = 0; c < w; c++)
      o[c] = (double)sqrt(div > 0 ? d[c] / div : NAN);
    break;
  default: break;
  }
}

static void finish_i64(const Job *j, int64_t k0, int64_t w, const void *val,
                       const int64_t *at) {
  int64_t *o = (int64_t *)(void *)j->out + k0;
  switch (j->op) {
  case MG_RED_SUM:
  case MG_RED_PROD:
  case MG_RED_MAX:
  case MG_RED_MIN:
    memcpy(o, val, sizeof(int64_t) * (size_t)w);
    if (j->idx) /* max and min only */
      for (int64_t c = 0; c < w; c++) j->idx[k0 + c] = at[c] + 1;
    break;
  case MG_RED_ARGMAX:
  case MG_RED_ARGMIN:
    for (int64_t c = 0; c < w; c++) o[c] = at[c] + 1;
    break;
  default: break;
  }
}

/* ---- choosing the kernels, once per pass -------------------------------- */

/* By input dtype (MG_F32, MG_F64, then int64), then by kind. */
static RowFn *const row_kernels[3][K_NKINDS] = {
    {[K_SUM] = row_sum_f32, [K_SQDEV] = row_sqdev_f32, [K_PROD] = row_prod_f32,
     [K_MAX] = row_max_f32, [K_MIN] = row_min_f32},
    {[K_SUM] = row_sum_f64, [K_SQDEV] = row_sqdev_f64, [K_PROD] = row_prod_f64,
     [K_MAX] = row_max_f64, [K_MIN] = row_min_f64},
    {[K_SUM] = row_sum_i64, [K_SQDEV] = row_sqdev_i64, [K_ISUM] = row_isum_i64,
     [K_IPROD] = row_iprod_i64, [K_MAX] = row_max_i64, [K_MIN] = row_min_i64},
};

static ColsFn *const cols_kernels[3][K_NKINDS] = {
    {[K_SUM] = cols_sum_f32, [K_SQDEV] = cols_sqdev_f32,
     [K_PROD] = cols_prod_f32, [K_MAX] = cols_max_f32, [K_MIN] = cols_min_f32},
    {[K_SUM] = cols_sum_f64, [K_SQDEV] = cols_sqdev_f64,
     [K_PROD] = cols_prod_f64, [K_MAX] = cols_max_f64, [K_MIN] = cols_min_f64},
    {[K_SUM] = cols_sum_i64, [K_SQDEV] = cols_sqdev_i64,
     [K_ISUM] = cols_isum_i64, [K_IPROD] = cols_iprod_i64,
     [K_MAX] = cols_max_i64, [K_MIN] = cols_min_i64},
};

/* By accumulator (double, then int64), then by kind. */
static CombineFn *const combine_kernels[2][K_NKINDS] = {
    {[K_SUM] = combine_sum_f64, [K_SQDEV] = combine_sum_f64,
     [K_PROD] = combine_prod_f64, [K_MAX] = combine_max_f64,
     [K_MIN] = combine_min_f64},
    {[K_SUM] = combine_sum_f64, [K_SQDEV] = combine_sum_f64,
     [K_ISUM] = combine_isum_i64, [K_IPROD] = combine_iprod_i64,
     [K_MAX] = combine_max_i64, [K_MIN] = combine_min_i64},
};

/* The kernels of one pass over the data. */
typedef struct {
  RowFn *row;          /* inner == 1 */
  ColsFn *cols;        /* inner > 1 */
  CombineFn *combine;  /* partials of consecutive chunks */
  FinishFn *finish;    /* accumulated values -> output */
} Kernels;

static Kernels pick_kernels(const Job *j) {
  int d = j->dt == MG_F32 ? 0 : j->dt == MG_F64 ? 1 : 2;
  Kernels k = {row_kernels[d][j->kop], cols_kernels[d][j->kop],
               combine_kernels[d == 2][j->kop],
               j->odt == MG_F32 ? finish_f32
               : j->odt == MG_F64 ? finish_f64 : finish_i64};
  return k;
}

/* ---- the two drivers -------------------------------------------------------
 * Both split the work into units fixed by the shape alone, never by the
 * thread count, and combine partial results in a fixed order. */

/* inner == 1: x is (outer, n), out is (outer). A row of up to MG_RED_CHUNK
 * elements is one unit; a longer row is split into chunks of MG_RED_CHUNK
 * whose partials are combined in order. */
static int run_rows(mg_Context *ctx, const Job *j, const Kernels *k) {
  int64_t outer = j->outer, n = j->n;
  size_t es = mg_dtype_size(j->dt);
  int nt = mg_threads_for(ctx, outer * n);
  if (n <= MG_RED_CHUNK) {
    if (nt > outer) nt = (int)outer;
    MG_PARALLEL_FOR(nt, for (int64_t o = 0; o < outer; o++) {
      Acc a = k->row(j->x + (size_t)(o * n) * es, n, j->mean ? j->mean[o] : 0);
      k->finish(j, o, 1, &a.v, &a.at);
    });
    return MG_OK;
  }
  int64_t per = ceil_div(n, MG_RED_CHUNK), units = outer * per;
  size_t bytes = sizeof(Acc) * (size_t)units;
  Acc *part = mg_buffer_alloc(ctx, bytes);
  if (!part) return MG_ENOMEM;
  if (nt > units) nt = (int)units;
  MG_PARALLEL_FOR(nt, for (int64_t u = 0; u < units; u++) {
    int64_t o = u / per, b = (u % per) * MG_RED_CHUNK;
    int64_t len = n - b < MG_RED_CHUNK ? n - b : MG_RED_CHUNK;
    part[u] = k->row(j->x + (size_t)(o * n + b) * es, len,
                     j->mean ? j->mean[o] : 0);
    part[u].at += b;
  });
  for (int64_t o = 0; o < outer; o++) {
    Acc *a = &part[o * per];
    for (int64_t c = 1; c < per; c++)
      k->combine(&a->v, &a->at, &a[c].v, &a[c].at, 1);
    k->finish(j, o, 1, &a->v, &a->at);
  }
  mg_buffer_free(ctx, part, bytes);
  return MG_OK;
}

/* inner > 1: x is (outer, n, inner), out is (outer, inner). A unit is a
 * block of up to MG_RED_BLOCK columns of one outer slice over a chunk of
 * rows (about MG_RED_COLS_CHUNK elements), swept row by row into a buffer
 * of accumulators. With one chunk per column block the buffer is the
 * thread's own and the unit writes its results; otherwise every unit keeps
 * its partials and a second pass combines a block's chunks in order. */
static int run_cols(mg_Context *ctx, const Job *j, const Kernels *k) {
  int64_t outer = j->outer, n = j->n, inner = j->inner;
  size_t es = mg_dtype_size(j->dt);
  int64_t bw = inner < MG_RED_BLOCK ? inner : MG_RED_BLOCK;
  int64_t nb = ceil_div(inner, bw);
  int64_t rows = MG_RED_COLS_CHUNK / bw > 0 ? MG_RED_COLS_CHUNK / bw : 1;
  int64_t nc = n > rows ? ceil_div(n, rows) : 1;
  int64_t units = outer * nb * nc;
  int nt = mg_threads_for(ctx, outer * n * inner);
  if (nt > units) nt = (int)units;
  /* Accumulators: bw values (8 bytes each), then bw positions. */
  size_t per = 2 * sizeof(double) * (size_t)bw;
  size_t bytes = per * (size_t)(nc == 1 ? nt : units);
  char *buf = mg_buffer_alloc(ctx, bytes);
  if (!buf) return MG_ENOMEM;
  MG_PARALLEL_FOR(nt, for (int64_t u = 0; u < units; u++) {
    int64_t c = u % nc, blk = (u / nc) % nb, o = u / (nc * nb);
    int64_t c0 = blk * bw, w = inner - c0 < bw ? inner - c0 : bw;
    int64_t r0 = c * rows, nr = n - r0 < rows ? n - r0 : rows;
    int64_t k0 = o * inner + c0;
    char *mine = buf + per * (size_t)(nc == 1 ? omp_get_thread_num() : u);
    int64_t *at = (int64_t *)(void *)(mine + sizeof(double) * (size_t)bw);
    k->cols(j->x + (size_t)((o * n + r0) * inner + c0) * es, nr, inner, w,
            mine, at, j->mean ? j->mean + k0 : NULL);
    if (nc == 1)
      k->finish(j, k0, w, mine, at);
    else if (j->kop == K_MAX || j->kop == K_MIN)
      for (int64_t i = 0; i < w; i++) at[i] += r0;
  });
  if (nc > 1) {
    int64_t blocks = outer * nb;
    int nt2 = mg_threads_for(ctx, blocks * nc * bw);
    if (nt2 > blocks) nt2 = (int)blocks;
    MG_PARALLEL_FOR(nt2, for (int64_t b = 0; b < blocks; b++) {
      int64_t o = b / nb, c0 = (b % nb) * bw;
      int64_t w = inner - c0 < bw ? inner - c0 : bw;
      char *first = buf + per * (size_t)(b * nc);
      int64_t *at = (int64_t *)(void *)(first + sizeof(double) * (size_t)bw);
      for (int64_t c = 1; c < nc; c++) {
        char *p = first + per * (size_t)c;
        k->combine(first, at, p,
                   (int64_t *)(void *)(p + sizeof(double) * (size_t)bw), w);
      }
      k->finish(j, o * inner + c0, w, first, at);
    });
  }
  mg_buffer_free(ctx, buf, bytes);
  return MG_OK;
}

static int run(mg_Context *ctx, const Job *j) {
  if (j->outer * j->inner == 0) return MG_OK; /* nothing to write */
  Kernels k = pick_kernels(j);
  return j->inner == 1 ? run_rows(ctx, j, &k) : run_cols(ctx, j, &k);
}

/* ---- mg_reduce ------------------------------------------------------------- */

static mg_DType result_dtype(mg_ReduceOp op, mg_DType dt) {
  switch (op) {
  case MG_RED_ARGMAX:
  case MG_RED_ARGMIN: return MG_I64;
  case MG_RED_MEAN:
  case MG_RED_VAR:
  case MG_RED_STD: return dt == MG_I64 ? MG_F32 : dt;
  default: return dt;
  }
}

static int kernel_op(mg_ReduceOp op, mg_DType dt) {
  switch (op) {
  case MG_RED_SUM: return dt == MG_I64 ? K_ISUM : K_SUM;
  case MG_RED_PROD: return dt == MG_I64 ? K_IPROD : K_PROD;
  case MG_RED_MAX:
  case MG_RED_ARGMAX: return K_MAX;
  case MG_RED_MIN:
  case MG_RED_ARGMIN: return K_MIN;
  default: return K_SUM; /* mean; var and std start with the mean */
  }
}

/* Reduces over dim (0-based; < 0 = every element). A 0-d tensor has one
 * dim of size 1 to reduce over. On success *out (and, for MAX/MIN when
 * indices is non-NULL, *indices: 1-based int64 positions along dim, or the
 * flat position when dim < 0) receive new references; on failure neither
 * is touched. Records nothing (mg_reduce, in ops_reduce.c, does). */
static int reduce_forward(mg_Context *ctx, mg_Tensor **out,
                          mg_Tensor **indices, mg_ReduceOp op, mg_Tensor *t,
                          int dim, int keepdim, double correction) {
  if ((int)op < 0 || op >= MG_NREDUCE)
    return mg_error(ctx, MG_EARG, "reduce: unknown reduction %d", (int)op);
  const char *name = reduce_names[op];
  int all = dim < 0;
  int nd = t->ndim > 0 ? t->ndim : 1;
  if (!all && dim >= nd)
    return mg_error(ctx, MG_EINDEX, "%s: dimension %d out of range for a "
                    "%d-dimensional tensor (expected 1..%d)", name, dim + 1,
                    t->ndim, nd);

  /* The (outer, n, inner) view and the result's shape. */
  int64_t outer = 1, n = 1, inner = 1, oshape[MG_MAXDIM];
  int ond = 0;
  if (all) {
    n = mg_numel(t);
    if (keepdim)
      for (ond = 0; ond < t->ndim; ond++) oshape[ond] = 1;
  } else if (t->ndim > 0) {
    for (int d = 0; d < t->ndim; d++) {
      if (d < dim) outer *= t->shape[d];
      if (d > dim) inner *= t->shape[d];
      if (d != dim || keepdim) oshape[ond++] = d == dim ? 1 : t->shape[d];
    }
    n = t->shape[dim];
  }

  int best = op == MG_RED_MAX || op == MG_RED_MIN || op == MG_RED_ARGMAX ||
             op == MG_RED_ARGMIN;
  if (best && n == 0) {
    char sb[MG_SHAPE_BUFSZ];
    if (all)
      return mg_error(ctx, MG_EARG, "%s: cannot reduce over an empty tensor "
                      "(shape %s)", name,
                      mg_shape_str(sb, sizeof sb, t->ndim, t->shape));
    return mg_error(ctx, MG_EARG, "%s: cannot reduce over an empty dimension "
                    "(size 0): dimension %d of shape %s", name, dim + 1,
                    mg_shape_str(sb, sizeof sb, t->ndim, t->shape));
  }

  int want_idx = indices && (op == MG_RED_MAX || op == MG_RED_MIN);
  mg_DType odt = result_dtype(op, t->dtype);
  mg_Tensor *r = NULL, *ix = NULL, *c = NULL, *mean = NULL;
  int st;
  if ((st = mg_alloc_tensor(ctx, &r, odt, ond, oshape)) ||
      (want_idx && (st = mg_alloc_tensor(ctx, &ix, MG_I64, ond, oshape))) ||
      (st = mg_contiguous_data(ctx, &c, t)))
    goto fail;

  Job j = {op, kernel_op(op, t->dtype), t->dtype, mg_data(c), outer, n,
           inner, NULL, correction, odt, mg_data(r),
           ix ? (int64_t *)mg_data(ix) : NULL};
  if (op == MG_RED_VAR || op == MG_RED_STD) {
    /* Pass one: the means, in double whatever the data's dtype. */
    int64_t m = outer * inner;
    if ((st = mg_alloc_tensor(ctx, &mean, MG_F64, 1, &m))) goto fail;
    Job jm = j;
    jm.op = MG_RED_MEAN;
    jm.odt = MG_F64;
    jm.out = mg_data(mean);
    if ((st = run(ctx, &jm))) goto fail;
    j.kop = K_SQDEV;
    j.mean = mg_data(mean);
  }
  if ((st = run(ctx, &j))) goto fail;

  mg_tensor_decref(c);
  mg_tensor_decref(mean);
  *out = r;
  if (want_idx) *indices = ix;
  return MG_OK;
fail:
  mg_tensor_decref(r);
  mg_tensor_decref(ix);
  mg_tensor_decref(c);
  mg_tensor_decref(mean);
  return st;
}

int mg_reduce_data(mg_Context *ctx, mg_Tensor **out, mg_Tensor **indices,
                   mg_ReduceOp op, mg_Tensor *t, int dim, int keepdim,
                   double correction) {
  int mode = mg_set_grad_enabled(ctx, 0);
  int st = reduce_forward(ctx, out, indices, op, t, dim, keepdim, correction);
  mg_set_grad_enabled(ctx, mode);
  return st;
}
