/*
** test_checkpoint.c -- the checkpoint format (core/checkpoint.c).
**
** XXH64 against the reference implementation's values; a write/read round
** trip of tensors and blobs; then the file damaged every way there is: cut
** at every length, every byte flipped, a wrong version, a hostile header
** that declares more than the file holds, trailing garbage.  Each must be
** refused with a message that names the file.  Last, failed writes leave
** neither a temporary file nor a changed checkpoint behind.
** Exit status 0 when every check passed.
*/
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "testutil.h"

/* The fixture: a 2x3 tensor, a 5-element one, a scalar and a blob. */
static float A[6] = {1, -2, 3.5f, 0, 1e-30f, -7};
static float B[5] = {0.25f, 0.5f, 0.75f, 1, 2};
static float C1[1] = {42};
static const char BLOB[] = "return {epoch = 3, name = \"G\"}";

static gan_status write_fixture(const char *path) {
  gan_ckpt_writer *w;
  gan_status s = gan_ckpt_begin(&w, path, 4);
  if (s != GAN_OK) return s;
  int64_t sa[2] = {2, 3}, sb[1] = {5};
  if ((s = gan_ckpt_put(w, "G/1.weight", GAN_CKPT_TENSOR, 2, sa, A, sizeof A)) != GAN_OK ||
      (s = gan_ckpt_put(w, "G/1.bias", GAN_CKPT_TENSOR, 1, sb, B, sizeof B)) != GAN_OK ||
      (s = gan_ckpt_put(w, "scalar", GAN_CKPT_TENSOR, 0, NULL, C1, sizeof C1)) != GAN_OK ||
      (s = gan_ckpt_put(w, "meta", GAN_CKPT_BLOB, 0, NULL, BLOB, strlen(BLOB))) != GAN_OK) {
    gan_ckpt_abort(w);
    return s;
  }
  return gan_ckpt_commit(w);
}

static void test_xxh64(void) {
  /* values of the reference xxHash (XXH64, seed 0) */
  unsigned char buf[771];
  for (int i = 0; i < 768; i++) buf[i] = (unsigned char)i;
  memcpy(buf + 768, "xyz", 3);
  CHECK(gan_xxh64("", 0, 0) == 0xef46db3751d8e999ULL);
  CHECK(gan_xxh64("abc", 3, 0) == 0x44bc2cf5ad770999ULL);
  CHECK(gan_xxh64(buf, sizeof buf, 0) == 0xe921a1b45bd779f8ULL);
}

static void test_round_trip(void) {
  const char *p = at("a.ckpt");
  CHECK(write_fixture(p) == GAN_OK);
  gan_ckpt c;
  CHECK(gan_ckpt_read(p, &c) == GAN_OK);
  CHECK(c.version == GAN_CKPT_VERSION);
  CHECK(c.count == 4);
  if (c.count != 4) return;
  CHECK(strcmp(c.entries[0].name, "G/1.weight") == 0);
  CHECK(c.entries[0].kind == GAN_CKPT_TENSOR && c.entries[0].ndim == 2);
  CHECK(c.entries[0].shape[0] == 2 && c.entries[0].shape[1] == 3);
  CHECK(memcmp(c.entries[0].data, A, sizeof A) == 0);
  CHECK(c.entries[1].ndim == 1 && c.entries[1].shape[0] == 5);
  CHECK(memcmp(c.entries[1].data, B, sizeof B) == 0);
  CHECK(c.entries[2].ndim == 0 && c.entries[2].nbytes == 4);
  CHECK(*(float *)c.entries[2].data == 42.0f);
  CHECK(c.entries[3].kind == GAN_CKPT_BLOB && c.entries[3].nbytes == strlen(BLOB));
  CHECK(memcmp(c.entries[3].data, BLOB, strlen(BLOB)) == 0);
  gan_ckpt_free(&c);
  CHECK(c.entries == NULL && c.count == 0);
  /* no temporary file is left beside it */
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", p, (long)getpid());
  CHECK(access(tmp, F_OK) != 0);
}

/* Reading must fail, leave *c empty and name the file. */
static int refused(const char *path) {
  gan_ckpt c;
  gan_status s = gan_ckpt_read(path, &c);
  return s != GAN_OK && c.entries == NULL && strstr(gan_errmsg(), path) != NULL;
}

