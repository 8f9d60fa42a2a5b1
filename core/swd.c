/*
** swd.c -- the sliced Wasserstein distance between two sets of images, as
** Karras et al., "Progressive growing of GANs" (ICLR 2018), appendix D and
** their metrics/sliced_wasserstein.py define it:
**
**  1. a Laplacian pyramid of every image: the 5x5 binomial filter
**     ([1 4 6 4 1] outer itself / 256) with mirrored edges (cv2.pyrDown and
**     pyrUp, scipy's "mirror" mode), levels S, S/2, ... down to 16x16, the
**     coarsest level being the blurred image itself;
**  2. per level, 128 random 7x7 patches of each image (all three channels:
**     147 values), centres drawn so the patch lies inside;
**  3. each set of patches normalised per colour channel by its own mean and
**     standard deviation (over patches and positions);
**  4. 4 repeats of 128 random unit directions; project both sets on each
**     direction, sort, and take the mean absolute difference of the sorted
**     projections (the 1-d Wasserstein-1 distance);
**  5. the mean over directions and repeats, times 1000.
**
** The 1-d distance between sets of different sizes n and m is the integral
** of |F_a^-1(t) - F_b^-1(t)| over t in [0, 1], computed exactly by merging
** the two step functions; for n == m it is ProGAN's mean of |a_i - b_i|.
**
** Randomness comes from the engine's generator: one key for the patch
** positions of each set, one per (level, repeat) for the directions.
*/
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "metrics.h"

static const float BINOM[5] = {1.0f / 16, 4.0f / 16, 6.0f / 16, 4.0f / 16, 1.0f / 16};

/* reflect-101: -1 -> 1, n -> n-2 */
static int mirror(int i, int n) {
  if (n == 1) return 0;
  while (i < 0 || i >= n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
  }
  return i;
}

/* dst (n, n) = gain * (src filtered by the 5x5 binomial), separably; tmp is
** (n, n) scratch */
static void blur(float *dst, const float *src, int n, float gain, float *tmp) {
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++) {
      float s = 0.0f;
      for (int k = 0; k < 5; k++) s += BINOM[k] * src[y * n + mirror(x + k - 2, n)];
      tmp[y * n + x] = s;
    }
  for (int y = 0; y < n; y++)
    for (int x = 0; x < n; x++) {
      float s = 0.0f;
      for (int k = 0; k < 5; k++) s += BINOM[k] * tmp[mirror(y + k - 2, n) * n + x];
      dst[y * n + x] = gain * s;
    }
}

/* The pyramid of one channel: 'pyr' holds the levels one after the other
** (n*n, then (n/2)^2, ...).  level l = g_l - up(g_{l+1}), the last is g_L-1.
** scratch holds 3*n*n floats. */
static void pyramid(float *pyr, const float *img, int n, int levels, float *scratch) {
  float *tmp = scratch, *big = scratch + (size_t)n * n, *blr = big + (size_t)n * n;
  memcpy(pyr, img, (size_t)n * n * sizeof(float));
  float *cur = pyr;
  for (int l = 1; l < levels; l++, n /= 2) {
    float *next = cur + (size_t)n * n;
    int h = n / 2;
    /* down: blur, keep the even rows and columns */
    blur(blr, cur, n, 1.0f, tmp);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < h; x++) next[y * h + x] = blr[(2 * y) * n + 2 * x];
    /* up: zeros between the samples, blur with gain 4; subtract */
    memset(big, 0, (size_t)n * n * sizeof(float));
    for (int y = 0; y < h; y++)
      for (int x = 0; x < h; x++) big[(2 * y) * n + 2 * x] = next[y * h + x];
    blur(blr, big, n, 4.0f, tmp);
    for (size_t i = 0; i < (size_t)n * n; i++) cur[i] -= blr[i];
    cur = next;
  }
}

/* floats of one channel's pyramid */
static size_t pyr_size(int S, int levels) {
  size_t t = 0;
  for (int l = 0; l < levels; l++, S /= 2) t += (size_t)S * S;
  return t;
}

/* The pyramids of n images (n, 3, S, S): (n, 3, pyr_size) */
static gan_status pyramids(float *out, const float *img, int64_t n, int S, int levels) {
  const size_t ps = pyr_size(S, levels), is = (size_t)S * S;
  int failed = 0;
#pragma omp parallel
  {
    float *scratch = malloc(3 * is * sizeof(float));
    if (!scratch) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for
    for (int64_t i = 0; i < 3 * n; i++)
      if (scratch) pyramid(out + i * ps, img + i * is, S, levels, scratch);
    free(scratch);
  }
  if (failed) return gan_error(GAN_ENOMEM, "swd: out of memory for the pyramids");
  return GAN_OK;
}

