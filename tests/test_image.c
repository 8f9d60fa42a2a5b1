/*
** test_image.c -- gan_images_load, gan_image_load_file, gan_images_save_grid.
**
** Makes its own fixtures in a mkdtemp folder (PNGs through stb_image_write,
** the rest as raw bytes), checks decoded values to within half a step of
** 8 bits, the skip warnings, the errors, and a grid round trip; then removes
** the folder.  Exit status 0 when every check passed.
**
**   gcc -std=c11 -Wall -Wextra -Wshadow -O2 -Icore -I/usr/include/stb
**       core/image.c core/stb_impl.c core/fault.c core/status.c
**       tests/test_image.c -lm -o test_image
*/
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw, symlink */

#include <ftw.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "image.h"
#include "testutil.h"

#define TOL (0.5f / 255.0f + 1e-6f) /* half a step of 8 bits */

/* A w x h PNG with 'comp' channels, every pixel 'px' (comp bytes). */
static void png_solid(const char *path, int w, int h, int comp,
                      const unsigned char *px) {
  unsigned char buf[64 * 64 * 4];
  for (int i = 0; i < w * h; i++) memcpy(buf + i * comp, px, comp);
  if (!stbi_write_png(path, w, h, comp, buf, w * comp)) {
    fprintf(stderr, "cannot write fixture '%s'\n", path);
    exit(2);
  }
}

/* Largest |img[c] - rgb[c]| over every pixel of a (3, S, S) image. */
static float max_err(const float *img, int S, float r, float g, float b) {
  float want[3] = {r, g, b}, e = 0;
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < S * S; i++) {
      float d = fabsf(img[c * S * S + i] - want[c]);
      if (d > e) e = d;
    }
  return e;
}

/* ---- warnings: counted, each must name a file or folder of the fixture */

static char warned[16][1024];
static int nwarn;

static void on_warn(void *ud, const char *msg) {
  (void)ud;
  if (nwarn < 16) snprintf(warned[nwarn], sizeof warned[nwarn], "%s", msg);
  nwarn++;
}

/* Whether some warning contains every one of 'a' and 'b'. */
static int warned_about(const char *a, const char *b) {
  for (int i = 0; i < nwarn && i < 16; i++)
    if (strstr(warned[i], a) && (b == NULL || strstr(warned[i], b))) return 1;
  return 0;
}

/* ---- a minimal 16-bit PNG writer: stb_image_write only writes 8 bits.
** Deflate "stored" blocks need no compressor; only the CRC and Adler sums. */

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = v >> 24, p[1] = v >> 16 & 255, p[2] = v >> 8 & 255, p[3] = v & 255;
}

/* One chunk: length, type, data, CRC over type and data. */
static void chunk(FILE *f, const char *type, const unsigned char *d,
                  uint32_t n) {
  unsigned char b[8 + 4096];
  put32(b, n);
  memcpy(b + 4, type, 4);
  if (n) memcpy(b + 8, d, n);
  put32(b + 8 + n, crc32_of(b + 4, n + 4));
  fwrite(b, 1, 12 + n, f);
}

/* w x h RGBA, 16 bits per sample, every pixel 'px' (small images only). */
static void png16_rgba(const char *path, int w, int h, const uint16_t px[4]) {
  unsigned char raw[2048], z[4096], ihdr[13];
  size_t n = 0;
  for (int y = 0; y < h; y++) {
    raw[n++] = 0; /* filter: none */
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 4; c++) {
        raw[n++] = px[c] >> 8;
        raw[n++] = px[c] & 255;
      }
  }
  uint32_t a = 1, b = 0; /* Adler-32 */
  for (size_t i = 0; i < n; i++) a = (a + raw[i]) % 65521, b = (b + a) % 65521;
  size_t m = 0;
  z[m++] = 0x78, z[m++] = 0x01;          /* zlib header */
  z[m++] = 1;                            /* final stored block */
  z[m++] = n & 255, z[m++] = n >> 8;     /* LEN */
  z[m++] = ~n & 255, z[m++] = ~n >> 8 & 255; /* NLEN */
  memcpy(z + m, raw, n);
  m += n;
  put32(z + m, b << 16 | a);
  m += 4;
  put32(ihdr, (uint32_t)w);
  put32(ihdr + 4, (uint32_t)h);
  ihdr[8] = 16, ihdr[9] = 6, ihdr[10] = ihdr[11] = ihdr[12] = 0;
  FILE *f = fopen(path, "wb");
  if (f == NULL) {
    fprintf(stderr, "cannot write fixture '%s'\n", path);
    exit(2);
  }
  fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
  chunk(f, "IHDR", ihdr, 13);
  chunk(f, "IDAT", z, (uint32_t)m);
  chunk(f, "IEND", NULL, 0);
  fclose(f);
}

