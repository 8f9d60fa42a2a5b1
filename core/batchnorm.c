/*
** batchnorm.c -- batch normalisation over the batch (and spatial) dimension.
**
** x is (B, C, S): B samples, C channels, S positions per channel (1 for a
** dense layer, H*W after a convolution).  Per channel c, over N = B*S values:
**   training:   mean, var (biased, as Keras and the paper), rstd = 1/sqrt(var+eps)
**               run = momentum * run + (1 - momentum) * batch   (Keras convention)
**   evaluation: mean, rstd from the running statistics
**   y = gamma * (x - mean) * rstd + beta
** Backward in training mode goes through the batch statistics (Ioffe and
** Szegedy 2015, eq. in section 3):
**   xhat = (x - mean) * rstd,  g = gamma * dy
**   dx = rstd / N * (N*g - sum(g) - xhat * sum(g*xhat))
** and in evaluation mode it is the fixed affine map's: dx = gamma * rstd * dy.
** Channels are independent, so the loops over c run in parallel.
*/
#include <math.h>

#include "cpu.h"

void batchnorm_forward(void *ctx, float *y, float *mean, float *rstd,
                       float *run_mean, float *run_var, const float *x,
                       const float *gamma, const float *beta, int B, int C,
                       int S, float momentum, float eps, int training) {
  (void)ctx;
  const double N = (double)B * S;
  GAN_OMP((long long)B * C * S > GAN_OMP_MIN, "omp parallel for",
  for (int c = 0; c < C; c++) {
    float m, rs;
    if (training) {
      /* two passes in double: exact enough for 100-sample batches of any scale */
      double s = 0.0, ss = 0.0;
      for (int b = 0; b < B; b++) {
        const float *xc = x + ((size_t)b * C + c) * S;
        for (int i = 0; i < S; i++) s += xc[i];
      }
      double mu = s / N;
      for (int b = 0; b < B; b++) {
        const float *xc = x + ((size_t)b * C + c) * S;
        for (int i = 0; i < S; i++) ss += (xc[i] - mu) * (xc[i] - mu);
      }
      double var = ss / N;
      m = (float)mu;
      rs = (float)(1.0 / sqrt(var + eps));
      run_mean[c] = momentum * run_mean[c] + (1.0f - momentum) * (float)mu;
      run_var[c] = momentum * run_var[c] + (1.0f - momentum) * (float)var;
    } else {
      m = run_mean[c];
      rs = 1.0f / sqrtf(run_var[c] + eps);
    }
    mean[c] = m;
    rstd[c] = rs;
    const float a = gamma[c] * rs, b0 = beta[c] - a * m;
    for (int b = 0; b < B; b++) {
      const float *xc = x + ((size_t)b * C + c) * S;
      float *yc = y + ((size_t)b * C + c) * S;
      for (int i = 0; i < S; i++) yc[i] = a * xc[i] + b0;
    }
  });
}

void batchnorm_backward(void *ctx, float *dx, float *dgamma, float *dbeta,
                        const float *dy, const float *x, const float *gamma,
                        const float *mean, const float *rstd, int B, int C,
                        int S, int training, int overwrite) {
  (void)ctx;
  const float N = (float)B * S;
  GAN_OMP((long long)B * C * S > GAN_OMP_MIN, "omp parallel for",
  for (int c = 0; c < C; c++) {
    const float m = mean[c], rs = rstd[c];
    double sdy = 0.0, sdyx = 0.0; /* sum(dy), sum(dy * xhat) */
    for (int b = 0; b < B; b++) {
      const float *xc = x + ((size_t)b * C + c) * S;
      const float *dyc = dy + ((size_t)b * C + c) * S;
      for (int i = 0; i < S; i++) {
        sdy += dyc[i];
        sdyx += dyc[i] * (xc[i] - m) * rs;
      }
    }
    if (dgamma) dgamma[c] = overwrite ? (float)sdyx : dgamma[c] + (float)sdyx;
    if (dbeta) dbeta[c] = overwrite ? (float)sdy : dbeta[c] + (float)sdy;
    if (!dx) continue;
    const float g = gamma[c];
    for (int b = 0; b < B; b++) {
      const float *xc = x + ((size_t)b * C + c) * S;
      const float *dyc = dy + ((size_t)b * C + c) * S;
      float *dxc = dx + ((size_t)b * C + c) * S;
      if (training) {
        /* sum(g*dy) = g*sdy and sum(g*dy*xhat) = g*sdyx, gamma being per channel */
        const float k = g * rs / N;
        for (int i = 0; i < S; i++) {
          float xhat = (xc[i] - m) * rs;
          dxc[i] = k * (N * dyc[i] - (float)sdy - xhat * (float)sdyx);
        }
      } else {
        for (int i = 0; i < S; i++) dxc[i] = g * rs * dyc[i];
      }
    }
  });
}
