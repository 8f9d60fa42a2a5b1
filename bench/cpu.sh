#!/usr/bin/env bash
# bench/cpu.sh: the CPU benchmark of the seed's training step (see
# bench/README.md).  Runs from any folder; needs build/gan (./build.sh).
#
#   bench/cpu.sh [--steps N] [--warmup W] [--rounds R] [--with-keras] [--smoke]
#
# Rounds alternate engine, PyTorch[, Keras]; each peer's ratio is taken
# within a round (same invocation, neighbouring runs) and the table shows
# the median over rounds.  Writes the table to stdout and, when OUT is set,
# to $OUT/cpu_bench.md.
#
# Environment: PYTHON (the interpreter with torch; default /usr/bin/python3
# when it imports torch, else python3; PYTHON=false skips PyTorch), GAN (the
# engine binary, default build/gan), DATA (images to decode, default
# ../shared/data/riseholme-ripe).  OPENBLAS_NUM_THREADS / OMP_NUM_THREADS
# are not set here: whatever the caller sets, every program inherits.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root" || exit 1

steps=20 warmup=3 rounds=3 keras=0 smoke=0 size=128 batch=100
usage() {
  sed -n '4,16p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF
options:
  --steps N      timed steps per run (default 20)
  --warmup W     untimed steps after the first (default 3)
  --rounds R     engine/peer alternations (default 3)
  --size S       image side (default 128)
  --batch B      batch size (default 100)
  --with-keras   also run Keras 3 on TensorFlow; creates bench/.venv-keras
                 with pip install tensorflow-cpu on first use (needs PyPI)
  --smoke        1 step, no warmup, 1 round, a quick floor (the CI run)
EOF
}
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --with-keras) keras=1; shift ;;
    --smoke) smoke=1; steps=1; warmup=0; rounds=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cpu.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
for v in "$steps" "$warmup" "$rounds" "$size" "$batch"; do
  case "$v" in ''|*[!0-9]*) echo "cpu.sh: '$v' is not a count" >&2; exit 2 ;; esac
done
[ "$steps" -ge 1 ] && [ "$rounds" -ge 1 ] || { echo "cpu.sh: --steps and --rounds must be >= 1" >&2; exit 2; }

GAN=${GAN:-build/gan}
if [ ! -x "$GAN" ]; then
  echo "cpu.sh: $GAN not found: build the engine first with ./build.sh" >&2
  exit 1
fi
DATA=${DATA:-../shared/data/riseholme-ripe}
if [ -z "${PYTHON+x}" ]; then
  PYTHON=python3
  if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then PYTHON=/usr/bin/python3; fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
log() { echo "cpu.sh: $*" >&2; }
# key FILE NAME -> the value of the line "NAME value" in FILE (empty if none)
key() { awk -v k="$2" '$1 == k { print $2; exit }' "$1" 2>/dev/null; }
# median of the numbers on stdin (empty if none)
median() {
  sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) exit;
    if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# --- which peers run --------------------------------------------------------
torch_ok=0
if "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
  torch_ok=1
  torch_ver=$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null)
else
  echo "pytorch: not installed (apt-get install python3-torch); skipped"
fi
keras_ok=0
KPY=$here/.venv-keras/bin/python
if [ "$keras" = 1 ]; then
  if [ ! -x "$KPY" ] || ! "$KPY" -c 'import keras, tensorflow' >/dev/null 2>&1; then
    log "creating bench/.venv-keras (pip install tensorflow-cpu; needs PyPI, a few minutes)"
    python3 -m venv "$here/.venv-keras" &&
      "$here/.venv-keras/bin/pip" install -q --disable-pip-version-check tensorflow-cpu >&2
  fi
  if "$KPY" -c 'import keras, tensorflow' >/dev/null 2>&1; then
    keras_ok=1
    keras_ver=$("$KPY" -c 'import keras, tensorflow as tf; print(keras.__version__, "/ TF", tf.__version__)' 2>/dev/null)
  else
    echo "keras: could not install tensorflow-cpu into bench/.venv-keras; skipped"
  fi
fi

