/*
** conv.c -- 2-d convolutions on the CPU: im2col + one OpenBLAS sgemm per
** block of samples.
**
** Everything is said in the terms of one ordinary convolution (backend.h's
** gan_conv2d_desc): x (B, C, H, W) -> y (B, K, P, Q), weight (K, C, R, S),
**   y[b,k,p,q] = bias[k] + sum_{c,r,s} w[k,c,r,s] x[b, c, p*st-pad+r, q*st-pad+s]
** (zero outside x).  With col = im2col(x), a (C*R*S, P*Q) matrix per sample,
** that is y_b = W col_b, W seen as (K, C*R*S).  The other products follow:
**   conv2d backward      dW += dy_b col_b^T           dx_b = col2im(W^T dy_b)
**   transposed forward   x_b = col2im(W^T y_b) + bias (the adjoint of conv)
**   transposed backward  dy_b = W im2col(dx_b)        dW += y_b im2col(dx_b)^T
** so the transposed layer shares every kernel with the ordinary one, as in
** Dumoulin and Visin, "A guide to convolution arithmetic" (2016), sec. 4.
**
** Batching: small feature maps (4x4, 8x8) make small products, which
** OpenBLAS runs far below its peak.  So a block of nb samples is unfolded
** side by side into one col of (C*R*S, nb*P*Q), and the y side is moved to
** and from a (K, nb*P*Q) matrix ("kb" layout) by a copy; one sgemm then
** covers the whole block.  The copies cost 1/(C*R*S) of the product.
** The workspace holds col and the kb matrix: (C*R*S + K) * nb*P*Q floats,
** nb as many samples as the workspace the caller gives allows; and, at its
** end, the index map of build_map (R*S*P*Q ints), rebuilt at each call.
**
** im2col, col2im and the copies run in parallel over (sample, channel)
** pairs with OpenMP: each pair writes its own rows or its own plane, so
** col2im's sums need no atomics.  sgemm is multi-threaded by OpenBLAS.
*/
#include <string.h>

#include "cpu.h"

/* the workspace size the slots prefer: blocks of at most this many floats */
#define CONV_WS_MAX ((size_t)1 << 23) /* 32 MiB */

/* floats per sample: col (C*R*S, P*Q) and the kb slice (K, P*Q) */
static size_t per_sample(const gan_conv2d_desc *d) {
  return ((size_t)d->C * d->R * d->S + (size_t)d->K) * (size_t)d->P * d->Q;
}

/* the index map at the end of the workspace: R*S*P*Q ints (see build_map) */
static size_t map_size(const gan_conv2d_desc *d) {
  return (size_t)d->R * d->S * d->P * d->Q;
}

void conv2d_workspace(void *ctx, const gan_conv2d_desc *d, size_t *batched,
                      size_t *minimum) {
  (void)ctx;
  size_t one = per_sample(d);
  size_t nb = one ? CONV_WS_MAX / one : 1;
  if (nb < 1) nb = 1;
  if (nb > (size_t)d->B) nb = (size_t)d->B;
  *batched = nb * one + map_size(d);
  *minimum = one + map_size(d);
}

/* samples per block for a workspace of ws_n floats (>= the minimum) */
static int block_of(const gan_conv2d_desc *d, size_t ws_n) {
  size_t nb = (ws_n - map_size(d)) / per_sample(d);
  if (nb > (size_t)d->B) nb = (size_t)d->B;
  return nb < 1 ? 1 : (int)nb;
}

/* The index map: for kernel tap (r, s) and output position (p, q), the
** offset in an input plane, i*W + j with i = p*st - pad + r and
** j = q*st - pad + s, or -1 where that falls in the padding.  It is the
** same for every sample and channel, so im2col and col2im become one flat
** loop of P*Q per (sample, channel, tap) instead of P short rows of Q,
** whose bounds cost more than the copy at 4x4 and 8x8. */
static int *build_map(const gan_conv2d_desc *d, float *ws, size_t ws_n) {
  int *map = (int *)(void *)(ws + ws_n - map_size(d));
  const int P = d->P, Q = d->Q;
  for (int r = 0; r < d->R; r++)
    for (int s = 0; s < d->S; s++) {
      int *m = map + ((size_t)r * d->S + s) * P * Q;
      for (int p = 0; p < P; p++) {
        int i = p * d->stride - d->pad + r;
        for (int q = 0; q < Q; q++) {
          int j = q * d->stride - d->pad + s;
          m[p * Q + q] = i < 0 || i >= d->H || j < 0 || j >= d->W ? -1 : i * d->W + j;
        }
      }
    }
  return map;
}

