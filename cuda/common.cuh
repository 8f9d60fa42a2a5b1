/*
** common.cuh -- what the files of the CUDA backend share.
**
** The backend's whole state is one cuda_ctx, reached through the 'ctx' of
** struct gan_backend: the stream every operation is queued on, the cuBLAS
** handle and its workspace, the caching memory pool, the scratch that the
** reductions write their partial sums into, and the device buffers that
** gather_rows and adam_step upload their small host arrays into.  Nothing
** lives in globals but the one backend instance pointer (backend.cu).
**
** Errors.  The slots that return void cannot report a failure, so they
** record it in the context (the first one wins: it is the cause) and the
** next slot that returns a status -- synchronize, to_host, sum -- returns
** it, then clears it so that a REPL can go on after a recoverable error.
** A fault inside a kernel (an illegal address) surfaces only there anyway,
** and it poisons the CUDA context for good: every later call fails too.
**
** Every kernel is launched on ctx->stream; ordering on that one stream is
** what makes reusing a freed pool block, the scratch and the upload buffers
** safe without any synchronisation.
*/
#ifndef GAN_CUDA_COMMON_CUH
#define GAN_CUDA_COMMON_CUH

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "status.h"
#include "backend.h"
}

/* --- memory pool (memory.cu) ------------------------------------------------
** Size classes: multiples of 256 B up to 1 MiB (4096 classes), then eight
** steps per power of two (at most 12.5% waste).  A freed block goes on the
** free list of its class and is handed out again for any request that
** rounds to the same class, so steady-state training allocates nothing
** from the driver. */
#define POOL_SMALL_MAX ((size_t)1 << 20)
#define POOL_SMALL_STEP ((size_t)256)
#define POOL_NSMALL 4096
#define POOL_NCLASSES (POOL_NSMALL + 8 * 44)
#define POOL_HASH 4096 /* buckets of the in-use table, keyed by pointer */

typedef struct pool_block {
  void *ptr;
  size_t size; /* the rounded size actually allocated */
  int cls;
  struct pool_block *next;
} pool_block;

typedef struct cuda_pool {
  pool_block *free_list[POOL_NCLASSES]; /* cached blocks, by class */
  pool_block *used[POOL_HASH];          /* blocks handed out, by pointer */
  pool_block *spare;                    /* recycled list nodes */
  size_t reserved;                      /* bytes obtained from cudaMalloc */
  size_t in_use;                        /* bytes handed out */
  size_t n_malloc;                      /* cudaMalloc calls so far */
} cuda_pool;

/* --- Adam descriptors (adam.cu) ---------------------------------------------
** One entry per tensor of a gan_adam_group; the kernel finds its tensor from
** its block index through chunk0, the index of the tensor's first chunk. */
typedef struct adam_desc {
  float *p, *g, *m, *v;
  unsigned long long size;   /* floats */
  unsigned long long chunk0; /* first chunk (block) of this tensor */
} adam_desc;

/* Device copies of recent groups' descriptors: a training loop alternates a
** few optimizers (D's and G's), each re-uploaded only when its pointers
** change. */
#define ADAM_CACHE 8
typedef struct adam_entry {
  int count;                  /* 0: unused slot */
  adam_desc *host;            /* what was uploaded */
  adam_desc *dev;             /* pool memory, 'cap' descriptors */
  int cap;
  unsigned long long nchunks; /* blocks of the launch */
  unsigned long long used_at; /* for least-recently-used replacement */
} adam_entry;

/* --- uploads (memory.cu) ------------------------------------------------------
** The small host arrays an op sends with its launch go through pinned
** staging memory, a ring of UPLOAD_SLOTS buffers with an event each. */
#define UPLOAD_SLOTS 8
typedef struct upload_slot {
  void *host;       /* pinned */
  size_t bytes;
  cudaEvent_t done; /* recorded after the copy that last read 'host' */
} upload_slot;

/* --- libraries loaded at run time (dl.cu) -----------------------------------
** 'why' collects the failed tries, "; " between them. */
/* Appends "; " and the formatted text to 'why' (of 'size' bytes). */
void dl_why(char *why, size_t size, const char *fmt, ...) GAN_PRINTF(3, 4);
/* dlopen(name) for its symbols alone; NULL with dlerror()'s words in 'why'. */
void *dl_open(const char *name, char *why, size_t size);
/* The environment variable 'var' names a library file or the folder that
** holds 'soname': the file to try, in buf; returns the variable's value,
** or NULL when it is not set (or empty). */
const char *dl_env_file(const char *var, const char *soname, char *buf, size_t size);

