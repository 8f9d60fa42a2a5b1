/*
** conv.cu -- the convolution slots on the GPU: through cuDNN (cudnn.cuh)
** when it can be loaded, else through im2col.cu's kernels and cuBLAS.
**
** In backend.h's terms, one ordinary convolution x (B, C, H, W) -> y (B, K,
** P, Q) with weight (K, C, R, S).  cuDNN's three operations of that
** convolution give all four slots; the transposed layer is the adjoint, so
** its forward pass is cuDNN's backward-data and its input gradient cuDNN's
** forward (Dumoulin and Visin 2016, sec. 4; core/conv.c says the same with
** im2col):
**
**   slot                        cuDNN operation (beta)      on
**   conv2d forward              Forward (0)                 x, w -> y
**   conv2d backward: dx         BackwardData (0)            w, dy -> dx
**                    dweight    BackwardFilter (1: +=)      x, dy -> dw
**   transposed forward          BackwardData (0)            w, y -> x
**   transposed backward: dy     Forward (0)                 dx, w -> dy
**                        dweight BackwardFilter (1: +=)     dx, y -> dw
**
** im2col.cu provides the same three operations, so each slot below is one
** composition of them whichever path runs; conv_forward and its two
** siblings choose the path.  It is the context's conv_impl: CONV_AUTO
** unless GAN_CUDA_CONV or gan_cuda_set_conv says otherwise.  AUTO takes
** cuDNN if the library loads (the loading is tried once per process) and
** im2col otherwise; CONV_CUDNN fails with cuDNN's loading error instead of
** falling back.
**
** Biases are ours on both paths: added by the kernel that writes the
** result (im2col) or a broadcast add after it (cuDNN), and the gradient as
** a sum per channel in double in a fixed order (common.cuh's channel
** parts), deterministic like the CPU's.
**
** The workspace argument of the slots is not used: conv2d_workspace asks
** for none, and both paths keep theirs in the context.
*/
#include <stdio.h>
#include <string.h>

#include "common.cuh"
#include "gan_cuda.h"
#if GAN_HAVE_CUDNN
#include "cudnn.cuh"
#endif

/* The sum of x's values [j0, j1) of this block's channel (common.cuh's
** parts): with one part, acc[c] += it; with more, part[i] = it (block i). */
__global__ void channel_sum_kernel(float *acc, double *part, const float *x, int C, int S,
                                   size_t N, channel_split sp) {
  const channel_part r = part_of_block(sp, N);
  const float *xc = x + (size_t)r.c * S;
  double s = 0.0;
  for_channel(S, (size_t)C * S, r.j0, r.j1, [&](size_t o) { s += xc[o]; });
  s = block_sum(s);
  if (threadIdx.x != 0) return;
  if (part != NULL)
    part[blockIdx.x] = s;
  else
    acc[r.c] = (float)((double)acc[r.c] + s);
}

/* acc[c] += the sum of channel c's parts, added in order: a thread per channel */
__global__ void channel_parts_add_kernel(float *acc, const double *part, int C, int parts) {
  GRID_LOOP(c, (size_t)C) {
    double s = 0.0;
    for (int i = 0; i < parts; i++) s += part[c * parts + i];
    acc[c] = (float)((double)acc[c] + s);
  }
}

/* acc[c] += the sum of channel c of x (B, C, S) */
static void channel_sum(cuda_ctx *c, float *acc, const float *x, int B, int C, int S) {
  if (B <= 0 || C <= 0 || S <= 0) return;
  const size_t N = (size_t)B * S;
  const channel_split sp = channel_split_for(C, N);
  double *part = sp.parts > 1 ? c->scratch : NULL;
  channel_sum_kernel<<<(unsigned)C * (unsigned)sp.parts, REDUCE_THREADS, 0, c->stream>>>(
      acc, part, x, C, S, N, sp);
  if (!launch_ok(c, "channel_sum_kernel") || part == NULL) return;
  channel_parts_add_kernel<<<ew_blocks((size_t)C), EW_THREADS, 0, c->stream>>>(acc, part, C,
                                                                              sp.parts);
  launch_ok(c, "channel_parts_add_kernel");
}