static void make_fixtures(void) {
  static const unsigned char red[3] = {255, 0, 0}, blue[3] = {0, 0, 255},
                             green[3] = {0, 255, 0}, grey[1] = {100},
                             ga[2] = {0, 128}, rgba0[4] = {10, 20, 30, 0},
                             rgba255[4] = {10, 20, 30, 255};
  mkdir(at("data"), 0755);
  mkdir(at("data/sub"), 0755);
  mkdir(at("data/.hid"), 0755);
  mkdir(at("empty"), 0755);
  mkdir(at("textonly"), 0755);
  png_solid(at("data/a_red.png"), 4, 4, 3, red);
  png_solid(at("data/b_grey.png"), 4, 4, 1, grey);
  png_solid(at("data/c2_ga.png"), 4, 4, 2, ga);
  png_solid(at("data/c_rgba0.png"), 4, 4, 4, rgba0);
  png_solid(at("data/d_rgba255.png"), 4, 4, 4, rgba255);
  png_solid(at("data/sub/h_blue.png"), 4, 4, 3, blue);
  png_solid(at("data/.hidden.png"), 4, 4, 3, green);   /* ignored */
  png_solid(at("data/.hid/x.png"), 4, 4, 3, green);    /* ignored */

  /* 16-bit PGM: stb decodes maxval 65535 as 16 bits; 30000 is not a
  ** multiple of 257, so the 8-bit shortcut (v >> 8) would be 1/255 off. */
  unsigned char pgm[13 + 32];
  memcpy(pgm, "P5\n4 4\n65535\n", 13);
  for (int i = 0; i < 16; i++) {
    pgm[13 + 2 * i] = 30000 >> 8;
    pgm[13 + 2 * i + 1] = 30000 & 255;
  }
  spit(at("data/e_16.pgm"), pgm, sizeof pgm);
  /* 16-bit RGBA PNG, half transparent: exercises 16-bit compositing */
  static const uint16_t px16[4] = {30000, 1000, 65535, 32768};
  png16_rgba(at("data/e_16rgba.png"), 4, 4, px16);

  /* Truncated PNG: the first half of a 32x32 noise image, so that the
  ** header parses and the pixel data runs out. */
  unsigned char noise[32 * 32 * 3];
  for (int i = 0; i < (int)sizeof noise; i++) noise[i] = (i * 7919) & 255;
  stbi_write_png(at("full.png"), 32, 32, 3, noise, 32 * 3);
  size_t len;
  unsigned char *bytes = slurp(at("full.png"), &len);
  spit(at("data/f_trunc.png"), bytes, len / 2);
  free(bytes);

  const char *text = "these are not the pixels you are looking for\n";
  spit(at("data/g_notes.txt"), text, strlen(text));
  spit(at("textonly/readme.txt"), text, strlen(text));

  /* PNG bytes behind a .jpg name: content decides, not the extension. */
  png_solid(at("green.png"), 4, 4, 3, green);
  bytes = slurp(at("green.png"), &len);
  spit(at("data/i_lying.jpg"), bytes, len);
  free(bytes);

  /* A decompression bomb: declares 10000 x 10000 in a few bytes. */
  const char *bomb = "P5\n10000 10000\n255\nxxxx";
  spit(at("data/j_bomb.pgm"), bomb, strlen(bomb));

  /* A symlink to a file is followed; one back up the tree is refused. */
  if (symlink("../a_red.png", at("data/sub/link.png")) != 0 ||
      symlink("..", at("data/sub/loop")) != 0) {
    fprintf(stderr, "cannot make symlinks in '%s'\n", root);
    exit(2);
  }

  /* 2x2 grey checker: 0 and 255 on the diagonals. */
  const unsigned char checker[4] = {0, 255, 255, 0};
  stbi_write_png(at("checker.png"), 2, 2, 1, checker, 2);
}

