/*
** testutil.h -- what the C tests that write files share: CHECK and its
** counts, a fresh mkdtemp folder ('root') and paths in it, whole-file reads
** and writes, and the closing summary.  Header-only: each test is one file
** (define _XOPEN_SOURCE 700 before any include, for mkdtemp and nftw).
*/
#ifndef GAN_TESTUTIL_H
#define GAN_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (cond)                                                             \
      passed++;                                                           \
    else {                                                                \
      failed++;                                                           \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,    \
              #cond);                                                     \
    }                                                                     \
  } while (0)

static char root[256]; /* the test's mkdtemp folder */

/* Makes root: $TMPDIR (else /tmp) / <name>_XXXXXX.  0 on success. */
static inline int make_root(const char *name) {
  const char *t = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/%s_XXXXXX", t ? t : "/tmp", name);
  if (mkdtemp(root) == NULL) {
    perror("mkdtemp");
    return -1;
  }
  return 0;
}

/* root/<rel>, in one of two static buffers: copy it to keep it. */
static inline const char *at(const char *rel) {
  static char buf[2][512];
  static int k;
  k ^= 1;
  snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
  return buf[k];
}

/* The whole file, malloc'd (one spare byte), or NULL if it cannot be read. */
static inline unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc(*n + 1);
  if (p && fread(p, 1, *n, f) != *n) {
    free(p);
    p = NULL;
  }
  fclose(f);
  return p;
}

/* Writes a fixture; a fixture that cannot be written is not a test result. */
static inline void spit(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n) {
    fprintf(stderr, "cannot write fixture '%s'\n", path);
    exit(2);
  }
  fclose(f);
}

static inline int rm_one(const char *p, const struct stat *st, int flag,
                         struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(p);
}

/* Removes root (depth-first, not following symlinks), prints the counts,
** and returns main's status. */
static inline int finish(void) {
  if (nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "could not remove '%s'\n", root);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

#endif
