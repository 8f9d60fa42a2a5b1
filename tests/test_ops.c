/*
** test_ops.c -- the CPU backend's kernels, through the public ops.
**
** What each part proves, and against what:
**  - gradients: every backward against central finite differences of the
**    scalar L = sum(w_i * y_i), w fixed and random, so a wrong formula, a
**    missing term or a swapped product shows as a mismatch; and backend.h's
**    conventions (parameter gradients accumulate, input gradients are
**    overwritten, NULL skips a product and touches nothing);
**  - closed forms computed here in double: Adam (Kingma and Ba 2015:
**    Algorithm 1, and Keras's form, also against Keras's own output), BCE
**    and its clamp, batchnorm's statistics and running averages;
**  - products against a naive triple loop, for every transpose flag;
**  - random draws: reproducible by key, the right moments, and published
**    answers (SplitMix64's reference outputs, Random123's Philox4x32-10
**    known-answer vector), which is what lets the GPU draw the same numbers;
**  - sum_to against a double sum, and the reader's synchronous CPU path;
**  - error paths: a status and a message naming the fault, no crash;
**  - a training step allocates nothing (the cpu backend's counters).
** Prints one line per failed check, then "N passed, M failed"; exit status 0
** only if nothing failed.  GAN_TEST_VERBOSE=1 also prints the worst error of
** every gradient check, to see the margin.
*/
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* --- checks ----------------------------------------------------------------*/

static int passed, failed, verbose;

static void check_(int ok, int line, const char *fmt, ...) GAN_PRINTF(3, 4);
static void check_(int ok, int line, const char *fmt, ...) {
  if (ok) {
    passed++;
    return;
  }
  failed++;
  va_list ap;
  va_start(ap, fmt);
  printf("test_ops.c:%d: ", line);
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
}
/* CHECK(condition, "format showing the values", values...) */
#define CHECK(cond, ...) check_((cond) != 0, __LINE__, __VA_ARGS__)
/* a call that must succeed; the message says why it did not */
#define OK(call) CHECK((call) == GAN_OK, "%s failed: %s", #call, gan_errmsg())

/* a failed call: GAN_EARG, and a message that contains every 'needle' */
static void expect_error(int line, gan_status s, const char *n1, const char *n2,
                         const char *n3) {
  const char *msg = gan_errmsg();
  check_(s == GAN_EARG, line, "expected GAN_EARG, got status %d (%s)", (int)s, msg);
  const char *needles[3] = {n1, n2, n3};
  for (int i = 0; i < 3; i++)
    if (needles[i])
      check_(strstr(msg, needles[i]) != NULL, line, "message \"%s\" does not "
             "mention \"%s\"", msg, needles[i]);
}
#define EXPECT_ERROR(call, n1, n2, n3) expect_error(__LINE__, (call), n1, n2, n3)

/* |a - b| within tol of the larger magnitude (at least 1) */
static int close_to(double a, double b, double tol) {
  return fabs(a - b) <= tol * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* --- tensors ---------------------------------------------------------------*/

static gan_backend *cpu;
static gan_rng data_rng; /* all test data: fixed seed, so failures reproduce */

/* On the CPU t.data is host memory, so the tests read and poke it directly. */
static gan_tensor make(int ndim, const int64_t *shape) {
  gan_tensor t;
  gan_tensor_init(&t);
  if (gan_tensor_alloc(&t, cpu, ndim, shape) != GAN_OK) {
    fprintf(stderr, "cannot allocate a test tensor: %s\n", gan_errmsg());
    exit(2); /* not a test result */
  }
  return t;
}

static gan_tensor uniform(float lo, float hi, int ndim, const int64_t *shape) {
  gan_tensor t = make(ndim, shape);
  OK(gan_rand(&t, &data_rng, lo, hi));
  return t;
}

static gan_tensor zeros(int ndim, const int64_t *shape) {
  gan_tensor t = make(ndim, shape);
  OK(gan_fill(&t, 0.0f));
  return t;
}

/* ZEROS(4, 5), UNIFORM(-1, 1, 4, 5): a shape written out as its dimensions */
#define SHAPE(...)                                                             \
  (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                   \
      (int64_t[]) { __VA_ARGS__ }
#define ZEROS(...) zeros(SHAPE(__VA_ARGS__))
#define UNIFORM(lo, hi, ...) uniform((lo), (hi), SHAPE(__VA_ARGS__))

static void release_all(gan_tensor *t, ...) {
  va_list ap;
  va_start(ap, t);
  for (; t; t = va_arg(ap, gan_tensor *)) gan_tensor_release(t);
  va_end(ap);
}
#define RELEASE(...) release_all(__VA_ARGS__, (gan_tensor *)NULL)

/* sum(w * y) in double: the scalar whose gradient the backward passes give */
static double dot(const gan_tensor *w, const gan_tensor *y) {
  double s = 0.0;
  for (int64_t i = 0; i < y->numel; i++) s += (double)w->data[i] * y->data[i];
  return s;
}

/* got == factor * base, elementwise to rounding: how the accumulation of
** parameter gradients (factor 2, 3) and untouched buffers (1) are checked.
** One check per tensor, showing the first element that differs. */
static void check_multiple(const char *what, const gan_tensor *got, double factor,
                           const gan_tensor *base) {
  int64_t bad = -1;
  for (int64_t i = 0; i < got->numel && bad < 0; i++)
    if (!close_to(got->data[i], factor * base->data[i], 1e-6)) bad = i;
  int64_t k = bad < 0 ? 0 : bad;
  CHECK(bad < 0, "%s: element %lld is %g, expected %g * %g", what, (long long)k,
        got->data[k], factor, base->data[k]);
}

/* --- finite differences ----------------------------------------------------*/

typedef double (*objective)(void *ctx); /* reruns a forward, returns L */

/* Central differences of f over each x[k] against analytic[k].  The quotient
** uses the float-rounded (x+h) - (x-h), not 2h, which is off by some ulps of
** x.  The error is relative with a floor of 1e-2, so gradients near 0 are
** compared absolutely.  One check per gradient, showing the worst element. */
static void gradcheck(const char *what, float *x, int64_t n,
                      const float *analytic, float h, objective f, void *ctx) {
  double worst = 0.0, wa = 0.0, wn = 0.0;
  int64_t at = 0;
  for (int64_t k = 0; k < n; k++) {
    const float x0 = x[k], xp = x0 + h, xm = x0 - h;
    x[k] = xp;
    double lp = f(ctx);
    x[k] = xm;
    double lm = f(ctx);
    x[k] = x0;
    double num = (lp - lm) / ((double)xp - (double)xm), a = analytic[k];
    double err = fabs(a - num) / fmax(1e-2, fabs(a) + fabs(num));
    if (err >= worst) worst = err, at = k, wa = a, wn = num;
  }
  if (verbose) printf("  %-30s worst relative error %.2e\n", what, worst);
  CHECK(worst < 1e-2, "%s: element %lld: analytic %.6g, numeric %.6g (error %.2e)",
        what, (long long)at, wa, wn, worst);
}

/* --- linear ----------------------------------------------------------------*/

typedef struct { gan_tensor *out, *inp, *weight, *bias, *w; } linear_case;

static double linear_objective(void *p) {
  linear_case *c = p;
  gan_linear_forward(c->out, c->inp, c->weight, c->bias);
  return dot(c->w, c->out);
}

static void test_linear_gradients(void) {
  enum { B = 4, C = 5, OC = 3 };
  gan_tensor inp = UNIFORM(-1, 1, B, C), weight = UNIFORM(-1, 1, OC, C),
             bias = UNIFORM(-1, 1, OC), w = UNIFORM(-1, 1, B, OC),
             out = ZEROS(B, OC), dinp = ZEROS(B, C), dw = ZEROS(OC, C),
             db = ZEROS(OC);
  OK(gan_linear_backward(&dinp, &dw, &db, &w, &inp, &weight));
  linear_case c = {&out, &inp, &weight, &bias, &w};
  /* linear in each argument: central differences are exact up to rounding */
  gradcheck("linear dinp", inp.data, inp.numel, dinp.data, 1e-2f, linear_objective, &c);
  gradcheck("linear dweight", weight.data, weight.numel, dw.data, 1e-2f, linear_objective, &c);
  gradcheck("linear dbias", bias.data, bias.numel, db.data, 1e-2f, linear_objective, &c);

  /* the same backward again: dweight and dbias double, dinp is rewritten */
  gan_tensor dinp1 = ZEROS(B, C), dw1 = ZEROS(OC, C), db1 = ZEROS(OC);
  OK(gan_copy(&dinp1, &dinp));
  OK(gan_copy(&dw1, &dw));
  OK(gan_copy(&db1, &db));
  OK(gan_linear_backward(&dinp, &dw, &db, &w, &inp, &weight));
  check_multiple("linear dweight after 2 backwards", &dw, 2, &dw1);
  check_multiple("linear dbias after 2 backwards", &db, 2, &db1);
  check_multiple("linear dinp after 2 backwards", &dinp, 1, &dinp1);

  /* NULL skips: only dweight (3x now), then only dinp; the rest untouched */
  OK(gan_copy(&db1, &db));
  OK(gan_fill(&dinp, 7.0f));
  OK(gan_linear_backward(NULL, &dw, NULL, &w, &inp, &weight));
  check_multiple("linear dweight after a dweight-only backward", &dw, 3, &dw1);
  check_multiple("linear dbias after a backward that skipped it", &db, 1, &db1);
  double s7;
  OK(gan_sum(&dinp, &s7));
  CHECK(s7 == 7.0 * B * C, "linear dinp written by a backward that skipped it");
  OK(gan_copy(&dw1, &dw));
  OK(gan_linear_backward(&dinp, NULL, NULL, &w, &inp, &weight));
  check_multiple("linear dweight after a backward that skipped it", &dw, 1, &dw1);
  OK(gan_linear_backward(&dinp1, &dw1, &db1, &w, &inp, &weight));
  check_multiple("linear dinp-only backward against the full one", &dinp, 1, &dinp1);

  /* zeros put off (gan_zero_later): a backward overwrites both gradients,
  ** bit for bit what it adds to zeros; one marked alone is zeroed first */
  gan_tensor dw0 = ZEROS(OC, C), db0 = ZEROS(OC);
  OK(gan_linear_backward(NULL, &dw0, &db0, &w, &inp, &weight));
  OK(gan_fill(&dw, 9.0f));
  OK(gan_fill(&db, 9.0f));
  OK(gan_zero_later(&dw));
  OK(gan_zero_later(&db));
  CHECK(dw.zero_pending && db.zero_pending, "zero_later marks the tensors");
  OK(gan_linear_backward(NULL, &dw, &db, &w, &inp, &weight));
  CHECK(!dw.zero_pending && !db.zero_pending, "the backward clears the marks");
  CHECK(memcmp(dw.data, dw0.data, sizeof(float) * OC * C) == 0 &&
            memcmp(db.data, db0.data, sizeof(float) * OC) == 0,
        "linear gradients overwritten after zero_later equal zeros + gradients");
  OK(gan_fill(&db, 9.0f));
  OK(gan_zero_later(&dw)); /* only dweight: db keeps its 9s and adds */
  OK(gan_linear_backward(NULL, &dw, &db, &w, &inp, &weight));
  CHECK(memcmp(dw.data, dw0.data, sizeof(float) * OC * C) == 0,
        "linear dweight marked alone: zeroed, then added to");
  CHECK(fabsf(db.data[0] - (9.0f + db0.data[0])) < 1e-5f && !dw.zero_pending,
        "linear dbias not marked: added to");
  OK(gan_fill(&dw, 9.0f));
  OK(gan_zero_later(&db)); /* only dbias */
  OK(gan_linear_backward(NULL, &dw, &db, &w, &inp, &weight));
  CHECK(memcmp(db.data, db0.data, sizeof(float) * OC) == 0 &&
            fabsf(dw.data[1] - (9.0f + dw0.data[1])) < 1e-5f,
        "linear dbias marked alone: zeroed, then added to; dweight added to");
  /* gan_tensor_ready writes the zeros; a view is zeroed at once, and makes
  ** its parent's zeros real */
  OK(gan_fill(&dw, 4.0f));
  OK(gan_zero_later(&dw));
  CHECK(dw.data[0] == 4.0f, "zero_later writes nothing");
  OK(gan_tensor_ready(&dw));
  double sum_ready;
  OK(gan_sum(&dw, &sum_ready));
  CHECK(sum_ready == 0.0 && !dw.zero_pending, "gan_tensor_ready writes the zeros");
  gan_tensor row;
  gan_tensor_init(&row);
  OK(gan_fill(&dw, 4.0f));
  OK(gan_tensor_rows(&row, &dw, 1, 1));
  OK(gan_zero_later(&row));
  CHECK(!row.zero_pending && row.data[0] == 0.0f && dw.data[0] == 4.0f,
        "zero_later on a view zeroes its rows at once");
  OK(gan_zero_later(&dw));
  CHECK(!row.zero_pending, "a view of a marked tensor is not marked itself");
  OK(gan_tensor_ready(&row));
  CHECK(!dw.zero_pending && dw.data[0] == 0.0f, "a view's ready writes its parent's zeros");
  RELEASE(&dw0, &db0);
  RELEASE(&dinp1, &dw1, &db1);
  RELEASE(&inp, &weight, &bias, &w, &out, &dinp, &dw, &db);
}

/* linear_forward against a naive loop, with and without bias; the 3-d input
** is seen as rows x (product of the rest), as ops.h says */
static void test_linear_values(void) {
  gan_tensor inp = UNIFORM(-1, 1, 6, 2, 4), weight = UNIFORM(-1, 1, 3, 8),
             bias = UNIFORM(-1, 1, 3), out = ZEROS(6, 3);
  for (int with_bias = 0; with_bias < 2; with_bias++) {
    OK(gan_linear_forward(&out, &inp, &weight, with_bias ? &bias : NULL));
    for (int b = 0; b < 6; b++)
      for (int o = 0; o < 3; o++) {
        double ref = with_bias ? bias.data[o] : 0.0;
        for (int k = 0; k < 8; k++)
          ref += (double)inp.data[b * 8 + k] * weight.data[o * 8 + k];
        CHECK(close_to(out.data[b * 3 + o], ref, 1e-5), "linear_forward (bias "
              "%d) out[%d][%d] = %g, expected %g", with_bias, b, o,
              out.data[b * 3 + o], ref);
      }
  }
  RELEASE(&inp, &weight, &bias, &out);
}

/* --- matmul ----------------------------------------------------------------*/

static void test_matmul(void) {
  static const int shapes[2][3] = {{7, 5, 3}, {33, 17, 65}}; /* M, N, K */
  const float alpha = 0.5f, beta = 2.0f;
  for (int s = 0; s < 2; s++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        /* A is stored (K, M) when transposed, B (N, K) */
        gan_tensor A = ta ? UNIFORM(-1, 1, K, M) : UNIFORM(-1, 1, M, K);
        gan_tensor Bm = tb ? UNIFORM(-1, 1, N, K) : UNIFORM(-1, 1, K, N);
        gan_tensor Cm = UNIFORM(-1, 1, M, N);
        float *C0 = malloc(sizeof(float) * M * N);
        memcpy(C0, Cm.data, sizeof(float) * M * N);
        OK(gan_matmul(&Cm, &A, ta, &Bm, tb, alpha, beta));
        double worst = 0.0;
        for (int i = 0; i < M; i++)
          for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++)
              acc += (double)(ta ? A.data[k * M + i] : A.data[i * K + k]) *
                     (tb ? Bm.data[j * K + k] : Bm.data[k * N + j]);
            double ref = alpha * acc + beta * C0[i * N + j];
            double err = fabs(Cm.data[i * N + j] - ref) / fmax(1.0, fabs(ref));
            worst = fmax(worst, err);
          }
        CHECK(worst < 1e-4, "matmul M=%d N=%d K=%d ta=%d tb=%d: relative error "
              "%.2e against the naive loop", M, N, K, ta, tb, worst);
        free(C0);
        RELEASE(&A, &Bm, &Cm);
      }
}

