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

/* Sigmoid without overflow: exp of a non-positive number only. */
static inline float sigmoidf(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

void act_forward(void *ctx, gan_act act, float alpha, float *y, const float *x,
                 size_t n) {
  (void)ctx;
  long long N = (long long)n;
  switch (act) {
  case GAN_ACT_IDENTITY:
    if (y != x)
#pragma omp parallel for if (N > GAN_OMP_MIN)
      for (long long i = 0; i < N; i++) y[i] = x[i];
    break;
  case GAN_ACT_RELU:
#pragma omp parallel for if (N > GAN_OMP_MIN)
    for (long long i = 0; i < N; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    break;
  case GAN_ACT_LEAKY_RELU:
#pragma omp parallel for if (N > GAN_OMP_MIN)
    for (long long i = 0; i < N; i++) y[i] = x[i] > 0.0f ? x[i] : alpha * x[i];
    break;
  case GAN_ACT_SIGMOID:
#pragma omp parallel for if (N > GAN_OMP_MIN)
    for (long long i = 0; i < N; i++) y[i] = sigmoidf(x[i]);
    break;
  case GAN_ACT_TANH:
#pragma omp parallel for if (N > GAN_OMP_MIN)
    for (long long i = 0; i < N; i++) y[i] = tanhf(x[i]);
    break;
  }
}

void act_backward(void *ctx, gan_act act, float alpha, float *dx,
                  const float *dy, const float *x, const float *y, size_t n) {
  (void)ctx;
  long long N = (long long)n;
  switch (act) {
  case GAN_ACT_IDENTITY:
    if (dx != dy)
#pragma omp parallel for if (N > GAN_OMP_MIN)
      for (long long i = 0; i < N; i++) dx[i] = dy[i];
    break;
  case GAN_ACT_RELU:
#pragma omp parallel for if (N > GAN_OMP_MIN)
    for (long long i = 0; i < N; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
    break;
  case GAN_ACT_LEAKY_RELU:
#pragma omp parallel for if (N > GAN_OMP_MIN)
    for (long long i = 0; i < N; i++) dx[i] = x[i] > 0.0f ? dy[i] : alpha * dy[i];
    break;
  case GAN_ACT_SIGMOID:
#pragma omp parallel for if (N > GAN_OMP_MIN)
    for (long long i = 0; i < N; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
    break;
  case GAN_ACT_TANH:
#pragma omp parallel for if (N > GAN_OMP_MIN)
    for (long long i = 0; i < N; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
    break;
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
#pragma omp parallel for if (blocks > GAN_OMP_MIN / 4)
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
  }
}
