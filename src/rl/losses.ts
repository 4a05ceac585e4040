/**
 * PPO losses and their logging statistics on tensors, usable inside `tf.variableGrads`
 * (every op here has a gradient on cpu, wasm and webgpu). All inputs share one shape,
 * usually [B,T]; `mask` is 1 on response tokens and 0 on padding, and every mean is
 * sum(x * mask) / max(sum(mask), 1), so an all-padding batch gives 0 instead of NaN.
 *
 * Loss definitions follow LLaVA-RLHF's `compute_policy_loss` / `compute_value_loss`:
 *   ratio       = exp(logp - logp_old)
 *   policy loss = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))
 *               = mean(-min(ratio * A, clip(ratio) * A))
 *   clipfrac    = mean([-A * clip(ratio) > -A * ratio])  (the clipped branch is active)
 *   value loss  = 0.5 * mean(max((v - R)^2, (clip(v, v_old - eps, v_old + eps) - R)^2))
 *   approx KL   = 'half-squared': mean(0.5 * (logp - logp_old)^2)  (LLaVA-RLHF's `approxkl`)
 *                 'k3':           mean((ratio - 1) - log ratio)    (unbiased, >= 0)
 */
import * as tf from '@tensorflow/tfjs';

/** sum(x * mask) / max(sum(mask), 1). */
export function maskedMean(x: tf.Tensor, mask?: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (!mask) return tf.mean(x) as tf.Scalar;
    return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}

export interface PolicyLossInputs {
  /** Log-probs of the sampled tokens under the current policy (carries the gradient). */
  logprobs: tf.Tensor;
  /** Log-probs recorded at rollout time. */
  oldLogprobs: tf.Tensor;
  advantages: tf.Tensor;
  mask?: tf.Tensor;
  /** PPO clip range epsilon (LLaVA-RLHF: 0.2). */
  clipRange: number;
}

function checkRange(name: string, v: number): void {
  if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) {
    throw new RangeError(`${name} must be a finite number >= 0, got ${String(v)}`);
  }
}

function policyBranches(i: PolicyLossInputs): { unclipped: tf.Tensor; clipped: tf.Tensor } {
  const ratio = tf.exp(tf.sub(i.logprobs, i.oldLogprobs));
  const negA = tf.neg(i.advantages);
  return {
    unclipped: tf.mul(negA, ratio),
    clipped: tf.mul(negA, tf.clipByValue(ratio, 1 - i.clipRange, 1 + i.clipRange)),
  };
}

/** Clipped surrogate policy loss (to minimise). */
export function clippedPolicyLoss(inputs: PolicyLossInputs): tf.Scalar {
  checkRange('clipRange', inputs.clipRange);
  return tf.tidy(() => {
    const { unclipped, clipped } = policyBranches(inputs);
    return maskedMean(tf.maximum(unclipped, clipped), inputs.mask);
  });
}

/** Share of valid tokens whose loss is taken from the clipped branch. */
export function policyClipFraction(inputs: PolicyLossInputs): tf.Scalar {
  checkRange('clipRange', inputs.clipRange);
  return tf.tidy(() => {
    const { unclipped, clipped } = policyBranches(inputs);
    return maskedMean(tf.cast(tf.greater(clipped, unclipped), 'float32'), inputs.mask);
  });
}

export interface ValueLossInputs {
  /** Current value predictions (carries the gradient). */
  values: tf.Tensor;
  /** Values recorded at rollout time. */
  oldValues: tf.Tensor;
  /** GAE returns (value targets). */
  returns: tf.Tensor;
  mask?: tf.Tensor;
  /** Value clip range (LLaVA-RLHF: 0.2). */
  clipRange: number;
}

function valueBranches(i: ValueLossInputs): { plain: tf.Tensor; clipped: tf.Tensor } {
  // clip(v, v_old - eps, v_old + eps) with a tensor-valued range: min(max(v, lo), hi)
  const lo = tf.sub(i.oldValues, i.clipRange);
  const hi = tf.add(i.oldValues, i.clipRange);
  const v2 = tf.minimum(tf.maximum(i.values, lo), hi);
  return {
    plain: tf.square(tf.sub(i.values, i.returns)),
    clipped: tf.square(tf.sub(v2, i.returns)),
  };
}

/** Clipped value loss, 0.5 * mean(max(...)) (the value coefficient is applied by the caller). */
export function clippedValueLoss(inputs: ValueLossInputs): tf.Scalar {
  checkRange('clipRange', inputs.clipRange);
  return tf.tidy(() => {
    const { plain, clipped } = valueBranches(inputs);
    return tf.mul(maskedMean(tf.maximum(plain, clipped), inputs.mask), 0.5) as tf.Scalar;
  });
}

/** Share of valid tokens whose value loss comes from the clipped prediction. */
export function valueClipFraction(inputs: ValueLossInputs): tf.Scalar {
  checkRange('clipRange', inputs.clipRange);
  return tf.tidy(() => {
    const { plain, clipped } = valueBranches(inputs);
    return maskedMean(tf.cast(tf.greater(clipped, plain), 'float32'), inputs.mask);
  });
}

export type ApproxKlKind = 'half-squared' | 'k3';

/** Approximate KL(old || new) for logging (and early stopping), masked mean. */
export function approxKl(logprobs: tf.Tensor, oldLogprobs: tf.Tensor, mask?: tf.Tensor, kind: ApproxKlKind = 'half-squared'): tf.Scalar {
  return tf.tidy(() => {
    const d = tf.sub(logprobs, oldLogprobs);
    const per = kind === 'half-squared' ? tf.mul(tf.square(d), 0.5) : tf.sub(tf.sub(tf.exp(d), 1), d);
    return maskedMean(per, mask);
  });
}

/** Mean entropy over valid positions, from per-position entropies (see `entropyFromLogits`). */
export function meanEntropy(entropies: tf.Tensor, mask?: tf.Tensor): tf.Scalar {
  return maskedMean(entropies, mask);
}