/* --- activations -----------------------------------------------------------*/

typedef struct { gan_act act; float alpha; gan_tensor *y, *x, *w; } act_case;

static double act_objective(void *p) {
  act_case *c = p;
  gan_act_forward(c->act, c->alpha, c->y, c->x);
  return dot(c->w, c->y);
}

static const char *act_names[] = {"identity", "relu", "leaky_relu", "sigmoid", "tanh"};

/* the activation at x in double, and its derivative in *d */
static double act_ref(gan_act act, double alpha, double x, double *d) {
  double s = 1.0 / (1.0 + exp(-x)), t = tanh(x);
  switch (act) {
  case GAN_ACT_RELU:
    *d = x > 0 ? 1 : 0;
    return x > 0 ? x : 0;
  case GAN_ACT_LEAKY_RELU:
    *d = x > 0 ? 1 : alpha;
    return x > 0 ? x : alpha * x;
  case GAN_ACT_SIGMOID:
    *d = s * (1 - s);
    return s;
  case GAN_ACT_TANH:
    *d = 1 - t * t;
    return t;
  default:
    *d = 1;
    return x;
  }
}

static void test_activations(void) {
  const float alpha = 0.2f, h = 1e-2f;
  for (int a = GAN_ACT_IDENTITY; a <= GAN_ACT_TANH; a++) {
    gan_tensor x = UNIFORM(-3, 3, 4, 5), y = ZEROS(4, 5), dx = ZEROS(4, 5),
               w = UNIFORM(-1, 1, 4, 5);
    /* relu and leaky have a kink at 0: keep every x further than 5h from it */
    for (int i = 0; i < 20; i++)
      if (fabsf(x.data[i]) < 5 * h) x.data[i] += x.data[i] < 0 ? -0.1f : 0.1f;
    OK(gan_act_forward((gan_act)a, alpha, &y, &x));
    OK(gan_act_backward((gan_act)a, alpha, &dx, &w, &x, &y));
    act_case c = {(gan_act)a, alpha, &y, &x, &w};
    char what[128];
    snprintf(what, sizeof what, "%s dx", act_names[a]);
    gradcheck(what, x.data, x.numel, dx.data, h, act_objective, &c);
    RELEASE(&x, &y, &dx, &w);

    /* values and derivatives on a tensor long enough for the OpenMP loops,
    ** with extremes that would overflow a naive exp */
    enum { N = 40000 };
    gan_tensor big = UNIFORM(-6, 6, N), out = ZEROS(N), dy = UNIFORM(-1, 1, N),
               dxo = ZEROS(N);
    big.data[0] = 100.0f, big.data[1] = -100.0f, big.data[2] = 1e4f, big.data[3] = -1e4f;
    OK(gan_act_forward((gan_act)a, alpha, &out, &big));
    OK(gan_act_backward((gan_act)a, alpha, &dxo, &dy, &big, &out));
    double worst = 0.0, worstd = 0.0, d;
    int at = 0, atd = 0;
    for (int i = 0; i < N; i++) {
      double ref = act_ref((gan_act)a, alpha, big.data[i], &d);
      double err = fabs(out.data[i] - ref) / fmax(1.0, fabs(ref));
      double errd = fabs(dxo.data[i] - dy.data[i] * d);
      if (!(err <= worst)) worst = err, at = i; /* catches NaN too */
      if (!(errd <= worstd)) worstd = errd, atd = i;
    }
    double ref = act_ref((gan_act)a, alpha, big.data[at], &d);
    CHECK(worst < 1e-6, "%s forward: x[%d] = %g gives %g, expected %g",
          act_names[a], at, big.data[at], out.data[at], ref);
    act_ref((gan_act)a, alpha, big.data[atd], &d);
    CHECK(worstd < 1e-6, "%s backward: x[%d] = %g, dy %g gives dx %g, expected %g",
          act_names[a], atd, big.data[atd], dy.data[atd], dxo.data[atd],
          dy.data[atd] * d);
    /* in place (dx = dy, y = x) is a path of its own in the kernels */
    snprintf(what, sizeof what, "%s in-place backward", act_names[a]);
    OK(gan_act_backward((gan_act)a, alpha, &dy, &dy, &big, &out));
    check_multiple(what, &dy, 1, &dxo);
    snprintf(what, sizeof what, "%s in-place forward", act_names[a]);
    OK(gan_act_forward((gan_act)a, alpha, &big, &big));
    check_multiple(what, &big, 1, &out);
    RELEASE(&dy, &dxo);
    RELEASE(&big, &out);
  }
}

