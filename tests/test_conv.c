/*
** test_conv.c -- convolutions, augmentation and the quality metrics, through
** the public ops (core/ops.h, core/metrics.h), on the CPU backend.
**
** What each part proves, and against what:
**  - conv2d and conv_transpose2d forward against direct loops written here
**    in double (the definition, not im2col), for strides 1 to 3, paddings
**    0 to 2, rectangular images, 1x1 and 4x4 kernels, with and without bias,
**    and the transposed layer with output padding;
**  - every gradient (input, weight, bias) against central finite
**    differences of L = sum(w_i * y_i) with w fixed and random;
**  - backend.h's conventions: parameter gradients accumulate, input
**    gradients are overwritten, NULL skips a product and touches nothing;
**  - the transposed layer is the adjoint: <conv(x), y> = <x, conv^T(y)>;
**  - blocking: the smallest workspace (one sample per product) gives the
**    results of the batched one;
**  - augmentation against its definition, and its backward as the adjoint;
**  - SWD: a set against itself is near 0, against noise large, blur in
**    between; the 1-d distance of sets of different sizes; nearest
**    neighbours against brute force;
**  - error paths: a status and a message naming the fault, no crash;
**  - with a GPU whose backend has the conv slots: CUDA against the CPU.
** Prints one line per failed check, then "N passed, M failed"; exit status 0
** only if nothing failed.  GAN_TEST_VERBOSE=1 prints the worst error of
** every gradient check and the SWD values.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
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
  printf("test_conv.c:%d: ", line);
  vprintf(fmt, ap);
  putchar('\n');
  va_end(ap);
}
#define CHECK(cond, ...) check_((cond) != 0, __LINE__, __VA_ARGS__)
#define OK(call) CHECK((call) == GAN_OK, "%s failed: %s", #call, gan_errmsg())
/* a call that must fail with a message containing 'part' */
#define FAILS(call, part)                                                      \
  do {                                                                         \
    gan_status s_ = (call);                                                    \
    CHECK(s_ != GAN_OK && strstr(gan_errmsg(), part), "%s: expected an error " \
          "with '%s', got status %d '%s'", #call, part, (int)s_, gan_errmsg()); \
  } while (0)

static int close_to(double a, double b, double tol) {
  return fabs(a - b) <= tol * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* --- tensors ---------------------------------------------------------------*/

static gan_backend *cpu;
static gan_rng data_rng;

static gan_tensor make(int ndim, const int64_t *shape) {
  gan_tensor t;
  gan_tensor_init(&t);
  if (gan_tensor_alloc(&t, cpu, ndim, shape) != GAN_OK) {
    fprintf(stderr, "cannot allocate a test tensor: %s\n", gan_errmsg());
    exit(2);
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

static double dot(const gan_tensor *w, const gan_tensor *y) {
  double s = 0.0;
  for (int64_t i = 0; i < y->numel; i++) s += (double)w->data[i] * y->data[i];
  return s;
}

/* the largest |a - b| relative to the largest |b| (at least 1) */
static double rel_diff(const float *a, const float *b, int64_t n) {
  double worst = 0.0, scale = 1.0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
  return worst / scale;
}

static void check_multiple(const char *what, const gan_tensor *got, double factor,
                           const gan_tensor *base) {
  int64_t bad = -1;
  for (int64_t i = 0; i < got->numel && bad < 0; i++)
    if (!close_to(got->data[i], factor * base->data[i], 1e-5)) bad = i;
  int64_t k = bad < 0 ? 0 : bad;
  CHECK(bad < 0, "%s: element %lld is %g, expected %g * %g", what, (long long)k,
        got->data[k], factor, base->data[k]);
}

/* --- finite differences (as test_ops.c) -----------------------------------*/

typedef double (*objective)(void *ctx);

static void gradcheck(const char *what, float *x, int64_t n, const float *analytic,
                      float h, objective f, void *ctx) {
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
  if (verbose) printf("  %-44s worst relative error %.2e\n", what, worst);
  CHECK(worst < 1e-2, "%s: element %lld: analytic %.6g, numeric %.6g (error %.2e)",
        what, (long long)at, wa, wn, worst);
}

/* --- the definition, in double --------------------------------------------*/

typedef struct conv_cfg {
  int B, C, H, W, K, R, S, stride, pad, extra; /* extra: output padding (transposed) */
} conv_cfg;

/* P, Q of the ordinary convolution of x (H, W) */
static int out_h(const conv_cfg *c) { return (c->H + 2 * c->pad - c->R) / c->stride + 1; }
static int out_w(const conv_cfg *c) { return (c->W + 2 * c->pad - c->S) / c->stride + 1; }

/* y[b,k,p,q] = bias[k] + sum w[k,c,r,s] x[b,c,p*st-pad+r,q*st-pad+s] */
static void naive_conv(double *y, const float *x, const float *w, const float *bias,
                       const conv_cfg *c) {
  const int P = out_h(c), Q = out_w(c);
  for (int b = 0; b < c->B; b++)
    for (int k = 0; k < c->K; k++)
      for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++) {
          double s = bias ? bias[k] : 0.0;
          for (int ch = 0; ch < c->C; ch++)
            for (int r = 0; r < c->R; r++)
              for (int t = 0; t < c->S; t++) {
                int i = p * c->stride - c->pad + r, j = q * c->stride - c->pad + t;
                if (i < 0 || i >= c->H || j < 0 || j >= c->W) continue;
                s += (double)w[((k * c->C + ch) * c->R + r) * c->S + t] *
                     x[((b * c->C + ch) * c->H + i) * c->W + j];
              }
          y[((b * c->K + k) * P + p) * Q + q] = s;
        }
}

/* the transposed convolution by scattering: every y[b,k,p,q] adds
** w[k,c,r,s] * y into x[b, c, p*st-pad+r, q*st-pad+s]; x starts at bias[c] */
static void naive_conv_t(double *x, const float *y, const float *w, const float *bias,
                         const conv_cfg *c) {
  const int P = out_h(c), Q = out_w(c);
  for (int b = 0; b < c->B; b++)
    for (int ch = 0; ch < c->C; ch++)
      for (int i = 0; i < c->H * c->W; i++)
        x[(b * c->C + ch) * c->H * c->W + i] = bias ? bias[ch] : 0.0;
  for (int b = 0; b < c->B; b++)
    for (int k = 0; k < c->K; k++)
      for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++) {
          double v = y[((b * c->K + k) * P + p) * Q + q];
          for (int ch = 0; ch < c->C; ch++)
            for (int r = 0; r < c->R; r++)
              for (int t = 0; t < c->S; t++) {
                int i = p * c->stride - c->pad + r, j = q * c->stride - c->pad + t;
                if (i < 0 || i >= c->H || j < 0 || j >= c->W) continue;
                x[((b * c->C + ch) * c->H + i) * c->W + j] +=
                    v * w[((k * c->C + ch) * c->R + r) * c->S + t];
              }
        }
}

static const conv_cfg CFGS[] = {
    /* B  C  H  W  K  R  S  st pad extra */
    {2, 3, 5, 6, 4, 3, 3, 1, 1, 0},   /* "same" 3x3, rectangular */
    {3, 2, 8, 8, 5, 4, 4, 2, 1, 0},   /* DCGAN's down/up-sampling block */
    {2, 4, 4, 4, 3, 4, 4, 1, 0, 0},   /* 4x4 -> 1x1: D's last, G's first */
    {2, 3, 7, 5, 2, 1, 1, 1, 0, 0},   /* 1x1 */
    {2, 3, 9, 10, 2, 3, 2, 3, 2, 0},  /* stride 3, padding 2, 3x2 kernel */
    {2, 2, 9, 9, 3, 4, 4, 2, 1, 1},   /* transposed with output padding 1 */
};
#define NCFG (int)(sizeof CFGS / sizeof CFGS[0])

/* a workspace of the size the backend prefers (min_only: the least) */
static gan_tensor workspace(const gan_tensor *out, const gan_tensor *inp,
                            const gan_tensor *w, const conv_cfg *c, int transposed,
                            int min_only) {
  int64_t batched = 0, minimum = 0;
  OK(gan_conv2d_workspace(out, inp, w, c->stride, c->pad, transposed, &batched,
                          &minimum));
  CHECK(minimum >= 1 && batched >= minimum, "workspace sizes %lld and %lld",
        (long long)batched, (long long)minimum);
  return make(1, (int64_t[]){min_only ? minimum : batched});
}

/* --- conv2d ------------------------------------------------------------------*/

typedef struct {
  gan_tensor *y, *x, *w, *bias, *ws, *g;
  int stride, pad, transposed;
} conv_case;

static double conv_objective(void *p) {
  conv_case *c = p;
  if (c->transposed)
    gan_conv_transpose2d_forward(c->y, c->x, c->w, c->bias, c->stride, c->pad, c->ws);
  else
    gan_conv2d_forward(c->y, c->x, c->w, c->bias, c->stride, c->pad, c->ws);
  return dot(c->g, c->y);
}

static void test_conv2d(const conv_cfg *c, int ci) {
  const int P = out_h(c), Q = out_w(c);
  gan_tensor x = UNIFORM(-1, 1, c->B, c->C, c->H, c->W),
             w = UNIFORM(-1, 1, c->K, c->C, c->R, c->S), bias = UNIFORM(-1, 1, c->K),
             y = ZEROS(c->B, c->K, P, Q), g = UNIFORM(-1, 1, c->B, c->K, P, Q),
             dx = ZEROS(c->B, c->C, c->H, c->W), dw = ZEROS(c->K, c->C, c->R, c->S),
             db = ZEROS(c->K);
  gan_tensor ws = workspace(&y, &x, &w, c, 0, 0), ws1 = workspace(&y, &x, &w, c, 0, 1);
  double *ref = malloc(sizeof(double) * (size_t)y.numel);
  float *reff = malloc(sizeof(float) * (size_t)y.numel);
  char what[96];

  for (int with_bias = 0; with_bias < 2; with_bias++) {
    OK(gan_conv2d_forward(&y, &x, &w, with_bias ? &bias : NULL, c->stride, c->pad, &ws));
    naive_conv(ref, x.data, w.data, with_bias ? bias.data : NULL, c);
    for (int64_t i = 0; i < y.numel; i++) reff[i] = (float)ref[i];
    double err = rel_diff(y.data, reff, y.numel);
    CHECK(err < 1e-5, "conv2d config %d (bias %d): error %.2e against the definition",
          ci, with_bias, err);
  }

  /* gradients against finite differences */
  OK(gan_conv2d_backward(&dx, &dw, &db, &g, &x, &w, c->stride, c->pad, &ws));
  conv_case cc = {&y, &x, &w, &bias, &ws, &g, c->stride, c->pad, 0};
  snprintf(what, sizeof what, "conv2d config %d dinp", ci);
  gradcheck(what, x.data, x.numel, dx.data, 1e-2f, conv_objective, &cc);
  snprintf(what, sizeof what, "conv2d config %d dweight", ci);
  gradcheck(what, w.data, w.numel, dw.data, 1e-2f, conv_objective, &cc);
  snprintf(what, sizeof what, "conv2d config %d dbias", ci);
  gradcheck(what, bias.data, bias.numel, db.data, 1e-2f, conv_objective, &cc);

  /* conventions: twice accumulates dw, db and rewrites dx; NULL skips */
  gan_tensor dx1 = ZEROS(c->B, c->C, c->H, c->W), dw1 = ZEROS(c->K, c->C, c->R, c->S),
             db1 = ZEROS(c->K);
  OK(gan_copy(&dx1, &dx));
  OK(gan_copy(&dw1, &dw));
  OK(gan_copy(&db1, &db));
  OK(gan_conv2d_backward(&dx, &dw, &db, &g, &x, &w, c->stride, c->pad, &ws));
  check_multiple("conv2d dweight after 2 backwards", &dw, 2, &dw1);
  check_multiple("conv2d dbias after 2 backwards", &db, 2, &db1);
  check_multiple("conv2d dinp after 2 backwards", &dx, 1, &dx1);
  OK(gan_fill(&dx, 7.0f));
  OK(gan_conv2d_backward(NULL, &dw, NULL, &g, &x, &w, c->stride, c->pad, &ws));
  check_multiple("conv2d dweight after a dweight-only backward", &dw, 3, &dw1);
  check_multiple("conv2d dbias after a backward that skipped it", &db, 2, &db1);
  double s7;
  OK(gan_sum(&dx, &s7));
  CHECK(s7 == 7.0 * (double)dx.numel, "conv2d dinp written by a backward that skipped it");
  OK(gan_conv2d_backward(&dx, NULL, NULL, &g, &x, &w, c->stride, c->pad, &ws));
  check_multiple("conv2d dinp-only backward", &dx, 1, &dx1);
  check_multiple("conv2d dweight after an input-only backward", &dw, 3, &dw1);

  /* one sample per block gives the same numbers */
  gan_tensor y1 = ZEROS(c->B, c->K, P, Q);
  OK(gan_conv2d_forward(&y1, &x, &w, &bias, c->stride, c->pad, &ws1));
  OK(gan_conv2d_forward(&y, &x, &w, &bias, c->stride, c->pad, &ws));
  CHECK(rel_diff(y1.data, y.data, y.numel) < 1e-6, "conv2d config %d: blocks of one "
        "sample differ from the batched product", ci);
  OK(gan_fill(&dw, 0.0f));
  OK(gan_fill(&db, 0.0f));
  OK(gan_conv2d_backward(&dx, &dw, &db, &g, &x, &w, c->stride, c->pad, &ws1));
  CHECK(rel_diff(dx.data, dx1.data, dx.numel) < 1e-6 &&
        rel_diff(dw.data, dw1.data, dw.numel) < 1e-5 &&
        rel_diff(db.data, db1.data, db.numel) < 1e-5,
        "conv2d config %d: backward in blocks of one sample differs", ci);

  free(ref);
  free(reff);
  RELEASE(&x, &w, &bias, &y, &g, &dx, &dw, &db, &ws, &ws1, &dx1, &dw1, &db1, &y1);
}

/* --- conv_transpose2d ------------------------------------------------------*/

/* In the transposed layer's own terms: input (B, K, P, Q) -> output
** (B, C, H, W), weight (K, C, R, S) = PyTorch's (in, out, kh, kw). */
static void test_conv_transpose2d(const conv_cfg *c, int ci) {
  const int P = out_h(c), Q = out_w(c);
  gan_tensor y = UNIFORM(-1, 1, c->B, c->K, P, Q),
             w = UNIFORM(-1, 1, c->K, c->C, c->R, c->S), bias = UNIFORM(-1, 1, c->C),
             x = ZEROS(c->B, c->C, c->H, c->W), g = UNIFORM(-1, 1, c->B, c->C, c->H, c->W),
             dy = ZEROS(c->B, c->K, P, Q), dw = ZEROS(c->K, c->C, c->R, c->S),
             db = ZEROS(c->C);
  gan_tensor ws = workspace(&x, &y, &w, c, 1, 0), ws1 = workspace(&x, &y, &w, c, 1, 1);
  double *ref = malloc(sizeof(double) * (size_t)x.numel);
  float *reff = malloc(sizeof(float) * (size_t)x.numel);
  char what[96];

  for (int with_bias = 0; with_bias < 2; with_bias++) {
    OK(gan_conv_transpose2d_forward(&x, &y, &w, with_bias ? &bias : NULL, c->stride,
                                    c->pad, &ws));
    naive_conv_t(ref, y.data, w.data, with_bias ? bias.data : NULL, c);
    for (int64_t i = 0; i < x.numel; i++) reff[i] = (float)ref[i];
    double err = rel_diff(x.data, reff, x.numel);
    CHECK(err < 1e-5, "conv_transpose2d config %d (bias %d): error %.2e against the "
          "definition", ci, with_bias, err);
  }

  OK(gan_conv_transpose2d_backward(&dy, &dw, &db, &g, &y, &w, c->stride, c->pad, &ws));
  conv_case cc = {&x, &y, &w, &bias, &ws, &g, c->stride, c->pad, 1};
  snprintf(what, sizeof what, "conv_transpose2d config %d dinp", ci);
  gradcheck(what, y.data, y.numel, dy.data, 1e-2f, conv_objective, &cc);
  snprintf(what, sizeof what, "conv_transpose2d config %d dweight", ci);
  gradcheck(what, w.data, w.numel, dw.data, 1e-2f, conv_objective, &cc);
  snprintf(what, sizeof what, "conv_transpose2d config %d dbias", ci);
  gradcheck(what, bias.data, bias.numel, db.data, 1e-2f, conv_objective, &cc);

  gan_tensor dy1 = ZEROS(c->B, c->K, P, Q), dw1 = ZEROS(c->K, c->C, c->R, c->S),
             db1 = ZEROS(c->C);
  OK(gan_copy(&dy1, &dy));
  OK(gan_copy(&dw1, &dw));
  OK(gan_copy(&db1, &db));
  OK(gan_conv_transpose2d_backward(&dy, &dw, &db, &g, &y, &w, c->stride, c->pad, &ws));
  check_multiple("conv_transpose2d dweight after 2 backwards", &dw, 2, &dw1);
  check_multiple("conv_transpose2d dbias after 2 backwards", &db, 2, &db1);
  check_multiple("conv_transpose2d dinp after 2 backwards", &dy, 1, &dy1);
  OK(gan_conv_transpose2d_backward(&dy, NULL, NULL, &g, &y, &w, c->stride, c->pad, &ws1));
  check_multiple("conv_transpose2d dinp-only backward in blocks of one", &dy, 1, &dy1);
  check_multiple("conv_transpose2d dweight after an input-only backward", &dw, 2, &dw1);
  OK(gan_fill(&dw, 0.0f));
  OK(gan_conv_transpose2d_backward(NULL, &dw, NULL, &g, &y, &w, c->stride, c->pad, &ws1));
  check_multiple("conv_transpose2d dweight in blocks of one", &dw, 1, &dw1);

  /* the adjoint: <conv(x'), y> == <x', conv^T(y)> (no bias) */
  gan_tensor x2 = UNIFORM(-1, 1, c->B, c->C, c->H, c->W), cy = ZEROS(c->B, c->K, P, Q);
  gan_tensor wsf = workspace(&cy, &x2, &w, c, 0, 0);
  OK(gan_conv2d_forward(&cy, &x2, &w, NULL, c->stride, c->pad, &wsf));
  OK(gan_conv_transpose2d_forward(&x, &y, &w, NULL, c->stride, c->pad, &ws));
  double lhs = dot(&cy, &y), rhs = dot(&x2, &x);
  CHECK(close_to(lhs, rhs, 1e-5), "config %d: <conv(x), y> = %.8g but <x, conv^T(y)> = "
        "%.8g", ci, lhs, rhs);

  free(ref);
  free(reff);
  RELEASE(&x, &w, &bias, &y, &g, &dy, &dw, &db, &ws, &ws1, &dy1, &dw1, &db1, &x2, &cy,
          &wsf);
}

/* --- errors ---------------------------------------------------------------*/

static void test_conv_errors(void) {
  gan_tensor x = UNIFORM(-1, 1, 2, 3, 8, 8), w = UNIFORM(-1, 1, 4, 3, 4, 4),
             y = ZEROS(2, 4, 4, 4), b = ZEROS(4), ws = ZEROS(16), flat = ZEROS(2, 192),
             wbad = UNIFORM(-1, 1, 4, 2, 4, 4), ybad = ZEROS(2, 4, 5, 5);
  FAILS(gan_conv2d_forward(&y, &flat, &w, &b, 2, 1, NULL), "input must be 4-d");
  FAILS(gan_conv2d_forward(&y, &x, &wbad, &b, 2, 1, NULL),
        "input is 2x3x8x8 but weight is 4x2x4x4");
  FAILS(gan_conv2d_forward(&ybad, &x, &w, &b, 2, 1, NULL),
        "give 2x4x4x4, but the output is 2x4x5x5");
  FAILS(gan_conv2d_forward(&y, &x, &w, &b, 0, 1, NULL), "stride must be at least 1");
  FAILS(gan_conv2d_forward(&y, &x, &w, &b, 2, 1, &ws), "workspace has 16 floats");
  FAILS(gan_conv2d_forward(&y, &x, &w, &b, 2, 1, NULL), "workspace has 0 floats");
  FAILS(gan_conv2d_forward(&y, &x, &w, &flat, 2, 1, NULL), "bias is 2x192");
  /* transposed: 4x4 input to 8x8 output with weight (in 4, out 3) */
  gan_tensor xt = ZEROS(2, 3, 9, 9), xt2 = ZEROS(2, 3, 10, 10);
  FAILS(gan_conv_transpose2d_forward(&x, &y, &x, NULL, 2, 1, NULL), "weight is 2x3x8x8");
  FAILS(gan_conv_transpose2d_forward(&xt2, &y, &w, NULL, 2, 1, NULL),
        "give 2x3x8x8 (plus at most 1 of output padding), but the output is 2x3x10x10");
  int64_t bt, mt;
  OK(gan_conv2d_workspace(&xt, &y, &w, 2, 1, 1, &bt, &mt)); /* 9x9: padding 1 is fine */
  gan_tensor dx = ZEROS(2, 3, 8, 7);
  FAILS(gan_conv2d_backward(&dx, NULL, NULL, &y, &x, &w, 2, 1, NULL), "input gradient");
  gan_tensor freed = ZEROS(2, 3, 8, 8);
  gan_tensor_release(&freed);
  FAILS(gan_conv2d_forward(&y, &freed, &w, &b, 2, 1, NULL), "input is a freed tensor");
  RELEASE(&x, &w, &y, &b, &ws, &flat, &wbad, &ybad, &xt, &xt2, &dx);
}

/* --- augmentation ------------------------------------------------------------*/

static void test_augment(void) {
  enum { B = 3, C = 2, H = 5, W = 6 };
  gan_tensor x = UNIFORM(-1, 1, B, C, H, W), y = ZEROS(B, C, H, W),
             g = UNIFORM(-1, 1, B, C, H, W), gx = ZEROS(B, C, H, W),
             p = ZEROS(B, 3);
  const float params[B][3] = {{1, 0, 0}, {0, 2, -1}, {1, -1, 3}};
  memcpy(p.data, params, sizeof params);
  OK(gan_augment2d(&y, &x, &p, 0));
  int bad = 0;
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++)
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
          int si = i - (int)params[b][1], sj = j - (int)params[b][2];
          float want = 0.0f;
          if (si >= 0 && si < H && sj >= 0 && sj < W) {
            if (params[b][0] != 0.0f) sj = W - 1 - sj;
            want = x.data[((b * C + c) * H + si) * W + sj];
          }
          bad += y.data[((b * C + c) * H + i) * W + j] != want;
        }
  CHECK(bad == 0, "augment: %d pixels differ from the definition", bad);
  /* the backward is the adjoint: <A x, g> == <x, A^T g> */
  OK(gan_augment2d(&gx, &g, &p, 1));
  CHECK(close_to(dot(&y, &g), dot(&x, &gx), 1e-6), "augment backward is not the "
        "adjoint: %g vs %g", dot(&y, &g), dot(&x, &gx));
  /* in place: flips only */
  const float flips[B][3] = {{1, 0, 0}, {0, 0, 0}, {1, 0, 0}};
  memcpy(p.data, flips, sizeof flips);
  OK(gan_augment2d(&y, &x, &p, 0));
  OK(gan_copy(&gx, &x));
  OK(gan_augment2d(&gx, &gx, &p, 0));
  CHECK(rel_diff(gx.data, y.data, y.numel) == 0.0, "augment in place differs");
  memcpy(p.data, params, sizeof params);
  FAILS(gan_augment2d(&gx, &gx, &p, 0), "cannot be done in place");
  p.data[1] = 0.5f;
  FAILS(gan_augment2d(&y, &x, &p, 0), "shifts integers");
  RELEASE(&x, &y, &g, &gx, &p);
}

