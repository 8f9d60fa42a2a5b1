/*
** ops.c -- the checked entry points of ops.h.
**
** Each wrapper checks its tensors once -- allocated, on one backend, shapes
** that fit -- then calls the backend slot.  Messages name the op, the
** argument and the shapes, e.g.
**   "linear_forward: input is 100x3072 but weight is 1024x49152 (input
**    columns must equal weight columns)".
*/
#include <stdio.h>

#include "ops.h"

#define IFACE(t) ((t)->backend->iface)
#define CTX(t) ((t)->backend->ctx)

/* The shape of t as text, in a rotating set of buffers so that one message
** can show several shapes. */
static const char *shp(const gan_tensor *t) {
  static _Thread_local char bufs[4][64];
  static _Thread_local int next;
  char *b = bufs[next++ & 3];
  return gan_tensor_shape_str(t, b, 64);
}

/* t is allocated (not freed), and on the backend of 'ref' if given. */
static gan_status live(const char *op, const char *name, const gan_tensor *t,
                       const gan_tensor *ref) {
  if (!t || !t->data)
    return gan_error(GAN_EARG, "%s: %s is a freed tensor", op, name);
  if (ref && t->backend != ref->backend)
    return gan_error(GAN_EARG, "%s: %s is on %s but the others are on %s", op,
                     name, IFACE(t).name, IFACE(ref).name);
  return GAN_OK;
}

/* An output must not share memory with what the op reads (the products and
** the copies read their inputs after they start writing); a and b may be
** NULL.  Tensors on different backends never share. */
static gan_status apart(const char *op, const char *na, const gan_tensor *a,
                        const char *nb, const gan_tensor *b) {
  if (gan_tensor_overlap(a, b))
    return gan_error(GAN_EARG, "%s: the %s and the %s share memory (give the "
                     "output a tensor of its own)", op, na, nb);
  return GAN_OK;
}

/* An elementwise op may write in place (the output is the input, element
** for element) but not into memory that overlaps an input at an offset:
** there the result would depend on the order the elements are done in,
** which a GPU does not fix. */
static gan_status same_or_apart(const char *op, const char *na, const gan_tensor *a,
                                const char *nb, const gan_tensor *b) {
  if (a && b && a->data == b->data && a->numel == b->numel) return GAN_OK;
  return apart(op, na, a, nb, b);
}

/* The same dimensions, for ops whose operands pair element for element
** (a 3x2 tensor added to a 2x3 one is a mistake, not a reshape). */
static gan_status same_shape(const char *op, const char *na, const gan_tensor *a,
                             const char *nb, const gan_tensor *b) {
  if (!gan_tensor_same_shape(a, b))
    return gan_error(GAN_EARG, "%s: %s is %s but %s is %s (shapes must match)", op,
                     na, shp(a), nb, shp(b));
  return GAN_OK;
}

static gan_status same_numel(const char *op, const char *na,
                             const gan_tensor *a, const char *nb,
                             const gan_tensor *b) {
  if (a->numel != b->numel)
    return gan_error(GAN_EARG, "%s: %s is %s but %s is %s (sizes must match)", op,
                     na, shp(a), nb, shp(b));
  return GAN_OK;
}

#define TRY(x)                                                                 \
  do {                                                                         \
    gan_status s_ = (x);                                                       \
    if (s_ != GAN_OK) return s_;                                               \
  } while (0)

/* Each of an op's n outputs (any of them NULL) apart from each of its m
** inputs, and from every output after it: what an op that writes its
** outputs while it reads its inputs needs. */
static gan_status outs_apart(const char *op, int n, const gan_tensor *const *outs,
                             const char *const *on, int m, const gan_tensor *const *ins,
                             const char *const *in) {
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < m; j++) TRY(apart(op, on[i], outs[i], in[j], ins[j]));
    for (int j = i + 1; j < n; j++) TRY(apart(op, on[i], outs[i], on[j], outs[j]));
  }
  return GAN_OK;
}

gan_status gan_fill(gan_tensor *x, float value) {
  TRY(live("fill", "tensor", x, NULL));
  IFACE(x).fill(CTX(x), x->data, value, (size_t)x->numel);
  return GAN_OK;
}

gan_status gan_zero_later(gan_tensor *x) {
  TRY(live("zero_later", "tensor", x, NULL));
  if (x->base != NULL) return gan_fill(x, 0.0f); /* its parent holds the flag */
  x->zero_pending = 1;
  return GAN_OK;
}

gan_status gan_tensor_ready(gan_tensor *x) {
  for (const gan_tensor *t = x; t != NULL; t = t->base) {
    if (!t->zero_pending) continue;
    gan_tensor *w = (gan_tensor *)t; /* a parent is const only to views */
    TRY(gan_fill(w, 0.0f));
    w->zero_pending = 0;
  }
  return GAN_OK;
}

gan_status gan_copy(gan_tensor *dst, const gan_tensor *src) {
  TRY(live("copy", "destination", dst, NULL));
  TRY(live("copy", "source", src, NULL));
  TRY(same_numel("copy", "destination", dst, "source", src));
  if (dst->data != src->data) TRY(apart("copy", "destination", dst, "source", src));
  if (dst->backend == src->backend) {
    IFACE(dst).copy(CTX(dst), dst->data, src->data, (size_t)dst->numel);
    return GAN_OK;
  }
  /* across backends, one of them is the CPU: its memory is host memory */
  if (src->backend == gan_backend_cpu())
    return IFACE(dst).from_host(CTX(dst), dst->data, src->data, (size_t)dst->numel);
  if (dst->backend == gan_backend_cpu())
    return IFACE(src).to_host(CTX(src), dst->data, src->data, (size_t)dst->numel);
  return gan_error(GAN_EARG, "copy: from %s to %s is not supported",
                   IFACE(src).name, IFACE(dst).name);
}

