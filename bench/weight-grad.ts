/**
 * The weight-gradient product x^T @ g on wasm, in the forms ops.ts can choose from: transpose x,
 * transpose g (and the small result back), or tfjs's transposeA flag. Operands are fresh tensors
 * on every call, as in training (XNNPACK keeps the packed right operand of a tensor it has seen,
 * so reusing one operand would hide the packing cost). Ratio: against the form weightGrad picks.
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import { weightGrad } from '../src/model/ops.ts';
import type { BenchFn, BenchRow } from './types.ts';

const SUITE = 'weight-grad';

type Form = (x: tf.Tensor2D, g: tf.Tensor2D) => tf.Tensor;

const FORMS: Array<[string, Form]> = [
  ['weightGrad (picked)', weightGrad],
  ['x^T @ g', (x, g) => tf.matMul(tf.transpose(x), g)],
  ['(g^T @ x)^T', (x, g) => tf.transpose(tf.matMul(tf.transpose(g), x))],
  ['transposeA flag', (x, g) => tf.matMul(x, g, true, false)],
];

/** Median ms of `form` over `reps` calls, each on fresh copies of x and g (copies not timed). */
function timeForm(form: Form, x0: tf.Tensor2D, g0: tf.Tensor2D, reps: number): number {
  const ts: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    const x = tf.add(x0, 0) as tf.Tensor2D;
    const g = tf.add(g0, 0) as tf.Tensor2D;
    x.dataSync(); g.dataSync();
    const t0 = performance.now();
    const r = form(x, g);
    r.dataSync();
    if (i >= 2) ts.push(performance.now() - t0);
    tf.dispose([r, x, g]);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)]!;
}

export const bench: BenchFn = async ({ quick }) => {
  await selectBackend('wasm');
  const rows: BenchRow[] = [];
  const reps = quick ? 5 : 11;
  // the default model's products: LM MLP (128 <-> 512) and attention (128 x 128), 32 x 128 rows
  for (const [n, din, dout] of [[4096, 128, 512], [4096, 512, 128], [4096, 128, 128]] as const) {
    const x = tf.randomNormal([n, din]) as tf.Tensor2D;
    const g = tf.randomNormal([n, dout]) as tf.Tensor2D;
    const flops = 2 * n * din * dout;
    const picked = timeForm(weightGrad, x, g, reps);
    for (const [name, form] of FORMS) {
      const ms = form === weightGrad ? picked : timeForm(form, x, g, reps);
      rows.push({
        suite: SUITE, case: `${name}, x ${n}x${din}, g ${n}x${dout}`, value: flops / ms / 1e6, unit: 'GFLOP/s',
        ratio: picked / ms, baseline: 'weightGrad (speed)', note: `${ms.toFixed(1)} ms`,
      });
    }
    tf.dispose([x, g]);
  }
  return rows;
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const row of await bench({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(row));
}
