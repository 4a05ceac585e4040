/**
 * The three heads on the shared trunk: language model (policy, reference), scalar reward on the
 * last real token or pooled over the response (reward model; optionally weighing each token's
 * likelihood under the LM head, see ModelConfig.rewardLikelihood), scalar value per token (value
 * model, zero-initialised as LLaVA-RLHF starts it).
 */
import * as tf from '@tensorflow/tfjs';
import { initStdFor, type ModelConfig, type RewardPooling } from './config.ts';
import { InvalidOptionError } from '../errors.ts';

/**
 * A reward head starts small whatever the trunk's init: first scores near 0, so the reward
 * loss's 1e-3 x |mean| term and PPO's reward scale see sensible values from the first step.
 */
export function scalarHeadStd(config: Pick<ModelConfig, 'initStd'>): number {
  return config.initStd === 'fan-in' ? 0.02 : config.initStd;
}
import { batchMatMul, linear, matMul, pickedLogprobs } from './ops.ts';
import type { ParameterStore } from './parameters.ts';

export function addHeadParameters(store: ParameterStore, config: ModelConfig): void {
  const l = config.language;
  if (config.heads.includes('lm') && !l.tieEmbeddings) {
    store.add('head.lm.weight', 'head.lm', [l.width, l.vocabSize], { kind: 'normal', std: initStdFor(config, l.width) });
  }
  if (config.heads.includes('reward')) {
    addScalarHead(store, 'reward', l.width, scalarHeadStd(config));
    if (config.rewardLikelihood) addLikelihoodHead(store, l.width);
    if (config.rewardFactMatch) addFactMatchHead(store, l.width);
  }
  if (config.heads.includes('value')) addScalarHead(store, 'value', l.width, 0);
}

/** A fresh scalar head (`head.reward` / `head.value`); std 0 gives zeros. */
export function addScalarHead(store: ParameterStore, name: 'reward' | 'value', width: number, std: number): void {
  store.add(`head.${name}.weight`, `head.${name}`, [width, 1], std > 0 ? { kind: 'normal', std } : { kind: 'zeros' });
  store.add(`head.${name}.bias`, `head.${name}`, [1], { kind: 'zeros' });
}

/**
 * The likelihood part of a reward head: per-token weight v.h_t + d on log p(token_t). v starts at
 * zero and d at LIKELIHOOD_BIAS_INIT, so a fresh head already ranks responses by their scaled
 * log-likelihood (DPO's implicit reward uses the same 0.1) and learns from there which tokens count.
 */
export const LIKELIHOOD_BIAS_INIT = 0.1;

export function addLikelihoodHead(store: ParameterStore, width: number): void {
  store.add('head.reward.likelihood.weight', 'head.reward.likelihood', [width, 1], { kind: 'zeros' });
  store.add('head.reward.likelihood.bias', 'head.reward.likelihood', [1], { kind: 'constant', value: LIKELIHOOD_BIAS_INIT });
}

/** Initial g of the caption-match term: what a matched token is worth before training. */
export const FACT_MATCH_BIAS_INIT = 0;

/** The caption-match part (ModelConfig.rewardFactMatch): per-token weight w.h_t + g on match_t; w starts at zero, g at FACT_MATCH_BIAS_INIT. */
export function addFactMatchHead(store: ParameterStore, width: number): void {
  store.add('head.reward.fact.weight', 'head.reward.fact', [width, 1], { kind: 'zeros' });
  store.add('head.reward.fact.bias', 'head.reward.fact', [1], { kind: 'constant', value: FACT_MATCH_BIAS_INIT });
}

/**
 * Scores of a likelihood-reading reward head, [batch]: the sum over positions t of
 * weights[b, t] * (u.h_t + c + (v.h_t + d) * log p(ids[b, t] | ids[b, < t])
 * [+ (w.h_t + g) * factMatch[b, t] with rewardFactMatch]), log p taken as 0 at t = 0 (nothing predicts the first token). Only the weighted positions go through the LM head:
 * they are contiguous runs (the response), cut out with slices (whose gradient wasm has, unlike
 * gather's), so a long reward prompt costs no logits for its image, captions and question.
 */
