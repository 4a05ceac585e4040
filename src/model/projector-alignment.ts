/**
 * Projector alignment: after vision pretraining, the linear projector is set (by ridge regression,
 * in closed form) so that each patch's visual token is the sum of the language model's embeddings
 * of the words its tags name, weighted by the tag head's probabilities: a patch showing a red
 * circle enters the language model as roughly embed("red") + embed("circle"), a background patch
 * as roughly nothing.
 *
 * Why: this is what LLaVA's stage 1 (feature alignment) is for, making visual tokens readable to
 * the language model as words. Our language model is trained from scratch, so there is no frozen
 * LM to align against by gradient; but the tag head is a text side of our CLIP stand-in, and its
 * tags are words the LM embeds. With visual tokens in the word space, "is there a red circle?"
 * is the same token matching the LM learns for text, instead of a new bilinear map to be found
 * from a random projection. The projector stays trainable; only its starting point changes.
 * Measured (README): with 4 heads, a gain at 1,500 SFT steps on two seeds, a loss of multiple choice at 2,000;
 * and, with the 8-head default at 1,500 steps, a loss too (88.5% / 47.2% against 88.7% / 55.4%);
 * so sft-train's `align_projector` is off by default.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidOptionError } from '../errors.ts';
import { imageTokenCount } from './config.ts';
import type { MultimodalModel } from './multimodal-model.ts';
import { linear } from './ops.ts';
import { encodeImages, patchify } from './vision-encoder.ts';
import type { TagHead } from './vision-pretrain.ts';

export interface ProjectorAlignmentOptions {
  /** Normalised HWC pixels of `count` images (image-input.ts): the patches regressed on. */
  pixels: Float32Array;
  count: number;
  /** Per tag of the head: the token ids whose embeddings (summed) stand for it; empty: not used. */
  tagTokens: readonly (readonly number[])[];
  /** Ridge penalty relative to the mean diagonal of the feature Gram matrix (default 1e-3). */
  ridge?: number;
}

export interface ProjectorAlignment {
  /** Patches regressed on. */
  patches: number;
  /** Tags that stand for some tokens. */
  tags_used: number;
  /** Share of the targets' variance the fitted projector explains (1: exact). */
  r2: number;
  /** Mean norm of the fitted visual tokens, and of the LM's token embeddings, for scale. */
  visual_norm: number;
  embedding_norm: number;
}

