/*
** matmul.cu -- row-major products through column-major cuBLAS.
**
** cuBLAS is column-major; a row-major (r, c) matrix is, byte for byte, the
** column-major (c, r) matrix X^T.  So the row-major C = op(A) op(B) is
** computed as the column-major C^T = op(B)^T op(A)^T: swap the operands,
** keep each one's transpose flag, and swap M and N (llm.c does the same).
**
** Precision: plain fp32 (CUBLAS_DEFAULT_MATH) unless gan_cuda_set_precision
** ("tf32") switched the handle to TF32 tensor cores.
*/
#include "common.cuh"

/* C = beta * C for the degenerate k == 0 product (C (m, n) column-major,
** leading dimension ldc); beta == 0 writes zeros without reading C. */
__global__ void scale_matrix_kernel(float *C, int m, int n, int ldc, float beta) {
  size_t total = (size_t)m * n;
  GRID_LOOP(i, total) {
    size_t col = i / m, row = i - col * m;
    float *p = C + col * ldc + row;
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

void cuda_gemm(cuda_ctx *c, cublasOperation_t opa, cublasOperation_t opb, int m, int n,
               int k, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) { /* op(A) op(B) is zero: C = beta * C, which BLAS might skip */
    if (beta == 1.0f) return;
    size_t total = (size_t)m * n;
    scale_matrix_kernel<<<ew_blocks(total), EW_THREADS, 0, c->stream>>>(C, m, n, ldc,
                                                                       beta);
    launch_ok(c, "scale_matrix_kernel");
    return;
  }
  blas_ok(c,
          c->cublas->sgemm(c->blas, opa, opb, m, n, k, &alpha, A, lda, B, ldb, &beta, C,
                           ldc),
          "cublasSgemm");
}

/* Row-major C (M,N) = alpha * op(A) op(B) + beta * C, where op(A) is (M,K)
** and op(B) is (K,N): A is stored (K,M) when ta, else (M,K); B is stored
** (N,K) when tb, else (K,N). */
void cuda_matmul(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
                 const float *A, const float *B, float beta, float *C) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  int lda = ta ? M : K; /* row length of A as stored */
  int ldb = tb ? K : N;
  cuda_gemm(c, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
            alpha, B, ldb > 0 ? ldb : 1, A, lda > 0 ? lda : 1, beta, C, N);
}