/* --- cuBLAS, loaded at run time (blas.cu says why and where) --------------
** Each entry point is looked up by its exported name: cublas_v2.h's
** cublasCreate and the like are macros for the _v2 symbols. */
#define BLAS_FUNCS(X)                                                         \
  X(get_property, cublasGetProperty) X(create, cublasCreate_v2)              \
  X(destroy, cublasDestroy_v2) X(set_stream, cublasSetStream_v2)             \
  X(set_workspace, cublasSetWorkspace_v2) X(set_math_mode, cublasSetMathMode) \
  X(sgemm, cublasSgemm_v2) X(status_name, cublasGetStatusName)               \
  X(status_string, cublasGetStatusString)

typedef struct blas_api {
#define BLAS_MEMBER(m, f) decltype(&::f) m;
  BLAS_FUNCS(BLAS_MEMBER)
#undef BLAS_MEMBER
} blas_api;

/* The library, found and checked the first time; NULL with the places it
** tried as gan_errmsg() when there is none.  Needs no GPU. */
const blas_api *blas_library(void);
/* "13.0.2", or NULL as blas_library */
const char *cuda_cublas_brief(void);

/* --- the context --------------------------------------------------------- */
#define REDUCE_THREADS 256
#define REDUCE_MAX_BLOCKS 1024 /* partial sums of one reduction */
/* the scratch: a reduction's partials and result, or two sums per part of a
** per-channel reduction (CHANNEL_MAX_PARTS, below) */
#define SCRATCH_DOUBLES 4096

typedef struct cuda_ctx {
  int device;
  char gpu_name[256];
  int cc_major, cc_minor, sm_count;

  cudaStream_t stream;
  const struct blas_api *cublas; /* the loaded library's entry points (blas.cu) */
  cublasHandle_t blas;
  void *blas_ws; /* cuBLAS workspace, from the pool */
  size_t blas_ws_bytes;
  int tf32;      /* 1 once gan_cuda_set_precision("tf32") */

  gan_status status; /* sticky failure of a void slot, GAN_OK if none */
  char errmsg[1024];

  cuda_pool pool;
  size_t tensor_bytes, tensor_peak; /* through the alloc slot, for mem_stats */

  double *scratch; /* SCRATCH_DOUBLES: a reduction's partials and result,
                   ** or the sums of a per-channel reduction's parts */

  void *idx;         /* gather_rows' indices on the device (int64_t) */
  size_t idx_bytes;
  upload_slot upload[UPLOAD_SLOTS]; /* cuda_upload's staging ring */
  int upload_next;

  adam_entry adam[ADAM_CACHE];
  unsigned long long adam_clock;

  int conv_impl;        /* CONV_AUTO, CONV_CUDNN or CONV_IM2COL (conv.cu) */
  char dnn_fallback[1024]; /* why AUTO left cuDNN for im2col ("" if it has not) */
  int dnn_fallback_said;   /* gan_cuda_conv_fallback has returned it */
  int dnn_status;          /* the failing cudnnStatus_t of the operation that
                           ** failed; 0 if it was not cuDNN's (conv.cu) */
  struct cuda_dnn *dnn; /* cuDNN's handle, plans and workspace (cudnn.cu);
                        ** NULL until the first convolution */
  void *col_ws;         /* im2col.cu's workspace, from the pool */
  size_t col_ws_bytes;
  size_t col_ws_max;    /* the most it may take, in floats (blocks of samples) */
  void *aug;            /* augment2d's per-sample parameters on the device */
  size_t aug_bytes;
} cuda_ctx;

