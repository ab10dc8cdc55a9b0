/*
 * conv_dnnl.c — float32 conv2d forward, backward-data and backward-weights
 * through oneDNN (Debian's libdnnl, C API), the way PyTorch's ideep does:
 * the primitives choose their own blocked memory formats
 * (dnnl_format_tag_any, which picks the JIT kernels; plain NCHW picks a
 * slow gemm path), and reorders move moongrad's contiguous NCHW / OIHW
 * tensors in and out of them.
 *
 * Per context, on its oneDNN state (mg_dnnl.h: the engine and stream
 * gemm_dnnl.c uses too), a small LRU table of geometries,
 * each holding its three convolution primitive descriptors (made once:
 * creating one is not free) and the primitives and reorders made on first
 * use. A geometry oneDNN refuses is remembered as refused, so that the
 * caller's own path takes it without asking again.
 *
 * Every buffer oneDNN works in (the reordered operands, the scratchpad:
 * dnnl_scratchpad_mode_user) is a tensor from moongrad's allocator, so the
 * memory limit and the statistics see it. oneDNN's OpenMP runtime is
 * moongrad's libgomp: the thread count is set to the context's around
 * descriptor creation (the kernels' work split is fixed then) and each
 * execute, and restored after.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "mg_conv_dnnl.h"
#include "mg_dnnl.h"

/* Reorders a geometry may need, by role: into the forward, backward-data
 * and backward-weights primitives' formats and back out to plain ones. */
enum {
  RO_F_SRC, RO_F_WEI, RO_F_DST,   /* forward: x, w in; y out */
  RO_D_DDST, RO_D_WEI, RO_D_DSRC, /* backward data: g, w in; gx out */
  RO_W_SRC, RO_W_DDST, RO_W_DWEI, /* backward weights: x, g in; gw out */
  RO_COUNT
};

enum { P_FWD, P_BWD_DATA, P_BWD_WEIGHTS, P_COUNT };

/* The reorder slot's offset for plain data laid out channels last. */
#define CL(cl) ((cl) ? RO_COUNT : 0)

typedef struct {
  mg_ConvShape s;   /* the geometry */
  int64_t bias;     /* with a bias (forward) and its gradient (backward) */
  int64_t nthreads; /* the thread count the descriptors were made for */
  int64_t cl;       /* activations channels last: the primitives use them so */
} Key;

typedef struct {
  Key key;
  uint64_t used;                       /* LRU stamp; 0: empty slot */
  dnnl_primitive_desc_t pd[P_COUNT];   /* NULL: oneDNN refused this one */
  dnnl_primitive_t prim[P_COUNT];      /* made on first use */
  /* Reorders by role, for plain NCHW data and for channels-last data
   * (RO_COUNT + role), which oneDNN may still want in another format. */
  dnnl_primitive_desc_t ro_pd[2 * RO_COUNT];
  dnnl_primitive_t ro[2 * RO_COUNT];
} Entry;

/* Geometries kept: a ResNet has a handful; a spec may walk through many. */
#define DNNL_CACHE 24

/* conv2d's cache on the context's oneDNN state (mg_dnnl.h). */
typedef struct {
  struct mg_DnnlState *base; /* the state it hangs on: engine and stream */
  uint64_t clock;      /* LRU stamps */
  int64_t runs[P_COUNT];
  Entry e[DNNL_CACHE];
} Cache;

int mg_conv_dnnl_usable(const mg_Context *ctx, mg_DType dt) {
  return dt == MG_F32 && !ctx->deterministic && !ctx->reference_kernels;
}

void mg_conv_dnnl_runs(const mg_Context *ctx, int64_t runs[3]) {
  const Cache *C = ctx->dnnl ? ctx->dnnl->cache[MG_DNNL_CONV] : NULL;
  for (int k = 0; k < P_COUNT; k++) runs[k] = C ? C->runs[k] : 0;
}

static void entry_clear(Entry *e) {
  mg_dnnl_lock();
  for (int k = 0; k < P_COUNT; k++) {
    if (e->prim[k]) dnnl_primitive_destroy(e->prim[k]);
    if (e->pd[k]) dnnl_primitive_desc_destroy(e->pd[k]);
  }
  for (int k = 0; k < 2 * RO_COUNT; k++) {
    if (e->ro[k]) dnnl_primitive_destroy(e->ro[k]);
    if (e->ro_pd[k]) dnnl_primitive_desc_destroy(e->ro_pd[k]);
  }
  mg_dnnl_unlock();
  memset(e, 0, sizeof *e);
}

