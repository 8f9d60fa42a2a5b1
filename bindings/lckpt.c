/*
** lckpt.c -- checkpoints and the little file-system help a run needs, in gan.C.
**
**   gan.C.ckpt_write(path, entries)  entries: a list of {name = s, value = tensor}
**                                    or {name = s, blob = string}; atomic
**   gan.C.ckpt_read(path)   -> the same list, tensors on the cpu, all checked
**   gan.C.mtime(path)       -> modification time in seconds (ns resolution), or nil
**   gan.C.hardlink(a, b)    -> true, or nil and a message
**
** The file format and its guarantees are core/checkpoint.h's; what a
** checkpoint of a training run holds is gan/checkpoint.lua's business.
*/
#define _POSIX_C_SOURCE 200809L /* link, struct stat's st_mtim */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "lgan_int.h"

#define CKPT_MT "gan.CheckpointData"

/* One entry to write, gathered before the file is opened, so that nothing
** between begin and commit can raise a Lua error (which would leak the
** writer and its temporary file). */
typedef struct item {
  const char *name;
  gan_tensor *t;     /* a tensor, or */
  const char *blob;  /* a blob of blen bytes */
  size_t blen;
} item;

/* Fills *it from entry i of the list at index 2; raises on a bad entry. */
static void check_item(lua_State *L, lua_Integer i, item *it) {
  if (lua_rawgeti(L, 2, i) != LUA_TTABLE)
    luaL_error(L, "ckpt_write: entry %d is a %s, not a table", (int)i,
               luaL_typename(L, -1));
  lua_pushliteral(L, "name");
  if (lua_rawget(L, -2) != LUA_TSTRING)
    luaL_error(L, "ckpt_write: entry %d has no name", (int)i);
  size_t len;
  it->name = lua_tolstring(L, -1, &len); /* kept alive by the entry table */
  if (strlen(it->name) != len)
    luaL_error(L, "ckpt_write: the name of entry %d holds a zero byte", (int)i);
  lua_pop(L, 1);
  lua_pushliteral(L, "value");
  lua_rawget(L, -2);
  it->t = NULL;
  it->blob = NULL;
  if (!lua_isnil(L, -1)) {
    it->t = luaL_testudata(L, -1, GAN_TENSOR_MT);
    if (!it->t || !gan_tensor_live(it->t))
      luaL_error(L, "ckpt_write: entry '%s' holds a %s, not a live tensor", it->name,
                 it->t ? "freed tensor" : luaL_typename(L, -1));
    if (gan_tensor_ready(it->t) != GAN_OK) lgan_fail(L); /* zeros put off */
  } else {
    lua_pushliteral(L, "blob");
    if (lua_rawget(L, -3) != LUA_TSTRING)
      luaL_error(L, "ckpt_write: entry '%s' has neither a value nor a blob", it->name);
    it->blob = lua_tolstring(L, -1, &it->blen);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
}

/* ckpt_write(path, entries) -> true; raises an error naming the file. */
static int l_ckpt_write(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  luaL_argcheck(L, n >= 0 && n < 0x7fffffff, 2, "too many entries");
  item *items = lua_newuserdatauv(L, (size_t)n * sizeof(item) + 1, 0);
  size_t stage = 0; /* floats of the largest tensor not on the cpu */
  for (lua_Integer i = 1; i <= n; i++) {
    check_item(L, i, &items[i - 1]);
    gan_tensor *t = items[i - 1].t;
    if (t && t->backend != gan_backend_cpu() && (size_t)t->numel > stage)
      stage = (size_t)t->numel;
  }
  /* a host copy of one device tensor at a time, freed by the GC */
  float *host = stage ? lua_newuserdatauv(L, stage * sizeof(float), 0) : NULL;

  gan_ckpt_writer *w;
  LGAN_CHECK(L, gan_ckpt_begin(&w, path, (uint32_t)n));
  for (lua_Integer i = 0; i < n; i++) {
    const item *it = &items[i];
    gan_status s;
    if (it->t) {
      const float *d = it->t->data;
      if (it->t->backend != gan_backend_cpu()) {
        s = gan_to_host(it->t, host);
        d = host;
        if (s != GAN_OK) {
          gan_ckpt_abort(w);
          return lgan_fail(L);
        }
      }
      s = gan_ckpt_put(w, it->name, GAN_CKPT_TENSOR, it->t->ndim, it->t->shape, d,
                       (uint64_t)it->t->numel * sizeof(float));
    } else {
      s = gan_ckpt_put(w, it->name, GAN_CKPT_BLOB, 0, NULL, it->blob, it->blen);
    }
    if (s != GAN_OK) {
      gan_ckpt_abort(w);
      return lgan_fail(L);
    }
  }
  LGAN_CHECK(L, gan_ckpt_commit(w));
  lua_pushboolean(L, 1);
  return 1;
}

static int ckpt_gc(lua_State *L) {
  gan_ckpt_free(luaL_checkudata(L, 1, CKPT_MT));
  return 0;
}

/* ckpt_read(path) -> list of {name =, value = tensor (cpu)} / {name =, blob =}.
** The file is read and checked whole before anything is returned. */
static int l_ckpt_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  gan_ckpt *c = lua_newuserdatauv(L, sizeof(gan_ckpt), 0);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CKPT_MT); /* frees the entries if a push below fails */
  LGAN_CHECK(L, gan_ckpt_read(path, c));
  lua_createtable(L, (int)c->count, 0);
  for (uint32_t i = 0; i < c->count; i++) {
    gan_ckpt_entry *e = &c->entries[i];
    lua_createtable(L, 0, 2);
    lua_pushstring(L, e->name);
    lua_setfield(L, -2, "name");
    if (e->kind == GAN_CKPT_TENSOR) {
      gan_tensor *t = lgan_newtensor(L, gan_backend_cpu(), e->ndim, e->shape);
      memcpy(t->data, e->data, (size_t)e->nbytes);
      lua_setfield(L, -2, "value");
    } else {
      lua_pushlstring(L, e->data, (size_t)e->nbytes);
      lua_setfield(L, -2, "blob");
    }
    free(e->data); /* one copy at a time: the peak stays near the file size */
    e->data = NULL;
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  gan_ckpt_free(c);
  return 1;
}

/* mtime(path) -> seconds since the epoch, with the nanoseconds; or nil and
** a message.  How --watch sees that a script changed. */
static int l_mtime(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot stat '%s': %s", path, strerror(errno));
    return 2;
  }
  lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9);
  return 1;
}

/* hardlink(existing, new) -> true, or nil and a message.  epoch_NNNN.ckpt
** shares last.ckpt's data instead of writing it twice. */
static int l_hardlink(lua_State *L) {
  const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
  if (link(from, to) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot link '%s' to '%s': %s", to, from, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

void lgan_open_ckpt(lua_State *L) {
  static const luaL_Reg funcs[] = {{"ckpt_write", l_ckpt_write},
                                   {"ckpt_read", l_ckpt_read},
                                   {"mtime", l_mtime},
                                   {"hardlink", l_hardlink},
                                   {NULL, NULL}};
  if (luaL_newmetatable(L, CKPT_MT)) {
    lua_pushcfunction(L, ckpt_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
}
