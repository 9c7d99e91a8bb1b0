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
    D, H, KV = llm["hiddenSize"], llm["numAttentionHeads"], llm["numKeyValueHeads"]
    hd = llm.get("headDim") or D // H
    L, eps, theta, V = llm["numHiddenLayers"], llm["rmsNormEps"], llm["ropeTheta"], llm["vocabSize"]

    w = {k: torch.nn.Parameter(v) for k, v in read_safetensors(args.weights).items()}
    batch = read_safetensors(args.batch)
    ids, targets = batch["ids"], batch["targets"]
    patch_index, is_patch, features = batch["patch_index"], batch["is_patch"], batch["patch_features"]
    B, T = ids.shape
    start_rss = max_rss_kib()

    embed = w["model.embed_tokens.weight"]
    head = w.get("lm_head.weight", embed)
    proj = "model.mm_projector."
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))

    def rms(x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rotate_half(x):
        return torch.cat((-x[..., hd // 2 :], x[..., : hd // 2]), dim=-1)

    def repeat_kv(x):  # HF: [B, KV, T, hd] -> [B, H, T, hd]
        if H == KV:
            return x
        b, kv, t, d = x.shape
        return x[:, :, None].expand(b, kv, H // KV, t, d).reshape(b, H, t, d)

    causal = torch.ones(T, T, dtype=torch.bool).tril()

    def attention(q, k, v):
        if use_sdpa:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        scores = (q @ k.transpose(-1, -2)) / hd**0.5  # torch < 2.0: HF's eager attention
        return torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1) @ v

    def loss_fn():
        x = F.embedding(ids, embed)  # [B, T, D]
        h = F.gelu(F.linear(features, w[proj + "0.weight"], w[proj + "0.bias"]))  # exact (erf) GELU
        projected = F.linear(h, w[proj + "2.weight"], w[proj + "2.bias"])  # [B, P, D]
        placed = torch.gather(projected, 1, patch_index[..., None].expand(B, T, D))
        x = placed * is_patch + x * (1 - is_patch)
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        for i in range(L):
            pre = f"model.layers.{i}."
            h = rms(x, w[pre + "input_layernorm.weight"])
            q = F.linear(h, w[pre + "self_attn.q_proj.weight"]).view(B, T, H, hd).transpose(1, 2)
            k = F.linear(h, w[pre + "self_attn.k_proj.weight"]).view(B, T, KV, hd).transpose(1, 2)
            v = F.linear(h, w[pre + "self_attn.v_proj.weight"]).view(B, T, KV, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            a = attention(q, repeat_kv(k), repeat_kv(v))
            x = x + F.linear(a.transpose(1, 2).reshape(B, T, H * hd), w[pre + "self_attn.o_proj.weight"])
            h = rms(x, w[pre + "post_attention_layernorm.weight"])
            gate = F.silu(F.linear(h, w[pre + "mlp.gate_proj.weight"])) * F.linear(h, w[pre + "mlp.up_proj.weight"])
            x = x + F.linear(gate, w[pre + "mlp.down_proj.weight"])
        logits = F.linear(rms(x, w["model.norm.weight"]), head)
        return F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-100)

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
