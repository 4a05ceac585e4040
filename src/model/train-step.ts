/**
 * One optimisation step: loss -> gradients (through the custom-gradient ops) -> global-norm
 * clipping -> AdamW. `computeGradients`/`applyGradients` serve any loss (reward model, PPO);
 * `trainStep` is the supervised one: cross-entropy on assistant tokens only.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidOptionError } from '../errors.ts';
import type { AdamW } from './adamw.ts';
import type { ModelInput, MultimodalModel } from './multimodal-model.ts';
import { embedding, sumMany, weightedCrossEntropy } from './ops.ts';
import type { Parameter } from './parameters.ts';

/**
 * A supervised batch: lossMask [batch * length] is non-zero on tokens the model must learn to
 * produce; its values weight those tokens in the mean (all 1: every token counts the same; see
 * collate's `lossWeighting`).
 */
export interface TrainBatch extends ModelInput {
  lossMask: Uint8Array | Float32Array;
}

/**
 * Which hidden rows predict a loss token and what they must predict: row t predicts token t+1,
 * so row t is used when lossMask[t+1] is 1 (within the same sequence).
 */
export function lossTargets(batch: Pick<TrainBatch, 'batch' | 'length' | 'ids' | 'lossMask'>): { rows: Int32Array; targets: Int32Array; weights: Float32Array } {
  const { batch: b, length: t, ids, lossMask } = batch;
  if (lossMask.length !== b * t) throw new InvalidOptionError('batch.lossMask', `has ${lossMask.length} entries, expected ${b} x ${t}`);
  const rows: number[] = [];
  const targets: number[] = [];
  const weights: number[] = [];
  let total = 0;
  for (let i = 0; i < b; i++) {
    for (let j = 0; j + 1 < t; j++) {
      const w = lossMask[i * t + j + 1]!;
      if (w > 0) { rows.push(i * t + j); targets.push(ids[i * t + j + 1]!); weights.push(w); total += w; }
    }
  }
  // normalised: the loss is a weighted mean whatever the weights' scale
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets), weights: Float32Array.from(weights, (w) => w / total) };
}

/**
 * Mean next-token cross-entropy over the loss tokens, weighted by lossMask. The LM head runs
 * only on the rows that predict one (answers are a small part of a conversation).
 */
export function supervisedLoss(model: MultimodalModel, batch: TrainBatch): { loss: tf.Scalar; tokens: number } {
  const { rows, targets, weights: w } = lossTargets(batch);
  if (rows.length === 0) throw new InvalidOptionError('batch.lossMask', 'marks no token to learn (no assistant answer in the batch)');
  const { hidden } = model.forward(batch);
  const picked = embedding(hidden, tf.tensor1d(rows, 'int32'));
  const logits = model.lmLogits(picked);
  return { loss: weightedCrossEntropy(logits, tf.tensor1d(targets, 'int32'), tf.tensor1d(w)), tokens: rows.length };
}

export interface Gradients {
  loss: number;
  /** By parameter name; owned by the caller (disposeGradients). */
  grads: Map<string, tf.Tensor>;
}

/**
 * Runs `lossFn` under autodiff for `params` (default: all of the model's). Async, as every read
 * of a tensor here: the webgpu backend cannot read synchronously under Node (its dataSync needs
 * a browser's OffscreenCanvas).
 */
export async function computeGradients(model: MultimodalModel, lossFn: () => tf.Scalar, params: readonly Parameter[] = model.parameters()): Promise<Gradients> {
  const byVar = new Map(params.map((p) => [p.variable.name, p.name]));
  const { value, grads } = tf.variableGrads(lossFn, params.map((p) => p.variable));
  const loss = (await value.data())[0]!;
  value.dispose();
  const out = new Map<string, tf.Tensor>();
  for (const [varName, g] of Object.entries(grads)) out.set(byVar.get(varName) ?? varName, g);
  return { loss, grads: out };
}

export function disposeGradients(grads: Map<string, tf.Tensor>): void {
  for (const g of grads.values()) g.dispose();
  grads.clear();
}

/** sqrt(sum of squares) over every gradient. */
export async function globalNorm(grads: ReadonlyMap<string, tf.Tensor>): Promise<number> {
  if (grads.size === 0) return 0;
  if (['wasm', 'cpu'].includes(tf.getBackend())) {
    // host memory anyway: a JS pass beats two kernels per gradient
    let sum = 0;
    for (const g of grads.values()) {
      const d = g.dataSync() as Float32Array;
      for (let i = 0; i < d.length; i++) sum += d[i]! * d[i]!;
    }
    return Math.sqrt(sum);
  }
  const norm = tf.tidy(() => tf.sqrt(sumMany([...grads.values()].map((g) => tf.sum(tf.square(g))))));
  const value = (await norm.data())[0]!;
  norm.dispose();
  return value;
}

export interface ApplyOptions {
  lr: number;
  /** Clip the global gradient norm to this (0 or undefined: no clipping). */
  clipNorm?: number;
}

/**
 * Clips and applies gradients, then disposes them. A non-finite norm skips the update
 * (`skipped: true`) so one bad batch cannot poison the weights.
 */
export async function applyGradients(optimizer: AdamW, grads: Map<string, tf.Tensor>, options: ApplyOptions): Promise<{ gradNorm: number; skipped: boolean }> {
  const gradNorm = await globalNorm(grads);
  let skipped = false;
  if (!Number.isFinite(gradNorm)) skipped = true;
  else {
    const scale = options.clipNorm && gradNorm > options.clipNorm ? options.clipNorm / gradNorm : 1;
    optimizer.apply(grads, options.lr, scale);
  }
  disposeGradients(grads);
  return { gradNorm, skipped };
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  /** Tokens the loss was computed on. */
  tokens: number;
  skipped: boolean;
}

/**
 * Parameters that train when some are frozen (names starting with one of `frozen`); all of them
 * when `frozen` is empty. Frozen parts get no gradient, so their backward pass is not computed.
 */
export function trainableParameters(model: MultimodalModel, frozen: readonly string[] = []): readonly Parameter[] {
  const all = model.parameters();
  return frozen.length === 0 ? all : all.filter((p) => !frozen.some((prefix) => p.name.startsWith(prefix)));
}

/** One supervised step on `batch`: masked cross-entropy, clipping, AdamW. Leaks no tensors. */
export async function trainStep(model: MultimodalModel, optimizer: AdamW, batch: TrainBatch, options: ApplyOptions & { params?: readonly Parameter[] }): Promise<StepResult> {
  let tokens = 0;
  const { loss, grads } = await computeGradients(model, () => {
    const r = supervisedLoss(model, batch);
    tokens = r.tokens;
    return r.loss;
  }, options.params);
  if (!Number.isFinite(loss)) {
    disposeGradients(grads);
    return { loss, gradNorm: NaN, tokens, skipped: true };
  }
  const { gradNorm, skipped } = await applyGradients(optimizer, grads, options);
  return { loss, gradNorm, tokens, skipped };
}
