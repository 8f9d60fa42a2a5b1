/*
** tests/emu/emu.cpp -- the host emulator behind cuda_runtime.h and
** cublas_v2.h (see cuda_runtime.h for what it is and is not).
**
** Kernels: a kernel without barriers runs its threads one after another; a
** kernel with barriers (launch.lua marks those whose body calls
** __syncthreads, __shfl_down_sync or block_sum) runs each block's threads
** as fibers (ucontext) that switch at every barrier.  __syncthreads waits
** for every live thread of the block, __shfl_down_sync for every live
** thread of the warp; a block whose threads wait at different barriers is
** a deadlock and stops the program with a message.  EMU_REVERSE=1 runs the
** blocks of a launch, and the threads of each block, in reverse order, which
** exposes a missing barrier, and a block that depends on another of its
** launch (which a GPU runs in no set order).  EMU_NOEXEC=1 runs no kernel
** and no cuBLAS product: what is left is the host's time around them.
**
** Memory: device and pinned allocations are recorded, so cudaMemcpyAsync
** checks its direction, cudaFree an unknown pointer fails as on a GPU, and
** cublasSgemm checks that each operand lies inside its allocation.
**
** Counters: with EMU_STATS=FILE, the program writes at exit how many times
** it called each thing that costs a GPU program time or a wait (kernel
** launches, products, allocations, copies by direction, synchronisations),
** one "name count" per line, then the launches of each kernel as
** "launch:KERNEL count"; run.sh compares two runs that differ in their
** number of steps, which gives what one training step does.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <ucontext.h>

#include <cblas.h>
#include <map>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

static cudaError_t last_error = cudaSuccess;
static cudaError_t fail(cudaError_t e) {
  if (last_error == cudaSuccess) last_error = e;
  return e;
}

/* EMU_FAULT_AT=N: the launch after the N-th faults (an illegal address) and
** does nothing.  As on a GPU, the fault is sticky, and asynchronous: the
** cudaGetLastError right after the launch does not see it yet (the kernel
** has not run), but every later call does (cudaGetLastError, copies, waits,
** products, launches), until the program ends; so whatever call comes next
** is the first to report it, a product as often as a launch. */
static cudaError_t sticky = cudaSuccess;
static int sticky_hidden; /* from the faulting launch's own error check */
static long long fault_at(void) {
  static long long at = -2;
  if (at == -2) {
    const char *s = getenv("EMU_FAULT_AT");
    at = s && *s ? atoll(s) : -1;
  }
  return at;
}

/* --- counters (EMU_STATS) --------------------------------------------- */
#define EMU_COUNTERS(X) \
  X(launches) X(gemms) X(malloc) X(free) X(host_alloc) X(free_host) \
  X(copy_h2d) X(copy_d2h) X(copy_d2h_bytes) X(copy_d2d) X(stream_sync) X(event_sync) \
  X(event_query)
#define EMU_FIELD(n) unsigned long long n;
static struct { EMU_COUNTERS(EMU_FIELD) } count;
static std::map<std::string, unsigned long long> *launches_of; /* by kernel */

static void write_stats(void) {
  const char *path = getenv("EMU_STATS");
  FILE *f = path && *path ? fopen(path, "w") : NULL;
  if (!f) return;
#define EMU_PRINT(n) fprintf(f, "%s %llu\n", #n, count.n);
  EMU_COUNTERS(EMU_PRINT)
  if (launches_of)
    for (const auto &k : *launches_of) fprintf(f, "launch:%s %llu\n", k.first.c_str(), k.second);
  fclose(f);
}
__attribute__((constructor)) static void stats_at_exit(void) { atexit(write_stats); }

[[noreturn]] static void die(const char *fmt, const char *a = "", long b = 0) {
  fprintf(stderr, "emu: ");
  fprintf(stderr, fmt, a, b);
  fprintf(stderr, "\n");
  exit(3);
}

/* --- fibers ------------------------------------------------------------- */

enum { F_READY, F_BLOCK, F_WARP, F_DONE };
struct fiber {
  ucontext_t ctx;
  int state;
  uint3 tid;
#if !defined(EMU_UCONTEXT)
  jmp_buf jb;  /* where it yielded, or parked after its body */
  int started; /* running fiber_main's loop, on its stack */
#endif
};
static ucontext_t sched_ctx;
static std::vector<fiber> fibers;
/* the fibers' stacks, kept for the next launch and freed at exit, unless
** exit was called on one of them (a die() inside a kernel) */
static int in_fibers; /* 1 while a block runs as fibers */
static struct stack_pool : std::vector<char *> {
  ~stack_pool() {
    if (in_fibers) return;
    for (char *s : *this) free(s);
  }
} stacks;
static const size_t STACK = 128 * 1024;
static int cur; /* the running fiber */
static const std::function<void()> *cur_body;
static double warp_vals[32][32]; /* [warp][lane] for the shuffles */