static void test_damage(void) {
  size_t n;
  unsigned char *good = slurp(at("a.ckpt"), &n);
  CHECK(good != NULL && n > 100);
  if (!good) return;
  const char *bad = at("bad.ckpt");
  /* every truncation */
  int all = 1;
  for (size_t len = 0; len < n; len++) {
    spit(bad, good, len);
    if (!refused(bad)) {
      fprintf(stderr, "a checkpoint cut to %zu bytes was accepted\n", len);
      all = 0;
    }
  }
  CHECK(all);
  spit(bad, good, 10);
  CHECK(refused(bad) && strstr(gan_errmsg(), "not a gan checkpoint"));
  spit(bad, good, n - 30);
  CHECK(refused(bad) && strstr(gan_errmsg(), "truncated"));
  /* every flipped byte */
  all = 1;
  for (size_t i = 0; i < n; i++) {
    good[i] ^= 0x10;
    spit(bad, good, n);
    if (!refused(bad)) {
      fprintf(stderr, "a checkpoint with byte %zu changed was accepted\n", i);
      all = 0;
    }
    good[i] ^= 0x10;
  }
  CHECK(all);
  /* a payload byte: the message names the tensor */
  good[n - 41 - strlen(BLOB)] ^= 1; /* the scalar's payload */
  spit(bad, good, n);
  CHECK(refused(bad) && strstr(gan_errmsg(), "'scalar'"));
  good[n - 41 - strlen(BLOB)] ^= 1;
  /* another version */
  good[8] = 7;
  spit(bad, good, n);
  CHECK(refused(bad) && strstr(gan_errmsg(), "version 7"));
  good[8] = GAN_CKPT_VERSION;
  /* a hostile count and a hostile payload size: refused before allocating */
  memcpy(good + 12, "\xff\xff\xff\xff", 4);
  spit(bad, good, n);
  CHECK(refused(bad) && strstr(gan_errmsg(), "cannot fit"));
  memcpy(good + 12, "\x04\x00\x00\x00", 4);
  unsigned char *big = malloc(n);
  memcpy(big, good, n);
  /* entry 1: u16 + 10 name bytes + kind + ndim + 2 dims, then nbytes */
  size_t at_size = 16 + 2 + 10 + 2 + 16;
  memset(big + at_size, 0xff, 8);
  spit(bad, big, n);
  CHECK(refused(bad));
  /* shape and size both huge (and consistent): still refused by the file size */
  size_t at_shape = 16 + 2 + 10 + 2;
  int64_t huge = (int64_t)1 << 19; /* 2^19 x 2^19 floats = 1 TiB */
  for (int k = 0; k < 2; k++)
    for (int b = 0; b < 8; b++) big[at_shape + 8 * k + b] = (unsigned char)(huge >> (8 * b));
  uint64_t nb = (uint64_t)1 << 40;
  for (int b = 0; b < 8; b++) big[at_size + b] = (unsigned char)(nb >> (8 * b));
  spit(bad, big, n);
  CHECK(refused(bad) && strstr(gan_errmsg(), "remain"));
  free(big);
  /* trailing garbage */
  unsigned char *longer = malloc(n + 3);
  memcpy(longer, good, n);
  memcpy(longer + n, "abc", 3);
  spit(bad, longer, n + 3);
  CHECK(refused(bad));
  free(longer);
  /* not a checkpoint at all, a missing file, a folder */
  spit(bad, "hello, this is not a checkpoint at all........", 46);
  CHECK(refused(bad) && strstr(gan_errmsg(), "not a gan checkpoint"));
  CHECK(refused(at("missing.ckpt")));
  CHECK(refused(root));
  free(good);
}

static void test_failed_writes(void) {
  /* a folder that does not exist */
  const char *p = at("nope/x.ckpt");
  gan_ckpt_writer *w = NULL;
  CHECK(gan_ckpt_begin(&w, p, 1) != GAN_OK && w == NULL);
  CHECK(strstr(gan_errmsg(), p) != NULL);
  /* fewer entries than announced: commit fails, the old file stays */
  size_t n0, n1;
  unsigned char *before = slurp(at("a.ckpt"), &n0);
  CHECK(gan_ckpt_begin(&w, at("a.ckpt"), 3) == GAN_OK);
  int64_t s1[1] = {1};
  CHECK(gan_ckpt_put(w, "x", GAN_CKPT_TENSOR, 1, s1, C1, 4) == GAN_OK);
  CHECK(gan_ckpt_commit(w) != GAN_OK);
  unsigned char *after = slurp(at("a.ckpt"), &n1);
  CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
  free(after);
  /* a bad entry, then abort: same */
  CHECK(gan_ckpt_begin(&w, at("a.ckpt"), 1) == GAN_OK);
  int64_t s2[1] = {3};
  CHECK(gan_ckpt_put(w, "x", GAN_CKPT_TENSOR, 1, s2, C1, 4) != GAN_OK); /* 3 floats != 4 bytes */
  CHECK(gan_ckpt_put(w, "", GAN_CKPT_BLOB, 0, NULL, "", 0) != GAN_OK);
  gan_ckpt_abort(w);
  after = slurp(at("a.ckpt"), &n1);
  CHECK(after && n0 == n1 && memcmp(before, after, n0) == 0);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", at("a.ckpt"), (long)getpid());
  CHECK(access(tmp, F_OK) != 0);
  free(before);
  free(after);
  /* an empty checkpoint is valid */
  CHECK(gan_ckpt_begin(&w, at("empty.ckpt"), 0) == GAN_OK);
  CHECK(gan_ckpt_commit(w) == GAN_OK);
  gan_ckpt c;
  CHECK(gan_ckpt_read(at("empty.ckpt"), &c) == GAN_OK && c.count == 0);
  gan_ckpt_free(&c);
}

int main(void) {
  if (make_root("gan_test_checkpoint") != 0) return 2;
  test_xxh64();
  test_round_trip();
  test_damage();
  test_failed_writes();
  return finish();
}
