/**
 * Named parameters as tf.Variables. A checkpoint key (`lm.layers.0.attn.qkv.weight`) is the
 * parameter's name; its tf.Variable gets a process-unique name (tfjs refuses two variables
 * with one name, and a PPO run holds policy, reference, reward and value models at once).
 * Linear weights are stored [in, out] so that the forward pass needs no transpose.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../stream/random.ts';

export type Init = { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' } | { kind: 'constant'; value: number };

export interface Parameter {
  /** Checkpoint key, e.g. `vision.blocks.1.mlp.fc1.weight`. */
  readonly name: string;
  /** Group for reporting and gradient checks, e.g. `vision.blocks.1`, `lm.embed`, `head.reward`. */
  readonly group: string;
  readonly shape: readonly number[];
  /** AdamW applies weight decay to matrices only (not to gains, biases). */
  readonly decay: boolean;
  readonly variable: tf.Variable;
}

export interface ParameterStore {
  add(name: string, group: string, shape: number[], init: Init, options?: { decay?: boolean }): tf.Variable;
  get(name: string): tf.Variable;
  has(name: string): boolean;
  list(): readonly Parameter[];
  /** Total scalar count, optionally only of names starting with `prefix`. */
  count(prefix?: string): number;
  dispose(): void;
}

let storeCounter = 0;

/** Initial values come from `rng` so the same seed gives the same model on every backend. */
export function createParameterStore(rng: Rng, label = 'model'): ParameterStore {
  const id = `${label}${storeCounter++}`;
  const byName = new Map<string, Parameter>();
  const order: Parameter[] = [];
  return {
    add(name, group, shape, init, options = {}) {
      if (byName.has(name)) throw new Error(`parameter ${name} defined twice`);
      const size = shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(size);
      if (init.kind === 'ones') values.fill(1);
      else if (init.kind === 'constant') values.fill(init.value);
      else if (init.kind === 'normal') for (let i = 0; i < size; i++) values[i] = rng.normal() * init.std;
      const initial = tf.tensor(values, shape, 'float32');
      const variable = tf.variable(initial, true, `${id}/${name}`);
      initial.dispose();
      const p: Parameter = { name, group, shape: [...shape], decay: options.decay ?? shape.length >= 2, variable };
      byName.set(name, p);
      order.push(p);
      return variable;
    },
    get(name) {
      const p = byName.get(name);
      if (!p) throw new Error(`no parameter ${name}`);
      return p.variable;
    },
    has: (name) => byName.has(name),
    list: () => order,
    count(prefix) {
      let n = 0;
      for (const p of order) if (prefix === undefined || p.name.startsWith(prefix)) n += p.variable.size;
      return n;
    },
    dispose() {
      for (const p of order) p.variable.dispose();
      byName.clear();
      order.length = 0;
    },
  };
}
