/**
 * Byte-level readers for the raw dataset files: text lines, and the items of a top-level
 * JSON array without parsing the whole file.
 *
 * The JSON splitter only tracks strings, escapes and bracket depth; each item's bytes are
 * handed to `JSON.parse`. That is ~5x faster than `stream-json` and holds one item at a time
 * (DESIGN.md "Dependencies"). JSON's structural characters are ASCII, so working on raw UTF-8
 * bytes is safe.
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

export interface JsonItem {
  readonly value: unknown;
  /** 0-based position in the array. */
  readonly index: number;
  /** 1-based line where the item starts. */
  readonly line: number;
  /** 0-based byte offset where the item starts. */
  readonly byteOffset: number;
}

const QUOTE = 0x22, BACKSLASH = 0x5c, LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d;
const COMMA = 0x2c, NL = 0x0a;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * Streams the items of a top-level JSON array (A-OKVQA, LLaVA instruct, LLaVA-RLHF
 * preference files). Objects keyed by member (COCO, VQA-v2) go through `jsonArrayRecords`
 * in `json-records.ts`. Errors are BadInputErrors naming the file and byte offset.
 */
export async function* jsonArrayItems(file: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<JsonItem> {
  const stream = createReadStream(file, { highWaterMark: CHUNK, signal: options.signal });
  let depth = 0;
  let inString = false;
  let escape = false;
  let line = 1;
  let offset = 0; // absolute offset of the current chunk's first byte
  let started = false;
  let done = false;
  let inItem = false;
  let itemKind: 'container' | 'string' | 'scalar' = 'container';
  let itemStart = 0;
  let itemLine = 1;
  let pieces: Buffer[] = [];
  let pieceFrom = 0;
  let index = 0;

  const finishItem = (chunk: Buffer, end: number): JsonItem => {
    pieces.push(chunk.subarray(pieceFrom, end));
    const bytes = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
    pieces = [];
    inItem = false;
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new BadInputError(`item #${index} (line ${itemLine}) is not valid JSON: ${(err as Error).message}`, {
        file, byteOffset: itemStart, cause: err, fix: 'repair or re-download the file',
      });
    }
    return { value, index: index++, line: itemLine, byteOffset: itemStart };
  };

  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let i = 0;
      if (offset === 0 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3; // UTF-8 BOM
      const n = chunk.length;
      const ready: JsonItem[] = [];
      for (; i < n; i++) {
        const c = chunk[i]!;
        if (inString) {
          if (escape) escape = false;
          else if (c === BACKSLASH) escape = true;
          else if (c === QUOTE) {
            inString = false;
            if (inItem && itemKind === 'string' && depth === 1) ready.push(finishItem(chunk, i + 1));
          }
          continue;
        }
        if (c === NL) line++;
        if (isSpace(c)) {
          if (inItem && itemKind === 'scalar' && depth === 1) ready.push(finishItem(chunk, i));
          continue;
        }
        if (!started) {
          if (c !== LBRACKET) {
            throw new BadInputError(`expected a JSON array at the top level, found "${String.fromCharCode(c)}"`, {
              file, byteOffset: offset + i, fix: 'check that the file is the dataset file this source reads',
            });
          }
          started = true;
          depth = 1;
          continue;
        }
        if (depth === 1) {
          if (!inItem && c !== COMMA && c !== RBRACKET) {
            inItem = true;
            itemStart = offset + i;
            itemLine = line;
            pieceFrom = i;
            itemKind = c === LBRACE || c === LBRACKET ? 'container' : c === QUOTE ? 'string' : 'scalar';
          } else if (inItem && itemKind === 'scalar' && (c === COMMA || c === RBRACKET)) {
            ready.push(finishItem(chunk, i));
          }
        }
        if (c === QUOTE) inString = true;
        else if (c === LBRACE || c === LBRACKET) depth++;
        else if (c === RBRACE || c === RBRACKET) {
          depth--;
          if (inItem && itemKind === 'container' && depth === 1) ready.push(finishItem(chunk, i + 1));
          if (depth === 0) { done = true; break; }
        }
      }
      if (inItem) { pieces.push(chunk.subarray(pieceFrom)); pieceFrom = 0; }
      offset += n;
      for (const item of ready) yield item;
      if (done) break;
    }
  } catch (err) {
    throw readError(file, err);
  } finally {
    stream.destroy();
  }
  if (!started) throw new BadInputError('the file is empty; expected a JSON array', { file, byteOffset: 0, fix: 'check the path, or re-download the file' });
  if (!done) throw new BadInputError('the JSON ends inside the array (truncated file?)', { file, byteOffset: offset, fix: 're-download the file' });
}

function readError(file: string, err: unknown): Error {
  if (err instanceof BadInputError) return err;
  if ((err as { name?: string }).name === 'AbortError') return err as Error;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new BadInputError('file not found', { file, cause: err, fix: 'check the path' });
  if (code === 'EISDIR') return new BadInputError('is a folder, expected a file', { file, cause: err, fix: 'give the file inside it' });
  return new BadInputError(`cannot read: ${(err as Error).message}`, { file, cause: err });
}
