/*
** bce.c -- binary cross-entropy, mean over all n elements.
**
** On probabilities p (after a sigmoid), as Keras computes it:
**   p' = clamp(p, 1e-7, 1 - 1e-7)
**   loss = -mean(t log p' + (1 - t) log(1 - p'))
**   dloss/dp = (p' - t) / (p' (1 - p')) / n, and 0 where the clamp is active
**   (the clamp's own gradient, as in TensorFlow's clip_by_value).
** On logits z, the stable form (TensorFlow's sigmoid_cross_entropy_with_logits):
**   loss = mean(max(z, 0) - z t + log(1 + exp(-|z|)))
**   dloss/dz = (sigmoid(z) - t) / n
** The sums run in double: 49152-wide batches lose digits in float.
*/
#include <math.h>

#include "cpu.h"

#define BCE_EPS 1e-7f

void bce_forward(void *ctx, float *loss, const float *pred, const float *target,
                 size_t n, int logits) {
  (void)ctx;
  double s = 0.0;
  long long N = (long long)n;
  if (logits) {
    GAN_OMP(N > GAN_OMP_MIN, "omp parallel for reduction(+ : s)",
    for (long long i = 0; i < N; i++) {
      double z = pred[i], t = target[i];
      s += (z > 0 ? z : 0) - z * t + log1p(exp(-fabs(z)));
    });
  } else {
    GAN_OMP(N > GAN_OMP_MIN, "omp parallel for reduction(+ : s)",
    for (long long i = 0; i < N; i++) {
      double p = fminf(fmaxf(pred[i], BCE_EPS), 1.0f - BCE_EPS), t = target[i];
      s -= t * log(p) + (1.0 - t) * log(1.0 - p);
    });
  }
  *loss = (float)(s / (double)n);
}

void bce_backward(void *ctx, float *dpred, const float *pred,
                  const float *target, size_t n, int logits) {
  (void)ctx;
  const float inv_n = 1.0f / (float)n;
  long long N = (long long)n;
  if (logits) {
    GAN_OMP(N > GAN_OMP_MIN, "omp parallel for",
    for (long long i = 0; i < N; i++) {
      float z = pred[i];
      float s = z >= 0 ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
      dpred[i] = (s - target[i]) * inv_n;
    });
  } else {
    GAN_OMP(N > GAN_OMP_MIN, "omp parallel for",
    for (long long i = 0; i < N; i++) {
      float p = pred[i], t = target[i];
      if (p < BCE_EPS || p > 1.0f - BCE_EPS)
        dpred[i] = 0.0f;
      else
        dpred[i] = (p - t) / (p * (1.0f - p)) * inv_n;
    });
  }
}