static void cache_release(void *c) {
  Cache *C = c;
  for (int i = 0; i < DNNL_CACHE; i++) entry_clear(&C->e[i]);
  free(C);
}

/* conv2d's cache, made on first use; NULL when oneDNN is unavailable. */
static Cache *cache_of(mg_Context *ctx) {
  Cache *C = mg_dnnl_cache(ctx, MG_DNNL_CONV, sizeof *C, cache_release);
  if (C) C->base = ctx->dnnl;
  return C;
}

/* ---- descriptors ------------------------------------------------------------ */

static void dims4(dnnl_dims_t d, int64_t a, int64_t b, int64_t c, int64_t e) {
  d[0] = a, d[1] = b, d[2] = c, d[3] = e;
}

/* The memory descriptors of x, w, y and b, plain (moongrad's layout: x
 * and y NCHW or channels last, as src_cl and dst_cl say) or with format
 * any (the primitive's choice). */
typedef struct {
  dnnl_memory_desc_t src, wei, dst, bias;
  int src_cl, dst_cl; /* the plain x and y are channels last */
} Mds;

static dnnl_status_t make_mds(const mg_ConvShape *s, int any, int src_cl, int dst_cl,
                              Mds *m) {
  m->src_cl = src_cl, m->dst_cl = dst_cl;
  dnnl_dims_t sd, dd, wd, bd = {s->O};
  dims4(sd, s->N, s->C, s->H, s->W);
  dims4(dd, s->N, s->O, s->Ho, s->Wo);
  int wn = s->G > 1 ? 5 : 4;
  if (s->G > 1) {
    wd[0] = s->G, wd[1] = s->O / s->G, wd[2] = s->C / s->G;
    wd[3] = s->kH, wd[4] = s->kW;
  } else {
    dims4(wd, s->O, s->C, s->kH, s->kW);
  }
  /* With any, a channels-last src_cl asks for channels last: PyTorch's
   * choice, and oneDNN's own for ResNet-sized convs on AVX-512. */
  dnnl_format_tag_t sa = src_cl ? dnnl_nhwc : any ? dnnl_format_tag_any : dnnl_nchw;
  dnnl_format_tag_t da = dst_cl ? dnnl_nhwc : any ? dnnl_format_tag_any : dnnl_nchw;
  dnnl_format_tag_t wt = any ? dnnl_format_tag_any : s->G > 1 ? dnnl_goihw : dnnl_oihw;
  dnnl_status_t st;
  if ((st = dnnl_memory_desc_init_by_tag(&m->src, 4, sd, dnnl_f32, sa)) ||
      (st = dnnl_memory_desc_init_by_tag(&m->dst, 4, dd, dnnl_f32, da)) ||
      (st = dnnl_memory_desc_init_by_tag(&m->wei, wn, wd, dnnl_f32, wt)))
    return st;
  return dnnl_memory_desc_init_by_tag(&m->bias, 1, bd, dnnl_f32, dnnl_a);
}

/* The three convolution descriptors of e's geometry, each NULL where
 * oneDNN refuses it; with the user scratchpad, so that the scratchpad is
 * a moongrad buffer. */
static void make_pds(Cache *S, Entry *e) {
  const mg_ConvShape *s = &e->key.s;
  Mds m;
  int cl = (int)e->key.cl;
  if (make_mds(s, 1, cl, cl, &m)) return;
  /* oneDNN counts dilation from 0 and wants the padding after spelled out:
   * what makes the output size exact (PyTorch's floor may drop some). */
  dnnl_dims_t st = {s->sh, s->sw}, dil = {s->dh - 1, s->dw - 1};
  dnnl_dims_t pl = {s->ph, s->pw};
  dnnl_dims_t pr = {(s->Ho - 1) * s->sh + s->dh * (s->kH - 1) + 1 - s->H - s->ph,
                    (s->Wo - 1) * s->sw + s->dw * (s->kW - 1) + 1 - s->W - s->pw};
  const dnnl_memory_desc_t *bias = e->key.bias ? &m.bias : NULL;
  dnnl_primitive_attr_t attr;
  if (dnnl_primitive_attr_create(&attr)) return;
  dnnl_convolution_desc_t fd, bd, wd;
  if (!dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) &&
      !dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training,
          dnnl_convolution_direct, &m.src, &m.wei, bias, &m.dst, st, dil, pl, pr) &&
      dnnl_primitive_desc_create(&e->pd[P_FWD], &fd, attr, S->base->eng, NULL) == dnnl_success) {
    if (dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct,
            &m.src, &m.wei, &m.dst, st, dil, pl, pr) ||
        dnnl_primitive_desc_create(&e->pd[P_BWD_DATA], &bd, attr, S->base->eng,
                                   e->pd[P_FWD]))
      e->pd[P_BWD_DATA] = NULL;
    if (dnnl_dilated_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct,
            &m.src, &m.wei, bias, &m.dst, st, dil, pl, pr) ||
        dnnl_primitive_desc_create(&e->pd[P_BWD_WEIGHTS], &wd, attr, S->base->eng,
                                   e->pd[P_FWD]))
      e->pd[P_BWD_WEIGHTS] = NULL;
  } else {
    e->pd[P_FWD] = NULL;
  }
  dnnl_primitive_attr_destroy(attr);
}