gan_status gan_to_host(const gan_tensor *src, float *dst_host) {
  TRY(live("to_host", "tensor", src, NULL));
  return IFACE(src).to_host(CTX(src), dst_host, src->data, (size_t)src->numel);
}

gan_status gan_from_host(gan_tensor *dst, const float *src_host) {
  TRY(live("from_host", "tensor", dst, NULL));
  return IFACE(dst).from_host(CTX(dst), dst->data, src_host, (size_t)dst->numel);
}

gan_status gan_axpby(gan_tensor *y, float a, const gan_tensor *x, float b) {
  TRY(live("axpby", "y", y, NULL));
  TRY(live("axpby", "x", x, y));
  TRY(same_shape("axpby", "y", y, "x", x));
  TRY(same_or_apart("axpby", "y", y, "x", x));
  IFACE(y).axpby(CTX(y), y->data, a, x->data, b, (size_t)y->numel);
  return GAN_OK;
}

gan_status gan_mul(gan_tensor *y, const gan_tensor *a, const gan_tensor *b) {
  TRY(live("mul", "result", y, NULL));
  TRY(live("mul", "a", a, y));
  TRY(live("mul", "b", b, y));
  TRY(same_shape("mul", "a", a, "b", b));
  TRY(same_shape("mul", "result", y, "a", a));
  TRY(same_or_apart("mul", "result", y, "a", a));
  TRY(same_or_apart("mul", "result", y, "b", b));
  IFACE(y).mul(CTX(y), y->data, a->data, b->data, (size_t)y->numel);
  return GAN_OK;
}

gan_status gan_sum(const gan_tensor *x, double *out) {
  TRY(live("sum", "tensor", x, NULL));
  return IFACE(x).sum(CTX(x), x->data, (size_t)x->numel, out);
}

gan_status gan_sum_to(gan_tensor *out, const gan_tensor *x, double scale) {
  TRY(live("sum", "tensor", x, NULL));
  TRY(live("sum", "result", out, x));
  if (out->numel != 1)
    return gan_error(GAN_EARG, "sum: the result must have 1 element, not %s", shp(out));
  IFACE(x).sum_to(CTX(x), out->data, x->data, (size_t)x->numel, scale);
  return GAN_OK;
}

/* --- readers ---------------------------------------------------------------- */

void gan_reader_close(gan_reader *r) {
  if (r->handle) r->backend->iface.reader_free(r->backend->ctx, r->handle);
  r->handle = NULL;
  r->backend = NULL;
  r->pending = 0;
  r->n = 0;
}

gan_status gan_reader_start(gan_reader *r, const gan_tensor *const *ts, int nt) {
  /* a start drops the previous read; a copy of it still in flight lands
  ** before this one's (one stream), so it need not be waited for */
  r->n = 0;
  r->pending = 0;
  if (nt < 0 || nt > GAN_READ_MAX)
    return gan_error(GAN_EARG, "read: %d tensors (at most %d)", nt, GAN_READ_MAX);
  const float *src[GAN_READ_MAX];
  size_t counts[GAN_READ_MAX], total = 0;
  for (int i = 0; i < nt; i++) {
    TRY(live("read", "tensor", ts[i], ts[0]));
    if ((size_t)ts[i]->numel > GAN_READ_MAX - total)
      return gan_error(GAN_EARG, "read: more than %d values at once", GAN_READ_MAX);
    src[i] = ts[i]->data;
    counts[i] = (size_t)ts[i]->numel;
    total += counts[i];
  }
  if (nt == 0) return GAN_OK;
  gan_backend *be = ts[0]->backend;
  if (r->backend != be) {
    gan_reader_close(r);
    TRY(be->iface.reader_new(be->ctx, &r->handle));
    r->backend = be;
  }
  TRY(be->iface.reader_start(be->ctx, r->handle, src, counts, nt));
  r->n = (int)total;
  r->pending = 1;
  return GAN_OK;
}

int gan_reader_ready(gan_reader *r) {
  if (!r->pending) return 1;
  return r->backend->iface.reader_ready(r->backend->ctx, r->handle);
}

gan_status gan_reader_wait(gan_reader *r) {
  if (!r->pending) return GAN_OK;
  r->pending = 0;
  gan_status s = r->backend->iface.reader_wait(r->backend->ctx, r->handle, r->values,
                                               (size_t)r->n);
  if (s != GAN_OK) r->n = 0; /* no stale values */
  return s;
}

gan_status gan_gather_rows(gan_tensor *dst, const gan_tensor *src,
                           const int64_t *idx) {
  TRY(live("gather_rows", "destination", dst, NULL));
  TRY(live("gather_rows", "source", src, dst));
  TRY(apart("gather_rows", "destination", dst, "source", src));
  int64_t rows = gan_tensor_rows_n(dst), cols = gan_tensor_cols(dst);
  if (gan_tensor_cols(src) != cols)
    return gan_error(GAN_EARG, "gather_rows: destination is %s but source is %s "
                     "(rows must have the same size)", shp(dst), shp(src));
  for (int64_t r = 0; r < rows; r++)
    if (idx[r] < 0 || idx[r] >= gan_tensor_rows_n(src))
      return gan_error(GAN_EARG, "gather_rows: index %lld is outside the %lld rows "
                       "of the source", (long long)idx[r],
                       (long long)gan_tensor_rows_n(src));
  IFACE(dst).gather_rows(CTX(dst), dst->data, src->data, idx, rows, cols);
  return GAN_OK;
}

gan_status gan_randn(gan_tensor *x, gan_rng *rng, float mean, float std) {
  TRY(live("randn", "tensor", x, NULL));
  IFACE(x).randn(CTX(x), x->data, (size_t)x->numel, gan_rng_next(rng), mean, std);
  return GAN_OK;
}

gan_status gan_rand(gan_tensor *x, gan_rng *rng, float lo, float hi) {
  TRY(live("rand", "tensor", x, NULL));
  IFACE(x).rand(CTX(x), x->data, (size_t)x->numel, gan_rng_next(rng), lo, hi);
  return GAN_OK;
}

