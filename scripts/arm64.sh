#!/usr/bin/env bash
# CI stage: gradlab for 64-bit ARM (aarch64), cross-compiled here and run under qemu-user, so the NEON kernels
# are built and validated on an x86 machine. What runs (ctest -R, by test name = folder/case):
#   tensor/...   every test of the tensor chapter program (tensor, kernel and attention suites)
#   autograd/... every test of the autograd chapter program
#   nn/adamw...  the AdamW tests of the nn program (the NEON AdamW step against the portable loop)
# It fails when a test fails, when the start-up line of an emulated program is not "NEON kernels on", or
# when fewer SIMD validation tests than expected report that they compared the NEON kernel.
# Build folder: build-arm64 (BUILD_DIR overrides). Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BUILD_DIR:-build-arm64}
sysroot=/usr/aarch64-linux-gnu
bash scripts/deps.sh g++-aarch64-linux-gnu qemu-user libc6-arm64-cross

# Debian's libstb is built for the host only. Its headers are the whole library, so the target's copy is
# compiled from them (the three parts viz/ uses), and handed to CMake in place of find_library's answer.
mkdir -p "$build/stb"
stb_lib=$(cd "$build/stb" && pwd)/libstb.a  # absolute, whether BUILD_DIR is relative or not
if [ ! -f "$build/stb/libstb.a" ]; then
  printf '%s\n' '#define STB_IMAGE_IMPLEMENTATION' '#include <stb_image.h>' \
    '#define STB_IMAGE_WRITE_IMPLEMENTATION' '#include <stb_image_write.h>' \
    '#define STB_TRUETYPE_IMPLEMENTATION' '#include <stb_truetype.h>' >"$build/stb/stb.c"
  # only the stb folder is added: the target's C headers come from the cross compiler's own root
  aarch64-linux-gnu-gcc -O2 -fPIC -w -I/usr/include/stb -c "$build/stb/stb.c" -o "$build/stb/stb.o"
  aarch64-linux-gnu-ar rcs "$build/stb/libstb.a" "$build/stb/stb.o"
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64-linux-gnu.cmake" \
  -DGRADLAB_BUILD_LESSONS=OFF -DGRADLAB_BUILD_BENCH=OFF \
  -DGRADLAB_STB_LIBRARY="$stb_lib" "${launcher[@]}" >"$build/configure.log" ||
  { cat "$build/configure.log"; exit 1; }
grep -E "gradlab: (NEON|AVX2)" "$build/configure.log"
grep -q "gradlab: NEON kernels compiled" "$build/configure.log" ||
  { echo "arm64: CMake did not enable the NEON kernels" >&2; exit 1; }

# The test programs link the gradlab command too (tests of its start-up line), so it is built with them.
t0=$SECONDS
cmake --build "$build" -j"$(nproc)" --target test_tensor test_autograd test_nn
echo "arm64: build took $((SECONDS - t0)) s"

line=$(qemu-aarch64 -L "$sysroot" "$build/bin/gradlab" --version)
echo "arm64: emulated gradlab --version: $line"
case $line in
  *"NEON kernels on"*) ;;
  *) echo "arm64: expected \"NEON kernels on\" in the start-up line" >&2; exit 1 ;;
esac

log="$build/ctest.log"
t0=$SECONDS
status=0
ctest --test-dir "$build" -j"$(nproc)" --output-on-failure -V -R '^(tensor|autograd)/|^nn/adamw' "$@" >"$log" 2>&1 ||
  status=$?
grep -E "^[0-9]+% tests passed|^Total Test time" "$log" || true
echo "arm64: ctest under qemu took $((SECONDS - t0)) s"
if [ "$status" -ne 0 ]; then
  grep -E "\*\*\*Failed|Not Run|\*\*\*Exception|\*\*\*Timeout" "$log" >&2 || true
  echo "arm64: ctest failed (exit $status); full log in $log" >&2
  exit 1
fi
# Each SIMD validation test prints "SIMD kernel validated: NEON ..." after its comparisons; one that returned
# early (no SIMD kernel in use) prints nothing, so a short count means kernels went unchecked.
expected=${ARM64_MIN_NEON_TESTS:-9}
validated=$(grep -c "SIMD kernel validated: NEON" "$log" || true)
grep "SIMD kernel validated: NEON" "$log" | sed 's/^[0-9]*: *//' | sort | uniq -c
if [ "$validated" -lt "$expected" ]; then
  echo "arm64: only $validated NEON validation reports, expected at least $expected" >&2
  exit 1
fi
echo "arm64: $validated NEON validation tests ran under qemu-aarch64 and passed"