# --- the rounds ---------------------------------------------------------------
args=(--steps "$steps" --warmup "$warmup" --size "$size" --batch "$batch")
# run NAME ROUND CMD...: runs one program, keeps its lines in $tmp/NAME.ROUND
# and adds the start-to-first-step time to them.
run() {
  local name=$1 r=$2; shift 2
  local f=$tmp/$name.$r t0 wall
  log "round $r/$rounds: $name"
  t0=$(now)
  if ! "$@" >"$f" 2>"$f.err"; then
    log "$name failed:"; tail -5 "$f.err" >&2
    return 1
  fi
  wall=$(key "$f" first_step_wall)
  [ -n "$wall" ] && echo "start_s $(calc %.3f "$wall - $t0")" >>"$f"
  return 0
}
# The floor is measured in every round too, next to the engine's run, so
# that engine/floor compares timings taken under the same machine load.
floor_args=(--size "$size" --batch "$batch" --verbose)
[ $smoke = 1 ] && floor_args=(--size "$size" --batch "$batch" --warm 1 --reps 1 --copy-mb 64)
engine_fail=0
for r in $(seq 1 "$rounds"); do
  run engine "$r" "$GAN" bench/step.lua "${args[@]}" || engine_fail=1
  log "round $r/$rounds: floor (sgemm at the step's shapes, a copy and an axpy for the bandwidth)"
  "$GAN" bench/floor.lua "${floor_args[@]}" >"$tmp/floor.$r" 2>"$tmp/floor.$r.err" ||
    { log "floor.lua failed: $(tail -1 "$tmp/floor.$r.err")"; engine_fail=1; }
  [ $torch_ok = 1 ] && { run torch "$r" "$PYTHON" bench/torch_step.py "${args[@]}" || torch_ok=0; }
  [ $keras_ok = 1 ] && { run keras "$r" "$KPY" bench/keras_step.py "${args[@]}" || keras_ok=0; }
done
[ $engine_fail = 0 ] || { log "the engine's step failed"; exit 1; }

# --- the images, the start-up --------------------------------------
img_rate="" img_n="" img_s=""
if [ -d "$DATA" ]; then
  log "images: decoding and resizing $DATA"
  if "$GAN" bench/images.lua --data "$DATA" --size "$size" >"$tmp/images" 2>"$tmp/images.err"; then
    img_rate=$(key "$tmp/images" images_per_s); img_n=$(key "$tmp/images" images)
    img_s=$(key "$tmp/images" images_s)
  else
    log "images.lua failed: $(tail -1 "$tmp/images.err")"
  fi
else
  log "images: $DATA not found; skipped"
fi
# Bare start-up: the engine loading its Lua library, Python importing torch.
startup() { local t0; t0=$(now); "$@" >/dev/null 2>&1 || return 1; calc %.3f "$(now) - $t0"; }
n_start=3; [ $smoke = 1 ] && n_start=1
gan_start=$(for _ in $(seq $n_start); do startup "$GAN" -e 'require "gan"'; echo; done | median)
torch_start=""
[ $torch_ok = 1 ] && torch_start=$(for _ in $(seq $n_start); do startup "$PYTHON" -c 'import torch'; echo; done | median)

# --- the table ------------------------------------------------------------------
# col NAME KEY -> median over rounds of KEY for NAME
col() { for r in $(seq 1 "$rounds"); do key "$tmp/$1.$r" "$2"; done | median; }
# ratio PEER KEY [ENGINE_KEY] -> median over rounds of the engine's
# ENGINE_KEY (default KEY) over PEER's KEY within each round
ratio() {
  for r in $(seq 1 "$rounds"); do
    local a b
    a=$(key "$tmp/engine.$r" "${3:-$2}"); b=$(key "$tmp/$1.$r" "$2")
    [ -n "$a" ] && [ -n "$b" ] && calc %.6f "$a / $b" && echo
  done | median
}
fmt() { [ -n "$2" ] && calc "$1" "$2" || echo "-"; }
mb() { [ -n "$1" ] && calc %.0f "$1 / 1024" || echo "-"; }

