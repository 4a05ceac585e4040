/**
 * Tensor kernels the model is built from, chosen for speed on the wasm backend (the CPU default).
 *
 * Why custom gradients: on wasm, `matMul` with `transposeA`/`transposeB` runs 5-6x slower than an
 * explicit `transpose` followed by a plain `matMul`, and tfjs's built-in matMul gradient uses those
 * flags; `gather` has no gradient there at all (it needs UnsortedSegmentSum). Every op below has a
 * gradient written with explicit transposes (or a scatter), and test/model/ops.test.ts checks values
 * and gradients against the built-ins on the cpu backend. Keep kernel choices here, not in the model.
 */
import * as tf from '@tensorflow/tfjs';
import { kernelBackward, kernelForward, kernelLayerNorm, kernelLayerNormBackward, kernelSupports, kernelTranspose, layerNormSupports, transposeSupports } from './wasm-kernels.ts';

type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

/**
 * tf.customGrad with positional tensor arguments: `f(inputs, save)` returns the value and a
 * gradient function giving one gradient per input.
 */
function customOp(f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFunc }): (...inputs: tf.Tensor[]) => tf.Tensor {
  const wrapped = (...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return f(args.slice(0, -1) as tf.Tensor[], save);
  };
  return tf.customGrad(wrapped as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: tf.Tensor[]) => tf.Tensor;
}

const SQRT_HALF = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** Swaps the last two axes with a real transpose (a copy), never a transpose flag. */
export function transposeLast2<T extends tf.Tensor>(x: T): T {
  const r = x.rank;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm) as T;
}

/**
 * 2-D transpose for gradient functions (it records no gradient of its own on wasm). On wasm it
 * runs the SIMD kernel (wasm-kernels.ts) where both sides are multiples of 4: tfjs-wasm's own
 * Transpose spends ~5 ms on the weight gradients' [4096, 128], the kernel well under 1 ms.
 */
export function transposeForGrad(x: tf.Tensor2D): tf.Tensor2D {
  const [rows, cols] = x.shape;
  if (tf.getBackend() === 'wasm' && x.dtype === 'float32' && transposeSupports(rows, cols)) {
    return kernelTranspose(wasmValues(x), rows, cols, (y) => tf.tensor2d(y, [cols, rows]));
  }
  return tf.transpose(x);
}

/**
 * Sum over rows of x [n, d] -> [d]. On wasm, as x^T @ ones[n, 1]: XNNPACK packs a product's right
 * operand on every call (x is a fresh gradient each time; packing 4096 x 128 costs ~12 ms), so the
 * right operand must be the column of ones; the transposed left operand takes the plain kernel,
 * cheap for one output column (4096 x 128: 1.5 ms; ones[1, n] @ x: 16 ms; tf.sum(x, 0): 5 ms).
 */
export function columnSum(x: tf.Tensor2D): tf.Tensor1D {
  const [n, d] = x.shape;
  if (tf.getBackend() === 'wasm') return tf.reshape(tf.matMul(x, tf.ones([n, 1]), true, false), [d]);
  return tf.reshape(tf.matMul(tf.ones([1, n]), x), [d]);
}

/**
 * Weight gradient x^T @ g for x [n, in], g [n, out]. wasm has no fast transposed product, so one
 * operand is transposed explicitly, and its Transpose (~10-20 ns per element) costs more than the
 * XNNPACK packing of the other: transpose the narrower one. Measured on wasm, n 4096, fresh
 * operands each call: in 128, out 512: x^T @ g 36 ms, (g^T @ x)^T 86 ms; in 512, out 128: 46 ms
 * against 102 ms the other way (bench/weight-grad.ts).
 */
export function weightGrad(x: tf.Tensor2D, g: tf.Tensor2D): tf.Tensor2D {
  if (x.shape[1] > g.shape[1] && tf.getBackend() === 'wasm') return transposeForGrad(tf.matMul(transposeForGrad(g), x));
  return tf.matMul(transposeForGrad(x), g);
}

/**
 * Sum of many same-shaped tensors in groups of 8: one AddN over every gradient needs a storage
 * buffer per input, and WebGPU allows 16 per shader (Dawn on an H200 rejected 69; the sum came back wrong).
 */
