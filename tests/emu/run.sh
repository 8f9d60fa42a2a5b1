#!/bin/bash
# tests/emu/run.sh: runs the CUDA backend's own sources without a GPU, on the
# host emulator in this folder (cuda_runtime.h says what it models):
#   1. bench/gpu.sh --smoke, with this gan and test_cuda: tests/test_cuda.c
#      (every backend slot against the CPU backend), bench/gpu_steps.lua
#      (the modules, 20 seed steps and 10 DCGAN steps, CUDA against the
#      CPU; the convolutions on cuDNN, then again on im2col), and the GPU
#      benchmark's harness end to end, at 16x16 on a
#      generated data set (its timings are the emulator's, and meaningless);
#      then test_cuda again with EMU_REVERSE=1 (blocks and threads in
#      reverse order);
#   2. scripts/strawberry.lua --device cuda for 2 epochs of a tiny data set
#      -- the training loop, its reads and uploads -- whose loss.csv must
#      match the same run on the CPU within 1e-3;
#   3. what one training step asks of the GPU: two runs of that script on
#      cuda, of 36 and 44 images in batches of 4, so of 9 and 11 steps
#      (after the 8 uploads that fill cuda_upload's ring), counted by the
#      emulator
#      (EMU_STATS, emu.cpp).  Per step, no cudaMalloc, cudaFree or pinned
#      allocation, no stream synchronisation, and nothing copied to the host
#      but the step's 4 values (16 bytes, one reader); it prints the kernel
#      launches (by kernel) and products per step, and fails if they are
#      more than now (83 and 45); and the host's own time per seed step at
#      128x128 with no kernel run (EMU_NOEXEC).
#   5. cuDNN's fallback: a DCGAN run with the convolutions on auto, whose
#      cuDNN forward or filter gradient fails its checks, or the filter
#      gradient's heuristics fail (EMU_CUDNN_FAIL), warns once, moves to
#      im2col and gives the losses of the same run on the CPU; one whose
#      filter gradient fails part way stops instead.
#   6. the Busted specs that take their device from GAN_TEST_DEVICE, with
#      it set to cuda, run by this gan (busted is a Lua script, and gan a
#      Lua 5.4 with gan in it): their tensors, modules, checkpoints, data
#      sets, training runs and bad inputs on the emulated GPU: those
#      spec/support/on_device.txt lists.  EMU_SPECS="tensor nn" runs some.
# No GPU, driver or nvcc needed: g++, cmake, OpenBLAS and Lua 5.4 (what
# ./build.sh installs).  cuDNN is cudnn_emu.cpp, built as $out/lib/
# libcudnn.so.9 and loaded by cuda/cudnn.cu through GAN_CUDNN, as the real
# one would be: test_cuda and gpu_steps run the convolutions on it and on
# cuda/im2col.cu.
#
#   tests/emu/run.sh [BUILD_DIR]       (default /tmp/gan-emu)
#   EMU_REVERSE=1 tests/emu/run.sh     blocks and threads in reverse order
#   SAN=-fsanitize=address,undefined tests/emu/run.sh
#
#   4. a GPU whose cuBLAS cannot be loaded (GAN_CUBLAS names a missing
#      file): --device auto says so and trains on the cpu, and --device
#      cuda is an error that says where it looked.  A kernel that faults
#      (EMU_FAULT_AT, sticky as on a GPU) stops a run with one message
#      that names the fault and CUDA_LAUNCH_BLOCKING=1.
# Exit status 0 only if all six pass.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-/tmp/gan-emu}
san=${SAN:-}
emu_specs=${EMU_SPECS:-$(grep -v '^#' "$root/spec/support/on_device.txt")}
# the version cmake gives, which the specs check the form of
version=$(sed -n 's/^project(gan VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
mkdir -p "$out/src" "$out/obj" "$out/bin"
blas=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
blaslib=$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
stb=$(pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb)
lua=$(pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
lualib=$(find /usr/lib /usr/local/lib -name liblua5.4.a 2>/dev/null | head -1 || true)
[ -n "$lualib" ] || { echo "emu: no liblua5.4.a (Debian's liblua5.4-dev; ./build.sh installs it)" >&2; exit 2; }
cxx="g++ -O2 -g $san -std=c++17 -ffp-contract=off -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas"
cc="gcc -O2 -g $san -std=gnu11 -fopenmp -Wall -Wextra"
pids=()
bg() { "$@" & pids+=($!); }
for f in "$root"/cuda/*.cu; do
  b=$(basename "$f" .cu)
  lua5.4 "$root/tests/emu/launch.lua" "$f" "$out/src/$b.cpp" "$root"/cuda/*.cuh
  bg $cxx -DGAN_HAVE_CUDNN=1 -I"$root/tests/emu" -I"$root/cuda" -I"$root/core" \
    -c "$out/src/$b.cpp" -o "$out/obj/cuda_$b.o"
done
# cuDNN: a library of its own, which the programs below load through GAN_CUDNN
mkdir -p "$out/lib"
bg $cxx -fPIC -shared $blas -I"$root/tests/emu" "$root/tests/emu/cudnn_emu.cpp" \
  -o "$out/lib/libcudnn.so.9" $blaslib
export GAN_CUDNN="$out/lib"
# the fibers switch with _longjmp, between stacks: no fortify check of that;
# under the sanitizers, with swapcontext only (EMU_UCONTEXT)
emu_flags="-U_FORTIFY_SOURCE"
[ -n "$san" ] && emu_flags="$emu_flags -DEMU_UCONTEXT"
bg $cxx $emu_flags $blas -I"$root/tests/emu" -c "$root/tests/emu/emu.cpp" -o "$out/obj/emu.o"
# stb with the engine's flags for it (core/stb_impl.flags says why)
stb_flags=$(sed -n 's/^always: //p' "$root/core/stb_impl.flags")
[ -n "$san" ] && stb_flags="$stb_flags $(sed -n 's/^sanitize: //p' "$root/core/stb_impl.flags")"
for f in "$root"/core/*.c; do
  b=$(basename "$f" .c)
  [ "$b" = nocuda ] && continue
  extra=""; [ "$b" = stb_impl ] && extra=$stb_flags
  bg $cc -w $extra $blas $stb -I"$root/core" -c "$f" -o "$out/obj/core_$b.o"
done
bg $cc -Wshadow -DGAN_HAVE_CUDA=1 -I"$root/core" -I"$root/cuda" -c "$root/tests/test_cuda.c" \
  -o "$out/bin/test_cuda.o"
# the gan program, with the Lua half of the module embedded as cmake does
cmake -DOUT="$out/src/gan_lua_sources.c" -DSRC_DIR="$root/bindings/lua" \
  -P "$root/cmake/embed.cmake"
for f in "$root"/bindings/*.c "$out/src/gan_lua_sources.c"; do
  b=$(basename "$f" .c)
  bg $cc -DGAN_HAVE_CUDA=1 -DGAN_VERSION="\"$version\"" $lua -I"$root/bindings" -I"$root/core" \
    -I"$root/cuda" -c "$f" -o "$out/bin/$b.o"
done
for p in "${pids[@]}"; do wait "$p"; done
g++ $san "$out"/obj/*.o "$out/bin/test_cuda.o" -o "$out/test_cuda_emu" $blaslib -fopenmp \
  -ldl -lm -rdynamic
g++ $san "$out"/obj/*.o $(ls "$out"/bin/*.o | grep -v test_cuda.o) -o "$out/gan" \
  "$lualib" $blaslib -fopenmp -ldl -lm -rdynamic
echo "emu: built $out/test_cuda_emu and $out/gan" >&2

# images DIR N SIDE SEED: N random SIDE x SIDE PNGs, DIR/001.png to DIR/N.png
images() {
  mkdir -p "$1"
  "$out/gan" -e "gan.seed($4) for i = 1, $2 do
    gan.images.save_grid(gan.rand(1, 3, $3, $3), ('$1/%03d.png'):format(i)) end"
}

# same_losses A B LINES WHAT: two loss.csv files of LINES lines (the header
# included) whose losses agree within 1e-3 relative
same_losses() {
  "$out/gan" -e "
  local function rows(p)
    local t = {}
    for line in io.lines(p) do t[#t + 1] = line end
    return t
  end
  local a, b = rows('$1'), rows('$2')
  assert(#a == $3 and #b == $3, 'loss.csv: ' .. #a .. ' and ' .. #b .. ' lines, not $3')
  local worst = 0
  for i = 2, #a do
    local x, y = {}, {}
    for v in a[i]:gmatch('[^,]+') do x[#x + 1] = tonumber(v) end
    for v in b[i]:gmatch('[^,]+') do y[#y + 1] = tonumber(v) end
    for k = 3, #x do worst = math.max(worst, math.abs(x[k] - y[k]) / math.max(1e-3, math.abs(y[k]))) end
  end
  print(('$4: largest relative difference %.2e'):format(worst))
  if worst > 1e-3 then os.exit(1) end"
}

status=0
# 1. TEST_CUDA_EMU: test_cuda queues smaller products where it only needs a queue
echo "emu: 1. bench/gpu.sh --smoke" >&2
run="$out/run"
rm -rf "$run"
images "$run/photos" 100 16 3
mkdir -p "$run/out"
(cd "$root" && GAN="$out/gan" TEST_CUDA="$out/test_cuda_emu" TEST_CUDA_EMU=1 DATA="$run/photos" \
  OUT="$run/out" bench/gpu.sh --smoke) || status=1
# what a device run brings back: the table (written after every part) and the logs
for f in gpu_bench.md gpu_logs.tgz; do
  [ -s "$run/out/$f" ] || { echo "emu: bench/gpu.sh --smoke wrote no \$OUT/$f" >&2; status=1; }
done
grep -q "passed, 0 failed" "$run/out/gpu_bench.md" ||
  { echo "emu: \$OUT/gpu_bench.md has no test_cuda summary" >&2; status=1; }
grep -q "GAN_CUDA_CONV=im2col | [0-9]* passed, 0 failed" "$run/out/gpu_bench.md" ||
  { echo "emu: \$OUT/gpu_bench.md has no gpu_steps summary on im2col" >&2; status=1; }
grep -q "at 16x16, tf32, s (rc 0) | [0-9.]* (start-up" "$run/out/gpu_bench.md" ||
  { echo "emu: \$OUT/gpu_bench.md has no seed run in tf32" >&2; status=1; }
grep -q "GAN_TEST_DEVICE=cuda: tensor) | [0-9]* successes / 0 failures" "$run/out/gpu_bench.md" ||
  { echo "emu: \$OUT/gpu_bench.md has no spec summary" >&2; status=1; }
# the same checks with the blocks of each launch, and the threads of each
# block, in reverse order: a GPU runs them in no set order (about 45 s)
echo "emu: 1. test_cuda again, with EMU_REVERSE=1" >&2
(cd "$root" && TEST_CUDA_EMU=1 EMU_REVERSE=1 "$out/test_cuda_emu" |
  tail -1 | grep "passed, 0 failed") || status=1
# 2.
echo "emu: 2. scripts/strawberry.lua on cuda and on cpu" >&2
images "$run/data" 20 8 1
for dev in cuda cpu; do
  (cd "$root" && "$out/gan" scripts/strawberry.lua --data "$run/data" --size 8 --batch 10 \
    --epochs 2 --samples 4 --out "$run/$dev" --device "$dev" 2>&1 | tail -1) || status=1
done
same_losses "$run/cuda/loss.csv" "$run/cpu/loss.csv" 3 "loss.csv on cuda vs cpu" || status=1
# 3.
echo "emu: 3. one training step's calls, counted" >&2
images "$run/b" 44 8 2
mkdir -p "$run/a" && cp "$run"/b/0{01..36}.png "$run/a/"   # b's first 36
for d in a b; do
  (cd "$root" && EMU_STATS="$run/$d.stats" "$out/gan" scripts/strawberry.lua --data "$run/$d" \
    --size 8 --batch 4 --epochs 1 --samples 4 --out "$run/out_$d" --device cuda 2>&1 |
    tail -1) || status=1
done
"$out/gan" -e "
  local function stats(p)
    local t = {}
    for line in io.lines(p) do
      local k, v = line:match('^(%S+) (%d+)$')
      t[k] = tonumber(v)
    end
    return t
  end
  local a, b, steps = stats('$run/a.stats'), stats('$run/b.stats'), 11 - 9
  local per, bad = {}, {}
  for k, v in pairs(b) do per[k] = (v - (a[k] or 0)) / steps end
  local function none(k, what)
    if per[k] ~= 0 then bad[#bad + 1] = ('%s: %g per step'):format(what, per[k]) end
  end
  none('malloc', 'cudaMalloc'); none('free', 'cudaFree'); none('host_alloc', 'cudaHostAlloc')
  none('free_host', 'cudaFreeHost'); none('stream_sync', 'cudaStreamSynchronize')
  -- no more launches or products than the step takes now (lower these
  -- when a change saves some): a fusion that silently stops applying fails
  local most_launches, most_gemms = 83, 45
  if per.launches > most_launches then
    bad[#bad + 1] = ('%g kernel launches per step, more than %d'):format(per.launches,
                                                                       most_launches)
  end
  if per.gemms > most_gemms then
    bad[#bad + 1] = ('%g products per step, more than %d'):format(per.gemms, most_gemms)
  end
  if per.copy_d2h_bytes ~= 16 or per.copy_d2h ~= 4 then
    bad[#bad + 1] = ('copies to the host: %g per step, %g bytes (want 4, 16)'):format(
      per.copy_d2h, per.copy_d2h_bytes)
  end
  print(('per training step: %g kernel launches, %g products, %g copies to the device, ' ..
    '%g to the host (%g bytes), %g event waits, %g cudaMalloc'):format(per.launches, per.gemms,
    per.copy_h2d, per.copy_d2h, per.copy_d2h_bytes, per.event_sync, per.malloc))
  local kernels = {}
  for k, v in pairs(per) do
    local name = k:match('^launch:(.*)')
    if name and v ~= 0 then kernels[#kernels + 1] = ('%s %g'):format(name, v) end
  end
  table.sort(kernels)
  print('  by kernel: ' .. table.concat(kernels, ', '))
  if #bad > 0 then print('a training step: ' .. table.concat(bad, '; ')) os.exit(1) end" ||
  status=1
# the host's own time per seed step (128x128, batch 100): Lua, the core's
# checks and the backend's bookkeeping, with no kernel or product run
# (EMU_NOEXEC): printed, not checked; a GPU driver adds its launch cost
(cd "$root" && EMU_NOEXEC=1 "$out/gan" bench/step.lua --device cuda --steps 50 \
  --warmup 5 | awk '$1 == "step_ms" { printf "host time per seed step, kernels not run: %s ms\n", $2 }') ||
  status=1
# 4.
echo "emu: 4. a GPU without cuBLAS (GAN_CUBLAS names a missing file); a kernel that faults" >&2
msg=$(GAN_CUBLAS=/nonexistent/cublas "$out/gan" -e 'gan.device("auto") print(gan.device())
  local ok, err = pcall(gan.device, "cuda") print(ok, err)' 2>&1) || status=1
echo "$msg"
for want in "gan: cannot use the GPU, using the cpu (CUDA backend initialisation: cuBLAS 13 could not be loaded: /nonexistent/cublas: cannot open" \
            "(GAN_CUBLAS is /nonexistent/cublas))" "^cpu\$" "^false.*device 'cuda' is not available: CUDA backend initialisation: cuBLAS 13"; do
  echo "$msg" | grep -q -- "$want" || { echo "emu: no line matching: $want" >&2; status=1; }
done
# a kernel faults (an illegal address, sticky and found by the next call,
# as on a GPU): the run stops with one message naming the fault and how to
# find the kernel, whichever call finds it (a launch, a product), no crash
for at in 200 201 202 203 204 205 206 207; do
  rc=0
  msg=$(cd "$root" && EMU_FAULT_AT=$at "$out/gan" scripts/strawberry.lua --data "$run/data" \
    --size 8 --batch 10 --epochs 2 --samples 4 --out "$run/fault" --device cuda 2>&1) || rc=$?
  echo "$msg" | grep -m1 -o "[^:]* failed: [^;]*" | sed "s/^/fault after launch $at: /"
  [ $rc = 1 ] && echo "$msg" | grep -q "cudaErrorIllegalAddress.*CUDA_LAUNCH_BLOCKING=1" ||
    { echo "emu: a kernel's fault gave rc $rc and:" >&2; echo "$msg" >&2; status=1; }
done
# 5.
echo "emu: 5. a cuDNN call fails: auto falls back to im2col, with the CPU's losses" >&2
images "$run/dc" 8 16 4
# dcgan NAME DEVICE [VAR=VALUE...]: 2 epochs of the DCGAN into $run/dc_NAME
dcgan() {
  local name=$1 dev=$2
  shift 2
  (cd "$root" && env "$@" "$out/gan" scripts/strawberry_dcgan.lua --data "$run/dc" --size 16 \
    --width 4 --batch 4 --epochs 2 --samples 4 --no-flip --out "$run/dc_$name" --device "$dev" \
    > "$run/dc_$name.txt" 2>&1)
}
dcgan cpu cpu || { cat "$run/dc_cpu.txt"; status=1; }
# a check fails (NOT_SUPPORTED), in the forward and in the accumulating
# filter gradient: once each, the warning, then im2col and the CPU's losses
for op in Forward:forward BackwardFilter:filter; do
  dcgan "${op#*:}" cuda EMU_CUDNN_FAIL="${op#*:}" || { cat "$run/dc_${op#*:}.txt"; status=1; }
  n=$(grep -c "cudnnConvolution${op%:*} failed: CUDNN_STATUS_NOT_SUPPORTED" \
      "$run/dc_${op#*:}.txt" || true)
  grep "gan: warning" "$run/dc_${op#*:}.txt" || true
  [ "$n" = 1 ] || { echo "emu: the fallback was said $n times, not once" >&2; status=1; }
  same_losses "$run/dc_${op#*:}/loss.csv" "$run/dc_cpu/loss.csv" 3 \
    "DCGAN loss.csv, cuda after the ${op#*:} fallback vs cpu" || status=1
done
# the filter gradient's heuristics fail (a sub-library that does not load):
# before any work, so it falls back like a failed check
dcgan heur cuda EMU_CUDNN_FAIL=filter:heur || { cat "$run/dc_heur.txt"; status=1; }
n=$(grep -c "CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED" "$run/dc_heur.txt" || true)
[ "$n" = 1 ] || { echo "emu: the heuristics' failure was said $n times, not once" >&2; status=1; }
same_losses "$run/dc_heur/loss.csv" "$run/dc_cpu/loss.csv" 3 \
  "DCGAN loss.csv, cuda after the filter heuristics fallback vs cpu" || status=1
# the filter gradient fails after part of its work (EXECUTION_FAILED): no
# fallback, which would add that gradient twice, but the run stops
if dcgan exec cuda EMU_CUDNN_FAIL=filter:exec; then
  echo "emu: a filter gradient that failed part way did not stop the run" >&2; status=1
fi
grep -q "cudnnConvolutionBackwardFilter failed: CUDNN_STATUS_EXECUTION_FAILED" \
  "$run/dc_exec.txt" && ! grep -q "gan: warning" "$run/dc_exec.txt" ||
  { echo "emu: the run did not stop with cuDNN's error:" >&2; cat "$run/dc_exec.txt"; status=1; }
# 6.
echo "emu: 6. the specs, on the emulated GPU (GAN_TEST_DEVICE=cuda)" >&2
specs=()
for s in $emu_specs; do specs+=("spec/${s}_spec.lua"); done
(cd "$root" && GAN_TEST_DEVICE=cuda GAN_BIN="$out/gan" GAN_ROOT="$root" GAN_BUILD="$out" \
  "$out/gan" "$(command -v busted)" -o utfTerminal "${specs[@]}") || status=1
exit $status
