/*
** stb_impl.h -- the allocation cap of the stb_image compiled in stb_impl.c.
**
** image.c sets a cap before each decode, from the size the image declares:
** an allocation above it fails (stb then reports "outofmem" and gives up),
** and gan_stb_cap_hit says so.  This is what bounds a PNG whose compressed
** data inflate to far more than its pixels (a zlib bomb: stb would grow
** its buffer up to 4 GB), or whose chunk lengths promise gigabytes.
*/
#ifndef GAN_STB_IMPL_H
#define GAN_STB_IMPL_H

#include <stddef.h>

/* Sets the largest single allocation stb may make on this thread
** (SIZE_MAX: no cap) and clears the hit flag. */
void gan_stb_cap(size_t bytes);

/* Whether an allocation was refused since the last gan_stb_cap. */
int gan_stb_cap_hit(void);

#endif
