/*
** checkpoint.c -- the checkpoint file format (see checkpoint.h).
**
** The writer streams: each entry's directory fields go both to the file and
** to an in-memory copy of the directory, whose hash the trailer holds; the
** payloads go straight from the caller's memory to the file.  The reader
** checks sizes against what is left of the file before allocating anything,
** reads each payload into a fresh buffer and checks its hash, and checks the
** trailer last.  Nothing it returns is half-valid: on any error everything is
** freed and the message names the file and the entry.
*/
#define _POSIX_C_SOURCE 200809L /* fsync, fileno, getpid */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fault.h"

/* Payloads are the host's floats as they lie in memory. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "checkpoint.c writes little-endian payloads; a big-endian host needs byte swaps"
#endif

static const char MAGIC[8] = {'G', 'A', 'N', 'C', 'K', 'P', 'T', '\0'};
static const char END_MAGIC[8] = {'G', 'A', 'N', 'C', 'K', 'E', 'N', 'D'};
#define HEADER_BYTES 16  /* magic, version, count */
#define TRAILER_BYTES 16 /* directory hash, end magic */
#define MIN_ENTRY 21     /* u16 + 1 name byte + u8 + u8 + u64 + u64 */

/* The fuzzer (fuzz/fuzz_checkpoint.c) is built with this macro, the usual
** libFuzzer convention, so that its mutated inputs get past the checksums
** into the rest of the reader.  A real build never defines it. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define HASH_OK(a, b) ((void)(a), (void)(b), 1)
#else
#define HASH_OK(a, b) ((a) == (b))
#endif

/* --- little-endian fields ------------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* --- XXH64 -----------------------------------------------------------------
** xxHash64 as specified in Collet's xxhash_spec.md: four 64-bit lanes over
** 32-byte stripes, then the tail and an avalanche.  It checks a gigabyte in
** a fraction of a second, and any single-bit change gives another hash. */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t xxh_round(uint64_t acc, uint64_t in) {
  acc += in * P2;
  acc = rotl64(acc, 31);
  return acc * P1;
}

static uint64_t xxh_merge(uint64_t acc, uint64_t v) {
  acc ^= xxh_round(0, v);
  return acc * P1 + P4;
}

uint64_t gan_xxh64(const void *data, size_t len, uint64_t seed) {
  const unsigned char *p = data, *end = p + len;
  uint64_t h;
  if (len >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    const unsigned char *limit = end - 32;
    do {
      v1 = xxh_round(v1, get_le(p, 8));
      v2 = xxh_round(v2, get_le(p + 8, 8));
      v3 = xxh_round(v3, get_le(p + 16, 8));
      v4 = xxh_round(v4, get_le(p + 24, 8));
      p += 32;
    } while (p <= limit);
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = xxh_merge(h, v1);
    h = xxh_merge(h, v2);
    h = xxh_merge(h, v3);
    h = xxh_merge(h, v4);
  } else {
    h = seed + P5;
  }
  h += (uint64_t)len;
  for (; end - p >= 8; p += 8) h = rotl64(h ^ xxh_round(0, get_le(p, 8)), 27) * P1 + P4;
  if (end - p >= 4) {
    h = rotl64(h ^ (uint64_t)get_le(p, 4) * P1, 23) * P2 + P3;
    p += 4;
  }
  for (; p < end; p++) h = rotl64(h ^ (uint64_t)*p * P5, 11) * P1;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

/* --- a growable byte buffer ------------------------------------------------ */

typedef struct bytes {
  unsigned char *p;
  size_t n, cap;
} bytes;

static int bytes_add(bytes *b, const void *src, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) return 0;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
  return 1;
}

/* Number of elements of a shape, or -1 if a dimension is not positive or
** the product passes 2^40 (the tensor limit). */
static int64_t numel_of(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] <= 0 || n > ((int64_t)1 << 40) / shape[i]) return -1;
    n *= shape[i];
  }
  return n;
}

/* --- writing ---------------------------------------------------------------- */

struct gan_ckpt_writer {
  gan_wfile out; /* the temporary file (fault.h: writes can be made to fail) */
  char *path, *tmp;
  uint32_t count, done;
  bytes dir; /* the directory so far, for the trailer's hash */
};

