#!/usr/bin/env python3
"""Records a whole PyTorch training run for gradlab to replay (bench/replay_pytorch.cpp).

Trains the peer model (../shared/bench/ref_gpt.py) on tinyshakespeare with issue 4's recipe (AdamW lr 1e-3, betas
(0.9, 0.99), weight decay 0.1 on 2+-dim tensors, warmup 100, cosine to 1e-4 at --decay_iters, clip 1.0, batch 12,
block 64, tiny config) in float32 on one thread, and writes one safetensors file with the initial weights, every
batch, every step's loss, the final weights and the final full-val loss (gradlab eval's rule). The replay feeds
the same weights and batches to gradlab's Trainer and compares step by step: the two engines then differ only in
their arithmetic, not in their random draws.

  /usr/bin/python3 bench/replay_pytorch.py --seed 2 --steps 2000 [--no_bias] --out /tmp/run.safetensors
  build/bench/replay_pytorch /tmp/run.safetensors

Stored: weights/<name>, final/<name> (F32; with --no_bias the biases are absent), inputs and targets (steps, B, T)
as F64 token ids, losses (steps) F64; __metadata__: "config" (gradlab's GPTConfig JSON), "decay_iters", "data",
"val_full". Needs python3-torch (Debian's /usr/bin/python3); CI never runs it.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from quality_vs_pytorch import lr_at, val_full  # noqa: E402  (also puts ../shared/bench on the path)
import torch  # noqa: E402
import ref_gpt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "tinyshakespeare.txt"))
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--decay_iters", type=int, default=2000, help="where the cosine reaches min_lr")
    ap.add_argument("--no_bias", action="store_true", help="biases held at zero and not trained (nanoGPT bias=False)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    text = open(args.data, encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text])
    n_train = len(data) * 9 // 10  # nanoGPT's int(n * 0.9), as gradlab's TextDataset
    train, val = data[:n_train], data[n_train:]
    B, T = 12, 64
    cfg = ref_gpt.GPTConfig(block_size=T, vocab_size=len(chars), n_layer=4, n_head=4, n_embd=128, attn_mode="causal",
                            gamma=0.5)
    model = ref_gpt.GPT(cfg)
    kept = lambda name: not (args.no_bias and name.endswith(".bias"))  # noqa: E731
    for name, p in model.named_parameters():
        if not kept(name):
            p.requires_grad_(False)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))
    tensors = {"weights/" + k: v.detach().clone() for k, v in model.named_parameters() if kept(k)}

    starts = torch.randint(len(train) - T - 1, (args.steps, B))
    inputs = torch.stack([train[s:s + T] for s in starts.flatten()]).view(args.steps, B, T)
    targets = torch.stack([train[s + 1:s + 1 + T] for s in starts.flatten()]).view(args.steps, B, T)
    losses = []
    model.train()
    for it in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(it, 1e-3, 1e-4, 100, args.decay_iters)
        _, loss = model(inputs[it], targets[it])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())

    val_loss = val_full(model, val, T)
    tensors.update({"final/" + k: v.detach() for k, v in model.named_parameters() if kept(k)})
    tensors["inputs"] = inputs.double()
    tensors["targets"] = targets.double()
    tensors["losses"] = torch.tensor(losses, dtype=torch.float64)
    config = dict(vocab_size=len(chars), block_size=T, n_layer=4, n_head=4, n_embd=128, bias=not args.no_bias,
                  norm="layernorm", mlp="gelu", pos="learned", dropout=0.0, mask="causal")
    meta = {"config": json.dumps(config), "decay_iters": str(args.decay_iters), "data": os.path.abspath(args.data),
            "val_full": repr(val_loss), "seed": str(args.seed)}
    ref_gpt.write_safetensors(args.out, tensors, meta)
    print(json.dumps({"seed": args.seed, "steps": args.steps, "bias": not args.no_bias, "loss_first": losses[0],
                      "loss_last": losses[-1], "val_full": val_loss}))


if __name__ == "__main__":
    main()
