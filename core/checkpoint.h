/*
** checkpoint.h -- the checkpoint file: named tensors and blobs, checksummed,
** written atomically.
**
** A checkpoint is a flat list of named entries.  An entry is either a float32
** tensor (with its shape) or a blob of bytes (the Lua side stores its
** metadata there as Lua source: options, epoch, step, generator state, model
** descriptions).  The file says what it is and checks itself:
**
**   header   "GANCKPT\0"  u32 version  u32 count
**   entry    u16 name length, name bytes
**            u8 kind (1 tensor, 2 blob)  u8 ndim  i64 shape[ndim]
**            u64 payload bytes  u64 XXH64 of the payload
**            payload (tensors: float32)
**   trailer  u64 XXH64 of the directory (header and every entry but the
**            payloads, whose own checksums it covers)  "GANCKEND"
**
** Integers and floats are little-endian.  Every entry's payload is checked
** by its own hash, the names, shapes and sizes by the trailer's, so any
** changed byte, a truncation anywhere and trailing garbage are all refused.
**
** Writing goes to "path.tmp-PID", is flushed and fsync'ed, then renamed onto
** 'path' and the folder fsync'ed: a crash at any moment leaves either the
** old file or the new one, never half of one.  A later write removes the
** temporary files that killed writers left (their process gone, unchanged
** for a minute).  Writes go through fault.h, so a test can make them fail
** as a full disk would.
**
** Reading loads every entry into fresh host memory and checks everything
** before returning; the caller copies into live tensors only then.  A
** declared size is never allocated unless the rest of the file can hold it,
** so a hostile header cannot make it allocate more than the file's size.
** Every error names the file.
*/
#ifndef GAN_CHECKPOINT_H
#define GAN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "tensor.h" /* GAN_MAX_DIMS */

#define GAN_CKPT_VERSION 1

typedef enum gan_ckpt_kind {
  GAN_CKPT_TENSOR = 1, /* float32, shape[ndim] */
  GAN_CKPT_BLOB = 2    /* bytes, ndim 0 */
} gan_ckpt_kind;

typedef struct gan_ckpt_entry {
  char *name;          /* NUL-terminated, 1..65535 bytes */
  gan_ckpt_kind kind;
  int ndim;
  int64_t shape[GAN_MAX_DIMS];
  uint64_t nbytes;
  void *data;          /* malloc'ed; NULL once the caller took it */
} gan_ckpt_entry;

typedef struct gan_ckpt {
  uint32_t version;
  uint32_t count;
  gan_ckpt_entry *entries;
} gan_ckpt;

/* XXH64 (Yann Collet's xxHash, 64-bit variant) of len bytes. */
uint64_t gan_xxh64(const void *data, size_t len, uint64_t seed);

/* --- writing -------------------------------------------------------------
** begin, then exactly 'count' puts, then commit.  After a failed put, call
** abort.  commit and abort free the writer; on failure neither leaves the
** temporary file behind, and the file at 'path' is untouched. */
typedef struct gan_ckpt_writer gan_ckpt_writer;

gan_status gan_ckpt_begin(gan_ckpt_writer **w, const char *path, uint32_t count);
/* data: host memory, nbytes long (numel * 4 for a tensor) */
gan_status gan_ckpt_put(gan_ckpt_writer *w, const char *name, gan_ckpt_kind kind,
                        int ndim, const int64_t *shape, const void *data,
                        uint64_t nbytes);
gan_status gan_ckpt_commit(gan_ckpt_writer *w);
void gan_ckpt_abort(gan_ckpt_writer *w);

/* --- reading -------------------------------------------------------------
** Fills *out (free it with gan_ckpt_free) or returns an error naming the
** file and what is wrong; then *out is empty. */
gan_status gan_ckpt_read(const char *path, gan_ckpt *out);
/* The same for a file image in memory (the fuzzer's entry point); 'name'
** stands for the path in messages. */
gan_status gan_ckpt_read_memory(const void *buf, size_t len, const char *name,
                                gan_ckpt *out);
void gan_ckpt_free(gan_ckpt *c);

#endif
