/*
** image.c -- reading photo folders into planar float arrays, writing grids.
**
** The pipeline for one file (decode_file; gan_image_decode_memory reads
** its buffer as a FILE through fmemopen, so the fuzzer runs this same code):
**   sniff          the first bytes say JPEG, PNG, GIF, BMP or PGM/PPM
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
** stb's headers come from Debian's libstb-dev; its implementations are
** compiled in stb_impl.c, with stb_image's allocations capped.
**
** Grids are written whole or not at all (a temporary file, fsync'ed, then
** renamed), either now or on a thread of their own while training goes on
** (gan_images_save_grid_background, below).
*/
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include "fault.h"
#include "image.h"
#include "stb_impl.h"

#define MAX_SIZE 8192 /* largest output side S */
#define GAP 2         /* pixels between grid cells */
#define INFO_CAP ((size_t)1 << 20) /* stb's allocations for a header: 1 MB */

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

/*
** The kinds of file decoded, known by their first bytes.  stb_image also
** reads TGA (which has no signature, so stb tries it on any file), PSD,
** HDR and PIC; those are refused here: photo folders do not need them,
** and every decoder let in is more code that a hostile file can reach.
*/
typedef enum { FMT_NONE, FMT_JPEG, FMT_PNG, FMT_GIF, FMT_BMP, FMT_PNM } img_format;
static const char *const FORMAT_NAME[] = {"file", "JPEG", "PNG", "GIF", "BMP",
                                          "PGM/PPM"};

/* The kind of the file by its signature; leaves f rewound. */
static img_format sniff(FILE *f) {
  unsigned char m[8] = {0};
  size_t got = fread(m, 1, 8, f);
  rewind(f);
  if (got >= 3 && m[0] == 0xFF && m[1] == 0xD8 && m[2] == 0xFF) return FMT_JPEG;
  if (got == 8 && memcmp(m, "\x89PNG\r\n\x1a\n", 8) == 0) return FMT_PNG;
  if (got >= 6 && (memcmp(m, "GIF87a", 6) == 0 || memcmp(m, "GIF89a", 6) == 0))
    return FMT_GIF;
  if (got >= 2 && m[0] == 'B' && m[1] == 'M') return FMT_BMP;
  if (got >= 2 && m[0] == 'P' && (m[1] == '5' || m[1] == '6')) return FMT_PNM;
  return FMT_NONE;
}

