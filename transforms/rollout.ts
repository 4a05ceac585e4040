/**
 * Rollout: batches of RL prompts -> responses sampled from the current policy -> rollout records
 * (response text and ids, per-token log-probs, EOS flag, policy version).
 *
 * - Sampling follows LLaVA-RLHF: temperature 1, top-p 1 by default, at most
 *   `maxResponseTokens` new tokens. Log-probs are the policy's at temperature 1 (what PPO needs).
 * - A prompt longer than `maxPromptTokens` (default: context length - max response tokens, so every
 *   response has its full budget) is rejected with its length; so is one that cannot be encoded
 *   or whose image cannot be read.
 * - Output batches are regrouped to exactly `batchSize` prompts (the last may be short), so one
 *   output batch is one PPO step whatever was rejected. Batch j is sampled with an Rng derived
 *   from (run seed, j) and, when a trainer shares the policy, only once the trainer has finished
 *   j steps (see live-policy.ts): the same seed gives the same rollouts, resumed or not.
 * - On resume the batches of steps already trained are recomputed as prompt groups but not
 *   sampled nor emitted (nor rejected again).
 * - With `reference` the stage also fills `ref_logprobs` and `kl_mean`, so the rollout shards
 *   show the KL of each response; the trainer then reuses them.
 *
 * Reward fields are NaN until a scoring stage fills them; `values` stays empty (the trainer's).
 */
import { performance } from 'node:perf_hooks';
import type { RlPrompt } from '../schemas/rl-prompt.ts';
import type { Rollout } from '../schemas/rollout.ts';
import { BadInputError, BadRecordError, FactflowError, InvalidOptionError } from '../src/errors.ts';
import { generate, type GenerationRequest } from '../src/model/generate.ts';
import type { EncodedPrompt, LivePolicy } from '../src/model/live-policy.ts';
import type { MultimodalModel } from '../src/model/multimodal-model.ts';
import { checkKlEstimator, klPerToken, type KlEstimator } from '../src/rl/kl.ts';
import { responseBatch, responseLogprobs } from '../src/rl/response-batch.ts';
import { deriveSeed, Rng } from '../src/stream/random.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';

/** A rollout as it travels to the trainer: the schema fields plus the sampled token ids. */
export interface RolloutRecord extends Rollout {
  /** Sampled ids (EOS included when generated). Not a schema field: stripped before shards. */
  response_ids: number[];
}

export interface RolloutOptions {
  policy: LivePolicy;
  /** Prompts per output batch (= rollouts per PPO step). */
  batchSize: number;
  maxResponseTokens: number;
  /** Longest prompt in tokens (image tokens included); default contextLength - maxResponseTokens. */
  maxPromptTokens?: number;
  /** Default 1 (LLaVA-RLHF). */
  temperature?: number;
  /** Default 1. */
  topP?: number;
  /** Default 0 (off). */
  topK?: number;
  /** Frozen reference model: fills ref_logprobs and kl_mean. */
  reference?: MultimodalModel;
  /** KL estimator for kl_mean (default k1-clamped, as the trainer). */
  klEstimator?: KlEstimator;
  /**
   * Fail after this many prompts in a row are rejected (default 1000): with a cycled prompt set
   * where nothing fits, the stage would otherwise reject forever.
   */
  maxConsecutiveRejects?: number;
  name?: string;
}

function positiveInt(option: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new InvalidOptionError(option, `must be a positive integer, got ${String(v)}`);
  return v;
}

interface Pending {
  prompt: RlPrompt;
  enc: EncodedPrompt;
}

