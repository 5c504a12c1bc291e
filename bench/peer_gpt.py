#!/usr/bin/env python3
"""peer_gpt.py - gradlab's own PyTorch peer for training throughput (issue 21).

A nanoGPT-style GPT written for gradlab's benchmarks, with the architecture that
`gradlab train --config tiny|small --bias --mask causal|stablemask --gamma G` trains:
  token embedding (V,C) tied to the bias-free lm_head; learned positions (T,C);
  L pre-LayerNorm blocks (LayerNorm with bias, eps 1e-5):
      x += c_proj(attn(c_attn(ln_1(x))))        c_attn: Linear(C,3C), c_proj: Linear(C,C), both with bias
      x += c_proj(gelu_tanh(c_fc(ln_2(x))))     c_fc: Linear(C,4C), c_proj: Linear(4C,C)
  final LayerNorm; mean cross-entropy; no dropout. AdamW (lr 1e-3, betas 0.9/0.99 as gradlab's defaults,
  weight decay 0.1 on 2-D tensors only), gradient-norm clipping at 1.0.

Attention masks:
  causal      softmax(q k^T / sqrt(d) + causal mask) v
  stablemask  one constant gamma: row i sees the real keys j <= i and pseudo logits -j*gamma for j > i
              (j < T); the softmax runs over the whole row and the pseudo entries are then dropped. This is
              causal attention plus one zero-value key per row whose logit is tau_i = log sum_{j>i} e^{-j gamma}
              (docs/stablemask.md), the form the sdpa mode uses.

Modes (--modes, comma separated; each is timed in turn inside one process):
  eager    the attention written out: (B,H,T,T) scores, masked softmax, probabilities @ v
  sdpa     F.scaled_dot_product_attention: is_causal=True for causal; for stablemask an additive float mask
           of shape (T, T+1) over the keys with one zero key and zero value appended (the sink column holds tau_i)
  compile  torch.compile of the sdpa model (the optimizer step stays eager, as nanoGPT's train.py)

Timing: --warmup steps (at least 3 for compile; they include the compilation), then --iters timed optimizer steps;
tokens/s = batch * block * iters / wall time of the timed steps. Prints one line per mode:
  JSON {"mode": ..., "tokens_per_s": ..., ...}
  peer_gpt.py --config tiny --mask causal --threads 4 --modes eager,sdpa,compile --iters 20
  peer_gpt.py selftest     (the three modes agree on loss and gradients, float64)
Exit codes: 0 ok, 1 runtime failure, 2 bad usage.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12),
    "small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=8),
}
VOCAB = 65  # tinyshakespeare's characters, what gradlab trains on in the driver


def sink_logits(T, gamma):
    """tau_i = log sum_{j=i+1}^{T-1} exp(-j gamma) for i in 0..T-1 (-inf for the last row), in float64."""
    j = torch.arange(T, dtype=torch.float64)
    tau = torch.full((T,), -math.inf, dtype=torch.float64)
    for i in range(T - 1):
        tau[i] = torch.logsumexp(-gamma * j[i + 1:], dim=0)
    return tau


class Attention(nn.Module):
    def __init__(self, C, H, T, mask, gamma, mode):
        super().__init__()
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.H, self.mask, self.mode = H, mask, mode
        allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))
        self.register_buffer("allowed", allowed, persistent=False)
        # eager stablemask: the pseudo logits -j*gamma of column j, used above the diagonal
        self.register_buffer("pseudo", (-gamma * torch.arange(T, dtype=torch.float32)).view(1, T), persistent=False)
        # sdpa stablemask: (T, T+1) additive mask, 0 / -inf over the real keys and tau_i on the zero sink key
        # (kept in float64 too: a float32 tau would leave a 1e-8 relative error that the float64 selftest sees)
        add = torch.zeros(T, T + 1, dtype=torch.float64)
        add[:, :T].masked_fill_(~allowed, -math.inf)
        add[:, T] = sink_logits(T, gamma)
        self.register_buffer("sink_mask64", add, persistent=False)
        self.register_buffer("sink_mask32", add.float(), persistent=False)

    def forward(self, x):
        B, T, C = x.shape  # x is (B,T,C)
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))  # (B,H,T,d)
        if self.mode == "eager":
            s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))  # (B,H,T,T)
            ok = self.allowed[:T, :T]
            if self.mask == "causal":
                p = F.softmax(s.masked_fill(~ok, float("-inf")), dim=-1)
            else:
                p = F.softmax(torch.where(ok, s, self.pseudo[:, :T].to(s.dtype)), dim=-1).masked_fill(~ok, 0.0)
            y = p @ v
        elif self.mask == "causal":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            z = q.new_zeros(B, self.H, 1, q.size(-1))  # the sink key and its zero value
            y = F.scaled_dot_product_attention(q, torch.cat([k, z], 2), torch.cat([v, z], 2),
                                               attn_mask=self.sink_mask64 if q.dtype == torch.float64 else self.sink_mask32)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    def __init__(self, C, H, T, mask, gamma, mode):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = Attention(C, H, T, mask, gamma, mode)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = nn.Linear(C, 4 * C)
        self.c_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class PeerGPT(nn.Module):
    def __init__(self, n_layer, n_head, n_embd, block_size, mask, gamma, mode, vocab=VOCAB):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, block_size, mask, gamma, mode) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as gradlab's GPT
        for n, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if n.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif n.endswith(".bias") and "ln_" not in n:
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.h:
            x = b(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def model_flops_per_token(n_layer, n_embd, block_size, vocab=VOCAB):
    """6 N + 12 L T C (nanoGPT's estimate_mfu): N = non-embedding parameters counted as nanoGPT does
    (the tied wte/lm_head counted, wpe not): L (12 C^2 + 13 C) + V C + 2 C with biases."""
    C, L = n_embd, n_layer
    N = L * (12 * C * C + 13 * C) + vocab * C + 2 * C
    return 6 * N + 12 * L * block_size * C, N


def make(args, mode):
    c = CONFIGS[args.config]
    torch.manual_seed(args.seed)
    m = PeerGPT(c["n_layer"], c["n_head"], c["n_embd"], c["block_size"], args.mask, args.gamma,
                "eager" if mode == "eager" else "sdpa")
    decay = [p for p in m.parameters() if p.dim() >= 2]
    nodecay = [p for p in m.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    fwd = torch.compile(m) if mode == "compile" else m
    return m, fwd, opt


def bench_mode(args, mode):
    c = CONFIGS[args.config]
    B, T = c["batch_size"], c["block_size"]
    m, fwd, opt = make(args, mode)
    g = torch.Generator().manual_seed(args.seed + 1)
    data = torch.randint(VOCAB, (100_000,), generator=g)

    def step():
        ix = torch.randint(len(data) - T - 1, (B,), generator=g)
        x = torch.stack([data[i:i + T] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + T] for i in ix])
        loss = fwd(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss.item()

    warmup = max(args.warmup, 3) if mode == "compile" else args.warmup  # compile: forward, backward, a check
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    loss = 0.0
    for _ in range(args.iters):
        loss = step()
    dt = time.perf_counter() - t0
    fpt, n = model_flops_per_token(c["n_layer"], c["n_embd"], T)
    tps = B * T * args.iters / dt
    return dict(program="pytorch", mode=mode, config=args.config, mask=args.mask, gamma=args.gamma,
                threads=args.threads, torch_threads=torch.get_num_threads(), iters=args.iters, warmup=warmup,
                warmup_s=round(warm_s, 3), seconds=round(dt, 4), tokens_per_s=tps, loss_last=loss,
                flops_per_token=fpt, n_params_nonemb=n, model_gflops=fpt * tps / 1e9,
                torch_version=torch.__version__, affinity=sorted(os.sched_getaffinity(0)))


def selftest(_args):
    """The three attention paths give the same loss and gradients (float64), both masks."""
    ok = True
    for mask in ("causal", "stablemask"):
        res = {}
        for mode in ("eager", "sdpa"):
            torch.manual_seed(0)
            m = PeerGPT(2, 2, 16, 8, mask, 0.5, mode, vocab=11).double()
            gen = torch.Generator().manual_seed(5)
            idx, tgt = torch.randint(11, (3, 8), generator=gen), torch.randint(11, (3, 8), generator=gen)
            loss = m(idx, tgt)
            loss.backward()
            res[mode] = (loss.item(), [p.grad.clone() for p in m.parameters()])
        same = abs(res["eager"][0] - res["sdpa"][0]) < 1e-12 and all(
            torch.allclose(a, b, atol=1e-10, rtol=1e-8) for a, b in zip(res["eager"][1], res["sdpa"][1]))
        print(("PASS " if same else "FAIL ") + f"{mask}: eager and sdpa agree (loss {res['eager'][0]:.12f})")
        ok &= same
    # stablemask with a huge gamma is causal
    torch.manual_seed(0)
    a = Attention(8, 2, 6, "stablemask", 1e4, "eager").double()
    torch.manual_seed(0)
    b = Attention(8, 2, 6, "causal", 1.0, "eager").double()
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    same = torch.allclose(a(x), b(x), atol=1e-12)
    print(("PASS " if same else "FAIL ") + "stablemask(gamma=1e4) == causal")
    ok &= same
    # the sink form's tau against a direct sum
    tau = sink_logits(5, 0.7)
    direct = [math.log(sum(math.exp(-0.7 * j) for j in range(i + 1, 5))) for i in range(4)]
    same = all(abs(float(tau[i]) - direct[i]) < 1e-12 for i in range(4)) and tau[4] == -math.inf
    print(("PASS " if same else "FAIL ") + "sink logits tau_i")
    ok &= same
    print("selftest:", "OK" if ok else "FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", nargs="?", default="bench", choices=["bench", "selftest"])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--mask", choices=["causal", "stablemask"], default="causal")
    ap.add_argument("--gamma", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modes", default="eager,sdpa,compile")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args()
    modes = args.modes.split(",")
    bad = [x for x in modes if x not in ("eager", "sdpa", "compile")]
    if bad or args.threads < 1 or args.iters < 1 or args.warmup < 0:
        print(f"peer_gpt.py: bad usage: modes {bad} (expected eager, sdpa, compile), threads {args.threads} "
              f"and iters {args.iters} (expected >= 1), warmup {args.warmup} (expected >= 0)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    if args.cmd == "selftest":
        return selftest(args)
    for mode in modes:
        try:
            r = bench_mode(args, mode)
        except Exception as e:  # one mode failing (a compiler missing, say) must not hide the others
            r = dict(program="pytorch", mode=mode, config=args.config, mask=args.mask, threads=args.threads,
                     error=f"{type(e).__name__}: {str(e)[:300]}")
        print("JSON " + json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
