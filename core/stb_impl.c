/*
** stb_impl.c -- stb's implementations (stb_image, stb_image_resize,
** stb_image_write), compiled here from Debian's libstb-dev headers rather
** than linked from its libstb, for two reasons:
**   - stb_image's allocations go through a cap (stb_impl.h) that image.c
**     sets from the size an image declares, which stb itself never bounds;
**   - the fuzzer (fuzz/fuzz_image.c) builds this same file with the
**     sanitizers, so what is fuzzed is what ships.
** It is third-party code: CMake compiles it without warnings.
*/
#include <stdint.h>
#include <stdlib.h>

#include "stb_impl.h"

static _Thread_local size_t cap = SIZE_MAX;
static _Thread_local int hit;

void gan_stb_cap(size_t bytes) {
  cap = bytes;
  hit = 0;
}

int gan_stb_cap_hit(void) { return hit; }

static void *capped_malloc(size_t n) {
  if (n > cap) {
    hit = 1;
    return NULL;
  }
  return malloc(n);
}

static void *capped_realloc(void *p, size_t n) {
  if (n > cap) {
    hit = 1;
    return NULL; /* p stays valid: stb frees it */
  }
  return realloc(p, n);
}

#define STBI_MALLOC(sz) capped_malloc(sz)
#define STBI_REALLOC(p, newsz) capped_realloc(p, newsz)
#define STBI_FREE(p) free(p)
/* only the decoders image.c lets files reach (see sniff there) */
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_GIF
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>
