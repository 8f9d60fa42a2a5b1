/*
** test_cuda.c -- the CUDA backend against the CPU backend, slot by slot.
**
** Every slot of gan_backend_i runs on both backends with the same inputs
** (several shapes, odd ones included, and the seed model's 100x49152x1024
** dense layer), and the results must agree by normalised mean squared
** error, sum((a-b)^2) / sum(a^2) < 1e-8 in fp32.  The CPU result is the
** reference.  Counter-based draws agree element by element: uniforms and
** dropout masks to the bit pattern (values within an ulp), normals within
** 1e-6 relative (libm's logf/sinf/cosf and CUDA's may differ by an ulp).
** Parameter gradients are checked to accumulate: zeroed, one backward,
** compared, a second backward, compared again and against twice the first.
**
** Only backend.h is used (alloc, from_host, to_host and the slots), so the
** test depends on nothing else.  With GAN_HAVE_CUDA defined non-zero it
** also switches the products to TF32 once (gan_cuda.h) and checks the pool
** counters.
**
** Exit status: 0 all passed, 1 a check failed, 77 no GPU (ctest's skip).
*/
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "status.h"
#if defined(GAN_HAVE_CUDA) && GAN_HAVE_CUDA
#include "gan_cuda.h"
#define HAVE_EXTRAS 1
#else
#define HAVE_EXTRAS 0
#endif

#define TOL 1e-8 /* normalised MSE, fp32 */

static gan_backend *cpu, *gpu;
static int npass, nfail;

static void check(int ok, const char *fmt, ...) GAN_PRINTF(2, 3);
static void check(int ok, const char *fmt, ...) {
  va_list ap;
  if (ok) {
    npass++;
    return;
  }
  nfail++;
  printf("  FAIL ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
}

static void die(const char *what) {
  printf("test_cuda: fatal: %s: %s\n", what, gan_errmsg());
  exit(1);
}

/* --- deterministic host data (xorshift64*) --------------------------------- */

static uint64_t rs = 0x9E3779B97F4A7C15ull;

static float urand(float lo, float hi) {
  rs ^= rs >> 12;
  rs ^= rs << 25;
  rs ^= rs >> 27;
  uint64_t r = rs * 0x2545F4914F6CDD1Dull;
  return lo + (hi - lo) * (float)((r >> 40) * (1.0 / 16777216.0));
}

static float *hrand(size_t n, float lo, float hi) {
  float *h = malloc((n ? n : 1) * sizeof *h);
  if (h == NULL) die("malloc");
  for (size_t i = 0; i < n; i++) h[i] = urand(lo, hi);
  return h;
}

/* --- a buffer on both backends -------------------------------------------- */

typedef struct pair {
  float *c, *g; /* CPU and CUDA memory */
  size_t n;
} pair;

static float *be_new(gan_backend *be, const float *h, size_t n) {
  float *p = be->iface.alloc(be->ctx, (n ? n : 1) * sizeof(float));
  if (p == NULL) die("alloc");
  if (h != NULL && be->iface.from_host(be->ctx, p, h, n) != GAN_OK) die("from_host");
  return p;
}

static pair pair_new(const float *h, size_t n) {
  pair p = {be_new(cpu, h, n), be_new(gpu, h, n), n};
  return p;
}

static pair pair_rand(size_t n, float lo, float hi) {
  float *h = hrand(n, lo, hi);
  pair p = pair_new(h, n);
  free(h);
  return p;
}

static pair pair_const(size_t n, float v) {
  pair p = pair_new(NULL, n);
  cpu->iface.fill(cpu->ctx, p.c, v, n);
  gpu->iface.fill(gpu->ctx, p.g, v, n);
  return p;
}

static void pair_free(pair *p) {
  cpu->iface.free(cpu->ctx, p->c);
  gpu->iface.free(gpu->ctx, p->g);
  p->c = p->g = NULL;
}

static float *fetch(gan_backend *be, const float *d, size_t n) {
  float *h = malloc((n ? n : 1) * sizeof *h);
  if (h == NULL) die("malloc");
  if (be->iface.to_host(be->ctx, h, d, n) != GAN_OK) die("to_host");
  return h;
}

/* sum((a-b)^2) / sum(a^2); 0 if both are all zeros; NaN shows as HUGE_VAL */
static double nmse(const float *a, const float *b, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)a[i] - (double)b[i];
    num += d * d;
    den += (double)a[i] * a[i];
  }
  if (isnan(num) || isnan(den)) return HUGE_VAL;
  if (den == 0.0) return num == 0.0 ? 0.0 : HUGE_VAL;
  return num / den;
}

/* CPU vs CUDA on one pair */
static void cmp(pair *p, const char *fmt, ...) GAN_PRINTF(2, 3);
static void cmp(pair *p, const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  float *a = fetch(cpu, p->c, p->n), *b = fetch(gpu, p->g, p->n);
  double e = nmse(a, b, p->n);
  check(e < TOL, "%s: nmse %.3g (n=%zu)", name, e, p->n);
  free(a);
  free(b);
}

/* The CUDA copy of 'now' must be twice 'once' (a host copy of it). */
static void check_doubled(pair *now, const float *once, const char *name) {
  float *b = fetch(gpu, now->g, now->n);
  float *twice = malloc((now->n ? now->n : 1) * sizeof *twice);
  if (twice == NULL) die("malloc");
  for (size_t i = 0; i < now->n; i++) twice[i] = 2.0f * once[i];
  double e = nmse(twice, b, now->n);
  check(e < TOL, "%s accumulates (second backward doubles it): nmse %.3g", name, e);
  free(b);
  free(twice);
}

static void sync_both(const char *where) {
  if (gpu->iface.synchronize && gpu->iface.synchronize(gpu->ctx) != GAN_OK) {
    check(0, "%s: synchronize: %s", where, gan_errmsg());
  }
}

/* --- memory -------------------------------------------------------------- */

static void test_memory(void) {
  printf("memory\n");
  /* round trips through recycled blocks of many sizes */
  size_t sizes[] = {1, 3, 64, 65, 1000, 4097, (1u << 18) + 1, (1u << 20) + 5};
  for (int round = 0; round < 3; round++) {
    float *dev[8];
    for (int k = 0; k < 8; k++) {
      float *h = hrand(sizes[k], -1, 1);
      dev[k] = be_new(gpu, h, sizes[k]);
      float *back = fetch(gpu, dev[k], sizes[k]);
      check(memcmp(h, back, sizes[k] * sizeof *h) == 0, "round trip of %zu floats",
            sizes[k]);
      free(h);
      free(back);
    }
    for (int k = 0; k < 8; k++) gpu->iface.free(gpu->ctx, dev[k]);
  }
  gpu->iface.free(gpu->ctx, NULL); /* a no-op */

  /* an impossible allocation fails cleanly and leaves the backend usable */
  void *huge = gpu->iface.alloc(gpu->ctx, (size_t)1 << 50);
  check(huge == NULL && strstr(gan_errmsg(), "out of memory") != NULL,
        "alloc of 2^50 bytes fails with a message (got '%s')", gan_errmsg());
  if (huge) gpu->iface.free(gpu->ctx, huge);
  check(gpu->iface.synchronize(gpu->ctx) == GAN_OK, "synchronize after a failed alloc");

  /* a void slot's failure is reported by the next synchronize, then cleared */
  int bogus;
  gpu->iface.free(gpu->ctx, &bogus);
  gan_status s = gpu->iface.synchronize(gpu->ctx);
  check(s != GAN_OK && strstr(gan_errmsg(), "free") != NULL,
        "a failed free is reported by synchronize (got %d '%s')", (int)s, gan_errmsg());
  check(gpu->iface.synchronize(gpu->ctx) == GAN_OK, "the failure is reported once");

  /* copy */
  pair a = pair_rand(12345, -2, 2), b = pair_const(12345, 0);
  cpu->iface.copy(cpu->ctx, b.c, a.c, a.n);
  gpu->iface.copy(gpu->ctx, b.g, a.g, a.n);
  cmp(&b, "copy");
  pair_free(&a);
  pair_free(&b);

#if HAVE_EXTRAS
  /* steady state: the same allocations again call no cudaMalloc */
  size_t before = 0, after = 0;
  for (int round = 0; round < 2; round++) {
    if (round == 1) gan_cuda_memory_stats(NULL, NULL, &before);
    for (int k = 0; k < 8; k++) {
      float *p = be_new(gpu, NULL, sizes[k]);
      gpu->iface.free(gpu->ctx, p);
    }
  }
  gan_cuda_memory_stats(NULL, NULL, &after);
  check(before == after, "recycled allocations call no cudaMalloc (%zu -> %zu)", before,
        after);
#endif
}

/* --- elementwise, reductions, gather ----------------------------------------- */