/* desc (n*np, 3*P*P): np random patches of level l (side res, at offset
** 'off' in each channel's pyramid) of every image, then normalised per
** channel.  Patch j of image i has its centre from draws 2*k and 2*k+1 of
** 'key', k = (i * levels + l) * np + j. */
static void descriptors(float *desc, const float *pyr, int64_t n, int S, int levels,
                        int l, int res, size_t off, const gan_swd_opts *o, uint64_t key) {
  const int P = o->patch, h = P / 2, np = o->patches, D = 3 * P * P;
  const size_t ps = pyr_size(S, levels);
  const int span = res - 2 * h; /* centres h .. res-h-1 */
#pragma omp parallel for if (n * np * D > GAN_OMP_MIN)
  for (int64_t i = 0; i < n; i++) {
    for (int j = 0; j < np; j++) {
      uint64_t k = ((uint64_t)i * levels + l) * np + j;
      int cy = h + (int)(gan_draw_uniform(key, 2 * k) * span);
      int cx = h + (int)(gan_draw_uniform(key, 2 * k + 1) * span);
      if (cy > res - h - 1) cy = res - h - 1;
      if (cx > res - h - 1) cx = res - h - 1;
      float *d = desc + ((size_t)i * np + j) * D;
      for (int c = 0; c < 3; c++) {
        const float *lev = pyr + ((size_t)i * 3 + c) * ps + off;
        for (int dy = -h; dy <= h; dy++)
          for (int dx = -h; dx <= h; dx++)
            *d++ = lev[(cy + dy) * res + cx + dx];
      }
    }
  }
  /* per channel: mean and (population) standard deviation, in double */
  const size_t rows = (size_t)n * np, pp = (size_t)P * P;
  for (int c = 0; c < 3; c++) {
    double s = 0.0, ss = 0.0;
    for (size_t r = 0; r < rows; r++) {
      const float *d = desc + r * D + c * pp;
      for (size_t t = 0; t < pp; t++) s += d[t];
    }
    double mean = s / (double)(rows * pp);
    for (size_t r = 0; r < rows; r++) {
      const float *d = desc + r * D + c * pp;
      for (size_t t = 0; t < pp; t++) ss += (d[t] - mean) * (d[t] - mean);
    }
    double sd = sqrt(ss / (double)(rows * pp));
    float m = (float)mean, inv = sd > 1e-12 ? (float)(1.0 / sd) : 1.0f;
    for (size_t r = 0; r < rows; r++) {
      float *d = desc + r * D + c * pp;
      for (size_t t = 0; t < pp; t++) d[t] = (d[t] - m) * inv;
    }
  }
}

/* Floats as unsigned keys of the same order, for a radix sort. */
static uint32_t fkey(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}
static float funkey(uint32_t k) {
  uint32_t u = (k & 0x80000000u) ? k & 0x7fffffffu : ~k;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Sorts v (n) ascending: LSD radix sort, 3 passes of 11 bits; k and t are
** n-element scratch arrays. */
static void sort_floats(float *v, size_t n, uint32_t *k, uint32_t *t) {
  for (size_t i = 0; i < n; i++) k[i] = fkey(v[i]);
  for (int shift = 0; shift < 32; shift += 11) {
    size_t cnt[2048] = {0};
    for (size_t i = 0; i < n; i++) cnt[(k[i] >> shift) & 2047]++;
    size_t sum = 0;
    for (int b = 0; b < 2048; b++) {
      size_t c = cnt[b];
      cnt[b] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++) t[cnt[(k[i] >> shift) & 2047]++] = k[i];
    uint32_t *swap = k;
    k = t;
    t = swap;
  }
  for (size_t i = 0; i < n; i++) v[i] = funkey(k[i]);
}

/* The Wasserstein-1 distance between the empirical distributions of sorted
** a (n) and sorted b (m): the area between their quantile functions. */
static double w1_sorted(const float *a, size_t n, const float *b, size_t m) {
  size_t i = 0, j = 0;
  double t = 0.0, sum = 0.0;
  while (i < n && j < m) {
    /* the next step of either function: (i+1)/n or (j+1)/m */
    int a_first = (i + 1) * m <= (j + 1) * n, b_first = (j + 1) * n <= (i + 1) * m;
    double t1 = a_first ? (double)(i + 1) / n : (double)(j + 1) / m;
    sum += (t1 - t) * fabs((double)a[i] - (double)b[j]);
    t = t1;
    if (a_first) i++;
    if (b_first) j++;
  }
  return sum;
}

/* The mean 1-d distance over 'dirs' random directions (key) between the
** patch sets da (na, D) and db (nb, D); pa (dirs, na) and pb (dirs, nb)
** are scratch. */
static gan_status sliced(double *out, const float *da, size_t na, const float *db,
                         size_t nb, int D, int dirs, uint64_t key, float *dir,
                         float *pa, float *pb) {
  for (int r = 0; r < dirs; r++) {
    double s = 0.0;
    float *v = dir + (size_t)r * D;
    for (int i = 0; i < D; i++) {
      v[i] = gan_draw_normal(key, (uint64_t)r * D + i);
      s += (double)v[i] * v[i];
    }
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < D; i++) v[i] *= inv;
  }
  /* projections, one row per direction: dir (dirs, D) x desc^T (D, n) */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, dirs, (int)na, D, 1.0f, dir,
              D, da, D, 0.0f, pa, (int)na);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, dirs, (int)nb, D, 1.0f, dir,
              D, db, D, 0.0f, pb, (int)nb);
  double total = 0.0;
  int failed = 0;
  size_t nmax = na > nb ? na : nb;
