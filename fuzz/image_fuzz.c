/*
 * image_fuzz.c — libFuzzer harness for the PNG and JPEG decoders
 * (mg_image_decode, mg_image_load, mg_image_info).
 *
 * Byte 0 chooses what runs (low 2 bits: the mode, auto, L, RGB or RGBA;
 * bit 2: through a file, mg_image_load on the memfd, rather than from
 * memory; bit 3: the header only, mg_image_info); the rest is the image.
 * A decode must fail with a message and no tensor, or give a contiguous
 * uint8 [C, H, W] tensor with C as the mode says, within the pixel limit,
 * every byte of which can be read; nothing stays charged to the memory
 * limit afterwards. The limit is 2^20 pixels (the context's 32 MB budget
 * then never decides), so that a header may ask for a large image without
 * each input taking seconds.
 */
#include "fuzz_file.h" /* first: it defines _GNU_SOURCE */

#include "mg_image.h"

#define MAX_PIXELS (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  mg_Context *ctx = fuzz_context();
  mg_ImageOptions o = {(mg_ImageMode)(data[0] & 3), MAX_PIXELS};
  mg_MemoryStats before, after;
  mg_memory_stats(ctx, &before);
  if (data[0] & 8) {
    mg_ImageInfo info;
    if (mg_image_info(ctx, &info, "fuzz", fuzz_file(data + 1, size - 1)) == MG_OK &&
        (info.width < 1 || info.height < 1 || info.channels < 1 || info.channels > 4))
      abort();
    return 0;
  }
  mg_Tensor *t = NULL;
  int st = data[0] & 4
               ? mg_image_load(ctx, &t, "fuzz", fuzz_file(data + 1, size - 1), &o)
               : mg_image_decode(ctx, &t, "fuzz", "<bytes>", data + 1, size - 1, &o);
  if (st == MG_OK) {
    static const int mode_c[4] = {0, 1, 3, 4};
    if (!t || t->dtype != MG_U8 || t->ndim != 3 || !mg_is_contiguous(t) ||
        t->shape[1] * t->shape[2] > MAX_PIXELS || t->shape[0] < 1 || t->shape[0] > 4 ||
        (o.mode && t->shape[0] != mode_c[o.mode]))
      abort();
    volatile unsigned sink = 0;
    const uint8_t *p = mg_data(t);
    for (int64_t k = 0, n = mg_numel(t); k < n; k++) sink += p[k];
    (void)sink;
  } else if (t) {
    abort(); /* "leaves *out untouched" */
  }
  mg_tensor_decref(t);
  mg_empty_cache(ctx);
  mg_memory_stats(ctx, &after);
  if (after.live_bytes != before.live_bytes) abort(); /* a charge not given back */
  return 0;
}