gan_status gan_matmul(gan_tensor *C, const gan_tensor *A, int ta,
                      const gan_tensor *B, int tb, float alpha, float beta) {
  TRY(live("matmul", "C", C, NULL));
  TRY(live("matmul", "A", A, C));
  TRY(live("matmul", "B", B, C));
  TRY(apart("matmul", "output C", C, "input A", A));
  TRY(apart("matmul", "output C", C, "input B", B));
  if (A->ndim != 2 || B->ndim != 2 || C->ndim != 2)
    return gan_error(GAN_EARG, "matmul: A, B and C must be 2-d (got %s, %s, %s)",
                     shp(A), shp(B), shp(C));
  int64_t M = ta ? A->shape[1] : A->shape[0], K = ta ? A->shape[0] : A->shape[1];
  int64_t K2 = tb ? B->shape[1] : B->shape[0], N = tb ? B->shape[0] : B->shape[1];
  if (K != K2 || C->shape[0] != M || C->shape[1] != N)
    return gan_error(GAN_EARG, "matmul: op(A) is %lldx%lld, op(B) is %lldx%lld "
                     "and C is %s: they do not chain", (long long)M, (long long)K,
                     (long long)K2, (long long)N, shp(C));
  IFACE(C).matmul(CTX(C), ta, tb, (int)M, (int)N, (int)K, alpha, A->data,
                  B->data, beta, C->data);
  return GAN_OK;
}

/* (B, C) of a dense input, and the weight's (OC, C) */
static gan_status linear_shapes(const char *op, const gan_tensor *inp,
                                const gan_tensor *weight, const gan_tensor *bias,
                                int *B, int *C, int *OC) {
  if (weight->ndim != 2)
    return gan_error(GAN_EARG, "%s: weight must be 2-d (out, in), not %s", op,
                     shp(weight));
  *B = (int)gan_tensor_rows_n(inp);
  *C = (int)gan_tensor_cols(inp);
  *OC = (int)weight->shape[0];
  if (*C != weight->shape[1])
    return gan_error(GAN_EARG, "%s: input is %s but weight is %s (input columns "
                     "must equal weight columns)", op, shp(inp), shp(weight));
  if (bias && bias->numel != *OC)
    return gan_error(GAN_EARG, "%s: bias is %s but weight is %s (bias must have "
                     "%d elements)", op, shp(bias), shp(weight), *OC);
  return GAN_OK;
}

/* a forward pass's output apart from its inputs, and the workspace (which
** it writes too) apart from everything */
static gan_status fwd_apart(const char *op, const gan_tensor *out,
                            const gan_tensor *inp, const gan_tensor *weight,
                            const gan_tensor *bias, const gan_tensor *ws) {
  const gan_tensor *outs[2] = {out, ws}, *ins[3] = {inp, weight, bias};
  const char *on[2] = {"output", "workspace"}, *in[3] = {"input", "weight", "bias"};
  return outs_apart(op, 2, outs, on, 3, ins, in);
}

static gan_status linear_forward_checks(const char *op, const gan_tensor *out,
                                        const gan_tensor *inp, const gan_tensor *weight,
                                        const gan_tensor *bias, int *B, int *C, int *OC) {
  TRY(live(op, "output", out, NULL));
  TRY(live(op, "input", inp, out));
  TRY(live(op, "weight", weight, out));
  if (bias) TRY(live(op, "bias", bias, out));
  TRY(fwd_apart(op, out, inp, weight, bias, NULL));
  TRY(linear_shapes(op, inp, weight, bias, B, C, OC));
  if (gan_tensor_rows_n(out) != *B || gan_tensor_cols(out) != *OC)
    return gan_error(GAN_EARG, "%s: output is %s, expected %dx%d", op, shp(out), *B, *OC);
  return GAN_OK;
}

gan_status gan_linear_forward(gan_tensor *out, const gan_tensor *inp,
                              const gan_tensor *weight, const gan_tensor *bias) {
  int B, C, OC;
  TRY(linear_forward_checks("linear_forward", out, inp, weight, bias, &B, &C, &OC));
  IFACE(out).linear_forward(CTX(out), out->data, inp->data, weight->data,
                            bias ? bias->data : NULL, B, C, OC);
  return GAN_OK;
}

gan_status gan_linear_act_forward(gan_tensor *out, gan_tensor *y, const gan_tensor *inp,
                                  const gan_tensor *weight, const gan_tensor *bias,
                                  gan_act act, float alpha) {
  const char *op = "linear_forward"; /* what a user called: a Linear's forward */
  int B, C, OC;
  TRY(linear_forward_checks(op, out, inp, weight, bias, &B, &C, &OC));
  TRY(live(op, "activation output", y, out));
  TRY(same_numel(op, "activation output", y, "output", out));
  const gan_tensor *ys[1] = {y}, *others[4] = {out, inp, weight, bias};
  const char *yn[1] = {"activation output"}, *names[4] = {"output", "input", "weight", "bias"};
  TRY(outs_apart(op, 1, ys, yn, 4, others, names));
  const float *b = bias ? bias->data : NULL;
  if (IFACE(out).linear_act_forward) {
    IFACE(out).linear_act_forward(CTX(out), out->data, y->data, inp->data, weight->data, b,
                                  act, alpha, B, C, OC);
  } else {
    IFACE(out).linear_forward(CTX(out), out->data, inp->data, weight->data, b, B, C, OC);
    IFACE(y).act_forward(CTX(y), act, alpha, y->data, out->data, (size_t)y->numel);
  }
  return GAN_OK;
}

