/**
 * Streams the elements of one array member of a big top-level JSON object
 * (`{"info": {...}, "annotations": [ {...}, {...}, ... ]}`, COCO and VQA-v2), or of a
 * top-level array (`[ {...}, {...} ]`, A-OKVQA, LLaVA instruct, preference JSON: `key: null`),
 * one element at a time. The one JSON splitter of the project: other readers build on it.
 *
 * Approach: a byte-level splitter, then `JSON.parse` per element. The file is read in
 * chunks with `fs.createReadStream`; a small state machine walks the bytes, tracking only
 * whether it is inside a string (and after a backslash) and the bracket depth, so it finds
 * where each element of the `key` array starts and ends without parsing it. The elements that
 * end inside one chunk form one contiguous run (`elem, elem, ...`), decoded as UTF-8 and parsed
 * with a single `JSON.parse("[" + run + "]")`; an element that spans chunks is copied together
 * and parsed alone. Decoding whole elements means a multi-byte character split between two
 * chunks is never decoded in halves, and `JSON.parse` validates every element (a bad one is
 * re-parsed alone to name it). Memory is bounded by one chunk's elements plus the largest
 * element, not by the file (the official VQA-v2 annotations are one 340 MB line; `JSON.parse`
 * on the whole of it needs ~720 MB of RSS).
 *
 * Other top-level members (`info`, `data_subtype`, ...) are collected into `members` as they
 * are passed, so a reader can look at `members.data_subtype` when the first element arrives
 * if that member comes before the array (members after it are there once iteration ended).
 * Members larger than `maxMemberBytes` are skipped, not buffered.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAscii } from 'node:buffer';
import { AbortedError, BadInputError, InvalidOptionError } from '../src/errors.ts';

export interface JsonRecord {
  /** The element, as `JSON.parse` returned it. */
  readonly value: unknown;
  /** 0-based byte offset of the element's first byte in the file. */
  readonly byteOffset: number;
  /** 1-based line of the element's first byte (1 for one-line files). */
  readonly line: number;
  /** 0-based position of the element in the array. */
  readonly index: number;
}

export interface JsonArrayRecordsOptions {
  /**
   * Name of the top-level member whose array elements are streamed (e.g. `annotations`);
   * `null` when the file's top-level value is itself the array.
   */
  readonly key: string | null;
  readonly signal?: AbortSignal;
  /** Read chunk size in bytes (default 1 MiB). */
  readonly chunkBytes?: number;
  /** Other top-level members bigger than this are skipped instead of collected (default 1 MiB). */
  readonly maxMemberBytes?: number;
  /** Appended to the "no such file" error (e.g. how to generate the data). */
  readonly missingFix?: string;
}

export interface JsonArrayRecords extends AsyncIterable<JsonRecord> {
  readonly file: string;
  readonly key: string | null;
  /**
   * Top-level members other than `key` (values parsed), filled as the reader passes them
   * (always empty for a top-level array):
   * the ones before the array are present when its first element is yielded, all of them
   * once iteration has finished. Reset when iteration starts again.
   */
  readonly members: Readonly<Record<string, unknown>>;
  /** Names of members skipped for exceeding `maxMemberBytes`. */
  readonly skippedMembers: readonly string[];
  /**
   * The same records, a chunk's worth at a time (in order, each array fresh): for hot loops
   * that would rather not pay one async step per record.
   */
  batches(): AsyncIterable<JsonRecord[]>;
}

// byte values
const QUOTE = 0x22;
const BSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACK = 0x5b;
const RBRACK = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const NL = 0x0a;

const BOM = [0xef, 0xbb, 0xbf];

function isWs(c: number): boolean {
  return c === 0x20 || c === NL || c === 0x09 || c === 0x0d;
}