/* The entry of this geometry, made (descriptors and all) when missing,
 * the least recently used one giving way. */
static Entry *lookup(Cache *S, const Key *k) {
  Entry *victim = &S->e[0];
  for (int i = 0; i < DNNL_CACHE; i++) {
    Entry *e = &S->e[i];
    if (e->used && memcmp(&e->key, k, sizeof *k) == 0) {
      e->used = ++S->clock;
      return e;
    }
    if (e->used < victim->used) victim = e;
  }
  entry_clear(victim);
  victim->key = *k;
  victim->used = ++S->clock;
  int was = mg_dnnl_threads_begin((int)k->nthreads);
  mg_dnnl_lock();
  make_pds(S, victim);
  mg_dnnl_unlock();
  mg_dnnl_threads_end(was);
  return victim;
}

/* The entry for s with the thread count this work gets, or NULL when
 * oneDNN is unavailable. */
static Entry *entry_for(mg_Context *ctx, const mg_ConvShape *s, int bias, int cl) {
  Cache *S = cache_of(ctx);
  if (!S) return NULL;
  Key k;
  memset(&k, 0, sizeof k);
  k.s = *s;
  k.bias = bias;
  k.cl = cl;
  double macs = (double)s->N * (double)s->O * (double)(s->C / s->G) *
                (double)s->kH * (double)s->kW * (double)s->Ho * (double)s->Wo;
  k.nthreads = omp_in_parallel() ? 1
               : mg_threads_for(ctx, macs < 0x1p62 ? (int64_t)macs : INT64_MAX);
  return lookup(S, &k);
}

/* ---- running ---------------------------------------------------------------- */

/* The failure message: conv2d, the direction and the shapes. */
static int fail(mg_Context *ctx, const mg_ConvShape *s, const char *what,
                dnnl_status_t st) {
  return mg_error(ctx, st == dnnl_out_of_memory ? MG_ENOMEM : MG_EARG,
                  "conv2d: oneDNN's %s failed (status %d) on input of shape "
                  "[%lld,%lld,%lld,%lld] with weight of shape [%lld,%lld,%lld,%lld]"
                  ", stride {%lld, %lld}, padding {%lld, %lld}, dilation "
                  "{%lld, %lld}, groups %lld", what, (int)st, (long long)s->N,
                  (long long)s->C, (long long)s->H, (long long)s->W,
                  (long long)s->O, (long long)(s->C / s->G), (long long)s->kH,
                  (long long)s->kW, (long long)s->sh, (long long)s->sw,
                  (long long)s->ph, (long long)s->pw, (long long)s->dh,
                  (long long)s->dw, (long long)s->G);
}

/* One operand of a call: its memory in the primitive's format, over the
 * caller's tensor when the formats agree, else over a buffer. */
typedef struct {
  dnnl_memory_t mem;
  mg_Tensor *buf; /* the buffer, or NULL */
} Arg;

static void arg_free(Arg *a) {
  if (a->mem) dnnl_memory_destroy(a->mem);
  mg_tensor_decref(a->buf);
  a->mem = NULL;
  a->buf = NULL;
}

static int run(mg_Context *ctx, Cache *S, dnnl_primitive_desc_t pd,
               dnnl_primitive_t p, int nargs, dnnl_exec_arg_t *args,
               dnnl_status_t *dst) {
  return mg_dnnl_run(ctx, S->base, pd, p, nargs, args, dst);
}

/* Reorders memory `from` into memory `to` through e's reorder of role r
 * (made on first use). */
