/*
 * safetensors_fuzz.c — libFuzzer harness for mg_safetensors_load.
 *
 * The input is the whole file: 8-byte header length, JSON header, data.
 * A load must either fail with a message or return tensors whose every
 * element can be read (ASan checks each read against the buffer the
 * loader allocated, so a span shorter than its shape says is a finding).
 */
#include "fuzz_file.h" /* first: it defines _GNU_SOURCE */

#include <string.h>
#include "mg_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mg_SafeTensors st;
  memset(&st, 0, sizeof st);
  if (mg_safetensors_load(fuzz_context(), &st, fuzz_file(data, size)) == MG_OK) {
    volatile double sink = 0;
    for (int i = 0; i < st.n; i++) {
      if (!st.names[i] || !st.tensors[i]) abort(); /* the contract says both */
      int64_t n = mg_numel(st.tensors[i]);
      for (int64_t k = 0; k < n; k++) sink += mg_read(st.tensors[i], k);
    }
    for (int i = 0; i < st.nmeta; i++)
      sink += (double)(strlen(st.meta_keys[i]) + strlen(st.meta_values[i]));
    (void)sink;
  } else if (st.n || st.nmeta || st.names || st.tensors) {
    abort(); /* "on failure *out is empty" */
  }
  mg_safetensors_free(&st);
  mg_empty_cache(fuzz_context());
  return 0;
}
