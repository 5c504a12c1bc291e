#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and runs each one for FUZZ_SECONDS (default
# 60) on a copy of its committed seed corpus (fuzz/corpus/<target>/). Fails on any finding: a sanitizer report,
# an uncaught exception, a broken invariant, a timeout or running out of memory. Crash inputs are kept in
# build-fuzz/findings/<target>/ and the command to reproduce is printed.
#   FUZZ_SECONDS=600 scripts/fuzz.sh              longer runs
#   scripts/fuzz.sh fuzz_text fuzz_args           only some targets
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-60}
jobs=${GRADLAB_JOBS:-$(nproc)}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_config_json fuzz_text fuzz_args)

# clang and its runtime libraries (libFuzzer, ASan, UBSan) come from Debian packages.
bash scripts/deps.sh clang libclang-rt-14-dev
cxx=$(command -v clang++ || command -v clang++-14)
cc=$(command -v clang || command -v clang-14)
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
  -DGRADLAB_FUZZ=ON -DGRADLAB_OPENMP=OFF -DGRADLAB_BUILD_TESTS=OFF -DGRADLAB_BUILD_LESSONS=OFF \
  -DGRADLAB_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target "${targets[@]}"

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
failed=()
for t in "${targets[@]}"; do
  work="$root/build-fuzz/fuzz-run/$t"
  findings="$root/build-fuzz/findings/$t"
  rm -rf "$work" && mkdir -p "$work/corpus" "$findings"
  cp "$root/fuzz/corpus/$t/"* "$work/corpus/"
  dict=()
  [ -f "$root/fuzz/$t.dict" ] && dict=(-dict="$root/fuzz/$t.dict")
  echo "=== fuzz: $t for ${seconds} s"
  t0=$(date +%s)
  # -max_len bounds one input (seeds are smaller); -timeout flags an input that takes over 10 s;
  # -rss_limit_mb also caps a single allocation, so an unbounded allocation is a finding.
  if (cd "$work" && "$root/build-fuzz/fuzz/$t" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" corpus \
        </dev/null >"$work/log.txt" 2>&1); then
    stats=$(grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/log.txt" | tr '\n' ' ')
    echo "=== fuzz: $t clean after $(( $(date +%s) - t0 )) s: $stats"
  else
    echo "=== fuzz: $t FOUND A PROBLEM after $(( $(date +%s) - t0 )) s; last lines of $work/log.txt:"
    tail -n 40 "$work/log.txt"
    echo "=== reproduce: build-fuzz/fuzz/$t $findings/<crash-file>   (files: $(ls "$findings" | tr '\n' ' '))"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds} s each without a finding (build in $root/build-fuzz)"