/* --- metrics -----------------------------------------------------------------*/

/* n smooth "images" (N, 3, S, S): blobs of colour, so that the pyramid has
** structure; 'seed' makes different sets of the same distribution */
static float *blobs(int n, int S, uint64_t seed) {
  float *img = malloc(sizeof(float) * (size_t)n * 3 * S * S);
  gan_rng r;
  gan_rng_seed(&r, seed);
  uint64_t key = gan_rng_next(&r);
  for (int i = 0; i < n; i++) {
    float cx = S * gan_draw_uniform(key, 8 * i), cy = S * gan_draw_uniform(key, 8 * i + 1);
    float rad = S * (0.15f + 0.25f * gan_draw_uniform(key, 8 * i + 2));
    for (int c = 0; c < 3; c++) {
      float fg = gan_draw_uniform(key, 8 * i + 3 + c), bg = 0.5f * (c == 1);
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
          float d = sqrtf((x - cx) * (x - cx) + (y - cy) * (y - cy));
          img[(((size_t)i * 3 + c) * S + y) * S + x] = d < rad ? fg : bg;
        }
    }
  }
  return img;
}

static void test_swd(void) {
  enum { N = 48, S = 32 };
  float *a = blobs(N, S, 1), *b = blobs(N, S, 2), *noise = malloc(sizeof(float) * N * 3 * S * S),
        *blur = malloc(sizeof(float) * N * 3 * S * S);
  gan_rng r;
  gan_rng_seed(&r, 3);
  uint64_t key = gan_rng_next(&r);
  for (int i = 0; i < N * 3 * S * S; i++) noise[i] = gan_draw_uniform(key, (uint64_t)i);
  /* a 3x3 box blur of b */
  for (int p = 0; p < N * 3; p++)
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) {
        float s = 0.0f;
        int cnt = 0;
        for (int dy = -1; dy <= 1; dy++)
          for (int dx = -1; dx <= 1; dx++)
            if (y + dy >= 0 && y + dy < S && x + dx >= 0 && x + dx < S)
              s += b[(size_t)p * S * S + (y + dy) * S + x + dx], cnt++;
        blur[(size_t)p * S * S + y * S + x] = s / cnt;
      }
  double lv[GAN_SWD_MAX_LEVELS], same, other, blurred, noisy;
  int nl = 0;
  gan_rng_seed(&r, 5);
  OK(gan_swd(a, N, a, N, S, NULL, &r, lv, &nl, &same));
  CHECK(nl == 2, "swd at 32x32 has levels 32 and 16, not %d levels", nl);
  OK(gan_swd(a, N, b, N, S, NULL, &r, lv, &nl, &other));
  OK(gan_swd(a, N, blur, N, S, NULL, &r, lv, &nl, &blurred));
  OK(gan_swd(a, N, noise, N, S, NULL, &r, lv, &nl, &noisy));
  if (verbose)
    printf("  swd: self %.2f, other set %.2f, blurred %.2f, noise %.2f\n", same, other,
           blurred, noisy);
  CHECK(same < 0.2 * noisy && other < 0.3 * noisy, "swd: a set against itself (%g) or "
        "its own distribution (%g) is not far below noise (%g)", same, other, noisy);
  CHECK(other < blurred && blurred < noisy, "swd ordering: other set %g, blurred %g, "
        "noise %g", other, blurred, noisy);
  /* the same call twice from the same generator state: the same number */
  double again;
  gan_rng_seed(&r, 9);
  OK(gan_swd(a, N, b, 30, S, NULL, &r, lv, &nl, &same));
  gan_rng_seed(&r, 9);
  OK(gan_swd(a, N, b, 30, S, NULL, &r, lv, &nl, &again));
  CHECK(same == again, "swd is not reproducible: %g then %g", same, again);
  FAILS(gan_swd(a, N, b, N, 8, NULL, &r, lv, &nl, &same), "smaller than the coarsest");
  FAILS(gan_swd(a, 0, b, N, S, NULL, &r, lv, &nl, &same), "at least one image");
  free(a);
  free(b);
  free(noise);
  free(blur);
}

