/** columnSum takes its own path on wasm (a transposed product with a column of ones): same sums. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { columnSum } from '../../src/model/ops.ts';
import { Rng } from '../../src/stream/random.ts';

test.before(async () => { await tf.setBackend('wasm'); });

for (const [n, d] of [[7, 3], [1, 5], [300, 1], [1024, 96]] as const) {
  test(`columnSum on wasm equals tf.sum over axis 0 (${n} x ${d})`, async (t) => {
    t.is(tf.getBackend(), 'wasm');
    const rng = new Rng(n * 31 + d);
    const values = Float32Array.from({ length: n * d }, () => rng.normal());
    const expected = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) expected[j]! += values[i * d + j]!;
    const x = tf.tensor2d(values, [n, d]);
    const got = columnSum(x);
    t.deepEqual(got.shape, [d]);
    const data = await got.data();
    for (let j = 0; j < d; j++) t.true(Math.abs(data[j]! - expected[j]!) <= 1e-4 * Math.sqrt(n), `column ${j}: ${data[j]} vs ${expected[j]}`);
    tf.dispose([x, got]);
  });
}
