/*
** elementwise.cu -- fill, axpby, mul, sum, sum_to and gather_rows.
**
** Single-pass, grid-stride kernels (64-bit indices: the seed model's
** tensors pass 2^31 bytes).  The sum is reduced on the device in double,
** in a fixed order (block partials, then one block over the partials), so
** it is deterministic from run to run; only the double crosses to the host.
*/
#include "common.cuh"

/* --- fill, axpby, mul ------------------------------------------------------ */

__global__ void fill_kernel(float *x, float value, size_t n) {
  GRID_LOOP(i, n) x[i] = value;
}

/* y = a*x + b*y; b == 0 does not read y (BLAS's rule: y may hold NaN) */
__global__ void axpby_kernel(float *y, float a, const float *x, float b, size_t n) {
  if (b == 0.0f) {
    GRID_LOOP(i, n) y[i] = a * x[i];
  } else {
    GRID_LOOP(i, n) y[i] = a * x[i] + b * y[i];
  }
}

__global__ void mul_kernel(float *y, const float *a, const float *b, size_t n) {
  GRID_LOOP(i, n) y[i] = a[i] * b[i];
}

void cuda_fill(void *ctx, float *x, float value, size_t n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  fill_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(x, value, n);
  launch_ok(c, "fill_kernel");
}

void cuda_axpby(void *ctx, float *y, float a, const float *x, float b, size_t n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  axpby_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(y, a, x, b, n);
  launch_ok(c, "axpby_kernel");
}

void cuda_mul(void *ctx, float *y, const float *a, const float *b, size_t n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  mul_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(y, a, b, n);
  launch_ok(c, "mul_kernel");
}

/* --- reductions ------------------------------------------------------------- */

__global__ void sum_partial_kernel(const float *x, size_t n, double *part) {
  double s = 0.0;
  GRID_LOOP(i, n) s += (double)x[i];
  s = block_sum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* One block: the partials in order, then scale. */
__global__ void reduce_final_kernel(double *scratch, int nblocks, double scale,
                                    float *out_f) {
  double s = 0.0;
  for (int i = threadIdx.x; i < nblocks; i += blockDim.x) s += scratch[i];
  s = block_sum(s);
  if (threadIdx.x == 0) {
    s *= scale;
    scratch[REDUCE_MAX_BLOCKS] = s;
    if (out_f != NULL) *out_f = (float)s;
  }
}

int reduce_finish(cuda_ctx *c, int nblocks, double scale, float *out_f) {
  reduce_final_kernel<<<1, REDUCE_THREADS, 0, c->stream>>>(c->scratch, nblocks, scale,
                                                          out_f);
  return launch_ok(c, "reduce_final_kernel");
}

gan_status cuda_sum(void *ctx, const float *x, size_t n, double *out) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  double result = 0.0;
  cudaError_t e = cudaSuccess;
  if (n > 0) {
    int nb = reduce_blocks(n);
    sum_partial_kernel<<<nb, REDUCE_THREADS, 0, c->stream>>>(x, n, c->scratch);
    if (launch_ok(c, "sum_partial_kernel") && reduce_finish(c, nb, 1.0, NULL))
      e = cudaMemcpyAsync(&result, c->scratch + REDUCE_MAX_BLOCKS, sizeof result,
                          cudaMemcpyDeviceToHost, c->stream);
  }
  cudaError_t es = cudaStreamSynchronize(c->stream);
  gan_status s = cuda_take_status(c);
  if (s != GAN_OK) {
    (void)cudaGetLastError();
    return s;
  }
  if (e != cudaSuccess) return cuda_status(e, "cudaMemcpyAsync (sum to host)");
  if (es != cudaSuccess) return cuda_status(es, "cudaStreamSynchronize");
  *out = result;
  return GAN_OK;
}

/* The same sum left on the device, scaled: t:mean(out) and t:sum(out). */
void cuda_sum_to(void *ctx, float *out, const float *x, size_t n, double scale) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) {
    cuda_fill(ctx, out, (float)(scale * 0.0), 1); /* NaN for the mean of nothing */
    return;
  }
  int nb = reduce_blocks(n);
  sum_partial_kernel<<<nb, REDUCE_THREADS, 0, c->stream>>>(x, n, c->scratch);
  if (launch_ok(c, "sum_partial_kernel")) reduce_finish(c, nb, scale, out);
}

/* --- gather_rows -------------------------------------------------------------- */

__global__ void gather_rows_kernel(float *dst, const float *src, const int64_t *idx,
                                   size_t total, size_t cols) {
  GRID_LOOP(i, total) {
    size_t r = i / cols, k = i - r * cols;
    dst[i] = src[(size_t)idx[r] * cols + k];
  }
}

/* The indices go to a device buffer kept in the context (cuda_pool_grow),
** through cuda_upload: the only host-to-device traffic of the op, and no
** wait.  Reusing the buffer at the next call is safe: that upload is queued
** after this kernel. */
void cuda_gather_rows(void *ctx, float *dst, const float *src, const int64_t *idx,
                      int64_t nrows, int64_t cols) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (nrows <= 0 || cols <= 0) return;
  const size_t n = (size_t)nrows < 1024 ? 1024 : (size_t)nrows;
  if (!cuda_pool_grow(c, &c->idx, &c->idx_bytes, n * sizeof(int64_t), "gather_rows"))
    return;
  if (!cuda_upload(c, c->idx, idx, (size_t)nrows * sizeof(int64_t), "gather_rows indices"))
    return;
  size_t total = (size_t)nrows * (size_t)cols;
  gather_rows_kernel<<<ew_blocks(total), EW_THREADS, 0, c->stream>>>(
      dst, src, (const int64_t *)c->idx, total, (size_t)cols);
  launch_ok(c, "gather_rows_kernel");
}
