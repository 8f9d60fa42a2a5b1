/*
** rng.cuh -- the device side of core/rng.c: Philox4x32-10 and the uniform
** and normal draws, written to give the same bits as the CPU.
**
** Element i of a draw with key k is a pure function of (k, i): the uniform
** uses word i%4 of Philox block i/4, the normal Box-Muller on words 0 and 1
** of block i/2 (cosine for even i, sine for odd).  The kernels give each
** thread one Philox block and let it write the 4 (uniform) or 2 (normal)
** elements of that block, so no block is computed twice.
**
** Same bits: the integer part is exact; u01 is exact (24 bits times 2^-24);
** the affine maps use __fmul_rn/__fadd_rn so that nvcc does not contract
** them into an FMA that the CPU build does not do.  Only logf, sinf and
** cosf may differ from the host's libm, by an ulp or two: normals agree to
** about 1e-6 relative, uniforms and dropout masks bit for bit.  Do not build
** with -use_fast_math.
*/
#ifndef GAN_CUDA_RNG_CUH
#define GAN_CUDA_RNG_CUH

#include <stdint.h>

/* Philox4x32-10 (Salmon et al. 2011) of counter (ctr, 0, 0, 0): the round
** of core/rng.c, with the 32x32->64 products split into __umulhi and the
** low word. */
static __device__ __forceinline__ void philox4x32_10(uint64_t key, uint64_t ctr,
                                                     uint32_t &o0, uint32_t &o1,
                                                     uint32_t &o2, uint32_t &o3) {
  uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
#pragma unroll
  for (int round = 0; round < 10; round++) {
    uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    uint32_t n0 = hi1 ^ c1 ^ k0;
    uint32_t n2 = hi0 ^ c3 ^ k1;
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  o0 = c0;
  o1 = c1;
  o2 = c2;
  o3 = c3;
}

/* 24 random bits: every float in [0,1) equally likely, never 1 */
static __device__ __forceinline__ float u01(uint32_t w) {
  return __fmul_rn((float)(w >> 8), 1.0f / 16777216.0f);
}

/* gan_draw_normal's two outputs of one Philox block: element 2q gets *z0
** (cosine), element 2q+1 gets *z1 (sine). */
static __device__ __forceinline__ void normal_pair(uint64_t key, uint64_t q, float *z0,
                                                   float *z1) {
  uint32_t w0, w1, w2, w3;
  philox4x32_10(key, q, w0, w1, w2, w3);
  float u1 = __fsub_rn(1.0f, u01(w0)); /* (0, 1]: log never sees 0 */
  float u2 = u01(w1);
  float r = sqrtf(__fmul_rn(-2.0f, logf(u1)));
  float th = __fmul_rn(6.2831853071795864769f, u2);
  *z0 = __fmul_rn(r, cosf(th));
  *z1 = __fmul_rn(r, sinf(th));
}

#endif
