/**
 * Per-token KL estimators between the policy (q, log-prob `logp`) and the frozen
 * reference (p, `logpRef`), both evaluated on the token the policy sampled.
 * See Schulman, "Approximating KL Divergence" (2020):
 *   k1         = logp - logpRef                     unbiased, can be negative per token
 *   k1-clamped = max(logp - logpRef, 0)             LLaVA-RLHF's default (`kl_approximator="k1"`)
 *   k3         = (r - 1) - log r, r = exp(logpRef - logp)   unbiased, always >= 0, lower variance
 * Numbers for bookkeeping (reward shaping), tensors where a graph needs them.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidOptionError } from '../errors.ts';

export const KL_ESTIMATORS = ['k1', 'k1-clamped', 'k3'] as const;
export type KlEstimator = (typeof KL_ESTIMATORS)[number];

/** Throws InvalidOptionError (naming `option`) unless `value` is a known estimator. */
export function checkKlEstimator(value: unknown, option = 'kl_estimator'): KlEstimator {
  if (typeof value !== 'string' || !(KL_ESTIMATORS as readonly string[]).includes(value)) {
    throw new InvalidOptionError(option, `unknown KL estimator ${JSON.stringify(value)}`, {
      fix: `use one of ${KL_ESTIMATORS.join(', ')}`,
    });
  }
  return value as KlEstimator;
}

/** One token's KL estimate. */
export function klToken(logp: number, logpRef: number, estimator: KlEstimator = 'k1-clamped'): number {
  switch (estimator) {
    case 'k1':
      return logp - logpRef;
    case 'k1-clamped':
      return Math.max(logp - logpRef, 0);
    case 'k3': {
      const logR = logpRef - logp;
      // expm1 keeps precision when r is close to 1 (the common case early in training)
      return Math.expm1(logR) - logR;
    }
    default:
      throw checkKlEstimator(estimator);
  }
}

/** Per-token KL for one sequence (plain numbers). Lengths must match. */
export function klPerToken(
  logp: ArrayLike<number>,
  logpRef: ArrayLike<number>,
  estimator: KlEstimator = 'k1-clamped',
): number[] {
  if (logp.length !== logpRef.length) {
    throw new RangeError(`klPerToken: ${logp.length} log-probs but ${logpRef.length} reference log-probs`);
  }
  const out = new Array<number>(logp.length);
  for (let i = 0; i < logp.length; i++) out[i] = klToken(logp[i]!, logpRef[i]!, estimator);
  return out;
}

/** Per-token KL on tensors of any (equal) shape. */
export function klPerTokenTensor(
  logp: tf.Tensor,
  logpRef: tf.Tensor,
  estimator: KlEstimator = 'k1-clamped',
): tf.Tensor {
  checkKlEstimator(estimator, 'estimator');
  return tf.tidy(() => {
    const diff = tf.sub(logp, logpRef);
    if (estimator === 'k1') return diff;
    if (estimator === 'k1-clamped') return tf.maximum(diff, 0);
    const logR = tf.neg(diff);
    return tf.sub(tf.sub(tf.exp(logR), 1), logR);
  });
}
