/*
** blas.cu -- loading cuBLAS at run time.
**
** Why not linked: libcublas.so.13 pulls in libcublasLt.so.13, over half a
** gigabyte whose relocations the loader processed at every start of a
** linked gan -- 0.17 s and 220 MB of memory before the first line of a
** script, on the CPU as much as on a GPU.  Loaded here, the first time the
** CUDA backend is created (so only when a GPU is there), a CPU run starts
** as fast as a CPU-only build, and a gan built with CUDA starts on a
** machine without cuBLAS at all: only the CUDA backend fails, with a
** message that says where it looked.
**
** Where it looks, in order:
**   $GAN_CUBLAS          the library file, or the folder that holds it (then
**                        that alone is tried);
**   the program itself   when cuBLAS is already in the process (a host that
**                        linked or loaded it; the host emulator, tests/emu,
**                        which defines these functions);
**   libcublas.so.13      the loader's search (LD_LIBRARY_PATH, ldconfig);
**   the toolkit's library folder that gan was built against (GAN_CUBLAS_DIR),
**   /usr/local/cuda/lib64 and /usr/local/cuda/lib.
** The library must be the cuBLAS major version of the headers gan was built
** with (cublasGetProperty, which needs no GPU).  libcublasLt comes along by
** libcublas's own search path ($ORIGIN in the toolkit).
**
** The loaded library is process state, like the library itself: one static
** record, filled by the first blas_library() call.  The handle, stream and
** workspace live in the context (backend.cu).
*/
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "common.cuh"
#include "gan_cuda.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define BLAS_SONAME "libcublas.so." STR(CUBLAS_VER_MAJOR)

static struct {
  int tried;
  void *lib; /* dlopen's handle; RTLD_DEFAULT when found in the program */
  int found;
  blas_api api;
  int version[3]; /* major, minor, patch */
  char path[512];
  char why[1024];
} loaded;

#define why_add(...) dl_why(loaded.why, sizeof loaded.why, __VA_ARGS__)

/* Looks every entry point up in 'lib' (a dlopen handle or RTLD_DEFAULT) and
** checks the version; 1 when it is a usable cuBLAS.  'name' is for the
** messages.  'quiet': a missing first entry point is not worth a message
** (the program itself, which usually has no cuBLAS in it). */
static int take(void *lib, const char *name, int quiet) {
  blas_api a;
  int first = 1;
#define BLAS_LOOKUP(m, f)                                     \
  a.m = (decltype(a.m))dlsym(lib, #f);                        \
  if (a.m == NULL) {                                          \
    if (!(quiet && first)) why_add("%s lacks %s", name, #f);  \
    return 0;                                                 \
  }                                                           \
  first = 0;
  BLAS_FUNCS(BLAS_LOOKUP)
#undef BLAS_LOOKUP
  int v[3] = {0, 0, 0};
  if (a.get_property(MAJOR_VERSION, &v[0]) != CUBLAS_STATUS_SUCCESS ||
      a.get_property(MINOR_VERSION, &v[1]) != CUBLAS_STATUS_SUCCESS ||
      a.get_property(PATCH_LEVEL, &v[2]) != CUBLAS_STATUS_SUCCESS) {
    why_add("%s: cublasGetProperty failed", name);
    return 0;
  }
  if (v[0] != CUBLAS_VER_MAJOR) {
    why_add("%s is cuBLAS %d.%d, but this gan was built with cuBLAS %d", name, v[0], v[1],
            CUBLAS_VER_MAJOR);
    return 0;
  }
  loaded.api = a;
  memcpy(loaded.version, v, sizeof v);
  snprintf(loaded.path, sizeof loaded.path, "%s", name);
  loaded.found = 1;
  return 1;
}

/* Tries one file or soname; 1 when it is a usable cuBLAS. */
static int try_open(const char *name) {
  void *lib = dl_open(name, loaded.why, sizeof loaded.why);
  if (lib == NULL) return 0;
  if (!take(lib, name, 0)) {
    dlclose(lib);
    return 0;
  }
  loaded.lib = lib;
  return 1;
}

static void find_library(void) {
  if (loaded.tried) return;
  loaded.tried = 1;
  char name[600];
  const char *env = dl_env_file("GAN_CUBLAS", BLAS_SONAME, name, sizeof name);
  if (env != NULL) { /* the library file, or the folder that holds it: that alone */
    if (!try_open(name)) why_add("(GAN_CUBLAS is %s)", env);
    return;
  }
  if (take(RTLD_DEFAULT, "this program", 1)) {
    loaded.lib = RTLD_DEFAULT;
    return;
  }
  if (try_open(BLAS_SONAME)) return;
#ifdef GAN_CUBLAS_DIR
  if (strcmp(GAN_CUBLAS_DIR, "/usr/local/cuda/lib64") != 0 &&
      strcmp(GAN_CUBLAS_DIR, "/usr/local/cuda/lib") != 0 &&
      try_open(GAN_CUBLAS_DIR "/" BLAS_SONAME))
    return;
#endif
  if (try_open("/usr/local/cuda/lib64/" BLAS_SONAME)) return;
  if (try_open("/usr/local/cuda/lib/" BLAS_SONAME)) return;
  why_add("set GAN_CUBLAS to %s or the folder that holds it", BLAS_SONAME);
}

const blas_api *blas_library(void) {
  find_library();
  if (!loaded.found) {
    gan_error(GAN_EBACKEND, "cuBLAS %d could not be loaded: %s", CUBLAS_VER_MAJOR,
              loaded.why);
    return NULL;
  }
  return &loaded.api;
}

const char *cuda_cublas_brief(void) {
  static char buf[48];
  if (blas_library() == NULL) return NULL;
  snprintf(buf, sizeof buf, "%d.%d.%d", loaded.version[0], loaded.version[1],
           loaded.version[2]);
  return buf;
}

extern "C" const char *gan_cuda_cublas(void) {
  static char buf[600];
  const char *v = cuda_cublas_brief();
  if (v == NULL) return NULL;
  snprintf(buf, sizeof buf, "cuBLAS %s (%s)", v, loaded.path);
  return buf;
}
