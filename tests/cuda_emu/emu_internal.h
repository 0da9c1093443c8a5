/* emu_internal.h — what the emulator's runtime (emu_runtime.cpp) lends its libraries
 * (emu_libs.cpp): errors that name their kind, device memory lookups, stream queues, and the
 * samples of large-index mode. */
#ifndef SGN_EMU_INTERNAL_H
#define SGN_EMU_INTERNAL_H

#include <functional>
#include <vector>

#include "cuda_runtime.h"
#include "sgn_emu_large.h"

namespace sgn_emu {

/* Error kinds, as printed ("cuda-emu: ERROR [kind] ...") and matched by the self-test. */
#define EMU_OOB "out-of-bounds"
#define EMU_HOST_ACCESS "host access to device memory"
#define EMU_NOSYNC "host read without sync"
#define EMU_BADARG "bad library argument"
#define EMU_MASK "warp collective mask mismatch"
#define EMU_UNINIT "uninitialized read"
#define EMU_BARRIER "barrier divergence"
#define EMU_API "bad runtime call"
#define EMU_CAPTURE "unsafe call during stream capture"
#define EMU_LAUNCH "bad launch configuration"

/* Prints the error with what was running, then aborts the process. */
[[noreturn]] void fail(const char *kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The live device allocation holding [p, p + bytes), or a fail(EMU_BADARG) naming call and arg
 * (bytes 0: p may be one past the end). */
void check_device_range(const char *call, const char *arg, const void *p, size_t bytes);
bool is_device(const void *p);
/* Device memory poison (fresh allocations, shared memory) and work-area scribbles. */
void poison(void *p, size_t bytes);

/* Queues fn on st (nullptr: the legacy default stream); it runs at the next synchronization
 * point, with device memory open, what naming it in errors. */
void enqueue(cudaStream_t st, const char *what, std::function<void()> fn);
/* Whether st records (cudaStreamBeginCapture) instead of queueing. */
bool capturing(cudaStream_t st);
/* Bytes from the start of the live allocation holding p (0 when there is none). */
size_t device_offset(const void *p);

/* ---- large-index mode (SGN_EMU_LARGE) ---- */

bool large_mode(void);
/* The indices of count (output columns or entries) an op computes: all, or idx ascending. */
struct picks {
  bool all;
  std::vector<uint64_t> idx;
};
/* What the test's pick function says for each index, the rest from the default sample (whole:
 * every index instead, for calls small enough to run whole). Called when the op runs. */
picks large_pick(const char *op, const int64_t *args, int nargs, uint64_t count, bool whole);
/* Logs the op for sgn_emu_large_log. */
void large_log(const char *op, const int64_t *args, int nargs, uint64_t count, const picks &p);

} /* namespace sgn_emu */

#endif