/*
** Checks that stb_image 2.27 (Debian's libstb) leaves to its callers.
** Each refuses a file that would reach a known fault in stb, found by
** fuzz/fuzz_image.c; all leave f rewound, and return NULL for a file that
** may go on to stb, else the reason.  They read the file once more, which
** costs little next to decoding it.
**
** check_jpeg walks the segments as stb does (skipping bytes between
** segments, and the entropy-coded data up to the next marker):
**   - a Huffman table (DHT) must fit in its segment and declare at most
**     256 codes: stb 2.27 reads on past the segment's end and writes the codes
**     into arrays of 257 without checking (fixed in stb 2.28);
**   - a scan (SOS) may only use Huffman tables that a DHT before it
**     defined: stb 2.27 decodes with an undefined table's uninitialised
**     memory, and indexes its arrays with whatever that holds (a read far
**     out of bounds, whose address depends on what the heap held before);
**   - the file must reach its end-of-image marker.  stb refuses a cut file
**     too, but with the reason of the last format it tried (a PNG or PNM
**     signature); this one says what is wrong.
*/
static const char *check_jpeg(FILE *f, int64_t *w, int64_t *h) {
  static const char *cut = "truncated JPEG (the file ends before its "
                           "end-of-image marker)";
  static const char *undefined = "corrupt JPEG (a scan uses a Huffman table "
                                 "that the file does not define before it)";
  const char *why = cut;
  int c, sof = 0;     /* the first SOFn marker: 0xC2 is progressive */
  unsigned tables = 0; /* bit 4 * class + id: the Huffman tables defined */
  if (fseek(f, 2, SEEK_SET) != 0) goto done; /* after SOI */
  for (;;) {
    if ((c = getc(f)) == EOF) goto done;
    if (c != 0xFF) continue; /* entropy-coded data, or padding */
    do c = getc(f); while (c == 0xFF);
    if (c == EOF) goto done;
    if (c == 0x00 || c == 0x01 || c == 0xD8 || (c >= 0xD0 && c <= 0xD7))
      continue; /* a stuffed 0xFF, TEM, SOI, RSTn: no length follows */
    if (c == 0xD9) { /* EOI */
      why = NULL;
      goto done;
    }
    int hi = getc(f), lo = getc(f);
    if (lo == EOF) goto done;
    long len = (long)(hi << 8 | lo) - 2; /* the bytes after the length */
    if (len < 0) {
      why = "corrupt JPEG (a segment shorter than its length field)";
      goto done;
    }
    if (c >= 0xC0 && c <= 0xCF && c != 0xC4 && c != 0xC8 && c != 0xCC &&
        len >= 5 && *w < 0) { /* the first SOFn: precision, height, width */
      unsigned char hdr[5];
      if (fread(hdr, 1, 5, f) != 5) goto done;
      len -= 5;
      *h = hdr[1] << 8 | hdr[2];
      *w = hdr[3] << 8 | hdr[4];
      sof = c;
    }
    /* SOS: components, then Ss, Se, Ah/Al; after a frame stb decodes
    ** (Huffman-coded: SOF0, 1 or 2; it refuses the rest, and a scan before
    ** any frame, itself) */
    if (c == 0xDA && len >= 1 && (sof == 0xC0 || sof == 0xC1 || sof == 0xC2)) {
      unsigned char s[2 * 255 + 3];
      const int n = getc(f);
      if (n == EOF) goto done;
      len -= 1;
      if (len < 2L * n + 3) goto sos_done; /* stb refuses it */
      if (fread(s, 1, (size_t)(2 * n + 3), f) != (size_t)(2 * n + 3)) goto done;
      len -= 2L * n + 3;
      const int ss = s[2 * n], ah = s[2 * n + 2] >> 4;
      for (int i = 0; i < n; i++) {
        const int td = s[2 * i + 1] >> 4, ta = s[2 * i + 1] & 15;
        if (td > 3 || ta > 3) continue; /* stb refuses these itself */
        /* what stb decodes with: both tables in a sequential scan; in a
        ** progressive one, DC (first pass) or AC (Ss > 0), or none (DC
        ** refinement) */
        const int dc = sof != 0xC2 || (ss == 0 && ah == 0), ac = sof != 0xC2 || ss > 0;
        if ((dc && !(tables >> td & 1)) || (ac && !(tables >> (4 + ta) & 1))) {
          why = undefined;
          goto done;
        }
      }
    sos_done:;
    }
    if (c == 0xC4) { /* DHT: tables of [class/id, 16 counts, values] */
      while (len > 0) { /* stb reads a table even past the segment's end */
        unsigned char t[17];
        int n = 0;
        if (len < 17) {
          why = "corrupt JPEG (a bad Huffman table)";
          goto done;
        }
        if (fread(t, 1, 17, f) != 17) goto done; /* cut short */
        len -= 17;
        if (t[0] >> 4 <= 1 && (t[0] & 15) <= 3) /* else stb refuses it */
          tables |= 1u << (4 * (t[0] >> 4) + (t[0] & 15));
        for (int i = 1; i <= 16; i++) n += t[i];
        if (n > 256 || n > len) {
          why = "corrupt JPEG (a bad Huffman table)";
          goto done;
        }
        if (fseek(f, n, SEEK_CUR) != 0) goto done;
        len -= n;
      }
    }
    while (len-- > 0) /* the rest of the segment: read, to see the end */
      if (getc(f) == EOF) goto done;
  }
done:
  rewind(f);
  return why;
}

/*
** check_pnm reads the header's three numbers as stb does (whitespace and
** '#' comments between them): stb 2.27 multiplies by ten past INT_MAX on
** a number of ten digits or more (signed overflow, fixed in stb 2.28).
*/
static const char *check_pnm(FILE *f, int64_t *w, int64_t *h) {
  const char *why = NULL;
  int c = EOF;
  if (fseek(f, 2, SEEK_SET) != 0) goto done; /* after "P5" or "P6" */
  c = getc(f);
  for (int k = 0; k < 3; k++) {
    for (;;) { /* whitespace, then comments to the end of their line */
      while (c != EOF && (c == ' ' || (c >= '\t' && c <= '\r'))) c = getc(f);
      if (c != '#') break;
      while (c != EOF && c != '\n' && c != '\r') c = getc(f);
    }
    int digits = 0;
    int64_t v = 0;
    for (; c >= '0' && c <= '9' && digits <= 9; c = getc(f), digits++)
      v = 10 * v + (c - '0');
    if (digits > 9) {
      why = "corrupt PGM/PPM header (a number of more than 9 digits)";
      goto done;
    }
    if (k == 0) *w = v;
    if (k == 1) *h = v;
  }
done:
  rewind(f);
  return why;
}