/* a backward pass's outputs (the gradients, any of them NULL) apart from
** its inputs, from the workspace and from each other */
static gan_status grads_apart(const char *op, const gan_tensor *dinp,
                              const gan_tensor *dweight, const gan_tensor *dbias,
                              const gan_tensor *dout, const gan_tensor *inp,
                              const gan_tensor *weight, const gan_tensor *ws) {
  const gan_tensor *outs[3] = {dinp, dweight, dbias};
  const char *on[3] = {"input gradient", "weight gradient", "bias gradient"};
  const gan_tensor *ins[4] = {dout, inp, weight, ws};
  const char *in[4] = {"gradient", "input", "weight", "workspace"};
  return outs_apart(op, 3, outs, on, 4, ins, in);
}

static gan_status linear_backward_checks(const char *op, const gan_tensor *dinp,
                                         const gan_tensor *dweight, const gan_tensor *dbias,
                                         const gan_tensor *dout, const gan_tensor *inp,
                                         const gan_tensor *weight, int *B, int *C,
                                         int *OC) {
  TRY(live(op, "gradient", dout, NULL));
  TRY(live(op, "input", inp, dout));
  TRY(live(op, "weight", weight, dout));
  TRY(linear_shapes(op, inp, weight, NULL, B, C, OC));
  if (gan_tensor_rows_n(dout) != *B || gan_tensor_cols(dout) != *OC)
    return gan_error(GAN_EARG, "%s: gradient is %s, expected %dx%d (the output's "
                     "shape)", op, shp(dout), *B, *OC);
  if (dinp) {
    TRY(live(op, "input gradient", dinp, dout));
    TRY(same_numel(op, "input gradient", dinp, "input", inp));
  }
  if (dweight) {
    TRY(live(op, "weight gradient", dweight, dout));
    TRY(same_numel(op, "weight gradient", dweight, "weight", weight));
  }
  if (dbias) {
    TRY(live(op, "bias gradient", dbias, dout));
    if (dbias->numel != *OC)
      return gan_error(GAN_EARG, "%s: bias gradient is %s, expected %d elements",
                       op, shp(dbias), *OC);
  }
  return grads_apart(op, dinp, dweight, dbias, dout, inp, weight, NULL);
}

/* The zeros a backward's two parameter gradients (either may be NULL) are
** owed, after its checks.  Those marked zero (gan_zero_later) are
** overwritten, not added to: *over is 1 when every one given is marked;
** else the marked ones are zeroed first.  dx, the input gradient (or
** NULL), is overwritten anyway but gets its zeros, so that its mark goes. */
static gan_status grads_zeros(gan_tensor *dx, gan_tensor *da, gan_tensor *db, int *over) {
  *over = (da || db) && (!da || da->zero_pending) && (!db || db->zero_pending);
  if (!*over) {
    if (da) TRY(gan_tensor_ready(da));
    if (db) TRY(gan_tensor_ready(db));
  }
  if (dx) TRY(gan_tensor_ready(dx));
  return GAN_OK;
}

/* the marks the backward's overwrite has honoured */
static void grads_written(gan_tensor *da, gan_tensor *db, int over) {
  if (!over) return;
  if (da) da->zero_pending = 0;
  if (db) db->zero_pending = 0;
}

gan_status gan_linear_backward(gan_tensor *dinp, gan_tensor *dweight,
                               gan_tensor *dbias, const gan_tensor *dout,
                               const gan_tensor *inp, const gan_tensor *weight) {
  int B = 0, C = 0, OC = 0, over = 0;
  TRY(linear_backward_checks("linear_backward", dinp, dweight, dbias, dout, inp, weight,
                             &B, &C, &OC));
  TRY(grads_zeros(dinp, dweight, dbias, &over));
  IFACE(dout).linear_backward(CTX(dout), dinp ? dinp->data : NULL,
                              dweight ? dweight->data : NULL,
                              dbias ? dbias->data : NULL, dout->data, inp->data,
                              weight->data, B, C, OC, over);
  grads_written(dweight, dbias, over);
  return GAN_OK;
}

gan_status gan_act_forward(gan_act act, float alpha, gan_tensor *y,
                           const gan_tensor *x) {
  TRY(live("activation", "output", y, NULL));
  TRY(live("activation", "input", x, y));
  TRY(same_numel("activation", "output", y, "input", x));
  TRY(same_or_apart("activation", "output", y, "input", x));
  IFACE(y).act_forward(CTX(y), act, alpha, y->data, x->data, (size_t)y->numel);
  return GAN_OK;
}

static gan_status act_backward_checks(const gan_tensor *dx, const gan_tensor *dy,
                                      const gan_tensor *x, const gan_tensor *y) {
  const char *op = "activation backward";
  TRY(live(op, "input gradient", dx, NULL));
  TRY(live(op, "gradient", dy, dx));
  TRY(live(op, "input", x, dx));
  TRY(live(op, "output", y, dx));
  TRY(same_numel(op, "gradient", dy, "input", x));
  TRY(same_numel(op, "input gradient", dx, "input", x));
  TRY(same_numel(op, "output", y, "input", x));
  TRY(same_or_apart(op, "input gradient", dx, "gradient", dy));
  TRY(same_or_apart(op, "input gradient", dx, "input", x));
  return same_or_apart(op, "input gradient", dx, "output", y);
}

gan_status gan_act_backward(gan_act act, float alpha, gan_tensor *dx,
                            const gan_tensor *dy, const gan_tensor *x,
                            const gan_tensor *y) {
  TRY(act_backward_checks(dx, dy, x, y));
  IFACE(dx).act_backward(CTX(dx), act, alpha, dx->data, dy->data, x->data,
                         y->data, (size_t)dx->numel);
  return GAN_OK;
}

