/**
 * COCO captions (`captions_{train,val}{2014,2017}.json`): one item per image with its
 * captions. The annotations are not sorted by image, so they are read first (streamed,
 * `jsonArrayRecords` on `annotations`) into a Map image id -> captions, then `images` is
 * streamed and each image yielded with its captions. Memory is the captions' text (~40 MB
 * for train2014's 414k captions), never the parsed file (JSON.parse of the whole ~20 MB
 * file would also be acceptable; streaming keeps byte offsets for error messages).
 *
 * Captions are trimmed and inner whitespace runs collapsed to one space; case and final
 * punctuation are kept as written (the real data has 10-20% lower-case starts and missing
 * periods: facts should quote people, not a normaliser).
 */
import { InvalidOptionError } from '../src/errors.ts';
import { withOrigin } from '../src/stream/origin.ts';
import type { InputFingerprint, Source, SourceContext } from '../src/stream/stage.ts';
import type { CocoCaptionsItem } from '../schemas/coco-captions-item.ts';
import { jsonArrayRecords } from './json-records.ts';
import { inputFile, type HttpOptions } from './resolve-input.ts';

export type { CocoCaptionsItem } from '../schemas/coco-captions-item.ts';

export interface CocoCaptionsSourceOptions {
  /** A captions JSON file: local path or http(s) URL. */
  readonly file: string;
  readonly sha256?: string;
  readonly http?: HttpOptions;
  /** Source name (default `coco-captions`). */
  readonly name?: string;
}

export function normalizeCaption(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Reads a COCO captions file as per-image `CocoCaptionsItem`s, in `images` order. */
export function cocoCaptionsSource(options: CocoCaptionsSourceOptions): Source<CocoCaptionsItem> {
  if (typeof options?.file !== 'string' || options.file === '') throw new InvalidOptionError('file', 'must be the path or URL of a COCO captions JSON file');
  const name = options.name ?? 'coco-captions';
  const input = inputFile(options.file, { ...options.http, sha256: options.sha256 });
  return {
    name,
    async inputs(): Promise<InputFingerprint[]> {
      return [await input.fingerprint()];
    },
    async *read(ctx: SourceContext): AsyncIterable<CocoCaptionsItem> {
      const path = await input.local(ctx.signal, ctx.note);
      const fix = 'a COCO captions file has "images" and "annotations" arrays (captions_train2014.json)';
      const captions = new Map<number, string[]>();
      for await (const rec of jsonArrayRecords(path, { key: 'annotations', signal: ctx.signal, missingFix: fix })) {
        const a = rec.value as { image_id?: unknown; caption?: unknown } | null;
        const origin = { file: options.file, line: rec.line, byteOffset: rec.byteOffset, index: rec.index };
        if (typeof a !== 'object' || a === null || !Number.isSafeInteger(a.image_id) || typeof a.caption !== 'string') {
          ctx.reject(rec.value, 'caption annotation needs an integer "image_id" and a string "caption"', origin);
          continue;
        }
        const text = normalizeCaption(a.caption);
        if (text === '') {
          ctx.reject(rec.value, `image ${String(a.image_id)}: empty caption`, origin);
          continue;
        }
        const list = captions.get(a.image_id as number);
        if (list) list.push(text);
        else captions.set(a.image_id as number, [text]);
      }
      const { index: part, count: parts } = ctx.partition;
      for await (const rec of jsonArrayRecords(path, { key: 'images', signal: ctx.signal, missingFix: fix })) {
        const im = rec.value as { id?: unknown; file_name?: unknown; width?: unknown; height?: unknown } | null;
        const origin = { file: options.file, line: rec.line, byteOffset: rec.byteOffset, index: rec.index };
        if (typeof im !== 'object' || im === null || !Number.isSafeInteger(im.id) || typeof im.file_name !== 'string') {
          ctx.reject(rec.value, 'image entry needs an integer "id" and a string "file_name"', origin);
          continue;
        }
        const id = im.id as number;
        const list = captions.get(id) ?? [];
        captions.delete(id);
        if (parts > 1 && rec.index % parts !== part) continue;
        const item: CocoCaptionsItem = {
          image_id: id,
          file_name: im.file_name,
          width: typeof im.width === 'number' ? im.width : 0,
          height: typeof im.height === 'number' ? im.height : 0,
          captions: list,
        };
        yield withOrigin(item, origin);
      }
      // Captions of images the file does not list cannot be placed: say so.
      for (const [id, list] of captions) {
        ctx.reject({ image_id: id, captions: list }, `${list.length} caption(s) for image ${id}, which is not in "images"`, { file: options.file });
      }
    },
  };
}