static void writer_free(gan_ckpt_writer *w) {
  if (w->out.f) fclose(w->out.f);
  if (w->tmp) remove(w->tmp);
  free(w->path);
  free(w->tmp);
  free(w->dir.p);
  free(w);
}

/* Writes n bytes to the file and, if 'dir', to the directory copy. */
static gan_status emit(gan_ckpt_writer *w, const void *p, size_t n, int dir) {
  if (n && gan_fault_fwrite(&w->out, p, n) != n)
    return gan_error(GAN_EIO, "cannot write checkpoint '%s': %s", w->path,
                     strerror(errno));
  if (dir && !bytes_add(&w->dir, p, n))
    return gan_error(GAN_ENOMEM, "cannot write checkpoint '%s': out of memory",
                     w->path);
  return GAN_OK;
}

/*
** Removes the "path.tmp-PID" files of writers that were killed (kill -9, a
** power cut) before they could remove their own: at 128x128 each is over a
** gigabyte, and a run that is killed again and again would fill the disk.
** A file is stale when its process is gone and it has not changed for a
** minute, so another gan writing the same checkpoint keeps its file.
*/
static void remove_stale(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
                    : strdup(".");
  DIR *d = dir ? opendir(dir) : NULL;
  size_t blen = strlen(base);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    const char *n = e->d_name, *num = n + blen + 5;
    if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp-", 5) != 0)
      continue;
    char *end;
    long pid = strtol(num, &end, 10);
    if (end == num || *end != '\0' || pid <= 0 || pid == (long)getpid() ||
        kill((pid_t)pid, 0) == 0 || errno != ESRCH)
      continue; /* not ours to judge, or its writer is alive */
    size_t len = strlen(dir) + strlen(n) + 2;
    char *full = malloc(len);
    struct stat st;
    if (full) {
      snprintf(full, len, "%s/%s", dir, n);
      if (stat(full, &st) == 0 && S_ISREG(st.st_mode) &&
          time(NULL) - st.st_mtime > 60)
        remove(full);
      free(full);
    }
  }
  if (d) closedir(d);
  free(dir);
}

gan_status gan_ckpt_begin(gan_ckpt_writer **out, const char *path, uint32_t count) {
  *out = NULL;
  if (!path || !*path) return gan_error(GAN_EARG, "checkpoint: empty file name");
  gan_ckpt_writer *w = calloc(1, sizeof *w);
  size_t tl = strlen(path) + 32;
  if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(tl))) {
    if (w) {
      free(w->path);
      free(w);
    }
    return gan_error(GAN_ENOMEM, "cannot write checkpoint '%s': out of memory", path);
  }
  snprintf(w->tmp, tl, "%s.tmp-%ld", path, (long)getpid());
  remove_stale(path);
  if (!gan_wfile_open(&w->out, w->tmp)) {
    gan_status s = gan_error(GAN_EIO, "cannot write checkpoint '%s': %s", path,
                             strerror(errno));
    free(w->tmp);
    w->tmp = NULL; /* nothing to remove */
    writer_free(w);
    return s;
  }
  w->count = count;
  unsigned char h[HEADER_BYTES];
  memcpy(h, MAGIC, 8);
  put_le(h + 8, GAN_CKPT_VERSION, 4);
  put_le(h + 12, count, 4);
  gan_status s = emit(w, h, sizeof h, 1);
  if (s != GAN_OK) {
    writer_free(w);
    return s;
  }
  *out = w;
  return GAN_OK;
}

