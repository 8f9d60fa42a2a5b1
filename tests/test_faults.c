/*
** test_faults.c -- hostile inputs and failing writes, at the C level.
**
**   - writes that fail part way (GAN_FAULT_WRITE_AFTER, core/fault.h, as a
**     full disk would): a checkpoint and a PNG grid, cut at many lengths;
**     each must fail naming the file, leave the previous file byte for byte
**     and no temporary file;
**   - the temporary files of killed writers are removed by the next write;
**   - the in-memory readers give the file readers' answers;
**   - images that reach known faults of stb_image 2.27, or would make it
**     allocate far more than their pixels (decompression bombs), are
**     refused with a reason; valid odd ones (1x1) load;
**   - host allocations too large for the tensor cap, or for the machine,
**     fail with a message and leave the tensor empty.
** Exit status 0 when every check passed.
*/
#define _XOPEN_SOURCE 700 /* mkdtemp, setenv */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "backend.h"
#include "checkpoint.h"
#include "image.h"
#include "tensor.h"
#include "testutil.h"

static int same_file(const char *path, const unsigned char *want, size_t n) {
  size_t got_n;
  unsigned char *got = slurp(path, &got_n);
  int same = got && got_n == n && memcmp(got, want, n) == 0;
  free(got);
  return same;
}

/* Whether any "<path>.tmp-..." is left in root. */
static int tmp_left(const char *name) {
  char cmd[700];
  snprintf(cmd, sizeof cmd, "ls '%s' | grep -q '^%s\\.tmp'", root, name);
  return system(cmd) == 0;
}

/* --- checkpoints ---------------------------------------------------------- */

static gan_status write_ckpt(const char *path, float v) {
  static float big[4096];
  for (int i = 0; i < 4096; i++) big[i] = v + (float)i;
  gan_ckpt_writer *w;
  gan_status s = gan_ckpt_begin(&w, path, 2);
  if (s != GAN_OK) return s;
  int64_t shape[2] = {64, 64};
  if ((s = gan_ckpt_put(w, "meta", GAN_CKPT_BLOB, 0, NULL, "return {}", 9)) != GAN_OK ||
      (s = gan_ckpt_put(w, "w", GAN_CKPT_TENSOR, 2, shape, big, sizeof big)) != GAN_OK) {
    gan_ckpt_abort(w);
    return s;
  }
  return gan_ckpt_commit(w);
}

static void test_ckpt_disk_full(void) {
  char p[512];
  snprintf(p, sizeof p, "%s", at("run.ckpt"));
  CHECK(write_ckpt(p, 1.0f) == GAN_OK);
  size_t n;
  unsigned char *good = slurp(p, &n);
  CHECK(good != NULL && n > 16384);
  if (!good) return;
  /* cut at every interesting length: in the header, an entry, a payload,
  ** the trailer, and just short of the end */
  size_t cuts[] = {0, 1, 15, 16, 40, 100, 5000, n - 17, n - 1};
  int ok = 1;
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    char v[32];
    snprintf(v, sizeof v, "%zu", cuts[i]);
    setenv("GAN_FAULT_WRITE_AFTER", v, 1);
    gan_status s = write_ckpt(p, 2.0f);
    if (s != GAN_OK && strstr(gan_errmsg(), p) != NULL &&
        strstr(gan_errmsg(), "No space left on device") != NULL &&
        same_file(p, good, n) && !tmp_left("run.ckpt"))
      continue;
    ok = 0;
    fprintf(stderr, "cut at %zu: status %d, '%s'\n", cuts[i], (int)s, gan_errmsg());
  }
  CHECK(ok);
  /* the whole file fits: the write goes through */
  char all[32];
  snprintf(all, sizeof all, "%zu", n);
  setenv("GAN_FAULT_WRITE_AFTER", all, 1);
  CHECK(write_ckpt(p, 3.0f) == GAN_OK);
  /* the match limits the fault to other files */
  setenv("GAN_FAULT_WRITE_AFTER", "0", 1);
  setenv("GAN_FAULT_WRITE_MATCH", "other.ckpt", 1);
  CHECK(write_ckpt(p, 4.0f) == GAN_OK);
  CHECK(write_ckpt(at("other.ckpt"), 4.0f) != GAN_OK);
  unsetenv("GAN_FAULT_WRITE_AFTER");
  unsetenv("GAN_FAULT_WRITE_MATCH");
  gan_ckpt c;
  CHECK(gan_ckpt_read(p, &c) == GAN_OK);
  CHECK(c.count == 2 && ((float *)c.entries[1].data)[0] == 4.0f);
  gan_ckpt_free(&c);
  free(good);
}

