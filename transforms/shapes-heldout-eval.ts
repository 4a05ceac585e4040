/**
 * Held-out evaluation of a policy on shapes-world questions (shapes-heldout-questions.ts):
 *
 *   evaluateShapesAccuracy  greedy answers, scored (yes/no: the verdict, see yesNoOf; multiple choice:
 *                           the chosen letter, see letterOf), accuracies overall and per phrasing, every answer kept
 *   heldoutLossBatches      the same questions with reference replies as collated batches, for
 *                           the trainer's held-out loss
 *
 * Prompts go through the same Vicuna v1 template as training (encodePrompt), and are grouped by
 * length so the left padding of a generation batch stays small.
 */
import { AbortedError, InvalidOptionError } from '../src/errors.ts';
import { encodePrompt } from '../src/model/chat-template.ts';
import { collate, encodeExample, type TrainExample } from '../src/model/collate.ts';
import { imageTokenCount } from '../src/model/config.ts';
import { generate } from '../src/model/generate.ts';
import type { ImageLoader } from '../src/model/image-input.ts';
import type { MultimodalModel } from '../src/model/multimodal-model.ts';
import type { TextTokenizer } from '../src/model/tokenizer.ts';
import type { TrainBatch } from '../src/model/train-step.ts';
import { HELDOUT_CONTRASTS, isCorrect, type HeldoutQuestion } from './shapes-heldout-questions.ts';