static void test_elementwise(size_t n) {
  printf("elementwise n=%zu\n", n);
  pair x = pair_rand(n, -2, 2), y = pair_rand(n, -1, 1), z = pair_rand(n, -1, 1);

  cpu->iface.fill(cpu->ctx, z.c, 0.375f, n);
  gpu->iface.fill(gpu->ctx, z.g, 0.375f, n);
  cmp(&z, "fill");

  cpu->iface.axpby(cpu->ctx, y.c, 1.5f, x.c, -0.25f, n);
  gpu->iface.axpby(gpu->ctx, y.g, 1.5f, x.g, -0.25f, n);
  cmp(&y, "axpby");
  cpu->iface.axpby(cpu->ctx, y.c, 0.5f, x.c, 0.0f, n);
  gpu->iface.axpby(gpu->ctx, y.g, 0.5f, x.g, 0.0f, n);
  cmp(&y, "axpby b=0");

  cpu->iface.mul(cpu->ctx, z.c, x.c, y.c, n);
  gpu->iface.mul(gpu->ctx, z.g, x.g, y.g, n);
  cmp(&z, "mul");
  cpu->iface.mul(cpu->ctx, z.c, z.c, x.c, n); /* in place */
  gpu->iface.mul(gpu->ctx, z.g, z.g, x.g, n);
  cmp(&z, "mul in place");

  double sc = 0, sg = 0, sabs = 0;
  gan_status s1 = cpu->iface.sum(cpu->ctx, x.c, n, &sc);
  gan_status s2 = gpu->iface.sum(gpu->ctx, x.g, n, &sg);
  float *h = fetch(cpu, x.c, n);
  for (size_t i = 0; i < n; i++) sabs += fabs(h[i]);
  free(h);
  check(s1 == GAN_OK && s2 == GAN_OK && fabs(sc - sg) <= 1e-6 * sabs + 1e-12,
        "sum: cpu %.10g cuda %.10g", sc, sg);

  /* the same sum left on the device, scaled (t:mean(out)) */
  pair m = pair_const(1, -1);
  cpu->iface.sum_to(cpu->ctx, m.c, x.c, n, 1.0 / (double)n);
  gpu->iface.sum_to(gpu->ctx, m.g, x.g, n, 1.0 / (double)n);
  float *mc = fetch(cpu, m.c, 1), *mg = fetch(gpu, m.g, 1);
  check(fabs((double)mc[0] - mg[0]) <= 1e-6 * sabs / (double)n + 1e-7 * fabs(mc[0]) + 1e-12,
        "sum_to (mean): cpu %.9g cuda %.9g", mc[0], mg[0]);
  free(mc);
  free(mg);
  pair_free(&m);

  pair_free(&x);
  pair_free(&y);
  pair_free(&z);
}

static void test_gather(int64_t nsrc, int64_t nrows, int64_t cols) {
  printf("gather_rows %lld of %lld rows x %lld\n", (long long)nrows, (long long)nsrc,
         (long long)cols);
  pair src = pair_rand((size_t)(nsrc * cols), -1, 1);
  pair dst = pair_const((size_t)(nrows * cols), 0);
  int64_t *idx = malloc((size_t)nrows * sizeof *idx);
  if (idx == NULL) die("malloc");
  for (int64_t r = 0; r < nrows; r++) /* reversed, repeated, random */
    idx[r] = r % 3 == 0 ? nsrc - 1 - (r % nsrc) : (int64_t)urand(0, (float)nsrc) % nsrc;
  cpu->iface.gather_rows(cpu->ctx, dst.c, src.c, idx, nrows, cols);
  gpu->iface.gather_rows(gpu->ctx, dst.g, src.g, idx, nrows, cols);
  float *a = fetch(cpu, dst.c, dst.n), *b = fetch(gpu, dst.g, dst.n);
  check(memcmp(a, b, dst.n * sizeof *a) == 0, "gather_rows: identical");
  free(a);
  free(b);
  free(idx);
  pair_free(&src);
  pair_free(&dst);
}

/* --- readers ------------------------------------------------------------------
** A read queued behind ~50 ms of products must not wait for them (ready is
** still 0), must give the values the tensors had when it was queued (even
** if the block is freed, reused and overwritten right after), and a second
** start replaces the first. */
static void test_reader(void) {
  printf("reader\n");
  const gan_backend_i *f = &gpu->iface;
  if (!f->reader_new || !f->reader_start || !f->reader_ready || !f->reader_wait ||
      !f->reader_free) {
    check(0, "the GPU backend has no reader slots");
    return;
  }
  void *rd = NULL;
  if (f->reader_new(gpu->ctx, &rd) != GAN_OK) {
    check(0, "reader_new: %s", gan_errmsg());
    return;
  }
  /* the host emulator (tests/emu) runs the products on the CPU, and its
  ** events complete only when waited for: a small queue does there */
  const int M = getenv("TEST_CUDA_EMU") ? 256 : 4096;
  float *a = be_new(gpu, NULL, (size_t)M * M), *c = be_new(gpu, NULL, (size_t)M * M);
  f->fill(gpu->ctx, a, 1.0f / M, (size_t)M * M);
  float hv[3] = {1.5f, -2.25f, 3e-7f}, hw = 42.0f;
  float *v = be_new(gpu, hv, 3), *w = be_new(gpu, &hw, 1);
  check(f->synchronize(gpu->ctx) == GAN_OK, "synchronize before the reader test");

  for (int k = 0; k < 16; k++) /* 16 products of 4096^3: tens of ms queued */
    f->matmul(gpu->ctx, 0, 0, M, M, M, 1.0f, a, a, 0.0f, c);
  f->fill(gpu->ctx, v, 0.5f, 1); /* queued too: the read must see it */
  const float *src[2] = {v, w};
  size_t counts[2] = {3, 1};
  check(f->reader_start(gpu->ctx, rd, src, counts, 2) == GAN_OK, "reader_start: %s",
        gan_errmsg());
  int ready_at_once = f->reader_ready(gpu->ctx, rd);
  /* the blocks freed and reused at once: stream order keeps the read right */
  gpu->iface.free(gpu->ctx, v);
  float *v2 = be_new(gpu, NULL, 3);
  f->fill(gpu->ctx, v2, 9.0f, 3);
  float out[4] = {0, 0, 0, 0};
  check(f->reader_wait(gpu->ctx, rd, out, 4) == GAN_OK, "reader_wait: %s", gan_errmsg());
  /* with CUDA_LAUNCH_BLOCKING (compute-sanitizer) every launch waits */
  check(!ready_at_once || getenv("CUDA_LAUNCH_BLOCKING") != NULL,
        "reader_ready right after a read queued behind 16 products of 4096^3 says ready: "
        "the start waited for them");
  check(f->reader_ready(gpu->ctx, rd), "reader_ready after reader_wait");
  check(out[0] == 0.5f && out[1] == hv[1] && out[2] == hv[2] && out[3] == hw,
        "reader values %g %g %g %g, expected 0.5 %g %g %g", out[0], out[1], out[2], out[3],
        hv[1], hv[2], hw);

  /* two starts: the second's values; then a free with a read in flight */
  f->fill(gpu->ctx, w, 7.0f, 1);
  src[0] = w;
  counts[0] = 1;
  check(f->reader_start(gpu->ctx, rd, src, counts, 1) == GAN_OK, "first start");
  f->fill(gpu->ctx, w, 8.0f, 1);
  check(f->reader_start(gpu->ctx, rd, src, counts, 1) == GAN_OK, "second start");
  check(f->reader_wait(gpu->ctx, rd, out, 1) == GAN_OK && out[0] == 8.0f,
        "after two starts: %g, expected 8", out[0]);
  f->matmul(gpu->ctx, 0, 0, M, M, M, 1.0f, a, a, 0.0f, c);
  check(f->reader_start(gpu->ctx, rd, src, counts, 1) == GAN_OK, "a start, then free");
  f->reader_free(gpu->ctx, rd);
  check(f->synchronize(gpu->ctx) == GAN_OK, "synchronize after freeing a reader in flight");
  gpu->iface.free(gpu->ctx, a);
  gpu->iface.free(gpu->ctx, c);
  gpu->iface.free(gpu->ctx, v2);
  gpu->iface.free(gpu->ctx, w);
}

/* The upload ring (cuda_upload: 8 pinned slots): 12 gathers queued behind
** products, their index arrays growing past a slot's first size and
** overwritten by the caller right after each call; each gather must still
** use its own indices. */
static void test_uploads(void) {
  printf("uploads through the staging ring\n");
  const int M = getenv("TEST_CUDA_EMU") ? 256 : 2048, nsrc = 50, cols = 5, calls = 12;
  float *a = be_new(gpu, NULL, (size_t)M * M), *c = be_new(gpu, NULL, (size_t)M * M);
  gpu->iface.fill(gpu->ctx, a, 1.0f / M, (size_t)M * M);
  for (int k = 0; k < 4; k++) gpu->iface.matmul(gpu->ctx, 0, 0, M, M, M, 1.0f, a, a, 0.0f, c);
  pair src = pair_rand((size_t)nsrc * cols, -1, 1), dst[12];
  int64_t *idx = malloc((size_t)(10 + 700 * calls) * sizeof *idx);
  if (idx == NULL) die("malloc");
  for (int k = 0; k < calls; k++) {
    const int64_t nrows = 10 + 700 * k; /* 80 bytes to 61 KB of indices */
    for (int64_t r = 0; r < nrows; r++) idx[r] = (r * 7 + k * 13) % nsrc;
    dst[k] = pair_const((size_t)(nrows * cols), 0);
    cpu->iface.gather_rows(cpu->ctx, dst[k].c, src.c, idx, nrows, cols);
    gpu->iface.gather_rows(gpu->ctx, dst[k].g, src.g, idx, nrows, cols);
    for (int64_t r = 0; r < nrows; r++) idx[r] = -1; /* the caller reuses its array */
  }
  for (int k = 0; k < calls; k++) {
    float *x = fetch(cpu, dst[k].c, dst[k].n), *y = fetch(gpu, dst[k].g, dst[k].n);
    check(memcmp(x, y, dst[k].n * sizeof *x) == 0, "gather %d of %d through the ring", k + 1,
          calls);
    free(x);
    free(y);
    pair_free(&dst[k]);
  }
  free(idx);
  pair_free(&src);
  gpu->iface.free(gpu->ctx, a);
  gpu->iface.free(gpu->ctx, c);
}

