#!/usr/bin/env bash
# Second device call of issue 21 (a kill keeps what is under $OUT): the AVX-512 peak, the small config's scaling,
# bench_gemm at 1 and 16 threads, tiny StableMask.
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd)
exec > >(tee -a $OUT/log.txt) 2>&1
export LD_LIBRARY_PATH=$D/lib TORCHINDUCTOR_CACHE_DIR=/tmp/ind
cd $D/src
(while sleep 5; do cat /tmp/r/*/raw.jsonl > $OUT/raw_live.jsonl 2>/dev/null; done) &
g++ -O2 -pthread bench/fma_peak.cpp -o /tmp/fp
for t in 1 2 4 8 16; do taskset -c 0-$((t-1)) /tmp/fp $t --pin --seconds 0.25; taskset -c 0-$((t-1)) /tmp/fp $t --pin --avx512 --seconds 0.25; done 2>/dev/null | tee $OUT/fma_peak_both.jsonl
run() { local name=$1 to=$2; shift 2; echo "=== $name $(date +%T) $(uptime)"; env "$@" GRADLAB=$D/bin/gradlab DATA=$D/data/tinyshakespeare.txt timeout $to bash bench/train_scaling.sh /tmp/r/$name; echo "$name rc=$?"; }
run small_causal 160 CONFIGS=small MASKS=causal THREADS="1 4 16" REPS=2 COMPILE_THREADS=16
run small_stablemask 95 CONFIGS=small MASKS=stablemask THREADS="1 4 16" REPS=2 COMPILE_THREADS=0
timeout 20 python3 bench/peer_gpt.py selftest
for t in 1 16; do
  GRADLAB_GEMM_THREADS=$t OMP_NUM_THREADS=$t taskset -c 0-$((t-1)) timeout 35 $D/bin/bench_gemm --benchmark_filter="(gemm/sgemm|openblas)/.*/threads:$t/" \
    --benchmark_repetitions=3 --benchmark_min_time=0.04 --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true --benchmark_format=json > $OUT/bench_gemm_t$t.json 2>/dev/null; echo "gemm t=$t rc=$?"
done
run tiny_stablemask 35 CONFIGS=tiny MASKS=stablemask THREADS="1 4 16" REPS=1 COMPILE_THREADS=0
cat /tmp/r/*/raw.jsonl > $OUT/raw_live.jsonl
echo "=== done $(date +%T)"