/* col (C*R*S, nb*P*Q) = im2col of samples x (nb, C, H, W) */
static void im2col(float *col, const float *x, const int *map, int nb,
                   const gan_conv2d_desc *d) {
  const int C = d->C, RS = d->R * d->S;
  const size_t PQ = (size_t)d->P * d->Q, ld = (size_t)nb * PQ, HW = (size_t)d->H * d->W;
  GAN_OMP((long long)nb * C * RS * PQ > GAN_OMP_MIN, "omp parallel for collapse(2)",
  for (int b = 0; b < nb; b++) {
    for (int c = 0; c < C; c++) {
      const float *xc = x + ((size_t)b * C + c) * HW;
      for (int rs = 0; rs < RS; rs++) {
        float *dst = col + ((size_t)c * RS + rs) * ld + (size_t)b * PQ;
        const int *m = map + (size_t)rs * PQ;
        for (size_t i = 0; i < PQ; i++) dst[i] = m[i] >= 0 ? xc[m[i]] : 0.0f;
      }
    }
  });
}

/* x (nb, C, H, W) = col2im(col): the sum of every col entry into the pixel
** it was copied from; each plane starts at bias[c] (0 if bias is NULL).
** Within one tap the map is one-to-one, so the sums never collide. */
static void col2im(float *x, const float *col, const float *bias, const int *map,
                   int nb, const gan_conv2d_desc *d) {
  const int C = d->C, RS = d->R * d->S;
  const size_t PQ = (size_t)d->P * d->Q, ld = (size_t)nb * PQ, HW = (size_t)d->H * d->W;
  GAN_OMP((long long)nb * C * RS * PQ > GAN_OMP_MIN, "omp parallel for collapse(2)",
  for (int b = 0; b < nb; b++) {
    for (int c = 0; c < C; c++) {
      float *xc = x + ((size_t)b * C + c) * HW;
      float b0 = bias ? bias[c] : 0.0f;
      for (size_t i = 0; i < HW; i++) xc[i] = b0;
      for (int rs = 0; rs < RS; rs++) {
        const float *src = col + ((size_t)c * RS + rs) * ld + (size_t)b * PQ;
        const int *m = map + (size_t)rs * PQ;
        for (size_t i = 0; i < PQ; i++)
          if (m[i] >= 0) xc[m[i]] += src[i];
      }
    }
  });
}

/* kb (K, nb*P*Q) = y (nb, K, P*Q) */
static void to_kb(float *kb, const float *y, int nb, const gan_conv2d_desc *d) {
  const int K = d->K;
  const size_t PQ = (size_t)d->P * d->Q, ld = (size_t)nb * PQ;
  GAN_OMP((long long)nb * K * PQ > GAN_OMP_MIN, "omp parallel for collapse(2)",
  for (int k = 0; k < K; k++)
    for (int b = 0; b < nb; b++)
      memcpy(kb + k * ld + b * PQ, y + ((size_t)b * K + k) * PQ, PQ * sizeof(float)););
}

/* y (nb, K, P*Q) = kb (K, nb*P*Q) + bias[k] (none if NULL) */
static void from_kb(float *y, const float *kb, const float *bias, int nb,
                    const gan_conv2d_desc *d) {
  const int K = d->K;
  const size_t PQ = (size_t)d->P * d->Q, ld = (size_t)nb * PQ;
  GAN_OMP((long long)nb * K * PQ > GAN_OMP_MIN, "omp parallel for collapse(2)",
  for (int b = 0; b < nb; b++) {
    for (int k = 0; k < K; k++) {
      float *dst = y + ((size_t)b * K + k) * PQ;
      const float *src = kb + k * ld + b * PQ;
      if (bias) {
        const float b0 = bias[k];
        for (size_t i = 0; i < PQ; i++) dst[i] = src[i] + b0;
      } else {
        memcpy(dst, src, PQ * sizeof(float));
      }
    }
  });
}

/* acc[j] += the sum of row j of m (rows x n), in double */
static void add_row_sums(float *acc, const float *m, int rows, size_t n) {
  for (int j = 0; j < rows; j++) {
    double s = 0.0;
    const float *row = m + (size_t)j * n;
    for (size_t i = 0; i < n; i++) s += row[i];
    acc[j] += (float)s;
  }
}

/* acc[c] += the sum of plane c of x (nb, C, HW) over the samples */
static void add_plane_sums(float *acc, const float *x, int nb, int C, size_t HW) {
  for (int c = 0; c < C; c++) {
    double s = 0.0;
    for (int b = 0; b < nb; b++) {
      const float *xc = x + ((size_t)b * C + c) * HW;
      for (size_t i = 0; i < HW; i++) s += xc[i];
    }
    acc[c] += (float)s;
  }
}

