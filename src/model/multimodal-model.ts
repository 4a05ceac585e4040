/**
 * The LLaVA-style model: vision encoder -> linear projector -> decoder-only language model, with
 * LM / reward / value heads on the shared trunk. Visual features replace the token embeddings at
 * the image placeholder positions the chat template reserved.
 */
import * as tf from '@tensorflow/tfjs';
import { InvalidOptionError } from '../errors.ts';
import { Rng } from '../stream/random.ts';
import { imageTokenCount, initStdFor, type ModelConfig } from './config.ts';
import { addHeadParameters, addScalarHead, scalarHeadStd, lmLogits, likelihoodRewardScores, rewardPoolingWeights, rewardScores, tokenValues } from './heads.ts';
import { addLanguageParameters, attentionBias, embedTokens, positionIds, runDecoder, usesRotary, type KVCache } from './language-model.ts';
import { rotaryTables } from './rotary.ts';
import { batchMatMul, linear, matMul } from './ops.ts';
import { createParameterStore, type Parameter, type ParameterStore } from './parameters.ts';
import { addVisionParameters, encodeImages, patchify } from './vision-encoder.ts';

/** One batch of sequences, as plain arrays (the model makes the tensors). */
export interface ModelInput {
  batch: number;
  length: number;
  /** Token ids [batch * length]. */
  ids: Int32Array;
  /** [batch * length]: 1 for real tokens, 0 for padding. Default: all real. */
  attentionMask?: Uint8Array;
  /**
   * Normalised HWC pixels [batch * imageSize * imageSize * 3] (see image-input.ts); rows without
   * an image may hold anything (zeros). Omit when no row has an image.
   */
  images?: Float32Array | null;
  /** [batch * imageTokens]: sequence position of each visual token; -1 for rows without image. */
  imagePositions?: Int32Array | null;
  /** [batch * length]: 1 on each row's response tokens, which 'response' reward pooling averages and 'response-sum' sums. */
  responseMask?: Uint8Array | null;
  /** [batch * length]: 1 on response tokens that occur in the reward prompt's captions (ModelConfig.rewardFactMatch). */
  factMatch?: Uint8Array | null;
}

export interface ForwardOptions {
  /** Earlier positions' keys/values (generation); positions continue from it. */
  cache?: KVCache | null;
  /** Return the cache including this call's positions. */
  wantCache?: boolean;
}

export interface ForwardResult {
  /** Final-norm hidden states [batch * length, width]. */
  hidden: tf.Tensor2D;
  cache?: KVCache;
}

export interface MultimodalModel {
  readonly config: ModelConfig;
  readonly params: ParameterStore;
  parameterCount(prefix?: string): number;
  /** Parameters that gradients flow to (all, unless frozen). */
  parameters(): readonly Parameter[];
  forward(input: ModelInput, options?: ForwardOptions): ForwardResult;
  /** [batch * length, vocab]. Needs the lm head. */
  lmLogits(hidden: tf.Tensor2D): tf.Tensor2D;
  /** [batch]: reward head at the positions its pooling reads (ModelConfig.rewardPooling); `ids` serve a likelihood-reading head. */
  rewardScores(hidden: tf.Tensor2D, input: Pick<ModelInput, 'batch' | 'length' | 'attentionMask' | 'responseMask' | 'ids' | 'factMatch'>): tf.Tensor1D;
  /** [batch, length]: value head at every position. */
  values(hidden: tf.Tensor2D, input: Pick<ModelInput, 'batch' | 'length'>): tf.Tensor2D;
  /** Adds a fresh head (e.g. a zero value head on a reward model's trunk). */
  addHead(name: 'reward' | 'value', options?: { std?: number }): void;
  dispose(): void;
}

export interface CreateModelOptions {
  /** Seed of the initial weights. */
  seed?: number;
  /** Label in tf.Variable names (debugging only). */
  label?: string;
}

