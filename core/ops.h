/*
** ops.h -- the engine's public operations on tensors.
**
** Each wrapper checks its tensors once (allocated, same backend, shapes that
** fit) and then dispatches to the backend slot of the same name.  A failure
** returns a status with a message that names the op, the argument and the
** shapes.  The gradient conventions are backend.h's: input gradients are
** overwritten, parameter gradients accumulate, NULL skips a gradient (and
** gan_zero_later below lets a parameter gradient be overwritten instead).
**
** Dense layers see a tensor as (rows, cols): rows = shape[0], cols = the
** product of the other dimensions.
*/
#ifndef GAN_OPS_H
#define GAN_OPS_H

#include "backend.h"
#include "rng.h"
#include "tensor.h"

gan_status gan_fill(gan_tensor *x, float value);

/*
** Zeros put off.  gan_zero_later marks x as all zeros without writing it (a
** view is zeroed at once).  gan_tensor_ready writes the zeros put off for x,
** or for a tensor x is a view of; an op that overwrites a tensor whole can
** skip them instead.  gan_linear_backward (and gan_linear_act_backward) and
** gan_batchnorm_backward do, for their parameter gradients: a module's
** zero_grad marks them, and the next backward writes them (beta = 0 in a
** product, a store in a kernel) rather than adding to a pass of zeros,
** when every one it writes is marked.  That saves a write and a read of
** every weight gradient per step (PyTorch's zero_grad sets them to None
** for the same reason).  The other ops read the memory as it is: the Lua
** binding calls gan_tensor_ready on every tensor it passes them, and C
** code that marks a tensor must do the same.
*/
gan_status gan_zero_later(gan_tensor *x);
gan_status gan_tensor_ready(gan_tensor *x);
gan_status gan_copy(gan_tensor *dst, const gan_tensor *src);
/* between backends, or to and from the host */
gan_status gan_to_host(const gan_tensor *src, float *dst_host);
gan_status gan_from_host(gan_tensor *dst, const float *src_host);
gan_status gan_axpby(gan_tensor *y, float a, const gan_tensor *x, float b);
gan_status gan_mul(gan_tensor *y, const gan_tensor *a, const gan_tensor *b);
gan_status gan_sum(const gan_tensor *x, double *out);
/* out (1 element) = scale * sum of x, on x's backend: nothing waits */
gan_status gan_sum_to(gan_tensor *out, const gan_tensor *x, double scale);
gan_status gan_gather_rows(gan_tensor *dst, const gan_tensor *src,
                           const int64_t *idx /* host, dst rows */);
gan_status gan_randn(gan_tensor *x, gan_rng *rng, float mean, float std);
gan_status gan_rand(gan_tensor *x, gan_rng *rng, float lo, float hi);

/* Reading values without waiting for the GPU.  gan_reader_start queues
** copies of tensors (GAN_READ_MAX floats in all) behind the work already
** queued and returns; gan_reader_wait waits for them and leaves them in
** r->values, in order.  A training loop starts step N's read and waits for
** step N-1's, so the host never waits for the queue to drain.  (On the
** CPU a start reads at once.)  A reader starts zeroed ({0}) and is bound
** to the backend of its last start; gan_reader_close frees what it holds
** (it may be started again). */
typedef struct gan_reader {
  gan_backend *backend; /* of the handle; NULL if none */
  void *handle;         /* the backend's reader */
  int n;                /* floats the last start read */
  int pending;          /* started, not yet waited for */
  float values[GAN_READ_MAX];
} gan_reader;

gan_status gan_reader_start(gan_reader *r, const gan_tensor *const *ts, int nt);
/* 1 once the values of the last start have arrived (or if none is pending) */
int gan_reader_ready(gan_reader *r);
gan_status gan_reader_wait(gan_reader *r);
void gan_reader_close(gan_reader *r);

/* C = alpha * op(A) op(B) + beta * C on 2-d tensors */
gan_status gan_matmul(gan_tensor *C, const gan_tensor *A, int ta,
                      const gan_tensor *B, int tb, float alpha, float beta);

gan_status gan_linear_forward(gan_tensor *out, const gan_tensor *inp,
                              const gan_tensor *weight, const gan_tensor *bias);
gan_status gan_linear_backward(gan_tensor *dinp, gan_tensor *dweight,
                               gan_tensor *dbias, const gan_tensor *dout,
                               const gan_tensor *inp, const gan_tensor *weight);

gan_status gan_act_forward(gan_act act, float alpha, gan_tensor *y,
                           const gan_tensor *x);
/* gan_linear_forward(out, ...), then gan_act_forward(act, alpha, y, out), in
** one pass after the product where the backend can (nn.Sequential calls it
** for a Linear followed by an activation); y must not share out's memory */
gan_status gan_linear_act_forward(gan_tensor *out, gan_tensor *y, const gan_tensor *inp,
                                  const gan_tensor *weight, const gan_tensor *bias,
                                  gan_act act, float alpha);
