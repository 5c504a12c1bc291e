#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer (not the lessons, not the benchmarks, not
# the browser tests: Chromium is not ASan-built, and the viewer writer runs under ASan in tests/viz).
# Builds in build-asan with -DGRADLAB_SANITIZE=ON and fails on the first sanitizer report: every report stops
# the test process (halt_on_error / -fno-sanitize-recover), LeakSanitizer is on, and a report turns the test red.
# Extra arguments go to ctest, e.g.  scripts/sanitize.sh -R '^data/'
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=${GRADLAB_JOBS:-$(nproc)}
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRADLAB_SANITIZE=ON \
  -DGRADLAB_BUILD_LESSONS=OFF -DGRADLAB_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# OpenMP's runtime keeps its thread pool alive at exit, which LeakSanitizer does not count as a leak; a fixed
# thread count keeps the runs comparable with the Release suite.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# The caching allocator (tensor/tensor.cpp) would keep freed blocks from ASan and hide a use after free.
export GRADLAB_NO_CACHING_ALLOCATOR=1
# The `reliability` label (kill loop, byte flips, concurrent runs, peak RSS against the estimate) runs in the
# Release stage: it spawns dozens of processes, and ASan's shadow memory would make the RSS comparison meaningless.
ctest --test-dir build-asan -LE 'lessons|reliability|browser' -j"$jobs" --output-on-failure "$@"
echo "sanitize: ASan+UBSan build in $(pwd)/build-asan, unit tests clean"
