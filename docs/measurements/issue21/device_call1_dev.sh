#!/usr/bin/env bash
# Device-side driver for issue 21 (run from the repo root of /work/main's copy): dev.sh STEP...
# Results go to /tmp/res; the EXIT trap packs them into $OUT/res.tar.gz.
set -uo pipefail
D=$(cd "$(dirname "$0")" && pwd)
R=/tmp/res; mkdir -p $R
trap 'cd /tmp && tar czf $OUT/res.tar.gz res 2>/dev/null; cp $R/log.txt $OUT/ 2>/dev/null' EXIT
exec > >(tee -a $R/log.txt) 2>&1
export LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
B=$D/bin
cd $D/src
sec() { echo "=== $* ($(date +%T), uptime: $(uptime))"; }
for step in "$@"; do
case $step in
info)
  sec info
  lscpu > $R/lscpu.txt; cat $R/lscpu.txt | grep -E 'Model name|^CPU\(s\)|Thread|Core|Socket|NUMA|L1d|L2|L3|Flags' | cut -c1-400
  nproc; free -g | head -2; g++ --version | head -1; cmake --version | head -1
  python3 -c 'import torch,sys; print(sys.executable, torch.__version__, torch.get_num_threads()); print(torch.__config__.show()); print(torch.__config__.parallel_info())' > $R/torch_config.txt 2>&1; head -40 $R/torch_config.txt
  ldd $B/gradlab; $B/gradlab train --help >/dev/null && echo "prebuilt gradlab runs"
  ;;
build)
  sec build
  if ! { $B/gradlab train --help >/dev/null 2>&1 && $B/bench_gemm --benchmark_list_tests >/dev/null 2>&1 && $B/model_step tiny causal 1 >/dev/null 2>&1; }; then
    echo "prebuilt binaries do not run here: building"; ldd $B/bench_gemm
    cmake -S . -B /tmp/b -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRADLAB_BUILD_TESTS=OFF -DGRADLAB_BUILD_LESSONS=OFF \
      -DCMAKE_PREFIX_PATH=$D/deps/usr -DGRADLAB_STB_INCLUDE=$D/deps/usr/include/stb -DGRADLAB_STB_LIBRARY=$D/lib/libstb.so.0 \
      && cmake --build /tmp/b --target gradlab bench_gemm bench_attention bench_strategies model_step && B=/tmp/b/bench && cp /tmp/b/bin/gradlab /tmp/b/bench/ \
      && (cd /tmp/b/bench && tar czf $OUT/bin.tar.gz gradlab bench_gemm bench_attention bench_strategies model_step)
  fi
  g++ -O2 -pthread bench/fma_peak.cpp -o /tmp/fma_peak_dev && echo "fma_peak built there" || cp $B/fma_peak /tmp/fma_peak_dev
  ;;
peak)
  sec fma_peak
  for t in 1 2 4 8 16; do taskset -c 0-$((t-1)) /tmp/fma_peak_dev $t --pin --seconds 0.5; done | tee $R/fma_peak.jsonl
  ;;
selftest)
  sec peer selftest; timeout 60 python3 bench/peer_gpt.py selftest
  ;;
matmul)
  sec torch.matmul
  for t in 1 2 16; do taskset -c 0-$((t-1)) timeout 100 python3 bench/torch_matmul.py --threads $t --reps 5 --seconds 0.05; done > $R/torch_matmul.jsonl
  wc -l $R/torch_matmul.jsonl
  ;;
gemm)
  sec bench_gemm
  for t in 1 2 16; do
    GRADLAB_GEMM_THREADS=$t OMP_NUM_THREADS=$t taskset -c 0-$((t-1)) timeout 120 $B/bench_gemm --benchmark_filter="(gemm/sgemm|openblas)/.*/threads:$t\$" \
      --benchmark_repetitions=5 --benchmark_min_time=0.05 --benchmark_enable_random_interleaving=true \
      --benchmark_report_aggregates_only=true --benchmark_format=json > $R/bench_gemm_t$t.json 2>$R/bench_gemm_t$t.err; echo "gemm t=$t rc=$?"
  done
  ;;
attn)
  sec bench_attention
  for t in 1 16; do echo "threads $t"; OMP_NUM_THREADS=$t taskset -c 0-$((t-1)) timeout 90 $B/bench_attention table 256 1024 2>&1 | tee $R/bench_attention_t$t.md; done
  sec bench_strategies
  for T in 256 1024; do OMP_NUM_THREADS=1 taskset -c 0 timeout 60 $B/bench_strategies $T 11 2>&1 | tee $R/bench_strategies_T$T.md; done
  ;;
compilesmoke)
  sec compile smoke
  for k in 1 2; do OMP_NUM_THREADS=16 TORCHINDUCTOR_CACHE_DIR=/tmp/ind taskset -c 0-15 timeout 150 python3 bench/peer_gpt.py --config tiny --mask stablemask --threads 16 --modes eager,sdpa,compile --iters 20 --warmup 2; done
  ;;
scale)
  sec scaling
  CONFIGS="tiny small" COMPILE_THREADS="1 4 16" GRADLAB=$B/gradlab DATA=$D/data/tinyshakespeare.txt TORCHINDUCTOR_CACHE_DIR=/tmp/ind \
    timeout ${SCALING_TIMEOUT:-300} bash bench/train_scaling.sh $R/scaling; echo "scaling rc=$?"
  python3 bench/train_scaling_report.py $R/scaling/raw.jsonl --peak $R/fma_peak.jsonl --json $R/scaling/summary.json --md $R/scaling/table.md && cat $R/scaling/table.md
  ;;
tiny|small|all)
  sec scaling $step
  C=$step; [ $step = all ] && C="tiny small"
  CONFIGS="$C" GRADLAB=$B/gradlab DATA=$D/data/tinyshakespeare.txt TORCHINDUCTOR_CACHE_DIR=/tmp/ind timeout ${SCALING_TIMEOUT:-400} \
    bash bench/train_scaling.sh $R/scaling_$step
  ;;
drivertest)
  sec driver test
  REPS=1 THREADS="1 16" MASKS=causal CONFIGS=tiny GRADLAB=$B/gradlab DATA=$D/data/tinyshakespeare.txt TORCHINDUCTOR_CACHE_DIR=/tmp/ind \
    FMA_PEAK=/tmp/fma_peak_dev timeout 120 bash bench/train_scaling.sh $R/drivertest
  ;;
profile)
  sec model_step profile
  for t in 1 16; do for c in tiny small; do OMP_NUM_THREADS=$t taskset -c 0-$((t-1)) timeout 60 $B/model_step $c causal 6; done; done
  ;;
esac
done
sec done