/* --- randomness ------------------------------------------------------------- */

static void test_random(size_t n, uint64_t key) {
  printf("randn/rand/dropout n=%zu\n", n);
  pair x = pair_const(n, 0);
  cpu->iface.randn(cpu->ctx, x.c, n, key, 0.5f, 2.0f);
  gpu->iface.randn(gpu->ctx, x.g, n, key, 0.5f, 2.0f);
  float *a = fetch(cpu, x.c, n), *b = fetch(gpu, x.g, n);
  size_t bad = 0, same = 0;
  for (size_t i = 0; i < n; i++) {
    if (fabsf(a[i] - b[i]) > 1e-6f * fmaxf(1.0f, fabsf(a[i]))) bad++;
    same += a[i] == b[i];
  }
  check(bad == 0, "randn: %zu of %zu draws differ by more than 1e-6 (%zu identical)", bad,
        n, same);
  free(a);
  free(b);

  cpu->iface.rand(cpu->ctx, x.c, n, key ^ 0x5555, -3.0f, 5.0f);
  gpu->iface.rand(gpu->ctx, x.g, n, key ^ 0x5555, -3.0f, 5.0f);
  a = fetch(cpu, x.c, n);
  b = fetch(gpu, x.g, n);
  bad = same = 0;
  for (size_t i = 0; i < n; i++) {
    if (fabsf(a[i] - b[i]) > 1e-6f * fmaxf(1.0f, fabsf(a[i]))) bad++;
    same += a[i] == b[i];
  }
  check(bad == 0, "rand: %zu of %zu draws differ by more than 1e-6 (%zu identical)", bad,
        n, same);
  free(a);
  free(b);

  float ps[] = {0.0f, 0.3f, 0.5f};
  for (int k = 0; k < 3; k++) {
    pair in = pair_rand(n, -1, 1), y = pair_const(n, 7), m = pair_const(n, 7);
    cpu->iface.dropout_forward(cpu->ctx, y.c, m.c, in.c, n, ps[k], key + (uint64_t)k);
    gpu->iface.dropout_forward(gpu->ctx, y.g, m.g, in.g, n, ps[k], key + (uint64_t)k);
    a = fetch(cpu, m.c, n);
    b = fetch(gpu, m.g, n);
    size_t pattern = 0, value = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
      pattern += (a[i] == 0.0f) != (b[i] == 0.0f);
      value += fabsf(a[i] - b[i]) > 1e-6f * fabsf(a[i]);
      kept += b[i] != 0.0f;
    }
    check(pattern == 0 && value == 0,
          "dropout p=%.1f: masks differ in %zu places (%zu values), %zu of %zu kept", ps[k],
          pattern, value, kept, n);
    /* five standard deviations of the binomial count */
    check(fabs((double)kept / n - (1.0 - ps[k])) <= 5.0 * sqrt(ps[k] * (1.0 - ps[k]) / n),
          "dropout p=%.1f keeps %zu of %zu", ps[k], kept, n);
    cmp(&y, "dropout p=%.1f output", ps[k]);
    free(a);
    free(b);
    pair_free(&in);
    pair_free(&y);
    pair_free(&m);
  }
  pair_free(&x);
}

/* --- products --------------------------------------------------------------- */

static void test_matmul(int M, int N, int K) {
  printf("matmul %dx%dx%d\n", M, N, K);
  for (int ta = 0; ta < 2; ta++) {
    for (int tb = 0; tb < 2; tb++) {
      pair A = pair_rand((size_t)M * K, -1, 1), B = pair_rand((size_t)K * N, -1, 1);
      pair C = pair_rand((size_t)M * N, -1, 1);
      cpu->iface.matmul(cpu->ctx, ta, tb, M, N, K, 1.5f, A.c, B.c, 0.0f, C.c);
      gpu->iface.matmul(gpu->ctx, ta, tb, M, N, K, 1.5f, A.g, B.g, 0.0f, C.g);
      cmp(&C, "matmul ta=%d tb=%d beta=0", ta, tb);
      cpu->iface.matmul(cpu->ctx, ta, tb, M, N, K, -0.5f, A.c, B.c, 0.75f, C.c);
      gpu->iface.matmul(gpu->ctx, ta, tb, M, N, K, -0.5f, A.g, B.g, 0.75f, C.g);
      cmp(&C, "matmul ta=%d tb=%d beta=0.75", ta, tb);
      pair_free(&A);
      pair_free(&B);
      pair_free(&C);
    }
  }
}

/* K = 0 on the GPU alone (BLAS implementations disagree on lda = 0): the
** product is empty, so C = beta * C. */
static void test_matmul_k0(void) {
  printf("matmul k=0\n");
  float h[12], want[12];
  for (int i = 0; i < 12; i++) h[i] = urand(-1, 1), want[i] = 0.5f * h[i];
  float *C = be_new(gpu, h, 12);
  float dummy = 0;
  gpu->iface.matmul(gpu->ctx, 0, 0, 3, 4, 0, 1.0f, &dummy, &dummy, 0.5f, C);
  float *b = fetch(gpu, C, 12);
  check(memcmp(b, want, sizeof want) == 0, "matmul k=0 scales C by beta");
  free(b);
  gpu->iface.free(gpu->ctx, C);
}

static const char *act_name[] = {"identity", "relu", "leaky_relu", "sigmoid", "tanh"};

static void test_linear_act_backward(int B, int C, int OC, pair *inp, pair *w, pair *dy,
                                     pair *dinp, pair *dw, pair *db);