/* data/ holds 10 images, 3 files to skip, a loop and hidden entries. */
static void test_folder(void) {
  gan_image_opts o = {4, GAN_RANGE_01, on_warn, NULL};
  float *data = NULL;
  int64_t n = -1, skipped = -1;
  nwarn = 0;
  gan_status s = gan_images_load(at("data"), &o, &data, &n, &skipped);
  CHECK(s == GAN_OK);
  if (s != GAN_OK) {
    fprintf(stderr, "  %s\n", gan_errmsg());
    return;
  }
  CHECK(n == 10);
  CHECK(skipped == 3);
  if (n != 10) return;
  const int S = 4, per = 3 * S * S;
  const float ga = 127.0f / 255.0f; /* 0 at alpha 128 on white */
  const float g16 = 30000.0f / 65535.0f;
  const float a16 = 32768.0f / 65535.0f;
  const float want[10][3] = {
      {1, 0, 0},                              /* a_red */
      {100 / 255.f, 100 / 255.f, 100 / 255.f}, /* b_grey: replicated */
      {ga, ga, ga},                           /* c2_ga: grey+alpha */
      {1, 1, 1},                              /* c_rgba0: alpha 0 */
      {10 / 255.f, 20 / 255.f, 30 / 255.f},   /* d_rgba255: alpha 255 */
      {g16, g16, g16},                        /* e_16: 16-bit, exact */
      {g16 * a16 + 1 - a16, 1000.f / 65535 * a16 + 1 - a16, 1}, /* e_16rgba */
      {0, 1, 0},                              /* i_lying.jpg */
      {0, 0, 1},                              /* sub/h_blue */
      {1, 0, 0},                              /* sub/link -> a_red */
  };
  for (int i = 0; i < 10; i++) {
    float e = max_err(data + i * per, S, want[i][0], want[i][1], want[i][2]);
    if (e > TOL) fprintf(stderr, "  image %d off by %g\n", i, e);
    CHECK(e <= TOL);
  }
  /* the 16-bit value kept its precision (not 117/255 nor 116/255) */
  CHECK(fabsf(data[5 * per] - g16) < 1e-6f);
  CHECK(fabsf(data[6 * per] - (g16 * a16 + 1 - a16)) < 1e-6f);

  /* warnings: three skipped files, the loop, and the summary */
  CHECK(nwarn == 5);
  CHECK(warned_about("f_trunc.png", "skipping"));
  CHECK(warned_about("g_notes.txt", "skipping"));
  CHECK(warned_about("j_bomb.pgm", "10000x10000"));
  CHECK(warned_about("sub/loop", NULL));
  CHECK(warned_about("skipped 3 of 13 files", at("data")));
  CHECK(!warned_about("hid", NULL));
  free(data);

  /* the same folder in [-1,1] */
  o.range = GAN_RANGE_PM1;
  nwarn = 0;
  s = gan_images_load(at("data"), &o, &data, &n, &skipped);
  CHECK(s == GAN_OK && n == 10);
  if (s == GAN_OK) {
    CHECK(max_err(data, S, 1, -1, -1) <= 2 * TOL);
    CHECK(max_err(data + 3 * per, S, 1, 1, 1) <= 2 * TOL);
    free(data);
  }
}