gan_status gan_linear_act_backward(gan_act act, float alpha, gan_tensor *dz,
                                   const gan_tensor *dy, const gan_tensor *z,
                                   const gan_tensor *y, gan_tensor *dinp,
                                   gan_tensor *dweight, gan_tensor *dbias,
                                   const gan_tensor *inp, const gan_tensor *weight) {
  int B = 0, C = 0, OC = 0, over = 0;
  /* every check of both ops before either writes anything */
  TRY(act_backward_checks(dz, dy, z, y));
  const char *op = "linear_backward";
  TRY(linear_backward_checks(op, dinp, dweight, dbias, dz, inp, weight, &B, &C, &OC));
  /* a backend may write dbias while other threads still read these */
  TRY(apart(op, "bias gradient", dbias, "activation's gradient", dy));
  TRY(apart(op, "bias gradient", dbias, "activation's input", z));
  TRY(apart(op, "bias gradient", dbias, "activation's output", y));
  TRY(grads_zeros(dinp, dweight, dbias, &over));
  float *di = dinp ? dinp->data : NULL, *dw = dweight ? dweight->data : NULL,
        *db = dbias ? dbias->data : NULL;
  if (IFACE(dz).linear_act_backward) {
    IFACE(dz).linear_act_backward(CTX(dz), act, alpha, dz->data, dy->data, z->data,
                                  y->data, di, dw, db, inp->data, weight->data, B, C, OC,
                                  over);
  } else {
    IFACE(dz).act_backward(CTX(dz), act, alpha, dz->data, dy->data, z->data, y->data,
                           (size_t)dz->numel);
    IFACE(dz).linear_backward(CTX(dz), di, dw, db, dz->data, inp->data, weight->data, B, C,
                              OC, over);
  }
  grads_written(dweight, dbias, over);
  return GAN_OK;
}

/* The operands of dropout, either way: 'out' (the output, or the input
** gradient) pairs element for element with 'in' (the input, or the
** gradient) and with the mask; it may be 'in' itself, never over the mask. */
static gan_status masked_operands(const char *op, const char *out_name,
                                  const gan_tensor *out, const char *in_name,
                                  const gan_tensor *in, const gan_tensor *mask) {
  TRY(live(op, out_name, out, NULL));
  TRY(live(op, in_name, in, out));
  TRY(live(op, "mask", mask, out));
  TRY(same_numel(op, in_name, in, "mask", mask));
  TRY(same_numel(op, out_name, out, "mask", mask));
  TRY(same_or_apart(op, out_name, out, in_name, in));
  return apart(op, out_name, out, "mask", mask);
}

gan_status gan_dropout_forward(gan_tensor *y, gan_tensor *mask,
                               const gan_tensor *x, float p, gan_rng *rng) {
  const char *op = "dropout";
  TRY(masked_operands(op, "output", y, "input", x, mask));
  TRY(apart(op, "mask", mask, "input", x)); /* the mask is written too */
  if (!(p >= 0.0f && p < 1.0f))
    return gan_error(GAN_EARG, "dropout: p must be in [0, 1), not %g", (double)p);
  IFACE(y).dropout_forward(CTX(y), y->data, mask->data, x->data,
                           (size_t)y->numel, p, gan_rng_next(rng));
  return GAN_OK;
}

/* dx = dy .* mask; dy pairs with the input element for element, as the
** other backward ops take it (same count), in whatever shape it comes */
gan_status gan_dropout_backward(gan_tensor *dx, const gan_tensor *dy,
                                const gan_tensor *mask) {
  TRY(masked_operands("dropout backward", "input gradient", dx, "gradient", dy, mask));
  IFACE(dx).mul(CTX(dx), dx->data, dy->data, mask->data, (size_t)dx->numel);
  return GAN_OK;
}

/* (B, C, S) of a batch-norm input: channels are dimension 2 */
static gan_status bn_shapes(const char *op, const gan_tensor *x,
                            const gan_tensor *per_channel[], const char *names[],
                            int count, int *B, int *C, int *S) {
  if (x->ndim < 2)
    return gan_error(GAN_EARG, "%s: input must be (batch, channels, ...), not %s",
                     op, shp(x));
  *B = (int)x->shape[0];
  *C = (int)x->shape[1];
  *S = (int)(x->numel / ((int64_t)*B * *C));
  for (int i = 0; i < count; i++) {
    TRY(live(op, names[i], per_channel[i], x));
    if (per_channel[i]->numel != *C)
      return gan_error(GAN_EARG, "%s: %s is %s but the input has %d channels", op,
                       names[i], shp(per_channel[i]), *C);
  }
  return GAN_OK;
}

gan_status gan_batchnorm_forward(gan_tensor *y, gan_tensor *mean,
                                 gan_tensor *rstd, gan_tensor *run_mean,
                                 gan_tensor *run_var, const gan_tensor *x,
                                 const gan_tensor *gamma, const gan_tensor *beta,
                                 float momentum, float eps, int training) {
  const char *op = "batchnorm";
  int B = 0, C = 0, S = 0;
  TRY(live(op, "input", x, NULL));
  TRY(live(op, "output", y, x));
  TRY(same_numel(op, "output", y, "input", x));
  const gan_tensor *pc[] = {mean, rstd, run_mean, run_var, gamma, beta};
  const char *names[] = {"mean", "rstd", "running mean", "running variance",
                         "gamma", "beta"};
  TRY(bn_shapes(op, x, pc, names, 6, &B, &C, &S));
  TRY(same_or_apart(op, "output", y, "input", x));
  /* one value per channel (a batch of 1 in a dense layer) is allowed, as in
  ** Keras: its variance is 0, so y = beta and dx = 0 (PyTorch refuses it) */
  IFACE(y).batchnorm_forward(CTX(y), y->data, mean->data, rstd->data,
                             run_mean->data, run_var->data, x->data, gamma->data,
                             beta->data, B, C, S, momentum, eps, training);
  return GAN_OK;
}

