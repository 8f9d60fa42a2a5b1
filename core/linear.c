/*
** linear.c -- dense layers on the CPU: every product goes through OpenBLAS.
**
** The weight is (OC, C), row-major, as in PyTorch.  No operand is ever
** copied or transposed in memory: the transposes are sgemm's flags.
**   forward   out  = inp @ W^T + b       sgemm(N, T), bias pre-broadcast, beta 1
**   backward  dinp = dout @ W            sgemm(N, N)
**             dW  += dout^T @ inp        sgemm(T, N), beta 1 (accumulates)
**             db  += column sums of dout
*/
#include <cblas.h>
#include <string.h>

#include "cpu.h"

void matmul(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
            const float *A, const float *B, float beta, float *C) {
  (void)ctx;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, ta ? M : K,
              B, tb ? K : N, beta, C, N);
}

void linear_forward(void *ctx, float *out, const float *inp,
                    const float *weight, const float *bias, int B, int C,
                    int OC) {
  float beta = 0.0f;
  if (bias) {
    /* Writing the bias first lets sgemm add the product in the same pass
    ** over 'out' (beta = 1) instead of a second pass after it. */
    for (int b = 0; b < B; b++)
      memcpy(out + (size_t)b * OC, bias, (size_t)OC * sizeof(float));
    beta = 1.0f;
  }
  matmul(ctx, 0, 1, B, OC, C, 1.0f, inp, weight, beta, out);
}

void linear_backward(void *ctx, float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     int B, int C, int OC, int overwrite) {
  if (dinp) matmul(ctx, 0, 0, B, C, OC, 1.0f, dout, weight, 0.0f, dinp);
  if (dweight)
    matmul(ctx, 1, 0, OC, C, B, 1.0f, dout, inp, overwrite ? 0.0f : 1.0f, dweight);
  if (dbias) {
    if (overwrite) memset(dbias, 0, (size_t)OC * sizeof(float));
    for (int b = 0; b < B; b++) {
      const float *row = dout + (size_t)b * OC;
      for (int o = 0; o < OC; o++) dbias[o] += row[o];
    }
  }
}
