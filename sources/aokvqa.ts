/**
 * A-OKVQA (Schwenk et al. 2022): `aokvqa_v1p0_{train,val,test}.json`, a top-level JSON
 * array of questions. Streamed item by item (`jsonArrayFiles`), so memory does not grow with
 * the file. Items whose shape is wrong are rejected with their byte offset; whether the
 * answer index is usable is the transform's business (the test split has none).
 */
import { withOrigin } from '../src/stream/origin.ts';
import type { Source, SourceContext } from '../src/stream/stage.ts';
import type { AokvqaItem } from '../schemas/aokvqa-item.ts';
import { jsonArrayFiles } from './json-array-files.ts';
import type { HttpOptions } from './resolve-input.ts';

export type { AokvqaItem } from '../schemas/aokvqa-item.ts';

export interface AokvqaSourceOptions {
  /** One file or several (e.g. train and val), each a local path or an http(s) URL. */
  readonly file: string | readonly string[];
  /** Expected sha256 per URL (hex), checked after download. */
  readonly sha256?: Readonly<Record<string, string>>;
  readonly http?: HttpOptions;
  /** Source name (default `aokvqa`). */
  readonly name?: string;
}

/** Null when `v` has the shape of an A-OKVQA item, else the reason. */
export function checkAokvqaItem(v: unknown): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'expected an object';
  const o = v as Record<string, unknown>;
  if (typeof o['question_id'] !== 'string' || o['question_id'] === '') return '"question_id" must be a non-empty string';
  const who = `question_id ${o['question_id']}`;
  if (!Number.isSafeInteger(o['image_id']) || (o['image_id'] as number) < 0) return `${who}: "image_id" must be a non-negative integer, got ${JSON.stringify(o['image_id'])}`;
  if (typeof o['question'] !== 'string' || o['question'].trim() === '') return `${who}: "question" must be a non-empty string`;
  const choices = o['choices'];
  if (!Array.isArray(choices) || choices.length === 0 || !choices.every((c) => typeof c === 'string')) return `${who}: "choices" must be a list of strings`;
  const idx = o['correct_choice_idx'];
  if (idx !== undefined && idx !== null && typeof idx !== 'number') return `${who}: "correct_choice_idx" must be a number, got ${JSON.stringify(idx)}`;
  for (const k of ['rationales', 'direct_answers'] as const) {
    const list = o[k];
    if (list !== undefined && list !== null && (!Array.isArray(list) || !list.every((r) => typeof r === 'string'))) return `${who}: "${k}" must be a list of strings`;
  }
  return null;
}

/** Reads A-OKVQA question files in the order given. */
export function aokvqaSource(options: AokvqaSourceOptions): Source<AokvqaItem> {
  const files = jsonArrayFiles(options);
  const name = options.name ?? 'aokvqa';
  return {
    name,
    inputs: files.inputs,
    async *read(ctx: SourceContext): AsyncIterable<AokvqaItem> {
      const { index: part, count: parts } = ctx.partition;
      // partitions and origins count within each file (a question's place in its split)
      for await (const { value, origin } of files.elements(ctx)) {
        if (parts > 1 && origin.index % parts !== part) continue;
        const reason = checkAokvqaItem(value);
        if (reason) {
          ctx.reject(value, `not an A-OKVQA question: ${reason}`, origin);
          continue;
        }
        const o = value as Record<string, unknown>;
        const item: AokvqaItem = {
          split: typeof o['split'] === 'string' ? o['split'] : '',
          image_id: o['image_id'] as number,
          question_id: o['question_id'] as string,
          question: o['question'] as string,
          choices: o['choices'] as string[],
          correct_choice_idx: typeof o['correct_choice_idx'] === 'number' ? o['correct_choice_idx'] : null,
          direct_answers: (o['direct_answers'] as string[] | undefined) ?? [],
          difficult_direct_answer: o['difficult_direct_answer'] === true,
          rationales: (o['rationales'] as string[] | undefined) ?? [],
        };
        yield withOrigin(item, origin);
      }
    },
  };
}
