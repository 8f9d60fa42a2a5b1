/*
** memory.cu -- the caching pool behind alloc/free, and the transfers.
**
** cudaMalloc and cudaFree are slow (cudaFree also waits for the whole
** device), and an eager engine allocates its activations anew at every
** step, so blocks are never returned to the driver while the process runs:
** free puts a block on the free list of its size class, and the next alloc
** of that class takes it back.  Reuse needs no synchronisation because all
** the work is queued on the one stream: whatever used the block before it
** was freed runs before whatever uses it next (PyTorch's caching allocator
** makes the same argument per stream).
**
** When cudaMalloc fails, the pool waits for the queued work, returns all
** its cached blocks to the driver and tries once more; then it reports
** GAN_ENOMEM with the size asked for and what the driver says is free.
**
** Transfers: from_host is cudaMemcpyAsync from pageable memory, which
** returns once the source has been staged, so the caller may reuse its
** buffer at once (it may also wait for the stream: for the small arrays
** that ops send at every step, cuda_upload stages them in pinned memory
** instead); to_host waits for the stream, and reports any failure a
** void slot recorded since the last report (common.cuh).  A reader copies
** into pinned memory (from pageable memory the copy would wait) and records
** an event: waiting for that event, not the stream, leaves the work queued
** after the read running, so a loop that waits for step N-1's values after
** queueing step N never lets the GPU go idle.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

/* --- size classes --------------------------------------------------------- */

/* The class of a request and its rounded size; -1 if absurdly large. */
static int pool_class(size_t bytes, size_t *rounded) {
  if (bytes == 0) bytes = 1; /* a distinct pointer even for nothing */
  if (bytes <= POOL_SMALL_MAX) {
    size_t r = (bytes + POOL_SMALL_STEP - 1) & ~(POOL_SMALL_STEP - 1);
    *rounded = r;
    return (int)(r / POOL_SMALL_STEP) - 1;
  }
  if (bytes > ((size_t)1 << 62)) return -1;
  int e = 63 - __builtin_clzll((unsigned long long)bytes); /* 2^e <= bytes, e >= 20 */
  size_t step = (size_t)1 << (e - 3);                      /* eight steps per octave */
  size_t q = (bytes + step - 1) / step;                    /* 8 .. 16 */
  if (q == 16) { /* exactly the next power of two: class 0 of octave e+1 */
    e++;
    step <<= 1;
    q = 8;
  }
  *rounded = q * step;
  return POOL_NSMALL + (e - 20) * 8 + (int)(q - 8);
}

static unsigned hash_ptr(const void *p) {
  unsigned long long x = (unsigned long long)(uintptr_t)p >> 8;
  x *= 0x9E3779B97F4A7C15ull; /* Fibonacci hashing: the top bits mix well */
  return (unsigned)(x >> 52) & (POOL_HASH - 1);
}

static pool_block *node_get(cuda_pool *p) {
  pool_block *b = p->spare;
  if (b != NULL) {
    p->spare = b->next;
    return b;
  }
  return (pool_block *)malloc(sizeof *b);
}

static void node_put(cuda_pool *p, pool_block *b) {
  b->next = p->spare;
  p->spare = b;
}

/* --- the pool --------------------------------------------------------------- */

