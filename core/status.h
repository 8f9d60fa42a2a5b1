/*
** status.h -- how the core reports failure.
**
** Every core function that can fail returns a gan_status and leaves a message
** in a thread-local buffer (gan_errmsg).  The core never exits or aborts: the
** Lua binding turns a failed status into one Lua error, so a REPL survives any
** mistake.  Messages name the argument, file or shape at fault.
*/
#ifndef GAN_STATUS_H
#define GAN_STATUS_H

typedef enum gan_status {
  GAN_OK = 0,
  GAN_EARG,      /* bad argument: shape, type, range */
  GAN_ENOMEM,    /* an allocation failed */
  GAN_EIO,       /* a file could not be read or written */
  GAN_EFORMAT,   /* a file is not in the expected format */
  GAN_EBACKEND,  /* the backend (BLAS, CUDA) reported a failure */
  GAN_EINTR      /* interrupted by the user */
} gan_status;

#if defined(__GNUC__)
#define GAN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GAN_PRINTF(a, b)
#endif

/* Records a formatted message and returns 's', so that failures read as
** 'return gan_error(GAN_EARG, "...", ...);'. */
gan_status gan_error(gan_status s, const char *fmt, ...) GAN_PRINTF(2, 3);

/* The message of the last failure on this thread ("" if none). */
const char *gan_errmsg(void);

#endif
