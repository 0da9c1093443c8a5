/* emu_runtime.cpp — the CUDA runtime and kernel model of the emulator (tests/cuda_emu/README.md).
 * Kernels: each CUDA thread a fiber on its own stack; blocks run one at a time; the lanes of a
 * warp run one after the other up to their next collective, which is then checked (the mask must
 * be exactly the lanes that arrived) and computed; __syncthreads releases when every thread of the
 * block waits at the same barrier. Blocks, warps and lanes go in the order of SGN_EMU_ORDER.
 * Memory: device allocations live in one reserved arena, each between PROT_NONE guard pages and
 * padded with a guard pattern checked after every queued operation; fresh memory and shared
 * memory hold a NaN poison; the arena is inaccessible except while queued work runs. Streams are
 * queues that run only at synchronization points. Large-index mode (SGN_EMU_LARGE): big
 * allocations are reserved lazily, poisoned by a shared copy-on-write mapping and fenced by wide
 * PROT_NONE gaps; kernels run a sample of their blocks, logged for the tests. */
#include "emu_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <string>
#include <map>
#include <set>
#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

/* the static shared memory of every kernel (the __shared__ macro's section) */
extern "C" char __start_sgn_emu_shared[] __attribute__((weak));
extern "C" char __stop_sgn_emu_shared[] __attribute__((weak));

