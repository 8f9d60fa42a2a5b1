/*
** image.c -- reading photo folders into planar float arrays, writing grids.
**
** The pipeline for one file (decode_one):
**   stbi_info      refuse oversized images before any pixel is allocated
**   stbi_load(_16) decode with the file's own channel count
**   to_rgb         interleaved float RGB in [0,1]: grey replicated, alpha
**                  composited on white (out = c*a + (1-a), a in [0,1])
**   stbir_resize   Mitchell when shrinking, Catmull-Rom when growing (stb's
**                  defaults), skipped when the image is already S x S.  A
**                  non-square image is stretched, not cropped: cropping
**                  could cut off the fruit, and the data sets are near-square
**   to_planar      HWC -> CHW, clamped to [0,1] (the cubic filters overshoot),
**                  then mapped to the requested range
** All of it runs on scratch buffers that a folder load reuses across files.
**
** stb comes from the system's libstb (Debian's libstb-dev): the headers only
** declare, the implementations live in the shared library.
*/
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include "image.h"

#define MAX_SIZE 8192 /* largest output side S */
#define GAP 2         /* pixels between grid cells */

/* Buffers reused from one file to the next, and the reason for the last
** failure of decode_one (without the path: callers add it). */
typedef struct scratch {
  float *rgb;      /* (h, w, comp) then (h, w, 3), grown as needed */
  size_t rgb_cap;  /* floats in rgb */
  float *small;    /* (S, S, 3) resized image */
  char why[160];
} scratch;

static void scratch_free(scratch *sc) {
  free(sc->rgb);
  free(sc->small);
}

static gan_status check_size(int size) {
  if (size <= 0 || size > MAX_SIZE)
    return gan_error(GAN_EARG, "image size must be in 1..%d, got %d",
                     MAX_SIZE, size);
  return GAN_OK;
}

/*
** Decoded samples (comp per pixel, 8 or 16 bits) to floats in [0,1].  The
** division keeps v/255 and v/65535 exact, which a multiplication by the
** reciprocal would not quite.
*/
static void to_unit(const void *pix, int is16, size_t m, float *o) {
  if (is16) {
    const unsigned short *p = pix;
    for (size_t i = 0; i < m; i++) o[i] = p[i] / 65535.0f;
  } else {
    const unsigned char *p = pix;
    for (size_t i = 0; i < m; i++) o[i] = p[i] / 255.0f;
  }
}

/*
** In place, (npix, comp) floats to (npix, 3): grey is replicated, alpha is
** composited on white (out = c*a + (1-a)).  Growing from 1 or 2 channels to
** 3 runs backwards so that no pixel is overwritten before it is read;
** shrinking from 4 runs forwards for the same reason.
*/
static void to_rgb(float *b, size_t npix, int comp) {
  size_t i;
  switch (comp) {
  case 1:
    for (i = npix; i-- > 0;) b[3 * i] = b[3 * i + 1] = b[3 * i + 2] = b[i];
    break;
  case 2:
    for (i = npix; i-- > 0;) {
      float a = b[2 * i + 1], v = b[2 * i] * a + (1.0f - a);
      b[3 * i] = b[3 * i + 1] = b[3 * i + 2] = v;
    }
    break;
  case 4:
    for (i = 0; i < npix; i++) {
      float a = b[4 * i + 3], r = b[4 * i], g = b[4 * i + 1], bl = b[4 * i + 2];
      b[3 * i] = r * a + (1.0f - a);
      b[3 * i + 1] = g * a + (1.0f - a);
      b[3 * i + 2] = bl * a + (1.0f - a);
    }
    break;
  default: /* 3: already RGB */
    break;
  }
}

/*
** stb_image 2.27 (Debian's libstb) returns 16-bit PNM samples in the file's
** big-endian order instead of the machine's (nothings/stb PR #1710, still
** open).  Rather than guess the version, decode a 1x1 probe whose sample is
** 0x0102 and see which way round it comes back.
*/
static int pnm16_swapped(void) {
  static const unsigned char probe[] = "P5\n1 1\n65535\n\x01\x02";
  int w, h, comp;
  stbi_us *p = stbi_load_16_from_memory(probe, (int)sizeof probe - 1, &w, &h,
                                        &comp, 0);
  int swapped = p != NULL && p[0] == 0x0201;
  stbi_image_free(p);
  return swapped;
}

