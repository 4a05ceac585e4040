/**
 * PPO's reward-scoring stage: batches of rollouts in, the same batches out with every reward term
 * added. The reward model reads the prompt, the response and, for Fact-RLHF (`facts: true`), the
 * record's captions (src/model/reward-prompt.ts, the same prompt it was trained on); then
 * `shapeReward` (src/rl/reward-shaping.ts) adds the length term, the correctness bonus by
 * caption_type and the no-EOS penalty. Each term stays in the record so a rollout shows why its
 * reward is what it is:
 *
 *   reward_model        the reward model's score
 *   reward_length       -lengthCoef * response_tokens / max_response_tokens * length_bonus
 *   reward_correctness  the caption_type bonus
 *   reward_no_eos       the no-EOS penalty (0 when the response ended with </s>)
 *   reward_total        their sum (not yet scaled: PPO scales by 10 before GAE, reward-scaling.ts)
 *
 * A record whose prompt cannot be built, whose fields are not numbers, or whose score is not
 * finite is rejected with the reason and left out of its batch (it must not update the policy).
 * `out` counts batches and `rejected` records, so the stage carries `conserves: false`.
 */
import { BadRecordError, FactflowError, InvalidOptionError } from '../src/errors.ts';
import type { Stage } from '../src/stream/stage.ts';
import type { Turn } from '../src/model/chat-template.ts';
import { createImageLoader, type ImageLoader } from '../src/model/image-input.ts';
import type { MultimodalModel } from '../src/model/multimodal-model.ts';
import { encodeRewardItem, scoreExamples, type RewardItem, type ScoreStats } from '../src/model/reward-model.ts';
import type { FactsPlacement } from '../src/model/reward-prompt.ts';
import type { TextTokenizer } from '../src/model/tokenizer.ts';
import { resolveShapingCoefs, shapeReward, type ShapingCoefs } from '../src/rl/reward-shaping.ts';

/** The fields of a rollout the stage reads (schemas/rollout.ts has them all). */
export interface RewardScoreInput {
  id: string;
  image: string | null;
  /** Prompt turns (one human turn for RL prompts). */
  conversations: Turn[];
  response: string;
  response_tokens: number;
  ended_with_eos: boolean;
  caption_type: number;
  length_bonus?: number;
  facts?: string[];
}

export interface RewardTerms {
  reward_model: number;
  reward_length: number;
  reward_correctness: number;
  reward_no_eos: number;
  reward_total: number;
}

export type Scored<T> = T & RewardTerms;

export interface RewardScoreOptions {
  /** A reward model (loadRewardModel) and its tokenizer. */
  model: MultimodalModel;
  tokenizer: TextTokenizer;
  /** Fact-RLHF: the reward model reads the record's facts. Must match how it was trained. */
  facts: boolean;
  /** Where the captions go in the prompt; as the reward model was trained (loadRewardModel's factsAt). Default 'end'. */
  factsAt?: FactsPlacement;
  /** The policy's response-token limit (the length term's denominator). */
  maxResponseTokens: number;
  /** Image loader, or the folder the records' image paths are relative to. */
  images?: ImageLoader;
  imageRoot?: string;
  /** Shaping coefficients (defaults: DESIGN.md / LLaVA-RLHF). */
  shaping?: Partial<ShapingCoefs>;
  /** Caption-order seed; default the run seed. */
  seed?: number;
  /** Sequences per reward-model forward pass. Default 16. */
  batchSize?: number;
  /** Longest reward prompt; default the model's context length. */
  maxLength?: number;
  /**
   * Standardise the reward-model score as (score - mean) / std before shaping (loadRewardModel's
   * scoreStats). Why: a small reward model's scores spread by ~0.2 while the length and no-EOS
   * terms spread by ~2; unscaled, PPO would not see the reward model at all. Default: raw scores.
   */
  normalize?: ScoreStats | null;
  name?: string;
}

