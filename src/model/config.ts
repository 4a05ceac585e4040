/**
 * Model sizes. One config describes the whole multimodal model (vision encoder, projector,
 * language model, heads); it is saved as `config.json` beside the weights.
 */
import { InvalidOptionError } from '../errors.ts';

export type HeadName = 'lm' | 'reward' | 'value';

export type PositionEncoding = 'learned' | 'rotary';
export const POSITION_ENCODINGS: readonly PositionEncoding[] = ['learned', 'rotary'];

/** See ModelConfig.initStd. */
export type InitStd = number | 'fan-in';

export interface VisionConfig {
  /** Square input side in pixels (images are padded to square, then resized to this). */
  imageSize: number;
  /** Square patch side in pixels; imageSize must be a multiple. */
  patchSize: number;
  width: number;
  layers: number;
  heads: number;
  /** MLP hidden width = mlpRatio x width. */
  mlpRatio: number;
}

export interface LanguageConfig {
  vocabSize: number;
  width: number;
  layers: number;
  heads: number;
  mlpRatio: number;
  /** Longest sequence (prompt + image tokens + response). */
  contextLength: number;
  /**
   * How tokens know their position: 'learned' (absent = 'learned'): a learned table added to the
   * token embeddings, as GPT-2 and LLaVA's first models; 'rotary': RoPE on queries and keys, as
   * LLaMA/Vicuna (see rotary.ts for why it matters here).
   */
  positions?: PositionEncoding;
  /**
   * Share of each head's rotary channel pairs that rotate (absent = 1: all). The rest carry no
   * position, so a query can match a key by content alone at any distance (GPT-NeoX's rotary_pct,
   * 0.25 there). The rotating pairs keep LLaMA's frequency spread over their own count.
   */
  rotaryFraction?: number;
  /** Share the token embedding with the LM head (transposed). */
  tieEmbeddings: boolean;
}

export interface ModelConfig {
  /** Format marker for config.json. */
  kind: 'factflow-llava';
  version: 1;
  vision: VisionConfig;
  language: LanguageConfig;
  /** Which heads the model carries (policy: lm; reward model: reward; value model: value). */
  heads: HeadName[];
  /**
   * Weight initialisation. 'fan-in' (default): every matrix N(0, 1/fan_in), embeddings
   * N(0, 1/width). A number: that standard deviation for every matrix and embedding (GPT-2 uses
   * 0.02 at width 768). Either way residual outputs are scaled down by sqrt(2 x layers).
   */
  initStd: InitStd;
  layerNormEps: number;
  /**
   * MLP activation of every block. relu by default: it fuses into the matmul kernel, while gelu
   * costs two transcendental passes (erf forward, exp backward) that are slow on wasm.
   */
  activation: 'relu' | 'gelu';
  /**
   * Which positions the reward head reads. 'last' (absent = 'last'): the last real token, as
   * LLaVA-RLHF. 'mean': the mean of the head's score over every real token, so each response token
   * adds its own evidence directly; a small model trained from scratch learns from that much
   * sooner than from one position that must first gather everything (see README). 'response': the
   * same mean over the response's tokens only (ModelInput.responseMask), so the image, prompt and
   * captions, identical in both responses of a pair, do not dilute the difference.
   * 'response-sum': the sum over the response's tokens, so each true or invented object mentioned
   * adds its own amount (the annotator's rule counts them).
   */
  rewardPooling?: RewardPooling;
  /**
   * The reward head also weighs each pooled token's log-likelihood under the trunk's own LM head
   * (which the reward model then keeps): score_t = u.h_t + c + (v.h_t + d) * log p(token_t | before).
   * An SFT trunk that sees gives an invented object a low likelihood; the head learns which tokens'
   * likelihoods count (colour and shape words) and by how much. Absent = false (LLaVA-RLHF's head).
   */
  rewardLikelihood?: boolean;
  /**
   * With rewardLikelihood: each pooled token also scores (w.h_t + g) * match_t, where match_t is 1
   * when the token occurs in the reward prompt's captions (ModelInput.factMatch). Fact-RLHF gives a
   * 13B reward model the captions as text and lets it learn to check the response against them; a
   * small trunk trained on ~1,000 pairs does not learn that reading, so the match is given as an
   * input and the head learns which matched tokens count. Absent = false.
   */
  rewardFactMatch?: boolean;
}

