/**
 * MMHal-Bench's `response_template.json` (a JSON array of `{question_type, question_topic,
 * image_id, image_src, image_content, question, gt_answer, model_answer}`) as `eval` records,
 * streamed one item at a time.
 *
 * - `question_id` is the item's position in the file ("0", "1", ...): the benchmark has no
 *   ids and its scripts identify items by position.
 * - `image`: MMHal's `image_src` is a Flickr URL and its images are stored under the
 *   URL's file name, so a URL becomes its basename; a relative path (the shapes world's)
 *   is kept as is. Either is relative to the image root.
 * - `facts` = `image_content` (the object names the judge is shown).
 * - `model_answer` is kept when present (a filled template = answers to score); with
 *   `requireAnswer` an item without a string `model_answer` is rejected.
 * Items that are not objects or lack a string field are rejected with the reason.
 */
import { posix } from 'node:path';
import { InvalidOptionError } from '../src/errors.ts';
import { withOrigin } from '../src/stream/origin.ts';
import type { InputFingerprint, Source, SourceContext } from '../src/stream/stage.ts';
import { evalSchema, type EvalRecord } from '../schemas/eval.ts';
import { jsonArrayRecords } from './json-records.ts';
import { inputFile, isUrl, type HttpOptions } from './resolve-input.ts';

export interface MmhalTemplateSourceOptions {
  /** The template or a filled response file (path or URL). */
  readonly file: string;
  /** Reject items without a string `model_answer` (scoring existing answers); default false. */
  readonly requireAnswer?: boolean;
  readonly http?: HttpOptions;
  /** Source name (default `mmhal-template`). */
  readonly name?: string;
}

/** Where an MMHal item's image lies under the image root (see the module comment). */
export function mmhalImagePath(imageSrc: string): string {
  if (!isUrl(imageSrc)) return imageSrc;
  const pathname = new URL(imageSrc).pathname;
  return decodeURIComponent(posix.basename(pathname));
}

/** One template item -> an eval record, or the reason it cannot be one. */
export function mmhalToEval(raw: unknown, index: number, requireAnswer = false): EvalRecord | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return `item #${index}: expected an object`;
  const o = raw as Record<string, unknown>;
  for (const key of ['question_type', 'image_src', 'question', 'gt_answer'] as const) {
    if (typeof o[key] !== 'string') return `item #${index}: "${key}" must be a string, got ${JSON.stringify(o[key])}`;
  }
  const content = o['image_content'] ?? [];
  if (!Array.isArray(content) || !content.every((c) => typeof c === 'string')) {
    return `item #${index}: "image_content" must be a list of strings, got ${JSON.stringify(o['image_content'])}`;
  }
  const answer = o['model_answer'];
  if (answer !== undefined && answer !== null && typeof answer !== 'string') {
    return `item #${index}: "model_answer" must be a string, got ${JSON.stringify(answer)}`;
  }
  if (requireAnswer && typeof answer !== 'string') {
    return `item #${index}: no "model_answer" (scoring needs the template filled with the model's answers)`;
  }
  let image: string;
  try {
    image = mmhalImagePath(o['image_src'] as string);
  } catch {
    return `item #${index}: "image_src" is not a valid URL: ${JSON.stringify(o['image_src'])}`;
  }
  const rec: EvalRecord = {
    question_id: String(index),
    image,
    question: o['question'] as string,
    question_type: o['question_type'] as string,
    gt_answer: o['gt_answer'] as string,
    facts: content as string[],
    model_answer: typeof answer === 'string' ? answer : '',
    score: null,
    hallucinated: null,
    judge_text: '',
  };
  const reason = evalSchema.validate(rec);
  return reason ? `item #${index}: ${reason}` : rec;
}

export function mmhalTemplateSource(options: MmhalTemplateSourceOptions): Source<EvalRecord> {
  if (typeof options?.file !== 'string' || options.file === '') {
    throw new InvalidOptionError('file', 'must be an MMHal-Bench response_template.json (path or URL)');
  }
  if (options.requireAnswer !== undefined && typeof options.requireAnswer !== 'boolean') {
    throw new InvalidOptionError('requireAnswer', 'must be true or false');
  }
  const requireAnswer = options.requireAnswer ?? false;
  const input = inputFile(options.file, options.http);
  return {
    name: options.name ?? 'mmhal-template',
    async inputs(): Promise<InputFingerprint[]> {
      return [await input.fingerprint()];
    },
    async *read(ctx: SourceContext): AsyncIterable<EvalRecord> {
      const { index: part, count: parts } = ctx.partition;
      const local = await input.local(ctx.signal);
      for await (const { value, index, line, byteOffset } of jsonArrayRecords(local, { key: null, signal: ctx.signal })) {
        if (parts > 1 && index % parts !== part) continue;
        const origin = { file: input.input, line, byteOffset, index };
        const rec = mmhalToEval(value, index, requireAnswer);
        if (typeof rec === 'string') {
          ctx.reject(value, rec, origin);
          continue;
        }
        yield withOrigin(rec, origin);
      }
    },
  };
}