static void test_single(void) {
  float px[3 * 4 * 4];
  /* 2x2 checker to 1x1: the average */
  CHECK(gan_image_load_file(at("checker.png"), 1, GAN_RANGE_01, px) ==
        GAN_OK);
  CHECK(max_err(px, 1, 0.5f, 0.5f, 0.5f) <= TOL);

  /* an upscale stays in range: cubic overshoot is clamped */
  CHECK(gan_image_load_file(at("checker.png"), 4, GAN_RANGE_PM1, px) ==
        GAN_OK);
  int inrange = 1;
  for (int i = 0; i < 48; i++) inrange &= px[i] >= -1.0f && px[i] <= 1.0f;
  CHECK(inrange);

  /* errors name the file */
  CHECK(gan_image_load_file(at("data/g_notes.txt"), 4, GAN_RANGE_01, px) ==
        GAN_EFORMAT);
  CHECK(strstr(gan_errmsg(), "g_notes.txt") != NULL);
  CHECK(gan_image_load_file(at("nope.png"), 4, GAN_RANGE_01, px) == GAN_EIO);
  CHECK(strstr(gan_errmsg(), "nope.png") != NULL);
  CHECK(gan_image_load_file(at("checker.png"), 0, GAN_RANGE_01, px) ==
        GAN_EARG);
  CHECK(gan_image_load_file(at("checker.png"), 8193, GAN_RANGE_01, px) ==
        GAN_EARG);
}

static void test_errors(void) {
  gan_image_opts o = {4, GAN_RANGE_01, on_warn, NULL};
  float *sentinel = (float *)&o, *data = sentinel;
  int64_t n, skipped;

  gan_status s = gan_images_load(at("empty"), &o, &data, &n, &skipped);
  CHECK(s == GAN_EFORMAT);
  CHECK(strstr(gan_errmsg(), at("empty")) != NULL);
  CHECK(strstr(gan_errmsg(), "no usable image") != NULL);

  nwarn = 0;
  s = gan_images_load(at("textonly"), &o, &data, &n, &skipped);
  CHECK(s == GAN_EFORMAT);
  CHECK(strstr(gan_errmsg(), "(1 file skipped)") != NULL);
  CHECK(nwarn == 1 && warned_about("readme.txt", NULL));

  s = gan_images_load(at("missing"), &o, &data, &n, &skipped);
  CHECK(s == GAN_EIO);
  CHECK(strstr(gan_errmsg(), "does not exist") != NULL);
  CHECK(strstr(gan_errmsg(), at("missing")) != NULL);

  s = gan_images_load(at("checker.png"), &o, &data, &n, &skipped);
  CHECK(s != GAN_OK);
  CHECK(strstr(gan_errmsg(), "checker.png") != NULL);

  o.size = 0;
  CHECK(gan_images_load(at("data"), &o, &data, &n, &skipped) == GAN_EARG);
  o.size = 9000;
  CHECK(gan_images_load(at("data"), &o, &data, &n, &skipped) == GAN_EARG);
  CHECK(data == sentinel); /* untouched by every failure */
}

/* Image i, channel c, pixel (y, x) of the grid's source: distinct bytes. */
static int src_byte(int i, int c, int y, int x) {
  return (i * 3 + c) * 16 + y * 4 + x;
}

