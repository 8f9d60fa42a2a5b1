#!/bin/bash
# bench/gpu.sh: the GPU checks and the GPU benchmark, in one command for a
# device machine.  Needs build/gan and build/tests/test_cuda built with CUDA
# (./build.sh on a machine with nvcc; see bench/README.md for carrying them
# and their libraries to a machine without Lua), python3 with torch for the
# baseline, and ../shared/data/strawberries for the full seed run.
#
#   bench/gpu.sh [--steps 50] [--warmup 5] [--rounds 3] [--epochs 500]
#                [--dcgan-epochs 300] [--budget 420] [--quick] [--smoke]
#                [--parts check,step,seed,floor,dcgan,sample,specs] [--specs tensor,nn,...]
#
# --parts: the parts to run (all by default), for a device machine's short
# second call: check (test_cuda, gpu_steps on cuDNN and on im2col), step
# (the step against PyTorch), seed (the full seed run in fp32 and tf32),
# floor, dcgan, sample, specs (the Busted specs on the GPU; --specs names
# which, by default those spec/support/on_device.txt lists).
#
# --budget S: the whole script ends within about S seconds.  Each part runs
# under timeout(1), with its own cap and never past the budget; a part the
# budget cannot fit is skipped, and the table says so.  The table is
# rewritten to $OUT after every part, with every part's log in
# $OUT/gpu_logs.tgz, so a device machine's limit cutting the script short
# still brings back what was measured.  Under the device tool, run it as
#   set -o pipefail; bench/gpu.sh 2>&1 | tee $OUT/gpu.log
#
# --smoke checks the harness, not the GPU: every part once, at 16x16, 1
# step a round, 1 epoch of each run.  tests/emu/run.sh runs it on the host
# emulator (GAN and TEST_CUDA set to its builds), so this script has run end
# to end before a device machine ever sees it.
#
# Prints a markdown table and writes it to $OUT/gpu_bench.md when OUT is set:
#   - tests/test_cuda (every op against the CPU) and bench/gpu_steps.lua
#     (modules, and 20 seed steps CPU vs CUDA);
#   - median ms per seed step (128x128x3, batch 100), engine and PyTorch
#     eager, fp32 and TF32, alternating engine and peer in each round.  The
#     engine reads the step's values as run:fit does (one reader, one step
#     late: --reads async); it also runs with --reads sync (5 numbers that
#     each wait for the GPU, the old way) and --reads none (nothing read),
#     which show what the waits cost and what the reader saves;
#   - the step's floor on this GPU (bench/floor.lua: every product of the
#     step through cuBLAS alone, plus Adam's 28 bytes a parameter at the
#     device's copy bandwidth), and the engine's step as a multiple of it;
#   - peak GPU memory of each;
#   - wall time of the full seed run (scripts/strawberry.lua, 500 epochs,
#     data loading included), and where it went, from the run's last line
#     (training, checkpoints, sample grids, report);
#   - what a sample step makes the loop wait, with the grid's PNG written in
#     the loop and on a thread (bench/sample_step.lua);
#   - the DCGAN of issue 6 trained on the GPU (scripts/strawberry_dcgan.lua
#     at 64x64, the README's settings, --dcgan-epochs epochs): its wall
#     time, ms per step, and the SWD of its samples (scripts/evaluate.lua).
#     The convolutions run on cuDNN 9 when it loads (else on the im2col
#     kernels): when `gan` cannot load it by itself, this script looks for
#     the nvidia-cudnn wheel in python3's packages and sets GAN_CUDNN.
#     bench/gpu_steps.lua runs once on each path;
#   - the Busted specs that take their device from GAN_TEST_DEVICE, with
#     that set to cuda (busted packed by bench/pack_gpu.sh, run by gan).
set -u
cd "$(dirname "$0")/.." || exit 2
steps=50 warmup=5 rounds=3 epochs=500 dcgan_epochs=300
all_parts="check step seed floor dcgan sample specs"
parts_arg=$all_parts
specs=$(grep -v '^#' spec/support/on_device.txt)
size=128 dcgan_size=64 check_size=32 smoke=0 budget=
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --dcgan-epochs) dcgan_epochs=$2; shift ;;
    --budget) budget=$2; shift ;;
    --parts) parts_arg=${2//,/ }; shift ;;
    --specs) specs=${2//,/ }; shift ;;
    --quick) steps=10 warmup=2 rounds=1 epochs=20 dcgan_epochs=5 ;;
    --smoke) steps=1 warmup=1 rounds=1 epochs=1 dcgan_epochs=1 size=16 dcgan_size=16
             check_size=16 smoke=1 specs=tensor ;;
    *) echo "gpu.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
