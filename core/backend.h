/*
** backend.h -- the one interface every backend implements.
**
** Modelled on ggml_backend_i: a table of function pointers plus a 'ctx' that
** holds the backend's state (for CUDA: the cuBLAS handle, the stream, the
** memory pool, workspaces), never globals.  The slots take raw pointers and
** sizes, as llm.c's kernels do; the public wrappers in ops.h check tensors
** once and then dispatch here, so a slot may assume valid arguments.
**
** Conventions, for every backend:
**  - all pointers are backend memory, row-major and contiguous; shapes are
**    given in the comment after each pointer parameter;
**  - input gradients (dinp, dx) are OVERWRITTEN;
**  - parameter gradients (dweight, dbias, dgamma, dbeta) are ACCUMULATED
**    (+=), so several backward passes can add into one gradient; zeroing them
**    is explicit (fill with 0, the modules' zero_grad);
**  - a parameter-gradient pointer may be NULL: that product is skipped.  This
**    is how the G step goes through a frozen D: D only gives dinp.
**  - randomness is counter-based: element i of a draw with key k is a pure
**    function of (k, i) (Philox4x32-10, rng.h), so the CPU and the GPU draw
**    the same numbers for the same seed.
*/
#ifndef GAN_BACKEND_H
#define GAN_BACKEND_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The most floats one reader_start may read (ops.h: gan_reader). */
#define GAN_READ_MAX 64

typedef enum gan_act {
  GAN_ACT_IDENTITY = 0,
  GAN_ACT_RELU,
  GAN_ACT_LEAKY_RELU, /* uses alpha */
  GAN_ACT_SIGMOID,
  GAN_ACT_TANH
} gan_act;

/* One Adam step over every tensor an optimizer holds.  A backend may update
** them in one launch (CUDA) or one fused loop per tensor (CPU). */
typedef struct gan_adam_group {
  int count;
  float *const *params;  /* count pointers, params[i] of sizes[i] floats */
  float *const *grads;
  float *const *m;       /* first moments */
  float *const *v;       /* second moments */
  const size_t *sizes;
  float lr, beta1, beta2, eps, weight_decay;
  int64_t step;          /* 1 for the first step (bias correction) */
  int eps_hat;           /* 1: Keras's form, eps added to sqrt(v) (core/adam.c) */
} gan_adam_group;

/* Adam's update of a parameter, in both forms (core/adam.c):
**   p -= lr * ((m * a) / (sqrt(v * b) + eps) + weight_decay * p)
** with the bias corrections at g->step, in double and rounded once:
**   Keras's (eps_hat):   a = sqrt(1 - b2^t) / (1 - b1^t),  b = 1
**   the paper's:         a = 1 / (1 - b1^t),               b = 1 / (1 - b2^t)
** Every backend takes a and b from here, so the form is chosen once. */
typedef struct gan_adam_scales {
  float a, b;
} gan_adam_scales;

static inline gan_adam_scales gan_adam_scales_of(const gan_adam_group *g) {
  const double t = (double)g->step;
  const double d1 = 1.0 - pow((double)g->beta1, t), d2 = 1.0 - pow((double)g->beta2, t);
  gan_adam_scales s;
  s.a = g->eps_hat ? (float)(sqrt(d2) / d1) : (float)(1.0 / d1);
  s.b = g->eps_hat ? 1.0f : (float)(1.0 / d2);
  return s;
}

typedef struct gan_mem_stats {
  uint64_t allocs;       /* calls to alloc that reached the system */
  uint64_t bytes_in_use; /* held by live tensors */
  uint64_t peak_bytes;   /* high-water mark of bytes_in_use */
} gan_mem_stats;

/* One convolution's shapes, in the terms of the ordinary convolution
** x (B, C, H, W) -> y (B, K, P, Q), weight (K, C, R, S):
** P = (H + 2*pad - R) / stride + 1, Q likewise.  (optional slots below) */
typedef struct gan_conv2d_desc {
  int B, C, H, W;  /* x */
  int K, P, Q;     /* y */
  int R, S;        /* kernel rows and columns */
  int stride, pad;
} gan_conv2d_desc;

