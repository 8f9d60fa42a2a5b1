/*
** linear.cu -- the dense layer: out = inp @ weight^T + bias, and its
** gradients (llm.c's matmul_forward / matmul_backward, without the time
** dimension).
**
** Row-major shapes: inp (B, C), weight (OC, C), bias (OC), out (B, OC).
** In cuBLAS's column-major terms (matmul.cu) these are inp^T (C x B),
** weight^T (C x OC), out^T (OC x B), so:
**   forward   out^T (OC x B)  = (weight^T)^T (OC x C) . inp^T (C x B)
**   dinp      dinp^T (C x B)  = weight^T (C x OC)   . dout^T (OC x B)
**   dweight  dweight^T (C x OC) += inp^T (C x B)    . dout (B x OC)
**   dbias     dbias += column sums of dout (a kernel)
** Input gradients are overwritten (beta = 0), parameter gradients
** accumulate (beta = 1); a NULL gradient skips its product.
**
** With the activation after it (linear_act_forward), the product writes
** out with beta = 0 and one kernel then adds the bias and applies the
** activation: out += bias, y = act(out).  Alone, the bias is broadcast
** into out and the product adds to it (beta = 1), and the activation is
** another kernel: one launch and one pass over out more.  Backward, the
** activation's gradient dz = dy * act'(z) is summed into dbias by the
** kernel that writes it (linear_act_backward): the column sums' launch and
** their read of dz are saved.
*/
#include "common.cuh"

/* out row b = bias, so that the product can add into it with beta = 1 */
__global__ void bias_broadcast_kernel(float *out, const float *bias, size_t total,
                                      int OC) {
  GRID_LOOP(i, total) out[i] = bias[i % (size_t)OC];
}

/* out[b, o] += bias[o] (none if NULL); y = act(out) */
__global__ void bias_act_kernel(float *out, float *y, const float *bias, size_t total,
                                int OC, int act, float alpha) {
  GRID_LOOP(i, total) {
    const float v = bias != NULL ? out[i] + bias[i % (size_t)OC] : out[i];
    out[i] = v;
    y[i] = act_value(act, alpha, v);
  }
}

/* dbias[o] += sum over b of v[b, o] (= with 'overwrite'), where v is dy
** itself (dz NULL: the column sums of linear_backward) or dz = dy * act'(z),
** written as act_backward_kernel writes it (linear_act_backward: one launch
** and one read of dz fewer).  A block covers 32 columns (one coalesced row
** segment per warp) and 8 row phases, added up in shared memory in a fixed
** order, so both uses add the same values in the same order. */
#define CS_COLS 32
#define CS_ROWS 8
__global__ void colsum_kernel(float *dbias, float *dz, const float *dy, const float *z,
                              const float *y, int act, float alpha, int B, int OC,
                              int overwrite) {
  __shared__ double part[CS_ROWS][CS_COLS + 1];
  const int o = blockIdx.x * CS_COLS + threadIdx.x;
  double s = 0.0;
  if (o < OC)
    for (int b = threadIdx.y; b < B; b += CS_ROWS) {
      const size_t i = (size_t)b * OC + o;
      const float v = dz == NULL ? dy[i] : act_grad(act, alpha, dy[i], z, y, i);
      if (dz != NULL) dz[i] = v;
      s += v;
    }
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && o < OC) {
    double t = 0.0;
    for (int r = 0; r < CS_ROWS; r++) t += part[r][threadIdx.x];
    dbias[o] = overwrite ? (float)t : (float)((double)dbias[o] + t);
  }
}

/* launch_ok's answer */
static int colsum(cuda_ctx *c, float *dbias, float *dz, const float *dy, const float *z,
                  const float *y, gan_act act, float alpha, int B, int OC, int overwrite) {
  dim3 block(CS_COLS, CS_ROWS);
  colsum_kernel<<<(OC + CS_COLS - 1) / CS_COLS, block, 0, c->stream>>>(
      dbias, dz, dy, z, y, (int)act, alpha, B, OC, overwrite);
  return launch_ok(c, "colsum_kernel");
}

void cuda_linear_forward(void *ctx, float *out /* (B, OC) */,
                         const float *inp /* (B, C) */,
                         const float *weight /* (OC, C) */,
                         const float *bias /* (OC) or NULL */, int B, int C, int OC) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (B <= 0 || OC <= 0) return;
  float beta = 0.0f;
  if (bias != NULL) {
    size_t total = (size_t)B * OC;
    bias_broadcast_kernel<<<ew_blocks(total), EW_THREADS, 0, c->stream>>>(out, bias,
                                                                          total, OC);
    if (!launch_ok(c, "bias_broadcast_kernel")) return;
    beta = 1.0f;
  }
  cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, OC, B, C, 1.0f, weight, C > 0 ? C : 1, inp,
            C > 0 ? C : 1, beta, out, OC);
}

void cuda_linear_act_forward(void *ctx, float *out /* (B, OC) */, float *y /* (B, OC) */,
                             const float *inp /* (B, C) */,
                             const float *weight /* (OC, C) */,
                             const float *bias /* (OC) or NULL */, gan_act act,
                             float alpha, int B, int C, int OC) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (B <= 0 || OC <= 0) return;
  cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, OC, B, C, 1.0f, weight, C > 0 ? C : 1, inp,
            C > 0 ? C : 1, 0.0f, out, OC);
  const size_t total = (size_t)B * OC;
  bias_act_kernel<<<ew_blocks(total), EW_THREADS, 0, c->stream>>>(out, y, bias, total, OC,
                                                                  (int)act, alpha);
  launch_ok(c, "bias_act_kernel");
}

void cuda_linear_backward(void *ctx, float *dinp /* (B, C) or NULL */,
                          float *dweight /* (OC, C) or NULL */,
                          float *dbias /* (OC) or NULL */,
                          const float *dout /* (B, OC) */,
                          const float *inp /* (B, C) */,
                          const float *weight /* (OC, C) */, int B, int C, int OC,
                          int overwrite) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (dinp != NULL && B > 0 && C > 0) /* dinp = dout @ weight */
    cuda_gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, C, B, OC, 1.0f, weight, C, dout,
              OC > 0 ? OC : 1, 0.0f, dinp, C);
  if (dweight != NULL && OC > 0 && C > 0) /* dweight (+)= dout^T @ inp */
    cuda_gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, B, 1.0f, inp, C, dout, OC,
              overwrite ? 0.0f : 1.0f, dweight, C);
  if (dbias != NULL && OC > 0 && B > 0)
    colsum(c, dbias, NULL, dout, NULL, NULL, GAN_ACT_IDENTITY, 0.0f, B, OC, overwrite);
}

void cuda_linear_act_backward(void *ctx, gan_act act, float alpha, float *dz /* (B, OC) */,
                              const float *dy, const float *z, const float *y,
                              float *dinp /* (B, C) or NULL */,
                              float *dweight /* (OC, C) or NULL */,
                              float *dbias /* (OC) or NULL */, const float *inp,
                              const float *weight, int B, int C, int OC, int overwrite) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (B <= 0 || OC <= 0) return; /* as linear_act_forward: the core passes none */
  if (dbias == NULL)
    cuda_act_backward(ctx, act, alpha, dz, dy, z, y, (size_t)B * OC);
  else if (!colsum(c, dbias, dz, dy, z, y, act, alpha, B, OC, overwrite))
    return;
  cuda_linear_backward(ctx, dinp, dweight, NULL, dz, inp, weight, B, C, OC, overwrite);
}
