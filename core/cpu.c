/*
** cpu.c -- the CPU backend: memory, elementwise ops, random draws, and the
** table that gathers the kernels of linear.c, activation.c, batchnorm.c,
** bce.c and adam.c into one gan_backend.
**
** Memory is 64-byte aligned (a cache line, an AVX-512 vector) and counted,
** so a test can check that a training step allocates nothing.  The counters
** are atomics: tensors may be freed from any thread that runs Lua's GC.
**
** A block larger than the machine's memory and swap together is refused
** here, not left to malloc: where the kernel overcommits without limit
** (vm.overcommit_memory = 1, as on some VMs and containers), malloc grants
** it and the first pass over it (gan.ones' fill) brings the OOM killer,
** which ends the REPL instead of returning an error.
*/
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <sys/sysinfo.h>
#endif

#include "cpu.h"
#include "rng.h"

typedef struct cpu_ctx {
  atomic_uint_fast64_t allocs, bytes, peak;
} cpu_ctx;

/* Each block carries its size in a 64-byte header, for the byte count. */
#define HDR 64

/* The machine's memory and swap in bytes; 0 where unknown.  (Asked at each
   large allocation: a VM's memory can grow.) */
static uint64_t memory_and_swap(void) {
#ifdef __linux__
  struct sysinfo si;
  if (sysinfo(&si) == 0)
    return ((uint64_t)si.totalram + si.totalswap) * (si.mem_unit ? si.mem_unit : 1);
#endif
  return 0;
}

static void *cpu_alloc(void *ctx, size_t bytes) {
  cpu_ctx *c = ctx;
  if (bytes > ((size_t)1 << 30)) {
    uint64_t have = memory_and_swap();
    if (have > 0 && bytes > have) {
      gan_error(GAN_ENOMEM,
                "out of memory: cannot allocate %zu bytes on the cpu (this machine has "
                "%llu bytes of memory and swap)", bytes, (unsigned long long)have);
      return NULL;
    }
  }
  size_t total = HDR + ((bytes + 63) & ~(size_t)63);
  char *p = aligned_alloc(64, total);
  if (!p) {
    gan_error(GAN_ENOMEM, "out of memory: cannot allocate %zu bytes on the cpu",
              bytes);
    return NULL;
  }
  *(size_t *)p = total;
  atomic_fetch_add(&c->allocs, 1);
  uint64_t now = atomic_fetch_add(&c->bytes, total) + total;
  uint64_t peak = atomic_load(&c->peak);
  while (now > peak && !atomic_compare_exchange_weak(&c->peak, &peak, now)) {
  }
  return p + HDR;
}

static void cpu_free(void *ctx, void *ptr) {
  cpu_ctx *c = ctx;
  if (!ptr) return;
  char *p = (char *)ptr - HDR;
  atomic_fetch_sub(&c->bytes, *(size_t *)p);
  free(p);
}

static void cpu_mem_stats(void *ctx, gan_mem_stats *out) {
  cpu_ctx *c = ctx;
  out->allocs = atomic_load(&c->allocs);
  out->bytes_in_use = atomic_load(&c->bytes);
  out->peak_bytes = atomic_load(&c->peak);
}

static gan_status cpu_memcpy(void *ctx, float *dst, const float *src, size_t n) {
  (void)ctx;
  if (dst != src) memcpy(dst, src, n * sizeof(float));
  return GAN_OK;
}

static void cpu_copy(void *ctx, float *dst, const float *src, size_t n) {
  cpu_memcpy(ctx, dst, src, n);
}

static void cpu_fill(void *ctx, float *x, float value, size_t n) {
  (void)ctx;
  long long N = (long long)n;
  if (value == 0.0f) {
    memset(x, 0, n * sizeof(float));
    return;
  }
  GAN_OMP(N > GAN_OMP_MIN, "omp parallel for",
  for (long long i = 0; i < N; i++) x[i] = value;);
}

static void cpu_axpby(void *ctx, float *y, float a, const float *x, float b,
                      size_t n) {
  (void)ctx;
  long long N = (long long)n;
  GAN_OMP(N > GAN_OMP_MIN, "omp parallel for",
  for (long long i = 0; i < N; i++) y[i] = a * x[i] + b * y[i];);
}

static void cpu_mul(void *ctx, float *y, const float *a, const float *b,
                    size_t n) {
  (void)ctx;
  long long N = (long long)n;
  GAN_OMP(N > GAN_OMP_MIN, "omp parallel for",
  for (long long i = 0; i < N; i++) y[i] = a[i] * b[i];);
}

static gan_status cpu_sum(void *ctx, const float *x, size_t n, double *out) {
  (void)ctx;
  double s = 0.0;
  long long N = (long long)n;
  GAN_OMP(N > GAN_OMP_MIN, "omp parallel for reduction(+ : s)",
  for (long long i = 0; i < N; i++) s += x[i];);
  *out = s;
  return GAN_OK;
}

static void cpu_sum_to(void *ctx, float *out, const float *x, size_t n,
                       double scale) {
  double s;
  cpu_sum(ctx, x, n, &s);
  out[0] = (float)(scale * s);
}

static void cpu_gather_rows(void *ctx, float *dst, const float *src,
                            const int64_t *idx, int64_t nrows, int64_t cols) {
  (void)ctx;
  for (int64_t r = 0; r < nrows; r++)
    memcpy(dst + r * cols, src + idx[r] * cols, (size_t)cols * sizeof(float));
}

