/**
 * Conversations to training batches: encode with the chat template (loss on assistant tokens),
 * enforce the context length, group examples of similar length (bucketing: less padding, so
 * fewer wasted FLOPs), and pad into the flat arrays a `TrainBatch` holds.
 *
 * Over-long conversations: `skip` rejects them; `truncate` keeps the leading rounds that fit
 * (cut at a turn boundary so no answer is half-learned) and rejects only when not even the
 * first round fits. Rejections throw BadRecordError whose message gives the lengths.
 */
import { BadRecordError, InvalidOptionError } from '../errors.ts';
import { Rng } from '../stream/random.ts';
import { encodeConversation, type Turn } from './chat-template.ts';
import type { TrainBatch } from './train-step.ts';
import type { TextTokenizer } from './tokenizer.ts';

/** One encoded conversation, ready to be padded into a batch. */
export interface TrainExample {
  /** Record id (for reports). */
  id: string;
  ids: Int32Array;
  /** 1 on tokens the model learns to produce (assistant answers and their </s>). */
  lossMask: Uint8Array;
  /** Positions of the visual tokens (empty without an image). */
  imagePositions: Int32Array;
  /** Normalised HWC pixels (imageSize^2 * 3), or null for a text-only conversation. */
  pixels: Float32Array | null;
  /** Reward prompts: 1 on response tokens that occur in the captions (ModelInput.factMatch). */
  factMatch?: Uint8Array;
}

export type OverflowPolicy = 'skip' | 'truncate';

export interface EncodeExampleOptions {
  /** Visual tokens per image (imageTokenCount(config)). */
  imageTokens: number;
  /** Longest sequence kept (at most the model's contextLength). */
  maxLength: number;
  /** What to do with a longer conversation; default `truncate`. */
  overflow?: OverflowPolicy;
  systemPrompt?: string;
}

/** Number of loss tokens (assistant answer tokens). */
function lossCount(mask: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i]! ? 1 : 0;
  return n;
}

/**
 * Encodes one conversation. Throws BadRecordError (template errors, over-long under `skip`, or
 * nothing left under `truncate`); the caller rejects the record with that reason.
 */
export function encodeExample(tok: TextTokenizer, id: string, turns: readonly Turn[], pixels: Float32Array | null, options: EncodeExampleOptions): TrainExample {
  const overflow = options.overflow ?? 'truncate';
  const template = { imageTokens: pixels ? options.imageTokens : 0, systemPrompt: options.systemPrompt };
  if (!pixels && turns.length > 0 && turns[0]!.value.includes('<image>')) {
    throw new BadRecordError('the first turn holds <image> but the record has no image', { fix: 'give the record an image path, or remove <image>' });
  }
  let enc = encodeConversation(tok, turns, template);
  if (enc.ids.length > options.maxLength) {
    const full = enc.ids.length;
    if (overflow === 'skip') {
      throw new BadRecordError(`conversation has ${full} tokens (with ${template.imageTokens} image tokens), over max_length ${options.maxLength}`, {
        fix: 'raise max_length (and the model contextLength), or use overflow "truncate"',
      });
    }
    // drop trailing rounds until it fits; a round is a human turn plus its answer
    let rounds = Math.floor(turns.length / 2);
    while (rounds > 1 && enc.ids.length > options.maxLength) {
      rounds--;
      enc = encodeConversation(tok, turns.slice(0, 2 * rounds), template);
    }
    if (enc.ids.length > options.maxLength) {
      throw new BadRecordError(`the first round alone has ${enc.ids.length} tokens (conversation ${full}), over max_length ${options.maxLength}`, {
        fix: 'raise max_length (and the model contextLength), or shorten the first question and answer',
      });
    }
  }
  if (lossCount(enc.lossMask) === 0) throw new BadRecordError('conversation has no assistant tokens to learn', { fix: 'give every gpt turn some text' });
  return {
    id,
    ids: Int32Array.from(enc.ids),
    lossMask: Uint8Array.from(enc.lossMask),
    imagePositions: Int32Array.from(enc.imagePositions),
    pixels,
  };
}

export interface CollateOptions {
  padId: number;
  /** Visual tokens per image. */
  imageTokens: number;
  /** Values per image (imageSize^2 * 3). */
  pixelsPerImage: number;
  /** Pad the batch length up to a multiple of this (fewer distinct shapes for the kernels). Default 1. */
  padMultiple?: number;
  /** How answer tokens share the loss (see LossWeighting). Default `token`. */
  lossWeighting?: LossWeighting;
}

/**
 * How the supervised loss averages. `token`: every answer token counts the same (LLaVA's
 * default), so a 60-token description outweighs a one-word "Yes" sixty to one. `turn`: every
 * assistant turn counts the same, its weight spread over its tokens (and its </s>), so short
 * grounded answers (VQA words, option letters, yes/no verdicts) are learned as fast as long ones.
 */
export type LossWeighting = 'token' | 'turn';
export const LOSS_WEIGHTINGS: readonly LossWeighting[] = ['token', 'turn'];

/**
 * Per-token weights for `turn` weighting: each run of consecutive loss tokens (one assistant turn
 * with its </s>) gets total weight 1.
 */
