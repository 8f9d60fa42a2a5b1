/*
** augment.c -- per-sample flips and shifts of image batches on the CPU, for
** data augmentation (the slot augment2d of backend.h).
**
** Sample b has params (flip, dy, dx) and
**   y[b, c, i, j] = x[b, c, i - dy, jj],  jj = flip ? W-1-(j - dx) : j - dx,
** zero where the source is outside the image: a random horizontal flip,
** and DiffAugment's translation with zero padding (Zhao et al., "Differentiable
** augmentation for data-efficient GAN training", NeurIPS 2020).  Each output
** pixel comes from at most one input pixel, so the adjoint (the backward
** pass) scatters every gradient back to its source and leaves zeros where no
** output came from.
*/
#include <string.h>

#include "cpu.h"

/* The source column of output column j, or -1 when it is outside. */
static inline int src_col(int j, int flip, int dx, int W) {
  int jj = j - dx;
  if (jj < 0 || jj >= W) return -1;
  return flip ? W - 1 - jj : jj;
}

/* One plane; 'adjoint' scatters instead of gathering.  In place (y == x)
** only without a shift: a flip then swaps the pairs of a row. */
static void plane(float *y, const float *x, int H, int W, int flip, int dy,
                  int dx, int adjoint) {
  if (y == x) {
    if (!flip) return;
    for (int i = 0; i < H; i++) {
      float *row = y + (size_t)i * W;
      for (int j = 0; j < W / 2; j++) {
        float t = row[j];
        row[j] = row[W - 1 - j];
        row[W - 1 - j] = t;
      }
    }
    return;
  }
  if (adjoint) memset(y, 0, (size_t)H * W * sizeof(float));
  for (int i = 0; i < H; i++) {
    int ii = i - dy;
    if (ii < 0 || ii >= H) {
      if (!adjoint) memset(y + (size_t)i * W, 0, (size_t)W * sizeof(float));
      continue;
    }
    if (!adjoint) {
      float *out = y + (size_t)i * W;
      const float *in = x + (size_t)ii * W;
      for (int j = 0; j < W; j++) {
        int s = src_col(j, flip, dx, W);
        out[j] = s < 0 ? 0.0f : in[s];
      }
    } else {
      /* y is the input gradient (the source side), x the output gradient */
      float *out = y + (size_t)ii * W;
      const float *in = x + (size_t)i * W;
      for (int j = 0; j < W; j++) {
        int s = src_col(j, flip, dx, W);
        if (s >= 0) out[s] = in[j];
      }
    }
  }
}

void augment2d(void *ctx, float *y, const float *x, const float *params, int B,
               int C, int H, int W, int adjoint) {
  (void)ctx;
  const size_t HW = (size_t)H * W;
  GAN_OMP((long long)B * C * HW > GAN_OMP_MIN, "omp parallel for collapse(2)",
  for (int b = 0; b < B; b++) {
    for (int c = 0; c < C; c++) {
      const float *p = params + 3 * (size_t)b;
      size_t off = ((size_t)b * C + c) * HW;
      plane(y + off, x + off, H, W, p[0] != 0.0f, (int)p[1], (int)p[2], adjoint);
    }
  });
}