/* Returns NULL with gan_error set (not the sticky status: alloc reports its
** failure itself). */
void *cuda_pool_alloc(cuda_ctx *c, size_t bytes) {
  cuda_pool *p = &c->pool;
  size_t rounded = 0;
  int cls = pool_class(bytes, &rounded);
  if (cls < 0) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
    gan_error(GAN_ENOMEM, "CUDA out of memory: requested %zu bytes, %zu free", bytes,
              free_b);
    return NULL;
  }
  pool_block *b = p->free_list[cls];
  if (b != NULL) {
    p->free_list[cls] = b->next;
  } else {
    b = node_get(p);
    if (b == NULL) {
      gan_error(GAN_ENOMEM, "out of host memory for the CUDA pool");
      return NULL;
    }
    void *ptr = NULL;
    cudaError_t e = cudaMalloc(&ptr, rounded);
    if (e == cudaErrorMemoryAllocation) {
      /* give the cached blocks back and try once more */
      (void)cudaGetLastError();
      (void)cudaStreamSynchronize(c->stream);
      cuda_pool_trim(c);
      e = cudaMalloc(&ptr, rounded);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      node_put(p, b);
      size_t free_b = 0, total_b = 0;
      if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) (void)cudaGetLastError();
      if (e == cudaErrorMemoryAllocation)
        gan_error(GAN_ENOMEM, "CUDA out of memory: requested %zu bytes, %zu free",
                  bytes, free_b);
      else
        gan_error(GAN_EBACKEND, "cudaMalloc of %zu bytes failed: %s (%s)", rounded,
                  cudaGetErrorString(e), cudaGetErrorName(e));
      return NULL;
    }
    b->ptr = ptr;
    b->size = rounded;
    b->cls = cls;
    p->reserved += rounded;
    p->n_malloc++;
  }
  unsigned h = hash_ptr(b->ptr);
  b->next = p->used[h];
  p->used[h] = b;
  p->in_use += b->size;
  return b->ptr;
}

size_t cuda_pool_free(cuda_ctx *c, void *ptr) {
  if (ptr == NULL) return 0;
  cuda_pool *p = &c->pool;
  pool_block **link = &p->used[hash_ptr(ptr)];
  while (*link != NULL && (*link)->ptr != ptr) link = &(*link)->next;
  pool_block *b = *link;
  if (b == NULL) {
    cuda_fail(c, GAN_EARG, "CUDA free of %p: not a block of the CUDA backend", ptr);
    return 0;
  }
  *link = b->next;
  p->in_use -= b->size;
  b->next = p->free_list[b->cls];
  p->free_list[b->cls] = b;
  return b->size;
}

int cuda_pool_grow(cuda_ctx *c, void **buf, size_t *bytes, size_t need, const char *what) {
  if (need <= *bytes) return 1;
  void *p = cuda_pool_alloc(c, need);
  if (p == NULL) {
    cuda_fail(c, GAN_ENOMEM, "%s: %s", what, gan_errmsg());
    return 0;
  }
  cuda_pool_free(c, *buf); /* queued work that uses it runs first */
  *buf = p;
  *bytes = need;
  return 1;
}

void cuda_pool_trim(cuda_ctx *c) {
  cuda_pool *p = &c->pool;
  for (int k = 0; k < POOL_NCLASSES; k++) {
    while (p->free_list[k] != NULL) {
      pool_block *b = p->free_list[k];
      p->free_list[k] = b->next;
      if (cudaFree(b->ptr) != cudaSuccess) (void)cudaGetLastError();
      p->reserved -= b->size;
      node_put(p, b);
    }
  }
}

void cuda_pool_release_all(cuda_ctx *c) {
  cuda_pool *p = &c->pool;
  cuda_pool_trim(c);
  for (int h = 0; h < POOL_HASH; h++) {
    while (p->used[h] != NULL) {
      pool_block *b = p->used[h];
      p->used[h] = b->next;
      if (cudaFree(b->ptr) != cudaSuccess) (void)cudaGetLastError();
      p->reserved -= b->size;
      p->in_use -= b->size;
      free(b);
    }
  }
  while (p->spare != NULL) {
    pool_block *b = p->spare;
    p->spare = b->next;
    free(b);
  }
}

/* --- the memory slots --------------------------------------------------------- */

/* The slots count what tensors hold apart from the backend's own buffers
** (cuBLAS workspace, scratch, upload buffers), so that bytes_in_use returns
** to where it was when the tensors are gone. */
void *cuda_alloc(void *ctx, size_t bytes) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  void *p = cuda_pool_alloc(c, bytes);
  if (p != NULL) {
    size_t rounded = 0;
    pool_class(bytes, &rounded);
    c->tensor_bytes += rounded;
    if (c->tensor_bytes > c->tensor_peak) c->tensor_peak = c->tensor_bytes;
  }
  return p;
}

void cuda_free(void *ctx, void *ptr) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  c->tensor_bytes -= cuda_pool_free(c, ptr);
}

