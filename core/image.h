/*
** image.h -- reading photo folders into float arrays, writing PNG grids.
**
** Images are stored planar (channel-major, "CHW") per image, float32, the
** layout that convolutions want and that dense layers do not care about:
** image i, channel c, row y, column x is at data[((i*3 + c)*S + y)*S + x].
**
** Decoding uses stb_image for JPEG, PNG, GIF (the first frame), BMP and
** binary PGM/PPM, known by their first bytes; stb's other formats (TGA,
** PSD, HDR, PIC) are refused, to keep hostile files away from decoders
** that photo folders do not need.  Resizing uses stb_image_resize; writing
** uses stb_image_write.
** Everything here works in host memory: the caller uploads to a backend.
*/
#ifndef GAN_IMAGE_H
#define GAN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Images larger than this many pixels, or with a side longer than
** GAN_IMAGE_MAX_SIDE, are refused from their header, before decoding (a
** decompression bomb declares a huge size in a small file).  The largest
** accepted image takes about 1 GB while it is decoded and resized; a very
** long thin one would take more to resize than its pixels, hence the side
** limit.  Within these, no buffer of stb's may exceed 16 bytes a pixel
** (core/stb_impl.h), which stops the other kind of bomb: a small PNG whose
** data inflate to gigabytes. */
#ifndef GAN_IMAGE_MAX_PIXELS /* the fuzzer lowers it, to run faster */
#define GAN_IMAGE_MAX_PIXELS (1 << 26) /* 67 million: 8192 x 8192 */
#endif
#define GAN_IMAGE_MAX_SIDE 32768

typedef enum { GAN_RANGE_01 = 0, GAN_RANGE_PM1 = 1 } gan_range;

/* Called once per skipped file with a one-line message naming it.  NULL
** means print "gan: warning: <message>\n" to stderr. */
typedef void (*gan_warn_fn)(void *ud, const char *msg);

typedef struct gan_image_opts {
  int size;            /* output side S: every image is resized to S x S */
  gan_range range;     /* [0,1] or [-1,1] */
  gan_warn_fn warn;    /* NULL: stderr */
  void *warn_ud;
} gan_image_opts;

/*
** Loads every decodable image under 'dir' and its subfolders, in sorted
** path order (so a seed gives the same run on every machine).  Hidden files
** and folders (names starting with '.') are ignored.  Each image is forced
** to RGB: grey is expanded, alpha is composited on white, 16-bit channels are
** reduced to 8 bits.  It is then resized to S x S and scaled to the range.
**
** On success *data is a malloc'ed array of (*n) * 3*S*S floats (free it with
** free), *n >= 1, and *skipped counts the files that could not be decoded;
** each of those was reported through opts->warn, and, if any, one last warning
** gives their count.  A missing folder, or one with no usable image, is an
** error naming the folder; nothing is allocated then.  Files are decoded on
** up to 8 OpenMP threads; the result and the warnings, in path order, are
** the same on any number.
*/
gan_status gan_images_load(const char *dir, const gan_image_opts *opts,
                           float **data, int64_t *n, int64_t *skipped);

/*
** Decodes one image file into a 3*S*S planar array (caller-provided 'out'),
** as gan_images_load does for each file.  An error names the file.
*/
gan_status gan_image_load_file(const char *path, int size, gan_range range,
                               float *out /* (3, S, S) */);

/*
** The same for an image held in memory (buf[0..len)): the fuzzer's entry
** point, and the one for data that does not come from a file.
*/
gan_status gan_image_decode_memory(const unsigned char *buf, size_t len,
                                   int size, gan_range range,
                                   float *out /* (3, S, S) */);

/* 1 if a grid can be written under 'path': its ending names a format
** gan writes and reads back (.png, .jpg, .jpeg, .bmp, any case); else 0. */
int gan_images_grid_name(const char *path);

/*
** Writes n images (each 3 x h x w planar, values in 'range', clamped) as one
** grid, in the format its name asks for (gan_images_grid_name), with 'cols'
** columns (the last row may be short), 2-pixel gaps, on a white background.
** Written to a temporary file then renamed, so an existing file at 'path' is
** never left half-written.  An error names the file.
*/
gan_status gan_images_save_grid(const char *path, const float *data,
                                int64_t n, int h, int w, gan_range range,
                                int cols);

/*
** The same grid, written on a background thread: the images are turned into
** bytes before it returns (so 'data' can be reused at once), and the PNG's
** encoding, fsync and rename, tens of milliseconds at 128x128, overlap what
** the caller does next.  One grid at a time is in flight: a call first waits
** for the one before.  Returns an error about this grid's arguments, or the
** failure of an earlier background grid (its message names that file); a
** failure not yet returned is returned by gan_images_flush.  At exit the
** grid in flight is still written, and a failure nobody took is printed.
** gan_images_save_grid also waits for the grid in flight, so writes to one
** path land in the order they were asked for.
*/
gan_status gan_images_save_grid_background(const char *path, const float *data,
                                           int64_t n, int h, int w,
                                           gan_range range, int cols);

/* Waits for the background grid in flight, if any; returns the failure of a
** background grid not yet returned (once), or GAN_OK. */
gan_status gan_images_flush(void);

#endif