/* A killed writer's temporary file goes at the next write, once its process
** is gone and it has not changed for a minute; a live one's stays. */
static void test_stale_tmp(void) {
  char p[512];
  snprintf(p, sizeof p, "%s", at("stale.ckpt"));
  FILE *f = fopen(at("stale.ckpt.tmp-999999999"), "wb");
  if (f) fclose(f);
  f = fopen(at("stale.ckpt.tmp-1"), "wb"); /* pid 1 is alive */
  if (f) fclose(f);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "touch -d '2 hours ago' '%s/stale.ckpt.tmp-999999999' "
           "'%s/stale.ckpt.tmp-1'", root, root);
  CHECK(system(cmd) == 0);
  CHECK(write_ckpt(p, 1.0f) == GAN_OK);
  CHECK(access(at("stale.ckpt.tmp-999999999"), F_OK) != 0);
  CHECK(access(at("stale.ckpt.tmp-1"), F_OK) == 0);
}

static void test_ckpt_memory(void) {
  size_t n;
  unsigned char *good = slurp(at("run.ckpt"), &n);
  CHECK(good != NULL);
  if (!good) return;
  gan_ckpt c;
  CHECK(gan_ckpt_read_memory(good, n, "mem", &c) == GAN_OK && c.count == 2);
  gan_ckpt_free(&c);
  CHECK(gan_ckpt_read_memory(good, n - 1, "mem", &c) != GAN_OK && c.entries == NULL);
  CHECK(strstr(gan_errmsg(), "'mem'") != NULL);
  CHECK(gan_ckpt_read_memory(NULL, 0, "mem", &c) != GAN_OK);
  CHECK(gan_ckpt_read_memory(good, 0, NULL, &c) != GAN_OK);
  good[n / 2] ^= 1;
  CHECK(gan_ckpt_read_memory(good, n, "mem", &c) != GAN_OK);
  CHECK(strstr(gan_errmsg(), "checksum") != NULL);
  free(good);
}

/* --- grids ------------------------------------------------------------------ */

