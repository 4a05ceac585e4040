/**
 * Prompt + response sequences as one model batch, and what PPO reads from it at the response
 * tokens: log-probs (policy, reference), entropies, values.
 *
 * Response token i of a row is predicted by the hidden state just before it (position
 * promptLength + i - 1); PPO's value of that state sits at the same position. Every function
 * below works on those positions only, flattened row by row into one axis of `tokens` entries,
 * so the LM head runs on response positions alone and nothing needs a padding mask.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidOptionError } from '../errors.ts';
import { collate, type TrainExample } from '../model/collate.ts';
import { imageTokenCount } from '../model/config.ts';
import type { MultimodalModel } from '../model/multimodal-model.ts';
import { embedding } from '../model/ops.ts';
import { lossTargets, type TrainBatch } from '../model/train-step.ts';
import { entropyFromLogits, tokenLogprobs } from './logprobs.ts';

export interface ResponseExample {
  /** Prompt ids (encodePrompt's), starting with <s>. */
  promptIds: readonly number[];
  /** Visual token positions in the prompt (empty without an image). */
  imagePositions: readonly number[];
  pixels: Float32Array | null;
  /** Sampled ids (EOS included when generated); at least one. */
  responseIds: readonly number[];
}

export interface ResponseBatch {
  input: TrainBatch;
  /** Hidden-state rows [tokens] that predict each response token, row-major. */
  rows: Int32Array;
  /** The response tokens themselves [tokens]. */
  targets: Int32Array;
  /** Where each example's tokens start in the flat axis; offsets[b+1] - offsets[b] = its length. */
  offsets: number[];
  readonly tokens: number;
}

/** Right-pads the sequences into one batch (images placed as in training). */
export function responseBatch(model: MultimodalModel, examples: readonly ResponseExample[], padId: number): ResponseBatch {
  if (examples.length === 0) throw new InvalidOptionError('examples', 'cannot batch zero responses');
  const cfg = model.config;
  const train: TrainExample[] = examples.map((e, i) => {
    if (e.responseIds.length === 0) throw new InvalidOptionError(`examples[${i}].responseIds`, 'an empty response has nothing to score');
    const ids = Int32Array.from([...e.promptIds, ...e.responseIds]);
    const lossMask = new Uint8Array(ids.length);
    lossMask.fill(1, e.promptIds.length);
    return { id: String(i), ids, lossMask, imagePositions: Int32Array.from(e.imagePositions), pixels: e.imagePositions.length > 0 ? e.pixels : null };
  });
  const input = collate(train, { padId, imageTokens: imageTokenCount(cfg), pixelsPerImage: cfg.vision.imageSize ** 2 * 3 });
  const { rows, targets } = lossTargets(input);
  const offsets = [0];
  for (const e of examples) offsets.push(offsets[offsets.length - 1]! + e.responseIds.length);
  if (rows.length !== offsets[offsets.length - 1]) {
    throw new InvalidOptionError('examples', `expected ${offsets[offsets.length - 1]} response positions, found ${rows.length}`);
  }
  return { input, rows, targets, offsets, tokens: rows.length };
}

/** Hidden states at the predicting positions [tokens, width] (inside a tidy / gradient scope). */
export function responseHidden(model: MultimodalModel, rb: ResponseBatch): tf.Tensor2D {
  const { hidden } = model.forward(rb.input);
  return embedding(hidden, tf.tensor1d(rb.rows, 'int32'));
}

/** Log-probs [tokens] and entropies [tokens] of the response tokens; differentiable. */
export function responseLogprobsTensor(model: MultimodalModel, rb: ResponseBatch, options: { entropy?: boolean } = {}): { logprobs: tf.Tensor1D; entropy?: tf.Tensor1D } {
  const picked = responseHidden(model, rb);
  const logits = tf.reshape(model.lmLogits(picked), [1, rb.tokens, -1]) as tf.Tensor3D;
  const logprobs = tf.reshape(tokenLogprobs(logits, tf.tensor2d(rb.targets, [1, rb.tokens], 'int32')), [rb.tokens]) as tf.Tensor1D;
  if (!options.entropy) return { logprobs };
  return { logprobs, entropy: tf.reshape(entropyFromLogits(logits), [rb.tokens]) as tf.Tensor1D };
}

/** Values [tokens] from a model with a value head; differentiable. */
export function responseValuesTensor(model: MultimodalModel, rb: ResponseBatch): tf.Tensor1D {
  const picked = responseHidden(model, rb);
  return tf.reshape(model.values(picked, { batch: 1, length: rb.tokens }), [rb.tokens]) as tf.Tensor1D;
}

/** Splits a flat per-token array into one plain array per example. */
export function splitRows(flat: ArrayLike<number>, offsets: readonly number[]): number[][] {
  const out: number[][] = [];
  for (let b = 0; b + 1 < offsets.length; b++) out.push(Array.from({ length: offsets[b + 1]! - offsets[b]! }, (_, i) => flat[offsets[b]! + i]!));
  return out;
}

/** Per-example response log-probs under `model`, as plain arrays (no gradient). */
export async function responseLogprobs(model: MultimodalModel, rb: ResponseBatch): Promise<number[][]> {
  const t = tf.tidy(() => responseLogprobsTensor(model, rb).logprobs);
  const data = await t.data() as Float32Array;
  t.dispose();
  return splitRows(data, rb.offsets);
}

/** Per-example values under a value model, as plain arrays (no gradient). */
export async function responseValues(model: MultimodalModel, rb: ResponseBatch): Promise<number[][]> {
  const t = tf.tidy(() => responseValuesTensor(model, rb));
  const data = await t.data() as Float32Array;
  t.dispose();
  return splitRows(data, rb.offsets);
}
