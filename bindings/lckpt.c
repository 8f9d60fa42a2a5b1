/*
** lckpt.c -- checkpoints in gan.C (filled in by the checkpoint work).
*/
#include "lgan_int.h"

void lgan_open_ckpt(lua_State *L) { (void)L; }