namespace sgn_emu {

static const size_t PAGE = 4096;
static const uint32_t POISON_WORD = 0x7FF4DEADu; /* NaN as float, and paired as double */
/* a signaling NaN as float: an out-of-bounds read shows, and float arithmetic on it changes its
 * bits (quiets it), so even x[len] += 1 is seen */
static const uint32_t GUARD_WORD = 0x7FA5A5A5u;
/* Allocations end at a PROT_NONE page, their size rounded up to cudaMalloc's alignment: an
 * overrun past the rounding faults at once in the kernel and thread that makes it, one within it
 * changes the guard pattern, checked after every queued operation. */
static const size_t ALIGN = 256;

/* ---- errors ---- */

static char g_what[512]; /* the queued operation running, "" on the host */

struct fiber;
static fiber *g_cur;        /* the running fiber, or NULL */
static const char *g_kname; /* the running kernel */

static void context(char *buf, size_t len);

void fail(const char *kind, const char *fmt, ...) {
  char msg[2048], ctx[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  context(ctx, sizeof ctx);
  fprintf(stderr, "cuda-emu: ERROR [%s]: %s\n  while: %s\n", kind, msg, ctx);
  fflush(stderr);
  signal(SIGABRT, SIG_DFL);
  abort();
}

/* ---- scheduling order ---- */

enum order_kind { ORDER_FWD, ORDER_REV, ORDER_RAND };
static order_kind g_order = ORDER_FWD;
static uint64_t g_seed = 1, g_launches;
static bool g_order_read;

extern "C" int sgn_emu_set_order(const char *s) {
  g_order_read = true;
  if (!s || !*s || !strcmp(s, "fwd")) g_order = ORDER_FWD;
  else if (!strcmp(s, "rev")) g_order = ORDER_REV;
  else if (!strncmp(s, "rand", 4)) {
    g_order = ORDER_RAND;
    g_seed = s[4] == ':' ? strtoull(s + 5, NULL, 10) : 1;
  } else return -1;
  return 0;
}

static void read_order(void) {
  if (g_order_read) return;
  const char *s = getenv("SGN_EMU_ORDER");
  if (sgn_emu_set_order(s) != 0) {
    fprintf(stderr, "cuda-emu: SGN_EMU_ORDER=%s: want fwd, rev or rand:SEED\n", s);
    exit(2);
  }
}

static uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* perm <- 0 .. n-1 in the order's sequence; salt varies the random order per use */
static void make_order(std::vector<uint32_t> &perm, uint32_t n, uint64_t salt) {
  perm.resize(n);
  for (uint32_t i = 0; i < n; i++) perm[i] = g_order == ORDER_REV ? n - 1 - i : i;
  if (g_order == ORDER_RAND)
    for (uint32_t i = n; i > 1; i--) {
      const uint32_t j = (uint32_t)(mix(g_seed ^ mix(salt + i)) % i);
      std::swap(perm[i - 1], perm[j]);
    }
}

/* ---- large-index mode: the samples and their log ---- */

static bool g_large, g_large_read;
static uint64_t g_large_seed = 1;
static const int LARGE_RANDOM_PICKS = 2; /* a default sample's seeded picks (with both ends) */
static sgn_emu_pick_fn g_pick;
static void *g_pick_ctx;

struct ran_rec {
  std::string op;
  std::vector<int64_t> args;
  uint64_t count;
  picks p;
};
static std::deque<ran_rec> g_log; /* a deque: records stay where they are as it grows */

static void read_large(void) {
  if (g_large_read) return;
  g_large_read = true;
  const char *s = getenv("SGN_EMU_LARGE");
  if (s && *s && strcmp(s, "0") != 0) {
    char *end = NULL;
    const unsigned long long v = strtoull(s, &end, 10);
    if (!end || *end || v == 0) {
      fprintf(stderr, "cuda-emu: SGN_EMU_LARGE=%s: want 0, 1 or a positive seed\n", s);
      exit(2);
    }
    g_large = true, g_large_seed = v;
  }
}

bool large_mode(void) {
  read_large();
  return g_large;
}

/* The default sample of an extent of count: its first and last index and LARGE_RANDOM_PICKS
 * seeded ones, a function of count and the seed only, so two ops over one extent (a GEMM's output
 * columns and the row kernel that reads them) pick the same indices. Ascending, no repeats. */
static std::vector<uint64_t> default_sample(uint64_t count) {
  std::vector<uint64_t> v;
  if (!count) return v;
  v.push_back(0);
  v.push_back(count - 1);
  for (int r = 0; r < LARGE_RANDOM_PICKS; r++)
    v.push_back(mix(g_large_seed ^ mix(count * 0x9E3779B97F4A7C15ull + (uint64_t)r)) % count);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

picks large_pick(const char *op, const int64_t *args, int nargs, uint64_t count, bool whole) {
  picks p;
  p.all = true;
  if (!g_pick) {
    if (!whole) p.idx = default_sample(count), p.all = p.idx.size() == count;
    if (p.all) p.idx.clear();
    return p;
  }
  const std::vector<uint64_t> def = whole ? std::vector<uint64_t>() : default_sample(count);
  size_t di = 0;
  for (uint64_t i = 0; i < count; i++) {
    int d = g_pick ? g_pick(op, args, nargs, count, i, g_pick_ctx) : -1;
    if (d < 0) {
      while (di < def.size() && def[di] < i) di++;
      d = whole || (di < def.size() && def[di] == i);
    }
    if (d) p.idx.push_back(i);
    else p.all = false;
  }
  if (p.all) p.idx.clear();
  return p;
}

void large_log(const char *op, const int64_t *args, int nargs, uint64_t count, const picks &p) {
  g_log.push_back(ran_rec{op, std::vector<int64_t>(args, args + nargs), count, p});
}

/* ---- device memory ---- */

struct alloc {
  uintptr_t lo, hi;   /* the data pages (guard pages lie just outside) */
  uintptr_t base;     /* what cudaMalloc returned: base + round_up(size, ALIGN) == hi */
  size_t size;
  uint64_t id;
  bool lazy;          /* large-index mode: reserved lazily, poison mapped copy-on-write */
};

static char *g_arena;
/* reserved, never committed as a whole; in large-index mode wide enough for the gaps */
static size_t g_arena_bytes = (size_t)1 << 38;
/* Large-index mode: allocations of at least LAZY_MIN bytes are lazy, and sit between PROT_NONE
 * gaps of LAZY_GAP bytes: an int index that wraps negative past 2^31 elements of up to 8 bytes
 * lands in the gap before, an overrun of up to LAZY_GAP bytes in the one after. */
static const size_t LAZY_MIN = (size_t)64 << 20;
static const size_t LAZY_GAP = (size_t)32 << 30;
/* the poison of lazy allocations: a file of POISON_FILE bytes of it, mapped copy-on-write over
 * their pages one piece after the other (pages never written cost no memory) */
static const size_t POISON_FILE = (size_t)32 << 20;
static int g_poison_fd = -1;
static size_t g_bump;                        /* bytes of the arena handed out */
static std::map<uintptr_t, alloc> g_live;    /* by base */
static std::map<uintptr_t, alloc> g_freed;   /* by base, for use-after-free messages */
static size_t g_used, g_limit;
static uint64_t g_next_id = 1;
static bool g_open; /* device memory accessible (queued work running) */
static uint8_t g_guard_pat[2 * PAGE], g_poison_pat[2 * PAGE];

static void fill_pat(uint8_t *pat, uint32_t word) {
  for (size_t i = 0; i < 2 * PAGE; i += 4) memcpy(pat + i, &word, 4);
}

/* [p, p + bytes) <- the pattern aligned on absolute addresses */
static void pat_fill(const uint8_t *pat, void *p, size_t bytes) {
  uint8_t *d = (uint8_t *)p;
  while (bytes) {
    const size_t off = (uintptr_t)d & (PAGE - 1), n = std::min(bytes, PAGE);
    memcpy(d, pat + off, n);
    d += n, bytes -= n;
  }
}

/* offset of the first byte of [p, p + bytes) that is not the pattern, or bytes */
static size_t pat_check(const uint8_t *pat, const void *p, size_t bytes) {
  const uint8_t *d = (const uint8_t *)p;
  for (size_t done = 0; done < bytes;) {
    const size_t off = (uintptr_t)(d + done) & (PAGE - 1), n = std::min(bytes - done, PAGE);
    if (memcmp(d + done, pat + off, n) != 0)
      for (size_t i = 0; i < n; i++)
        if (d[done + i] != pat[off + i]) return done + i;
    done += n;
  }
  return bytes;
}

void poison(void *p, size_t bytes) { pat_fill(g_poison_pat, p, bytes); }

static void protect(const alloc &a, int prot) {
  if (mprotect((void *)a.lo, a.hi - a.lo, prot) != 0) {
    perror("cuda-emu: mprotect");
    abort();
  }
}

/* [lo, lo + len) (page-aligned) <- the poison file mapped copy-on-write, read-write: pages read
 * before they are written show the poison and cost nothing, a write copies its page */
static void map_poison(uintptr_t lo, size_t len) {
  if (g_poison_fd < 0) {
    g_poison_fd = memfd_create("cuda-emu-poison", MFD_CLOEXEC);
    if (g_poison_fd < 0 || ftruncate(g_poison_fd, (off_t)POISON_FILE) != 0)
      perror("cuda-emu: the poison file"), abort();
    void *m = mmap(NULL, POISON_FILE, PROT_READ | PROT_WRITE, MAP_SHARED, g_poison_fd, 0);
    if (m == MAP_FAILED) perror("cuda-emu: the poison file"), abort();
    pat_fill(g_poison_pat, m, POISON_FILE);
    munmap(m, POISON_FILE);
  }
  for (size_t off = 0; off < len; off += POISON_FILE)
    if (mmap((void *)(lo + off), std::min(POISON_FILE, len - off), PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, g_poison_fd, 0) == MAP_FAILED)
      perror("cuda-emu: mapping a lazy allocation"), abort();
}

/* memset(p, 0, bytes) inside a lazy allocation, while device memory is open: the whole pages
 * become fresh zero pages (nothing committed), the ends are written */
static void zero_lazily(void *p, size_t bytes) {
  const uintptr_t u = (uintptr_t)p, lo = (u + PAGE - 1) & ~(PAGE - 1),
                  hi = (u + bytes) & ~(PAGE - 1);
  if (hi <= lo) {
    memset(p, 0, bytes);
    return;
  }
  memset(p, 0, lo - u);
  if (mmap((void *)lo, hi - lo, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
    perror("cuda-emu: zeroing a lazy allocation"), abort();
  memset((void *)hi, 0, u + bytes - hi);
}

/* Device memory opens while queued work runs. Lazy allocations stay open: changing their
 * protection walks their page tables, and a column of an (N, N) matrix touches one page per row,
 * so at every synchronization that would cost milliseconds. */
static void set_open(bool open) {
  if (open == g_open) return;
  for (auto &kv : g_live)
    if (!kv.second.lazy) protect(kv.second, open ? PROT_READ | PROT_WRITE : PROT_NONE);
  g_open = open;
}

static const alloc *find_live(uintptr_t p, bool one_past) {
  auto it = g_live.upper_bound(p);
  if (it == g_live.begin()) return nullptr;
  --it;
  const alloc &a = it->second;
  if (p < a.base + a.size || (one_past && p == a.base + a.size)) return &a;
  return nullptr;
}

size_t device_offset(const void *p) {
  const alloc *a = find_live((uintptr_t)p, true);
  return a ? (size_t)((uintptr_t)p - a->base) : 0;
}

bool is_device(const void *p) {
  return g_arena && (uintptr_t)p >= (uintptr_t)g_arena &&
         (uintptr_t)p < (uintptr_t)g_arena + g_arena_bytes;
}

/* the allocation (live or freed) whose pages or guard pages hold p, and whether it is live */
static const alloc *nearest(uintptr_t p, bool *live) {
  const alloc *best = nullptr;
  uintptr_t dist = UINTPTR_MAX;
  for (auto *m : {&g_live, &g_freed}) {
    auto it = m->upper_bound(p);
    for (int k = 0; k < 2; k++) {
      if (k == 0 && it == m->end()) continue;
      if (k == 1) {
        if (it == m->begin()) break;
        --it;
      }
      const alloc &a = it->second;
      const uintptr_t d = p < a.base ? a.base - p : p >= a.base + a.size ? p - (a.base + a.size) + 1 : 0;
      if (d < dist) dist = d, best = &a, *live = m == &g_live;
      if (k == 0 && it == m->begin()) break;
    }
  }
  return best;
}

static void describe_addr(uintptr_t p, char *buf, size_t len) {
  bool live = false;
  const alloc *a = nearest(p, &live);
  if (!a) {
    snprintf(buf, len, "%#lx is in no allocation", (unsigned long)p);
  } else if (p >= a->base && p < a->base + a->size) {
    snprintf(buf, len, "%#lx is byte %zu of %s allocation #%lu (%zu bytes)", (unsigned long)p,
             (size_t)(p - a->base), live ? "live" : "FREED", (unsigned long)a->id, a->size);
  } else if (p < a->base) {
    snprintf(buf, len, "%#lx is %zu bytes before %s allocation #%lu (%zu bytes)",
             (unsigned long)p, (size_t)(a->base - p), live ? "live" : "freed",
             (unsigned long)a->id, a->size);
  } else {
    snprintf(buf, len, "%#lx is %zu bytes past the end of %s allocation #%lu (%zu bytes)",
             (unsigned long)p, (size_t)(p - (a->base + a->size)), live ? "live" : "freed",
             (unsigned long)a->id, a->size);
  }
}

void check_device_range(const char *call, const char *arg, const void *p, size_t bytes) {
  const uintptr_t u = (uintptr_t)p;
  if (!p) fail(EMU_BADARG, "%s: %s is NULL", call, arg);
  if (!is_device(p)) fail(EMU_BADARG, "%s: %s = %p is not device memory", call, arg, p);
  const alloc *a = find_live(u, bytes == 0);
  char where[256];
  if (!a) {
    describe_addr(u, where, sizeof where);
    fail(EMU_BADARG, "%s: %s: %s", call, arg, where);
  }
  if (bytes > a->base + a->size - u)
    fail(EMU_BADARG,
         "%s: %s spans %zu bytes from byte %zu of allocation #%lu (%zu bytes): %zu bytes past "
         "its end",
         call, arg, bytes, (size_t)(u - a->base), (unsigned long)a->id, a->size,
         (size_t)(bytes - (a->base + a->size - u)));
}

/* Every live allocation's guard padding still holds the pattern (after each queued op). */
static void check_guards(void) {
  for (auto &kv : g_live) {
    const alloc &a = kv.second;
    size_t at = pat_check(g_guard_pat, (void *)a.lo, a.base - a.lo);
    if (at < a.base - a.lo)
      fail(EMU_OOB, "a write changed the guard byte %zu bytes before the start of device "
           "allocation #%lu (%zu bytes)", (size_t)(a.base - a.lo - at), (unsigned long)a.id, a.size);
    const uintptr_t end = a.base + a.size;
    at = pat_check(g_guard_pat, (void *)end, a.hi - end);
    if (at < a.hi - end)
      fail(EMU_OOB, "a write changed the guard byte at offset %zu past the end of device "
           "allocation #%lu (%zu bytes)", at, (unsigned long)a.id, a.size);
  }
}

/* ---- pinned host memory: readable by the host, but not while a queued copy writes it ---- */

struct pinned {
  uintptr_t lo, hi;
};
static std::map<uintptr_t, pinned> g_pinned;            /* by lo */
static std::map<uintptr_t, std::pair<int, int>> g_pend; /* page -> (copies writing, reading) */
static std::vector<std::pair<uintptr_t, uintptr_t>> g_pend_w; /* ranges queued D2H copies write */

static bool is_pinned(const void *p) {
  auto it = g_pinned.upper_bound((uintptr_t)p);
  if (it == g_pinned.begin()) return false;
  --it;
  return (uintptr_t)p < it->second.hi;
}

static void page_prot(uintptr_t page) {
  const auto &c = g_pend[page];
  const int prot = c.first ? PROT_NONE : c.second ? PROT_READ : PROT_READ | PROT_WRITE;
  if (mprotect((void *)page, PAGE, prot) != 0) perror("cuda-emu: mprotect pinned");
  if (!c.first && !c.second) g_pend.erase(page);
}

/* a queued copy will write (w) or read [p, p + bytes) of pinned memory: the host may not touch
 * (w) or write it until the stream synchronizes */
static void pend(const void *p, size_t bytes, bool w, int delta) {
  if (!bytes) return;
  const uintptr_t first = (uintptr_t)p & ~(PAGE - 1), last = ((uintptr_t)p + bytes - 1) & ~(PAGE - 1);
  for (uintptr_t pg = first; pg <= last; pg += PAGE) {
    auto &c = g_pend[pg];
    (w ? c.first : c.second) += delta;
    page_prot(pg);
  }
  if (w && delta > 0) g_pend_w.push_back({(uintptr_t)p, (uintptr_t)p + bytes});
  if (w && delta < 0)
    for (size_t i = 0; i < g_pend_w.size(); i++)
      if (g_pend_w[i].first == (uintptr_t)p && g_pend_w[i].second == (uintptr_t)p + bytes) {
        g_pend_w.erase(g_pend_w.begin() + (long)i);
        break;
      }
}

/* ---- fibers ---- */

enum fstate { F_READY, F_WARP, F_BAR, F_DONE };

struct fiber {
  void *sp;
  fstate state;
  uint3 tid;
  /* at a warp collective */
  coll_kind kind;
  unsigned mask;
  uint64_t val, res;
  int arg, width;
  const char *what, *file;
  int line;
};

extern "C" void sgn_emu_ctx_switch(void **save, void *to);
#if defined(__x86_64__)
/* Saves the callee-saved registers on the current stack, stores the stack pointer in *save and
 * resumes the context whose stack pointer is to. (MXCSR and the x87 control word are shared:
 * kernels do not change rounding modes.) */
asm(R"(
  .pushsection .text
  .globl sgn_emu_ctx_switch
  .hidden sgn_emu_ctx_switch
  .type sgn_emu_ctx_switch, @function
sgn_emu_ctx_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size sgn_emu_ctx_switch, .-sgn_emu_ctx_switch
  .popsection
)");
#else
#error "cuda-emu: the fiber switch is written for x86-64"
#endif

static const size_t STACK = 128 * 1024; /* per fiber, with a PROT_NONE page below */
static const int MAX_THREADS = 1024;
static char *g_stacks;
static std::vector<fiber> g_fibers;
static void *g_sched_sp;
static void (*g_body)(void *);
static void *g_body_args;

/* The lanes of a warp that run next, in order: each fiber that stops passes on directly to the
 * next one, the last back to the scheduler (one switch per lane and stop, not two). */
static fiber *g_chain[32];
static int g_chain_len, g_chain_pos;

static void pass_on(void) {
  fiber *me = g_cur;
  if (++g_chain_pos < g_chain_len) {
    fiber *next = g_chain[g_chain_pos];
    g_cur = next;
    threadIdx = next->tid;
    sgn_emu_ctx_switch(&me->sp, next->sp);
  } else {
    sgn_emu_ctx_switch(&me->sp, g_sched_sp);
  }
}

static void fiber_main(void) {
  g_body(g_body_args);
  g_cur->state = F_DONE;
  pass_on();
  abort(); /* a finished fiber is never resumed */
}

/* Stack tops are staggered within a page so that the hot frames of the fibers do not all fall
 * into the same cache sets. */
static void *stack_top(int t) {
  return g_stacks + (size_t)(t + 1) * (STACK + PAGE) - (size_t)(t * 208 % 4096 & ~15);
}

static void fiber_reset(fiber &f, int t) {
  uint64_t *sp = (uint64_t *)stack_top(t);
  *--sp = 0;                        /* fiber_main's return address slot (alignment) */
  *--sp = (uint64_t)&fiber_main;    /* where the first switch returns to */
  for (int r = 0; r < 6; r++) *--sp = 0;
  f.sp = sp;
  f.state = F_READY;
}

/* runs the chain's fibers, each up to its next stop */
static void run_chain(void) {
  g_chain_pos = 0;
  g_cur = g_chain[0];
  threadIdx = g_cur->tid;
  sgn_emu_ctx_switch(&g_sched_sp, g_cur->sp);
  g_cur = nullptr;
}

static void yield(void) { pass_on(); }

/* ---- the block scheduler ---- */

static const char *g_kfile;
static int g_kline;

static void context(char *buf, size_t len) {
  if (!g_what[0]) {
    snprintf(buf, len, "host code");
  } else if (g_cur) {
    snprintf(buf, len, "%s, block (%u,%u,%u) thread (%u,%u,%u) [warp %u lane %u]", g_what,
             blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z,
             (unsigned)(g_cur - g_fibers.data()) / 32, (unsigned)(g_cur - g_fibers.data()) % 32);
  } else if (g_kname) {
    snprintf(buf, len, "%s, block (%u,%u,%u)", g_what, blockIdx.x, blockIdx.y, blockIdx.z);
  } else {
    snprintf(buf, len, "%s", g_what);
  }
}

static const char *state_name(const fiber &f, char *buf, size_t len) {
  switch (f.state) {
  case F_DONE: return "exited";
  case F_BAR: snprintf(buf, len, "waits at __syncthreads (%s:%d)", f.file, f.line); return buf;
  case F_WARP:
    snprintf(buf, len, "waits at %s (%s:%d) with mask %#x", f.what, f.file, f.line, f.mask);
    return buf;
  default: return "running";
  }
}

uint64_t warp_collective(coll_kind kind, unsigned mask, uint64_t value, int arg, int width,
                         const char *what, const char *file, int line) {
  if (!g_cur) fail(EMU_API, "%s called outside a kernel (%s:%d)", what, file, line);
  fiber &f = *g_cur;
  if (width < 1 || width > 32 || (width & (width - 1)))
    fail(EMU_API, "%s (%s:%d): width %d is not a power of two <= 32", what, file, line, width);
  f.state = F_WARP, f.kind = kind, f.mask = mask, f.val = value, f.arg = arg, f.width = width;
  f.what = what, f.file = file, f.line = line;
  yield();
  return f.res;
}

void syncthreads(const char *file, int line) {
  if (!g_cur) fail(EMU_API, "__syncthreads called outside a kernel (%s:%d)", file, line);
  g_cur->state = F_BAR, g_cur->file = file, g_cur->line = line;
  yield();
}

/* Completes the collectives the lanes of warp w wait at; returns whether any completed. */
static bool resolve_warp(int w, int T) {
  const int l0 = 32 * w, nl = std::min(32, T - l0);
  bool any = false;
  for (int i = 0; i < nl; i++) {
    fiber &a = g_fibers[l0 + i];
    if (a.state != F_WARP) continue;
    /* the group of lanes waiting with the same mask */
    unsigned arrived = 0;
    for (int j = 0; j < nl; j++) {
      const fiber &b = g_fibers[l0 + j];
      if (b.state == F_WARP && b.mask == a.mask) arrived |= 1u << j;
    }
    if (arrived != a.mask) {
      char why[1024] = "", st[256];
      size_t used = 0;
      for (int j = 0; j < 32 && used < sizeof why - 200; j++) {
        const unsigned bit = 1u << j;
        if ((a.mask & bit) && !(arrived & bit))
          used += (size_t)snprintf(why + used, sizeof why - used, "; lane %d %s", j,
                                   j >= nl ? "does not exist (block too small)"
                                           : state_name(g_fibers[l0 + j], st, sizeof st));
        else if (!(a.mask & bit) && (arrived & bit))
          used += (size_t)snprintf(why + used, sizeof why - used, "; lane %d arrived but is not in the mask", j);
      }
      g_cur = &a;
      threadIdx = a.tid;
      fail(EMU_MASK, "%s (%s:%d) with mask %#010x, but the lanes that arrived are %#010x%s",
           a.what, a.file, a.line, a.mask, arrived, why);
    }
    for (int j = 0; j < nl; j++) {
      const fiber &b = g_fibers[l0 + j];
      if ((arrived >> j & 1) && b.kind != a.kind) {
        g_cur = &g_fibers[l0 + j];
        threadIdx = b.tid;
        fail(EMU_MASK, "lanes of mask %#x wait at different collectives: %s (%s:%d) and %s (%s:%d)",
             a.mask, a.what, a.file, a.line, b.what, b.file, b.line);
      }
    }
    uint64_t ballot = 0;
    for (int j = 0; j < nl; j++)
      if ((arrived >> j & 1) && g_fibers[l0 + j].val) ballot |= 1ull << j;
    for (int j = 0; j < nl; j++) {
      if (!(arrived >> j & 1)) continue;
      fiber &b = g_fibers[l0 + j];
      const int wd = b.width, seg = j & ~(wd - 1), in = j & (wd - 1);
      int src = j;
      switch (b.kind) {
      case COLL_SHFL: src = seg + (b.arg & (wd - 1)); break;
      case COLL_SHFL_UP: src = in >= b.arg ? j - b.arg : j; break;
      case COLL_SHFL_DOWN: src = in + b.arg < wd ? j + b.arg : j; break;
      case COLL_SHFL_XOR: src = (in ^ b.arg) < wd ? seg + (in ^ b.arg) : j; break;
      default: break;
      }
      if (b.kind == COLL_BALLOT) b.res = ballot;
      else if (b.kind == COLL_ANY) b.res = ballot != 0;
      else if (b.kind == COLL_ALL) b.res = ballot == arrived;
      else if (b.kind == COLL_SYNCWARP) b.res = 0;
      else {
        if (src < 0 || src >= 32 || !(arrived >> src & 1)) {
          g_cur = &b;
          threadIdx = b.tid;
          fail(EMU_MASK, "%s (%s:%d): lane %d reads lane %d, which is not in the mask %#x",
               b.what, b.file, b.line, j, src, b.mask);
        }
        b.res = g_fibers[l0 + src].val;
      }
    }
    for (int j = 0; j < nl; j++)
      if (arrived >> j & 1) g_fibers[l0 + j].state = F_READY;
    any = true;
  }
  return any;
}

/* ---- dynamic shared memory ---- */

static const size_t DYN_SMEM_MAX = 227 * 1024;    /* sm_90's opt-in limit per block */
static const size_t DYN_SMEM_DEFAULT = 48 * 1024; /* without cudaFuncSetAttribute */
static const size_t DYN_REGION = (DYN_SMEM_MAX + PAGE - 1) / PAGE * PAGE;
static std::map<const void *, size_t> g_smem_limit; /* kernels' raised limits */
static char *g_dyn;          /* DYN_REGION bytes, then a PROT_NONE page */
static size_t g_dyn_bytes;   /* the running launch's */

/* The running launch's bytes: 16-byte aligned, ending at the PROT_NONE page. */
static char *dyn_base(void) { return g_dyn + DYN_REGION - (g_dyn_bytes + 15) / 16 * 16; }

void *dynamic_shared(void) {
  if (!g_cur) fail(EMU_API, "dynamic shared memory used outside a kernel");
  return dyn_base();
}

/* A launch may ask for 48 KB, or up to the kernel's raised limit (at most 227 KB). */
static void check_dyn_smem(const launch_cfg &cfg) {
  const auto it = g_smem_limit.find(cfg.fn);
  const bool raised = it != g_smem_limit.end();
  const size_t limit = raised ? it->second : DYN_SMEM_DEFAULT;
  if (cfg.shmem > limit)
    fail(EMU_LAUNCH, "kernel %s (%s:%d): %zu bytes of dynamic shared memory, more than the %zu %s",
         cfg.name, cfg.file, cfg.line, cfg.shmem, limit,
         raised ? "its cudaFuncAttributeMaxDynamicSharedMemorySize allows"
                : "a kernel may take before cudaFuncSetAttribute(kernel, "
                  "cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) raises its limit");
}

static void run_block(int T, int W, std::vector<uint32_t> &worder, std::vector<uint32_t> &lorder,
                      uint64_t salt) {
  const uintptr_t sh0 = (uintptr_t)__start_sgn_emu_shared, sh1 = (uintptr_t)__stop_sgn_emu_shared;
  if (sh0 && sh1 > sh0) poison((void *)sh0, sh1 - sh0);
  if (g_dyn_bytes) poison(dyn_base(), g_dyn_bytes);
  for (int t = 0; t < T; t++) fiber_reset(g_fibers[t], t);
  for (int round = 0;; round++) {
    make_order(worder, (uint32_t)W, salt * 7919 + (uint64_t)round);
    bool progress = false;
    for (uint32_t wi = 0; wi < (uint32_t)W; wi++) {
      const int w = (int)worder[wi], l0 = 32 * w, nl = std::min(32, T - l0);
      for (int pass = 0;; pass++) {
        if (g_order == ORDER_RAND)
          make_order(lorder, (uint32_t)nl, salt * 104729 + (uint64_t)w * 31 + (uint64_t)pass);
        g_chain_len = 0;
        for (int li = 0; li < nl; li++) {
          const int lane = g_order == ORDER_FWD ? li : g_order == ORDER_REV ? nl - 1 - li : (int)lorder[li];
          fiber &f = g_fibers[l0 + lane];
          if (f.state == F_READY) g_chain[g_chain_len++] = &f;
        }
        if (!g_chain_len) break;
        run_chain();
        progress = true;
        resolve_warp(w, T);
      }
    }
    if (progress) continue;
    /* nothing runs: every thread has exited or waits at a barrier */
    int bar = 0, done = 0;
    const fiber *first = nullptr;
    for (int t = 0; t < T; t++) {
      const fiber &f = g_fibers[t];
      if (f.state == F_DONE) done++;
      else if (f.state == F_BAR) {
        bar++;
        if (!first) first = &f;
        else if (f.line != first->line || strcmp(f.file, first->file) != 0) {
          g_cur = (fiber *)&f;
          threadIdx = f.tid;
          fail(EMU_BARRIER, "threads of one block wait at different barriers: __syncthreads at %s:%d "
               "and at %s:%d", first->file, first->line, f.file, f.line);
        }
      } else {
        g_cur = (fiber *)&f;
        threadIdx = f.tid;
        char st[256];
        fail(EMU_MASK, "thread %u is stuck (%s)", f.tid.x, state_name(f, st, sizeof st));
      }
    }
    if (bar == 0) return;
    if (done > 0) {
      g_cur = (fiber *)first;
      threadIdx = first->tid;
      fail(EMU_BARRIER, "__syncthreads at %s:%d reached by %d of the block's %d threads; the other %d "
           "exited", first->file, first->line, bar, T, done);
    }
    for (int t = 0; t < T; t++) g_fibers[t].state = F_READY;
  }
}

static void run_kernel(const launch_cfg &cfg, void (*run)(void *), void *args,
                       const std::vector<int64_t> &vals) {
  const uint32_t gx = cfg.grid.x, gy = cfg.grid.y, gz = cfg.grid.z;
  const int T = (int)(cfg.block.x * cfg.block.y * cfg.block.z), W = (T + 31) / 32;
  const uint64_t nblocks = (uint64_t)gx * gy * gz;
  if (!g_stacks) {
    g_stacks = (char *)mmap(NULL, (size_t)(MAX_THREADS + 1) * (STACK + PAGE), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (g_stacks == MAP_FAILED) perror("cuda-emu: mmap stacks"), abort();
    for (int t = 0; t <= MAX_THREADS; t++)
      mprotect(g_stacks + (size_t)t * (STACK + PAGE), PAGE, PROT_NONE); /* below stack t */
    g_fibers.resize(MAX_THREADS);
  }
  if (!g_dyn) {
    g_dyn = (char *)mmap(NULL, DYN_REGION + PAGE, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (g_dyn == MAP_FAILED) perror("cuda-emu: mmap dynamic shared memory"), abort();
    mprotect(g_dyn + DYN_REGION, PAGE, PROT_NONE);
  }
  g_dyn_bytes = cfg.shmem;
  for (int t = 0; t < T; t++) {
    uint3 id;
    id.x = (unsigned)t % cfg.block.x;
    id.y = (unsigned)t / cfg.block.x % cfg.block.y;
    id.z = (unsigned)t / (cfg.block.x * cfg.block.y);
    g_fibers[t].tid = id;
  }
  blockDim = cfg.block;
  gridDim = cfg.grid;
  g_body = run, g_body_args = args;
  g_kname = cfg.name, g_kfile = cfg.file, g_kline = cfg.line;
  const uint64_t launch = ++g_launches;
  std::vector<uint32_t> border, worder, lorder;
  if (nblocks > 0xffffffffu) fail(EMU_API, "grid of %lu blocks", (unsigned long)nblocks);
  /* large-index mode: the sampled blocks, in the order's sequence */
  picks pk;
  pk.all = true;
  if (g_large) {
    pk = large_pick(cfg.name, vals.data(), (int)vals.size(), nblocks, false);
    large_log(cfg.name, vals.data(), (int)vals.size(), nblocks, pk);
  }
  const uint64_t nrun = pk.all ? nblocks : pk.idx.size();
  make_order(border, (uint32_t)nrun, launch);
  for (uint64_t bi = 0; bi < nrun; bi++) {
    const uint32_t b = pk.all ? border[bi] : (uint32_t)pk.idx[border[bi]];
    blockIdx.x = b % gx, blockIdx.y = b / gx % gy, blockIdx.z = b / (gx * gy);
    run_block(T, W, worder, lorder, launch * 1000003u + b);
  }
  g_kname = nullptr;
}

/* ---- streams ---- */

struct op {
  std::string what;
  std::function<void()> fn;
};

} /* namespace sgn_emu */

struct sgn_emu_stream {
  std::deque<sgn_emu::op> q;
  bool legacy;
  std::vector<sgn_emu::op> *rec = nullptr; /* while capturing: where its operations go */
};

/* a captured graph, and its instantiation (a copy) */
struct sgn_emu_graph {
  std::vector<sgn_emu::op> ops;
};

namespace sgn_emu {

static sgn_emu_stream g_legacy = {{}, true};
static std::vector<sgn_emu_stream *> g_streams; /* created, not destroyed */
static cudaError_t g_last = cudaSuccess;
static int g_depth; /* nested runs of queues */
static int g_capturing; /* streams capturing now */
static std::set<sgn_emu_graph *> g_graphs, g_execs; /* live ones */

static cudaError_t set_err(cudaError_t e) {
  if (e != cudaSuccess) g_last = e;
  return e;
}

static sgn_emu_stream *stream_of(cudaStream_t st) {
  if (!st) return &g_legacy;
  if (std::find(g_streams.begin(), g_streams.end(), st) == g_streams.end())
    fail(EMU_API, "stream %p was not created by cudaStreamCreate (or is destroyed)", (void *)st);
  return st;
}

static void run_queue(sgn_emu_stream *s) {
  if (s->q.empty()) return;
  g_depth++;
  set_open(true);
  while (!s->q.empty()) {
    op o = std::move(s->q.front());
    s->q.pop_front();
    snprintf(g_what, sizeof g_what, "%s", o.what.c_str());
    o.fn();
    check_guards();
    g_what[0] = '\0';
  }
  if (--g_depth == 0) set_open(false);
}

static void run_all(void) {
  run_queue(&g_legacy);
  for (size_t i = 0; i < g_streams.size(); i++) run_queue(g_streams[i]);
}

static void init(void);

/* An error when any stream captures: call would synchronize, allocate or free. */
static void no_capture(const char *call) {
  if (g_capturing) fail(EMU_CAPTURE, "%s while a stream captures", call);
}

bool capturing(cudaStream_t st) { return stream_of(st)->rec != nullptr; }

void enqueue(cudaStream_t st, const char *what, std::function<void()> fn) {
  init();
  sgn_emu_stream *s = stream_of(st);
  if (s->rec) { /* recorded, not run */
    if (!g_legacy.q.empty())
      fail(EMU_CAPTURE, "%s: a capturing stream would wait for the legacy stream's queued work",
           what);
    s->rec->push_back(op{what, std::move(fn)});
    return;
  }
  if (s->legacy && g_capturing)
    fail(EMU_CAPTURE, "%s on the legacy default stream while a stream captures", what);
  /* the legacy default stream waits for every blocking stream and they wait for it */
  if (s->legacy)
    for (size_t i = 0; i < g_streams.size(); i++) run_queue(g_streams[i]);
  else
    run_queue(&g_legacy);
  s->q.push_back(op{what, std::move(fn)});
}

void enqueue_kernel(const launch_cfg &cfg, std::shared_ptr<void> args, void (*run)(void *),
                    const void *const *ptrs, int nptrs, const int64_t *vals, int nvals) {
  init();
  read_order();
  const uint64_t threads = (uint64_t)cfg.block.x * cfg.block.y * cfg.block.z;
  const bool bad = cfg.grid.x < 1 || cfg.grid.x > 0x7fffffffu || cfg.grid.y < 1 ||
                   cfg.grid.y > 65535 || cfg.grid.z < 1 || cfg.grid.z > 65535 ||
                   cfg.block.x < 1 || cfg.block.y < 1 || cfg.block.z < 1 || cfg.block.x > 1024 ||
                   cfg.block.y > 1024 || cfg.block.z > 64 || threads > 1024;
  if (bad) {
    fprintf(stderr,
            "cuda-emu: launch of %s (%s:%d) with grid (%u,%u,%u), block (%u,%u,%u): invalid "
            "configuration\n",
            cfg.name, cfg.file, cfg.line, cfg.grid.x, cfg.grid.y, cfg.grid.z, cfg.block.x,
            cfg.block.y, cfg.block.z);
    set_err(cudaErrorInvalidConfiguration);
    return;
  }
  check_dyn_smem(cfg);
  for (int i = 0; i < nptrs; i++) {
    const void *p = ptrs[i];
    if (!p || is_pinned(p)) continue;
    if (!is_device(p))
      fail(EMU_BADARG, "kernel %s (%s:%d): pointer argument %d (%p) is host memory", cfg.name,
           cfg.file, cfg.line, i, p);
    if (!find_live((uintptr_t)p, true)) {
      char where[256];
      describe_addr((uintptr_t)p, where, sizeof where);
      fail(EMU_OOB, "kernel %s (%s:%d): pointer argument %d: %s", cfg.name, cfg.file, cfg.line,
           i, where);
    }
  }
  char what[400];
  snprintf(what, sizeof what, "kernel %s (launched at %s:%d) grid (%u,%u,%u) block (%u,%u,%u)",
           cfg.name, cfg.file, cfg.line, cfg.grid.x, cfg.grid.y, cfg.grid.z, cfg.block.x,
           cfg.block.y, cfg.block.z);
  const launch_cfg c = cfg;
  const std::vector<int64_t> v(vals, vals + nvals);
  enqueue(cfg.stream, what, [c, args, run, v] { run_kernel(c, run, args.get(), v); });
}

/* ---- faults ---- */

static char g_altstack[64 * 1024];

static void on_segv(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  const uintptr_t p = (uintptr_t)si->si_addr;
  char where[256];
  if (is_device((void *)p)) {
    describe_addr(p, where, sizeof where);
    if (g_open) fail(EMU_OOB, "device access at %s", where);
    fail(EMU_HOST_ACCESS, "the host touched device memory: %s (device memory is reachable only "
         "through cudaMemcpy)", where);
  }
  for (auto &r : g_pend_w)
    if (p >= r.first && p < r.second)
      fail(EMU_NOSYNC, "the host touched byte %zu of pinned memory that a queued "
           "cudaMemcpyAsync (device to host) writes: the stream was not synchronized",
           (size_t)(p - r.first));
  if (g_pend.count(p & ~(PAGE - 1)))
    fail(EMU_NOSYNC, "the host touched a pinned page that a queued cudaMemcpyAsync "
         "reads or writes, before synchronizing its stream");
  if (g_stacks && p >= (uintptr_t)g_stacks &&
      p < (uintptr_t)g_stacks + (size_t)(MAX_THREADS + 1) * (STACK + PAGE))
    fail(EMU_OOB, "fiber stack overflow (more than %zu KiB of stack in one thread)", STACK / 1024);
  if (g_dyn && p >= (uintptr_t)g_dyn + DYN_REGION && p < (uintptr_t)g_dyn + DYN_REGION + PAGE)
    fail(EMU_OOB, "an access past the launch's %zu bytes of dynamic shared memory", g_dyn_bytes);
  signal(sig, SIG_DFL); /* not ours: the ordinary crash */
}

static bool g_inited;

static void init(void) {
  if (g_inited) return;
  g_inited = true;
  fill_pat(g_guard_pat, GUARD_WORD);
  fill_pat(g_poison_pat, POISON_WORD);
  read_large();
  if (g_large) g_arena_bytes = (size_t)1 << 43; /* 8 TiB of addresses: 64 GiB of gaps a lazy one */
  g_arena = (char *)mmap(NULL, g_arena_bytes, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (g_arena == MAP_FAILED) perror("cuda-emu: reserving the device arena"), abort();
  const char *lim = getenv("SGN_EMU_MEM_MB");
  g_limit = (size_t)(lim ? atol(lim) : g_large ? 131072 : 16384) << 20;
  stack_t ss = {};
  ss.ss_sp = g_altstack;
  ss.ss_size = sizeof g_altstack;
  sigaltstack(&ss, NULL);
  struct sigaction sa = {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
}

/* ---- copies ---- */

/* After a device-to-host copy: uninitialized (poison) or out-of-bounds (guard) values must not
 * reach the host. */
static void scan_for_poison(const void *dst, const void *src, size_t bytes) {
  const uint8_t *d = (const uint8_t *)dst;
  const uintptr_t s = (uintptr_t)src;
  size_t first = bytes, count = 0;
  uint32_t which = 0;
  for (size_t i = (4 - (s & 3)) & 3; i + 4 <= bytes; i += 4) {
    uint32_t w;
    memcpy(&w, d + i, 4);
    if (w == POISON_WORD || w == GUARD_WORD) {
      if (first == bytes) first = i, which = w;
      count++;
    }
  }
  if (!count) return;
  char where[256];
  describe_addr(s + first, where, sizeof where);
  if (which == POISON_WORD)
    fail(EMU_UNINIT, "%zu words copied to the host hold the poison of device memory that was "
         "never written (first: %s)", count, where);
  fail(EMU_OOB, "%zu words copied to the host hold the guard pattern read past an allocation "
       "(first: %s)", count, where);
}

} /* namespace sgn_emu */

using namespace sgn_emu;

/* ---- the runtime API ---- */

extern "C" {

cudaError_t cudaMalloc(void **p, size_t bytes) {
  init();
  no_capture("cudaMalloc");
  if (!p) return set_err(cudaErrorInvalidValue);
  *p = nullptr;
  const size_t r = (std::max<size_t>(bytes, 1) + ALIGN - 1) / ALIGN * ALIGN;
  const size_t data = (r + PAGE - 1) / PAGE * PAGE;
  const bool lazy = g_large && bytes >= LAZY_MIN;
  const size_t gap = lazy ? LAZY_GAP : PAGE;
  if (bytes > g_limit - g_used || g_bump + data + 2 * gap > g_arena_bytes)
    return set_err(cudaErrorMemoryAllocation);
  alloc a;
  a.lo = (uintptr_t)g_arena + g_bump + gap;
  a.hi = a.lo + data;
  a.base = a.hi - r;
  a.size = bytes;
  a.id = g_next_id++;
  a.lazy = lazy;
  g_bump += data + gap + (lazy ? gap : 0);
  if (lazy) map_poison(a.lo, data);
  else protect(a, PROT_READ | PROT_WRITE);
  pat_fill(g_guard_pat, (void *)a.lo, a.base - a.lo);
  if (!lazy) pat_fill(g_poison_pat, (void *)a.base, bytes);
  pat_fill(g_guard_pat, (void *)(a.base + bytes), a.hi - a.base - bytes);
  if (!g_open && !lazy) protect(a, PROT_NONE);
  g_live[a.base] = a;
  g_used += bytes;
  *p = (void *)a.base;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  init();
  if (!p) return cudaSuccess;
  no_capture("cudaFree");
  run_all(); /* cudaFree synchronizes the device */
  auto it = g_live.find((uintptr_t)p);
  if (it == g_live.end()) {
    char where[256];
    describe_addr((uintptr_t)p, where, sizeof where);
    fail(EMU_API, "cudaFree(%p): not a pointer cudaMalloc returned (%s)", p, where);
  }
  const alloc a = it->second;
  g_live.erase(it);
  if (a.lazy) { /* back to reserved addresses: the written pages and the poison mapping go */
    if (mmap((void *)a.lo, a.hi - a.lo, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
      perror("cuda-emu: releasing a lazy allocation"), abort();
  } else {
    madvise((void *)a.lo, a.hi - a.lo, MADV_DONTNEED);
    mprotect((void *)a.lo, a.hi - a.lo, PROT_NONE);
  }
  g_freed[a.base] = a;
  g_used -= a.size;
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes) {
  init();
  no_capture("cudaMallocHost");
  const size_t len = (std::max<size_t>(bytes, 1) + PAGE - 1) / PAGE * PAGE;
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return set_err(cudaErrorMemoryAllocation);
  g_pinned[(uintptr_t)m] = pinned{(uintptr_t)m, (uintptr_t)m + len};
  *p = m;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p) {
  init();
  if (!p) return cudaSuccess;
  no_capture("cudaFreeHost");
  run_all();
  auto it = g_pinned.find((uintptr_t)p);
  if (it == g_pinned.end()) fail(EMU_API, "cudaFreeHost(%p): not from cudaMallocHost", p);
  munmap(p, it->second.hi - it->second.lo);
  g_pinned.erase(it);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t st) {
  init();
  if (bytes == 0) return cudaSuccess;
  if (kind == cudaMemcpyDefault)
    kind = is_device(dst) ? (is_device(src) ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                          : (is_device(src) ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  const char *call = "cudaMemcpyAsync";
  if (kind != cudaMemcpyDeviceToDevice && capturing(st))
    fail(EMU_CAPTURE, "%s: a copy to or from host memory on a capturing stream", call);
  switch (kind) {
  case cudaMemcpyHostToDevice: {
    check_device_range(call, "dst (HostToDevice)", dst, bytes);
    if (is_device(src)) fail(EMU_BADARG, "%s: HostToDevice from device memory %p", call, src);
    if (is_pinned(src)) { /* read when it runs; the host may not write it until then */
      pend(src, bytes, false, +1);
      enqueue(st, "cudaMemcpyAsync HostToDevice (pinned)", [=] {
        memcpy(dst, src, bytes);
        pend(src, bytes, false, -1);
      });
    } else { /* pageable: staged at the call, as CUDA does */
      auto stage = std::make_shared<std::vector<char>>((const char *)src, (const char *)src + bytes);
      enqueue(st, "cudaMemcpyAsync HostToDevice", [=] { memcpy(dst, stage->data(), bytes); });
    }
    return cudaSuccess;
  }
  case cudaMemcpyDeviceToHost: {
    check_device_range(call, "src (DeviceToHost)", src, bytes);
    if (is_device(dst)) fail(EMU_BADARG, "%s: DeviceToHost into device memory %p", call, dst);
    if (is_pinned(dst)) { /* written when it runs; unreadable until then */
      pend(dst, bytes, true, +1);
      enqueue(st, "cudaMemcpyAsync DeviceToHost (pinned)", [=] {
        pend(dst, bytes, true, -1);
        memcpy(dst, src, bytes);
        scan_for_poison(dst, src, bytes);
      });
    } else { /* pageable: returns once the copy is done, as CUDA does */
      enqueue(st, "cudaMemcpyAsync DeviceToHost", [=] {
        memcpy(dst, src, bytes);
        scan_for_poison(dst, src, bytes);
      });
      run_queue(stream_of(st));
    }
    return cudaSuccess;
  }
  case cudaMemcpyDeviceToDevice: {
    check_device_range(call, "dst (DeviceToDevice)", dst, bytes);
    check_device_range(call, "src (DeviceToDevice)", src, bytes);
    if ((uintptr_t)dst < (uintptr_t)src + bytes && (uintptr_t)src < (uintptr_t)dst + bytes)
      fail(EMU_BADARG, "%s: DeviceToDevice ranges overlap", call);
    enqueue(st, "cudaMemcpyAsync DeviceToDevice", [=] { memcpy(dst, src, bytes); });
    return cudaSuccess;
  }
  case cudaMemcpyHostToHost:
    if (is_device(dst) || is_device(src)) fail(EMU_BADARG, "%s: HostToHost with device memory", call);
    run_queue(stream_of(st));
    memcpy(dst, src, bytes);
    return cudaSuccess;
  default: return set_err(cudaErrorInvalidMemcpyDirection);
  }
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  no_capture("cudaMemcpy");
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
  run_all();
  return e;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t st) {
  init();
  if (bytes == 0) return cudaSuccess;
  check_device_range("cudaMemsetAsync", "devPtr", p, bytes);
  const alloc *a = find_live((uintptr_t)p, false);
  if (a->lazy && value == 0) { /* zeros without touching the pages */
    enqueue(st, "cudaMemsetAsync (zeros, lazily)", [=] { zero_lazily(p, bytes); });
    return cudaSuccess;
  }
  enqueue(st, "cudaMemsetAsync", [=] { memset(p, value, bytes); });
  return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int value, size_t bytes) {
  no_capture("cudaMemset");
  cudaError_t e = cudaMemsetAsync(p, value, bytes, nullptr);
  run_all();
  return e;
}

cudaError_t cudaStreamCreate(cudaStream_t *st) {
  init();
  sgn_emu_stream *s = new sgn_emu_stream{{}, false};
  g_streams.push_back(s);
  *st = s;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t st) {
  init();
  sgn_emu_stream *s = stream_of(st);
  if (s->legacy) return set_err(cudaErrorInvalidResourceHandle);
  if (s->rec) fail(EMU_CAPTURE, "cudaStreamDestroy of a capturing stream");
  run_queue(s); /* queued work still completes */
  g_streams.erase(std::find(g_streams.begin(), g_streams.end(), s));
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t st) {
  init();
  sgn_emu_stream *s = stream_of(st);
  if (s->rec || s->legacy) no_capture("cudaStreamSynchronize");
  if (s->legacy) run_all();
  else run_queue(&g_legacy), run_queue(s);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  init();
  no_capture("cudaDeviceSynchronize");
  run_all();
  return cudaSuccess;
}

/* ---- stream capture and graphs ---- */

cudaError_t cudaStreamBeginCapture(cudaStream_t st, cudaStreamCaptureMode mode) {
  init();
  (void)mode;
  sgn_emu_stream *s = stream_of(st);
  if (s->legacy) fail(EMU_API, "cudaStreamBeginCapture on the legacy default stream");
  if (s->rec) fail(EMU_API, "cudaStreamBeginCapture on a stream that captures already");
  run_queue(&g_legacy), run_queue(s); /* what was queued before runs, unrecorded */
  s->rec = new std::vector<op>;
  g_capturing++;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph) {
  init();
  sgn_emu_stream *s = stream_of(st);
  if (!s->rec) fail(EMU_API, "cudaStreamEndCapture on a stream that does not capture");
  sgn_emu_graph *g = new sgn_emu_graph{std::move(*s->rec)};
  delete s->rec;
  s->rec = nullptr;
  g_capturing--;
  g_graphs.insert(g);
  *graph = g;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags) {
  init();
  if (!g_graphs.count(graph)) fail(EMU_API, "cudaGraphInstantiate of a graph that is not live");
  if (flags) return set_err(cudaErrorInvalidValue); /* no flag is modelled */
  sgn_emu_graph *e = new sgn_emu_graph{graph->ops};
  g_execs.insert(e);
  *exec = e;
  return cudaSuccess;
}

/* queues the recorded operations on st, in their order (recorded again if st captures) */
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st) {
  init();
  if (!g_execs.count(exec)) fail(EMU_API, "cudaGraphLaunch of an instantiation that is not live");
  for (const op &o : exec->ops) enqueue(st, o.what.c_str(), o.fn);
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  init();
  if (!g_execs.erase(exec)) fail(EMU_API, "cudaGraphExecDestroy of an instantiation that is not live");
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  init();
  if (!g_graphs.erase(graph)) fail(EMU_API, "cudaGraphDestroy of a graph that is not live");
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
  const cudaError_t e = g_last;
  g_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) { return g_last; }

const char *cudaGetErrorString(cudaError_t err) {
  switch (err) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorInitializationError: return "initialization error";
  case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  case cudaErrorInvalidDevicePointer: return "invalid device pointer";
  case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
  case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  case cudaErrorInvalidDevice: return "invalid device ordinal";
  case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unrecognized error code";
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  init();
  *free_bytes = g_limit - g_used;
  *total_bytes = g_limit;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  init();
  return device == 0 ? cudaSuccess : set_err(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
  init();
  if (device != 0) return set_err(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "cuda-emu (CPU emulation, order %s)",
           g_order == ORDER_FWD ? "fwd" : g_order == ORDER_REV ? "rev" : "rand");
  p->totalGlobalMem = g_limit;
  p->sharedMemPerBlock = 48 * 1024;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff, p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->major = 9, p->minor = 0;
  p->multiProcessorCount = 1;
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
  init();
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
    fail(EMU_API, "cudaFuncSetAttribute: attribute %d is not modelled", (int)attr);
  if (!func || value < 0 || (size_t)value > DYN_SMEM_MAX) return set_err(cudaErrorInvalidValue);
  g_smem_limit[func] = (size_t)value;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v) {
  *v = 13000;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *v) {
  *v = 13000;
  return cudaSuccess;
}

/* ---- large-index mode's controls (sgn_emu_large.h; exported for the suites' dlsym) ---- */

int sgn_emu_set_large(unsigned long long seed) {
  if (g_inited) return -1; /* the arena is laid out at the first call */
  g_large_read = true;
  g_large = seed != 0, g_large_seed = seed ? seed : 1;
  return 0;
}

#define SGN_EMU_EXPORT __attribute__((visibility("default")))

SGN_EMU_EXPORT int sgn_emu_large_mode(void) { return large_mode() ? 1 : 0; }

SGN_EMU_EXPORT void sgn_emu_large_pick(sgn_emu_pick_fn fn, void *ctx) {
  g_pick = fn;
  g_pick_ctx = ctx;
}

SGN_EMU_EXPORT size_t sgn_emu_large_log(size_t i, sgn_emu_ran *out) {
  if (i < g_log.size() && out) {
    const ran_rec &r = g_log[i];
    out->op = r.op.c_str();
    out->args = r.args.data();
    out->nargs = (int)r.args.size();
    out->count = r.count;
    out->nran = r.p.all ? r.count : r.p.idx.size();
    static const uint64_t none = 0; /* not NULL when none ran */
    out->ran = r.p.all ? NULL : r.p.idx.empty() ? &none : r.p.idx.data();
  }
  return g_log.size();
}

SGN_EMU_EXPORT void sgn_emu_large_log_clear(void) { g_log.clear(); }

} /* extern "C" */
