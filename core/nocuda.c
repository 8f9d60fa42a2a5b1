/*
** nocuda.c -- what the core says about CUDA when it was built without it
** (no nvcc found, or -DGAN_CUDA=OFF).  cuda/ defines these when it is built.
*/
#include "backend.h"

gan_backend *gan_backend_cuda(void) {
  gan_error(GAN_EBACKEND, "the CUDA backend is not built into this gan "
                          "(rebuild on a machine with nvcc, GAN_CUDA=ON)");
  return NULL;
}

const char *gan_backends_built(void) { return "cpu"; }

const char *gan_backends_describe(void) { return "backends: cpu (CUDA not built)"; }
