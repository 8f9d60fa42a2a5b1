/*
** metrics.h -- how good a generator is, measured on host arrays of images.
**
** Images are (N, 3, S, S) planar float32, as image.h loads them; the range
** does not matter to the SWD (each patch set is normalised), and it is the
** unit of the nearest-neighbour distances.  These run on the CPU (OpenBLAS
** products, OpenMP loops): a tensor on another device is copied to the host
** by the caller first.
*/
#ifndef GAN_METRICS_H
#define GAN_METRICS_H

#include <stdint.h>

#include "rng.h"
#include "status.h"

#define GAN_SWD_MAX_LEVELS 16

/* The parameters of Karras et al. 2018 (ProGAN, appendix D); zero fields
** take these defaults. */
typedef struct gan_swd_opts {
  int patch;    /* side of the square patches: 7 */
  int patches;  /* patches per image per level: 128 */
  int repeats;  /* sets of random directions: 4 */
  int dirs;     /* directions per set: 128 */
  int min_res;  /* the coarsest level: 16 */
} gan_swd_opts;

/*
** The sliced Wasserstein distance between two sets of images, per level of
** a Laplacian pyramid (5x5 binomial filter, mirrored edges; levels S, S/2,
** ... down to min_res, the last one the blurred residual), times 1000.
** levels[l] is the value at resolution S >> l; *nlevels their count; *avg
** their mean.  Patch positions and directions come from 'rng'.  The two
** sets may have different sizes (the distance between empirical
** distributions of different sizes is computed exactly).
*/
gan_status gan_swd(const float *a /* (na, 3, S, S) */, int64_t na,
                   const float *b /* (nb, 3, S, S) */, int64_t nb, int S,
                   const gan_swd_opts *opts, gan_rng *rng,
                   double levels[GAN_SWD_MAX_LEVELS], int *nlevels, double *avg);

/*
** For each query row, the Euclidean distance to its nearest reference row
** and that row's index (0-based).  With 'leave_one_out' the queries are the
** references (same rows, nq == nr) and each row skips itself: the distance
** of a real image to the others, the baseline of a memorisation check.
*/
gan_status gan_nearest(const float *q /* (nq, d) */, int64_t nq,
                       const float *ref /* (nr, d) */, int64_t nr, int64_t d,
                       int leave_one_out, float *dist /* (nq) */,
                       int64_t *index /* (nq) or NULL */);

#endif
