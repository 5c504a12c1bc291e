#!/usr/bin/env python3
"""torch_matmul.py - torch.matmul GFLOP/s on the transformer shapes of bench/bench_gemm.cpp (issue 21).

Shapes (M,K,N), the same list as bench_gemm's register_all: the tiny and small GPTs' forward products as
NN (x @ W) and NT (x @ W^T, W stored (N,K), as nn.Linear), and the weight gradients as TN (dy^T @ x, dy stored
(K,M)), K = B*T tokens. GFLOP/s = 2 M N K per call / median wall time over --reps rounds of calls lasting
about --seconds each; rounds are interleaved over the shapes. The result is checked against float64 first.
  torch_matmul.py [--threads 1,16] [--reps 5] [--seconds 0.1]
Prints one JSON line per (shape, threads): {"form": "NT", "M":..,"K":..,"N":..,"threads":..,"gflops":..}.
Exit codes: 0 ok, 1 a wrong product, 2 bad usage.
"""
import argparse
import json
import statistics
import sys
import time

import torch

FWD = [(768, 128, 384), (768, 128, 128), (768, 128, 512), (768, 512, 128),
       (2048, 384, 1152), (2048, 384, 384), (2048, 384, 1536), (2048, 1536, 384)]
WGRAD = [(384, 768, 128), (128, 768, 128), (512, 768, 128), (128, 768, 512),
         (1152, 2048, 384), (384, 2048, 384), (1536, 2048, 384), (384, 2048, 1536)]
SHAPES = [("NN",) + s for s in FWD] + [("NT",) + s for s in FWD] + [("TN",) + s for s in WGRAD]


def operands(form, M, K, N):
    g = torch.Generator().manual_seed(M * 1000003 + K * 1009 + N)
    a = torch.rand(K, M, generator=g) * 2 - 1 if form == "TN" else torch.rand(M, K, generator=g) * 2 - 1
    b = torch.rand(N, K, generator=g) * 2 - 1 if form == "NT" else torch.rand(K, N, generator=g) * 2 - 1
    A = a.t() if form == "TN" else a  # (M,K) views, as autograd passes them
    Bm = b.t() if form == "NT" else b  # (K,N)
    return A, Bm


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,16")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.1)
    args = ap.parse_args()
    try:
        threads = [int(t) for t in args.threads.split(",")]
        assert all(t >= 1 for t in threads) and args.reps >= 1 and args.seconds > 0
    except (ValueError, AssertionError):
        print(f"torch_matmul.py: bad usage: --threads {args.threads!r} (expected e.g. 1,16), --reps {args.reps} "
              f"(>= 1), --seconds {args.seconds} (> 0)", file=sys.stderr)
        return 2
    ops = {s: operands(*s) for s in SHAPES}
    for s, (A, B) in ops.items():
        ref = A.double() @ B.double()
        got = torch.matmul(A, B).double()
        tol = 2 * (s[2] + 4) * 2.0 ** -24 * (A.double().abs() @ B.double().abs())
        if not bool(((got - ref).abs() <= tol).all()):
            print(f"torch_matmul.py: {s} disagrees with float64 beyond the float bound", file=sys.stderr)
            return 1
    for t in threads:
        torch.set_num_threads(t)
        times = {s: [] for s in SHAPES}
        calls = {}
        for s, (A, B) in ops.items():  # warm-up and calibration: calls per round of about args.seconds
            torch.matmul(A, B)
            n, dt = 1, 0.0
            while dt < 0.02:
                t0 = time.perf_counter()
                for _ in range(n):
                    torch.matmul(A, B)
                dt = time.perf_counter() - t0
                n *= 2
            calls[s] = max(1, int(n / 2 * args.seconds / dt))
        for _ in range(args.reps):
            for s, (A, B) in ops.items():
                t0 = time.perf_counter()
                for _ in range(calls[s]):
                    torch.matmul(A, B)
                times[s].append((time.perf_counter() - t0) / calls[s])
        for s in SHAPES:
            form, M, K, N = s
            med = statistics.median(times[s])
            print(json.dumps(dict(program="torch.matmul", form=form, M=M, K=K, N=N, threads=t,
                                  gflops=2 * M * N * K / med / 1e9, median_us=med * 1e6, reps=args.reps,
                                  torch_version=torch.__version__)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
