#!/usr/bin/env python3
"""Portable / AVX2 time ratio per kernel between two builds (issue 19).

    bench/portable_ratio.py AVX2_BIN PORTABLE_BIN [--runs N] [--reps R]

AVX2_BIN is bench_portable from a build with the AVX2 kernels (its AVX2 rows are used), PORTABLE_BIN the one
from a -DGRADLAB_AVX2=OFF build (its portable rows). The two programs run alternately, N times each, with
--tsv --reps R; the ratio is of the medians over the runs of CPU ns per unit (each run's figure is itself a
median over R interleaved repetitions). Wall-time ratios are printed beside them.
"""
import argparse
import statistics
import subprocess


def run(binary, reps, path):
    out = subprocess.run([binary, "--tsv", "--reps", str(reps)], check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) == 4 and fields[1] == path:
            rows[fields[0]] = (float(fields[2]), float(fields[3]))
    if not rows:
        raise SystemExit(f"portable_ratio: {binary} printed no '{path}' rows; is it the right build?")
    return out.splitlines()[0], rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("avx2_bin")
    ap.add_argument("portable_bin")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    simd, portable = {}, {}
    for _ in range(args.runs):
        line_a, a = run(args.avx2_bin, args.reps, "avx2")
        line_p, p = run(args.portable_bin, args.reps, "portable")
        for name, value in a.items():
            simd.setdefault(name, []).append(value)
        for name, value in p.items():
            portable.setdefault(name, []).append(value)
    print(f"AVX2 binary:     {args.avx2_bin}: {line_a}")
    print(f"portable binary: {args.portable_bin}: {line_p}")
    print(f"{args.runs} alternating runs of each, --reps {args.reps}; medians of CPU ns per unit")
    print(f"{'kernel':34s} {'AVX2':>10s} {'portable':>10s} {'ratio':>7s} {'wall ratio':>11s}")
    for name in simd:
        if name not in portable:
            continue
        ac = statistics.median(v[0] for v in simd[name])
        pc = statistics.median(v[0] for v in portable[name])
        aw = statistics.median(v[1] for v in simd[name])
        pw = statistics.median(v[1] for v in portable[name])
        print(f"{name:34s} {ac:10.4f} {pc:10.4f} {pc / ac:7.2f} {pw / aw:11.2f}")


if __name__ == "__main__":
    main()
