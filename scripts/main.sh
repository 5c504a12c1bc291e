#!/usr/bin/env bash
# README command 1, the main job: install what is missing, build in Release, run the flagship lesson
# (lesson 9: the attention sink, causal against StableMask, on the built-in bigram-backcopy corpus). Extra
# arguments go to the lesson.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target lesson-09-flagship
echo
./build/lessons/09-flagship --out out/lesson-09 "$@"
