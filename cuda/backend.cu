/*
** backend.cu -- the CUDA backend's instance, its error reporting, and the
** three functions that core/nocuda.c defines when CUDA is not built.
**
** One instance per process, created on the first gan_backend_cuda() call:
** device 0 (CUDA_VISIBLE_DEVICES picks which one that is), a non-blocking
** stream, cuBLAS (loaded then, see blas.cu) and a handle bound to that
** stream with a workspace from our pool (so that cuBLAS allocates nothing
** behind the pool's back), and the reduction scratch.  On a machine without
** a GPU or a driver the first call returns NULL with a message and prints
** nothing; so does every later one.
** The instance is never destroyed: the driver reclaims it at exit, and
** tearing cuBLAS down from an atexit handler after the driver can crash.
**
** Not thread-safe, like the rest of the engine: one Lua state drives it.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "gan_cuda.h"

/* cuBLAS asks for 32 MiB of workspace on Hopper (cuBLAS docs, "cuBLAS
** workspace"); smaller works, at some cost in the kernels it may pick. */
#define BLAS_WORKSPACE ((size_t)32 << 20)

/* The one global: the lazily created instance. */
static gan_backend *instance;

typedef struct cuda_backend {
  gan_backend be; /* first, so that a gan_backend* is a cuda_backend* */
  cuda_ctx ctx;
} cuda_backend;

/* --- errors --------------------------------------------------------------- */

void cuda_fail(cuda_ctx *c, gan_status s, const char *fmt, ...) {
  char buf[sizeof c->errmsg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (c != NULL && c->status == GAN_OK) { /* keep the first: the cause */
    c->status = s;
    memcpy(c->errmsg, buf, sizeof buf);
  }
  gan_error(s, "%s", buf);
}

/* A fault of a kernel that ran (an illegal address, say) is reported by
** whichever call comes next, and by every call after it: the message says
** so, since the call it names is seldom the cause. */
static const char *fault_note(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress: case cudaErrorLaunchTimeout: case cudaErrorAssert:
    case cudaErrorHardwareStackError: case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress: case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc: case cudaErrorLaunchFailure:
      return "; a fault of this or of earlier GPU work, which leaves the GPU unusable "
             "until the program ends: CUDA_LAUNCH_BLOCKING=1 names the kernel";
    default:
      return "";
  }
}

int cuda_ok(cuda_ctx *c, cudaError_t e, const char *what) {
  if (e == cudaSuccess) return 1;
  (void)cudaGetLastError(); /* consumed: not to be reported again */
  cuda_fail(c, GAN_EBACKEND, "%s failed: %s (%s)%s", what, cudaGetErrorString(e),
            cudaGetErrorName(e), fault_note(e));
  return 0;
}

const char *cuda_fault_text(void) {
  static char buf[300];
  cudaError_t e = cudaGetLastError();
  if (*fault_note(e) == '\0') return "";
  snprintf(buf, sizeof buf, "; %s: %s", cudaGetErrorName(e), fault_note(e) + 2);
  return buf;
}

int blas_ok(cuda_ctx *c, cublasStatus_t s, const char *what) {
  if (s == CUBLAS_STATUS_SUCCESS) return 1;
  /* (the context has cuBLAS before any cuBLAS call: cuda_init) */
  cuda_fail(c, GAN_EBACKEND, "%s failed: %s (%s)%s", what, c->cublas->status_name(s),
            c->cublas->status_string(s), cuda_fault_text());
  return 0;
}

int launch_ok(cuda_ctx *c, const char *kernel) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return 1;
  cuda_fail(c, GAN_EBACKEND, "launch of %s failed: %s (%s)%s", kernel,
            cudaGetErrorString(e), cudaGetErrorName(e), fault_note(e));
  return 0;
}

gan_status cuda_take_status(cuda_ctx *c) {
  gan_status s = c->status;
  if (s == GAN_OK) return GAN_OK;
  c->status = GAN_OK;
  return gan_error(s, "%s", c->errmsg);
}

gan_status cuda_status(cudaError_t e, const char *what) {
  (void)cudaGetLastError();
  return gan_error(GAN_EBACKEND, "%s failed: %s (%s)%s", what, cudaGetErrorString(e),
                   cudaGetErrorName(e), fault_note(e));
}

/* --- creation ------------------------------------------------------------- */

