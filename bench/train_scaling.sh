#!/usr/bin/env bash
# Training throughput over thread counts, gradlab against its PyTorch peer (bench/peer_gpt.py) in three modes
# (eager, sdpa, compile), interleaved: for each repetition, config, mask and thread count, gradlab runs, then
# the peer (its modes in turn, in one process). Every run is pinned: OMP_NUM_THREADS=n, the programs' own
# thread setting (--threads n, torch.set_num_threads(n)), MKL_NUM_THREADS=n and OPENBLAS_NUM_THREADS=n for the
# peer's BLAS, and taskset -c 0-(n-1). PEER_ENV="OMP_WAIT_POLICY=PASSIVE" (say) adds settings for the peer alone. Thread counts above the
# machine's CPU count are skipped. Both programs do forward + backward + AdamW + clipping at 1.0 on the same
# config (bias on, vocab 65, StableMask with one constant gamma = 0.5); tokens/s = batch*block per optimizer step
# over the timed steps (gradlab: after its 5 warm-up steps; the peer: after --warmup steps, compile included).
#
#   bench/train_scaling.sh OUTDIR
# writes OUTDIR/raw.jsonl (one line per run), OUTDIR/fma_peak.jsonl (when FMA_PEAK is given), and through
# bench/train_scaling_report.py OUTDIR/summary.json and OUTDIR/table.md (medians, ratios, MFU, efficiency).
# Environment (defaults in brackets):
#   CONFIGS [tiny small]  MASKS [causal stablemask]  THREADS [1 2 4 8 16]  REPS [3]  MODES [eager,sdpa,compile]
#   REP_START [1]: number of the first repetition (to add repetitions from a second session; raw.jsonl is appended)
#   COMPILE_THREADS [all of THREADS]: thread counts at which the compile mode runs (it compiles per process)
#   ITERS_TINY / ITERS_SMALL: timed steps (default: tiny 20, 40 from 4 threads; small 3, 6 from 4, 10 at 16)
#   GRADLAB [build/bin/gradlab]  PYTHON [python3]  DATA [../shared/data/tinyshakespeare.txt]
#   FMA_PEAK: an fma_peak binary (bench/fma_peak.cpp); measured at each thread count, pinned the same way.
# Needs PyTorch in $PYTHON on the measuring machine only; CI never runs it. Exit codes: 0 ok, 1 a run failed,
# 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: bench/train_scaling.sh OUTDIR (settings through the environment, see the header)" >&2; exit 2; }
outdir=$1
mkdir -p "$outdir"
configs=${CONFIGS:-tiny small}; masks=${MASKS:-causal stablemask}; threads_list=${THREADS:-1 2 4 8 16}
reps=${REPS:-3}; modes=${MODES:-eager,sdpa,compile}; compile_threads=${COMPILE_THREADS:-$threads_list}
gradlab=${GRADLAB:-build/bin/gradlab}; py=${PYTHON:-python3}; data=${DATA:-../shared/data/tinyshakespeare.txt}
ncpu=$(nproc)
[ -x "$gradlab" ] || { echo "train_scaling.sh: no gradlab binary at $gradlab (set GRADLAB)" >&2; exit 2; }
[ -f "$data" ] || { echo "train_scaling.sh: no data file at $data (set DATA)" >&2; exit 2; }
raw=$outdir/raw.jsonl
[ "${REP_START:-1}" = 1 ] && : >"$raw"
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-$outdir/.inductor-cache}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

iters_for() {  # config threads -> timed steps
  if [ "$1" = tiny ]; then
    if [ -n "${ITERS_TINY:-}" ]; then echo "$ITERS_TINY"; elif [ "$2" -le 2 ]; then echo 20; else echo 40; fi
  else
    if [ -n "${ITERS_SMALL:-}" ]; then echo "$ITERS_SMALL"; elif [ "$2" -le 2 ]; then echo 3;
    elif [ "$2" -le 8 ]; then echo 6; else echo 10; fi
  fi
}

if [ -n "${FMA_PEAK:-}" ]; then
  : >"$outdir/fma_peak.jsonl"
  for t in $threads_list; do
    [ "$t" -le "$ncpu" ] || continue
    taskset -c 0-$((t - 1)) "$FMA_PEAK" "$t" --pin --seconds 0.5 2>/dev/null >>"$outdir/fma_peak.jsonl"
  done
  cat "$outdir/fma_peak.jsonl"
fi

for r in $(seq "${REP_START:-1}" $(( ${REP_START:-1} + reps - 1 ))); do
  for config in $configs; do
    for mask in $masks; do
      for t in $threads_list; do
        [ "$t" -le "$ncpu" ] || { [ "$r" = 1 ] && echo "skip threads=$t: only $ncpu CPUs" >&2; continue; }
        it=$(iters_for "$config" "$t")
        cpus=0-$((t - 1))
        line=$(OMP_NUM_THREADS=$t taskset -c "$cpus" "$gradlab" train --config "$config" --mask "$mask" --gamma 0.5 \
               --bias --threads "$t" --max_iters $((it + 5)) --eval_interval 0 --eval_iters 1 \
               --checkpoint_interval 0 --progress none --data "$data" --out "$tmp/g$r$config$mask$t" 2>"$tmp/err" \
               | tail -1) || { echo "gradlab failed: $(tail -3 "$tmp/err")" >&2; exit 1; }
        rm -rf "$tmp/g$r$config$mask$t"
        "$py" - "$line" "$config" "$mask" "$t" "$r" "$it" >>"$raw" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
print(json.dumps(dict(program="gradlab", mode="gradlab", config=sys.argv[2], mask=sys.argv[3], threads=int(sys.argv[4]),
                      rep=int(sys.argv[5]), iters=int(sys.argv[6]), tokens_per_s=j["tokens_per_second"],
                      seconds=j.get("seconds"))))
PY
        m=$modes
        case " $compile_threads " in *" $t "*) ;; *) m=$(echo "$modes" | tr ',' '\n' | grep -v '^compile$' | paste -sd,) ;; esac
        OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t env ${PEER_ENV:-} taskset -c "$cpus" "$py" bench/peer_gpt.py --config "$config" --mask "$mask" --gamma 0.5 \
            --threads "$t" --modes "$m" --iters "$it" --warmup 2 2>"$tmp/err" | grep '^JSON ' | cut -c6- | \
            "$py" -c 'import json,sys
for l in sys.stdin:
    j = json.loads(l); j["rep"] = int(sys.argv[1]); print(json.dumps(j))' "$r" >>"$raw" || {
              echo "peer failed: $(tail -3 "$tmp/err")" >&2; exit 1; }
        echo "rep $r $config $mask threads=$t: $("$py" -c '
import json,sys
rows=[json.loads(l) for l in sys.stdin]
k=rows[-1]; sel=[x for x in rows if x["rep"]==k["rep"] and x["config"]==k["config"] and x["mask"]==k["mask"] and x["threads"]==k["threads"]]
print(", ".join(x["mode"] + " " + (format(x["tokens_per_s"], ".0f") if "tokens_per_s" in x else "ERROR " + x.get("error", "")) for x in sel))' <"$raw")"
      done
    done
  done
done
peak_arg=()
[ -s "$outdir/fma_peak.jsonl" ] && peak_arg=(--peak "$outdir/fma_peak.jsonl")
"$py" bench/train_scaling_report.py "$raw" "${peak_arg[@]}" --json "$outdir/summary.json" --md "$outdir/table.md"
cat "$outdir/table.md"