/* --- dropout ---------------------------------------------------------------*/

#define DROPOUT_SEED 99

typedef struct { gan_tensor *y, *mask, *x, *w; float p; } dropout_case;

/* The same key every time, so the mask is fixed and y is linear in x. */
static double dropout_objective(void *p) {
  dropout_case *c = p;
  gan_rng r;
  gan_rng_seed(&r, DROPOUT_SEED);
  gan_dropout_forward(c->y, c->mask, c->x, c->p, &r);
  return dot(c->w, c->y);
}

static void test_dropout(void) {
  const float p = 0.3f, scale = 1.0f / (1.0f - p);
  gan_tensor x = UNIFORM(-1, 1, 4, 5), y = ZEROS(4, 5), mask = ZEROS(4, 5),
             dx = ZEROS(4, 5), w = UNIFORM(-1, 1, 4, 5);
  dropout_case c = {&y, &mask, &x, &w, p};
  dropout_objective(&c);
  OK(gan_dropout_backward(&dx, &w, &mask));
  for (int i = 0; i < 20; i++) {
    CHECK(mask.data[i] == 0.0f || mask.data[i] == scale, "dropout mask[%d] = %g, "
          "expected 0 or %g", i, mask.data[i], scale);
    CHECK(y.data[i] == x.data[i] * mask.data[i], "dropout y[%d] = %g, x * mask = %g",
          i, y.data[i], x.data[i] * mask.data[i]);
    CHECK(dx.data[i] == w.data[i] * mask.data[i], "dropout dx[%d] = %g, dy * mask "
          "= %g", i, dx.data[i], w.data[i] * mask.data[i]);
  }
  gradcheck("dropout dx", x.data, x.numel, dx.data, 1e-2f, dropout_objective, &c);
  RELEASE(&x, &y, &mask, &dx, &w);

  /* the fraction kept, over enough elements that its std (0.0015) is small */
  enum { N = 100000 };
  gan_tensor bx = UNIFORM(-1, 1, N), by = ZEROS(N), bm = ZEROS(N), bm2 = ZEROS(N);
  gan_rng r;
  gan_rng_seed(&r, DROPOUT_SEED);
  OK(gan_dropout_forward(&by, &bm, &bx, p, &r));
  int64_t kept = 0;
  for (int i = 0; i < N; i++) kept += bm.data[i] != 0.0f;
  CHECK(fabs((double)kept / N - (1.0 - p)) < 0.01, "dropout p=%g kept %lld of %d "
        "(fraction %.4f, expected %.2f)", p, (long long)kept, N,
        (double)kept / N, 1.0 - p);
  /* the generator moved on: the next mask is a different one */
  OK(gan_dropout_forward(&by, &bm2, &bx, p, &r));
  CHECK(memcmp(bm.data, bm2.data, sizeof(float) * N) != 0, "dropout: two draws "
        "from one generator gave the same mask");
  /* p = 0 keeps everything, unscaled */
  OK(gan_dropout_forward(&by, &bm, &bx, 0.0f, &r));
  int bad = 0;
  for (int i = 0; i < N; i++) bad += bm.data[i] != 1.0f || by.data[i] != bx.data[i];
  CHECK(bad == 0, "dropout p=0 changed %d of %d elements", bad, N);
  RELEASE(&bx, &by, &bm, &bm2);
}

/* --- batchnorm -------------------------------------------------------------*/

#define BN_MOMENTUM 0.9f
#define BN_EPS 1e-3f

typedef struct {
  gan_tensor *y, *mean, *rstd, *run_mean, *run_var, *x, *gamma, *beta, *w;
  int training;
} bn_case;

static double bn_objective(void *p) {
  bn_case *c = p;
  gan_batchnorm_forward(c->y, c->mean, c->rstd, c->run_mean, c->run_var, c->x,
                        c->gamma, c->beta, BN_MOMENTUM, BN_EPS, c->training);
  return dot(c->w, c->y);
}

/* dx (through the batch statistics when training), dgamma, dbeta */
static void bn_gradients(const char *name, int ndim, const int64_t *shape,
                         int training) {
  const int64_t C = shape[1];
  gan_tensor x = uniform(-2, 2, ndim, shape), y = zeros(ndim, shape),
             dx = zeros(ndim, shape), w = uniform(-1, 1, ndim, shape);
  gan_tensor gamma = UNIFORM(0.5f, 1.5f, C), beta = UNIFORM(-1, 1, C),
             mean = ZEROS(C), rstd = ZEROS(C), rm = UNIFORM(-0.5f, 0.5f, C),
             rv = UNIFORM(0.5f, 1.5f, C), dgamma = ZEROS(C), dbeta = ZEROS(C);
  bn_case c = {&y, &mean, &rstd, &rm, &rv, &x, &gamma, &beta, &w, training};
  bn_objective(&c);
  OK(gan_batchnorm_backward(&dx, &dgamma, &dbeta, &w, &x, &gamma, &mean, &rstd,
                            training));
  char what[128];
  snprintf(what, sizeof what, "%s dx", name);
  gradcheck(what, x.data, x.numel, dx.data, 1e-2f, bn_objective, &c);
  snprintf(what, sizeof what, "%s dgamma", name);
  gradcheck(what, gamma.data, C, dgamma.data, 1e-2f, bn_objective, &c);
  snprintf(what, sizeof what, "%s dbeta", name);
  gradcheck(what, beta.data, C, dbeta.data, 1e-2f, bn_objective, &c);

  /* a second backward doubles dgamma and dbeta and rewrites dx; then one
  ** with dgamma alone adds to it and leaves dbeta */
  gan_tensor dx1 = zeros(ndim, shape), dg1 = ZEROS(C), db1 = ZEROS(C);
  OK(gan_copy(&dx1, &dx));
  OK(gan_copy(&dg1, &dgamma));
  OK(gan_copy(&db1, &dbeta));
  bn_objective(&c); /* mean and rstd of the unperturbed x */
  OK(gan_batchnorm_backward(&dx, &dgamma, &dbeta, &w, &x, &gamma, &mean, &rstd,
                            training));
  snprintf(what, sizeof what, "%s dgamma after 2 backwards", name);
  check_multiple(what, &dgamma, 2, &dg1);
  snprintf(what, sizeof what, "%s dbeta after 2 backwards", name);
  check_multiple(what, &dbeta, 2, &db1);
  snprintf(what, sizeof what, "%s dx after 2 backwards", name);
  check_multiple(what, &dx, 1, &dx1);
  OK(gan_copy(&db1, &dbeta));
  OK(gan_batchnorm_backward(NULL, &dgamma, NULL, &w, &x, &gamma, &mean, &rstd,
                            training));
  snprintf(what, sizeof what, "%s dgamma after a dgamma-only backward", name);
  check_multiple(what, &dgamma, 3, &dg1);
  snprintf(what, sizeof what, "%s dbeta after a backward that skipped it", name);
  check_multiple(what, &dbeta, 1, &db1);

  /* zeros put off (gan_zero_later), as in linear: both marked, both
  ** overwritten, bit for bit what adding to zeros gives; one marked alone is
  ** zeroed first, the other added to */
  gan_tensor dg0 = ZEROS(C), db0 = ZEROS(C);
  OK(gan_batchnorm_backward(NULL, &dg0, &db0, &w, &x, &gamma, &mean, &rstd, training));
  OK(gan_fill(&dgamma, 9.0f));
  OK(gan_fill(&dbeta, 9.0f));
  OK(gan_zero_later(&dgamma));
  OK(gan_zero_later(&dbeta));
  OK(gan_batchnorm_backward(&dx, &dgamma, &dbeta, &w, &x, &gamma, &mean, &rstd, training));
  CHECK(!dgamma.zero_pending && !dbeta.zero_pending &&
            memcmp(dgamma.data, dg0.data, sizeof(float) * C) == 0 &&
            memcmp(dbeta.data, db0.data, sizeof(float) * C) == 0,
        "%s gradients overwritten after zero_later equal zeros + gradients", name);
  OK(gan_zero_later(&dbeta)); /* only dbeta: dgamma adds */
  OK(gan_batchnorm_backward(NULL, &dgamma, &dbeta, &w, &x, &gamma, &mean, &rstd, training));
  snprintf(what, sizeof what, "%s dgamma not marked: added to", name);
  check_multiple(what, &dgamma, 2, &dg0);
  CHECK(!dbeta.zero_pending && memcmp(dbeta.data, db0.data, sizeof(float) * C) == 0,
        "%s dbeta marked alone: zeroed, then added to", name);
  OK(gan_zero_later(&dgamma)); /* marked, and left out of the call: still marked */
  OK(gan_batchnorm_backward(NULL, NULL, &dbeta, &w, &x, &gamma, &mean, &rstd, training));
  CHECK(dgamma.zero_pending, "%s: a backward without dgamma keeps its mark", name);
  OK(gan_zero_later(&dbeta));
  OK(gan_batchnorm_backward(NULL, NULL, &dbeta, &w, &x, &gamma, &mean, &rstd, training));
  CHECK(!dbeta.zero_pending && memcmp(dbeta.data, db0.data, sizeof(float) * C) == 0,
        "%s dbeta alone, marked: overwritten", name);
  /* the parameter gradients share no memory with each other or the inputs */
  EXPECT_ERROR(gan_batchnorm_backward(NULL, &dgamma, &dgamma, &w, &x, &gamma, &mean, &rstd,
                                      training),
               "batchnorm backward", "gamma gradient", "beta gradient");
  EXPECT_ERROR(gan_batchnorm_backward(NULL, &dgamma, &dbeta, &w, &x, &gamma, &dbeta, &rstd,
                                      training),
               "beta gradient", "mean", "share memory");
  RELEASE(&dg0, &db0);
  RELEASE(&dx1, &dg1, &db1);
  RELEASE(&x, &y, &dx, &w, &gamma, &beta, &mean, &rstd, &rm, &rv, &dgamma, &dbeta);
}

