/**
 * Vision pretraining: the encoder learns to tell which tags (vision-tags.ts) an image holds, from
 * its mean-pooled grid features through a linear head, with a sigmoid cross-entropy per tag. The
 * head is thrown away afterwards; what stays is an encoder whose features carry colours and
 * shapes linearly, as CLIP's carry concepts for LLaVA. The language model is not involved.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../stream/random.ts';
import { InvalidOptionError } from '../errors.ts';
import { imageTokenCount } from './config.ts';
import type { MultimodalModel } from './multimodal-model.ts';
import { linear } from './ops.ts';
import { createParameterStore, type Parameter, type ParameterStore } from './parameters.ts';
import { encodeImages, patchify } from './vision-encoder.ts';

/**
 * How patch features become one image's tag logits. `max` (default): the head scores every
 * patch and the image takes each tag's best patch (multiple-instance learning), so each patch's
 * own features must name what it holds, which is what the language model later attends to.
 * `mean`: the head scores the mean of the patch features (a CLIP-like pooled embedding).
 */
export type TagPooling = 'max' | 'mean';

export interface TagHead {
  readonly tags: number;
  readonly pooling: TagPooling;
  readonly store: ParameterStore;
  readonly parameters: readonly Parameter[];
  dispose(): void;
}

export function createTagHead(model: MultimodalModel, tags: number, seed = 0, pooling: TagPooling = 'max'): TagHead {
  const store = createParameterStore(new Rng(seed), 'tag-head');
  const width = 2 * model.config.vision.width;
  store.add('tags.weight', 'tags', [width, tags], { kind: 'normal', std: 1 / Math.sqrt(width) });
  store.add('tags.bias', 'tags', [tags], { kind: 'zeros' });
  return { tags, pooling, store, parameters: store.list(), dispose: () => store.dispose() };
}

/** The vision encoder's parameters (what pretraining trains, with the head). */
export function visionParameters(model: MultimodalModel): readonly Parameter[] {
  return model.parameters().filter((p) => p.name.startsWith('vision.'));
}

/** Tag logits [count, tags] of `count` normalised HWC images (image-input.ts). */
export function tagLogits(model: MultimodalModel, head: TagHead, pixels: Float32Array, count: number): tf.Tensor2D {
  const cfg = model.config;
  const n = imageTokenCount(cfg);
  const p = cfg.vision.patchSize;
  const patches = tf.tensor2d(patchify(pixels, count, cfg.vision.imageSize, p), [count * n, p * p * 3]);
  const feats = encodeImages(model.params, cfg, patches, count);
  const weight = head.store.get('tags.weight') as tf.Tensor2D;
  const bias = head.store.get('tags.bias') as tf.Tensor1D;
  if (head.pooling === 'mean') return linear(tf.mean(tf.reshape(feats, [count, n, feats.shape[1]]), 1) as tf.Tensor2D, weight, bias);
  return tf.max(tf.reshape(linear(feats, weight, bias), [count, n, head.tags]), 1) as tf.Tensor2D;
}

/** Mean sigmoid cross-entropy over images and tags. */
export function tagLoss(model: MultimodalModel, head: TagHead, pixels: Float32Array, tags: Float32Array, count: number): tf.Scalar {
  const logits = tagLogits(model, head, pixels, count);
  return tf.losses.sigmoidCrossEntropy(tf.tensor2d(tags, [count, head.tags]), logits) as tf.Scalar;
}

export interface TagScores {
  /** Share of present tags predicted present (probability > 0.5). */
  present_recall: number;
  /** Share of absent tags predicted absent. */
  absent_accuracy: number;
  /** Mean of the two (chance: 0.5). */
  balanced_accuracy: number;
  /**
   * Within each image, the share of (present, absent) tag pairs the model ranks right (an AUC per
   * image, averaged; chance 0.5). It shows learning before the 0.5 threshold is crossed.
   */
  ranking_accuracy: number;
}

/** Scores predictions against 0/1 labels, both [count x tags]. */
export function scoreTags(probabilities: ArrayLike<number>, labels: ArrayLike<number>, tags: number): TagScores {
  let present = 0, found = 0, absent = 0, rejected = 0;
  for (let i = 0; i < labels.length; i++) {
    const yes = probabilities[i]! > 0.5;
    if (labels[i]! > 0.5) { present++; if (yes) found++; } else { absent++; if (!yes) rejected++; }
  }
  let auc = 0, images = 0;
  for (let i = 0; i + tags <= labels.length; i += tags) {
    let pairs = 0, right = 0;
    for (let a = i; a < i + tags; a++) {
      if (!(labels[a]! > 0.5)) continue;
      for (let b = i; b < i + tags; b++) {
        if (labels[b]! > 0.5) continue;
        pairs++;
        right += probabilities[a]! > probabilities[b]! ? 1 : probabilities[a]! === probabilities[b]! ? 0.5 : 0;
      }
    }
    if (pairs > 0) { auc += right / pairs; images++; }
  }
  const present_recall = present > 0 ? found / present : 0;
  const absent_accuracy = absent > 0 ? rejected / absent : 0;
  return { present_recall, absent_accuracy, balanced_accuracy: (present_recall + absent_accuracy) / 2, ranking_accuracy: images > 0 ? auc / images : 0.5 };
}

/**
 * `scoreTags` restricted to some tag columns, per named group (e.g. colours, shapes, kinds): an
 * average over all tags hides which attribute the encoder fails to see.
 */
export function scoreTagGroups(probabilities: ArrayLike<number>, labels: ArrayLike<number>, tags: number, groups: Readonly<Record<string, readonly number[]>>): Record<string, TagScores> {
  const out: Record<string, TagScores> = {};
  const images = Math.floor(labels.length / tags);
  for (const [name, columns] of Object.entries(groups)) {
    if (columns.length === 0 || columns.some((c) => !Number.isInteger(c) || c < 0 || c >= tags)) throw new InvalidOptionError(`groups.${name}`, `must be a non-empty list of columns in 0..${tags - 1}`);
    const p = new Float64Array(images * columns.length);
    const y = new Float64Array(images * columns.length);
    for (let i = 0; i < images; i++) {
      columns.forEach((c, j) => {
        p[i * columns.length + j] = probabilities[i * tags + c]!;
        y[i * columns.length + j] = labels[i * tags + c]!;
      });
    }
    out[name] = scoreTags(p, y, columns.length);
  }
  return out;
}

/** Tag probabilities [count * tags] (forward only). */
export async function predictTags(model: MultimodalModel, head: TagHead, pixels: Float32Array, count: number): Promise<Float32Array> {
  const probs = tf.tidy(() => tf.sigmoid(tagLogits(model, head, pixels, count)));
  const data = await probs.data() as Float32Array;
  probs.dispose();
  return data;
}
