#!/usr/bin/env bash
# device-check.sh — run on the GPU machine: prove the CUDA backend in one call under 8 minutes,
# sized from the GPU memory it finds, and keep every log in $OUT (./device-check-out when OUT is
# unset). Each step has its own time limit, clipped to what is left of an overall deadline
# (DEVCHECK_DEADLINE seconds, default 450), and a failing step does not stop the later ones;
# the exit status is 1 if any step failed. Without a GPU (no nvidia-smi, or none answering) it
# still runs end to end: the build and `sketchgn info` run, every GPU step says "no device".
#
#   scripts/device-check.sh [check|scaling]
#   scripts/device-check.sh fit KERNELS.csv STEPS.csv   (the rate fit alone, on saved CSVs)
#
# check (default), at most 8 files in $OUT:
#   summary.txt   every step's command, result and the figures below
#   machine.log   debs unpacked, nvidia-smi, nvcc, `sketchgn info`
#   build.log     make all and the GPU suites' binaries (CUDA_ARCH=90)
#   suites.log    test_gpu_ops, test_backend_ops, test_chunking with SKETCHGN_REQUIRE_GPU=1
#   sanitizer.log compute-sanitizer memcheck, racecheck, synccheck over the small shapes
#   runs.log      the large-index runs and the benches' stderr
#   steps.csv     bench rows of one gn-sketch step at each precision of its sketch Gram (fp64,
#                 fp32, tf32, bf16) and one gn-gram step at n = m = 16384
#   kernels.csv   bench --kernels --gram rows at n = m = 16384 (with R^-1 against the Cholesky,
#                 the preconditioner's two GEMVs against its two triangular solves, k = 1, the
#                 sketch Gram Y Y^T, s = 4n, in fp32 / TF32 / bf16 against fp64's DSYRK, and J v
#                 and J^T g with TF32 / bf16 products against fp32's)
# Steps: driver (R580+ for CUDA 13, else stop), build, info, the GPU suites (a skipped GPU test
# fails), the bitwise claims read from the suites' verbose log, the sanitizers, n m > 2^31
# unchunked, the gn-exact and gn-sketch factorizations (gn-sketch's also with a bf16 sketch
# Gram) and the gpu_large suite at n = 46400 (each when the memory allows), the README's memory
# table, ten outputs shared against separate, gn-sketch at each precision of its sketch Gram on
# an ill-conditioned task, per-phase timing, the kernel ratios, GPU_RATES re-fitted for
# src/costmodel.c, and last the products' precisions (a bench step of gn-sketch and gn-gram and
# a short gn-sketch training at each, rows and lines in runs.log).
#
# scaling: build, then the GPU scaling sweeps (trimmed) with their slopes, and compare_torch.py
# (bench.log and summary.txt): for a second run when device time is left.
set -u

mode=${1:-check}
case "$mode" in
  check|scaling|fit) ;;
  *) echo "device-check.sh: expected check, scaling or fit, got '$mode'" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.." || exit 1
root=$(pwd)