#pragma omp parallel reduction(+ : total)
  {
    uint32_t *k = malloc(nmax * sizeof(uint32_t)), *t = malloc(nmax * sizeof(uint32_t));
    if (!k || !t) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for
    for (int r = 0; r < dirs; r++) {
      if (!k || !t) continue;
      float *a = pa + (size_t)r * na, *b = pb + (size_t)r * nb;
      sort_floats(a, na, k, t);
      sort_floats(b, nb, k, t);
      total += w1_sorted(a, na, b, nb);
    }
    free(k);
    free(t);
  }
  if (failed) return gan_error(GAN_ENOMEM, "swd: out of memory for sorting");
  *out = total / dirs;
  return GAN_OK;
}

gan_status gan_swd(const float *a, int64_t na, const float *b, int64_t nb, int S,
                   const gan_swd_opts *opts, gan_rng *rng,
                   double levels[GAN_SWD_MAX_LEVELS], int *nlevels, double *avg) {
  gan_swd_opts o = {7, 128, 4, 128, 16};
  if (opts) {
    if (opts->patch) o.patch = opts->patch;
    if (opts->patches) o.patches = opts->patches;
    if (opts->repeats) o.repeats = opts->repeats;
    if (opts->dirs) o.dirs = opts->dirs;
    if (opts->min_res) o.min_res = opts->min_res;
  }
  if (na < 1 || nb < 1)
    return gan_error(GAN_EARG, "swd: both sets need at least one image (got %lld "
                     "and %lld)", (long long)na, (long long)nb);
  if (o.patch < 1 || o.patch % 2 == 0 || o.patches < 1 || o.repeats < 1 || o.dirs < 1)
    return gan_error(GAN_EARG, "swd: patch must be odd and positive, and the counts "
                     "positive (patch %d, patches %d, repeats %d, dirs %d)",
                     o.patch, o.patches, o.repeats, o.dirs);
  if (o.min_res < o.patch) o.min_res = o.patch;
  if (S < o.min_res)
    return gan_error(GAN_EARG, "swd: images of %dx%d are smaller than the coarsest "
                     "level, %dx%d", S, S, o.min_res, o.min_res);
  /* levels S, S/2, ... while at least min_res; an odd side ends the pyramid */
  int L = 1;
  for (int r = S; r % 2 == 0 && r / 2 >= o.min_res && L < GAN_SWD_MAX_LEVELS; r /= 2) L++;
  const int P = o.patch, D = 3 * P * P;
  const size_t ps = pyr_size(S, L), ra = (size_t)na * o.patches, rb = (size_t)nb * o.patches;
  float *pyr_a = malloc((size_t)na * 3 * ps * sizeof(float));
  float *pyr_b = malloc((size_t)nb * 3 * ps * sizeof(float));
  float *desc_a = malloc(ra * D * sizeof(float)), *desc_b = malloc(rb * D * sizeof(float));
  float *dir = malloc((size_t)o.dirs * D * sizeof(float));
  float *proj_a = malloc((size_t)o.dirs * ra * sizeof(float));
  float *proj_b = malloc((size_t)o.dirs * rb * sizeof(float));
  gan_status st = GAN_OK;
  if (!pyr_a || !pyr_b || !desc_a || !desc_b || !dir || !proj_a || !proj_b) {
    st = gan_error(GAN_ENOMEM, "swd: out of memory for %lld and %lld images of %dx%d",
                   (long long)na, (long long)nb, S, S);
    goto done;
  }
  uint64_t key_a = gan_rng_next(rng), key_b = gan_rng_next(rng);
  if ((st = pyramids(pyr_a, a, na, S, L)) != GAN_OK) goto done;
  if ((st = pyramids(pyr_b, b, nb, S, L)) != GAN_OK) goto done;
  double sum = 0.0;
  size_t off = 0;
  for (int l = 0, res = S; l < L; l++, off += (size_t)res * res, res /= 2) {
    descriptors(desc_a, pyr_a, na, S, L, l, res, off, &o, key_a);
    descriptors(desc_b, pyr_b, nb, S, L, l, res, off, &o, key_b);
    double d = 0.0;
    for (int r = 0; r < o.repeats; r++) {
      double one = 0.0;
      st = sliced(&one, desc_a, ra, desc_b, rb, D, o.dirs, gan_rng_next(rng), dir,
                  proj_a, proj_b);
      if (st != GAN_OK) goto done;
      d += one;
    }
    levels[l] = 1e3 * d / o.repeats;
    sum += levels[l];
  }
  *nlevels = L;
  *avg = sum / L;
done:
  free(pyr_a);
  free(pyr_b);
  free(desc_a);
  free(desc_b);
  free(dir);
  free(proj_a);
  free(proj_b);
  return st;
}
