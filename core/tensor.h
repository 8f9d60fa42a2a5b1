/*
** tensor.h -- float32 tensors of up to 4 dimensions, owned by a backend.
**
** A tensor is a shape plus a pointer into memory that its backend allocated
** (host memory on the CPU, device memory on CUDA).  Data are always
** contiguous and row-major.  A view (gan_tensor_rows) points into another
** tensor's memory and does not own it: whoever holds the view must keep the
** parent alive (the Lua binding does so with a user value).
**
** The struct is plain data so that it can live inside a Lua userdata: it is
** initialised empty first (gan_tensor_init), then allocated, so a failed
** allocation leaves a valid, empty tensor whose release does nothing.
*/
#ifndef GAN_TENSOR_H
#define GAN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define GAN_MAX_DIMS 4

typedef struct gan_backend gan_backend;

typedef struct gan_tensor {
  int ndim;                      /* 0 for a scalar (or an empty tensor) */
  int64_t shape[GAN_MAX_DIMS];
  int64_t numel;
  float *data;                   /* NULL while empty or freed */
  gan_backend *backend;
  int owner;                     /* 1 if data is released with the tensor */
  const struct gan_tensor *base; /* a view: the tensor whose memory it shows */
  int zero_pending;              /* reads as zeros; data not yet written (ops.h:
                                    gan_zero_later); never set on a view */
} gan_tensor;

void gan_tensor_init(gan_tensor *t);

/* The element count of a shape of ndim positive dimensions, at most 2^40
** (the tensor limit, which keeps products of sizes from overflowing). */
gan_status gan_shape_numel(int ndim, const int64_t *shape, int64_t *numel);

/* Allocates an uninitialised tensor of the given shape on 'be'. */
gan_status gan_tensor_alloc(gan_tensor *t, gan_backend *be, int ndim,
                            const int64_t *shape);

/* Releases the data if owned, and leaves the tensor empty.  Idempotent. */
void gan_tensor_release(gan_tensor *t);

/* Makes 'view' refer to rows [first, first+count) of 'parent' (rows are the
** first dimension), without copying. */
gan_status gan_tensor_rows(gan_tensor *view, const gan_tensor *parent,
                           int64_t first, int64_t count);

/* Whether t can be used: it has data and, for a view, the tensors it
** shows still hold that memory (a view outlives a parent that was freed,
** or reallocated, only as a dead tensor: never as a dangling pointer). */
int gan_tensor_live(const gan_tensor *t);

/* Same shape? */
int gan_tensor_same_shape(const gan_tensor *a, const gan_tensor *b);

/* Whether a and b (either may be NULL) share any memory: on one backend,
** with overlapping data. */
int gan_tensor_overlap(const gan_tensor *a, const gan_tensor *b);

/* Writes "2x3" into buf. */
const char *gan_tensor_shape_str(const gan_tensor *t, char *buf, size_t n);

/* rows = shape[0]; cols = numel / rows (1 for a 0-d tensor). */
int64_t gan_tensor_rows_n(const gan_tensor *t);
int64_t gan_tensor_cols(const gan_tensor *t);

#endif
