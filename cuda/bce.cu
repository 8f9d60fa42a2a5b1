/*
** bce.cu -- binary cross-entropy, the GAN loss, averaged over n.
**
** On probabilities (Keras's binary_crossentropy): p = clamp(pred, 1e-7,
** 1 - 1e-7), loss_i = -(t log p + (1-t) log(1-p)); its gradient
** (-t/p + (1-t)/(1-p)) / n is zero where the clamp is active (pred outside
** [1e-7, 1-1e-7]), the derivative of the clamp there.
**
** On logits (the stable form of TensorFlow's
** sigmoid_cross_entropy_with_logits): loss_i = max(z,0) - z t +
** log1p(exp(-|z|)), gradient (sigmoid(z) - t) / n.
**
** The loss is reduced on the device (double partial sums, then one block,
** elementwise.cu) straight into loss[0]: nothing crosses to the host.
*/
#include "common.cuh"

#define BCE_LO 1e-7f
#define BCE_HI (1.0f - 1e-7f)

/* One element's loss, in double as core/bce.c computes it: the batch is
** small, and the double logs keep the CPU's digits. */
static __device__ __forceinline__ double bce_term(float pred, float target, int logits) {
  const double t = target;
  if (logits) {
    const double z = pred;
    return (z > 0.0 ? z : 0.0) - z * t + log1p(exp(-fabs(z)));
  }
  const double p = fminf(fmaxf(pred, BCE_LO), BCE_HI); /* clamped in float */
  return -(t * log(p) + (1.0 - t) * log(1.0 - p));
}

__global__ void bce_partial_kernel(const float *pred, const float *target, size_t n,
                                   int logits, double *part) {
  double s = 0.0;
  GRID_LOOP(i, n) s += bce_term(pred[i], target[i], logits);
  s = block_sum(s);
  if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* d(mean loss)/d pred; for probabilities (p - t) / (p (1 - p)) / n, which is
** -t/p + (1-t)/(1-p) over n, and 0 outside the clamp's range */
__global__ void bce_backward_kernel(float *dpred, const float *pred, const float *target,
                                    size_t n, int logits, float inv_n) {
  if (logits) {
    GRID_LOOP(i, n) {
      const float z = pred[i];
      const float s = z >= 0.0f ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
      dpred[i] = (s - target[i]) * inv_n;
    }
  } else {
    GRID_LOOP(i, n) {
      const float p = pred[i], t = target[i];
      dpred[i] = (p < BCE_LO || p > BCE_HI) ? 0.0f : (p - t) / (p * (1.0f - p)) * inv_n;
    }
  }
}

void cuda_bce_forward(void *ctx, float *loss /* (1) */, const float *pred,
                      const float *target, size_t n, int logits) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) {
    cuda_fill(ctx, loss, 0.0f, 1);
    return;
  }
  int nb = reduce_blocks(n);
  bce_partial_kernel<<<nb, REDUCE_THREADS, 0, c->stream>>>(pred, target, n, logits,
                                                           c->scratch);
  if (launch_ok(c, "bce_partial_kernel")) reduce_finish(c, nb, 1.0 / (double)n, loss);
}

void cuda_bce_backward(void *ctx, float *dpred, const float *pred, const float *target,
                       size_t n, int logits) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return;
  bce_backward_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(
      dpred, pred, target, n, logits, 1.0f / (float)n);
  launch_ok(c, "bce_backward_kernel");
}