export type RewardPooling = 'last' | 'mean' | 'response' | 'response-sum';
export const REWARD_POOLINGS: readonly RewardPooling[] = ['last', 'mean', 'response', 'response-sum'];

export type ModelConfigInput = {
  vision?: Partial<VisionConfig>;
  language?: Partial<LanguageConfig>;
  heads?: HeadName[];
  initStd?: InitStd;
  layerNormEps?: number;
  activation?: 'relu' | 'gelu';
  rewardPooling?: RewardPooling;
  rewardLikelihood?: boolean;
  rewardFactMatch?: boolean;
};

/**
 * The default, and what `sft-train` trains unless told otherwise: trains in minutes on 2 CPU
 * cores (wasm) on the shapes world. 64 px images (the world's size) in 16 px patches give 16
 * visual tokens; vocabSize is replaced by the tokenizer's. 8 language-model heads of 16: more,
 * narrower heads beat 4 of 32 in every pair measured (same parameters; README, "Where the
 * reproduction stands").
 */
export const DEFAULT_MODEL_CONFIG: ModelConfig = Object.freeze({
  kind: 'factflow-llava',
  version: 1,
  vision: { imageSize: 64, patchSize: 16, width: 96, layers: 2, heads: 4, mlpRatio: 4 },
  language: { vocabSize: 512, width: 128, layers: 2, heads: 8, mlpRatio: 4, contextLength: 256, tieEmbeddings: false, positions: 'rotary' },
  heads: ['lm'],
  initStd: 'fan-in',
  layerNormEps: 1e-5,
  activation: 'relu',
}) as ModelConfig;

/** A tiny model for tests: every code path, milliseconds per step. */
export const TINY_MODEL_CONFIG: ModelConfig = Object.freeze({
  kind: 'factflow-llava',
  version: 1,
  vision: { imageSize: 16, patchSize: 8, width: 16, layers: 2, heads: 2, mlpRatio: 2 },
  language: { vocabSize: 40, width: 16, layers: 2, heads: 2, mlpRatio: 2, contextLength: 48, tieEmbeddings: false, positions: 'learned' },
  heads: ['lm', 'reward', 'value'],
  initStd: 0.02,
  layerNormEps: 1e-5,
  activation: 'gelu',
}) as ModelConfig;

/**
 * Initial standard deviation of a weight matrix with `fanIn` inputs (an embedding: fanIn = its
 * width). With 'fan-in' each projection starts at unit gain; the GPT-2 constant 0.02 is ~4x too
 * small at width 128, where attention then starts flat and learns to compare tokens only after a
 * long plateau (measured: text yes/no equality at chance for 2,000 steps, solved in 250 here).
 */
export function initStdFor(config: Pick<ModelConfig, 'initStd'>, fanIn: number): number {
  return config.initStd === 'fan-in' ? 1 / Math.sqrt(fanIn) : config.initStd;
}

/** How many of a head's headDim / 2 rotary channel pairs rotate, for a rotaryFraction. */
export function rotatedPairs(headDim: number, fraction = 1): number {
  return Math.round((headDim / 2) * fraction);
}

/** Number of visual tokens the projector emits per image. */
export function imageTokenCount(config: { vision: VisionConfig }): number {
  const side = config.vision.imageSize / config.vision.patchSize;
  return side * side;
}

