/*
 * csv_fuzz.c — libFuzzer harness for mg_read_csv.
 *
 * Byte 0 chooses the options (low 2 bits: header -1 (guess), 0, 1, -1;
 * bits 2-3: delimiter ',', ';', tab or space; bit 4: float64 instead of
 * float32); the rest is the file. A successful read must give a [rows,
 * cols] tensor and, with a header, cols readable names.
 *
 * The memory limit is 1 MiB here (32 MiB in the other harnesses), far
 * above what an input of a few KB of text needs: a gzip bomb in the
 * corpus, and every input the fuzzer derives from one, then stops after
 * inflating a few hundred KB instead of 32 MiB, which had cut the rate from
 * thousands of inputs a second to about a hundred.
 */
#include "fuzz_file.h" /* first: it defines _GNU_SOURCE */

#include <string.h>
#include "mg_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const int headers[4] = {-1, 0, 1, -1};
  static const char delims[4] = {',', ';', '\t', ' '};
  mg_CsvOptions o = {.header = headers[data[0] & 3],
                     .delimiter = delims[(data[0] >> 2) & 3],
                     .dtype = (data[0] & 16) ? MG_F64 : MG_F32};
  mg_Tensor *x = NULL;
  char **names = NULL;
  int64_t ncols = -1;
  mg_set_memory_limit(fuzz_context(), 1u << 20);
  if (mg_read_csv(fuzz_context(), &x, &names, &ncols, fuzz_file(data + 1, size - 1),
                  &o) == MG_OK) {
    if (!x || x->ndim != 2 || ncols < 0 || x->shape[1] != ncols) abort();
    volatile double sink = 0;
    int64_t n = mg_numel(x);
    for (int64_t k = 0; k < n; k++) sink += mg_read(x, k);
    for (int64_t c = 0; names && c < ncols; c++) sink += (double)strlen(names[c]);
    (void)sink;
  } else if (x || names) {
    abort(); /* a failed read hands nothing back */
  }
  free(names);
  mg_tensor_decref(x);
  mg_empty_cache(fuzz_context());
  return 0;
}
