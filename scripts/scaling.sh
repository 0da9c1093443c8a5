#!/usr/bin/env bash
# scaling.sh — the scaling curves: three sweeps of `sketchgn bench` (m at fixed n, n at fixed m,
# d at fixed n and m) for gn-exact, gn-gram, gn-cg and gn-sketch, one CSV per sweep in DIR, then
# scripts/plot_scaling.py for the log-log PNGs, the phase bars and the fitted slopes.
#
#   scripts/scaling.sh [--quick] [--device cpu|gpu] [--out DIR]
#
# --quick: sizes for a 2-core CPU (under 10 minutes); otherwise sizes for one H200.
# The n sweep keeps m >= 8 n and d small, where gn-exact's n^2 m Gram dominates its step.
set -euo pipefail

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

quick=0
device=cpu
out=scaling-out
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --device) [ $# -ge 2 ] || { echo "scaling.sh: --device: missing value" >&2; exit 2; }
              device=$2; shift ;;
    --device=*) device=${1#--device=} ;;
    --out) [ $# -ge 2 ] || { echo "scaling.sh: --out: missing value" >&2; exit 2; }
           out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "scaling.sh: $1: unknown option (try --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$device" in
  cpu|gpu) ;;
  *) echo "scaling.sh: --device: expected cpu or gpu, got '$device'" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${SKETCHGN_BIN:-$root/build/sketchgn}
if [ ! -x "$bin" ]; then
  echo "scaling.sh: building $bin" >&2
  make -C "$root" -s all >&2
fi
mkdir -p "$out"

solvers=gn-exact,gn-gram,gn-cg,gn-sketch
if [ "$quick" = 1 ]; then
  # Each timed step restarts from step 0 (--warmup 0), so gn-gram's rows include building its
  # Gram. gn-cg is capped at 10 iterations to fit the time: its slope is that of its products.
  # The n sweep: n >= 2048, where the Gram's BLAS has reached its speed (below, its SGEMMs
  # speed up with n and hide part of gn-exact's n^2 m), and m = 24 n at the largest n, so
  # gn-sketch's 4 n^3 factorization does not yet outgrow its O(n m log m) sketch and products
  # (at m = 16 n its slope reached gn-exact's). One timed step per point (2-70 s each).
  common=(--warmup 0 --cg-max 10)
  m_sweep=(--n 512 --m 4096,8192,16384,32768 --d 4 --steps 3)
  n_sweep=(--n 2048,4096,8192 --m 196608 --d 4 --steps 1)
  d_sweep=(--n 512 --m 8192 --d 4,16,64,256 --steps 3)
else
  common=(--warmup 1 --steps 5)
  m_sweep=(--n 4096 --m 16384,32768,65536,131072,262144 --d 32)
  n_sweep=(--n 2048,4096,8192,16384 --m 262144 --d 16)
  d_sweep=(--n 4096 --m 65536 --d 16,64,256,784)
fi

# OpenMP threads that spin after a parallel region fight OpenBLAS's own threads for the cores
# (1.2-1.5x slower memory-bound phases on 2 cores); the engine runs best with passive waiting.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

start=$(date +%s)
run() { # name, then the sweep's flags
  local name=$1; shift
  echo "scaling.sh: $name sweep ($*) on $device" >&2
  "$bin" bench --device "$device" --solver "$solvers" "${common[@]}" "$@" --csv "$out/$name.csv"
}
run m_sweep "${m_sweep[@]}"
run n_sweep "${n_sweep[@]}"
run d_sweep "${d_sweep[@]}"
echo "scaling.sh: sweeps took $(( $(date +%s) - start )) s; CSVs in $out" >&2

# The first Python with matplotlib draws the PNGs; without one the slopes are still printed.
py=
for p in ${PYTHON:-} /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import matplotlib' 2>/dev/null; then
    py=$p
    break
  fi
done
if [ -z "$py" ]; then
  echo "scaling.sh: no python3 with matplotlib (scripts/install-deps.sh): slopes only, no PNGs" >&2
  py=$(command -v python3 || echo /usr/bin/python3)
fi
"$py" "$here/plot_scaling.py" "$out"
