/*
** lconv.c -- convolutions, augmentation and the quality metrics in gan.C.
**
** Thin, like lops.c: check the Lua arguments, call the core once, raise its
** error.  The modules built on them are in gan/conv.lua (Conv2d,
** ConvTranspose2d, BatchNorm2d, Reshape, Flatten), gan/augment.lua and
** gan/metrics.lua.  Gradient conventions are the core's: input gradients
** are overwritten, parameter gradients accumulate, nil skips a gradient.
*/
#include <stdlib.h>
#include <string.h>

#include "lgan_int.h"
#ifdef GAN_HAVE_CUDA
#include "gan_cuda.h"
#endif
#include "metrics.h"

#define T(i) lgan_checktensor(L, i)
#define OPT(i) lgan_opttensor(L, i)
#define INT(i) lgan_checkint(L, i)

/* conv2d_workspace(out, x, w, stride, pad, transposed) -> batched, minimum
** (floats): the workspace the conv ops prefer, and the least they take */
static int l_conv2d_workspace(lua_State *L) {
  int64_t batched, minimum;
  LGAN_CHECK(L, gan_conv2d_workspace(T(1), T(2), T(3), INT(4), INT(5),
                                     lua_toboolean(L, 6), &batched, &minimum));
  lua_pushinteger(L, (lua_Integer)batched);
  lua_pushinteger(L, (lua_Integer)minimum);
  return 2;
}

/* After a convolution: if cuDNN failed and the CUDA backend moved the
** convolutions to its im2col kernels (gan_cuda.h), one warning saying so. */
static int said_fallback(void) {
#ifdef GAN_HAVE_CUDA
  const char *why = gan_cuda_conv_fallback();
  if (why != NULL)
    lua_writestringerror("gan: warning: %s; the convolutions on cuda run on gan's im2col "
                         "kernels from now on\n", why);
#endif
  return 0;
}

/* conv2d_forward(out, x, w, b|nil, stride, pad, ws|nil) */
static int l_conv2d_forward(lua_State *L) {
  LGAN_CHECK(L, gan_conv2d_forward(T(1), T(2), T(3), OPT(4), INT(5), INT(6), OPT(7)));
  return said_fallback();
}

/* conv2d_backward(dx|nil, dw|nil, db|nil, dout, x, w, stride, pad, ws|nil) */
static int l_conv2d_backward(lua_State *L) {
  LGAN_CHECK(L, gan_conv2d_backward(OPT(1), OPT(2), OPT(3), T(4), T(5), T(6), INT(7),
                                    INT(8), OPT(9)));
  return said_fallback();
}

/* conv_transpose2d_forward(out, x, w, b|nil, stride, pad, ws|nil) */
static int l_conv_transpose2d_forward(lua_State *L) {
  LGAN_CHECK(L, gan_conv_transpose2d_forward(T(1), T(2), T(3), OPT(4), INT(5), INT(6),
                                             OPT(7)));
  return said_fallback();
}

/* conv_transpose2d_backward(dx|nil, dw|nil, db|nil, dout, x, w, stride, pad,
**                           ws|nil) */
static int l_conv_transpose2d_backward(lua_State *L) {
  LGAN_CHECK(L, gan_conv_transpose2d_backward(OPT(1), OPT(2), OPT(3), T(4), T(5), T(6),
                                              INT(7), INT(8), OPT(9)));
  return said_fallback();
}

/* augment_params(params, flip, max_shift): draws, for each row of the cpu
** tensor params (B, 3), a flip (probability 1/2 when 'flip') and shifts
** dy, dx uniform in -max_shift..max_shift, from the generator (one key) */
static int l_augment_params(lua_State *L) {
  gan_tensor *p = T(1);
  int flip = lua_toboolean(L, 2);
  lua_Integer m = luaL_checkinteger(L, 3);
  luaL_argcheck(L, p->backend == gan_backend_cpu(), 1, "parameters must be on the cpu");
  luaL_argcheck(L, p->numel % 3 == 0, 1, "parameters must be (batch, 3)");
  luaL_argcheck(L, m >= 0 && m <= 4096, 3, "shift must be in 0..4096");
  uint64_t key = gan_rng_next(lgan_rng(L));
  for (int64_t b = 0; b < p->numel / 3; b++) {
    float *r = p->data + 3 * b;
    r[0] = flip && gan_draw_uniform(key, 3 * (uint64_t)b) < 0.5f ? 1.0f : 0.0f;
    for (int k = 1; k <= 2; k++) {
      int64_t s = (int64_t)(gan_draw_uniform(key, 3 * (uint64_t)b + k) * (float)(2 * m + 1));
      if (s > 2 * m) s = 2 * m;
      r[k] = (float)(s - m);
    }
  }
  return 0;
}

/* augment(y, x, params, adjoint) */
static int l_augment(lua_State *L) {
  LGAN_CHECK(L, gan_augment2d(T(1), T(2), T(3), lua_toboolean(L, 4)));
  return 0;
}