/* The size a PNG, GIF or BMP declares in its first bytes; leaves f
** rewound.  Unknown (-1) when the header is too short: stb refuses it. */
static void fixed_header_size(FILE *f, img_format fmt, int64_t *w, int64_t *h) {
  unsigned char b[26] = {0};
  size_t got = fread(b, 1, sizeof b, f);
  rewind(f);
  if (fmt == FMT_PNG && got >= 24 && memcmp(b + 12, "IHDR", 4) == 0) {
    *w = (int64_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    *h = (int64_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
  } else if (fmt == FMT_GIF && got >= 10) { /* the logical screen */
    *w = b[6] | b[7] << 8;
    *h = b[8] | b[9] << 8;
  } else if (fmt == FMT_BMP && got >= 26) {
    uint32_t hsize = (uint32_t)b[14] | b[15] << 8 | b[16] << 16 | (uint32_t)b[17] << 24;
    if (hsize == 12) { /* OS/2: 16-bit sizes */
      *w = b[18] | b[19] << 8;
      *h = b[20] | b[21] << 8;
    } else { /* 32-bit, a negative height for top-down rows */
      *w = (int32_t)((uint32_t)b[18] | b[19] << 8 | b[20] << 16 | (uint32_t)b[21] << 24);
      *h = (int32_t)((uint32_t)b[22] | b[23] << 8 | b[24] << 16 | (uint32_t)b[25] << 24);
      if (*w < 0) *w = -*w;
      if (*h < 0) *h = -*h;
    }
  }
}

/* The checks above for the file's kind, and the size it declares in
** *w, *h (-1 if unknown). */
static const char *check_header(FILE *f, img_format fmt, int64_t *w, int64_t *h) {
  *w = *h = -1;
  if (fmt == FMT_JPEG) return check_jpeg(f, w, h);
  if (fmt == FMT_PNM) return check_pnm(f, w, h);
  fixed_header_size(f, fmt, w, h);
  return NULL;
}

/* Whether a w x h image is over the limits of image.h; if so, why.  The
** sizes come from the file, up to 2^32 each: divide, never multiply. */
static int too_big(scratch *sc, int64_t w, int64_t h) {
  int over_pixels = w > 0 && h > 0 && w > GAN_IMAGE_MAX_PIXELS / h;
  if (w > 0 && h > 0 && !over_pixels && w <= GAN_IMAGE_MAX_SIDE &&
      h <= GAN_IMAGE_MAX_SIDE)
    return 0;
  if (over_pixels)
    snprintf(sc->why, sizeof sc->why, "it declares %lldx%lld pixels, more "
             "than the %d allowed", (long long)w, (long long)h,
             GAN_IMAGE_MAX_PIXELS);
  else if (w > 0 && h > 0)
    snprintf(sc->why, sizeof sc->why, "it declares %lldx%lld pixels, a side "
             "longer than the %d allowed", (long long)w, (long long)h,
             GAN_IMAGE_MAX_SIDE);
  else
    snprintf(sc->why, sizeof sc->why, "it declares %lldx%lld pixels",
             (long long)w, (long long)h);
  return 1;
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

/* stb's failure reason ("outofdata", "bad codelengths", ...) in words: 1
** for data that end too soon, 2 for damaged compressed data, 0 for the
** rest (damaged headers, markers and chunks, each with its own word). */
static int stb_kind(const char *r) {
  static const char *const cut[] = {"outofdata", "read past buffer", NULL};
  static const char *const packed[] = {
      "bad codelengths", "bad code lengths", "bad huffman code", "bad dist", "bad sizes",
      "bad zlib header", "zlib corrupt", "no preset dict", "bad compression",
      "output buffer limit", "bad AC huff", "bad DC huff", "can't merge dc and ac",
      "invalid filter", "not enough pixels", NULL};
  for (int i = 0; cut[i]; i++)
    if (strcmp(r, cut[i]) == 0) return 1;
  for (int i = 0; packed[i]; i++)
    if (strcmp(r, packed[i]) == 0) return 2;
  return 0;
}

/* sc->why for a file stb could not read: what that means, in words, and
** stb's own word for it (for a bug report) when it gave one */
static void corrupt(scratch *sc, img_format fmt) {
  static const char *const said[] = {"corrupt %s: its structure is damaged (stb_image: %s)",
                                     "truncated %s: its data end too soon (stb_image: %s)",
                                     "corrupt %s: its compressed data are damaged (stb_image: %s)"};
  const char *r = stbi_failure_reason();
  if (r == NULL || *r == '\0') {
    snprintf(sc->why, sizeof sc->why, "corrupt or truncated %s", FORMAT_NAME[fmt]);
    return;
  }
  /* stb quotes a PNG chunk's type as it found it, garbage bytes and all:
  ** printable ASCII only in a message */
  char word[64];
  size_t n = 0;
  for (; r[n] != '\0' && n + 1 < sizeof word; n++)
    word[n] = r[n] >= 0x20 && r[n] < 0x7f ? r[n] : '?';
  word[n] = '\0';
  snprintf(sc->why, sizeof sc->why, said[stb_kind(r)], FORMAT_NAME[fmt], word);
}

/* decode_file's second half (below): the pixels of an image whose header
** passed, with w x h the size it declared. */
static gan_status decode_pixels(scratch *sc, FILE *in, const char *name, int S,
                                gan_range range, float *out, img_format fmt,
                                int w, int h) {
  int comp;
  int swap = fmt == FMT_PNM && pnm16_swapped();
  /* no single buffer of a decode needs more than 16 bytes a pixel (16-bit
  ** RGBA, and twice that while a PNG's data inflate), MCU padding aside */
  gan_stb_cap(16 * ((size_t)w + 16) * ((size_t)h + 16) + INFO_CAP);
  int is16 = stbi_is_16_bit_from_file(in);
  void *pix = is16 ? (void *)stbi_load_from_file_16(in, &w, &h, &comp, 0)
                   : (void *)stbi_load_from_file(in, &w, &h, &comp, 0);
  int capped = gan_stb_cap_hit();
  gan_stb_cap(SIZE_MAX);
  if (pix == NULL) {
    /* stb says "outofmem" for a failed malloc: below our cap, that is the
    ** machine's memory, not the file's fault, and stops a folder load */
    if (!capped && strcmp(stbi_failure_reason(), "outofmem") == 0)
      return gan_error(GAN_ENOMEM, "out of memory decoding '%s' (%dx%d)", name,
                       w, h);
    if (capped)
      snprintf(sc->why, sizeof sc->why, "%s whose data need far more memory "
               "than its %dx%d pixels (a decompression bomb?)",
               FORMAT_NAME[fmt], w, h);
    else
      corrupt(sc, fmt);
    return GAN_EFORMAT;
  }
  swap = swap && is16;
  /* stb promises 1..4 channels and the size stbi_info gave; be safe anyway */
  if (comp < 1 || comp > 4 || w <= 0 || h <= 0 ||
      (int64_t)w * h > GAN_IMAGE_MAX_PIXELS) {
    snprintf(sc->why, sizeof sc->why, "%dx%d with %d channels", w, h, comp);
    stbi_image_free(pix);
    return GAN_EFORMAT;
  }

  size_t npix = (size_t)w * h, m = npix * (comp < 3 ? 3 : comp);
  if (sc->rgb_cap < m) {
    float *p = realloc(sc->rgb, m * sizeof(float));
    if (p == NULL) {
      stbi_image_free(pix);
      return gan_error(GAN_ENOMEM, "out of memory (%zu bytes) decoding '%s'",
                       m * sizeof(float), name);
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
  const float *from = sc->rgb;
  if (w != S || h != S) {
    if (!stbir_resize_float(sc->rgb, w, h, 0, sc->small, S, S, 0, 3))
      return gan_error(GAN_ENOMEM, "cannot resize '%s' from %dx%d to %dx%d "
                       "(out of memory)", name, w, h, S, S);
    from = sc->small;
  }
  to_planar(from, S, range, out);
  return GAN_OK;
}

/* Images over BIG_PIXELS decode one at a time, whatever the thread count,
** and give their scratch back after: a folder load's memory is then at most
** one image at the size limit (about 1 GB) plus a thread's share of smaller
** ones, where eight threads could otherwise hold eight of the largest. */
#define BIG_PIXELS ((size_t)1 << 24) /* 16.8 million: 4096 x 4096 */
static pthread_mutex_t big_mu = PTHREAD_MUTEX_INITIALIZER;

/*
** Decodes the image in 'in' into out (3, S, S).  Returns GAN_OK; GAN_EFORMAT
** (not an image, too big, corrupt) with the reason in sc->why and no message
** set, so that a folder load can turn it into a warning; or GAN_ENOMEM with
** the message set (naming 'name'), which stops a folder load.  The declared
** size is checked against GAN_IMAGE_MAX_PIXELS from the header alone
** (stbi_info), before stb allocates the pixels.
*/
static gan_status decode_file(scratch *sc, FILE *in, const char *name, int S,
                             gan_range range, float *out) {
  int w, h, comp;
  img_format fmt = sniff(in);
  if (fmt == FMT_NONE) {
    snprintf(sc->why, sizeof sc->why, "not a JPEG, PNG, GIF, BMP or "
             "binary PGM/PPM file");
    return GAN_EFORMAT;
  }
  /* the size the header declares, checked before stb reads any of it */
  int64_t dw, dh;
  const char *bad = check_header(in, fmt, &dw, &dh);
  if (bad) {
    snprintf(sc->why, sizeof sc->why, "%s", bad);
    return GAN_EFORMAT;
  }
  if ((dw > 0 || dh > 0) && too_big(sc, dw, dh)) return GAN_EFORMAT;
  /* stbi_info_from_file and stbi_is_16_bit_from_file rewind after use */
  gan_stb_cap(INFO_CAP);
  if (!stbi_info_from_file(in, &w, &h, &comp)) {
    corrupt(sc, fmt);
    return GAN_EFORMAT;
  }
  if (too_big(sc, w, h)) return GAN_EFORMAT;
  if ((size_t)w * h <= BIG_PIXELS)
    return decode_pixels(sc, in, name, S, range, out, fmt, w, h);
  pthread_mutex_lock(&big_mu);
  gan_status s = decode_pixels(sc, in, name, S, range, out, fmt, w, h);
  free(sc->rgb);
  sc->rgb = NULL;
  sc->rgb_cap = 0;
  pthread_mutex_unlock(&big_mu);
  return s;
}

/* decode_file on the file at 'path'; GAN_EIO (with sc->why) when it cannot
** be opened. */
static gan_status decode_one(scratch *sc, const char *path, int S,
                             gan_range range, float *out) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(sc->why, sizeof sc->why, "%s", strerror(errno));
    return GAN_EIO;
  }
  gan_status s = decode_file(sc, f, path, S, range, out);
  fclose(f);
  return s;
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

gan_status gan_image_decode_memory(const unsigned char *buf, size_t len,
                                   int size, gan_range range, float *out) {
  scratch sc;
  gan_status s = check_size(size);
  if (s != GAN_OK) return s;
  if (buf == NULL || len == 0) /* fmemopen may refuse a size of 0 */
    return gan_error(GAN_EFORMAT, "cannot decode image in memory: it is empty");
  FILE *f = fmemopen((void *)buf, len, "rb");
  if (f == NULL)
    return gan_error(GAN_ENOMEM, "cannot decode image in memory: %s",
                     strerror(errno));
  if ((s = scratch_init(&sc, size)) == GAN_OK) {
    s = decode_file(&sc, f, "(memory)", size, range, out);
    if (s == GAN_EFORMAT)
      gan_error(s, "cannot decode image (%zu bytes in memory): %s", len,
                sc.why);
    scratch_free(&sc);
  }
  fclose(f);
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

/* Files are decoded on up to LOAD_THREADS threads (OpenMP's count, fewer
** when there are few files), each with its own scratch: a photo folder
** decodes several times faster, with the same result and the same warnings
** in the same order as on one thread.  (Images over BIG_PIXELS still
** decode one at a time: see decode_file.) */
#define LOAD_THREADS 8
#define LOAD_BATCH 4 /* files per thread in a batch */

typedef struct load_result {
  gan_status s;
  char why[1024]; /* scratch.why, or the thread's gan_errmsg() */
} load_result;

static int load_threads(size_t files) {
  int t = 1;
#ifdef _OPENMP
  t = omp_get_max_threads();
#endif
  if (t > LOAD_THREADS) t = LOAD_THREADS;
  if ((size_t)t > files) t = (int)files;
  return t > 1 ? t : 1;
}

static int load_thread(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/*
** Lists, sorts, then decodes a batch of files at a time straight into the
** output array, which doubles when full; a file that fails leaves its slot
** to the next one.  Outputs are written only on success.
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
  const int T = load_threads(pl.n);
  const size_t batch = (size_t)T * LOAD_BATCH;
  scratch sc[LOAD_THREADS];
  load_result *res = calloc(batch, sizeof *res);
  int ready = 0;
  if (res == NULL)
    s = gan_error(GAN_ENOMEM, "out of memory loading '%s'", dir);
  while (s == GAN_OK && ready < T && (s = scratch_init(&sc[ready], S)) == GAN_OK)
    ready++;
  float *out = NULL;
  size_t cap = 0, got = 0, bad = 0;
  char msg[4400];
  /* a batch of files at a time, decoded in parallel into the slots after
  ** the images kept so far, then kept (moved down over the failures) or
  ** reported, in path order */
  for (size_t i0 = 0; s == GAN_OK && i0 < pl.n; i0 += batch) {
    const int m = (int)(pl.n - i0 < batch ? pl.n - i0 : batch);
    if (got + m > cap) {
      size_t ncap = cap ? 2 * cap : 16;
      if (ncap < got + m) ncap = got + m;
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
    float *slots = out + got * per;
#ifdef _OPENMP
#pragma omp parallel for num_threads(T) schedule(dynamic, 1) if (T > 1)
#endif
    for (int j = 0; j < m; j++) {
      scratch *mine = &sc[load_thread()];
      load_result *r = &res[j];
      r->s = decode_one(mine, pl.v[i0 + j], S, opts->range, slots + j * per);
      if (r->s == GAN_EIO || r->s == GAN_EFORMAT)
        snprintf(r->why, sizeof r->why, "%s", mine->why);
      else if (r->s != GAN_OK) /* out of memory: this thread's message */
        snprintf(r->why, sizeof r->why, "%s", gan_errmsg());
    }
    for (int j = 0; j < m && s == GAN_OK; j++) {
      if (res[j].s == GAN_OK) {
        if (slots + j * per != out + got * per)
          memmove(out + got * per, slots + j * per, per * sizeof(float));
        got++;
      } else if (res[j].s == GAN_EIO || res[j].s == GAN_EFORMAT) {
        snprintf(msg, sizeof msg, "skipping '%s': %s", pl.v[i0 + j], res[j].why);
        warn(opts, msg);
        bad++;
      } else {
        s = gan_error(res[j].s, "%s", res[j].why);
      }
    }
  }
  for (int t = 0; t < ready; t++) scratch_free(&sc[t]);
  free(res);
  pathlist_free(&pl);

  if (s == GAN_OK && got == 0)
    s = gan_error(GAN_EFORMAT, "no usable image in '%s' (%zu file%s skipped)",
                  dir, bad, bad == 1 ? "" : "s");
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

/* stb_image_write's output goes through this: it notes the first error
** (stbi_write_png itself ignores fwrite's result, and fclose's).  PNG comes
** in one call, JPEG a byte at a time: both go through 'buf', written out
** when full and at the end (stdio's own buffer is off: see write_image). */
typedef struct img_out {
  gan_wfile out;
  int err; /* errno of the first failed write, or 0 */
  size_t used;
  unsigned char buf[1 << 16];
} img_out;

static void out_write(img_out *o, const void *data, size_t n) {
  if (o->err || n == 0) return;
  errno = 0;
  if (gan_fault_fwrite(&o->out, data, n) != n) o->err = errno ? errno : EIO;
}

static void out_flush(img_out *o) {
  out_write(o, o->buf, o->used);
  o->used = 0;
}

static void img_write_cb(void *ctx, void *data, int size) {
  img_out *o = ctx;
  if (size <= 0) return;
  if (o->used + (size_t)size > sizeof o->buf) out_flush(o);
  if ((size_t)size >= sizeof o->buf) {
    out_write(o, data, (size_t)size);
    return;
  }
  memcpy(o->buf + o->used, data, (size_t)size);
  o->used += (size_t)size;
}

/* The file format a grid's name asks for, by its ending (any case): PNG,
** JPEG (quality 95) or BMP, which gan_images_load reads back; -1 for any
** other name. */
enum { OUT_PNG, OUT_JPEG, OUT_BMP };
static int format_of(const char *path) {
  static const struct { const char *ext; int fmt; } known[] = {
      {".png", OUT_PNG}, {".jpg", OUT_JPEG}, {".jpeg", OUT_JPEG}, {".bmp", OUT_BMP}};
  const char *dot = strrchr(path, '.');
  if (dot == NULL || strchr(dot, '/') != NULL) return -1;
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (strcasecmp(dot, known[i].ext) == 0) return known[i].fmt;
  return -1;
}

int gan_images_grid_name(const char *path) { return path != NULL && format_of(path) >= 0; }

/* The image img (H, W, 3), in the format of 'path', into 'tmp', flushed and
** fsync'ed, every error checked: on a full disk the caller must not rename
** a cut file over a good one.  Messages name 'path', the file the user
** asked for. */
static gan_status write_image(const char *tmp, const char *path,
                              const unsigned char *img, int W, int H) {
  img_out *o = calloc(1, sizeof *o); /* 64 KB: not on a thread's stack */
  if (o == NULL)
    return gan_error(GAN_ENOMEM, "cannot write grid '%s': out of memory", path);
  gan_status s = GAN_OK;
  if (!gan_wfile_open(&o->out, tmp)) {
    s = gan_error(GAN_EIO, "cannot write grid '%s': %s", path, strerror(errno));
    free(o);
    return s;
  }
  /* no stdio buffer: none is left for a fork()ed child's exit() to write a
  ** second time (the bytes wait in o->buf, which exit() does not see) */
  setvbuf(o->out.f, NULL, _IONBF, 0);
  int ok;
  switch (format_of(path)) {
    case OUT_JPEG: ok = stbi_write_jpg_to_func(img_write_cb, o, W, H, 3, img, 95); break;
    case OUT_BMP: ok = stbi_write_bmp_to_func(img_write_cb, o, W, H, 3, img); break;
    default: ok = stbi_write_png_to_func(img_write_cb, o, W, H, 3, img, W * 3); break;
  }
  out_flush(o);
  if (ok && !o->err && (fflush(o->out.f) != 0 || fsync(fileno(o->out.f)) != 0))
    o->err = errno ? errno : EIO;
  if (fclose(o->out.f) != 0 && !o->err) o->err = errno ? errno : EIO;
  if (!ok)
    s = gan_error(GAN_ENOMEM, "cannot write grid '%s': out of memory encoding "
                  "the image", path);
  else if (o->err)
    s = gan_error(GAN_EIO, "cannot write grid '%s': %s", path, strerror(o->err));
  free(o);
  return s;
}

/* A grid rendered to bytes, waiting to be encoded: what a background write
** owns (path and img are its own copies, freed by grid_free). */
typedef struct grid {
  char *path;
  unsigned char *img; /* (H, W, 3) */
  int W, H;
} grid;

static void grid_free(grid *g) {
  free(g->path);
  free(g->img);
  free(g);
}

/*
** The grid has cols x rows cells of w x h, GAP-pixel white gaps between
** cells and no outer border: (cols*w + (cols-1)*GAP) x (rows*h + (rows-1)*GAP).
*/
static gan_status render_grid(const char *path, const float *data, int64_t n,
                              int h, int w, gan_range range, int cols,
                              grid **out) {
  *out = NULL;
  if (path == NULL || data == NULL)
    return gan_error(GAN_EARG, "gan_images_save_grid: NULL argument");
  if (n <= 0 || h <= 0 || w <= 0 || h > MAX_SIZE || w > MAX_SIZE)
    return gan_error(GAN_EARG, "cannot write grid '%s': bad shape (%lld, 3, "
                     "%d, %d)", path, (long long)n, h, w);
  if (cols <= 0)
    return gan_error(GAN_EARG, "cannot write grid '%s': %d columns", path,
                     cols);
  if (format_of(path) < 0)
    return gan_error(GAN_EARG, "cannot write grid '%s': the format comes from "
                     "the name's ending, which must be .png, .jpg, .jpeg or "
                     ".bmp", path);
  if (cols > n) cols = (int)n;
  int64_t rows = (n + cols - 1) / cols;
  int64_t W = (int64_t)cols * w + (int64_t)(cols - 1) * GAP;
  int64_t H = rows * h + (rows - 1) * GAP;
  if (W * H > GAN_IMAGE_MAX_PIXELS)
    return gan_error(GAN_EARG, "cannot write grid '%s': %lldx%lld pixels is "
                     "too large", path, (long long)W, (long long)H);

  size_t bytes = (size_t)W * H * 3;
  grid *g = calloc(1, sizeof *g);
  if (g) g->path = strdup(path);
  if (g && g->path) g->img = malloc(bytes);
  if (g == NULL || g->img == NULL) {
    if (g) grid_free(g);
    return gan_error(GAN_ENOMEM, "out of memory (%zu bytes) for grid '%s'",
                     bytes, path);
  }
  g->W = (int)W;
  g->H = (int)H;
  unsigned char *img = g->img;
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
  *out = g;
  return GAN_OK;
}

/* The PNG goes to "path.tmp-<pid>" first and is renamed onto 'path', so a
** reader never sees half a file and an old grid survives a failed write. */
static gan_status write_grid(const grid *g) {
  size_t tlen = strlen(g->path) + 32;
  char *tmp = malloc(tlen);
  if (tmp == NULL)
    return gan_error(GAN_ENOMEM, "out of memory writing grid '%s'", g->path);
  snprintf(tmp, tlen, "%s.tmp-%ld", g->path, (long)getpid());
  gan_status s = write_image(tmp, g->path, g->img, g->W, g->H);
  if (s == GAN_OK && rename(tmp, g->path) != 0)
    s = gan_error(GAN_EIO, "cannot write grid '%s': %s", g->path,
                  strerror(errno));
  if (s != GAN_OK) remove(tmp);
  free(tmp);
  return s;
}

/* ---- writing a grid in the background ------------------------------------ */

/*
** At most one grid is in flight, on a thread of its own started for it (a
** training run samples seconds apart; a thread costs tens of microseconds,
** the PNG tens of milliseconds).  The next call joins it first, so memory
** stays bounded and writes land in the order they were asked for.  Its
** failure is kept until a call can report it.  Everything below bg_mu is
** touched only with bg_mu held; the thread itself touches only its job.
*/
typedef struct bg_job {
  grid *g;
  gan_status status;
  char msg[1024]; /* gan_errmsg() of the thread, which is thread-local */
} bg_job;

static pthread_mutex_t bg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t bg_thread;
static bg_job *bg_running;            /* the job of bg_thread, or NULL */
static gan_status bg_failed = GAN_OK; /* the first failure not yet reported */
static char bg_msg[1024];
static pid_t bg_pid; /* the process whose thread it is: a fork has none */
static int bg_exit_hooked;

static void *bg_main(void *arg) {
  bg_job *j = arg;
  j->status = write_grid(j->g);
  if (j->status != GAN_OK) snprintf(j->msg, sizeof j->msg, "%s", gan_errmsg());
  return NULL;
}

/* Waits for the write in flight, keeping its failure if none is kept. */
static void bg_join_locked(void) {
  if (bg_running == NULL) return;
  pthread_join(bg_thread, NULL);
  if (bg_running->status != GAN_OK && bg_failed == GAN_OK) {
    bg_failed = bg_running->status;
    memcpy(bg_msg, bg_running->msg, sizeof bg_msg);
  }
  grid_free(bg_running->g);
  free(bg_running);
  bg_running = NULL;
}

/* The kept failure, as this thread's error, and forgotten; or GAN_OK. */
static gan_status bg_take_locked(void) {
  gan_status s = bg_failed;
  bg_failed = GAN_OK;
  return s == GAN_OK ? GAN_OK : gan_error(s, "%s", bg_msg);
}

/* A child of fork() has no writer thread: it forgets the parent's (its
** mutex may have been held by it, too). */
static void bg_in_child(void) {
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  bg_mu = fresh;
  bg_running = NULL;
  bg_failed = GAN_OK;
}

/* At exit (a script's os.exit too) the last grid still lands; a failure
** nobody asked about is printed rather than lost. */
static void bg_at_exit(void) {
  if (getpid() != bg_pid) return;
  pthread_mutex_lock(&bg_mu);
  bg_join_locked();
  if (bg_take_locked() != GAN_OK) fprintf(stderr, "gan: %s\n", gan_errmsg());
  pthread_mutex_unlock(&bg_mu);
}

gan_status gan_images_save_grid(const char *path, const float *data,
                                int64_t n, int h, int w, gan_range range,
                                int cols) {
  grid *g;
  gan_status s = render_grid(path, data, n, h, w, range, cols, &g);
  if (s != GAN_OK) return s;
  pthread_mutex_lock(&bg_mu); /* one writer at a time, in order */
  bg_join_locked();
  s = write_grid(g);
  pthread_mutex_unlock(&bg_mu);
  grid_free(g);
  return s;
}

gan_status gan_images_save_grid_background(const char *path, const float *data,
                                           int64_t n, int h, int w,
                                           gan_range range, int cols) {
  grid *g;
  gan_status s = render_grid(path, data, n, h, w, range, cols, &g);
  if (s != GAN_OK) return s;
  bg_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    grid_free(g);
    return gan_error(GAN_ENOMEM, "out of memory writing grid '%s'", path);
  }
  j->g = g;
  pthread_mutex_lock(&bg_mu);
  bg_join_locked();
  if (!bg_exit_hooked)
    bg_exit_hooked = atexit(bg_at_exit) == 0 &&
                     pthread_atfork(NULL, NULL, bg_in_child) == 0;
  bg_pid = getpid();
  if (bg_exit_hooked && pthread_create(&bg_thread, NULL, bg_main, j) == 0) {
    bg_running = j;
    s = GAN_OK;
  } else { /* no thread (or no exit hook to wait for it): write it now */
    s = write_grid(g);
    grid_free(g);
    free(j);
  }
  if (s == GAN_OK) s = bg_take_locked(); /* an earlier grid's failure */
  pthread_mutex_unlock(&bg_mu);
  return s;
}

gan_status gan_images_flush(void) {
  pthread_mutex_lock(&bg_mu);
  bg_join_locked();
  gan_status s = bg_take_locked();
  pthread_mutex_unlock(&bg_mu);
  return s;
}
