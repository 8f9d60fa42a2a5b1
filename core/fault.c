/*
** fault.c -- write-failure injection (see fault.h).
*/
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

/* The limit for 'path': GAN_FAULT_WRITE_AFTER when set (and the path
** contains GAN_FAULT_WRITE_MATCH, if that is set), else UINT64_MAX. */
static uint64_t limit_for(const char *path) {
  const char *after = getenv("GAN_FAULT_WRITE_AFTER");
  if (after == NULL || *after == '\0') return UINT64_MAX;
  const char *match = getenv("GAN_FAULT_WRITE_MATCH");
  if (match && *match && strstr(path, match) == NULL) return UINT64_MAX;
  char *end;
  unsigned long long n = strtoull(after, &end, 10);
  return *end == '\0' ? (uint64_t)n : UINT64_MAX;
}

int gan_wfile_open(gan_wfile *w, const char *path) {
  w->written = 0;
  w->limit = limit_for(path);
  w->f = fopen(path, "wb");
  return w->f != NULL;
}

size_t gan_fault_fwrite(gan_wfile *w, const void *p, size_t n) {
  size_t allowed = n;
  if (w->written >= w->limit)
    allowed = 0;
  else if (w->limit - w->written < n)
    allowed = (size_t)(w->limit - w->written);
  size_t done = allowed ? fwrite(p, 1, allowed, w->f) : 0;
  w->written += done;
  if (done == allowed && allowed < n) errno = ENOSPC; /* the injected fault */
  return done;
}