e_ms=$(col engine step_ms)
t_ms="" k_ms="" t_rss="" k_rss="" t_st="" k_st=""
if [ $torch_ok = 1 ]; then t_ms=$(col torch step_ms); t_rss=$(col torch peak_rss_kb); t_st=$(col torch start_s); fi
if [ $keras_ok = 1 ]; then k_ms=$(col keras step_ms); k_rss=$(col keras peak_rss_kb); k_st=$(col keras start_s); fi
e_rss=$(col engine peak_rss_kb) e_st=$(col engine start_s)
r_ms_t="" r_rss_t="" r_st_t="" r_ms_k="" r_rss_k="" r_st_k=""
if [ $torch_ok = 1 ]; then r_ms_t=$(ratio torch step_ms); r_rss_t=$(ratio torch peak_rss_kb); r_st_t=$(ratio torch start_s); fi
if [ $keras_ok = 1 ]; then r_ms_k=$(ratio keras step_ms); r_rss_k=$(ratio keras peak_rss_kb); r_st_k=$(ratio keras start_s); fi
floor_ms=$(col floor floor_ms)
r_floor=$(ratio floor floor_ms step_ms)
fl() { col floor "$1"; }

{
  echo "## CPU benchmark: seed step, ${size}x${size}x3, batch $batch, latent 100"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');"\
       "steps $steps, warmup $warmup, rounds $rounds;"\
       "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset} OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}"
  [ $torch_ok = 1 ] && echo "PyTorch $torch_ver ($PYTHON, torch.set_num_threads($(nproc)))."
  [ $keras_ok = 1 ] && echo "Keras $keras_ver (bench/.venv-keras)."
  echo
  echo "| what | engine | pytorch | keras | engine/pytorch | engine/keras |"
  echo "|---|---|---|---|---|---|"
  echo "| step ms (median) | $(fmt %.1f "$e_ms") | $(fmt %.1f "$t_ms") | $(fmt %.1f "$k_ms") | $(fmt %.2f "$r_ms_t") | $(fmt %.2f "$r_ms_k") |"
  echo "| peak RSS MB | $(mb "$e_rss") | $(mb "$t_rss") | $(mb "$k_rss") | $(fmt %.2f "$r_rss_t") | $(fmt %.2f "$r_rss_k") |"
  echo "| start to end of first step s | $(fmt %.2f "$e_st") | $(fmt %.2f "$t_st") | $(fmt %.2f "$k_st") | $(fmt %.2f "$r_st_t") | $(fmt %.2f "$r_st_k") |"
  echo
  echo "- floor ms (median over rounds): $(fmt %.1f "$floor_ms") (products $(fmt %.1f "$(fl products_ms)") ms:"\
       "$(fl gflop) GFLOP at $(fl sgemm_gflops) GFLOP/s sgemm;"\
       "Adam $(fmt %.1f "$(fl adam_ms)") ms: $(fl adam_mb) MB at $(fl bw_gbs) GB/s copy)"
  echo "- engine/floor (median of per-round ratios): $(fmt %.2f "$r_floor")"
  e_tens=$(col engine tensor_peak_kb)
  echo "- engine peak RSS / its tensors at their peak (parameters, gradients, Adam moments,"\
       "activations, batch: $(mb "$e_tens") MB): $(fmt %.2f "$(ratio engine tensor_peak_kb peak_rss_kb)")"
  echo "- engine step 1 alone: $(fmt %.2f "$(col engine first_step_s)") s; building the models before it"\
       "(weight init): $(fmt %.2f "$(col engine init_s)") s; fastest engine step $(fmt %.1f "$(col engine step_ms_min)") ms"
  if [ -n "$img_rate" ]; then
    echo "- images/s (decode + resize to ${size}x${size}, engine): $img_rate ($img_n images in $img_s s)"
  else
    echo "- images/s: skipped"
  fi
  echo "- bare start-up s: gan -e 'require \"gan\"' $(fmt %.3f "$gan_start");"\
       "python3 -c 'import torch' $(fmt %.3f "$torch_start")"
  [ $torch_ok = 1 ] || echo "- pytorch: not installed (apt-get install python3-torch); skipped"
  [ "$keras" = 1 ] || echo "- keras: not run (bench/cpu.sh --with-keras)"
} >"$tmp/table.md"
cat "$tmp/table.md"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT" && cp "$tmp/table.md" "$OUT/cpu_bench.md"
fi
if [ $smoke = 0 ] && [ -s "$tmp/floor.1" ]; then
  echo; echo "sgemm shapes of one step (floor.lua --verbose, round 1):"; grep '^gemm' "$tmp/floor.1"
fi
exit 0