function checkInput(input: ModelInput, config: ModelConfig): void {
  const { batch, length } = input;
  if (!Number.isInteger(batch) || batch <= 0 || !Number.isInteger(length) || length <= 0) {
    throw new InvalidOptionError('input.batch', `batch ${batch} x length ${length} must be positive integers`);
  }
  if (input.ids.length !== batch * length) throw new InvalidOptionError('input.ids', `has ${input.ids.length} ids, expected ${batch} x ${length}`);
  if (input.attentionMask && input.attentionMask.length !== batch * length) {
    throw new InvalidOptionError('input.attentionMask', `has ${input.attentionMask.length} entries, expected ${batch * length}`);
  }
  const v = config.language.vocabSize;
  for (let i = 0; i < input.ids.length; i++) {
    const id = input.ids[i]!;
    if (id < 0 || id >= v) throw new InvalidOptionError('input.ids', `id ${id} at [${Math.floor(i / length)}, ${i % length}] is outside the vocabulary (${v})`);
  }
  if (input.images) {
    const px = config.vision.imageSize * config.vision.imageSize * 3;
    if (input.images.length !== batch * px) throw new InvalidOptionError('input.images', `has ${input.images.length} values, expected ${batch} x ${px}`);
    const n = imageTokenCount(config);
    if (!input.imagePositions || input.imagePositions.length !== batch * n) {
      throw new InvalidOptionError('input.imagePositions', `expected ${batch} x ${n} positions with images`);
    }
    for (let i = 0; i < input.imagePositions.length; i++) {
      const p = input.imagePositions[i]!;
      if (p < -1 || p >= length) throw new InvalidOptionError('input.imagePositions', `position ${p} is outside the sequence (length ${length})`);
    }
  }
}

