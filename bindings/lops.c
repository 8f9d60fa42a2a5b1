/*
** lops.c -- the engine's ops as Lua functions, in gan.C.
**
** These are thin: check the Lua arguments, call the core once, raise its
** error if any.  The modules of gan.nn (bindings/lua/gan/nn.lua) are built
** on them; users rarely call them directly.  Gradient conventions are the
** core's (backend.h): input gradients are overwritten, parameter gradients
** accumulate, nil skips a gradient.
**
** Also here: two small objects that a training step needs without
** allocating: the Adam optimizer state (gan.C.adam) and a shuffled index of
** dataset rows (gan.C.index).
*/
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <sys/stat.h>

#include <lualib.h>

#include "image.h"
#include "lgan_int.h"

#define T(i) lgan_checktensor(L, i)
#define OPT(i) lgan_opttensor(L, i)
#define MARKED(i) (lua_isnoneornil(L, i) ? NULL : lgan_checkmarked(L, i))
#define NUM(i) ((float)luaL_checknumber(L, i))

/* linear_forward(out, x, w [, b]) */
static int l_linear_forward(lua_State *L) {
  LGAN_CHECK(L, gan_linear_forward(T(1), T(2), T(3), OPT(4)));
  return 0;
}

/* linear_backward(dx|nil, dw|nil, db|nil, dout, x, w) */
static int l_linear_backward(lua_State *L) {
  /* the gradients' zeros put off by zero_grad are gan_linear_backward's */
  LGAN_CHECK(L, gan_linear_backward(OPT(1), MARKED(2), MARKED(3), T(4), T(5), T(6)));
  return 0;
}

/* matmul(C, A, ta, B, tb [, alpha [, beta]]) */
static int l_matmul(lua_State *L) {
  LGAN_CHECK(L, gan_matmul(T(1), T(2), lua_toboolean(L, 3), T(4), lua_toboolean(L, 5),
                           (float)luaL_optnumber(L, 6, 1.0), (float)luaL_optnumber(L, 7, 0.0)));
  return 0;
}

static gan_act check_act(lua_State *L, int i) {
  static const char *const names[] = {"identity", "relu", "leaky_relu", "sigmoid",
                                      "tanh", NULL};
  return (gan_act)luaL_checkoption(L, i, NULL, names);
}

/* act_forward(name, alpha, y, x) */
static int l_act_forward(lua_State *L) {
  LGAN_CHECK(L, gan_act_forward(check_act(L, 1), NUM(2), T(3), T(4)));
  return 0;
}

/* overlaps(a, b) -> whether a and b are live tensors that share memory
** (false for nil, a freed tensor or anything else); touches neither */
static gan_tensor *live_or_null(lua_State *L, int i) {
  gan_tensor *t = luaL_testudata(L, i, GAN_TENSOR_MT);
  return t && gan_tensor_live(t) ? t : NULL;
}

static int l_overlaps(lua_State *L) {
  lua_pushboolean(L, gan_tensor_overlap(live_or_null(L, 1), live_or_null(L, 2)));
  return 1;
}

/* live(t) -> whether t is a tensor that can be used (not freed) */
static int l_live(lua_State *L) {
  lua_pushboolean(L, live_or_null(L, 1) != NULL);
  return 1;
}

/* linear_act_forward(out, y, x, w, b|nil, name, alpha) */
static int l_linear_act_forward(lua_State *L) {
  LGAN_CHECK(L, gan_linear_act_forward(T(1), T(2), T(3), T(4), OPT(5), check_act(L, 6),
                                       NUM(7)));
  return 0;
}

/* act_backward(name, alpha, dx, dy, x, y) */
static int l_act_backward(lua_State *L) {
  LGAN_CHECK(L, gan_act_backward(check_act(L, 1), NUM(2), T(3), T(4), T(5), T(6)));
  return 0;
}

