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

test('partial rotary (rotaryFraction): the first pairs turn at frequencies spread over them, the rest not at all', (t) => {
  // head of 8 channels = 4 pairs; fraction 0.5 turns pairs 0 and 1 at 10000^0 and 10000^(-1/2)
  t.is(rotaryAngle(6, 0, 8, 0.5), 6);
  t.true(Math.abs(rotaryAngle(6, 1, 8, 0.5) - 6 / 100) < 1e-12, '10000^(-1/2) = 1/100');
  t.is(rotaryAngle(6, 5, 8, 0.5), rotaryAngle(6, 1, 8, 0.5), 'channel i + 4 shares channel i\'s angle');
  t.is(rotaryAngle(6, 2, 8, 0.5), 0);
  t.is(rotaryAngle(6, 7, 8, 0.5), 0);
  for (let j = 0; j < 8; j++) t.is(rotaryAngle(9, j, 8, 1), rotaryAngle(9, j, 8), 'fraction 1 is plain RoPE');
  // content in the still pairs scores the same at every distance; in a turning pair it does not
  const width = 8, heads = 1;
  const still = tf.tensor2d([[0, 0, 1, 2, 0, 0, 3, 1]]); // pairs 2 and 3 only
  const turning = tf.tensor2d([[1, 0, 0, 0, 2, 0, 0, 0]]); // pair 0 only
  const score = (v: tf.Tensor2D, pq: number, pk: number) => {
    const rq = rotaryTables(Int32Array.of(pq), width, heads, 0.5);
    const rk = rotaryTables(Int32Array.of(pk), width, heads, 0.5);
    const s = tf.sum(tf.mul(applyRotary(v, rq), applyRotary(v, rk))).dataSync()[0]!;
    disposeRotary(rq);
    disposeRotary(rk);
    return s;
  };
  for (const d of [0, 1, 5, 90]) t.true(Math.abs(score(still, 100, 100 - d) - 15) < 1e-4, `still pairs at distance ${d}`);
  t.true(Math.abs(score(turning, 100, 99) - 5 * Math.cos(1)) < 1e-4, 'a turning pair scores |v|^2 cos(distance)');
  tf.dispose([still, turning]);
});

test('config: rotaryFraction must be in (0, 1], turn at least one pair, and go with rotary positions', (t) => {
  const base = { positions: 'rotary' as const, width: 16, heads: 2 }; // heads of 8: 4 pairs
  t.is(resolveModelConfig({ language: { ...base, rotaryFraction: 0.25 } }, TINY_MODEL_CONFIG).language.rotaryFraction, 0.25);
  t.is(resolveModelConfig({ language: base }, TINY_MODEL_CONFIG).language.rotaryFraction, undefined, 'absent: all pairs turn');
  t.throws(() => resolveModelConfig({ language: { ...base, rotaryFraction: 0 } }, TINY_MODEL_CONFIG), { message: /rotaryFraction.*must be a number in \(0, 1\]/ });
  t.throws(() => resolveModelConfig({ language: { ...base, rotaryFraction: 1.5 } }, TINY_MODEL_CONFIG), { message: /rotaryFraction/ });
  t.throws(() => resolveModelConfig({ language: { ...base, rotaryFraction: 0.1 } }, TINY_MODEL_CONFIG), { message: /rotates no channel pair of a 8-wide head; use at least 0\.25/ });
  t.throws(() => resolveModelConfig({ language: { ...base, positions: 'learned', rotaryFraction: 0.5 } }, TINY_MODEL_CONFIG), { message: /applies to rotary positions only/ });
});
