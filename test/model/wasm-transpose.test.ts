/** The wasm backend's replacement Transpose: exact against an index-by-index reference, any rank and perm. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/model/backend.ts';
import { simplifyPermutation, takesTiledPath, transposeInto } from '../../src/model/wasm-transpose.ts';
import { Rng } from '../../src/stream/random.ts';

/** out[o] = in[perm-mapped index], one element at a time. */
function reference(src: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): number[] {
  const outShape = perm.map((a) => shape[a]!);
  const size = shape.reduce((a, b) => a * b, 1);
  const inStride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out: number[] = [];
  for (let o = 0; o < size; o++) {
    let rest = o, q = 0;
    for (let i = outShape.length - 1; i >= 0; i--) {
      const c = rest % outShape[i]!;
      rest = Math.floor(rest / outShape[i]!);
      q += c * inStride[perm[i]!]!;
    }
    out.push(src[q]!);
  }
  return out;
}

/** Index of the first element where dst differs from the reference, -1 if none (t.deepEqual is slow on 500k numbers). */
function firstMismatch(dst: ArrayLike<number>, src: ArrayLike<number>, shape: readonly number[], perm: readonly number[]): number {
  const want = reference(src, shape, perm);
  if (want.length !== dst.length) return 0;
  for (let i = 0; i < want.length; i++) if (dst[i] !== want[i]) return i;
  return -1;
}

function randomPerm(rng: Rng, r: number): number[] {
  const p = Array.from({ length: r }, (_, i) => i);
  for (let i = r - 1; i > 0; i--) { const j = rng.int(i + 1); [p[i], p[j]] = [p[j]!, p[i]!]; }
  return p;
}

const MODEL_CASES: [number[], number[]][] = [
  [[4096, 128], [1, 0]], // weight gradient x^T
  [[128, 256, 128], [0, 2, 1]],
  [[32, 128, 8, 16], [0, 2, 1, 3]], // heads out of the width (rows of 16 stay whole)
  [[32, 128, 8, 16], [1, 3, 0, 2]], // depthwise attention layouts
  [[32, 128, 8, 16], [3, 0, 2, 1]],
  [[16, 32, 8, 128], [1, 3, 2, 0]],
  [[1, 5, 1, 3], [3, 2, 1, 0]], // size-1 axes
  [[3, 1], [1, 0]],
  [[70, 33], [1, 0]], // tiles that do not divide
  [[2, 3, 4, 5, 6], [4, 0, 3, 1, 2]],
  [[0, 4], [1, 0]], // empty
];

test('transposeInto equals the reference on the model layouts and edge shapes', (t) => {
  const rng = new Rng(3);
  for (const [shape, perm] of MODEL_CASES) {
    const size = shape.reduce((a, b) => a * b, 1);
    const src = Float32Array.from({ length: size }, () => rng.normal());
    const dst = new Float32Array(size);
    transposeInto(src, dst, shape, perm);
    t.is(firstMismatch(dst, src, shape, perm), -1, `${JSON.stringify(shape)} by ${JSON.stringify(perm)}`);
  }
});

test('transposeInto equals the reference on 300 random shapes and permutations, float32 and int32', (t) => {
  const rng = new Rng(11);
  for (let n = 0; n < 300; n++) {
    const r = 1 + rng.int(5);
    const shape = Array.from({ length: r }, () => (rng.int(4) === 0 ? 1 : 1 + rng.int(r <= 2 ? 80 : 9)));
    const perm = randomPerm(rng, r);
    const size = shape.reduce((a, b) => a * b, 1);
    const ints = n % 2 === 1;
    const src = ints ? Int32Array.from({ length: size }, () => rng.int(1000)) : Float32Array.from({ length: size }, () => rng.normal());
    const dst = ints ? new Int32Array(size) : new Float32Array(size);
    transposeInto(src, dst, shape, perm);
    t.deepEqual(Array.from(dst), reference(src, shape, perm), `${JSON.stringify(shape)} by ${JSON.stringify(perm)}`);
  }
});

test('simplifyPermutation drops size-1 axes and merges axes that stay together', (t) => {
  t.deepEqual(simplifyPermutation([2, 3, 4], [0, 1, 2]), { shape: [24], perm: [0] });
  t.deepEqual(simplifyPermutation([4096, 128], [1, 0]), { shape: [4096, 128], perm: [1, 0] });
  t.deepEqual(simplifyPermutation([2, 3, 4, 5], [2, 3, 0, 1]), { shape: [6, 20], perm: [1, 0] });
  t.deepEqual(simplifyPermutation([1, 5, 1, 3], [3, 2, 1, 0]), { shape: [5, 3], perm: [1, 0] });
  t.deepEqual(simplifyPermutation([32, 128, 8, 16], [0, 2, 1, 3]), { shape: [32, 128, 8, 16], perm: [0, 2, 1, 3] });
});

test('on the wasm backend tf.transpose runs this kernel and gives tfjs-cpu results, gradients included', async (t) => {
  await selectBackend('wasm');
  t.is(tf.getBackend(), 'wasm');
  const kernel = tf.getKernel('Transpose', 'wasm');
  t.is(kernel?.kernelFunc.name, 'transposeKernel');
  const rng = new Rng(5);
  const shape = [6, 7, 3, 5];
  const values = Float32Array.from({ length: 6 * 7 * 3 * 5 }, () => rng.normal());
  const perm = [2, 0, 3, 1];
  const weights = Float32Array.from({ length: values.length }, () => rng.normal());
  const run = () => {
    const x = tf.tensor(values, shape);
    const y = tf.transpose(x, perm);
    const w = tf.tensor(weights, y.shape);
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.transpose(a, perm), w)))(x);
    return { y: Array.from(y.dataSync()), g: Array.from(g.dataSync()), shape: y.shape };
  };
  const onWasm = run();
  await tf.setBackend('cpu');
  const onCpu = run();
  t.deepEqual(onWasm, onCpu);
  t.deepEqual(onWasm.y, reference(values, shape, perm));
  // a 2-D transpose takes the tiled loop, the 4-D one above the built-in kernel
  await tf.setBackend('wasm');
  t.is(tf.getBackend(), 'wasm');
  t.true(takesTiledPath([70, 33], [1, 0]));
  t.true(takesTiledPath([128, 256, 128], [0, 2, 1]));
  t.false(takesTiledPath(shape, perm));
  const m = Float32Array.from({ length: 70 * 33 }, () => rng.normal());
  t.deepEqual(Array.from(tf.transpose(tf.tensor2d(m, [70, 33])).dataSync()), reference(m, [70, 33], [1, 0]));
  // int32 and bool tensors take the same kernel
  const ints = tf.transpose(tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], 'int32'));
  t.deepEqual(Array.from(ints.dataSync()), [1, 4, 2, 5, 3, 6]);
  const bools = tf.transpose(tf.tensor2d([[true, false, false], [true, true, false]], [2, 3], 'bool'));
  t.deepEqual(Array.from(bools.dataSync()), [1, 1, 0, 1, 0, 0]);
});