gan_status gan_act_backward(gan_act act, float alpha, gan_tensor *dx,
                            const gan_tensor *dy, const gan_tensor *x,
                            const gan_tensor *y);
/* gan_act_backward(act, alpha, dz, dy, z, y), then gan_linear_backward(dinp,
** dweight, dbias, dz, inp, weight): the backward of gan_linear_act_forward
** (z its pre-activation 'out', y its 'y'), with the activation's gradient
** and the bias gradient's column sums in one pass where the backend can.
** Errors are those of the two ops, and one more: the bias gradient must not
** share memory with dy, z or y (a backend writes it while reading them).
** All checks come before any write. */
gan_status gan_linear_act_backward(gan_act act, float alpha, gan_tensor *dz,
                                   const gan_tensor *dy, const gan_tensor *z,
                                   const gan_tensor *y, gan_tensor *dinp,
                                   gan_tensor *dweight, gan_tensor *dbias,
                                   const gan_tensor *inp, const gan_tensor *weight);

gan_status gan_dropout_forward(gan_tensor *y, gan_tensor *mask,
                               const gan_tensor *x, float p, gan_rng *rng);
/* dx = dy * mask */
gan_status gan_dropout_backward(gan_tensor *dx, const gan_tensor *dy,
                                const gan_tensor *mask);

/* x is (B, C) or (B, C, H, W); the statistics are per channel C */
gan_status gan_batchnorm_forward(gan_tensor *y, gan_tensor *mean,
                                 gan_tensor *rstd, gan_tensor *run_mean,
                                 gan_tensor *run_var, const gan_tensor *x,
                                 const gan_tensor *gamma, const gan_tensor *beta,
                                 float momentum, float eps, int training);
gan_status gan_batchnorm_backward(gan_tensor *dx, gan_tensor *dgamma,
                                  gan_tensor *dbeta, const gan_tensor *dy,
                                  const gan_tensor *x, const gan_tensor *gamma,
                                  const gan_tensor *mean, const gan_tensor *rstd,
                                  int training);

/* loss is a 1-element tensor on the same backend */
gan_status gan_bce_forward(gan_tensor *loss, const gan_tensor *pred,
                           const gan_tensor *target, int logits);
gan_status gan_bce_backward(gan_tensor *dpred, const gan_tensor *pred,
                            const gan_tensor *target, int logits);

/* --- convolutions and augmentation (conv.c, augment.c) -------------------
** Tensors are NCHW.  conv2d: inp (B, IC, H, W), weight (OC, IC, KH, KW),
** bias (OC) -> out (B, OC, OH, OW), OH = (H + 2*pad - KH) / stride + 1.
** conv_transpose2d, its adjoint: inp (B, IC, H, W), weight (IC, OC, KH, KW)
** (PyTorch's layouts), bias (OC) -> out (B, OC, OH, OW), OH = (H - 1)*stride
** - 2*pad + KH + output padding, the padding (< stride) being whatever the
** shape of 'out' says.  'ws' is a workspace tensor of at least the minimum
** that gan_conv2d_workspace gives (any shape; NULL where the backend keeps
** its own).  Backward: dinp is overwritten, dweight and dbias accumulate,
** NULL skips.  On a backend without these slots they fail with GAN_EBACKEND. */
gan_status gan_conv2d_workspace(const gan_tensor *out, const gan_tensor *inp,
                                const gan_tensor *weight, int stride, int pad,
                                int transposed, int64_t *batched,
                                int64_t *minimum);
gan_status gan_conv2d_forward(gan_tensor *out, const gan_tensor *inp,
                              const gan_tensor *weight, const gan_tensor *bias,
                              int stride, int pad, gan_tensor *ws);
gan_status gan_conv2d_backward(gan_tensor *dinp, gan_tensor *dweight,
                               gan_tensor *dbias, const gan_tensor *dout,
                               const gan_tensor *inp, const gan_tensor *weight,
                               int stride, int pad, gan_tensor *ws);
gan_status gan_conv_transpose2d_forward(gan_tensor *out, const gan_tensor *inp,
                                        const gan_tensor *weight,
                                        const gan_tensor *bias, int stride,
                                        int pad, gan_tensor *ws);
gan_status gan_conv_transpose2d_backward(gan_tensor *dinp, gan_tensor *dweight,
                                         gan_tensor *dbias, const gan_tensor *dout,
                                         const gan_tensor *inp,
                                         const gan_tensor *weight, int stride,
                                         int pad, gan_tensor *ws);
/* y = per-sample flip and shift of x (B, C, H, W); params is a cpu tensor
** of B rows (flip 0 or 1, dy, dx), integers, |dy| <= H, |dx| <= W.
** 'adjoint' applies the transposed map (the backward pass: y is then the
** input gradient and x the output gradient).  y may be x when nothing
** is shifted. */
gan_status gan_augment2d(gan_tensor *y, const gan_tensor *x,
                         const gan_tensor *params, int adjoint);

#endif
