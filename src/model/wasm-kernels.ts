/**
 * The wasm backend's own kernels (src/model/wasm/kernels.as.ts, compiled to kernels.wasm with
 * 128-bit SIMD): fused attention, a 2-D transpose and layer normalisation. One WebAssembly
 * instance per thread, its memory laid out per call.
 *
 * Why its own module and not a tfjs kernel: tfjs-wasm's heap is private to its backend, so the
 * inputs are copied in and the results out (a few MB per layer, about a millisecond) around a
 * kernel that replaces two depthwise convolutions, a softmax and six transposes per direction.
 * Each array crosses once: inputs may be views of another heap, results are emitted as views.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Sizes of one attention call: q [batch * queries, heads * headDim], k and v [batch * keys, ...]. */
export interface KernelShape {
  batch: number;
  heads: number;
  queries: number;
  keys: number;
  headDim: number;
}

// the few WebAssembly names used here (the project's TypeScript libs do not declare them)
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: object };
};

interface Exports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  heapBase(): number;
  forward(q: number, k: number, v: number, bias: number, biasRows: number, out: number, stats: number, scratch: number,
    b: number, tq: number, tk: number, h: number, hd: number, scale: number): void;
  backward(q: number, k: number, v: number, bias: number, biasRows: number, stats: number, dout: number, dq: number, dk: number, dv: number, scratch: number,
    b: number, tq: number, tk: number, h: number, hd: number, scale: number): void;
  transpose(src: number, rows: number, cols: number, dst: number): void;
  layerNormForward(x: number, g: number, b: number, y: number, rows: number, width: number, eps: number): void;
  layerNormBackward(x: number, g: number, dy: number, dx: number, dg: number, db: number, rows: number, width: number, eps: number): void;
}

export const KERNELS_WASM = fileURLToPath(new URL('./wasm/kernels.wasm', import.meta.url));

let instance: Exports | null = null;

function kernel(): Exports {
  // synchronous compile: Node allows it at any size, and the module is ~6 KB
  instance ??= new WebAssembly.Instance(new WebAssembly.Module(readFileSync(KERNELS_WASM))).exports as unknown as Exports;
  return instance;
}

/** Whether the kernel serves this head width (its loops take four floats at a time). */
export function kernelSupports(headDim: number): boolean {
  return headDim % 4 === 0;
}

/** Hands out 16-byte aligned float arrays from the heap base, growing the memory to fit. */
function layout(k: Exports, floats: readonly number[]): number[] {
  // arithmetic, not bit masks: offsets past 2 GB stay right
  const align = (bytes: number) => Math.ceil(bytes / 16) * 16;
  let at = align(k.heapBase());
  const ptrs: number[] = [];
  for (const n of floats) {
    ptrs.push(at);
    at += align(n * 4);
  }
  const need = at - k.memory.buffer.byteLength;
  if (need > 0) k.memory.grow(Math.ceil(need / 65536));
  return ptrs;
}

function put(k: Exports, ptr: number, data: Float32Array): void {
  new Float32Array(k.memory.buffer, ptr, data.length).set(data);
}

/** A view of the kernel's memory: valid only until the next kernel call. */
function view(k: Exports, ptr: number, n: number): Float32Array {
  return new Float32Array(k.memory.buffer, ptr, n);
}

function scratchFloats(s: KernelShape): number {
  const keys4 = (s.keys + 3) & ~3;
  // key transposes, two score rows, and one i32 limit per bias row (at most queries * batch)
  return 2 * s.headDim * keys4 + 2 * keys4 + s.queries * s.batch;
}

function check(s: KernelShape, q: Float32Array, k: Float32Array, v: Float32Array, bias: Float32Array, biasRows: number): void {
  const d = s.heads * s.headDim;
  if (!kernelSupports(s.headDim)) throw new RangeError(`attention kernel: head width ${s.headDim} is not a multiple of 4`);
  if (q.length !== s.batch * s.queries * d || k.length !== s.batch * s.keys * d || v.length !== k.length) throw new RangeError('attention kernel: q, k, v sizes do not match the shape');
  if ((biasRows !== 1 && biasRows !== s.batch) || bias.length !== s.queries * biasRows * s.keys) throw new RangeError('attention kernel: bias must be [queries, 1 or batch, keys]');
}

/**
 * The results, handed to a callback as views of the kernel's memory (valid during the call
 * only): the caller copies them once, straight to where they go (a tensor, or `.slice()`).
 */
export type Emit<T> = (...arrays: Float32Array[]) => T;

/**
 * softmax(q k^T / sqrt(headDim) + bias) v per sequence and head; bias [queries, biasRows, keys].
 * Emits out [batch * queries, heads * headDim] and each softmax row's max and inverse sum
 * [batch, heads, queries, 2] (what kernelBackward needs besides the inputs).
 */
