/**
 * One pre-norm transformer block (x + attn(ln1(x)); x + mlp(ln2(x))), shared by the vision
 * encoder (bidirectional) and the language model (causal, with a KV cache). Activations are kept
 * 2-D [batch * length, width] so every projection is one plain matmul.
 */
import * as tf from '@tensorflow/tfjs';
import { attention, gelu, layerNorm, linear, selfAttention } from './ops.ts';
import type { ParameterStore } from './parameters.ts';
import { applyRotary, type Rotary } from './rotary.ts';

export type MlpActivation = 'relu' | 'gelu';

export interface BlockShape {
  width: number;
  heads: number;
  mlpRatio: number;
  activation: MlpActivation;
}

/** Keys and values of one layer for the positions seen so far: [batch, length, width] each. */
export interface LayerCache {
  k: tf.Tensor3D;
  v: tf.Tensor3D;
}

/**
 * Registers the block's parameters under `prefix` (e.g. `lm.layers.0`). `std(fanIn)` gives a
 * matrix's initial standard deviation; the two residual outputs get it divided by
 * `residualDivisor` (GPT-2: sqrt(2 x layers)).
 */
export function addBlockParameters(store: ParameterStore, prefix: string, shape: BlockShape, std: (fanIn: number) => number, residualDivisor: number): void {
  const d = shape.width;
  const hidden = d * shape.mlpRatio;
  store.add(`${prefix}.ln1.weight`, prefix, [d], { kind: 'ones' });
  store.add(`${prefix}.ln1.bias`, prefix, [d], { kind: 'zeros' });
  for (const n of ['q', 'k', 'v']) {
    store.add(`${prefix}.attn.${n}.weight`, prefix, [d, d], { kind: 'normal', std: std(d) });
    store.add(`${prefix}.attn.${n}.bias`, prefix, [d], { kind: 'zeros' });
  }
  store.add(`${prefix}.attn.out.weight`, prefix, [d, d], { kind: 'normal', std: std(d) / residualDivisor });
  store.add(`${prefix}.attn.out.bias`, prefix, [d], { kind: 'zeros' });
  store.add(`${prefix}.ln2.weight`, prefix, [d], { kind: 'ones' });
  store.add(`${prefix}.ln2.bias`, prefix, [d], { kind: 'zeros' });
  store.add(`${prefix}.mlp.fc1.weight`, prefix, [d, hidden], { kind: 'normal', std: std(d) });
  store.add(`${prefix}.mlp.fc1.bias`, prefix, [hidden], { kind: 'zeros' });
  store.add(`${prefix}.mlp.fc2.weight`, prefix, [hidden, d], { kind: 'normal', std: std(hidden) / residualDivisor });
  store.add(`${prefix}.mlp.fc2.bias`, prefix, [d], { kind: 'zeros' });
}

export interface BlockCall {
  batch: number;
  /** New positions in this call. */
  length: number;
  /**
   * Added to attention scores, [length, batch or 1, 1, pastLength + length]: 0 where a query
   * may look, a large negative number where it may not. Null: all visible.
   */
  bias: tf.Tensor | null;
  /** Keys/values of earlier positions; the returned cache holds past + new. */
  past?: LayerCache;
  eps: number;
  /** RoPE for the new positions: queries and keys are rotated before attention (keys cached rotated). */
  rotary?: Rotary | null;
}

/**
 * Applies the block to x [batch * length, width]. Returns the new activations and, when asked
 * (`wantCache`), this layer's keys/values including the new positions.
 */
export function transformerBlock(
  store: ParameterStore,
  prefix: string,
  shape: BlockShape,
  x: tf.Tensor2D,
  call: BlockCall,
  wantCache = false,
): { y: tf.Tensor2D; cache?: LayerCache } {
  const p1 = (n: string) => store.get(`${prefix}.${n}`) as tf.Tensor1D;
  const p2 = (n: string) => store.get(`${prefix}.${n}`) as tf.Tensor2D;
  const { batch: b, length: t } = call;
  const d = shape.width;
  const h = shape.heads;

  const a = layerNorm(x, p1('ln1.weight'), p1('ln1.bias'), call.eps);
  let merged: tf.Tensor2D;
  let cache: LayerCache | undefined;
  if (!wantCache && !call.past && !call.rotary) {
    merged = selfAttention(a, { q: p2('attn.q.weight'), k: p2('attn.k.weight'), v: p2('attn.v.weight') }, { q: p1('attn.q.bias'), k: p1('attn.k.bias'), v: p1('attn.v.bias') }, { batch: b, heads: h, queries: t, keys: t }, call.bias);
  } else {
    // generation (keys/values are kept for the next step), or rotary positions
    let q = linear(a, p2('attn.q.weight'), p1('attn.q.bias'));
    let k = linear(a, p2('attn.k.weight'), p1('attn.k.bias'));
    if (call.rotary) {
      q = applyRotary(q, call.rotary);
      k = applyRotary(k, call.rotary);
    }
    let v = linear(a, p2('attn.v.weight'), p1('attn.v.bias'));
    let keys = t;
    if (call.past) {
      keys = call.past.k.shape[1] + t;
      k = tf.reshape(tf.concat([call.past.k, tf.reshape(k, [b, t, d])], 1), [b * keys, d]);
      v = tf.reshape(tf.concat([call.past.v, tf.reshape(v, [b, t, d])], 1), [b * keys, d]);
    }
    merged = attention(q, k, v, { batch: b, heads: h, queries: t, keys }, call.bias);
    cache = { k: tf.reshape(k, [b, keys, d]) as tf.Tensor3D, v: tf.reshape(v, [b, keys, d]) as tf.Tensor3D };
  }
  const x1 = tf.add(x, linear(merged, p2('attn.out.weight'), p1('attn.out.bias'))) as tf.Tensor2D;

  const m = layerNorm(x1, p1('ln2.weight'), p1('ln2.bias'), call.eps);
  // relu is fused into the matmul kernel; gelu costs two transcendental passes (erf, exp) on wasm
  const hid = shape.activation === 'relu'
    ? linear(m, p2('mlp.fc1.weight'), p1('mlp.fc1.bias'), 'relu')
    : gelu(linear(m, p2('mlp.fc1.weight'), p1('mlp.fc1.bias')));
  const y = tf.add(x1, linear(hid, p2('mlp.fc2.weight'), p1('mlp.fc2.bias'))) as tf.Tensor2D;
  return wantCache ? { y, cache } : { y };
}
