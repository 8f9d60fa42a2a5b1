/*
** cudnn.cu -- loading cuDNN, its handle, and the per-shape plans (see
** cudnn.cuh for why it is loaded at run time and how algorithms are chosen).
**
** The loaded library is process state, like the library itself: one static
** record, filled by the first dnn_library() call.  Everything else -- the
** handle bound to the context's stream, the plans, the workspace -- lives
** in the context (cuda_ctx.dnn), created at the first convolution.
*/
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cudnn.cuh"

/* --- the library ------------------------------------------------------------ */

static struct {
  int tried;
  void *lib;
  dnn_api api;
  size_t version; /* cudnnGetVersion(): major*10000 + minor*100 + patch */
  char path[512];
  char why[1024];
} loaded;

/* Appends "; " and the formatted text to loaded.why. */
static void why_add(const char *fmt, const char *a, const char *b) {
  size_t n = strlen(loaded.why);
  if (n > 0 && n + 2 < sizeof loaded.why) {
    memcpy(loaded.why + n, "; ", 3);
    n += 2;
  }
  snprintf(loaded.why + n, sizeof loaded.why - n, fmt, a, b);
}

/* Tries one file or soname; 1 when it is a usable cuDNN 9. */
static int try_open(const char *name) {
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *e = dlerror(); /* it names the file */
    if (e) why_add("%s%s", e, "");
    else why_add("%s: %s", name, "not found");
    return 0;
  }
  dnn_api a;
