/**
 * Byte-level reader for the raw dataset text files (Flickr30k sentences, split lists, JSON
 * Lines): one line at a time with its line number and byte offset. JSON arrays are read by
 * `jsonArrayRecords` in `json-records.ts`.
 */
import { createReadStream } from 'node:fs';
import { BadInputError } from '../src/errors.ts';

const CHUNK = 1 << 20;

export interface TextLine {
  /** The line without its `\n` / `\r\n`. */
  readonly text: string;
  /** 1-based. */
  readonly line: number;
  /** 0-based byte offset of the line's first byte. */
  readonly byteOffset: number;
}

/** Streams the lines of a text file (LF or CRLF); a last line without newline is kept. */
export async function* readLines(file: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<TextLine> {
  const stream = createReadStream(file, { highWaterMark: CHUNK, signal: options.signal });
  let pending: Buffer[] = [];
  let lineStart = 0;
  let offset = 0;
  let line = 1;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let from = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, from);
        if (nl < 0) break;
        pending.push(chunk.subarray(from, nl));
        const bytes = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        pending = [];
        yield { text: stripCr(bytes.toString('utf8')), line, byteOffset: lineStart };
        line++;
        lineStart = offset + nl + 1;
        from = nl + 1;
      }
      if (from < chunk.length) pending.push(chunk.subarray(from));
      offset += chunk.length;
    }
  } catch (err) {
    throw readError(file, err);
  }
  if (pending.length > 0) {
    const text = stripCr(Buffer.concat(pending).toString('utf8'));
    if (text.length > 0) yield { text, line, byteOffset: lineStart };
  }
}

function stripCr(text: string): string {
  return text.endsWith('\r') ? text.slice(0, -1) : text;
}

function readError(file: string, err: unknown): Error {
  if (err instanceof BadInputError) return err;
  if ((err as { name?: string }).name === 'AbortError') return err as Error;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new BadInputError('file not found', { file, cause: err, fix: 'check the path' });
  if (code === 'EISDIR') return new BadInputError('is a folder, expected a file', { file, cause: err, fix: 'give the file inside it' });
  return new BadInputError(`cannot read: ${(err as Error).message}`, { file, cause: err });
}
