/*
** lgan.c -- luaopen_gan: the module table, its C half and its Lua half.
**
** The C half (ltensor.c: tensors, devices, the generator; lops.c: gan.C,
** the raw ops) is registered first.  The Lua half -- the files in bindings/lua/gan:
** gan.nn, gan.optim, gan.images, ... -- is compiled into the binary by
** cmake/embed.cmake, so that the gan program and gan.so need no files beside
** them.  Setting GAN_LUA_DIR=bindings/lua loads those files from disk
** instead, to edit the library without rebuilding.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgan.h"
#include "lgan_int.h"

extern const struct gan_lua_source {
  const char *module, *path, *code;
  size_t len;
} gan_lua_sources[];

/* The package.preload loader of one embedded module; upvalue 1 is its index
** in gan_lua_sources. */
static int load_embedded(lua_State *L) {
  const struct gan_lua_source *s =
      &gan_lua_sources[lua_tointeger(L, lua_upvalueindex(1))];
  const char *dir = getenv("GAN_LUA_DIR");
  int status;
  if (dir && *dir) {
    /* "bindings/lua/gan/nn.lua" -> DIR/gan/nn.lua */
    const char *rel = strstr(s->path, "gan/");
    lua_pushfstring(L, "%s/%s", dir, rel ? rel : s->path);
    status = luaL_loadfilex(L, lua_tostring(L, -1), "t");
  } else {
    lua_pushfstring(L, "@%s", s->path);
    status = luaL_loadbufferx(L, s->code, s->len, lua_tostring(L, -1), "t");
  }
  if (status != LUA_OK) return lua_error(L);
  lua_pushstring(L, s->module);
  lua_call(L, 1, 1);
  return 1;
}

int luaopen_gan(lua_State *L) {
  lua_newtable(L);                       /* M */
  lgan_open_tensor(L);
  lua_newtable(L);                       /* M.C: the raw ops */
  lgan_open_ops(L);
  lgan_open_ckpt(L);
  lgan_open_conv(L);
  lua_setfield(L, -2, "C");
  lua_pushstring(L, gan_backends_built());
  lua_setfield(L, -2, "backends");
#ifdef GAN_VERSION
  lua_pushstring(L, GAN_VERSION);
  lua_setfield(L, -2, "version");
#endif

  /* Lua modules may require "gan" while it is being opened */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "gan");
  lua_pop(L, 1);

  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  int init = -1;
  for (int i = 0; gan_lua_sources[i].module; i++) {
    if (strcmp(gan_lua_sources[i].module, "gan.init") == 0) {
      init = i;
      continue;
    }
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, gan_lua_sources[i].module);
  }
  lua_pop(L, 1);

  /* gan/init.lua completes M (it receives M as its argument) */
  if (init >= 0) {
    lua_pushinteger(L, init);
    lua_pushcclosure(L, load_embedded, 1);
    lua_call(L, 0, 1);                  /* loads and runs the chunk, gets M back */
    /* load_embedded passes the module name; init.lua reads M from package.loaded */
    lua_pop(L, 1);
  }
  return 1;
}
