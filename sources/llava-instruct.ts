/**
 * LLaVA instruction data (`llava_instruct_150k.json` and its parts `detail_23k.json`,
 * `complex_reasoning_77k.json`, `conversation_58k.json`): a top-level JSON array of
 * `{id, image, conversations: [{from, value}]}`, streamed item by item.
 *
 * Each item becomes a `conversation` record (source `llava`):
 * - `image` is `imagePrefix + image` (LLaVA names COCO train2017 files, `000000033471.jpg`);
 * - `<image>` is moved to the start of the first human turn as `<image>\n` (the raw data has
 *   it before *or after* the question, as LLaVA's own preprocessing accepts);
 * - ids repeat in the 150k file (one image has a conversation, a description and a reasoning
 *   item), so the second and later items with a raw id get `-2`, `-3`... (a Set of ids seen:
 *   ~10 MB for 158k ids). Partitions are cut by a hash of the raw id so this stays stable.
 * Items that break the conversation schema are rejected with the schema's reason.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { withOrigin } from '../src/stream/origin.ts';
import { hash32 } from '../src/stream/random.ts';
import type { Source, SourceContext } from '../src/stream/stage.ts';
import { conversationSchema, type Conversation, type Turn } from '../schemas/conversation.ts';
import { jsonArrayFiles } from './json-array-files.ts';
import type { HttpOptions } from './resolve-input.ts';

export interface LlavaInstructSourceOptions {
  /** One file or several, each a local path or an http(s) URL. */
  readonly file: string | readonly string[];
  /** Prepended to each item's `image` (default `coco/train2017/`; '' keeps it as is). */
  readonly imagePrefix?: string;
  /** The records' `source` field (default `llava`). */
  readonly sourceLabel?: string;
  readonly sha256?: Readonly<Record<string, string>>;
  readonly http?: HttpOptions;
  /** Source name (default `llava-instruct`). */
  readonly name?: string;
}

const IMAGE = '<image>';

/**
 * Puts `<image>` where the schema wants it: `<image>\n` at the start of the first human turn
 * (removing it from wherever the raw text had it). Returns a reason string when the turns
 * cannot be fixed (image token elsewhere, or a token without an image).
 */
export function placeImageToken(turns: Turn[], hasImage: boolean): Turn[] | string {
  const out = turns.map((t) => ({ from: t.from, value: t.value }));
  for (let i = 1; i < out.length; i++) {
    if (out[i]!.value.includes(IMAGE)) return `turn ${i} holds "<image>" (only the first human turn may)`;
  }
  const first = out[0];
  if (!first) return 'no turns';
  if (!hasImage) return first.value.includes(IMAGE) ? 'turn 0 holds "<image>" but the item has no image' : out;
  const text = first.value.split(IMAGE).map((s) => s.trim()).filter((s) => s !== '').join('\n');
  first.value = `${IMAGE}\n${text}`;
  return out;
}

/**
 * Checks an `imagePrefix` option (LLaVA and preference items name bare COCO files): a relative
 * folder inside the image root. Returns it, default `coco/train2017/`.
 */
export function checkImagePrefix(imagePrefix: unknown): string {
  const prefix = imagePrefix ?? 'coco/train2017/';
  if (typeof prefix !== 'string' || prefix.startsWith('/') || prefix.split('/').includes('..')) {
    throw new InvalidOptionError('imagePrefix', `must be a relative folder inside the image root, got ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/** Reads raw `{from, value}` turns; a reason string when they are not that shape. */
export function readTurns(raw: unknown, field = 'conversations'): Turn[] | string {
  if (!Array.isArray(raw)) return `"${field}" must be a list of {from, value}`;
  const turns: Turn[] = [];
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i] as { from?: unknown; value?: unknown } | null;
    if (typeof t !== 'object' || t === null || typeof t.value !== 'string') return `${field}[${i}] must be {from, value} with a string value`;
    if (t.from !== 'human' && t.from !== 'gpt') return `${field}[${i}].from must be "human" or "gpt", got ${JSON.stringify(t.from)}`;
    turns.push({ from: t.from, value: t.value });
  }
  return turns;
}

/** Reads LLaVA instruction files as `conversation` records (see the module comment). */
export function llavaInstructSource(options: LlavaInstructSourceOptions): Source<Conversation> {
  const files = jsonArrayFiles(options);
  const imagePrefix = checkImagePrefix(options.imagePrefix);
  const label = options.sourceLabel ?? 'llava';
  const name = options.name ?? 'llava-instruct';
  return {
    name,
    inputs: files.inputs,
    async *read(ctx: SourceContext): AsyncIterable<Conversation> {
      const { index: part, count: parts } = ctx.partition;
      const seen = new Map<string, number>();
      for await (const element of files.elements(ctx)) {
        const { value, ordinal: index } = element;
        const origin = { ...element.origin, index };
        const o = value as { id?: unknown; image?: unknown; conversations?: unknown } | null;
        if (typeof o !== 'object' || o === null || Array.isArray(o)) {
          ctx.reject(value, 'not a LLaVA item: expected an object', origin);
          continue;
        }
        const rawId = typeof o.id === 'string' || typeof o.id === 'number' ? String(o.id) : `${label}-${index}`;
        if (parts > 1 && hash32(rawId) % parts !== part) continue;
        const k = (seen.get(rawId) ?? 0) + 1;
        seen.set(rawId, k);
        const id = k === 1 ? rawId : `${rawId}-${k}`;
        if (o.image !== undefined && o.image !== null && typeof o.image !== 'string') {
          ctx.reject(value, `item ${rawId}: "image" must be a string file name`, origin);
          continue;
        }
        const image = typeof o.image === 'string' && o.image !== '' ? imagePrefix + o.image : null;
        const turns = readTurns(o.conversations);
        const placed = typeof turns === 'string' ? turns : placeImageToken(turns, image !== null);
        if (typeof placed === 'string') {
          ctx.reject(value, `item ${rawId}: ${placed}`, origin);
          continue;
        }
        const rec: Conversation = { id, image, conversations: placed, source: label, meta: k === 1 ? '' : JSON.stringify({ raw_id: rawId }) };
        const reason = conversationSchema.validate(rec);
        if (reason) {
          ctx.reject(value, `item ${rawId}: ${reason}`, origin);
          continue;
        }
        yield withOrigin(rec, origin);
      }
    },
  };
}
