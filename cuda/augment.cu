/*
** augment.cu -- per-sample flips and shifts of image batches on the GPU
** (backend.h's augment2d; core/augment.c is the CPU reference).
**
** Sample b has params (flip, dy, dx) and
**   y[b, c, i, j] = x[b, c, i - dy, jj],  jj = flip ? W-1-(j - dx) : j - dx,
** zero where the source is outside.  The map is one-to-one where it is
** defined, so the adjoint is a gather too: the source pixel (ii, s) takes
** the output gradient at (ii + dy, j) with j = dx + (flip ? W-1-s : s), or
** 0 when that falls outside.  One thread per output element, no atomics.
** In place (y == x, which the wrapper allows only without shifts) the map
** is a flip, its own adjoint: one thread per pair of columns swaps them.
**
** The parameters arrive in host memory (B*3 floats, integer-valued) and are
** copied into a buffer of the context that only grows (cuda_pool_grow).
*/
#include "common.cuh"

__global__ void augment_kernel(float *y, const float *x, const float *prm, int C, int H,
                               int W, size_t n, int adjoint) {
  const size_t HW = (size_t)H * W;
  GRID_LOOP(i, n) {
    const size_t plane = i / HW;
    const int r = (int)(i - plane * HW), row = r / W, col = r % W;
    const float *p = prm + 3 * (plane / (size_t)C);
    const int flip = p[0] != 0.0f, dy = (int)p[1], dx = (int)p[2];
    const float *xp = x + plane * HW;
    float v = 0.0f;
    if (!adjoint) { /* gather from the source */
      const int si = row - dy, jj = col - dx;
      if (si >= 0 && si < H && jj >= 0 && jj < W) v = xp[(size_t)si * W + (flip ? W - 1 - jj : jj)];
    } else { /* the output that came from this source pixel */
      const int oi = row + dy, oj = dx + (flip ? W - 1 - col : col);
      if (oi >= 0 && oi < H && oj >= 0 && oj < W) v = xp[(size_t)oi * W + oj];
    }
    y[i] = v;
  }
}

/* in place, flips only: n = B*C*H*(W/2) pairs */
__global__ void flip_in_place_kernel(float *x, const float *prm, int C, int H, int W,
                                     size_t n) {
  const int half = W / 2;
  GRID_LOOP(i, n) {
    const size_t rowi = i / half; /* (plane, row) */
    const int j = (int)(i - rowi * half);
    const size_t plane = rowi / H;
    if (prm[3 * (plane / (size_t)C)] == 0.0f) continue;
    float *row = x + rowi * W;
    const float t = row[j];
    row[j] = row[W - 1 - j];
    row[W - 1 - j] = t;
  }
}

void cuda_augment2d(void *ctx, float *y /* (B, C, H, W) */,
                    const float *x /* (B, C, H, W) */, const float *params /* host (B, 3) */,
                    int B, int C, int H, int W, int adjoint) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  const size_t n = (size_t)B * C * H * W;
  if (n == 0) return;
  const size_t np = 3 * (size_t)B;
  if (!cuda_pool_grow(c, &c->aug, &c->aug_bytes, (np < 1024 ? 1024 : np) * sizeof(float),
                      "augment parameters"))
    return;
  const float *prm = (const float *)c->aug;
  if (!cuda_upload(c, c->aug, params, np * sizeof(float), "augment parameters")) return;
  if (y == x) {
    const size_t pairs = (size_t)B * C * H * (W / 2);
    if (pairs == 0) return;
    flip_in_place_kernel<<<ew_blocks(pairs), EW_THREADS, 0, c->stream>>>(y, prm, C, H, W,
                                                                        pairs);
    launch_ok(c, "flip_in_place_kernel");
    return;
  }
  augment_kernel<<<ew_blocks(n), EW_THREADS, 0, c->stream>>>(y, x, prm, C, H, W, n,
                                                            adjoint);
  launch_ok(c, "augment_kernel");
}