static void test_grid(void) {
  enum { N = 3, H = 4, W = 4 };
  float img[N * 3 * H * W];
  for (int i = 0; i < N; i++)
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
          img[((i * 3 + c) * H + y) * W + x] = src_byte(i, c, y, x) / 255.0f;
  img[0] = 2.0f;  /* clamped to 255 */
  img[1] = -1.0f; /* clamped to 0 */

  const char *path = at("grid.png");
  spit(path, "old", 3); /* replaced whole */
  CHECK(gan_images_save_grid(path, img, N, H, W, GAN_RANGE_01, 2) == GAN_OK);
  int w, h, comp;
  unsigned char *p = stbi_load(path, &w, &h, &comp, 3);
  CHECK(p != NULL);
  if (p == NULL) return;
  CHECK(w == 2 * W + 2 && h == 2 * H + 2); /* gaps between cells only */
  int cells_ok = 1, white_ok = 1;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++) {
        int v = p[(y * w + x) * 3 + c];
        int cx = x / (W + 2), cy = y / (H + 2);
        int ix = x % (W + 2), iy = y % (H + 2), i = cy * 2 + cx;
        if (ix >= W || iy >= H || i >= N) { /* gap or empty 4th cell */
          white_ok &= v == 255;
          continue;
        }
        int want = src_byte(i, c, iy, ix);
        if (i == 0 && c == 0 && iy == 0 && ix == 0) want = 255;
        if (i == 0 && c == 0 && iy == 0 && ix == 1) want = 0;
        cells_ok &= v == want;
      }
  CHECK(cells_ok);
  CHECK(white_ok);
  stbi_image_free(p);

  /* [-1,1]: -1 -> 0, 0 -> 128 (127.5 rounds up), 1 -> 255 */
  float pm[3] = {-1.0f, 0.0f, 1.0f};
  float one[3 * 1 * 1 * 3];
  for (int i = 0; i < 3; i++)
    for (int c = 0; c < 3; c++) one[i * 3 + c] = pm[i];
  CHECK(gan_images_save_grid(path, one, 3, 1, 1, GAN_RANGE_PM1, 5) ==
        GAN_OK); /* cols > n: one row of 3 */
  p = stbi_load(path, &w, &h, &comp, 3);
  CHECK(p != NULL && w == 3 + 2 * 2 && h == 1);
  if (p) {
    CHECK(p[0] == 0 && p[3 * 3] == 128 && p[3 * 6] == 255);
    CHECK(p[3 * 1] == 255 && p[3 * 4] == 255); /* gaps */
    stbi_image_free(p);
  }

  /* no temporary file left behind */
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
  CHECK(access(tmp, F_OK) != 0);

  CHECK(gan_images_save_grid(path, img, N, H, W, GAN_RANGE_01, 0) ==
        GAN_EARG);
  CHECK(gan_images_save_grid(at("no/such/dir/g.png"), img, N, H, W,
                             GAN_RANGE_01, 2) == GAN_EIO);
  CHECK(strstr(gan_errmsg(), "no/such/dir/g.png") != NULL);

  /* the format comes from the name's ending, in any case: each file starts
  ** with its format's signature and reads back at the grid's size (JPEG
  ** within its loss) */
  static const struct { const char *name, *magic; int len, lossy; } fmts[] = {
      {"g.jpg", "\xFF\xD8\xFF", 3, 1}, {"g.JPEG", "\xFF\xD8\xFF", 3, 1},
      {"g.bmp", "BM", 2, 0}, {"g.Png", "\x89PNG", 4, 0}};
  for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
    const char *f = at(fmts[k].name);
    CHECK(gan_images_save_grid(f, img, N, H, W, GAN_RANGE_01, 3) == GAN_OK);
    unsigned char head[4] = {0};
    FILE *fp = fopen(f, "rb");
    CHECK(fp != NULL && fread(head, 1, 4, fp) >= 2);
    if (fp) fclose(fp);
    if (fmts[k].magic && memcmp(head, fmts[k].magic, (size_t)fmts[k].len) != 0)
      fprintf(stderr, "%s: not its format's signature\n", fmts[k].name);
    CHECK(fmts[k].magic == NULL || memcmp(head, fmts[k].magic, (size_t)fmts[k].len) == 0);
    unsigned char *q = stbi_load(f, &w, &h, &comp, 3);
    CHECK(q != NULL && w == 3 * W + 2 * 2 && h == H); /* 2-pixel gaps */
    if (q) {
      int worst = 0; /* the middle pixel of the second image */
      for (int c = 0; c < 3; c++) {
        int d = q[3 * (H / 2 * w + W + 2 + W / 2) + c] -
                src_byte(1, c, H / 2, W / 2);
        if (abs(d) > worst) worst = abs(d);
      }
      if (worst > (fmts[k].lossy ? 40 : 0)) fprintf(stderr, "%s: off by %d\n", fmts[k].name, worst);
      CHECK(worst <= (fmts[k].lossy ? 40 : 0));
      stbi_image_free(q);
    }
  }
  /* any other name is refused before anything is written */
  CHECK(gan_images_save_grid(at("g.gif"), img, N, H, W, GAN_RANGE_01, 2) == GAN_EARG);
  CHECK(strstr(gan_errmsg(), "g.gif") != NULL &&
        strstr(gan_errmsg(), ".png, .jpg, .jpeg or .bmp") != NULL);
  CHECK(access(at("g.gif"), F_OK) != 0);
  CHECK(gan_images_save_grid(at("g.tga"), img, N, H, W, GAN_RANGE_01, 2) == GAN_EARG);
  CHECK(gan_images_save_grid(at("grid"), img, N, H, W, GAN_RANGE_01, 2) == GAN_EARG);
}