export interface ShapesEvalOptions {
  model: MultimodalModel;
  tokenizer: TextTokenizer;
  /** Loads the questions' images (root: `<world>/images`, size: the model's imageSize). */
  images: ImageLoader;
  questions: readonly HeldoutQuestion[];
  /** Prompts per generation batch. Default 32. */
  batchSize?: number;
  /** Tokens generated per answer (enough for an evidence-first yes/no answer's verdict). Default 40. */
  maxNewTokens?: number;
  systemPrompt?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface ShapesAnswer {
  id: string;
  image: string;
  kind: HeldoutQuestion['kind'];
  form: HeldoutQuestion['form'];
  contrast: HeldoutQuestion['contrast'];
  question: string;
  answer: string;
  reply: string;
  correct: boolean;
}

export interface Accuracy {
  correct: number;
  total: number;
  accuracy: number;
}

export interface ShapesAccuracyReport {
  yesno_accuracy: number;
  multichoice_accuracy: number;
  yesno: Accuracy;
  multichoice: Accuracy;
  /** Per phrasing: vqa / llava yes/no, color / shape multiple choice. */
  by_form: Record<string, Accuracy>;
  /**
   * Per contrast (HeldoutContrast): `colour-elsewhere` and `several-options-in-image` are the
   * questions a policy that reads only which colours are in the image gets wrong.
   */
  by_contrast: Record<string, Accuracy>;
  /** Share of yes/no replies that say "Yes" (0.5 on a balanced set for an unbiased model). */
  yes_rate: number;
  answers: ShapesAnswer[];
  generate_s: number;
}

function tally(answers: readonly ShapesAnswer[], pick: (a: ShapesAnswer) => boolean): Accuracy {
  const sel = answers.filter(pick);
  const correct = sel.filter((a) => a.correct).length;
  return { correct, total: sel.length, accuracy: sel.length > 0 ? correct / sel.length : NaN };
}

function checkCommon(o: { model?: unknown; tokenizer?: unknown; images?: unknown; questions?: unknown; batchSize?: unknown }): void {
  if (!o.model) throw new InvalidOptionError('model', 'expected a model');
  if (!o.tokenizer) throw new InvalidOptionError('tokenizer', 'expected a tokenizer');
  if (!o.images || typeof (o.images as ImageLoader).load !== 'function') throw new InvalidOptionError('images', 'expected an image loader');
  if (!Array.isArray(o.questions)) throw new InvalidOptionError('questions', 'expected a list of held-out questions');
  if (o.batchSize !== undefined && (!Number.isInteger(o.batchSize) || (o.batchSize as number) < 1)) throw new InvalidOptionError('batchSize', `must be a positive integer, got ${String(o.batchSize)}`);
}

/** Generates greedy answers to every question and scores them. */
export async function evaluateShapesAccuracy(options: ShapesEvalOptions): Promise<ShapesAccuracyReport> {
  checkCommon(options);
  const { model, tokenizer, images, questions } = options;
  const batchSize = options.batchSize ?? 32;
  const maxNewTokens = options.maxNewTokens ?? 40;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new InvalidOptionError('maxNewTokens', `must be a positive integer, got ${maxNewTokens}`);
  const template = { imageTokens: imageTokenCount(model.config), systemPrompt: options.systemPrompt };
  const began = performance.now();
  const prompts = questions.map((q, i) => ({ q, i, enc: encodePrompt(tokenizer, [{ from: 'human', value: `<image>\n${q.question}` }], template) }));
  prompts.sort((a, b) => a.enc.ids.length - b.enc.ids.length || a.i - b.i);
  const answers: ShapesAnswer[] = new Array(questions.length);
  for (let s = 0; s < prompts.length; s += batchSize) {
    if (options.signal?.aborted) throw new AbortedError('evaluation was aborted', { cause: options.signal.reason });
    const chunk = prompts.slice(s, s + batchSize);
    const requests = await Promise.all(chunk.map(async ({ q, enc }) => ({ ids: enc.ids, imagePositions: enc.imagePositions, image: await images.load(q.image) })));
    const results = await generate(model, requests, { maxNewTokens, greedy: true, tokenizer, signal: options.signal });
    chunk.forEach(({ q, i }, k) => {
      const reply = results[k]!.text.trim();
      answers[i] = { id: q.id, image: q.image, kind: q.kind, form: q.form, contrast: q.contrast, question: q.question, answer: q.answer, reply, correct: isCorrect(q, reply) };
    });
    options.onProgress?.(Math.min(s + batchSize, prompts.length), prompts.length);
  }
  const yesno = tally(answers, (a) => a.kind === 'yesno');
  const multichoice = tally(answers, (a) => a.kind === 'multichoice');
  const by_form: Record<string, Accuracy> = {};
  for (const form of ['vqa', 'llava', 'color', 'shape'] as const) by_form[form] = tally(answers, (a) => a.form === form);
  const by_contrast: Record<string, Accuracy> = {};
  for (const c of HELDOUT_CONTRASTS) by_contrast[c] = tally(answers, (a) => a.contrast === c);
  const yn = answers.filter((a) => a.kind === 'yesno');
  return {
    yesno_accuracy: yesno.accuracy,
    multichoice_accuracy: multichoice.accuracy,
    yesno,
    multichoice,
    by_form,
    by_contrast,
    yes_rate: yn.length > 0 ? yn.filter((a) => /^yes\b/i.test(a.reply)).length / yn.length : NaN,
    answers,
    generate_s: Math.round(performance.now() - began) / 1000,
  };
}

export interface HeldoutLossOptions {
  model: MultimodalModel;
  tokenizer: TextTokenizer;
  images: ImageLoader;
  questions: readonly HeldoutQuestion[];
  /** Rows per batch. Default 32. */
  batchSize?: number;
  systemPrompt?: string;
}

/** The questions with their reference replies, encoded and collated (for the held-out loss). */
export async function heldoutLossBatches(options: HeldoutLossOptions): Promise<TrainBatch[]> {
  checkCommon(options);
  const { model, tokenizer, images, questions } = options;
  const batchSize = options.batchSize ?? 32;
  const cfg = model.config;
  const n = imageTokenCount(cfg);
  const examples: TrainExample[] = [];
  for (const q of questions) {
    const turns = [{ from: 'human' as const, value: `<image>\n${q.question}` }, { from: 'gpt' as const, value: q.reference }];
    examples.push(encodeExample(tokenizer, q.id, turns, await images.load(q.image), { imageTokens: n, maxLength: cfg.language.contextLength, systemPrompt: options.systemPrompt }));
  }
  examples.sort((a, b) => a.ids.length - b.ids.length);
  const batches: TrainBatch[] = [];
  const collateOptions = { padId: tokenizer.padId, imageTokens: n, pixelsPerImage: cfg.vision.imageSize ** 2 * 3 };
  for (let i = 0; i < examples.length; i += batchSize) batches.push(collate(examples.slice(i, i + batchSize), collateOptions));
  return batches;
}
