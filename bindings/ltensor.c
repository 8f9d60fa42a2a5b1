/*
** ltensor.c -- tensors as Lua userdata, like Lua's own file handles.
**
** The gan_tensor struct lives inside a full userdata whose metatable is
** registered as "gan.Tensor".  It is initialised empty before anything is
** allocated, so a failed allocation leaves a valid object whose __gc does
** nothing.  __gc and __close share one function; t:free() releases the
** memory early, and any later use raises "tensor has been freed".  A view
** (t:rows, t:view) keeps its parent alive through its user value.
**
** Shapes are given as numbers or one table: gan.zeros(2, 3) == gan.zeros{2, 3};
** a trailing string names the device: gan.zeros(2, 3, "cuda").
*/
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lgan_int.h"
#ifdef GAN_HAVE_CUDA
#include "gan_cuda.h"
#endif

/* The core's message goes up as it is, without a "file:line:" of the Lua
** caller: that caller is usually library code (gan/nn.lua), and the
** traceback shows the user's line anyway. */
int lgan_fail(lua_State *L) {
  lua_pushstring(L, gan_errmsg());
  return lua_error(L);
}

int lgan_checkint(lua_State *L, int idx) {
  lua_Integer v = luaL_checkinteger(L, idx);
  luaL_argcheck(L, v >= INT_MIN && v <= INT_MAX, idx, "integer out of range");
  return (int)v;
}

gan_tensor *lgan_opttensor(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return lgan_checktensor(L, idx);
}

gan_tensor *lgan_checkmarked(lua_State *L, int idx) {
  gan_tensor *t = luaL_testudata(L, idx, GAN_TENSOR_MT);
  if (!t) luaL_typeerror(L, idx, "tensor");
  if (!gan_tensor_live(t))
    luaL_argerror(L, idx, t->data ? "tensor has been freed (it is a view of a "
                                    "freed tensor)" : "tensor has been freed");
  return t;
}

gan_tensor *lgan_checktensor(lua_State *L, int idx) {
  gan_tensor *t = lgan_checkmarked(L, idx);
  if (gan_tensor_ready(t) != GAN_OK) lgan_fail(L);
  return t;
}

/* A tensor about to be overwritten whole: its own mark is dropped, a
** parent's zeros are written (they hold rows outside it). */
static gan_tensor *check_overwritten(lua_State *L, int idx) {
  gan_tensor *t = lgan_checkmarked(L, idx);
  t->zero_pending = 0;
  if (gan_tensor_ready(t) != GAN_OK) lgan_fail(L);
  return t;
}

gan_tensor *lgan_newtensor(lua_State *L, gan_backend *be, int ndim,
                           const int64_t *shape) {
  gan_tensor *t = lua_newuserdatauv(L, sizeof(gan_tensor), 1);
  gan_tensor_init(t);
  luaL_setmetatable(L, GAN_TENSOR_MT);
  LGAN_CHECK(L, gan_tensor_alloc(t, be, ndim, shape));
  return t;
}

/* --- the state of a Lua state: default backend and generator ---------- */

static const char *const BACKEND_KEY = "gan.backend";
static const char *const RNG_KEY = "gan.rng";

gan_backend *lgan_backend(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, BACKEND_KEY);
  gan_backend *be = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return be ? be : gan_backend_cpu();
}

gan_backend *lgan_backend_named(lua_State *L, const char *name) {
  if (strcmp(name, "cpu") == 0) return gan_backend_cpu();
  if (strcmp(name, "cuda") == 0) {
    gan_backend *be = gan_backend_cuda();
    if (!be) luaL_error(L, "device 'cuda' is not available: %s", gan_errmsg());
    return be;
  }
  luaL_error(L, "unknown device '%s' (expected 'cpu', 'cuda' or 'auto')", name);
  return NULL;
}

gan_rng *lgan_rng(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, RNG_KEY);
  gan_rng *r = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return r;
}

