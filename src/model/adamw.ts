/**
 * AdamW (Loshchilov & Hutter): Adam with bias correction and weight decay decoupled from the
 * gradient (p -= lr * wd * p, only on parameters marked `decay`, i.e. matrices).
 *
 * Three implementations of the same arithmetic: on CPU backends (wasm, cpu) the update runs in
 * plain JS over Float32Arrays, one pass per parameter: as tensor ops it would be ~10 tiny kernels
 * per parameter, each paying tfjs's per-op overhead (a tenth of a training step at the default
 * size). On GPU backends ('flat') the moments stay on the device; the small parameters (biases,
 * norms, matrices up to FLAT_MAX_ELEMENTS) share two flat tf.Variables and one update over them
 * concatenated (~20 kernels plus a slice each, instead of ~16 kernels each: on WebGPU a kernel
 * costs ~0.1-0.3 ms of launch), while larger ones are updated one by one ('tensor', the
 * per-parameter form). Measured on an H200: the default config's step 417 -> 101 ms; but with
 * every parameter in the flat group a 4 x 512 decoder's step went 581 -> 3,695 ms (tfjs's concat
 * and split over millions of elements are slow there).
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
  readonly impl: 'js' | 'tensor' | 'flat';
  /**
   * One update from gradients keyed by parameter name; `gradScale` multiplies every gradient
   * first (global-norm clipping). Parameters without a gradient are left alone.
   */
  apply(grads: ReadonlyMap<string, tf.Tensor>, lr: number, gradScale?: number): void;
  /** A copy of the moments and step. */
  state(): Promise<OptimizerState>;
  load(state: OptimizerState): void;
  dispose(): void;
}

export interface CreateAdamWOptions extends AdamWOptions {
  /** Default: 'js' on the wasm and cpu backends, 'flat' elsewhere. */
  impl?: 'js' | 'tensor' | 'flat';
}

interface Slot {
  p: Parameter;
  m: Float32Array | tf.Variable;
  v: Float32Array | tf.Variable;
}

/** Parameters up to this many elements share the flat update on GPU backends (see the file comment). */
export const FLAT_MAX_ELEMENTS = 65_536;

