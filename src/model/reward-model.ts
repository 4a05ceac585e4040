/**
 * The reward model at work: loading one from a checkpoint, turning (image, prompt, response,
 * facts) into reward-prompt sequences, scoring them in length-sorted batches, and the pairwise
 * loss it is trained with. The trainer (sinks/reward-trainer.ts) and the PPO reward-score stage
 * (transforms/reward-score.ts) share these, so a response is scored exactly as it was trained.
 */
import * as tf from '@tensorflow/tfjs';
import { CheckpointError, FactflowError, InvalidOptionError } from '../errors.ts';
import type { Turn } from './chat-template.ts';
import { loadModel, type LoadedCheckpoint } from './checkpoint.ts';
import { collate, type TrainExample } from './collate.ts';
import { imageTokenCount } from './config.ts';
import type { ModelInput, MultimodalModel } from './multimodal-model.ts';
import { encodeRewardPrompt, type FactsPlacement } from './reward-prompt.ts';
import type { TextTokenizer } from './tokenizer.ts';

/** One response to score. */
export interface RewardItem {
  /** Record id (seeds the caption order). */
  id: string;
  /** Normalised HWC pixels (image-input.ts), or null for a text-only prompt. */
  pixels: Float32Array | null;
  /** Prompt turns, ending with the human turn the response answers. */
  turns: readonly Turn[];
  response: string;
  facts?: readonly string[];
  /** Default true; a rollout cut at the token limit has no </s>. */
  endedWithEos?: boolean;
}

export interface RewardPromptSettings {
  /** Fact-RLHF (captions in the prompt) or vanilla RLHF. */
  facts: boolean;
  seed: number;
  /** Longest sequence; default (and at most) the model's context length. */
  maxLength?: number;
  /** At most this many captions. Default: all that fit. */
  maxFacts?: number;
  /** Where the captions go (reward-prompt.ts); default 'end'. */
  factsAt?: FactsPlacement;
}

export interface ScoreOptions extends RewardPromptSettings {
  /** Sequences per forward pass. Default 16. */
  batchSize?: number;
}

export interface LoadedRewardModel {
  model: MultimodalModel;
  tokenizer: TextTokenizer;
  checkpoint: LoadedCheckpoint;
  /** Whether it was trained with facts (trainer_state.json; null when not recorded). */
  facts: boolean | null;
  /** Where its prompts had the captions (trainer_state.json; 'end' when not recorded, as before the option). */
  factsAt: FactsPlacement;
  /** Mean and sd of its scores on the held-out responses (trainer_state.json), null when not recorded. */
  scoreStats: ScoreStats | null;
}

export interface ScoreStats {
  mean: number;
  std: number;
}

function scoreStatsOf(state: unknown): ScoreStats | null {
  const h = (state as { heldout?: { score_mean?: unknown; score_std?: unknown } | null }).heldout;
  const mean = h?.score_mean;
  const std = h?.score_std;
  return typeof mean === 'number' && typeof std === 'number' && Number.isFinite(mean) && std > 0 ? { mean, std } : null;
}

/**
 * Loads a trained reward model (a checkpoint whose config has the `reward` head). The trunk and
 * head must both be present; CheckpointError names the folder otherwise.
 */
export async function loadRewardModel(dir: string, options: { label?: string } = {}): Promise<LoadedRewardModel> {
  const { model, checkpoint } = await loadModel(dir, { label: options.label ?? 'reward' });
  if (!checkpoint.config.heads.includes('reward') || !checkpoint.weights.has('head.reward.weight')) {
    model.dispose();
    throw new CheckpointError(`${dir} is not a reward model: its config has heads [${checkpoint.config.heads.join(', ')}] and no trained "reward" head`, {
      file: dir,
      fix: 'point at the checkpoint/ folder written by pipelines/reward-train.ts',
    });
  }
  const facts = (checkpoint.state as { facts?: unknown }).facts;
  const factsAt = (checkpoint.state as { facts_at?: unknown }).facts_at;
  return {
    model, tokenizer: checkpoint.tokenizer, checkpoint,
    facts: typeof facts === 'boolean' ? facts : null,
    factsAt: factsAt === 'start' ? 'start' : 'end',
    scoreStats: scoreStatsOf(checkpoint.state),
  };
}

function maxLengthOf(model: MultimodalModel, settings: RewardPromptSettings): number {
  const ctx = model.config.language.contextLength;
  const max = settings.maxLength ?? ctx;
  if (!Number.isInteger(max) || max <= 0) throw new InvalidOptionError('maxLength', `must be a positive integer, got ${String(max)}`);
  return Math.min(max, ctx);
}

function encodeItem(model: MultimodalModel, tok: TextTokenizer, item: RewardItem, settings: RewardPromptSettings): { example: TrainExample; factsKept: number } {
  const imageTokens = item.pixels ? imageTokenCount(model.config) : 0;
  const enc = encodeRewardPrompt(
    tok,
    { id: item.id, turns: item.turns, response: item.response, facts: item.facts, endedWithEos: item.endedWithEos },
    { facts: settings.facts, seed: settings.seed, imageTokens, maxLength: maxLengthOf(model, settings), maxFacts: settings.maxFacts, factsAt: settings.factsAt },
  );
  const example = {
    id: item.id,
    ids: Int32Array.from(enc.ids),
    // no loss here: the mask marks the response, which the response poolings read (rewardBatch)
    lossMask: responseMaskOf(enc.ids.length, enc.response),
    imagePositions: Int32Array.from(enc.imagePositions),
    pixels: item.pixels,
    factMatch: factMatchOf(enc.ids.length, enc.response, enc.factMatch),
  };
  return { example, factsKept: enc.factsKept };
}