gan_status gan_ckpt_put(gan_ckpt_writer *w, const char *name, gan_ckpt_kind kind,
                        int ndim, const int64_t *shape, const void *data,
                        uint64_t nbytes) {
  size_t len = name ? strlen(name) : 0;
  if (len == 0 || len > 65535)
    return gan_error(GAN_EARG, "checkpoint '%s': an entry name must have 1 to "
                     "65535 bytes", w->path);
  if (w->done >= w->count)
    return gan_error(GAN_EARG, "checkpoint '%s': more entries than the %u "
                     "announced", w->path, w->count);
  if (kind == GAN_CKPT_TENSOR) {
    int64_t n = ndim >= 0 && ndim <= GAN_MAX_DIMS ? numel_of(ndim, shape) : -1;
    if (n < 0 || (uint64_t)n * 4 != nbytes)
      return gan_error(GAN_EARG, "checkpoint '%s': tensor '%s' has a bad shape "
                       "or size", w->path, name);
  } else if (kind == GAN_CKPT_BLOB) {
    ndim = 0;
  } else {
    return gan_error(GAN_EARG, "checkpoint '%s': entry '%s' of unknown kind %d",
                     w->path, name, (int)kind);
  }
  if (nbytes && !data)
    return gan_error(GAN_EARG, "checkpoint '%s': entry '%s' has no data", w->path,
                     name);
  unsigned char h[2 + 2 + 8 * GAN_MAX_DIMS + 16];
  gan_status s;
  put_le(h, len, 2);
  if ((s = emit(w, h, 2, 1)) != GAN_OK || (s = emit(w, name, len, 1)) != GAN_OK)
    return s;
  size_t k = 0;
  h[k++] = (unsigned char)kind;
  h[k++] = (unsigned char)ndim;
  for (int i = 0; i < ndim; i++, k += 8) put_le(h + k, (uint64_t)shape[i], 8);
  put_le(h + k, nbytes, 8);
  put_le(h + k + 8, gan_xxh64(data, (size_t)nbytes, 0), 8);
  k += 16;
  if ((s = emit(w, h, k, 1)) != GAN_OK || (s = emit(w, data, nbytes, 0)) != GAN_OK)
    return s;
  w->done++;
  return GAN_OK;
}

/* fsync of the folder that holds 'path', so that the rename is on disk. */
static void sync_folder(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path))
                    : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    fsync(fd); /* best effort: some filesystems refuse it on folders */
    close(fd);
  }
  free(dir);
}

gan_status gan_ckpt_commit(gan_ckpt_writer *w) {
  gan_status s = GAN_OK;
  if (w->done != w->count) {
    s = gan_error(GAN_EARG, "checkpoint '%s': %u entries written of the %u "
                  "announced", w->path, w->done, w->count);
  } else {
    unsigned char t[TRAILER_BYTES];
    put_le(t, gan_xxh64(w->dir.p, w->dir.n, 0), 8);
    memcpy(t + 8, END_MAGIC, 8);
    s = emit(w, t, sizeof t, 0);
  }
  if (s == GAN_OK && (fflush(w->out.f) != 0 || fsync(fileno(w->out.f)) != 0))
    s = gan_error(GAN_EIO, "cannot write checkpoint '%s': %s", w->path,
                  strerror(errno));
  if (s == GAN_OK) {
    int rc = fclose(w->out.f);
    w->out.f = NULL;
    if (rc != 0)
      s = gan_error(GAN_EIO, "cannot write checkpoint '%s': %s", w->path,
                    strerror(errno));
  }
  if (s == GAN_OK) {
    if (rename(w->tmp, w->path) != 0)
      s = gan_error(GAN_EIO, "cannot write checkpoint '%s': %s", w->path,
                    strerror(errno));
    else {
      free(w->tmp);
      w->tmp = NULL; /* renamed: nothing to remove */
      sync_folder(w->path);
    }
  }
  writer_free(w);
  return s;
}

void gan_ckpt_abort(gan_ckpt_writer *w) {
  if (w) writer_free(w);
}

/* --- reading ---------------------------------------------------------------- */

typedef struct reader {
  FILE *f;
  const char *path;
  uint64_t left; /* bytes of the file not read yet */
  bytes dir;
} reader;

/* Reads n bytes (into the directory copy too if 'dir'), or fails with
** "truncated" when the file has fewer left. */
static gan_status take(reader *r, void *dst, size_t n, int dir, const char *what) {
  if (n > r->left)
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is truncated or corrupted: %s "
                     "needs %zu bytes, %llu remain", r->path, what, n,
                     (unsigned long long)r->left);
  if (n && fread(dst, 1, n, r->f) != n)
    return gan_error(GAN_EIO, "cannot read checkpoint '%s': %s", r->path,
                     ferror(r->f) ? strerror(errno) : "unexpected end of file");
  r->left -= n;
  if (dir && !bytes_add(&r->dir, dst, n))
    return gan_error(GAN_ENOMEM, "cannot read checkpoint '%s': out of memory",
                     r->path);
  return GAN_OK;
}

