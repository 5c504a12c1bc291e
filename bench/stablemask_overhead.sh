#!/usr/bin/env bash
# StableMask's cost in a whole training step: gradlab train with --mask causal and --mask stablemask on the same
# config, interleaved (causal, stablemask, causal, ...), median tokens/s of each and their ratio.
#   bench/stablemask_overhead.sh [tiny|small] [threads] [reps] [iters]
# Data: ../shared/data/tinyshakespeare.txt if present (DATA=... to override), else the built-in grammar corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-tiny}; threads=${2:-1}; reps=${3:-5}; iters=${4:-100}
gradlab=${GRADLAB:-build/bin/gradlab}
data=${DATA:-../shared/data/tinyshakespeare.txt}
data_flags=(); [ -f "$data" ] && data_flags=(--data "$data")
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
declare -A runs=([causal]="" [stablemask]="")
for r in $(seq "$reps"); do
  for mask in causal stablemask; do
    t=$("$gradlab" train --config "$config" --mask "$mask" --threads "$threads" "${data_flags[@]}" \
        --max_iters $((iters + 5)) --eval_interval 0 --eval_iters 1 --checkpoint_interval 0 --progress none \
        --out "$out/$mask$r" 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_second"])')
    runs[$mask]+=" $t"
    echo "rep $r $mask: $t tok/s"
  done
done
python3 - "${runs[causal]}" "${runs[stablemask]}" "$config" "$threads" <<'PY'
import statistics, sys
c = [float(x) for x in sys.argv[1].split()]; s = [float(x) for x in sys.argv[2].split()]
mc, ms = statistics.median(c), statistics.median(s)
print(f"{sys.argv[3]} threads={sys.argv[4]}: causal median {mc:.0f} tok/s, stablemask median {ms:.0f} tok/s, "
      f"stablemask step time / causal = {mc/ms:.3f}")
PY
