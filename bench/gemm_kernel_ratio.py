#!/usr/bin/env python3
"""gemm_kernel_ratio.py - the AVX-512 GEMM kernel against the AVX2 one, from one bench_gemm run.

  gemm_kernel_ratio.py BENCH_GEMM.json [--threads T]

BENCH_GEMM.json: bench_gemm --benchmark_format=json (or --benchmark_out=...) run on a CPU with AVX-512, so that it
registered both gemm/sgemm/... (the AVX-512 kernel) and gemm/sgemm_avx2/... (the AVX2 kernel forced), e.g. with
--benchmark_filter='^gemm/sgemm(_avx2)?/.*/threads:1/' --benchmark_repetitions=5
--benchmark_enable_random_interleaving=true. Prints per shape the median GFLOP/s of both over wall-clock time and
over CPU time (the process's, all threads), their ratios, and the geomean of the ratios over the 24 transformer
shapes (the squares are listed but not in the geomean). Exit codes: 0 ok, 1 unreadable or no pairs, 2 bad usage.
"""
import argparse
import json
import math
import statistics
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_json")
    ap.add_argument("--threads", type=int, help="only this thread count (default: every one found)")
    a = ap.parse_args()
    try:
        d = json.load(open(a.bench_json))
        runs = {}
        for b in d["benchmarks"]:
            if b.get("run_type") != "iteration":
                continue
            parts = b["run_name"].replace("/real_time", "").split("/")  # gemm/sgemm[_avx2]/NN/MxKxN/threads:t
            if len(parts) != 5 or parts[0] != "gemm" or parts[1] not in ("sgemm", "sgemm_avx2"):
                continue
            threads = int(parts[4].split(":")[1])
            if a.threads is not None and threads != a.threads:
                continue
            M, K, N = map(int, parts[3].split("x"))
            unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            flop = 2.0 * M * K * N
            key = (threads, parts[2], M, K, N)
            runs.setdefault((key, parts[1]), []).append(
                (flop / (b["real_time"] * unit) * 1e-9, flop / (b["cpu_time"] * unit) * 1e-9))
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"gemm_kernel_ratio.py: cannot read the input: {e}", file=sys.stderr)
        return 1
    keys = sorted({k for k, fam in runs if (k, "sgemm") in runs and (k, "sgemm_avx2") in runs},
                  key=lambda k: (k[0], "NN NT TN TT".split().index(k[1]), not (k[2] == k[3] == k[4]), k[2] * k[3] * k[4]))
    if not keys:
        print("gemm_kernel_ratio.py: no shape has both gemm/sgemm and gemm/sgemm_avx2 runs", file=sys.stderr)
        return 1
    med = lambda v, i: statistics.median(x[i] for x in v)
    gm = lambda v: math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")
    print("| threads | form | M x K x N | AVX2 GFLOP/s | AVX-512 GFLOP/s | AVX-512 / AVX2 (wall) | AVX-512 / AVX2 (CPU time) |")
    print("|---:|---|---|---:|---:|---:|---:|")
    ratios = {}
    for k in keys:
        w, v = runs[(k, "sgemm")], runs[(k, "sgemm_avx2")]
        rw, rc = med(w, 0) / med(v, 0), med(w, 1) / med(v, 1)
        square = k[2] == k[3] == k[4]
        if not square:
            ratios.setdefault(k[0], []).append((rw, rc))
        print(f"| {k[0]} | {k[1]}{' (square)' if square else ''} | {k[2]}x{k[3]}x{k[4]} | {med(v, 0):.1f} | "
              f"{med(w, 0):.1f} | {rw:.3f} | {rc:.3f} |")
    for t, r in sorted(ratios.items()):
        rw, rc = [x[0] for x in r], [x[1] for x in r]
        print(f"\nthreads {t}: geomean AVX-512 / AVX2 over {len(r)} transformer shapes: wall {gm(rw):.3f} "
              f"(min {min(rw):.3f}, max {max(rw):.3f}), CPU time {gm(rc):.3f} (min {min(rc):.3f}, max {max(rc):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