/* Switching: a fiber starts on its own stack through swapcontext, and
** from then on the switches are _setjmp/_longjmp, which make no system
** call (swapcontext saves the signal mask with one, and a block of 256
** threads switches hundreds of thousands of times).  Under the sanitizers
** (EMU_UCONTEXT) every switch is a swapcontext, which they understand. */
#if !defined(EMU_UCONTEXT)
static jmp_buf sched_jb;
#endif

static void fiber_main(void) {
#if defined(EMU_UCONTEXT)
  (*cur_body)();
  fibers[cur].state = F_DONE;
  swapcontext(&fibers[cur].ctx, &sched_ctx);
#else
  /* a fiber that ends parks here, and runs the body of whatever block
  ** resumes it next: a fiber is started once per program, not per block */
  for (;;) {
    (*cur_body)();
    fibers[cur].state = F_DONE;
    if (!_setjmp(fibers[cur].jb)) _longjmp(sched_jb, 1);
  }
#endif
}

static void yield(int state) {
  fibers[cur].state = state;
#if defined(EMU_UCONTEXT)
  swapcontext(&fibers[cur].ctx, &sched_ctx);
#else
  if (!_setjmp(fibers[cur].jb)) _longjmp(sched_jb, 1);
#endif
}

/* runs fiber i until it yields or ends */
static void resume(unsigned i) {
#if defined(EMU_UCONTEXT)
  swapcontext(&sched_ctx, &fibers[i].ctx);
#else
  if (_setjmp(sched_jb)) return;
  if (!fibers[i].started) {
    fibers[i].started = 1;
    swapcontext(&sched_ctx, &fibers[i].ctx); /* does not come back here */
  }
  _longjmp(fibers[i].jb, 1);
#endif
}

static unsigned lin(const uint3 &t) {
  return t.x + t.y * blockDim.x + t.z * blockDim.x * blockDim.y;
}

void __syncthreads(void) {
  if (!in_fibers) die("__syncthreads in a kernel launch.lua did not mark%s", "");
  yield(F_BLOCK);
}

static double shfl(double v, unsigned delta) {
  if (!in_fibers) die("__shfl_down_sync in a kernel launch.lua did not mark%s", "");
  unsigned l = lin(fibers[cur].tid), w = l / 32, lane = l % 32;
  if (w >= 32) die("more than 32 warps%s", "");
  warp_vals[w][lane] = v;
  yield(F_WARP);
  double r = lane + delta < 32 ? warp_vals[w][lane + delta] : v;
  yield(F_WARP); /* everyone has read before the next shuffle writes */
  return r;
}
double __shfl_down_sync(unsigned, double v, unsigned d) { return shfl(v, d); }
float __shfl_down_sync(unsigned, float v, unsigned d) { return (float)shfl(v, d); }
int __shfl_down_sync(unsigned, int v, unsigned d) { return (int)shfl(v, d); }

/* EMU_NOEXEC=1: kernel launches and cuBLAS products are checked and
** counted but not run, so that a program's time is what the host spends
** around them (Lua, the core's checks, the backend's bookkeeping); its
** results are garbage.  Copies still run, and so do cudnn_emu.cpp's
** convolutions: a program to time this way has none (the seed model). */
static int env_on(const char *name) {
  const char *s = getenv(name);
  return s && *s == '1';
}

static int noexec(void) {
  static const int r = env_on("EMU_NOEXEC");
  return r;
}

/* EMU_STATS set: the counters are written at exit (write_stats) */
static int stats_on(void) {
  static const int r = getenv("EMU_STATS") != NULL;
  return r;
}

/* EMU_REVERSE=1: the blocks of a launch, and the threads of a block, run in
** reverse order */
static int reversed(void) {
  static const int r = env_on("EMU_REVERSE");
  return r;
}