static void test_nearest(void) {
  enum { NQ = 7, NR = 9, D = 5 };
  float q[NQ * D], ref[NR * D], dist[NR];
  int64_t idx[NR]; /* NR >= NQ: the leave-one-out call fills NR */
  gan_rng r;
  gan_rng_seed(&r, 11);
  uint64_t key = gan_rng_next(&r);
  for (int i = 0; i < NQ * D; i++) q[i] = gan_draw_normal(key, (uint64_t)i);
  for (int i = 0; i < NR * D; i++) ref[i] = gan_draw_normal(key, (uint64_t)(1000 + i));
  memcpy(ref + 4 * D, q + 2 * D, sizeof(float) * D); /* query 2 is reference 4 */
  OK(gan_nearest(q, NQ, ref, NR, D, 0, dist, idx));
  int bad = 0;
  for (int i = 0; i < NQ; i++) {
    double best = INFINITY;
    int arg = -1;
    for (int j = 0; j < NR; j++) {
      double s = 0.0;
      for (int k = 0; k < D; k++) s += (q[i * D + k] - ref[j * D + k]) * (q[i * D + k] - ref[j * D + k]);
      if (s < best) best = s, arg = j;
    }
    bad += idx[i] != arg || !close_to(dist[i], sqrt(best), 1e-5);
  }
  CHECK(bad == 0, "nearest: %d queries differ from brute force", bad);
  CHECK(dist[2] == 0.0f && idx[2] == 4, "nearest: an exact copy is at %g (row %lld)",
        dist[2], (long long)idx[2]);
  OK(gan_nearest(ref, NR, ref, NR, D, 1, dist, idx));
  CHECK(idx[4] != 4 && dist[4] > 0.0f, "nearest leaving one out found the row itself");
  FAILS(gan_nearest(q, NQ, ref, NR, D, 1, dist, idx), "same set twice");
  /* a NaN query has no nearest row: an error, not a read at row -1 */
  float keep = q[D + 1];
  q[D + 1] = NAN;
  FAILS(gan_nearest(q, NQ, ref, NR, D, 0, dist, idx), "query 2 has values that are not finite");
  q[D + 1] = keep;
}