/* linear_act_backward(name, alpha, dz, dy, z, y, dx|nil, dw|nil, db|nil, x, w):
** act_backward(name, alpha, dz, dy, z, y), then linear_backward(dx, dw, db,
** dz, x, w), in one call */
static int l_linear_act_backward(lua_State *L) {
  LGAN_CHECK(L, gan_linear_act_backward(check_act(L, 1), NUM(2), T(3), T(4), T(5), T(6),
                                        OPT(7), MARKED(8), MARKED(9), T(10), T(11)));
  return 0;
}

/* dropout_forward(y, mask, x, p) */
static int l_dropout_forward(lua_State *L) {
  LGAN_CHECK(L, gan_dropout_forward(T(1), T(2), T(3), NUM(4), lgan_rng(L)));
  return 0;
}

/* dropout_backward(dx, dy, mask) */
static int l_dropout_backward(lua_State *L) {
  LGAN_CHECK(L, gan_dropout_backward(T(1), T(2), T(3)));
  return 0;
}

/* batchnorm_forward(y, mean, rstd, run_mean, run_var, x, gamma, beta,
**                   momentum, eps, training) */
static int l_batchnorm_forward(lua_State *L) {
  LGAN_CHECK(L, gan_batchnorm_forward(T(1), T(2), T(3), T(4), T(5), T(6), T(7), T(8),
                                      NUM(9), NUM(10), lua_toboolean(L, 11)));
  return 0;
}

/* batchnorm_backward(dx|nil, dgamma|nil, dbeta|nil, dy, x, gamma, mean, rstd,
**                    training) */
static int l_batchnorm_backward(lua_State *L) {
  /* the gradients' zeros put off by zero_grad are gan_batchnorm_backward's */
  LGAN_CHECK(L, gan_batchnorm_backward(OPT(1), MARKED(2), MARKED(3), T(4), T(5), T(6), T(7),
                                       T(8), lua_toboolean(L, 9)));
  return 0;
}

/* bce_forward(loss, pred, target, logits [, read]) -> the loss as a number;
** with read = false nothing is returned and the loss stays in 'loss' (on a
** GPU: no wait for the queued work) */
static int l_bce_forward(lua_State *L) {
  gan_tensor *loss = T(1);
  LGAN_CHECK(L, gan_bce_forward(loss, T(2), T(3), lua_toboolean(L, 4)));
  if (!lua_isnoneornil(L, 5) && !lua_toboolean(L, 5)) return 0; /* read = false */
  float v;
  LGAN_CHECK(L, gan_to_host(loss, &v));
  lua_pushnumber(L, v);
  return 1;
}

/* bce_backward(dpred, pred, target, logits) */
static int l_bce_backward(lua_State *L) {
  LGAN_CHECK(L, gan_bce_backward(T(1), T(2), T(3), lua_toboolean(L, 4)));
  return 0;
}

/* --- Adam ---------------------------------------------------------------
** The optimizer keeps pointers to the gan_tensor structs of its parameters,
** gradients and moments (userdata never move in Lua 5.4), and its user
** value holds those tensors so they stay alive.  Each step gathers the data
** pointers into preallocated arrays: no allocation per step. */

#define ADAM_MT "gan.Adam"

typedef struct ladam {
  int count;
  int closed;          /* by __close or __gc: its arrays are freed */
  gan_tensor **t;      /* 4*count: params, grads, m, v */
  float **ptr;         /* 4*count data pointers, refreshed per step */
  size_t *sizes;
  gan_adam_group g;
} ladam;

static int adam_gc(lua_State *L) {
  ladam *a = luaL_checkudata(L, 1, ADAM_MT);
  free(a->t);
  free(a->ptr);
  free(a->sizes);
  a->t = NULL;
  a->ptr = NULL;
  a->sizes = NULL;
  a->count = 0;
  a->closed = 1;
  return 0;
}