# ---- the cost model's GPU rates re-fitted from the bench CSVs ----
# fit_rates KERNELS.csv STEPS.csv: prints a GPU_RATES initializer for src/costmodel.c.
# gemm: the SGEMM references' best rate (jvp/vjp rows); gram: the gram row's rate in flops of its
# float GEMM (n^2 m); other: the Hadamard's (n m' log2 m'); bw: the copy's 8 n m' bytes; fused
# and pair: least squares of time per (sample, neuron) pair = 2 (d + k) / fused + 1 / pair over
# the fused jvp/vjp rows (d <= 64, k <= 16); chol: gn-gram's precond_ms less its Gram
# (n^2 m / gram + n^2 d / gemm) for n^3 / 3 flops; syrk: gn-sketch's precond_ms less its Cholesky,
# traffic and (when sketch_ms is 0: the sketch ran in panels inside precond) its SRHT, for
# n (n + 1) s flops, from the fp64 row (column 20; the others sum in float32). A rate that cannot
# be fitted keeps src/costmodel.c's value, marked so.
fit_rates() {
  awk -F, -v kcsv="$1" -v scsv="$2" -v cm="$root/src/costmodel.c" '
    function np2(x,  p) { p = 1; while (p < x) p *= 2; return p }
    function log2(x) { return log(x) / log(2) }
    BEGIN {
      nm = split("gemm fused pair syrk chol other bw gram", names, " ")
      while ((getline line < cm) > 0) {            # the current GPU_RATES
        if (line ~ /GPU_RATES = /) inside = 1
        if (inside && match(line, /\.[a-z]+ = [0-9.e+]+/)) {
          split(substr(line, RSTART + 1, RLENGTH - 1), kv, " = "); old[kv[1]] = kv[2] + 0
        }
        if (inside && line ~ /};/) inside = 0
      }
      while ((getline line < kcsv) > 0) {
        split(line, f, ",")
        if (f[1] == "op" || f[7] + 0 <= 0) continue
        op = f[1]; n = f[3]; d = f[4]; m = f[5]; k = f[6]; opms = f[7]; refms = f[8]
        if ((op == "jvp" || op == "vjp") && f[12] == "sgemm" && f[11] * 1e9 > r["gemm"])
          r["gemm"] = f[11] * 1e9
        if (op == "gram") { gs += f[10] * 1e9; gc++ }
        if (op == "hadamard") {
          hs += f[10] * 1e9; hc++
          mp = np2(m); bs += 8 * n * mp / (refms * 1e-3); bc++
        }
        if ((op == "jvp" || op == "vjp") && d <= 64 && k <= 16) {
          x = 2 * (d + k); y = opms * 1e-3 / (n * m)
          sx += x; sy += y; sxx += x * x; sxy += x * y; np++
        }
      }
      if (gc) r["gram"] = gs / gc
      if (hc) r["other"] = hs / hc
      if (bc) r["bw"] = bs / bc
      if (np >= 2 && sxx * np - sx * sx > 0) {
        a = (np * sxy - sx * sy) / (np * sxx - sx * sx); b = (sy - a * sx) / np
        if (a > 0) r["fused"] = 1 / a
        if (b > 0) r["pair"] = 1 / b
      }
      gemm = r["gemm"] ? r["gemm"] : old["gemm"]; gram = r["gram"] ? r["gram"] : old["gram"]
      bw = r["bw"] ? r["bw"] : old["bw"]; other = r["other"] ? r["other"] : old["other"]
      while ((getline line < scsv) > 0) {
        split(line, f, ",")
        if (f[1] == "solver") continue
        n = f[3]; d = f[4]; m = f[5]; s = f[7]; sk = f[12]; pre = f[13]
        if (f[1] == "gn-gram" && pre > 0) {
          t = pre * 1e-3 - n * n * m / gram - n * n * d / gemm - 16 * n * n / bw
          if (t > 0.05 * pre * 1e-3) r["chol"] = n * n * n / 3 / t
          else note["chol"] = "gn-gram precond_ms is all Gram"
        }
        if (f[1] == "gn-sketch" && pre > 0 && (f[20] == "" || f[20] == "fp64")) {
          sn = n; sd = d; sm = m; ss = s; ssk = sk; spre = pre
        }
      }
      chol = r["chol"] ? r["chol"] : old["chol"]
      if (spre > 0) {
        n = sn; mp = np2(sm); dp = np2(sd)
        t = spre * 1e-3 - n * n * n / 3 / chol - (12 * n * ss + 16 * n * n) / bw
        if (ssk + 0 == 0) t -= (n * (mp * log2(mp) + dp * log2(dp)) + 2 * n * ss) / other
        if (t > 0.05 * spre * 1e-3) r["syrk"] = n * (n + 1) * ss / t
        else note["syrk"] = "gn-sketch precond_ms left nothing for DSYRK"
      }
      print "/* the GPU rates fitted by scripts/device-check.sh (" kcsv ", " scsv ") */"
      printf "static const sgn_cost_rates GPU_RATES = {"
      for (i = 1; i <= nm; i++) {
        key = names[i]; v = (key in r) && r[key] > 0 ? r[key] : old[key]
        c = (key in r) && r[key] > 0 ? "" : " /* kept: " (key in note ? note[key] : "not measured") " */"
        printf "%s.%s = %.3g%s%s", (i > 1 ? "                                         " : ""), key,
          v, (i < nm ? "," : "};"), c
        if (key in r && old[key] > 0) printf " /* was %.3g, x%.3g */", old[key], v / old[key]
        printf "\n"
      }
    }' /dev/null
}

