import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { KERNELS_WASM, kernelBackward, kernelForward, kernelLayerNorm, kernelTranspose, type KernelShape } from '../../src/model/wasm-kernels.ts';
import { attention, layerNorm, linear, selfAttention, setWasmAttention, transposeForGrad } from '../../src/model/ops.ts';

/** The kernel emits views of its memory; tests keep copies. */
const copies = (...arrays: Float32Array[]): Float32Array[] => arrays.map((a) => a.slice());

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function rand(n: number, seed: number): Float32Array {
  let x = seed;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    a[i] = (x / 2147483648) * 2 - 1;
  }
  return a;
}

/** Float64 attention straight from the definition: softmax(q k^T / sqrt(hd) + bias) v. */
function reference(s: KernelShape, q: Float32Array, k: Float32Array, v: Float32Array, bias: Float32Array, biasRows: number): Float64Array {
  const d = s.heads * s.headDim;
  const out = new Float64Array(s.batch * s.queries * d);
  for (let b = 0; b < s.batch; b++) {
    for (let h = 0; h < s.heads; h++) {
      for (let i = 0; i < s.queries; i++) {
        const sc: number[] = [];
        for (let j = 0; j < s.keys; j++) {
          let dot = 0;
          for (let c = 0; c < s.headDim; c++) dot += q[(b * s.queries + i) * d + h * s.headDim + c]! * k[(b * s.keys + j) * d + h * s.headDim + c]!;
          sc.push(dot / Math.sqrt(s.headDim) + bias[(i * biasRows + (biasRows > 1 ? b : 0)) * s.keys + j]!);
        }
        const m = Math.max(...sc);
        const e = sc.map((x) => Math.exp(x - m));
        const z = e.reduce((a, x) => a + x, 0);
        for (let c = 0; c < s.headDim; c++) {
          let acc = 0;
          for (let j = 0; j < s.keys; j++) acc += (e[j]! / z) * v[(b * s.keys + j) * d + h * s.headDim + c]!;
          out[(b * s.queries + i) * d + h * s.headDim + c] = acc;
        }
      }
    }
  }
  return out;
}

/** Causal bias with `past` cached keys; batch row 1 (when biasRows > 1) also masks key 0 and the last key (padding). */
function maskBias(s: KernelShape, biasRows: number): Float32Array {
  const past = s.keys - s.queries;
  const bias = new Float32Array(s.queries * biasRows * s.keys);
  for (let i = 0; i < s.queries; i++) {
    for (let r = 0; r < biasRows; r++) {
      for (let j = 0; j < s.keys; j++) {
        const pad = r === 1 && (j === 0 || j === s.keys - 1);
        bias[(i * biasRows + r) * s.keys + j] = j > past + i || pad ? -1e9 : j === 1 ? 0.25 : 0;
      }
    }
  }
  return bias;
}

// head width 16 takes the register paths, 8 the general ones; odd key counts leave partial vectors
const cases: Array<[string, KernelShape, number]> = [
  ['head width 16, one bias row', { batch: 2, heads: 2, queries: 7, keys: 7, headDim: 16 }, 1],
  ['head width 16, a bias row per sequence, 2 cached keys', { batch: 2, heads: 3, queries: 5, keys: 7, headDim: 16 }, 2],
  ['head width 8, a bias row per sequence', { batch: 2, heads: 2, queries: 6, keys: 9, headDim: 8 }, 2],
  ['two queries on 5 cached keys (the decoding path, no key transpose)', { batch: 2, heads: 2, queries: 2, keys: 7, headDim: 16 }, 2],
];

for (const [name, s, biasRows] of cases) {
  test(`kernel forward equals the definition (${name})`, (t) => {
    const d = s.heads * s.headDim;
    const q = rand(s.batch * s.queries * d, 1), k = rand(s.batch * s.keys * d, 2), v = rand(s.batch * s.keys * d, 3);
    const bias = maskBias(s, biasRows);
    const [out, stats] = kernelForward(s, q, k, v, bias, biasRows, copies) as [Float32Array, Float32Array];
    const want = reference(s, q, k, v, bias, biasRows);
    let err = 0;
    want.forEach((x, i) => { err = Math.max(err, Math.abs(x - out[i]!)); });
    t.true(err < 1e-6, `max error ${err}`);
    // a masked key's value does not leak: huge values there leave the outputs as they were
    // (the first key is padding in sequence 1 whenever there is a bias row per sequence)
    if (biasRows > 1) {
      const v2 = v.slice();
      for (let c = 0; c < d; c++) v2[(1 * s.keys + 0) * d + c] = 1e6;
      const [out2] = kernelForward(s, q, k, v2, bias, biasRows, copies) as [Float32Array];
      t.deepEqual(out2.subarray(s.queries * d), out.subarray(s.queries * d));
    }
    t.is(stats.length, s.batch * s.heads * s.queries * 2);
  });

  test(`kernel gradients equal central differences of the definition (${name})`, (t) => {
    const d = s.heads * s.headDim;
    const q = rand(s.batch * s.queries * d, 4), k = rand(s.batch * s.keys * d, 5), v = rand(s.batch * s.keys * d, 6);
    const dout = rand(s.batch * s.queries * d, 7);
    const bias = maskBias(s, biasRows);
    const [, stats] = kernelForward(s, q, k, v, bias, biasRows, copies) as [Float32Array, Float32Array];
    const grads = kernelBackward(s, q, k, v, bias, biasRows, stats, dout, copies) as [Float32Array, Float32Array, Float32Array];
    const loss = () => reference(s, q, k, v, bias, biasRows).reduce((a, x, i) => a + x * dout[i]!, 0);
    ([q, k, v] as const).forEach((x, which) => {
      let worst = 0;
      for (let i = 0; i < x.length; i += 7) {
        const keep = x[i]!;
        x[i] = keep + 1e-2;
        const hi = loss();
        const up = x[i]! - keep;
        x[i] = keep - 1e-2;
        const lo = loss();
        const down = keep - x[i]!;
        x[i] = keep;
        worst = Math.max(worst, Math.abs((hi - lo) / (up + down) - grads[which]![i]!));
      }
      t.true(worst < 2e-4, `${'qkv'[which]}: max error ${worst}`);
    });
  });
}