static void test_linear(int B, int C, int OC) {
  printf("linear B=%d C=%d OC=%d\n", B, C, OC);
  float sc = 1.0f / sqrtf((float)C);
  pair inp = pair_rand((size_t)B * C, -1, 1), w = pair_rand((size_t)OC * C, -sc, sc);
  pair bias = pair_rand((size_t)OC, -1, 1), out = pair_rand((size_t)B * OC, -1, 1);
  pair dout = pair_rand((size_t)B * OC, -1, 1);

  for (int with_bias = 0; with_bias < 2; with_bias++) {
    cpu->iface.linear_forward(cpu->ctx, out.c, inp.c, w.c, with_bias ? bias.c : NULL, B, C,
                              OC);
    gpu->iface.linear_forward(gpu->ctx, out.g, inp.g, w.g, with_bias ? bias.g : NULL, B, C,
                              OC);
    cmp(&out, "linear_forward bias=%d", with_bias);
  }
  /* the layer and its activation in one slot, against the CPU's two */
  pair y = pair_rand((size_t)B * OC, -1, 1);
  static const gan_act acts[] = {GAN_ACT_RELU, GAN_ACT_LEAKY_RELU, GAN_ACT_SIGMOID,
                                 GAN_ACT_TANH};
  for (int a = 0; a < 4; a++)
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      cpu->iface.linear_forward(cpu->ctx, out.c, inp.c, w.c, with_bias ? bias.c : NULL, B,
                                C, OC);
      cpu->iface.act_forward(cpu->ctx, acts[a], 0.2f, y.c, out.c, y.n);
      check(gpu->iface.linear_act_forward != NULL, "the CUDA backend fuses linear_act_forward");
      if (gpu->iface.linear_act_forward == NULL) break;
      gpu->iface.linear_act_forward(gpu->ctx, out.g, y.g, inp.g, w.g,
                                    with_bias ? bias.g : NULL, acts[a], 0.2f, B, C, OC);
      cmp(&out, "linear_act_forward %s bias=%d: out", act_name[acts[a]], with_bias);
      cmp(&y, "linear_act_forward %s bias=%d: y", act_name[acts[a]], with_bias);
    }
  pair_free(&y);

  pair dinp = pair_rand((size_t)B * C, 5, 6); /* overwritten */
  pair dw = pair_const((size_t)OC * C, 0), db = pair_const((size_t)OC, 0);
  cpu->iface.linear_backward(cpu->ctx, dinp.c, dw.c, db.c, dout.c, inp.c, w.c, B, C, OC, 0);
  gpu->iface.linear_backward(gpu->ctx, dinp.g, dw.g, db.g, dout.g, inp.g, w.g, B, C, OC, 0);
  cmp(&dinp, "linear_backward dinp");
  cmp(&dw, "linear_backward dweight");
  cmp(&db, "linear_backward dbias");
  float *dw1 = fetch(gpu, dw.g, dw.n), *db1 = fetch(gpu, db.g, db.n);
  cpu->iface.linear_backward(cpu->ctx, dinp.c, dw.c, db.c, dout.c, inp.c, w.c, B, C, OC, 0);
  gpu->iface.linear_backward(gpu->ctx, dinp.g, dw.g, db.g, dout.g, inp.g, w.g, B, C, OC, 0);
  cmp(&dinp, "linear_backward dinp (second)");
  cmp(&dw, "linear_backward dweight (second)");
  cmp(&db, "linear_backward dbias (second)");
  check_doubled(&dw, dw1, "linear dweight");
  check_doubled(&db, db1, "linear dbias");
  free(dw1);
  free(db1);

  /* NULL skips a product: input gradient only (a frozen D), then no dinp */
  cpu->iface.fill(cpu->ctx, dinp.c, 9.0f, dinp.n);
  gpu->iface.fill(gpu->ctx, dinp.g, 9.0f, dinp.n);
  cpu->iface.linear_backward(cpu->ctx, dinp.c, NULL, NULL, dout.c, inp.c, w.c, B, C, OC, 0);
  gpu->iface.linear_backward(gpu->ctx, dinp.g, NULL, NULL, dout.g, inp.g, w.g, B, C, OC, 0);
  cmp(&dinp, "linear_backward dinp only");
  cmp(&dw, "linear_backward dweight untouched by a NULL");
  cpu->iface.linear_backward(cpu->ctx, NULL, dw.c, NULL, dout.c, inp.c, w.c, B, C, OC, 0);
  gpu->iface.linear_backward(gpu->ctx, NULL, dw.g, NULL, dout.g, inp.g, w.g, B, C, OC, 0);
  cmp(&dw, "linear_backward dweight only");
  cmp(&db, "linear_backward dbias untouched by a NULL");

  /* overwrite: dweight and dbias as from zeros, whatever they held.  Each
  ** backend in turn overwrites stale values while the other adds to zeros. */
  for (int on_gpu = 1; on_gpu >= 0; on_gpu--) {
    float stale = on_gpu ? 3.0f : 5.0f;
    cpu->iface.fill(cpu->ctx, dw.c, on_gpu ? 0.0f : stale, dw.n);
    cpu->iface.fill(cpu->ctx, db.c, on_gpu ? 0.0f : -stale, db.n);
    gpu->iface.fill(gpu->ctx, dw.g, on_gpu ? stale : 0.0f, dw.n);
    gpu->iface.fill(gpu->ctx, db.g, on_gpu ? -stale : 0.0f, db.n);
    cpu->iface.linear_backward(cpu->ctx, NULL, dw.c, db.c, dout.c, inp.c, w.c, B, C, OC,
                               !on_gpu);
    gpu->iface.linear_backward(gpu->ctx, NULL, dw.g, db.g, dout.g, inp.g, w.g, B, C, OC,
                               on_gpu);
    cmp(&dw, "linear_backward dweight overwritten on %s", on_gpu ? "CUDA" : "the CPU");
    cmp(&db, "linear_backward dbias overwritten on %s", on_gpu ? "CUDA" : "the CPU");
  }

  test_linear_act_backward(B, C, OC, &inp, &w, &dout, &dinp, &dw, &db);
  pair_free(&inp);
  pair_free(&w);
  pair_free(&bias);
  pair_free(&out);
  pair_free(&dout);
  pair_free(&dinp);
  pair_free(&dw);
  pair_free(&db);
}

/* The activation's backward and the layer's in one slot, against the CPU's
** two slots; and on the GPU, dz and dbias bit for bit as the GPU's own two
** slots give them (the fused kernel adds the same values in the same order).
** Every activation, with and without dbias and dinp, adding and
** overwriting, and dz written over dy. */
static void test_linear_act_backward(int B, int C, int OC, pair *inp, pair *w, pair *dy,
                                     pair *dinp, pair *dw, pair *db) {
  check(gpu->iface.linear_act_backward != NULL, "the CUDA backend fuses linear_act_backward");
  if (gpu->iface.linear_act_backward == NULL) return;
  const size_t n = (size_t)B * OC;
  pair z = pair_rand(n, -2, 2), y = pair_const(n, 0), dz = pair_const(n, 0);
  float *dz2 = be_new(gpu, NULL, n), *db2 = be_new(gpu, NULL, (size_t)OC);
  float *dw2 = be_new(gpu, NULL, (size_t)OC * C), *di2 = be_new(gpu, NULL, (size_t)B * C);
  /* a large layer (the seed's first) once, with the seed's activation: the
  ** CPU's products are slow */
  const int big = (double)B * C * OC > 2e7;
  for (int a = GAN_ACT_IDENTITY; a <= GAN_ACT_TANH; a++) {
    if (big && a != GAN_ACT_LEAKY_RELU) continue;
    cpu->iface.act_forward(cpu->ctx, (gan_act)a, 0.2f, y.c, z.c, n);
    gpu->iface.act_forward(gpu->ctx, (gan_act)a, 0.2f, y.g, z.g, n);
    for (int v = 0; v < (big ? 1 : 4); v++) {
      const int with_bias = v != 1, with_dinp = v != 2, over = v == 3;
      cpu->iface.fill(cpu->ctx, dw->c, 0.5f, dw->n);
      cpu->iface.fill(cpu->ctx, db->c, -0.5f, db->n);
      gpu->iface.fill(gpu->ctx, dw->g, 0.5f, dw->n);
      gpu->iface.fill(gpu->ctx, db->g, -0.5f, db->n);
      gpu->iface.fill(gpu->ctx, db2, -0.5f, db->n);
      gpu->iface.fill(gpu->ctx, dw2, 0.5f, dw->n);
      cpu->iface.act_backward(cpu->ctx, (gan_act)a, 0.2f, dz.c, dy->c, z.c, y.c, n);
      cpu->iface.linear_backward(cpu->ctx, with_dinp ? dinp->c : NULL, dw->c,
                                 with_bias ? db->c : NULL, dz.c, inp->c, w->c, B, C, OC, over);
      gpu->iface.linear_act_backward(gpu->ctx, (gan_act)a, 0.2f, dz.g, dy->g, z.g, y.g,
                                     with_dinp ? dinp->g : NULL, dw->g,
                                     with_bias ? db->g : NULL, inp->g, w->g, B, C, OC, over);
      gpu->iface.act_backward(gpu->ctx, (gan_act)a, 0.2f, dz2, dy->g, z.g, y.g, n);
      gpu->iface.linear_backward(gpu->ctx, with_dinp ? di2 : NULL, dw2,
                                 with_bias ? db2 : NULL, dz2, inp->g, w->g, B, C, OC, over);
      const char *an = act_name[a];
      cmp(&dz, "linear_act_backward %s (variant %d): dz", an, v);
      if (with_dinp) cmp(dinp, "linear_act_backward %s (variant %d): dinp", an, v);
      cmp(dw, "linear_act_backward %s (variant %d): dweight", an, v);
      cmp(db, "linear_act_backward %s (variant %d): dbias", an, v);
      float *f1 = fetch(gpu, dz.g, n), *f2 = fetch(gpu, dz2, n);
      float *b1 = fetch(gpu, db->g, db->n), *b2 = fetch(gpu, db2, db->n);
      check(memcmp(f1, f2, n * sizeof *f1) == 0 && memcmp(b1, b2, db->n * sizeof *b1) == 0,
            "linear_act_backward %s (variant %d): dz and dbias as act_backward and "
            "linear_backward give them, bit for bit", an, v);
      free(f1);
      free(f2);
      free(b1);
      free(b2);
    }
  }
  /* in place: dz over dy (a copy of it), as the CPU gives it */
  pair g = pair_new(NULL, n);
  cpu->iface.copy(cpu->ctx, g.c, dy->c, n);
  gpu->iface.copy(gpu->ctx, g.g, dy->g, n);
  cpu->iface.act_backward(cpu->ctx, GAN_ACT_SIGMOID, 0, g.c, g.c, z.c, y.c, n);
  cpu->iface.linear_backward(cpu->ctx, dinp->c, dw->c, db->c, g.c, inp->c, w->c, B, C, OC, 1);
  gpu->iface.linear_act_backward(gpu->ctx, GAN_ACT_SIGMOID, 0, g.g, g.g, z.g, y.g, dinp->g,
                                 dw->g, db->g, inp->g, w->g, B, C, OC, 1);
  cmp(&g, "linear_act_backward in place: dz");
  cmp(db, "linear_act_backward in place: dbias");
  pair_free(&g);
  pair_free(&z);
  pair_free(&y);
  pair_free(&dz);
  gpu->iface.free(gpu->ctx, dz2);
  gpu->iface.free(gpu->ctx, db2);
  gpu->iface.free(gpu->ctx, dw2);
  gpu->iface.free(gpu->ctx, di2);
}

/* --- layers ------------------------------------------------------------------- */


