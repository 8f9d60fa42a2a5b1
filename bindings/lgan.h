/*
** lgan.h -- the Lua 5.4 binding of the engine.
*/
#ifndef LGAN_H
#define LGAN_H

#include <lua.h>

/* Opens the module: the C functions plus the embedded Lua half (gan.nn,
** gan.optim, gan.images, ...).  Returns the module table. */
int luaopen_gan(lua_State *L);

#endif