void gan_ckpt_free(gan_ckpt *c) {
  if (c->entries) {
    for (uint32_t i = 0; i < c->count; i++) {
      free(c->entries[i].name);
      free(c->entries[i].data);
    }
  }
  free(c->entries);
  memset(c, 0, sizeof *c);
}

/* One entry: directory fields, then the payload, checked against its hash. */
static gan_status read_entry(reader *r, uint32_t idx, gan_ckpt_entry *e) {
  unsigned char h[8 * GAN_MAX_DIMS];
  char what[64];
  gan_status s;
  snprintf(what, sizeof what, "entry %u", idx + 1);
  if ((s = take(r, h, 2, 1, what)) != GAN_OK) return s;
  size_t len = (size_t)get_le(h, 2);
  if (len == 0)
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is corrupted: entry %u has no "
                     "name", r->path, idx + 1);
  if (len + MIN_ENTRY - 3 > r->left) /* name and the fixed fields must fit */
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is truncated or corrupted: "
                     "entry %u does not fit in the file", r->path, idx + 1);
  if (!(e->name = malloc(len + 1)))
    return gan_error(GAN_ENOMEM, "cannot read checkpoint '%s': out of memory", r->path);
  if ((s = take(r, e->name, len, 1, what)) != GAN_OK) return s;
  e->name[len] = '\0';
  if (strlen(e->name) != len)
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is corrupted: the name of "
                     "entry %u holds a NUL byte", r->path, idx + 1);
  if ((s = take(r, h, 2, 1, e->name)) != GAN_OK) return s;
  e->kind = (gan_ckpt_kind)h[0];
  e->ndim = h[1];
  if ((e->kind != GAN_CKPT_TENSOR && e->kind != GAN_CKPT_BLOB) ||
      e->ndim > GAN_MAX_DIMS || (e->kind == GAN_CKPT_BLOB && e->ndim != 0))
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is corrupted: entry '%s' has "
                     "kind %d and %d dimensions", r->path, e->name, h[0], h[1]);
  if ((s = take(r, h, 8 * (size_t)e->ndim, 1, e->name)) != GAN_OK) return s;
  for (int i = 0; i < e->ndim; i++) e->shape[i] = (int64_t)get_le(h + 8 * i, 8);
  for (int i = e->ndim; i < GAN_MAX_DIMS; i++) e->shape[i] = 1;
  if ((s = take(r, h, 16, 1, e->name)) != GAN_OK) return s;
  e->nbytes = get_le(h, 8);
  uint64_t hash = get_le(h + 8, 8);
  if (e->kind == GAN_CKPT_TENSOR) {
    int64_t n = numel_of(e->ndim, e->shape);
    if (n < 0 || (uint64_t)n * 4 != e->nbytes)
      return gan_error(GAN_EFORMAT, "checkpoint '%s' is corrupted: tensor '%s' "
                       "declares %llu bytes for its shape", r->path, e->name,
                       (unsigned long long)e->nbytes);
  }
  /* the cap on allocations: a payload must fit in what is left */
  if (e->nbytes > r->left || r->left - e->nbytes < TRAILER_BYTES)
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is truncated or corrupted: "
                     "entry '%s' declares %llu bytes, %llu remain", r->path,
                     e->name, (unsigned long long)e->nbytes,
                     (unsigned long long)r->left);
  if (!(e->data = malloc(e->nbytes ? (size_t)e->nbytes : 1)))
    return gan_error(GAN_ENOMEM, "cannot read checkpoint '%s': out of memory for "
                     "'%s' (%llu bytes)", r->path, e->name,
                     (unsigned long long)e->nbytes);
  if ((s = take(r, e->data, (size_t)e->nbytes, 0, e->name)) != GAN_OK) return s;
  if (!HASH_OK(gan_xxh64(e->data, (size_t)e->nbytes, 0), hash))
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is corrupted: the checksum of "
                     "'%s' does not match its data", r->path, e->name);
  return GAN_OK;
}