/* Frees what cuda_create got so far (pointers left zero are skipped). */
static void cuda_destroy(cuda_backend *cb) {
  cuda_ctx *c = &cb->ctx;
  if (c->stream) cudaStreamSynchronize(c->stream);
  if (c->blas) c->cublas->destroy(c->blas);
  cuda_adam_release(c);
  cuda_upload_release(c);
#if GAN_HAVE_CUDNN
  cuda_dnn_release(c);
#endif
  cuda_pool_release_all(c);
  if (c->stream) cudaStreamDestroy(c->stream);
  (void)cudaGetLastError();
  free(cb);
}

static void fill_iface(gan_backend_i *f) {
  f->name = "cuda";
  f->alloc = cuda_alloc;
  f->free = cuda_free;
  f->to_host = cuda_to_host;
  f->from_host = cuda_from_host;
  f->copy = cuda_copy;
  f->synchronize = cuda_synchronize;
  f->fill = cuda_fill;
  f->axpby = cuda_axpby;
  f->mul = cuda_mul;
  f->sum = cuda_sum;
  f->sum_to = cuda_sum_to;
  f->gather_rows = cuda_gather_rows;
  f->randn = cuda_randn;
  f->rand = cuda_rand;
  f->matmul = cuda_matmul;
  f->linear_forward = cuda_linear_forward;
  f->linear_backward = cuda_linear_backward;
  f->act_forward = cuda_act_forward;
  f->linear_act_forward = cuda_linear_act_forward;
  f->act_backward = cuda_act_backward;
  f->linear_act_backward = cuda_linear_act_backward;
  f->dropout_forward = cuda_dropout_forward;
  f->batchnorm_forward = cuda_batchnorm_forward;
  f->batchnorm_backward = cuda_batchnorm_backward;
  f->bce_forward = cuda_bce_forward;
  f->bce_backward = cuda_bce_backward;
  f->adam_step = cuda_adam_step;
  f->mem_stats = cuda_mem_stats;
  f->reader_new = cuda_reader_new;
  f->reader_free = cuda_reader_free;
  f->reader_start = cuda_reader_start;
  f->reader_ready = cuda_reader_ready;
  f->reader_wait = cuda_reader_wait;
  f->augment2d = cuda_augment2d;
  f->conv2d_workspace = cuda_conv2d_workspace;
  f->conv2d_forward = cuda_conv2d_forward;
  f->conv2d_backward = cuda_conv2d_backward;
  f->conv_transpose2d_forward = cuda_conv_transpose2d_forward;
  f->conv_transpose2d_backward = cuda_conv_transpose2d_backward;
}

/* Sets up the context; 0 with the failure's message on failure. */
static int cuda_init(cuda_ctx *c) {
  cudaDeviceProp prop;
  c->device = 0;
  if (!cuda_ok(c, cudaSetDevice(c->device), "cudaSetDevice") ||
      !cuda_ok(c, cudaGetDeviceProperties(&prop, c->device), "cudaGetDeviceProperties"))
    return 0;
  snprintf(c->gpu_name, sizeof c->gpu_name, "%s", prop.name);
  c->cc_major = prop.major;
  c->cc_minor = prop.minor;
  c->sm_count = prop.multiProcessorCount;
  c->cublas = blas_library();
  if (c->cublas == NULL) {
    cuda_fail(c, GAN_EBACKEND, "%s", gan_errmsg());
    return 0;
  }
  const blas_api *b = c->cublas;
  if (!cuda_ok(c, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking),
               "cudaStreamCreateWithFlags") ||
      !blas_ok(c, b->create(&c->blas), "cublasCreate") ||
      !blas_ok(c, b->set_stream(c->blas, c->stream), "cublasSetStream") ||
      !blas_ok(c, b->set_math_mode(c->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode"))
    return 0;
  /* after cublasSetStream, which resets the workspace to cuBLAS's own */
  c->blas_ws_bytes = BLAS_WORKSPACE;
  c->blas_ws = cuda_pool_alloc(c, c->blas_ws_bytes);
  if (c->blas_ws == NULL ||
      !blas_ok(c, b->set_workspace(c->blas, c->blas_ws, c->blas_ws_bytes),
               "cublasSetWorkspace"))
    return 0;
  c->scratch = (double *)cuda_pool_alloc(c, SCRATCH_DOUBLES * sizeof(double));
  /* the convolutions: GAN_CUDA_CONV=cudnn|im2col|auto (conv.cu); the
  ** default, or an unknown value, is auto */
  int m = cuda_conv_mode(getenv("GAN_CUDA_CONV"));
  c->conv_impl = m < 0 ? CONV_AUTO : m;
  c->col_ws_max = COL_WS_DEFAULT;
  return c->scratch != NULL;
}

/* Why cudaGetDeviceCount gave no GPU, in words: without a driver the
** runtime says "CUDA driver version is insufficient", which on a machine
** with no GPU at all misleads. */
static const char *no_gpu_reason(cudaError_t e, char *buf, size_t size) {
  int driver = 0;
  if (e == cudaErrorNoDevice) return "no CUDA GPU found";
  if (e == cudaErrorInsufficientDriver) {
    if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0)
      return "no NVIDIA driver installed";
    snprintf(buf, size, "the NVIDIA driver supports CUDA %d.%d, older than the CUDA %d.%d "
             "that gan was built with: update the driver", driver / 1000,
             driver % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    return buf;
  }
  snprintf(buf, size, "no usable CUDA GPU: %s", cudaGetErrorString(e));
  return buf;
}

/* Whether the driver reports a GPU: cudaSuccess, or why not (no GPU at all
** is cudaErrorNoDevice); the runtime's last error is cleared. */
static cudaError_t find_gpu(void) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e == cudaSuccess && n == 0) e = cudaErrorNoDevice;
  if (e != cudaSuccess) (void)cudaGetLastError();
  return e;
}