static int reorder(mg_Context *ctx, Cache *S, Entry *e, int r,
                   dnnl_memory_t from, dnnl_memory_t to, dnnl_status_t *dst) {
  if (!e->ro[r]) {
    const dnnl_memory_desc_t *fm, *tm;
    dnnl_primitive_attr_t attr;
    if ((*dst = dnnl_memory_get_memory_desc(from, &fm)) ||
        (*dst = dnnl_memory_get_memory_desc(to, &tm)) ||
        (*dst = dnnl_primitive_attr_create(&attr)))
      return MG_EARG;
    mg_dnnl_lock();
    *dst = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (!*dst) *dst = dnnl_reorder_primitive_desc_create(&e->ro_pd[r], fm, S->base->eng, tm, S->base->eng, attr);
    dnnl_primitive_attr_destroy(attr);
    if (*dst) e->ro_pd[r] = NULL;
    else if ((*dst = dnnl_primitive_create(&e->ro[r], e->ro_pd[r]))) e->ro[r] = NULL;
    mg_dnnl_unlock();
    if (*dst) return MG_EARG;
  }
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  return run(ctx, S, e->ro_pd[r], e->ro[r], 2, args, dst);
}

/* a = the operand of format want over plain data (md plain): the data
 * itself when the formats agree; else a buffer, into which the data is
 * reordered when in is set (an input), or which the caller reorders out
 * with finish_out (an output). */
static int arg_make(mg_Context *ctx, Cache *S, Entry *e, int r,
                    const dnnl_memory_desc_t *plain, void *data,
                    const dnnl_memory_desc_t *want, int in, Arg *a,
                    dnnl_status_t *dst) {
  int st;
  if (dnnl_memory_desc_equal(plain, want))
    return (*dst = dnnl_memory_create(&a->mem, plain, S->base->eng, data)) ? MG_EARG : MG_OK;
  if ((st = mg_dnnl_buffer(ctx, &a->buf, dnnl_memory_desc_get_size(want)))) return st;
  if ((*dst = dnnl_memory_create(&a->mem, want, S->base->eng, mg_data(a->buf)))) return MG_EARG;
  if (!in) return MG_OK;
  Arg user = {0};
  if ((*dst = dnnl_memory_create(&user.mem, plain, S->base->eng, data))) return MG_EARG;
  st = reorder(ctx, S, e, r, user.mem, a->mem, dst);
  arg_free(&user);
  return st;
}

/* The output a made by arg_make, reordered into the plain data when it
 * went to a buffer. */
static int finish_out(mg_Context *ctx, Cache *S, Entry *e, int r,
                      const dnnl_memory_desc_t *plain, void *data, Arg *a,
                      dnnl_status_t *dst) {
  if (!a->buf) return MG_OK;
  Arg user = {0};
  if ((*dst = dnnl_memory_create(&user.mem, plain, S->base->eng, data))) return MG_EARG;
  int st = reorder(ctx, S, e, r, a->mem, user.mem, dst);
  arg_free(&user);
  return st;
}

static const dnnl_memory_desc_t *md_of(Entry *e, int p, dnnl_query_t q) {
  return dnnl_primitive_desc_query_md(e->pd[p], q, 0);
}

/* The primitive p of e, made on first use. */
static dnnl_status_t prim(Entry *e, int p) {
  if (e->prim[p]) return dnnl_success;
  mg_dnnl_lock();
  dnnl_status_t st = dnnl_primitive_create(&e->prim[p], e->pd[p]);
  mg_dnnl_unlock();
  if (st) e->prim[p] = NULL;
  return st;
}

/* The status of a run of the calls above: a oneDNN failure (dst) gets
 * its message here; an allocation failure (st alone) has its own. */
static int result(mg_Context *ctx, const mg_ConvShape *s, const char *what,
                  int st, dnnl_status_t dst) {
  return dst ? fail(ctx, s, what, dst) : st;
}

