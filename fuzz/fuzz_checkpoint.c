/*
** fuzz_checkpoint.c -- libFuzzer target for the checkpoint reader.
**
** Every input is a checkpoint file's bytes, read by gan_ckpt_read_memory,
** which runs the file reader's code (core/checkpoint.c) on an fmemopen
** stream.  Built with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, the reader
** ignores its XXH64 checksums, so that mutated inputs get past them into
** the directory and the payloads (the checksums are tested on their own in
** tests/test_checkpoint.c).  Whatever the bytes, the call must return a
** status; an accepted file must be self-consistent.  See fuzz/README.md.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

static void fail(const char *what) {
  fprintf(stderr, "fuzz_checkpoint: accepted a file with %s\n", what);
  abort(); /* a finding: the fuzzer saves the input */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gan_ckpt c;
  if (gan_ckpt_read_memory(data, size, "fuzz", &c) != GAN_OK) {
    if (c.count != 0 || c.entries != NULL) fail("a refusal that kept entries");
    return 0;
  }
  if (c.version != GAN_CKPT_VERSION) fail("another version");
  for (uint32_t i = 0; i < c.count; i++) {
    const gan_ckpt_entry *e = &c.entries[i];
    if (e->name == NULL || e->name[0] == '\0') fail("an empty name");
    if (e->kind == GAN_CKPT_TENSOR) {
      uint64_t n = 1;
      for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] <= 0) fail("a dimension that is not positive");
        n *= (uint64_t)e->shape[d];
      }
      if (n * 4 != e->nbytes) fail("a tensor whose size does not match its shape");
    } else if (e->kind != GAN_CKPT_BLOB || e->ndim != 0) {
      fail("an unknown kind");
    }
    if (e->nbytes > size) fail("an entry larger than the file");
    if (e->nbytes && e->data == NULL) fail("no data");
    volatile unsigned char sink = 0; /* touch the payload: ASan checks it */
    for (uint64_t b = 0; b < e->nbytes; b++) sink ^= ((const unsigned char *)e->data)[b];
    (void)sink;
  }
  gan_ckpt_free(&c);
  return 0;
}