/* The data of an (N, 3, S, S) tensor in host memory: the tensor itself on
** the cpu, else a copy left on the stack (the caller's stack grows by one). */
static const float *host_images(lua_State *L, int idx, int64_t *n, int *S) {
  gan_tensor *t = T(idx);
  if (t->ndim != 4 || t->shape[1] != 3 || t->shape[2] != t->shape[3]) {
    char b[64];
    luaL_argerror(L, idx, lua_pushfstring(L, "images (N, 3, S, S) expected, got %s",
                                          gan_tensor_shape_str(t, b, sizeof b)));
  }
  *n = t->shape[0];
  *S = (int)t->shape[2];
  if (t->backend == gan_backend_cpu()) {
    lua_pushnil(L);
    return t->data;
  }
  gan_tensor *h = lgan_newtensor(L, gan_backend_cpu(), t->ndim, t->shape);
  LGAN_CHECK(L, gan_copy(h, t));
  return h->data;
}

static int opt_field(lua_State *L, int idx, const char *name) {
  int v = 0;
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, name);
    if (!lua_isnil(L, -1)) {
      int ok;
      lua_Integer i = lua_tointegerx(L, -1, &ok);
      if (!ok || i < 1 || i > 1 << 20)
        luaL_error(L, "swd: option '%s' must be a positive integer", name);
      v = (int)i;
    }
    lua_pop(L, 1);
  }
  return v;
}

/* swd(a, b [, {patch=, patches=, repeats=, dirs=, min_res=}]) -> average,
** {level values}, {their resolutions} */
static int l_swd(lua_State *L) {
  int64_t na, nb;
  int sa, sb;
  const float *a = host_images(L, 1, &na, &sa);
  const float *b = host_images(L, 2, &nb, &sb);
  if (sa != sb) return luaL_error(L, "swd: the sets have images of %dx%d and %dx%d", sa,
                                  sa, sb, sb);
  gan_swd_opts o = {opt_field(L, 3, "patch"), opt_field(L, 3, "patches"),
                    opt_field(L, 3, "repeats"), opt_field(L, 3, "dirs"),
                    opt_field(L, 3, "min_res")};
  double levels[GAN_SWD_MAX_LEVELS], avg;
  int nl;
  LGAN_CHECK(L, gan_swd(a, na, b, nb, sa, &o, lgan_rng(L), levels, &nl, &avg));
  lua_pushnumber(L, avg);
  lua_createtable(L, nl, 0);
  lua_createtable(L, nl, 0);
  for (int l = 0; l < nl; l++) {
    lua_pushnumber(L, levels[l]);
    lua_rawseti(L, -3, l + 1);
    lua_pushinteger(L, sa >> l);
    lua_rawseti(L, -2, l + 1);
  }
  return 3;
}

/* nearest(q, ref [, leave_one_out]) -> {distances}, {indices, 1-based}:
** rows are flattened (N, ...) */
static int l_nearest(lua_State *L) {
  gan_tensor *q = T(1), *r = T(2);
  int loo = lua_toboolean(L, 3);
  int64_t nq = gan_tensor_rows_n(q), nr = gan_tensor_rows_n(r), d = gan_tensor_cols(q);
  if (gan_tensor_cols(r) != d) {
    char b1[64], b2[64];
    return luaL_error(L, "nearest: queries are %s but references are %s (rows must "
                      "have the same size)", gan_tensor_shape_str(q, b1, 64),
                      gan_tensor_shape_str(r, b2, 64));
  }
  const float *qd = q->data, *rd = r->data;
  if (q->backend != gan_backend_cpu()) {
    gan_tensor *h = lgan_newtensor(L, gan_backend_cpu(), q->ndim, q->shape);
    LGAN_CHECK(L, gan_copy(h, q));
    qd = h->data;
  }
  if (r->backend != gan_backend_cpu()) {
    gan_tensor *h = lgan_newtensor(L, gan_backend_cpu(), r->ndim, r->shape);
    LGAN_CHECK(L, gan_copy(h, r));
    rd = h->data;
  }
  /* userdata, not malloc: the tables below may raise a memory error */
  float *dist = lua_newuserdatauv(L, (size_t)nq * sizeof(float), 0);
  int64_t *idx = lua_newuserdatauv(L, (size_t)nq * sizeof(int64_t), 0);
  LGAN_CHECK(L, gan_nearest(qd, nq, rd, nr, d, loo, dist, idx));
  lua_createtable(L, (int)nq, 0);
  lua_createtable(L, (int)nq, 0);
  for (int64_t i = 0; i < nq; i++) {
    lua_pushnumber(L, dist[i]);
    lua_rawseti(L, -3, i + 1);
    lua_pushinteger(L, idx[i] + 1);
    lua_rawseti(L, -2, i + 1);
  }
  return 2;
}

static const luaL_Reg conv_ops[] = {
    {"conv2d_workspace", l_conv2d_workspace},
    {"conv2d_forward", l_conv2d_forward},
    {"conv2d_backward", l_conv2d_backward},
    {"conv_transpose2d_forward", l_conv_transpose2d_forward},
    {"conv_transpose2d_backward", l_conv_transpose2d_backward},
    {"augment_params", l_augment_params},
    {"augment", l_augment},
    {"swd", l_swd},
    {"nearest", l_nearest},
    {NULL, NULL}};

void lgan_open_conv(lua_State *L) { luaL_setfuncs(L, conv_ops, 0); }