// parser states (plain numbers: const enums do not survive isolatedModules across tools)
const S_START = 0; // before the top-level '{'
const S_KEY = 1; // inside the top-level object, expecting a member name or '}'
const S_KEY_AFTER_COMMA = 2; // expecting a member name (not '}')
const S_COLON = 3; // after a member name
const S_VALUE = 4; // expecting a member value
const S_AFTER_MEMBER = 5; // expecting ',' or '}'
const S_ARR_FIRST = 6; // just after the target array's '[': element or ']'
const S_ARR_NEXT = 7; // after ',' in the target array: an element
const S_AFTER_ELEM = 8; // expecting ',' or ']'
const S_VAL = 9; // inside a value (an element or another member's value)
const S_END = 10; // after the top-level '}'

// value kinds while in S_VAL
const V_CONTAINER = 0;
const V_STRING = 1;
const V_LITERAL = 2;

function describe(c: number): string {
  if (c === LBRACE) return 'an object';
  if (c === LBRACK) return 'an array';
  if (c === QUOTE) return 'a string';
  if (c === 0x74 || c === 0x66) return 'a boolean';
  if (c === 0x6e) return 'null';
  return 'a number';
}

function show(c: number): string {
  return c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, '0')}`;
}

/**
 * UTF-8 decoding, with a fast path: pure-ASCII bytes (nearly all of VQA-style data) are copied
 * as latin1, which is a plain copy into a one-byte string. A single non-ASCII character makes
 * V8's UTF-8 decoder build a two-byte string of the whole range, which is slower to decode,
 * twice the memory, and slower for JSON.parse.
 */
function decode(buf: Buffer, from: number, to: number): string {
  return buf.toString(isAscii(buf.subarray(from, to)) ? 'latin1' : 'utf8', from, to);
}

/** Where the skip of a value stands across chunk boundaries. */
interface Scan {
  /** Bracket depth inside the current container value. */
  depth: number;
  /** The chunk ended inside a string... */
  inStr: boolean;
  /** ...right after a backslash. */
  esc: boolean;
  /** Newlines passed (for line numbers); the caller adds and resets it. */
  lines: number;
}

/**
 * Skips a string's body from `i` (just after the opening quote or where the last chunk ended);
 * returns the index after the closing quote, or -1 if the chunk ends first (state in `s`).
 */
function skipString(buf: Buffer, i: number, s: Scan): number {
  const n = buf.length;
  if (s.esc) { s.esc = false; i++; }
  while (i < n) {
    const c = buf[i]!;
    if (c === QUOTE) return i + 1;
    if (c === BSLASH) {
      if (i + 1 >= n) { s.esc = true; return -1; }
      i += 2;
    } else i++;
  }
  return -1;
}

/**
 * Skips a container value from `i` (after its opening bracket, depth in `s`); returns the index
 * after its closing bracket, or -1 if the chunk ends first (state in `s`). Brackets are not
 * matched by kind here: `JSON.parse` of the element rejects a mismatch.
 */
function skipContainer(buf: Buffer, i: number, s: Scan): number {
  const n = buf.length;
  let depth = s.depth;
  let lines = 0;
  if (s.inStr) {
    const j = skipString(buf, i, s);
    if (j < 0) return -1;
    s.inStr = false;
    i = j;
  }
  while (i < n) {
    const c = buf[i]!;
    if (c === QUOTE) {
      // short strings dominate: skip them inline
      i++;
      for (;;) {
        if (i >= n) { s.inStr = true; s.depth = depth; s.lines += lines; return -1; }
        const d = buf[i]!;
        if (d === QUOTE) break;
        if (d === BSLASH) {
          if (i + 1 >= n) { s.inStr = true; s.esc = true; s.depth = depth; s.lines += lines; return -1; }
          i += 2;
        } else i++;
      }
    } else if (c === LBRACE || c === LBRACK) depth++;
    else if (c === RBRACE || c === RBRACK) {
      if (--depth === 0) { s.depth = 0; s.lines += lines; return i + 1; }
    } else if (c === NL) lines++;
    i++;
  }
  s.depth = depth;
  s.lines += lines;
  return -1;
}

/**
 * Streams `file`'s top-level `key` array (or, with `key: null`, the top-level array) element
 * by element. Options are checked now; the file is opened when iteration starts. Errors are
 * `BadInputError`s naming the file, byte offset and line: missing/empty file, truncated JSON,
 * wrong top-level value, no such member, member not an array, an element that is not valid JSON.
 */
export function jsonArrayRecords(file: string, options: JsonArrayRecordsOptions): JsonArrayRecords {
  if (typeof file !== 'string' || file === '') throw new InvalidOptionError('file', 'must be a non-empty path');
  if (options?.key !== null && (typeof options?.key !== 'string' || options.key === '')) throw new InvalidOptionError('key', 'must be a non-empty member name, or null for a top-level array');
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new InvalidOptionError('chunkBytes', `must be a positive integer, got ${String(chunkBytes)}`);
  const maxMemberBytes = options.maxMemberBytes ?? 1 << 20;
  if (!Number.isInteger(maxMemberBytes) || maxMemberBytes < 0) throw new InvalidOptionError('maxMemberBytes', `must be a non-negative integer, got ${String(maxMemberBytes)}`);
  const { key, signal, missingFix } = options;
  const topLevel = key === null;
  const keyBytes = Buffer.from(key ?? '', 'utf8');
  // how messages name the array, and what the top-level value must be
  const arrayName = topLevel ? 'the top-level array' : `"${key}"`;
  const topKind = topLevel ? 'array' : 'object';

  let members: Record<string, unknown> = {};
  let skipped: string[] = [];

  async function* batches(): AsyncGenerator<JsonRecord[]> {
    members = {};
    skipped = [];
    const memberSink = members;
    const skippedSink = skipped;

    let size: number;
    try {
      const st = await stat(file);
      if (st.isDirectory()) throw new BadInputError('is a directory, not a JSON file', { file, fix: 'pass the JSON file inside it' });
      size = st.size;
    } catch (err) {
      if (err instanceof BadInputError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new BadInputError('no such file', { file, cause: err, fix: missingFix ?? 'check the path' });
      throw new BadInputError(`cannot read the file (${code ?? String(err)})`, { file, cause: err });
    }
    if (size === 0) throw new BadInputError(`byte 0: the file is empty (0 bytes), expected a JSON ${topKind}`, { file, byteOffset: 0, line: 1, fix: 're-download or regenerate it' });

    const fail = (detail: string, byteOffset: number, line: number, cause?: unknown): never => {
      throw new BadInputError(`byte ${byteOffset}: ${detail}`, { file, byteOffset, line, cause });
    };
    const noMember = (at: number, atLine: number): never => {
      const names = Object.keys(memberSink).concat(skippedSink);
      return fail(`the top-level object has no member "${key}" (it has: ${names.length ? names.map((k) => `"${k}"`).join(', ') : 'no members'})`, at, atLine);
    };

    let state = S_START;
    let bomSeen = 0; // bytes of a leading BOM passed
    let line = 1;
    let base = 0; // absolute offset of the current chunk's first byte
    let found = false; // the target array was seen
    let arrayDone = false;
    let index = 0;

    // member name being read (S_KEY..): raw bytes, decoded when complete
    let nameParts: Buffer[] = [];
    let nameEsc = false;
    let inName = false;
    let memberName = '';
    let memberStartAbs = 0;

    // the value being scanned in S_VAL
    let vKind = V_CONTAINER;
    const scan: Scan = { depth: 0, inStr: false, esc: false, lines: 0 };
    let vIsElem = false;
    let vCapture = true;
    let vStartAbs = 0;
    let vLine = 1;
    let parts: Buffer[] = [];
    let partsBytes = 0;

    // Complete elements of the current chunk form one contiguous run of bytes,
    // `elem, elem, ...`: parsing `[run]` once costs far less than one JSON.parse per element.
    let ready: JsonRecord[] = [];
    let runStart = -1;
    let runEnd = -1;
    let runIndex = 0;
    const runOffsets: number[] = [];
    const runLines: number[] = [];

    const parseOne = (text: string, what: string, at: number, atLine: number): unknown => {
      try {
        return JSON.parse(text);
      } catch (err) {
        return fail(`${what} (starting at byte ${at}, line ${atLine}) is not valid JSON: ${(err as Error).message}`, at, atLine, err);
      }
    };

    const flushRun = (buf: Buffer): void => {
      const count = runOffsets.length;
      let values: unknown[] | undefined;
      try {
        values = JSON.parse(`[${decode(buf, runStart, runEnd)}]`) as unknown[];
      } catch {
        values = undefined; // find the bad element below, for a precise message
      }
      const local = runOffsets[0]! - runStart; // absolute offset of the chunk
      for (let k = 0; k < count; k++) {
        let value: unknown;
        if (values !== undefined && values.length === count) value = values[k];
        else {
          const from = runOffsets[k]! - local;
          const to = k + 1 < count ? runOffsets[k + 1]! - local : runEnd;
          // the bytes between two elements are ', ' and whitespace: trim them off
          let e = to;
          if (k + 1 < count) {
            while (e > from && (isWs(buf[e - 1]!) || buf[e - 1] === COMMA)) e--;
          }
          value = parseOne(buf.toString('utf8', from, e), `element #${runIndex + k} of ${arrayName}`, runOffsets[k]!, runLines[k]!);
        }
        ready.push({ value, byteOffset: runOffsets[k]!, line: runLines[k]!, index: runIndex + k });
      }
      runOffsets.length = 0;
      runLines.length = 0;
    };

    const stream = createReadStream(file, { highWaterMark: chunkBytes });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (signal?.aborted) throw new AbortedError(`reading ${file} was aborted`, { file, byteOffset: base, cause: signal.reason });
        const buf = chunk;
        const n = buf.length;
        let i = 0;
        let vStart = state === S_VAL ? 0 : -1; // value start within this chunk
        let nStart = inName ? 0 : -1;

        while (i < n) {
          if (state === S_VAL) {
            // the hot loop lives in plain functions (locals in registers, not in this generator's context)
            let done = false;
            if (vKind === V_CONTAINER) {
              const j = skipContainer(buf, i, scan);
              if (j >= 0) { i = j; done = true; } else i = n;
            } else if (vKind === V_STRING) {
              const j = skipString(buf, i, scan);
              if (j >= 0) { i = j; done = true; } else i = n;
            } else {
              while (i < n) {
                const c = buf[i]!;
                if (c === COMMA || c === RBRACE || c === RBRACK || isWs(c)) { done = true; break; }
                i++;
              }
            }
            line += scan.lines;
            scan.lines = 0;
            if (!done) break; // value continues in the next chunk
            const end = i;
            if (vIsElem && parts.length === 0) {
              // whole element inside this chunk: parsed later with its neighbours in one call
              if (runStart < 0) { runStart = vStart; runIndex = index; }
              runEnd = end;
              runOffsets.push(vStartAbs);
              runLines.push(vLine);
              index++;
              state = S_AFTER_ELEM;
              vStart = -1;
              continue;
            }
            let value: unknown;
            if (vCapture) {
              const text = parts.length === 0
                ? buf.toString('utf8', vStart, end)
                : Buffer.concat([...parts, buf.subarray(0, end)], partsBytes + end).toString('utf8');
              const what = vIsElem ? `element #${index} of ${arrayName}` : `member "${memberName}"`;
              value = parseOne(text, what, vStartAbs, vLine);
            }
            parts = [];
            partsBytes = 0;
            vStart = -1;
            if (vIsElem) {
              // an element that began in an earlier chunk: always the first to finish in this one
              ready.push({ value, byteOffset: vStartAbs, line: vLine, index });
              index++;
              state = S_AFTER_ELEM;
            } else {
              if (vCapture) memberSink[memberName] = value;
              else if (!(memberName === key && found)) skippedSink.push(memberName);
              state = S_AFTER_MEMBER;
            }
            continue;
          }

          if (inName) {
            // reading a top-level member name (raw bytes, may span chunks)
            let closed = false;
            while (i < n) {
              const c = buf[i]!;
              if (nameEsc) nameEsc = false;
              else if (c === BSLASH) nameEsc = true;
              else if (c === QUOTE) { closed = true; break; }
              i++;
            }
            if (!closed) break;
            nameParts.push(buf.subarray(nStart, i));
            const raw = Buffer.concat(nameParts);
            nameParts = [];
            nStart = -1;
            inName = false;
            i++; // past the closing quote
            // fast path: compare bytes; names with escapes go through JSON.parse
            if (key !== null && raw.equals(keyBytes)) memberName = key;
            else {
              try {
                memberName = JSON.parse(`"${raw.toString('utf8')}"`) as string;
              } catch (err) {
                fail(`a top-level member name is not a valid JSON string: ${(err as Error).message}`, memberStartAbs, line, err);
              }
            }
            state = S_COLON;
            continue;
          }

          const c = buf[i]!;
          if (c === NL) { line++; i++; continue; }
          if (isWs(c)) { i++; continue; }
          const at = base + i;
          switch (state) {
            case S_START:
              // a UTF-8 BOM (EF BB BF) is tolerated at the very start, even split between chunks
              if (at < 3 && c === BOM[at] && (at === 0 || bomSeen === at)) {
                bomSeen = at + 1;
                i++;
                break;
              }
              if (bomSeen > 0 && bomSeen < 3) fail('the file starts with a broken UTF-8 byte order mark', at, line);
              if (topLevel) {
                if (c !== LBRACK) fail(`expected the top-level JSON value to be an array ('['), found ${describe(c)} (${show(c)})`, at, line);
                found = true;
                state = S_ARR_FIRST;
              } else {
                if (c !== LBRACE) fail(`expected the top-level JSON value to be an object ('{'), found ${describe(c)} (${show(c)})`, at, line);
                state = S_KEY;
              }
              i++;
              break;
            case S_KEY:
            case S_KEY_AFTER_COMMA:
              if (c === RBRACE && state === S_KEY) {
                state = S_END;
                i++;
                if (!found) noMember(at, line);
                break;
              }
              if (c !== QUOTE) fail(`expected a member name ('"') in the top-level object, found ${show(c)}`, at, line);
              inName = true;
              nameEsc = false;
              memberStartAbs = at;
              i++;
              nStart = i;
              break;
            case S_COLON:
              if (c !== COLON) fail(`expected ':' after member "${memberName}", found ${show(c)}`, at, line);
              state = S_VALUE;
              i++;
              break;
            case S_VALUE:
              if (c === COMMA || c === RBRACE || c === RBRACK || c === COLON) fail(`expected a value for member "${memberName}", found ${show(c)}`, at, line);
              if (memberName === key && !found) {
                if (c !== LBRACK) fail(`member "${key}" is ${describe(c)}, not an array`, at, line);
                found = true;
                state = S_ARR_FIRST;
                i++;
                break;
              }
              // another member (or a repeated target, skipped): scan its value, capture if small
              vStart = i;
              i = startValue(c, at, i, false, memberName !== key);
              break;
            case S_ARR_FIRST:
            case S_ARR_NEXT:
              if (c === RBRACK && state === S_ARR_FIRST) {
                arrayDone = true;
                state = topLevel ? S_END : S_AFTER_MEMBER;
                i++;
                break;
              }
              if (c === COMMA || c === RBRACE || c === RBRACK || c === COLON) fail(`expected element #${index} of ${arrayName}, found ${show(c)}`, at, line);
              vStart = i;
              i = startValue(c, at, i, true, true);
              break;
            case S_AFTER_ELEM:
              if (c === COMMA) state = S_ARR_NEXT;
              else if (c === RBRACK) { arrayDone = true; state = topLevel ? S_END : S_AFTER_MEMBER; }
              else fail(`expected ',' or ']' after element #${index - 1} of ${arrayName}, found ${show(c)}`, at, line);
              i++;
              break;
            case S_AFTER_MEMBER:
              if (c === COMMA) state = S_KEY_AFTER_COMMA;
              else if (c === RBRACE) {
                state = S_END;
                if (!found) noMember(at, line);
              } else fail(`expected ',' or '}' after member "${memberName}", found ${show(c)}`, at, line);
              i++;
              break;
            case S_END:
              fail(`unexpected ${show(c)} after the end of the top-level ${topKind}`, at, line);
          }
        }

        // the elements completed in this chunk: one decode and one JSON.parse for the run
        if (runStart >= 0) {
          flushRun(buf);
          runStart = -1;
        }
        if (ready.length > 0) {
          const out = ready;
          ready = [];
          yield out;
        }

        // keep the unfinished piece of a value or name for the next chunk (bounded: one value)
        if (state === S_VAL && vStart >= 0) {
          if (vCapture) {
            const piece = buf.subarray(vStart);
            partsBytes += piece.length;
            parts.push(piece);
            if (!vIsElem && partsBytes > maxMemberBytes) {
              // too big to collect: keep scanning, stop buffering
              vCapture = false;
              parts = [];
              partsBytes = 0;
            }
          }
        } else if (inName && nStart >= 0) nameParts.push(buf.subarray(nStart));
        base += n;
      }
    } finally {
      stream.destroy();
    }

    if (state !== S_END) {
      const at = base;
      if (state === S_VAL && vIsElem) fail(`the file ends inside element #${index} of ${arrayName} (which starts at byte ${vStartAbs}, line ${vLine}): it is truncated`, at, line);
      if (found && !arrayDone) fail(`the file ends inside ${topLevel ? 'the top-level array' : `the "${key}" array`} after ${index} elements: it is truncated`, at, line);
      if (state === S_START) fail(`the file holds only whitespace, expected a JSON ${topKind}`, at, line);
      fail(`the file ends before the top-level object is closed: it is truncated${found ? '' : ` (no member "${key}" seen)`}`, at, line);
    }

    /**
     * Enters S_VAL for a value whose first byte `c` is at `i` (absolute offset `at`): an array
     * element, or another member's value (`capture`: keep it for `members`). Returns where
     * scanning goes on (a literal is re-read from its first byte).
     */
    function startValue(c: number, at: number, i: number, isElem: boolean, capture: boolean): number {
      vIsElem = isElem;
      vCapture = capture;
      vStartAbs = at;
      vLine = line;
      scan.inStr = false;
      scan.esc = false;
      parts = [];
      partsBytes = 0;
      state = S_VAL;
      if (c === LBRACE || c === LBRACK) { vKind = V_CONTAINER; scan.depth = 1; }
      else if (c === QUOTE) vKind = V_STRING;
      else { vKind = V_LITERAL; return i; }
      return i + 1;
    }
  }

  return {
    file,
    key,
    get members() { return members; },
    get skippedMembers() { return skipped; },
    batches,
    [Symbol.asyncIterator]: () => flatten(batches()),
  };
}

/**
 * Record-at-a-time view of the batches. A hand-written iterator: it hands out buffered records
 * as already-resolved promises, 2-3x cheaper per record than an async generator's `yield`.
 * `return()` (a `break` in for-await) closes the batch generator, which closes the file.
 */
function flatten(source: AsyncGenerator<JsonRecord[]>): AsyncIterator<JsonRecord> {
  let buf: JsonRecord[] = [];
  let i = 0;
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
  const iterator: AsyncIterator<JsonRecord> = {
    next(): Promise<IteratorResult<JsonRecord>> {
      if (i < buf.length) return Promise.resolve({ done: false, value: buf[i++]! });
      return source.next().then((r) => {
        if (r.done) return done;
        buf = r.value;
        i = 0;
        return iterator.next();
      });
    },
    async return(): Promise<IteratorResult<JsonRecord>> {
      buf = [];
      await source.return(undefined);
      return done;
    },
  };
  return iterator;
}
