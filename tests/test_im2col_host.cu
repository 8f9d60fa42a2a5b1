/*
** test_im2col_host.cu -- the index arithmetic of the CUDA convolutions
** (cuda/im2col.cuh), run on the CPU: no GPU needed.
**
** The kernels of cuda/im2col.cu compute each element with these
** __host__ __device__ functions, so checking them here checks the GPU's
** index arithmetic on every machine that builds CUDA.  Each function is
** compared, element by element and bit for bit, with the layouts written
** out as plain loops (core/conv.c's definitions), on shapes with padding,
** strides, rectangular kernels and unread rows, for blocks of nb samples
** (the functions never read d.B: a block is its own batch).  Exit status:
** 0 all passed, 1 a check failed.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "im2col.cuh"

static int npass, nfail;

static void check(int ok, const char *what, const gan_conv2d_desc &d, int nb, size_t e) {
  if (ok) {
    npass++;
    return;
  }
  if (nfail++ < 20)
    printf("FAIL %s: element %zu, nb %d, C %d %dx%d K %d %dx%d kernel %dx%d stride %d "
           "pad %d\n", what, e, nb, d.C, d.H, d.W, d.K, d.P, d.Q, d.R, d.S, d.stride,
           d.pad);
}

static float *noise(size_t n, unsigned seed) {
  float *v = (float *)malloc((n ? n : 1) * sizeof *v);
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
  }
  return v;
}

static void test_shape(int C, int H, int W, int K, int R, int S, int stride, int pad, int nb) {
  gan_conv2d_desc d = {nb, C, H, W, K, (H + 2 * pad - R) / stride + 1,
                       (W + 2 * pad - S) / stride + 1, R, S, stride, pad};
  const size_t PQ = (size_t)d.P * d.Q, ld = (size_t)nb * PQ, RS = (size_t)R * S;
  const size_t nx = (size_t)nb * C * H * W, ncol = (size_t)C * RS * ld;
  const size_t ny = (size_t)nb * K * PQ;
  float *x = noise(nx, 1), *col = noise(ncol, 2), *y = noise(ny, 3), *kb = noise(ny, 4);
  float *bias_c = noise((size_t)C, 5), *bias_k = noise((size_t)K, 6);
  float *want = (float *)calloc(ncol > nx ? ncol : nx, sizeof(float));

  /* im2col: col[(c*R*S + r*S + s) * ld + b*PQ + p*Q + q] */
  for (int b = 0; b < nb; b++)
    for (int c = 0; c < C; c++)
      for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++)
          for (int p = 0; p < d.P; p++)
            for (int q = 0; q < d.Q; q++) {
              int i = p * stride - pad + r, j = q * stride - pad + s;
              want[((size_t)c * RS + (size_t)r * S + s) * ld + (size_t)b * PQ +
                   (size_t)p * d.Q + q] =
                  i < 0 || i >= H || j < 0 || j >= W
                      ? 0.0f
                      : x[(((size_t)b * C + c) * H + i) * W + j];
            }
  for (size_t e = 0; e < ncol; e++)
    check(im2col_at(x, d, nb, e) == want[e], "im2col_at", d, nb, e);

  /* col2im: every col entry added into the pixel it came from, taps in
  ** increasing (r, s) order, each plane starting at its bias */
  for (int pass = 0; pass < 2; pass++) {
    const float *bias = pass ? bias_c : NULL;
    for (int b = 0; b < nb; b++)
      for (int c = 0; c < C; c++) {
        float *plane = want + ((size_t)b * C + c) * H * W;
        for (int k = 0; k < H * W; k++) plane[k] = bias ? bias[c] : 0.0f;
        for (int r = 0; r < R; r++)
          for (int s = 0; s < S; s++)
            for (int p = 0; p < d.P; p++)
              for (int q = 0; q < d.Q; q++) {
                int i = p * stride - pad + r, j = q * stride - pad + s;
                if (i < 0 || i >= H || j < 0 || j >= W) continue;
                plane[i * W + j] += col[((size_t)c * RS + (size_t)r * S + s) * ld +
                                        (size_t)b * PQ + (size_t)p * d.Q + q];
              }
      }
    for (size_t e = 0; e < nx; e++)
      check(col2im_at(col, bias, d, nb, e) == want[e], pass ? "col2im_at with bias"
                                                             : "col2im_at", d, nb, e);
  }

  /* kb (K, nb*PQ) <-> y (nb, K, PQ) */
  for (int b = 0; b < nb; b++)
    for (int k = 0; k < K; k++)
      for (size_t i = 0; i < PQ; i++) {
        size_t ky = ((size_t)b * K + k) * PQ + i, kk = (size_t)k * ld + (size_t)b * PQ + i;
        check(to_kb_at(y, d, nb, kk) == y[ky], "to_kb_at", d, nb, kk);
        check(from_kb_at(kb, NULL, d, nb, ky) == kb[kk], "from_kb_at", d, nb, ky);
        check(from_kb_at(kb, bias_k, d, nb, ky) == kb[kk] + bias_k[k], "from_kb_at with bias",
              d, nb, ky);
      }
  free(x);
  free(col);
  free(y);
  free(kb);
  free(bias_c);
  free(bias_k);
  free(want);
}

int main(void) {
  test_shape(2, 7, 5, 4, 3, 3, 1, 1, 3);   /* odd sizes, same padding */
  test_shape(3, 16, 16, 8, 4, 4, 2, 1, 4); /* a DCGAN block */
  test_shape(8, 4, 4, 1, 4, 4, 1, 0, 2);   /* D's last layer, G's first */
  test_shape(2, 6, 6, 2, 3, 3, 2, 1, 3);   /* transposed with output padding */
  test_shape(3, 8, 7, 4, 3, 3, 2, 0, 2);   /* row 7 never read */
  test_shape(3, 9, 8, 5, 3, 2, 1, 1, 2);   /* a 3x2 kernel */
  test_shape(1, 1, 1, 1, 1, 1, 1, 0, 1);   /* one pixel */
  test_shape(2, 5, 5, 3, 3, 3, 3, 2, 1);   /* stride 3, padding 2 */
  printf("test_im2col_host: %d passed, %d failed\n", npass, nfail);
  return nfail == 0 ? 0 : 1;
}