/** Sets `projector.weight` and `projector.bias` of `model` in place; returns how well it fitted. */
export async function alignProjector(model: MultimodalModel, head: TagHead, options: ProjectorAlignmentOptions): Promise<ProjectorAlignment> {
  const cfg = model.config;
  if (options.tagTokens.length !== head.tags) throw new InvalidOptionError('tagTokens', `has ${options.tagTokens.length} entries, the tag head ${head.tags}`);
  if (!Number.isInteger(options.count) || options.count < 1) throw new InvalidOptionError('count', `must be a positive integer, got ${options.count}`);
  const vocab = cfg.language.vocabSize;
  const used = options.tagTokens.filter((ids) => ids.length > 0).length;
  if (used === 0) throw new InvalidOptionError('tagTokens', 'no tag stands for any token');
  for (const ids of options.tagTokens) {
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new InvalidOptionError('tagTokens', `token id ${id} is outside the vocabulary (${vocab})`);
  }
  const n = imageTokenCount(cfg);
  const p = cfg.vision.patchSize;
  const width = cfg.language.width;
  // the features are kept (not tidied) for the fitted tokens' norm after the solve
  const feats = tf.tidy(() => encodeImages(model.params, cfg, tf.tensor2d(patchify(options.pixels, options.count, cfg.vision.imageSize, p), [options.count * n, p * p * 3]), options.count));
  try {
    const [gram, cross, yy, ySum, embNorm] = tf.tidy(() => {
      const probs = tf.sigmoid(linear(feats, head.store.get('tags.weight') as tf.Tensor2D, head.store.get('tags.bias') as tf.Tensor1D));
      // [tags, vocab] 0/1 selection times the embedding table: each tag's summed token embeddings
      const select = new Float32Array(head.tags * vocab);
      options.tagTokens.forEach((ids, t) => { for (const id of ids) select[t * vocab + id] += 1; });
      const embed = model.params.get('lm.embed.weight') as tf.Tensor2D;
      const tagEmb = tf.matMul(tf.tensor2d(select, [head.tags, vocab]), embed);
      const targets = tf.matMul(probs, tagEmb);
      const x = tf.concat([feats, tf.ones([feats.shape[0], 1])], 1);
      const xt = tf.transpose(x);
      return [
        tf.matMul(xt, x), tf.matMul(xt, targets), tf.sum(tf.square(targets)), tf.sum(targets, 0),
        tf.mean(tf.norm(embed, 'euclidean', 1)),
      ];
    });
    const rows = options.count * n;
    const d = gram!.shape[0]!;
    // asynchronous reads: a GPU backend must not block on them (test/model/no-sync-read.test.ts)
    const g = Float64Array.from(await gram!.data());
    const c = Float64Array.from(await cross!.data());
    const sumY = await ySum!.data();
    const sumYY = (await yy!.data())[0]!;
    const eNorm = (await embNorm!.data())[0]!;
    tf.dispose([gram!, cross!, yy!, ySum!, embNorm!]);
    let diag = 0;
    for (let i = 0; i < d - 1; i++) diag += g[i * d + i]!;
    const lambda = (options.ridge ?? 1e-3) * (diag / (d - 1));
    for (let i = 0; i < d - 1; i++) g[i * d + i]! += lambda; // the bias (last row) is not penalised
    const w = solveSymmetric(g, c, d, width);
    // R^2 from the normal equations: SSE = y.y - 2 w.(X^T y) + w.(X^T X) w (X^T X without the ridge)
    for (let i = 0; i < d - 1; i++) g[i * d + i]! -= lambda;
    let fit = 0, cross2 = 0;
    for (let j = 0; j < width; j++) {
      for (let i = 0; i < d; i++) {
        cross2 += w[i * width + j]! * c[i * width + j]!;
        let s = 0;
        for (let k = 0; k < d; k++) s += g[i * d + k]! * w[k * width + j]!;
        fit += w[i * width + j]! * s;
      }
    }
    const sse = sumYY - 2 * cross2 + fit;
    let sst = sumYY;
    for (let j = 0; j < width; j++) sst -= sumY[j]! ** 2 / rows;
    const weight = new Float32Array((d - 1) * width);
    for (let i = 0; i < (d - 1) * width; i++) weight[i] = w[i]!;
    const bias = Float32Array.from(w.subarray((d - 1) * width));
    for (const [name, value] of [['projector.weight', tf.tensor2d(weight, [d - 1, width])], ['projector.bias', tf.tensor1d(bias)]] as const) {
      model.params.get(name).assign(value);
      value.dispose();
    }
    const fitted = tf.tidy(() => tf.mean(tf.norm(linear(feats, model.params.get('projector.weight') as tf.Tensor2D, model.params.get('projector.bias') as tf.Tensor1D), 'euclidean', 1)));
    const vNorm = (await fitted.data())[0]!;
    fitted.dispose();
    return { patches: rows, tags_used: used, r2: sst > 0 ? 1 - sse / sst : 1, visual_norm: vNorm, embedding_norm: eNorm };
  } finally {
    feats.dispose();
  }
}

/**
 * Solves A W = B for symmetric positive definite A [d x d] and B [d x m] (row-major) by Cholesky,
 * in float64: the Gram matrix of a few hundred features is small and float32 loses the ridge.
 */
export function solveSymmetric(a: Float64Array, b: Float64Array, d: number, m: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * d + j]!;
      for (let k = 0; k < j; k++) s -= l[i * d + k]! * l[j * d + k]!;
      if (i === j) {
        if (!(s > 0)) throw new InvalidOptionError('ridge', 'the feature Gram matrix is not positive definite; raise the ridge penalty');
        l[i * d + i] = Math.sqrt(s);
      } else l[i * d + j] = s / l[j * d + j]!;
    }
  }
  const w = Float64Array.from(b);
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < d; i++) { // L y = b
      let s = w[i * m + c]!;
      for (let k = 0; k < i; k++) s -= l[i * d + k]! * w[k * m + c]!;
      w[i * m + c] = s / l[i * d + i]!;
    }
    for (let i = d - 1; i >= 0; i--) { // L^T x = y
      let s = w[i * m + c]!;
      for (let k = i + 1; k < d; k++) s -= l[k * d + i]! * w[k * m + c]!;
      w[i * m + c] = s / l[i * d + i]!;
    }
  }
  return w;
}
