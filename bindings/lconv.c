/*
** lconv.c -- convolutions and metrics in gan.C (filled in by the
** convolution work).
*/
#include "lgan_int.h"

void lgan_open_conv(lua_State *L) { (void)L; }
