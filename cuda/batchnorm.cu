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
**   both:  dgamma += sum(dy * xhat),  dbeta += sum(dy)  (= with 'overwrite')
**
** A channel's N values (B rows of S contiguous floats, C*S apart) are cut
** into parts (common.cuh's channel_split).  With one part, one block per
** channel reduces and then writes.  With more, a first kernel leaves each
** part's sums in the scratch, and then each block of the second kernel adds
** up its channel's in a fixed order and writes its own part.  The sums are
** in double, and the variance is taken around the mean, so there is no
** cancellation: two passes over a part give its sum and its M2 (sum of
** squares around the part's mean), and the channel's M2 is
** sum_p M2_p + n_p (mean_p - mean)^2 (Chan, Golub and LeVeque 1979).
*/
#include "common.cuh"

/* The sum, and the sum of squares around their mean, of the values
** [j0, j1) of a channel; to every thread of the block. */
static __device__ void part_moments(const float *xc, int S, size_t CS, size_t j0,
                                    size_t j1, double *sum, double *m2) {
  double s = 0.0;
  for_channel(S, CS, j0, j1, [&](size_t o) { s += xc[o]; });
  s = block_sum(s);
  const double mu = s / (double)(j1 - j0);
  double q = 0.0;
  for_channel(S, CS, j0, j1, [&](size_t o) {
    const double d = (double)xc[o] - mu;
    q += d * d;
  });
  *sum = s;
  *m2 = block_sum(q);
}

/* training, more than one part: part[2i] and part[2i + 1] = the sum and the
** M2 of part i (block i) */
__global__ void bn_moments_kernel(double *part, const float *x, int C, int S, size_t N,
                                  channel_split sp) {
  const channel_part r = part_of_block(sp, N);
  double s, q;
  part_moments(x + (size_t)r.c * S, S, (size_t)C * S, r.j0, r.j1, &s, &q);
  if (threadIdx.x == 0) {
    part[2 * (size_t)blockIdx.x] = s;
    part[2 * (size_t)blockIdx.x + 1] = q;
  }
}

/* The total of value k (0 or 1) of the pairs that channel c's parts left,
** added in a fixed order; to every thread of the block. */
static __device__ double parts_total(const double *part, channel_split sp, int c, int k) {
  const double *pc = part + 2 * (size_t)c * sp.parts;
  double s = 0.0;
  for (int i = threadIdx.x; i < sp.parts; i += blockDim.x) s += pc[2 * i + k];
  return block_sum(s);
}

/* Channel c's mean and M2 from its parts' sums and M2s */
static __device__ void channel_moments(const double *part, channel_split sp, size_t N,
                                       int c, double *mean, double *m2) {
  const double *pc = part + 2 * (size_t)c * sp.parts;
  const double mu = parts_total(part, sp, c, 0) / (double)N;
  double q = 0.0;
  for (int i = threadIdx.x; i < sp.parts; i += blockDim.x) {
    const double n = (double)part_size(sp, N, i), d = pc[2 * i] / n - mu;
    q += pc[2 * i + 1] + n * d * d;
  }
  *mean = mu;
  *m2 = block_sum(q);
}

/* 'part': bn_moments_kernel's sums, or NULL when there is one part */
__global__ void bn_forward_kernel(float *y, float *mean, float *rstd, float *run_mean,
                                  float *run_var, const float *x, const float *gamma,
                                  const float *beta, const double *part, int C, int S,
                                  size_t N, channel_split sp, float momentum, float eps,
                                  int training) {
  const channel_part r = part_of_block(sp, N);
  const int c = r.c;
  const size_t CS = (size_t)C * S;
  const float *xc = x + (size_t)c * S;
  const int first = r.p == 0 && threadIdx.x == 0; /* writes the channel's values */
  float m, rs;
  if (training) {
    double mu, m2;
    if (part == NULL) {
      part_moments(xc, S, CS, 0, N, &mu, &m2);
      mu /= (double)N;
    } else {
      channel_moments(part, sp, N, c, &mu, &m2);
    }
    const double var = m2 / (double)N;
    m = (float)mu;
    rs = (float)(1.0 / sqrt(var + (double)eps));
    if (first) {
      mean[c] = m;
      rstd[c] = rs;
      if (run_mean != NULL) run_mean[c] = momentum * run_mean[c] + (1.0f - momentum) * m;
      if (run_var != NULL)
        run_var[c] = momentum * run_var[c] + (1.0f - momentum) * (float)var;
    }
  } else {
    m = run_mean[c];
    rs = 1.0f / sqrtf(run_var[c] + eps);
    if (first) {
      mean[c] = m;
      rstd[c] = rs;
    }
  }
  const float g = gamma != NULL ? gamma[c] : 1.0f, bt = beta != NULL ? beta[c] : 0.0f;
  float *yc = y + (size_t)c * S;
  for_channel(S, CS, r.j0, r.j1, [&](size_t o) { yc[o] = (xc[o] - m) * rs * g + bt; });
}

/* The sums of dy and of dy * xhat over the values [j0, j1) of a channel;
** to every thread of the block. */
static __device__ void part_grad_sums(const float *xc, const float *dyc, float m, float rs,
                                      int S, size_t CS, size_t j0, size_t j1,
                                      double *sdy, double *sdyx) {
  double a = 0.0, b = 0.0;
  for_channel(S, CS, j0, j1, [&](size_t o) {
    const float xhat = (xc[o] - m) * rs;
    a += dyc[o];
    b += (double)dyc[o] * xhat;
  });
  *sdy = block_sum(a);
  *sdyx = block_sum(b);
}

/* more than one part: part[2i] and part[2i + 1] = the sums of dy and of
** dy * xhat over part i (block i) */
__global__ void bn_grad_sums_kernel(double *part, const float *dy, const float *x,
                                    const float *mean, const float *rstd, int C, int S,
                                    size_t N, channel_split sp) {
  const channel_part r = part_of_block(sp, N);
  const size_t off = (size_t)r.c * S;
  double a, b;
  part_grad_sums(x + off, dy + off, mean[r.c], rstd[r.c], S, (size_t)C * S, r.j0, r.j1,
                 &a, &b);
  if (threadIdx.x == 0) {
    part[2 * (size_t)blockIdx.x] = a;
    part[2 * (size_t)blockIdx.x + 1] = b;
  }
}

/* 'part': bn_grad_sums_kernel's sums, or NULL when there is one part or
** no sum is needed */
__global__ void bn_backward_kernel(float *dx, float *dgamma, float *dbeta,
                                   const float *dy, const float *x, const float *gamma,
                                   const float *mean, const float *rstd,
                                   const double *part, int C, int S, size_t N,
                                   channel_split sp, int training, int overwrite) {
  const channel_part r = part_of_block(sp, N);
  const int c = r.c;
  const size_t CS = (size_t)C * S;
  const float *xc = x + (size_t)c * S, *dyc = dy + (size_t)c * S;
  const float m = mean[c], rs = rstd[c], g = gamma != NULL ? gamma[c] : 1.0f;
  double sdy = 0.0, sdyx = 0.0;
  if (training || dgamma != NULL || dbeta != NULL) {
    if (part == NULL) {
      part_grad_sums(xc, dyc, m, rs, S, CS, 0, N, &sdy, &sdyx);
    } else {
      sdy = parts_total(part, sp, c, 0);
      sdyx = parts_total(part, sp, c, 1);
    }
    if (r.p == 0 && threadIdx.x == 0) {
      if (dgamma != NULL)
        dgamma[c] = overwrite ? (float)sdyx : (float)((double)dgamma[c] + sdyx);
      if (dbeta != NULL) dbeta[c] = overwrite ? (float)sdy : (float)((double)dbeta[c] + sdy);
    }
  }
  if (dx == NULL) return;
  float *dxc = dx + (size_t)c * S;
  const float gr = g * rs;
  if (training) {
    const float mdy = (float)(sdy / (double)N), mdyx = (float)(sdyx / (double)N);
    for_channel(S, CS, r.j0, r.j1, [&](size_t o) {
      const float xhat = (xc[o] - m) * rs;
      dxc[o] = gr * (dyc[o] - mdy - xhat * mdyx);
    });
  } else {
    for_channel(S, CS, r.j0, r.j1, [&](size_t o) { dxc[o] = dyc[o] * gr; });
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
  const size_t N = (size_t)B * S;
  const channel_split sp = channel_split_for(C, N);
  const unsigned blocks = (unsigned)C * (unsigned)sp.parts;
  const double *part = NULL;
  if (training && sp.parts > 1) {
    bn_moments_kernel<<<blocks, REDUCE_THREADS, 0, c->stream>>>(c->scratch, x, C, S, N,
                                                                sp);
    if (!launch_ok(c, "bn_moments_kernel")) return;
    part = c->scratch;
  }
  bn_forward_kernel<<<blocks, REDUCE_THREADS, 0, c->stream>>>(
      y, mean, rstd, run_mean, run_var, x, gamma, beta, part, C, S, N, sp, momentum, eps,
      training);
  launch_ok(c, "bn_forward_kernel");
}

void cuda_batchnorm_backward(void *ctx, float *dx /* (B, C, S) or NULL */,
                             float *dgamma /* (C) or NULL */,
                             float *dbeta /* (C) or NULL */,
                             const float *dy /* (B, C, S) */,
                             const float *x /* (B, C, S) */, const float *gamma /* (C) */,
                             const float *mean /* (C) */, const float *rstd /* (C) */,
                             int B, int C, int S, int training, int overwrite) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (C <= 0 || S <= 0 || B <= 0) return;
  if (dx == NULL && dgamma == NULL && dbeta == NULL) return;
  const size_t N = (size_t)B * S;
  const channel_split sp = channel_split_for(C, N);
  const unsigned blocks = (unsigned)C * (unsigned)sp.parts;
  const double *part = NULL;
  if (sp.parts > 1 && (training || dgamma != NULL || dbeta != NULL)) {
    bn_grad_sums_kernel<<<blocks, REDUCE_THREADS, 0, c->stream>>>(c->scratch, dy, x, mean,
                                                                  rstd, C, S, N, sp);
    if (!launch_ok(c, "bn_grad_sums_kernel")) return;
    part = c->scratch;
  }
  bn_backward_kernel<<<blocks, REDUCE_THREADS, 0, c->stream>>>(
      dx, dgamma, dbeta, dy, x, gamma, mean, rstd, part, C, S, N, sp, training, overwrite);
  launch_ok(c, "bn_backward_kernel");
}
