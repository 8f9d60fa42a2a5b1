/*
** rng.h -- the seedable random generator.
**
** A generator is one 64-bit state advanced by SplitMix64 (Steele et al.,
** "Fast splittable pseudorandom number generators", 2014).  Each draw of n
** numbers takes one 64-bit key from it; number i of that draw is then a pure
** function of (key, i) through Philox4x32-10 (Salmon et al., "Parallel random
** numbers: as easy as 1, 2, 3", SC 2011).  So a draw costs the generator one
** step whatever its size, any backend can compute it in parallel, and the CPU
** and the GPU produce the same numbers.  The state is plain data: saving it
** in a checkpoint is saving one integer.
*/
#ifndef GAN_RNG_H
#define GAN_RNG_H

#include <stdint.h>

typedef struct gan_rng {
  uint64_t state;
} gan_rng;

void gan_rng_seed(gan_rng *r, uint64_t seed);
uint64_t gan_rng_next(gan_rng *r);        /* next 64-bit key */

/* Philox4x32-10 of counter (ctr, 0, 0, 0) under 'key': four 32-bit words */
void gan_philox(uint64_t key, uint64_t ctr, uint32_t out[4]);

/* uniform in [0, 1) and standard normal, element i of the draw 'key' */
float gan_draw_uniform(uint64_t key, uint64_t i);
float gan_draw_normal(uint64_t key, uint64_t i);

/* the same numbers a block at a time: elements 4*block .. 4*block+3 of a
** uniform draw, elements 2*pair and 2*pair+1 of a normal draw */
void gan_draw_uniform4(uint64_t key, uint64_t block, float u[4]);
void gan_draw_normal2(uint64_t key, uint64_t pair, float z[2]);

#endif
