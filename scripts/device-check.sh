#!/usr/bin/env bash
# device-check.sh — run on the GPU machine: build with CUDA for sm_90, run every test suite (the
# GPU ones active), train briefly on the GPU, and keep every log in $OUT (./device-check-out
# when OUT is unset). Each step has its own time limit and a failing step does not stop the
# later ones; the exit status is 1 if any step failed. Meant to finish in under 8 minutes.
# Writes 8 files (the device tool brings back at most 8): summary.txt, machine.log, build.log,
# test.log, test_gpu_ops.log, train_gpu.log, gpu_train.jsonl, bench.log.
#
#   scripts/device-check.sh [check|scaling]
#
# check (default): the above plus bench --kernels and one bench row per solver. scaling: build,
# then the GPU scaling sweeps (trimmed) with their slopes, and compare_torch.py (under 8 minutes;
# bench.log and summary.txt): for a second run when device time is left.
set -u

mode=${1:-check}
case "$mode" in
  check|scaling) ;;
  *) echo "device-check.sh: expected check or scaling, got '$mode'" >&2; exit 2 ;;
esac

OUT=${OUT:-./device-check-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.." || exit 1

failed=()
summary="$OUT/summary.txt"
: >"$summary"

# step NAME LOG LIMIT_SECONDS CMD...: runs CMD, appending its output to $OUT/LOG, notes the result
step() {
  local name=$1 log=$OUT/$2 limit=$3
  shift 3
  local t0=$SECONDS rc
  echo "== $name: $*" | tee -a "$summary"
  echo "== $name: $*" >>"$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  echo "   rc=$rc after $((SECONDS - t0)) s" | tee -a "$summary"
  if [ "$rc" -ne 0 ]; then
    failed+=("$name")
    tail -n 40 "$log" | sed 's/^/   | /' | tee -a "$summary"
  fi
  return "$rc"
}

machine="$OUT/machine.log"
# Libraries the machine lacks (Criterion, OpenBLAS, ...) travel as .debs unpacked here.
if [ -f .device-deps/unpack-debs.sh ]; then
  # shellcheck disable=SC1091
  . .device-deps/unpack-debs.sh .device-deps >>"$machine" 2>&1 ||
    echo "unpack-debs failed" | tee -a "$summary"
fi
{
  date -u
  uname -a
  nvidia-smi || true
  command -v nvcc && nvcc --version
} >>"$machine" 2>&1

jobs=$(nproc 2>/dev/null || echo 4)
step clean build.log 60 make clean
step build build.log 300 make -j"$jobs" CUDA_ARCH=90
step info machine.log 30 build/sketchgn info
# the suites, a short GPU training run and the micro-benchmarks
check_steps() {
  # every suite through the Makefile (GPU suites skip only if no device answers), then the GPU
  # suite alone and verbose, so each test's time and any skip reason are in its log
  step test test.log 300 make test CUDA_ARCH=90
  if [ -x build/tests/test_gpu_ops ]; then
    step test_gpu_ops test_gpu_ops.log 180 build/tests/test_gpu_ops --verbose --jobs 1
    if grep -q "SKIP" "$OUT/test_gpu_ops.log"; then
      echo "   note: GPU tests were skipped (see test_gpu_ops.log)" | tee -a "$summary"
    fi
  fi
  step train_gpu train_gpu.log 120 build/sketchgn train --data synth:n=1024,d=32,seed=1 \
    --width 4096 --solver gn-sketch --steps 8 --device gpu --log-json "$OUT/gpu_train.jsonl"

  # The micro-benchmark: J v and J^T g against cuBLAS SGEMMs of the same shapes, the Hadamard
  # transform against a device-to-device copy of the same bytes, interleaved in one process
  # (the design's targets: ratio >= 0.8); then one bench row per solver. Ratios go to the summary.
  step bench_kernels bench.log 120 build/sketchgn bench --kernels --device gpu --n 16384 \
    --m 16384 --d 32,128 --k 1,10 --reps 10
  grep -E "ratio" "$OUT/bench.log" | sed 's/^/   /' | tee -a "$summary"
  step bench_solvers bench.log 150 build/sketchgn bench --device gpu --n 4096 --m 32768 --d 32 \
    --k 1 --solver gn-exact,gn-cg,gn-sketch,gn-gram,auto --steps 3
  grep -E "^sketchgn bench: \[" "$OUT/bench.log" | sed 's/^/   /' | tee -a "$summary"
}

# Scaling on the device and PyTorch beside sketchgn
scaling_steps() {
  # Scaling on the device, trimmed to fit the device time: scaling.sh's GPU n and m sweeps with
  # fewer points (its default sizes take longer), slopes and the bars' checks by plot_scaling.py
  # (CSVs stay on the machine: the tool brings back 8 files). Then PyTorch on the same device.
  scal=$(mktemp -d)
  common_gpu=(--device gpu --solver gn-exact,gn-gram,gn-cg,gn-sketch --warmup 0 --steps 2)
  step scaling_n bench.log 150 build/sketchgn bench "${common_gpu[@]}" --n 4096,8192,16384 \
    --m 262144 --d 16 --csv "$scal/n_sweep.csv"
  step scaling_m bench.log 120 build/sketchgn bench "${common_gpu[@]}" --n 4096 \
    --m 32768,131072,524288 --d 32 --csv "$scal/m_sweep.csv"
  step slopes bench.log 60 python3 scripts/plot_scaling.py "$scal"
  sed -n '/_sweep: step time/,$p' "$OUT/bench.log" | sed 's/^/   /' | tee -a "$summary"
  step compare_torch bench.log 150 python3 scripts/compare_torch.py --device gpu --n 4096 \
    --d 16 --m 16384 --budget 20
  grep -E "torch|sketchgn" "$OUT/bench.log" | tail -n 12 | sed 's/^/   /' | tee -a "$summary"
}

if [ "$mode" = check ]; then check_steps; else scaling_steps; fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]}" | tee -a "$summary"
  exit 1
fi
echo "all steps passed" | tee -a "$summary"