gan_status gan_batchnorm_backward(gan_tensor *dx, gan_tensor *dgamma,
                                  gan_tensor *dbeta, const gan_tensor *dy,
                                  const gan_tensor *x, const gan_tensor *gamma,
                                  const gan_tensor *mean, const gan_tensor *rstd,
                                  int training) {
  const char *op = "batchnorm backward";
  int B = 0, C = 0, S = 0;
  TRY(live(op, "input", x, NULL));
  TRY(live(op, "gradient", dy, x));
  TRY(same_numel(op, "gradient", dy, "input", x));
  const gan_tensor *pc[5] = {gamma, mean, rstd};
  const char *names[5] = {"gamma", "mean", "rstd"};
  int count = 3;
  if (dgamma) pc[count] = dgamma, names[count++] = "gamma gradient";
  if (dbeta) pc[count] = dbeta, names[count++] = "beta gradient";
  TRY(bn_shapes(op, x, pc, names, count, &B, &C, &S));
  if (dx) {
    TRY(live(op, "input gradient", dx, x));
    TRY(same_numel(op, "input gradient", dx, "input", x));
    TRY(same_or_apart(op, "input gradient", dx, "input", x));
    TRY(same_or_apart(op, "input gradient", dx, "gradient", dy));
  }
  /* the parameter gradients apart from what the op reads, from dx and from
  ** each other (the overwrite below stores where an add would read) */
  const gan_tensor *outs[2] = {dgamma, dbeta}, *ins[6] = {dy, x, gamma, mean, rstd, dx};
  const char *on[2] = {"gamma gradient", "beta gradient"},
             *in[6] = {"gradient", "input", "gamma", "mean", "rstd", "input gradient"};
  TRY(outs_apart(op, 2, outs, on, 6, ins, in));
  int over = 0;
  TRY(grads_zeros(dx, dgamma, dbeta, &over));
  IFACE(x).batchnorm_backward(CTX(x), dx ? dx->data : NULL,
                              dgamma ? dgamma->data : NULL,
                              dbeta ? dbeta->data : NULL, dy->data, x->data,
                              gamma->data, mean->data, rstd->data, B, C, S,
                              training, over);
  grads_written(dgamma, dbeta, over);
  return GAN_OK;
}

gan_status gan_bce_forward(gan_tensor *loss, const gan_tensor *pred,
                           const gan_tensor *target, int logits) {
  const char *op = logits ? "bce_with_logits" : "bce";
  TRY(live(op, "prediction", pred, NULL));
  TRY(live(op, "target", target, pred));
  TRY(live(op, "loss", loss, pred));
  TRY(same_shape(op, "prediction", pred, "target", target));
  if (loss->numel != 1)
    return gan_error(GAN_EARG, "%s: loss must have 1 element, not %s", op, shp(loss));
  IFACE(pred).bce_forward(CTX(pred), loss->data, pred->data, target->data,
                          (size_t)pred->numel, logits);
  return GAN_OK;
}

gan_status gan_bce_backward(gan_tensor *dpred, const gan_tensor *pred,
                            const gan_tensor *target, int logits) {
  const char *op = logits ? "bce_with_logits backward" : "bce backward";
  TRY(live(op, "prediction", pred, NULL));
  TRY(live(op, "target", target, pred));
  TRY(live(op, "gradient", dpred, pred));
  TRY(same_shape(op, "prediction", pred, "target", target));
  TRY(same_shape(op, "gradient", dpred, "prediction", pred));
  TRY(same_or_apart(op, "gradient", dpred, "prediction", pred));
  TRY(same_or_apart(op, "gradient", dpred, "target", target));
  IFACE(pred).bce_backward(CTX(pred), dpred->data, pred->data, target->data,
                           (size_t)pred->numel, logits);
  return GAN_OK;
}

/* --- convolutions ----------------------------------------------------------
** Every wrapper builds one gan_conv2d_desc, in the terms of the ordinary
** convolution x -> y (backend.h): for conv2d x is the input and y the
** output, for the transposed layer the other way round. */

/* A NULL slot: the backend has no convolutions yet (the CUDA one). */
static gan_status no_slot(const char *op, const gan_tensor *t) {
  return gan_error(GAN_EBACKEND, "%s is not implemented on %s", op, IFACE(t).name);
}

/* Checks x, y and the weight against each other and fills d. */
static gan_status conv_desc(const char *op, const gan_tensor *x,
                            const gan_tensor *y, const gan_tensor *w, int stride,
                            int pad, int transposed, gan_conv2d_desc *d) {
  const gan_tensor *inp = transposed ? y : x, *out = transposed ? x : y;
  if (inp->ndim != 4)
    return gan_error(GAN_EARG, "%s: input must be 4-d (batch, channels, height, "
                     "width), not %s", op, shp(inp));
  if (w->ndim != 4)
    return gan_error(GAN_EARG, "%s: weight must be 4-d (%s), not %s", op,
                     transposed ? "in, out, kh, kw" : "out, in, kh, kw", shp(w));
  if (out->ndim != 4)
    return gan_error(GAN_EARG, "%s: output must be 4-d, not %s", op, shp(out));
  if (stride < 1 || pad < 0)
    return gan_error(GAN_EARG, "%s: stride must be at least 1 and padding at "
                     "least 0 (got %d and %d)", op, stride, pad);
  if (inp->shape[1] != w->shape[transposed ? 0 : 1])
    return gan_error(GAN_EARG, "%s: input is %s but weight is %s (the input has "
                     "%lld channels, the weight expects %lld)", op, shp(inp),
                     shp(w), (long long)inp->shape[1],
                     (long long)w->shape[transposed ? 0 : 1]);
  d->B = (int)x->shape[0];
  d->C = (int)x->shape[1];
  d->H = (int)x->shape[2];
  d->W = (int)x->shape[3];
  d->K = (int)w->shape[0];
  d->R = (int)w->shape[2];
  d->S = (int)w->shape[3];
  d->stride = stride;
  d->pad = pad;
  int64_t hp = x->shape[2] + 2 * (int64_t)pad, wp = x->shape[3] + 2 * (int64_t)pad;
  if (!transposed && (hp < d->R || wp < d->S))
    return gan_error(GAN_EARG, "%s: the kernel of weight %s is larger than the "
                     "padded input %s (padding %d)", op, shp(w), shp(inp), pad);
  int64_t P = hp >= d->R ? (hp - d->R) / stride + 1 : 0;
  int64_t Q = wp >= d->S ? (wp - d->S) / stride + 1 : 0;
  d->P = (int)P;
  d->Q = (int)Q;
  int64_t want_c = transposed ? w->shape[1] : w->shape[0];
  if (!transposed) {
    if (y->shape[0] != x->shape[0] || y->shape[1] != want_c || y->shape[2] != P ||
        y->shape[3] != Q)
      return gan_error(GAN_EARG, "%s: input %s, weight %s, stride %d and padding %d "
                       "give %lldx%lldx%lldx%lld, but the output is %s", op,
                       shp(x), shp(w), stride, pad, (long long)x->shape[0],
                       (long long)want_c, (long long)P, (long long)Q, shp(y));
  } else {
    /* x is the output: any H whose convolution gives back P rows (output
    ** padding below the stride) */
    if (x->shape[0] != y->shape[0] || x->shape[1] != want_c || P != y->shape[2] ||
        Q != y->shape[3]) {
      int64_t oh = (y->shape[2] - 1) * stride - 2 * (int64_t)pad + d->R;
      int64_t ow = (y->shape[3] - 1) * stride - 2 * (int64_t)pad + d->S;
      return gan_error(GAN_EARG, "%s: input %s, weight %s, stride %d and padding %d "
                       "give %lldx%lldx%lldx%lld (plus at most %d of output "
                       "padding), but the output is %s", op, shp(y), shp(w),
                       stride, pad, (long long)y->shape[0], (long long)want_c,
                       (long long)oh, (long long)ow, stride - 1, shp(x));
    }
  }
  if (d->P < 1 || d->Q < 1 || d->H < 1 || d->W < 1)
    return gan_error(GAN_EARG, "%s: empty image (input %s, output %s)", op,
                     shp(inp), shp(out));
  return GAN_OK;
}

