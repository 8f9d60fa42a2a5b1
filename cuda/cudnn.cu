/*
** cudnn.cu -- loading cuDNN, its handle, and the per-shape plans (see
** cudnn.cuh for why it is loaded at run time and how algorithms are chosen).
**
** The loaded library is process state, like the library itself: one static
** record, filled by the first find_library() call.  Everything else -- the
** handle bound to the context's stream, the plans, the workspace -- lives
** in the context (cuda_ctx.dnn), created at the first convolution.
*/
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "cudnn.cuh"

/* --- the library ------------------------------------------------------------ */

static struct {
  int tried;   /* find_library ran */
  int checked; /* the sub-libraries were checked (dnn_library) */
  void *lib;
  dnn_api api;
  size_t version; /* cudnnGetVersion(): major*10000 + minor*100 + patch */
  char path[512];
  char why[1024];
} loaded;

#define why_add(...) dl_why(loaded.why, sizeof loaded.why, __VA_ARGS__)

/* Tries one file or soname; 1 when it is a usable cuDNN 9. */
static int try_open(const char *name) {
  void *lib = dl_open(name, loaded.why, sizeof loaded.why);
  if (lib == NULL) return 0;
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
  size_t v = a.cudnnGetVersion(), rt = a.cudnnGetCudartVersion();
  if (v / 10000 != CUDNN_MAJOR) {
    why_add("%s is cuDNN %zu.%zu, not %d", name, v / 10000, v / 100 % 100, CUDNN_MAJOR);
    dlclose(lib);
    return 0;
  }
  if (rt / 1000 != CUDART_VERSION / 1000) {
    why_add("%s is the cuDNN for CUDA %zu, but this gan was built with CUDA %d", name,
            rt / 1000, CUDART_VERSION / 1000);
    dlclose(lib);
    return 0;
  }
  loaded.lib = lib;
  loaded.api = a;
  loaded.version = v;
  snprintf(loaded.path, sizeof loaded.path, "%s", name);
  return 1;
}

/* Finds the library (once): its entry points and versions, not yet its
** sub-libraries. */
static void find_library(void) {
  if (!loaded.tried) {
    loaded.tried = 1;
    char name[600];
    const char *env = dl_env_file("GAN_CUDNN", "libcudnn.so.9", name, sizeof name);
    if (env != NULL) { /* the library file, or the folder that holds it: that alone */
      if (!try_open(name)) why_add("(GAN_CUDNN is %s)", env);
    } else {
      (void)(try_open("libcudnn.so.9") ||
             try_open("/usr/local/cuda/lib64/libcudnn.so.9") ||
             try_open("/usr/local/cuda/lib/libcudnn.so.9"));
    }
  }
}

const dnn_api *dnn_library(const char **why) {
  find_library();
  if (loaded.lib != NULL && !loaded.checked) {
    /* the sub-libraries, which cuDNN loads on demand (tens of megabytes,
    ** seconds from a cold disk): each version check loads one */
    loaded.checked = 1;
    const dnn_api *a = &loaded.api;
    cudnnStatus_t s = a->cudnnGraphVersionCheck();
    if (s == CUDNN_STATUS_SUCCESS) s = a->cudnnOpsVersionCheck();
    if (s == CUDNN_STATUS_SUCCESS) s = a->cudnnCnnVersionCheck();
    if (s != CUDNN_STATUS_SUCCESS) {
      why_add("%s: its sub-libraries (libcudnn_graph, _ops, _cnn) do not load or do "
              "not match: %s", loaded.path, a->cudnnGetErrorString(s));
      dlclose(loaded.lib);
      loaded.lib = NULL;
    }
  }
  if (why) *why = loaded.why;
  return loaded.lib ? &loaded.api : NULL;
}

