/*
** fuzz_image.c -- libFuzzer target for the image-loading path.
**
** Every input is an image file's bytes.  gan_image_decode_memory runs the
** same pipeline as a photo folder's load (stbi_info and the pixel limit,
** stb's decoder for the format it recognises, channels to RGB, resize,
** planar output), on stb's own code compiled in with the sanitizers
** (fuzz/stb_impl.c), so stb's parsers are fuzzed and measured too.
** Whatever the bytes, the call must return a status; on success every
** output value must be in [0, 1].  See fuzz/README.md.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "image.h"

#define S 8 /* small, and not the size of most inputs: the resize runs */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static float out[3 * S * S];
  if (gan_image_decode_memory(data, size, S, GAN_RANGE_01, out) != GAN_OK)
    return 0;
  for (int i = 0; i < 3 * S * S; i++) {
    if (!(out[i] >= 0.0f && out[i] <= 1.0f)) {
      fprintf(stderr, "fuzz_image: output %d is %g, outside [0, 1]\n", i,
              (double)out[i]);
      abort(); /* a finding: the fuzzer saves the input */
    }
  }
  return 0;
}