export function sumMany<T extends tf.Tensor>(xs: readonly T[]): T {
  let level: tf.Tensor[] = [...xs];
  while (level.length > 1) {
    const next: tf.Tensor[] = [];
    for (let i = 0; i < level.length; i += 8) {
      const part = level.slice(i, i + 8);
      next.push(part.length === 1 ? part[0]! : tf.addN(part));
    }
    level = next;
  }
  return level[0] as T;
}

/** [dy @ w^T, x^T @ dy], the input and weight gradients of x @ w (see matMul for the choice of form). */
function productGrads(dy: tf.Tensor2D, x: tf.Tensor2D, w: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
  if (tf.getBackend() !== 'wasm') return [tf.matMul(dy, w, false, true), tf.matMul(x, dy, true, false)];
  return [tf.matMul(dy, transposeForGrad(w)), weightGrad(x, dy)];
}

/**
 * `a @ b` for 2-D tensors; gradients `dy @ b^T` and `a^T @ dy`, with explicit transposes on wasm
 * (its transposed products are 5-6x slower) and transpose flags elsewhere (a GPU reads them free).
 */
export function matMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const op = customOp(([x, w], save) => {
    save([x, w]);
    return {
      value: tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
        return productGrads(dy as tf.Tensor2D, xs, ws);
      },
    };
  });
  return op(a, b) as tf.Tensor2D;
}

/**
 * Batched product on wasm through a depthwise convolution: wasm's BatchMatMul runs XNNPACK only
 * for a single batch without transpose flags and otherwise falls back to a scalar loop (~1 GFLOP/s),
 * while its depthwise convolution is an XNNPACK grouped GEMM (~4x faster here). With the batch as
 * channels and the shared axis as the kernel width, out[g, i, j] = sum_k a[g, i, k] * b[g, k, j] is
 * depthwiseConv2d(x[1, m, k, g], f[1, k, g, n]) read as [m, g, n].
 */
function groupedMatMulByConv(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [g, m, k] = a.shape;
  const n = b.shape[2];
  const x = tf.reshape(tf.transpose(a, [1, 2, 0]), [1, m, k, g]) as tf.Tensor4D;
  const f = tf.reshape(tf.transpose(b, [1, 0, 2]), [1, k, g, n]) as tf.Tensor4D;
  const y = tf.depthwiseConv2d(x, f, 1, 'valid');
  return tf.transpose(tf.reshape(y, [m, g, n]), [1, 0, 2]) as tf.Tensor3D;
}

/** Plain batched product, choosing the fastest formulation for the active backend. */
function rawBatchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  if (a.shape[0] > 1 && tf.getBackend() === 'wasm') return groupedMatMulByConv(a, b);
  return tf.matMul(a, b);
}

/** Batched `a @ b` over the leading axis of 3-D tensors ([n, i, k] @ [n, k, j]). */
export function batchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const op = customOp(([x, w], save) => {
    save([x, w]);
    return {
      value: rawBatchMatMul(x as tf.Tensor3D, w as tf.Tensor3D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor3D, tf.Tensor3D];
        if (tf.getBackend() !== 'wasm') return [tf.matMul(dy as tf.Tensor3D, ws, false, true), tf.matMul(xs, dy as tf.Tensor3D, true, false)];
        return [
          rawBatchMatMul(dy as tf.Tensor3D, transposeLast2(ws)),
          rawBatchMatMul(transposeLast2(xs), dy as tf.Tensor3D),
        ];
      },
    };
  });
  return op(a, b) as tf.Tensor3D;
}

export type Activation = 'linear' | 'relu';

/**
 * `x @ w + bias`, optionally followed by relu, as one fused kernel forward; the backward pass
 * as matMul's. x [n, in], w [in, out], bias [out].
 */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, bias?: tf.Tensor1D, activation: Activation = 'linear'): tf.Tensor2D {
  if (bias === undefined) {
    const y = matMul(x, w);
    return activation === 'relu' ? tf.relu(y) : y;
  }
  const op = customOp(([xi, wi, bi], save) => {
    const y = tf.fused.matMul({ a: xi as tf.Tensor2D, b: wi as tf.Tensor2D, bias: bi, activation });
    save(activation === 'relu' ? [xi, wi, y] : [xi, wi]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D | undefined];
        const g = (ys === undefined ? dy : tf.mul(dy, tf.step(ys))) as tf.Tensor2D;
        return [...productGrads(g, xs, ws), columnSum(g)];
      },
    };
  });
  return op(x, w, bias) as tf.Tensor2D;
}

