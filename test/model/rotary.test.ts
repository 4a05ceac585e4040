import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../../src/stream/random.ts';
import { applyRotary, disposeRotary, rotaryAngle, rotaryTables, rotateHalf } from '../../src/model/rotary.ts';
import { TINY_MODEL_CONFIG, resolveModelConfig } from '../../src/model/config.ts';

await tf.setBackend('wasm');

test('rotate-half and angles (hand-computed: two heads of 4 channels)', (t) => {
  // per head [a, b, c, d] -> [-c, -d, a, b]
  const x = tf.tensor2d([[1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 0, 0, 0, 0, 2, 0]]);
  t.deepEqual(rotateHalf(x, 2).arraySync(), [[-3, -4, 1, 2, -7, -8, 5, 6], [-0, -0, 0, 1, -2, -0, 0, 0]]);
  x.dispose();
  t.is(rotaryAngle(5, 0, 4), 5);
  t.is(rotaryAngle(5, 2, 4), 5, 'channel i + headDim/2 shares channel i\'s frequency');
  t.true(Math.abs(rotaryAngle(5, 1, 4) - 5 / 100) < 1e-12, '10000^(-2/4) = 1/100');
});

test('rotated query-key scores depend on the distance only, per head', (t) => {
  const width = 8;
  const heads = 2;
  const rng = new Rng(3);
  const q = tf.tensor2d(Float32Array.from({ length: width }, () => rng.normal()), [1, width]);
  const k = tf.tensor2d(Float32Array.from({ length: width }, () => rng.normal()), [1, width]);
  const score = (pq: number, pk: number) => {
    const rq = rotaryTables(Int32Array.of(pq), width, heads);
    const rk = rotaryTables(Int32Array.of(pk), width, heads);
    const a = Array.from(applyRotary(q, rq).dataSync());
    const b = Array.from(applyRotary(k, rk).dataSync());
    disposeRotary(rq);
    disposeRotary(rk);
    // per-head dot products
    return [0, 1].map((h) => a.slice(h * 4, h * 4 + 4).reduce((s, x, i) => s + x * b[h * 4 + i]!, 0));
  };
  const near = score(7, 4);
  const far = score(37, 34);
  near.forEach((s, h) => t.true(Math.abs(s - far[h]!) < 1e-4, `head ${h}: ${s} vs ${far[h]}`));
  const other = score(7, 1);
  t.true(Math.abs(other[0]! - near[0]!) > 1e-3, 'another distance gives another score');
  // position 0 is the identity
  const r0 = rotaryTables(Int32Array.of(0), width, heads);
  t.deepEqual([...applyRotary(q, r0).dataSync()].map((x) => Math.round(x * 1e5)), [...q.dataSync()].map((x) => Math.round(x * 1e5)));
  disposeRotary(r0);
  tf.dispose([q, k]);
});

test('config: positions is checked; rotary needs an even head width', (t) => {
  t.is(resolveModelConfig({ language: { positions: 'rotary' } }, TINY_MODEL_CONFIG).language.positions, 'rotary');
  t.is(resolveModelConfig({}, TINY_MODEL_CONFIG).language.positions, 'learned', 'absent means learned (older checkpoints)');
  t.is(resolveModelConfig({}).language.positions, 'rotary', 'the default model');
  t.throws(() => resolveModelConfig({ language: { positions: 'alibi' as never } }, TINY_MODEL_CONFIG), { message: /model\.language\.positions/ });
  t.throws(() => resolveModelConfig({ language: { positions: 'rotary', width: 18, heads: 2 } }, TINY_MODEL_CONFIG), { message: /even head width/ });
});

test('the rotation as one op (half swap by a signed permutation) equals the split/concat form, values and gradients', (t) => {
  const rng = new Rng(3);
  const width = 16, heads = 2, n = 5;
  const x = tf.tensor2d(Array.from({ length: n * width }, () => rng.normal()), [n, width]);
  const dy = tf.tensor2d(Array.from({ length: n * width }, () => rng.normal()), [n, width]);
  const r = rotaryTables(Int32Array.from([0, 3, 7, 1, 40]), width, heads);
  const reference = (v: tf.Tensor) => tf.add(tf.mul(v, r.cos), tf.mul(rotateHalf(v as tf.Tensor2D, heads), r.sin));
  t.deepEqual(tf.matMul(x, r.swap).arraySync(), rotateHalf(x, heads).arraySync(), 'x @ swap = rotateHalf(x)');
  const want = reference(x).dataSync();
  const got = applyRotary(x, r).dataSync();
  got.forEach((v, i) => t.true(Math.abs(v - want[i]!) < 1e-6, `value ${i}: ${v} vs ${want[i]}`));
  const gWant = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(reference(v), dy)))(x).dataSync();
  const gGot = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(applyRotary(v as tf.Tensor2D, r), dy)))(x).dataSync();
  gGot.forEach((v, i) => t.true(Math.abs(v - gWant[i]!) < 1e-5, `gradient ${i}: ${v} vs ${gWant[i]}`));
  t.true(gGot.some((v) => Math.abs(v) > 0.1), 'gradients are not all zero');
  disposeRotary(r);
  tf.dispose([x, dy]);
});
