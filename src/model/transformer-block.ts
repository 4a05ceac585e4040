/**
 * One pre-norm transformer block (x + attn(ln1(x)); x + mlp(ln2(x))), shared by the vision
 * encoder (bidirectional) and the language model (causal, with a KV cache). Activations are kept
 * 2-D [batch * length, width] so every projection is one plain matmul.
 */
import * as tf from '@tensorflow/tfjs';
import { batchMatMul, gelu, layerNorm, linear, softmax } from './ops.ts';
import type { ParameterStore } from './parameters.ts';

export type MlpActivation = 'relu' | 'gelu';

export interface BlockShape {
  width: number;
  heads: number;
  mlpRatio: number;
  activation: MlpActivation;
}

/**
 * Keys and values of one layer for the positions seen so far. Keys are kept transposed,
 * [batch, heads, headDim, length], the layout the score product wants; values [batch, heads, length, headDim].
 */
export interface LayerCache {
  kT: tf.Tensor4D;
  v: tf.Tensor4D;
}

/** Registers the block's parameters under `prefix` (e.g. `lm.layers.0`). */
export function addBlockParameters(store: ParameterStore, prefix: string, shape: BlockShape, std: number, residualStd: number): void {
  const d = shape.width;
  const hidden = d * shape.mlpRatio;
  store.add(`${prefix}.ln1.weight`, prefix, [d], { kind: 'ones' });
  store.add(`${prefix}.ln1.bias`, prefix, [d], { kind: 'zeros' });
  for (const n of ['q', 'k', 'v']) {
    store.add(`${prefix}.attn.${n}.weight`, prefix, [d, d], { kind: 'normal', std });
    store.add(`${prefix}.attn.${n}.bias`, prefix, [d], { kind: 'zeros' });
  }
  store.add(`${prefix}.attn.out.weight`, prefix, [d, d], { kind: 'normal', std: residualStd });
  store.add(`${prefix}.attn.out.bias`, prefix, [d], { kind: 'zeros' });
  store.add(`${prefix}.ln2.weight`, prefix, [d], { kind: 'ones' });
  store.add(`${prefix}.ln2.bias`, prefix, [d], { kind: 'zeros' });
  store.add(`${prefix}.mlp.fc1.weight`, prefix, [d, hidden], { kind: 'normal', std });
  store.add(`${prefix}.mlp.fc1.bias`, prefix, [hidden], { kind: 'zeros' });
  store.add(`${prefix}.mlp.fc2.weight`, prefix, [hidden, d], { kind: 'normal', std: residualStd });
  store.add(`${prefix}.mlp.fc2.bias`, prefix, [d], { kind: 'zeros' });
}

export interface BlockCall {
  batch: number;
  /** New positions in this call. */
  length: number;
  /**
   * Added to attention scores, broadcast to [batch, heads, length, pastLength + length]:
   * 0 where a query may look, a large negative number where it may not. Null: all visible.
   */
  bias: tf.Tensor | null;
  /** Keys/values of earlier positions; the returned cache holds past + new. */
  past?: LayerCache;
  eps: number;
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
  const hd = d / h;

  const a = layerNorm(x, p1('ln1.weight'), p1('ln1.bias'), call.eps);
  const heads = (y: tf.Tensor2D, perm: number[]) => tf.transpose(tf.reshape(y, [b, t, h, hd]), perm) as tf.Tensor4D;
  // 1/sqrt(hd) folded into q: the smallest tensor it can scale
  const q = heads(tf.mul(linear(a, p2('attn.q.weight'), p1('attn.q.bias')), 1 / Math.sqrt(hd)) as tf.Tensor2D, [0, 2, 1, 3]);
  const kTNew = heads(linear(a, p2('attn.k.weight'), p1('attn.k.bias')), [0, 2, 3, 1]);
  const vNew = heads(linear(a, p2('attn.v.weight'), p1('attn.v.bias')), [0, 2, 1, 3]);
  const kT = call.past ? (tf.concat([call.past.kT, kTNew], 3) as tf.Tensor4D) : kTNew;
  const v = call.past ? (tf.concat([call.past.v, vNew], 2) as tf.Tensor4D) : vNew;
  const tk = kT.shape[3];
  let scores: tf.Tensor = batchMatMul(tf.reshape(q, [b * h, t, hd]) as tf.Tensor3D, tf.reshape(kT, [b * h, hd, tk]) as tf.Tensor3D);
  if (call.bias) scores = tf.add(tf.reshape(scores, [b, h, t, tk]), call.bias);
  const probs = softmax(tf.reshape(scores, [b * h, t, tk]) as tf.Tensor3D);
  const ctx = batchMatMul(probs, tf.reshape(v, [b * h, tk, hd]) as tf.Tensor3D);
  const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [b, h, t, hd]), [0, 2, 1, 3]), [b * t, d]) as tf.Tensor2D;
  const x1 = tf.add(x, linear(merged, p2('attn.out.weight'), p1('attn.out.bias'))) as tf.Tensor2D;

  const m = layerNorm(x1, p1('ln2.weight'), p1('ln2.bias'), call.eps);
  // relu is fused into the matmul kernel; gelu costs two transcendental passes (erf, exp) on wasm
  const hid = shape.activation === 'relu'
    ? linear(m, p2('mlp.fc1.weight'), p1('mlp.fc1.bias'), 'relu')
    : gelu(linear(m, p2('mlp.fc1.weight'), p1('mlp.fc1.bias')));
  const y = tf.add(x1, linear(hid, p2('mlp.fc2.weight'), p1('mlp.fc2.bias'))) as tf.Tensor2D;
  return wantCache ? { y, cache: { kT, v } } : { y };
}
