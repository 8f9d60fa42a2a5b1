#!/bin/bash
# bench/pack_gpu.sh: gathers what bench/gpu.sh needs on a device machine that
# has a GPU, CUDA and PyTorch but no Lua, OpenBLAS or stb: the gan binary
# (Lua is linked in statically), tests/test_cuda, the shared libraries they
# need that such a machine lacks, busted (for the specs), and the strawberry
# photos (the device gets the checkout, not the ../shared beside it), into
# .gpu/ (ignored by git).
# .gpu/VERSION names the commit it was built from: pack right before a run.
#   bench/pack_gpu.sh            then carry .gpu, and on the device run:
#   LD_LIBRARY_PATH=$PWD/.gpu/lib GAN=.gpu/gan TEST_CUDA=.gpu/tests/test_cuda bench/gpu.sh
# cuBLAS and cuDNN are NOT packed (gan loads them at run time; cudart is
# linked in): they come from the device's own CUDA toolkit or PyTorch's
# wheels, whose major version must match the one this binary was built with
# (nvcc --version here); otherwise build there.
set -eu
cd "$(dirname "$0")/.."
[ -x build/gan ] || { echo "pack_gpu.sh: run ./build.sh first" >&2; exit 2; }
rm -rf .gpu && mkdir -p .gpu/lib .gpu/tests
cp build/gan .gpu/gan
[ -x build/tests/test_cuda ] && cp build/tests/test_cuda .gpu/tests/
for lib in $(ldd build/gan | awk '$3 ~ /^\// { print $3 }'); do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|librt.so*|libpthread.so*|ld-linux*|libcu*|libstdc++*|libgcc_s*) ;;
    *) cp -L "$lib" .gpu/lib/ ;;
  esac
done
# busted, for the specs on the GPU (bench/gpu.sh's last part): its Lua files
# and its C modules (lfs, system, term; gan exports Lua's API to them), which
# gan runs, since busted is a Lua script
if busted=$(command -v busted) && [ -d /usr/share/lua/5.4/busted ]; then
  mkdir -p .gpu/lua/share .gpu/lua/lib
  cp "$busted" .gpu/lua/busted
  for m in busted busted.lua cliargs cliargs.lua dkjson.lua mediator.lua luassert say pl \
           system term; do
    cp -rL "/usr/share/lua/5.4/$m" .gpu/lua/share/
  done
  cp -rL /usr/lib/x86_64-linux-gnu/lua/5.4/lfs.so /usr/lib/x86_64-linux-gnu/lua/5.4/system \
     /usr/lib/x86_64-linux-gnu/lua/5.4/term .gpu/lua/lib/
else
  echo "pack_gpu.sh: no busted here (apt-get install lua-busted): the specs will not run" >&2
fi
data=${DATA:-../shared/data/strawberries}
if [ -d "$data" ]; then
  mkdir -p .gpu/data && cp -r --no-preserve=mode "$data" .gpu/data/strawberries
else
  echo "pack_gpu.sh: no photos at $data (set DATA): the seed and DCGAN runs will fail" >&2
fi
{ git describe --always --dirty 2>/dev/null || echo unknown; date -u; } > .gpu/VERSION
du -sh .gpu
grep -q '^/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude
