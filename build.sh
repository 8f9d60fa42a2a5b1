#!/bin/sh
# build.sh: installs what gan needs (Debian packages) and builds it in build/.
#   ./build.sh            release build (CUDA too when nvcc is found)
#   ./build.sh -DGAN_CUDA=OFF   extra arguments go to cmake
set -eu
cd "$(dirname "$0")"

# Debian packages the engine, its tests and its build need.
pkgs="build-essential cmake pkg-config liblua5.4-dev lua5.4 lua-busted libstb-dev
      libopenblas-dev libreadline-dev"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "build.sh: installing$missing" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# nvcc is often installed outside PATH
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  PATH="$PATH:/usr/local/cuda/bin"
  export PATH
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