int mg_conv_dnnl_forward(mg_Context *ctx, const mg_ConvShape *s, mg_Tensor *x,
                         mg_Tensor *w, mg_Tensor *b, mg_Tensor *y, int *took) {
  *took = 0;
  Entry *e = entry_for(ctx, s, b != NULL, mg_is_channels_last(x) && !mg_is_contiguous(x));
  if (!e || !e->pd[P_FWD]) return MG_OK;
  Cache *S = ctx->dnnl->cache[MG_DNNL_CONV];
  Mds m;
  Arg ax = {0}, aw = {0}, ay = {0}, ab = {0};
  dnnl_status_t dst = dnnl_success;
  int was = mg_dnnl_threads_begin((int)e->key.nthreads), st = MG_OK;
  if ((dst = make_mds(s, 0, mg_is_channels_last(x), mg_is_channels_last(y), &m)) ||
      (dst = prim(e, P_FWD)) ||
      (st = arg_make(ctx, S, e, RO_F_SRC + CL(m.src_cl), &m.src, mg_data(x),
                     md_of(e, P_FWD, dnnl_query_src_md), 1, &ax, &dst)) ||
      (st = arg_make(ctx, S, e, RO_F_WEI, &m.wei, mg_data(w),
                     md_of(e, P_FWD, dnnl_query_weights_md), 1, &aw, &dst)) ||
      (st = arg_make(ctx, S, e, RO_F_DST + CL(m.dst_cl), &m.dst, mg_data(y),
                     md_of(e, P_FWD, dnnl_query_dst_md), 0, &ay, &dst)) ||
      (b && (dst = dnnl_memory_create(&ab.mem, &m.bias, S->base->eng, mg_data(b)))))
    goto out;
  dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ax.mem}, {DNNL_ARG_WEIGHTS, aw.mem},
                             {DNNL_ARG_DST, ay.mem}, {DNNL_ARG_BIAS, ab.mem}};
  if ((st = run(ctx, S, e->pd[P_FWD], e->prim[P_FWD], b ? 4 : 3, args, &dst)) ||
      (st = finish_out(ctx, S, e, RO_F_DST + CL(m.dst_cl), &m.dst, mg_data(y), &ay, &dst)))
    goto out;
  S->runs[P_FWD]++;
  *took = 1;
out:
  mg_dnnl_threads_end(was);
  arg_free(&ax);
  arg_free(&aw);
  arg_free(&ay);
  arg_free(&ab);
  return result(ctx, s, "forward", st, dst);
}

/* The input gradient into gx (allocated here); ag receives g in the
 * primitive's format (the caller frees it), which the weight gradient
 * reuses when its format is the same. */
static int bwd_data(mg_Context *ctx, Entry *e, const Mds *m, mg_Tensor *x, mg_Tensor *w,
                    mg_Tensor *g, mg_Tensor **gx, Arg *ag_out, dnnl_status_t *dst) {
  Cache *S = ctx->dnnl->cache[MG_DNNL_CONV];
  const mg_ConvShape *s = &e->key.s;
  int64_t shape[4] = {s->N, s->C, s->H, s->W};
  Arg ag = {0}, aw = {0}, ax = {0};
  int st;
  /* Laid out as x (m->src_cl says so). */
  if ((st = mg_alloc_layout(ctx, gx, MG_F32, 4, shape, m->src_cl))) return st;
  if ((*dst = prim(e, P_BWD_DATA)) ||
      (st = arg_make(ctx, S, e, RO_D_DDST + CL(m->dst_cl), &m->dst, mg_data(g),
                     md_of(e, P_BWD_DATA, dnnl_query_diff_dst_md), 1, &ag, dst)) ||
      (st = arg_make(ctx, S, e, RO_D_WEI, &m->wei, mg_data(w),
                     md_of(e, P_BWD_DATA, dnnl_query_weights_md), 1, &aw, dst)) ||
      (st = arg_make(ctx, S, e, RO_D_DSRC + CL(m->src_cl), &m->src, mg_data(*gx),
                     md_of(e, P_BWD_DATA, dnnl_query_diff_src_md), 0, &ax, dst)))
    goto out;
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, ag.mem}, {DNNL_ARG_WEIGHTS, aw.mem},
                             {DNNL_ARG_DIFF_SRC, ax.mem}};
  if ((st = run(ctx, S, e->pd[P_BWD_DATA], e->prim[P_BWD_DATA], 3, args, dst)) ||
      (st = finish_out(ctx, S, e, RO_D_DSRC + CL(m->src_cl), &m->src, mg_data(*gx), &ax, dst)))
    goto out;
  S->runs[P_BWD_DATA]++;
  *ag_out = ag;
  ag = (Arg){0};
out:
  arg_free(&ag);
  arg_free(&aw);
  arg_free(&ax);
  return st ? st : *dst ? MG_EARG : MG_OK;
}

/* The weight gradient into gw and, with a bias, the bias gradient into gb
 * (both allocated here); g0 is g as bwd_data reordered it, or empty. */