/* gan_images_load on 1, 2, 3 and 8 threads: the same images, the same warnings in
** the same order.  37 files, every 5th unreadable, so that the batches of
** each thread count (4 files a thread) end at different places, and one
** image over BIG_PIXELS (decoded alone, its scratch given back). */
static void test_threads(void) {
  enum { F = 37, S = 6 };
  mkdir(at("many"), 0755);
  for (int i = 0; i < F; i++) {
    char name[64];
    snprintf(name, sizeof name, "many/%02d.png", i);
    if (i % 5 == 3) {
      spit(at(name), "not a png", 9);
    } else {
      const unsigned char rgb[3] = {(unsigned char)(i * 7), (unsigned char)(255 - i * 5),
                                    (unsigned char)(i * 13)};
      png_solid(at(name), 3 + i % 4, 5, 3, rgb); /* resized: not square */
    }
  }
  enum { BIG = 4100 }; /* 16.8 million pixels: over BIG_PIXELS */
  char head[32];
  int hl = snprintf(head, sizeof head, "P5\n%d %d\n255\n", BIG, BIG);
  unsigned char *big = malloc((size_t)hl + (size_t)BIG * BIG);
  if (big) {
    memcpy(big, head, (size_t)hl);
    for (size_t p = 0; p < (size_t)BIG * BIG; p++) big[hl + p] = (unsigned char)(p % BIG / 17);
    spit(at("many/zz_big.pgm"), big, (size_t)hl + (size_t)BIG * BIG);
    free(big);
  }
  gan_image_opts o = {S, GAN_RANGE_01, on_warn, NULL};
  float *one = NULL;
  int64_t n1 = 0, sk1 = 0;
  static char warned1[16][1024];
  int nwarn1, threads = omp_get_max_threads();
  omp_set_num_threads(1);
  nwarn = 0;
  CHECK(gan_images_load(at("many"), &o, &one, &n1, &sk1) == GAN_OK);
  CHECK(n1 == F - 7 + 1 && sk1 == 7 && nwarn == 8);
  memcpy(warned1, warned, sizeof warned);
  nwarn1 = nwarn;
  static const int counts[] = {2, 3, 8};
  for (int c = 0; c < 3 && one; c++) {
    float *d = NULL;
    int64_t n = 0, sk = 0;
    omp_set_num_threads(counts[c]);
    nwarn = 0;
    CHECK(gan_images_load(at("many"), &o, &d, &n, &sk) == GAN_OK);
    CHECK(n == n1 && sk == sk1 && nwarn == nwarn1);
    CHECK(d && n == n1 && memcmp(d, one, (size_t)n * 3 * S * S * sizeof(float)) == 0);
    int same = 1;
    for (int i = 0; i < nwarn && i < 16; i++) same &= strcmp(warned[i], warned1[i]) == 0;
    CHECK(same);
    free(d);
  }
  /* in order: image k is file k's colour (files 3, 8, ... are skipped) */
  int k = 0, ok = 1;
  for (int i = 0; i < F && one; i++) {
    if (i % 5 == 3) continue;
    ok &= fabsf(one[(size_t)k * 3 * S * S] - (float)(i * 7) / 255.0f) < 1e-6f;
    k++;
  }
  CHECK(ok && k == n1 - 1);
  /* the big one is last: a left-to-right ramp, dark to light */
  const float *bigimg = one ? one + (size_t)(n1 - 1) * 3 * S * S : NULL;
  CHECK(bigimg && bigimg[0] < 0.1f && bigimg[S - 1] > 0.8f);
  CHECK(strstr(warned1[0], "many/03.png") != NULL && strstr(warned1[6], "many/33.png") != NULL);
  omp_set_num_threads(threads);
  free(one);
}

