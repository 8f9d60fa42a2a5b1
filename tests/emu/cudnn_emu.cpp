/*
** tests/emu/cudnn_emu.cpp -- cuDNN 9's convolutions for the host emulator,
** built by run.sh as a shared library, libcudnn.so.9, that cuda/cudnn.cu
** loads with dlopen through GAN_CUDNN as it would load the real one.  Its
** device pointers are the emulator's, checked with emu_is_device, which the
** program that loads it exports (-rdynamic).
**
** What it models, to exercise cudnn.cu's choices as real cuDNN would:
**   - argument checks: descriptors set, NCHW float, cross-correlation, no
**     dilation, y's shape the one x, w and the convolution give; every
**     operand inside one device allocation; a workspace at least as large
**     as the chosen algorithm's (else CUDNN_STATUS_BAD_PARAM, with a line
**     on stderr);
**   - the heuristics' list, the same for each direction: algorithm 0,
**     FMA math but non-deterministic, no workspace; 1, deterministic but
**     tensor-op (TF32) math only, 2 KB (NOT_SUPPORTED on a descriptor
**     without tensor-op math, as in cuDNN); 2, deterministic, with a
**     workspace of one sample's unfolded image, listed twice, under the
**     default math and under tensor-op math; 3, not supported.  So fp32
**     (FMA descriptors) must take 2 and TF32 must take 1.  The operands
**     are rounded to TF32 (10 mantissa bits) unless the descriptor's math
**     type is FMA, so a plan that mixed the precisions up would show;
**   - alpha and beta (beta = 0 reads nothing; the filter gradient
**     accumulates with beta = 1); the workspace is scribbled on;
**   - EMU_CUDNN_FAIL=forward|data|filter makes that operation fail its
**     checks (CUDNN_STATUS_NOT_SUPPORTED), writing nothing; with ":exec"
**     appended, fail with CUDNN_STATUS_EXECUTION_FAILED after adding 1 to
**     half of its output (the fallback to im2col, cuda/conv.cu, must not
**     add a filter gradient twice); with ":heur", fail while choosing
**     the algorithm (the heuristics answer
**     CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED, as when a sub-library of
**     cuDNN does not load), before any work.
** Not modelled: speed, and cuDNN's own numerics (the sums are double
** products on OpenBLAS, over each sample's unfolded image).
*/
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include <cblas.h>

#include "cudnn.h"

struct emu_dnn { int stream_set; };
struct emu_dnn_tensor { int set, n, c, h, w; };
struct emu_dnn_filter { int set, k, c, r, s; };
struct emu_dnn_conv { int set, pad_h, pad_w, u, v; cudnnMathType_t math; };

enum { ALGOS = 4 };

static cudnnStatus_t bad(const char *fn, const char *why) {
  fprintf(stderr, "emu: %s: %s\n", fn, why);
  return CUDNN_STATUS_BAD_PARAM;
}

