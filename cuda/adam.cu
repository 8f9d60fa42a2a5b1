/*
** adam.cu -- one Adam step over every tensor of an optimizer, in ONE
** kernel launch (a multi-tensor apply, as in apex and PyTorch's foreach
** optimizers).
**
** Math (Kingma and Ba 2015, in Keras's form or the paper's Algorithm 1,
** plus a weight-decay term scaled by lr and not by the adaptive denominator,
** as in AdamW; the same as the CPU backend's core/adam.c):
**   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
**   p -= lr * ((m * a) / (sqrt(v * b) + eps) + weight_decay * p)
** a and b carry the form and its bias corrections, computed in double on
** the host (gan_adam_scales_of, backend.h), the CPU's arithmetic exactly.
**
** Launch: every tensor is cut into chunks of ADAM_CHUNK floats and each
** block updates one chunk; a small device array of descriptors {p, g, m,
** v, size, first chunk} tells a block, by binary search on its index,
** which tensor it works on.  The descriptors of the last few groups stay
** on the device (adam_entry, common.cuh) and a group is uploaded again only
** when its pointers or sizes change, so a training loop that alternates
** D's and G's optimizers uploads nothing in steady state.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

#define ADAM_CHUNK 16384 /* floats per block: 64 per thread */
static_assert(ADAM_CHUNK % 4 == 0, "a chunk starts on a 16-byte boundary of its tensor");
#define ADAM_THREADS 256

/* One value's update; the vector and the scalar loops below both use it,
** so they give the same bits. */
static __device__ __forceinline__ void adam_one(float &p, float &m, float &v, float g,
                                                float lr, float b1, float b2, float eps,
                                                float wd, float a, float b) {
  m = b1 * m + (1.0f - b1) * g;
  v = b2 * v + (1.0f - b2) * g * g;
  p = p - lr * ((m * a) / (sqrtf(v * b) + eps) + wd * p);
}

/* a and b: the form and its bias corrections (gan_adam_scales_of).  A
** chunk whose four tensors are 16-byte aligned (whole tensors always are:
** the pool's blocks are) goes four values at a time, in 16-byte loads and
** stores: a quarter of the memory instructions, for a kernel that moves 28
** bytes a parameter and does little else; the rest (a view at an odd
** offset, a tensor's last 1 to 3 values) one at a time.  The tensors are
** apart (gan_adam_step checks it), hence __restrict__. */
__global__ void adam_kernel(const adam_desc *d, int count, float lr, float b1, float b2,
                            float eps, float wd, float a, float b) {
  __shared__ int ti;
  if (threadIdx.x == 0) { /* the last tensor whose first chunk is <= ours */
    int lo = 0, hi = count - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) / 2;
      if (d[mid].chunk0 <= blockIdx.x) lo = mid;
      else hi = mid - 1;
    }
    ti = lo;
  }
  __syncthreads();
  const adam_desc t = d[ti];
  float *__restrict__ P = t.p, *__restrict__ M = t.m, *__restrict__ V = t.v;
  const float *__restrict__ G = t.g;
  const size_t begin = (size_t)(blockIdx.x - t.chunk0) * ADAM_CHUNK;
  const size_t end = begin + ADAM_CHUNK < t.size ? begin + ADAM_CHUNK : t.size;
  size_t rest = begin; /* the first value the scalar loop takes */
  if ((((uintptr_t)P | (uintptr_t)G | (uintptr_t)M | (uintptr_t)V) & 15) == 0) {
    const size_t n4 = (end - begin) / 4; /* begin is a multiple of 4 (ADAM_CHUNK) */
    float4 *P4 = (float4 *)(P + begin), *M4 = (float4 *)(M + begin),
           *V4 = (float4 *)(V + begin);
    const float4 *G4 = (const float4 *)(G + begin);
    for (size_t k = threadIdx.x; k < n4; k += blockDim.x) {
      float4 p = P4[k], m = M4[k], v = V4[k];
      const float4 g = G4[k];
      adam_one(p.x, m.x, v.x, g.x, lr, b1, b2, eps, wd, a, b);
      adam_one(p.y, m.y, v.y, g.y, lr, b1, b2, eps, wd, a, b);
      adam_one(p.z, m.z, v.z, g.z, lr, b1, b2, eps, wd, a, b);
      adam_one(p.w, m.w, v.w, g.w, lr, b1, b2, eps, wd, a, b);
      P4[k] = p;
      M4[k] = m;
      V4[k] = v;
    }
    rest = begin + 4 * n4;
  }
  for (size_t i = rest + threadIdx.x; i < end; i += blockDim.x) {
    float p = P[i], m = M[i], v = V[i];
    adam_one(p, m, v, G[i], lr, b1, b2, eps, wd, a, b);
    P[i] = p;
    M[i] = m;
    V[i] = v;
  }
}

