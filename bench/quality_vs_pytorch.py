#!/usr/bin/env python3
"""Train the PyTorch peer (../shared/bench/ref_gpt.py) on a text file with nanoGPT's shakespeare-char recipe,
then score it with gradlab's evaluation rule, so that a val loss from `gradlab train` + `gradlab eval` can be
read against the same model trained by PyTorch on the same data.

Recipe (nanoGPT train.py with config/train_shakespeare_char.py and the README's CPU overrides): AdamW
lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on tensors of 2+ dims, linear warmup over 100 steps, cosine
decay to lr/10 at max_iters, gradient clipping at 1.0, batch 12, block 64, no dropout. The peer model always
has biases (ref_gpt.py's choice), so compare it with `gradlab train --bias`; `--no_bias --gelu exact` turns it
into nanoGPT's own architecture (bias=False, exact-erf GELU), the one its README's CPU run used.

Data: the character vocabulary is the sorted set of characters; the validation split starts at token
int(0.9 n), as in nanoGPT and gradlab (before session 3 this script started it one token later, which moved
its full-val score by about -0.0004: measured on two gradlab models); training windows are drawn at random (torch's seeded generator, not gradlab's Rng, so
the batches differ from gradlab's: compare across seeds, not run against run).

Scores printed at the end (one JSON line):
  val_full:  mean cross-entropy over consecutive non-overlapping windows of T+1 tokens of the val split
             (gradlab eval's rule: `gradlab eval --model DIR --split val`);
  val_est20: nanoGPT's estimate, the mean over 20 random val batches (what its README's 1.88 refers to).

Run with Debian's python (torch 1.13): /usr/bin/python3 bench/quality_vs_pytorch.py --seed 1337
CI never runs it.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "bench"))
import torch  # noqa: E402
import ref_gpt  # noqa: E402


def lr_at(step, lr, min_lr, warmup, decay_iters):
    # nanoGPT's get_lr
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step > decay_iters:
        return min_lr
    ratio = (step - warmup) / (decay_iters - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def val_full(model, val, T):
    """gradlab eval's rule: mean cross-entropy over consecutive non-overlapping windows of T+1 tokens of `val`,
    the last partial window dropped. Leaves the model in eval mode."""
    model.eval()
    with torch.no_grad():
        n_win = len(val) // (T + 1)
        windows = val[:n_win * (T + 1)].view(n_win, T + 1)
        total, count = 0.0, 0
        for s in range(0, n_win, 64):
            chunk = windows[s:s + 64]
            logits, _ = model(chunk[:, :T])
            total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1),
                                                       reduction="sum").item()
            count += chunk[:, 1:].numel()
    return total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                   "tinyshakespeare.txt"))
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--max_iters", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attn", choices=["causal", "stablemask"], default="causal")
    ap.add_argument("--gamma", type=float, default=0.5)
    ap.add_argument("--no_bias", action="store_true",
                    help="biases of Linear and LayerNorm held at zero and not trained (nanoGPT's bias=False)")
    ap.add_argument("--gelu", choices=["tanh", "exact"], default="tanh",
                    help="GELU form: tanh approximation (the issue's and ref_gpt.py's) or exact erf (nanoGPT's nn.GELU())")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    text = open(args.data, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text], dtype=torch.long)
    n_train = len(data) * 9 // 10  # nanoGPT's int(n * 0.9), as gradlab's TextDataset
    train, val = data[:n_train], data[n_train:]

    B, T = 12, 64
    cfg = ref_gpt.GPTConfig(block_size=T, vocab_size=len(chars), n_layer=4, n_head=4, n_embd=128,
                            attn_mode=args.attn, gamma=args.gamma)
    model = ref_gpt.GPT(cfg)
    if args.no_bias:
        # A bias that starts at zero and never trains is the same model as no bias at all.
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.requires_grad_(False)
    if args.gelu == "exact":
        for block in model.transformer.h:
            block.mlp.gelu = torch.nn.GELU()
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))

    def batch(split):
        ix = torch.randint(len(split) - T - 1, (B,))
        x = torch.stack([split[i:i + T] for i in ix])
        y = torch.stack([split[i + 1:i + 1 + T] for i in ix])
        return x, y

    t0 = time.time()
    model.train()
    for step in range(args.max_iters):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, 1e-3, 1e-4, 100, args.max_iters)
        x, y = batch(train)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 250 == 0:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", file=sys.stderr)

    full = val_full(model, val, T)
    with torch.no_grad():
        est = sum(model(*batch(val))[1].item() for _ in range(20)) / 20
    print(json.dumps({"seed": args.seed, "attn": args.attn, "bias": not args.no_bias, "gelu": args.gelu,
                      "iters": args.max_iters, "val_full": full, "val_est20": est, "seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