extern "C" {

size_t cudnnGetVersion(void) { return CUDNN_VERSION; }
size_t cudnnGetCudartVersion(void) { return CUDART_VERSION; }
cudnnStatus_t cudnnGraphVersionCheck(void) { return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnOpsVersionCheck(void) { return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnCnnVersionCheck(void) { return CUDNN_STATUS_SUCCESS; }

const char *cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED: return "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
  *h = new emu_dnn{0};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
  delete h;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t) {
  h->stream_set = 1;
  return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"

/* the descriptors: created empty (unset), destroyed, and set with checks */
template <class T> static cudnnStatus_t create(T **d) {
  *d = new T{};
  return CUDNN_STATUS_SUCCESS;
}
template <class T> static cudnnStatus_t destroy(T *d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
/* a 4-d descriptor: NCHW float, every size at least 1 */
template <class T>
static cudnnStatus_t set4(const char *fn, T *d, cudnnTensorFormat_t format,
                          cudnnDataType_t type, int a, int b, int c, int e) {
  if (format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT || a < 1 || b < 1 || c < 1 ||
      e < 1)
    return bad(fn, "not NCHW float, or a size below 1");
  *d = T{1, a, b, c, e};
  return CUDNN_STATUS_SUCCESS;
}

extern "C" {
cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) { return create(d); }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w) {
  return set4("cudnnSetTensor4dDescriptor", d, format, type, n, c, h, w);
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) { return create(d); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return destroy(d); }
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h,
                                         int w) {
  return set4("cudnnSetFilter4dDescriptor", d, format, type, k, c, h, w);
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
  return create(d); /* math: CUDNN_DEFAULT_MATH (0) */
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  return destroy(d);
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h,
                                              int pad_w, int u, int v, int dilation_h,
                                              int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (pad_h < 0 || pad_w < 0 || u < 1 || v < 1 || dilation_h != 1 || dilation_w != 1 ||
      mode != CUDNN_CROSS_CORRELATION || compute != CUDNN_DATA_FLOAT)
    return bad("cudnnSetConvolution2dDescriptor",
               "the emulator models cross-correlation in float, without dilation");
  d->set = 1;
  d->pad_h = pad_h;
  d->pad_w = pad_w;
  d->u = u;
  d->v = v;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
  d->math = m;
  return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"

/* --- shapes, the heuristics, the workspace -------------------------------- */

/* 1 when x, w, conv and y are set and agree (y is what x, w and conv give) */
static int shapes_ok(const char *fn, cudnnHandle_t h, const emu_dnn_tensor *x,
                     const emu_dnn_filter *w, const emu_dnn_conv *c, const emu_dnn_tensor *y) {
  if (h == NULL || !h->stream_set) return bad(fn, "no handle, or no stream set on it"), 0;
  if (!x || !w || !c || !y || !x->set || !w->set || !c->set || !y->set)
    return bad(fn, "a descriptor that was not set"), 0;
  int p = (x->h + 2 * c->pad_h - w->r) / c->u + 1, q = (x->w + 2 * c->pad_w - w->s) / c->v + 1;
  if (x->c != w->c || y->n != x->n || y->c != w->k || y->h != p || y->w != q) {
    char why[256];
    snprintf(why, sizeof why, "x %dx%dx%dx%d, w %dx%dx%dx%d, stride %d, padding %d give y "
             "%dx%dx%dx%d, not %dx%dx%dx%d", x->n, x->c, x->h, x->w, w->k, w->c, w->r, w->s,
             c->u, c->pad_h, x->n, w->k, p, q, y->n, y->c, y->h, y->w);
    return bad(fn, why), 0;
  }
  return 1;
}

static size_t algo_ws(int algo, const emu_dnn_tensor *x, const emu_dnn_filter *w,
                      const emu_dnn_tensor *y) {
  if (algo == 1) return 2048;
  if (algo == 2) return (size_t)x->c * w->r * w->s * y->h * y->w * sizeof(float);
  return 0;
}

template <class Perf>
static cudnnStatus_t heuristics(const char *fn, cudnnHandle_t h, const emu_dnn_tensor *x,
                                const emu_dnn_filter *w, const emu_dnn_conv *c,
                                const emu_dnn_tensor *y, int requested, int *returned,
                                Perf *perf) {
  if (!shapes_ok(fn, h, x, w, c, y)) return CUDNN_STATUS_BAD_PARAM;
  if (requested < 1 || returned == NULL || perf == NULL)
    return bad(fn, "requestedAlgoCount below 1, or no result array");
  const char *f = getenv("EMU_CUDNN_FAIL");
  if (f != NULL && strlen(f) > 5 && strcmp(f + strlen(f) - 5, ":heur") == 0) {
    /* forward:heur, data:heur, filter:heur, by the function's name */
    static const struct { const char *op, *fn; } dir[] = {
        {"forward", "Forward"}, {"data", "BackwardData"}, {"filter", "BackwardFilter"}};
    for (const auto &d : dir)
      if (strncmp(f, d.op, strlen(d.op)) == 0 && f[strlen(d.op)] == ':' &&
          strstr(fn, d.fn) != NULL)
        return CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED;
  }
  /* algorithm 2 is listed twice, under two math types, as cuDNN does */
  static const struct { int algo; cudnnMathType_t math; } list[] = {
      {0, CUDNN_FMA_MATH}, {1, CUDNN_TENSOR_OP_MATH}, {2, CUDNN_DEFAULT_MATH},
      {2, CUDNN_TENSOR_OP_MATH}, {3, CUDNN_FMA_MATH}};
  const int entries = (int)(sizeof list / sizeof list[0]);
  int n = requested < entries ? requested : entries;
  for (int i = 0; i < n; i++) {
    int a = list[i].algo;
    memset(&perf[i], 0, sizeof perf[i]);
    perf[i].algo = a;
    perf[i].status = a == 3 ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS;
    perf[i].time = -1.0f;
    perf[i].memory = algo_ws(a, x, w, y);
    perf[i].determinism = a == 0 ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC;
    perf[i].mathType = list[i].math;
  }
  *returned = n;
  return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t ws_size(const char *fn, cudnnHandle_t h, const emu_dnn_tensor *x,
                             const emu_dnn_filter *w, const emu_dnn_conv *c,
                             const emu_dnn_tensor *y, int algo, size_t *bytes) {
  if (!shapes_ok(fn, h, x, w, c, y)) return CUDNN_STATUS_BAD_PARAM;
  if (algo < 0 || algo >= ALGOS - 1) return bad(fn, "an algorithm the heuristics did not offer");
  /* the tensor-op-only algorithm needs a descriptor that allows tensor
  ** ops explicitly; cuDNN answers NOT_SUPPORTED otherwise */
  if (algo == 1 && c->math != CUDNN_TENSOR_OP_MATH &&
      c->math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
    return CUDNN_STATUS_NOT_SUPPORTED;
  *bytes = algo_ws(algo, x, w, y);
  return CUDNN_STATUS_SUCCESS;
}

extern "C" {
cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t y, const int requested,
    int *returned, cudnnConvolutionFwdAlgoPerf_t *perf) {
  return heuristics("cudnnGetConvolutionForwardAlgorithm_v7", h, x, w, conv, y, requested,
                    returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t h, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t dx,
    const int requested, int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
  return heuristics("cudnnGetConvolutionBackwardDataAlgorithm_v7", h, dx, w, conv, dy,
                    requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnFilterDescriptor_t dw,
    const int requested, int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
  return heuristics("cudnnGetConvolutionBackwardFilterAlgorithm_v7", h, x, dw, conv, dy,
                    requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t y,
    cudnnConvolutionFwdAlgo_t algo, size_t *bytes) {
  return ws_size("cudnnGetConvolutionForwardWorkspaceSize", h, x, w, conv, y, algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t h, const cudnnFilterDescriptor_t w, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnTensorDescriptor_t dx,
    cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes) {
  return ws_size("cudnnGetConvolutionBackwardDataWorkspaceSize", h, dx, w, conv, dy, algo,
                 bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t h, const cudnnTensorDescriptor_t x, const cudnnTensorDescriptor_t dy,
    const cudnnConvolutionDescriptor_t conv, const cudnnFilterDescriptor_t dw,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes) {
  return ws_size("cudnnGetConvolutionBackwardFilterWorkspaceSize", h, x, dw, conv, dy, algo,
                 bytes);
}
}  // extern "C"

/* --- the three operations ---------------------------------------------------- */

/* an operand of 'n' floats inside one device allocation */
static int operand_ok(const char *fn, const char *what, const void *p, size_t n) {
  if (p != NULL && emu_is_device(p, n * sizeof(float))) return 1;
  fprintf(stderr, "emu: %s: %s (%zu floats) is not inside one device allocation\n", fn, what, n);
  return 0;
}

/* TF32: 10 explicit mantissa bits, rounded to nearest */
static float tf32(float v) {
  uint32_t b;
  memcpy(&b, &v, 4);
  b = (b + 0x1000u) & ~0x1FFFu;
  memcpy(&v, &b, 4);
  return v;
}

/* The checks every operation makes; 0 with the status in *st when one
** fails.  'fail' names the operation for EMU_CUDNN_FAIL. */
static int prepare(const char *fn, const char *fail, cudnnHandle_t h, const emu_dnn_tensor *x,
                   const emu_dnn_filter *w, const emu_dnn_conv *c, const emu_dnn_tensor *y,
                   int algo, void *ws, size_t ws_bytes, const void *alpha, const void *beta,
                   cudnnStatus_t *st, int *partial) {
  *st = CUDNN_STATUS_BAD_PARAM;
  *partial = 0;
  if (!shapes_ok(fn, h, x, w, c, y)) return 0;
  if (alpha == NULL || beta == NULL) return bad(fn, "no alpha or beta"), 0;
  size_t need;
  if (ws_size(fn, h, x, w, c, y, algo, &need) != CUDNN_STATUS_SUCCESS) return 0;
  if (ws_bytes < need || (need > 0 && (ws == NULL || !emu_is_device(ws, need)))) {
    char why[160];
    snprintf(why, sizeof why, "algorithm %d needs %zu bytes of workspace; it was given %zu "
             "(at %p, %s)", algo, need, ws_bytes, ws, ws && emu_is_device(ws, need) ?
             "on the device" : "not a device allocation of that size");
    return bad(fn, why), 0;
  }
  const char *f = getenv("EMU_CUDNN_FAIL");
  if (f != NULL && strncmp(f, fail, strlen(fail)) == 0) {
    if (strcmp(f + strlen(fail), ":exec") == 0) { /* after some of the work */
      *st = CUDNN_STATUS_EXECUTION_FAILED;
      *partial = 1;
      return 0;
    }
    if (f[strlen(fail)] == '\0') { /* a check, before any work */
      *st = CUDNN_STATUS_NOT_SUPPORTED;
      return 0;
    }
  }
  if (need > 0) memset(ws, 0xA5, need); /* nothing may rely on it */
  *st = CUDNN_STATUS_SUCCESS;
  return 1;
}

/* the operands as the algorithm reads them */
static std::vector<float> read(const float *p, size_t n, int round) {
  std::vector<float> v(p, p + n);
  if (round)
    for (float &e : v) e = tf32(e);
  return v;
}

/* out = alpha * acc + beta * out, beta = 0 reading nothing */
static void store(float *out, const std::vector<double> &acc, float alpha, float beta) {
  for (size_t i = 0; i < acc.size(); i++)
    out[i] = (float)(alpha * acc[i] + (beta == 0.0f ? 0.0 : (double)beta * out[i]));
}

/* The unfolded image of sample b (im2col): col (C*R*S, P*Q) in double, from
** x; or, with 'back', the adjoint: col's entries added into acc (x's shape).
** The three operations are then double-precision products (cblas_dgemm). */
static void unfold(const emu_dnn_tensor *x, const emu_dnn_filter *w, const emu_dnn_conv *c,
                   const emu_dnn_tensor *y, int b, const float *xv, double *col, int back,
                   double *acc) {
  const size_t PQ = (size_t)y->h * y->w;
  for (int ch = 0; ch < w->c; ch++)
    for (int r = 0; r < w->r; r++)
      for (int s = 0; s < w->s; s++) {
        double *row = col + (((size_t)ch * w->r + r) * w->s + s) * PQ;
        for (int p = 0; p < y->h; p++) {
          int hh = p * c->u - c->pad_h + r;
          for (int q = 0; q < y->w; q++) {
            int ww = q * c->v - c->pad_w + s;
            int in = hh >= 0 && hh < x->h && ww >= 0 && ww < x->w;
            size_t xi = in ? (((size_t)b * x->c + ch) * x->h + hh) * x->w + ww : 0;
            double *e = row + (size_t)p * y->w + q;
            if (back) {
              if (in) acc[xi] += *e;
            } else {
              *e = in ? xv[xi] : 0.0;
            }
          }
        }
      }
}

static std::vector<double> widen(const std::vector<float> &v) {
  return std::vector<double>(v.begin(), v.end());
}

static size_t numel(const emu_dnn_tensor *t) { return (size_t)t->n * t->c * t->h * t->w; }
static size_t numel(const emu_dnn_filter *t) { return (size_t)t->k * t->c * t->r * t->s; }

enum op { FWD, DATA, FILTER };

/* One of the three operations.  xd, wd and yd describe the convolution
** whatever the direction (x the input image, y the output); of x, w and y,
** the one the operation writes is NULL and 'out' is written instead, as
** alpha * the result + beta * out. */
static cudnnStatus_t run(op o, cudnnHandle_t h, const void *alpha, const void *beta,
                         const emu_dnn_tensor *xd, const float *x, const emu_dnn_filter *wd,
                         const float *w, const emu_dnn_conv *c, const emu_dnn_tensor *yd,
                         const float *y, int algo, void *ws, size_t ws_bytes, float *out) {
  static const char *const fn[] = {"cudnnConvolutionForward", "cudnnConvolutionBackwardData",
                                   "cudnnConvolutionBackwardFilter"};
  static const char *const fail[] = {"forward", "data", "filter"};
  cudnnStatus_t st;
  int partial;
  int ready = prepare(fn[o], fail[o], h, xd, wd, c, yd, algo, ws, ws_bytes, alpha, beta, &st,
                      &partial);
  if (!ready && !partial) return st; /* its checks failed: nothing touched */
  if (!operand_ok(fn[o], "x", o == DATA ? out : x, numel(xd)) ||
      !operand_ok(fn[o], "w", o == FILTER ? out : w, numel(wd)) ||
      !operand_ok(fn[o], "y", o == FWD ? out : y, numel(yd)))
    return ready ? CUDNN_STATUS_EXECUTION_FAILED : st;
  if (partial) { /* a failure after part of the output was written */
    size_t n = o == FWD ? numel(yd) : o == DATA ? numel(xd) : numel(wd);
    for (size_t i = 0; i < n / 2; i++) out[i] += 1.0f;
    return st;
  }
  /* TF32 operands unless the descriptor asks for FMA math: tensor-op math,
  ** and the default math too, let cuDNN use TF32 tensor cores on Ampere
  ** and later */
  const int round = c->math != CUDNN_FMA_MATH;
  std::vector<float> xv = o == DATA ? std::vector<float>() : read(x, numel(xd), round);
  std::vector<double> wv = widen(o == FILTER ? std::vector<float>() : read(w, numel(wd), round));
  std::vector<double> yv = widen(o == FWD ? std::vector<float>() : read(y, numel(yd), round));
  const int K = wd->k, CRS = wd->c * wd->r * wd->s, PQ = yd->h * yd->w;
  std::vector<double> col((size_t)CRS * PQ);
  std::vector<double> acc(o == FWD ? numel(yd) : o == DATA ? numel(xd) : numel(wd), 0.0);
  for (int b = 0; b < xd->n; b++) {
    double *yb = o == FWD ? acc.data() + (size_t)b * K * PQ : yv.data() + (size_t)b * K * PQ;
    if (o != DATA) unfold(xd, wd, c, yd, b, xv.data(), col.data(), 0, NULL);
    if (o == FWD) /* y_b (K, PQ) = w (K, CRS) col (CRS, PQ) */
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, PQ, CRS, 1.0, wv.data(), CRS,
                  col.data(), PQ, 0.0, yb, PQ);
    else if (o == DATA) { /* col (CRS, PQ) = w^T (CRS, K) dy_b (K, PQ), folded back */
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CRS, PQ, K, 1.0, wv.data(), CRS, yb,
                  PQ, 0.0, col.data(), PQ);
      unfold(xd, wd, c, yd, b, NULL, col.data(), 1, acc.data());
    } else /* dw (K, CRS) += dy_b (K, PQ) col^T (PQ, CRS) */
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, CRS, PQ, 1.0, yb, PQ, col.data(),
                  PQ, 1.0, acc.data(), CRS);
  }
  store(out, acc, *(const float *)alpha, *(const float *)beta);
  return CUDNN_STATUS_SUCCESS;
}

extern "C" {
cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha,
                                      const cudnnTensorDescriptor_t xd, const void *x,
                                      const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t conv,
                                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes,
                                      const void *beta, const cudnnTensorDescriptor_t yd,
                                      void *y) {
  return run(FWD, h, alpha, beta, xd, (const float *)x, wd, (const float *)w, conv, yd, NULL,
             algo, ws, ws_bytes, (float *)y);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha,
                                           const cudnnFilterDescriptor_t wd, const void *w,
                                           const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t conv,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws,
                                           size_t ws_bytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxd, void *dx) {
  return run(DATA, h, alpha, beta, dxd, NULL, wd, (const float *)w, conv, dyd,
             (const float *)dy, algo, ws, ws_bytes, (float *)dx);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha,
                                             const cudnnTensorDescriptor_t xd, const void *x,
                                             const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t conv,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws,
                                             size_t ws_bytes, const void *beta,
                                             const cudnnFilterDescriptor_t dwd, void *dw) {
  return run(FILTER, h, alpha, beta, xd, (const float *)x, dwd, NULL, conv, dyd,
             (const float *)dy, algo, ws, ws_bytes, (float *)dw);
}
}  // extern "C"
