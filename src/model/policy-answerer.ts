/**
 * A policy checkpoint as a question answerer, for evaluation (POPE, MMHal): loads the model and
 * its tokenizer, reads each item's image under `imageRoot`, and answers with greedy decoding
 * through the same Vicuna v1 prompt the policy was trained with.
 *
 * `dir` may be a run folder (its `checkpoint/` is used) or a checkpoint folder itself.
 * The answerer's type is written out here because src/model imports nothing outside the model;
 * it matches `Answerer` in src/eval/answerer.ts.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AbortedError, InvalidOptionError } from '../errors.ts';
import { selectBackend, type BackendChoice, BACKEND_CHOICES } from './backend.ts';
import { encodePrompt } from './chat-template.ts';
import { loadModel } from './checkpoint.ts';
import { imageTokenCount } from './config.ts';
import { generate } from './generate.ts';
import { createImageLoader } from './image-input.ts';
import type { MultimodalModel } from './multimodal-model.ts';
import { loadTokenizer, type TextTokenizer } from './tokenizer.ts';

export interface PolicyAnswererOptions {
  /** tfjs backend (`auto`, `webgpu`, `wasm`, ...). */
  backend: string;
  /** Folder the items' image paths are relative to. */
  imageRoot: string;
  maxNewTokens: number;
  /** Prompts per generation call (default 16). */
  batchSize?: number;
}

export type PolicyAnswerer = ((items: { image: string; question: string }[], signal: AbortSignal) => Promise<string[]>) & {
  readonly model: MultimodalModel;
  readonly tokenizer: TextTokenizer;
  /** Tokens of a text under the policy's tokenizer (for response lengths in tokens). */
  countTokens(text: string): number;
  dispose(): void;
};

/** `dir/checkpoint` when it exists, else `dir`. */
export async function resolveCheckpointDir(dir: string): Promise<string> {
  const inner = path.join(dir, 'checkpoint');
  try {
    if ((await stat(inner)).isDirectory()) return inner;
  } catch {
    // not a run folder: `dir` is the checkpoint itself
  }
  return dir;
}

export async function loadPolicyAnswerer(dir: string, options: PolicyAnswererOptions): Promise<PolicyAnswerer> {
  if (!BACKEND_CHOICES.includes(options.backend as BackendChoice)) {
    throw new InvalidOptionError('backend', `must be one of ${BACKEND_CHOICES.join(', ')}, got ${JSON.stringify(options.backend)}`);
  }
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 1) {
    throw new InvalidOptionError('maxNewTokens', `must be a positive integer, got ${options.maxNewTokens}`);
  }
  const batchSize = options.batchSize ?? 16;
  await selectBackend(options.backend as BackendChoice);
  const ckpt = await resolveCheckpointDir(dir);
  const { model } = await loadModel(ckpt, { heads: ['lm'] });
  const tokenizer = await loadTokenizer(ckpt);
  const images = createImageLoader({ size: model.config.vision.imageSize, root: options.imageRoot });
  const template = { imageTokens: imageTokenCount(model.config) };

  const answer = async (items: { image: string; question: string }[], signal: AbortSignal): Promise<string[]> => {
    const out: string[] = new Array(items.length);
    for (let s = 0; s < items.length; s += batchSize) {
      if (signal.aborted) throw new AbortedError('answering was aborted', { cause: signal.reason });
      const chunk = items.slice(s, s + batchSize);
      const requests = await Promise.all(
        chunk.map(async (item) => {
          const enc = encodePrompt(tokenizer, [{ from: 'human', value: `<image>\n${item.question}` }], template);
          return { ids: enc.ids, imagePositions: enc.imagePositions, image: await images.load(item.image) };
        }),
      );
      const results = await generate(model, requests, { maxNewTokens: options.maxNewTokens, greedy: true, tokenizer, signal });
      results.forEach((r, k) => { out[s + k] = r.text.trim(); });
    }
    return out;
  };
  return Object.assign(answer, {
    model,
    tokenizer,
    countTokens: (text: string) => tokenizer.encode(text).length,
    dispose: () => model.dispose(),
  });
}
