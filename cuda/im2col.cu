/*
** im2col.cu -- the convolutions without cuDNN: core/conv.c's algorithm on
** the GPU, for machines where cuDNN cannot be loaded (conv.cu chooses).
**
** A block of nb samples is unfolded into col (C*R*S, nb*P*Q), the y side
** moved to and from kb (K, nb*P*Q), and one cuBLAS product covers the
** block (core/conv.c explains the layouts and the products).  It gives
** the three operations of one convolution -- forward, backward data,
** backward filter -- of which conv.cu composes the four slots, as it does
** with cuDNN's.  (core/conv.c shares an unfolding between the two
** products of one backward slot; here each operation unfolds its own: one
** more pass of memory, on the path that runs only without cuDNN.)
** Each of the four data movements is one kernel of one thread per output
** element, computed by the __host__ __device__ functions of im2col.cuh,
** which tests/test_im2col_host.cu checks on the CPU.  col2im is a gather
** (each pixel sums its taps), so no atomics and a fixed order.
**
** The workspace is the context's (col_ws): blocks of at most col_ws_max
** floats (256 MiB unless gan_cuda_set_conv_workspace says otherwise),
** allocated at the first convolution that needs more and kept, so a
** repeated shape allocates nothing (gan_cuda_empty_cache returns it).
** Biases are added by from_kb and col2im; their gradients are conv.cu's.
*/
#include <limits.h>
#include "common.cuh"
#include "im2col.cuh"


__global__ void im2col_kernel(float *col, const float *x, gan_conv2d_desc d, int nb,
                              size_t n) {
  GRID_LOOP(e, n) col[e] = im2col_at(x, d, nb, e);
}

__global__ void col2im_kernel(float *x, const float *col, const float *bias,
                              gan_conv2d_desc d, int nb, size_t n) {
  GRID_LOOP(e, n) x[e] = col2im_at(col, bias, d, nb, e);
}

__global__ void to_kb_kernel(float *kb, const float *y, gan_conv2d_desc d, int nb,
                             size_t n) {
  GRID_LOOP(e, n) kb[e] = to_kb_at(y, d, nb, e);
}

__global__ void from_kb_kernel(float *y, const float *kb, const float *bias,
                               gan_conv2d_desc d, int nb, size_t n) {
  GRID_LOOP(e, n) y[e] = from_kb_at(kb, bias, d, nb, e);
}

/* The launches; each records a failed launch in the context. */
static void im2col(cuda_ctx *c, float *col, const float *x, const gan_conv2d_desc *d,
                   int nb) {
  size_t n = (size_t)d->C * d->R * d->S * nb * d->P * d->Q;
  im2col_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(col, x, *d, nb, n);
  launch_ok(c, "im2col_kernel");
}

static void col2im(cuda_ctx *c, float *x, const float *col, const float *bias,
                   const gan_conv2d_desc *d, int nb) {
  size_t n = (size_t)nb * d->C * d->H * d->W;
  col2im_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(x, col, bias, *d, nb, n);
  launch_ok(c, "col2im_kernel");
}

static void to_kb(cuda_ctx *c, float *kb, const float *y, const gan_conv2d_desc *d,
                  int nb) {
  size_t n = (size_t)nb * d->K * d->P * d->Q;
  to_kb_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(kb, y, *d, nb, n);
  launch_ok(c, "to_kb_kernel");
}

static void from_kb(cuda_ctx *c, float *y, const float *kb, const float *bias,
                    const gan_conv2d_desc *d, int nb) {
  size_t n = (size_t)nb * d->K * d->P * d->Q;
  from_kb_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(y, kb, bias, *d, nb, n);
  launch_ok(c, "from_kb_kernel");
}