/* ws is a live tensor of at least the minimum, or the backend needs none */
static gan_status conv_ws(const char *op, const gan_tensor *ref,
                          const gan_conv2d_desc *d, gan_tensor *ws, float **p,
                          size_t *n) {
  size_t batched = 0, minimum = 0;
  if (IFACE(ref).conv2d_workspace)
    IFACE(ref).conv2d_workspace(CTX(ref), d, &batched, &minimum);
  *p = NULL;
  *n = 0;
  if (ws) {
    TRY(live(op, "workspace", ws, ref));
    *p = ws->data;
    *n = (size_t)ws->numel;
  }
  if (*n < minimum)
    return gan_error(GAN_EARG, "%s: the workspace has %zu floats but needs at "
                     "least %zu (see conv2d_workspace)", op, *n, minimum);
  return GAN_OK;
}

gan_status gan_conv2d_workspace(const gan_tensor *out, const gan_tensor *inp,
                                const gan_tensor *weight, int stride, int pad,
                                int transposed, int64_t *batched,
                                int64_t *minimum) {
  const char *op = transposed ? "conv_transpose2d" : "conv2d";
  gan_conv2d_desc d;
  TRY(live(op, "input", inp, NULL));
  TRY(live(op, "output", out, inp));
  TRY(live(op, "weight", weight, inp));
  TRY(conv_desc(op, transposed ? out : inp, transposed ? inp : out, weight,
                stride, pad, transposed, &d));
  size_t b = 0, m = 0;
  if (IFACE(inp).conv2d_workspace) IFACE(inp).conv2d_workspace(CTX(inp), &d, &b, &m);
  *batched = (int64_t)b;
  *minimum = (int64_t)m;
  return GAN_OK;
}

/* the checks every conv entry point shares; x, y in the conv's terms */
static gan_status conv_check(const char *op, const gan_tensor *x,
                             const gan_tensor *y, const gan_tensor *w,
                             const gan_tensor *bias, const char *bias_name,
                             int stride, int pad, int transposed,
                             gan_conv2d_desc *d) {
  TRY(conv_desc(op, x, y, w, stride, pad, transposed, d));
  if (bias) {
    int64_t want = transposed ? d->C : d->K;
    TRY(live(op, bias_name, bias, w));
    if (bias->numel != want)
      return gan_error(GAN_EARG, "%s: %s is %s but the output has %lld channels",
                       op, bias_name, shp(bias), (long long)want);
  }
  return GAN_OK;
}

gan_status gan_conv2d_forward(gan_tensor *out, const gan_tensor *inp,
                              const gan_tensor *weight, const gan_tensor *bias,
                              int stride, int pad, gan_tensor *ws) {
  const char *op = "conv2d";
  gan_conv2d_desc d;
  float *wp;
  size_t wn;
  TRY(live(op, "output", out, NULL));
  TRY(live(op, "input", inp, out));
  TRY(live(op, "weight", weight, out));
  if (!IFACE(out).conv2d_forward) return no_slot(op, out);
  TRY(conv_check(op, inp, out, weight, bias, "bias", stride, pad, 0, &d));
  TRY(conv_ws(op, out, &d, ws, &wp, &wn));
  TRY(fwd_apart(op, out, inp, weight, bias, ws));
  IFACE(out).conv2d_forward(CTX(out), out->data, inp->data, weight->data,
                            bias ? bias->data : NULL, &d, wp, wn);
  return GAN_OK;
}

/* the gradients' checks: dinp like inp, dweight like weight */
static gan_status conv_grads(const char *op, const gan_tensor *dout,
                             const gan_tensor *dinp, const gan_tensor *inp,
                             const gan_tensor *dweight, const gan_tensor *weight,
                             const gan_tensor *dbias, const gan_tensor *ws) {
  if (dinp) {
    TRY(live(op, "input gradient", dinp, dout));
    TRY(same_numel(op, "input gradient", dinp, "input", inp));
  }
  if (dweight) {
    TRY(live(op, "weight gradient", dweight, dout));
    TRY(same_numel(op, "weight gradient", dweight, "weight", weight));
  }
  return grads_apart(op, dinp, dweight, dbias, dout, inp, weight, ws);
}

