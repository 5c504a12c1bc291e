#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (not the lessons, not the benchmarks, not
# the browser tests: Chromium is not ASan-built, and the viewer writer runs under ASan in tests/viz).
# It is also CI's clang build: stage 1 compiles with g++, this one with clang and -DGRADLAB_WERROR=ON, so a
# warning from either compiler is seen and a clang warning fails CI. It installs clang, libomp-dev (OpenMP for
# clang) and, when clang cannot link a sanitized program yet, the runtime package of its version
# (libclang-rt-14-dev on Debian 12). SANITIZE_COMPILER=gcc, or clang that cannot be installed, builds with g++
# instead (without -Werror) in build-asan; clang builds in build-asan-clang.
# Fails on the first sanitizer report: every report stops the test process (halt_on_error /
# -fno-sanitize-recover), LeakSanitizer is on, and a report turns the test red.
# Extra arguments go to ctest, e.g.  scripts/sanitize.sh -R '^data/'
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=${GRADLAB_JOBS:-$(nproc)}
compiler=${SANITIZE_COMPILER:-clang}
if [ "$compiler" = clang ] && ! bash scripts/deps.sh clang libomp-dev; then
  echo "sanitize: clang could not be installed; building with g++ instead" >&2
  compiler=gcc
fi
config=()
if [ "$compiler" = clang ]; then
  build=build-asan-clang
  cxx=$(command -v clang++ || command -v clang++-14)
  cc=$(command -v clang || command -v clang-14)
  mkdir -p "$build"
  # Debian 12 ships clang's ASan/UBSan runtime apart from clang (libclang-rt-N-dev); Ubuntu 22.04 inside it.
  probe() { echo 'int main() { return 0; }' | "$cxx" -x c++ -fsanitize=address,undefined -o "$build/probe" - 2>/dev/null; }
  if ! probe; then
    bash scripts/deps.sh "libclang-rt-$("$cxx" -dumpversion | cut -d. -f1)-dev"
    probe || { echo "sanitize: $cxx cannot link -fsanitize=address,undefined" >&2; exit 1; }
  fi
  # Line tables are all a sanitizer report needs (file:line in each frame); full -g costs clang build time.
  config=(-DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" -DGRADLAB_WERROR=ON
          "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG")
else
  build=build-asan
  cxx=$(command -v g++ || command -v c++)
fi
mkdir -p "$build"
command -v ccache >/dev/null && config+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRADLAB_SANITIZE=ON \
  -DGRADLAB_BUILD_LESSONS=OFF -DGRADLAB_BUILD_BENCH=OFF "${config[@]}" >"$build/configure.log" ||
  { cat "$build/configure.log"; exit 1; }
grep -E "^-- gradlab: (OpenMP|AVX2)" "$build/configure.log" || true
echo "sanitize: $("$cxx" --version | head -n 1), build folder $build"
cmake --build "$build" -j"$jobs"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# OpenMP's runtime keeps its thread pool alive at exit, which LeakSanitizer does not count as a leak; a fixed
# thread count keeps the runs comparable with the Release suite.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# The caching allocator (tensor/tensor.cpp) would keep freed blocks from ASan and hide a use after free.
export GRADLAB_NO_CACHING_ALLOCATOR=1
# The `reliability` label (kill loop, byte flips, concurrent runs, peak RSS against the estimate) runs in the
# Release stage: it spawns dozens of processes, and ASan's shadow memory would make the RSS comparison meaningless.
ctest --test-dir "$build" -LE 'lessons|reliability|browser' -j"$jobs" --output-on-failure "$@"
echo "sanitize: ASan+UBSan build ($compiler) in $(pwd)/$build, unit tests clean"
