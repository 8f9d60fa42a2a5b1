/*
** cudnn.cuh -- cuDNN for the convolutions: the library's entry points,
** loaded at run time, and the per-shape plans that conv.cu runs.
**
** Why at run time (dlopen) and not linked: cuDNN 9 is about a gigabyte of
** libraries that a dense GAN never touches, that a machine with CUDA may
** lack (a GPU box with only the driver and cuBLAS) or keep elsewhere (the
** nvidia-cudnn-cu13 wheel inside a Python environment).  Linked, a missing
** libcudnn.so.9 would stop `gan` from starting at all; loaded at the first
** convolution, only the convolutions fail, with a message saying what was
** tried.  The types come from cudnn.h at build time; only the functions are
** looked up, each checked; the loaded library must be cuDNN 9 (the major
** version the header describes), built for this CUDA major version, and
** its sub-libraries (graph, ops, cnn: loaded by cuDNN on demand) must load
** and agree, which their version checks force without a GPU.  The engine
** and heuristic libraries (libcudnn_engines_*, _heuristic) are loaded by
** cuDNN at the first heuristics call or convolution: a missing one fails
** there, with cuDNN's error, and under auto the convolutions fall back to
** im2col (conv.cu).
**
** Where it looks, in order:
**   $GAN_CUDNN            the library file, or the folder that holds it
**                          (then that alone is tried);
**   libcudnn.so.9         the loader's search (LD_LIBRARY_PATH, ldconfig);
**   /usr/local/cuda/lib64/libcudnn.so.9, /usr/local/cuda/lib/libcudnn.so.9.
**
** A plan is everything cuDNN needs for one gan_conv2d_desc at one precision:
** the tensor, filter and convolution descriptors and, per direction
** (forward, backward data, backward filter), the algorithm, chosen once by
** cuDNN's heuristics (cudnnGet*Algorithm_v7) the first time that direction
** runs (plan_choose in cudnn.cu).  The choice prefers deterministic
** algorithms (the rest of the engine is deterministic run to run) with a
** workspace of at most DNN_WS_MAX.  In fp32 the descriptors carry
** CUDNN_FMA_MATH, never changed: CUDNN_DEFAULT_MATH would let cuDNN use
** TF32 tensor cores on Ampere and later.  In tf32 they carry the chosen
** candidate's math type (CUDNN_TENSOR_OP_MATH while the heuristics run).
** The one workspace is kept in the context and only grows, so steady-state
** training allocates nothing.
*/
#ifndef GAN_CUDA_CUDNN_CUH
#define GAN_CUDA_CUDNN_CUH

#include <cudnn.h>

#include "common.cuh"

/* every function we use, each looked up by name in the loaded library */
#define DNN_FUNCS(X)                                                             \
  X(cudnnGetVersion) X(cudnnGetCudartVersion) X(cudnnGraphVersionCheck)         \
  X(cudnnOpsVersionCheck) X(cudnnCnnVersionCheck)                                \
  X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy)                          \
  X(cudnnSetStream) X(cudnnCreateTensorDescriptor) X(cudnnSetTensor4dDescriptor) \
  X(cudnnDestroyTensorDescriptor) X(cudnnCreateFilterDescriptor)                 \
  X(cudnnSetFilter4dDescriptor) X(cudnnDestroyFilterDescriptor)                  \
  X(cudnnCreateConvolutionDescriptor) X(cudnnSetConvolution2dDescriptor)         \
  X(cudnnSetConvolutionMathType) X(cudnnDestroyConvolutionDescriptor)            \
  X(cudnnGetConvolutionForwardAlgorithm_v7)                                      \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7)                                 \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)                              \
  X(cudnnGetConvolutionForwardWorkspaceSize)                                     \
  X(cudnnGetConvolutionBackwardDataWorkspaceSize)                                \
  X(cudnnGetConvolutionBackwardFilterWorkspaceSize) X(cudnnConvolutionForward)   \
  X(cudnnConvolutionBackwardData) X(cudnnConvolutionBackwardFilter)

typedef struct dnn_api {
#define DNN_MEMBER(f) decltype(&::f) f;
  DNN_FUNCS(DNN_MEMBER)
#undef DNN_MEMBER
} dnn_api;

/* workspace limit for one algorithm (larger ones are passed over) */
#define DNN_WS_MAX ((size_t)256 << 20)
#define DNN_PLANS 32 /* shapes kept; the least recently used is replaced */

typedef enum dnn_dir { DNN_FWD = 0, DNN_BWD_DATA = 1, DNN_BWD_FILTER = 2 } dnn_dir;

typedef struct dnn_plan {
  gan_conv2d_desc d;
  int tf32;                  /* the precision it was made for */
  unsigned long long used;   /* last use (the context's clock); 0: empty slot */
  cudnnTensorDescriptor_t x; /* (B, C, H, W) */
  cudnnTensorDescriptor_t y; /* (B, K, P, Q) */
  cudnnFilterDescriptor_t w; /* (K, C, R, S) */
  cudnnConvolutionDescriptor_t conv[3]; /* per direction: its math type */
  int algo[3];               /* per direction; -1 until chosen */
  size_t ws[3];              /* workspace bytes of that algorithm */
} dnn_plan;

/* The part of the context that cudnn.cu owns (cuda_ctx.dnn). */
typedef struct cuda_dnn {
  const dnn_api *api;
  cudnnHandle_t handle; /* bound to the context's stream */
  dnn_plan plans[DNN_PLANS];
  unsigned long long clock;
  void *ws;             /* the workspace, from the pool */
  size_t ws_bytes;
} cuda_dnn;

/* The loaded library, its sub-libraries checked, or NULL with *why (if
** not NULL) saying what was tried and why each failed.  Loaded once per
** process; later calls return the same answer.  Needs no GPU (it does not
** create a handle). */
const dnn_api *dnn_library(const char **why);

/* The plan for d in direction dir at the context's precision, its algorithm
** chosen and the context's workspace at least that algorithm's; creates the
** cuDNN handle on first use.  NULL on failure, recorded in the context. */
dnn_plan *dnn_plan_for(cuda_ctx *c, const gan_conv2d_desc *d, dnn_dir dir);

/* 1 if s is CUDNN_STATUS_SUCCESS, else the failure, naming 'what', is
** recorded in the context and 0. */
int dnn_ok(cuda_ctx *c, cudnnStatus_t s, const char *what);

#endif
