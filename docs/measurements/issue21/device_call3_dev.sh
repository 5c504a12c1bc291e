#!/usr/bin/env bash
# Device-side driver, issue 21, session 3 (run from the repository root of the device's copy): dev.sh STEP...
# Binaries (built on the 2-core machine from the merged branch) in .devcarry/bin, their shared libraries in
# .devcarry/lib, the corpus in .devcarry/data. Everything it measures goes under $OUT (a kill keeps it).
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd)
R=$OUT; mkdir -p $R
exec > >(tee -a $R/log.txt) 2>&1
export LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} TORCHINDUCTOR_CACHE_DIR=/tmp/ind
B=$D/bin
DATA=$D/data/tinyshakespeare.txt
sec() { echo "=== $* ($(date +%T), uptime: $(uptime))"; }
gemm() {  # threads label env...
  local t=$1 label=$2; shift 2
  env "$@" GRADLAB_GEMM_THREADS=$t OMP_NUM_THREADS=$t taskset -c 0-$((t-1)) timeout 100 $B/bench_gemm \
    --benchmark_filter="(gemm/sgemm(_avx2)?|openblas)/.*/threads:$t/" --benchmark_repetitions=3 --benchmark_min_time=0.04 \
    --benchmark_enable_random_interleaving=true --benchmark_format=json \
    > $R/bench_gemm_t${t}_$label.json 2>$R/bench_gemm_t${t}_$label.err; echo "gemm t=$t $label rc=$?"
}
scale() {  # name timeout env...
  local name=$1 to=$2; shift 2
  sec "scaling $name"
  env "$@" GRADLAB=$B/gradlab DATA=$DATA timeout $to bash bench/train_scaling.sh $R/scaling_$name; echo "scaling $name rc=$?"
}
for step in "$@"; do
case $step in
info)
  sec info
  lscpu | grep -E 'Model name|^CPU\(s\)|Thread|Core|Socket|Flags' | cut -c1-300; grep -m2 -E 'cpu family|^model' /proc/cpuinfo
  python3 -c 'import torch; print("torch", torch.__version__)'
  $B/gradlab --version
  ;;
peak)
  sec fma_peak
  g++ -O2 -pthread bench/fma_peak.cpp -o /tmp/fp || cp $B/fma_peak /tmp/fp
  for t in 1 4 16; do taskset -c 0-$((t-1)) /tmp/fp $t --pin --seconds 0.3; taskset -c 0-$((t-1)) /tmp/fp $t --pin --avx512 --seconds 0.3; done 2>/dev/null | tee $R/fma_peak.jsonl
  grep '"avx2"' $R/fma_peak.jsonl > $R/fma_peak_avx2.jsonl; grep '"avx512"' $R/fma_peak.jsonl > $R/fma_peak_avx512.jsonl
  ;;
gemm)
  sec bench_gemm
  for t in 1 16; do gemm $t all OPENBLAS_CORETYPE=SkylakeX; done
  timeout 30 $B/test_tensor -tc='*AVX-512*' 2>&1 | tail -3
  ;;
matmul)
  sec torch.matmul
  for t in 1 16; do taskset -c 0-$((t-1)) timeout 40 python3 bench/torch_matmul.py --threads $t --reps 3 --seconds 0.02; done > $R/torch_matmul.jsonl
  wc -l $R/torch_matmul.jsonl
  ;;
tiny)
  scale tiny 150 CONFIGS=tiny MASKS="causal stablemask" THREADS="1 4 16" REPS=3 MODES=sdpa
  ;;
smallc)
  scale small_causal 170 CONFIGS=small MASKS=causal THREADS="1 4 16" REPS=3 MODES=sdpa
  ;;
smalls)
  scale small_stablemask 120 CONFIGS=small MASKS=stablemask THREADS="1 4 16" REPS=2 MODES=sdpa
  ;;
avx2train)
  sec "gradlab with the AVX2 GEMM (GRADLAB_NO_AVX512=1), small causal"
  for t in 16 1; do for k in avx512 avx2; do
    e=""; [ $k = avx2 ] && e="GRADLAB_NO_AVX512=1"
    env $e OMP_NUM_THREADS=$t taskset -c 0-$((t-1)) timeout 60 $B/gradlab train --config small --mask causal --bias --threads $t \
      --max_iters 8 --eval_interval 0 --eval_iters 1 --checkpoint_interval 0 --progress none --data $DATA --out /tmp/a_$k$t \
      2>/dev/null | tail -1 | python3 -c "import json,sys; print('$k t=$t', json.load(sys.stdin)['tokens_per_second'])"
  done; done | tee $R/avx2_vs_avx512_train.txt
  ;;
split)
  sec "step split (optimizer before/after) and the per-op profile"
  for r in 1 2; do for t in 1 16; do for v in before after; do
    b=$B/step_split; [ $v = before ] && b=$B/step_split_before
    OMP_NUM_THREADS=$t taskset -c 0-$((t-1)) timeout 30 $b --threads $t --steps 100 --warmup 10 2>/dev/null | tail -1 | sed "s/^/$v /"
  done; done; done | tee $R/step_split_tiny.txt
  for t in 1 16; do
    OMP_NUM_THREADS=$t taskset -c 0-$((t-1)) timeout 30 $B/gradlab train --config tiny --bias --threads $t --max_iters 45 \
      --eval_interval 0 --eval_iters 1 --checkpoint_interval 0 --progress none --data $DATA --out /tmp/p$t --profile \
      > $R/profile_tiny_t$t.json 2> $R/profile_tiny_t$t.md; tail -28 $R/profile_tiny_t$t.md
  done
  ;;
attn)
  sec bench_strategies
  OMP_NUM_THREADS=1 taskset -c 0 timeout 30 $B/bench_strategies 256 61 4 2>&1 | tee $R/bench_strategies_T256.md
  OMP_NUM_THREADS=1 taskset -c 0 timeout 30 $B/bench_strategies 1024 21 1 2>&1 | tee $R/bench_strategies_T1024.md
  ;;
esac
done
sec done
