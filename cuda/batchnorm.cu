/*
** batchnorm.cu -- batch normalisation over (B, C, S) per channel
** (Ioffe and Szegedy 2015), with backend.h's conventions:
**
**   training:   mean, var = batch statistics over the N = B*S values of a
**               channel (biased variance); rstd = 1/sqrt(var + eps);
**               r = momentum * r + (1 - momentum) * batch  (Keras's form)
**   evaluation: mean = run_mean, rstd = 1/sqrt(run_var + eps), both still
**               written to 'mean' and 'rstd'
**   y = (x - mean) * rstd * gamma + beta
**
**   backward, training (through the batch statistics), xhat = (x-mean)*rstd:
**     dx = rstd/N * (N*g*dy - sum(g*dy) - xhat * sum(g*dy*xhat))
**        = g*rstd * (dy - mean(dy) - xhat * mean(dy*xhat))
**   backward, evaluation (a fixed affine map):  dx = dy * g * rstd
**   both:  dgamma += sum(dy * xhat),  dbeta += sum(dy)
**
** One block per channel: the block walks the channel's N values (B rows of
** S contiguous floats, C*S apart), reduces in double -- two passes for the
** variance, so no cancellation -- and then writes the outputs.
*/
#include "common.cuh"

__global__ void bn_forward_kernel(float *y, float *mean, float *rstd, float *run_mean,
                                  float *run_var, const float *x, const float *gamma,
                                  const float *beta, int B, int C, int S, float momentum,
                                  float eps, int training) {
  const int c = blockIdx.x;
  const size_t CS = (size_t)C * S, N = (size_t)B * S;
  const float *xc = x + (size_t)c * S;
  float m, r;
  if (training) {
    double s = 0.0;
    for_channel(B, S, CS, [&](size_t o) { s += xc[o]; });
    const double mu = block_sum(s) / (double)N;
    double q = 0.0;
    for_channel(B, S, CS, [&](size_t o) {
      double d = (double)xc[o] - mu;
      q += d * d;
    });
    const double var = block_sum(q) / (double)N;
    m = (float)mu;
    r = (float)(1.0 / sqrt(var + (double)eps));
    if (threadIdx.x == 0) {
      mean[c] = m;
      rstd[c] = r;
      if (run_mean != NULL) run_mean[c] = momentum * run_mean[c] + (1.0f - momentum) * m;
      if (run_var != NULL)
        run_var[c] = momentum * run_var[c] + (1.0f - momentum) * (float)var;
    }
  } else {
    m = run_mean[c];
    r = 1.0f / sqrtf(run_var[c] + eps);
    if (threadIdx.x == 0) {
      mean[c] = m;
      rstd[c] = r;
    }
  }
  const float g = gamma != NULL ? gamma[c] : 1.0f, bt = beta != NULL ? beta[c] : 0.0f;
  float *yc = y + (size_t)c * S;
  for_channel(B, S, CS, [&](size_t o) { yc[o] = (xc[o] - m) * r * g + bt; });
}

__global__ void bn_backward_kernel(float *dx, float *dgamma, float *dbeta,
                                   const float *dy, const float *x, const float *gamma,
                                   const float *mean, const float *rstd, int B, int C,
                                   int S, int training) {
  const int c = blockIdx.x;
  const size_t CS = (size_t)C * S, N = (size_t)B * S;
  const float *xc = x + (size_t)c * S, *dyc = dy + (size_t)c * S;
  const float m = mean[c], r = rstd[c], g = gamma != NULL ? gamma[c] : 1.0f;
  double sdy = 0.0, sdyx = 0.0;
  if (training || dgamma != NULL || dbeta != NULL) {
    for_channel(B, S, CS, [&](size_t o) {
      const float xhat = (xc[o] - m) * r;
      sdy += dyc[o];
      sdyx += (double)dyc[o] * xhat;
    });
    sdy = block_sum(sdy);
    sdyx = block_sum(sdyx);
    if (threadIdx.x == 0) {
      if (dgamma != NULL) dgamma[c] = (float)((double)dgamma[c] + sdyx);
      if (dbeta != NULL) dbeta[c] = (float)((double)dbeta[c] + sdy);
    }
  }
  if (dx == NULL) return;
  float *dxc = dx + (size_t)c * S;
  const float gr = g * r;
  if (training) {
    const float mdy = (float)(sdy / (double)N), mdyx = (float)(sdyx / (double)N);
    for_channel(B, S, CS, [&](size_t o) {
      const float xhat = (xc[o] - m) * r;
      dxc[o] = gr * (dyc[o] - mdy - xhat * mdyx);
    });
  } else {
    for_channel(B, S, CS, [&](size_t o) { dxc[o] = dyc[o] * gr; });
  }
}

void cuda_batchnorm_forward(void *ctx, float *y /* (B, C, S) */, float *mean /* (C) */,
                            float *rstd /* (C) */, float *run_mean /* (C) */,
                            float *run_var /* (C) */, const float *x /* (B, C, S) */,
                            const float *gamma /* (C) */, const float *beta /* (C) */,
                            int B, int C, int S, float momentum, float eps,
                            int training) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (C <= 0 || S <= 0 || B < 0) return;
  if (training && B == 0) return; /* no statistics to take */
  bn_forward_kernel<<<C, REDUCE_THREADS, 0, c->stream>>>(y, mean, rstd, run_mean,
                                                         run_var, x, gamma, beta, B, C,
                                                         S, momentum, eps, training);
  launch_ok(c, "bn_forward_kernel");
}

void cuda_batchnorm_backward(void *ctx, float *dx /* (B, C, S) or NULL */,
                             float *dgamma /* (C) or NULL */,
                             float *dbeta /* (C) or NULL */,
                             const float *dy /* (B, C, S) */,
                             const float *x /* (B, C, S) */, const float *gamma /* (C) */,
                             const float *mean /* (C) */, const float *rstd /* (C) */,
                             int B, int C, int S, int training) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (C <= 0 || S <= 0 || B <= 0) return;
  if (dx == NULL && dgamma == NULL && dbeta == NULL) return;
  bn_backward_kernel<<<C, REDUCE_THREADS, 0, c->stream>>>(
      dx, dgamma, dbeta, dy, x, gamma, mean, rstd, B, C, S, training);
  launch_ok(c, "bn_backward_kernel");
}
