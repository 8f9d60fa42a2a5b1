/*
** tensor.c -- allocation, release and row views of tensors.
*/
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "tensor.h"

void gan_tensor_init(gan_tensor *t) { memset(t, 0, sizeof *t); }

gan_status gan_shape_numel(int ndim, const int64_t *shape, int64_t *numel) {
  if (ndim < 0 || ndim > GAN_MAX_DIMS)
    return gan_error(GAN_EARG, "a tensor has 0 to %d dimensions, not %d",
                     GAN_MAX_DIMS, ndim);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] <= 0)
      return gan_error(GAN_EARG, "dimension %d of a tensor must be positive, not %lld",
                       i + 1, (long long)shape[i]);
    if (n > ((int64_t)1 << 40) / shape[i])
      return gan_error(GAN_EARG, "tensor too large (over 2^40 elements)");
    n *= shape[i];
  }
  *numel = n;
  return GAN_OK;
}

gan_status gan_tensor_alloc(gan_tensor *t, gan_backend *be, int ndim,
                            const int64_t *shape) {
  int64_t numel;
  gan_status st = gan_shape_numel(ndim, shape, &numel);
  if (st != GAN_OK) return st;
  float *data = be->iface.alloc(be->ctx, (size_t)numel * sizeof(float));
  if (!data) return GAN_ENOMEM; /* the backend named the bytes */
  gan_tensor_release(t);
  t->ndim = ndim;
  for (int i = 0; i < GAN_MAX_DIMS; i++) t->shape[i] = i < ndim ? shape[i] : 1;
  t->numel = numel;
  t->data = data;
  t->backend = be;
  t->owner = 1;
  return GAN_OK;
}

void gan_tensor_release(gan_tensor *t) {
  if (t->data && t->owner) t->backend->iface.free(t->backend->ctx, t->data);
  gan_tensor_init(t);
}

gan_status gan_tensor_rows(gan_tensor *view, const gan_tensor *parent,
                           int64_t first, int64_t count) {
  if (!parent->data) return gan_error(GAN_EARG, "rows: the tensor is freed");
  if (parent->ndim < 1) return gan_error(GAN_EARG, "rows: a scalar has no rows");
  if (first < 0)
    return gan_error(GAN_EARG, "rows: row %lld is before row 1", (long long)first + 1);
  /* as a difference: first + count can overflow (and the message's row is
  ** unsigned: first + 1 can too) */
  if (count < 1 || first > parent->shape[0] || count > parent->shape[0] - first)
    return gan_error(GAN_EARG, "rows: %lld rows from row %llu do not fit in the %lld rows",
                     (long long)count, (unsigned long long)first + 1,
                     (long long)parent->shape[0]);
  int64_t cols = gan_tensor_cols(parent);
  *view = *parent;
  view->shape[0] = count;
  view->numel = count * cols;
  view->data = parent->data + first * cols;
  view->owner = 0;
  view->base = parent;
  view->zero_pending = 0; /* the parent's, if any, is written before use */
  return GAN_OK;
}

int gan_tensor_live(const gan_tensor *t) {
  for (; t != NULL; t = t->base) {
    const gan_tensor *b = t->base;
    if (!t->data) return 0;
    if (b && (!b->data || t->data < b->data ||
              t->data + t->numel > b->data + b->numel))
      return 0;
  }
  return 1;
}

int gan_tensor_same_shape(const gan_tensor *a, const gan_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return 0;
  return 1;
}

int gan_tensor_overlap(const gan_tensor *a, const gan_tensor *b) {
  if (!a || !b || !a->data || !b->data || a->backend != b->backend) return 0;
  uintptr_t a0 = (uintptr_t)a->data, a1 = (uintptr_t)(a->data + a->numel);
  uintptr_t b0 = (uintptr_t)b->data, b1 = (uintptr_t)(b->data + b->numel);
  return a0 < b1 && b0 < a1;
}

const char *gan_tensor_shape_str(const gan_tensor *t, char *buf, size_t n) {
  size_t used = 0;
  buf[0] = '\0';
  if (t->ndim == 0) {
    snprintf(buf, n, t->data ? "scalar" : "freed");
    return buf;
  }
  for (int i = 0; i < t->ndim && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, i ? "x%lld" : "%lld",
                             (long long)t->shape[i]);
  return buf;
}

int64_t gan_tensor_rows_n(const gan_tensor *t) {
  return t->ndim ? t->shape[0] : 1;
}

int64_t gan_tensor_cols(const gan_tensor *t) {
  return t->ndim ? t->numel / t->shape[0] : 1;
}