/**
 * x * cos + (x @ swap) * sin for x, cos, sin [n, width] and a signed permutation swap [width,
 * width] (rotary positions; see rotary.ts). Gradient dx = dy * cos + (dy * sin) @ swap^T, and
 * swap^T = -swap. cos, sin and swap are constants (no gradient).
 */
export function rotaryMix(x: tf.Tensor2D, cos: tf.Tensor2D, sin: tf.Tensor2D, swap: tf.Tensor2D): tf.Tensor2D {
  const op = customOp(([xi], save) => {
    // saved, not closed over: the caller may dispose the tables before backprop
    save([cos, sin, swap]);
    return {
      value: tf.add(tf.mul(xi!, cos), tf.mul(tf.matMul(xi as tf.Tensor2D, swap), sin)),
      gradFunc: (dy, saved) => {
        const [c, s, w] = saved as tf.Tensor2D[];
        return tf.sub(tf.mul(dy, c!), tf.matMul(tf.mul(dy, s!) as tf.Tensor2D, w!));
      },
    };
  });
  return op(x) as tf.Tensor2D;
}

/**
 * Rows of `table` [vocab, dim] picked by int32 `ids` [n]. Forward is a gather; the gradient is
 * a scatter-add of `dy` into the rows (ScatterNd sums duplicate indices), since wasm has no
 * gradient for gather and a one-hot matmul costs vocab x more.
 */
export function embedding(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const [vocab, dim] = table.shape;
  // gatherND, not gather: wasm's GatherV2 is ~8x slower for row lookups
  const op = customOp(([t], save) => {
    const idx = tf.reshape(ids, [-1, 1]);
    // saved (kept) rather than closed over: the caller's ids may be disposed before backprop
    save([idx]);
    return {
      value: tf.gatherND(t!, idx),
      gradFunc: (dy, saved) => tf.scatterND(saved[0]!, dy, [vocab, dim]),
    };
  });
  return op(table) as tf.Tensor2D;
}

/**
 * Layer normalisation over the last axis of x [n, d] with gain/bias [d]. One custom gradient
 * instead of the ~15 small ops autodiff would record.
 */
export function layerNorm(x: tf.Tensor2D, gain: tf.Tensor1D, bias: tf.Tensor1D, eps = 1e-5): tf.Tensor2D {
  if (tf.getBackend() === 'wasm' && layerNormSupports(x.shape[1])) return layerNormFused(x, gain, bias, eps);
  const op = customOp(([xi, g, b], save) => {
    const mean = tf.mean(xi, 1, true);
    const xc = tf.sub(xi, mean);
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), 1, true), eps));
    const xhat = tf.mul(xc, rstd);
    save([xhat, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gs] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const dxhat = tf.mul(dy, gs);
        // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        const m1 = tf.mean(dxhat, 1, true);
        const m2 = tf.mean(tf.mul(dxhat, xh), 1, true);
        const dx = tf.mul(rs, tf.sub(tf.sub(dxhat, m1), tf.mul(xh, m2)));
        return [dx, columnSum(tf.mul(dy, xh) as tf.Tensor2D), columnSum(dy as tf.Tensor2D)];
      },
    };
  });
  return op(x, gain, bias) as tf.Tensor2D;
}

/**
 * layerNorm through the wasm kernels (one pass for the statistics, one for the output; the
 * gradient recomputes the statistics from the saved input): 2 tensors in and out each way instead
 * of nine and eleven kernels over the activations.
 */
function layerNormFused(x: tf.Tensor2D, gain: tf.Tensor1D, bias: tf.Tensor1D, eps: number): tf.Tensor2D {
  const [rows, width] = x.shape;
  const op = customOp(([xi, g, b], save) => {
    save([xi!, g!]);
    return {
      value: kernelLayerNorm(wasmValues(xi!), wasmValues(g!), wasmValues(b!), width, eps, (y) => tf.tensor2d(y, [rows, width])),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => kernelLayerNormBackward(wasmValues(saved[0]!), wasmValues(saved[1]!), wasmValues(dy), width, eps,
        (dx, dg, db) => [tf.tensor2d(dx, [rows, width]), tf.tensor1d(dg), tf.tensor1d(db)]),
    };
  });
  return op(x, gain, bias) as tf.Tensor2D;
}

