#!/bin/bash
# fuzz/build.sh: builds the libFuzzer targets with clang, AddressSanitizer
# and UndefinedBehaviorSanitizer into fuzz/build/ (see fuzz/README.md).
#   fuzz/build.sh            fuzz_image and fuzz_checkpoint
#   CC=clang-15 fuzz/build.sh
# Needs clang and its compiler-rt (Debian: clang, libclang-rt-dev).  stb is
# compiled in by core/stb_impl.c, as in the engine, so it is sanitized and
# measured too.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=${CC:-clang}
out=fuzz/build
mkdir -p "$out"
flags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -DGAN_IMAGE_MAX_PIXELS=1048576
       -fno-sanitize-recover=undefined -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
       -std=c11 -Wall -Wextra -Wshadow -Icore"
# stb is third-party: sanitized and measured, with the flags and the UBSan
# exemptions of the engine's sanitizer build (core/stb_impl.flags says
# why).  ASan keeps checking every access.
stb_flags() { sed -n "s/^$1: //p" core/stb_impl.flags; }
# (a minute to compile: kept while this script, stb_impl.c and its flags are unchanged)
if [ ! "$out/stb_impl.o" -nt fuzz/build.sh ] || [ ! "$out/stb_impl.o" -nt core/stb_impl.c ] ||
   [ ! "$out/stb_impl.o" -nt core/stb_impl.flags ]; then
  # shellcheck disable=SC2086,SC2046  # lists of flags
  $CC $flags $(stb_flags always) $(stb_flags sanitize) -c core/stb_impl.c -o "$out/stb_impl.o"
fi
# shellcheck disable=SC2086  # $flags is a list of flags
$CC $flags fuzz/fuzz_image.c core/image.c core/fault.c core/status.c \
    "$out/stb_impl.o" -lm -pthread -o "$out/fuzz_image"
# shellcheck disable=SC2086
$CC $flags fuzz/fuzz_checkpoint.c core/checkpoint.c core/fault.c core/status.c \
    -o "$out/fuzz_checkpoint"
echo "fuzz/build.sh: built $out/fuzz_image and $out/fuzz_checkpoint" >&2
