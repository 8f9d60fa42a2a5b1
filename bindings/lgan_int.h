/*
** lgan_int.h -- what the binding's C files share: the tensor userdata, the
** default backend and the random generator of a Lua state.
*/
#ifndef LGAN_INT_H
#define LGAN_INT_H

#include <lauxlib.h>
#include <lua.h>

#include "backend.h"
#include "ops.h"
#include "rng.h"
#include "tensor.h"

#define GAN_TENSOR_MT "gan.Tensor"

/* Raises the core's last error as a Lua error: the one choke point between
** a failed C call and Lua (the message is an argument, never a format). */
int lgan_fail(lua_State *L);
#define LGAN_CHECK(L, call)                                                    \
  do {                                                                         \
    if ((call) != GAN_OK) lgan_fail(L);                                        \
  } while (0)

/* The tensor at idx, raising Lua's standard "bad argument" error if it is
** not a tensor or has been freed, with any zeros put off (t:zero_later())
** written: what every op but one sees. */
gan_tensor *lgan_checktensor(lua_State *L, int idx);
/* Same, with the zeros still put off: for the ops that overwrite the tensor
** whole, or that handle the mark (gan_linear_backward's gradients). */
gan_tensor *lgan_checkmarked(lua_State *L, int idx);
/* Same, or NULL when the argument is nil or absent. */
gan_tensor *lgan_opttensor(lua_State *L, int idx);
/* A new tensor userdata of that shape on 'be', pushed on the stack. */
gan_tensor *lgan_newtensor(lua_State *L, gan_backend *be, int ndim,
                           const int64_t *shape);

/* The integer at idx, raising "bad argument" if it does not fit an int
** (a plain cast would turn 2^32 + 16 into 16). */
int lgan_checkint(lua_State *L, int idx);

/* The backend that new tensors go to (gan.device). */
gan_backend *lgan_backend(lua_State *L);
/* Backend by name ("cpu", "cuda"), raising a clear error if unavailable. */
gan_backend *lgan_backend_named(lua_State *L, const char *name);
/* The generator of this Lua state (gan.seed). */
gan_rng *lgan_rng(lua_State *L);

void lgan_open_tensor(lua_State *L);  /* fills the module table at -1 */
void lgan_open_ops(lua_State *L);     /* fills the table at -1 (gan.C) */
void lgan_open_ckpt(lua_State *L);    /* lckpt.c: checkpoints, into gan.C */
void lgan_open_conv(lua_State *L);    /* lconv.c: convolutions, metrics, into gan.C */

#endif