/* gan.device() -> name; gan.device(name) selects the backend of new tensors.
** "auto" picks CUDA when a GPU is there, else the CPU with one line saying
** why.  Returns the name of the backend now selected. */
static int l_device(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    const char *name = luaL_checkstring(L, 1);
    gan_backend *be;
    if (strcmp(name, "auto") == 0) {
      be = gan_backend_cuda();
      if (!be) {
        /* no GPU, or one that the backend could not set up (no cuBLAS) */
        const char *why = gan_errmsg();
#ifdef GAN_HAVE_CUDA
        int found = gan_cuda_gpu_found();
#else
        int found = 0;
#endif
        lua_writestringerror("%s\n", lua_pushfstring(L, "gan: %s, using the cpu (%s)",
                             found ? "cannot use the GPU" : "no GPU", why));
        lua_pop(L, 1);
        be = gan_backend_cpu();
      }
    } else {
      be = lgan_backend_named(L, name);
    }
    lua_pushlightuserdata(L, be);
    lua_setfield(L, LUA_REGISTRYINDEX, BACKEND_KEY);
  }
  lua_pushstring(L, lgan_backend(L)->iface.name);
  return 1;
}

/* gan.precision([mode]) -> the mode of the GPU's matrix products: "fp32"
** (the default, the CPU's results within rounding) or "tf32" (tensor cores,
** about 1e-3 relative error).  The CPU always computes in fp32. */
static int l_precision(lua_State *L) {
  static const char *const modes[] = {"fp32", "tf32", NULL};
  static const char *current = "fp32";
  if (!lua_isnoneornil(L, 1)) {
    int m = luaL_checkoption(L, 1, NULL, modes);
#ifdef GAN_HAVE_CUDA
    /* fp32 without a GPU is what the CPU does anyway: nothing to set */
    if (m == 1 || gan_backend_cuda()) LGAN_CHECK(L, gan_cuda_set_precision(modes[m]));
#else
    if (m == 1)
      return luaL_error(L, "precision 'tf32' needs the CUDA backend, which is "
                        "not built into this gan");
#endif
    current = modes[m];
  }
  lua_pushstring(L, current);
  return 1;
}

/* gan.cublas() -> "cuBLAS 13.0.2 (path)", the library the GPU's matrix
** products run on, and gan.cudnn() -> "cuDNN 9.19.0 (path)", the one its
** convolutions run on; or nil and why it could not be loaded (or was not
** built in).  Neither needs a GPU. */
#ifdef GAN_HAVE_CUDA
static int found_or_why(lua_State *L, const char *found) {
  if (found != NULL) {
    lua_pushstring(L, found);
    return 1;
  }
  luaL_pushfail(L);
  lua_pushstring(L, gan_errmsg());
  return 2;
}
static int l_cublas(lua_State *L) { return found_or_why(L, gan_cuda_cublas()); }
static int l_cudnn(lua_State *L) { return found_or_why(L, gan_cuda_cudnn()); }
#else
static int l_not_built(lua_State *L) {
  luaL_pushfail(L);
  lua_pushstring(L, "the CUDA backend is not built into this gan");
  return 2;
}
#define l_cublas l_not_built
#define l_cudnn l_not_built
#endif

/* gan.synchronize([device]): waits for the queued work of a backend (for
** timings; the CPU has none) and raises a pending asynchronous error. */
static int l_synchronize(lua_State *L) {
  gan_backend *be = lua_isnoneornil(L, 1) ? lgan_backend(L)
                                          : lgan_backend_named(L, luaL_checkstring(L, 1));
  if (be->iface.synchronize) LGAN_CHECK(L, be->iface.synchronize(be->ctx));
  return 0;
}

/* gan.seed(n): the generator restarts from n (an integer). */
static int l_seed(lua_State *L) {
  gan_rng_seed(lgan_rng(L), (uint64_t)luaL_checkinteger(L, 1));
  return 0;
}

/* gan.rng_state() -> integer; gan.rng_state(s) restores it (checkpoints). */
static int l_rng_state(lua_State *L) {
  gan_rng *r = lgan_rng(L);
  if (!lua_isnoneornil(L, 1)) r->state = (uint64_t)luaL_checkinteger(L, 1);
  lua_pushinteger(L, (lua_Integer)r->state);
  return 1;
}

/* --- constructors ------------------------------------------------------ */

/* ndim, once gan_shape_numel has put the shape's element count in *numel
** (at most 2^40, which also keeps a view's count from overflowing); else an
** error naming the argument */
static int check_numel(lua_State *L, int arg, int ndim, const int64_t *shape,
                       int64_t *numel) {
  if (gan_shape_numel(ndim, shape, numel) != GAN_OK) luaL_argerror(L, arg, gan_errmsg());
  return ndim;
}