export function turnWeights(lossMask: ArrayLike<number>): Float32Array {
  const out = new Float32Array(lossMask.length);
  let i = 0;
  while (i < lossMask.length) {
    if (!lossMask[i]) { i++; continue; }
    let j = i;
    while (j < lossMask.length && lossMask[j]) j++;
    out.fill(1 / (j - i), i, j);
    i = j;
  }
  return out;
}

/**
 * Right-pads examples into one TrainBatch. Rows without an image get imagePositions -1 and zero
 * pixels; `images` is null when no row has one.
 */
export function collate(examples: readonly TrainExample[], options: CollateOptions): TrainBatch {
  if (examples.length === 0) throw new InvalidOptionError('examples', 'cannot collate an empty batch');
  const multiple = options.padMultiple ?? 1;
  if (!Number.isInteger(multiple) || multiple < 1) throw new InvalidOptionError('padMultiple', `must be a positive integer, got ${multiple}`);
  const weighting = options.lossWeighting ?? 'token';
  if (!LOSS_WEIGHTINGS.includes(weighting)) throw new InvalidOptionError('lossWeighting', `must be one of ${LOSS_WEIGHTINGS.join(', ')}, got ${JSON.stringify(weighting)}`);
  const batch = examples.length;
  let longest = 0;
  for (const e of examples) longest = Math.max(longest, e.ids.length);
  const length = Math.ceil(longest / multiple) * multiple;
  const ids = new Int32Array(batch * length).fill(options.padId);
  const attentionMask = new Uint8Array(batch * length);
  const lossMask = weighting === 'turn' ? new Float32Array(batch * length) : new Uint8Array(batch * length);
  const anyImage = examples.some((e) => e.pixels !== null);
  const n = options.imageTokens;
  const images = anyImage ? new Float32Array(batch * options.pixelsPerImage) : null;
  const imagePositions = anyImage ? new Int32Array(batch * n).fill(-1) : null;
  const factMatch = examples.some((e) => e.factMatch) ? new Uint8Array(batch * length) : null;
  examples.forEach((e, b) => {
    ids.set(e.ids, b * length);
    if (e.factMatch && factMatch) factMatch.set(e.factMatch, b * length);
    attentionMask.fill(1, b * length, b * length + e.ids.length);
    lossMask.set(weighting === 'turn' ? turnWeights(e.lossMask) : e.lossMask, b * length);
    if (e.pixels && images && imagePositions) {
      if (e.pixels.length !== options.pixelsPerImage) {
        throw new InvalidOptionError(`examples[${b}].pixels`, `has ${e.pixels.length} values, expected ${options.pixelsPerImage}`);
      }
      if (e.imagePositions.length !== n) throw new InvalidOptionError(`examples[${b}].imagePositions`, `has ${e.imagePositions.length} positions, expected ${n}`);
      images.set(e.pixels, b * options.pixelsPerImage);
      imagePositions.set(e.imagePositions, b * n);
    }
  });
  return { batch, length, ids, attentionMask, lossMask, images, imagePositions, ...(factMatch ? { factMatch } : {}) };
}

/** Tokens that count for throughput: real (non-padding) positions of a batch. */
export function realTokens(batch: Pick<TrainBatch, 'attentionMask' | 'ids'>): number {
  const m = batch.attentionMask;
  if (!m) return batch.ids.length;
  let n = 0;
  for (let i = 0; i < m.length; i++) n += m[i]!;
  return n;
}

export interface BucketOptions {
  batchSize: number;
  /** Batches' worth of examples sorted together (the bucketing reach). Default 8. */
  windowBatches?: number;
  /** Seed of the order in which a window's batches come out. */
  seed: number;
}

/**
 * Groups a window of items into batches of similar length: sort the window by length (stable),
 * cut it into batches, emit them in a seeded random order (so long and short batches mix and
 * the run is deterministic). The last window may give a partial batch.
 */
export function bucketWindow<T>(items: readonly T[], lengthOf: (item: T) => number, batchSize: number, rng: Rng): T[][] {
  const order = items.map((item, i) => ({ item, i, len: lengthOf(item) }));
  order.sort((a, b) => a.len - b.len || a.i - b.i);
  const batches: T[][] = [];
  for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize).map((o) => o.item));
  return rng.shuffle(batches);
}

/** Streams `input` into length-bucketed batches, one window (windowBatches x batchSize items) at a time. */
export async function* bucketByLength<T>(input: AsyncIterable<T>, lengthOf: (item: T) => number, options: BucketOptions): AsyncGenerator<T[]> {
  const { batchSize, seed } = options;
  const windowBatches = options.windowBatches ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidOptionError('batchSize', `must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(windowBatches) || windowBatches < 1) throw new InvalidOptionError('windowBatches', `must be a positive integer, got ${windowBatches}`);
  const rng = new Rng(seed);
  const window = batchSize * windowBatches;
  let buf: T[] = [];
  for await (const item of input) {
    buf.push(item);
    if (buf.length === window) {
      yield* bucketWindow(buf, lengthOf, batchSize, rng);
      buf = [];
    }
  }
  if (buf.length > 0) yield* bucketWindow(buf, lengthOf, batchSize, rng);
}