/* --- CPU against CUDA -------------------------------------------------------
** When a GPU is present and its backend has the conv slots, every op of
** every config must agree with the CPU within a normalised error of 1e-4
** (max |cuda - cpu| / max |cpu|).  Otherwise one line says why it is
** skipped. */

/* a copy of the cpu tensor t on backend be */
static gan_tensor on(gan_backend *be, const gan_tensor *t) {
  gan_tensor d;
  gan_tensor_init(&d);
  if (gan_tensor_alloc(&d, be, t->ndim, t->shape) != GAN_OK) {
    fprintf(stderr, "cannot allocate a test tensor on %s: %s\n", be->iface.name, gan_errmsg());
    exit(2);
  }
  OK(gan_copy(&d, t));
  return d;
}

/* normalised error of a device tensor against the cpu one */
static double agree(const gan_tensor *dev, const gan_tensor *ref) {
  gan_tensor h = make(ref->ndim, ref->shape);
  OK(gan_copy(&h, dev));
  double e = rel_diff(h.data, ref->data, ref->numel);
  gan_tensor_release(&h);
  return e;
}

static gan_tensor device_ws(const gan_tensor *out, const gan_tensor *inp,
                            const gan_tensor *w, const conv_cfg *c, int transposed) {
  int64_t batched = 0, minimum = 0;
  gan_tensor ws;
  gan_tensor_init(&ws);
  OK(gan_conv2d_workspace(out, inp, w, c->stride, c->pad, transposed, &batched, &minimum));
  if (batched > 0 && gan_tensor_alloc(&ws, out->backend, 1, (int64_t[]){batched}) != GAN_OK)
    exit(2);
  return ws;
}

