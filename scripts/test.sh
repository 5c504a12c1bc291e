#!/usr/bin/env bash
# README command 2: install what is missing, build in Release, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build -j"$(nproc)" --output-on-failure "$@"
echo "tests: build in $(pwd)/build, lesson outputs of the test run in $(pwd)/build/lesson-test-out"
