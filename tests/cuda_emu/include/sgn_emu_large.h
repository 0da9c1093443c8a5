/* sgn_emu_large.h — the emulator's large-index mode as a test sees it (tests/cuda_emu/README.md):
 * SGN_EMU_LARGE=1 (or =SEED) makes kernels run a sample of their blocks and the large library
 * calls a sample of their output columns; a test may pick the blocks and columns itself and
 * reads back which ran. C, for the test suites, which find these functions in the emulated
 * plugin with dlsym (the plugin is loaded RTLD_LOCAL); the runtime defines them. */
#ifndef SGN_EMU_LARGE_H
#define SGN_EMU_LARGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decides whether index (a block of a kernel's grid, linear: x + gx (y + gy z); or an output
 * column / entry of a library call) of count runs: 1 runs it, 0 leaves it out, -1 leaves it to
 * the default sample. op is the kernel's name or the call's ("cublasGemmEx_64"); args are a
 * kernel's arguments in order (integers and enums as their values, pointers as their addresses,
 * others 0) or a library call's (README: its integer arguments, then each operand's offset in
 * elements from the start of its allocation). Called in queue order, when the op runs. */
typedef int (*sgn_emu_pick_fn)(const char *op, const int64_t *args, int nargs, uint64_t count,
                               uint64_t index, void *ctx);

/* One op that ran in large-index mode. Valid until sgn_emu_large_log_clear. */
typedef struct sgn_emu_ran {
  const char *op;
  const int64_t *args;
  int nargs;
  uint64_t count;      /* blocks of the grid, or output columns / entries of the call */
  uint64_t nran;       /* how many of them ran (computed) */
  const uint64_t *ran; /* which, ascending; NULL when all of them ran */
} sgn_emu_ran;

/* 1 in large-index mode, else 0 */
int sgn_emu_large_mode(void);
/* Installs fn (NULL: none) for every later op. */
void sgn_emu_large_pick(sgn_emu_pick_fn fn, void *ctx);
/* The number of ops logged since the last clear; fills *out with the i-th when i is below it. */
size_t sgn_emu_large_log(size_t i, sgn_emu_ran *out);
void sgn_emu_large_log_clear(void);

#ifdef __cplusplus
}
#endif

#endif
