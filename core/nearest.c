/*
** nearest.c -- nearest neighbours by Euclidean distance, for the
** memorisation check: is each generated image closer to some training image
** than a real image that was not trained on would be?
**
** |q - r|^2 = |q|^2 + |r|^2 - 2 q.r, the dot products by one sgemm per
** block of queries.  That form loses digits when q and r are nearly equal
** (exactly the case that matters here), so the winner's distance is then
** recomputed directly, in double.
*/
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "cpu.h"
#include "metrics.h"

#define BLOCK 256 /* queries per product */

static double norm2(const float *x, int64_t d) {
  double s = 0.0;
  for (int64_t i = 0; i < d; i++) s += (double)x[i] * x[i];
  return s;
}

static double dist2(const float *x, const float *y, int64_t d) {
  double s = 0.0;
  for (int64_t i = 0; i < d; i++) {
    double t = (double)x[i] - y[i];
    s += t * t;
  }
  return s;
}

gan_status gan_nearest(const float *q, int64_t nq, const float *ref, int64_t nr,
                       int64_t d, int leave_one_out, float *dist, int64_t *index) {
  if (nq < 1 || nr < 1 || d < 1)
    return gan_error(GAN_EARG, "nearest: empty sets (%lld queries, %lld references "
                     "of %lld values)", (long long)nq, (long long)nr, (long long)d);
  if (leave_one_out && (nq != nr || nr < 2))
    return gan_error(GAN_EARG, "nearest: leaving one out needs the same set twice, "
                     "of at least 2 rows (got %lld and %lld)", (long long)nq,
                     (long long)nr);
  double *rn = malloc((size_t)nr * sizeof(double));
  float *dots = malloc((size_t)BLOCK * nr * sizeof(float));
  if (!rn || !dots) {
    free(rn);
    free(dots);
    return gan_error(GAN_ENOMEM, "nearest: out of memory for %lld references",
                     (long long)nr);
  }
#pragma omp parallel for if (nr * d > GAN_OMP_MIN)
  for (int64_t j = 0; j < nr; j++) rn[j] = norm2(ref + j * d, d);
  /* a NaN or an infinity would make every distance NaN: no neighbour */
  const char *bad = NULL;
  int64_t at = 0;
  for (int64_t j = 0; j < nr && !bad; j++)
    if (!isfinite(rn[j])) bad = "reference", at = j;
  for (int64_t i = 0; i < nq && !bad; i++)
    if (!isfinite(norm2(q + i * d, d))) bad = "query", at = i;
  if (bad) {
    free(rn);
    free(dots);
    return gan_error(GAN_EARG, "nearest: %s %lld has values that are not finite "
                     "(NaN or infinite)", bad, (long long)at + 1);
  }
  for (int64_t q0 = 0; q0 < nq; q0 += BLOCK) {
    int nb = (int)(nq - q0 < BLOCK ? nq - q0 : BLOCK);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, (int)nr, (int)d, 1.0f,
                q + q0 * d, (int)d, ref, (int)d, 0.0f, dots, (int)nr);
#pragma omp parallel for
    for (int i = 0; i < nb; i++) {
      const float *qi = q + (q0 + i) * d;
      double qn = norm2(qi, d), best = INFINITY;
      int64_t arg = -1;
      for (int64_t j = 0; j < nr; j++) {
        if (leave_one_out && j == q0 + i) continue;
        double e = qn + rn[j] - 2.0 * dots[(size_t)i * nr + j];
        if (arg < 0 || e < best) best = e, arg = j; /* arg: never -1 */
      }
      dist[q0 + i] = (float)sqrt(dist2(qi, ref + arg * d, d));
      if (index) index[q0 + i] = arg;
    }
  }
  free(rn);
  free(dots);
  return GAN_OK;
}