export function kernelForward<T>(s: KernelShape, q: Float32Array, k: Float32Array, v: Float32Array, bias: Float32Array, biasRows: number, emit: Emit<T>): T {
  check(s, q, k, v, bias, biasRows);
  const w = kernel();
  const sn = s.batch * s.heads * s.queries * 2;
  const [qp, kp, vp, bp, op, stp, sp] = layout(w, [q.length, k.length, v.length, bias.length, q.length, sn, scratchFloats(s)]) as [number, number, number, number, number, number, number];
  put(w, qp, q);
  put(w, kp, k);
  put(w, vp, v);
  put(w, bp, bias);
  w.forward(qp, kp, vp, bp, biasRows, op, stp, sp, s.batch, s.queries, s.keys, s.heads, s.headDim, 1 / Math.sqrt(s.headDim));
  return emit(view(w, op, q.length), view(w, stp, sn));
}

/** Gradients of kernelForward's output with respect to q, k and v, given dOut and forward's stats: emits dq, dk, dv. */
export function kernelBackward<T>(s: KernelShape, q: Float32Array, k: Float32Array, v: Float32Array, bias: Float32Array, biasRows: number, stats: Float32Array, dout: Float32Array, emit: Emit<T>): T {
  check(s, q, k, v, bias, biasRows);
  if (stats.length !== s.batch * s.heads * s.queries * 2 || dout.length !== q.length) throw new RangeError('attention kernel: stats or dout sizes do not match the shape');
  const w = kernel();
  const [qp, kp, vp, bp, pp, dop, dqp, dkp, dvp, sp] = layout(w, [q.length, k.length, v.length, bias.length, stats.length, dout.length, q.length, k.length, k.length, scratchFloats(s)]) as
    [number, number, number, number, number, number, number, number, number, number];
  put(w, qp, q);
  put(w, kp, k);
  put(w, vp, v);
  put(w, bp, bias);
  put(w, pp, stats);
  put(w, dop, dout);
  view(w, dkp, k.length).fill(0);
  view(w, dvp, k.length).fill(0);
  w.backward(qp, kp, vp, bp, biasRows, pp, dop, dqp, dkp, dvp, sp, s.batch, s.queries, s.keys, s.heads, s.headDim, 1 / Math.sqrt(s.headDim));
  return emit(view(w, dqp, q.length), view(w, dkp, k.length), view(w, dvp, k.length));
}

/** Whether kernelTranspose serves a [rows, cols] matrix (its blocks are 4 x 4). */
export function transposeSupports(rows: number, cols: number): boolean {
  return rows % 4 === 0 && cols % 4 === 0 && rows > 0 && cols > 0;
}

/** Emits x [rows, cols] transposed, [cols, rows]. */
export function kernelTranspose<T>(x: Float32Array, rows: number, cols: number, emit: Emit<T>): T {
  if (!transposeSupports(rows, cols) || x.length !== rows * cols) throw new RangeError(`transpose kernel: [${rows}, ${cols}] with ${x.length} values (both sides must be multiples of 4)`);
  const w = kernel();
  const [src, dst] = layout(w, [x.length, x.length]) as [number, number];
  put(w, src, x);
  w.transpose(src, rows, cols, dst);
  return emit(view(w, dst, x.length));
}

/** Whether the layer-norm kernels serve rows of this width (their loops take four floats at a time). */
export function layerNormSupports(width: number): boolean {
  return width > 0 && width % 4 === 0;
}

function checkLayerNorm(x: Float32Array, g: Float32Array, width: number, what: string): number {
  if (!layerNormSupports(width) || g.length !== width || x.length % width !== 0) {
    throw new RangeError(`layer-norm kernel: ${what} of ${x.length} values with width ${width} and ${g.length} gains (width must be a multiple of 4)`);
  }
  return x.length / width;
}

/** Emits y = layerNorm(x) * g + b for x [rows, width]. */
export function kernelLayerNorm<T>(x: Float32Array, g: Float32Array, b: Float32Array, width: number, eps: number, emit: Emit<T>): T {
  const rows = checkLayerNorm(x, g, width, 'x');
  if (b.length !== width) throw new RangeError(`layer-norm kernel: ${b.length} biases for width ${width}`);
  const w = kernel();
  const [xp, gp, bp, yp] = layout(w, [x.length, width, width, x.length]) as [number, number, number, number];
  put(w, xp, x);
  put(w, gp, g);
  put(w, bp, b);
  w.layerNormForward(xp, gp, bp, yp, rows, width, eps);
  return emit(view(w, yp, x.length));
}

/** Emits the gradients dx [rows, width], dg and db [width] of kernelLayerNorm, given dy. */
export function kernelLayerNormBackward<T>(x: Float32Array, g: Float32Array, dy: Float32Array, width: number, eps: number, emit: Emit<T>): T {
  const rows = checkLayerNorm(x, g, width, 'x');
  if (dy.length !== x.length) throw new RangeError(`layer-norm kernel: dy has ${dy.length} values, x ${x.length}`);
  const w = kernel();
  const [xp, gp, dyp, dxp, dgp, dbp] = layout(w, [x.length, width, x.length, x.length, width, width]) as [number, number, number, number, number, number];
  put(w, xp, x);
  put(w, gp, g);
  put(w, dyp, dy);
  view(w, dgp, width).fill(0);
  view(w, dbp, width).fill(0);
  w.layerNormBackward(xp, gp, dyp, dxp, dgp, dbp, rows, width, eps);
  return emit(view(w, dxp, x.length), view(w, dgp, width), view(w, dbp, width));
}