test('a row whose keys are all masked is the mean of the values (float32 softmax of equal scores, as the other paths give)', (t) => {
  const s = { batch: 1, heads: 1, queries: 2, keys: 3, headDim: 4 };
  const q = rand(8, 1), k = rand(12, 2), v = rand(12, 3);
  const bias = new Float32Array([-1e9, -1e9, -1e9, 0, 0, -1e9]);
  const [out] = kernelForward(s, q, k, v, bias, 1, copies) as [Float32Array];
  for (let c = 0; c < 4; c++) t.true(Math.abs(out[c]! - (v[c]! + v[4 + c]! + v[8 + c]!) / 3) < 1e-6);
  const want = reference(s, q, k, v, bias, 1);
  for (let c = 4; c < 8; c++) t.true(Math.abs(want[c]! - out[c]!) < 1e-6);
});

test('the kernel names what does not fit', (t) => {
  const s = { batch: 1, heads: 1, queries: 2, keys: 2, headDim: 6 };
  t.throws(() => kernelForward(s, new Float32Array(12), new Float32Array(12), new Float32Array(12), new Float32Array(4), 1, copies), { message: /head width 6/ });
  const s4 = { ...s, headDim: 4 };
  t.throws(() => kernelForward(s4, new Float32Array(8), new Float32Array(8), new Float32Array(8), new Float32Array(3), 1, copies), { message: /bias/ });
});

test.serial('on wasm, attention and selfAttention give the same values and gradients fused as through depthwise convolutions', async (t) => {
  const b = 3, h = 2, n = 6, d = 32;
  const mask = new Float32Array(n * b * n);
  for (let i = 0; i < n; i++) for (let r = 0; r < b; r++) for (let j = 0; j < n; j++) if (j > i || (r === 2 && j === 0)) mask[(i * b + r) * n + j] = -1e9;
  await tf.setBackend('wasm');
  try {
    const bias = tf.tensor4d(mask, [n, b, 1, n]);
    const shape = { batch: b, heads: h, queries: n, keys: n };
    const qkv = [0, 1, 2].map((i) => tf.tensor2d(rand(b * n * d, 10 + i), [b * n, d]));
    const r = tf.tensor2d(rand(b * n * d, 20), [b * n, d]);
    const loss = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(attention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, shape, bias), r));
    const w = [0, 1, 2].map((i) => tf.tensor2d(rand(d * d, 30 + i), [d, d]));
    const bb = [0, 1, 2].map((i) => tf.tensor1d(rand(d, 40 + i)));
    const x = tf.tensor2d(rand(b * n * d, 50), [b * n, d]);
    const selfLoss = (...a: tf.Tensor[]) => tf.sum(tf.mul(selfAttention(a[0] as tf.Tensor2D, { q: a[1] as tf.Tensor2D, k: a[2] as tf.Tensor2D, v: a[3] as tf.Tensor2D }, { q: a[4] as tf.Tensor1D, k: a[5] as tf.Tensor1D, v: a[6] as tf.Tensor1D }, shape, bias), r));
    const run = () => [...tf.grads(loss)(qkv), loss(qkv[0]!, qkv[1]!, qkv[2]!), ...tf.grads(selfLoss)([x, ...w, ...bb])].map((g) => g.dataSync().slice());
    const prev = setWasmAttention('conv');
    const conv = run();
    setWasmAttention('fused');
    const fused = run();
    setWasmAttention(prev);
    conv.forEach((c, i) => {
      let err = 0, scale = 0;
      c.forEach((y, j) => { err = Math.max(err, Math.abs(y - fused[i]![j]!)); scale = Math.max(scale, Math.abs(y)); });
      t.true(err <= 1e-5 * Math.max(1, scale), `output ${i}: max difference ${err} (scale ${scale})`);
    });
  } finally {
    await tf.setBackend('cpu');
  }
});

