/*
 * philox.c — the generator: Philox4x32-10 blocks and each state's stream
 * (seed, offset, stream). No tensors here: context creation seeds through
 * it, and rng.c fills tensors from it.
 */
#include "mg_internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void mg_philox(uint32_t out[4], uint64_t key, uint64_t ctr_lo,
               uint64_t ctr_hi) {
  uint32_t c0 = (uint32_t)ctr_lo, c1 = (uint32_t)(ctr_lo >> 32);
  uint32_t c2 = (uint32_t)ctr_hi, c3 = (uint32_t)(ctr_hi >> 32);
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void mg_manual_seed(mg_Context *ctx, uint64_t seed) {
  ctx->rng.seed = seed;
  ctx->rng.offset = 0;
  ctx->rng.stream = 0;
}

mg_RngState mg_get_rng_state(const mg_Context *ctx) { return ctx->rng; }
void mg_set_rng_state(mg_Context *ctx, mg_RngState st) { ctx->rng = st; }

double mg_rng_uniform(mg_Context *ctx) {
  uint32_t r[4];
  mg_philox(r, ctx->rng.seed, ctx->rng.offset++, ctx->rng.stream);
  return mg_u53(r[0], r[1]);
}