function finiteField(r: Record<string, unknown>, field: string): number {
  const v = r[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRecordError(`field "${field}" must be a finite number, got ${String(v)}`);
  return v;
}

export function rewardScore<T extends RewardScoreInput>(options: RewardScoreOptions): Stage<T[], Scored<T>[]> & { readonly conserves: false } {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'expected an object');
  const { model, tokenizer } = options;
  if (!model || typeof model.forward !== 'function') throw new InvalidOptionError('model', 'expected a reward model (loadRewardModel)');
  if (!model.params.has('head.reward.weight')) throw new InvalidOptionError('model', 'the model has no "reward" head', { fix: 'load the checkpoint written by pipelines/reward-train.ts' });
  if (!tokenizer || typeof tokenizer.encode !== 'function') throw new InvalidOptionError('tokenizer', 'expected a TextTokenizer');
  if (typeof options.facts !== 'boolean') throw new InvalidOptionError('facts', `must be true or false, got ${JSON.stringify(options.facts)}`);
  const maxTokens = options.maxResponseTokens;
  if (!Number.isInteger(maxTokens) || maxTokens <= 0) throw new InvalidOptionError('maxResponseTokens', `must be a positive integer, got ${JSON.stringify(maxTokens)}`);
  const coefs = resolveShapingCoefs(options.shaping ?? {}, 'shaping');
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidOptionError('batchSize', `must be a positive integer, got ${JSON.stringify(batchSize)}`);
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new InvalidOptionError('seed', `must be an integer, got ${options.seed}`);
  const normalize = options.normalize ?? null;
  if (normalize && !(Number.isFinite(normalize.mean) && Number.isFinite(normalize.std) && normalize.std > 0)) {
    throw new InvalidOptionError('normalize', `needs a finite mean and a positive std, got ${JSON.stringify(normalize)}`);
  }
  if (options.maxLength !== undefined && !(Number.isInteger(options.maxLength) && options.maxLength > 0)) {
    throw new InvalidOptionError('maxLength', `must be a positive integer, got ${JSON.stringify(options.maxLength)}`);
  }
  if (!options.images && (typeof options.imageRoot !== 'string' || options.imageRoot === '')) {
    throw new InvalidOptionError('imageRoot', 'give an image loader (images) or the image folder (imageRoot)');
  }
  const images = options.images ?? createImageLoader({ size: model.config.vision.imageSize, root: options.imageRoot });
  const name = options.name ?? 'reward-score';

  return {
    name,
    conserves: false,
    async *run(input, ctx) {
      const settings = { facts: options.facts, factsAt: options.factsAt, seed: options.seed ?? ctx.seed, maxLength: options.maxLength };
      for await (const batch of input) {
        // encode every record; the ones that cannot be scored are rejected here
        const kept: { record: T; example: ReturnType<typeof encodeRewardItem> }[] = [];
        for (const record of batch) {
          try {
            if (typeof record.response !== 'string') throw new BadRecordError('field "response" must be a string');
            finiteField(record as unknown as Record<string, unknown>, 'response_tokens');
            if (record.length_bonus !== undefined) finiteField(record as unknown as Record<string, unknown>, 'length_bonus');
            const pixels = record.image === null || record.image === undefined ? null : await images.load(record.image);
            const item: RewardItem = {
              id: record.id, pixels, turns: record.conversations, response: record.response,
              facts: record.facts, endedWithEos: record.ended_with_eos !== false,
            };
            kept.push({ record, example: encodeRewardItem(model, tokenizer, item, settings) });
          } catch (e) {
            if (!(e instanceof FactflowError)) throw e;
            ctx.reject(record, e);
          }
        }
        const scores = await scoreExamples(model, tokenizer, kept.map((k) => k.example), batchSize);
        const out: Scored<T>[] = [];
        kept.forEach(({ record }, i) => {
          try {
            const score = scores[i]!;
            if (!Number.isFinite(score)) throw new BadRecordError(`the reward model scored the response ${score}`, { fix: 'check the reward model checkpoint (non-finite weights?)' });
            const shaped = shapeReward({
              rewardModel: normalize ? (score - normalize.mean) / normalize.std : score,
              responseTokens: record.response_tokens,
              maxResponseTokens: maxTokens,
              lengthBonus: record.length_bonus ?? 1,
              captionType: record.caption_type,
              responseText: record.response,
              endedWithEos: record.ended_with_eos !== false,
            }, coefs);
            out.push({
              ...record,
              reward_model: shaped.terms.reward_model,
              reward_length: shaped.terms.length,
              reward_correctness: shaped.terms.correctness,
              reward_no_eos: shaped.terms.no_eos,
              reward_total: shaped.total,
            });
          } catch (e) {
            if (!(e instanceof FactflowError)) throw e;
            ctx.reject(record, e);
          }
        });
        if (out.length > 0) yield out;
      }
    },
  };
}
