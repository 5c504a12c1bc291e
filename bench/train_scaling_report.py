#!/usr/bin/env python3
"""train_scaling_report.py - medians, ratios, MFU and parallel efficiency from bench/train_scaling.sh's raw.jsonl.

  train_scaling_report.py RAW.jsonl [--peak fma_peak.jsonl] [--json summary.json] [--md table.md]

Per (config, mask, threads): the median tokens/s over the repetitions of gradlab and of each PyTorch mode, the
ratio gradlab / best PyTorch mode, and MFU = model FLOPs per token x tokens/s / FMA peak of the cores used.
Model FLOPs per token = 6 N + 12 L T C (nanoGPT's estimate_mfu; N = L (12 C^2 + 13 C) + V C + 2 C, the
non-embedding parameters with biases and the tied lm_head). Parallel efficiency at n threads = tokens/s at n /
(n x tokens/s at 1). Needs only the standard library. Exit codes: 0 ok, 1 unreadable input, 2 bad usage.
"""
import argparse
import json
import statistics
import sys

CONFIGS = {"tiny": (4, 128, 64), "small": (6, 384, 256)}  # L, C, T
VOCAB = 65
MODES = ["gradlab", "eager", "sdpa", "compile"]


def flops_per_token(config):
    L, C, T = CONFIGS[config]
    N = L * (12 * C * C + 13 * C) + VOCAB * C + 2 * C
    return 6 * N + 12 * L * T * C


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw")
    ap.add_argument("--peak")
    ap.add_argument("--json")
    ap.add_argument("--md")
    a = ap.parse_args()
    try:
        rows = [json.loads(l) for l in open(a.raw) if l.strip()]
        peaks, peaks512 = {}, {}  # fma_peak lines; "isa": "avx512" ones (--avx512) give the machine's wider peak
        for j in (map(json.loads, open(a.peak)) if a.peak else []):
            (peaks512 if j.get("isa") == "avx512" else peaks)[int(j["threads"])] = float(j["gflops"])
    except (OSError, ValueError, KeyError) as e:
        print(f"train_scaling_report.py: cannot read the input: {e}", file=sys.stderr)
        return 1
    groups = {}
    for r in rows:
        if "tokens_per_s" not in r:
            continue
        groups.setdefault((r["config"], r["mask"], int(r["threads"]), r["mode"]), []).append(float(r["tokens_per_s"]))
    keys = sorted({k[:3] for k in groups}, key=lambda k: (list(CONFIGS).index(k[0]), k[1], k[2]))
    out = []
    for cfg, mask, t in keys:
        e = dict(config=cfg, mask=mask, threads=t, flops_per_token=flops_per_token(cfg), fma_peak_gflops=peaks.get(t))
        for m in MODES:
            v = groups.get((cfg, mask, t, m))
            if v:
                e[m] = dict(median=statistics.median(v), runs=v)
        torch_best = max((e[m]["median"], m) for m in MODES[1:] if m in e) if any(m in e for m in MODES[1:]) else None
        if torch_best:
            e["best_torch_mode"], e["best_torch"] = torch_best[1], torch_best[0]
            if "gradlab" in e:
                e["ratio_vs_best_torch"] = e["gradlab"]["median"] / torch_best[0]
        for key, pk in (("mfu", peaks), ("mfu_avx512", peaks512)):
            if pk.get(t):
                for m in MODES:
                    if m in e:
                        e[m][key] = e["flops_per_token"] * e[m]["median"] / (pk[t] * 1e9)
        out.append(e)
    eff = []
    for cfg in CONFIGS:
        for mask in ("causal", "stablemask"):
            for m in MODES:
                one = groups.get((cfg, mask, 1, m))
                if not one:
                    continue
                base = statistics.median(one)
                for e in out:
                    if e["config"] == cfg and e["mask"] == mask and m in e and e["threads"] > 1:
                        eff.append(dict(config=cfg, mask=mask, mode=m, threads=e["threads"],
                                        speedup=e[m]["median"] / base,
                                        efficiency=e[m]["median"] / (e["threads"] * base)))
    summary = dict(rows=out, efficiency=eff, peaks=peaks, peaks_avx512=peaks512,
                   flops_formula="6N + 12 L T C, N = L(12C^2+13C) + V C + 2C")
    lines = ["| config | mask | threads | gradlab | eager | sdpa | compile | gradlab / best PyTorch | "
             "gradlab MFU | best PyTorch MFU |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for e in out:
        cell = lambda m: f"{e[m]['median']:,.0f}" if m in e else "-"
        mfu = lambda m: (f"{100 * e[m]['mfu']:.0f}%" if m in e and "mfu" in e[m] else "-") + (
            f" / {100 * e[m]['mfu_avx512']:.0f}%" if m in e and "mfu_avx512" in e[m] else "")
        ratio = f"**{e['ratio_vs_best_torch']:.2f}** ({e['best_torch_mode']})" if "ratio_vs_best_torch" in e else "-"
        lines.append(f"| {e['config']} | {e['mask']} | {e['threads']} | {cell('gradlab')} | {cell('eager')} | "
                     f"{cell('sdpa')} | {cell('compile')} | {ratio} | {mfu('gradlab')} | "
                     f"{mfu(e.get('best_torch_mode', '')) if 'best_torch_mode' in e else '-'} |")
    lines += ["", "Parallel efficiency (tokens/s at n / (n x tokens/s at 1)):", "",
              "| config | mask | program | " + " | ".join(f"{t} thr" for t in sorted({x['threads'] for x in eff})) + " |",
              "|---|---|---|" + "---:|" * len({x['threads'] for x in eff})]
    ts = sorted({x["threads"] for x in eff})
    for cfg in CONFIGS:
        for mask in ("causal", "stablemask"):
            for m in MODES:
                sel = {x["threads"]: x for x in eff if x["config"] == cfg and x["mask"] == mask and x["mode"] == m}
                if sel:
                    lines.append(f"| {cfg} | {mask} | {m} | " + " | ".join(
                        f"{100 * sel[t]['efficiency']:.0f}%" if t in sel else "-" for t in ts) + " |")
    if peaks:
        lines += ["", "MFU = model FLOPs/token (6N + 12LTC) x tokens/s / FMA peak of the threads used; "
                  "with two figures: against the AVX2 peak / the AVX-512 peak.",
                  "", "FMA peak (bench/fma_peak, pinned), AVX2: " + ", ".join(f"{t} thr {g:,.0f} GFLOP/s"
                                                                          for t, g in sorted(peaks.items()))]
    if peaks512:
        lines += ["", "AVX-512: " + ", ".join(f"{t} thr {g:,.0f} GFLOP/s" for t, g in sorted(peaks512.items()))]
    md = "\n".join(lines) + "\n"
    if a.json:
        json.dump(summary, open(a.json, "w"), indent=1)
    if a.md:
        open(a.md, "w").write(md)
    else:
        print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
