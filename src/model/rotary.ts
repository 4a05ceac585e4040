/**
 * Rotary position embedding (RoPE, Su et al. 2021; the GPT-NeoX "rotate half" layout LLaMA uses):
 * each head's query and key pairs (i, i + headDim/2) are rotated by position x theta_i, so a
 * query-key score depends on their distance, not on where they sit. Why we offer it: with learned
 * absolute positions a small model trained from scratch copies a word from "the question just
 * asked" only where that question always sits at the same position; in multi-round conversations
 * it does not (measured, see README).
 *
 * The rotation is x * cos + (x @ R) * sin with R a fixed signed permutation [width, width], so
 * its gradient is two elementwise products and one plain matmul (no gather on wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { matMul } from './ops.ts';

/** Frequency base (LLaMA's). */
export const ROTARY_BASE = 10000;

/** cos/sin per position and channel [n, width], and the rotate-half matrix [width, width]. */
export interface Rotary {
  cos: tf.Tensor2D;
  sin: tf.Tensor2D;
  rotate: tf.Tensor2D;
}

/** Angle of channel j (within a head of `headDim`) at position p. */
export function rotaryAngle(p: number, j: number, headDim: number): number {
  const i = j % (headDim / 2);
  return p * Math.pow(ROTARY_BASE, (-2 * i) / headDim);
}

/** The rotate-half matrix: (x @ R) per head = [-x2, x1] for x = [x1, x2]. */
export function rotateHalfMatrix(width: number, heads: number): Float32Array {
  const hd = width / heads;
  const half = hd / 2;
  const r = new Float32Array(width * width);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      const lo = h * hd + j;
      const hi = lo + half;
      r[hi * width + lo] = -1; // out[lo] = -x[hi]
      r[lo * width + hi] = 1; // out[hi] = x[lo]
    }
  }
  return r;
}

/** Tables for position ids [n] (the caller disposes them, or calls inside a tidy). */
export function rotaryTables(positions: Int32Array, width: number, heads: number): Rotary {
  const hd = width / heads;
  const n = positions.length;
  const cos = new Float32Array(n * width);
  const sin = new Float32Array(n * width);
  for (let t = 0; t < n; t++) {
    for (let c = 0; c < width; c++) {
      const a = rotaryAngle(positions[t]!, c % hd, hd);
      cos[t * width + c] = Math.cos(a);
      sin[t * width + c] = Math.sin(a);
    }
  }
  return { cos: tf.tensor2d(cos, [n, width]), sin: tf.tensor2d(sin, [n, width]), rotate: tf.tensor2d(rotateHalfMatrix(width, heads), [width, width]) };
}

/** x [n, width] rotated by its positions' angles. */
export function applyRotary(x: tf.Tensor2D, r: Rotary): tf.Tensor2D {
  return tf.add(tf.mul(x, r.cos), tf.mul(matMul(x, r.rotate), r.sin)) as tf.Tensor2D;
}

export function disposeRotary(r: Rotary | null | undefined): void {
  if (r) tf.dispose([r.cos, r.sin, r.rotate]);
}
