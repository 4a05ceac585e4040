/**
 * AdamW (Loshchilov & Hutter): Adam with bias correction and weight decay decoupled from the
 * gradient (p -= lr * wd * p, only on parameters marked `decay`, i.e. matrices).
 *
 * Two implementations of the same arithmetic: on CPU backends (wasm, cpu) the update runs in
 * plain JS over Float32Arrays, one pass per parameter: as tensor ops it would be ~10 tiny kernels
 * per parameter, each paying tfjs's per-op overhead (a tenth of a training step at the default
 * size). On GPU backends the moments stay on the device as tf.Variables.
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

/** Moments as plain arrays (what checkpoints store). */
export interface OptimizerState {
  /** Updates applied so far. */
  step: number;
  /** `m.<param>` and `v.<param>`. */
  moments: Map<string, { shape: number[]; data: Float32Array }>;
}

export interface AdamW {
  readonly options: Required<AdamWOptions>;
  /** Updates applied so far (bias correction uses step + 1). */
  readonly step: number;
  readonly impl: 'js' | 'tensor';
  /**
   * One update from gradients keyed by parameter name; `gradScale` multiplies every gradient
   * first (global-norm clipping). Parameters without a gradient are left alone.
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, gradScale?: number): void;
  /** A copy of the moments and step. */
  state(): OptimizerState;
  load(state: OptimizerState): void;
  dispose(): void;
}

export interface CreateAdamWOptions extends AdamWOptions {
  /** Default: 'js' on the wasm and cpu backends, 'tensor' elsewhere. */
  impl?: 'js' | 'tensor';
}

interface Slot {
  p: Parameter;
  m: Float32Array | tf.Variable;
  v: Float32Array | tf.Variable;
}

export function createAdamW(params: readonly Parameter[], options: CreateAdamWOptions = {}): AdamW {
  const { impl: implOpt, ...rest } = options;
  const o: Required<AdamWOptions> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...rest };
  for (const k of ['beta1', 'beta2'] as const) {
    if (!(o[k] >= 0 && o[k] < 1)) throw new InvalidOptionError(`optimizer.${k}`, `must be in [0, 1), got ${o[k]}`);
  }
  if (!(o.eps > 0)) throw new InvalidOptionError('optimizer.eps', `must be positive, got ${o.eps}`);
  if (!(o.weightDecay >= 0)) throw new InvalidOptionError('optimizer.weightDecay', `must be >= 0, got ${o.weightDecay}`);
  const impl = implOpt ?? (['wasm', 'cpu'].includes(tf.getBackend()) ? 'js' : 'tensor');
  const zeros = (shape: readonly number[]): Float32Array | tf.Variable => {
    if (impl === 'js') return new Float32Array(shape.reduce((a, b) => a * b, 1));
    const z = tf.zeros(shape as number[]);
    const v = tf.variable(z, false);
    z.dispose();
    return v;
  };
  const slots: Slot[] = params.map((p) => ({ p, m: zeros(p.shape), v: zeros(p.shape) }));
  let step = 0;

  function applyJs(s: Slot, grad: tf.Tensor, lr: number, gradScale: number, bc1: number, bc2: number): void {
    const g = grad.dataSync() as Float32Array;
    const p = Float32Array.from(s.p.variable.dataSync() as Float32Array);
    const m = s.m as Float32Array;
    const v = s.v as Float32Array;
    const { beta1: b1, beta2: b2, eps } = o;
    const decay = s.p.decay ? lr * o.weightDecay : 0;
    const a = lr / bc1;
    const c = 1 / bc2;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]! * gradScale;
      const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
      const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
      p[i] = p[i]! - (a * mi) / (Math.sqrt(vi * c) + eps) - decay * p[i]!;
    }
    const t = tf.tensor(p, s.p.shape as number[], 'float32');
    s.p.variable.assign(t);
    t.dispose();
  }

  function applyTensor(s: Slot, grad: tf.Tensor, lr: number, gradScale: number, bc1: number, bc2: number): void {
    tf.tidy(() => {
      const g = gradScale !== 1 ? tf.mul(grad, gradScale) : grad;
      const mv = s.m as tf.Variable;
      const vv = s.v as tf.Variable;
      const m = tf.add(tf.mul(mv, o.beta1), tf.mul(g, 1 - o.beta1));
      const v = tf.add(tf.mul(vv, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
      // lr * mhat / (sqrt(vhat) + eps), with the corrections folded into scalars
      let update = tf.div(tf.mul(m, lr / bc1), tf.add(tf.sqrt(tf.div(v, bc2)), o.eps));
      if (s.p.decay && o.weightDecay > 0) update = tf.add(update, tf.mul(s.p.variable, lr * o.weightDecay));
      mv.assign(m);
      vv.assign(v);
      s.p.variable.assign(tf.sub(s.p.variable, update));
    });
  }

  const read = (x: Float32Array | tf.Variable) => (x instanceof Float32Array ? Float32Array.from(x) : Float32Array.from(x.dataSync() as Float32Array));

  return {
    options: o,
    impl,
    get step() { return step; },
    apply(grads, lr, gradScale = 1) {
      const t = step + 1;
      const bc1 = 1 - o.beta1 ** t;
      const bc2 = 1 - o.beta2 ** t;
      for (const s of slots) {
        const g = grads.get(s.p.name);
        if (!g) continue;
        if (impl === 'js') applyJs(s, g, lr, gradScale, bc1, bc2);
        else applyTensor(s, g, lr, gradScale, bc1, bc2);
      }
      step = t;
    },
    state() {
      const moments = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const s of slots) {
        moments.set(`m.${s.p.name}`, { shape: [...s.p.shape], data: read(s.m) });
        moments.set(`v.${s.p.name}`, { shape: [...s.p.shape], data: read(s.v) });
      }
      return { step, moments };
    },
    load(state) {
      for (const s of slots) {
        for (const which of ['m', 'v'] as const) {
          const key = `${which}.${s.p.name}`;
          const saved = state.moments.get(key);
          if (!saved) throw new CheckpointError(`optimizer state has no ${key}`, { fix: 'resume from a checkpoint written for this model, or start the optimizer fresh' });
          if (saved.shape.join() !== s.p.shape.join()) throw new CheckpointError(`optimizer state ${key} has shape [${saved.shape}], expected [${s.p.shape}]`, { fix: 'the checkpoint belongs to a different model size' });
          const slot = s[which];
          if (slot instanceof Float32Array) slot.set(saved.data);
          else {
            const t = tf.tensor(saved.data, saved.shape, 'float32');
            slot.assign(t);
            t.dispose();
          }
        }
      }
      step = state.step;
    },
    dispose() {
      for (const s of slots) for (const x of [s.m, s.v]) if (!(x instanceof Float32Array)) x.dispose();
    },
  };
}
