"""Baseline: one training step of a 1-block pre-norm transformer LM in PyTorch eager (CPU).

Same step as tfjs-block.ts: B=4, T=256, D=512, H=8, MLP 2048 (exact erf GELU), V=1000, tied embedding,
learned positions, causal attention, mean cross-entropy, torch.optim.AdamW(lr 3e-4, wd 0.01 on all
params) and clip_grad_norm_(1.0). Attention follows nanoGPT: F.scaled_dot_product_attention when the
installed torch has it (>= 2.0), else the manual matmul/masked_fill/softmax path. Debian's torch 1.13
has no SDPA, so there the manual path is used (reported as "attn" in the output).

Usage: python3 torch_block.py [--warmup 2] [--steps 10] [--threads 2] [--attn auto|manual|sdpa]
Prints one JSON line: {"ms_per_step" (median), "ms_min", "ms_max", "loss0", "lossN", "torch", "threads", "attn"}.
"""

import argparse
import json
import math
import sys
import time

B, T, D, H, FF, V = 4, 256, 512, 8, 2048, 1000
SEED = 1234


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", choices=["auto", "manual", "sdpa"], default="auto", help="auto = nanoGPT's choice")
    args = ap.parse_args()

    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001 - any import failure means "no torch here"
        print(json.dumps({"skipped": f"torch not importable: {type(e).__name__}: {e}"}))
        return 0

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    has_sdpa = hasattr(F, "scaled_dot_product_attention")  # nanoGPT's `self.flash` test
    if args.attn == "sdpa" and not has_sdpa:
        print(json.dumps({"skipped": f"torch {torch.__version__} has no scaled_dot_product_attention"}))
        return 0
    use_sdpa = has_sdpa if args.attn == "auto" else args.attn == "sdpa"

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wte = nn.Embedding(V, D)
            self.wpe = nn.Embedding(T, D)
            self.ln1 = nn.LayerNorm(D)
            self.q = nn.Linear(D, D)
            self.k = nn.Linear(D, D)
            self.v = nn.Linear(D, D)
            self.o = nn.Linear(D, D)
            self.ln2 = nn.LayerNorm(D)
            self.fc = nn.Linear(D, FF)
            self.proj = nn.Linear(FF, D)
            self.lnf = nn.LayerNorm(D)
            self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T))
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                    if isinstance(m, nn.Linear):
                        nn.init.zeros_(m.bias)

        def attn(self, x: "torch.Tensor") -> "torch.Tensor":
            b, t, d = x.shape
            q = self.q(x).view(b, t, H, d // H).transpose(1, 2)
            k = self.k(x).view(b, t, H, d // H).transpose(1, 2)
            v = self.v(x).view(b, t, H, d // H).transpose(1, 2)
            if use_sdpa:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
                att = F.softmax(att, dim=-1)
                y = att @ v
            return self.o(y.transpose(1, 2).contiguous().view(b, t, d))

        def forward(self, ids: "torch.Tensor", targets: "torch.Tensor") -> "torch.Tensor":
            pos = torch.arange(ids.size(1), device=ids.device)
            x = self.wte(ids) + self.wpe(pos)
            x = x + self.attn(self.ln1(x))
            x = x + self.proj(F.gelu(self.fc(self.ln2(x))))  # exact (erf) GELU
            logits = self.lnf(x) @ self.wte.weight.t()  # tied output projection
            return F.cross_entropy(logits.view(-1, V), targets.view(-1))

    model = Block()
    g = torch.Generator().manual_seed(SEED)
    ids = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = model(ids, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    loss0 = float("nan")
    for i in range(args.warmup):
        li = step()
        if i == 0:
            loss0 = li
        print(f"[torch] warmup {i}: loss {li:.4f}", file=sys.stderr)
    loss_n = float("nan")
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        loss_n = step()
        dt = time.perf_counter() - t0
        times.append(dt * 1000)
        if math.isnan(loss0):
            loss0 = loss_n
        print(f"[torch] step {i}: loss {loss_n:.4f} ({dt * 1000:.1f} ms)", file=sys.stderr)

    print(
        json.dumps(
            {
                # The median, as the engine side reports (and the spread, min and max, beside it).
                "ms_per_step": sorted(times)[len(times) // 2] if times else None,
                "ms_min": min(times) if times else None,
                "ms_max": max(times) if times else None,
                "loss0": loss0,
                "lossN": loss_n,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "attn": "sdpa" if use_sdpa else "manual",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