/* Forward values against statistics computed here in double. */
static void bn_values(void) {
  enum { B = 10, C = 3, S = 2 };
  /* Channel scales near sqrt(eps), so that var/(var+eps) is far from 1 and a
  ** misplaced eps shows; a running variance of the same order, a momentum
  ** far from 1 and only 20 values per channel, so that an unbiased variance
  ** (x 20/19) would show in the running average. */
  const float momentum = 0.6f;
  gan_tensor x = UNIFORM(-1, 1, B, C, S), y = ZEROS(B, C, S), mean = ZEROS(C),
             rstd = ZEROS(C), rm = UNIFORM(-1, 1, C), rv = UNIFORM(5e-4f, 2e-3f, C),
             gamma = ZEROS(C), beta = ZEROS(C);
  OK(gan_fill(&gamma, 1.0f));
  for (int i = 0; i < B * C * S; i++) {
    int c = (i / S) % C;
    x.data[i] = (float)(c - 1) + 0.03f * (c + 1) * x.data[i];
  }
  float rm0[C], rv0[C];
  memcpy(rm0, rm.data, sizeof rm0);
  memcpy(rv0, rv.data, sizeof rv0);
  OK(gan_batchnorm_forward(&y, &mean, &rstd, &rm, &rv, &x, &gamma, &beta,
                           momentum, BN_EPS, 1));
  for (int c = 0; c < C; c++) {
    double mu = 0, var = 0, ymu = 0, yvar = 0;
    for (int b = 0; b < B; b++)
      for (int s = 0; s < S; s++) mu += x.data[(b * C + c) * S + s], ymu += y.data[(b * C + c) * S + s];
    mu /= B * S, ymu /= B * S;
    for (int b = 0; b < B; b++)
      for (int s = 0; s < S; s++) {
        double d = x.data[(b * C + c) * S + s] - mu, e = y.data[(b * C + c) * S + s] - ymu;
        var += d * d, yvar += e * e;
      }
    var /= B * S, yvar /= B * S; /* biased, as the paper and Keras */
    CHECK(fabs(ymu) < 1e-5, "batchnorm channel %d: output mean %g, expected 0", c, ymu);
    CHECK(close_to(yvar, var / (var + BN_EPS), 1e-4), "batchnorm channel %d: "
          "output variance %g, expected var/(var+eps) = %g", c, yvar, var / (var + BN_EPS));
    CHECK(close_to(mean.data[c], mu, 1e-6), "batchnorm mean[%d] = %g, expected %g",
          c, mean.data[c], mu);
    CHECK(close_to(rstd.data[c], 1 / sqrt(var + BN_EPS), 1e-5), "batchnorm rstd[%d] "
          "= %g, expected %g", c, rstd.data[c], 1 / sqrt(var + BN_EPS));
    double erm = momentum * rm0[c] + (1 - momentum) * mu;
    double erv = momentum * rv0[c] + (1 - momentum) * var;
    CHECK(close_to(rm.data[c], erm, 1e-5), "batchnorm running mean[%d] = %g, "
          "expected m*r + (1-m)*batch = %g", c, rm.data[c], erm);
    CHECK(close_to(rv.data[c], erv, 1e-5), "batchnorm running var[%d] = %g, "
          "expected m*r + (1-m)*batch (biased) = %g", c, rv.data[c], erv);
  }

  /* evaluation: the running statistics, left unchanged */
  float rm1[C], rv1[C];
  memcpy(rm1, rm.data, sizeof rm1);
  memcpy(rv1, rv.data, sizeof rv1);
  OK(gan_rand(&gamma, &data_rng, 0.5f, 1.5f));
  OK(gan_rand(&beta, &data_rng, -1, 1));
  OK(gan_batchnorm_forward(&y, &mean, &rstd, &rm, &rv, &x, &gamma, &beta,
                           momentum, BN_EPS, 0));
  CHECK(memcmp(rm1, rm.data, sizeof rm1) == 0 && memcmp(rv1, rv.data, sizeof rv1) == 0,
        "batchnorm evaluation changed the running statistics");
  double worst = 0.0;
  for (int i = 0; i < B * C * S; i++) {
    int c = (i / S) % C;
    double ref = gamma.data[c] * (x.data[i] - rm1[c]) / sqrt(rv1[c] + BN_EPS) + beta.data[c];
    worst = fmax(worst, fabs(y.data[i] - ref) / fmax(1.0, fabs(ref)));
  }
  CHECK(worst < 1e-5, "batchnorm evaluation: relative error %.2e against "
        "gamma (x - run_mean) / sqrt(run_var + eps) + beta", worst);
  RELEASE(&x, &y, &mean, &rstd, &rm, &rv, &gamma, &beta);
}

/* One value per channel (batch 1, dense), as Keras allows: the variance is
** 0, so y = beta, dx = 0, dbeta = dy, dgamma = 0. */
static void bn_single(void) {
  enum { C = 3 };
  gan_tensor x = UNIFORM(-1, 1, 1, C), y = ZEROS(1, C), mean = ZEROS(C), rstd = ZEROS(C),
             rm = ZEROS(C), rv = ZEROS(C), gamma = UNIFORM(0.5f, 2, C),
             beta = UNIFORM(-1, 1, C), dy = UNIFORM(-1, 1, 1, C), dx = ZEROS(1, C),
             dg = ZEROS(C), db = ZEROS(C);
  OK(gan_batchnorm_forward(&y, &mean, &rstd, &rm, &rv, &x, &gamma, &beta, 0.8f,
                           BN_EPS, 1));
  OK(gan_batchnorm_backward(&dx, &dg, &db, &dy, &x, &gamma, &mean, &rstd, 1));
  for (int c = 0; c < C; c++) {
    /* y = a x + (beta - a m), a = gamma rstd (about 60 here): x = m cancels
    ** up to the rounding of a m */
    const float tol = 4 * FLT_EPSILON * (fabsf(gamma.data[c] * rstd.data[c] * x.data[c]) + 1);
    CHECK(fabsf(y.data[c] - beta.data[c]) < tol, "batchnorm of 1 value: y[%d] = %g, expected "
          "beta %g", c, y.data[c], beta.data[c]);
    CHECK(fabsf(dx.data[c]) < 1e-6f && fabsf(dg.data[c]) < 1e-6f && db.data[c] == dy.data[c],
          "batchnorm of 1 value: dx %g, dgamma %g, dbeta %g (expected 0, 0, %g)",
          dx.data[c], dg.data[c], db.data[c], dy.data[c]);
  }
  RELEASE(&x, &y, &mean, &rstd, &rm, &rv, &gamma, &beta, &dy, &dx, &dg, &db);
}

static void test_batchnorm(void) {
  bn_single();
  bn_gradients("batchnorm (4,5) train", SHAPE(4, 5), 1);
  bn_gradients("batchnorm (3,4,2,3) train", SHAPE(3, 4, 2, 3), 1);
  bn_gradients("batchnorm (4,5) eval", SHAPE(4, 5), 0);
  bn_gradients("batchnorm (3,4,2,3) eval", SHAPE(3, 4, 2, 3), 0);
  bn_values();
}

/* --- binary cross-entropy --------------------------------------------------*/

typedef struct { gan_tensor *loss, *pred, *target; int logits; } bce_case;

/* n * mean loss: the sum, so that gradients are of order 1 against the
** floor of 1e-2 in gradcheck's error */
static double bce_objective(void *p) {
  bce_case *c = p;
  gan_bce_forward(c->loss, c->pred, c->target, c->logits);
  return (double)c->loss->data[0] * c->pred->numel;
}

static float bce_loss(const float *p, const float *t, int n, int logits) {
  gan_tensor pred = ZEROS(n), target = ZEROS(n), loss = ZEROS(1);
  OK(gan_from_host(&pred, p));
  OK(gan_from_host(&target, t));
  OK(gan_bce_forward(&loss, &pred, &target, logits));
  float v = loss.data[0];
  RELEASE(&pred, &target, &loss);
  return v;
}