for p in $parts_arg; do
  case " $all_parts " in *" $p "*) ;; *) echo "gpu.sh: unknown part '$p' (parts: $all_parts)" >&2; exit 2 ;; esac
done
want() { case " $parts_arg " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# the emulator (tests/emu/run.sh) runs --smoke in about 5 minutes
# and its parts run far slower than on a GPU: caps x 8 there
cap_x=1; [ $smoke = 1 ] && cap_x=8
[ -n "$budget" ] || { [ $smoke = 1 ] && budget=1200 || budget=420; }
GAN=${GAN:-build/gan}
PY=${PYTHON:-python3}
# the photos: beside the checkout, else those bench/pack_gpu.sh packed (a
# device machine gets the checkout alone)
if [ -z "${DATA:-}" ]; then
  DATA=../shared/data/strawberries
  [ -d "$DATA" ] || DATA=.gpu/data/strawberries
fi
TEST_CUDA=${TEST_CUDA:-build/tests/test_cuda}
torch_ld=${LD_LIBRARY_PATH:-}   # PyTorch keeps its own cuBLAS (below)
[ -x "$GAN" ] || { echo "gpu.sh: $GAN not found: run ./build.sh first" >&2; exit 2; }

# cuBLAS for gan (loaded at run time, cuda/blas.cu): the toolkit's, else
# PyTorch's nvidia-cublas wheel, when gan does not find libcublas.so.13 by
# itself (a device machine's toolkit may not be where gan looks)
"$GAN" --version >/dev/null 2>&1 || { echo "gpu.sh: $GAN does not start:" >&2; "$GAN" --version; exit 2; }
if ! "$GAN" -e 'assert(gan.cublas())' >/dev/null 2>&1; then
  d=$({ ls -d /usr/local/cuda*/lib64 /usr/local/cuda*/lib /usr/local/cuda*/targets/*/lib 2>/dev/null
        $PY -c 'import glob, site
for p in site.getsitepackages() + [site.getusersitepackages()]:
    for f in glob.glob(p + "/nvidia/**/libcublas.so.*", recursive=True): print(f.rsplit("/", 1)[0])' \
          2>/dev/null; } | while read -r x; do [ -e "$x/libcublas.so.13" ] && echo "$x"; done |
      head -1)
  [ -n "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" &&
    echo "gpu.sh: cuBLAS from $d"
  "$GAN" -e 'assert(gan.cublas())' >/dev/null 2>&1 ||
    { echo "gpu.sh: $GAN finds no cuBLAS:" >&2; "$GAN" -e 'print(select(2, gan.cublas()))'; exit 2; }
fi

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
t_begin=$(date +%s)
# what a part left, for the table (set as each part runs)
ck_test="not run" ck_steps="not run" ck_im2col="not run" ck_specs="not run"
declare -A wall parts rc_seed
sample="" dwall="" dms="" drc_text="not run" swd=""
# within CAP CMD...: CMD under timeout(1), for at most CAP seconds and never
# past the budget; 124 when cut short, 125 (nothing run) when the budget has
# under 10 s left
within() {
  local cap=$(($1 * cap_x)) left
  shift
  left=$((t_begin + budget - $(date +%s)))
  [ "$left" -lt "$cap" ] && cap=$left
  if [ "$cap" -lt 10 ]; then
    echo "  skipped: the --budget of $budget s is spent" >&2
    return 125
  fi
  timeout -k 20 "$cap" "$@"  # (-k: a checkpoint being written on SIGTERM)
}
# what a part's exit status says, for the table
rc_text() {
  case $1 in 0) echo "rc 0" ;; 124|137) echo "cut at its time limit" ;; 125) echo "skipped: no time left" ;; *) echo "rc $1" ;; esac
}

