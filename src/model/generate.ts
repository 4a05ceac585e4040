/**
 * Batched generation: greedy, or sampling with temperature / top-k / top-p from a seeded Rng.
 * Prompts of different lengths are left-padded (padding is masked out and does not shift
 * positions, so a prompt gives the same tokens alone or in a batch). With the KV cache (default)
 * each step feeds only the new token; without it every step recomputes the whole sequence (the
 * reference the cache is tested against).
 *
 * `logprobs[i]` is log p(token_i) under the model's distribution at temperature 1 with no top-k /
 * top-p truncation: the policy log-probability PPO needs, whatever sampling settings chose the token.
 */
import * as tf from '@tensorflow/tfjs';
import { AbortedError, InvalidOptionError } from '../errors.ts';
import { Rng } from '../stream/random.ts';
import { imageTokenCount } from './config.ts';
import { disposeCache, type KVCache } from './language-model.ts';
import type { ModelInput, MultimodalModel } from './multimodal-model.ts';
import { embedding } from './ops.ts';
import type { TextTokenizer } from './tokenizer.ts';

export interface GenerationRequest {
  /** Prompt ids (encodePrompt's), starting with <s>. */
  ids: readonly number[];
  /** Normalised pixels of this prompt's image (imageSize^2 * 3), or null. */
  image?: Float32Array | null;
  /** Positions of the visual tokens in `ids` (encodePrompt's imagePositions). */
  imagePositions?: readonly number[];
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** true: argmax at each step (temperature/topK/topP ignored). Default false. */
  greedy?: boolean;
  /** Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = all. Default 0. */
  topK?: number;
  /** Keep the smallest set of tokens with this total probability. Default 1. */
  topP?: number;
  /** Seed for sampling (default 0); or pass `rng` to continue a stream. */
  seed?: number;
  rng?: Rng;
  /** Stop token; default tokenizer.eosId. */
  eosId?: number;
  /** Padding id for the left padding; default tokenizer.padId, else eosId. */
  padId?: number;
  /** For `text`; without it text is ''. */
  tokenizer?: TextTokenizer;
  /** Default true. */
  useCache?: boolean;
  signal?: AbortSignal;
}

export interface GenerationResult {
  /** Generated ids, including the final EOS when there is one. */
  tokens: number[];
  /** Decoded generated tokens, special tokens (EOS) dropped. */
  text: string;
  /** Log-probability of each generated token at temperature 1 (see file comment). */
  logprobs: number[];
  endedWithEos: boolean;
}

