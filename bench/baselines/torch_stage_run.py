"""PyTorch eager reference for a multi-step run of the tiny recipe's stage 3 or 4 (scripts/engine-vs-torch.ts).

The same model maths as torch_stage4.py (LLaVA's 2-layer GELU projector on the kept patch features,
the projected rows placed at the patch positions by gather + 0/1 blend as src/train/multimodal.ts
does, HF LlamaModel maths with F.scaled_dot_product_attention(is_causal=True) where torch has it,
tied output head, cross-entropy over the answer positions with ignore_index -100), but instead of
repeating one batch it steps through a list of batches, one per step, in order, and trains only the
parameters it is told to (every other weight has requires_grad False, as the stage freezes it).
torch.optim.AdamW over the trainable parameters, weight decay on those with 2 or more dimensions
(our Trainer's default rule), after clip_grad_norm_ over the trainable parameters; the learning rate
of each step is the one our run used. float32 (or, with --dtype float64, a float64 reference run
that shows how far each float32 run strays from the exact curve), eager.

  python torch_stage_run.py WEIGHTS.safetensors CONFIG.json --threads 2 [--dtype float64]

CONFIG.json: {"llm": LlamaConfig, "optimizer": {beta1, beta2, eps, weightDecay, clipNorm},
"lrs": [lr of step 1, ...], "batches": [BATCH.safetensors of step 1, ...], "trainable": [names],
"final": FILE or null}. Each batch holds ids, targets, patch_index, is_patch, patch_features.
With "final", the trained parameters are written there (safetensors, F32 whatever --dtype) after
the last step.
Prints one JSON line: {"losses", "grad_norms", "step_ms", "torch", "threads", "attn", "dtype",
"trainable", "frozen"}, or {"skipped": reason} when torch cannot be imported.
"""

import argparse
import json
import struct
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "no torch here"
    print(json.dumps({"skipped": f"torch not importable: {type(e).__name__}: {e}"}))
    sys.exit(0)

from safetensors_reader import read_safetensors  # noqa: E402  (after the torch check)


def write_safetensors(path, tensors):
    """F32 tensors by name -> a safetensors file (JSON header, 8-byte aligned, raw little-endian data)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def make_loss(w, llm, use_sdpa):
    """loss(batch) of the stage-3/4 graph (src/train/multimodal.ts traceMultimodalLoss, withPatches)."""
    D, H, KV = llm["hiddenSize"], llm["numAttentionHeads"], llm["numKeyValueHeads"]
    hd = llm.get("headDim") or D // H
    L, eps, theta, V = llm["numHiddenLayers"], llm["rmsNormEps"], llm["ropeTheta"], llm["vocabSize"]
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

    def attention(q, k, v):
        if use_sdpa:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        T = q.shape[-2]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        scores = (q @ k.transpose(-1, -2)) / hd**0.5  # torch < 2.0: HF's eager attention
        return torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1) @ v

    def loss_fn(batch):
        ids, targets = batch["ids"], batch["targets"]
        patch_index, is_patch, features = batch["patch_index"], batch["is_patch"], batch["patch_features"]
        B, T = ids.shape
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

    return loss_fn


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("config")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = p.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.set_num_threads(args.threads)
    use_sdpa = hasattr(F, "scaled_dot_product_attention")

    cfg = json.load(open(args.config))
    opt_cfg, lrs, batch_files = cfg["optimizer"], cfg["lrs"], cfg["batches"]
    if len(lrs) != len(batch_files):
        raise SystemExit(f"{len(lrs)} learning rates for {len(batch_files)} batches")
    trainable = set(cfg["trainable"])
    weights = read_safetensors(args.weights)
    missing = sorted(trainable - weights.keys())
    if missing:
        raise SystemExit(f"trainable names not in the weights: {missing[:5]}")
    w = {k: torch.nn.Parameter(v.to(dtype), requires_grad=k in trainable) for k, v in weights.items()}
    loss_fn = make_loss(w, cfg["llm"], use_sdpa)

    params = [p for k, p in w.items() if k in trainable]
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": opt_cfg["weightDecay"]},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=lrs[0],
        betas=(opt_cfg["beta1"], opt_cfg["beta2"]),
        eps=opt_cfg["eps"],
    )

    losses, grad_norms, step_ms = [], [], []
    for lr, path in zip(lrs, batch_files):
        batch = read_safetensors(path)  # read outside the timed step, as the engine side does
        batch = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items()}
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(batch)
        loss.backward()
        if opt_cfg["clipNorm"] > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, opt_cfg["clipNorm"])
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        opt.step()
        losses.append(loss.item())
        grad_norms.append(float(norm))
        step_ms.append((time.perf_counter() - t0) * 1000)

    if cfg.get("final"):
        write_safetensors(cfg["final"], {k: p for k, p in w.items() if k in trainable})
    print(
        json.dumps(
            {
                "losses": losses,
                "grad_norms": grad_norms,
                "step_ms": step_ms,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "attn": "sdpa" if use_sdpa else "manual",
                "dtype": args.dtype,
                "trainable": sum(p.numel() for p in params),
                "frozen": sum(p.numel() for k, p in w.items() if k not in trainable),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