/* Whether f starts like a binary PGM/PPM (P5, P6); leaves f rewound. */
static int is_pnm(FILE *f) {
  unsigned char m[2] = {0, 0};
  size_t got = fread(m, 1, 2, f);
  rewind(f);
  return got == 2 && m[0] == 'P' && (m[1] == '5' || m[1] == '6');
}

/* (S, S, 3) interleaved in [0,1] (give or take filter overshoot) to
** (3, S, S) planar in 'range'. */
static void to_planar(const float *in, int S, gan_range range, float *out) {
  size_t np = (size_t)S * S;
  float scale = range == GAN_RANGE_PM1 ? 2.0f : 1.0f;
  float shift = range == GAN_RANGE_PM1 ? -1.0f : 0.0f;
  for (int c = 0; c < 3; c++) {
    float *o = out + c * np;
    for (size_t i = 0; i < np; i++) {
      float v = in[3 * i + c];
      v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
      o[i] = v * scale + shift;
    }
  }
}

/*
** Decodes 'path' into out (3, S, S).  Returns GAN_OK; GAN_EIO (cannot open)
** or GAN_EFORMAT (not an image, too big, corrupt) with the reason in sc->why
** and no message set, so that a folder load can turn it into a warning; or
** GAN_ENOMEM with the message set, which stops a folder load.
*/
static gan_status decode_one(scratch *sc, const char *path, int S,
                             gan_range range, float *out) {
  int w, h, comp;
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(sc->why, sizeof sc->why, "%s", strerror(errno));
    return GAN_EIO;
  }
  /* stbi_info_from_file and stbi_is_16_bit_from_file rewind f after use */
  if (!stbi_info_from_file(f, &w, &h, &comp)) {
    snprintf(sc->why, sizeof sc->why, "%s", stbi_failure_reason());
    fclose(f);
    return GAN_EFORMAT;
  }
  if (w <= 0 || h <= 0 || (int64_t)w * h > GAN_IMAGE_MAX_PIXELS) {
    snprintf(sc->why, sizeof sc->why, "%dx%d is more than %d pixels", w, h,
             GAN_IMAGE_MAX_PIXELS);
    fclose(f);
    return GAN_EFORMAT;
  }
  int is16 = stbi_is_16_bit_from_file(f);
  int swap = is16 && is_pnm(f) && pnm16_swapped();
  void *pix = is16 ? (void *)stbi_load_from_file_16(f, &w, &h, &comp, 0)
                   : (void *)stbi_load_from_file(f, &w, &h, &comp, 0);
  fclose(f);
  if (pix == NULL) {
    snprintf(sc->why, sizeof sc->why, "%s", stbi_failure_reason());
    return GAN_EFORMAT;
  }
  if (comp < 1 || comp > 4) { /* stb promises 1..4; be safe anyway */
    snprintf(sc->why, sizeof sc->why, "%d channels", comp);
    stbi_image_free(pix);
    return GAN_EFORMAT;
  }

  size_t npix = (size_t)w * h, m = npix * (comp < 3 ? 3 : comp);
  if (sc->rgb_cap < m) {
    float *p = realloc(sc->rgb, m * sizeof(float));
    if (p == NULL) {
      stbi_image_free(pix);
      return gan_error(GAN_ENOMEM, "out of memory (%zu bytes) decoding '%s'",
                       m * sizeof(float), path);
    }
    sc->rgb = p;
    sc->rgb_cap = m;
  }
  if (swap) { /* 16-bit PNM from a stb that forgot its byte order */
    unsigned short *q = pix;
    for (size_t i = 0; i < npix * comp; i++)
      q[i] = (unsigned short)(q[i] >> 8 | q[i] << 8);
  }
  to_unit(pix, is16, npix * comp, sc->rgb);
  to_rgb(sc->rgb, npix, comp);
  stbi_image_free(pix);

  /* Even a Mitchell filter at scale 1 blurs, so an S x S image is copied. */
  const float *src = sc->rgb;
  if (w != S || h != S) {
    if (!stbir_resize_float(sc->rgb, w, h, 0, sc->small, S, S, 0, 3))
      return gan_error(GAN_ENOMEM, "cannot resize '%s' from %dx%d to %dx%d "
                       "(out of memory)", path, w, h, S, S);
    src = sc->small;
  }
  to_planar(src, S, range, out);
  return GAN_OK;
}