static void test_bce(void) {
  enum { N = 8 };
  for (int logits = 0; logits < 2; logits++) {
    /* probabilities well inside (0, 1), where the clamp is inactive */
    gan_tensor pred = logits ? UNIFORM(-4, 4, N) : UNIFORM(0.05f, 0.95f, N),
               target = UNIFORM(0, 1, N), loss = ZEROS(1), dpred = ZEROS(N);
    target.data[0] = 0.0f, target.data[1] = 1.0f;
    OK(gan_bce_backward(&dpred, &pred, &target, logits));
    for (int i = 0; i < N; i++) dpred.data[i] *= N; /* gradient of the sum */
    bce_case c = {&loss, &pred, &target, logits};
    /* h = 1e-3 on probabilities: the curvature 1/p^2 is large near 0.05 */
    gradcheck(logits ? "bce logits dpred" : "bce dpred", pred.data, N, dpred.data,
              logits ? 1e-2f : 1e-3f, bce_objective, &c);
    RELEASE(&pred, &target, &loss, &dpred);
  }

  /* closed forms, in double on the float inputs */
  static const float p[] = {0.2f, 0.7f, 0.95f, 0.5f, 0.01f, 0.6f};
  static const float z[] = {-3.0f, -0.5f, 0.0f, 0.5f, 2.0f, 8.0f};
  static const float t[] = {0.0f, 1.0f, 0.3f, 1.0f, 0.0f, 0.3f};
  double ep = 0.0, ez = 0.0;
  for (int i = 0; i < 6; i++) {
    ep -= t[i] * log((double)p[i]) + (1.0 - t[i]) * log(1.0 - p[i]);
    ez += t[i] * log1p(exp(-(double)z[i])) + (1.0 - t[i]) * log1p(exp((double)z[i]));
  }
  ep /= 6, ez /= 6;
  float lp = bce_loss(p, t, 6, 0), lz = bce_loss(z, t, 6, 1);
  CHECK(close_to(lp, ep, 1e-6), "bce = %.8g, expected -mean(t log p + (1-t) "
        "log(1-p)) = %.8g", lp, ep);
  CHECK(close_to(lz, ez, 1e-6), "bce on logits = %.8g, expected mean(t log(1+e^-z)"
        " + (1-t) log(1+e^z)) = %.8g", lz, ez);

  /* the clamp to [1e-7, 1-1e-7] (both rounded to float, as Keras's are) */
  static const float p01[] = {0.0f, 1.0f}, t10[] = {1.0f, 0.0f};
  double clamp = (-log((double)1e-7f) - log(1.0 - (double)(1.0f - 1e-7f))) / 2;
  float lc = bce_loss(p01, t10, 2, 0);
  CHECK(isfinite(lc) && close_to(lc, clamp, 1e-6), "bce of p=0,t=1 and p=1,t=0 "
        "= %g, expected the clamped %g", lc, clamp);

  /* logits of +-100: exp(100) overflows float, the stable form does not */
  static const float zz[] = {100.0f, 100.0f, -100.0f, -100.0f}, tt[] = {1, 0, 1, 0};
  float lzz = bce_loss(zz, tt, 4, 1);
  CHECK(isfinite(lzz) && close_to(lzz, 50.0, 1e-6), "bce on logits +-100 = %g, "
        "expected 50", lzz);
  gan_tensor zt = ZEROS(4), tt4 = ZEROS(4), dz = ZEROS(4);
  OK(gan_from_host(&zt, zz));
  OK(gan_from_host(&tt4, tt));
  OK(gan_bce_backward(&dz, &zt, &tt4, 1));
  static const float ez4[] = {0.0f, 0.25f, -0.25f, 0.0f}; /* (sigmoid(z) - t)/n */
  for (int i = 0; i < 4; i++)
    CHECK(fabsf(dz.data[i] - ez4[i]) < 1e-7f, "bce on logits: gradient at z=%g, "
          "t=%g is %g, expected %g", zz[i], tt[i], dz.data[i], ez4[i]);
  RELEASE(&zt, &tt4, &dz);

  /* where the clamp is active the gradient is 0; the last element is not
  ** clamped, so a gradient zeroed everywhere would fail */
  static const float pc[] = {0.0f, 1e-9f, 5e-8f, 1.0f, 0.99999994f, 0.5f};
  static const float tc[] = {1.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f};
  gan_tensor pt = ZEROS(6), tt6 = ZEROS(6), dp = ZEROS(6);
  OK(gan_from_host(&pt, pc));
  OK(gan_from_host(&tt6, tc));
  OK(gan_bce_backward(&dp, &pt, &tt6, 0));
  for (int i = 0; i < 5; i++)
    CHECK(dp.data[i] == 0.0f, "bce gradient at clamped p=%.9g is %g, expected 0",
          pc[i], dp.data[i]);
  CHECK(close_to(dp.data[5], (0.5 - 1.0) / 0.25 / 6, 1e-6), "bce gradient at "
        "p=0.5, t=1 is %g, expected %g", dp.data[5], (0.5 - 1.0) / 0.25 / 6);
  RELEASE(&pt, &tt6, &dp);
}

/* --- Adam ------------------------------------------------------------------*/

/* One Adam step in double, as Algorithm 1 of Kingma and Ba with the
** decoupled weight decay of backend.h's adam_step. */
static void adam_ref(double *p, double *m, double *v, const double *g, int n,
                     double lr, double b1, double b2, double eps, double wd,
                     int step) {
  for (int i = 0; i < n; i++) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    double mhat = m[i] / (1 - pow(b1, step)), vhat = v[i] / (1 - pow(b2, step));
    p[i] -= lr * (mhat / (sqrt(vhat) + eps) + wd * p[i]);
  }
}

/* Keras's form (eps added to sqrt(v), alpha = lr sqrt(1-b2^t) / (1-b1^t)),
** in double */
static void adam_keras_ref(double *p, double *m, double *v, const double *g, int n,
                           double lr, double b1, double b2, double eps, int step) {
  double alpha = lr * sqrt(1 - pow(b2, step)) / (1 - pow(b1, step));
  for (int i = 0; i < n; i++) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    p[i] -= alpha * m[i] / (sqrt(v[i]) + eps);
  }
}

/* Keras's form against Keras itself: what keras.optimizers.Adam(
** learning_rate=2e-4, beta_1=0.5) (Keras 3.15.1, TensorFlow backend) left
** in a zero variable after one step of these gradients; then three steps
** against the formula in double */
static void test_adam_keras(void) {
  float p[4] = {0}, g[4] = {1e-3f, 1e-6f, 1e-7f, 1e-9f}, m[4] = {0}, v[4] = {0};
  const double keras[4] = {-1.9936825e-04, -4.8050304e-05, -6.1306469e-06, -6.3225151e-08};
  float *pp[1] = {p}, *gp[1] = {g}, *mp[1] = {m}, *vp[1] = {v};
  size_t sizes[1] = {4};
  gan_adam_group a = {1, pp, gp, mp, vp, sizes, 2e-4f, 0.5f, 0.999f, 1e-7f, 0.0f, 1, 1};
  cpu->iface.adam_step(cpu->ctx, &a);
  for (int i = 0; i < 4; i++)
    CHECK(close_to(p[i] / keras[i], 1.0, 1e-5), "adam, Keras's form, gradient %g: %.8g, "
          "Keras gives %.8g", g[i], p[i], keras[i]);
  double rp[4] = {0}, rm[4] = {0}, rv[4] = {0}, rg[4];
  for (int i = 0; i < 4; i++) p[i] = m[i] = v[i] = 0.0f;
  for (int step = 1; step <= 3; step++) {
    for (int i = 0; i < 4; i++) g[i] = (float)(rg[i] = (i + 1) * (step == 2 ? -1e-6 : 3e-6));
    a.step = step;
    cpu->iface.adam_step(cpu->ctx, &a);
    adam_keras_ref(rp, rm, rv, rg, 4, 2e-4, 0.5, 0.999, 1e-7, step);
    for (int i = 0; i < 4; i++)
      CHECK(close_to(p[i], rp[i], 1e-5) && fabs(p[i] - rp[i]) < 1e-9,
            "adam, Keras's form, step %d [%d]: %.8g, expected %.8g", step, i, p[i], rp[i]);
  }
}

static void test_adam(void) {
  enum { NA = 3, NB = 5 };
  /* the brief's case: one tensor, two steps of the same gradient */
  float p[2] = {1.0f, -2.0f}, gr[2] = {0.5f, -0.25f}, m[2] = {0}, v[2] = {0};
  double rp[2] = {1.0, -2.0}, rm[2] = {0}, rv[2] = {0}, rg[2] = {0.5, -0.25};
  float *pp[1] = {p}, *gp[1] = {gr}, *mp[1] = {m}, *vp[1] = {v};
  size_t sizes[1] = {2};
  gan_adam_group g = {1, pp, gp, mp, vp, sizes, 0.1f, 0.9f, 0.999f, 1e-7f, 0.0f, 0, 0};
  for (int step = 1; step <= 2; step++) {
    g.step = step;
    cpu->iface.adam_step(cpu->ctx, &g);
    adam_ref(rp, rm, rv, rg, 2, 0.1, 0.9, 0.999, 1e-7, 0.0, step);
    for (int i = 0; i < 2; i++)
      CHECK(fabs(p[i] - rp[i]) < 1e-6 && fabs(m[i] - rm[i]) < 1e-6 &&
            fabs(v[i] - rv[i]) < 1e-6, "adam step %d [%d]: p m v = %.8g %.8g "
            "%.8g, expected %.8g %.8g %.8g", step, i, p[i], m[i], v[i], rp[i],
            rm[i], rv[i]);
  }

  /* two tensors of different sizes in one group, weight decay, new
  ** gradients every step */
  float a[NA], b[NB], ga[NA], gb[NB], ma[NA] = {0}, mb[NB] = {0}, va[NA] = {0},
        vb[NB] = {0};
  double ref[NA + NB], refm[NA + NB] = {0}, refv[NA + NB] = {0}, refg[NA + NB];
  for (int i = 0; i < NA + NB; i++) {
    float x = gan_draw_uniform(7, (uint64_t)i) * 2 - 1;
    if (i < NA) a[i] = x; else b[i - NA] = x;
    ref[i] = x;
  }
  float *ps[2] = {a, b}, *gs[2] = {ga, gb}, *ms[2] = {ma, mb}, *vs[2] = {va, vb};
  size_t sz[2] = {NA, NB};
  gan_adam_group g2 = {2, ps, gs, ms, vs, sz, 0.01f, 0.9f, 0.999f, 1e-7f, 0.1f, 0, 0};
  for (int step = 1; step <= 3; step++) {
    for (int i = 0; i < NA + NB; i++) {
      float x = gan_draw_normal(8 + step, (uint64_t)i);
      if (i < NA) ga[i] = x; else gb[i - NA] = x;
      refg[i] = x;
    }
    g2.step = step;
    cpu->iface.adam_step(cpu->ctx, &g2);
    adam_ref(ref, refm, refv, refg, NA + NB, 0.01, 0.9, 0.999, 1e-7, 0.1, step);
    for (int i = 0; i < NA + NB; i++) {
      float got = i < NA ? a[i] : b[i - NA];
      CHECK(fabs(got - ref[i]) < 1e-6, "adam group step %d: tensor %d [%d] = "
            "%.8g, expected %.8g", step, i < NA ? 0 : 1, i < NA ? i : i - NA,
            got, ref[i]);
    }
  }
}

