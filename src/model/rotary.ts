/**
 * Rotary position embedding (RoPE, Su et al. 2021; the GPT-NeoX "rotate half" layout LLaMA uses):
 * each head's query and key pairs (i, i + headDim/2) are rotated by position x theta_i, so a
 * query-key score depends on their distance, not on where they sit. Why we offer it: with learned
 * absolute positions a small model trained from scratch copies a word from "the question just
 * asked" only where that question always sits at the same position; in multi-round conversations
 * it does not (measured, see README).
 *
 * The rotation is x * cos + rotateHalf(x) * sin, rotateHalf swapping each head's halves with a
 * sign ([x1, x2] -> [-x2, x1]). In the model it runs as one custom op (ops.rotaryMix) that swaps
 * the halves by a product with a signed permutation matrix: on wasm a split, a negation and a
 * concat, each recorded for autodiff, cost more than one small matmul each way.
 */
import * as tf from '@tensorflow/tfjs';
import { rotatedPairs } from './config.ts';
import { rotaryMix } from './ops.ts';

/** Frequency base (LLaMA's). */
export const ROTARY_BASE = 10000;

/** cos/sin per position and channel [n, width], the head count they were made for, and the half swap. */
export interface Rotary {
  cos: tf.Tensor2D;
  sin: tf.Tensor2D;
  heads: number;
  /** [width, width] signed permutation: x @ swap = rotateHalf(x). */
  swap: tf.Tensor2D;
}

/**
 * Angle of channel j (within a head of `headDim`) at position p. With `fraction` < 1 only the first
 * rotatedPairs(headDim, fraction) pairs turn, at frequencies spread over those pairs as LLaMA
 * spreads them over all; the others stay at angle 0 (position-free).
 */
export function rotaryAngle(p: number, j: number, headDim: number, fraction = 1): number {
  const i = j % (headDim / 2);
  const turning = rotatedPairs(headDim, fraction);
  return i < turning ? p * Math.pow(ROTARY_BASE, -i / turning) : 0;
}

/** Each head's halves swapped with a sign: [x1, x2] -> [-x2, x1], for x [n, width]. */
export function rotateHalf(x: tf.Tensor2D, heads: number): tf.Tensor2D {
  const [n, width] = x.shape;
  const half = width / heads / 2;
  const [x1, x2] = tf.split(tf.reshape(x, [n, heads, 2, half]), 2, 2);
  return tf.reshape(tf.concat([tf.neg(x2!), x1!], 2), [n, width]) as tf.Tensor2D;
}

const swapMatrices = new Map<string, Float32Array>();

/**
 * The signed permutation matrix R [width, width] with x @ R = rotateHalf(x, heads). Made once per
 * shape (rotaryTables runs on every forward pass, including each decoding step); do not modify.
 */
export function rotateHalfMatrix(width: number, heads: number): Float32Array {
  const key = `${width}/${heads}`;
  const cached = swapMatrices.get(key);
  if (cached) return cached;
  const hd = width / heads;
  const half = hd / 2;
  const m = new Float32Array(width * width);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const lo = h * hd + i;
      const hi = lo + half;
      m[hi * width + lo] = -1; // out[lo] = -x[hi]
      m[lo * width + hi] = 1; //  out[hi] = x[lo]
    }
  }
  swapMatrices.set(key, m);
  return m;
}

/** Tables for position ids [n] (the caller disposes them, or calls inside a tidy). */
export function rotaryTables(positions: Int32Array, width: number, heads: number, fraction = 1): Rotary {
  const hd = width / heads;
  const half = hd / 2;
  const n = positions.length;
  const cos = new Float32Array(n * width);
  const sin = new Float32Array(n * width);
  // one cos/sin per (position, frequency), copied to both halves of every head
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < half; i++) {
      const a = rotaryAngle(positions[t]!, i, hd, fraction);
      const c = Math.cos(a);
      const s = Math.sin(a);
      for (let h = 0; h < heads; h++) {
        const at = t * width + h * hd + i;
        cos[at] = cos[at + half] = c;
        sin[at] = sin[at + half] = s;
      }
    }
  }
  return { cos: tf.tensor2d(cos, [n, width]), sin: tf.tensor2d(sin, [n, width]), heads, swap: tf.tensor2d(rotateHalfMatrix(width, heads), [width, width]) };
}

/** x [n, width] rotated by its positions' angles. */
export function applyRotary(x: tf.Tensor2D, r: Rotary): tf.Tensor2D {
  return rotaryMix(x, r.cos, r.sin, r.swap);
}

export function disposeRotary(r: Rotary | null | undefined): void {
  if (r) tf.dispose([r.cos, r.sin, r.swap]);
}
