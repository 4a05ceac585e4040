import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../../src/stream/random.ts';
import { attention, batchMatMul, columnSum, selfAttention, embedding, gelu, layerNorm, linear, matMul, softmax, weightedCrossEntropy } from '../../src/model/ops.ts';

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

function refAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, b: number, h: number, tq: number, tk: number, bias: tf.Tensor | null): tf.Tensor {
  const d = q.shape[1]!, hd = d / h;
  const qh = tf.transpose(tf.reshape(q, [b, tq, h, hd]), [0, 2, 1, 3]);
  const kh = tf.transpose(tf.reshape(k, [b, tk, h, hd]), [0, 2, 1, 3]);
  const vh = tf.transpose(tf.reshape(v, [b, tk, h, hd]), [0, 2, 1, 3]);
  let s = tf.div(tf.matMul(qh, kh, false, true), Math.sqrt(hd));
  if (bias) s = tf.add(s, tf.transpose(bias, [1, 2, 0, 3]));
  return tf.reshape(tf.transpose(tf.matMul(tf.softmax(s), vh), [0, 2, 1, 3]), [b * tq, d]);
}

test.serial('attention: both formulations (batched; depthwise on wasm) equal a reference, values and gradients', async (t) => {
  const b = 2, h = 2, tq = 3, tk = 5, d = 8;
  const mask = new Float32Array(tq * b * tk);
  for (let i = 0; i < tq; i++) for (let j = 0; j < tk; j++) { if (j > 2 + i) mask[(i * b + 0) * tk + j] = -1e9; if (j === 0) mask[(i * b + 1) * tk + j] = -1e9; }
  const bias = tf.tensor4d(mask, [tq, b, 1, tk]);
  const inputs = [rand([b * tq, d]), rand([b * tk, d]), rand([b * tk, d])];
  const mine = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => attention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, { batch: b, heads: h, queries: tq, keys: tk }, bias);
  const ref = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => refAttention(q, k, v, b, h, tq, tk, bias);
  same(t, inputs, mine as never, ref as never, 2e-4);
  const r = rand([b * tq, d]);
  const f = (fn: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor) => (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(fn(q, k, v), r));
  const want = tf.grads(f(ref))(inputs);
  await tf.setBackend('wasm');
  try {
    t.true(maxRelDiff(mine(inputs[0]!, inputs[1]!, inputs[2]!), ref(inputs[0]!, inputs[1]!, inputs[2]!)) < 2e-4);
    tf.grads(f(mine))(inputs).forEach((g, i) => t.true(maxRelDiff(g, want[i]!) < 2e-4, `input ${i}: ${maxRelDiff(g, want[i]!)}`));
  } finally {
    await tf.setBackend('cpu');
  }
});

test.serial('selfAttention (fused projections on wasm) equals linear projections + reference attention, values and gradients', async (t) => {
  const b = 2, h = 2, n = 4, d = 8;
  const inputs = [rand([b * n, d]), rand([d, d]), rand([d, d]), rand([d, d]), rand([d]), rand([d]), rand([d])];
  const shape = { batch: b, heads: h, queries: n, keys: n };
  const ref = (x: tf.Tensor, wq: tf.Tensor, wk: tf.Tensor, wv: tf.Tensor, bq: tf.Tensor, bk: tf.Tensor, bv: tf.Tensor) =>
    refAttention(tf.add(tf.matMul(x as tf.Tensor2D, wq as tf.Tensor2D), bq), tf.add(tf.matMul(x as tf.Tensor2D, wk as tf.Tensor2D), bk), tf.add(tf.matMul(x as tf.Tensor2D, wv as tf.Tensor2D), bv), b, h, n, n, null);
  const mine = (x: tf.Tensor, wq: tf.Tensor, wk: tf.Tensor, wv: tf.Tensor, bq: tf.Tensor, bk: tf.Tensor, bv: tf.Tensor) =>
    selfAttention(x as tf.Tensor2D, { q: wq as tf.Tensor2D, k: wk as tf.Tensor2D, v: wv as tf.Tensor2D }, { q: bq as tf.Tensor1D, k: bk as tf.Tensor1D, v: bv as tf.Tensor1D }, shape, null);
  const r = rand([b * n, d]);
  const loss = (fn: typeof ref) => (...x: tf.Tensor[]) => tf.sum(tf.mul((fn as (...a: tf.Tensor[]) => tf.Tensor)(...x), r));
  const want = tf.grads(loss(ref))(inputs);
  const wantVal = (ref as (...a: tf.Tensor[]) => tf.Tensor)(...inputs);
  await tf.setBackend('wasm');
  try {
    t.true(maxRelDiff((mine as (...a: tf.Tensor[]) => tf.Tensor)(...inputs), wantVal) < 2e-4);
    // the key bias's true gradient is 0 (it shifts every score of a query equally): compare absolutely
    tf.grads(loss(mine))(inputs).forEach((g, i) => {
      const x = g.dataSync(), y = want[i]!.dataSync();
      x.forEach((v, j) => t.true(Math.abs(v - y[j]!) <= 1e-4 + 5e-4 * Math.abs(y[j]!), `input ${i}[${j}]: ${v} vs ${y[j]}`));
    });
  } finally {
    await tf.setBackend('cpu');
  }
});

test.serial('on wasm, linear and matMul weight gradients (both orientations of weightGrad) equal the cpu ones', async (t) => {
  for (const [din, dout] of [[3, 7], [7, 3]] as const) {
    const x = rand([6, din]), w = rand([din, dout]), b = rand([dout]), r = rand([6, dout]);
    const f = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(linear(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D), r));
    const g = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(matMul(xx as tf.Tensor2D, ww as tf.Tensor2D), r));
    const want = [...tf.grads(f)([x, w, b]), ...tf.grads(g)([x, w])];
    await tf.setBackend('wasm');
    try {
      const got = [...tf.grads(f)([x, w, b]), ...tf.grads(g)([x, w])];
      got.forEach((v, i) => t.true(maxRelDiff(v, want[i]!) < 1e-4, `${din}x${dout} gradient ${i}`));
    } finally {
      await tf.setBackend('cpu');
    }
  }
});