/** Exact GELU, x * Phi(x), with its derivative written out (two kernels each way). */
export function gelu<T extends tf.Tensor>(x: T): T {
  const op = customOp(([xi], save) => {
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(xi, SQRT_HALF)), 1), 0.5);
    save([xi, cdf]);
    return {
      value: tf.mul(xi, cdf),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, c] = saved as [tf.Tensor, tf.Tensor];
        const pdf = tf.mul(tf.exp(tf.mul(tf.square(xs), -0.5)), INV_SQRT_2PI);
        return tf.mul(dy, tf.add(c, tf.mul(xs, pdf)));
      },
    };
  });
  return op(x) as T;
}

/**
 * Softmax over the last axis; gradient `y * (dy - sum(dy * y))`. Same as tfjs's, but without
 * recording the forward's internal ops (keeps the tape small).
 */
export function softmax<T extends tf.Tensor>(logits: T): T {
  const op = customOp(([z], save) => {
    const y = tf.softmax(z);
    save([y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const ys = saved[0]!;
        return tf.mul(ys, tf.sub(dy, tf.sum(tf.mul(dy, ys), -1, true)));
      },
    };
  });
  return op(logits) as T;
}

/**
 * Sum over rows of `weights[i] * -log softmax(logits[i])[targets[i]]`: logits [n, vocab],
 * int32 targets [n], float weights [n] (0 drops a row; pass a mask already divided by the
 * token count to get a mean). The gradient `(softmax - onehot) * weight` is computed directly.
 */
export function weightedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  const vocab = logits.shape[1];
  const op = customOp(([z, w], save) => {
    const logp = tf.logSoftmax(z);
    const onehot = tf.oneHot(targets, vocab);
    const nll = tf.neg(tf.sum(tf.mul(logp, onehot), 1));
    save([logp, onehot, w, nll]);
    return {
      value: tf.sum(tf.mul(nll, w)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [lp, oh, ws, nl] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const dz = tf.mul(tf.sub(tf.exp(lp), oh), tf.mul(tf.reshape(ws, [-1, 1]), dy));
        return [dz, tf.mul(nl, dy)];
      },
    };
  });
  return op(logits, weights) as tf.Scalar;
}

/**
 * log softmax(logits[i])[targets[i]] for each row: logits [n, vocab], int32 targets [n] -> [n].
 * The gradient (onehot - softmax) * dy is computed directly, as in weightedCrossEntropy.
 */
export function pickedLogprobs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const vocab = logits.shape[1];
  const op = customOp(([z], save) => {
    const logp = tf.logSoftmax(z!);
    const onehot = tf.oneHot(targets, vocab);
    save([logp, onehot]);
    return {
      value: tf.sum(tf.mul(logp, onehot), 1),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(tf.sub(saved[1]!, tf.exp(saved[0]!)), tf.reshape(dy, [-1, 1])),
    };
  });
  return op(logits) as tf.Tensor1D;
}

/** depthwiseConv2d read as a grouped product: x [m, k, g] and f [k, g, n] -> [m, g, n]. */
function groupedProduct(x: tf.Tensor, f: tf.Tensor, m: number, k: number, g: number, n: number): tf.Tensor {
  const y = tf.depthwiseConv2d(tf.reshape(x, [1, m, k, g]) as tf.Tensor4D, tf.reshape(f, [1, k, g, n]) as tf.Tensor4D, 1, 'valid');
  return tf.reshape(y, [m, g, n]);
}

export interface AttentionShape {
  batch: number;
  heads: number;
  /** Query positions (new tokens). */
  queries: number;
  /** Key positions (past + new). */
  keys: number;
}

/**
 * Multi-head scaled dot-product attention with one custom gradient: q [batch * queries, width],
 * k and v [batch * keys, width] (heads side by side in the width) -> [batch * queries, width].
 * `bias` [queries, batch or 1, 1, keys] is added to the scores (masking; no gradient).
 *
 * On wasm it runs the fused kernel of wasm-kernels.ts (usesFusedAttention says when), else two
 * depthwise convolutions in layouts chosen so that the scores come out as [queries, batch*heads,
 * keys] (softmax over the last axis) and most of the backward pass reads them in place: one large
 * transpose each way instead of six (wasm's Transpose is slow, ~10 ns per element). Elsewhere it
 * is the usual batched product over [batch*heads, ...].
 */
