/*
** fault.h -- write-failure injection, to test what a full disk does.
**
** The files the core writes (checkpoints, PNG grids) go through
** gan_fault_fwrite instead of fwrite.  Normally it is fwrite.  With the
** environment variable GAN_FAULT_WRITE_AFTER=N, every such file fails with
** ENOSPC ("No space left on device") once N bytes of it are written, as a
** full disk would; with GAN_FAULT_WRITE_MATCH=TEXT as well, only the files
** whose path contains TEXT fail.  The variables are read when a file is
** opened, so a test can set them for one subprocess.  spec/robustness_spec.lua
** and tests/test_faults.c use them; nothing else should.
*/
#ifndef GAN_FAULT_H
#define GAN_FAULT_H

#include <stdint.h>
#include <stdio.h>

/* A file being written: the stream, the bytes written so far, and the
** byte count after which writes fail (UINT64_MAX: never). */
typedef struct gan_wfile {
  FILE *f;
  uint64_t written, limit;
} gan_wfile;

/* Opens 'path' for writing ("wb") with the limit the environment sets for
** it.  Returns 0 with errno set when fopen fails. */
int gan_wfile_open(gan_wfile *w, const char *path);

/* fwrite through the limit: returns n, or less with errno set (ENOSPC when
** the limit cut it short). */
size_t gan_fault_fwrite(gan_wfile *w, const void *p, size_t n);

#endif