static gan_status read_all(reader *r, gan_ckpt *c) {
  unsigned char h[HEADER_BYTES];
  gan_status s;
  if (r->left < HEADER_BYTES + TRAILER_BYTES)
    return gan_error(GAN_EFORMAT, "'%s' is not a gan checkpoint (%llu bytes: "
                     "truncated, or another kind of file)", r->path,
                     (unsigned long long)r->left);
  if ((s = take(r, h, HEADER_BYTES, 1, "the header")) != GAN_OK) return s;
  if (memcmp(h, MAGIC, 8) != 0)
    return gan_error(GAN_EFORMAT, "'%s' is not a gan checkpoint (it does not "
                     "start with GANCKPT)", r->path);
  c->version = (uint32_t)get_le(h + 8, 4);
  if (c->version != GAN_CKPT_VERSION)
    return gan_error(GAN_EFORMAT, "checkpoint '%s' has format version %u; this "
                     "gan reads version %d", r->path, c->version, GAN_CKPT_VERSION);
  uint32_t count = (uint32_t)get_le(h + 12, 4);
  if ((uint64_t)count * MIN_ENTRY > r->left)
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is truncated or corrupted: %u "
                     "entries cannot fit in %llu bytes", r->path, count,
                     (unsigned long long)r->left);
  c->entries = calloc(count ? count : 1, sizeof *c->entries);
  if (!c->entries)
    return gan_error(GAN_ENOMEM, "cannot read checkpoint '%s': out of memory", r->path);
  c->count = count;
  for (uint32_t i = 0; i < count; i++)
    if ((s = read_entry(r, i, &c->entries[i])) != GAN_OK) return s;
  unsigned char t[TRAILER_BYTES];
  if ((s = take(r, t, TRAILER_BYTES, 0, "the trailer")) != GAN_OK) return s;
  if (memcmp(t + 8, END_MAGIC, 8) != 0 ||
      !HASH_OK(get_le(t, 8), gan_xxh64(r->dir.p, r->dir.n, 0)))
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is corrupted: the checksum of "
                     "its directory (names, shapes, sizes) does not match", r->path);
  if (r->left != 0)
    return gan_error(GAN_EFORMAT, "checkpoint '%s' is corrupted: %llu bytes "
                     "after its end", r->path, (unsigned long long)r->left);
  return GAN_OK;
}

gan_status gan_ckpt_read(const char *path, gan_ckpt *out) {
  memset(out, 0, sizeof *out);
  reader r = {NULL, path, 0, {NULL, 0, 0}};
  struct stat st;
  r.f = fopen(path, "rb");
  if (!r.f)
    return gan_error(GAN_EIO, "cannot read checkpoint '%s': %s", path, strerror(errno));
  if (fstat(fileno(r.f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(r.f);
    return gan_error(GAN_EIO, "cannot read checkpoint '%s': not a regular file", path);
  }
  r.left = (uint64_t)st.st_size;
  gan_status s = read_all(&r, out);
  fclose(r.f);
  free(r.dir.p);
  if (s != GAN_OK) gan_ckpt_free(out);
  return s;
}

/* The same checks on a file image in memory, through fmemopen; 'name'
** stands for the path in messages.  Files too short to hold a header and a
** trailer are refused before fmemopen (which may refuse a size of 0). */
gan_status gan_ckpt_read_memory(const void *buf, size_t len, const char *name,
                                gan_ckpt *out) {
  memset(out, 0, sizeof *out);
  if (buf == NULL) len = 0;
  reader r = {NULL, name ? name : "(memory)", (uint64_t)len, {NULL, 0, 0}};
  if (len < HEADER_BYTES + TRAILER_BYTES)
    return read_all(&r, out); /* refused before any read */
  r.f = fmemopen((void *)buf, len, "rb");
  if (!r.f)
    return gan_error(GAN_ENOMEM, "cannot read checkpoint '%s': %s", r.path,
                     strerror(errno));
  gan_status s = read_all(&r, out);
  fclose(r.f);
  free(r.dir.p);
  if (s != GAN_OK) gan_ckpt_free(out);
  return s;
}
