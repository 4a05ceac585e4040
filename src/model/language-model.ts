/**
 * The decoder-only language model: token and learned position embeddings, causal pre-norm
 * blocks, a final norm. Attention masking, position ids and the KV cache live here.
 */
import * as tf from '@tensorflow/tfjs';
import { initStdFor, type ModelConfig } from './config.ts';
import { embedding, layerNorm } from './ops.ts';
import type { Rotary } from './rotary.ts';
import type { ParameterStore } from './parameters.ts';
import { addBlockParameters, transformerBlock, type BlockShape, type LayerCache } from './transformer-block.ts';

/** Score offset for masked attention: large enough to zero a softmax term, finite to avoid NaN. */
export const MASKED = -1e9;

/** What generation keeps between steps. Tensors are owned by the cache: call disposeCache. */
export interface KVCache {
  readonly batch: number;
  /** Positions held (prompt + generated so far, padding included). */
  readonly length: number;
  readonly layers: LayerCache[];
  /** [batch * length]: 1 for real tokens, 0 for padding (never attended to). */
  readonly keyMask: Uint8Array;
  /** Position id the next real token of each row gets. */
  readonly nextPosition: Int32Array;
}

export function disposeCache(cache: KVCache | undefined | null): void {
  if (!cache) return;
  for (const l of cache.layers) {
    l.k.dispose();
    l.v.dispose();
  }
}

export function languageBlockShape(config: ModelConfig): BlockShape {
  const l = config.language;
  return { width: l.width, heads: l.heads, mlpRatio: l.mlpRatio, activation: config.activation };
}

export function usesRotary(config: ModelConfig): boolean {
  return config.language.positions === 'rotary';
}

export function addLanguageParameters(store: ParameterStore, config: ModelConfig): void {
  const l = config.language;
  const std = (fanIn: number) => initStdFor(config, fanIn);
  store.add('lm.embed.weight', 'lm.embed', [l.vocabSize, l.width], { kind: 'normal', std: std(l.width) });
  if (!usesRotary(config)) store.add('lm.pos_embed.weight', 'lm.embed', [l.contextLength, l.width], { kind: 'normal', std: std(l.width) }, { decay: false });
  for (let i = 0; i < l.layers; i++) addBlockParameters(store, `lm.layers.${i}`, languageBlockShape(config), std, Math.sqrt(2 * l.layers));
  store.add('lm.ln_f.weight', 'lm.ln_f', [l.width], { kind: 'ones' });
  store.add('lm.ln_f.bias', 'lm.ln_f', [l.width], { kind: 'zeros' });
}

/**
 * Position ids: each row counts only its real tokens (so left padding does not shift positions),
 * continuing from `start` (the cache's next positions). Padding gets position 0.
 */
export function positionIds(mask: Uint8Array, batch: number, length: number, start?: Int32Array): { ids: Int32Array; next: Int32Array } {
  const ids = new Int32Array(batch * length);
  const next = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    let p = start ? start[b]! : 0;
    for (let t = 0; t < length; t++) {
      if (mask[b * length + t]) ids[b * length + t] = p++;
    }
    next[b] = p;
  }
  return { ids, next };
}

/**
 * Additive attention bias [queries, batch or 1, 1, past + queries]: a query sees every real
 * earlier key (causal), never padding. When padding only trails real tokens (right padding, as in
 * training), causality alone keeps real queries off it, so one [q, 1, 1, k] mask serves all rows.
 * Null when nothing needs masking (a single query and no padding).
 */
export function attentionBias(keyMask: Uint8Array, batch: number, past: number, queries: number): tf.Tensor4D | null {
  const keys = past + queries;
  let leadingPad = false;
  let anyPad = false;
  for (let b = 0; b < batch && !leadingPad; b++) {
    let seenPad = false;
    for (let k = 0; k < keys; k++) {
      if (!keyMask[b * keys + k]) { seenPad = true; anyPad = true; }
      else if (seenPad) { leadingPad = true; break; }
    }
  }
  if (!anyPad && queries === 1) return null;
  // with only trailing padding, a single new query (cached decoding) must still skip pads: keep rows
  const rows = leadingPad || (anyPad && queries === 1) ? batch : 1;
  const bias = new Float32Array(rows * queries * keys);
  for (let q = 0; q < queries; q++) {
    for (let b = 0; b < rows; b++) {
      const row = (q * rows + b) * keys;
      for (let k = 0; k < keys; k++) {
        if (k > past + q || (rows > 1 && !keyMask[b * keys + k])) bias[row + k] = MASKED;
      }
    }
  }
  return tf.tensor4d(bias, [queries, rows, 1, keys]);
}

export interface DecoderCall {
  batch: number;
  length: number;
  bias: tf.Tensor | null;
  past?: KVCache | null;
  wantCache: boolean;
  /** RoPE tables for this call's positions (rotary models). */
  rotary?: Rotary | null;
}

/** Runs the blocks and the final norm over x [batch * length, width]. */
export function runDecoder(store: ParameterStore, config: ModelConfig, x: tf.Tensor2D, call: DecoderCall): { hidden: tf.Tensor2D; layers?: LayerCache[] } {
  const shape = languageBlockShape(config);
  const layers: LayerCache[] = [];
  for (let i = 0; i < config.language.layers; i++) {
    const r = transformerBlock(store, `lm.layers.${i}`, shape, x, {
      batch: call.batch, length: call.length, bias: call.bias, past: call.past?.layers[i], eps: config.layerNormEps, rotary: call.rotary,
    }, call.wantCache);
    x = r.y;
    if (r.cache) layers.push(r.cache);
  }
  const hidden = layerNorm(x, store.get('lm.ln_f.weight') as tf.Tensor1D, store.get('lm.ln_f.bias') as tf.Tensor1D, config.layerNormEps);
  return call.wantCache ? { hidden, layers } : { hidden };
}

/** Token embeddings plus (learned positions) position embeddings for int32 ids/positions [n]. */
export function embedTokens(store: ParameterStore, ids: tf.Tensor1D, positions: tf.Tensor1D | null): tf.Tensor2D {
  if (!positions) return embedding(store.get('lm.embed.weight') as tf.Tensor2D, ids);
  return tf.add(
    embedding(store.get('lm.embed.weight') as tf.Tensor2D, ids),
    embedding(store.get('lm.pos_embed.weight') as tf.Tensor2D, positions),
  ) as tf.Tensor2D;
}