/* --- errors (backend.cu) ------------------------------------------------ */
/* Records a failure as the context's sticky status (if none is pending) and
** as the thread's gan_error message. */
void cuda_fail(cuda_ctx *c, gan_status s, const char *fmt, ...) GAN_PRINTF(3, 4);
/* 1 if 'e' is cudaSuccess, else cuda_fail naming 'what' and 0; clears the
** runtime's last error so that it is not reported twice. */
int cuda_ok(cuda_ctx *c, cudaError_t e, const char *what);
int blas_ok(cuda_ctx *c, cublasStatus_t s, const char *what);
/* After a failed cuBLAS or cuDNN call: the fault of a kernel that ran (an
** illegal address, say), which a library often reports first as its own
** failure, as "; cudaErrorIllegalAddress: a fault of ..." to append to the
** message; "" if none.  Reads (and so clears) cudaGetLastError. */
const char *cuda_fault_text(void);
/* after a kernel launch: the launch's error, if any */
int launch_ok(cuda_ctx *c, const char *kernel);
/* The sticky status, reported through gan_error and cleared; GAN_OK if none. */
gan_status cuda_take_status(cuda_ctx *c);
/* gan_error for a failed runtime call, without touching the sticky status:
** for the slots that return their status directly. */
gan_status cuda_status(cudaError_t e, const char *what);

/* --- pool (memory.cu) --------------------------------------------------- */
void *cuda_pool_alloc(cuda_ctx *c, size_t bytes);
/* Returns the block's (rounded) size, 0 for NULL or an unknown pointer
** (recorded as the sticky failure). */
size_t cuda_pool_free(cuda_ctx *c, void *ptr);
/* A buffer of the context that only grows (the gather indices, the
** augmentation parameters, the convolutions' workspaces): *buf of *bytes
** becomes a block of at least 'need' bytes, the old one going back to the
** pool (queued work that uses it runs first; the contents are not kept).
** 0 if that failed, recorded naming 'what'; the old buffer then stays. */
int cuda_pool_grow(cuda_ctx *c, void **buf, size_t *bytes, size_t need, const char *what);
/* Queues a copy of 'bytes' of host memory to the device buffer 'dst' and
** returns without waiting for the stream: through the staging ring, since
** from pageable memory cudaMemcpyAsync may wait for the stream (CUDA's "API
** synchronization behavior").  'src' may be reused at once.  A slot is
** reused UPLOAD_SLOTS uploads later, once its event says its copy is done
** (by then it long is).  0 on failure, recorded naming 'what'. */
int cuda_upload(cuda_ctx *c, void *dst, const void *src, size_t bytes, const char *what);
void cuda_upload_release(cuda_ctx *c);
/* Returns the cached (free) blocks to the driver; the caller has made sure
** that no queued work still uses them. */
void cuda_pool_trim(cuda_ctx *c);
/* Returns every block, in use or not: the backend is going away. */
void cuda_pool_release_all(cuda_ctx *c);

/* --- reductions (elementwise.cu) ------------------------------------------
** A reduction is a partial kernel that leaves one double per block in
** c->scratch[0 .. nblocks) (grid of reduce_blocks(n), REDUCE_THREADS each),
** then reduce_finish: one block adds the partials in a fixed order and
** writes scale * sum to c->scratch[REDUCE_MAX_BLOCKS] and, if out_f is not
** NULL, as a float to *out_f (device memory).  Returns 0 on failure
** (recorded in the context). */
int reduce_finish(cuda_ctx *c, int nblocks, double scale, float *out_f);

/* --- launch geometry ------------------------------------------------------ */
#define EW_THREADS 256
#define EW_MAX_BLOCKS 16384 /* grid-stride loops cover the rest */

static inline unsigned ew_blocks(size_t n) {
  size_t b = (n + EW_THREADS - 1) / EW_THREADS;
  return (unsigned)(b < EW_MAX_BLOCKS ? b : EW_MAX_BLOCKS);
}

static inline int reduce_blocks(size_t n) {
  size_t b = (n + REDUCE_THREADS - 1) / REDUCE_THREADS;
  return (int)(b < REDUCE_MAX_BLOCKS ? b : REDUCE_MAX_BLOCKS);
}

/* Grid-stride loop over [0, n) with a 64-bit index. */
#define GRID_LOOP(i, n)                                                      \
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);    \
       i += (size_t)blockDim.x * gridDim.x)