#define DNN_LOOKUP(f)                                   \
  a.f = (decltype(a.f))dlsym(lib, #f);                  \
  if (a.f == NULL) {                                    \
    why_add("%s lacks %s", name, #f);                   \
    dlclose(lib);                                       \
    return 0;                                           \
  }
  DNN_FUNCS(DNN_LOOKUP)
#undef DNN_LOOKUP
  size_t v = a.cudnnGetVersion();
  if (v / 10000 != CUDNN_MAJOR) {
    char got[32];
    snprintf(got, sizeof got, "%zu.%zu", v / 10000, v / 100 % 100);
    why_add("%s is cuDNN %s, not 9", name, got);
    dlclose(lib);
    return 0;
  }
  loaded.lib = lib;
  loaded.api = a;
  loaded.version = v;
  snprintf(loaded.path, sizeof loaded.path, "%s", name);
  return 1;
}

const dnn_api *dnn_library(const char **why, const char **path, size_t *version) {
  if (!loaded.tried) {
    loaded.tried = 1;
    const char *env = getenv("GAN_CUDNN");
    if (env != NULL && env[0] != '\0') {
      /* the library file, or the folder that holds it: that alone */
      char name[600];
      if (strstr(env, ".so") != NULL) snprintf(name, sizeof name, "%s", env);
      else snprintf(name, sizeof name, "%s/libcudnn.so.9", env);
      if (!try_open(name)) why_add("(GAN_CUDNN is %s)%s", env, "");
    } else {
      (void)(try_open("libcudnn.so.9") ||
             try_open("/usr/local/cuda/lib64/libcudnn.so.9") ||
             try_open("/usr/local/cuda/lib/libcudnn.so.9"));
    }
  }
  if (why) *why = loaded.why;
  if (path) *path = loaded.path;
  if (version) *version = loaded.version;
  return loaded.lib ? &loaded.api : NULL;
}

int dnn_ok(cuda_ctx *c, cudnnStatus_t s, const char *what) {
  if (s == CUDNN_STATUS_SUCCESS) return 1;
  (void)cudaGetLastError();
  const char *msg = loaded.lib ? loaded.api.cudnnGetErrorString(s) : "?";
  cuda_fail(c, GAN_EBACKEND, "%s failed: %s (cudnnStatus_t %d)", what, msg, (int)s);
  return 0;
}

/* --- the handle ----------------------------------------------------------- */

static void plan_clear(const dnn_api *a, dnn_plan *p) {
  if (p->x) a->cudnnDestroyTensorDescriptor(p->x);
  if (p->y) a->cudnnDestroyTensorDescriptor(p->y);
  if (p->w) a->cudnnDestroyFilterDescriptor(p->w);
  for (int k = 0; k < 3; k++)
    if (p->conv[k]) a->cudnnDestroyConvolutionDescriptor(p->conv[k]);
  memset(p, 0, sizeof *p);
}

void cuda_dnn_release(cuda_ctx *c) {
  cuda_dnn *n = c->dnn;
  if (n == NULL) return;
  for (int i = 0; i < DNN_PLANS; i++)
    if (n->plans[i].used) plan_clear(n->api, &n->plans[i]);
  if (n->handle) n->api->cudnnDestroy(n->handle);
  if (n->ws) cuda_pool_free(c, n->ws);
  free(n);
  c->dnn = NULL;
}

/* The context's cuDNN state, created on first use; NULL on failure. */
static cuda_dnn *dnn_get(cuda_ctx *c) {
  if (c->dnn != NULL) return c->dnn;
  const char *why;
  const dnn_api *a = dnn_library(&why, NULL, NULL);
  if (a == NULL) {
    cuda_fail(c, GAN_EBACKEND, "convolutions on cuda need cuDNN 9 (libcudnn.so.9), "
              "which could not be loaded: %s. Point GAN_CUDNN at its folder "
              "(pip's nvidia-cudnn-cu13 has one), or use --device cpu", why);
    return NULL;
  }
  cuda_dnn *n = (cuda_dnn *)calloc(1, sizeof *n);
  if (n == NULL) {
    cuda_fail(c, GAN_ENOMEM, "out of host memory for cuDNN's state");
    return NULL;
  }
  n->api = a;
  if (!dnn_ok(c, a->cudnnCreate(&n->handle), "cudnnCreate")) {
    free(n);
    return NULL;
  }
  if (!dnn_ok(c, a->cudnnSetStream(n->handle, c->stream), "cudnnSetStream")) {
    a->cudnnDestroy(n->handle);
    free(n);
    return NULL;
  }
  c->dnn = n;
  return n;
}

/* --- plans ------------------------------------------------------------------ */

static int same_desc(const gan_conv2d_desc *a, const gan_conv2d_desc *b) {
  return a->B == b->B && a->C == b->C && a->H == b->H && a->W == b->W &&
         a->K == b->K && a->P == b->P && a->Q == b->Q && a->R == b->R &&
         a->S == b->S && a->stride == b->stride && a->pad == b->pad;
}

/* Fills a fresh plan's descriptors; 0 on failure (recorded). */
static int plan_make(cuda_ctx *c, const dnn_api *a, dnn_plan *p,
                     const gan_conv2d_desc *d, int tf32) {
  p->d = *d;
  p->tf32 = tf32;
  for (int k = 0; k < 3; k++) p->algo[k] = -1;
  if (!dnn_ok(c, a->cudnnCreateTensorDescriptor(&p->x), "cudnnCreateTensorDescriptor") ||
      !dnn_ok(c, a->cudnnCreateTensorDescriptor(&p->y), "cudnnCreateTensorDescriptor") ||
      !dnn_ok(c, a->cudnnCreateFilterDescriptor(&p->w), "cudnnCreateFilterDescriptor"))
    return 0;
  if (!dnn_ok(c, a->cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                               d->B, d->C, d->H, d->W),
              "cudnnSetTensor4dDescriptor (x)") ||
      !dnn_ok(c, a->cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                               d->B, d->K, d->P, d->Q),
              "cudnnSetTensor4dDescriptor (y)") ||
      !dnn_ok(c, a->cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                               d->K, d->C, d->R, d->S),
              "cudnnSetFilter4dDescriptor"))
    return 0;
  /* in fp32, FMA math only: CUDNN_DEFAULT_MATH lets cuDNN use TF32 tensor
  ** cores on Ampere and later, as PyTorch's allow_tf32 does */
  cudnnMathType_t math = tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  for (int k = 0; k < 3; k++) {
    if (!dnn_ok(c, a->cudnnCreateConvolutionDescriptor(&p->conv[k]),
                "cudnnCreateConvolutionDescriptor") ||
        !dnn_ok(c, a->cudnnSetConvolution2dDescriptor(p->conv[k], d->pad, d->pad,
                                                      d->stride, d->stride, 1, 1,
                                                      CUDNN_CROSS_CORRELATION,
                                                      CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor") ||
        !dnn_ok(c, a->cudnnSetConvolutionMathType(p->conv[k], math),
                "cudnnSetConvolutionMathType"))
      return 0;
  }
  return 1;
}

/* The index of the heuristics' best usable result: deterministic if one
** is, within DNN_WS_MAX, and without tensor-core math in fp32; -1 if none. */
template <class Perf>
static int pick(const Perf *r, int n, int tf32) {
  int fallback = -1;
  for (int i = 0; i < n; i++) {
    if (r[i].status != CUDNN_STATUS_SUCCESS || r[i].memory > DNN_WS_MAX) continue;
    if (!tf32 && (r[i].mathType == CUDNN_TENSOR_OP_MATH ||
                  r[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    if (r[i].determinism == CUDNN_DETERMINISTIC) return i;
    if (fallback < 0) fallback = i;
  }
  return fallback;
}

/* Chooses the algorithm of one direction; 0 on failure (recorded). */
static int plan_choose(cuda_ctx *c, cuda_dnn *n, dnn_plan *p, dnn_dir dir) {
  const dnn_api *a = n->api;
  int got = 0, i = -1;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  const char *what = dir == DNN_FWD ? "cudnnGetConvolutionForwardAlgorithm_v7"
                     : dir == DNN_BWD_DATA ? "cudnnGetConvolutionBackwardDataAlgorithm_v7"
                                           : "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
  if (dir == DNN_FWD) {
    cudnnConvolutionFwdAlgoPerf_t r[2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    if (!dnn_ok(c, a->cudnnGetConvolutionForwardAlgorithm_v7(
                       n->handle, p->x, p->w, p->conv[dir], p->y,
                       2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, r), what))
      return 0;
    if ((i = pick(r, got, p->tf32)) >= 0) {
      p->algo[dir] = (int)r[i].algo;
      p->ws[dir] = r[i].memory;
      math = r[i].mathType;
    }
  } else if (dir == DNN_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t r[2 * CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    if (!dnn_ok(c, a->cudnnGetConvolutionBackwardDataAlgorithm_v7(
                       n->handle, p->w, p->y, p->conv[dir], p->x,
                       2 * CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, r), what))
      return 0;
    if ((i = pick(r, got, p->tf32)) >= 0) {
      p->algo[dir] = (int)r[i].algo;
      p->ws[dir] = r[i].memory;
      math = r[i].mathType;
    }
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t r[2 * CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    if (!dnn_ok(c, a->cudnnGetConvolutionBackwardFilterAlgorithm_v7(
                       n->handle, p->x, p->y, p->conv[dir], p->w,
                       2 * CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, r), what))
      return 0;
    if ((i = pick(r, got, p->tf32)) >= 0) {
      p->algo[dir] = (int)r[i].algo;
      p->ws[dir] = r[i].memory;
      math = r[i].mathType;
    }
  }
  if (i < 0) {
    const gan_conv2d_desc *d = &p->d;
    cuda_fail(c, GAN_EBACKEND, "%s: no usable algorithm for x %dx%dx%dx%d, weight "
              "%dx%dx%dx%d, stride %d, padding %d (%d candidates)", what, d->B, d->C,
              d->H, d->W, d->K, d->C, d->R, d->S, d->stride, d->pad, got);
    return 0;
  }
  /* in TF32 the algorithm runs with the math type it was rated for; in fp32
  ** the descriptor keeps FMA */
  if (p->tf32 &&
      !dnn_ok(c, a->cudnnSetConvolutionMathType(p->conv[dir], math),
              "cudnnSetConvolutionMathType"))
    return 0;
  /* the workspace of the algorithm on this descriptor, as the documentation
  ** asks, rather than the heuristics' estimate */
  size_t ws = 0;
  cudnnStatus_t s;
  if (dir == DNN_FWD)
    s = a->cudnnGetConvolutionForwardWorkspaceSize(
        n->handle, p->x, p->w, p->conv[dir], p->y,
        (cudnnConvolutionFwdAlgo_t)p->algo[dir], &ws);
  else if (dir == DNN_BWD_DATA)
    s = a->cudnnGetConvolutionBackwardDataWorkspaceSize(
        n->handle, p->w, p->y, p->conv[dir], p->x,
        (cudnnConvolutionBwdDataAlgo_t)p->algo[dir], &ws);
  else
    s = a->cudnnGetConvolutionBackwardFilterWorkspaceSize(
        n->handle, p->x, p->y, p->conv[dir], p->w,
        (cudnnConvolutionBwdFilterAlgo_t)p->algo[dir], &ws);
  if (!dnn_ok(c, s, "cudnnGetConvolution*WorkspaceSize")) {
    p->algo[dir] = -1;
    return 0;
  }
  if (ws > p->ws[dir]) p->ws[dir] = ws;
  return 1;
}

/* Grows the workspace to at least 'bytes'; 0 on failure (recorded).  The
** old block goes back to the pool: queued work that uses it runs first. */
static int ws_reserve(cuda_ctx *c, cuda_dnn *n, size_t bytes) {
  if (bytes <= n->ws_bytes) return 1;
  void *p = cuda_pool_alloc(c, bytes);
  if (p == NULL) {
    cuda_fail(c, GAN_ENOMEM, "cuDNN workspace: %s", gan_errmsg());
    return 0;
  }
  if (n->ws) cuda_pool_free(c, n->ws);
  n->ws = p;
  n->ws_bytes = bytes;
  return 1;
}

dnn_plan *dnn_plan_for(cuda_ctx *c, const gan_conv2d_desc *d, dnn_dir dir) {
  cuda_dnn *n = dnn_get(c);
  if (n == NULL) return NULL;
  dnn_plan *p = NULL, *oldest = &n->plans[0];
  for (int i = 0; i < DNN_PLANS && p == NULL; i++) {
    dnn_plan *q = &n->plans[i];
    if (q->used && q->tf32 == c->tf32 && same_desc(&q->d, d)) p = q;
    else if (q->used < oldest->used) oldest = q; /* an empty slot is oldest */
  }
  if (p == NULL) {
    p = oldest;
    if (p->used) plan_clear(n->api, p);
    if (!plan_make(c, n->api, p, d, c->tf32)) {
      plan_clear(n->api, p);
      return NULL;
    }
  }
  p->used = ++n->clock;
  if (p->algo[dir] < 0 && !plan_choose(c, n, p, dir)) return NULL;
  if (!ws_reserve(c, n, p->ws[dir])) return NULL;
  return p;
}

/* --- gan_cuda.h ------------------------------------------------------------- */

extern "C" const char *gan_cuda_cudnn(void) {
  static char buf[600];
  const char *why, *path;
  size_t v;
  if (dnn_library(&why, &path, &v) == NULL) {
    gan_error(GAN_EBACKEND, "cuDNN 9 could not be loaded: %s", why);
    return NULL;
  }
  snprintf(buf, sizeof buf, "cuDNN %zu.%zu.%zu (%s)", v / 10000, v / 100 % 100, v % 100,
           path);
  return buf;
}