export function likelihoodRewardScores(store: ParameterStore, config: ModelConfig, hidden: tf.Tensor2D, ids: Int32Array, batch: number, length: number, weights: Float32Array, factMatch?: Uint8Array | null): tf.Tensor1D {
  if (config.rewardFactMatch && (!factMatch || factMatch.length !== batch * length)) {
    throw new InvalidOptionError('factMatch', `a caption-matching reward head needs a factMatch of ${batch * length} entries, got ${factMatch ? factMatch.length : 'none'}`, { fix: 'build reward inputs with rewardBatch from encodeRewardItem / encodeRewardPair, which mark the matches' });
  }
  const width = hidden.shape[1];
  // runs [start, end) of weighted positions per row; a run at t = 0 is cut to its own piece
  const runs: { b: number; start: number; end: number }[] = [];
  for (let b = 0; b < batch; b++) {
    let t = 0;
    while (t < length) {
      if (weights[b * length + t] === 0) { t++; continue; }
      const start = t;
      while (t < length && weights[b * length + t] !== 0 && !(t === 1 && start === 0)) t++;
      runs.push({ b, start, end: t });
    }
  }
  if (runs.length === 0) return tf.zeros([batch]) as tf.Tensor1D;
  const n = runs.reduce((k, r) => k + r.end - r.start, 0);
  const targets = new Int32Array(n);
  const hasPrev = new Float32Array(n);
  const matched = new Float32Array(n);
  const pool = new Float32Array(batch * n);
  let k = 0;
  for (const r of runs) {
    for (let t = r.start; t < r.end; t++, k++) {
      targets[k] = ids[r.b * length + t]!;
      hasPrev[k] = t > 0 ? 1 : 0;
      matched[k] = factMatch?.[r.b * length + t] ? 1 : 0;
      pool[r.b * n + k] = weights[r.b * length + t]!;
    }
  }
  const rows = (shift: number) => tf.concat(runs.map((r) => {
    const from = r.start === 0 ? 0 : r.start + shift; // t = 0 has no previous row: its log p is masked to 0
    return tf.slice(hidden, [r.b * length + from, 0], [r.end - r.start, width]);
  })) as tf.Tensor2D;
  const cur = rows(0);
  const logp = tf.mul(pickedLogprobs(lmLogits(store, config, rows(-1)), tf.tensor1d(targets, 'int32')), tf.tensor1d(hasPrev));
  const base = linear(cur, store.get('head.reward.weight') as tf.Tensor2D, store.get('head.reward.bias') as tf.Tensor1D);
  const gain = linear(cur, store.get('head.reward.likelihood.weight') as tf.Tensor2D, store.get('head.reward.likelihood.bias') as tf.Tensor1D);
  let perToken = tf.add(base, tf.mul(gain, tf.reshape(logp, [n, 1]))) as tf.Tensor2D;
  if (config.rewardFactMatch) {
    const fact = linear(cur, store.get('head.reward.fact.weight') as tf.Tensor2D, store.get('head.reward.fact.bias') as tf.Tensor1D);
    perToken = tf.add(perToken, tf.mul(fact, tf.tensor2d(matched, [n, 1]))) as tf.Tensor2D;
  }
  return tf.reshape(matMul(tf.tensor2d(pool, [batch, n]), perToken), [batch]);
}

/** Next-token logits [n, vocab] from hidden states [n, width]. */
export function lmLogits(store: ParameterStore, config: ModelConfig, hidden: tf.Tensor2D): tf.Tensor2D {
  if (config.language.tieEmbeddings) {
    // explicit transpose: the matmul kernel's transpose flag is the slow path on wasm
    return matMul(hidden, tf.transpose(store.get('lm.embed.weight') as tf.Tensor2D));
  }
  return matMul(hidden, store.get('head.lm.weight') as tf.Tensor2D);
}

/** One score per row from the hidden states weighted by `weights` (rewardPoolingWeights): [batch]. */
export function rewardScores(store: ParameterStore, hidden: tf.Tensor2D, batch: number, length: number, weights: Float32Array): tf.Tensor1D {
  const width = hidden.shape[1];
  // a row-weight product keeps the gradient a plain matmul (no gather gradient on wasm)
  const sel = tf.tensor3d(weights, [batch, 1, length]);
  const pooled = tf.reshape(batchMatMul(sel, tf.reshape(hidden, [batch, length, width]) as tf.Tensor3D), [batch, width]) as tf.Tensor2D;
  const s = linear(pooled, store.get('head.reward.weight') as tf.Tensor2D, store.get('head.reward.bias') as tf.Tensor1D);
  return tf.reshape(s, [batch]);
}

/**
 * Per-position weights [batch * length] the reward head reads with: 1 at the last real token
 * ('last'), 1/n on each of a row's n real tokens ('mean'; the score of the mean hidden state
 * equals the mean of the per-token scores, the head being linear), 1/n on each of its n
 * response tokens ('response', from `responseMask`), or 1 on each ('response-sum').
 */
export function rewardPoolingWeights(
  mask: Uint8Array | undefined,
  batch: number,
  length: number,
  pooling: RewardPooling = 'last',
  responseMask?: Uint8Array | null,
): Float32Array {
  const w = new Float32Array(batch * length);
  if (pooling === 'response' || pooling === 'response-sum') {
    if (!responseMask || responseMask.length !== batch * length) {
      throw new InvalidOptionError('responseMask', `'${pooling}' reward pooling needs a response mask of ${batch * length} entries, got ${responseMask ? responseMask.length : 'none'}`, { fix: 'build reward inputs with rewardBatch, which marks each response' });
    }
    for (let b = 0; b < batch; b++) {
      let n = 0;
      for (let t = 0; t < length; t++) if (responseMask[b * length + t]) n++;
      if (n === 0) throw new InvalidOptionError('responseMask', `row ${b} marks no response token`);
      const each = pooling === 'response' ? 1 / n : 1;
      for (let t = 0; t < length; t++) if (responseMask[b * length + t]) w[b * length + t] = each;
    }
    return w;
  }
  if (pooling === 'last') {
    const last = lastRealIndex(mask, batch, length);
    for (let b = 0; b < batch; b++) w[b * length + last[b]!] = 1;
    return w;
  }
  for (let b = 0; b < batch; b++) {
    let n = 0;
    for (let t = 0; t < length; t++) if (!mask || mask[b * length + t]) n++;
    for (let t = 0; t < length; t++) if (!mask || mask[b * length + t]) w[b * length + t] = 1 / Math.max(1, n);
  }
  return w;
}

/** A value per position: [batch, length]. */
export function tokenValues(store: ParameterStore, hidden: tf.Tensor2D, batch: number, length: number): tf.Tensor2D {
  const v = linear(hidden, store.get('head.value.weight') as tf.Tensor2D, store.get('head.value.bias') as tf.Tensor1D);
  return tf.reshape(v, [batch, length]);
}

/** Index of the last real token in each row of an attention mask [batch * length]. */
export function lastRealIndex(mask: Uint8Array | undefined, batch: number, length: number): Int32Array {
  const out = new Int32Array(batch).fill(length - 1);
  if (!mask) return out;
  for (let b = 0; b < batch; b++) {
    let last = -1;
    for (let t = 0; t < length; t++) if (mask[b * length + t]) last = t;
    out[b] = last < 0 ? 0 : last;
  }
  return out;
}
