/*
** cpu.h -- the CPU backend's kernels, one family per file:
**   linear.c      linear_forward, linear_backward, matmul (OpenBLAS sgemm)
**   activation.c  act_forward, act_backward, dropout_forward
**   batchnorm.c   batchnorm_forward, batchnorm_backward
**   bce.c         bce_forward, bce_backward
**   adam.c        adam_step
**   cpu.c         memory, elementwise ops, random draws, the backend table
** Each has the signature and semantics of its slot in backend.h ('ctx' is
** unused on the CPU).  Loops over more than GAN_OMP_MIN elements run on all
** cores with OpenMP.
*/
#ifndef GAN_CPU_H
#define GAN_CPU_H

#include "backend.h"

#include <omp.h>

#define GAN_OMP_MIN 32768

/* GAN_OMP(cond, "omp parallel for ...", for-statement) runs the loop on all
** cores when 'cond' holds (the loop is long enough to pay for the threads)
** and there is more than one thread, and as a plain loop otherwise, without
** entering libgomp at all.  An OpenMP 'if' clause is not enough: a region
** whose 'if' is false still runs, on a team of one that libgomp mallocs and
** frees each time, and a training step must not touch the heap (.ci/run
** counts the whole process's mallocs under valgrind).  A region of two or
** more threads reuses libgomp's previous team. */
#define GAN_PAR(cond) ((cond) && omp_get_max_threads() > 1)
#define GAN_OMP(cond, pragma, ...)                                             \
  do {                                                                         \
    if (GAN_PAR(cond)) {                                                       \
      _Pragma(pragma) __VA_ARGS__                                              \
    } else {                                                                   \
      __VA_ARGS__                                                              \
    }                                                                          \
  } while (0)

void matmul(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
            const float *A, const float *B, float beta, float *C);
void linear_forward(void *ctx, float *out, const float *inp,
                    const float *weight, const float *bias, int B, int C, int OC);
void linear_backward(void *ctx, float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     int B, int C, int OC, int overwrite);
void act_forward(void *ctx, gan_act act, float alpha, float *y, const float *x,
                 size_t n);
void act_backward(void *ctx, gan_act act, float alpha, float *dx,
                  const float *dy, const float *x, const float *y, size_t n);
void dropout_forward(void *ctx, float *y, float *mask, const float *x, size_t n,
                     float p, uint64_t key);
void batchnorm_forward(void *ctx, float *y, float *mean, float *rstd,
                       float *run_mean, float *run_var, const float *x,
                       const float *gamma, const float *beta, int B, int C,
                       int S, float momentum, float eps, int training);
void batchnorm_backward(void *ctx, float *dx, float *dgamma, float *dbeta,
                        const float *dy, const float *x, const float *gamma,
                        const float *mean, const float *rstd, int B, int C,
                        int S, int training, int overwrite);
void bce_forward(void *ctx, float *loss, const float *pred, const float *target,
                 size_t n, int logits);
void bce_backward(void *ctx, float *dpred, const float *pred,
                  const float *target, size_t n, int logits);
void adam_step(void *ctx, const gan_adam_group *g);

/* conv.c: convolutions (im2col + sgemm); augment.c: flips and shifts */
void conv2d_workspace(void *ctx, const gan_conv2d_desc *d, size_t *batched,
                      size_t *minimum);
void conv2d_forward(void *ctx, float *y, const float *x, const float *weight,
                    const float *bias, const gan_conv2d_desc *d, float *ws,
                    size_t ws_n);
void conv2d_backward(void *ctx, float *dx, float *dweight, float *dbias,
                     const float *dy, const float *x, const float *weight,
                     const gan_conv2d_desc *d, float *ws, size_t ws_n);
void conv_transpose2d_forward(void *ctx, float *x, const float *y,
                              const float *weight, const float *bias,
                              const gan_conv2d_desc *d, float *ws, size_t ws_n);
void conv_transpose2d_backward(void *ctx, float *dy, float *dweight,
                               float *dbias, const float *dx, const float *y,
                               const float *weight, const gan_conv2d_desc *d,
                               float *ws, size_t ws_n);
void augment2d(void *ctx, float *y, const float *x, const float *params, int B,
               int C, int H, int W, int adjoint);

#endif
