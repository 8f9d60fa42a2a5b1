#!/bin/bash
# tests/emu/run.sh: runs tests/test_cuda.c -- the CUDA backend against the
# CPU backend, slot by slot -- with cuda/*.cu compiled for the host emulator
# in this folder instead of for a GPU.  No GPU, driver or nvcc needed: g++,
# OpenBLAS and lua5.4 (what ./build.sh installs).  cuDNN is not modelled, so the convolutions run on
# cuda/im2col.cu (the build is GAN_HAVE_CUDNN=0).
#
#   tests/emu/run.sh [BUILD_DIR]       (default /tmp/gan-emu)
#   EMU_REVERSE=1 tests/emu/run.sh     threads of each block in reverse order
#   SAN=-fsanitize=address,undefined tests/emu/run.sh
#
# Exit status: test_cuda's (0: every check passed).  What the emulator
# checks is in cuda_runtime.h and emu.cpp.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-/tmp/gan-emu}
san=${SAN:-}
mkdir -p "$out/src" "$out/obj"
blas=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
blaslib=$(pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
stb=$(pkg-config --cflags stb 2>/dev/null || echo -I/usr/include/stb)
cxx="g++ -O2 -g $san -std=c++17 -ffp-contract=off -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas"
cc="gcc -O2 -g $san -std=gnu11 -fopenmp -Wall -Wextra"
pids=()
for f in "$root"/cuda/*.cu; do
  b=$(basename "$f" .cu)
  [ "$b" = cudnn ] && continue
  lua5.4 "$root/tests/emu/launch.lua" "$f" "$out/src/$b.cpp" "$root"/cuda/*.cuh
  $cxx -DGAN_HAVE_CUDNN=0 -I"$root/tests/emu" -I"$root/cuda" -I"$root/core" \
    -c "$out/src/$b.cpp" -o "$out/obj/cuda_$b.o" &
  pids+=($!)
done
$cxx $blas -I"$root/tests/emu" -c "$root/tests/emu/emu.cpp" -o "$out/obj/emu.o" &
pids+=($!)
for f in "$root"/core/*.c; do
  b=$(basename "$f" .c)
  [ "$b" = nocuda ] && continue
  $cc -w $blas $stb -I"$root/core" -c "$f" -o "$out/obj/core_$b.o" &
  pids+=($!)
done
$cc -Wshadow -DGAN_HAVE_CUDA=1 -I"$root/core" -I"$root/cuda" -c "$root/tests/test_cuda.c" \
  -o "$out/obj/test_cuda.o" &
pids+=($!)
for p in "${pids[@]}"; do wait "$p"; done
g++ $san "$out"/obj/*.o -o "$out/test_cuda_emu" $blaslib -fopenmp -lm
echo "emu: built $out/test_cuda_emu" >&2
# TEST_CUDA_EMU: test_cuda queues smaller products where it only needs a queue
cd "$out" && TEST_CUDA_EMU=1 ./test_cuda_emu