/* Reads a shape from the arguments first..top: numbers, or one table, then
** an optional device name.  Returns ndim; 'be' gets the backend and
** 'numel' the element count. */
static int read_shape(lua_State *L, int first, int64_t *shape, gan_backend **be,
                      int64_t *numel) {
  int top = lua_gettop(L), ndim = 0;
  *be = NULL;
  if (top >= first && lua_type(L, top) == LUA_TSTRING) {
    *be = lgan_backend_named(L, lua_tostring(L, top));
    top--;
  }
  if (!*be) *be = lgan_backend(L);
  if (top == first && lua_istable(L, first)) {
    ndim = (int)luaL_len(L, first);
    luaL_argcheck(L, ndim <= GAN_MAX_DIMS, first, "at most 4 dimensions");
    for (int i = 0; i < ndim; i++) {
      lua_geti(L, first, i + 1);
      int ok;
      shape[i] = lua_tointegerx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok || shape[i] <= 0)
        luaL_argerror(L, first, lua_pushfstring(L, "dimension %d is not a positive "
                                                "integer", i + 1));
    }
    return check_numel(L, first, ndim, shape, numel);
  }
  for (int i = first; i <= top; i++) {
    luaL_argcheck(L, ndim < GAN_MAX_DIMS, i, "at most 4 dimensions");
    lua_Integer d = luaL_checkinteger(L, i);
    luaL_argcheck(L, d > 0, i, "dimension must be positive");
    shape[ndim++] = d;
  }
  luaL_argcheck(L, ndim > 0, first, "shape expected (e.g. 2, 3 or {2, 3})");
  return check_numel(L, first, ndim, shape, numel);
}

static int l_empty(lua_State *L) {
  int64_t shape[GAN_MAX_DIMS];
  gan_backend *be;
  int64_t numel;
  int ndim = read_shape(L, 1, shape, &be, &numel);
  lgan_newtensor(L, be, ndim, shape);
  return 1;
}

static int l_zeros(lua_State *L) {
  l_empty(L);
  LGAN_CHECK(L, gan_fill(lua_touserdata(L, -1), 0.0f));
  return 1;
}

static int l_ones(lua_State *L) {
  l_empty(L);
  LGAN_CHECK(L, gan_fill(lua_touserdata(L, -1), 1.0f));
  return 1;
}

static int l_randn(lua_State *L) {
  l_empty(L);
  LGAN_CHECK(L, gan_randn(lua_touserdata(L, -1), lgan_rng(L), 0.0f, 1.0f));
  return 1;
}

static int l_rand(lua_State *L) {
  l_empty(L);
  LGAN_CHECK(L, gan_rand(lua_touserdata(L, -1), lgan_rng(L), 0.0f, 1.0f));
  return 1;
}

/* Walks nested tables: finds the shape from the first elements, then fills
** 'out' checking that every row has the same length. */
static void table_shape(lua_State *L, int idx, int depth, int *ndim,
                        int64_t *shape) {
  lua_Integer n = luaL_len(L, idx);
  if (depth >= GAN_MAX_DIMS) luaL_error(L, "tensor: more than 4 nested levels");
  if (n == 0) luaL_error(L, "tensor: empty table at level %d", depth + 1);
  shape[depth] = n;
  *ndim = depth + 1;
  lua_geti(L, idx, 1);
  if (lua_istable(L, -1)) table_shape(L, lua_gettop(L), depth + 1, ndim, shape);
  lua_pop(L, 1);
}

static size_t table_fill(lua_State *L, int idx, int depth, int ndim,
                         const int64_t *shape, float *out, size_t pos) {
  if (depth >= GAN_MAX_DIMS) return pos; /* table_shape stopped deeper ones */
  if (luaL_len(L, idx) != shape[depth])
    luaL_error(L, "tensor: ragged table (a row at level %d has %d elements, "
               "expected %d)", depth + 1, (int)luaL_len(L, idx), (int)shape[depth]);
  for (int64_t i = 1; i <= shape[depth]; i++) {
    lua_geti(L, idx, i);
    if (depth + 1 < ndim) {
      if (!lua_istable(L, -1)) luaL_error(L, "tensor: expected a table at level %d",
                                          depth + 2);
      pos = table_fill(L, lua_gettop(L), depth + 1, ndim, shape, out, pos);
    } else {
      int ok;
      lua_Number v = lua_tonumberx(L, -1, &ok);
      if (!ok) luaL_error(L, "tensor: element %d at level %d is a %s, not a number",
                          (int)i, depth + 1, luaL_typename(L, -1));
      out[pos++] = (float)v;
    }
    lua_pop(L, 1);
  }
  return pos;
}