static void test_grid_disk_full(void) {
  char p[512];
  snprintf(p, sizeof p, "%s", at("grid.png"));
  float px[2 * 3 * 16 * 16];
  for (int i = 0; i < 2 * 3 * 16 * 16; i++) px[i] = (float)(i % 7) / 7.0f;
  CHECK(gan_images_save_grid(p, px, 2, 16, 16, GAN_RANGE_01, 2) == GAN_OK);
  size_t n;
  unsigned char *good = slurp(p, &n);
  CHECK(good != NULL && n > 40);
  if (!good) return;
  for (int i = 0; i < 2 * 3 * 16 * 16; i++) px[i] = 1.0f - px[i];
  /* the size of the new grid, to cut it short of its end */
  CHECK(gan_images_save_grid(at("grid2.png"), px, 2, 16, 16, GAN_RANGE_01, 2) == GAN_OK);
  size_t n2;
  unsigned char *next = slurp(at("grid2.png"), &n2);
  free(next);
  size_t cuts[] = {0, 8, 33, n2 / 2, n2 - 1};
  int ok = 1;
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    char v[32];
    snprintf(v, sizeof v, "%zu", cuts[i]);
    setenv("GAN_FAULT_WRITE_AFTER", v, 1);
    gan_status s = gan_images_save_grid(p, px, 2, 16, 16, GAN_RANGE_01, 2);
    if (!(s == GAN_EIO && strstr(gan_errmsg(), p) != NULL &&
          strstr(gan_errmsg(), "No space left on device") != NULL &&
          same_file(p, good, n) && !tmp_left("grid.png"))) {
      ok = 0;
      fprintf(stderr, "grid cut at %zu: status %d, '%s'\n", cuts[i], (int)s,
              gan_errmsg());
    }
  }
  CHECK(ok);
  /* the same in the background: the failure comes from the flush */
  setenv("GAN_FAULT_WRITE_AFTER", "33", 1);
  CHECK(gan_images_save_grid_background(p, px, 2, 16, 16, GAN_RANGE_01, 2) ==
        GAN_OK);
  CHECK(gan_images_flush() == GAN_EIO);
  CHECK(strstr(gan_errmsg(), p) != NULL &&
        strstr(gan_errmsg(), "No space left on device") != NULL);
  CHECK(same_file(p, good, n) && !tmp_left("grid.png"));
  unsetenv("GAN_FAULT_WRITE_AFTER");
  CHECK(gan_images_save_grid(p, px, 2, 16, 16, GAN_RANGE_01, 2) == GAN_OK);
  CHECK(!same_file(p, good, n));
  free(good);
}

/* --- hostile images ------------------------------------------------------- */

typedef struct membuf {
  unsigned char p[65536];
  size_t n;
} membuf;

static void to_mem(void *ctx, void *data, int size) {
  membuf *m = ctx;
  if (m->n + (size_t)size <= sizeof m->p) memcpy(m->p + m->n, data, (size_t)size);
  m->n += (size_t)size;
}

static uint32_t crc32(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* A PNG signature and IHDR declaring w x h RGB 8-bit, then 'body'. */
static size_t png_header(unsigned char *out, uint32_t w, uint32_t h) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memcpy(out, sig, 8);
  put32(out + 8, 13);
  memcpy(out + 12, "IHDR", 4);
  put32(out + 16, w);
  put32(out + 20, h);
  out[24] = 8, out[25] = 2, out[26] = out[27] = out[28] = 0;
  put32(out + 29, crc32(out + 12, 17));
  return 33;
}

/* Decoding must fail with a reason containing 'why'. */
static int refused(const unsigned char *p, size_t n, const char *why) {
  float out[3 * 4 * 4];
  gan_status s = gan_image_decode_memory(p, n, 4, GAN_RANGE_01, out);
  if (s == GAN_EFORMAT && strstr(gan_errmsg(), why) != NULL) return 1;
  fprintf(stderr, "  expected a refusal with '%s', got %d: '%s'\n", why, (int)s,
          gan_errmsg());
  return 0;
}

/* stb_image_write's deflate, defined in core/stb_impl.c but not declared
** by the header outside its implementation part */
unsigned char *stbi_zlib_compress(unsigned char *data, int data_len, int *out_len,
                                  int quality);