static void run_block_fibers(const char *name, const std::function<void()> &body) {
  unsigned n = blockDim.x * blockDim.y * blockDim.z;
  const int reverse = reversed();
  if (fibers.size() < n) fibers.resize(n, fiber()); /* new ones not started */
  while (stacks.size() < n) stacks.push_back((char *)malloc(STACK));
  cur_body = &body;
  in_fibers = 1;
  for (unsigned i = 0; i < n; i++) {
    fiber &f = fibers[i];
    f.tid = uint3(i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y));
    f.state = F_READY;
#if !defined(EMU_UCONTEXT)
    if (f.started) continue; /* parked in fiber_main's loop */
#endif
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = stacks[i];
    f.ctx.uc_stack.ss_size = STACK;
    f.ctx.uc_link = NULL;
    makecontext(&f.ctx, fiber_main, 0);
  }
  for (;;) {
    int ran = 0;
    for (unsigned k = 0; k < n; k++) {
      unsigned i = reverse ? n - 1 - k : k;
      if (fibers[i].state != F_READY) continue;
      cur = (int)i;
      threadIdx = fibers[i].tid;
      resume(i);
      ran = 1;
    }
    /* release the barriers whose threads have all arrived */
    int live = 0, at_block = 0;
    for (unsigned i = 0; i < n; i++) {
      if (fibers[i].state != F_DONE) live++;
      if (fibers[i].state == F_BLOCK) at_block++;
    }
    if (live == 0) break;
    int released = 0;
    if (at_block == live) {
      for (unsigned i = 0; i < n; i++)
        if (fibers[i].state == F_BLOCK) fibers[i].state = F_READY;
      released = 1;
    }
    for (unsigned w = 0; w * 32 < n; w++) {
      int wl = 0, ww = 0;
      for (unsigned i = w * 32; i < n && i < w * 32 + 32; i++) {
        if (fibers[i].state != F_DONE) wl++;
        if (fibers[i].state == F_WARP) ww++;
      }
      if (wl > 0 && ww == wl) {
        for (unsigned i = w * 32; i < n && i < w * 32 + 32; i++) fibers[i].state = F_READY;
        released = 1;
      }
    }
    if (!released && !ran) die("%s: deadlock: threads wait at different barriers", name);
  }
  in_fibers = 0;
}

void emu_launch(int barriers, const char *name, dim3 grid, dim3 block,
                const std::function<void()> &body) {
  unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || threads == 0 || threads > 1024 ||
      grid.y > 65535 || grid.z > 65535 || block.z > 64) {
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  count.launches++;
  if (stats_on()) {
    if (!launches_of) launches_of = new std::map<std::string, unsigned long long>;
    (*launches_of)[name]++;
  }
  if (sticky != cudaSuccess) return;
  if (fault_at() >= 0 && (long long)count.launches > fault_at()) {
    sticky = cudaErrorIllegalAddress;
    sticky_hidden = 1;
    return;
  }
  if (noexec()) return;
  gridDim = grid;
  blockDim = block;
  /* blocks one after another, the last first under EMU_REVERSE=1: a block
  ** that reads what another block of the launch writes gets another answer */
  const unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
  const int reverse = reversed();
  for (unsigned long long k = 0; k < nblocks; k++) {
    const unsigned long long b = reverse ? nblocks - 1 - k : k;
    blockIdx = uint3((unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y),
                     (unsigned)(b / ((unsigned long long)grid.x * grid.y)));
    if (barriers) {
      run_block_fibers(name, body);
      continue;
    }
    for (unsigned k2 = 0; k2 < threads; k2++) {
      const unsigned i = reverse ? (unsigned)threads - 1 - k2 : k2;
      threadIdx = uint3(i % block.x, (i / block.x) % block.y, i / (block.x * block.y));
      body();
    }
  }
}

/* --- memory ------------------------------------------------------------- */

struct alloc_info {
  size_t bytes;
  int device; /* 1 device, 0 pinned host */
};
static std::map<const char *, alloc_info> allocs;

static const alloc_info *find(const void *p, const char **base) {
  auto it = allocs.upper_bound((const char *)p);
  if (it == allocs.begin()) return NULL;
  --it;
  if ((const char *)p >= it->first + it->second.bytes && it->second.bytes > 0) return NULL;
  *base = it->first;
  return &it->second;
}

int emu_is_device(const void *p, size_t bytes) {
  const char *base;
  const alloc_info *a = find(p, &base);
  return a && a->device && (const char *)p + bytes <= base + a->bytes;
}

static size_t device_bytes;
static const size_t DEVICE_TOTAL = (size_t)80 << 30;

cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int *v) { *v = CUDART_VERSION; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : fail(cudaErrorInvalidValue); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "host emulator (tests/emu)");
  p->major = 9;
  p->multiProcessorCount = 132;
  return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
  if (sticky != cudaSuccess && !sticky_hidden) return sticky;
  sticky_hidden = 0;
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  return e;
}
const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchTimeout: return "cudaErrorLaunchTimeout";
    case cudaErrorAssert: return "cudaErrorAssert";
    case cudaErrorHardwareStackError: return "cudaErrorHardwareStackError";
    case cudaErrorIllegalInstruction: return "cudaErrorIllegalInstruction";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorInvalidAddressSpace: return "cudaErrorInvalidAddressSpace";
    case cudaErrorInvalidPc: return "cudaErrorInvalidPc";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}
