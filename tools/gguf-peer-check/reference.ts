/**
 * A plain float64 LLaMA forward (HF layout) for the peer check, with an option to round every
 * weight-matmul input the way llama.cpp's CPU backend does before a quantized dot product
 * (F16 weights: inputs to f16; Q8_0/Q4_0 weights: inputs to Q8_0 blocks of 32).
 */
import type { HostTensor } from '../../src/engine/index.ts';
import { dequantizeQ8_0, f16ToF32, f32ToF16, quantizeQ8_0 } from '../../src/export/gguf.ts';
import type { LlamaConfig } from '../../src/models/llama.ts';

export type ActRounding = 'none' | 'f16' | 'q8_0';

export function forward(
  c: LlamaConfig,
  w: ReadonlyMap<string, HostTensor>,
  ids: number[],
  act: (name: string) => ActRounding,
): Float64Array[] {
  const D = c.hiddenSize;
  const H = c.numAttentionHeads;
  const KV = c.numKeyValueHeads;
  const hd = D / H;
  const T = ids.length;
  const W = (n: string) => w.get(n)!.data as Float32Array;
  const round = (x: Float64Array, mode: ActRounding): Float64Array => {
    if (mode === 'none') return x;
    if (mode === 'f16') return Float64Array.from(x, (v) => f16ToF32(f32ToF16(v)));
    return Float64Array.from(dequantizeQ8_0(quantizeQ8_0(Float32Array.from(x)), x.length));
  };
  const linear = (x: Float64Array, name: string): Float64Array => {
    const m = W(name);
    const shape = w.get(name)!.shape;
    const [rows, cols] = [shape[0], shape[1]];
    const xr = round(x, act(name));
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += m[r * cols + k] * xr[k];
      y[r] = s;
    }
    return y;
  };
  const rms = (x: Float64Array, name: string) => {
    const g = W(name);
    let ss = 0;
    for (const v of x) ss += v * v;
    const inv = 1 / Math.sqrt(ss / x.length + c.rmsNormEps);
    return Float64Array.from(x, (v, i) => v * inv * g[i]);
  };
  const rope = (x: Float64Array, heads: number, pos: number) => {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const f = pos * c.ropeTheta ** ((-2 * i) / hd);
        const a = x[h * hd + i];
        const b = x[h * hd + i + hd / 2];
        x[h * hd + i] = a * Math.cos(f) - b * Math.sin(f);
        x[h * hd + i + hd / 2] = b * Math.cos(f) + a * Math.sin(f);
      }
    }
  };
  const E = W('model.embed_tokens.weight');
  let xs = ids.map((id) => Float64Array.from(E.subarray(id * D, (id + 1) * D)));
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `model.layers.${l}.`;
    const hs = xs.map((x) => rms(x, `${p}input_layernorm.weight`));
    const q = hs.map((h, t) => {
      const v = linear(h, `${p}self_attn.q_proj.weight`);
      rope(v, H, t);
      return v;
    });
    const k = hs.map((h, t) => {
      const v = linear(h, `${p}self_attn.k_proj.weight`);
      rope(v, KV, t);
      return v;
    });
    const v = hs.map((h) => linear(h, `${p}self_attn.v_proj.weight`));
    xs = xs.map((x, t) => {
      const o = new Float64Array(D);
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / (H / KV));
        const scores = [];
        for (let s = 0; s <= t; s++) {
          let d = 0;
          for (let j = 0; j < hd; j++) d += q[t][h * hd + j] * k[s][kvh * hd + j];
          scores.push(d / Math.sqrt(hd));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++) for (let j = 0; j < hd; j++) o[h * hd + j] += (e[s] / z) * v[s][kvh * hd + j];
      }
      const attn = linear(o, `${p}self_attn.o_proj.weight`);
      const x1 = Float64Array.from(x, (val, i) => val + attn[i]);
      const m = rms(x1, `${p}post_attention_layernorm.weight`);
      const g = linear(m, `${p}mlp.gate_proj.weight`);
      const u = linear(m, `${p}mlp.up_proj.weight`);
      const a = Float64Array.from(g, (gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
      const down = linear(a, `${p}mlp.down_proj.weight`);
      return Float64Array.from(x1, (val, i) => val + down[i]);
    });
  }
  const head = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  return xs.map((x) => linear(rms(x, 'model.norm.weight'), head));
}
