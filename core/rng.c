/*
** rng.c -- SplitMix64 keys and Philox4x32-10 draws (see rng.h).
*/
#include <math.h>

#include "rng.h"

void gan_rng_seed(gan_rng *r, uint64_t seed) { r->state = seed; }

/* SplitMix64: Steele, Lea and Flood 2014; constants from the paper. */
uint64_t gan_rng_next(gan_rng *r) {
  uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* Philox4x32-10 (Salmon et al. 2011), the generator cuRAND and PyTorch use:
** ten rounds of two 32x32->64 multiplications, the key bumped by the Weyl
** constants each round.  The CUDA backend has the same function. */
void gan_philox(uint64_t key, uint64_t ctr, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* 24 random bits make every float in [0,1) equally likely and never 1. */
static float u01(uint32_t w) { return (float)(w >> 8) * (1.0f / 16777216.0f); }

/* Element i uses word i%4 of block i/4. */
void gan_draw_uniform4(uint64_t key, uint64_t block, float u[4]) {
  uint32_t w[4];
  gan_philox(key, block, w);
  for (int j = 0; j < 4; j++) u[j] = u01(w[j]);
}

float gan_draw_uniform(uint64_t key, uint64_t i) {
  uint32_t w[4];
  gan_philox(key, i >> 2, w);
  return u01(w[i & 3]);
}

/* Box-Muller on words 0 and 1 of block i/2: the cosine branch for even i,
** the sine branch for odd i, so one block yields two normals (words 2 and 3
** are left unused, to keep the CPU and CUDA code identical and simple).
** u1 is shifted to (0,1] so that log never sees 0. */
void gan_draw_normal2(uint64_t key, uint64_t pair, float z[2]) {
  uint32_t w[4];
  gan_philox(key, pair, w);
  float u1 = 1.0f - u01(w[0]);
  float u2 = u01(w[1]);
  float r = sqrtf(-2.0f * logf(u1));
  float th = 6.2831853071795864769f * u2;
  z[0] = r * cosf(th);
  z[1] = r * sinf(th);
}

float gan_draw_normal(uint64_t key, uint64_t i) {
  float z[2];
  gan_draw_normal2(key, i >> 1, z);
  return z[i & 1];
}
