import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../../src/stream/random.ts';
import { batchMatMul, columnSum, embedding, gelu, layerNorm, linear, matMul, softmax, weightedCrossEntropy } from '../../src/model/ops.ts';

tf.env().set('PROD', true);
test.before(async () => { await tf.setBackend('cpu'); });

const rng = new Rng(7);
const rand = (shape: number[]) => tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync(), y = b.dataSync();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / (1e-3 + Math.abs(y[i]!)));
  return worst;
}

/** Values and gradients (of sum(f(...) * r)) of `mine` and `ref` agree. */
function same(t: import('ava').ExecutionContext, inputs: tf.Tensor[], mine: (...x: tf.Tensor[]) => tf.Tensor, ref: (...x: tf.Tensor[]) => tf.Tensor, tol = 1e-4) {
  const out = ref(...inputs);
  const r = rand(out.shape);
  t.true(maxRelDiff(mine(...inputs), out) < tol, 'values differ');
  const gm = tf.grads((...x: tf.Tensor[]) => tf.sum(tf.mul(mine(...x), r)))(inputs);
  const gr = tf.grads((...x: tf.Tensor[]) => tf.sum(tf.mul(ref(...x), r)))(inputs);
  gm.forEach((g, i) => {
    t.deepEqual(g.shape, gr[i]!.shape);
    t.true(maxRelDiff(g, gr[i]!) < tol, `gradient of input ${i} differs: ${maxRelDiff(g, gr[i]!)}`);
  });
}

test('matMul: values and gradients equal tf.matMul', (t) => {
  same(t, [rand([5, 7]), rand([7, 3])], (a, b) => matMul(a as tf.Tensor2D, b as tf.Tensor2D), (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D));
});

test('batchMatMul: values and gradients equal tf.matMul on 3-D', (t) => {
  same(t, [rand([4, 5, 6]), rand([4, 6, 3])], (a, b) => batchMatMul(a as tf.Tensor3D, b as tf.Tensor3D), (a, b) => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D));
});

test.serial('batchMatMul on wasm (depthwise-convolution path) equals the cpu result, values and gradients', async (t) => {
  const a = rand([6, 5, 4]), b = rand([6, 4, 7]), r = rand([6, 5, 7]);
  const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(batchMatMul(x as tf.Tensor3D, y as tf.Tensor3D), r));
  const refVal = tf.matMul(a, b);
  const refGrads = tf.grads(f)([a, b]);
  await tf.setBackend('wasm');
  try {
    const val = batchMatMul(a as tf.Tensor3D, b as tf.Tensor3D);
    const grads = tf.grads(f)([a, b]);
    t.true(maxRelDiff(val, refVal) < 1e-4);
    grads.forEach((g, i) => t.true(maxRelDiff(g, refGrads[i]!) < 1e-4));
  } finally {
    await tf.setBackend('cpu');
  }
});

test('linear (fused bias, optional relu) equals matMul + add (+ relu)', (t) => {
  const inputs = [rand([6, 4]), rand([4, 5]), rand([5])];
  same(t, inputs, (x, w, b) => linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), (x, w, b) => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b));
  same(t, inputs, (x, w, b) => linear(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, 'relu'), (x, w, b) => tf.relu(tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b)));
});

test('embedding (gather forward, scatter-add backward) equals tf.gather, with repeated ids', (t) => {
  const ids = tf.tensor1d([3, 1, 3, 0, 3], 'int32');
  same(t, [rand([4, 6])], (e) => embedding(e as tf.Tensor2D, ids), (e) => tf.gather(e, ids));
});

test('layerNorm equals its composition from moments', (t) => {
  same(t, [rand([5, 8]), rand([8]), rand([8])], (x, g, b) => layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5), (x, g, b) => {
    const { mean, variance } = tf.moments(x, 1, true);
    return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
  }, 2e-4);
});

test('gelu equals x * Phi(x) built from tf.erf', (t) => {
  same(t, [rand([4, 9])], (x) => gelu(x), (x) => tf.mul(x, tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5)));
});

test('softmax equals tf.softmax', (t) => {
  same(t, [rand([3, 4, 6])], (x) => softmax(x), (x) => tf.softmax(x));
});

test('weightedCrossEntropy equals -sum(w * logSoftmax[target]); gradient also for the weights', (t) => {
  const targets = tf.tensor1d([2, 0, 4], 'int32');
  same(t, [rand([3, 5]), tf.tensor1d([0.5, 0, 0.25])], (z, w) => weightedCrossEntropy(z as tf.Tensor2D, targets, w as tf.Tensor1D),
    (z, w) => tf.neg(tf.sum(tf.mul(tf.sum(tf.mul(tf.logSoftmax(z), tf.oneHot(targets, 5)), 1), w))));
});

test('columnSum equals tf.sum over axis 0', (t) => {
  same(t, [rand([7, 3])], (x) => columnSum(x as tf.Tensor2D), (x) => tf.sum(x, 0));
});