export function attention(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, shape: AttentionShape, bias: tf.Tensor | null): tf.Tensor2D {
  if (tf.getBackend() === 'wasm') return usesFusedAttention(shape, q.shape[1]) ? attentionFused(q, k, v, shape, bias) : attentionByConv(q, k, v, shape, bias);
  return attentionBatched(q, k, v, shape, bias);
}

export type WasmAttention = 'fused' | 'conv';
// FACTFLOW_WASM_ATTENTION=conv reproduces runs made before the fused kernel (threads inherit it)
let wasmAttention: WasmAttention = process.env['FACTFLOW_WASM_ATTENTION'] === 'conv' ? 'conv' : 'fused';

/**
 * Which attention wasm runs: 'fused' (wasm-kernels.ts, the default where the head width is a
 * multiple of 4) or 'conv' (depthwise convolutions, below). For benchmarks and tests.
 */
export function setWasmAttention(kind: WasmAttention): WasmAttention {
  const before = wasmAttention;
  wasmAttention = kind;
  return before;
}

/**
 * The kernel copies the whole key/value cache in and out on every call, so a decoding step (one
 * query per sequence) of a batch is faster through the convolutions (measured, default model,
 * 32 sequences: ~3,000 against ~2,000-2,700 tokens/s); for one sequence the kernel is faster
 * (~560 against ~400).
 */
function usesFusedAttention(s: AttentionShape, width: number): boolean {
  return wasmAttention === 'fused' && kernelSupports(width / s.heads) && (s.queries > 1 || s.batch === 1);
}

interface WasmBackendInternals {
  dataIdMap: { get(dataId: object): { memoryOffset?: number | null } | undefined };
  wasm: { HEAPU8: Uint8Array };
}

/**
 * A float32 tensor's values as a view of tfjs-wasm's heap, valid until tfjs next allocates (so:
 * copied at once by the kernel); a copy through dataSync where the backend's internals differ
 * (tfjs 4.22's BackendWasm keeps each tensor at dataIdMap.get(dataId).memoryOffset).
 */
function wasmValues(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as Partial<WasmBackendInternals>;
  const offset = t.dtype === 'float32' ? backend.dataIdMap?.get(t.dataId)?.memoryOffset : null;
  const heap = backend.wasm?.HEAPU8;
  if (typeof offset === 'number' && heap) return new Float32Array(heap.buffer, heap.byteOffset + offset, t.size);
  return t.dataSync() as Float32Array;
}