/* gan.C.adam(params, grads, m, v): four lists of tensors of equal shapes */
static int l_adam(lua_State *L) {
  for (int i = 1; i <= 4; i++) luaL_checktype(L, i, LUA_TTABLE);
  int n = (int)luaL_len(L, 1);
  for (int i = 2; i <= 4; i++)
    luaL_argcheck(L, luaL_len(L, i) == n, i, "lists of different lengths");
  ladam *a = lua_newuserdatauv(L, sizeof(ladam), 1);
  memset(a, 0, sizeof *a);
  luaL_setmetatable(L, ADAM_MT);
  a->t = calloc((size_t)(4 * n + 1), sizeof *a->t);
  a->ptr = calloc((size_t)(4 * n + 1), sizeof *a->ptr);
  a->sizes = calloc((size_t)n + 1, sizeof *a->sizes);
  if (!a->t || !a->ptr || !a->sizes) return luaL_error(L, "adam: out of memory");
  lua_createtable(L, 4 * n, 0); /* keeps the tensors alive */
  for (int k = 0; k < 4; k++) {
    for (int i = 0; i < n; i++) {
      lua_geti(L, k + 1, i + 1);
      gan_tensor *t = lgan_checktensor(L, -1);
      if (k > 0 && t->numel != a->t[i]->numel) {
        char b1[64], b2[64];
        return luaL_error(L, "adam: parameter %d is %s but its %s is %s", i + 1,
                          gan_tensor_shape_str(a->t[i], b1, 64),
                          k == 1 ? "gradient" : "moment",
                          gan_tensor_shape_str(t, b2, 64));
      }
      if (k + i > 0 && t->backend != a->t[0]->backend)
        return luaL_error(L, "adam: parameter %d is on %s, the first on %s", i + 1,
                          t->backend->iface.name, a->t[0]->backend->iface.name);
      a->t[k * n + i] = t;
      lua_rawseti(L, -2, k * n + i + 1);
    }
  }
  /* every tensor its own memory: a parameter listed twice (a module used
  ** twice) would be updated twice per step, and on a GPU by two blocks at
  ** once, which race */
  for (int i = 0; i < 4 * n; i++) {
    for (int j = i + 1; j < 4 * n; j++) {
      if (gan_tensor_overlap(a->t[i], a->t[j])) {
        static const char *what[] = {"parameter", "gradient", "first moment",
                                     "second moment"};
        return luaL_error(L, "adam: %s %d and %s %d share memory (is a module "
                          "used twice? list each parameter once)", what[i / n],
                          i % n + 1, what[j / n], j % n + 1);
      }
    }
  }
  lua_setiuservalue(L, -2, 1);
  a->count = n;
  for (int i = 0; i < n; i++) a->sizes[i] = (size_t)a->t[i]->numel;
  a->g.count = n;
  a->g.params = a->ptr;
  a->g.grads = a->ptr + n;
  a->g.m = a->ptr + 2 * n;
  a->g.v = a->ptr + 3 * n;
  a->g.sizes = a->sizes;
  return 1;
}

