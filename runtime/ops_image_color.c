/*
 * ops_image_color.c — color adjustments and grayscale (mg_image_color,
 * mg_image_grayscale; mg_imageops.h is their manual).
 *
 * torchvision 0.14 computes each adjustment as a chain of tensor ops, each
 * rounding to the image's float dtype (float32 for uint8 images, which
 * .to(torch.uint8) truncates back after every adjustment). These kernels
 * run the same operations in the same order on one pixel at a time, so
 * they agree with it to the last bit (up to the mean that contrast
 * needs, which PyTorch sums in another order): the float32 code below
 * must not be contracted into fused multiply-adds or reassociated.
 *
 * Pixels go through in chunks of a row: loaded into per-channel arrays of
 * the compute type (float, or double for float64 images), every step of
 * a pass applied to the chunk, stored. A contrast step needs the mean
 * gray of the image as the steps before it left it, so it starts a new
 * pass; the pass before it sums that gray as it stores.
 */
#pragma GCC optimize("fp-contract=off")
#include <math.h>
#include <string.h>

#include "mg_imageops.h"
#include "mg_internal.h"

#define CHUNK 256 /* pixels per chunk */

/* ---- the adjustments on float chunks (float32 and uint8 images) -----------
 * c[k] holds channel k of n pixels. uint8 images compute in float too, but
 * truncate each result, as the uint8 image torchvision converts back to:
 * their kernels are the _u8 siblings of the _f32 ones. */

