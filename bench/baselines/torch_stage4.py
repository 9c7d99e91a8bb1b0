"""PyTorch eager reference for the tiny recipe's stage-4 training step (bench/train.ts).

The same step as src/train/stages/stage4-instruction.ts, on the same weights and the same collated
batch (both written by bench/train.ts as safetensors): LLaVA's 2-layer GELU projector on the kept
patch features, the projected rows placed at the patch positions (gather + 0/1 blend, as
src/train/multimodal.ts does), a LLaMA (HF LlamaModel maths: RMSNorm, rotate_half rotary, grouped-
query attention via repeat_kv and F.scaled_dot_product_attention(is_causal=True) where torch has
it, SwiGLU), tied
output head, cross-entropy over the answer positions (ignore_index -100), then
torch.optim.AdamW (weight decay on matrices only, as our trainer) after clip_grad_norm_. The
learning rate of each step is the one our run used (warm-up + cosine), so the losses can be
compared step by step. float32, eager, as a PyTorch user would write it.

  python torch_stage4.py WEIGHTS.safetensors BATCH.safetensors CONFIG.json --threads 2

CONFIG.json: {"llm": LlamaConfig, "lrs": [...], "warmup": W, "optimizer": {beta1, beta2, eps,
weightDecay, clipNorm}}; the first W learning rates are warm-up steps (untimed), the rest timed.
Prints one JSON line: {"ms_per_step", "step_ms", "losses", "torch", "threads", "attn", "start_rss_kib",
"max_rss_kib"} (ru_maxrss of this process, KiB), or {"skipped": reason}.
"""

import argparse
import json
import resource
import sys
import time


def max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "no torch here"
    print(json.dumps({"skipped": f"torch not importable: {type(e).__name__}: {e}"}))
    sys.exit(0)

from safetensors_reader import read_safetensors  # noqa: E402  (after the torch check)
from torch_stage_run import make_loss  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("batch")
    p.add_argument("config")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    use_sdpa = hasattr(F, "scaled_dot_product_attention")

    cfg = json.load(open(args.config))
    llm, opt_cfg, lrs, warmup = cfg["llm"], cfg["optimizer"], cfg["lrs"], cfg["warmup"]
    w = {k: torch.nn.Parameter(v) for k, v in read_safetensors(args.weights).items()}
    batch = read_safetensors(args.batch)
    start_rss = max_rss_kib()
    loss_of = make_loss(w, llm, use_sdpa)  # the same maths as the multi-batch run (torch_stage_run.py)

    def loss_fn():
        return loss_of(batch)

    params = list(w.values())
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": opt_cfg["weightDecay"]},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=lrs[0],
        betas=(opt_cfg["beta1"], opt_cfg["beta2"]),
        eps=opt_cfg["eps"],
    )

    losses, step_ms = [], []
    for i, lr in enumerate(lrs):
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        if opt_cfg["clipNorm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, opt_cfg["clipNorm"])
        opt.step()
        losses.append(loss.item())
        if i >= warmup:
            step_ms.append((time.perf_counter() - t0) * 1000)
    timed = sorted(step_ms)
    print(
        json.dumps(
            {
                "ms_per_step": timed[len(timed) // 2] if timed else None,
                "step_ms": step_ms,
                "losses": losses,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "attn": "sdpa" if use_sdpa else "manual",
                "start_rss_kib": start_rss,
                "max_rss_kib": max_rss_kib(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