export function createAdamW(params: readonly Parameter[], options: CreateAdamWOptions = {}): AdamW {
  const { impl: implOpt, ...rest } = options;
  const o: Required<AdamWOptions> = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...rest };
  for (const k of ['beta1', 'beta2'] as const) {
    if (!(o[k] >= 0 && o[k] < 1)) throw new InvalidOptionError(`optimizer.${k}`, `must be in [0, 1), got ${o[k]}`);
  }
  if (!(o.eps > 0)) throw new InvalidOptionError('optimizer.eps', `must be positive, got ${o.eps}`);
  if (!(o.weightDecay >= 0)) throw new InvalidOptionError('optimizer.weightDecay', `must be >= 0, got ${o.weightDecay}`);
  const impl = implOpt ?? (['wasm', 'cpu'].includes(tf.getBackend()) ? 'js' : 'flat');
  const sizes = params.map((p) => p.shape.reduce((a, b) => a * b, 1));
  const inFlat = sizes.map((n) => impl === 'flat' && n <= FLAT_MAX_ELEMENTS);
  const offsets: number[] = [];
  let total = 0;
  for (let i = 0; i < sizes.length; i++) { offsets.push(total); if (inFlat[i]) total += sizes[i]!; }
  const flatVariable = () => {
    const z = tf.zeros([total]);
    const v = tf.variable(z, false);
    z.dispose();
    return v;
  };
  const flatIdx = sizes.map((_, i) => i).filter((i) => inFlat[i]);
  const flat = total > 0 ? { m: flatVariable(), v: flatVariable() } : null;
  const decays = flatIdx.some((i) => params[i]!.decay) && o.weightDecay > 0;
  const decayMask = flat && decays ? tf.keep(tf.tensor1d(Float32Array.from(flatIdx.flatMap((i) => new Array<number>(sizes[i]!).fill(params[i]!.decay ? 1 : 0))))) : null;
  const zeros = (shape: readonly number[], i: number): Float32Array | tf.Variable => {
    if (impl === 'js' || inFlat[i]) return new Float32Array(impl === 'js' ? sizes[i]! : 0); // flat ones live in `flat`
    const z = tf.zeros(shape as number[]);
    const v = tf.variable(z, false);
    z.dispose();
    return v;
  };
  const slots: Slot[] = params.map((p, i) => ({ p, m: zeros(p.shape, i), v: zeros(p.shape, i) }));
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

  /** The flat group's parameters in one pass; a parameter without a gradient keeps its value and moments. */
  function applyFlat(grads: ReadonlyMap<string, tf.Tensor>, lr: number, gradScale: number, bc1: number, bc2: number): void {
    if (!flat) return;
    const group = flatIdx.map((i) => slots[i]!);
    const groupSizes = flatIdx.map((i) => sizes[i]!);
    tf.tidy(() => {
      const present = group.map((s) => grads.has(s.p.name));
      if (!present.some(Boolean)) return;
      let g = tf.concat(group.map((s, k) => (present[k] ? tf.reshape(grads.get(s.p.name)!, [-1]) : tf.zeros([groupSizes[k]!]))));
      if (gradScale !== 1) g = tf.mul(g, gradScale);
      const p = tf.concat(group.map((s) => tf.reshape(s.p.variable, [-1])));
      let m = tf.add(tf.mul(flat.m, o.beta1), tf.mul(g, 1 - o.beta1));
      let v = tf.add(tf.mul(flat.v, o.beta2), tf.mul(tf.square(g), 1 - o.beta2));
      let update = tf.div(tf.mul(m, lr / bc1), tf.add(tf.sqrt(tf.div(v, bc2)), o.eps));
      if (decayMask) update = tf.add(update, tf.mul(p, tf.mul(decayMask, lr * o.weightDecay)));
      let next = tf.sub(p, update);
      if (present.some((x) => !x)) {
        const keep = tf.tensor1d(Uint8Array.from(groupSizes.flatMap((n, k) => new Array<number>(n).fill(present[k] ? 1 : 0))), 'bool');
        m = tf.where(keep, m, flat.m);
        v = tf.where(keep, v, flat.v);
        next = tf.where(keep, next, p);
      }
      flat.m.assign(m);
      flat.v.assign(v);
      const parts = tf.split(next, groupSizes);
      group.forEach((s, k) => { if (present[k]) s.p.variable.assign(tf.reshape(parts[k]!, [...s.p.shape])); });
    });
  }

  const read = async (x: Float32Array | tf.Variable) => (x instanceof Float32Array ? Float32Array.from(x) : Float32Array.from(await x.data() as Float32Array));

  return {
    options: o,
    impl,
    get step() { return step; },
    apply(grads, lr, gradScale = 1) {
      const t = step + 1;
      const bc1 = 1 - o.beta1 ** t;
      const bc2 = 1 - o.beta2 ** t;
      applyFlat(grads, lr, gradScale, bc1, bc2);
      slots.forEach((s, i) => {
        const g = grads.get(s.p.name);
        if (!g || inFlat[i]) return;
        if (impl === 'js') applyJs(s, g, lr, gradScale, bc1, bc2);
        else applyTensor(s, g, lr, gradScale, bc1, bc2);
      });
      step = t;
    },
    async state() {
      const moments = new Map<string, { shape: number[]; data: Float32Array }>();
      const fm = flat ? await flat.m.data() as Float32Array : null;
      const fv = flat ? await flat.v.data() as Float32Array : null;
      for (const [i, s] of slots.entries()) {
        if (inFlat[i]) {
          moments.set(`m.${s.p.name}`, { shape: [...s.p.shape], data: fm!.slice(offsets[i]!, offsets[i]! + sizes[i]!) });
          moments.set(`v.${s.p.name}`, { shape: [...s.p.shape], data: fv!.slice(offsets[i]!, offsets[i]! + sizes[i]!) });
          continue;
        }
        moments.set(`m.${s.p.name}`, { shape: [...s.p.shape], data: await read(s.m) });
        moments.set(`v.${s.p.name}`, { shape: [...s.p.shape], data: await read(s.v) });
      }
      return { step, moments };
    },
    load(state) {
      const flatData = flat ? { m: new Float32Array(total), v: new Float32Array(total) } : null;
      slots.forEach((s, i) => {
        for (const which of ['m', 'v'] as const) {
          const key = `${which}.${s.p.name}`;
          const saved = state.moments.get(key);
          if (!saved) throw new CheckpointError(`optimizer state has no ${key}`, { fix: 'resume from a checkpoint written for this model, or start the optimizer fresh' });
          if (saved.shape.join() !== s.p.shape.join()) throw new CheckpointError(`optimizer state ${key} has shape [${saved.shape}], expected [${s.p.shape}]`, { fix: 'the checkpoint belongs to a different model size' });
          const slot = s[which];
          if (flatData && inFlat[i]) flatData[which].set(saved.data, offsets[i]);
          else if (slot instanceof Float32Array) slot.set(saved.data);
          else {
            const t = tf.tensor(saved.data, saved.shape, 'float32');
            slot.assign(t);
            t.dispose();
          }
        }
      });
      if (flat && flatData) {
        for (const which of ['m', 'v'] as const) {
          const t = tf.tensor1d(flatData[which]);
          flat[which].assign(t);
          t.dispose();
        }
      }
      step = state.step;
    },
    dispose() {
      for (const s of slots) for (const x of [s.m, s.v]) if (!(x instanceof Float32Array)) x.dispose();
      flat?.m.dispose();
      flat?.v.dispose();
      decayMask?.dispose();
    },
  };
}