/* Sum of 'v' over the block, returned to every thread.  blockDim.x must be
** a multiple of 32 (at most 1024) and every thread of the block must call
** it.  The first barrier lets a second call reuse the shared words safely;
** the order of the additions is fixed, so results are deterministic. */
static __device__ __forceinline__ double block_sum(double v) {
  __shared__ double warp_part[32];
  __shared__ double total;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) warp_part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < (int)(blockDim.x >> 5) ? warp_part[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

/* --- activations (activation.cu, and linear.cu's fused one) ---------------- */
/* sigmoid without overflow: exp of a non-positive number only */
static __device__ __forceinline__ float sigmoid_value(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  const float e = expf(x);
  return e / (1.0f + e);
}

/* act(x), for a gan_act: the branch is the same for a whole launch */
static __device__ __forceinline__ float act_value(int act, float alpha, float x) {
  switch (act) {
  case GAN_ACT_RELU: return x > 0.0f ? x : 0.0f;
  case GAN_ACT_LEAKY_RELU: return x > 0.0f ? x : alpha * x;
  case GAN_ACT_SIGMOID: return sigmoid_value(x);
  case GAN_ACT_TANH: return tanhf(x);
  default: return x; /* identity */
  }
}

/* dy * act'(x), element i: relu and leaky_relu read x, sigmoid and tanh the
** forward output y (activation.cu, and linear.cu's fused backward, which
** must give the same values) */
static __device__ __forceinline__ float act_grad(int act, float alpha, float dy,
                                                 const float *x, const float *y, size_t i) {
  switch (act) {
  case GAN_ACT_RELU: return x[i] > 0.0f ? dy : 0.0f;
  case GAN_ACT_LEAKY_RELU: return x[i] > 0.0f ? dy : alpha * dy;
  case GAN_ACT_SIGMOID: { const float v = y[i]; return dy * v * (1.0f - v); }
  case GAN_ACT_TANH: { const float v = y[i]; return dy * (1.0f - v * v); }
  default: return dy; /* identity */
  }
}

/* --- per-channel reductions (batchnorm.cu, conv.cu) --------------------------
** Value j of channel c of a (B, C, S) tensor, j = b*S + k in [0, N = B*S),
** lies at b*C*S + k from the channel's first value.  A channel is cut
** into 'parts' runs of 'chunk' consecutive values, each run walked by one
** block: one block per channel would leave most of the GPU idle when the
** channels are few and long (a DCGAN's 64 channels of 64 x 32 x 32 at
** batch 64).  A channel gets as many parts of CHANNEL_PART_LEN values as
** it takes to cover it, within two caps: at most CHANNEL_MAX_PARTS blocks a
** launch (the scratch), and at most CHANNEL_PARTS_EACH parts a channel
** (every block of the second kernel reads all its channel's sums).  A
** launch has C * parts blocks, channel-major (block i: channel i / parts,
** part i % parts).  The cut depends on the shape alone, never on the GPU,
** so the order of the additions, and so the result, is the same on every
** card.  With one part a kernel takes its channel whole; with more, a first
** kernel leaves each part's sums in the scratch and a second adds them up
** in a fixed order. */
#define CHANNEL_PART_LEN 2048   /* values a part holds, unless a cap makes it more */
#define CHANNEL_MAX_PARTS 2048  /* C * parts at most, when parts > 1 */
#define CHANNEL_PARTS_EACH 256  /* parts of one channel at most */
static_assert(SCRATCH_DOUBLES >= 2 * CHANNEL_MAX_PARTS &&
                  SCRATCH_DOUBLES >= REDUCE_MAX_BLOCKS + 1,
              "the scratch holds a reduction's partials or two sums per part");

typedef struct channel_split {
  int parts;
  size_t chunk; /* values a part holds (at most CHANNEL_PART_LEN unless a
                ** cap applies); the last one may hold fewer */
} channel_split;

/* C > 0; N = 0 gives one empty part */
static inline channel_split channel_split_for(int C, size_t N) {
  if (N == 0) {
    channel_split none = {1, 0};
    return none;
  }
  size_t p = (N + CHANNEL_PART_LEN - 1) / CHANNEL_PART_LEN;
  size_t cap = C < CHANNEL_MAX_PARTS ? (size_t)(CHANNEL_MAX_PARTS / C) : 1;
  if (cap > CHANNEL_PARTS_EACH) cap = CHANNEL_PARTS_EACH;
  if (p > cap) p = cap;
  const size_t chunk = (N + p - 1) / p;
  channel_split s = {(int)((N + chunk - 1) / chunk), chunk}; /* no part is empty */
  return s;
}

/* This block's channel and part, and the part's values [j0, j1) */
typedef struct channel_part {
  int c, p;
  size_t j0, j1;
} channel_part;

static __device__ __forceinline__ channel_part part_of_block(channel_split sp, size_t N) {
  channel_part r;
  r.c = (int)(blockIdx.x / (unsigned)sp.parts);
  r.p = (int)(blockIdx.x % (unsigned)sp.parts);
  r.j0 = (size_t)r.p * sp.chunk;
  r.j1 = r.j0 + sp.chunk < N ? r.j0 + sp.chunk : N;
  return r;
}

/* how many values part p holds */
static __device__ __forceinline__ size_t part_size(channel_split sp, size_t N, int p) {
  const size_t j0 = (size_t)p * sp.chunk;
  return (j0 + sp.chunk < N ? j0 + sp.chunk : N) - j0;
}

/* Calls f(offset) for this thread's share of the channel values [j0, j1):
** j = j0 + threadIdx.x, + blockDim.x, ...  (b, k) advances by (T / S, T % S)
** with one carry, which spares a 64-bit division per value. */
template <class F>
static __device__ __forceinline__ void for_channel(int S, size_t CS, size_t j0, size_t j1,
                                                   F f) {
  const int T = blockDim.x, sb = T / S, sk = T % S;
  size_t j = j0 + threadIdx.x;
  if (j >= j1) return;
  int b = (int)(j / (size_t)S), k = (int)(j % (size_t)S);
  for (; j < j1; j += (size_t)T) {
    f((size_t)b * CS + k);
    k += sk;
    b += sb;
    if (k >= S) {
      k -= S;
      b++;
    }
  }
}

/* --- the slots, one family per file ------------------------------------- */
/* memory.cu */
void *cuda_alloc(void *ctx, size_t bytes);
void cuda_free(void *ctx, void *ptr);
gan_status cuda_to_host(void *ctx, float *dst_host, const float *src, size_t n);
gan_status cuda_from_host(void *ctx, float *dst, const float *src_host, size_t n);
void cuda_copy(void *ctx, float *dst, const float *src, size_t n);
gan_status cuda_synchronize(void *ctx);
void cuda_mem_stats(void *ctx, gan_mem_stats *out);
gan_status cuda_reader_new(void *ctx, void **rd);
void cuda_reader_free(void *ctx, void *rd);
gan_status cuda_reader_start(void *ctx, void *rd, const float *const *src,
                             const size_t *counts, int n);
int cuda_reader_ready(void *ctx, void *rd);
gan_status cuda_reader_wait(void *ctx, void *rd, float *dst, size_t total);
/* elementwise.cu */
void cuda_fill(void *ctx, float *x, float value, size_t n);
void cuda_axpby(void *ctx, float *y, float a, const float *x, float b, size_t n);
void cuda_mul(void *ctx, float *y, const float *a, const float *b, size_t n);
gan_status cuda_sum(void *ctx, const float *x, size_t n, double *out);
void cuda_sum_to(void *ctx, float *out, const float *x, size_t n, double scale);
void cuda_gather_rows(void *ctx, float *dst, const float *src, const int64_t *idx,
                      int64_t nrows, int64_t cols);
/* random.cu */
void cuda_randn(void *ctx, float *x, size_t n, uint64_t key, float mean, float std);
void cuda_rand(void *ctx, float *x, size_t n, uint64_t key, float lo, float hi);
void cuda_dropout_forward(void *ctx, float *y, float *mask, const float *x,
                          size_t n, float p, uint64_t key);
/* matmul.cu */
void cuda_matmul(void *ctx, int ta, int tb, int M, int N, int K, float alpha,
                 const float *A, const float *B, float beta, float *C);
/* Column-major cublasSgemm with the k == 0 and empty cases handled. */
void cuda_gemm(cuda_ctx *c, cublasOperation_t opa, cublasOperation_t opb,
               int m, int n, int k, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);
/* linear.cu */
void cuda_linear_forward(void *ctx, float *out, const float *inp,
                         const float *weight, const float *bias, int B, int C, int OC);
void cuda_linear_backward(void *ctx, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight,
                          int B, int C, int OC, int overwrite);
void cuda_linear_act_forward(void *ctx, float *out, float *y, const float *inp,
                             const float *weight, const float *bias, gan_act act,
                             float alpha, int B, int C, int OC);
void cuda_linear_act_backward(void *ctx, gan_act act, float alpha, float *dz,
                              const float *dy, const float *z, const float *y, float *dinp,
                              float *dweight, float *dbias, const float *inp,
                              const float *weight, int B, int C, int OC, int overwrite);
/* activation.cu */
void cuda_act_forward(void *ctx, gan_act act, float alpha, float *y,
                      const float *x, size_t n);
void cuda_act_backward(void *ctx, gan_act act, float alpha, float *dx,
                       const float *dy, const float *x, const float *y, size_t n);
/* batchnorm.cu */
void cuda_batchnorm_forward(void *ctx, float *y, float *mean, float *rstd,
                            float *run_mean, float *run_var, const float *x,
                            const float *gamma, const float *beta, int B, int C,
                            int S, float momentum, float eps, int training);
void cuda_batchnorm_backward(void *ctx, float *dx, float *dgamma, float *dbeta,
                             const float *dy, const float *x, const float *gamma,
                             const float *mean, const float *rstd, int B, int C,
                             int S, int training, int overwrite);
/* bce.cu */
void cuda_bce_forward(void *ctx, float *loss, const float *pred,
                      const float *target, size_t n, int logits);
void cuda_bce_backward(void *ctx, float *dpred, const float *pred,
                       const float *target, size_t n, int logits);
/* adam.cu */
void cuda_adam_step(void *ctx, const gan_adam_group *g);
void cuda_adam_release(cuda_ctx *c);
/* conv.cu: cuDNN (cudnn.cu) when it loads, else im2col.cu; the choice */
enum { CONV_AUTO = 0, CONV_CUDNN = 1, CONV_IM2COL = 2 };
#define COL_WS_DEFAULT ((size_t)64 << 20) /* im2col's workspace cap, floats (256 MiB) */
/* "auto", "cudnn" or "im2col" as CONV_*; -1 for anything else */
int cuda_conv_mode(const char *mode);
void cuda_conv2d_workspace(void *ctx, const gan_conv2d_desc *d, size_t *batched,
                           size_t *minimum);
void cuda_conv2d_forward(void *ctx, float *y, const float *x, const float *weight,
                         const float *bias, const gan_conv2d_desc *d, float *ws,
                         size_t ws_n);
void cuda_conv2d_backward(void *ctx, float *dx, float *dweight, float *dbias,
                          const float *dy, const float *x, const float *weight,
                          const gan_conv2d_desc *d, float *ws, size_t ws_n);
void cuda_conv_transpose2d_forward(void *ctx, float *x, const float *y,
                                   const float *weight, const float *bias,
                                   const gan_conv2d_desc *d, float *ws, size_t ws_n);
void cuda_conv_transpose2d_backward(void *ctx, float *dy, float *dweight, float *dbias,
                                    const float *dx, const float *y, const float *weight,
                                    const gan_conv2d_desc *d, float *ws, size_t ws_n);
/* im2col.cu: the three operations of one convolution (conv.cu's table);
** 0 after a failure (recorded) */
int im2col_forward(cuda_ctx *c, const gan_conv2d_desc *d, float *y, const float *x,
                   const float *w, const float *bias);
int im2col_backward_data(cuda_ctx *c, const gan_conv2d_desc *d, float *x, const float *y,
                         const float *w, const float *bias);
int im2col_backward_filter(cuda_ctx *c, const gan_conv2d_desc *d, float *dw,
                           const float *x, const float *y);
/* conv.cu: the convolutions' workspaces back to the pool */
void cuda_conv_trim(cuda_ctx *c);
/* cudnn.cu: frees the cuDNN handle, the plans and the workspace; or only
** the workspace */
void cuda_dnn_release(cuda_ctx *c);
void cuda_dnn_trim(cuda_ctx *c);
/* cudnn.cu: "9.19.0" when a cuDNN 9 is found, else NULL; quick, sets no error */
const char *cuda_cudnn_brief(void);
/* augment.cu */
void cuda_augment2d(void *ctx, float *y, const float *x, const float *params, int B,
                    int C, int H, int W, int adjoint);

#endif