/* Both fills compute each Philox block once and use every word the draw
** functions of rng.c would take from it (four uniforms, or the two normals of
** one Box-Muller pair), so they give exactly gan_draw_uniform/normal(key, i)
** at 1/4 and 1/2 of the per-element cost. */
static void cpu_randn(void *ctx, float *x, size_t n, uint64_t key, float mean,
                      float std) {
  (void)ctx;
  long long pairs = (long long)((n + 1) / 2);
  GAN_OMP(pairs > GAN_OMP_MIN / 16, "omp parallel for",
  for (long long b = 0; b < pairs; b++) {
    float z[2];
    gan_draw_normal2(key, (uint64_t)b, z);
    size_t i = (size_t)b * 2;
    x[i] = mean + std * z[0];
    if (i + 1 < n) x[i + 1] = mean + std * z[1];
  });
}

static void cpu_rand(void *ctx, float *x, size_t n, uint64_t key, float lo,
                     float hi) {
  (void)ctx;
  long long blocks = (long long)((n + 3) / 4);
  GAN_OMP(blocks > GAN_OMP_MIN / 32, "omp parallel for",
  for (long long b = 0; b < blocks; b++) {
    float u[4];
    gan_draw_uniform4(key, (uint64_t)b, u);
    for (int j = 0; j < 4; j++) {
      size_t i = (size_t)b * 4 + (size_t)j;
      if (i >= n) break;
      /* rounding can reach hi when |lo| >> hi - lo: keep the range half-open */
      float v = lo + (hi - lo) * u[j];
      x[i] = v < hi ? v : nextafterf(hi, lo);
    }
  });
}

/* --- readers ------------------------------------------------------------------
** The CPU's work is done when its call returns, so a read copies the values
** at start.  With GAN_TEST_DEFER_READS=1 in the environment (read when a
** reader is made) a reader says "not ready" until it is waited for, as a
** GPU's does while its queue runs: that is how the specs run the training
** loop's deferred accounting (gan/train.lua) without a GPU. */
typedef struct cpu_reader {
  float v[GAN_READ_MAX];
  int defer, waited;
} cpu_reader;

static gan_status cpu_reader_new(void *ctx, void **rd) {
  (void)ctx;
  cpu_reader *r = calloc(1, sizeof *r);
  if (r == NULL) return gan_error(GAN_ENOMEM, "out of memory for a reader");
  const char *e = getenv("GAN_TEST_DEFER_READS");
  r->defer = e != NULL && *e != '\0' && strcmp(e, "0") != 0;
  *rd = r;
  return GAN_OK;
}

static void cpu_reader_free(void *ctx, void *rd) {
  (void)ctx;
  free(rd);
}

static gan_status cpu_reader_start(void *ctx, void *rd, const float *const *src,
                                   const size_t *counts, int n) {
  (void)ctx;
  cpu_reader *r = rd;
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    memcpy(r->v + off, src[i], counts[i] * sizeof(float));
    off += counts[i];
  }
  r->waited = 0;
  return GAN_OK;
}

static int cpu_reader_ready(void *ctx, void *rd) {
  (void)ctx;
  cpu_reader *r = rd;
  return !r->defer || r->waited;
}

static gan_status cpu_reader_wait(void *ctx, void *rd, float *dst, size_t total) {
  (void)ctx;
  cpu_reader *r = rd;
  memcpy(dst, r->v, total * sizeof(float));
  r->waited = 1;
  return GAN_OK;
}

static cpu_ctx the_ctx;

static gan_backend cpu_backend = {
    .iface = {
        .name = "cpu",
        .alloc = cpu_alloc,
        .free = cpu_free,
        .to_host = cpu_memcpy,
        .from_host = cpu_memcpy,
        .copy = cpu_copy,
        .synchronize = NULL,
        .fill = cpu_fill,
        .axpby = cpu_axpby,
        .mul = cpu_mul,
        .sum = cpu_sum,
        .sum_to = cpu_sum_to,
        .gather_rows = cpu_gather_rows,
        .randn = cpu_randn,
        .rand = cpu_rand,
        .matmul = matmul,
        .linear_forward = linear_forward,
        .linear_backward = linear_backward,
        .act_forward = act_forward,
        .act_backward = act_backward,
        .dropout_forward = dropout_forward,
        .batchnorm_forward = batchnorm_forward,
        .batchnorm_backward = batchnorm_backward,
        .bce_forward = bce_forward,
        .bce_backward = bce_backward,
        .adam_step = adam_step,
        .mem_stats = cpu_mem_stats,
        .reader_new = cpu_reader_new,
        .reader_free = cpu_reader_free,
        .reader_start = cpu_reader_start,
        .reader_ready = cpu_reader_ready,
        .reader_wait = cpu_reader_wait,
        .conv2d_workspace = conv2d_workspace,
        .conv2d_forward = conv2d_forward,
        .conv2d_backward = conv2d_backward,
        .conv_transpose2d_forward = conv_transpose2d_forward,
        .conv_transpose2d_backward = conv_transpose2d_backward,
        .augment2d = augment2d,
    },
    .ctx = &the_ctx,
};

gan_backend *gan_backend_cpu(void) { return &cpu_backend; }