#if GAN_HAVE_CUDNN
static const float ONE = 1.0f, ZERO = 0.0f;

/* x (B, C, S) += bias[c]: the bias of cuDNN's results (im2col.cu adds it
** in the kernel that writes its result) */
__global__ void add_bias_kernel(float *x, const float *bias, size_t n, int C, size_t S) {
  GRID_LOOP(i, n) x[i] += bias[(i / S) % (size_t)C];
}

static void add_bias(cuda_ctx *c, float *x, const float *bias, int B, int C, size_t S) {
  size_t n = (size_t)B * C * S;
  if (n == 0) return;
  add_bias_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(x, bias, n, C, S);
  launch_ok(c, "add_bias_kernel");
}

/* The three cuDNN operations on a plan; each returns 0 on failure (recorded). */
static int dnn_forward(cuda_ctx *c, const gan_conv2d_desc *d, float *y, const float *x,
                       const float *w) {
  dnn_plan *p = dnn_plan_for(c, d, DNN_FWD);
  if (p == NULL) return 0;
  cuda_dnn *n = c->dnn;
  return dnn_ok(c, n->api->cudnnConvolutionForward(
                       n->handle, &ONE, p->x, x, p->w, w, p->conv[DNN_FWD],
                       (cudnnConvolutionFwdAlgo_t)p->algo[DNN_FWD], n->ws, n->ws_bytes,
                       &ZERO, p->y, y),
                "cudnnConvolutionForward");
}

static int dnn_backward_data(cuda_ctx *c, const gan_conv2d_desc *d, float *x,
                             const float *y, const float *w) {
  dnn_plan *p = dnn_plan_for(c, d, DNN_BWD_DATA);
  if (p == NULL) return 0;
  cuda_dnn *n = c->dnn;
  return dnn_ok(c, n->api->cudnnConvolutionBackwardData(
                       n->handle, &ONE, p->w, w, p->y, y, p->conv[DNN_BWD_DATA],
                       (cudnnConvolutionBwdDataAlgo_t)p->algo[DNN_BWD_DATA], n->ws,
                       n->ws_bytes, &ZERO, p->x, x),
                "cudnnConvolutionBackwardData");
}

/* dw += the weight gradient of the convolution of x giving y; *ran says
** whether cuDNN was asked to do it (0: the plan failed, before any work) */
static int dnn_backward_filter(cuda_ctx *c, const gan_conv2d_desc *d, float *dw,
                               const float *x, const float *y, int *ran) {
  *ran = 0;
  dnn_plan *p = dnn_plan_for(c, d, DNN_BWD_FILTER);
  if (p == NULL) return 0;
  *ran = 1;
  cuda_dnn *n = c->dnn;
  return dnn_ok(c, n->api->cudnnConvolutionBackwardFilter(
                       n->handle, &ONE, p->x, x, p->y, y, p->conv[DNN_BWD_FILTER],
                       (cudnnConvolutionBwdFilterAlgo_t)p->algo[DNN_BWD_FILTER], n->ws,
                       n->ws_bytes, &ONE, p->w, dw),
                "cudnnConvolutionBackwardFilter");
}

#endif

/* 1 to run on cuDNN, 0 for im2col.cu, -1 if cuDNN was asked for in a
** build without it (the failure is recorded). */
static int on_cudnn(cuda_ctx *c) {
#if GAN_HAVE_CUDNN
  if (c->conv_impl == CONV_IM2COL) return 0;
  if (c->conv_impl == CONV_CUDNN) return 1; /* its failure to load is reported */
  return dnn_library(NULL) != NULL;
#else
  if (c->conv_impl != CONV_CUDNN) return 0;
  cuda_fail(c, GAN_EBACKEND, "convolutions on cuda were asked to use cuDNN, but this gan "
            "was built without it (GAN_USE_CUDNN=OFF, or no cudnn.h)");
  return -1;
#endif
}

