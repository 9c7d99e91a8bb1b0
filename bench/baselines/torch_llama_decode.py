"""PyTorch eager reference for LLM decode speed: the same LLaMA weights, greedy decoding with a KV cache.

Written the way a PyTorch user would (nn.Module-free functional code mirroring HF's LlamaModel:
RMSNorm, rotary embeddings with rotate_half, grouped-query attention, SwiGLU), float32, under
torch.inference_mode, with the cache grown by torch.cat each step as HF's DynamicCache does.

  python torch_llama_decode.py WEIGHTS.safetensors CONFIG.json --prompt 64 --steps 128 --threads 2

Prints one JSON line: {"tokens_per_second": ..., "torch": ..., "threads": ...}, or {"skipped": ...}.
"""

import argparse
import json
import sys
import time

try:
    import torch
except Exception as e:  # noqa: BLE001
    print(json.dumps({"skipped": f"torch not importable: {e}"}))
    sys.exit(0)


from safetensors_reader import read_safetensors  # noqa: E402  (after the torch check)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("weights")
    p.add_argument("config")
    p.add_argument("--prompt", type=int, default=64)
    p.add_argument("--steps", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    w = read_safetensors(args.weights)
    cfg = json.load(open(args.config))
    D, H, KV = cfg["hiddenSize"], cfg["numAttentionHeads"], cfg["numKeyValueHeads"]
    hd = cfg.get("headDim") or D // H
    L, eps, theta = cfg["numHiddenLayers"], cfg["rmsNormEps"], cfg["ropeTheta"]
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))

    def rms(x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rotate_half(x):
        return torch.cat((-x[..., hd // 2 :], x[..., : hd // 2]), dim=-1)

    def forward(ids, start, cache):
        T = ids.shape[1]
        x = w["model.embed_tokens.weight"][ids]  # [1, T, D]
        pos = torch.arange(start, start + T, dtype=torch.float32)
        freqs = torch.outer(pos, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        for i in range(L):
            pre = f"model.layers.{i}."
            h = rms(x, w[pre + "input_layernorm.weight"])
            q = (h @ w[pre + "self_attn.q_proj.weight"].T).view(1, T, H, hd).transpose(1, 2)
            k = (h @ w[pre + "self_attn.k_proj.weight"].T).view(1, T, KV, hd).transpose(1, 2)
            v = (h @ w[pre + "self_attn.v_proj.weight"].T).view(1, T, KV, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache[i] is not None:
                k = torch.cat((cache[i][0], k), dim=2)
                v = torch.cat((cache[i][1], v), dim=2)
            cache[i] = (k, v)
            rep = H // KV
            kk = k.repeat_interleave(rep, dim=1)
            vv = v.repeat_interleave(rep, dim=1)
            scores = (q @ kk.transpose(-1, -2)) / hd**0.5
            S = kk.shape[2]
            mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            scores = scores.masked_fill(~mask, float("-inf"))
            att = torch.softmax(scores, dim=-1) @ vv
            x = x + att.transpose(1, 2).reshape(1, T, H * hd) @ w[pre + "self_attn.o_proj.weight"].T
            h = rms(x, w[pre + "post_attention_layernorm.weight"])
            g = torch.nn.functional.silu(h @ w[pre + "mlp.gate_proj.weight"].T) * (h @ w[pre + "mlp.up_proj.weight"].T)
            x = x + g @ w[pre + "mlp.down_proj.weight"].T
        x = rms(x, w["model.norm.weight"])
        return x[:, -1] @ head.T

    with torch.inference_mode():
        ids = torch.arange(args.prompt).remainder(cfg["vocabSize"])[None]
        rates = []
        for _ in range(4):
            cache = [None] * L
            logits = forward(ids, 0, cache)
            t0 = time.perf_counter()
            for s in range(args.steps):
                nxt = logits.argmax(-1)[:, None]
                logits = forward(nxt, args.prompt + s, cache)
            rates.append(args.steps / (time.perf_counter() - t0))
        rates = sorted(rates[1:])
    print(json.dumps({"tokens_per_second": rates[len(rates) // 2], "torch": torch.__version__, "threads": args.threads}))


main()