static int bwd_weights(mg_Context *ctx, Entry *e, const Mds *m, mg_Tensor *x,
                       mg_Tensor *g, const Arg *g0, mg_Tensor **gw, mg_Tensor **gb,
                       dnnl_status_t *dst) {
  Cache *S = ctx->dnnl->cache[MG_DNNL_CONV];
  const mg_ConvShape *s = &e->key.s;
  int64_t shape[4] = {s->O, s->C / s->G, s->kH, s->kW};
  Arg ax = {0}, ag = {0}, aw = {0}, ab = {0};
  int st;
  if ((st = mg_alloc_tensor(ctx, gw, MG_F32, 4, shape)) ||
      (e->key.bias && (st = mg_alloc_tensor(ctx, gb, MG_F32, 1, &s->O))))
    return st;
  const dnnl_memory_desc_t *gmd = md_of(e, P_BWD_WEIGHTS, dnnl_query_diff_dst_md), *had;
  int reuse = g0->mem && !dnnl_memory_get_memory_desc(g0->mem, &had) &&
              dnnl_memory_desc_equal(had, gmd);
  if ((*dst = prim(e, P_BWD_WEIGHTS)) ||
      (st = arg_make(ctx, S, e, RO_W_SRC + CL(m->src_cl), &m->src, mg_data(x),
                     md_of(e, P_BWD_WEIGHTS, dnnl_query_src_md), 1, &ax, dst)) ||
      (!reuse && (st = arg_make(ctx, S, e, RO_W_DDST + CL(m->dst_cl), &m->dst, mg_data(g), gmd, 1,
                                &ag, dst))) ||
      (st = arg_make(ctx, S, e, RO_W_DWEI, &m->wei, mg_data(*gw),
                     md_of(e, P_BWD_WEIGHTS, dnnl_query_diff_weights_md), 0, &aw, dst)) ||
      (e->key.bias && (*dst = dnnl_memory_create(&ab.mem, &m->bias, S->base->eng, mg_data(*gb)))))
    goto out;
  dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ax.mem},
                             {DNNL_ARG_DIFF_DST, reuse ? g0->mem : ag.mem},
                             {DNNL_ARG_DIFF_WEIGHTS, aw.mem}, {DNNL_ARG_DIFF_BIAS, ab.mem}};
  if ((st = run(ctx, S, e->pd[P_BWD_WEIGHTS], e->prim[P_BWD_WEIGHTS],
                e->key.bias ? 4 : 3, args, dst)) ||
      (st = finish_out(ctx, S, e, RO_W_DWEI, &m->wei, mg_data(*gw), &aw, dst)))
    goto out;
  S->runs[P_BWD_WEIGHTS]++;
out:
  arg_free(&ax);
  arg_free(&ag);
  arg_free(&aw);
  arg_free(&ab);
  return st ? st : *dst ? MG_EARG : MG_OK;
}

int mg_conv_dnnl_backward(mg_Context *ctx, const mg_ConvShape *s, int has_bias,
                          mg_Tensor *x, mg_Tensor *w, mg_Tensor *g,
                          mg_Tensor **gx, mg_Tensor **gw, mg_Tensor **gb,
                          int *took) {
  *took = 0;
  Entry *e = entry_for(ctx, s, has_bias, mg_is_channels_last(x) && !mg_is_contiguous(x));
  int want_w = gw || (gb && has_bias);
  if (!e || !e->pd[P_FWD] || (gx && !e->pd[P_BWD_DATA]) ||
      (want_w && !e->pd[P_BWD_WEIGHTS]))
    return MG_OK;
  Mds m;
  Arg ag = {0};
  mg_Tensor *tx = NULL, *tw = NULL, *tb = NULL;
  dnnl_status_t dst = dnnl_success;
  const char *what = "backward data";
  int was = mg_dnnl_threads_begin((int)e->key.nthreads), st = MG_OK;
  if ((dst = make_mds(s, 0, mg_is_channels_last(x), mg_is_channels_last(g), &m)) ||
      (gx && (st = bwd_data(ctx, e, &m, x, w, g, &tx, &ag, &dst))))
    goto out;
  what = "backward weights";
  if (want_w && (st = bwd_weights(ctx, e, &m, x, g, &ag, &tw, &tb, &dst))) goto out;
  if (gx) *gx = tx, tx = NULL;
  if (gw) *gw = tw, tw = NULL;
  if (gb) *gb = tb, tb = NULL;
  *took = 1;
out:
  mg_dnnl_threads_end(was);
  arg_free(&ag);
  mg_tensor_decref(tx);
  mg_tensor_decref(tw);
  mg_tensor_decref(tb);
  return result(ctx, s, what, st, dst);
}