export function rollout(options: RolloutOptions): Stage<readonly RlPrompt[], RolloutRecord[]> & { readonly conserves: false } {
  const { policy, reference } = options ?? ({} as RolloutOptions);
  if (!policy || typeof policy.encodeIds !== 'function') throw new InvalidOptionError('rollout.policy', 'must be a live policy (createLivePolicy)');
  const batchSize = positiveInt('rollout.batchSize', options.batchSize);
  const maxResponseTokens = positiveInt('rollout.maxResponseTokens', options.maxResponseTokens);
  const context = policy.model.config.language.contextLength;
  if (maxResponseTokens >= context) {
    throw new InvalidOptionError('rollout.maxResponseTokens', `${maxResponseTokens} leaves no room for a prompt in the context of ${context} tokens`);
  }
  const maxPromptTokens = options.maxPromptTokens === undefined ? context - maxResponseTokens : positiveInt('rollout.maxPromptTokens', options.maxPromptTokens);
  if (maxPromptTokens + maxResponseTokens > context) {
    throw new InvalidOptionError('rollout.maxPromptTokens', `${maxPromptTokens} + ${maxResponseTokens} response tokens exceed the context of ${context} tokens`, { fix: 'lower max_prompt_tokens or max_response_tokens' });
  }
  const temperature = options.temperature ?? 1;
  if (typeof temperature !== 'number' || !(temperature > 0) || !Number.isFinite(temperature)) throw new InvalidOptionError('rollout.temperature', `must be a positive number, got ${String(temperature)}`);
  const topP = options.topP ?? 1;
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1)) throw new InvalidOptionError('rollout.topP', `must be in (0, 1], got ${String(topP)}`);
  const topK = options.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0) throw new InvalidOptionError('rollout.topK', `must be a non-negative integer, got ${String(topK)}`);
  const estimator = checkKlEstimator(options.klEstimator ?? 'k1-clamped', 'rollout.klEstimator');
  if (reference && reference.config.language.vocabSize !== policy.model.config.language.vocabSize) {
    throw new InvalidOptionError('rollout.reference', 'has a different vocabulary from the policy', { fix: 'use the SFT checkpoint the policy started from' });
  }
  const maxConsecutiveRejects = options.maxConsecutiveRejects === undefined ? 1000 : positiveInt('rollout.maxConsecutiveRejects', options.maxConsecutiveRejects);
  const name = options.name ?? 'rollout';
  const tok = policy.tokenizer;

  /** The prompt's encoding, or the reason it cannot be used. */
  async function prepare(prompt: RlPrompt): Promise<EncodedPrompt | Error> {
    let ids: Omit<EncodedPrompt, 'pixels'>;
    try {
      ids = policy.encodeIds(prompt);
    } catch (e) {
      return e instanceof Error ? e : new BadRecordError(String(e));
    }
    if (ids.ids.length > maxPromptTokens) {
      return new BadRecordError(`prompt has ${ids.ids.length} tokens (${ids.imagePositions.length} of them image tokens), over the limit of ${maxPromptTokens}`, {
        fix: `shorten the prompt, lower max_response_tokens (${maxResponseTokens}) or raise the model's contextLength (${context})`,
      });
    }
    try {
      return await policy.encode(prompt);
    } catch (e) {
      if (e instanceof FactflowError) return e;
      throw e;
    }
  }

  async function sample(items: Pending[], step: number, ctx: StageContext): Promise<RolloutRecord[]> {
    const requests: GenerationRequest[] = items.map(({ enc }) => ({ ids: enc.ids, image: enc.pixels, imagePositions: enc.imagePositions }));
    const t0 = performance.now();
    const results = await generate(policy.model, requests, {
      maxNewTokens: maxResponseTokens, temperature, topP, topK, tokenizer: tok,
      rng: new Rng(deriveSeed(ctx.seed, `rollout:${step}`)), signal: ctx.signal,
    });
    const t1 = performance.now();
    let refs: number[][] | undefined;
    if (reference) {
      const rb = responseBatch(reference, items.map(({ enc }, b) => ({ promptIds: enc.ids, imagePositions: enc.imagePositions, pixels: enc.pixels, responseIds: results[b]!.tokens })), tok.padId);
      refs = await responseLogprobs(reference, rb);
    }
    const t2 = performance.now();
    let tokens = 0;
    const out = items.map(({ prompt }, b): RolloutRecord => {
      const r = results[b]!;
      tokens += r.tokens.length;
      const ref = refs?.[b] ?? [];
      const kl = refs ? klPerToken(r.logprobs, ref, estimator) : [];
      return {
        id: prompt.id,
        image: prompt.image,
        conversations: prompt.conversations,
        caption_type: prompt.caption_type,
        length_bonus: prompt.length_bonus,
        facts: prompt.facts,
        response: r.text,
        response_tokens: r.tokens.length,
        ended_with_eos: r.endedWithEos,
        logprobs: r.logprobs,
        ref_logprobs: ref,
        values: [],
        reward_model: Number.NaN,
        reward_total: Number.NaN,
        reward_length: Number.NaN,
        reward_correctness: Number.NaN,
        reward_no_eos: Number.NaN,
        kl_mean: refs ? kl.reduce((a, x) => a + x, 0) / Math.max(kl.length, 1) : Number.NaN,
        policy_version: step,
        response_ids: r.tokens,
      };
    });
    policy.recordTiming(step, { generation: (t1 - t0) / 1000, reference: (t2 - t1) / 1000, emittedAt: performance.now(), tokens, rollouts: out.length });
    ctx.note(`step ${step + 1}: ${items.length} rollouts, ${tokens} tokens`);
    return out;
  }

  return {
    name,
    conserves: false,
    async *run(input, ctx) {
      const start = await policy.started(ctx.signal);
      let step = 0;
      let pending: Pending[] = [];
      let rejectedInARow = 0;
      for await (const prompts of input) {
        if (!Array.isArray(prompts)) throw new InvalidOptionError('rollout.input', 'expects batches (arrays) of rl-prompt records', { fix: 'put a batch(n) stage before rollout' });
        for (const prompt of prompts) {
          const enc = await prepare(prompt);
          if (enc instanceof Error) {
            // batches of steps already trained are only regrouped: their rejections were recorded then
            if (step >= start) ctx.reject(prompt, enc);
            if (++rejectedInARow >= maxConsecutiveRejects) {
              throw new BadInputError(`${rejectedInARow} prompts in a row were rejected; the last because: ${enc.message}`, {
                fix: 'check the prompts against the limits (max_prompt_tokens, images), or raise maxConsecutiveRejects',
              });
            }
            continue;
          }
          rejectedInARow = 0;
          pending.push({ prompt, enc });
          if (pending.length < batchSize) continue;
          const items = pending;
          pending = [];
          const j = step++;
          if (j < start) continue;
          if (!(await policy.waitFor(j, ctx.signal))) return;
          yield await sample(items, j, ctx);
        }
      }
      if (pending.length > 0) {
        const j = step++;
        if (j >= start && (await policy.waitFor(j, ctx.signal))) yield await sample(pending, j, ctx);
      }
    },
  };
}