static void test_act(size_t n) {
  printf("activations n=%zu\n", n);
  pair x = pair_rand(n, -4, 4), dy = pair_rand(n, -1, 1);
  pair y = pair_const(n, 0), dx = pair_const(n, 0);
  for (int a = GAN_ACT_IDENTITY; a <= GAN_ACT_TANH; a++) {
    cpu->iface.act_forward(cpu->ctx, (gan_act)a, 0.2f, y.c, x.c, n);
    gpu->iface.act_forward(gpu->ctx, (gan_act)a, 0.2f, y.g, x.g, n);
    cmp(&y, "act_forward %s", act_name[a]);
    cpu->iface.act_backward(cpu->ctx, (gan_act)a, 0.2f, dx.c, dy.c, x.c, y.c, n);
    gpu->iface.act_backward(gpu->ctx, (gan_act)a, 0.2f, dx.g, dy.g, x.g, y.g, n);
    cmp(&dx, "act_backward %s", act_name[a]);
  }
  /* in place, as a module may do */
  pair z = pair_rand(n, -4, 4);
  cpu->iface.act_forward(cpu->ctx, GAN_ACT_LEAKY_RELU, 0.2f, z.c, z.c, n);
  gpu->iface.act_forward(gpu->ctx, GAN_ACT_LEAKY_RELU, 0.2f, z.g, z.g, n);
  cmp(&z, "act_forward leaky_relu in place");
  pair_free(&x);
  pair_free(&dy);
  pair_free(&y);
  pair_free(&dx);
  pair_free(&z);
}

static void test_batchnorm(int B, int C, int S) {
  printf("batchnorm B=%d C=%d S=%d\n", B, C, S);
  size_t n = (size_t)B * C * S;
  /* values that drift along the batch, so that the parts of a channel
  ** (common.cuh) have means far apart, as their combination must allow */
  float *h = hrand(n, 1, 5);
  for (size_t i = 0; i < n; i++) h[i] += 8.0f * (float)(i / ((size_t)C * S)) / (float)B;
  pair x = pair_new(h, n), gamma = pair_rand((size_t)C, 0.5f, 1.5f);
  free(h);
  pair beta = pair_rand((size_t)C, -1, 1), y = pair_const(n, 0);
  pair mean = pair_const((size_t)C, 0), rstd = pair_const((size_t)C, 0);
  pair rmean = pair_rand((size_t)C, -0.5f, 0.5f), rvar = pair_rand((size_t)C, 0.5f, 2.0f);
  pair dy = pair_rand(n, -1, 1), dx = pair_rand(n, 5, 6);
  pair dg = pair_const((size_t)C, 0), dbt = pair_const((size_t)C, 0);
  const float momentum = 0.8f, eps = 1e-5f;

  for (int training = 1; training >= 0; training--) {
    const char *mode = training ? "training" : "evaluation";
    cpu->iface.batchnorm_forward(cpu->ctx, y.c, mean.c, rstd.c, rmean.c, rvar.c, x.c,
                                 gamma.c, beta.c, B, C, S, momentum, eps, training);
    gpu->iface.batchnorm_forward(gpu->ctx, y.g, mean.g, rstd.g, rmean.g, rvar.g, x.g,
                                 gamma.g, beta.g, B, C, S, momentum, eps, training);
    cmp(&y, "batchnorm_forward %s y", mode);
    cmp(&mean, "batchnorm_forward %s mean", mode);
    cmp(&rstd, "batchnorm_forward %s rstd", mode);
    cmp(&rmean, "batchnorm_forward %s run_mean", mode);
    cmp(&rvar, "batchnorm_forward %s run_var", mode);

    /* from zero, one pass, then a second that must double the gradients */
    cpu->iface.fill(cpu->ctx, dg.c, 0, dg.n);
    gpu->iface.fill(gpu->ctx, dg.g, 0, dg.n);
    cpu->iface.fill(cpu->ctx, dbt.c, 0, dbt.n);
    gpu->iface.fill(gpu->ctx, dbt.g, 0, dbt.n);
    float *dg1 = NULL, *db1 = NULL;
    for (int pass = 1; pass <= 2; pass++) {
      cpu->iface.batchnorm_backward(cpu->ctx, dx.c, dg.c, dbt.c, dy.c, x.c, gamma.c,
                                    mean.c, rstd.c, B, C, S, training, 0);
      gpu->iface.batchnorm_backward(gpu->ctx, dx.g, dg.g, dbt.g, dy.g, x.g, gamma.g,
                                    mean.g, rstd.g, B, C, S, training, 0);
      cmp(&dx, "batchnorm_backward %s dx (pass %d)", mode, pass);
      cmp(&dg, "batchnorm_backward %s dgamma (pass %d)", mode, pass);
      cmp(&dbt, "batchnorm_backward %s dbeta (pass %d)", mode, pass);
      if (pass == 1) {
        dg1 = fetch(gpu, dg.g, dg.n);
        db1 = fetch(gpu, dbt.g, dbt.n);
      }
    }
    check_doubled(&dg, dg1, "batchnorm dgamma");
    check_doubled(&dbt, db1, "batchnorm dbeta");
    free(dg1);
    free(db1);
    /* input gradient only */
    cpu->iface.batchnorm_backward(cpu->ctx, dx.c, NULL, NULL, dy.c, x.c, gamma.c, mean.c,
                                  rstd.c, B, C, S, training, 0);
    gpu->iface.batchnorm_backward(gpu->ctx, dx.g, NULL, NULL, dy.g, x.g, gamma.g, mean.g,
                                  rstd.g, B, C, S, training, 0);
    cmp(&dx, "batchnorm_backward %s dx only", mode);
    cmp(&dg, "batchnorm_backward %s dgamma untouched by a NULL", mode);
    /* overwrite: dgamma and dbeta as from zeros, whatever they held; each
    ** backend in turn overwrites stale values while the other adds to zeros */
    for (int on_gpu = 1; on_gpu >= 0; on_gpu--) {
      const float stale = on_gpu ? 3.0f : 5.0f;
      cpu->iface.fill(cpu->ctx, dg.c, on_gpu ? 0.0f : stale, dg.n);
      cpu->iface.fill(cpu->ctx, dbt.c, on_gpu ? 0.0f : -stale, dbt.n);
      gpu->iface.fill(gpu->ctx, dg.g, on_gpu ? stale : 0.0f, dg.n);
      gpu->iface.fill(gpu->ctx, dbt.g, on_gpu ? -stale : 0.0f, dbt.n);
      cpu->iface.batchnorm_backward(cpu->ctx, NULL, dg.c, dbt.c, dy.c, x.c, gamma.c, mean.c,
                                    rstd.c, B, C, S, training, !on_gpu);
      gpu->iface.batchnorm_backward(gpu->ctx, NULL, dg.g, dbt.g, dy.g, x.g, gamma.g, mean.g,
                                    rstd.g, B, C, S, training, on_gpu);
      cmp(&dg, "batchnorm_backward %s dgamma overwritten on %s", mode,
          on_gpu ? "CUDA" : "the CPU");
      cmp(&dbt, "batchnorm_backward %s dbeta overwritten on %s", mode,
          on_gpu ? "CUDA" : "the CPU");
    }
  }
  pair *all[] = {&x, &gamma, &beta, &y, &mean, &rstd, &rmean, &rvar, &dy, &dx, &dg, &dbt};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) pair_free(all[k]);
}

static void test_bce(size_t n, int logits) {
  printf("bce n=%zu logits=%d\n", n, logits);
  float *p = logits ? hrand(n, -8, 8) : hrand(n, 0, 1), *t = hrand(n, 0, 1);
  for (size_t i = 0; i < n; i++) {
    t[i] = i % 5 == 4 ? 0.9f : (t[i] < 0.5f ? 0.0f : 1.0f); /* hard and soft labels */
    if (!logits && i % 7 == 3) p[i] = (i % 2) ? 0.0f : 1.0f; /* in the clamp */
    if (!logits && i % 11 == 5) p[i] = 1e-9f;
  }
  pair pred = pair_new(p, n), target = pair_new(t, n);
  pair loss = pair_const(1, 0), dpred = pair_const(n, 3);
  cpu->iface.bce_forward(cpu->ctx, loss.c, pred.c, target.c, n, logits);
  gpu->iface.bce_forward(gpu->ctx, loss.g, pred.g, target.g, n, logits);
  float *a = fetch(cpu, loss.c, 1), *b = fetch(gpu, loss.g, 1);
  check(fabsf(a[0] - b[0]) <= 1e-5f * fabsf(a[0]), "bce_forward: cpu %.8g cuda %.8g", a[0],
        b[0]);
  free(a);
  free(b);
  cpu->iface.bce_backward(cpu->ctx, dpred.c, pred.c, target.c, n, logits);
  gpu->iface.bce_backward(gpu->ctx, dpred.g, pred.g, target.g, n, logits);
  cmp(&dpred, "bce_backward");
  free(p);
  free(t);
  pair_free(&pred);
  pair_free(&target);
  pair_free(&loss);
  pair_free(&dpred);
}

/* --- optimizer ---------------------------------------------------------------- */

#define MAXT 8
typedef struct group {
  int count;
  pair p[MAXT], g[MAXT], m[MAXT], v[MAXT];
  size_t sizes[MAXT];
} group;