static inline float clampf(float v, float hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* torchvision's rgb_to_grayscale, term by term. */
static inline float gray_f32(float r, float g, float b) {
  return 0.2989f * r + 0.587f * g + 0.114f * b;
}

/* _blend(img, img2, f) = clamp(f img + (1 - f) img2, 0, bound), where
 * the second term is the constant k (brightness: 0; contrast: (1 - f)
 * mean) or (1 - f) gray per pixel (saturation: when gray is set). */
static void blend_f32(float *v, int n, float f, float k, const float *gray, float f1) {
  for (int i = 0; i < n; i++) {
    float o = clampf(f * v[i] + (gray ? f1 * gray[i] : k), 1.0f);
    v[i] = o;
  }
}
/* u8 sibling of blend_f32 (bound 255, truncated) */
static void blend_u8(float *v, int n, float f, float k, const float *gray, float f1) {
  for (int i = 0; i < n; i++) {
    float o = clampf(f * v[i] + (gray ? f1 * gray[i] : k), 255.0f);
    v[i] = truncf(o);
  }
}

/* c ? a : b on the bits of floats: the hue loop's many selects written
 * as ternaries defeat GCC's if-conversion (the loop then runs a pixel at
 * a time, ten times slower); masks vectorise. Exactly the ternary. */
static inline uint32_t fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static inline float sel(int c, float a, float b) {
  uint32_t m = -(uint32_t)c, u = (fbits(a) & m) | (fbits(b) & ~m);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline float clamp01(float v) { return sel(v > 1.0f, 1.0f, sel(v < 0.0f, 0.0f, v)); }

/* rgb -> hsv, h += factor (mod 1), hsv -> rgb: torchvision's _rgb2hsv and
 * _hsv2rgb op by op, without branches: the sector of the hue wheel
 * (torchvision's one-hot mask) selects among p, q, t, v, and fmod(x, 1)
 * is x - trunc(x), which is exact. */
static void hue_f32(float *restrict R, float *restrict G, float *restrict B, int n,
                    float factor) {
  for (int i = 0; i < n; i++) {
    float r = R[i], g = G[i], b = B[i];
    float maxc = sel(r > g, r, g), minc = sel(r < g, r, g);
    maxc = sel(maxc > b, maxc, b), minc = sel(minc < b, minc, b);
    int eqc = maxc == minc;
    float cr = maxc - minc;
    float s = cr / sel(eqc, 1.0f, maxc);
    float crd = sel(eqc, 1.0f, cr);
    float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    float hr = sel(maxc == r, bc - gc, 0.0f);
    float hg = sel((maxc == g) & (maxc != r), 2.0f + rc - bc, 0.0f);
    float hb = sel((maxc != g) & (maxc != r), 4.0f + gc - rc, 0.0f);
    float h = (hr + hg + hb) / 6.0f + 1.0f;
    h = h - truncf(h);
    h = h + factor;
    h = h - truncf(h);
    h = sel(h < 0, h + 1.0f, h);   /* torch.remainder: the sign of 1 */
    float h6 = h * 6.0f, sector = floorf(h6), f = h6 - sector, v = maxc;
    float p = clamp01(v * (1.0f - s));
    float q = clamp01(v * (1.0f - s * f));
    float t = clamp01(v * (1.0f - s * (1.0f - f)));
    sector = sel(sector == 6.0f, 0.0f, sector);
    /* sectors 0..5: r = v q p p t v, g = t v v q p p, b = p p t v v q */
    r = sel(sector == 4.0f, t, p);
    r = sel(sector == 1.0f, q, r);
    r = sel((sector == 0.0f) | (sector == 5.0f), v, r);
    g = sel(sector == 0.0f, t, p);
    g = sel(sector == 3.0f, q, g);
    g = sel((sector == 1.0f) | (sector == 2.0f), v, g);
    b = sel(sector == 2.0f, t, p);
    b = sel(sector == 5.0f, q, b);
    b = sel((sector == 3.0f) | (sector == 4.0f), v, b);
    R[i] = r, G[i] = g, B[i] = b;
  }
}
/* u8 sibling of hue_f32 (0..255 in and out, truncated) */
static void hue_u8(float *restrict R, float *restrict G, float *restrict B, int n,
                   float factor) {
  for (int i = 0; i < n; i++) {
    float r = R[i] / 255.0f, g = G[i] / 255.0f, b = B[i] / 255.0f;
    float maxc = sel(r > g, r, g), minc = sel(r < g, r, g);
    maxc = sel(maxc > b, maxc, b), minc = sel(minc < b, minc, b);
    int eqc = maxc == minc;
    float cr = maxc - minc;
    float s = cr / sel(eqc, 1.0f, maxc);
    float crd = sel(eqc, 1.0f, cr);
    float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    float hr = sel(maxc == r, bc - gc, 0.0f);
    float hg = sel((maxc == g) & (maxc != r), 2.0f + rc - bc, 0.0f);
    float hb = sel((maxc != g) & (maxc != r), 4.0f + gc - rc, 0.0f);
    float h = (hr + hg + hb) / 6.0f + 1.0f;
    h = h - truncf(h);
    h = h + factor;
    h = h - truncf(h);
    h = sel(h < 0, h + 1.0f, h);   /* torch.remainder: the sign of 1 */
    float h6 = h * 6.0f, sector = floorf(h6), f = h6 - sector, v = maxc;
    float p = clamp01(v * (1.0f - s));
    float q = clamp01(v * (1.0f - s * f));
    float t = clamp01(v * (1.0f - s * (1.0f - f)));
    sector = sel(sector == 6.0f, 0.0f, sector);
    /* sectors 0..5: r = v q p p t v, g = t v v q p p, b = p p t v v q */
    r = sel(sector == 4.0f, t, p);
    r = sel(sector == 1.0f, q, r);
    r = sel((sector == 0.0f) | (sector == 5.0f), v, r);
    g = sel(sector == 0.0f, t, p);
    g = sel(sector == 3.0f, q, g);
    g = sel((sector == 1.0f) | (sector == 2.0f), v, g);
    b = sel(sector == 2.0f, t, p);
    b = sel(sector == 5.0f, q, b);
    b = sel((sector == 3.0f) | (sector == 4.0f), v, b);
    R[i] = truncf(r * 255.0f), G[i] = truncf(g * 255.0f), B[i] = truncf(b * 255.0f);
  }
}

/* The gray of each pixel of a 3-channel chunk. */
static void grays_f32(float *d, float *const *c, int n) {
  for (int i = 0; i < n; i++) {
    float v = gray_f32(c[0][i], c[1][i], c[2][i]);
    d[i] = v;
  }
}
/* u8 sibling of grays_f32 (truncated) */
static void grays_u8(float *d, float *const *c, int n) {
  for (int i = 0; i < n; i++) {
    float v = gray_f32(c[0][i], c[1][i], c[2][i]);
    d[i] = truncf(v);
  }
}

/* Steps [0, ns) on a chunk of C (1 or 3) channels; mean is the image's
 * mean gray for a contrast step. */
static void steps_f32(float *const *c, int C, int n, const mg_ColorStep *s,
                      int ns, float mean) {
  float gray[CHUNK];
  for (int k = 0; k < ns; k++) {
    float f = (float)s[k].factor, f1 = (float)(1.0 - s[k].factor);
    switch (s[k].kind) {
    case MG_COLOR_BRIGHTNESS:
      for (int ch = 0; ch < C; ch++) blend_f32(c[ch], n, f, 0.0f, NULL, f1);
      break;
    case MG_COLOR_CONTRAST:
      for (int ch = 0; ch < C; ch++) blend_f32(c[ch], n, f, f1 * mean, NULL, f1);
      break;
    case MG_COLOR_SATURATION:
      grays_f32(gray, c, n);
      for (int ch = 0; ch < C; ch++) blend_f32(c[ch], n, f, 0.0f, gray, f1);
      break;
    default:
      hue_f32(c[0], c[1], c[2], n, (float)s[k].factor);
      break;
    }
  }
}
/* u8 sibling of steps_f32 */
static void steps_u8(float *const *c, int C, int n, const mg_ColorStep *s,
                     int ns, float mean) {
  float gray[CHUNK];
  for (int k = 0; k < ns; k++) {
    float f = (float)s[k].factor, f1 = (float)(1.0 - s[k].factor);
    switch (s[k].kind) {
    case MG_COLOR_BRIGHTNESS:
      for (int ch = 0; ch < C; ch++) blend_u8(c[ch], n, f, 0.0f, NULL, f1);
      break;
    case MG_COLOR_CONTRAST:
      for (int ch = 0; ch < C; ch++) blend_u8(c[ch], n, f, f1 * mean, NULL, f1);
      break;
    case MG_COLOR_SATURATION:
      grays_u8(gray, c, n);
      for (int ch = 0; ch < C; ch++) blend_u8(c[ch], n, f, 0.0f, gray, f1);
      break;
    default:
      hue_u8(c[0], c[1], c[2], n, (float)s[k].factor);
      break;
    }
  }
}

/* ---- the same on double chunks (float64 images) ----------------------------- */

static inline double clampd(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

/* f64 twin of gray_f32 */
static inline double gray_f64(double r, double g, double b) {
  return 0.2989 * r + 0.587 * g + 0.114 * b;
}

/* f64 twin of blend_f32 */
static void blend_f64(double *v, int n, double f, double k, const double *gray, double f1) {
  for (int i = 0; i < n; i++) {
    double o = clampd(f * v[i] + (gray ? f1 * gray[i] : k));
    v[i] = o;
  }
}

/* f64 twin of hue_f32, with branches where it selects (the same values:
 * the selects, and x - trunc(x) for fmod(x, 1), are exact rewrites). */
static void hue_f64(double *R, double *G, double *B, int n, double factor) {
  for (int i = 0; i < n; i++) {
    double r = R[i], g = G[i], b = B[i];
    double maxc = fmax(r, fmax(g, b)), minc = fmin(r, fmin(g, b));
    int eqc = maxc == minc;
    double cr = maxc - minc;
    double s = cr / (eqc ? 1.0 : maxc);
    double crd = eqc ? 1.0 : cr;
    double rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    double hr = maxc == r ? bc - gc : 0.0;
    double hg = maxc == g && maxc != r ? 2.0 + rc - bc : 0.0;
    double hb = maxc != g && maxc != r ? 4.0 + gc - rc : 0.0;
    double h = fmod((hr + hg + hb) / 6.0 + 1.0, 1.0);
    h = fmod(h + factor, 1.0);
    if (h < 0) h += 1.0;
    double h6 = h * 6.0, fl = floor(h6), f = h6 - fl, v = maxc;
    double p = clampd(v * (1.0 - s));
    double q = clampd(v * (1.0 - s * f));
    double t = clampd(v * (1.0 - s * (1.0 - f)));
    switch ((int)fl % 6) {
    case 0: r = v, g = t, b = p; break;
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    default: r = v, g = p, b = q; break;
    }
    R[i] = r, G[i] = g, B[i] = b;
  }
}

/* f64 twin of grays_f32 */
static void grays_f64(double *d, double *const *c, int n) {
  for (int i = 0; i < n; i++) {
    double v = gray_f64(c[0][i], c[1][i], c[2][i]);
    d[i] = v;
  }
}

/* f64 twin of steps_f32 */
static void steps_f64(double *const *c, int C, int n, const mg_ColorStep *s,
                      int ns, double mean) {
  double gray[CHUNK];
  for (int k = 0; k < ns; k++) {
    double f = (double)s[k].factor, f1 = (double)(1.0 - s[k].factor);
    switch (s[k].kind) {
    case MG_COLOR_BRIGHTNESS:
      for (int ch = 0; ch < C; ch++) blend_f64(c[ch], n, f, 0.0, NULL, f1);
      break;
    case MG_COLOR_CONTRAST:
      for (int ch = 0; ch < C; ch++) blend_f64(c[ch], n, f, f1 * mean, NULL, f1);
      break;
    case MG_COLOR_SATURATION:
      grays_f64(gray, c, n);
      for (int ch = 0; ch < C; ch++) blend_f64(c[ch], n, f, 0.0, gray, f1);
      break;
    default:
      hue_f64(c[0], c[1], c[2], n, (double)s[k].factor);
      break;
    }
  }
}

/* ---- passes ----------------------------------------------------------------------
 * A plane view: C planes of H rows of W elements, rows sh elements apart
 * and planes sc apart. */

typedef struct {
  const char *data;
  int64_t C, H, W, sc, sh;
} Planes;

/* One pass over an image: steps [0, ns) applied to src, written to dst (a
 * contiguous image of src's shape and dtype; NULL: nothing is written),
 * returning the sum over pixels of the result's gray (its only channel
 * for one channel) when sum is set. */
static double color_pass_f32(const Planes *src, char *dst, const mg_ColorStep *s,
                             int ns, double mean, int sum) {
  int C = (int)src->C;
  float fb[3][CHUNK], *fc[3] = {fb[0], fb[1], fb[2]}, gray[CHUNK];
  float meanf = (float)mean;
  double total = 0;
  for (int64_t y = 0; y < src->H; y++)
    for (int64_t x0 = 0; x0 < src->W; x0 += CHUNK) {
      int n = (int)(src->W - x0 < CHUNK ? src->W - x0 : CHUNK);
      for (int ch = 0; ch < C; ch++) {
        const float *p = (const float *)src->data + (ch * src->sc + y * src->sh + x0);
        memcpy(fc[ch], p, (size_t)n * sizeof(float));
      }
      steps_f32(fc, C, n, s, ns, meanf);
      if (sum) {
        if (C == 3) grays_f32(gray, fc, n);
        for (int i = 0; i < n; i++) total += C == 3 ? gray[i] : fc[0][i];
      }
      for (int ch = 0; dst && ch < C; ch++) {
        float *p = (float *)dst + ((ch * src->H + y) * src->W + x0);
        memcpy(p, fc[ch], (size_t)n * sizeof(float));
      }
    }
  return total;
}
/* f64 twin of color_pass_f32 */
static double color_pass_f64(const Planes *src, char *dst, const mg_ColorStep *s,
                             int ns, double mean, int sum) {
  int C = (int)src->C;
  double db[3][CHUNK], *dc[3] = {db[0], db[1], db[2]}, gray[CHUNK];
  double meanf = (double)mean;
  double total = 0;
  for (int64_t y = 0; y < src->H; y++)
    for (int64_t x0 = 0; x0 < src->W; x0 += CHUNK) {
      int n = (int)(src->W - x0 < CHUNK ? src->W - x0 : CHUNK);
      for (int ch = 0; ch < C; ch++) {
        const double *p = (const double *)src->data + (ch * src->sc + y * src->sh + x0);
        memcpy(dc[ch], p, (size_t)n * sizeof(double));
      }
      steps_f64(dc, C, n, s, ns, meanf);
      if (sum) {
        if (C == 3) grays_f64(gray, dc, n);
        for (int i = 0; i < n; i++) total += C == 3 ? gray[i] : dc[0][i];
      }
      for (int ch = 0; dst && ch < C; ch++) {
        double *p = (double *)dst + ((ch * src->H + y) * src->W + x0);
        memcpy(p, dc[ch], (size_t)n * sizeof(double));
      }
    }
  return total;
}
/* u8 sibling of color_pass_f32 (computing in float) */
static double color_pass_u8(const Planes *src, char *dst, const mg_ColorStep *s,
                            int ns, double mean, int sum) {
  int C = (int)src->C;
  float fb[3][CHUNK], *fc[3] = {fb[0], fb[1], fb[2]}, gray[CHUNK];
  float meanf = (float)mean;
  double total = 0;
  for (int64_t y = 0; y < src->H; y++)
    for (int64_t x0 = 0; x0 < src->W; x0 += CHUNK) {
      int n = (int)(src->W - x0 < CHUNK ? src->W - x0 : CHUNK);
      for (int ch = 0; ch < C; ch++) {
        const uint8_t *p = (const uint8_t *)src->data + (ch * src->sc + y * src->sh + x0);
        for (int i = 0; i < n; i++) fc[ch][i] = p[i];
      }
      steps_u8(fc, C, n, s, ns, meanf);
      if (sum) {
        if (C == 3) grays_u8(gray, fc, n);
        for (int i = 0; i < n; i++) total += C == 3 ? gray[i] : fc[0][i];
      }
      for (int ch = 0; dst && ch < C; ch++) {
        uint8_t *p = (uint8_t *)dst + ((ch * src->H + y) * src->W + x0);
        for (int i = 0; i < n; i++) p[i] = (uint8_t)fc[ch][i];
      }
    }
  return total;
}

/* The mean torchvision's adjust_contrast blends with: sum / count in the
 * compute type (float32 for uint8 and float32 images). */
static double mean_f32(double total, int64_t count) {
  return (double)((float)total / (float)count);
}
/* f64 twin of mean_f32 */
static double mean_f64(double total, int64_t count) {
  return (double)((double)total / (double)count);
}

/* The per-dtype kernels of one call, picked once at its entry. */
typedef struct {
  double (*pass)(const Planes *src, char *dst, const mg_ColorStep *s, int ns,
                 double mean, int sum);
  double (*mean)(double total, int64_t count);
} ColorKernels;

static const ColorKernels COLOR_F32 = {color_pass_f32, mean_f32};
static const ColorKernels COLOR_F64 = {color_pass_f64, mean_f64};
static const ColorKernels COLOR_U8 = {color_pass_u8, mean_f32};

/* All steps on image src, into dst. */
static void color_image(const ColorKernels *k, const Planes *src, char *dst,
                        const mg_ColorStep *s, int ns) {
  int64_t count = src->H * src->W;
  Planes cur = *src;
  double mean = 0;
  if (ns == 0) {
    k->pass(&cur, dst, s, 0, 0, 0);
    return;
  }
  if (s[0].kind == MG_COLOR_CONTRAST)
    mean = k->mean(k->pass(&cur, NULL, s, 0, 0, 1), count);
  for (int i = 0; i < ns;) {
    int j = i + 1;
    while (j < ns && s[j].kind != MG_COLOR_CONTRAST) j++;
    double total = k->pass(&cur, dst, s + i, j - i, mean, j < ns);
    mean = k->mean(total, count);
    cur.data = dst; /* later passes work in place */
    cur.sc = src->H * src->W;
    cur.sh = src->W;
    i = j;
  }
}

static const char *const step_names[MG_NCOLOR] = {"brightness", "contrast",
                                                  "saturation", "hue"};

int mg_image_color(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                   const mg_ColorStep *steps, int nsteps) {
  const char *op = "adjust_color";
  mg_ImageIn in;
  mg_Tensor *r = NULL;
  mg_ColorStep kept[16];
  int st = mg_image_in(ctx, op, x, &in);
  if (st) goto done;
  if ((st = mg_image_check_rgb(ctx, op, &in))) goto done;
  if (nsteps < 0 || nsteps > 16) {
    st = mg_error(ctx, MG_EARG, "%s: %d adjustments (at most 16)", op, nsteps);
    goto done;
  }
  int nk = 0;
  for (int k = 0; k < nsteps; k++) {
    mg_ColorKind kind = steps[k].kind;
    double f = steps[k].factor;
    if (kind < 0 || kind >= MG_NCOLOR) {
      st = mg_error(ctx, MG_EARG, "%s: unknown adjustment %d", op, (int)kind);
      goto done;
    }
    if (kind == MG_COLOR_HUE ? !(f >= -0.5 && f <= 0.5) : !(f >= 0 && isfinite(f))) {
      st = mg_error(ctx, MG_EARG, "adjust_%s: the factor must be %s, got %g",
                    step_names[kind], kind == MG_COLOR_HUE ? "in [-0.5, 0.5]"
                    : "a finite number >= 0", f);
      goto done;
    }
    /* saturation and hue leave a one-channel image as it is */
    if (in.C == 3 || kind == MG_COLOR_BRIGHTNESS || kind == MG_COLOR_CONTRAST)
      kept[nk++] = steps[k];
  }
  if ((st = mg_image_out(ctx, &r, &in, in.dt, in.C, in.H, in.W))) goto done;
  size_t es = mg_dtype_size(in.dt);
  int64_t image = in.C * in.H * in.W;
  char *dst = mg_data(r);
  const ColorKernels *k = in.dt == MG_F64  ? &COLOR_F64
                          : in.dt == MG_U8 ? &COLOR_U8
                                           : &COLOR_F32;
  int nt = mg_image_threads(ctx, in.N, in.N * image);
  MG_PARALLEL_FOR(nt, for (int64_t n = 0; n < in.N; n++) {
    Planes p = {mg_image_plane(&in, n, 0), in.C, in.H, in.W, in.sc, in.sh};
    color_image(k, &p, dst + (size_t)(n * image) * es, kept, nk);
  });
  *out = r, r = NULL;
done:
  mg_image_in_free(&in);
  mg_tensor_decref(r);
  return st;
}

/* ---- grayscale ---------------------------------------------------------------------
 * x is (N,3,H,W) or (N,1,H,W); out is (N,out_channels,H,W). */

/* Row o (n wide) = the gray of rows a, b, c (truncated for uint8). */
typedef void GrayRow(void *o, const void *a, const void *b, const void *c, int64_t n);

static void gray_row_f32(void *o, const void *av, const void *bv, const void *cv,
                         int64_t n) {
  const float *a = av, *b = bv, *c = cv;
  for (int64_t j = 0; j < n; j++) ((float *)o)[j] = gray_f32(a[j], b[j], c[j]);
}
/* f64 twin of gray_row_f32 */
static void gray_row_f64(void *o, const void *av, const void *bv, const void *cv,
                         int64_t n) {
  const double *a = av, *b = bv, *c = cv;
  for (int64_t j = 0; j < n; j++) ((double *)o)[j] = gray_f64(a[j], b[j], c[j]);
}
/* u8 sibling of gray_row_f32 (computing in float) */
static void gray_row_u8(void *o, const void *av, const void *bv, const void *cv,
                        int64_t n) {
  const uint8_t *a = av, *b = bv, *c = cv;
  for (int64_t j = 0; j < n; j++) ((uint8_t *)o)[j] = (uint8_t)gray_f32(a[j], b[j], c[j]);
}

int mg_image_grayscale(mg_Context *ctx, mg_Tensor **out, mg_Tensor *x,
                       int out_channels) {
  const char *op = "rgb_to_grayscale";
  mg_ImageIn in;
  mg_Tensor *r = NULL;
  int st = mg_image_in(ctx, op, x, &in);
  if (st) goto done;
  if ((st = mg_image_check_rgb(ctx, op, &in))) goto done;
  if (out_channels != 1 && out_channels != 3) {
    st = mg_error(ctx, MG_EARG, "%s: num_output_channels must be 1 or 3, got %d",
                  op, out_channels);
    goto done;
  }
  if ((st = mg_image_out(ctx, &r, &in, in.dt, out_channels, in.H, in.W))) goto done;
  size_t es = mg_dtype_size(in.dt);
  int64_t HW = in.H * in.W;
  char *dst = mg_data(r);
  GrayRow *gray_row = in.dt == MG_F64  ? gray_row_f64
                      : in.dt == MG_U8 ? gray_row_u8
                                       : gray_row_f32;
  for (int64_t n = 0; n < in.N; n++) {
    char *d = dst + (size_t)(n * out_channels * HW) * es;
    const char *p0 = mg_image_plane(&in, n, 0);
    const char *p1 = in.C == 3 ? mg_image_plane(&in, n, 1) : p0;
    const char *p2 = in.C == 3 ? mg_image_plane(&in, n, 2) : p0;
    for (int64_t y = 0; y < in.H; y++) {
      size_t off = (size_t)(y * in.sh) * es;
      char *o = d + (size_t)(y * in.W) * es;
      if (in.C == 1) memcpy(o, p0 + off, (size_t)in.W * es);
      else gray_row(o, p0 + off, p1 + off, p2 + off, in.W);
    }
    for (int ch = 1; ch < out_channels; ch++)
      memcpy(d + (size_t)(ch * HW) * es, d, (size_t)HW * es);
  }
  *out = r, r = NULL;
done:
  mg_image_in_free(&in);
  mg_tensor_decref(r);
  return st;
}