/* After a failed cuDNN operation: in AUTO mode, when the failure is cuDNN's
** own (a cudnnStatus_t in c->dnn_status, which this reads and clears) and
** nothing was pending before it ('before'), the failure is cleared, kept
** for gan_cuda_conv_fallback, and the convolutions move to im2col, where the
** caller makes the call again (1).  Otherwise the failure stands (0).  The
** forward and backward-data calls overwrite their output, so the call made
** again is right whatever the failed one wrote.  The filter gradient
** accumulates ('accumulates': cuDNN was asked to add it): it is made again
** only after a failure of cuDNN's checks (CUDNN_STATUS_BAD_PARAM or
** NOT_SUPPORTED, and their sub-codes: 2000-3999), which come before any
** work; after an execution failure part of the gradient may have been added
** already.  A failure while choosing the algorithm (the heuristics, a
** sub-library that does not load) comes before any work too. */
#if GAN_HAVE_CUDNN
static int dnn_fall_back(cuda_ctx *c, gan_status before, int accumulates) {
  const int s = c->dnn_status;
  c->dnn_status = 0;
  if (c->conv_impl != CONV_AUTO || before != GAN_OK || c->status != GAN_EBACKEND || s == 0)
    return 0;
  if (accumulates && (s < 2000 || s >= 4000)) return 0;
  snprintf(c->dnn_fallback, sizeof c->dnn_fallback, "%s", c->errmsg);
  c->dnn_fallback_said = 0;
  c->status = GAN_OK;
  c->errmsg[0] = '\0';
  c->conv_impl = CONV_IM2COL;
  return 1;
}
#endif

/* --- the three operations of one convolution, on either path ----------------
** Each returns 0 after a failure (recorded in the context). */

/* y = conv(x, w) + bias[k] (none if NULL) */
static int conv_forward(cuda_ctx *c, const gan_conv2d_desc *d, float *y, const float *x,
                        const float *w, const float *bias) {
  const int dnn = on_cudnn(c);
  if (dnn < 0) return 0;
  if (dnn == 0) return im2col_forward(c, d, y, x, w, bias);
#if GAN_HAVE_CUDNN
  const gan_status before = c->status;
  if (!dnn_forward(c, d, y, x, w))
    return dnn_fall_back(c, before, 0) && im2col_forward(c, d, y, x, w, bias);
  if (bias) add_bias(c, y, bias, d->B, d->K, (size_t)d->P * d->Q);
#endif
  return 1;
}

/* x = conv^T(y, w) + bias[c] (none if NULL) */
static int conv_backward_data(cuda_ctx *c, const gan_conv2d_desc *d, float *x,
                              const float *y, const float *w, const float *bias) {
  const int dnn = on_cudnn(c);
  if (dnn < 0) return 0;
  if (dnn == 0) return im2col_backward_data(c, d, x, y, w, bias);
#if GAN_HAVE_CUDNN
  const gan_status before = c->status;
  if (!dnn_backward_data(c, d, x, y, w))
    return dnn_fall_back(c, before, 0) && im2col_backward_data(c, d, x, y, w, bias);
  if (bias) add_bias(c, x, bias, d->B, d->C, (size_t)d->H * d->W);
#endif
  return 1;
}

/* dw += the weight gradient of the convolution of x giving y */
static int conv_backward_filter(cuda_ctx *c, const gan_conv2d_desc *d, float *dw,
                                const float *x, const float *y) {
  const int dnn = on_cudnn(c);
  if (dnn < 0) return 0;
  if (dnn == 0) return im2col_backward_filter(c, d, dw, x, y);
#if GAN_HAVE_CUDNN
  const gan_status before = c->status;
  int ran;
  if (dnn_backward_filter(c, d, dw, x, y, &ran)) return 1;
  return dnn_fall_back(c, before, ran) && im2col_backward_filter(c, d, dw, x, y);
#else
  return 0;
#endif
}