function logSoftmaxAt(row: Float32Array, token: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  return row[token]! - max - Math.log(sum);
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** Draws a token from `row` with temperature, top-k and top-p truncation. */
export function sampleToken(row: Float32Array, rng: Rng, temperature: number, topK: number, topP: number): number {
  const idx = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
  const k = topK > 0 ? Math.min(topK, idx.length) : idx.length;
  const max = row[idx[0]!]!;
  const probs = new Float64Array(k);
  let total = 0;
  for (let i = 0; i < k; i++) { probs[i] = Math.exp((row[idx[i]!]! - max) / temperature); total += probs[i]!; }
  let keep = k;
  if (topP < 1) {
    let cum = 0;
    for (let i = 0; i < k; i++) {
      cum += probs[i]! / total;
      if (cum >= topP) { keep = i + 1; break; }
    }
  }
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += probs[i]!;
  let u = rng.next() * mass;
  for (let i = 0; i < keep; i++) {
    u -= probs[i]!;
    if (u < 0) return idx[i]!;
  }
  return idx[keep - 1]!;
}

function checkOptions(o: GenerateOptions): void {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens <= 0) throw new InvalidOptionError('generate.maxNewTokens', `must be a positive integer, got ${o.maxNewTokens}`);
  if (o.temperature !== undefined && !(o.temperature > 0)) throw new InvalidOptionError('generate.temperature', `must be > 0 (use greedy: true for argmax), got ${o.temperature}`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) throw new InvalidOptionError('generate.topK', `must be a non-negative integer, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new InvalidOptionError('generate.topP', `must be in (0, 1], got ${o.topP}`);
}

/** Generates a continuation for every request (one batch). */
export async function generate(model: MultimodalModel, requests: readonly GenerationRequest[], options: GenerateOptions): Promise<GenerationResult[]> {
  checkOptions(options);
  const cfg = model.config;
  const eosId = options.eosId ?? options.tokenizer?.eosId;
  if (eosId === undefined) throw new InvalidOptionError('generate.eosId', 'give eosId or a tokenizer');
  const padId = options.padId ?? options.tokenizer?.padId ?? eosId;
  const batch = requests.length;
  if (batch === 0) return [];
  const rng = options.rng ?? new Rng(options.seed ?? 0);
  const temperature = options.temperature ?? 1;
  const topK = options.topK ?? 0;
  const topP = options.topP ?? 1;
  const useCache = options.useCache ?? true;

  const promptLen = Math.max(...requests.map((r) => r.ids.length));
  requests.forEach((r, i) => {
    if (r.ids.length === 0) throw new InvalidOptionError(`requests[${i}].ids`, 'empty prompt');
  });
  if (promptLen >= cfg.language.contextLength) {
    throw new InvalidOptionError('requests', `a prompt of ${promptLen} tokens leaves no room in the context (${cfg.language.contextLength})`, { fix: 'shorten the prompt' });
  }
  const maxNew = Math.min(options.maxNewTokens, cfg.language.contextLength - promptLen);

  // left padding: row b's prompt ends at promptLen - 1
  const nImg = imageTokenCount(cfg);
  const px = cfg.vision.imageSize * cfg.vision.imageSize * 3;
  const anyImage = requests.some((r) => r.image);
  const rowsIds: number[][] = requests.map((r) => [...Array(promptLen - r.ids.length).fill(padId), ...r.ids]);
  const rowsMask: number[][] = requests.map((r) => [...Array(promptLen - r.ids.length).fill(0), ...Array(r.ids.length).fill(1)]);
  let images: Float32Array | null = null;
  let imagePositions: Int32Array | null = null;
  if (anyImage) {
    images = new Float32Array(batch * px);
    imagePositions = new Int32Array(batch * nImg).fill(-1);
    requests.forEach((r, b) => {
      if (!r.image) return;
      if (r.image.length !== px) throw new InvalidOptionError(`requests[${b}].image`, `has ${r.image.length} values, expected ${px}`);
      if (!r.imagePositions || r.imagePositions.length !== nImg) throw new InvalidOptionError(`requests[${b}].imagePositions`, `expected ${nImg} positions`);
      images!.set(r.image, b * px);
      const shift = promptLen - r.ids.length;
      r.imagePositions.forEach((p, k) => { imagePositions![b * nImg + k] = p + shift; });
    });
  }

  const results: GenerationResult[] = requests.map(() => ({ tokens: [], text: '', logprobs: [], endedWithEos: false }));
  const done = new Array<boolean>(batch).fill(false);
  let cache: KVCache | undefined;
  const vocab = cfg.language.vocabSize;

  /** Logits [batch, vocab] at each row's last position, plus the cache when used. */
  const step = async (input: ModelInput, past: KVCache | undefined): Promise<{ logits: Float32Array; cache?: KVCache }> => {
    let meta: Omit<KVCache, 'layers'> | undefined;
    // only tensors leave the tidy: it walks its result, and typed arrays element by element
    const out = tf.tidy(() => {
      const r = model.forward(input, { cache: past ?? null, wantCache: useCache });
      const last = Int32Array.from({ length: batch }, (_, b) => b * input.length + input.length - 1);
      const logits = model.lmLogits(embedding(r.hidden, tf.tensor1d(last, 'int32')));
      if (r.cache) {
        const { layers, ...rest } = r.cache;
        meta = rest;
        return { logits, layers: layers as unknown as tf.TensorContainer };
      }
      return { logits };
    }) as unknown as { logits: tf.Tensor2D; layers?: KVCache['layers'] };
    const data = await out.logits.data() as Float32Array;
    out.logits.dispose();
    return { logits: data, cache: out.layers && meta ? { ...meta, layers: out.layers } : undefined };
  };

  try {
    let input: ModelInput = {
      batch, length: promptLen, ids: Int32Array.from(rowsIds.flat()), attentionMask: Uint8Array.from(rowsMask.flat()), images, imagePositions,
    };
    for (let t = 0; t < maxNew; t++) {
      if (options.signal?.aborted) throw new AbortedError('generation was aborted', { cause: options.signal.reason });
      const r = await step(input, cache);
      if (useCache) { disposeCache(cache); cache = r.cache; }
      const next = new Int32Array(batch);
      for (let b = 0; b < batch; b++) {
        const row = r.logits.subarray(b * vocab, (b + 1) * vocab);
        if (done[b]) { next[b] = eosId; continue; }
        const tok = options.greedy ? argmax(row) : sampleToken(row, rng, temperature, topK, topP);
        next[b] = tok;
        results[b]!.tokens.push(tok);
        results[b]!.logprobs.push(logSoftmaxAt(row, tok));
        if (tok === eosId) { done[b] = true; results[b]!.endedWithEos = true; }
      }
      if (done.every(Boolean) || t + 1 === maxNew) break;
      if (useCache) {
        input = { batch, length: 1, ids: next, attentionMask: new Uint8Array(batch).fill(1) };
      } else {
        for (let b = 0; b < batch; b++) { rowsIds[b]!.push(next[b]!); rowsMask[b]!.push(1); }
        input = { batch, length: rowsIds[0]!.length, ids: Int32Array.from(rowsIds.flat()), attentionMask: Uint8Array.from(rowsMask.flat()), images, imagePositions };
      }
    }
  } finally {
    disposeCache(cache);
  }
  if (options.tokenizer) for (const r of results) r.text = options.tokenizer.decode(r.tokens);
  return results;
}