void conv2d_forward(void *ctx, float *y, const float *x, const float *weight,
                    const float *bias, const gan_conv2d_desc *d, float *ws,
                    size_t ws_n) {
  const int CRS = d->C * d->R * d->S, nbmax = block_of(d, ws_n);
  const int *map = build_map(d, ws, ws_n);
  const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->K * d->P * d->Q;
  for (int b0 = 0; b0 < d->B; b0 += nbmax) {
    int nb = d->B - b0 < nbmax ? d->B - b0 : nbmax;
    int ld = nb * d->P * d->Q;
    float *col = ws, *kb = ws + (size_t)CRS * ld;
    im2col(col, x + b0 * xs, map, nb, d);
    matmul(ctx, 0, 0, d->K, ld, CRS, 1.0f, weight, col, 0.0f, kb); /* W col */
    from_kb(y + b0 * ys, kb, bias, nb, d);
  }
}

void conv2d_backward(void *ctx, float *dx, float *dweight, float *dbias,
                     const float *dy, const float *x, const float *weight,
                     const gan_conv2d_desc *d, float *ws, size_t ws_n) {
  const int CRS = d->C * d->R * d->S, nbmax = block_of(d, ws_n);
  const int *map = build_map(d, ws, ws_n);
  const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->K * d->P * d->Q;
  for (int b0 = 0; b0 < d->B; b0 += nbmax) {
    int nb = d->B - b0 < nbmax ? d->B - b0 : nbmax;
    int ld = nb * d->P * d->Q;
    float *col = ws, *kb = ws + (size_t)CRS * ld;
    to_kb(kb, dy + b0 * ys, nb, d);
    if (dbias) add_row_sums(dbias, kb, d->K, (size_t)ld);
    if (dweight) {
      im2col(col, x + b0 * xs, map, nb, d);
      matmul(ctx, 0, 1, d->K, CRS, ld, 1.0f, kb, col, 1.0f, dweight); /* dy col^T */
    }
    if (dx) {
      matmul(ctx, 1, 0, CRS, ld, d->K, 1.0f, weight, kb, 0.0f, col); /* W^T dy */
      col2im(dx + b0 * xs, col, NULL, map, nb, d);
    }
  }
}

void conv_transpose2d_forward(void *ctx, float *x, const float *y,
                              const float *weight, const float *bias,
                              const gan_conv2d_desc *d, float *ws, size_t ws_n) {
  const int CRS = d->C * d->R * d->S, nbmax = block_of(d, ws_n);
  const int *map = build_map(d, ws, ws_n);
  const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->K * d->P * d->Q;
  for (int b0 = 0; b0 < d->B; b0 += nbmax) {
    int nb = d->B - b0 < nbmax ? d->B - b0 : nbmax;
    int ld = nb * d->P * d->Q;
    float *col = ws, *kb = ws + (size_t)CRS * ld;
    to_kb(kb, y + b0 * ys, nb, d);
    matmul(ctx, 1, 0, CRS, ld, d->K, 1.0f, weight, kb, 0.0f, col); /* W^T y */
    col2im(x + b0 * xs, col, bias, map, nb, d);
  }
}

void conv_transpose2d_backward(void *ctx, float *dy, float *dweight,
                               float *dbias, const float *dx, const float *y,
                               const float *weight, const gan_conv2d_desc *d,
                               float *ws, size_t ws_n) {
  const int CRS = d->C * d->R * d->S, nbmax = block_of(d, ws_n);
  const int *map = build_map(d, ws, ws_n);
  const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->K * d->P * d->Q;
  for (int b0 = 0; b0 < d->B; b0 += nbmax) {
    int nb = d->B - b0 < nbmax ? d->B - b0 : nbmax;
    int ld = nb * d->P * d->Q;
    float *col = ws, *kb = ws + (size_t)CRS * ld;
    if (dbias) add_plane_sums(dbias, dx + b0 * xs, nb, d->C, (size_t)d->H * d->W);
    if (!dweight && !dy) continue;
    im2col(col, dx + b0 * xs, map, nb, d);
    if (dweight) {
      to_kb(kb, y + b0 * ys, nb, d);
      matmul(ctx, 0, 1, d->K, CRS, ld, 1.0f, kb, col, 1.0f, dweight); /* y col^T */
    }
    if (dy) {
      matmul(ctx, 0, 0, d->K, ld, CRS, 1.0f, weight, col, 0.0f, kb); /* W col */
      from_kb(dy + b0 * ys, kb, NULL, nb, d);
    }
  }
}