static void test_hostile_images(void) {
  static unsigned char buf[1 << 20];
  float out[3 * 4 * 4];

  /* a 1x1 image loads, and is resized to a flat 4x4 */
  membuf m = {{0}, 0};
  unsigned char one[3] = {255, 128, 0};
  CHECK(stbi_write_png_to_func(to_mem, &m, 1, 1, 3, one, 3));
  CHECK(gan_image_decode_memory(m.p, m.n, 4, GAN_RANGE_01, out) == GAN_OK);
  CHECK(out[0] == 1.0f && out[16 + 15] > 0.49f && out[16 + 15] < 0.51f &&
        out[47] == 0.0f);

  /* the header declares 100000 x 100000: refused from the header */
  size_t n = png_header(buf, 100000, 100000);
  memcpy(buf + n, "garbage garbage garbage", 23);
  CHECK(refused(buf, n + 23, "more than"));
  n = png_header(buf, 40000, 10);
  CHECK(refused(buf, n, "side longer than"));
  /* 4 billion x 4 billion: the size check must not overflow (fuzz finding) */
  n = png_header(buf, 0xEDEDEDEDu, 0xEDEDEDEDu);
  CHECK(refused(buf, n, "it declares 3991793133x3991793133 pixels, more than"));

  /* a header, then garbage */
  n = png_header(buf, 64, 64);
  for (size_t i = 0; i < 200; i++) buf[n + i] = (unsigned char)(i * 37 + 11);
  CHECK(refused(buf, n + 200, "corrupt PNG: its structure is damaged (stb_image: "));
  /* stb's word quotes the chunk's type as found: printable bytes only */
  for (const char *q = gan_errmsg(); *q; q++) CHECK(*q >= 0x20 && *q < 0x7f);
  /* the same header, then an IDAT chunk cut short */
  memcpy(buf + n, "\0\0\0\x64IDAT\x78\x9c\x01\x02", 12);
  CHECK(refused(buf, n + 12, "truncated PNG: its data end too soon (stb_image: outofdata)"));

  /* a zlib bomb: 1x1 declared, an IDAT that inflates to 8 MB of zeros */
  n = png_header(buf, 1, 1);
  {
    int zlen = 0; /* stb_image_write's deflate of 8 MB of zeros */
    unsigned char *zeros = calloc(8 << 20, 1);
    unsigned char *z = zeros ? stbi_zlib_compress(zeros, 8 << 20, &zlen, 8) : NULL;
    free(zeros);
    CHECK(z != NULL && (size_t)zlen + 64 < sizeof buf);
    if (z && (size_t)zlen + 64 < sizeof buf) {
      put32(buf + n, (uint32_t)zlen);
      memcpy(buf + n + 4, "IDAT", 4);
      memcpy(buf + n + 8, z, (size_t)zlen);
      put32(buf + n + 8 + zlen, crc32(buf + n + 4, (size_t)zlen + 4));
      size_t end = n + 12 + (size_t)zlen;
      memcpy(buf + end, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
      CHECK(refused(buf, end + 12, "decompression bomb"));
    }
    free(z);
  }

  /* a JPEG whose Huffman table declares 4080 codes (stb 2.27 overflows) */
  static const unsigned char dht[] = {
      0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x13, 0x00, 255, 255, 255, 255, 255, 255,
      255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 0xFF, 0xD9};
  CHECK(refused(dht, sizeof dht, "Huffman table"));
  /* a JPEG cut before its end, said so (stb names another format).  The
  ** JPEG is fuzz/corpus/image/ycc.jpg, 16x8 of one red (stb_image_write's
  ** JPEG encoder is not used: it shifts into the sign bit, which UBSan
  ** stops in .ci/sanitize) */
  static const unsigned char jpg[] = {
      0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01,
      0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0xff, 0xdb, 0x00, 0x43,
      0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
      0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
      0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
      0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
      0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
      0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x08,
      0x00, 0x10, 0x03, 0x01, 0x11, 0x00, 0x02, 0x11, 0x00, 0x03, 0x11, 0x00,
      0xff, 0xc4, 0x00, 0x31, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,
      0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x01, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x00,
      0x03, 0x00, 0x00, 0x3f, 0x00, 0x92, 0xfa, 0x54, 0xea, 0xfe, 0x00, 0x00,
      0x3f, 0xff, 0xd9
  };
  CHECK(gan_image_decode_memory(jpg, sizeof jpg, 4, GAN_RANGE_01, out) == GAN_OK);
  CHECK(out[0] > 0.95f && out[16] < 0.05f && out[32] < 0.05f);
  CHECK(refused(jpg, sizeof jpg - 2, "truncated JPEG"));
  CHECK(refused(jpg, sizeof jpg / 2, "truncated JPEG"));
  /* a scan that names Huffman tables no DHT defined: stb 2.27 decodes with
  ** the tables' uninitialised memory and reads far out of bounds (found by
  ** the fuzzer, depending on what the heap held).  Component 2 names DC
  ** and AC table 1; the file defines table 0 of each class. */
  {
    unsigned char b[sizeof jpg];
    size_t dht_at = 0, sos_at = 0;
    for (size_t i = 0; i + 1 < sizeof jpg; i++) {
      if (jpg[i] == 0xff && jpg[i + 1] == 0xc4 && !dht_at) dht_at = i;
      if (jpg[i] == 0xff && jpg[i + 1] == 0xda && !sos_at) sos_at = i;
    }
    CHECK(dht_at > 0 && sos_at > dht_at && jpg[sos_at + 4] == 3);
    memcpy(b, jpg, sizeof jpg);
    b[sos_at + 8] = 0x11; /* component 2: Td = 1, Ta = 1 */
    CHECK(refused(b, sizeof b, "a scan uses a Huffman table that the file does not define"));
    b[sos_at + 8] = 0x10; /* only its AC table undefined */
    CHECK(refused(b, sizeof b, "does not define"));
    /* the same tables defined as number 1, and named so: decodes as before */
    b[dht_at + 4] = 0x01;      /* DC table 1 */
    b[dht_at + 4 + 29] = 0x11; /* AC table 1, after DC's 16 counts and 12 values */
    for (int k = 0; k < 3; k++) b[sos_at + 6 + 2 * k] = 0x11;
    float o2[3 * 4 * 4];
    CHECK(gan_image_decode_memory(b, sizeof b, 4, GAN_RANGE_01, o2) == GAN_OK);
    CHECK(memcmp(o2, out, sizeof o2) == 0);
  }
  /* a PGM whose width has 12 digits (stb 2.27 overflows an int) */
  static const char pgm[] = "P5\n444444444444 2\n255\n";
  CHECK(refused((const unsigned char *)pgm, sizeof pgm - 1, "more than 9 digits"));
  /* formats stb reads but photo folders do not need */
  static const char tga[] = "\0\0\2\0\0\0\0\0\0\0\0\0\1\0\1\0\x18\0\xff\xff\xff";
  CHECK(refused((const unsigned char *)tga, sizeof tga - 1, "not a JPEG, PNG"));
  CHECK(refused((const unsigned char *)"#?RADIANCE\n", 11, "not a JPEG, PNG"));
  /* nothing at all */
  CHECK(gan_image_decode_memory(buf, 0, 4, GAN_RANGE_01, out) == GAN_EFORMAT);
}

/* --- allocations ------------------------------------------------------------ */

static void test_alloc(void) {
  gan_tensor t;
  gan_tensor_init(&t);
  int64_t over_cap[2] = {(int64_t)1 << 21, (int64_t)1 << 20}; /* 2^41 */
  CHECK(gan_tensor_alloc(&t, gan_backend_cpu(), 2, over_cap) == GAN_EARG);
  CHECK(strstr(gan_errmsg(), "2^40") != NULL && t.data == NULL);
  /* within the cap, beyond any machine this runs on: 2^38 floats, 1 TiB */
  int64_t tera[2] = {(int64_t)1 << 19, (int64_t)1 << 19};
  CHECK(gan_tensor_alloc(&t, gan_backend_cpu(), 2, tera) == GAN_ENOMEM);
  CHECK(strstr(gan_errmsg(), "out of memory: cannot allocate 1099511627776 bytes") != NULL);
  CHECK(t.data == NULL && t.ndim == 0);
  gan_tensor_release(&t);
}

int main(void) {
  if (make_root("gan_test_faults") != 0) return 2;
  unsetenv("GAN_FAULT_WRITE_AFTER");
  unsetenv("GAN_FAULT_WRITE_MATCH");
  test_ckpt_disk_full();
  test_stale_tmp();
  test_ckpt_memory();
  test_grid_disk_full();
  test_hostile_images();
  test_alloc();
  return finish();
}