static gan_status scratch_init(scratch *sc, int S) {
  memset(sc, 0, sizeof *sc);
  size_t bytes = (size_t)S * S * 3 * sizeof(float);
  sc->small = malloc(bytes);
  if (sc->small == NULL)
    return gan_error(GAN_ENOMEM, "out of memory (%zu bytes) for an image",
                     bytes);
  return GAN_OK;
}

gan_status gan_image_load_file(const char *path, int size, gan_range range,
                               float *out) {
  scratch sc;
  gan_status s = check_size(size);
  if (s != GAN_OK) return s;
  if ((s = scratch_init(&sc, size)) != GAN_OK) return s;
  s = decode_one(&sc, path, size, range, out);
  if (s == GAN_EIO)
    gan_error(s, "cannot open image '%s': %s", path, sc.why);
  else if (s == GAN_EFORMAT)
    gan_error(s, "cannot decode image '%s': %s", path, sc.why);
  scratch_free(&sc);
  return s;
}

/* ---- walking a folder --------------------------------------------------- */

typedef struct pathlist {
  char **v;
  size_t n, cap;
} pathlist;

static void pathlist_free(pathlist *pl) {
  for (size_t i = 0; i < pl->n; i++) free(pl->v[i]);
  free(pl->v);
}

/* The folders from the root down to the one being read, to refuse a
** symlink that points back up (which would otherwise recurse forever). */
typedef struct ancestor {
  dev_t dev;
  ino_t ino;
  const struct ancestor *up;
} ancestor;

static void warn(const gan_image_opts *o, const char *msg) {
  if (o->warn)
    o->warn(o->warn_ud, msg);
  else
    fprintf(stderr, "gan: warning: %s\n", msg);
}

/*
** Appends the regular files under 'dir' (following symlinks, skipping dot
** names) to pl.  A subfolder that cannot be read is reported and skipped;
** only running out of memory is an error.
*/
static gan_status walk(const char *dir, const ancestor *up,
                       const gan_image_opts *o, pathlist *pl) {
  char msg[4400];
  DIR *d = opendir(dir);
  if (d == NULL) {
    snprintf(msg, sizeof msg, "skipping folder '%s': %s", dir,
             strerror(errno));
    warn(o, msg);
    return GAN_OK;
  }
  gan_status s = GAN_OK;
  size_t dlen = strlen(dir);
  const char *sep = dlen > 0 && dir[dlen - 1] == '/' ? "" : "/";
  struct dirent *e;
  while (s == GAN_OK && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue; /* also "." and ".." */
    size_t len = dlen + 1 + strlen(e->d_name) + 1;
    char *p = malloc(len);
    if (p == NULL) {
      s = gan_error(GAN_ENOMEM, "out of memory (%zu bytes) listing '%s'",
                    len, dir);
      break;
    }
    snprintf(p, len, "%s%s%s", dir, sep, e->d_name);
    struct stat st;
    if (stat(p, &st) != 0) { /* a dangling symlink, say */
      snprintf(msg, sizeof msg, "skipping '%s': %s", p, strerror(errno));
      warn(o, msg);
      free(p);
    } else if (S_ISDIR(st.st_mode)) {
      const ancestor *a = up;
      while (a && !(a->dev == st.st_dev && a->ino == st.st_ino)) a = a->up;
      if (a) {
        snprintf(msg, sizeof msg, "skipping folder '%s': it loops back", p);
        warn(o, msg);
      } else {
        ancestor here = {st.st_dev, st.st_ino, up};
        s = walk(p, &here, o, pl);
      }
      free(p);
    } else if (S_ISREG(st.st_mode)) {
      if (pl->n == pl->cap) {
        size_t cap = pl->cap ? 2 * pl->cap : 64;
        char **v = realloc(pl->v, cap * sizeof *v);
        if (v == NULL) {
          free(p);
          s = gan_error(GAN_ENOMEM, "out of memory (%zu bytes) listing '%s'",
                        cap * sizeof *v, dir);
          break;
        }
        pl->v = v;
        pl->cap = cap;
      }
      pl->v[pl->n++] = p;
    } else {
      free(p); /* fifos, sockets, devices: not data */
    }
  }
  closedir(d);
  return s;
}