static void test_cuda_agreement(void) {
  gan_backend *cuda = gan_backend_cuda();
  if (!cuda) {
    printf("cpu-vs-cuda checks skipped: %s\n", gan_errmsg());
    return;
  }
  if (!cuda->iface.conv2d_forward || !cuda->iface.conv2d_backward ||
      !cuda->iface.conv_transpose2d_forward || !cuda->iface.conv_transpose2d_backward) {
    printf("cpu-vs-cuda checks skipped: the cuda backend has no convolutions yet\n");
    return;
  }
  for (int ci = 0; ci < NCFG; ci++) {
    const conv_cfg *c = &CFGS[ci];
    const int P = out_h(c), Q = out_w(c);
    gan_tensor x = UNIFORM(-1, 1, c->B, c->C, c->H, c->W),
               w = UNIFORM(-1, 1, c->K, c->C, c->R, c->S), bk = UNIFORM(-1, 1, c->K),
               bc = UNIFORM(-1, 1, c->C), y = UNIFORM(-1, 1, c->B, c->K, P, Q),
               gx = UNIFORM(-1, 1, c->B, c->C, c->H, c->W), gy = UNIFORM(-1, 1, c->B, c->K, P, Q);
    gan_tensor X = on(cuda, &x), Wd = on(cuda, &w), BK = on(cuda, &bk), BC = on(cuda, &bc),
               Y = on(cuda, &y), GX = on(cuda, &gx), GY = on(cuda, &gy);
    /* conv2d: x -> y', backward with gy */
    gan_tensor yo = ZEROS(c->B, c->K, P, Q), dx = ZEROS(c->B, c->C, c->H, c->W),
               dw = ZEROS(c->K, c->C, c->R, c->S), db = ZEROS(c->K);
    gan_tensor YO = on(cuda, &yo), DX = on(cuda, &dx), DW = on(cuda, &dw), DB = on(cuda, &db);
    gan_tensor ws = workspace(&yo, &x, &w, c, 0, 0), WS = device_ws(&YO, &X, &Wd, c, 0);
    if (c->extra == 0) {
      OK(gan_conv2d_forward(&yo, &x, &w, &bk, c->stride, c->pad, &ws));
      OK(gan_conv2d_forward(&YO, &X, &Wd, &BK, c->stride, c->pad, WS.data ? &WS : NULL));
      CHECK(agree(&YO, &yo) < 1e-4, "cuda conv2d config %d forward: error %.2e", ci,
            agree(&YO, &yo));
      OK(gan_conv2d_backward(&dx, &dw, &db, &gy, &x, &w, c->stride, c->pad, &ws));
      OK(gan_conv2d_backward(&DX, &DW, &DB, &GY, &X, &Wd, c->stride, c->pad,
                             WS.data ? &WS : NULL));
      CHECK(agree(&DX, &dx) < 1e-4 && agree(&DW, &dw) < 1e-4 && agree(&DB, &db) < 1e-4,
            "cuda conv2d config %d backward: errors %.2e %.2e %.2e", ci, agree(&DX, &dx),
            agree(&DW, &dw), agree(&DB, &db));
    }
    /* conv_transpose2d: y -> x', backward with gx */
    gan_tensor xo = ZEROS(c->B, c->C, c->H, c->W), dy = ZEROS(c->B, c->K, P, Q),
               dw2 = ZEROS(c->K, c->C, c->R, c->S), db2 = ZEROS(c->C);
    gan_tensor XO = on(cuda, &xo), DY = on(cuda, &dy), DW2 = on(cuda, &dw2), DB2 = on(cuda, &db2);
    gan_tensor wst = workspace(&xo, &y, &w, c, 1, 0), WST = device_ws(&XO, &Y, &Wd, c, 1);
    OK(gan_conv_transpose2d_forward(&xo, &y, &w, &bc, c->stride, c->pad, &wst));
    OK(gan_conv_transpose2d_forward(&XO, &Y, &Wd, &BC, c->stride, c->pad,
                                    WST.data ? &WST : NULL));
    CHECK(agree(&XO, &xo) < 1e-4, "cuda conv_transpose2d config %d forward: error %.2e", ci,
          agree(&XO, &xo));
    OK(gan_conv_transpose2d_backward(&dy, &dw2, &db2, &gx, &y, &w, c->stride, c->pad, &wst));
    OK(gan_conv_transpose2d_backward(&DY, &DW2, &DB2, &GX, &Y, &Wd, c->stride, c->pad,
                                     WST.data ? &WST : NULL));
    CHECK(agree(&DY, &dy) < 1e-4 && agree(&DW2, &dw2) < 1e-4 && agree(&DB2, &db2) < 1e-4,
          "cuda conv_transpose2d config %d backward: errors %.2e %.2e %.2e", ci,
          agree(&DY, &dy), agree(&DW2, &dw2), agree(&DB2, &db2));
    RELEASE(&x, &w, &bk, &bc, &y, &gx, &gy, &X, &Wd, &BK, &BC, &Y, &GX, &GY, &yo, &dx, &dw,
            &db, &YO, &DX, &DW, &DB, &ws, &WS, &xo, &dy, &dw2, &db2, &XO, &DY, &DW2, &DB2,
            &wst, &WST);
  }
}

int main(void) {
  verbose = getenv("GAN_TEST_VERBOSE") != NULL;
  cpu = gan_backend_cpu();
  gan_rng_seed(&data_rng, 1234);
  for (int i = 0; i < NCFG; i++) {
    if (CFGS[i].extra == 0) test_conv2d(&CFGS[i], i);
    test_conv_transpose2d(&CFGS[i], i);
  }
  test_conv_errors();
  test_augment();
  test_swd();
  test_nearest();
  test_cuda_agreement();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