/** One reward-prompt sequence as a (loss-free) example that `collate` pads into a batch. */
export function encodeRewardItem(model: MultimodalModel, tok: TextTokenizer, item: RewardItem, settings: RewardPromptSettings): TrainExample {
  return encodeItem(model, tok, item, settings).example;
}

/**
 * Both responses of a pair with the same captions: when the context cuts captions, the pair
 * keeps as many as fit the longer prompt, so the two prompts differ only in the response.
 */
export function encodeRewardPair(model: MultimodalModel, tok: TextTokenizer, a: RewardItem, b: RewardItem, settings: RewardPromptSettings): [TrainExample, TrainExample] {
  const ea = encodeItem(model, tok, a, settings);
  const eb = encodeItem(model, tok, b, settings);
  if (ea.factsKept === eb.factsKept) return [ea.example, eb.example];
  const maxFacts = Math.min(ea.factsKept, eb.factsKept);
  return ea.factsKept > maxFacts
    ? [encodeItem(model, tok, a, { ...settings, maxFacts }).example, eb.example]
    : [ea.example, encodeItem(model, tok, b, { ...settings, maxFacts }).example];
}

function factMatchOf(length: number, [start]: readonly [number, number], match: readonly number[]): Uint8Array {
  const m = new Uint8Array(length);
  m.set(match, start);
  return m;
}

function responseMaskOf(length: number, [start, end]: readonly [number, number]): Uint8Array {
  const m = new Uint8Array(length);
  m.fill(1, start, end);
  return m;
}

/** Pads examples into one model input (right padding); `responseMask` marks each response. */
export function rewardBatch(model: MultimodalModel, tok: TextTokenizer, examples: readonly TrainExample[]): ModelInput {
  const v = model.config.vision;
  const b = collate(examples, { padId: tok.padId, imageTokens: imageTokenCount(model.config), pixelsPerImage: v.imageSize * v.imageSize * 3 });
  return { batch: b.batch, length: b.length, ids: b.ids, attentionMask: b.attentionMask, images: b.images, imagePositions: b.imagePositions, responseMask: Uint8Array.from(b.lossMask), factMatch: b.factMatch ?? null };
}

/** Scores [batch] of a padded batch (a tensor, inside the caller's tidy / gradient scope). */
export function rewardForward(model: MultimodalModel, input: ModelInput): tf.Tensor1D {
  const { hidden } = model.forward(input);
  return model.rewardScores(hidden, input);
}

/**
 * Reward scores of encoded sequences, in input order. Sequences are sorted by length and scored
 * `batchSize` at a time, so little compute goes to padding.
 */
export async function scoreExamples(model: MultimodalModel, tok: TextTokenizer, examples: readonly TrainExample[], batchSize = 16): Promise<number[]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidOptionError('batchSize', `must be a positive integer, got ${String(batchSize)}`);
  const order = examples.map((e, i) => ({ i, len: e.ids.length })).sort((a, b) => a.len - b.len || a.i - b.i);
  const out = new Array<number>(examples.length);
  for (let s = 0; s < order.length; s += batchSize) {
    const chunk = order.slice(s, s + batchSize);
    const input = rewardBatch(model, tok, chunk.map((c) => examples[c.i]!));
    const scores = tf.tidy(() => rewardForward(model, input));
    const values = await scores.data();
    scores.dispose();
    chunk.forEach((c, k) => { out[c.i] = values[k]!; });
  }
  return out;
}

/**
 * Reward scores of many responses, in input order (batched by length, see scoreExamples).
 * Encoding errors (an over-long prompt, a bad turn order) throw BadRecordError naming the item.
 */
export async function scoreResponses(model: MultimodalModel, tok: TextTokenizer, items: readonly RewardItem[], options: ScoreOptions): Promise<number[]> {
  const examples = items.map((item, i) => {
    try {
      return encodeRewardItem(model, tok, item, options);
    } catch (e) {
      if (e instanceof FactflowError) e.locate({ recordIndex: i });
      throw e;
    }
  });
  return scoreExamples(model, tok, examples, options.batchSize ?? 16);
}

/** Reference setting: weight of the |mean(r_0 + r_1)| term that keeps scores centred at 0. */
export const REWARD_CENTERING_COEF = 1e-3;

/**
 * The pairwise loss of LLaVA-RLHF's reward model: mean over pairs of
 * -log sigmoid(r_chosen - r_rejected), plus centeringCoef * |mean(r_chosen + r_rejected)|.
 */
export function pairwiseRewardLoss(chosen: tf.Tensor1D, rejected: tf.Tensor1D, centeringCoef = REWARD_CENTERING_COEF): tf.Scalar {
  // -log sigmoid(d) = softplus(-d) = relu(-d) + log1p(exp(-|d|)): stable for any d, and built from
  // plain ops (tf.logSigmoid's custom gradient fails inside variableGrads on wasm)
  const d = tf.sub(chosen, rejected);
  const ranking = tf.mean(tf.add(tf.relu(tf.neg(d)), tf.log1p(tf.exp(tf.neg(tf.abs(d))))));
  if (centeringCoef === 0) return ranking as tf.Scalar;
  return tf.add(ranking, tf.mul(centeringCoef, tf.abs(tf.mean(tf.add(chosen, rejected))))) as tf.Scalar;
}