/* gan.tensor({{1, 2}, {3, 4}} [, device]) */
static int l_tensor(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  gan_backend *be = lua_isnoneornil(L, 2) ? lgan_backend(L)
                                          : lgan_backend_named(L, luaL_checkstring(L, 2));
  int64_t shape[GAN_MAX_DIMS];
  int ndim = 0;
  table_shape(L, 1, 0, &ndim, shape);
  gan_tensor *host = lgan_newtensor(L, gan_backend_cpu(), ndim, shape);
  table_fill(L, 1, 0, ndim, shape, host->data, 0);
  if (be == gan_backend_cpu()) return 1;
  gan_tensor *t = lgan_newtensor(L, be, ndim, shape);
  LGAN_CHECK(L, gan_copy(t, host));
  return 1;
}

/* --- methods ----------------------------------------------------------- */

static int t_gc(lua_State *L) {
  gan_tensor *t = luaL_checkudata(L, 1, GAN_TENSOR_MT);
  gan_tensor_release(t);
  return 0;
}

/* Shape queries read no data: the zeros put off stay put off. */
static int t_shape(lua_State *L) {
  gan_tensor *t = lgan_checkmarked(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int t_size(lua_State *L) {
  gan_tensor *t = lgan_checkmarked(L, 1);
  if (lua_isnoneornil(L, 2)) return t_shape(L);
  lua_Integer d = luaL_checkinteger(L, 2);
  luaL_argcheck(L, d >= 1 && d <= t->ndim, 2, "dimension out of range");
  lua_pushinteger(L, t->shape[d - 1]);
  return 1;
}

static int t_numel(lua_State *L) {
  lua_pushinteger(L, lgan_checkmarked(L, 1)->numel);
  return 1;
}

static int t_dim(lua_State *L) {
  lua_pushinteger(L, lgan_checkmarked(L, 1)->ndim);
  return 1;
}

static int t_len(lua_State *L) {
  lua_pushinteger(L, gan_tensor_rows_n(lgan_checkmarked(L, 1)));
  return 1;
}

static int t_device(lua_State *L) {
  lua_pushstring(L, lgan_checkmarked(L, 1)->backend->iface.name);
  return 1;
}

/* A host copy of t's data: t itself on the CPU, else a temporary tensor
** left on the stack (so the GC frees it). */
static const float *host_data(lua_State *L, gan_tensor *t) {
  if (t->backend == gan_backend_cpu()) return t->data;
  gan_tensor *h = lgan_newtensor(L, gan_backend_cpu(), t->ndim, t->shape);
  LGAN_CHECK(L, gan_copy(h, t));
  return h->data;
}

static size_t push_rows(lua_State *L, const gan_tensor *t, const float *d,
                        int depth, size_t pos) {
  if (depth >= GAN_MAX_DIMS) return pos;
  lua_createtable(L, (int)t->shape[depth], 0);
  for (int64_t i = 0; i < t->shape[depth]; i++) {
    if (depth + 1 < t->ndim)
      pos = push_rows(L, t, d, depth + 1, pos);
    else
      lua_pushnumber(L, d[pos++]);
    lua_rawseti(L, -2, i + 1);
  }
  return pos;
}

/* t:totable() -> nested tables (a number for a scalar) */
static int t_totable(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  const float *d = host_data(L, t);
  if (t->ndim == 0) lua_pushnumber(L, d[0]);
  else push_rows(L, t, d, 0, 0);
  return 1;
}

/* t:item() -> the one value of a 1-element tensor */
static int t_item(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  if (t->numel != 1) {
    char b[64];
    return luaL_error(L, "item: tensor is %s, not a single value",
                      gan_tensor_shape_str(t, b, sizeof b));
  }
  float v;
  LGAN_CHECK(L, gan_to_host(t, &v));
  lua_pushnumber(L, v);
  return 1;
}

/* t:get(i, j, ...) -> one element, 1-based (for exploring in the REPL) */
static int t_get(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  int n = lua_gettop(L) - 1;
  luaL_argcheck(L, n == t->ndim, 2, "one index per dimension expected");
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    lua_Integer k = luaL_checkinteger(L, i + 2);
    luaL_argcheck(L, k >= 1 && k <= t->shape[i], i + 2, "index out of range");
    off = off * t->shape[i] + (k - 1);
  }
  float v;
  LGAN_CHECK(L, t->backend->iface.to_host(t->backend->ctx, &v, t->data + off, 1));
  lua_pushnumber(L, v);
  return 1;
}

static int t_tostring(lua_State *L) {
  gan_tensor *t = luaL_checkudata(L, 1, GAN_TENSOR_MT);
  char b[64];
  if (!gan_tensor_live(t)) {
    lua_pushliteral(L, "tensor (freed)");
    return 1;
  }
  if (gan_tensor_ready(t) != GAN_OK) return lgan_fail(L);
  luaL_Buffer B;
  luaL_buffinit(L, &B);
  lua_pushfstring(L, "tensor %s (%s)", gan_tensor_shape_str(t, b, sizeof b),
                  t->backend->iface.name);
  luaL_addvalue(&B);
  /* a few values, so that the REPL shows what is inside */
  const float *d = host_data(L, t);
  int64_t cols = gan_tensor_cols(t), rows = gan_tensor_rows_n(t);
  int64_t showr = rows < 6 ? rows : 6, showc = cols < 8 ? cols : 8;
  for (int64_t r = 0; r < showr; r++) {
    luaL_addstring(&B, "\n ");
    for (int64_t c = 0; c < showc; c++) {
      snprintf(b, sizeof b, " %9.4g", (double)d[r * cols + c]);
      luaL_addstring(&B, b);
    }
    if (showc < cols) luaL_addstring(&B, "  ...");
  }
  if (showr < rows) luaL_addstring(&B, "\n  ...");
  luaL_pushresult(&B);
  return 1;
}

/* t:free(): releases the memory now; the object stays, empty */
static int t_free(lua_State *L) {
  gan_tensor *t = luaL_checkudata(L, 1, GAN_TENSOR_MT);
  gan_tensor_release(t);
  return 0;
}

/* t:rows(first, count) -> a view of rows first..first+count-1 (1-based) */
static int t_rows(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  lua_Integer first = luaL_checkinteger(L, 2);
  lua_Integer count = luaL_optinteger(L, 3, 1);
  luaL_argcheck(L, first >= 1, 2, "rows are numbered from 1");
  gan_tensor *v = lua_newuserdatauv(L, sizeof(gan_tensor), 1);
  gan_tensor_init(v);
  luaL_setmetatable(L, GAN_TENSOR_MT);
  LGAN_CHECK(L, gan_tensor_rows(v, t, first - 1, count));
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* the view keeps its parent alive */
  return 1;
}

/* t:view(shape...) -> the same data with another shape of equal size */
static int t_view(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  int64_t shape[GAN_MAX_DIMS];
  gan_backend *be;
  int64_t numel;
  int ndim = read_shape(L, 2, shape, &be, &numel);
  if (numel != t->numel) {
    char b[64];
    return luaL_error(L, "view: tensor %s has %I elements, the new shape %I",
                      gan_tensor_shape_str(t, b, sizeof b), (lua_Integer)t->numel,
                      (lua_Integer)numel);
  }
  gan_tensor *v = lua_newuserdatauv(L, sizeof(gan_tensor), 1);
  *v = *t;
  v->owner = 0;
  v->base = t;
  v->zero_pending = 0; /* t's, if it is marked again, is written before use */
  v->ndim = ndim;
  for (int i = 0; i < GAN_MAX_DIMS; i++) v->shape[i] = i < ndim ? shape[i] : 1;
  luaL_setmetatable(L, GAN_TENSOR_MT);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* t:clone() -> a copy on the same backend */
static int t_clone(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  gan_tensor *c = lgan_newtensor(L, t->backend, t->ndim, t->shape);
  LGAN_CHECK(L, gan_copy(c, t));
  return 1;
}

/* t:to(device) -> t itself if already there, else a copy */
static int t_to(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  gan_backend *be = lgan_backend_named(L, luaL_checkstring(L, 2));
  if (be == t->backend) {
    lua_settop(L, 1);
    return 1;
  }
  gan_tensor *c = lgan_newtensor(L, be, t->ndim, t->shape);
  LGAN_CHECK(L, gan_copy(c, t));
  return 1;
}

/* t:copy(src) -> t, with src's values (same number of elements) */
static int t_copy(lua_State *L) {
  LGAN_CHECK(L, gan_copy(lgan_checktensor(L, 1), lgan_checktensor(L, 2)));
  lua_settop(L, 1);
  return 1;
}

static int t_fill(lua_State *L) {
  float v = (float)luaL_checknumber(L, 2);
  LGAN_CHECK(L, gan_fill(check_overwritten(L, 1), v));
  lua_settop(L, 1);
  return 1;
}

static int t_zero(lua_State *L) {
  LGAN_CHECK(L, gan_fill(check_overwritten(L, 1), 0.0f));
  lua_settop(L, 1);
  return 1;
}

/* t:zero_later(): t reads as zeros from now on, but the zeros are written
** only when something reads t, and never when an op overwrites it whole
** first (core/ops.h, gan_zero_later).  nn modules' zero_grad uses it. */
static int t_zero_later(lua_State *L) {
  LGAN_CHECK(L, gan_zero_later(lgan_checkmarked(L, 1)));
  lua_settop(L, 1);
  return 1;
}

/* t:normal(mean, std) and t:uniform(lo, hi): refill in place */
static int t_normal(lua_State *L) {
  LGAN_CHECK(L, gan_randn(lgan_checktensor(L, 1), lgan_rng(L),
                          (float)luaL_optnumber(L, 2, 0.0), (float)luaL_optnumber(L, 3, 1.0)));
  lua_settop(L, 1);
  return 1;
}

static int t_uniform(lua_State *L) {
  LGAN_CHECK(L, gan_rand(lgan_checktensor(L, 1), lgan_rng(L),
                         (float)luaL_optnumber(L, 2, 0.0), (float)luaL_optnumber(L, 3, 1.0)));
  lua_settop(L, 1);
  return 1;
}

/* t:add(x [, a [, b]]) -> t = a*x + b*t (a, b default 1) */
static int t_add(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1), *x = lgan_checktensor(L, 2);
  LGAN_CHECK(L, gan_axpby(t, (float)luaL_optnumber(L, 3, 1.0), x,
                          (float)luaL_optnumber(L, 4, 1.0)));
  lua_settop(L, 1);
  return 1;
}

/* t:scale(a) -> t = a*t */
static int t_scale(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  LGAN_CHECK(L, gan_axpby(t, 0.0f, t, (float)luaL_checknumber(L, 2)));
  lua_settop(L, 1);
  return 1;
}

/* t:mul(a, b) -> t = a .* b */
static int t_mul(lua_State *L) {
  LGAN_CHECK(L, gan_mul(lgan_checktensor(L, 1), lgan_checktensor(L, 2),
                        lgan_checktensor(L, 3)));
  lua_settop(L, 1);
  return 1;
}

/* t:sum() and t:mean() -> a number (which waits for the GPU); t:sum(out)
** and t:mean(out) -> out, a 1-element tensor the result is written into on
** t's device, without waiting (gan.reader reads it later) */
static int sum_or_mean(lua_State *L, int mean) {
  gan_tensor *t = lgan_checktensor(L, 1);
  double scale = mean ? 1.0 / (double)t->numel : 1.0;
  if (!lua_isnoneornil(L, 2)) {
    LGAN_CHECK(L, gan_sum_to(lgan_checktensor(L, 2), t, scale));
    lua_settop(L, 2);
    return 1;
  }
  double s;
  LGAN_CHECK(L, gan_sum(t, &s));
  lua_pushnumber(L, mean ? s / (double)t->numel : s);
  return 1;
}

static int t_sum(lua_State *L) { return sum_or_mean(L, 0); }
static int t_mean(lua_State *L) { return sum_or_mean(L, 1); }

/* --- readers: values read without waiting for the GPU ---------------------
** r = gan.reader(); r:start(...) takes up to 16 values, each a number, nil
** or a 1-element tensor, queues the copies of the tensors and returns r at
** once; r:values() waits for them and returns the values in order, the
** tensors' as numbers; r:ready() says whether values() would not wait.
** A start allocates nothing, so a training loop reads its losses this way
** at every step (gan/train.lua: step N's read starts, then N-1's is read). */
#define READER_MT "gan.Reader"
#define READER_ARGS 16

enum { R_NIL = -3, R_INT = -2, R_FLOAT = -1 }; /* else an index in r.values */

typedef struct lreader {
  gan_reader r;
  int nargs;
  signed char slot[READER_ARGS];
  lua_Number num[READER_ARGS];
  lua_Integer ival[READER_ARGS];
} lreader;

static lreader *checkreader(lua_State *L) {
  return (lreader *)luaL_checkudata(L, 1, READER_MT);
}

static int l_reader(lua_State *L) {
  lreader *r = (lreader *)lua_newuserdatauv(L, sizeof(lreader), 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, READER_MT);
  return 1;
}

static int reader_start(lua_State *L) {
  lreader *r = checkreader(L);
  int n = lua_gettop(L) - 1;
  r->nargs = 0;
  if (n > READER_ARGS)
    return luaL_error(L, "reader:start: %d values (at most %d)", n, READER_ARGS);
  const gan_tensor *ts[READER_ARGS];
  int nt = 0;
  for (int i = 0; i < n; i++) {
    int idx = i + 2;
    if (lua_isnil(L, idx)) {
      r->slot[i] = R_NIL;
    } else if (lua_isinteger(L, idx)) {
      r->slot[i] = R_INT;
      r->ival[i] = lua_tointeger(L, idx);
    } else if (lua_type(L, idx) == LUA_TNUMBER) {
      r->slot[i] = R_FLOAT;
      r->num[i] = lua_tonumber(L, idx);
    } else {
      gan_tensor *t = luaL_testudata(L, idx, GAN_TENSOR_MT);
      if (t != NULL && gan_tensor_live(t) && gan_tensor_ready(t) != GAN_OK)
        return lgan_fail(L);
      if (t == NULL || !gan_tensor_live(t) || t->numel != 1) {
        char shape[64];
        const char *got = t == NULL ? lua_pushfstring(L, "a %s", luaL_typename(L, idx))
                          : !gan_tensor_live(t)
                              ? "a freed tensor"
                              : lua_pushfstring(L, "a tensor of shape %s",
                                                gan_tensor_shape_str(t, shape, sizeof shape));
        return luaL_error(L, "reader:start: value #%d is %s (a number or a 1-element "
                          "tensor expected)", i + 1, got);
      }
      r->slot[i] = (signed char)nt;
      ts[nt++] = t;
    }
  }
  LGAN_CHECK(L, gan_reader_start(&r->r, ts, nt));
  r->nargs = n;
  lua_settop(L, 1);
  return 1;
}

static int reader_ready(lua_State *L) {
  lua_pushboolean(L, gan_reader_ready(&checkreader(L)->r));
  return 1;
}

static int reader_values(lua_State *L) {
  lreader *r = checkreader(L);
  if (gan_reader_wait(&r->r) != GAN_OK) {
    r->nargs = 0; /* the read failed: no stale values later */
    return lgan_fail(L);
  }
  luaL_checkstack(L, r->nargs, "reader:values");
  for (int i = 0; i < r->nargs; i++) {
    if (r->slot[i] == R_NIL) lua_pushnil(L);
    else if (r->slot[i] == R_INT) lua_pushinteger(L, r->ival[i]);
    else if (r->slot[i] == R_FLOAT) lua_pushnumber(L, r->num[i]);
    else lua_pushnumber(L, r->r.values[r->slot[i]]);
  }
  return r->nargs;
}

static int reader_gc(lua_State *L) {
  lreader *r = checkreader(L);
  gan_reader_close(&r->r);
  r->nargs = 0;
  return 0;
}

/* t:minmax() -> min, max, and whether every value is finite */
static int t_minmax(lua_State *L) {
  gan_tensor *t = lgan_checktensor(L, 1);
  const float *d = host_data(L, t);
  float lo = INFINITY, hi = -INFINITY;
  int finite = 1;
  for (int64_t i = 0; i < t->numel; i++) {
    if (!isfinite(d[i])) finite = 0;
    if (d[i] < lo) lo = d[i];
    if (d[i] > hi) hi = d[i];
  }
  lua_pushnumber(L, lo);
  lua_pushnumber(L, hi);
  lua_pushboolean(L, finite);
  return 3;
}

/* gan.equal(a, b): same shape and exactly the same values */
static int l_equal(lua_State *L) {
  gan_tensor *a = lgan_checktensor(L, 1), *b = lgan_checktensor(L, 2);
  if (!gan_tensor_same_shape(a, b)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  const float *da = host_data(L, a), *db = host_data(L, b);
  lua_pushboolean(L, memcmp(da, db, (size_t)a->numel * sizeof(float)) == 0);
  return 1;
}

/* gan.max_abs_diff(a, b) -> the largest |a - b| (same number of elements) */
static int l_max_abs_diff(lua_State *L) {
  gan_tensor *a = lgan_checktensor(L, 1), *b = lgan_checktensor(L, 2);
  luaL_argcheck(L, a->numel == b->numel, 2, "sizes differ");
  const float *da = host_data(L, a), *db = host_data(L, b);
  double m = 0.0;
  for (int64_t i = 0; i < a->numel; i++) {
    double d = fabs((double)da[i] - db[i]);
    if (d > m || isnan(d)) m = d;
  }
  lua_pushnumber(L, m);
  return 1;
}

/* gan.memory([device]) -> {allocs=, bytes=, peak=} of a backend */
static int l_memory(lua_State *L) {
  gan_backend *be = lua_isnoneornil(L, 1) ? lgan_backend(L)
                                          : lgan_backend_named(L, luaL_checkstring(L, 1));
  gan_mem_stats s = {0, 0, 0};
  if (be->iface.mem_stats) be->iface.mem_stats(be->ctx, &s);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)s.allocs);
  lua_setfield(L, -2, "allocs");
  lua_pushinteger(L, (lua_Integer)s.bytes_in_use);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, (lua_Integer)s.peak_bytes);
  lua_setfield(L, -2, "peak");
  return 1;
}