/* adam:step(lr, beta1, beta2, eps, weight_decay, t) */
static int adam_step_l(lua_State *L) {
  ladam *a = luaL_checkudata(L, 1, ADAM_MT);
  if (a->closed) return luaL_error(L, "adam: the optimizer is closed");
  a->g.lr = NUM(2);
  a->g.beta1 = NUM(3);
  a->g.beta2 = NUM(4);
  a->g.eps = NUM(5);
  a->g.weight_decay = NUM(6);
  a->g.step = luaL_checkinteger(L, 7);
  a->g.eps_hat = lua_toboolean(L, 8);
  luaL_argcheck(L, isfinite(a->g.lr) && a->g.lr >= 0, 2, "lr must be finite and >= 0");
  luaL_argcheck(L, a->g.beta1 >= 0 && a->g.beta1 < 1, 3, "beta1 must be in [0, 1)");
  luaL_argcheck(L, a->g.beta2 >= 0 && a->g.beta2 < 1, 4, "beta2 must be in [0, 1)");
  luaL_argcheck(L, isfinite(a->g.eps) && a->g.eps >= 0, 5, "eps must be finite and >= 0");
  luaL_argcheck(L, isfinite(a->g.weight_decay) && a->g.weight_decay >= 0, 6,
                "weight_decay must be finite and >= 0");
  luaL_argcheck(L, a->g.step >= 1, 7, "step count starts at 1");
  if (a->count == 0) return 0;
  for (int i = 0; i < 4 * a->count; i++) {
    if (!gan_tensor_live(a->t[i]))
      return luaL_error(L, "adam: a tensor it holds has been freed");
    /* a gradient no backward wrote since zero_grad: its zeros, now */
    LGAN_CHECK(L, gan_tensor_ready(a->t[i]));
    a->ptr[i] = a->t[i]->data;
  }
  gan_backend *be = a->t[0]->backend;
  be->iface.adam_step(be->ctx, &a->g);
  return 0;
}

/* --- a shuffled index of rows --------------------------------------------
** gan.C.index(n) holds a permutation of 0..n-1 in C memory;
** idx:shuffle() redraws it from the generator (Fisher-Yates from the
** identity, so a permutation depends only on the generator's state: a
** checkpoint that saves the state resumes the same batches);
** idx:gather(dst, src, first) copies rows perm[first-1 ...] of src into dst. */

#define INDEX_MT "gan.Index"

typedef struct lindex {
  int64_t n;
  int64_t *perm;
} lindex;

static int index_gc(lua_State *L) {
  lindex *x = luaL_checkudata(L, 1, INDEX_MT);
  free(x->perm);
  x->perm = NULL;
  x->n = 0;
  return 0;
}

static int l_index(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n > 0 && n <= ((lua_Integer)1 << 40), 1, "must be in 1..2^40");
  lindex *x = lua_newuserdatauv(L, sizeof(lindex), 0);
  x->n = 0;
  x->perm = NULL;
  luaL_setmetatable(L, INDEX_MT);
  x->perm = malloc((size_t)n * sizeof(int64_t));
  if (!x->perm) return luaL_error(L, "index: out of memory for %I rows", n);
  x->n = n;
  for (int64_t i = 0; i < n; i++) x->perm[i] = i;
  return 1;
}

static int index_shuffle(lua_State *L) {
  lindex *x = luaL_checkudata(L, 1, INDEX_MT);
  gan_rng *r = lgan_rng(L);
  uint64_t key = gan_rng_next(r); /* one key per shuffle, as for any draw */
  for (int64_t i = 0; i < x->n; i++) x->perm[i] = i;
  for (int64_t i = x->n - 1; i > 0; i--) {
    int64_t j = (int64_t)(gan_draw_uniform(key, (uint64_t)i) * (float)(i + 1));
    if (j > i) j = i;
    int64_t tmp = x->perm[i];
    x->perm[i] = x->perm[j];
    x->perm[j] = tmp;
  }
  return 0;
}

static int index_gather(lua_State *L) {
  lindex *x = luaL_checkudata(L, 1, INDEX_MT);
  gan_tensor *dst = T(2), *src = T(3);
  lua_Integer first = luaL_checkinteger(L, 4);
  int64_t rows = gan_tensor_rows_n(dst);
  luaL_argcheck(L, first >= 1 && rows <= x->n && first - 1 <= x->n - rows, 4,
                "rows outside the index");
  LGAN_CHECK(L, gan_gather_rows(dst, src, x->perm + first - 1));
  return 0;
}

/* idx:get(i) -> the row (1-based) at position i */
static int index_get(lua_State *L) {
  lindex *x = luaL_checkudata(L, 1, INDEX_MT);
  lua_Integer i = luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && i <= x->n, 2, "out of range");
  lua_pushinteger(L, x->perm[i - 1] + 1);
  return 1;
}