/* Samples per block, with *col and *kb in the context's workspace (grown if
** needed); 0 on failure (recorded). */
static int block_of(cuda_ctx *c, const gan_conv2d_desc *d, float **col, float **kb) {
  const size_t crs = (size_t)d->C * d->R * d->S, pq = (size_t)d->P * d->Q;
  const size_t one = (crs + d->K) * pq;
  size_t nb = one ? c->col_ws_max / one : 1;
  if (nb < 1) nb = 1;
  if (nb > (size_t)d->B) nb = (size_t)d->B;
  /* the block's columns, nb*P*Q, are a product's int dimension */
  if (pq > 0 && nb * pq > (size_t)INT_MAX) nb = (size_t)INT_MAX / pq;
  if (nb < 1) nb = 1;
  /* kb starts on a 256-byte boundary, as cuBLAS's fastest kernels like */
  const size_t kb_at = (crs * nb * pq + 63) & ~(size_t)63;
  const size_t need = kb_at + (size_t)d->K * nb * pq;
  if (!cuda_pool_grow(c, &c->col_ws, &c->col_ws_bytes, need * sizeof(float),
                      "convolution workspace"))
    return 0;
  *col = (float *)c->col_ws;
  *kb = *col + kb_at;
  return (int)nb;
}

/* The three operations of one convolution (conv.cu composes the slots of
** them), block by block as core/conv.c does; each returns 0 after a
** failure (recorded). */

/* y = conv(x, w) + bias[k] (none if NULL): y_b = W im2col(x_b) */
int im2col_forward(cuda_ctx *c, const gan_conv2d_desc *d, float *y, const float *x,
                   const float *w, const float *bias) {
  float *col, *kb;
  const int nbmax = block_of(c, d, &col, &kb), CRS = d->C * d->R * d->S;
  const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->K * d->P * d->Q;
  if (nbmax == 0) return 0;
  for (int b0 = 0; b0 < d->B; b0 += nbmax) {
    const int nb = d->B - b0 < nbmax ? d->B - b0 : nbmax, ld = nb * d->P * d->Q;
    im2col(c, col, x + b0 * xs, d, nb);
    cuda_matmul(c, 0, 0, d->K, ld, CRS, 1.0f, w, col, 0.0f, kb); /* W col */
    from_kb(c, y + b0 * ys, kb, bias, d, nb);
  }
  return 1;
}

/* x = conv^T(y, w) + bias[c] (none if NULL): x_b = col2im(W^T y_b) */
int im2col_backward_data(cuda_ctx *c, const gan_conv2d_desc *d, float *x, const float *y,
                         const float *w, const float *bias) {
  float *col, *kb;
  const int nbmax = block_of(c, d, &col, &kb), CRS = d->C * d->R * d->S;
  const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->K * d->P * d->Q;
  if (nbmax == 0) return 0;
  for (int b0 = 0; b0 < d->B; b0 += nbmax) {
    const int nb = d->B - b0 < nbmax ? d->B - b0 : nbmax, ld = nb * d->P * d->Q;
    to_kb(c, kb, y + b0 * ys, d, nb);
    cuda_matmul(c, 1, 0, CRS, ld, d->K, 1.0f, w, kb, 0.0f, col); /* W^T y */
    col2im(c, x + b0 * xs, col, bias, d, nb);
  }
  return 1;
}

/* dw += the weight gradient of the convolution of x giving y:
** dW += y_b im2col(x_b)^T */
int im2col_backward_filter(cuda_ctx *c, const gan_conv2d_desc *d, float *dw,
                           const float *x, const float *y) {
  float *col, *kb;
  const int nbmax = block_of(c, d, &col, &kb), CRS = d->C * d->R * d->S;
  const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->K * d->P * d->Q;
  if (nbmax == 0) return 0;
  for (int b0 = 0; b0 < d->B; b0 += nbmax) {
    const int nb = d->B - b0 < nbmax ? d->B - b0 : nbmax, ld = nb * d->P * d->Q;
    im2col(c, col, x + b0 * xs, d, nb);
    to_kb(c, kb, y + b0 * ys, d, nb);
    cuda_matmul(c, 0, 1, d->K, CRS, ld, 1.0f, kb, col, 1.0f, dw); /* y col^T */
  }
  return 1;
}
