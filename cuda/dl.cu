/*
** dl.cu -- finding a library at run time: what blas.cu (cuBLAS) and
** cudnn.cu (cuDNN) share.  Each keeps its own list of places, its checks
** of what it found, and the text of every failed try, which becomes the
** error message when no place gave a usable library.
*/
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.cuh"

void dl_why(char *why, size_t size, const char *fmt, ...) {
  size_t n = strlen(why);
  if (n > 0 && n + 2 < size) {
    memcpy(why + n, "; ", 3);
    n += 2;
  }
  if (n + 1 >= size) return; /* full: the first tries are the telling ones */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why + n, size - n, fmt, ap);
  va_end(ap);
}

void *dl_open(const char *name, char *why, size_t size) {
  dlerror();
  void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    const char *e = dlerror(); /* it names the file */
    if (e) dl_why(why, size, "%s", e);
    else dl_why(why, size, "%s: not found", name);
  }
  return lib;
}

const char *dl_env_file(const char *var, const char *soname, char *buf, size_t size) {
  const char *env = getenv(var);
  if (env == NULL || env[0] == '\0') return NULL;
  struct stat st;
  if (stat(env, &st) == 0 && S_ISDIR(st.st_mode))
    snprintf(buf, size, "%s/%s", env, soname);
  else
    snprintf(buf, size, "%s", env);
  return env;
}
