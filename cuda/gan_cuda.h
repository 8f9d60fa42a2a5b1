/*
** gan_cuda.h -- the few things only the CUDA backend has, for the bindings
** and the tests.  Declared only when the CUDA backend is built
** (GAN_HAVE_CUDA); everything else goes through backend.h.
*/
#ifndef GAN_CUDA_H
#define GAN_CUDA_H

#include <stddef.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Precision of the cuBLAS products (matmul, linear): "fp32" (the default:
** full float32, results within rounding of the CPU) or "tf32" (tensor cores
** with 10-bit mantissas on the inputs, float32 accumulation: several times
** faster on Ampere and Hopper, relative errors around 1e-3).  Creates the
** backend if needed; GAN_EBACKEND if there is no GPU, GAN_EARG for another
** mode. */
gan_status gan_cuda_set_precision(const char *mode);

/* The pool's counters: bytes handed out, bytes held from the driver, and
** cudaMalloc calls so far (constant in steady-state training).  Any pointer
** may be NULL. */
gan_status gan_cuda_memory_stats(size_t *in_use, size_t *reserved,
                                 size_t *n_malloc);

/* Returns the pool's cached (free) blocks to the driver, after waiting for
** the queued work. */
gan_status gan_cuda_empty_cache(void);

/* How the convolutions run: "auto" (the default: cuDNN if it can be
** loaded, else im2col), "cudnn" (cuDNN or an error) or "im2col" (our
** kernels and cuBLAS, no cuDNN).  The environment variable GAN_CUDA_CONV
** sets the same at start-up.  GAN_EARG for another mode. */
gan_status gan_cuda_set_conv(const char *mode);

/* The most memory the im2col path's workspace may take (default 256 MiB):
** a batch whose unfolded images need more runs in blocks of samples, one
** product per block.  At least one sample's worth is always taken. */
gan_status gan_cuda_set_conv_workspace(size_t bytes);

/* 1 when the driver reports a CUDA GPU, whether or not the backend could be
** set up on it (no cuBLAS, say); 0 otherwise.  Creates nothing. */
int gan_cuda_gpu_found(void);

/* cuBLAS, which the matrix products run on: "cuBLAS 13.0.2 (libcublas.so.13)"
** once the library loads (blas.cu says where it looks; GAN_CUBLAS
** overrides), else NULL with the reason as gan_errmsg().  Needs no GPU. */
const char *gan_cuda_cublas(void);

/* cuDNN, which the convolutions run on: "cuDNN 9.19.0 (libcudnn.so.9)"
** once the library loads (cudnn.cuh says where it looks; GAN_CUDNN
** overrides), else NULL with the reason as gan_errmsg().  Needs no GPU:
** it loads the library but creates nothing on a device. */
const char *gan_cuda_cudnn(void);

/* In "auto" mode a cuDNN call that fails (an algorithm its heuristics
** offered that does not run, say) moves the convolutions to im2col, where
** the same call is made again, rather than failing the run.  The first call
** after that returns cuDNN's failure, once, for a warning; NULL otherwise. */
const char *gan_cuda_conv_fallback(void);

#ifdef __cplusplus
}
#endif

#endif
