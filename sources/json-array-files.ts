/**
 * The files of a source that reads top-level JSON arrays (A-OKVQA, LLaVA instruct, LLaVA-RLHF
 * preference JSON): the `file` option (one path or URL, or a list) checked at the factory, the
 * inputs' fingerprints, and every element of every file in order with where it came from.
 * Elements are split by `jsonArrayRecords` (`key: null`), so each is parsed on its own and
 * memory does not grow with the file.
 */
import { InvalidOptionError } from '../src/errors.ts';
import type { Origin } from '../src/stream/origin.ts';
import type { InputFingerprint, SourceContext } from '../src/stream/stage.ts';
import { jsonArrayRecords } from './json-records.ts';
import { inputFile, type HttpOptions } from './resolve-input.ts';

export interface JsonArrayFilesOptions {
  /** One file or several, each a local path or an http(s) URL. */
  readonly file: string | readonly string[];
  /** Expected sha256 per URL (hex), checked after download. */
  readonly sha256?: Readonly<Record<string, string>>;
  readonly http?: HttpOptions;
}

export interface JsonArrayElement {
  readonly value: unknown;
  /** 0-based position of the element across all the files, in the order given. */
  readonly ordinal: number;
  /** Where it came from: the path or URL as given, its line and byte offset, and its index within that file. */
  readonly origin: Required<Pick<Origin, 'file' | 'line' | 'byteOffset' | 'index'>>;
}

export interface JsonArrayFiles {
  /** Fingerprints of every file (downloads URLs once), for the manifest. */
  inputs(): Promise<InputFingerprint[]>;
  /** Every element of every file, in order. */
  elements(ctx: SourceContext): AsyncIterable<JsonArrayElement>;
}

/** Checks `options.file` now (InvalidOptionError naming `file`); files are opened when read. */
export function jsonArrayFiles(options: JsonArrayFilesOptions): JsonArrayFiles {
  const files = typeof options?.file === 'string' ? [options.file] : options?.file;
  if (!Array.isArray(files) || files.length === 0 || !files.every((f) => typeof f === 'string' && f !== '')) {
    throw new InvalidOptionError('file', 'must be a path or URL (or a non-empty list of them)');
  }
  const inputs = files.map((f: string) => inputFile(f, { ...options.http, sha256: options.sha256?.[f] }));
  return {
    inputs: () => Promise.all(inputs.map((i) => i.fingerprint())),
    async *elements(ctx: SourceContext): AsyncIterable<JsonArrayElement> {
      let ordinal = 0;
      for (const input of inputs) {
        const path = await input.local(ctx.signal, ctx.note);
        for await (const { value, line, byteOffset, index } of jsonArrayRecords(path, { key: null, signal: ctx.signal })) {
          yield { value, ordinal: ordinal++, origin: { file: input.input, line, byteOffset, index } };
        }
      }
    },
  };
}
