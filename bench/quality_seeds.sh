#!/usr/bin/env bash
# Val loss over several seeds: the quality figure of issue 4 (tiny config, tinyshakespeare, 2000 iterations),
# measured the way docs/performance.md reports it. One training run per seed, two at a time on 2 cores (1 thread
# each: the result does not depend on the speed), each scored on the full val split by `gradlab eval`.
#
#   bench/quality_seeds.sh [SEED ...]              default seeds: 1337 1 2 3 4 5
#   MASK=stablemask EXTRA="--bias" ITERS=2000 JOBS=2 bench/quality_seeds.sh 1 2 3
#   PEER=nanogpt bench/quality_seeds.sh ...        also train the PyTorch peer per seed (needs python3-torch):
#                                                  nanogpt = nanoGPT's architecture (no bias, erf GELU),
#                                                  ref = ref_gpt.py's model as it is (biases, tanh GELU)
# Prints one line per run, then the mean, the standard deviation and, with a peer, Welch's t.
# Below 1000 iterations gradlab caps its default warmup at ITERS/10 and the peer does not: add
# EXTRA="--warmup_iters 100" to compare short runs like for like.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("$@"); [ ${#seeds[@]} -eq 0 ] && seeds=(1337 1 2 3 4 5)
gradlab=${GRADLAB:-build/bin/gradlab}
data=${DATA:-../shared/data/tinyshakespeare.txt}
mask=${MASK:-causal}; iters=${ITERS:-2000}; jobs=${JOBS:-2}; extra=${EXTRA:-}; peer=${PEER:-}
[ -f "$data" ] || { echo "quality_seeds: no data at $data (set DATA=FILE)" >&2; exit 2; }
[ -x "$gradlab" ] || { echo "quality_seeds: no gradlab at $gradlab (build first, or set GRADLAB=...)" >&2; exit 2; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
echo "gradlab $($gradlab --version 2>/dev/null | head -1 || true); mask $mask; $iters iterations; extra flags: ${extra:-none}" >&2

run_one() {  # KIND SEED -> writes $out/KIND_SEED.val
  local kind=$1 seed=$2
  if [ "$kind" = gradlab ]; then
    # shellcheck disable=SC2086
    "$gradlab" train --config tiny --mask "$mask" --data "$data" --max_iters "$iters" --seed "$seed" $extra \
      --threads 1 --eval_interval 0 --eval_iters 20 --checkpoint_interval 0 --progress none --out "$out/run_$seed" \
      > /dev/null 2> "$out/gradlab_$seed.err"
    "$gradlab" eval --model "$out/run_$seed" --split val --threads 1 2>> "$out/gradlab_$seed.err" |
      python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["loss"])' \
      > "$out/gradlab_$seed.val"
  else
    local flags=()
    [ "$peer" = nanogpt ] && flags=(--no_bias --gelu exact)
    /usr/bin/python3 bench/quality_vs_pytorch.py --data "$data" --seed "$seed" --max_iters "$iters" --threads 1 \
      --attn "$mask" "${flags[@]}" 2> "$out/peer_$seed.err" |
      python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["val_full"])' \
      > "$out/peer_$seed.val"
  fi
  echo "$kind seed $seed: val $(cat "$out/${kind}_$seed.val")"
}
export -f run_one; export gradlab data mask iters extra peer out

{
  for s in "${seeds[@]}"; do echo "gradlab $s"; done
  if [ -n "$peer" ]; then for s in "${seeds[@]}"; do echo "peer $s"; done; fi
} | xargs -P "$jobs" -L 1 bash -c 'run_one "$0" "$1"'

python3 - "$out" "$peer" <<'PY'
import glob, math, os, statistics as st, sys
out, peer = sys.argv[1], sys.argv[2]
def values(kind):
    return [float(open(f).read()) for f in sorted(glob.glob(os.path.join(out, kind + "_*.val")))]
g = values("gradlab")
def line(name, v):
    sd = st.stdev(v) if len(v) > 1 else float("nan")
    return f"{name}: n={len(v)} mean {st.mean(v):.4f} sd {sd:.4f} min {min(v):.4f} max {max(v):.4f}"
print(line("gradlab", g))
if peer:
    p = values("peer")
    print(line(f"PyTorch peer ({peer})", p))
    if len(g) > 1 and len(p) > 1:
        t = (st.mean(g) - st.mean(p)) / math.sqrt(st.variance(g) / len(g) + st.variance(p) / len(p))
        print(f"Welch t (gradlab - peer): {t:.2f}")
PY