/* allocs: cudaMalloc calls so far, constant once training reaches its
** steady state; bytes: held by tensors (rounded to the pool's classes). */
void cuda_mem_stats(void *ctx, gan_mem_stats *out) {
  const cuda_ctx *c = (const cuda_ctx *)ctx;
  out->allocs = c->pool.n_malloc;
  out->bytes_in_use = c->tensor_bytes;
  out->peak_bytes = c->tensor_peak;
}

gan_status cuda_to_host(void *ctx, float *dst_host, const float *src, size_t n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  cudaError_t e = cudaSuccess;
  if (n > 0)
    e = cudaMemcpyAsync(dst_host, src, n * sizeof(float), cudaMemcpyDeviceToHost,
                        c->stream);
  cudaError_t es = cudaStreamSynchronize(c->stream);
  gan_status s = cuda_take_status(c); /* an earlier failure is the cause */
  if (s != GAN_OK) {
    (void)cudaGetLastError();
    return s;
  }
  if (e != cudaSuccess) return cuda_status(e, "cudaMemcpyAsync (device to host)");
  if (es != cudaSuccess) return cuda_status(es, "cudaStreamSynchronize");
  return GAN_OK;
}

gan_status cuda_from_host(void *ctx, float *dst, const float *src_host, size_t n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0) return GAN_OK;
  cudaError_t e = cudaMemcpyAsync(dst, src_host, n * sizeof(float),
                                  cudaMemcpyHostToDevice, c->stream);
  if (e != cudaSuccess) return cuda_status(e, "cudaMemcpyAsync (host to device)");
  return GAN_OK;
}

void cuda_copy(void *ctx, float *dst, const float *src, size_t n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (n == 0 || dst == src) return;
  cuda_ok(c, cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice,
                             c->stream),
          "cudaMemcpyAsync (device to device)");
}

gan_status cuda_synchronize(void *ctx) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  cudaError_t e = cudaStreamSynchronize(c->stream);
  gan_status s = cuda_take_status(c);
  if (s != GAN_OK) {
    (void)cudaGetLastError();
    return s;
  }
  if (e != cudaSuccess) return cuda_status(e, "cudaStreamSynchronize");
  return GAN_OK;
}

/* --- uploads ---------------------------------------------------------------- */

int cuda_upload(cuda_ctx *c, void *dst, const void *src, size_t bytes, const char *what) {
  if (bytes == 0) return 1;
  upload_slot *u = &c->upload[c->upload_next];
  c->upload_next = (c->upload_next + 1) % UPLOAD_SLOTS;
  char buf[160];
  if (u->done == NULL) {
    snprintf(buf, sizeof buf, "cudaEventCreateWithFlags (%s)", what);
    if (!cuda_ok(c, cudaEventCreateWithFlags(&u->done, cudaEventDisableTiming), buf)) {
      u->done = NULL;
      return 0;
    }
  }
  /* the copy that last read this slot has run (an event never recorded
  ** counts as complete) */
  snprintf(buf, sizeof buf, "cudaEventSynchronize (%s)", what);
  if (!cuda_ok(c, cudaEventSynchronize(u->done), buf)) return 0;
  if (u->bytes < bytes) {
    size_t n = bytes < 4096 ? 4096 : bytes;
    snprintf(buf, sizeof buf, "cudaFreeHost (%s)", what);
    if (u->host && !cuda_ok(c, cudaFreeHost(u->host), buf)) return 0;
    u->host = NULL;
    u->bytes = 0;
    snprintf(buf, sizeof buf, "cudaHostAlloc of %zu bytes (%s)", n, what);
    if (!cuda_ok(c, cudaHostAlloc(&u->host, n, cudaHostAllocDefault), buf)) {
      u->host = NULL;
      return 0;
    }
    u->bytes = n;
  }
  memcpy(u->host, src, bytes);
  snprintf(buf, sizeof buf, "cudaMemcpyAsync (%s)", what);
  if (!cuda_ok(c, cudaMemcpyAsync(dst, u->host, bytes, cudaMemcpyHostToDevice, c->stream),
               buf))
    return 0;
  snprintf(buf, sizeof buf, "cudaEventRecord (%s)", what);
  if (cuda_ok(c, cudaEventRecord(u->done, c->stream), buf)) return 1;
  (void)cudaStreamSynchronize(c->stream); /* the event does not cover that copy */
  return 0;
}

