#!/usr/bin/env bash
# The 5-seed table of docs/science.md (issue 15): lesson 09 (or 11) once per seed, P seeds at a time, one thread
# each, then the mean ± sd over seeds of what each run's summary.json / loss_per_block.csv recorded.
#   bench/sink_seeds.sh OUT LESSON FIRST_SEED SEEDS PARALLEL [lesson flags...]
#   bench/sink_seeds.sh out/sinks 09 1337 5 5                    # the flagship's default configuration
#   bench/sink_seeds.sh --aggregate out/sinks                     # only the table, from runs already made
# LESSON is 09 or 11; the lessons are looked for in build/lessons (or $LESSONS).
set -euo pipefail
cd "$(dirname "$0")/.."
aggregate() {
  python3 - "$1" <<'PY'
import json, math, sys, glob, csv, os
root = sys.argv[1]
def ms(v):
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd
runs = []
for f in sorted(glob.glob(os.path.join(root, "seed-*", "summary.json"))):
    runs += json.load(open(f))["runs"]
if runs:
    uniform = json.load(open(glob.glob(os.path.join(root, "seed-*", "summary.json"))[0]))["uniform"]
    print(f"lesson 09, {len(runs) // 2} seeds; uniform rows: {uniform:.4f}")
    print("| mask | seeds | normalised first-token share (rows >= 8; per seed) | x uniform | raw share | sink ratio (eps 0.3, rows >= 1) | sink ratio, rows >= 8 | strongest head | real mass | val loss |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mask in ("causal", "stablemask"):
        r = [x for x in runs if x["mask"] == mask]
        if not r: continue
        share = ms([x["sinks"]["mean"]["late_norm"] for x in r])
        raw = ms([x["sinks"]["mean"]["late_raw"] for x in r])
        ratio = ms([x["sinks"]["sink_ratio"] for x in r])
        late = ms([x["sinks"]["sink_ratio_late"] for x in r])
        strong = ms([x["sinks"]["strongest"]["late_norm"] for x in r])
        mass = ms([x["sinks"]["mean"]["real_mass"] for x in r])
        loss = ms([x["val_loss"] for x in r])
        per = ", ".join(f'{x["sinks"]["mean"]["late_norm"]:.3f}' for x in r)
        print(f"| {mask} | {len(r)} | {share[0]:.4f} ± {share[1]:.4f} ({per}) | {share[0]/uniform:.1f} | {raw[0]:.4f} ± {raw[1]:.4f} | "
              f"{ratio[0]:.3f} ± {ratio[1]:.3f} | {late[0]:.3f} ± {late[1]:.3f} | {strong[0]:.3f} ± {strong[1]:.3f} | {mass[0]:.3f} ± {mass[1]:.3f} | {loss[0]:.4f} ± {loss[1]:.4f} |")
    c = {x["seed"]: x["sinks"]["mean"]["late_norm"] for x in runs if x["mask"] == "causal"}
    s = {x["seed"]: x["sinks"]["mean"]["late_norm"] for x in runs if x["mask"] == "stablemask"}
    lower = sum(1 for k in c if k in s and s[k] < c[k])
    goal = sum(1 for x in runs if x["mask"] == "causal" and x["sinks"]["mean"]["late_norm"] >= 4 * uniform and x["sinks"]["sink_ratio"] >= 0.25)
    print(f"StableMask's normalised share is lower in {lower} of {len(c)} seeds; the causal goal (>= 4x uniform and sink ratio >= 0.25) is met in {goal} of {len(c)}.")
rows = []
for f in sorted(glob.glob(os.path.join(root, "seed-*", "loss_per_block.csv"))):
    for r in list(csv.reader(open(f)))[1:]:  # seed, reader (quoted; older runs left it unquoted), 4 blocks
        rows.append({"seed": r[0], "reader": ",".join(r[1:-4]), **{f"block{b}": r[-4 + b] for b in range(4)}})
if rows:
    readers = list(dict.fromkeys(r["reader"] for r in rows))
    print(f"lesson 11, {len(set(r['seed'] for r in rows))} seeds: loss per block of L positions (mean ± sd over seeds)")
    print("| reader | 0..L | L..2L | 2L..3L | 3L..4L |")
    print("|---|---|---|---|---|")
    for rd in readers:
        cells = []
        for b in range(4):
            m, sd = ms([float(r[f"block{b}"]) for r in rows if r["reader"] == rd])
            cells.append(f"{m:.4f} ± {sd:.4f}")
        print(f"| {rd} | " + " | ".join(cells) + " |")
PY
}
if [ "${1:-}" = "--aggregate" ]; then aggregate "$2"; exit 0; fi
if [ $# -lt 5 ]; then sed -n 2,8p "$0"; exit 2; fi
out=$1 lesson=$2 first=$3 seeds=$4 par=$5
shift 5
bin=$(ls "${LESSONS:-build/lessons}"/"$lesson"-* 2>/dev/null | head -1)
[ -x "$bin" ] || { echo "sink_seeds: no lesson $lesson in ${LESSONS:-build/lessons} (build lesson-$lesson-... first)" >&2; exit 2; }
mkdir -p "$out"
t0=$(date +%s)
for ((s = first; s < first + seeds; s++)); do
  echo "$s"
done | xargs -P "$par" -I{} sh -c "OMP_NUM_THREADS=1 '$bin' --no-pause --seed {} --out '$out/seed-{}' $* > '$out/seed-{}.log' 2>&1 || echo 'seed {} failed' >&2"
echo "sink_seeds: $seeds seeds of lesson $lesson, $par at a time, 1 thread each: $(( $(date +%s) - t0 )) s" | tee "$out/time.txt"
aggregate "$out"