static gan_backend *cuda_create(void) {
  char why[160];
  cudaError_t e = find_gpu();
  if (e != cudaSuccess) {
    gan_error(GAN_EBACKEND, "%s", no_gpu_reason(e, why, sizeof why));
    return NULL;
  }
  cuda_backend *cb = (cuda_backend *)calloc(1, sizeof *cb);
  if (cb == NULL) {
    gan_error(GAN_ENOMEM, "out of host memory for the CUDA backend");
    return NULL;
  }
  if (!cuda_init(&cb->ctx)) {
    /* keep the message of the failure, not of the clean-up */
    char msg[sizeof cb->ctx.errmsg];
    snprintf(msg, sizeof msg, "%s", gan_errmsg());
    cuda_destroy(cb);
    gan_error(GAN_EBACKEND, "CUDA backend initialisation: %s", msg);
    return NULL;
  }
  cb->ctx.status = GAN_OK; /* nothing pending */
  fill_iface(&cb->be.iface);
  cb->be.ctx = &cb->ctx;
  return &cb->be;
}

/* --- the functions core/nocuda.c stands in for ------------------------------ */

extern "C" gan_backend *gan_backend_cuda(void) {
  if (instance == NULL) instance = cuda_create();
  return instance;
}

extern "C" const char *gan_backends_built(void) { return "cpu, cuda"; }

extern "C" int gan_cuda_gpu_found(void) { return find_gpu() == cudaSuccess; }

#if !GAN_HAVE_CUDNN
extern "C" const char *gan_cuda_cudnn(void) {
  gan_error(GAN_EBACKEND, "this gan was built without cuDNN (GAN_USE_CUDNN=OFF, or "
                          "no cudnn.h), so CUDA convolutions run on its im2col kernels");
  return NULL;
}
#endif

/* "cuBLAS 13.0.2", or that there is none, for the line below when a GPU is
** there (without one the backend never loads it). */
static const char *cublas_short(void) {
  static char s[64];
  const char *v = cuda_cublas_brief();
  if (v == NULL) return "cuBLAS not found";
  snprintf(s, sizeof s, "cuBLAS %s", v);
  return s;
}

/* "cuDNN 9.19.0", or that there is none, for the line below: the library
** is found, its sub-libraries are not loaded (seconds from a cold disk;
** the first convolution or gan.cudnn() checks them). */
static const char *cudnn_short(void) {
#if GAN_HAVE_CUDNN
  static char s[64];
  const char *v = cuda_cudnn_brief();
  if (v == NULL) return "cuDNN not found: convolutions on im2col";
  snprintf(s, sizeof s, "cuDNN %s", v);
  return s;
#else
  return "built without cuDNN: convolutions on im2col";
#endif
}