int dnn_ok(cuda_ctx *c, cudnnStatus_t s, const char *what) {
  if (s == CUDNN_STATUS_SUCCESS) return 1;
  const char *fault = cuda_fault_text();
  const char *msg = loaded.lib ? loaded.api.cudnnGetErrorString(s) : "?";
  /* a kernel's fault is not cuDNN's: no fall back to im2col, which would
  ** meet it again */
  c->dnn_status = *fault ? 0 : (int)s;
  cuda_fail(c, GAN_EBACKEND, "%s failed: %s (cudnnStatus_t %d)%s", what, msg, (int)s, fault);
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

void cuda_dnn_trim(cuda_ctx *c) {
  cuda_dnn *n = c->dnn;
  if (n == NULL) return;
  cuda_pool_free(c, n->ws);
  n->ws = NULL;
  n->ws_bytes = 0;
}

void cuda_dnn_release(cuda_ctx *c) {
  cuda_dnn *n = c->dnn;
  if (n == NULL) return;
  for (int i = 0; i < DNN_PLANS; i++)
    if (n->plans[i].used) plan_clear(n->api, &n->plans[i]);
  if (n->handle) n->api->cudnnDestroy(n->handle);
  cuda_dnn_trim(c);
  free(n);
  c->dnn = NULL;
}

/* The context's cuDNN state, created on first use; NULL on failure. */
static cuda_dnn *dnn_get(cuda_ctx *c) {
  if (c->dnn != NULL) return c->dnn;
  const char *why;
  const dnn_api *a = dnn_library(&why);
  if (a == NULL) {
    cuda_fail(c, GAN_EBACKEND, "convolutions on cuda were asked to use cuDNN 9 "
              "(GAN_CUDA_CONV=cudnn or gan_cuda_set_conv), which could not be loaded: "
              "%s. Point GAN_CUDNN at the folder of libcudnn.so.9 (pip's "
              "nvidia-cudnn-cu13 has one), or leave GAN_CUDA_CONV unset to use the "
              "im2col kernels", why);
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
  /* in fp32, FMA math only (CUDNN_DEFAULT_MATH would let cuDNN use TF32
  ** tensor cores on Ampere and later, which is what PyTorch's allow_tf32
  ** asks for); in tf32, tensor-op math, which allows them explicitly */
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

/* One of the heuristics' results, whatever the direction. */
typedef struct dnn_cand {
  int algo;
  size_t memory;        /* the heuristics' estimate of its workspace */
  cudnnMathType_t math;
  int deterministic;
} dnn_cand;

/* The usable results: successful, never ALLOW_CONVERSION (fp16/bf16
** inputs), in the heuristics' order -- except in fp32, where the entries
** listed with tensor-op (TF32) math come last: their algorithm is tried on
** the FMA descriptor, which keeps the kernels FMA (cuDNN answers
** NOT_SUPPORTED where the algorithm has none), so fp32 never lacks a
** candidate because the heuristics labelled them all for tensor ops. */
template <class Perf>
static int usable(const Perf *r, int n, int tf32, dnn_cand *out) {
  int k = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++) {
      if (r[i].status != CUDNN_STATUS_SUCCESS) continue;
      if (r[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
      int late = !tf32 && r[i].mathType == CUDNN_TENSOR_OP_MATH;
      if (late != pass) continue;
      out[k].algo = (int)r[i].algo;
      out[k].memory = r[i].memory;
      out[k].math = late ? CUDNN_FMA_MATH : r[i].mathType;
      out[k].deterministic = r[i].determinism == CUDNN_DETERMINISTIC;
      k++;
    }
  return k;
}

/* The workspace of one algorithm on the plan's descriptors. */
static cudnnStatus_t ws_query(const dnn_api *a, cuda_dnn *n, dnn_plan *p, dnn_dir dir,
                              int algo, size_t *ws) {
  if (dir == DNN_FWD)
    return a->cudnnGetConvolutionForwardWorkspaceSize(
        n->handle, p->x, p->w, p->conv[dir], p->y, (cudnnConvolutionFwdAlgo_t)algo, ws);
  if (dir == DNN_BWD_DATA)
    return a->cudnnGetConvolutionBackwardDataWorkspaceSize(
        n->handle, p->w, p->y, p->conv[dir], p->x, (cudnnConvolutionBwdDataAlgo_t)algo, ws);
  return a->cudnnGetConvolutionBackwardFilterWorkspaceSize(
      n->handle, p->x, p->y, p->conv[dir], p->w, (cudnnConvolutionBwdFilterAlgo_t)algo, ws);
}

/* Tries one candidate: its math type on the direction's descriptor (tf32
** only: fp32 keeps FMA), then its workspace as the documentation asks,
** rather than the estimate (in *ws).  1 if taken; 0 if its workspace is
** over 'limit' or a call failed (then *failed is the failing status and
** *ws is SIZE_MAX). */
static int try_cand(const dnn_api *a, cuda_dnn *n, dnn_plan *p, dnn_dir dir,
                    const dnn_cand *k, size_t limit, cudnnStatus_t *failed, size_t *ws) {
  cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
  if (p->tf32) s = a->cudnnSetConvolutionMathType(p->conv[dir], k->math);
  if (s == CUDNN_STATUS_SUCCESS) s = ws_query(a, n, p, dir, k->algo, ws);
  if (s != CUDNN_STATUS_SUCCESS) {
    *failed = s;
    *ws = SIZE_MAX; /* (a query that failed may have written it) */
    return 0;
  }
  if (*ws > limit) return 0;
  p->algo[dir] = k->algo;
  p->ws[dir] = *ws;
  return 1;
}

/* Chooses the algorithm of one direction; 0 on failure (recorded).  In
** order: the heuristics' first deterministic candidate whose workspace is
** at most DNN_WS_MAX, then the first of any kind within it, then, of those
** whose workspace query succeeded, the one with the smallest workspace
** whatever its size. */
static int plan_choose(cuda_ctx *c, cuda_dnn *n, dnn_plan *p, dnn_dir dir) {
  const dnn_api *a = n->api;
  enum { MAXC = 2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT };
  dnn_cand cand[MAXC];
  int got = 0, nc = 0;
  cudnnStatus_t s;
  const char *what = dir == DNN_FWD ? "cudnnGetConvolutionForwardAlgorithm_v7"
                     : dir == DNN_BWD_DATA ? "cudnnGetConvolutionBackwardDataAlgorithm_v7"
                                           : "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
  /* the heuristics see the precision's math type, not the one a failed
  ** earlier choice left on the descriptor */
  if (!dnn_ok(c, a->cudnnSetConvolutionMathType(p->conv[dir], p->tf32 ? CUDNN_TENSOR_OP_MATH
                                                                      : CUDNN_FMA_MATH),
              "cudnnSetConvolutionMathType"))
    return 0;
  if (dir == DNN_FWD) {
    cudnnConvolutionFwdAlgoPerf_t r[MAXC];
    s = a->cudnnGetConvolutionForwardAlgorithm_v7(n->handle, p->x, p->w, p->conv[dir], p->y,
                                                  MAXC, &got, r);
    if (s == CUDNN_STATUS_SUCCESS) nc = usable(r, got, p->tf32, cand);
  } else if (dir == DNN_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t r[MAXC];
    s = a->cudnnGetConvolutionBackwardDataAlgorithm_v7(n->handle, p->w, p->y, p->conv[dir],
                                                       p->x, MAXC, &got, r);
    if (s == CUDNN_STATUS_SUCCESS) nc = usable(r, got, p->tf32, cand);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t r[MAXC];
    s = a->cudnnGetConvolutionBackwardFilterAlgorithm_v7(n->handle, p->x, p->y,
                                                         p->conv[dir], p->w, MAXC, &got, r);
    if (s == CUDNN_STATUS_SUCCESS) nc = usable(r, got, p->tf32, cand);
  }
  if (!dnn_ok(c, s, what)) return 0;
  cudnnStatus_t failed = CUDNN_STATUS_SUCCESS;
  size_t ws[MAXC]; /* each candidate's queried workspace; SIZE_MAX: failed */
  for (int i = 0; i < nc; i++) ws[i] = SIZE_MAX;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < nc; i++)
      if ((pass == 1 || cand[i].deterministic) &&
          try_cand(a, n, p, dir, &cand[i], DNN_WS_MAX, &failed, &ws[i]))
        return 1;
  int best = -1;
  for (int i = 0; i < nc; i++)
    if (ws[i] != SIZE_MAX && (best < 0 || ws[i] < ws[best])) best = i;
  if (best >= 0 && try_cand(a, n, p, dir, &cand[best], SIZE_MAX, &failed, &ws[best])) return 1;
  if (failed != CUDNN_STATUS_SUCCESS) return dnn_ok(c, failed, what);
  const gan_conv2d_desc *d = &p->d;
  c->dnn_status = CUDNN_STATUS_NOT_SUPPORTED; /* chosen before any work */
  cuda_fail(c, GAN_EBACKEND, "%s: no usable algorithm for x %dx%dx%dx%d, weight "
            "%dx%dx%dx%d, stride %d, padding %d (%d candidates, %d usable)", what, d->B,
            d->C, d->H, d->W, d->K, d->C, d->R, d->S, d->stride, d->pad, got, nc);
  return 0;
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
  if (!cuda_pool_grow(c, &n->ws, &n->ws_bytes, p->ws[dir], "cuDNN workspace")) return NULL;
  return p;
}

/* --- gan_cuda.h ------------------------------------------------------------- */

/* "9.19.0" if a cuDNN 9 for this CUDA was found, without the version
** checks that load its ops and cnn sub-libraries (for `gan --version`,
** which should stay quick; cudnnGetVersion itself loads the graph one, a
** few megabytes); NULL if none, or if a full check has failed.  Sets no
** error. */
const char *cuda_cudnn_brief(void) {
  static char buf[32];
  find_library();
  if (loaded.lib == NULL) return NULL;
  size_t v = loaded.version;
  snprintf(buf, sizeof buf, "%zu.%zu.%zu", v / 10000, v / 100 % 100, v % 100);
  return buf;
}

extern "C" const char *gan_cuda_cudnn(void) {
  static char buf[600];
  const char *why;
  if (dnn_library(&why) == NULL) {
    gan_error(GAN_EBACKEND, "cuDNN 9 could not be loaded: %s", why);
    return NULL;
  }
  snprintf(buf, sizeof buf, "cuDNN %s (%s)", cuda_cudnn_brief(), loaded.path);
  return buf;
}
