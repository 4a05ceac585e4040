/**
 * The policy PPO trains, shared by the rollout stage (which samples from it) and the PPO trainer
 * (which updates it): one model object, so a rollout always sees the latest weights.
 *
 * It also keeps the two in lockstep. Streams pull ahead (a parallel map or a tee may ask for the
 * next batch while the trainer is still updating), so without a gate the rollout of step j could
 * run on the weights of step j - 1 or j depending on timing. Here the rollout of step j waits
 * until the trainer has finished j steps: PPO stays on-policy and a run is deterministic however
 * the stream is buffered. Without a trainer attached (evaluation, tests) nothing waits.
 *
 * The trainer also announces the step it resumes from (after loading its checkpoint), so the
 * rollout stage can skip the batches of steps already done.
 *
 * A stage between the two may drop a whole batch (a scoring stage rejecting every rollout of a
 * step). Then the rollout stage is asked for step j + 1 while the trainer, still at step j, waits
 * for input that will never come: the gate sees exactly that state (step j emitted, trainer idle
 * at j) and lets the run go on, counting step j as lost; the trainer records it as a step without
 * an update. With stages that process one batch at a time (no read-ahead between rollout and
 * trainer) this is exact and deterministic.
 */
import { AbortedError, BadRecordError, InvalidOptionError } from '../errors.ts';
import { encodePrompt, type Turn } from './chat-template.ts';
import { imageTokenCount } from './config.ts';
import { createImageLoader, type ImageLoader } from './image-input.ts';
import type { MultimodalModel } from './multimodal-model.ts';
import type { TextTokenizer } from './tokenizer.ts';

/** What a prompt needs to become model input (rl-prompt and rollout records have these fields). */
export interface PromptFields {
  image: string | null;
  conversations: readonly Turn[];
}

/** A prompt as token ids (image placeholders included) and, when it has one, its image. */
export interface EncodedPrompt {
  ids: number[];
  /** Positions of the visual tokens in `ids` (empty without an image). */
  imagePositions: number[];
  /** Normalised pixels (imageSize^2 * 3), or null. */
  pixels: Float32Array | null;
}

/** Wall-clock seconds the rollout stage spent on one step. */
export interface StepTiming {
  /** Sampling the responses. */
  generation: number;
  /** Reference log-probs computed by the rollout stage (0 when the trainer computes them). */
  reference: number;
  /** performance.now() when the step's rollouts left the rollout stage. */
  emittedAt: number;
  /** Response tokens generated. */
  tokens: number;
  /** Rollouts emitted. */
  rollouts: number;
}

export interface LivePolicy {
  readonly model: MultimodalModel;
  readonly tokenizer: TextTokenizer;
  /** Chat template system prompt (undefined: the Vicuna one). */
  readonly systemPrompt?: string;
  /** PPO steps the weights have been through: the `policy_version` of rollouts sampled now. */
  readonly version: number;
  readonly hasTrainer: boolean;

  /** Token ids of a prompt, without loading the image (length checks). Throws BadRecordError. */
  encodeIds(prompt: PromptFields): Omit<EncodedPrompt, 'pixels'>;
  /** Token ids and pixels. Throws BadRecordError / BadInputError (unreadable image). */
  encode(prompt: PromptFields): Promise<EncodedPrompt>;

  /** Trainer side: called once, synchronously, when the trainer is built. */
  attachTrainer(): void;
  /**
   * Trainer side: the weights are ready and `step` steps are done (0, or the resumed step); it
   * will train `limit` steps in all (no rollouts are needed past that).
   */
  start(step: number, limit?: number): void;
  /** Trainer side: one more step done (wakes the rollout waiting for it). */
  advance(): void;
  /** Trainer side: true while it waits for its next batch. */
  setIdle(idle: boolean): void;
  /** Trainer side: training is over; a rollout still waiting stops with AbortedError. */
  finish(): void;

  /** Rollout side: the step training starts from (0 without a trainer). */
  started(signal?: AbortSignal): Promise<number>;
  /**
   * Rollout side: resolves true once `version >= step` (immediately without a trainer), or false
   * when the trainer needs no rollouts for `step` (its steps are done): the stage then ends.
   */
  waitFor(step: number, signal?: AbortSignal): Promise<boolean>;

  /** Rollout side: step `step`'s rollouts are out (with their timing). */
  recordTiming(step: number, timing: StepTiming): void;
  /** Removes and returns the timing of `step` (undefined if the rollout stage did not record it). */
  takeTiming(step: number): StepTiming | undefined;
}

export interface LivePolicyOptions {
  model: MultimodalModel;
  tokenizer: TextTokenizer;
  /** Folder image paths are relative to; without it a prompt with an image is rejected. */
  imageRoot?: string;
  /** Or a ready loader (shared with other stages). */
  images?: ImageLoader;
  systemPrompt?: string;
}

