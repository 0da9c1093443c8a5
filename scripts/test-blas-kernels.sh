#!/usr/bin/env bash
# test-blas-kernels.sh — the library's Criterion suites again under OpenBLAS kernel types other
# than the one it picks by itself, and at 1 and 2 threads: every floating-point bound in the
# suites must hold on any CPU, BLAS kernel type and thread count, not only on the machine a test
# was written on. The suites that drive the sketchgn binary (tests/cli_run.h) are left out: the
# numbers they check come from the same library code, and they take most of make test's time.
# Runs each core type this CPU can execute (SkylakeX needs AVX-512, Haswell AVX2 + FMA; Prescott
# runs anywhere). Needs a built tree (`make all` and the suites, as `make test` leaves them).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
types=(Prescott)
case " $flags " in *" avx2 "*) case " $flags " in *" fma "*) types+=(Haswell);; esac;; esac
case " $flags " in *" avx512f "*) types+=(SkylakeX);; esac

suites=()
for src in tests/test_*.c; do
  grep -q '"cli_run.h"' "$src" && continue
  t=$BUILD/tests/$(basename "$src" .c)
  [ -x "$t" ] || { echo "test-blas-kernels.sh: $t is not built (run make test first)" >&2; exit 2; }
  suites+=("$t")
done
[ ${#suites[@]} -gt 0 ] || { echo "test-blas-kernels.sh: no suites in $BUILD/tests (run make test first)" >&2; exit 2; }

fail=0
for ct in "${types[@]}"; do
  for th in 1 2; do
    echo "== OPENBLAS_CORETYPE=$ct, $th thread(s): ${#suites[@]} suites"
    for t in "${suites[@]}"; do
      out=$(OPENBLAS_CORETYPE=$ct OMP_NUM_THREADS=$th OPENBLAS_NUM_THREADS=$th \
            SKETCHGN_BIN=$BUILD/sketchgn "$t" --jobs 2 2>&1)
      rc=$?
      if [ $rc -ne 0 ]; then
        fail=1
        echo "$out" | grep -E '\[FAIL\]|CRASH|Synthesis|Assertion|failed' | sed "s|^|  $(basename "$t"): |"
      fi
    done
  done
done
if [ $fail = 0 ]; then echo "== test-blas-kernels: every suite passed under ${types[*]} at 1 and 2 threads"; else echo "== test-blas-kernels: FAILED"; fi
exit $fail