/* --- random draws ----------------------------------------------------------*/

static void test_random(void) {
  enum { N = 1000000 };
  /* SplitMix64 from state 1: the reference algorithm's outputs (its outputs
  ** from state 0 are the published 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4) */
  gan_rng r1, r2;
  gan_rng_seed(&r1, 1);
  uint64_t k1 = gan_rng_next(&r1), k2 = gan_rng_next(&r1);
  CHECK(k1 == 0x910a2dec89025cc1ULL && k2 == 0xbeeb8da1658eec67ULL, "seed 1 "
        "gives keys %016llx %016llx, expected 910a2dec89025cc1 beeb8da1658eec67",
        (unsigned long long)k1, (unsigned long long)k2);
  gan_rng_seed(&r2, 2);
  CHECK(gan_rng_next(&r2) != k1, "seeds 1 and 2 give the same first key");

  /* Random123's known answer: Philox4x32-10 of counter 0 under key 0 */
  uint32_t w[4];
  gan_philox(0, 0, w);
  CHECK(w[0] == 0x6627e8d5u && w[1] == 0xe169c58du && w[2] == 0xbc57ac4cu &&
        w[3] == 0x9b00dbd8u, "philox(0, 0) = %08x %08x %08x %08x, expected "
        "6627e8d5 e169c58d bc57ac4c 9b00dbd8", w[0], w[1], w[2], w[3]);

  /* same key, same numbers; element i is a function of (key, i) alone */
  gan_tensor x = ZEROS(N), y = ZEROS(N);
  gan_rng_seed(&r1, 5);
  gan_rng_seed(&r2, 5);
  OK(gan_randn(&x, &r1, 0.0f, 1.0f));
  OK(gan_randn(&y, &r2, 0.0f, 1.0f));
  CHECK(memcmp(x.data, y.data, sizeof(float) * N) == 0, "randn: one seed gave "
        "two different draws");
  OK(gan_randn(&y, &r2, 0.0f, 1.0f));
  CHECK(memcmp(x.data, y.data, sizeof(float) * N) != 0, "randn: the second draw "
        "repeated the first");
  double s = 0, ss = 0;
  for (int i = 0; i < N; i++) s += x.data[i], ss += (double)x.data[i] * x.data[i];
  double mean = s / N, sd = sqrt(ss / N - mean * mean);
  CHECK(fabs(mean) < 0.01 && fabs(sd - 1) < 0.01, "randn over %d: mean %g, std %g,"
        " expected 0 and 1", N, mean, sd);

  gan_rng_seed(&r1, 6);
  r2 = r1;
  const float lo = -2.0f, hi = 3.0f;
  OK(gan_rand(&x, &r1, lo, hi));
  uint64_t key = gan_rng_next(&r2);
  int out = 0;
  s = 0;
  for (int i = 0; i < N; i++) out += !(x.data[i] >= lo && x.data[i] < hi), s += x.data[i];
  CHECK(out == 0, "rand: %d of %d draws outside [%g, %g)", out, N, lo, hi);
  CHECK(fabs(s / N - 0.5 * (lo + hi)) < 0.01, "rand over %d: mean %g, expected %g",
        N, s / N, 0.5 * (lo + hi));
  CHECK(x.data[12345] == lo + (hi - lo) * gan_draw_uniform(key, 12345), "rand "
        "element 12345 is %g, not lo + (hi - lo) * draw 12345 of its key",
        x.data[12345]);
  RELEASE(&x, &y);

  /* The backend fills a Philox block at a time; every element, the ragged
  ** tail included, must still be draw i of its key. */
  enum { ODD = 100003 };
  gan_tensor u = ZEROS(ODD), z = ZEROS(ODD);
  gan_rng_seed(&r1, 9);
  r2 = r1;
  OK(gan_rand(&u, &r1, lo, hi));
  OK(gan_randn(&z, &r1, 0.0f, 1.0f));
  uint64_t ku = gan_rng_next(&r2), kz = gan_rng_next(&r2);
  int bad_u = 0, bad_z = 0, first_u = -1, first_z = -1;
  for (int i = 0; i < ODD; i++) {
    float eu = lo + (hi - lo) * gan_draw_uniform(ku, (uint64_t)i);
    if (!(eu < hi)) eu = nextafterf(hi, lo);
    if (u.data[i] != eu && bad_u++ == 0) first_u = i;
    if (z.data[i] != gan_draw_normal(kz, (uint64_t)i) && bad_z++ == 0) first_z = i;
  }
  CHECK(bad_u == 0, "rand over %d: %d elements differ from their draw (first %d)",
        ODD, bad_u, first_u);
  CHECK(bad_z == 0, "randn over %d: %d elements differ from their draw (first %d)",
        ODD, bad_z, first_z);
  RELEASE(&u, &z);
}

/* --- error paths -----------------------------------------------------------*/


/* linear_act_forward: out as a naive loop gives it, y = act(out) by the
** scalar formulas; y may not share out's memory, nor differ in size */
static void test_linear_act(void) {
  static const gan_act acts[] = {GAN_ACT_RELU, GAN_ACT_LEAKY_RELU, GAN_ACT_SIGMOID,
                                 GAN_ACT_TANH};
  gan_tensor inp = UNIFORM(-1, 1, 6, 8), weight = UNIFORM(-1, 1, 5, 8),
             bias = UNIFORM(-1, 1, 5), out = ZEROS(6, 5), y = ZEROS(6, 5), y4 = ZEROS(6, 4);
  for (int a = 0; a < 4; a++)
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      OK(gan_linear_act_forward(&out, &y, &inp, &weight, with_bias ? &bias : NULL, acts[a],
                                0.2f));
      double worst = 0.0;
      for (int b = 0; b < 6; b++)
        for (int o = 0; o < 5; o++) {
          double v = with_bias ? bias.data[o] : 0.0;
          for (int k = 0; k < 8; k++) v += (double)inp.data[b * 8 + k] * weight.data[o * 8 + k];
          double r = acts[a] == GAN_ACT_RELU         ? (v > 0 ? v : 0)
                     : acts[a] == GAN_ACT_LEAKY_RELU ? (v > 0 ? v : 0.2 * v)
                     : acts[a] == GAN_ACT_SIGMOID    ? 1.0 / (1.0 + exp(-v))
                                                     : tanh(v);
          worst = fmax(worst, fmax(fabs(out.data[b * 5 + o] - v), fabs(y.data[b * 5 + o] - r)));
        }
      CHECK(worst < 1e-5, "linear_act_forward (act %d, bias %d): off by %.2e from the "
            "naive loop", (int)acts[a], with_bias, worst);
    }
  EXPECT_ERROR(gan_linear_act_forward(&out, &out, &inp, &weight, &bias, GAN_ACT_RELU, 0),
               "linear_forward", "activation output", "share memory");
  EXPECT_ERROR(gan_linear_act_forward(&out, &y4, &inp, &weight, &bias, GAN_ACT_RELU, 0),
               "linear_forward", "activation output", "sizes must match");
  EXPECT_ERROR(gan_linear_act_forward(&y4, &y, &inp, &weight, &bias, GAN_ACT_RELU, 0),
               "linear_forward", "output is 6x4", NULL);
  /* y over the bias: rows of one tensor */
  gan_tensor both = UNIFORM(-1, 1, 7, 5), yv, bv;
  gan_tensor_init(&yv);
  gan_tensor_init(&bv);
  OK(gan_tensor_rows(&yv, &both, 0, 6));
  OK(gan_tensor_rows(&bv, &both, 5, 1));
  EXPECT_ERROR(gan_linear_act_forward(&out, &yv, &inp, &weight, &bv, GAN_ACT_RELU, 0),
               "activation output", "bias", "share memory");
  CHECK(gan_tensor_overlap(&yv, &bv) && !gan_tensor_overlap(&y, &out) &&
        !gan_tensor_overlap(&yv, NULL), "gan_tensor_overlap");
  RELEASE(&inp, &weight, &bias, &out, &y, &y4, &yv, &bv, &both);
}