/* --- the slots: the table at the top ---------------------------------------- */

void cuda_conv2d_workspace(void *ctx, const gan_conv2d_desc *d, size_t *batched,
                           size_t *minimum) {
  (void)ctx;
  (void)d;
  *batched = 0; /* the context keeps the workspaces */
  *minimum = 0;
}

void cuda_conv2d_forward(void *ctx, float *y /* (B, K, P, Q) */,
                         const float *x /* (B, C, H, W) */,
                         const float *weight /* (K, C, R, S) */,
                         const float *bias /* (K) or NULL */, const gan_conv2d_desc *d,
                         float *ws, size_t ws_n) {
  (void)ws;
  (void)ws_n;
  if (d->B > 0) conv_forward((cuda_ctx *)ctx, d, y, x, weight, bias);
}

void cuda_conv2d_backward(void *ctx, float *dx /* (B, C, H, W) or NULL */,
                          float *dweight /* (K, C, R, S) or NULL */,
                          float *dbias /* (K) or NULL */, const float *dy /* (B, K, P, Q) */,
                          const float *x /* (B, C, H, W) */,
                          const float *weight /* (K, C, R, S) */, const gan_conv2d_desc *d,
                          float *ws, size_t ws_n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  (void)ws;
  (void)ws_n;
  if (d->B <= 0) return;
  if (dbias) channel_sum(c, dbias, dy, d->B, d->K, d->P * d->Q);
  if (dweight && !conv_backward_filter(c, d, dweight, x, dy)) return;
  if (dx) conv_backward_data(c, d, dx, dy, weight, NULL);
}

void cuda_conv_transpose2d_forward(void *ctx, float *x /* (B, C, H, W) */,
                                   const float *y /* (B, K, P, Q) */,
                                   const float *weight /* (K, C, R, S) */,
                                   const float *bias /* (C) or NULL */,
                                   const gan_conv2d_desc *d, float *ws, size_t ws_n) {
  (void)ws;
  (void)ws_n;
  if (d->B > 0) conv_backward_data((cuda_ctx *)ctx, d, x, y, weight, bias);
}

void cuda_conv_transpose2d_backward(void *ctx, float *dy /* (B, K, P, Q) or NULL */,
                                    float *dweight /* (K, C, R, S) or NULL */,
                                    float *dbias /* (C) or NULL */,
                                    const float *dx /* (B, C, H, W) */,
                                    const float *y /* (B, K, P, Q) */,
                                    const float *weight /* (K, C, R, S) */,
                                    const gan_conv2d_desc *d, float *ws, size_t ws_n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  (void)ws;
  (void)ws_n;
  if (d->B <= 0) return;
  if (dbias) channel_sum(c, dbias, dx, d->B, d->C, d->H * d->W);
  if (dweight && !conv_backward_filter(c, d, dweight, dx, y)) return;
  if (dy) conv_forward(c, d, dy, dx, weight, NULL);
}

/* --- gan_cuda.h ------------------------------------------------------------- */

/* "auto", "cudnn" or "im2col" into CONV_*; -1 if none of them */
int cuda_conv_mode(const char *mode) {
  if (mode == NULL) return -1;
  if (strcmp(mode, "auto") == 0) return CONV_AUTO;
  if (strcmp(mode, "cudnn") == 0) return CONV_CUDNN;
  if (strcmp(mode, "im2col") == 0) return CONV_IM2COL;
  return -1;
}

/* Returns the convolutions' workspaces to the pool (gan_cuda_empty_cache,
** after the stream has drained); the next convolution allocates again. */
void cuda_conv_trim(cuda_ctx *c) {
  cuda_pool_free(c, c->col_ws);
  c->col_ws = NULL;
  c->col_ws_bytes = 0;
#if GAN_HAVE_CUDNN
  cuda_dnn_trim(c);
#endif
}
