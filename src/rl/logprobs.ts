/**
 * Log-probabilities of chosen tokens and entropies, from logits.
 *
 * The chosen token is picked with a one-hot multiply instead of `gather`: tfjs's
 * `gather` gradient needs `UnsortedSegmentSum`, which the wasm backend lacks, so a
 * multiply keeps the whole path differentiable on every backend (costs a [B,T,V]
 * one-hot, which is fine at our vocabulary sizes).
 */
import * as tf from '@tensorflow/tfjs';

/** Chosen-token ids: an int32 tensor [B,T] or nested arrays. */
export type TokenIds = tf.Tensor2D | number[][];

/**
 * Per-token log-prob of `ids` under `logits` [B,T,V] -> [B,T].
 * `temperature` divides the logits first (LLaVA-RLHF scores rollouts at the
 * sampling temperature, so old/new log-probs stay comparable).
 */
export function tokenLogprobs(logits: tf.Tensor3D, ids: TokenIds, temperature = 1): tf.Tensor2D {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`tokenLogprobs: temperature must be a positive finite number, got ${temperature}`);
  }
  return tf.tidy(() => {
    const [b, t, v] = logits.shape;
    const idTensor = Array.isArray(ids) ? tf.tensor2d(ids, [b, t], 'int32') : ids;
    if (idTensor.shape[0] !== b || idTensor.shape[1] !== t) {
      throw new RangeError(`tokenLogprobs: ids shape [${idTensor.shape}] does not match logits [${b},${t},${v}]`);
    }
    const scaled = temperature === 1 ? logits : tf.div(logits, temperature);
    const logp = tf.logSoftmax(scaled, -1);
    const oneHot = tf.oneHot(idTensor.toInt(), v); // [B,T,V] float32, no gradient needed
    return tf.sum(tf.mul(logp, oneHot), -1) as tf.Tensor2D;
  });
}

/** Sum of per-token log-probs over valid positions: [B,T] x mask [B,T] -> [B]. */
export function sequenceLogprob(tokenLogp: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.mul(tokenLogp, mask), -1) as tf.Tensor1D);
}

/** Entropy of the next-token distribution at each position: logits [B,T,V] -> [B,T] (nats). */
export function entropyFromLogits(logits: tf.Tensor3D, temperature = 1): tf.Tensor2D {
  return tf.tidy(() => {
    const scaled = temperature === 1 ? logits : tf.div(logits, temperature);
    const logp = tf.logSoftmax(scaled, -1);
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1)) as tf.Tensor2D;
  });
}

/** Plain-number log-softmax of one row (stable: subtracts the max). */
export function logSoftmaxRow(row: readonly number[]): number[] {
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  const lse = max + Math.log(sum);
  return row.map((x) => x - lse);
}

/** Plain-number per-token log-probs for one sequence: logits [T][V], ids [T] -> [T]. */
export function tokenLogprobsArray(logits: readonly (readonly number[])[], ids: readonly number[]): number[] {
  if (logits.length !== ids.length) {
    throw new RangeError(`tokenLogprobsArray: ${logits.length} logit rows but ${ids.length} ids`);
  }
  return ids.map((id, t) => {
    const row = logSoftmaxRow(logits[t]!);
    const v = row[id];
    if (v === undefined) throw new RangeError(`tokenLogprobsArray: id ${id} at position ${t} is outside the vocabulary (${row.length})`);
    return v;
  });
}