static void group_new(group *G, int count, const size_t *sizes) {
  G->count = count;
  for (int i = 0; i < count; i++) {
    G->sizes[i] = sizes[i];
    G->p[i] = pair_rand(sizes[i], -1, 1);
    G->g[i] = pair_rand(sizes[i], -1, 1);
    G->m[i] = pair_const(sizes[i], 0);
    G->v[i] = pair_const(sizes[i], 0);
  }
}

static void group_free(group *G) {
  for (int i = 0; i < G->count; i++) {
    pair_free(&G->p[i]);
    pair_free(&G->g[i]);
    pair_free(&G->m[i]);
    pair_free(&G->v[i]);
  }
}

static void group_step(group *G, int64_t step, float lr, float wd, int eps_hat) {
  float *pc[MAXT], *gc[MAXT], *mc[MAXT], *vc[MAXT];
  float *pg[MAXT], *gg[MAXT], *mg[MAXT], *vg[MAXT];
  for (int i = 0; i < G->count; i++) {
    pc[i] = G->p[i].c, gc[i] = G->g[i].c, mc[i] = G->m[i].c, vc[i] = G->v[i].c;
    pg[i] = G->p[i].g, gg[i] = G->g[i].g, mg[i] = G->m[i].g, vg[i] = G->v[i].g;
  }
  gan_adam_group a = {G->count, pc, gc, mc, vc, G->sizes, lr, 0.5f, 0.999f, 1e-7f, wd,
                      step, eps_hat};
  cpu->iface.adam_step(cpu->ctx, &a);
  a.params = pg, a.grads = gg, a.m = mg, a.v = vg;
  gpu->iface.adam_step(gpu->ctx, &a);
}

static void group_cmp(group *G, const char *name) {
  for (int i = 0; i < G->count; i++) {
    cmp(&G->p[i], "%s param %d", name, i);
    cmp(&G->m[i], "%s m %d", name, i);
    cmp(&G->v[i], "%s v %d", name, i);
  }
}

/* new gradients, as the next backward would leave */
static void group_regrad(group *G) {
  for (int i = 0; i < G->count; i++) {
    float *h = hrand(G->sizes[i], -1, 1);
    cpu->iface.from_host(cpu->ctx, G->g[i].c, h, G->sizes[i]);
    gpu->iface.from_host(gpu->ctx, G->g[i].g, h, G->sizes[i]);
    free(h);
  }
}

static void test_adam(int big) {
  printf("adam%s\n", big ? " (seed-model sized)" : "");
  size_t sa[] = {5, 1000, 70001, 16384 * 3 + 1}, sb[] = {33, 7};
  size_t sbig[] = {(size_t)49152 * 1024, 1024, 1024, 5};
  group A, Bg;
  if (big) group_new(&A, 4, sbig);
  else group_new(&A, 4, sa);
  group_new(&Bg, 2, sb);
  for (int64_t t = 1; t <= 3; t++) { /* alternate two optimizers, as D and G do; */
    group_step(&A, t, 2e-4f * (float)t, t == 3 ? 0.01f : 0.0f, 0); /* the paper's form */
    group_step(&Bg, t, 1e-3f, 0.0f, 1);                             /* Keras's */
    group_regrad(&A);
    group_regrad(&Bg);
  }
  group_cmp(&A, "adam A");
  group_cmp(&Bg, "adam B");
  /* a group whose tensors moved: the descriptors must be uploaded again */
  pair old = A.p[1];
  A.p[1] = pair_new(NULL, A.sizes[1]);
  cpu->iface.copy(cpu->ctx, A.p[1].c, old.c, A.sizes[1]);
  gpu->iface.copy(gpu->ctx, A.p[1].g, old.g, A.sizes[1]);
  pair_free(&old);
  group_step(&A, 4, 1e-3f, 0.0f, 1);
  group_cmp(&A, "adam A after a move");
  group_free(&A);
  group_free(&Bg);
}

/* Adam four values at a time (16-byte aligned tensors) and one at a time
** (the same values one float further on, as a view at an odd offset would
** be): the same bits, and the CPU's values.  Sizes that end a chunk or a
** tensor 1 to 3 values past a multiple of 4. */
static void test_adam_alignment(void) {
  printf("adam, aligned and not\n");
  enum { T = 4 };
  const size_t sizes[T] = {16384 + 7, 4, 3, 16384 * 2 + 1};
  float *al[T][4], *un[T][4], *base[T][4], *cp[T][4];
  for (int i = 0; i < T; i++)
    for (int k = 0; k < 4; k++) { /* p, g, m, v */
      float *h = hrand(sizes[i], k == 3 ? 0 : -1, 1);
      al[i][k] = be_new(gpu, h, sizes[i]);
      base[i][k] = be_new(gpu, NULL, sizes[i] + 1);
      un[i][k] = base[i][k] + 1;
      gpu->iface.from_host(gpu->ctx, un[i][k], h, sizes[i]);
      cp[i][k] = be_new(cpu, h, sizes[i]);
      free(h);
    }
  float *pa[T], *ga[T], *ma[T], *va[T], *pu[T], *gu[T], *mu[T], *vu[T];
  float *pc[T], *gc[T], *mc[T], *vc[T];
  for (int i = 0; i < T; i++) {
    pa[i] = al[i][0], ga[i] = al[i][1], ma[i] = al[i][2], va[i] = al[i][3];
    pu[i] = un[i][0], gu[i] = un[i][1], mu[i] = un[i][2], vu[i] = un[i][3];
    pc[i] = cp[i][0], gc[i] = cp[i][1], mc[i] = cp[i][2], vc[i] = cp[i][3];
  }
  for (int64_t step = 1; step <= 2; step++) {
    gan_adam_group a = {T, pa, ga, ma, va, sizes, 1e-3f, 0.5f, 0.999f, 1e-7f, 0.01f, step, 0};
    gpu->iface.adam_step(gpu->ctx, &a);
    a.params = pu, a.grads = gu, a.m = mu, a.v = vu;
    gpu->iface.adam_step(gpu->ctx, &a);
    a.params = pc, a.grads = gc, a.m = mc, a.v = vc;
    cpu->iface.adam_step(cpu->ctx, &a);
  }
  for (int i = 0; i < T; i++)
    for (int k = 0; k < 4; k++) {
      if (k == 1) continue; /* the gradients are read only */
      float *x = fetch(gpu, al[i][k], sizes[i]), *y = fetch(gpu, un[i][k], sizes[i]);
      float *c = fetch(cpu, cp[i][k], sizes[i]);
      check(memcmp(x, y, sizes[i] * sizeof *x) == 0,
            "adam tensor %d (%zu values), %s: the same bits aligned and not", i, sizes[i],
            k == 0 ? "p" : k == 2 ? "m" : "v");
      double e = nmse(c, x, sizes[i]);
      check(e < TOL, "adam tensor %d, %s, aligned: nmse %.3g against the CPU", i,
            k == 0 ? "p" : k == 2 ? "m" : "v", e);
      free(x);
      free(y);
      free(c);
    }
  for (int i = 0; i < T; i++)
    for (int k = 0; k < 4; k++) {
      gpu->iface.free(gpu->ctx, al[i][k]);
      gpu->iface.free(gpu->ctx, base[i][k]);
      cpu->iface.free(cpu->ctx, cp[i][k]);
    }
}

/* --- convolutions and augmentation ------------------------------------------ */

static gan_conv2d_desc conv_desc(int B, int C, int H, int W, int K, int R, int S,
                                 int stride, int pad) {
  gan_conv2d_desc d = {B, C, H, W, K, (H + 2 * pad - R) / stride + 1,
                       (W + 2 * pad - S) / stride + 1, R, S, stride, pad};
  return d;
}

/* The CPU slots' workspace (the CUDA backend keeps its own and asks for
** none, which is checked). */
static float *cpu_ws(const gan_conv2d_desc *d, size_t *n) {
  size_t batched = 0, minimum = 0, gb = 1, gm = 1;
  cpu->iface.conv2d_workspace(cpu->ctx, d, &batched, &minimum);
  gpu->iface.conv2d_workspace(gpu->ctx, d, &gb, &gm);
  check(gb == 0 && gm == 0, "cuda conv2d_workspace asks for none (got %zu, %zu)", gb, gm);
  *n = batched;
  return be_new(cpu, NULL, batched);
}

/* One layer's slot on one backend, Conv2d or (transposed) ConvTranspose2d:
** the forward maps 'in' to 'out'; the backward takes the gradient of 'out'. */
static void layer_fwd(gan_backend *be, int transposed, float *out, const float *in,
                      const float *w, const float *b, const gan_conv2d_desc *d, float *ws,
                      size_t wsn) {
  if (transposed) be->iface.conv_transpose2d_forward(be->ctx, out, in, w, b, d, ws, wsn);
  else be->iface.conv2d_forward(be->ctx, out, in, w, b, d, ws, wsn);
}

static void layer_bwd(gan_backend *be, int transposed, float *din, float *dw, float *db,
                      const float *dout, const float *in, const float *w,
                      const gan_conv2d_desc *d, float *ws, size_t wsn) {
  if (transposed)
    be->iface.conv_transpose2d_backward(be->ctx, din, dw, db, dout, in, w, d, ws, wsn);
  else
    be->iface.conv2d_backward(be->ctx, din, dw, db, dout, in, w, d, ws, wsn);
}

