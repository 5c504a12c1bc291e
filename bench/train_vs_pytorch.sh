#!/usr/bin/env bash
# Training throughput, gradlab against the PyTorch peer (../shared/bench/ref_gpt.py), interleaved A B A B.
# Both do forward + backward + AdamW with grad clipping on the same config; tokens/s counts batch*block per
# optimizer step after warm-up steps. Prints one line per run and the medians and their ratio.
#   bench/train_vs_pytorch.sh [tiny|small] [causal|stablemask] [threads] [reps]
# ITERS=N times N optimizer steps per run (default 40 for tiny, 12 for small).
# Needs the peer's torch (apt-get install python3-torch) on this machine only; CI never runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-tiny}; mask=${2:-causal}; threads=${3:-2}; reps=${4:-5}
ref=${REF_GPT:-../shared/bench/ref_gpt.py}
gradlab=${GRADLAB:-build/bin/gradlab}
iters=${ITERS:-40}; [ "$config" = small ] && iters=${ITERS:-12}
out=$(mktemp -d)
g=(); p=()
for r in $(seq "$reps"); do
  t=$(OMP_NUM_THREADS=$threads "$gradlab" train --config "$config" --mask "$mask" --gamma 0.5 --bias --threads "$threads" \
      --max_iters $((iters + 5)) --eval_interval 0 --eval_iters 1 --checkpoint_interval 0 --progress none \
      --data "${DATA:-../shared/data/tinyshakespeare.txt}" --out "$out/run$r" 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_second"])')
  g+=("$t")
  q=$(OPENBLAS_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$ref" bench --config "$config" \
      --attn "$mask" --gamma 0.5 --threads "$threads" --iters "$iters" --grad_clip 1.0 --json | grep '^JSON ' | tail -1 | \
      python3 -c 'import json,sys; print(json.loads(sys.stdin.read()[5:])["tokens_per_s"])')
  p+=("$q")
  echo "rep $r: gradlab $t tok/s, pytorch $q tok/s"
done
python3 - "${g[*]}" "${p[*]}" "$config" "$mask" "$threads" <<'PY'
import statistics, sys
g = [float(x) for x in sys.argv[1].split()]; p = [float(x) for x in sys.argv[2].split()]
mg, mp = statistics.median(g), statistics.median(p)
print(f"{sys.argv[3]} {sys.argv[4]} threads={sys.argv[5]}: gradlab median {mg:.0f} tok/s, pytorch median {mp:.0f} tok/s, ratio {mg/mp:.2f}")
PY
rm -rf "$out"