if [ "$mode" = fit ]; then
  [ $# -eq 3 ] || { echo "usage: device-check.sh fit KERNELS.csv STEPS.csv" >&2; exit 2; }
  fit_rates "$2" "$3"
  exit 0
fi

OUT=${OUT:-./device-check-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

failed=()
skipped=()
summary="$OUT/summary.txt"
: >"$summary"
deadline=$((SECONDS + ${DEVCHECK_DEADLINE:-450}))
say() { echo "$*" | tee -a "$summary"; }

# step NAME LOG LIMIT_SECONDS CMD...: runs CMD with its limit clipped to the deadline, appending
# its output to $OUT/LOG, and notes the result; a step with under 15 s left is skipped.
step() {
  local name=$1 log=$OUT/$2 limit=$3
  shift 3
  local left=$((deadline - SECONDS)) t0=$SECONDS rc
  if [ "$left" -lt 15 ]; then
    say "== $name: skipped: the call's time is spent"
    skipped+=("$name (time)")
    return 125
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "== $name: $*"
  echo "== $name: $*" >>"$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  say "   rc=$rc after $((SECONDS - t0)) s (limit $limit s)"
  if [ "$rc" -ne 0 ]; then
    failed+=("$name")
    tail -n 30 "$log" | sed 's/^/   | /' | tee -a "$summary"
  fi
  return "$rc"
}

# nodev NAME WHY: a GPU step that cannot run here
nodev() {
  say "== $1: no device ($2)"
  skipped+=("$1")
}

machine="$OUT/machine.log"
# Libraries the machine lacks (Criterion, OpenBLAS, ...) travel as .debs unpacked here.
if [ -f .device-deps/unpack-debs.sh ]; then
  # shellcheck disable=SC1091
  . .device-deps/unpack-debs.sh .device-deps >>"$machine" 2>&1 ||
    say "unpack-debs failed"
fi
{
  date -u
  uname -a
  nvidia-smi || true
  command -v nvcc && nvcc --version
} >>"$machine" 2>&1

# ---- the device, its driver and memory ----
gpu=0 why="nvidia-smi not found"
if command -v nvidia-smi >/dev/null 2>&1; then
  q=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader,nounits \
    2>>"$machine" | head -n 1)
  if [ -n "$q" ]; then
    IFS=, read -r gpu_name driver mem_mib <<<"$q"
    gpu_name=$(echo "$gpu_name" | sed 's/^ *//'); driver=${driver// /}; mem_mib=${mem_mib// /}
    say "device: $gpu_name, driver $driver, $mem_mib MiB"
    if [ "${driver%%.*}" -lt 580 ] 2>/dev/null; then
      say "driver $driver is older than R580, which CUDA 13 needs: stopping"
      say "FAILED: driver"
      exit 1
    fi
    gpu=1
  else
    why="nvidia-smi lists no GPU"
  fi
fi
[ "$gpu" = 1 ] || say "device: none ($why); the GPU steps report no device"
mem_bytes=$(( ${mem_mib:-0} * 1048576 ))

jobs=$(nproc 2>/dev/null || echo 4)
suites=(test_gpu_ops test_backend_ops test_chunking)
step build build.log 240 make -j"$jobs" CUDA_ARCH=90 all "${suites[@]/#/build/tests/}"
step info machine.log 30 build/sketchgn info
grep -E "^(gpu|openblas):" "$machine" | tail -n 2 | sed 's/^/   /' | tee -a "$summary"

# ---- the GPU suites: every op against its CPU twin; a skipped GPU test is a failure ----
check_steps() {
  local t
  if [ "$gpu" = 1 ]; then
    for t in "${suites[@]}"; do
      step "$t" suites.log 150 env SKETCHGN_REQUIRE_GPU=1 OMP_NUM_THREADS=2 \
        build/tests/"$t" --verbose --jobs 8
      grep -E "^\[====\] Synthesis" "$OUT/suites.log" | tail -n 1 | sed 's/^/   /' |
        tee -a "$summary"
    done
  else
    for t in "${suites[@]}"; do nodev "$t" "$why"; done
  fi

  # ---- the bitwise claims, each a test of the suites above ----
  local claims=("backend_ops::symmetric_model_is_exactly_zero|f == 0 for a symmetric model"
    "chunking::symmetric_model_is_exactly_zero|f == 0 for a symmetric model, chunked"
    "gpu_ops::sketch_srht_matches_cpu|the SRHT equal to the CPU's, and twice the same"
    "gpu_ops::sketch_srht_fused_and_blocked_paths|the fused and blocked SRHT equal to the CPU's"
    "gpu_ops::hadamard_every_length_and_pass_count|the Hadamard at every length to 2^16 equal to the CPU's"
    "gpu_ops::hadamard_long_rows|the Hadamard at 2^17, 2^25 and 2^26 equal to the CPU's"
    "gpu_ops::gram_counts_bit_for_bit|the Gram's integer counts equal to the CPU's"
    "gpu_ops::same_gn_step_twice_is_bit_identical|the same GN step twice, loss and W identical"
    "gpu_ops::pcg_device_scalars_bit_for_bit|PCG on device scalars and its graph = the host loop")
  local c name what
  for c in "${claims[@]}"; do
    name=${c%%|*}; what=${c#*|}
    if [ "$gpu" != 1 ]; then
      nodev "bitwise $name" "$why"
    elif grep -qE "^\[FAIL\] $name|$name\` crashed" "$OUT/suites.log"; then
      say "== bitwise: FAIL $name ($what)"; failed+=("bitwise $name")
    elif grep -qE "^\[PASS\] $name" "$OUT/suites.log"; then
      say "== bitwise: pass $name ($what)"
    else
      say "== bitwise: NOT RUN $name ($what)"; failed+=("bitwise $name")
    fi
  done

  # ---- compute-sanitizer over the small shapes: the Hadamard at every length to 2^16 and short
  # rows in many counts, the fused SRHT, the fused forward with its ballot and the products, the
  # Gram row blocks and the int8 Gram ----
  local san=/usr/local/cuda/bin/compute-sanitizer tool
  local filt='gpu_ops/@(hadamard_every_length_and_pass_count|hadamard_small_lengths_any_rows|sketch_srht_fused_and_blocked_paths|forward_jvp_vjp_match_cpu|gram_row_blocks|gram_counts_bit_for_bit|gram_heads_counts_bit_for_bit|heads_symv_matches_cpu|sketch_gram_each_precision_matches_cpu|pcg_device_scalars_bit_for_bit|products_at_each_product_precision_match_cpu)'
  for tool in memcheck racecheck synccheck; do
    if [ "$gpu" != 1 ]; then
      nodev "sanitizer $tool" "$why"
    elif [ ! -x "$san" ]; then
      say "== sanitizer $tool: skipped: $san not found"; skipped+=("sanitizer $tool")
    else
      step "sanitizer $tool" sanitizer.log 90 env SKETCHGN_REQUIRE_GPU=1 "$san" --tool "$tool" \
        --target-processes all --error-exitcode 1 --print-limit 20 \
        build/tests/test_gpu_ops --filter "$filt" --jobs 1 --verbose
      grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/sanitizer.log" | tail -n 1 |
        sed 's/^/   /' | tee -a "$summary"
    fi
  done

  # ---- large indices: n m > 2^31 unchunked, and a factorization at n >= 46341 (n^2 > 2^31).
  # Each runs when its estimate fits 85% of the GPU's memory; a session that refuses it (it
  # counts its own bytes) is reported skipped with its message. ----
  large() { # large NAME BYTES CMD...
    local name=$1 need=$2
    shift 2
    if [ "$gpu" != 1 ]; then nodev "$name" "$why"; return; fi
    if [ $((need / 100 * 100)) -gt $((mem_bytes / 100 * 85)) ]; then
      say "== $name: skipped: needs about $((need >> 30)) GiB, the GPU has $((mem_bytes >> 30)) GiB"
      skipped+=("$name (memory)"); return
    fi
    local before
    before=$(wc -l <"$OUT/runs.log" 2>/dev/null || echo 0)
    if ! step "$name" runs.log 90 "$@"; then
      local refusal
      refusal=$(tail -n +"$((before + 1))" "$OUT/runs.log" | grep -m1 -E "needs .* bytes\)")
      if [ -n "$refusal" ]; then
        unset 'failed[-1]'
        say "   skipped: the session refused: $refusal"; skipped+=("$name (refused)")
      fi
    fi
    grep -E "^step +1 |stop:" "$OUT/runs.log" | tail -n 2 | sed 's/^/   /' | tee -a "$summary"
  }
  : >>"$OUT/runs.log"
  # (n, m) float work and the products' buffers, ~3 n m floats; 2.6e9 pairs > 2^31
  large "index n*m=2.6e9" $((3 * 40000 * 65536 * 4)) build/sketchgn train \
    --data synth:n=40000,d=32,seed=1 --width 65536 --steps 1 --solver gn-cg --cg-max 5 \
    --device gpu --chunk-neurons 65536
  # R (n, n) float64 and the Gram's scratch: ~2 n^2 doubles; n^2 = 2.15e9 > 2^31: the Gram's
  # scatter into G, cusolverDnXpotrf and cublasDtrsm_64 on it
  large "factorization n=46400" $((2 * 46400 * 46400 * 8)) build/sketchgn train \
    --data synth:n=46400,d=16,seed=1 --width 512 --steps 1 --solver gn-exact --device gpu
  # Y (n, 4n) float and R (n, n) float64, 24 n^2 bytes: cublasDsyrk_64 into R, then Xpotrf
  large "sketch factorization n=46400" $((25 * 46400 * 46400)) build/sketchgn train \
    --data synth:n=46400,d=16,seed=1 --width 512 --steps 1 --solver gn-sketch --device gpu
  # the same with a bf16 sketch Gram: the rounded panel (n, 4096) and the float32 tile of rows,
  # cublasGemmEx_64 with 46400-row operands, the tiles added into R past 2^31 entries
  large "sketch factorization n=46400, bf16" $((25 * 46400 * 46400)) build/sketchgn train \
    --data synth:n=46400,d=16,seed=1 --width 512 --steps 1 --solver gn-sketch --device gpu \
    --precision bf16
  # the suite the emulator's large-index mode runs (gram, gram_heads, the factorizations at
  # n = 46400, rows against the CPU twin), whole on the GPU: at most 3 n^2 floats at a time
  large "gpu_large suite n=46400" $((13 * 46400 * 46400)) env SKETCHGN_REQUIRE_GPU=1 \
    SKETCHGN_TEST_BIG_GPU=1 OMP_NUM_THREADS=2 build/tests/test_gpu_ops --filter 'gpu_large/*' \
    --jobs 1

  # ---- the README's memory table (largest n per solver in 80 and 139 GB), counted with this
  # device's own cuSOLVER workspaces: no GPU work, the session's byte count only ----
  if [ "$gpu" = 1 ]; then
    for mem in 80000000000 139000000000; do
      step "max n in $((mem / 1000000000)) GB" runs.log 30 build/sketchgn bench --largest-n \
        --device gpu --max-memory "$mem" --d 32 --m 16384 --k 1,10 \
        --solver gn-exact,gn-gram,gn-sketch,gn-cg,adam
      step "max n in $((mem / 1000000000)) GB, separate" runs.log 30 build/sketchgn bench \
        --largest-n --device gpu --max-memory "$mem" --d 32 --m 16640 --k 10 --solver gn-gram
    done
    grep -E "^(gn-[a-z]+|adam),gpu," "$OUT/runs.log" | tail -n 24 | sed 's/^/   /' |
      tee -a "$summary"
  else
    nodev "max n in 80 and 139 GB (bench --largest-n)" "$why"
  fi

  # ---- ten outputs, shared against separate (README "Many outputs"): gram_heads, heads_symv and
  # the mean-block factor on the device, PCG iterations and seconds per step side by side ----
  if [ "$gpu" = 1 ]; then
    for o in shared separate; do
      step "outputs $o" runs.log 60 build/sketchgn train --data synth:n=16384,d=64,k=10,seed=1 \
        --width 2048 --solver gn-gram --steps 3 --patience 0 --tol 0 --outputs "$o" --device gpu
      grep -E "^step +[123] |stop:" "$OUT/runs.log" | tail -n 4 | sed "s/^/   $o: /" |
        tee -a "$summary"
    done
  else
    nodev "outputs shared/separate (synth k = 10, gn-gram)" "$why"
  fi

  # ---- the sketch Gram's precisions (README "Precision"): gn-sketch on an ill-conditioned task
  # with its Gram in fp64, TF32 and bf16 on the tensor cores: PCG iterations, losses, precond_ms
  # side by side ----
  if [ "$gpu" = 1 ]; then
    for p in fp64 tf32 bf16; do
      step "precision $p" runs.log 60 build/sketchgn train \
        --data synth:n=16384,d=16,aniso=30,seed=1 --width 4096 --solver gn-sketch --ridge 0 \
        --steps 4 --patience 0 --tol 0 --precision "$p" --device gpu
      grep -E "^step +[1234] |stop:" "$OUT/runs.log" | tail -n 5 | sed "s/^/   $p: /" |
        tee -a "$summary"
    done
  else
    nodev "gn-sketch at each precision (synth n = 16384, aniso 30)" "$why"
  fi

  # ---- per-phase timing and the kernel ratios at n = m = 16384 ----
  if [ "$gpu" = 1 ]; then
    step bench_steps runs.log 150 build/sketchgn bench --device gpu --n 16384 --m 16384 --d 32 \
      --k 1 --solver gn-sketch,gn-gram --precision fp64,fp32,tf32,bf16 \
      --precond-refresh always --warmup 1 --steps 3 --csv "$OUT/steps.csv"
    [ -f "$OUT/steps.csv" ] && awk -F, '{ printf "   %s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n",
      $1, $3, $5, $8, $11, $12, $13, $14, $15, $20 }' "$OUT/steps.csv" | tee -a "$summary"
    step bench_kernels runs.log 150 build/sketchgn bench --kernels --gram --device gpu \
      --n 16384 --m 16384 --d 4,32,128 --k 1 --reps 10 --precision fp32,tf32,bf16 \
      --product-precision fp32,tf32,bf16 --csv "$OUT/kernels.csv"
    grep -E "ratio" "$OUT/runs.log" | sed 's/^sketchgn bench: /   /' | tee -a "$summary"
    if [ -s "$OUT/kernels.csv" ] || [ -s "$OUT/steps.csv" ]; then
      say "== cost model: GPU rates fitted (paste into src/costmodel.c)"
      fit_rates "$OUT/kernels.csv" "$OUT/steps.csv" | tee -a "$summary"
    else
      say "== cost model fit: skipped: no bench rows to fit"; skipped+=("cost model fit")
    fi
  else
    nodev "bench_steps (gn-sketch at each precision, gn-gram at n = m = 16384)" "$why"
    nodev "bench_kernels (products vs SGEMM, Hadamard vs copy, Gram vs SGEMM, R^-1 vs Cholesky, apply vs triangular solves, sketch Gram fp32/tf32/bf16 vs fp64, products tf32/bf16 vs fp32)" "$why"
    nodev "cost model fit" "$why"
  fi

  # ---- the products' precisions (README "Precision"): J v, J^T g and the forward with TF32 and
  # bf16 tensor cores against fp32 (bench_kernels' jvp:tf32 ... rows above), a step of gn-sketch
  # and of gn-gram at each (the CSV rows go to runs.log: $OUT holds 8 files), and gn-sketch
  # trained 4 steps at each on an ill-conditioned task: PCG iterations, losses, test R^2 ----
  if [ "$gpu" = 1 ]; then
    step "bench product precisions" runs.log 90 build/sketchgn bench --device gpu --n 16384 \
      --m 16384 --d 32 --k 1 --solver gn-sketch,gn-gram --product-precision fp32,tf32,bf16 \
      --precond-refresh always --warmup 1 --steps 2
    grep -E "^gn-(sketch|gram),gpu," "$OUT/runs.log" | tail -n 6 | awk -F, '{ printf \
      "   %s n=%s m=%s step_ms %s solve_ms %s cg %s products %s\n", $1, $3, $5, $8, $14, $16,
      $21 }' | tee -a "$summary"
    for p in fp32 tf32 bf16; do
      step "product precision $p" runs.log 60 build/sketchgn train \
        --data synth:n=16384,d=32,aniso=1000,seed=1 \
        --test synth:n=4000,d=32,aniso=1000,seed=1,skip=16384 --width 4096 --solver gn-sketch \
        --ridge 0 --steps 4 --patience 0 --tol 0 --product-precision "$p" --device gpu
      grep -E "^step +[1234] |stop:" "$OUT/runs.log" | tail -n 5 | sed "s/^/   products $p: /" |
        tee -a "$summary"
    done
  else
    nodev "bench and gn-sketch at each product precision (synth n = 16384, aniso 1000)" "$why"
  fi
}

# Scaling on the device and PyTorch beside sketchgn
scaling_steps() {
  if [ "$gpu" != 1 ]; then
    nodev "scaling" "$why"
    return
  fi
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

say "== done after $SECONDS s"
[ "${#skipped[@]}" -gt 0 ] && say "skipped: $(printf '%s; ' "${skipped[@]}")"
if [ "${#failed[@]}" -gt 0 ]; then
  say "FAILED: ${failed[*]}"
  exit 1
fi
say "all steps that could run passed"