/* Conv2d (x -> y) and, with 'transposed', ConvTranspose2d (y -> x), every
** slot with and without its optional products, gradients accumulating. */
static void test_conv(const gan_conv2d_desc *d, int transposed) {
  const gan_conv2d_desc D = *d;
  printf("%s B=%d C=%d %dx%d K=%d %dx%d kernel %dx%d stride %d pad %d\n",
         transposed ? "conv_transpose2d" : "conv2d", D.B, D.C, D.H, D.W, D.K, D.P, D.Q,
         D.R, D.S, D.stride, D.pad);
  const size_t nx = (size_t)D.B * D.C * D.H * D.W, ny = (size_t)D.B * D.K * D.P * D.Q;
  const size_t nw = (size_t)D.K * D.C * D.R * D.S;
  const float sc = 1.0f / sqrtf((float)(transposed ? D.K : D.C) * D.R * D.S);
  size_t wsn;
  float *ws = cpu_ws(&D, &wsn);
  pair w = pair_rand(nw, -sc, sc);
  /* the layer's input and output, and their gradients, in its own terms */
  pair in = pair_rand(transposed ? ny : nx, -1, 1), out = pair_rand(transposed ? nx : ny, 7, 8);
  pair bias = pair_rand((size_t)(transposed ? D.C : D.K), -1, 1);
  pair dout = pair_rand(out.n, -1, 1), din = pair_rand(in.n, 5, 6);
  pair dw = pair_const(nw, 0), db = pair_const(bias.n, 0);
  const char *name = transposed ? "conv_transpose2d" : "conv2d";

  for (int with_bias = 0; with_bias < 2; with_bias++) {
    layer_fwd(cpu, transposed, out.c, in.c, w.c, with_bias ? bias.c : NULL, &D, ws, wsn);
    layer_fwd(gpu, transposed, out.g, in.g, w.g, with_bias ? bias.g : NULL, &D, NULL, 0);
    cmp(&out, "%s forward bias=%d", name, with_bias);
  }
  layer_bwd(cpu, transposed, din.c, dw.c, db.c, dout.c, in.c, w.c, &D, ws, wsn);
  layer_bwd(gpu, transposed, din.g, dw.g, db.g, dout.g, in.g, w.g, &D, NULL, 0);
  cmp(&din, "%s backward input gradient", name);
  cmp(&dw, "%s backward dweight", name);
  cmp(&db, "%s backward dbias", name);
  float *dw1 = fetch(gpu, dw.g, dw.n), *db1 = fetch(gpu, db.g, db.n);
  layer_bwd(cpu, transposed, din.c, dw.c, db.c, dout.c, in.c, w.c, &D, ws, wsn);
  layer_bwd(gpu, transposed, din.g, dw.g, db.g, dout.g, in.g, w.g, &D, NULL, 0);
  cmp(&din, "%s backward input gradient (second)", name);
  check_doubled(&dw, dw1, transposed ? "conv_transpose2d dweight" : "conv2d dweight");
  check_doubled(&db, db1, transposed ? "conv_transpose2d dbias" : "conv2d dbias");
  free(dw1);
  free(db1);
  /* NULL skips a product: input gradient only (a frozen D), then weights only */
  float *dw_before = fetch(gpu, dw.g, dw.n), *db_before = fetch(gpu, db.g, db.n);
  cpu->iface.fill(cpu->ctx, din.c, 9.0f, din.n);
  gpu->iface.fill(gpu->ctx, din.g, 9.0f, din.n);
  layer_bwd(cpu, transposed, din.c, NULL, NULL, dout.c, in.c, w.c, &D, ws, wsn);
  layer_bwd(gpu, transposed, din.g, NULL, NULL, dout.g, in.g, w.g, &D, NULL, 0);
  cmp(&din, "%s backward input gradient only", name);
  float *dw_after = fetch(gpu, dw.g, dw.n);
  check(memcmp(dw_before, dw_after, dw.n * sizeof(float)) == 0,
        "%s: dweight untouched by a NULL", name);
  layer_bwd(cpu, transposed, NULL, dw.c, NULL, dout.c, in.c, w.c, &D, ws, wsn);
  layer_bwd(gpu, transposed, NULL, dw.g, NULL, dout.g, in.g, w.g, &D, NULL, 0);
  cmp(&dw, "%s backward dweight only", name);
  float *db_after = fetch(gpu, db.g, db.n);
  check(memcmp(db_before, db_after, db.n * sizeof(float)) == 0,
        "%s: dbias untouched by a NULL", name);
  free(dw_before);
  free(db_before);
  free(dw_after);
  free(db_after);
#if HAVE_EXTRAS
  /* the same shape again: plans and workspace are reused, nothing allocated */
  size_t before = 0, after = 0;
  gan_cuda_memory_stats(NULL, NULL, &before);
  layer_fwd(gpu, transposed, out.g, in.g, w.g, bias.g, &D, NULL, 0);
  gan_cuda_memory_stats(NULL, NULL, &after);
  check(after == before, "%s: a repeated shape calls no cudaMalloc (%zu -> %zu)", name,
        before, after);
#endif
  sync_both(name);
  cpu->iface.free(cpu->ctx, ws);
  pair_free(&w);
  pair_free(&in);
  pair_free(&out);
  pair_free(&bias);
  pair_free(&dout);
  pair_free(&din);
  pair_free(&dw);
  pair_free(&db);
}

/* More shapes than cuDNN's plan cache holds (32), each against the CPU,
** then the first again: eviction and re-creation of plans. */
static void test_conv_plans(void) {
  printf("conv2d plans: 40 shapes, then the first again\n");
  const int C = 3, H = 6, W = 5, K = 4, R = 3;
  pair w = pair_rand((size_t)K * C * R * R, -0.3f, 0.3f);
  for (int i = 0; i <= 40; i++) {
    int B = i < 40 ? i + 1 : 1;
    gan_conv2d_desc d = conv_desc(B, C, H, W, K, R, R, 1, 1);
    size_t wsn;
    float *ws = cpu_ws(&d, &wsn);
    pair x = pair_rand((size_t)B * C * H * W, -1, 1);
    pair y = pair_const((size_t)B * K * d.P * d.Q, 3);
    cpu->iface.conv2d_forward(cpu->ctx, y.c, x.c, w.c, NULL, &d, ws, wsn);
    gpu->iface.conv2d_forward(gpu->ctx, y.g, x.g, w.g, NULL, &d, NULL, 0);
    cmp(&y, "conv2d forward, batch %d (shape %d of 41)", B, i + 1);
    cpu->iface.free(cpu->ctx, ws);
    pair_free(&x);
    pair_free(&y);
  }
  sync_both("conv2d plans");
  pair_free(&w);
}

/* augment2d forward and adjoint, shifted and flipped, and the in-place flip */
static void test_augment(int B, int C, int H, int W) {
  printf("augment B=%d C=%d %dx%d\n", B, C, H, W);
  const size_t n = (size_t)B * C * H * W;
  float *prm = malloc(3 * (size_t)B * sizeof *prm);
  if (prm == NULL) die("malloc");
  for (int b = 0; b < B; b++) { /* every combination of flip and shift signs */
    prm[3 * b] = (float)(b % 2);
    prm[3 * b + 1] = (float)((b / 2) % 3 - 1) * (float)(1 + b % (H > 1 ? H - 1 : 1));
    prm[3 * b + 2] = (float)((b / 6) % 3 - 1) * (float)(1 + b % (W > 1 ? W - 1 : 1));
  }
  pair x = pair_rand(n, -1, 1), y = pair_rand(n, 5, 6);
  for (int adjoint = 0; adjoint < 2; adjoint++) {
    cpu->iface.augment2d(cpu->ctx, y.c, x.c, prm, B, C, H, W, adjoint);
    gpu->iface.augment2d(gpu->ctx, y.g, x.g, prm, B, C, H, W, adjoint);
    cmp(&y, "augment2d adjoint=%d", adjoint);
  }
  for (int b = 0; b < B; b++) prm[3 * b + 1] = prm[3 * b + 2] = 0.0f; /* flips only */
  cpu->iface.augment2d(cpu->ctx, x.c, x.c, prm, B, C, H, W, 0);
  gpu->iface.augment2d(gpu->ctx, x.g, x.g, prm, B, C, H, W, 0);
  cmp(&x, "augment2d flip in place");
  free(prm);
  pair_free(&x);
  pair_free(&y);
}

/* --- main --------------------------------------------------------------------- */