/* Whether files a and b hold the same bytes (and both exist). */
static int same_bytes(const char *a, const char *b) {
  size_t na = 0, nb = 0;
  unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb);
  int same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
  free(pa);
  free(pb);
  return same;
}

/* gan_images_save_grid_background: the same files as the synchronous
** writer, in the order asked for, and each failure reported once, naming
** its file, by the next call or by gan_images_flush. */
static void test_grid_background(void) {
  enum { N = 4, S = 24, K = 6 };
  static float img[K][N * 3 * S * S];
  for (int k = 0; k < K; k++)
    for (int i = 0; i < N * 3 * S * S; i++)
      img[k][i] = (float)((i * (k + 3)) % 251) / 250.0f;

  /* K grids queued back to back, then K written the plain way: same bytes.
  ** The source is overwritten right after each call, which the copy taken
  ** before the call returns makes harmless. */
  static float scratch[N * 3 * S * S];
  static char bg[K][512], fg[K][512];
  for (int k = 0; k < K; k++) {
    char name[32];
    snprintf(name, sizeof name, "bg%d.png", k);
    snprintf(bg[k], sizeof bg[k], "%s", at(name));
    snprintf(name, sizeof name, "fg%d.png", k);
    snprintf(fg[k], sizeof fg[k], "%s", at(name));
    memcpy(scratch, img[k], sizeof scratch);
    CHECK(gan_images_save_grid_background(bg[k], scratch, N, S, S,
                                          GAN_RANGE_01, 2) == GAN_OK);
    memset(scratch, 0, sizeof scratch);
  }
  CHECK(gan_images_flush() == GAN_OK);
  for (int k = 0; k < K; k++) {
    CHECK(gan_images_save_grid(fg[k], img[k], N, S, S, GAN_RANGE_01, 2) ==
          GAN_OK);
    CHECK(same_bytes(bg[k], fg[k]));
  }
  CHECK(!same_bytes(bg[0], bg[1])); /* the comparison can fail */

  /* one path, a background grid then a plain one: the plain one lands last */
  CHECK(gan_images_save_grid_background(bg[0], img[1], N, S, S, GAN_RANGE_01,
                                        2) == GAN_OK);
  CHECK(gan_images_save_grid(bg[0], img[2], N, S, S, GAN_RANGE_01, 2) ==
        GAN_OK);
  CHECK(same_bytes(bg[0], fg[2]));

  /* a failure is reported by the flush, once, naming the file */
  const char *bad = at("no/such/dir/bg.png");
  CHECK(gan_images_save_grid_background(bad, img[0], N, S, S, GAN_RANGE_01,
                                        2) == GAN_OK);
  CHECK(gan_images_flush() == GAN_EIO);
  CHECK(strstr(gan_errmsg(), bad) != NULL);
  CHECK(strstr(gan_errmsg(), "No such file or directory") != NULL);
  CHECK(gan_images_flush() == GAN_OK);

  /* ... or by the next background call, whose own grid is still written */
  remove(bg[3]);
  CHECK(gan_images_save_grid_background(bad, img[0], N, S, S, GAN_RANGE_01,
                                        2) == GAN_OK);
  CHECK(gan_images_save_grid_background(bg[3], img[3], N, S, S, GAN_RANGE_01,
                                        2) == GAN_EIO);
  CHECK(strstr(gan_errmsg(), bad) != NULL);
  CHECK(gan_images_flush() == GAN_OK);
  CHECK(same_bytes(bg[3], fg[3]));

  /* a bad argument is this call's own error, at once */
  CHECK(gan_images_save_grid_background(bg[0], img[0], N, S, S, GAN_RANGE_01,
                                        0) == GAN_EARG);
  CHECK(strstr(gan_errmsg(), "0 columns") != NULL);
  CHECK(gan_images_flush() == GAN_OK);
}

int main(void) {
  if (make_root("gan_test_image") != 0) return 2;
  make_fixtures();
  test_folder();
  test_single();
  test_errors();
  test_grid();
  test_grid_background();
  test_threads();
  return finish(); /* nftw does not follow data/sub/loop, which points up */
}