void cuda_upload_release(cuda_ctx *c) {
  for (int i = 0; i < UPLOAD_SLOTS; i++) {
    upload_slot *u = &c->upload[i];
    if (u->done) {
      cudaEventSynchronize(u->done);
      cudaEventDestroy(u->done);
    }
    if (u->host) cudaFreeHost(u->host);
    u->done = NULL;
    u->host = NULL;
    u->bytes = 0;
  }
  (void)cudaGetLastError();
}

/* --- readers ---------------------------------------------------------------- */

typedef struct cuda_reader {
  float *host;      /* pinned, GAN_READ_MAX floats */
  cudaEvent_t done; /* recorded after the copies */
} cuda_reader;

gan_status cuda_reader_new(void *ctx, void **rd) {
  (void)ctx;
  cuda_reader *r = (cuda_reader *)calloc(1, sizeof *r);
  if (r == NULL) return gan_error(GAN_ENOMEM, "out of host memory for a reader");
  cudaError_t e = cudaHostAlloc((void **)&r->host, GAN_READ_MAX * sizeof(float),
                                cudaHostAllocDefault);
  if (e != cudaSuccess) {
    free(r);
    return cuda_status(e, "cudaHostAlloc (a reader's buffer)");
  }
  e = cudaEventCreateWithFlags(&r->done, cudaEventDisableTiming);
  if (e != cudaSuccess) {
    cudaFreeHost(r->host);
    free(r);
    return cuda_status(e, "cudaEventCreateWithFlags (a reader)");
  }
  *rd = r;
  return GAN_OK;
}

void cuda_reader_free(void *ctx, void *rd) {
  (void)ctx;
  cuda_reader *r = (cuda_reader *)rd;
  cudaEventSynchronize(r->done); /* a copy in flight still writes r->host */
  cudaEventDestroy(r->done);
  cudaFreeHost(r->host);
  (void)cudaGetLastError();
  free(r);
}

gan_status cuda_reader_start(void *ctx, void *rd, const float *const *src,
                             const size_t *counts, int n) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  cuda_reader *r = (cuda_reader *)rd;
  gan_status s = cuda_take_status(c); /* an earlier failure is the cause */
  if (s != GAN_OK) return s;
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    cudaError_t e = cudaMemcpyAsync(r->host + off, src[i], counts[i] * sizeof(float),
                                    cudaMemcpyDeviceToHost, c->stream);
    if (e != cudaSuccess) {
      /* the copies queued so far still write r->host: wait for them */
      (void)cudaStreamSynchronize(c->stream);
      return cuda_status(e, "cudaMemcpyAsync (a read)");
    }
    off += counts[i];
  }
  cudaError_t e = cudaEventRecord(r->done, c->stream);
  if (e != cudaSuccess) {
    (void)cudaStreamSynchronize(c->stream);
    return cuda_status(e, "cudaEventRecord (a read)");
  }
  return GAN_OK;
}

int cuda_reader_ready(void *ctx, void *rd) {
  (void)ctx;
  cudaError_t e = cudaEventQuery(((cuda_reader *)rd)->done);
  if (e == cudaSuccess) return 1;
  (void)cudaGetLastError(); /* not ready is no error; a real one, wait reports */
  return e != cudaErrorNotReady;
}

gan_status cuda_reader_wait(void *ctx, void *rd, float *dst, size_t total) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  cuda_reader *r = (cuda_reader *)rd;
  cudaError_t e = cudaEventSynchronize(r->done);
  gan_status s = cuda_take_status(c); /* an earlier failure is the cause */
  if (s != GAN_OK) {
    (void)cudaGetLastError();
    return s;
  }
  if (e != cudaSuccess) return cuda_status(e, "cudaEventSynchronize (a read)");
  memcpy(dst, r->host, total * sizeof(float));
  return GAN_OK;
}