const char *cudaGetErrorString(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "out of memory" : cudaGetErrorName(e);
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
  *p = NULL;
  if (bytes > DEVICE_TOTAL - device_bytes) return fail(cudaErrorMemoryAllocation);
  char *m = (char *)malloc(bytes ? bytes : 1);
  if (!m) return fail(cudaErrorMemoryAllocation);
  memset(m, 0xA5, bytes); /* not zero: uninitialised reads show */
  count.malloc++;
  allocs[m] = alloc_info{bytes, 1};
  device_bytes += bytes;
  *p = m;
  return cudaSuccess;
}

static cudaError_t release(void *p, int device) {
  if (p == NULL) return cudaSuccess;
  auto it = allocs.find((const char *)p);
  if (it == allocs.end() || it->second.device != device) return fail(cudaErrorInvalidValue);
  if (device) device_bytes -= it->second.bytes;
  if (device) count.free++; else count.free_host++;
  allocs.erase(it);
  free(p);
  return cudaSuccess;
}
cudaError_t cudaFree(void *p) { return release(p, 1); }
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned) {
  char *m = (char *)malloc(bytes ? bytes : 1);
  if (!m) return fail(cudaErrorMemoryAllocation);
  count.host_alloc++;
  allocs[m] = alloc_info{bytes, 0};
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) { return release(p, 0); }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) {
  *f = DEVICE_TOTAL - device_bytes;
  *t = DEVICE_TOTAL;
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t) {
  if (sticky != cudaSuccess) return sticky;
  if (bytes == 0) return cudaSuccess;
  int dd = emu_is_device(dst, bytes), sd = emu_is_device(src, bytes);
  int want_dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  int want_sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dd != want_dd || sd != want_sd) {
    fprintf(stderr, "emu: cudaMemcpyAsync of %zu bytes, kind %d: destination %s, source %s\n",
            bytes, (int)kind, dd ? "device" : "not device", sd ? "device" : "not device");
    return fail(cudaErrorInvalidMemcpyDirection);
  }
  if (kind == cudaMemcpyHostToDevice) count.copy_h2d++;
  if (kind == cudaMemcpyDeviceToDevice) count.copy_d2d++;
  if (kind == cudaMemcpyDeviceToHost) {
    count.copy_d2h++;
    count.copy_d2h_bytes += bytes;
  }
  memmove(dst, src, bytes);
  return cudaSuccess;
}

/* --- streams and events: work is done at once, but an event says so only
** once something waited for it (a stream or the event itself) ------------ */
struct emu_stream { int x; };
struct emu_event {
  int recorded, waited;
};
static std::vector<emu_event *> events;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
  *s = new emu_stream();
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete s; return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  count.stream_sync++;
  if (sticky != cudaSuccess) return sticky;
  for (emu_event *e : events) e->waited = 1;
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
  *e = new emu_event{0, 0};
  events.push_back(*e);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  for (size_t i = 0; i < events.size(); i++)
    if (events[i] == e) {
      events.erase(events.begin() + (long)i);
      delete e;
      return cudaSuccess;
    }
  return fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->recorded = 1;
  e->waited = 0;
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  count.event_query++;
  return !e->recorded || e->waited ? cudaSuccess : fail(cudaErrorNotReady);
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  count.event_sync++;
  if (sticky != cudaSuccess) return sticky;
  e->waited = 1;
  return cudaSuccess;
}

/* --- cuBLAS ------------------------------------------------------------- */
struct emu_blas { cublasMath_t math; };
cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value) {
  *value = type == MAJOR_VERSION ? CUBLAS_VER_MAJOR : 0;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasCreate(cublasHandle_t *h) {
  *h = new emu_blas{CUBLAS_DEFAULT_MATH};
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *ws, size_t bytes) {
  return emu_is_device(ws, bytes) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
  h->math = m;
  return CUBLAS_STATUS_SUCCESS;
}

/* a column-major operand of 'rows' x 'cols' with leading dimension ld */
static int operand_ok(const char *what, const float *p, int rows, int cols, int ld) {
  size_t span = rows == 0 || cols == 0 ? 0 : ((size_t)ld * (cols - 1) + rows) * sizeof(float);
  if (span == 0 || emu_is_device(p, span)) return 1;
  fprintf(stderr, "emu: cublasSgemm: %s (%d x %d, ld %d, %zu bytes) is not inside one "
          "device allocation\n", what, rows, cols, ld, span);
  return 0;
}

cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                           int m, int n, int k, const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C, int ldc) {
  int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  if (m < 0 || n < 0 || k < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
      ldc < (m > 1 ? m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  count.gemms++;
  if (sticky != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  if (!operand_ok("A", A, ar, ac, lda) || !operand_ok("B", B, br, bc, ldb) ||
      !operand_ok("C", C, m, n, ldc))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  if (noexec()) return CUBLAS_STATUS_SUCCESS;
  cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
              tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, *alpha, A, lda, B, ldb,
              *beta, C, ldc);
  return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}
const char *cublasGetStatusString(cublasStatus_t s) { return cublasGetStatusName(s); }
