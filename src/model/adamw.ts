/**
 * AdamW (Loshchilov & Hutter): Adam with bias correction and weight decay decoupled from the
 * gradient (p -= lr * wd * p, only on parameters marked `decay`, i.e. matrices). Moments are
 * tf.Variables keyed by parameter name so they can be saved and restored with a checkpoint.
 */
import * as tf from '@tensorflow/tfjs';
import { CheckpointError, InvalidOptionError } from '../errors.ts';
import type { Parameter } from './parameters.ts';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export interface OptimizerState {
  /** Updates applied so far. */
  step: number;
  /** `m.<param>` and `v.<param>` moments. */
  tensors: Map<string, tf.Tensor>;
}

export interface AdamW {
  readonly options: Required<AdamWOptions>;
  /** Updates applied so far (bias correction uses step + 1). */
  readonly step: number;
  /**
   * One update from gradients keyed by parameter name; `gradScale` multiplies every gradient
   * first (global-norm clipping). Parameters without a gradient are left alone.
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, gradScale?: number): void;
  /** The moments (views of live variables: save them before the next update). */
  state(): OptimizerState;
  load(state: OptimizerState): void;
  dispose(): void;
}

export function createAdamW(params: readonly Parameter[], options: AdamWOptions = {}): AdamW {
  const o: Required<AdamWOptions> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...options };
  for (const k of ['beta1', 'beta2'] as const) {
    if (!(o[k] >= 0 && o[k] < 1)) throw new InvalidOptionError(`optimizer.${k}`, `must be in [0, 1), got ${o[k]}`);
  }
  if (!(o.eps > 0)) throw new InvalidOptionError('optimizer.eps', `must be positive, got ${o.eps}`);
  if (!(o.weightDecay >= 0)) throw new InvalidOptionError('optimizer.weightDecay', `must be >= 0, got ${o.weightDecay}`);
  const zeros = (shape: readonly number[]) => {
    const z = tf.zeros(shape as number[]);
    const v = tf.variable(z, false);
    z.dispose();
    return v;
  };
  const slots = params.map((p) => ({ p, m: zeros(p.shape), v: zeros(p.shape) }));
  let step = 0;
  return {
    options: o,
    get step() { return step; },
    apply(grads, lr, gradScale = 1) {
      const t = step + 1;
      const bc1 = 1 - o.beta1 ** t;
      const bc2 = 1 - o.beta2 ** t;
      tf.tidy(() => {
        for (const s of slots) {
          let g = grads.get(s.p.name);
          if (!g) continue;
          if (gradScale !== 1) g = tf.mul(g, gradScale);
          const m = tf.add(tf.mul(s.m, o.beta1), tf.mul(g, 1 - o.beta1));
          const v = tf.add(tf.mul(s.v, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
          // lr * mhat / (sqrt(vhat) + eps), with the corrections folded into scalars
          let update = tf.div(tf.mul(m, lr / bc1), tf.add(tf.sqrt(tf.div(v, bc2)), o.eps));
          if (s.p.decay && o.weightDecay > 0) update = tf.add(update, tf.mul(s.p.variable, lr * o.weightDecay));
          s.m.assign(m);
          s.v.assign(v);
          s.p.variable.assign(tf.sub(s.p.variable, update));
        }
      });
      step = t;
    },
    state() {
      const tensors = new Map<string, tf.Tensor>();
      for (const s of slots) {
        tensors.set(`m.${s.p.name}`, s.m);
        tensors.set(`v.${s.p.name}`, s.v);
      }
      return { step, tensors };
    },
    load(state) {
      for (const s of slots) {
        for (const [key, slot] of [[`m.${s.p.name}`, s.m], [`v.${s.p.name}`, s.v]] as const) {
          const t = state.tensors.get(key);
          if (!t) throw new CheckpointError(`optimizer state has no ${key}`, { fix: 'resume from a checkpoint written for this model, or start the optimizer fresh' });
          if (t.shape.join() !== slot.shape.join()) throw new CheckpointError(`optimizer state ${key} has shape [${t.shape}], expected [${slot.shape}]`, { fix: 'the checkpoint belongs to a different model size' });
          slot.assign(t);
        }
      }
      step = state.step;
    },
    dispose() {
      for (const s of slots) { s.m.dispose(); s.v.dispose(); }
    },
  };
}
