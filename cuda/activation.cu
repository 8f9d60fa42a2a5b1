/*
** activation.cu -- act_forward and act_backward: identity, relu,
** leaky_relu (alpha), sigmoid, tanh.
**
** One kernel per direction with the activation as an argument: the branch
** is uniform across the grid, so it costs nothing next to the memory
** traffic.  The derivatives follow backend.h (act_grad in common.cuh):
** relu and leaky_relu use x (slope of the x > 0 side, else 0 or alpha),
** sigmoid and tanh the forward output y (y(1-y) and 1-y^2), so x may be
** NULL for those and y for the others.
*/
#include "common.cuh"

__global__ void act_forward_kernel(int act, float alpha, float *y, const float *x,
                                   size_t n) {
  GRID_LOOP(i, n) y[i] = act_value(act, alpha, x[i]);
}

__global__ void act_backward_kernel(int act, float alpha, float *dx, const float *dy,
                                    const float *x, const float *y, size_t n) {
  GRID_LOOP(i, n) dx[i] = act_grad(act, alpha, dy[i], x, y, i);
}

void cuda_act_forward(void *ctx, gan_act act, float alpha, float *y, const float *x,
                      size_t n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  if (act == GAN_ACT_IDENTITY) { /* a copy, unless in place */
    cuda_copy(ctx, y, x, n);
    return;
  }
  act_forward_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>((int)act, alpha, y, x,
                                                                 n);
  launch_ok(c, "act_forward_kernel");
}

void cuda_act_backward(void *ctx, gan_act act, float alpha, float *dx, const float *dy,
                       const float *x, const float *y, size_t n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  if (act == GAN_ACT_IDENTITY) {
    cuda_copy(ctx, dx, dy, n);
    return;
  }
  act_backward_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>((int)act, alpha, dx,
                                                                  dy, x, y, n);
  launch_ok(c, "act_backward_kernel");
}