typedef struct gan_backend_i {
  const char *name; /* "cpu", "cuda" */

  /* --- memory --- */
  /* Returns NULL on failure with gan_error set (naming the bytes). */
  void *(*alloc)(void *ctx, size_t bytes);
  void (*free)(void *ctx, void *ptr);
  gan_status (*to_host)(void *ctx, float *dst_host, const float *src, size_t n);
  gan_status (*from_host)(void *ctx, float *dst, const float *src_host, size_t n);
  void (*copy)(void *ctx, float *dst, const float *src, size_t n);
  gan_status (*synchronize)(void *ctx); /* (optional) */

  /* --- elementwise, reductions, data --- */
  void (*fill)(void *ctx, float *x, float value, size_t n);
  /* y = a*x + b*y */
  void (*axpby)(void *ctx, float *y, float a, const float *x, float b, size_t n);
  /* y = a * b, elementwise */
  void (*mul)(void *ctx, float *y, const float *a, const float *b, size_t n);
  /* *out = sum of x, in double on the host */
  gan_status (*sum)(void *ctx, const float *x, size_t n, double *out);
  /* out[0] = scale * sum of x, left in backend memory: nothing waits (the
  ** sum in double, rounded once) */
  void (*sum_to)(void *ctx, float *out /* (1) */, const float *x, size_t n,
                 double scale);
  /* dst row r = src row idx[r]; idx is host memory */
  void (*gather_rows)(void *ctx, float *dst /* (nrows, cols) */,
                      const float *src /* (*, cols) */, const int64_t *idx,
                      int64_t nrows, int64_t cols);
  /* x[i] = mean + std * N(0,1) draw i of 'key' */
  void (*randn)(void *ctx, float *x, size_t n, uint64_t key, float mean, float std);
  /* x[i] = lo + (hi - lo) * U[0,1) draw i of 'key' */
  void (*rand)(void *ctx, float *x, size_t n, uint64_t key, float lo, float hi);

  /* --- products --- */
  /* C (M,N) = alpha * op(A) op(B) + beta * C, op = transpose if ta/tb */
  void (*matmul)(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
                 const float *A, const float *B, float beta, float *C);

  /* --- layers --- */
  /* out = inp @ weight^T + bias */
  void (*linear_forward)(void *ctx, float *out /* (B, OC) */,
                         const float *inp /* (B, C) */,
                         const float *weight /* (OC, C) */,
                         const float *bias /* (OC) or NULL */,
                         int B, int C, int OC);
  /* dinp = dout @ weight; dweight += dout^T @ inp; dbias += colsum(dout);
  ** with 'overwrite', = instead of += for dweight and dbias */
  void (*linear_backward)(void *ctx, float *dinp /* (B, C) or NULL */,
                          float *dweight /* (OC, C) or NULL */,
                          float *dbias /* (OC) or NULL */,
                          const float *dout /* (B, OC) */,
                          const float *inp /* (B, C) */,
                          const float *weight /* (OC, C) */,
                          int B, int C, int OC, int overwrite);
  void (*act_forward)(void *ctx, gan_act act, float alpha, float *y,
                      const float *x, size_t n);
  /* dx = dy * act'(x); sigmoid and tanh use y (the forward output) */
  void (*act_backward)(void *ctx, gan_act act, float alpha, float *dx,
                       const float *dy, const float *x, const float *y, size_t n);
  /* Optional (NULL: linear_forward, then act_forward): a dense layer and
  ** the activation after it, out = inp @ weight^T + bias and y = act(out),
  ** so that a backend can add the bias and apply the activation in one pass
  ** after the product (CUDA).  'out' keeps the pre-activation, which the
  ** activation's backward reads. */
  void (*linear_act_forward)(void *ctx, float *out /* (B, OC) */, float *y /* (B, OC) */,
                             const float *inp /* (B, C) */,
                             const float *weight /* (OC, C) */,
                             const float *bias /* (OC) or NULL */, gan_act act,
                             float alpha, int B, int C, int OC);
  /* Optional (NULL: act_backward, then linear_backward): the backward of
  ** linear_act_forward, dz = dy * act'(z) (z the pre-activation, y the
  ** activation's output), then linear_backward with dout = dz, so that a
  ** backend can sum dz's columns into dbias as it writes dz (CUDA). */
  void (*linear_act_backward)(void *ctx, gan_act act, float alpha, float *dz /* (B, OC) */,
                              const float *dy, const float *z, const float *y,
                              float *dinp /* (B, C) or NULL */,
                              float *dweight /* (OC, C) or NULL */,
                              float *dbias /* (OC) or NULL */, const float *inp,
                              const float *weight, int B, int C, int OC, int overwrite);
  /* inverted dropout: mask[i] = 0 or 1/(1-p), y = x * mask */
  void (*dropout_forward)(void *ctx, float *y, float *mask, const float *x,
                          size_t n, float p, uint64_t key);
  /* Batch normalisation over B (and the spatial size S, 1 for dense layers)
  ** of channels C; x is (B, C, S).  Training: batch statistics (biased
  ** variance), saved mean and rstd = 1/sqrt(var + eps), and the running
  ** averages updated the Keras way: r = momentum * r + (1 - momentum) * batch.
  ** Evaluation: the running statistics; mean and rstd are still written. */
  void (*batchnorm_forward)(void *ctx, float *y /* (B, C, S) */,
                            float *mean /* (C) */, float *rstd /* (C) */,
                            float *run_mean /* (C) */, float *run_var /* (C) */,
                            const float *x /* (B, C, S) */,
                            const float *gamma /* (C) */, const float *beta /* (C) */,
                            int B, int C, int S, float momentum, float eps,
                            int training);
  /* training-mode gradient (through the batch statistics) when 'training',
  ** else the gradient of the fixed affine map the evaluation used;
  ** dgamma += sum(dy * xhat) and dbeta += sum(dy), or = instead of += with
  ** 'overwrite' */
  void (*batchnorm_backward)(void *ctx, float *dx /* (B, C, S) or NULL */,
                             float *dgamma /* (C) or NULL */,
                             float *dbeta /* (C) or NULL */,
                             const float *dy /* (B, C, S) */,
                             const float *x /* (B, C, S) */,
                             const float *gamma /* (C) */,
                             const float *mean /* (C) */, const float *rstd /* (C) */,
                             int B, int C, int S, int training, int overwrite);
  /* loss[0] = mean binary cross-entropy; 'logits' selects the stable form on
  ** logits, else probabilities clamped to [1e-7, 1-1e-7] as Keras does */
  void (*bce_forward)(void *ctx, float *loss /* (1) */, const float *pred,
                      const float *target, size_t n, int logits);
  /* dpred = d(mean loss)/d pred (zero where the clamp was active) */
  void (*bce_backward)(void *ctx, float *dpred, const float *pred,
                       const float *target, size_t n, int logits);

  /* --- optimizer --- */
  void (*adam_step)(void *ctx, const gan_adam_group *g);

  /* --- reading a few values without waiting ---
  ** A reader is the backend's host buffer of GAN_READ_MAX floats and its
  ** completion flag.  reader_start queues copies of n arrays (src[i] of
  ** counts[i] floats, at most GAN_READ_MAX in all) into it, behind the work
  ** already queued, and returns at once; reader_ready is 1 once they have
  ** arrived (or failed); reader_wait waits for them and copies 'total'
  ** floats out, reporting any failure since the last report as to_host does.
  ** A start may follow another whose copies are still in flight: they must
  ** land in order.  reader_free waits for a copy still in flight. */
  gan_status (*reader_new)(void *ctx, void **rd);
  void (*reader_free)(void *ctx, void *rd);
  gan_status (*reader_start)(void *ctx, void *rd, const float *const *src,
                             const size_t *counts, int n);
  int (*reader_ready)(void *ctx, void *rd);
  gan_status (*reader_wait)(void *ctx, void *rd, float *dst, size_t total);

  /* --- accounting (optional) --- */
  /* allocations made so far and bytes now held by tensors: how a test
  ** proves that a training step allocates nothing */
  void (*mem_stats)(void *ctx, gan_mem_stats *out);

  /* --- convolutions (optional: the wrappers fail with GAN_EBACKEND when
  ** NULL) ---
  ** Tensors are NCHW.  Every slot is described in the terms of one ordinary
  ** convolution (gan_conv2d_desc): x (B, C, H, W) -> y (B, K, P, Q) with the
  ** weight (K, C, R, S).  Conv2d maps x to y; ConvTranspose2d is its adjoint
  ** and maps y to x, with the same weight layout (so PyTorch's (IC, OC, KH,
  ** KW) for the transposed layer).  'ws' is a workspace of 'ws_n' floats
  ** that the caller owns (at least conv2d_workspace's minimum); a backend
  ** that keeps its own may ignore it. */
  /* the workspace, in floats, that the conv slots would like ('batched'
  ** is the preferred size, 'minimum' the least they accept) */
  void (*conv2d_workspace)(void *ctx, const struct gan_conv2d_desc *d,
                           size_t *batched, size_t *minimum);
  /* y = conv(x, weight) + bias */
  void (*conv2d_forward)(void *ctx, float *y /* (B, K, P, Q) */,
                         const float *x /* (B, C, H, W) */,
                         const float *weight /* (K, C, R, S) */,
                         const float *bias /* (K) or NULL */,
                         const struct gan_conv2d_desc *d, float *ws, size_t ws_n);
  /* dx = conv^T(dy); dweight += dy (*) x; dbias += sums of dy per channel */
  void (*conv2d_backward)(void *ctx, float *dx /* (B, C, H, W) or NULL */,
                          float *dweight /* (K, C, R, S) or NULL */,
                          float *dbias /* (K) or NULL */,
                          const float *dy /* (B, K, P, Q) */,
                          const float *x /* (B, C, H, W) */,
                          const float *weight /* (K, C, R, S) */,
                          const struct gan_conv2d_desc *d, float *ws, size_t ws_n);
  /* the transposed convolution: x = conv^T(y, weight) + bias */
  void (*conv_transpose2d_forward)(void *ctx, float *x /* (B, C, H, W) */,
                                   const float *y /* (B, K, P, Q) */,
                                   const float *weight /* (K, C, R, S) */,
                                   const float *bias /* (C) or NULL */,
                                   const struct gan_conv2d_desc *d, float *ws,
                                   size_t ws_n);
  /* dy = conv(dx); dweight += y (*) dx; dbias += sums of dx per channel */
  void (*conv_transpose2d_backward)(void *ctx, float *dy /* (B, K, P, Q) or NULL */,
                                    float *dweight /* (K, C, R, S) or NULL */,
                                    float *dbias /* (C) or NULL */,
                                    const float *dx /* (B, C, H, W) */,
                                    const float *y /* (B, K, P, Q) */,
                                    const float *weight /* (K, C, R, S) */,
                                    const struct gan_conv2d_desc *d, float *ws,
                                    size_t ws_n);
  /* (optional) Per-sample flip and shift of images, zero-filled: with
  ** params[b] = (flip, dy, dx) on the host, y[b, c, i, j] =
  ** x[b, c, i - dy, flip ? W-1-(j - dx) : j - dx], 0 where that is outside.
  ** 'adjoint' computes the transposed map instead (the backward pass:
  ** y is then the input gradient, x the output gradient).  y == x is
  ** allowed when no sample is shifted. */
  void (*augment2d)(void *ctx, float *y /* (B, C, H, W) */,
                    const float *x /* (B, C, H, W) */, const float *params /* host (B, 3) */,
                    int B, int C, int H, int W, int adjoint);
} gan_backend_i;

typedef struct gan_backend gan_backend;

struct gan_backend {
  gan_backend_i iface;
  void *ctx;
};

/* The CPU backend: always built, one instance per process. */
gan_backend *gan_backend_cpu(void);

/* The CUDA backend, or NULL with gan_error set (not built, no device). */
gan_backend *gan_backend_cuda(void);

/* "cpu" or "cpu, cuda": the backends compiled in. */
const char *gan_backends_built(void);

/* One line for `gan --version`: the backends built in and whether a GPU was
** found, e.g. "backends: cpu, cuda (GPU: NVIDIA H100)" or
** "backends: cpu (CUDA not built)". */
const char *gan_backends_describe(void);

#endif
