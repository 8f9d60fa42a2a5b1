/*
** tests/malloc_count.c -- counts every heap allocation a program makes, in
** any library and any thread (Lua, the engine, OpenBLAS, OpenMP, libc), for
** spec/alloc_spec.lua:
**
**   LD_PRELOAD=build/tests/libmalloc_count.so gan spec/support/heap_steps.lua N
**
** prints "malloc_count N" on stderr at exit: the calls to malloc, calloc,
** realloc, memalign, posix_memalign, aligned_alloc, valloc and pvalloc.  Two
** runs that differ only in their number of training steps must print the
** same number.  This is valgrind's "total heap usage: N allocs" at native
** speed: a function defined here comes before glibc's, and calls glibc's
** own __libc_* entry points, which need no dlsym (itself a caller of calloc).
** glibc only.
*/
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static atomic_ullong count;

void *malloc(size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_malloc(n);
}
void *calloc(size_t k, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_calloc(k, n);
}
void *realloc(void *p, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_realloc(p, n);
}
void *memalign(size_t a, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_memalign(a, n);
}
void *aligned_alloc(size_t a, size_t n) { return memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
  if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
  void *q = memalign(a, n);
  if (q == NULL && n != 0) return ENOMEM;
  *p = q;
  return 0;
}
void *valloc(size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_valloc(n);
}
void *pvalloc(size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_pvalloc(n);
}

/* at exit (main returned or exit() was called), without allocating */
__attribute__((destructor)) static void report(void) {
  char buf[64];
  int len = snprintf(buf, sizeof buf, "malloc_count %llu\n", (unsigned long long)count);
  if (len > 0) (void)!write(2, buf, (size_t)len);
}