/* Does entry 'e' hold exactly the group's tensors? */
static int adam_matches(const adam_entry *e, const gan_adam_group *g) {
  if (e->count != g->count) return 0;
  for (int i = 0; i < g->count; i++) {
    const adam_desc *d = &e->host[i];
    if (d->p != g->params[i] || d->g != g->grads[i] || d->m != g->m[i] ||
        d->v != g->v[i] || d->size != (unsigned long long)g->sizes[i])
      return 0;
  }
  return 1;
}

/* Builds and uploads the group's descriptors into entry 'e'; 0 on failure
** (recorded in the context). */
static int adam_upload(cuda_ctx *c, adam_entry *e, const gan_adam_group *g) {
  e->count = 0; /* invalid until the upload is queued */
  if (g->count > e->cap) {
    adam_desc *host = (adam_desc *)malloc((size_t)g->count * sizeof *host);
    adam_desc *dev = (adam_desc *)cuda_pool_alloc(c, (size_t)g->count * sizeof *dev);
    if (host == NULL || dev == NULL) {
      free(host);
      cuda_pool_free(c, dev);
      cuda_fail(c, GAN_ENOMEM, "adam_step: no memory for %d descriptors", g->count);
      return 0;
    }
    free(e->host);
    cuda_pool_free(c, e->dev); /* queued work that reads it runs first */
    e->host = host;
    e->dev = dev;
    e->cap = g->count;
  }
  unsigned long long chunk = 0;
  for (int i = 0; i < g->count; i++) {
    adam_desc *d = &e->host[i];
    d->p = g->params[i];
    d->g = g->grads[i];
    d->m = g->m[i];
    d->v = g->v[i];
    d->size = g->sizes[i];
    d->chunk0 = chunk;
    chunk += (d->size + ADAM_CHUNK - 1) / ADAM_CHUNK;
  }
  /* from pageable memory: staged before the call returns, so the host copy
  ** may change later without racing the transfer */
  if (!cuda_ok(c, cudaMemcpyAsync(e->dev, e->host, (size_t)g->count * sizeof(adam_desc),
                                  cudaMemcpyHostToDevice, c->stream),
               "cudaMemcpyAsync (adam descriptors)"))
    return 0;
  e->nchunks = chunk;
  e->count = g->count;
  return 1;
}

void cuda_adam_step(void *ctx, const gan_adam_group *g) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (g->count <= 0) return;
  adam_entry *e = NULL, *victim = &c->adam[0];
  for (int k = 0; k < ADAM_CACHE && e == NULL; k++) {
    adam_entry *x = &c->adam[k];
    if (adam_matches(x, g)) e = x;
    else if (x->used_at < victim->used_at) victim = x;
  }
  if (e == NULL) {
    e = victim;
    if (!adam_upload(c, e, g)) return;
  }
  e->used_at = ++c->adam_clock;
  if (e->nchunks == 0) return; /* only empty tensors */
  if (e->nchunks > 0x7fffffffull) {
    cuda_fail(c, GAN_EARG, "adam_step: %llu chunks exceed one launch", e->nchunks);
    return;
  }
  const gan_adam_scales sc = gan_adam_scales_of(g); /* as the CPU's (backend.h) */
  adam_kernel<<<(unsigned)e->nchunks, ADAM_THREADS, 0, c->stream>>>(
      e->dev, e->count, g->lr, g->beta1, g->beta2, g->eps, g->weight_decay, sc.a, sc.b);
  launch_ok(c, "adam_kernel");
}

void cuda_adam_release(cuda_ctx *c) {
  for (int k = 0; k < ADAM_CACHE; k++) {
    free(c->adam[k].host);
    cuda_pool_free(c, c->adam[k].dev);
    memset(&c->adam[k], 0, sizeof c->adam[k]);
  }
}
