/*
** adam.c -- the Adam optimizer (Kingma and Ba 2015), one fused pass per
** parameter tensor: the moments and the parameter are read and written once
** each.
**   m = b1 m + (1 - b1) g
**   v = b2 v + (1 - b2) g^2
** then, in one of two forms that differ only in where eps goes:
**  - Keras's (eps_hat = 1, the paper's "epsilon hat", end of its section 2;
**    tf.keras and Keras 3):
**      p -= lr * (m * sqrt(1 - b2^t) / (1 - b1^t) / (sqrt(v) + eps) + wd * p)
**  - Algorithm 1 of the paper (eps_hat = 0; PyTorch's):
**      p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p),
**      mhat = m / (1 - b1^t), vhat = v / (1 - b2^t)
** Without eps the two are the same; with it, Keras's damps the first steps
** of parameters whose gradient is small: at step 1 its eps acts as
** eps / sqrt(1 - b2) = 32 eps on the gradient's scale.  Both are
** p -= lr * ((m * a) / (sqrt(v * b) + eps) + wd * p), whose a and b
** (gan_adam_scales_of, backend.h) carry the bias corrections, computed once
** per step in double.  eps defaults to Keras's 1e-7 (the
** binding's choice); wd is decoupled weight decay (AdamW, Loshchilov and
** Hutter 2019), 0 for plain Adam.
*/
#include <math.h>

#include "cpu.h"

void adam_step(void *ctx, const gan_adam_group *g) {
  (void)ctx;
  const float b1 = g->beta1, b2 = g->beta2, eps = g->eps, wd = g->weight_decay;
  const gan_adam_scales sc = gan_adam_scales_of(g); /* the form (backend.h) */
  const float a = sc.a, b = sc.b, lr = g->lr;
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
      p[i] -= lr * ((mi * a) / (sqrtf(vi * b) + eps) + wd * p[i]);
    });
  }
}