function aborted(signal: AbortSignal): AbortedError {
  return new AbortedError('stopped while waiting for the PPO trainer', { cause: signal.reason });
}

export function createLivePolicy(options: LivePolicyOptions): LivePolicy {
  const { model, tokenizer, systemPrompt } = options;
  if (!model || typeof model.forward !== 'function') throw new InvalidOptionError('policy.model', 'must be a model (createModel / loadModel)');
  if (!tokenizer || typeof tokenizer.encode !== 'function') throw new InvalidOptionError('policy.tokenizer', 'must be a tokenizer');
  if (!model.config.heads.includes('lm')) throw new InvalidOptionError('policy.model', 'has no "lm" head: a policy must generate text');
  if (tokenizer.vocabSize > model.config.language.vocabSize) {
    throw new InvalidOptionError('policy.tokenizer', `has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${model.config.language.vocabSize}`, { fix: 'use the tokenizer saved with the checkpoint' });
  }
  const images = options.images ?? (options.imageRoot !== undefined ? createImageLoader({ size: model.config.vision.imageSize, root: options.imageRoot }) : undefined);
  const imageTokens = imageTokenCount(model.config);

  let version = 0;
  let hasTrainer = false;
  let startStep: number | undefined;
  let finished = false;
  let idle = false;
  let lastEmitted = -1;
  let limit = Number.POSITIVE_INFINITY;
  // one-shot wake-ups; each waiter re-checks its own condition and waits again if needed
  let waiters: (() => void)[] = [];
  const notify = (): void => {
    const list = waiters;
    waiters = [];
    for (const w of list) w();
  };
  const until = async (ready: () => boolean, signal?: AbortSignal): Promise<void> => {
    while (!ready()) {
      if (signal?.aborted) throw aborted(signal);
      if (finished) throw new AbortedError('the PPO trainer has finished: no more rollouts are needed');
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => reject(aborted(signal!));
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.push(() => { signal?.removeEventListener('abort', onAbort); resolve(); });
      });
    }
  };
  const timings = new Map<number, StepTiming>();

  const encodeIds = (prompt: PromptFields): Omit<EncodedPrompt, 'pixels'> => {
    const withImage = prompt.image !== null && prompt.image !== undefined && prompt.image !== '';
    const enc = encodePrompt(tokenizer, prompt.conversations, { imageTokens: withImage ? imageTokens : 0, systemPrompt });
    return { ids: enc.ids, imagePositions: enc.imagePositions };
  };

  return {
    model,
    tokenizer,
    systemPrompt,
    get version() { return version; },
    get hasTrainer() { return hasTrainer; },
    encodeIds,
    async encode(prompt) {
      const enc = encodeIds(prompt);
      // a prompt whose text has no <image> tag gets no visual tokens: its image is not shown
      if (enc.imagePositions.length === 0) return { ...enc, pixels: null };
      if (!images) {
        throw new BadRecordError(`the prompt has an image (${prompt.image}) but no image folder was given`, { fix: 'give the policy an imageRoot (pipeline param images=DIR)' });
      }
      return { ...enc, pixels: await images.load(prompt.image!) };
    },
    attachTrainer() {
      if (hasTrainer) throw new InvalidOptionError('policy', 'already has a trainer: one live policy feeds one PPO trainer');
      hasTrainer = true;
    },
    start(step, steps) {
      if (!Number.isInteger(step) || step < 0) throw new InvalidOptionError('policy.start', `must be a non-negative integer, got ${step}`);
      startStep = step;
      if (steps !== undefined) limit = steps;
      version = step;
      notify();
    },
    advance() {
      version++;
      notify();
    },
    setIdle(value) {
      idle = value;
      if (idle) notify();
    },
    finish() {
      finished = true;
      notify();
    },
    async started(signal) {
      if (!hasTrainer) return 0;
      await until(() => startStep !== undefined, signal);
      return startStep!;
    },
    async waitFor(step, signal) {
      if (!hasTrainer) return true;
      await until(() => {
        if (startStep === undefined) return false;
        if (version >= step) return true;
        // step - 1 went out and the trainer waits for input at it: that batch was dropped on the way
        if (idle && version === step - 1 && lastEmitted === step - 1) {
          version = step;
          return true;
        }
        return false;
      }, signal);
      return step < limit;
    },
    recordTiming(step, timing) {
      lastEmitted = Math.max(lastEmitted, step);
      timings.set(step, timing);
      // bounded: a trainer that never takes them (none attached) must not grow this forever
      if (timings.size > 64) timings.delete(timings.keys().next().value!);
    },
    takeTiming(step) {
      const t = timings.get(step);
      timings.delete(step);
      return t;
    },
  };
}