/* --- images -------------------------------------------------------------- */

static void lua_warn_cb(void *ud, const char *msg) {
  (void)ud;
  lua_writestringerror("gan: warning: %s\n", msg);
}

/* load_images(dir, size, range01or_pm1) -> tensor (N, 3, S, S) on the cpu,
** skipped count */
static int l_load_images(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  lua_Integer size = luaL_checkinteger(L, 2);
  luaL_argcheck(L, size >= 1 && size <= 8192, 2, "size must be in 1..8192");
  gan_image_opts o = {(int)size, lua_toboolean(L, 3) ? GAN_RANGE_PM1 : GAN_RANGE_01,
                      lua_warn_cb, NULL};
  /* the userdata first: nothing may raise while 'data' is held */
  gan_tensor *t = lua_newuserdatauv(L, sizeof(gan_tensor), 1);
  gan_tensor_init(t);
  luaL_setmetatable(L, GAN_TENSOR_MT);
  float *data = NULL;
  int64_t n = 0, skipped = 0;
  LGAN_CHECK(L, gan_images_load(dir, &o, &data, &n, &skipped));
  int64_t shape[4] = {n, 3, o.size, o.size};
  if (gan_tensor_alloc(t, gan_backend_cpu(), 4, shape) != GAN_OK) {
    free(data);
    return lgan_fail(L);
  }
  memcpy(t->data, data, (size_t)t->numel * sizeof(float));
  free(data);
  lua_pushinteger(L, skipped);
  return 2;
}

/* save_grid(t, path, size, cols, pm1, background): t is (N, 3*S*S) on any
** backend; 'background' writes the PNG on a thread (see core/image.h) */
static int l_save_grid(lua_State *L) {
  gan_tensor *t = T(1);
  const char *path = luaL_checkstring(L, 2);
  int size = lgan_checkint(L, 3), cols = lgan_checkint(L, 4);
  luaL_argcheck(L, size >= 1, 3, "size must be positive");
  int64_t n = gan_tensor_rows_n(t);
  luaL_argcheck(L, gan_tensor_cols(t) == 3 * (int64_t)size * size, 1,
                "rows must be 3 x size x size images");
  luaL_argcheck(L, cols >= 1, 4, "cols must be positive");
  const float *d = t->data;
  if (t->backend != gan_backend_cpu()) {
    gan_tensor *h = lgan_newtensor(L, gan_backend_cpu(), t->ndim, t->shape);
    LGAN_CHECK(L, gan_copy(h, t));
    d = h->data;
  }
  gan_range range = lua_toboolean(L, 5) ? GAN_RANGE_PM1 : GAN_RANGE_01;
  LGAN_CHECK(L, lua_toboolean(L, 6)
                    ? gan_images_save_grid_background(path, d, n, size, size, range, cols)
                    : gan_images_save_grid(path, d, n, size, size, range, cols));
  return 0;
}

/* flush_grids(): waits for the background grid; raises its failure */
static int l_flush_grids(lua_State *L) {
  LGAN_CHECK(L, gan_images_flush());
  return 0;
}

/* isatty(file) -> whether a Lua file handle is a terminal */
static int l_isatty(lua_State *L) {
  luaL_Stream *f = luaL_checkudata(L, 1, LUA_FILEHANDLE);
  lua_pushboolean(L, f->f && isatty(fileno(f->f)));
  return 1;
}

/* clock() -> seconds of a monotonic clock, for timings and progress bars */
static int l_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec * 1e-9);
  return 1;
}

