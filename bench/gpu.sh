#!/bin/bash
# bench/gpu.sh: the GPU checks and the GPU benchmark, in one command for a
# device machine.  Needs build/gan and build/tests/test_cuda built with CUDA
# (./build.sh on a machine with nvcc; see bench/README.md for carrying them
# and their libraries to a machine without Lua), python3 with torch for the
# baseline, and ../shared/data/strawberries for the full seed run.
#
#   bench/gpu.sh [--steps 50] [--warmup 5] [--rounds 3] [--epochs 500] [--quick]
#
# Prints a markdown table and writes it to $OUT/gpu_bench.md when OUT is set:
#   - tests/test_cuda (every op against the CPU) and bench/gpu_steps.lua
#     (modules, and 20 seed steps CPU vs CUDA);
#   - median ms per seed step (128x128x3, batch 100), engine and PyTorch
#     eager, fp32 and TF32, alternating engine and peer in each round;
#   - peak GPU memory of each;
#   - wall time of the full seed run (scripts/strawberry.lua, 500 epochs,
#     data loading included).
set -u
cd "$(dirname "$0")/.."
steps=50 warmup=5 rounds=3 epochs=500
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --quick) steps=10 warmup=2 rounds=1 epochs=20 ;;
    *) echo "gpu.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
GAN=${GAN:-build/gan}
PY=${PYTHON:-python3}
DATA=${DATA:-../shared/data/strawberries}
TEST_CUDA=${TEST_CUDA:-build/tests/test_cuda}
log=$(mktemp -d)
[ -x "$GAN" ] || { echo "gpu.sh: $GAN not found: run ./build.sh first" >&2; exit 2; }

echo "## device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -2
"$GAN" --version

if ! "$GAN" -e 'assert(pcall(gan.zeros, 1, "cuda"))' >/dev/null 2>&1; then
  echo "gpu.sh: no usable GPU here ($("$GAN" --version | tail -1)); nothing measured" >&2
  exit 77
fi

echo "## correctness"
status=0
if [ -x "$TEST_CUDA" ]; then
  "$TEST_CUDA" | tail -3; [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "$TEST_CUDA missing"; status=1
fi
"$GAN" bench/gpu_steps.lua | tail -3; [ "${PIPESTATUS[0]}" -eq 0 ] || status=1

val() { awk -v k="$1" '$1 == k { print $2 }' "$2" | tail -1; }
med() { [ -f "$1" ] || { echo "n/a"; return; }; sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "## benchmark ($rounds rounds of $steps steps)"
for prec in fp32 tf32; do
  tflag=""; [ $prec = tf32 ] && tflag="--tf32"
  for r in $(seq "$rounds"); do
    "$GAN" bench/step.lua --device cuda --precision $prec --steps "$steps" --warmup "$warmup" \
      > "$log/e_${prec}_$r" 2>&1
    $PY bench/torch_step.py --device cuda $tflag --steps "$steps" --warmup "$warmup" \
      > "$log/t_${prec}_$r" 2>&1
    e=$(val step_ms "$log/e_${prec}_$r"); t=$(val step_ms "$log/t_${prec}_$r")
    echo "round $r $prec: engine ${e:-error} ms, pytorch ${t:-error} ms"
    [ -n "$e" ] && [ -n "$t" ] && echo "$e $t" | awk '{ print $1 / $2 }' >> "$log/ratio_$prec"
    [ -n "$e" ] && echo "$e" >> "$log/ems_$prec"
    [ -n "$t" ] && echo "$t" >> "$log/tms_$prec"
  done
done

echo "## full seed run ($epochs epochs)"
t0=$(date +%s.%N)
"$GAN" scripts/strawberry.lua --device cuda --data "$DATA" --epochs "$epochs" \
  --out "$log/run" --checkpoint-every 0 > "$log/run.log" 2>&1
rc=$?
t1=$(date +%s.%N)
wall=$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }')
[ $rc -eq 0 ] || { echo "seed run failed:"; tail -5 "$log/run.log"; status=1; }

table=$(
  echo "| what | engine | pytorch | engine/pytorch |"
  echo "| --- | --- | --- | --- |"
  for prec in fp32 tf32; do
    e=$(med "$log/ems_$prec"); t=$(med "$log/tms_$prec"); q=$(med "$log/ratio_$prec")
    echo "| step ms, $prec (median) | $e | $t | $q |"
  done
  em=$(val peak_gpu_mb "$log/e_fp32_1"); tm=$(val peak_gpu_mb "$log/t_fp32_1")
  echo "| peak GPU memory MB, fp32 | ${em:-n/a} | ${tm:-n/a} | $(echo "${em:-0} ${tm:-1}" | awk '{ printf "%.2f", $1 / $2 }') |"
  echo "| full seed run, $epochs epochs, s (rc $rc) | $wall | | |"
)
echo "$table"
if [ -n "${OUT:-}" ]; then
  { date -u; nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null; echo; echo "$table"; } > "$OUT/gpu_bench.md"
  cp "$log/run.log" "$OUT/seed_run.log" 2>/dev/null
fi
rm -rf "$log"
exit $status