interface FusedAttention {
  value: tf.Tensor;
  /** [dq, dk, dv] from the output's gradient and the (saved) q, k, v of the forward pass. */
  backward: (dy: tf.Tensor, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor[];
}

/**
 * Attention through the fused wasm kernel: q, k, v and the bias are copied from tfjs's heap
 * into the kernel's, the results straight back into tensors. The backward pass reads the saved
 * q, k, v again and gets each softmax row's max and sum (and the bias) from the closure.
 */
function fusedAttention(qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor, s: AttentionShape, bias: tf.Tensor | null, d: number): FusedAttention {
  const shape = { batch: s.batch, heads: s.heads, queries: s.queries, keys: s.keys, headDim: d / s.heads };
  const biasRows = bias ? bias.shape[1]! : 1;
  // kept for the backward pass: the caller may dispose its bias tensor once the forward is done
  const b = bias ? wasmValues(bias).slice() : new Float32Array(s.queries * s.keys);
  let stats = new Float32Array(0);
  const value = kernelForward(shape, wasmValues(qi), wasmValues(ki), wasmValues(vi), b, biasRows, (out, st) => {
    stats = st.slice();
    return tf.tensor2d(out, [s.batch * s.queries, d]);
  });
  return {
    value,
    backward: (dy, q, k, v) => kernelBackward(shape, wasmValues(q), wasmValues(k), wasmValues(v), b, biasRows, stats, wasmValues(dy),
      (dq, dk, dv) => [tf.tensor2d(dq, [s.batch * s.queries, d]), tf.tensor2d(dk, [s.batch * s.keys, d]), tf.tensor2d(dv, [s.batch * s.keys, d])]),
  };
}

function attentionFused(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, s: AttentionShape, bias: tf.Tensor | null): tf.Tensor2D {
  const d = q.shape[1];
  const op = customOp(([qi, ki, vi], save) => {
    const f = fusedAttention(qi!, ki!, vi!, s, bias, d);
    save([qi!, ki!, vi!]);
    return { value: f.value, gradFunc: (dy, saved) => f.backward(dy, saved[0]!, saved[1]!, saved[2]!) };
  });
  return op(q, k, v) as tf.Tensor2D;
}

interface ConvAttentionForward {
  value: tf.Tensor;
  p: tf.Tensor;
}

/** Forward of depthwise attention on q (unscaled), k, v [rows, width]. */
function convAttentionForward(qi: tf.Tensor, ki: tf.Tensor, vi: tf.Tensor, s: AttentionShape, bias: tf.Tensor | null, d: number): ConvAttentionForward {
  const { batch: b, heads: h, queries: tq, keys: tk } = s;
  const hd = d / h;
  const g = b * h;
  const q4 = tf.reshape(tf.mul(qi, 1 / Math.sqrt(hd)), [b, tq, h, hd]);
  const k4 = tf.reshape(ki, [b, tk, h, hd]);
  const v4 = tf.reshape(vi, [b, tk, h, hd]);
  let scores = groupedProduct(tf.transpose(q4, [1, 3, 0, 2]), tf.transpose(k4, [3, 0, 2, 1]), tq, hd, g, tk);
  if (bias) scores = tf.reshape(tf.add(tf.reshape(scores, [tq, b, h, tk]), bias), [tq, g, tk]);
  const p = tf.softmax(scores);
  const c = groupedProduct(tf.transpose(p, [0, 2, 1]), tf.transpose(v4, [1, 0, 2, 3]), tq, tk, g, hd);
  return { value: tf.reshape(tf.transpose(tf.reshape(c, [tq, b, h, hd]), [1, 0, 2, 3]), [b * tq, d]), p };
}

/** Gradients [dq, dk, dv] of depthwise attention, from the saved inputs and probabilities. */
function convAttentionBackward(dy: tf.Tensor, qs: tf.Tensor, ks: tf.Tensor, vs: tf.Tensor, ps: tf.Tensor, s: AttentionShape, d: number): tf.Tensor[] {
  const { batch: b, heads: h, queries: tq, keys: tk } = s;
  const hd = d / h;
  const g = b * h;
  const scale = 1 / Math.sqrt(hd);
  const dc4 = tf.reshape(dy, [b, tq, h, hd]);
  const ks4 = tf.reshape(ks, [b, tk, h, hd]);
  const vs4 = tf.reshape(vs, [b, tk, h, hd]);
  const qs4 = tf.reshape(tf.mul(qs, scale), [b, tq, h, hd]);
  // dP[i,g,j] = sum_d dC[i,g,d] V[j,g,d]
  const dp = groupedProduct(tf.transpose(dc4, [1, 3, 0, 2]), tf.transpose(vs4, [3, 0, 2, 1]), tq, hd, g, tk);
  const ds = tf.mul(ps, tf.sub(dp, tf.sum(tf.mul(dp, ps), -1, true)));
  // dQ[i,g,d] = sum_j dS[i,g,j] K[j,g,d]   (the one large transpose of the backward pass)
  const dq = groupedProduct(tf.transpose(ds, [0, 2, 1]), tf.transpose(ks4, [1, 0, 2, 3]), tq, tk, g, hd);
  // dK^T[d,g,j] = sum_i Q^T[d,i,g] dS[i,g,j]; dV^T likewise with dC and P: both read dS / P in place
  const dkT = groupedProduct(tf.transpose(qs4, [3, 1, 0, 2]), ds, hd, tq, g, tk);
  const dvT = groupedProduct(tf.transpose(dc4, [3, 1, 0, 2]), ps, hd, tq, g, tk);
  const back = (x: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(x, [hd, b, h, tk]), [1, 3, 2, 0]), [b * tk, d]);
  return [tf.mul(tf.reshape(tf.transpose(tf.reshape(dq, [tq, b, h, hd]), [1, 0, 2, 3]), [b * tq, d]), scale), back(dkT), back(dvT)];
}

