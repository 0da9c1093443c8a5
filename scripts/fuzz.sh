#!/usr/bin/env bash
# fuzz.sh SECONDS [HARNESS...] — builds the libFuzzer harnesses (make fuzz) and runs each for
# SECONDS, FUZZ_JOBS at a time (default 2), from the committed seeds in fuzz/corpus/HARNESS.
# The corpus grows in build-fuzz/run/HARNESS/corpus (kept between runs, so runs add up; the
# committed seeds stay small) and crashes land in build-fuzz/run/HARNESS/crash-*, leak-*,
# timeout-*, oom-*. Prints runs and crashes per harness, then replays each grown corpus under
# valgrind (when installed; FUZZ_VALGRIND=0 skips it); exits 1 on any crash or valgrind error.
# Reproduce a crash with: build-fuzz/fuzz_HARNESS build-fuzz/run/HARNESS/crash-...
set -euo pipefail

cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh SECONDS [csv npy idx idx_gz model checkpoint state spec]" >&2
  exit 2
fi
seconds=$1
shift
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(csv npy idx idx_gz model checkpoint state spec)
jobs=${FUZZ_JOBS:-2}
nice_level=${FUZZ_NICE:-10}
run_dir=$PWD/build-fuzz/run

# Inputs larger than a few KiB only slow the search: every format's interesting structure
# (headers, a few rows or elements) fits well inside these.
max_len() {
  case $1 in
    csv) echo 4096 ;;
    npy | idx | idx_gz | checkpoint) echo 2048 ;;
    model | state) echo 1024 ;;
    spec) echo 160 ;;
    *) echo 4096 ;;
  esac
}

build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
if ! make -s --no-print-directory fuzz >"$build_log" 2>&1; then
  cat "$build_log" >&2
  exit 2
fi

run_one() {
  local h=$1 dir=$run_dir/$1
  mkdir -p "$dir/corpus"
  cp -n fuzz/corpus/"$h"/* "$dir/corpus/" 2>/dev/null || true
  local dict=()
  [ -f "fuzz/$h.dict" ] && dict=(-dict="$PWD/fuzz/$h.dict")
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb also caps single allocations.
  nice -n "$nice_level" "build-fuzz/fuzz_$h" "$dir/corpus" ${dict[@]+"${dict[@]}"} \
    -max_total_time="$seconds" -max_len="$(max_len "$h")" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$dir/" -print_final_stats=1 >"$dir/log" 2>&1 || true
}

start=$(date +%s)
running=0
for h in "${harnesses[@]}"; do
  [ -x "build-fuzz/fuzz_$h" ] || { echo "no harness build-fuzz/fuzz_$h" >&2; exit 2; }
  rm -f "$run_dir/$h"/{crash,leak,timeout,oom,slow-unit}-* 2>/dev/null || true
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

status=0
printf '%-11s %10s %8s %8s  %s\n' harness runs corpus crashes artifacts
for h in "${harnesses[@]}"; do
  dir=$run_dir/$h
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  artifacts=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o \
    -name 'timeout-*' -o -name 'oom-*' \) | sort)
  crashes=$(printf '%s' "$artifacts" | grep -c . || true)
  printf '%-11s %10s %8s %8s  %s\n' "$h" "${runs:-?}" "$corpus" "$crashes" \
    "$(echo $artifacts)"
  if [ "$crashes" -gt 0 ] || [ -z "$runs" ]; then
    status=1
    echo "---- $dir/log (tail)"
    tail -40 "$dir/log"
  fi
done
# The grown corpus once more, under valgrind (FUZZ_VALGRIND=0 skips it): uninitialised reads.
if [ "${FUZZ_VALGRIND:-1}" != 0 ] && command -v valgrind >/dev/null; then
  if ! make -s --no-print-directory fuzz-replay >"$build_log" 2>&1; then
    cat "$build_log" >&2
    exit 2
  fi
  for h in "${harnesses[@]}"; do
    log=$run_dir/$h/valgrind.log
    if nice -n "$nice_level" valgrind -q --error-exitcode=9 --leak-check=full \
      --errors-for-leak-kinds=definite "build-fuzz/replay_$h" "$run_dir/$h/corpus" >"$log" 2>&1; then
      echo "valgrind $h: clean ($(tail -1 "$log" | sed 's/.*: //'))"
    else
      status=1
      echo "valgrind $h: errors ($log):"
      grep '==[0-9]*==' "$log" | head -30
    fi
  done
fi
echo "fuzz.sh: ${#harnesses[@]} harnesses, $seconds s each, $(($(date +%s) - start)) s wall"
exit $status
