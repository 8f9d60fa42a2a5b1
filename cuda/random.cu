/*
** random.cu -- randn, rand and dropout_forward: counter-based draws that
** match the CPU backend's (rng.cuh says how far: uniforms and dropout masks
** bit for bit, normals to an ulp or two of libm).
**
** Each thread takes one Philox block and writes the elements that block
** feeds: 4 uniforms (elements 4q .. 4q+3) or 2 normals (2q, 2q+1).
*/
#include "common.cuh"
#include "rng.cuh"

/* x[i] = mean + std * N(0,1) draw i */
__global__ void randn_kernel(float *x, size_t n, uint64_t key, float mean, float std) {
  size_t nblk = (n + 1) / 2;
  GRID_LOOP(q, nblk) {
    float z0, z1;
    normal_pair(key, q, &z0, &z1);
    size_t i = 2 * q;
    x[i] = __fadd_rn(mean, __fmul_rn(std, z0));
    if (i + 1 < n) x[i + 1] = __fadd_rn(mean, __fmul_rn(std, z1));
  }
}

/* x[i] = lo + (hi - lo) * U[0,1) draw i */
__global__ void rand_kernel(float *x, size_t n, uint64_t key, float lo, float span) {
  size_t nblk = (n + 3) / 4;
  GRID_LOOP(q, nblk) {
    uint32_t w[4];
    philox4x32_10(key, q, w[0], w[1], w[2], w[3]);
    size_t i = 4 * q;
#pragma unroll
    for (int k = 0; k < 4; k++) /* unrolled: w stays in registers */
      if (i + k < n) x[i + k] = __fadd_rn(lo, __fmul_rn(span, u01(w[k])));
  }
}

/* Inverted dropout, the CPU's rule: keep element i iff its uniform draw is
** >= p; mask = keep ? 1/(1-p) : 0 (the scale computed once, on the host,
** as the CPU does); y = x * mask. */
__global__ void dropout_kernel(float *y, float *mask, const float *x, size_t n, float p,
                               float scale, uint64_t key) {
  size_t nblk = (n + 3) / 4;
  GRID_LOOP(q, nblk) {
    uint32_t w[4];
    philox4x32_10(key, q, w[0], w[1], w[2], w[3]);
    size_t i = 4 * q;
#pragma unroll
    for (int k = 0; k < 4; k++) {
      if (i + k < n) {
        float m = u01(w[k]) >= p ? scale : 0.0f;
        if (mask != NULL) mask[i + k] = m;
        y[i + k] = x[i + k] * m;
      }
    }
  }
}

void cuda_randn(void *ctx, float *x, size_t n, uint64_t key, float mean, float std) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  randn_kernel<<<ew_blocks((n + 1) / 2), EW_THREADS, 0, c->stream>>>(x, n, key, mean,
                                                                      std);
  launch_ok(c, "randn_kernel");
}

void cuda_rand(void *ctx, float *x, size_t n, uint64_t key, float lo, float hi) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  rand_kernel<<<ew_blocks((n + 3) / 4), EW_THREADS, 0, c->stream>>>(x, n, key, lo,
                                                                     hi - lo);
  launch_ok(c, "rand_kernel");
}

void cuda_dropout_forward(void *ctx, float *y, float *mask, const float *x, size_t n,
                          float p, uint64_t key) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; /* core/activation.c's */
  dropout_kernel<<<ew_blocks((n + 3) / 4), EW_THREADS, 0, c->stream>>>(y, mask, x, n, p,
                                                                        scale, key);
  launch_ok(c, "dropout_kernel");
}