/* Answers without creating the backend (no context, no cuBLAS handle), so
** that `gan --version` stays quick.  The buffer is rewritten by each call. */
extern "C" const char *gan_backends_describe(void) {
  static char buf[512];
  if (instance != NULL) {
    const cuda_ctx *c = (const cuda_ctx *)instance->ctx;
    snprintf(buf, sizeof buf, "backends: cpu, cuda (GPU: %s, sm_%d%d; %s; %s)", c->gpu_name,
             c->cc_major, c->cc_minor, cublas_short(), cudnn_short());
    return buf;
  }
  cudaError_t e = find_gpu();
  cudaDeviceProp prop;
  if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, 0);
  if (e != cudaSuccess) {
    char why[160];
    (void)cudaGetLastError();
    snprintf(buf, sizeof buf, "backends: cpu, cuda (%s; %s)", no_gpu_reason(e, why, sizeof why),
             cudnn_short());
  } else {
    snprintf(buf, sizeof buf, "backends: cpu, cuda (GPU: %s, sm_%d%d; %s; %s)", prop.name,
             prop.major, prop.minor, cublas_short(), cudnn_short());
  }
  return buf;
}

/* --- gan_cuda.h ------------------------------------------------------------- */

static cuda_ctx *cuda_instance_ctx(void) {
  gan_backend *be = gan_backend_cuda();
  return be ? (cuda_ctx *)be->ctx : NULL;
}

extern "C" gan_status gan_cuda_set_precision(const char *mode) {
  int tf32;
  if (mode != NULL && strcmp(mode, "fp32") == 0) tf32 = 0;
  else if (mode != NULL && strcmp(mode, "tf32") == 0) tf32 = 1;
  else
    return gan_error(GAN_EARG, "bad precision '%s' (expected 'fp32' or 'tf32')",
                     mode ? mode : "(null)");
  cuda_ctx *c = cuda_instance_ctx();
  if (c == NULL) return GAN_EBACKEND; /* message already set */
  cublasStatus_t s = c->cublas->set_math_mode(
      c->blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  if (s != CUBLAS_STATUS_SUCCESS)
    return gan_error(GAN_EBACKEND, "cublasSetMathMode failed: %s",
                     c->cublas->status_name(s));
  c->tf32 = tf32;
  return GAN_OK;
}

extern "C" gan_status gan_cuda_memory_stats(size_t *in_use, size_t *reserved,
                                            size_t *n_malloc) {
  cuda_ctx *c = cuda_instance_ctx();
  if (c == NULL) return GAN_EBACKEND;
  if (in_use) *in_use = c->pool.in_use;
  if (reserved) *reserved = c->pool.reserved;
  if (n_malloc) *n_malloc = c->pool.n_malloc;
  return GAN_OK;
}

extern "C" gan_status gan_cuda_set_conv(const char *mode) {
  int m = cuda_conv_mode(mode);
  if (m < 0)
    return gan_error(GAN_EARG, "bad convolution mode '%s' (expected 'auto', 'cudnn' or "
                     "'im2col')", mode ? mode : "(null)");
  if (m == CONV_CUDNN && !GAN_HAVE_CUDNN)
    return gan_error(GAN_EBACKEND, "convolution mode 'cudnn': this gan was built without "
                     "cuDNN (GAN_USE_CUDNN=OFF, or no cudnn.h)");
  cuda_ctx *c = cuda_instance_ctx();
  if (c == NULL) return GAN_EBACKEND;
  c->conv_impl = m;
  return GAN_OK;
}

extern "C" const char *gan_cuda_conv_fallback(void) {
  if (instance == NULL) return NULL; /* (no backend is made to ask) */
  cuda_ctx *c = (cuda_ctx *)instance->ctx;
  if (c->dnn_fallback[0] == '\0' || c->dnn_fallback_said) return NULL;
  c->dnn_fallback_said = 1;
  return c->dnn_fallback;
}

extern "C" gan_status gan_cuda_set_conv_workspace(size_t bytes) {
  cuda_ctx *c = cuda_instance_ctx();
  if (c == NULL) return GAN_EBACKEND;
  c->col_ws_max = bytes / sizeof(float);
  return GAN_OK;
}

extern "C" gan_status gan_cuda_empty_cache(void) {
  cuda_ctx *c = cuda_instance_ctx();
  if (c == NULL) return GAN_EBACKEND;
  cudaError_t e = cudaStreamSynchronize(c->stream);
  if (e != cudaSuccess) return cuda_status(e, "cudaStreamSynchronize");
  cuda_conv_trim(c);
  cuda_pool_trim(c);
  return cuda_take_status(c);
}
