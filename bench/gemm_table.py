#!/usr/bin/env python3
"""gemm_table.py - one markdown table of gradlab's sgemm against OpenBLAS and torch.matmul on the transformer shapes.

  gemm_table.py --threads T BENCH_GEMM.json [--torch torch_matmul.jsonl]

BENCH_GEMM.json: bench/bench_gemm --benchmark_format=json with --benchmark_repetitions (medians are read);
torch_matmul.jsonl: bench/torch_matmul.py's output. Prints GFLOP/s per shape, the ratios gradlab / peer, the
geomean of each ratio over the 24 transformer shapes (the squares are listed but not in the geomeans) and the
shapes where gradlab is below 0.95x. Exit codes: 0 ok, 1 unreadable input, 2 bad usage.
"""
import argparse
import json
import math
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_json")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--torch")
    a = ap.parse_args()
    try:
        d = json.load(open(a.bench_json))
        tm = {}
        if a.torch:
            for l in open(a.torch):
                j = json.loads(l)
                if j["threads"] == a.threads:
                    tm[(j["form"], j["M"], j["K"], j["N"])] = j["gflops"]
    except (OSError, ValueError, KeyError) as e:
        print(f"gemm_table.py: cannot read the input: {e}", file=sys.stderr)
        return 1
    g = {}
    for b in d["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        parts = b["run_name"].replace("/real_time", "").split("/")  # gemm/sgemm/NN/MxKxN/threads:t or openblas/NN/MxKxN/threads:t
        prog = "gradlab" if parts[0] == "gemm" else parts[0]
        if prog == "gradlab":
            parts = parts[1:]
        if parts[-1] != f"threads:{a.threads}" or (prog == "gradlab" and parts[0] != "sgemm"):
            continue
        M, K, N = map(int, parts[2].split("x"))
        g[(prog, parts[1], M, K, N)] = b["GFLOP/s"]
    shapes = sorted({k[1:] for k in g if k[0] == "gradlab"}, key=lambda s: ("NN NT TN".split().index(s[0]),
                                                                           not (s[1] == s[2] == s[3]), s[1] * s[2] * s[3]))
    print(f"| form | M x K x N | gradlab | OpenBLAS | torch.matmul | gradlab / OpenBLAS | gradlab / torch |")
    print("|---|---|---:|---:|---:|---:|---:|")
    ratios = {"openblas": [], "torch": []}
    low = []
    for s in shapes:
        gl, ob, tt = g[("gradlab",) + s], g.get(("openblas",) + s), tm.get(s)
        square = s[1] == s[2] == s[3]
        if not square:
            if ob:
                ratios["openblas"].append(gl / ob)
                if gl / ob < 0.95:
                    low.append(f"{s[0]} {s[1]}x{s[2]}x{s[3]} {gl / ob:.2f}x OpenBLAS")
            if tt:
                ratios["torch"].append(gl / tt)
        f = lambda x: f"{x:,.0f}" if x else "-"
        r = lambda x: f"{gl / x:.2f}" if x else "-"
        print(f"| {s[0]}{' (square)' if square else ''} | {s[1]}x{s[2]}x{s[3]} | {f(gl)} | {f(ob)} | {f(tt)} | {r(ob)} | {r(tt)} |")
    gm = lambda v: math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")
    print(f"\nthreads {a.threads}: geomean over {len(ratios['openblas'])} transformer shapes gradlab / OpenBLAS "
          f"{gm(ratios['openblas']):.2f}, over {len(ratios['torch'])} gradlab / torch.matmul {gm(ratios['torch']):.2f}; "
          f"below 0.95x OpenBLAS: {', '.join(low) if low else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
