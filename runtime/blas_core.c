/*
 * blas_core.c — which of OpenBLAS's kernel sets runs, and the one to ask
 * for when OpenBLAS did not recognise the CPU.
 *
 * Debian's OpenBLAS is built with DYNAMIC_ARCH: when the library loads it
 * picks a kernel set by the CPU's family and model, and a model newer than
 * the library (an Emerald Rapids Xeon under 0.3.21, say) falls back to
 * Prescott's SSE3 kernels even when the CPU has AVX2 or AVX-512: sgemm then
 * runs several times slower. The choice is made once, in a constructor,
 * from the environment variable OPENBLAS_CORETYPE; so the moongrad
 * executable, which starts before any script, sets it and executes itself
 * again (main.c). A host program can do the same, or set the variable.
 */
#include <string.h>
#include <strings.h>

#include "mg_core.h"

char *openblas_get_corename(void);

const char *mg_blas_core(void) { return openblas_get_corename(); }

/* OpenBLAS's fallback sets: the ones it takes for a CPU it does not know. */
static int is_fallback(const char *core) {
  static const char *const fallback[] = {"prescott", "core2", "nehalem", "unknown"};
  for (size_t i = 0; i < sizeof fallback / sizeof *fallback; i++)
    if (core && !strcasecmp(core, fallback[i])) return 1;
  return 0;
}

const char *mg_blas_core_for_cpu(void) {
  if (!is_fallback(mg_blas_core())) return NULL;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  /* libgcc answers from CPUID and the OS's saved-state mask (XGETBV), so a
   * feature the kernel does not save across switches reads as absent. */
  int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (avx512 && __builtin_cpu_supports("avx512bf16")) return "Cooperlake";
  if (avx512) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return NULL;
}