/** Builds a model with freshly initialised weights (deterministic in `seed`). */
export function createModel(config: ModelConfig, options: CreateModelOptions = {}): MultimodalModel {
  const rng = new Rng(options.seed ?? 0);
  const store = createParameterStore(rng, options.label ?? 'model');
  const cfg: ModelConfig = { ...config, heads: [...config.heads] };
  addVisionParameters(store, cfg);
  const l = cfg.language;
  store.add('projector.weight', 'projector', [2 * cfg.vision.width, l.width], { kind: 'normal', std: initStdFor(cfg, 2 * cfg.vision.width) });
  store.add('projector.bias', 'projector', [l.width], { kind: 'zeros' });
  addLanguageParameters(store, cfg);
  addHeadParameters(store, cfg);
  const nImage = imageTokenCount(cfg);

  /** Visual tokens [batch * nImage, width] placed at their positions as [batch * length, width]. */
  function placeImages(input: ModelInput, tokenEmb: tf.Tensor2D): tf.Tensor2D {
    const { batch, length } = input;
    const pos = input.imagePositions!;
    const rows: number[] = [];
    for (let b = 0; b < batch; b++) if (pos[b * nImage]! >= 0) rows.push(b);
    if (rows.length === 0) return tokenEmb;
    // only rows that have an image go through the encoder
    const px = cfg.vision.imageSize * cfg.vision.imageSize * 3;
    const pixels = new Float32Array(rows.length * px);
    rows.forEach((b, i) => pixels.set(input.images!.subarray(b * px, (b + 1) * px), i * px));
    const patches = tf.tensor2d(patchify(pixels, rows.length, cfg.vision.imageSize, cfg.vision.patchSize), [rows.length * nImage, cfg.vision.patchSize ** 2 * 3]);
    const feats = encodeImages(store, cfg, patches, rows.length);
    const visual = linear(feats, store.get('projector.weight') as tf.Tensor2D, store.get('projector.bias') as tf.Tensor1D);
    // placement as a product with a 0/1 matrix [rows, length, nImage]: differentiable without scatter
    const place = new Float32Array(rows.length * length * nImage);
    const keep = new Float32Array(batch * length).fill(1);
    rows.forEach((b, i) => {
      for (let k = 0; k < nImage; k++) {
        const p = pos[b * nImage + k]!;
        place[(i * length + p) * nImage + k] = 1;
        keep[b * length + p] = 0;
      }
    });
    const placed = batchMatMul(tf.tensor3d(place, [rows.length, length, nImage]), tf.reshape(visual, [rows.length, nImage, l.width]) as tf.Tensor3D);
    let full: tf.Tensor2D;
    if (rows.length === batch) full = tf.reshape(placed, [batch * length, l.width]);
    else {
      // scatter image rows back among text-only rows with a 0/1 row-selection product
      const sel = new Float32Array(batch * rows.length);
      rows.forEach((b, i) => { sel[b * rows.length + i] = 1; });
      full = tf.reshape(matMul(tf.tensor2d(sel, [batch, rows.length]), tf.reshape(placed, [rows.length, length * l.width]) as tf.Tensor2D), [batch * length, l.width]);
    }
    return tf.add(tf.mul(tokenEmb, tf.tensor2d(keep, [batch * length, 1])), full) as tf.Tensor2D;
  }

  const model: MultimodalModel = {
    config: cfg,
    params: store,
    parameterCount: (prefix) => store.count(prefix),
    parameters: () => store.list(),
    forward(input, options = {}) {
      const past = options.cache ?? null;
      const pastLen = past ? past.length : 0;
      checkInput(input, cfg);
      if (past && past.batch !== input.batch) throw new InvalidOptionError('input.batch', `${input.batch} rows, but the cache holds ${past.batch}`);
      const { batch, length } = input;
      const mask = input.attentionMask ?? new Uint8Array(batch * length).fill(1);
      const { ids: posIds, next } = positionIds(mask, batch, length, past?.nextPosition);
      for (let b = 0; b < batch; b++) {
        if (next[b]! > l.contextLength) {
          throw new InvalidOptionError('input.length', `row ${b} reaches position ${next[b]}, beyond the context length ${l.contextLength}`, { fix: 'shorten the sequence or raise model.language.contextLength' });
        }
      }
      const keyMask = new Uint8Array(batch * (pastLen + length));
      for (let b = 0; b < batch; b++) {
        if (past) keyMask.set(past.keyMask.subarray(b * pastLen, (b + 1) * pastLen), b * (pastLen + length));
        keyMask.set(mask.subarray(b * length, (b + 1) * length), b * (pastLen + length) + pastLen);
      }
      const rotary = usesRotary(cfg) ? rotaryTables(posIds, l.width, l.heads, l.rotaryFraction) : null;
      let x = embedTokens(store, tf.tensor1d(input.ids, 'int32'), rotary ? null : tf.tensor1d(posIds, 'int32'));
      if (input.images && input.imagePositions) x = placeImages(input, x);
      const bias = attentionBias(keyMask, batch, pastLen, length);
      const r = runDecoder(store, cfg, x, { batch, length, bias, past, wantCache: options.wantCache === true, rotary });
      if (!options.wantCache) return { hidden: r.hidden };
      return { hidden: r.hidden, cache: { batch, length: pastLen + length, layers: r.layers!, keyMask, nextPosition: next } };
    },
    lmLogits(hidden) {
      if (!cfg.heads.includes('lm')) throw new InvalidOptionError('model.heads', 'this model has no "lm" head');
      return lmLogits(store, cfg, hidden);
    },
    rewardScores(hidden, input) {
      if (!store.has('head.reward.weight')) throw new InvalidOptionError('model.heads', 'this model has no "reward" head');
      const weights = rewardPoolingWeights(input.attentionMask, input.batch, input.length, cfg.rewardPooling, input.responseMask);
      return cfg.rewardLikelihood
        ? likelihoodRewardScores(store, cfg, hidden, input.ids, input.batch, input.length, weights, input.factMatch)
        : rewardScores(store, hidden, input.batch, input.length, weights);
    },
    values(hidden, input) {
      if (!store.has('head.value.weight')) throw new InvalidOptionError('model.heads', 'this model has no "value" head');
      return tokenValues(store, hidden, input.batch, input.length);
    },
    addHead(name, options = {}) {
      if (store.has(`head.${name}.weight`)) return;
      addScalarHead(store, name, l.width, options.std ?? (name === 'value' ? 0 : scalarHeadStd(cfg)));
      cfg.heads.push(name);
    },
    dispose: () => store.dispose(),
  };
  return model;
}