/* base64(s) -> s in base64 (RFC 4648, with padding), for the report's data
** URIs: 16 sample grids of 500 KB take 10 ms here, 1.7 s in Lua */
static int l_base64(lua_State *L) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *o = luaL_buffinitsize(L, &b, (n + 2) / 3 * 4);
  size_t i = 0, k = 0;
  for (; i + 2 < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    o[k++] = A[v >> 18];
    o[k++] = A[v >> 12 & 63];
    o[k++] = A[v >> 6 & 63];
    o[k++] = A[v & 63];
  }
  if (i < n) { /* 1 or 2 bytes left */
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0);
    o[k++] = A[v >> 18];
    o[k++] = A[v >> 12 & 63];
    o[k++] = i + 1 < n ? A[v >> 6 & 63] : '=';
    o[k++] = '=';
  }
  luaL_pushresultsize(&b, k);
  return 1;
}

/* mkdir_p(path) -> true, or nil and a message naming the path */
static int l_mkdir_p(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (*path == '\0') {
    lua_pushnil(L);
    lua_pushliteral(L, "cannot create a folder with an empty name");
    return 2;
  }
  luaL_Buffer b;
  char *buf = luaL_buffinitsize(L, &b, strlen(path) + 1);
  strcpy(buf, path);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      struct stat st;
      if (stat(buf, &st) != 0) {
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
          lua_pushnil(L);
          lua_pushfstring(L, "cannot create folder '%s': %s", buf, strerror(errno));
          return 2;
        }
      } else if (!S_ISDIR(st.st_mode)) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot create folder '%s': a file is in the way", buf);
        return 2;
      }
      *p = c;
      if (c == '\0') break;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* is_dir(path) -> whether path is a folder */
static int l_is_dir(lua_State *L) {
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISDIR(st.st_mode));
  return 1;
}

/* same_file(a, b) -> whether both paths exist and name one file or folder
** ("run", "./run/" and "/abs/run" do) */
static int l_same_file(lua_State *L) {
  struct stat sa, sb;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &sa) == 0 &&
                         stat(luaL_checkstring(L, 2), &sb) == 0 &&
                         sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
  return 1;
}

/* grid_name(path) -> whether a grid can be written under that name */
static int l_grid_name(lua_State *L) {
  lua_pushboolean(L, gan_images_grid_name(luaL_checkstring(L, 1)));
  return 1;
}

static const luaL_Reg ops[] = {
    {"mkdir_p", l_mkdir_p},
    {"is_dir", l_is_dir},
    {"same_file", l_same_file},
    {"isatty", l_isatty},
    {"clock", l_clock},
    {"base64", l_base64},
    {"linear_forward", l_linear_forward},
    {"linear_backward", l_linear_backward},
    {"matmul", l_matmul},
    {"act_forward", l_act_forward},
    {"linear_act_forward", l_linear_act_forward},
    {"overlaps", l_overlaps},
    {"live", l_live},
    {"act_backward", l_act_backward},
    {"linear_act_backward", l_linear_act_backward},
    {"dropout_forward", l_dropout_forward},
    {"dropout_backward", l_dropout_backward},
    {"batchnorm_forward", l_batchnorm_forward},
    {"batchnorm_backward", l_batchnorm_backward},
    {"bce_forward", l_bce_forward},
    {"bce_backward", l_bce_backward},
    {"adam", l_adam},
    {"index", l_index},
    {"load_images", l_load_images},
    {"save_grid", l_save_grid},
    {"grid_name", l_grid_name},
    {"flush_grids", l_flush_grids},
    {NULL, NULL}};

void lgan_open_ops(lua_State *L) {
  static const luaL_Reg adam_m[] = {{"step", adam_step_l}, {"__gc", adam_gc},
                                    {"__close", adam_gc}, {NULL, NULL}};
  static const luaL_Reg index_m[] = {{"shuffle", index_shuffle}, {"gather", index_gather},
                                     {"get", index_get}, {"__gc", index_gc},
                                     {"__close", index_gc}, {NULL, NULL}};
  if (luaL_newmetatable(L, ADAM_MT)) {
    luaL_setfuncs(L, adam_m, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, INDEX_MT)) {
    luaL_setfuncs(L, index_m, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, ops, 0);
}