echo "## device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -2
"$GAN" --version
case "$GAN" in *.gpu/gan) [ -f .gpu/VERSION ] && echo "packed from: $(cat .gpu/VERSION)" ;; esac
echo "data: $DATA"

if ! "$GAN" -e 'assert(pcall(gan.zeros, 1, "cuda"))' >/dev/null 2>&1; then
  echo "gpu.sh: no usable GPU here ($("$GAN" --version | tail -1)); nothing measured" >&2
  exit 77
fi

# cuDNN for the convolutions: the wheel PyTorch brings, if gan finds none
if [ -z "${GAN_CUDNN:-}" ] && ! "$GAN" --version | grep -q "built without cuDNN" &&
   ! "$GAN" -e 'assert(gan.cudnn())' >/dev/null 2>&1; then
  d=$($PY -c 'import glob, os, site
c = []
for p in site.getsitepackages() + [site.getusersitepackages()]:
    c += glob.glob(os.path.join(p, "nvidia", "**", "libcudnn.so.9"), recursive=True)
c.sort(key=lambda f: ("cu12" in f, f))  # the CUDA 13 one first
print(os.path.dirname(c[0]) if c else "")' 2>/dev/null)
  [ -n "$d" ] && export GAN_CUDNN=$d
fi
echo "cublas: $("$GAN" -e 'print(gan.cublas())')"
echo "cudnn: $("$GAN" -e 'print(gan.cudnn())')"

status=0
# cuDNN when it loads, forced (GAN_CUDA_CONV=cudnn), so that a failure is a
# failure, not auto's fall back to im2col
conv=im2col; "$GAN" -e 'assert(gan.cudnn())' >/dev/null 2>&1 && conv=cudnn
# a check's failures and its summary (not only its last lines: the FAIL
# lines are what a first GPU run needs)
summary() { grep -E 'FAIL|fail|error|passed|skipped|rc ' "$1" | tail -25; }
last_line() { grep -E 'passed|failed' "$1" | tail -1; }
# run_check NAME CAP CMD...: a check, under within, its log $log/NAME.txt;
# prints its failures and summary, fails this script if it failed, and
# leaves its summary for the table in $ck
run_check() {
  local f="$log/$1.txt" cap=$2 rc
  shift 2
  within "$cap" "$@" > "$f" 2>&1
  rc=$?; echo "rc $rc" >> "$f"; summary "$f"
  [ $rc -eq 0 ] || status=1
  ck="$(last_line "$f") ($(rc_text $rc))"
}
val() { awk -v k="$1" '$1 == k { print $2 }' "$2" | tail -1; }
med() { [ -f "$1" ] || { echo "n/a"; return; }; sort -g "$1" | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

table() {
  echo "| what | engine | pytorch | engine/pytorch |"
  echo "| --- | --- | --- | --- |"
  echo "| tests/test_cuda: every op against the CPU | $ck_test | | |"
  echo "| bench/gpu_steps.lua: modules and steps against the CPU (conv: ${conv:-?}) | $ck_steps | | |"
  echo "| bench/gpu_steps.lua with GAN_CUDA_CONV=im2col | $ck_im2col | | |"
  echo "| the specs on the GPU (GAN_TEST_DEVICE=cuda: $specs) | $ck_specs | | |"
  for prec in fp32 tf32; do
    e=$(med "$log/ems_$prec"); t=$(med "$log/tms_$prec"); q=$(med "$log/ratio_$prec")
    echo "| step ms, $prec, ${size}x${size} (median) | $e | $t | $q |"
  done
  for prec in fp32 tf32; do
    echo "| step ms, $prec, values read synchronously (5 waits per step) | $(med "$log/syncms_$prec") | | |"
    echo "| step ms, $prec, values not read at all | $(med "$log/nonems_$prec") | | |"
  done
  for prec in fp32 tf32; do
    f=$(val floor_ms "$log/floor_$prec" 2>/dev/null); e=$(med "$log/ems_$prec")
    r=$(echo "$e ${f:-x}" | awk '$1 + 0 > 0 && $2 + 0 > 0 { printf "%.2f", $1 / $2 }')
    echo "| step floor ms, $prec: cuBLAS products + Adam's traffic at the device's bandwidth | ${f:-n/a} (the engine's step: ${r:-n/a} x this) | | |"
  done
  em=$(val peak_gpu_mb "$log/e_fp32_1" 2>/dev/null); tm=$(val peak_gpu_mb "$log/t_fp32_1" 2>/dev/null)
  mq=n/a; [ -n "$em" ] && [ -n "$tm" ] && mq=$(echo "$em $tm" | awk '{ printf "%.2f", $1 / $2 }')
  echo "| peak GPU memory MB, fp32 | ${em:-n/a} | ${tm:-n/a} | $mq |"
  for prec in fp32 tf32; do
    echo "| full seed run, $epochs epochs at ${size}x${size}, $prec, s (${rc_seed[$prec]:-not run}) | ${wall[$prec]:-n/a} (${parts[$prec]:-no breakdown}) | | |"
  done
  echo "| a sample step's wait for its grid (${size}x${size}, 10 images) | ${sample:-n/a} | | |"
  echo "| DCGAN ${dcgan_size}px width 32, $dcgan_epochs epochs, s ($drc_text) | ${dwall:-n/a} (${dms:-n/a} ms/step, data and samples included) | | |"
  echo "| DCGAN samples, SWD x1e3, 400 samples vs the training photos | ${swd:-n/a} | | |"
}
# the table so far, and every log, to $OUT (after each part)
save_out() {
  [ -n "${OUT:-}" ] || return 0
  { date -u; nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null
    echo "after $(( $(date +%s) - t_begin )) s of a --budget of $budget s"; echo; table; } \
    > "$OUT/gpu_bench.md"
  tar czf "$OUT/gpu_logs.tgz" -C "$log" --exclude='*.ckpt*' --exclude='*.png' --exclude='*.html' . \
    2>/dev/null
}
if want check; then
  echo "## correctness"
  if [ -x "$TEST_CUDA" ]; then
    run_check test_cuda 180 "$TEST_CUDA"; ck_test=$ck
  else
    echo "$TEST_CUDA missing"; status=1
  fi
  echo "gpu_steps, convolutions on $conv ($("$GAN" --version | grep -o 'cuDNN[^)]*')):"
  GAN_CUDA_CONV=$conv run_check gpu_steps 150 "$GAN" bench/gpu_steps.lua --size "$check_size"
  ck_steps=$ck
fi
if want step; then
  echo "## benchmark ($rounds rounds of $steps steps, ${size}x${size}x3, batch 100)"
  for prec in fp32 tf32; do
    tflag=""; [ $prec = tf32 ] && tflag="--tf32"
    for r in $(seq "$rounds"); do
      within 90 "$GAN" bench/step.lua --device cuda --precision $prec --steps "$steps" \
        --warmup "$warmup" --size "$size" > "$log/e_${prec}_$r" 2>&1
      LD_LIBRARY_PATH=$torch_ld within 120 "$PY" bench/torch_step.py --device cuda $tflag \
        --steps "$steps" --warmup "$warmup" --size "$size" > "$log/t_${prec}_$r" 2>&1
      for mode in sync none; do
        within 90 "$GAN" bench/step.lua --device cuda --precision $prec --steps "$steps" \
          --warmup "$warmup" --size "$size" --reads $mode > "$log/${mode}_${prec}_$r" 2>&1
      done
      # each run's time goes to ${f}ms_$prec; the engine's failures fail this
      # script, PyTorch's are shown
      for f in e t sync none; do
        v=$(val step_ms "$log/${f}_${prec}_$r")
        if [ -n "$v" ]; then echo "$v" >> "$log/${f}ms_$prec"; continue; fi
        echo "  bench/$([ $f = t ] && echo torch_step.py || echo "step.lua ($f)") gave no step_ms:"
        tail -3 "$log/${f}_${prec}_$r" | sed 's/^/    /'
        [ $f = t ] || status=1
      done
      e=$(val step_ms "$log/e_${prec}_$r"); t=$(val step_ms "$log/t_${prec}_$r")
      echo "round $r $prec: engine ${e:-error} ms, pytorch ${t:-error} ms"
      [ -n "$e" ] && [ -n "$t" ] && echo "$e $t" | awk '{ print $1 / $2 }' >> "$log/ratio_$prec"
    done
    save_out
  done
fi
if want seed; then
  for prec in fp32 tf32; do
    echo "## full seed run ($epochs epochs at ${size}x${size}, $prec)"
    t0=$(date +%s.%N)
    within 300 "$GAN" scripts/strawberry.lua --device cuda --precision $prec --data "$DATA" \
      --epochs "$epochs" --size "$size" --out "$log/run_$prec" > "$log/run_$prec.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    rc_seed[$prec]=$(rc_text $rc)
    w=$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }'); [ $rc -eq 125 ] && w=""
    wall[$prec]=$w
    [ $rc -eq 0 ] || { echo "seed run: ${rc_seed[$prec]}"; tail -5 "$log/run_$prec.log"; status=1; }
    # the run's last line: "done: E epochs, N steps in T s (training T1 s, checkpoints T2 s,
    # ...) after T0 s of start-up; ..."
    p=$(sed -n 's/^done: .* s (\(training [^)]*\)).*/\1/p' "$log/run_$prec.log" | tail -1)
    startup=$(sed -n 's/^done: .* after \([0-9.]*\) s of start-up.*/\1/p' "$log/run_$prec.log" | tail -1)
    [ -n "$p" ] && p="start-up ${startup:-?} s, $p" && echo "seed run: $w s in all; $p"
    parts[$prec]=$p
    rm -f "$log/run_$prec"/checkpoints/*.ckpt*  # 1.2 GB each (and a .tmp a kill left)
    save_out
  done
fi
if want floor; then
  echo "## the step's floor (bench/floor.lua: cuBLAS at the step's shapes, Adam at the device's bandwidth)"
  fargs="--verbose"; [ $smoke = 1 ] && fargs="--verbose --reps 1 --warm 1 --copy-mb 1 --runs 2"
  for prec in fp32 tf32; do
    # shellcheck disable=SC2086  # $fargs is a list of options
    if within 90 "$GAN" bench/floor.lua --device cuda --precision $prec --size "$size" $fargs \
         > "$log/floor_$prec" 2>&1; then
      echo "$prec: floor $(val floor_ms "$log/floor_$prec") ms (products $(val products_ms "$log/floor_$prec") ms at $(val sgemm_gflops "$log/floor_$prec") GFLOP/s, Adam $(val adam_ms "$log/floor_$prec") ms at $(val bw_gbs "$log/floor_$prec") GB/s)"
    else
      echo "floor.lua $prec failed:"; tail -3 "$log/floor_$prec"; status=1
    fi
  done
  save_out
fi
if want dcgan; then
  echo "## DCGAN at ${dcgan_size}x${dcgan_size} ($dcgan_epochs epochs)"
  t0=$(date +%s.%N)
  GAN_CUDA_CONV=$conv within 240 "$GAN" scripts/strawberry_dcgan.lua --device cuda --data "$DATA" --size "$dcgan_size" \
    --width 32 --batch 32 --translate 0.125 --no-flip --epochs "$dcgan_epochs" --out "$log/dcgan" \
    > "$log/dcgan.log" 2>&1
  drc=$?
  t1=$(date +%s.%N)
  drc_text=$(rc_text $drc)
  dwall=$(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }'); [ $drc -eq 125 ] && dwall=""
  dsteps=$(awk '/^data: .* per epoch/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ /^batch(es)?$/) print $i }' "$log/dcgan.log" | head -1)
  dms=$(echo "$dwall ${dsteps:-0} $dcgan_epochs" | awk '$2 > 0 { printf "%.2f", 1000 * $1 / ($2 * $3) }')
  if [ $drc -eq 0 ] && [ -f "$log/dcgan/checkpoints/last.ckpt" ]; then
    within 120 "$GAN" scripts/evaluate.lua --real "$DATA" \
      --checkpoint "$log/dcgan/checkpoints/last.ckpt" --n 400 > "$log/eval.txt" 2>&1 || status=1
    swd=$(awk '/samples vs real/ { s = $NF } /ratio to the floor/ { r = $NF } END { if (s != "") printf "%s (%sx the floor)", s, r }' "$log/eval.txt")
    tail -12 "$log/eval.txt"
  else
    echo "dcgan run: $drc_text"; tail -5 "$log/dcgan.log"; status=1
  fi
  if [ -n "${OUT:-}" ]; then
    cp "$log/dcgan/samples/epoch_$(printf %04d "$dcgan_epochs").png" "$OUT/dcgan_samples.png" \
      2>/dev/null
  fi
  save_out
fi
if want sample; then
  echo "## sample step (bench/sample_step.lua)"
  srounds=9; [ $smoke = 1 ] && srounds=1
  sample=$(within 60 "$GAN" bench/sample_step.lua --device cuda --size "$size" --rounds $srounds \
    --gap 0.1 2>&1)
  src=$?
  echo "$sample" | tail -3
  [ $src -eq 0 ] || status=1
  sample=$(echo "$sample" | sed -n 's/.*the grid.s own wait \(.*\)/\1/p' | tail -1)
  save_out
fi
if want check; then
  if [ "$conv" = cudnn ]; then  # (--smoke too: CI checks im2col's steps on the emulator)
    echo "gpu_steps, convolutions on im2col (GAN_CUDA_CONV=im2col):"
    GAN_CUDA_CONV=im2col run_check gpu_steps_im2col 150 "$GAN" bench/gpu_steps.lua \
      --size "$check_size"
    ck_im2col=$ck
  fi
fi
# the Busted specs that take their device from GAN_TEST_DEVICE, on the GPU,
# run by gan itself (busted is a Lua script): busted from .gpu/lua (what
# bench/pack_gpu.sh packed), else this machine's; --smoke runs one spec
# (tests/emu/run.sh runs them all on the emulator); --specs names them
if want specs; then
  echo "## specs on the GPU (GAN_TEST_DEVICE=cuda)"
  busted=""
  if [ -f .gpu/lua/busted ]; then
    busted=.gpu/lua/busted
    export LUA_PATH="$PWD/.gpu/lua/share/?.lua;$PWD/.gpu/lua/share/?/init.lua;;"
    export LUA_CPATH="$PWD/.gpu/lua/lib/?.so;;"
  else
    busted=$(command -v busted)
  fi
  if [ -n "$busted" ]; then
    gan_abs=$(cd "$(dirname "$GAN")" && pwd)/$(basename "$GAN")
    files=(); for x in $specs; do files+=("spec/${x}_spec.lua"); done
    GAN_TEST_DEVICE=cuda GAN_BIN="$gan_abs" GAN_ROOT="$PWD" GAN_BUILD="$(dirname "$gan_abs")" \
      within 200 "$GAN" "$busted" -o utfTerminal "${files[@]}" \
      > "$log/specs.txt" 2>&1
    rc=$?; echo "rc $rc" >> "$log/specs.txt"
    grep -E 'successes|rc ' "$log/specs.txt"
    grep -B2 -A12 -E '^(Failure|Error) ' "$log/specs.txt" | head -80
    [ $rc -eq 0 ] || status=1
    ck_specs="$(grep -E 'successes' "$log/specs.txt" | tail -1 | sed 's/ : .*//') ($(rc_text $rc))"
  else
    echo "no busted here or in .gpu/lua: specs not run"; ck_specs="not run: no busted"
  fi
fi

table
save_out
echo "(in $(( $(date +%s) - t_begin )) s, of a --budget of $budget s)"
exit $status
