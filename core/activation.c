/*
** activation.c -- pointwise activations and inverted dropout on the CPU.
**
** Each loop is one pass over memory, split over the cores by OpenMP when it
** is long enough to pay for the threads.  Sigmoid and tanh differentiate
** through their output y (s' = s(1-s), tanh' = 1-y^2), which the modules keep.
*/
#include <math.h>

#include "cpu.h"
#include "rng.h"

/* 1 / (1 + e^-x): for x below about -88, e^-x is +inf and the result the
** correct 0; no NaN can arise.  Branch-free, so it vectorises (with glibc's
** vector expf, libmvec, since this file is built without errno for math). */
static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* tanh |x| = -t / (t + 2), t = expm1(-2|x|): exact to a few ulp near 0 (no
** cancellation) and 4x faster than glibc's tanhf on this machine. */
static inline float fast_tanhf(float x) {
  float t = expm1f(-2.0f * fabsf(x));
  return copysignf(-t / (t + 2.0f), x);
}

/* The loops are written without branches (selects, min and max) and with
** restrict pointers so that the compiler vectorises them: a branch on the
** sign of random data mispredicts half the time, 30x slower than a vector. */
#define LOOP(N, body)                                                          \
  GAN_OMP(N > GAN_OMP_MIN, "omp parallel for firstprivate(alpha)",             \
          for (long long i = 0; i < N; i++) body)

static void fwd(gan_act act, float alpha, float *restrict y,
                const float *restrict x, long long N) {
  switch (act) {
  case GAN_ACT_IDENTITY: LOOP(N, { y[i] = x[i]; }); break;
  case GAN_ACT_RELU: LOOP(N, { y[i] = x[i] > 0.0f ? x[i] : 0.0f; }); break;
  case GAN_ACT_LEAKY_RELU:
    LOOP(N, { float v = x[i]; float k = v > 0.0f ? 1.0f : alpha; y[i] = v * k; }); break;
  case GAN_ACT_SIGMOID: LOOP(N, { y[i] = sigmoidf(x[i]); }); break;
  case GAN_ACT_TANH: LOOP(N, { y[i] = fast_tanhf(x[i]); }); break;
  }
}

void act_forward(void *ctx, gan_act act, float alpha, float *y, const float *x,
                 size_t n) {
  (void)ctx;
  if (act == GAN_ACT_IDENTITY && y == x) return;
  fwd(act, alpha, y, x, (long long)n);
}

static void bwd(gan_act act, float alpha, float *restrict dx,
                const float *restrict dy, const float *restrict x,
                const float *restrict y, long long N) {
  switch (act) {
  case GAN_ACT_IDENTITY: LOOP(N, { dx[i] = dy[i]; }); break;
  case GAN_ACT_RELU: LOOP(N, { float g = dy[i]; dx[i] = x[i] > 0.0f ? g : 0.0f; }); break;
  case GAN_ACT_LEAKY_RELU:
    LOOP(N, { float g = dy[i]; float k = x[i] > 0.0f ? 1.0f : alpha; dx[i] = g * k; }); break;
  case GAN_ACT_SIGMOID: LOOP(N, { dx[i] = dy[i] * y[i] * (1.0f - y[i]); }); break;
  case GAN_ACT_TANH: LOOP(N, { dx[i] = dy[i] * (1.0f - y[i] * y[i]); }); break;
  }
}

/* dx may be dy (an in-place backward); restrict then does not hold, so that
** case goes through a copy-free scalar path. */
void act_backward(void *ctx, gan_act act, float alpha, float *dx,
                  const float *dy, const float *x, const float *y, size_t n) {
  (void)ctx;
  long long N = (long long)n;
  if (dx != dy && dx != x && dx != y) {
    bwd(act, alpha, dx, dy, x, y, N);
    return;
  }
  for (long long i = 0; i < N; i++) {
    float g = dy[i];
    switch (act) {
    case GAN_ACT_IDENTITY: break;
    case GAN_ACT_RELU: g = x[i] > 0.0f ? g : 0.0f; break;
    case GAN_ACT_LEAKY_RELU: g *= x[i] > 0.0f ? 1.0f : alpha; break;
    case GAN_ACT_SIGMOID: g *= y[i] * (1.0f - y[i]); break;
    case GAN_ACT_TANH: g *= 1.0f - y[i] * y[i]; break;
    }
    dx[i] = g;
  }
}

/* Element i is kept when its uniform draw is >= p; the kept ones are scaled
** by 1/(1-p) so that the expectation is unchanged and evaluation is the
** identity.  The rule is the CUDA backend's too (same Philox draw). */
void dropout_forward(void *ctx, float *y, float *mask, const float *x, size_t n,
                     float p, uint64_t key) {
  (void)ctx;
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  long long blocks = (long long)((n + 3) / 4);
  GAN_OMP(blocks > GAN_OMP_MIN / 4, "omp parallel for",
  for (long long b = 0; b < blocks; b++) {
    uint32_t w[4];
    gan_philox(key, (uint64_t)b, w); /* one Philox block gives 4 elements */
    for (int j = 0; j < 4; j++) {
      size_t i = (size_t)b * 4 + (size_t)j;
      if (i >= n) break;
      float u = (float)(w[j] >> 8) * (1.0f / 16777216.0f);
      mask[i] = u >= p ? scale : 0.0f;
      y[i] = x[i] * mask[i];
    }
  });
}