static void test_errors(void) {
  gan_tensor inp = UNIFORM(-1, 1, 4, 5), weight = UNIFORM(-1, 1, 3, 6),
             out = ZEROS(4, 3), small = ZEROS(7), gone = ZEROS(2, 2);
  EXPECT_ERROR(gan_linear_forward(&out, &inp, &weight, NULL), "weight", "4x5", "3x6");
  gan_tensor_release(&gone);
  EXPECT_ERROR(gan_fill(&gone, 1.0f), "freed", NULL, NULL);
  EXPECT_ERROR(gan_copy(&small, &inp), "7", "4x5", "sizes must match");

  gan_tensor x = UNIFORM(-1, 1, 8, 3), y = ZEROS(8, 3), c3 = ZEROS(3),
             c4 = ZEROS(4);
  EXPECT_ERROR(gan_batchnorm_forward(&y, &c3, &c3, &c3, &c3, &x, &c4, &c3, 0.9f,
                                     1e-3f, 1), "gamma", "3 channels", NULL);

  gan_tensor mask = ZEROS(8, 3);
  OK(gan_fill(&y, 42.0f));
  gan_rng r;
  gan_rng_seed(&r, 1);
  EXPECT_ERROR(gan_dropout_forward(&y, &mask, &x, 1.0f, &r), "dropout", "p", NULL);
  CHECK(y.data[0] == 42.0f && r.state == 1, "a refused dropout wrote its output "
        "or advanced the generator");

  const int64_t idx[2] = {1, 8};
  gan_tensor rows = ZEROS(2, 3);
  EXPECT_ERROR(gan_gather_rows(&rows, &x, idx), "index 8", "8 rows", NULL);
  const int64_t neg[2] = {-1, 0};
  EXPECT_ERROR(gan_gather_rows(&rows, &x, neg), "index -1", NULL, NULL);
  /* rows that overflow int64 when added; an output over its input */
  gan_tensor view;
  EXPECT_ERROR(gan_tensor_rows(&view, &x, 2, INT64_MAX), "rows from row 3", "8 rows", NULL);
  EXPECT_ERROR(gan_tensor_rows(&view, &x, INT64_MAX, 2), "8 rows", NULL, NULL);
  gan_tensor head, tail;
  OK(gan_tensor_rows(&head, &x, 0, 6));
  OK(gan_tensor_rows(&tail, &x, 2, 6));
  EXPECT_ERROR(gan_copy(&head, &tail), "copy", "share memory", NULL);
  EXPECT_ERROR(gan_gather_rows(&tail, &x, idx), "gather_rows", "share memory", NULL);
  gan_tensor sq = UNIFORM(-1, 1, 3, 3);
  EXPECT_ERROR(gan_matmul(&sq, &sq, 0, &sq, 1, 1.0f, 0.0f), "matmul", "share memory", NULL);
  /* elementwise ops: in place is fine, an output shifted over its input is
  ** not (its result would depend on the order, which a GPU does not fix) */
  float x0 = x.data[0];
  OK(gan_axpby(&x, 2.0f, &x, 0.0f));
  CHECK(x.data[0] == 2.0f * x0, "axpby in place: %g, not %g", (double)x.data[0],
        (double)(2.0f * x0));
  EXPECT_ERROR(gan_axpby(&head, 1.0f, &tail, 1.0f), "axpby", "share memory", NULL);
  EXPECT_ERROR(gan_mul(&head, &tail, &tail), "mul", "share memory", NULL);
  EXPECT_ERROR(gan_act_forward(GAN_ACT_RELU, 0.0f, &head, &tail), "activation",
               "share memory", NULL);
  OK(gan_act_forward(GAN_ACT_RELU, 0.0f, &tail, &tail));
  gan_tensor m6 = ZEROS(6, 3);
  EXPECT_ERROR(gan_dropout_forward(&head, &m6, &tail, 0.5f, &r), "dropout",
               "share memory", NULL);
  EXPECT_ERROR(gan_dropout_forward(&y, &y, &x, 0.5f, &r), "dropout", "mask",
               "share memory");
  /* operands that pair element for element: the same shape, not only the
  ** same count (a 3x2 into a 2x3 is a mistake) */
  gan_tensor a23 = ZEROS(2, 3), b32 = ZEROS(3, 2), p21 = ZEROS(2, 1), t12 = ZEROS(1, 2),
             l1 = ZEROS(1);
  EXPECT_ERROR(gan_axpby(&a23, 1.0f, &b32, 1.0f), "axpby", "2x3", "shapes must match");
  EXPECT_ERROR(gan_mul(&a23, &a23, &b32), "mul", "3x2", "shapes must match");
  EXPECT_ERROR(gan_bce_forward(&l1, &p21, &t12, 0), "bce", "2x1", "1x2");
  EXPECT_ERROR(gan_bce_backward(&p21, &p21, &t12, 1), "bce_with_logits backward", "1x2", NULL);
  RELEASE(&m6, &a23, &b32, &p21, &t12, &l1);
  /* and the good path still works after the errors */
  const int64_t good[2] = {7, 0};
  OK(gan_gather_rows(&rows, &x, good));
  CHECK(memcmp(rows.data, x.data + 21, 3 * sizeof(float)) == 0 &&
        memcmp(rows.data + 3, x.data, 3 * sizeof(float)) == 0,
        "gather_rows copied the wrong rows");
  RELEASE(&inp, &weight, &out, &small, &x, &y, &c3, &c4, &mask, &rows, &sq);
}

/* --- no allocation in a training step --------------------------------------*/

/* linear -> sigmoid -> bce, backward, Adam: ten steps on preallocated tensors
** must not reach the allocator, and must lower the loss (a step that does
** nothing would allocate nothing too). */
static void test_no_alloc(void) {
  enum { B = 16, C = 8 };
  gan_tensor inp = UNIFORM(-1, 1, B, C), wt = UNIFORM(-0.5f, 0.5f, 1, C),
             bias = ZEROS(1), z = ZEROS(B, 1), p = ZEROS(B, 1), t = ZEROS(B, 1),
             loss = ZEROS(1), dp = ZEROS(B, 1), dz = ZEROS(B, 1),
             dinp = ZEROS(B, C), dw = ZEROS(1, C), db = ZEROS(1), mw = ZEROS(1, C),
             vw = ZEROS(1, C), mb = ZEROS(1), vb = ZEROS(1);
  OK(gan_fill(&t, 1.0f));
  float *ps[2] = {wt.data, bias.data}, *gs[2] = {dw.data, db.data},
        *ms[2] = {mw.data, mb.data}, *vs[2] = {vw.data, vb.data};
  size_t sz[2] = {C, 1};
  gan_adam_group g = {2, ps, gs, ms, vs, sz, 0.1f, 0.9f, 0.999f, 1e-7f, 0.0f, 0, 0};
  gan_mem_stats before, after;
  float first = 0.0f;
  cpu->iface.mem_stats(cpu->ctx, &before);
  for (int step = 1; step <= 10; step++) {
    OK(gan_linear_forward(&z, &inp, &wt, &bias));
    OK(gan_act_forward(GAN_ACT_SIGMOID, 0.0f, &p, &z));
    OK(gan_bce_forward(&loss, &p, &t, 0));
    if (step == 1) first = loss.data[0];
    OK(gan_bce_backward(&dp, &p, &t, 0));
    OK(gan_act_backward(GAN_ACT_SIGMOID, 0.0f, &dz, &dp, &z, &p));
    OK(gan_fill(&dw, 0.0f));
    OK(gan_fill(&db, 0.0f));
    OK(gan_linear_backward(&dinp, &dw, &db, &dz, &inp, &wt));
    g.step = step;
    cpu->iface.adam_step(cpu->ctx, &g);
  }
  cpu->iface.mem_stats(cpu->ctx, &after);
  CHECK(after.allocs == before.allocs && after.bytes_in_use == before.bytes_in_use,
        "10 training steps allocated: allocs %llu -> %llu, bytes in use %llu -> %llu",
        (unsigned long long)before.allocs, (unsigned long long)after.allocs,
        (unsigned long long)before.bytes_in_use, (unsigned long long)after.bytes_in_use);
  /* the counters do see an allocation, or the check above proves nothing */
  gan_tensor probe = ZEROS(1000);
  gan_mem_stats later;
  cpu->iface.mem_stats(cpu->ctx, &later);
  CHECK(later.allocs == after.allocs + 1 &&
        later.bytes_in_use >= after.bytes_in_use + 4000, "allocating 4000 bytes: "
        "allocs %llu -> %llu, bytes in use %llu -> %llu",
        (unsigned long long)after.allocs, (unsigned long long)later.allocs,
        (unsigned long long)after.bytes_in_use, (unsigned long long)later.bytes_in_use);
  gan_tensor_release(&probe);
  CHECK(loss.data[0] < 0.5f * first, "10 Adam steps took the loss from %g to %g "
        "only", first, loss.data[0]);
  RELEASE(&inp, &wt, &bias, &z, &p, &t, &loss, &dp, &dz, &dinp, &dw, &db, &mw,
          &vw, &mb, &vb);
}