int main(void) {
  gpu = gan_backend_cuda();
  if (gpu == NULL) {
    printf("cuda: skipped (no GPU: %s)\n", gan_errmsg());
    return 77;
  }
  cpu = gan_backend_cpu();
  if (cpu == NULL) die("gan_backend_cpu");
  printf("%s\n", gan_backends_describe());

  test_memory();

  size_t ns[] = {1, 7, 1000, (1u << 20) + 3};
  for (int k = 0; k < 4; k++) test_elementwise(ns[k]);
  test_gather(10, 5, 7);
  test_gather(100, 5000, 3); /* the index buffer grows */
  test_gather(1000, 100, 49152);
  test_reader();
  test_uploads();

  test_random(1, 42);
  test_random(7, 0x0123456789ABCDEFull);
  test_random(1001, 0xFFFFFFFFFFFFFFFFull);
  test_random((1u << 20) + 1, 0xDEADBEEFCAFEull);

  test_matmul(3, 5, 7);
  test_matmul(1, 1, 1);
  test_matmul(64, 33, 17);
  test_matmul(128, 256, 300);
  test_matmul_k0();

  test_linear(3, 7, 5);
  test_linear(1, 1, 1);
  test_linear(64, 100, 33);
  test_linear(100, 1024, 1);
  test_linear(100, 49152, 1024); /* the seed model's first D layer */

  test_act(1);
  test_act(1000);
  test_act(12345);

  test_batchnorm(3, 7, 1);
  test_batchnorm(1, 4, 1);
  test_batchnorm(16, 5, 9);
  test_batchnorm(100, 1024, 1);
  test_batchnorm(8, 3, 1025); /* parts of a channel (common.cuh): 5 */
  test_batchnorm(2, 5, 3073); /* 4 parts, the last one shorter */
  test_batchnorm(16, 64, 1024); /* a DCGAN layer: 8 parts of 64 channels */
  test_batchnorm(2, 1, 300000); /* 256 parts, the cap of a channel: longer parts */

  test_bce(1, 0);
  test_bce(100, 0);
  test_bce(10007, 0);
  test_bce(1, 1);
  test_bce(100, 1);
  test_bce(10007, 1);

  test_adam(0);
  test_adam(1);
  test_adam_alignment();

  test_augment(1, 1, 1, 1);
  test_augment(5, 2, 1, 7); /* one row: shifts of the whole height */
  test_augment(18, 3, 7, 6);
  test_augment(18, 2, 6, 7); /* odd width: the middle column of a flip */
  test_augment(32, 3, 64, 64);

  /* the convolutions, on each of the CUDA backend's two implementations */
  for (int m = 0; m < 2; m++) {
#if HAVE_EXTRAS
    const char *mode = m == 0 ? "im2col" : "cudnn";
    if (m == 1 && gan_cuda_cudnn() == NULL) {
      /* a failure only if cuDNN is built in and GAN_CUDNN asked for it */
      printf("convolutions on cudnn: not tested: %s\n", gan_errmsg());
      const int built = strstr(gan_errmsg(), "built without") == NULL;
      check(!built || getenv("GAN_CUDNN") == NULL, "GAN_CUDNN is set but cuDNN does not load");
      /* a build without cuDNN refuses the mode; one with it takes it */
      gan_status st = gan_cuda_set_conv("cudnn");
      check(built ? st == GAN_OK : st == GAN_EBACKEND,
            "gan_cuda_set_conv(cudnn) without cuDNN's library (%s): %d", built ? "built in" :
            "not built in", (int)st);
      break;
    }
    check(gan_cuda_set_conv(mode) == GAN_OK, "gan_cuda_set_conv(%s)", mode);
    printf("convolutions on %s\n", mode);
#else
    if (m == 1) break;
#endif
    gan_conv2d_desc d;
    d = conv_desc(3, 2, 7, 5, 4, 3, 3, 1, 1); /* odd sizes, same padding */
    test_conv(&d, 0);
    test_conv(&d, 1);
    d = conv_desc(4, 3, 16, 16, 8, 4, 4, 2, 1); /* a DCGAN D block */
    test_conv(&d, 0);
    test_conv(&d, 1);
    d = conv_desc(2, 8, 4, 4, 1, 4, 4, 1, 0); /* D's last layer, G's first */
    test_conv(&d, 0);
    test_conv(&d, 1);
    d = conv_desc(3, 2, 6, 6, 2, 3, 3, 2, 1); /* transposed with output padding */
    test_conv(&d, 1);
    d = conv_desc(2, 3, 8, 7, 4, 3, 3, 2, 0); /* row 7 of x is never read */
    test_conv(&d, 0);
    test_conv(&d, 1);
    d = conv_desc(2, 3, 9, 8, 5, 3, 2, 1, 1); /* a kernel of 3x2 */
    test_conv(&d, 0);
    test_conv(&d, 1);
    d = conv_desc(64, 64, 32, 32, 128, 4, 4, 2, 1); /* a full-size DCGAN layer */
    test_conv(&d, 0);
    test_conv(&d, 1);
    test_conv_plans();
#if HAVE_EXTRAS
    if (m == 0) { /* im2col in blocks of 3 samples out of 7: a small workspace */
      d = conv_desc(7, 3, 8, 8, 4, 3, 3, 1, 1);
      size_t one = ((size_t)3 * 9 + 4) * 64; /* floats per sample: col and kb */
      check(gan_cuda_set_conv_workspace((3 * one + 63) * sizeof(float)) == GAN_OK,
            "gan_cuda_set_conv_workspace");
      printf("im2col in blocks of 3 samples:\n");
      test_conv(&d, 0);
      test_conv(&d, 1);
      check(gan_cuda_set_conv_workspace((size_t)256 << 20) == GAN_OK,
            "gan_cuda_set_conv_workspace back to 256 MiB");
    }
#endif
  }
#if HAVE_EXTRAS
  check(gan_cuda_set_conv("auto") == GAN_OK, "gan_cuda_set_conv(auto)");
  check(gan_cuda_set_conv("winograd") == GAN_EARG, "an unknown convolution mode is refused");
#endif

#if HAVE_EXTRAS
  /* TF32: the products on tensor cores; looser agreement, by design */
  if (gan_cuda_set_precision("tf32") == GAN_OK) {
    printf("linear in tf32\n");
    pair inp = pair_rand((size_t)100 * 1024, -1, 1), w = pair_rand((size_t)256 * 1024, -1, 1);
    pair out = pair_const((size_t)100 * 256, 0);
    cpu->iface.linear_forward(cpu->ctx, out.c, inp.c, w.c, NULL, 100, 1024, 256);
    gpu->iface.linear_forward(gpu->ctx, out.g, inp.g, w.g, NULL, 100, 1024, 256);
    float *a = fetch(cpu, out.c, out.n), *b = fetch(gpu, out.g, out.n);
    double e = nmse(a, b, out.n);
    printf("  tf32 linear: nmse %.3g against the fp32 CPU\n", e);
    check(e < 1e-5, "tf32 linear: nmse %.3g (expected below 1e-5)", e);
    free(a);
    free(b);
    pair_free(&inp);
    pair_free(&w);
    pair_free(&out);
    check(gan_cuda_set_precision("fp32") == GAN_OK, "back to fp32");
  } else {
    check(0, "gan_cuda_set_precision(\"tf32\"): %s", gan_errmsg());
  }
  check(gan_cuda_set_precision("fp16") == GAN_EARG, "an unknown precision is refused");

  /* convolutions in TF32 (cuDNN's tensor-op math), then fp32 again: the
  ** plans are per precision, so fp32 must be back to FMA accuracy */
  for (int m = 0; m < 2; m++) { /* im2col (cuBLAS's math), then cuDNN's math types */
    const char *impl = m == 0 ? "im2col" : "cudnn";
    if (m == 1 && gan_cuda_cudnn() == NULL) break;
    check(gan_cuda_set_conv(impl) == GAN_OK, "gan_cuda_set_conv(%s)", impl);
    printf("conv2d on %s in tf32, then fp32\n", impl);
    gan_conv2d_desc d = conv_desc(32, 64, 16, 16, 128, 4, 4, 2, 1);
    size_t wsn;
    float *ws = cpu_ws(&d, &wsn);
    pair x = pair_rand((size_t)32 * 64 * 16 * 16, -1, 1);
    pair w = pair_rand((size_t)128 * 64 * 16, -0.03f, 0.03f);
    pair y = pair_const((size_t)32 * 128 * d.P * d.Q, 0);
    cpu->iface.conv2d_forward(cpu->ctx, y.c, x.c, w.c, NULL, &d, ws, wsn);
    for (int round = 0; round < 2; round++) {
      const char *mode = round == 0 ? "tf32" : "fp32";
      check(gan_cuda_set_precision(mode) == GAN_OK, "set precision %s", mode);
      gpu->iface.conv2d_forward(gpu->ctx, y.g, x.g, w.g, NULL, &d, NULL, 0);
      float *a = fetch(cpu, y.c, y.n), *b = fetch(gpu, y.g, y.n);
      double e = nmse(a, b, y.n);
      printf("  %s conv2d: nmse %.3g against the fp32 CPU\n", mode, e);
      check(e < (round == 0 ? 1e-5 : TOL), "%s %s conv2d: nmse %.3g", impl, mode, e);
      free(a);
      free(b);
    }
    cpu->iface.free(cpu->ctx, ws);
    pair_free(&x);
    pair_free(&w);
    pair_free(&y);
    check(gan_cuda_set_conv("auto") == GAN_OK, "gan_cuda_set_conv(auto)");
  }
#endif

  sync_both("end");
  printf("test_cuda: %d passed, %d failed\n", npass, nfail);
  return nfail == 0 ? 0 : 1;
}