function attentionByConv(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, s: AttentionShape, bias: tf.Tensor | null): tf.Tensor2D {
  const d = q.shape[1];
  const op = customOp(([qi, ki, vi], save) => {
    const f = convAttentionForward(qi!, ki!, vi!, s, bias, d);
    save([qi!, ki!, vi!, f.p]);
    return {
      value: f.value,
      gradFunc: (dy, saved) => convAttentionBackward(dy, saved[0]!, saved[1]!, saved[2]!, saved[3]!, s, d),
    };
  });
  return op(q, k, v) as tf.Tensor2D;
}

/**
 * Self-attention from the block's normalised input: q, k, v projections plus attention as one
 * custom op (training and scoring; no cache). On wasm this saves splitting a fused projection
 * and transposes `x` once for the three weight gradients. Returns the attention output before
 * the output projection, [rows, width].
 */
export function selfAttention(x: tf.Tensor2D, w: { q: tf.Tensor2D; k: tf.Tensor2D; v: tf.Tensor2D }, b: { q: tf.Tensor1D; k: tf.Tensor1D; v: tf.Tensor1D }, s: AttentionShape, bias: tf.Tensor | null): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm') {
    return attention(linear(x, w.q, b.q), linear(x, w.k, b.k), linear(x, w.v, b.v), s, bias);
  }
  const d = x.shape[1];
  const op = customOp(([xi, wq, wk, wv, bq, bk, bv], save) => {
    const q = tf.fused.matMul({ a: xi as tf.Tensor2D, b: wq as tf.Tensor2D, bias: bq });
    const k = tf.fused.matMul({ a: xi as tf.Tensor2D, b: wk as tf.Tensor2D, bias: bk });
    const v = tf.fused.matMul({ a: xi as tf.Tensor2D, b: wv as tf.Tensor2D, bias: bv });
    const fused = usesFusedAttention(s, d) ? fusedAttention(q, k, v, s, bias, d) : null;
    const conv = fused ? null : convAttentionForward(q, k, v, s, bias, d);
    save(conv ? [xi!, wq!, wk!, wv!, q, k, v, conv.p] : [xi!, wq!, wk!, wv!, q, k, v]);
    return {
      value: fused ? fused.value : conv!.value,
      gradFunc: (dy, saved) => {
        const [xs, wqs, wks, wvs, qs, ks, vs, ps] = saved as tf.Tensor2D[];
        const [dq, dk, dv] = (fused ? fused.backward(dy, qs!, ks!, vs!) : convAttentionBackward(dy, qs!, ks!, vs!, ps!, s, d)) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const xT = transposeForGrad(xs!);
        const dx = tf.addN([tf.matMul(dq, transposeForGrad(wqs!)), tf.matMul(dk, transposeForGrad(wks!)), tf.matMul(dv, transposeForGrad(wvs!))]);
        return [dx, tf.matMul(xT, dq), tf.matMul(xT, dk), tf.matMul(xT, dv), columnSum(dq), columnSum(dk), columnSum(dv)];
      },
    };
  });
  return op(x, w.q, w.k, w.v, b.q, b.k, b.v) as tf.Tensor2D;
}

function attentionBatched(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, s: AttentionShape, bias: tf.Tensor | null): tf.Tensor2D {
  const { batch: b, heads: h, queries: tq, keys: tk } = s;
  const d = q.shape[1];
  const hd = d / h;
  const split = (x: tf.Tensor, t: number, perm: number[], shape: [number, number, number]) => tf.reshape(tf.transpose(tf.reshape(x, [b, t, h, hd]), perm), shape) as tf.Tensor3D;
  const qh = split(tf.mul(q, 1 / Math.sqrt(hd)), tq, [0, 2, 1, 3], [b * h, tq, hd]);
  const kT = split(k, tk, [0, 2, 3, 1], [b * h, hd, tk]);
  const vh = split(v, tk, [0, 2, 1, 3], [b * h, tk, hd]);
  let scores: tf.Tensor = batchMatMul(qh, kT);
  // bias arrives as [queries, batch|1, 1, keys]; here scores are [batch, heads, queries, keys]
  if (bias) scores = tf.add(tf.reshape(scores, [b, h, tq, tk]), tf.transpose(bias, [1, 2, 0, 3]));
  const p = softmax(tf.reshape(scores, [b * h, tq, tk]) as tf.Tensor3D);
  const c = batchMatMul(p, vh);
  return tf.reshape(tf.transpose(tf.reshape(c, [b, h, tq, hd]), [0, 2, 1, 3]), [b * tq, d]) as tf.Tensor2D;
}

