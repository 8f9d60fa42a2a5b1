/*
** status.c -- the thread-local error message behind gan_error/gan_errmsg.
*/
#include <stdarg.h>
#include <stdio.h>

#include "status.h"

static _Thread_local char errbuf[1024];

gan_status gan_error(gan_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, sizeof errbuf, fmt, ap);
  va_end(ap);
  return s;
}

const char *gan_errmsg(void) { return errbuf; }