static const luaL_Reg tensor_methods[] = {
    {"shape", t_shape},     {"size", t_size},       {"numel", t_numel},
    {"dim", t_dim},         {"device", t_device},   {"totable", t_totable},
    {"item", t_item},       {"get", t_get},         {"free", t_free},
    {"rows", t_rows},       {"view", t_view},       {"clone", t_clone},
    {"to", t_to},           {"copy", t_copy},       {"fill", t_fill},
    {"zero", t_zero},       {"normal", t_normal},   {"uniform", t_uniform},
    {"zero_later", t_zero_later},
    {"add", t_add},         {"scale", t_scale},     {"mul", t_mul},
    {"sum", t_sum},         {"mean", t_mean},       {"minmax", t_minmax},
    {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {
    {"__gc", t_gc},   {"__close", t_gc}, {"__tostring", t_tostring},
    {"__len", t_len}, {"__index", NULL}, {NULL, NULL}};

static const luaL_Reg module_funcs[] = {
    {"tensor", l_tensor}, {"empty", l_empty},   {"zeros", l_zeros},
    {"ones", l_ones},     {"randn", l_randn},   {"rand", l_rand},
    {"equal", l_equal},   {"max_abs_diff", l_max_abs_diff},
    {"seed", l_seed},     {"rng_state", l_rng_state},
    {"device", l_device}, {"memory", l_memory}, {"precision", l_precision},
    {"cublas", l_cublas}, {"cudnn", l_cudnn},   {"reader", l_reader},
    {"synchronize", l_synchronize},
    {NULL, NULL}};

void lgan_open_tensor(lua_State *L) {
  if (luaL_newmetatable(L, GAN_TENSOR_MT)) {
    luaL_setfuncs(L, tensor_meta, 0);
    luaL_newlib(L, tensor_methods);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, "tensor");
    lua_setfield(L, -2, "__name");
  }
  lua_pop(L, 1);
  static const luaL_Reg reader_m[] = {{"start", reader_start}, {"ready", reader_ready},
                                      {"values", reader_values}, {"__gc", reader_gc},
                                      {"__close", reader_gc}, {NULL, NULL}};
  if (luaL_newmetatable(L, READER_MT)) {
    luaL_setfuncs(L, reader_m, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  /* one generator per Lua state, seeded with 0 until gan.seed */
  gan_rng *r = lua_newuserdatauv(L, sizeof(gan_rng), 0);
  gan_rng_seed(r, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, RNG_KEY);
  luaL_setfuncs(L, module_funcs, 0);
}