/* linear_act_backward: dz = dy * act'(z) by the scalar formulas, and the
** layer's gradients from dz as naive loops give them; the gradients marked
** zero are overwritten, unmarked ones added to; dz may be dy itself; a
** failed check writes nothing and keeps the marks */
static void test_linear_act_backward(void) {
  enum { B = 6, C = 8, OC = 5 };
  static const gan_act acts[] = {GAN_ACT_IDENTITY, GAN_ACT_RELU, GAN_ACT_LEAKY_RELU,
                                 GAN_ACT_SIGMOID, GAN_ACT_TANH};
  gan_tensor inp = UNIFORM(-1, 1, B, C), weight = UNIFORM(-1, 1, OC, C),
             bias = UNIFORM(-1, 1, OC), z = ZEROS(B, OC), y = ZEROS(B, OC),
             dy = UNIFORM(-1, 1, B, OC), dz = ZEROS(B, OC), dinp = ZEROS(B, C),
             dw = ZEROS(OC, C), db = ZEROS(OC), dw4 = ZEROS(OC, 4);
  double rz[B][OC], rdb[OC], rdw[OC][C], rdi[B][C];
  for (int a = 0; a < 5; a++)
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      OK(gan_linear_act_forward(&z, &y, &inp, &weight, &bias, acts[a], 0.2f));
      for (int o = 0; o < OC; o++) {
        rdb[o] = 0.0;
        for (int k = 0; k < C; k++) rdw[o][k] = 0.0;
      }
      for (int b = 0; b < B; b++) {
        for (int k = 0; k < C; k++) rdi[b][k] = 0.0;
        for (int o = 0; o < OC; o++) {
          double g = dy.data[b * OC + o], zv = z.data[b * OC + o], yv = y.data[b * OC + o];
          double d = acts[a] == GAN_ACT_RELU         ? (zv > 0 ? g : 0)
                     : acts[a] == GAN_ACT_LEAKY_RELU ? (zv > 0 ? g : 0.2 * g)
                     : acts[a] == GAN_ACT_SIGMOID    ? g * yv * (1 - yv)
                     : acts[a] == GAN_ACT_TANH       ? g * (1 - yv * yv)
                                                     : g;
          rz[b][o] = d;
          rdb[o] += d;
          for (int k = 0; k < C; k++) {
            rdw[o][k] += d * inp.data[b * C + k];
            rdi[b][k] += d * weight.data[o * C + k];
          }
        }
      }
      OK(gan_fill(&dinp, 3.0f)); /* overwritten */
      OK(gan_fill(&db, 9.0f));
      OK(gan_zero_later(&dw));
      OK(gan_zero_later(&db));
      /* twice: the marked gradients overwritten, then added to */
      for (int k = 0; k < 2; k++)
        OK(gan_linear_act_backward(acts[a], 0.2f, &dz, &dy, &z, &y, &dinp, &dw,
                                   with_bias ? &db : NULL, &inp, &weight));
      CHECK(!dw.zero_pending && db.zero_pending == !with_bias,
            "linear_act_backward clears the marks of the gradients it writes, only");
      if (!with_bias) {
        CHECK(db.data[0] == 9.0f, "a backward without a bias gradient leaves it");
        for (int o = 0; o < OC; o++) rdb[o] = db.data[o] / 2;
        db.zero_pending = 0;
      }
      double worst = 0.0;
      for (int b = 0; b < B; b++) {
        for (int o = 0; o < OC; o++) worst = fmax(worst, fabs(dz.data[b * OC + o] - rz[b][o]));
        for (int k = 0; k < C; k++)
          worst = fmax(worst, fabs(dinp.data[b * C + k] - rdi[b][k]));
      }
      for (int o = 0; o < OC; o++) {
        worst = fmax(worst, fabs(db.data[o] - 2 * rdb[o]));
        for (int k = 0; k < C; k++) worst = fmax(worst, fabs(dw.data[o * C + k] - 2 * rdw[o][k]));
      }
      CHECK(worst < 1e-5, "linear_act_backward (act %d, bias %d): off by %.2e from the "
            "naive loops", (int)acts[a], with_bias, worst);
    }
  /* in place: dz is dy */
  gan_tensor g = ZEROS(B, OC), db1 = ZEROS(OC), db2 = ZEROS(OC);
  OK(gan_copy(&g, &dy));
  OK(gan_linear_act_backward(GAN_ACT_TANH, 0, &dz, &dy, &z, &y, NULL, NULL, &db1, &inp,
                             &weight));
  OK(gan_linear_act_backward(GAN_ACT_TANH, 0, &g, &g, &z, &y, NULL, NULL, &db2, &inp,
                             &weight));
  CHECK(memcmp(g.data, dz.data, sizeof(float) * B * OC) == 0 &&
            memcmp(db1.data, db2.data, sizeof(float) * OC) == 0,
        "linear_act_backward in place (dz = dy) gives the same dz and bias gradient");
  /* errors: the activation's half named as gan_act_backward names it, the
  ** layer's as gan_linear_backward does; nothing written, no mark lost */
  OK(gan_fill(&dz, 7.0f));
  OK(gan_zero_later(&dw));
  gan_tensor z4 = ZEROS(B, 4);
  EXPECT_ERROR(gan_linear_act_backward(GAN_ACT_RELU, 0, &dz, &dy, &z4, &y, &dinp, &dw, &db,
                                       &inp, &weight),
               "activation backward", "sizes must match", NULL);
  EXPECT_ERROR(gan_linear_act_backward(GAN_ACT_RELU, 0, &dz, &dy, &z, &y, &dinp, &dw4, &db,
                                       &inp, &weight),
               "linear_backward", "weight gradient", NULL);
  /* the bias gradient over the activation's gradient: rows of one tensor */
  gan_tensor both = UNIFORM(-1, 1, B + 1, OC), gv, bv;
  gan_tensor_init(&gv);
  gan_tensor_init(&bv);
  OK(gan_tensor_rows(&gv, &both, 1, B));
  OK(gan_tensor_rows(&bv, &both, B, 1));
  EXPECT_ERROR(gan_linear_act_backward(GAN_ACT_RELU, 0, &dz, &gv, &z, &y, &dinp, &dw, &bv,
                                       &inp, &weight),
               "linear_backward", "bias gradient", "activation's gradient");
  /* ... over the pre-activation, over the activation's output */
  EXPECT_ERROR(gan_linear_act_backward(GAN_ACT_RELU, 0, &dz, &dy, &gv, &y, &dinp, &dw, &bv,
                                       &inp, &weight),
               "linear_backward", "bias gradient", "activation's input");
  EXPECT_ERROR(gan_linear_act_backward(GAN_ACT_RELU, 0, &dz, &dy, &z, &gv, &dinp, &dw, &bv,
                                       &inp, &weight),
               "linear_backward", "bias gradient", "activation's output");
  double s7;
  OK(gan_sum(&dz, &s7));
  CHECK(s7 == 7.0 * B * OC && dw.zero_pending,
        "a failed linear_act_backward wrote nothing (sum of dz %g) and kept the mark", s7);
  RELEASE(&inp, &weight, &bias, &z, &y, &dy, &dz, &dinp, &dw, &db, &dw4, &g, &db1, &db2, &z4,
          &gv, &bv, &both);
}

/* sum_to against a sum in double here, and the reader: on the CPU a start
** reads at once, in order, across several tensors */
static void test_sum_and_read(void) {
  const int N = 1001;
  gan_tensor x = UNIFORM(-1, 2, N), out = ZEROS(1), two = UNIFORM(-1, 1, 2),
             big = ZEROS(GAN_READ_MAX);
  double ref = 0.0;
  for (int i = 0; i < N; i++) ref += x.data[i];
  OK(gan_sum_to(&out, &x, 1.0 / N));
  CHECK(close_to(out.data[0], ref / N, 1e-6), "sum_to: mean %.9g, expected %.9g",
        out.data[0], ref / N);
  OK(gan_sum_to(&out, &x, 3.0));
  CHECK(close_to(out.data[0], 3.0 * ref, 1e-6), "sum_to: 3 * sum %.9g, expected %.9g",
        out.data[0], 3.0 * ref);
  CHECK(gan_sum_to(&two, &x, 1.0) == GAN_EARG && strstr(gan_errmsg(), "1 element"),
        "sum_to into 2 elements: '%s'", gan_errmsg());

  gan_reader r = {0};
  const gan_tensor *ts[] = {&out, &two};
  OK(gan_reader_start(&r, ts, 2));
  CHECK(gan_reader_ready(&r), "a CPU read is not ready at once");
  OK(gan_reader_wait(&r));
  CHECK(r.n == 3 && r.values[0] == out.data[0] && r.values[1] == two.data[0] &&
            r.values[2] == two.data[1],
        "reader: n %d, values %g %g %g, expected %g %g %g", r.n, r.values[0],
        r.values[1], r.values[2], out.data[0], two.data[0], two.data[1]);
  const gan_tensor *many[] = {&big, &out};
  CHECK(gan_reader_start(&r, many, 2) == GAN_EARG && strstr(gan_errmsg(), "64"),
        "reading %d values: '%s'", GAN_READ_MAX + 1, gan_errmsg());
  CHECK(r.n == 0, "a failed start leaves %d values", r.n);
  gan_tensor gone = ZEROS(1);
  gan_tensor_release(&gone);
  const gan_tensor *freed[] = {&out, &gone};
  CHECK(gan_reader_start(&r, freed, 2) == GAN_EARG && strstr(gan_errmsg(), "freed"),
        "reading a freed tensor: '%s'", gan_errmsg());
  gan_reader_close(&r);
  RELEASE(&x, &out, &two, &big);
}

int main(void) {
  const char *v = getenv("GAN_TEST_VERBOSE");
  verbose = v && *v && strcmp(v, "0") != 0;
  cpu = gan_backend_cpu();
  gan_rng_seed(&data_rng, 20240611);
  gan_mem_stats start, end;
  cpu->iface.mem_stats(cpu->ctx, &start);

  test_linear_gradients();
  test_linear_values();
  test_linear_act();
  test_linear_act_backward();
  test_matmul();
  test_activations();
  test_dropout();
  test_batchnorm();
  test_bce();
  test_adam();
  test_adam_keras();
  test_random();
  test_errors();
  test_sum_and_read();
  test_no_alloc();

  /* every tensor above was released: the byte count is back where it was */
  cpu->iface.mem_stats(cpu->ctx, &end);
  CHECK(end.bytes_in_use == start.bytes_in_use, "%llu bytes still held after "
        "releasing every tensor (%llu at start)",
        (unsigned long long)end.bytes_in_use, (unsigned long long)start.bytes_in_use);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
