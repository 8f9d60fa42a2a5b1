/*
** adam.c -- the Adam optimizer (Kingma and Ba 2015, Algorithm 1), one fused
** pass per parameter tensor: the moments and the parameter are read and
** written once each.
**   m = b1 m + (1 - b1) g
**   v = b2 v + (1 - b2) g^2
**   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p),
**   mhat = m / (1 - b1^t), vhat = v / (1 - b2^t)
** The bias corrections are computed once per step in double.  eps defaults
** to Keras's 1e-7 (the binding's choice); wd is decoupled weight decay
** (AdamW, Loshchilov and Hutter 2019), 0 for plain Adam.
*/
#include <math.h>

#include "cpu.h"

void adam_step(void *ctx, const gan_adam_group *g) {
  (void)ctx;
  const float b1 = g->beta1, b2 = g->beta2, eps = g->eps, wd = g->weight_decay;
  const float c1 = (float)(1.0 / (1.0 - pow(g->beta1, (double)g->step)));
  const float c2 = (float)(1.0 / (1.0 - pow(g->beta2, (double)g->step)));
  const float lr = g->lr;
  for (int k = 0; k < g->count; k++) {
    float *p = g->params[k], *m = g->m[k], *v = g->v[k];
    const float *grad = g->grads[k];
    long long n = (long long)g->sizes[k];
    GAN_OMP(n > GAN_OMP_MIN, "omp parallel for simd",
    for (long long i = 0; i < n; i++) {
      float gi = grad[i];
      float mi = b1 * m[i] + (1.0f - b1) * gi;
      float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] -= lr * ((mi * c1) / (sqrtf(vi * c2) + eps) + wd * p[i]);
    });
  }
}
