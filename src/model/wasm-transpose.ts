/**
 * A faster Transpose for the wasm backend, written in JavaScript on the wasm heap.
 *
 * Why: tfjs-wasm's C++ Transpose walks the input in order and scatters writes, ~9 ns per element
 * for [4096, 128] -> [128, 4096] (the weight gradient's x^T, the attention layouts), where a
 * cache-blocked loop that writes the output in order takes ~2 ns (measured on 2 cores). Training
 * spends ~15% of a step in Transpose, so this kernel replaces the built-in one when the wasm
 * backend is selected. The loop reads and writes the tensors in place through views of the heap:
 * nothing is copied in or out.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Flat = Float32Array | Int32Array | Uint8Array;

/** Tile edge of the blocked 2-D loop: 32 x 32 float32 reads stay in L1 (measured: 16-64 alike). */
const BLOCK = 32;

/**
 * The same permutation on fewer axes: size-1 axes dropped and input axes that stay adjacent and in
 * order in the output merged, so [32, 128, 8, 16] by [0, 2, 1, 3] becomes [32, 128, 8, 16] and
 * [4096, 128] by [1, 0] stays 2-D, but [2, 3, 4] by [0, 1, 2] becomes one axis.
 */
export function simplifyPermutation(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const kept = perm.filter((a) => shape[a] !== 1);
  // runs of output positions whose input axes are consecutive, given by their first input axis
  const runs: { first: number; size: number }[] = [];
  for (let i = 0; i < kept.length; i++) {
    const a = kept[i]!;
    const last = runs[runs.length - 1];
    if (last && i > 0 && a === nextKeptAxis(shape, kept[i - 1]!)) last.size *= shape[a]!;
    else runs.push({ first: a, size: shape[a]! });
  }
  const byInput = [...runs].sort((x, y) => x.first - y.first);
  return { shape: byInput.map((r) => r.size), perm: runs.map((r) => byInput.indexOf(r)) };
}

/** The next input axis after `a` that is not of size 1 (-1 if none). */
function nextKeptAxis(shape: readonly number[], a: number): number {
  for (let b = a + 1; b < shape.length; b++) if (shape[b] !== 1) return b;
  return -1;
}

/** Row-major strides of a shape. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/**
 * dst = transpose(src, perm) for a row-major src of `shape`; src and dst must not overlap.
 * The output is written in order; where the input's last axis moves, the two axes are walked in
 * tiles so that the strided reads stay in cache.
 */
export function transposeInto(src: Flat, dst: Flat, shape: readonly number[], perm: readonly number[]): void {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size === 0) return;
  const { shape: s, perm: p } = simplifyPermutation(shape, perm);
  const r = s.length;
  if (r <= 1) { dst.set(src.subarray(0, size)); return; }
  const inStride = stridesOf(s);
  const outShape = p.map((a) => s[a]!);
  const outStride = stridesOf(outShape);
  const srcStride = p.map((a) => inStride[a]!); // the input step for one step along each output axis
  const k = p.indexOf(r - 1); // the output axis that walks the input contiguously
  const lastStays = k === r - 1; // then whole rows are copied; otherwise axes k and r - 1 are tiled
  const rows = outShape[k]!, cols = outShape[r - 1]!;
  const dRow = outStride[k]!, sCol = srcStride[r - 1]!;
  const outer: number[] = [];
  for (let i = 0; i < r - 1; i++) if (i !== k) outer.push(i);
  const idx = new Array<number>(outer.length).fill(0);
  let sBase = 0, dBase = 0;
  for (;;) {
    if (lastStays) {
      if (cols >= 64) dst.set(src.subarray(sBase, sBase + cols), dBase);
      else for (let j = 0; j < cols; j++) dst[dBase + j] = src[sBase + j]!;
    } else {
      for (let i0 = 0; i0 < rows; i0 += BLOCK) {
        const i1 = Math.min(i0 + BLOCK, rows);
        for (let j0 = 0; j0 < cols; j0 += BLOCK) {
          const j1 = Math.min(j0 + BLOCK, cols);
          for (let i = i0; i < i1; i++) {
            const d = dBase + i * dRow;
            let q = sBase + i + j0 * sCol;
            for (let j = j0; j < j1; j++, q += sCol) dst[d + j] = src[q]!;
          }
        }
      }
    }
    // odometer over the other output axes, last fastest
    let a = outer.length - 1;
    for (; a >= 0; a--) {
      const ax = outer[a]!;
      sBase += srcStride[ax]!; dBase += outStride[ax]!;
      if (++idx[a]! < outShape[ax]!) break;
      sBase -= srcStride[ax]! * outShape[ax]!; dBase -= outStride[ax]! * outShape[ax]!;
      idx[a] = 0;
    }
    if (a < 0) return;
  }
}

interface TransposeArgs {
  inputs: { x: tf.TensorInfo };
  backend: BackendWasm;
  attrs: { perm: number[] };
}

/** The built-in kernel, kept for the layouts where it is the faster one. */
let builtIn: tf.KernelConfig | undefined;

/**
 * Plain 2-D transposes (and batches of them) go to the tiled loop: there the built-in kernel is
 * 2-4x slower (measured on [4096, 128] and [128, 256, 128] by [0, 2, 1]). The built-in one keeps
 * the 4-D attention layouts, where its runs of 16 floats make it 2x faster than this loop.
 */
export function takesTiledPath(shape: readonly number[], perm: readonly number[]): boolean {
  const { shape: s, perm: p } = simplifyPermutation(shape, perm);
  if (s.length === 2) return true;
  return s.length === 3 && p[0] === 0 && p[1] === 2 && s[1]! >= BLOCK && s[2]! >= BLOCK;
}

function transposeKernel(args: TransposeArgs): tf.TensorInfo {
  const { inputs: { x }, backend, attrs: { perm } } = args;
  if (builtIn && !takesTiledPath(x.shape, perm)) return builtIn.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  const out = backend.makeOutput(perm.map((a) => x.shape[a]!), x.dtype);
  // views taken after makeOutput: allocating may grow (and so detach) the heap
  transposeInto(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), x.shape, perm);
  return out;
}

/**
 * Registers transposeKernel as the wasm backend's Transpose, the built-in one behind it (idempotent).
 * Its setup function is kept, so a wasm backend made again still binds the built-in kernel.
 */
export function installWasmTranspose(): void {
  const current = tf.getKernel('Transpose', 'wasm');
  if (current?.kernelFunc === (transposeKernel as unknown)) return;
  builtIn = current;
  if (current) tf.unregisterKernel('Transpose', 'wasm');
  tf.registerKernel({ kernelName: 'Transpose', backendName: 'wasm', kernelFunc: transposeKernel as unknown as tf.KernelFunc, setupFunc: current?.setupFunc });
}