test('the transpose kernel transposes, and names shapes it does not take', (t) => {
  for (const [rows, cols] of [[4, 4], [8, 12], [36, 4], [4, 40]] as const) {
    const x = rand(rows * cols, rows + cols);
    const [y] = kernelTranspose(x, rows, cols, copies) as [Float32Array];
    let same = true;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (y[c * rows + r] !== x[r * cols + c]) same = false;
    t.true(same, `[${rows}, ${cols}]`);
  }
  t.throws(() => kernelTranspose(new Float32Array(24), 6, 4, copies), { message: /\[6, 4\]/ });
});

test.serial('on wasm, transposeForGrad and the linear layer\'s gradients (kernel transposes) equal the cpu ones', async (t) => {
  const cases: Array<[number, number, number]> = [[8, 12, 4], [8, 4, 12], [6, 3, 7]];
  const want: Float32Array[][] = [];
  const make = (n: number, din: number, dout: number) => [tf.tensor2d(rand(n * din, 60 + din), [n, din]), tf.tensor2d(rand(din * dout, 70 + dout), [din, dout]), tf.tensor1d(rand(dout, 80)), tf.tensor2d(rand(n * dout, 90), [n, dout])] as const;
  const grads = (n: number, din: number, dout: number) => {
    const [x, w, b, r] = make(n, din, dout);
    const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(linear(xx as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D), r)))([x, w, b]);
    return [...g, transposeForGrad(x)].map((v) => v.dataSync().slice() as Float32Array);
  };
  await tf.setBackend('cpu');
  for (const c of cases) want.push(grads(...c));
  await tf.setBackend('wasm');
  try {
    cases.forEach((c, i) => grads(...c).forEach((got, j) => {
      let err = 0;
      got.forEach((v, k) => { err = Math.max(err, Math.abs(v - want[i]![j]![k]!)); });
      t.true(err < 1e-5, `case ${c.join('x')}, output ${j}: ${err}`);
    }));
  } finally {
    await tf.setBackend('cpu');
  }
});

test.serial('on wasm, layerNorm (the kernel where the width is a multiple of 4) equals its composition from moments on cpu, values and gradients', async (t) => {
  const run = (width: number) => {
    const rows = 5;
    const x = tf.tensor2d(Array.from(rand(rows * width, width), (v, i) => v * (1 + (i % 3)) + (i % 7) * 0.1), [rows, width]);
    const g = tf.tensor1d(rand(width, 2 * width)), b = tf.tensor1d(rand(width, 3 * width)), r = tf.tensor2d(rand(rows * width, 4 * width), [rows, width]);
    const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(layerNorm(xx as tf.Tensor2D, gg as tf.Tensor1D, bb as tf.Tensor1D, 1e-5), r));
    return [layerNorm(x, g, b, 1e-5), ...tf.grads(f)([x, g, b])].map((v) => v.dataSync().slice() as Float32Array);
  };
  const widths = [8, 12, 6];
  await tf.setBackend('cpu');
  const want = widths.map(run);
  await tf.setBackend('wasm');
  try {
    widths.forEach((w, i) => run(w).forEach((got, j) => {
      let err = 0;
      got.forEach((v, k) => { err = Math.max(err, Math.abs(v - want[i]![j]![k]!)); });
      t.true(err < 2e-5, `width ${w}, output ${j}: ${err}`);
    }));
  } finally {
    await tf.setBackend('cpu');
  }
});

test('the layer-norm kernel names what does not fit', (t) => {
  t.throws(() => kernelLayerNorm(new Float32Array(12), new Float32Array(6), new Float32Array(6), 6, 1e-5, copies), { message: /width 6/ });
  t.throws(() => kernelLayerNorm(new Float32Array(12), new Float32Array(4), new Float32Array(3), 4, 1e-5, copies), { message: /3 biases/ });
});

test('FACTFLOW_WASM_ATTENTION=conv starts a process on the convolutions; without it, the fused kernel', (t) => {
  const probe = "import { setWasmAttention } from './src/model/ops.ts'; process.stdout.write(setWasmAttention('fused'));";
  const run = (env: Record<string, string>) => execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
  t.is(run({ FACTFLOW_WASM_ATTENTION: 'conv' }), 'conv');
  t.is(run({ FACTFLOW_WASM_ATTENTION: '' }), 'fused');
});

test('kernels.wasm is what its AssemblyScript source compiles to (npm run build:wasm)', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'factflow-asc-'));
  try {
    const out = path.join(dir, 'kernels.wasm');
    const script = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts['build:wasm'] as string;
    const args = script.split(' ').slice(1);
    args[args.indexOf('-o') + 1] = out;
    execFileSync(path.join(root, 'node_modules/.bin/asc'), args, { cwd: root });
    t.deepEqual(readFileSync(out), readFileSync(KERNELS_WASM));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