gan_status gan_conv2d_backward(gan_tensor *dinp, gan_tensor *dweight,
                               gan_tensor *dbias, const gan_tensor *dout,
                               const gan_tensor *inp, const gan_tensor *weight,
                               int stride, int pad, gan_tensor *ws) {
  const char *op = "conv2d backward";
  gan_conv2d_desc d;
  float *wp;
  size_t wn;
  TRY(live(op, "gradient", dout, NULL));
  TRY(live(op, "input", inp, dout));
  TRY(live(op, "weight", weight, dout));
  if (!IFACE(dout).conv2d_backward) return no_slot("conv2d", dout);
  TRY(conv_check(op, inp, dout, weight, dbias, "bias gradient", stride, pad, 0, &d));
  TRY(conv_grads(op, dout, dinp, inp, dweight, weight, dbias, ws));
  TRY(conv_ws(op, dout, &d, ws, &wp, &wn));
  IFACE(dout).conv2d_backward(CTX(dout), dinp ? dinp->data : NULL,
                              dweight ? dweight->data : NULL,
                              dbias ? dbias->data : NULL, dout->data, inp->data,
                              weight->data, &d, wp, wn);
  return GAN_OK;
}

gan_status gan_conv_transpose2d_forward(gan_tensor *out, const gan_tensor *inp,
                                        const gan_tensor *weight,
                                        const gan_tensor *bias, int stride,
                                        int pad, gan_tensor *ws) {
  const char *op = "conv_transpose2d";
  gan_conv2d_desc d;
  float *wp;
  size_t wn;
  TRY(live(op, "output", out, NULL));
  TRY(live(op, "input", inp, out));
  TRY(live(op, "weight", weight, out));
  if (!IFACE(out).conv_transpose2d_forward) return no_slot(op, out);
  TRY(conv_check(op, out, inp, weight, bias, "bias", stride, pad, 1, &d));
  TRY(conv_ws(op, out, &d, ws, &wp, &wn));
  TRY(fwd_apart(op, out, inp, weight, bias, ws));
  IFACE(out).conv_transpose2d_forward(CTX(out), out->data, inp->data, weight->data,
                                      bias ? bias->data : NULL, &d, wp, wn);
  return GAN_OK;
}

gan_status gan_conv_transpose2d_backward(gan_tensor *dinp, gan_tensor *dweight,
                                         gan_tensor *dbias, const gan_tensor *dout,
                                         const gan_tensor *inp,
                                         const gan_tensor *weight, int stride,
                                         int pad, gan_tensor *ws) {
  const char *op = "conv_transpose2d backward";
  gan_conv2d_desc d;
  float *wp;
  size_t wn;
  TRY(live(op, "gradient", dout, NULL));
  TRY(live(op, "input", inp, dout));
  TRY(live(op, "weight", weight, dout));
  if (!IFACE(dout).conv_transpose2d_backward) return no_slot("conv_transpose2d", dout);
  TRY(conv_check(op, dout, inp, weight, dbias, "bias gradient", stride, pad, 1, &d));
  TRY(conv_grads(op, dout, dinp, inp, dweight, weight, dbias, ws));
  TRY(conv_ws(op, dout, &d, ws, &wp, &wn));
  IFACE(dout).conv_transpose2d_backward(CTX(dout), dinp ? dinp->data : NULL,
                                        dweight ? dweight->data : NULL,
                                        dbias ? dbias->data : NULL, dout->data,
                                        inp->data, weight->data, &d, wp, wn);
  return GAN_OK;
}

gan_status gan_augment2d(gan_tensor *y, const gan_tensor *x,
                         const gan_tensor *params, int adjoint) {
  const char *op = adjoint ? "augment backward" : "augment";
  TRY(live(op, "output", y, NULL));
  TRY(live(op, "input", x, y));
  TRY(live(op, "parameters", params, NULL));
  if (!IFACE(y).augment2d) return no_slot("augment", y);
  if (x->ndim != 4)
    return gan_error(GAN_EARG, "%s: input must be 4-d (batch, channels, height, "
                     "width), not %s", op, shp(x));
  if (!gan_tensor_same_shape(x, y))
    return gan_error(GAN_EARG, "%s: output is %s but input is %s (shapes must "
                     "match)", op, shp(y), shp(x));
  if (params->backend != gan_backend_cpu())
    return gan_error(GAN_EARG, "%s: parameters must be on the cpu, not on %s", op,
                     IFACE(params).name);
  int B = (int)x->shape[0], H = (int)x->shape[2], W = (int)x->shape[3];
  if (params->numel != 3 * (int64_t)B)
    return gan_error(GAN_EARG, "%s: parameters are %s, expected %dx3 (flip, dy, "
                     "dx per sample)", op, shp(params), B);
  int shifted = 0;
  for (int b = 0; b < B; b++) {
    const float *p = params->data + 3 * (size_t)b;
    if ((p[0] != 0.0f && p[0] != 1.0f) || p[1] != (float)(int)p[1] ||
        p[2] != (float)(int)p[2] || p[1] < -H || p[1] > H || p[2] < -W || p[2] > W)
      return gan_error(GAN_EARG, "%s: parameters of sample %d are (%g, %g, %g): "
                       "flip must be 0 or 1, shifts integers within the image",
                       op, b + 1, (double)p[0], (double)p[1], (double)p[2]);
    shifted |= p[1] != 0.0f || p[2] != 0.0f;
  }
  if (shifted && y->data == x->data)
    return gan_error(GAN_EARG, "%s: a shift cannot be done in place", op);
  TRY(same_or_apart(op, "output", y, "input", x));
  IFACE(y).augment2d(CTX(y), y->data, x->data, params->data, B,
                     (int)x->shape[1], H, W, adjoint);
  return GAN_OK;
}
