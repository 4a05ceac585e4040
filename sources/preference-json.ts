/**
 * LLaVA-RLHF human preference data (`llava_7b_v1_preference.json` in
 * `zhiqings/LLaVA-Human-Preference-10K`): a top-level JSON array of
 * `{image, conversations, output_1: {from, value}, output_2, preference: 1|2, hallucination}`.
 *
 * Read as LLaVA-RLHF's reward-model loader reads it (`data_utils_rm.py`):
 * - `conversations` may be wrapped in a one-element list (`[[...turns]]`): unwrapped;
 * - its last turn is the gpt turn the outputs replace: it is dropped, so the record's
 *   `conversations` are the prompt turns ending with the human turn being answered;
 * - `output_k` is an object whose `value` is the response (a plain string is accepted too);
 * - `preference` must be 1 or 2 (the loader maps `{1: 0, 2: 1}` and fails on anything else):
 *   other values are rejected with that reason.
 * `hallucination` is kept as a boolean (true/false, 1/0, "true"/"false"), null when absent.
 * Facts start empty; `to-preference` attaches them.
 */
import { withOrigin } from '../src/stream/origin.ts';
import type { Source, SourceContext } from '../src/stream/stage.ts';
import { preferenceSchema, type Preference } from '../schemas/preference.ts';
import { jsonArrayFiles } from './json-array-files.ts';
import { checkImagePrefix, placeImageToken, readTurns } from './llava-instruct.ts';
import type { HttpOptions } from './resolve-input.ts';

export interface PreferenceJsonSourceOptions {
  readonly file: string | readonly string[];
  /** Prepended to each item's `image` (default `coco/train2017/`). */
  readonly imagePrefix?: string;
  readonly sha256?: Readonly<Record<string, string>>;
  readonly http?: HttpOptions;
  /** Source name (default `preference-json`). */
  readonly name?: string;
}

function readOutput(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { value?: unknown }).value === 'string') return (v as { value: string }).value;
  return undefined;
}

function readFlag(v: unknown): boolean | null | undefined {
  if (v === undefined || v === null) return null;
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1;
  if (typeof v === 'string' && /^(true|false|yes|no|0|1)$/i.test(v)) return /^(true|yes|1)$/i.test(v);
  return undefined;
}

/** Converts one raw preference item; a reason string when it cannot be used. */
export function toPreferenceRecord(raw: unknown, index: number, imagePrefix: string): Preference | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'expected an object';
  const o = raw as Record<string, unknown>;
  const id = typeof o['id'] === 'string' || typeof o['id'] === 'number' ? String(o['id']) : `preference-${index}`;
  const who = `item ${id}`;
  const pref = typeof o['preference'] === 'string' && /^[12]$/.test(o['preference']) ? Number(o['preference']) : o['preference'];
  if (pref !== 1 && pref !== 2) return `${who}: "preference" must be 1 or 2 (which output people preferred), got ${JSON.stringify(o['preference'])}`;
  const out1 = readOutput(o['output_1']);
  const out2 = readOutput(o['output_2']);
  if (out1 === undefined) return `${who}: "output_1" must be {from, value} (or a string)`;
  if (out2 === undefined) return `${who}: "output_2" must be {from, value} (or a string)`;
  const hallucination = readFlag(o['hallucination']);
  if (hallucination === undefined) return `${who}: "hallucination" must be a boolean (or 0/1), got ${JSON.stringify(o['hallucination'])}`;
  let conv = o['conversations'];
  if (Array.isArray(conv) && conv.length === 1 && Array.isArray(conv[0])) conv = conv[0];
  const turns = readTurns(conv);
  if (typeof turns === 'string') return `${who}: ${turns}`;
  // The last gpt turn is the placeholder the two outputs replace.
  const prompt = turns.length > 0 && turns[turns.length - 1]!.from === 'gpt' ? turns.slice(0, -1) : turns;
  if (o['image'] !== undefined && o['image'] !== null && typeof o['image'] !== 'string') return `${who}: "image" must be a string file name`;
  const image = typeof o['image'] === 'string' && o['image'] !== '' ? imagePrefix + o['image'] : null;
  const placed = placeImageToken(prompt, image !== null);
  if (typeof placed === 'string') return `${who}: ${placed}`;
  const rec: Preference = {
    id, image, conversations: placed, output_1: out1.trim(), output_2: out2.trim(), preference: pref, hallucination, facts: [],
  };
  const reason = preferenceSchema.validate(rec);
  return reason ? `${who}: ${reason}` : rec;
}

/** Reads LLaVA-RLHF preference files as `preference` records (see the module comment). */
export function preferenceJsonSource(options: PreferenceJsonSourceOptions): Source<Preference> {
  const files = jsonArrayFiles(options);
  const imagePrefix = checkImagePrefix(options.imagePrefix);
  const name = options.name ?? 'preference-json';
  return {
    name,
    inputs: files.inputs,
    async *read(ctx: SourceContext): AsyncIterable<Preference> {
      const { index: part, count: parts } = ctx.partition;
      // partitions and origins count across all the files
      for await (const { value, ordinal: index, origin: at } of files.elements(ctx)) {
        if (parts > 1 && index % parts !== part) continue;
        const origin = { ...at, index };
        const rec = toPreferenceRecord(value, index, imagePrefix);
        if (typeof rec === 'string') {
          ctx.reject(value, rec, origin);
          continue;
        }
        yield withOrigin(rec, origin);
      }
    },
  };
}