static int cmp_path(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
** Lists, sorts, then decodes straight into the output array, which doubles
** when full; a file that fails leaves its slot to the next one.  Outputs are
** written only on success.
*/
gan_status gan_images_load(const char *dir, const gan_image_opts *opts,
                           float **data, int64_t *n, int64_t *skipped) {
  if (dir == NULL || opts == NULL || data == NULL || n == NULL ||
      skipped == NULL)
    return gan_error(GAN_EARG, "gan_images_load: NULL argument");
  gan_status s = check_size(opts->size);
  if (s != GAN_OK) return s;

  struct stat st;
  if (stat(dir, &st) != 0) {
    if (errno == ENOENT)
      return gan_error(GAN_EIO, "data folder '%s' does not exist", dir);
    return gan_error(GAN_EIO, "cannot open data folder '%s': %s", dir,
                     strerror(errno));
  }
  if (!S_ISDIR(st.st_mode))
    return gan_error(GAN_EIO, "data folder '%s' is not a folder", dir);
  DIR *probe = opendir(dir); /* the root must be readable: an error, */
  if (probe == NULL)         /* where an unreadable subfolder is a warning */
    return gan_error(GAN_EIO, "cannot open data folder '%s': %s", dir,
                     strerror(errno));
  closedir(probe);

  pathlist pl = {NULL, 0, 0};
  ancestor root = {st.st_dev, st.st_ino, NULL};
  if ((s = walk(dir, &root, opts, &pl)) != GAN_OK) {
    pathlist_free(&pl);
    return s;
  }
  if (pl.n > 1) qsort(pl.v, pl.n, sizeof *pl.v, cmp_path);

  const int S = opts->size;
  const size_t per = (size_t)3 * S * S; /* floats per image */
  scratch sc;
  if ((s = scratch_init(&sc, S)) != GAN_OK) {
    pathlist_free(&pl);
    return s;
  }
  float *out = NULL;
  size_t cap = 0, got = 0, bad = 0;
  char msg[4400];
  for (size_t i = 0; i < pl.n; i++) {
    if (got == cap) {
      size_t ncap = cap ? 2 * cap : (pl.n < 16 ? pl.n : 16);
      if (ncap > pl.n) ncap = pl.n;
      float *p = realloc(out, ncap * per * sizeof(float));
      if (p == NULL) {
        s = gan_error(GAN_ENOMEM, "out of memory (%zu bytes) loading '%s'",
                      ncap * per * sizeof(float), dir);
        break;
      }
      out = p;
      cap = ncap;
    }
    s = decode_one(&sc, pl.v[i], S, opts->range, out + got * per);
    if (s == GAN_OK) {
      got++;
    } else if (s == GAN_EIO || s == GAN_EFORMAT) {
      snprintf(msg, sizeof msg, "skipping '%s': %s", pl.v[i], sc.why);
      warn(opts, msg);
      bad++;
      s = GAN_OK;
    } else {
      break; /* out of memory: the message is set */
    }
  }
  scratch_free(&sc);
  pathlist_free(&pl);

  if (s == GAN_OK && got == 0)
    s = gan_error(GAN_EFORMAT, "no usable image in '%s' (%zu files skipped)",
                  dir, bad);
  if (s != GAN_OK) {
    free(out);
    return s;
  }
  if (cap > got) { /* give back the unused tail; keep the block if we can't */
    float *p = realloc(out, got * per * sizeof(float));
    if (p) out = p;
  }
  if (bad > 0) {
    snprintf(msg, sizeof msg, "skipped %zu of %zu files in '%s'", bad,
             bad + got, dir);
    warn(opts, msg);
  }
  *data = out;
  *n = (int64_t)got;
  *skipped = (int64_t)bad;
  return GAN_OK;
}

/* ---- writing a grid ------------------------------------------------------ */

/* A value in 'range' to a byte, clamped, rounded to nearest; NaN gives 0. */
static unsigned char to_byte(float v, gan_range range) {
  float x = range == GAN_RANGE_PM1 ? (v + 1.0f) * 127.5f : v * 255.0f;
  if (!(x >= 0.0f)) return 0;
  if (x >= 255.0f) return 255;
  return (unsigned char)(x + 0.5f);
}

/*
** The grid has cols x rows cells of w x h, GAP-pixel white gaps between
** cells and no outer border: (cols*w + (cols-1)*GAP) x (rows*h + (rows-1)*GAP).
** The PNG goes to "path.tmp-<pid>" first and is renamed onto 'path', so a
** reader never sees half a file and an old grid survives a failed write.
*/
gan_status gan_images_save_grid(const char *path, const float *data,
                                int64_t n, int h, int w, gan_range range,
                                int cols) {
  if (path == NULL || data == NULL)
    return gan_error(GAN_EARG, "gan_images_save_grid: NULL argument");
  if (n <= 0 || h <= 0 || w <= 0 || h > MAX_SIZE || w > MAX_SIZE)
    return gan_error(GAN_EARG, "cannot write grid '%s': bad shape (%lld, 3, "
                     "%d, %d)", path, (long long)n, h, w);
  if (cols <= 0)
    return gan_error(GAN_EARG, "cannot write grid '%s': %d columns", path,
                     cols);
  if (cols > n) cols = (int)n;
  int64_t rows = (n + cols - 1) / cols;
  int64_t W = (int64_t)cols * w + (int64_t)(cols - 1) * GAP;
  int64_t H = rows * h + (rows - 1) * GAP;
  if (W * H > GAN_IMAGE_MAX_PIXELS)
    return gan_error(GAN_EARG, "cannot write grid '%s': %lldx%lld pixels is "
                     "too large", path, (long long)W, (long long)H);

  size_t bytes = (size_t)W * H * 3;
  unsigned char *img = malloc(bytes);
  if (img == NULL)
    return gan_error(GAN_ENOMEM, "out of memory (%zu bytes) for grid '%s'",
                     bytes, path);
  memset(img, 255, bytes); /* white gaps and empty cells */
  const size_t plane = (size_t)h * w;
  for (int64_t i = 0; i < n; i++) {
    const float *im = data + (size_t)i * 3 * plane;
    size_t x0 = (size_t)(i % cols) * (w + GAP);
    size_t y0 = (size_t)(i / cols) * (h + GAP);
    for (int y = 0; y < h; y++) {
      unsigned char *row = img + ((y0 + y) * W + x0) * 3;
      for (int c = 0; c < 3; c++) {
        const float *src = im + c * plane + (size_t)y * w;
        for (int x = 0; x < w; x++) row[3 * x + c] = to_byte(src[x], range);
      }
    }
  }

  size_t tlen = strlen(path) + 32;
  char *tmp = malloc(tlen);
  if (tmp == NULL) {
    free(img);
    return gan_error(GAN_ENOMEM, "out of memory writing grid '%s'", path);
  }
  snprintf(tmp, tlen, "%s.tmp-%ld", path, (long)getpid());
  errno = 0;
  int ok = stbi_write_png(tmp, (int)W, (int)H, 3, img, (int)W * 3);
  int err = errno;
  free(img);
  gan_status s = GAN_OK;
  if (!ok) {
    s = gan_error(GAN_EIO, "cannot write grid '%s': %s", path,
                  err ? strerror(err) : "write failed");
    remove(tmp);
  } else if (rename(tmp, path) != 0) {
    s = gan_error(GAN_EIO, "cannot write grid '%s': %s", path,
                  strerror(errno));
    remove(tmp);
  }
  free(tmp);
  return s;
}
