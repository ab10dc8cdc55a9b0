/*
 * idx_fuzz.c — libFuzzer harness for mg_read_idx.
 *
 * Byte 0 chooses the options (low 2 bits: dtype -1 (the type's default),
 * float32, float64 or int64; bit 2: scale 1/255 instead of 1); the rest is
 * the file, plain or gzip-compressed. A successful read must give a tensor
 * whose every element can be read.
 */
#include "fuzz_file.h"
#include "mg_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const int dtypes[4] = {-1, MG_F32, MG_F64, MG_I64};
  mg_IdxOptions o = {.dtype = dtypes[data[0] & 3],
                     .scale = (data[0] & 4) ? 1.0 / 255 : 1.0};
  mg_Tensor *x = NULL;
  if (mg_read_idx(fuzz_context(), &x, fuzz_file(data + 1, size - 1), &o) == MG_OK) {
    if (!x) abort();
    volatile double sink = 0;
    int64_t n = mg_numel(x);
    for (int64_t k = 0; k < n; k++) sink += mg_read(x, k);
    (void)sink;
  } else if (x) {
    abort(); /* "nothing is read into *out unless the whole file was valid" */
  }
  mg_tensor_decref(x);
  mg_empty_cache(fuzz_context());
  return 0;
}
