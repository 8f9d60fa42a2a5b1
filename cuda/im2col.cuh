/*
** im2col.cuh -- the index arithmetic of the convolutions without cuDNN
** (im2col.cu), one output element per call, as __host__ __device__
** functions: the kernels call them on the GPU, and tests/test_im2col_host.cu
** calls the very same functions on the CPU against the definitions, so
** this arithmetic is checked on a machine without a GPU.
**
** The layouts are core/conv.c's, for a block of nb samples:
**   col (C*R*S, nb*P*Q)   row c*R*S + r*S + s, column b*P*Q + p*Q + q
**   kb  (K, nb*P*Q)       the y side, k-major: kb[k][b*P*Q + pq] = y[b][k][pq]
** with y[b,k,p,q] = sum_{c,r,s} w[k,c,r,s] x[b, c, p*st-pad+r, q*st-pad+s].
*/
#ifndef GAN_CUDA_IM2COL_CUH
#define GAN_CUDA_IM2COL_CUH

#include <stddef.h>

extern "C" {
#include "backend.h"
}

/* Element e of col = im2col(x) for the block x (nb, C, H, W): the input
** pixel that tap (r, s) of channel c reads for output (p, q), or 0 in the
** padding. */
__host__ __device__ inline float im2col_at(const float *x, const gan_conv2d_desc &d,
                                           int nb, size_t e) {
  const size_t PQ = (size_t)d.P * d.Q, ld = (size_t)nb * PQ;
  const size_t row = e / ld, cl = e - row * ld;
  const int b = (int)(cl / PQ), pq = (int)(cl - (size_t)b * PQ);
  const int p = pq / d.Q, q = pq - p * d.Q;
  const int RS = d.R * d.S, c = (int)(row / RS), rs = (int)(row - (size_t)c * RS);
  const int r = rs / d.S, s = rs - r * d.S;
  const int i = p * d.stride - d.pad + r, j = q * d.stride - d.pad + s;
  if (i < 0 || i >= d.H || j < 0 || j >= d.W) return 0.0f;
  return x[(((size_t)b * d.C + c) * d.H + i) * d.W + j];
}

/* Element e of x (nb, C, H, W) = col2im(col) + bias[c]: the sum of every
** col entry copied from that pixel, taps in increasing (r, s) order as on
** the CPU.  A gather, so no two threads write one pixel. */
__host__ __device__ inline float col2im_at(const float *col, const float *bias,
                                           const gan_conv2d_desc &d, int nb, size_t e) {
  const size_t HW = (size_t)d.H * d.W, PQ = (size_t)d.P * d.Q, ld = (size_t)nb * PQ;
  const size_t plane = e / HW;
  const int hw = (int)(e - plane * HW), i = hw / d.W, j = hw - i * d.W;
  const int b = (int)(plane / d.C), c = (int)(plane - (size_t)b * d.C);
  float v = bias != NULL ? bias[c] : 0.0f;
  for (int r = 0; r < d.R; r++) {
    const int ii = i + d.pad - r; /* = p * stride */
    if (ii < 0 || ii % d.stride != 0 || ii / d.stride >= d.P) continue;
    const int p = ii / d.stride;
    for (int s = 0; s < d.S; s++) {
      const int jj = j + d.pad - s;
      if (jj < 0 || jj % d.stride != 0 || jj / d.stride >= d.Q) continue;
      const int q = jj / d.stride;
      v += col[((size_t)c * d.R * d.S + (size_t)r * d.S + s) * ld + (size_t)b * PQ +
               (size_t)p * d.Q + q];
    }
  }
  return v;
}

/* Element e of kb (K, nb*P*Q) from y (nb, K, P*Q). */
__host__ __device__ inline float to_kb_at(const float *y, const gan_conv2d_desc &d,
                                          int nb, size_t e) {
  const size_t PQ = (size_t)d.P * d.Q, ld = (size_t)nb * PQ;
  const size_t k = e / ld, cl = e - k * ld, b = cl / PQ, pq = cl - b * PQ;
  return y[(b * d.K + k) * PQ + pq];
}

/* Element e of y (nb, K, P*Q) from kb, plus bias[k] (none if NULL). */
__host__ __device__ inline float from_kb_at(const float *kb, const float *bias,
                                            const gan_conv2d_desc &d, int nb, size_t e) {
  const size_t PQ = (size_t)d.P * d.Q, ld = (size_t)nb * PQ;
  const size_t b = e / ((size_t)d.K * PQ), rem = e - b * d.K * PQ;
  const size_t k = rem / PQ, pq = rem - k * PQ;
  return kb[k * ld + b * PQ + pq] + (bias != NULL ? bias[k] : 0.0f);
}

#endif