function positiveInt(path: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new InvalidOptionError(path, `must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Merges `input` over `base` (default: DEFAULT_MODEL_CONFIG) and checks every field, naming
 * the bad one (`model.vision.patchSize`, ...).
 */
export function resolveModelConfig(input: ModelConfigInput = {}, base: ModelConfig = DEFAULT_MODEL_CONFIG, path = 'model'): ModelConfig {
  if (input === null || typeof input !== 'object') throw new InvalidOptionError(path, 'must be an object');
  const vision: VisionConfig = { ...base.vision, ...(input.vision ?? {}) };
  const language: LanguageConfig = { ...base.language, ...(input.language ?? {}) };
  for (const k of ['imageSize', 'patchSize', 'width', 'layers', 'heads', 'mlpRatio'] as const) positiveInt(`${path}.vision.${k}`, vision[k]);
  for (const k of ['vocabSize', 'width', 'layers', 'heads', 'mlpRatio', 'contextLength'] as const) positiveInt(`${path}.language.${k}`, language[k]);
  if (vision.imageSize % vision.patchSize !== 0) {
    throw new InvalidOptionError(`${path}.vision.imageSize`, `${vision.imageSize} is not a multiple of patchSize ${vision.patchSize}`);
  }
  if (vision.width % vision.heads !== 0) throw new InvalidOptionError(`${path}.vision.heads`, `width ${vision.width} is not divisible by ${vision.heads} heads`);
  if (language.width % language.heads !== 0) throw new InvalidOptionError(`${path}.language.heads`, `width ${language.width} is not divisible by ${language.heads} heads`);
  if (typeof language.tieEmbeddings !== 'boolean') throw new InvalidOptionError(`${path}.language.tieEmbeddings`, 'must be true or false');
  language.positions ??= 'learned';
  if (!POSITION_ENCODINGS.includes(language.positions)) {
    throw new InvalidOptionError(`${path}.language.positions`, `must be one of ${POSITION_ENCODINGS.join(', ')}, got ${JSON.stringify(language.positions)}`);
  }
  if (language.positions === 'rotary' && (language.width / language.heads) % 2 !== 0) {
    throw new InvalidOptionError(`${path}.language.heads`, `rotary positions need an even head width, got ${language.width / language.heads}`);
  }
  if (language.rotaryFraction !== undefined) {
    const f = language.rotaryFraction;
    if (typeof f !== 'number' || !(f > 0 && f <= 1)) throw new InvalidOptionError(`${path}.language.rotaryFraction`, `must be a number in (0, 1], got ${JSON.stringify(f)}`);
    if (language.positions !== 'rotary' && f < 1) throw new InvalidOptionError(`${path}.language.rotaryFraction`, `applies to rotary positions only, but positions is ${JSON.stringify(language.positions)}`, { fix: 'drop rotaryFraction or use positions: rotary' });
    if (language.positions === 'rotary' && rotatedPairs(language.width / language.heads, f) < 1) {
      throw new InvalidOptionError(`${path}.language.rotaryFraction`, `${f} rotates no channel pair of a ${language.width / language.heads}-wide head; use at least ${2 / (language.width / language.heads)}`);
    }
  }
  const heads = input.heads ?? base.heads;
  if (!Array.isArray(heads) || heads.length === 0 || heads.some((h) => h !== 'lm' && h !== 'reward' && h !== 'value')) {
    throw new InvalidOptionError(`${path}.heads`, `must be a non-empty list of "lm", "reward", "value", got ${JSON.stringify(heads)}`);
  }
  const initStd = input.initStd ?? base.initStd;
  if (initStd !== 'fan-in' && (typeof initStd !== 'number' || !(initStd > 0))) throw new InvalidOptionError(`${path}.initStd`, `must be "fan-in" or a positive number, got ${JSON.stringify(initStd)}`);
  const layerNormEps = input.layerNormEps ?? base.layerNormEps;
  if (typeof layerNormEps !== 'number' || !(layerNormEps > 0)) throw new InvalidOptionError(`${path}.layerNormEps`, 'must be a positive number');
  const activation = input.activation ?? base.activation;
  if (activation !== 'relu' && activation !== 'gelu') throw new InvalidOptionError(`${path}.activation`, `must be "relu" or "gelu", got ${JSON.stringify(activation)}`);
  if (imageTokenCount({ vision }) >= language.contextLength) {
    throw new InvalidOptionError(`${path}.language.contextLength`, `${language.contextLength} leaves no room after ${imageTokenCount({ vision })} image tokens`);
  }
  const rewardPooling = input.rewardPooling ?? base.rewardPooling;
  if (rewardPooling !== undefined && !REWARD_POOLINGS.includes(rewardPooling)) {
    throw new InvalidOptionError(`${path}.rewardPooling`, `must be one of ${REWARD_POOLINGS.join(', ')}, got ${JSON.stringify(rewardPooling)}`);
  }
  const rewardLikelihood = input.rewardLikelihood ?? base.rewardLikelihood;
  if (rewardLikelihood !== undefined && typeof rewardLikelihood !== 'boolean') throw new InvalidOptionError(`${path}.rewardLikelihood`, `must be true or false, got ${JSON.stringify(rewardLikelihood)}`);
  const rewardFactMatch = input.rewardFactMatch ?? base.rewardFactMatch;
  if (rewardFactMatch !== undefined && typeof rewardFactMatch !== 'boolean') throw new InvalidOptionError(`${path}.rewardFactMatch`, `must be true or false, got ${JSON.stringify(rewardFactMatch)}`);
  if (rewardFactMatch && !rewardLikelihood) throw new InvalidOptionError(`${path}.rewardFactMatch`, 'the caption-match term is part of the likelihood-reading reward head', { fix: 'set rewardLikelihood true too, or rewardFactMatch false' });
  const uniqueHeads = [...new Set(heads)];
  if (rewardLikelihood && uniqueHeads.includes('reward') && !uniqueHeads.includes('lm')) {
    throw new InvalidOptionError(`${path}.heads`, 'a reward head that reads token likelihoods (rewardLikelihood) needs the "lm" head too', { fix: 'add "lm" to heads, or set rewardLikelihood false' });
  }
  return {
    kind: 'factflow-llava', version: 1, vision, language, heads: uniqueHeads, initStd, layerNormEps, activation,
    ...(rewardPooling ? { rewardPooling } : {}),
    ...(rewardLikelihood ? { rewardLikelihood } : {}),
    ...(rewardFactMatch ? { rewardFactMatch } : {}),
  };
}

/**
 * Where two configs differ in what the weights mean (every field but `initStd`, which only
 * matters before training): `language.heads 4 -> 8`, ... Empty when they describe the same model.
 * Head counts matter though the weights' shapes do not change with them: a checkpoint trained with
 * 4 heads loads into an 8-head model without complaint and computes something else.
 */
export function configDifferences(saved: ModelConfig, current: ModelConfig): string[] {
  const out: string[] = [];
  const show = (v: unknown): string => (v === undefined ? '(absent)' : typeof v === 'string' ? v : JSON.stringify(v));
  const compare = (where: string, a: unknown, b: unknown): void => {
    if (show(a) !== show(b)) out.push(`${where} ${show(a)} -> ${show(b)}`);
  };
  for (const k of Object.keys({ ...saved.vision, ...current.vision }) as (keyof VisionConfig)[]) compare(`vision.${k}`, saved.vision[k], current.vision[k]);
  for (const k of Object.keys({ ...saved.language, ...current.language }) as (keyof LanguageConfig)[]) compare(`language.${k}`, saved.language[k], current.language[k]);
  for (const k of ['heads', 'layerNormEps', 'activation', 'rewardPooling', 'rewardLikelihood', 'rewardFactMatch'] as const) compare(k, saved[k], current[k]);
  return out;
}
